//! One turn: one controller at one API budget on N nodes, in a fresh namespace: create D DaemonSets
//! (1 by default) on the pool, roll them out (maxUnavailable 10%), let 10% more nodes join, then a
//! steady state with node label churn; the controller's CPU, peak RSS and requests by verb per phase;
//! then everything is removed.

use crate::audit::AuditLog;
use crate::controller::{Budget, Kind, PhaseStats, Running};
use crate::error::Error;
use crate::nodehealth::NodeHealth;
use crate::podwatch::{self, PodTracker, REVISION_ANNOTATION};
use crate::rollout_profile::{self, RolloutProfile};
use crate::stats::percentile;
use crate::{namespace, pool, progress};
use controlplane::ControlPlane;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How a turn runs.
#[derive(Debug, Clone)]
pub struct TurnSpec {
    pub kind: Kind,
    pub budget: Budget,
    pub nodes: usize,
    /// DaemonSets created on the pool; every figure counts all of their pods.
    pub daemonsets: usize,
    pub steady: Duration,
    pub churn_per_second: u32,
}

/// The figures of one turn; `None` where the turn did not get that far (see `errors`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TurnResult {
    pub controller: String,
    pub budget: String,
    pub nodes: usize,
    /// DaemonSets of the turn (all pods below are N per DaemonSet).
    #[serde(default = "one")]
    pub daemonsets: usize,
    /// Seconds from creating the DaemonSet until all N pods exist.
    pub create_all_exist_s: Option<f64>,
    /// Seconds from creating the DaemonSet until all N pods are Ready.
    pub create_all_ready_s: Option<f64>,
    /// Seconds from the template change until every pod is of the new template and available.
    pub rollout_s: Option<f64>,
    /// How many nodes joined.
    pub joined: usize,
    /// Seconds from a joining node's creation to its pods' creation (the last of its D pods): median
    /// and 99th percentile.
    pub join_median_s: Option<f64>,
    pub join_p99_s: Option<f64>,
    /// The same from the moment the node was first seen schedulable for daemon pods (Ready, its
    /// not-ready taint lifted by the node lifecycle controller): the controller's part of the
    /// join, above what the control plane needs on its own. `None` in results from before this
    /// was observed.
    #[serde(default)]
    pub join_schedulable_median_s: Option<f64>,
    #[serde(default)]
    pub join_schedulable_p99_s: Option<f64>,
    /// Node label patches sent during the steady state.
    pub churn_patches: u64,
    pub phases: Vec<PhaseStats>,
    /// VmHWM of the controller at the end of the turn (peak RSS since it started).
    pub high_water_mark_bytes: Option<u64>,
    /// Nodes unhealthy (not Ready, or with the not-ready/unreachable taints) at the turn's start or
    /// that lost their health during it: a fault of the control plane, not of the controller
    /// (`nodehealth`). `None` if the node watch never listed, and in results from before this was
    /// observed.
    #[serde(default)]
    pub nodes_lost_health: Option<usize>,
    /// Where the rolling update's time went, slot by slot (`rollout_profile`). `None` in results
    /// from before this was observed.
    #[serde(default)]
    pub rollout_profile: Option<RolloutProfile>,
    pub errors: Vec<String>,
}

impl TurnResult {
    pub fn phase(&self, name: &str) -> Option<&PhaseStats> {
        self.phases.iter().find(|p| p.phase == name)
    }
}

fn one() -> usize {
    1
}

/// The name of the d-th DaemonSet of a turn: `bench` for the first (as before there were several).
fn ds_name(d: usize) -> String {
    match d {
        0 => "bench".into(),
        d => format!("bench-{d}"),
    }
}

fn daemonset(namespace: &str, name: &str, revision: &str) -> Result<DaemonSet, Error> {
    let ds = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {REVISION_ANNOTATION: revision}},
                "spec": {
                    "nodeSelector": {pool::POOL_LABEL: "true"},
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                    "terminationGracePeriodSeconds": 0
                }
            }
        }
    });
    serde_json::from_value(ds)
        .map_err(|e| Error::Usage(format!("the benchmark's DaemonSet does not parse: {e}")))
}

/// A generous bound for waits on `n` pods (20 QPS makes 1000 pods take 50 s at best), at most an
/// hour: a run that stalls says so the same day.
pub fn bound(n: usize) -> Duration {
    Duration::from_secs((180 + n as u64).min(3600))
}

