//! Catalogue scenarios (reference §10) that no other binary covered, on the real control plane:
//! which changes of DaemonSets, pods, nodes and ControllerRevisions queue a DaemonSet and which
//! must not (§1, catalogue #1, #2, #45, #46, #49–#58, #78), a surge rollout that follows a change of
//! tolerations (#94), and a surge rollout whose new pods flap between Ready and NotReady (#102).
//!
//! Whether a DaemonSet was synced is read from the cluster, not from everynode's internals: the
//! handler tests give their DaemonSets `revisionHistoryLimit: 0` and plant a *probe*, an old
//! ControllerRevision owned by the DaemonSet that no pod uses. Adding an owned revision queues
//! nothing (§1.3), and every complete sync deletes such a revision (history cleanup, §2.3), so
//! "the probe is gone" means "the DaemonSet was synced after the probe was planted" and "the probe
//! is still there after a while" means it was not.

mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::watch::{InvariantWatcher, PodView, set_pod_ready};
use support::{TestEnv, daemonset, everynode_with_metrics, merge, pod_ready, taint, wait_for};

/// How long a change may take to show its consequence (a sync takes milliseconds; the bound is for
/// a loaded 2-core machine).
const QUEUED_WITHIN: Duration = Duration::from_secs(20);
/// How long nothing may happen after a change that must not queue a DaemonSet.
const QUIET_FOR: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A test DaemonSet (see [`support::daemonset`]) whose every sync deletes the probes.
fn probe_ds(env: &TestEnv, name: &str, patch: serde_json::Value) -> DaemonSet {
    let mut p = json!({"spec": {"revisionHistoryLimit": 0}});
    merge(&mut p, patch);
    daemonset(env, name, p)
}

fn ds_api(env: &TestEnv) -> Api<DaemonSet> {
    Api::namespaced(env.client.clone(), &env.ns)
}

fn pod_api(env: &TestEnv) -> Api<Pod> {
    Api::namespaced(env.client.clone(), &env.ns)
}

fn rev_api(env: &TestEnv) -> Api<ControllerRevision> {
    Api::namespaced(env.client.clone(), &env.ns)
}

/// The ownerReference a DaemonSet's controller ref is made of.
async fn controller_ref_to(env: &TestEnv, ds: &str) -> serde_json::Value {
    let d = ds_api(env)
        .get(ds)
        .await
        .unwrap_or_else(|e| panic!("get DaemonSet {ds}: {e}"));
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds,
        "uid": d.metadata.uid.unwrap_or_default(),
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// Creates an old ControllerRevision owned by `ds` (its selector's labels, a hash no pod has,
/// revision 0, data unlike any template) and returns its name.
async fn create_probe(env: &TestEnv, ds: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = ds_api(env)
        .get(ds)
        .await
        .unwrap_or_else(|e| panic!("get DaemonSet {ds}: {e}"));
    let mut labels: BTreeMap<String, String> = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    labels.insert(
        everynode::core::labels::CONTROLLER_REVISION_HASH.into(),
        format!("probe-{n}"),
    );
    let name = format!("{ds}-probe-{n}");
    let rev: ControllerRevision = serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": env.ns, "labels": labels,
            "ownerReferences": [controller_ref_to(env, ds).await],
        },
        "revision": 0,
        "data": {"probe": n},
    }))
    .unwrap_or_else(|e| panic!("probe revision: {e}"));
    rev_api(env)
        .create(&PostParams::default(), &rev)
        .await
        .unwrap_or_else(|e| panic!("create probe {name}: {e}"));
    name
}

async fn revision_exists(env: &TestEnv, name: &str) -> bool {
    rev_api(env)
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get revision {name}: {e}"))
        .is_some()
}

/// Plants one probe under each of `dss` once they are idle, and checks that none of them is
/// synced for [`QUIET_FOR`] (which also shows that adding an owned revision queues nothing, and
/// that an idle DaemonSet is not synced in a loop). A probe that goes at once was caught by a sync
/// still under way; it is planted again, at most three times.
async fn plant_probes(env: &TestEnv, dss: &[&str]) -> Vec<String> {
    let mut last = String::new();
    for _attempt in 0..3 {
        let mut probes = Vec::new();
        for ds in dss {
            probes.push(create_probe(env, ds).await);
        }
        tokio::time::sleep(QUIET_FOR).await;
        let mut gone = Vec::new();
        for p in &probes {
            if !revision_exists(env, p).await {
                gone.push(p.clone());
            }
        }
        if gone.is_empty() {
            return probes;
        }
        last = format!("{gone:?}");
        for p in &probes {
            let _ = rev_api(env).delete(p, &DeleteParams::default()).await;
        }
    }
    panic!(
        "the DaemonSets {dss:?} do not stay idle: probes {last} were deleted by syncs nobody asked for"
    );
}

async fn plant_probe(env: &TestEnv, ds: &str) -> String {
    plant_probes(env, &[ds]).await.remove(0)
}

