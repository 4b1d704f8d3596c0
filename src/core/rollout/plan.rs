//! The composition of the rollout policy: [`plan_rollout`].
//!
//! Reads the facts, chooses the canary and waves, splits off the partition, finds the current
//! step, applies pacing, failure, rollback and the guard, and writes it all into one status.
//! Planning twice on the same input gives the same status and no events the second time.

use crate::core::cached_node::CachedNode;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{self, ConditionInput};
use super::deadline::progress_clock;
use super::facts::{NodeFacts, node_facts};
use super::failure::failing_pods;
use super::guard::held_deletions;
use super::order::{
    eligible, partition_count, partition_split, select_canary, update_order, waves,
};
use super::pacing::{next_start_at, pacing_anchor};
use super::phase::{Signals, next_phase};
use super::policy::{Policy, PolicyError};
use super::revisions::{last_complete_on_adoption, rollback_target};
use super::steps::{StepState, current_step, steps};
use super::{Mode, PolicyWait, RollbackOrder, RolloutInput, RolloutPlan};
use crate::api::{
    CanaryStatus, DaemonSetRolloutStatus, FailureAction, HeldDeletions, Phase, RollbackStatus,
    WaveStatus,
};
use crate::core::Timestamp;
use crate::core::pod_state::{hash_label, is_terminating, is_updated};
use crate::core::rolling_update::is_rolling_update;
use crate::core::status::template_generation;

/// Most wave node names kept in the status (`nodeCount` has them all).
const MAX_WAVE_NODES: usize = 100;
/// Most failed revisions kept in the status.
const MAX_FAILED_REVISIONS: usize = 5;

/// The policy's decision for one sync (see the module docs of `core::rollout`).
pub fn plan_rollout<N: Borrow<CachedNode>>(input: &RolloutInput<N>) -> RolloutPlan {
    match Policy::from_rollout(input.rollout) {
        Ok(policy) => plan_with(input, &policy),
        Err(error) => hold(input, &error),
    }
}

