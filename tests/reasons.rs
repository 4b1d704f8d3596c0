//! Saying why, on the real control plane (issue 12, the controller's part): the Warning events a
//! DaemonSet gets when a spec change leaves it wanting few nodes (`SelectsFewNodes`) and when the
//! scheduler cannot place its pods (`PodsUnschedulable`), each said once rather than once per sync;
//! `numberMisscheduled` corrected at once when a NoSchedule taint lands on a node that keeps its
//! pod; and `everynode_daemonset_nodes` counting the nodes of each class in every situation.
//!
//! The tests share one everynode (with `/metrics`) and the binary's control plane; each has its own
//! namespace and nodes. Every other node of the cluster is excluded by the DaemonSets here (their
//! nodeSelector names the test's node label), and the gauge counts nodes as of the DaemonSet's last
//! sync, so the checks of the gauge queue a sync (an annotation) before each look and expect
//! `excluded` to be every node of the cluster that is in no other class.

mod support;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Event, Node};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{TestEnv, daemonset, everynode_with_metrics, wait_for};

/// How long a change may take to show its consequence on this loaded 2-core machine (a sync takes
/// milliseconds).
const WITHIN: Duration = Duration::from_secs(20);

/// The test's nodes, `n0`..: their full names.
async fn nodes(env: &TestEnv, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        names.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    names
}

/// The DaemonSet `ds`'s events of `reason`, oldest first: (message, count).
async fn events(env: &TestEnv, ds: &str, reason: &str) -> Vec<(String, i32)> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let mut list: Vec<Event> = api
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=DaemonSet,involvedObject.name={ds},reason={reason}"
        )))
        .await
        .unwrap_or_else(|e| panic!("list events: {e}"))
        .items;
    list.sort_by(|a, b| a.first_timestamp.cmp(&b.first_timestamp));
    list.into_iter()
        .map(|e| (e.message.unwrap_or_default(), e.count.unwrap_or(0)))
        .collect()
}

/// `everynode_daemonset_nodes` of `ds` in the test's namespace, by class, from `/metrics`.
async fn nodes_by_class(
    port: u16,
    env: &TestEnv,
    ds: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let (_, body) = support::http_get(port, "/metrics").await?;
    let prefix = format!(
        "everynode_daemonset_nodes{{namespace=\"{}\",name=\"{ds}\",class=\"",
        env.ns
    );
    Ok(body
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (class, value) = rest.split_once("\"} ")?;
            Some((class.to_string(), value.trim().parse().ok()?))
        })
        .collect())
}

/// Queues a sync of `ds` (a metadata change, no new generation).
async fn poke(env: &TestEnv, ds: &str) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    Api::<DaemonSet>::namespaced(env.client.clone(), &env.ns)
        .patch(
            ds,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"everynode.test/poke": n.to_string()}}}),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("annotate DaemonSet {ds}: {e}"));
}

/// Waits until `ds`'s gauge has these ok, waiting and failed counts and every other node of the
/// cluster excluded (of which `own_excluded` are the test's), queueing a sync before each look.
async fn wait_nodes_by_class(
    port: u16,
    env: &TestEnv,
    ds: &str,
    [ok, own_excluded, waiting, failed]: [i64; 4],
) {
    let nodes: Api<Node> = Api::all(env.client.clone());
    let got = wait_for(
        &format!(
            "everynode_daemonset_nodes of {ds}: ok {ok}, waiting {waiting}, failed {failed}, \
             excluded the others ({own_excluded} of them the test's)"
        ),
        WITHIN,
        || async {
            poke(env, ds).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let all = nodes
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            let all = i64::try_from(all).unwrap_or(i64::MAX);
            let want: BTreeMap<String, i64> = [
                ("excluded", all - ok - waiting - failed),
                ("failed", failed),
                ("ok", ok),
                ("waiting", waiting),
            ]
            .into_iter()
            .map(|(c, v)| (c.to_string(), v))
            .collect();
            let got = nodes_by_class(port, env, ds).await?;
            if got == want && want["excluded"] >= own_excluded {
                Ok(got)
            } else {
                Err(format!("{got:?}, want {want:?}"))
            }
        },
    )
    .await;
    eprintln!("everynode_daemonset_nodes of {ds}: {got:?}");
}

