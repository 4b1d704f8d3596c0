use super::*;
use crate::core::cached_pod::CachedPod;
use crate::core::fixtures::{
    daemonset, ds_pod_arc, node, node_with_labels, running_ready, ts, with_deletion_timestamp,
    with_node_selector, with_on_delete, with_rolling_update,
};
use crate::core::node_reason::{Context, PodFacts, explain};
use crate::core::pods_by_node::group_by_node;
use crate::core::rolling_update::UpdateWait;
use k8s_openapi::api::apps::v1::DaemonSetStatus;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::sync::Arc;

const GEN: i64 = 2;

/// DaemonSet `agent` at generation [`GEN`] with its status as the API server holds it:
/// observedGeneration, desired, updated, available.
fn held_ds(observed: i64, desired: i32, updated: i32, available: i32) -> DaemonSet {
    let mut ds = daemonset("agent");
    ds.metadata.generation = Some(GEN);
    ds.status = Some(DaemonSetStatus {
        observed_generation: Some(observed),
        desired_number_scheduled: desired,
        current_number_scheduled: desired,
        number_ready: available,
        updated_number_scheduled: Some(updated),
        number_available: Some(available),
        number_unavailable: Some(desired - available),
        ..Default::default()
    });
    ds
}

fn facts(updated: bool, available: bool) -> PodFacts {
    PodFacts {
        name: "p".into(),
        revision: Some(if updated { "new" } else { "old" }.into()),
        updated,
        phase: "Running".into(),
        ready_since: None,
        available,
        restarts: 0,
    }
}

/// A wanted node's row; `pod`: `None` (no pod), `Some(updated)`.
fn row(node: &str, pod: Option<bool>, reason: Reason) -> NodeRow {
    let available = reason == Reason::UpToDate;
    NodeRow {
        node: node.into(),
        wanted: true,
        pod: pod.map(|updated| facts(updated, available)),
        reason,
    }
}

fn up(node: &str) -> NodeRow {
    row(node, Some(true), Reason::UpToDate)
}

fn starting(node: &str) -> NodeRow {
    row(
        node,
        Some(true),
        Reason::Starting {
            waiting_reason: Some("ContainerCreating".into()),
        },
    )
}

fn outdated(node: &str) -> NodeRow {
    row(
        node,
        Some(false),
        Reason::Outdated(OutdatedWait::Rollout {
            rule: UpdateWait::MaxUnavailable,
            limit: 1,
            held_by: vec!["n0".into()],
            held_by_total: 1,
        }),
    )
}

fn unschedulable(node: &str) -> NodeRow {
    row(
        node,
        Some(true),
        Reason::Unschedulable {
            message: "0/3 nodes are available: 1 Insufficient cpu.".into(),
        },
    )
}

fn crashing(node: &str) -> NodeRow {
    row(
        node,
        Some(true),
        Reason::ContainerFailing {
            container: "c".into(),
            reason: "CrashLoopBackOff".into(),
            message: "back-off 10s restarting failed container".into(),
        },
    )
}

fn excluded(node: &str, key: &str, value: &str, node_value: Option<&str>) -> NodeRow {
    NodeRow {
        node: node.into(),
        wanted: false,
        pod: None,
        reason: Reason::Excluded {
            exclusion: Exclusion::Affinity(Mismatch::NodeSelector {
                key: key.into(),
                value: value.into(),
                node_value: node_value.map(str::to_string),
            }),
        },
    }
}

fn expl(rows: Vec<NodeRow>) -> Explanation {
    Explanation {
        rows,
        counters: StatusCounters::default(),
    }
}

fn limits(deadline: u64, grace: u64) -> Limits {
    Limits {
        progress_deadline: Duration::from_secs(deadline),
        failure_grace: Duration::from_secs(grace),
    }
}

const NONE: &BTreeSet<String> = &BTreeSet::new();

/// A watch: observations fed in order, each at its time, the verdict of the last.
struct Watch {
    progress: Option<Progress>,
    limits: Limits,
}

impl Watch {
    fn new(limits: Limits) -> Self {
        Self {
            progress: None,
            limits,
        }
    }

    fn look(&mut self, at: i64, ds: &DaemonSet, e: &Explanation) -> Verdict {
        self.look_settling(at, ds, e, NONE)
    }

    fn look_settling(
        &mut self,
        at: i64,
        ds: &DaemonSet,
        e: &Explanation,
        settling: &BTreeSet<String>,
    ) -> Verdict {
        let p = observe(self.progress.as_ref(), ds, e, settling, ts(at));
        let v = verdict(ds, e, &p, ts(at), &self.limits);
        self.progress = Some(p);
        v
    }

    fn since(&self) -> Option<Timestamp> {
        self.progress.as_ref().map(|p| p.since)
    }
}

fn once(ds: &DaemonSet, e: &Explanation) -> Verdict {
    Watch::new(limits(600, 0)).look(100, ds, e)
}

fn progressing(v: Verdict) -> Step {
    match v {
        Verdict::Progressing(step) => step,
        other => panic!("expected Progressing, got {other:?}"),
    }
}

fn blocked(v: Verdict) -> (Blocker, Step) {
    match v {
        Verdict::CannotProgress { blocker, step } => (blocker, step),
        other => panic!("expected CannotProgress, got {other:?}"),
    }
}

// ---- completion -------------------------------------------------------------------------------

