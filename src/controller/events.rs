//! Publishing the core's planned events on DaemonSets as core/v1 Events from source component
//! `daemonset-controller`, like upstream's event recorder: the core's [`EventCorrelator`] turns
//! repeats into count updates, combines many similar events and holds back spam (25 per object, then
//! one per 5 minutes). Publishing runs in a background task so a sync never waits on it.
//!
//! As client-go's broadcaster: an event is stamped when it is recorded, not when it is sent, and
//! waits in a queue of at most [`QUEUED_EVENTS`]; when the queue is full new events are dropped
//! (and counted in `everynode_events_dropped_total`) rather than the queue growing without bound.
//! As in kube-controller-manager, events go through the controller's own client and so share its
//! `--kube-api-qps` budget.

use super::daemonset_object::CachedDaemonSet;
use crate::core::events::{EventType, PlannedEvent};
use crate::runtime::event_correlator::{Decision, EventCorrelator};
use crate::runtime::metrics::Metrics;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch};
use std::sync::Arc;
use tracing::{debug, warn};

/// Events recorded and not yet sent, at most (client-go's `maxQueuedEvents`).
pub const QUEUED_EVENTS: usize = 1000;

/// One recorded event: on what, what, and when it was recorded.
type Recorded = (ObjectReference, PlannedEvent, Timestamp);

/// Sends events to the publishing task.
#[derive(Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::Sender<Recorded>,
    metrics: Arc<Metrics>,
}

impl EventSink {
    /// Starts the publishing task; `host` names this controller instance in `source.host`.
    pub fn start(client: kube::Client, host: String, metrics: Arc<Metrics>) -> Self {
        Self::start_with(client, host, metrics, EventCorrelator::default())
    }

    /// [`EventSink::start`] with `correlator` (tests give it a shorter spam filter).
    pub fn start_with(
        client: kube::Client,
        host: String,
        metrics: Arc<Metrics>,
        mut correlator: EventCorrelator,
    ) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Recorded>(QUEUED_EVENTS);
        tokio::spawn(async move {
            let mut last_gc = Timestamp::now();
            while let Some((reference, ev, now)) = rx.recv().await {
                if now.duration_since(last_gc).as_secs() > 60 {
                    correlator.gc(now);
                    last_gc = now;
                }
                let type_ = match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                };
                let namespace = reference
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let object = reference.name.clone().unwrap_or_default();
                let uid = reference.uid.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                let (name, message, count, first) = match correlator.correlate(
                    &uid,
                    &object,
                    type_,
                    ev.reason,
                    &ev.message,
                    now,
                ) {
                    Decision::Drop => {
                        debug!(reason = ev.reason, message = %ev.message, "event held back by the spam filter");
                        continue;
                    }
                    Decision::Patch {
                        name,
                        count,
                        message,
                        first,
                    } => {
                        let patch = serde_json::json!({"count": count, "message": message, "lastTimestamp": Time(now)});
                        match api
                            .patch(&name, &super::patch_params(), &Patch::Merge(&patch))
                            .await
                        {
                            Ok(_) => continue,
                            // Expired (events live an hour) or deleted: create it again, with the
                            // count and first timestamp the patch carried, as client-go does.
                            Err(kube::Error::Api(status)) if status.code == 404 => {
                                debug!("event {name} is gone; creating it");
                                (name, message, count, first)
                            }
                            // Any other failure: client-go creates only after NotFound (a create of
                            // an Event that exists could only fail), and drops the event.
                            Err(e) => {
                                warn!(reason = ev.reason, message = %message, "cannot update event {name}: {e}");
                                continue;
                            }
                        }
                    }
                    Decision::Create {
                        name,
                        message,
                        count,
                        first,
                    } => (name, message, count, first),
                };
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(namespace),
                        ..Default::default()
                    },
                    involved_object: reference,
                    reason: Some(ev.reason.to_string()),
                    message: Some(message),
                    type_: Some(type_.to_string()),
                    source: Some(EventSource {
                        component: Some(crate::core::labels::EVENT_COMPONENT.into()),
                        host: Some(host.clone()),
                    }),
                    count: Some(count),
                    first_timestamp: Some(Time(first)),
                    last_timestamp: Some(Time(now)),
                    reporting_component: Some(crate::core::labels::EVENT_COMPONENT.into()),
                    reporting_instance: Some(host.clone()),
                    ..Default::default()
                };
                if let Err(e) = api.create(&super::post_params(), &event).await {
                    warn!(reason = ev.reason, message = %ev.message, "cannot publish event: {e}");
                }
            }
            debug!("event publisher stopped");
        });
        Self { tx, metrics }
    }

    /// Records `event` on `ds` now; drops it (and counts the drop) when the queue is full.
    pub fn publish(&self, ds: &CachedDaemonSet, event: PlannedEvent) {
        let reference = ds.object_ref(&());
        let recorded = (reference, event, Timestamp::now());
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = self.tx.try_send(recorded) {
            self.metrics.event_dropped();
            debug!("event queue full ({QUEUED_EVENTS}); event dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An API server that never answers: the publisher is stuck on its first event, the queue
    /// fills, and further events are dropped and counted instead of piling up without bound.
    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_growing() {
        let never = tower::service_fn(|_req: http::Request<kube::client::Body>| {
            std::future::pending::<Result<http::Response<kube::client::Body>, tower::BoxError>>()
        });
        let client = kube::Client::new(never, "default");
        let metrics = Arc::new(Metrics::new());
        let sink = EventSink::start(client, "test".into(), metrics.clone());
        let mut ds = CachedDaemonSet::default();
        ds.ds.metadata.name = Some("agent".into());
        ds.ds.metadata.namespace = Some("default".into());
        for i in 0..QUEUED_EVENTS + 100 {
            sink.publish(&ds, PlannedEvent::normal("Test", format!("event {i}")));
            tokio::task::yield_now().await;
        }
        let text = metrics.encode().unwrap_or_default();
        let dropped: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("everynode_events_dropped_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(
            (90.0..=100.0).contains(&dropped),
            "{dropped} events dropped of {} over a queue of {QUEUED_EVENTS}",
            QUEUED_EVENTS + 100
        );
    }
}
