//! What everynode ships besides the binary: the Helm chart, the manifests in `deploy/`, the image's user
//! and the GitHub workflows. helm and actionlint come from `tools/build.sh` (built from the committed Go
//! wrapper modules into the cache on first use); a missing tool fails the test, it is never skipped.
//!
//! - the chart lints, and renders exactly `deploy/everynode.yaml` with its default values and exactly
//!   `deploy/replace-builtin.yaml` with `replaceBuiltin.enabled=true` (object by object, field by field,
//!   both with `--include-crds`: the DaemonSetRollout CRD is part of each manifest; tests/crd.rs checks
//!   that it is the chart's `crds/` file and comes first);
//! - the manifests are locked down: probes, securityContext, resources, priority, replicas, a
//!   PodDisruptionBudget, RBAC without wildcards and with a reason for every rule, and the
//!   replace-builtin specifics;
//! - the chart follows Helm's conventions: `values.schema.json` rejects unknown keys and wrong types and
//!   accepts every documented value (values.yaml, the chart's README.md table), `image.tag` defaults to
//!   `appVersion`, every object has the standard labels, `nameOverride`/`fullnameOverride` rename
//!   everything, user tolerations are kept in both variants;
//! - `actionlint` (with shellcheck) passes on `.github/workflows/*.yml`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const NAMESPACE: &str = "kube-system";
const RELEASE: &str = "everynode";
/// The placeholder `deploy/replace-builtin.yaml` carries for the API server address.
const API_SERVER_PLACEHOLDER: &str = "API_SERVER_HOST";
const METRICS_PORT: i64 = 8080;

#[path = "support/tools.rs"]
mod tools;
use tools::repo;

/// helm and actionlint, built by `tools/build.sh` if they are not in the cache yet.
fn tools() -> &'static BTreeMap<&'static str, PathBuf> {
    static TOOLS: OnceLock<BTreeMap<&'static str, PathBuf>> = OnceLock::new();
    TOOLS.get_or_init(|| tools::build(&["helm", "actionlint"]))
}

