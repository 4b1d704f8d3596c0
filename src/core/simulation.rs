//! A pure in-memory cluster for tests: runs whole syncs (manage, then the rolling update) against
//! a pod store where creates and deletes take effect at once, like upstream's fake pod control.
#![cfg(test)]

use crate::api::{DaemonSetRollout, DaemonSetRolloutSpec, DaemonSetRolloutStatus};
use crate::core::Timestamp;
use crate::core::backoff::FailedPodBackoff;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::fixtures::{
    ds_pod, ts, with_creation_timestamp, with_name, with_phase, with_pod_label, with_ready,
};
use crate::core::labels::{
    BURST_REPLICAS, POD_TEMPLATE_GENERATION, TEMPLATE_GENERATION_ANNOTATION,
};
use crate::core::manage::plan_manage;
use crate::core::pod_state::{is_ready, is_terminal, is_terminating};
use crate::core::pods_by_node::NodePods;
use crate::core::rolling_update::{
    RollingUpdateError, RollingUpdatePlan, plan_rolling_update, plan_rolling_update_gated,
};
use crate::core::rollout::guard::restrict_manage;
use crate::core::rollout::{Mode as RolloutMode, RolloutInput, RolloutPlan, plan_rollout};
use crate::core::status::template_generation;
use k8s_openapi::api::apps::v1::DaemonSet;
use std::collections::BTreeMap;
use std::sync::Arc;

/// When the rolling update runs relative to manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Upstream's unit tests, and the real controller when manage's creates and deletes are
    /// observed before the second expectations check: every sync runs manage *and then* the
    /// rolling update, on the pods as manage left them (the cache re-read, as upstream and the
    /// shell do; see [`crate::core::claimed_view`]).
    FakePodControl,
    /// The real controller: after manage issued creates or deletes the expectations are not yet
    /// observed, so the rolling update only runs in syncs where manage issued nothing.
    Informers,
}

/// The rolling-update step of one sync: its input pods and its plan (as issued, truncated).
#[derive(Debug, Clone)]
pub struct RollingStep {
    /// The pods by node the planner was given (terminal+terminating pods excluded).
    pub before: NodePods,
    /// What it decided.
    pub plan: RollingUpdatePlan,
}

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// Nodes manage created a pod on.
    pub manage_creates: Vec<String>,
    /// Pods manage deleted.
    pub manage_deletes: Vec<String>,
    /// The rolling update, when it ran.
    pub rolling: Option<RollingStep>,
    /// With a rollout policy: its decision at the start of the sync.
    pub rollout: Option<RolloutPlan>,
}

impl SyncOutcome {
    /// Creates issued in the sync (manage + rolling update), as upstream's tests count them.
    pub fn creates(&self) -> usize {
        self.manage_creates.len()
            + self
                .rolling
                .as_ref()
                .map_or(0, |r| r.plan.nodes_to_create.len())
    }

    /// Deletes issued in the sync (manage + rolling update).
    pub fn deletes(&self) -> usize {
        self.manage_deletes.len()
            + self
                .rolling
                .as_ref()
                .map_or(0, |r| r.plan.pods_to_delete.len())
    }

    /// `(creates, deletes)`.
    pub fn counts(&self) -> (usize, usize) {
        (self.creates(), self.deletes())
    }
}

/// One DaemonSet, its nodes and its pods, with a clock in whole seconds.
#[derive(Debug, Clone)]
pub struct Sim {
    pub ds: DaemonSet,
    pub nodes: Vec<CachedNode>,
    /// The current revision's hash.
    pub hash: String,
    /// Seconds since the epoch.
    pub now: i64,
    pub mode: Mode,
    /// Every pod of the DaemonSet by node (including terminal and terminating ones), in node-name
    /// order so that a simulation replays the same way every time.
    pods: BTreeMap<String, Vec<Arc<CachedPod>>>,
    backoff: FailedPodBackoff,
    seq: u64,
    /// The rollout policy and its last status ([`Sim::with_rollout`]).
    pub rollout: Option<(DaemonSetRollout, DaemonSetRolloutStatus)>,
}

