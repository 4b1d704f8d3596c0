//! The `SelectsFewNodes` warning: a spec change that leaves a DaemonSet wanting no node, or fewer
//! than half of the nodes it wanted, said on the DaemonSet with the placement rules that exclude
//! the most nodes ("nodeSelector role=nonexistent matches 0 of 13 nodes (it wanted 13)").
//!
//! [difference] Upstream says nothing: a typo'd nodeSelector deletes every pod with only
//! `SuccessfulDelete` events, and `kubectl rollout status` then reports success with DESIRED 0
//! (docs/differences.md). The warning decides nothing: the pods on the excluded nodes are deleted as
//! upstream deletes them.
//!
//! "A spec change" is a sync that sees `metadata.generation` above `status.observedGeneration`;
//! "what it wanted" is `status.desiredNumberScheduled` as that sync found it, written by the sync of
//! the previous generation. A new DaemonSet (no observedGeneration) wanted nothing yet and is not
//! warned about: nodes that just joined carry `node.kubernetes.io/not-ready:NoSchedule`, which
//! daemon pods do not tolerate, so a DaemonSet created with its nodes often wants none for a moment.
//! That the warning is said once per generation is [`crate::core::said`]'s part.

use crate::core::cached_node::CachedNode;
use crate::core::events::{PlannedEvent, SELECTS_FEW_NODES};
use crate::core::node_affinity::Mismatch;
use crate::core::placement::{Exclusion, PlacementRules};
use k8s_openapi::api::apps::v1::DaemonSet;
use std::borrow::Borrow;

/// How many excluding rules the message names; the rest are counted together.
const NAMED_RULES: usize = 3;

/// Whether the sync of `ds` is the first of a new generation (`metadata.generation` above
/// `status.observedGeneration`, or no observedGeneration at all).
pub fn is_spec_change(ds: &DaemonSet) -> bool {
    let generation = ds.metadata.generation.unwrap_or(0);
    let observed = ds.status.as_ref().and_then(|s| s.observed_generation);
    observed.is_none_or(|o| generation > o)
}

/// The rule of an exclusion without the node's side of it: what the DaemonSet asks for, the same
/// for every node it excludes (`nodeSelector role=web`, not `... : node has role=db`).
pub fn rule_text(exclusion: &Exclusion) -> String {
    match exclusion {
        Exclusion::NodeName { node_name } => format!("spec.template.spec.nodeName {node_name}"),
        Exclusion::Affinity(Mismatch::NodeSelector { key, value, .. }) => {
            format!("nodeSelector {key}={value}")
        }
        Exclusion::Affinity(Mismatch::NodeAffinity { terms }) => {
            let terms: Vec<String> = terms
                .iter()
                .enumerate()
                .map(|(i, t)| format!("term {}: {t}", i + 1))
                .collect();
            format!("required node affinity ({})", terms.join("; "))
        }
        Exclusion::Taint { .. } => exclusion.to_string(),
    }
}

fn nodes_word(n: usize) -> &'static str {
    if n == 1 { "node" } else { "nodes" }
}