/// Runs `cmd` and returns its stdout; panics with the command line and its stderr if it fails.
fn run(cmd: &mut Command) -> String {
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    assert!(
        out.status.success(),
        "{line} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// helm with its config, cache and data folders under the test's tmp folder (never the user's).
fn helm() -> Command {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("helm");
    let mut cmd = Command::new(&tools()["helm"]);
    cmd.current_dir(repo())
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// `helm template` of charts/everynode as release `release` in `namespace`, with `set` values.
fn template(release: &str, namespace: &str, set: &[&str]) -> Command {
    let mut cmd = helm();
    cmd.args([
        "template",
        release,
        "charts/everynode",
        "--namespace",
        namespace,
    ]);
    for s in set {
        cmd.args(["--set", s]);
    }
    cmd
}

/// `helm template` of charts/everynode with `set` values, as release `release` in `namespace`.
fn render(release: &str, namespace: &str, set: &[&str]) -> String {
    run(&mut template(release, namespace, set))
}

/// [`render`] with `--include-crds`, as scripts/render-manifests.sh renders `deploy/*.yaml`.
fn render_with_crds(set: &[&str]) -> String {
    run(template(RELEASE, NAMESPACE, set).arg("--include-crds"))
}

/// The objects of the default release with `set` values.
fn render_objects(set: &[&str]) -> BTreeMap<String, Value> {
    objects(
        &format!("helm template {set:?}"),
        &render(RELEASE, NAMESPACE, set),
    )
}

/// The error of `helm template` with `set` values, which must fail.
fn render_error(set: &[&str]) -> String {
    let out = template(RELEASE, NAMESPACE, set)
        .output()
        .unwrap_or_else(|e| panic!("run helm: {e}"));
    assert!(
        !out.status.success(),
        "helm template {set:?} rendered:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const REPLACE_BUILTIN: &[&str] = &[
    "replaceBuiltin.enabled=true",
    "apiServer.host=API_SERVER_HOST",
];

/// Every non-empty YAML document of `text`, as JSON.
fn documents(what: &str, text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects of `text` by `Kind namespace/name`; panics on a duplicate.
fn objects(what: &str, text: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for obj in documents(what, text) {
        let key = format!(
            "{} {}/{}",
            obj["kind"].as_str().unwrap_or("?"),
            obj["metadata"]["namespace"].as_str().unwrap_or(""),
            obj["metadata"]["name"].as_str().unwrap_or("?")
        );
        assert!(
            out.insert(key.clone(), obj).is_none(),
            "{what} has {key} twice"
        );
    }
    out
}

fn file_objects(path: &str) -> BTreeMap<String, Value> {
    let text =
        std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    objects(path, &text)
}

/// The first place where `a` and `b` differ, as `path: a != b`.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} != {b}")),
    }
}

/// Asserts that two sets of objects are the same objects with the same fields. Nothing is ignored:
/// `deploy/*.yaml` are the chart's render as it is (scripts/render-manifests.sh), the `helm.sh/chart`
/// and `app.kubernetes.io/managed-by: Helm` labels included, so that `kubectl apply` of a manifest and
/// `helm install` give the same objects.
fn assert_same_objects(
    left_name: &str,
    left: &BTreeMap<String, Value>,
    right_name: &str,
    right: &BTreeMap<String, Value>,
) {
    let lk: BTreeSet<&String> = left.keys().collect();
    let rk: BTreeSet<&String> = right.keys().collect();
    assert_eq!(
        lk, rk,
        "{left_name} and {right_name} do not hold the same objects"
    );
    let diffs: Vec<String> = left
        .iter()
        .filter_map(|(k, l)| first_difference(k, l, &right[k]))
        .collect();
    assert!(
        diffs.is_empty(),
        "{left_name} differs from {right_name} (left: {left_name}):\n  {}",
        diffs.join("\n  ")
    );
}

fn only<'a>(objs: &'a BTreeMap<String, Value>, kind: &str) -> &'a Value {
    let all: Vec<&Value> = objs.values().filter(|o| o["kind"] == kind).collect();
    assert_eq!(
        all.len(),
        1,
        "expected exactly one {kind}, found {}",
        all.len()
    );
    all[0]
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The container's env var `name`: (value, fieldRef.fieldPath).
fn env_var<'a>(container: &'a Value, name: &str) -> Option<(Option<&'a str>, Option<&'a str>)> {
    container["env"].as_array()?.iter().find_map(|e| {
        (e["name"] == name).then(|| {
            (
                e["value"].as_str(),
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
            )
        })
    })
}

/// The numeric port a probe or Service targets, resolving a named container port.
fn port_number(container: &Value, port: &Value) -> Option<i64> {
    match port {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => container["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_i64()),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Variant {
    /// deploy/everynode.yaml: an ordinary Deployment next to a cluster whose network already runs.
    Default,
    /// deploy/replace-builtin.yaml: host network, the API server address given directly.
    ReplaceBuiltin,
}

/// The static checks of one rendering of the manifests.
fn check_manifests(what: &str, objs: &BTreeMap<String, Value>, variant: Variant) {
    let sa = only(objs, "ServiceAccount");
    let role = only(objs, "ClusterRole");
    let binding = only(objs, "ClusterRoleBinding");
    let deploy = only(objs, "Deployment");
    let service = only(objs, "Service");
    let ns = deploy["metadata"]["namespace"].as_str().unwrap_or("");
    let pod = &deploy["spec"]["template"];
    let spec = &pod["spec"];

    // The wiring: binding -> role, binding -> ServiceAccount <- Deployment, selector -> pod labels.
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole", "{what}");
    assert_eq!(
        binding["roleRef"]["name"], role["metadata"]["name"],
        "{what}: roleRef"
    );
    let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
    assert_eq!(subjects.len(), 1, "{what}: one subject");
    assert_eq!(subjects[0]["kind"], "ServiceAccount", "{what}");
    assert_eq!(
        subjects[0]["name"], sa["metadata"]["name"],
        "{what}: subject"
    );
    assert_eq!(
        subjects[0]["namespace"], sa["metadata"]["namespace"],
        "{what}: subject"
    );
    assert_eq!(
        sa["metadata"]["namespace"], ns,
        "{what}: ServiceAccount namespace"
    );
    assert_eq!(
        spec["serviceAccountName"], sa["metadata"]["name"],
        "{what}: serviceAccountName"
    );
    let labels = pod["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (selector_of, selector) in [
        ("Deployment", &deploy["spec"]["selector"]["matchLabels"]),
        ("Service", &service["spec"]["selector"]),
    ] {
        let selector = selector.as_object().cloned().unwrap_or_default();
        assert!(
            !selector.is_empty(),
            "{what}: {selector_of} has no selector"
        );
        for (k, v) in &selector {
            assert_eq!(
                labels.get(k),
                Some(v),
                "{what}: {selector_of} selector {k} not on the pods"
            );
        }
    }

    // RBAC: least privilege, no wildcards, and what the controller needs is there.
    let rules = role["rules"].as_array().cloned().unwrap_or_default();
    for rule in &rules {
        for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
            assert!(
                !strings(&rule[field]).iter().any(|s| s.contains('*')),
                "{what}: wildcard in ClusterRole {field}: {rule}"
            );
        }
        assert!(
            rule["nonResourceURLs"].is_null(),
            "{what}: nonResourceURLs in {rule}"
        );
    }
    let allows = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            strings(&r["apiGroups"]).contains(&group)
                && strings(&r["resources"]).contains(&resource)
                && strings(&r["verbs"]).contains(&verb)
        })
    };
    for (group, resource, verbs) in [
        ("apps", "daemonsets", &["get", "list", "watch"][..]),
        ("apps", "daemonsets/status", &["update", "patch"][..]),
        ("apps", "daemonsets/finalizers", &["update"][..]),
        (
            "",
            "pods",
            &["list", "watch", "create", "delete", "patch"][..],
        ),
        (
            "apps",
            "controllerrevisions",
            &["list", "watch", "create", "delete", "patch"][..],
        ),
        ("", "nodes", &["list", "watch"][..]),
        ("", "events", &["create", "patch"][..]),
        (
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update"][..],
        ),
    ] {
        for verb in verbs {
            assert!(
                allows(group, resource, verb),
                "{what}: ClusterRole lacks {verb} {group}/{resource}"
            );
        }
    }
    for (group, resource, verb) in [
        ("", "secrets", "get"),
        ("", "nodes", "update"),
        ("", "pods", "update"),
    ] {
        assert!(
            !allows(group, resource, verb),
            "{what}: ClusterRole grants {verb} {group}/{resource}, which everynode never needs"
        );
    }

    // The Deployment.
    assert_eq!(deploy["spec"]["replicas"], 2, "{what}: replicas");
    assert_eq!(
        spec["priorityClassName"], "system-cluster-critical",
        "{what}"
    );
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = &containers[0];
    let args = strings(&c["args"]);
    assert_eq!(args.first(), Some(&"run"), "{what}: args {args:?}");
    for want in [
        format!("--metrics-bind-address=0.0.0.0:{METRICS_PORT}"),
        "--leader-elect=true".to_string(),
        // one Lease per installation, named after it
        format!(
            "--leader-elect-resource-name={}",
            deploy["metadata"]["name"].as_str().unwrap_or("?")
        ),
        "--log-format=json".to_string(),
    ] {
        assert!(
            args.contains(&want.as_str()),
            "{what}: args {args:?} lack {want}"
        );
    }
    assert_eq!(
        env_var(c, "POD_NAME"),
        Some((None, Some("metadata.name"))),
        "{what}: POD_NAME"
    );
    assert_eq!(
        env_var(c, "POD_NAMESPACE"),
        Some((None, Some("metadata.namespace"))),
        "{what}: POD_NAMESPACE"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{what}: {probe}");
        assert_eq!(
            port_number(c, &get["port"]),
            Some(METRICS_PORT),
            "{what}: {probe} port"
        );
    }
    for (kind, resource) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "cpu"),
        ("limits", "memory"),
    ] {
        assert!(
            c["resources"][kind][resource].is_string(),
            "{what}: resources.{kind}.{resource} missing"
        );
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{what}: runAsNonRoot");
    assert_eq!(
        sc["readOnlyRootFilesystem"], true,
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        sc["allowPrivilegeEscalation"], false,
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        strings(&sc["capabilities"]["drop"]),
        ["ALL"],
        "{what}: capabilities.drop"
    );
    assert!(
        sc["capabilities"]["add"].is_null(),
        "{what}: capabilities.add"
    );
    assert!(
        sc["privileged"].is_null() || sc["privileged"] == false,
        "{what}: privileged"
    );
    assert_eq!(
        sc["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: seccompProfile"
    );
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"], true,
        "{what}: pod runAsNonRoot"
    );
    for host in ["hostPID", "hostIPC"] {
        assert!(spec[host].is_null(), "{what}: {host}");
    }
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let tolerates = |key: &str, effect: &str| {
        tolerations.iter().any(|t| {
            t["key"] == key
                && t["operator"] == "Exists"
                && (t["effect"].is_null() || t["effect"] == effect)
                && t["tolerationSeconds"].is_null()
        })
    };
    assert!(
        tolerates("node-role.kubernetes.io/control-plane", "NoSchedule"),
        "{what}: control-plane toleration"
    );

    // Drains take one replica at a time (maxUnavailable, so that a single replica never blocks one).
    let pdb = only(objs, "PodDisruptionBudget");
    assert_eq!(pdb["metadata"]["namespace"], ns, "{what}: PDB namespace");
    assert_eq!(
        pdb["spec"]["maxUnavailable"], 1,
        "{what}: PDB maxUnavailable"
    );
    assert!(
        pdb["spec"]["minAvailable"].is_null(),
        "{what}: PDB minAvailable"
    );
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"], deploy["spec"]["selector"]["matchLabels"],
        "{what}: the PDB selects other pods than the Deployment"
    );

    // The metrics Service.
    let ports = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        ports
            .iter()
            .any(|p| p["port"] == METRICS_PORT
                && port_number(c, &p["targetPort"]) == Some(METRICS_PORT)),
        "{what}: the Service does not expose the metrics port: {ports:?}"
    );

    // The variants.
    let host = env_var(c, "KUBERNETES_SERVICE_HOST");
    let port = env_var(c, "KUBERNETES_SERVICE_PORT");
    match variant {
        Variant::Default => {
            assert!(spec["hostNetwork"].is_null(), "{what}: hostNetwork");
            assert!(spec["dnsPolicy"].is_null(), "{what}: dnsPolicy");
            assert_eq!(
                (host, port),
                (None, None),
                "{what}: the API server comes from the Service"
            );
        }
        Variant::ReplaceBuiltin => {
            assert_eq!(spec["hostNetwork"], true, "{what}: hostNetwork");
            assert_eq!(spec["dnsPolicy"], "Default", "{what}: dnsPolicy");
            assert_eq!(
                host,
                Some((Some(API_SERVER_PLACEHOLDER), None)),
                "{what}: KUBERNETES_SERVICE_HOST"
            );
            assert_eq!(
                port,
                Some((Some("6443"), None)),
                "{what}: KUBERNETES_SERVICE_PORT"
            );
            for (key, effect) in [
                ("node.kubernetes.io/not-ready", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/network-unavailable", "NoSchedule"),
                (
                    "node.cloudprovider.kubernetes.io/uninitialized",
                    "NoSchedule",
                ),
                ("node.kubernetes.io/unreachable", "NoSchedule"),
            ] {
                assert!(
                    tolerates(key, effect),
                    "{what}: no toleration of {key}:{effect}"
                );
            }
            assert!(
                tolerations
                    .iter()
                    .any(|t| t["key"] == "node.kubernetes.io/unreachable"
                        && t["effect"] == "NoExecute"),
                "{what}: no toleration of node.kubernetes.io/unreachable:NoExecute"
            );
        }
    }
}

