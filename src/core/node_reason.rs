//! Why each node has, lacks or waits for a DaemonSet's pod: one structured reason per node, built
//! from the same placement, manage and rolling-update decisions the controller acts on.
//!
//! `everynode explain` and `everynode status` print these rows, and the controller turns them into
//! the `everynode_daemonset_nodes` gauge and its events. Nothing here decides anything: the reasons
//! come from [`placement_explained`], manage's failed-pod backoff ([`ManagePlan::backoff_until`])
//! and the rolling-update plan's waiting nodes ([`RollingUpdatePlan::waiting`]); the rest are facts
//! read off the node's pods.
//!
//! [`ManagePlan::backoff_until`]: crate::core::manage::ManagePlan::backoff_until

use crate::core::Timestamp;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::{CachedContainerStatus, CachedPod};
use crate::core::placement::{Exclusion, Placements};
use crate::core::pod_state::{
    hash_label, is_available, is_ready, is_terminating, is_updated, oldest_scheduled_first, phase,
    ready_condition,
};
use crate::core::pod_template::template_generation;
use crate::core::pods_by_node::{NodePods, nodes_holding};
use crate::core::rolling_update::{
    Gate, RollingUpdatePlan, UpdateWait, is_rolling_update, plan_rolling_update_placed,
};
use crate::core::rollout::{PolicyWait, RolloutPlan};
use crate::core::status::{CounterTally, StatusCounters, min_ready_seconds};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::jiff::SignedDuration;
use serde::Serialize;
use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Container waiting reasons that mean the pod will not become ready by waiting.
pub const FAILING_CONTAINER_REASONS: [&str; 8] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RunContainerError",
];

/// The coarse class of a reason, as the `everynode_daemonset_nodes` gauge counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReasonClass {
    /// The node runs an up-to-date, available pod.
    Ok,
    /// The node does not qualify for a pod (any pod still there is misscheduled or being removed).
    Excluded,
    /// The node qualifies and is on its way: no pod yet, starting, outdated, terminating.
    Waiting,
    /// The node qualifies but its pod will not become available by waiting.
    Failed,
}

impl ReasonClass {
    pub const ALL: [ReasonClass; 4] = [
        ReasonClass::Ok,
        ReasonClass::Excluded,
        ReasonClass::Waiting,
        ReasonClass::Failed,
    ];

    /// The label value: `ok`, `excluded`, `waiting` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::Ok => "ok",
            ReasonClass::Excluded => "excluded",
            ReasonClass::Waiting => "waiting",
            ReasonClass::Failed => "failed",
        }
    }
}

/// Why an outdated pod is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "wait", rename_all = "camelCase")]
pub enum OutdatedWait {
    /// The rolling update replaces it in this sync.
    BeingReplaced,
    /// A budget or availability rule of the rolling update holds it (see [`UpdateWait`]).
    #[serde(rename_all = "camelCase")]
    Rollout {
        rule: UpdateWait,
        /// The budget's value in pods (maxUnavailable or maxSurge, scaled).
        limit: i64,
        /// The first few nodes holding the budget.
        held_by: Vec<String>,
        /// How many nodes hold it in all.
        held_by_total: usize,
    },
    /// `updateStrategy: OnDelete`: replaced only when someone deletes it.
    OnDelete,
    /// Nothing holds it; the controller replaces it in its next sync.
    NextSync,
    /// The DaemonSetRollout holds it (partition, scope, pause, canary, wave, pacing, ...).
    Policy(PolicyWait),
}

/// How many holders a reason names.
const NAMED_HOLDERS: usize = 3;

