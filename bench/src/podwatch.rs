//! The benchmark's own view of a namespace's pods, from a watch: when each pod was first seen, when
//! it was first seen Ready, its node and its template revision (the `REVISION_ANNOTATION` the
//! benchmark puts in the DaemonSet's template). Every timing of the benchmark is read from here, so
//! both controllers are observed the same way.

use crate::error::Error;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The pod-template annotation that tells the benchmark which revision a pod was made from.
pub const REVISION_ANNOTATION: &str = "bench.everynode.io/revision";

/// One pod as observed.
#[derive(Debug, Clone)]
pub struct PodRecord {
    /// The pod's UID: a name can come back (see `Pods`), a UID cannot.
    pub uid: String,
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
    /// When it was first seen gone (for pods deleted while the watch was down: when the relist
    /// found them missing).
    pub gone_at: Option<Instant>,
    /// Some time above was taken when a relist found the change (the watch was down when it
    /// happened), so it is late by up to the outage.
    pub approximate: bool,
}

impl PodRecord {
    pub fn live(&self) -> bool {
        !self.gone
    }
}

/// Every pod seen so far, with running counts per revision.
///
/// The counts are kept as records change, so a wait's check costs no more at 25 000 pods than at
/// 20. Records are keyed by name, but a DaemonSet's pods get generated names (five random
/// characters), and at 5000 nodes × 5 DaemonSets a rollout's new pods reuse a few names of deleted
/// old ones (7 in one run). So a pod whose UID differs from its name's record is a new pod: the old
/// record moves to `name@uid` and stays in the snapshot.
#[derive(Debug, Default)]
pub struct Pods {
    records: BTreeMap<String, PodRecord>,
    counts: HashMap<String, Tally>,
}

/// The live pods of one revision.
#[derive(Debug, Default)]
struct Tally {
    live: usize,
    ready: usize,
    /// Live bound pods per node name.
    nodes: HashMap<String, usize>,
}

impl Pods {
    /// The pod named `name`, if it was ever seen.
    pub fn get(&self, name: &str) -> Option<&PodRecord> {
        self.records.get(name)
    }

    /// Live pods of `revision`, as (count, ready count, distinct nodes they are bound to).
    pub fn tally(&self, revision: &str) -> (usize, usize, usize) {
        self.counts
            .get(revision)
            .map_or((0, 0, 0), |t| (t.live, t.ready, t.nodes.len()))
    }

    /// Changes the record named `name` (made by `new` if not seen before), keeping the counts.
    fn update(
        &mut self,
        name: &str,
        new: impl FnOnce() -> PodRecord,
        change: impl FnOnce(&mut PodRecord),
    ) {
        if !self.records.contains_key(name) {
            let rec = new();
            self.count(&rec, true);
            self.records.insert(name.to_string(), rec);
        }
        self.change(name, change);
    }

    /// Moves the record named `name` to `name@uid` (gone, if it was not) when `uid` is another pod's.
    fn retire_if_reused(&mut self, name: &str, uid: &str, now: Instant) {
        let reused = self
            .records
            .get(name)
            .is_some_and(|r| !uid.is_empty() && !r.uid.is_empty() && r.uid != uid);
        if !reused {
            return;
        }
        self.change(name, |rec| {
            if !rec.gone {
                rec.gone = true;
                rec.gone_at = Some(now);
            }
        });
        if let Some(old) = self.records.remove(name) {
            self.records.insert(format!("{name}@{}", old.uid), old);
        }
    }

    /// Changes the record named `name` if it was seen, keeping the counts.
    fn change(&mut self, name: &str, change: impl FnOnce(&mut PodRecord)) {
        let Some(before) = self.records.get(name).cloned() else {
            return;
        };
        self.count(&before, false);
        let Some(rec) = self.records.get_mut(name) else {
            return;
        };
        change(rec);
        let after = rec.clone();
        self.count(&after, true);
    }

    /// Adds a live record to the counts, or takes it out of them.
    fn count(&mut self, rec: &PodRecord, add: bool) {
        if !rec.live() {
            return;
        }
        let t = self.counts.entry(rec.revision.clone()).or_default();
        let step = |n: &mut usize| {
            debug_assert!(add || *n > 0, "a record taken out of counts it is not in");
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        };
        step(&mut t.live);
        if rec.ready_at.is_some() {
            step(&mut t.ready);
        }
        if rec.node.is_empty() {
            return;
        }
        let on_node = t.nodes.entry(rec.node.clone()).or_default();
        step(on_node);
        if *on_node == 0 {
            t.nodes.remove(&rec.node);
        }
    }
}

