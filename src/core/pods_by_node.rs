//! Grouping a DaemonSet's claimed pods by the node they are meant for (upstream
//! `getNodesToDaemonPods` and `GetTargetNodeName`, §3.2).

use crate::core::cached_pod::CachedPod;
use crate::core::node_affinity::OBJECT_NAME_FIELD;
use crate::core::pod_state::{is_terminal, is_terminating};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Claimed pods per target node name. A hash map: every sync looks up each node's pods several
/// times (manage, the rolling update, the status counters and the node reasons), and a B-tree of
/// node names paid a dozen string comparisons per lookup (issue 14's profile: a quarter of a sync's
/// CPU in `memcmp`). Nothing may depend on its iteration order: where order matters, collect the
/// keys into an ordered set first.
pub type NodePods = HashMap<String, Vec<Arc<CachedPod>>, crate::core::HashState>;

/// `spec.nodeName` if set, else the single value of the first `metadata.name In [..]` matchFields
/// requirement of the required node affinity; `None` when there is none or it has several values.
pub fn target_node_name(pod: &CachedPod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name.to_string());
    }
    let terms = &spec.required_node_affinity()?.node_selector_terms;
    let requirement = terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == OBJECT_NAME_FIELD && r.operator == "In")?;
    match requirement.values.as_deref() {
        Some([value]) => Some(value.clone()),
        _ => None,
    }
}

/// Groups `pods` by target node; pods without a target are skipped. Terminal pods that are also
/// terminating are left out unless `include_terminal_terminating` (history cleanup includes them).
pub fn group_by_node<'a>(
    pods: impl IntoIterator<Item = &'a Arc<CachedPod>>,
    include_terminal_terminating: bool,
) -> NodePods {
    let mut out = NodePods::default();
    for pod in pods {
        if !include_terminal_terminating && is_terminal(pod) && is_terminating(pod) {
            continue;
        }
        if let Some(node) = target_node_name(pod) {
            out.entry(node).or_default().push(Arc::clone(pod));
        }
    }
    out
}

/// `grouped`, which must be `group_by_node(before, false)`, when `now` holds the very same pod
/// objects in the same order (nothing in the DaemonSet's claimed view changed since `before`),
/// else `group_by_node(now, false)`. A sync reads its pods up to three times (before manage,
/// before the rolling update and before the status) and most of its views do not change in
/// between; grouping costs an allocation per pod.
pub fn regroup<'g>(
    before: &[Arc<CachedPod>],
    grouped: &'g NodePods,
    now: &[Arc<CachedPod>],
) -> Cow<'g, NodePods> {
    let same = before.len() == now.len() && before.iter().zip(now).all(|(a, b)| Arc::ptr_eq(a, b));
    if same {
        Cow::Borrowed(grouped)
    } else {
        Cow::Owned(group_by_node(now, false))
    }
}

