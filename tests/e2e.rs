//! End-to-end: what a user of a cluster whose DaemonSet controller is everynode sees. A simple DaemonSet
//! gets one Ready pod on every schedulable node with the status columns filled in, a template change
//! rolls out, and OnDelete replaces only the pods that are deleted.
//!
//! Two targets, one suite:
//! - by default the local control plane of `tests/support` (as in `make test`): the test creates fake
//!   nodes of its own, its DaemonSets select them, and the harness starts everynode;
//! - with `EVERYNODE_E2E_KUBECONFIG=<path>`, that existing cluster, where everynode is already deployed
//!   as `kube-system/everynode` (`deploy/` or the Helm chart) and kube-controller-manager's own
//!   DaemonSet controller is off (the kind job of `.github/workflows/e2e.yml`). There the cluster's real
//!   nodes run the pods: a DaemonSet without a nodeSelector must reach every node whose taints it
//!   tolerates (control-plane nodes keep theirs).

mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};
use support::{TestEnv, merge, pod_ready};

const KUBECONFIG_VAR: &str = "EVERYNODE_E2E_KUBECONFIG";
const REVISION_HASH: &str = "controller-revision-hash";

/// Taint keys every daemon pod tolerates (the controller adds these tolerations; upstream does too), so
/// they do not keep a DaemonSet off a node.
const DAEMON_TOLERATED: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
];

/// One test's cluster: a client, a fresh namespace, and the nodes a simple DaemonSet must cover.
struct Cluster {
    client: Client,
    ns: String,
    /// Where one pod of each of the test's DaemonSets must run.
    nodes: BTreeSet<String>,
    /// Merged into the pod template of each DaemonSet (the local nodeSelector, or nothing).
    placement: Value,
    /// Pods on a real cluster pull their image first.
    timeout: Duration,
    /// The local harness' view, which also removes the test's fake nodes when dropped.
    local: Option<TestEnv>,
}

impl Cluster {
    async fn new(name: &str) -> Self {
        match std::env::var_os(KUBECONFIG_VAR) {
            Some(path) => Self::external(name, std::path::Path::new(&path)).await,
            None => Self::local(name).await,
        }
    }

    async fn local(name: &str) -> Self {
        support::everynode();
        let env = TestEnv::new(&format!("e2e-{name}")).await;
        let mut nodes = BTreeSet::new();
        for i in 0..3 {
            let node = env.add_node(&format!("n{i}"), &[], vec![]).await;
            env.wait_node_ready(&node).await;
            nodes.insert(node);
        }
        Self {
            client: env.client.clone(),
            ns: env.ns.clone(),
            nodes,
            placement: json!({"nodeSelector": {env.node_label(): "true"}}),
            timeout: Duration::from_secs(90),
            local: Some(env),
        }
    }

