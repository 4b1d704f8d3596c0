//! One test per reason, the texts operators read, and properties over random situations: the rows
//! agree with the status counters, and the reasons never change a decision.

use super::*;
use crate::core::cached_pod::CachedPodStatus;
use crate::core::fixtures::*;
use crate::core::placement::placement;
use k8s_openapi::api::core::v1::PodCondition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::sync::Arc;

const NEW: &str = "new";
const OLD: &str = "old";
const NOW: i64 = 1000;

fn by_node(pods: Vec<CachedPod>) -> NodePods {
    let mut map = NodePods::default();
    for pod in pods {
        let node = crate::core::pods_by_node::target_node_name(&pod).unwrap_or_default();
        map.entry(node).or_default().push(Arc::new(pod));
    }
    map
}

fn rows(ds: &DaemonSet, nodes: &[CachedNode], pods: Vec<CachedPod>) -> Explanation {
    explain(ds, nodes, &by_node(pods), NEW, ts(NOW), &Context::default())
}

fn only(e: &Explanation) -> &NodeRow {
    assert_eq!(e.rows.len(), 1, "{e:#?}");
    &e.rows[0]
}

fn available(ds: &DaemonSet, node: &str, hash: &str) -> CachedPod {
    running_ready(ds_pod(ds, node, hash), 0)
}

fn unscheduled(ds: &DaemonSet, node: &str, message: &str) -> CachedPod {
    let mut pod = with_affinity_pin(ds_pod(ds, "", NEW), node);
    pod.metadata.name = Some(format!("foo-{node}"));
    let status = pod.status.get_or_insert_with(CachedPodStatus::default);
    status.phase = Some("Pending".into());
    status.conditions = Some(vec![PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some(message.into()),
        ..Default::default()
    }]);
    pod
}

#[test]
fn excluded_nodes_name_the_rule_and_its_data() {
    let ds = with_node_selector(daemonset("foo"), &[("disktype", "ssd")]);
    let hdd = node_with_labels("n", &[("disktype", "hdd")]);
    let e = rows(&ds, &[hdd], vec![]);
    assert_eq!(
        only(&e).reason.to_string(),
        "nodeSelector disktype=ssd: node has disktype=hdd"
    );
    assert!(!only(&e).wanted);
    assert_eq!(only(&e).reason.state(), "Excluded");
    assert_eq!(only(&e).class(), ReasonClass::Excluded);
    let e = rows(&ds, &[node("n")], vec![]);
    assert_eq!(
        only(&e).reason.to_string(),
        "nodeSelector disktype=ssd: node lacks label disktype"
    );
    assert_eq!(e.summary(), "1 node: 1 excluded by nodeSelector");

    let ds = with_affinity(
        daemonset("foo"),
        required_affinity("zone", "In", &["a", "b"]),
    );
    let e = rows(&ds, &[node_with_labels("n", &[("zone", "c")])], vec![]);
    assert_eq!(
        only(&e).reason.to_string(),
        "required node affinity: no term matches (term 1: zone In [a,b])"
    );

    let tainted = with_taint(
        node("n"),
        "node-role.kubernetes.io/master",
        "",
        "NoSchedule",
    );
    let e = rows(&daemonset("foo"), &[tainted], vec![]);
    assert_eq!(
        only(&e).reason.to_string(),
        "untolerated taint node-role.kubernetes.io/master:NoSchedule"
    );
    assert_eq!(e.summary(), "1 node: 1 excluded by taint");

    let ds = with_template_node_name(daemonset("foo"), "other-node");
    let e = rows(&ds, &[node("n")], vec![]);
    assert_eq!(
        only(&e).reason.to_string(),
        "spec.template.spec.nodeName is other-node"
    );
}

#[test]
fn a_pod_kept_despite_a_no_schedule_taint_is_misscheduled_and_a_no_execute_one_is_removed() {
    let ds = daemonset("foo");
    let no_schedule = with_taint(node("n"), "k", "v", "NoSchedule");
    let e = rows(&ds, &[no_schedule], vec![available(&ds, "n", NEW)]);
    assert_eq!(only(&e).reason.state(), "Misscheduled");
    assert_eq!(
        only(&e).reason.to_string(),
        "untolerated taint k=v:NoSchedule: no new pod here, the running one stays"
    );
    assert_eq!(e.counters.number_misscheduled, 1);
    let no_execute = with_taint(node("n"), "k", "v", "NoExecute");
    let e = rows(&ds, &[no_execute], vec![available(&ds, "n", NEW)]);
    assert_eq!(only(&e).reason.state(), "Removing");
    assert_eq!(only(&e).class(), ReasonClass::Excluded);
}

