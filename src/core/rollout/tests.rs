//! Property tests of the rollout policy (design §2.5), driven through `core::simulation::Sim`
//! with a `DaemonSetRollout` (`Sim::with_rollout`): random clusters of 1-15 nodes over 1-3
//! zones, random policies, readiness, crash and clock events.

use crate::core::cached_node::CachedNode;
use std::collections::BTreeSet;

use crate::core::cached_pod::{CachedContainerState, CachedContainerStatus, CachedPod};
use k8s_openapi::api::core::v1::ContainerStateWaiting;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{RolloutInput, RolloutPlan, plan_rollout};
use crate::api::{Canary, DaemonSetRolloutSpec, Waves};
use crate::core::fixtures::{daemonset, node_with_labels, with_ready, with_rolling_update};
use crate::core::manage::plan_manage;
use crate::core::pod_state::{is_available, is_terminating, is_updated};
use crate::core::simulation::{Mode, Sim, SyncOutcome};

const ZONE: &str = "zone";

#[derive(Debug, Clone)]
enum Event {
    Sync,
    Advance(i64),
    /// Every live pod becomes ready.
    ReadyAll,
    /// The k-th live not-ready pod becomes ready.
    Ready(usize),
    /// The k-th live pod of the update revision crash-loops (5 restarts, not ready).
    Crash(usize),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => Just(Event::Sync),
        3 => (1i64..=20).prop_map(Event::Advance),
        2 => Just(Event::ReadyAll),
        2 => (0usize..15).prop_map(Event::Ready),
        1 => (0usize..15).prop_map(Event::Crash),
    ]
}

fn spec() -> impl Strategy<Value = DaemonSetRolloutSpec> {
    (
        prop::option::of(0i32..=4),
        prop::option::of((1i32..=2, 0i32..=20, any::<bool>())),
        prop::option::of(0i32..=10),
        prop_oneof![Just(0i32), 1i32..=10],
        any::<bool>(),
    )
        .prop_map(
            |(partition, canary, waves, pacing, scoped)| DaemonSetRolloutSpec {
                partition: partition.map(IntOrString::Int),
                canary: canary.map(|(nodes, bake, spread)| Canary {
                    nodes: IntOrString::Int(nodes),
                    spread_by_label: spread.then(|| ZONE.to_string()),
                    bake_seconds: Some(bake),
                    ..Canary::default()
                }),
                waves: waves.map(|bake| Waves {
                    node_label: ZONE.into(),
                    order: vec!["z2".into()],
                    bake_seconds: Some(bake),
                }),
                min_seconds_between_node_updates: Some(pacing),
                update_scope: scoped
                    .then(|| crate::core::fixtures::selector_labels(&[("pool", "a")])),
                ..DaemonSetRolloutSpec::default()
            },
        )
}

fn nodes(count: usize, zones: usize) -> Vec<CachedNode> {
    (0..count)
        .map(|i| {
            let zone = format!("z{}", i % zones);
            let pool = if i % 4 == 3 { "b" } else { "a" };
            node_with_labels(&format!("n{i:02}"), &[(ZONE, &zone), ("pool", pool)])
        })
        .collect()
}

/// A cluster at revision v1, every node running an available v1 pod, the policy attached, then
/// the template changed to v2.
fn cluster(
    count: usize,
    zones: usize,
    surge: bool,
    budget: i32,
    spec: DaemonSetRolloutSpec,
) -> Sim {
    let (unavailable, surge_value) = if surge {
        (Some(IntOrString::Int(0)), Some(IntOrString::Int(budget)))
    } else {
        (Some(IntOrString::Int(budget)), None)
    };
    let ds = with_rolling_update(daemonset("agent"), unavailable, surge_value);
    let mut sim = Sim::new(ds, nodes(count, zones), "v1", Mode::FakePodControl).with_rollout(spec);
    sim.sync().unwrap_or_else(|e| panic!("{e}"));
    sim.mark_all_ready();
    sim.advance(100);
    sim.sync().unwrap_or_else(|e| panic!("{e}"));
    sim.update_template("v2", |_| {});
    sim
}

fn crash(pod: &mut CachedPod, now: i64) {
    *pod = with_ready(pod.clone(), false, now);
    let status = pod.status.get_or_insert_with(Default::default);
    status.container_statuses = Some(vec![CachedContainerStatus {
        name: "app".into(),
        restart_count: 5,
        state: Some(CachedContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".into()),
                ..Default::default()
            }),
        }),
    }]);
}