/// The nodes under which `node_pods` holds a pod named in `names` (the nodes a plan's deletes
/// touch), in no particular order.
pub fn nodes_holding<'a>(node_pods: &'a NodePods, names: &[String]) -> Vec<&'a str> {
    if names.is_empty() {
        return Vec::new();
    }
    let names: HashSet<&str, crate::core::HashState> = names.iter().map(String::as_str).collect();
    node_pods
        .iter()
        .filter(|(_, pods)| {
            pods.iter().any(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| names.contains(n))
            })
        })
        .map(|(node, _)| node.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::*;
    use crate::core::ownership::{Claim, claim};
    use crate::core::selector::matches;
    use k8s_openapi::api::apps::v1::DaemonSet;
    use std::collections::BTreeMap;

    // ---- TestGetTargetNodeName ---------------------------------------------------------

    #[test]
    fn test_get_target_node_name_node_name_wins() {
        let pod = with_affinity_pin(ds_pod(&daemonset("foo"), "node-1", ""), "node-2");
        assert_eq!(target_node_name(&pod).as_deref(), Some("node-1"));
    }

    #[test]
    fn test_get_target_node_name_single_value_match_fields() {
        let pod = with_affinity_pin(ds_pod(&daemonset("foo"), "", ""), "node-1");
        assert_eq!(target_node_name(&pod).as_deref(), Some("node-1"));
    }

    #[test]
    fn test_get_target_node_name_two_values_is_error() {
        let mut pod = with_affinity_pin(ds_pod(&daemonset("foo"), "", ""), "node-1");
        if let Some(fields) = pod
            .spec
            .as_mut()
            .and_then(|s| s.affinity.as_mut())
            .and_then(|a| a.node_affinity.as_mut())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_mut()
            })
            .and_then(|r| r.node_selector_terms[0].match_fields.as_mut())
        {
            fields[0].values = Some(vec!["node-1".to_string(), "node-2".to_string()]);
        }
        assert_eq!(target_node_name(&pod), None);
    }

    #[test]
    fn test_get_target_node_name_no_affinity_is_error() {
        let pod = ds_pod(&daemonset("foo"), "", "");
        assert_eq!(target_node_name(&pod), None);
        let mut no_spec = pod.clone();
        no_spec.spec = None;
        assert_eq!(target_node_name(&no_spec), None);
    }

    #[test]
    fn target_node_name_skips_other_requirements_and_finds_first_in_later_term() {
        use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
        let mut pod = with_affinity_pin(ds_pod(&daemonset("foo"), "", ""), "node-3");
        if let Some(required) = pod
            .spec
            .as_mut()
            .and_then(|s| s.affinity.as_mut())
            .and_then(|a| a.node_affinity.as_mut())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_mut()
            })
        {
            let not_in = NodeSelectorRequirement {
                key: OBJECT_NAME_FIELD.to_string(),
                operator: "NotIn".to_string(),
                values: Some(vec!["node-9".to_string()]),
            };
            required.node_selector_terms.insert(
                0,
                NodeSelectorTerm {
                    match_expressions: None,
                    match_fields: Some(vec![not_in]),
                },
            );
        }
        assert_eq!(target_node_name(&pod).as_deref(), Some("node-3"));
    }

    #[test]
    fn target_node_name_empty_node_name_falls_back_to_affinity() {
        let mut pod = with_affinity_pin(ds_pod(&daemonset("foo"), "", ""), "node-4");
        if let Some(s) = pod.spec.as_mut() {
            s.node_name = Some(String::new());
        }
        assert_eq!(target_node_name(&pod).as_deref(), Some("node-4"));
    }

    // ---- TestGetNodesToDaemonPods ------------------------------------------------------

    /// The DaemonSet's claimed pods, as `getDaemonPods` returns them (adoptions succeed).
    fn claimed(ds: &DaemonSet, pods: &[Arc<CachedPod>]) -> Vec<Arc<CachedPod>> {
        let selector = &ds.spec.as_ref().unwrap().selector;
        pods.iter()
            .filter(|p| {
                let m = matches(selector, p.metadata.labels.as_ref()).unwrap();
                matches!(claim(ds, &p.metadata, m), Claim::Keep | Claim::Adopt)
            })
            .cloned()
            .collect()
    }

    fn names(group: &NodePods) -> BTreeMap<String, Vec<String>> {
        group
            .iter()
            .map(|(node, pods)| {
                let mut names: Vec<String> = pods
                    .iter()
                    .map(|p| p.metadata.name.clone().unwrap_or_default())
                    .collect();
                names.sort();
                (node.clone(), names)
            })
            .collect()
    }

    fn scenario() -> (DaemonSet, Vec<Arc<CachedPod>>) {
        let ds = daemonset("foo");
        let other = {
            let mut d = daemonset("foo2");
            d.metadata.uid = Some("ds2-uid".to_string());
            d
        };
        let owned = |node: &str, name: &str| with_name(ds_pod(&ds, node, ""), name);
        let pods = vec![
            owned("node-0", "matching-owned-0"),
            owned("node-1", "matching-owned-1"),
            orphan(owned("node-0", "matching-orphan-0")),
            orphan(owned("node-1", "matching-orphan-1")),
            with_phase(owned("node-0", "matching-owned-succeeded-0"), "Succeeded"),
            with_phase(owned("node-1", "matching-owned-failed-1"), "Failed"),
            with_deletion_timestamp(
                with_phase(
                    owned("node-0", "matching-owned-succeeded-deleted-0"),
                    "Succeeded",
                ),
                10,
            ),
            with_deletion_timestamp(
                with_phase(owned("node-1", "matching-owned-failed-deleted-1"), "Failed"),
                10,
            ),
            with_pod_label(owned("node-0", "non-matching-owned-0"), "name", "bar"),
            orphan(with_pod_label(
                owned("node-1", "non-matching-orphan-1"),
                "name",
                "bar",
            )),
            // Owned by another DaemonSet but carrying labels our selector matches.
            with_pod_label(
                with_name(ds_pod(&other, "node-0", ""), "matching-owned-by-other-0"),
                "name",
                "foo",
            ),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        (ds, pods)
    }

    #[test]
    fn test_get_nodes_to_daemon_pods_exclude_terminal_deleted() {
        let (ds, pods) = scenario();
        let grouped = group_by_node(claimed(&ds, &pods).iter(), false);
        let want: BTreeMap<String, Vec<String>> = [
            (
                "node-0",
                vec![
                    "matching-orphan-0",
                    "matching-owned-0",
                    "matching-owned-succeeded-0",
                ],
            ),
            (
                "node-1",
                vec![
                    "matching-orphan-1",
                    "matching-owned-1",
                    "matching-owned-failed-1",
                ],
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(names(&grouped), want);
    }

    #[test]
    fn test_get_nodes_to_daemon_pods_include_terminal_deleted() {
        let (ds, pods) = scenario();
        let grouped = group_by_node(claimed(&ds, &pods).iter(), true);
        let want: BTreeMap<String, Vec<String>> = [
            (
                "node-0",
                vec![
                    "matching-orphan-0",
                    "matching-owned-0",
                    "matching-owned-succeeded-0",
                    "matching-owned-succeeded-deleted-0",
                ],
            ),
            (
                "node-1",
                vec![
                    "matching-orphan-1",
                    "matching-owned-1",
                    "matching-owned-failed-1",
                    "matching-owned-failed-deleted-1",
                ],
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(names(&grouped), want);
    }

    #[test]
    fn group_keeps_non_terminal_terminating_pods() {
        let ds = daemonset("foo");
        let pods = [Arc::new(with_deletion_timestamp(
            with_phase(ds_pod(&ds, "node-0", ""), "Running"),
            5,
        ))];
        let grouped = group_by_node(pods.iter(), false);
        assert_eq!(grouped.get("node-0").map(Vec::len), Some(1));
    }

    #[test]
    fn group_skips_pods_without_target_and_uses_affinity_target() {
        let ds = daemonset("foo");
        let pods = [
            Arc::new(with_name(ds_pod(&ds, "", ""), "no-target")),
            Arc::new(with_name(
                with_affinity_pin(ds_pod(&ds, "", ""), "node-2"),
                "pinned",
            )),
        ];
        let grouped = group_by_node(pods.iter(), false);
        assert_eq!(grouped.len(), 1);
        assert!(Arc::ptr_eq(&grouped["node-2"][0], &pods[1]));
    }

    #[test]
    fn group_preserves_input_order_within_a_node() {
        let ds = daemonset("foo");
        let pods: Vec<_> = ["c", "a", "b"]
            .iter()
            .map(|n| Arc::new(with_name(ds_pod(&ds, "node-0", ""), n)))
            .collect();
        let grouped = group_by_node(pods.iter(), false);
        let got: Vec<_> = grouped["node-0"]
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        assert_eq!(got, ["c", "a", "b"]);
    }

    #[test]
    fn group_of_nothing_is_empty() {
        assert!(group_by_node(std::iter::empty(), true).is_empty());
    }

    #[test]
    fn the_nodes_holding_named_pods_are_the_nodes_they_run_on() {
        let ds = daemonset("foo");
        let mut node_pods = NodePods::default();
        for (node, pod) in [("n1", "a"), ("n1", "b"), ("n2", "c"), ("n3", "d")] {
            let p = with_name(ds_pod(&ds, node, "h"), pod);
            node_pods.entry(node.into()).or_default().push(Arc::new(p));
        }
        let mut nodes = nodes_holding(&node_pods, &["b".into(), "d".into(), "gone".into()]);
        nodes.sort();
        assert_eq!(nodes, ["n1", "n3"]);
        assert!(nodes_holding(&node_pods, &[]).is_empty());
    }

    #[test]
    fn regrouping_reuses_the_grouping_only_for_the_very_same_pods() {
        let ds = daemonset("foo");
        let pod = |node: &str, name: &str| Arc::new(with_name(ds_pod(&ds, node, "h"), name));
        let before = vec![pod("n1", "a"), pod("n2", "b")];
        let grouped = group_by_node(&before, false);
        let same = before.clone();
        assert!(matches!(
            regroup(&before, &grouped, &same),
            Cow::Borrowed(_)
        ));
        // A pod in a newer version (another object) is regrouped, even with the same content.
        let newer = vec![before[0].clone(), pod("n3", "b")];
        let regrouped = regroup(&before, &grouped, &newer);
        assert!(matches!(regrouped, Cow::Owned(_)));
        let mut nodes: Vec<&String> = regrouped.keys().collect();
        nodes.sort();
        assert_eq!(nodes, ["n1", "n3"]);
        let fewer = vec![before[0].clone()];
        assert_eq!(regroup(&before, &grouped, &fewer).len(), 1);
        let more = vec![before[0].clone(), before[1].clone(), pod("n4", "c")];
        assert_eq!(
            regroup(&before, &grouped, &more).len(),
            3,
            "a pod created since"
        );
        let reordered = vec![before[1].clone(), before[0].clone()];
        assert!(matches!(
            regroup(&before, &grouped, &reordered),
            Cow::Owned(_)
        ));
    }
}