#[test]
fn complete_is_kubectls_every_pod_updated_and_available_with_the_spec_observed() {
    let e = expl(vec![up("n0"), up("n1"), up("n2")]);
    assert_eq!(
        once(&held_ds(GEN, 3, 3, 3), &e),
        Verdict::Complete {
            desired: 3,
            no_node: None
        }
    );
    // A newer observedGeneration than generation (never written so, but kubectl accepts it).
    assert_eq!(once(&held_ds(GEN + 1, 3, 3, 3), &e).exit_code(), Some(0));
}

#[test]
fn a_spec_not_yet_observed_is_not_complete_even_with_full_counters() {
    let step = progressing(once(
        &held_ds(GEN - 1, 3, 3, 3),
        &expl(vec![up("n0"), up("n1"), up("n2")]),
    ));
    assert_eq!(
        step.stage,
        Stage::SpecNotObserved {
            generation: GEN,
            observed: GEN - 1
        }
    );
    assert_eq!(
        step.headline("agent"),
        "Waiting for daemon set \"agent\" spec update to be observed..."
    );
}

#[test]
fn a_new_daemonset_without_status_is_not_complete_with_desired_0() {
    let mut ds = daemonset("agent");
    ds.status = None;
    let step = progressing(once(&ds, &expl(vec![])));
    assert!(matches!(step.stage, Stage::SpecNotObserved { .. }));
}

#[test]
fn updating_then_availability_in_kubectls_words() {
    let e = expl(vec![up("n0"), outdated("n1"), outdated("n2")]);
    let step = progressing(once(&held_ds(GEN, 3, 1, 1), &e));
    assert_eq!(
        step.headline("agent"),
        "Waiting for daemon set \"agent\" rollout to finish: 1 out of 3 new pods have been updated..."
    );
    assert_eq!(
        step.detail(),
        vec![
            "  n1: outdated, waiting: the budget maxUnavailable=1 is held by n0",
            "  n2: outdated, waiting: the budget maxUnavailable=1 is held by n0",
        ]
    );
    let e = expl(vec![up("n0"), starting("n1"), up("n2")]);
    let step = progressing(once(
        &with_rolling_update(held_ds(GEN, 3, 3, 2), Some(IntOrString::Int(0)), None),
        &e,
    ));
    assert_eq!(
        step.headline("agent"),
        "Waiting for daemon set \"agent\" rollout to finish: 2 of 3 updated pods are available..."
    );
    assert_eq!(
        step.detail(),
        vec!["  n1: not Ready yet (ContainerCreating)"]
    );
}

#[test]
fn desired_0_is_complete_with_a_warning_naming_a_likely_typo() {
    let ds = held_ds(GEN, 0, 0, 0);
    let e = expl(vec![
        excluded("other", "disktype", "sdd", None),
        excluded("worker", "disktype", "sdd", Some("ssd")),
    ]);
    let Verdict::Complete {
        desired: 0,
        no_node: Some(warning),
    } = once(&ds, &e)
    else {
        panic!("DESIRED 0 is complete with a warning");
    };
    assert_eq!(
        warning.words(),
        "the DaemonSet selects no node (DESIRED 0): 2 nodes: 2 excluded by nodeSelector; \
         worker: nodeSelector disktype=sdd: node has disktype=ssd"
    );
    // No node at all.
    let Verdict::Complete {
        no_node: Some(warning),
        ..
    } = once(&ds, &expl(vec![]))
    else {
        panic!("complete");
    };
    assert_eq!(
        warning.words(),
        "the DaemonSet selects no node (DESIRED 0): 0 nodes"
    );
}

#[test]
fn the_example_exclusion_prefers_a_near_miss_then_a_node_with_a_pod_then_the_first() {
    let mut with_pod = excluded("b", "k", "v", None);
    with_pod.pod = Some(facts(true, true));
    let e = expl(vec![excluded("a", "k", "v", None), with_pod.clone()]);
    assert_eq!(example_exclusion(&e).map(|(n, _)| n).as_deref(), Some("b"));
    let e = expl(vec![
        excluded("a", "k", "v", None),
        with_pod,
        excluded("c", "k", "v", Some("w")),
    ]);
    assert_eq!(example_exclusion(&e).map(|(n, _)| n).as_deref(), Some("c"));
    let e = expl(vec![excluded("a", "k", "v", None), up("b")]);
    assert_eq!(example_exclusion(&e).map(|(n, _)| n).as_deref(), Some("a"));
    assert_eq!(example_exclusion(&expl(vec![up("b")])), None);
}

// ---- maxUnavailable (kubernetes#73667) --------------------------------------------------------

