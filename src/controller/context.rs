//! What every sync shares: the client, the caches, expectations, the failed-pod backoff, the event
//! sink and what it last said, the work queue, the metrics, the readiness state, the rollout
//! policies' last written status, the DaemonSets' last status writes and their last syncs.

use super::daemonset_object::CachedDaemonSet;
use super::events::EventSink;
use super::object_cache::ObjectCache;
use super::owner_index::RevisionIndex;
use super::pod_index::PodIndex;
use super::rollouts::CachedRollout;
use super::workers::Queue;
use crate::api::DaemonSetRolloutStatus;
use crate::core::backoff::FailedPodBackoff;
use crate::core::cached_node::CachedNode;
use crate::core::create_pacing::CreatePacing;
use crate::core::expectations::Expectations;
use crate::core::said::Said;
use crate::core::status_pacing::StatusPacer;
use crate::core::sync_pacing::SyncPacer;
use crate::runtime::metrics::{DaemonSetLabels, Metrics};
use crate::runtime::readiness::Readiness;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The informer-like caches. Locks are held only while reading or applying one event, never across
/// an await.
pub struct Caches {
    pub daemonsets: Store<CachedDaemonSet>,
    pub pods: RwLock<PodIndex>,
    pub nodes: RwLock<ObjectCache<CachedNode>>,
    pub revisions: RwLock<RevisionIndex>,
    /// DaemonSetRollout policies (empty while the CRD is not served).
    pub rollouts: RwLock<ObjectCache<CachedRollout>>,
}

pub struct Context {
    pub client: kube::Client,
    pub caches: Caches,
    pub expectations: Mutex<Expectations>,
    pub backoff: Mutex<FailedPodBackoff>,
    pub events: EventSink,
    /// What the controller's own warnings last said about each DaemonSet (`core::said`).
    pub said: Mutex<Said>,
    pub queue: Arc<Queue>,
    /// Consecutive failed syncs per DaemonSet key, for the rate-limited retry.
    pub failures: Mutex<HashMap<String, u32>>,
    /// UIDs of pods selected by several DaemonSets that were already logged (until deleted).
    pub overlaps_logged: Mutex<std::collections::HashSet<String>>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// The DaemonSetRollout status this leader last wrote, by the policy's UID: the `previous` of
    /// the next plan (the cache lags the leader's own writes). Empty on a new leader.
    pub rollout_status: Mutex<HashMap<String, DaemonSetRolloutStatus>>,
    /// How syncs pace their creates (`--create-pacing`).
    pub pacing: CreatePacing,
    /// When each DaemonSet's status was last written, and how far apart counters-only writes go
    /// (`--status-write-interval`, `core::status_pacing`).
    pub status_pacer: Mutex<StatusPacer>,
    /// When each DaemonSet was last synced and whether it was quiet: which pod events may wait for
    /// its next paced sync (`--status-write-interval`, `core::sync_pacing`).
    pub sync_pacer: Mutex<SyncPacer>,
}

/// Poisoned locks only follow a panic elsewhere; the data is still usable.
pub fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
pub fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    /// Queues a sync of `ds`.
    pub fn enqueue(&self, ds: &CachedDaemonSet) {
        self.queue.add(ds.key());
    }

    /// Queues a sync of `ds` after `delay`, whatever else is queued for it meanwhile. A timer of its
    /// own rather than [`Queue::add_after`], which keeps only the earliest time per DaemonSet (right
    /// for a sync's own requeue, which the next sync computes again): a pod that became ready needs
    /// a sync `minReadySeconds` later even when an earlier one is due, since only the pod handler
    /// knows that time (a surge pod's availability is not in the status counters).
    pub fn enqueue_after(&self, ds: &CachedDaemonSet, delay: Duration) {
        let queue = self.queue.clone();
        let key = ds.key();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// The cached DaemonSet of key `namespace/name`.
    pub fn daemonset_by_key(&self, key: &str) -> Option<Arc<CachedDaemonSet>> {
        let (namespace, name) = key.split_once('/')?;
        self.daemonset(namespace, name)
    }

    /// The cached DaemonSet `namespace/name`.
    pub fn daemonset(&self, namespace: &str, name: &str) -> Option<Arc<CachedDaemonSet>> {
        self.caches
            .daemonsets
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// Refreshes the outstanding-expectations gauges.
    pub fn observe_expectations(&self) {
        let waiting = lock(&self.expectations).waiting(crate::core::Timestamp::now());
        self.metrics.set_expectations(waiting);
    }
}

/// The metric labels of a DaemonSet.
pub fn ds_labels(ds: &CachedDaemonSet) -> DaemonSetLabels {
    DaemonSetLabels::new(
        ds.ds.metadata.namespace.as_deref().unwrap_or_default(),
        ds.ds.metadata.name.as_deref().unwrap_or_default(),
    )
}