/// The Warning `SelectsFewNodes` for this sync of `ds` over `nodes`, or `None`: when the sync is a
/// spec change of a DaemonSet synced before ([`is_spec_change`], with an observedGeneration) and it
/// now wants no node having wanted some, or fewer than half of the nodes it wanted, because the
/// spec excludes them. One pass of placement over the nodes, only for a spec change.
pub fn selects_few_nodes<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
) -> Option<PlannedEvent> {
    if !is_spec_change(ds) {
        return None;
    }
    let before = ds
        .status
        .as_ref()
        .filter(|s| s.observed_generation.is_some())
        .map(|s| usize::try_from(s.desired_number_scheduled).unwrap_or(0))?;
    let placement = PlacementRules::compile(ds);
    let (mut total, mut wanted) = (0usize, 0usize);
    // Excluding rules with the number of nodes each excludes, in order of first appearance.
    let mut rules: Vec<(String, usize)> = Vec::new();
    for node in nodes {
        let node = node.borrow();
        if node.metadata.name.is_none() {
            continue;
        }
        total += 1;
        match placement.explain(node) {
            (p, _) if p.should_run => wanted += 1,
            (_, Some(exclusion)) => {
                let text = rule_text(&exclusion);
                match rules.iter_mut().find(|(r, _)| *r == text) {
                    Some((_, n)) => *n += 1,
                    None => rules.push((text, 1)),
                }
            }
            (_, None) => {}
        }
    }
    // Fewer than half of what it wanted, which includes none of some. Nodes that left the cluster
    // are no spec change's doing: only nodes the spec excludes are warned about.
    if wanted * 2 >= before || rules.is_empty() {
        return None;
    }
    // The rules that exclude the most nodes first (ties: first seen first).
    rules.sort_by_key(|r| std::cmp::Reverse(r.1));
    let it_wanted = format!(" (it wanted {before})");
    let message = match rules.as_slice() {
        [(rule, _)] if rule.starts_with("nodeSelector") || rule.starts_with("required") => {
            format!(
                "{rule} matches {wanted} of {total} {}{it_wanted}",
                nodes_word(total)
            )
        }
        [(rule, excluded)] => format!(
            "{rule} excludes {excluded} of {total} {}{it_wanted}",
            nodes_word(total)
        ),
        _ => {
            let mut named: Vec<String> = rules
                .iter()
                .take(NAMED_RULES)
                .map(|(rule, n)| format!("{rule} excludes {n}"))
                .collect();
            let rest: usize = rules.iter().skip(NAMED_RULES).map(|(_, n)| n).sum();
            if rest > 0 {
                let others = rules.len() - NAMED_RULES;
                named.push(format!(
                    "{others} other {} {rest}",
                    if others == 1 {
                        "rule excludes"
                    } else {
                        "rules exclude"
                    }
                ));
            }
            format!(
                "{wanted} of {total} {} {}{it_wanted}: {}",
                nodes_word(total),
                if wanted == 1 { "qualifies" } else { "qualify" },
                named.join(", ")
            )
        }
    };
    Some(PlannedEvent::warning(SELECTS_FEW_NODES, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::*;
    use k8s_openapi::api::apps::v1::DaemonSetStatus;

    /// A DaemonSet of generation 2 whose generation 1 was synced wanting `desired` nodes.
    fn changed(ds: DaemonSet, desired: i32) -> DaemonSet {
        let mut ds = ds;
        ds.metadata.generation = Some(2);
        ds.status = Some(DaemonSetStatus {
            observed_generation: Some(1),
            desired_number_scheduled: desired,
            ..Default::default()
        });
        ds
    }

    fn thirteen() -> Vec<CachedNode> {
        (0..13)
            .map(|i| node_with_labels(&format!("n{i:02}"), &[("role", "web")]))
            .collect()
    }

    fn message(e: Option<PlannedEvent>) -> Option<String> {
        e.map(|e| {
            assert_eq!(e.reason, SELECTS_FEW_NODES);
            assert_eq!(e.type_, crate::core::events::EventType::Warning);
            e.message
        })
    }

    #[test]
    fn a_typod_node_selector_that_matches_nothing_is_named_with_its_counts() {
        let ds = changed(
            with_node_selector(daemonset("agent"), &[("role", "nonexistent")]),
            13,
        );
        assert_eq!(
            message(selects_few_nodes(&ds, &thirteen())).as_deref(),
            Some("nodeSelector role=nonexistent matches 0 of 13 nodes (it wanted 13)")
        );
    }

    #[test]
    fn fewer_than_half_warns_half_or_more_does_not() {
        let mut nodes = thirteen();
        for n in nodes.iter_mut().take(6) {
            *n = with_node_labels(n.clone(), &[("tier", "a")]);
        }
        let ds = with_node_selector(daemonset("agent"), &[("tier", "a")]);
        // 6 of 13 wanted, it wanted 13: under half.
        assert_eq!(
            message(selects_few_nodes(&changed(ds.clone(), 13), &nodes)).as_deref(),
            Some("nodeSelector tier=a matches 6 of 13 nodes (it wanted 13)")
        );
        // 6 of 12 is half: no warning.
        assert_eq!(selects_few_nodes(&changed(ds, 12), &nodes), None);
    }

    #[test]
    fn several_rules_are_named_most_nodes_first_and_the_rest_counted() {
        let mut nodes: Vec<CachedNode> = (0..5).map(|i| node(&format!("plain{i}"))).collect();
        nodes.push(with_taint(
            node_with_labels("db0", &[("role", "web")]),
            "dedicated",
            "db",
            "NoSchedule",
        ));
        nodes.push(with_taint(
            node_with_labels("db1", &[("role", "web")]),
            "dedicated",
            "db",
            "NoSchedule",
        ));
        nodes.push(with_taint(
            node_with_labels("gpu", &[("role", "web")]),
            "gpu",
            "",
            "NoExecute",
        ));
        nodes.push(with_taint(
            node_with_labels("edge", &[("role", "web")]),
            "edge",
            "",
            "NoSchedule",
        ));
        nodes.push(node_with_labels("web0", &[("role", "web")]));
        let ds = changed(
            with_node_selector(daemonset("agent"), &[("role", "web")]),
            10,
        );
        assert_eq!(
            message(selects_few_nodes(&ds, &nodes)).as_deref(),
            Some(
                "1 of 10 nodes qualifies (it wanted 10): nodeSelector role=web excludes 5, \
                 untolerated taint dedicated=db:NoSchedule excludes 2, untolerated taint \
                 gpu:NoExecute excludes 1, 1 other rule excludes 1"
            )
        );
    }

    #[test]
    fn a_taint_or_node_name_excludes_rather_than_matches() {
        let nodes: Vec<CachedNode> = (0..3)
            .map(|i| with_taint(node(&format!("n{i}")), "k", "v", "NoSchedule"))
            .collect();
        let ds = changed(daemonset("agent"), 3);
        assert_eq!(
            message(selects_few_nodes(&ds, &nodes)).as_deref(),
            Some("untolerated taint k=v:NoSchedule excludes 3 of 3 nodes (it wanted 3)")
        );
        let ds = changed(with_template_node_name(daemonset("agent"), "gone"), 3);
        let nodes: Vec<CachedNode> = (0..3).map(|i| node(&format!("n{i}"))).collect();
        assert_eq!(
            message(selects_few_nodes(&ds, &nodes)).as_deref(),
            Some("spec.template.spec.nodeName gone excludes 3 of 3 nodes (it wanted 3)")
        );
    }

    #[test]
    fn required_node_affinity_is_named_by_its_terms() {
        let ds = changed(
            with_affinity(
                daemonset("agent"),
                required_affinity("zone", "In", &["a", "b"]),
            ),
            1,
        );
        assert_eq!(
            message(selects_few_nodes(&ds, &[node("n0")])).as_deref(),
            Some(
                "required node affinity (term 1: zone In [a,b]) matches 0 of 1 node (it wanted 1)"
            )
        );
    }

    #[test]
    fn only_a_spec_change_is_looked_at() {
        let mut ds = changed(
            with_node_selector(daemonset("agent"), &[("role", "nonexistent")]),
            13,
        );
        // The sync of generation 2 already wrote its status: no spec change, no warning.
        if let Some(s) = ds.status.as_mut() {
            s.observed_generation = Some(2);
        }
        assert_eq!(selects_few_nodes(&ds, &thirteen()), None);
        assert!(!is_spec_change(&ds));
    }

    #[test]
    fn a_daemonset_that_wanted_nothing_or_a_cluster_without_nodes_is_not_warned_about() {
        let ds = with_node_selector(daemonset("agent"), &[("role", "nonexistent")]);
        // It wanted no node before either (a change of its image, say).
        assert_eq!(
            selects_few_nodes(&changed(ds.clone(), 0), &thirteen()),
            None
        );
        // No node at all.
        assert_eq!(
            selects_few_nodes(&changed(ds, 13), &Vec::<CachedNode>::new()),
            None
        );
        // Growing, or staying, never warns.
        let all = changed(daemonset("agent"), 2);
        assert_eq!(selects_few_nodes(&all, &thirteen()), None);
        // Fewer nodes, none of them excluded: nodes left the cluster, the spec excludes nothing.
        let all = changed(daemonset("agent"), 13);
        assert_eq!(selects_few_nodes(&all, &thirteen()[..3]), None);
    }

    #[test]
    fn a_new_daemonset_is_not_warned_about() {
        // Its nodes may not be Ready yet (not-ready:NoSchedule), and a DaemonSet for a few nodes of
        // the cluster is what node selectors are for.
        let mut ds = with_node_selector(daemonset("agent"), &[("role", "nonexistent")]);
        ds.status = None;
        assert!(is_spec_change(&ds));
        assert_eq!(selects_few_nodes(&ds, &thirteen()), None);
        ds.status = Some(DaemonSetStatus::default());
        assert_eq!(selects_few_nodes(&ds, &thirteen()), None);
    }
}
