//! The benchmark's own view of a namespace's pods, from a watch: when each pod was first seen, when
//! it was first seen Ready, its node and its template revision (the `REVISION_ANNOTATION` the
//! benchmark puts in the DaemonSet's template). Every timing of the benchmark is read from here, so
//! both controllers are observed the same way.

use crate::error::Error;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The pod-template annotation that tells the benchmark which revision a pod was made from.
pub const REVISION_ANNOTATION: &str = "bench.everynode.io/revision";

/// One pod as observed.
#[derive(Debug, Clone)]
pub struct PodRecord {
    pub node: String,
    pub revision: String,
    /// The name of the pod's first owner (its DaemonSet), empty for pods without one.
    pub owner: String,
    pub first_seen: Instant,
    /// When the pod was first seen with a node (at once for pods created bound).
    pub bound_at: Option<Instant>,
    pub ready_at: Option<Instant>,
    /// Deleted from the API, or has a deletionTimestamp.
    pub gone: bool,
}

impl PodRecord {
    pub fn live(&self) -> bool {
        !self.gone
    }
}

#[derive(Debug, Default)]
struct State {
    pods: BTreeMap<String, PodRecord>,
    error: Option<String>,
    /// Pods listed since the watch (re)started: on a relist, pods deleted while the watch was down
    /// get no Delete event, so those not listed again are marked gone.
    relisted: Option<std::collections::BTreeSet<String>>,
}

/// Watches the pods of one namespace until dropped.
#[derive(Debug)]
pub struct PodTracker {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl PodTracker {
    /// Starts watching `namespace` and returns once the initial list is in.
    pub async fn start(client: kube::Client, namespace: &str) -> Result<Self, Error> {
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let (s, c) = (state.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                let now = Instant::now();
                match ev {
                    Ok(watcher::Event::Apply(p)) => observe(&s, &p, now, false),
                    Ok(watcher::Event::InitApply(p)) => {
                        if let (Ok(mut st), Some(name)) = (s.lock(), p.metadata.name.clone())
                            && let Some(r) = st.relisted.as_mut()
                        {
                            r.insert(name);
                        }
                        observe(&s, &p, now, false)
                    }
                    Ok(watcher::Event::Delete(p)) => observe(&s, &p, now, true),
                    Ok(watcher::Event::InitDone) => {
                        if let Ok(mut st) = s.lock()
                            && let Some(listed) = st.relisted.take()
                        {
                            for (name, rec) in st.pods.iter_mut() {
                                if !listed.contains(name) {
                                    rec.gone = true;
                                }
                            }
                        }
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Init) => {
                        if let Ok(mut st) = s.lock() {
                            st.relisted = Some(Default::default());
                        }
                    }
                    Err(e) => {
                        if let Ok(mut st) = s.lock() {
                            st.error = Some(e.to_string());
                        }
                    }
                }
                c.notify_waiters();
            }
        });
        tokio::time::timeout(Duration::from_secs(60), ready_rx)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("the first list of pods in {namespace}"),
                seconds: 60,
                state: "no answer".into(),
            })?
            .map_err(|_| Error::Timeout {
                what: format!("the pod watch of {namespace}"),
                seconds: 0,
                state: "the watch task ended".into(),
            })?;
        Ok(Self {
            state,
            changed,
            task,
        })
    }

    /// A copy of every pod seen so far.
    pub fn snapshot(&self) -> BTreeMap<String, PodRecord> {
        self.state
            .lock()
            .map(|s| s.pods.clone())
            .unwrap_or_default()
    }

    /// Waits until `done` returns `Some` on the current pods (checked on every change and every
    /// second), or fails after `timeout` with `what` and the last `describe` of the pods.
    pub async fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&BTreeMap<String, PodRecord>) -> Option<T>,
        describe: impl Fn(&BTreeMap<String, PodRecord>) -> String,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            // Checked under the lock, not on a copy: the floor's rolling loop has hundreds of waiters.
            let failed = match self.state.lock() {
                Ok(st) => {
                    if let Some(v) = done(&st.pods) {
                        return Ok(v);
                    }
                    (Instant::now() >= deadline).then(|| {
                        let err = st
                            .error
                            .as_ref()
                            .map(|e| format!("; last watch error: {e}"))
                            .unwrap_or_default();
                        format!("{}{err}", describe(&st.pods))
                    })
                }
                Err(_) => Some("the pod watch's state is poisoned".to_string()),
            };
            if let Some(state) = failed {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    seconds: timeout.as_secs(),
                    state,
                });
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        }
    }
}

impl Drop for PodTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn observe(state: &Mutex<State>, pod: &Pod, now: Instant, deleted: bool) {
    let Some(name) = pod.metadata.name.clone() else {
        return;
    };
    let Ok(mut st) = state.lock() else { return };
    let rec = st.pods.entry(name).or_insert_with(|| PodRecord {
        node: String::new(),
        revision: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION).cloned())
            .unwrap_or_default(),
        owner: pod
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .map(|o| o.name.clone())
            .unwrap_or_default(),
        first_seen: now,
        bound_at: None,
        ready_at: None,
        gone: false,
    });
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone())
        && rec.node.is_empty()
    {
        rec.node = node;
        rec.bound_at = Some(now);
    }
    if rec.ready_at.is_none() && ready(pod) {
        rec.ready_at = Some(now);
    }
    if deleted || pod.metadata.deletion_timestamp.is_some() {
        rec.gone = true;
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Live pods of `revision`, as (count, ready count, distinct nodes).
pub fn tally(pods: &BTreeMap<String, PodRecord>, revision: &str) -> (usize, usize, usize) {
    let live: Vec<&PodRecord> = pods
        .values()
        .filter(|p| p.live() && p.revision == revision)
        .collect();
    let nodes: std::collections::BTreeSet<&str> = live.iter().map(|p| p.node.as_str()).collect();
    (
        live.len(),
        live.iter().filter(|p| p.ready_at.is_some()).count(),
        nodes.len(),
    )
}

/// A one-line description: pods by revision as `rev: live/ready (gone)`.
pub fn describe(pods: &BTreeMap<String, PodRecord>) -> String {
    let mut by: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for p in pods.values() {
        let e = by.entry(p.revision.as_str()).or_default();
        if p.live() {
            e.0 += 1;
            if p.ready_at.is_some() {
                e.1 += 1;
            }
        } else {
            e.2 += 1;
        }
    }
    by.iter()
        .map(|(r, (l, rd, g))| format!("revision {r:?}: {l} live, {rd} ready, {g} gone"))
        .collect::<Vec<_>>()
        .join("; ")
}
