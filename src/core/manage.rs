//! Manage: for one sync, which nodes need a daemon pod and which daemon pods must be deleted
//! (upstream `manage`, `podsShouldBeOnNode` and `getUnscheduledPodsWithoutNode`, §3.4, §3.5).
//!
//! The plan lists every create and delete; the shell truncates both lists to the burst limit and
//! issues them with slow start (`slow_start`), after setting the expectations.

use crate::core::backoff::{FailedPodBackoff, failed_pods_backoff_key};
use crate::core::budget::allows_surge;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::events::{FAILED_DAEMON_POD, PlannedEvent, SELECTING_ALL, SUCCEEDED_DAEMON_POD};
use crate::core::placement::{Placement, Placements, placement};
use crate::core::pod_state::{
    hash_label, is_available, is_ready, is_terminating, oldest_scheduled_first, phase,
};
use crate::core::pods_by_node::NodePods;
use crate::core::selector;
use crate::core::status::min_ready_seconds;
use crate::core::{Timestamp, earliest};
use k8s_openapi::api::apps::v1::DaemonSet;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// What one node needs (upstream `podsShouldBeOnNode`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDecision {
    /// A daemon pod must be created on the node.
    pub needs_pod: bool,
    /// Names of this node's pods to delete, in decision order.
    pub pods_to_delete: Vec<String>,
    /// FailedDaemonPod / SucceededDaemonPod events to emit on the DaemonSet.
    pub events: Vec<PlannedEvent>,
    /// A failed pod was left alone because of its backoff: requeue the DaemonSet after this delay.
    pub requeue_after: Option<Duration>,
    /// The reason next to the decision: until when a failed pod is left alone (its backoff).
    pub backoff_until: Option<Timestamp>,
}

/// Everything manage decides in one sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagePlan {
    /// Nodes to create a daemon pod on, in node-list order (not yet truncated to the burst limit).
    pub nodes_needing_pods: Vec<String>,
    /// Pods to delete, by name (not yet truncated to the burst limit).
    pub pods_to_delete: Vec<String>,
    /// FailedDaemonPod / SucceededDaemonPod events, in node-list order.
    pub events: Vec<PlannedEvent>,
    /// Requeue the DaemonSet after this delay (shortest failed-pod backoff that held a delete back).
    pub requeue_after: Option<Duration>,
    /// The reasons next to the decisions: nodes whose failed pod is left alone, and until when
    /// (its backoff), by node name.
    pub backoff_until: BTreeMap<String, Timestamp>,
}

/// The Warning `SelectingAll` event when `ds` has the empty selector `{}` (§2 step 4). When this
/// returns an event, the sync emits it and stops: no manage, no rolling update, no status.
pub fn selecting_all_event(ds: &DaemonSet) -> Option<PlannedEvent> {
    let spec = ds.spec.as_ref()?;
    selector::is_empty(&spec.selector).then(|| {
        PlannedEvent::warning(
            SELECTING_ALL,
            "This daemon set is selecting all pods. A non-empty selector is required.",
        )
    })
}

/// What `node` needs (§3.4), given the node's group of claimed pods (`None`: the node has no group)
/// and the current revision `hash`. Advances the failed-pod backoff of each failed pod it deletes.
/// Pods without a name are ignored (they cannot be deleted by name).
pub fn pods_should_be_on_node(
    node: &CachedNode,
    pods: Option<&[Arc<CachedPod>]>,
    ds: &DaemonSet,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
) -> NodeDecision {
    let fit = placement(node, ds);
    decide(node, fit, pods, ds, hash, now, backoff, allows_surge(ds))
}

#[allow(clippy::too_many_arguments)]
fn decide(
    node: &CachedNode,
    fit: Placement,
    pods: Option<&[Arc<CachedPod>]>,
    ds: &DaemonSet,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
    surge: bool,
) -> NodeDecision {
    let mut decision = NodeDecision::default();
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let named = || {
        pods.unwrap_or_default()
            .iter()
            .filter(|p| p.metadata.name.is_some())
    };

    if fit.should_run && pods.is_none() {
        decision.needs_pod = true;
    } else if fit.should_continue_running {
        let mut running: Vec<&Arc<CachedPod>> = Vec::new();
        for pod in named() {
            if is_terminating(pod) {
                continue;
            }
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            match phase(pod) {
                "Failed" => {
                    let key = failed_pods_backoff_key(ds, node_name);
                    if backoff.is_in_backoff_since_update(&key, now) {
                        decision.requeue_after =
                            earliest([decision.requeue_after, Some(backoff.get(&key))]);
                        decision.backoff_until = backoff.until(&key, now);
                        continue;
                    }
                    backoff.next(&key, now);
                    decision.events.push(PlannedEvent::warning(
                        FAILED_DAEMON_POD,
                        format!("Found failed daemon pod {namespace}/{name} on node {node_name}, will try to kill it"),
                    ));
                    decision.pods_to_delete.push(name.to_string());
                }
                "Succeeded" => {
                    decision.events.push(PlannedEvent::normal(
                        SUCCEEDED_DAEMON_POD,
                        format!("Found succeeded daemon pod {namespace}/{name} on node {node_name}, will try to delete it"),
                    ));
                    decision.pods_to_delete.push(name.to_string());
                }
                _ => running.push(pod),
            }
        }
        running.sort_by(|a, b| oldest_scheduled_first(a, b));
        let name_of = |pod: &CachedPod| pod.metadata.name.clone().unwrap_or_default();

        if !surge {
            // Keep the oldest scheduled pod, delete the rest. Never create here: a node whose only
            // pod is terminating or failed gets its replacement in a later sync.
            decision
                .pods_to_delete
                .extend(running.iter().skip(1).map(|p| name_of(p)));
        } else if running.is_empty() {
            // Surging: a node needs at least one non-deleted pod, even while an old one terminates.
            decision.needs_pod = fit.should_run;
        } else if running.len() > 1 {
            // Keep the oldest pod of the current revision and the oldest of any other revision.
            let (mut oldest_new, mut oldest_old): (Option<&CachedPod>, Option<&CachedPod>) =
                (None, None);
            for pod in &running {
                let slot = if hash_label(pod).unwrap_or_default() == hash {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    decision.pods_to_delete.push(name_of(pod));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                // The old pod goes once it is not Ready, or once the new one is Available.
                if !is_ready(old) || is_available(new, min_ready_seconds(ds), now) {
                    decision.pods_to_delete.push(name_of(old));
                }
            }
        }
    } else if pods.is_some() {
        // The node no longer qualifies: delete every pod not already being deleted.
        decision.pods_to_delete.extend(
            named()
                .filter(|p| !is_terminating(p))
                .filter_map(|p| p.metadata.name.clone()),
        );
    }
    decision
}

/// Pods grouped under a node that is not in `nodes` and that have no `spec.nodeName`: never
/// scheduled, so the pod garbage collector will not remove them (§3.5). In node-name order.
pub fn unscheduled_pods_without_node<N: Borrow<CachedNode>>(
    nodes: &[N],
    node_pods: &NodePods,
) -> Vec<String> {
    let existing: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.borrow().metadata.name.as_deref())
        .collect();
    unscheduled_without(&existing, node_pods)
}

