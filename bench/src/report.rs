//! The Markdown report: per node count and API budget, one table with each figure for everynode and
//! for the upstream controller and their ratio (everynode / upstream; below 1 means everynode took
//! less), the physical limit and the floor (what the scheduler and kwok need on their own) beside it,
//! each controller's time above that floor, the targets where the controllers ran without a
//! client-side limit, and the charts.

use crate::floor::FloorResult;
use crate::limit::LimitResult;
use crate::results::Results;
use crate::rollout_profile::RolloutProfile;
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
    /// Whether everynode / upstream means anything for this figure.
    ratio: bool,
}

impl Row<'_> {
    fn without_ratio(self) -> Self {
        Self {
            ratio: false,
            ..self
        }
    }
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
        ratio: true,
    }
}

/// A row of the rolling update's profile (`rollout_profile`): `–` for turns without one.
fn profile_row<'a>(
    label: &str,
    digits: usize,
    pick: impl Fn(&RolloutProfile) -> Option<f64> + 'a,
) -> Row<'a> {
    row(label, digits, move |t| {
        t.rollout_profile.as_ref().and_then(&pick)
    })
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
        "Measured by `make bench` (see `bench/README.md` in the repository for how to read and reproduce this) on {} CPUs and {:.0} GiB, \
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
    if r.daemonsets > 1 {
        let _ = writeln!(
            out,
            "Each turn created **{} DaemonSets** on the pool: every figure counts all of their pods \
             (N per DaemonSet), and the plain loop and the floor create as many pods.\n",
            r.daemonsets
        );
    }
    let _ = writeln!(
        out,
        "The pure-core benchmark (one sync and one node event at 5 000, 20 000 and 65 000 nodes, no \
         cluster) is in `bench/results/core.md`.\n"
    );
    for n in r.node_counts().into_iter().rev() {
        for budget in r.budgets() {
            table(&mut out, r, n, &budget);
        }
    }
    out
}

/// `a` above `floor`: the controller's own share of a time.
fn above(a: Option<f64>, floor: Option<f64>) -> Option<f64> {
    Some(a? - floor?)
}

/// Requests the API server refused (counted under a key ending in the status code).
fn refused(t: &TurnResult) -> u64 {
    t.phases
        .iter()
        .flat_map(|p| p.requests_by_resource.iter())
        .filter(|(k, _)| {
            k.rsplit(' ')
                .next()
                .is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, v)| *v)
        .sum()
}

/// The join target's ratio: from the node being schedulable when both turns observed it (the
/// controller's part: the node lifecycle controller lifts the not-ready taint at a pace of its own,
/// which differed by tens of seconds between turns), else from the node's creation.
fn join_p99_ratio(e: &TurnResult, u: &TurnResult) -> Option<f64> {
    match (e.join_schedulable_p99_s, u.join_schedulable_p99_s) {
        (Some(es), Some(us)) => quotient(Some(es), Some(us)),
        _ => quotient(e.join_p99_s, u.join_p99_s),
    }
}

/// The join target's name, saying which start [`join_p99_ratio`] took.
fn join_target_label(e: &TurnResult, u: &TurnResult) -> &'static str {
    if e.join_schedulable_p99_s.is_some() && u.join_schedulable_p99_s.is_some() {
        "node join (schedulable) → pod created p99, everynode / upstream"
    } else {
        "node join → pod created p99, everynode / upstream"
    }
}

/// Writes of DaemonSet status (update or patch of `daemonsets/status`, refused ones included).
fn status_writes(t: &TurnResult) -> u64 {
    t.phases
        .iter()
        .flat_map(|p| p.requests_by_resource.iter())
        .filter(|(k, _)| {
            k.starts_with("update daemonsets/status") || k.starts_with("patch daemonsets/status")
        })
        .map(|(_, v)| *v)
        .sum()
}

fn cpu_total(t: &TurnResult) -> f64 {
    t.phases.iter().map(|s| s.cpu_seconds).sum()
}

/// One of the targets, measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub figure: &'static str,
    pub target: &'static str,
    pub measured: String,
    /// `None` when a figure is missing.
    pub met: Option<bool>,
}

fn target(
    figure: &'static str,
    target: &'static str,
    value: Option<f64>,
    bound: f64,
    shown: impl Fn(f64) -> String,
) -> Target {
    let value = value.filter(|v| v.is_finite());
    Target {
        figure,
        target,
        measured: value.map(&shown).unwrap_or_else(|| "–".into()),
        met: value.map(|v| v <= bound),
    }
}

