//! The DaemonSetRollout's conditions, their mirror on the DaemonSet, and the events of their
//! transitions (design §2.4 "Conditions").
//!
//! Five condition types are ours: `Progressing` (always; Deployments' names and meaning),
//! `Complete` (always), and `Failed`, `RolledBack`, `DeletionsHeld` (present only while true).
//! [`conditions`] decides them with a placeholder `lastTransitionTime`; [`merge`] keeps the
//! previous time when the status did not change, so planning twice gives the same status. The
//! mirror on `DaemonSet.status.conditions` carries the same type, status, reason, message and time;
//! [`mirror_patch`] touches only our types there.

use k8s_openapi::api::apps::v1::DaemonSetCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};

use crate::api::{DaemonSetRolloutStatus, FailingPod, HeldDeletions, Phase, RollbackStatus};
use crate::core::Timestamp;
use crate::core::events::{self, PlannedEvent};
use crate::core::node_reason::utc;

/// Whether the rollout moves (Deployments' condition type).
pub const PROGRESSING: &str = "Progressing";
/// Whether the update revision ran on every eligible node (`lastCompleteRevision`).
pub const COMPLETE: &str = "Complete";
/// Whether pods of the update revision are failing.
pub const FAILED: &str = "Failed";
/// Whether the update revision is a rollback's target.
pub const ROLLED_BACK: &str = "RolledBack";
/// Whether the mass-deletion guard holds deletions.
pub const DELETIONS_HELD: &str = "DeletionsHeld";
/// Our condition types, in the order [`conditions`] lists them; the mirror touches only these.
pub const OUR_TYPES: [&str; 5] = [PROGRESSING, COMPLETE, FAILED, ROLLED_BACK, DELETIONS_HELD];

/// `Progressing` reasons.
pub mod reason {
    pub const NODES_UPDATING: &str = "NodesUpdating";
    pub const BAKING: &str = "Baking";
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    pub const ROLLOUT_PAUSED: &str = "RolloutPaused";
    pub const ROLLOUT_FROZEN: &str = "RolloutFrozen";
    pub const WAITING_FOR_APPROVAL: &str = "WaitingForApproval";
    pub const PARTITION_REACHED: &str = "PartitionReached";
    pub const OUT_OF_SCOPE: &str = "OutOfScope";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const ROLLBACK_IMPOSSIBLE: &str = "RollbackImpossible";
    pub const KNOWN_BAD_REVISION: &str = "KnownBadRevision";
    pub const ROLLOUT_POLICY_INVALID: &str = "RolloutPolicyInvalid";
    /// `Complete` False.
    pub const NOT_COMPLETE: &str = "NotComplete";
    /// `Failed` True.
    pub const NEW_PODS_FAILING: &str = "NewPodsFailing";
    /// `RolledBack` True, by the failure policy.
    pub const FAILURE_POLICY: &str = "FailurePolicy";
    /// `RolledBack` True, by `kubectl everynode abort`.
    pub const ABORTED: &str = "Aborted";
    /// `DeletionsHeld` True.
    pub const MASS_DELETION_GUARD: &str = "MassDeletionGuard";
}

/// The `status.rollback.reason` of a rollback by `kubectl everynode abort`
/// (`approvals.abortRevision`); `RolledBack`'s reason is then `Aborted`, else `FailurePolicy`.
pub const ABORT_REASON: &str = "aborted by kubectl everynode abort";

/// Failing pods named in the `Failed` condition's message.
const FAILING_IN_MESSAGE: usize = 5;

/// What the conditions are decided from.
#[derive(Debug, Clone, Copy)]
pub struct ConditionInput<'a> {
    pub phase: Phase,
    /// The `Progressing` message (the hold, the step, the failure); empty: a default per reason.
    pub reason_detail: &'a str,
    /// The progress deadline passed (`deadline::Clock::exceeded`): wins `Progressing`.
    pub deadline_exceeded: bool,
    pub failing: &'a [FailingPod],
    /// The rollback while the update revision is its target (`hash == rollback.to`), else `None`.
    pub rollback: Option<&'a RollbackStatus>,
    /// Why a rollback the failure policy asked for is impossible.
    pub rollback_impossible: Option<&'a str>,
    /// The update revision is in `failedRevisions` and not retried.
    pub known_bad: bool,
    /// `lastCompleteRevision == updateRevision`.
    pub complete_revision_is_update: bool,
    pub held: Option<&'a HeldDeletions>,
    /// `PartitionReached` or `OutOfScope` when phase Paused comes from the policy being done
    /// (pass `None` when `spec.paused`).
    pub policy_done_reason: Option<&'static str>,
    /// The policy cannot be used (`Mode::Hold`): why. Wins `Progressing`.
    pub invalid: Option<&'a str>,
    /// The DaemonSetRollout's generation (each condition's `observedGeneration`).
    pub generation: Option<i64>,
}

