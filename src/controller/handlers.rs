//! Event handlers: which DaemonSets a change of a DaemonSet, pod, node or ControllerRevision
//! queues, and the expectation observations pod changes make (upstream's informer handlers,
//! §1.2–§1.5). The decisions themselves are in [`crate::core::triggers`].

use super::context::{Context, lock, read};
use super::daemonset_object::CachedDaemonSet;
use super::object_cache::Change;
use crate::core::selector;
use crate::core::status::min_ready_seconds;
use crate::core::triggers::{
    became_ready_requeue, controller_uid, labels_changed, node_needs_sync, node_update_is_relevant,
};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::debug;

/// The DaemonSet the object's controller reference points to, if it exists in the cache with the
/// same UID.
fn resolve_controller(ctx: &Context, meta: &ObjectMeta) -> Option<Arc<CachedDaemonSet>> {
    let r = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))?;
    if r.kind != "DaemonSet" {
        return None;
    }
    let ds = ctx.daemonset(meta.namespace.as_deref().unwrap_or_default(), &r.name)?;
    (ds.ds.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(ds)
}

/// DaemonSets of the object's namespace whose (non-empty, valid) selector matches its labels.
fn matching_daemonsets(ctx: &Context, meta: &ObjectMeta) -> Vec<Arc<CachedDaemonSet>> {
    let labels = meta.labels.clone().unwrap_or_default();
    if labels.is_empty() {
        return Vec::new();
    }
    let ns = meta.namespace.as_deref().unwrap_or_default();
    ctx.caches
        .daemonsets
        .state()
        .into_iter()
        .filter(|d| d.ds.metadata.namespace.as_deref().unwrap_or_default() == ns)
        .filter(|d| {
            d.ds.spec.as_ref().is_some_and(|s| {
                !selector::is_empty(&s.selector)
                    && selector::matches(&s.selector, Some(&labels)).unwrap_or(false)
            })
        })
        .collect()
}

fn owner_changed(old: &ObjectMeta, new: &ObjectMeta) -> bool {
    controller_uid(old) != controller_uid(new)
}

/// DaemonSet changes (§1.2).
pub fn daemonset_changed(ctx: &Context, change: Change<CachedDaemonSet>) {
    match change {
        Change::Added(ds) => ctx.enqueue(&ds),
        Change::Updated { old, new } => {
            if old.ds.metadata.uid != new.ds.metadata.uid {
                lock(&ctx.expectations).delete(&old.key());
            }
            ctx.enqueue(&new);
        }
        Change::Deleted(ds) => {
            lock(&ctx.expectations).delete(&ds.key());
            ctx.enqueue(&ds);
        }
    }
}

fn pod_deleted(ctx: &Context, pod: &Pod) {
    if let Some(ds) = resolve_controller(ctx, &pod.metadata) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        lock(&ctx.expectations).deletion_observed(&ds.key(), name);
        ctx.enqueue(&ds);
    }
}

/// Pod changes (§1.4): expectations and queueing.
pub fn pod_changed(ctx: &Context, change: Change<Pod>) {
    match change {
        Change::Added(pod) => {
            if pod.metadata.deletion_timestamp.is_some() {
                return pod_deleted(ctx, &pod);
            }
            if controller_uid(&pod.metadata).is_some() {
                if let Some(ds) = resolve_controller(ctx, &pod.metadata) {
                    debug!(daemonset = %ds.key(), pod = pod.metadata.name.as_deref().unwrap_or_default(), "pod creation observed");
                    lock(&ctx.expectations).creation_observed(&ds.key());
                    ctx.enqueue(&ds);
                }
                return;
            }
            for ds in matching_daemonsets(ctx, &pod.metadata) {
                ctx.enqueue(&ds);
            }
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            if new.metadata.deletion_timestamp.is_some() {
                return pod_deleted(ctx, &new);
            }
            let ref_changed = owner_changed(&old.metadata, &new.metadata);
            if ref_changed && let Some(ds) = resolve_controller(ctx, &old.metadata) {
                ctx.enqueue(&ds);
            }
            if controller_uid(&new.metadata).is_some() {
                if let Some(ds) = resolve_controller(ctx, &new.metadata) {
                    ctx.enqueue(&ds);
                    if let Some(delay) = became_ready_requeue(&old, &new, min_ready_seconds(&ds.ds))
                    {
                        ctx.enqueue_after(&ds, delay);
                    }
                }
                return;
            }
            if labels_changed(&old.metadata, &new.metadata) || ref_changed {
                for ds in matching_daemonsets(ctx, &new.metadata) {
                    ctx.enqueue(&ds);
                }
            }
        }
        Change::Deleted(pod) => pod_deleted(ctx, &pod),
    }
}

