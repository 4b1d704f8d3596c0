//! The Node as the controller caches and reads it: what the node watch decodes each node into, and
//! the type every decision of the core takes. It holds the metadata (name and labels, for the
//! selectors, affinity and DaemonSetRollout scopes) and `spec.taints`: upstream's DaemonSet placement
//! looks at a node's name, labels and taints only. The status (conditions, `images`, addresses,
//! capacity, `nodeInfo`) and the rest of the spec have no field here, so no decision can read them
//! by mistake.
//!
//! Why not k8s-openapi's `Node`: every field of its spec and status is inline, `None` or not, so
//! each cached node carried well over a kilobyte that nothing reads; the controller holds every
//! node of the cluster: 1 520 bytes inline against 384 for a `CachedNode` (k8s-openapi 0.29), and
//! `cached_node_sizes` below keeps it a third of a `Node` at most.
//! The field names are k8s-openapi's, so `node.spec.as_ref()...taints` reads the same.

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct CachedNode {
    #[serde(deserialize_with = "super::cached_meta::deserialize")]
    pub metadata: ObjectMeta,
    pub spec: Option<CachedNodeSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct CachedNodeSpec {
    #[serde(deserialize_with = "super::cached_meta::shrunk")]
    pub taints: Option<Vec<Taint>>,
}

impl CachedNode {
    /// The node's taints (none when it has no spec or no taints).
    pub fn taints(&self) -> &[Taint] {
        self.spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or_default()
    }
}

/// A full node (a test's, as the API server would send it) as the cache would hold it: metadata and
/// taints, everything else left out.
impl From<Node> for CachedNode {
    fn from(n: Node) -> CachedNode {
        CachedNode {
            metadata: super::cached_meta::slim(n.metadata),
            spec: n.spec.map(|s| CachedNodeSpec { taints: s.taints }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn full() -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "n1",
                "uid": "u1",
                "resourceVersion": "7",
                "labels": {"zone": "a", "kubernetes.io/hostname": "n1"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
            },
            "spec": {
                "podCIDR": "10.0.0.0/24",
                "providerID": "kwok://n1",
                "unschedulable": true,
                "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
            },
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "images": [{"names": ["registry.example/agent:v1"], "sizeBytes": 1}],
                "capacity": {"cpu": "32"},
            },
        }))
        .unwrap_or_else(|e| panic!("node: {e}"))
    }

    /// The watch's decoding and the conversion from a full `Node` give the same cached node, with
    /// the name, labels and taints kept and nothing else of the spec or status.
    #[test]
    fn a_converted_node_is_the_decoded_node() {
        let node = full();
        let json = serde_json::to_value(&node).unwrap_or_else(|e| panic!("encode: {e}"));
        let decoded: CachedNode =
            serde_json::from_value(json).unwrap_or_else(|e| panic!("decode: {e}"));
        let converted = CachedNode::from(node);
        assert_eq!(decoded, converted);
        assert_eq!(decoded.metadata.name.as_deref(), Some("n1"));
        assert_eq!(decoded.metadata.labels.as_ref().map(|l| l.len()), Some(2));
        assert_eq!(decoded.taints().len(), 1);
        assert_eq!(decoded.taints()[0].key, "dedicated");
        assert!(decoded.metadata.managed_fields.is_none());
        assert!(decoded.metadata.annotations.is_none());
    }

    #[test]
    fn a_node_without_spec_has_no_taints() {
        let mut node = full();
        node.spec = None;
        assert!(CachedNode::from(node).taints().is_empty());
        let bare = Node {
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus::default()),
            ..Default::default()
        };
        assert!(CachedNode::from(bare).taints().is_empty());
    }

    /// Each cached node holds a third of a `Node`'s inline bytes at most: the point of the type.
    #[test]
    fn cached_node_sizes() {
        let (cached, full) = (
            std::mem::size_of::<CachedNode>(),
            std::mem::size_of::<Node>(),
        );
        assert!(
            3 * cached <= full,
            "CachedNode is {cached} bytes inline, Node {full}"
        );
    }
}
