//! Fake nodes: plain Node objects that kwok (started with an annotation selector) makes Ready and
//! whose pods it drives to Running.

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;

/// The annotation kwok selects its nodes by; `kubectl apply` a Node with it to add a fake node.
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";
pub const KWOK_ANNOTATION_VALUE: &str = "fake";

/// A fake Node object with `labels` (plus the usual hostname/os/arch labels) and `taints`.
pub fn fake_node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
    let mut all: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("type", "kwok"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    all.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(all),
            annotations: Some(
                [(
                    KWOK_ANNOTATION.to_string(),
                    KWOK_ANNOTATION_VALUE.to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: if taints.is_empty() {
                None
            } else {
                Some(taints)
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// Creates a fake node.
pub async fn create(client: &kube::Client, node: &Node) -> Result<Node, kube::Error> {
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), node)
        .await
}

/// Deletes a node; a node already gone is fine.
pub async fn delete(client: &kube::Client, name: &str) -> Result<(), kube::Error> {
    match Api::<Node>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the node's `Ready` condition is `True`.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