/// Waits until `probe` is gone: its DaemonSet was synced after `what`.
async fn expect_synced(env: &TestEnv, probe: &str, what: &str) {
    wait_for(
        &format!("{what} to sync the DaemonSet (probe {probe} deleted)"),
        QUEUED_WITHIN,
        || async {
            if revision_exists(env, probe).await {
                Err("probe still there".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;
}

/// Checks that every one of `probes` stays for [`QUIET_FOR`]: nothing synced their DaemonSets
/// after `what`.
async fn expect_quiet(env: &TestEnv, probes: &[&str], what: &str) {
    let start = Instant::now();
    while start.elapsed() < QUIET_FOR {
        for p in probes {
            assert!(
                revision_exists(env, p).await,
                "{what} synced a DaemonSet that must not be queued (probe {p} deleted after {:.1}s)",
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A pod of this test's namespace from JSON (containers default to one pause container).
fn pod(env: &TestEnv, name: &str, mut spec: serde_json::Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "namespace": env.ns},
        "spec": {
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
            "terminationGracePeriodSeconds": 0,
        },
    });
    merge(&mut p, std::mem::take(&mut spec));
    serde_json::from_value(p).unwrap_or_else(|e| panic!("pod {name}: {e}"))
}

async fn create_pod(env: &TestEnv, p: &Pod) {
    pod_api(env)
        .create(&PostParams::default(), p)
        .await
        .unwrap_or_else(|e| panic!("create pod {:?}: {e}", p.metadata.name));
}

async fn patch_pod(env: &TestEnv, name: &str, patch: serde_json::Value) {
    pod_api(env)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patch pod {name}: {e}"));
}

async fn delete_pod(env: &TestEnv, name: &str) {
    pod_api(env)
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap_or_else(|e| panic!("delete pod {name}: {e}"));
}

async fn wait_pod_gone(env: &TestEnv, name: &str, why: &str) {
    wait_for(
        &format!("pod {name} to be deleted ({why})"),
        QUEUED_WITHIN,
        || async {
            match pod_api(env).get_opt(name).await {
                Ok(None) => Ok(()),
                Ok(Some(p)) if p.metadata.deletion_timestamp.is_some() => Ok(()),
                other => Err(format!(
                    "{:?}",
                    other.map(|p| p.map(|p| p.metadata.owner_references))
                )),
            }
        },
    )
    .await;
}

/// The UID in the pod's controller ownerReference.
fn controller_uid(p: &Pod) -> Option<String> {
    p.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

fn is_live(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
}

fn node_of(p: &Pod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// The one live pod of `ds` on `node` once it is Ready and, if `not_uid` is given, a different pod.
async fn wait_ready_pod_on(env: &TestEnv, ds: &str, node: &str, not_uid: Option<&str>) -> Pod {
    wait_for(
        &format!("one Ready pod of {ds} on {node} (other than {not_uid:?})"),
        QUEUED_WITHIN + QUEUED_WITHIN,
        || async {
            let by_node = env.pods_by_node(&format!("app={ds}")).await;
            let live: Vec<Pod> = by_node
                .get(node)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(is_live)
                .collect();
            match live.as_slice() {
                [p] if pod_ready(p) && p.metadata.uid.as_deref() != not_uid => Ok(p.clone()),
                _ => Err(format!(
                    "{:?}",
                    live.iter()
                        .map(|p| (p.metadata.name.clone(), pod_ready(p)))
                        .collect::<Vec<_>>()
                )),
            }
        },
    )
    .await
}

/// A test environment with `nodes` fake nodes (`n0`, `n1`, ...) carrying `labels`, everynode
/// running.
async fn setup(name: &str, nodes: usize, labels: &[(&str, &str)]) -> (TestEnv, Vec<String>) {
    everynode_with_metrics();
    let env = TestEnv::new(name).await;
    let mut names = Vec::new();
    for i in 0..nodes {
        names.push(env.add_node(&format!("n{i}"), labels, vec![]).await);
    }
    (env, names)
}

// ---------------------------------------------------------------------------------------------
// DaemonSet handlers (§1.2)

/// Catalogue 10.1 #1 (`TestDeleteFinalStateUnknown`) and #2 (`TestExpectationsOnRecreate`), and the
/// DaemonSet update handler of §1.2: creating a DaemonSet syncs it and the status write it causes
/// queues it once more without a loop (the DaemonSet then stays idle and its resourceVersion does
/// not move); a metadata-only update queues it; deleting it is handled (everynode forgets its
/// `everynode_daemonset_pods` series, the only outside effect of the delete handler); recreating it
/// at once under the same name (new UID) starts from fresh expectations: the new DaemonSet creates
/// its own pod and reports it. A real cluster cannot hand everynode a tombstone on purpose; the
/// delete path tested here is the one a tombstone takes.
#[tokio::test(flavor = "multi_thread")]
async fn daemonset_add_update_delete_and_recreate() {
    let port = everynode_with_metrics();
    let (env, nodes) = setup("cat-ds", 1, &[]).await;
    env.create_daemonset(&probe_ds(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;

    // #2: no sync loop once the status is written.
    let rv = ds_api(&env)
        .get("agent")
        .await
        .ok()
        .map(|d| d.metadata.resource_version);
    let probe = plant_probe(&env, "agent").await;
    let rv_after = ds_api(&env)
        .get("agent")
        .await
        .ok()
        .map(|d| d.metadata.resource_version);
    assert_eq!(rv, rv_after, "the idle DaemonSet was written again");

    // §1.2 update: a change of metadata only (no new generation) queues it too.
    ds_api(&env)
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touched": "1"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("annotate DaemonSet: {e}"));
    expect_synced(&env, &probe, "a metadata update of the DaemonSet").await;

    // #1: the delete handler runs.
    let series = format!(
        "everynode_daemonset_pods{{namespace=\"{}\",name=\"agent\",state=\"desired\"}} 1",
        env.ns
    );
    wait_for(
        "the DaemonSet's series in /metrics",
        QUEUED_WITHIN,
        || async {
            let (_, body) = support::http_get(port, "/metrics").await?;
            body.lines()
                .any(|l| l == series)
                .then_some(())
                .ok_or_else(|| format!("no line {series}"))
        },
    )
    .await;
    let old_uid = ds_api(&env)
        .get("agent")
        .await
        .ok()
        .and_then(|d| d.metadata.uid)
        .unwrap_or_default();
    ds_api(&env)
        .delete("agent", &DeleteParams::background())
        .await
        .unwrap_or_else(|e| panic!("delete DaemonSet: {e}"));
    let prefix = format!(
        "everynode_daemonset_pods{{namespace=\"{}\",name=\"agent\"",
        env.ns
    );
    wait_for(
        "everynode to forget the deleted DaemonSet's series",
        QUEUED_WITHIN,
        || async {
            let (_, body) = support::http_get(port, "/metrics").await?;
            let left: Vec<&str> = body.lines().filter(|l| l.starts_with(&prefix)).collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;

    // #2: recreated at once (the old pod may still be there): fresh expectations, its own pod.
    env.create_daemonset(&probe_ds(&env, "agent", json!({})))
        .await;
    let new_uid = ds_api(&env)
        .get("agent")
        .await
        .ok()
        .and_then(|d| d.metadata.uid)
        .unwrap_or_default();
    assert_ne!(old_uid, new_uid);
    let p = wait_ready_pod_on(&env, "agent", &nodes[0], None).await;
    let p = if controller_uid(&p).as_deref() == Some(new_uid.as_str()) {
        p
    } else {
        wait_ready_pod_on(&env, "agent", &nodes[0], p.metadata.uid.as_deref()).await
    };
    assert_eq!(
        controller_uid(&p),
        Some(new_uid),
        "the pod belongs to the new DaemonSet"
    );
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
}

// ---------------------------------------------------------------------------------------------
// Node handlers (§1.5)

/// Catalogue 10.1 #49 (`TestAddNode`, newest version: a node add queues only the DaemonSets that
/// must act on it) and #45 (`TestUpdateNode`): adding a node the DaemonSet does not select, and
/// updates of a node's annotations or status (allocatable), sync nothing; the node's labels coming
/// to match the selector, and a new matching node, get a pod each.
#[tokio::test(flavor = "multi_thread")]
async fn node_add_and_update_queue_only_daemonsets_that_must_act() {
    let (env, nodes) = setup("cat-node", 1, &[("role", "daemon")]).await;
    env.create_daemonset(&probe_ds(
        &env,
        "agent",
        json!({"spec": {"template": {"spec": {"nodeSelector": {"role": "daemon"}}}}}),
    ))
    .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;

    let probe = plant_probe(&env, "agent").await;
    let stranger = env.add_node("stranger", &[], vec![]).await;
    env.wait_node_ready(&stranger).await;
    env.patch_node(
        &nodes[0],
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    )
    .await;
    Api::<Node>::all(env.client.clone())
        .patch_status(
            &nodes[0],
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"allocatable": {"pods": "99"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("patch node status: {e}"));
    expect_quiet(
        &env,
        &[&probe],
        "adding an unselected node, or changing a node's annotations or allocatable",
    )
    .await;

    // #45 (b): the stranger's labels now match.
    env.patch_node(
        &stranger,
        json!({"metadata": {"labels": {"role": "daemon"}}}),
    )
    .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0], &stranger])
        .await;
    // #49: a new matching node.
    let n1 = env.add_node("n1", &[("role", "daemon")], vec![]).await;
    env.wait_pods_exactly_on("agent", &[&nodes[0], &stranger, &n1])
        .await;
    env.wait_ds_status("agent", [3, 3, 3, 3, 3, 0]).await;
}

// ---------------------------------------------------------------------------------------------
// Pod handlers (§1.4)

/// Catalogue 10.1 #52 (`TestUpdatePod`), #50 (`TestAddPod`) and #57 (`TestDeletePod`): an update of
/// an owned pod (new resourceVersion) syncs its owner; a pod that appears already owned by the
/// DaemonSet on a node that has its pod (kwok leaves it alone, so its add is its only event) is
/// seen by the owner, which deletes the excess pod; deleting the owned pod makes the owner create
/// a new one.
#[tokio::test(flavor = "multi_thread")]
async fn owned_pod_add_update_and_delete_queue_the_owner() {
    let (env, nodes) = setup("cat-owned", 1, &[]).await;
    env.create_daemonset(&probe_ds(&env, "agent", json!({})))
        .await;
    let first = env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
    let first = first[&nodes[0]].clone();
    let first_name = first.metadata.name.clone().unwrap_or_default();

    // #52
    let probe = plant_probe(&env, "agent").await;
    patch_pod(
        &env,
        &first_name,
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    )
    .await;
    expect_synced(&env, &probe, "an update of the owned pod").await;

    // #50
    let extra = pod(
        &env,
        "agent-extra",
        json!({
            "metadata": {
                "labels": {"app": "agent", controlplane::NEVER_READY_LABEL: "true"},
                "ownerReferences": [controller_ref_to(&env, "agent").await],
            },
            "spec": {"nodeName": nodes[0]},
        }),
    );
    create_pod(&env, &extra).await;
    wait_pod_gone(
        &env,
        "agent-extra",
        "the owner saw a second pod on the node",
    )
    .await;
    let still = wait_ready_pod_on(&env, "agent", &nodes[0], None).await;
    assert_eq!(
        still.metadata.uid, first.metadata.uid,
        "the older pod stays, the excess one goes"
    );

    // #57
    delete_pod(&env, &first_name).await;
    wait_ready_pod_on(&env, "agent", &nodes[0], first.metadata.uid.as_deref()).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
}

/// Catalogue 10.1 #46 (`TestDeleteNoDaemonPod`): adding, running and deleting (a) a pod of no
/// controller whose labels do not match, (b) a pod whose labels match but whose controller is
/// something else (a ConfigMap, so that the garbage collector keeps it), and (c) an unscheduled
/// pod of no controller, never syncs the DaemonSet.
#[tokio::test(flavor = "multi_thread")]
async fn pods_that_are_not_the_daemonsets_queue_nothing() {
    let (env, nodes) = setup("cat-foreign", 1, &[]).await;
    env.create_daemonset(&probe_ds(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.ns);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    let cm = cms
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("create ConfigMap: {e}"));

    let probe = plant_probe(&env, "agent").await;
    let pods = [
        pod(
            &env,
            "plain",
            json!({"metadata": {"labels": {"other": "x"}}, "spec": {"nodeName": nodes[0]}}),
        ),
        pod(
            &env,
            "foreign",
            json!({
                "metadata": {
                    "labels": {"app": "agent"},
                    "ownerReferences": [{
                        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                        "uid": cm.metadata.uid.clone().unwrap_or_default(), "controller": true,
                    }],
                },
                "spec": {"nodeName": nodes[0]},
            }),
        ),
        pod(
            &env,
            "unscheduled",
            json!({"metadata": {"labels": {"other": "x"}}, "spec": {"schedulerName": "no-such-scheduler"}}),
        ),
    ];
    for p in &pods {
        create_pod(&env, p).await;
    }
    wait_for("kwok to run the bound pods", QUEUED_WITHIN, || async {
        let mut ready = 0;
        for name in ["plain", "foreign"] {
            if pod_api(&env).get(name).await.is_ok_and(|p| pod_ready(&p)) {
                ready += 1;
            }
        }
        if ready == 2 {
            Ok(())
        } else {
            Err(format!("{ready} of 2 Ready"))
        }
    })
    .await;
    expect_quiet(
        &env,
        &[&probe],
        "adding and running pods that are not the DaemonSet's",
    )
    .await;
    for p in &pods {
        delete_pod(&env, p.metadata.name.as_deref().unwrap_or_default()).await;
    }
    for name in ["plain", "foreign", "unscheduled"] {
        wait_for(&format!("pod {name} gone"), QUEUED_WITHIN, || async {
            match pod_api(&env).get_opt(name).await {
                Ok(None) => Ok(()),
                other => Err(format!("{:?}", other.map(|p| p.map(|p| p.metadata.name)))),
            }
        })
        .await;
    }
    expect_quiet(
        &env,
        &[&probe],
        "deleting pods that are not the DaemonSet's",
    )
    .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
}

/// Removes a pod's finalizers when dropped, also when the test fails: a pod held by a finalizer
/// would keep the namespace from being deleted by the next run.
struct Unfinalize<'a>(&'a TestEnv, &'static str);

impl Drop for Unfinalize<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.0.cp.binaries().path("kubectl"))
            .arg(format!("--kubeconfig={}", self.0.cp.kubeconfig().display()))
            .args(["-n", &self.0.ns, "patch", "pod", self.1, "--type=merge"])
            .args(["-p", r#"{"metadata":{"finalizers":null}}"#])
            .output();
    }
}

/// Catalogue 10.1 #53 (`TestUpdatePodOrphanSameLabels`) and #58 (`TestDeletePodOrphan`): an orphan
/// whose labels match the selector, updated without a label change and then deleted, syncs
/// nothing. On a real cluster a matching orphan is adopted at once; this one is kept an orphan by
/// being deleted (a finalizer holds it) before the DaemonSet exists, since a DaemonSet never adopts
/// a pod that is being deleted. Its update therefore takes the handler's delete path (a pod with a
/// deletionTimestamp counts as deleted), which must not queue for an orphan either.
#[tokio::test(flavor = "multi_thread")]
async fn orphan_pod_update_and_delete_queue_nothing() {
    let (env, nodes) = setup("cat-orphan", 1, &[]).await;
    let orphan = pod(
        &env,
        "orphan",
        json!({
            "metadata": {"labels": {"app": "agent"}, "finalizers": ["everynode.test/hold"]},
            "spec": {"schedulerName": "no-such-scheduler"},
        }),
    );
    create_pod(&env, &orphan).await;
    let _release = Unfinalize(&env, "orphan");
    pod_api(&env)
        .delete("orphan", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete orphan: {e}"));
    env.create_daemonset(&probe_ds(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;

    let probe = plant_probe(&env, "agent").await;
    let o = pod_api(&env)
        .get("orphan")
        .await
        .unwrap_or_else(|e| panic!("get orphan: {e}"));
    assert!(o.metadata.owner_references.unwrap_or_default().is_empty());
    patch_pod(
        &env,
        "orphan",
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    )
    .await;
    expect_quiet(
        &env,
        &[&probe],
        "an update of a matching orphan without a label change",
    )
    .await;
    patch_pod(&env, "orphan", json!({"metadata": {"finalizers": null}})).await;
    wait_for("the orphan to be gone", QUEUED_WITHIN, || async {
        match pod_api(&env).get_opt("orphan").await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|p| p.is_some()))),
        }
    })
    .await;
    expect_quiet(&env, &[&probe], "the deletion of a matching orphan").await;
}

/// Three DaemonSets for the orphan tests: `a` selects `shared=yes`, `b` selects `b=b`, `c` selects
/// `c=c`; each has its own `app` label for the harness.
async fn three_daemonsets(env: &TestEnv, node: &str) {
    for (name, key, value) in [("a", "shared", "yes"), ("b", "b", "b"), ("c", "c", "c")] {
        env.create_daemonset(&probe_ds(
            env,
            name,
            json!({"spec": {
                "selector": {"matchLabels": {"app": null, key: value}},
                "template": {"metadata": {"labels": {key: value}}},
            }}),
        ))
        .await;
    }
    for name in ["a", "b", "c"] {
        env.wait_pods_exactly_on(name, &[node]).await;
        env.wait_ds_status(name, [1, 1, 1, 1, 1, 0]).await;
    }
}

/// Waits until the pod has a controller reference and returns the owner's name.
async fn wait_adopted(env: &TestEnv, name: &str) -> String {
    wait_for(
        &format!("pod {name} to be adopted"),
        QUEUED_WITHIN,
        || async {
            let p = pod_api(env).get(name).await.map_err(|e| e.to_string())?;
            p.metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .find(|r| r.controller == Some(true))
                .map(|r| r.name)
                .ok_or_else(|| "orphan".to_string())
        },
    )
    .await
}

/// Catalogue 10.1 #51 (`TestAddPodOrphan`) and #54 (`TestUpdatePodOrphanWithNewLabels`): an orphan
/// added with labels that two of three DaemonSets select syncs those two and not the third (one of
/// them adopts it); an orphan added with labels nobody selects syncs nothing, and when its labels
/// change to match two DaemonSets, those two are synced and the third is not.
#[tokio::test(flavor = "multi_thread")]
async fn orphan_pod_add_and_label_change_queue_only_matching_daemonsets() {
    let (env, nodes) = setup("cat-orphan-match", 1, &[]).await;
    three_daemonsets(&env, &nodes[0]).await;
    let unscheduled = json!({"spec": {"schedulerName": "no-such-scheduler"}});

    // #51
    let probes = plant_probes(&env, &["a", "b", "c"]).await;
    let mut stray = pod(&env, "stray", unscheduled.clone());
    stray.metadata.labels = Some(
        [("shared", "yes"), ("b", "b")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    create_pod(&env, &stray).await;
    expect_synced(&env, &probes[0], "a matching orphan's add (a)").await;
    expect_synced(&env, &probes[1], "a matching orphan's add (b)").await;
    expect_quiet(&env, &[&probes[2]], "a orphan's add that c does not select").await;
    let owner = wait_adopted(&env, "stray").await;
    assert!(owner == "a" || owner == "b", "adopted by {owner}");

    // #54
    let probes = plant_probes(&env, &["a", "b", "c"]).await;
    let mut stray2 = pod(&env, "stray2", unscheduled);
    stray2.metadata.labels = Some([("other".to_string(), "x".to_string())].into());
    create_pod(&env, &stray2).await;
    let all: Vec<&str> = probes.iter().map(String::as_str).collect();
    expect_quiet(&env, &all, "the add of an orphan nobody selects").await;
    patch_pod(
        &env,
        "stray2",
        json!({"metadata": {"labels": {"shared": "yes", "b": "b"}}}),
    )
    .await;
    expect_synced(&env, &probes[0], "an orphan's labels coming to match a").await;
    expect_synced(&env, &probes[1], "an orphan's labels coming to match b").await;
    expect_quiet(
        &env,
        &[&probes[2]],
        "an orphan's label change that c does not select",
    )
    .await;
    let owner = wait_adopted(&env, "stray2").await;
    assert!(owner == "a" || owner == "b", "adopted by {owner}");
}

/// Two DaemonSets for the controller-ref tests, both over one node: `two` selects `app=two` and
/// runs there, its pods also carry `tier=x`; `one` selects `tier=x` but its nodeSelector matches
/// no node.
async fn one_and_two(env: &TestEnv, node: &str) {
    env.create_daemonset(&probe_ds(
        env,
        "one",
        json!({"spec": {
            "selector": {"matchLabels": {"app": null, "tier": "x"}},
            "template": {
                "metadata": {"labels": {"tier": "x"}},
                "spec": {"nodeSelector": {"role": "nowhere"}},
            },
        }}),
    ))
    .await;
    env.create_daemonset(&probe_ds(
        env,
        "two",
        json!({"spec": {"template": {"metadata": {"labels": {"tier": "x"}}}}}),
    ))
    .await;
    env.wait_pods_exactly_on("two", &[node]).await;
    env.wait_ds_status("two", [1, 1, 1, 1, 1, 0]).await;
    env.wait_ds_status("one", [0, 0, 0, 0, 0, 0]).await;
}

/// Catalogue 10.1 #55 (`TestUpdatePodChangeControllerRef`): moving a pod's controller reference
/// from `two` to `one` syncs both: `one` deletes the pod (it must not run on that node) and `two`
/// creates a new one there. Neither consequence has another trigger: the deletion of a pod owned
/// by `one` queues only `one`.
#[tokio::test(flavor = "multi_thread")]
async fn controller_ref_change_queues_old_and_new_owner() {
    let (env, nodes) = setup("cat-ref-move", 1, &[]).await;
    one_and_two(&env, &nodes[0]).await;
    let p = env.wait_pods_exactly_on("two", &[&nodes[0]]).await[&nodes[0]].clone();
    let name = p.metadata.name.clone().unwrap_or_default();
    patch_pod(
        &env,
        &name,
        json!({"metadata": {"ownerReferences": [controller_ref_to(&env, "one").await]}}),
    )
    .await;
    wait_pod_gone(&env, &name, "its new owner `one` must not run there").await;
    wait_ready_pod_on(&env, "two", &nodes[0], p.metadata.uid.as_deref()).await;
    env.wait_ds_status("two", [1, 1, 1, 1, 1, 0]).await;
}

/// Catalogue 10.1 #56 (`TestUpdatePodControllerRefRemoved`): removing a pod's controller reference
/// syncs its old owner `two` and every DaemonSet that selects it (`one` and `two`). Each probe can
/// only go through that: the adoption that follows queues only the adopter, which was synced
/// before it could adopt. `two` ends with one pod on the node.
#[tokio::test(flavor = "multi_thread")]
async fn controller_ref_removal_queues_old_owner_and_matching_daemonsets() {
    let (env, nodes) = setup("cat-ref-drop", 1, &[]).await;
    one_and_two(&env, &nodes[0]).await;
    let p = env.wait_pods_exactly_on("two", &[&nodes[0]]).await[&nodes[0]].clone();
    let name = p.metadata.name.clone().unwrap_or_default();
    let probes = plant_probes(&env, &["one", "two"]).await;
    patch_pod(&env, &name, json!({"metadata": {"ownerReferences": null}})).await;
    expect_synced(&env, &probes[0], "releasing a pod `one` selects").await;
    expect_synced(&env, &probes[1], "releasing a pod `two` owned").await;
    env.wait_pods_exactly_on("two", &[&nodes[0]]).await;
    env.wait_ds_status("two", [1, 1, 1, 1, 1, 0]).await;
}

// ---------------------------------------------------------------------------------------------
// ControllerRevision handlers (§1.3)

/// Reference §1.3 (ControllerRevision handlers; the catalogue's nearest item is #78,
/// `TestControlledHistories`): adding an owned revision queues nothing (the probe baseline);
/// updating it queues the owner; an orphan revision the selector matches queues the DaemonSet,
/// which adopts it (and, with revisionHistoryLimit 0, deletes it); one it does not match queues
/// nothing and stays; deleting the current revision queues the owner, which creates it again.
#[tokio::test(flavor = "multi_thread")]
async fn revision_changes_queue_their_daemonset() {
    let (env, nodes) = setup("cat-rev", 1, &[]).await;
    env.create_daemonset(&probe_ds(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&nodes[0]]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;
    let revs = rev_api(&env);

    let probe = plant_probe(&env, "agent").await;
    revs.patch(
        &probe,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"touched": "1"}}})),
    )
    .await
    .unwrap_or_else(|e| panic!("annotate probe: {e}"));
    expect_synced(&env, &probe, "an update of an owned revision").await;

    let probe = plant_probe(&env, "agent").await;
    let orphan = |name: &str, app: &str| -> ControllerRevision {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                "app": app, everynode::core::labels::CONTROLLER_REVISION_HASH: name}},
            "revision": 0,
            "data": {"orphan": name},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    };
    revs.create(&PostParams::default(), &orphan("unrelated", "other"))
        .await
        .unwrap_or_else(|e| panic!("create revision: {e}"));
    expect_quiet(
        &env,
        &[&probe],
        "an orphan revision the DaemonSet does not select",
    )
    .await;
    revs.create(&PostParams::default(), &orphan("stray", "agent"))
        .await
        .unwrap_or_else(|e| panic!("create revision: {e}"));
    expect_synced(&env, &probe, "a matching orphan revision").await;
    wait_for(
        "the orphan revision to be adopted and deleted",
        QUEUED_WITHIN,
        || async {
            if revision_exists(&env, "stray").await {
                Err("still there".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;
    assert!(revision_exists(&env, "unrelated").await);

    let current = revs
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap_or_else(|e| panic!("list revisions: {e}"))
        .items;
    assert_eq!(current.len(), 1, "only the current revision is left");
    let name = current[0].metadata.name.clone().unwrap_or_default();
    let uid = current[0].metadata.uid.clone();
    revs.delete(&name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete current revision: {e}"));
    wait_for(
        "the current revision to be created again",
        QUEUED_WITHIN,
        || async {
            match revs.get_opt(&name).await {
                Ok(Some(r)) if r.metadata.uid != uid => Ok(()),
                other => Err(format!("{:?}", other.map(|r| r.map(|r| r.metadata.uid)))),
            }
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Rollouts with surge

/// Marks Ready, like a kubelet, every bound, live pod matching `selector` that carries
/// `controlplane::NEVER_READY_LABEL` (kwok leaves those Pending), until dropped.
struct Readier(tokio::task::JoinHandle<()>);

impl Readier {
    fn start(env: &TestEnv, selector: &str) -> Self {
        let api = pod_api(env);
        let lp = ListParams::default().labels(selector);
        Self(tokio::spawn(async move {
            loop {
                if let Ok(list) = api.list(&lp).await {
                    for p in list.items {
                        if is_never_ready(&p)
                            && is_live(&p)
                            && node_of(&p).is_some()
                            && !pod_ready(&p)
                        {
                            let _ = set_pod_ready(
                                &api,
                                p.metadata.name.as_deref().unwrap_or_default(),
                                true,
                            )
                            .await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }))
    }
}

impl Drop for Readier {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn is_never_ready(p: &Pod) -> bool {
    p.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(controlplane::NEVER_READY_LABEL))
}

fn hash_of(p: &Pod) -> String {
    support::revision_hash(&p.metadata)
        .cloned()
        .unwrap_or_default()
}

/// Waits until the DaemonSet's pods are exactly one Ready pod of revision `hash` on each of
/// `nodes` (none terminating, none elsewhere) and its status says so.
async fn wait_rolled_out(env: &TestEnv, ds: &str, nodes: &[String], hash: &str, timeout: Duration) {
    let want: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
    wait_for(
        &format!("{ds} rolled out to revision {hash} on {want:?}"),
        timeout,
        || async {
            let by_node = env.pods_by_node(&format!("app={ds}")).await;
            let all: Vec<&Pod> = by_node.values().flatten().collect();
            let on: BTreeSet<&str> = all.iter().filter_map(|p| node_of(p)).collect();
            let ok = all.len() == nodes.len()
                && on == want
                && all
                    .iter()
                    .all(|p| is_live(p) && pod_ready(p) && hash_of(p) == hash);
            if ok { Ok(()) } else { Err(describe(&all)) }
        },
    )
    .await;
    let n = i32::try_from(nodes.len()).unwrap_or(0);
    env.wait_ds_status(ds, [n, n, n, n, n, 0]).await;
}

/// `node:pods` with one letter per pod: R Ready, - not Ready, x terminating.
fn describe(pods: &[&Pod]) -> String {
    let mut per_node: BTreeMap<&str, String> = BTreeMap::new();
    for p in pods {
        let c = if !is_live(p) {
            'x'
        } else if pod_ready(p) {
            'R'
        } else {
            '-'
        };
        per_node
            .entry(node_of(p).unwrap_or("<unbound>"))
            .or_default()
            .push(c);
    }
    per_node
        .iter()
        .map(|(n, s)| format!("{n}:{s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Live, bound pods by node.
fn live_by_node(pods: &PodView) -> BTreeMap<&str, Vec<&Pod>> {
    let mut per_node: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for p in pods.values().filter(|p| is_live(p)) {
        if let Some(n) = node_of(p) {
            per_node.entry(n).or_default().push(p);
        }
    }
    per_node
}

/// What the surge watcher of #94 enforces in the current phase.
#[derive(Clone, Default)]
struct SurgePhase {
    /// Fewest nodes with a Ready pod at any time.
    floor: usize,
    /// Nodes that must keep a Ready pod at all times (maxUnavailable 0).
    keep: BTreeSet<String>,
}

/// The surge budget on one view: at most two live pods per node and never two of one revision;
/// at most `max_surge` nodes with an extra pod that is not Ready yet (with minReadySeconds 0, a
/// node whose new pod is Ready is one whose old pod is being deleted); the phase's floor and kept
/// nodes.
fn surge_violation(pods: &PodView, max_surge: usize, phase: &SurgePhase) -> Option<String> {
    let per_node = live_by_node(pods);
    let all: Vec<&Pod> = pods.values().collect();
    for ps in per_node.values() {
        let hashes: BTreeSet<String> = ps.iter().map(|p| hash_of(p)).collect();
        if ps.len() > 2 || hashes.len() < ps.len() {
            return Some(format!("too many pods on a node: {}", describe(&all)));
        }
    }
    let surging = per_node
        .values()
        .filter(|ps| ps.len() == 2 && ps.iter().any(|p| !pod_ready(p)))
        .count();
    if surging > max_surge {
        return Some(format!(
            "{surging} nodes surging > maxSurge {max_surge}: {}",
            describe(&all)
        ));
    }
    let ready = per_node
        .values()
        .filter(|ps| ps.iter().any(|p| pod_ready(p)))
        .count();
    if ready < phase.floor {
        return Some(format!(
            "{ready} nodes with a Ready pod < {}: {}",
            phase.floor,
            describe(&all)
        ));
    }
    for k in &phase.keep {
        if !per_node
            .get(k.as_str())
            .is_some_and(|ps| ps.iter().any(|p| pod_ready(p)))
        {
            return Some(format!("{k} lost its Ready pod: {}", describe(&all)));
        }
    }
    None
}

fn tolerations(zones: &[&str]) -> serde_json::Value {
    json!(
        zones
            .iter()
            .map(|z| json!({"key": format!("zone-{z}"), "operator": "Exists", "effect": "NoSchedule"}))
            .collect::<Vec<_>>()
    )
}

/// Catalogue 10.4 #94 (`TestDaemonSetRollingUpdateWithTolerations`): maxSurge 1 over nodes tainted
/// `zone-y`, `zone-z` and `zone-common` (two each, NoSchedule). Tolerating y+common gives 4 pods;
/// switching to z+common (new pods kept not Ready for a while) gives exactly 7 live pods: 2 new on
/// z, 1 surge pod on one common node, and the 2 old pods on y, kept until their replacements are
/// available; then 4 updated pods. Tolerating y+z+common gives 6; tolerating nothing gives 0. A
/// watcher checks the surge budget, the kept nodes and the number of nodes with a Ready pod on
/// every pod event; the pods' `zone-` tolerations equal the template's, defaults after them.
#[tokio::test(flavor = "multi_thread")]
async fn surge_rollout_follows_a_change_of_tolerations() {
    everynode_with_metrics();
    let env = TestEnv::new("cat-tolerations").await;
    let mut zone: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for z in ["y", "z", "common"] {
        for i in 0..2 {
            let t = taint(&format!("zone-{z}"), "true", "NoSchedule");
            let n = env.add_node(&format!("{z}{i}"), &[], vec![t]).await;
            zone.entry(z).or_default().push(n);
        }
    }
    let nodes_of =
        |zs: &[&str]| -> Vec<String> { zs.iter().flat_map(|z| zone[z].clone()).collect() };
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"spec": {"tolerations": tolerations(&["y", "common"])}},
        }}),
    ))
    .await;
    let first = nodes_of(&["y", "common"]);
    let h1 = env.current_hash(1).await;
    wait_rolled_out(&env, "agent", &first, &h1, QUEUED_WITHIN * 3).await;

    let phase = Arc::new(Mutex::new(SurgePhase {
        floor: 4,
        keep: zone["common"].iter().cloned().collect(),
    }));
    let p = phase.clone();
    let watcher = InvariantWatcher::start(&env, "app=agent", move |pods| {
        let phase = p.lock().map(|g| g.clone()).unwrap_or_default();
        surge_violation(pods, 1, &phase)
    });

    // y+common -> z+common, new pods not Ready until the Readier runs.
    env.patch_template(
        "agent",
        json!({
            "metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}},
            "spec": {"tolerations": tolerations(&["z", "common"])},
        }),
    )
    .await;
    let h2 = env.current_hash(2).await;
    let seven = |view: &BTreeMap<String, Vec<Pod>>| -> Result<(), String> {
        let count = |n: &str, h: &str| {
            view.get(n)
                .map(|ps| ps.iter().filter(|p| is_live(p) && hash_of(p) == h).count())
                .unwrap_or(0)
        };
        let all: Vec<&Pod> = view.values().flatten().collect();
        let ok = zone["y"]
            .iter()
            .all(|n| count(n, &h1) == 1 && count(n, &h2) == 0)
            && zone["z"]
                .iter()
                .all(|n| count(n, &h2) == 1 && count(n, &h1) == 0)
            && zone["common"].iter().all(|n| count(n, &h1) == 1)
            && zone["common"].iter().map(|n| count(n, &h2)).sum::<usize>() == 1
            && all.iter().filter(|p| is_live(p)).count() == 7;
        if ok { Ok(()) } else { Err(describe(&all)) }
    };
    wait_for(
        "7 live pods: old on y and common, new on z, one surge pod on common",
        QUEUED_WITHIN,
        || async { seven(&env.pods_by_node("app=agent").await) },
    )
    .await;
    tokio::time::sleep(QUIET_FOR).await;
    if let Err(state) = seven(&env.pods_by_node("app=agent").await) {
        panic!("while no new pod was Ready the rollout went on: {state}");
    }
    let readier = Readier::start(&env, "app=agent");
    wait_rolled_out(
        &env,
        "agent",
        &nodes_of(&["z", "common"]),
        &h2,
        QUEUED_WITHIN * 3,
    )
    .await;

    // z+common -> y+z+common.
    if let Ok(mut g) = phase.lock() {
        g.keep = nodes_of(&["z", "common"]).into_iter().collect();
    }
    env.patch_template(
        "agent",
        json!({"spec": {"tolerations": tolerations(&["y", "z", "common"])}}),
    )
    .await;
    let h3 = env.current_hash(3).await;
    wait_rolled_out(
        &env,
        "agent",
        &nodes_of(&["y", "z", "common"]),
        &h3,
        QUEUED_WITHIN * 3,
    )
    .await;
    let want: Vec<String> = ["y", "z", "common"]
        .iter()
        .map(|z| format!("zone-{z}"))
        .collect();
    for p in env.pods_by_node("app=agent").await.values().flatten() {
        let tols = p
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let keys: Vec<String> = tols
            .iter()
            .map(|t| t.key.clone().unwrap_or_default())
            .collect();
        let zones: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with("zone-"))
            .cloned()
            .collect();
        assert_eq!(zones, want, "zone tolerations of {:?}", p.metadata.name);
        assert!(
            keys[..3] == want[..] && keys.len() > 3,
            "the template's tolerations come first, defaults after: {keys:?}"
        );
    }

    // No tolerations: no node qualifies, every pod goes.
    if let Ok(mut g) = phase.lock() {
        *g = SurgePhase::default();
    }
    env.patch_template("agent", json!({"spec": {"tolerations": []}}))
        .await;
    wait_for("every pod to be gone", QUEUED_WITHIN * 3, || async {
        let pods = env.pods_by_node("app=agent").await;
        let all: Vec<&Pod> = pods.values().flatten().collect();
        if all.is_empty() {
            Ok(())
        } else {
            Err(describe(&all))
        }
    })
    .await;
    env.wait_ds_status("agent", [0, 0, 0, 0, 0, 0]).await;
    drop(readier);
    watcher.finish();
}

/// One step of a new pod's fate in #102, after a delay.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Ready(bool),
    Delete,
}

/// What the flapper did, for the test to check that the scenario really happened.
#[derive(Default, Debug)]
struct FlapStats {
    flips: usize,
    deletions: usize,
}

/// Gives every new pod (those carrying `controlplane::NEVER_READY_LABEL`) a fate, in the order the
/// pods appear on nodes: short Ready periods (0.6 s, well under minReadySeconds 3) separated by
/// NotReady ones, then Ready for good; the first pod also flaps once after having been available;
/// the third is deleted while Ready but not yet available.
fn fate(index: usize) -> Vec<(u64, Fate)> {
    use Fate::*;
    if index == 2 {
        return vec![(300, Ready(true)), (500, Delete)];
    }
    let mut steps = vec![(300, Ready(true)), (600, Ready(false)), (600, Ready(true))];
    if index % 2 == 1 {
        steps.extend([(600, Ready(false)), (600, Ready(true))]);
    }
    if index == 0 {
        steps.extend([(4500, Ready(false)), (1000, Ready(true))]);
    }
    steps
}

/// A pod's name, when its next step is due, and its remaining steps.
type Plan = (String, Instant, VecDeque<(u64, Fate)>);

fn start_flapper(env: &TestEnv, stats: Arc<Mutex<FlapStats>>) -> tokio::task::JoinHandle<()> {
    let api = pod_api(env);
    tokio::spawn(async move {
        let lp = ListParams::default().labels("app=agent");
        let mut plans: HashMap<String, Plan> = HashMap::new();
        let mut seen = 0;
        loop {
            if let Ok(list) = api.list(&lp).await {
                let mut present = BTreeSet::new();
                for p in list
                    .items
                    .iter()
                    .filter(|p| is_never_ready(p) && is_live(p) && node_of(p).is_some())
                {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    present.insert(uid.clone());
                    plans.entry(uid).or_insert_with(|| {
                        let steps: VecDeque<_> = fate(seen).into();
                        seen += 1;
                        let first = Duration::from_millis(steps.front().map_or(0, |s| s.0));
                        (
                            p.metadata.name.clone().unwrap_or_default(),
                            Instant::now() + first,
                            steps,
                        )
                    });
                }
                plans.retain(|uid, _| present.contains(uid));
                for (name, due, steps) in plans.values_mut() {
                    if Instant::now() < *due {
                        continue;
                    }
                    let Some((_, what)) = steps.pop_front() else {
                        continue;
                    };
                    let done = match what {
                        Fate::Ready(r) => set_pod_ready(&api, name, r).await.is_ok(),
                        Fate::Delete => api
                            .delete(name, &DeleteParams::default().grace_period(0))
                            .await
                            .is_ok(),
                    };
                    if done && let Ok(mut s) = stats.lock() {
                        match what {
                            Fate::Ready(_) => s.flips += 1,
                            Fate::Delete => s.deletions += 1,
                        }
                    }
                    *due = Instant::now() + Duration::from_millis(steps.front().map_or(0, |s| s.0));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The Ready condition's status and lastTransitionTime.
fn ready_condition(p: &Pod) -> Option<(bool, Option<k8s_openapi::jiff::Timestamp>)> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                c.status == "True",
                c.last_transition_time.as_ref().map(|t| t.0),
            )
        })
}

/// The invariants of #102, checked on every pod event (old = without the never-ready label):
/// at most one old and one new live pod per node; at most `max_surge` nodes with an old pod and a
/// new pod that has never been available; an old pod is deleted only while its node has a new pod
/// that has been available (Ready for minReadySeconds by its Ready condition, as the controller
/// judges it). lastTransitionTime has whole seconds, so a Ready period that ends is counted as
/// available only when it lasted minReadySeconds up to one second after its end's timestamp.
struct FlapWatch {
    prev: PodView,
    was_available: BTreeSet<String>,
    max_surge: usize,
    min_ready: i64,
}

impl FlapWatch {
    fn check(&mut self, pods: &PodView) -> Option<String> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let min_ready = k8s_openapi::jiff::SignedDuration::from_secs(self.min_ready);
        let second = k8s_openapi::jiff::SignedDuration::from_secs(1);
        for (name, p) in pods.iter().filter(|(_, p)| is_never_ready(p)) {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            match ready_condition(p) {
                Some((true, Some(since))) if since + min_ready <= now => {
                    self.was_available.insert(uid);
                }
                Some((false, until)) => {
                    let end = until.map_or(now, |t| t + second);
                    if let Some((true, Some(since))) = self.prev.get(name).and_then(ready_condition)
                        && since + min_ready <= end
                    {
                        self.was_available.insert(uid);
                    }
                }
                _ => {}
            }
        }
        let all: Vec<&Pod> = pods.values().collect();
        let per_node = live_by_node(pods);
        let mut surging = 0;
        for ps in per_node.values() {
            let old = ps.iter().filter(|p| !is_never_ready(p)).count();
            let new: Vec<&&Pod> = ps.iter().filter(|p| is_never_ready(p)).collect();
            if old > 1 || new.len() > 1 {
                return Some(format!(
                    "two pods of one revision on a node: {}",
                    describe(&all)
                ));
            }
            if old == 1
                && new.len() == 1
                && !self
                    .was_available
                    .contains(new[0].metadata.uid.as_deref().unwrap_or_default())
            {
                surging += 1;
            }
        }
        if surging > self.max_surge {
            return Some(format!(
                "{surging} nodes surging with a new pod never available > maxSurge {}: {}",
                self.max_surge,
                describe(&all)
            ));
        }
        for (name, old) in self
            .prev
            .iter()
            .filter(|(_, p)| !is_never_ready(p) && is_live(p))
        {
            if pods.get(name).is_some_and(is_live) {
                continue;
            }
            let node = node_of(old).unwrap_or_default();
            let replacement = per_node
                .get(node)
                .into_iter()
                .flatten()
                .find(|p| is_never_ready(p));
            let ok = replacement.is_some_and(|p| {
                self.was_available
                    .contains(p.metadata.uid.as_deref().unwrap_or_default())
            });
            if !ok {
                return Some(format!(
                    "old pod {name} on {node} deleted while its replacement {:?} was not available: {}",
                    replacement.map(|p| (p.metadata.name.clone(), ready_condition(p))),
                    describe(&all)
                ));
            }
        }
        self.prev = pods.clone();
        None
    }
}

/// Catalogue 10.5 #102 ("should surge pods onto nodes when spec was updated and update strategy is
/// RollingUpdate"): 5 nodes, maxSurge 40 % (2), maxUnavailable 0, minReadySeconds 3. The new pods'
/// readiness is set by the test instead of kwok and flaps (short Ready periods that never reach
/// minReadySeconds, a flap after a pod was available) and one new pod is deleted mid-rollout. On
/// every pod event: never more than 2 nodes surging with a new pod that was never available, never
/// an old pod deleted before its node's new pod was available; the rollout converges to revision 2
/// everywhere with a correct status.
#[tokio::test(flavor = "multi_thread")]
async fn surge_rollout_with_flapping_readiness() {
    const MIN_READY: i64 = 3;
    let (env, nodes) = setup("cat-flap", 5, &[]).await;
    env.create_daemonset(&daemonset(
        &env,
        "agent",
        json!({"spec": {
            "minReadySeconds": MIN_READY,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "40%", "maxUnavailable": 0}},
        }}),
    ))
    .await;
    let h1 = env.current_hash(1).await;
    wait_rolled_out(&env, "agent", &nodes, &h1, QUEUED_WITHIN * 3).await;

    let mut watch = FlapWatch {
        prev: PodView::new(),
        was_available: BTreeSet::new(),
        max_surge: 2,
        min_ready: MIN_READY,
    };
    let watcher = InvariantWatcher::start(&env, "app=agent", move |pods| watch.check(pods));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = Arc::new(Mutex::new(FlapStats::default()));
    let flapper = start_flapper(&env, stats.clone());
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}}),
    )
    .await;
    let h2 = env.current_hash(2).await;
    wait_rolled_out(&env, "agent", &nodes, &h2, Duration::from_secs(120)).await;
    flapper.abort();
    let (flips, deletions) = stats
        .lock()
        .map(|s| (s.flips, s.deletions))
        .unwrap_or_default();
    eprintln!("flapper: {flips} readiness changes, {deletions} deletions");
    watcher.finish();
    // 5 replacements with at least 3 changes each, plus the deleted pod's 1 and its successor's.
    assert!(
        flips >= 16 && deletions == 1,
        "the flapper did not play its part: {flips} readiness changes, {deletions} deletions"
    );
}