    async fn external(name: &str, kubeconfig: &std::path::Path) -> Self {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)
            .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}={}: {e}", kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}={}: {e}", kubeconfig.display()));
        let client = Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"));
        let mut cluster = Self {
            client,
            ns: format!("e2e-{name}"),
            nodes: BTreeSet::new(),
            placement: json!({}),
            timeout: Duration::from_secs(180),
            local: None,
        };

        // everynode is deployed and available.
        let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "kube-system");
        cluster
            .wait("kube-system/everynode to be available", || async {
                let d = deployments
                    .get_opt("everynode")
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("no Deployment kube-system/everynode: deploy everynode first")?;
                let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
                if available > 0 {
                    Ok(())
                } else {
                    Err("0 available replicas".to_string())
                }
            })
            .await;

        // Every node Ready; the DaemonSets must cover those whose taints they tolerate.
        let nodes: Api<Node> = Api::all(cluster.client.clone());
        let all = cluster
            .wait("every node to be Ready", || async {
                let list = nodes
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let not_ready: Vec<String> = list
                    .items
                    .iter()
                    .filter(|n| !controlplane::nodes::is_ready(n))
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                if not_ready.is_empty() {
                    Ok(list.items)
                } else {
                    Err(format!("not Ready: {not_ready:?}"))
                }
            })
            .await;
        cluster.nodes = all
            .iter()
            .filter(|n| {
                let taints = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.clone())
                    .unwrap_or_default();
                taints.iter().all(|t| {
                    t.effect == "PreferNoSchedule" || DAEMON_TOLERATED.contains(&t.key.as_str())
                })
            })
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        assert!(
            !cluster.nodes.is_empty(),
            "no node without taints in the cluster: nothing to test on"
        );

        // A fresh namespace.
        let nss: Api<Namespace> = Api::all(cluster.client.clone());
        let ns = cluster.ns.clone();
        let _ = nss.delete(&ns, &DeleteParams::default()).await;
        cluster
            .wait(&format!("namespace {ns} to be gone"), || async {
                match nss.get_opt(&ns).await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{:?}", other.map(|n| n.and_then(|n| n.status)))),
                }
            })
            .await;
        let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))
            .unwrap_or_else(|e| panic!("namespace object: {e}"));
        nss.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create namespace {ns}: {e}"));
        let sas: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), &ns);
        cluster
            .wait(&format!("ServiceAccount {ns}/default"), || async {
                sas.get_opt("default")
                    .await
                    .ok()
                    .flatten()
                    .map(|_| ())
                    .ok_or_else(|| "absent".to_string())
            })
            .await;
        cluster
    }

    /// Removes the namespace of a passed test on an existing cluster (a failed test leaves it for
    /// inspection; the next run deletes it first).
    async fn done(self) {
        if self.local.is_none() {
            let nss: Api<Namespace> = Api::all(self.client.clone());
            let _ = nss.delete(&self.ns, &DeleteParams::default()).await;
        }
    }

    /// Polls `check` every 500 ms until it returns `Ok`, or panics after the target's timeout with
    /// what was awaited, the last state, and (locally) where the control-plane logs are.
    async fn wait<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let start = Instant::now();
        loop {
            let last = match check().await {
                Ok(v) => return v,
                Err(state) => state,
            };
            if start.elapsed() > self.timeout {
                let logs = match &self.local {
                    Some(env) => env.cp.describe_logs(),
                    None => "everynode's logs: kubectl -n kube-system logs -l app.kubernetes.io/name=everynode".into(),
                };
                panic!(
                    "timed out after {}s waiting for {what}\n  last state: {last}\n  {logs}",
                    self.timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn daemonsets(&self) -> Api<DaemonSet> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates DaemonSet `name` (pause image, pods labelled `app=<name>`) with `patch` merged in.
    async fn create_daemonset(&self, name: &str, patch: Value) {
        let mut ds = json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                        "terminationGracePeriodSeconds": 0
                    }
                }
            }
        });
        merge(&mut ds["spec"]["template"]["spec"], self.placement.clone());
        merge(&mut ds, patch);
        let ds: DaemonSet =
            serde_json::from_value(ds).unwrap_or_else(|e| panic!("DaemonSet {name}: {e}"));
        self.daemonsets()
            .create(&PostParams::default(), &ds)
            .await
            .unwrap_or_else(|e| panic!("create DaemonSet {name}: {e}"));
    }

    /// The live (non-terminating) pods of DaemonSet `ds`, by node ("" for unbound).
    async fn live_pods(&self, ds: &str) -> Result<BTreeMap<String, Vec<Pod>>, String> {
        let list = self
            .pods()
            .list(&ListParams::default().labels(&format!("app={ds}")))
            .await
            .map_err(|e| e.to_string())?;
        let mut out: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        for p in list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            out.entry(node).or_default().push(p);
        }
        Ok(out)
    }

    /// Waits until `ds` has exactly one Ready pod on each expected node, none elsewhere, all of them
    /// satisfying `want` (e.g. a revision hash); returns them by node.
    async fn wait_one_pod_per_node(
        &self,
        ds: &str,
        want: &str,
        ok: impl Fn(&Pod) -> bool,
    ) -> BTreeMap<String, Pod> {
        self.wait(
            &format!(
                "one Ready pod of {ds} ({want}) on each of {:?} and none elsewhere",
                self.nodes
            ),
            || async {
                let live = self.live_pods(ds).await?;
                let fine = live.keys().cloned().collect::<BTreeSet<_>>() == self.nodes
                    && live
                        .values()
                        .all(|ps| ps.len() == 1 && pod_ready(&ps[0]) && ok(&ps[0]));
                if fine {
                    Ok(live
                        .into_iter()
                        .map(|(n, mut ps)| (n, ps.remove(0)))
                        .collect())
                } else {
                    Err(format!(
                        "{:?}",
                        live.iter()
                            .map(|(n, ps)| format!(
                                "{n}: {}",
                                ps.iter().map(describe).collect::<Vec<_>>().join(", ")
                            ))
                            .collect::<Vec<_>>()
                    ))
                }
            },
        )
        .await
    }

    /// Waits until the DaemonSet's status is [desired, current, ready, up-to-date, available,
    /// misscheduled] = `want` for its current generation.
    async fn wait_status(&self, ds: &str, want: [i32; 6]) {
        let api = self.daemonsets();
        self.wait(&format!("status of {ds} = {want:?} (desired, current, ready, up-to-date, available, misscheduled)"), || async {
            let d = api.get(ds).await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            let got = [
                s.desired_number_scheduled,
                s.current_number_scheduled,
                s.number_ready,
                s.updated_number_scheduled.unwrap_or(0),
                s.number_available.unwrap_or(0),
                s.number_misscheduled,
            ];
            if got == want && s.observed_generation == d.metadata.generation {
                Ok(())
            } else {
                Err(format!("{got:?}, observedGeneration {:?} of {:?}", s.observed_generation, d.metadata.generation))
            }
        })
        .await
    }

    /// The DaemonSet's row as `kubectl get daemonset` prints it: the API server's Table for it, by
    /// column name.
    async fn columns(&self, ds: &str) -> BTreeMap<String, Value> {
        let req = http::Request::get(format!(
            "/apis/apps/v1/namespaces/{}/daemonsets/{ds}",
            self.ns
        ))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap_or_else(|e| panic!("request: {e}"));
        let text = self
            .client
            .request_text(req)
            .await
            .unwrap_or_else(|e| panic!("get the Table of {ds}: {e}"));
        let table: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("Table of {ds}: {e}: {text}"));
        let names = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let cells = table["rows"][0]["cells"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(names.len(), cells.len(), "Table of {ds}: {text}");
        names
            .iter()
            .map(|c| c["name"].as_str().unwrap_or("").to_string())
            .zip(cells)
            .collect()
    }

    async fn revisions(&self) -> Vec<(String, i64)> {
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &self.ns);
        // One DaemonSet per test namespace: every revision there is the DaemonSet's.
        let mut revs: Vec<(String, i64)> = api
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list ControllerRevisions: {e}"))
            .items
            .into_iter()
            .map(|r| (r.metadata.name.unwrap_or_default(), r.revision))
            .collect();
        revs.sort_by_key(|r| r.1);
        revs
    }

    /// Merge-patches the DaemonSet's pod template (a change of the pod template makes a new revision).
    async fn change_template(&self, ds: &str, value: &str) {
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"everynode.test/change": value}}}}});
        self.daemonsets()
            .patch(ds, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch DaemonSet {ds}: {e}"));
    }
}

