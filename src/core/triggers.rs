//! Which watch events should sync which DaemonSet, and which expectations they satisfy (upstream's
//! informer handlers and node worker, §1.2–§1.5), as pure decisions over the old and new objects and
//! the cached DaemonSets. The shell (`controller::handlers`) only routes events and applies the
//! [`Reaction`].

use super::ownership::{controller_ref, controller_uid};
use super::placement::{Placement, WithPlacementRules, placement};
use super::pod_state::is_ready;
use super::pods_by_node::target_node_name;
use super::selector;
use super::status::min_ready_seconds;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// What changed in a cache (an informer's add, update or delete).
#[derive(Debug, Clone)]
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

/// What a change makes the controller do. DaemonSets are given as references into the slice the
/// decision was given.
#[derive(Debug)]
pub struct Reaction<'a, T> {
    /// Sync these now (a DaemonSet may appear more than once; the queue deduplicates).
    pub queue: Vec<&'a T>,
    /// Sync this one again after the delay (minReadySeconds availability).
    pub queue_after: Option<(&'a T, Duration)>,
    /// A create of this DaemonSet on this node was observed.
    pub creation_observed: Option<(&'a T, String)>,
    /// The delete of this pod (by name) of this DaemonSet was observed.
    pub deletion_observed: Option<(&'a T, String)>,
    /// More than one DaemonSet selects this orphan (a user error upstream logs, §9.2).
    pub overlapping: bool,
    /// The change is an update of a pod its owner keeps, and `queue` holds only that owner: the
    /// shell may let it wait for the owner's next paced sync (`core::sync_pacing`).
    pub owner_update: bool,
}

impl<T> Default for Reaction<'_, T> {
    fn default() -> Self {
        Self {
            queue: Vec::new(),
            queue_after: None,
            creation_observed: None,
            deletion_observed: None,
            overlapping: false,
            owner_update: false,
        }
    }
}

impl<'a, T> Reaction<'a, T> {
    fn queue(queue: Vec<&'a T>) -> Self {
        Self {
            queue,
            ..Self::default()
        }
    }
}

fn ds_of<T: Borrow<DaemonSet>>(t: &T) -> &DaemonSet {
    t.borrow()
}

/// The DaemonSet the object's controller reference points to: same namespace, kind DaemonSet, name
/// and UID (upstream `resolveControllerRef`).
pub fn resolve_controller<'a, T: Borrow<DaemonSet>>(
    meta: &ObjectMeta,
    daemonsets: &'a [T],
) -> Option<&'a T> {
    let r = controller_ref(meta)?;
    if r.kind != "DaemonSet" {
        return None;
    }
    let ns = meta.namespace.as_deref().unwrap_or_default();
    daemonsets.iter().find(|d| {
        let m = &ds_of(*d).metadata;
        m.namespace.as_deref().unwrap_or_default() == ns
            && m.name.as_deref() == Some(r.name.as_str())
            && m.uid.as_deref() == Some(r.uid.as_str())
    })
}

/// DaemonSets of the object's namespace whose (non-empty, valid) selector matches its labels
/// (upstream `getDaemonSetsForPod` and its revision twin). An object without labels matches none.
pub fn matching_daemonsets<'a, T: Borrow<DaemonSet>>(
    meta: &ObjectMeta,
    daemonsets: &'a [T],
) -> Vec<&'a T> {
    let Some(labels) = meta.labels.as_ref().filter(|l| !l.is_empty()) else {
        return Vec::new();
    };
    let ns = meta.namespace.as_deref().unwrap_or_default();
    daemonsets
        .iter()
        .filter(|d| {
            let d = ds_of(*d);
            d.metadata.namespace.as_deref().unwrap_or_default() == ns
                && d.spec.as_ref().is_some_and(|s| {
                    !selector::is_empty(&s.selector)
                        && selector::matches(&s.selector, Some(labels)).unwrap_or(false)
                })
        })
        .collect()
}