/// Every rule of the ClusterRole in `path` has a comment line right above it saying why.
fn check_rule_comments(path: &str) {
    let text =
        std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "kind: ClusterRole")
        .unwrap_or_else(|| panic!("{path} has no ClusterRole"));
    let rules = (start..lines.len())
        .find(|&i| lines[i].trim() == "rules:")
        .unwrap_or_else(|| panic!("{path}: ClusterRole without rules"));
    let mut count = 0;
    for i in rules + 1..lines.len() {
        let l = lines[i];
        if l.starts_with("---") || (!l.starts_with(' ') && !l.trim().is_empty()) {
            break;
        }
        if l.trim_start().starts_with("- apiGroups:") {
            count += 1;
            assert!(
                lines[i - 1].trim_start().starts_with('#'),
                "{path}:{}: the rule `{}` has no comment saying why",
                i + 1,
                l.trim()
            );
        }
    }
    assert!(count >= 9, "{path}: found only {count} rules");
}

#[test]
fn chart_lints_for_both_variants() {
    run(helm().args(["lint", "--strict", "charts/everynode"]));
    let mut cmd = helm();
    cmd.args(["lint", "--strict", "charts/everynode"]);
    for s in REPLACE_BUILTIN {
        cmd.args(["--set", s]);
    }
    run(&mut cmd);
}

