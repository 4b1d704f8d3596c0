//! Placement: whether a node should run a DaemonSet's pod, and whether a pod already there may stay
//! (upstream `NodeShouldRunDaemonPod`, §3.1).

use crate::core::cached_node::CachedNode;
use crate::core::node_affinity::{Mismatch, Miss, NodeRules};
use crate::core::tolerations::{NO_EXECUTE, add_default_tolerations, find_untolerated};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Taint, Toleration};
use std::borrow::{Borrow, Cow};

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

/// The placement rules of one DaemonSet (§3.1), compiled once from its template: template
/// nodeName, nodeSelector and required node affinity parsed ([`NodeRules`]), tolerations with the
/// defaults added as upstream adds them to the hypothetical pod (§3.3). Upstream builds that pod
/// (a deep copy of the template spec) and parses its affinity again for every node in every pass;
/// the answers depend on the template alone, so compiling them once gives the same answers.
///
/// The shell keeps the rules of each cached DaemonSet next to it (`controller::daemonset_object`),
/// so neither syncs nor node events rebuild them.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementRules {
    /// `spec.template.spec.nodeName` when set and non-empty.
    node_name: Option<String>,
    /// nodeSelector and required node affinity.
    affinity: NodeRules,
    /// The template's tolerations with the default ones (§3.3).
    tolerations: Vec<Toleration>,
}

impl Default for PlacementRules {
    /// The rules of a DaemonSet without a template spec: every untainted node.
    fn default() -> Self {
        Self::compile(&DaemonSet::default())
    }
}

/// Why a node is excluded, borrowed (no allocation); [`Exclusion`] is its owned, explained form.
enum Why<'a> {
    NodeName(&'a str),
    Affinity(Miss<'a>),
    Taint(&'a Taint),
}

impl PlacementRules {
    /// Compiles the placement rules of `ds`.
    pub fn compile(ds: &DaemonSet) -> Self {
        let template_spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let node_name = template_spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let affinity = template_spec.map(NodeRules::compile).unwrap_or_default();
        let mut tolerations = template_spec
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let host_network = template_spec.and_then(|s| s.host_network).unwrap_or(false);
        add_default_tolerations(&mut tolerations, host_network);
        Self {
            node_name,
            affinity,
            tolerations,
        }
    }

    /// Placement on `node`: template nodeName, nodeSelector, required node affinity,
    /// NoSchedule/NoExecute taints against the tolerations (upstream `NodeShouldRunDaemonPod`).
    pub fn place(&self, node: &CachedNode) -> Placement {
        self.decide(node).0
    }

    /// [`PlacementRules::place`] and, when the node does not qualify for a new pod (`should_run`
    /// false), the rule that excluded it (the first that applies, in upstream's order).
    pub fn explain(&self, node: &CachedNode) -> (Placement, Option<Exclusion>) {
        let (fit, why) = self.decide(node);
        let exclusion = why.map(|why| match why {
            Why::NodeName(name) => Exclusion::NodeName {
                node_name: name.to_string(),
            },
            Why::Affinity(miss) => Exclusion::Affinity(self.affinity.explain(miss, node)),
            Why::Taint(taint) => Exclusion::Taint {
                key: taint.key.clone(),
                value: taint.value.clone().unwrap_or_default(),
                effect: taint.effect.clone(),
            },
        });
        (fit, exclusion)
    }

    fn decide<'a>(&'a self, node: &'a CachedNode) -> (Placement, Option<Why<'a>>) {
        // 1. Template nodeName pins the DaemonSet to one node.
        if let Some(pinned) = self.node_name.as_deref()
            && node.metadata.name.as_deref().unwrap_or_default() != pinned
        {
            return (Placement::NO, Some(Why::NodeName(pinned)));
        }
        // 2. nodeSelector and required node affinity.
        if let Some(miss) = self.affinity.miss(node) {
            return (Placement::NO, Some(Why::Affinity(miss)));
        }
        // 3./4. Taints.
        let taints = node.taints();
        let Some(untolerated) = find_untolerated(taints, &self.tolerations, |_| true) else {
            return (Placement::YES, None);
        };
        let evicting = find_untolerated(taints, &self.tolerations, |e| e == NO_EXECUTE);
        let fit = Placement {
            should_run: false,
            should_continue_running: evicting.is_none(),
        };
        (fit, Some(Why::Taint(evicting.unwrap_or(untolerated))))
    }
}

/// A DaemonSet with its placement rules at hand: the shell's cached DaemonSet keeps them compiled
/// (`controller::daemonset_object`); a bare [`DaemonSet`] compiles them when asked.
pub trait WithPlacementRules: Borrow<DaemonSet> {
    fn placement_rules(&self) -> Cow<'_, PlacementRules>;
}

impl WithPlacementRules for DaemonSet {
    fn placement_rules(&self) -> Cow<'_, PlacementRules> {
        Cow::Owned(PlacementRules::compile(self))
    }
}

