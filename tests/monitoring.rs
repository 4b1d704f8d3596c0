//! The monitoring pack on a real Prometheus (`tools/build.sh prometheus`, started on 127.0.0.1 with a
//! generated config: scrape and evaluation every second) scraping everynode, which runs against the
//! local control plane:
//!
//! - Prometheus scrapes everynode (OpenMetrics, as Prometheus asks for it first; a second job asks
//!   for the text format 0.0.4 only) and its metadata API types everynode's counters as `counter` and
//!   its histograms as `histogram` in both formats;
//! - the shipped rule file, with ONE explicit change (EverynodeRolloutStuck's threshold, 600 s, made
//!   15 s so that the test takes seconds), is silent while a DaemonSet's rollout is complete and fires
//!   EverynodeRolloutStuck for that DaemonSet once a template change rolls out pods that never become
//!   Ready (`controlplane::NEVER_READY_LABEL`: kwok leaves them Pending); no other alert fires;
//! - `everynode_daemonset_nodes` has the DaemonSet's four classes: its node `ok` and every other node
//!   `excluded` while the rollout is complete, the node `waiting` once its new pod never becomes
//!   Ready;
//! - every dashboard panel's query returns data, the template variables substituted with the test's
//!   namespace and DaemonSet, and the variables' own queries offer them;
//! - the pack's ServiceMonitor, PrometheusRule (also with an evaluation interval) and dashboard
//!   ConfigMap pass the API server's strict validation (`kubectl apply --dry-run=server
//!   --validate=strict`) once prometheus-operator's CRDs are installed, and a misspelt field does not.

mod support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::prometheus::{
    DASHBOARD, JOB, Prometheus, RULES, dashboard, dashboard_queries, operator_crds, read, repo,
    tool,
};
use support::{TestEnv, daemonset, everynode_with_metrics, wait_for};

/// The shipped stuck-rollout condition, and the test's: 15 s instead of 10 minutes.
const SHIPPED_STUCK: &str = r#"max by (namespace, name) (everynode_daemonset_rollout_stalled_seconds{job="everynode"}) > 600"#;
const TEST_STUCK: &str = r#"max by (namespace, name) (everynode_daemonset_rollout_stalled_seconds{job="everynode"}) > 15"#;
const TEST_STUCK_SECONDS: f64 = 15.0;

/// The metric families the metadata API must type, by the names the text format 0.0.4 gives them
/// (OpenMetrics names a counter family without its `_total`).
const COUNTERS: [&str; 10] = [
    "everynode_reconciles_total",
    "everynode_undecodable_objects_total",
    "everynode_events_dropped_total",
    "everynode_reconcile_errors_total",
    "everynode_api_requests_total",
    "everynode_pods_created_total",
    "everynode_pods_deleted_total",
    "everynode_pods_create_failed_total",
    "everynode_pods_delete_failed_total",
    "process_cpu_seconds_total",
];
const HISTOGRAMS: [&str; 3] = [
    "everynode_reconcile_duration_seconds",
    "everynode_api_request_duration_seconds",
    "everynode_rate_limiter_duration_seconds",
];
const GAUGES: [&str; 7] = [
    "everynode_leader",
    "everynode_watch_healthy",
    "everynode_workqueue_depth",
    "everynode_daemonset_pods",
    "everynode_daemonset_nodes",
    "everynode_daemonset_rollout_stalled_seconds",
    "process_resident_memory_bytes",
];

fn config(everynode_port: u16) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - everynode.rules.yaml
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ["127.0.0.1:{everynode_port}"]
  # The same target in the Prometheus text format 0.0.4 only, for the metadata check.
  - job_name: {JOB}-text
    scrape_protocols: [PrometheusText0.0.4]
    static_configs:
      - targets: ["127.0.0.1:{everynode_port}"]
"#
    )
}

