//! DaemonSetRollout progressive delivery on the real local control plane (design §5): waves zone by
//! zone with a bake between them, a canary spread over zones with automatic promotion, and a canary
//! held for manual approval. A [`RolloutWatch`] records every pod event; the order and times are
//! printed for the closing note. The budget (the DaemonSet's own maxUnavailable) is checked on every
//! event by a [`BudgetWatcher`].

mod support;

use everynode::api::daemonset_rollout::Phase;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::budget::{Budget, BudgetWatcher};
use support::rollout_watch::RolloutWatch;
use support::{TestEnv, daemonset, everynode};

const ZONE: &str = "topology.kubernetes.io/zone";
const LONG: Duration = Duration::from_secs(180);

/// `per_zone` nodes in each of `zones` (`<zone>0`, `<zone>1`, ...), DaemonSet `agent` with
/// maxUnavailable `max_unavailable` Ready on all of them; returns the nodes by zone.
async fn zoned(
    name: &str,
    zones: &[&str],
    per_zone: usize,
    max_unavailable: i32,
) -> (TestEnv, Vec<(String, Vec<String>)>) {
    everynode();
    let env = TestEnv::new(name).await;
    let mut by_zone = Vec::new();
    for z in zones {
        let mut nodes = Vec::new();
        for i in 0..per_zone {
            nodes.push(env.add_node(&format!("{z}{i}"), &[(ZONE, z)], vec![]).await);
        }
        by_zone.push((z.to_string(), nodes));
    }
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": max_unavailable}}}}),
    ))
    .await;
    let all: Vec<&str> = by_zone
        .iter()
        .flat_map(|(_, ns)| ns.iter().map(String::as_str))
        .collect();
    env.wait_pods_exactly_on("agent", &all).await;
    (env, by_zone)
}

fn all_nodes(by_zone: &[(String, Vec<String>)]) -> Vec<String> {
    by_zone.iter().flat_map(|(_, ns)| ns.clone()).collect()
}

#[tokio::test]
async fn waves_zone_by_zone() {
    const BAKE: f64 = 5.0;
    let (env, by_zone) = zoned("dsr-waves", &["a", "b", "c"], 4, 2).await;
    let nodes = all_nodes(&by_zone);
    let old = env.current_hash(1).await;
    env.apply_dsr(
        "agent",
        json!({"waves": {"nodeLabel": ZONE, "order": ["a", "b", "c"], "bakeSeconds": BAKE as i32}}),
    )
    .await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&old), LONG)
        .await;
    let watch = RolloutWatch::start(&env, "agent").await;
    let budget = BudgetWatcher::start(&env, "agent", nodes.clone(), Budget::MaxUnavailable(2));
    let started = Instant::now();
    env.patch_template("agent", json!({"metadata": {"annotations": {"v": "2"}}}))
        .await;
    let new = env.current_hash(2).await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&new), LONG)
        .await;
    let took = started.elapsed().as_secs_f64();
    eprintln!(
        "waves: complete in {took:.1}s; order (seconds since the watch started):\n{}",
        watch.describe_order(&nodes, &new)
    );
    let mut problems = Vec::new();
    for pair in by_zone.windows(2) {
        let ((done_zone, done), (next_zone, next)) = (&pair[0], &pair[1]);
        let done_at = match watch.all_updated_ready(done, &new) {
            Ok(t) => t,
            Err(missing) => {
                problems.push(format!(
                    "zone {done_zone}: {missing:?} never updated and Ready"
                ));
                continue;
            }
        };
        match watch.first_update(next, &new) {
            Some((n, t)) if t < done_at + BAKE => problems.push(format!(
                "zone {next_zone}'s {n} started at {t:.2}s, before zone {done_zone} was updated and Ready ({done_at:.2}s) plus the {BAKE}s bake"
            )),
            Some((n, t)) => eprintln!(
                "zone {done_zone} updated and Ready at {done_at:.2}s; zone {next_zone} started at {t:.2}s ({n}), {:.2}s later",
                t - done_at
            ),
            None => problems.push(format!("zone {next_zone} never started")),
        }
    }
    budget.finish();
    assert!(
        problems.is_empty(),
        "{}\ntimeline:\n{}",
        problems.join("\n"),
        watch.timeline()
    );
}