#[test]
fn default_rendering_is_deploy_everynode_yaml() {
    let rendered = objects(
        "helm template --include-crds (default values)",
        &render_with_crds(&[]),
    );
    assert!(
        rendered.contains_key("CustomResourceDefinition /daemonsetrollouts.everynode.io"),
        "helm template --include-crds renders no DaemonSetRollout CRD: {:?}",
        rendered.keys()
    );
    assert_same_objects(
        "helm template --include-crds (default values)",
        &rendered,
        "deploy/everynode.yaml",
        &file_objects("deploy/everynode.yaml"),
    );
}

#[test]
fn replace_builtin_rendering_is_deploy_replace_builtin_yaml() {
    let rendered = objects(
        "helm template --include-crds (replaceBuiltin)",
        &render_with_crds(REPLACE_BUILTIN),
    );
    assert_same_objects(
        "helm template --include-crds (replaceBuiltin)",
        &rendered,
        "deploy/replace-builtin.yaml",
        &file_objects("deploy/replace-builtin.yaml"),
    );
}

#[test]
fn replace_builtin_without_an_api_server_address_does_not_render() {
    let out = helm()
        .args([
            "template",
            RELEASE,
            "charts/everynode",
            "--namespace",
            NAMESPACE,
        ])
        .args(["--set", "replaceBuiltin.enabled=true"])
        .output()
        .unwrap_or_else(|e| panic!("run helm: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rendered without apiServer.host");
    assert!(
        stderr.contains("apiServer.host is required"),
        "unexpected error: {stderr}"
    );
}

#[test]
fn manifests_are_locked_down() {
    check_manifests(
        "deploy/everynode.yaml",
        &file_objects("deploy/everynode.yaml"),
        Variant::Default,
    );
    check_manifests(
        "deploy/replace-builtin.yaml",
        &file_objects("deploy/replace-builtin.yaml"),
        Variant::ReplaceBuiltin,
    );
    // Another release name and namespace keep the wiring (names, binding subject) consistent.
    let other = objects("helm template ops", &render("ops", "platform", &[]));
    assert!(
        other.contains_key("Deployment platform/ops-everynode"),
        "{:?}",
        other.keys()
    );
    check_manifests("helm template ops", &other, Variant::Default);
}

#[test]
fn every_rbac_rule_says_why() {
    for path in [
        "deploy/everynode.yaml",
        "deploy/replace-builtin.yaml",
        "charts/everynode/templates/clusterrole.yaml",
    ] {
        check_rule_comments(path);
    }
}

#[test]
fn image_user_is_the_manifests_non_root_user() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("read Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the Dockerfile sets no USER");
    let uid: i64 = user
        .split(':')
        .next()
        .and_then(|u| u.trim().parse().ok())
        .unwrap_or_else(|| panic!("USER {user} is not numeric: runAsNonRoot needs a numeric user"));
    assert_ne!(uid, 0, "the image runs as root");
    let objs = file_objects("deploy/everynode.yaml");
    let pod = &only(&objs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["runAsUser"], uid,
        "runAsUser differs from the image's USER"
    );
}

#[test]
fn workflows_pass_actionlint() {
    let shellcheck = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("shellcheck"))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| {
            panic!("shellcheck is not on PATH: actionlint needs it to check the run: steps (`make tools` installs it)")
        });
    let workflows: Vec<PathBuf> = std::fs::read_dir(repo().join(".github/workflows"))
        .expect("read .github/workflows")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    assert!(
        workflows.len() >= 2,
        "expected ci.yml and e2e.yml, found {workflows:?}"
    );
    let mut cmd = Command::new(&tools()["actionlint"]);
    cmd.current_dir(repo())
        .arg("-color=false")
        .arg(format!("-shellcheck={}", shellcheck.display()))
        .arg("-pyflakes=")
        .args(&workflows);
    run(&mut cmd);
}

