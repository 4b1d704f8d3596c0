//! History: planning a DaemonSet's ControllerRevisions — current vs old, the revision to create,
//! hash collisions, deduplication, the legacy label fix-up and history truncation (§2.2, §2.3).
//!
//! Upstream (`constructHistory`, `snapshot`, `dedupCurHistories`, `cleanupHistory` in
//! `pkg/controller/daemon/update.go`) interleaves these decisions with API calls. Here each
//! decision is a pure function; [`plan_history`] strings them together for one sync and the shell
//! carries out the resulting [`HistoryPlan`] in this order:
//!
//! 1. [`HistoryPlan::label_fixups`] (legacy revisions without the hash label);
//! 2. either create [`Current::Create`] (POST [`request_body`]; on AlreadyExists see
//!    [`already_exists_is_ours`] and [`next_collision_count`]), or for [`Current::Existing`]:
//!    relabel [`Dedup::pods_to_relabel`], delete [`Dedup::duplicates_to_delete`], then raise the
//!    kept revision to [`Dedup::raise_revision_to`];
//! 3. after manage and rolling update: delete [`revisions_to_delete`] of [`HistoryPlan::old`].
//!
//! Any failed API call aborts the sync ("failed to construct revisions of DaemonSet"), as upstream.

use crate::core::cached_pod::CachedPod;
use crate::core::events::{PlannedEvent, REVISION_NUMBER_OVERFLOW};
use crate::core::labels::CONTROLLER_REVISION_HASH;
use crate::core::revision_data::{compute_hash, data_bytes, go_json, snapshot_data};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// `spec.revisionHistoryLimit` when the field is nil. The API server defaults it to 10, so nil
/// only appears in hand-made objects; upstream would crash on it (§9.2). **[difference]**
/// everynode uses the server default.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

/// Why a history decision could not be made. The messages say what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The DaemonSet lacks a field needed to build its ControllerRevision.
    #[error(
        "DaemonSet {daemonset} has no {field}; cannot create its ControllerRevision (is the object \
         from the API server?)"
    )]
    MissingField {
        daemonset: String,
        field: &'static str,
    },
    /// The cached `status.collisionCount` that named the colliding revision is older than the
    /// live one: nothing to bump, the sync is retried once the cache has caught up.
    #[error(
        "found a stale collision count ({}, expected {}) of DaemonSet {daemonset} while processing; \
         will retry until it is updated",
        show_count(*.cached),
        show_count(*.live)
    )]
    StaleCollisionCount {
        daemonset: String,
        cached: Option<i32>,
        live: Option<i32>,
    },
    /// `status.collisionCount` cannot be raised any further.
    #[error(
        "collisionCount of DaemonSet {daemonset} is already {count} and cannot be raised; delete \
         ControllerRevisions named {daemonset_name}-<hash> that this DaemonSet does not own"
    )]
    CollisionCountExhausted {
        daemonset: String,
        daemonset_name: String,
        count: i32,
    },
    /// A ControllerRevision with the new revision's name exists with other data (a hash
    /// collision). Returned after `status.collisionCount` was raised, so the sync is retried and
    /// the next attempt uses a new name.
    #[error(
        "ControllerRevision {revision} already exists with a different template (hash collision); \
         collisionCount of DaemonSet {daemonset} raised to {collision_count}, the next sync uses \
         a new name"
    )]
    HashCollision {
        daemonset: String,
        revision: String,
        collision_count: i32,
    },
    /// A ControllerRevision could not be serialized into a request body.
    #[error("cannot serialize ControllerRevision {revision}: {reason}")]
    Serialize { revision: String, reason: String },
}

fn show_count(count: Option<i32>) -> String {
    count.map_or_else(|| "nil".to_string(), |c| c.to_string())
}

/// A claimed revision that lacks the `controller-revision-hash` label and gets it (§2.2 legacy
/// fix-up). **[quirk]** The label value is the revision's *name*, not a hash, as upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFixup {
    /// Name of the ControllerRevision to update.
    pub name: String,
    /// Value for its `controller-revision-hash` label (= `name`).
    pub hash: String,
}

impl LabelFixup {
    /// JSON merge patch that adds the label. **[difference]** Upstream PUTs the whole object; a
    /// merge patch has the same effect and cannot disturb the immutable `data`.
    pub fn patch(&self) -> Value {
        hash_label_patch(&self.hash)
    }
}

/// What to do about the current revision.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// No claimed revision matches the template: create this one (see [`new_revision`]).
    Create(ControllerRevision),
    /// At least one claimed revision matches: keep one, clean up the rest.
    Existing(Dedup),
}

/// The kept current revision and the clean-up its duplicates need (`dedupCurHistories`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dedup {
    /// The matching revision with the highest `revision` (ties: the later one in input order),
    /// with the legacy label fix-up applied.
    pub keep: ControllerRevision,
    /// Its `controller-revision-hash` label: the hash pods are compared with.
    pub hash: String,
    /// Names of claimed pods whose hash label differs from [`Dedup::hash`]; each gets the JSON
    /// merge patch [`hash_label_patch`]`(hash)`. Empty unless there are duplicates (upstream
    /// relabels only when deduplicating).
    pub pods_to_relabel: Vec<String>,
    /// The other matching revisions, to delete after relabelling the pods.
    pub duplicates_to_delete: Vec<String>,
    /// `Some(next_revision)` when the kept revision's number is lower than the next revision
    /// number, i.e. the template was rolled back to an older revision: update its `revision`
    /// (merge patch [`revision_patch`]).
    pub raise_revision_to: Option<i64>,
}