fn quotient(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The targets (everynode / upstream in one run, no client-side limit) for one table.
pub fn targets(
    e: &TurnResult,
    u: &TurnResult,
    limit: Option<&LimitResult>,
    floor: Option<&FloorResult>,
) -> Vec<Target> {
    let x = |v: f64| format!("{v:.2}×");
    let floor_rollout = floor.and_then(|f| f.rollout_s);
    vec![
        target(
            "all pods created, everynode / plain loop",
            "≤ 1.2×",
            quotient(e.create_all_exist_s, limit.map(|l| l.all_created_s)),
            1.2,
            x,
        ),
        target(
            "rolling update above the floor, everynode / upstream",
            "≤ 0.8×",
            quotient(
                above(e.rollout_s, floor_rollout),
                above(u.rollout_s, floor_rollout),
            ),
            0.8,
            x,
        ),
        target(
            join_target_label(e, u),
            "≤ 1×",
            join_p99_ratio(e, u),
            1.0,
            x,
        ),
        target(
            "CPU seconds per turn, everynode / upstream",
            "≤ 0.33×",
            quotient(Some(cpu_total(e)), Some(cpu_total(u))),
            1.0 / 3.0,
            x,
        ),
        target(
            "peak RSS (VmHWM), everynode / upstream",
            "≤ 0.25×",
            quotient(
                e.high_water_mark_bytes.map(|b| b as f64),
                u.high_water_mark_bytes.map(|b| b as f64),
            ),
            0.25,
            x,
        ),
        target(
            "requests refused by the API server, everynode",
            "0",
            Some(refused(e) as f64),
            0.0,
            |v| format!("{v:.0}"),
        ),
        Target {
            figure: "DaemonSet status writes, everynode vs. upstream",
            target: "≤ upstream's",
            measured: format!("{} vs. {}", status_writes(e), status_writes(u)),
            met: Some(status_writes(e) <= status_writes(u)),
        },
    ]
}

/// What the creates target is measured against: the plain loop binds its pods itself, so
/// kube-scheduler does nothing while it runs, but every pod a DaemonSet controller creates is bound by
/// the scheduler on the same CPUs. The floor's unbound loop creates the same pods with that work, so
/// its time over the plain loop's is what the scheduler's share costs on this machine, below which no
/// controller can go, and each controller's time over the floor's is its own pace.
pub fn creates_against_the_floor(
    e: &TurnResult,
    u: &TurnResult,
    limit: Option<&LimitResult>,
    floor: Option<&FloorResult>,
) -> Option<String> {
    let loop_s = limit.map(|l| l.all_created_s).filter(|s| *s > 0.0)?;
    let floor_s = floor.and_then(|f| f.all_exist_s).filter(|s| *s > 0.0)?;
    let x = |v: Option<f64>| fmt(v, 2);
    Some(format!(
        "What the creates target is measured against: the plain loop binds its pods itself, so \
         kube-scheduler is idle while it runs; the floor's unbound loop creates the same pods as daemon \
         pods are created, each bound by the scheduler on the same CPUs, and all of them existed after \
         **{}× the plain loop's time**: no controller can create them faster than that here. All pods \
         created, against the floor's unbound loop: everynode {}×, upstream {}×.",
        x(Some(floor_s / loop_s)),
        x(quotient(e.create_all_exist_s, Some(floor_s))),
        x(quotient(u.create_all_exist_s, Some(floor_s))),
    ))
}

fn targets_table(out: &mut String, rows: &[Target]) {
    let _ = writeln!(out, "| figure | target | measured | met |");
    let _ = writeln!(out, "|---|---|---:|---|");
    for t in rows {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            t.figure, t.target, t.measured
        );
    }
    out.push('\n');
}

