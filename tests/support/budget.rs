//! A watcher that checks a rollout's budget on every pod event of a DaemonSet for the whole rollout,
//! not only at the end: at most the allowed number of nodes without a Ready pod, never two live pods
//! of one revision on a node, and with surge at most two pods per node. The first violation fails the
//! test at [`BudgetWatcher::finish`].

use super::{TestEnv, pod_ready};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// What the budget watcher enforces on every event.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// maxSurge 0: at most this many nodes without a Ready, non-terminating pod.
    MaxUnavailable(usize),
    /// maxUnavailable 0: every node keeps a Ready pod; at most 2 pods per node, at most one of the
    /// new revision; at most this many nodes surging, i.e. with two pods one of which is not Ready
    /// (upstream's surge count: a node whose new pod is available only waits for its old pod's
    /// delete, which `syncNodes` sends after the creates of the same sync).
    MaxSurge(usize),
}

/// Watches the DaemonSet's pods from the moment it is started and records the first violation of
/// `budget` over `nodes`.
pub struct BudgetWatcher {
    violation: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BudgetWatcher {
    pub fn start(env: &TestEnv, ds: &str, nodes: Vec<String>, budget: Budget) -> Self {
        let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
        let violation = Arc::new(Mutex::new(None));
        let v = violation.clone();
        let cfg = watcher::Config::default().labels(&format!("app={ds}"));
        let task = tokio::spawn(async move {
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let mut relist: Option<BTreeMap<String, Pod>> = None;
            let mut stream = watcher::watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                match ev {
                    Event::Init => {
                        relist = Some(BTreeMap::new());
                        continue;
                    }
                    Event::InitApply(p) => {
                        relist
                            .get_or_insert_with(BTreeMap::new)
                            .insert(p.metadata.name.clone().unwrap_or_default(), p);
                        continue;
                    }
                    Event::InitDone => pods = relist.take().unwrap_or_default(),
                    Event::Apply(p) => {
                        pods.insert(p.metadata.name.clone().unwrap_or_default(), p);
                    }
                    Event::Delete(p) => {
                        pods.remove(&p.metadata.name.clone().unwrap_or_default());
                    }
                }
                if let Some(problem) = check(&pods, &nodes, budget) {
                    let mut slot = v.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.is_none() {
                        *slot = Some(problem);
                    }
                }
            }
        });
        Self { violation, task }
    }

    pub fn finish(self) {
        self.task.abort();
        let v = self
            .violation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert!(
            v.is_none(),
            "rollout budget violated: {}",
            v.unwrap_or_default()
        );
    }
}

pub fn check(pods: &BTreeMap<String, Pod>, nodes: &[String], budget: Budget) -> Option<String> {
    let mut per_node: BTreeMap<&str, Vec<&Pod>> =
        nodes.iter().map(|n| (n.as_str(), Vec::new())).collect();
    for p in pods
        .values()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && let Some(v) = per_node.get_mut(n)
        {
            v.push(p);
        }
    }
    let unavailable = per_node
        .values()
        .filter(|ps| !ps.iter().any(|p| pod_ready(p)))
        .count();
    let describe = || {
        per_node
            .iter()
            .map(|(n, ps)| {
                format!(
                    "{n}:{}",
                    ps.iter()
                        .map(|p| if pod_ready(p) { "R" } else { "-" })
                        .collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let duplicate = per_node.values().any(|ps| {
        let hashes: BTreeSet<_> = ps
            .iter()
            .map(|p| super::revision_hash(&p.metadata).cloned())
            .collect();
        hashes.len() < ps.len()
    });
    if duplicate {
        return Some(format!(
            "two pods of one revision on a node: {}",
            describe()
        ));
    }
    match budget {
        Budget::MaxUnavailable(max) if unavailable > max => Some(format!(
            "{unavailable} nodes unavailable > {max}: {}",
            describe()
        )),
        Budget::MaxSurge(max) if unavailable > 0 => Some(format!(
            "{unavailable} nodes unavailable with maxUnavailable 0: {} (surge {max})",
            describe()
        )),
        Budget::MaxSurge(max) => {
            let doubled = per_node
                .values()
                .filter(|ps| ps.len() == 2 && !ps.iter().all(|p| pod_ready(p)))
                .count();
            (per_node.values().any(|ps| ps.len() > 2) || doubled > max)
                .then(|| format!("surge beyond {max}: {}", describe()))
        }
        _ => None,
    }
}