/// The history decisions of one sync (`constructHistory`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPlan {
    /// Legacy revisions to label first, in input order.
    pub label_fixups: Vec<LabelFixup>,
    /// Create or keep the current revision.
    pub current: Current,
    /// The claimed revisions that do not match the template, in input order, with the legacy
    /// fix-up applied: the input of [`revisions_to_delete`].
    pub old: Vec<ControllerRevision>,
    /// `max(old revision numbers) + 1` (1 without old revisions).
    pub next_revision: i64,
    /// [difference] The Warning event to emit when an old revision already holds the largest
    /// revision number, so the next number cannot be above it: two revisions then share it and
    /// `kubectl rollout history` and `undo` cannot tell them apart. Upstream's Go addition wraps to
    /// a negative number without a word.
    pub overflow: Option<PlannedEvent>,
}

/// The Warning event for revision numbers that reached `i64::MAX`, if any of `old` holds it.
pub fn revision_overflow_event<'a>(
    old: impl IntoIterator<Item = &'a ControllerRevision>,
) -> Option<PlannedEvent> {
    let full = old.into_iter().find(|r| r.revision == i64::MAX)?;
    let name = full.metadata.name.as_deref().unwrap_or_default();
    Some(PlannedEvent::warning(
        REVISION_NUMBER_OVERFLOW,
        format!(
            "ControllerRevision {name} has revision number {}, the largest there is, so the current \
             revision cannot be numbered above it and two revisions share that number; \
             `kubectl rollout history` and `undo` cannot tell them apart. Delete {name} if it is \
             not needed, or renumber it",
            i64::MAX
        ),
    ))
}

impl HistoryPlan {
    /// The current revision's hash: the value pods of the current template carry in their
    /// `controller-revision-hash` label. Read from the revision, never recomputed (§2 step 6).
    pub fn hash(&self) -> &str {
        match &self.current {
            Current::Create(revision) => hash_label(revision),
            Current::Existing(dedup) => &dedup.hash,
        }
    }
}

/// Plans the history of `ds` for one sync.
///
/// * `raw_template`: `spec.template` as the API server served it (see
///   [`crate::core::revision_data::snapshot_data`]);
/// * `revisions`: the ControllerRevisions claimed by `ds` (§7), in cache order;
/// * `pods`: the pods claimed by `ds` (upstream `getDaemonPods`), used to relabel pods when
///   duplicates are removed.
pub fn plan_history<'r, 'p>(
    ds: &DaemonSet,
    raw_template: &Value,
    revisions: impl IntoIterator<Item = &'r ControllerRevision>,
    pods: impl IntoIterator<Item = &'p CachedPod>,
) -> Result<HistoryPlan, HistoryError> {
    let revisions: Vec<&ControllerRevision> = revisions.into_iter().collect();
    let label_fixups = legacy_label_fixups(revisions.iter().copied());
    let patch = go_json(&snapshot_data(raw_template)).into_bytes();

    let mut current = Vec::new();
    let mut old = Vec::new();
    for revision in revisions {
        let fixed = with_legacy_label(revision);
        if is_current(&fixed, &patch) {
            current.push(fixed);
        } else {
            old.push(fixed);
        }
    }
    let next = next_revision(&old);
    let overflow = revision_overflow_event(&old);
    let current = match plan_dedup(&current, pods, next) {
        Some(dedup) => Current::Existing(dedup),
        None => Current::Create(new_revision(ds, raw_template, next)?),
    };
    Ok(HistoryPlan {
        label_fixups,
        current,
        old,
        next_revision: next,
        overflow,
    })
}

/// Whether `revision` is current for the template whose snapshot patch is `patch`
/// ([`crate::core::revision_data::snapshot_patch`]): its data, re-encoded as Go would, equals
/// `patch` byte for byte (upstream `Match`). A revision without data is never current.
/// **[difference]** Upstream compares the stored bytes themselves; see
/// [`crate::core::revision_data::data_bytes`].
pub fn is_current(revision: &ControllerRevision, patch: &[u8]) -> bool {
    revision
        .data
        .as_ref()
        .is_some_and(|data| data_bytes(&data.0) == patch)
}

/// The revision number for a new or rolled-back current revision: the highest `revision` among
/// `old` plus one; 1 without old revisions (upstream starts the maximum at 0, so negative numbers
/// are ignored).
pub fn next_revision<'a>(old: impl IntoIterator<Item = &'a ControllerRevision>) -> i64 {
    old.into_iter()
        .map(|r| r.revision)
        .fold(0, i64::max)
        .saturating_add(1)
}

/// The legacy fix-ups for `revisions`: one per revision without a `controller-revision-hash`
/// label, whose value is the revision's name. Revisions without a name are skipped (they cannot
/// be updated; the API server never returns one).
pub fn legacy_label_fixups<'a>(
    revisions: impl IntoIterator<Item = &'a ControllerRevision>,
) -> Vec<LabelFixup> {
    revisions
        .into_iter()
        .filter(|r| !has_hash_label(r))
        .filter_map(|r| r.metadata.name.clone())
        .map(|name| LabelFixup {
            hash: name.clone(),
            name,
        })
        .collect()
}

/// `revision` as it is after its legacy fix-up (unchanged if it has the label or no name).
pub fn with_legacy_label(revision: &ControllerRevision) -> ControllerRevision {
    let mut fixed = revision.clone();
    if !has_hash_label(revision)
        && let Some(name) = revision.metadata.name.clone()
    {
        fixed
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(CONTROLLER_REVISION_HASH.to_string(), name);
    }
    fixed
}

