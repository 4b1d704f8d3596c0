//! DaemonSetRollout failure handling on the real local control plane (design §5): a failing canary
//! pauses the rollout or rolls it back, the mass-deletion guard holds deletions until approved, and
//! deleting the DaemonSetRollout gives upstream behaviour back. Also: the API server rejects invalid
//! DaemonSetRollouts with the schema's own messages, and kwok's `pod-crash-loop` stage crash-loops
//! pods labelled `controlplane::CRASH_LOOP_LABEL`.
//!
//! Failing pods come from that stage: the new template carries the label, so every pod of the new
//! revision is Running, not Ready, `waiting: CrashLoopBackOff`, with a rising restartCount.

mod support;

use controlplane::CRASH_LOOP_LABEL;
use everynode::api::daemonset_rollout::Phase;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::budget::{Budget, BudgetWatcher};
use support::rollout_watch::RolloutWatch;
use support::{TestEnv, agent_on_nodes, daemonset, everynode, pod_ready, wait_for};

const LONG: Duration = Duration::from_secs(120);

/// UIDs of the live pods of `agent`, by node.
async fn uids(env: &TestEnv) -> BTreeMap<String, String> {
    env.pods_by_node("app=agent")
        .await
        .into_iter()
        .filter_map(|(n, ps)| {
            ps.into_iter()
                .find(|p| p.metadata.deletion_timestamp.is_none())
                .and_then(|p| p.metadata.uid)
                .map(|u| (n, u))
        })
        .collect()
}

/// The message of the API server's rejection of `spec`.
async fn rejection(env: &TestEnv, spec: serde_json::Value) -> String {
    match env.try_apply_dsr("bad", spec.clone()).await {
        Ok(_) => panic!("the API server accepted an invalid DaemonSetRollout: {spec}"),
        Err(kube::Error::Api(s)) => s.message,
        Err(e) => panic!("unexpected error for {spec}: {e}"),
    }
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_the_schemas_messages() {
    let env = TestEnv::new("dsr-invalid").await;
    let cases = [
        (
            json!({"partition": -1}),
            "spec.partition: Invalid value: -1: partition must be an integer of at least 0 or a percentage from 0% to 100%",
        ),
        (
            json!({"failurePolicy": {"action": "Explode"}}),
            r#"spec.failurePolicy.action: Unsupported value: "Explode": supported values: "Pause", "Rollback""#,
        ),
        (
            json!({"waves": {"nodeLabel": ""}}),
            r#"spec.waves.nodeLabel: Invalid value: "": waves.nodeLabel must be a node label key such as topology.kubernetes.io/zone"#,
        ),
        (
            json!({"canary": {"nodes": 0}}),
            "spec.canary.nodes: Invalid value: 0: canary.nodes must be an integer of at least 1 or a percentage from 1% to 100%",
        ),
        (
            json!({"progressDeadlineSeconds": 30, "minSecondsBetweenNodeUpdates": 30}),
            "spec.progressDeadlineSeconds: Invalid value: progressDeadlineSeconds must be longer than minSecondsBetweenNodeUpdates",
        ),
    ];
    let mut wrong = Vec::new();
    for (spec, want) in cases {
        let got = rejection(&env, spec.clone()).await;
        eprintln!("{spec}\n  -> {got}");
        if !got.contains(want) {
            wrong.push(format!("{spec}: got {got:?}, want it to contain {want:?}"));
        }
    }
    // A valid object of every field is accepted, and the cross-field rule allows a longer deadline.
    env.apply_dsr(
        "good",
        json!({
            "partition": "10%",
            "canary": {"nodes": 1, "spreadByLabel": "topology.kubernetes.io/zone", "bakeSeconds": 0, "promotion": "Manual"},
            "waves": {"nodeLabel": "topology.kubernetes.io/zone", "order": ["a", "b"], "bakeSeconds": 5},
            "minSecondsBetweenNodeUpdates": 3,
            "progressDeadlineSeconds": 60,
            "failurePolicy": {"maxRestarts": 2, "action": "Rollback"},
            "massDeletionGuard": {"maxDeletions": "50%"},
        }),
    )
    .await;
    assert!(wrong.is_empty(), "messages differ:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn crash_loop_label_makes_kwok_crash_loop() {
    let env = TestEnv::new("crash-loop-stage").await;
    let node = env.add_node("n0", &[], vec![]).await;
    env.wait_node_ready(&node).await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "crash", "labels": {CRASH_LOOP_LABEL: "true"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                 "terminationGracePeriodSeconds": 0},
    }))
    .unwrap_or_else(|e| panic!("pod: {e}"));
    pods.create(&Default::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod: {e}"));
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first())
            .map(|c| {
                (
                    c.restart_count,
                    c.state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.clone()),
                )
            })
    };
    let first = wait_for("the pod to crash-loop", Duration::from_secs(30), || async {
        let p = pods.get("crash").await.map_err(|e| e.to_string())?;
        let phase = p.status.as_ref().and_then(|s| s.phase.clone());
        match restarts(&p) {
            Some((n, Some(r)))
                if n >= 1
                    && r == "CrashLoopBackOff"
                    && phase.as_deref() == Some("Running")
                    && !pod_ready(&p) =>
            {
                Ok(n)
            }
            other => Err(format!(
                "phase {phase:?}, (restarts, waiting) {other:?}, ready {}",
                pod_ready(&p)
            )),
        }
    })
    .await;
    wait_for(
        "the restart count to rise",
        Duration::from_secs(30),
        || async {
            let p = pods.get("crash").await.map_err(|e| e.to_string())?;
            match restarts(&p) {
                Some((n, _)) if n >= first + 2 => Ok(()),
                other => Err(format!("{other:?} (first {first})")),
            }
        },
    )
    .await;
    // Deleting it still works (pod-delete).
    pods.delete("crash", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete pod: {e}"));
    wait_for("the pod to be gone", Duration::from_secs(30), || async {
        match pods.get_opt("crash").await {
            Ok(None) => Ok(()),
            other => Err(format!(
                "{:?}",
                other.map(|p| p.map(|p| p.metadata.deletion_timestamp))
            )),
        }
    })
    .await;
}

