//! `controlplane`: starts and stops the local control plane from the shell (`make cluster`,
//! `make cluster-down`, `make demo`).
//!
//! ```text
//! controlplane up   --dir DIR [--nodes N]   start, write DIR/ready, run until SIGTERM/SIGINT, then stop all
//! controlplane wait --dir DIR [--timeout S] wait for DIR/ready (or report the supervisor's failure)
//! controlplane down --dir DIR               SIGTERM the supervisor recorded in DIR/supervisor.pid and wait
//! ```

use controlplane::{ControlPlane, Options, process};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn usage() -> ExitCode {
    eprintln!("usage: controlplane up|wait|down --dir DIR [--nodes N] [--timeout SECONDS]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        return usage();
    };
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(dir) = flag("--dir").map(PathBuf::from) else {
        return usage();
    };
    match cmd.as_str() {
        "up" => {
            let nodes = match flag("--nodes").map(|n| n.parse::<usize>()) {
                None => 3,
                Some(Ok(n)) => n,
                Some(Err(_)) => return usage(),
            };
            up(&dir, nodes)
        }
        "wait" => {
            let timeout = flag("--timeout")
                .and_then(|t| t.parse().ok())
                .unwrap_or(3600);
            wait(&dir, Duration::from_secs(timeout))
        }
        "down" => down(&dir),
        _ => usage(),
    }
}

fn up(dir: &Path, nodes: usize) -> ExitCode {
    let _ = std::fs::remove_file(dir.join("ready"));
    let _ = std::fs::remove_file(dir.join("failed"));
    let _ = std::fs::remove_dir_all(dir.join("etcd"));
    if let Err(e) = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(dir.join("supervisor.pid"), std::process::id().to_string()))
    {
        eprintln!("controlplane: cannot write {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("controlplane: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        // everynode's own CRDs (DaemonSetRollout), as the chart installs them.
        let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
        let opts = Options {
            dir: Some(dir.to_path_buf()),
            nodes,
            crds: if crds.is_dir() {
                vec![crds]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let started = Instant::now();
        let cp = match ControlPlane::start(opts).await {
            Ok(cp) => cp,
            Err(e) => {
                eprintln!("controlplane: {e}");
                let _ = std::fs::write(dir.join("failed"), e.to_string());
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "controlplane: ready in {:.1}s with {nodes} fake nodes; API server {}; {}",
            started.elapsed().as_secs_f64(),
            cp.server(),
            cp.describe_logs()
        );
        let _ = std::fs::write(dir.join("ready"), cp.kubeconfig().display().to_string());
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("controlplane: cannot listen for SIGTERM: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("controlplane: stopping");
        cp.stop();
        let _ = std::fs::remove_file(dir.join("ready"));
        ExitCode::SUCCESS
    })
}

fn wait(dir: &Path, timeout: Duration) -> ExitCode {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(kubeconfig) = std::fs::read_to_string(dir.join("ready")) {
            println!("export KUBECONFIG={kubeconfig}");
            return ExitCode::SUCCESS;
        }
        if let Ok(why) = std::fs::read_to_string(dir.join("failed")) {
            eprintln!("controlplane: failed to start: {why}");
            return ExitCode::FAILURE;
        }
        let pid = std::fs::read_to_string(dir.join("supervisor.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        if let Some(pid) = pid
            && !process::alive(pid)
            && start.elapsed() > Duration::from_secs(5)
        {
            eprintln!(
                "controlplane: the supervisor (pid {pid}) is gone; see {}",
                dir.join("supervisor.log").display()
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("controlplane: not ready after {}s", timeout.as_secs());
    ExitCode::FAILURE
}

fn down(dir: &Path) -> ExitCode {
    let Some(pid) = std::fs::read_to_string(dir.join("supervisor.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        eprintln!(
            "controlplane: no control plane recorded in {}",
            dir.display()
        );
        return ExitCode::SUCCESS;
    };
    if !process::alive(pid) {
        eprintln!("controlplane: not running (pid {pid} is gone)");
        let _ = std::fs::remove_file(dir.join("supervisor.pid"));
        return ExitCode::SUCCESS;
    }
    process::signal(pid, libc::SIGTERM);
    let start = Instant::now();
    while process::alive(pid) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if process::alive(pid) {
        eprintln!(
            "controlplane: supervisor {pid} did not stop within 60s; killing it (its children die with it)"
        );
        process::signal(pid, libc::SIGKILL);
    }
    let _ = std::fs::remove_file(dir.join("supervisor.pid"));
    eprintln!("controlplane: stopped");
    ExitCode::SUCCESS
}
