//! Creating and deleting daemon pods for one sync (upstream `syncNodes`, §4): burst limits,
//! expectations set before any request, slow-start create batches, concurrent deletes, events.
//!
//! `[difference]` Under the default `--create-pacing=fast` the creates are not truncated to the
//! burst limit: the sync sends upstream's batches over every create it needs, chunk after chunk,
//! counting creates from the responses instead of waiting for the watch between chunks
//! (`core::create_pacing`, docs/differences.md). `--create-pacing=upstream` is upstream's pacing.

use super::Error;
use super::context::{Context, ds_labels, lock};
use super::daemonset_object::CachedDaemonSet;
use crate::core::Timestamp;
use crate::core::cached_pod::CachedPod;
use crate::core::create_pacing::Pacer;
use crate::core::events::{
    FAILED_CREATE, FAILED_DELETE, PlannedEvent, SUCCESSFUL_CREATE, SUCCESSFUL_DELETE,
};
use crate::core::expectations::{CreateAnswer, create_outcome_unknown};
use crate::core::pod_template::new_pod;
use crate::core::slow_start::{AfterBatch, truncate_to_burst};
use futures::future::join_all;
use kube::api::{Api, DeleteParams};
use tracing::{debug, info, warn};

enum CreateError {
    /// The namespace is being deleted: ignored without an event or expectation change (upstream quirk).
    NamespaceTerminating,
    Other(kube::Error),
}

/// What a failed request's error says about whether the API server acted on it.
fn answer_of(e: &kube::Error) -> CreateAnswer {
    match e {
        kube::Error::Api(s) => CreateAnswer::Status(s.code),
        kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::SerdeError(_)
        | kube::Error::ReadEvents(_) => CreateAnswer::NoAnswer,
        _ => CreateAnswer::NotSent,
    }
}

fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}

/// Creates the pod of `ds` for `node`: the request `Api::<Pod>::create` sends (`pods`: the pods of
/// the DaemonSet's namespace), its answer decoded as the cache decodes pods. Only the created pod's
/// name is read; a whole k8s-openapi `Pod` is thousands of bytes to decode and drop per create, and
/// a burst of creates is in flight at once. For the same reason the pod is encoded, and dropped,
/// before the request goes.
async fn create_one(
    client: &kube::Client,
    pods: &kube::core::Request,
    ds: &CachedDaemonSet,
    node: &str,
    hash: &str,
) -> Result<String, CreateError> {
    let sent = async {
        let body =
            serde_json::to_vec(&new_pod(&ds.ds, hash, node)).map_err(kube::Error::SerdeError)?;
        let mut request = pods
            .create(&super::post_params(), body)
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("create");
        client.request::<CachedPod>(request).await
    };
    match sent.await {
        Ok(p) => Ok(p.metadata.name.unwrap_or_default()),
        Err(e) if namespace_terminating(&e) => Err(CreateError::NamespaceTerminating),
        Err(e) => Err(CreateError::Other(e)),
    }
}

/// Creates pods on `nodes` (all of them, or the first
/// [`BURST_REPLICAS`](crate::core::labels::BURST_REPLICAS) under upstream pacing) and deletes `pods`
/// (truncated to the burst limit), with revision `hash`. Returns the aggregated errors; expectations
/// always end consistent with what was sent.
pub async fn sync_nodes(
    ctx: &Context,
    ds: &CachedDaemonSet,
    nodes: &[String],
    pods: &[String],
    hash: &str,
) -> Result<(), Error> {
    let key = ds.key();
    let uid = ds.uid();
    let creates = ctx.pacing.creates(nodes);
    let deletes = truncate_to_burst(pods);
    lock(&ctx.expectations).expect(uid, creates, deletes, Timestamp::now());
    if creates.is_empty() && deletes.is_empty() {
        return Ok(());
    }
    debug!(daemonset = %key, creates = creates.len(), deletes = deletes.len(), "syncing nodes");
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    // Pods as the cache decodes them: what a create or delete answers is read for its name only.
    let api: Api<CachedPod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = kube::core::Request::new(api.resource_url());
    let mut errors = Vec::new();
    let labels = ds_labels(ds);
    let (mut created, mut deleted) = (0usize, 0usize);

    let mut slow = Pacer::new(creates.len());
    while let Some(batch) = slow.next_batch() {
        let results = join_all(
            creates[batch.clone()]
                .iter()
                .map(|node| create_one(&ctx.client, &pods, ds, node, hash)),
        )
        .await;
        let mut new_errors = 0;
        for (node, result) in creates[batch].iter().zip(results) {
            match result {
                Ok(name) => {
                    created += 1;
                    ctx.metrics.pod_created(&labels);
                    ctx.events.publish(
                        ds,
                        PlannedEvent::normal(SUCCESSFUL_CREATE, format!("Created pod: {name}")),
                    )
                }
                Err(CreateError::NamespaceTerminating) => {}
                Err(CreateError::Other(e)) => {
                    ctx.metrics.pod_create_failed(&labels);
                    warn!(daemonset = %key, node = %node, "failed to create pod: {e}");
                    ctx.events.publish(
                        ds,
                        PlannedEvent::warning(FAILED_CREATE, format!("Error creating: {e}")),
                    );
                    if create_outcome_unknown(answer_of(&e)) {
                        // [difference] The pod may exist: its observation (or 5 s) frees the next
                        // sync, which otherwise could create a second pod on this node
                        // (`core::expectations`, docs/differences.md).
                        lock(&ctx.expectations).creation_unconfirmed(uid, node, Timestamp::now());
                    } else {
                        lock(&ctx.expectations).creation_observed(uid, node);
                    }
                    errors.push(format!("create pod on node {node}: {e}"));
                    new_errors += 1;
                }
            }
        }
        if let AfterBatch::Abort { skipped } = slow.finish_batch(new_errors) {
            lock(&ctx.expectations).creations_skipped(uid, &creates[creates.len() - skipped..]);
            break;
        }
    }

    let dp = DeleteParams::default();
    let results = join_all(deletes.iter().map(|name| api.delete(name, &dp))).await;
    for (name, result) in deletes.iter().zip(results) {
        match result {
            Ok(_) => {
                deleted += 1;
                ctx.metrics.pod_deleted(&labels);
                ctx.events.publish(
                    ds,
                    PlannedEvent::normal(SUCCESSFUL_DELETE, format!("Deleted pod: {name}")),
                )
            }
            Err(e) => {
                lock(&ctx.expectations).deletion_observed(uid, name);
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    ctx.metrics.pod_delete_failed(&labels);
                    warn!(daemonset = %key, pod = %name, "failed to delete pod: {e}");
                    ctx.events.publish(
                        ds,
                        PlannedEvent::warning(FAILED_DELETE, format!("Error deleting: {e}")),
                    );
                    errors.push(format!("delete pod {name}: {e}"));
                }
            }
        }
    }
    if created + deleted > 0 || !errors.is_empty() {
        info!(
            daemonset = %key,
            failed = errors.len(),
            "created {created}, deleted {deleted} pods"
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::SyncNodes {
            daemonset: key,
            errors,
        })
    }
}