fn owner_changed(old: &ObjectMeta, new: &ObjectMeta) -> bool {
    controller_uid(old) != controller_uid(new)
}

/// An orphan's reaction: every matching DaemonSet is queued.
fn orphan<'a, T: Borrow<DaemonSet>>(meta: &ObjectMeta, daemonsets: &'a [T]) -> Reaction<'a, T> {
    let queue = matching_daemonsets(meta, daemonsets);
    Reaction {
        overlapping: queue.len() > 1,
        ..Reaction::queue(queue)
    }
}

/// The delete path of a pod (§1.4): its owner observes the deletion and is queued.
fn pod_deleted<'a, T: Borrow<DaemonSet>>(pod: &CachedPod, daemonsets: &'a [T]) -> Reaction<'a, T> {
    match resolve_controller(&pod.metadata, daemonsets) {
        Some(ds) => Reaction {
            queue: vec![ds],
            deletion_observed: Some((ds, pod.metadata.name.clone().unwrap_or_default())),
            ..Reaction::default()
        },
        None => Reaction::default(),
    }
}

/// Pod changes (§1.4): expectations and queueing. `daemonsets` are the cached DaemonSets (any
/// namespace; only the pod's own are considered).
pub fn pod_change<'a, T: Borrow<DaemonSet>>(
    change: &Change<CachedPod>,
    daemonsets: &'a [T],
) -> Reaction<'a, T> {
    match change {
        Change::Added(pod) => {
            if pod.metadata.deletion_timestamp.is_some() {
                return pod_deleted(pod, daemonsets);
            }
            if controller_uid(&pod.metadata).is_some() {
                return match resolve_controller(&pod.metadata, daemonsets) {
                    Some(ds) => Reaction {
                        queue: vec![ds],
                        creation_observed: Some((ds, target_node_name(pod).unwrap_or_default())),
                        ..Reaction::default()
                    },
                    None => Reaction::default(),
                };
            }
            orphan(&pod.metadata, daemonsets)
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return Reaction::default();
            }
            if new.metadata.deletion_timestamp.is_some() {
                return pod_deleted(new, daemonsets);
            }
            let ref_changed = owner_changed(&old.metadata, &new.metadata);
            let mut reaction = Reaction::default();
            if ref_changed && let Some(ds) = resolve_controller(&old.metadata, daemonsets) {
                reaction.queue.push(ds);
            }
            if controller_uid(&new.metadata).is_some() {
                if let Some(ds) = resolve_controller(&new.metadata, daemonsets) {
                    reaction.owner_update = !ref_changed;
                    reaction.queue.push(ds);
                    let min_ready = min_ready_seconds(ds_of(ds));
                    reaction.queue_after =
                        became_ready_requeue(old, new, min_ready).map(|delay| (ds, delay));
                }
                return reaction;
            }
            if labels_changed(&old.metadata, &new.metadata) || ref_changed {
                let orphan = orphan(&new.metadata, daemonsets);
                reaction.queue.extend(orphan.queue);
                reaction.overlapping = orphan.overlapping;
            }
            reaction
        }
        Change::Deleted(pod) => pod_deleted(pod, daemonsets),
    }
}

/// ControllerRevision changes (§1.3): queueing only.
pub fn revision_change<'a, T: Borrow<DaemonSet>>(
    change: &Change<ControllerRevision>,
    daemonsets: &'a [T],
) -> Vec<&'a T> {
    match change {
        Change::Added(rev) => {
            if rev.metadata.deletion_timestamp.is_some() {
                return resolve_controller(&rev.metadata, daemonsets)
                    .into_iter()
                    .collect();
            }
            // [quirk] an owned revision's add does not queue its owner.
            if controller_uid(&rev.metadata).is_none() {
                return matching_daemonsets(&rev.metadata, daemonsets);
            }
            Vec::new()
        }
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return Vec::new();
            }
            let ref_changed = owner_changed(&old.metadata, &new.metadata);
            let mut queue = Vec::new();
            if ref_changed && let Some(ds) = resolve_controller(&old.metadata, daemonsets) {
                queue.push(ds);
            }
            if controller_uid(&new.metadata).is_some() {
                queue.extend(resolve_controller(&new.metadata, daemonsets));
                return queue;
            }
            if labels_changed(&old.metadata, &new.metadata) || ref_changed {
                queue.extend(matching_daemonsets(&new.metadata, daemonsets));
            }
            queue
        }
        Change::Deleted(rev) => resolve_controller(&rev.metadata, daemonsets)
            .into_iter()
            .collect(),
    }
}

