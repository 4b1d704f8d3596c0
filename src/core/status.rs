//! DaemonSet status: the seven counters, whether to write them, and the minReadySeconds requeue
//! (upstream `updateDaemonSetStatus` / `storeDaemonSetStatus`, §6).

use crate::core::Timestamp;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::placement::Placements;
use crate::core::pod_state::{
    condition_available, is_updated, oldest_scheduled_first, ready_condition,
};
use crate::core::pods_by_node::NodePods;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

/// The seven status counters of §6.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCounters {
    pub desired_number_scheduled: i32,
    pub current_number_scheduled: i32,
    pub number_misscheduled: i32,
    pub number_ready: i32,
    pub updated_number_scheduled: i32,
    pub number_available: i32,
    pub number_unavailable: i32,
}

pub use crate::core::pod_template::template_generation;

/// The DaemonSet's `spec.minReadySeconds` (0 when unset).
pub fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn saturating_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The counters of `ds` over `nodes` and its claimed pods grouped by node (terminal+terminating
/// pods excluded), with revision `hash`, at `now` (§6). Pods on nodes not in `nodes` are not
/// counted; nodes without a name are skipped.
pub fn compute_counters<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
) -> StatusCounters {
    compute_counters_placed(ds, &Placements::of(ds, nodes), node_pods, hash, now)
}

/// [`compute_counters`] over the sync's placements of its nodes.
pub fn compute_counters_placed(
    ds: &DaemonSet,
    placements: &Placements<'_>,
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
) -> StatusCounters {
    let mut tally = CounterTally::new(ds, hash, now);
    for placed in placements {
        let pods = node_pods.get(placed.name).map(Vec::as_slice);
        tally.add(placed.placement.should_run, pods);
    }
    tally.counters()
}

/// [`compute_counters`] node by node, for a caller that has each node's placement at hand already
/// (`core::node_reason::explain`), so the nodes are not placed twice.
#[derive(Debug)]
pub struct CounterTally<'h> {
    hash: &'h str,
    now: Timestamp,
    min_ready: i32,
    generation: Option<i64>,
    desired: usize,
    current: usize,
    misscheduled: usize,
    ready: usize,
    available: usize,
    updated: usize,
}

impl<'h> CounterTally<'h> {
    pub fn new(ds: &DaemonSet, hash: &'h str, now: Timestamp) -> Self {
        Self {
            hash,
            now,
            min_ready: min_ready_seconds(ds),
            generation: template_generation(ds),
            desired: 0,
            current: 0,
            misscheduled: 0,
            ready: 0,
            available: 0,
            updated: 0,
        }
    }

    /// One named node: whether it should run a pod (placement's `should_run`) and its claimed
    /// pods, if any.
    pub fn add(&mut self, should_run: bool, pods: Option<&[Arc<CachedPod>]>) {
        let oldest = pods.and_then(|pods| pods.iter().min_by(|a, b| oldest_scheduled_first(a, b)));
        if !should_run {
            if oldest.is_some() {
                self.misscheduled += 1;
            }
            return;
        }
        self.desired += 1;
        let Some(pod) = oldest else { return };
        self.current += 1;
        // The Ready condition is found once for both counters (this runs for every node in every
        // sync).
        if let Some(ready) = ready_condition(pod).filter(|c| c.status == "True") {
            self.ready += 1;
            if condition_available(ready, self.min_ready, self.now) {
                self.available += 1;
            }
        }
        if is_updated(pod, self.hash, self.generation) {
            self.updated += 1;
        }
    }

    /// The counters of the nodes added so far.
    pub fn counters(&self) -> StatusCounters {
        let desired = saturating_i32(self.desired);
        let available = saturating_i32(self.available);
        StatusCounters {
            desired_number_scheduled: desired,
            current_number_scheduled: saturating_i32(self.current),
            number_misscheduled: saturating_i32(self.misscheduled),
            number_ready: saturating_i32(self.ready),
            updated_number_scheduled: saturating_i32(self.updated),
            number_available: available,
            number_unavailable: desired.saturating_sub(available),
        }
    }
}