/// The conditions for `input`, in [`OUR_TYPES`] order, `lastTransitionTime` left for [`merge`].
pub fn conditions(input: &ConditionInput) -> Vec<Condition> {
    let make = |type_: &str, status: &str, reason: &str, message: String| Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: input.generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    };
    let (status, why, default) = progressing(input);
    let message = if input.reason_detail.is_empty() || input.invalid.is_some() {
        default
    } else if input.deadline_exceeded {
        format!("{default}: {}", input.reason_detail)
    } else {
        input.reason_detail.to_string()
    };
    let mut out = vec![make(PROGRESSING, status, why, message)];
    out.push(if input.complete_revision_is_update {
        make(
            COMPLETE,
            "True",
            reason::ROLLOUT_COMPLETE,
            "the update revision ran on every eligible node, updated and available".to_string(),
        )
    } else {
        make(
            COMPLETE,
            "False",
            reason::NOT_COMPLETE,
            "the update revision has not yet run on every eligible node".to_string(),
        )
    });
    if !input.failing.is_empty() {
        out.push(make(
            FAILED,
            "True",
            reason::NEW_PODS_FAILING,
            failing_message(input.failing),
        ));
    }
    if let Some(r) = input.rollback {
        let why = if r.reason == ABORT_REASON {
            reason::ABORTED
        } else {
            reason::FAILURE_POLICY
        };
        out.push(make(ROLLED_BACK, "True", why, rollback_message(r)));
    }
    if let Some(h) = input.held {
        out.push(make(
            DELETIONS_HELD,
            "True",
            reason::MASS_DELETION_GUARD,
            held_message(h),
        ));
    }
    out
}

/// `Progressing`: (status, reason, default message).
fn progressing(input: &ConditionInput) -> (&'static str, &'static str, String) {
    if let Some(why) = input.invalid {
        return (
            "False",
            reason::ROLLOUT_POLICY_INVALID,
            format!("the DaemonSetRollout cannot be used: {why}"),
        );
    }
    if input.deadline_exceeded {
        return (
            "False",
            reason::PROGRESS_DEADLINE_EXCEEDED,
            "no progress within progressDeadlineSeconds".to_string(),
        );
    }
    match input.phase {
        Phase::Frozen => (
            "Unknown",
            reason::ROLLOUT_FROZEN,
            "frozen: no pod is created or deleted".to_string(),
        ),
        Phase::Paused => match input.policy_done_reason {
            Some(why) => (
                "Unknown",
                why,
                "every node the policy lets update is done; held nodes remain".to_string(),
            ),
            None => (
                "Unknown",
                reason::ROLLOUT_PAUSED,
                "paused: no old pod is replaced".to_string(),
            ),
        },
        Phase::RolledBack => (
            "False",
            reason::ROLLED_BACK,
            input
                .rollback
                .map_or_else(|| "rolled back".to_string(), rollback_message),
        ),
        Phase::Failed => match (input.rollback_impossible, input.known_bad) {
            (Some(why), _) => (
                "False",
                reason::ROLLBACK_IMPOSSIBLE,
                format!("new pods fail and the rollback is impossible: {why}"),
            ),
            (None, true) => (
                "False",
                reason::KNOWN_BAD_REVISION,
                "the update revision failed before and is not rolled out again by itself"
                    .to_string(),
            ),
            (None, false) => (
                "False",
                reason::ROLLOUT_FAILED,
                failing_message(input.failing),
            ),
        },
        Phase::WaitingForApproval => (
            "Unknown",
            reason::WAITING_FOR_APPROVAL,
            "the canary baked and waits for approval".to_string(),
        ),
        Phase::Baking => ("True", reason::BAKING, "the current step bakes".to_string()),
        Phase::Complete => (
            "True",
            reason::ROLLOUT_COMPLETE,
            "every eligible node runs the update revision, available".to_string(),
        ),
        Phase::Progressing => (
            "True",
            reason::NODES_UPDATING,
            "nodes are updating".to_string(),
        ),
    }
}

