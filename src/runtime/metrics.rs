//! The Prometheus metrics of everynode (prefix `everynode_`, plus the standard `process_*`): one
//! registry, shared by the controller, the API client layers and the HTTP server that serves it at
//! `/metrics`, in the OpenMetrics text format or the Prometheus text format 0.0.4
//! ([`Format`], chosen by the scrape's `Accept` header).
//!
//! prometheus-client writes only OpenMetrics; the 0.0.4 form is derived from it by
//! [`openmetrics_to_text`] (counter families are named with their `_total` suffix, info metrics
//! become gauges, `# UNIT` and `# EOF` go), because Prometheus' classic text parser types a counter
//! family whose `# TYPE` line lacks the suffix as untyped.

use crate::core::Timestamp;
use crate::core::node_reason::ReasonClass;
use crate::core::progress::{Progress, stalled_seconds, track};
use crate::core::status::StatusCounters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A DaemonSet, as labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DaemonSetLabels {
    pub namespace: String,
    pub name: String,
}

impl DaemonSetLabels {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// A DaemonSet's nodes of one reason class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodesLabels {
    pub namespace: String,
    pub name: String,
    /// ok, excluded, waiting or failed ([`ReasonClass::as_str`]).
    pub class: &'static str,
}

/// A DaemonSetRollout's phase (one series per phase: 1 for the current one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub namespace: String,
    pub name: String,
    pub phase: &'static str,
}

/// A DaemonSetRollout wave's nodes in one state (desired, updated, available).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaveLabels {
    pub namespace: String,
    pub name: String,
    /// The wave's label value ("" for nodes without the label).
    pub wave: String,
    pub state: &'static str,
}

/// The outcome of one reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// Why a reconcile failed (`Error::metric_label` of the controller).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// One of the controller's watches: `daemonsets`, `pods`, `nodes` or `controllerrevisions`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub kind: &'static str,
}

/// One DaemonSet status counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    pub namespace: String,
    pub name: String,
    /// desired, current, ready, updated, available, unavailable, misscheduled.
    pub state: &'static str,
}

/// One API request: the client that sent it (`controller`, `watches` or `lease`, each with its own
/// client-side budget), the verb (HTTP method, or WATCH for a watch) and the HTTP status code (or
/// `error` when no response came back).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub client: String,
    pub verb: String,
    pub code: String,
}

/// The verb label of a request: `WATCH` for a watch (`watch=true` or `watch=1` in the query, as
/// kube-rs and client-go send it), else the HTTP method.
pub fn request_verb(method: &http::Method, query: Option<&str>) -> String {
    let watch = query.is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "watch=true" | "watch=1"))
    });
    if watch {
        "WATCH".to_string()
    } else {
        method.as_str().to_string()
    }
}

/// The code label of a request: the HTTP status code, or `error` when the request failed without a
/// response (connection refused, timeout, TLS error...).
pub fn request_code(status: Option<http::StatusCode>) -> String {
    status.map_or_else(|| "error".to_string(), |s| s.as_u16().to_string())
}

