//! Test builders shared by the core's unit tests: nodes, DaemonSets and daemon pods.
#![cfg(test)]

use crate::core::cached_node::{CachedNode, CachedNodeSpec};
use crate::core::cached_pod::{
    CachedAffinity, CachedContainerState, CachedContainerStatus, CachedNodeAffinity, CachedPod,
    CachedPodSpec, CachedPodStatus,
};
use crate::core::labels::{CONTROLLER_REVISION_HASH, TEMPLATE_GENERATION_ANNOTATION};
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, PodCondition, PodSpec, PodTemplateSpec,
    Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A timestamp `secs` seconds after the Unix epoch.
pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("test timestamp in range")
}

/// A `metav1.Time` `secs` seconds after the Unix epoch.
pub fn time(secs: i64) -> Time {
    Time(ts(secs))
}

/// A label map from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------------

/// A node with just a name (uid `node-uid-<name>`).
pub fn node(name: &str) -> CachedNode {
    CachedNode {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            uid: Some(format!("node-uid-{name}")),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A node with labels.
pub fn node_with_labels(name: &str, pairs: &[(&str, &str)]) -> CachedNode {
    let mut n = node(name);
    n.metadata.labels = Some(labels(pairs));
    n
}

/// Adds (merges) labels to a node.
pub fn with_node_labels(mut node: CachedNode, pairs: &[(&str, &str)]) -> CachedNode {
    let l = node.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in pairs {
        l.insert(k.to_string(), v.to_string());
    }
    node
}

/// A taint. `value` empty means no value.
pub fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        value: (!value.is_empty()).then(|| value.to_string()),
        effect: effect.to_string(),
        time_added: None,
    }
}

/// Appends a taint to the node. `value` empty means no value.
pub fn with_taint(mut node: CachedNode, key: &str, value: &str, effect: &str) -> CachedNode {
    node.spec
        .get_or_insert_with(CachedNodeSpec::default)
        .taints
        .get_or_insert_with(Vec::new)
        .push(taint(key, value, effect));
    node
}

/// Marks the node unschedulable as a DaemonSet controller sees it: `kubectl cordon` sets
/// `spec.unschedulable`, which the cached node does not hold (placement never reads it), and the
/// node lifecycle controller adds the `node.kubernetes.io/unschedulable:NoSchedule` taint for it.
pub fn unschedulable(node: CachedNode) -> CachedNode {
    use crate::core::tolerations::TAINT_NODE_UNSCHEDULABLE;
    with_taint(node, TAINT_NODE_UNSCHEDULABLE, "", "NoSchedule")
}

// ---------------------------------------------------------------------------------------------
// Tolerations
// ---------------------------------------------------------------------------------------------

/// A toleration; empty strings mean the field is unset.
pub fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Toleration {
        key: opt(key),
        operator: opt(operator),
        value: opt(value),
        effect: opt(effect),
        toleration_seconds: None,
    }
}

// ---------------------------------------------------------------------------------------------
// DaemonSets
// ---------------------------------------------------------------------------------------------

/// A DaemonSet in namespace `default` with uid `ds-uid`, selector and template labels
/// `{name: <name>}`, one container, generation 1, template-generation annotation "1",
/// RollingUpdate maxUnavailable 1, revisionHistoryLimit 10.
pub fn daemonset(name: &str) -> DaemonSet {
    let selector_labels = labels(&[("name", name)]);
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("default".to_string()),
            uid: Some("ds-uid".to_string()),
            generation: Some(1),
            annotations: Some(labels(&[(TEMPLATE_GENERATION_ANNOTATION, "1")])),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels.clone()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "foo".to_string(),
                        image: Some("foo/bar".to_string()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: None,
                }),
            }),
            revision_history_limit: Some(10),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

/// The DaemonSet's spec, created if missing.
pub fn ds_spec_mut(ds: &mut DaemonSet) -> &mut DaemonSetSpec {
    ds.spec.get_or_insert_with(DaemonSetSpec::default)
}

/// The DaemonSet's template pod spec, created if missing.
pub fn template_spec_mut(ds: &mut DaemonSet) -> &mut PodSpec {
    ds_spec_mut(ds)
        .template
        .spec
        .get_or_insert_with(PodSpec::default)
}

