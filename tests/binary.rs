//! The `everynode` binary against the real control plane: it connects, reports the server version,
//! and exits 0 within 5 s of SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn binary_connects_reports_version_and_exits_cleanly_on_sigterm() {
    let cp = support::control_plane();
    let mut child = Command::new(env!("CARGO_BIN_EXE_everynode"))
        .args(["run", "--kubeconfig"])
        .arg(cp.kubeconfig())
        .arg("--metrics-bind-address=127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start everynode: {e}"));
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("everynode| {line}");
            let _ = tx.send(line);
        }
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let connected = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("connected to the API server") => break line,
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                panic!("everynode did not log 'connected to the API server' within 30s");
            }
        }
    };
    assert!(
        connected.contains(cp.server()),
        "the log names the server: {connected}"
    );
    assert!(
        connected.contains("v1.36."),
        "the log names the server version: {connected}"
    );

    let pid = child.id();
    assert!(
        controlplane::process::signal(pid, libc::SIGTERM),
        "SIGTERM sent"
    );
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or(None) {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("everynode did not exit within 5s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "everynode exited with {status} after SIGTERM"
    );
}

/// Runs `everynode run` with `args` and `env` until it exits (at most 30 s); returns its exit code
/// and stderr.
fn run_once(args: &[String], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_everynode"));
    cmd.arg("run")
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start everynode: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap_or(None) {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut s, &mut err);
            }
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("everynode {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A kubeconfig like the control plane's admin one, with `server` and `token` replaced.
fn kubeconfig_with(name: &str, server: Option<&str>, token: Option<&str>) -> std::path::PathBuf {
    let cp = support::control_plane();
    let text = std::fs::read_to_string(cp.kubeconfig()).unwrap_or_else(|e| panic!("read: {e}"));
    let mut kc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse kubeconfig: {e}"));
    if let Some(server) = server {
        kc["clusters"][0]["cluster"]["server"] = server.into();
    }
    if let Some(token) = token {
        kc["users"][0]["user"]["token"] = token.into();
    }
    let path = cp.dir().join(format!("kubeconfig-{name}"));
    std::fs::write(&path, kc.to_string()).unwrap_or_else(|e| panic!("write: {e}"));
    path
}

/// (what, args, env, exit code, the sentence's words, words that must not appear)
type Mistake<'a> = (
    &'a str,
    Vec<String>,
    Vec<(&'a str, &'a str)>,
    i32,
    Vec<&'a str>,
    Vec<&'a str>,
);

/// Command-line and configuration mistakes get one readable sentence each, a non-zero exit, no
/// debug dump and no colour codes, and flag mistakes are found before a port is bound or the API
/// server is contacted.
#[test]
fn mistakes_get_one_clear_sentence_each() {
    let cp = support::control_plane();
    let admin = cp.kubeconfig().display().to_string();
    let port = controlplane::free_port().unwrap_or_else(|e| panic!("free port: {e}"));
    let bind = format!("--metrics-bind-address=127.0.0.1:{port}");
    let closed = controlplane::free_port().unwrap_or_else(|e| panic!("free port: {e}"));
    let refused = kubeconfig_with(
        "refused",
        Some(&format!("https://127.0.0.1:{closed}")),
        None,
    );
    let wrong_token = kubeconfig_with("wrong-token", None, Some("not-a-valid-token"));
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<Mistake> = vec![
        (
            "missing --kubeconfig file",
            s(&["--kubeconfig=/nonexistent/kc", &bind]),
            vec![],
            1,
            vec!["the kubeconfig /nonexistent/kc does not exist"],
            vec!["\"/nonexistent", "serving /metrics"],
        ),
        (
            "KUBECONFIG names a missing file",
            s(&[&bind]),
            vec![("KUBECONFIG", "/nonexistent/kc")],
            1,
            vec!["/nonexistent/kc does not exist (named by KUBECONFIG)"],
            vec!["set KUBECONFIG", "serving /metrics"],
        ),
        (
            "unknown context",
            s(&[&format!("--kubeconfig={admin}"), "--context=nope", &bind]),
            vec![],
            1,
            vec![
                "the context \"nope\" is not in the kubeconfig",
                "its contexts: everynode-local",
            ],
            vec!["$KUBECONFIG", "current context"],
        ),
        (
            "zero workers",
            s(&["--concurrent-daemonset-syncs=0"]),
            vec![],
            2,
            vec!["--concurrent-daemonset-syncs", "0"],
            vec![],
        ),
        (
            "negative QPS",
            s(&["--kube-api-qps=-1"]),
            vec![],
            2,
            vec!["must be 0 (no limit) or more"],
            vec![],
        ),
        (
            "leader timings out of order, found before connecting",
            s(&[
                &format!("--kubeconfig={}", refused.display()),
                "--leader-elect-renew-deadline=20s",
                &bind,
            ]),
            vec![],
            2,
            vec!["invalid leader election timing"],
            vec!["connection refused", "serving /metrics"],
        ),
        (
            "invalid RUST_LOG",
            s(&[&format!("--kubeconfig={admin}"), &bind]),
            vec![("RUST_LOG", "info,everynode=loud")],
            2,
            vec!["RUST_LOG=\"info,everynode=loud\" is not a log filter"],
            vec![],
        ),
        (
            "connection refused",
            s(&[
                &format!("--kubeconfig={}", refused.display()),
                &bind,
                "--leader-elect=false",
            ]),
            vec![],
            1,
            vec!["cannot connect to the API server", "connection refused"],
            vec!["HyperError", "Os {", "kind:"],
        ),
        (
            "401",
            s(&[
                &format!("--kubeconfig={}", wrong_token.display()),
                &bind,
                "--leader-elect=false",
            ]),
            vec![],
            1,
            vec![
                "refused the credentials of user \"admin\"",
                "401 Unauthorized",
            ],
            vec!["cannot reach", "Status {", "ErrorResponse"],
        ),
    ];
    for (what, args, env, code, want, not) in cases {
        let (exit, stderr) = run_once(&args, &env);
        eprintln!("{what}: exit {exit:?}\n{stderr}");
        assert_eq!(exit, Some(code), "{what}: exit code; stderr:\n{stderr}");
        for w in want {
            assert!(stderr.contains(w), "{what}: {w:?} not in:\n{stderr}");
        }
        for n in not {
            assert!(!stderr.contains(n), "{what}: {n:?} in:\n{stderr}");
        }
        assert!(
            !stderr.contains('\u{1b}'),
            "{what}: colour codes in:\n{stderr}"
        );
    }
}

/// `--metrics-bind-address` takes the forms Kubernetes components take: `:PORT` (every address)
/// and `localhost:PORT`.
#[test]
fn the_bind_address_takes_the_kubernetes_forms() {
    use everynode::runtime::cli::parse_bind_address;
    let any = parse_bind_address(":8080").map(|a| a.to_string());
    assert_eq!(any.as_deref(), Ok("0.0.0.0:8080"));
    let local = parse_bind_address("localhost:8080").map(|a| (a.ip().is_loopback(), a.port()));
    assert_eq!(local, Ok((true, 8080)));
    assert!(parse_bind_address("127.0.0.1:8080").is_ok());
    assert!(parse_bind_address("8080").is_err());
    assert!(parse_bind_address(":http").is_err());
}
