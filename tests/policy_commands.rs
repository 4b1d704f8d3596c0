//! `kubectl everynode pause|resume|freeze|unfreeze|promote|approve|abort` on the real control plane,
//! run through kubectl as the plugin with the DaemonSetRollout CRD installed: the spec each command
//! leaves, the status each approval reads (written here the way the controller writes it), the one
//! line each prints, and that a patch computed from a stale read is refused by the API server.

mod support;

use everynode::api::DaemonSetRollout;
use everynode::core::rollout::commands::{RolloutCommand, Write, command_patch};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::{TestEnv, daemonset, wait_for};

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Installs the CRD as the docs say (`everynode crd | kubectl apply --server-side -f -`) and waits
/// until it is served.
fn install_crd(env: &TestEnv) {
    let yaml = everynode::api::crd_yaml().unwrap_or_else(|e| panic!("render the CRD: {e}"));
    let file = env.cp.dir().join("daemonsetrollouts.everynode.io.yaml");
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    let file = file.display().to_string();
    env.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &file]);
    env.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/daemonsetrollouts.everynode.io",
    ]);
}

/// `kubectl everynode ARGS -n <test namespace>` through kubectl, as a user runs it.
async fn plugin(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    let kubectl = env.cp.binaries().path("kubectl");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new(kubectl);
    cmd.arg("everynode")
        .args(args)
        .args(["-n", env.ns.as_str()])
        .env("PATH", path)
        .env("KUBECONFIG", env.cp.kubeconfig())
        .env_remove("RUST_LOG");
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("kubectl everynode {args:?} did not finish in 60 s"))
        .unwrap_or_else(|e| panic!("run kubectl everynode: {e}"));
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ kubectl everynode {} -> {run:?}", args.join(" "));
    run
}

/// A command that must succeed: its one line.
async fn ok(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let run = plugin(env, dir, args).await;
    assert!(
        run.code == Some(0) && run.stderr.is_empty() && run.stdout.lines().count() == 1,
        "kubectl everynode {args:?}: {run:?}"
    );
    run.stdout
}

