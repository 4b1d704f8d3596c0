//! Create pacing on the real control plane (docs/differences.md, "Creates at the API server's
//! pace"): with a ResourceQuota on pods in the DaemonSet's namespace, everynode under its default
//! `--create-pacing=fast` sends no more failing pod creates than kube-controller-manager's own
//! DaemonSet controller, and without a quota it creates every pod.
//!
//! One control plane with an audit log and one identity per controller. Each scenario runs each
//! controller on its own: a fresh namespace (with its quota, once the quota controller has counted
//! it), a fresh controller process, a DaemonSet on all [`NODES`] fake nodes, then the audit log's
//! `create pods` requests of that controller's identity in that namespace.
//!
//! What makes the comparison fair: both controllers retry a failed sync after the same per-item
//! backoff (5 ms doubling), but how many retries land in a window depends on timing (a retry that
//! finds the creates not yet observed succeeds and resets the backoff), so the window totals are
//! reported, not compared. What is compared is per sync: a sync ends only once every response of
//! its failing batch is back, and only the last batch of a sync can fail, so the failed creates of
//! one sync are those received before every earlier failed create of its group had its response
//! ([`failing_syncs`]). The first failing sync carries what slow start protects (upstream's whole
//! failing batch); every later one is a probe of one create.
//!
//! [`NODES`] is above upstream's 250 creates per sync, so that the quota of [`QUOTA`] is reached in
//! upstream's second sync and in the second chunk of everynode's first.

mod support;

use controlplane::process::Process;
use controlplane::{ControlPlane, Options};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ResourceQuota};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::wait_for;

/// Fake nodes, all selected by every test DaemonSet.
const NODES: usize = 270;
/// The pods quota of the "quota of K" scenario: 250 + 7 pods from the first batches of the second
/// chunk (1, 2, 4) and 1 of its batch of 8, whose other 7 creates fail.
const QUOTA: usize = 258;
/// Failed creates are counted from the controller's first create to this much later: between the
/// retries at about 5.1 s and 10.2 s of a doubling 5 ms backoff.
const WINDOW: Duration = Duration::from_millis(7500);
const UPSTREAM_USER: &str = "upstream-dsc";
const EVERYNODE_USER: &str = "everynode-dsc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Upstream,
    Everynode,
}

impl Controller {
    fn user(self) -> &'static str {
        match self {
            Controller::Upstream => UPSTREAM_USER,
            Controller::Everynode => EVERYNODE_USER,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Controller::Upstream => "upstream",
            Controller::Everynode => "everynode",
        }
    }
}

/// One `create pods` request from the audit log (its ResponseComplete line).
#[derive(Debug, Clone)]
struct Create {
    received: Timestamp,
    completed: Timestamp,
    code: u16,
}

/// What one controller did in one scenario.
#[derive(Debug)]
struct Outcome {
    pods: usize,
    creates: usize,
    /// Failed creates within [`WINDOW`] of the first create.
    failed_in_window: usize,
    /// Failed creates per failing sync, in order.
    per_sync: Vec<usize>,
}