#[test]
fn a_wanted_node_has_its_pod_or_says_what_it_waits_for() {
    let ds = with_min_ready_seconds(daemonset("foo"), 30);
    // Up to date and available: name, revision, ready since, restarts.
    let e = rows(&ds, &[node("n")], vec![available(&ds, "n", NEW)]);
    let row = only(&e);
    assert_eq!(row.reason, Reason::UpToDate);
    let pod = row.pod.as_ref().expect("a pod");
    assert_eq!(pod.name, "foo-n");
    assert_eq!(pod.revision.as_deref(), Some(NEW));
    assert_eq!(pod.ready_since, Some(ts(0)));
    assert!(pod.available && pod.updated);
    assert_eq!(e.summary(), "1 node: 1 runs an up-to-date available pod");

    // No pod yet.
    let e = rows(&ds, &[node("n")], vec![]);
    assert_eq!(only(&e).reason, Reason::NoPod);
    assert_eq!(only(&e).reason.state(), "Missing");

    // Ready for less than minReadySeconds.
    let e = rows(
        &ds,
        &[node("n")],
        vec![running_ready(ds_pod(&ds, "n", NEW), NOW - 10)],
    );
    assert_eq!(
        only(&e).reason,
        Reason::NotYetAvailable {
            available_at: ts(NOW + 20)
        }
    );

    // Starting, with the container's waiting reason.
    let pod = with_container_waiting(
        with_phase(ds_pod(&ds, "n", NEW), "Pending"),
        "ContainerCreating",
        "",
    );
    let e = rows(&ds, &[node("n")], vec![pod]);
    assert_eq!(
        only(&e).reason.to_string(),
        "not Ready yet (ContainerCreating)"
    );
    assert_eq!(only(&e).class(), ReasonClass::Waiting);
    assert_eq!(only(&e).pod.as_ref().map(|p| p.restarts), Some(4));

    // Only a terminating pod.
    let e = rows(
        &ds,
        &[node("n")],
        vec![with_deletion_timestamp(available(&ds, "n", NEW), 5)],
    );
    assert_eq!(only(&e).reason, Reason::Terminating);
}

#[test]
fn pods_that_will_not_become_available_by_waiting_are_failed() {
    let ds = daemonset("foo");
    let e = rows(
        &ds,
        &[node("n")],
        vec![unscheduled(
            &ds,
            "n",
            "0/5 nodes are available: 5 Insufficient cpu.",
        )],
    );
    assert_eq!(
        only(&e).reason.to_string(),
        "the scheduler cannot place the pod: 0/5 nodes are available: 5 Insufficient cpu."
    );
    assert_eq!(only(&e).class(), ReasonClass::Failed);
    assert_eq!(e.summary(), "1 node: 1 unschedulable");

    let crashing = with_container_waiting(
        with_phase(ds_pod(&ds, "n", NEW), "Running"),
        "CrashLoopBackOff",
        "back-off 5m0s restarting failed container",
    );
    let e = rows(&ds, &[node("n")], vec![crashing]);
    assert_eq!(only(&e).reason.state(), "CrashLoopBackOff");
    assert_eq!(
        only(&e).reason.to_string(),
        "container app: CrashLoopBackOff: back-off 5m0s restarting failed container"
    );
    assert_eq!(only(&e).class(), ReasonClass::Failed);

    // A failed pod, with manage's backoff when the controller has one.
    let failed = with_phase(ds_pod(&ds, "n", NEW), "Failed");
    let backoffs = BTreeMap::from([("n".to_string(), ts(NOW + 8))]);
    let e = explain(
        &ds,
        &[node("n")],
        &by_node(vec![failed.clone()]),
        NEW,
        ts(NOW),
        &Context {
            backoff_until: Some(&backoffs),
            rollout: None,
            rolling_update: None,
            classes_only: false,
        },
    );
    assert_eq!(
        only(&e).reason,
        Reason::PodFailed {
            message: String::new(),
            backoff_until: Some(ts(NOW + 8))
        }
    );
    assert!(
        only(&e)
            .reason
            .to_string()
            .contains("after its backoff, at 1970-01-01T00:16:48Z")
    );
}

