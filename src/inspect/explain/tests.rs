use super::{View, render};
use crate::core::fixtures::*;
use crate::core::node_reason::{Context, Explanation, explain};
use crate::core::pods_by_node::group_by_node;
use crate::inspect::InspectError;
use crate::runtime::cli::OutputFormat;
use std::sync::Arc;

/// Four nodes of DaemonSet `agent` on revision `new` at t=100: `a` runs an available new pod, `b`
/// is tainted NoSchedule without a pod, `c` runs an old pod that waits for the budget
/// maxUnavailable=1, which `d` holds with a new pod not Ready yet.
fn scene() -> Explanation {
    let ds = daemonset("agent");
    let nodes = vec![
        node("a"),
        with_taint(node("b"), "dedicated", "gpu", "NoSchedule"),
        node("c"),
        node("d"),
    ];
    let pods: Vec<Arc<CachedPod>> = vec![
        Arc::new(running_ready(ds_pod(&ds, "a", "new"), 10)),
        Arc::new(running_ready(ds_pod(&ds, "c", "old"), 5)),
        Arc::new(with_phase(ds_pod(&ds, "d", "new"), "Pending")),
    ];
    explain(
        &ds,
        &nodes,
        &group_by_node(pods.iter(), false),
        "new",
        ts(100),
        &Context::default(),
    )
}

use crate::core::cached_pod::CachedPod;