async fn start_cluster() -> ControlPlane {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("controlplane");
    support::prune_dead_runs(&base);
    let dir = base.join(format!("create-pacing-{}", std::process::id()));
    ControlPlane::start(Options {
        dir: Some(dir),
        nodes: NODES,
        users: vec![UPSTREAM_USER.into(), EVERYNODE_USER.into()],
        audit: true,
        crds: support::crds(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("control plane: {e}"))
}

/// Waits until no fake node carries a taint (the node lifecycle controller lifts `not-ready`).
async fn wait_nodes_untainted(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for(
        "fake nodes without taints",
        Duration::from_secs(120),
        || async {
            let list = nodes
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let tainted = list
                .items
                .iter()
                .filter(|n| {
                    n.spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|t| !t.is_empty())
                })
                .count();
            if list.items.len() >= NODES && tainted == 0 {
                Ok(())
            } else {
                Err(format!("{} nodes, {tainted} tainted", list.items.len()))
            }
        },
    )
    .await;
}

fn start_controller(cp: &ControlPlane, which: Controller, ns: &str) -> Process {
    let name = format!("{}-{ns}", which.label());
    match which {
        Controller::Upstream => cp
            .spawn_upstream_daemonset_controller(
                &name,
                which.user(),
                Options::default().node_lease_seconds,
                Some((100_000.0, 100_000)),
            )
            .unwrap_or_else(|e| panic!("start upstream: {e}")),
        Controller::Everynode => {
            let kubeconfig = cp
                .user_kubeconfig(which.user())
                .unwrap_or_else(|| panic!("no kubeconfig for {}", which.user()));
            // The default pacing: no --create-pacing.
            let args = vec![
                "run".to_string(),
                format!("--kubeconfig={}", kubeconfig.display()),
                "--metrics-bind-address=127.0.0.1:0".into(),
                "--leader-elect=false".into(),
                "--kube-api-qps=0".into(),
            ];
            let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
            let exe = std::path::Path::new(env!("CARGO_BIN_EXE_everynode"));
            Process::spawn_with_env(&name, exe, &args, &[("RUST_LOG", &level)], &cp.log(&name))
                .unwrap_or_else(|e| panic!("start everynode: {e}"))
        }
    }
}

/// The `create pods` requests of `user` in `ns`, in the order the API server received them.
fn creates_in_audit(cp: &ControlPlane, user: &str, ns: &str) -> Vec<Create> {
    let path = cp.audit_log().unwrap_or_else(|| panic!("no audit log"));
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("audit log: {e}"));
    let time = |v: &Value, k: &str| -> Timestamp {
        v[k].as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("audit line without {k}: {v}"))
    };
    let mut out: Vec<Create> = text
        .lines()
        .filter(|l| l.contains(user) && l.contains("\"create\""))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["stage"] == "ResponseComplete"
                && v["verb"] == "create"
                && v["user"]["username"] == user
                && v["objectRef"]["resource"] == "pods"
                && v["objectRef"]["namespace"] == ns
                && v["objectRef"]["subresource"].is_null()
        })
        .map(|v| Create {
            received: time(&v, "requestReceivedTimestamp"),
            completed: time(&v, "stageTimestamp"),
            code: v["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
        })
        .collect();
    out.sort_by_key(|c| c.received);
    out
}

fn failed(c: &Create) -> bool {
    !(200..300).contains(&c.code)
}

/// Failed creates grouped by sync: a failed create received after every earlier failed create of
/// the current group was answered starts a new group (a sync waits for all its responses).
fn failing_syncs(creates: &[Create]) -> Vec<usize> {
    let mut groups = Vec::new();
    let mut open: Option<(usize, Timestamp)> = None;
    for c in creates.iter().filter(|c| failed(c)) {
        match &mut open {
            Some((n, last_done)) if c.received < *last_done => {
                *n += 1;
                *last_done = (*last_done).max(c.completed);
            }
            _ => {
                if let Some((n, _)) = open.take() {
                    groups.push(n);
                }
                open = Some((1, c.completed));
            }
        }
    }
    groups.extend(open.map(|(n, _)| n));
    groups
}