/// Why a node is where it is. The variant decides the [`ReasonClass`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reason {
    /// Runs an up-to-date, available pod.
    UpToDate,
    /// Does not qualify, and has no pod.
    Excluded { exclusion: Exclusion },
    /// Does not qualify for a new pod, but its pod may keep running (a NoSchedule taint): counted
    /// in `numberMisscheduled`.
    Misscheduled { exclusion: Exclusion },
    /// Does not qualify; its pod is being deleted.
    Removing { exclusion: Exclusion },
    /// Qualifies and has no pod: the controller creates one.
    NoPod,
    /// Its only pod is terminating; a replacement follows.
    Terminating,
    /// The pod is scheduled but not Ready yet (`waiting_reason`: the first container's, such as
    /// ContainerCreating).
    #[serde(rename_all = "camelCase")]
    Starting { waiting_reason: Option<String> },
    /// Ready, but not yet for `spec.minReadySeconds`.
    #[serde(rename_all = "camelCase")]
    NotYetAvailable { available_at: Timestamp },
    /// Runs a pod of an older revision.
    Outdated(OutdatedWait),
    /// The scheduler cannot place the pod (its PodScheduled condition's message).
    Unschedulable { message: String },
    /// A container of the pod is failing (CrashLoopBackOff, ImagePullBackOff, ...).
    ContainerFailing {
        container: String,
        reason: String,
        message: String,
    },
    /// The pod failed; the controller deletes it and creates another, with a backoff.
    #[serde(rename_all = "camelCase")]
    PodFailed {
        message: String,
        backoff_until: Option<Timestamp>,
    },
    /// Qualifies and has no pod, but the DaemonSetRollout holds its creation (frozen, or a policy
    /// that cannot be used).
    NoPodHeld(PolicyWait),
    /// Does not qualify, but the DaemonSetRollout holds the deletion of its pod (the mass-deletion
    /// guard, or frozen).
    RemovalHeld {
        exclusion: Exclusion,
        #[serde(flatten)]
        wait: PolicyWait,
    },
}

impl Reason {
    pub fn class(&self) -> ReasonClass {
        match self {
            Reason::UpToDate => ReasonClass::Ok,
            Reason::Excluded { .. }
            | Reason::Misscheduled { .. }
            | Reason::Removing { .. }
            | Reason::RemovalHeld { .. } => ReasonClass::Excluded,
            Reason::NoPodHeld(_)
            | Reason::NoPod
            | Reason::Terminating
            | Reason::Starting { .. }
            | Reason::NotYetAvailable { .. }
            | Reason::Outdated(_) => ReasonClass::Waiting,
            Reason::Unschedulable { .. }
            | Reason::ContainerFailing { .. }
            | Reason::PodFailed { .. } => ReasonClass::Failed,
        }
    }

    /// The STATE column: one word.
    pub fn state(&self) -> &str {
        match self {
            Reason::UpToDate => "Available",
            Reason::Excluded { .. } => "Excluded",
            Reason::Misscheduled { .. } => "Misscheduled",
            Reason::Removing { .. } => "Removing",
            Reason::NoPod => "Missing",
            Reason::Terminating => "Terminating",
            Reason::Starting { .. } => "Starting",
            Reason::NotYetAvailable { .. } => "Ready",
            Reason::Outdated(_) => "Outdated",
            Reason::Unschedulable { .. } => "Unschedulable",
            Reason::ContainerFailing { reason, .. } => reason,
            Reason::PodFailed { .. } => "Failed",
            Reason::NoPodHeld(PolicyWait::Frozen { .. }) => "Frozen",
            Reason::NoPodHeld(_) => "Missing",
            Reason::RemovalHeld { .. } => "Held",
        }
    }

