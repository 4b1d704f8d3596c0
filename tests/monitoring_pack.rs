//! The monitoring pack in `deploy/monitoring/`, checked with the real tools (no cluster needed):
//!
//! - `promtool check rules` accepts the rule file, and `promtool test rules` passes its unit tests
//!   (`deploy/monitoring/tests/*.yaml`), which fire every alert at least once and keep every alert
//!   silent at least once;
//! - the PrometheusRule (`deploy/monitoring/prometheusrule.yaml`, the chart's template) carries the
//!   rule file's groups, and the chart's `files/` hold the same bytes as the pack's sources; nodes in
//!   class failed alert after 15 minutes (`EverynodeDaemonSetPodsFailing`);
//! - the Grafana dashboard is a valid dashboard: schemaVersion, panels with id, type, title, gridPos
//!   and targets, the templating list; the `${datasource}` variable as the datasource of every panel,
//!   every target and every query variable; only defined variables used; every query parsed by
//!   promtool (as a recording rule) after substituting the variables; the nodes of each DaemonSet
//!   by class as a table, and those waiting or failed over time.
//!
//! tests/monitoring.rs runs the same rules and queries on a real Prometheus scraping everynode.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use support::prometheus::{
    DASHBOARD, GRAFANA_VARIABLES, RULES, dashboard, dashboard_queries, output, read, repo,
    substitute, tool, variables, yaml,
};

