//! Grouping a DaemonSet's claimed pods by the node they are meant for (upstream
//! `getNodesToDaemonPods` and `GetTargetNodeName`, §3.2).

use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Claimed pods per target node name.
pub type NodePods = BTreeMap<String, Vec<Arc<Pod>>>;

/// `spec.nodeName` if set, else the single value of the first `metadata.name In [..]` matchFields
/// requirement of the required node affinity; `None` when there is none or it has several values.
pub fn target_node_name(pod: &Pod) -> Option<String> {
    todo!("{pod:?}")
}

/// Groups `pods` by target node; pods without a target are skipped. Terminal pods that are also
/// terminating are left out unless `include_terminal_terminating` (history cleanup includes them).
pub fn group_by_node<'a>(pods: impl IntoIterator<Item = &'a Arc<Pod>>, include_terminal_terminating: bool) -> NodePods {
    let _ = (pods.into_iter().count(), include_terminal_terminating);
    todo!()
}
