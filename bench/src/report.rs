//! The Markdown report: per node count and API budget, one table with each figure for everynode and
//! for the upstream controller and their ratio (everynode / upstream; below 1 means everynode took
//! less), the physical limit beside it, and the charts.

use crate::results::Results;
use crate::scenario::TurnResult;
use std::collections::BTreeSet;
use std::fmt::Write;

const PHASES: [&str; 5] = ["start", "create", "update", "join", "steady"];

/// How to read one figure from a turn.
type Getter<'a> = Box<dyn Fn(&TurnResult) -> Option<f64> + 'a>;

/// One row: a label and how to read the figure from a turn.
struct Row<'a> {
    label: String,
    get: Getter<'a>,
    digits: usize,
}

fn row<'a>(
    label: impl Into<String>,
    digits: usize,
    get: impl Fn(&TurnResult) -> Option<f64> + 'a,
) -> Row<'a> {
    Row {
        label: label.into(),
        get: Box::new(get),
        digits,
    }
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The report as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# everynode vs. kube-controller-manager's DaemonSet controller\n"
    );
    let _ = writeln!(
        out,
        "Measured by `make bench` (see [../README.md](../README.md) for how to read and reproduce this) on {} CPUs and {:.0} GiB, \
         on the local control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok fake nodes). \
         Both controllers ran on the same control plane in the same run against the same nodes, one at a time, each \
         in a fresh namespace and as a fresh process per turn. `upstream` is kube-controller-manager run with \
         `--controllers=daemonset-controller`; the garbage collector runs in the control plane's own \
         kube-controller-manager for both turns. Times are seconds; ratios are everynode / upstream (below 1: \
         everynode took less). The steady state lasted {} s with {} node label patches per second on a label no \
         DaemonSet selects on.\n",
        r.machine.cpus, r.machine.memory_gib, r.steady_seconds, r.churn_per_second
    );
    if !r.everynode_has_api_budget_flags {
        let _ = writeln!(
            out,
            "**Note:** this everynode build has no `--kube-api-qps/--kube-api-burst` flags, so it ran without a \
             client-side limit in every turn, while upstream ran at the budget named in each table.\n"
        );
    }
    for s in &r.skipped {
        let _ = writeln!(out, "- Not run: {s}");
    }
    if !r.skipped.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "![time against N](time.png)\n\n![memory against N](memory.png)\n"
    );
    for n in r.node_counts().into_iter().rev() {
        for budget in r.budgets() {
            table(&mut out, r, n, &budget);
        }
    }
    out
}

fn table(out: &mut String, r: &Results, n: usize, budget: &str) {
    let e = r.turn("everynode", budget, n);
    let u = r.turn("upstream", budget, n);
    if e.is_none() && u.is_none() {
        return;
    }
    let budget_desc = match budget {
        "default" => "20 QPS, burst 30 (kube-controller-manager's defaults)",
        "unlimited" => "no client-side limit (QPS and burst 100000)",
        other => other,
    };
    let _ = writeln!(out, "## N = {n}, API budget: {budget_desc}\n");
    let joined = e.or(u).map(|t| t.joined).unwrap_or(0);
    let mut rows = vec![
        row(format!("create: all {n} pods exist (s)"), 2, |t| {
            t.create_all_exist_s
        }),
        row(format!("create: all {n} pods Ready (s)"), 2, |t| {
            t.create_all_ready_s
        }),
        row(
            "rolling update, maxUnavailable 10%: all updated and available (s)",
            2,
            |t| t.rollout_s,
        ),
        row(
            format!("{joined} nodes join: node created → its pod created, median (s)"),
            3,
            |t| t.join_median_s,
        ),
        row(
            format!("{joined} nodes join: node created → its pod created, p99 (s)"),
            3,
            |t| t.join_p99_s,
        ),
    ];
    for p in PHASES {
        rows.push(row(format!("CPU seconds, {p}"), 2, move |t| {
            t.phase(p).map(|s| s.cpu_seconds)
        }));
    }
    rows.push(row("CPU seconds, whole turn", 2, |t| {
        Some(t.phases.iter().map(|s| s.cpu_seconds).sum())
    }));
    for p in PHASES {
        rows.push(row(format!("peak RSS (MiB), {p}"), 1, move |t| {
            t.phase(p).map(|s| s.peak_rss_bytes as f64 / MIB)
        }));
    }
    rows.push(row("peak RSS (MiB), whole turn (VmHWM)", 1, |t| {
        t.high_water_mark_bytes.map(|b| b as f64 / MIB)
    }));
    for p in PHASES {
        rows.push(row(format!("API requests, {p}"), 0, move |t| {
            t.phase(p).map(|s| s.requests.values().sum::<u64>() as f64)
        }));
    }
    let verbs: BTreeSet<String> = e
        .into_iter()
        .chain(u)
        .flat_map(|t| t.phases.iter().flat_map(|p| p.requests.keys().cloned()))
        .collect();
    for v in verbs {
        rows.push(row(
            format!("API requests by verb, whole turn: {v}"),
            0,
            move |t| {
                Some(
                    t.phases
                        .iter()
                        .map(|p| p.requests.get(&v).copied().unwrap_or(0))
                        .sum::<u64>() as f64,
                )
            },
        ));
    }
    let kinds: BTreeSet<String> = e
        .into_iter()
        .chain(u)
        .flat_map(|t| {
            t.phases
                .iter()
                .flat_map(|p| p.requests_by_resource.keys().cloned())
        })
        .collect();
    for k in kinds {
        rows.push(row(format!("API requests, whole turn: {k}"), 0, move |t| {
            Some(
                t.phases
                    .iter()
                    .map(|p| p.requests_by_resource.get(&k).copied().unwrap_or(0))
                    .sum::<u64>() as f64,
            )
        }));
    }
    let _ = writeln!(
        out,
        "| figure | everynode | upstream | everynode / upstream |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for r in &rows {
        let a = e.and_then(|t| (r.get)(t));
        let b = u.and_then(|t| (r.get)(t));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.label,
            fmt(a, r.digits),
            fmt(b, r.digits),
            ratio(a, b)
        );
    }
    out.push('\n');
    if let Some(l) = r.limit(budget, n) {
        let _ = writeln!(
            out,
            "Physical limit at this budget: a plain loop creating {n} pods (bound to the nodes, at most {} \
             requests in flight) got all of them accepted in **{:.2} s** and Ready (kwok) in {} s ({} retried \
             after 429/5xx).\n",
            crate::limit::CONCURRENCY,
            l.all_created_s,
            fmt(l.all_ready_s, 2),
            l.retries
        );
    }
    for t in e.into_iter().chain(u) {
        for err in &t.errors {
            let _ = writeln!(out, "- {} did not finish this turn: {err}", t.controller);
        }
    }
    if e.is_some_and(|t| !t.errors.is_empty()) || u.is_some_and(|t| !t.errors.is_empty()) {
        out.push('\n');
    }
}
