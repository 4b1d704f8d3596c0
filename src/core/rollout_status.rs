//! The rollout's verdict for `everynode status`: complete, progressing (how far, and the nodes still
//! to do with their reasons) or cannot progress (and why), from the DaemonSet as the API server holds
//! it, the explanation of its nodes ([`crate::core::node_reason`]), the progress seen so far and the
//! clock.
//!
//! The rules, in the order [`verdict`] applies them:
//!
//! 1. **Complete** is what `kubectl rollout status` waits for, on the status the API server holds:
//!    `status.observedGeneration ≥ metadata.generation`, `updatedNumberScheduled ≥
//!    desiredNumberScheduled` and `numberAvailable ≥ desiredNumberScheduled`. DESIRED 0 is complete
//!    too, with a warning: the DaemonSet selects no node (the explanation says which rule excluded
//!    the nodes; a typo'd nodeSelector must not pass silently for a successful rollout).
//! 2. **maxUnavailable** (the question kubernetes#73667 left open): pods still unavailable within
//!    `maxUnavailable` do not make a rollout complete. Complete means every desired pod updated
//!    *and available*, the contract kubectl and the built-in controller share (#44672 removed the
//!    budget from kubectl's check, #73667 asked for it back and was held because one client must not
//!    change what "complete" means). everynode says it plainly instead: the progress line notes that
//!    the unavailable pods are within the budget, names their nodes and reasons, and the progress
//!    deadline ends the wait if they stay unavailable.
//! 3. **Cannot progress, at once**: a node's *new* pod (of the current revision) that will not become
//!    available by waiting — the scheduler cannot place it, a container is crash-looping or its image
//!    cannot be pulled (`FAILING_CONTAINER_REASONS`), or the pod failed — once that has been seen
//!    for [`Limits::failure_grace`] without interruption. Nodes that are *settling* (a pod there is
//!    still terminating, or the scheduler nominated the node for a preemption) do not count: their
//!    new pod may be placed once the other pod is gone. Old pods failing do not block: the rolling
//!    update replaces them.
//! 4. **Cannot progress, no progress**: nothing progressed for [`Limits::progress_deadline`].
//!    Progress (see [`observe`]) is a new generation, a newer observedGeneration, a change of
//!    DESIRED, more pods updated or available than ever seen in this rollout (the status counters'
//!    high-water marks), or a node seen with an updated or an up-to-date available pod for the
//!    first time. Only gains count, so a pod that flaps between Ready and not Ready cannot keep the
//!    wait alive; the clock starts at the first observation.
//! 5. Otherwise **progressing**, with the nodes still to do (wanted nodes not running an up-to-date
//!    available pod), failing ones first.
//!
//! **With a `DaemonSetRollout`** ([`verdict_with_rollout`]), its status is read first:
//!
//! - **R0.** Its `observedGeneration` (or `daemonSetGeneration`) is behind: progressing, waiting
//!   for the controller to observe it.
//! - **R1.** Phase `Failed`: cannot progress (exit 1), naming the failing pods.
//! - **R2.** `Progressing=False`, reason `ProgressDeadlineExceeded`: cannot progress (exit 1).
//! - **R3.** Phase `RolledBack`: cannot progress (exit 1); the template asked for did not roll out.
//! - **R4.** Phase `Complete`, or `Paused`, with every wanted node not yet up to date held by the
//!   partition or outside the update scope: complete as the policy allows (exit 0).
//! - **R5.** `Paused`, `Frozen`, `WaitingForApproval`: progressing, naming the hold; the progress
//!   deadline still runs, so a hold cannot hang `status` either.
//! - **R6.** `Baking` counts as progress ([`observe_with_rollout`]): a long bake never trips the
//!   progress deadline.
//!
//! Without a `DaemonSetRollout` nothing of this applies and the verdict is the rules above.
//!
//! **OnDelete**: outdated pods wait for someone to delete them; nothing replaces them on its own.
//! That is progress that waits, not a failure: deleting pods by hand while `status` watches is how
//! an OnDelete rollout is done, so each delete (and the new pod that follows) is progress. The
//! progress line says it plainly, and without deletes the progress deadline ends the wait with
//! that reason.

