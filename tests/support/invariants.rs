//! Invariants that must hold while faults are injected into the control plane, checked on every pod
//! event of a DaemonSet for a whole scenario: at most one live (non-terminating) daemon pod per node
//! when maxSurge is 0, the rollout budget ([`super::budget::check`]), no duplicate (two pods of the
//! final revision ever on one node: a create-then-delete), convergence within a bound, no panic in
//! everynode's log and everynode still running. [`Invariants::finish`] prints the figures of the
//! scenario (`FIGURES <scenario>: ...`) and fails the test on the first violation. Also: starting
//! everynode under an identity of its own, reading its `/metrics`, and reading the API server's audit
//! log (429s per user; whether two leader-election candidates ever both wrote).

use super::budget::{self, Budget};
pub use super::http_get;
use super::{TestEnv, pod_ready, revision_hash, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An everynode process started by a fault test, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Everynode {
    pub process: controlplane::process::Process,
    pub metrics_port: u16,
    pub name: String,
}

impl Drop for Everynode {
    fn drop(&mut self) {
        self.process.stop(Duration::from_secs(5));
    }
}

impl Everynode {
    /// Starts the everynode binary as `name` with `kubeconfig` and `extra` flags, metrics on a free
    /// port, logging (debug) to `<control-plane dir>/logs/<name>.log`.
    pub fn start(
        cp: &controlplane::ControlPlane,
        name: &str,
        kubeconfig: &Path,
        extra: &[&str],
    ) -> Self {
        let metrics_port = controlplane::free_port().expect("a free port for everynode's metrics");
        let mut args = vec![
            "run".to_string(),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--metrics-bind-address=127.0.0.1:{metrics_port}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,everynode=debug".into());
        let exe = Path::new(env!("CARGO_BIN_EXE_everynode"));
        let process = controlplane::process::Process::spawn_with_env(
            name,
            exe,
            &args,
            &[("RUST_LOG", level.as_str()), ("POD_NAME", name)],
            &cp.log(name),
        )
        .unwrap_or_else(|e| panic!("start everynode {name}: {e}"));
        eprintln!(
            "{name}: pid {}, log {}",
            process.pid(),
            process.log().display()
        );
        Self {
            process,
            metrics_port,
            name: name.to_string(),
        }
    }

    pub fn log(&self) -> PathBuf {
        self.process.log().to_path_buf()
    }

    /// `/metrics` now, or why not.
    pub async fn metrics(&self) -> Result<String, String> {
        match http_get(self.metrics_port, "/metrics").await? {
            (200, body) => Ok(body),
            (code, body) => Err(format!("GET /metrics: {code} {body}")),
        }
    }

    /// Panics unless the process still runs and its log holds no panic.
    pub fn assert_healthy(&mut self) {
        assert_no_panic(&self.log());
        if let Some(status) = self.process.exited() {
            panic!(
                "{} exited ({status}) during the scenario; its log: {}",
                self.name,
                self.log().display()
            );
        }
    }
}

/// Panics if the log holds a Rust panic ("panicked").
pub fn assert_no_panic(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(line) = text.lines().find(|l| l.contains("panicked")) {
        panic!("a panic in {}: {line}", log.display());
    }
}

/// The sum of `everynode_api_requests_total` over the series whose labels contain `label`
/// (e.g. `code="429"`).
pub fn api_requests(metrics: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("everynode_api_requests_total{") && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .fold(0.0, |a, b| a + b)
}

/// The node a daemon pod is for: `spec.nodeName`, else the `metadata.name` its required node
/// affinity names (before the scheduler binds it).
pub fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = &spec.node_name {
        return Some(n.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name")
        .and_then(|r| r.values.as_ref()?.first().cloned())
}

/// What the watcher saw.
#[derive(Default, Debug, Clone)]
struct Seen {
    events: u64,
    violations: Vec<String>,
    max_unavailable: usize,
    max_live_per_node: usize,
    /// Every pod ever seen: name -> (target node, revision hash).
    pods: BTreeMap<String, (String, String)>,
    /// Pods seen terminating or deleted.
    gone: BTreeSet<String>,
}

/// The figures of one scenario, printed by [`Invariants::finish`].
#[derive(Debug, Clone)]
pub struct Figures {
    pub scenario: String,
    /// Pods of the final revision beyond one per node, over the whole scenario.
    pub duplicates: usize,
    /// Pods of the final revision that were deleted (a duplicate removed again, or a bug).
    pub deleted_current: usize,
    pub max_unavailable: usize,
    pub max_live_per_node: usize,
    pub converge: Duration,
    pub events: u64,
    pub violations: Vec<String>,
}

/// Watches the pods `app=<ds>` of the test's namespace on `nodes` and checks the invariants on
/// every event.
pub struct Invariants {
    scenario: String,
    nodes: Vec<String>,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Invariants {
    pub fn start(
        scenario: &str,
        env: &TestEnv,
        ds: &str,
        nodes: Vec<String>,
        budget: Budget,
    ) -> Self {
        let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let cfg = watcher::Config::default().labels(&format!("app={ds}"));
        let watched = nodes.clone();
        let surge = matches!(budget, Budget::MaxSurge(_));
        let task = tokio::spawn(async move {
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let mut relist: Option<BTreeMap<String, Pod>> = None;
            // Backoff: while the API server is down the watch is retried, not spun.
            let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
                seen.events += 1;
                let note = |p: &Pod, seen: &mut Seen| {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let node = target_node(p).unwrap_or_default();
                    let hash = revision_hash(&p.metadata).cloned().unwrap_or_default();
                    if p.metadata.deletion_timestamp.is_some() {
                        seen.gone.insert(name.clone());
                    }
                    seen.pods.entry(name).or_insert((node, hash));
                };
                match ev {
                    Event::Init => {
                        relist = Some(BTreeMap::new());
                        continue;
                    }
                    Event::InitApply(p) => {
                        note(&p, &mut seen);
                        relist
                            .get_or_insert_with(BTreeMap::new)
                            .insert(p.metadata.name.clone().unwrap_or_default(), p);
                        continue;
                    }
                    Event::InitDone => {
                        let fresh = relist.take().unwrap_or_default();
                        // Pods that vanished while the watch was down are gone too.
                        for name in pods.keys().filter(|n| !fresh.contains_key(*n)) {
                            seen.gone.insert(name.clone());
                        }
                        pods = fresh;
                    }
                    Event::Apply(p) => {
                        note(&p, &mut seen);
                        pods.insert(p.metadata.name.clone().unwrap_or_default(), p);
                    }
                    Event::Delete(p) => {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        note(&p, &mut seen);
                        seen.gone.insert(name.clone());
                        pods.remove(&name);
                    }
                }
                // Live pods per node, of any revision.
                let mut live: BTreeMap<String, usize> = BTreeMap::new();
                for p in pods
                    .values()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                {
                    *live.entry(target_node(p).unwrap_or_default()).or_default() += 1;
                }
                let most = live.values().copied().max().unwrap_or(0);
                seen.max_live_per_node = seen.max_live_per_node.max(most);
                let unavailable = watched
                    .iter()
                    .filter(|n| {
                        !pods.values().any(|p| {
                            p.metadata.deletion_timestamp.is_none()
                                && p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                                    == Some(n.as_str())
                                && pod_ready(p)
                        })
                    })
                    .count();
                seen.max_unavailable = seen.max_unavailable.max(unavailable);
                let mut problems = Vec::new();
                if !surge && most > 1 {
                    problems.push(format!(
                        "two live pods on one node with maxSurge 0: {:?}",
                        live.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
                    ));
                }
                if let Some(v) = budget::check(&pods, &watched, budget) {
                    problems.push(v);
                }
                for v in problems {
                    if seen.violations.len() < 10 && !seen.violations.contains(&v) {
                        seen.violations.push(v);
                    }
                }
            }
        });
        Self {
            scenario: scenario.to_string(),
            nodes,
            seen,
            task,
        }
    }

    /// Figures so far for `final_hash`, the revision the rollout converged to.
    pub fn figures(&self, final_hash: &str, converge: Duration) -> Figures {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        let mut deleted_current = 0;
        for (name, (node, hash)) in &seen.pods {
            if hash == final_hash && self.nodes.contains(node) {
                *per_node.entry(node.as_str()).or_default() += 1;
                if seen.gone.contains(name) {
                    deleted_current += 1;
                }
            }
        }
        Figures {
            scenario: self.scenario.clone(),
            duplicates: per_node.values().map(|n| n.saturating_sub(1)).sum(),
            deleted_current,
            max_unavailable: seen.max_unavailable,
            max_live_per_node: seen.max_live_per_node,
            converge,
            events: seen.events,
            violations: seen.violations,
        }
    }

    /// Stops watching, prints the figures and fails the test on any violation: a budget or
    /// one-pod-per-node breach seen on an event, a duplicate or deleted pod of `final_hash`, a panic in
    /// an everynode log or an everynode that is no longer running.
    pub fn finish(
        self,
        final_hash: &str,
        converge: Duration,
        everynodes: &mut [&mut Everynode],
    ) -> Figures {
        self.task.abort();
        let f = self.figures(final_hash, converge);
        eprintln!(
            "FIGURES {}: duplicates={} deleted_current={} max_unavailable={} max_live_per_node={} converge={:.1}s pod_events={} violations={}",
            f.scenario,
            f.duplicates,
            f.deleted_current,
            f.max_unavailable,
            f.max_live_per_node,
            f.converge.as_secs_f64(),
            f.events,
            f.violations.len()
        );
        assert!(
            f.violations.is_empty(),
            "{}: invariant violated during the scenario ({} violations, first ones): {}",
            f.scenario,
            f.violations.len(),
            f.violations.join(" | ")
        );
        assert!(
            f.duplicates == 0 && f.deleted_current == 0,
            "{}: {} duplicate pod(s) of the final revision {final_hash} (created on a node that already had one), {} of them deleted again",
            f.scenario,
            f.duplicates,
            f.deleted_current
        );
        for e in everynodes.iter_mut() {
            e.assert_healthy();
        }
        f
    }
}

/// Waits up to `bound` until every node of `nodes` has exactly one live, Ready pod of `ds`, all of
/// the newest revision (at least `revision`), and the DaemonSet's status says so; returns that
/// revision's hash and how long it took.
pub async fn wait_converged(
    env: &TestEnv,
    ds: &str,
    nodes: &[String],
    revision: i64,
    bound: Duration,
) -> (String, Duration) {
    let start = Instant::now();
    let hash = env.current_hash(revision).await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let dss: Api<k8s_openapi::api::apps::v1::DaemonSet> =
        Api::namespaced(env.client.clone(), &env.ns);
    let want = i32::try_from(nodes.len()).unwrap_or(i32::MAX);
    wait_for(
        &format!("{ds} to converge on revision {hash} on {refs:?}"),
        bound,
        || async {
            let by_node = env.pods_by_node(&format!("app={ds}")).await;
            let mut bad = Vec::new();
            for n in nodes {
                let live: Vec<&Pod> = by_node
                    .get(n)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                let ok = live.len() == 1
                    && pod_ready(live[0])
                    && revision_hash(&live[0].metadata) == Some(&hash);
                if !ok {
                    bad.push(format!("{n}: {} live", live.len()));
                }
            }
            if !bad.is_empty() {
                return Err(bad.join(", "));
            }
            let d = dss.get(ds).await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            let ok = s.desired_number_scheduled == want
                && s.updated_number_scheduled == Some(want)
                && s.number_available == Some(want)
                && s.observed_generation == d.metadata.generation;
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "pods converged; status desired {} updated {:?} available {:?} observed {:?}/{:?}",
                    s.desired_number_scheduled,
                    s.updated_number_scheduled,
                    s.number_available,
                    s.observed_generation,
                    d.metadata.generation
                ))
            }
        },
    )
    .await;
    (hash, start.elapsed())
}

