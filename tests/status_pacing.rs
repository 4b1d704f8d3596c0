//! Status write pacing on the real control plane (docs/differences.md, "Counters-only status writes
//! at most once a second per DaemonSet"): the same DaemonSet, created on [`NODES`] fake nodes and
//! then rolled out, once under everynode's default `--status-write-interval=1s` and once under
//! `--status-write-interval=0s` (every change at once, as kube-controller-manager).
//!
//! A watch of the DaemonSet sees every status everynode writes (nothing else writes it here). Each
//! write is classified against the one before it: it moves observedGeneration, it settles the
//! DaemonSet after a write that did not (both written at once), or it changes counters only. Under
//! pacing every counters-only write comes at least [`CLOSE`] after the write before it; the unpaced
//! run must show such writes closer than that, which proves the scenario changes counters faster
//! than once a second, so the paced run's check can fail. Both runs end with the same status.
//!
//! The same interval paces syncs (docs/differences.md, "Pod events that change only a pod's status
//! wait for the DaemonSet's next paced sync"): between the create and the rollout, a probe updates
//! the pods' status (a condition of its own, readiness as it was) [`PROBES`] times; the paced run
//! syncs a few times for them, the unpaced run about once per update.

mod support;

use everynode::core::status::StatusCounters;
use everynode::core::status_pacing::is_settled;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::invariants::{Everynode, wait_converged};
use support::{TestEnv, daemonset, own_control_plane};

/// Fake nodes of each run, all selected by its DaemonSet.
const NODES: usize = 40;
/// Two writes closer than this are "close": the interval is 1 s, and the watch delivers each
/// status a few milliseconds after its write.
const CLOSE: Duration = Duration::from_millis(900);
const PACED_USER: &str = "everynode-paced";
const UNPACED_USER: &str = "everynode-unpaced";

/// One status the watch saw written, and when.
#[derive(Debug, Clone)]
struct Write {
    at: Instant,
    status: DaemonSetStatus,
}

/// Why a write may come at once.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// It moved observedGeneration.
    Generation,
    /// It settled the DaemonSet after a write that did not.
    Settles,
    /// It changed counters only.
    Counters,
}

fn kind(before: &DaemonSetStatus, now: &DaemonSetStatus) -> Kind {
    if now.observed_generation > before.observed_generation {
        Kind::Generation
    } else if is_settled(&StatusCounters::of(now)) && !is_settled(&StatusCounters::of(before)) {
        Kind::Settles
    } else {
        Kind::Counters
    }
}

/// What one run did: the statuses written, in order, and the syncs the status-only pod updates
/// caused.
struct Run {
    writes: Vec<Write>,
    probe_syncs: f64,
}

/// Pod status updates the probe makes, one every [`PROBE_GAP`]: each adds a condition of its own to
/// a pod (a change of status only, readiness as it was).
const PROBES: usize = 40;
const PROBE_GAP: Duration = Duration::from_millis(25);