    /// The summary phrase this reason is counted under, singular and plural ("1 runs ...",
    /// "2 run ...").
    fn summary_phrase(&self) -> (String, String) {
        let same = |s: String| (s.clone(), s);
        match self {
            Reason::UpToDate => (
                "runs an up-to-date available pod".into(),
                "run an up-to-date available pod".into(),
            ),
            Reason::Excluded { exclusion } => {
                same(format!("excluded by {}", rule_words(exclusion)))
            }
            Reason::Misscheduled { exclusion } => same(format!(
                "misscheduled (pod kept despite {})",
                rule_words(exclusion)
            )),
            Reason::Removing { exclusion } => {
                same(format!("losing their pod ({})", rule_words(exclusion)))
            }
            Reason::NoPod => same("waiting for a pod to be created".into()),
            Reason::Terminating => same("waiting for a terminating pod to go".into()),
            Reason::Starting { .. } => same("starting a pod".into()),
            Reason::NotYetAvailable { .. } => same("waiting for minReadySeconds".into()),
            Reason::Outdated(OutdatedWait::BeingReplaced) => same("being updated".into()),
            Reason::Outdated(OutdatedWait::Rollout { rule, .. }) => same(
                match rule {
                    UpdateWait::MaxUnavailable | UpdateWait::MaxSurge => "waiting for the budget",
                    UpdateWait::NewPodNotAvailable => "waiting for a new pod to become available",
                    UpdateWait::AvailabilityFloor => "waiting for enough available pods",
                    UpdateWait::Held => "held by the rollout policy",
                }
                .into(),
            ),
            Reason::Outdated(OutdatedWait::OnDelete) => {
                same("waiting for a manual delete (OnDelete)".into())
            }
            Reason::Outdated(OutdatedWait::NextSync) => {
                same("waiting for the controller to update".into())
            }
            Reason::Outdated(OutdatedWait::Policy(wait)) | Reason::NoPodHeld(wait) => {
                same(wait.summary_phrase().into())
            }
            Reason::RemovalHeld { wait, .. } => same(match wait {
                PolicyWait::DeletionHeld { .. } => wait.summary_phrase().into(),
                other => format!("deletion held ({})", other.summary_phrase()),
            }),
            Reason::Unschedulable { .. } => same("unschedulable".into()),
            Reason::ContainerFailing { reason, .. } => same(format!("failing ({reason})")),
            Reason::PodFailed { .. } => same("with a failed pod".into()),
        }
    }
}

fn rule_words(exclusion: &Exclusion) -> &'static str {
    match exclusion.rule() {
        "nodeName" => "nodeName",
        "nodeSelector" => "nodeSelector",
        "nodeAffinity" => "node affinity",
        _ => "taint",
    }
}

/// `t` as the API server writes times: `2026-12-02T16:39:25Z`.
pub fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn holders(held_by: &[String], total: usize) -> String {
    match total.saturating_sub(held_by.len()) {
        0 => held_by.join(", "),
        more => format!("{} and {more} more", held_by.join(", ")),
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UpToDate => write!(f, "up to date"),
            Reason::Excluded { exclusion } => write!(f, "{exclusion}"),
            Reason::Misscheduled { exclusion } => {
                write!(f, "{exclusion}: no new pod here, the running one stays")
            }
            Reason::Removing { exclusion } => write!(f, "{exclusion}: the pod is being deleted"),
            Reason::NoPod => write!(f, "no pod yet: the controller creates one"),
            Reason::Terminating => {
                write!(
                    f,
                    "the pod is terminating; a new one follows once it is gone"
                )
            }
            Reason::Starting {
                waiting_reason: Some(r),
            } => write!(f, "not Ready yet ({r})"),
            Reason::Starting {
                waiting_reason: None,
            } => write!(f, "not Ready yet"),
            Reason::NotYetAvailable { available_at } => write!(
                f,
                "Ready, available at {} (minReadySeconds)",
                utc(*available_at)
            ),
            Reason::Outdated(OutdatedWait::BeingReplaced) => {
                write!(f, "outdated: being replaced now")
            }
            Reason::Outdated(OutdatedWait::Rollout {
                rule,
                limit,
                held_by_total: 0,
                ..
            }) if matches!(rule, UpdateWait::MaxUnavailable | UpdateWait::MaxSurge) => {
                let budget = match rule {
                    UpdateWait::MaxSurge => "maxSurge",
                    _ => "maxUnavailable",
                };
                write!(
                    f,
                    "outdated, waiting: the budget {budget}={limit} is used up"
                )
            }
            Reason::Outdated(OutdatedWait::Rollout {
                rule,
                limit,
                held_by,
                held_by_total,
            }) => match rule {
                UpdateWait::MaxUnavailable => write!(
                    f,
                    "outdated, waiting: the budget maxUnavailable={limit} is held by {}",
                    holders(held_by, *held_by_total)
                ),
                UpdateWait::MaxSurge => write!(
                    f,
                    "outdated, waiting: the budget maxSurge={limit} is held by {}, whose new pods are not available yet",
                    holders(held_by, *held_by_total)
                ),
                UpdateWait::NewPodNotAvailable => write!(
                    f,
                    "outdated, waiting: its surge pod is not available yet; the old pod goes when it is"
                ),
                UpdateWait::AvailabilityFloor => write!(
                    f,
                    "outdated and no longer wanted, waiting: the old pod goes once more pods than desired are available"
                ),
                UpdateWait::Held => write!(f, "outdated, held by the rollout policy"),
            },
            Reason::Outdated(OutdatedWait::OnDelete) => write!(
                f,
                "outdated, waiting for a manual delete (updateStrategy OnDelete)"
            ),
            Reason::Outdated(OutdatedWait::NextSync) => {
                write!(f, "outdated: the controller replaces it in its next sync")
            }
            Reason::Outdated(OutdatedWait::Policy(wait)) => write!(f, "outdated, {wait}"),
            Reason::NoPodHeld(wait) => write!(f, "no pod: {wait}"),
            Reason::RemovalHeld { exclusion, wait } => write!(f, "{exclusion}; {wait}"),
            Reason::Unschedulable { message } => {
                write!(f, "the scheduler cannot place the pod: {message}")
            }
            Reason::ContainerFailing {
                container,
                reason,
                message,
            } if message.is_empty() => write!(f, "container {container}: {reason}"),
            Reason::ContainerFailing {
                container,
                reason,
                message,
            } => write!(f, "container {container}: {reason}: {message}"),
            Reason::PodFailed {
                message,
                backoff_until,
            } => {
                write!(f, "the pod failed")?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                match backoff_until {
                    Some(t) => write!(f, "; it is replaced after its backoff, at {}", utc(*t)),
                    None => write!(f, "; it is deleted and replaced"),
                }
            }
        }
    }
}

