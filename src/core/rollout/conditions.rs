//! DaemonSetRollout conditions and their mirror (stand-in until core-b's version merges).

use k8s_openapi::api::apps::v1::DaemonSetCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{DaemonSetRolloutStatus, FailingPod, HeldDeletions, Phase, RollbackStatus};
use crate::core::Timestamp;
use crate::core::events::PlannedEvent;

/// What the conditions are decided from.
#[derive(Debug, Clone, Copy)]
pub struct ConditionInput<'a> {
    pub phase: Phase,
    pub reason_detail: &'a str,
    pub deadline_exceeded: bool,
    pub failing: &'a [FailingPod],
    pub rollback: Option<&'a RollbackStatus>,
    pub rollback_impossible: Option<&'a str>,
    pub known_bad: bool,
    pub complete_revision_is_update: bool,
    pub held: Option<&'a HeldDeletions>,
    pub policy_done_reason: Option<&'static str>,
    pub invalid: Option<&'a str>,
    pub generation: Option<i64>,
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// The DaemonSetRollout's conditions (lastTransitionTime unset).
pub fn conditions(input: &ConditionInput) -> Vec<Condition> {
    let g = input.generation;
    let (status, reason) = if let Some(_m) = input.invalid {
        ("False", "RolloutPolicyInvalid")
    } else if input.deadline_exceeded {
        ("False", "ProgressDeadlineExceeded")
    } else {
        match input.phase {
            Phase::Progressing => ("True", "NodesUpdating"),
            Phase::Baking => ("True", "Baking"),
            Phase::Complete => ("True", "RolloutComplete"),
            Phase::Frozen => ("Unknown", "RolloutFrozen"),
            Phase::WaitingForApproval => ("Unknown", "WaitingForApproval"),
            Phase::Paused => (
                "Unknown",
                input.policy_done_reason.unwrap_or("RolloutPaused"),
            ),
            Phase::RolledBack => ("False", "RolledBack"),
            Phase::Failed if input.rollback_impossible.is_some() => ("False", "RollbackImpossible"),
            Phase::Failed if input.known_bad => ("False", "KnownBadRevision"),
            Phase::Failed => ("False", "RolloutFailed"),
        }
    };
    let mut out = vec![condition(
        "Progressing",
        status,
        reason,
        input.reason_detail,
        g,
    )];
    out.push(condition(
        "Complete",
        if input.complete_revision_is_update {
            "True"
        } else {
            "False"
        },
        if input.complete_revision_is_update {
            "RolloutComplete"
        } else {
            "NotComplete"
        },
        "",
        g,
    ));
    if !input.failing.is_empty() {
        let nodes: Vec<String> = input
            .failing
            .iter()
            .take(5)
            .map(|f| format!("{} {}", f.node, f.reason))
            .collect();
        out.push(condition(
            "Failed",
            "True",
            "NewPodsFailing",
            &nodes.join(", "),
            g,
        ));
    }
    if let Some(r) = input.rollback {
        out.push(condition(
            "RolledBack",
            "True",
            "FailurePolicy",
            &format!("from {} to {}: {}", r.from, r.to, r.reason),
            g,
        ));
    }
    if let Some(h) = input.held {
        out.push(condition(
            "DeletionsHeld",
            "True",
            "MassDeletionGuard",
            &format!("{} of {} pods would go", h.pods, h.of),
            g,
        ));
    }
    out
}

/// `new`, keeping `lastTransitionTime` from `previous` where the status did not change.
pub fn merge(previous: &[Condition], new: Vec<Condition>, now: Timestamp) -> Vec<Condition> {
    new.into_iter()
        .map(|mut c| {
            c.last_transition_time = match previous.iter().find(|p| p.type_ == c.type_) {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => Time(now),
            };
            c
        })
        .collect()
}

/// The conditions as the DaemonSet carries them.
pub fn mirror(conditions: &[Condition]) -> Vec<DaemonSetCondition> {
    conditions
        .iter()
        .map(|c| DaemonSetCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: Some(c.reason.clone()),
            message: Some(c.message.clone()),
            last_transition_time: Some(c.last_transition_time.clone()),
        })
        .collect()
}

/// Events for the phase change from `previous` to `next`.
pub fn transition_events(
    previous: &DaemonSetRolloutStatus,
    next: &DaemonSetRolloutStatus,
) -> Vec<PlannedEvent> {
    if previous.phase == next.phase {
        return Vec::new();
    }
    match next.phase {
        Some(Phase::Complete) => vec![PlannedEvent::normal("RolloutComplete", "rollout complete")],
        Some(Phase::Failed) => vec![PlannedEvent::warning("RolloutFailed", "rollout failed")],
        Some(Phase::RolledBack) => vec![PlannedEvent::warning("RolledBack", "rolled back")],
        _ => Vec::new(),
    }
}
