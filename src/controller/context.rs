//! What every sync shares: the client, the caches, expectations, the failed-pod backoff, the event
//! sink and the work queue.

use super::daemonset_object::CachedDaemonSet;
use super::events::EventSink;
use super::object_cache::ObjectCache;
use super::pod_index::PodIndex;
use crate::core::backoff::FailedPodBackoff;
use crate::core::expectations::Expectations;
use futures::channel::mpsc;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The informer-like caches. Locks are held only while reading or applying one event, never across
/// an await.
pub struct Caches {
    pub daemonsets: Store<CachedDaemonSet>,
    pub pods: RwLock<PodIndex>,
    pub nodes: RwLock<ObjectCache<Node>>,
    pub revisions: RwLock<ObjectCache<ControllerRevision>>,
}

pub struct Context {
    pub client: kube::Client,
    pub caches: Caches,
    pub expectations: Mutex<Expectations>,
    pub backoff: Mutex<FailedPodBackoff>,
    pub events: EventSink,
    pub queue: mpsc::UnboundedSender<ObjectRef<CachedDaemonSet>>,
    /// Consecutive failed syncs per DaemonSet key, for the rate-limited retry.
    pub failures: Mutex<HashMap<String, u32>>,
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
        let _ = self.queue.unbounded_send(ObjectRef::from_obj(ds));
    }

    /// Queues a sync of `ds` after `delay`.
    pub fn enqueue_after(&self, ds: &CachedDaemonSet, delay: Duration) {
        let queue = self.queue.clone();
        let r = ObjectRef::from_obj(ds);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = queue.unbounded_send(r);
        });
    }

    /// The cached DaemonSet `namespace/name`.
    pub fn daemonset(&self, namespace: &str, name: &str) -> Option<Arc<CachedDaemonSet>> {
        self.caches
            .daemonsets
            .get(&ObjectRef::new(name).within(namespace))
    }
}