/// The ControllerRevision upstream's `snapshot` creates for `ds` with number `revision`:
///
/// * data = [`snapshot_data`]`(raw_template)`; hash = [`compute_hash`] of its bytes and
///   `status.collisionCount`; name `<ds name>-<hash>`; namespace of the DaemonSet;
/// * labels = the template's labels plus `controller-revision-hash=<hash>`;
/// * annotations = a copy of the DaemonSet's annotations;
/// * ownerReferences = the DaemonSet as controller (apps/v1, `controller` and
///   `blockOwnerDeletion` true).
///
/// Send it with [`request_body`], not with a typed client: the stored `data` bytes must be
/// exactly Go's, and serde_json escapes strings differently.
pub fn new_revision(
    ds: &DaemonSet,
    raw_template: &Value,
    revision: i64,
) -> Result<ControllerRevision, HistoryError> {
    let name = ds
        .metadata
        .name
        .clone()
        .ok_or_else(|| missing(ds, "metadata.name"))?;
    let uid = ds
        .metadata
        .uid
        .clone()
        .ok_or_else(|| missing(ds, "metadata.uid"))?;
    let data = snapshot_data(raw_template);
    let hash = compute_hash(
        go_json(&data).as_bytes(),
        ds.status.as_ref().and_then(|s| s.collision_count),
    );
    let mut labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.to_string(), hash.clone());
    Ok(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: "DaemonSet".to_string(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    })
}

/// The request body for creating (or replacing) `revision`: the object serialized with
/// [`go_json`], so that its `data` reaches the API server, which stores it verbatim, as exactly
/// the bytes kube-controller-manager would have written.
pub fn request_body(revision: &ControllerRevision) -> Result<Vec<u8>, HistoryError> {
    let value = serde_json::to_value(revision).map_err(|e| HistoryError::Serialize {
        revision: revision.metadata.name.clone().unwrap_or_default(),
        reason: e.to_string(),
    })?;
    Ok(go_json(&value).into_bytes())
}

/// After a create failed with AlreadyExists and the existing revision was read live: whether it
/// is our own earlier create (its data matches `patch`), to be used as the current revision.
/// Otherwise it is a hash collision: see [`next_collision_count`].
pub fn already_exists_is_ours(existing: &ControllerRevision, patch: &[u8]) -> bool {
    is_current(existing, patch)
}

/// On a hash collision, the `status.collisionCount` to write to the live DaemonSet `live` (read
/// with a GET) when the name was computed from the cached `cached`: nil → 1, `c` → `c + 1`.
/// If the live count differs from the cached one the cache was stale and nothing is written:
/// [`HistoryError::StaleCollisionCount`] (the sync is retried, PR #67461). After writing, the
/// shell fails the sync with [`HistoryError::HashCollision`].
pub fn next_collision_count(cached: &DaemonSet, live: &DaemonSet) -> Result<i32, HistoryError> {
    let cached_count = cached.status.as_ref().and_then(|s| s.collision_count);
    let live_count = live.status.as_ref().and_then(|s| s.collision_count);
    if cached_count != live_count {
        return Err(HistoryError::StaleCollisionCount {
            daemonset: ds_key(cached),
            cached: cached_count,
            live: live_count,
        });
    }
    let count = live_count.unwrap_or(0);
    count
        .checked_add(1)
        .ok_or_else(|| HistoryError::CollisionCountExhausted {
            daemonset: ds_key(cached),
            daemonset_name: cached.metadata.name.clone().unwrap_or_default(),
            count,
        })
}

/// Deduplication of the current revisions (`dedupCurHistories` plus the revision raise of
/// `constructHistory`); `None` when `current` is empty (then a revision must be created).
///
/// Keeps the revision with the highest `revision` (ties: the later one in `current`). If there are
/// duplicates, every pod in `pods` whose hash label differs from the kept hash (a missing label
/// counts as `""`) is relabelled, and the other revisions are deleted. The kept revision is raised
/// to `next_revision` if its number is lower (rollback).
pub fn plan_dedup<'p>(
    current: &[ControllerRevision],
    pods: impl IntoIterator<Item = &'p CachedPod>,
    next_revision: i64,
) -> Option<Dedup> {
    let keep = current
        .iter()
        .reduce(|kept, r| if r.revision >= kept.revision { r } else { kept })?
        .clone();
    let hash = hash_label(&keep).to_string();
    let pods_to_relabel = if current.len() > 1 {
        pods.into_iter()
            .filter(|pod| pod_hash(pod) != hash)
            .filter_map(|pod| pod.metadata.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let duplicates_to_delete = current
        .iter()
        .filter(|r| r.metadata.name != keep.metadata.name)
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let raise_revision_to = (keep.revision < next_revision).then_some(next_revision);
    Some(Dedup {
        keep,
        hash,
        pods_to_relabel,
        duplicates_to_delete,
        raise_revision_to,
    })
}

/// JSON merge patch setting the `controller-revision-hash` label to `hash`, as upstream sends to
/// relabel pods: `{"metadata":{"labels":{"controller-revision-hash":"<hash>"}}}`.
pub fn hash_label_patch(hash: &str) -> Value {
    json!({ "metadata": { "labels": { CONTROLLER_REVISION_HASH: hash } } })
}

/// JSON merge patch setting a ControllerRevision's `revision`. **[difference]** Upstream PUTs the
/// whole object; a merge patch changes the same field and cannot disturb the immutable `data`.
pub fn revision_patch(revision: i64) -> Value {
    json!({ "revision": revision })
}

/// `spec.revisionHistoryLimit`, or [`DEFAULT_REVISION_HISTORY_LIMIT`] when nil.
pub fn revision_history_limit(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
}

/// The non-empty `controller-revision-hash` labels of `pods`. For history truncation pass the
/// pods upstream's `getNodesToDaemonPods(ds, includeDeletedTerminal=true)` yields: every claimed
/// pod, including terminal pods that are being deleted, that has a target node.
pub fn pod_hashes<'a>(pods: impl IntoIterator<Item = &'a CachedPod>) -> BTreeSet<String> {
    // Distinct hashes first, then one string each (a DaemonSet's pods share a handful of hashes).
    let distinct: BTreeSet<&str> = pods
        .into_iter()
        .map(pod_hash)
        .filter(|h| !h.is_empty())
        .collect();
    distinct.into_iter().map(str::to_string).collect()
}

/// Whether `old_count` old revisions are more than `revisionHistoryLimit` (`limit`, nil →
/// [`DEFAULT_REVISION_HISTORY_LIMIT`]) keeps: only then may [`revisions_to_delete`] delete any, and
/// only then does the caller need the pods' hashes (a pass over every pod in every sync).
pub fn exceeds_history_limit(old_count: usize, limit: Option<i32>) -> bool {
    excess(old_count, limit) > 0
}

/// How many old revisions are beyond the limit (≤ 0: none).
fn excess(old_count: usize, limit: Option<i32>) -> i64 {
    let limit = i64::from(limit.unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT));
    i64::try_from(old_count)
        .unwrap_or(i64::MAX)
        .saturating_sub(limit)
}