#[test]
fn pods_unavailable_within_max_unavailable_do_not_complete_the_rollout_and_are_named() {
    let e = expl(vec![starting("n0"), up("n1"), up("n2")]);
    // maxUnavailable 2: the one unavailable pod is within the budget, still not complete.
    let ds = with_rolling_update(held_ds(GEN, 3, 3, 2), Some(IntOrString::Int(2)), None);
    let step = progressing(once(&ds, &e));
    assert_eq!(
        step.within_budget,
        Some(WithinBudget {
            unavailable: 1,
            max_unavailable: 2
        })
    );
    assert_eq!(
        step.detail(),
        vec![
            "  n0: not Ready yet (ContainerCreating)",
            "  1 pod is unavailable, within maxUnavailable=2: the rollout is complete once every pod is available",
        ]
    );
    // A percentage, scaled against DESIRED and rounded up as the controller does: 34% of 3 = 2.
    let ds = with_rolling_update(
        held_ds(GEN, 3, 3, 1),
        Some(IntOrString::String("34%".into())),
        None,
    );
    let step = progressing(once(&ds, &expl(vec![starting("n0"), starting("n1")])));
    assert_eq!(
        step.within_budget,
        Some(WithinBudget {
            unavailable: 2,
            max_unavailable: 2
        })
    );
    // Beyond the budget, or while still updating, or OnDelete: no note.
    let ds = with_rolling_update(held_ds(GEN, 3, 3, 0), Some(IntOrString::Int(2)), None);
    assert_eq!(progressing(once(&ds, &e)).within_budget, None);
    let ds = with_rolling_update(held_ds(GEN, 3, 2, 2), Some(IntOrString::Int(2)), None);
    assert_eq!(progressing(once(&ds, &e)).within_budget, None);
    let ds = with_on_delete(held_ds(GEN, 3, 3, 2));
    assert_eq!(progressing(once(&ds, &e)).within_budget, None);
}

#[test]
fn unavailable_pods_within_the_budget_end_at_the_progress_deadline_naming_them() {
    let ds = with_rolling_update(held_ds(GEN, 3, 3, 2), Some(IntOrString::Int(2)), None);
    let e = expl(vec![starting("n0"), up("n1"), up("n2")]);
    let mut w = Watch::new(limits(10, 5));
    progressing(w.look(0, &ds, &e));
    progressing(w.look(9, &ds, &e));
    let (blocker, step) = blocked(w.look(10, &ds, &e));
    assert_eq!(
        blocker.words(&step),
        "no progress for 10s: 2 of 3 updated pods are available"
    );
    assert_eq!(
        blocker.detail(&step),
        vec![
            "  n0: not Ready yet (ContainerCreating)",
            "  1 pod is unavailable, within maxUnavailable=2: the rollout is complete once every pod is available",
        ]
    );
}

// ---- new pods that will not run ---------------------------------------------------------------

#[test]
fn an_unschedulable_new_pod_cannot_progress_after_the_failure_grace() {
    let ds = held_ds(GEN, 3, 1, 2);
    let e = expl(vec![outdated("n0"), up("n1"), unschedulable("n2")]);
    let mut w = Watch::new(limits(600, 5));
    let step = progressing(w.look(0, &ds, &e));
    let todo: Vec<&str> = step.todo.iter().map(|t| t.node.as_str()).collect();
    assert_eq!(todo, ["n2", "n0"], "failing nodes come first");
    progressing(w.look(4, &ds, &e));
    let (blocker, step) = blocked(w.look(5, &ds, &e));
    assert_eq!(
        blocker,
        Blocker::NewPodsFailing {
            nodes: vec![Todo {
                node: "n2".into(),
                reason: unschedulable("n2").reason
            }]
        }
    );
    assert_eq!(
        blocker.words(&step),
        "new pods cannot run on 1 node (1 Unschedulable)"
    );
    assert_eq!(
        blocker.detail(&step),
        vec![
            "  n2: the scheduler cannot place the pod: 0/3 nodes are available: 1 Insufficient cpu."
        ]
    );
}

#[test]
fn every_failing_reason_of_a_new_pod_counts_and_is_grouped_by_state() {
    let ds = held_ds(GEN, 4, 4, 0);
    let failed = row(
        "n3",
        Some(true),
        Reason::PodFailed {
            message: "evicted".into(),
            backoff_until: None,
        },
    );
    let mut pulling = crashing("n2");
    if let Reason::ContainerFailing { reason, .. } = &mut pulling.reason {
        *reason = "ImagePullBackOff".into();
    }
    let e = expl(vec![unschedulable("n0"), crashing("n1"), pulling, failed]);
    let (blocker, step) = blocked(once(&ds, &e));
    assert_eq!(
        blocker.words(&step),
        "new pods cannot run on 4 nodes (1 Unschedulable, 1 CrashLoopBackOff, 1 ImagePullBackOff, 1 Failed)"
    );
}

#[test]
fn a_failure_that_stops_within_the_grace_starts_its_clock_again() {
    let ds = held_ds(GEN, 2, 1, 1);
    let bad = expl(vec![crashing("n0"), up("n1")]);
    let better = expl(vec![starting("n0"), up("n1")]);
    let mut w = Watch::new(limits(600, 5));
    progressing(w.look(0, &ds, &bad));
    progressing(w.look(3, &ds, &better));
    progressing(w.look(4, &ds, &bad));
    progressing(w.look(8, &ds, &bad));
    blocked(w.look(9, &ds, &bad));
}

#[test]
fn a_failing_old_pod_or_an_unwanted_node_does_not_block() {
    let ds = held_ds(GEN, 2, 1, 1);
    let old_failed = row(
        "n0",
        Some(false),
        Reason::PodFailed {
            message: String::new(),
            backoff_until: None,
        },
    );
    let mut unwanted = crashing("n2");
    unwanted.wanted = false;
    let e = expl(vec![old_failed, up("n1"), unwanted]);
    let mut w = Watch::new(limits(600, 0));
    progressing(w.look(0, &ds, &e));
    progressing(w.look(100, &ds, &e));
}

