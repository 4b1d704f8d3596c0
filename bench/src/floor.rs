//! The floor of a turn: what kube-scheduler and kwok need on their own, with no controller. A plain
//! loop creates the turn's pods *unbound* (pinned to their node by node affinity, as daemon pods are),
//! so the scheduler binds each and kwok makes it Ready; then it replaces every pod with the turn's
//! rolling-update window. Each controller's time above these is its own.

use crate::controller::Budget;
use crate::error::Error;
use crate::limit::CONCURRENCY;
use crate::podwatch::{self, PodTracker, REVISION_ANNOTATION};
use crate::ratelimit::TokenBucket;
use crate::{namespace, pool, progress};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What the scheduler and kwok need on their own for a turn's pods.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FloorResult {
    pub budget: String,
    pub nodes: usize,
    pub daemonsets: usize,
    /// Seconds from the first create until every pod was seen (the loop's watch, as for the turns).
    pub all_exist_s: Option<f64>,
    /// Seconds until the scheduler had bound every pod.
    pub all_bound_s: Option<f64>,
    /// Seconds until kwok had made every pod Ready.
    pub all_ready_s: Option<f64>,
    /// Seconds to replace every pod (delete, gone, create the new one unbound, bound and Ready) with
    /// at most the rolling update's maxUnavailable (10% of N per DaemonSet) replacements in flight.
    pub rollout_s: Option<f64>,
    /// Requests answered 429 (or 5xx) and retried.
    pub retries: u64,
    pub errors: Vec<String>,
}

/// The rolling update's window: maxUnavailable 10% of N per DaemonSet, rounded up as upstream scales
/// a percentage of maxUnavailable (so at least 1 for any N > 0), times the DaemonSets. The floor's
/// replacements in flight and the rollout profile's budget (`rollout_profile`) are both this.
pub fn window(nodes: usize, daemonsets: usize) -> usize {
    nodes.div_ceil(10).max(1) * daemonsets
}

/// The i-th pod of DaemonSet `d` in revision `rev`: unbound, required to run on pool node `i` by a
/// `matchFields metadata.name` node affinity term, as the DaemonSet controllers write it.
fn pod(d: usize, i: usize, rev: &str) -> Result<Pod, Error> {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("floor-{d}-{i:05}-{rev}"), "annotations": {REVISION_ANNOTATION: rev}},
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [pool::pool_node(i)]}
                ]}]
            }}},
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
            "terminationGracePeriodSeconds": 0
        }
    }))
    .map_err(|e| Error::Usage(format!("the benchmark's pod does not parse: {e}")))
}

/// Sends one request at `budget`, retrying 429 and 5xx answers (counted in `retries`).
async fn send<T, F, Fut>(
    bucket: &TokenBucket,
    retries: &std::sync::atomic::AtomicU64,
    what: &str,
    request: F,
) -> Result<T, Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        bucket.take().await;
        match request().await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(s)) if crate::error::server_busy(s.code) && attempt < 20 => {
                attempt += 1;
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(Error::kube(what.to_string())(e)),
        }
    }
}

/// The last of `times` (one per pod), in seconds since `t0`, if every pod has one.
fn last(times: impl Iterator<Item = Option<Instant>>, t0: Instant) -> Option<f64> {
    let mut max: Option<Instant> = None;
    for t in times {
        let t = t?;
        max = Some(max.map_or(t, |m| m.max(t)));
    }
    max.map(|t| t.saturating_duration_since(t0).as_secs_f64())
}

/// Measures the floor of a turn of `daemonsets` DaemonSets on `nodes` nodes at `budget`, in a
/// namespace of its own, then removes it.
pub async fn run(
    client: &kube::Client,
    nodes: usize,
    daemonsets: usize,
    budget: &Budget,
) -> Result<FloorResult, Error> {
    let ns = format!("bench-floor-{}-{nodes}", budget.name);
    namespace::create(client, &ns).await?;
    let tracker = PodTracker::start(client.clone(), &ns).await?;
    let mut result = FloorResult {
        budget: budget.name.clone(),
        nodes,
        daemonsets,
        ..Default::default()
    };
    let outcome = measure(client, &ns, &tracker, budget, &mut result).await;
    if let Err(e) = outcome {
        progress::say(format!("N={nodes} floor {}: FAILED: {e}", budget.name));
        result.errors.push(e.to_string());
    }
    drop(tracker);
    namespace::delete_pods(client, &ns).await?;
    namespace::delete(client, &ns).await?;
    Ok(result)
}