/// Node changes (§1.5) decided at once, as [`node_queued`] and the node worker
/// ([`node_sync`], [`node_deleted`]) decide them in turn: an added node, or an existing node whose
/// labels or taints changed, queues the DaemonSets that must act on it ([`node_needs_sync`]), and
/// those whose misscheduled count it changes ([`misscheduled_may_change`]); `pods_on_node` are the
/// pods bound or targeted to it.
pub fn node_change<'a, T: WithPlacementRules>(
    change: &Change<CachedNode>,
    daemonsets: &'a [T],
    pods_on_node: &[Arc<CachedPod>],
) -> Vec<&'a T> {
    if !node_queued(change) {
        return Vec::new();
    }
    match change {
        Change::Added(node) => node_sync(node, None, daemonsets, pods_on_node),
        Change::Updated { old, new } => node_sync(new, Some(old), daemonsets, pods_on_node),
        Change::Deleted(_) => node_deleted(daemonsets, pods_on_node),
    }
}

/// Whether a node watch event goes into the node queue (upstream's node handlers, §1.5): every add,
/// an update only when the labels or the taints changed ([`node_update_is_relevant`]), and
/// [difference] every delete ([`node_deleted`]).
pub fn node_queued(change: &Change<CachedNode>) -> bool {
    match change {
        Change::Added(_) | Change::Deleted(_) => true,
        Change::Updated { old, new } => node_update_is_relevant(old, new),
    }
}

/// The node worker's decision for a node in the cache (upstream `syncNodeUpdate`, §1.5): the
/// DaemonSets that must act on `node` ([`node_needs_sync`]) and, [difference], those whose
/// misscheduled count it changes since `old` ([`misscheduled_may_change`]; `None` for a node added
/// since). `pods_on_node` are the pods bound or targeted to it; a DaemonSet is scheduled there when
/// one of them names it as controller. Each DaemonSet's placement rules are compiled already.
pub fn node_sync<'a, T: WithPlacementRules>(
    node: &CachedNode,
    old: Option<&CachedNode>,
    daemonsets: &'a [T],
    pods_on_node: &[Arc<CachedPod>],
) -> Vec<&'a T> {
    // DaemonSets (namespace, name) with at least one pod on the node, by controller reference.
    let scheduled: BTreeSet<(&str, &str)> = pods_on_node
        .iter()
        .filter_map(|pod| {
            let r = controller_ref(&pod.metadata).filter(|r| r.kind == "DaemonSet")?;
            Some((
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                r.name.as_str(),
            ))
        })
        .collect();
    daemonsets
        .iter()
        .filter(|t| {
            let d = ds_of(*t);
            let m = &d.metadata;
            let key = (
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            );
            let scheduled = scheduled.contains(&key);
            let rules = t.placement_rules();
            let now = rules.place(node);
            needs_sync(d, now, scheduled)
                || scheduled && should_run_flipped(now, old.map(|o| rules.place(o)))
        })
        .collect()
}

/// [difference] The node worker's decision for a node no longer in the cache: the DaemonSets with
/// pods there are queued at once, so their status stops counting the node without waiting for the
/// pod garbage collector; upstream has no node delete handler (docs/differences.md).
pub fn node_deleted<'a, T: Borrow<DaemonSet>>(
    daemonsets: &'a [T],
    pods_on_node: &[Arc<CachedPod>],
) -> Vec<&'a T> {
    let mut queue: Vec<&T> = Vec::new();
    for pod in pods_on_node {
        if let Some(ds) = resolve_controller(&pod.metadata, daemonsets)
            && !queue.iter().any(|q| std::ptr::eq(*q, ds))
        {
            queue.push(ds);
        }
    }
    queue
}