/// Waits until `ds` has exactly one event of `reason`; returns its message and count.
async fn wait_one_event(env: &TestEnv, ds: &str, reason: &str) -> (String, i32) {
    wait_for(&format!("one {reason} event on {ds}"), WITHIN, || async {
        let mut got = events(env, ds, reason).await;
        if got.len() == 1 {
            Ok(got.remove(0))
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

/// A typo'd nodeSelector on a DaemonSet over 3 nodes: its pods go (as upstream), and the DaemonSet
/// gets exactly one `SelectsFewNodes` warning naming the rule and the counts, not one per sync;
/// its nodes are counted excluded.
#[tokio::test(flavor = "multi_thread")]
async fn a_typod_node_selector_is_said_once_with_its_rule_and_counts() {
    let started = Instant::now();
    let port = everynode_with_metrics();
    let env = TestEnv::new("why-few").await;
    let n = nodes(&env, 3).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &n.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    env.wait_ds_status("agent", [3, 3, 3, 3, 3, 0]).await;
    wait_nodes_by_class(port, &env, "agent", [3, 0, 0, 0]).await;
    assert_eq!(events(&env, "agent", "SelectsFewNodes").await, vec![]);

    env.patch_template(
        "agent",
        json!({"spec": {"nodeSelector": {env.node_label(): null, "role": "nonexistent"}}}),
    )
    .await;
    env.wait_pods_exactly_on("agent", &[]).await;
    env.wait_ds_status("agent", [0, 0, 0, 0, 0, 0]).await;
    let (message, count) = wait_one_event(&env, "agent", "SelectsFewNodes").await;
    eprintln!("SelectsFewNodes: {message}");
    let total: usize = message
        .strip_prefix("nodeSelector role=nonexistent matches 0 of ")
        .and_then(|m| m.strip_suffix(" nodes (it wanted 3)"))
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message: {message}"));
    assert!(total >= 3, "{message}");
    assert_eq!(count, 1);
    wait_nodes_by_class(port, &env, "agent", [0, 3, 0, 0]).await;

    // Later syncs (the pods' deletions queued some, the gauge checks poke it) say nothing more.
    poke(&env, "agent").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        events(&env, "agent", "SelectsFewNodes").await,
        vec![(message, 1)],
        "said again"
    );
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
}

/// Pods asking for 5000 CPUs on 3 nodes: the scheduler cannot place them, the DaemonSet gets one
/// `PodsUnschedulable` warning summarising them ("3 pods cannot be scheduled: ... Insufficient cpu
/// (nodes)") whose count stays 1 over 20 s of syncs, and the nodes are counted failed.
#[tokio::test(flavor = "multi_thread")]
async fn unschedulable_pods_are_summarised_once_not_once_per_sync() {
    let started = Instant::now();
    let port = everynode_with_metrics();
    let env = TestEnv::new("why-cpu").await;
    let n = nodes(&env, 3).await;
    env.create_daemonset(&daemonset(
        &env,
        "greedy",
        json!({"spec": {"template": {"spec": {"containers": [{
            "name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "5000"}}
        }]}}}}),
    ))
    .await;
    let (message, count) = wait_one_event(&env, "greedy", "PodsUnschedulable").await;
    eprintln!(
        "PodsUnschedulable after {:.1}s: {message}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        message.starts_with("3 pods cannot be scheduled: ") && message.contains("Insufficient cpu"),
        "{message}"
    );
    for node in &n {
        assert!(
            message.contains(node.as_str()),
            "{node} not named: {message}"
        );
    }
    assert_eq!(count, 1);
    wait_nodes_by_class(port, &env, "greedy", [0, 0, 0, 3]).await;

    // 20 s of syncs (a metadata change every 2 s queues one each): nothing more is said.
    for _ in 0..10 {
        poke(&env, "greedy").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(
        events(&env, "greedy", "PodsUnschedulable").await,
        vec![(message, 1)],
        "the summary was said again"
    );
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
}

/// A NoSchedule taint on a node that keeps its pod: `numberMisscheduled` becomes 1 within seconds
/// ([difference]: upstream queues nothing for it and stays stale until the next sync), and the node
/// is counted excluded; removing the taint brings it back. Then a rollout whose new pods never
/// become Ready: every node waiting (one for its new pod, the others for the budget).
#[tokio::test(flavor = "multi_thread")]
async fn a_no_schedule_taint_is_counted_misscheduled_at_once() {
    let started = Instant::now();
    let port = everynode_with_metrics();
    let env = TestEnv::new("why-taint").await;
    let n = nodes(&env, 2).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&n[0], &n[1]]).await;
    env.wait_ds_status("agent", [2, 2, 2, 2, 2, 0]).await;
    wait_nodes_by_class(port, &env, "agent", [2, 0, 0, 0]).await;
    // The syncs those checks queued are over before the taint: only the taint can queue the next.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let tainted = Instant::now();
    env.patch_node(
        &n[0],
        json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
    )
    .await;
    let api: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(
        "numberMisscheduled 1 after the NoSchedule taint",
        Duration::from_secs(10),
        || async {
            let s = api
                .get("agent")
                .await
                .map_err(|e| e.to_string())?
                .status
                .unwrap_or_default();
            if s.number_misscheduled == 1 && s.desired_number_scheduled == 1 {
                Ok(())
            } else {
                Err(format!(
                    "desired {}, misscheduled {}",
                    s.desired_number_scheduled, s.number_misscheduled
                ))
            }
        },
    )
    .await;
    eprintln!(
        "numberMisscheduled 1 {:.1}s after the taint",
        tainted.elapsed().as_secs_f64()
    );
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 1]).await;
    wait_nodes_by_class(port, &env, "agent", [1, 1, 0, 0]).await;
    // The pod stays.
    env.wait_pods_exactly_on("agent", &[&n[0], &n[1]]).await;

    // Untainted: back to 0, without any other event.
    env.patch_node(&n[0], json!({"spec": {"taints": null}}))
        .await;
    env.wait_ds_status("agent", [2, 2, 2, 2, 2, 0]).await;
    wait_nodes_by_class(port, &env, "agent", [2, 0, 0, 0]).await;

    // A rollout whose new pods never become Ready (kwok leaves them Pending): waiting.
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}}),
    )
    .await;
    wait_nodes_by_class(port, &env, "agent", [0, 0, 2, 0]).await;
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
}
