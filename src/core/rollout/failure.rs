//! Failing pods of the update revision: what the failure policy acts on (design §2.3 "Failure").
//!
//! A pod of the update revision on a wanted node is failing when its phase is Failed, or a
//! container waits with a reason in [`FAILING_CONTAINER_REASONS`] (the list `status` and `explain`
//! use), or its containers restarted more than `maxRestarts` times in all, or it is not available
//! `progressDeadlineSeconds` after its creation. The first that holds names the pod's reason, in
//! that order. Simplification of the design: a failing container counts at once, without the
//! design's 10 s grace (the status keeps no `since`).
//!
//! [`FAILING_CONTAINER_REASONS`]: crate::core::node_reason::FAILING_CONTAINER_REASONS

use std::collections::BTreeSet;

use crate::core::cached_pod::CachedPod;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::jiff::SignedDuration;

use crate::api::FailingPod;
use crate::core::Timestamp;
use crate::core::node_reason::failing_container;
use crate::core::pod_state::{
    is_available, is_terminating, is_updated, oldest_scheduled_first, phase,
};
use crate::core::pods_by_node::NodePods;
use crate::core::rollout::policy::Policy;
use crate::core::status::{min_ready_seconds, template_generation};

/// At most this many failing pods are listed in the status (`explain` has them all).
pub const MAX_FAILING: usize = 20;

/// Reason of a pod whose phase is Failed.
pub const REASON_FAILED: &str = "Failed";
/// Reason of a pod whose containers restarted more than `maxRestarts` times.
pub const REASON_RESTARTS: &str = "Restarts";
/// Reason of a pod not available `progressDeadlineSeconds` after its creation.
pub const REASON_NOT_AVAILABLE: &str = "NotAvailable";

/// The failing pods of revision `hash` on the `wanted` nodes, at most one per node (the first
/// failing one in upstream's keep order), sorted by node, at most [`MAX_FAILING`].
///
/// Terminating pods are not judged: they are on their way out already.
pub fn failing_pods(
    ds: &DaemonSet,
    wanted: &BTreeSet<String>,
    node_pods: &NodePods,
    hash: &str,
    policy: &Policy,
    now: Timestamp,
) -> Vec<FailingPod> {
    let generation = template_generation(ds);
    let min_ready = min_ready_seconds(ds);
    let mut out = Vec::new();
    for node in wanted {
        let Some(pods) = node_pods.get(node) else {
            continue;
        };
        let mut pods: Vec<&CachedPod> = pods
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| !is_terminating(p) && is_updated(p, hash, generation))
            .collect();
        pods.sort_by(|a, b| oldest_scheduled_first(a, b));
        let failing = pods.into_iter().find_map(|pod| {
            let reason = failing_reason(pod, policy, min_ready, now)?;
            Some(FailingPod {
                node: node.clone(),
                pod: pod.metadata.name.clone().unwrap_or_default(),
                reason,
                restarts: restarts(pod),
            })
        });
        out.extend(failing);
        if out.len() == MAX_FAILING {
            break;
        }
    }
    out
}

/// Why `pod` is failing, if it is.
fn failing_reason(
    pod: &CachedPod,
    policy: &Policy,
    min_ready: i32,
    now: Timestamp,
) -> Option<String> {
    if phase(pod) == "Failed" {
        return Some(REASON_FAILED.to_string());
    }
    if let Some((_, reason, _)) = failing_container(pod) {
        return Some(reason);
    }
    if restarts(pod) > policy.max_restarts {
        return Some(REASON_RESTARTS.to_string());
    }
    let created = pod.metadata.creation_timestamp.as_ref()?.0;
    let deadline = created
        .checked_add(SignedDuration::from_secs(policy.progress_deadline_seconds))
        .ok()?;
    (deadline <= now && !is_available(pod, min_ready, now))
        .then(|| REASON_NOT_AVAILABLE.to_string())
}