#[test]
fn outdated_pods_say_which_budget_holds_them_and_by_whom() {
    let ds = daemonset("foo"); // RollingUpdate, maxUnavailable 1
    let nodes: Vec<CachedNode> = (0..4).map(|i| node(&format!("n{i}"))).collect();
    let pods = vec![
        ds_pod(&ds, "n0", NEW), // not ready: holds the budget
        available(&ds, "n1", OLD),
        available(&ds, "n2", OLD),
        available(&ds, "n3", OLD),
    ];
    let e = rows(&ds, &nodes, pods);
    let reasons: Vec<String> = e.rows.iter().map(|r| r.reason.to_string()).collect();
    assert_eq!(reasons[0], "not Ready yet");
    for r in &reasons[1..] {
        assert_eq!(
            r,
            "outdated, waiting: the budget maxUnavailable=1 is held by n0"
        );
    }
    assert_eq!(
        e.summary(),
        "4 nodes: 1 starting a pod, 3 waiting for the budget"
    );

    // Nothing held yet: the first old pod is replaced now, the others wait.
    let pods = (0..4)
        .map(|i| available(&ds, &format!("n{i}"), OLD))
        .collect();
    let e = rows(&ds, &nodes, pods);
    assert_eq!(
        e.rows[0].reason,
        Reason::Outdated(OutdatedWait::BeingReplaced)
    );
    assert_eq!(e.rows[1].reason.state(), "Outdated");

    // Many holders are cut short.
    let nodes: Vec<CachedNode> = (0..7).map(|i| node(&format!("n{i}"))).collect();
    let ds5 = with_rolling_update(ds.clone(), Some(IntOrString::Int(5)), None);
    let mut pods: Vec<CachedPod> = (0..5)
        .map(|i| ds_pod(&ds5, &format!("n{i}"), NEW))
        .collect();
    pods.extend((5..7).map(|i| available(&ds5, &format!("n{i}"), OLD)));
    let e = rows(&ds5, &nodes, pods);
    assert_eq!(
        e.rows[6].reason.to_string(),
        "outdated, waiting: the budget maxUnavailable=5 is held by n0, n1, n2 and 2 more"
    );

    // OnDelete: replaced only by hand.
    let on_delete = with_on_delete(daemonset("foo"));
    let e = rows(
        &on_delete,
        &[node("n")],
        vec![available(&on_delete, "n", OLD)],
    );
    assert_eq!(
        only(&e).reason.to_string(),
        "outdated, waiting for a manual delete (updateStrategy OnDelete)"
    );
    assert_eq!(
        e.summary(),
        "1 node: 1 waiting for a manual delete (OnDelete)"
    );
}

#[test]
fn surge_rows_say_the_new_pod_is_not_available_yet() {
    let ds = with_rolling_update(
        daemonset("foo"),
        Some(IntOrString::Int(0)),
        Some(IntOrString::Int(1)),
    );
    let mut new = with_name(ds_pod(&ds, "n0", NEW), "foo-n0-new");
    new = with_creation_timestamp(new, 50);
    let pods = vec![available(&ds, "n0", OLD), new, available(&ds, "n1", OLD)];
    let nodes = [node("n0"), node("n1")];
    let e = rows(&ds, &nodes, pods);
    // n0's row is about its new pod, which is starting; n1 waits for maxSurge held by n0.
    assert_eq!(
        e.rows[0].pod.as_ref().map(|p| p.name.as_str()),
        Some("foo-n0-new")
    );
    assert_eq!(e.rows[0].reason.state(), "Starting");
    assert_eq!(
        e.rows[1].reason.to_string(),
        "outdated, waiting: the budget maxSurge=1 is held by n0, whose new pods are not available yet"
    );
}

#[test]
fn the_json_form_is_tagged_and_camel_cased() {
    let tainted = with_taint(node("n"), "k", "", "NoSchedule");
    let e = rows(&daemonset("foo"), &[tainted], vec![]);
    let json = serde_json::to_value(&e).expect("serializes");
    assert_eq!(
        json["rows"][0]["reason"],
        serde_json::json!({"kind": "excluded", "exclusion": {"rule": "taint", "key": "k", "value": "", "effect": "NoSchedule"}})
    );
    assert_eq!(json["counters"]["desiredNumberScheduled"], 0);
}