impl Sim {
    /// A cluster with `nodes`, no pods, `ds` at revision `hash`, clock at 0.
    pub fn new(ds: DaemonSet, nodes: Vec<CachedNode>, hash: &str, mode: Mode) -> Self {
        Self {
            ds,
            nodes,
            hash: hash.to_string(),
            now: 0,
            mode,
            pods: BTreeMap::new(),
            backoff: FailedPodBackoff::default(),
            seq: 0,
            rollout: None,
        }
    }

    /// Every sync plans with a `DaemonSetRollout` of `spec` (named as the DaemonSet), as the
    /// shell does: freeze and hold skip manage and the rolling update, the guard post-filters
    /// manage, the rolling update runs through the plan's gate, and the status is kept.
    pub fn with_rollout(mut self, spec: DaemonSetRolloutSpec) -> Self {
        let mut rollout =
            DaemonSetRollout::new(&self.ds.metadata.name.clone().unwrap_or_default(), spec);
        rollout.metadata.generation = Some(1);
        self.rollout = Some((rollout, DaemonSetRolloutStatus::default()));
        self
    }

    /// Every pod, terminating ones included (the pacing anchor reads them).
    fn all_pods(&self) -> Vec<Arc<CachedPod>> {
        self.pods.values().flatten().cloned().collect()
    }

    /// The rollout policy's plan on the pods as they are now.
    pub fn plan_rollout(&self, starts_issued: bool) -> Option<RolloutPlan> {
        let (rollout, previous) = self.rollout.as_ref()?;
        let node_pods = self.input();
        let pods = self.all_pods();
        Some(plan_rollout(&RolloutInput {
            ds: &self.ds,
            nodes: &self.nodes,
            node_pods: &node_pods,
            pods: &pods,
            hash: &self.hash,
            revisions: &[],
            rollout,
            previous,
            starts_issued,
            now: self.timestamp(),
        }))
    }

    /// The clock as a timestamp.
    pub fn timestamp(&self) -> Timestamp {
        ts(self.now)
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, secs: i64) {
        self.now += secs;
    }

    /// A template change: `change` edits the DaemonSet, the revision becomes `hash`, and the
    /// template-generation annotation (if any) is bumped as the API server does.
    pub fn update_template(&mut self, hash: &str, change: impl FnOnce(&mut DaemonSet)) {
        change(&mut self.ds);
        self.hash = hash.to_string();
        if let Some(generation) = template_generation(&self.ds) {
            let annotations = self
                .ds
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            annotations.insert(
                TEMPLATE_GENERATION_ANNOTATION.to_string(),
                (generation + 1).to_string(),
            );
        }
    }

    /// Adds a pod (as it is) on `node`.
    pub fn add_pod(&mut self, node: &str, pod: CachedPod) {
        self.pods
            .entry(node.to_string())
            .or_default()
            .push(Arc::new(pod));
    }

    /// Creates a daemon pod of the current revision on `node`, as `syncNodes` would: not ready,
    /// created now, named so that later pods sort after earlier ones. Returns its name.
    pub fn create_pod(&mut self, node: &str) -> String {
        self.seq += 1;
        let ds_name = self.ds.metadata.name.clone().unwrap_or_default();
        let name = format!("{ds_name}-{:06}-{node}", self.seq);
        let mut pod = with_creation_timestamp(
            with_name(ds_pod(&self.ds, node, &self.hash), &name),
            self.now,
        );
        if let Some(generation) = template_generation(&self.ds) {
            pod = with_pod_label(pod, POD_TEMPLATE_GENERATION, &generation.to_string());
        }
        self.add_pod(node, pod);
        name
    }

    /// Removes a pod (deleted, evicted, garbage collected). Returns whether it existed.
    pub fn remove_pod(&mut self, name: &str) -> bool {
        let mut found = false;
        for pods in self.pods.values_mut() {
            let before = pods.len();
            pods.retain(|p| p.metadata.name.as_deref() != Some(name));
            found |= pods.len() != before;
        }
        self.pods.retain(|_, pods| !pods.is_empty());
        found
    }

