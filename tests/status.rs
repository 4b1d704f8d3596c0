//! `everynode status` on the real control plane, run as a user runs it (the built binary, a
//! kubeconfig): one test per exit code and case, each printing what status said and how long it
//! took.

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{TestEnv, everynode};

/// What one run of `everynode status` gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// Asserts the run took `min..max` seconds and prints its time for the closing note.
    fn took_between(&self, min: u64, max: u64, what: &str) {
        assert!(
            self.took >= Duration::from_secs(min) && self.took < Duration::from_secs(max),
            "{what}: {:?}",
            self.took
        );
        eprintln!(
            "TIMING {what}: status returned exit {:?} after {:.1}s",
            self.code,
            self.took.as_secs_f64()
        );
    }
}

/// No run of status may take longer than this: status must end by its own deadlines.
const HARD_LIMIT: Duration = Duration::from_secs(120);

/// Runs `everynode status ARGS --kubeconfig=KUBECONFIG` to its end (killed after [`HARD_LIMIT`]).
async fn status(kubeconfig: &std::path::Path, args: &[&str]) -> Run {
    let start = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_everynode"))
        .arg("status")
        .args(args)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start everynode status: {e}"));
    let out = tokio::time::timeout(HARD_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("everynode status {args:?} still running after {HARD_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("everynode status: {e}"));
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    };
    eprintln!(
        "$ everynode status {} -> exit {:?} after {:.1}s\n--- stdout\n{}--- stderr\n{}---",
        args.join(" "),
        run.code,
        run.took.as_secs_f64(),
        run.stdout,
        run.stderr
    );
    run
}

/// The admin kubeconfig.
fn admin(env: &TestEnv) -> PathBuf {
    env.cp.kubeconfig().to_path_buf()
}

/// A copy of the admin kubeconfig whose context names the test's namespace.
fn kubeconfig_in_namespace(env: &TestEnv) -> PathBuf {
    let text = std::fs::read_to_string(env.cp.kubeconfig())
        .unwrap_or_else(|e| panic!("read the kubeconfig: {e}"));
    let mut kc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the kubeconfig is JSON: {e}"));
    for ctx in kc["contexts"].as_array_mut().into_iter().flatten() {
        ctx["context"]["namespace"] = json!(env.ns);
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kubeconfig-{}", env.ns));
    std::fs::write(&path, kc.to_string()).unwrap_or_else(|e| panic!("write the kubeconfig: {e}"));
    path
}

/// A test namespace with `nodes` fake nodes and DaemonSet `agent` (`ds_patch` merged in) running an
/// available pod on each.
async fn setup(name: &str, nodes: usize, ds_patch: serde_json::Value) -> (TestEnv, Vec<String>) {
    let (env, names) = support::agent_on_nodes(name, nodes, ds_patch).await;
    let n = i32::try_from(nodes).unwrap_or(0);
    env.wait_ds_status("agent", [n, n, n, n, n, 0]).await;
    (env, names)
}

fn never_ready() -> serde_json::Value {
    json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complete_rollout_exits_0_soon_after_the_last_pod_is_available() {
    let (env, nodes) = setup("st-complete", 3, json!({})).await;
    // The namespace comes from the kubeconfig's context: no -n.
    let kubeconfig = kubeconfig_in_namespace(&env);
    let changed = Instant::now();
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    let run = status(&kubeconfig, &["daemonset/agent"]).await;
    let after_change = changed.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with("daemon set \"agent\" successfully rolled out\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Waiting for daemon set \"agent\""),
        "progress was shown: {}",
        run.stdout
    );
    // kubectl agrees, at once.
    let kubectl = env.kubectl(&[
        "rollout",
        "status",
        "ds/agent",
        "-n",
        &env.ns,
        "--watch=false",
    ]);
    assert!(kubectl.contains("successfully rolled out"), "{kubectl}");
    // And every pod is of the new revision.
    let hash = env.current_hash(2).await;
    let pods = env.pods_by_node("app=agent").await;
    for node in &nodes {
        let live: Vec<&Pod> = pods
            .get(node)
            .into_iter()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        assert!(
            live.len() == 1 && support::revision_hash(&live[0].metadata) == Some(&hash),
            "{node}: {:?}",
            live.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "TIMING complete: status returned {:.1}s after the template change (ran {:.1}s)",
        after_change.as_secs_f64(),
        run.took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_pods_the_scheduler_cannot_place_exit_1_naming_insufficient_cpu_in_seconds() {
    let (env, _) = setup("st-cpu", 2, json!({})).await;
    env.patch_template(
        "agent",
        json!({"spec": {"containers": [{
            "name": "c",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "5000"}}
        }]}}),
    )
    .await;
    let run = status(&admin(&env), &["-n", &env.ns, "ds/agent"]).await;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.starts_with(
            "error: daemon set \"agent\" rollout cannot progress: new pods cannot run on 1 node (1 Unschedulable)\n"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the scheduler cannot place the pod")
            && run.stderr.contains("Insufficient cpu"),
        "{}",
        run.stderr
    );
    assert!(
        run.took < Duration::from_secs(30),
        "seconds, not the progress deadline: {:?}",
        run.took
    );
    eprintln!(
        "TIMING unschedulable: status returned exit 1 after {:.1}s",
        run.took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_progress_for_the_progress_deadline_exits_1() {
    let (env, _) = setup("st-deadline", 2, json!({})).await;
    env.patch_template("agent", never_ready()).await;
    let run = status(
        &admin(&env),
        &["-n", &env.ns, "ds/agent", "--progress-deadline=10s"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.starts_with(
            "error: daemon set \"agent\" rollout cannot progress: no progress for 10s: "
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(": not Ready yet"),
        "the node whose new pod is not Ready is named: {}",
        run.stderr
    );
    run.took_between(10, 40, "no progress (deadline 10s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timeout_while_progressing_exits_2_and_without_watch_3() {
    let (env, _) = setup("st-timeout", 2, json!({})).await;
    env.patch_template("agent", never_ready()).await;
    let run = status(&admin(&env), &["-n", &env.ns, "ds/agent", "--timeout=5s"]).await;
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .starts_with("error: timed out after 5s waiting for daemon set \"agent\" rollout: "),
        "{}",
        run.stderr
    );
    run.took_between(5, 15, "timeout (--timeout=5s)");
    let once = status(&admin(&env), &["-n", &env.ns, "ds/agent", "--watch=false"]).await;
    assert_eq!(once.code, Some(3), "{}{}", once.stdout, once.stderr);
    assert!(
        once.stdout
            .starts_with("Waiting for daemon set \"agent\" rollout to finish: "),
        "{}",
        once.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn desired_0_from_a_typoed_node_selector_exits_0_with_the_warning() {
    let (env, nodes) = setup("st-zero", 2, json!({})).await;
    let label = env.node_label();
    env.patch_template("agent", json!({"spec": {"nodeSelector": {&label: "ture"}}}))
        .await;
    env.wait_ds_status("agent", [0, 0, 0, 0, 0, 0]).await;
    let run = status(&admin(&env), &["-n", &env.ns, "agent"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "daemon set \"agent\" successfully rolled out\n");
    assert!(
        run.stderr
            .starts_with("warning: the DaemonSet selects no node (DESIRED 0): "),
        "{}",
        run.stderr
    );
    // The example is one of the test's nodes, whose label has the key with another value.
    let example = format!("nodeSelector {label}=ture: node has {label}=true");
    assert!(
        nodes
            .iter()
            .any(|n| run.stderr.contains(&format!("; {n}: {example}"))),
        "{}",
        run.stderr
    );
    eprintln!(
        "TIMING desired 0: status returned exit 0 after {:.1}s",
        run.took.as_secs_f64()
    );
}

/// Makes every new (never-ready-labelled) pod Ready, except on `skip`, until aborted.
fn ready_new_pods_except(env: &TestEnv, skip: String) -> tokio::task::JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    tokio::spawn(async move {
        let lp =
            ListParams::default().labels(&format!("app=agent,{}", controlplane::NEVER_READY_LABEL));
        loop {
            if let Ok(list) = api.list(&lp).await {
                for p in list.items {
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                    let name = p.metadata.name.clone().unwrap_or_default();
                    if node.is_some_and(|n| n != skip)
                        && !support::pod_ready(&p)
                        && p.metadata.deletion_timestamp.is_none()
                    {
                        let _ = support::watch::set_pod_ready(&api, &name, true).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// kubernetes#73667: every pod updated, one unavailable within maxUnavailable=2. kubectl says it
/// waits; so does everynode, naming the node and the budget, and the progress deadline ends it.
#[tokio::test(flavor = "multi_thread")]
async fn pods_unavailable_within_max_unavailable_do_not_complete_the_rollout() {
    let (env, nodes) = setup(
        "st-budget",
        3,
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}}),
    )
    .await;
    let stuck = nodes[0].clone();
    let helper = ready_new_pods_except(&env, stuck.clone());
    env.patch_template("agent", never_ready()).await;
    // desired, current, ready, updated, available, misscheduled
    env.wait_ds_status("agent", [3, 3, 2, 3, 2, 0]).await;
    let kubectl = env.kubectl(&[
        "rollout",
        "status",
        "ds/agent",
        "-n",
        &env.ns,
        "--watch=false",
    ]);
    assert!(
        kubectl.contains("2 of 3 updated pods are available"),
        "kubectl waits too: {kubectl}"
    );
    let once = status(&admin(&env), &["-n", &env.ns, "ds/agent", "--watch=false"]).await;
    assert_eq!(once.code, Some(3), "{}{}", once.stdout, once.stderr);
    let run = status(
        &admin(&env),
        &["-n", &env.ns, "ds/agent", "--progress-deadline=10s"],
    )
    .await;
    helper.abort();
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let note = "  1 pod is unavailable, within maxUnavailable=2: the rollout is complete once every pod is available";
    for out in [&once.stdout, &run.stderr] {
        assert!(out.contains(note), "{out}");
        assert!(out.contains(&format!("  {stuck}: not Ready yet")), "{out}");
    }
    assert!(
        run.stderr.starts_with(
            "error: daemon set \"agent\" rollout cannot progress: no progress for 10s: 2 of 3 updated pods are available\n"
        ),
        "{}",
        run.stderr
    );
    eprintln!(
        "TIMING maxUnavailable: status returned exit 1 after {:.1}s (deadline 10s)",
        run.took.as_secs_f64()
    );
}

/// OnDelete: outdated pods wait for a manual delete; each delete is progress, and the rollout
/// completes once they are all deleted; without deletes the progress deadline ends the wait.
#[tokio::test(flavor = "multi_thread")]
async fn on_delete_waits_for_manual_deletes() {
    let (env, nodes) = setup(
        "st-ondelete",
        2,
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    )
    .await;
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    let stalled = status(
        &admin(&env),
        &["-n", &env.ns, "ds/agent", "--progress-deadline=5s"],
    )
    .await;
    assert_eq!(
        stalled.code,
        Some(1),
        "{}{}",
        stalled.stdout,
        stalled.stderr
    );
    assert!(
        stalled.stderr.starts_with(
            "error: daemon set \"agent\" rollout cannot progress: no progress for 5s: 2 outdated pods wait for a manual delete (updateStrategy OnDelete)\n"
        ),
        "{}",
        stalled.stderr
    );
    assert!(
        stalled.stderr.contains(
            "  updateStrategy OnDelete: 2 outdated pods wait for a manual delete; nothing replaces them on its own"
        ),
        "{}",
        stalled.stderr
    );

    // Deleting the pods while status watches: it completes.
    let kubeconfig = admin(&env);
    let ns = env.ns.clone();
    let watching = tokio::spawn(async move {
        status(
            &kubeconfig,
            &["-n", &ns, "ds/agent", "--progress-deadline=30s"],
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    for p in env.pods_by_node("app=agent").await.into_values().flatten() {
        let name = p.metadata.name.clone().unwrap_or_default();
        api.delete(&name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
    let run = watching
        .await
        .unwrap_or_else(|e| panic!("status task: {e}"));
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("nothing replaces them on its own")
            && run
                .stdout
                .ends_with("daemon set \"agent\" successfully rolled out\n"),
        "{}",
        run.stdout
    );
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_daemonset_or_namespace_is_one_sentence_and_exit_4() {
    everynode();
    let env = TestEnv::new("st-unknown").await;
    let run = status(&admin(&env), &["-n", &env.ns, "daemonset/nope"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (
            Some(4),
            "",
            format!(
                "error: daemonset \"nope\" not found in namespace \"{}\"\n",
                env.ns
            )
            .as_str()
        )
    );
    let run = status(&admin(&env), &["-n", "no-such-namespace", "ds/agent"]).await;
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            Some(4),
            "error: namespace \"no-such-namespace\" not found\n"
        )
    );
    assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
    // A usage error is clap's: exit 2.
    let run = status(&admin(&env), &["deployment/agent"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}
