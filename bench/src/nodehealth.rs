//! Which nodes lost their health during a turn, from a node watch: nodes unhealthy (not Ready, or
//! carrying the node lifecycle controller's not-ready/unreachable taints) when the turn starts, and
//! nodes seen healthy that later are not. On 2 cores the fake kubelets' lease renewals can fall
//! behind; the node lifecycle controller then marks nodes NotReady, taints them and marks their pods
//! not Ready. A turn in which that happened measured the fault (pods unavailable for reasons no
//! controller controls, status changing with every node), not only the controller, and the report
//! says so next to its figures.
//!
//! The watch also notes when each node was first seen healthy: for a joining node, the moment a
//! daemon pod can go there (kwok made it Ready and the node lifecycle controller lifted the not-ready
//! taint the API server put on it at creation), where the controller's part of the join starts.

use crate::pool;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Every node's last health, when it was first seen healthy, and the nodes that lost it.
#[derive(Debug, Default)]
pub struct Health {
    healthy: BTreeMap<String, bool>,
    /// When each node was first seen healthy: for a joining node, when it became schedulable for
    /// daemon pods (kwok made it Ready and the node lifecycle controller lifted its not-ready
    /// taint), the start of the controller's part of the join.
    first_healthy: BTreeMap<String, Instant>,
    lost: BTreeSet<String>,
    /// Whether the first list is in: nodes unhealthy in it count as lost (a turn that starts on
    /// nodes a fault left NotReady is measured on that fault too).
    synced: bool,
}

impl Health {
    /// One observation of `node`'s health. After the first list, only a node seen healthy before
    /// can lose its health: a joining node is unhealthy until kwok and the node lifecycle
    /// controller are done with it.
    pub fn observe(&mut self, node: &str, healthy: bool, at: Instant) {
        if healthy && !self.first_healthy.contains_key(node) {
            self.first_healthy.insert(node.to_string(), at);
        }
        let before = self.healthy.insert(node.to_string(), healthy);
        let was_healthy = before.unwrap_or(!self.synced);
        if was_healthy && !healthy {
            self.lost.insert(node.to_string());
        }
    }

    /// The first list is complete.
    pub fn synced(&mut self) {
        self.synced = true;
    }

    /// A node deleted: forgotten, so that a node of the same name created later starts afresh.
    pub fn forget(&mut self, node: &str) {
        self.healthy.remove(node);
        self.first_healthy.remove(node);
    }

    /// When `node` was first seen healthy (since it was created, or since the watch started).
    pub fn first_healthy(&self, node: &str) -> Option<Instant> {
        self.first_healthy.get(node).copied()
    }

    /// How many nodes lost their health since the watch started; `None` before the first list.
    pub fn lost(&self) -> Option<usize> {
        self.synced.then_some(self.lost.len())
    }
}

/// Watches every node until dropped.
#[derive(Debug)]
pub struct NodeHealth {
    state: Arc<Mutex<Health>>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeHealth {
    /// Starts the watch and returns once its first list is in (at most a minute; after that the
    /// figure stays unknown unless the list arrives later).
    pub async fn start(client: kube::Client) -> Self {
        let api: Api<Node> = Api::all(client);
        let state = Arc::new(Mutex::new(Health::default()));
        let s = state.clone();
        let listed = Arc::new(Notify::new());
        let l = listed.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                let Ok(mut h) = s.lock() else { return };
                match ev {
                    Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                        if let Some(name) = n.metadata.name.as_deref() {
                            h.observe(name, pool::is_healthy(&n), Instant::now());
                        }
                    }
                    Ok(watcher::Event::Delete(n)) => {
                        if let Some(name) = n.metadata.name.as_deref() {
                            h.forget(name);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        h.synced();
                        l.notify_one();
                    }
                    // A failed watch is listed again by the watcher's backoff; a node's health seen
                    // in that list is compared with what was seen before.
                    Ok(watcher::Event::Init) | Err(_) => {}
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(60), listed.notified()).await;
        Self { state, task }
    }

    /// How many nodes lost their health since [`NodeHealth::start`]; `None` if the watch never
    /// got its first list.
    pub fn lost(&self) -> Option<usize> {
        self.state.lock().ok().and_then(|h| h.lost())
    }

    /// When `node` was first seen healthy ([`Health::first_healthy`]).
    pub fn first_healthy(&self, node: &str) -> Option<Instant> {
        self.state.lock().ok().and_then(|h| h.first_healthy(node))
    }
}

impl Drop for NodeHealth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// "1 node", "3 nodes".
pub fn nodes(n: usize) -> String {
    if n == 1 {
        "1 node".into()
    } else {
        format!("{n} nodes")
    }
}

#[cfg(test)]
mod tests {
    use super::Health;
    use std::time::{Duration, Instant};

    #[test]
    fn only_a_node_seen_healthy_can_lose_its_health() {
        let mut h = Health::default();
        h.observe("a", true, Instant::now());
        assert_eq!(h.lost(), None, "unknown before the first list");
        h.synced();
        assert_eq!(h.lost(), Some(0));
        // A joining node: unhealthy, then healthy, is not a loss.
        h.observe("join-0", false, Instant::now());
        h.observe("join-0", true, Instant::now());
        assert_eq!(h.lost(), Some(0));
        // A healthy node going NotReady twice counts once.
        h.observe("a", false, Instant::now());
        h.observe("a", true, Instant::now());
        h.observe("a", false, Instant::now());
        assert_eq!(h.lost(), Some(1));
        // A node that stays healthy, or stays unhealthy, is not a loss.
        h.observe("b", true, Instant::now());
        h.observe("b", true, Instant::now());
        h.observe("c", false, Instant::now());
        h.observe("c", false, Instant::now());
        assert_eq!(h.lost(), Some(1));
        // A deleted node's name starts afresh.
        h.observe("d", true, Instant::now());
        h.forget("d");
        h.observe("d", false, Instant::now());
        assert_eq!(h.lost(), Some(1));
    }

    #[test]
    fn a_node_unhealthy_in_the_first_list_counts() {
        let mut h = Health::default();
        h.observe("a", false, Instant::now());
        h.observe("b", true, Instant::now());
        h.synced();
        assert_eq!(h.lost(), Some(1));
    }

    #[test]
    fn a_joining_node_is_schedulable_from_its_first_healthy_sighting() {
        let mut h = Health::default();
        h.synced();
        let t0 = Instant::now();
        h.observe("join-0", false, t0);
        assert_eq!(h.first_healthy("join-0"), None);
        h.observe("join-0", true, t0 + Duration::from_secs(3));
        h.observe("join-0", false, t0 + Duration::from_secs(4));
        h.observe("join-0", true, t0 + Duration::from_secs(5));
        assert_eq!(h.first_healthy("join-0"), Some(t0 + Duration::from_secs(3)));
        // A node of the same name created later starts afresh.
        h.forget("join-0");
        assert_eq!(h.first_healthy("join-0"), None);
        h.observe("join-0", true, t0 + Duration::from_secs(9));
        assert_eq!(h.first_healthy("join-0"), Some(t0 + Duration::from_secs(9)));
    }
}