/// "2 new pods failing: node-a CrashLoopBackOff (5 restarts), node-b ImagePullBackOff".
fn failing_message(failing: &[FailingPod]) -> String {
    if failing.is_empty() {
        return "new pods failed".to_string();
    }
    let mut parts: Vec<String> = failing
        .iter()
        .take(FAILING_IN_MESSAGE)
        .map(|f| match f.restarts {
            0 => format!("{} {}", f.node, f.reason),
            1 => format!("{} {} (1 restart)", f.node, f.reason),
            n => format!("{} {} ({n} restarts)", f.node, f.reason),
        })
        .collect();
    if failing.len() > FAILING_IN_MESSAGE {
        parts.push(format!("and {} more", failing.len() - FAILING_IN_MESSAGE));
    }
    let count = failing.len();
    let pods = if count == 1 { "pod" } else { "pods" };
    format!("{count} new {pods} failing: {}", parts.join(", "))
}

/// "from X to Y at T: reason".
fn rollback_message(r: &RollbackStatus) -> String {
    match &r.started_at {
        Some(t) => format!("from {} to {} at {}: {}", r.from, r.to, utc(t.0), r.reason),
        None => format!("from {} to {}: {}", r.from, r.to, r.reason),
    }
}

fn held_message(h: &HeldDeletions) -> String {
    format!(
        "{} of {} pods would be deleted at once; kubectl everynode approve lets DaemonSet \
         generation {} through, or revert the change",
        h.pods, h.of, h.daemon_set_generation
    )
}

/// `new` with each condition's `lastTransitionTime` kept from `previous` when its status did not
/// change, else `now` (whole seconds, as the API stores it). Idempotent.
pub fn merge(previous: &[Condition], new: Vec<Condition>, now: Timestamp) -> Vec<Condition> {
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    new.into_iter()
        .map(|mut c| {
            c.last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            c
        })
        .collect()
}

/// The conditions as `DaemonSet.status.conditions` entries (an empty message is left out, as the
/// API server drops it).
pub fn mirror(conditions: &[Condition]) -> Vec<DaemonSetCondition> {
    conditions
        .iter()
        .map(|c| DaemonSetCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: (!c.reason.is_empty()).then(|| c.reason.clone()),
            message: (!c.message.is_empty()).then(|| c.message.clone()),
            last_transition_time: Some(c.last_transition_time.clone()),
        })
        .collect()
}

/// The strategic-merge-patch body for `daemonsets/status` that makes the DaemonSet's conditions of
/// [`OUR_TYPES`] equal `ours`: each of ours that differs from `current`, and
/// `{"type": T, "$patch": "delete"}` for our types in `current` but not in `ours`. Other writers'
/// conditions are untouched. `None` when nothing differs. Times compare in whole seconds.
pub fn mirror_patch(current: &[DaemonSetCondition], ours: &[DaemonSetCondition]) -> Option<Value> {
    let seconds = |c: &DaemonSetCondition| c.last_transition_time.as_ref().map(|t| t.0.as_second());
    let same = |a: &DaemonSetCondition, b: &DaemonSetCondition| {
        a.status == b.status
            && a.reason == b.reason
            && a.message.as_deref().unwrap_or_default() == b.message.as_deref().unwrap_or_default()
            && seconds(a) == seconds(b)
    };
    let mut entries: Vec<Value> = ours
        .iter()
        .filter(|o| !current.iter().any(|c| c.type_ == o.type_ && same(c, o)))
        .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
        .filter(|v| !v.is_null())
        .collect();
    let mut gone: Vec<&str> = current
        .iter()
        .map(|c| c.type_.as_str())
        .filter(|t| OUR_TYPES.contains(t) && !ours.iter().any(|o| o.type_ == *t))
        .collect();
    gone.dedup();
    entries.extend(
        gone.into_iter()
            .map(|t| json!({"type": t, "$patch": "delete"})),
    );
    (!entries.is_empty()).then(|| json!({"status": {"conditions": entries}}))
}

