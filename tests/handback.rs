//! Handing back to kube-controller-manager: a DaemonSet that everynode took through two rollouts (so
//! every ControllerRevision was named by everynode) is taken over by the upstream DaemonSet controller
//! without a pod restarting or a revision changing, and `kubectl rollout undo` under upstream works
//! from everynode's history with the revision numbering upstream gives a rollback.

mod support;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::revisions::{StoredRevision, VERSION_ANNOTATION, data_id};
use support::{TestEnv, daemonset, wait_for};

const DS: &str = "agent";

/// What identifies a running pod and whether it restarted: uid -> (node, restart count, hash label).
async fn pod_states(env: &TestEnv) -> BTreeMap<String, (String, i32, String)> {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={DS}")))
        .await
        .unwrap_or_else(|e| panic!("list pods: {e}"));
    list.items
        .iter()
        .map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum());
            (
                p.metadata.uid.clone().unwrap_or_default(),
                (
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                    restarts,
                    support::revision_hash(&p.metadata)
                        .cloned()
                        .unwrap_or_default(),
                ),
            )
        })
        .collect()
}

async fn revisions(env: &TestEnv) -> Vec<StoredRevision> {
    support::revisions::list(&env.client, &env.ns)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Revisions as (data id, revision number, name, hash label), the comparable part.
fn revision_table(revs: &[StoredRevision]) -> Vec<(String, i64, String, Option<String>)> {
    let mut t: Vec<_> = revs
        .iter()
        .map(|r| {
            (
                data_id(&r.data),
                r.revision,
                r.name.clone(),
                r.hash_label.clone(),
            )
        })
        .collect();
    t.sort();
    t
}

/// Everything about revisions that must not change, with the data as [`data_id`].
fn compact(revs: &[StoredRevision]) -> Vec<String> {
    revs.iter()
        .map(|r| {
            format!(
                "{} {} #{} label={:?} rv={}",
                r.name,
                data_id(&r.data),
                r.revision,
                r.hash_label,
                r.resource_version
            )
        })
        .collect()
}

/// Waits until every pod of the DaemonSet is on `hash`, one Ready pod per node, and the status
/// counts `nodes` everywhere.
async fn wait_rolled(env: &TestEnv, nodes: &[String], hash: &str) {
    wait_for(
        &format!("every pod of {DS} on revision {hash}"),
        Duration::from_secs(120),
        || async {
            let pods = env.pods_by_node(&format!("app={DS}")).await;
            let old: Vec<String> = pods
                .values()
                .flatten()
                .filter(|p| support::revision_hash(&p.metadata).map(String::as_str) != Some(hash))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            if old.is_empty() {
                Ok(())
            } else {
                Err(format!("not on {hash}: {old:?}"))
            }
        },
    )
    .await;
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on(DS, &refs).await;
    let n = i32::try_from(nodes.len()).unwrap_or(0);
    env.wait_ds_status(DS, [n, n, n, n, n, 0]).await;
}

fn hash_of(revs: &[StoredRevision], version: &str) -> String {
    revs.iter()
        .find(|r| data_id(&r.data).starts_with(&format!("v{version}#")))
        .map(|r| r.pod_hash().to_string())
        .unwrap_or_else(|| panic!("no revision with template version {version}: {revs:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_takes_back_everynode_history_without_restarting_a_pod() {
    let env = TestEnv::new("handback").await;
    let cp = env.cp;
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    for n in &nodes {
        env.wait_node_ready(n).await;
    }

    // everynode alone (this control plane's kube-controller-manager runs no DaemonSet controller):
    // the first revision and two rollouts, so it named every revision itself.
    let mut everynode = support::start_everynode("everynode-handback", &["--leader-elect=false"]);
    env.create_daemonset(&daemonset(
        &env,
        DS,
        json!({"spec": {"template": {"metadata": {"annotations": {VERSION_ANNOTATION: "1"}}}}}),
    ))
    .await;
    let h1 = env.current_hash(1).await;
    wait_rolled(&env, &nodes, &h1).await;
    for v in 2..=3i64 {
        env.patch_template(
            DS,
            json!({"metadata": {"annotations": {VERSION_ANNOTATION: v.to_string()}}}),
        )
        .await;
        let h = env.current_hash(v).await;
        wait_rolled(&env, &nodes, &h).await;
    }
    let revs_before = revisions(&env).await;
    let table_before = revision_table(&revs_before);
    eprintln!("revisions named by everynode: {table_before:?}");
    assert_eq!(
        table_before
            .iter()
            .map(|(id, n, _, _)| (id.split('#').next().unwrap_or_default().to_string(), *n))
            .collect::<Vec<_>>(),
        vec![("v1".into(), 1), ("v2".into(), 2), ("v3".into(), 3)],
        "everynode's history before the handback"
    );
    let pods_before = pod_states(&env).await;
    assert_eq!(pods_before.len(), 3, "{pods_before:?}");
    everynode.stop(Duration::from_secs(10));

    // The upstream DaemonSet controller, in a kube-controller-manager of its own.
    let args = cp
        .kcm_args("kcm-handback", "daemonset-controller", 180)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut upstream = cp
        .spawn_extra("kcm-handback", "kube-controller-manager", &args)
        .unwrap_or_else(|e| panic!("{e}"));
    let logs = format!(
        "{}; everynode: {}; upstream daemonset-controller: {}",
        cp.describe_logs(),
        everynode.log().display(),
        upstream.log().display()
    );
    eprintln!("upstream DaemonSet controller started; {logs}");

    // A node joining proves the upstream controller has synced the DaemonSet: only a controller
    // that runs gives it a pod, and the same sync judges every existing pod and revision.
    let late = env.add_node("late", &[], vec![]).await;
    nodes.push(late);
    let h3 = hash_of(&revs_before, "3");
    wait_rolled(&env, &nodes, &h3).await;
    // And a little longer, in case anything were still to be replaced.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pods_after = pod_states(&env).await;
    for (uid, state) in &pods_before {
        assert_eq!(
            pods_after.get(uid),
            Some(state),
            "pod {uid} (node, restarts, hash) changed when upstream took over; {logs}"
        );
    }
    assert_eq!(
        pods_after.len(),
        4,
        "only the late node's pod is new: {pods_after:?}; {logs}"
    );
    assert_eq!(
        compact(&revisions(&env).await),
        compact(&revs_before),
        "upstream added, removed or changed a ControllerRevision (name, data, number, hash label, resourceVersion); {logs}"
    );
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), &env.ns);
    let ds = dss
        .get(DS)
        .await
        .unwrap_or_else(|e| panic!("get {DS}: {e}"));
    assert_eq!(
        ds.status.as_ref().and_then(|s| s.observed_generation),
        ds.metadata.generation,
        "status observed by upstream; {logs}"
    );

    // Roll back under upstream: to everynode's v2 revision, renumbered to max + 1 = 4 (upstream's
    // rollback rule), pods moving to that revision's existing hash, and no revision created.
    env.kubectl(&["rollout", "undo", &format!("daemonset/{DS}"), "-n", &env.ns]);
    let h2 = hash_of(&revs_before, "2");
    wait_for(
        "the v2 revision renumbered to 4",
        Duration::from_secs(60),
        || async {
            let revs = revisions(&env).await;
            let t: Vec<(String, i64)> = revision_table(&revs)
                .into_iter()
                .map(|(id, n, _, _)| (id.split('#').next().unwrap_or_default().to_string(), n))
                .collect();
            if t == [("v1".to_string(), 1), ("v2".into(), 4), ("v3".into(), 3)] {
                Ok(())
            } else {
                Err(format!("{t:?}"))
            }
        },
    )
    .await;
    wait_rolled(&env, &nodes, &h2).await;
    let revs_after = revisions(&env).await;
    let same_identity = |t: Vec<(String, i64, String, Option<String>)>| {
        t.into_iter()
            .map(|(id, _, name, label)| (id, name, label))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        same_identity(revision_table(&revs_after)),
        same_identity(table_before.clone()),
        "after the undo: the same revisions (names, data, hash labels), only renumbered; {logs}"
    );
    eprintln!(
        "after undo under upstream: {:?}",
        revision_table(&revs_after)
    );
    upstream.stop(Duration::from_secs(10));
}
