//! A recorder of a DaemonSet's pods for rollout tests: every pod the watch shows (node, revision hash,
//! UID) with the times, in seconds since the recorder started, at which it was first seen, first seen
//! Ready, first seen not Ready after that, and first seen deleting or gone; its highest restart count
//! and the container waiting reasons it showed. Ordering queries answer "when did node X's update
//! start", "when was every node of set S updated and Ready", "which nodes ever ran revision H"; the
//! timeline prints what happened, for failures and for the closing note's timings.
//!
//! Times are the recorder's own observation times (watch events arrive in the API server's order), so
//! comparisons between them are exact up to the watch's delivery delay, which is the same for all.

use super::{TestEnv, pod_ready, revision_hash};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One pod as the recorder saw it over its life.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRecord {
    pub name: String,
    pub uid: String,
    /// `spec.nodeName` ("" while unbound).
    pub node: String,
    /// The `controller-revision-hash` label.
    pub hash: String,
    /// First seen (0.0 for pods that existed when the recorder started).
    pub seen: f64,
    /// It existed when the recorder started.
    pub preexisting: bool,
    /// First seen Ready.
    pub ready: Option<f64>,
    /// First seen not Ready after having been Ready.
    pub unready: Option<f64>,
    /// First seen with a deletionTimestamp, or gone.
    pub deleted: Option<f64>,
    /// Highest sum of its containers' restart counts.
    pub restarts: i32,
    /// Container waiting reasons it showed (e.g. CrashLoopBackOff).
    pub waiting: BTreeSet<String>,
}

impl PodRecord {
    /// Not seen deleting or gone.
    pub fn live(&self) -> bool {
        self.deleted.is_none()
    }
}

#[derive(Default)]
struct State {
    /// By UID, in first-seen order.
    pods: Vec<PodRecord>,
    /// (time, what) for every change, in order.
    log: Vec<(f64, String)>,
    /// Ready at the last observation, by UID.
    ready_now: BTreeMap<String, bool>,
    synced: bool,
}

/// Records every pod event of a DaemonSet (pods labelled `app=<ds>`, as [`super::daemonset`] makes
/// them) from the moment it is started.
pub struct RolloutWatch {
    state: Arc<Mutex<State>>,
    start: Instant,
    task: tokio::task::JoinHandle<()>,
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

fn waiting_reasons(p: &Pod) -> BTreeSet<String> {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .collect()
        })
        .unwrap_or_default()
}

impl State {
    fn observe(&mut self, p: &Pod, t: f64, preexisting: bool) {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let i = match self.pods.iter().position(|r| r.uid == uid) {
            Some(i) => i,
            None => {
                let r = PodRecord {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    uid: uid.clone(),
                    node: node.clone(),
                    hash: revision_hash(&p.metadata).cloned().unwrap_or_default(),
                    seen: if preexisting { 0.0 } else { t },
                    preexisting,
                    ..Default::default()
                };
                self.log.push((
                    r.seen,
                    format!(
                        "{} {} created on {} ({})",
                        r.name,
                        short(&r.uid),
                        node,
                        r.hash
                    ),
                ));
                self.pods.push(r);
                self.pods.len() - 1
            }
        };
        let t = if preexisting { 0.0 } else { t };
        let ready = pod_ready(p);
        let was_ready = self.ready_now.insert(uid, ready).unwrap_or(false);
        let r = &mut self.pods[i];
        let mut changes = Vec::new();
        if r.node.is_empty() && !node.is_empty() {
            r.node = node;
            changes.push(format!("bound to {}", r.node));
        }
        if ready && r.ready.is_none() {
            r.ready = Some(t);
            changes.push("Ready".to_string());
        }
        if !ready && was_ready && r.unready.is_none() {
            r.unready = Some(t);
            changes.push("not Ready".to_string());
        }
        if p.metadata.deletion_timestamp.is_some() && r.deleted.is_none() {
            r.deleted = Some(t);
            changes.push("deleting".to_string());
        }
        let n = restarts(p);
        if n > r.restarts {
            r.restarts = n;
            changes.push(format!("{n} restarts"));
        }
        for w in waiting_reasons(p) {
            if r.waiting.insert(w.clone()) {
                changes.push(format!("waiting {w}"));
            }
        }
        if !changes.is_empty() {
            let line = format!("{} on {}: {}", r.name, r.node, changes.join(", "));
            self.log.push((t, line));
        }
    }

