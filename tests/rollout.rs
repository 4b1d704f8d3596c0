//! Rolling updates, OnDelete, rollback and `kubectl rollout` on the real control plane, with a watcher
//! that checks the rollout budget on every pod event for the whole rollout.

mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::budget::{Budget, BudgetWatcher};
use support::{TestEnv, wait_for};

async fn setup(name: &str, nodes: usize, ds_patch: serde_json::Value) -> (TestEnv, Vec<String>) {
    support::agent_on_nodes(name, nodes, ds_patch).await
}

async fn wait_all_updated(env: &TestEnv, nodes: &[String], hash: &str) -> BTreeMap<String, Pod> {
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    wait_for(
        &format!("every pod on revision {hash}"),
        Duration::from_secs(180),
        || async {
            let pods = env.pods_by_node("app=agent").await;
            let old = pods
                .values()
                .flatten()
                .filter(|p| support::revision_hash(&p.metadata) != Some(&hash.to_string()))
                .count();
            if old == 0 {
                Ok(())
            } else {
                Err(format!("{old} pods not on {hash}"))
            }
        },
    )
    .await;
    let pods = env.wait_pods_exactly_on("agent", &refs).await;
    let n = i32::try_from(nodes.len()).unwrap_or(0);
    env.wait_ds_status("agent", [n, n, n, n, n, 0]).await;
    pods
}

