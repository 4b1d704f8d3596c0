//! Events the controller emits, with upstream's reasons and messages (§8).

/// Normal or Warning, as in the Events API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// An event the core decided on; the shell publishes it on the DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

pub const SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
pub const FAILED_CREATE: &str = "FailedCreate";
pub const SUCCESSFUL_DELETE: &str = "SuccessfulDelete";
pub const FAILED_DELETE: &str = "FailedDelete";
pub const FAILED_DAEMON_POD: &str = "FailedDaemonPod";
pub const SUCCEEDED_DAEMON_POD: &str = "SucceededDaemonPod";
pub const SELECTING_ALL: &str = "SelectingAll";
/// [difference] Not emitted upstream: a rolling-update budget that does not parse or is negative.
pub const INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
/// [difference] Not emitted upstream: a selector that does not parse or does not match the template.
pub const INVALID_SELECTOR: &str = "InvalidSelector";
/// [difference] Not emitted upstream: a DaemonSet without a spec.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// [difference] Not emitted upstream: revision numbers reached the largest number they can hold.
pub const REVISION_NUMBER_OVERFLOW: &str = "RevisionNumberOverflow";
/// [difference] Not emitted upstream: a spec change left the DaemonSet wanting no node, or fewer
/// than half of the nodes it wanted (`core::shrink`).
pub const SELECTS_FEW_NODES: &str = "SelectsFewNodes";
/// [difference] Not emitted upstream: the DaemonSet's pods the scheduler cannot place, by the
/// scheduler's message (`core::unschedulable`). Not `FailedScheduling`, the scheduler's own reason
/// on each pod.
pub const PODS_UNSCHEDULABLE: &str = "PodsUnschedulable";

impl PlannedEvent {
    pub fn normal(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason,
            message: message.into(),
        }
    }
    pub fn warning(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            reason,
            message: message.into(),
        }
    }
}