/// Sets the template's nodeSelector.
pub fn with_node_selector(mut ds: DaemonSet, pairs: &[(&str, &str)]) -> DaemonSet {
    template_spec_mut(&mut ds).node_selector = Some(labels(pairs));
    ds
}

/// Sets the template's spec.nodeName.
pub fn with_template_node_name(mut ds: DaemonSet, node_name: &str) -> DaemonSet {
    template_spec_mut(&mut ds).node_name = Some(node_name.to_string());
    ds
}

/// Appends a toleration to the template.
pub fn with_toleration(mut ds: DaemonSet, t: Toleration) -> DaemonSet {
    template_spec_mut(&mut ds)
        .tolerations
        .get_or_insert_with(Vec::new)
        .push(t);
    ds
}

/// Sets the template's hostNetwork.
pub fn with_host_network(mut ds: DaemonSet, host_network: bool) -> DaemonSet {
    template_spec_mut(&mut ds).host_network = Some(host_network);
    ds
}

/// Sets the template's affinity.
pub fn with_affinity(
    mut ds: DaemonSet,
    affinity: k8s_openapi::api::core::v1::Affinity,
) -> DaemonSet {
    template_spec_mut(&mut ds).affinity = Some(affinity);
    ds
}

/// Sets the DaemonSet's `deprecated.daemonset.template.generation` annotation (None removes it).
pub fn with_template_generation(mut ds: DaemonSet, generation: Option<&str>) -> DaemonSet {
    let ann = ds.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match generation {
        Some(g) => {
            ann.insert(TEMPLATE_GENERATION_ANNOTATION.to_string(), g.to_string());
        }
        None => {
            ann.remove(TEMPLATE_GENERATION_ANNOTATION);
        }
    }
    ds
}

/// Sets the update strategy to OnDelete.
pub fn with_on_delete(mut ds: DaemonSet) -> DaemonSet {
    ds_spec_mut(&mut ds).update_strategy = Some(DaemonSetUpdateStrategy {
        type_: Some("OnDelete".to_string()),
        rolling_update: None,
    });
    ds
}

/// Sets RollingUpdate with the given maxUnavailable and maxSurge.
pub fn with_rolling_update(
    mut ds: DaemonSet,
    max_unavailable: Option<IntOrString>,
    max_surge: Option<IntOrString>,
) -> DaemonSet {
    ds_spec_mut(&mut ds).update_strategy = Some(DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".to_string()),
        rolling_update: Some(RollingUpdateDaemonSet {
            max_unavailable,
            max_surge,
        }),
    });
    ds
}

/// Sets minReadySeconds.
pub fn with_min_ready_seconds(mut ds: DaemonSet, secs: i32) -> DaemonSet {
    ds_spec_mut(&mut ds).min_ready_seconds = Some(secs);
    ds
}

/// Sets the DaemonSet's deletionTimestamp.
pub fn ds_deleting(mut ds: DaemonSet, secs: i64) -> DaemonSet {
    ds.metadata.deletion_timestamp = Some(time(secs));
    ds
}

/// Replaces the DaemonSet's selector.
pub fn with_selector(mut ds: DaemonSet, selector: LabelSelector) -> DaemonSet {
    ds_spec_mut(&mut ds).selector = selector;
    ds
}

/// A selector with only matchLabels.
pub fn selector_labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(pairs)),
        match_expressions: None,
    }
}

/// A label selector requirement.
pub fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

/// The controller ownerReference of `ds` (apps/v1 DaemonSet, controller, blockOwnerDeletion).
pub fn ds_owner_ref(ds: &DaemonSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: "DaemonSet".to_string(),
        name: ds.metadata.name.clone().unwrap_or_default(),
        uid: ds.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A daemon pod of `ds` on `node_name`: named `<ds>-<node>`, in the DS namespace, template labels
/// plus `controller-revision-hash: <hash>` (omitted when `hash` is empty), controlled by `ds`,
/// `spec.nodeName` set (omitted when `node_name` is empty), creationTimestamp `ts(0)`, uid
/// `pod-uid-<name>`.
pub fn ds_pod(ds: &DaemonSet, node_name: &str, hash: &str) -> CachedPod {
    let ds_name = ds.metadata.name.clone().unwrap_or_default();
    let name = format!("{ds_name}-{node_name}");
    let mut pod_labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !hash.is_empty() {
        pod_labels.insert(CONTROLLER_REVISION_HASH.to_string(), hash.to_string());
    }
    let template_spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    CachedPod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: ds.metadata.namespace.clone(),
            uid: Some(format!("pod-uid-{name}")),
            labels: Some(pod_labels),
            owner_references: Some(vec![ds_owner_ref(ds)]),
            creation_timestamp: Some(time(0)),
            ..Default::default()
        },
        spec: Some(CachedPodSpec {
            node_name: (!node_name.is_empty()).then(|| node_name.to_string()),
            ..CachedPodSpec::from(template_spec)
        }),
        status: None,
    }
}

