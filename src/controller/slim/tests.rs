//! The slim types keep what the controller reads: the decision corpus decides the same through them,
//! and what they drop is really gone.

use super::*;
use crate::controller::decode_guard::Guarded;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A cached pod or node encoded as JSON and decoded as the watch decodes it.
fn decoded<T: Serialize + DeserializeOwned>(object: &T) -> T {
    let json = serde_json::to_value(object).unwrap_or_else(|e| panic!("encode: {e}"));
    serde_json::from_value(json).unwrap_or_else(|e| panic!("decode: {e}"))
}

/// Every situation of the decision corpus, with each node and pod round-tripped through the slim
/// types, gives exactly the same decisions and node explanations.
#[test]
fn the_decision_corpus_decides_the_same_through_the_slim_types() {
    let results = crate::core::decision_corpus::decided_through(
        |node: &CachedNode| decoded(node),
        |pod: &CachedPod| decoded(pod),
    );
    let differing: Vec<_> = results.iter().filter(|(_, a, b)| a != b).collect();
    println!(
        "{} scenarios, {} differ through the slim types; size_of Pod {} Node {} ControllerRevision {}, CachedPod {} CachedNode {} SlimRevision {}",
        results.len(),
        differing.len(),
        std::mem::size_of::<Pod>(),
        std::mem::size_of::<Node>(),
        std::mem::size_of::<ControllerRevision>(),
        std::mem::size_of::<CachedPod>(),
        std::mem::size_of::<CachedNode>(),
        std::mem::size_of::<SlimRevision>(),
    );
    if let Some((id, a, b)) = differing.first() {
        panic!(
            "{} of {} scenarios decide differently through the slim types; first {id}:\n  as built: {a}\n  decoded: {b}",
            differing.len(),
            results.len()
        );
    }
}

