//! The Node as the controller reads it: metadata (name and labels for selectors and affinity) and
//! `spec.taints`. Its status (conditions, `images`, addresses, capacity, `nodeInfo`) is not read:
//! upstream's DaemonSet placement looks at labels, name and taints only.

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlimNode {
    #[serde(deserialize_with = "crate::core::cached_meta::deserialize")]
    pub metadata: ObjectMeta,
    pub spec: Option<SlimNodeSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlimNodeSpec {
    pub taints: Option<Vec<Taint>>,
}

super::slim_resource!(SlimNode, Node);

impl From<SlimNode> for Node {
    fn from(n: SlimNode) -> Node {
        Node {
            metadata: n.metadata,
            spec: n.spec.map(|s| NodeSpec {
                taints: s.taints,
                ..Default::default()
            }),
            status: None,
        }
    }
}