/// Four nodes in two zones, a canary of 2 spread over the zones with a short bake, and `action`.
async fn failing_canary(
    name: &str,
    action: &str,
) -> (TestEnv, Vec<String>, String, String, RolloutWatch) {
    everynode();
    let env = TestEnv::new(name).await;
    let mut nodes = Vec::new();
    for (i, zone) in ["a", "a", "b", "b"].iter().enumerate() {
        nodes.push(
            env.add_node(
                &format!("n{i}"),
                &[("topology.kubernetes.io/zone", zone)],
                vec![],
            )
            .await,
        );
    }
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}}),
    ))
    .await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;
    let old = env.current_hash(1).await;
    env.apply_dsr(
        "agent",
        json!({
            "canary": {"nodes": 2, "spreadByLabel": "topology.kubernetes.io/zone", "bakeSeconds": 5},
            "failurePolicy": {"maxRestarts": 2, "action": action},
        }),
    )
    .await;
    env.wait_dsr_phase("agent", Phase::Complete, Some(&old), LONG)
        .await;
    let watch = RolloutWatch::start(&env, "agent").await;
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {CRASH_LOOP_LABEL: "true"}}}),
    )
    .await;
    let new = env.current_hash(2).await;
    (env, nodes, old, new, watch)
}

#[tokio::test]
async fn failing_canary_pauses() {
    let started = Instant::now();
    let (env, nodes, old, new, watch) = failing_canary("dsr-fail-pause", "Pause").await;
    let before = uids(&env).await;
    let budget = BudgetWatcher::start(&env, "agent", nodes.clone(), Budget::MaxUnavailable(2));
    let status = env
        .wait_dsr_phase("agent", Phase::Failed, Some(&new), LONG)
        .await;
    let (reason, message) = env
        .wait_dsr_condition("agent", "Failed", "True", LONG)
        .await;
    eprintln!(
        "Failed after {:.1}s: {reason}: {message}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        message.contains("CrashLoopBackOff")
            || status
                .failing
                .iter()
                .any(|f| f.reason.contains("CrashLoopBackOff")),
        "the failure does not name CrashLoopBackOff: {message} / {:?}",
        status.failing
    );
    // Held for 10 s: nothing beyond the canary.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let canary: BTreeSet<String> = env
        .dsr_status("agent")
        .await
        .canary
        .map(|c| c.nodes.into_iter().collect())
        .unwrap_or_default();
    assert_eq!(canary.len(), 2, "canary nodes: {canary:?}");
    let bad = watch.nodes_that_ran(&new);
    assert!(
        bad.is_subset(&canary) && !bad.is_empty(),
        "nodes that ran the bad revision {bad:?} are not the canary {canary:?}\n{}",
        watch.timeline()
    );
    let after = uids(&env).await;
    for n in nodes.iter().filter(|n| !canary.contains(*n)) {
        assert_eq!(
            before.get(n),
            after.get(n),
            "{n}'s pod was replaced\n{}",
            watch.timeline()
        );
    }
    let disturbed: Vec<_> = watch
        .disturbed(&new)
        .into_iter()
        .filter(|r| !canary.contains(&r.node))
        .collect();
    assert!(
        disturbed.is_empty(),
        "pods off the canary restarted or replaced: {disturbed:?}"
    );
    assert!(
        watch
            .pods()
            .iter()
            .filter(|r| r.hash == old)
            .all(|r| r.restarts == 0),
        "an old pod restarted"
    );
    budget.finish();
    eprintln!("timeline:\n{}", watch.timeline());
}