/// The facts of the pod a row is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodFacts {
    pub name: String,
    /// The pod's `controller-revision-hash` label.
    pub revision: Option<String>,
    /// Of the DaemonSet's current revision.
    pub updated: bool,
    pub phase: String,
    /// When its Ready condition last became True, if it is Ready.
    pub ready_since: Option<Timestamp>,
    pub available: bool,
    /// Container restarts, summed.
    pub restarts: i32,
}

/// One node's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    pub node: String,
    /// The node qualifies for a new pod (placement's `should_run`).
    pub wanted: bool,
    /// The pod the row is about: the updated one if any, else the oldest.
    pub pod: Option<PodFacts>,
    pub reason: Reason,
}

impl NodeRow {
    pub fn class(&self) -> ReasonClass {
        self.reason.class()
    }
}

/// Every node's row, and the status counters over the same inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub rows: Vec<NodeRow>,
    pub counters: StatusCounters,
}

/// The facts of `pod`.
pub fn pod_facts(
    pod: &CachedPod,
    hash: &str,
    generation: Option<i64>,
    min_ready: i32,
    now: Timestamp,
) -> PodFacts {
    let status = pod.status.as_ref();
    let ready_since = ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    let restarts = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .fold(0i32, i32::saturating_add);
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        revision: hash_label(pod).map(str::to_string),
        updated: is_updated(pod, hash, generation),
        phase: phase(pod).to_string(),
        ready_since,
        available: is_available(pod, min_ready, now),
        restarts,
    }
}

/// The scheduler's message when it cannot place `pod` (PodScheduled False, reason Unschedulable).
pub fn unschedulable_message(pod: &CachedPod) -> Option<String> {
    let spec_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    if spec_node.is_some_and(|n| !n.is_empty()) {
        return None;
    }
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .filter(|c| c.reason.as_deref() == Some("Unschedulable"))
        .map(|c| c.message.clone().unwrap_or_default())
}

/// The pod's container statuses, init containers first.
fn container_statuses(pod: &CachedPod) -> impl Iterator<Item = &CachedContainerStatus> {
    pod.status.iter().flat_map(|s| {
        s.init_container_statuses
            .iter()
            .flatten()
            .chain(s.container_statuses.iter().flatten())
    })
}

