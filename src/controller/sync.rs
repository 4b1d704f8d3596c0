//! One sync of one DaemonSet (upstream `syncDaemonSet`, §2): read the caches, ask the core what to
//! do, and apply it in upstream's order.

use super::Error;
use super::claim::claim_objects;
use super::context::{Context, ds_labels, lock, read};
use super::daemonset_object::CachedDaemonSet;
use super::pod_control::sync_nodes;
use super::revisions;
use super::rollback::{self, Undo};
use super::rollout_writer;
use super::rollouts::{self, View};
use super::status_writer::write_paced;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::claimed_view::{claimed_now, uids};
use crate::core::events::{INVALID_UPDATE_STRATEGY, PlannedEvent};
use crate::core::manage::{ManagePlan, plan_manage_placed, selecting_all_event};
use crate::core::node_reason::{self, explain_placed};
use crate::core::placement::Placements;
use crate::core::pods_by_node::{NodePods, group_by_node, nodes_holding, regroup};
use crate::core::rolling_update::is_rolling_update;
use crate::core::rolling_update::{
    Gate, RollingUpdateError, RollingUpdatePlan, plan_rolling_update_placed,
};
use crate::core::rollout::guard::restrict_manage;
use crate::core::rollout::{Mode, RolloutPlan};
use crate::core::shrink::selects_few_nodes;
use crate::core::spec_check::check_spec;
use crate::core::status::{compute_counters_placed, min_ready_requeue};
use crate::core::sync_pacing::{SyncOutcome, is_quiet};
use crate::core::unschedulable;
use crate::core::{Timestamp, earliest};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// Every cached node in name order. Upstream's lister order is arbitrary; name order makes plans
/// reproducible. The cache sorts once per node change, not once per sync.
fn nodes(ctx: &Context) -> Arc<[Arc<CachedNode>]> {
    read(&ctx.caches.nodes).sorted()
}

/// Pods this DaemonSet controls according to the cache, without claiming.
fn owned_pods(ctx: &Context, ds: &CachedDaemonSet) -> Vec<Arc<CachedPod>> {
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    read(&ctx.caches.pods)
        .candidates(ns, ds.uid())
        .into_iter()
        .filter(|p| crate::core::ownership::controller_uid(&p.metadata) == Some(ds.uid()))
        .collect()
}