impl StatusCounters {
    /// The counters as currently recorded in `status` (absent optional fields count as 0).
    pub fn of(status: &DaemonSetStatus) -> Self {
        Self {
            desired_number_scheduled: status.desired_number_scheduled,
            current_number_scheduled: status.current_number_scheduled,
            number_misscheduled: status.number_misscheduled,
            number_ready: status.number_ready,
            updated_number_scheduled: status.updated_number_scheduled.unwrap_or(0),
            number_available: status.number_available.unwrap_or(0),
            number_unavailable: status.number_unavailable.unwrap_or(0),
        }
    }

    /// Writes the seven counters into `status`, and `observed_generation` when given; every other
    /// field (conditions, collisionCount) is left alone. Used for the first attempt and, on a
    /// freshly read DaemonSet, for the retry.
    pub fn apply_to(&self, status: &mut DaemonSetStatus, observed_generation: Option<i64>) {
        if let Some(generation) = observed_generation {
            status.observed_generation = Some(generation);
        }
        status.desired_number_scheduled = self.desired_number_scheduled;
        status.current_number_scheduled = self.current_number_scheduled;
        status.number_misscheduled = self.number_misscheduled;
        status.number_ready = self.number_ready;
        status.updated_number_scheduled = Some(self.updated_number_scheduled);
        status.number_available = Some(self.number_available);
        status.number_unavailable = Some(self.number_unavailable);
    }
}

/// The observedGeneration a status write sets: `metadata.generation` (0 when unset) when
/// `update_observed_generation`, else `None` (left as it is).
pub fn observed_generation_to_write(
    ds: &DaemonSet,
    update_observed_generation: bool,
) -> Option<i64> {
    update_observed_generation.then(|| ds.metadata.generation.unwrap_or(0))
}

/// The status to PUT for `ds`, or `None` when no request is needed: all seven counters equal the
/// current status and `status.observedGeneration ≥ metadata.generation`. The new status is the
/// current one (conditions and collisionCount preserved) with the counters, and observedGeneration
/// set to the generation only when `update_observed_generation`.
pub fn status_to_write(
    ds: &DaemonSet,
    counters: &StatusCounters,
    update_observed_generation: bool,
) -> Option<DaemonSetStatus> {
    let current = ds.status.clone().unwrap_or_default();
    let observed = current.observed_generation.unwrap_or(0);
    if StatusCounters::of(&current) == *counters && observed >= ds.metadata.generation.unwrap_or(0)
    {
        return None;
    }
    let mut status = current;
    counters.apply_to(
        &mut status,
        observed_generation_to_write(ds, update_observed_generation),
    );
    Some(status)
}