    /// Edits a pod in place. Returns whether it exists.
    pub fn modify_pod(&mut self, name: &str, change: impl FnOnce(&mut CachedPod)) -> bool {
        let pod = self
            .pods
            .values_mut()
            .flatten()
            .find(|p| p.metadata.name.as_deref() == Some(name));
        match pod {
            Some(pod) => {
                change(Arc::make_mut(pod));
                true
            }
            None => false,
        }
    }

    /// Every pod with its node, by node name then in creation order.
    pub fn pods(&self) -> impl Iterator<Item = (&str, &Arc<CachedPod>)> {
        self.pods
            .iter()
            .flat_map(|(node, pods)| pods.iter().map(move |p| (node.as_str(), p)))
    }

    /// The pods on `node`.
    pub fn pods_on(&self, node: &str) -> &[Arc<CachedPod>] {
        self.pods.get(node).map(Vec::as_slice).unwrap_or_default()
    }

    /// Names of every pod, in [`Sim::pods`] order.
    pub fn pod_names(&self) -> Vec<String> {
        self.pods()
            .filter_map(|(_, p)| p.metadata.name.clone())
            .collect()
    }

    /// Upstream's `setPodReadiness`: sets the Ready condition to `ready` (transition time = now)
    /// on at most `limit` pods matching `matches`, skipping terminating and terminal pods and
    /// pods already in that state. Ready pods also become `Running`. Returns how many changed.
    pub fn set_readiness(
        &mut self,
        ready: bool,
        limit: usize,
        matches: impl Fn(&str, &CachedPod) -> bool,
    ) -> usize {
        let now = self.now;
        let mut changed = 0;
        for (node, pods) in self.pods.iter_mut() {
            for pod in pods.iter_mut() {
                if changed >= limit {
                    return changed;
                }
                if is_terminating(pod)
                    || is_terminal(pod)
                    || is_ready(pod) == ready
                    || !matches(node, pod)
                {
                    continue;
                }
                let updated = with_ready((**pod).clone(), ready, now);
                *pod = Arc::new(if ready {
                    with_phase(updated, "Running")
                } else {
                    updated
                });
                changed += 1;
            }
        }
        changed
    }

    /// Upstream's `markPodsReady`: every (non-terminating, non-terminal) pod becomes ready now.
    pub fn mark_all_ready(&mut self) -> usize {
        self.set_readiness(true, usize::MAX, |_, _| true)
    }

    /// The controller's input: pods by node without terminal pods that are also terminating.
    pub fn input(&self) -> NodePods {
        self.pods
            .iter()
            .map(|(node, pods)| {
                let kept: Vec<Arc<CachedPod>> = pods
                    .iter()
                    .filter(|p| !(is_terminal(p) && is_terminating(p)))
                    .cloned()
                    .collect();
                (node.clone(), kept)
            })
            .filter(|(_, pods)| !pods.is_empty())
            .collect()
    }

    fn apply(&mut self, creates: &[String], deletes: &[String]) {
        for name in deletes {
            self.remove_pod(name);
        }
        for node in creates {
            self.create_pod(node);
        }
    }

