//! Test harness for integration tests on the real local control plane: one control plane per test
//! binary, shared by its tests; a namespace and a node label per test; helpers for fake nodes,
//! cordoning, waiting with readable failures, and reading pods per node.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod budget;
pub mod dsr;
pub mod fault_proxy;
pub mod invariants;
pub mod prometheus;
pub mod revisions;
pub mod rollout_watch;
pub mod tools;
pub mod watch;

use controlplane::{ControlPlane, Options};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `controller-revision-hash` label of a pod or ControllerRevision.
pub fn revision_hash(meta: &ObjectMeta) -> Option<&String> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(everynode::core::labels::CONTROLLER_REVISION_HASH))
}

static CP: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane whose logs a failing [`wait_for`] names: a test's own one
/// ([`own_control_plane`]) while it runs, else the shared one if it was started.
static CURRENT: std::sync::Mutex<Option<&'static ControlPlane>> = std::sync::Mutex::new(None);

/// The control plane of this test binary, started on first use (building its binaries if needed).
/// Its processes are killed when the test binary exits; logs stay under `target/tmp/controlplane/`.
pub fn control_plane() -> &'static ControlPlane {
    CP.get_or_init(|| start_blocking(instance_dir(""), Options::default()))
}

/// everynode's CRDs as shipped (`deploy/crds/`): every test control plane installs them (design
/// §5), so every suite runs with the DaemonSetRollout watch live, and those without a
/// DaemonSetRollout prove that nothing changes.
pub fn crds() -> Vec<PathBuf> {
    vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/crds")]
}

fn instance_dir(suffix: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("controlplane");
    prune_dead_runs(&base);
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    base.join(format!(
        "{}-{}{suffix}",
        exe.unwrap_or_else(|| "test".into()),
        std::process::id()
    ))
}

fn start_blocking(dir: PathBuf, options: Options) -> ControlPlane {
    let started = Instant::now();
    // Started on a thread of its own with its own runtime: no test's runtime owns it.
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let mut crds = crds();
        crds.extend(options.crds.iter().cloned());
        rt.block_on(ControlPlane::start(Options {
            dir: Some(dir),
            crds,
            ..options
        }))
        .map_err(|e| e.to_string())
    })
    .join();
    match result {
        Ok(Ok(cp)) => {
            eprintln!(
                "control plane up in {:.1}s at {} ({})",
                started.elapsed().as_secs_f64(),
                cp.server(),
                cp.dir().display()
            );
            cp
        }
        Ok(Err(e)) => panic!("the local control plane did not start: {e}"),
        Err(_) => panic!("the local control plane did not start: its thread panicked"),
    }
}

/// A control plane of one test's own (for tests that kill or pause its components), in
/// `target/tmp/controlplane/<binary>-<pid>-<name>/`. Its processes stop when the guard is dropped
/// (also when the test fails); the small `ControlPlane` value itself is leaked so that a
/// [`TestEnv`] can borrow it for `'static`.
pub struct OwnControlPlane(&'static ControlPlane);

impl std::ops::Deref for OwnControlPlane {
    type Target = ControlPlane;
    fn deref(&self) -> &ControlPlane {
        self.0
    }
}

impl OwnControlPlane {
    pub fn get(&self) -> &'static ControlPlane {
        self.0
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        if let Ok(mut c) = CURRENT.lock()
            && c.is_some_and(|c| std::ptr::eq(c, self.0))
        {
            *c = None;
        }
        self.0.stop();
    }
}

/// Starts a control plane of the test's own with `options` (its `dir` is chosen here; everynode's
/// [`crds`] are installed besides `options.crds`).
pub fn own_control_plane(name: &str, options: Options) -> OwnControlPlane {
    let cp: &'static ControlPlane = Box::leak(Box::new(start_blocking(
        instance_dir(&format!("-{name}")),
        options,
    )));
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(cp);
    }
    OwnControlPlane(cp)
}