/// Random situations: every row agrees with placement and the status counters.
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn situation() -> impl Strategy<Value = (DaemonSet, Vec<CachedNode>, Vec<CachedPod>)> {
        let node_spec = (any::<bool>(), 0u8..4, 0u8..3);
        let pod_spec = (0u8..5, any::<bool>(), 0u8..4, any::<bool>());
        (
            proptest::collection::vec(node_spec, 1..8),
            proptest::collection::vec(pod_spec, 0..12),
            any::<bool>(),
            0u8..3,
        )
            .prop_map(|(node_specs, pod_specs, on_delete, surge)| {
                let mut ds = with_node_selector(daemonset("foo"), &[("run", "yes")]);
                ds = if on_delete {
                    with_on_delete(ds)
                } else {
                    with_rolling_update(
                        ds,
                        Some(IntOrString::Int(if surge == 0 { 1 } else { 0 })),
                        Some(IntOrString::Int(i32::from(surge))),
                    )
                };
                let nodes: Vec<CachedNode> = node_specs
                    .iter()
                    .enumerate()
                    .map(|(i, (labelled, taint, _))| {
                        let mut n = node(&format!("n{i}"));
                        if *labelled {
                            n = with_node_labels(n, &[("run", "yes")]);
                        }
                        match taint {
                            1 => with_taint(n, "t", "", "NoSchedule"),
                            2 => with_taint(n, "t", "", "NoExecute"),
                            _ => n,
                        }
                    })
                    .collect();
                let pods = pod_specs
                    .iter()
                    .enumerate()
                    .map(|(i, (node_i, new, state, terminating))| {
                        let node_name = format!("n{}", node_i % 8);
                        let mut p = with_name(
                            ds_pod(&ds, &node_name, if *new { NEW } else { OLD }),
                            &format!("p{i}"),
                        );
                        p = with_creation_timestamp(p, i as i64);
                        p = match state {
                            0 => running_ready(p, 0),
                            1 => with_phase(p, "Pending"),
                            2 => with_phase(p, "Failed"),
                            _ => running_ready(p, NOW - 1),
                        };
                        if *terminating {
                            p = with_deletion_timestamp(p, 1);
                        }
                        p
                    })
                    .collect();
                (with_min_ready_seconds(ds, 5), nodes, pods)
            })
    }

    proptest! {
        #[test]
        fn rows_agree_with_placement_and_the_counters((ds, nodes, pods) in situation()) {
            let node_pods = by_node(pods);
            let e = explain(&ds, &nodes, &node_pods, NEW, ts(NOW), &Context::default());
            prop_assert_eq!(e.rows.len(), nodes.len());
            for (row, node) in e.rows.iter().zip(&nodes) {
                prop_assert_eq!(row.wanted, placement(node, &ds).should_run);
                prop_assert_eq!(row.class() == ReasonClass::Excluded, !row.wanted);
            }
            let wanted = e.rows.iter().filter(|r| r.wanted).count();
            prop_assert_eq!(wanted as i32, e.counters.desired_number_scheduled);
            let misscheduled = e
                .rows
                .iter()
                .filter(|r| matches!(r.reason, Reason::Misscheduled { .. } | Reason::Removing { .. }))
                .count();
            prop_assert_eq!(misscheduled as i32, e.counters.number_misscheduled);
            let total: usize = e.by_class().values().sum();
            prop_assert_eq!(total, nodes.len());
            // The summary counts every node once.
            let summary = e.summary();
            let counted: usize = summary
                .split_once(": ")
                .map(|(_, parts)| {
                    parts
                        .split(", ")
                        .filter_map(|p| p.split(' ').next()?.parse::<usize>().ok())
                        .sum()
                })
                .unwrap_or(0);
            prop_assert_eq!(counted, nodes.len(), "{}", summary);
            // Classes only (the controller's sync): the same counters and reasons, except that an
            // outdated pod's wait is not worked out.
            let lean = Context { classes_only: true, ..Context::default() };
            let without = explain(&ds, &nodes, &node_pods, NEW, ts(NOW), &lean);
            prop_assert_eq!(&without.counters, &e.counters);
            for (a, b) in without.rows.iter().zip(&e.rows) {
                prop_assert_eq!(a.class(), b.class());
                match (&a.reason, &b.reason) {
                    (Reason::Outdated(OutdatedWait::NextSync), Reason::Outdated(OutdatedWait::Rollout { .. } | OutdatedWait::BeingReplaced | OutdatedWait::NextSync)) => {}
                    (a, b) => prop_assert_eq!(a, b),
                }
                prop_assert_eq!((&a.node, a.wanted), (&b.node, b.wanted));
                prop_assert!(a.pod.is_none());
            }
            prop_assert_eq!(without.rows.len(), e.rows.len());
        }
    }
}