/// Upstream `rollingUpdate`: the core picks the outdated pods to replace within the budget, among
/// the nodes `gate` lets start ([`Gate::OPEN`] without a DaemonSetRollout). Returns the plan and
/// the nodes it created on or deleted from.
async fn rolling_update(
    ctx: &Context,
    ds: &CachedDaemonSet,
    placements: &Placements<'_>,
    node_pods: &NodePods,
    hash: &str,
    gate: Gate<'_>,
) -> Result<(RollingUpdatePlan, BTreeSet<String>), Error> {
    let now = Timestamp::now();
    match plan_rolling_update_placed(&ds.ds, placements, node_pods, hash, now, gate) {
        Ok(plan) => {
            let touched = plan
                .nodes_to_create
                .iter()
                .cloned()
                .chain(
                    nodes_holding(node_pods, &plan.pods_to_delete)
                        .into_iter()
                        .map(str::to_string),
                )
                .collect();
            sync_nodes(ctx, ds, &plan.nodes_to_create, &plan.pods_to_delete, hash)
                .await
                .map(|()| (plan, touched))
        }
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

/// The watches a sync needs to be current before it creates or deletes anything (the
/// DaemonSetRollout watch only runs, and so only fails, while its CRD is served).
const ACTING_WATCHES: [&str; 3] = ["pods", "nodes", rollouts::KIND];

/// How soon a DaemonSet held back by a failing watch is looked at again.
const WATCH_RETRY: Duration = Duration::from_secs(5);

/// Syncs one DaemonSet. Returns when to look at it again without an event (`None`: at its next
/// event). Records what the sync left for the pacing of its pod events (`core::sync_pacing`): a
/// sync that failed or stopped early leaves every event to sync at once.
pub async fn sync_daemonset(
    ds: Arc<CachedDaemonSet>,
    ctx: &Context,
) -> Result<Option<Duration>, Error> {
    let uid = ds.uid().to_string();
    let mut outcome = SyncOutcome::UNPACED;
    let result = sync(ds, ctx, &mut outcome).await;
    if result.is_err() {
        outcome = SyncOutcome::UNPACED;
    }
    lock(&ctx.sync_pacer).synced(&uid, outcome, Timestamp::now());
    result
}

/// [`sync_daemonset`]'s work; sets `outcome` where the sync gets far enough to know it.
async fn sync(
    ds: Arc<CachedDaemonSet>,
    ctx: &Context,
    outcome: &mut SyncOutcome,
) -> Result<Option<Duration>, Error> {
    let key = ds.key();
    let uid = ds.uid();
    let d = &ds.ds;
    if let Some(event) = selecting_all_event(d) {
        warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(&ds, event);
        return Ok(None);
    }
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(None);
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
    // Every node placed once for this sync, with the rules compiled when the DaemonSet was decoded.
    let placements = Placements::compute(&ds.placement, &nodes);
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
        claim_objects(&ctx.client, &ds, &candidates).await?
    } else {
        owned_pods(ctx, &ds)
    };
    let history = revisions::construct(ctx, &ds, &pods).await?;
    let hash = history.hash.as_str();
    // The DaemonSetRollout of the same name, its last status, and its decision on this view.
    let policy = rollouts::lookup(ctx, &ds).map(|r| {
        let previous = rollouts::previous(ctx, &r);
        (r, previous, rollouts::revision_refs(ctx, &ds))
    });
    // The claimed pods by node, grouped once for the policy, manage and a status-only write.
    let start_node_pods = group_by_node(pods.iter(), false);
    let decision: Option<RolloutPlan> = policy.as_ref().map(|(r, previous, revs)| {
        let node_pods = &start_node_pods;
        let view = View {
            ds: &ds,
            nodes: &nodes,
            node_pods,
            pods: &pods,
            hash,
            revisions: revs,
        };
        rollouts::decide(r, previous, &view, false, now)
    });

    if !(satisfied && watches_ok) {
        if watches_ok {
            debug!(daemonset = %key, "expectations not yet satisfied; refreshing status only");
        } else {
            warn!(daemonset = %key, "a pod or node watch is failing; refreshing status only");
        }
        let counters = compute_counters_placed(d, &placements, &start_node_pods, hash, now);
        // A create or delete this sync waits for is an add or a delete, never paced.
        *outcome = SyncOutcome {
            unpaced: policy.is_some(),
            quiet_unready: None,
            desired: counters.desired_number_scheduled,
            nodes: nodes.len(),
        };
        let held_back = write_paced(ctx, &ds, &counters, false).await?;
        if let (Some((r, previous, _)), Some(decision)) = (&policy, &decision)
            && let Err(e) = rollout_writer::write(ctx, &ds, r, decision, previous).await
        {
            warn!(daemonset = %key, "{e}");
        }
        let requeue = earliest([
            expectations_requeue(ctx, uid, now),
            min_ready_requeue(d, &counters),
            (!watches_ok).then_some(WATCH_RETRY),
            decision.as_ref().and_then(|p| p.requeue_after),
            held_back,
        ]);
        return Ok(requeue);
    }

    // The claimed pods' UIDs, for the later reads of the cache (`claimed_now`).
    let claimed = uids(&pods);
    // Rollback: the intent goes into the policy's status first, then the earlier template into
    // the DaemonSet; its update queues the next sync.
    if let (Some((r, previous, _)), Some(decision)) = (&policy, &decision)
        && let Mode::Rollback(order) = &decision.mode
    {
        rollout_writer::write_rollout_status(ctx, r, &decision.status, previous).await?;
        let outcome = rollback::undo(ctx, &ds, order).await?;
        debug!(daemonset = %key, ?outcome, "rollback");
        let again = match outcome {
            Undo::Forbidden => Duration::from_secs(60),
            Undo::Done | Undo::Conflict | Undo::RevisionGone => Duration::from_secs(1),
        };
        return Ok(Some(again));
    }
    // Freeze, or a policy that cannot be used: no pod is created or deleted and no revision
    // cleaned up; status is still written.
    let acting = decision
        .as_ref()
        .is_none_or(|p| !matches!(p.mode, Mode::Freeze | Mode::Hold));

    let mut plan = if acting {
        plan_manage_placed(
            d,
            &placements,
            &start_node_pods,
            hash,
            now,
            &mut lock(&ctx.backoff),
        )
    } else {
        ManagePlan::default()
    };
    if let Some(decision) = &decision {
        restrict_manage(&mut plan, &decision.keep, &start_node_pods);
    }
    for event in std::mem::take(&mut plan.events) {
        ctx.events.publish(&ds, event);
    }
    let mut sync_result = if acting {
        sync_nodes(
            ctx,
            &ds,
            &plan.nodes_needing_pods,
            &plan.pods_to_delete,
            hash,
        )
        .await
    } else {
        Ok(())
    };
    let mut starts_issued = false;
    let mut rolling_plan = None;
    // The rolling update runs only when manage's work has been observed: in practice, in a sync in
    // which manage issued nothing (§2 step 8.2), or once its creates and deletes reached the cache.
    // It plans on the cache as it is now, not on the view manage planned on (upstream re-reads
    // too): see `core::claimed_view`.
    if sync_result.is_ok()
        && acting
        && is_rolling_update(d)
        && lock(&ctx.expectations).satisfied(uid, Timestamp::now())
    {
        let now_pods = claimed_now(
            &claimed,
            &seen,
            read(&ctx.caches.pods).candidates(ns, uid),
            uid,
        );
        let node_pods = regroup(&pods, &start_node_pods, &now_pods);
        let gate = decision.as_ref().map_or(Gate::OPEN, RolloutPlan::gate);
        match rolling_update(ctx, &ds, &placements, &node_pods, hash, gate).await {
            Ok((plan, touched)) => {
                rolling_plan = Some(plan);
                starts_issued = decision.as_ref().is_some_and(|p| match &p.starts {
                    Some(starts) => touched.iter().any(|n| starts.contains(n)),
                    None => !touched.is_empty(),
                });
            }
            Err(e) => sync_result = Err(e),
        }
    }
    let owned = claimed_now(
        &claimed,
        &seen,
        read(&ctx.caches.pods).candidates(ns, uid),
        uid,
    );
    if sync_result.is_ok() && acting {
        // A policy keeps its rollback target (lastCompleteRevision) in the history.
        let keep = decision
            .as_ref()
            .and_then(|p| p.status.last_complete_revision.as_deref());
        sync_result = revisions::cleanup(ctx, &ds, &history.old, &owned, keep).await;
    }

    // Status from the cache as it is now, with observedGeneration, and every node's reason from
    // the same pass: its class for `everynode_daemonset_nodes`, unschedulable pods for the
    // `PodsUnschedulable` summary ([difference], docs/differences.md).
    let now = Timestamp::now();
    let node_pods = regroup(&pods, &start_node_pods, &owned);
    let reasons = node_reason::Context {
        backoff_until: Some(&plan.backoff_until),
        rollout: decision.as_ref(),
        rolling_update: rolling_plan.as_ref(),
        classes_only: true,
    };
    let explanation = explain_placed(d, &placements, &node_pods, hash, now, &reasons);
    let nothing_planned = acting
        && plan.nodes_needing_pods.is_empty()
        && plan.pods_to_delete.is_empty()
        && rolling_plan
            .as_ref()
            .is_none_or(|p| p.pods_to_delete.is_empty() && p.nodes_to_create.is_empty());
    *outcome = SyncOutcome {
        unpaced: policy.is_some(),
        quiet_unready: is_quiet(&explanation, &node_pods, nothing_planned),
        desired: explanation.counters.desired_number_scheduled,
        nodes: nodes.len(),
    };
    let counters = explanation.counters;
    ctx.metrics
        .set_nodes(&ds_labels(&ds), &explanation.by_class());
    let saying = lock(&ctx.said).unschedulable(uid, unschedulable::summary(&explanation.rows), now);
    if let Some(event) = saying.event {
        warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(&ds, event);
    }
    let status_result = write_paced(ctx, &ds, &counters, true).await;
    if status_result.is_ok() {
        ctx.metrics.set_rollout(&ds_labels(&ds), &counters, now);
    }
    // The policy's decision on the view as it is now: its events, status and mirrored conditions.
    // Without a policy, only conditions it left on the DaemonSet are removed (once; never a write
    // for a DaemonSet that never had one).
    let outcome = policy.as_ref().map(|(r, previous, revs)| {
        let view = View {
            ds: &ds,
            nodes: &nodes,
            node_pods: &node_pods,
            pods: &owned,
            hash,
            revisions: revs,
        };
        (
            rollouts::decide(r, previous, &view, starts_issued, now),
            r,
            previous,
        )
    });
    let rollout_result = match &outcome {
        Some((outcome, r, previous)) => rollout_writer::write(ctx, &ds, r, outcome, previous).await,
        None => rollout_writer::mirror_conditions(ctx, &ds, &[])
            .await
            .map(|_| ()),
    };
    let status_result = match (status_result, rollout_result) {
        (Ok(_), Err(e)) => Err(e),
        (result, _) => result,
    };
    let held_back = status_result.as_ref().ok().copied().flatten();
    let requeue = earliest([
        held_back,
        outcome.as_ref().and_then(|(o, _, _)| o.requeue_after),
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
            Ok(Some(requeue.map_or(resync, |r| r.min(resync))))
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
