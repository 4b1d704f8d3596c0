//! `everynode explain` on the real control plane, run as a user runs it (the built binary with a
//! kubeconfig, and through kubectl as the `kubectl everynode` plugin), while everynode runs the
//! DaemonSets: a tainted node, a relabelled node, a node added later, a NoSchedule taint on a node
//! that keeps its pod, a pod the scheduler cannot place, a rollout waiting for its budget, OnDelete,
//! and the mistakes (unknown DaemonSet, namespace, node) that get one sentence.
//!
//! Every test checks what each output says against the others: the summary counts the rows, and
//! once the controller has synced, `-o json`'s counters are the DaemonSet's status counters.

mod support;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{TestEnv, daemonset, everynode, taint, wait_for};

/// What one run of the binary gave.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `program` with `args` and the environment `vars` (RUST_LOG unset: the operator commands
/// must not log unless asked).
async fn run_program(program: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {} did not finish in 60 s",
                program.display(),
                args.join(" ")
            )
        })
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_everynode"))
}

/// `everynode explain -n <test namespace> <args>` with the control plane's kubeconfig.
async fn explain(env: &TestEnv, args: &[&str]) -> Run {
    let kubeconfig = format!("--kubeconfig={}", env.cp.kubeconfig().display());
    let mut all = vec!["explain", kubeconfig.as_str(), "-n", env.ns.as_str()];
    all.extend_from_slice(args);
    run_program(binary(), &all, &[]).await
}

/// `explain <args>` that must succeed: its stdout.
async fn explain_ok(env: &TestEnv, args: &[&str]) -> String {
    let run = explain(env, args).await;
    assert!(
        run.code == Some(0) && run.stderr.is_empty(),
        "everynode explain {args:?} failed or wrote to stderr: {run:?}"
    );
    run.stdout
}

/// `explain <ds> -o json`, parsed and checked for consistency ([`assert_consistent`]).
async fn explain_json(env: &TestEnv, ds: &str) -> Value {
    let text = explain_ok(env, &[ds, "-o", "json"]).await;
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("-o json does not parse: {e}\n{text}"));
    assert_consistent(&doc);
    doc
}

/// The row of `node` in a `-o json` document.
fn row<'a>(doc: &'a Value, node: &str) -> &'a Value {
    doc["nodes"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["node"] == node))
        .unwrap_or_else(|| panic!("no row for {node} in {doc:#}"))
}

/// The summary `N nodes: a phrase, b phrase, ...` as (N, [(a, phrase), ...]).
fn parse_summary(summary: &str) -> (usize, Vec<(usize, String)>) {
    let (head, rest) = summary.split_once(": ").unwrap_or((summary, ""));
    let total = head
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary {summary:?} does not start with a number of nodes"));
    let parts = rest
        .split(", ")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, phrase) = p
                .split_once(' ')
                .unwrap_or_else(|| panic!("summary part {p:?} of {summary:?}"));
            let n = n
                .parse()
                .unwrap_or_else(|_| panic!("summary part {p:?} of {summary:?} has no count"));
            (n, phrase.to_string())
        })
        .collect();
    (total, parts)
}

/// The summary counts exactly the rows: its total is the number of rows, its parts add up to it,
/// the "up-to-date available" part is the number of rows of class ok, and byClass counts the rows.
fn assert_consistent(doc: &Value) {
    let rows = doc["nodes"].as_array().cloned().unwrap_or_default();
    let summary = doc["summary"].as_str().unwrap_or_default();
    let (total, parts) = parse_summary(summary);
    assert_eq!(
        total,
        rows.len(),
        "the summary's total is the rows: {doc:#}"
    );
    assert_eq!(
        parts.iter().map(|(n, _)| n).sum::<usize>(),
        rows.len(),
        "the summary's parts add up to the rows: {summary}"
    );
    let ok = rows.iter().filter(|r| r["class"] == "ok").count();
    let said_ok = parts
        .iter()
        .find(|(_, p)| p.ends_with("an up-to-date available pod"))
        .map_or(0, |(n, _)| *n);
    assert_eq!(ok, said_ok, "rows of class ok against {summary}");
    for class in ["ok", "excluded", "waiting", "failed"] {
        let n = rows.iter().filter(|r| r["class"] == class).count();
        assert_eq!(doc["byClass"][class], n, "byClass.{class} in {doc:#}");
    }
}

