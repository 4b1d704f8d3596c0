//! Slim decoding of the watched Pods, Nodes and ControllerRevisions: each watch event decodes
//! straight into a type holding only the fields the controller reads. Revisions then move those
//! fields into the k8s-openapi type the core takes (`impl From<SlimRevision> for
//! ControllerRevision`); pods and nodes stay in the core's own [`CachedPod`] and [`CachedNode`],
//! which the caches hold and every decision reads.
//!
//! Why: the caches hold every pod and node of the cluster, and a full typed object carries much
//! the controller never looks at (`managedFields`, container specs and volumes, a node's
//! `status.images`, addresses and capacity...). serde skips a field the slim type does not name
//! without keeping it, so the cached object is only as large as what is read.
//!
//! **The rule: a field the controller (`src/core`, `src/controller`) starts reading from a cached
//! revision must be added here**, or it reads as absent; a pod or node field must be added to
//! [`CachedPod`] or [`CachedNode`] (the compiler says so), and a pod condition type to
//! [`crate::core::cached_pod::READ_CONDITIONS`]. The parity test of
//! [`tests`] replays the decision corpus with every object round-tripped through these types and
//! fails when a decision reads a field they drop (for a pod's conditions; a pod or node field they
//! do not have cannot be read at all). `src/inspect` lists pods and nodes as the same
//! [`CachedPod`] and [`CachedNode`], so what `everynode explain` reads of them is bound by this
//! too.
//!
//! One file per kind: [`revision`]; the pod and the node are the core's own types
//! ([`crate::core::cached_pod`], [`crate::core::cached_node`]), which the watch decodes into
//! directly; the metadata they share is [`crate::core::cached_meta`].

pub mod revision;

pub use crate::core::cached_node::CachedNode;
pub use crate::core::cached_pod::CachedPod;
pub use revision::SlimRevision;

/// Makes a slim type a Kubernetes resource of the same kind, group and version as `$full` (so an
/// `Api<CachedNode>` lists and watches nodes), with its converted metadata.
macro_rules! slim_resource {
    ($slim:ty, $full:ty) => {
        impl k8s_openapi::Resource for $slim {
            const API_VERSION: &'static str = <$full as k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$full as k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$full as k8s_openapi::Resource>::KIND;
            const VERSION: &'static str = <$full as k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str =
                <$full as k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$full as k8s_openapi::Resource>::Scope;
        }

        impl k8s_openapi::Metadata for $slim {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use slim_resource;

slim_resource!(CachedPod, k8s_openapi::api::core::v1::Pod);
slim_resource!(CachedNode, k8s_openapi::api::core::v1::Node);

#[cfg(test)]
mod tests;
