//! The benchmark's fake nodes: the pool of N nodes every DaemonSet runs on (label `POOL_LABEL`), the
//! nodes that join during a scenario, and label churn on a label no DaemonSet looks at.

use crate::error::Error;
use crate::progress;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::time::{Duration, Instant};

/// Nodes of the benchmark carry `POOL_LABEL=true`; DaemonSets select them with it.
pub const POOL_LABEL: &str = "bench.everynode.io/pool";
/// The label the steady-state churn rewrites; no DaemonSet selects on it.
pub const CHURN_LABEL: &str = "bench.everynode.io/churn";
/// Node creations in flight at once.
const CREATE_CONCURRENCY: usize = 16;

/// Name of the i-th pool node.
pub fn pool_node(i: usize) -> String {
    format!("bench-{i:05}")
}

/// Name of the i-th node that joins during a scenario.
pub fn joining_node(i: usize) -> String {
    format!("bench-join-{i:05}")
}

/// Creates `names` concurrently and returns each with the instant its creation was acknowledged.
pub async fn create(
    client: &kube::Client,
    names: &[String],
) -> Result<Vec<(String, Instant)>, Error> {
    futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let client = client.clone();
            async move {
                let node = controlplane::nodes::fake_node(&name, &[(POOL_LABEL, "true")], vec![]);
                controlplane::nodes::create(&client, &node)
                    .await
                    .map_err(Error::kube(format!("create node {name}")))?;
                Ok::<_, Error>((name, Instant::now()))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect()
        .await
}

/// Makes the pool exactly `n` nodes big (creating the missing ones) and waits until all are Ready.
pub async fn ensure_pool(client: &kube::Client, n: usize) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let existing = api
        .list_metadata(&ListParams::default().labels(&format!("{POOL_LABEL}=true")))
        .await
        .map_err(Error::kube("list pool nodes"))?;
    let have: std::collections::BTreeSet<String> = existing
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let missing: Vec<String> = (0..n)
        .map(pool_node)
        .filter(|n| !have.contains(n))
        .collect();
    if !missing.is_empty() {
        progress::say(format!(
            "creating {} fake nodes (pool of {n})",
            missing.len()
        ));
        let start = Instant::now();
        create(client, &missing).await?;
        progress::say(format!(
            "created {} nodes in {:.1}s; waiting for kwok to make them Ready",
            missing.len(),
            start.elapsed().as_secs_f64()
        ));
    }
    // The control plane's node lifecycle controller lifts the not-ready taints at about 4 nodes a
    // second on 2 cores, so `wait_ready` lifts those of Ready nodes itself; allow 0.5 s a node, at
    // least 10 minutes, all the same.
    let timeout = Duration::from_secs((u64::try_from(n).unwrap_or(u64::MAX) / 2).max(600));
    wait_ready(client, n, timeout).await
}

/// Whether the node still carries a taint the node lifecycle controller puts on nodes that are not
/// (yet) Ready. DaemonSet pods do not tolerate `node.kubernetes.io/not-ready:NoSchedule`, so a
/// controller whose turn started before these taints are gone would be measured against the node
/// lifecycle controller's pace instead of its own.
fn has_condition_taint(node: &Node) -> bool {
    taints(node).iter().any(is_condition_taint)
}

/// A taint the node lifecycle controller manages from the node's Ready condition.
fn is_condition_taint(t: &Taint) -> bool {
    t.key == "node.kubernetes.io/not-ready" || t.key == "node.kubernetes.io/unreachable"
}

fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// Whether the node is Ready and free of the not-ready/unreachable taints.
pub fn is_healthy(node: &Node) -> bool {
    controlplane::nodes::is_ready(node) && !has_condition_taint(node)
}

/// Waits until at least `n` pool nodes are Ready and free of not-ready/unreachable taints.
pub async fn wait_ready(client: &kube::Client, n: usize, timeout: Duration) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{POOL_LABEL}=true"));
    let start = Instant::now();
    loop {
        let list = api.list(&lp).await.map_err(Error::kube("list nodes"))?;
        let ready = list.items.iter().filter(|n| is_healthy(n)).count();
        if ready >= n {
            return Ok(());
        }
        lift_condition_taints(client, &list.items).await;
        if start.elapsed() > timeout {
            return Err(Error::Timeout {
                what: format!("{n} Ready nodes without not-ready taints"),
                seconds: timeout.as_secs(),
                state: format!("{ready} of {} Ready", list.items.len()),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Removes the not-ready/unreachable taints of Ready nodes that carry no other taint, as the
/// control plane's node lifecycle controller would (at about 4 nodes a second on 2 cores, 11 of the
/// 13 minutes a pool of 3000 took to set up). Each patch names the node's resourceVersion, so a node
/// that changed meanwhile is left for the next round; failures only mean waiting longer.
async fn lift_condition_taints(client: &kube::Client, nodes: &[Node]) {
    let api: Api<Node> = Api::all(client.clone());
    let patches = nodes
        .iter()
        .filter(|n| {
            controlplane::nodes::is_ready(n)
                && has_condition_taint(n)
                && taints(n).iter().all(is_condition_taint)
        })
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let rv = n.metadata.resource_version.clone()?;
            Some((name, rv))
        });
    futures::stream::iter(patches)
        .for_each_concurrent(CREATE_CONCURRENCY, |(name, rv)| {
            let api = api.clone();
            async move {
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": rv},
                    "spec": {"taints": null},
                });
                let _ = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        })
        .await;
}

/// Deletes nodes and waits until they are gone.
pub async fn delete(client: &kube::Client, names: &[String]) -> Result<(), Error> {
    futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let client = client.clone();
            async move {
                controlplane::nodes::delete(&client, &name)
                    .await
                    .map_err(Error::kube(format!("delete node {name}")))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let api: Api<Node> = Api::all(client.clone());
    for name in names {
        let start = Instant::now();
        while api
            .get_opt(name)
            .await
            .map_err(Error::kube(format!("get node {name}")))?
            .is_some()
        {
            if start.elapsed() > Duration::from_secs(60) {
                return Err(Error::Timeout {
                    what: format!("node {name} to be gone"),
                    seconds: 60,
                    state: "still there".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// For `duration`, rewrites `CHURN_LABEL` of one pool node after another, `per_second` patches a
/// second; returns how many patches were sent.
pub async fn churn(
    client: &kube::Client,
    nodes: usize,
    per_second: u32,
    duration: Duration,
) -> Result<u64, Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut tick =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        tick.tick().await;
        let name = pool_node((sent as usize) % nodes.max(1));
        let patch = serde_json::json!({"metadata": {"labels": {CHURN_LABEL: sent.to_string()}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!("patch node {name}")))?;
        sent += 1;
    }
    Ok(sent)
}
