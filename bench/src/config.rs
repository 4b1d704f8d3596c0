//! What a benchmark run covers: node counts, API budgets, steady-state length, where the everynode
//! binary is and where results go; parsed from the command line of `everynode-bench`.

use crate::controller::{Budget, Kind};
use crate::error::Error;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
everynode-bench: everynode against kube-controller-manager's DaemonSet controller on the local
control plane with kwok fake nodes (see bench/README.md).

usage: everynode-bench [--nodes 100,500,1000] [--budgets default,unlimited,lifted] [--daemonsets 1]
                       [--steady-seconds 60] [--churn-per-second 10]
                       [--everynode target/release/everynode]
                       [--out bench/results] [--work-dir target/bench] [--no-memory-check]
                       [--controllers everynode,upstream] [--no-baselines]
       everynode-bench --report-only [--out bench/results]

  --nodes             node counts N, run in this order (the pool grows between them)
  --budgets           API budgets: default (controllers at 20 QPS, burst 30), unlimited (controllers
                      without a client-side limit, kube-scheduler at its defaults: 50 QPS, burst 100)
                      and/or lifted (no client-side limit for the controllers nor kube-scheduler)
  --daemonsets        DaemonSets per turn on the pool; every figure counts all of their pods
  --steady-seconds    length of the steady state with node label churn
  --churn-per-second  node label patches per second during the steady state
  --everynode         the everynode binary to measure (build it with cargo build --release)
  --out               where report.md, results.json and the PNG charts go
  --work-dir          the control plane's folder (logs, audit log, etcd data)
  --no-memory-check   run every N even where the rough memory estimate (4 GiB + 4 MiB a node) says
                      the machine is too small
  --controllers       which controllers get a turn (both by default); one alone measures no ratio and
                      is meant for profiling that controller
  --no-baselines      skip the plain loop and the floor (no figure above the floor; for profiling)
  --report-only       measure nothing: rewrite report.md and the charts from results.json";

/// A benchmark run.
#[derive(Debug, Clone)]
pub struct Config {
    pub nodes: Vec<usize>,
    pub budgets: Vec<Budget>,
    /// DaemonSets a turn creates on the pool (all with the same template).
    pub daemonsets: usize,
    pub steady: Duration,
    pub churn_per_second: u32,
    pub everynode: PathBuf,
    pub out: PathBuf,
    pub work_dir: PathBuf,
    /// Rewrite the report and charts from `out/results.json` instead of measuring.
    pub report_only: bool,
    /// Run node counts the memory estimate would skip.
    pub no_memory_check: bool,
    /// The controllers that get a turn, in the order of the first budget's turns.
    pub controllers: Vec<Kind>,
    /// Measure the plain loop and the floor before the turns.
    pub baselines: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            nodes: vec![100, 500, 1000],
            budgets: vec![
                Budget::upstream_default(),
                Budget::unlimited(),
                Budget::lifted(),
            ],
            daemonsets: 1,
            steady: Duration::from_secs(60),
            churn_per_second: 10,
            everynode: PathBuf::from("target/release/everynode"),
            out: PathBuf::from("bench/results"),
            work_dir: PathBuf::from("target/bench"),
            report_only: false,
            no_memory_check: false,
            controllers: vec![Kind::Everynode, Kind::Upstream],
            baselines: true,
        }
    }
}

impl Config {
    /// Parses `--flag value` pairs over the defaults.
    pub fn from_args(args: &[String]) -> Result<Self, Error> {
        let mut c = Self::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--nodes" => {
                    c.nodes = value()?
                        .split(',')
                        .map(|n| match n.trim().parse::<usize>() {
                            Ok(n) if n > 0 => Ok(n),
                            _ => Err(Error::Usage(format!(
                                "--nodes: {n:?} is not a positive number"
                            ))),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--budgets" => {
                    c.budgets = value()?
                        .split(',')
                        .map(|b| {
                            Budget::named(b.trim()).ok_or_else(|| {
                                Error::Usage(format!(
                                    "--budgets: {b:?} is none of default, unlimited, lifted"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--daemonsets" => {
                    let v = value()?;
                    c.daemonsets = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::Usage(format!("--daemonsets: {v:?} is not a positive number"))
                    })?;
                }
                "--steady-seconds" => {
                    let v = value()?;
                    c.steady = Duration::from_secs(v.parse().map_err(|_| {
                        Error::Usage(format!("--steady-seconds: {v:?} is not a number"))
                    })?);
                }
                "--churn-per-second" => {
                    let v = value()?;
                    c.churn_per_second = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::Usage(format!(
                            "--churn-per-second: {v:?} is not a positive number"
                        ))
                    })?;
                }
                "--everynode" => c.everynode = PathBuf::from(value()?),
                "--out" => c.out = PathBuf::from(value()?),
                "--work-dir" => c.work_dir = PathBuf::from(value()?),
                "--report-only" => c.report_only = true,
                "--no-memory-check" => c.no_memory_check = true,
                "--no-baselines" => c.baselines = false,
                "--controllers" => {
                    let mut kinds = Vec::new();
                    for k in value()?.split(',') {
                        let kind = match k.trim() {
                            "everynode" => Kind::Everynode,
                            "upstream" => Kind::Upstream,
                            other => {
                                return Err(Error::Usage(format!(
                                    "--controllers: {other:?} is neither everynode nor upstream"
                                )));
                            }
                        };
                        if !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                    }
                    c.controllers = kinds;
                }
                other => return Err(Error::Usage(format!("unknown flag {other}"))),
            }
        }
        if c.nodes.is_empty() || c.budgets.is_empty() || c.controllers.is_empty() {
            return Err(Error::Usage(
                "--nodes, --budgets and --controllers need at least one value".into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_args(&[]).unwrap_or_default();
        assert_eq!(c.nodes, vec![100, 500, 1000]);
        assert_eq!(c.budgets.len(), 3);
        assert_eq!(c.daemonsets, 1);
        let c = Config::from_args(&args(
            "--nodes 20 --budgets unlimited,lifted --steady-seconds 5 --daemonsets 5",
        ));
        let c = c.unwrap_or_default();
        assert_eq!(c.nodes, vec![20]);
        assert_eq!(c.budgets, vec![Budget::unlimited(), Budget::lifted()]);
        assert!(c.budgets[1].scheduler_lifted && !c.budgets[0].scheduler_lifted);
        assert_eq!(c.daemonsets, 5);
        assert_eq!(c.steady, Duration::from_secs(5));
        assert_eq!(c.controllers, vec![Kind::Everynode, Kind::Upstream]);
        assert!(c.baselines);
    }

    #[test]
    fn a_profiling_run_takes_one_controller_and_no_baselines() {
        let c =
            Config::from_args(&args("--controllers everynode --no-baselines")).unwrap_or_default();
        assert_eq!(c.controllers, vec![Kind::Everynode]);
        assert!(!c.baselines);
        let c = Config::from_args(&args("--controllers upstream,everynode")).unwrap_or_default();
        assert_eq!(c.controllers, vec![Kind::Upstream, Kind::Everynode]);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Config::from_args(&args("--nodes 0")).is_err());
        assert!(Config::from_args(&args("--budgets fast")).is_err());
        assert!(Config::from_args(&args("--what 1")).is_err());
        assert!(Config::from_args(&args("--daemonsets 0")).is_err());
        assert!(Config::from_args(&args("--nodes")).is_err());
        assert!(Config::from_args(&args("--controllers kcm")).is_err());
    }
}
