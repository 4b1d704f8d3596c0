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
