//! The pod everynode creates for one node: template copy, default tolerations, revision labels,
//! node-pinning affinity, generateName and controller reference (§4 steps 2–3).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;

/// The pod to create for `node_name` from `ds`'s template with revision `hash` (empty: no hash label).
/// `pod-template-generation` comes from the DS annotation when it parses as an integer.
pub fn new_pod(ds: &DaemonSet, hash: &str, node_name: &str) -> Pod {
    todo!("{ds:?} {hash} {node_name}")
}