fn hash(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH))
        .cloned()
        .unwrap_or_default()
}

fn describe(p: &Pod) -> String {
    format!(
        "{}[{}{}]",
        p.metadata.name.as_deref().unwrap_or("?"),
        hash(p),
        if pod_ready(p) { ",Ready" } else { "" }
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn simple_daemonset_gets_a_ready_pod_on_every_schedulable_node() {
    let c = Cluster::new("simple").await;
    c.create_daemonset("simple", json!({})).await;
    let pods = c
        .wait_one_pod_per_node("simple", "any revision", |_| true)
        .await;
    let n = c.nodes.len() as i32;
    c.wait_status("simple", [n, n, n, n, n, 0]).await;

    // Every pod is owned by the DaemonSet as its controller and carries the one revision's hash.
    let revs = c.revisions().await;
    assert_eq!(revs.len(), 1, "one ControllerRevision: {revs:?}");
    for p in pods.values() {
        let owner = p.metadata.owner_references.clone().unwrap_or_default();
        assert!(
            owner
                .iter()
                .any(|o| o.kind == "DaemonSet" && o.name == "simple" && o.controller == Some(true)),
            "{} is not controlled by the DaemonSet: {owner:?}",
            describe(p)
        );
        assert_eq!(revs[0].0, format!("simple-{}", hash(p)), "{}", describe(p));
    }

    // What `kubectl get daemonset` shows.
    let cols = c.columns("simple").await;
    for col in ["Desired", "Current", "Ready", "Up-to-date", "Available"] {
        assert_eq!(cols.get(col), Some(&json!(n)), "column {col} in {cols:?}");
    }
    c.done().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn template_change_rolls_out_to_every_node() {
    let c = Cluster::new("rolling").await;
    c.create_daemonset(
        "rolling",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}}),
    )
    .await;
    let before = c
        .wait_one_pod_per_node("rolling", "first revision", |_| true)
        .await;
    let old = hash(before.values().next().expect("a pod"));
    let n = c.nodes.len() as i32;
    c.wait_status("rolling", [n, n, n, n, n, 0]).await;

    c.change_template("rolling", "v2").await;
    let after = c
        .wait_one_pod_per_node("rolling", "the new revision", |p| hash(p) != old)
        .await;
    c.wait_status("rolling", [n, n, n, n, n, 0]).await;
    for (node, p) in &after {
        assert_ne!(
            p.metadata.uid, before[node].metadata.uid,
            "the pod on {node} was not replaced"
        );
    }
    let new = hash(after.values().next().expect("a pod"));
    assert!(
        after.values().all(|p| hash(p) == new),
        "one new revision on every node"
    );
    let revs = c.revisions().await;
    assert_eq!(
        revs.iter().map(|r| r.1).collect::<Vec<_>>(),
        [1, 2],
        "two ControllerRevisions: {revs:?}"
    );
    assert_eq!(revs[1].0, format!("rolling-{new}"));
    c.done().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_delete_replaces_only_deleted_pods() {
    let c = Cluster::new("ondelete").await;
    c.create_daemonset(
        "ondelete",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    )
    .await;
    let before = c
        .wait_one_pod_per_node("ondelete", "first revision", |_| true)
        .await;
    let old = hash(before.values().next().expect("a pod"));
    let n = c.nodes.len() as i32;
    c.wait_status("ondelete", [n, n, n, n, n, 0]).await;

    // A new template: nothing is replaced, and the status says no pod is up to date.
    c.change_template("ondelete", "v2").await;
    c.wait_status("ondelete", [n, n, n, 0, n, 0]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let live = c
        .live_pods("ondelete")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (node, p) in &before {
        let now = live.get(node).map(|ps| {
            ps.iter()
                .map(|p| p.metadata.uid.clone())
                .collect::<Vec<_>>()
        });
        assert_eq!(
            now,
            Some(vec![p.metadata.uid.clone()]),
            "OnDelete replaced or added a pod on {node}"
        );
    }

    // Deleting one pod brings a pod of the new revision on that node only.
    let (victim_node, victim) = before.iter().next().expect("a pod");
    c.pods()
        .delete(
            victim.metadata.name.as_deref().unwrap_or_default(),
            &DeleteParams::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("delete {}: {e}", describe(victim)));
    let after = c
        .wait_one_pod_per_node(
            "ondelete",
            "the new revision on the deleted pod's node only",
            |p| {
                let on_victim_node = p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(victim_node.as_str());
                on_victim_node == (hash(p) != old)
            },
        )
        .await;
    assert_ne!(after[victim_node].metadata.uid, victim.metadata.uid);
    c.wait_status("ondelete", [n, n, n, 1, n, 0]).await;
    c.done().await;
}
