//! Everything one benchmark run measured, written as `results.json` beside the report.

use crate::controller::Budget;
use crate::error::Error;
use crate::floor::FloorResult;
use crate::limit::LimitResult;
use crate::scenario::TurnResult;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The run's figures and the facts needed to read them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub machine: Machine,
    /// Whether everynode had `--kube-api-qps/--kube-api-burst`; if not it ran without a client-side
    /// limit in every turn.
    pub everynode_has_api_budget_flags: bool,
    pub steady_seconds: u64,
    pub churn_per_second: u32,
    /// DaemonSets per turn.
    #[serde(default)]
    pub daemonsets: usize,
    /// The budgets run: the controllers' and kube-scheduler's client-side limits.
    #[serde(default)]
    pub budget_limits: Vec<Budget>,
    pub turns: Vec<TurnResult>,
    pub limits: Vec<LimitResult>,
    /// What kube-scheduler and kwok need on their own, per N and budget.
    #[serde(default)]
    pub floors: Vec<FloorResult>,
    /// Node counts that were asked for but not run, with why.
    pub skipped: Vec<String>,
}

/// What the numbers were measured on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub memory_gib: f64,
    pub kubernetes: String,
}

impl Machine {
    pub fn here() -> Self {
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kubernetes: String::new(),
        }
    }
}

impl Results {
    /// The turn of `controller` at `budget` on `nodes` nodes.
    pub fn turn(&self, controller: &str, budget: &str, nodes: usize) -> Option<&TurnResult> {
        self.turns
            .iter()
            .find(|t| t.controller == controller && t.budget == budget && t.nodes == nodes)
    }

    pub fn limit(&self, budget: &str, nodes: usize) -> Option<&LimitResult> {
        self.limits
            .iter()
            .find(|l| l.budget == budget && l.nodes == nodes)
    }

    pub fn floor(&self, budget: &str, nodes: usize) -> Option<&FloorResult> {
        self.floors
            .iter()
            .find(|f| f.budget == budget && f.nodes == nodes)
    }

    /// Node counts measured, ascending.
    pub fn node_counts(&self) -> Vec<usize> {
        let mut n: Vec<usize> = self.turns.iter().map(|t| t.nodes).collect();
        n.sort_unstable();
        n.dedup();
        n
    }

    /// Budget names in the order first measured.
    pub fn budgets(&self) -> Vec<String> {
        let mut b: Vec<String> = Vec::new();
        for t in &self.turns {
            if !b.contains(&t.budget) {
                b.push(t.budget.clone());
            }
        }
        b
    }

    pub fn write_json(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }
}