/// The logs of the control plane a failing test should look at.
pub fn describe_logs() -> String {
    let current = CURRENT.lock().ok().and_then(|c| *c);
    match current.or_else(|| CP.get()) {
        Some(cp) => cp.describe_logs(),
        None => "no control plane started".into(),
    }
}

/// Removes the etcd data of earlier runs whose test binary is gone (their logs stay).
pub fn prune_dead_runs(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let pid = std::fs::read_to_string(e.path().join("supervisor.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        if pid.is_some_and(|pid| !controlplane::process::alive(pid)) {
            let _ = std::fs::remove_dir_all(e.path().join("etcd"));
        }
    }
}

/// One test's view of the cluster: an admin client, its own namespace, and a label that marks the
/// fake nodes it created (`everynode.test/<name>: "true"`), so tests sharing a control plane can
/// target only their own nodes.
pub struct TestEnv {
    pub client: Client,
    pub ns: String,
    pub name: String,
    pub cp: &'static ControlPlane,
    nodes: std::sync::Mutex<Vec<String>>,
}

impl TestEnv {
    /// A fresh namespace named after the test, with its `default` ServiceAccount in place.
    pub async fn new(name: &str) -> Self {
        Self::on(control_plane(), name).await
    }

    /// [`TestEnv::new`] on a given control plane (e.g. a test's own, [`own_control_plane`]).
    pub async fn on(cp: &'static ControlPlane, name: &str) -> Self {
        let client = cp
            .client()
            .await
            .unwrap_or_else(|e| panic!("admin client: {e}"));
        let ns = format!("t-{name}");
        let nss: Api<Namespace> = Api::all(client.clone());
        let _ = nss.delete(&ns, &DeleteParams::default()).await;
        wait_for(
            &format!("namespace {ns} to be gone"),
            Duration::from_secs(60),
            || async {
                match nss.get_opt(&ns).await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{:?}", other.map(|n| n.and_then(|n| n.status)))),
                }
            },
        )
        .await;
        let obj = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        nss.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create namespace {ns}: {e}"));
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
        wait_for(
            &format!("ServiceAccount {ns}/default"),
            Duration::from_secs(60),
            || async {
                sas.get_opt("default")
                    .await
                    .ok()
                    .flatten()
                    .map(|_| ())
                    .ok_or_else(|| "absent".to_string())
            },
        )
        .await;
        Self {
            client,
            ns,
            name: name.to_string(),
            cp,
            nodes: Default::default(),
        }
    }

    /// The label key that marks this test's nodes.
    pub fn node_label(&self) -> String {
        format!("everynode.test/{}", self.name)
    }

    /// Adds a fake node `<test>-<name>` carrying this test's label plus `labels` and `taints`.
    pub async fn add_node(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        taints: Vec<Taint>,
    ) -> String {
        let full = format!("{}-{}", self.name, name);
        let key = self.node_label();
        let mut all = vec![(key.as_str(), "true")];
        all.extend_from_slice(labels);
        let node = controlplane::nodes::fake_node(&full, &all, taints);
        let nodes: Api<Node> = Api::all(self.client.clone());
        let _ = controlplane::nodes::delete(&self.client, &full).await;
        wait_for(
            &format!("old node {full} to be gone"),
            Duration::from_secs(30),
            || async {
                match nodes.get_opt(&full).await {
                    Ok(None) => Ok(()),
                    _ => Err("still there".to_string()),
                }
            },
        )
        .await;
        controlplane::nodes::create(&self.client, &node)
            .await
            .unwrap_or_else(|e| panic!("create node {full}: {e}"));
        if let Ok(mut n) = self.nodes.lock() {
            n.push(full.clone());
        }
        full
    }

    /// Waits until the node is Ready (kwok's node-initialize stage).
    pub async fn wait_node_ready(&self, full_name: &str) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        wait_for(
            &format!("node {full_name} to be Ready"),
            Duration::from_secs(60),
            || async {
                match nodes.get_opt(full_name).await {
                    Ok(Some(n)) if controlplane::nodes::is_ready(&n) => Ok(()),
                    other => Err(format!(
                        "{:?}",
                        other.map(|n| n.and_then(|n| n.status).and_then(|s| s.conditions))
                    )),
                }
            },
        )
        .await;
    }

    pub async fn remove_node(&self, full_name: &str) {
        controlplane::nodes::delete(&self.client, full_name)
            .await
            .unwrap_or_else(|e| panic!("delete node {full_name}: {e}"));
    }

    /// Merge-patches a node (labels, taints, unschedulable...).
    pub async fn patch_node(&self, full_name: &str, patch: serde_json::Value) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch(full_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("patch node {full_name}: {e}"));
    }

    /// `kubectl cordon`.
    pub async fn cordon(&self, full_name: &str) {
        self.patch_node(
            full_name,
            serde_json::json!({"spec": {"unschedulable": true}}),
        )
        .await;
    }

    /// The namespace's pods matching `selector`, grouped by `spec.nodeName` ("" for unbound pods).
    pub async fn pods_by_node(&self, selector: &str) -> BTreeMap<String, Vec<Pod>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap_or_else(|e| panic!("list pods: {e}"));
        let mut out: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        for p in list.items {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            out.entry(node).or_default().push(p);
        }
        out
    }

    /// Runs `kubectl` from the control-plane build against this cluster; returns stdout, panics with
    /// stderr on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(self.cp.binaries().path("kubectl"))
            .arg(format!("--kubeconfig={}", self.cp.kubeconfig().display()))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run kubectl: {e}"));
        if !out.status.success() {
            panic!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A folder holding `kubectl-everynode`, a link to the built binary, as the install instructions
    /// make one. One folder per test namespace: tests of one binary run at once on a shared control
    /// plane, and a shared folder let one test's link replace another's between its remove and its
    /// link (`File exists`, a CI failure of tests/policy_commands.rs).
    pub fn plugin_dir(&self) -> PathBuf {
        let dir = self.cp.dir().join(format!("plugin-bin-{}", self.ns));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let link = dir.join("kubectl-everynode");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_everynode"), &link)
            .unwrap_or_else(|e| panic!("link {}: {e}", link.display()));
        dir
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Best effort: remove this test's nodes so later tests in the binary see a small cluster.
        let names = self.nodes.lock().map(|n| n.clone()).unwrap_or_default();
        if names.is_empty() {
            return;
        }
        let kubeconfig = self.cp.kubeconfig().to_path_buf();
        let kubectl = self.cp.binaries().path("kubectl");
        let _ = std::process::Command::new(kubectl)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(["delete", "node", "--wait=false", "--ignore-not-found"])
            .args(&names)
            .output();
    }
}

