//! `DaemonSetRollout` (everynode.io/v1alpha1): rollout controls for the apps/v1 DaemonSet of the
//! same name in the same namespace.
//!
//! The DaemonSet stays a plain apps/v1 object (Helm, Terraform, `kubectl rollout` keep working on
//! it); this optional object beside it adds pause, freeze, partition, update scope, waves, pacing,
//! a canary, a failure policy, a progress deadline and a mass-deletion guard. Without one, everynode
//! behaves exactly as the upstream controller.
//!
//! Why the same name and no target field: at most one policy per DaemonSet is then guaranteed by
//! the API server itself, the lookup is O(1), and a rename cannot silently move a policy.
//!
//! Defaults live in code (`core::rollout::policy`), not in the schema, so GitOps tools see no
//! server-side drift. Validation lives in the schema as CEL rules, so the API server rejects bad
//! values with the messages below.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::Rule;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An integer of at least 0, or a percentage from 0% to 100%.
pub const SHARE_RULE: &str = "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')";
/// An integer of at least 1, or a percentage from 1% to 100%.
pub const POSITIVE_SHARE_RULE: &str =
    "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')";
/// A label key: an optional DNS-subdomain prefix and '/', then a name of 1 to 63 characters.
pub const LABEL_KEY_RULE: &str = "self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$')";

/// Rollout controls for the apps/v1 DaemonSet of the same name in the same namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "everynode.io",
    version = "v1alpha1",
    kind = "DaemonSetRollout",
    namespaced,
    shortname = "dsr",
    category = "everynode",
    status = "DaemonSetRolloutStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Rollout controls for the apps/v1 DaemonSet of the same name in the same namespace",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Wave","type":"string","jsonPath":".status.wave"}"#,
    printcolumn = r#"{"name":"Updated","type":"string","jsonPath":".status.progress","description":"nodes on the update revision / desired"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.progressDeadlineSeconds) || !has(self.minSecondsBetweenNodeUpdates) || self.progressDeadlineSeconds > self.minSecondsBetweenNodeUpdates"
).message("progressDeadlineSeconds must be longer than minSecondsBetweenNodeUpdates").field_path(".progressDeadlineSeconds"))]
pub struct DaemonSetRolloutSpec {
    /// No old pod is replaced. Nodes without a pod still get one (at the update revision), and
    /// misscheduled and failed pods are still handled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Nothing at all is created or deleted for the DaemonSet; its status is still written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
    /// Eligible nodes that keep the old revision (an integer, or a percentage rounded up): the last
    /// ones in update order. Lowering it releases the next nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SHARE_RULE).message("partition must be an integer of at least 0 or a percentage from 0% to 100%"))]
    pub partition: Option<IntOrString>,
    /// Only nodes matching this selector are updated; the others keep their revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_scope: Option<LabelSelector>,
    /// Update a few nodes first, bake, then promote (automatically or by approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Update the nodes wave by wave, one value of a node label at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Waves>,
    /// At least this many seconds between the starts of two node updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub min_seconds_between_node_updates: Option<i32>,
    /// When a pod of the new revision counts as failing, and what happens then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,
    /// No progress for this many seconds sets Progressing=False, reason ProgressDeadlineExceeded,
    /// as for Deployments. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: Option<i32>,
    /// Hold deletions when a change would remove more than a share of the pods at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass_deletion_guard: Option<MassDeletionGuard>,
    /// Written by `kubectl everynode approve|promote|abort`; each names what it applies to, so a
    /// stale approval cannot approve the next rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Approvals>,
}

/// Canary: the first nodes of a rollout, spread over a node label.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    /// How many nodes (an integer of at least 1, or a percentage rounded up).
    #[x_kube(validation = Rule::new(POSITIVE_SHARE_RULE).message("canary.nodes must be an integer of at least 1 or a percentage from 1% to 100%"))]
    pub nodes: IntOrString,
    /// Spread the canary nodes evenly over this node label's values (e.g.
    /// topology.kubernetes.io/zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(LABEL_KEY_RULE).message("canary.spreadByLabel must be a node label key such as topology.kubernetes.io/zone"))]
    #[schemars(length(max = 317))]
    pub spread_by_label: Option<String>,
    /// Seconds the updated canary must stay available, with no restart, before promotion.
    /// Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub bake_seconds: Option<i32>,
    /// Automatic (default): promote when baked. Manual: wait for `kubectl everynode approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
}

/// How a baked canary is promoted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Promotion {
    /// Promote as soon as the canary has baked.
    #[default]
    Automatic,
    /// Wait for `kubectl everynode approve daemonset/NAME`.
    Manual,
}

/// Waves: one value of a node label at a time.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Waves {
    /// The node label whose values make the waves (e.g. topology.kubernetes.io/zone).
    #[x_kube(validation = Rule::new(LABEL_KEY_RULE).message("waves.nodeLabel must be a node label key such as topology.kubernetes.io/zone: an optional DNS prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.'"))]
    #[schemars(length(max = 317))]
    pub node_label: String,
    /// Values updated first, in this order; other values follow, sorted; nodes without the label
    /// go last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "set"))]
    pub order: Vec<String>,
    /// Seconds a finished wave must stay available, with no restart, before the next one starts.
    /// Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub bake_seconds: Option<i32>,
}

/// When a pod of the new revision is failing, and what to do.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailurePolicy {
    /// A new pod that restarted more than this many times is failing. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_restarts: Option<i32>,
    /// Pause (default): stop the rollout. Rollback: write the last complete template back.
    #[serde(default)]
    #[schemars(extend("default" = null))]
    pub action: FailureAction,
}

