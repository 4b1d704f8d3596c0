//! What everynode ships besides the binary: the Helm chart, the manifests in `deploy/`, the image's user
//! and the GitHub workflows. helm and actionlint come from `tools/build.sh` (built from the committed Go
//! wrapper modules into the cache on first use); a missing tool fails the test, it is never skipped.
//!
//! - the chart lints, and renders exactly `deploy/everynode.yaml` with its default values and exactly
//!   `deploy/replace-builtin.yaml` with `replaceBuiltin.enabled=true` (object by object, field by field);
//! - the manifests are locked down: probes, securityContext, resources, priority, replicas, RBAC without
//!   wildcards and with a reason for every rule, and the replace-builtin specifics;
//! - `actionlint` (with shellcheck) passes on `.github/workflows/*.yml`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const NAMESPACE: &str = "kube-system";
const RELEASE: &str = "everynode";
/// The placeholder `deploy/replace-builtin.yaml` carries for the API server address.
const API_SERVER_PLACEHOLDER: &str = "API_SERVER_HOST";
const METRICS_PORT: i64 = 8080;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// helm and actionlint, built by `tools/build.sh` if they are not in the cache yet.
fn tools() -> &'static BTreeMap<&'static str, PathBuf> {
    static TOOLS: OnceLock<BTreeMap<&'static str, PathBuf>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let names = ["helm", "actionlint"];
        let script = repo().join("tools/build.sh");
        // Progress of a cold build goes to stderr, straight to the terminal.
        let out = Command::new(&script)
            .args(names)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): helm and actionlint are needed for this test; see its output above",
            script.display(),
            out.status
        );
        let dirs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs.len(), names.len(), "tools/build.sh printed {dirs:?}");
        names
            .iter()
            .zip(dirs)
            .map(|(name, dir)| {
                let bin = dir.join(name);
                assert!(
                    bin.is_file(),
                    "{} is missing after tools/build.sh",
                    bin.display()
                );
                (*name, bin)
            })
            .collect()
    })
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

/// `helm template` of charts/everynode with `set` values, as release `release` in `namespace`.
fn render(release: &str, namespace: &str, set: &[&str]) -> String {
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
    run(&mut cmd)
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

/// Asserts that two sets of objects are the same objects with the same fields.
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
        "helm template (default values)",
        &render(RELEASE, NAMESPACE, &[]),
    );
    assert_same_objects(
        "helm template (default values)",
        &rendered,
        "deploy/everynode.yaml",
        &file_objects("deploy/everynode.yaml"),
    );
}

#[test]
fn replace_builtin_rendering_is_deploy_replace_builtin_yaml() {
    let rendered = objects(
        "helm template (replaceBuiltin)",
        &render(RELEASE, NAMESPACE, REPLACE_BUILTIN),
    );
    assert_same_objects(
        "helm template (replaceBuiltin)",
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
