//! The rollout policy (`DaemonSetRollout`): a pure function of the DaemonSet, nodes, pods, the
//! policy, its last status and the clock, composed with upstream's planners without changing them.
//!
//! [`plan_rollout`] returns which outdated nodes the upstream rolling-update planner may start now
//! ([`RolloutPlan::gate`]), whether the sync acts at all ([`Mode`]), why each held node waits
//! ([`PolicyWait`]), the status and conditions to write and the events to publish. Without a
//! `DaemonSetRollout` the shell never calls it, and every decision is upstream's.
//!
//! One concept per file:
//! - `policy`: the spec with its defaults filled in;
//! - `order`: eligibility, scope, canary choice, waves, update order, partition;
//! - `steps`: canary and wave steps, bake, promotion, approval;
//! - `pacing`: the minimum time between node-update starts;
//! - `failure`: failing pods of the update revision;
//! - `revisions`: last complete revision, rollback target;
//! - `deadline`: the progress deadline's clock;
//! - `guard`: the mass-deletion guard;
//! - `phase`: the phase state machine;
//! - `conditions`: the DaemonSetRollout's conditions and their mirror on the DaemonSet;
//! - `reasons`: per-node policy reasons ([`PolicyWait`]);
//! - `trigger`: which DaemonSetRollout change queues its DaemonSet;
//! - `commands`: the patches of `kubectl everynode pause|resume|...`;
//! - `plan`: the composition, [`plan_rollout`].

use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetCondition};

use crate::api::{DaemonSetRollout, DaemonSetRolloutStatus};
use crate::core::Timestamp;
use crate::core::events::PlannedEvent;
use crate::core::pods_by_node::NodePods;
use crate::core::rolling_update::Gate;

pub mod commands;
pub mod conditions;
pub mod deadline;
pub mod facts;
pub mod failure;
pub mod guard;
pub mod order;
pub mod pacing;
pub mod phase;
pub mod plan;
pub mod policy;
pub mod reasons;
pub mod revisions;
pub mod steps;
#[cfg(test)]
mod tests;
pub mod trigger;

pub use plan::plan_rollout;
pub use reasons::PolicyWait;

/// Everything [`plan_rollout`] decides from.
#[derive(Debug, Clone, Copy)]
pub struct RolloutInput<'a, N: Borrow<CachedNode>> {
    pub ds: &'a DaemonSet,
    pub nodes: &'a [N],
    /// Claimed pods by node, terminal and terminating pods excluded (as manage gets them).
    pub node_pods: &'a NodePods,
    /// Claimed pods, terminating ones included (the pacing anchor reads deletions).
    pub pods: &'a [Arc<CachedPod>],
    /// The update revision (the DaemonSet template's pod-template-hash).
    pub hash: &'a str,
    /// The DaemonSet's own ControllerRevisions.
    pub revisions: &'a [RevisionRef],
    pub rollout: &'a DaemonSetRollout,
    /// The last status: the leader's memory of its own last write, else the cached status.
    pub previous: &'a DaemonSetRolloutStatus,
    /// This sync started a node update (deleted or surged on a node of [`RolloutPlan::starts`]);
    /// set on the end-of-sync call only.
    pub starts_issued: bool,
    pub now: Timestamp,
}

/// One owned ControllerRevision, as the policy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRef {
    /// The ControllerRevision's name.
    pub name: String,
    /// Its pod-template-hash.
    pub hash: String,
    /// Its revision number.
    pub revision: i64,
}

/// What the sync may do at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Manage and the rolling update run, the rolling update through [`RolloutPlan::gate`].
    #[default]
    Act,
    /// `frozen`: no pod is created or deleted and no revision cleaned up; status is still written.
    Freeze,
    /// The policy cannot be used (it does not decode or contradicts itself): act as frozen, and say
    /// why. Acting without the policy the user asked for is never the fallback.
    Hold,
    /// Write the template of an earlier revision back into the DaemonSet (`kubectl rollout undo`).
    Rollback(RollbackOrder),
}

/// A rollback the shell performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOrder {
    /// The failed revision's hash.
    pub from: String,
    /// The hash written back.
    pub to: String,
    /// The ControllerRevision whose `data` is written back.
    pub revision_name: String,
    /// Why (for the event, the condition and `status.rollback`).
    pub reason: String,
}

/// The policy's decision for one sync.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RolloutPlan {
    pub mode: Mode,
    /// Wanted outdated nodes whose update may start now; `None`: every one (upstream).
    pub starts: Option<BTreeSet<String>>,
    /// Nodes whose pods nothing may delete (the mass-deletion guard).
    pub keep: BTreeSet<String>,
    /// Why each held node waits: outdated nodes not started, nodes without a pod under freeze,
    /// pods whose deletion the guard holds.
    pub waits: BTreeMap<String, PolicyWait>,
    /// The DaemonSetRollout status to write (conditions merged; planning twice on the same inputs
    /// gives the same status).
    pub status: DaemonSetRolloutStatus,
    /// The conditions mirrored on the DaemonSet's `status.conditions`.
    pub ds_conditions: Vec<DaemonSetCondition>,
    /// Events for transitions relative to the previous status.
    pub events: Vec<PlannedEvent>,
    /// When to look again (bake end, pacing, deadline).
    pub requeue_after: Option<Duration>,
}

impl RolloutPlan {
    /// The seam into upstream's rolling-update planner.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            starts: self.starts.as_ref(),
            keep: (!self.keep.is_empty()).then_some(&self.keep),
        }
    }
}