/// The alert names of the rule file.
fn alerts(rules: &Value) -> BTreeSet<String> {
    rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

fn unit_test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("deploy/monitoring/tests"))
        .expect("read deploy/monitoring/tests")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .map(|p| p.strip_prefix(repo()).unwrap_or(&p).display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_checks_the_rule_file() {
    let (ok, out) = output(Command::new(tool("promtool")).current_dir(repo()).args([
        "check",
        "rules",
        "--lint=all",
        "--lint-fatal",
        RULES,
    ]));
    assert!(ok, "promtool check rules {RULES}:\n{out}");
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
}

#[test]
fn promtool_unit_tests_fire_and_silence_every_alert() {
    let files = unit_test_files();
    assert!(
        !files.is_empty(),
        "no unit tests in deploy/monitoring/tests"
    );
    let (ok, out) = output(
        Command::new(tool("promtool"))
            .current_dir(repo())
            .args(["test", "rules"])
            .args(&files),
    );
    eprintln!("promtool test rules:\n{out}");
    assert!(ok, "promtool test rules {files:?} failed:\n{out}");

    // Every alert is tested both ways: some case expects it, some case expects it silent.
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    for f in &files {
        let doc = yaml(f);
        assert_eq!(
            doc["rule_files"],
            serde_json::json!(["../everynode.rules.yaml"]),
            "{f} must test the shipped rule file"
        );
        for t in doc["tests"].as_array().into_iter().flatten() {
            for a in t["alert_rule_test"].as_array().into_iter().flatten() {
                let name = a["alertname"].as_str().unwrap_or("?").to_string();
                let expected = a["exp_alerts"].as_array().map_or(0, Vec::len);
                if expected > 0 {
                    fires.insert(name);
                } else {
                    silent.insert(name);
                }
            }
        }
    }
    let all = alerts(&yaml(RULES));
    assert_eq!(all.len(), 7, "{all:?}");
    for alert in &all {
        assert!(fires.contains(alert), "no unit test fires {alert}");
        assert!(silent.contains(alert), "no unit test keeps {alert} silent");
    }
}

#[test]
fn the_prometheus_rule_carries_the_rule_files_groups() {
    let rules = yaml(RULES);
    let objects = yaml("deploy/monitoring/prometheusrule.yaml");
    assert_eq!(objects["kind"], "PrometheusRule");
    assert_eq!(
        objects["spec"]["groups"], rules["groups"],
        "deploy/monitoring/prometheusrule.yaml and {RULES} differ: run scripts/render-manifests.sh"
    );
    // The chart reads copies of the sources (Helm cannot read outside the chart).
    for f in ["everynode.rules.yaml", "everynode-dashboard.json"] {
        assert!(
            read(&format!("charts/everynode/files/{f}")) == read(&format!("deploy/monitoring/{f}")),
            "charts/everynode/files/{f} is not deploy/monitoring/{f}: run scripts/render-manifests.sh"
        );
    }
    // The shipped threshold of the stuck rollout is 10 minutes (tests/monitoring.rs shortens it).
    let stuck = rules["groups"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["alert"] == "EverynodeRolloutStuck")
        .expect("EverynodeRolloutStuck");
    assert!(
        stuck["expr"].as_str().unwrap_or("").ends_with("> 600"),
        "{stuck}"
    );
    // Nodes in class failed alert after 15 minutes, per DaemonSet.
    let failing = rules["groups"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["alert"] == "EverynodeDaemonSetPodsFailing")
        .expect("EverynodeDaemonSetPodsFailing");
    assert_eq!(
        failing["expr"],
        r#"max by (namespace, name) (everynode_daemonset_nodes{job="everynode", class="failed"}) > 0"#
    );
    assert_eq!(failing["for"], "15m");
    // Every expression selects everynode's job (first, alone or with other matchers).
    for r in rules["groups"][0]["rules"].as_array().into_iter().flatten() {
        let expr = r["expr"].as_str().unwrap_or("");
        assert!(
            expr.contains(r#"{job="everynode"}"#) || expr.contains(r#"{job="everynode", "#),
            "{} does not select job=\"everynode\"",
            r["alert"]
        );
    }
}

/// The dashboard's variables by name: (type, query).
fn dashboard_variables(d: &Value) -> BTreeMap<String, Value> {
    d["templating"]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("{DASHBOARD}: no templating.list"))
        .iter()
        .map(|v| (v["name"].as_str().unwrap_or("?").to_string(), v.clone()))
        .collect()
}

/// `{"type": "prometheus", "uid": "${datasource}"}`.
fn is_datasource_variable(v: &Value) -> bool {
    v["uid"] == "${datasource}" && v["type"] == "prometheus"
}

#[test]
fn the_dashboard_is_valid_and_every_query_parses() {
    let d = dashboard();
    let schema = d["schemaVersion"].as_i64().unwrap_or(0);
    assert!(
        schema >= 36,
        "schemaVersion {schema}: the datasource-as-object form needs 36 or later"
    );
    for field in ["title", "uid"] {
        assert!(d[field].as_str().is_some_and(|s| !s.is_empty()), "{field}");
    }
    assert!(
        d.get("__inputs").is_none(),
        "a sidecar dashboard has no __inputs"
    );

    // The variables: a Prometheus datasource variable, and namespace and daemonset queries on it.
    let vars = dashboard_variables(&d);
    let ds = vars.get("datasource").expect("no datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for (name, label) in [("namespace", "namespace"), ("daemonset", "name")] {
        let v = vars
            .get(name)
            .unwrap_or_else(|| panic!("no {name} variable"));
        assert_eq!(v["type"], "query", "{name}");
        assert!(is_datasource_variable(&v["datasource"]), "{name}: {v}");
        let q = v["query"]["query"].as_str().unwrap_or("");
        assert!(
            q.starts_with("label_values(everynode_daemonset_pods{")
                && q.ends_with(&format!(", {label})")),
            "{name}: {q}"
        );
        assert_eq!(v["includeAll"], true, "{name}");
        assert_eq!(v["allValue"], ".*", "{name}");
    }

    // The panels.
    let panels = d["panels"].as_array().expect("panels");
    // Nodes by class per DaemonSet: a table with a column per class, one row per DaemonSet.
    let by_class = panels
        .iter()
        .find(|p| p["title"] == "Nodes by class")
        .expect("a \"Nodes by class\" panel");
    assert_eq!(by_class["type"], "table");
    assert_eq!(
        by_class["targets"][0]["expr"],
        r#"sum by (namespace, name, class) (everynode_daemonset_nodes{job="everynode", namespace=~"$namespace", name=~"$daemonset"})"#
    );
    assert_eq!(
        by_class["transformations"][0]["options"]["columnField"],
        "class"
    );
    let failing_panel = panels
        .iter()
        .find(|p| p["title"] == "Nodes waiting or failed")
        .expect("a \"Nodes waiting or failed\" panel");
    assert!(
        failing_panel["targets"][0]["expr"]
            .as_str()
            .is_some_and(|e| e.contains("everynode_daemonset_nodes{")
                && e.contains(r#"class=~"waiting|failed""#)),
        "{failing_panel}"
    );
    assert!(panels.len() >= 10, "only {} panels", panels.len());
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("");
        assert!(!title.is_empty(), "a panel without a title: {p}");
        let id = p["id"].as_i64().unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: id {id} twice");
        assert!(
            matches!(
                p["type"].as_str(),
                Some("timeseries" | "stat" | "table" | "gauge" | "bargauge")
            ),
            "{title}: type {}",
            p["type"]
        );
        let g = &p["gridPos"];
        for k in ["h", "w", "x", "y"] {
            assert!(g[k].is_u64(), "{title}: gridPos.{k}");
        }
        assert!(
            g["x"].as_u64().unwrap_or(99) + g["w"].as_u64().unwrap_or(99) <= 24,
            "{title}: wider than the 24 columns"
        );
        assert!(
            is_datasource_variable(&p["datasource"]),
            "{title}: datasource {}",
            p["datasource"]
        );
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = BTreeSet::new();
        for t in &targets {
            assert!(
                is_datasource_variable(&t["datasource"]),
                "{title}: target datasource {}",
                t["datasource"]
            );
            assert!(
                refs.insert(t["refId"].as_str().unwrap_or("").to_string()),
                "{title}: refId twice"
            );
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{title}: empty expr"
            );
        }
    }

    // Every query: only known variables, and promtool parses it once they are substituted. The
    // queries become recording rules of a generated rule file that `promtool check rules` reads.
    let known: BTreeSet<&str> = vars
        .keys()
        .map(String::as_str)
        .chain(GRAFANA_VARIABLES)
        .collect();
    let values = [
        ("namespace", "(kube-system|monitoring)"),
        ("daemonset", ".*"),
        ("__rate_interval", "2m"),
        ("__range", "1h"),
    ];
    let mut rules = Vec::new();
    let mut queries: Vec<(String, String)> = dashboard_queries(&d)
        .into_iter()
        .map(|q| (format!("{} {}", q.panel, q.ref_id), q.expr))
        .collect();
    for name in ["namespace", "daemonset"] {
        let q = vars[name]["query"]["query"].as_str().unwrap_or("");
        // label_values(<selector>, <label>): the selector is PromQL.
        let selector = q
            .strip_prefix("label_values(")
            .and_then(|s| s.rsplit_once(','))
            .map(|(sel, _)| sel.to_string())
            .unwrap_or_default();
        queries.push((format!("variable {name}"), selector));
    }
    for (i, (place, expr)) in queries.iter().enumerate() {
        for v in variables(expr) {
            assert!(known.contains(v.as_str()), "{place}: unknown variable ${v}");
        }
        let expr = substitute(expr, &values);
        assert!(!expr.contains('$'), "{place}: {expr}");
        rules.push(serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": expr}));
    }
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("monitoring-pack");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("dashboard-queries.rules.yaml");
    std::fs::write(
        &path,
        serde_yaml_ng::to_string(&file).expect("YAML of the queries"),
    )
    .expect("write the queries");
    let (ok, out) = output(
        Command::new(tool("promtool"))
            .args(["check", "rules"])
            .arg(&path),
    );
    assert!(
        ok,
        "promtool does not parse every dashboard query ({}; rule dashboard:query_<n> is the n-th of {:?}):\n{out}",
        path.display(),
        queries.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    eprintln!(
        "dashboard: {} panels, {} queries (and 2 variable queries) parsed by promtool",
        panels.len(),
        queries.len() - 2
    );
}