async fn measure(
    client: &kube::Client,
    ns: &str,
    tracker: &PodTracker,
    budget: &Budget,
    result: &mut FloorResult,
) -> Result<(), Error> {
    let (nodes, daemonsets) = (result.nodes, result.daemonsets);
    let total = nodes * daemonsets;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let bucket = TokenBucket::new(budget.limited.then_some((budget.qps, budget.burst)));
    let retries = std::sync::atomic::AtomicU64::new(0);
    let slots: Vec<(usize, usize)> = (0..daemonsets)
        .flat_map(|d| (0..nodes).map(move |i| (d, i)))
        .collect();
    let bound = crate::scenario::bound(total);
    let (pp, dp) = (PostParams::default(), DeleteParams::default());
    let say = |m: String| progress::say(format!("N={nodes} floor {}: {m}", budget.name));

    // 1. Create: all exist, all bound, all Ready.
    say(format!("creating {total} unbound pods"));
    let t0 = Instant::now();
    futures::stream::iter(slots.iter().copied())
        .map(|(d, i)| {
            let (api, bucket, retries, pp) = (&api, &bucket, &retries, &pp);
            async move {
                let pod = pod(d, i, "1")?;
                let what = format!("create floor pod {d}/{i}");
                send(bucket, retries, &what, || api.create(pp, &pod))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    tracker
        .wait(
            &format!("{total} Ready pods of the floor loop"),
            bound,
            |pods| {
                let (live, ready, _) = pods.tally("1");
                (live == total && ready == total).then_some(())
            },
            podwatch::describe,
        )
        .await?;
    let pods = tracker.snapshot();
    let first: Vec<_> = pods.values().filter(|p| p.revision == "1").collect();
    result.all_exist_s = last(first.iter().map(|p| Some(p.first_seen)), t0);
    result.all_bound_s = last(first.iter().map(|p| p.bound_at), t0);
    result.all_ready_s = last(first.iter().map(|p| p.ready_at), t0);
    say(format!(
        "all exist after {:.2}s, bound {:.2}s, Ready {:.2}s",
        result.all_exist_s.unwrap_or(f64::NAN),
        result.all_bound_s.unwrap_or(f64::NAN),
        result.all_ready_s.unwrap_or(f64::NAN)
    ));

    // 2. Replace every pod, at most `window` replacements in flight: the ideal rolling update.
    let window = window(nodes, daemonsets);
    say(format!(
        "replacing {total} pods, {window} at a time (maxUnavailable 10%)"
    ));
    let t0 = Instant::now();
    futures::stream::iter(slots.iter().copied())
        .map(|(d, i)| {
            let (api, bucket, retries, pp, dp) = (&api, &bucket, &retries, &pp, &dp);
            async move {
                let old = format!("floor-{d}-{i:05}-1");
                let new = pod(d, i, "2")?;
                let new_name = format!("floor-{d}-{i:05}-2");
                send(bucket, retries, &format!("delete floor pod {old}"), || {
                    api.delete(&old, dp)
                })
                .await?;
                tracker
                    .wait(
                        &format!("floor pod {old} gone"),
                        bound,
                        |pods: &podwatch::Pods| {
                            pods.get(&old).is_none_or(|p| !p.live()).then_some(())
                        },
                        podwatch::describe,
                    )
                    .await?;
                send(
                    bucket,
                    retries,
                    &format!("create floor pod {new_name}"),
                    || api.create(pp, &new),
                )
                .await?;
                tracker
                    .wait(
                        &format!("floor pod {new_name} Ready"),
                        bound,
                        |pods: &podwatch::Pods| {
                            pods.get(&new_name)
                                .is_some_and(|p| p.live() && p.ready_at.is_some())
                                .then_some(())
                        },
                        podwatch::describe,
                    )
                    .await
            }
        })
        .buffer_unordered(window)
        .try_collect::<Vec<()>>()
        .await?;
    result.rollout_s = Some(t0.elapsed().as_secs_f64());
    result.retries = retries.into_inner();
    say(format!(
        "replaced in {:.2}s ({} retries)",
        result.rollout_s.unwrap_or(f64::NAN),
        result.retries
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_max_unavailable_per_daemonset() {
        assert_eq!(window(1000, 1), 100);
        assert_eq!(window(5000, 5), 2500);
        assert_eq!(window(20, 1), 2);
        assert_eq!(window(5, 2), 2, "at least one per DaemonSet");
        assert_eq!(window(15, 2), 4, "rounded up");
    }

    #[test]
    fn last_needs_every_pod() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(2);
        assert_eq!(last([Some(t0), Some(later)].into_iter(), t0), Some(2.0));
        assert_eq!(last([Some(t0), None].into_iter(), t0), None);
    }
}
