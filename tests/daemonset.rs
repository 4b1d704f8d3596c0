//! The DaemonSet controller on the real control plane: placement, node changes, taints, cordons,
//! failed pods, adoption and release, garbage collection, status columns and events.

mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;
use support::{TestEnv, daemonset, everynode, taint, wait_for};

async fn ds_events(env: &TestEnv, ds: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let list = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={ds}")))
        .await
        .unwrap_or_else(|e| panic!("list events: {e}"));
    list.items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn new_daemonset_gets_one_ready_pod_per_eligible_node() {
    everynode();
    let env = TestEnv::new("ds-basic").await;
    let mut n = Vec::new();
    for i in 0..3 {
        n.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let pods = env
        .wait_pods_exactly_on("agent", &n.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    env.wait_ds_status("agent", [3, 3, 3, 3, 3, 0]).await;

    // One ControllerRevision, named <ds>-<hash>, whose hash every pod carries.
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let revs = revs
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list revisions: {e}"))
        .items;
    assert_eq!(revs.len(), 1, "exactly one ControllerRevision");
    let rev = &revs[0];
    let hash = support::revision_hash(&rev.metadata)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        rev.metadata.name.as_deref(),
        Some(format!("agent-{hash}").as_str())
    );
    assert_eq!(rev.revision, 1);
    for (node, pod) in &pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("controller-revision-hash"),
            Some(&hash),
            "pod on {node} carries the revision hash"
        );
        assert_eq!(
            labels.get("pod-template-generation").map(String::as_str),
            Some("1")
        );
        let owners = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].controller,
                owners[0].block_owner_deletion
            ),
            ("DaemonSet", Some(true), Some(true))
        );
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unschedulable")),
            "default tolerations added"
        );
        let terms = pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.clone())
            .unwrap_or_default();
        assert_eq!(terms.len(), 1, "pinned to its node by one affinity term");
        assert_eq!(
            terms[0].match_fields.as_ref().map(|f| f[0].values.clone()),
            Some(Some(vec![node.clone()]))
        );
    }

    // kubectl get ds: DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR
    let out = env.kubectl(&["get", "ds", "agent", "-n", &env.ns, "--no-headers"]);
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        &cols[..7],
        &[
            "agent",
            "3",
            "3",
            "3",
            "3",
            "3",
            &format!("{}=true", env.node_label())
        ],
        "kubectl get ds: {out}"
    );

    // kubectl describe ds shows the creates.
    let out = env.kubectl(&["describe", "ds", "agent", "-n", &env.ns]);
    assert!(
        out.contains("SuccessfulCreate") && out.contains("Created pod: agent-"),
        "describe shows events:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn node_added_later_gets_its_pod_and_a_removed_nodes_pod_goes() {
    everynode();
    let env = TestEnv::new("ds-nodes").await;
    let n0 = env.add_node("n0", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&n0]).await;
    let n1 = env.add_node("n1", &[], vec![]).await;
    env.wait_pods_exactly_on("agent", &[&n0, &n1]).await;
    env.wait_ds_status("agent", [2, 2, 2, 2, 2, 0]).await;
    env.remove_node(&n1).await;
    // The pod garbage collector removes pods bound to a deleted node (after its quarantine).
    wait_for(
        "the deleted node's pod to be gone",
        Duration::from_secs(150),
        || async {
            let by_node = env.pods_by_node("app=agent").await;
            if by_node.contains_key(&n1) {
                Err(format!("{:?}", by_node.keys().collect::<Vec<_>>()))
            } else {
                Ok(())
            }
        },
    )
    .await;
    env.wait_pods_exactly_on("agent", &[&n0]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_entering_and_leaving_a_node_selector_or_required_affinity() {
    everynode();
    let env = TestEnv::new("ds-selector").await;
    let blue = env
        .add_node("blue", &[("color", "blue"), ("zone", "a")], vec![])
        .await;
    let plain = env.add_node("plain", &[], vec![]).await;
    env.create_daemonset(&daemonset(
        &env,
        "sel",
        json!({"spec": {"template": {"spec": {"nodeSelector": {"color": "blue"}}}}}),
    ))
    .await;
    let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}});
    env.create_daemonset(&daemonset(
        &env,
        "aff",
        json!({"spec": {"template": {"spec": {"affinity": affinity}}}}),
    ))
    .await;
    env.wait_pods_exactly_on("sel", &[&blue]).await;
    env.wait_pods_exactly_on("aff", &[&blue]).await;

    env.patch_node(
        &plain,
        json!({"metadata": {"labels": {"color": "blue", "zone": "a"}}}),
    )
    .await;
    env.wait_pods_exactly_on("sel", &[&blue, &plain]).await;
    env.wait_pods_exactly_on("aff", &[&blue, &plain]).await;

    env.patch_node(
        &blue,
        json!({"metadata": {"labels": {"color": "green", "zone": null}}}),
    )
    .await;
    env.wait_pods_exactly_on("sel", &[&plain]).await;
    env.wait_pods_exactly_on("aff", &[&plain]).await;
    env.wait_ds_status("sel", [1, 1, 1, 1, 1, 0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn taints_noschedule_keeps_noexecute_evicts_tolerated_does_not_matter() {
    everynode();
    let env = TestEnv::new("ds-taints").await;
    let a = env.add_node("a", &[], vec![]).await;
    let b = env.add_node("b", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "plain", json!({})))
        .await;
    let tolerating = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}}});
    env.create_daemonset(&daemonset(&env, "tol", tolerating))
        .await;
    env.wait_pods_exactly_on("plain", &[&a, &b]).await;

    // NoSchedule on a: its pod stays (counted misscheduled); a new NoSchedule node gets none.
    env.patch_node(
        &a,
        json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}),
    )
    .await;
    let c = env
        .add_node("c", &[], vec![taint("dedicated", "x", "NoSchedule")])
        .await;
    // NoExecute on b: its pod goes.
    env.patch_node(
        &b,
        json!({"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoExecute"}]}}),
    )
    .await;
    env.wait_pods_exactly_on("plain", &[&a]).await;
    env.wait_ds_status("plain", [0, 0, 0, 0, 0, 1]).await;
    // The tolerating DaemonSet is unaffected and covers c as well.
    env.wait_pods_exactly_on("tol", &[&a, &b, &c]).await;
    env.wait_ds_status("tol", [3, 3, 3, 3, 3, 0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cordoned_node_keeps_its_pod_and_gets_one() {
    everynode();
    let env = TestEnv::new("ds-cordon").await;
    let a = env.add_node("a", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let before = env.wait_pods_exactly_on("agent", &[&a]).await;
    env.cordon(&a).await;
    let b = env.add_node("b", &[], vec![]).await;
    env.cordon(&b).await;
    let after = env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    assert_eq!(
        before[&a].metadata.uid, after[&a].metadata.uid,
        "the cordoned node kept its pod"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    assert_eq!(after[&a].metadata.uid, still[&a].metadata.uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_pod_is_replaced_with_backoff() {
    everynode();
    let env = TestEnv::new("ds-failed").await;
    let a = env.add_node("a", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let mut seen = Vec::new();
    for round in 0..2 {
        let first = env
            .wait_pods_exactly_on("agent", &[&a])
            .await
            .remove(&a)
            .expect("pod on a");
        let name = first.metadata.name.clone().unwrap_or_default();
        seen.push(name.clone());
        pods.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .unwrap_or_else(|e| panic!("mark pod failed: {e}"));
        wait_for(
            &format!("failed pod {name} to be replaced (round {round})"),
            Duration::from_secs(60),
            || async {
                let on_a = env
                    .pods_by_node("app=agent")
                    .await
                    .remove(&a)
                    .unwrap_or_default();
                let names: Vec<String> = on_a
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                if !names.contains(&name) && names.len() == 1 {
                    Ok(())
                } else {
                    Err(format!("{names:?}"))
                }
            },
        )
        .await;
    }
    let events = ds_events(&env, "agent").await;
    for name in &seen {
        let msg = format!(
            "Found failed daemon pod {}/{name} on node {a}, will try to kill it",
            env.ns
        );
        assert!(
            events
                .iter()
                .any(|(r, m)| r == "FailedDaemonPod" && *m == msg),
            "event {msg:?} in {events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_adopted_and_pods_whose_labels_stop_matching_are_released() {
    everynode();
    let env = TestEnv::new("ds-adopt").await;
    let a = env.add_node("a", &[], vec![]).await;
    let b = env.add_node("b", &[], vec![]).await;
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "agent"}},
        "spec": {"nodeName": a, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}], "terminationGracePeriodSeconds": 0}
    })).expect("pod");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &orphan)
        .await
        .unwrap_or_else(|e| panic!("create orphan: {e}"));
    // Let the orphan reach everynode's cache, and make it at least a second older than any pod
    // everynode creates, so even a sync that raced the cache keeps the orphan (oldest pod wins).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // OnDelete: an adopted orphan has no revision hash, so a RollingUpdate DaemonSet would (rightly,
    // as upstream) replace it as outdated right after adopting it.
    let on_delete =
        json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}});
    env.create_daemonset(&daemonset(&env, "agent", on_delete))
        .await;
    let got = env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    assert_eq!(
        got[&a].metadata.name.as_deref(),
        Some("orphan"),
        "the orphan was adopted instead of a new pod"
    );
    let owners = got[&a]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert!(
        owners
            .iter()
            .any(|o| o.kind == "DaemonSet" && o.controller == Some(true)),
        "orphan now controlled: {owners:?}"
    );

    // Relabel the pod on b: it is released (no controller) and replaced.
    let old_b = got[&b].metadata.name.clone().unwrap_or_default();
    pods.patch(
        &old_b,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap_or_else(|e| panic!("relabel: {e}"));
    let after = env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    assert_ne!(after[&b].metadata.name.as_deref(), Some(old_b.as_str()));
    wait_for(
        "the relabelled pod to be released",
        Duration::from_secs(30),
        || async {
            let p = pods.get(&old_b).await.map_err(|e| e.to_string())?;
            let owners = p.metadata.owner_references.unwrap_or_default();
            if owners.iter().any(|o| o.controller == Some(true)) {
                Err(format!("{owners:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_daemonset_lets_the_garbage_collector_remove_its_pods() {
    everynode();
    let env = TestEnv::new("ds-gc").await;
    let a = env.add_node("a", &[], vec![]).await;
    let b = env.add_node("b", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&a, &b]).await;
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    dss.delete("agent", &DeleteParams::background())
        .await
        .unwrap_or_else(|e| panic!("delete ds: {e}"));
    wait_for(
        "the garbage collector to remove the pods and revisions",
        Duration::from_secs(60),
        || async {
            let pods = env.pods_by_node("app=agent").await;
            let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
            let revs = revs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if pods.is_empty() && revs == 0 {
                Ok(())
            } else {
                Err(format!(
                    "pods on {:?}, {revs} revisions",
                    pods.keys().collect::<Vec<_>>()
                ))
            }
        },
    )
    .await;
}

/// everynode is a good citizen on the API: every object it writes (pods, the DaemonSet's status,
/// ControllerRevisions, events) names the field manager `everynode` in its managedFields, not
/// `unknown`.
#[tokio::test(flavor = "multi_thread")]
async fn every_write_names_the_field_manager_everynode() {
    everynode();
    let env = TestEnv::new("ds-manager").await;
    let n0 = env.add_node("n0", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    let pods = env.wait_pods_exactly_on("agent", &[&n0]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
    let managers = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.managed_fields
            .iter()
            .flatten()
            .map(|f| {
                format!(
                    "{}{}",
                    f.manager.clone().unwrap_or_default(),
                    f.subresource
                        .as_deref()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
    };
    for pod in pods.values() {
        // kwok writes the pod's status as `kwok`; everynode wrote the pod.
        let m = managers(&pod.metadata);
        assert_eq!(
            m.first().map(String::as_str),
            Some("everynode"),
            "pod: {m:?}"
        );
        assert!(!m.iter().any(|m| m.starts_with("unknown")), "pod: {m:?}");
    }
    let ds: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let ds = ds.get("agent").await.unwrap_or_else(|e| panic!("get: {e}"));
    assert!(
        managers(&ds.metadata).contains(&"everynode/status".to_string()),
        "DaemonSet status: {:?}",
        managers(&ds.metadata)
    );
    let revs: Api<ControllerRevision> = Api::namespaced(env.client.clone(), &env.ns);
    let revs = revs
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list revisions: {e}"));
    assert!(!revs.items.is_empty());
    for rev in &revs.items {
        assert_eq!(managers(&rev.metadata), vec!["everynode"], "revision");
    }
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let events = events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list events: {e}"));
    let ours: Vec<&Event> = events
        .items
        .iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("DaemonSet"))
        .collect();
    assert!(!ours.is_empty(), "no event on the DaemonSet");
    for ev in ours {
        assert_eq!(managers(&ev.metadata), vec!["everynode"], "event");
    }
}