/// Runs one turn and cleans up after it, whatever happened.
pub async fn run(
    cp: &ControlPlane,
    client: &kube::Client,
    spec: &TurnSpec,
    everynode: &Path,
) -> Result<TurnResult, Error> {
    let ns = format!(
        "bench-{}-{}-{}",
        spec.kind.name(),
        spec.budget.name,
        spec.nodes
    );
    let tag = format!("{}-{}", spec.budget.name, spec.nodes);
    let mut result = TurnResult {
        controller: spec.kind.name().into(),
        budget: spec.budget.name.clone(),
        nodes: spec.nodes,
        daemonsets: spec.daemonsets,
        ..Default::default()
    };
    namespace::create(client, &ns).await?;
    let tracker = PodTracker::start(client.clone(), &ns).await?;
    let health = NodeHealth::start(client.clone()).await;
    let audit_path = cp
        .audit_log()
        .ok_or_else(|| Error::Usage("the control plane was started without an audit log".into()))?;
    let mut audit = AuditLog::open_at_end(audit_path);
    let say = |m: String| {
        progress::say(format!(
            "N={} {} {}: {m}",
            spec.nodes,
            spec.kind.name(),
            spec.budget.name
        ))
    };
    say("starting the controller".into());
    let mut controller =
        Running::start(cp, spec.kind, &spec.budget, everynode, &tag, &mut audit).await?;
    result.phases.push(controller.startup_stats());
    let joining: Vec<String> = (0..(spec.nodes / 10).max(1))
        .map(pool::joining_node)
        .collect();

    let outcome = phases(
        client,
        spec,
        &ns,
        &tracker,
        &mut controller,
        &mut audit,
        &joining,
        &health,
        &mut result,
        &say,
    )
    .await;
    if let Err(e) = outcome {
        say(format!("FAILED: {e}"));
        result.errors.push(e.to_string());
    }
    result.high_water_mark_bytes = controller.high_water_mark();
    controller.stop();
    drop(tracker);
    result.nodes_lost_health = health.lost();
    if let Some(lost) = result.nodes_lost_health.filter(|&l| l > 0) {
        say(format!(
            "{} lost Ready during this turn: its figures measure that fault too",
            crate::nodehealth::nodes(lost)
        ));
    }
    drop(health);

    say("cleaning up".into());
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    for d in 0..spec.daemonsets {
        let name = ds_name(d);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::kube(format!("delete DaemonSet {ns}/{name}"))(e)),
        }
    }
    namespace::delete_pods(client, &ns).await?;
    pool::delete(client, &joining).await?;
    namespace::delete(client, &ns).await?;
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
async fn phases(
    client: &kube::Client,
    spec: &TurnSpec,
    ns: &str,
    tracker: &PodTracker,
    controller: &mut Running,
    audit: &mut AuditLog,
    joining: &[String],
    health: &NodeHealth,
    result: &mut TurnResult,
    say: &impl Fn(String),
) -> Result<(), Error> {
    let (nodes_n, ds) = (spec.nodes, spec.daemonsets);
    // Every figure counts the pods of all D DaemonSets: N per DaemonSet, one per node each.
    let n = nodes_n * ds;
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);

    // 1. Create.
    say(format!("creating {ds} DaemonSet(s) ({n} pods)"));
    let phase = controller.phase("create");
    let t0 = Instant::now();
    for d in 0..ds {
        api.create(&PostParams::default(), &daemonset(ns, &ds_name(d), "1")?)
            .await
            .map_err(Error::kube("create the DaemonSet"))?;
    }
    tracker
        .wait(
            &format!("{n} Ready pods of revision 1"),
            bound(n),
            |pods| {
                let (live, ready, nodes) = pods.tally("1");
                (live == n && ready == n && nodes == nodes_n).then_some(())
            },
            podwatch::describe,
        )
        .await?;
    let pods = tracker.snapshot();
    let mut seen: Vec<Instant> = pods
        .values()
        .filter(|p| p.revision == "1")
        .map(|p| p.first_seen)
        .collect();
    let mut ready: Vec<Instant> = pods
        .values()
        .filter(|p| p.revision == "1")
        .filter_map(|p| p.ready_at)
        .collect();
    seen.sort();
    ready.sort();
    let since = |t: Option<&Instant>| t.map(|t| t.saturating_duration_since(t0).as_secs_f64());
    let last = n.saturating_sub(1);
    result.create_all_exist_s = since(seen.get(last));
    result.create_all_ready_s = since(ready.get(last));
    result.phases.push(controller.end(phase, audit)?);
    controller.check_alive()?;
    say(format!(
        "all {n} pods created in {:.2}s, Ready in {:.2}s",
        result.create_all_exist_s.unwrap_or(f64::NAN),
        result.create_all_ready_s.unwrap_or(f64::NAN)
    ));

    // 2. Rolling update.
    say("rolling update to revision 2 (maxUnavailable 10%)".into());
    let phase = controller.phase("update");
    let t0 = Instant::now();
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {REVISION_ANNOTATION: "2"}}}}});
    for d in 0..ds {
        api.patch(&ds_name(d), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube("change the DaemonSet's template"))?;
    }
    tracker
        .wait(
            &format!("{n} Ready pods of revision 2 and none of revision 1"),
            bound(2 * n),
            |pods| {
                let (live, ready, nodes) = pods.tally("2");
                let (old, _, _) = pods.tally("1");
                (live == n && ready == n && nodes == nodes_n && old == 0).then_some(())
            },
            podwatch::describe,
        )
        .await?;
    let done = Instant::now();
    result.rollout_s = Some(done.saturating_duration_since(t0).as_secs_f64());
    result.rollout_profile = Some(rollout_profile::profile(
        &tracker.snapshot(),
        "1",
        "2",
        t0,
        done,
    ));
    result.phases.push(controller.end(phase, audit)?);
    controller.check_alive()?;
    say(format!(
        "rolled out in {:.2}s",
        result.rollout_s.unwrap_or(f64::NAN)
    ));

    // 3. Nodes join.
    let m = joining.len();
    say(format!("{m} nodes join"));
    let phase = controller.phase("join");
    let created = pool::create(client, joining).await?;
    let total = n + m * ds;
    tracker
        .wait(
            &format!("{total} Ready pods of revision 2"),
            bound(m * ds),
            |pods| {
                let (live, ready, nodes) = pods.tally("2");
                (live == total && ready == total && nodes == nodes_n + m).then_some(())
            },
            podwatch::describe,
        )
        .await?;
    let pods = tracker.snapshot();
    // When each joining node got all its D pods (each DaemonSet's first pod there, the last of them).
    let all_pods_at = |node: &str| {
        let mut firsts: BTreeMap<&str, Instant> = BTreeMap::new();
        for p in pods.values().filter(|p| p.node == node) {
            let e = firsts.entry(p.owner.as_str()).or_insert(p.first_seen);
            *e = (*e).min(p.first_seen);
        }
        (firsts.len() == ds)
            .then(|| firsts.values().max().copied())
            .flatten()
    };
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let latencies = sorted(
        created
            .iter()
            .filter_map(|(node, at)| {
                all_pods_at(node).map(|seen| seen.saturating_duration_since(*at).as_secs_f64())
            })
            .collect(),
    );
    let above_floor = sorted(
        created
            .iter()
            .filter_map(|(node, _)| {
                let schedulable = health.first_healthy(node)?;
                all_pods_at(node)
                    .map(|seen| seen.saturating_duration_since(schedulable).as_secs_f64())
            })
            .collect(),
    );
    result.joined = m;
    result.join_median_s = percentile(&latencies, 50.0);
    result.join_p99_s = percentile(&latencies, 99.0);
    result.join_schedulable_median_s = percentile(&above_floor, 50.0);
    result.join_schedulable_p99_s = percentile(&above_floor, 99.0);
    result.phases.push(controller.end(phase, audit)?);
    controller.check_alive()?;
    say(format!(
        "new nodes' pods created after {:.2}s (median), {:.2}s (p99)",
        result.join_median_s.unwrap_or(f64::NAN),
        result.join_p99_s.unwrap_or(f64::NAN)
    ));

    // 4. Steady state with label churn.
    say(format!(
        "steady state for {}s with {} node label patches/s",
        spec.steady.as_secs(),
        spec.churn_per_second
    ));
    let phase = controller.phase("steady");
    result.churn_patches = pool::churn(client, nodes_n, spec.churn_per_second, spec.steady).await?;
    let stats = controller.end(phase, audit)?;
    say(format!(
        "steady state: {:.2} CPU s, {} requests",
        stats.cpu_seconds,
        stats.requests.values().sum::<u64>()
    ));
    result.phases.push(stats);
    controller.check_alive()?;
    Ok(())
}
