//! Carrying out the core's history plan (§2.2, §2.3): claim revisions, fix legacy labels, create the
//! current revision (handling hash collisions), deduplicate, raise a rolled-back revision, and
//! truncate old history.

use super::Error;
use super::claim::claim_objects;
use super::context::{Context, read};
use super::daemonset_object::CachedDaemonSet;
use crate::core::cached_pod::CachedPod;
use crate::core::history::{
    Current, HistoryError, already_exists_is_ours, exceeds_history_limit, hash_label_patch,
    next_collision_count, plan_history, request_body, revision_patch, revisions_to_delete,
};
use crate::core::revision_data::snapshot_patch;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch};
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::info;

/// The current revision's hash and the old revisions, after the history of `ds` is in order.
pub struct History {
    pub hash: String,
    pub old: Vec<ControllerRevision>,
}

fn candidates(ctx: &Context, ds: &CachedDaemonSet) -> Vec<Arc<ControllerRevision>> {
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let uid = ds.ds.metadata.uid.as_deref().unwrap_or_default();
    read(&ctx.caches.revisions).candidates(ns, uid)
}

/// Upstream `constructHistory`. `pods` are the DaemonSet's claimed pods (relabelled when duplicate
/// current revisions are removed).
pub async fn construct(
    ctx: &Context,
    ds: &CachedDaemonSet,
    pods: &[Arc<CachedPod>],
) -> Result<History, Error> {
    let key = ds.key();
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let fail = |e: String| Error::History {
        daemonset: key.clone(),
        reason: e,
    };
    let mut claimed = claim_objects(&ctx.client, ds, &candidates(ctx, ds)).await?;
    // Cache order is arbitrary; revision order makes the tie rules of the plan deterministic.
    claimed.sort_by_key(|r| (r.revision, r.metadata.name.clone()));
    let plan = plan_history(
        &ds.ds,
        &ds.raw_template,
        claimed.iter().map(|r| r.as_ref()),
        pods.iter().map(|p| p.as_ref()),
    )
    .map_err(|e| fail(e.to_string()))?;
    if let Some(event) = &plan.overflow {
        tracing::warn!(daemonset = %key, "{}", event.message);
        ctx.events.publish(ds, event.clone());
    }
    let revs: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    for fix in &plan.label_fixups {
        revs.patch(
            &fix.name,
            &super::patch_params(),
            &Patch::Merge(fix.patch()),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    }
    let hash = plan.hash().to_string();
    match &plan.current {
        Current::Create(rev) => create_revision(ctx, ds, rev).await?,
        Current::Existing(dedup) => {
            let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
            for pod in &dedup.pods_to_relabel {
                pod_api
                    .patch(
                        pod,
                        &super::patch_params(),
                        &Patch::Merge(hash_label_patch(&dedup.hash)),
                    )
                    .await
                    .map_err(|e| fail(format!("relabel pod {pod}: {e}")))?;
            }
            for dup in &dedup.duplicates_to_delete {
                match revs.delete(dup, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(fail(format!("delete duplicate revision {dup}: {e}"))),
                }
            }
            if let Some(n) = dedup.raise_revision_to {
                let name = dedup.keep.metadata.name.as_deref().unwrap_or_default();
                revs.patch(
                    name,
                    &super::patch_params(),
                    &Patch::Merge(revision_patch(n)),
                )
                .await
                .map_err(|e| fail(format!("raise revision {name} to {n}: {e}")))?;
                if plan.overflow.is_none() {
                    info!(daemonset = %key, revision = name, number = n, "template rolled back to an earlier revision");
                }
            }
        }
    }
    Ok(History {
        hash,
        old: plan.old,
    })
}

async fn create_revision(
    ctx: &Context,
    ds: &CachedDaemonSet,
    rev: &ControllerRevision,
) -> Result<(), Error> {
    let key = ds.key();
    let fail = |e: String| Error::History {
        daemonset: key.clone(),
        reason: e,
    };
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let name = rev.metadata.name.clone().unwrap_or_default();
    let body = request_body(rev).map_err(|e| fail(e.to_string()))?;
    let req =
        kube::core::Request::new(format!("/apis/apps/v1/namespaces/{ns}/controllerrevisions"))
            .create(&super::post_params(), body)
            .map_err(|e| fail(e.to_string()))?;
    match ctx.client.request::<ControllerRevision>(req).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let revs: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
            let existing = revs
                .get(&name)
                .await
                .map_err(|e| fail(format!("get existing revision {name}: {e}")))?;
            if already_exists_is_ours(&existing, &snapshot_patch(&ds.raw_template)) {
                return Ok(());
            }
            let dss: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
            let dsname = ds.ds.metadata.name.as_deref().unwrap_or_default();
            let live = dss
                .get(dsname)
                .await
                .map_err(|e| fail(format!("get DaemonSet: {e}")))?;
            let count = next_collision_count(&ds.ds, &live).map_err(|e| fail(e.to_string()))?;
            let patch = serde_json::json!({"status": {"collisionCount": count}});
            dss.patch_status(dsname, &super::patch_params(), &Patch::Merge(&patch))
                .await
                .map_err(|e| fail(format!("raise collisionCount: {e}")))?;
            Err(fail(
                HistoryError::HashCollision {
                    daemonset: key.clone(),
                    revision: name,
                    collision_count: count,
                }
                .to_string(),
            ))
        }
        Err(e) => Err(fail(format!("create revision {name}: {e}"))),
    }
}

/// Upstream `cleanupHistory`: deletes old revisions beyond `revisionHistoryLimit` that no pod uses.
/// `pods` must include terminal pods that are being deleted. `keep` is a revision hash kept as if
/// a pod used it: a DaemonSetRollout's `lastCompleteRevision`, its rollback target (`None` without
/// a policy, as upstream).
pub async fn cleanup(
    ctx: &Context,
    ds: &CachedDaemonSet,
    old: &[ControllerRevision],
    pods: &[Arc<CachedPod>],
    keep: Option<&str>,
) -> Result<(), Error> {
    let limit = ds.ds.spec.as_ref().and_then(|s| s.revision_history_limit);
    if !exceeds_history_limit(old.len(), limit) {
        return Ok(());
    }
    let mut hashes: BTreeSet<String> =
        crate::core::history::pod_hashes(pods.iter().map(|p| p.as_ref()));
    if let Some(keep) = keep {
        hashes.insert(keep.to_string());
    }
    let doomed = revisions_to_delete(old.iter(), &hashes, limit);
    if doomed.is_empty() {
        return Ok(());
    }
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let revs: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    for name in doomed {
        match revs.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(Error::History {
                    daemonset: ds.key(),
                    reason: format!("delete old revision {name}: {e}"),
                });
            }
        }
    }
    Ok(())
}