/// `ds_pod` wrapped in an `Arc`, as the core's pod lists hold them.
pub fn ds_pod_arc(ds: &DaemonSet, node_name: &str, hash: &str) -> Arc<CachedPod> {
    Arc::new(ds_pod(ds, node_name, hash))
}

/// A bare pod in namespace `default` with the given labels and no owner.
pub fn pod(name: &str, pairs: &[(&str, &str)]) -> CachedPod {
    CachedPod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("default".to_string()),
            uid: Some(format!("pod-uid-{name}")),
            labels: Some(labels(pairs)),
            creation_timestamp: Some(time(0)),
            ..Default::default()
        },
        spec: Some(CachedPodSpec::default()),
        status: None,
    }
}

/// Sets the pod's name (and uid `pod-uid-<name>`).
pub fn with_name(mut pod: CachedPod, name: &str) -> CachedPod {
    pod.metadata.name = Some(name.to_string());
    pod.metadata.uid = Some(format!("pod-uid-{name}"));
    pod
}

/// Sets (or clears, with `""`) the pod's spec.nodeName.
pub fn with_pod_node_name(mut pod: CachedPod, node_name: &str) -> CachedPod {
    pod.spec
        .get_or_insert_with(CachedPodSpec::default)
        .node_name = (!node_name.is_empty()).then(|| node_name.to_string());
    pod
}

/// Sets the pod's phase (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
pub fn with_phase(mut pod: CachedPod, phase: &str) -> CachedPod {
    pod.status
        .get_or_insert_with(CachedPodStatus::default)
        .phase = Some(phase.to_string());
    pod
}

/// Sets the pod's Ready condition (replacing any existing one) with `lastTransitionTime` `ts(since)`.
pub fn with_ready(mut pod: CachedPod, ready: bool, since: i64) -> CachedPod {
    let status = pod.status.get_or_insert_with(CachedPodStatus::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "Ready");
    conditions.push(PodCondition {
        type_: "Ready".to_string(),
        status: if ready { "True" } else { "False" }.to_string(),
        last_transition_time: Some(time(since)),
        ..Default::default()
    });
    pod
}

/// Running and Ready since `since` (seconds).
pub fn running_ready(pod: CachedPod, since: i64) -> CachedPod {
    with_ready(with_phase(pod, "Running"), true, since)
}

/// Gives the pod one container `app`, restarted 4 times, waiting for `reason` (with `message` when
/// not empty), as a crash-looping or image-pulling container reports it.
pub fn with_container_waiting(mut pod: CachedPod, reason: &str, message: &str) -> CachedPod {
    use k8s_openapi::api::core::v1::ContainerStateWaiting;
    let status = pod.status.get_or_insert_with(CachedPodStatus::default);
    status.container_statuses = Some(vec![CachedContainerStatus {
        name: "app".into(),
        restart_count: 4,
        state: Some(CachedContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: (!message.is_empty()).then(|| message.into()),
            }),
        }),
    }]);
    pod
}

/// Sets the pod's deletionTimestamp.
pub fn with_deletion_timestamp(mut pod: CachedPod, secs: i64) -> CachedPod {
    pod.metadata.deletion_timestamp = Some(time(secs));
    pod
}

/// Sets the pod's creationTimestamp.
pub fn with_creation_timestamp(mut pod: CachedPod, secs: i64) -> CachedPod {
    pod.metadata.creation_timestamp = Some(time(secs));
    pod
}