#[test]
fn a_settling_node_is_not_a_failure_yet() {
    let ds = held_ds(GEN, 2, 2, 1);
    let e = expl(vec![unschedulable("n0"), up("n1")]);
    let settling: BTreeSet<String> = ["n0".to_string()].into();
    let mut w = Watch::new(limits(600, 5));
    progressing(w.look_settling(0, &ds, &e, &settling));
    progressing(w.look_settling(10, &ds, &e, &settling));
    // Once the node has settled the grace starts.
    progressing(w.look(11, &ds, &e));
    blocked(w.look(16, &ds, &e));
}

#[test]
fn settling_nodes_have_a_terminating_pod_or_a_nominated_node() {
    let ds = daemonset("agent");
    let terminating = Arc::new(with_deletion_timestamp(
        running_ready(Arc::unwrap_or_clone(ds_pod_arc(&ds, "n0", "old")), 0),
        5,
    ));
    let mut nominated = Arc::unwrap_or_clone(ds_pod_arc(&ds, "n1", "new"));
    nominated
        .status
        .get_or_insert_with(Default::default)
        .nominated_node_name = Some("n1".into());
    let plain = ds_pod_arc(&ds, "n2", "new");
    let pods = [terminating, Arc::new(nominated), plain];
    let settling = settling_nodes(&group_by_node(pods.iter(), false));
    assert_eq!(settling, ["n0".to_string(), "n1".to_string()].into());
}

// ---- no progress ------------------------------------------------------------------------------

#[test]
fn no_progress_for_the_deadline_cannot_progress() {
    let ds = held_ds(GEN, 3, 1, 1);
    let e = expl(vec![up("n0"), starting("n1"), outdated("n2")]);
    let mut w = Watch::new(limits(10, 5));
    progressing(w.look(0, &ds, &e));
    progressing(w.look(9, &ds, &e));
    let (blocker, step) = blocked(w.look(10, &ds, &e));
    assert_eq!(
        blocker,
        Blocker::NoProgress {
            since: ts(0),
            deadline: Duration::from_secs(10)
        }
    );
    assert_eq!(
        blocker.words(&step),
        "no progress for 10s: 1 out of 3 new pods have been updated"
    );
    assert_eq!(blocker.detail(&step).len(), 2, "the nodes still to do");
}

#[test]
fn each_kind_of_progress_restarts_the_clock() {
    let e = expl(vec![up("n0"), starting("n1"), outdated("n2")]);
    let base = held_ds(GEN, 3, 1, 1);
    let cases: Vec<(&str, DaemonSet, Explanation)> = vec![
        ("more updated", held_ds(GEN, 3, 2, 1), e.clone()),
        ("more available", held_ds(GEN, 3, 1, 2), e.clone()),
        ("desired changed", held_ds(GEN, 4, 1, 1), e.clone()),
        (
            "a node updated for the first time",
            base.clone(),
            expl(vec![up("n0"), starting("n1"), starting("n2")]),
        ),
        (
            "a node available for the first time",
            base.clone(),
            expl(vec![up("n0"), up("n1"), outdated("n2")]),
        ),
    ];
    for (what, ds, later) in cases {
        let mut w = Watch::new(limits(10, 5));
        w.look(0, &base, &e);
        w.look(8, &ds, &later);
        assert_eq!(w.since(), Some(ts(8)), "{what}");
        progressing(w.look(17, &ds, &later));
        blocked(w.look(18, &ds, &later));
    }
    // A newer observedGeneration.
    let mut w = Watch::new(limits(10, 5));
    w.look(0, &held_ds(GEN - 1, 3, 3, 3), &e);
    w.look(8, &base, &e);
    assert_eq!(w.since(), Some(ts(8)));
}

#[test]
fn flapping_and_losses_are_not_progress() {
    let e2 = expl(vec![up("n0"), up("n1"), starting("n2")]);
    let e1 = expl(vec![up("n0"), starting("n1"), starting("n2")]);
    let mut w = Watch::new(limits(10, 5));
    w.look(0, &held_ds(GEN, 3, 3, 2), &e2);
    for t in 1..10 {
        let (ds, e) = if t % 2 == 1 {
            (held_ds(GEN, 3, 3, 1), &e1)
        } else {
            (held_ds(GEN, 3, 3, 2), &e2)
        };
        progressing(w.look(t, &ds, e));
    }
    assert_eq!(w.since(), Some(ts(0)));
    blocked(w.look(10, &held_ds(GEN, 3, 3, 1), &e1));
}

#[test]
fn a_new_generation_is_a_new_rollout() {
    let e = expl(vec![up("n0"), starting("n1")]);
    let mut w = Watch::new(limits(10, 5));
    w.look(0, &held_ds(GEN, 2, 2, 1), &e);
    let mut newer = held_ds(GEN, 2, 0, 1);
    newer.metadata.generation = Some(GEN + 1);
    progressing(w.look(9, &newer, &e));
    let p = w.progress.clone().expect("observed");
    assert_eq!((p.generation, p.since, p.updated_high), (GEN + 1, ts(9), 0));
    progressing(w.look(18, &newer, &e));
    blocked(w.look(19, &newer, &e));
}

#[test]
fn a_spec_never_observed_ends_at_the_deadline_saying_so() {
    let ds = held_ds(GEN - 1, 3, 3, 3);
    let e = expl(vec![up("n0"), up("n1"), up("n2")]);
    let mut w = Watch::new(limits(600, 5));
    w.look(0, &ds, &e);
    let (blocker, step) = blocked(w.look(600, &ds, &e));
    assert_eq!(
        blocker.words(&step),
        "no progress for 10m: the DaemonSet controller has not observed generation 2 yet (observedGeneration 1): is a DaemonSet controller (everynode) running?"
    );
}

