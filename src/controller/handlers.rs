//! Event handlers: route each cache change to the core's decision ([`crate::core::triggers`]) and
//! apply its reaction: queue DaemonSets, record expectation observations (upstream's informer
//! handlers, §1.2–§1.5), and DaemonSetRollout changes to the DaemonSet they govern.

use super::context::{Context, lock, read};
use super::daemonset_object::CachedDaemonSet;
use super::node_queue::{self, NodeQueue};
use super::rollouts::CachedRollout;
use crate::core::Timestamp;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::placement::{PlacementRules, WithPlacementRules};
use crate::core::rollout::trigger;
use crate::core::triggers::{self, Change, Reaction};
use crate::runtime::metrics::DaemonSetLabels;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use std::borrow::{Borrow, Cow};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// A cached DaemonSet as the core's decisions take it.
struct Ds(Arc<CachedDaemonSet>);

impl Borrow<DaemonSet> for Ds {
    fn borrow(&self) -> &DaemonSet {
        &self.0.ds
    }
}

impl WithPlacementRules for Ds {
    fn placement_rules(&self) -> Cow<'_, PlacementRules> {
        Cow::Borrowed(&self.0.placement)
    }
}

fn daemonsets(ctx: &Context) -> Vec<Ds> {
    ctx.caches.daemonsets.state().into_iter().map(Ds).collect()
}

/// DaemonSet changes (§1.2): queue it; forget the expectations (what was said, when its status was
/// written) of one that is gone.
pub fn daemonset_changed(ctx: &Context, change: Change<CachedDaemonSet>) {
    match change {
        Change::Added(ds) => ctx.enqueue(&ds),
        Change::Updated { old, new } => {
            if old.ds.metadata.uid != new.ds.metadata.uid {
                lock(&ctx.expectations).delete(old.uid());
                lock(&ctx.said).forget(old.uid());
                lock(&ctx.status_pacer).forget(old.uid());
                lock(&ctx.sync_pacer).forget(old.uid());
            }
            ctx.enqueue(&new);
        }
        Change::Deleted(ds) => {
            lock(&ctx.expectations).delete(ds.uid());
            lock(&ctx.said).forget(ds.uid());
            lock(&ctx.status_pacer).forget(ds.uid());
            lock(&ctx.sync_pacer).forget(ds.uid());
            ctx.enqueue(&ds);
        }
    }
}

/// Applies a reaction: observations first (so the sync it queues sees them), then the queue; with
/// `paced`, the queued DaemonSet waits that long for its next paced sync (`core::sync_pacing`).
fn react(ctx: &Context, reaction: Reaction<'_, Ds>, paced: Option<Duration>) {
    if let Some((ds, node)) = reaction.creation_observed {
        debug!(daemonset = %ds.0.key(), node = %node, "pod creation observed");
        lock(&ctx.expectations).creation_observed(ds.0.uid(), &node);
    }
    if let Some((ds, pod)) = reaction.deletion_observed {
        lock(&ctx.expectations).deletion_observed(ds.0.uid(), &pod);
    }
    for ds in reaction.queue {
        match paced {
            Some(wait) => ctx.queue.add_after(ds.0.key(), wait),
            None => ctx.enqueue(&ds.0),
        }
    }
    if let Some((ds, delay)) = reaction.queue_after {
        ctx.enqueue_after(&ds.0, delay);
    }
}

/// Pod changes (§1.4).
pub fn pod_changed(ctx: &Context, change: Change<CachedPod>) {
    let all = daemonsets(ctx);
    let reaction = triggers::pod_change(&change, &all);
    let pod = match &change {
        Change::Added(p) | Change::Updated { new: p, .. } | Change::Deleted(p) => p,
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if matches!(change, Change::Deleted(_)) {
        lock(&ctx.overlaps_logged).remove(&uid);
    } else if reaction.overlapping && lock(&ctx.overlaps_logged).insert(uid) {
        // Upstream logs this user error on every event of the pod; once per pod is enough.
        let names: Vec<String> = reaction.queue.iter().map(|d| d.0.key()).collect();
        warn!(
            pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default()),
            daemonsets = ?names,
            "user error: more than one DaemonSet selects this pod; the first to adopt it owns it"
        );
    }
    // [difference] A status-only update of an owned pod may wait for its owner's next paced sync.
    let paced = match (&change, reaction.owner_update, reaction.queue.as_slice()) {
        (Change::Updated { old, new }, true, [ds]) => {
            lock(&ctx.sync_pacer).pod_updated(ds.0.uid(), old, new, Timestamp::now())
        }
        _ => None,
    };
    react(ctx, reaction, paced);
}

