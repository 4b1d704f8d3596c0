//! Running everynode as an operator would, on the real control plane: with only the ClusterRole of
//! `deploy/everynode.yaml`, two replicas with leader election and a leader killed mid-rollout,
//! `/metrics` matching what the controller did, and `/readyz` / `/healthz` around the cache sync.
//!
//! Each test starts its own everynode processes and they act on the whole cluster, so the tests of
//! this binary run one at a time (`SERIAL`).

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::budget::{Budget, BudgetWatcher};
use support::{TestEnv, daemonset, http_get, lease_holder, wait_for};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An everynode process, stopped (SIGTERM, then SIGKILL) when dropped, also when a test fails.
struct Everynode {
    process: controlplane::process::Process,
    metrics_port: u16,
}

impl Drop for Everynode {
    fn drop(&mut self) {
        self.process.stop(Duration::from_secs(10));
    }
}

/// Starts everynode with `kubeconfig`, `extra` flags and `env`, serving metrics on a free port.
fn start(name: &str, kubeconfig: &Path, extra: &[&str], env: &[(&str, &str)]) -> Everynode {
    let cp = support::control_plane();
    let metrics_port = controlplane::free_port().unwrap_or_else(|e| panic!("free port: {e}"));
    let mut args = vec![
        "run".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--metrics-bind-address=127.0.0.1:{metrics_port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,everynode=debug".into());
    let mut vars = vec![("RUST_LOG", level.as_str())];
    vars.extend_from_slice(env);
    let exe = Path::new(env!("CARGO_BIN_EXE_everynode"));
    let process =
        controlplane::process::Process::spawn_with_env(name, exe, &args, &vars, &cp.log(name))
            .unwrap_or_else(|e| panic!("start everynode: {e}"));
    eprintln!(
        "{name}: pid {}, log {}",
        process.pid(),
        process.log().display()
    );
    Everynode {
        process,
        metrics_port,
    }
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus text page.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| match l.rsplit_once(' ') {
            Some((k, v)) if k == name => v.parse().ok(),
            _ => None,
        })
}

async fn scrape(port: u16) -> String {
    match http_get(port, "/metrics").await {
        Ok((200, body)) => body,
        other => panic!("GET /metrics: {other:?}"),
    }
}

/// The RBAC documents of deploy/everynode.yaml (ServiceAccount, ClusterRole, ClusterRoleBinding),
/// without the Deployment and Service, which must not run on the local control plane.
fn rbac_documents() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/everynode.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let docs: Vec<&str> = text
        .split("\n---")
        .filter(|doc| {
            doc.lines().any(|l| {
                matches!(
                    l.trim_end(),
                    "kind: ServiceAccount" | "kind: ClusterRole" | "kind: ClusterRoleBinding"
                )
            })
        })
        .collect();
    assert_eq!(
        docs.len(),
        3,
        "deploy/everynode.yaml should hold a ServiceAccount, a ClusterRole and a ClusterRoleBinding"
    );
    docs.join("\n---\n")
}

/// A kubeconfig for the ServiceAccount kube-system/everynode, with the ClusterRole of
/// deploy/everynode.yaml applied.
fn service_account_kubeconfig(env: &TestEnv) -> PathBuf {
    let dir = env.cp.dir();
    let rbac = dir.join("everynode-rbac.yaml");
    std::fs::write(&rbac, rbac_documents()).unwrap_or_else(|e| panic!("write rbac: {e}"));
    env.kubectl(&["apply", "-f", &rbac.display().to_string()]);
    let token = env.kubectl(&[
        "create",
        "token",
        "everynode",
        "-n",
        "kube-system",
        "--duration=1h",
    ]);
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": env.cp.server(),
            "certificate-authority": env.cp.ca_cert().display().to_string(),
        }}],
        "users": [{"name": "everynode", "user": {"token": token.trim()}}],
        "contexts": [{"name": "everynode", "context": {"cluster": "local", "user": "everynode"}}],
        "current-context": "everynode",
    });
    let path = dir.join("kubeconfig-everynode-sa");
    std::fs::write(&path, kubeconfig.to_string())
        .unwrap_or_else(|e| panic!("write kubeconfig: {e}"));
    path
}

