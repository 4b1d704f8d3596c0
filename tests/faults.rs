//! The fault suite: everynode mid-rollout on a real control plane while the control plane misbehaves
//! (API server SIGKILLed and restarted, etcd frozen, real 429s from API Priority and Fairness, a TLS
//! proxy answering 504 after committing a pod create, 500s, resets and latency, a leader whose lease
//! requests are slow), with the invariants of `support::invariants` checked on every pod event.
//!
//! Every test starts a control plane of its own (some kill or freeze its components) and they run
//! one at a time (`SERIAL`). Each prints `FIGURES <scenario>: ...` and its wall time.

mod support;

use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};
use support::budget::Budget;
use support::fault_proxy::{Fault, FaultProxy, Rule};
use support::invariants::{
    Everynode, Invariants, api_requests, http_get, read_audit, split_brain, target_node,
    wait_converged, wait_rollout_started,
};
use support::{OwnControlPlane, TestEnv, daemonset, lease_holder, own_control_plane, wait_for};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const USERS: [&str; 2] = ["everynode-a", "everynode-b"];

/// A test's own control plane (users everynode-a and everynode-b, audit log on), its namespace and
/// `n` fake nodes.
struct Scenario {
    env: TestEnv,
    nodes: Vec<String>,
    started: Instant,
    name: String,
    // Last: the control plane stops after everything else is dropped.
    cp: OwnControlPlane,
}

async fn scenario(name: &str, n: usize) -> Scenario {
    scenario_with(name, n, Vec::new()).await
}

/// [`scenario`] with extra kube-apiserver flags.
async fn scenario_with(name: &str, n: usize, apiserver_args: Vec<String>) -> Scenario {
    let started = Instant::now();
    let cp = own_control_plane(
        name,
        controlplane::Options {
            users: USERS.iter().map(|u| u.to_string()).collect(),
            // Not system:masters, which API Priority and Fairness exempts: cluster-admin by RBAC.
            users_group: "everynode:controllers".into(),
            audit: true,
            apiserver_args,
            ..Default::default()
        },
    );
    let env = TestEnv::on(cp.get(), name).await;
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    for node in &nodes {
        env.wait_node_ready(node).await;
    }
    Scenario {
        env,
        nodes,
        started,
        name: name.to_string(),
        cp,
    }
}

impl Scenario {
    /// everynode as `user` straight to the API server (no leader election).
    fn everynode(&self, user: &str) -> Everynode {
        let kc = self
            .cp
            .user_kubeconfig(user)
            .unwrap_or_else(|| panic!("kubeconfig of {user}"));
        Everynode::start(&self.cp, user, &kc, &["--leader-elect=false"])
    }

    /// A fault proxy in front of the API server and a kubeconfig of `user` through it.
    async fn proxy(&self, user: &str, seed: u64) -> (FaultProxy, std::path::PathBuf) {
        let (cert, key) = self
            .cp
            .issue_serving_cert(&format!("proxy-{user}"))
            .expect("a serving certificate for the proxy");
        let proxy = FaultProxy::start(self.cp.server(), self.cp.ca_cert(), &cert, &key, seed)
            .await
            .expect("start the fault proxy");
        let kc = self
            .cp
            .kubeconfig_via(&format!("{user}-proxy"), &proxy.url(), Some(user))
            .expect("a kubeconfig through the proxy");
        (proxy, kc)
    }

    /// Creates DaemonSet `agent` (maxSurge 0, `max_unavailable`, minReadySeconds `min_ready` so
    /// that the rollout lasts a while) and waits until it runs on every node.
    async fn daemonset(&self, max_unavailable: i32, min_ready: i32) {
        self.env
            .create_daemonset(&daemonset(
                &self.env,
                "agent",
                json!({"spec": {
                    "minReadySeconds": min_ready,
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": 0}}
                }}),
            ))
            .await;
        wait_converged(&self.env, "agent", &self.nodes, 1, Duration::from_secs(120)).await;
    }