#[tokio::test]
async fn failing_canary_rolls_back() {
    let started = Instant::now();
    let (env, nodes, old, new, watch) = failing_canary("dsr-fail-rollback", "Rollback").await;
    let before = uids(&env).await;
    let budget = BudgetWatcher::start(&env, "agent", nodes.clone(), Budget::MaxUnavailable(2));
    let status = env
        .wait_dsr_phase("agent", Phase::RolledBack, None, LONG)
        .await;
    eprintln!(
        "RolledBack after {:.1}s: {:?}",
        started.elapsed().as_secs_f64(),
        status.rollback
    );
    let rollback = status
        .rollback
        .clone()
        .unwrap_or_else(|| panic!("no status.rollback: {status:?}"));
    assert_eq!(
        (rollback.from.as_str(), rollback.to.as_str()),
        (new.as_str(), old.as_str())
    );
    // The template is the original revision's data again.
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let original = revs
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list revisions: {e}"))
        .items
        .into_iter()
        .find(|r| support::revision_hash(&r.metadata) == Some(&old))
        .unwrap_or_else(|| panic!("no ControllerRevision for {old}"));
    let ds = dss
        .get("agent")
        .await
        .unwrap_or_else(|e| panic!("get ds: {e}"));
    let template = serde_json::to_value(ds.spec.as_ref().map(|s| &s.template)).unwrap_or_default();
    let data = original.data.map(|d| d.0).unwrap_or_default();
    let mut want = data["spec"]["template"].clone();
    if let Some(o) = want.as_object_mut() {
        o.remove("$patch");
    }
    assert_eq!(
        template, want,
        "the template is not the original revision's"
    );
    // Every pod back on the old hash, Ready; non-canary pods never replaced.
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let pods = env.wait_pods_exactly_on("agent", &refs).await;
    wait_for("every pod on the old revision", LONG, || async {
        let by = env.pods_by_node("app=agent").await;
        let wrong: Vec<String> = by
            .values()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| support::revision_hash(&p.metadata) != Some(&old))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{wrong:?}"))
        }
    })
    .await;
    let canary = watch.nodes_that_ran(&new);
    for n in nodes.iter().filter(|n| !canary.contains(*n)) {
        assert_eq!(
            before.get(n),
            pods.get(n).and_then(|p| p.metadata.uid.as_ref()),
            "{n} never ran the bad revision, yet its pod was replaced\n{}",
            watch.timeline()
        );
    }
    let events = env.daemonset_events("agent").await;
    assert!(
        events.iter().any(|e| e.starts_with("Warning RolledBack")),
        "no RolledBack event: {events:?}"
    );
    budget.finish();
    eprintln!("timeline:\n{}", watch.timeline());
}