/// The status counters exported per DaemonSet, with their `state` label.
pub fn rollout_states(c: &StatusCounters) -> [(&'static str, i32); 7] {
    [
        ("desired", c.desired_number_scheduled),
        ("current", c.current_number_scheduled),
        ("ready", c.number_ready),
        ("updated", c.updated_number_scheduled),
        ("available", c.number_available),
        ("unavailable", c.number_unavailable),
        ("misscheduled", c.number_misscheduled),
    ]
}

fn phase_labels(ds: &DaemonSetLabels, phase: &'static str) -> PhaseLabels {
    PhaseLabels {
        namespace: ds.namespace.clone(),
        name: ds.name.clone(),
        phase,
    }
}

fn wave_labels(ds: &DaemonSetLabels, wave: &str, state: &'static str) -> WaveLabels {
    WaveLabels {
        namespace: ds.namespace.clone(),
        name: ds.name.clone(),
        wave: wave.to_string(),
        state,
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of everynode.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    reconcile_errors: Family<ReasonLabels, Counter>,
    watch_healthy: Family<WatchLabels, Gauge>,
    undecodable_objects: Family<WatchLabels, Counter>,
    queue_depth: Gauge,
    node_queue_depth: Gauge,
    pods_created: Family<DaemonSetLabels, Counter>,
    pods_deleted: Family<DaemonSetLabels, Counter>,
    pods_create_failed: Family<DaemonSetLabels, Counter>,
    pods_delete_failed: Family<DaemonSetLabels, Counter>,
    rate_limiter_wait: HistogramFamily<ClientLabels>,
    events_dropped: Counter,
    progress: Arc<RolloutProgress>,
    expectations_adds: Gauge,
    expectations_deletes: Gauge,
    rollout: Family<RolloutLabels, Gauge>,
    nodes: Family<NodesLabels, Gauge>,
    leader: Gauge,
    api_requests: Family<RequestLabels, Counter>,
    api_request_duration: HistogramFamily<RequestLabels>,
    rollout_phase: Family<PhaseLabels, Gauge>,
    rollout_step: Family<DaemonSetLabels, Gauge>,
    rollout_wave_nodes: Family<WaveLabels, Gauge>,
    rollout_deletions_held: Family<DaemonSetLabels, Gauge>,
    rollout_rollbacks: Family<DaemonSetLabels, Counter>,
    /// The wave values each policy's gauges were last set for (to remove departed waves).
    rollout_waves: Mutex<HashMap<DaemonSetLabels, Vec<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("everynode");
        let m = Self {
            reconciles: Family::default(),
            reconcile_duration: latency_histogram(),
            reconcile_errors: Family::default(),
            watch_healthy: Family::default(),
            undecodable_objects: Family::default(),
            queue_depth: Gauge::default(),
            node_queue_depth: Gauge::default(),
            pods_created: Family::default(),
            pods_deleted: Family::default(),
            pods_create_failed: Family::default(),
            pods_delete_failed: Family::default(),
            rate_limiter_wait: Family::new_with_constructor(latency_histogram),
            events_dropped: Counter::default(),
            progress: Arc::default(),
            expectations_adds: Gauge::default(),
            expectations_deletes: Gauge::default(),
            rollout: Family::default(),
            nodes: Family::default(),
            leader: Gauge::default(),
            api_requests: Family::default(),
            api_request_duration: Family::new_with_constructor(latency_histogram),
            rollout_phase: Family::default(),
            rollout_step: Family::default(),
            rollout_wave_nodes: Family::default(),
            rollout_deletions_held: Family::default(),
            rollout_rollbacks: Family::default(),
            rollout_waves: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "build",
            "The version of everynode and the Kubernetes API version it was built for",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("kubernetes", "1.36".to_string()),
            ]),
        );
        registry.register(
            "pods_delete_failed",
            "Daemon pod deletions the API server refused or that failed, by DaemonSet",
            m.pods_delete_failed.clone(),
        );
        registry.register(
            "rate_limiter_duration_seconds",
            "Time API requests waited for the client-side rate limit (--kube-api-qps), by client",
            m.rate_limiter_wait.clone(),
        );
        registry.register(
            "events_dropped",
            "Events not sent because the queue of recorded events was full",
            m.events_dropped.clone(),
        );
        registry.register_collector(Box::new(m.progress.clone()));
        for reason in ERROR_REASONS {
            let _ = m.reconcile_errors.get_or_create(&ReasonLabels { reason });
        }
        for kind in ["daemonsets", "pods", "nodes", "controllerrevisions"] {
            let _ = m.undecodable_objects.get_or_create(&WatchLabels { kind });
        }
        for result in ["success", "error"] {
            let _ = m.reconciles.get_or_create(&ResultLabels { result });
        }
        registry.register(
            "reconciles",
            "DaemonSet syncs by result (success or error)",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one DaemonSet sync",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed DaemonSet syncs by reason (permanent reasons wait for a change of the DaemonSet)",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "watch_healthy",
            "1 while the watch of this kind delivers events, 0 from a failure until it recovers",
            m.watch_healthy.clone(),
        );
        registry.register(
            "undecodable_objects",
            "Watched objects that could not be decoded and were left out of the cache, by kind",
            m.undecodable_objects.clone(),
        );
        registry.register(
            "workqueue_depth",
            "DaemonSets queued for a sync and not yet taken by the controller",
            m.queue_depth.clone(),
        );
        registry.register(
            "node_queue_depth",
            "Nodes queued for the node worker and not yet taken by it",
            m.node_queue_depth.clone(),
        );
        registry.register(
            "pods_created",
            "Daemon pods created, by DaemonSet",
            m.pods_created.clone(),
        );
        registry.register(
            "pods_deleted",
            "Daemon pods deleted, by DaemonSet",
            m.pods_deleted.clone(),
        );
        registry.register(
            "pods_create_failed",
            "Daemon pod creations the API server refused or that failed, by DaemonSet",
            m.pods_create_failed.clone(),
        );
        registry.register(
            "expectations_outstanding_adds",
            "Pod creations issued whose pods the watch has not shown yet",
            m.expectations_adds.clone(),
        );
        registry.register(
            "expectations_outstanding_deletes",
            "Pod deletions issued whose deletion the watch has not shown yet",
            m.expectations_deletes.clone(),
        );
        registry.register(
            "daemonset_pods",
            "Status counters of each DaemonSet as last written (state: desired, current, ready, updated, available, unavailable, misscheduled)",
            m.rollout.clone(),
        );
        registry.register(
            "daemonset_nodes",
            "Nodes of each DaemonSet by why they have or lack its pod, as of its last sync (class: ok = runs an up-to-date available pod; excluded = does not qualify for a pod: nodeSelector, node affinity, an untolerated taint or the template's nodeName; waiting = qualifies and its pod is on its way: not created yet, starting, outdated or terminating; failed = qualifies but its pod will not become available by waiting: the scheduler cannot place it, a container keeps failing, or the pod failed)",
            m.nodes.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader lease (or runs without leader election), else 0",
            m.leader.clone(),
        );
        registry.register(
            "api_requests",
            "Requests to the API server by client, verb and HTTP status code",
            m.api_requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "Latency of API requests (until the response headers) by client, verb and HTTP status code",
            m.api_request_duration.clone(),
        );
        registry.register(
            "rollout_phase",
            "Phase of each DaemonSetRollout: 1 for its current phase, 0 for the others",
            m.rollout_phase.clone(),
        );
        registry.register(
            "rollout_step",
            "Current step of each DaemonSetRollout (0 is the canary when it has one, then the waves)",
            m.rollout_step.clone(),
        );
        registry.register(
            "rollout_wave_nodes",
            "Nodes of each DaemonSetRollout wave by state (desired, updated, available)",
            m.rollout_wave_nodes.clone(),
        );
        registry.register(
            "rollout_deletions_held",
            "Pod deletions the mass-deletion guard of each DaemonSetRollout holds",
            m.rollout_deletions_held.clone(),
        );
        registry.register(
            "rollout_rollbacks",
            "Rollbacks everynode wrote into a DaemonSet (failurePolicy Rollback or abort), by DaemonSet",
            m.rollout_rollbacks.clone(),
        );
        Self {
            registry: root,
            ..m
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// The registry in `format`.
    pub fn encode_as(&self, format: Format) -> Result<String, std::fmt::Error> {
        let openmetrics = self.encode()?;
        Ok(match format {
            Format::OpenMetrics => openmetrics,
            Format::Text004 => openmetrics_to_text(&openmetrics),
        })
    }

    pub fn reconciled(&self, ok: bool, took: Duration) {
        let result = if ok { "success" } else { "error" };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// A failed sync, by the reason label of its error.
    pub fn reconcile_failed(&self, reason: &'static str) {
        self.reconcile_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn set_watch_healthy(&self, kind: &'static str, healthy: bool) {
        self.watch_healthy
            .get_or_create(&WatchLabels { kind })
            .set(i64::from(healthy));
    }

    pub fn undecodable_object(&self, kind: &'static str) {
        self.undecodable_objects
            .get_or_create(&WatchLabels { kind })
            .inc();
    }

    /// The number of DaemonSets queued for a sync and not yet taken by a worker.
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The number of nodes waiting in the node queue.
    pub fn set_node_queue_depth(&self, depth: usize) {
        self.node_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub fn pod_created(&self, ds: &DaemonSetLabels) {
        self.pods_created.get_or_create(ds).inc();
    }

    pub fn pod_deleted(&self, ds: &DaemonSetLabels) {
        self.pods_deleted.get_or_create(ds).inc();
    }

    pub fn pod_create_failed(&self, ds: &DaemonSetLabels) {
        self.pods_create_failed.get_or_create(ds).inc();
    }

    pub fn pod_delete_failed(&self, ds: &DaemonSetLabels) {
        self.pods_delete_failed.get_or_create(ds).inc();
    }

    pub fn event_dropped(&self) {
        self.events_dropped.inc();
    }

    /// A request of `client` waited this long for the rate limit.
    pub fn rate_limited(&self, client: &'static str, waited: Duration) {
        self.rate_limiter_wait
            .get_or_create(&ClientLabels { client })
            .observe(waited.as_secs_f64());
    }

    /// Outstanding expectations, from [`crate::core::expectations::Expectations::waiting`].
    pub fn set_expectations(&self, (adds, deletes): (i64, i64)) {
        self.expectations_adds.set(adds);
        self.expectations_deletes.set(deletes);
    }

    /// The counters a sync of `ds` computed at `now`: the per-state gauges, the rollout's progress,
    /// and the per-DaemonSet failure counters at 0 from the first sync on.
    pub fn set_rollout(&self, ds: &DaemonSetLabels, counters: &StatusCounters, now: Timestamp) {
        for family in [
            &self.pods_created,
            &self.pods_deleted,
            &self.pods_create_failed,
            &self.pods_delete_failed,
        ] {
            let _ = family.get_or_create(ds);
        }
        self.progress.record(ds, *counters, now);
        for (state, value) in rollout_states(counters) {
            self.rollout
                .get_or_create(&rollout_labels(ds, state))
                .set(i64::from(value));
        }
    }

    /// A DaemonSet's nodes by reason class (`core::node_reason::Explanation::by_class`), from a
    /// full sync: every class is set, absent ones to 0.
    pub fn set_nodes(&self, ds: &DaemonSetLabels, by_class: &BTreeMap<ReasonClass, usize>) {
        for class in ReasonClass::ALL {
            let n = by_class.get(&class).copied().unwrap_or(0);
            self.nodes
                .get_or_create(&nodes_labels(ds, class))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The gauges of a DaemonSet's policy from the status a sync decided.
    pub fn set_rollout_policy(
        &self,
        ds: &DaemonSetLabels,
        status: &crate::api::DaemonSetRolloutStatus,
    ) {
        for phase in crate::api::Phase::ALL {
            self.rollout_phase
                .get_or_create(&phase_labels(ds, phase.as_str()))
                .set(i64::from(status.phase == Some(phase)));
        }
        match &status.step {
            Some(step) => {
                self.rollout_step
                    .get_or_create(ds)
                    .set(i64::from(step.index));
            }
            None => {
                self.rollout_step.remove(ds);
            }
        }
        self.rollout_deletions_held.get_or_create(ds).set(
            status
                .held_deletions
                .as_ref()
                .map_or(0, |h| i64::from(h.pods)),
        );
        let waves: Vec<String> = status.waves.iter().map(|w| w.value.clone()).collect();
        let gone = {
            let mut known = self.rollout_waves.lock().unwrap_or_else(|e| e.into_inner());
            let before = known.insert(ds.clone(), waves.clone()).unwrap_or_default();
            before
                .into_iter()
                .filter(|w| !waves.contains(w))
                .collect::<Vec<_>>()
        };
        for wave in gone {
            self.remove_wave(ds, &wave);
        }
        for w in &status.waves {
            for (state, n) in [
                ("desired", w.node_count),
                ("updated", w.updated),
                ("available", w.available),
            ] {
                self.rollout_wave_nodes
                    .get_or_create(&wave_labels(ds, &w.value, state))
                    .set(i64::from(n));
            }
        }
    }

    fn remove_wave(&self, ds: &DaemonSetLabels, wave: &str) {
        for state in ["desired", "updated", "available"] {
            self.rollout_wave_nodes
                .remove(&wave_labels(ds, wave, state));
        }
    }

    /// One rollback written into the DaemonSet.
    pub fn rolled_back(&self, ds: &DaemonSetLabels) {
        self.rollout_rollbacks.get_or_create(ds).inc();
    }

    /// Forgets the gauges of a DaemonSet's policy (deleted, or its DaemonSet deleted).
    pub fn forget_rollout_policy(&self, ds: &DaemonSetLabels) {
        for phase in crate::api::Phase::ALL {
            self.rollout_phase.remove(&phase_labels(ds, phase.as_str()));
        }
        self.rollout_step.remove(ds);
        self.rollout_deletions_held.remove(ds);
        let waves = self
            .rollout_waves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ds)
            .unwrap_or_default();
        for wave in waves {
            self.remove_wave(ds, &wave);
        }
    }

    /// Forgets a deleted DaemonSet's gauges (its counters stay: they are totals).
    pub fn forget_daemonset(&self, ds: &DaemonSetLabels) {
        self.forget_rollout_policy(ds);
        for (state, _) in rollout_states(&StatusCounters::default()) {
            self.rollout.remove(&rollout_labels(ds, state));
        }
        for class in ReasonClass::ALL {
            self.nodes.remove(&nodes_labels(ds, class));
        }
        self.progress.forget(ds);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn api_request(&self, labels: &RequestLabels, took: Duration) {
        self.api_requests.get_or_create(labels).inc();
        self.api_request_duration
            .get_or_create(labels)
            .observe(took.as_secs_f64());
    }
}

/// The `reason` labels of `everynode_reconcile_errors_total`, exported at 0 from the start.
pub const ERROR_REASONS: [&str; 9] = [
    "api",
    "invalid_budget",
    "invalid_spec",
    "claim",
    "history",
    "rolling_update",
    "sync_nodes",
    "status",
    "rollout",
];

/// One API client (`controller`, `watches`, `lease`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub client: &'static str,
}

/// How `/metrics` answers: OpenMetrics when the scrape asks for it, else the Prometheus text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text004,
}

impl Format {
    /// The format an `Accept` header asks for (Prometheus sends `application/openmetrics-text` first
    /// when it can parse it).
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text004,
        }
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition as prometheus-client writes it:
/// `# HELP`/`# TYPE` of counters name the `_total` series, info metrics become gauges named
/// `_info`, `# UNIT` and `# EOF` lines go. Samples are unchanged.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut types: HashMap<&str, &str> = HashMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            types.insert(name, kind);
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let (renamed, kind) = match types.get(name).copied() {
                Some("counter") => (format!("{name}_total"), "counter"),
                Some("info") => (format!("{name}_info"), "gauge"),
                Some(kind) => (name.to_string(), kind),
                None => return None,
            };
            Some(if *prefix == "# TYPE " {
                format!("# TYPE {renamed} {kind}")
            } else {
                format!("# HELP {renamed} {tail}")
            })
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The last progress of every DaemonSet's rollout, exported at scrape time as
/// `everynode_daemonset_rollout_stalled_seconds`.
#[derive(Debug, Default)]
pub struct RolloutProgress {
    by_daemonset: Mutex<HashMap<DaemonSetLabels, Progress>>,
}

impl RolloutProgress {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DaemonSetLabels, Progress>> {
        self.by_daemonset.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, ds: &DaemonSetLabels, counters: StatusCounters, now: Timestamp) {
        let mut all = self.lock();
        let next = track(all.get(ds), counters, now);
        all.insert(ds.clone(), next);
    }

    fn forget(&self, ds: &DaemonSetLabels) {
        self.lock().remove(ds);
    }
}

impl Collector for RolloutProgress {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Timestamp::now();
        let all = self.lock();
        let mut family = encoder.encode_descriptor(
            "daemonset_rollout_stalled_seconds",
            "Seconds since the DaemonSet's rollout last made progress (more pods updated or available); 0 when it is complete.",
            None,
            MetricType::Gauge,
        )?;
        for (ds, progress) in all.iter() {
            ConstGauge::new(stalled_seconds(progress, now)).encode(family.encode_family(ds)?)?;
        }
        Ok(())
    }
}

/// The standard process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, ...), read from /proc at each scrape by the `metrics-process` crate.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = metrics_process::collector::collect();
        if let Some(v) = p.cpu_seconds_total {
            ConstCounter::new(v).encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
        }
        let gauges = [
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                p.max_fds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_memory_bytes,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_memory_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.",
                p.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                p.threads,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                ConstGauge::new(v).encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    MetricType::Gauge,
                )?)?;
            }
        }
        Ok(())
    }
}