/// The DaemonSetRollout's spec as the API server holds it.
async fn spec(api: &Api<DaemonSetRollout>) -> Value {
    let dsr = api
        .get("agent")
        .await
        .unwrap_or_else(|e| panic!("get DaemonSetRollout agent: {e}"));
    serde_json::to_value(&dsr.spec).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the DaemonSetRollout's status, as the controller does.
async fn set_status(api: &Api<DaemonSetRollout>, status: Value) {
    api.patch_status(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .unwrap_or_else(|e| panic!("patch the status: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_commands_leave_the_spec_they_say() {
    let env = TestEnv::new("pc-cmds").await;
    install_crd(&env);
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let dir = env.plugin_dir();
    let api: Api<DaemonSetRollout> = Api::namespaced(env.client.clone(), &env.ns);

    // Without a DaemonSetRollout: pause creates one, the others say one is needed.
    let resume = plugin(&env, &dir, &["resume", "daemonset/agent"]).await;
    assert_eq!(resume.code, Some(1), "{resume:?}");
    assert!(
        resume
            .stderr
            .contains("no DaemonSetRollout agent: resume needs one"),
        "{resume:?}"
    );
    let line = ok(&env, &dir, &["pause", "ds/agent"]).await;
    assert!(
        line.contains("paused (DaemonSetRollout agent created"),
        "{line}"
    );
    assert_eq!(spec(&api).await, json!({ "paused": true }));
    let line = ok(&env, &dir, &["resume", "ds/agent"]).await;
    assert_eq!(line, "daemonset/agent resumed (DaemonSetRollout agent)\n");
    assert_eq!(spec(&api).await, json!({}));
    ok(&env, &dir, &["freeze", "ds/agent"]).await;
    assert_eq!(spec(&api).await, json!({ "frozen": true }));
    ok(&env, &dir, &["unfreeze", "ds/agent"]).await;
    assert_eq!(spec(&api).await, json!({}));

    // explain shows the DaemonSetRollout above the table.
    let explain = plugin(&env, &dir, &["explain", "ds/agent", "-o", "json"]).await;
    assert_eq!(explain.code, Some(0), "{explain:?}");
    let doc: Value = serde_json::from_str(&explain.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["rollout"]["name"], json!("agent"), "{doc}");
    let hash = doc["revision"]
        .as_str()
        .unwrap_or_else(|| panic!("no revision: {doc}"))
        .to_string();

    // Nothing waits: approve says so and writes nothing.
    let approve = plugin(&env, &dir, &["approve", "ds/agent"]).await;
    assert_eq!(approve.code, Some(1), "{approve:?}");
    assert!(
        approve
            .stderr
            .contains("nothing waits for approval (phase unset)"),
        "{approve:?}"
    );

    // A Manual canary waits: approve names the update revision.
    api.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(&json!({ "spec": { "canary": { "nodes": 1, "promotion": "Manual" } } })),
    )
    .await
    .unwrap_or_else(|e| panic!("add a canary: {e}"));
    set_status(
        &api,
        json!({ "phase": "WaitingForApproval", "updateRevision": hash, "observedGeneration": 1 }),
    )
    .await;
    let line = ok(&env, &dir, &["approve", "ds/agent"]).await;
    assert!(
        line.contains(&format!("the canary of revision {hash}")),
        "{line}"
    );
    assert_eq!(
        spec(&api).await["approvals"],
        json!({ "canaryRevision": hash })
    );

    // Baking in step 1: promote names the revision and the step.
    set_status(
        &api,
        json!({ "phase": "Baking", "step": { "index": 1, "name": "1/2 zone=a" } }),
    )
    .await;
    ok(&env, &dir, &["promote", "ds/agent"]).await;
    assert_eq!(
        spec(&api).await["approvals"]["promote"],
        json!({ "revision": hash, "throughStep": 1 })
    );

    // Held deletions: approve names the DaemonSet generation.
    set_status(
        &api,
        json!({ "phase": "Progressing", "heldDeletions": { "pods": 3, "of": 4, "daemonSetGeneration": 1 } }),
    )
    .await;
    let line = ok(&env, &dir, &["approve", "ds/agent"]).await;
    assert!(line.contains("3 of 4 pods"), "{line}");
    assert_eq!(
        spec(&api).await["approvals"]["deletionsForGeneration"],
        json!(1)
    );

    // Failed: approve retries the revision; abort rolls it back.
    set_status(&api, json!({ "phase": "Failed", "heldDeletions": null })).await;
    ok(&env, &dir, &["approve", "ds/agent"]).await;
    assert_eq!(spec(&api).await["approvals"]["retryRevision"], json!(hash));
    ok(&env, &dir, &["abort", "ds/agent"]).await;
    assert_eq!(spec(&api).await["approvals"]["abortRevision"], json!(hash));
    eprintln!("final spec: {}", spec(&api).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_from_a_stale_read_is_refused() {
    let env = TestEnv::new("pc-stale").await;
    install_crd(&env);
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let dir = env.plugin_dir();
    ok(&env, &dir, &["pause", "ds/agent"]).await;
    let api: Api<DaemonSetRollout> = Api::namespaced(env.client.clone(), &env.ns);
    let ds_api: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let ds = ds_api
        .get("agent")
        .await
        .unwrap_or_else(|e| panic!("get the DaemonSet: {e}"));
    set_status(&api, json!({ "phase": "Failed", "updateRevision": "h1" })).await;
    let read = wait_for(
        "the status to be readable",
        Duration::from_secs(10),
        || async {
            let d = api.get("agent").await.map_err(|e| e.to_string())?;
            match d.status.as_ref().and_then(|s| s.phase) {
                Some(_) => Ok(d),
                None => Err("no phase yet".to_string()),
            }
        },
    )
    .await;
    let decided = command_patch(RolloutCommand::Approve, Some(&read), &ds, "h1")
        .unwrap_or_else(|e| panic!("{e}"));
    let Write::Patch(patch) = decided.write else {
        panic!("{decided:?}")
    };
    // Someone else changes the object after the read (here: resume).
    ok(&env, &dir, &["resume", "ds/agent"]).await;
    let stale = api
        .patch("agent", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    match stale {
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        other => panic!("a patch from a stale read was not refused with 409: {other:?}"),
    }
    assert_eq!(spec(&api).await.get("approvals"), None);
}
