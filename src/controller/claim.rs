//! Claiming pods and ControllerRevisions for a DaemonSet: carries out the core's keep / adopt /
//! release decisions (§7) with the patches they need.

use super::Error;
use super::daemonset_object::CachedDaemonSet;
use crate::core::ownership::{Claim, adopt_patch, claim, release_patch};
use crate::core::selector;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, Patch};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

fn is_status(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(s) if codes.contains(&s.code))
}

/// Claims `candidates` (objects owned by the DaemonSet plus the orphans of its namespace) for `ds`:
/// returns the objects it owns afterwards. Orphans that match are adopted (after checking once,
/// live, that the DaemonSet still exists and is not being deleted); owned objects that no longer
/// match are released. Any failed patch fails the claim, so nothing is created or deleted on a
/// half-claimed view (upstream `TestDontDoAnythingIfBeingDeletedRace`).
pub async fn claim_objects<K>(
    client: &kube::Client,
    ds: &CachedDaemonSet,
    candidates: &[Arc<K>],
) -> Result<Vec<Arc<K>>, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let d = &ds.ds;
    let ns = d.metadata.namespace.as_deref().unwrap_or_default();
    let sel = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    // Parsed once for all candidates; an invalid selector fails the claim at its first candidate,
    // as matching each one did.
    let compiled = selector::compile(&sel);
    let mut claimed = Vec::with_capacity(candidates.len());
    let mut adopt = Vec::new();
    let mut release = Vec::new();
    for obj in candidates {
        let meta: &ObjectMeta = obj.meta();
        let matches = match &compiled {
            Ok(selector) => selector.matches(meta.labels.as_ref()),
            Err(e) => return Err(Error::invalid(ds, e.to_string())),
        };
        match claim(d, meta, matches) {
            Claim::Keep => claimed.push(Arc::clone(obj)),
            Claim::Adopt => adopt.push(Arc::clone(obj)),
            Claim::Release => release.push(Arc::clone(obj)),
            Claim::Ignore => {}
        }
    }
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let mut errors = Vec::new();
    if !adopt.is_empty() {
        can_adopt(client, d).await?;
        let adopted = patch_each(
            &api,
            adopt,
            |uid| adopt_patch(d, uid),
            &[404],
            "adopt",
            &mut errors,
        )
        .await;
        claimed.extend(adopted);
    }
    patch_each(
        &api,
        release,
        |uid| release_patch(d, uid),
        &[404, 422],
        "release",
        &mut errors,
    )
    .await;
    if errors.is_empty() {
        Ok(claimed)
    } else {
        Err(Error::Claim {
            daemonset: ds.key(),
            errors,
        })
    }
}

/// Sends `patch(uid)` as a strategic-merge patch to each object; returns the patched objects.
/// Errors whose status is in `ignore` are skipped (the object is gone or no longer ours); the others
/// are collected into `errors`, prefixed with `what`.
async fn patch_each<K>(
    api: &Api<K>,
    objects: Vec<Arc<K>>,
    patch: impl Fn(&str) -> serde_json::Value,
    ignore: &[u16],
    what: &str,
    errors: &mut Vec<String>,
) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut patched = Vec::with_capacity(objects.len());
    for obj in objects {
        let uid = obj.meta().uid.clone().unwrap_or_default();
        let name = obj.meta().name.clone().unwrap_or_default();
        match api
            .patch(
                &name,
                &super::patch_params(),
                &Patch::Strategic(patch(&uid)),
            )
            .await
        {
            Ok(updated) => patched.push(Arc::new(updated)),
            Err(e) if is_status(&e, ignore) => {}
            Err(e) => errors.push(format!("{what} {} {name}: {e}", K::kind(&()))),
        }
    }
    patched
}

/// Upstream's "can adopt" check: a live GET of the DaemonSet; adoption is refused when it is gone,
/// recreated (other UID) or being deleted.
async fn can_adopt(client: &kube::Client, d: &DaemonSet) -> Result<(), Error> {
    let ns = d.metadata.namespace.as_deref().unwrap_or_default();
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let key = format!("{ns}/{name}");
    let live = Api::<DaemonSet>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map_err(|e| Error::Claim {
            daemonset: key.clone(),
            errors: vec![format!("cannot check whether the DaemonSet may adopt: {e}")],
        })?;
    if live.metadata.uid != d.metadata.uid {
        return Err(Error::Claim {
            daemonset: key,
            errors: vec!["original DaemonSet is gone (UID changed)".into()],
        });
    }
    if live.metadata.deletion_timestamp.is_some() {
        return Err(Error::Claim {
            daemonset: key,
            errors: vec!["DaemonSet is being deleted; not adopting".into()],
        });
    }
    Ok(())
}