/// Placement of `ds` on `node` (§3.1). Compiles the rules for this one node: callers placing many
/// nodes compile [`PlacementRules`] once, or compute [`Placements`].
pub fn placement(node: &CachedNode, ds: &DaemonSet) -> Placement {
    PlacementRules::compile(ds).place(node)
}

/// [`placement`] and, when the node does not qualify for a new pod (`should_run` false), the rule
/// that excluded it.
pub fn placement_explained(node: &CachedNode, ds: &DaemonSet) -> (Placement, Option<Exclusion>) {
    PlacementRules::compile(ds).explain(node)
}

/// One named node of a [`Placements`] with its placement.
#[derive(Debug, Clone)]
pub struct Placed<'n> {
    pub node: &'n CachedNode,
    pub name: &'n str,
    pub placement: Placement,
    /// The rule that excludes the node from a new pod (`None` when `should_run`).
    pub exclusion: Option<Exclusion>,
}

/// The placement of every named node of one node list, computed once per sync and shared by
/// manage, the status counters, the rolling update, the rollout policy and the node reasons. In
/// node-list order; nodes without a name are left out (every consumer skips them).
#[derive(Debug, Clone, Default)]
pub struct Placements<'n> {
    placed: Vec<Placed<'n>>,
}

impl<'n> Placements<'n> {
    /// Places every named node of `nodes` with `rules`.
    pub fn compute<N: Borrow<CachedNode>>(rules: &PlacementRules, nodes: &'n [N]) -> Self {
        let placed = nodes
            .iter()
            .filter_map(|node| {
                let node = node.borrow();
                let name = node.metadata.name.as_deref()?;
                let (placement, exclusion) = rules.explain(node);
                Some(Placed {
                    node,
                    name,
                    placement,
                    exclusion,
                })
            })
            .collect();
        Self { placed }
    }

    /// [`Placements::compute`] with the rules of `ds` compiled here.
    pub fn of<N: Borrow<CachedNode>>(ds: &DaemonSet, nodes: &'n [N]) -> Self {
        Self::compute(&PlacementRules::compile(ds), nodes)
    }

    /// The named nodes in node-list order.
    pub fn iter(&self) -> std::slice::Iter<'_, Placed<'n>> {
        self.placed.iter()
    }

    /// The number of named nodes.
    pub fn len(&self) -> usize {
        self.placed.len()
    }

    /// No named node.
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }
}

impl<'a, 'n> IntoIterator for &'a Placements<'n> {
    type Item = &'a Placed<'n>;
    type IntoIter = std::slice::Iter<'a, Placed<'n>>;
    fn into_iter(self) -> Self::IntoIter {
        self.placed.iter()
    }
}

