//! `Mode::Rollback`: write the template of an earlier revision back into the DaemonSet, as
//! `kubectl rollout undo` does: a strategic merge patch of the ControllerRevision's `data`
//! (`{"spec":{"template":{.., "$patch":"replace"}}}`) with the cached DaemonSet's
//! `metadata.resourceVersion` as a precondition, so a template changed meanwhile is never
//! overwritten.

use super::Error;
use super::context::{Context, ds_labels, read};
use super::daemonset_object::CachedDaemonSet;
use crate::core::events::PlannedEvent;
use crate::core::rollout::RollbackOrder;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, Patch};
use serde_json::json;
use tracing::warn;

/// The Warning event of a rollback.
pub const ROLLED_BACK: &str = "RolledBack";
/// The Warning event of a rollback the controller may not perform.
pub const ROLLBACK_FORBIDDEN: &str = "RollbackForbidden";

/// How a rollback went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The template was written back.
    Done,
    /// The DaemonSet changed since it was read (409): plan again on the new object.
    Conflict,
    /// The controller may not patch DaemonSets (403); said in an event.
    Forbidden,
    /// The ControllerRevision is not in the cache (removed meanwhile): plan again.
    RevisionGone,
}

/// The patch body: the revision's `data` with the DaemonSet's resourceVersion as a precondition.
pub fn undo_patch(data: &serde_json::Value, resource_version: &str) -> serde_json::Value {
    let mut patch = data.clone();
    if !patch.is_object() {
        patch = json!({});
    }
    patch["metadata"] = json!({"resourceVersion": resource_version});
    patch
}

/// Performs `order` on `ds`.
pub async fn undo(
    ctx: &Context,
    ds: &CachedDaemonSet,
    order: &RollbackOrder,
) -> Result<Undo, Error> {
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let name = ds.ds.metadata.name.as_deref().unwrap_or_default();
    let revision = read(&ctx.caches.revisions).get(ns, &order.revision_name);
    let Some(data) = revision
        .filter(|r| crate::core::ownership::controller_uid(&r.metadata) == Some(ds.uid()))
        .and_then(|r| r.data.as_ref().map(|d| d.0.clone()))
    else {
        warn!(daemonset = %ds.key(), revision = %order.revision_name, "rollback target revision is gone; planning again");
        return Ok(Undo::RevisionGone);
    };
    let rv = ds
        .ds
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or_default();
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    match api
        .patch(
            name,
            &super::patch_params(),
            &Patch::Strategic(undo_patch(&data, rv)),
        )
        .await
    {
        Ok(_) => {
            ctx.events.publish(
                ds,
                PlannedEvent::warning(
                    ROLLED_BACK,
                    format!(
                        "rolled back from revision {} to {} (ControllerRevision {}): {}",
                        order.from, order.to, order.revision_name, order.reason
                    ),
                ),
            );
            ctx.metrics.rolled_back(&ds_labels(ds));
            Ok(Undo::Done)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Undo::Conflict),
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let message = format!(
                "cannot roll back from revision {} to {}: everynode may not patch DaemonSets ({}); grant it (chart value rbac.rollback) or roll back by hand: kubectl rollout undo daemonset/{name} -n {ns}",
                order.from, order.to, s.message
            );
            warn!(daemonset = %ds.key(), "{message}");
            ctx.events
                .publish(ds, PlannedEvent::warning(ROLLBACK_FORBIDDEN, message));
            Ok(Undo::Forbidden)
        }
        Err(e) => Err(Error::Rollout {
            daemonset: ds.key(),
            reason: format!("rollback to revision {} failed: {e}", order.to),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_is_the_revision_data_with_a_resource_version_precondition() {
        let data = json!({"spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}});
        assert_eq!(
            undo_patch(&data, "42"),
            json!({
                "metadata": {"resourceVersion": "42"},
                "spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}
            })
        );
    }
}