/// The old revisions to delete (`cleanupHistory`): with `limit` = `revisionHistoryLimit`
/// (nil → [`DEFAULT_REVISION_HISTORY_LIMIT`]), up to `len(old) − limit` revisions, oldest
/// `revision` first, skipping those whose hash label is in `pod_hashes` — so revisions still used
/// by pods are kept even beyond the limit. Returns names in deletion order.
///
/// `old` must not contain the current revision (as [`HistoryPlan::old`]); it is then never a
/// candidate. Equal revision numbers keep their input order (upstream's unstable sort leaves it
/// undefined).
pub fn revisions_to_delete<'a>(
    old: impl IntoIterator<Item = &'a ControllerRevision>,
    pod_hashes: &BTreeSet<String>,
    limit: Option<i32>,
) -> Vec<String> {
    let mut old: Vec<&ControllerRevision> = old.into_iter().collect();
    let mut to_kill = excess(old.len(), limit);
    if to_kill <= 0 {
        return Vec::new();
    }
    old.sort_by_key(|r| r.revision);
    let mut names = Vec::new();
    for revision in old {
        if to_kill <= 0 {
            break;
        }
        if pod_hashes.contains(hash_label(revision)) {
            continue;
        }
        if let Some(name) = &revision.metadata.name {
            names.push(name.clone());
            to_kill -= 1;
        }
    }
    names
}

/// A revision's `controller-revision-hash` label, `""` if absent.
pub fn hash_label(revision: &ControllerRevision) -> &str {
    revision
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
        .map_or("", String::as_str)
}

fn has_hash_label(revision: &ControllerRevision) -> bool {
    revision
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(CONTROLLER_REVISION_HASH))
}

fn pod_hash(pod: &CachedPod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
        .map_or("", String::as_str)
}

fn ds_key(ds: &DaemonSet) -> String {
    format!(
        "{}/{}",
        ds.metadata.namespace.as_deref().unwrap_or(""),
        ds.metadata.name.as_deref().unwrap_or("")
    )
}

