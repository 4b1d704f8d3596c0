//! The Prometheus metrics of everynode (prefix `everynode_`): one registry, shared by the controller,
//! the API client layers and the HTTP server that serves it at `/metrics`.

use crate::core::status::StatusCounters;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
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
    /// desired, current, ready, updated, available, misscheduled.
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
pub fn rollout_states(c: &StatusCounters) -> [(&'static str, i32); 6] {
    [
        ("desired", c.desired_number_scheduled),
        ("current", c.current_number_scheduled),
        ("ready", c.number_ready),
        ("updated", c.updated_number_scheduled),
        ("available", c.number_available),
        ("misscheduled", c.number_misscheduled),
    ]
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
    pods_created: Family<DaemonSetLabels, Counter>,
    pods_deleted: Family<DaemonSetLabels, Counter>,
    pods_create_failed: Family<DaemonSetLabels, Counter>,
    expectations_adds: Gauge,
    expectations_deletes: Gauge,
    rollout: Family<RolloutLabels, Gauge>,
    leader: Gauge,
    api_requests: Family<RequestLabels, Counter>,
    api_request_duration: HistogramFamily<RequestLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("everynode");
        let m = Self {
            reconciles: Family::default(),
            reconcile_duration: latency_histogram(),
            reconcile_errors: Family::default(),
            watch_healthy: Family::default(),
            undecodable_objects: Family::default(),
            queue_depth: Gauge::default(),
            pods_created: Family::default(),
            pods_deleted: Family::default(),
            pods_create_failed: Family::default(),
            expectations_adds: Gauge::default(),
            expectations_deletes: Gauge::default(),
            rollout: Family::default(),
            leader: Gauge::default(),
            api_requests: Family::default(),
            api_request_duration: Family::new_with_constructor(latency_histogram),
            registry: Registry::default(),
        };
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
            "Status counters of each DaemonSet as last written (state: desired, current, ready, updated, available, misscheduled)",
            m.rollout.clone(),
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
        Self { registry, ..m }
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
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

    pub fn enqueued(&self) {
        self.queue_depth.inc();
    }

    pub fn dequeued(&self) {
        self.queue_depth.dec();
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

    /// Outstanding expectations, from [`crate::core::expectations::Expectations::waiting`].
    pub fn set_expectations(&self, (adds, deletes): (i64, i64)) {
        self.expectations_adds.set(adds);
        self.expectations_deletes.set(deletes);
    }

    pub fn set_rollout(&self, ds: &DaemonSetLabels, counters: &StatusCounters) {
        for (state, value) in rollout_states(counters) {
            self.rollout
                .get_or_create(&rollout_labels(ds, state))
                .set(i64::from(value));
        }
    }

    /// Forgets a deleted DaemonSet's gauges (its counters stay: they are totals).
    pub fn forget_daemonset(&self, ds: &DaemonSetLabels) {
        for state in [
            "desired",
            "current",
            "ready",
            "updated",
            "available",
            "misscheduled",
        ] {
            self.rollout.remove(&rollout_labels(ds, state));
        }
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
                ..Default::default()
            },
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
            "everynode_leader 1",
            r#"everynode_api_requests_total{client="watches",verb="WATCH",code="200"} 1"#,
            "everynode_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        m.forget_daemonset(&ds);
        let text = m.encode().expect("encode");
        assert!(!text.contains("everynode_daemonset_pods{"), "{text}");
    }
}