/// The pod's container restarts (init containers included), summed.
pub fn restarts(pod: &CachedPod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .fold(0, i32::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DaemonSetRolloutSpec;
    use crate::core::cached_pod::{CachedContainerState, CachedContainerStatus, CachedPodStatus};
    use crate::core::fixtures::*;
    use k8s_openapi::api::core::v1::ContainerStateWaiting;
    use proptest::prelude::*;
    use std::sync::Arc;

    const NEW: &str = "new";
    const OLD: &str = "old";

    fn policy(max_restarts: i32, deadline: i32) -> Policy {
        let spec = DaemonSetRolloutSpec {
            failure_policy: Some(crate::api::FailurePolicy {
                max_restarts: Some(max_restarts),
                ..Default::default()
            }),
            progress_deadline_seconds: Some(deadline),
            ..Default::default()
        };
        Policy::from_spec("agent", Some(1), &spec).unwrap_or_else(|e| panic!("{e}"))
    }

    fn with_container(mut pod: CachedPod, restarts: i32, waiting: Option<&str>) -> CachedPod {
        let status = pod.status.get_or_insert_with(CachedPodStatus::default);
        status.container_statuses = Some(vec![CachedContainerStatus {
            name: "app".into(),
            restart_count: restarts,
            state: waiting.map(|r| CachedContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(r.into()),
                    message: None,
                }),
            }),
        }]);
        pod
    }

    fn pods(list: Vec<(&str, CachedPod)>) -> NodePods {
        let mut out = NodePods::default();
        for (node, pod) in list {
            out.entry(node.to_string()).or_default().push(Arc::new(pod));
        }
        out
    }

    fn wanted(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn reasons(found: &[FailingPod]) -> Vec<(&str, &str)> {
        found
            .iter()
            .map(|f| (f.node.as_str(), f.reason.as_str()))
            .collect()
    }

    #[test]
    fn each_cause_names_its_reason() {
        let ds = daemonset("agent");
        let ok = |n| running_ready(ds_pod(&ds, n, NEW), 0);
        let node_pods = pods(vec![
            ("a", with_phase(ds_pod(&ds, "a", NEW), "Failed")),
            ("b", with_container(ok("b"), 1, Some("CrashLoopBackOff"))),
            ("c", with_container(ok("c"), 3, None)),
            (
                "d",
                with_creation_timestamp(with_ready(ds_pod(&ds, "d", NEW), false, 0), 0),
            ),
            ("e", with_container(ok("e"), 2, None)),
            (
                "f",
                with_container(ds_pod(&ds, "f", NEW), 0, Some("ImagePullBackOff")),
            ),
            (
                "g",
                with_creation_timestamp(
                    with_container(ds_pod(&ds, "g", NEW), 0, Some("ContainerCreating")),
                    100,
                ),
            ),
        ]);
        let found = failing_pods(
            &ds,
            &wanted(&["a", "b", "c", "d", "e", "f", "g"]),
            &node_pods,
            NEW,
            &policy(2, 600),
            ts(600),
        );
        assert_eq!(
            reasons(&found),
            vec![
                ("a", "Failed"),
                ("b", "CrashLoopBackOff"),
                ("c", "Restarts"),
                ("d", "NotAvailable"),
                ("f", "ImagePullBackOff"),
            ]
        );
        assert_eq!(found[2].restarts, 3);
        assert_eq!(found[0].pod, "agent-a");
    }

    #[test]
    fn a_pod_is_not_judged_unavailable_before_the_deadline() {
        let ds = daemonset("agent");
        let node_pods = pods(vec![(
            "a",
            with_creation_timestamp(ds_pod(&ds, "a", NEW), 100),
        )]);
        let p = policy(2, 600);
        assert!(failing_pods(&ds, &wanted(&["a"]), &node_pods, NEW, &p, ts(699)).is_empty());
        assert_eq!(
            reasons(&failing_pods(
                &ds,
                &wanted(&["a"]),
                &node_pods,
                NEW,
                &p,
                ts(700)
            )),
            vec![("a", "NotAvailable")]
        );
    }

    #[test]
    fn old_revision_unwanted_and_terminating_pods_do_not_count() {
        let ds = daemonset("agent");
        let crash = |n, h| with_container(ds_pod(&ds, n, h), 9, Some("CrashLoopBackOff"));
        let node_pods = pods(vec![
            ("old", crash("old", OLD)),
            ("gone", crash("gone", NEW)),
            ("dying", with_deletion_timestamp(crash("dying", NEW), 5)),
        ]);
        let found = failing_pods(
            &ds,
            &wanted(&["old", "dying"]),
            &node_pods,
            NEW,
            &policy(2, 600),
            ts(10),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn at_most_twenty_sorted_by_node() {
        let ds = daemonset("agent");
        let names: Vec<String> = (0..30).map(|i| format!("n{i:02}")).collect();
        let node_pods = pods(
            names
                .iter()
                .rev()
                .map(|n| (n.as_str(), with_phase(ds_pod(&ds, n, NEW), "Failed")))
                .collect(),
        );
        let all: BTreeSet<String> = names.iter().cloned().collect();
        let found = failing_pods(&ds, &all, &node_pods, NEW, &policy(2, 600), ts(0));
        assert_eq!(found.len(), MAX_FAILING);
        let nodes: Vec<&str> = found.iter().map(|f| f.node.as_str()).collect();
        let expected: Vec<&str> = names.iter().take(MAX_FAILING).map(String::as_str).collect();
        assert_eq!(nodes, expected);
    }

    proptest! {
        /// Failing is deterministic: the same pods in any order on their nodes give the same list.
        #[test]
        fn failing_is_deterministic(
            kinds in proptest::collection::vec((0u8..6, 0i32..5, 0u8..3), 1..25),
            seed in any::<u64>(),
        ) {
            let ds = daemonset("agent");
            let mut list = Vec::new();
            for (i, (kind, restarts, node)) in kinds.iter().enumerate() {
                let node = ["a", "b", "c"][usize::from(*node)];
                let pod = with_name(ds_pod(&ds, node, if kind % 2 == 0 { NEW } else { OLD }), &format!("p{i}"));
                let pod = with_creation_timestamp(pod, i64::from(*restarts) * 100);
                let pod = match kind {
                    0 | 1 => with_container(running_ready(pod, 0), *restarts, None),
                    2 | 3 => with_container(pod, *restarts, Some("CrashLoopBackOff")),
                    _ => with_phase(pod, "Failed"),
                };
                list.push((node, pod));
            }
            let mut shuffled = list.clone();
            let n = shuffled.len();
            for i in 0..n {
                let j = usize::try_from((seed.rotate_left(u32::try_from(i).unwrap_or(0))) % (n as u64)).unwrap_or(0);
                shuffled.swap(i, j);
            }
            let p = policy(2, 300);
            let all = wanted(&["a", "b", "c"]);
            let one = failing_pods(&ds, &all, &pods(list), NEW, &p, ts(350));
            let two = failing_pods(&ds, &all, &pods(shuffled), NEW, &p, ts(350));
            prop_assert_eq!(&one, &two);
            prop_assert!(one.windows(2).all(|w| w[0].node < w[1].node));
        }
    }
}