#[test]
fn manifest_args_are_accepted_by_the_binary() {
    // `--help` last: clap parses (and validates) every argument before it, then prints the help.
    for path in ["deploy/everynode.yaml", "deploy/replace-builtin.yaml"] {
        let objs = file_objects(path);
        let container = &only(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        let args = strings(&container["args"]);
        let out = Command::new(env!("CARGO_BIN_EXE_everynode"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("run everynode: {e}"));
        assert!(
            out.status.success(),
            "{path}: everynode rejects {args:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Helm's conventions

/// A YAML file of the repository as JSON.
fn yaml_file(path: &str) -> Value {
    let text =
        std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

/// `v` at the dotted `path`, `Null` if absent.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// The documented values: the leaves of values.schema.json (a property without `properties` of its
/// own, or one that `documented_whole` names, such as `affinity`, whose schema describes a Kubernetes
/// type), as dotted paths; `global` (Helm's, for parent charts) is not one.
fn schema_leaves(documented_whole: &BTreeSet<String>) -> BTreeSet<String> {
    fn walk(prefix: &str, schema: &Value, whole: &BTreeSet<String>, out: &mut BTreeSet<String>) {
        if !schema["properties"].is_null() {
            assert_eq!(
                schema["additionalProperties"], false,
                "values.schema.json: `{prefix}` allows unknown keys"
            );
        }
        match schema["properties"]
            .as_object()
            .filter(|_| !whole.contains(prefix))
        {
            Some(props) => {
                for (k, v) in props {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, whole, out);
                }
            }
            None => {
                out.insert(prefix.to_string());
            }
        }
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("charts/everynode/values.schema.json"))
            .expect("read values.schema.json"),
    )
    .expect("values.schema.json is not JSON");
    assert_eq!(
        schema["$schema"], "http://json-schema.org/draft-07/schema#",
        "values.schema.json: draft-07"
    );
    let mut out = BTreeSet::new();
    walk("", &schema, documented_whole, &mut out);
    out.remove("global");
    out
}

/// The dotted key path of every key line of a block-style YAML file, with whether a comment documents
/// it (a comment line right above it, or a comment at its end).
fn commented_keys(text: &str) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut previous = "";
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && !trimmed.starts_with('-')
            && let Some((key, rest)) = trimmed.split_once(':')
        {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key.trim().to_string()));
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            let documented = previous.trim_start().starts_with('#') || rest.contains(" # ");
            out.insert(path.join("."), documented);
        }
        previous = line;
    }
    out
}

#[test]
fn chart_schema_rejects_unknown_keys_and_wrong_types() {
    for (set, want) in [
        (
            &["bogus=1"][..],
            "at '': additional properties 'bogus' not allowed",
        ),
        (
            &["replicas=abc"][..],
            "at '': additional properties 'replicas' not allowed",
        ),
        (
            &["image.bogus=x"][..],
            "at '/image': additional properties 'bogus' not allowed",
        ),
        (
            &["tolerations[0].key=a", "tolerations[0].efect=NoSchedule"][..],
            "at '/tolerations/0': additional properties 'efect' not allowed",
        ),
        (
            &["replicaCount=abc"][..],
            "at '/replicaCount': got string, want integer",
        ),
        (
            &["replaceBuiltin.enabled=yes"][..],
            "at '/replaceBuiltin/enabled': got string, want boolean",
        ),
        (&["logFormat=yaml"][..], "at '/logFormat'"),
        (
            &["leaderElection.leaseDuration=15"][..],
            "at '/leaderElection/leaseDuration'",
        ),
    ] {
        let err = render_error(set);
        assert!(
            err.contains("values don't meet the specifications of the schema")
                && err.contains(want),
            "helm template --set {set:?}: want {want:?} in:\n{err}"
        );
    }
}

#[test]
fn chart_schema_accepts_every_documented_value() {
    let values = yaml_file("charts/everynode/values.yaml");
    let values_text = std::fs::read_to_string(repo().join("charts/everynode/values.yaml"))
        .expect("read values.yaml");
    let comments = commented_keys(&values_text);
    let readme = std::fs::read_to_string(repo().join("charts/everynode/README.md"))
        .expect("read charts/everynode/README.md");
    let table: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_string())
        .collect();
    let documented = schema_leaves(&table);
    const EVERY: &str = "tests/data/chart-every-value.yaml";
    let every = yaml_file(EVERY);
    for key in &documented {
        assert!(
            comments.contains_key(key),
            "values.yaml has no default for {key}"
        );
        let mut prefix = key.as_str();
        let commented = loop {
            if comments.get(prefix) == Some(&true) {
                break true;
            }
            match prefix.rsplit_once('.') {
                Some((parent, _)) => prefix = parent,
                None => break false,
            }
        };
        assert!(commented, "values.yaml: no comment documents {key}");
        assert!(
            table.contains(key),
            "charts/everynode/README.md: no row for {key}"
        );
        assert!(!at(&every, key).is_null(), "{EVERY} does not set {key}");
    }
    assert!(
        table.is_subset(&documented),
        "charts/everynode/README.md documents values the schema does not know: {:?}",
        table.difference(&documented).collect::<Vec<_>>()
    );
    // values.yaml has nothing else: helm validates it with the schema (additionalProperties: false),
    // so the default render would fail.
    assert!(values.is_object());

    // Every value set at once renders, lints, and lands where it should.
    run(helm().args(["lint", "--strict", "charts/everynode", "--values", EVERY]));
    let mut cmd = template(RELEASE, NAMESPACE, &[]);
    cmd.args(["--values", EVERY]);
    let objs = objects(EVERY, &run(&mut cmd));
    let deploy = only(&objs, "Deployment");
    let pod = &deploy["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(deploy["metadata"]["name"], "ops-daemonsets");
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(c["image"], "registry.example.com/platform/everynode:v9.8.7");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(pod["spec"]["imagePullSecrets"][0]["name"], "regcred");
    assert!(pod["spec"]["priorityClassName"].is_null());
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert!(pod["spec"]["affinity"]["nodeAffinity"].is_object());
    assert!(pod["spec"]["affinity"]["podAntiAffinity"].is_null());
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/team"],
        "platform"
    );
    assert_eq!(pod["metadata"]["labels"]["example.com/team"], "platform");
    assert_eq!(pod["metadata"]["labels"]["app.kubernetes.io/name"], "dsc");
    assert_eq!(
        only(&objs, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        "50%"
    );
    let args = strings(&c["args"]);
    for want in [
        "--log-format=text",
        "--metrics-bind-address=0.0.0.0:9090",
        "--concurrent-daemonset-syncs=5",
        "--kube-api-qps=12.5",
        "--kube-api-burst=40",
        "--leader-elect-lease-duration=1m",
        "--leader-elect-renew-deadline=40s",
        "--leader-elect-retry-period=5s",
        "--leader-elect-resource-name=ops-daemonsets",
    ] {
        assert!(args.contains(&want), "args {args:?} lack {want}");
    }
    assert_eq!(
        env_var(c, "KUBERNETES_SERVICE_HOST"),
        Some((Some("10.0.0.10"), None))
    );
    assert_eq!(
        env_var(c, "KUBERNETES_SERVICE_PORT"),
        Some((Some("443"), None))
    );
    assert_eq!(
        env_var(c, "RUST_LOG"),
        Some((Some("everynode=debug,info"), None))
    );
    // The monitoring pack, in the namespaces and with the labels and intervals asked for.
    let kinds: BTreeSet<&str> = objs.values().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ])
    );
    let monitor = only(&objs, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["namespace"], "monitoring");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        serde_json::json!([NAMESPACE])
    );
    let rule = only(&objs, "PrometheusRule");
    assert_eq!(rule["metadata"]["namespace"], "monitoring");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(rule["spec"]["groups"][0]["interval"], "1m");
    let dashboard = only(&objs, "ConfigMap");
    assert_eq!(dashboard["metadata"]["namespace"], "grafana");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "yes");
}