async fn rollout(name: &str, strategy: serde_json::Value, budget: Budget) {
    let (env, nodes) = setup(
        name,
        10,
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": strategy}}}),
    )
    .await;
    let watcher = BudgetWatcher::start(&env, "agent", nodes.clone(), budget);
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    let hash = env.current_hash(2).await;
    wait_all_updated(&env, &nodes, &hash).await;
    let status = env.kubectl(&[
        "rollout",
        "status",
        "ds/agent",
        "-n",
        &env.ns,
        "--timeout=60s",
    ]);
    assert!(
        status.contains("successfully rolled out"),
        "kubectl rollout status: {status}"
    );
    watcher.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_max_unavailable_1() {
    rollout(
        "ru-mu1",
        json!({"maxUnavailable": 1, "maxSurge": 0}),
        Budget::MaxUnavailable(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_max_unavailable_30_percent() {
    rollout(
        "ru-mu30",
        json!({"maxUnavailable": "30%", "maxSurge": 0}),
        Budget::MaxUnavailable(3),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_max_surge_1() {
    rollout(
        "ru-ms1",
        json!({"maxUnavailable": 0, "maxSurge": 1}),
        Budget::MaxSurge(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_max_surge_50_percent() {
    rollout(
        "ru-ms50",
        json!({"maxUnavailable": 0, "maxSurge": "50%"}),
        Budget::MaxSurge(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_rollout_keeps_old_pods_and_undo_restores_them_without_restarts() {
    let (env, nodes) = setup(
        "ru-stuck",
        10,
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}}),
    )
    .await;
    let before = env
        .wait_pods_exactly_on(
            "agent",
            &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    let watcher = BudgetWatcher::start(&env, "agent", nodes.clone(), Budget::MaxUnavailable(2));
    // New pods carry the label that keeps them Pending forever.
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}}),
    )
    .await;
    let bad = env.current_hash(2).await;
    wait_for("2 stuck new pods", Duration::from_secs(60), || async {
        let pods = env.pods_by_node("app=agent").await;
        let new = pods
            .values()
            .flatten()
            .filter(|p| support::revision_hash(&p.metadata) == Some(&bad))
            .count();
        if new == 2 {
            Ok(())
        } else {
            Err(format!("{new} new pods"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pods = env.pods_by_node("app=agent").await;
    let new = pods
        .values()
        .flatten()
        .filter(|p| support::revision_hash(&p.metadata) == Some(&bad))
        .count();
    assert_eq!(new, 2, "the rollout stopped at maxUnavailable");
    let untouched: Vec<&Pod> = before
        .values()
        .filter(|p| {
            pods.values()
                .flatten()
                .any(|q| q.metadata.uid == p.metadata.uid)
        })
        .collect();
    assert_eq!(untouched.len(), 8, "8 old pods keep running");

    let history = env.kubectl(&["rollout", "history", "ds/agent", "-n", &env.ns]);
    assert!(
        history.contains('1') && history.contains('2'),
        "rollout history lists revisions 1 and 2:\n{history}"
    );
    env.kubectl(&["rollout", "undo", "ds/agent", "-n", &env.ns]);
    let after = env
        .wait_pods_exactly_on(
            "agent",
            &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    for p in untouched {
        assert!(
            after.values().any(|q| q.metadata.uid == p.metadata.uid),
            "pod {:?} already on the old template was not restarted",
            p.metadata.name
        );
    }
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let list = revs
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items;
    let max = list.iter().map(|r| r.revision).max().unwrap_or(0);
    let current = list.iter().find(|r| r.revision == max).and_then(|r| {
        r.metadata
            .labels
            .as_ref()?
            .get("controller-revision-hash")
            .cloned()
    });
    let old_hash = before.values().next().and_then(|p| {
        p.metadata
            .labels
            .as_ref()?
            .get("controller-revision-hash")
            .cloned()
    });
    assert_eq!(current, old_hash, "the first revision is current again");
    assert_eq!(max, 3, "with a new revision number");
    watcher.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_restart_replaces_every_pod() {
    let (env, nodes) = setup("ru-restart", 4, json!({})).await;
    let before = env
        .wait_pods_exactly_on(
            "agent",
            &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    env.kubectl(&["rollout", "restart", "ds/agent", "-n", &env.ns]);
    let hash = env.current_hash(2).await;
    let after = wait_all_updated(&env, &nodes, &hash).await;
    for (n, p) in &after {
        assert_ne!(
            p.metadata.uid, before[n].metadata.uid,
            "pod on {n} replaced"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_delete_updates_only_deleted_pods() {
    let (env, nodes) = setup(
        "ru-ondelete",
        3,
        json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
    )
    .await;
    let before = env
        .wait_pods_exactly_on(
            "agent",
            &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    env.patch_template(
        "agent",
        json!({"metadata": {"annotations": {"rollout": "2"}}}),
    )
    .await;
    let hash = env.current_hash(2).await;
    env.wait_ds_status("agent", [3, 3, 3, 0, 3, 0]).await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let victim = before[&nodes[0]].metadata.name.clone().unwrap_or_default();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = wait_for(
        "the deleted pod to come back on the new revision",
        Duration::from_secs(60),
        || async {
            let now = env
                .wait_pods_exactly_on(
                    "agent",
                    &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
                )
                .await;
            let h = now[&nodes[0]]
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("controller-revision-hash"))
                .cloned();
            if h.as_deref() == Some(hash.as_str()) {
                Ok(now)
            } else {
                Err(format!("{h:?}"))
            }
        },
    )
    .await;
    for n in &nodes[1..] {
        assert_eq!(
            after[n].metadata.uid, before[n].metadata.uid,
            "pod on {n} untouched"
        );
    }
    env.wait_ds_status("agent", [3, 3, 3, 1, 3, 0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revision_history_limit_is_honoured() {
    let (env, nodes) = setup(
        "ru-history",
        2,
        json!({"spec": {"revisionHistoryLimit": 2}}),
    )
    .await;
    for i in 2..=6 {
        env.patch_template(
            "agent",
            json!({"metadata": {"annotations": {"rollout": i.to_string()}}}),
        )
        .await;
        let hash = env.current_hash(i).await;
        wait_all_updated(&env, &nodes, &hash).await;
    }
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(
        "history truncated to 2 old revisions + the current one",
        Duration::from_secs(30),
        || async {
            let list = revs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items;
            let mut numbers: Vec<i64> = list.iter().map(|r| r.revision).collect();
            numbers.sort();
            if numbers == [4, 5, 6] {
                Ok(())
            } else {
                Err(format!("{numbers:?}"))
            }
        },
    )
    .await;
}

/// Catalogue 10.4 #90 (`TestDSCUpdatesPodLabelAfterDedupCurHistories`): an extra owned revision with
/// the same data and a higher revision number wins; pods are relabelled with its hash and the other
/// one is deleted, without restarting any pod.
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_current_revisions_are_deduplicated_and_pods_relabelled() {
    let (env, nodes) = setup("ru-dedup", 2, json!({})).await;
    let before = env
        .wait_pods_exactly_on(
            "agent",
            &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    let path = format!("/apis/apps/v1/namespaces/{}/controllerrevisions", env.ns);
    let list = env
        .client
        .request_text(http::Request::get(&path).body(Vec::new()).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("list revisions: {e}"));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap_or_else(|e| panic!("{e}"));
    let original = list["items"][0].clone();
    let original_name = original["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut dup = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "agent-dup", "labels": original["metadata"]["labels"].clone(),
                     "ownerReferences": original["metadata"]["ownerReferences"].clone()},
        "data": original["data"].clone(), "revision": 5
    });
    dup["metadata"]["labels"]["controller-revision-hash"] = json!("dup");
    let body = serde_json::to_vec(&dup).unwrap_or_default();
    env.client
        .request_text(
            http::Request::post(&path)
                .header("content-type", "application/json")
                .body(body)
                .expect("request"),
        )
        .await
        .unwrap_or_else(|e| panic!("create duplicate revision: {e}"));
    // [quirk, as upstream] adding an owned revision does not queue its DaemonSet: touch the DaemonSet.
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    dss.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"touch": "1"}}})),
    )
    .await
    .unwrap_or_else(|e| panic!("touch: {e}"));
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(
        "pods relabelled and the older duplicate deleted",
        Duration::from_secs(60),
        || async {
            let names: Vec<String> = revs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter_map(|r| r.metadata.name)
                .collect();
            let pods = env.pods_by_node("app=agent").await;
            let hashes: Vec<Option<String>> = pods
                .values()
                .flatten()
                .map(|p| support::revision_hash(&p.metadata).cloned())
                .collect();
            if names == ["agent-dup"] && hashes.iter().all(|h| h.as_deref() == Some("dup")) {
                Ok(())
            } else {
                Err(format!(
                    "revisions {names:?} (was {original_name}), pod hashes {hashes:?}"
                ))
            }
        },
    )
    .await;
    let after = env
        .wait_pods_exactly_on(
            "agent",
            &nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    for (n, p) in &after {
        assert_eq!(
            p.metadata.uid, before[n].metadata.uid,
            "pod on {n} was relabelled, not replaced"
        );
    }
}

/// Catalogue 10.4 #89 (`TestLaunchWithHashCollision`): a revision that occupies the name of the next
/// template's revision with other data is a hash collision: collisionCount goes up by one, the new
/// revision gets another name, and the rollout completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_hash_collision_raises_collision_count_and_the_rollout_completes() {
    let (env, nodes) = setup("ru-collision", 2, json!({})).await;
    let dss: Api<everynode::controller::daemonset_object::CachedDaemonSet> =
        Api::namespaced(env.client.clone(), &env.ns);
    let change = json!({"spec": {"template": {"metadata": {"annotations": {"rollout": "2"}}}}});
    // What the API server will serve for the new template, without changing anything yet.
    let preview = dss
        .patch(
            "agent",
            &PatchParams::default().dry_run(),
            &Patch::Merge(&change),
        )
        .await
        .unwrap_or_else(|e| panic!("dry-run patch: {e}"));
    let patch = everynode::core::revision_data::snapshot_patch(&preview.raw_template);
    let hash = everynode::core::revision_data::compute_hash(&patch, None);
    let squatter = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": format!("agent-{hash}")},
        "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"other": "data"}}}}}, "revision": 1
    });
    let path = format!("/apis/apps/v1/namespaces/{}/controllerrevisions", env.ns);
    env.client
        .request_text(
            http::Request::post(&path)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&squatter).unwrap_or_default())
                .expect("request"),
        )
        .await
        .unwrap_or_else(|e| panic!("create squatting revision: {e}"));
    let typed: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    typed
        .patch("agent", &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap_or_else(|e| panic!("patch: {e}"));
    let new_hash = wait_for(
        "collisionCount 1 and a revision under another name",
        Duration::from_secs(60),
        || async {
            let d = typed.get("agent").await.map_err(|e| e.to_string())?;
            let count = d.status.as_ref().and_then(|s| s.collision_count);
            let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
            let list = revs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items;
            let newest = list
                .iter()
                .filter(|r| r.metadata.owner_references.is_some())
                .max_by_key(|r| r.revision)
                .and_then(|r| {
                    r.metadata
                        .labels
                        .as_ref()?
                        .get("controller-revision-hash")
                        .cloned()
                });
            match (count, newest) {
                (Some(1), Some(h)) if h != hash && list.len() >= 3 => Ok(h),
                other => Err(format!("{other:?}, {} revisions", list.len())),
            }
        },
    )
    .await;
    wait_all_updated(&env, &nodes, &new_hash).await;
}