/// After a successful status store: requeue the DaemonSet after `minReadySeconds` when it is
/// positive and some ready pods are not yet available (guards against clock skew, §6).
pub fn min_ready_requeue(ds: &DaemonSet, counters: &StatusCounters) -> Option<Duration> {
    let min_ready = min_ready_seconds(ds);
    (min_ready > 0 && counters.number_ready != counters.number_available)
        .then(|| Duration::from_secs(u64::from(min_ready.unsigned_abs())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cached_pod::CachedPod;
    use crate::core::fixtures::*;
    use crate::core::labels::{CONTROLLER_REVISION_HASH, POD_TEMPLATE_GENERATION};
    use crate::core::pods_by_node::group_by_node;
    use k8s_openapi::api::apps::v1::DaemonSetCondition;
    use std::sync::Arc;

    const HASH: &str = "hash-1";

    fn nodes(n: usize) -> Vec<CachedNode> {
        (0..n).map(|i| node(&format!("node-{i}"))).collect()
    }

    fn grouped(pods: Vec<CachedPod>) -> NodePods {
        let pods: Vec<Arc<CachedPod>> = pods.into_iter().map(Arc::new).collect();
        group_by_node(pods.iter(), false)
    }

    /// The counters, checked to be those `node_reason::explain` tallies from its rows' placements
    /// (the controller writes explain's).
    fn counters(
        ds: &DaemonSet,
        nodes: &[CachedNode],
        pods: Vec<CachedPod>,
        now: i64,
    ) -> StatusCounters {
        let grouped = grouped(pods);
        let counted = compute_counters(ds, nodes, &grouped, HASH, ts(now));
        let explained = crate::core::node_reason::explain(
            ds,
            nodes,
            &grouped,
            HASH,
            ts(now),
            &Default::default(),
        );
        assert_eq!(explained.counters, counted, "explain's counters");
        counted
    }

    fn named(ds: &DaemonSet, node: &str, name: &str) -> CachedPod {
        with_name(ds_pod(ds, node, HASH), name)
    }

    #[test]
    fn no_nodes_counts_nothing() {
        let ds = daemonset("foo");
        assert_eq!(counters(&ds, &[], vec![], 0), StatusCounters::default());
    }

    #[test]
    fn desired_counts_nodes_that_should_run() {
        let ds = with_node_selector(daemonset("foo"), &[("color", "blue")]);
        let mut all = nodes(3);
        all.push(node_with_labels("node-3", &[("color", "blue")]));
        all.push(node_with_labels("node-4", &[("color", "blue")]));
        let c = counters(&ds, &all, vec![], 0);
        assert_eq!(c.desired_number_scheduled, 2);
        assert_eq!(c.current_number_scheduled, 0);
        assert_eq!(c.number_unavailable, 2);
    }

    #[test]
    fn current_counts_nodes_with_any_pod_including_pending_failed_terminating() {
        let ds = daemonset("foo");
        let pods = vec![
            with_phase(named(&ds, "node-0", "a"), "Pending"),
            with_phase(named(&ds, "node-1", "b"), "Failed"),
            with_deletion_timestamp(named(&ds, "node-2", "c"), 5),
            named(&ds, "node-3", "d"),
            named(&ds, "node-3", "e"),
        ];
        let c = counters(&ds, &nodes(5), pods, 10);
        assert_eq!(c.desired_number_scheduled, 5);
        assert_eq!(c.current_number_scheduled, 4);
        assert_eq!(c.number_misscheduled, 0);
    }

    #[test]
    fn misscheduled_counts_nodes_that_should_not_run_but_have_pods() {
        let ds = daemonset("foo");
        let all = vec![
            node("node-0"),
            with_taint(node("node-1"), "dedicated", "user1", "NoSchedule"),
            with_taint(node("node-2"), "dedicated", "user1", "NoExecute"),
            with_taint(node("node-3"), "dedicated", "user1", "NoSchedule"),
        ];
        let pods = vec![
            named(&ds, "node-0", "a"),
            named(&ds, "node-1", "b"),
            named(&ds, "node-2", "c"),
        ];
        let c = counters(&ds, &all, pods, 0);
        assert_eq!(c.desired_number_scheduled, 1);
        assert_eq!(c.current_number_scheduled, 1);
        assert_eq!(c.number_misscheduled, 2);
    }

    #[test]
    fn pods_on_nodes_not_in_the_list_are_not_counted() {
        let ds = daemonset("foo");
        let pods = vec![running_ready(named(&ds, "gone", "a"), 0)];
        let c = counters(&ds, &nodes(1), pods, 10);
        assert_eq!(
            c,
            StatusCounters {
                desired_number_scheduled: 1,
                number_unavailable: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn ready_available_and_updated_look_at_the_oldest_pod_only() {
        let ds = daemonset("foo");
        // node-0: the oldest pod (t=1) is ready; a newer unready one is ignored.
        let old_ready = with_creation_timestamp(running_ready(named(&ds, "node-0", "a"), 0), 1);
        let new_unready = with_creation_timestamp(named(&ds, "node-0", "b"), 2);
        // node-1: the oldest pod is not ready; a newer ready one does not count.
        let old_unready = with_creation_timestamp(
            without_pod_label(named(&ds, "node-1", "c"), CONTROLLER_REVISION_HASH),
            1,
        );
        let new_ready = with_creation_timestamp(running_ready(named(&ds, "node-1", "d"), 0), 2);
        // node-2: an unscheduled (affinity-pinned) pod sorts after a bound one even if older.
        let unscheduled_old = with_creation_timestamp(
            with_affinity_pin(
                with_pod_node_name(running_ready(named(&ds, "", "e"), 0), ""),
                "node-2",
            ),
            0,
        );
        let bound_new = with_creation_timestamp(named(&ds, "node-2", "f"), 5);
        let c = counters(
            &ds,
            &nodes(3),
            vec![
                old_ready,
                new_unready,
                old_unready,
                new_ready,
                unscheduled_old,
                bound_new,
            ],
            10,
        );
        assert_eq!(c.desired_number_scheduled, 3);
        assert_eq!(c.current_number_scheduled, 3);
        assert_eq!(c.number_ready, 1);
        assert_eq!(c.number_available, 1);
        assert_eq!(c.number_unavailable, 2);
        assert_eq!(
            c.updated_number_scheduled, 2,
            "node-1's oldest pod has no hash label"
        );
    }

    #[test]
    fn ties_on_creation_time_are_broken_by_name() {
        let ds = daemonset("foo");
        let b = running_ready(named(&ds, "node-0", "b"), 0);
        let a = named(&ds, "node-0", "a");
        let c = counters(&ds, &nodes(1), vec![b, a], 10);
        assert_eq!(c.number_ready, 0, "pod a is the oldest and it is not ready");
    }

    #[test]
    fn available_requires_min_ready_seconds() {
        let ds = with_min_ready_seconds(daemonset("foo"), 15);
        let pods = vec![
            running_ready(named(&ds, "node-0", "a"), 0),
            running_ready(named(&ds, "node-1", "b"), 10),
            with_ready(named(&ds, "node-2", "c"), false, 0),
        ];
        let c = counters(&ds, &nodes(3), pods, 20);
        assert_eq!(c.number_ready, 2);
        assert_eq!(c.number_available, 1);
        assert_eq!(c.number_unavailable, 2);
        // Once minReadySeconds have passed the second one is available too.
        let pods = vec![
            running_ready(named(&ds, "node-0", "a"), 0),
            running_ready(named(&ds, "node-1", "b"), 10),
        ];
        assert_eq!(counters(&ds, &nodes(3), pods, 26).number_available, 2);
    }

    #[test]
    fn updated_by_hash_or_template_generation() {
        let ds = with_template_generation(daemonset("foo"), Some("3"));
        let by_hash = named(&ds, "node-0", "a");
        let by_generation = with_pod_label(
            without_pod_label(named(&ds, "node-1", "b"), CONTROLLER_REVISION_HASH),
            POD_TEMPLATE_GENERATION,
            "3",
        );
        let stale_generation = with_pod_label(
            with_pod_label(named(&ds, "node-2", "c"), CONTROLLER_REVISION_HASH, "old"),
            POD_TEMPLATE_GENERATION,
            "2",
        );
        let neither = without_pod_label(named(&ds, "node-3", "d"), CONTROLLER_REVISION_HASH);
        let pods = vec![by_hash, by_generation, stale_generation, neither];
        assert_eq!(
            counters(&ds, &nodes(4), pods.clone(), 0).updated_number_scheduled,
            2
        );
        // An unparsable annotation is ignored: only the hash counts.
        let bad = with_template_generation(ds.clone(), Some("x"));
        assert_eq!(
            counters(&bad, &nodes(4), pods, 0).updated_number_scheduled,
            1
        );
    }

    #[test]
    fn template_generation_parses_the_annotation() {
        assert_eq!(template_generation(&daemonset("foo")), Some(1));
        assert_eq!(
            template_generation(&with_template_generation(daemonset("foo"), Some("12"))),
            Some(12)
        );
        assert_eq!(
            template_generation(&with_template_generation(daemonset("foo"), Some("1.5"))),
            None
        );
        assert_eq!(
            template_generation(&with_template_generation(daemonset("foo"), None)),
            None
        );
    }

    #[test]
    fn misscheduled_nodes_do_not_count_ready_or_updated() {
        let ds = daemonset("foo");
        let all = vec![with_taint(
            node("node-0"),
            "dedicated",
            "user1",
            "NoSchedule",
        )];
        let c = counters(
            &ds,
            &all,
            vec![running_ready(named(&ds, "node-0", "a"), 0)],
            10,
        );
        assert_eq!(
            c,
            StatusCounters {
                number_misscheduled: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn test_number_ready_status() {
        for ds in [with_on_delete(daemonset("foo")), daemonset("foo")] {
            let all: Vec<CachedNode> = (0..2)
                .map(|i| {
                    node_with_labels(
                        &format!("node-{i}"),
                        &[("color", "blue"), ("speed", "fast")],
                    )
                })
                .collect();
            let pods = vec![named(&ds, "node-0", "a"), named(&ds, "node-1", "b")];
            let c = counters(&ds, &all, pods.clone(), 0);
            let status = status_to_write(&ds, &c, true).expect("status changes");
            assert_eq!(status.number_ready, 0);
            let mut ds = ds.clone();
            ds.status = Some(status);
            let ready: Vec<CachedPod> = pods.into_iter().map(|p| with_ready(p, true, 0)).collect();
            let c = counters(&ds, &all, ready, 0);
            let status = status_to_write(&ds, &c, true).expect("status changes");
            assert_eq!(status.number_ready, 2);
            assert_eq!(status.number_available, Some(2));
        }
    }

    #[test]
    fn test_observed_generation() {
        for mut ds in [with_on_delete(daemonset("foo")), daemonset("foo")] {
            ds.metadata.generation = Some(1);
            let all = vec![node_with_labels(
                "node-0",
                &[("color", "blue"), ("speed", "fast")],
            )];
            let c = counters(&ds, &all, vec![named(&ds, "node-0", "a")], 0);
            let status = status_to_write(&ds, &c, true).expect("status changes");
            assert_eq!(status.observed_generation, ds.metadata.generation);
        }
    }

    fn status_with(c: &StatusCounters, observed: i64) -> DaemonSetStatus {
        let mut s = DaemonSetStatus::default();
        c.apply_to(&mut s, Some(observed));
        s
    }

    fn sample() -> StatusCounters {
        StatusCounters {
            desired_number_scheduled: 5,
            current_number_scheduled: 4,
            number_misscheduled: 1,
            number_ready: 3,
            updated_number_scheduled: 2,
            number_available: 2,
            number_unavailable: 3,
        }
    }

    #[test]
    fn no_write_when_counters_equal_and_generation_observed() {
        let mut ds = daemonset("foo");
        ds.metadata.generation = Some(4);
        let c = sample();
        ds.status = Some(status_with(&c, 4));
        assert_eq!(status_to_write(&ds, &c, true), None);
        assert_eq!(status_to_write(&ds, &c, false), None);
        ds.status = Some(status_with(&c, 5));
        assert_eq!(
            status_to_write(&ds, &c, true),
            None,
            "observedGeneration ahead still counts as observed"
        );
    }

    #[test]
    fn unset_status_and_generation_with_zero_counters_needs_no_write() {
        let mut ds = daemonset("foo");
        ds.metadata.generation = None;
        assert_eq!(status_to_write(&ds, &StatusCounters::default(), true), None);
        ds.metadata.generation = Some(1);
        let written = status_to_write(&ds, &StatusCounters::default(), true)
            .expect("generation not observed");
        assert_eq!(written.observed_generation, Some(1));
    }

    #[test]
    fn each_changed_counter_triggers_a_write() {
        let mut ds = daemonset("foo");
        ds.metadata.generation = Some(1);
        let base = sample();
        ds.status = Some(status_with(&base, 1));
        let changes: [fn(&mut StatusCounters); 7] = [
            |c| c.desired_number_scheduled += 1,
            |c| c.current_number_scheduled += 1,
            |c| c.number_misscheduled += 1,
            |c| c.number_ready += 1,
            |c| c.updated_number_scheduled += 1,
            |c| c.number_available += 1,
            |c| c.number_unavailable += 1,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut c = base;
            change(&mut c);
            let written =
                status_to_write(&ds, &c, true).unwrap_or_else(|| panic!("change {i} not written"));
            assert_eq!(StatusCounters::of(&written), c, "change {i}");
        }
    }

    #[test]
    fn stale_observed_generation_triggers_a_write_and_is_raised_only_when_allowed() {
        let mut ds = daemonset("foo");
        ds.metadata.generation = Some(3);
        let c = sample();
        ds.status = Some(status_with(&c, 2));
        let raised = status_to_write(&ds, &c, true).expect("generation not observed");
        assert_eq!(raised.observed_generation, Some(3));
        let kept = status_to_write(&ds, &c, false).expect("generation not observed");
        assert_eq!(kept.observed_generation, Some(2));
    }

    #[test]
    fn unsatisfied_sync_writes_counters_without_observed_generation() {
        let mut ds = daemonset("foo");
        ds.metadata.generation = Some(2);
        ds.status = Some(status_with(&StatusCounters::default(), 1));
        let written = status_to_write(&ds, &sample(), false).expect("counters changed");
        assert_eq!(StatusCounters::of(&written), sample());
        assert_eq!(written.observed_generation, Some(1));
    }

    #[test]
    fn conditions_and_collision_count_are_preserved() {
        let mut ds = daemonset("foo");
        ds.metadata.generation = Some(1);
        let condition = DaemonSetCondition {
            type_: "StatusUpdate".into(),
            status: "True".into(),
            reason: Some("E2E".into()),
            message: Some("Set from e2e test".into()),
            last_transition_time: None,
        };
        ds.status = Some(DaemonSetStatus {
            collision_count: Some(3),
            conditions: Some(vec![condition.clone()]),
            ..Default::default()
        });
        let written = status_to_write(&ds, &sample(), true).expect("counters changed");
        assert_eq!(written.collision_count, Some(3));
        assert_eq!(written.conditions, Some(vec![condition]));
        assert_eq!(StatusCounters::of(&written), sample());
        assert_eq!(written.observed_generation, Some(1));
    }

    #[test]
    fn apply_to_a_fresh_object_keeps_its_other_fields() {
        let mut fresh = DaemonSetStatus {
            collision_count: Some(9),
            observed_generation: Some(7),
            ..Default::default()
        };
        sample().apply_to(&mut fresh, None);
        assert_eq!(fresh.collision_count, Some(9));
        assert_eq!(fresh.observed_generation, Some(7));
        assert_eq!(StatusCounters::of(&fresh), sample());
        sample().apply_to(&mut fresh, Some(8));
        assert_eq!(fresh.observed_generation, Some(8));
    }

    #[test]
    fn min_ready_requeue_only_when_ready_differs_from_available() {
        let ds = daemonset("foo");
        let mut c = sample();
        assert_eq!(min_ready_requeue(&ds, &c), None, "minReadySeconds 0");
        let slow = with_min_ready_seconds(daemonset("foo"), 15);
        assert_eq!(min_ready_requeue(&slow, &c), Some(Duration::from_secs(15)));
        c.number_available = c.number_ready;
        assert_eq!(min_ready_requeue(&slow, &c), None);
    }
}
