//! Per-node facts for the update revision: should the node run a pod, is it in the update scope,
//! does it run an updated pod, is that pod available, does an outdated pod remain.
//!
//! "Updated" and "available" are the rolling update's: a non-terminating pod whose hash label (or
//! pod-template-generation label) matches, available after `minReadySeconds`.

use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use std::borrow::Borrow;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;

use super::failure::restarts;
use super::policy::Policy;
use crate::core::Timestamp;
use crate::core::placement::PlacementRules;
use crate::core::pod_state::{is_available, is_terminating, is_updated};
use crate::core::pods_by_node::NodePods;
use crate::core::status::{min_ready_seconds, template_generation};

/// What the policy knows about one node of the node list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// Placement: a pod should run here.
    pub should_run: bool,
    /// Placement: a pod already here may stay.
    pub should_continue_running: bool,
    /// Matches the policy's update scope.
    pub in_scope: bool,
    /// The node's labels (waves and the canary spread read them).
    pub labels: BTreeMap<String, String>,
    /// A live pod of the update revision runs here.
    pub updated: bool,
    /// That pod is available.
    pub available: bool,
    /// A live pod of another revision runs here.
    pub has_old: bool,
    /// The restarts of the updated pod's containers.
    pub new_pod_restarts: i32,
    /// When the updated pod was created.
    pub new_pod_created: Option<Timestamp>,
}

impl NodeFacts {
    /// Wanted and in scope: the policy's update controls apply.
    pub fn eligible(&self) -> bool {
        self.should_run && self.in_scope
    }

    /// An old pod and no updated one: replacing it is a node-update start.
    pub fn outdated_only(&self) -> bool {
        self.has_old && !self.updated
    }

    /// Updated and available.
    pub fn done(&self) -> bool {
        self.updated && self.available
    }
}

/// The facts of every named node in `nodes`, by name.
pub fn node_facts<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    policy: &Policy,
    now: Timestamp,
) -> BTreeMap<String, NodeFacts> {
    let generation = template_generation(ds);
    let min_ready = min_ready_seconds(ds);
    let rules = PlacementRules::compile(ds);
    let mut out = BTreeMap::new();
    for node in nodes {
        let node = node.borrow();
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let p = rules.place(node);
        let mut facts = NodeFacts {
            should_run: p.should_run,
            should_continue_running: p.should_continue_running,
            in_scope: policy.in_scope(node),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            ..NodeFacts::default()
        };
        let live = node_pods
            .get(name)
            .into_iter()
            .flatten()
            .filter(|p| !is_terminating(p));
        let mut newest: Option<&CachedPod> = None;
        for pod in live {
            if is_updated(pod, hash, generation) {
                facts.updated = true;
                facts.available |= is_available(pod, min_ready, now);
                if newest.is_none_or(|n| created(n) < created(pod)) {
                    newest = Some(pod);
                }
            } else {
                facts.has_old = true;
            }
        }
        if let Some(pod) = newest {
            facts.new_pod_restarts = restarts(pod);
            facts.new_pod_created = created(pod);
        }
        out.insert(name.to_string(), facts);
    }
    out
}

fn created(pod: &CachedPod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DaemonSetRolloutSpec;
    use crate::core::fixtures::{
        daemonset, ds_pod, ds_pod_arc, node, node_with_labels, running_ready, ts,
        with_node_selector,
    };
    use std::sync::Arc;

    fn policy() -> Policy {
        Policy::from_spec("agent", Some(1), &DaemonSetRolloutSpec::default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn updated_available_and_outdated_as_the_rolling_update_sees_them() {
        let ds = with_node_selector(daemonset("agent"), &[("run", "yes")]);
        let nodes = vec![
            node_with_labels("a", &[("run", "yes")]),
            node_with_labels("b", &[("run", "yes")]),
            node("c"),
        ];
        let mut pods = NodePods::default();
        pods.insert(
            "a".into(),
            vec![Arc::new(running_ready(ds_pod(&ds, "a", "new"), 0))],
        );
        pods.insert(
            "b".into(),
            vec![ds_pod_arc(&ds, "b", "old"), ds_pod_arc(&ds, "b", "new")],
        );
        let facts = node_facts(&ds, &nodes, &pods, "new", &policy(), ts(10));
        let a = &facts["a"];
        assert!(a.should_run && a.updated && a.available && !a.has_old && a.done());
        let b = &facts["b"];
        assert!(b.updated && !b.available && b.has_old && !b.outdated_only());
        assert!(!facts["c"].should_run);
    }
}