#[tokio::test]
async fn canary_spread_then_automatic_promotion() {
    const BAKE: f64 = 5.0;
    let (env, by_zone) = zoned("dsr-canary", &["a", "b"], 3, 2).await;
    let nodes = all_nodes(&by_zone);
    let old = env.current_hash(1).await;
    env.apply_dsr(
        "agent",
        json!({"canary": {"nodes": 2, "spreadByLabel": ZONE, "bakeSeconds": BAKE as i32}}),
    )
    .await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&old), LONG)
        .await;
    let watch = RolloutWatch::start(&env, "agent").await;
    let budget = BudgetWatcher::start(&env, "agent", nodes.clone(), Budget::MaxUnavailable(2));
    let started = Instant::now();
    env.patch_template("agent", json!({"metadata": {"annotations": {"v": "2"}}}))
        .await;
    let new = env.current_hash(2).await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&new), LONG)
        .await;
    eprintln!(
        "canary: complete in {:.1}s; order:\n{}",
        started.elapsed().as_secs_f64(),
        watch.describe_order(&nodes, &new)
    );
    let order = watch.order(&nodes, &new);
    let canary: Vec<String> = order.iter().take(2).map(|(n, _, _)| n.clone()).collect();
    let zones: BTreeSet<&str> = by_zone
        .iter()
        .filter(|(_, ns)| ns.iter().any(|n| canary.contains(n)))
        .map(|(z, _)| z.as_str())
        .collect();
    assert_eq!(
        zones.len(),
        2,
        "the canary {canary:?} is not spread over both zones"
    );
    let status_canary: BTreeSet<String> = env
        .dsr_status("agent")
        .await
        .canary
        .map(|c| c.nodes.into_iter().collect())
        .unwrap_or_default();
    assert_eq!(
        status_canary,
        canary.iter().cloned().collect(),
        "status.canary.nodes"
    );
    let baked = watch
        .all_updated_ready(&canary, &new)
        .unwrap_or_else(|m| panic!("canary {m:?} never Ready"));
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !canary.contains(n))
        .cloned()
        .collect();
    let (first, t) = watch
        .first_update(&rest, &new)
        .unwrap_or_else(|| panic!("no node after the canary was updated"));
    budget.finish();
    assert!(
        t >= baked + BAKE,
        "{first} started at {t:.2}s, before the canary was Ready ({baked:.2}s) plus the {BAKE}s bake\n{}",
        watch.timeline()
    );
}

#[tokio::test]
async fn canary_manual_approval() {
    let (env, by_zone) = zoned("dsr-approval", &["a"], 3, 1).await;
    let nodes = all_nodes(&by_zone);
    let old = env.current_hash(1).await;
    env.apply_dsr(
        "agent",
        json!({"canary": {"nodes": 1, "bakeSeconds": 0, "promotion": "Manual"}}),
    )
    .await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&old), LONG)
        .await;
    let watch = RolloutWatch::start(&env, "agent").await;
    env.patch_template("agent", json!({"metadata": {"annotations": {"v": "2"}}}))
        .await;
    let new = env.current_hash(2).await;
    let waiting = env
        .wait_dsr_phase("agent", Phase::WaitingForApproval, Some(&new), LONG)
        .await;
    let canary: Vec<String> = waiting.canary.map(|c| c.nodes).unwrap_or_default();
    assert_eq!(canary.len(), 1, "canary nodes {canary:?}");
    let held_from = watch.now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s = env.dsr_status("agent").await;
    assert_eq!(
        s.phase,
        Some(Phase::WaitingForApproval),
        "not held for 10 s: {s:?}"
    );
    let ran = watch.nodes_that_ran(&new);
    assert_eq!(
        ran,
        canary.iter().cloned().collect(),
        "beyond the canary while waiting\n{}",
        watch.timeline()
    );
    // Approval, as `kubectl everynode approve` writes it.
    env.patch_dsr("agent", json!({"approvals": {"canaryRevision": new}}))
        .await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&new), LONG)
        .await;
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !canary.contains(n))
        .cloned()
        .collect();
    let (_, t) = watch
        .first_update(&rest, &new)
        .unwrap_or_else(|| panic!("no node after approval"));
    assert!(
        t >= held_from + 10.0,
        "a node started at {t:.2}s, during the hold\n{}",
        watch.timeline()
    );
    eprintln!("approval: order:\n{}", watch.describe_order(&nodes, &new));
}
