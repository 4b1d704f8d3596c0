//! The mass-deletion guard: when a change would delete more than a share of the DaemonSet's pods
//! at once (a nodeSelector typo, a pool-wide taint), hold those deletions until approved for the
//! DaemonSet's generation or until the change is reverted.
//!
//! It only post-filters manage ([`restrict_manage`]) and keeps the rolling update off the held
//! nodes (`Gate::keep`); every other decision stays upstream's.

use crate::core::cached_node::CachedNode;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::facts::NodeFacts;
use super::policy::scaled;
use crate::core::manage::ManagePlan;
use crate::core::pods_by_node::NodePods;

/// Deletions the guard holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Nodes whose pods nothing may delete.
    pub nodes: BTreeSet<String>,
    /// Nodes with a live pod that would lose it.
    pub pods: i32,
    /// Nodes with a live pod of the DaemonSet.
    pub of: i32,
}

/// The held deletions: nodes of the node list with a live pod whose placement no longer lets
/// it stay, when there are more than `max(1, maxDeletions of the nodes with a live pod, rounded
/// down)` of them and `approved_generation` is not the DaemonSet's generation. None: no guard,
/// under the limit, or approved.
pub fn held_deletions<N: Borrow<CachedNode>>(
    nodes: &[N],
    facts: &BTreeMap<String, NodeFacts>,
    node_pods: &NodePods,
    max_deletions: Option<&IntOrString>,
    approved_generation: Option<i64>,
    ds_generation: Option<i64>,
) -> Option<Held> {
    let max_deletions = max_deletions?;
    let live = |n: &str| node_pods.get(n).is_some_and(|pods| !pods.is_empty());
    let with_pods: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.borrow().metadata.name.as_deref())
        .filter(|n| live(n))
        .collect();
    let going: BTreeSet<String> = with_pods
        .iter()
        .filter(|n| facts.get(**n).is_some_and(|f| !f.should_continue_running))
        .map(|n| n.to_string())
        .collect();
    let limit = scaled(max_deletions, with_pods.len(), false).max(1);
    let approved = approved_generation.is_some() && approved_generation == ds_generation;
    (going.len() > limit && !approved).then(|| Held {
        pods: i32::try_from(going.len()).unwrap_or(i32::MAX),
        of: i32::try_from(with_pods.len()).unwrap_or(i32::MAX),
        nodes: going,
    })
}

/// Removes manage's deletions of pods on `keep` nodes. Manage decides per node with no budget, so
/// no other decision changes.
pub fn restrict_manage(plan: &mut ManagePlan, keep: &BTreeSet<String>, node_pods: &NodePods) {
    if keep.is_empty() {
        return;
    }
    let held: BTreeSet<&str> = keep
        .iter()
        .filter_map(|n| node_pods.get(n))
        .flatten()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    plan.pods_to_delete
        .retain(|name| !held.contains(name.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{daemonset, ds_pod, node, with_name};
    use std::sync::Arc;

    fn cluster(n: usize, going: usize) -> (Vec<CachedNode>, BTreeMap<String, NodeFacts>, NodePods) {
        let ds = daemonset("agent");
        let mut nodes = Vec::new();
        let mut facts = BTreeMap::new();
        let mut pods = NodePods::default();
        for i in 0..n {
            let name = format!("n{i}");
            nodes.push(node(&name));
            let stay = i >= going;
            facts.insert(
                name.clone(),
                NodeFacts {
                    should_run: stay,
                    should_continue_running: stay,
                    ..Default::default()
                },
            );
            pods.insert(
                name.clone(),
                vec![Arc::new(with_name(
                    ds_pod(&ds, &name, "h"),
                    &format!("p{i}"),
                ))],
            );
        }
        (nodes, facts, pods)
    }

    #[test]
    fn holds_above_the_share_until_approved_for_the_generation() {
        let half = IntOrString::String("50%".into());
        let (nodes, facts, pods) = cluster(12, 9);
        let held = held_deletions(&nodes, &facts, &pods, Some(&half), None, Some(3));
        assert_eq!(
            held.as_ref().map(|h| (h.pods, h.of, h.nodes.len())),
            Some((9, 12, 9))
        );
        assert_eq!(
            held_deletions(&nodes, &facts, &pods, Some(&half), Some(3), Some(3)),
            None
        );
        assert!(held_deletions(&nodes, &facts, &pods, Some(&half), Some(2), Some(3)).is_some());
        assert_eq!(
            held_deletions(&nodes, &facts, &pods, None, None, Some(3)),
            None
        );
        let (nodes, facts, pods) = cluster(12, 6);
        assert_eq!(
            held_deletions(&nodes, &facts, &pods, Some(&half), None, Some(3)),
            None
        );
        let (nodes, facts, pods) = cluster(2, 1);
        assert_eq!(
            held_deletions(
                &nodes,
                &facts,
                &pods,
                Some(&IntOrString::Int(0)),
                None,
                Some(3)
            ),
            None
        );
    }

    #[test]
    fn restrict_manage_drops_only_deletions_on_kept_nodes() {
        let (_, _, pods) = cluster(3, 0);
        let mut plan = ManagePlan {
            pods_to_delete: vec!["p0".into(), "p1".into(), "p2".into()],
            nodes_needing_pods: vec!["x".into()],
            ..ManagePlan::default()
        };
        let keep = ["n1".to_string()].into_iter().collect();
        restrict_manage(&mut plan, &keep, &pods);
        assert_eq!(plan.pods_to_delete, vec!["p0", "p2"]);
        assert_eq!(plan.nodes_needing_pods, vec!["x"]);
        let before = plan.clone();
        restrict_manage(&mut plan, &BTreeSet::new(), &pods);
        assert_eq!(plan, before);
    }
}
