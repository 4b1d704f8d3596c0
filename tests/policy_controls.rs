//! DaemonSetRollout controls on the real control plane: pause, freeze, partition, update scope,
//! pacing and the progress deadline, each against a live everynode; and the "no policy" side: a
//! mirrored condition left on a DaemonSet without a policy is removed, other writers' are kept.
//!
//! The CRD is applied (server-side, from `everynode::api::crd_yaml()`, what `everynode crd`
//! prints) before everynode starts, so its DaemonSetRollout watch is live from the start.

mod support;

use everynode::api::DaemonSetRollout;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{TestEnv, wait_for};

/// Applies the DaemonSetRollout CRD and waits until it is Established.
async fn install_crd(client: &kube::Client) {
    let yaml = everynode::api::crd_yaml().unwrap_or_else(|e| panic!("everynode crd: {e}"));
    let crd: CustomResourceDefinition =
        serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("the CRD does not parse: {e}"));
    let name = crd.metadata.name.clone().unwrap_or_default();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        &name,
        &PatchParams::apply("policy-controls-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply the CRD: {e}"));
    wait_for(
        "the DaemonSetRollout CRD to be Established",
        Duration::from_secs(30),
        || async {
            let c = api.get(&name).await.map_err(|e| e.to_string())?;
            let established = c
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        },
    )
    .await;
}

/// The CRD first, then a test namespace with `nodes` nodes (labels per node from `labels`) and the
/// DaemonSet `agent` (`ds_patch` merged in) with a pod on each, everynode running.
async fn setup(
    name: &str,
    nodes: usize,
    labels: impl Fn(usize) -> Vec<(&'static str, &'static str)>,
    ds_patch: serde_json::Value,
) -> (TestEnv, Vec<String>) {
    let client = support::control_plane()
        .client()
        .await
        .unwrap_or_else(|e| panic!("admin client: {e}"));
    install_crd(&client).await;
    support::everynode();
    let env = TestEnv::new(name).await;
    let mut names = Vec::new();
    for i in 0..nodes {
        names.push(env.add_node(&format!("n{i}"), &labels(i), vec![]).await);
    }
    env.create_daemonset(&support::daemonset(&env, "agent", ds_patch))
        .await;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;
    (env, names)
}

fn no_labels(_: usize) -> Vec<(&'static str, &'static str)> {
    Vec::new()
}

fn max_unavailable(n: i32) -> serde_json::Value {
    json!({"spec": {"updateStrategy": {"type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": n, "maxSurge": 0}}}})
}

/// Server-side applies the spec of DaemonSetRollout `agent` (field manager `test`).
async fn apply_policy(env: &TestEnv, spec: serde_json::Value) {
    let api: Api<DaemonSetRollout> = Api::namespaced(env.client.clone(), &env.ns);
    let body = json!({
        "apiVersion": "everynode.io/v1alpha1", "kind": "DaemonSetRollout",
        "metadata": {"name": "agent"}, "spec": spec,
    });
    api.patch(
        "agent",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|e| panic!("apply DaemonSetRollout agent: {e}"));
}

/// Waits until the policy's status satisfies `check` (which says what it saw otherwise).
async fn wait_policy(
    env: &TestEnv,
    what: &str,
    timeout: Duration,
    check: impl Fn(&everynode::api::DaemonSetRolloutStatus) -> Result<(), String>,
) {
    let api: Api<DaemonSetRollout> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(what, timeout, || async {
        let r = api.get("agent").await.map_err(|e| e.to_string())?;
        check(&r.status.unwrap_or_default())
    })
    .await;
}

fn phase_is(
    want: everynode::api::Phase,
) -> impl Fn(&everynode::api::DaemonSetRolloutStatus) -> Result<(), String> {
    move |s| {
        if s.phase == Some(want) {
            Ok(())
        } else {
            Err(format!("phase {:?}", s.phase))
        }
    }
}

