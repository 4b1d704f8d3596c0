//! Manage: for one sync, which nodes need a daemon pod and which daemon pods must be deleted
//! (upstream `manage`, `podsShouldBeOnNode` and `getUnscheduledPodsWithoutNode`, §3.4, §3.5).
//!
//! The plan lists every create and delete; the shell truncates both lists to the burst limit and
//! issues them with slow start (`slow_start`), after setting the expectations.

use crate::core::Timestamp;
use crate::core::backoff::{FailedPodBackoff, failed_pods_backoff_key};
use crate::core::budget::allows_surge;
use crate::core::events::{FAILED_DAEMON_POD, PlannedEvent, SELECTING_ALL, SUCCEEDED_DAEMON_POD};
use crate::core::placement::placement;
use crate::core::pod_state::{hash_label, is_available, is_ready, oldest_scheduled_first};
use crate::core::pods_by_node::NodePods;
use crate::core::selector;
use crate::core::status::min_ready_seconds;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What one node needs (upstream `podsShouldBeOnNode`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDecision {
    /// A daemon pod must be created on the node.
    pub needs_pod: bool,
    /// Names of this node's pods to delete, in decision order.
    pub pods_to_delete: Vec<String>,
    /// FailedDaemonPod / SucceededDaemonPod events to emit on the DaemonSet.
    pub events: Vec<PlannedEvent>,
    /// A failed pod was left alone because of its backoff: requeue the DaemonSet after this delay.
    pub requeue_after: Option<Duration>,
}

/// Everything manage decides in one sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagePlan {
    /// Nodes to create a daemon pod on, in node-list order (not yet truncated to the burst limit).
    pub nodes_needing_pods: Vec<String>,
    /// Pods to delete, by name (not yet truncated to the burst limit).
    pub pods_to_delete: Vec<String>,
    /// FailedDaemonPod / SucceededDaemonPod events, in node-list order.
    pub events: Vec<PlannedEvent>,
    /// Requeue the DaemonSet after this delay (shortest failed-pod backoff that held a delete back).
    pub requeue_after: Option<Duration>,
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// The Warning `SelectingAll` event when `ds` has the empty selector `{}` (§2 step 4). When this
/// returns an event, the sync emits it and stops: no manage, no rolling update, no status.
pub fn selecting_all_event(ds: &DaemonSet) -> Option<PlannedEvent> {
    let spec = ds.spec.as_ref()?;
    selector::is_empty(&spec.selector).then(|| {
        PlannedEvent::warning(
            SELECTING_ALL,
            "This daemon set is selecting all pods. A non-empty selector is required.",
        )
    })
}

/// What `node` needs (§3.4), given the node's group of claimed pods (`None`: the node has no group)
/// and the current revision `hash`. Advances the failed-pod backoff of each failed pod it deletes.
/// Pods without a name are ignored (they cannot be deleted by name).
pub fn pods_should_be_on_node(
    node: &Node,
    pods: Option<&[Arc<Pod>]>,
    ds: &DaemonSet,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
) -> NodeDecision {
    decide(node, pods, ds, hash, now, backoff, allows_surge(ds))
}

fn decide(
    node: &Node,
    pods: Option<&[Arc<Pod>]>,
    ds: &DaemonSet,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
    surge: bool,
) -> NodeDecision {
    let mut decision = NodeDecision::default();
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let fit = placement(node, ds);
    let named = || pods.unwrap_or_default().iter().filter(|p| p.metadata.name.is_some());

    if fit.should_run && pods.is_none() {
        decision.needs_pod = true;
    } else if fit.should_continue_running {
        let mut running: Vec<&Arc<Pod>> = Vec::new();
        for pod in named() {
            if is_terminating(pod) {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            match phase(pod) {
                Some("Failed") => {
                    let key = failed_pods_backoff_key(ds, node_name);
                    if backoff.is_in_backoff_since_update(&key, now) {
                        decision.requeue_after = earliest(decision.requeue_after, Some(backoff.get(&key)));
                        continue;
                    }
                    backoff.next(&key, now);
                    decision.events.push(PlannedEvent::warning(
                        FAILED_DAEMON_POD,
                        format!("Found failed daemon pod {namespace}/{name} on node {node_name}, will try to kill it"),
                    ));
                    decision.pods_to_delete.push(name);
                }
                Some("Succeeded") => {
                    decision.events.push(PlannedEvent::normal(
                        SUCCEEDED_DAEMON_POD,
                        format!("Found succeeded daemon pod {namespace}/{name} on node {node_name}, will try to delete it"),
                    ));
                    decision.pods_to_delete.push(name);
                }
                _ => running.push(pod),
            }
        }
        running.sort_by(|a, b| oldest_scheduled_first(a, b));
        let name_of = |pod: &Pod| pod.metadata.name.clone().unwrap_or_default();

        if !surge {
            // Keep the oldest scheduled pod, delete the rest. Never create here: a node whose only
            // pod is terminating or failed gets its replacement in a later sync.
            decision.pods_to_delete.extend(running.iter().skip(1).map(|p| name_of(p)));
        } else if running.is_empty() {
            // Surging: a node needs at least one non-deleted pod, even while an old one terminates.
            decision.needs_pod = fit.should_run;
        } else if running.len() > 1 {
            // Keep the oldest pod of the current revision and the oldest of any other revision.
            let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
            for pod in &running {
                let slot = if hash_label(pod).unwrap_or_default() == hash { &mut oldest_new } else { &mut oldest_old };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    decision.pods_to_delete.push(name_of(pod));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                // The old pod goes once it is not Ready, or once the new one is Available.
                if !is_ready(old) || is_available(new, min_ready_seconds(ds), now) {
                    decision.pods_to_delete.push(name_of(old));
                }
            }
        }
    } else if pods.is_some() {
        // The node no longer qualifies: delete every pod not already being deleted.
        decision.pods_to_delete.extend(
            named().filter(|p| !is_terminating(p)).filter_map(|p| p.metadata.name.clone()),
        );
    }
    decision
}

/// Pods grouped under a node that is not in `nodes` and that have no `spec.nodeName`: never
/// scheduled, so the pod garbage collector will not remove them (§3.5). In node-name order.
pub fn unscheduled_pods_without_node<N: Borrow<Node>>(nodes: &[N], node_pods: &NodePods) -> Vec<String> {
    let existing: HashSet<&str> = nodes.iter().filter_map(|n| n.borrow().metadata.name.as_deref()).collect();
    node_pods
        .iter()
        .filter(|(node, _)| !existing.contains(node.as_str()))
        .flat_map(|(_, pods)| pods.iter())
        .filter(|pod| pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default().is_empty())
        .filter_map(|pod| pod.metadata.name.clone())
        .collect()
}

/// The manage plan of one sync (upstream `manage` before `syncNodes`): every node's decision in
/// node-list order, then the unscheduled pods of nodes that no longer exist. `node_pods` holds the
/// claimed pods by node with terminal+terminating pods excluded. Nodes without a name are skipped.
pub fn plan_manage<N: Borrow<Node>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
) -> ManagePlan {
    let surge = allows_surge(ds);
    let mut plan = ManagePlan::default();
    for node in nodes {
        let node = node.borrow();
        let Some(name) = node.metadata.name.as_deref() else { continue };
        let pods = node_pods.get(name).map(Vec::as_slice);
        let decision = decide(node, pods, ds, hash, now, backoff, surge);
        if decision.needs_pod {
            plan.nodes_needing_pods.push(name.to_string());
        }
        plan.pods_to_delete.extend(decision.pods_to_delete);
        plan.events.extend(decision.events);
        plan.requeue_after = earliest(plan.requeue_after, decision.requeue_after);
    }
    plan.pods_to_delete.extend(unscheduled_pods_without_node(nodes, node_pods));
    plan
}