/// Polls `check` every 200 ms until it returns `Ok`, or panics after `timeout` with what was awaited,
/// the last state `check` reported, and where the control-plane logs are.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
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
        if start.elapsed() > timeout {
            panic!(
                "timed out after {}s waiting for {what}\n  last state: {last}\n  {}",
                timeout.as_secs(),
                describe_logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A taint.
pub fn taint(key: &str, value: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: Some(value.into()),
        effect: effect.into(),
        time_added: None,
    }
}

/// Starts the `everynode` binary against the control plane (admin credentials), logging to
/// `<control-plane dir>/logs/<name>.log`. It is killed when the test binary exits.
pub fn start_everynode(name: &str, extra_args: &[&str]) -> controlplane::process::Process {
    start_everynode_on(control_plane(), name, extra_args)
}

/// [`start_everynode`] against any control plane (for tests that start their own).
pub fn start_everynode_on(
    cp: &ControlPlane,
    name: &str,
    extra_args: &[&str],
) -> controlplane::process::Process {
    let mut args = vec![
        "run".to_string(),
        format!("--kubeconfig={}", cp.kubeconfig().display()),
        // Any free port: several instances (and other test binaries) run on this machine at once.
        "--metrics-bind-address=127.0.0.1:0".to_string(),
    ];
    args.extend(extra_args.iter().map(|s| s.to_string()));
    let log = cp.log(name);
    // RUST_LOG is inherited when set; debug logs of everynode otherwise.
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,everynode=debug".into());
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_everynode"));
    controlplane::process::Process::spawn_with_env(name, exe, &args, &[("RUST_LOG", &level)], &log)
        .unwrap_or_else(|e| panic!("start everynode: {e}"))
}

/// One everynode for the whole test binary, started on first use.
pub fn everynode() {
    static EVERYNODE: OnceLock<std::sync::Mutex<controlplane::process::Process>> = OnceLock::new();
    EVERYNODE.get_or_init(|| std::sync::Mutex::new(start_everynode("everynode", &[])));
}

/// A DaemonSet `name` in the test's namespace whose pods go only to this test's nodes (nodeSelector
/// on the test's node label), pause image, RollingUpdate maxUnavailable 1. `patch` is merged into
/// it (JSON merge patch semantics) before it is returned.
pub fn daemonset(
    env: &TestEnv,
    name: &str,
    patch: serde_json::Value,
) -> k8s_openapi::api::apps::v1::DaemonSet {
    let mut ds = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": env.ns},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {env.node_label(): "true"},
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                    "terminationGracePeriodSeconds": 0
                }
            }
        }
    });
    merge(&mut ds, patch);
    serde_json::from_value(ds).unwrap_or_else(|e| panic!("test DaemonSet does not parse: {e}"))
}

