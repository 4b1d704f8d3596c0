//! Failing pods of the update revision (stand-in until core-b's version merges).

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;

use super::policy::Policy;
use crate::api::FailingPod;
use crate::core::Timestamp;
use crate::core::node_reason::failing_container;
use crate::core::pod_state::{is_terminating, is_updated, phase};
use crate::core::pods_by_node::NodePods;
use crate::core::status::template_generation;

/// Pods of revision `hash` on `wanted` nodes that fail: restarts above `maxRestarts`, a container
/// waiting in a failing reason, or phase Failed. Sorted by node, at most 20.
pub fn failing_pods(
    ds: &DaemonSet,
    wanted: &BTreeSet<String>,
    node_pods: &NodePods,
    hash: &str,
    policy: &Policy,
    _now: Timestamp,
) -> Vec<FailingPod> {
    let generation = template_generation(ds);
    let mut out = Vec::new();
    for (node, pods) in node_pods.iter().filter(|(n, _)| wanted.contains(*n)) {
        for pod in pods
            .iter()
            .filter(|p| !is_terminating(p) && is_updated(p, hash, generation))
        {
            let restarts = restarts(pod);
            let reason = if phase(pod) == "Failed" {
                Some("Failed".to_string())
            } else if let Some((_, reason, _)) = failing_container(pod) {
                Some(reason)
            } else if restarts > policy.max_restarts {
                Some("Restarts".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                out.push(FailingPod {
                    node: node.clone(),
                    pod: pod.metadata.name.clone().unwrap_or_default(),
                    reason,
                    restarts,
                });
            }
        }
    }
    out.truncate(20);
    out
}

/// The sum of a pod's container restarts.
pub fn restarts(pod: &k8s_openapi::api::core::v1::Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}