use crate::api::{DaemonSetRollout, DaemonSetRolloutStatus, Phase};
use crate::core::Timestamp;
use crate::core::budget::unavailable_count;
use crate::core::node_affinity::Mismatch;
use crate::core::node_reason::{Explanation, NodeRow, OutdatedWait, Reason, ReasonClass};
use crate::core::placement::Exclusion;
use crate::core::pod_state::is_terminating;
use crate::core::pods_by_node::NodePods;
use crate::core::rolling_update::is_rolling_update;
use crate::core::rollout::PolicyWait;
use crate::core::status::StatusCounters;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::jiff::SignedDuration;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a new pod must be seen failing before it is the verdict (a scheduler retry or an image
/// pull that succeeds on its next attempt within this time is not a failure).
pub const FAILURE_GRACE: Duration = Duration::from_secs(5);

/// How many nodes a progress or error block names before "... and N more".
pub const NAMED_NODES: usize = 5;

/// The time limits of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// No progress for this long: cannot progress.
    pub progress_deadline: Duration,
    /// A new pod failing for this long: cannot progress (0: at once, for a single look).
    pub failure_grace: Duration,
}

/// What the rollout looked like when it last progressed, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `metadata.generation`: a new one starts a new rollout (and a new record).
    pub generation: i64,
    pub observed_generation: i64,
    pub desired: i32,
    /// The highest `updatedNumberScheduled` seen at this DESIRED.
    pub updated_high: i32,
    /// The highest `numberAvailable` seen at this DESIRED.
    pub available_high: i32,
    /// Nodes ever seen with a pod of the current revision.
    pub updated_nodes: BTreeSet<String>,
    /// Nodes ever seen with an up-to-date available pod.
    pub available_nodes: BTreeSet<String>,
    /// When progress was last seen.
    pub since: Timestamp,
    /// Nodes whose new pod is failing, since when (without interruption).
    pub failing_since: BTreeMap<String, Timestamp>,
}

/// The status fields the verdict reads, as the API server holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    generation: i64,
    observed_generation: i64,
    counters: StatusCounters,
}

fn held(ds: &DaemonSet) -> Held {
    let status = ds.status.as_ref();
    Held {
        generation: ds.metadata.generation.unwrap_or(0),
        observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
        counters: status.map(StatusCounters::of).unwrap_or_default(),
    }
}

/// The row's pod is of the current revision.
fn has_updated_pod(row: &NodeRow) -> bool {
    row.pod.as_ref().is_some_and(|p| p.updated)
}

/// Nodes where a new pod's trouble may pass by itself: a pod there is terminating (its resources
/// and ports are still held), or a pod has a nominated node (the scheduler preempts for it).
pub fn settling_nodes(node_pods: &NodePods) -> BTreeSet<String> {
    node_pods
        .iter()
        .filter(|(_, pods)| {
            pods.iter().any(|p| {
                is_terminating(p)
                    || p.status
                        .as_ref()
                        .and_then(|s| s.nominated_node_name.as_deref())
                        .is_some_and(|n| !n.is_empty())
            })
        })
        .map(|(node, _)| node.clone())
        .collect()
}

/// The wanted nodes whose new pod will not become available by waiting, outside `settling`.
fn failing_nodes<'a>(
    explanation: &'a Explanation,
    settling: &'a BTreeSet<String>,
) -> impl Iterator<Item = &'a NodeRow> {
    explanation.rows.iter().filter(move |r| {
        r.wanted
            && r.class() == ReasonClass::Failed
            && has_updated_pod(r)
            && !settling.contains(&r.node)
    })
}

/// The progress record after observing `ds` (as the API server holds it) and its `explanation` at
/// `now`, given the previous record (`None` at the first look). `settling`: see
/// [`settling_nodes`].
pub fn observe(
    prev: Option<&Progress>,
    ds: &DaemonSet,
    explanation: &Explanation,
    settling: &BTreeSet<String>,
    now: Timestamp,
) -> Progress {
    observe_with_rollout(prev, ds, explanation, settling, now, None)
}

