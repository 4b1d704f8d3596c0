//! One sync of one DaemonSet (upstream `syncDaemonSet`, §2): read the caches, ask the core what to
//! do, and apply it in upstream's order.

use super::Error;
use super::claim::claim_objects;
use super::context::{Context, ds_labels, lock, read};
use super::daemonset_object::CachedDaemonSet;
use super::pod_control::sync_nodes;
use super::revisions;
use super::status_writer::write_status;
use crate::core::claimed_view::{claimed_now, uids};
use crate::core::events::{INVALID_UPDATE_STRATEGY, PlannedEvent};
use crate::core::manage::{plan_manage, selecting_all_event};
use crate::core::node_reason::{self, explain};
use crate::core::pods_by_node::{NodePods, group_by_node};
use crate::core::rolling_update::is_rolling_update;
use crate::core::rolling_update::{RollingUpdateError, plan_rolling_update};
use crate::core::shrink::selects_few_nodes;
use crate::core::spec_check::check_spec;
use crate::core::status::{compute_counters, min_ready_requeue};
use crate::core::unschedulable;
use crate::core::{Timestamp, earliest};
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

/// Pods this DaemonSet controls according to the cache, without claiming.
fn owned_pods(ctx: &Context, ds: &CachedDaemonSet) -> Vec<Arc<Pod>> {
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    read(&ctx.caches.pods)
        .candidates(ns, ds.uid())
        .into_iter()
        .filter(|p| crate::core::ownership::controller_uid(&p.metadata) == Some(ds.uid()))
        .collect()
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
        Err(e @ RollingUpdateError::Budget(_)) => {
            // [difference] upstream only logs this and retries; everynode also tells the owner of the
            // DaemonSet on the object itself (docs/differences.md). The spec check at the top of the
            // sync catches these first.
            ctx.events.publish(
                ds,
                PlannedEvent::warning(INVALID_UPDATE_STRATEGY, e.to_string()),
            );
            Err(Error::invalid(ds, e.to_string()))
        }
        Err(e @ RollingUpdateError::NodeNotFound { .. }) => Err(Error::RollingUpdate {
            daemonset: ds.key(),
            reason: e.to_string(),
        }),
    }
}

/// When to look at the DaemonSet again if its expectations stay outstanding.
fn expectations_requeue(ctx: &Context, uid: &str, now: Timestamp) -> Option<Duration> {
    lock(&ctx.expectations).get(uid)?.requeue_after(now)
}