    /// One sync of a DaemonSet whose expectations are satisfied: manage, then (see [`Mode`]) the
    /// rolling update if the strategy is RollingUpdate. Each list is truncated to the burst limit
    /// and applied at once. A rolling-update error is returned after manage's work was applied.
    pub fn sync(&mut self) -> Result<SyncOutcome, RollingUpdateError> {
        let now = self.timestamp();
        let decision = self.plan_rollout(false);
        if let Some(d) = decision.as_ref().filter(|d| d.mode != RolloutMode::Act) {
            let status = d.status.clone();
            if let Some((_, previous)) = self.rollout.as_mut() {
                *previous = status;
            }
            return Ok(SyncOutcome {
                rollout: decision,
                ..SyncOutcome::default()
            });
        }
        let mut manage = plan_manage(
            &self.ds,
            &self.nodes,
            &self.input(),
            &self.hash,
            now,
            &mut self.backoff,
        );
        if let Some(d) = &decision {
            restrict_manage(&mut manage, &d.keep, &self.input());
        }
        let mut outcome = SyncOutcome {
            manage_creates: truncated(manage.nodes_needing_pods),
            manage_deletes: truncated(manage.pods_to_delete),
            rolling: None,
            rollout: None,
        };
        self.apply(&outcome.manage_creates, &outcome.manage_deletes);
        let manage_issued =
            !outcome.manage_creates.is_empty() || !outcome.manage_deletes.is_empty();
        if self.mode == Mode::Informers && manage_issued {
            self.end_rollout(decision, false, &mut outcome);
            return Ok(outcome);
        }
        let before = self.input();
        let plan = match &decision {
            Some(d) => plan_rolling_update_gated(
                &self.ds,
                &self.nodes,
                &before,
                &self.hash,
                now,
                d.gate(),
            )?,
            None => plan_rolling_update(&self.ds, &self.nodes, &before, &self.hash, now)?,
        };
        let plan = RollingUpdatePlan {
            pods_to_delete: truncated(plan.pods_to_delete),
            nodes_to_create: truncated(plan.nodes_to_create),
            ..plan
        };
        self.apply(&plan.nodes_to_create, &plan.pods_to_delete);
        let starts_issued = decision.as_ref().is_some_and(|d| {
            let starts = d.starts.as_ref();
            let started = |node: &str| starts.is_none_or(|s| s.contains(node));
            plan.nodes_to_create.iter().any(|n| started(n))
                || plan.pods_to_delete.iter().any(|pod| {
                    before.iter().any(|(n, pods)| {
                        started(n) && pods.iter().any(|p| p.metadata.name.as_deref() == Some(pod))
                    })
                })
        });
        outcome.rolling = Some(RollingStep { before, plan });
        self.end_rollout(decision, starts_issued, &mut outcome);
        Ok(outcome)
    }

    /// The end-of-sync plan: its status becomes the previous status of the next sync.
    fn end_rollout(
        &mut self,
        decision: Option<RolloutPlan>,
        starts_issued: bool,
        outcome: &mut SyncOutcome,
    ) {
        let end = self.plan_rollout(starts_issued);
        if let (Some(end), Some((_, previous))) = (end, self.rollout.as_mut()) {
            *previous = end.status;
        }
        outcome.rollout = decision;
    }

    /// Runs one sync and asserts its `(creates, deletes)`; panics on a rolling-update error.
    #[track_caller]
    pub fn expect_sync(&mut self, creates: usize, deletes: usize) -> SyncOutcome {
        let outcome = match self.sync() {
            Ok(outcome) => outcome,
            Err(error) => panic!("sync failed: {error}"),
        };
        assert_eq!(
            outcome.counts(),
            (creates, deletes),
            "(creates, deletes) of the sync at t={}: {outcome:?}",
            self.now
        );
        outcome
    }
}

