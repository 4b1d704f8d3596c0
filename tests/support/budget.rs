//! A watcher that checks a rollout's budget on every pod event of a DaemonSet for the whole rollout,
//! not only at the end: at most the allowed number of nodes without a Ready pod, never two live pods
//! of one revision on a node, and with surge at most two pods per node. The first violation fails the
//! test at [`BudgetWatcher::finish`].

use super::watch::InvariantWatcher;
use super::{TestEnv, pod_ready};
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};

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
/// `budget` over `nodes` (an [`InvariantWatcher`] running [`check`]).
pub struct BudgetWatcher(InvariantWatcher);

impl BudgetWatcher {
    pub fn start(env: &TestEnv, ds: &str, nodes: Vec<String>, budget: Budget) -> Self {
        Self(InvariantWatcher::start(
            env,
            &format!("app={ds}"),
            move |pods| check(pods, &nodes, budget),
        ))
    }

    /// Stops watching; panics with the first violation seen.
    pub fn finish(self) {
        let v = self.0.violation();
        self.0.stop();
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
