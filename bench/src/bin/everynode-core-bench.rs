//! `everynode-core-bench`: the pure core's cost of one DaemonSet sync and of one node event on
//! synthetic clusters of 5 000, 20 000 and 65 000 nodes (issue 14, item 4), which no local control
//! plane can hold. No client, no cache, no clock of the controller: only the decisions a sync and
//! the node queue's worker make, timed with `std::time::Instant` over enough iterations.
//!
//! One sync's pure work is what `controller::sync` asks the core for when a rolling update is under
//! way: the placements of every node, manage's plan, the rolling update's plan and the node reasons
//! with the status counters (`core::node_reason::explain`). One node event is the node queue's
//! decision for one node whose labels changed (`core::triggers::node_change`).
//!
//! Usage: `everynode-core-bench [--nodes 5000,20000,65000] [--out FILE]`; prints a markdown table and
//! writes it to `--out` when given.

use everynode::controller::daemonset_object::CachedDaemonSet;
use everynode::core::Timestamp;
use everynode::core::backoff::FailedPodBackoff;
use everynode::core::cached_node::CachedNode;
use everynode::core::cached_pod::CachedPod;
use everynode::core::manage::plan_manage_placed;
use everynode::core::node_reason::{self, explain_placed};
use everynode::core::placement::Placements;
use everynode::core::pods_by_node::{NodePods, group_by_node};
use everynode::core::rolling_update::{Gate, plan_rolling_update_placed};
use everynode::core::triggers;
use k8s_openapi::api::apps::v1::DaemonSet;
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The controller's allocator (`src/main.rs`), so the figures are the controller's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HASH: &str = "new-hash";
const OLD_HASH: &str = "old-hash";
const DS_UID: &str = "ds-uid";

/// Every 20th node carries a taint the DaemonSet tolerates, every 50th the unschedulable taint (a
/// default toleration), every 100th a taint it does not tolerate; every 200th is a virtual node its
/// affinity excludes. A tenth of the pods run the old revision.
fn node(i: usize) -> CachedNode {
    let mut taints = Vec::new();
    if i.is_multiple_of(20) {
        taints.push(json!({"key": "dedicated", "value": "infra", "effect": "NoSchedule"}));
    }
    if i.is_multiple_of(50) {
        taints.push(json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}));
    }
    if i.is_multiple_of(100) {
        taints.push(json!({"key": "gpu", "value": "true", "effect": "NoSchedule"}));
    }
    let kind = if i % 200 == 7 {
        "virtual-kubelet"
    } else {
        "vm"
    };
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("node-{i:05}"),
            "labels": {
                "kubernetes.io/hostname": format!("node-{i:05}"),
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": format!("zone-{}", i % 8),
                "node.example.com/type": kind,
                "node.example.com/pool": format!("pool-{}", i % 32),
            }
        },
        "spec": {"taints": taints},
    }))
    .unwrap_or_else(|e| panic!("node fixture: {e}"))
}

fn daemonset() -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": "kube-system", "uid": DS_UID, "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "containers": [{"name": "agent", "image": "registry.example.com/agent:2.0",
                                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                    "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
                    "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "node.example.com/type", "operator": "NotIn",
                             "values": ["virtual-kubelet", "fargate"]},
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}
                        ]}]}}},
                    "tolerations": [
                        {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}
                    ]
                }
            }
        },
        "status": {"numberMisscheduled": 0, "desiredNumberScheduled": 0, "currentNumberScheduled": 0,
                   "numberReady": 0}
    }))
    .unwrap_or_else(|e| panic!("DaemonSet fixture: {e}"))
}

fn pod(i: usize) -> CachedPod {
    let hash = if i % 10 == 3 { OLD_HASH } else { HASH };
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("agent-{i:05}"), "namespace": "kube-system", "uid": format!("pod-{i}"),
            "labels": {"app": "agent", "controller-revision-hash": hash},
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                 "uid": DS_UID, "controller": true}]
        },
        "spec": {"nodeName": format!("node-{i:05}"), "containers": [{"name": "agent"}]},
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}]}
    }))
    .unwrap_or_else(|e| panic!("pod fixture: {e}"))
}

/// A cluster of `n` nodes with one daemon pod on every node the DaemonSet should run on (and on
/// none of the others).
struct Cluster {
    /// The DaemonSet as the controller caches it, placement rules compiled.
    ds: CachedDaemonSet,
    nodes: Vec<Arc<CachedNode>>,
    pods: Vec<Arc<CachedPod>>,
}

fn cluster(n: usize) -> Cluster {
    let ds = CachedDaemonSet::new(daemonset(), serde_json::Value::Null);
    let nodes: Vec<Arc<CachedNode>> = (0..n).map(|i| Arc::new(node(i))).collect();
    let pods = (0..n)
        .filter(|i| i % 100 != 0 && i % 200 != 7)
        .map(|i| Arc::new(pod(i)))
        .collect();
    Cluster { ds, nodes, pods }
}