/// The monitoring templates, each enabled on its own: what `deploy/monitoring/` ships, wired to the
/// metrics Service, carrying the pack's sources (the rule file's groups, the dashboard's JSON) and
/// the standard labels; off by default (deploy/everynode.yaml has none of them).
#[test]
fn monitoring_templates_render_the_pack() {
    let base = render_objects(&[]);
    let service = only(&base, "Service");
    let rules = yaml_file("deploy/monitoring/everynode.rules.yaml");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/monitoring/everynode-dashboard.json"))
            .expect("read the dashboard"),
    )
    .expect("the dashboard is not JSON");
    for (set, kind, file) in [
        (
            "monitoring.serviceMonitor.enabled=true",
            "ServiceMonitor",
            "deploy/monitoring/servicemonitor.yaml",
        ),
        (
            "monitoring.prometheusRule.enabled=true",
            "PrometheusRule",
            "deploy/monitoring/prometheusrule.yaml",
        ),
        (
            "monitoring.grafanaDashboard.enabled=true",
            "ConfigMap",
            "deploy/monitoring/grafana-dashboard.yaml",
        ),
    ] {
        let objs = render_objects(&[set]);
        assert_eq!(objs.len(), base.len() + 1, "--set {set}: {:?}", objs.keys());
        let obj = only(&objs, kind);
        let shipped = file_objects(file);
        assert_eq!(shipped.len(), 1, "{file}: one object");
        let rendered: BTreeMap<String, Value> = objs
            .iter()
            .filter(|(_, o)| o["kind"] == kind)
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        assert_same_objects(
            &format!("helm template --set {set}"),
            &rendered,
            file,
            &shipped,
        );
        assert_eq!(obj["metadata"]["namespace"], NAMESPACE, "{kind}");
        match kind {
            "ServiceMonitor" => {
                assert_eq!(obj["apiVersion"], "monitoring.coreos.com/v1");
                // It selects the metrics Service (and nothing else of the chart) by its labels.
                let selector = obj["spec"]["selector"]["matchLabels"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                assert!(!selector.is_empty(), "ServiceMonitor without a selector");
                for o in base.values() {
                    let labels = &o["metadata"]["labels"];
                    let selected = selector.iter().all(|(k, v)| &labels[k] == v);
                    assert!(selected, "{}: lacks the selector's labels", o["kind"]);
                }
                let endpoint = &obj["spec"]["endpoints"][0];
                let port = endpoint["port"].as_str().unwrap_or("");
                assert!(
                    service["spec"]["ports"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == port)),
                    "the Service has no port named {port}"
                );
                assert_eq!(endpoint["path"], "/metrics");
                assert_eq!(endpoint["interval"], "30s");
                // The job every rule and panel selects.
                assert_eq!(
                    endpoint["relabelings"],
                    serde_json::json!([{"action": "replace", "targetLabel": "job", "replacement": "everynode"}])
                );
                assert_eq!(
                    obj["spec"]["namespaceSelector"]["matchNames"],
                    serde_json::json!([NAMESPACE])
                );
            }
            "PrometheusRule" => {
                assert_eq!(obj["apiVersion"], "monitoring.coreos.com/v1");
                assert_eq!(obj["spec"]["groups"], rules["groups"]);
            }
            _ => {
                assert_eq!(obj["metadata"]["labels"]["grafana_dashboard"], "1");
                let json: Value =
                    serde_json::from_str(obj["data"]["everynode.json"].as_str().unwrap_or(""))
                        .expect("the ConfigMap's everynode.json is not JSON");
                assert_eq!(json, dashboard, "the ConfigMap's dashboard");
            }
        }
    }
    // An evaluation interval goes to the group; the rest of the groups stays the rule file's.
    let objs = render_objects(&[
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.interval=30s",
    ]);
    let mut groups = only(&objs, "PrometheusRule")["spec"]["groups"].clone();
    assert_eq!(groups[0]["interval"], "30s");
    groups[0]
        .as_object_mut()
        .expect("a group")
        .remove("interval");
    assert_eq!(groups, rules["groups"]);
    // Every monitoring object has the standard labels, and follows nameOverride.
    let objs = render_objects(&[
        "nameOverride=dsc",
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.grafanaDashboard.enabled=true",
    ]);
    check_standard_labels("monitoring, nameOverride=dsc", &objs, RELEASE, "dsc");
    assert!(
        objs.contains_key("ConfigMap kube-system/everynode-dsc-dashboard"),
        "{:?}",
        objs.keys()
    );
}