/// Waits until at least `n` pods of `ds` are on revision `hash` (the rollout is under way).
pub async fn wait_rollout_started(env: &TestEnv, ds: &str, hash: &str, n: usize) {
    wait_for(
        &format!("{n} pods of {ds} on revision {hash}"),
        Duration::from_secs(60),
        || async {
            let count = env
                .pods_by_node(&format!("app={ds}"))
                .await
                .values()
                .flatten()
                .filter(|p| revision_hash(&p.metadata).map(String::as_str) == Some(hash))
                .count();
            if count >= n {
                Ok(count)
            } else {
                Err(format!("{count} on the new revision"))
            }
        },
    )
    .await;
}

/// One request of the API server's audit log (ResponseComplete stage).
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub code: i64,
    pub received: k8s_openapi::jiff::Timestamp,
    pub uri: String,
}

impl AuditEvent {
    /// A write that only the acting controller makes: a pod create or delete, or a DaemonSet status
    /// update (events and the lease are not counted).
    pub fn is_controller_write(&self) -> bool {
        match (self.resource.as_str(), self.subresource.as_str()) {
            ("pods", "") => matches!(self.verb.as_str(), "create" | "delete"),
            ("daemonsets", "status") => matches!(self.verb.as_str(), "update" | "patch"),
            _ => false,
        }
    }
}