/// [`observe`], with the DaemonSet's `DaemonSetRollout` if it has one: a rollout `Baking` makes
/// progress by waiting (R6).
pub fn observe_with_rollout(
    prev: Option<&Progress>,
    ds: &DaemonSet,
    explanation: &Explanation,
    settling: &BTreeSet<String>,
    now: Timestamp,
    rollout: Option<&DaemonSetRollout>,
) -> Progress {
    let baking = rollout
        .and_then(|r| r.status.as_ref())
        .is_some_and(|s| s.phase == Some(Phase::Baking));
    let h = held(ds);
    let c = h.counters;
    let updated_now: BTreeSet<String> = explanation
        .rows
        .iter()
        .filter(|r| r.wanted && has_updated_pod(r))
        .map(|r| r.node.clone())
        .collect();
    let available_now: BTreeSet<String> = explanation
        .rows
        .iter()
        .filter(|r| r.wanted && r.reason == Reason::UpToDate)
        .map(|r| r.node.clone())
        .collect();
    let failing_since = failing_nodes(explanation, settling)
        .map(|r| {
            let since = prev
                .filter(|p| p.generation == h.generation)
                .and_then(|p| p.failing_since.get(&r.node).copied())
                .unwrap_or(now);
            (r.node.clone(), since)
        })
        .collect();
    let Some(prev) = prev.filter(|p| p.generation == h.generation) else {
        return Progress {
            generation: h.generation,
            observed_generation: h.observed_generation,
            desired: c.desired_number_scheduled,
            updated_high: c.updated_number_scheduled,
            available_high: c.number_available,
            updated_nodes: updated_now,
            available_nodes: available_now,
            since: now,
            failing_since,
        };
    };
    let desired_changed = c.desired_number_scheduled != prev.desired;
    let progressed = baking
        || h.observed_generation > prev.observed_generation
        || desired_changed
        || c.updated_number_scheduled > prev.updated_high
        || c.number_available > prev.available_high
        || !updated_now.is_subset(&prev.updated_nodes)
        || !available_now.is_subset(&prev.available_nodes);
    let (updated_high, available_high) = if desired_changed {
        (c.updated_number_scheduled, c.number_available)
    } else {
        (
            prev.updated_high.max(c.updated_number_scheduled),
            prev.available_high.max(c.number_available),
        )
    };
    Progress {
        generation: h.generation,
        observed_generation: prev.observed_generation.max(h.observed_generation),
        desired: c.desired_number_scheduled,
        updated_high,
        available_high,
        updated_nodes: &prev.updated_nodes | &updated_now,
        available_nodes: &prev.available_nodes | &available_now,
        since: if progressed { now } else { prev.since },
        failing_since,
    }
}

/// How far the rollout is, in kubectl's three steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The controller has not written the status of the current generation yet.
    SpecNotObserved { generation: i64, observed: i64 },
    /// Not every desired pod is of the current revision.
    Updating { updated: i32, desired: i32 },
    /// Every pod is updated, not every one is available.
    Availability { available: i32, desired: i32 },
}

/// A wanted node not running an up-to-date available pod, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub node: String,
    pub reason: Reason,
}

/// Unavailable pods that `maxUnavailable` allows (they still keep the rollout from completing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithinBudget {
    pub unavailable: i32,
    pub max_unavailable: i64,
}

/// The rollout's state short of complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub stage: Stage,
    /// `updatedNumberScheduled`, `numberAvailable`, `desiredNumberScheduled` as held.
    pub updated: i32,
    pub available: i32,
    pub desired: i32,
    /// The nodes still to do, failing ones first, then in node order.
    pub todo: Vec<Todo>,
    /// Outdated pods waiting for a manual delete (updateStrategy OnDelete).
    pub on_delete: usize,
    /// Set when every pod is updated and the unavailable ones are within maxUnavailable.
    pub within_budget: Option<WithinBudget>,
    /// What the `DaemonSetRollout` holds the rollout for, e.g. "paused by DaemonSetRollout agent
    /// (kubectl everynode resume daemonset/agent)".
    pub hold: Option<String>,
}

/// Why the rollout cannot progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// New pods that will not become available by waiting (unschedulable, failing containers,
    /// failed), with their nodes and reasons.
    NewPodsFailing { nodes: Vec<Todo> },
    /// No progress since `since`, for at least `deadline`.
    NoProgress {
        since: Timestamp,
        deadline: Duration,
    },
    /// The `DaemonSetRollout`'s phase is Failed (R1): its cause and failing pods.
    RolloutFailed {
        rollout: String,
        cause: String,
        nodes: Vec<String>,
    },
    /// The `DaemonSetRollout`'s progress deadline passed (R2), with its condition's message.
    DeadlineExceeded { rollout: String, message: String },
    /// The `DaemonSetRollout` rolled the template back (R3).
    RolledBack {
        rollout: String,
        from: String,
        to: String,
        reason: String,
    },
}

