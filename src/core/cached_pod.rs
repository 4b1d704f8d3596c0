//! The Pod as the controller caches and reads it: what the pod watch decodes each pod into, and the
//! type every decision of the core takes. It holds metadata; `spec.nodeName` and the required node
//! affinity (the node a pending daemon pod targets); and the status the syncs, the status counters,
//! the node reasons and DaemonSetRollout failure detection read: phase, reason, message, nominated
//! node, the `Ready` and `PodScheduled` conditions, and each container's name, restart count and
//! waiting state. Containers, volumes and the rest of the spec, IPs, the other conditions
//! (`Initialized`, `ContainersReady`, `PodReadyToStartContainers`...) and the rest of the container
//! statuses are not read, and have no field here, so no decision can read them by mistake.
//!
//! Why not k8s-openapi's `Pod`: it is 2 416 bytes before any of its strings (every field of the
//! spec and status inline, `None` or not), and a `ContainerStatus` is 752; the controller holds every
//! pod of the cluster. A kwok daemon pod decoded as a `CachedPod` held 2 077 bytes in all, against
//! 5 333 as a `Pod` (measured with a counting allocator, issue 14); `cached_pod_sizes` below keeps
//! it a quarter of a `Pod` inline, and its lists without spare room. Reading it touches fewer cache
//! lines.
//! The field names are k8s-openapi's, so `pod.status.as_ref()...conditions` reads the same.