/// RFC 7386 merge of `patch` into `target`.
pub fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

impl TestEnv {
    pub async fn create_daemonset(&self, ds: &k8s_openapi::api::apps::v1::DaemonSet) {
        let api: Api<k8s_openapi::api::apps::v1::DaemonSet> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.create(&PostParams::default(), ds)
            .await
            .unwrap_or_else(|e| panic!("create DaemonSet: {e}"));
    }

    /// Waits until the pods labelled `app=<ds>` are exactly one non-terminating, Ready pod on each
    /// of `nodes` (full names) and none elsewhere; returns them by node.
    pub async fn wait_pods_exactly_on(&self, ds: &str, nodes: &[&str]) -> BTreeMap<String, Pod> {
        let want: std::collections::BTreeSet<String> =
            nodes.iter().map(|s| s.to_string()).collect();
        let selector = format!("app={ds}");
        wait_for(
            &format!("one Ready pod of {ds} on each of {want:?} and none elsewhere"),
            Duration::from_secs(90),
            || async {
                let by_node = self.pods_by_node(&selector).await;
                let live: BTreeMap<String, Vec<Pod>> = by_node
                    .into_iter()
                    .map(|(n, ps)| {
                        (
                            n,
                            ps.into_iter()
                                .filter(|p| p.metadata.deletion_timestamp.is_none())
                                .collect::<Vec<_>>(),
                        )
                    })
                    .filter(|(_, ps)| !ps.is_empty())
                    .collect();
                let state: Vec<String> = live
                    .iter()
                    .map(|(n, ps)| {
                        format!(
                            "{}:{}x{}",
                            if n.is_empty() { "<unbound>" } else { n },
                            ps.len(),
                            ps.iter().filter(|p| pod_ready(p)).count()
                        )
                    })
                    .collect();
                let ok = live
                    .keys()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    == want
                    && live.values().all(|ps| ps.len() == 1 && pod_ready(&ps[0]));
                if ok {
                    Ok(live
                        .into_iter()
                        .map(|(n, mut ps)| (n, ps.remove(0)))
                        .collect())
                } else {
                    Err(format!("node:pods x ready = {state:?}"))
                }
            },
        )
        .await
    }

    /// Waits until the DaemonSet's status has these counters (desired, current, ready, updated,
    /// available, misscheduled) and observedGeneration == generation.
    pub async fn wait_ds_status(&self, ds: &str, want: [i32; 6]) {
        let api: Api<k8s_openapi::api::apps::v1::DaemonSet> =
            Api::namespaced(self.client.clone(), &self.ns);
        wait_for(&format!("status of {ds} to be [desired, current, ready, updated, available, misscheduled] = {want:?}"), Duration::from_secs(60), || async {
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
            if got == want && s.observed_generation == d.metadata.generation { Ok(()) } else { Err(format!("{got:?}, observedGeneration {:?} of {:?}", s.observed_generation, d.metadata.generation)) }
        })
        .await
    }
}