/// The first container (init containers first) waiting for a reason in
/// [`FAILING_CONTAINER_REASONS`]: (container, reason, message).
pub fn failing_container(pod: &CachedPod) -> Option<(String, String, String)> {
    container_statuses(pod).find_map(|c| {
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        FAILING_CONTAINER_REASONS.contains(&reason).then(|| {
            (
                c.name.clone(),
                reason.to_string(),
                waiting.message.clone().unwrap_or_default(),
            )
        })
    })
}

/// The first container's waiting reason (ContainerCreating, PodInitializing, ...).
fn waiting_reason(pod: &CachedPod) -> Option<String> {
    container_statuses(pod).find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
}

/// Why a pod of the current revision is where it is.
fn updated_pod_reason(
    pod: &CachedPod,
    min_ready: i32,
    now: Timestamp,
    backoff_until: Option<Timestamp>,
) -> Reason {
    if phase(pod) == "Failed" {
        return failed(pod, backoff_until);
    }
    if let Some(message) = unschedulable_message(pod) {
        return Reason::Unschedulable { message };
    }
    if let Some((container, reason, message)) = failing_container(pod) {
        return Reason::ContainerFailing {
            container,
            reason,
            message,
        };
    }
    if is_available(pod, min_ready, now) {
        return Reason::UpToDate;
    }
    if is_ready(pod) {
        let since = ready_condition(pod)
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        if let Some(at) = since.and_then(|t| {
            t.checked_add(SignedDuration::from_secs(i64::from(min_ready)))
                .ok()
        }) {
            return Reason::NotYetAvailable { available_at: at };
        }
    }
    Reason::Starting {
        waiting_reason: waiting_reason(pod),
    }
}

fn failed(pod: &CachedPod, backoff_until: Option<Timestamp>) -> Reason {
    let status = pod.status.as_ref();
    let message = status
        .and_then(|s| s.message.clone().or_else(|| s.reason.clone()))
        .unwrap_or_default();
    Reason::PodFailed {
        message,
        backoff_until,
    }
}

/// The inputs of [`explain`] beyond the DaemonSet, nodes and pods.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Manage's failed-pod backoffs by node (the controller's; empty outside it).
    pub backoff_until: Option<&'a BTreeMap<String, Timestamp>>,
    /// The DaemonSetRollout's decision for this sync, when the DaemonSet has one.
    pub rollout: Option<&'a crate::core::rollout::RolloutPlan>,
    /// The (gated) rolling update plan this sync acted on, if it planned one: outdated pods'
    /// reasons read it instead of planning again (not read with `classes_only`).
    pub rolling_update: Option<&'a RollingUpdatePlan>,
    /// The caller reads only each row's reason class, its unschedulable and quiet reasons, and the
    /// counters (the controller's sync): every row's `pod` is left empty, and an outdated pod's
    /// reason says [`OutdatedWait::NextSync`] instead of planning the rolling update to say what
    /// it waits for. The facts cost a few string copies per node in every sync (about 6 % of its
    /// CPU at 5000 nodes in issue 14's profile), the plan a whole rolling update when the sync
    /// skipped it (3 %).
    pub classes_only: bool,
}

/// The row of every named node of `nodes` for `ds`, with its claimed pods by node (`node_pods`,
/// terminal+terminating pods excluded as for manage), the current revision `hash`, at `now`.
/// Rows are in `nodes` order.
///
/// One placement per node, shared by the rows and the counters (the controller runs this at the
/// end of every sync); the rolling update is planned only when a row has an outdated pod, the
/// caller passed no plan, and [`Context::classes_only`] is not set.
pub fn explain<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    context: &Context,
) -> Explanation {
    let placements = Placements::of(ds, nodes);
    explain_placed(ds, &placements, node_pods, hash, now, context)
}

