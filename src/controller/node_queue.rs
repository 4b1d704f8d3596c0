//! The node queue (upstream `nodeUpdateQueue`, §1.5): node watch events push the node's name, and a
//! worker takes each name once, however often it was pushed while it waited, reads the node from the
//! cache and asks the core which DaemonSets to queue (`core::triggers::node_sync`). The watch task
//! only pushes; the O(DaemonSets) decision runs on the worker. Nothing is taken before every cache
//! has synced: names pushed earlier wait in the queue.
//!
//! Hand-written rather than kube-runtime's scheduler, which deduplicates by delay, not by name.
//!
//! One worker, not upstream's `ConcurrentDaemonSetSyncs`: the decision for a node is pure,
//! in-memory and takes microseconds per DaemonSet (`everynode-core-bench`), issues no request, and
//! a single worker never decides the same node twice at once; upstream runs several workers because
//! its DaemonSet workers and node workers share that setting.

use crate::core::cached_node::CachedNode;
use crate::runtime::metrics::Metrics;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// A node name taken from the queue.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    /// The node as it was before the first change since it was last taken (`None` when it was
    /// added since): what [`crate::core::triggers::misscheduled_may_change`] compares with.
    pub before: Option<Arc<CachedNode>>,
}

#[derive(Debug, Default)]
struct State {
    /// Names in push order, each at most once.
    order: VecDeque<String>,
    /// The waiting names with their node before the first change.
    pending: HashMap<String, Option<Arc<CachedNode>>>,
    /// Every cache has synced: the worker may take names.
    synced: bool,
}

/// A deduplicating queue of node names with one consumer.
pub struct NodeQueue {
    state: Mutex<State>,
    wake: Notify,
    metrics: Arc<Metrics>,
}

impl NodeQueue {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::default(),
            wake: Notify::new(),
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `name`, unless it is waiting already (then the first push's `before` is kept).
    pub fn push(&self, name: &str, before: Option<Arc<CachedNode>>) {
        let depth = {
            let mut state = self.state();
            if state.pending.contains_key(name) {
                return;
            }
            state.pending.insert(name.to_string(), before);
            state.order.push_back(name.to_string());
            state.order.len()
        };
        self.metrics.set_node_queue_depth(depth);
        self.wake.notify_one();
    }

    /// Every cache has synced: names may be taken from now on.
    pub fn caches_synced(&self) {
        self.state().synced = true;
        self.wake.notify_one();
    }

    /// The number of waiting names.
    pub fn len(&self) -> usize {
        self.state().order.len()
    }

    /// No name waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest waiting name, if the caches have synced.
    fn try_take(&self) -> Option<Item> {
        let (item, depth) = {
            let mut state = self.state();
            if !state.synced {
                return None;
            }
            let name = state.order.pop_front()?;
            let before = state.pending.remove(&name).flatten();
            (Item { name, before }, state.order.len())
        };
        self.metrics.set_node_queue_depth(depth);
        Some(item)
    }

    /// Waits for the next name (after the caches have synced). For one consumer: a push between
    /// an empty look and the wait leaves a permit, so no push is missed.
    pub async fn take(&self) -> Item {
        loop {
            if let Some(item) = self.try_take() {
                return item;
            }
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn queue() -> NodeQueue {
        NodeQueue::new(Arc::new(Metrics::new()))
    }

    fn node(name: &str, label: &str) -> Arc<CachedNode> {
        let mut n = CachedNode::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some([("v".to_string(), label.to_string())].into());
        Arc::new(n)
    }

    fn take_now(q: &NodeQueue) -> Option<Item> {
        q.take().now_or_never()
    }

    #[test]
    fn a_name_pushed_twice_before_it_is_taken_is_taken_once_with_its_first_before() {
        let q = queue();
        q.caches_synced();
        q.push("a", Some(node("a", "first")));
        q.push("b", None);
        q.push("a", Some(node("a", "second")));
        assert_eq!(q.len(), 2);
        let a = take_now(&q).unwrap_or_else(|| panic!("a waits"));
        assert_eq!(a.name, "a");
        let label = a.before.and_then(|n| n.metadata.labels.clone());
        assert_eq!(
            label.and_then(|l| l.get("v").cloned()).as_deref(),
            Some("first")
        );
        assert_eq!(take_now(&q).map(|i| i.name).as_deref(), Some("b"));
        assert!(take_now(&q).is_none(), "every name was taken once");
        // Taken, a name can be queued again.
        q.push("a", None);
        assert_eq!(take_now(&q).map(|i| i.name).as_deref(), Some("a"));
    }

    #[test]
    fn nothing_is_taken_before_the_caches_have_synced() {
        let q = queue();
        q.push("a", None);
        q.push("b", None);
        assert!(take_now(&q).is_none(), "taken before the caches synced");
        assert_eq!(q.len(), 2, "the names wait");
        q.caches_synced();
        assert_eq!(take_now(&q).map(|i| i.name).as_deref(), Some("a"));
        assert_eq!(take_now(&q).map(|i| i.name).as_deref(), Some("b"));
    }

    #[test]
    fn the_depth_gauge_follows_the_queue() {
        let metrics = Arc::new(Metrics::new());
        let q = NodeQueue::new(metrics.clone());
        q.push("a", None);
        q.push("b", None);
        q.push("a", None);
        let text = metrics.encode().unwrap_or_default();
        assert!(text.contains("everynode_node_queue_depth 2"), "{text}");
        q.caches_synced();
        let _ = take_now(&q);
        let text = metrics.encode().unwrap_or_default();
        assert!(text.contains("everynode_node_queue_depth 1"), "{text}");
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_on_a_push() {
        let q = Arc::new(queue());
        q.caches_synced();
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.take().await.name }
        });
        tokio::task::yield_now().await;
        q.push("late", None);
        let name = worker.await.unwrap_or_else(|e| panic!("worker: {e}"));
        assert_eq!(name, "late");
    }
}
