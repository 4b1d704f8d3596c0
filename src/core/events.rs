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
/// [difference] Not emitted upstream: a `DaemonSetRollout` step (the canary, a wave, or "all")
/// started updating nodes.
pub const ROLLOUT_STEP_STARTED: &str = "RolloutStepStarted";
/// [difference] Not emitted upstream: a `DaemonSetRollout` wave stayed updated and available,
/// with no restart, for its bake time.
pub const ROLLOUT_BAKED: &str = "RolloutBaked";
/// [difference] Not emitted upstream: a `DaemonSetRollout` canary baked (and was approved, when
/// Manual); the rollout moves past it.
pub const CANARY_PROMOTED: &str = "CanaryPromoted";
/// [difference] Not emitted upstream: a Manual canary baked and waits for
/// `kubectl everynode approve`.
pub const ROLLOUT_WAITING_FOR_APPROVAL: &str = "RolloutWaitingForApproval";
/// [difference] Not emitted upstream: every node a `DaemonSetRollout` lets update runs the update
/// revision, available.
pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
/// [difference] Not emitted upstream: pods of the update revision are failing (failure policy
/// Pause, no revision to roll back to, or a revision that failed before).
pub const ROLLOUT_FAILED: &str = "RolloutFailed";
/// [difference] Not emitted upstream: the template of the last complete revision was written back
/// (failure policy Rollback, or `kubectl everynode abort`).
pub const ROLLED_BACK: &str = "RolledBack";
/// [difference] Not emitted upstream: a `DaemonSetRollout` made no progress for
/// `progressDeadlineSeconds` (Deployments' condition reason, as an event).
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// [difference] Not emitted upstream: the mass-deletion guard holds the deletion of more pods than
/// `massDeletionGuard.maxDeletions` allows at once.
pub const MASS_DELETION_HELD: &str = "MassDeletionHeld";

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