/// `kubectl auth can-i` with `kubeconfig`: true for "yes".
fn can_i(env: &TestEnv, kubeconfig: &Path, args: &[&str]) -> bool {
    let out = std::process::Command::new(env.cp.binaries().path("kubectl"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["auth", "can-i"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run kubectl: {e}"));
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

fn hash_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

/// Pods of `ds` (any state) carrying revision `hash`.
async fn count_on_revision(env: &TestEnv, ds: &str, hash: &str) -> usize {
    env.pods_by_node(&format!("app={ds}"))
        .await
        .values()
        .flatten()
        .filter(|p| hash_of(&p.metadata) == hash)
        .count()
}

async fn wait_all_on_revision(env: &TestEnv, ds: &str, nodes: &[String], hash: &str) {
    wait_for(
        &format!("every pod of {ds} on revision {hash}"),
        Duration::from_secs(180),
        || async {
            let pods = env.pods_by_node(&format!("app={ds}")).await;
            let old = pods
                .values()
                .flatten()
                .filter(|p| hash_of(&p.metadata) != hash)
                .count();
            if old == 0 {
                Ok(())
            } else {
                Err(format!("{old} pods not on {hash}"))
            }
        },
    )
    .await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on(ds, &refs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_with_only_the_cluster_role_of_deploy_manifest() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("ops-rbac").await;
    let kubeconfig = service_account_kubeconfig(&env);
    assert!(
        can_i(&env, &kubeconfig, &["create", "pods", "-n", &env.ns]),
        "the ServiceAccount may create pods"
    );
    assert!(
        !can_i(&env, &kubeconfig, &["delete", "nodes"]),
        "the ServiceAccount is not an admin"
    );
    let everynode = start(
        "everynode-rbac",
        &kubeconfig,
        &["--leader-elect-resource-name=ops-rbac"],
        &[],
    );

    let mut nodes = vec![
        env.add_node("n0", &[], vec![]).await,
        env.add_node("n1", &[], vec![]).await,
    ];
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0], &nodes[1]])
        .await;
    env.wait_ds_status("agent", [2, 2, 2, 2, 2, 0]).await;

    // A node that joins later gets its pod.
    nodes.push(env.add_node("n2", &[], vec![]).await);
    env.wait_pods_exactly_on("agent", &[&nodes[0], &nodes[1], &nodes[2]])
        .await;
    env.wait_ds_status("agent", [3, 3, 3, 3, 3, 0]).await;

    // A template change rolls out (new ControllerRevision, every pod replaced).
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    let hash = env.current_hash(2).await;
    wait_all_on_revision(&env, "agent", &nodes, &hash).await;
    env.wait_ds_status("agent", [3, 3, 3, 3, 3, 0]).await;

    // Nothing the controller did was refused (events, revisions, status, the lease...).
    let log = std::fs::read_to_string(everynode.process.log()).unwrap_or_default();
    let forbidden: Vec<&str> = log
        .lines()
        .filter(|l| l.to_lowercase().contains("forbidden"))
        .collect();
    assert!(
        forbidden.is_empty(),
        "requests refused with the ClusterRole of deploy/everynode.yaml:\n{}",
        forbidden.join("\n")
    );
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-system");
    let lease = leases
        .get("ops-rbac")
        .await
        .unwrap_or_else(|e| panic!("the Lease kube-system/ops-rbac: {e}"));
    assert!(
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| !h.is_empty()),
        "the instance holds the lease"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_takes_over_a_killed_leader_mid_rollout_within_the_lease_duration() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("ops-failover").await;
    let lease_name = "ops-failover";
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-system");
    // A Lease left by an earlier run would delay the election by a lease duration.
    let _ = leases.delete(lease_name, &Default::default()).await;
    let kubeconfig = env.cp.kubeconfig().to_path_buf();
    let flags = [
        "--leader-elect=true",
        "--leader-elect-resource-namespace=kube-system",
        "--leader-elect-resource-name=ops-failover",
        "--leader-elect-lease-duration=15s",
        "--leader-elect-renew-deadline=10s",
        "--leader-elect-retry-period=2s",
    ];
    let mut a = Some(start(
        "everynode-a",
        &kubeconfig,
        &flags,
        &[("POD_NAME", "everynode-a")],
    ));
    let mut b = Some(start(
        "everynode-b",
        &kubeconfig,
        &flags,
        &[("POD_NAME", "everynode-b")],
    ));

    let holder = wait_for("a leader", Duration::from_secs(30), || async {
        lease_holder(&leases, lease_name)
            .await
            .ok_or_else(|| "no holder".to_string())
    })
    .await;
    let (leader, follower) = if holder.starts_with("everynode-a_") {
        (&mut a, &mut b)
    } else {
        assert!(holder.starts_with("everynode-b_"), "holder {holder}");
        (&mut b, &mut a)
    };
    let follower_port = follower.as_ref().map_or(0, |f| f.metrics_port);
    let leader_port = leader.as_ref().map_or(0, |l| l.metrics_port);
    // The follower is ready (waiting for the lease) and says it is not the leader.
    wait_for(
        "the follower to be ready",
        Duration::from_secs(30),
        || async {
            match http_get(follower_port, "/readyz").await {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        series(&scrape(follower_port).await, "everynode_leader"),
        Some(0.0)
    );
    wait_for("the leader gauge", Duration::from_secs(30), || async {
        match series(&scrape(leader_port).await, "everynode_leader") {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let mut nodes = Vec::new();
    for i in 0..10 {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}}),
    ))
    .await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;

    let watcher = BudgetWatcher::start(&env, "agent", nodes.clone(), Budget::MaxUnavailable(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    let hash = env.current_hash(2).await;
    wait_for(
        "the rollout to be under way",
        Duration::from_secs(60),
        || async {
            let n = count_on_revision(&env, "agent", &hash).await;
            if n >= 2 {
                Ok(())
            } else {
                Err(format!("{n} pods on the new revision"))
            }
        },
    )
    .await;
    assert!(
        count_on_revision(&env, "agent", &hash).await < nodes.len(),
        "the rollout finished before the leader could be killed"
    );

    let killed_pid = leader.as_ref().map_or(0, |l| l.process.pid());
    assert!(controlplane::process::signal(killed_pid, libc::SIGKILL));
    let killed = Instant::now();
    let new_holder = wait_for(
        "the follower to take over",
        Duration::from_secs(30),
        || async {
            match lease_holder(&leases, lease_name).await {
                Some(h) if h != holder => Ok(h),
                other => Err(format!("holder {other:?}")),
            }
        },
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "takeover by {new_holder} {:.1}s after the kill",
        takeover.as_secs_f64()
    );
    // The lease duration, plus the follower's retry jitter (up to 1 s) and request latency.
    assert!(
        takeover <= Duration::from_secs(17),
        "takeover took {takeover:?}, more than the 15 s lease duration (+2 s)"
    );
    drop(leader.take());

    wait_all_on_revision(&env, "agent", &nodes, &hash).await;
    env.wait_ds_status("agent", [10, 10, 10, 10, 10, 0]).await;
    watcher.finish();
    wait_for("the new leader gauge", Duration::from_secs(30), || async {
        match series(&scrape(follower_port).await, "everynode_leader") {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    drop(follower.take());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_the_controller_did() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("ops-metrics").await;
    let everynode = start(
        "everynode-metrics",
        env.cp.kubeconfig(),
        &["--leader-elect=false"],
        &[],
    );
    let port = everynode.metrics_port;
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;
    env.wait_ds_status("agent", [3, 3, 3, 3, 3, 0]).await;

    // One node stops qualifying: its pod is deleted.
    env.patch_node(
        &nodes[2],
        json!({"metadata": {"labels": {env.node_label(): "false"}}}),
    )
    .await;
    env.wait_pods_exactly_on("agent", &refs[..2]).await;
    env.wait_ds_status("agent", [2, 2, 2, 2, 2, 0]).await;

    let ds = format!(r#"namespace="{}",name="agent""#, env.ns);
    let want = [
        (format!("everynode_pods_created_total{{{ds}}}"), 3.0),
        (format!("everynode_pods_deleted_total{{{ds}}}"), 1.0),
        (
            format!(r#"everynode_daemonset_pods{{{ds},state="desired"}}"#),
            2.0,
        ),
        (
            format!(r#"everynode_daemonset_pods{{{ds},state="current"}}"#),
            2.0,
        ),
        (
            format!(r#"everynode_daemonset_pods{{{ds},state="ready"}}"#),
            2.0,
        ),
        (
            format!(r#"everynode_daemonset_pods{{{ds},state="updated"}}"#),
            2.0,
        ),
        (
            format!(r#"everynode_daemonset_pods{{{ds},state="available"}}"#),
            2.0,
        ),
        (
            format!(r#"everynode_daemonset_pods{{{ds},state="misscheduled"}}"#),
            0.0,
        ),
        ("everynode_leader".to_string(), 1.0),
        ("everynode_workqueue_depth".to_string(), 0.0),
        ("everynode_expectations_outstanding_adds".to_string(), 0.0),
        (
            "everynode_expectations_outstanding_deletes".to_string(),
            0.0,
        ),
    ];
    let text = wait_for("the metrics to match", Duration::from_secs(30), || async {
        let text = scrape(port).await;
        let wrong: Vec<String> = want
            .iter()
            .filter(|(name, v)| series(&text, name) != Some(*v))
            .map(|(name, v)| format!("{name} = {:?}, want {v}", series(&text, name)))
            .collect();
        if wrong.is_empty() {
            Ok(text)
        } else {
            Err(wrong.join("; "))
        }
    })
    .await;
    assert_eq!(
        series(
            &text,
            &format!("everynode_pods_create_failed_total{{{ds}}}")
        ),
        Some(0.0),
        "no creation failed, and the failure counter is there at 0"
    );
    // The watches have a client (and budget) of their own, as kube-controller-manager's informers.
    assert_eq!(
        series(
            &text,
            r#"everynode_api_requests_total{client="controller",verb="WATCH",code="200"}"#
        ),
        None,
        "no watch on the controller's client"
    );
    // The caches fill from streaming lists (watches with sendInitialEvents), so the watches'
    // client sends no LIST (a GET on a collection) at all.
    assert_eq!(
        series(
            &text,
            r#"everynode_api_requests_total{client="watches",verb="GET",code="200"}"#
        ),
        None,
        "the caches fill from streaming lists, not from LISTs"
    );
    let at_least = [
        (r#"everynode_reconciles_total{result="success"}"#, 1.0),
        ("everynode_reconcile_duration_seconds_count", 1.0),
        (
            r#"everynode_api_requests_total{client="controller",verb="POST",code="201"}"#,
            3.0,
        ),
        (
            r#"everynode_api_requests_total{client="controller",verb="DELETE",code="200"}"#,
            1.0,
        ),
        (
            r#"everynode_api_requests_total{client="watches",verb="WATCH",code="200"}"#,
            4.0,
        ),
        (
            r#"everynode_api_request_duration_seconds_count{client="controller",verb="POST",code="201"}"#,
            3.0,
        ),
    ];
    for (name, min) in at_least {
        let v = series(&text, name);
        assert!(
            v.is_some_and(|v| v >= min),
            "{name} = {v:?}, want >= {min}\n{text}"
        );
    }
}

/// A TCP proxy to the API server that accepts connections at once but forwards nothing until
/// opened: a client behind it is connected yet gets no answer.
struct Gate {
    port: u16,
    open: tokio::sync::watch::Sender<bool>,
}

async fn gate_to(upstream: String) -> Gate {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind the gate: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("gate address: {e}"))
        .port();
    let (open, opened) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut opened = opened.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if opened.wait_for(|o| *o).await.is_err() {
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream.as_str()).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    Gate { port, open }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_waits_for_the_caches_while_healthz_is_always_ok() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("ops-readyz").await;
    let upstream = env.cp.server().trim_start_matches("https://").to_string();
    let gate = gate_to(upstream.clone()).await;
    let admin = std::fs::read_to_string(env.cp.kubeconfig())
        .unwrap_or_else(|e| panic!("read the admin kubeconfig: {e}"));
    let gated = env.cp.dir().join("kubeconfig-gated");
    std::fs::write(
        &gated,
        admin.replace(env.cp.server(), &format!("https://127.0.0.1:{}", gate.port)),
    )
    .unwrap_or_else(|e| panic!("write kubeconfig: {e}"));
    let everynode = start("everynode-readyz", &gated, &["--leader-elect=false"], &[]);
    let port = everynode.metrics_port;

    wait_for("the HTTP server", Duration::from_secs(30), || async {
        http_get(port, "/healthz").await.map(|_| ())
    })
    .await;
    // The API server does not answer yet: alive, not ready, for as long as that lasts.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(http_get(port, "/healthz").await.map(|r| r.0), Ok(200));
        let ready = http_get(port, "/readyz").await;
        assert!(
            matches!(&ready, Ok((503, _))),
            "/readyz before the API server answered: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _ = gate.open.send(true);
    let opened = Instant::now();
    let mut polls = 0;
    loop {
        assert_eq!(http_get(port, "/healthz").await.map(|r| r.0), Ok(200));
        match http_get(port, "/readyz").await {
            Ok((200, _)) => break,
            Ok((503, _)) => {}
            other => panic!("/readyz: {other:?}"),
        }
        polls += 1;
        assert!(
            opened.elapsed() < Duration::from_secs(60),
            "/readyz still not 200 60 s after the API server became reachable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "ready {:.2}s after the API server became reachable ({polls} unready polls)",
        opened.elapsed().as_secs_f64()
    );
    let log = std::fs::read_to_string(everynode.process.log()).unwrap_or_default();
    assert!(
        log.contains("caches synced"),
        "ready only after the caches synced; log:\n{log}"
    );
    assert_eq!(http_get(port, "/healthz").await.map(|r| r.0), Ok(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_loses_its_lease_exits_with_an_error_at_once() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("ops-lost").await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kube-system");
    let _ = leases.delete("ops-lost", &Default::default()).await;
    let mut everynode = start(
        "everynode-lost",
        env.cp.kubeconfig(),
        &[
            "--leader-elect-resource-namespace=kube-system",
            "--leader-elect-resource-name=ops-lost",
        ],
        &[],
    );
    wait_for("a leader", Duration::from_secs(30), || async {
        lease_holder(&leases, "ops-lost")
            .await
            .ok_or_else(|| "no holder".to_string())
    })
    .await;
    // Another party takes the Lease over (as after a network partition longer than the lease).
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    leases
        .patch(
            "ops-lost",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "holderIdentity": "intruder",
                "renewTime": now,
                "leaseDurationSeconds": 3600,
            }})),
        )
        .await
        .unwrap_or_else(|e| panic!("take the lease over: {e}"));
    let taken = Instant::now();
    let status = loop {
        if let Some(status) = everynode.process.exited() {
            break status;
        }
        assert!(
            taken.elapsed() < Duration::from_secs(15),
            "everynode still runs 15 s after losing its lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "exited {:.1}s after losing the lease: {status}",
        taken.elapsed().as_secs_f64()
    );
    assert!(
        !status.success(),
        "a leader that lost its lease exits with an error: {status}"
    );
    // Within the retry period (2 s) plus a request.
    assert!(taken.elapsed() < Duration::from_secs(5));
    let log = std::fs::read_to_string(everynode.process.log()).unwrap_or_default();
    assert!(log.contains("lost the leader Lease"), "log:\n{log}");
    assert_eq!(
        lease_holder(&leases, "ops-lost").await.as_deref(),
        Some("intruder"),
        "the leader did not take the lease back"
    );
}

/// A status write carries the DaemonSet's UID as a precondition: counters computed for a DaemonSet
/// that was deleted and recreated under the same name (by a slow sync, or a deposed leader) are
/// refused by the API server and never land on the new object.
#[tokio::test(flavor = "multi_thread")]
async fn a_status_write_for_a_replaced_daemonset_is_refused() {
    use everynode::controller::daemonset_object::CachedDaemonSet;
    use everynode::controller::status_writer::write_status;
    use everynode::core::status::StatusCounters;
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::api::{DeleteParams, PostParams};

    let _serial = SERIAL.lock().await;
    let env = TestEnv::new("ops-status-uid").await;
    let typed: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let cached: Api<CachedDaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    env.create_daemonset(&daemonset(&env, "uidpre", json!({})))
        .await;
    let old = cached
        .get("uidpre")
        .await
        .unwrap_or_else(|e| panic!("get: {e}"));
    typed
        .delete("uidpre", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    wait_for(
        "the DaemonSet to be gone",
        Duration::from_secs(30),
        || async {
            match typed.get_opt("uidpre").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    typed
        .create(
            &PostParams::default(),
            &daemonset(&env, "uidpre", json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("recreate: {e}"));
    let new = cached
        .get("uidpre")
        .await
        .unwrap_or_else(|e| panic!("get: {e}"));
    assert_ne!(old.ds.metadata.uid, new.ds.metadata.uid);

    let stale = StatusCounters {
        desired_number_scheduled: 42,
        ..Default::default()
    };
    let written = write_status(&env.client, &old, &stale, true).await;
    assert!(
        matches!(written, Ok(false)),
        "a write for the old UID must be refused: {written:?}"
    );
    let status = |ds: DaemonSet| ds.status.map(|s| s.desired_number_scheduled);
    let after = typed.get("uidpre").await.map(status);
    assert!(
        matches!(after, Ok(None) | Ok(Some(0))),
        "the stale counters landed on the new DaemonSet: {after:?}"
    );
    // The same write for the new UID lands: the refusal is the precondition, not the patch.
    let written = write_status(&env.client, &new, &stale, true).await;
    assert!(matches!(written, Ok(true)), "{written:?}");
    let after = typed.get("uidpre").await.map(status);
    assert!(matches!(after, Ok(Some(42))), "{after:?}");
}