// ---- OnDelete ---------------------------------------------------------------------------------

fn on_delete_row(node: &str) -> NodeRow {
    row(node, Some(false), Reason::Outdated(OutdatedWait::OnDelete))
}

#[test]
fn on_delete_waits_for_manual_deletes_as_progress_and_ends_at_the_deadline() {
    let ds = with_on_delete(held_ds(GEN, 3, 0, 3));
    let e = expl(vec![
        on_delete_row("n0"),
        on_delete_row("n1"),
        on_delete_row("n2"),
    ]);
    let mut w = Watch::new(limits(60, 5));
    let step = progressing(w.look(0, &ds, &e));
    assert_eq!(step.on_delete, 3);
    assert_eq!(
        step.detail().last().map(String::as_str),
        Some(
            "  updateStrategy OnDelete: 3 outdated pods wait for a manual delete; nothing replaces them on its own"
        )
    );
    // Someone deletes the pod of n0: its new pod is progress.
    let ds = with_on_delete(held_ds(GEN, 3, 1, 2));
    let e = expl(vec![
        starting("n0"),
        on_delete_row("n1"),
        on_delete_row("n2"),
    ]);
    progressing(w.look(50, &ds, &e));
    assert_eq!(w.since(), Some(ts(50)));
    let ds = with_on_delete(held_ds(GEN, 3, 1, 3));
    let e = expl(vec![up("n0"), on_delete_row("n1"), on_delete_row("n2")]);
    progressing(w.look(100, &ds, &e));
    let (blocker, step) = blocked(w.look(160, &ds, &e));
    assert_eq!(
        blocker.words(&step),
        "no progress for 1m: 2 outdated pods wait for a manual delete (updateStrategy OnDelete)"
    );
    assert_eq!(
        step.detail(),
        vec![
            "  n1: outdated, waiting for a manual delete (updateStrategy OnDelete)",
            "  n2: outdated, waiting for a manual delete (updateStrategy OnDelete)",
            "  updateStrategy OnDelete: 2 outdated pods wait for a manual delete; nothing replaces them on its own",
        ]
    );
}

#[test]
fn on_delete_with_a_single_outdated_pod_says_it() {
    let ds = with_on_delete(held_ds(GEN, 2, 1, 2));
    let step = progressing(once(&ds, &expl(vec![up("n0"), on_delete_row("n1")])));
    assert_eq!(
        step.detail().last().map(String::as_str),
        Some(
            "  updateStrategy OnDelete: 1 outdated pod waits for a manual delete; nothing replaces it on its own"
        )
    );
}

// ---- with the real explanation ----------------------------------------------------------------

#[test]
fn the_real_explanation_of_a_stuck_rollout_names_the_nodes_in_the_verdict() {
    let ds = with_node_selector(daemonset("agent"), &[("role", "agent")]);
    let mut ds = with_rolling_update(ds, Some(IntOrString::Int(1)), None);
    ds.metadata.generation = Some(GEN);
    let nodes = vec![
        node_with_labels("n0", &[("role", "agent")]),
        node_with_labels("n1", &[("role", "agent")]),
        node("other"),
    ];
    // n0 runs the new revision, not Ready; n1 the old one, Ready.
    let pods = [
        ds_pod_arc(&ds, "n0", "new"),
        Arc::new(running_ready(
            Arc::unwrap_or_clone(ds_pod_arc(&ds, "n1", "old")),
            0,
        )),
    ];
    let node_pods = group_by_node(pods.iter(), false);
    let e = explain(&ds, &nodes, &node_pods, "new", ts(100), &Context::default());
    ds.status = Some(DaemonSetStatus {
        observed_generation: Some(GEN),
        desired_number_scheduled: 2,
        updated_number_scheduled: Some(1),
        number_available: Some(1),
        ..Default::default()
    });
    let mut w = Watch::new(limits(30, 5));
    let step = progressing(w.look(100, &ds, &e));
    assert_eq!(
        step.headline("agent"),
        "Waiting for daemon set \"agent\" rollout to finish: 1 out of 2 new pods have been updated..."
    );
    let nodes: Vec<&str> = step.todo.iter().map(|t| t.node.as_str()).collect();
    assert_eq!(nodes, ["n0", "n1"], "the excluded node is not to do");
    assert!(
        step.detail()[1].contains("maxUnavailable=1 is held by n0"),
        "{:?}",
        step.detail()
    );
    assert!(settling_nodes(&node_pods).is_empty());
    blocked(w.look(130, &ds, &e));
}

// ---- text -------------------------------------------------------------------------------------

#[test]
fn node_lines_name_a_few_nodes_then_count_the_rest() {
    let todo: Vec<Todo> = (0..7)
        .map(|i| Todo {
            node: format!("n{i}"),
            reason: Reason::NoPod,
        })
        .collect();
    let lines = node_lines(&todo, NAMED_NODES);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], "  n0: no pod yet: the controller creates one");
    assert_eq!(lines[5], "  ... and 2 more nodes");
    assert_eq!(node_lines(&todo[..6], 5)[5], "  ... and 1 more node");
    assert_eq!(node_lines(&todo[..5], 5).len(), 5);
    assert!(node_lines(&[], 5).is_empty());
}

#[test]
fn durations_read_as_people_write_them() {
    for (secs, text) in [
        (0, "0s"),
        (10, "10s"),
        (60, "1m"),
        (90, "1m30s"),
        (600, "10m"),
        (3600, "1h"),
        (3725, "1h2m5s"),
    ] {
        assert_eq!(human_duration(Duration::from_secs(secs)), text);
    }
    assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
}

