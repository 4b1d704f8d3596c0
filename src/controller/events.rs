//! Publishing the core's planned events on DaemonSets as core/v1 Events from source component
//! `daemonset-controller`, like upstream's event recorder: the core's [`EventCorrelator`] turns
//! repeats into count updates, combines many similar events and holds back spam (25 per object, then
//! one per 5 minutes). Publishing runs in a background task so a sync never waits on it.

use super::daemonset_object::CachedDaemonSet;
use crate::core::events::{EventType, PlannedEvent};
use crate::runtime::event_correlator::{Decision, EventCorrelator};
use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tracing::{debug, warn};

/// Sends events to the publishing task.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<(ObjectReference, PlannedEvent)>,
}

impl EventSink {
    /// Starts the publishing task; `host` names this controller instance in `source.host`.
    pub fn start(client: kube::Client, host: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded::<(ObjectReference, PlannedEvent)>();
        tokio::spawn(async move {
            let mut correlator = EventCorrelator::default();
            let mut last_gc = Timestamp::now();
            while let Some((reference, ev)) = rx.next().await {
                let now = Timestamp::now();
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
                let (name, message) = match correlator.correlate(
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
                    } => {
                        let patch = serde_json::json!({"count": count, "message": message, "lastTimestamp": Time(now)});
                        match api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            Ok(_) => continue,
                            // Expired (events live an hour) or deleted: create it again.
                            Err(e) => {
                                debug!("cannot update event {name}: {e}; creating it");
                                (name, message)
                            }
                        }
                    }
                    Decision::Create { name, message } => (name, message),
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
                    count: Some(1),
                    first_timestamp: Some(Time(now)),
                    last_timestamp: Some(Time(now)),
                    reporting_component: Some(crate::core::labels::EVENT_COMPONENT.into()),
                    reporting_instance: Some(host.clone()),
                    ..Default::default()
                };
                if let Err(e) = api.create(&PostParams::default(), &event).await {
                    warn!(reason = ev.reason, message = %ev.message, "cannot publish event: {e}");
                }
            }
            debug!("event publisher stopped");
        });
        Self { tx }
    }

    /// Queues `event` on `ds`.
    pub fn publish(&self, ds: &CachedDaemonSet, event: PlannedEvent) {
        let reference = ds.object_ref(&());
        let _ = self.tx.unbounded_send((reference, event));
    }
}
