//! The monitoring pack (`deploy/monitoring/`) and the real Prometheus tools it is tested with:
//! `prometheus` and `promtool`, built by `tools/build.sh` from the Go wrapper module
//! `tools/prometheus/` into the cache on first use (a missing tool fails the test, it is never
//! skipped); a Prometheus server on 127.0.0.1 with a generated config; its HTTP API; the
//! dashboard's queries.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The rule file: the one source of everynode's alerts.
pub const RULES: &str = "deploy/monitoring/everynode.rules.yaml";
/// The Grafana dashboard.
pub const DASHBOARD: &str = "deploy/monitoring/everynode-dashboard.json";
/// The job name every rule and panel selects (the chart's ServiceMonitor sets it).
pub const JOB: &str = "everynode";

pub use super::tools::repo;

/// `prometheus` or `promtool`, built by `tools/build.sh` if they are not in the cache yet.
pub fn tool(name: &str) -> PathBuf {
    static TOOLS: OnceLock<BTreeMap<&'static str, PathBuf>> = OnceLock::new();
    TOOLS
        .get_or_init(|| super::tools::build(&["prometheus", "promtool"]))
        .get(name)
        .unwrap_or_else(|| panic!("unknown tool {name}"))
        .clone()
}

/// The folder with prometheus-operator's ServiceMonitor and PrometheusRule CRDs
/// (`tools/build.sh prometheus-operator-crds`, from the Go module proxy on first use).
pub fn operator_crds() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo().join("tools/build.sh");
        let out = Command::new(&script)
            .arg("prometheus-operator-crds")
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} prometheus-operator-crds failed ({}); see its output above",
            script.display(),
            out.status
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// Runs `cmd`: its status and its stdout and stderr together.
pub fn output(cmd: &mut Command) -> (bool, String) {
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A file of the repository.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// A YAML file of the repository, as JSON.
pub fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// The dashboard.
pub fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// One query of the dashboard: where it is and its expression.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

/// Every target's expression of every panel.
pub fn dashboard_queries(dashboard: &Value) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(PanelQuery {
                panel: p["title"].as_str().unwrap_or("?").to_string(),
                ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                expr: t["expr"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    out
}

/// The variables Grafana itself defines that the dashboard may use (besides its templating list).
pub const GRAFANA_VARIABLES: [&str; 2] = ["__rate_interval", "__range"];

/// `expr` with every `$name` / `${name}` of `values` replaced (longest names first).
pub fn substitute(expr: &str, values: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = values.iter().collect();
    sorted.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = expr.to_string();
    for (k, v) in sorted {
        out = out.replace(&format!("${{{k}}}"), v);
        out = out.replace(&format!("${k}"), v);
    }
    out
}

/// The `$variables` an expression uses.
pub fn variables(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = if braced { i + 2 } else { i + 1 };
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            if end > start {
                out.push(expr[start..end].to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// A Prometheus server of the test's own on 127.0.0.1, killed when dropped (or when the test
/// binary exits), its data and log under `dir`.
pub struct Prometheus {
    pub port: u16,
    pub dir: PathBuf,
    process: controlplane::process::Process,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml's text) and `rule_files` (name, text),
    /// written to `dir`; waits until it is ready.
    pub async fn start(dir: &Path, config: &str, rule_files: &[(&str, &str)]) -> Self {
        let _ = std::fs::remove_dir_all(dir.join("data"));
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        for (name, text) in rule_files {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("write config: {e}"));
        let (ok, out) = output(
            Command::new(tool("promtool"))
                .args(["check", "config"])
                .arg(&config_path),
        );
        assert!(
            ok,
            "promtool check config {}:\n{out}",
            config_path.display()
        );
        let port = controlplane::free_port().unwrap_or_else(|e| panic!("free port: {e}"));
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=info".to_string(),
        ];
        let log = dir.join("prometheus.log");
        let process =
            controlplane::process::Process::spawn("prometheus", &tool("prometheus"), &args, &log)
                .unwrap_or_else(|e| panic!("start prometheus: {e}"));
        let p = Self {
            port,
            dir: dir.to_path_buf(),
            process,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = p.get_raw("/-/ready").await {
                return p;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Prometheus not ready within 60s; log: {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("prometheus.log")
    }

    /// `GET path` (HTTP/1.0: the body ends with the connection): status and body.
    pub async fn get_raw(&self, path: &str) -> Result<(u16, String), String> {
        http10_get(self.port, path).await
    }

    /// `GET /api/v1/<path>?<query>` with the query's values percent-encoded: the answer's `data`, or
    /// the error Prometheus gave.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let url = if q.is_empty() {
            format!("/api/v1/{path}")
        } else {
            format!("/api/v1/{path}?{}", q.join("&"))
        };
        let (code, body) = self.get_raw(&url).await?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("GET {url}: {code}, not JSON ({e}): {body}"))?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!(
                "GET {url}: {code} {}: {}",
                v["errorType"].as_str().unwrap_or("?"),
                v["error"].as_str().unwrap_or("?")
            ))
        }
    }

    /// An instant query's result vector.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("query", &[("query", expr)]).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.process.stop(Duration::from_secs(5));
    }
}

/// RFC 3986 percent-encoding of a query value.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET path` on 127.0.0.1:`port` as HTTP/1.0 (no chunked body): status and body (10 s timeout).
pub async fn http10_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    super::http_exchange(port, request, Duration::from_secs(10)).await
}