#[derive(Debug, Default)]
struct State {
    pods: Pods,
    error: Option<String>,
    /// Pods listed since the watch (re)started: on a relist, pods deleted while the watch was down
    /// get no Delete event, so those not listed again are marked gone.
    relisted: Option<std::collections::BTreeSet<String>>,
    /// The first list is done: a later list is a relist after the watch was down.
    listed_once: bool,
}

impl State {
    /// A (re)list begins.
    fn list_begins(&mut self) {
        self.relisted = Some(Default::default());
    }

    /// A (re)list ended at `now`: pods seen before and not listed again were deleted meanwhile.
    fn list_ends(&mut self, now: Instant) {
        if let Some(listed) = self.relisted.take() {
            let unlisted: Vec<String> = self
                .pods
                .records
                .iter()
                .filter(|(name, rec)| rec.live() && !listed.contains(*name))
                .map(|(name, _)| name.clone())
                .collect();
            for name in unlisted {
                self.pods.change(&name, |rec| {
                    rec.gone = true;
                    rec.gone_at.get_or_insert(now);
                    rec.approximate = true;
                });
            }
        }
        self.listed_once = true;
    }

    /// A pod as a watch event (or a list) shows it at `now`; `deleted` for a Delete event.
    fn observe(&mut self, pod: &Pod, now: Instant, deleted: bool) {
        let Some(name) = pod.metadata.name.as_deref() else {
            return;
        };
        let late = self.listed_once && self.relisted.is_some();
        if let Some(listed) = self.relisted.as_mut() {
            listed.insert(name.to_string());
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        self.pods.retire_if_reused(name, uid, now);
        let new = || PodRecord {
            uid: uid.to_string(),
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
            gone_at: None,
            approximate: late,
        };
        self.pods.update(name, new, |rec| {
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                && rec.node.is_empty()
            {
                rec.node = node.to_string();
                rec.bound_at = Some(now);
                rec.approximate |= late;
            }
            if rec.ready_at.is_none() && ready(pod) {
                rec.ready_at = Some(now);
                rec.approximate |= late;
            }
            if (deleted || pod.metadata.deletion_timestamp.is_some()) && !rec.gone {
                rec.gone = true;
                rec.gone_at = Some(now);
                rec.approximate |= late;
            }
        });
    }
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
                let Ok(mut st) = s.lock() else { return };
                match ev {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                        st.observe(&p, now, false)
                    }
                    Ok(watcher::Event::Delete(p)) => st.observe(&p, now, true),
                    Ok(watcher::Event::Init) => st.list_begins(),
                    Ok(watcher::Event::InitDone) => {
                        st.list_ends(now);
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Err(e) => st.error = Some(e.to_string()),
                }
                drop(st);
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
            .map(|s| s.pods.records.clone())
            .unwrap_or_default()
    }