/// Why a complete rollout deserves a warning: DESIRED 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoNode {
    /// The explanation's summary ("3 nodes: 3 excluded by nodeSelector").
    pub summary: String,
    /// One node and the rule that excluded it, a likely typo first (see [`example_exclusion`]).
    pub example: Option<(String, Exclusion)>,
}

/// The verdict on a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every desired pod updated and available (DESIRED 0: with `no_node` set).
    Complete {
        desired: i32,
        no_node: Option<NoNode>,
    },
    /// Every wanted node the `DaemonSetRollout` lets update is up to date; the rest are held by its
    /// partition or outside its update scope (R4). `held`: e.g. "3 nodes held by partition 3".
    CompleteAsAllowed {
        rollout: String,
        held: Vec<String>,
    },
    Progressing(Step),
    CannotProgress {
        blocker: Blocker,
        step: Step,
    },
}

impl Verdict {
    /// The exit code of `everynode status`: 0 complete, 1 cannot progress; `None` while progressing.
    pub fn exit_code(&self) -> Option<u8> {
        match self {
            Verdict::Complete { .. } | Verdict::CompleteAsAllowed { .. } => Some(0),
            Verdict::CannotProgress { .. } => Some(1),
            Verdict::Progressing(_) => None,
        }
    }
}

/// The excluded row to show beside DESIRED 0: a node whose label has the key with another value
/// (the typo'd nodeSelector case) first, then one that still has a pod, then the first.
pub fn example_exclusion(explanation: &Explanation) -> Option<(String, Exclusion)> {
    let exclusion = |r: &NodeRow| match &r.reason {
        Reason::Excluded { exclusion }
        | Reason::Misscheduled { exclusion }
        | Reason::Removing { exclusion } => Some(exclusion.clone()),
        _ => None,
    };
    let near_miss = |e: &Exclusion| {
        matches!(
            e,
            Exclusion::Affinity(Mismatch::NodeSelector {
                node_value: Some(_),
                ..
            })
        )
    };
    let rows = || {
        explanation
            .rows
            .iter()
            .filter_map(|r| Some((r, exclusion(r)?)))
    };
    rows()
        .find(|(_, e)| near_miss(e))
        .or_else(|| rows().find(|(r, _)| r.pod.is_some()))
        .or_else(|| rows().next())
        .map(|(r, e)| (r.node.clone(), e))
}

