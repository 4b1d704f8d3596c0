//! Eligibility, the canary choice, the waves, the update order and the partition split.
//!
//! Every function sorts by node name before deciding, so the result never depends on the order
//! of the node list.

use std::collections::{BTreeMap, BTreeSet};

use super::facts::NodeFacts;
use super::policy::{CanaryPolicy, Policy, WavesPolicy, scaled};
use crate::api::CanaryStatus;

/// Nodes that should run a pod and match the update scope, by name.
pub fn eligible(facts: &BTreeMap<String, NodeFacts>) -> Vec<String> {
    facts
        .iter()
        .filter(|(_, f)| f.eligible())
        .map(|(n, _)| n.clone())
        .collect()
}

/// The canary nodes of revision `hash`: the previous choice when it was made for `hash` (nodes
/// that left are dropped, not replaced), else `canary.nodes` of `eligible` (rounded up, at least
/// 1): nodes already updated first, then round-robin over the sorted `spreadByLabel` values (no
/// label last), by name within a value.
pub fn select_canary(
    eligible: &[String],
    facts: &BTreeMap<String, NodeFacts>,
    canary: &CanaryPolicy,
    previous: Option<&CanaryStatus>,
    hash: &str,
) -> Vec<String> {
    if let Some(prev) = previous.filter(|c| c.revision == hash) {
        let set: BTreeSet<&String> = eligible.iter().collect();
        return prev
            .nodes
            .iter()
            .filter(|n| set.contains(n))
            .cloned()
            .collect();
    }
    let count = scaled(&canary.nodes, eligible.len(), true)
        .max(1)
        .min(eligible.len());
    let updated = eligible
        .iter()
        .filter(|n| facts.get(*n).is_some_and(|f| f.updated));
    let mut chosen: Vec<String> = updated.take(count).cloned().collect();
    let mut groups: BTreeMap<(bool, String), Vec<&String>> = BTreeMap::new();
    for n in eligible.iter().filter(|n| !chosen.contains(n)) {
        let value = canary
            .spread_by_label
            .as_ref()
            .and_then(|l| facts.get(n).and_then(|f| f.labels.get(l)))
            .cloned();
        groups
            .entry((value.is_none(), value.unwrap_or_default()))
            .or_default()
            .push(n);
    }
    // Round-robin: the next node comes from the value with the fewest chosen nodes so far.
    let mut taken: BTreeMap<&(bool, String), usize> = groups.keys().map(|k| (k, 0)).collect();
    for n in &chosen {
        let value = canary
            .spread_by_label
            .as_ref()
            .and_then(|l| facts.get(n).and_then(|f| f.labels.get(l)))
            .cloned();
        if let Some(t) = taken.get_mut(&(value.is_none(), value.unwrap_or_default())) {
            *t += 1;
        }
    }
    let mut next: BTreeMap<&(bool, String), usize> = groups.keys().map(|k| (k, 0)).collect();
    while chosen.len() < count {
        let pick = groups
            .iter()
            .filter(|(k, nodes)| next[k] < nodes.len())
            .min_by_key(|(k, _)| taken[k]);
        let Some((key, nodes)) = pick else {
            break;
        };
        chosen.push(nodes[next[key]].clone());
        *next.entry(key).or_insert(0) += 1;
        *taken.entry(key).or_insert(0) += 1;
    }
    chosen.sort();
    chosen
}

/// One wave: a value of the waves label and its eligible nodes (canary nodes excluded), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// The label value; "" for nodes without the label.
    pub value: String,
    pub nodes: Vec<String>,
}

/// The waves over `eligible` minus `canary`: the `order` values first, in that order, then the
/// other values sorted, then nodes without the label. Waves without nodes are left out.
pub fn waves(
    eligible: &[String],
    facts: &BTreeMap<String, NodeFacts>,
    waves: &WavesPolicy,
    canary: &[String],
) -> Vec<Wave> {
    let mut by_value: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unlabelled = Vec::new();
    for n in eligible.iter().filter(|n| !canary.contains(n)) {
        match facts.get(n).and_then(|f| f.labels.get(&waves.node_label)) {
            Some(v) => by_value.entry(v.clone()).or_default().push(n.clone()),
            None => unlabelled.push(n.clone()),
        }
    }
    let mut out = Vec::new();
    for value in &waves.order {
        if let Some(nodes) = by_value.remove(value) {
            out.push(Wave {
                value: value.clone(),
                nodes,
            });
        }
    }
    out.extend(
        by_value
            .into_iter()
            .map(|(value, nodes)| Wave { value, nodes }),
    );
    if !unlabelled.is_empty() {
        out.push(Wave {
            value: String::new(),
            nodes: unlabelled,
        });
    }
    out
}