fn live(sim: &Sim) -> Vec<(String, String, bool, bool)> {
    let now = sim.timestamp();
    sim.pods()
        .filter(|(_, p)| !is_terminating(p))
        .map(|(n, p)| {
            let name = p.metadata.name.clone().unwrap_or_default();
            (
                n.to_string(),
                name,
                is_updated(p, &sim.hash, None),
                is_available(p, 0, now),
            )
        })
        .collect()
}

/// Applies a non-sync event; returns the node of a crashed pod.
fn apply(sim: &mut Sim, event: &Event) -> Option<String> {
    let now = sim.now;
    match event {
        Event::Sync => {}
        Event::Advance(s) => sim.advance(*s),
        Event::ReadyAll => {
            let crashed: BTreeSet<String> = sim
                .pods()
                .filter(|(_, p)| {
                    p.status
                        .as_ref()
                        .is_some_and(|s| s.container_statuses.is_some())
                })
                .filter_map(|(_, p)| p.metadata.name.clone())
                .collect();
            sim.set_readiness(true, usize::MAX, |_, p| {
                !crashed.contains(p.metadata.name.as_deref().unwrap_or_default())
            });
        }
        Event::Ready(k) => {
            let waiting: Vec<String> = live(sim)
                .into_iter()
                .filter(|l| !l.3)
                .map(|l| l.1)
                .collect();
            if let Some(name) = waiting.get(k % waiting.len().max(1)) {
                let name = name.clone();
                sim.set_readiness(true, 1, |_, p| {
                    p.metadata.name.as_deref() == Some(name.as_str())
                });
            }
        }
        Event::Crash(k) => {
            let updated: Vec<(String, String)> = live(sim)
                .into_iter()
                .filter(|l| l.2)
                .map(|l| (l.0, l.1))
                .collect();
            if let Some((node, name)) = updated.get(k % updated.len().max(1)).cloned() {
                sim.modify_pod(&name, |p| crash(p, now));
                return Some(node);
            }
        }
    }
    None
}

/// Wanted nodes whose outdated pod the rolling update touched while they had no updated pod (a
/// node-update start).
fn rolling_starts(outcome: &SyncOutcome, hash: &str) -> BTreeSet<String> {
    let Some(rolling) = &outcome.rolling else {
        return BTreeSet::new();
    };
    let mut out: BTreeSet<String> = BTreeSet::new();
    for (node, pods) in &rolling.before {
        let has_new = pods
            .iter()
            .any(|p| !is_terminating(p) && is_updated(p, hash, None));
        let deleted = pods.iter().any(|p| {
            rolling
                .plan
                .pods_to_delete
                .iter()
                .any(|d| Some(d.as_str()) == p.metadata.name.as_deref())
        });
        if !has_new && (deleted || rolling.plan.nodes_to_create.contains(node)) {
            out.insert(node.clone());
        }
    }
    out
}

fn plan_of(sim: &Sim, nodes: &[CachedNode]) -> RolloutPlan {
    let (rollout, previous) = sim.rollout.as_ref().unwrap_or_else(|| panic!("no rollout"));
    let node_pods = sim.input();
    let pods: Vec<_> = sim.pods().map(|(_, p)| p.clone()).collect();
    plan_rollout(&RolloutInput {
        ds: &sim.ds,
        nodes,
        node_pods: &node_pods,
        pods: &pods,
        hash: &sim.hash,
        revisions: &[],
        rollout,
        previous,
        starts_issued: false,
        now: sim.timestamp(),
    })
}