/// A node update matters only when its labels or taints changed (status, allocatable, conditions
/// and heartbeats do not).
pub fn node_update_is_relevant(old: &CachedNode, new: &CachedNode) -> bool {
    // No labels and an empty map are the same labels (no copy: this runs for every node update).
    fn labels(n: &CachedNode) -> Option<&BTreeMap<String, String>> {
        n.metadata.labels.as_ref().filter(|l| !l.is_empty())
    }
    labels(old) != labels(new) || old.taints() != new.taints()
}

/// The node worker's rule (§1.5): sync `ds` for `node` when a pod must be created
/// (`shouldRun && !scheduled`), deleted (`!shouldContinueRunning && scheduled`), or the misscheduled
/// count may need correcting (`scheduled && numberMisscheduled > 0`). `scheduled` = the DaemonSet has
/// at least one pod on the node.
pub fn node_needs_sync(ds: &DaemonSet, node: &CachedNode, scheduled: bool) -> bool {
    needs_sync(ds, placement(node, ds), scheduled)
}

fn needs_sync(ds: &DaemonSet, p: Placement, scheduled: bool) -> bool {
    let misscheduled = ds
        .status
        .as_ref()
        .map(|s| s.number_misscheduled)
        .unwrap_or(0);
    let must_create = p.should_run && !scheduled;
    let must_delete = !p.should_continue_running && scheduled;
    let fix_misscheduled = scheduled && misscheduled > 0;
    must_create || must_delete || fix_misscheduled
}

/// [difference] Whether a change of `node` (from `old`, `None` for a node just added) changes the
/// DaemonSet's `numberMisscheduled`: it has a pod on the node (`scheduled`) and whether the node
/// qualifies for a new pod (`shouldRun`) flipped. That count is the number of nodes with a pod where
/// `shouldRun` is false, so a node update changes it exactly then.
///
/// Upstream's three conditions ([`node_needs_sync`]) miss the NoSchedule taint on a node that keeps
/// its pod (`shouldRun` false, `shouldContinueRunning` true, misscheduled still 0): nothing is
/// queued and `kubectl get ds` shows a stale MISSCHEDULED until the DaemonSet's next sync. This
/// condition reads no cached status, so it also catches the way back when the status that counted
/// the node has not reached the cache yet. It only queues syncs, never decides what they do
/// (docs/differences.md).
pub fn misscheduled_may_change(
    ds: &DaemonSet,
    old: Option<&CachedNode>,
    node: &CachedNode,
    scheduled: bool,
) -> bool {
    scheduled && should_run_flipped(placement(node, ds), old.map(|o| placement(o, ds)))
}

/// Whether `shouldRun` differs between the node's placement now and before (`None`: the node
/// was just added, so it flipped from "no node" exactly when the node does not qualify).
fn should_run_flipped(now: Placement, before: Option<Placement>) -> bool {
    match before {
        Some(before) => before.should_run != now.should_run,
        None => !now.should_run,
    }
}

/// When a pod turned Ready and the DaemonSet has minReadySeconds, upstream syncs again after
/// `minReadySeconds + 1 s` so availability is counted without another event.
pub fn became_ready_requeue(
    old: &CachedPod,
    new: &CachedPod,
    min_ready_seconds: i32,
) -> Option<Duration> {
    (min_ready_seconds > 0 && !is_ready(old) && is_ready(new))
        .then(|| Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0) + 1))
}

/// Whether the labels of an object changed.
pub fn labels_changed(old: &ObjectMeta, new: &ObjectMeta) -> bool {
    old.labels.clone().unwrap_or_default() != new.labels.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