    /// Waits until `done` returns `Some` on the current pods (checked on every change and every
    /// second), or fails after `timeout` with `what` and the last `describe` of the pods.
    pub async fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Pods) -> Option<T>,
        describe: impl Fn(&Pods) -> String,
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

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A one-line description: pods by revision as `rev: live/ready (gone)`.
pub fn describe(pods: &Pods) -> String {
    let mut by: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for p in pods.records.values() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, revision: &str, node: Option<&str>, ready: bool, deleting: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "uid": format!("{name}-{revision}"),
                "annotations": {REVISION_ANNOTATION: revision},
                "deletionTimestamp": deleting.then_some("2026-12-03T00:00:00Z"),
            },
            "spec": {"containers": [], "nodeName": node},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .expect("a test pod parses")
    }

    /// The tally the running counts must equal: every record counted again.
    fn recount(pods: &Pods, revision: &str) -> (usize, usize, usize) {
        let live: Vec<&PodRecord> = pods
            .records
            .values()
            .filter(|p| p.live() && p.revision == revision)
            .collect();
        let nodes: std::collections::BTreeSet<&str> = live
            .iter()
            .map(|p| p.node.as_str())
            .filter(|n| !n.is_empty())
            .collect();
        let ready = live.iter().filter(|p| p.ready_at.is_some()).count();
        (live.len(), ready, nodes.len())
    }

    fn assert_counts(st: &State) {
        for rev in ["1", "2", "3"] {
            assert_eq!(st.pods.tally(rev), recount(&st.pods, rev), "revision {rev}");
        }
    }

    #[test]
    fn running_counts_equal_a_recount_through_a_pods_life() {
        let mut st = State::default();
        let now = Instant::now();
        let steps: Vec<(Pod, bool)> = vec![
            (pod("a", "1", None, false, false), false),
            (pod("b", "1", None, false, false), false),
            (pod("a", "1", Some("n1"), false, false), false),
            (pod("b", "1", Some("n1"), false, false), false),
            (pod("a", "1", Some("n1"), true, false), false),
            (pod("c", "2", Some("n2"), true, false), false),
            // Ready goes false again: the record keeps its first Ready.
            (pod("a", "1", Some("n1"), false, false), false),
            (pod("b", "1", Some("n1"), false, true), false),
            (pod("b", "1", Some("n1"), false, true), true),
            (pod("a", "1", Some("n1"), true, false), true),
            // A Delete of a pod never seen, and a pod seen Ready before it was bound.
            (pod("x", "1", Some("n3"), true, false), true),
            (pod("d", "3", None, true, false), false),
            (pod("d", "3", Some("n4"), true, false), false),
        ];
        let mut seen = Vec::new();
        for (p, deleted) in steps {
            st.observe(&p, now, deleted);
            assert_counts(&st);
            seen.push((st.pods.tally("1"), st.pods.tally("2"), st.pods.tally("3")));
        }
        assert_eq!(seen[1].0, (2, 0, 0), "unbound pods are on no node");
        assert_eq!(seen[4].0, (2, 1, 1));
        assert_eq!(
            seen[7].0,
            (1, 1, 1),
            "a pod with a deletionTimestamp is gone"
        );
        assert_eq!(seen[9].0, (0, 0, 0));
        assert_eq!(seen[9].1, (1, 1, 1));
        assert_eq!(
            seen[10].0,
            (0, 0, 0),
            "a Delete of a pod never seen counts nothing"
        );
        assert_eq!(seen[11].2, (1, 1, 0));
        assert_eq!(seen[12].2, (1, 1, 1));
        assert!(st.pods.counts.get("1").is_none_or(|t| t.nodes.is_empty()));
        assert!(!st.pods.records.values().any(|r| r.approximate));
    }

    #[test]
    fn a_name_reused_by_a_new_pod_is_a_new_record() {
        let mut st = State::default();
        let t0 = Instant::now();
        let later = t0 + std::time::Duration::from_secs(3);
        st.observe(&pod("bench-k2jtd", "1", Some("n1"), true, false), t0, false);
        st.observe(&pod("bench-k2jtd", "1", Some("n1"), true, false), t0, true);
        // The new revision's pod on another node got the same generated name.
        st.observe(&pod("bench-k2jtd", "2", None, false, false), later, false);
        st.observe(
            &pod("bench-k2jtd", "2", Some("n2"), true, false),
            later,
            false,
        );
        assert_counts(&st);
        assert_eq!(st.pods.tally("1"), (0, 0, 0));
        assert_eq!(st.pods.tally("2"), (1, 1, 1));
        let new = st.pods.get("bench-k2jtd").expect("the new pod");
        assert_eq!((new.revision.as_str(), new.first_seen), ("2", later));
        let old = st
            .pods
            .get("bench-k2jtd@bench-k2jtd-1")
            .expect("the old pod kept");
        assert_eq!((old.revision.as_str(), old.gone_at), ("1", Some(t0)));
    }

    #[test]
    fn a_relist_marks_the_unlisted_gone_and_its_times_approximate() {
        let mut st = State::default();
        let now = Instant::now();
        st.list_begins();
        st.observe(&pod("a", "1", Some("n1"), true, false), now, false);
        st.observe(&pod("b", "1", Some("n2"), true, false), now, false);
        st.list_ends(now);
        st.observe(&pod("c", "1", None, false, false), now, false);
        assert!(
            !st.pods.records.values().any(|r| r.approximate),
            "the first list is not late"
        );
        // The watch was down: a was deleted and c bound meanwhile, d created.
        let later = now + std::time::Duration::from_secs(5);
        st.list_begins();
        st.observe(&pod("b", "1", Some("n2"), true, false), later, false);
        st.observe(&pod("c", "1", Some("n3"), false, false), later, false);
        st.observe(&pod("d", "1", Some("n4"), false, false), later, false);
        st.list_ends(later);
        assert_counts(&st);
        assert_eq!(st.pods.tally("1"), (3, 1, 3));
        let rec = |n: &str| st.pods.get(n).expect("seen");
        assert!(rec("a").gone && rec("a").gone_at == Some(later) && rec("a").approximate);
        assert!(!rec("b").approximate, "nothing of b changed");
        assert!(rec("c").approximate && rec("c").bound_at == Some(later));
        assert!(rec("d").approximate);
        // A second end of the same list, or of none, changes nothing.
        st.list_ends(later);
        assert_counts(&st);
        assert_eq!(st.pods.tally("1"), (3, 1, 3));
    }
}