/// The ResponseComplete events of the audit log, in the order the API server received them.
pub fn read_audit(path: &Path) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the audit log {}: {e}", path.display()));
    let mut out: Vec<AuditEvent> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["stage"] == "ResponseComplete")
        .filter_map(|v| {
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            Some(AuditEvent {
                user: s("/user/username"),
                verb: s("/verb"),
                resource: s("/objectRef/resource"),
                subresource: s("/objectRef/subresource"),
                name: s("/objectRef/name"),
                code: v.pointer("/responseStatus/code").and_then(|c| c.as_i64())?,
                received: s("/requestReceivedTimestamp").parse().ok()?,
                uri: s("/requestURI"),
            })
        })
        .collect();
    out.sort_by_key(|e| e.received);
    out
}

/// The first moment two identities both acted: a controller write by one identity received after
/// another identity's first controller write (the first identity had handed over), described; `None`
/// when the writers took turns cleanly.
pub fn split_brain(events: &[AuditEvent]) -> Option<String> {
    let writes: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.is_controller_write() && e.code < 500)
        .collect();
    let mut retired: BTreeSet<&str> = BTreeSet::new();
    let mut current: Option<&AuditEvent> = None;
    let mut overlaps = Vec::new();
    for w in &writes {
        if retired.contains(w.user.as_str()) {
            overlaps.push(*w);
            continue;
        }
        match current {
            Some(c) if c.user != w.user => {
                retired.insert(c.user.as_str());
                current = Some(w);
            }
            None => current = Some(w),
            _ => {}
        }
    }
    let first = overlaps.first()?;
    let took_over = writes
        .iter()
        .find(|w| w.user != first.user && w.received < first.received)
        .map(|w| format!("{} at {}", w.user, w.received))
        .unwrap_or_default();
    Some(format!(
        "{} controller write(s) by an identity after another took over (first takeover write: {took_over}); first overlapping write: {} {} {}/{} by {} at {} (code {})",
        overlaps.len(),
        first.verb,
        first.resource,
        first.subresource,
        first.name,
        first.user,
        first.received,
        first.code
    ))
}
