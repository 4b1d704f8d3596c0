//! Ownership: which pods and ControllerRevisions a DaemonSet claims, adopts or releases
//! (upstream ControllerRefManager, §7), and the patches that adopt and release.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

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

/// The claim decision for an object with metadata `meta` whose labels `selector_matches`.
pub fn claim(ds: &DaemonSet, meta: &ObjectMeta, selector_matches: bool) -> Claim {
    todo!("{ds:?} {meta:?} {selector_matches}")
}

/// The controller ownerReference, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    todo!("{meta:?}")
}

/// The controller reference everynode puts on pods and revisions it creates or adopts.
pub fn daemonset_controller_ref(ds: &DaemonSet) -> OwnerReference {
    todo!("{ds:?}")
}

/// Strategic-merge patch that adopts the object with uid `object_uid`.
pub fn adopt_patch(ds: &DaemonSet, object_uid: &str) -> serde_json::Value {
    todo!("{ds:?} {object_uid}")
}

/// Strategic-merge patch that removes `ds`'s controller reference from the object with uid `object_uid`.
pub fn release_patch(ds: &DaemonSet, object_uid: &str) -> serde_json::Value {
    todo!("{ds:?} {object_uid}")
}