/// [`explain`] over the sync's placements of its nodes.
pub fn explain_placed(
    ds: &DaemonSet,
    placements: &Placements<'_>,
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    context: &Context,
) -> Explanation {
    // Planned on first need: only outdated pods' reasons read it.
    let mut rolling: Option<Option<Rolling>> = None;
    let gate = context.rollout.map(RolloutPlan::gate).unwrap_or(Gate::OPEN);
    let on_delete = !is_rolling_update(ds);
    let mut tally = CounterTally::new(ds, hash, now);
    let generation = template_generation(ds);
    let min_ready = min_ready_seconds(ds);
    let empty = BTreeMap::new();
    let backoffs = context.backoff_until.unwrap_or(&empty);
    let empty_waits = BTreeMap::new();
    // Why the DaemonSetRollout holds a node (none without one: every row is upstream's).
    let policy_waits = context.rollout.map(|p| &p.waits).unwrap_or(&empty_waits);
    let mut rows = Vec::with_capacity(placements.len());
    for placed in placements {
        let name = placed.name;
        let (fit, exclusion) = (placed.placement, placed.exclusion.clone());
        let on_node = node_pods.get(name).map(Vec::as_slice);
        tally.add(fit.should_run, on_node);
        let pods: &[Arc<CachedPod>] = on_node.unwrap_or_default();
        // The oldest scheduled live pod, and the oldest scheduled updated one: the first of each
        // in `oldest_scheduled_first` order (`min_by` keeps the first of equals, as a stable sort
        // would), without collecting a node's pods (this runs for every node in every sync).
        let live = || pods.iter().map(Arc::as_ref).filter(|p| !is_terminating(p));
        let oldest = |a: &&CachedPod, b: &&CachedPod| oldest_scheduled_first(a, b);
        let first_live = live().min_by(oldest);
        let has_live = first_live.is_some();
        let updated = live()
            .filter(|p| is_updated(p, hash, generation))
            .min_by(oldest);
        let main = updated.or(first_live).or(pods.first().map(Arc::as_ref));
        let facts = main
            .filter(|_| !context.classes_only)
            .map(|p| pod_facts(p, hash, generation, min_ready, now));
        let backoff_until = backoffs.get(name).copied();
        let policy_wait = policy_waits.get(name);
        let reason = match (fit.should_run, exclusion) {
            // Every excluded node with a pod is counted in numberMisscheduled; a pod still there
            // (terminating included) is being removed unless it may stay.
            (false, Some(exclusion)) => {
                if pods.is_empty() {
                    Reason::Excluded { exclusion }
                } else if fit.should_continue_running && has_live {
                    Reason::Misscheduled { exclusion }
                } else if let (Some(wait), true) = (policy_wait, has_live) {
                    Reason::RemovalHeld {
                        exclusion,
                        wait: wait.clone(),
                    }
                } else {
                    Reason::Removing { exclusion }
                }
            }
            _ => match (updated, first_live) {
                (Some(pod), _) => updated_pod_reason(pod, min_ready, now, backoff_until),
                (None, None) if pods.is_empty() => match policy_wait {
                    Some(wait) => Reason::NoPodHeld(wait.clone()),
                    None => Reason::NoPod,
                },
                (None, None) => Reason::Terminating,
                (None, Some(old)) if phase(old) == "Failed" => failed(old, backoff_until),
                (None, Some(old)) => {
                    if on_delete {
                        Reason::Outdated(OutdatedWait::OnDelete)
                    } else if let Some(wait) = policy_wait {
                        Reason::Outdated(OutdatedWait::Policy(wait.clone()))
                    } else if context.classes_only {
                        Reason::Outdated(OutdatedWait::NextSync)
                    } else {
                        let rolling = rolling.get_or_insert_with(|| {
                            let plan = match context.rolling_update {
                                Some(plan) => Some(Cow::Borrowed(plan)),
                                None => plan_rolling_update_placed(
                                    ds, placements, node_pods, hash, now, gate,
                                )
                                .ok()
                                .map(Cow::Owned),
                            };
                            plan.map(|plan| rolling_plan(plan, node_pods))
                        });
                        Reason::Outdated(outdated_wait(rolling.as_ref(), name, old))
                    }
                }
            },
        };
        rows.push(NodeRow {
            node: name.to_string(),
            wanted: fit.should_run,
            pod: facts,
            reason,
        });
    }
    Explanation {
        rows,
        counters: tally.counters(),
    }
}