#[tokio::test]
async fn mass_deletion_guard_holds_until_approved() {
    let (env, nodes) = agent_on_nodes("dsr-guard", 10, json!({})).await;
    env.apply_dsr("agent", json!({})).await;
    let before = uids(&env).await;
    let watch = RolloutWatch::start(&env, "agent").await;
    // A nodeSelector typo: no node matches, every pod would go.
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let ds = dss
        .patch(
            "agent",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"template": {"spec": {"nodeSelector": {env.node_label(): "ture"}}}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("patch ds: {e}"));
    let generation = ds.metadata.generation.unwrap_or_default();
    let (reason, message) = env
        .wait_dsr_condition("agent", "DeletionsHeld", "True", LONG)
        .await;
    eprintln!("DeletionsHeld: {reason}: {message}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        uids(&env).await,
        before,
        "pods deleted while held\n{}",
        watch.timeline()
    );
    assert!(
        watch.pods().iter().all(|r| r.deleted.is_none()),
        "a delete was issued\n{}",
        watch.timeline()
    );
    let events = env.daemonset_events("agent").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Warning MassDeletionHeld")),
        "no MassDeletionHeld warning: {events:?}"
    );
    // Approving this generation lets the deletions through.
    env.patch_dsr(
        "agent",
        json!({"approvals": {"deletionsForGeneration": generation}}),
    )
    .await;
    wait_for("every pod deleted after approval", LONG, || async {
        let left = uids(&env).await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    eprintln!("{} nodes; timeline:\n{}", nodes.len(), watch.timeline());
}

#[tokio::test]
async fn deleting_the_policy_restores_upstream_behaviour() {
    let (env, nodes) = agent_on_nodes("dsr-delete", 4, json!({})).await;
    env.apply_dsr("agent", json!({"partition": 2})).await;
    env.patch_template("agent", json!({"metadata": {"annotations": {"v": "2"}}}))
        .await;
    let new = env.current_hash(2).await;
    env.wait_dsr_phase("agent", Phase::Paused, Some(&new), LONG)
        .await;
    // Two nodes are held by the partition; the DaemonSet mirrors the DSR's conditions.
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let ours = [
        "Progressing",
        "Complete",
        "Failed",
        "RolledBack",
        "DeletionsHeld",
    ];
    let mirrored = |ds: &DaemonSet| -> Vec<String> {
        ds.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| c.type_.clone())
                    .filter(|t| ours.contains(&t.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ds = dss
        .get("agent")
        .await
        .unwrap_or_else(|e| panic!("get ds: {e}"));
    assert!(
        !mirrored(&ds).is_empty(),
        "no mirrored conditions on the DaemonSet: {:?}",
        ds.status
    );
    env.dsrs()
        .delete("agent", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete DSR: {e}"));
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    wait_for("the rollout to complete without the DSR", LONG, || async {
        let pods = env.wait_pods_exactly_on("agent", &refs).await;
        let old: Vec<&String> = pods
            .iter()
            .filter(|(_, p)| support::revision_hash(&p.metadata) != Some(&new))
            .map(|(n, _)| n)
            .collect();
        if old.is_empty() {
            Ok(())
        } else {
            Err(format!("still old: {old:?}"))
        }
    })
    .await;
    wait_for("the mirrored conditions to be removed", LONG, || async {
        let ds = dss.get("agent").await.map_err(|e| e.to_string())?;
        let m = mirrored(&ds);
        if m.is_empty() {
            Ok(())
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
}