    /// Starts the invariant watcher, changes the template and waits until `n` pods are on the new
    /// revision; returns the watcher and the new hash.
    async fn start_rollout(&self, budget: usize, n: usize) -> (Invariants, String) {
        let inv = Invariants::start(
            &self.name,
            &self.env,
            "agent",
            self.nodes.clone(),
            Budget::MaxUnavailable(budget),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.env
            .patch_template(
                "agent",
                json!({"metadata": {"annotations": {"rollout": "2"}}}),
            )
            .await;
        // Under API Priority and Fairness the API server's Retry-After doubles (2, 4, 8, 16 s), so a
        // ControllerRevision create rejected all through the 429 test's 20 s of noise is sent for
        // the fifth time 30 s after the first: 30 s is too short a wait for it.
        let hash = self
            .env
            .current_hash_within(2, Duration::from_secs(90))
            .await;
        wait_rollout_started(&self.env, "agent", &hash, n).await;
        (inv, hash)
    }

    /// Pods of `agent` on revision `hash`, read from the API server's watch cache (answers while
    /// etcd is frozen); `None` if the API server does not answer within 5 s.
    async fn pods_on(&self, hash: &str) -> Option<usize> {
        let pods: Api<Pod> = Api::namespaced(self.env.client.clone(), &self.env.ns);
        let lp = ListParams::default().labels("app=agent").match_any();
        let list = tokio::time::timeout(Duration::from_secs(5), pods.list(&lp))
            .await
            .ok()?
            .ok()?;
        Some(
            list.items
                .iter()
                .filter(|p| support::revision_hash(&p.metadata).map(String::as_str) == Some(hash))
                .count(),
        )
    }

    fn wall(&self) {
        eprintln!(
            "WALL {}: {:.1}s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apiserver_sigkilled_and_restarted_mid_rollout() {
    let _serial = SERIAL.lock().await;
    let s = scenario("fault-apiserver-kill", 8).await;
    let mut everynode = s.everynode("everynode-a");
    s.daemonset(2, 2).await;
    let (inv, hash) = s.start_rollout(2, 1).await;
    let before = s.pods_on(&hash).await;
    let pid =
        s.cp.component_pid("kube-apiserver")
            .expect("API server pid");
    let down =
        s.cp.restart_component("kube-apiserver")
            .await
            .expect("restart the API server");
    let new_pid =
        s.cp.component_pid("kube-apiserver")
            .expect("API server pid");
    assert_ne!(pid, new_pid, "the API server was not replaced");
    eprintln!(
        "API server pid {pid} SIGKILLed with {before:?}/{} pods on the new revision; pid {new_pid} ready after {:.1}s",
        s.nodes.len(),
        down.as_secs_f64()
    );
    let (final_hash, took) =
        wait_converged(&s.env, "agent", &s.nodes, 2, Duration::from_secs(150)).await;
    assert_eq!(final_hash, hash);
    inv.finish(&hash, took, &mut [&mut everynode]);
    s.wall();
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_frozen_for_15s_mid_rollout() {
    let _serial = SERIAL.lock().await;
    let s = scenario("fault-etcd-stop", 8).await;
    let mut everynode = s.everynode("everynode-a");
    s.daemonset(2, 2).await;
    let (inv, hash) = s.start_rollout(2, 1).await;
    let before = s.pods_on(&hash).await;
    s.cp.pause_component("etcd").expect("SIGSTOP etcd");
    let paused = Instant::now();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during = s.pods_on(&hash).await;
    s.cp.resume_component("etcd").expect("SIGCONT etcd");
    eprintln!(
        "etcd frozen {:.1}s with {before:?}/{} pods on the new revision; {during:?} of them when it was continued",
        paused.elapsed().as_secs_f64(),
        s.nodes.len()
    );
    let (_, took) = wait_converged(&s.env, "agent", &s.nodes, 2, Duration::from_secs(150)).await;
    inv.finish(&hash, took, &mut [&mut everynode]);
    s.wall();
}

/// A priority level with 1 nominal share that rejects (no queue) and a FlowSchema sending every
/// request of everynode-a and everynode-b to it (they are not in system:masters, whose requests
/// the mandatory `exempt` FlowSchema would take first).
async fn throttle(client: &kube::Client) {
    let pl: k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration =
        serde_json::from_value(json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": "a-everynode-throttle"},
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 1,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"}
            }}
        }))
        .expect("PriorityLevelConfiguration");
    let fs: k8s_openapi::api::flowcontrol::v1::FlowSchema = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": "a-everynode-throttle"},
        "spec": {
            "priorityLevelConfiguration": {"name": "a-everynode-throttle"},
            "matchingPrecedence": 100,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": USERS.iter().map(|u| json!({"kind": "User", "user": {"name": u}})).collect::<Vec<_>>(),
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }
    }))
    .expect("FlowSchema");
    Api::all(client.clone())
        .create(&PostParams::default(), &pl)
        .await
        .expect("create the PriorityLevelConfiguration");
    Api::all(client.clone())
        .create(&PostParams::default(), &fs)
        .await
        .expect("create the FlowSchema");
}

