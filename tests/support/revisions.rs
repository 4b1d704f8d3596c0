//! ControllerRevisions read with their `data` exactly as stored (raw JSON bytes), and a short,
//! readable identity for a revision's data that is the same on every cluster, so revisions can be
//! compared by content rather than by their hash-derived names.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// One ControllerRevision as stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredRevision {
    pub name: String,
    /// The `controller-revision-hash` label (pods carry the same value), if any.
    pub hash_label: Option<String>,
    pub revision: i64,
    /// `data` exactly as the API server returns it.
    pub data: String,
    /// UID of the controlling owner, if any.
    pub controller_uid: Option<String>,
    pub resource_version: String,
}

impl StoredRevision {
    /// The value pods of this revision carry in their `controller-revision-hash` label: the label
    /// when present, otherwise the name (upstream's legacy fix-up uses the name).
    pub fn pod_hash(&self) -> &str {
        self.hash_label.as_deref().unwrap_or(&self.name)
    }
}

/// Every ControllerRevision in `ns`, sorted by name.
pub async fn list(client: &kube::Client, ns: &str) -> Result<Vec<StoredRevision>, String> {
    let req = http::Request::get(format!("/apis/apps/v1/namespaces/{ns}/controllerrevisions"))
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client
        .request_text(req)
        .await
        .map_err(|e| format!("list ControllerRevisions in {ns}: {e}"))?;
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Vec<Item<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        metadata: ObjectMeta,
        #[serde(borrow)]
        data: Option<&'a serde_json::value::RawValue>,
        revision: i64,
    }
    let list: List =
        serde_json::from_str(&text).map_err(|e| format!("parse ControllerRevisions: {e}"))?;
    let mut out: Vec<StoredRevision> = list
        .items
        .into_iter()
        .map(|i| StoredRevision {
            hash_label: super::revision_hash(&i.metadata).cloned(),
            controller_uid: i.metadata.owner_references.as_ref().and_then(|refs| {
                refs.iter()
                    .find(|r| r.controller == Some(true))
                    .map(|r| r.uid.clone())
            }),
            name: i.metadata.name.unwrap_or_default(),
            revision: i.revision,
            data: i.data.map(|d| d.get().to_string()).unwrap_or_default(),
            resource_version: i.metadata.resource_version.unwrap_or_default(),
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The template annotation the tests use to tell template versions apart.
pub const VERSION_ANNOTATION: &str = "everynode.test/version";

/// A readable identity of revision data, equal for equal bytes on any cluster:
/// `v<template version annotation>#<FNV-1a of the bytes>`.
pub fn data_id(data: &str) -> String {
    let version = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| {
            v.pointer(&format!(
                "/spec/template/metadata/annotations/{}",
                VERSION_ANNOTATION.replace('/', "~1")
            ))
            .and_then(|a| a.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "?".into());
    format!("v{version}#{:08x}", fnv1a(data.as_bytes()))
}

/// 32-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}