fn table(out: &mut String, r: &Results, n: usize, budget: &str) {
    let e = r.turn("everynode", budget, n);
    let u = r.turn("upstream", budget, n);
    if e.is_none() && u.is_none() {
        return;
    }
    let limits = r
        .budget_limits
        .iter()
        .find(|b| b.name == budget)
        .cloned()
        .or_else(|| crate::controller::Budget::named(budget));
    let _ = writeln!(out, "## N = {n}, API budget: {budget}\n");
    if let Some(b) = &limits {
        let _ = writeln!(out, "Client-side limits in this table: {}.\n", b.describe());
    }
    let joined = e.or(u).map(|t| t.joined).unwrap_or(0);
    let daemonsets = e.or(u).map(|t| t.daemonsets).unwrap_or(1).max(1);
    let pods = n * daemonsets;
    let floor = r.floor(budget, n);
    let floor_exist = floor.and_then(|f| f.all_exist_s);
    let floor_ready = floor.and_then(|f| f.all_ready_s);
    let floor_rollout = floor.and_then(|f| f.rollout_s);
    let mut rows = vec![
        row(format!("create: all {pods} pods exist (s)"), 2, |t| {
            t.create_all_exist_s
        }),
        row(format!("create: all {pods} pods Ready (s)"), 2, |t| {
            t.create_all_ready_s
        }),
        row(
            "rolling update, maxUnavailable 10%: all updated and available (s)",
            2,
            |t| t.rollout_s,
        ),
        row("create: all pods exist, above the floor (s)", 2, move |t| {
            above(t.create_all_exist_s, floor_exist)
        }),
        row("create: all pods Ready, above the floor (s)", 2, move |t| {
            above(t.create_all_ready_s, floor_ready)
        }),
        row("rolling update above the floor (s)", 2, move |t| {
            above(t.rollout_s, floor_rollout)
        }),
        row(
            format!("rolling update: slots profiled (of {pods}; the rest were seen late)"),
            0,
            |t| t.rollout_profile.as_ref().map(|p| p.replaced as f64),
        )
        .without_ratio(),
        // More slots open is faster, so no ratio: each is read against the budget.
        row(
            format!(
                "rolling update: slots without an available pod, mean (maxUnavailable allows {})",
                crate::floor::window(n, daemonsets)
            ),
            1,
            |t| t.rollout_profile.as_ref().map(|p| p.mean_unavailable),
        )
        .without_ratio(),
        profile_row(
            "rolling update: a slot's time without an available pod, mean (s)",
            2,
            |p| p.unavailable_s.mean,
        ),
        profile_row(
            "rolling update: old pod gone → new pod created, median (s)",
            3,
            |p| p.create_gap_s.median,
        ),
        profile_row(
            "rolling update: old pod gone → new pod created, p99 (s)",
            3,
            |p| p.create_gap_s.p99,
        ),
        profile_row(
            "rolling update: new pod created → bound (kube-scheduler), median (s)",
            3,
            |p| p.schedule_s.median,
        ),
        profile_row(
            "rolling update: new pod created → bound (kube-scheduler), p99 (s)",
            3,
            |p| p.schedule_s.p99,
        ),
        profile_row(
            "rolling update: bound → Ready (kwok), median (s)",
            3,
            |p| p.start_s.median,
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
        row(
            format!(
                "{joined} nodes join: node schedulable (Ready, not-ready taint lifted) → its pod created, median (s)"
            ),
            3,
            |t| t.join_schedulable_median_s,
        ),
        row(
            format!(
                "{joined} nodes join: node schedulable (Ready, not-ready taint lifted) → its pod created, p99 (s)"
            ),
            3,
            |t| t.join_schedulable_p99_s,
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
    rows.push(
        row(
            "nodes that lost Ready during the turn (a control-plane fault)",
            0,
            |t| t.nodes_lost_health.map(|n| n as f64),
        )
        .without_ratio(),
    );
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
            if r.ratio { ratio(a, b) } else { "–".into() }
        );
    }
    out.push('\n');
    for t in e.into_iter().chain(u) {
        if let Some(lost) = t.nodes_lost_health.filter(|&l| l > 0) {
            let _ = writeln!(
                out,
                "**{} lost Ready during {}'s turn.** Most likely the fake kubelets' leases lapsed under \
                 the load, and the node lifecycle controller marked those nodes and their pods not Ready: \
                 that turn's rollout, join and status-write figures, and the targets below, measure this \
                 fault as well as the controller.\n",
                crate::nodehealth::nodes(lost),
                t.controller
            );
        }
    }
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
    if let Some(f) = floor {
        let _ = writeln!(
            out,
            "Floor at this budget (what kube-scheduler and kwok need on their own): a plain loop creating the \
             same pods unbound (node affinity to their node, as daemon pods) saw all of them exist after {} s, \
             bound by the scheduler after {} s and Ready after {} s; replacing every pod, {} at a time (the \
             rolling update's maxUnavailable), took {} s ({} retried after 429/5xx).\n",
            fmt(f.all_exist_s, 2),
            fmt(f.all_bound_s, 2),
            fmt(f.all_ready_s, 2),
            crate::floor::window(f.nodes, f.daemonsets.max(1)),
            fmt(f.rollout_s, 2),
            f.retries
        );
        for err in &f.errors {
            let _ = writeln!(out, "- the floor did not finish: {err}\n");
        }
    }
    if let (Some(e), Some(u)) = (e, u)
        && limits.as_ref().is_some_and(|b| !b.limited)
    {
        let _ = writeln!(
            out,
            "Targets of issue 14 (everynode / upstream in this run, no client-side limit for the controllers):\n"
        );
        targets_table(out, &targets(e, u, r.limit(budget, n), floor));
        if let Some(text) = creates_against_the_floor(e, u, r.limit(budget, n), floor) {
            let _ = writeln!(out, "{text}\n");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::PhaseStats;

    fn turn(
        create: f64,
        rollout: f64,
        p99: f64,
        cpu: f64,
        rss: u64,
        extra: &[(&str, u64)],
    ) -> TurnResult {
        let mut by = crate::audit::VerbCounts::new();
        for (k, v) in extra {
            by.insert(k.to_string(), *v);
        }
        TurnResult {
            create_all_exist_s: Some(create),
            rollout_s: Some(rollout),
            join_p99_s: Some(p99),
            high_water_mark_bytes: Some(rss),
            phases: vec![PhaseStats {
                phase: "create".into(),
                cpu_seconds: cpu,
                requests_by_resource: by,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn met(rows: &[Target]) -> Vec<Option<bool>> {
        rows.iter().map(|t| t.met).collect()
    }

    #[test]
    fn targets_compare_above_the_floor_and_against_the_plain_loop() {
        let limit = LimitResult {
            all_created_s: 10.0,
            ..Default::default()
        };
        let floor = FloorResult {
            rollout_s: Some(10.0),
            ..Default::default()
        };
        // everynode: 11 s vs. loop 10 s (1.1×); rollout 14 s, upstream 15 s: above the floor 4 vs. 5
        // (0.8×, met although 14/15 is not); p99 equal; CPU 1 vs 3; RSS 25 vs 100; one status write each.
        let e = turn(11.0, 14.0, 1.0, 1.0, 25, &[("update daemonsets/status", 1)]);
        let u = turn(5.0, 15.0, 1.0, 3.0, 100, &[("update daemonsets/status", 1)]);
        let rows = targets(&e, &u, Some(&limit), Some(&floor));
        assert_eq!(met(&rows), vec![Some(true); 7], "{rows:?}");
        assert_eq!(rows[1].measured, "0.80×");

        // A refused request, a second status write and a slower rollout each miss theirs.
        let e = turn(
            13.0,
            15.0,
            1.5,
            1.1,
            26,
            &[
                ("update daemonsets/status", 1),
                ("patch daemonsets/status 409", 1),
            ],
        );
        let rows = targets(&e, &u, Some(&limit), Some(&floor));
        assert_eq!(met(&rows), vec![Some(false); 7], "{rows:?}");
        assert_eq!(rows[5].measured, "1");
        assert_eq!(rows[6].measured, "2 vs. 1");

        // Without a floor or a loop, those figures are missing, not met.
        let rows = targets(&e, &u, None, None);
        assert_eq!(rows[0].met, None);
        assert_eq!(rows[1].met, None);
    }

    #[test]
    fn creates_are_compared_with_the_floors_unbound_loop() {
        let limit = LimitResult {
            all_created_s: 4.0,
            ..Default::default()
        };
        let floor = FloorResult {
            all_exist_s: Some(10.0),
            ..Default::default()
        };
        let e = turn(12.0, 1.0, 1.0, 1.0, 1, &[]);
        let u = turn(15.0, 1.0, 1.0, 1.0, 1, &[]);
        let text = creates_against_the_floor(&e, &u, Some(&limit), Some(&floor))
            .unwrap_or_else(|| panic!("no paragraph with a loop and a floor"));
        assert!(text.contains("**2.50× the plain loop's time**"), "{text}");
        assert!(text.contains("everynode 1.20×, upstream 1.50×"), "{text}");
        // Without the loop or the floor's creates there is nothing to compare.
        assert_eq!(creates_against_the_floor(&e, &u, None, Some(&floor)), None);
        let unfinished = FloorResult::default();
        assert_eq!(
            creates_against_the_floor(&e, &u, Some(&limit), Some(&unfinished)),
            None
        );
    }

    #[test]
    fn the_join_target_starts_at_the_schedulable_node_when_both_turns_saw_it() {
        let mut e = turn(1.0, 1.0, 40.0, 1.0, 1, &[]);
        let mut u = turn(1.0, 1.0, 10.0, 1.0, 1, &[]);
        // From creation only (older results): 4×, missed.
        let rows = targets(&e, &u, None, None);
        assert_eq!(
            rows[2].figure,
            "node join → pod created p99, everynode / upstream"
        );
        assert_eq!(
            (rows[2].measured.as_str(), rows[2].met),
            ("4.00×", Some(false))
        );
        // The node lifecycle controller took 38 s longer to lift the taint in everynode's turn.
        e.join_schedulable_p99_s = Some(1.5);
        u.join_schedulable_p99_s = Some(2.0);
        let rows = targets(&e, &u, None, None);
        assert_eq!(
            rows[2].figure,
            "node join (schedulable) → pod created p99, everynode / upstream"
        );
        assert_eq!(
            (rows[2].measured.as_str(), rows[2].met),
            ("0.75×", Some(true))
        );
        // One turn without it: both from creation.
        u.join_schedulable_p99_s = None;
        let rows = targets(&e, &u, None, None);
        assert_eq!(rows[2].measured, "4.00×");
    }

    /// A report is copied into folders of its own (`bench/results/n3000-cpu/`, …) or written
    /// outside the repository with `--out`, so it names repository files by their path and links
    /// none by a relative address that would break there.
    #[test]
    fn the_report_links_no_file_by_a_relative_address() {
        let r = Results {
            turns: vec![turn(1.0, 1.0, 1.0, 1.0, 1, &[])],
            ..Default::default()
        };
        let md = markdown(&r);
        for bad in ["](../", "](core.md)", "](results/"] {
            assert!(!md.contains(bad), "{bad} in {md}");
        }
        assert!(md.contains("`bench/README.md`"), "{md}");
        assert!(md.contains("`bench/results/core.md`"), "{md}");
    }

    #[test]
    fn a_turn_in_which_nodes_lost_ready_says_so() {
        let of = |controller: &str, lost: usize| TurnResult {
            controller: controller.into(),
            budget: "default".into(),
            nodes: 10,
            nodes_lost_health: Some(lost),
            ..turn(1.0, 1.0, 1.0, 1.0, 1, &[])
        };
        let r = Results {
            turns: vec![of("everynode", 3), of("upstream", 0)],
            ..Default::default()
        };
        let md = markdown(&r);
        assert!(
            md.contains("**3 nodes lost Ready during everynode's turn.**"),
            "{md}"
        );
        assert!(!md.contains("during upstream's turn"), "{md}");
        assert!(
            md.contains(
                "| nodes that lost Ready during the turn (a control-plane fault) | 3 | 0 |"
            ),
            "{md}"
        );
    }

    #[test]
    fn the_rollouts_profile_has_rows_with_the_budget_and_ratios() {
        let of = |controller: &str, open: f64, gap: f64| TurnResult {
            controller: controller.into(),
            budget: "default".into(),
            nodes: 1000,
            daemonsets: 2,
            rollout_profile: Some(crate::rollout_profile::RolloutProfile {
                replaced: 2000,
                mean_unavailable: open,
                create_gap_s: crate::rollout_profile::Spread {
                    median: Some(gap),
                    p99: Some(gap * 2.0),
                    mean: None,
                },
                ..Default::default()
            }),
            ..turn(1.0, 1.0, 1.0, 1.0, 1, &[])
        };
        let r = Results {
            turns: vec![of("everynode", 150.0, 0.25), of("upstream", 200.0, 0.5)],
            ..Default::default()
        };
        let md = markdown(&r);
        for line in [
            "| rolling update: slots profiled (of 2000; the rest were seen late) | 2000 | 2000 | – |",
            "| rolling update: slots without an available pod, mean (maxUnavailable allows 200) | 150.0 | 200.0 | – |",
            "| rolling update: old pod gone → new pod created, median (s) | 0.250 | 0.500 | 0.50 |",
            "| rolling update: old pod gone → new pod created, p99 (s) | 0.500 | 1.000 | 0.50 |",
            "| rolling update: bound → Ready (kwok), median (s) | – | – | – |",
        ] {
            assert!(md.contains(line), "{line}\n{md}");
        }
    }

    #[test]
    fn above_needs_both() {
        assert_eq!(above(Some(5.0), Some(2.0)), Some(3.0));
        assert_eq!(above(Some(5.0), None), None);
    }
}