fn missing(ds: &DaemonSet, field: &'static str) -> HistoryError {
    HistoryError::MissingField {
        daemonset: ds_key(ds),
        field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::labels::TEMPLATE_GENERATION_ANNOTATION;
    use crate::core::revision_data::snapshot_patch;
    use k8s_openapi::api::apps::v1::{DaemonSetSpec, DaemonSetStatus};
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

    // ---- builders -----------------------------------------------------------------------

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// DaemonSet `foo` in `default` running `image`.
    fn ds_with_image(image: &str) -> DaemonSet {
        let labels = map(&[("name", "foo")]);
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("foo".to_string()),
                namespace: Some("default".to_string()),
                uid: Some("ds-uid".to_string()),
                annotations: Some(map(&[
                    (TEMPLATE_GENERATION_ANNOTATION, "1"),
                    ("team", "infra"),
                ])),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    match_expressions: None,
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "foo".to_string(),
                            image: Some(image.to_string()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn ds() -> DaemonSet {
        ds_with_image("foo/bar:1")
    }

    fn with_collision_count(mut ds: DaemonSet, count: Option<i32>) -> DaemonSet {
        ds.status
            .get_or_insert_with(DaemonSetStatus::default)
            .collision_count = count;
        ds
    }

    fn with_limit(mut ds: DaemonSet, limit: Option<i32>) -> DaemonSet {
        if let Some(spec) = ds.spec.as_mut() {
            spec.revision_history_limit = limit;
        }
        ds
    }

    /// The template as the API server would serve it (close enough for these tests).
    fn raw(ds: &DaemonSet) -> Value {
        serde_json::to_value(&ds.spec.as_ref().unwrap().template).unwrap()
    }

    fn patch(ds: &DaemonSet) -> Vec<u8> {
        snapshot_patch(&raw(ds))
    }

    /// A revision of `template_ds`'s template as the API server serves it back.
    fn revision(
        name: &str,
        number: i64,
        template_ds: &DaemonSet,
        hash: Option<&str>,
    ) -> ControllerRevision {
        let data: Value = serde_json::from_slice(&patch(template_ds)).unwrap();
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                labels: Some(match hash {
                    Some(h) => map(&[("name", "foo"), (CONTROLLER_REVISION_HASH, h)]),
                    None => map(&[("name", "foo")]),
                }),
                ..Default::default()
            },
            data: Some(RawExtension(data)),
            revision: number,
        }
    }

    fn pod(name: &str, hash: Option<&str>) -> CachedPod {
        let mut labels = map(&[("name", "foo")]);
        if let Some(h) = hash {
            labels.insert(CONTROLLER_REVISION_HASH.to_string(), h.to_string());
        }
        CachedPod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: None,
            status: None,
        }
    }

    fn names(revisions: &[ControllerRevision]) -> Vec<&str> {
        revisions
            .iter()
            .map(|r| r.metadata.name.as_deref().unwrap())
            .collect()
    }

    fn hashes(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    fn plan(ds: &DaemonSet, revisions: &[ControllerRevision], pods: &[CachedPod]) -> HistoryPlan {
        plan_history(ds, &raw(ds), revisions, pods).unwrap()
    }

    fn existing(plan: &HistoryPlan) -> &Dedup {
        match &plan.current {
            Current::Existing(dedup) => dedup,
            Current::Create(r) => panic!("expected an existing current revision, got create {r:?}"),
        }
    }

    fn created(plan: &HistoryPlan) -> &ControllerRevision {
        match &plan.current {
            Current::Create(r) => r,
            Current::Existing(d) => panic!("expected a create, got {d:?}"),
        }
    }

    /// `count` old revisions `old-<n>` (n = 1..=count) of another template.
    fn old_revisions(count: i64) -> Vec<ControllerRevision> {
        let other = ds_with_image("other");
        (1..=count)
            .map(|n| revision(&format!("old-{n}"), n, &other, Some(&format!("h{n}"))))
            .collect()
    }

    // ---- current vs old -----------------------------------------------------------------

    #[test]
    fn matching_revision_is_current_others_are_old() {
        let ds = ds();
        let cur = revision("foo-cur", 2, &ds, Some("cur"));
        let old = revision("foo-old", 1, &ds_with_image("foo/bar:0"), Some("old"));
        let p = plan(&ds, &[old.clone(), cur.clone()], &[]);
        assert_eq!(existing(&p).keep, cur);
        assert_eq!(p.old, vec![old]);
        assert_eq!(p.hash(), "cur");
        assert!(p.label_fixups.is_empty());
    }

    #[test]
    fn is_current_compares_go_bytes() {
        let ds = ds();
        assert!(is_current(&revision("r", 1, &ds, Some("h")), &patch(&ds)));
        assert!(!is_current(
            &revision("r", 1, &ds_with_image("x"), Some("h")),
            &patch(&ds)
        ));
        let mut no_data = revision("r", 1, &ds, Some("h"));
        no_data.data = None;
        assert!(!is_current(&no_data, &patch(&ds)));
    }

    #[test]
    fn data_differing_only_in_escaping_is_still_current() {
        // Data written by kube-controller-manager escapes '&'; after parsing, re-encoding
        // reproduces the escape, so the comparison is byte-exact against Go's output.
        let ds = ds_with_image("repo/img:a&b");
        let rev = revision("r", 1, &ds, Some("h"));
        assert!(String::from_utf8(patch(&ds)).unwrap().contains(r"a\u0026b"));
        assert!(is_current(&rev, &patch(&ds)));
    }

    // ---- next revision ------------------------------------------------------------------

    #[test]
    fn next_revision_is_max_old_plus_one() {
        assert_eq!(next_revision(&[]), 1);
        let mut old = old_revisions(3);
        old[1].revision = 7;
        assert_eq!(next_revision(&old), 8);
    }

    /// A garbage revision number of i64::MAX: the next number saturates (two revisions share it)
    /// and the plan carries a Warning event naming the revision, instead of staying silent.
    #[test]
    fn a_revision_number_at_the_maximum_is_reported() {
        let ds = ds();
        let mut old = old_revisions(2);
        old[1].revision = i64::MAX;
        assert_eq!(next_revision(&old), i64::MAX);
        let p = plan(&ds, &old, &[]);
        let event = p.overflow.expect("an overflow event");
        assert_eq!(event.reason, REVISION_NUMBER_OVERFLOW);
        let name = old[1].metadata.name.clone().unwrap_or_default();
        assert!(event.message.contains(&name), "{}", event.message);
        old[1].revision = i64::MAX - 1;
        assert_eq!(plan(&ds, &old, &[]).overflow, None);
    }

    #[test]
    fn next_revision_ignores_negative_numbers() {
        let mut old = old_revisions(1);
        old[0].revision = -5;
        assert_eq!(next_revision(&old), 1);
    }

    // ---- the new revision ---------------------------------------------------------------

    #[test]
    fn new_revision_when_none_is_current() {
        let ds = ds();
        let mut old = old_revisions(2);
        old[0].revision = 5;
        let p = plan(&ds, &old, &[]);
        let hash = compute_hash(&patch(&ds), None);
        let expected = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(format!("foo-{hash}")),
                namespace: Some("default".to_string()),
                labels: Some(map(&[("name", "foo"), (CONTROLLER_REVISION_HASH, &hash)])),
                annotations: Some(map(&[
                    (TEMPLATE_GENERATION_ANNOTATION, "1"),
                    ("team", "infra"),
                ])),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".to_string(),
                    kind: "DaemonSet".to_string(),
                    name: "foo".to_string(),
                    uid: "ds-uid".to_string(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            data: Some(RawExtension(serde_json::from_slice(&patch(&ds)).unwrap())),
            revision: 6,
        };
        assert_eq!(created(&p), &expected);
        assert_eq!(p.next_revision, 6);
        assert_eq!(p.hash(), hash);
        assert_eq!(names(&p.old), ["old-1", "old-2"]);
    }

    #[test]
    fn first_revision_is_number_one() {
        let p = plan(&ds(), &[], &[]);
        assert_eq!(created(&p).revision, 1);
    }

    #[test]
    fn new_revision_without_template_labels_has_only_the_hash_label() {
        let mut ds = ds();
        ds.spec.as_mut().unwrap().template.metadata = None;
        let rev = new_revision(&ds, &raw(&ds), 1).unwrap();
        let labels = rev.metadata.labels.unwrap();
        assert_eq!(labels.len(), 1);
        assert!(labels.contains_key(CONTROLLER_REVISION_HASH));
    }

    #[test]
    fn new_revision_hash_uses_collision_count() {
        let ds = ds();
        let a = new_revision(&ds, &raw(&ds), 1).unwrap();
        let b = new_revision(&with_collision_count(ds.clone(), Some(1)), &raw(&ds), 1).unwrap();
        assert_ne!(a.metadata.name, b.metadata.name);
        assert_eq!(
            hash_label(&b),
            compute_hash(&patch(&ds), Some(1)),
            "the label carries the same hash as the name"
        );
        assert_eq!(
            b.metadata.name.as_deref(),
            Some(format!("foo-{}", hash_label(&b)).as_str())
        );
    }

    #[test]
    fn new_revision_needs_name_and_uid() {
        let mut no_uid = ds();
        no_uid.metadata.uid = None;
        let err = new_revision(&no_uid, &raw(&no_uid), 1).unwrap_err();
        assert_eq!(
            err,
            HistoryError::MissingField {
                daemonset: "default/foo".to_string(),
                field: "metadata.uid"
            }
        );
        assert!(err.to_string().contains("default/foo has no metadata.uid"));
        let mut no_name = ds();
        no_name.metadata.name = None;
        assert!(matches!(
            new_revision(&no_name, &raw(&no_name), 1),
            Err(HistoryError::MissingField {
                field: "metadata.name",
                ..
            })
        ));
    }

    #[test]
    fn request_body_carries_the_exact_patch_bytes() {
        let ds = ds_with_image("img:<1>");
        let rev = new_revision(&ds, &raw(&ds), 3).unwrap();
        let body = String::from_utf8(request_body(&rev).unwrap()).unwrap();
        let patch = String::from_utf8(patch(&ds)).unwrap();
        assert!(body.contains(&format!(r#""data":{patch}"#)), "{body}");
        assert!(body.contains(r#""apiVersion":"apps/v1""#));
        assert!(body.contains(r#""kind":"ControllerRevision""#));
        assert!(body.contains(r#""revision":3"#));
        assert!(patch.contains(r"img:\u003c1\u003e"));
    }

    // ---- hash collisions ----------------------------------------------------------------

    #[test]
    fn already_exists_with_our_data_is_used() {
        let ds = ds();
        let ours = new_revision(&ds, &raw(&ds), 1).unwrap();
        assert!(already_exists_is_ours(&ours, &patch(&ds)));
        let theirs = revision(
            ours.metadata.name.as_deref().unwrap(),
            1,
            &ds_with_image("different"),
            Some(hash_label(&ours)),
        );
        assert!(!already_exists_is_ours(&theirs, &patch(&ds)));
    }

    #[test]
    fn collision_count_nil_becomes_one() {
        let ds = ds();
        assert_eq!(next_collision_count(&ds, &ds), Ok(1));
    }

    #[test]
    fn collision_count_is_incremented() {
        let ds = with_collision_count(ds(), Some(4));
        assert_eq!(next_collision_count(&ds, &ds), Ok(5));
    }

    #[test]
    fn stale_cached_collision_count_is_an_error() {
        let cached = with_collision_count(ds(), Some(1));
        let live = with_collision_count(ds(), Some(2));
        let err = next_collision_count(&cached, &live).unwrap_err();
        assert_eq!(
            err,
            HistoryError::StaleCollisionCount {
                daemonset: "default/foo".to_string(),
                cached: Some(1),
                live: Some(2)
            }
        );
        assert_eq!(
            err.to_string(),
            "found a stale collision count (1, expected 2) of DaemonSet default/foo while \
             processing; will retry until it is updated"
        );
        let nil_cache = next_collision_count(&ds(), &live).unwrap_err();
        assert!(nil_cache.to_string().contains("(nil, expected 2)"));
    }

    #[test]
    fn collision_count_at_maximum_is_an_error() {
        let ds = with_collision_count(ds(), Some(i32::MAX));
        assert!(matches!(
            next_collision_count(&ds, &ds),
            Err(HistoryError::CollisionCountExhausted {
                count: i32::MAX,
                ..
            })
        ));
    }

    /// §10.4 item 89, `TestLaunchWithHashCollision`: a revision occupying the next name with other
    /// data makes collisionCount go from c to c+1, and the next attempt uses another name.
    #[test]
    fn launch_with_hash_collision() {
        let c = 2;
        let ds = with_collision_count(ds_with_image("v2"), Some(c));
        let first = plan(&ds, &[], &[]);
        let wanted = created(&first).clone();
        // Someone else's revision already has that name.
        let squatter = revision(
            wanted.metadata.name.as_deref().unwrap(),
            1,
            &ds_with_image("v1"),
            Some(hash_label(&wanted)),
        );
        assert!(!already_exists_is_ours(&squatter, &patch(&ds)));
        let bumped = next_collision_count(&ds, &ds).unwrap();
        assert_eq!(bumped, c + 1);
        let err = HistoryError::HashCollision {
            daemonset: "default/foo".to_string(),
            revision: squatter.metadata.name.clone().unwrap(),
            collision_count: bumped,
        };
        assert!(err.to_string().contains("raised to 3"));
        // The retried sync sees the squatter as an old revision and picks a new name.
        let ds = with_collision_count(ds, Some(bumped));
        let second = plan(&ds, std::slice::from_ref(&squatter), &[]);
        let retry = created(&second);
        assert_ne!(retry.metadata.name, wanted.metadata.name);
        assert_eq!(retry.revision, 2);
        assert_eq!(second.old, vec![squatter]);
    }

    // ---- dedup --------------------------------------------------------------------------

    /// §10.4 item 90, `TestDSCUpdatesPodLabelAfterDedupCurHistories`.
    #[test]
    fn dedup_relabels_pods_and_deletes_the_duplicate() {
        let ds = ds();
        let original = revision("foo-aaa", 1, &ds, Some("aaa"));
        let duplicate = revision("foo-bbb", 2, &ds, Some("bbb"));
        let pods = [
            pod("p1", Some("aaa")),
            pod("p2", Some("bbb")),
            pod("p3", None),
        ];
        let p = plan(&ds, &[original, duplicate.clone()], &pods);
        let dedup = existing(&p);
        assert_eq!(dedup.keep, duplicate);
        assert_eq!(dedup.hash, "bbb");
        assert_eq!(dedup.pods_to_relabel, ["p1", "p3"]);
        assert_eq!(dedup.duplicates_to_delete, ["foo-aaa"]);
        assert_eq!(dedup.raise_revision_to, None);
        assert_eq!(p.hash(), "bbb");
        assert!(p.old.is_empty());
        assert_eq!(
            hash_label_patch(&dedup.hash),
            json!({"metadata": {"labels": {"controller-revision-hash": "bbb"}}})
        );
    }

    #[test]
    fn dedup_tie_keeps_the_later_revision() {
        let ds = ds();
        let a = revision("foo-a", 3, &ds, Some("a"));
        let b = revision("foo-b", 3, &ds, Some("b"));
        let c = revision("foo-c", 1, &ds, Some("c"));
        let dedup = plan_dedup(&[a, b.clone(), c], &[], 1).unwrap();
        assert_eq!(dedup.keep, b);
        assert_eq!(dedup.duplicates_to_delete, ["foo-a", "foo-c"]);
    }

    #[test]
    fn single_current_revision_relabels_nothing() {
        let ds = ds();
        let only = revision("foo-a", 1, &ds, Some("a"));
        let pods = [pod("p1", Some("zzz"))];
        let dedup = plan_dedup(&[only], &pods, 1).unwrap();
        assert!(dedup.pods_to_relabel.is_empty());
        assert!(dedup.duplicates_to_delete.is_empty());
        assert_eq!(dedup.raise_revision_to, None);
    }

    #[test]
    fn dedup_of_nothing_is_none() {
        assert_eq!(plan_dedup(&[], &[], 1), None);
    }

    /// Rollback: the template returns to an old revision's; that revision becomes current with a
    /// new number, and pods of its hash are updated pods (no relabel, no restart).
    #[test]
    fn rollback_reuses_the_old_revision_with_a_new_number() {
        let v1 = ds_with_image("v1");
        let v2 = ds_with_image("v2");
        let r1 = revision("foo-one", 1, &v1, Some("one"));
        let r2 = revision("foo-two", 2, &v2, Some("two"));
        let pods = [pod("p1", Some("one")), pod("p2", Some("two"))];
        let p = plan(&v1, &[r1.clone(), r2.clone()], &pods);
        let dedup = existing(&p);
        assert_eq!(dedup.keep, r1);
        assert_eq!(dedup.raise_revision_to, Some(3));
        assert!(dedup.pods_to_relabel.is_empty());
        assert!(dedup.duplicates_to_delete.is_empty());
        assert_eq!(p.old, vec![r2]);
        assert_eq!(p.next_revision, 3);
        // Pods are compared with this hash: p1 counts as updated, p2 as old.
        assert_eq!(p.hash(), "one");
        assert_eq!(revision_patch(3), json!({"revision": 3}));
    }

    #[test]
    fn current_revision_already_newest_is_not_raised() {
        let v1 = ds_with_image("v1");
        let r1 = revision("foo-one", 1, &ds_with_image("v0"), Some("one"));
        let r2 = revision("foo-two", 2, &v1, Some("two"));
        let p = plan(&v1, &[r1, r2], &[]);
        assert_eq!(existing(&p).raise_revision_to, None);
    }

    // ---- legacy label fix-up ------------------------------------------------------------

    #[test]
    fn legacy_revisions_get_their_name_as_hash_label() {
        let ds = ds();
        let legacy_old = revision("foo-legacy", 1, &ds_with_image("v0"), None);
        let mut no_labels = revision("foo-bare", 2, &ds_with_image("v00"), None);
        no_labels.metadata.labels = None;
        let labelled = revision("foo-cur", 3, &ds, Some("cur"));
        let p = plan(&ds, &[legacy_old, no_labels, labelled], &[]);
        assert_eq!(
            p.label_fixups,
            vec![
                LabelFixup {
                    name: "foo-legacy".to_string(),
                    hash: "foo-legacy".to_string()
                },
                LabelFixup {
                    name: "foo-bare".to_string(),
                    hash: "foo-bare".to_string()
                },
            ]
        );
        assert_eq!(hash_label(&p.old[0]), "foo-legacy");
        assert_eq!(hash_label(&p.old[1]), "foo-bare");
        assert_eq!(
            p.label_fixups[0].patch(),
            json!({"metadata": {"labels": {"controller-revision-hash": "foo-legacy"}}})
        );
    }

    #[test]
    fn legacy_current_revision_hash_is_its_name() {
        let ds = ds();
        let legacy = revision("foo-legacy", 1, &ds, None);
        let p = plan(&ds, &[legacy], &[]);
        assert_eq!(p.hash(), "foo-legacy");
        assert_eq!(
            existing(&p).keep.metadata.labels.as_ref().unwrap()["name"],
            "foo"
        );
    }

    #[test]
    fn labelled_revisions_need_no_fixup() {
        let with_empty_label = revision("r", 1, &ds(), Some(""));
        assert!(legacy_label_fixups(std::slice::from_ref(&with_empty_label)).is_empty());
        assert_eq!(with_legacy_label(&with_empty_label), with_empty_label);
    }

    // ---- cleanup ------------------------------------------------------------------------

    #[test]
    fn cleanup_deletes_oldest_first_down_to_the_limit() {
        let mut old = old_revisions(5);
        old.reverse(); // input order must not matter
        let deleted = revisions_to_delete(&old, &BTreeSet::new(), Some(2));
        assert_eq!(deleted, ["old-1", "old-2", "old-3"]);
    }

    #[test]
    fn cleanup_nothing_within_the_limit() {
        let old = old_revisions(3);
        assert!(revisions_to_delete(&old, &BTreeSet::new(), Some(3)).is_empty());
        assert!(revisions_to_delete(&old, &BTreeSet::new(), Some(5)).is_empty());
        assert!(revisions_to_delete(&[], &BTreeSet::new(), Some(0)).is_empty());
    }

    #[test]
    fn the_history_limit_is_exceeded_only_by_more_old_revisions_than_it_keeps() {
        // The shell skips the pods' hashes unless this holds: it must hold whenever
        // `revisions_to_delete` could delete anything.
        for limit in [None, Some(-1), Some(0), Some(2), Some(10), Some(i32::MAX)] {
            for count in [0i64, 1, 2, 3, 10, 11, 12] {
                let old = old_revisions(count);
                let deletes = !revisions_to_delete(&old, &BTreeSet::new(), limit).is_empty();
                assert!(
                    exceeds_history_limit(old.len(), limit) || !deletes,
                    "{count} old revisions, limit {limit:?}"
                );
            }
        }
        assert!(!exceeds_history_limit(10, None));
        assert!(exceeds_history_limit(11, None));
        assert!(!exceeds_history_limit(2, Some(2)));
        assert!(exceeds_history_limit(3, Some(2)));
    }

    #[test]
    fn cleanup_skips_revisions_used_by_pods() {
        let old = old_revisions(3);
        // Two to delete; old-1 is used, so old-2 and old-3 go.
        let deleted = revisions_to_delete(&old, &hashes(&["h1"]), Some(1));
        assert_eq!(deleted, ["old-2", "old-3"]);
    }

    #[test]
    fn cleanup_keeps_revisions_used_by_pods_beyond_the_limit() {
        let old = old_revisions(4);
        let deleted = revisions_to_delete(&old, &hashes(&["h1", "h2", "h4"]), Some(0));
        assert_eq!(deleted, ["old-3"]);
        assert!(revisions_to_delete(&old, &hashes(&["h1", "h2", "h3", "h4"]), Some(0)).is_empty());
    }

    #[test]
    fn cleanup_nil_limit_means_ten() {
        let old = old_revisions(12);
        assert_eq!(
            revisions_to_delete(&old, &BTreeSet::new(), None),
            ["old-1", "old-2"]
        );
        assert!(revisions_to_delete(&old_revisions(10), &BTreeSet::new(), None).is_empty());
        assert_eq!(revision_history_limit(&with_limit(ds(), None)), 10);
        assert_eq!(revision_history_limit(&with_limit(ds(), Some(3))), 3);
    }

    #[test]
    fn cleanup_revisions_without_hash_label_are_deletable() {
        let mut old = old_revisions(2);
        old[0].metadata.labels = None;
        // An empty hash is never "used", even if a pod has no label.
        let deleted = revisions_to_delete(&old, &pod_hashes(&[pod("p", None)]), Some(0));
        assert_eq!(deleted, ["old-1", "old-2"]);
    }

    #[test]
    fn cleanup_equal_revision_numbers_keep_input_order() {
        let mut old = old_revisions(3);
        for r in &mut old {
            r.revision = 1;
        }
        assert_eq!(
            revisions_to_delete(&old, &BTreeSet::new(), Some(1)),
            ["old-1", "old-2"]
        );
    }

    #[test]
    fn current_revision_is_never_a_cleanup_candidate() {
        // The current revision is the oldest and unused, with a limit of zero.
        let ds = ds();
        let cur = revision("foo-cur", 1, &ds, Some("cur"));
        let mut revisions = old_revisions(3);
        for r in &mut revisions {
            r.revision += 1;
        }
        revisions.insert(0, cur);
        let p = plan(&ds, &revisions, &[]);
        let deleted = revisions_to_delete(&p.old, &BTreeSet::new(), Some(0));
        assert_eq!(deleted, ["old-1", "old-2", "old-3"]);
    }

    #[test]
    fn pod_hashes_include_terminating_terminal_pods_and_skip_empty() {
        let mut terminal = pod("done", Some("h-old"));
        terminal.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        terminal.status = Some(crate::core::cached_pod::CachedPodStatus {
            phase: Some("Failed".to_string()),
            ..Default::default()
        });
        let pods = [
            pod("a", Some("h-new")),
            terminal,
            pod("b", None),
            pod("c", Some("")),
        ];
        assert_eq!(pod_hashes(&pods), hashes(&["h-new", "h-old"]));
    }
}