/// Sets a label on the pod.
pub fn with_pod_label(mut pod: CachedPod, key: &str, value: &str) -> CachedPod {
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
    pod
}

/// Removes a label from the pod.
pub fn without_pod_label(mut pod: CachedPod, key: &str) -> CachedPod {
    if let Some(l) = pod.metadata.labels.as_mut() {
        l.remove(key);
    }
    pod
}

/// Replaces the pod's ownerReferences (empty: orphan).
pub fn with_owner_refs(mut pod: CachedPod, refs: Vec<OwnerReference>) -> CachedPod {
    pod.metadata.owner_references = (!refs.is_empty()).then_some(refs);
    pod
}

/// Makes the pod an orphan (no ownerReferences).
pub fn orphan(pod: CachedPod) -> CachedPod {
    with_owner_refs(pod, Vec::new())
}

/// A controller ownerReference to some other controller.
pub fn other_controller_ref(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod with no spec.nodeName whose required node affinity pins it to `node_name` via
/// `matchFields metadata.name In [node_name]` (as daemon pods were before being bound).
pub fn with_affinity_pin(mut pod: CachedPod, node_name: &str) -> CachedPod {
    use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
    pod.spec.get_or_insert_with(CachedPodSpec::default).affinity = Some(CachedAffinity {
        node_affinity: Some(CachedNodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: None,
                    match_fields: Some(vec![NodeSelectorRequirement {
                        key: "metadata.name".to_string(),
                        operator: "In".to_string(),
                        values: Some(vec![node_name.to_string()]),
                    }]),
                }],
            }),
        }),
    });
    pod
}

/// `node` as the watch caches it when the API server sends it with `status`: the status is left
/// out (placement never reads it; upstream ignores a node's conditions and resources for daemon
/// pods), so the tests that give nodes conditions or resources see what the controller sees.
pub fn with_status(node: CachedNode, status: NodeStatus) -> CachedNode {
    CachedNode::from(Node {
        metadata: node.metadata,
        spec: Some(NodeSpec {
            taints: node.spec.and_then(|s| s.taints),
            ..Default::default()
        }),
        status: Some(status),
    })
}

/// Adds a node condition (e.g. `Ready`/`False`, `NetworkUnavailable`/`True`).
pub fn with_node_condition(node: CachedNode, type_: &str, status: &str) -> CachedNode {
    let condition = NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        ..Default::default()
    };
    let status = NodeStatus {
        conditions: Some(vec![condition]),
        ..Default::default()
    };
    with_status(node, status)
}

/// Sets the node's allocatable memory and cpu (e.g. `"100M"`, `"1"`) and its pod capacity (100).
pub fn with_allocatable(node: CachedNode, memory: &str, cpu: &str) -> CachedNode {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let resources: BTreeMap<String, Quantity> = [("memory", memory), ("cpu", cpu), ("pods", "100")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect();
    let status = NodeStatus {
        allocatable: Some(resources.clone()),
        capacity: Some(resources),
        ..Default::default()
    };
    with_status(node, status)
}

/// Sets memory/cpu requests on every template container.
pub fn with_container_requests(mut ds: DaemonSet, memory: &str, cpu: &str) -> DaemonSet {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    for c in &mut template_spec_mut(&mut ds).containers {
        c.resources = Some(ResourceRequirements {
            requests: Some(
                [("memory", memory), ("cpu", cpu)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
            ),
            ..Default::default()
        });
    }
    ds
}

/// Adds a hostPort to every template container.
pub fn with_host_port(mut ds: DaemonSet, port: i32) -> DaemonSet {
    use k8s_openapi::api::core::v1::ContainerPort;
    for c in &mut template_spec_mut(&mut ds).containers {
        c.ports.get_or_insert_with(Vec::new).push(ContainerPort {
            container_port: port,
            host_port: Some(port),
            ..Default::default()
        });
    }
    ds
}

/// Required node affinity with one term of matchExpressions `key <operator> values`.
pub fn required_affinity(
    key: &str,
    operator: &str,
    values: &[&str],
) -> k8s_openapi::api::core::v1::Affinity {
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    };
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: key.to_string(),
                        operator: operator.to_string(),
                        values: (!values.is_empty())
                            .then(|| values.iter().map(|v| v.to_string()).collect()),
                    }]),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Default::default()
    }
}
