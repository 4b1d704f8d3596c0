//! everynode's benchmark against kube-controller-manager's DaemonSet controller (`make bench`): one
//! local control plane with kwok fake nodes, both controllers taking turns on the same nodes at the
//! same API budgets, figures written to a Markdown report, `results.json` and PNG charts.

pub mod audit;
pub mod charts;
pub mod config;
pub mod controller;
pub mod error;
pub mod floor;
pub mod limit;
pub mod namespace;
pub mod nodehealth;
pub mod podwatch;
pub mod pool;
pub mod procstat;
pub mod progress;
pub mod ratelimit;
pub mod report;
pub mod results;
pub mod rollout_profile;
pub mod scenario;
pub mod stats;

use crate::config::Config;
use crate::controller::{EverynodeFlags, Kind};
use crate::error::Error;
use crate::results::{Machine, Results};
use controlplane::{ControlPlane, Options};
use std::path::{Path, PathBuf};

/// Memory (GiB) a run at N nodes needs on top of the control plane: a rough bound from runs at 1000
/// nodes; larger N are skipped, and said so, on a machine with less.
fn fits(nodes: usize, machine: &Machine) -> bool {
    let needed_gib = 4.0 + nodes as f64 * 0.004;
    machine.memory_gib <= 0.0 || needed_gib <= machine.memory_gib
}

/// Runs the whole benchmark and writes the report; returns the figures.
pub async fn run(config: &Config) -> Result<Results, Error> {
    let everynode = std::fs::canonicalize(&config.everynode)
        .map_err(|_| Error::NoEverynode(config.everynode.clone()))?;
    let flags = EverynodeFlags::of(&everynode);
    if !flags.kube_api_qps {
        progress::say(
            "everynode has no --kube-api-qps/--kube-api-burst: it runs without a client-side limit in every turn",
        );
    }
    std::fs::create_dir_all(&config.out).map_err(|e| Error::io(&config.out, e))?;
    let work = absolute(&config.work_dir)?;
    if work.join("etcd").exists() {
        let _ = std::fs::remove_dir_all(work.join("etcd"));
    }
    progress::say(format!(
        "starting the local control plane in {}",
        work.display()
    ));
    let cp = ControlPlane::start(Options {
        dir: Some(work),
        users: vec![Kind::Everynode.user().into(), Kind::Upstream.user().into()],
        audit: true,
        // The cleanup after each turn empties the namespace with DeleteCollection; the API server's
        // default of one worker deletes 25 000 pods one at a time, for longer than a turn. Only that
        // cleanup and the namespace controller send DeleteCollection: neither is measured.
        apiserver_args: vec!["--delete-collection-workers=8".into()],
        ..Default::default()
    })
    .await?;
    progress::say(format!(
        "control plane up at {} (logs: {})",
        cp.server(),
        cp.dir().join("logs").display()
    ));
    let client = cp.client().await?;
    let mut results = Results {
        machine: Machine::here(),
        everynode_has_api_budget_flags: flags.kube_api_qps,
        steady_seconds: config.steady.as_secs(),
        daemonsets: config.daemonsets,
        budget_limits: config.budgets.clone(),
        churn_per_second: config.churn_per_second,
        ..Default::default()
    };
    results.machine.kubernetes = kubernetes_version(&client).await;
    // The control plane starts with kube-scheduler at its defaults; budgets that lift it restart it.
    let mut scheduler: Option<controlplane::ClientLimit> = None;
    for &n in &config.nodes {
        if !config.no_memory_check && !fits(n, &results.machine) {
            let why = format!(
                "N = {n}: this machine has {:.0} GiB of memory, not enough for the control plane, kwok and {n} nodes",
                results.machine.memory_gib
            );
            progress::say(&why);
            results.skipped.push(why);
            continue;
        }
        pool::ensure_pool(&client, n).await?;
        for (i, budget) in config.budgets.iter().enumerate() {
            if budget.scheduler_limit() != scheduler {
                progress::say(format!(
                    "restarting kube-scheduler for the {} budget: {}",
                    budget.name,
                    budget.describe()
                ));
                cp.set_scheduler_client_limit(budget.scheduler_limit())
                    .await?;
                scheduler = budget.scheduler_limit();
            }
            let d = config.daemonsets;
            if config.baselines {
                results
                    .limits
                    .push(limit::run(&client, n, d, budget).await?);
                results
                    .floors
                    .push(floor::run(&client, n, d, budget).await?);
                write(&results, &config.out)?;
            }
            // Alternate who goes first, so neither always meets a freshly compacted etcd.
            let mut order = config.controllers.clone();
            if i % 2 == 1 {
                order.reverse();
            }
            for kind in order {
                let spec = scenario::TurnSpec {
                    kind,
                    budget: budget.clone(),
                    nodes: n,
                    daemonsets: config.daemonsets,
                    steady: config.steady,
                    churn_per_second: config.churn_per_second,
                };
                let turn = scenario::run(&cp, &client, &spec, &everynode).await?;
                results.turns.push(turn);
                write(&results, &config.out)?;
            }
        }
    }
    write(&results, &config.out)?;
    progress::say(format!(
        "report: {}",
        config.out.join("report.md").display()
    ));
    Ok(results)
}

/// Writes report.md, results.json and the charts (after every turn, so an interrupted run leaves
/// what it measured).
fn write(results: &Results, out: &Path) -> Result<(), Error> {
    results.write_json(&out.join("results.json"))?;
    write_report(results, out)
}

fn write_report(results: &Results, out: &Path) -> Result<(), Error> {
    let md = out.join("report.md");
    std::fs::write(&md, report::markdown(results)).map_err(|e| Error::io(&md, e))?;
    charts::draw(results, out)?;
    Ok(())
}

/// Rewrites report.md and the charts in `out` from its results.json.
pub fn rewrite_report(out: &Path) -> Result<Results, Error> {
    let path = out.join("results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let results: Results =
        serde_json::from_str(&text).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    write_report(&results, out)?;
    progress::say(format!("report: {}", out.join("report.md").display()));
    Ok(results)
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, Error> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    Ok(cwd.join(p))
}

async fn kubernetes_version(client: &kube::Client) -> String {
    client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .unwrap_or_default()
}