/// Node changes (§1.5): an add, a delete, and an update that changed the labels or taints push the
/// node's name into the node queue ([`triggers::node_queued`]); the node worker ([`node_sync`])
/// decides. The watch task does no more than that.
pub fn node_changed(queue: &NodeQueue, change: Change<CachedNode>) {
    if !triggers::node_queued(&change) {
        return;
    }
    match change {
        Change::Added(node) => queue.push(node.metadata.name.as_deref().unwrap_or_default(), None),
        Change::Updated { old, new } => {
            queue.push(new.metadata.name.as_deref().unwrap_or_default(), Some(old))
        }
        Change::Deleted(node) => {
            let name = node.metadata.name.clone().unwrap_or_default();
            queue.push(&name, Some(node))
        }
    }
}

/// The node worker for one queued node (upstream `syncNodeUpdate`): the node as the cache has it
/// now, the pods on it, and the DaemonSets the core says must look at it. A node no longer in the
/// cache queues the DaemonSets with pods there ([difference], `core::triggers::node_deleted`).
/// The cost is the number of DaemonSets plus the pods on that node.
pub fn node_sync(ctx: &Context, item: &node_queue::Item) {
    let name = item.name.as_str();
    let node = read(&ctx.caches.nodes).get("", name);
    let pods = read(&ctx.caches.pods).on_node(name);
    let all = daemonsets(ctx);
    let queue = match &node {
        Some(node) => triggers::node_sync(node, item.before.as_deref(), &all, &pods),
        None => triggers::node_deleted(&all, &pods),
    };
    for ds in queue {
        debug!(node = name, daemonset = %ds.0.key(), "node change queues DaemonSet");
        ctx.enqueue(&ds.0);
    }
}

/// Runs the node worker forever: one queued node at a time.
pub async fn node_worker(ctx: Arc<Context>, queue: Arc<NodeQueue>) {
    loop {
        let item = queue.take().await;
        node_sync(&ctx, &item);
    }
}

/// ControllerRevision changes (§1.3).
pub fn revision_changed(ctx: &Context, change: Change<ControllerRevision>) {
    let all = daemonsets(ctx);
    for ds in triggers::revision_change(&change, &all) {
        ctx.enqueue(&ds.0);
    }
}

/// DaemonSetRollout changes: an add, a delete or a spec change queues the DaemonSet of the same
/// name (`core::rollout::trigger`); status-only updates, the controller's own writes, queue nothing.
/// A policy that starts or stops decoding queues it too. A deleted policy's last written status
/// and gauges are forgotten.
pub fn rollout_changed(ctx: &Context, change: Change<CachedRollout>) {
    let mut queue = trigger::rollout_change(&change, |r: &CachedRollout| &r.meta);
    match &change {
        Change::Deleted(r) => {
            lock(&ctx.rollout_status).remove(r.uid());
            let m = &r.meta;
            ctx.metrics.forget_rollout_policy(&DaemonSetLabels::new(
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            ));
        }
        Change::Updated { old, new } if old.rollout.is_ok() != new.rollout.is_ok() => {
            queue = queue.or_else(|| {
                Some((
                    new.meta.namespace.clone().unwrap_or_default(),
                    new.meta.name.clone().unwrap_or_default(),
                ))
            });
        }
        _ => {}
    }
    if let Some((ns, name)) = queue
        && let Some(ds) = ctx.daemonset(&ns, &name)
    {
        debug!(daemonset = %ds.key(), "DaemonSetRollout change queues DaemonSet");
        ctx.enqueue(&ds);
    }
}