fn nodes_labels(ds: &DaemonSetLabels, class: ReasonClass) -> NodesLabels {
    NodesLabels {
        namespace: ds.namespace.clone(),
        name: ds.name.clone(),
        class: class.as_str(),
    }
}

fn rollout_labels(ds: &DaemonSetLabels, state: &'static str) -> RolloutLabels {
    RolloutLabels {
        namespace: ds.namespace.clone(),
        name: ds.name.clone(),
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_labelled_watch_and_other_requests_by_method() {
        let get = http::Method::GET;
        assert_eq!(
            request_verb(&get, Some("watch=true&resourceVersion=1")),
            "WATCH"
        );
        assert_eq!(request_verb(&get, Some("labelSelector=a&watch=1")), "WATCH");
        assert_eq!(request_verb(&get, Some("watch=false")), "GET");
        assert_eq!(
            request_verb(&get, Some("labelSelector=watch%3Dtrue")),
            "GET"
        );
        assert_eq!(request_verb(&get, None), "GET");
        assert_eq!(request_verb(&http::Method::PATCH, None), "PATCH");
    }

    #[test]
    fn code_is_the_status_or_error() {
        assert_eq!(request_code(Some(http::StatusCode::CONFLICT)), "409");
        assert_eq!(request_code(None), "error");
    }

    #[test]
    fn encoded_metrics_carry_the_prefix_labels_and_values() {
        let m = Metrics::new();
        let ds = DaemonSetLabels::new("ns", "agent");
        m.pod_created(&ds);
        m.pod_created(&ds);
        m.reconciled(true, Duration::from_millis(3));
        m.set_rollout(
            &ds,
            &StatusCounters {
                desired_number_scheduled: 3,
                number_ready: 2,
                number_unavailable: 1,
                ..Default::default()
            },
            Timestamp::now(),
        );
        m.set_nodes(
            &ds,
            &[(ReasonClass::Ok, 2), (ReasonClass::Excluded, 1)]
                .into_iter()
                .collect(),
        );
        m.set_leader(true);
        m.api_request(
            &RequestLabels {
                client: "watches".into(),
                verb: "WATCH".into(),
                code: "200".into(),
            },
            Duration::from_millis(1),
        );
        let text = m.encode().expect("encode");
        for line in [
            r#"everynode_pods_created_total{namespace="ns",name="agent"} 2"#,
            r#"everynode_reconciles_total{result="success"} 1"#,
            r#"everynode_daemonset_pods{namespace="ns",name="agent",state="desired"} 3"#,
            r#"everynode_daemonset_pods{namespace="ns",name="agent",state="ready"} 2"#,
            r#"everynode_daemonset_pods{namespace="ns",name="agent",state="unavailable"} 1"#,
            r#"everynode_pods_create_failed_total{namespace="ns",name="agent"} 0"#,
            r#"everynode_daemonset_nodes{namespace="ns",name="agent",class="ok"} 2"#,
            r#"everynode_daemonset_nodes{namespace="ns",name="agent",class="excluded"} 1"#,
            r#"everynode_daemonset_nodes{namespace="ns",name="agent",class="waiting"} 0"#,
            r#"everynode_daemonset_nodes{namespace="ns",name="agent",class="failed"} 0"#,
            r#"everynode_pods_delete_failed_total{namespace="ns",name="agent"} 0"#,
            r#"everynode_reconcile_errors_total{reason="sync_nodes"} 0"#,
            r#"everynode_reconciles_total{result="error"} 0"#,
            r#"everynode_build_info{version="0.1.0",kubernetes="1.36"} 1"#,
            "everynode_leader 1",
            r#"everynode_api_requests_total{client="watches",verb="WATCH",code="200"} 1"#,
            "everynode_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        for family in [
            r#"everynode_daemonset_rollout_stalled_seconds{namespace="ns",name="agent"} "#,
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(family)),
                "{family} missing in\n{text}"
            );
        }
        m.forget_daemonset(&ds);
        let text = m.encode().expect("encode");
        assert!(!text.contains("everynode_daemonset_pods{"), "{text}");
        assert!(!text.contains("everynode_daemonset_nodes{"), "{text}");
        assert!(!text.contains("rollout_stalled_seconds{"), "{text}");
    }

    /// The Prometheus text format names counter families by their `_total` series (else
    /// Prometheus types them untyped), info metrics become gauges, and OpenMetrics-only lines go.
    #[test]
    fn the_text_format_is_what_prometheus_0_0_4_parses() {
        let m = Metrics::new();
        m.reconciled(true, Duration::from_millis(3));
        m.rate_limited("controller", Duration::from_millis(20));
        let text = m.encode_as(Format::Text004).expect("encode");
        for line in [
            "# TYPE everynode_reconciles_total counter",
            "# HELP everynode_reconciles_total DaemonSet syncs by result (success or error).",
            r#"everynode_reconciles_total{result="success"} 1"#,
            "# TYPE everynode_build_info gauge",
            "# TYPE process_cpu_seconds_total counter",
            "# TYPE everynode_reconcile_duration_seconds histogram",
            r#"everynode_rate_limiter_duration_seconds_count{client="controller"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        for gone in ["# EOF", "# UNIT", "# TYPE everynode_reconciles counter"] {
            assert!(!text.contains(gone), "{gone} in\n{text}");
        }
        let om = m.encode_as(Format::OpenMetrics).expect("encode");
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE everynode_reconciles counter"));
    }

    #[test]
    fn the_accept_header_chooses_the_format() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text004);
        assert_eq!(Format::from_accept(None), Format::Text004);
        assert!(
            Format::OpenMetrics
                .content_type()
                .starts_with("application/openmetrics-text")
        );
        assert!(
            Format::Text004
                .content_type()
                .starts_with("text/plain; version=0.0.4")
        );
    }
}