// ---- properties -------------------------------------------------------------------------------

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One node's state in a generated look.
fn node_state() -> impl Strategy<Value = u8> {
    0u8..6
}

fn row_of(i: usize, state: u8) -> NodeRow {
    let n = format!("n{i}");
    match state {
        0 => up(&n),
        1 => starting(&n),
        2 => outdated(&n),
        3 => unschedulable(&n),
        4 => crashing(&n),
        _ => row(&n, None, Reason::NoPod),
    }
}

/// A look: observedGeneration lag, the status counters and every node's state.
fn look() -> impl Strategy<Value = (i64, i32, i32, Vec<u8>)> {
    (
        0i64..2,
        0i32..6,
        0i32..6,
        proptest::collection::vec(node_state(), 0..5),
    )
}

proptest! {
    #![proptest_config(config())]

    /// Complete exactly when kubectl's rollout status says "successfully rolled out".
    #[test]
    fn complete_iff_kubectl_is_done(
        (lag, updated, available, states) in look(),
        desired in 0i32..6,
        grace in 0u64..3,
    ) {
        let ds = held_ds(GEN - lag, desired, updated, available);
        let rows = states.iter().enumerate().map(|(i, s)| row_of(i, *s)).collect();
        let v = Watch::new(limits(600, grace)).look(0, &ds, &expl(rows));
        let kubectl_done = lag == 0 && updated >= desired && available >= desired;
        prop_assert_eq!(matches!(v, Verdict::Complete { .. }), kubectl_done);
        if let Verdict::Complete { no_node, .. } = v {
            prop_assert_eq!(no_node.is_some(), desired == 0);
        }
    }

    /// It cannot hang: whatever the looks, the clock of progress only moves forward, it moves at
    /// most once per gain (bounded by the nodes and counters), and a verdict is never
    /// "progressing" once the deadline has passed since the last progress.
    #[test]
    fn every_watch_ends_by_the_deadline(
        looks in proptest::collection::vec(look(), 1..40),
        desired in 1i32..4,
    ) {
        let deadline = 5;
        let mut w = Watch::new(limits(deadline, 2));
        let mut moves = 0usize;
        let mut last_since = None;
        for (t, (lag, updated, available, states)) in looks.iter().enumerate() {
            let t = i64::try_from(t).unwrap_or(i64::MAX);
            let ds = held_ds(GEN - lag, desired, *updated, *available);
            let rows = states.iter().enumerate().map(|(i, s)| row_of(i, *s)).collect();
            let v = w.look(t, &ds, &expl(rows));
            let since = w.since().unwrap_or(ts(0));
            prop_assert!(since <= ts(t));
            if let Some(prev) = last_since {
                prop_assert!(since >= prev);
                if since != prev {
                    moves += 1;
                }
            }
            last_since = Some(since);
            if matches!(v, Verdict::Progressing(_)) {
                prop_assert!(ts(t).duration_since(since) < SignedDuration::from_secs(5));
            }
        }
        // observedGeneration once, each counter's high-water mark up to 5 each, each of 5 nodes
        // updated once and available once.
        prop_assert!(moves <= 1 + 5 + 5 + 5 + 5, "{} moves", moves);
    }

    /// The text never names more than [`NAMED_NODES`] nodes.
    #[test]
    fn progress_text_is_bounded(states in proptest::collection::vec(node_state(), 0..12)) {
        let rows: Vec<NodeRow> = states.iter().enumerate().map(|(i, s)| row_of(i, *s)).collect();
        let step = progressing(Watch::new(limits(600, 600)).look(0, &held_ds(GEN, 12, 0, 0), &expl(rows)));
        prop_assert!(step.detail().len() <= NAMED_NODES + 1);
    }
}

// ---- the reasons the verdict names (a fix in node_reason) ---------------------------------------

/// Three old available pods, maxUnavailable 1: the plan deletes n0's pod in this sync, and n1 and
/// n2 wait for the budget that n0 now holds. (The plan's `held_by` lists only nodes already
/// unavailable, so the reason used to read "is held by " with no node.)
#[test]
fn nodes_waiting_for_the_budget_name_the_node_being_replaced() {
    let ds = with_rolling_update(daemonset("agent"), Some(IntOrString::Int(1)), None);
    let nodes = vec![node("n0"), node("n1"), node("n2")];
    let pods: Vec<Arc<CachedPod>> = ["n0", "n1", "n2"]
        .iter()
        .map(|n| {
            Arc::new(running_ready(
                Arc::unwrap_or_clone(ds_pod_arc(&ds, n, "old")),
                0,
            ))
        })
        .collect();
    let e = explain(
        &ds,
        &nodes,
        &group_by_node(pods.iter(), false),
        "new",
        ts(100),
        &Context::default(),
    );
    let reasons: Vec<String> = e.rows.iter().map(|r| r.reason.to_string()).collect();
    assert_eq!(
        reasons,
        [
            "outdated: being replaced now",
            "outdated, waiting: the budget maxUnavailable=1 is held by n0",
            "outdated, waiting: the budget maxUnavailable=1 is held by n0",
        ]
    );
    // And a budget nobody is named for reads as used up, not "held by " and nothing.
    let nobody = Reason::Outdated(OutdatedWait::Rollout {
        rule: UpdateWait::MaxUnavailable,
        limit: 1,
        held_by: vec![],
        held_by_total: 0,
    });
    assert_eq!(
        nobody.to_string(),
        "outdated, waiting: the budget maxUnavailable=1 is used up"
    );
}