fn unscheduled_without(existing: &HashSet<&str>, node_pods: &NodePods) -> Vec<String> {
    let mut gone: Vec<(&String, &Vec<Arc<CachedPod>>)> = node_pods
        .iter()
        .filter(|(node, _)| !existing.contains(node.as_str()))
        .collect();
    gone.sort_unstable_by_key(|(node, _)| *node);
    gone.into_iter()
        .flat_map(|(_, pods)| pods.iter())
        .filter(|pod| {
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or_default()
                .is_empty()
        })
        .filter_map(|pod| pod.metadata.name.clone())
        .collect()
}

/// The manage plan of one sync (upstream `manage` before `syncNodes`): every node's decision in
/// node-list order, then the unscheduled pods of nodes that no longer exist. `node_pods` holds the
/// claimed pods by node with terminal+terminating pods excluded. Nodes without a name are skipped.
/// Places every node; a sync that has the placements already calls [`plan_manage_placed`].
pub fn plan_manage<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
) -> ManagePlan {
    let placements = Placements::of(ds, nodes);
    plan_manage_placed(ds, &placements, node_pods, hash, now, backoff)
}

/// [`plan_manage`] over the sync's placements of its nodes.
pub fn plan_manage_placed(
    ds: &DaemonSet,
    placements: &Placements<'_>,
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    backoff: &mut FailedPodBackoff,
) -> ManagePlan {
    let surge = allows_surge(ds);
    let mut plan = ManagePlan::default();
    for placed in placements {
        let name = placed.name;
        let pods = node_pods.get(name).map(Vec::as_slice);
        let decision = decide(
            placed.node,
            placed.placement,
            pods,
            ds,
            hash,
            now,
            backoff,
            surge,
        );
        if decision.needs_pod {
            plan.nodes_needing_pods.push(name.to_string());
        }
        plan.pods_to_delete.extend(decision.pods_to_delete);
        plan.events.extend(decision.events);
        plan.requeue_after = earliest([plan.requeue_after, decision.requeue_after]);
        if let Some(until) = decision.backoff_until {
            plan.backoff_until.insert(name.to_string(), until);
        }
    }
    let existing: HashSet<&str> = placements.iter().map(|p| p.name).collect();
    plan.pods_to_delete
        .extend(unscheduled_without(&existing, node_pods));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::events::EventType;
    use crate::core::expectations::Expectations;
    use crate::core::fixtures::*;
    use crate::core::labels::{BURST_REPLICAS, CONTROLLER_REVISION_HASH, SLOW_START_INITIAL_BATCH};
    use crate::core::ownership::{Claim, claim};
    use crate::core::pod_template::new_pod;
    use crate::core::pods_by_node::group_by_node;
    use crate::core::slow_start::{AfterBatch, SlowStart, truncate_to_burst};
    use crate::core::status::{StatusCounters, compute_counters, status_to_write};
    use k8s_openapi::api::core::v1::{
        Affinity, Container, ContainerPort, NodeAffinity, NodeSelector, NodeSelectorRequirement,
        NodeSelectorTerm, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::collections::BTreeMap;

    const HASH: &str = "hash-1";
    const KEY: &str = "default/foo";

    // ---- harness ------------------------------------------------------------------------------

    /// Upstream's `updateStrategies()`: OnDelete and RollingUpdate maxUnavailable=1.
    fn strategies(ds: DaemonSet) -> [(&'static str, DaemonSet); 2] {
        [
            ("OnDelete", with_on_delete(ds.clone())),
            (
                "RollingUpdate",
                with_rolling_update(ds, Some(IntOrString::Int(1)), None),
            ),
        ]
    }

    fn surge(ds: DaemonSet, max_surge: i32) -> DaemonSet {
        with_rolling_update(ds, None, Some(IntOrString::Int(max_surge)))
    }

    fn nodes(from: usize, n: usize) -> Vec<CachedNode> {
        (from..from + n)
            .map(|i| node(&format!("node-{i}")))
            .collect()
    }

    fn blue_nodes(from: usize, n: usize) -> Vec<CachedNode> {
        (from..from + n)
            .map(|i| {
                node_with_labels(
                    &format!("node-{i}"),
                    &[("color", "blue"), ("speed", "fast")],
                )
            })
            .collect()
    }

    /// Upstream `addPods`: `n` pods of `ds` bound to `node`, carrying the current hash; with
    /// `matching == false` their labels do not match the selector ("label2" pods).
    fn add_pods(ds: &DaemonSet, node: &str, matching: bool, n: usize) -> Vec<CachedPod> {
        (0..n)
            .map(|i| {
                let label = if matching { "l1" } else { "l2" };
                let pod = with_name(ds_pod(ds, node, HASH), &format!("{node}-{label}-{i}"));
                if matching {
                    pod
                } else {
                    with_pod_label(pod, "name", "other")
                }
            })
            .collect()
    }

    /// The claim step of §7 (pods the DaemonSet keeps or adopts), then §3.2 grouping with
    /// terminal+terminating pods excluded.
    fn claimed(ds: &DaemonSet, pods: &[CachedPod]) -> NodePods {
        let spec = ds.spec.as_ref().expect("test DaemonSet has a spec");
        let kept: Vec<Arc<CachedPod>> = pods
            .iter()
            .filter(|p| {
                let matches =
                    selector::matches(&spec.selector, p.metadata.labels.as_ref()).unwrap_or(false);
                matches!(claim(ds, &p.metadata, matches), Claim::Keep | Claim::Adopt)
            })
            .cloned()
            .map(Arc::new)
            .collect();
        group_by_node(kept.iter(), false)
    }

    fn sync_at(
        ds: &DaemonSet,
        nodes: &[CachedNode],
        pods: &[CachedPod],
        now: i64,
        backoff: &mut FailedPodBackoff,
    ) -> ManagePlan {
        plan_manage(ds, nodes, &claimed(ds, pods), HASH, ts(now), backoff)
    }

    fn sync(ds: &DaemonSet, nodes: &[CachedNode], pods: &[CachedPod]) -> ManagePlan {
        sync_at(ds, nodes, pods, 1000, &mut FailedPodBackoff::default())
    }

    /// Upstream `expectSyncDaemonSets`: creates, deletes and controller events of one sync.
    #[track_caller]
    fn expect(plan: &ManagePlan, creates: usize, deletes: usize, events: usize, what: &str) {
        assert_eq!(
            (
                plan.nodes_needing_pods.len(),
                plan.pods_to_delete.len(),
                plan.events.len()
            ),
            (creates, deletes, events),
            "{what}: (creates, deletes, events) of {plan:#?}"
        );
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn resources(memory: &str, cpu: &str) -> BTreeMap<String, Quantity> {
        BTreeMap::from([
            ("memory".into(), Quantity(memory.into())),
            ("cpu".into(), Quantity(cpu.into())),
        ])
    }

    /// Upstream `resourcePodSpec`: one container requesting memory/cpu, optionally bound to a node.
    fn resource_pod_spec(node_name: &str, memory: &str, cpu: &str) -> PodSpec {
        PodSpec {
            node_name: (!node_name.is_empty()).then(|| node_name.to_string()),
            containers: vec![Container {
                name: "c".into(),
                image: Some("foo/bar".into()),
                resources: Some(ResourceRequirements {
                    requests: Some(resources(memory, cpu)),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn host_port_spec(node_name: &str, port: i32) -> PodSpec {
        PodSpec {
            node_name: Some(node_name.into()),
            containers: vec![Container {
                name: "c".into(),
                image: Some("foo/bar".into()),
                ports: Some(vec![ContainerPort {
                    host_port: Some(port),
                    container_port: port,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn with_template_spec(mut ds: DaemonSet, spec: PodSpec) -> DaemonSet {
        *template_spec_mut(&mut ds) = spec;
        ds
    }

    /// A pod of the created kind (`new_pod`), named so it can sit in the cache.
    fn created_pod(ds: &DaemonSet, node: &str) -> CachedPod {
        with_name(
            CachedPod::from(new_pod(ds, HASH, node)),
            &format!("created-{node}"),
        )
    }

    // ---- §10.1 scenarios ----------------------------------------------------------------------

    #[test]
    fn test_simple_daemon_set_launches_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let plan = sync(&ds, &nodes(0, 5), &[]);
            expect(&plan, 5, 0, 0, strategy);
            assert_eq!(
                plan.nodes_needing_pods,
                strings(&["node-0", "node-1", "node-2", "node-3", "node-4"])
            );
            assert_eq!(plan.requeue_after, None);
        }
    }

    #[test]
    fn test_simple_daemon_set_schedule_daemon_set_pods_launches_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let all = nodes(0, 5);
            let plan = sync(&ds, &all, &[]);
            expect(&plan, 5, 0, 0, strategy);
            let mut remaining: HashSet<String> =
                all.iter().filter_map(|n| n.metadata.name.clone()).collect();
            for node_name in &plan.nodes_needing_pods {
                let pod = new_pod(&ds, HASH, node_name);
                let spec = pod.spec.as_ref().expect("created pod has a spec");
                assert!(
                    spec.node_name.as_deref().unwrap_or_default().is_empty(),
                    "{strategy}: nodeName must be empty"
                );
                let required = spec
                    .affinity
                    .as_ref()
                    .and_then(|a| a.node_affinity.as_ref())
                    .and_then(|na| {
                        na.required_during_scheduling_ignored_during_execution
                            .as_ref()
                    })
                    .expect("required node affinity");
                assert_eq!(required.node_selector_terms.len(), 1, "{strategy}");
                let fields = required.node_selector_terms[0]
                    .match_fields
                    .as_deref()
                    .unwrap_or_default();
                assert_eq!(fields.len(), 1, "{strategy}");
                assert_eq!(fields[0].key, "metadata.name");
                assert_eq!(fields[0].operator, "In");
                assert_eq!(
                    fields[0].values.as_deref().unwrap_or_default(),
                    std::slice::from_ref(node_name)
                );
                assert!(
                    remaining.remove(node_name),
                    "{strategy}: {node_name} pinned twice"
                );
            }
            assert!(
                remaining.is_empty(),
                "{strategy}: nodes without a pod: {remaining:?}"
            );
        }
    }

    /// One sync against an API that accepts only `quota` creates, the way the shell drives it:
    /// expectations set before any call, slow-start batches, failures lower the add expectation,
    /// skipped creates lower it by their count, successes observed immediately (as upstream's fake
    /// pod control does). Returns (create calls, created pods, events of the controller recorder).
    fn sync_with_create_quota(
        ds: &DaemonSet,
        nodes: &[CachedNode],
        quota: usize,
        exp: &mut Expectations,
    ) -> (usize, Vec<CachedPod>, Vec<PlannedEvent>) {
        let plan = sync(ds, nodes, &[]);
        let creates = truncate_to_burst(&plan.nodes_needing_pods);
        let deletes = truncate_to_burst(&plan.pods_to_delete);
        exp.expect(KEY, creates, deletes, ts(0));
        let (mut calls, mut created) = (0, Vec::new());
        let mut slow = SlowStart::new(creates.len());
        while let Some(batch) = slow.next_batch() {
            let mut errors = 0;
            for node_name in &creates[batch] {
                calls += 1;
                if created.len() < quota {
                    created.push(created_pod(ds, node_name));
                } else {
                    errors += 1;
                }
                exp.creation_observed(KEY, node_name);
            }
            if let AfterBatch::Abort { skipped } = slow.finish_batch(errors) {
                exp.creations_skipped(KEY, &creates[creates.len() - skipped..]);
            }
        }
        (calls, created, plan.events)
    }

    #[test]
    fn test_simple_daemon_set_pod_create_errors() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let all = nodes(0, 100);
            let mut exp = Expectations::new();
            let (calls, created, events) = sync_with_create_quota(&ds, &all, 10, &mut exp);
            assert_eq!(created.len(), 10, "{strategy}");
            assert!(events.is_empty(), "{strategy}");
            let mut expected_limit = 0;
            let mut pass = 0;
            while expected_limit <= 10 {
                expected_limit += SLOW_START_INITIAL_BATCH << pass;
                pass += 1;
            }
            assert!(
                calls <= expected_limit,
                "{strategy}: {calls} create calls > {expected_limit}"
            );
            assert_eq!(calls, 1 + 2 + 4 + 8, "{strategy}");
            // Status still reports every node as desired.
            let pods: Vec<Arc<CachedPod>> = created.into_iter().map(Arc::new).collect();
            let c = compute_counters(&ds, &all, &group_by_node(pods.iter(), false), HASH, ts(0));
            assert_eq!(c.desired_number_scheduled, 100, "{strategy}");
            assert_eq!(c.current_number_scheduled, 10, "{strategy}");
            assert_eq!(c.updated_number_scheduled, 10, "{strategy}");
        }
    }

    #[test]
    fn test_daemon_set_pod_create_expectations_error() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let mut exp = Expectations::new();
            sync_with_create_quota(&ds, &nodes(0, 100), 10, &mut exp);
            assert!(exp.satisfied(KEY, ts(0)), "{strategy}: {:?}", exp.get(KEY));
        }
    }

    #[test]
    fn create_and_delete_lists_are_truncated_to_the_burst_separately() {
        let ds = daemonset("foo");
        let all = nodes(0, 300);
        let mut pods = Vec::new();
        for i in 0..260 {
            pods.extend(add_pods(&ds, &format!("node-{i}"), true, 2));
        }
        let plan = sync(&ds, &all, &pods);
        expect(&plan, 40, 260, 0, "300 nodes");
        assert_eq!(
            truncate_to_burst(&plan.pods_to_delete).len(),
            BURST_REPLICAS
        );
        assert_eq!(truncate_to_burst(&plan.nodes_needing_pods).len(), 40);
    }

    #[test]
    fn test_simple_daemon_set_updates_status_after_launching_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let all = nodes(0, 5);
            let plan = sync(&ds, &all, &[]);
            expect(&plan, 5, 0, 0, strategy);
            // The fake pod control puts created pods in the cache before the status step.
            let created: Vec<CachedPod> = plan
                .nodes_needing_pods
                .iter()
                .map(|n| created_pod(&ds, n))
                .collect();
            let c = compute_counters(&ds, &all, &claimed(&ds, &created), HASH, ts(0));
            let status = status_to_write(&ds, &c, true).expect("status changes");
            assert_eq!(status.current_number_scheduled, 5, "{strategy}");
        }
    }

    #[test]
    fn test_no_nodes_does_nothing() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            expect(&sync(&ds, &[], &[]), 0, 0, 0, strategy);
        }
    }

    #[test]
    fn test_one_node_daemon_launches_pod() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let plan = sync(&ds, &[node("only-node")], &[]);
            expect(&plan, 1, 0, 0, strategy);
            assert_eq!(plan.nodes_needing_pods, strings(&["only-node"]));
        }
    }

    #[test]
    fn test_not_ready_node_daemon_does_launch_pod() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let n = with_node_condition(node("not-ready"), "Ready", "False");
            expect(&sync(&ds, &[n], &[]), 1, 0, 0, strategy);
        }
    }

    /// Upstream's tests of what placement ignores: a node's conditions and resources, and what other
    /// pods request (resources, host ports). A cached node carries no status (`core::cached_node`)
    /// and a cached pod no resources or ports (`core::cached_pod`), so these hold by construction;
    /// the tests keep the DaemonSet's own template against the node, and give the nodes the status
    /// the API server would send (`fixtures::with_status`).
    #[test]
    fn test_insufficient_capacity_node_daemon_does_not_unschedule_running_pod() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let spec = resource_pod_spec("too-much-mem", "75M", "75m");
            let ds = with_template_spec(ds, spec.clone());
            let n = with_allocatable(node("too-much-mem"), "100M", "200m");
            let mut other = orphan(pod("unrelated", &[]));
            other.spec = Some(spec.into());
            let plan = sync(&ds, &[n], &[other]);
            expect(&plan, 1, 0, 0, strategy);
        }
    }

    #[test]
    fn test_insufficient_capacity_node_sufficient_capacity_with_node_label_daemon_launch_pod() {
        let ds = with_template_spec(daemonset("foo"), resource_pod_spec("", "50M", "75m"));
        let ds = with_node_selector(ds, &[("color", "blue"), ("speed", "fast")]);
        let small = with_allocatable(node("not-enough-resource"), "10M", "20m");
        let big = with_allocatable(
            node_with_labels("enough-resource", &[("color", "blue"), ("speed", "fast")]),
            "100M",
            "200m",
        );
        let plan = sync(&ds, &[small, big], &[]);
        expect(&plan, 1, 0, 0, "no event for insufficient resources");
        assert_eq!(plan.nodes_needing_pods, strings(&["enough-resource"]));
    }

    #[test]
    fn test_network_unavailable_node_daemon_launches_pod() {
        for (strategy, ds) in strategies(daemonset("simple")) {
            let n = with_node_condition(node("network-unavailable"), "NetworkUnavailable", "True");
            expect(&sync(&ds, &[n], &[]), 1, 0, 0, strategy);
        }
    }

    /// Upstream's test: see `test_insufficient_capacity_node_daemon_does_not_unschedule_running_pod`.
    #[test]
    fn test_port_conflict_with_same_daemon_pod_does_not_delete_pod() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_template_spec(ds, host_port_spec("port-conflict", 666));
            let own = with_name(ds_pod(&ds, "port-conflict", HASH), "foo-abcde");
            expect(
                &sync(&ds, &[node("port-conflict")], &[own]),
                0,
                0,
                0,
                strategy,
            );
        }
    }

    /// Upstream's test: see `test_insufficient_capacity_node_daemon_does_not_unschedule_running_pod`.
    #[test]
    fn test_no_port_conflict_node_daemon_launches_pod() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_template_spec(ds, host_port_spec("no-port-conflict", 6662));
            let mut other = orphan(pod("other", &[]));
            other.spec = Some(host_port_spec("no-port-conflict", 6661).into());
            expect(
                &sync(&ds, &[node("no-port-conflict")], &[other]),
                1,
                0,
                0,
                strategy,
            );
        }
    }

    #[test]
    fn test_pod_is_not_deleted_by_daemonset_with_empty_label_selector() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_selector(ds, LabelSelector::default());
            // The sync emits SelectingAll and stops before manage: 0 creates, 0 deletes, 1 event.
            let event = selecting_all_event(&ds).expect("empty selector selects all");
            assert_eq!(event.type_, EventType::Warning, "{strategy}");
            assert_eq!(event.reason, SELECTING_ALL);
            assert_eq!(
                event.message,
                "This daemon set is selecting all pods. A non-empty selector is required."
            );
            assert_eq!(
                selecting_all_event(&daemonset("foo")),
                None,
                "{strategy}: a real selector proceeds"
            );
        }
    }

    #[test]
    fn test_deals_with_existing_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let mut pods = add_pods(&ds, "node-1", true, 1);
            pods.extend(add_pods(&ds, "node-2", true, 2));
            pods.extend(add_pods(&ds, "node-3", true, 5));
            pods.extend(add_pods(&ds, "node-4", false, 2));
            let plan = sync(&ds, &nodes(0, 5), &pods);
            expect(&plan, 2, 5, 0, strategy);
            assert_eq!(plan.nodes_needing_pods, strings(&["node-0", "node-4"]));
            assert_eq!(
                sorted(plan.pods_to_delete.clone()),
                strings(&[
                    "node-2-l1-1",
                    "node-3-l1-1",
                    "node-3-l1-2",
                    "node-3-l1-3",
                    "node-3-l1-4"
                ])
            );
        }
    }

    #[test]
    fn test_selector_daemon_launches_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_node_selector(ds, &[("color", "blue"), ("speed", "fast")]);
            let mut all = nodes(0, 4);
            all.extend(blue_nodes(4, 3));
            let plan = sync(&ds, &all, &[]);
            expect(&plan, 3, 0, 0, strategy);
            assert_eq!(
                plan.nodes_needing_pods,
                strings(&["node-4", "node-5", "node-6"])
            );
        }
    }

    #[test]
    fn test_selector_daemon_deletes_unselected_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_node_selector(ds, &[("color", "blue"), ("speed", "fast")]);
            let mut all = nodes(0, 5);
            all.extend(blue_nodes(5, 5));
            let mut pods = add_pods(&ds, "node-0", false, 2);
            pods.extend(add_pods(&ds, "node-1", true, 3));
            pods.extend(add_pods(&ds, "node-1", false, 1));
            pods.extend(add_pods(&ds, "node-4", true, 1));
            let plan = sync(&ds, &all, &pods);
            expect(&plan, 5, 4, 0, strategy);
            assert_eq!(
                sorted(plan.pods_to_delete),
                strings(&["node-1-l1-0", "node-1-l1-1", "node-1-l1-2", "node-4-l1-0"])
            );
        }
    }

    #[test]
    fn test_selector_daemon_deals_with_existing_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_node_selector(ds, &[("color", "blue"), ("speed", "fast")]);
            let mut all = nodes(0, 5);
            all.extend(blue_nodes(5, 5));
            let mut pods = add_pods(&ds, "node-0", true, 1);
            pods.extend(add_pods(&ds, "node-1", true, 3));
            pods.extend(add_pods(&ds, "node-1", false, 2));
            pods.extend(add_pods(&ds, "node-2", true, 4));
            pods.extend(add_pods(&ds, "node-6", true, 13));
            pods.extend(add_pods(&ds, "node-7", false, 4));
            pods.extend(add_pods(&ds, "node-9", true, 1));
            pods.extend(add_pods(&ds, "node-9", false, 1));
            let plan = sync(&ds, &all, &pods);
            expect(&plan, 3, 20, 0, strategy);
            assert_eq!(
                plan.nodes_needing_pods,
                strings(&["node-5", "node-7", "node-8"])
            );
            assert!(
                !plan.pods_to_delete.contains(&"node-6-l1-0".to_string()),
                "{strategy}: the oldest stays"
            );
        }
    }

    #[test]
    fn test_bad_selector_daemon_does_nothing() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_node_selector(ds, &[("color", "red"), ("speed", "fast")]);
            let mut all = nodes(0, 4);
            all.extend(blue_nodes(4, 3));
            expect(&sync(&ds, &all, &[]), 0, 0, 0, strategy);
        }
    }

    #[test]
    fn test_name_daemon_set_launches_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_template_node_name(ds, "node-0");
            let plan = sync(&ds, &nodes(0, 5), &[]);
            expect(&plan, 1, 0, 0, strategy);
            assert_eq!(plan.nodes_needing_pods, strings(&["node-0"]));
        }
    }

    #[test]
    fn test_bad_name_daemon_set_does_nothing() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_template_node_name(ds, "node-10");
            expect(&sync(&ds, &nodes(0, 5), &[]), 0, 0, 0, strategy);
        }
    }

    #[test]
    fn test_name_and_selector_daemon_set_launches_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_template_node_name(
                with_node_selector(ds, &[("color", "blue"), ("speed", "fast")]),
                "node-6",
            );
            let mut all = nodes(0, 4);
            all.extend(blue_nodes(4, 3));
            let plan = sync(&ds, &all, &[]);
            expect(&plan, 1, 0, 0, strategy);
            assert_eq!(plan.nodes_needing_pods, strings(&["node-6"]));
        }
    }

    #[test]
    fn test_inconsistent_name_selector_daemon_set_does_nothing() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_template_node_name(
                with_node_selector(ds, &[("color", "blue"), ("speed", "fast")]),
                "node-0",
            );
            let mut all = nodes(0, 4);
            all.extend(blue_nodes(4, 3));
            expect(&sync(&ds, &all, &[]), 0, 0, 0, strategy);
        }
    }

    #[test]
    fn test_selector_daemon_set_launches_pods() {
        // OnDelete only, as upstream.
        let ds = with_on_delete(with_node_selector(
            daemonset("foo"),
            &[("color", "blue"), ("speed", "fast")],
        ));
        let mut all = nodes(0, 4);
        all.extend(blue_nodes(4, 3));
        expect(&sync(&ds, &all, &[]), 3, 0, 0, "OnDelete");
    }

    #[test]
    fn test_node_affinity_daemon_launches_pods() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let ds = with_affinity(
                ds,
                Affinity {
                    node_affinity: Some(NodeAffinity {
                        required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                            node_selector_terms: vec![NodeSelectorTerm {
                                match_expressions: Some(vec![NodeSelectorRequirement {
                                    key: "color".into(),
                                    operator: "In".into(),
                                    values: Some(vec!["blue".into()]),
                                }]),
                                match_fields: None,
                            }],
                        }),
                        preferred_during_scheduling_ignored_during_execution: None,
                    }),
                    ..Default::default()
                },
            );
            let mut all = nodes(0, 4);
            all.extend(blue_nodes(4, 3));
            let plan = sync(&ds, &all, &[]);
            expect(&plan, 3, 0, 0, strategy);
            assert_eq!(
                plan.nodes_needing_pods,
                strings(&["node-4", "node-5", "node-6"])
            );
        }
    }

    fn add_failed_pods(ds: &DaemonSet, node: &str, n: usize) -> Vec<CachedPod> {
        (0..n)
            .map(|i| {
                with_phase(
                    with_name(ds_pod(ds, node, HASH), &format!("{node}-failed-{i}")),
                    "Failed",
                )
            })
            .collect()
    }

    #[test]
    fn test_daemon_kill_failed_pods() {
        // (failed, normal, creates, deletes, events, name)
        let cases = [
            (0, 1, 0, 0, 0, "normal (do nothing)"),
            (0, 0, 1, 0, 0, "no pods (create 1)"),
            (
                1,
                0,
                0,
                1,
                1,
                "1 failed pod (kill 1), 0 normal pod (create 0; will create in the next sync)",
            ),
            (
                1,
                3,
                0,
                3,
                1,
                "1 failed pod (kill 1), 3 normal pods (kill 2)",
            ),
        ];
        for (failed, normal, creates, deletes, events, name) in cases {
            for (strategy, ds) in strategies(daemonset("foo")) {
                let mut pods = add_failed_pods(&ds, "node-0", failed);
                pods.extend(add_pods(&ds, "node-0", true, normal));
                let plan = sync(&ds, &nodes(0, 1), &pods);
                expect(
                    &plan,
                    creates,
                    deletes,
                    events,
                    &format!("{name} / {strategy}"),
                );
                if failed > 0 {
                    assert!(
                        plan.pods_to_delete.contains(&"node-0-failed-0".to_string()),
                        "{name}"
                    );
                    assert_eq!(
                        plan.events,
                        vec![PlannedEvent::warning(
                            FAILED_DAEMON_POD,
                            "Found failed daemon pod default/node-0-failed-0 on node node-0, will try to kill it"
                        )],
                        "{name} / {strategy}"
                    );
                }
            }
        }
    }

    #[test]
    fn test_daemon_kill_failed_pods_backoff() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let all = nodes(0, 1);
            let pods = add_failed_pods(&ds, "node-0", 1);
            let key = failed_pods_backoff_key(&ds, "node-0");
            let mut backoff = FailedPodBackoff::default();
            let t0 = 1000;

            // First sync deletes the pod, initializing the backoff.
            let plan = sync_at(&ds, &all, &pods, t0, &mut backoff);
            expect(&plan, 0, 1, 1, strategy);
            let initial = backoff.get(&key);
            assert!(
                initial > Duration::ZERO,
                "{strategy}: initial delay is expected to be set"
            );

            // An immediate second sync is limited by the backoff and does not raise it.
            let plan = sync_at(&ds, &all, &pods, t0, &mut backoff);
            expect(&plan, 0, 0, 0, strategy);
            assert_eq!(
                plan.requeue_after,
                Some(initial),
                "{strategy}: requeued after the current delay"
            );
            assert_eq!(
                backoff.get(&key),
                initial,
                "{strategy}: backoff delay shouldn't be raised while waiting"
            );

            // Just before the end of the delay it is still in backoff; at the end it is not.
            let end = ts(t0).checked_add(initial).expect("in range");
            let just_before = end
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_nanos(1))
                .expect("in range");
            assert!(
                backoff.is_in_backoff_since_update(&key, just_before),
                "{strategy}"
            );
            let plan = plan_manage(
                &ds,
                &all,
                &claimed(&ds, &pods),
                HASH,
                just_before,
                &mut backoff,
            );
            expect(&plan, 0, 0, 0, strategy);
            assert!(!backoff.is_in_backoff_since_update(&key, end), "{strategy}");

            // After the backoff the failed pod is deleted again.
            let plan = plan_manage(&ds, &all, &claimed(&ds, &pods), HASH, end, &mut backoff);
            expect(&plan, 0, 1, 1, strategy);
            assert_eq!(plan.requeue_after, None);
            assert_eq!(
                backoff.get(&key),
                initial * 2,
                "{strategy}: the delay doubles"
            );
        }
    }

    #[test]
    fn two_failed_pods_on_one_node_are_deleted_one_sync_at_a_time() {
        // The second failed pod of a node hits the backoff the first one just started [quirk].
        let ds = daemonset("foo");
        let pods = add_failed_pods(&ds, "node-0", 2);
        let plan = sync(&ds, &nodes(0, 1), &pods);
        expect(&plan, 0, 1, 1, "two failed pods");
        assert_eq!(plan.pods_to_delete, strings(&["node-0-failed-0"]));
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn backoff_keys_are_per_node_and_requeue_takes_the_shortest_delay() {
        let ds = daemonset("foo");
        let all = nodes(0, 2);
        let mut backoff = FailedPodBackoff::default();
        let key0 = failed_pods_backoff_key(&ds, "node-0");
        for _ in 0..3 {
            backoff.next(&key0, ts(0)); // node-0 at 4 s
        }
        backoff.next(&failed_pods_backoff_key(&ds, "node-1"), ts(0)); // node-1 at 1 s
        let mut pods = add_failed_pods(&ds, "node-0", 1);
        pods.extend(add_failed_pods(&ds, "node-1", 1));
        let plan = sync_at(&ds, &all, &pods, 0, &mut backoff);
        expect(&plan, 0, 0, 0, "both in backoff");
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
        let plan = sync_at(&ds, &all, &pods, 1, &mut backoff);
        expect(&plan, 0, 1, 1, "node-1 out of backoff");
        assert_eq!(plan.pods_to_delete, strings(&["node-1-failed-0"]));
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(4)));
    }

    #[test]
    fn succeeded_pods_are_deleted_with_an_event_and_no_backoff() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let done = with_phase(with_name(ds_pod(&ds, "node-0", HASH), "done"), "Succeeded");
            let mut backoff = FailedPodBackoff::default();
            for _ in 0..2 {
                let plan = sync_at(
                    &ds,
                    &nodes(0, 1),
                    std::slice::from_ref(&done),
                    0,
                    &mut backoff,
                );
                expect(&plan, 0, 1, 1, strategy);
                assert_eq!(
                    plan.events,
                    vec![PlannedEvent::normal(
                        SUCCEEDED_DAEMON_POD,
                        "Found succeeded daemon pod default/done on node node-0, will try to delete it"
                    )]
                );
            }
            assert!(backoff.is_empty(), "{strategy}");
        }
    }

    #[test]
    fn test_no_schedule_tainted_doesnt_evicit_running_intolerant_pod() {
        for (strategy, ds) in strategies(daemonset("intolerant")) {
            let n = with_taint(node("tainted"), "dedicated", "user1", "NoSchedule");
            let pods = [with_name(ds_pod(&ds, "tainted", HASH), "keep-running-me")];
            expect(&sync(&ds, &[n], &pods), 0, 0, 0, strategy);
        }
    }

    #[test]
    fn test_no_execute_tainted_does_evicit_running_intolerant_pod() {
        for (strategy, ds) in strategies(daemonset("intolerant")) {
            let n = with_taint(node("tainted"), "dedicated", "user1", "NoExecute");
            let pods = [with_name(ds_pod(&ds, "tainted", HASH), "stop-running-me")];
            let plan = sync(&ds, &[n], &pods);
            expect(&plan, 0, 1, 0, strategy);
            assert_eq!(plan.pods_to_delete, strings(&["stop-running-me"]));
        }
    }

    #[test]
    fn test_tainted_node_daemon_does_not_launch_intolerant_pod() {
        for (strategy, ds) in strategies(daemonset("intolerant")) {
            let n = with_taint(node("tainted"), "dedicated", "user1", "NoSchedule");
            expect(&sync(&ds, &[n], &[]), 0, 0, 0, strategy);
        }
    }

    #[test]
    fn test_tainted_node_daemon_launches_tolerate_pod() {
        for (strategy, ds) in strategies(daemonset("tolerate")) {
            let ds = with_toleration(ds, toleration("dedicated", "", "user1", "NoSchedule"));
            let n = with_taint(node("tainted"), "dedicated", "user1", "NoSchedule");
            expect(&sync(&ds, &[n], &[]), 1, 0, 0, strategy);
        }
    }

    #[test]
    fn test_not_ready_node_daemon_launches_pod() {
        for (strategy, ds) in strategies(daemonset("simple")) {
            let n = with_taint(
                node("tainted"),
                "node.kubernetes.io/not-ready",
                "",
                "NoExecute",
            );
            let n = with_node_condition(n, "Ready", "False");
            expect(&sync(&ds, &[n], &[]), 1, 0, 0, strategy);
        }
    }

    #[test]
    fn test_unreachable_node_daemon_launches_pod() {
        for (strategy, ds) in strategies(daemonset("simple")) {
            let n = with_taint(
                node("tainted"),
                "node.kubernetes.io/unreachable",
                "",
                "NoExecute",
            );
            let n = with_node_condition(n, "Ready", "Unknown");
            expect(&sync(&ds, &[n], &[]), 1, 0, 0, strategy);
        }
    }

    #[test]
    fn test_node_daemon_launches_tolerate_pod() {
        for (strategy, ds) in strategies(daemonset("tolerate")) {
            let ds = with_toleration(ds, toleration("dedicated", "", "user1", "NoSchedule"));
            expect(&sync(&ds, &nodes(0, 1), &[]), 1, 0, 0, strategy);
        }
    }

    #[test]
    fn test_daemon_set_respects_termination() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let terminating =
                with_deletion_timestamp(with_name(ds_pod(&ds, "node-0", HASH), "node-0-x"), 500);
            expect(
                &sync(&ds, &blue_nodes(0, 1), &[terminating]),
                0,
                0,
                0,
                strategy,
            );
        }
    }

    #[test]
    fn test_taint_pressure_node_daemon_launches_pod() {
        for (strategy, ds) in strategies(daemonset("critical")) {
            let mut n = node("resources-pressure");
            for (condition, taint) in [
                ("DiskPressure", "node.kubernetes.io/disk-pressure"),
                ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
                ("PIDPressure", "node.kubernetes.io/pid-pressure"),
            ] {
                n = with_taint(
                    with_node_condition(n, condition, "True"),
                    taint,
                    "",
                    "NoSchedule",
                );
            }
            expect(&sync(&ds, &[n], &[]), 1, 0, 0, strategy);
        }
    }

    #[test]
    fn test_delete_unscheduled_pod_for_not_existing_node() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let mut pods = add_pods(&ds, "node-0", true, 1);
            pods.extend(add_pods(&ds, "node-1", true, 1));
            pods.push(with_affinity_pin(
                with_name(ds_pod(&ds, "", HASH), "pod1-node-3"),
                "node-2",
            ));
            let plan = sync(&ds, &nodes(0, 1), &pods);
            expect(&plan, 0, 1, 0, strategy);
            assert_eq!(plan.pods_to_delete, strings(&["pod1-node-3"]));
        }
    }

    #[test]
    fn test_surge_deals_with_existing_pods() {
        let ds = surge(daemonset("foo"), 1);
        let mut pods = add_pods(&ds, "node-1", true, 1);
        pods.extend(add_pods(&ds, "node-2", true, 2));
        pods.extend(add_pods(&ds, "node-3", true, 5));
        pods.extend(add_pods(&ds, "node-4", false, 2));
        let plan = sync(&ds, &nodes(0, 5), &pods);
        expect(&plan, 2, 5, 0, "surge");
        assert_eq!(plan.nodes_needing_pods, strings(&["node-0", "node-4"]));
        assert!(!plan.pods_to_delete.contains(&"node-3-l1-0".to_string()));
    }

    fn old_pod(ds: &DaemonSet, node: &str, name: &str, created: i64) -> CachedPod {
        with_creation_timestamp(
            without_pod_label(
                with_name(ds_pod(ds, node, HASH), name),
                CONTROLLER_REVISION_HASH,
            ),
            created,
        )
    }

    fn new_pod_at(ds: &DaemonSet, node: &str, name: &str, created: i64) -> CachedPod {
        with_creation_timestamp(with_name(ds_pod(ds, node, HASH), name), created)
    }

    #[test]
    fn test_surge_preserves_ready_old_pods() {
        let ds = surge(daemonset("foo"), 1);
        let pods = vec![
            new_pod_at(&ds, "node-1", "node-1-new", 100),
            with_ready(old_pod(&ds, "node-1", "node-1-old", 50), true, 0),
            with_ready(old_pod(&ds, "node-1", "node-1-delete", 60), true, 0),
            new_pod_at(&ds, "node-2", "node-2-new", 0),
        ];
        let plan = sync(&ds, &nodes(0, 5), &pods);
        expect(&plan, 3, 1, 0, "surge");
        assert_eq!(plan.pods_to_delete, strings(&["node-1-delete"]));
        assert_eq!(
            plan.nodes_needing_pods,
            strings(&["node-0", "node-3", "node-4"])
        );
    }

    #[test]
    fn test_surge_creates_new_pod_when_at_max_surge_and_old_pod_deleted() {
        let ds = surge(daemonset("foo"), 1);
        let mut pods = vec![
            with_ready(new_pod_at(&ds, "node-0", "node-0-new", 100), false, 0),
            with_ready(old_pod(&ds, "node-0", "node-0-old-ready", 50), true, 0),
        ];
        for i in 1..5 {
            let node = format!("node-{i}");
            let mut old = with_ready(old_pod(&ds, &node, &format!("{node}-preserve"), 1), true, 0);
            if i == 4 {
                old = with_deletion_timestamp(old, 31);
            }
            pods.push(old);
        }
        let plan = sync(&ds, &nodes(0, 5), &pods);
        expect(&plan, 1, 0, 0, "surge");
        assert_eq!(plan.nodes_needing_pods, strings(&["node-4"]));
    }

    #[test]
    fn test_surge_deletes_unready_old_pods() {
        let ds = surge(daemonset("foo"), 1);
        let pods = vec![
            new_pod_at(&ds, "node-1", "node-1-new", 100),
            with_ready(old_pod(&ds, "node-1", "node-1-old-unready", 50), false, 0),
            with_ready(old_pod(&ds, "node-1", "node-1-delete", 60), true, 0),
            new_pod_at(&ds, "node-2", "node-2-new", 0),
        ];
        let plan = sync(&ds, &nodes(0, 5), &pods);
        expect(&plan, 3, 2, 0, "surge");
        assert_eq!(
            sorted(plan.pods_to_delete),
            strings(&["node-1-delete", "node-1-old-unready"])
        );
    }

    fn min_ready_scenario(now: i64) -> ManagePlan {
        let ds = with_min_ready_seconds(surge(daemonset("foo"), 1), 15);
        let pods = vec![
            with_ready(new_pod_at(&ds, "node-1", "node-1-new", 100), true, 50),
            with_ready(old_pod(&ds, "node-1", "node-1-old-ready", 50), true, 0),
            with_ready(old_pod(&ds, "node-1", "node-1-delete", 60), true, 0),
            new_pod_at(&ds, "node-2", "node-2-new", 0),
        ];
        sync_at(
            &ds,
            &nodes(0, 5),
            &pods,
            now,
            &mut FailedPodBackoff::default(),
        )
    }

    #[test]
    fn test_surge_preserves_old_ready_with_unsatisfied_min_ready() {
        // The clock is 10 s after the new pod went ready: not yet available.
        let plan = min_ready_scenario(50 + 10);
        expect(&plan, 3, 1, 0, "surge");
        assert_eq!(plan.pods_to_delete, strings(&["node-1-delete"]));
    }

    #[test]
    fn test_surge_deletes_old_ready_with_unsatisfied_min_ready() {
        // The clock is 20 s after the new pod went ready: available, so the old pod goes too.
        let plan = min_ready_scenario(50 + 20);
        expect(&plan, 3, 2, 0, "surge");
        assert_eq!(
            sorted(plan.pods_to_delete),
            strings(&["node-1-delete", "node-1-old-ready"])
        );
    }

    // ---- further per-node rules ---------------------------------------------------------------

    #[test]
    fn no_surge_keeps_the_oldest_scheduled_pod() {
        for (strategy, ds) in strategies(daemonset("foo")) {
            let pods = vec![
                new_pod_at(&ds, "node-0", "b", 10),
                new_pod_at(&ds, "node-0", "c", 5),
                new_pod_at(&ds, "node-0", "a", 10),
                // Older, but not bound: sorts after the bound ones.
                with_creation_timestamp(
                    with_affinity_pin(with_name(ds_pod(&ds, "", HASH), "z"), "node-0"),
                    1,
                ),
            ];
            let plan = sync(&ds, &nodes(0, 1), &pods);
            expect(&plan, 0, 3, 0, strategy);
            assert_eq!(plan.pods_to_delete, strings(&["a", "b", "z"]), "{strategy}");
        }
    }

    #[test]
    fn node_that_no_longer_qualifies_loses_every_non_terminating_pod() {
        for (strategy, ds) in strategies(with_node_selector(daemonset("foo"), &[("color", "blue")]))
        {
            let pods = vec![
                new_pod_at(&ds, "node-0", "a", 0),
                with_phase(new_pod_at(&ds, "node-0", "failed", 0), "Failed"),
                with_deletion_timestamp(new_pod_at(&ds, "node-0", "going", 0), 5),
            ];
            let plan = sync(&ds, &nodes(0, 1), &pods);
            expect(&plan, 0, 2, 0, strategy);
            assert_eq!(plan.pods_to_delete, strings(&["a", "failed"]), "{strategy}");
        }
    }

    #[test]
    fn no_schedule_tainted_node_without_pods_gets_nothing_even_when_surging() {
        let ds = surge(daemonset("foo"), 1);
        let n = with_taint(node("node-0"), "dedicated", "user1", "NoSchedule");
        let terminating = with_deletion_timestamp(new_pod_at(&ds, "node-0", "going", 0), 5);
        expect(
            &sync(&ds, &[n], &[terminating]),
            0,
            0,
            0,
            "surge on NoSchedule node",
        );
    }

    #[test]
    fn surge_with_new_and_old_pods_both_unready_deletes_the_old_one() {
        let ds = surge(daemonset("foo"), 1);
        let pods = vec![
            with_ready(new_pod_at(&ds, "node-0", "new", 10), false, 0),
            with_ready(old_pod(&ds, "node-0", "old", 5), false, 0),
        ];
        let plan = sync(&ds, &nodes(0, 1), &pods);
        assert_eq!(plan.pods_to_delete, strings(&["old"]));
    }

    #[test]
    fn surge_keeps_oldest_of_each_revision_and_deletes_the_rest() {
        let ds = surge(daemonset("foo"), 1);
        let pods = vec![
            with_ready(new_pod_at(&ds, "node-0", "new-1", 10), false, 0),
            new_pod_at(&ds, "node-0", "new-2", 20),
            with_ready(old_pod(&ds, "node-0", "old-1", 5), true, 0),
            with_pod_label(
                old_pod(&ds, "node-0", "old-2", 6),
                CONTROLLER_REVISION_HASH,
                "hash-0",
            ),
        ];
        let plan = sync(&ds, &nodes(0, 1), &pods);
        expect(&plan, 0, 2, 0, "surge");
        assert_eq!(sorted(plan.pods_to_delete), strings(&["new-2", "old-2"]));
    }

    #[test]
    fn surge_single_running_pod_is_left_alone() {
        let ds = surge(daemonset("foo"), 1);
        let pods = vec![
            old_pod(&ds, "node-0", "old", 5),
            with_deletion_timestamp(new_pod_at(&ds, "node-0", "going", 1), 9),
        ];
        expect(&sync(&ds, &nodes(0, 1), &pods), 0, 0, 0, "surge");
    }

    #[test]
    fn unparsable_or_percent_max_surge() {
        let pods_for = |ds: &DaemonSet| {
            vec![
                new_pod_at(ds, "node-0", "new", 10),
                with_ready(old_pod(ds, "node-0", "old", 5), true, 0),
            ]
        };
        let bad = with_rolling_update(
            daemonset("foo"),
            None,
            Some(IntOrString::String("lots".into())),
        );
        let plan = sync(&bad, &nodes(0, 1), &pods_for(&bad));
        assert_eq!(
            plan.pods_to_delete,
            strings(&["new"]),
            "surge disabled: keep only the oldest"
        );
        let pct = with_rolling_update(
            daemonset("foo"),
            None,
            Some(IntOrString::String("10%".into())),
        );
        let plan = sync(&pct, &nodes(0, 1), &pods_for(&pct));
        assert!(
            plan.pods_to_delete.is_empty(),
            "10% of one node rounds up to 1: surging keeps both"
        );
        let on_delete = with_on_delete(daemonset("foo"));
        let plan = sync(&on_delete, &nodes(0, 1), &pods_for(&on_delete));
        assert_eq!(
            plan.pods_to_delete,
            strings(&["new"]),
            "OnDelete never surges"
        );
    }

    #[test]
    fn pods_should_be_on_node_reports_one_node() {
        let ds = daemonset("foo");
        let n = node("node-0");
        let mut backoff = FailedPodBackoff::default();
        let none = pods_should_be_on_node(&n, None, &ds, HASH, ts(0), &mut backoff);
        assert_eq!(
            none,
            NodeDecision {
                needs_pod: true,
                ..Default::default()
            }
        );
        let pods: Vec<Arc<CachedPod>> = add_pods(&ds, "node-0", true, 2)
            .into_iter()
            .map(Arc::new)
            .collect();
        let two = pods_should_be_on_node(&n, Some(&pods), &ds, HASH, ts(0), &mut backoff);
        assert_eq!(
            two,
            NodeDecision {
                pods_to_delete: strings(&["node-0-l1-1"]),
                ..Default::default()
            }
        );
        // A group that exists but is empty counts as existing: nothing is created.
        let empty = pods_should_be_on_node(&n, Some(&[]), &ds, HASH, ts(0), &mut backoff);
        assert_eq!(empty, NodeDecision::default());
    }

    #[test]
    fn unscheduled_pods_on_missing_nodes() {
        let ds = daemonset("foo");
        let pods = vec![
            with_affinity_pin(with_name(ds_pod(&ds, "", HASH), "pinned-gone"), "gone"),
            with_name(ds_pod(&ds, "gone", HASH), "bound-gone"),
            with_affinity_pin(with_name(ds_pod(&ds, "", HASH), "pinned-here"), "node-0"),
        ];
        let grouped = claimed(&ds, &pods);
        assert_eq!(
            unscheduled_pods_without_node(&nodes(0, 1), &grouped),
            strings(&["pinned-gone"])
        );
        // With node-0 present the pinned pod there is a normal pending pod: nothing to do.
        let plan = sync(&ds, &nodes(0, 1), &pods);
        expect(&plan, 0, 1, 0, "missing nodes");
    }

    #[test]
    fn nodes_given_as_arcs_work_too() {
        let ds = daemonset("foo");
        let arcs: Vec<Arc<CachedNode>> = nodes(0, 2).into_iter().map(Arc::new).collect();
        let plan = plan_manage(
            &ds,
            &arcs,
            &NodePods::default(),
            HASH,
            ts(0),
            &mut FailedPodBackoff::default(),
        );
        assert_eq!(plan.nodes_needing_pods, strings(&["node-0", "node-1"]));
        let c = compute_counters(&ds, &arcs, &NodePods::default(), HASH, ts(0));
        assert_eq!(
            c,
            StatusCounters {
                desired_number_scheduled: 2,
                number_unavailable: 2,
                ..Default::default()
            }
        );
    }
}
