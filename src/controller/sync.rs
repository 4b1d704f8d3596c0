//! One sync of one DaemonSet (upstream `syncDaemonSet`, §2): read the caches, ask the core what to
//! do, and apply it in upstream's order.

use super::Error;
use super::claim::claim_objects;
use super::context::{Context, ds_labels, lock, read};
use super::daemonset_object::CachedDaemonSet;
use super::pod_control::sync_nodes;
use super::revisions;
use super::status_writer::write_status;
use crate::core::Timestamp;
use crate::core::events::{INVALID_UPDATE_STRATEGY, PlannedEvent};
use crate::core::manage::{plan_manage, selecting_all_event};
use crate::core::pods_by_node::{NodePods, group_by_node};
use crate::core::rolling_update::{RollingUpdateError, plan_rolling_update};
use crate::core::status::{compute_counters, min_ready_requeue};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

fn nodes(ctx: &Context) -> Vec<Arc<Node>> {
    let mut nodes: Vec<Arc<Node>> = read(&ctx.caches.nodes).values().cloned().collect();
    // Upstream's lister order is arbitrary; name order makes plans reproducible.
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    nodes
}

/// Pods this DaemonSet controls according to the cache (after claiming).
fn owned_pods(ctx: &Context, ds: &CachedDaemonSet) -> Vec<Arc<Pod>> {
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let uid = ds.ds.metadata.uid.as_deref().unwrap_or_default();
    read(&ctx.caches.pods)
        .candidates(ns, uid)
        .into_iter()
        .filter(|p| crate::core::triggers::controller_uid(&p.metadata) == Some(uid))
        .collect()
}

fn is_rolling_update(d: &k8s_openapi::api::apps::v1::DaemonSet) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// Upstream `rollingUpdate`: the core picks the outdated pods to replace within the budget.
async fn rolling_update(
    ctx: &Context,
    ds: &CachedDaemonSet,
    nodes: &[Arc<Node>],
    node_pods: &NodePods,
    hash: &str,
) -> Result<(), Error> {
    match plan_rolling_update(&ds.ds, nodes, node_pods, hash, Timestamp::now()) {
        Ok(plan) => sync_nodes(ctx, ds, &plan.nodes_to_create, &plan.pods_to_delete, hash).await,
        Err(e) => {
            // [difference] upstream only logs this and retries; everynode also tells the owner of the
            // DaemonSet on the object itself (docs/differences.md).
            if let RollingUpdateError::Budget(_) = &e {
                ctx.events.publish(
                    ds,
                    PlannedEvent::warning(INVALID_UPDATE_STRATEGY, e.to_string()),
                );
            }
            Err(Error::invalid(ds, e.to_string()))
        }
    }
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Syncs one DaemonSet. Returns when to look at it again without an event.
pub async fn sync_daemonset(ds: Arc<CachedDaemonSet>, ctx: &Context) -> Result<Action, Error> {
    let key = ds.key();
    let d = &ds.ds;
    if let Some(event) = selecting_all_event(d) {
        warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(&ds, event);
        return Ok(Action::await_change());
    }
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // Expectations first, then the pod cache: an observation lowers the expectations only after
    // the watch applied it to the cache, so a view read after a satisfied check shows every pod
    // this DaemonSet created or deleted. Read the other way round, a sync could see satisfied
    // expectations with an older view and delete a pod again (404) or create a second one on a node,
    // as `make bench` at 3000 nodes showed. Upstream checks before listing pods too.
    let now = Timestamp::now();
    let satisfied = lock(&ctx.expectations).satisfied(&key, now);
    let nodes = nodes(ctx);
    let candidates = {
        let ns = d.metadata.namespace.as_deref().unwrap_or_default();
        read(&ctx.caches.pods).candidates(ns, d.metadata.uid.as_deref().unwrap_or_default())
    };
    let pods = claim_objects(&ctx.client, &ds, candidates).await?;
    let history = revisions::construct(ctx, &ds, &pods).await?;
    let hash = history.hash.as_str();

    if !satisfied {
        debug!(daemonset = %key, "expectations not yet satisfied; refreshing status only");
        let node_pods = group_by_node(pods.iter(), false);
        let counters = compute_counters(d, &nodes, &node_pods, hash, now);
        write_status(&ctx.client, &ds, &counters, false).await?;
        return Ok(Action::await_change());
    }

    let node_pods = group_by_node(pods.iter(), false);
    let plan = plan_manage(d, &nodes, &node_pods, hash, now, &mut lock(&ctx.backoff));
    for event in plan.events {
        ctx.events.publish(&ds, event);
    }
    let mut sync_result = sync_nodes(
        ctx,
        &ds,
        &plan.nodes_needing_pods,
        &plan.pods_to_delete,
        hash,
    )
    .await;
    // The rolling update runs only on a view manage has not just changed: in practice, in a sync in
    // which manage issued nothing (§2 step 8.2).
    if sync_result.is_ok()
        && is_rolling_update(d)
        && lock(&ctx.expectations).satisfied(&key, Timestamp::now())
    {
        sync_result = rolling_update(ctx, &ds, &nodes, &node_pods, hash).await;
    }
    if sync_result.is_ok() {
        sync_result = revisions::cleanup(ctx, &ds, &history.old, &owned_pods(ctx, &ds)).await;
    }

    // Status from the cache as it is now, with observedGeneration.
    let now = Timestamp::now();
    let owned = owned_pods(ctx, &ds);
    let node_pods = group_by_node(owned.iter(), false);
    let counters = compute_counters(d, &nodes, &node_pods, hash, now);
    let status_result = write_status(&ctx.client, &ds, &counters, true).await;
    if status_result.is_ok() {
        ctx.metrics.set_rollout(&ds_labels(&ds), &counters);
    }
    let requeue = earliest(
        plan.requeue_after,
        status_result
            .as_ref()
            .ok()
            .and_then(|_| min_ready_requeue(d, &counters)),
    );
    match (sync_result, status_result) {
        (Err(e), Err(s)) => {
            warn!(daemonset = %key, "status update failed too: {s}");
            Err(e)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(()), Ok(_)) => Ok(requeue
            .map(Action::requeue)
            .unwrap_or_else(Action::await_change)),
    }
}