// ---- with a DaemonSetRollout (R0-R6) ----------------------------------------------------------

/// DaemonSetRollout `agent` at generation 1 in `phase`, describing DaemonSet generation [`GEN`].
fn dsr(phase: Phase, edit: impl FnOnce(&mut DaemonSetRollout)) -> DaemonSetRollout {
    let mut d = DaemonSetRollout::new("agent", Default::default());
    d.metadata.generation = Some(1);
    d.status = Some(DaemonSetRolloutStatus {
        observed_generation: Some(1),
        daemon_set_generation: Some(GEN),
        phase: Some(phase),
        update_revision: Some("new".into()),
        ..Default::default()
    });
    edit(&mut d);
    d
}

fn status_mut(d: &mut DaemonSetRollout) -> &mut DaemonSetRolloutStatus {
    d.status.get_or_insert_with(Default::default)
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: crate::core::fixtures::time(0),
        observed_generation: None,
    }
}

fn held_by_partition(node: &str) -> NodeRow {
    row(
        node,
        Some(false),
        Reason::Outdated(OutdatedWait::Policy(PolicyWait::Partition {
            rollout: "agent".into(),
            partition: 2,
        })),
    )
}

/// One look at `at` with `rollout`, after `prev`.
fn look_with(
    prev: Option<&Progress>,
    at: i64,
    ds: &DaemonSet,
    e: &Explanation,
    rollout: &DaemonSetRollout,
    limits: &Limits,
) -> (Progress, Verdict) {
    let p = observe_with_rollout(prev, ds, e, NONE, ts(at), Some(rollout));
    let v = verdict_with_rollout(ds, e, &p, ts(at), limits, Some(rollout));
    (p, v)
}

#[test]
fn r0_a_rollout_status_behind_is_waiting_to_be_observed() {
    let ds = held_ds(GEN, 3, 3, 3);
    let e = expl(vec![up("n0"), up("n1"), up("n2")]);
    for behind in [
        dsr(Phase::Complete, |d| d.metadata.generation = Some(2)),
        dsr(Phase::Complete, |d| {
            status_mut(d).daemon_set_generation = Some(GEN - 1)
        }),
        dsr(Phase::Complete, |d| status_mut(d).phase = None),
    ] {
        let (_, v) = look_with(None, 100, &ds, &e, &behind, &limits(600, 0));
        let step = progressing(v);
        assert!(
            step.hold.as_deref().is_some_and(
                |h| h.contains("waiting for the controller to observe DaemonSetRollout agent")
            ),
            "{step:?}"
        );
    }
    // Without a DaemonSetRollout the same DaemonSet is complete.
    assert!(matches!(once(&ds, &e), Verdict::Complete { .. }));
}

#[test]
fn r1_failed_cannot_progress_naming_the_failing_pods() {
    let ds = held_ds(GEN, 3, 1, 1);
    let e = expl(vec![
        up("n0"),
        row("n1", Some(false), Reason::Outdated(OutdatedWait::NextSync)),
    ]);
    let d = dsr(Phase::Failed, |d| {
        status_mut(d).failing = vec![crate::api::FailingPod {
            node: "n0".into(),
            pod: "agent-x".into(),
            reason: "CrashLoopBackOff".into(),
            restarts: 5,
        }];
    });
    let (_, v) = look_with(None, 100, &ds, &e, &d, &limits(600, 0));
    assert_eq!(v.exit_code(), Some(1));
    let (blocker, step) = blocked(v);
    assert_eq!(
        blocker.words(&step),
        "DaemonSetRollout agent failed: n0 CrashLoopBackOff (5 restarts) (fix the template, kubectl everynode approve daemonset/agent retries, kubectl everynode abort daemonset/agent rolls back)"
    );
    assert_eq!(
        blocker.detail(&step),
        vec!["  n0 CrashLoopBackOff (5 restarts)"]
    );
}

#[test]
fn r2_progress_deadline_exceeded_cannot_progress() {
    let ds = held_ds(GEN, 3, 1, 1);
    let e = expl(vec![up("n0")]);
    let d = dsr(Phase::Progressing, |d| {
        status_mut(d).conditions = vec![condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            "no progress for 600s",
        )];
    });
    let (_, v) = look_with(None, 100, &ds, &e, &d, &limits(600, 0));
    let (blocker, step) = blocked(v);
    assert_eq!(
        blocker.words(&step),
        "DaemonSetRollout agent: progress deadline exceeded: no progress for 600s"
    );
    // Progressing=True with the same reason field empty is not the deadline.
    let ok = dsr(Phase::Progressing, |d| {
        status_mut(d).conditions = vec![condition("Progressing", "True", "NewPodsAvailable", "")];
    });
    assert!(matches!(
        look_with(None, 100, &ds, &e, &ok, &limits(600, 0)).1,
        Verdict::Progressing(_)
    ));
}

