//! Placement: whether a node should run a DaemonSet's pod, and whether a pod already there may stay
//! (upstream `NodeShouldRunDaemonPod`, §3.1).

use crate::core::node_affinity::{Mismatch, node_mismatch};
use crate::core::tolerations::{NO_EXECUTE, add_default_tolerations, find_untolerated};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, PodSpec};

/// The two placement answers for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// A daemon pod should be created on the node if none is there.
    pub should_run: bool,
    /// A daemon pod already on the node may keep running.
    pub should_continue_running: bool,
}

impl Placement {
    const NO: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };
    const YES: Placement = Placement {
        should_run: true,
        should_continue_running: true,
    };
}

/// The rule that keeps a DaemonSet's pod off a node, with its data (the first that applies, in
/// upstream's order), for `everynode explain`, events and metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "camelCase")]
pub enum Exclusion {
    /// `spec.template.spec.nodeName` names another node.
    #[serde(rename_all = "camelCase")]
    NodeName { node_name: String },
    /// A NoSchedule or NoExecute taint the template does not tolerate (defaults included).
    #[serde(rename_all = "camelCase")]
    Taint {
        key: String,
        value: String,
        effect: String,
    },
    /// The nodeSelector or the required node affinity does not match (serialized as the
    /// mismatch itself, whose `rule` is `nodeSelector` or `nodeAffinity`).
    #[serde(untagged)]
    Affinity(Mismatch),
}

impl Exclusion {
    /// The rule's short name: `nodeName`, `nodeSelector`, `nodeAffinity` or `taint`.
    pub fn rule(&self) -> &'static str {
        match self {
            Exclusion::NodeName { .. } => "nodeName",
            Exclusion::Affinity(Mismatch::NodeSelector { .. }) => "nodeSelector",
            Exclusion::Affinity(Mismatch::NodeAffinity { .. }) => "nodeAffinity",
            Exclusion::Taint { .. } => "taint",
        }
    }
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exclusion::NodeName { node_name } => {
                write!(f, "spec.template.spec.nodeName is {node_name}")
            }
            Exclusion::Affinity(m) => m.fmt(f),
            Exclusion::Taint { key, value, effect } if value.is_empty() => {
                write!(f, "untolerated taint {key}:{effect}")
            }
            Exclusion::Taint { key, value, effect } => {
                write!(f, "untolerated taint {key}={value}:{effect}")
            }
        }
    }
}

/// Placement of `ds` on `node` (§3.1): template nodeName, nodeSelector, required node affinity,
/// NoSchedule/NoExecute taints against the template's tolerations plus the defaults.
pub fn placement(node: &Node, ds: &DaemonSet) -> Placement {
    placement_explained(node, ds).0
}

/// [`placement`] and, when the node does not qualify for a new pod (`should_run` false), the rule
/// that excluded it. The decision is made here; `placement` only drops the reason.
pub fn placement_explained(node: &Node, ds: &DaemonSet) -> (Placement, Option<Exclusion>) {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let template_spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());

    // 1. Template nodeName pins the DaemonSet to one node.
    let template_node_name = template_spec
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    if !template_node_name.is_empty() && template_node_name != node_name {
        let why = Exclusion::NodeName {
            node_name: template_node_name.to_string(),
        };
        return (Placement::NO, Some(why));
    }

    // The hypothetical pod: the template spec on this node, with the default tolerations.
    let mut spec: PodSpec = template_spec.cloned().unwrap_or_default();
    spec.node_name = Some(node_name.to_string());
    let host_network = spec.host_network.unwrap_or(false);
    add_default_tolerations(spec.tolerations.get_or_insert_with(Vec::new), host_network);

    // 2. nodeSelector and required node affinity.
    if let Some(mismatch) = node_mismatch(node, &spec) {
        return (Placement::NO, Some(Exclusion::Affinity(mismatch)));
    }

    // 3./4. Taints.
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let Some(untolerated) = find_untolerated(taints, tolerations, |_| true) else {
        return (Placement::YES, None);
    };
    let evicting = find_untolerated(taints, tolerations, |e| e == NO_EXECUTE);
    let why = evicting.unwrap_or(untolerated);
    let fit = Placement {
        should_run: false,
        should_continue_running: evicting.is_none(),
    };
    let why = Exclusion::Taint {
        key: why.key.clone(),
        value: why.value.clone().unwrap_or_default(),
        effect: why.effect.clone(),
    };
    (fit, Some(why))
}