fn config() -> Config {
    Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The budget is never exceeded; no node outside the plan's starts is started; every start
    /// is wanted, in scope, and in the current step (canary, or a wave up to the current one);
    /// a canary pod failing before promotion means no non-canary node is ever started; planning
    /// is independent of the node list's order and idempotent.
    #[test]
    fn the_policy_only_removes_candidates(
        count in 1usize..=15,
        zones in 1usize..=3,
        surge in any::<bool>(),
        budget in 1i32..=3,
        spec in spec(),
        events in proptest::collection::vec(event(), 0..60),
    ) {
        let mut sim = cluster(count, zones, surge, budget, spec.clone());
        let canary_failed_early = std::cell::Cell::new(false);
        let mut canary: Option<Vec<String>> = None;
        for event in events.iter().chain(std::iter::repeat_n(&Event::Sync, 1)) {
            if let Some(node) = apply(&mut sim, event) {
                let status = sim.rollout.as_ref().map(|r| r.1.clone()).unwrap_or_default();
                let promoted = status.canary.as_ref().is_some_and(|c| c.promoted_at.is_some());
                if !promoted && canary.as_ref().is_some_and(|c| c.contains(&node)) {
                    canary_failed_early.set(true);
                }
            }
            if !matches!(event, Event::Sync) { continue; }

            // Determinism and idempotence, on the input of this sync.
            let plan = plan_of(&sim, &sim.nodes);
            let mut reversed = sim.nodes.clone();
            reversed.reverse();
            let shuffled = plan_of(&sim, &reversed);
            prop_assert_eq!(&plan.starts, &shuffled.starts);
            prop_assert_eq!(&plan.waits, &shuffled.waits);
            prop_assert_eq!(&plan.status, &shuffled.status);
            let mut again = sim.clone();
            if let Some(r) = again.rollout.as_mut() { r.1 = plan.status.clone(); }
            let second = plan_of(&again, &again.nodes);
            prop_assert_eq!(&second.status, &plan.status, "planning twice changed the status");
            prop_assert!(second.events.is_empty(), "second planning gave events {:?}", second.events);

            let outcome = sim.sync().unwrap_or_else(|e| panic!("{e}"));
            let decision = outcome.rollout.clone().unwrap_or_else(|| panic!("no decision"));
            let status = decision.status.clone();
            if canary.is_none() { canary = status.canary.as_ref().map(|c| c.nodes.clone()); }

            // 2. Nothing outside the allowed set is touched.
            let started = rolling_starts(&outcome, &sim.hash);
            let starts = decision.starts.clone().unwrap_or_default();
            prop_assert!(started.is_subset(&starts), "started {:?} outside starts {:?}", started, starts);
            for node in &starts {
                let n = sim.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(node.as_str()));
                let labels = n.and_then(|n| n.metadata.labels.clone()).unwrap_or_default();
                if spec.update_scope.is_some() {
                    prop_assert_eq!(labels.get("pool").map(String::as_str), Some("a"), "{} is out of scope", node);
                }
                prop_assert!(!decision.waits.contains_key(node));
                if let Some(step) = &status.step {
                    if step.name == "canary" {
                        let c = status.canary.as_ref().map(|c| c.nodes.clone()).unwrap_or_default();
                        prop_assert!(c.contains(node), "{} started during the canary step", node);
                    } else if let Some(waves) = spec.waves.as_ref().map(|_| &status.waves) {
                        let k = waves.iter().position(|w| step.name.ends_with(&format!("{ZONE}={}", w.value)));
                        let zone = labels.get(ZONE).cloned().unwrap_or_default();
                        let in_canary = status.canary.as_ref().is_some_and(|c| c.nodes.contains(node));
                        let allowed = k.is_some_and(|k| waves[..=k].iter().any(|w| w.value == zone));
                        prop_assert!(in_canary || allowed, "{} (zone {}) started beyond step {}", node, zone, step.name);
                    }
                }
            }
            // 3. A failing canary never reaches the next wave.
            if canary_failed_early.get() {
                let c: BTreeSet<String> = canary.clone().unwrap_or_default().into_iter().collect();
                prop_assert!(started.is_subset(&c), "after a canary failure {:?} started", started);
                prop_assert!(starts.is_subset(&c));
            }
            // 1. The budget: no more wanted nodes lose their last available pod than the budget
            //    leaves over the nodes already unavailable (surge: none).
            if let Some(rolling) = &outcome.rolling {
                let now = sim.timestamp();
                let (mut unavailable, mut lost) = (0i32, 0i32);
                for pods in rolling.before.values() {
                    let avail: Vec<&std::sync::Arc<CachedPod>> = pods.iter().filter(|p| !is_terminating(p) && is_available(p, 0, now)).collect();
                    if avail.is_empty() {
                        unavailable += 1;
                    } else if avail.iter().all(|p| rolling.plan.pods_to_delete.iter().any(|d| Some(d.as_str()) == p.metadata.name.as_deref())) {
                        lost += 1;
                    }
                }
                let limit = if surge { 0 } else { (budget - unavailable).max(0) };
                prop_assert!(lost <= limit, "{} nodes lost their available pod, budget {} with {} unavailable", lost, budget, unavailable);
            }
        }
    }

    /// Frozen: no create and no delete, whatever happens.
    #[test]
    fn frozen_means_an_empty_plan(
        count in 1usize..=10,
        spec in spec(),
        events in proptest::collection::vec(event(), 0..30),
    ) {
        let mut sim = cluster(count, 2, false, 2, spec.clone());
        if let Some(r) = sim.rollout.as_mut() { r.0.spec.frozen = true; }
        sim.nodes.push(node_with_labels("joined", &[(ZONE, "z0"), ("pool", "a")]));
        for event in &events {
            apply(&mut sim, event);
            if matches!(event, Event::Sync) {
                let outcome = sim.sync().unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(outcome.counts(), (0, 0));
            }
        }
        let outcome = sim.sync().unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(outcome.counts(), (0, 0));
    }

    /// Paused: manage creates on exactly the nodes it creates on without a policy.
    #[test]
    fn pause_never_blocks_a_create_for_a_node_without_a_pod(
        count in 1usize..=10,
        spec in spec(),
        events in proptest::collection::vec(event(), 0..30),
    ) {
        let mut sim = cluster(count, 2, false, 2, spec.clone());
        if let Some(r) = sim.rollout.as_mut() { r.0.spec.paused = true; }
        sim.nodes.push(node_with_labels("joined", &[(ZONE, "z0"), ("pool", "b")]));
        for event in events.iter().chain(std::iter::once(&Event::Sync)) {
            apply(&mut sim, event);
            if matches!(event, Event::Sync) {
                let mut backoff = crate::core::backoff::FailedPodBackoff::default();
                let upstream = plan_manage(&sim.ds, &sim.nodes, &sim.input(), &sim.hash, sim.timestamp(), &mut backoff);
                let outcome = sim.sync().unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(&outcome.manage_creates, &upstream.nodes_needing_pods);
                prop_assert!(rolling_starts(&outcome, &sim.hash).is_empty());
            }
        }
    }
}