/// The pod's Ready condition is True.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl TestEnv {
    /// Merge-patches the pod template of DaemonSet `ds`.
    pub async fn patch_template(&self, ds: &str, patch: serde_json::Value) {
        let api: Api<k8s_openapi::api::apps::v1::DaemonSet> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.patch(
            ds,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"template": patch}})),
        )
        .await
        .unwrap_or_else(|e| panic!("patch template: {e}"));
    }

    /// The hash of the newest ControllerRevision, once its revision number is at least `revision`
    /// (waiting up to 30 s).
    pub async fn current_hash(&self, revision: i64) -> String {
        self.current_hash_within(revision, Duration::from_secs(30))
            .await
    }

    /// [`TestEnv::current_hash`], waiting up to `limit`.
    pub async fn current_hash_within(&self, revision: i64, limit: Duration) -> String {
        let revs: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
            Api::namespaced(self.client.clone(), &self.ns);
        wait_for(
            &format!("revision {revision} for the current template"),
            limit,
            || async {
                let list = revs
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items;
                let newest = list
                    .iter()
                    .max_by_key(|r| r.revision)
                    .ok_or("no revisions")?;
                if newest.revision < revision {
                    return Err(format!("newest revision is {}", newest.revision));
                }
                Ok(revision_hash(&newest.metadata).cloned().unwrap_or_default())
            },
        )
        .await
    }
}

/// One everynode for the whole test binary, started on first use with its `/metrics` on a known
/// port, which is returned. Use instead of [`everynode`] (not both) in binaries that read metrics.
pub fn everynode_with_metrics() -> u16 {
    static EVERYNODE: OnceLock<(std::sync::Mutex<controlplane::process::Process>, u16)> =
        OnceLock::new();
    EVERYNODE
        .get_or_init(|| {
            let cp = control_plane();
            let port = controlplane::free_port().unwrap_or_else(|e| panic!("free port: {e}"));
            let args = vec![
                "run".to_string(),
                format!("--kubeconfig={}", cp.kubeconfig().display()),
                format!("--metrics-bind-address=127.0.0.1:{port}"),
            ];
            let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,everynode=debug".into());
            let exe = std::path::Path::new(env!("CARGO_BIN_EXE_everynode"));
            let p = controlplane::process::Process::spawn_with_env(
                "everynode",
                exe,
                &args,
                &[("RUST_LOG", &level)],
                &cp.log("everynode"),
            )
            .unwrap_or_else(|e| panic!("start everynode: {e}"));
            (std::sync::Mutex::new(p), port)
        })
        .1
}

/// Sends `request` (a whole HTTP/1.x request) to 127.0.0.1:`port` and reads the answer to its end:
/// the status code and body, or why there was none within `timeout`.
pub async fn http_exchange(
    port: u16,
    request: String,
    timeout: Duration,
) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// `GET path` on 127.0.0.1:`port`: the status code and body, or why there was none (5 s timeout).
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    http_exchange(port, request, Duration::from_secs(5)).await
}

/// The holder of the Lease `name`, if it exists and names one.
pub async fn lease_holder(
    leases: &Api<k8s_openapi::api::coordination::v1::Lease>,
    name: &str,
) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// A test namespace with `nodes` fake nodes (`n0`, `n1`, ...) and DaemonSet `agent` (`ds_patch`
/// merged into [`daemonset`]) with a pod on each, everynode running; returns the node names.
pub async fn agent_on_nodes(
    name: &str,
    nodes: usize,
    ds_patch: serde_json::Value,
) -> (TestEnv, Vec<String>) {
    everynode();
    let env = TestEnv::new(name).await;
    let mut names = Vec::new();
    for i in 0..nodes {
        names.push(env.add_node(&format!("n{i}"), &[], vec![]).await);
    }
    env.create_daemonset(&daemonset(&env, "agent", ds_patch))
        .await;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    env.wait_pods_exactly_on("agent", &refs).await;
    (env, names)
}