fn now() -> Timestamp {
    "2026-01-01T01:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("timestamp: {e}"))
}

/// One sync's pure work as `controller::sync` asks for it: every node placed once, then manage,
/// the rolling update and the node reasons with the counters over those placements (classes only,
/// as the sync asks: no pod facts, no outdated pod's wait). Returns something of every plan so
/// nothing is optimised away.
fn sync_once(c: &Cluster, node_pods: &NodePods) -> usize {
    let now = now();
    let ds: &DaemonSet = &c.ds.ds;
    let placements = Placements::compute(&c.ds.placement, &c.nodes);
    let mut backoff = FailedPodBackoff::default();
    let manage = plan_manage_placed(ds, &placements, node_pods, HASH, now, &mut backoff);
    let plan = plan_rolling_update_placed(ds, &placements, node_pods, HASH, now, Gate::OPEN).ok();
    let rolling = plan.as_ref().map(|p| p.pods_to_delete.len()).unwrap_or(0);
    let context = node_reason::Context {
        rolling_update: plan.as_ref(),
        classes_only: true,
        ..Default::default()
    };
    let explanation = explain_placed(ds, &placements, node_pods, HASH, now, &context);
    manage.nodes_needing_pods.len()
        + rolling
        + explanation.rows.len()
        + usize::try_from(explanation.counters.desired_number_scheduled).unwrap_or(0)
}

/// The node worker's decision for one node whose labels changed.
fn node_event_once(
    c: &Cluster,
    old: &CachedNode,
    new: &CachedNode,
    pods_on_node: &[Arc<CachedPod>],
) -> usize {
    let daemonsets = std::slice::from_ref(&c.ds);
    triggers::node_sync(new, Some(old), daemonsets, pods_on_node).len()
}

/// The process's CPU time (the benchmark runs on one thread): on a shared machine, wall time
/// also counts the time other processes held the CPU.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Mean wall time (`Instant`) and CPU time of `f` over `iterations` runs after one warm-up run.
fn time(iterations: u32, mut f: impl FnMut() -> usize) -> (Duration, Duration) {
    black_box(f());
    let cpu = cpu_time();
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(f());
    }
    (
        start.elapsed() / iterations,
        cpu_time().saturating_sub(cpu) / iterations,
    )
}

struct Row {
    nodes: usize,
    /// Wall time and CPU time per sync.
    sync: (Duration, Duration),
    /// Wall time and CPU time per node event.
    node_event: (Duration, Duration),
}

fn measure(n: usize) -> Row {
    let c = cluster(n);
    let node_pods = group_by_node(c.pods.iter(), false);
    // Enough syncs for about a second at today's cost, at least 3.
    let iterations = u32::try_from((200_000 / n).max(3)).unwrap_or(3);
    let sync = time(iterations, || sync_once(&c, &node_pods));
    // A node in the middle of the cluster gets a new label.
    let i = n / 2 + 1;
    let old = c.nodes[i].clone();
    let mut changed = (*old).clone();
    changed
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("node.example.com/maintenance".into(), "soon".into());
    let new = changed;
    let on_node: Vec<Arc<CachedPod>> = node_pods
        .get(old.metadata.name.as_deref().unwrap_or_default())
        .cloned()
        .unwrap_or_default();
    let node_event = time(20_000, || node_event_once(&c, &old, &new, &on_node));
    Row {
        nodes: n,
        sync,
        node_event,
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| nodes | ms per sync | CPU ms per sync | µs per node event | CPU µs per node event \
         | sync ratio to 5k (CPU) | node event ratio to 5k (CPU) |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let base = rows.first();
    for r in rows {
        let ratio = |a: Duration, b: Option<Duration>| match b {
            Some(b) if !b.is_zero() => format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
            r.nodes,
            r.sync.0.as_secs_f64() * 1e3,
            r.sync.1.as_secs_f64() * 1e3,
            r.node_event.0.as_secs_f64() * 1e6,
            r.node_event.1.as_secs_f64() * 1e6,
            ratio(r.sync.1, base.map(|b| b.sync.1)),
            ratio(r.node_event.1, base.map(|b| b.node_event.1)),
        ));
    }
    out
}

fn main() {
    let mut sizes = vec![5_000usize, 20_000, 65_000];
    let mut out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                let list = args.next().unwrap_or_default();
                sizes = list
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
            }
            "--out" => out = args.next(),
            other => {
                eprintln!("usage: everynode-core-bench [--nodes 5000,20000,65000] [--out FILE]");
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    if sizes.is_empty() {
        eprintln!("--nodes needs a comma-separated list of node counts");
        std::process::exit(2);
    }
    let rows: Vec<Row> = sizes
        .iter()
        .map(|&n| {
            let row = measure(n);
            eprintln!("{n} nodes measured");
            row
        })
        .collect();
    let text = table(&rows);
    print!("{text}");
    if let Some(path) = out
        && let Err(e) = std::fs::write(&path, &text)
    {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
}
