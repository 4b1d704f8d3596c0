//! Which nodes lost their health during a turn, from a node watch: a node seen healthy (Ready, and
//! without the node lifecycle controller's not-ready/unreachable taints) and later not. On 2 cores
//! the fake kubelets' lease renewals can fall behind; the node lifecycle controller then marks
//! nodes NotReady, taints them and marks their pods not Ready. A turn in which that happened
//! measured the fault (pods unavailable for reasons no controller controls, status changing with
//! every node), not the controller, and the report says so next to its figures.

use crate::pool;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Every node's last health and the nodes that went from healthy to unhealthy.
#[derive(Debug, Default)]
pub struct Health {
    healthy: BTreeMap<String, bool>,
    lost: BTreeSet<String>,
}

impl Health {
    /// One observation of `node`'s health. Only a node seen healthy before can lose its health: a
    /// joining node is unhealthy until kwok and the node lifecycle controller are done with it.
    pub fn observe(&mut self, node: &str, healthy: bool) {
        let before = self.healthy.insert(node.to_string(), healthy);
        if before == Some(true) && !healthy {
            self.lost.insert(node.to_string());
        }
    }

    /// A node deleted: forgotten, so that a node of the same name created later starts afresh.
    pub fn forget(&mut self, node: &str) {
        self.healthy.remove(node);
    }

    /// How many nodes lost their health since the watch started.
    pub fn lost(&self) -> usize {
        self.lost.len()
    }
}

/// Watches every node until dropped.
#[derive(Debug)]
pub struct NodeHealth {
    state: Arc<Mutex<Health>>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeHealth {
    /// Starts the watch; nodes are judged from their first event on.
    pub fn start(client: kube::Client) -> Self {
        let api: Api<Node> = Api::all(client);
        let state = Arc::new(Mutex::new(Health::default()));
        let s = state.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                let Ok(mut h) = s.lock() else { return };
                match ev {
                    Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                        if let Some(name) = n.metadata.name.as_deref() {
                            h.observe(name, pool::is_healthy(&n));
                        }
                    }
                    Ok(watcher::Event::Delete(n)) => {
                        if let Some(name) = n.metadata.name.as_deref() {
                            h.forget(name);
                        }
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
                }
            }
        });
        Self { state, task }
    }

    /// How many nodes lost their health since [`NodeHealth::start`].
    pub fn lost(&self) -> usize {
        self.state.lock().map(|h| h.lost()).unwrap_or(0)
    }
}

impl Drop for NodeHealth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn only_a_node_seen_healthy_can_lose_its_health() {
        let mut h = Health::default();
        // A joining node: unhealthy, then healthy, is not a loss.
        h.observe("join-0", false);
        h.observe("join-0", true);
        assert_eq!(h.lost(), 0);
        // A healthy node going NotReady twice counts once.
        h.observe("a", true);
        h.observe("a", false);
        h.observe("a", true);
        h.observe("a", false);
        assert_eq!(h.lost(), 1);
        // A node that stays healthy, or stays unhealthy, is not a loss.
        h.observe("b", true);
        h.observe("b", true);
        h.observe("c", false);
        h.observe("c", false);
        assert_eq!(h.lost(), 1);
        // A deleted node's name starts afresh.
        h.observe("d", true);
        h.forget("d");
        h.observe("d", false);
        assert_eq!(h.lost(), 1);
    }
}