#[cfg(test)]
mod tests {
    #[test]
    fn exclusions_serialize_with_one_rule_key() {
        let json = |e: &Exclusion| serde_json::to_string(e).expect("serializes");
        let selector = Exclusion::Affinity(Mismatch::NodeSelector {
            key: "disktype".into(),
            value: "ssd".into(),
            node_value: None,
        });
        assert_eq!(
            json(&selector),
            r#"{"rule":"nodeSelector","key":"disktype","value":"ssd","nodeValue":null}"#
        );
        let name = Exclusion::NodeName {
            node_name: "other".into(),
        };
        assert_eq!(json(&name), r#"{"rule":"nodeName","nodeName":"other"}"#);
    }

    use super::*;
    use crate::core::fixtures::*;
    use crate::core::tolerations::{
        NO_SCHEDULE, PREFER_NO_SCHEDULE, TAINT_NODE_DISK_PRESSURE, TAINT_NODE_MEMORY_PRESSURE,
        TAINT_NODE_NETWORK_UNAVAILABLE, TAINT_NODE_NOT_READY, TAINT_NODE_PID_PRESSURE,
        TAINT_NODE_UNREACHABLE, TAINT_NODE_UNSCHEDULABLE,
    };

    const TT: Placement = Placement::YES;
    const FF: Placement = Placement::NO;
    const FT: Placement = Placement {
        should_run: false,
        should_continue_running: true,
    };

    // TestNodeShouldRunDaemonPod: node "test-node" labelled like the DS, 100M memory, 1 CPU.
    const SIMPLE_DS_LABEL: &[(&str, &str)] = &[("name", "simple-daemon"), ("type", "production")];
    const SIMPLE_DS_LABEL2: &[(&str, &str)] = &[("name", "simple-daemon"), ("type", "test")];

    fn table_node() -> Node {
        with_allocatable(node_with_labels("test-node", SIMPLE_DS_LABEL), "100M", "1")
    }

    fn table_ds() -> DaemonSet {
        let mut ds = daemonset("ds");
        ds_spec_mut(&mut ds).selector = selector_labels(SIMPLE_DS_LABEL);
        ds_spec_mut(&mut ds).template.metadata =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                labels: Some(labels(SIMPLE_DS_LABEL)),
                ..Default::default()
            });
        ds
    }

    #[test]
    fn test_node_should_run_daemon_pod_resources_fit() {
        let ds = with_container_requests(table_ds(), "50M", "0.5");
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_insufficient_resources() {
        let ds = with_container_requests(table_ds(), "200M", "0.5");
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_node_name_other_node() {
        let ds = with_template_node_name(
            with_container_requests(table_ds(), "50M", "0.5"),
            "other-node",
        );
        assert_eq!(placement(&table_node(), &ds), FF);
    }

    #[test]
    fn test_node_should_run_daemon_pod_host_port_conflict() {
        // The conflicting pod on the node is irrelevant: placement does not look at pods.
        let ds = with_host_port(table_ds(), 666);
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_port_and_resource_conflict() {
        let ds = with_host_port(with_container_requests(table_ds(), "100M", "0.5"), 666);
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_other_pod_fits() {
        let ds = with_container_requests(table_ds(), "50M", "0.5");
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_nodeselector_mismatch() {
        let ds = with_node_selector(table_ds(), SIMPLE_DS_LABEL2);
        assert_eq!(placement(&table_node(), &ds), FF);
    }

    #[test]
    fn test_node_should_run_daemon_pod_nodeselector_match() {
        let ds = with_node_selector(table_ds(), SIMPLE_DS_LABEL);
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_required_affinity_mismatch() {
        let ds = with_affinity(table_ds(), required_affinity("type", "In", &["bad-value"]));
        assert_eq!(placement(&table_node(), &ds), FF);
    }

    #[test]
    fn test_node_should_run_daemon_pod_required_affinity_match() {
        let ds = with_affinity(table_ds(), required_affinity("type", "In", &["production"]));
        assert_eq!(placement(&table_node(), &ds), TT);
    }

    #[test]
    fn test_node_should_run_daemon_pod_unschedulable_node() {
        let ds = with_container_requests(table_ds(), "50M", "0.5");
        assert_eq!(placement(&unschedulable(table_node()), &ds), TT);
    }

    // ---- §10.1 items 35–43 (and others decided by placement) ---------------------------------

    #[test]
    fn test_no_schedule_tainted_doesnt_evicit_running_intolerant_pod() {
        let n = with_taint(node("tainted"), "node.kubernetes.io/fake", "", NO_SCHEDULE);
        assert_eq!(placement(&n, &daemonset("intolerant")), FT);
    }

    #[test]
    fn test_no_execute_tainted_does_evicit_running_intolerant_pod() {
        let n = with_taint(node("tainted"), "node.kubernetes.io/fake", "", NO_EXECUTE);
        assert_eq!(placement(&n, &daemonset("intolerant")), FF);
    }

    #[test]
    fn test_tainted_node_daemon_does_not_launch_intolerant_pod() {
        let n = with_taint(node("tainted"), "dedicated", "user1", NO_SCHEDULE);
        assert!(!placement(&n, &daemonset("intolerant")).should_run);
    }

    #[test]
    fn test_tainted_node_daemon_launches_tolerate_pod() {
        let n = with_taint(node("tainted"), "dedicated", "user1", NO_SCHEDULE);
        let ds = with_toleration(
            daemonset("tolerate"),
            toleration("dedicated", "Equal", "user1", NO_SCHEDULE),
        );
        assert_eq!(placement(&n, &ds), TT);
    }

    #[test]
    fn test_not_ready_node_daemon_launches_pod() {
        let n = with_node_condition(
            with_taint(node("not-ready"), TAINT_NODE_NOT_READY, "", NO_EXECUTE),
            "Ready",
            "False",
        );
        assert_eq!(placement(&n, &daemonset("simple")), TT);
    }

    #[test]
    fn test_unreachable_node_daemon_launches_pod() {
        let n = with_node_condition(
            with_taint(node("unreachable"), TAINT_NODE_UNREACHABLE, "", NO_EXECUTE),
            "Ready",
            "Unknown",
        );
        assert_eq!(placement(&n, &daemonset("simple")), TT);
    }

    #[test]
    fn test_node_daemon_launches_tolerate_pod() {
        let ds = with_toleration(
            daemonset("tolerate"),
            toleration("dedicated", "Equal", "user1", NO_SCHEDULE),
        );
        assert_eq!(placement(&node("untainted"), &ds), TT);
    }

    #[test]
    fn test_daemon_set_respects_termination() {
        // The node itself is fine; not creating a second pod is manage's decision (§3.4).
        assert_eq!(placement(&node("node-0"), &daemonset("foo")), TT);
    }

    #[test]
    fn test_taint_pressure_node_daemon_launches_pod() {
        let mut n = node("resources-pressure");
        for key in [
            TAINT_NODE_DISK_PRESSURE,
            TAINT_NODE_MEMORY_PRESSURE,
            TAINT_NODE_PID_PRESSURE,
        ] {
            n = with_taint(n, key, "", NO_SCHEDULE);
        }
        for cond in ["DiskPressure", "MemoryPressure", "PIDPressure"] {
            n = with_node_condition(n, cond, "True");
        }
        assert_eq!(placement(&n, &daemonset("simple")), TT);
    }

    #[test]
    fn test_not_ready_node_daemon_does_launch_pod() {
        let n = with_node_condition(node("not-ready"), "Ready", "False");
        assert_eq!(placement(&n, &daemonset("simple")), TT);
    }

    #[test]
    fn test_network_unavailable_node_daemon_launches_pod() {
        let n = with_node_condition(node("network-unavailable"), "NetworkUnavailable", "True");
        assert_eq!(placement(&n, &daemonset("simple")), TT);
    }

    #[test]
    fn test_insufficient_capacity_node_daemon_does_not_unschedule_running_pod() {
        let n = with_allocatable(node("too-much-mem"), "75M", "75m");
        let ds = with_template_node_name(
            with_container_requests(daemonset("foo"), "75M", "75m"),
            "too-much-mem",
        );
        assert_eq!(placement(&n, &ds), TT);
    }

    #[test]
    fn test_name_daemon_set_launches_pods() {
        let ds = with_template_node_name(daemonset("foo"), "node-0");
        assert_eq!(placement(&node("node-0"), &ds), TT);
        assert_eq!(placement(&node("node-1"), &ds), FF);
    }

    #[test]
    fn test_bad_name_daemon_set_does_nothing() {
        let ds = with_template_node_name(daemonset("foo"), "node-10");
        for i in 0..5 {
            assert_eq!(placement(&node(&format!("node-{i}")), &ds), FF);
        }
    }

    #[test]
    fn test_name_and_selector_daemon_set_launches_pods() {
        let ds = with_node_selector(
            with_template_node_name(daemonset("foo"), "node-6"),
            &[("color", "blue")],
        );
        assert_eq!(
            placement(&node_with_labels("node-6", &[("color", "blue")]), &ds),
            TT
        );
        assert_eq!(
            placement(&node_with_labels("node-5", &[("color", "blue")]), &ds),
            FF
        );
    }

    #[test]
    fn test_inconsistent_name_selector_daemon_set_does_nothing() {
        let ds = with_node_selector(
            with_template_node_name(daemonset("foo"), "node-0"),
            &[("color", "blue")],
        );
        assert_eq!(placement(&node("node-0"), &ds), FF);
    }

    #[test]
    fn test_node_affinity_daemon_launches_pods() {
        let ds = with_affinity(
            daemonset("foo"),
            required_affinity("color", "In", &["blue"]),
        );
        assert_eq!(
            placement(&node_with_labels("n", &[("color", "blue")]), &ds),
            TT
        );
        assert_eq!(placement(&node("n"), &ds), FF);
    }

    #[test]
    fn prefer_no_schedule_taints_are_ignored() {
        let n = with_taint(node("soft"), "dedicated", "x", PREFER_NO_SCHEDULE);
        assert_eq!(placement(&n, &daemonset("foo")), TT);
    }

    #[test]
    fn no_schedule_and_no_execute_untolerated_gives_false_false() {
        let n = with_taint(
            with_taint(node("n"), "a", "", NO_SCHEDULE),
            "b",
            "",
            NO_EXECUTE,
        );
        assert_eq!(placement(&n, &daemonset("foo")), FF);
        // Tolerating the NoExecute one leaves only the NoSchedule one.
        let ds = with_toleration(daemonset("foo"), toleration("b", "Exists", "", NO_EXECUTE));
        assert_eq!(placement(&n, &ds), FT);
    }

    #[test]
    fn unschedulable_taint_is_tolerated_by_default() {
        let n = unschedulable(with_taint(
            node("cordoned"),
            TAINT_NODE_UNSCHEDULABLE,
            "",
            NO_SCHEDULE,
        ));
        assert_eq!(placement(&n, &daemonset("foo")), TT);
    }

    #[test]
    fn network_unavailable_taint_tolerated_only_with_host_network() {
        let n = with_taint(node("net"), TAINT_NODE_NETWORK_UNAVAILABLE, "", NO_SCHEDULE);
        assert_eq!(placement(&n, &daemonset("foo")), FT);
        assert_eq!(
            placement(&n, &with_host_network(daemonset("foo"), true)),
            TT
        );
    }

    #[test]
    fn user_toleration_with_seconds_on_not_ready_is_replaced_by_default() {
        // The user's tolerationSeconds would still tolerate; the default keeps it tolerated.
        let mut t = toleration(TAINT_NODE_NOT_READY, "Exists", "", NO_EXECUTE);
        t.toleration_seconds = Some(10);
        let n = with_taint(node("n"), TAINT_NODE_NOT_READY, "", NO_EXECUTE);
        assert_eq!(placement(&n, &with_toleration(daemonset("foo"), t)), TT);
    }

    #[test]
    fn missing_spec_and_template_spec_run_everywhere_untainted() {
        let mut ds = daemonset("foo");
        ds_spec_mut(&mut ds).template.spec = None;
        assert_eq!(placement(&node("n"), &ds), TT);
        ds.spec = None;
        assert_eq!(placement(&node("n"), &ds), TT);
        let tainted = with_taint(node("n"), "a", "", NO_EXECUTE);
        assert_eq!(placement(&tainted, &ds), FF);
    }

    #[test]
    fn rolling_update_with_tolerations_zones() {
        // Integration TestDaemonSetRollingUpdateWithTolerations: zone-y / zone-z / zone-common.
        let y = with_taint(node("y"), "zone-y", "", NO_SCHEDULE);
        let z = with_taint(node("z"), "zone-z", "", NO_SCHEDULE);
        let common = with_taint(node("c"), "zone-common", "", NO_SCHEDULE);
        let ds = with_toleration(
            with_toleration(
                daemonset("foo"),
                toleration("zone-y", "Exists", "", NO_SCHEDULE),
            ),
            toleration("zone-common", "Exists", "", NO_SCHEDULE),
        );
        assert_eq!(placement(&y, &ds), TT);
        assert_eq!(placement(&z, &ds), FT);
        assert_eq!(placement(&common, &ds), TT);
    }
}