/// Node changes (§1.5): only label and taint changes of an existing node matter, and they queue
/// only the DaemonSets that must act on that node. The cost is the number of DaemonSets plus the
/// pods on that node.
pub fn node_changed(ctx: &Context, change: Change<Node>) {
    let node = match change {
        Change::Added(node) => node,
        Change::Updated { old, new } if node_update_is_relevant(&old, &new) => new,
        Change::Updated { .. } => return,
        // Upstream has no node delete handler: the pod garbage collector deletes the node's pods
        // and those deletions queue the owners. [difference] everynode also queues the DaemonSets
        // with pods there at once, so their status stops counting the node without waiting for
        // the pod garbage collector (docs/differences.md).
        Change::Deleted(node) => {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let pods = read(&ctx.caches.pods).on_node(name);
            for pod in pods {
                if let Some(ds) = resolve_controller(ctx, &pod.metadata) {
                    ctx.enqueue(&ds);
                }
            }
            return;
        }
    };
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let pods = read(&ctx.caches.pods).on_node(name);
    let mut scheduled: BTreeMap<(String, String), usize> = BTreeMap::new();
    for pod in &pods {
        if let Some(r) = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            && r.kind == "DaemonSet"
        {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            *scheduled.entry((ns, r.name.clone())).or_default() += 1;
        }
    }
    for ds in ctx.caches.daemonsets.state() {
        let k = (
            ds.ds.metadata.namespace.clone().unwrap_or_default(),
            ds.ds.metadata.name.clone().unwrap_or_default(),
        );
        let has_pod = scheduled.get(&k).copied().unwrap_or(0) > 0;
        if node_needs_sync(&ds.ds, &node, has_pod) {
            debug!(node = name, daemonset = %ds.key(), "node change queues DaemonSet");
            ctx.enqueue(&ds);
        }
    }
}

/// ControllerRevision changes (§1.3).
pub fn revision_changed(ctx: &Context, change: Change<ControllerRevision>) {
    match change {
        Change::Added(rev) => {
            if rev.metadata.deletion_timestamp.is_some() {
                if let Some(ds) = resolve_controller(ctx, &rev.metadata) {
                    ctx.enqueue(&ds);
                }
                return;
            }
            // [quirk] an owned revision's add does not queue its owner.
            if controller_uid(&rev.metadata).is_none() {
                for ds in matching_daemonsets(ctx, &rev.metadata) {
                    ctx.enqueue(&ds);
                }
            }
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            let ref_changed = owner_changed(&old.metadata, &new.metadata);
            if ref_changed && let Some(ds) = resolve_controller(ctx, &old.metadata) {
                ctx.enqueue(&ds);
            }
            if controller_uid(&new.metadata).is_some() {
                if let Some(ds) = resolve_controller(ctx, &new.metadata) {
                    ctx.enqueue(&ds);
                }
                return;
            }
            if labels_changed(&old.metadata, &new.metadata) || ref_changed {
                for ds in matching_daemonsets(ctx, &new.metadata) {
                    ctx.enqueue(&ds);
                }
            }
        }
        Change::Deleted(rev) => {
            if let Some(ds) = resolve_controller(ctx, &rev.metadata) {
                ctx.enqueue(&ds);
            }
        }
    }
}