#[cfg(test)]
mod reference;

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

    fn table_node() -> CachedNode {
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
        let n = unschedulable(node("cordoned"));
        assert_eq!(n.taints()[0].key, TAINT_NODE_UNSCHEDULABLE);
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

    // ---- the compiled path equals the per-node path it replaced --------------------------------

    mod compiled_equals_per_node {
        use super::super::reference;
        use super::*;
        use k8s_openapi::api::core::v1::{
            Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
            PodSpec, Taint, Toleration,
        };
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        const KEYS: &[&str] = &[
            "zone",
            "disk",
            "cores",
            "bad key!",
            TAINT_NODE_NOT_READY,
            TAINT_NODE_UNSCHEDULABLE,
            TAINT_NODE_NETWORK_UNAVAILABLE,
            TAINT_NODE_DISK_PRESSURE,
            "",
        ];
        const VALUES: &[&str] = &["a", "b", "4", "-1", "", "x y"];
        const NAMES: &[&str] = &["n1", "n2", ""];

        fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
            proptest::sample::select(pool).prop_map(str::to_string)
        }

        fn requirement() -> impl Strategy<Value = NodeSelectorRequirement> {
            let operator = proptest::sample::select(
                &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Bogus"][..],
            );
            let key = prop_oneof![pick(KEYS), Just(OBJECT_NAME.to_string())];
            let values = proptest::option::of(proptest::collection::vec(
                prop_oneof![pick(VALUES), pick(NAMES)],
                0..3,
            ));
            (key, operator, values).prop_map(|(key, operator, values)| NodeSelectorRequirement {
                key,
                operator: operator.to_string(),
                values,
            })
        }
        const OBJECT_NAME: &str = "metadata.name";

        fn term() -> impl Strategy<Value = NodeSelectorTerm> {
            (
                proptest::option::of(proptest::collection::vec(requirement(), 0..3)),
                proptest::option::of(proptest::collection::vec(requirement(), 0..2)),
            )
                .prop_map(|(match_expressions, match_fields)| NodeSelectorTerm {
                    match_expressions,
                    match_fields,
                })
        }

        fn toleration() -> impl Strategy<Value = Toleration> {
            let operator =
                proptest::option::of(proptest::sample::select(&["Exists", "Equal", "", "Gt"][..]));
            let effect = proptest::option::of(proptest::sample::select(
                &[NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE, ""][..],
            ));
            (
                proptest::option::of(pick(KEYS)),
                operator,
                proptest::option::of(pick(VALUES)),
                effect,
                proptest::option::of(0i64..600),
            )
                .prop_map(|(key, operator, value, effect, seconds)| Toleration {
                    key,
                    operator: operator.map(str::to_string),
                    value,
                    effect: effect.map(str::to_string),
                    toleration_seconds: seconds,
                })
        }

        fn labels() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
            proptest::option::of(proptest::collection::btree_map(
                pick(KEYS),
                pick(VALUES),
                0..4,
            ))
        }

        fn arb_daemonset() -> impl Strategy<Value = DaemonSet> {
            let spec = (
                proptest::option::of(pick(NAMES)),
                labels(),
                proptest::option::of(proptest::option::of(proptest::collection::vec(
                    term(),
                    0..3,
                ))),
                proptest::option::of(proptest::collection::vec(toleration(), 0..4)),
                proptest::option::of(any::<bool>()),
            )
                .prop_map(
                    |(node_name, node_selector, required, tolerations, host)| PodSpec {
                        node_name,
                        node_selector,
                        affinity: required.map(|terms| Affinity {
                            node_affinity: Some(NodeAffinity {
                                required_during_scheduling_ignored_during_execution: terms.map(
                                    |node_selector_terms| NodeSelector {
                                        node_selector_terms,
                                    },
                                ),
                                preferred_during_scheduling_ignored_during_execution: None,
                            }),
                            ..Default::default()
                        }),
                        tolerations,
                        host_network: host,
                        ..Default::default()
                    },
                );
            (0u8..10, proptest::option::of(spec)).prop_map(|(shape, spec)| {
                let mut ds = daemonset("ds");
                match shape {
                    0 => ds.spec = None,
                    _ => ds_spec_mut(&mut ds).template.spec = spec,
                }
                ds
            })
        }

        fn arb_node() -> impl Strategy<Value = CachedNode> {
            let taint = (
                pick(KEYS),
                proptest::option::of(pick(VALUES)),
                proptest::sample::select(&[NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE, "Odd"][..]),
            )
                .prop_map(|(key, value, effect)| Taint {
                    key,
                    value,
                    effect: effect.to_string(),
                    time_added: None,
                });
            (
                proptest::option::of(pick(NAMES)),
                labels(),
                proptest::option::of(proptest::collection::vec(taint, 0..4)),
            )
                .prop_map(|(name, labels, taints)| {
                    let mut n = node("n");
                    n.metadata.name = name;
                    n.metadata.labels = labels;
                    n.spec.get_or_insert_with(Default::default).taints = taints;
                    n
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// Compiled once per DaemonSet, placement and its exclusion equal the per-node path
            /// (template spec cloned, defaults added, affinity parsed for each node).
            #[test]
            fn compiled_placement_equals_the_per_node_path(
                ds in arb_daemonset(),
                nodes in proptest::collection::vec(arb_node(), 1..6),
            ) {
                let rules = PlacementRules::compile(&ds);
                let placements = Placements::compute(&rules, &nodes);
                let named: Vec<&CachedNode> =
                    nodes.iter().filter(|n| n.metadata.name.is_some()).collect();
                prop_assert_eq!(placements.len(), named.len());
                for (placed, node) in placements.iter().zip(named) {
                    let old = reference::placement_explained(node, &ds);
                    prop_assert_eq!(&rules.explain(node), &old);
                    prop_assert_eq!(rules.place(node), old.0);
                    prop_assert_eq!((placed.placement, placed.exclusion.clone()), old);
                }
            }
        }
    }
}