/// The update order of the eligible nodes: those already updated (or with an updated pod in
/// progress) first, then the canary, then the waves in order (without waves: the rest by name);
/// the first group keeps the relative order of the second.
pub fn update_order(
    eligible: &[String],
    facts: &BTreeMap<String, NodeFacts>,
    canary: &[String],
    waves: &[Wave],
) -> Vec<String> {
    let mut base: Vec<String> = canary.to_vec();
    if waves.is_empty() {
        base.extend(eligible.iter().filter(|n| !canary.contains(n)).cloned());
    } else {
        base.extend(waves.iter().flat_map(|w| w.nodes.iter().cloned()));
    }
    let started = |n: &String| facts.get(n).is_some_and(|f| f.updated);
    let (mut first, rest): (Vec<String>, Vec<String>) = base.into_iter().partition(started);
    first.extend(rest);
    first
}

/// The partition `P` of the policy over `eligible` nodes: rounded up, at most `eligible`.
pub fn partition_count(policy: &Policy, eligible: usize) -> usize {
    policy
        .partition
        .as_ref()
        .map_or(0, |p| scaled(p, eligible, true))
}

/// `order` split into the nodes to update (the first `len - partition`) and the held ones.
pub fn partition_split(order: &[String], partition: usize) -> (Vec<String>, Vec<String>) {
    let cut = order.len().saturating_sub(partition);
    (order[..cut].to_vec(), order[cut..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn facts(nodes: &[(&str, &str, bool)]) -> BTreeMap<String, NodeFacts> {
        nodes
            .iter()
            .map(|(n, zone, updated)| {
                let mut labels = BTreeMap::new();
                if !zone.is_empty() {
                    labels.insert("zone".to_string(), zone.to_string());
                }
                let f = NodeFacts {
                    should_run: true,
                    in_scope: true,
                    labels,
                    updated: *updated,
                    ..Default::default()
                };
                (n.to_string(), f)
            })
            .collect()
    }

    #[test]
    fn canary_spreads_over_the_label_and_prefers_updated_nodes() {
        let f = facts(&[
            ("a1", "a", false),
            ("a2", "a", false),
            ("b1", "b", false),
            ("c1", "", false),
        ]);
        let e = eligible(&f);
        let canary = CanaryPolicy {
            nodes: IntOrString::Int(3),
            spread_by_label: Some("zone".into()),
            bake_seconds: 0,
            manual: false,
        };
        assert_eq!(
            select_canary(&e, &f, &canary, None, "h"),
            vec!["a1", "b1", "c1"]
        );
        let f = facts(&[("a1", "a", false), ("a2", "a", true), ("b1", "b", false)]);
        let canary = CanaryPolicy {
            nodes: IntOrString::Int(2),
            ..canary
        };
        assert_eq!(
            select_canary(&e[..0], &f, &canary, None, "h"),
            Vec::<String>::new()
        );
        assert_eq!(
            select_canary(&eligible(&f), &f, &canary, None, "h"),
            vec!["a2", "b1"]
        );
        let sticky = CanaryStatus {
            revision: "h".into(),
            nodes: vec!["gone".into(), "a1".into()],
            ..Default::default()
        };
        assert_eq!(
            select_canary(&eligible(&f), &f, &canary, Some(&sticky), "h"),
            vec!["a1"]
        );
    }

    #[test]
    fn waves_follow_the_order_then_sorted_values_then_unlabelled() {
        let f = facts(&[
            ("n1", "c", false),
            ("n2", "a", false),
            ("n3", "b", false),
            ("n4", "", false),
        ]);
        let w = WavesPolicy {
            node_label: "zone".into(),
            order: vec!["b".into(), "x".into()],
            bake_seconds: 0,
        };
        let got: Vec<String> = waves(&eligible(&f), &f, &w, &[])
            .into_iter()
            .map(|w| w.value)
            .collect();
        assert_eq!(got, vec!["b", "a", "c", ""]);
    }

    #[test]
    fn updated_nodes_come_first_and_partition_holds_the_tail() {
        let f = facts(&[("n1", "", false), ("n2", "", false), ("n3", "", true)]);
        let order = update_order(&eligible(&f), &f, &["n2".to_string()], &[]);
        assert_eq!(order, vec!["n3", "n2", "n1"]);
        assert_eq!(
            partition_split(&order, 1),
            (
                vec!["n3".to_string(), "n2".to_string()],
                vec!["n1".to_string()]
            )
        );
        assert_eq!(partition_split(&order, 5).0, Vec::<String>::new());
    }
}
