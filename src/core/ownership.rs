//! Ownership: which pods and ControllerRevisions a DaemonSet claims, adopts or releases
//! (upstream ControllerRefManager, §7), and the patches that adopt and release.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;

/// What the DaemonSet does with one object it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Owned by this DaemonSet and matching: it is this DaemonSet's.
    Keep,
    /// An orphan that matches: add a controller reference, then it is this DaemonSet's.
    Adopt,
    /// Owned but no longer matching: remove the controller reference.
    Release,
    /// Not this DaemonSet's business.
    Ignore,
}

/// The claim decision for an object with metadata `meta` whose labels `selector_matches`
/// (upstream `BaseControllerRefManager.ClaimObject`; the live "can adopt" check is the shell's).
pub fn claim(ds: &DaemonSet, meta: &ObjectMeta, selector_matches: bool) -> Claim {
    let ds_deleting = ds.metadata.deletion_timestamp.is_some();
    if let Some(owner) = controller_ref(meta) {
        if owner.uid != ds.metadata.uid.as_deref().unwrap_or_default() {
            return Claim::Ignore;
        }
        if selector_matches {
            return Claim::Keep;
        }
        if ds_deleting {
            return Claim::Ignore;
        }
        return Claim::Release;
    }
    if ds_deleting || !selector_matches || meta.deletion_timestamp.is_some() {
        return Claim::Ignore;
    }
    let ds_namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
    if !ds_namespace.is_empty() && ds_namespace != meta.namespace.as_deref().unwrap_or_default() {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// The controller ownerReference, if any (the first with `controller: true`).
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The controller ownerReference's UID, if any.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    controller_ref(meta).map(|r| r.uid.as_str())
}

/// The controller reference everynode puts on pods and revisions it creates or adopts.
pub fn daemonset_controller_ref(ds: &DaemonSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "DaemonSet".to_string(),
        name: ds.metadata.name.clone().unwrap_or_default(),
        uid: ds.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Strategic-merge patch that adopts the object with uid `object_uid`.
pub fn adopt_patch(ds: &DaemonSet, object_uid: &str) -> serde_json::Value {
    json!({
        "metadata": {
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": ds.metadata.name.as_deref().unwrap_or_default(),
                "uid": ds.metadata.uid.as_deref().unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
            "uid": object_uid,
        }
    })
}

/// Strategic-merge patch that removes `ds`'s controller reference from the object with uid `object_uid`.
pub fn release_patch(ds: &DaemonSet, object_uid: &str) -> serde_json::Value {
    json!({
        "metadata": {
            "ownerReferences": [{
                "$patch": "delete",
                "uid": ds.metadata.uid.as_deref().unwrap_or_default(),
            }],
            "uid": object_uid,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::*;

    fn meta_of(pod: crate::core::cached_pod::CachedPod) -> ObjectMeta {
        pod.metadata
    }

    #[test]
    fn claim_owned_by_other_controller_is_ignored() {
        let ds = daemonset("foo");
        let pod = with_owner_refs(
            ds_pod(&ds, "node-0", ""),
            vec![other_controller_ref("DaemonSet", "foo", "other-uid")],
        );
        assert_eq!(claim(&ds, &pod.metadata, true), Claim::Ignore);
        assert_eq!(claim(&ds, &pod.metadata, false), Claim::Ignore);
    }

    #[test]
    fn claim_compares_uid_not_name_or_kind() {
        let ds = daemonset("foo");
        // Same name and kind, different uid (a recreated DaemonSet): not ours.
        let same_name = with_owner_refs(
            ds_pod(&ds, "n", ""),
            vec![other_controller_ref("DaemonSet", "foo", "old-uid")],
        );
        assert_eq!(claim(&ds, &same_name.metadata, true), Claim::Ignore);
        // Different kind, our uid: ours (upstream compares only the uid).
        let other_kind = with_owner_refs(
            ds_pod(&ds, "n", ""),
            vec![other_controller_ref("ReplicaSet", "x", "ds-uid")],
        );
        assert_eq!(claim(&ds, &other_kind.metadata, true), Claim::Keep);
    }

    #[test]
    fn claim_owned_and_matching_is_kept() {
        let ds = daemonset("foo");
        let meta = meta_of(ds_pod(&ds, "node-0", ""));
        assert_eq!(claim(&ds, &meta, true), Claim::Keep);
    }

    #[test]
    fn claim_owned_and_matching_is_kept_while_ds_deleting() {
        let ds = ds_deleting(daemonset("foo"), 10);
        let meta = meta_of(ds_pod(&ds, "node-0", ""));
        assert_eq!(claim(&ds, &meta, true), Claim::Keep);
    }

    #[test]
    fn claim_owned_terminating_and_matching_is_kept() {
        let ds = daemonset("foo");
        let meta = meta_of(with_deletion_timestamp(ds_pod(&ds, "node-0", ""), 1));
        assert_eq!(claim(&ds, &meta, true), Claim::Keep);
    }

    #[test]
    fn claim_owned_not_matching_is_released() {
        let ds = daemonset("foo");
        let meta = meta_of(ds_pod(&ds, "node-0", ""));
        assert_eq!(claim(&ds, &meta, false), Claim::Release);
    }

    #[test]
    fn claim_owned_not_matching_while_ds_deleting_is_ignored() {
        let ds = ds_deleting(daemonset("foo"), 10);
        let meta = meta_of(ds_pod(&ds, "node-0", ""));
        assert_eq!(claim(&ds, &meta, false), Claim::Ignore);
    }

    #[test]
    fn claim_orphan_matching_is_adopted() {
        let ds = daemonset("foo");
        let meta = meta_of(orphan(ds_pod(&ds, "node-0", "")));
        assert_eq!(claim(&ds, &meta, true), Claim::Adopt);
    }

    #[test]
    fn claim_orphan_not_matching_is_ignored() {
        let ds = daemonset("foo");
        let meta = meta_of(orphan(ds_pod(&ds, "node-0", "")));
        assert_eq!(claim(&ds, &meta, false), Claim::Ignore);
    }

    #[test]
    fn claim_orphan_while_ds_deleting_is_ignored() {
        let ds = ds_deleting(daemonset("foo"), 10);
        let meta = meta_of(orphan(ds_pod(&ds, "node-0", "")));
        assert_eq!(claim(&ds, &meta, true), Claim::Ignore);
    }

    #[test]
    fn claim_terminating_orphan_is_ignored() {
        let ds = daemonset("foo");
        let meta = meta_of(with_deletion_timestamp(
            orphan(ds_pod(&ds, "node-0", "")),
            1,
        ));
        assert_eq!(claim(&ds, &meta, true), Claim::Ignore);
    }

    #[test]
    fn claim_orphan_in_other_namespace_is_ignored() {
        // TestControlledHistories (b): a matching orphan in another namespace is not adopted.
        let ds = daemonset("foo");
        let mut meta = meta_of(orphan(ds_pod(&ds, "node-0", "")));
        meta.namespace = Some("other".to_string());
        assert_eq!(claim(&ds, &meta, true), Claim::Ignore);
        meta.namespace = None;
        assert_eq!(claim(&ds, &meta, true), Claim::Ignore);
    }

    #[test]
    fn claim_orphan_with_non_controller_owner_is_adopted() {
        let ds = daemonset("foo");
        let mut owner = other_controller_ref("ConfigMap", "cm", "cm-uid");
        owner.controller = Some(false);
        let mut meta = meta_of(ds_pod(&ds, "node-0", ""));
        meta.owner_references = Some(vec![owner]);
        assert_eq!(claim(&ds, &meta, true), Claim::Adopt);
    }

    #[test]
    fn claim_uses_first_controller_ref() {
        let ds = daemonset("foo");
        let mut non_controller = other_controller_ref("ConfigMap", "cm", "cm-uid");
        non_controller.controller = None;
        let mut meta = meta_of(ds_pod(&ds, "node-0", ""));
        meta.owner_references = Some(vec![
            non_controller,
            other_controller_ref("DaemonSet", "bar", "bar-uid"),
            daemonset_controller_ref(&ds),
        ]);
        assert_eq!(
            controller_ref(&meta).map(|r| r.uid.as_str()),
            Some("bar-uid")
        );
        assert_eq!(claim(&ds, &meta, true), Claim::Ignore);
    }

    #[test]
    fn controlled_histories_owned_and_orphan_in_same_namespace() {
        // TestControlledHistories (a): owned revision kept, matching orphan adopted.
        let ds = daemonset("foo");
        let owned = ObjectMeta {
            name: Some("foo-1".to_string()),
            namespace: Some("default".to_string()),
            owner_references: Some(vec![daemonset_controller_ref(&ds)]),
            ..Default::default()
        };
        let orphan_rev = ObjectMeta {
            name: Some("foo-2".to_string()),
            namespace: Some("default".to_string()),
            ..Default::default()
        };
        assert_eq!(claim(&ds, &owned, true), Claim::Keep);
        assert_eq!(claim(&ds, &orphan_rev, true), Claim::Adopt);
    }

    #[test]
    fn controller_ref_absent() {
        assert!(controller_ref(&ObjectMeta::default()).is_none());
        let mut meta = ObjectMeta::default();
        let mut r = other_controller_ref("X", "x", "x");
        r.controller = Some(false);
        meta.owner_references = Some(vec![r]);
        assert!(controller_ref(&meta).is_none());
    }

    #[test]
    fn daemonset_controller_ref_fields() {
        let ds = daemonset("foo");
        let r = daemonset_controller_ref(&ds);
        assert_eq!(r.api_version, "apps/v1");
        assert_eq!(r.kind, "DaemonSet");
        assert_eq!(r.name, "foo");
        assert_eq!(r.uid, "ds-uid");
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
    }

    #[test]
    fn adopt_patch_is_exact() {
        let ds = daemonset("foo");
        assert_eq!(
            adopt_patch(&ds, "pod-uid-1"),
            json!({"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet",
                "name":"foo","uid":"ds-uid","controller":true,"blockOwnerDeletion":true}],
                "uid":"pod-uid-1"}})
        );
    }

    #[test]
    fn adopt_patch_owner_reference_deserializes_to_controller_ref() {
        let ds = daemonset("foo");
        let patch = adopt_patch(&ds, "u");
        let r: OwnerReference =
            serde_json::from_value(patch["metadata"]["ownerReferences"][0].clone()).unwrap();
        assert_eq!(r, daemonset_controller_ref(&ds));
    }

    #[test]
    fn release_patch_is_exact() {
        let ds = daemonset("foo");
        assert_eq!(
            release_patch(&ds, "pod-uid-1"),
            json!({"metadata":{"ownerReferences":[{"$patch":"delete","uid":"ds-uid"}],
                "uid":"pod-uid-1"}})
        );
    }
}
