//! Writing what the policy decided: the DaemonSetRollout's status (server-side apply on its status
//! subresource, only when it differs from the last status), the conditions mirrored on the
//! DaemonSet's `status.conditions` (strategic merge patch with a UID precondition, only when they
//! differ), the policy's events and its metrics.

use super::Error;
use super::context::{Context, ds_labels, lock};
use super::daemonset_object::CachedDaemonSet;
use super::rollouts::{API_VERSION, CachedRollout};
use super::status_writer::uid_mismatch;
use crate::api::{DaemonSetRollout, DaemonSetRolloutStatus};
use crate::core::rollout::RolloutPlan;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetCondition};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tracing::debug;

/// The condition types the policy mirrors on the DaemonSet (and removes when its policy is gone).
pub const MIRRORED_TYPES: [&str; 6] = [
    "Progressing",
    "Complete",
    "Failed",
    "RolledBack",
    "DeletionsHeld",
    super::rollouts::POLICY_INVALID,
];

pub use crate::core::rollout::conditions::mirror_patch;

fn current_conditions(ds: &CachedDaemonSet) -> &[DaemonSetCondition] {
    ds.ds
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

/// Writes `status` onto the DaemonSetRollout unless it equals `previous`; remembers it as this
/// leader's last write. A policy deleted meanwhile is no error.
pub async fn write_rollout_status(
    ctx: &Context,
    rollout: &CachedRollout,
    status: &DaemonSetRolloutStatus,
    previous: &DaemonSetRolloutStatus,
) -> Result<bool, Error> {
    if status == previous || rollout.rollout.is_err() {
        return Ok(false);
    }
    let ns = rollout.meta.namespace.as_deref().unwrap_or_default();
    let name = rollout.meta.name.as_deref().unwrap_or_default();
    let body = json!({
        "apiVersion": API_VERSION,
        "kind": "DaemonSetRollout",
        "metadata": {"name": name},
        "status": status,
    });
    let api: Api<DaemonSetRollout> = Api::namespaced(ctx.client.clone(), ns);
    let params = PatchParams::apply(super::FIELD_MANAGER).force();
    match api.patch_status(name, &params, &Patch::Apply(&body)).await {
        Ok(_) => {
            lock(&ctx.rollout_status).insert(rollout.uid().to_string(), status.clone());
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(Error::Rollout {
            daemonset: format!("{ns}/{name}"),
            reason: format!("cannot write the DaemonSetRollout status: {e}"),
        }),
    }
}

/// Makes the DaemonSet's mirrored conditions `ours` (none: remove them). Sends nothing when they
/// already are, so a DaemonSet that never had a policy never gets this write.
pub async fn mirror_conditions(
    ctx: &Context,
    ds: &CachedDaemonSet,
    ours: &[DaemonSetCondition],
) -> Result<bool, Error> {
    let Some(mut patch) = mirror_patch(current_conditions(ds), ours) else {
        return Ok(false);
    };
    patch["metadata"] = json!({"uid": ds.uid()});
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let name = ds.ds.metadata.name.as_deref().unwrap_or_default();
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    match api
        .patch_status(name, &super::patch_params(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(kube::Error::Api(s)) if uid_mismatch(&s) => {
            debug!(daemonset = %ds.key(), "conditions not mirrored: the DaemonSet was replaced ({})", s.message);
            Ok(false)
        }
        Err(e) => Err(Error::Rollout {
            daemonset: ds.key(),
            reason: format!("cannot mirror the rollout conditions on the DaemonSet: {e}"),
        }),
    }
}

/// Everything the end of a sync writes for the policy: its events, its status, the mirrored
/// conditions, and its metrics.
pub async fn write(
    ctx: &Context,
    ds: &CachedDaemonSet,
    rollout: &CachedRollout,
    plan: &RolloutPlan,
    previous: &DaemonSetRolloutStatus,
) -> Result<(), Error> {
    for event in &plan.events {
        ctx.events.publish(ds, event.clone());
    }
    let written = write_rollout_status(ctx, rollout, &plan.status, previous).await;
    let mirrored = mirror_conditions(ctx, ds, &plan.ds_conditions).await;
    ctx.metrics.set_rollout_policy(&ds_labels(ds), &plan.status);
    written?;
    mirrored?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(t: &str, status: &str, reason: &str) -> DaemonSetCondition {
        DaemonSetCondition {
            type_: t.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some("m".into()),
            last_transition_time: None,
        }
    }

    #[test]
    fn the_mirror_writes_only_differences_and_leaves_other_writers_alone() {
        let other = cond("SomeoneElse", "True", "X");
        let ours = [cond("Progressing", "True", "NodesUpdating")];
        assert_eq!(mirror_patch(std::slice::from_ref(&other), &[]), None);
        let p = mirror_patch(std::slice::from_ref(&other), &ours).unwrap_or_default();
        assert_eq!(p["status"]["conditions"][0]["type"], "Progressing");
        assert_eq!(p["status"]["conditions"].as_array().map(Vec::len), Some(1));
        assert_eq!(mirror_patch(&[other.clone(), ours[0].clone()], &ours), None);
    }

    #[test]
    fn the_mirror_deletes_ours_that_are_gone() {
        let current = [
            cond("Progressing", "True", "NodesUpdating"),
            cond("X", "True", "Y"),
        ];
        let p = mirror_patch(&current, &[]).unwrap_or_default();
        assert_eq!(
            p,
            json!({"status": {"conditions": [{"type": "Progressing", "$patch": "delete"}]}})
        );
    }
}
