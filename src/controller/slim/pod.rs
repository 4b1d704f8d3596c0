//! The Pod as the controller reads it: metadata; `spec.nodeName` and the required node affinity (the
//! node a pending daemon pod targets); and the status the syncs, the status counters, the node
//! reasons and DaemonSetRollout failure detection read: phase, reason, message, nominated node,
//! the `Ready` and `PodScheduled` conditions, and each container's name, restart count and waiting
//! state. Containers, volumes and the rest of the spec, IPs, the other conditions (`Initialized`,
//! `ContainersReady`, `PodReadyToStartContainers`...) and the rest of the container statuses are
//! not read.

use k8s_openapi::api::core::v1::{
    Affinity, ContainerState, ContainerStateWaiting, ContainerStatus, NodeAffinity, NodeSelector,
    Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlimPod {
    #[serde(deserialize_with = "super::meta::deserialize")]
    pub metadata: ObjectMeta,
    pub spec: Option<SlimPodSpec>,
    pub status: Option<SlimPodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlimPodSpec {
    pub node_name: Option<String>,
    pub affinity: Option<SlimAffinity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlimAffinity {
    pub node_affinity: Option<SlimNodeAffinity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlimNodeAffinity {
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlimPodStatus {
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub nominated_node_name: Option<String>,
    #[serde(deserialize_with = "read_conditions")]
    pub conditions: Option<Vec<PodCondition>>,
    pub container_statuses: Option<Vec<SlimContainerStatus>>,
    pub init_container_statuses: Option<Vec<SlimContainerStatus>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlimContainerStatus {
    pub name: String,
    pub restart_count: i32,
    pub state: Option<SlimContainerState>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlimContainerState {
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

super::slim_resource!(SlimPod, Pod);

impl From<SlimContainerStatus> for ContainerStatus {
    fn from(c: SlimContainerStatus) -> Self {
        ContainerStatus {
            name: c.name,
            restart_count: c.restart_count,
            state: c.state.map(|s| ContainerState {
                waiting: s.waiting,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn containers(v: Option<Vec<SlimContainerStatus>>) -> Option<Vec<ContainerStatus>> {
    v.map(|v| v.into_iter().map(ContainerStatus::from).collect())
}

impl From<SlimPod> for Pod {
    fn from(p: SlimPod) -> Pod {
        Pod {
            metadata: p.metadata,
            spec: p.spec.map(|s| PodSpec {
                node_name: s.node_name,
                affinity: s.affinity.map(|a| Affinity {
                    node_affinity: a.node_affinity.map(|n| NodeAffinity {
                        required_during_scheduling_ignored_during_execution: n
                            .required_during_scheduling_ignored_during_execution,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: p.status.map(|s| PodStatus {
                phase: s.phase,
                reason: s.reason,
                message: s.message,
                nominated_node_name: s.nominated_node_name,
                conditions: s.conditions,
                container_statuses: containers(s.container_statuses),
                init_container_statuses: containers(s.init_container_statuses),
                ..Default::default()
            }),
        }
    }
}