/// Runs `which` on a fresh namespace with a pods quota of `quota` (none: no quota) until `expected`
/// pods exist and [`WINDOW`] has passed since its first create, then reads the audit log.
async fn run(
    cp: &ControlPlane,
    client: &Client,
    which: Controller,
    scenario: &str,
    quota: Option<usize>,
) -> Outcome {
    let ns = format!("{}-{scenario}", which.label());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await
        .unwrap_or_else(|e| panic!("create namespace {ns}: {e}"));
    if let Some(k) = quota {
        let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
        let q: ResourceQuota = serde_json::from_value(
            json!({"metadata": {"name": "pods"}, "spec": {"hard": {"pods": k.to_string()}}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        quotas
            .create(&PostParams::default(), &q)
            .await
            .unwrap_or_else(|e| panic!("create quota: {e}"));
        // Until the quota controller has counted the namespace, admission refuses every pod.
        wait_for("the quota's status", Duration::from_secs(60), || async {
            match quotas.get("pods").await {
                Ok(q)
                    if q.status
                        .as_ref()
                        .and_then(|s| s.hard.as_ref())
                        .is_some_and(|h| h.contains_key("pods")) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    let mut controller = start_controller(cp, which, &ns);
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "paced", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "paced"}},
            "template": {
                "metadata": {"labels": {"app": "paced"}},
                "spec": {
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                    "terminationGracePeriodSeconds": 0
                }
            }
        }
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    dss.create(&PostParams::default(), &ds)
        .await
        .unwrap_or_else(|e| panic!("create DaemonSet: {e}"));
    let expected = quota.unwrap_or(NODES).min(NODES);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    wait_for(
        &format!("{expected} pods from {}", which.label()),
        Duration::from_secs(180),
        || async {
            let n = pods
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if n >= expected
                && (expected > 0 || !creates_in_audit(cp, which.user(), &ns).is_empty())
            {
                Ok(())
            } else {
                Err(format!("{n} pods"))
            }
        },
    )
    .await;
    // Let the window after the first create pass (plus the audit log's flush), then stop.
    let first = creates_in_audit(cp, which.user(), &ns)
        .first()
        .map(|c| c.received)
        .unwrap_or_else(|| panic!("{} sent no create", which.label()));
    let window = k8s_openapi::jiff::SignedDuration::try_from(WINDOW).unwrap_or_default();
    loop {
        let elapsed = Timestamp::now().duration_since(first);
        if elapsed > window + k8s_openapi::jiff::SignedDuration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    controller.stop(Duration::from_secs(5));
    let pod_count = pods
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list pods: {e}"))
        .items
        .len();
    let creates = creates_in_audit(cp, which.user(), &ns);
    let end = first
        .checked_add(window)
        .unwrap_or_else(|e| panic!("window end: {e}"));
    let in_window: Vec<Create> = creates
        .iter()
        .filter(|c| c.received <= end)
        .cloned()
        .collect();
    let outcome = Outcome {
        pods: pod_count,
        creates: creates.len(),
        failed_in_window: in_window.iter().filter(|c| failed(c)).count(),
        per_sync: failing_syncs(&in_window),
    };
    eprintln!("{} {scenario}: {outcome:?}", which.label());
    outcome
}

/// Upstream against everynode for one quota: the first failing sync fails no more creates than
/// upstream's, and every later failing sync no more than upstream's largest later one.
fn assert_no_more_failures(scenario: &str, up: &Outcome, ev: &Outcome) {
    assert_eq!(ev.pods, up.pods, "{scenario}: pods created");
    let first = |o: &Outcome| o.per_sync.first().copied().unwrap_or(0);
    let later = |o: &Outcome| o.per_sync.iter().skip(1).copied().max().unwrap_or(0);
    assert!(
        first(ev) <= first(up),
        "{scenario}: everynode's first failing sync failed {} creates, upstream's {}",
        first(ev),
        first(up)
    );
    assert!(
        later(ev) <= later(up).max(1),
        "{scenario}: everynode's later failing syncs failed up to {} creates, upstream's {}",
        later(ev),
        later(up)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_pacing_fails_no_more_creates_than_upstream_and_creates_all_without_quota() {
    let started = Instant::now();
    let cp = start_cluster().await;
    let client = cp
        .client()
        .await
        .unwrap_or_else(|e| panic!("admin client: {e}"));
    wait_nodes_untainted(&client).await;
    eprintln!(
        "control plane with {NODES} nodes in {:?}",
        started.elapsed()
    );

    // A quota of 0: every sync is a probe of one create.
    let up = run(&cp, &client, Controller::Upstream, "quota-0", Some(0)).await;
    let ev = run(&cp, &client, Controller::Everynode, "quota-0", Some(0)).await;
    assert_eq!(first_or_zero(&up), 1, "upstream probes with one create");
    assert_no_more_failures("quota 0", &up, &ev);

    // A quota of K of N, reached in the second 250: upstream's second sync fails 7 of its batch of 8.
    let up = run(&cp, &client, Controller::Upstream, "quota-k", Some(QUOTA)).await;
    let ev = run(&cp, &client, Controller::Everynode, "quota-k", Some(QUOTA)).await;
    assert_eq!(up.pods, QUOTA);
    assert_no_more_failures("quota K", &up, &ev);
    assert_eq!(
        first_or_zero(&ev),
        7,
        "everynode's failing batch is upstream's"
    );

    // No quota: every pod, no failure.
    let ev = run(&cp, &client, Controller::Everynode, "no-quota", None).await;
    assert_eq!(
        (ev.pods, ev.creates, ev.failed_in_window),
        (NODES, NODES, 0)
    );
}

fn first_or_zero(o: &Outcome) -> usize {
    o.per_sync.first().copied().unwrap_or(0)
}