#[test]
fn empty_image_tag_means_the_charts_app_version() {
    let chart = yaml_file("charts/everynode/Chart.yaml");
    let app_version = chart["appVersion"].as_str().expect("Chart.yaml appVersion");
    assert_eq!(
        app_version,
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion is not the crate's version"
    );
    assert!(
        chart["version"]
            .as_str()
            .is_some_and(|v| v.split('.').count() == 3),
        "Chart.yaml version is not SemVer: {}",
        chart["version"]
    );
    let image = |objs: &BTreeMap<String, Value>| {
        only(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"].clone()
    };
    let want = format!("everynode:{app_version}");
    for set in [&[][..], &["image.tag="][..], &["image.tag=null"][..]] {
        let objs = render_objects(set);
        assert_eq!(image(&objs), want.as_str(), "--set {set:?}");
        for (key, obj) in &objs {
            assert_eq!(
                obj["metadata"]["labels"]["app.kubernetes.io/version"], app_version,
                "{key} with --set {set:?}"
            );
        }
    }
    let objs = render_objects(&["image.tag=v2"]);
    assert_eq!(image(&objs), "everynode:v2");
    assert_eq!(
        only(&objs, "Deployment")["metadata"]["labels"]["app.kubernetes.io/version"],
        "v2"
    );
    // The kind workflow builds and loads the image the manifests name.
    let e2e =
        std::fs::read_to_string(repo().join(".github/workflows/e2e.yml")).expect("read e2e.yml");
    let workflow_image = e2e
        .lines()
        .find_map(|l| l.trim().strip_prefix("IMAGE: "))
        .expect("e2e.yml sets no IMAGE");
    for path in ["deploy/everynode.yaml", "deploy/replace-builtin.yaml"] {
        assert_eq!(
            image(&file_objects(path)),
            workflow_image,
            "{path} and .github/workflows/e2e.yml name different images"
        );
    }
}

#[test]
fn user_tolerations_are_kept_in_both_variants() {
    let user = [
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Equal",
        "tolerations[0].value=platform",
        "tolerations[0].effect=NoSchedule",
    ];
    let keys = |set: &[&str]| -> Vec<String> {
        let objs = render_objects(set);
        only(&objs, "Deployment")["spec"]["template"]["spec"]["tolerations"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        format!(
                            "{}:{}",
                            t["key"].as_str().unwrap_or("?"),
                            t["effect"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let replace_own = [
        "node.kubernetes.io/not-ready:",
        "node.kubernetes.io/network-unavailable:",
        "node.cloudprovider.kubernetes.io/uninitialized:NoSchedule",
        "node.kubernetes.io/unreachable:NoSchedule",
        "node.kubernetes.io/unreachable:NoExecute",
    ];
    assert_eq!(keys(&user), ["dedicated:NoSchedule"], "default variant");
    let with_replace: Vec<&str> = user.iter().chain(REPLACE_BUILTIN).copied().collect();
    let mut want = vec!["dedicated:NoSchedule"];
    want.extend(replace_own);
    assert_eq!(keys(&with_replace), want, "replaceBuiltin");
    // No tolerations at all: the default variant has none, replaceBuiltin its own.
    assert!(keys(&["tolerations=null"]).is_empty());
    let mut none: Vec<&str> = vec!["tolerations=null"];
    none.extend(REPLACE_BUILTIN);
    assert_eq!(
        keys(&none),
        replace_own,
        "replaceBuiltin without user tolerations"
    );
}

/// The standard labels every object (and the pods) carry for release `release` with chart name `name`.
/// CRDs are left out: Helm installs `crds/` as it is (no templating, no release labels), and they
/// belong to the cluster rather than to one release.
fn check_standard_labels(what: &str, objs: &BTreeMap<String, Value>, release: &str, name: &str) {
    let chart = yaml_file("charts/everynode/Chart.yaml");
    let want = BTreeMap::from([
        (
            "helm.sh/chart",
            format!(
                "everynode-{}",
                chart["version"].as_str().expect("Chart.yaml version")
            ),
        ),
        ("app.kubernetes.io/name", name.to_string()),
        ("app.kubernetes.io/instance", release.to_string()),
        (
            "app.kubernetes.io/version",
            chart["appVersion"]
                .as_str()
                .expect("appVersion")
                .to_string(),
        ),
        ("app.kubernetes.io/managed-by", "Helm".to_string()),
        ("app.kubernetes.io/component", "controller".to_string()),
        ("app.kubernetes.io/part-of", "everynode".to_string()),
    ]);
    let selector = Value::from(serde_json::Map::from_iter([
        ("app.kubernetes.io/name".to_string(), Value::from(name)),
        (
            "app.kubernetes.io/instance".to_string(),
            Value::from(release),
        ),
    ]));
    assert!(objs.len() >= 6, "{what}: only {} objects", objs.len());
    for (key, obj) in objs
        .iter()
        .filter(|(_, o)| o["kind"] != "CustomResourceDefinition")
    {
        let mut labelled = vec![("", &obj["metadata"]["labels"])];
        if obj["kind"] == "Deployment" {
            labelled.push((
                "pod template ",
                &obj["spec"]["template"]["metadata"]["labels"],
            ));
        }
        for (where_, labels) in labelled {
            for (k, v) in &want {
                assert_eq!(labels[k], v.as_str(), "{what}: {where_}{key} label {k}");
            }
        }
    }
    // Selectors only name the instance: they cannot change on upgrade, the other labels do.
    let deploy = only(objs, "Deployment");
    for (of, sel) in [
        ("Deployment", &deploy["spec"]["selector"]["matchLabels"]),
        ("Service", &only(objs, "Service")["spec"]["selector"]),
        (
            "PodDisruptionBudget",
            &only(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        ),
        (
            "podAntiAffinity",
            &deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                [0]["podAffinityTerm"]["labelSelector"]["matchLabels"],
        ),
    ] {
        assert_eq!(sel, &selector, "{what}: {of} selector");
    }
}

#[test]
fn every_object_has_the_standard_labels() {
    for path in ["deploy/everynode.yaml", "deploy/replace-builtin.yaml"] {
        check_standard_labels(path, &file_objects(path), RELEASE, "everynode");
    }
    check_standard_labels(
        "helm template ops",
        &objects("helm template ops", &render("ops", "platform", &[])),
        "ops",
        "everynode",
    );
    check_standard_labels(
        "helm template nameOverride=dsc",
        &render_objects(&["nameOverride=dsc"]),
        RELEASE,
        "dsc",
    );
    // podLabels add to the standard labels and never replace them (the selector's least of all).
    let objs = render_objects(&[
        "podLabels.team=platform",
        "podLabels.app\\.kubernetes\\.io/name=other",
    ]);
    let labels = &only(&objs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["team"], "platform");
    assert_eq!(labels["app.kubernetes.io/name"], "everynode");
}

#[test]
fn pod_disruption_budget_is_in_the_default_render() {
    let objs = render_objects(&[]);
    let pdb = only(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        only(
            &file_objects("deploy/everynode.yaml"),
            "PodDisruptionBudget"
        ),
        pdb,
        "deploy/everynode.yaml"
    );
    let off = render_objects(&["podDisruptionBudget.enabled=false"]);
    assert!(
        !off.values().any(|o| o["kind"] == "PodDisruptionBudget"),
        "podDisruptionBudget.enabled=false still renders one"
    );
}

#[test]
fn name_overrides_rename_every_object() {
    let names =
        |objs: &BTreeMap<String, Value>| -> BTreeSet<String> { objs.keys().cloned().collect() };
    let want = |name: &str| -> BTreeSet<String> {
        [
            format!("ClusterRole /{name}"),
            format!("ClusterRoleBinding /{name}"),
            format!("Deployment {NAMESPACE}/{name}"),
            format!("PodDisruptionBudget {NAMESPACE}/{name}"),
            format!(
                "Service {NAMESPACE}/{}-metrics",
                &name[..name.len().min(55)]
            ),
            format!("ServiceAccount {NAMESPACE}/{name}"),
        ]
        .into()
    };
    // nameOverride: <release>-<name> unless the release name contains it.
    let objs = render_objects(&["nameOverride=dsc"]);
    assert_eq!(names(&objs), want("everynode-dsc"));
    check_manifests("nameOverride=dsc", &objs, Variant::Default);
    let objs = objects(
        "release dsc-prod, nameOverride=dsc",
        &render("dsc-prod", NAMESPACE, &["nameOverride=dsc"]),
    );
    assert_eq!(names(&objs), want("dsc-prod"));
    // fullnameOverride: the name itself, wired through (binding subject, Lease name).
    let objs = render_objects(&["fullnameOverride=ops-daemonsets"]);
    assert_eq!(names(&objs), want("ops-daemonsets"));
    check_manifests("fullnameOverride", &objs, Variant::Default);
    let mut with_replace = vec!["fullnameOverride=ops-daemonsets"];
    with_replace.extend(REPLACE_BUILTIN);
    check_manifests(
        "fullnameOverride, replaceBuiltin",
        &render_objects(&with_replace),
        Variant::ReplaceBuiltin,
    );
    // Truncated to 63 characters (a DNS label), without a trailing '-'.
    let long = format!("fullnameOverride={}-{}", "a".repeat(62), "b".repeat(10));
    let objs = render_objects(&[long.as_str()]);
    assert_eq!(names(&objs), want(&"a".repeat(62)));
    for obj in objs.values() {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        assert!(name.len() <= 63, "{name} is longer than 63 characters");
    }
    let long_release = "r".repeat(53); // Helm's longest
    let objs = objects(
        "long release",
        &render(&long_release, NAMESPACE, &["nameOverride=abcdefghijk"]),
    );
    assert_eq!(names(&objs), want(&format!("{long_release}-abcdefghi")));
}