use k8s_openapi::api::core::v1::{
    ContainerStateWaiting, ContainerStatus, NodeSelector, Pod, PodCondition, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CachedPod {
    #[serde(deserialize_with = "super::cached_meta::deserialize")]
    pub metadata: ObjectMeta,
    pub spec: Option<CachedPodSpec>,
    pub status: Option<CachedPodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedPodSpec {
    pub node_name: Option<String>,
    pub affinity: Option<CachedAffinity>,
}

impl CachedPodSpec {
    /// `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`, if any.
    pub fn required_node_affinity(&self) -> Option<&NodeSelector> {
        self.affinity
            .as_ref()?
            .node_affinity
            .as_ref()?
            .required_during_scheduling_ignored_during_execution
            .as_ref()
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedAffinity {
    pub node_affinity: Option<CachedNodeAffinity>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedNodeAffinity {
    #[serde(deserialize_with = "shrunk_selector")]
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedPodStatus {
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub nominated_node_name: Option<String>,
    #[serde(deserialize_with = "read_conditions")]
    pub conditions: Option<Vec<PodCondition>>,
    #[serde(deserialize_with = "super::cached_meta::shrunk")]
    pub container_statuses: Option<Vec<CachedContainerStatus>>,
    #[serde(deserialize_with = "super::cached_meta::shrunk")]
    pub init_container_statuses: Option<Vec<CachedContainerStatus>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachedContainerStatus {
    pub name: String,
    pub restart_count: i32,
    pub state: Option<CachedContainerState>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CachedContainerState {
    pub waiting: Option<ContainerStateWaiting>,
}

/// The condition types the controller reads: `Ready` (readiness and availability) and
/// `PodScheduled` (an unschedulable pod's message, `core::node_reason`).
pub const READ_CONDITIONS: [&str; 2] = ["Ready", "PodScheduled"];

/// Decodes `status.conditions` keeping only [`READ_CONDITIONS`], in their order (the first `Ready`
/// condition stays the first). A kubelet's pod has four or five; each costs about 200 bytes in the
/// cache, and a search for `Ready` reads past the ones before it.
fn read_conditions<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<PodCondition>>, D::Error> {
    let conditions = Option::<Vec<PodCondition>>::deserialize(d)?;
    Ok(conditions.map(|all| {
        let mut kept: Vec<PodCondition> = all
            .into_iter()
            .filter(|c| READ_CONDITIONS.contains(&c.type_.as_str()))
            .collect();
        kept.shrink_to_fit();
        kept
    }))
}

/// [`super::cached_meta::shrunk`] for the required node affinity, with its terms, their
/// requirements and their values.
fn shrunk_selector<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<NodeSelector>, D::Error> {
    Ok(Option::<NodeSelector>::deserialize(d)?.map(|mut s| {
        s.node_selector_terms.shrink_to_fit();
        for term in &mut s.node_selector_terms {
            for reqs in [&mut term.match_expressions, &mut term.match_fields]
                .into_iter()
                .flatten()
            {
                reqs.shrink_to_fit();
                for r in reqs.iter_mut() {
                    if let Some(values) = &mut r.values {
                        values.shrink_to_fit();
                    }
                }
            }
        }
        s
    }))
}

impl From<ContainerStatus> for CachedContainerStatus {
    fn from(c: ContainerStatus) -> Self {
        CachedContainerStatus {
            name: c.name,
            restart_count: c.restart_count,
            state: c.state.map(|s| CachedContainerState { waiting: s.waiting }),
        }
    }
}

fn containers(v: Option<Vec<ContainerStatus>>) -> Option<Vec<CachedContainerStatus>> {
    v.map(|v| v.into_iter().map(CachedContainerStatus::from).collect())
}

impl From<PodSpec> for CachedPodSpec {
    fn from(s: PodSpec) -> Self {
        CachedPodSpec {
            node_name: s.node_name,
            affinity: s.affinity.map(|a| CachedAffinity {
                node_affinity: a.node_affinity.map(|n| CachedNodeAffinity {
                    required_during_scheduling_ignored_during_execution: n
                        .required_during_scheduling_ignored_during_execution,
                }),
            }),
        }
    }
}

/// A full pod (a test's, or one read as k8s-openapi's `Pod`) as the cache would hold it: the
/// fields above, everything else left out, and only the [`READ_CONDITIONS`].
impl From<Pod> for CachedPod {
    fn from(p: Pod) -> CachedPod {
        CachedPod {
            metadata: super::cached_meta::slim(p.metadata),
            spec: p.spec.map(CachedPodSpec::from),
            status: p.status.map(|s| CachedPodStatus {
                phase: s.phase,
                reason: s.reason,
                message: s.message,
                nominated_node_name: s.nominated_node_name,
                conditions: s.conditions.map(|all| {
                    all.into_iter()
                        .filter(|c| READ_CONDITIONS.contains(&c.type_.as_str()))
                        .collect()
                }),
                container_statuses: containers(s.container_statuses),
                init_container_statuses: containers(s.init_container_statuses),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon pod as a kubelet (or kwok) reports it: the fields the cache keeps and many it
    /// does not.
    fn daemon_pod_json() -> serde_json::Value {
        serde_json::json!({
            "metadata": {
                "name": "agent-x7k2p", "generateName": "agent-", "namespace": "kube-system",
                "uid": "9f1c2d3e-1111-2222-3333-444455556666", "resourceVersion": "123456",
                "labels": {"app": "agent", "controller-revision-hash": "6d4cf56db6",
                           "pod-template-generation": "1"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                    "uid": "abcdef01-1111-2222-3333-444455556666", "controller": true,
                    "blockOwnerDeletion": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update"}]
            },
            "spec": {
                "nodeName": "node-1",
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}}},
                "containers": [{"name": "agent", "image": "registry.k8s.io/pause:3.10"}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                 "effect": "NoExecute"}]
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.2", "startTime": "2026-01-01T00:00:01Z",
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:02Z"},
                    {"type": "ContainersReady", "status": "True"},
                    {"type": "PodScheduled", "status": "True"}
                ],
                "containerStatuses": [{"name": "agent", "image": "registry.k8s.io/pause:3.10",
                    "imageID": "", "ready": true, "restartCount": 2, "started": true,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]
            }
        })
    }

    /// The cached pod is a fraction of k8s-openapi's `Pod` inline, and a decoded daemon pod holds
    /// its lists without the spare room serde reserves while reading them.
    #[test]
    fn cached_pod_sizes() {
        assert!(
            4 * std::mem::size_of::<CachedPod>() < std::mem::size_of::<Pod>(),
            "CachedPod {} bytes inline, Pod {}",
            std::mem::size_of::<CachedPod>(),
            std::mem::size_of::<Pod>()
        );
        // From text, as the watch reads it: a JSON value would tell serde each list's length.
        let pod: CachedPod = serde_json::from_str(&daemon_pod_json().to_string())
            .unwrap_or_else(|e| panic!("decode: {e}"));
        let tight = |what: &str, len: usize, capacity: usize| {
            assert_eq!(
                capacity, len,
                "{what}: {len} elements in room for {capacity}"
            );
        };
        let owners = pod.metadata.owner_references.as_ref();
        let owners = owners.unwrap_or_else(|| panic!("no owner references"));
        tight("ownerReferences", owners.len(), owners.capacity());
        let status = pod.status.as_ref().unwrap_or_else(|| panic!("no status"));
        let containers = status.container_statuses.as_ref();
        let containers = containers.unwrap_or_else(|| panic!("no container statuses"));
        tight("containerStatuses", containers.len(), containers.capacity());
        assert_eq!(containers[0].restart_count, 2);
        let conditions = status.conditions.as_ref();
        let conditions = conditions.unwrap_or_else(|| panic!("no conditions"));
        tight("conditions", conditions.len(), conditions.capacity());
        let spec = pod.spec.as_ref().unwrap_or_else(|| panic!("no spec"));
        let selector = spec.required_node_affinity();
        let selector = selector.unwrap_or_else(|| panic!("no required node affinity"));
        let terms = &selector.node_selector_terms;
        tight("nodeSelectorTerms", terms.len(), terms.capacity());
        let fields = terms[0].match_fields.as_ref();
        let fields = fields.unwrap_or_else(|| panic!("no matchFields"));
        tight("matchFields", fields.len(), fields.capacity());
        let values = fields[0].values.as_ref();
        let values = values.unwrap_or_else(|| panic!("no values"));
        tight("values", values.len(), values.capacity());
        assert_eq!(values, &["node-1"]);
    }

    /// A full pod converted is the pod decoded from the same JSON (as the watch and
    /// `everynode explain` read it).
    #[test]
    fn a_converted_pod_is_the_decoded_pod() {
        let full: Pod =
            serde_json::from_value(daemon_pod_json()).unwrap_or_else(|e| panic!("decode Pod: {e}"));
        let decoded: CachedPod = serde_json::from_value(daemon_pod_json())
            .unwrap_or_else(|e| panic!("decode CachedPod: {e}"));
        let converted = CachedPod::from(full);
        let json = |p: &CachedPod| serde_json::to_value(p).unwrap_or_default();
        assert_eq!(json(&converted), json(&decoded));
        let kept = decoded
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        let types: Vec<&str> = kept.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "PodScheduled"]);
    }
}