/// A rollout plan holding `waits` (what `plan_rollout` decides; the rows only read `waits`).
fn policy(waits: &[(&str, PolicyWait)]) -> crate::core::rollout::RolloutPlan {
    crate::core::rollout::RolloutPlan {
        waits: waits
            .iter()
            .map(|(n, w)| (n.to_string(), w.clone()))
            .collect(),
        ..Default::default()
    }
}

fn rows_with(
    ds: &DaemonSet,
    nodes: &[CachedNode],
    pods: Vec<CachedPod>,
    plan: &crate::core::rollout::RolloutPlan,
) -> Explanation {
    explain(
        ds,
        nodes,
        &by_node(pods),
        NEW,
        ts(NOW),
        &Context {
            backoff_until: None,
            rollout: Some(plan),
            rolling_update: None,
            classes_only: false,
        },
    )
}

#[test]
fn rows_the_rollout_policy_holds_name_the_policy() {
    let ds = daemonset("foo"); // RollingUpdate, maxUnavailable 1
    let nodes: Vec<CachedNode> = (0..4).map(|i| node(&format!("n{i}"))).collect();
    let pods = || {
        vec![
            available(&ds, "n0", NEW),
            available(&ds, "n1", OLD),
            available(&ds, "n2", OLD),
        ]
    };
    let partition = PolicyWait::Partition {
        rollout: "foo".into(),
        partition: 1,
    };
    let frozen = PolicyWait::Frozen {
        rollout: "foo".into(),
    };
    let plan = policy(&[("n2", partition.clone()), ("n3", frozen.clone())]);
    let e = rows_with(&ds, &nodes, pods(), &plan);
    let reasons: Vec<String> = e.rows.iter().map(|r| r.reason.to_string()).collect();
    assert_eq!(reasons[0], "up to date");
    // n1 is not held by the policy: upstream's reason (n3, without a pod, holds the budget).
    assert_eq!(
        reasons[1],
        "outdated, waiting: the budget maxUnavailable=1 is held by n3"
    );
    assert_eq!(
        reasons[2],
        "outdated, held by partition 1 (DaemonSetRollout foo keeps the last 1 nodes in update order on the old revision)"
    );
    assert_eq!(e.rows[2].reason.state(), "Outdated");
    assert_eq!(e.rows[2].class(), ReasonClass::Waiting);
    assert_eq!(
        reasons[3],
        "no pod: DaemonSetRollout foo freezes this DaemonSet (kubectl everynode unfreeze daemonset/foo)"
    );
    assert_eq!(e.rows[3].reason.state(), "Frozen");
    assert_eq!(e.rows[3].class(), ReasonClass::Waiting);
    assert_eq!(
        e.summary(),
        "4 nodes: 1 runs an up-to-date available pod, 1 waiting for the budget, 1 held by partition, 1 frozen"
    );
    // The policy's wait is tagged in JSON.
    let json = serde_json::to_value(&e.rows[2]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["reason"]["kind"], "outdated");
    assert_eq!(json["reason"]["wait"], "policy");
    assert_eq!(json["reason"]["policy"], "partition");
    assert_eq!(json["reason"]["partition"], 1);
    // Without a plan, the same cluster gives upstream's rows.
    let plain = rows(&ds, &nodes, pods());
    assert_eq!(plain.rows[3].reason, Reason::NoPod);
    assert!(matches!(
        plain.rows[2].reason,
        Reason::Outdated(OutdatedWait::Rollout { .. })
    ));
    // The counters never depend on the policy.
    assert_eq!(plain.counters, e.counters);
}

#[test]
fn a_deletion_the_guard_holds_is_excluded_and_says_how_to_let_it_go() {
    let ds = with_node_selector(daemonset("foo"), &[("disktype", "ssd")]);
    let n = node_with_labels("n", &[("disktype", "hdd")]);
    let held = PolicyWait::DeletionHeld {
        rollout: "foo".into(),
        pods: 9,
        of: 12,
    };
    let e = rows_with(
        &ds,
        &[n],
        vec![available(&ds, "n", NEW)],
        &policy(&[("n", held)]),
    );
    assert_eq!(only(&e).reason.state(), "Held");
    assert_eq!(only(&e).class(), ReasonClass::Excluded);
    assert_eq!(
        only(&e).reason.to_string(),
        "nodeSelector disktype=ssd: node has disktype=hdd; deletion held by the mass-deletion guard (9 of 12 pods would go; kubectl everynode approve daemonset/foo, or revert the change)"
    );
    assert_eq!(e.summary(), "1 node: 1 deletion held");
}
