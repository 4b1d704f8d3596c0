//! Placement: whether a node should run a DaemonSet's pod, and whether a pod already there may stay
//! (upstream `NodeShouldRunDaemonPod`, §3.1).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;

/// The two placement answers for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// A daemon pod should be created on the node if none is there.
    pub should_run: bool,
    /// A daemon pod already on the node may keep running.
    pub should_continue_running: bool,
}

/// Placement of `ds` on `node` (§3.1): template nodeName, nodeSelector, required node affinity,
/// NoSchedule/NoExecute taints against the template's tolerations plus the defaults.
pub fn placement(node: &Node, ds: &DaemonSet) -> Placement {
    todo!("{node:?} {ds:?}")
}