/// The previous status as this revision sees it: a new revision drops the step, canary, waves,
/// failures and the deadline clock, and keeps the last complete revision, the failed revisions
/// and the rollback record.
fn carried(previous: &DaemonSetRolloutStatus, hash: &str) -> DaemonSetRolloutStatus {
    if previous.update_revision.as_deref() == Some(hash) {
        return previous.clone();
    }
    DaemonSetRolloutStatus {
        last_complete_revision: previous.last_complete_revision.clone(),
        failed_revisions: previous.failed_revisions.clone(),
        rollback: previous.rollback.clone(),
        conditions: previous.conditions.clone(),
        phase: previous.phase,
        ..DaemonSetRolloutStatus::default()
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn until(now: Timestamp, at: Timestamp) -> Option<Duration> {
    (at > now)
        .then(|| now.duration_until(at).try_into().ok())
        .flatten()
}

/// The revision most not-yet-updated wanted nodes run (ties: the smallest hash), else `hash`.
fn current_revision(
    input: &RolloutInput<impl Borrow<CachedNode>>,
    wanted: &BTreeSet<String>,
) -> String {
    let generation = template_generation(input.ds);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, pods) in input.node_pods.iter().filter(|(n, _)| wanted.contains(*n)) {
        let live = pods.iter().filter(|p| !is_terminating(p));
        if live.clone().any(|p| is_updated(p, input.hash, generation)) {
            continue;
        }
        if let Some(h) = live.filter_map(|p| hash_label(p)).next() {
            *seen.entry(h).or_insert(0) += 1;
        }
    }
    let best = seen
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
    best.map_or_else(|| input.hash.to_string(), |(h, _)| h.to_string())
}

fn plan_with<N: Borrow<CachedNode>>(input: &RolloutInput<N>, policy: &Policy) -> RolloutPlan {
    let (ds, hash, now) = (input.ds, input.hash, input.now);
    let prev = carried(input.previous, hash);
    let facts = node_facts(ds, input.nodes, input.node_pods, hash, policy, now);
    let wanted: BTreeSet<String> = facts
        .iter()
        .filter(|(_, f)| f.should_run)
        .map(|(n, _)| n.clone())
        .collect();
    let eligible_nodes = eligible(&facts);
    let canary_nodes = match &policy.canary {
        Some(c) => select_canary(&eligible_nodes, &facts, c, prev.canary.as_ref(), hash),
        None => Vec::new(),
    };
    let wave_list = match &policy.waves {
        Some(w) => waves(&eligible_nodes, &facts, w, &canary_nodes),
        None => Vec::new(),
    };
    let order = update_order(&eligible_nodes, &facts, &canary_nodes, &wave_list);
    let partition = partition_count(policy, eligible_nodes.len());
    let (target, partition_held) = partition_split(&order, partition);
    let target_set: BTreeSet<String> = target.iter().cloned().collect();
    let step_list = steps(
        policy,
        &eligible_nodes,
        &canary_nodes,
        &wave_list,
        &target_set,
    );
    let mut sticky = BTreeMap::new();
    if let Some(t) = prev.canary.as_ref().and_then(|c| c.promoted_at.as_ref()) {
        sticky.insert("canary".to_string(), t.0);
    }
    for w in &prev.waves {
        if let Some(t) = &w.baked_at {
            sticky.insert(w.value.clone(), t.0);
        }
    }
    let step = current_step(
        &step_list,
        &facts,
        policy,
        &sticky,
        prev.step.as_ref(),
        hash,
        now,
    );

    let done = |n: &String| facts.get(n).is_some_and(NodeFacts::done);
    let updated = eligible_nodes.iter().filter(|n| facts[*n].updated).count();
    let available = eligible_nodes.iter().filter(|n| done(n)).count();
    let out_of_scope_outdated: Vec<&String> = facts
        .iter()
        .filter(|(_, f)| f.should_run && !f.in_scope && !f.done())
        .map(|(n, _)| n)
        .collect();
    let all_done = available == eligible_nodes.len();
    let target_done = target.iter().all(done) && step.current == step_list.len();
    let partition_left = partition_held.iter().any(|n| !done(n));
    let complete = all_done && partition == 0 && out_of_scope_outdated.is_empty();
    let policy_done =
        !complete && target_done && (partition_left || !out_of_scope_outdated.is_empty());

    // Failure, rollback, known-bad revisions.
    let failing = failing_pods(ds, &wanted, input.node_pods, hash, policy, now);
    let retry = policy.approvals.retry_revision.as_deref() == Some(hash);
    let abort = policy.approvals.abort_revision.as_deref() == Some(hash);
    let mut rollback = prev.rollback.clone();
    let mut failed_revisions = prev.failed_revisions.clone();
    let rollback_active = rollback.as_ref().is_some_and(|r| r.to == hash);
    let in_flight = rollback
        .as_ref()
        .filter(|r| r.from == hash && r.completed_at.is_none())
        .cloned();
    let known_bad = !rollback_active
        && in_flight.is_none()
        && failed_revisions.iter().any(|r| r == hash)
        && !retry;
    let sticky_failed = prev.phase == Some(Phase::Failed)
        && prev.update_revision.as_deref() == Some(hash)
        && !retry;
    let failure_now = !rollback_active && !known_bad && (!failing.is_empty() || sticky_failed);
    let wants_rollback = !rollback_active
        && in_flight.is_none()
        && !known_bad
        && (abort || (failure_now && policy.action == FailureAction::Rollback));
    let mut mode = if policy.frozen {
        Mode::Freeze
    } else {
        Mode::Act
    };
    let mut rollback_impossible = None;
    if let Some(r) = &in_flight {
        if !policy.frozen {
            let name = input
                .revisions
                .iter()
                .find(|x| x.hash == r.to)
                .map(|x| x.name.clone());
            if let Some(revision_name) = name {
                mode = Mode::Rollback(RollbackOrder {
                    from: r.from.clone(),
                    to: r.to.clone(),
                    revision_name,
                    reason: r.reason.clone(),
                });
            }
        }
    } else if wants_rollback {
        let reason = if abort {
            "aborted (kubectl everynode abort)".to_string()
        } else {
            failing.first().map_or_else(
                || "the rollout failed".to_string(),
                |f| format!("{} {} ({} restarts)", f.node, f.reason, f.restarts),
            )
        };
        match rollback_target(&prev, input.revisions, hash) {
            Ok(target) => {
                rollback = Some(RollbackStatus {
                    from: hash.to_string(),
                    to: target.hash.clone(),
                    reason: reason.clone(),
                    started_at: Some(Time(now)),
                    completed_at: None,
                });
                if !failed_revisions.iter().any(|r| r == hash) {
                    failed_revisions.push(hash.to_string());
                    let excess = failed_revisions.len().saturating_sub(MAX_FAILED_REVISIONS);
                    failed_revisions.drain(..excess);
                }
                if !policy.frozen {
                    mode = Mode::Rollback(RollbackOrder {
                        from: hash.to_string(),
                        to: target.hash,
                        revision_name: target.name,
                        reason,
                    });
                }
            }
            Err(why) => rollback_impossible = Some(why.to_string()),
        }
    }
    let rolling_back = matches!(mode, Mode::Rollback(_)) || in_flight.is_some();
    let failed = (failure_now || rollback_impossible.is_some()) && !rolling_back;
    if let Some(r) = rollback
        .as_mut()
        .filter(|r| rollback_active && all_done && r.completed_at.is_none())
    {
        r.completed_at = Some(Time(now));
    }

    // Every eligible node runs the update revision, available: nothing is left to start, so no
    // step bakes or waits for approval (a policy adopted on a complete DaemonSet, nodes that got
    // new pods from manage). The canary and waves are for replacing old pods.
    let already_complete = complete;
    let signals = Signals {
        frozen: policy.frozen,
        paused: policy.paused,
        rollback_active,
        failed: failed || rolling_back,
        known_bad,
        waiting_approval: step.waiting_approval && !already_complete,
        baking: step.baking && !already_complete,
        complete,
        policy_done,
    };
    let phase = next_phase(&signals);

    // Starts and pacing.
    let rollout = policy.name.clone();
    let mut waits: BTreeMap<String, PolicyWait> = BTreeMap::new();
    let candidates: Vec<&String> = order
        .iter()
        .filter(|n| step.allowed.contains(*n) && facts[*n].outdated_only())
        .collect();
    let anchor = pacing_anchor(
        prev.last_update_start_time.as_ref().map(|t| t.0),
        input.pods,
        hash,
        template_generation(ds),
    );
    let next_at =
        next_start_at(anchor, policy.min_seconds_between_node_updates).filter(|t| *t > now);
    let stopped = policy.paused || failed || known_bad || rolling_back;
    let starts: Option<BTreeSet<String>> = if rollback_active {
        (policy.paused).then(BTreeSet::new)
    } else if stopped || next_at.is_some() {
        Some(BTreeSet::new())
    } else if policy.min_seconds_between_node_updates > 0 {
        Some(
            candidates
                .first()
                .map(|n| (*n).clone())
                .into_iter()
                .collect(),
        )
    } else {
        Some(candidates.iter().map(|n| (*n).clone()).collect())
    };
    let failing_cause = failing.first().map_or_else(
        || {
            rollback_impossible
                .clone()
                .unwrap_or_else(|| "the rollout failed".into())
        },
        |f| format!("{} {} ({} restarts)", f.node, f.reason, f.restarts),
    );
    let partition_set: BTreeSet<&String> = partition_held.iter().collect();
    for (node, f) in &facts {
        if !f.should_run || !f.outdated_only() || starts.as_ref().is_none_or(|s| s.contains(node)) {
            continue;
        }
        let wait = if !f.in_scope {
            PolicyWait::OutOfScope {
                rollout: rollout.clone(),
                selector: policy.scope_text.clone().unwrap_or_default(),
            }
        } else if policy.paused {
            PolicyWait::Paused {
                rollout: rollout.clone(),
            }
        } else if known_bad {
            PolicyWait::KnownBad {
                rollout: rollout.clone(),
                revision: hash.to_string(),
            }
        } else if failed || rolling_back {
            PolicyWait::Failed {
                rollout: rollout.clone(),
                cause: failing_cause.clone(),
            }
        } else if partition_set.contains(node) {
            PolicyWait::Partition {
                rollout: rollout.clone(),
                partition: count(partition),
            }
        } else if step.waiting_approval {
            PolicyWait::Approval {
                rollout: rollout.clone(),
            }
        } else if !step.allowed.contains(node) {
            step_wait(&step, &step_list, &facts)
        } else {
            PolicyWait::Pacing {
                next_at: next_at.unwrap_or(now),
                seconds: i32::try_from(policy.min_seconds_between_node_updates).unwrap_or(i32::MAX),
            }
        };
        waits.insert(node.clone(), wait);
    }
    if policy.frozen {
        for (node, f) in &facts {
            let empty = input
                .node_pods
                .get(node)
                .is_none_or(|p| p.iter().all(|p| is_terminating(p)));
            if f.should_run && (empty || f.outdated_only()) {
                waits.insert(
                    node.clone(),
                    PolicyWait::Frozen {
                        rollout: rollout.clone(),
                    },
                );
            }
        }
    }

    // The guard.
    let held = held_deletions(
        input.nodes,
        &facts,
        input.node_pods,
        policy.max_deletions.as_ref(),
        policy.approvals.deletions_for_generation,
        ds.metadata.generation,
    );
    let keep = held.as_ref().map(|h| h.nodes.clone()).unwrap_or_default();
    if let Some(h) = &held {
        for node in &h.nodes {
            waits.insert(
                node.clone(),
                PolicyWait::DeletionHeld {
                    rollout: rollout.clone(),
                    pods: h.pods,
                    of: h.of,
                },
            );
        }
    }
    let held_deletions = held.as_ref().map(|h| HeldDeletions {
        pods: h.pods,
        of: h.of,
        daemon_set_generation: ds.metadata.generation.unwrap_or(0),
    });

    // Status.
    let mut status = DaemonSetRolloutStatus {
        observed_generation: input.rollout.metadata.generation,
        daemon_set_generation: ds.metadata.generation,
        phase: Some(phase),
        update_revision: Some(hash.to_string()),
        current_revision: Some(current_revision(input, &wanted)),
        last_complete_revision: prev.last_complete_revision.clone(),
        desired_nodes: count(eligible_nodes.len()),
        updated_nodes: count(updated),
        available_nodes: count(available),
        progress: Some(format!("{updated}/{}", eligible_nodes.len())),
        wave: step
            .status
            .as_ref()
            .filter(|s| s.name != "all")
            .map(|s| s.name.clone()),
        step: step.status.clone(),
        canary: policy.canary.as_ref().map(|_| CanaryStatus {
            revision: hash.to_string(),
            updated: count(canary_nodes.iter().filter(|n| facts[*n].updated).count()),
            available: count(canary_nodes.iter().filter(|n| done(n)).count()),
            nodes: canary_nodes.clone(),
            promoted_at: step.baked_at.get(&0).map(|t| Time(*t)),
        }),
        waves: wave_status(&step, &step_list, &facts, policy.canary.is_some()),
        last_update_start_time: if input.starts_issued {
            Some(Time(now))
        } else {
            prev.last_update_start_time.clone()
        },
        failing: failing.clone(),
        failed_revisions,
        rollback: rollback.clone(),
        held_deletions: held_deletions.clone(),
        ..DaemonSetRolloutStatus::default()
    };
    if input.previous.update_revision.is_none() && status.last_complete_revision.is_none() {
        status.last_complete_revision =
            last_complete_on_adoption(ds, &wanted, input.node_pods, hash, complete);
    }
    if phase == Phase::Complete {
        status.last_complete_revision = Some(hash.to_string());
    }
    let clock = progress_clock(
        &prev,
        hash,
        status.updated_nodes,
        status.available_nodes,
        // A rollout stopped by failing pods has made no progress either: its deadline still
        // runs, so pods that never become available give both Failed and
        // ProgressDeadlineExceeded (design §2.3).
        matches!(phase, Phase::Progressing | Phase::Failed),
        policy.progress_deadline_seconds,
        now,
    );
    status.last_progress_time = Some(Time(clock.last_progress));
    status.high_water = Some(clock.high_water);

    let detail = progress_message(&status, is_rolling_update(ds));
    let policy_done_reason =
        (phase == Phase::Paused && !policy.paused).then_some(if partition_left {
            "PartitionReached"
        } else {
            "OutOfScope"
        });
    let fresh = conditions::conditions(&ConditionInput {
        phase,
        reason_detail: &detail,
        deadline_exceeded: clock.exceeded,
        failing: &failing,
        rollback: rollback.as_ref(),
        rollback_impossible: rollback_impossible.as_deref(),
        known_bad,
        complete_revision_is_update: status.last_complete_revision.as_deref() == Some(hash),
        held: held_deletions.as_ref(),
        policy_done_reason,
        invalid: None,
        generation: input.rollout.metadata.generation,
    });
    status.conditions = conditions::merge(&input.previous.conditions, fresh, now);

    let pacing_wait = next_at
        .filter(|_| !stopped && !candidates.is_empty())
        .and_then(|t| until(now, t));
    let requeue_after = crate::core::earliest([
        step.bake_until.and_then(|t| until(now, t)),
        pacing_wait,
        clock.requeue_after,
    ]);
    RolloutPlan {
        mode,
        starts,
        keep,
        waits,
        ds_conditions: conditions::mirror(&status.conditions),
        events: conditions::transition_events(input.previous, &status),
        status,
        requeue_after,
    }
}

/// Why a node of a later step waits: for the canary, or for the current wave.
fn step_wait(
    step: &StepState,
    steps: &[super::steps::Step],
    facts: &BTreeMap<String, NodeFacts>,
) -> PolicyWait {
    let Some(current) = steps.get(step.current) else {
        return PolicyWait::Canary {
            nodes: Vec::new(),
            until: None,
        };
    };
    if current.canary {
        return PolicyWait::Canary {
            nodes: current.members.clone(),
            until: step.bake_until,
        };
    }
    let next = steps
        .get(step.current + 1)
        .map_or_else(String::new, |s| s.name.clone());
    let done = current
        .nodes
        .iter()
        .filter(|n| facts.get(*n).is_some_and(NodeFacts::done))
        .count();
    PolicyWait::Wave {
        wave: next,
        after: current.name.clone(),
        until: step.bake_until,
        done: count(done),
        total: count(current.nodes.len()),
    }
}

fn wave_status(
    step: &StepState,
    steps: &[super::steps::Step],
    facts: &BTreeMap<String, NodeFacts>,
    has_canary: bool,
) -> Vec<WaveStatus> {
    let first = usize::from(has_canary);
    steps
        .iter()
        .enumerate()
        .skip(first)
        .filter(|(_, s)| s.name != "all")
        .map(|(i, s)| WaveStatus {
            value: s.key.clone(),
            nodes: s.members.iter().take(MAX_WAVE_NODES).cloned().collect(),
            node_count: count(s.members.len()),
            updated: count(
                s.members
                    .iter()
                    .filter(|n| facts.get(*n).is_some_and(|f| f.updated))
                    .count(),
            ),
            available: count(
                s.members
                    .iter()
                    .filter(|n| facts.get(*n).is_some_and(NodeFacts::done))
                    .count(),
            ),
            baked_at: step.baked_at.get(&i).map(|t| Time(*t)),
        })
        .collect()
}

fn progress_message(status: &DaemonSetRolloutStatus, rolling: bool) -> String {
    if !rolling {
        return "updateStrategy OnDelete: the policy's update controls do not apply".into();
    }
    let mut m = format!(
        "{} of {} nodes updated, {} available",
        status.updated_nodes, status.desired_nodes, status.available_nodes
    );
    if let Some(w) = &status.wave {
        m.push_str(&format!("; step {w}"));
    }
    m
}

/// An unusable policy: nothing is created or deleted, the status says why.
fn hold<N: Borrow<CachedNode>>(input: &RolloutInput<N>, error: &PolicyError) -> RolloutPlan {
    let message = error.to_string();
    let name = input.rollout.metadata.name.clone().unwrap_or_default();
    let mut status = input.previous.clone();
    status.observed_generation = input.rollout.metadata.generation;
    status.daemon_set_generation = input.ds.metadata.generation;
    let fresh = conditions::conditions(&ConditionInput {
        phase: status.phase.unwrap_or(Phase::Progressing),
        reason_detail: &message,
        deadline_exceeded: false,
        failing: &[],
        rollback: None,
        rollback_impossible: None,
        known_bad: false,
        complete_revision_is_update: status.last_complete_revision.as_deref() == Some(input.hash),
        held: None,
        policy_done_reason: None,
        invalid: Some(&message),
        generation: input.rollout.metadata.generation,
    });
    status.conditions = conditions::merge(&input.previous.conditions, fresh, input.now);
    let waits = input
        .nodes
        .iter()
        .filter_map(|n| n.borrow().metadata.name.clone())
        .map(|n| {
            (
                n,
                PolicyWait::Invalid {
                    rollout: name.clone(),
                    message: message.clone(),
                },
            )
        })
        .collect();
    RolloutPlan {
        mode: Mode::Hold,
        starts: Some(BTreeSet::new()),
        ds_conditions: conditions::mirror(&status.conditions),
        events: conditions::transition_events(input.previous, &status),
        status,
        waits,
        ..RolloutPlan::default()
    }
}