async fn unthrottle(client: &kube::Client) {
    let fs: Api<k8s_openapi::api::flowcontrol::v1::FlowSchema> = Api::all(client.clone());
    fs.delete("a-everynode-throttle", &DeleteParams::default())
        .await
        .expect("delete the FlowSchema");
}

#[tokio::test(flavor = "multi_thread")]
async fn real_429s_from_priority_and_fairness_mid_rollout() {
    let _serial = SERIAL.lock().await;
    // 30 seats in all: the throttled priority level (1 of ~246 nominal shares) gets a single seat,
    // which the noisy neighbour keeps busy, so everynode's requests meet 429s whatever the timing.
    let s = scenario_with(
        "fault-apf-429",
        10,
        vec![
            "--max-requests-inflight=20".into(),
            "--max-mutating-requests-inflight=10".into(),
        ],
    )
    .await;
    let mut everynode = s.everynode("everynode-a");
    s.daemonset(2, 3).await;
    throttle(&s.env.client).await;
    // A noisy neighbour in the same priority level (everynode-b, its own flow) keeps its single seat
    // busy for 20 s, from before the rollout starts, so that everynode's own requests during the
    // rollout are rejected with 429 by the API server.
    let kc = s.cp.user_kubeconfig("everynode-b").expect("everynode-b");
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kc).expect("read kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("kubeconfig of everynode-b");
    // The neighbour must not sit in kube's retry backoff (up to 1000 s) after its own 429s.
    config.default_retry = false;
    let noisy = kube::Client::try_from(config).expect("client of everynode-b");
    let until = Instant::now() + Duration::from_secs(20);
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let pods: Api<Pod> = Api::all(noisy.clone());
        load.spawn(async move {
            let mut n = 0u32;
            while Instant::now() < until {
                let _ = pods.list(&ListParams::default()).await;
                n += 1;
            }
            n
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Not waiting for the first new pod: under the throttle a sync's failures back off per item
    // (5 ms doubling, as client-go), so the rollout may only proceed once the noise ends.
    let (inv, hash) = s.start_rollout(2, 0).await;
    let mut noisy_requests = 0;
    while let Some(n) = load.join_next().await {
        noisy_requests += n.unwrap_or(0);
    }
    unthrottle(&s.env.client).await;
    let (_, took) = wait_converged(&s.env, "agent", &s.nodes, 2, Duration::from_secs(180)).await;
    let audit = read_audit(s.cp.audit_log().expect("audit log"));
    let rejected_a = audit
        .iter()
        .filter(|e| e.user == "everynode-a" && e.code == 429)
        .count();
    let requests_a = audit.iter().filter(|e| e.user == "everynode-a").count();
    let rejected_b = audit
        .iter()
        .filter(|e| e.user == "everynode-b" && e.code == 429)
        .count();
    let metrics = everynode.metrics().await.expect("everynode's /metrics");
    let seen_429 = api_requests(&metrics, "code=\"429\"");
    eprintln!(
        "API server answered 429 to everynode {rejected_a} times of {requests_a} requests (audit log), to the noisy neighbour {rejected_b} of {noisy_requests}; everynode's everynode_api_requests_total{{code=\"429\"}} = {seen_429} (every attempt is counted)"
    );
    assert!(
        rejected_a > 0,
        "no 429 reached everynode: the FlowSchema did not throttle it (audit log {})",
        s.cp.audit_log()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    inv.finish(&hash, took, &mut [&mut everynode]);
    s.wall();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_504_after_a_committed_pod_create_makes_no_duplicate() {
    let _serial = SERIAL.lock().await;
    let s = scenario("fault-proxy-504", 6).await;
    let (proxy, kc) = s.proxy("everynode-a", 7).await;
    let mut everynode = Everynode::start(&s.cp, "everynode-a", &kc, &["--leader-elect=false"]);
    s.daemonset(2, 2).await;
    let (inv, hash) = s.start_rollout(2, 0).await;
    // The next two pod creates are committed by the API server, but everynode is told 504.
    proxy.set_rules(vec![
        Rule::new(Fault::StatusAfterForward(504))
            .method(Method::POST)
            .path_ends_with("/pods")
            .times(2),
    ]);
    let (_, took) = wait_converged(&s.env, "agent", &s.nodes, 2, Duration::from_secs(120)).await;
    let fired = proxy.fired();
    let posts: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/pods"))
        .map(|r| format!("{:?}->{:?}", r.upstream, r.answered))
        .collect();
    eprintln!("504 rule fired {fired:?}; pod POSTs (upstream->client): {posts:?}");
    assert_eq!(
        fired,
        vec![2],
        "the 504 rule should have fired on two pod creates"
    );
    inv.finish(&hash, took, &mut [&mut everynode]);
    s.wall();
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_500s_resets_and_latency_mid_rollout() {
    let _serial = SERIAL.lock().await;
    let s = scenario("fault-proxy-chaos", 6).await;
    let (proxy, kc) = s.proxy("everynode-a", 11).await;
    let mut everynode = Everynode::start(&s.cp, "everynode-a", &kc, &["--leader-elect=false"]);
    s.daemonset(2, 2).await;
    let (inv, hash) = s.start_rollout(2, 0).await;
    proxy.set_rules(vec![
        // Not committed: the API server never sees these.
        Rule::new(Fault::Status(500))
            .method(Method::POST)
            .path_ends_with("/pods")
            .probability(0.4)
            .times(3),
        Rule::new(Fault::Reset)
            .method(Method::DELETE)
            .path_contains("/pods/")
            .probability(0.5)
            .times(2),
        Rule::new(Fault::Status(500))
            .path_ends_with("/status")
            .probability(0.3)
            .times(3),
        Rule::new(Fault::Reset)
            .method(Method::POST)
            .path_ends_with("/events")
            .probability(0.3)
            .times(3),
        Rule::new(Fault::Delay(Duration::from_millis(300))),
    ]);
    let (_, took) = wait_converged(&s.env, "agent", &s.nodes, 2, Duration::from_secs(150)).await;
    let fired = proxy.fired();
    let total = proxy.records().len();
    eprintln!(
        "rules fired [500 POST pods, reset DELETE pod, 500 status, reset POST event, +300ms]: {fired:?} over {total} requests"
    );
    assert!(
        fired.len() == 5 && fired[..4].iter().sum::<u32>() >= 2 && fired[4] > 0,
        "too few faults were injected to mean anything: {fired:?}"
    );
    inv.finish(&hash, took, &mut [&mut everynode]);
    s.wall();
}

/// The proxy's rule logic without a network: matching by method and path, `times`, and a seeded
/// probability that gives the same draws for the same seed.
#[test]
fn fault_proxy_rules_match_count_and_draw_reproducibly() {
    use support::fault_proxy::plan;
    let rules = vec![
        Rule::new(Fault::StatusAfterForward(504))
            .method(Method::POST)
            .path_ends_with("/pods")
            .times(1),
        Rule::new(Fault::Status(500))
            .path_contains("/daemonsets/")
            .probability(0.5),
    ];
    let post = (Method::POST, "/api/v1/namespaces/x/pods");
    let status = (
        Method::PUT,
        "/apis/apps/v1/namespaces/x/daemonsets/a/status",
    );
    let other = (Method::POST, "/api/v1/namespaces/x/pods/p/eviction");
    let got = plan(&rules, 1, &[post.clone(), post.clone(), other.clone()]);
    assert_eq!(got, vec![Some(Fault::StatusAfterForward(504)), None, None]);
    let reqs: Vec<_> = (0..200).map(|_| status.clone()).collect();
    let a = plan(&rules, 42, &reqs);
    assert_eq!(a, plan(&rules, 42, &reqs), "same seed, same faults");
    assert_ne!(a, plan(&rules, 43, &reqs), "another seed, other faults");
    let fired = a.iter().filter(|f| f.is_some()).count();
    assert!((70..=130).contains(&fired), "p=0.5 fired {fired}/200");
}

/// The proxy against the real API server: a 504 after a pod POST that did create the pod, a 500
/// that did not, a closed connection, latency; and nothing once the rules are gone.
#[tokio::test(flavor = "multi_thread")]
async fn fault_proxy_really_injects_faults() {
    let _serial = SERIAL.lock().await;
    let s = scenario("fault-proxy-self", 0).await;
    let (proxy, kc) = s.proxy("everynode-a", 3).await;
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kc).expect("read kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("kubeconfig through the proxy");
    // No client-side retry: each call is one request, so each fault is seen as it is.
    config.default_retry = false;
    let via = kube::Client::try_from(config).expect("client through the proxy");
    let pods: Api<Pod> = Api::namespaced(via, &s.env.ns);
    let direct: Api<Pod> = Api::namespaced(s.env.client.clone(), &s.env.ns);
    let pod = |name: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
        }))
        .expect("pod")
    };

    proxy.set_rules(vec![
        Rule::new(Fault::StatusAfterForward(504))
            .method(Method::POST)
            .path_ends_with("/pods")
            .times(1),
        Rule::new(Fault::Status(500))
            .method(Method::POST)
            .path_ends_with("/pods")
            .times(1),
        Rule::new(Fault::Reset)
            .method(Method::GET)
            .path_contains("/pods/")
            .times(1),
        Rule::new(Fault::Delay(Duration::from_millis(1500)))
            .method(Method::GET)
            .path_contains("/pods/")
            .times(1),
    ]);
    let e = pods
        .create(&PostParams::default(), &pod("committed"))
        .await
        .expect_err("the 504 rule answers the first create with an error");
    assert!(
        matches!(&e, kube::Error::Api(s) if s.code == 504),
        "expected 504, got {e}"
    );
    assert!(
        direct.get_opt("committed").await.expect("get").is_some(),
        "the pod answered with 504 was created anyway"
    );
    let e = pods
        .create(&PostParams::default(), &pod("refused"))
        .await
        .expect_err("the 500 rule answers the second create with an error");
    assert!(
        matches!(&e, kube::Error::Api(s) if s.code == 500),
        "expected 500, got {e}"
    );
    assert!(
        direct.get_opt("refused").await.expect("get").is_none(),
        "the pod answered with 500 was not forwarded"
    );
    let e = pods
        .get("committed")
        .await
        .expect_err("the reset rule closes the connection");
    assert!(
        !matches!(e, kube::Error::Api(_)),
        "a reset has no status, got {e}"
    );
    let t = Instant::now();
    pods.get("committed").await.expect("a delayed get");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "the delay rule held the request {:?}",
        t.elapsed()
    );
    assert_eq!(proxy.fired(), vec![1, 1, 1, 1]);
    pods.create(&PostParams::default(), &pod("plain"))
        .await
        .expect("with every rule spent, a create goes through");
    proxy.set_rules(Vec::new());
    pods.get("plain").await.expect("no rules, no fault");
    s.wall();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_with_slow_lease_requests_never_acts_alongside_its_successor() {
    let _serial = SERIAL.lock().await;
    let s = scenario("fault-leader-slow", 8).await;
    let leases: Api<Lease> = Api::namespaced(s.env.client.clone(), "kube-system");
    let flags = [
        "--leader-elect=true",
        "--leader-elect-resource-namespace=kube-system",
        "--leader-elect-resource-name=everynode",
        "--leader-elect-lease-duration=6s",
        "--leader-elect-renew-deadline=4s",
        "--leader-elect-retry-period=1s",
    ];
    // a, the first leader, reaches the API server through the proxy; b directly.
    let (proxy, kc_a) = s.proxy("everynode-a", 5).await;
    let mut a = Everynode::start(&s.cp, "everynode-a", &kc_a, &flags);
    wait_for("everynode-a to lead", Duration::from_secs(30), || async {
        match lease_holder(&leases, "everynode").await {
            Some(h) if h.starts_with("everynode-a_") => Ok(()),
            other => Err(format!("holder {other:?}")),
        }
    })
    .await;
    let kc_b = s.cp.user_kubeconfig("everynode-b").expect("everynode-b");
    let mut b = Everynode::start(&s.cp, "everynode-b", &kc_b, &flags);
    s.daemonset(1, 3).await;
    let (inv, hash) = s.start_rollout(1, 1).await;

    // The API server becomes slow for a's lease requests only: renewals and the watchdog's reads.
    proxy.set_rules(vec![
        Rule::new(Fault::Delay(Duration::from_secs(10))).path_contains("/leases"),
    ]);
    let slowed = Instant::now();
    wait_for(
        "everynode-b to take over",
        Duration::from_secs(40),
        || async {
            match lease_holder(&leases, "everynode").await {
                Some(h) if h.starts_with("everynode-b_") => Ok(()),
                other => Err(format!("holder {other:?}")),
            }
        },
    )
    .await;
    let takeover = slowed.elapsed();
    // Leave a up to 12 s to notice and exit by itself, then SIGKILL it (if still running).
    let mut a_exited = None;
    let deadline = Instant::now() + Duration::from_secs(12);
    while Instant::now() < deadline {
        if let Some(st) = a.process.exited() {
            a_exited = Some((slowed.elapsed(), st));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if a_exited.is_none() {
        a.process.kill();
    }
    let killed = slowed.elapsed();
    eprintln!(
        "lease requests of everynode-a slowed at 0s; everynode-b took the lease at {:.1}s; everynode-a {}",
        takeover.as_secs_f64(),
        match &a_exited {
            Some((t, st)) => format!("exited by itself at {:.1}s ({st})", t.as_secs_f64()),
            None => format!(
                "was still running and SIGKILLed at {:.1}s",
                killed.as_secs_f64()
            ),
        }
    );
    proxy.set_rules(Vec::new());
    let (_, took) = wait_converged(&s.env, "agent", &s.nodes, 2, Duration::from_secs(150)).await;
    support::invariants::assert_no_panic(&a.log());
    let figures = inv.finish(&hash, took, &mut [&mut b]);
    let audit = read_audit(s.cp.audit_log().expect("audit log"));
    let writes = |u: &str| {
        audit
            .iter()
            .filter(|e| e.user == u && e.is_controller_write())
            .count()
    };
    let overlap = split_brain(&audit);
    eprintln!(
        "FIGURES {}-leader: writes a={} b={} overlap={}",
        figures.scenario,
        writes("everynode-a"),
        writes("everynode-b"),
        overlap.as_deref().unwrap_or("none")
    );
    assert!(
        writes("everynode-b") > 0,
        "everynode-b never acted after taking over"
    );
    assert!(
        overlap.is_none(),
        "both instances acted at once: {}",
        overlap.unwrap_or_default()
    );
    s.wall();
}

/// A broken pod watch is not invisible: while every list and watch of pods fails (500 from the
/// proxy, after an API server restart cut the old watch), everynode reports the watch unhealthy on
/// `/readyz` and `everynode_watch_healthy{kind="pods"}`, and creates nothing on a node that joins,
/// since its pod cache may be arbitrarily old; once the watch recovers, the node gets its pod.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_pod_watch_holds_every_create_until_it_recovers() {
    let _serial = SERIAL.lock().await;
    let s = scenario("watch-health", 2).await;
    let (proxy, kc) = s.proxy("everynode-a", 13).await;
    let mut everynode = Everynode::start(&s.cp, "everynode-a", &kc, &["--leader-elect=false"]);
    s.daemonset(1, 0).await;
    let nodes: Vec<&str> = s.nodes.iter().map(String::as_str).collect();
    s.env.wait_pods_exactly_on("agent", &nodes).await;
    let port = everynode.metrics_port;
    let healthy = |text: &str| {
        text.lines()
            .find(|l| l.starts_with(r#"everynode_watch_healthy{kind="pods"}"#))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };

    proxy.set_rules(vec![
        Rule::new(Fault::Status(500))
            .method(Method::GET)
            .path_ends_with("/api/v1/pods")
            .with_watches(),
    ]);
    s.cp.restart_component("kube-apiserver")
        .await
        .expect("restart the API server to cut the running watches");
    wait_for(
        "the pod watch to be reported failing",
        Duration::from_secs(60),
        || async {
            let text = everynode.metrics().await?;
            let ready = http_get(port, "/readyz").await?;
            match (healthy(&text).as_deref(), ready) {
                (Some("0"), (503, body)) if body.contains("pods") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let joined = s.env.add_node("late", &[], vec![]).await;
    s.env.wait_node_ready(&joined).await;
    let pods: Api<Pod> = Api::namespaced(s.env.client.clone(), &s.env.ns);
    let on_joined = || async {
        let list = pods
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<usize, String>(
            list.items
                .iter()
                .filter(|p| target_node(p).as_deref() == Some(joined.as_str()))
                .count(),
        )
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        on_joined().await,
        Ok(0),
        "a pod was created while the pod watch was failing"
    );
    let log = std::fs::read_to_string(everynode.log()).unwrap_or_default();
    assert!(
        log.contains("a pod or node watch is failing; refreshing status only"),
        "the syncs did not say why they held back; log {}",
        everynode.log().display()
    );

    proxy.set_rules(Vec::new());
    let recovered = Instant::now();
    wait_for(
        "the joined node's pod after the watch recovered",
        Duration::from_secs(90),
        || async {
            match on_joined().await? {
                1 => Ok(()),
                n => Err(format!("{n} pods on {joined}")),
            }
        },
    )
    .await;
    wait_for("/readyz 200 again", Duration::from_secs(30), || async {
        match http_get(port, "/readyz").await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let text = everynode.metrics().await.unwrap_or_default();
    assert_eq!(healthy(&text).as_deref(), Some("1"), "{text}");
    eprintln!(
        "FIGURES watch-health: pod created {:.1}s after the pod watch recovered; held while failing: 8 s",
        recovered.elapsed().as_secs_f64()
    );
    everynode.assert_healthy();
    s.wall();
}

/// A start fills the caches with streaming lists (watches with `sendInitialEvents`): the audit log
/// shows no LIST of pods, nodes, ControllerRevisions or DaemonSets. An API server that refuses
/// the streaming list of pods (a 422 from the proxy, as one without the WatchList feature answers)
/// gets one list from its watch cache (`resourceVersion=0`) instead, and the log says which.
#[tokio::test(flavor = "multi_thread")]
async fn caches_fill_from_streaming_lists_and_fall_back_to_a_watch_cache_list() {
    let _serial = SERIAL.lock().await;
    let s = scenario("streaming-lists", 2).await;
    let (proxy, kc) = s.proxy("everynode-a", 17).await;
    proxy.set_rules(vec![
        Rule::new(Fault::Status(422))
            .method(Method::GET)
            .path_ends_with("/api/v1/pods")
            .with_watches()
            .times(1),
    ]);
    let mut everynode = Everynode::start(&s.cp, "everynode-a", &kc, &["--leader-elect=false"]);
    s.daemonset(1, 0).await;
    assert_eq!(proxy.fired(), [1], "the proxy did not refuse the pod watch");
    let audit = read_audit(s.cp.audit_log().expect("audit log"));
    let mine: Vec<_> = audit.iter().filter(|e| e.user == "everynode-a").collect();
    let count = |verb: &str, resource: &str, uri: &str| {
        mine.iter()
            .filter(|e| e.verb == verb && e.resource == resource && e.uri.contains(uri))
            .count()
    };
    // A watch is logged complete only when it ends: the ones still open are read at ResponseStarted.
    let log_text =
        std::fs::read_to_string(s.cp.audit_log().expect("audit log")).unwrap_or_default();
    let watches: Vec<serde_json::Value> = log_text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["stage"] == "ResponseStarted"
                && v["verb"] == "watch"
                && v["user"]["username"] == "everynode-a"
        })
        .collect();
    let streaming = |resource: &str| {
        watches
            .iter()
            .filter(|v| {
                v["objectRef"]["resource"] == resource
                    && v["requestURI"]
                        .as_str()
                        .is_some_and(|u| u.contains("sendInitialEvents=true"))
            })
            .count()
    };
    for resource in ["nodes", "controllerrevisions", "daemonsets"] {
        assert_eq!(count("list", resource, ""), 0, "LISTs of {resource}");
        assert!(streaming(resource) >= 1, "no streaming list of {resource}");
    }
    assert_eq!(
        streaming("pods"),
        0,
        "a streaming list of pods got past the proxy"
    );
    assert_eq!(count("list", "pods", ""), 1, "LISTs of pods");
    assert_eq!(
        count("list", "pods", "resourceVersion=0"),
        1,
        "the LIST of pods is not served from the watch cache"
    );
    let log = std::fs::read_to_string(everynode.log()).unwrap_or_default();
    for said in [
        "refused a streaming list of pods",
        "cache of pods filled from a list served from the watch cache",
        "cache of nodes filled from a streaming list",
    ] {
        assert!(
            log.contains(said),
            "the log does not say {said:?}: {}",
            everynode.log().display()
        );
    }
    eprintln!(
        "FIGURES streaming-lists: {} requests by everynode-a, LISTs: pods {}, nodes {}, controllerrevisions {}, daemonsets {}",
        mine.len(),
        count("list", "pods", ""),
        count("list", "nodes", ""),
        count("list", "controllerrevisions", ""),
        count("list", "daemonsets", "")
    );
    everynode.assert_healthy();
    s.wall();
}