/// The rolling update's plan, with the nodes holding each budget, computed once per explanation.
struct Rolling<'p> {
    plan: Cow<'p, RollingUpdatePlan>,
    /// maxUnavailable's holders: the plan's `held_by` (nodes already unavailable) and the nodes
    /// whose old pod it deletes in this sync, in name order.
    unavailable: Vec<String>,
    /// maxSurge's holders: `held_by` and the nodes it creates a surge pod on, in name order.
    surging: Vec<String>,
}

fn rolling_plan<'p>(plan: Cow<'p, RollingUpdatePlan>, node_pods: &NodePods) -> Rolling<'p> {
    use std::collections::BTreeSet;
    let replaced = nodes_holding(node_pods, &plan.pods_to_delete);
    let held = || plan.held_by.iter().map(String::as_str);
    let unavailable: BTreeSet<&str> = held().chain(replaced).collect();
    let surging: BTreeSet<&str> = held()
        .chain(plan.nodes_to_create.iter().map(String::as_str))
        .collect();
    let owned = |set: BTreeSet<&str>| set.into_iter().map(str::to_string).collect();
    Rolling {
        unavailable: owned(unavailable),
        surging: owned(surging),
        plan,
    }
}

/// Why the outdated pod `old` on `node` waits.
fn outdated_wait(rolling: Option<&Rolling>, node: &str, old: &CachedPod) -> OutdatedWait {
    let Some(Rolling {
        plan,
        unavailable,
        surging,
    }) = rolling
    else {
        return OutdatedWait::NextSync;
    };
    let old_name = old.metadata.name.as_deref().unwrap_or_default();
    if plan.pods_to_delete.iter().any(|p| p == old_name)
        || plan.nodes_to_create.iter().any(|n| n == node)
    {
        return OutdatedWait::BeingReplaced;
    }
    match plan.waiting.get(node) {
        Some(&rule) => {
            let (limit, holders) = match rule {
                UpdateWait::MaxSurge => (plan.budget.max_surge, surging.as_slice()),
                UpdateWait::MaxUnavailable => (plan.budget.max_unavailable, unavailable.as_slice()),
                _ => (plan.budget.max_unavailable, &[][..]),
            };
            OutdatedWait::Rollout {
                rule,
                limit,
                held_by: holders.iter().take(NAMED_HOLDERS).cloned().collect(),
                held_by_total: holders.len(),
            }
        }
        None => OutdatedWait::NextSync,
    }
}

impl Explanation {
    /// How many rows fall in each class.
    pub fn by_class(&self) -> BTreeMap<ReasonClass, usize> {
        let mut out: BTreeMap<ReasonClass, usize> =
            ReasonClass::ALL.iter().map(|c| (*c, 0)).collect();
        for row in &self.rows {
            *out.entry(row.class()).or_default() += 1;
        }
        out
    }

    /// The one-line summary, e.g. `13 nodes: 11 run an up-to-date available pod, 1 excluded by
    /// taint, 1 waiting for the budget`. Phrases in order of first appearance by class (ok,
    /// excluded, waiting, failed).
    pub fn summary(&self) -> String {
        let mut groups: Vec<(ReasonClass, (String, String), usize)> = Vec::new();
        for row in &self.rows {
            let phrase = row.reason.summary_phrase();
            match groups.iter_mut().find(|(_, p, _)| *p == phrase) {
                Some(g) => g.2 += 1,
                None => groups.push((row.class(), phrase, 1)),
            }
        }
        groups.sort_by_key(|(class, _, _)| *class);
        let parts: Vec<String> = groups
            .into_iter()
            .map(|(_, (one, many), n)| {
                if n == 1 {
                    format!("1 {one}")
                } else {
                    format!("{n} {many}")
                }
            })
            .collect();
        let n = self.rows.len();
        let nodes = if n == 1 { "node" } else { "nodes" };
        if parts.is_empty() {
            format!("{n} {nodes}")
        } else {
            format!("{n} {nodes}: {}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests;