/// The part of the summary with `phrase` (e.g. `excluded by taint`): its count.
fn summary_count(doc: &Value, phrase: &str) -> usize {
    let (_, parts) = parse_summary(doc["summary"].as_str().unwrap_or_default());
    parts
        .iter()
        .find(|(_, p)| p == phrase)
        .map_or(0, |(n, _)| *n)
}

/// Polls `explain <ds> -o json` until `check` accepts it; returns that document.
async fn wait_explained(
    env: &TestEnv,
    ds: &str,
    what: &str,
    check: impl Fn(&Value) -> Result<(), String>,
) -> Value {
    let check = &check;
    wait_for(what, Duration::from_secs(90), || async move {
        let doc = explain_json(env, ds).await;
        check(&doc)
            .map(|()| doc.clone())
            .map_err(|e| format!("{e}\n{doc:#}"))
    })
    .await
}

/// Until the row of `node` is in `state`.
async fn wait_state(env: &TestEnv, ds: &str, node: &str, state: &str) -> Value {
    wait_explained(
        env,
        ds,
        &format!("{node} to be {state}"),
        |doc| match row(doc, node)["state"].as_str() {
            Some(s) if s == state => Ok(()),
            other => Err(format!("{node} is {other:?}")),
        },
    )
    .await
}

/// Waits until explain's counters are the DaemonSet's status counters and the status is of the
/// current generation (the controller has synced what explain sees).
async fn wait_counters_are_the_status(env: &TestEnv, ds: &str) -> Value {
    let api: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let api = &api;
    wait_for(
        &format!("explain's counters of {ds} to equal its status"),
        Duration::from_secs(60),
        || async move {
            let doc = explain_json(env, ds).await;
            let d = api.get(ds).await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            let status = json!({
                "desiredNumberScheduled": s.desired_number_scheduled,
                "currentNumberScheduled": s.current_number_scheduled,
                "numberMisscheduled": s.number_misscheduled,
                "numberReady": s.number_ready,
                "updatedNumberScheduled": s.updated_number_scheduled.unwrap_or(0),
                "numberAvailable": s.number_available.unwrap_or(0),
                "numberUnavailable": s.number_unavailable.unwrap_or(0),
            });
            if doc["counters"] == status && s.observed_generation == d.metadata.generation {
                Ok(doc)
            } else {
                Err(format!(
                    "explain {}, status {status} (observedGeneration {:?} of {:?})",
                    doc["counters"], s.observed_generation, d.metadata.generation
                ))
            }
        },
    )
    .await
}

/// The cells of `node`'s line of a table, as (column, value): the header's words give the columns'
/// offsets (kubectl's alignment: a column starts after three or more spaces).
fn table_cells(table: &str, node: &str) -> Vec<(String, String)> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let line = lines
        .find(|l| l.split(' ').next() == Some(node))
        .unwrap_or_else(|| panic!("no line for {node} in\n{table}"));
    // Column starts: where a header word begins after 3+ spaces (or at 0).
    let mut starts = vec![0];
    let bytes: Vec<char> = header.chars().collect();
    for i in 3..bytes.len() {
        if bytes[i] != ' ' && bytes[i - 1] == ' ' && bytes[i - 2] == ' ' && bytes[i - 3] == ' ' {
            starts.push(i);
        }
    }
    let chars: Vec<char> = line.chars().collect();
    let slice = |from: usize, to: usize, of: &[char]| -> String {
        of.iter()
            .skip(from)
            .take(to.saturating_sub(from))
            .collect::<String>()
            .trim()
            .to_string()
    };
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let end = starts.get(i + 1).copied().unwrap_or(usize::MAX);
            (slice(s, end, &bytes), slice(s, end, &chars))
        })
        .collect()
}

fn cell<'a>(cells: &'a [(String, String)], column: &str) -> &'a str {
    cells
        .iter()
        .find(|(h, _)| h == column)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no column {column} in {cells:?}"))
}