/// The type the metadata API gives `name`, if it knows it.
fn metadata_type(metadata: &Value, name: &str) -> Option<String> {
    metadata[name].as_array().map(|entries| {
        entries
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// `everynode_daemonset_nodes` of the test's DaemonSet `agent` as Prometheus has it: class -> value.
async fn nodes_by_class(p: &Prometheus, ns: &str) -> Result<BTreeMap<String, f64>, String> {
    let r = p
        .query(&format!(
            r#"everynode_daemonset_nodes{{job="{JOB}", namespace="{ns}", name="agent"}}"#
        ))
        .await?;
    Ok(r.iter()
        .map(|s| {
            let class = s["metric"]["class"].as_str().unwrap_or("?").to_string();
            let value = s["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (class, value)
        })
        .collect())
}

/// Waits until Prometheus has the four classes of `agent` with these values (excluded: every node
/// of the cluster but the test's one).
async fn wait_nodes_by_class(p: &Prometheus, env: &TestEnv, ok: f64, waiting: f64) {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(env.client.clone());
    wait_for(
        &format!("everynode_daemonset_nodes of agent: ok {ok}, waiting {waiting}, failed 0, excluded the other nodes"),
        Duration::from_secs(30),
        || async {
            let all = nodes
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            let want: BTreeMap<String, f64> = [
                ("excluded", all as f64 - 1.0),
                ("failed", 0.0),
                ("ok", ok),
                ("waiting", waiting),
            ]
            .into_iter()
            .map(|(c, v)| (c.to_string(), v))
            .collect();
            let got = nodes_by_class(p, &env.ns).await?;
            if got == want {
                eprintln!("everynode_daemonset_nodes of agent: {got:?}");
                Ok(())
            } else {
                Err(format!("{got:?}, want {want:?}"))
            }
        },
    )
    .await;
}

/// The alerts Prometheus has, as (name, state, labels).
async fn alerts(p: &Prometheus) -> Result<Vec<(String, String, Value)>, String> {
    let data = p.api("alerts", &[]).await?;
    Ok(data["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("?").to_string(),
                a["state"].as_str().unwrap_or("?").to_string(),
                a["labels"].clone(),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_everynode_alerts_on_a_stuck_rollout_and_feeds_every_panel() {
    let started = Instant::now();
    tool("prometheus"); // a cold build shows its progress before the cluster starts
    let everynode_port = everynode_with_metrics();
    let env = TestEnv::new("monitoring").await;
    let node = env.add_node("n0", &[], vec![]).await;
    env.create_daemonset(&daemonset(&env, "agent", json!({})))
        .await;
    env.wait_pods_exactly_on("agent", &[&node]).await;
    env.wait_ds_status("agent", [1, 1, 1, 1, 1, 0]).await;

    // The shipped rules, with the one change this test makes.
    let shipped = read(RULES);
    assert_eq!(
        shipped.matches(SHIPPED_STUCK).count(),
        1,
        "{RULES} no longer has `{SHIPPED_STUCK}`: update this test's threshold change"
    );
    let rules = shipped.replace(SHIPPED_STUCK, TEST_STUCK);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("monitoring-{}", std::process::id()));
    let p = Prometheus::start(
        &dir,
        &config(everynode_port),
        &[("everynode.rules.yaml", &rules)],
    )
    .await;
    eprintln!(
        "Prometheus on 127.0.0.1:{} ({}), everynode on 127.0.0.1:{everynode_port}",
        p.port,
        p.log().display()
    );

    // Both jobs scrape everynode.
    wait_for(
        "Prometheus to scrape everynode (up == 1 in both jobs)",
        Duration::from_secs(30),
        || async {
            let up = p
                .query(r#"up{job=~"everynode|everynode-text"} == 1"#)
                .await?;
            if up.len() == 2 {
                Ok(())
            } else {
                Err(format!(
                    "{up:?}; targets: {:?}",
                    p.api("targets", &[]).await
                ))
            }
        },
    )
    .await;

    // The metadata API: counters are counters, histograms histograms, in both formats.
    let metadata = wait_for(
        "the metadata API to know everynode's metrics",
        Duration::from_secs(30),
        || async {
            let m = p.api("metadata", &[]).await?;
            if COUNTERS.iter().all(|c| metadata_type(&m, c).is_some()) {
                Ok(m)
            } else {
                Err(format!("{m}"))
            }
        },
    )
    .await;
    for name in [
        "everynode_reconciles_total",
        "everynode_api_requests_total",
        "everynode_pods_created_total",
    ] {
        for form in [name, name.trim_end_matches("_total")] {
            let answer = p
                .api("metadata", &[("metric", form)])
                .await
                .unwrap_or_else(|e| panic!("metadata of {form}: {e}"));
            eprintln!("/api/v1/metadata?metric={form}: {answer}");
        }
    }
    let mut wrong = Vec::new();
    for (names, want) in [
        (&COUNTERS[..], "counter"),
        (&HISTOGRAMS[..], "histogram"),
        (&GAUGES[..], "gauge"),
    ] {
        for name in names {
            // The text format's name, and OpenMetrics' family name for counters.
            let mut forms = vec![name.to_string()];
            if want == "counter" {
                forms.push(name.trim_end_matches("_total").to_string());
            }
            for form in forms {
                let got = metadata_type(&metadata, &form);
                if got.as_deref() != Some(want) {
                    wrong.push(format!("{form}: {got:?}, want {want}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the metadata API types these wrong:\n  {}",
        wrong.join("\n  ")
    );

    // Silent while the rollout is complete: stalled at 0 for a few evaluations, no alert.
    let stalled_query = format!(
        r#"everynode_daemonset_rollout_stalled_seconds{{job="{JOB}", namespace="{}", name="agent"}}"#,
        env.ns
    );
    wait_for(
        "Prometheus to see agent's complete rollout (stalled 0 for 3 s)",
        Duration::from_secs(30),
        || async {
            let r = p
                .query(&format!("max_over_time({stalled_query}[3s]) == 0 and count_over_time({stalled_query}[3s]) >= 3"))
                .await?;
            if r.len() == 1 { Ok(()) } else { Err(format!("{r:?}")) }
        },
    )
    .await;
    // Every node of the cluster is in one class: agent's own runs its pod, the rest are excluded.
    wait_nodes_by_class(&p, &env, 1.0, 0.0).await;
    let before = alerts(&p).await.expect("alerts");
    assert!(
        !before
            .iter()
            .any(|(name, _, _)| name == "EverynodeRolloutStuck"),
        "EverynodeRolloutStuck before any rollout: {before:?}"
    );

    // A rollout whose new pods never become Ready.
    let rollout = Instant::now();
    env.patch_template(
        "agent",
        json!({"metadata": {"labels": {controlplane::NEVER_READY_LABEL: "true"}}}),
    )
    .await;
    let ns = env.ns.clone();
    let firing = wait_for(
        "EverynodeRolloutStuck to fire for agent",
        Duration::from_secs(60),
        || {
            let p = &p;
            let ns = ns.clone();
            let stalled_query = &stalled_query;
            async move {
                let all = alerts(p).await?;
                let stuck: Vec<&(String, String, Value)> = all
                    .iter()
                    .filter(|(name, _, l)| {
                        name == "EverynodeRolloutStuck" && l["namespace"] == ns.as_str()
                    })
                    .collect();
                match stuck.first() {
                    Some((_, state, labels)) if state == "firing" => {
                        Ok((rollout.elapsed(), labels.clone(), all.clone()))
                    }
                    _ => Err(format!(
                        "alerts {all:?}; stalled: {:?}",
                        p.query(stalled_query).await
                    )),
                }
            }
        },
    )
    .await;
    let (fired_after, labels, all) = firing;
    eprintln!(
        "EverynodeRolloutStuck fired {:.1}s after the template change (threshold {TEST_STUCK_SECONDS}s): {labels}",
        fired_after.as_secs_f64()
    );
    assert_eq!(labels["name"], "agent");
    assert_eq!(labels["severity"], "warning");
    assert!(
        fired_after.as_secs_f64() > TEST_STUCK_SECONDS,
        "fired after {fired_after:?}, before the threshold"
    );
    let others: Vec<&(String, String, Value)> = all
        .iter()
        .filter(|(name, state, _)| name != "EverynodeRolloutStuck" && state == "firing")
        .collect();
    assert!(others.is_empty(), "other alerts fire: {others:?}");
    // The node's new pod never becomes Ready: waiting (not failed: kwok leaves it Pending, as a
    // starting pod).
    wait_nodes_by_class(&p, &env, 0.0, 1.0).await;

    // Every dashboard panel's query returns data for the test's namespace and DaemonSet.
    let d = dashboard();
    let values = [
        ("namespace", ns.as_str()),
        ("daemonset", "agent"),
        ("__rate_interval", "30s"),
        ("__range", "5m"),
    ];
    let queries = dashboard_queries(&d);
    let results = wait_for(
        "every dashboard query to return data",
        Duration::from_secs(30),
        || async {
            let mut empty = Vec::new();
            let mut counts = Vec::new();
            for q in &queries {
                let expr = support::prometheus::substitute(&q.expr, &values);
                let r = p
                    .query(&expr)
                    .await
                    .map_err(|e| format!("{} {}: {e}", q.panel, q.ref_id))?;
                if r.is_empty() {
                    empty.push(format!("{} {}: {expr}", q.panel, q.ref_id));
                }
                counts.push((format!("{} {}", q.panel, q.ref_id), r.len()));
            }
            if empty.is_empty() {
                Ok(counts)
            } else {
                Err(format!("no data:\n  {}", empty.join("\n  ")))
            }
        },
    )
    .await;
    for (place, n) in &results {
        eprintln!("  {DASHBOARD} {place}: {n} series");
    }
    // The variables offer the test's namespace and DaemonSet.
    for (var, label, want) in [
        ("namespace", "namespace", ns.as_str()),
        ("daemonset", "name", "agent"),
    ] {
        let q = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == var)
            .and_then(|v| v["query"]["query"].as_str())
            .unwrap_or_else(|| panic!("no variable {var}"));
        let selector = q
            .strip_prefix("label_values(")
            .and_then(|s| s.rsplit_once(','))
            .map(|(sel, _)| support::prometheus::substitute(sel, &values))
            .unwrap_or_else(|| panic!("{var}: {q}"));
        let offered = p
            .api(&format!("label/{label}/values"), &[("match[]", &selector)])
            .await
            .unwrap_or_else(|e| panic!("variable {var}: {e}"));
        assert!(
            offered
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == want)),
            "variable {var} ({q}) offers {offered}, not {want}"
        );
    }
    eprintln!(
        "monitoring test done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// `kubectl` of the control-plane build against `env`'s cluster, its discovery cache in the test's
/// tmp folder: (success, stdout and stderr).
fn kubectl(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kubectl-cache-{}", std::process::id()));
    support::prometheus::output(
        std::process::Command::new(env.cp.binaries().path("kubectl"))
            .current_dir(repo())
            .arg(format!("--kubeconfig={}", env.cp.kubeconfig().display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .args(args),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_packs_objects_pass_the_api_servers_validation_with_prometheus_operators_crds() {
    let crds = operator_crds();
    let env = TestEnv::new("monitoring-crds").await;
    let files: Vec<String> = [
        "monitoring.coreos.com_servicemonitors.yaml",
        "monitoring.coreos.com_prometheusrules.yaml",
    ]
    .iter()
    .map(|f| crds.join(f).display().to_string())
    .collect();
    let (ok, out) = kubectl(
        &env,
        &["apply", "--server-side", "-f", &files[0], "-f", &files[1]],
    );
    assert!(ok, "install the CRDs: {out}");
    let (ok, out) = kubectl(
        &env,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ],
    );
    assert!(ok, "the CRDs are not established: {out}");

    // The PrometheusRule with an evaluation interval, as monitoring.prometheusRule.interval renders.
    let mut rule: Value =
        serde_yaml_ng::from_str(&read("deploy/monitoring/prometheusrule.yaml")).expect("YAML");
    rule["spec"]["groups"][0]["interval"] = json!("30s");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("monitoring-crds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let with_interval = dir.join("prometheusrule-interval.json");
    std::fs::write(&with_interval, rule.to_string()).expect("write");
    // A misspelt field, which strict validation must reject.
    let misspelt = dir.join("servicemonitor-misspelt.yaml");
    let monitor = read("deploy/monitoring/servicemonitor.yaml");
    assert!(monitor.contains("      interval: "));
    std::fs::write(
        &misspelt,
        monitor.replace("      interval: ", "      intervall: "),
    )
    .expect("write");

    let with_interval = with_interval.display().to_string();
    let dry_run = |file: &str| {
        kubectl(
            &env,
            &["apply", "--dry-run=server", "--validate=strict", "-f", file],
        )
    };
    // Discovery may lag the Established condition by a moment.
    let started = Instant::now();
    for file in [
        "deploy/monitoring/servicemonitor.yaml",
        "deploy/monitoring/prometheusrule.yaml",
        "deploy/monitoring/grafana-dashboard.yaml",
        with_interval.as_str(),
    ] {
        loop {
            let (ok, out) = dry_run(file);
            if ok {
                eprintln!("{file}: {}", out.trim());
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30)
                    && (out.contains("the server doesn't have a resource type")
                        || out.contains("no matches for kind")),
                "{file} fails the API server's validation:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let (ok, out) = dry_run(&misspelt.display().to_string());
    assert!(
        !ok && out.contains("intervall"),
        "a ServiceMonitor with a misspelt field passes: {out}"
    );
}