/// The events of the transitions from `previous` to `next` (phase, step, bake, promotion, rollback,
/// deadline and guard changes only). Planning twice on the same inputs gives none the second time.
pub fn transition_events(
    previous: &DaemonSetRolloutStatus,
    next: &DaemonSetRolloutStatus,
) -> Vec<PlannedEvent> {
    let mut out = Vec::new();
    let same_revision = previous.update_revision == next.update_revision;
    let revision = next.update_revision.as_deref().unwrap_or_default();

    if let Some(step) = &next.step {
        let before = previous.step.as_ref().filter(|_| same_revision);
        if before.is_none_or(|b| (b.index, &b.name) != (step.index, &step.name)) {
            out.push(PlannedEvent::normal(
                events::ROLLOUT_STEP_STARTED,
                format!(
                    "revision {revision}: step {} ({}) started",
                    step.index, step.name
                ),
            ));
        }
    }
    for wave in next.waves.iter().filter(|w| w.baked_at.is_some()) {
        let baked_before = same_revision
            && previous
                .waves
                .iter()
                .any(|w| w.value == wave.value && w.baked_at.is_some());
        if !baked_before {
            let value = if wave.value.is_empty() {
                "(no label)"
            } else {
                wave.value.as_str()
            };
            out.push(PlannedEvent::normal(
                events::ROLLOUT_BAKED,
                format!("revision {revision}: wave {value} baked"),
            ));
        }
    }
    if let Some(canary) = next.canary.as_ref().filter(|c| c.promoted_at.is_some()) {
        let promoted_before = previous
            .canary
            .as_ref()
            .is_some_and(|c| c.revision == canary.revision && c.promoted_at.is_some());
        if !promoted_before {
            out.push(PlannedEvent::normal(
                events::CANARY_PROMOTED,
                format!(
                    "revision {}: canary promoted ({})",
                    canary.revision,
                    canary.nodes.join(", ")
                ),
            ));
        }
    }
    let entered = |phase: Phase| {
        next.phase == Some(phase) && (previous.phase != Some(phase) || !same_revision)
    };
    let progressing = find(&next.conditions, PROGRESSING);
    let progressing_message = progressing.map(|c| c.message.clone()).unwrap_or_default();
    if entered(Phase::WaitingForApproval) {
        out.push(PlannedEvent::normal(
            events::ROLLOUT_WAITING_FOR_APPROVAL,
            format!(
                "revision {revision}: the canary baked and waits for kubectl everynode approve"
            ),
        ));
    }
    if entered(Phase::Complete) {
        out.push(PlannedEvent::normal(
            events::ROLLOUT_COMPLETE,
            format!(
                "revision {revision} runs on {} nodes, available",
                next.available_nodes
            ),
        ));
    }
    if entered(Phase::Failed) {
        out.push(PlannedEvent::warning(
            events::ROLLOUT_FAILED,
            format!("revision {revision}: {progressing_message}"),
        ));
    }
    if let Some(r) = &next.rollback {
        let key = |r: &RollbackStatus| (r.from.clone(), r.to.clone(), r.started_at.clone());
        if previous.rollback.as_ref().map(key) != Some(key(r)) {
            out.push(PlannedEvent::warning(
                events::ROLLED_BACK,
                format!("rolled back {}", rollback_message(r)),
            ));
        }
    }
    let exceeded = |s: &DaemonSetRolloutStatus| {
        find(&s.conditions, PROGRESSING)
            .is_some_and(|c| c.reason == reason::PROGRESS_DEADLINE_EXCEEDED)
    };
    if exceeded(next) && !exceeded(previous) {
        out.push(PlannedEvent::warning(
            events::PROGRESS_DEADLINE_EXCEEDED,
            format!("revision {revision}: {progressing_message}"),
        ));
    }
    if let Some(h) = &next.held_deletions {
        let before = previous
            .held_deletions
            .as_ref()
            .map(|p| p.daemon_set_generation);
        if before != Some(h.daemon_set_generation) {
            out.push(PlannedEvent::warning(
                events::MASS_DELETION_HELD,
                held_message(h),
            ));
        }
    }
    out
}

fn find<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests;