#[test]
fn r3_rolled_back_cannot_progress() {
    let ds = held_ds(GEN, 3, 3, 3);
    let e = expl(vec![up("n0"), up("n1"), up("n2")]);
    let d = dsr(Phase::RolledBack, |d| {
        status_mut(d).rollback = Some(crate::api::RollbackStatus {
            from: "bad".into(),
            to: "good".into(),
            reason: "n0 CrashLoopBackOff".into(),
            ..Default::default()
        });
    });
    let (_, v) = look_with(None, 100, &ds, &e, &d, &limits(600, 0));
    assert_eq!(
        v.exit_code(),
        Some(1),
        "the template asked for did not roll out"
    );
    let (blocker, step) = blocked(v);
    assert_eq!(
        blocker.words(&step),
        "DaemonSetRollout agent rolled back from bad to good: n0 CrashLoopBackOff"
    );
}

#[test]
fn r4_complete_as_the_partition_allows() {
    let ds = held_ds(GEN, 4, 2, 2);
    let e = expl(vec![
        up("n0"),
        up("n1"),
        held_by_partition("n2"),
        held_by_partition("n3"),
    ]);
    for phase in [Phase::Paused, Phase::Complete] {
        let (_, v) = look_with(None, 100, &ds, &e, &dsr(phase, |_| {}), &limits(600, 0));
        assert_eq!(v.exit_code(), Some(0), "{v:?}");
        let Verdict::CompleteAsAllowed { rollout, held } = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            Verdict::allowed_words(&rollout, &held),
            "complete as DaemonSetRollout agent allows: 2 nodes held by partition 2"
        );
    }
    // A node still to do beside the held ones: not complete.
    let e = expl(vec![
        up("n0"),
        row(
            "n1",
            Some(true),
            Reason::Starting {
                waiting_reason: None,
            },
        ),
        held_by_partition("n2"),
    ]);
    let (_, v) = look_with(
        None,
        100,
        &ds,
        &e,
        &dsr(Phase::Paused, |_| {}),
        &limits(600, 0),
    );
    assert!(matches!(v, Verdict::Progressing(_)), "{v:?}");
    // Progressing with only held rows left is not complete either (the controller has not said so).
    let e = expl(vec![up("n0"), held_by_partition("n2")]);
    let (_, v) = look_with(
        None,
        100,
        &ds,
        &e,
        &dsr(Phase::Progressing, |_| {}),
        &limits(600, 0),
    );
    assert!(matches!(v, Verdict::Progressing(_)), "{v:?}");
}

#[test]
fn r5_holds_are_progress_lines_and_still_end_at_the_deadline() {
    let ds = held_ds(GEN, 3, 1, 1);
    let e = expl(vec![
        up("n0"),
        row(
            "n1",
            Some(false),
            Reason::Outdated(OutdatedWait::Policy(PolicyWait::Paused {
                rollout: "agent".into(),
            })),
        ),
    ]);
    for (d, hold) in [
        (
            dsr(Phase::Paused, |d| d.spec.paused = true),
            "paused by DaemonSetRollout agent (kubectl everynode resume daemonset/agent)",
        ),
        (
            dsr(Phase::Frozen, |d| d.spec.frozen = true),
            "frozen by DaemonSetRollout agent (kubectl everynode unfreeze daemonset/agent)",
        ),
        (
            dsr(Phase::WaitingForApproval, |_| {}),
            "DaemonSetRollout agent waits for approval of the canary (kubectl everynode approve daemonset/agent)",
        ),
    ] {
        let l = limits(600, 0);
        let (p, v) = look_with(None, 100, &ds, &e, &d, &l);
        let step = progressing(v);
        assert_eq!(step.hold.as_deref(), Some(hold));
        assert_eq!(step.detail()[0], format!("  {hold}"));
        // Nothing changes for the deadline: cannot progress, saying what holds it.
        let (_, v) = look_with(Some(&p), 700, &ds, &e, &d, &l);
        let (blocker, step) = blocked(v);
        assert_eq!(blocker.words(&step), format!("no progress for 10m: {hold}"));
    }
}

#[test]
fn r6_baking_is_progress() {
    let ds = held_ds(GEN, 3, 1, 1);
    let e = expl(vec![
        up("n0"),
        row("n1", Some(false), Reason::Outdated(OutdatedWait::NextSync)),
    ]);
    let d = dsr(Phase::Baking, |d| {
        status_mut(d).wave = Some("canary".into())
    });
    let l = limits(600, 0);
    let (mut p, _) = look_with(None, 0, &ds, &e, &d, &l);
    for at in (300..=1800).step_by(300) {
        let (next, v) = look_with(Some(&p), at, &ds, &e, &d, &l);
        assert!(matches!(v, Verdict::Progressing(_)), "at {at}: {v:?}");
        p = next;
    }
    // The same look without the bake: the deadline ends it.
    let progressing = dsr(Phase::Progressing, |_| {});
    let (p, _) = look_with(None, 0, &ds, &e, &progressing, &l);
    let (_, v) = look_with(Some(&p), 600, &ds, &e, &progressing, &l);
    assert_eq!(v.exit_code(), Some(1));
}

#[test]
fn the_rollout_line_says_phase_step_and_progress() {
    let mut status = DaemonSetRolloutStatus {
        phase: Some(Phase::Baking),
        wave: Some("1/3 topology.kubernetes.io/zone=a".into()),
        updated_nodes: 4,
        desired_nodes: 12,
        ..Default::default()
    };
    assert_eq!(
        rollout_line("agent", &status),
        "DaemonSetRollout agent: Baking, wave 1/3 topology.kubernetes.io/zone=a, 4/12 updated"
    );
    status.phase = None;
    assert_eq!(
        rollout_line("agent", &status),
        "DaemonSetRollout agent: not observed by the controller yet"
    );
}