/// The syncs everynode has run, of any result.
async fn syncs(everynode: &Everynode) -> f64 {
    let metrics = everynode.metrics().await.expect("everynode's /metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("everynode_reconciles_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Adds the condition `everynode.test/probe-<i>` to every pod of the DaemonSet in turn, [`PROBES`]
/// updates [`PROBE_GAP`] apart, and returns the syncs they caused (counted until 3 s after the last).
async fn probe(env: &TestEnv, everynode: &Everynode) -> f64 {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .expect("list the DaemonSet's pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(!names.is_empty(), "no pod to probe");
    let before = syncs(everynode).await;
    for i in 0..PROBES {
        let name = &names[i % names.len()];
        let patch = json!({"status": {"conditions": [
            {"type": format!("everynode.test/probe-{i}"), "status": "True"}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch the status of {name}: {e}"));
        tokio::time::sleep(PROBE_GAP).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    syncs(everynode).await - before
}

impl Run {
    /// The counters-only writes closer than [`CLOSE`] to the write before, as "gap (s): counters".
    fn close_counter_writes(&self) -> Vec<String> {
        self.writes
            .windows(2)
            .filter(|w| kind(&w[0].status, &w[1].status) == Kind::Counters)
            .filter(|w| w[1].at.duration_since(w[0].at) < CLOSE)
            .map(|w| {
                format!(
                    "{:.3}: {:?}",
                    w[1].at.duration_since(w[0].at).as_secs_f64(),
                    StatusCounters::of(&w[1].status)
                )
            })
            .collect()
    }

    fn figures(&self) -> String {
        let gaps: Vec<String> = self
            .writes
            .windows(2)
            .map(|w| {
                let tag = match kind(&w[0].status, &w[1].status) {
                    Kind::Generation => "g",
                    Kind::Settles => "s",
                    Kind::Counters => "",
                };
                format!("{:.2}{tag}", w[1].at.duration_since(w[0].at).as_secs_f64())
            })
            .collect();
        format!(
            "{} status writes, {} counters-only writes closer than {CLOSE:?}; gaps in s (g: moves \
             observedGeneration, s: settles): {}",
            self.writes.len(),
            self.close_counter_writes().len(),
            gaps.join(" ")
        )
    }

    fn last(&self) -> DaemonSetStatus {
        let mut status = self
            .writes
            .last()
            .map(|w| w.status.clone())
            .unwrap_or_default();
        // Conditions are no counters.
        status.conditions = None;
        status
    }
}

/// Runs the scenario in a namespace of its own under everynode as `user` with `interval`.
async fn run(
    cp: &'static controlplane::ControlPlane,
    name: &str,
    user: &str,
    interval: &str,
) -> Run {
    let env = TestEnv::on(cp, name).await;
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    for node in &nodes {
        env.wait_node_ready(node).await;
    }
    // Every status of the DaemonSet as the watch delivers it.
    let seen: Arc<Mutex<Vec<Write>>> = Arc::default();
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let watch = {
        let seen = seen.clone();
        let cfg = watcher::Config::default().fields("metadata.name=agent");
        let mut stream = watcher::watcher(dss.clone(), cfg).boxed();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                let ds = match event {
                    Ok(watcher::Event::Apply(ds) | watcher::Event::InitApply(ds)) => ds,
                    Ok(_) => continue,
                    Err(e) => panic!("the DaemonSet watch failed: {e}"),
                };
                let status = ds.status.unwrap_or_default();
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                if seen.last().is_none_or(|w| w.status != status) {
                    seen.push(Write {
                        at: Instant::now(),
                        status,
                    });
                }
            }
        })
    };
    let kubeconfig = cp
        .user_kubeconfig(user)
        .unwrap_or_else(|| panic!("kubeconfig of {user}"));
    let mut everynode = Everynode::start(
        cp,
        user,
        &kubeconfig,
        &[
            "--leader-elect=false",
            &format!("--status-write-interval={interval}"),
        ],
    );
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 10, "maxSurge": 0}}}}),
    ))
    .await;
    wait_converged(&env, "agent", &nodes, 1, Duration::from_secs(120)).await;
    let probe_syncs = probe(&env, &everynode).await;
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    wait_converged(&env, "agent", &nodes, 2, Duration::from_secs(180)).await;
    // Anything held back would come within the interval.
    tokio::time::sleep(Duration::from_secs(2)).await;
    everynode.assert_healthy();
    drop(everynode);
    watch.abort();
    let writes = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // The first status seen is the empty one of the DaemonSet as created.
    Run {
        writes,
        probe_syncs,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_only_status_writes_are_a_second_apart_and_end_as_upstreams() {
    let cp = own_control_plane(
        "status-pacing",
        controlplane::Options {
            users: vec![PACED_USER.to_string(), UNPACED_USER.to_string()],
            users_group: "everynode:controllers".into(),
            ..Default::default()
        },
    );
    let paced = run(cp.get(), "paced", PACED_USER, "1s").await;
    let unpaced = run(cp.get(), "unpaced", UNPACED_USER, "0s").await;
    eprintln!("FIGURES status-pacing paced: {}", paced.figures());
    eprintln!("FIGURES status-pacing unpaced: {}", unpaced.figures());
    eprintln!(
        "FIGURES sync-pacing: {PROBES} status-only pod updates {PROBE_GAP:?} apart caused {} syncs \
         paced and {} unpaced",
        paced.probe_syncs, unpaced.probe_syncs
    );

    assert_eq!(
        paced.last(),
        unpaced.last(),
        "the last status differs between the paced and the unpaced run"
    );
    assert!(
        is_settled(&StatusCounters::of(&paced.last())),
        "the paced run did not end settled: {:?}",
        paced.last()
    );
    assert!(
        unpaced.close_counter_writes().len() >= 3,
        "the unpaced run wrote fewer than 3 counters-only statuses closer than {CLOSE:?}: the \
         scenario does not show pacing ({})",
        unpaced.figures()
    );
    assert!(
        paced.writes.len() >= 6,
        "the paced run wrote too few statuses to judge: {}",
        paced.figures()
    );
    let close = paced.close_counter_writes();
    assert!(
        close.is_empty(),
        "under --status-write-interval=1s, counters-only status writes came closer than {CLOSE:?} \
         to the write before:\n{}\n{}",
        close.join("\n"),
        paced.figures()
    );
    // The unpaced run syncs once per update, or nearly: the scenario can show pacing.
    assert!(
        unpaced.probe_syncs >= (PROBES / 2) as f64,
        "the unpaced run synced {} times for {PROBES} status-only pod updates: the probe does not \
         show pacing",
        unpaced.probe_syncs
    );
    // Paced: the first update syncs at once, the rest wait for a sync a second after it (the
    // updates take about a second and a half), and one more may follow.
    assert!(
        paced.probe_syncs <= 4.0,
        "under --status-write-interval=1s, {PROBES} status-only pod updates {PROBE_GAP:?} apart \
         caused {} syncs (at most 4 expected)",
        paced.probe_syncs
    );
    assert!(
        paced.writes.len() < unpaced.writes.len(),
        "pacing wrote no fewer statuses: {} against {}",
        paced.writes.len(),
        unpaced.writes.len()
    );
}