/// Live (not terminating) pods of `agent` by node.
async fn live_pods(env: &TestEnv) -> BTreeMap<String, Pod> {
    env.pods_by_node("app=agent")
        .await
        .into_iter()
        .filter_map(|(n, ps)| {
            ps.into_iter()
                .find(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| (n, p))
        })
        .collect()
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

/// Asserts for `secs` seconds that the pods on `nodes` keep the UIDs in `before` (none replaced,
/// none terminating).
async fn uids_stay(env: &TestEnv, nodes: &[String], before: &BTreeMap<String, Pod>, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let all = env.pods_by_node("app=agent").await;
        for n in nodes {
            let want = before.get(n).map(uid).unwrap_or_default();
            let now: Vec<(String, bool)> = all
                .get(n)
                .map(|ps| {
                    ps.iter()
                        .map(|p| (uid(p), p.metadata.deletion_timestamp.is_some()))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(
                now,
                vec![(want, false)],
                "the pod on {n} was replaced or is terminating"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every node of `nodes` runs a live pod of `hash` (and, with `ready`, a Ready one).
async fn wait_on_hash(env: &TestEnv, nodes: &[String], hash: &str, timeout: Duration) {
    wait_for(
        &format!("{} nodes on revision {hash}", nodes.len()),
        timeout,
        || async {
            let live = live_pods(env).await;
            let behind: Vec<&String> = nodes
                .iter()
                .filter(|n| {
                    live.get(*n).is_none_or(|p| {
                        support::revision_hash(&p.metadata).map(String::as_str) != Some(hash)
                            || !support::pod_ready(p)
                    })
                })
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(format!("behind: {behind:?}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_creates_for_new_nodes_and_replaces_nothing() {
    let (env, nodes) = setup("pc-pause", 3, no_labels, max_unavailable(1)).await;
    apply_policy(&env, json!({"paused": true})).await;
    wait_policy(
        &env,
        "phase Paused",
        Duration::from_secs(30),
        phase_is(everynode::api::Phase::Paused),
    )
    .await;
    let before = live_pods(&env).await;
    env.patch_template("agent", json!({"metadata": {"annotations": {"rev": "2"}}}))
        .await;
    let hash = env.current_hash(2).await;
    let joined = env.add_node("n3", &[], vec![]).await;
    wait_on_hash(
        &env,
        std::slice::from_ref(&joined),
        &hash,
        Duration::from_secs(60),
    )
    .await;
    uids_stay(&env, &nodes, &before, 10).await;
    apply_policy(&env, json!({"paused": false})).await;
    let mut all = nodes.clone();
    all.push(joined);
    wait_on_hash(&env, &all, &hash, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn freeze_creates_nothing_until_unfreeze() {
    let (env, _nodes) = setup("pc-freeze", 3, no_labels, max_unavailable(1)).await;
    apply_policy(&env, json!({"frozen": true})).await;
    wait_policy(
        &env,
        "phase Frozen",
        Duration::from_secs(30),
        phase_is(everynode::api::Phase::Frozen),
    )
    .await;
    let joined = env.add_node("n3", &[], vec![]).await;
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    // Status is still written: the DaemonSet's and the policy's desired count rise to 4.
    wait_for(
        "desiredNumberScheduled 4",
        Duration::from_secs(30),
        || async {
            let d = dss.get("agent").await.map_err(|e| e.to_string())?;
            let n = d.status.map_or(0, |s| s.desired_number_scheduled);
            if n == 4 { Ok(()) } else { Err(format!("{n}")) }
        },
    )
    .await;
    wait_policy(&env, "desiredNodes 4", Duration::from_secs(30), |s| {
        if s.desired_nodes == 4 {
            Ok(())
        } else {
            Err(format!("{}", s.desired_nodes))
        }
    })
    .await;
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let live = live_pods(&env).await;
        assert!(
            !live.contains_key(&joined),
            "a pod was created on {joined} while frozen"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    apply_policy(&env, json!({"frozen": false})).await;
    let hash = env.current_hash(1).await;
    wait_on_hash(
        &env,
        std::slice::from_ref(&joined),
        &hash,
        Duration::from_secs(60),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partition_keeps_three_of_ten_then_completes() {
    let (env, nodes) = setup("pc-partition", 10, no_labels, max_unavailable(3)).await;
    apply_policy(&env, json!({"partition": 3})).await;
    let before = live_pods(&env).await;
    env.patch_template("agent", json!({"metadata": {"annotations": {"rev": "2"}}}))
        .await;
    let hash = env.current_hash(2).await;
    // The last three in update order (by name) keep the old revision.
    let (target, held) = nodes.split_at(7);
    wait_on_hash(&env, target, &hash, Duration::from_secs(120)).await;
    wait_policy(
        &env,
        "Paused by PartitionReached",
        Duration::from_secs(30),
        |s| {
            let reached = s
                .conditions
                .iter()
                .any(|c| c.type_ == "Progressing" && c.reason == "PartitionReached");
            if s.phase == Some(everynode::api::Phase::Paused) && reached {
                Ok(())
            } else {
                Err(format!("{:?} {:?}", s.phase, s.conditions))
            }
        },
    )
    .await;
    uids_stay(&env, held, &before, 10).await;
    apply_policy(&env, json!({"partition": 0})).await;
    wait_on_hash(&env, &nodes, &hash, Duration::from_secs(120)).await;
    wait_policy(
        &env,
        "phase Complete",
        Duration::from_secs(30),
        phase_is(everynode::api::Phase::Complete),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scope_updates_only_matching_nodes() {
    let pool = |i: usize| vec![("pool", if i < 3 { "a" } else { "b" })];
    let (env, nodes) = setup("pc-scope", 6, pool, max_unavailable(2)).await;
    apply_policy(&env, json!({"updateScope": {"matchLabels": {"pool": "a"}}})).await;
    let before = live_pods(&env).await;
    env.patch_template("agent", json!({"metadata": {"annotations": {"rev": "2"}}}))
        .await;
    let hash = env.current_hash(2).await;
    let (a, b) = nodes.split_at(3);
    wait_on_hash(&env, a, &hash, Duration::from_secs(120)).await;
    uids_stay(&env, b, &before, 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pacing_spaces_node_updates() {
    const SECONDS: u64 = 3;
    let (env, nodes) = setup("pc-pacing", 5, no_labels, max_unavailable(5)).await;
    apply_policy(&env, json!({"minSecondsBetweenNodeUpdates": SECONDS})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.patch_template("agent", json!({"metadata": {"annotations": {"rev": "2"}}}))
        .await;
    let hash = env.current_hash(2).await;
    // When each node's old pod is first seen terminating or gone (the start of its update).
    let old: BTreeMap<String, String> = env
        .pods_by_node("app=agent")
        .await
        .into_iter()
        .filter_map(|(n, ps)| {
            ps.iter()
                .find(|p| support::revision_hash(&p.metadata).map(String::as_str) != Some(&hash))
                .map(|p| (n, uid(p)))
        })
        .collect();
    let mut started: BTreeMap<String, Instant> = BTreeMap::new();
    let begin = Instant::now();
    while started.len() < old.len() {
        assert!(
            begin.elapsed() < Duration::from_secs(120),
            "updates started: {started:?}"
        );
        let all = env.pods_by_node("app=agent").await;
        for (n, u) in &old {
            let alive = all.get(n).is_some_and(|ps| {
                ps.iter()
                    .any(|p| &uid(p) == u && p.metadata.deletion_timestamp.is_none())
            });
            if !alive {
                started.entry(n.clone()).or_insert_with(Instant::now);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut times: Vec<Instant> = started.values().copied().collect();
    times.sort();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    eprintln!("pacing: gaps between update starts {gaps:?}");
    // 0.3 s of polling and watch latency.
    assert!(
        gaps.iter().all(|g| *g >= SECONDS as f64 - 0.3),
        "node updates started less than {SECONDS}s apart: {gaps:?}"
    );
    wait_on_hash(&env, &nodes, &hash, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_deadline_on_both_objects() {
    let (env, _nodes) = setup("pc-deadline", 3, no_labels, max_unavailable(1)).await;
    apply_policy(&env, json!({"progressDeadlineSeconds": 15})).await;
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}}),
    )
    .await;
    let exceeded = |t: &str, s: &str, r: &str| {
        t == "Progressing" && s == "False" && r == "ProgressDeadlineExceeded"
    };
    wait_policy(
        &env,
        "Progressing=False/ProgressDeadlineExceeded on the DaemonSetRollout",
        Duration::from_secs(60),
        |s| {
            if s.conditions
                .iter()
                .any(|c| exceeded(&c.type_, &c.status, &c.reason))
            {
                Ok(())
            } else {
                Err(format!("{:?}", s.conditions))
            }
        },
    )
    .await;
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(
        "the same condition mirrored on the DaemonSet",
        Duration::from_secs(30),
        || async {
            let d = dss.get("agent").await.map_err(|e| e.to_string())?;
            let cs = d.status.and_then(|s| s.conditions).unwrap_or_default();
            if cs
                .iter()
                .any(|c| exceeded(&c.type_, &c.status, c.reason.as_deref().unwrap_or_default()))
            {
                Ok(())
            } else {
                Err(format!("{cs:?}"))
            }
        },
    )
    .await;
    // `everynode status` says it and exits 1 (the "status exits 1 on ProgressDeadlineExceeded").
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_everynode"))
        .arg("status")
        .arg(format!("--kubeconfig={}", env.cp.kubeconfig().display()))
        .args(["-n", &env.ns, "daemonset/agent"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap_or_else(|_| panic!("everynode status ran for 60 s"))
        .unwrap_or_else(|e| panic!("run everynode status: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("everynode status: exit {:?}\n{said}", out.status.code());
    assert_eq!(out.status.code(), Some(1), "{said}");
}

/// Without a policy, a condition type the policy mirrors (left by a deleted one) is removed from
/// the DaemonSet once; another writer's condition stays.
#[tokio::test(flavor = "multi_thread")]
async fn mirrored_conditions_go_with_the_policy_others_stay() {
    let (env, _nodes) = setup("pc-mirror", 2, no_labels, max_unavailable(1)).await;
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let cond = |t: &str| {
        json!({"type": t, "status": "True", "reason": "Test", "message": "left here",
        "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    dss.patch_status(
        "agent",
        &PatchParams::default(),
        &Patch::Strategic(
            json!({"status": {"conditions": [cond("Progressing"), cond("SomeoneElse")]}}),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("set conditions: {e}"));
    wait_for(
        "Progressing removed, SomeoneElse kept",
        Duration::from_secs(30),
        || async {
            let d = dss.get("agent").await.map_err(|e| e.to_string())?;
            let types: Vec<String> = d
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.type_)
                .collect();
            if types == ["SomeoneElse"] {
                Ok(())
            } else {
                Err(format!("{types:?}"))
            }
        },
    )
    .await;
}