/// A rollout with a canary and two waves runs to Complete, in order.
#[test]
fn canary_then_waves_complete() {
    let spec = DaemonSetRolloutSpec {
        canary: Some(Canary {
            nodes: IntOrString::Int(1),
            bake_seconds: Some(10),
            ..Canary::default()
        }),
        waves: Some(Waves {
            node_label: ZONE.into(),
            order: vec![],
            bake_seconds: Some(5),
        }),
        ..DaemonSetRolloutSpec::default()
    };
    let mut sim = cluster(6, 2, false, 3, spec);
    let mut order: Vec<BTreeSet<String>> = Vec::new();
    for _ in 0..40 {
        let outcome = sim.sync().unwrap_or_else(|e| panic!("{e}"));
        let started = rolling_starts(&outcome, &sim.hash);
        if !started.is_empty() {
            order.push(started);
        }
        sim.mark_all_ready();
        sim.advance(3);
    }
    let status = sim
        .rollout
        .as_ref()
        .map(|r| r.1.clone())
        .unwrap_or_default();
    assert_eq!(
        status.phase,
        Some(crate::api::Phase::Complete),
        "{status:?}"
    );
    assert_eq!(status.last_complete_revision.as_deref(), Some("v2"));
    let canary = status.canary.map(|c| c.nodes).unwrap_or_default();
    assert_eq!(
        order.first().map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(canary.clone()),
        "{order:?}"
    );
    // n00 is the canary (zone z0); then z0's other nodes, then z1's.
    let flat: Vec<String> = order.into_iter().flatten().collect();
    assert_eq!(flat, vec!["n00", "n02", "n04", "n01", "n03", "n05"]);
}

/// Partition 2 of 5 keeps the last two nodes on the old revision, phase Paused.
#[test]
fn partition_holds_the_last_nodes() {
    let spec = DaemonSetRolloutSpec {
        partition: Some(IntOrString::Int(2)),
        ..DaemonSetRolloutSpec::default()
    };
    let mut sim = cluster(5, 1, false, 1, spec);
    for _ in 0..20 {
        sim.sync().unwrap_or_else(|e| panic!("{e}"));
        sim.mark_all_ready();
        sim.advance(1);
    }
    let status = sim
        .rollout
        .as_ref()
        .map(|r| r.1.clone())
        .unwrap_or_default();
    assert_eq!((status.updated_nodes, status.desired_nodes), (3, 5));
    assert_eq!(status.phase, Some(crate::api::Phase::Paused));
    let old: Vec<String> = live(&sim)
        .into_iter()
        .filter(|l| !l.2)
        .map(|l| l.0)
        .collect();
    assert_eq!(old, vec!["n03", "n04"]);
    let plan = plan_of(&sim, &sim.nodes);
    assert!(matches!(
        plan.waits.get("n04"),
        Some(super::PolicyWait::Partition { partition: 2, .. })
    ));
}

