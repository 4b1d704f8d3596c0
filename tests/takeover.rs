//! Taking over from kube-controller-manager: DaemonSets that the upstream DaemonSet controller
//! brought to Ready keep every pod and every ControllerRevision when everynode replaces it, and the
//! revision data everynode computes is byte-identical to what upstream wrote.

mod support;

use everynode::controller::daemonset_object::CachedDaemonSet;
use everynode::core::revision_data::snapshot_patch;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use support::{TestEnv, daemonset, wait_for};

fn templates() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "escapes",
            json!({"spec": {"template": {
                "metadata": {"annotations": {"note": "<a> & <b> \u{2028} é ✓ \"q\" \\ /"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                    "args": ["--x=<y>&z", "tab\there"], "env": [{"name": "E", "value": "1 < 2 && 3 > 2"}]}]}}}}),
        ),
        (
            "empty-resources",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {}}]}}}}),
        ),
        (
            "hostnet",
            json!({"spec": {"template": {"spec": {"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}}}}),
        ),
        (
            "tolerations",
            json!({"spec": {"template": {"spec": {"tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}}}}),
        ),
        (
            "volumes",
            json!({"spec": {"minReadySeconds": 1, "template": {"spec": {
                "volumes": [{"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}}, {"name": "tmp", "emptyDir": {}}],
                "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                    "volumeMounts": [{"name": "host", "mountPath": "/host", "readOnly": true}, {"name": "tmp", "mountPath": "/tmp"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}}]}}}}),
        ),
    ]
}

async fn pod_uids(env: &TestEnv) -> BTreeSet<String> {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let list = pods
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list pods: {e}"));
    list.items
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect()
}

/// Revision name -> exact `data` bytes as stored.
async fn revisions(env: &TestEnv) -> Vec<(String, String)> {
    let req = http::Request::get(format!(
        "/apis/apps/v1/namespaces/{}/controllerrevisions",
        env.ns
    ))
    .body(Vec::new())
    .expect("request");
    let text = env
        .client
        .request_text(req)
        .await
        .unwrap_or_else(|e| panic!("list revisions: {e}"));
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Vec<Item<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
    }
    let list: List = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse revisions: {e}"));
    let mut out: Vec<(String, String)> = list
        .items
        .into_iter()
        .map(|i| {
            (
                i.metadata.name.unwrap_or_default(),
                i.data.get().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn everynode_takes_over_from_the_upstream_controller_without_touching_a_pod() {
    let env = TestEnv::new("takeover").await;
    let cp = env.cp;
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    let node_refs: Vec<&str> = nodes.iter().map(String::as_str).collect();

    // The upstream DaemonSet controller, in a kube-controller-manager of its own.
    let args = cp
        .kcm_args("kcm-daemonset", "daemonset-controller", 180)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut upstream = cp
        .spawn_extra("kcm-daemonset", "kube-controller-manager", &args)
        .unwrap_or_else(|e| panic!("{e}"));
    for (name, patch) in templates() {
        env.create_daemonset(&daemonset(&env, name, patch)).await;
    }
    for (name, _) in templates() {
        env.wait_pods_exactly_on(name, &node_refs).await;
        env.wait_ds_status(name, [3, 3, 3, 3, 3, 0]).await;
    }
    upstream.stop(Duration::from_secs(10));
    let pods_before = pod_uids(&env).await;
    let revisions_before = revisions(&env).await;
    assert_eq!(pods_before.len(), 15);
    assert_eq!(
        revisions_before.len(),
        5,
        "one revision per DaemonSet: {revisions_before:?}"
    );

    // Byte-for-byte: the data everynode would write equals what upstream wrote.
    let dss: Api<CachedDaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    for (name, _) in templates() {
        let ds = dss
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"));
        let ours = String::from_utf8(snapshot_patch(&ds.raw_template)).expect("utf-8");
        let theirs = revisions_before
            .iter()
            .find(|(n, _)| n.starts_with(&format!("{name}-")))
            .map(|(_, d)| d.clone());
        assert_eq!(Some(ours), theirs, "revision data of {name}");
    }

    // Take over and give everynode time to sync every DaemonSet.
    let _everynode = support::start_everynode("everynode-takeover", &[]);
    let late = env.add_node("late", &[], vec![]).await;
    let mut with_late = node_refs.clone();
    with_late.push(&late);
    for (name, _) in templates() {
        env.wait_pods_exactly_on(name, &with_late).await;
        env.wait_ds_status(name, [4, 4, 4, 4, 4, 0]).await;
    }
    let dsapi: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    wait_for(
        "everynode to have synced every DaemonSet",
        Duration::from_secs(30),
        || async {
            let l = dsapi
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let pending: Vec<_> = l
                .items
                .iter()
                .filter(|d| {
                    d.status.as_ref().and_then(|s| s.observed_generation) != d.metadata.generation
                })
                .collect();
            if pending.is_empty() {
                Ok(())
            } else {
                Err(format!("{} not observed", pending.len()))
            }
        },
    )
    .await;
    let pods_after = pod_uids(&env).await;
    assert!(
        pods_before.is_subset(&pods_after),
        "no pod that upstream created was deleted"
    );
    assert_eq!(
        pods_after.len(),
        20,
        "only the 5 pods for the new node were created"
    );
    assert_eq!(
        revisions(&env).await,
        revisions_before,
        "no ControllerRevision added, removed or changed"
    );
}