fn node_json() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": "n1", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"},
            "annotations": {"big": "x"},
            "managedFields": [{"manager": "kubelet", "operation": "Update"}]
        },
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "podCIDR": "10.0.0.0/24"},
        "status": {
            "images": [{"names": ["registry/image@sha256:0123"], "sizeBytes": 1234}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "capacity": {"cpu": "4"},
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "k",
                         "osImage": "o", "containerRuntimeVersion": "c", "kubeletVersion": "v",
                         "kubeProxyVersion": "p", "operatingSystem": "linux", "architecture": "amd64"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

/// A node's `status.images` (and the rest of its status, annotations and managed fields) is not
/// kept; name, labels and taints are.
#[test]
fn a_node_keeps_labels_and_taints_but_not_its_images() {
    let node: CachedNode =
        serde_json::from_value(node_json()).unwrap_or_else(|e| panic!("decode: {e}"));
    // Encoded again, nothing of the status or the rest of the spec is there to read.
    let back: Node = serde_json::from_value(
        serde_json::to_value(&node).unwrap_or_else(|e| panic!("encode: {e}")),
    )
    .unwrap_or_else(|e| panic!("decode: {e}"));
    assert!(back.status.is_none(), "{:?}", back.status);
    assert!(node.metadata.managed_fields.is_none() && node.metadata.annotations.is_none());
    assert_eq!(node.metadata.name.as_deref(), Some("n1"));
    assert_eq!(node.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(node.metadata.labels.map(|l| l.len()), Some(1));
    let spec = back.spec.unwrap_or_default();
    assert_eq!(spec.taints.map(|t| t.len()), Some(1));
    assert!(spec.pod_cidr.is_none());
}

fn revision(owner_kind: Option<&str>) -> ControllerRevision {
    let mut json = serde_json::json!({
        "metadata": {"name": "r", "namespace": "ns", "labels": {"controller-revision-hash": "h"}},
        "revision": 3,
        "data": {"spec": {"template": {"spec": {"containers": []}}}}
    });
    if let Some(kind) = owner_kind {
        json["metadata"]["ownerReferences"] = serde_json::json!([
            {"apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "ou", "controller": true}
        ]);
    }
    let slim: SlimRevision = serde_json::from_value(json).unwrap_or_else(|e| panic!("decode: {e}"));
    slim.into()
}

/// A DaemonSet's revisions and orphans keep their data; another controller's (a StatefulSet's) do
/// not, though their identity, owner and revision number stay.
#[test]
fn only_revisions_a_daemonset_may_read_keep_their_data() {
    assert!(revision(Some("DaemonSet")).data.is_some());
    assert!(revision(None).data.is_some());
    let sts = revision(Some("StatefulSet"));
    assert!(sts.data.is_none());
    assert_eq!(sts.revision, 3);
    assert_eq!(
        crate::core::ownership::controller_uid(&sts.metadata),
        Some("ou")
    );
}

/// What the watch does with a pod: undecodable ones still go through kube's guard (logged and
/// dropped by the watch), and a decoded one keeps the container waiting state the node reasons
/// read but not the container specs.
#[test]
fn a_pod_keeps_what_the_reasons_read() {
    let json = serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns", "deletionGracePeriodSeconds": 30},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}], "volumes": []},
        "status": {
            "phase": "Pending", "podIP": "10.0.0.2", "nominatedNodeName": "n2",
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false,
                "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "m"}},
                "lastState": {"terminated": {"exitCode": 1}}}]
        }
    });
    let guarded: Guarded<CachedPod> =
        serde_json::from_str(&json.to_string()).unwrap_or_else(|e| panic!("guard: {e}"));
    let pod = guarded.0.unwrap_or_else(|e| panic!("decode: {e}"));
    assert_eq!(
        crate::core::node_reason::failing_container(&pod),
        Some(("c".into(), "CrashLoopBackOff".into(), "m".into()))
    );
    assert_eq!(crate::core::rollout::failure::restarts(&pod), 4);
    // Containers, volumes and IPs have no field in a cached pod.
    let spec = pod.spec.as_ref().unwrap_or_else(|| panic!("no spec"));
    assert_eq!(spec.node_name.as_deref(), Some("n1"));
    let status = pod.status.as_ref().unwrap_or_else(|| panic!("no status"));
    assert_eq!(status.nominated_node_name.as_deref(), Some("n2"));
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(30));
    let bad: Guarded<CachedPod> = serde_json::from_str(
        &serde_json::json!({
            "metadata": {"name": "bad", "namespace": "ns"},
            "status": {"conditions": "not a list"}
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("guard: {e}"));
    assert!(
        bad.0
            .is_err_and(|e| e.metadata.name.as_deref() == Some("bad"))
    );
}

/// Of a pod's conditions, only those the controller reads are kept, in their order: the first
/// `Ready` condition is still the first, and an unschedulable pod keeps its `PodScheduled` message.
#[test]
fn a_pod_keeps_only_the_conditions_the_controller_reads() {
    let condition = |type_: &str, status: &str| serde_json::json!({"type": type_, "status": status, "reason": "Unschedulable", "message": format!("{type_} {status}")});
    let json = serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {},
        "status": {"conditions": [
            condition("PodReadyToStartContainers", "True"),
            condition("Initialized", "True"),
            condition("Ready", "False"),
            condition("ContainersReady", "False"),
            condition("Ready", "True"),
            condition("PodScheduled", "False"),
        ]}
    });
    let pod: CachedPod = serde_json::from_value(json).unwrap_or_else(|e| panic!("decode: {e}"));
    let kept: Vec<(String, String)> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect();
    let pair = |t: &str, s: &str| (t.to_string(), s.to_string());
    assert_eq!(
        kept,
        [
            pair("Ready", "False"),
            pair("Ready", "True"),
            pair("PodScheduled", "False")
        ]
    );
    assert!(
        !crate::core::pod_state::is_ready(&pod),
        "the first Ready condition decides"
    );
    assert_eq!(
        crate::core::node_reason::unschedulable_message(&pod).as_deref(),
        Some("PodScheduled False")
    );
    let none: CachedPod = serde_json::from_value(serde_json::json!({"status": {}}))
        .unwrap_or_else(|e| panic!("decode: {e}"));
    assert!(none.status.and_then(|s| s.conditions).is_none());
}
