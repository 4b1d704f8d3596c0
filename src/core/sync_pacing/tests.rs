//! Which pod events wait, for how long, and the two claims the pacing rests on, over random
//! situations: a status-only update that leaves readiness as it was moves no decision of manage or
//! the rolling update, and in a quiet DaemonSet no status-only update does.

use super::*;
use crate::core::backoff::FailedPodBackoff;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPodStatus;
use crate::core::fixtures::*;
use crate::core::manage::plan_manage;
use crate::core::node_reason::{Context, explain};
use crate::core::rolling_update::plan_rolling_update;
use k8s_openapi::api::core::v1::PodCondition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;

const UID: &str = "ds-uid";
const NEW: &str = "new";
const OLD: &str = "old";
const NOW: i64 = 1000;
const SECOND: Duration = Duration::from_secs(1);

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000 + ms).expect("a valid timestamp")
}

fn ds() -> k8s_openapi::api::apps::v1::DaemonSet {
    daemonset("foo")
}

/// A pod of the DaemonSet on `node`, pending (not Ready).
fn pending(node: &str) -> CachedPod {
    with_phase(ds_pod(&ds(), node, NEW), "Pending")
}

/// `pod` with a PodScheduled condition: a change of status only, readiness as it was.
fn scheduled(mut pod: CachedPod) -> CachedPod {
    let status = pod.status.get_or_insert_with(CachedPodStatus::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(PodCondition {
            type_: "PodScheduled".to_string(),
            status: "True".to_string(),
            ..Default::default()
        });
    pod
}

fn ready(pod: CachedPod) -> CachedPod {
    running_ready(pod, 5)
}

fn outcome(quiet_unready: Option<i32>, desired: i32) -> SyncOutcome {
    outcome_on(quiet_unready, desired, 0)
}

fn outcome_on(quiet_unready: Option<i32>, desired: i32, nodes: usize) -> SyncOutcome {
    SyncOutcome {
        unpaced: false,
        quiet_unready,
        desired,
        nodes,
    }
}

fn pacer_synced_at(ms: i64, outcome: SyncOutcome) -> SyncPacer {
    let mut p = SyncPacer::new(SECOND);
    p.synced(UID, outcome, t(ms));
    p
}

#[test]
fn a_status_only_update_that_leaves_readiness_waits_for_the_rest_of_the_interval() {
    let mut p = pacer_synced_at(0, outcome(None, 3));
    let old = pending("n1");
    let new = scheduled(old.clone());
    assert_eq!(
        p.pod_updated(UID, &old, &new, t(300)),
        Some(Duration::from_millis(700))
    );
    // Once the interval since the last sync has run out, the event syncs at once.
    assert_eq!(p.pod_updated(UID, &old, &new, t(1000)), None);
    assert_eq!(p.pod_updated(UID, &old, &new, t(5000)), None);
}

#[test]
fn readiness_waits_a_window_of_the_cluster_size_unless_the_daemonset_was_quiet() {
    let old = pending("n1");
    let new = ready(old.clone());
    // 0.1 ms per node: nothing on a small cluster, a fraction of a second on a large one.
    for (nodes, window_ms) in [(0, 0i64), (40, 4), (1000, 100), (5000, 500), (20000, 1000)] {
        let mut p = pacer_synced_at(0, outcome_on(None, 3, nodes));
        let wait = |p: &mut SyncPacer, old: &CachedPod, new: &CachedPod, at: i64| {
            p.pod_updated(UID, old, new, t(at))
        };
        if window_ms == 0 {
            assert_eq!(wait(&mut p, &old, &new, 0), None);
            continue;
        }
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        let expected = Some(ms(window_ms - 1));
        assert_eq!(wait(&mut p, &old, &new, 1), expected, "{nodes} nodes");
        assert_eq!(wait(&mut p, &new, &old, 1), expected, "{nodes} nodes");
        assert_eq!(wait(&mut p, &old, &new, window_ms), None, "{nodes} nodes");
        // Other status changes still wait for the interval.
        assert_eq!(
            wait(&mut p, &old, &scheduled(old.clone()), window_ms),
            Some(ms(1000 - window_ms)).filter(|d| !d.is_zero()),
            "{nodes} nodes"
        );
    }
    let mut p = pacer_synced_at(0, outcome(Some(3), 3));
    assert_eq!(
        p.pod_updated(UID, &old, &new, t(300)),
        Some(Duration::from_millis(700))
    );
}

#[test]
fn the_event_that_may_make_the_last_pod_ready_syncs_at_once() {
    let old = pending("n1");
    let new = ready(old.clone());
    let mut p = pacer_synced_at(0, outcome(Some(3), 3));
    assert!(p.pod_updated(UID, &old, &new, t(100)).is_some());
    // One went back to not Ready: three Ready events more are needed.
    assert!(p.pod_updated(UID, &new, &old, t(150)).is_some());
    assert!(p.pod_updated(UID, &old, &new, t(200)).is_some());
    assert!(p.pod_updated(UID, &old, &new, t(300)).is_some());
    assert_eq!(p.pod_updated(UID, &old, &new, t(400)), None);
    // Until the next sync, readiness syncs at once; other status changes still wait.
    assert_eq!(p.pod_updated(UID, &old, &new, t(500)), None);
    assert!(
        p.pod_updated(UID, &old, &scheduled(old.clone()), t(500))
            .is_some()
    );
    p.synced(UID, outcome(Some(1), 3), t(600));
    assert_eq!(p.pod_updated(UID, &old, &new, t(700)), None);
}

#[test]
fn a_binding_waits_as_readiness_does_unless_the_daemonset_was_quiet() {
    let old = with_affinity_pin(with_phase(ds_pod(&ds(), "", NEW), "Pending"), "n1");
    let new = with_pod_node_name(old.clone(), "n1");
    assert!(status_only(&old, &new));
    let mut p = pacer_synced_at(0, outcome_on(None, 3, 1000));
    assert_eq!(
        p.pod_updated(UID, &old, &new, t(40)),
        Some(Duration::from_millis(60))
    );
    // Quiet: the interval, and the count of unready pods stays.
    let mut p = pacer_synced_at(0, outcome_on(Some(1), 3, 1000));
    assert_eq!(
        p.pod_updated(UID, &old, &new, t(40)),
        Some(Duration::from_millis(960))
    );
    assert_eq!(p.pod_updated(UID, &old, &ready(old.clone()), t(50)), None);
}

#[test]
fn a_change_beyond_the_status_syncs_at_once() {
    let old = ready(pending("n1"));
    let changes = [
        ("a label", with_pod_label(old.clone(), "extra", "1")),
        ("the owner", orphan(old.clone())),
        ("deletion", with_deletion_timestamp(old.clone(), 9)),
        ("failed", with_phase(old.clone(), "Failed")),
        ("succeeded", with_phase(old.clone(), "Succeeded")),
        ("another node", with_pod_node_name(old.clone(), "n2")),
    ];
    for (what, new) in changes {
        let mut p = pacer_synced_at(0, outcome(Some(2), 2));
        assert!(!status_only(&old, &new), "{what}");
        assert_eq!(p.pod_updated(UID, &old, &new, t(100)), None, "{what}");
    }
    assert!(status_only(&old, &scheduled(old.clone())));
}

#[test]
fn nothing_waits_without_a_recorded_sync_with_a_policy_after_a_failure_or_at_interval_zero() {
    let old = pending("n1");
    let new = scheduled(old.clone());
    let mut unknown = SyncPacer::new(SECOND);
    assert_eq!(unknown.pod_updated(UID, &old, &new, t(100)), None);
    let mut policy = pacer_synced_at(0, SyncOutcome::UNPACED);
    assert_eq!(policy.pod_updated(UID, &old, &new, t(100)), None);
    let mut zero = SyncPacer::new(Duration::ZERO);
    zero.synced(UID, outcome(Some(1), 1), t(0));
    assert_eq!(zero.pod_updated(UID, &old, &new, t(100)), None);
    let mut forgotten = pacer_synced_at(0, outcome(Some(1), 1));
    forgotten.forget(UID);
    assert_eq!(forgotten.pod_updated(UID, &old, &new, t(100)), None);
    let mut gone = pacer_synced_at(0, outcome(Some(1), 1));
    gone.retain(|_| false);
    assert_eq!(gone.pod_updated(UID, &old, &new, t(100)), None);
}

#[test]
fn a_daemonset_of_more_than_2500_pods_waits_longer_in_proportion() {
    let old = pending("n1");
    let new = scheduled(old.clone());
    let mut p = pacer_synced_at(0, outcome(None, 5000));
    assert_eq!(
        p.pod_updated(UID, &old, &new, t(500)),
        Some(Duration::from_millis(1500))
    );
}

fn by_node(pods: &[CachedPod]) -> NodePods {
    let mut map = NodePods::default();
    for pod in pods {
        let node = target_node_name(pod).unwrap_or_default();
        map.entry(node).or_default().push(Arc::new(pod.clone()));
    }
    map
}

fn quiet(nodes: &[CachedNode], pods: &[CachedPod], nothing_planned: bool) -> Option<i32> {
    let d = with_node_selector(ds(), &[("run", "yes")]);
    let node_pods = by_node(pods);
    let e = explain(&d, nodes, &node_pods, NEW, ts(NOW), &Context::default());
    is_quiet(&e, &node_pods, nothing_planned)
}

#[test]
fn quiet_means_one_updated_pod_on_every_wanted_node_and_nothing_else() {
    let wanted = |n: &str| node_with_labels(n, &[("run", "yes")]);
    let nodes = [wanted("n1"), wanted("n2"), node("n3")];
    let up = ready(ds_pod(&ds(), "n1", NEW));
    let starting = pending("n2");
    assert_eq!(
        quiet(&nodes, &[up.clone(), starting.clone()], true),
        Some(1)
    );
    assert_eq!(
        quiet(&nodes, &[up.clone(), ready(starting.clone())], true),
        Some(0)
    );
    let not_quiet = [
        ("planned", vec![up.clone(), starting.clone()], false),
        ("a node without a pod", vec![up.clone()], true),
        (
            "an outdated pod",
            vec![up.clone(), ready(ds_pod(&ds(), "n2", OLD))],
            true,
        ),
        (
            "two pods on a node",
            vec![
                up.clone(),
                starting.clone(),
                with_name(pending("n2"), "second"),
            ],
            true,
        ),
        (
            "a pod where none should run",
            vec![
                up.clone(),
                starting.clone(),
                ready(ds_pod(&ds(), "n3", NEW)),
            ],
            true,
        ),
        (
            "a failed pod",
            vec![up.clone(), with_phase(starting.clone(), "Failed")],
            true,
        ),
        (
            "a failing container",
            vec![
                up.clone(),
                with_container_waiting(starting.clone(), "CrashLoopBackOff", ""),
            ],
            true,
        ),
        (
            "a pod on a node the cache does not have",
            vec![
                up.clone(),
                starting.clone(),
                ready(ds_pod(&ds(), "gone", OLD)),
            ],
            true,
        ),
    ];
    for (what, pods, nothing_planned) in not_quiet {
        assert_eq!(quiet(&nodes, &pods, nothing_planned), None, "{what}");
    }
}

/// Random situations, as `node_reason`'s properties draw them.
mod properties {
    use super::*;
    use proptest::prelude::*;

    type Situation = (
        k8s_openapi::api::apps::v1::DaemonSet,
        Vec<CachedNode>,
        Vec<CachedPod>,
    );

    fn situation() -> impl Strategy<Value = Situation> {
        let node_spec = (any::<bool>(), 0u8..3);
        let pod_spec = (0u8..5, any::<bool>(), 0u8..5, any::<bool>());
        (
            proptest::collection::vec(node_spec, 1..6),
            proptest::collection::vec(pod_spec, 0..8),
            0u8..3,
            0i32..3,
        )
            .prop_map(|(node_specs, pod_specs, surge, min_ready)| {
                let mut d = with_node_selector(ds(), &[("run", "yes")]);
                d = with_rolling_update(
                    d,
                    Some(IntOrString::Int(if surge == 0 { 1 } else { 0 })),
                    Some(IntOrString::Int(i32::from(surge))),
                );
                let nodes: Vec<CachedNode> = node_specs
                    .iter()
                    .enumerate()
                    .map(|(i, (labelled, taint))| {
                        let mut n = node(&format!("n{i}"));
                        if *labelled {
                            n = with_node_labels(n, &[("run", "yes")]);
                        }
                        if *taint == 1 {
                            n = with_taint(n, "t", "", "NoSchedule");
                        }
                        n
                    })
                    .collect();
                let pods = pod_specs
                    .iter()
                    .enumerate()
                    .map(|(i, (node_i, new, state, bound))| {
                        let node_name = format!("n{}", node_i % 6);
                        let hash = if *new { NEW } else { OLD };
                        let p = if *bound {
                            ds_pod(&d, &node_name, hash)
                        } else {
                            with_affinity_pin(ds_pod(&d, "", hash), &node_name)
                        };
                        let p = with_name(p, &format!("p{i}"));
                        let p = with_creation_timestamp(p, i as i64);
                        match state {
                            0 => running_ready(p, 0),
                            1 => with_phase(p, "Pending"),
                            2 => with_phase(p, "Failed"),
                            3 => running_ready(p, NOW - 1),
                            _ => with_ready(with_phase(p, "Running"), false, 0),
                        }
                    })
                    .collect();
                (with_min_ready_seconds(d, min_ready), nodes, pods)
            })
    }

    /// Mostly quiet situations: one updated pod on every wanted node, Ready or on its way.
    fn quiet_situation() -> impl Strategy<Value = Situation> {
        situation().prop_flat_map(|(d, nodes, _)| {
            let wanted: Vec<String> = nodes
                .iter()
                .filter(|n| crate::core::placement::placement(n, &d).should_run)
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            let states = proptest::collection::vec((0u8..4, any::<bool>()), wanted.len());
            (Just(d), Just(nodes), Just(wanted), states).prop_map(|(d, nodes, wanted, states)| {
                let pods = wanted
                    .iter()
                    .zip(states)
                    .map(|(n, (state, bound))| {
                        let p = if bound {
                            ds_pod(&d, n, NEW)
                        } else {
                            with_affinity_pin(ds_pod(&d, "", NEW), n)
                        };
                        match state {
                            0 => running_ready(p, 0),
                            1 => with_phase(p, "Pending"),
                            2 => running_ready(p, NOW - 1),
                            _ => with_ready(with_phase(p, "Running"), false, 0),
                        }
                    })
                    .collect();
                (d, nodes, pods)
            })
        })
    }

    /// What manage and the rolling update decide on `pods`: creates, deletes, their events.
    fn decisions(
        d: &k8s_openapi::api::apps::v1::DaemonSet,
        nodes: &[CachedNode],
        pods: &[CachedPod],
    ) -> (Vec<String>, Vec<String>, usize, Vec<String>, Vec<String>) {
        let node_pods = by_node(pods);
        let mut backoff = FailedPodBackoff::default();
        let manage = plan_manage(d, nodes, &node_pods, NEW, ts(NOW), &mut backoff);
        let rolling = plan_rolling_update(d, nodes, &node_pods, NEW, ts(NOW))
            .map(|p| (p.nodes_to_create, p.pods_to_delete))
            .unwrap_or_default();
        (
            manage.nodes_needing_pods,
            manage.pods_to_delete,
            manage.events.len(),
            rolling.0,
            rolling.1,
        )
    }

    /// The status-only variants of a pod: scheduled, a container crash-looping, its readiness
    /// flipped, its Ready condition's time moved (availability after minReadySeconds reads it),
    /// bound to the node it targets.
    fn variants(pod: &CachedPod) -> [CachedPod; 5] {
        let is_ready = crate::core::pod_state::is_ready(pod);
        let flipped = with_ready(pod.clone(), !is_ready, NOW);
        let moved = with_ready(pod.clone(), is_ready, NOW - 1);
        let node = target_node_name(pod).unwrap_or_default();
        let bound = with_pod_node_name(pod.clone(), &node);
        [
            scheduled(pod.clone()),
            with_container_waiting(pod.clone(), "CrashLoopBackOff", ""),
            flipped,
            moved,
            bound,
        ]
    }

    proptest! {
        #[test]
        fn a_status_only_update_that_leaves_readiness_and_binding_moves_no_decision(
            (d, nodes, pods) in situation(),
            which in 0usize..8,
        ) {
            prop_assume!(!pods.is_empty());
            let i = which % pods.len();
            let before = decisions(&d, &nodes, &pods);
            for changed in variants(&pods[i]) {
                // A failed pod's updates are never status-only.
                if !status_only(&pods[i], &changed)
                    || readiness(&pods[i]) != readiness(&changed)
                    || bound_to(&pods[i]) != bound_to(&changed)
                {
                    continue;
                }
                let mut after = pods.clone();
                after[i] = changed;
                prop_assert_eq!(&before, &decisions(&d, &nodes, &after));
            }
        }

        #[test]
        fn in_a_quiet_daemonset_no_status_only_update_moves_a_decision(
            (d, nodes, pods) in quiet_situation(),
            which in 0usize..8,
        ) {
            let node_pods = by_node(&pods);
            let e = explain(&d, &nodes, &node_pods, NEW, ts(NOW), &Context::default());
            let before = decisions(&d, &nodes, &pods);
            let nothing_planned = before.0.is_empty()
                && before.1.is_empty()
                && before.3.is_empty()
                && before.4.is_empty();
            prop_assume!(is_quiet(&e, &node_pods, nothing_planned).is_some());
            prop_assume!(!pods.is_empty());
            let i = which % pods.len();
            for changed in variants(&pods[i]) {
                prop_assert!(status_only(&pods[i], &changed));
                let mut after = pods.clone();
                after[i] = changed;
                prop_assert_eq!(&before, &decisions(&d, &nodes, &after));
            }
        }
    }
}