/// Pacing: node-update starts are at least N seconds apart on the simulated clock.
#[test]
fn pacing_spaces_the_starts() {
    let spec = DaemonSetRolloutSpec {
        min_seconds_between_node_updates: Some(7),
        ..DaemonSetRolloutSpec::default()
    };
    let mut sim = cluster(4, 1, false, 4, spec);
    let mut at = Vec::new();
    for _ in 0..40 {
        let outcome = sim.sync().unwrap_or_else(|e| panic!("{e}"));
        let started = rolling_starts(&outcome, &sim.hash);
        assert!(started.len() <= 1, "{started:?}");
        if !started.is_empty() {
            at.push(sim.now);
        }
        sim.mark_all_ready();
        sim.advance(2);
    }
    assert_eq!(at.len(), 4, "{at:?}");
    assert!(at.windows(2).all(|w| w[1] - w[0] >= 7), "{at:?}");
}

/// A Manual canary waits for approval; once `approvals.canaryRevision` names the update revision
/// the rollout goes on and ends Complete (not WaitingForApproval beside Complete=True).
#[test]
fn an_approved_manual_canary_completes() {
    let spec = DaemonSetRolloutSpec {
        canary: Some(Canary {
            nodes: IntOrString::Int(1),
            bake_seconds: Some(0),
            promotion: Some(crate::api::Promotion::Manual),
            ..Canary::default()
        }),
        ..DaemonSetRolloutSpec::default()
    };
    let mut sim = cluster(3, 1, false, 1, spec);
    let phase = |sim: &Sim| sim.rollout.as_ref().and_then(|r| r.1.phase);
    for _ in 0..20 {
        sim.sync().unwrap_or_else(|e| panic!("{e}"));
        sim.mark_all_ready();
        sim.advance(1);
    }
    assert_eq!(phase(&sim), Some(crate::api::Phase::WaitingForApproval));
    let hash = sim.hash.clone();
    if let Some(r) = sim.rollout.as_mut() {
        r.0.spec.approvals = Some(crate::api::Approvals {
            canary_revision: Some(hash),
            ..Default::default()
        });
    }
    for _ in 0..20 {
        sim.sync().unwrap_or_else(|e| panic!("{e}"));
        sim.mark_all_ready();
        sim.advance(1);
    }
    let status = sim
        .rollout
        .as_ref()
        .map(|r| r.1.clone())
        .unwrap_or_default();
    assert_eq!(
        status.phase,
        Some(crate::api::Phase::Complete),
        "{status:?}"
    );
}

/// A DaemonSet that is complete when its policy arrives is Complete at once, even with a Manual
/// canary: the canary is for the next revision (found on the real control plane).
#[test]
fn a_policy_adopted_on_a_complete_daemonset_is_complete() {
    let spec = DaemonSetRolloutSpec {
        canary: Some(Canary {
            nodes: IntOrString::Int(1),
            bake_seconds: Some(0),
            promotion: Some(crate::api::Promotion::Manual),
            ..Canary::default()
        }),
        ..DaemonSetRolloutSpec::default()
    };
    let mut sim = cluster(3, 1, false, 1, spec);
    let hash = sim.hash.clone();
    for node in ["n00", "n01", "n02"] {
        for name in sim
            .pods_on(node)
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>()
        {
            sim.remove_pod(&name);
        }
        sim.create_pod(node);
    }
    sim.mark_all_ready();
    sim.advance(1);
    let plan = sim.plan_rollout(false).unwrap_or_else(|| panic!("no plan"));
    assert_eq!(
        plan.status.phase,
        Some(crate::api::Phase::Complete),
        "{:?}",
        plan.status
    );
    assert_eq!(
        plan.status.last_complete_revision.as_deref(),
        Some(hash.as_str())
    );
}