fn view(output: Option<OutputFormat>, node: Option<&'static str>) -> View<'static> {
    View {
        namespace: "default",
        name: "agent",
        revision: "new",
        node,
        output,
        rollout: None,
        note: None,
    }
}

fn rendered(output: Option<OutputFormat>, node: Option<&'static str>) -> String {
    render(&scene(), &view(output, node)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_table_has_one_aligned_row_per_node_and_the_summary() {
    assert_eq!(
        rendered(None, None),
        "\
NODE   WANTED   POD       REVISION   STATE       REASON
a      yes      agent-a   new        Available   up to date
b      no       -         -          Excluded    untolerated taint dedicated=gpu:NoSchedule
c      yes      agent-c   old        Outdated    outdated, waiting: the budget maxUnavailable=1 is held by d
d      yes      agent-d   new        Starting    not Ready yet
4 nodes: 1 runs an up-to-date available pod, 1 excluded by taint, 1 waiting for the budget, 1 starting a pod
"
    );
}

#[test]
fn wide_adds_the_pods_details_and_the_class() {
    assert_eq!(
        rendered(Some(OutputFormat::Wide), None),
        "\
NODE   WANTED   POD       REVISION   UP-TO-DATE   STATE       CLASS      PHASE     READY SINCE            RESTARTS   REASON
a      yes      agent-a   new        yes          Available   ok         Running   1970-01-01T00:00:10Z   0          up to date
b      no       -         -          -            Excluded    excluded   -         -                      -          untolerated taint dedicated=gpu:NoSchedule
c      yes      agent-c   old        no           Outdated    waiting    Running   1970-01-01T00:00:05Z   0          outdated, waiting: the budget maxUnavailable=1 is held by d
d      yes      agent-d   new        yes          Starting    waiting    Pending   -                      0          not Ready yet
4 nodes: 1 runs an up-to-date available pod, 1 excluded by taint, 1 waiting for the budget, 1 starting a pod
"
    );
}

#[test]
fn json_has_the_key_rows_reasons_counters_and_summary() {
    let text = rendered(Some(OutputFormat::Json), None);
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        doc["daemonSet"],
        serde_json::json!({"namespace": "default", "name": "agent"})
    );
    assert_eq!(doc["revision"], "new");
    assert_eq!(
        doc["summary"],
        "4 nodes: 1 runs an up-to-date available pod, 1 excluded by taint, 1 waiting for the budget, 1 starting a pod"
    );
    assert_eq!(
        doc["counters"],
        serde_json::json!({
            "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0,
            "numberReady": 2, "updatedNumberScheduled": 2, "numberAvailable": 2,
            "numberUnavailable": 1
        })
    );
    assert_eq!(
        doc["byClass"],
        serde_json::json!({"ok": 1, "excluded": 1, "waiting": 2, "failed": 0})
    );
    assert!(
        text.contains(
            "\"byClass\": {\n    \"ok\": 1,\n    \"excluded\": 1,\n    \"waiting\": 2,\n    \"failed\": 0\n  }"
        ),
        "byClass in the classes' order: {text}"
    );
    let nodes = doc["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 4);
    assert_eq!(
        nodes[1],
        serde_json::json!({
            "node": "b", "wanted": false, "pod": null,
            "reason": {"kind": "excluded", "exclusion": {"rule": "taint", "key": "dedicated", "value": "gpu", "effect": "NoSchedule"}},
            "state": "Excluded", "class": "excluded",
            "message": "untolerated taint dedicated=gpu:NoSchedule"
        })
    );
    assert_eq!(
        nodes[2]["reason"],
        serde_json::json!({
            "kind": "outdated", "wait": "rollout", "rule": "maxUnavailable", "limit": 1,
            "heldBy": ["d"], "heldByTotal": 1
        })
    );
    assert_eq!(
        nodes[0]["pod"],
        serde_json::json!({
            "name": "agent-a", "revision": "new", "updated": true, "phase": "Running",
            "readySince": "1970-01-01T00:00:10Z", "available": true, "restarts": 0
        })
    );
}

#[test]
fn node_shows_one_row_and_the_whole_summary() {
    assert_eq!(
        rendered(None, Some("b")),
        "\
NODE   WANTED   POD   REVISION   STATE      REASON
b      no       -     -          Excluded   untolerated taint dedicated=gpu:NoSchedule
4 nodes: 1 runs an up-to-date available pod, 1 excluded by taint, 1 waiting for the budget, 1 starting a pod
"
    );
    let json: serde_json::Value =
        serde_json::from_str(&rendered(Some(OutputFormat::Json), Some("c")))
            .unwrap_or_else(|e| panic!("{e}"));
    let nodes = json["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["node"], "c");
    assert_eq!(json["counters"]["desiredNumberScheduled"], 3);
}

#[test]
fn an_unknown_node_is_one_sentence() {
    let err = render(&scene(), &view(None, Some("zz")));
    assert!(
        matches!(&err, Err(InspectError::NodeNotFound(n)) if n == "zz"),
        "{err:?}"
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("node \"zz\" not found".to_string())
    );
}

#[test]
fn a_daemonset_without_nodes_says_so() {
    let empty = Explanation {
        rows: vec![],
        counters: Default::default(),
    };
    assert_eq!(
        render(&empty, &view(None, None)).unwrap_or_else(|e| panic!("{e}")),
        "NODE   WANTED   POD   REVISION   STATE   REASON\n0 nodes\n"
    );
}

#[test]
fn json_reasons_of_every_placement_rule_have_one_rule_key() {
    let by_selector = with_node_selector(daemonset("agent"), &[("disktype", "ssd")]);
    let nodes = vec![
        node_with_labels("hdd", &[("disktype", "hdd")]),
        node("bare"),
    ];
    let none = group_by_node(std::iter::empty(), false);
    let by_name = with_template_node_name(daemonset("agent"), "other");
    let by_affinity = with_affinity(
        daemonset("agent"),
        required_affinity("zone", "In", &["a", "b"]),
    );
    let mut text = String::new();
    for ds in [&by_selector, &by_name, &by_affinity] {
        let e = explain(ds, &nodes, &none, "new", ts(100), &Context::default());
        text.push_str(
            &render(&e, &view(Some(OutputFormat::Json), None)).unwrap_or_else(|e| panic!("{e}")),
        );
        text.push('\n');
    }
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    let exclusions: Vec<&serde_json::Value> = docs
        .iter()
        .flat_map(|d| d["nodes"].as_array().into_iter().flatten())
        .map(|n| &n["reason"]["exclusion"])
        .collect();
    assert_eq!(
        exclusions,
        [
            &serde_json::json!({"rule": "nodeSelector", "key": "disktype", "value": "ssd", "nodeValue": "hdd"}),
            &serde_json::json!({"rule": "nodeSelector", "key": "disktype", "value": "ssd", "nodeValue": null}),
            &serde_json::json!({"rule": "nodeName", "nodeName": "other"}),
            &serde_json::json!({"rule": "nodeName", "nodeName": "other"}),
            &serde_json::json!({"rule": "nodeAffinity", "terms": ["zone In [a,b]"]}),
            &serde_json::json!({"rule": "nodeAffinity", "terms": ["zone In [a,b]"]}),
        ]
    );
    // One "rule" key per exclusion in the text itself: a parser keeps one of duplicate keys, so
    // the values above cannot show them.
    assert_eq!(text.matches("\"rule\":").count(), 6, "{text}");
}

#[test]
fn an_excluded_node_says_removing_until_its_terminating_pod_is_gone() {
    let ds = with_node_selector(daemonset("agent"), &[("disktype", "ssd")]);
    let nodes = vec![node_with_labels("b", &[("disktype", "hdd")])];
    let line = |pod: Option<CachedPod>| {
        let pods: Vec<Arc<CachedPod>> = pod.into_iter().map(Arc::new).collect();
        let e = explain(
            &ds,
            &nodes,
            &group_by_node(pods.iter(), false),
            "new",
            ts(100),
            &Context::default(),
        );
        let table = render(&e, &view(None, None)).unwrap_or_else(|e| panic!("{e}"));
        table.lines().nth(1).unwrap_or_default().to_string()
    };
    let running = running_ready(ds_pod(&ds, "b", "new"), 10);
    assert_eq!(
        line(Some(running.clone())),
        "b      no       agent-b   new        Removing   nodeSelector disktype=ssd: node has disktype=hdd: the pod is being deleted"
    );
    assert_eq!(
        line(Some(with_deletion_timestamp(running, 90))),
        "b      no       agent-b   new        Removing   nodeSelector disktype=ssd: node has disktype=hdd: the pod is being deleted"
    );
    assert_eq!(
        line(None),
        "b      no       -     -          Excluded   nodeSelector disktype=ssd: node has disktype=hdd"
    );
}

#[test]
fn summary_parts_hold_no_comma_of_their_own() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    // A budget that does not parse: the rolling update has no plan, outdated pods wait for the
    // controller (OutdatedWait::NextSync).
    let ds = with_rolling_update(
        daemonset("agent"),
        Some(IntOrString::String("bogus".into())),
        None,
    );
    let nodes = vec![node("a"), node("b")];
    let pods: Vec<Arc<CachedPod>> = vec![
        Arc::new(running_ready(ds_pod(&ds, "a", "old"), 5)),
        Arc::new(running_ready(ds_pod(&ds, "b", "new"), 5)),
    ];
    let e = explain(
        &ds,
        &nodes,
        &group_by_node(pods.iter(), false),
        "new",
        ts(100),
        &Context::default(),
    );
    assert_eq!(
        e.summary(),
        "2 nodes: 1 runs an up-to-date available pod, 1 waiting for the controller to update"
    );
    let parts = e.summary().split_once(": ").map(|(_, p)| p.to_string());
    for part in parts.iter().flat_map(|p| p.split(", ")) {
        assert!(
            part.starts_with(|c: char| c.is_ascii_digit()),
            "{part:?} in {:?}",
            e.summary()
        );
    }
}

#[test]
fn a_daemonset_rollout_is_one_line_above_the_table_and_rollout_in_json() {
    use crate::api::{DaemonSetRolloutStatus, Phase};
    let status = DaemonSetRolloutStatus {
        phase: Some(Phase::Paused),
        updated_nodes: 2,
        desired_nodes: 3,
        ..Default::default()
    };
    let mut v = view(None, None);
    v.rollout = Some(super::RolloutView {
        name: "agent",
        status: &status,
    });
    let table = render(&scene(), &v).unwrap_or_else(|e| panic!("{e}"));
    let first = table.lines().next().unwrap_or_default();
    assert_eq!(first, "DaemonSetRollout agent: Paused, 2/3 updated");
    // The rest is the table without the line.
    assert_eq!(
        table.split_once('\n').map(|(_, rest)| rest),
        Some(rendered(None, None).as_str())
    );
    v.output = Some(OutputFormat::Json);
    let json: serde_json::Value =
        serde_json::from_str(&render(&scene(), &v).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["rollout"]["name"], "agent");
    assert_eq!(json["rollout"]["phase"], "Paused");
    assert_eq!(json["rollout"]["updatedNodes"], 2);
    // Without one, no `rollout` key (the document is today's).
    let plain: serde_json::Value = serde_json::from_str(&rendered(Some(OutputFormat::Json), None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(plain.get("rollout").is_none(), "{plain}");
}
