//! Publishing the core's planned events on DaemonSets as core/v1 Events from source component
//! `daemonset-controller`, like upstream's event recorder: a repeat of the same event (same object,
//! type, reason and message) within ten minutes increments the existing Event's count instead of
//! creating another. Publishing runs in a background task so a sync never waits on it.

use super::daemonset_object::CachedDaemonSet;
use crate::core::events::{EventType, PlannedEvent};
use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::HashMap;
use tracing::{debug, warn};

/// Sends events to the publishing task.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<(ObjectReference, PlannedEvent)>,
}

/// How long a published event is remembered for aggregation.
const AGGREGATION_WINDOW: SignedDuration = SignedDuration::from_mins(10);

type Key = (String, &'static str, &'static str, String);

struct Published {
    name: String,
    namespace: String,
    count: i32,
    last: Timestamp,
}

impl EventSink {
    /// Starts the publishing task; `host` names this controller instance in `source.host`.
    pub fn start(client: kube::Client, host: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded::<(ObjectReference, PlannedEvent)>();
        tokio::spawn(async move {
            let mut seen: HashMap<Key, Published> = HashMap::new();
            while let Some((reference, ev)) = rx.next().await {
                let now = Timestamp::now();
                seen.retain(|_, p| now.duration_since(p.last) < AGGREGATION_WINDOW);
                let type_ = match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                };
                let key = (
                    reference.uid.clone().unwrap_or_default(),
                    type_,
                    ev.reason,
                    ev.message.clone(),
                );
                if let Some(p) = seen.get_mut(&key) {
                    let api: Api<Event> = Api::namespaced(client.clone(), &p.namespace);
                    let patch =
                        serde_json::json!({"count": p.count + 1, "lastTimestamp": Time(now)});
                    match api
                        .patch(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {
                            p.count += 1;
                            p.last = now;
                            continue;
                        }
                        Err(e) => debug!("cannot update event {}: {e}; creating a new one", p.name),
                    }
                }
                let namespace = reference
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let object = reference.name.clone().unwrap_or_default();
                let name = format!("{object}.{:x}", now.as_nanosecond());
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    },
                    involved_object: reference,
                    reason: Some(ev.reason.to_string()),
                    message: Some(ev.message.clone()),
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
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                match api.create(&PostParams::default(), &event).await {
                    Ok(_) => {
                        seen.insert(
                            key,
                            Published {
                                name,
                                namespace,
                                count: 1,
                                last: now,
                            },
                        );
                    }
                    Err(e) => {
                        warn!(reason = ev.reason, message = %ev.message, "cannot publish event: {e}")
                    }
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