/// The table's last line: the summary.
fn table_summary(table: &str) -> &str {
    table.lines().last().unwrap_or_default()
}

/// Nodes `a` and `b` (`b` tainted example.com/dedicated=gpu:NoSchedule) and DaemonSet `agent`,
/// with its pod on `a` only.
async fn agent_beside_a_tainted_node(env: &TestEnv) -> (String, String) {
    let a = env.add_node("a", &[], vec![]).await;
    let b = env
        .add_node(
            "b",
            &[],
            vec![taint("example.com/dedicated", "gpu", "NoSchedule")],
        )
        .await;
    env.create_daemonset(&daemonset(env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&a]).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tainted_node_is_excluded_by_its_taint() {
    everynode();
    let env = TestEnv::new("ex-taint").await;
    let (a, b) = agent_beside_a_tainted_node(&env).await;
    let doc = wait_counters_are_the_status(&env, "agent").await;
    assert_eq!(row(&doc, &a)["state"], "Available");
    let excluded = row(&doc, &b);
    assert_eq!(excluded["wanted"], false);
    assert_eq!(excluded["pod"], Value::Null);
    assert_eq!(excluded["state"], "Excluded");
    assert_eq!(
        excluded["message"],
        "untolerated taint example.com/dedicated=gpu:NoSchedule"
    );
    assert_eq!(
        excluded["reason"],
        json!({"kind": "excluded", "exclusion": {"rule": "taint", "key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}})
    );
    assert!(summary_count(&doc, "excluded by taint") >= 1, "{doc:#}");
    assert_eq!(
        doc["daemonSet"],
        json!({"namespace": env.ns, "name": "agent"})
    );

    // The table says the same, in kubectl's columns, and ends with the same summary.
    let table = explain_ok(&env, &["daemonset/agent"]).await;
    let cells = table_cells(&table, &b);
    assert_eq!(
        cells.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        ["NODE", "WANTED", "POD", "REVISION", "STATE", "REASON"]
    );
    assert_eq!(cell(&cells, "WANTED"), "no");
    assert_eq!(cell(&cells, "POD"), "-");
    assert_eq!(cell(&cells, "STATE"), "Excluded");
    assert_eq!(
        cell(&cells, "REASON"),
        "untolerated taint example.com/dedicated=gpu:NoSchedule"
    );
    let pod = doc_pod_name(&doc, &a);
    let cells = table_cells(&table, &a);
    assert_eq!(cell(&cells, "POD"), pod);
    assert_eq!(
        cell(&cells, "REVISION"),
        doc["revision"].as_str().unwrap_or("?")
    );
    assert_eq!(cell(&cells, "REASON"), "up to date");
    // The summary under the table counts the table's rows (other tests' nodes come and go, so it
    // is not compared with an earlier call's).
    let summary = table_summary(&table);
    let rows = table.lines().count() - 2;
    assert!(
        summary.starts_with(&format!(
            "{rows} nodes: 1 runs an up-to-date available pod, "
        )),
        "{table}"
    );
    assert!(summary.contains(", 1 excluded by taint"), "{table}");

    // --node: that row only; -o wide: the pod's details and the class.
    let one = explain_ok(&env, &["agent", "--node", &b]).await;
    assert_eq!(one.lines().count(), 3, "header, one row, summary:\n{one}");
    let wide = explain_ok(&env, &["ds/agent", "-o", "wide"]).await;
    let cells = table_cells(&wide, &a);
    assert_eq!(cell(&cells, "CLASS"), "ok");
    assert_eq!(cell(&cells, "PHASE"), "Running");
    assert_eq!(cell(&cells, "RESTARTS"), "0");
    assert_eq!(cell(&cells, "UP-TO-DATE"), "yes");
    assert_eq!(
        cell(&cells, "READY SINCE"),
        doc_pod(&doc, &a)["readySince"].as_str().unwrap_or("?")
    );
    assert_eq!(cell(&table_cells(&wide, &b), "CLASS"), "excluded");
}

fn doc_pod<'a>(doc: &'a Value, node: &str) -> &'a Value {
    &row(doc, node)["pod"]
}

fn doc_pod_name(doc: &Value, node: &str) -> String {
    doc_pod(doc, node)["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{node} has no pod: {doc:#}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relabelled_node_names_the_label_it_has_or_lacks() {
    everynode();
    let env = TestEnv::new("ex-relabel").await;
    let a = env.add_node("a", &[("disktype", "ssd")], vec![]).await;
    let b = env.add_node("b", &[("disktype", "ssd")], vec![]).await;
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"template": {"spec": {"nodeSelector": {"disktype": "ssd"}}}}}),
    ))
    .await;
    env.wait_pods_exactly_on("agent", &[&a, &b]).await;

    env.patch_node(&b, json!({"metadata": {"labels": {"disktype": "hdd"}}}))
        .await;
    // Removing while its pod goes (terminating included), then Excluded without a pod.
    let doc = wait_state(&env, "agent", &b, "Excluded").await;
    assert_eq!(
        row(&doc, &b)["message"],
        "nodeSelector disktype=ssd: node has disktype=hdd"
    );
    assert_eq!(
        row(&doc, &b)["reason"]["exclusion"],
        json!({"rule": "nodeSelector", "key": "disktype", "value": "ssd", "nodeValue": "hdd"})
    );
    assert_eq!(row(&doc, &b)["pod"], Value::Null, "its pod is gone");
    assert!(
        summary_count(&doc, "excluded by nodeSelector") >= 1,
        "{doc:#}"
    );
    wait_counters_are_the_status(&env, "agent").await;

    env.patch_node(&b, json!({"metadata": {"labels": {"disktype": null}}}))
        .await;
    let doc = wait_explained(&env, "agent", "the label to be gone", |doc| {
        match row(doc, &b)["message"].as_str() {
            Some("nodeSelector disktype=ssd: node lacks label disktype") => Ok(()),
            other => Err(format!("{b}: {other:?}")),
        }
    })
    .await;
    assert_eq!(row(&doc, &a)["state"], "Available");
    let table = explain_ok(&env, &["agent"]).await;
    assert_eq!(
        cell(&table_cells(&table, &b), "REASON"),
        "nodeSelector disktype=ssd: node lacks label disktype"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_added_after_the_daemonset_is_missing_then_available() {
    everynode();
    let env = TestEnv::new("ex-added").await;
    let a = env.add_node("a", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&a]).await;

    // A pod quota of 1 holds the new node's pod back, so that it is seen without one.
    let quotas: Api<ResourceQuota> = Api::namespaced(env.client.clone(), &env.ns);
    let quota: ResourceQuota = serde_json::from_value(
        json!({"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}}),
    )
    .unwrap_or_else(|e| panic!("quota: {e}"));
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .unwrap_or_else(|e| panic!("create quota: {e}"));
    wait_for(
        "the quota to count the pod",
        Duration::from_secs(60),
        || async {
            let q = quotas.get("one-pod").await.map_err(|e| e.to_string())?;
            let used = q
                .status
                .and_then(|s| s.used)
                .and_then(|u| u.get("pods").cloned());
            match used {
                Some(n) if n.0 == "1" => Ok(()),
                other => Err(format!("used pods {other:?}")),
            }
        },
    )
    .await;

    let b = env.add_node("b", &[], vec![]).await;
    let doc = wait_state(&env, "agent", &b, "Missing").await;
    let missing = row(&doc, &b);
    assert_eq!(missing["wanted"], true);
    assert_eq!(missing["pod"], Value::Null);
    assert_eq!(missing["message"], "no pod yet: the controller creates one");
    assert_eq!(missing["class"], "waiting");
    assert_eq!(summary_count(&doc, "waiting for a pod to be created"), 1);

    quotas
        .delete("one-pod", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete quota: {e}"));
    let doc = wait_state(&env, "agent", &b, "Available").await;
    assert_eq!(row(&doc, &b)["message"], "up to date");
    env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    let doc = wait_counters_are_the_status(&env, "agent").await;
    assert_eq!(doc["counters"]["numberAvailable"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_noschedule_taint_on_a_node_that_keeps_its_pod_is_misscheduled() {
    everynode();
    let env = TestEnv::new("ex-missched").await;
    let a = env.add_node("a", &[], vec![]).await;
    let b = env.add_node("b", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let pods = env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    let kept = pods
        .get(&b)
        .and_then(|p| p.metadata.name.clone())
        .unwrap_or_default();

    env.patch_node(
        &b,
        json!({"spec": {"taints": [{"key": "maintenance", "value": "soon", "effect": "NoSchedule"}]}}),
    )
    .await;
    let doc = wait_state(&env, "agent", &b, "Misscheduled").await;
    let row_b = row(&doc, &b);
    assert_eq!(row_b["wanted"], false);
    assert_eq!(row_b["pod"]["name"], kept.as_str(), "the running pod stays");
    assert_eq!(
        row_b["message"],
        "untolerated taint maintenance=soon:NoSchedule: no new pod here, the running one stays"
    );
    assert_eq!(row_b["class"], "excluded");
    assert_eq!(doc["counters"]["numberMisscheduled"], 1);
    assert_eq!(
        summary_count(&doc, "misscheduled (pod kept despite taint)"),
        1,
        "{doc:#}"
    );
    // The pod is still there a moment later (NoSchedule does not evict).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let doc = explain_json(&env, "agent").await;
    assert_eq!(row(&doc, &b)["pod"]["name"], kept.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_the_scheduler_cannot_place_is_unschedulable_with_its_message() {
    everynode();
    let env = TestEnv::new("ex-unsched").await;
    let a = env.add_node("a", &[], vec![]).await;
    env.create_daemonset(&daemonset(
        &env,
        "huge",
        json!({"spec": {"template": {"spec": {"containers": [{
            "name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "5000"}}
        }]}}}}),
    ))
    .await;
    let doc = wait_state(&env, "huge", &a, "Unschedulable").await;
    let stuck = row(&doc, &a);
    let message = stuck["reason"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("nodes are available") && message.contains("Insufficient cpu"),
        "the scheduler's message: {message:?}"
    );
    assert!(message.starts_with("0/"), "{message:?}");
    assert_eq!(
        stuck["message"],
        format!("the scheduler cannot place the pod: {message}").as_str()
    );
    assert_eq!(stuck["wanted"], true);
    assert_eq!(stuck["class"], "failed");
    assert_eq!(stuck["pod"]["phase"], "Pending");
    assert_eq!(summary_count(&doc, "unschedulable"), 1, "{doc:#}");
    let table = explain_ok(&env, &["huge"]).await;
    let cells = table_cells(&table, &a);
    assert_eq!(cell(&cells, "STATE"), "Unschedulable");
    assert!(
        cell(&cells, "REASON").contains("Insufficient cpu"),
        "{table}"
    );
    wait_counters_are_the_status(&env, "huge").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_waiting_for_the_budget_names_the_node_holding_it() {
    everynode();
    let env = TestEnv::new("ex-budget").await;
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}}),
    ))
    .await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;
    // New pods never become Ready: the first node's update holds the budget for good.
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}}),
    )
    .await;
    let new = env.current_hash(2).await;
    let doc = wait_explained(&env, "agent", "one node updating, two waiting", |doc| {
        let starting: Vec<&Value> = nodes
            .iter()
            .map(|n| row(doc, n))
            .filter(|r| r["state"] == "Starting")
            .collect();
        let waiting = nodes
            .iter()
            .filter(|n| row(doc, n)["state"] == "Outdated")
            .count();
        if starting.len() == 1 && waiting == 2 {
            Ok(())
        } else {
            Err(format!("{} starting, {waiting} outdated", starting.len()))
        }
    })
    .await;
    assert_eq!(doc["revision"], new.as_str());
    let holder = nodes
        .iter()
        .find(|n| row(&doc, n)["state"] == "Starting")
        .cloned()
        .unwrap_or_default();
    assert_eq!(doc_pod(&doc, &holder)["revision"], new.as_str());
    assert_eq!(doc_pod(&doc, &holder)["updated"], true);
    for n in nodes.iter().filter(|n| **n != holder) {
        let r = row(&doc, n);
        assert_eq!(
            r["message"],
            format!("outdated, waiting: the budget maxUnavailable=1 is held by {holder}").as_str()
        );
        assert_eq!(
            r["reason"],
            json!({"kind": "outdated", "wait": "rollout", "rule": "maxUnavailable", "limit": 1, "heldBy": [holder], "heldByTotal": 1})
        );
        assert_eq!(r["pod"]["updated"], false);
    }
    assert_eq!(summary_count(&doc, "waiting for the budget"), 2, "{doc:#}");
    let doc = wait_counters_are_the_status(&env, "agent").await;
    assert_eq!(doc["counters"]["updatedNumberScheduled"], 1);
    let table = explain_ok(&env, &["agent"]).await;
    let waiting = nodes
        .iter()
        .find(|n| **n != holder)
        .cloned()
        .unwrap_or_default();
    let cells = table_cells(&table, &waiting);
    assert_eq!(cell(&cells, "STATE"), "Outdated");
    assert_ne!(cell(&cells, "REVISION"), new.as_str());
    eprintln!("explain agent (rollout waiting for the budget):\n{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outdated_on_delete_pod_waits_for_a_manual_delete() {
    everynode();
    let env = TestEnv::new("ex-ondelete").await;
    let a = env.add_node("a", &[], vec![]).await;
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
    ))
    .await;
    let pods = env.wait_pods_exactly_on("agent", &[&a]).await;
    let old = pods
        .get(&a)
        .and_then(|p| p.metadata.name.clone())
        .unwrap_or_default();
    env.patch_template("agent", json!({"metadata": {"labels": {"version": "2"}}}))
        .await;
    let new = env.current_hash(2).await;
    let doc = wait_explained(&env, "agent", "the new revision", |doc| {
        if doc["revision"] == new.as_str() {
            Ok(())
        } else {
            Err(format!("revision {}", doc["revision"]))
        }
    })
    .await;
    let r = row(&doc, &a);
    assert_eq!(r["state"], "Outdated");
    assert_eq!(
        r["message"],
        "outdated, waiting for a manual delete (updateStrategy OnDelete)"
    );
    assert_eq!(r["reason"], json!({"kind": "outdated", "wait": "onDelete"}));
    assert_eq!(r["pod"]["name"], old.as_str());
    assert_eq!(
        summary_count(&doc, "waiting for a manual delete (OnDelete)"),
        1,
        "{doc:#}"
    );
    wait_counters_are_the_status(&env, "agent").await;

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.delete(&old, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {old}: {e}"));
    let doc = wait_state(&env, "agent", &a, "Available").await;
    assert_eq!(doc_pod(&doc, &a)["revision"], new.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_daemonsets_namespaces_and_nodes_get_one_sentence() {
    everynode();
    let env = TestEnv::new("ex-unknown").await;
    let a = env.add_node("a", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&a]).await;

    let one_sentence = |run: &Run, want: &str| {
        assert_eq!(run.code, Some(1), "exit code of {run:?}");
        assert_eq!(run.stdout, "", "nothing on stdout: {run:?}");
        assert_eq!(run.stderr, format!("error: {want}\n"), "{run:?}");
    };
    let run = explain(&env, &["daemonset/nope"]).await;
    one_sentence(
        &run,
        &format!("daemonset \"nope\" not found in namespace \"{}\"", env.ns),
    );
    let kubeconfig = format!("--kubeconfig={}", env.cp.kubeconfig().display());
    let run = run_program(
        binary(),
        &["explain", &kubeconfig, "-n", "no-such-namespace", "agent"],
        &[],
    )
    .await;
    one_sentence(&run, "namespace \"no-such-namespace\" not found");
    let run = explain(&env, &["agent", "--node", "no-such-node"]).await;
    one_sentence(&run, "node \"no-such-node\" not found");
    let run = explain(&env, &["agent", "-o", "json", "--node", "no-such-node"]).await;
    one_sentence(&run, "node \"no-such-node\" not found");

    // Usage mistakes are clap's: exit 2.
    for args in [
        vec!["deployment/agent"],
        vec!["agent", "-o", "yaml"],
        vec![],
        vec!["agent", "--bogus"],
    ] {
        let run = explain(&env, &args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
    }
    // A server that is not there: one sentence naming it, exit 1, quickly.
    let dead = env.cp.dir().join("kubeconfig-dead-server");
    let port = controlplane::free_port().unwrap_or_else(|e| panic!("free port: {e}"));
    std::fs::write(
        &dead,
        json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": format!("https://127.0.0.1:{port}")}}],
            "users": [{"name": "u", "user": {"token": "x"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c"
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("write kubeconfig: {e}"));
    let started = Instant::now();
    let run = run_program(
        binary(),
        &[
            "explain",
            &format!("--kubeconfig={}", dead.display()),
            "agent",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("connection refused") && run.stderr.contains(&port.to_string()),
        "{run:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_everynode_explain_runs_through_the_plugin_link() {
    everynode();
    let env = TestEnv::new("ex-plugin").await;
    let (a, b) = agent_beside_a_tainted_node(&env).await;
    wait_counters_are_the_status(&env, "agent").await;

    // The user's kubeconfig names the test namespace in its context: no -n needed.
    let kubeconfig = env.cp.dir().join("kubeconfig-ex-plugin");
    let text = std::fs::read_to_string(env.cp.kubeconfig())
        .unwrap_or_else(|e| panic!("read kubeconfig: {e}"));
    let mut config: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    if let Some(contexts) = config["contexts"].as_array_mut() {
        for c in contexts {
            c["context"]["namespace"] = json!(env.ns);
        }
    }
    std::fs::write(&kubeconfig, config.to_string())
        .unwrap_or_else(|e| panic!("write kubeconfig: {e}"));

    let dir = env.plugin_dir();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = kubeconfig.display().to_string();
    let vars = [("PATH", path.as_str()), ("KUBECONFIG", kubeconfig.as_str())];
    let kubectl = env.cp.binaries().path("kubectl");

    let list = run_program(&kubectl, &["plugin", "list"], &vars).await;
    assert!(
        list.stdout
            .contains(&dir.join("kubectl-everynode").display().to_string()),
        "kubectl plugin list finds it: {list:?}"
    );

    let through_kubectl = run_program(&kubectl, &["everynode", "explain", "ds/agent"], &vars).await;
    assert_eq!(through_kubectl.code, Some(0), "{through_kubectl:?}");
    assert_eq!(through_kubectl.stderr, "", "{through_kubectl:?}");
    let direct = explain_ok(&env, &["ds/agent"]).await;
    // Compared cell by cell: the columns' widths depend on other tests' nodes of the moment.
    for node in [&a, &b] {
        assert_eq!(
            table_cells(&through_kubectl.stdout, node),
            table_cells(&direct, node),
            "the plugin prints what everynode prints"
        );
    }
    assert_eq!(
        cell(&table_cells(&through_kubectl.stdout, &b), "REASON"),
        "untolerated taint example.com/dedicated=gpu:NoSchedule"
    );
    let json_run = run_program(
        &kubectl,
        &["everynode", "explain", "agent", "-o", "json", "--node", &a],
        &vars,
    )
    .await;
    let doc: Value =
        serde_json::from_str(&json_run.stdout).unwrap_or_else(|e| panic!("{e}: {json_run:?}"));
    assert_eq!(doc["daemonSet"]["namespace"], env.ns.as_str());
    assert_eq!(row(&doc, &a)["state"], "Available");

    // Help and usage name `kubectl everynode`; `run` is refused in one sentence, exit 2.
    let help = run_program(&kubectl, &["everynode", "--help"], &vars).await;
    assert_eq!(help.code, Some(0), "{help:?}");
    assert!(
        help.stdout.contains("Usage: kubectl everynode <COMMAND>"),
        "{help:?}"
    );
    assert!(help.stdout.contains("explain"), "{help:?}");
    let run = run_program(&kubectl, &["everynode", "run"], &vars).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: `kubectl everynode run` is not a plugin command"),
        "{run:?}"
    );
    let unknown = run_program(&kubectl, &["everynode", "explain", "nope"], &vars).await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert_eq!(
        unknown.stderr,
        format!(
            "error: daemonset \"nope\" not found in namespace \"{}\"\n",
            env.ns
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn krew_installs_the_plugin_offline_and_kubectl_everynode_explains() {
    // krew, built by `tools/build.sh krew` from the Go module proxy on first use (cached afterwards).
    let krew = tokio::task::spawn_blocking(|| support::tools::build(&["krew"]).remove("krew"))
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("tools/build.sh krew gave no krew"));
    everynode();
    let env = TestEnv::new("ex-krew").await;
    let (a, b) = agent_beside_a_tainted_node(&env).await;

    // The release process of docs/kubectl-plugin.md on this build: the archive, then the manifest
    // computed from it.
    let dir = env.cp.dir().join("krew");
    let _ = std::fs::remove_dir_all(&dir);
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Without its debug information the binary packs in a second instead of half a minute.
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let stripped = dir.join("everynode");
    let strip = run_program(
        Path::new("strip"),
        &[
            "-o",
            &stripped.display().to_string(),
            &binary().display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(strip.code, Some(0), "{strip:?}");
    let archive_run = run_program(
        &repo.join("scripts/plugin-archive.sh"),
        &[
            &version,
            &stripped.display().to_string(),
            &dir.join("dist").display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(archive_run.code, Some(0), "{archive_run:?}");
    let archive = archive_run.stdout.trim().to_string();
    let name = Path::new(&archive)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let manifest_run = run_program(
        &repo.join("scripts/krew-manifest.sh"),
        &[
            &version,
            &format!("https://example.org/everynode/releases/download/{version}/{name}"),
            &archive,
        ],
        &[("HOMEPAGE", "https://example.org/everynode")],
    )
    .await;
    assert_eq!(manifest_run.code, Some(0), "{manifest_run:?}");
    let manifest = dir.join("everynode.yaml");
    std::fs::write(&manifest, &manifest_run.stdout)
        .unwrap_or_else(|e| panic!("write {}: {e}", manifest.display()));

    // krew installs it from the manifest and the archive, without an index or a network.
    let root = dir.join("krew-root");
    let root_text = root.display().to_string();
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = env.cp.kubeconfig().display().to_string();
    let vars = [
        ("KREW_ROOT", root_text.as_str()),
        ("KREW_NO_UPGRADE_CHECK", "1"),
        ("PATH", path.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
    ];
    let install = run_program(
        &krew,
        &[
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={archive}"),
        ],
        &vars,
    )
    .await;
    assert_eq!(install.code, Some(0), "krew install: {install:?}");
    // (`krew list` needs an index; the receipt is what it would read.)
    assert!(
        root.join("receipts").join("everynode.yaml").is_file(),
        "krew keeps a receipt: {install:?}"
    );
    let installed = root.join("bin").join("kubectl-everynode");
    assert!(
        installed.exists(),
        "krew links {}: {install:?}",
        installed.display()
    );

    let kubectl = env.cp.binaries().path("kubectl");
    let run = run_program(
        &kubectl,
        &["everynode", "explain", "-n", &env.ns, "ds/agent"],
        &vars,
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(
        cell(&table_cells(&run.stdout, &b), "REASON"),
        "untolerated taint example.com/dedicated=gpu:NoSchedule"
    );
    assert_eq!(cell(&table_cells(&run.stdout, &a), "STATE"), "Available");

    // A manifest whose sha256 is not the archive's is refused (into a krew root of its own: without
    // an index, krew cannot uninstall).
    let tampered = dir.join("tampered.yaml");
    let text = manifest_run
        .stdout
        .lines()
        .map(|l| match l.split_once("sha256: ") {
            Some((indent, _)) => format!("{indent}sha256: {}", "0".repeat(64)),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&tampered, text).unwrap_or_else(|e| panic!("{e}"));
    let other_root = dir.join("krew-root-tampered");
    let other_root_text = other_root.display().to_string();
    let refused = run_program(
        &krew,
        &[
            "install",
            &format!("--manifest={}", tampered.display()),
            &format!("--archive={archive}"),
        ],
        &[
            ("KREW_ROOT", other_root_text.as_str()),
            ("KREW_NO_UPGRADE_CHECK", "1"),
        ],
    )
    .await;
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(
        refused.stderr.contains("sha256") || refused.stderr.contains("checksum"),
        "{refused:?}"
    );
    let other_installed = other_root.join("bin").join("kubectl-everynode");
    assert!(!other_installed.exists(), "nothing installed: {refused:?}");
}