/// [difference] The safety resync: every DaemonSet is synced again 10 to 15 minutes (`jitter` in
/// [0, 1) spreads them) after its last successful sync even without an event, so that an event
/// lost to a watch failure costs minutes, not a day. Upstream's informers resync every 12 to 24
/// hours (`--min-resync-period`); a sync with nothing to do only reads the caches (docs/differences.md).
pub fn safety_resync(jitter: f64) -> Duration {
    Duration::from_secs(600).mul_f64(1.0 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The watches a sync needs to be current before it creates or deletes anything.
const ACTING_WATCHES: [&str; 2] = ["pods", "nodes"];

/// How soon a DaemonSet held back by a failing watch is looked at again.
const WATCH_RETRY: Duration = Duration::from_secs(5);

/// Syncs one DaemonSet. Returns when to look at it again without an event.
pub async fn sync_daemonset(ds: Arc<CachedDaemonSet>, ctx: &Context) -> Result<Action, Error> {
    let key = ds.key();
    let uid = ds.uid();
    let d = &ds.ds;
    if let Some(event) = selecting_all_event(d) {
        warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(&ds, event);
        return Ok(Action::await_change());
    }
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if let Err(source) = check_spec(d) {
        ctx.events.publish(
            &ds,
            PlannedEvent::warning(source.reason(), source.to_string()),
        );
        return Err(Error::InvalidSpec {
            daemonset: key,
            source,
        });
    }
    // Expectations first, then the pod cache: an observation lowers the expectations only after
    // the watch applied it to the cache, so a view read after a satisfied check shows every pod
    // this DaemonSet created or deleted. Read the other way round, a sync could see satisfied
    // expectations with an older view and delete a pod again (404) or create a second one on a node,
    // as `make bench` at 3000 nodes showed. Upstream checks before listing pods too.
    let now = Timestamp::now();
    let satisfied = lock(&ctx.expectations).satisfied(uid, now);
    // [difference] While the pod or node watch is failing, the caches may be arbitrarily old (and
    // expectations expire after 5 minutes): the sync only writes status until they recover, and
    // `/readyz` says why (docs/differences.md).
    let watches_ok = ctx.readiness.watches_ok(&ACTING_WATCHES);
    let nodes = nodes(ctx);
    // [difference] A spec change that leaves the DaemonSet wanting no node, or fewer than half of
    // the nodes it wanted, is said once, before its pods go (docs/differences.md).
    let generation = d.metadata.generation.unwrap_or(0);
    let few = lock(&ctx.said).once_per_generation(uid, generation, selects_few_nodes(d, &nodes));
    if let Some(event) = few {
        warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(&ds, event);
    }
    let ns = d.metadata.namespace.as_deref().unwrap_or_default();
    let candidates = read(&ctx.caches.pods).candidates(ns, uid);
    let seen = uids(&candidates);
    let pods = if watches_ok {
        claim_objects(&ctx.client, &ds, candidates).await?
    } else {
        owned_pods(ctx, &ds)
    };
    let history = revisions::construct(ctx, &ds, &pods).await?;
    let hash = history.hash.as_str();

    if !(satisfied && watches_ok) {
        if watches_ok {
            debug!(daemonset = %key, "expectations not yet satisfied; refreshing status only");
        } else {
            warn!(daemonset = %key, "a pod or node watch is failing; refreshing status only");
        }
        let node_pods = group_by_node(pods.iter(), false);
        let counters = compute_counters(d, &nodes, &node_pods, hash, now);
        write_status(&ctx.client, &ds, &counters, false).await?;
        let requeue = earliest([
            expectations_requeue(ctx, uid, now),
            min_ready_requeue(d, &counters),
            (!watches_ok).then_some(WATCH_RETRY),
        ]);
        return Ok(requeue
            .map(Action::requeue)
            .unwrap_or_else(Action::await_change));
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
    // The rolling update runs only when manage's work has been observed: in practice, in a sync in
    // which manage issued nothing (§2 step 8.2), or once its creates and deletes reached the cache.
    // It plans on the cache as it is now, not on the view manage planned on (upstream re-reads
    // too): see `core::claimed_view`.
    if sync_result.is_ok()
        && is_rolling_update(d)
        && lock(&ctx.expectations).satisfied(uid, Timestamp::now())
    {
        let now_pods = claimed_now(
            &pods,
            &seen,
            read(&ctx.caches.pods).candidates(ns, uid),
            uid,
        );
        let node_pods = group_by_node(now_pods.iter(), false);
        sync_result = rolling_update(ctx, &ds, &nodes, &node_pods, hash).await;
    }
    let owned = claimed_now(
        &pods,
        &seen,
        read(&ctx.caches.pods).candidates(ns, uid),
        uid,
    );
    if sync_result.is_ok() {
        sync_result = revisions::cleanup(ctx, &ds, &history.old, &owned).await;
    }

    // Status from the cache as it is now, with observedGeneration, and every node's reason from
    // the same pass: its class for `everynode_daemonset_nodes`, unschedulable pods for the
    // `PodsUnschedulable` summary ([difference], docs/differences.md).
    let now = Timestamp::now();
    let node_pods = group_by_node(owned.iter(), false);
    let reasons = node_reason::Context {
        backoff_until: Some(&plan.backoff_until),
        rollout: None,
    };
    let explanation = explain(d, &nodes, &node_pods, hash, now, &reasons);
    let counters = explanation.counters;
    ctx.metrics
        .set_nodes(&ds_labels(&ds), &explanation.by_class());
    let saying = lock(&ctx.said).unschedulable(uid, unschedulable::summary(&explanation.rows), now);
    if let Some(event) = saying.event {
        warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(&ds, event);
    }
    let status_result = write_status(&ctx.client, &ds, &counters, true).await;
    if status_result.is_ok() {
        ctx.metrics.set_rollout(&ds_labels(&ds), &counters, now);
    }
    let requeue = earliest([
        plan.requeue_after,
        min_ready_requeue(d, &counters),
        expectations_requeue(ctx, uid, now),
        saying.requeue_after,
    ]);
    match (sync_result, status_result) {
        (Err(e), Err(s)) => {
            warn!(daemonset = %key, "status update failed too: {s}");
            Err(e)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(()), Ok(_)) => {
            let resync = safety_resync(rand::random());
            Ok(Action::requeue(requeue.map_or(resync, |r| r.min(resync))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safety_resync;
    use std::time::Duration;

    #[test]
    fn the_safety_resync_comes_10_to_15_minutes_later() {
        assert_eq!(safety_resync(0.0), Duration::from_secs(600));
        assert_eq!(safety_resync(0.5), Duration::from_secs(750));
        assert_eq!(safety_resync(1.0), Duration::from_secs(900));
        assert_eq!(safety_resync(7.0), Duration::from_secs(900));
        assert_eq!(safety_resync(-1.0), Duration::from_secs(600));
    }
}
