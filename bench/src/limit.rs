//! The physical limit: a plain loop creating N pods per DaemonSet of the turn (already bound to the
//! N nodes, as daemon pods are) against the same API server, at the same budget and at most as many
//! requests in flight as a DaemonSet sync (250, kube-controller-manager's burstReplicas), with no
//! controller involved.

use crate::controller::Budget;
use crate::error::Error;
use crate::podwatch::{self, PodTracker, REVISION_ANNOTATION};
use crate::ratelimit::TokenBucket;
use crate::{namespace, pool, progress};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Requests in flight at most: the DaemonSet controller's burst of creates in one sync.
pub const CONCURRENCY: usize = 250;

/// How fast the API server took N pods.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LimitResult {
    pub budget: String,
    pub nodes: usize,
    /// DaemonSets of the turns it stands for: it created `nodes × daemonsets` pods.
    #[serde(default = "one")]
    pub daemonsets: usize,
    /// Seconds until every create was answered.
    pub all_created_s: f64,
    /// Seconds until kwok had made every pod Ready.
    pub all_ready_s: Option<f64>,
    /// Creates answered 429 (or 5xx) and retried.
    pub retries: u64,
}

fn one() -> usize {
    1
}

fn pod(d: usize, i: usize) -> Result<Pod, Error> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("limit-{d}-{i:05}"), "annotations": {REVISION_ANNOTATION: "limit"}},
        "spec": {
            "nodeName": pool::pool_node(i),
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
            "terminationGracePeriodSeconds": 0
        }
    }))
    .map_err(|e| Error::Usage(format!("the benchmark's pod does not parse: {e}")))
}

/// Creates N pods per DaemonSet at `budget` in a namespace of their own, then removes them.
pub async fn run(
    client: &kube::Client,
    nodes: usize,
    daemonsets: usize,
    budget: &Budget,
) -> Result<LimitResult, Error> {
    let total = nodes * daemonsets;
    let ns = format!("bench-limit-{}-{nodes}", budget.name);
    namespace::create(client, &ns).await?;
    let tracker = PodTracker::start(client.clone(), &ns).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let bucket = TokenBucket::new(budget.limited.then_some((budget.qps, budget.burst)));
    let retries = std::sync::atomic::AtomicU64::new(0);
    progress::say(format!(
        "N={nodes} limit {}: creating {total} pods directly",
        budget.name
    ));
    let t0 = Instant::now();
    futures::stream::iter((0..daemonsets).flat_map(|d| (0..nodes).map(move |i| (d, i))))
        .map(|(d, i)| {
            let (api, bucket, retries, ns) = (&api, &bucket, &retries, &ns);
            async move {
                let pod = pod(d, i)?;
                let mut attempt = 0;
                loop {
                    bucket.take().await;
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => return Ok(()),
                        Err(kube::Error::Api(s))
                            if crate::error::server_busy(s.code) && attempt < 20 =>
                        {
                            attempt += 1;
                            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => {
                            return Err(Error::kube(format!("create pod {d}/{i} in {ns}"))(e));
                        }
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let all_created_s = t0.elapsed().as_secs_f64();
    let ready = tracker
        .wait(
            &format!("{total} Ready pods of the limit loop"),
            crate::scenario::bound(total),
            |pods| {
                let (live, ready, _) = pods.tally("limit");
                (live == total && ready == total).then_some(())
            },
            podwatch::describe,
        )
        .await;
    let all_ready_s = match ready {
        Ok(()) => {
            let mut at: Vec<Instant> = tracker
                .snapshot()
                .values()
                .filter_map(|p| p.ready_at)
                .collect();
            at.sort();
            at.last()
                .map(|t| t.saturating_duration_since(t0).as_secs_f64())
        }
        Err(e) => {
            progress::say(format!("N={nodes} limit {}: {e}", budget.name));
            None
        }
    };
    let result = LimitResult {
        budget: budget.name.clone(),
        nodes,
        daemonsets,
        all_created_s,
        all_ready_s,
        retries: retries.into_inner(),
    };
    progress::say(format!(
        "N={nodes} limit {}: created in {:.2}s, Ready in {:.2}s ({} retries)",
        budget.name,
        result.all_created_s,
        result.all_ready_s.unwrap_or(f64::NAN),
        result.retries
    ));
    drop(tracker);
    namespace::delete_pods(client, &ns).await?;
    namespace::delete(client, &ns).await?;
    Ok(result)
}
