//! Which watch events should sync which DaemonSet (upstream's event handlers, §1.2–§1.5), as pure
//! decisions over the old and new objects.

use super::placement::placement;
use super::pod_state::is_ready;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::time::Duration;

/// A node update matters only when its labels or taints changed (status, allocatable, conditions
/// and heartbeats do not).
pub fn node_update_is_relevant(old: &Node, new: &Node) -> bool {
    let taints = |n: &Node| {
        n.spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
    };
    old.metadata.labels.clone().unwrap_or_default()
        != new.metadata.labels.clone().unwrap_or_default()
        || taints(old) != taints(new)
}

/// The node worker's rule (§1.5): sync `ds` for `node` when a pod must be created
/// (`shouldRun && !scheduled`), deleted (`!shouldContinueRunning && scheduled`), or the misscheduled
/// count may need correcting (`scheduled && numberMisscheduled > 0`). `scheduled` = the DaemonSet has
/// at least one pod on the node.
pub fn node_needs_sync(ds: &DaemonSet, node: &Node, scheduled: bool) -> bool {
    let p = placement(node, ds);
    let misscheduled = ds
        .status
        .as_ref()
        .map(|s| s.number_misscheduled)
        .unwrap_or(0);
    let must_create = p.should_run && !scheduled;
    let must_delete = !p.should_continue_running && scheduled;
    let fix_misscheduled = scheduled && misscheduled > 0;
    must_create || must_delete || fix_misscheduled
}

/// When a pod turned Ready and the DaemonSet has minReadySeconds, upstream syncs again after
/// `minReadySeconds + 1 s` so availability is counted without another event.
pub fn became_ready_requeue(old: &Pod, new: &Pod, min_ready_seconds: i32) -> Option<Duration> {
    (min_ready_seconds > 0 && !is_ready(old) && is_ready(new))
        .then(|| Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0) + 1))
}

/// Whether the labels of an object changed.
pub fn labels_changed(old: &ObjectMeta, new: &ObjectMeta) -> bool {
    old.labels.clone().unwrap_or_default() != new.labels.clone().unwrap_or_default()
}

/// The controller ownerReference's UID, if any.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};

    fn tainted(mut n: Node, key: &str, effect: &str) -> Node {
        n.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: key.into(),
                effect: effect.into(),
                value: None,
                time_added: None,
            }]),
            ..Default::default()
        });
        n
    }

    #[test]
    fn test_should_ignore_node_update_identical() {
        let n = node("node-0");
        assert!(!node_update_is_relevant(&n, &n.clone()));
    }

    #[test]
    fn test_should_ignore_node_update_labels_changed() {
        let old = node("node-0");
        let new = node_with_labels("node-0", &[("color", "blue")]);
        assert!(node_update_is_relevant(&old, &new));
    }

    #[test]
    fn test_should_ignore_node_update_taints_changed() {
        let old = node("node-0");
        let new = tainted(node("node-0"), "k", "NoSchedule");
        assert!(node_update_is_relevant(&old, &new));
    }

    #[test]
    fn test_update_node_allocatable_change_is_ignored() {
        let old = node("node-0");
        let mut new = node("node-0");
        new.status = Some(Default::default());
        new.metadata.resource_version = Some("99".into());
        assert!(!node_update_is_relevant(&old, &new));
    }

    #[test]
    fn node_worker_enqueues_only_when_something_must_change() {
        let ds = daemonset("foo");
        let n = node("node-0");
        assert!(
            node_needs_sync(&ds, &n, false),
            "should run, no pod: create"
        );
        assert!(
            !node_needs_sync(&ds, &n, true),
            "should run, has pod: nothing"
        );
        let noexec = tainted(node("node-0"), "k", "NoExecute");
        assert!(
            node_needs_sync(&ds, &noexec, true),
            "must not continue, has pod: delete"
        );
        assert!(
            !node_needs_sync(&ds, &noexec, false),
            "must not run, no pod: nothing"
        );
        let nosched = tainted(node("node-0"), "k", "NoSchedule");
        assert!(
            !node_needs_sync(&ds, &nosched, true),
            "may continue: nothing"
        );
        let mut miss = ds.clone();
        miss.status = Some(k8s_openapi::api::apps::v1::DaemonSetStatus {
            number_misscheduled: 1,
            ..Default::default()
        });
        assert!(
            node_needs_sync(&miss, &nosched, true),
            "misscheduled count may need fixing (#132459)"
        );
    }
}