/// What a failing rollout does.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureAction {
    /// Stop replacing pods; phase Failed.
    #[default]
    Pause,
    /// Write the template of the last complete revision back (as `kubectl rollout undo`).
    Rollback,
}

/// The mass-deletion guard.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MassDeletionGuard {
    /// Hold when more than this share of the pods would go at once. Default "50%"; "100%" turns
    /// the guard off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SHARE_RULE).message("maxDeletions must be an integer of at least 0 or a percentage from 0% to 100%"))]
    pub max_deletions: Option<IntOrString>,
}

/// Approvals, each bound to what it approves.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Approvals {
    /// A Manual canary of this update revision may be promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub canary_revision: Option<String>,
    /// Skip the bakes (and the canary approval) of this revision up to a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<Promote>,
    /// Leave Failed for this revision and try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub retry_revision: Option<String>,
    /// Roll this revision back now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub abort_revision: Option<String>,
    /// Mass deletions of this DaemonSet generation may proceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletions_for_generation: Option<i64>,
}

/// `kubectl everynode promote`: steps up to `throughStep` of `revision` count as baked.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Promote {
    #[schemars(length(max = 63))]
    pub revision: String,
    #[schemars(range(min = 0))]
    pub through_step: i32,
}

/// The rollout's phase.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Phase {
    Progressing,
    Paused,
    Frozen,
    Baking,
    WaitingForApproval,
    Complete,
    Failed,
    RolledBack,
}

impl Phase {
    /// Every phase, in declaration order (metrics export one series per phase).
    pub const ALL: [Phase; 8] = [
        Phase::Progressing,
        Phase::Paused,
        Phase::Frozen,
        Phase::Baking,
        Phase::WaitingForApproval,
        Phase::Complete,
        Phase::Failed,
        Phase::RolledBack,
    ];

    /// The name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::Frozen => "Frozen",
            Phase::Baking => "Baking",
            Phase::WaitingForApproval => "WaitingForApproval",
            Phase::Complete => "Complete",
            Phase::Failed => "Failed",
            Phase::RolledBack => "RolledBack",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the controller last decided for the DaemonSet of the same name.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetRolloutStatus {
    /// The DaemonSetRollout generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The DaemonSet generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_set_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The revision (pod-template-hash) the DaemonSet's template has now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// The revision most not-yet-updated nodes run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// The last revision that ran on every eligible node, updated and available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete_revision: Option<String>,
    /// Eligible nodes (should run a pod and in the update scope).
    #[serde(default)]
    pub desired_nodes: i32,
    /// Eligible nodes running a pod of the update revision.
    #[serde(default)]
    pub updated_nodes: i32,
    /// Eligible nodes running an available pod of the update revision.
    #[serde(default)]
    pub available_nodes: i32,
    /// "updated/desired", for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The current step ("canary", "2/3 topology.kubernetes.io/zone=b"), for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
    /// The current step and its clocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepStatus>,
    /// The canary of the update revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// Per wave: its nodes and progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<WaveStatus>,
    /// When the last node update started (the pacing anchor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_start_time: Option<Time>,
    /// When the rollout last made progress (the progress deadline's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_progress_time: Option<Time>,
    /// The most updated and available nodes seen for the update revision (only gains are progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water: Option<HighWater>,
    /// Failing pods of the update revision (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<FailingPod>,
    /// Revisions that failed (at most 5, newest last); never rolled out again by themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_revisions: Vec<String>,
    /// The last rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
    /// Deletions held by the mass-deletion guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_deletions: Option<HeldDeletions>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The current step: 0 is the canary when there is one, then the waves.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    pub index: i32,
    pub name: String,
    /// When the step's nodes were all updated and available (the bake started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_started_at: Option<Time>,
    /// The restarts of the step's new pods when the bake started; more restarts the bake.
    #[serde(default)]
    pub bake_restarts: i32,
}

/// The canary of the update revision.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The update revision these canary nodes were chosen for.
    pub revision: String,
    /// The canary nodes (chosen once per revision).
    pub nodes: Vec<String>,
    #[serde(default)]
    pub updated: i32,
    #[serde(default)]
    pub available: i32,
    /// When the canary was promoted (baked, and approved when Manual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Time>,
}

/// One wave.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WaveStatus {
    /// The label value ("" for nodes without the label).
    pub value: String,
    /// The wave's nodes (at most 100 names; `nodeCount` has them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub node_count: i32,
    #[serde(default)]
    pub updated: i32,
    #[serde(default)]
    pub available: i32,
    /// When the wave finished baking (sticky for the revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baked_at: Option<Time>,
}

/// The progress deadline's high-water mark.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HighWater {
    pub revision: String,
    pub updated: i32,
    pub available: i32,
}

/// A failing pod of the update revision.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailingPod {
    pub node: String,
    pub pod: String,
    /// CrashLoopBackOff, ImagePullBackOff, Restarts, NotAvailable, Failed, ...
    pub reason: String,
    #[serde(default)]
    pub restarts: i32,
}

/// A rollback and its cause.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// The failed revision.
    pub from: String,
    /// The revision written back.
    pub to: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}

/// Deletions the mass-deletion guard holds.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HeldDeletions {
    /// Pods that would be deleted.
    pub pods: i32,
    /// Of this many pods of the DaemonSet.
    pub of: i32,
    /// The DaemonSet generation that `kubectl everynode approve` lets through.
    pub daemon_set_generation: i64,
}