fn step(ds: &DaemonSet, explanation: &Explanation) -> Step {
    let h = held(ds);
    let c = h.counters;
    let stage = if h.observed_generation < h.generation {
        Stage::SpecNotObserved {
            generation: h.generation,
            observed: h.observed_generation,
        }
    } else if c.updated_number_scheduled < c.desired_number_scheduled {
        Stage::Updating {
            updated: c.updated_number_scheduled,
            desired: c.desired_number_scheduled,
        }
    } else {
        Stage::Availability {
            available: c.number_available,
            desired: c.desired_number_scheduled,
        }
    };
    let mut todo: Vec<&NodeRow> = explanation
        .rows
        .iter()
        .filter(|r| r.wanted && r.class() != ReasonClass::Ok)
        .collect();
    // Stable: node order within each class.
    todo.sort_by_key(|r| r.class() != ReasonClass::Failed);
    let on_delete = explanation
        .rows
        .iter()
        .filter(|r| r.reason == Reason::Outdated(OutdatedWait::OnDelete))
        .count();
    let unavailable = c.desired_number_scheduled - c.number_available;
    let within_budget = match stage {
        Stage::Availability { .. } if unavailable > 0 && is_rolling_update(ds) => {
            unavailable_count(ds, i64::from(c.desired_number_scheduled))
                .ok()
                .filter(|max| i64::from(unavailable) <= *max)
                .map(|max_unavailable| WithinBudget {
                    unavailable,
                    max_unavailable,
                })
        }
        _ => None,
    };
    Step {
        stage,
        updated: c.updated_number_scheduled,
        available: c.number_available,
        desired: c.desired_number_scheduled,
        todo: todo
            .into_iter()
            .map(|r| Todo {
                node: r.node.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
        on_delete,
        within_budget,
        hold: None,
    }
}

fn at_least(elapsed: SignedDuration, limit: Duration) -> bool {
    SignedDuration::try_from(limit).is_ok_and(|limit| elapsed >= limit)
}

/// The verdict on `ds`'s rollout (as the API server holds it, explained by `explanation`), given
/// the `progress` record of this same look (from [`observe`]), at `now`. See the module docs for
/// the rules.
pub fn verdict(
    ds: &DaemonSet,
    explanation: &Explanation,
    progress: &Progress,
    now: Timestamp,
    limits: &Limits,
) -> Verdict {
    let h = held(ds);
    let c = h.counters;
    if h.observed_generation >= h.generation
        && c.updated_number_scheduled >= c.desired_number_scheduled
        && c.number_available >= c.desired_number_scheduled
    {
        let no_node = (c.desired_number_scheduled == 0).then(|| NoNode {
            summary: explanation.summary(),
            example: example_exclusion(explanation),
        });
        return Verdict::Complete {
            desired: c.desired_number_scheduled,
            no_node,
        };
    }
    let step = step(ds, explanation);
    let failing: Vec<Todo> = explanation
        .rows
        .iter()
        .filter(|r| {
            progress
                .failing_since
                .get(&r.node)
                .is_some_and(|since| at_least(now.duration_since(*since), limits.failure_grace))
        })
        .filter(|r| r.wanted && r.class() == ReasonClass::Failed && has_updated_pod(r))
        .map(|r| Todo {
            node: r.node.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    if !failing.is_empty() {
        return Verdict::CannotProgress {
            blocker: Blocker::NewPodsFailing { nodes: failing },
            step,
        };
    }
    if at_least(now.duration_since(progress.since), limits.progress_deadline) {
        return Verdict::CannotProgress {
            blocker: Blocker::NoProgress {
                since: progress.since,
                deadline: limits.progress_deadline,
            },
            step,
        };
    }
    Verdict::Progressing(step)
}

/// The one line about a `DaemonSetRollout` (`explain` prints it above the table), e.g.
/// `DaemonSetRollout agent: Baking, wave 1/3 zone=a, 4/12 updated`.
pub fn rollout_line(name: &str, status: &DaemonSetRolloutStatus) -> String {
    let Some(phase) = status.phase else {
        return format!("DaemonSetRollout {name}: not observed by the controller yet");
    };
    let mut parts = vec![phase.to_string()];
    if let Some(wave) = status.wave.as_deref().filter(|w| !w.is_empty()) {
        if wave.starts_with("canary") {
            parts.push(wave.to_string());
        } else {
            parts.push(format!("wave {wave}"));
        }
    }
    if let Some(at) = status
        .step
        .as_ref()
        .and_then(|s| s.bake_started_at.as_ref())
        .filter(|_| phase == Phase::Baking)
    {
        parts.push(format!(
            "baking since {}",
            crate::core::node_reason::utc(at.0)
        ));
    }
    parts.push(format!(
        "{}/{} updated",
        status.updated_nodes, status.desired_nodes
    ));
    format!("DaemonSetRollout {name}: {}", parts.join(", "))
}

/// The condition `type_` of a `DaemonSetRollout` status.
fn condition<'a>(
    status: &'a DaemonSetRolloutStatus,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// What holds a rollout in `phase` (R5), or `None` when the phase holds nothing.
fn hold_words(name: &str, spec_paused: bool, status: &DaemonSetRolloutStatus) -> Option<String> {
    let phase = status.phase?;
    let why = || {
        condition(status, "Progressing")
            .map(|c| c.message.clone())
            .filter(|m| !m.is_empty())
    };
    Some(match phase {
        Phase::Paused if spec_paused => {
            format!("paused by DaemonSetRollout {name} (kubectl everynode resume daemonset/{name})")
        }
        Phase::Paused => match why() {
            Some(m) => format!("paused by DaemonSetRollout {name}: {m}"),
            None => format!("paused by DaemonSetRollout {name}"),
        },
        Phase::Frozen => format!(
            "frozen by DaemonSetRollout {name} (kubectl everynode unfreeze daemonset/{name})"
        ),
        Phase::WaitingForApproval => format!(
            "DaemonSetRollout {name} waits for approval of the canary (kubectl everynode approve daemonset/{name})"
        ),
        Phase::Baking => rollout_line(name, status),
        Phase::Progressing | Phase::Complete | Phase::Failed | Phase::RolledBack => return None,
    })
}

/// The `DaemonSetRollout`'s own partition or scope holds this row: it is as done as allowed.
fn held_as_allowed(row: &NodeRow) -> Option<&PolicyWait> {
    match &row.reason {
        Reason::Outdated(OutdatedWait::Policy(
            wait @ (PolicyWait::Partition { .. } | PolicyWait::OutOfScope { .. }),
        )) => Some(wait),
        _ => None,
    }
}

/// [`verdict`], with the DaemonSet's `DaemonSetRollout` if it has one (rules R0–R6 of the module
/// docs come first). Without one, exactly [`verdict`].
pub fn verdict_with_rollout(
    ds: &DaemonSet,
    explanation: &Explanation,
    progress: &Progress,
    now: Timestamp,
    limits: &Limits,
    rollout: Option<&DaemonSetRollout>,
) -> Verdict {
    let Some(dsr) = rollout else {
        return verdict(ds, explanation, progress, now, limits);
    };
    let name = dsr.metadata.name.clone().unwrap_or_default();
    let status = dsr.status.clone().unwrap_or_default();
    let h = held(ds);
    // R0: the controller has not decided on what is there now.
    let behind = status.observed_generation.unwrap_or(0) < dsr.metadata.generation.unwrap_or(0)
        || status.daemon_set_generation.unwrap_or(0) < h.generation;
    if behind || status.phase.is_none() {
        let mut step = step(ds, explanation);
        step.hold = Some(format!(
            "waiting for the controller to observe DaemonSetRollout {name} and this generation of the DaemonSet"
        ));
        return deadline_or(step, progress, now, limits);
    }
    // R1
    if status.phase == Some(Phase::Failed) {
        let nodes = status
            .failing
            .iter()
            .map(|f| format!("{} {} ({} restarts)", f.node, f.reason, f.restarts))
            .collect::<Vec<_>>();
        let cause = condition(&status, "Progressing")
            .map(|c| c.message.clone())
            .filter(|m| !m.is_empty())
            .or_else(|| nodes.first().cloned())
            .unwrap_or_else(|| "a pod of the new revision is failing".into());
        return Verdict::CannotProgress {
            blocker: Blocker::RolloutFailed {
                rollout: name,
                cause,
                nodes,
            },
            step: step(ds, explanation),
        };
    }
    // R2
    if let Some(c) = condition(&status, "Progressing")
        .filter(|c| c.status == "False" && c.reason == "ProgressDeadlineExceeded")
    {
        return Verdict::CannotProgress {
            blocker: Blocker::DeadlineExceeded {
                rollout: name,
                message: c.message.clone(),
            },
            step: step(ds, explanation),
        };
    }
    // R3
    if status.phase == Some(Phase::RolledBack) {
        let rb = status.rollback.clone().unwrap_or_default();
        return Verdict::CannotProgress {
            blocker: Blocker::RolledBack {
                rollout: name,
                from: rb.from,
                to: rb.to,
                reason: rb.reason,
            },
            step: step(ds, explanation),
        };
    }
    // R4
    if matches!(status.phase, Some(Phase::Complete | Phase::Paused))
        && h.observed_generation >= h.generation
    {
        let todo: Vec<&NodeRow> = explanation
            .rows
            .iter()
            .filter(|r| r.wanted && r.class() != ReasonClass::Ok)
            .collect();
        let allowed: Vec<&PolicyWait> = todo.iter().filter_map(|r| held_as_allowed(r)).collect();
        if !allowed.is_empty() && allowed.len() == todo.len() {
            let mut held: Vec<(String, usize)> = Vec::new();
            for wait in allowed {
                let words = match wait {
                    PolicyWait::Partition { partition, .. } => {
                        format!("held by partition {partition}")
                    }
                    PolicyWait::OutOfScope { selector, .. } => {
                        format!("outside the updateScope ({selector})")
                    }
                    other => other.summary_phrase().to_string(),
                };
                match held.iter_mut().find(|(w, _)| *w == words) {
                    Some(e) => e.1 += 1,
                    None => held.push((words, 1)),
                }
            }
            return Verdict::CompleteAsAllowed {
                rollout: name,
                held: held
                    .into_iter()
                    .map(|(w, n)| {
                        format!(
                            "{} {w}",
                            plural(i64::try_from(n).unwrap_or(i64::MAX), "node", "nodes")
                        )
                    })
                    .collect(),
            };
        }
    }
    // R5, R6 (and Progressing): today's rules, with the hold named.
    let hold = hold_words(&name, dsr.spec.paused, &status);
    match verdict(ds, explanation, progress, now, limits) {
        Verdict::Progressing(mut step) => {
            step.hold = hold;
            Verdict::Progressing(step)
        }
        Verdict::CannotProgress {
            blocker: blocker @ Blocker::NoProgress { .. },
            mut step,
        } => {
            step.hold = hold;
            Verdict::CannotProgress { blocker, step }
        }
        other => other,
    }
}

/// Progressing with `step`, unless the progress deadline has passed.
fn deadline_or(step: Step, progress: &Progress, now: Timestamp, limits: &Limits) -> Verdict {
    if at_least(now.duration_since(progress.since), limits.progress_deadline) {
        return Verdict::CannotProgress {
            blocker: Blocker::NoProgress {
                since: progress.since,
                deadline: limits.progress_deadline,
            },
            step,
        };
    }
    Verdict::Progressing(step)
}

/// A duration as people write it: `10m`, `1m30s`, `2h`, `500ms`.
pub fn human_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

fn plural(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Stage {
    /// kubectl's words for the step, without the DaemonSet's name.
    pub fn words(&self) -> String {
        match self {
            Stage::SpecNotObserved {
                generation,
                observed,
            } => format!(
                "the DaemonSet controller has not observed generation {generation} yet (observedGeneration {observed})"
            ),
            Stage::Updating { updated, desired } => {
                format!("{updated} out of {desired} new pods have been updated")
            }
            Stage::Availability { available, desired } => {
                format!("{available} of {desired} updated pods are available")
            }
        }
    }
}

/// `nodes` as indented lines `  NODE: REASON`, at most `limit` named, then `  ... and N more`.
pub fn node_lines(nodes: &[Todo], limit: usize) -> Vec<String> {
    let mut out: Vec<String> = nodes
        .iter()
        .take(limit)
        .map(|t| format!("  {}: {}", t.node, t.reason))
        .collect();
    if nodes.len() > limit {
        out.push(format!(
            "  ... and {}",
            plural(
                i64::try_from(nodes.len() - limit).unwrap_or(i64::MAX),
                "more node",
                "more nodes"
            )
        ));
    }
    out
}

impl Step {
    /// kubectl's progress line, e.g. `Waiting for daemon set "agent" rollout to finish: 3 of 13
    /// updated pods are available...`.
    pub fn headline(&self, name: &str) -> String {
        match self.stage {
            Stage::SpecNotObserved { .. } => {
                format!("Waiting for daemon set {name:?} spec update to be observed...")
            }
            _ => format!(
                "Waiting for daemon set {name:?} rollout to finish: {}...",
                self.stage.words()
            ),
        }
    }

    /// The lines under a headline: the nodes still to do (at most [`NAMED_NODES`]), then the notes
    /// on OnDelete and on pods unavailable within maxUnavailable.
    pub fn detail(&self) -> Vec<String> {
        let mut out: Vec<String> = self.hold.iter().map(|h| format!("  {h}")).collect();
        out.extend(node_lines(&self.todo, NAMED_NODES));
        if self.on_delete > 0 {
            out.push(format!(
                "  updateStrategy OnDelete: {} for a manual delete; nothing replaces {} on its own",
                plural(
                    i64::try_from(self.on_delete).unwrap_or(i64::MAX),
                    "outdated pod waits",
                    "outdated pods wait"
                ),
                if self.on_delete == 1 { "it" } else { "them" },
            ));
        }
        if let Some(w) = self.within_budget {
            out.push(format!(
                "  {} unavailable, within maxUnavailable={}: the rollout is complete once every pod is available",
                plural(w.unavailable, "pod is", "pods are"),
                w.max_unavailable
            ));
        }
        out
    }
}

impl Blocker {
    /// Why, in one line (without the DaemonSet's name).
    pub fn words(&self, step: &Step) -> String {
        match self {
            Blocker::NewPodsFailing { nodes } => {
                let mut states: Vec<(String, usize)> = Vec::new();
                for t in nodes {
                    let state = t.reason.state().to_string();
                    match states.iter_mut().find(|(s, _)| *s == state) {
                        Some(entry) => entry.1 += 1,
                        None => states.push((state, 1)),
                    }
                }
                let states: Vec<String> = states
                    .into_iter()
                    .map(|(s, n)| format!("{n} {s}"))
                    .collect();
                format!(
                    "new pods cannot run on {} ({})",
                    plural(
                        i64::try_from(nodes.len()).unwrap_or(i64::MAX),
                        "node",
                        "nodes"
                    ),
                    states.join(", ")
                )
            }
            Blocker::NoProgress { deadline, .. } => {
                let what = if step.on_delete > 0 && step.on_delete == step.todo.len() {
                    format!(
                        "{} for a manual delete (updateStrategy OnDelete)",
                        plural(
                            i64::try_from(step.on_delete).unwrap_or(i64::MAX),
                            "outdated pod waits",
                            "outdated pods wait"
                        )
                    )
                } else if let Some(hold) = &step.hold {
                    hold.clone()
                } else if matches!(step.stage, Stage::SpecNotObserved { .. }) {
                    format!(
                        "{}: is a DaemonSet controller (everynode) running?",
                        step.stage.words()
                    )
                } else {
                    step.stage.words()
                };
                format!("no progress for {}: {what}", human_duration(*deadline))
            }
            Blocker::RolloutFailed { rollout, cause, .. } => format!(
                "DaemonSetRollout {rollout} failed: {cause} (fix the template, kubectl everynode approve daemonset/{rollout} retries, kubectl everynode abort daemonset/{rollout} rolls back)"
            ),
            Blocker::DeadlineExceeded { rollout, message } if message.is_empty() => {
                format!("DaemonSetRollout {rollout}: progress deadline exceeded")
            }
            Blocker::DeadlineExceeded { rollout, message } => {
                format!("DaemonSetRollout {rollout}: progress deadline exceeded: {message}")
            }
            Blocker::RolledBack {
                rollout,
                from,
                to,
                reason,
            } => format!("DaemonSetRollout {rollout} rolled back from {from} to {to}: {reason}"),
        }
    }

    /// The lines under the error line: the failing nodes, or the nodes still to do and the notes.
    pub fn detail(&self, step: &Step) -> Vec<String> {
        match self {
            Blocker::NewPodsFailing { nodes } => node_lines(nodes, NAMED_NODES),
            Blocker::NoProgress { .. } | Blocker::DeadlineExceeded { .. } => step.detail(),
            Blocker::RolloutFailed { nodes, .. } => nodes
                .iter()
                .take(NAMED_NODES)
                .map(|n| format!("  {n}"))
                .collect(),
            Blocker::RolledBack { .. } => Vec::new(),
        }
    }
}

impl Verdict {
    /// The line of a [`Verdict::CompleteAsAllowed`], e.g. `complete as DaemonSetRollout agent
    /// allows: 3 nodes held by partition 3`.
    pub fn allowed_words(rollout: &str, held: &[String]) -> String {
        format!(
            "complete as DaemonSetRollout {rollout} allows: {}",
            held.join(", ")
        )
    }
}

impl NoNode {
    /// The warning, e.g. `the DaemonSet selects no node (DESIRED 0): 3 nodes: 3 excluded by
    /// nodeSelector; node-a: nodeSelector disktype=ssd: node lacks label disktype`.
    pub fn words(&self) -> String {
        match &self.example {
            Some((node, exclusion)) => format!(
                "the DaemonSet selects no node (DESIRED 0): {}; {node}: {exclusion}",
                self.summary
            ),
            None => format!(
                "the DaemonSet selects no node (DESIRED 0): {}",
                self.summary
            ),
        }
    }
}

#[cfg(test)]
mod tests;
