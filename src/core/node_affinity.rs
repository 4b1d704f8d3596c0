//! Required node affinity and nodeSelector matching, and the per-node affinity daemon pods are
//! created with (§3.1 step 2, §4 step 3).

use k8s_openapi::api::core::v1::{Affinity, Node, PodSpec};

/// Whether `node` satisfies the pod spec's `nodeSelector` and its required node affinity (terms
/// ORed; expressions and `metadata.name` matchFields ANDed inside a term; operators In, NotIn,
/// Exists, DoesNotExist, Gt, Lt; a term with no requirements matches nothing; unparsable terms are
/// skipped).
pub fn node_matches(node: &Node, spec: &PodSpec) -> bool {
    todo!("{node:?} {spec:?}")
}

/// `affinity` with its required node affinity replaced by exactly one term
/// `matchFields: [{key: metadata.name, operator: In, values: [node_name]}]`; preferred terms and pod
/// (anti-)affinity kept (upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn pin_to_node(affinity: Option<Affinity>, node_name: &str) -> Affinity {
    todo!("{affinity:?} {node_name}")
}