    fn gone(&mut self, p: &Pod, t: f64) {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        self.ready_now.remove(&uid);
        if let Some(r) = self.pods.iter_mut().find(|r| r.uid == uid) {
            if r.deleted.is_none() {
                r.deleted = Some(t);
            }
            self.log
                .push((t, format!("{} on {}: gone", r.name, r.node)));
        }
    }
}

fn short(uid: &str) -> &str {
    uid.get(..8).unwrap_or(uid)
}

impl RolloutWatch {
    /// Starts recording the pods of DaemonSet `ds` in the test's namespace; returns once the watch
    /// has listed the pods that exist now.
    pub async fn start(env: &TestEnv, ds: &str) -> Self {
        let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
        let state = Arc::new(Mutex::new(State::default()));
        let start = Instant::now();
        let s = state.clone();
        let cfg = watcher::Config::default().labels(&format!("app={ds}"));
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, cfg).boxed();
            let mut initial = true;
            let mut relisted: BTreeSet<String> = BTreeSet::new();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                let t = start.elapsed().as_secs_f64();
                let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
                match ev {
                    Event::Init => relisted.clear(),
                    Event::InitApply(p) => {
                        relisted.insert(p.metadata.uid.clone().unwrap_or_default());
                        st.observe(&p, t, initial);
                    }
                    Event::InitDone => {
                        // A relist after a watch error: pods missing from it are gone.
                        if !initial {
                            let missing: Vec<Pod> = st
                                .pods
                                .iter()
                                .filter(|r| r.deleted.is_none() && !relisted.contains(&r.uid))
                                .map(|r| {
                                    let mut p = Pod::default();
                                    p.metadata.uid = Some(r.uid.clone());
                                    p
                                })
                                .collect();
                            for p in missing {
                                st.gone(&p, t);
                            }
                        }
                        initial = false;
                        st.synced = true;
                    }
                    Event::Apply(p) => st.observe(&p, t, false),
                    Event::Delete(p) => st.gone(&p, t),
                }
            }
        });
        let w = Self { state, start, task };
        super::wait_for(
            &format!("the pod watch of {ds} to list"),
            std::time::Duration::from_secs(30),
            || async {
                if w.lock().synced {
                    Ok(())
                } else {
                    Err("not listed yet".to_string())
                }
            },
        )
        .await;
        w
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since the recorder started (the time base of every record).
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Every pod seen so far, in first-seen order.
    pub fn pods(&self) -> Vec<PodRecord> {
        self.lock().pods.clone()
    }

    /// The pods seen on `node`, in first-seen order.
    pub fn on_node(&self, node: &str) -> Vec<PodRecord> {
        self.pods().into_iter().filter(|r| r.node == node).collect()
    }

    /// When `node`'s update to `hash` started: the first time a pod of another revision on it was
    /// seen deleting, or a pod of `hash` was first seen on it, whichever came first. `None` if
    /// neither happened (a node that ran `hash` from the start reports 0.0).
    pub fn update_started(&self, node: &str, hash: &str) -> Option<f64> {
        self.on_node(node)
            .iter()
            .filter_map(|r| {
                if r.hash == hash {
                    Some(r.seen)
                } else {
                    r.deleted
                }
            })
            .reduce(f64::min)
    }

    /// When `node` first had a live, Ready pod of `hash` (0.0 if it had one from the start).
    pub fn updated_ready(&self, node: &str, hash: &str) -> Option<f64> {
        self.on_node(node)
            .iter()
            .filter(|r| r.hash == hash)
            .filter_map(|r| r.ready)
            .reduce(f64::min)
    }

    /// When every node of `nodes` had a Ready pod of `hash`: the latest of their
    /// [`RolloutWatch::updated_ready`] times, or the nodes still without one.
    pub fn all_updated_ready(&self, nodes: &[String], hash: &str) -> Result<f64, Vec<String>> {
        let mut missing = Vec::new();
        let mut latest = 0.0f64;
        for n in nodes {
            match self.updated_ready(n, hash) {
                Some(t) => latest = latest.max(t),
                None => missing.push(n.clone()),
            }
        }
        if missing.is_empty() {
            Ok(latest)
        } else {
            Err(missing)
        }
    }

    /// The first node (by time) whose update to `hash` started, among `nodes`, with its time.
    pub fn first_update(&self, nodes: &[String], hash: &str) -> Option<(String, f64)> {
        nodes
            .iter()
            .filter_map(|n| self.update_started(n, hash).map(|t| (n.clone(), t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Nodes on which a pod of `hash` was ever seen.
    pub fn nodes_that_ran(&self, hash: &str) -> BTreeSet<String> {
        self.pods()
            .into_iter()
            .filter(|r| r.hash == hash && !r.node.is_empty())
            .map(|r| r.node)
            .collect()
    }

    /// Pods (not of `except_hash`) that were deleted or restarted after the recorder started.
    pub fn disturbed(&self, except_hash: &str) -> Vec<PodRecord> {
        self.pods()
            .into_iter()
            .filter(|r| r.hash != except_hash && (r.deleted.is_some() || r.restarts > 0))
            .collect()
    }

    /// The update order of `nodes` to `hash`: (node, update started, Ready), by start time; nodes
    /// not started yet last.
    pub fn order(&self, nodes: &[String], hash: &str) -> Vec<(String, Option<f64>, Option<f64>)> {
        let mut rows: Vec<_> = nodes
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    self.update_started(n, hash),
                    self.updated_ready(n, hash),
                )
            })
            .collect();
        rows.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        rows
    }

    /// [`RolloutWatch::order`] as printable lines.
    pub fn describe_order(&self, nodes: &[String], hash: &str) -> String {
        let t = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:6.2}s"));
        self.order(nodes, hash)
            .iter()
            .map(|(n, s, r)| format!("  {n:<28} started {}  Ready {}", t(*s), t(*r)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything recorded, one line per change.
    pub fn timeline(&self) -> String {
        self.lock()
            .log
            .iter()
            .map(|(t, what)| format!("  {t:7.2}s {what}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops recording (the records stay readable).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for RolloutWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, node: &str, hash: &str, ready: bool, deleting: bool, restarts: i32) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": format!("p-{uid}"), "uid": uid,
                "labels": {"controller-revision-hash": hash},
                "deletionTimestamp": if deleting { serde_json::json!("2026-01-01T00:00:00Z") } else { serde_json::Value::Null },
            },
            "spec": {"nodeName": node, "containers": []},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": ready,
                    "restartCount": restarts,
                    "state": if restarts > 0 { serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}}) } else { serde_json::json!({}) }}],
            },
        }))
        .unwrap_or_else(|e| panic!("test pod: {e}"))
    }

    #[test]
    fn records_the_life_of_each_pod() {
        let mut s = State::default();
        s.observe(&pod("a", "n1", "old", true, false, 0), 0.0, true);
        s.observe(&pod("a", "n1", "old", true, true, 0), 1.0, false);
        s.gone(&pod("a", "n1", "old", true, true, 0), 1.5);
        s.observe(&pod("b", "n1", "new", false, false, 0), 2.0, false);
        s.observe(&pod("b", "n1", "new", true, false, 0), 3.0, false);
        s.observe(&pod("c", "n2", "new", false, false, 2), 4.0, false);
        let a = &s.pods[0];
        assert_eq!(
            (a.preexisting, a.ready, a.deleted),
            (true, Some(0.0), Some(1.0))
        );
        let b = &s.pods[1];
        assert_eq!((b.seen, b.ready, b.deleted), (2.0, Some(3.0), None));
        let c = &s.pods[2];
        assert_eq!(c.restarts, 2);
        assert!(c.waiting.contains("CrashLoopBackOff"));
    }
}