fn truncated(mut names: Vec<String>) -> Vec<String> {
    names.truncate(BURST_REPLICAS);
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{daemonset, node, with_rolling_update, with_template_generation};
    use crate::core::pod_state::is_updated;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn nodes(n: usize) -> Vec<CachedNode> {
        (0..n).map(|i| node(&format!("node-{i}"))).collect()
    }

    #[test]
    fn creates_and_deletes_take_effect_at_once() {
        let ds = with_template_generation(daemonset("foo"), None);
        let mut sim = Sim::new(ds, nodes(3), "h1", Mode::FakePodControl);
        sim.expect_sync(3, 0);
        assert_eq!(sim.pods().count(), 3);
        sim.expect_sync(0, 0);
        let first = sim.pod_names()[0].clone();
        assert!(sim.remove_pod(&first));
        assert!(!sim.remove_pod(&first));
        sim.expect_sync(1, 0);
    }

    #[test]
    fn created_pods_carry_hash_and_template_generation_and_sort_by_creation() {
        let mut sim = Sim::new(daemonset("foo"), nodes(1), "h1", Mode::FakePodControl);
        let a = sim.create_pod("node-0");
        sim.update_template("h2", |_| {});
        let b = sim.create_pod("node-0");
        assert!(a < b);
        let pods = sim.pods_on("node-0");
        assert!(is_updated(&pods[0], "h1", Some(1)) && !is_updated(&pods[0], "h2", Some(2)));
        assert!(is_updated(&pods[1], "h2", Some(2)));
        assert_eq!(template_generation(&sim.ds), Some(2));
    }

    #[test]
    fn readiness_changes_skip_pods_already_in_that_state() {
        let mut sim = Sim::new(daemonset("foo"), nodes(2), "h1", Mode::FakePodControl);
        sim.expect_sync(2, 0);
        sim.advance(7);
        assert_eq!(sim.set_readiness(true, 1, |_, _| true), 1);
        assert_eq!(sim.mark_all_ready(), 1);
        assert_eq!(sim.mark_all_ready(), 0);
        assert_eq!(
            sim.set_readiness(false, usize::MAX, |node, _| node == "node-1"),
            1
        );
    }

    /// Surge 1 on 2 nodes: node-0 has its old pod and a new pod that became available, so manage
    /// deletes the old one and, its delete observed before the second check, the rolling update
    /// runs in the same sync. Planned on the view from before manage (the old shell order), it
    /// deletes that old pod a second time; planned on the re-read view it deletes nothing twice.
    #[test]
    fn the_rolling_update_plans_on_the_view_after_manage_acted() {
        let ds = with_template_generation(daemonset("foo"), None);
        let mut sim = Sim::new(ds, nodes(2), "h1", Mode::FakePodControl);
        sim.expect_sync(2, 0);
        sim.mark_all_ready();
        sim.update_template("h2", |ds| {
            *ds = with_rolling_update(
                ds.clone(),
                Some(IntOrString::Int(0)),
                Some(IntOrString::Int(1)),
            );
        });
        sim.expect_sync(1, 0);
        sim.advance(1);
        sim.mark_all_ready();

        let stale = sim.input();
        let outcome = sim.expect_sync(1, 1);
        let manage_deleted = outcome.manage_deletes.clone();
        let rolling = outcome
            .rolling
            .as_ref()
            .map(|r| r.plan.clone())
            .unwrap_or_default();
        assert!(
            rolling
                .pods_to_delete
                .iter()
                .all(|p| !manage_deleted.contains(p)),
            "re-read view: {outcome:?}"
        );
        let planned_on_stale =
            plan_rolling_update(&sim.ds, &sim.nodes, &stale, &sim.hash, sim.timestamp())
                .unwrap_or_default();
        assert!(
            planned_on_stale
                .pods_to_delete
                .iter()
                .any(|p| manage_deleted.contains(p)),
            "the stale view deletes manage's pod again: manage {manage_deleted:?}, stale plan {planned_on_stale:?}"
        );
    }

    #[test]
    fn informers_mode_defers_the_rolling_update_after_manage_work() {
        // The sync that upstream's unit test counts as (2 creates, 2 deletes) with maxSurge 2 is
        // two syncs with real informers: manage's 2 deletes, then the rolling update's 2 creates.
        for (mode, syncs) in [
            (Mode::FakePodControl, vec![(2, 2), (0, 0)]),
            (Mode::Informers, vec![(0, 2), (2, 0), (0, 0)]),
        ] {
            let ds = with_template_generation(daemonset("foo"), None);
            let mut sim = Sim::new(ds, nodes(5), "h1", mode);
            sim.expect_sync(5, 0);
            sim.mark_all_ready();
            sim.update_template("h2", |ds| {
                *ds = with_rolling_update(
                    ds.clone(),
                    Some(IntOrString::Int(0)),
                    Some(IntOrString::Int(2)),
                );
            });
            sim.expect_sync(2, 0);
            sim.expect_sync(0, 0);
            sim.mark_all_ready();
            for (creates, deletes) in syncs {
                sim.expect_sync(creates, deletes);
            }
        }
    }
}
