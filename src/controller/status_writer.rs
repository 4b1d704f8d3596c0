//! Writing DaemonSet status: the core's counters to the status subresource, only when they changed
//! and as the status pacing allows.

use super::Error;
use super::context::{Context, lock};
use super::daemonset_object::CachedDaemonSet;
use crate::core::Timestamp;
use crate::core::status::{StatusCounters, observed_generation_to_write, status_to_write};
use crate::core::status_pacing::StatusWrite;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, Patch};
use serde_json::json;
use std::time::Duration;
use tracing::debug;

/// Whether the API server refused a patch because the object's UID is not the one it carried
/// (409 "Precondition failed: UID in precondition", or 422 "field is immutable" on metadata.uid).
pub fn uid_mismatch(status: &kube::core::Status) -> bool {
    (status.code == 409 || status.code == 422) && status.message.to_lowercase().contains("uid")
}

/// Writes `counters` (and observedGeneration when `update_observed_generation`) as the status
/// pacing decides (`core::status_pacing`): now, or not yet. Returns when the DaemonSet must be
/// synced again to write what was held back.
pub async fn write_paced(
    ctx: &Context,
    ds: &CachedDaemonSet,
    counters: &StatusCounters,
    update_observed_generation: bool,
) -> Result<Option<Duration>, Error> {
    let decision = lock(&ctx.status_pacer).decide(
        ds.uid(),
        &ds.ds,
        counters,
        update_observed_generation,
        Timestamp::now(),
    );
    match decision {
        StatusWrite::Unchanged => Ok(None),
        StatusWrite::After(wait) => {
            debug!(daemonset = %ds.key(), ?counters, ?wait, "status write held back by --status-write-interval");
            Ok(Some(wait))
        }
        StatusWrite::Now => {
            if write_status(&ctx.client, ds, counters, update_observed_generation).await? {
                lock(&ctx.status_pacer).written(
                    ds.uid(),
                    &ds.ds,
                    counters,
                    update_observed_generation,
                    Timestamp::now(),
                );
            }
            Ok(None)
        }
    }
}

/// Writes `counters` (and observedGeneration when `update_observed_generation`) unless the cached
/// status already says the same; returns whether a request was sent.
///
/// [difference] Upstream PUTs the whole status of its cached object and, on failure, GETs the
/// DaemonSet and PUTs once more. everynode sends a JSON merge patch of just the seven counters and
/// observedGeneration (retried once): conditions and collisionCount written by others can never be
/// overwritten with stale values, and no GET is needed (docs/differences.md).
pub async fn write_status(
    client: &kube::Client,
    ds: &CachedDaemonSet,
    counters: &StatusCounters,
    update_observed_generation: bool,
) -> Result<bool, Error> {
    if status_to_write(&ds.ds, counters, update_observed_generation).is_none() {
        return Ok(false);
    }
    debug!(
        daemonset = %ds.key(),
        resource_version = ds.ds.metadata.resource_version.as_deref().unwrap_or_default(),
        generation = ds.ds.metadata.generation.unwrap_or(0),
        observed_generation = ds.ds.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0),
        cached = ?ds.ds.status.as_ref().map(StatusCounters::of),
        ?counters,
        "writing status"
    );
    let mut status = json!({
        "desiredNumberScheduled": counters.desired_number_scheduled,
        "currentNumberScheduled": counters.current_number_scheduled,
        "numberMisscheduled": counters.number_misscheduled,
        "numberReady": counters.number_ready,
        "updatedNumberScheduled": counters.updated_number_scheduled,
        "numberAvailable": counters.number_available,
        "numberUnavailable": counters.number_unavailable,
    });
    if let Some(g) = observed_generation_to_write(&ds.ds, update_observed_generation) {
        status["observedGeneration"] = json!(g);
    }
    // The UID is a precondition (as in the adopt and release patches): the write fails rather than
    // land stale counters on a DaemonSet deleted and recreated under the same name.
    let patch = json!({ "metadata": { "uid": ds.uid() }, "status": status });
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let name = ds.ds.metadata.name.as_deref().unwrap_or_default();
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let mut last = None;
    for _ in 0..2 {
        match api
            .patch_status(name, &super::patch_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(false),
            Err(kube::Error::Api(s)) if uid_mismatch(&s) => {
                debug!(daemonset = %ds.key(), "status not written: the DaemonSet was replaced ({})", s.message);
                return Ok(false);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Status {
        daemonset: ds.key(),
        reason: last.map(|e| e.to_string()).unwrap_or_default(),
    })
}
