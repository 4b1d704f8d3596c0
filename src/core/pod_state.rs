//! Facts about one pod: ready, available, terminal, terminating, updated, and the order that decides
//! which of several pods on a node is kept (§3.4, §5, §5.4).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use std::cmp::Ordering;

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    todo!("{pod:?}")
}

/// Ready, and ready for at least `min_ready_seconds` at `now` (Ready condition's lastTransitionTime).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    todo!("{pod:?} {min_ready_seconds} {now}")
}

/// Phase Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    todo!("{pod:?}")
}

/// Has a deletionTimestamp.
pub fn is_terminating(pod: &Pod) -> bool {
    todo!("{pod:?}")
}

/// Upstream `IsPodUpdated`: the hash label equals a non-empty `hash`, or the `pod-template-generation`
/// label equals `template_generation` as a decimal string.
pub fn is_updated(pod: &Pod, hash: &str, template_generation: Option<i64>) -> bool {
    todo!("{pod:?} {hash} {template_generation:?}")
}

/// The pod's `controller-revision-hash` label.
pub fn hash_label(pod: &Pod) -> Option<&str> {
    todo!("{pod:?}")
}

/// Upstream's keep order: pods with `spec.nodeName` first, then older creationTimestamp, then name.
pub fn oldest_scheduled_first(a: &Pod, b: &Pod) -> Ordering {
    todo!("{a:?} {b:?}")
}
