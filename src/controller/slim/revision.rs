//! The ControllerRevision as the controller reads it: metadata, `revision` and `data`. The `data`
//! of a revision whose controller is not a DaemonSet (a StatefulSet's history) is not kept: a
//! DaemonSet adopts only revisions without a controller and reads only its own, so nothing ever
//! compares that data.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "Decoded")]
pub struct SlimRevision {
    pub metadata: ObjectMeta,
    pub revision: i64,
    pub data: Option<RawExtension>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Decoded {
    #[serde(deserialize_with = "crate::core::cached_meta::deserialize")]
    metadata: ObjectMeta,
    revision: i64,
    data: Option<RawExtension>,
}

/// Whether the revision's controller (if any) is something other than a DaemonSet.
pub fn controlled_by_other_kind(meta: &ObjectMeta) -> bool {
    crate::core::ownership::controller_ref(meta).is_some_and(|r| r.kind != "DaemonSet")
}

impl From<Decoded> for SlimRevision {
    fn from(d: Decoded) -> Self {
        let data = if controlled_by_other_kind(&d.metadata) {
            None
        } else {
            d.data
        };
        SlimRevision {
            metadata: d.metadata,
            revision: d.revision,
            data,
        }
    }
}

super::slim_resource!(SlimRevision, ControllerRevision);

impl From<SlimRevision> for ControllerRevision {
    fn from(r: SlimRevision) -> ControllerRevision {
        ControllerRevision {
            metadata: r.metadata,
            revision: r.revision,
            data: r.data,
        }
    }
}
