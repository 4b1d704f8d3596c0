//! A fixed corpus of DaemonSet/node/pod situations and the decisions the core makes on them,
//! compared with a committed golden file so that a refactor cannot change a decision unnoticed.
//!
//! The corpus has two parts:
//!
//! * **hand-written scenarios** (ids `cNNN-…`) following the acceptance test catalogue of
//!   `../shared/reference/daemonset-controller.md` §10 (the number is the catalogue item; `x-…`
//!   are extra situations named in §3–§5), each run for both strategies where upstream does so;
//! * **generated scenarios** (ids `rNNNN`): a hand-written SplitMix64 generator with a fixed seed
//!   (one sub-stream per scenario, so editing one scenario's generation does not shift the others)
//!   draws 1–12 nodes with labels and taints, a DaemonSet with nodeSelector / required node
//!   affinity / tolerations / template nodeName / hostNetwork / update strategy / minReadySeconds,
//!   and 0–3 daemon pods per node of the current or an old revision in every phase, plus now and
//!   then pods for nodes that are not in the node list.
//!
//! For every scenario the pods the DaemonSet claims are grouped by node as the sync does
//! (`ownership::claim`, then `group_by_node` without terminal+terminating pods), and [`decide`]
//! records on one line of the golden file, in the order the functions return them (nothing is
//! sorted here):
//!
//! ```text
//! <id> | manage create=[nodes] delete=[pods] events=[reasons] requeue=<delay or ->
//!      | rolling delete=[pods] create=[nodes]        (or: rolling error=<message>)
//!      | placement <node>=<should_run><should_continue_running> …   (T/F, in node-list order)
//!      | status desired=… current=… misscheduled=… ready=… updated=… available=… unavailable=…
//! ```
//!
//! (all on one line). `plan_manage` gets a fresh `FailedPodBackoff` per scenario (a few hand-written
//! scenarios first advance it, as an earlier sync would have) and every function gets the same
//! fixed `now`.
//!
//! The test `the_core_decides_as_the_golden_file_says` compares the lines with
//! `src/core/decision_corpus.golden` scenario by scenario and, on a mismatch, prints the first ten
//! differing scenarios with both lines and the scenario's inputs. It also checks that the corpus is
//! not degenerate (enough scenarios with creates, deletes, rolling-update deletes, surge creates,
//! excluded nodes and NoExecute evictions) and prints those counts.
//!
//! **Blessing.** When a decision is meant to change, regenerate the file with
//!
//! ```text
//! EVERYNODE_BLESS_DECISIONS=1 cargo test --lib core::decision_corpus
//! ```
//!
//! and commit it together with the change; the commit message must say which decisions changed
//! and why that is right (the `git diff` of the golden file shows every scenario affected). A
//! refactor that is meant to keep the decisions (such as returning a reason beside each decision)
//! must pass *without* blessing. When a signature of the core changes, adapt [`decide`] (the only
//! place that calls the core), never the golden file.

use crate::core::backoff::{FailedPodBackoff, failed_pods_backoff_key};
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::fixtures::*;
use crate::core::labels::POD_TEMPLATE_GENERATION;
use crate::core::manage::{ManagePlan, plan_manage};
use crate::core::ownership::{Claim, claim};
use crate::core::placement::{Placement, placement};
use crate::core::pods_by_node::{NodePods, group_by_node, target_node_name};
use crate::core::rolling_update::{RollingUpdateError, RollingUpdatePlan, plan_rolling_update};
use crate::core::selector;
use crate::core::status::{StatusCounters, compute_counters};
use crate::core::tolerations::{
    NO_EXECUTE, NO_SCHEDULE, PREFER_NO_SCHEDULE, TAINT_NODE_DISK_PRESSURE,
    TAINT_NODE_MEMORY_PRESSURE, TAINT_NODE_NETWORK_UNAVAILABLE, TAINT_NODE_NOT_READY,
    TAINT_NODE_PID_PRESSURE, TAINT_NODE_UNREACHABLE, TAINT_NODE_UNSCHEDULABLE,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// The golden file, relative to the crate root.
const GOLDEN: &str = "src/core/decision_corpus.golden";
/// Set to `1` to rewrite the golden file instead of comparing with it.
const BLESS_VAR: &str = "EVERYNODE_BLESS_DECISIONS";
/// The seed of the generated scenarios.
const SEED: u64 = 0x0E7E_4140_DE5E_ED01;
/// How many scenarios the generator draws.
const GENERATED: usize = 3200;
/// The clock of every scenario (seconds since the epoch).
const NOW: i64 = 10_000;
/// The current revision's hash.
const HASH: &str = "new";
/// An outdated revision's hash.
const OLD: &str = "old";

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// One situation: a DaemonSet at revision `hash`, the node list, every pod in the namespace.
#[derive(Debug, Clone)]
struct Scenario {
    id: String,
    ds: DaemonSet,
    nodes: Vec<CachedNode>,
    pods: Vec<CachedPod>,
    hash: String,
    now: i64,
    /// Failed-pod backoff history: `(node, at, steps)` advances the node's key `steps` times at
    /// `at` before manage runs (an earlier sync deleted a failed pod there).
    backoff: Vec<(String, i64, u32)>,
}

impl Scenario {
    fn new(
        id: impl Into<String>,
        ds: DaemonSet,
        nodes: Vec<CachedNode>,
        pods: Vec<CachedPod>,
    ) -> Self {
        Self {
            id: id.into(),
            ds,
            nodes,
            pods,
            hash: HASH.to_string(),
            now: NOW,
            backoff: Vec::new(),
        }
    }

    fn with_backoff(mut self, node: &str, at: i64, steps: u32) -> Self {
        self.backoff.push((node.to_string(), at, steps));
        self
    }
}

/// The whole corpus: the catalogue, then the generated scenarios.
fn corpus() -> Vec<Scenario> {
    let mut all = catalogue();
    all.extend((0..GENERATED).map(generated));
    all
}

// ---------------------------------------------------------------------------------------------
// Deciding and recording
// ---------------------------------------------------------------------------------------------

/// What the core decides on one scenario.
struct Decisions {
    manage: ManagePlan,
    rolling: Result<RollingUpdatePlan, RollingUpdateError>,
    placements: Vec<(String, Placement)>,
    counters: StatusCounters,
}

/// The claim step (§7) and the grouping by node of manage, the rolling update and status (§3.2).
fn claimed(s: &Scenario) -> NodePods {
    let spec = s.ds.spec.as_ref().expect("corpus DaemonSets have a spec");
    let kept: Vec<Arc<CachedPod>> = s
        .pods
        .iter()
        .filter(|p| {
            let matches =
                selector::matches(&spec.selector, p.metadata.labels.as_ref()).unwrap_or(false);
            matches!(
                claim(&s.ds, &p.metadata, matches),
                Claim::Keep | Claim::Adopt
            )
        })
        .cloned()
        .map(Arc::new)
        .collect();
    group_by_node(kept.iter(), false)
}

/// The only place that calls the core's decisions: adapt it when their signatures change.
fn decide(s: &Scenario, node_pods: &NodePods) -> Decisions {
    let now = ts(s.now);
    let mut backoff = FailedPodBackoff::default();
    for (node, at, steps) in &s.backoff {
        let key = failed_pods_backoff_key(&s.ds, node);
        for _ in 0..*steps {
            backoff.next(&key, ts(*at));
        }
    }
    let manage = plan_manage(&s.ds, &s.nodes, node_pods, &s.hash, now, &mut backoff);
    let rolling = plan_rolling_update(&s.ds, &s.nodes, node_pods, &s.hash, now);
    let placements = s
        .nodes
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            (name, placement(n, &s.ds))
        })
        .collect();
    let counters = compute_counters(&s.ds, &s.nodes, node_pods, &s.hash, now);
    Decisions {
        manage,
        rolling,
        placements,
        counters,
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

fn flag(b: bool) -> char {
    if b { 'T' } else { 'F' }
}

/// The golden line of one scenario.
fn render(id: &str, d: &Decisions) -> String {
    let mut line = String::new();
    let reasons: Vec<String> = d
        .manage
        .events
        .iter()
        .map(|e| e.reason.to_string())
        .collect();
    let requeue = d
        .manage
        .requeue_after
        .map_or_else(|| "-".to_string(), |r| format!("{r:?}"));
    let _ = write!(
        line,
        "{id} | manage create={} delete={} events={} requeue={requeue}",
        list(&d.manage.nodes_needing_pods),
        list(&d.manage.pods_to_delete),
        list(&reasons),
    );
    match &d.rolling {
        Ok(plan) => {
            let _ = write!(
                line,
                " | rolling delete={} create={}",
                list(&plan.pods_to_delete),
                list(&plan.nodes_to_create)
            );
        }
        Err(error) => {
            let _ = write!(line, " | rolling error={error}");
        }
    }
    line.push_str(" | placement");
    for (name, p) in &d.placements {
        let _ = write!(
            line,
            " {name}={}{}",
            flag(p.should_run),
            flag(p.should_continue_running)
        );
    }
    let c = &d.counters;
    let _ = write!(
        line,
        " | status desired={} current={} misscheduled={} ready={} updated={} available={} unavailable={}",
        c.desired_number_scheduled,
        c.current_number_scheduled,
        c.number_misscheduled,
        c.number_ready,
        c.updated_number_scheduled,
        c.number_available,
        c.number_unavailable,
    );
    line
}

/// `node` without its NoExecute taints.
fn without_no_execute(node: &CachedNode) -> CachedNode {
    let mut node = node.clone();
    if let Some(taints) = node.spec.as_mut().and_then(|s| s.taints.as_mut()) {
        taints.retain(|t| t.effect != NO_EXECUTE);
    }
    node
}

/// Which kinds of decision a scenario exercises (to prove the corpus is not degenerate).
#[derive(Debug, Clone, Copy, Default)]
struct Exercised {
    manage_create: bool,
    manage_delete: bool,
    rolling_delete: bool,
    surge_create: bool,
    excluded_node: bool,
    no_execute_eviction: bool,
    failed_pod_event: bool,
    backoff_requeue: bool,
    misscheduled: bool,
    rolling_error: bool,
}

fn exercised(s: &Scenario, node_pods: &NodePods, d: &Decisions) -> Exercised {
    let rolling = d.rolling.as_ref().ok();
    let deleted: HashSet<&str> = d.manage.pods_to_delete.iter().map(String::as_str).collect();
    // A pod manage deletes on a node that it could stay on were it not for a NoExecute taint.
    let no_execute_eviction = s.nodes.iter().zip(&d.placements).any(|(node, (name, p))| {
        !p.should_continue_running
            && placement(&without_no_execute(node), &s.ds).should_continue_running
            && node_pods.get(name).is_some_and(|pods| {
                pods.iter()
                    .any(|pod| deleted.contains(pod.metadata.name.as_deref().unwrap_or_default()))
            })
    });
    Exercised {
        manage_create: !d.manage.nodes_needing_pods.is_empty(),
        manage_delete: !d.manage.pods_to_delete.is_empty(),
        rolling_delete: rolling.is_some_and(|p| !p.pods_to_delete.is_empty()),
        surge_create: rolling.is_some_and(|p| !p.nodes_to_create.is_empty()),
        excluded_node: d.placements.iter().any(|(_, p)| !p.should_run),
        no_execute_eviction,
        failed_pod_event: d
            .manage
            .events
            .iter()
            .any(|e| e.reason == "FailedDaemonPod"),
        backoff_requeue: d.manage.requeue_after.is_some(),
        misscheduled: d.counters.number_misscheduled > 0,
        rolling_error: d.rolling.is_err(),
    }
}

/// How many scenarios exercise each kind of decision.
#[derive(Debug, Default)]
struct Counts {
    scenarios: usize,
    manage_create: usize,
    manage_delete: usize,
    rolling_delete: usize,
    surge_create: usize,
    excluded_node: usize,
    no_execute_eviction: usize,
    failed_pod_event: usize,
    backoff_requeue: usize,
    misscheduled: usize,
    rolling_error: usize,
}

impl Counts {
    fn add(&mut self, e: Exercised) {
        self.scenarios += 1;
        self.manage_create += usize::from(e.manage_create);
        self.manage_delete += usize::from(e.manage_delete);
        self.rolling_delete += usize::from(e.rolling_delete);
        self.surge_create += usize::from(e.surge_create);
        self.excluded_node += usize::from(e.excluded_node);
        self.no_execute_eviction += usize::from(e.no_execute_eviction);
        self.failed_pod_event += usize::from(e.failed_pod_event);
        self.backoff_requeue += usize::from(e.backoff_requeue);
        self.misscheduled += usize::from(e.misscheduled);
        self.rolling_error += usize::from(e.rolling_error);
    }

    /// `(what, count, must be more than)`.
    fn checks(&self) -> [(&'static str, usize, usize); 10] {
        [
            ("manage creates", self.manage_create, 50),
            ("manage deletes", self.manage_delete, 50),
            ("rolling-update deletes", self.rolling_delete, 50),
            ("surge creates", self.surge_create, 50),
            ("an excluded node", self.excluded_node, 50),
            ("a NoExecute eviction", self.no_execute_eviction, 50),
            ("a FailedDaemonPod event", self.failed_pod_event, 50),
            ("a failed-pod backoff requeue", self.backoff_requeue, 5),
            ("misscheduled pods", self.misscheduled, 50),
            ("a rolling-update error", self.rolling_error, 5),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

const HEADER: &str = "\
# The decisions of the core on the corpus of src/core/decision_corpus.rs, one scenario a line.
# Generated: do not edit. Regenerate with `EVERYNODE_BLESS_DECISIONS=1 cargo test --lib core::decision_corpus`
# and justify every changed decision in the commit message.
";

/// The sections of a line (`id`, `manage …`, `rolling …`, `placement …`, `status …`).
fn sections(line: &str) -> Vec<&str> {
    line.split(" | ").collect()
}

fn id_of(line: &str) -> &str {
    sections(line)[0]
}

/// The names of the sections in which two lines differ.
fn differing_sections(golden: &str, now: &str) -> String {
    let (g, n) = (sections(golden), sections(now));
    let mut names = Vec::new();
    for i in 1..g.len().max(n.len()) {
        let (a, b) = (g.get(i), n.get(i));
        if a != b {
            let section = a.or(b).copied().unwrap_or_default();
            names.push(section.split(' ').next().unwrap_or(section));
        }
    }
    names.join(", ")
}

#[test]
fn the_core_decides_as_the_golden_file_says() {
    let started = std::time::Instant::now();
    let scenarios = corpus();
    let mut counts = Counts::default();
    let mut ids = HashSet::new();
    let mut lines = Vec::with_capacity(scenarios.len());
    for s in &scenarios {
        assert!(ids.insert(s.id.clone()), "duplicate scenario id {}", s.id);
        let node_pods = claimed(s);
        let decisions = decide(s, &node_pods);
        counts.add(exercised(s, &node_pods, &decisions));
        lines.push(render(&s.id, &decisions));
    }
    let elapsed = started.elapsed();

    println!(
        "decision corpus: {} scenarios ({} hand-written, {GENERATED} generated), decided in {elapsed:.2?}",
        counts.scenarios,
        counts.scenarios - GENERATED
    );
    let mut degenerate = Vec::new();
    for (what, count, floor) in counts.checks() {
        println!("  scenarios with {what}: {count} (must be > {floor})");
        if count <= floor {
            degenerate.push(format!("{what}: {count} ≤ {floor}"));
        }
    }
    assert!(
        degenerate.is_empty(),
        "the corpus is degenerate: {}",
        degenerate.join("; ")
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let mut text = String::from(HEADER);
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    if std::env::var(BLESS_VAR).is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        println!(
            "blessed {} scenarios into {} ({} bytes): justify the change in the commit message",
            lines.len(),
            path.display(),
            text.len()
        );
        return;
    }

    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with {BLESS_VAR}=1 cargo test --lib core::decision_corpus",
            path.display()
        )
    });
    let golden_lines: BTreeMap<&str, &str> = golden
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| (id_of(l), l))
        .collect();
    let by_id: BTreeMap<&str, &Scenario> = scenarios.iter().map(|s| (s.id.as_str(), s)).collect();

    let mut differing = Vec::new();
    for line in &lines {
        let id = id_of(line);
        match golden_lines.get(id) {
            Some(expected) if expected == line => {}
            expected => differing.push((id, expected.copied(), Some(line.as_str()))),
        }
    }
    let current: HashSet<&str> = lines.iter().map(|l| id_of(l)).collect();
    for (id, expected) in &golden_lines {
        if !current.contains(id) {
            differing.push((id, Some(expected), None));
        }
    }
    if differing.is_empty() {
        return;
    }

    let mut report = format!(
        "{} of {} scenarios decide differently from {GOLDEN} (the first 10 below).\n\
         A refactor must not change a decision. If the change is intended, bless the file with\n\
         {BLESS_VAR}=1 cargo test --lib core::decision_corpus and justify it in the commit message.\n",
        differing.len(),
        lines.len()
    );
    for (id, expected, actual) in differing.iter().take(10) {
        let (expected, actual) = (
            expected.unwrap_or("(no such scenario in the golden file)"),
            actual.unwrap_or("(no such scenario in the corpus)"),
        );
        let _ = writeln!(
            report,
            "\n{id} (differs in: {})\n  golden: {expected}\n  now:    {actual}",
            differing_sections(expected, actual)
        );
        if let Some(s) = by_id.get(id) {
            report.push_str(&describe(s));
        }
    }
    panic!("{report}");
}

/// The parity check of the shell's slim caches (`controller::slim`): for every scenario, its golden
/// line plus its node explanation (`node_reason::explain`, which reads pod status the line does
/// not), first as is, then with every node and pod passed through `node` and `pod` (a JSON round
/// trip: nodes and pods encoded and decoded as the watch decodes them; a node or pod field the core
/// reads is one of `CachedNode`'s or `CachedPod`'s by construction). Returns `(id, as is,
/// through)`.
pub fn decided_through(
    node: impl Fn(&CachedNode) -> CachedNode,
    pod: impl Fn(&CachedPod) -> CachedPod,
) -> Vec<(String, String, String)> {
    let one = |s: &Scenario| {
        let node_pods = claimed(s);
        let explained = crate::core::node_reason::explain(
            &s.ds,
            &s.nodes,
            &node_pods,
            &s.hash,
            ts(s.now),
            &Default::default(),
        );
        format!(
            "{}\n{}",
            render(&s.id, &decide(s, &node_pods)),
            serde_json::to_string(&explained).unwrap_or_default()
        )
    };
    corpus()
        .into_iter()
        .map(|s| {
            let before = one(&s);
            let through = Scenario {
                nodes: s.nodes.iter().map(&node).collect(),
                pods: s.pods.iter().map(&pod).collect(),
                ..s.clone()
            };
            (s.id.clone(), before, one(&through))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Describing a scenario (for the mismatch report)
// ---------------------------------------------------------------------------------------------

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<{e}>"))
}

/// The inputs of a scenario, a few lines indented under its id.
fn describe(s: &Scenario) -> String {
    let mut out = String::from("  inputs:\n");
    let spec = s.ds.spec.as_ref();
    let template = spec.and_then(|sp| sp.template.spec.as_ref());
    let _ = writeln!(
        out,
        "    daemonset hash={} now={} strategy={} minReadySeconds={:?} annotations={}",
        s.hash,
        s.now,
        json(&spec.and_then(|sp| sp.update_strategy.as_ref())),
        spec.and_then(|sp| sp.min_ready_seconds),
        json(&s.ds.metadata.annotations),
    );
    let _ = writeln!(
        out,
        "    template nodeName={:?} hostNetwork={:?} nodeSelector={} affinity={} tolerations={}",
        template.and_then(|t| t.node_name.as_deref()),
        template.and_then(|t| t.host_network),
        json(&template.and_then(|t| t.node_selector.as_ref())),
        json(&template.and_then(|t| t.affinity.as_ref())),
        json(&template.and_then(|t| t.tolerations.as_ref())),
    );
    for node in &s.nodes {
        let taints: Vec<String> = node
            .taints()
            .iter()
            .map(|t| {
                format!(
                    "{}={}:{}",
                    t.key,
                    t.value.as_deref().unwrap_or_default(),
                    t.effect
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "    node {} labels={} taints=[{}]",
            node.metadata.name.as_deref().unwrap_or_default(),
            json(&node.metadata.labels),
            taints.join(", ")
        );
    }
    for pod in &s.pods {
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|st| st.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| {
                format!(
                    "{}@{}",
                    c.status,
                    c.last_transition_time
                        .as_ref()
                        .map_or(String::new(), |t| t.0.as_second().to_string())
                )
            });
        let _ = writeln!(
            out,
            "    pod {} target={:?} nodeName={:?} labels={} owned={} phase={:?} ready={:?} created={:?} deleted={:?}",
            pod.metadata.name.as_deref().unwrap_or_default(),
            target_node_name(pod),
            pod.spec.as_ref().and_then(|sp| sp.node_name.as_deref()),
            json(&pod.metadata.labels),
            pod.metadata.owner_references.is_some(),
            status.and_then(|st| st.phase.as_deref()),
            ready,
            pod.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            pod.metadata
                .deletion_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
        );
    }
    for (node, at, steps) in &s.backoff {
        let _ = writeln!(
            out,
            "    failed-pod backoff on {node}: advanced {steps}× at {at}"
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    /// The sub-stream of scenario `index`.
    fn for_scenario(index: usize) -> Self {
        let mut seeder = Rng(SEED ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        Rng(seeder.next_u64())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `lo..=hi` as an i64.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An index drawn with the given weights.
    fn weighted(&mut self, weights: &[usize]) -> usize {
        let mut roll = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }
}

/// `(key, value, effect)`; `None` effect: drawn at random.
const TAINTS: &[(&str, &str, Option<&str>)] = &[
    (TAINT_NODE_NOT_READY, "", Some(NO_EXECUTE)),
    (TAINT_NODE_UNREACHABLE, "", Some(NO_EXECUTE)),
    (TAINT_NODE_DISK_PRESSURE, "", Some(NO_SCHEDULE)),
    (TAINT_NODE_MEMORY_PRESSURE, "", Some(NO_SCHEDULE)),
    (TAINT_NODE_PID_PRESSURE, "", Some(NO_SCHEDULE)),
    (TAINT_NODE_UNSCHEDULABLE, "", Some(NO_SCHEDULE)),
    (TAINT_NODE_NETWORK_UNAVAILABLE, "", Some(NO_SCHEDULE)),
    // Not tolerated by default: the default not-ready toleration is for NoExecute only.
    (TAINT_NODE_NOT_READY, "", Some(NO_SCHEDULE)),
    ("dedicated", "infra", None),
    ("dedicated", "infra", None),
    ("dedicated", "gpu", None),
    ("dedicated", "gpu", None),
    ("example.com/maintenance", "", None),
];

const EFFECTS: &[&str] = &[NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE];

/// `(key, operator, value, effect)` as in `fixtures::toleration` (empty: unset).
const TOLERATIONS: &[(&str, &str, &str, &str)] = &[
    ("dedicated", "Equal", "infra", NO_SCHEDULE),
    ("dedicated", "Equal", "infra", NO_EXECUTE),
    ("dedicated", "", "infra", ""),
    ("dedicated", "Exists", "", ""),
    ("dedicated", "Equal", "gpu", NO_EXECUTE),
    ("dedicated", "Equal", "other", ""),
    ("example.com/maintenance", "Exists", "", NO_EXECUTE),
    (TAINT_NODE_NETWORK_UNAVAILABLE, "Exists", "", NO_SCHEDULE),
    (TAINT_NODE_NOT_READY, "Exists", "", ""),
    ("", "Exists", "", NO_EXECUTE),
    ("", "Exists", "", ""),
];

fn generated_node(rng: &mut Rng, name: &str) -> CachedNode {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(disk) = rng.pick(&[Some("ssd"), Some("hdd"), None]) {
        pairs.push(("disktype", disk));
    }
    if let Some(zone) = rng.pick(&[Some("a"), Some("b"), Some("c"), None]) {
        pairs.push(("zone", zone));
    }
    if let Some(cores) = rng.pick(&[Some("2"), Some("4"), Some("8"), None]) {
        pairs.push(("cores", cores));
    }
    let mut n = node_with_labels(name, &pairs);
    for _ in 0..rng.weighted(&[50, 35, 15]) {
        let (key, value, effect) = rng.pick(TAINTS);
        let effect = effect.unwrap_or_else(|| rng.pick(EFFECTS));
        n = with_taint(n, key, value, effect);
    }
    if rng.chance(5) {
        n = unschedulable(n);
    }
    n
}

/// `(key, operator, values)` of a random node-label requirement.
fn label_requirement(rng: &mut Rng) -> NodeSelectorRequirement {
    const REQUIREMENTS: &[(&str, &str, &[&str])] = &[
        ("disktype", "In", &["ssd"]),
        ("disktype", "In", &["ssd", "hdd"]),
        ("disktype", "NotIn", &["hdd"]),
        ("disktype", "Exists", &[]),
        ("disktype", "DoesNotExist", &[]),
        ("zone", "In", &["a", "b"]),
        ("zone", "NotIn", &["c"]),
        ("zone", "Exists", &[]),
        ("zone", "DoesNotExist", &[]),
        ("cores", "Gt", &["3"]),
        ("cores", "Lt", &["5"]),
        ("cores", "Gt", &["many"]),
        ("zone", "In", &[]),
    ];
    let (key, operator, values) = rng.pick(REQUIREMENTS);
    NodeSelectorRequirement {
        key: key.to_string(),
        operator: operator.to_string(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

/// A `metadata.name` matchFields requirement against one (or, rarely, two) generated node names.
fn name_requirement(rng: &mut Rng) -> NodeSelectorRequirement {
    let operator = rng.pick(&["In", "In", "NotIn"]);
    let mut values = vec![format!("n{}", rng.below(12))];
    if rng.chance(10) {
        values.push(format!("n{}", rng.below(12)));
    }
    NodeSelectorRequirement {
        key: "metadata.name".to_string(),
        operator: operator.to_string(),
        values: Some(values),
    }
}

fn generated_affinity(rng: &mut Rng) -> Affinity {
    let terms = (0..1 + rng.weighted(&[70, 30]))
        .map(|_| {
            let expressions: Vec<NodeSelectorRequirement> = (0..rng.weighted(&[15, 60, 25]))
                .map(|_| label_requirement(rng))
                .collect();
            let fields: Vec<NodeSelectorRequirement> = if rng.chance(25) {
                vec![name_requirement(rng)]
            } else {
                Vec::new()
            };
            NodeSelectorTerm {
                match_expressions: (!expressions.is_empty()).then_some(expressions),
                match_fields: (!fields.is_empty()).then_some(fields),
            }
        })
        .collect();
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Default::default()
    }
}

fn int_or_percent(rng: &mut Rng, values: &[&str]) -> IntOrString {
    let v = rng.pick(values);
    match v.parse::<i32>() {
        Ok(i) => IntOrString::Int(i),
        Err(_) => IntOrString::String(v.to_string()),
    }
}

fn generated_daemonset(rng: &mut Rng) -> DaemonSet {
    let mut ds = daemonset("ds");
    if rng.chance(25) {
        let selector: &[(&str, &str)] = rng.pick(&[
            &[("disktype", "ssd")][..],
            &[("disktype", "hdd")][..],
            &[("zone", "a")][..],
            &[("disktype", "ssd"), ("zone", "b")][..],
        ]);
        ds = with_node_selector(ds, selector);
    }
    if rng.chance(30) {
        ds = with_affinity(ds, generated_affinity(rng));
    }
    for _ in 0..rng.weighted(&[55, 30, 15]) {
        let (key, operator, value, effect) = rng.pick(TOLERATIONS);
        ds = with_toleration(ds, toleration(key, operator, value, effect));
    }
    if rng.chance(5) {
        ds = with_template_node_name(ds, &format!("n{}", rng.below(14)));
    }
    match rng.below(10) {
        0..=2 => ds = with_host_network(ds, true),
        3 => ds = with_host_network(ds, false),
        _ => {}
    }
    match rng.weighted(&[20, 77, 3]) {
        0 => ds = with_on_delete(ds),
        1 => {
            let max_unavailable = rng.chance(85).then(|| {
                if rng.chance(3) {
                    IntOrString::String(rng.pick(&["abc", "x%"]).to_string())
                } else {
                    int_or_percent(
                        rng,
                        &["0", "1", "1", "2", "3", "0%", "10%", "25%", "50%", "100%"],
                    )
                }
            });
            let max_surge = rng.chance(50).then(|| {
                if rng.chance(3) {
                    IntOrString::String(rng.pick(&["abc", "1.5%"]).to_string())
                } else {
                    int_or_percent(
                        rng,
                        &["0", "1", "1", "2", "3", "0%", "10%", "20%", "50%", "100%"],
                    )
                }
            });
            ds = with_rolling_update(ds, max_unavailable, max_surge);
        }
        _ => {
            // A strategy without a type: neither OnDelete nor a rolling update.
            ds_spec_mut(&mut ds)
                .update_strategy
                .get_or_insert_with(Default::default)
                .type_ = None;
        }
    }
    if rng.chance(40) {
        ds = with_min_ready_seconds(ds, rng.pick(&[0, 5, 30, 120, 600]));
    }
    if rng.chance(10) {
        ds = with_template_generation(ds, None);
    }
    ds
}

/// A daemon pod of `ds` named `name`, bound to `node` (or only pinned to it by node affinity), of a
/// random revision, phase, readiness, age and deletion state.
fn generated_pod(rng: &mut Rng, ds: &DaemonSet, node: &str, name: &str, bound: bool) -> CachedPod {
    let hash = match rng.weighted(&[50, 45, 5]) {
        0 => HASH,
        1 => OLD,
        _ => "",
    };
    let mut pod = if bound {
        ds_pod(ds, node, hash)
    } else {
        with_affinity_pin(ds_pod(ds, "", hash), node)
    };
    pod = with_name(pod, name);
    pod = with_creation_timestamp(pod, rng.between(0, 40) * 100);
    if rng.chance(6) {
        pod = with_pod_label(pod, POD_TEMPLATE_GENERATION, rng.pick(&["1", "0"]));
    }
    if rng.chance(3) {
        // No longer matches the selector: released, not the DaemonSet's.
        pod = with_pod_label(pod, "name", "other");
    }
    if rng.chance(3) {
        pod = orphan(pod);
    }
    let ready_since = NOW - rng.between(0, 14) * 50;
    pod = match rng.weighted(&[65, 15, 8, 5, 4, 3]) {
        0 => {
            if rng.chance(75) {
                running_ready(pod, ready_since)
            } else {
                with_ready(with_phase(pod, "Running"), false, ready_since)
            }
        }
        1 => {
            let pod = with_phase(pod, "Pending");
            if rng.chance(10) {
                with_ready(pod, false, ready_since)
            } else {
                pod
            }
        }
        2 => with_phase(pod, "Failed"),
        3 => with_phase(pod, "Succeeded"),
        4 => pod,
        _ => with_phase(pod, "Unknown"),
    };
    if rng.chance(10) {
        pod = with_deletion_timestamp(pod, NOW - rng.between(0, 60));
    }
    pod
}

fn generated(index: usize) -> Scenario {
    let mut rng = Rng::for_scenario(index);
    let node_count = 1 + rng.below(12);
    let mut nodes: Vec<CachedNode> = (0..node_count)
        .map(|i| generated_node(&mut rng, &format!("n{i}")))
        .collect();
    let ds = generated_daemonset(&mut rng);
    let mut pods = Vec::new();
    for i in 0..node_count {
        let node = format!("n{i}");
        for p in 0..rng.weighted(&[25, 45, 20, 10]) {
            let bound = !rng.chance(7);
            let name = format!("{node}-{}", ["a", "b", "c"][p]);
            pods.push(generated_pod(&mut rng, &ds, &node, &name, bound));
        }
    }
    if rng.chance(12) {
        for g in 0..1 + rng.below(2) {
            let node = format!("gone{}", rng.below(3));
            let bound = rng.chance(50);
            let name = format!("{node}-{g}");
            pods.push(generated_pod(&mut rng, &ds, &node, &name, bound));
        }
    }
    if rng.chance(30) {
        // Node-list order differs from node-name order (manage follows the list, the rolling
        // update the names).
        for i in (1..nodes.len()).rev() {
            nodes.swap(i, rng.below(i + 1));
        }
    }
    let mut s = Scenario::new(format!("r{index:04}"), ds, nodes, pods);
    if rng.chance(5) {
        let node = format!("n{}", rng.below(node_count));
        s = s.with_backoff(&node, NOW - rng.between(0, 4), 1 + rng.below(3) as u32);
    }
    s
}

/// Generated scenario `index` (any index: each has its own sub-stream) as the rolling update sees
/// it, for other modules' property tests: the DaemonSet, the node list, the claimed pods by node
/// (as [`claimed`] groups them), the current revision's hash and the clock.
pub(crate) fn generated_input(
    index: usize,
) -> (
    DaemonSet,
    Vec<CachedNode>,
    NodePods,
    String,
    crate::core::Timestamp,
) {
    let s = generated(index);
    let node_pods = claimed(&s);
    (s.ds, s.nodes, node_pods, s.hash, ts(s.now))
}

// ---------------------------------------------------------------------------------------------
// The catalogue (§10)
// ---------------------------------------------------------------------------------------------

fn nodes(from: usize, n: usize) -> Vec<CachedNode> {
    (from..from + n)
        .map(|i| node(&format!("node-{i}")))
        .collect()
}

fn blue_nodes(from: usize, n: usize) -> Vec<CachedNode> {
    (from..from + n)
        .map(|i| {
            node_with_labels(
                &format!("node-{i}"),
                &[("color", "blue"), ("speed", "fast")],
            )
        })
        .collect()
}

/// A pod of `ds` named `name` on `node`, at revision `hash`, created at `created`.
fn pod_at(ds: &DaemonSet, node: &str, name: &str, hash: &str, created: i64) -> CachedPod {
    with_creation_timestamp(with_name(ds_pod(ds, node, hash), name), created)
}

/// Running and Ready since `since`.
fn ready(pod: CachedPod, since: i64) -> CachedPod {
    running_ready(pod, since)
}

/// Running, not Ready.
fn unready(pod: CachedPod) -> CachedPod {
    with_ready(with_phase(pod, "Running"), false, NOW - 10)
}

/// Upstream `addPods`: `n` pods of `ds` bound to `node` at the current revision; with
/// `matching == false` they carry labels that do not match the selector ("label2" pods).
fn add_pods(ds: &DaemonSet, node: &str, matching: bool, n: usize) -> Vec<CachedPod> {
    (0..n)
        .map(|i| {
            let label = if matching { "l1" } else { "l2" };
            let pod = with_name(ds_pod(ds, node, HASH), &format!("{node}-{label}-{i}"));
            if matching {
                pod
            } else {
                with_pod_label(pod, "name", "other")
            }
        })
        .collect()
}

fn rolling(max_unavailable: i32) -> DaemonSet {
    with_rolling_update(
        daemonset("foo"),
        Some(IntOrString::Int(max_unavailable)),
        None,
    )
}

fn surge(max_surge: i32) -> DaemonSet {
    with_rolling_update(daemonset("foo"), None, Some(IntOrString::Int(max_surge)))
}

/// Upstream's `updateStrategies()`: the scenario for OnDelete and for RollingUpdate maxUnavailable=1.
fn both(id: &str, ds: DaemonSet, nodes: Vec<CachedNode>, pods: Vec<CachedPod>) -> [Scenario; 2] {
    [
        Scenario::new(
            format!("{id}/OnDelete"),
            with_on_delete(ds.clone()),
            nodes.clone(),
            pods.clone(),
        ),
        Scenario::new(
            format!("{id}/RollingUpdate"),
            with_rolling_update(ds, Some(IntOrString::Int(1)), None),
            nodes,
            pods,
        ),
    ]
}

/// Old ready pods (created at 0, ready since 0) on `node-from..node-(from+n)`.
fn old_ready_pods(ds: &DaemonSet, from: usize, n: usize) -> Vec<CachedPod> {
    (from..from + n)
        .map(|i| {
            let node = format!("node-{i}");
            ready(pod_at(ds, &node, &format!("{node}-old"), OLD, 0), 0)
        })
        .collect()
}

fn catalogue() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = Vec::new();
    let foo = daemonset("foo");

    // ---- §10.1 daemon_controller_test.go ------------------------------------------------------
    all.extend(both(
        "c003-simple-daemonset-launches-pods",
        foo.clone(),
        nodes(0, 5),
        vec![],
    ));
    all.extend(both(
        "c009-no-nodes-does-nothing",
        foo.clone(),
        vec![],
        vec![],
    ));
    all.extend(both(
        "c010-one-node-daemon-launches-pod",
        foo.clone(),
        nodes(0, 1),
        vec![],
    ));
    all.extend(both(
        "c011-not-ready-node-condition-launches-pod",
        foo.clone(),
        vec![with_node_condition(node("node-0"), "Ready", "False")],
        vec![],
    ));
    all.extend(both(
        "c012-insufficient-capacity-pinned-node-launches-pod",
        with_template_node_name(with_container_requests(foo.clone(), "200M", "2"), "node-0"),
        vec![with_allocatable(node("node-0"), "100M", "1")],
        vec![with_pod_node_name(
            pod("unrelated", &[("app", "other")]),
            "node-0",
        )],
    ));
    all.extend(both(
        "c014-network-unavailable-condition-launches-pod",
        foo.clone(),
        vec![with_node_condition(
            node("node-0"),
            "NetworkUnavailable",
            "True",
        )],
        vec![],
    ));
    {
        let ds = with_host_port(foo.clone(), 666);
        let own = ready(pod_at(&ds, "node-0", "node-0-own", HASH, 0), 0);
        all.extend(both(
            "c017-port-conflict-with-same-daemon-pod-keeps-it",
            ds,
            nodes(0, 1),
            vec![own],
        ));
    }
    all.extend(both(
        "c018-no-port-conflict-launches-pod",
        with_host_port(foo.clone(), 666),
        nodes(0, 1),
        vec![with_pod_node_name(
            pod("other-port", &[("app", "web")]),
            "node-0",
        )],
    ));
    {
        let mut pods = add_pods(&foo, "node-1", true, 1);
        pods.extend(add_pods(&foo, "node-2", true, 2));
        pods.extend(add_pods(&foo, "node-3", true, 5));
        pods.extend(add_pods(&foo, "node-4", false, 2));
        all.extend(both(
            "c020-deals-with-existing-pods",
            foo.clone(),
            nodes(0, 5),
            pods,
        ));
    }
    let blue = with_node_selector(foo.clone(), &[("color", "blue"), ("speed", "fast")]);
    {
        let mut n = nodes(0, 4);
        n.extend(blue_nodes(4, 3));
        all.extend(both(
            "c021-selector-daemon-launches-pods",
            blue.clone(),
            n,
            vec![],
        ));
    }
    {
        let mut n = nodes(0, 5);
        n.extend(blue_nodes(5, 5));
        let mut pods = add_pods(&blue, "node-0", false, 2);
        pods.extend(add_pods(&blue, "node-1", true, 3));
        pods.extend(add_pods(&blue, "node-1", false, 1));
        pods.extend(add_pods(&blue, "node-4", true, 1));
        all.extend(both(
            "c022-selector-daemon-deletes-unselected-pods",
            blue.clone(),
            n,
            pods,
        ));
    }
    {
        let mut n = nodes(0, 5);
        n.extend(blue_nodes(5, 5));
        let mut pods = add_pods(&blue, "node-0", true, 1);
        pods.extend(add_pods(&blue, "node-1", true, 3));
        pods.extend(add_pods(&blue, "node-1", false, 2));
        pods.extend(add_pods(&blue, "node-2", true, 4));
        pods.extend(add_pods(&blue, "node-6", true, 13));
        pods.extend(add_pods(&blue, "node-7", false, 4));
        pods.extend(add_pods(&blue, "node-9", true, 1));
        pods.extend(add_pods(&blue, "node-9", false, 1));
        all.extend(both(
            "c023-selector-daemon-deals-with-existing-pods",
            blue.clone(),
            n,
            pods,
        ));
    }
    {
        let mut n = nodes(0, 4);
        n.extend(blue_nodes(4, 3));
        all.extend(both(
            "c024-bad-selector-daemon-does-nothing",
            with_node_selector(foo.clone(), &[("color", "red"), ("speed", "fast")]),
            n,
            vec![],
        ));
    }
    all.extend(both(
        "c025-name-daemonset-launches-pods",
        with_template_node_name(foo.clone(), "node-0"),
        nodes(0, 5),
        vec![],
    ));
    all.extend(both(
        "c026-bad-name-daemonset-does-nothing",
        with_template_node_name(foo.clone(), "node-10"),
        nodes(0, 5),
        vec![],
    ));
    {
        let mut n = nodes(0, 4);
        n.extend(blue_nodes(4, 3));
        all.extend(both(
            "c027-name-and-selector-daemonset-launches-pods",
            with_template_node_name(blue.clone(), "node-6"),
            n.clone(),
            vec![],
        ));
        all.extend(both(
            "c028-inconsistent-name-selector-daemonset-does-nothing",
            with_template_node_name(blue.clone(), "node-0"),
            n.clone(),
            vec![],
        ));
        all.push(Scenario::new(
            "c029-selector-daemonset-launches-pods/OnDelete",
            with_on_delete(blue.clone()),
            n.clone(),
            vec![],
        ));
        all.extend(both(
            "c030-node-affinity-daemon-launches-pods",
            with_affinity(foo.clone(), required_affinity("color", "In", &["blue"])),
            n,
            vec![],
        ));
    }
    {
        let not_ready: Vec<CachedPod> = (0..2)
            .map(|i| {
                let node = format!("node-{i}");
                unready(pod_at(&foo, &node, &format!("{node}-p"), HASH, 0))
            })
            .collect();
        let now_ready: Vec<CachedPod> = not_ready.iter().cloned().map(|p| ready(p, NOW)).collect();
        all.extend(both(
            "c031-number-ready-status/not-ready",
            foo.clone(),
            nodes(0, 2),
            not_ready,
        ));
        all.extend(both(
            "c031-number-ready-status/ready",
            foo.clone(),
            nodes(0, 2),
            now_ready,
        ));
    }
    {
        let failed = |i: usize| {
            with_phase(
                pod_at(&foo, "node-0", &format!("node-0-failed-{i}"), HASH, 0),
                "Failed",
            )
        };
        let normal = |i: usize| {
            ready(
                pod_at(&foo, "node-0", &format!("node-0-normal-{i}"), HASH, 10),
                0,
            )
        };
        all.extend(both(
            "c033a-kill-failed-pods/0-failed-1-normal",
            foo.clone(),
            nodes(0, 1),
            vec![normal(0)],
        ));
        all.extend(both(
            "c033b-kill-failed-pods/0-failed-0-normal",
            foo.clone(),
            nodes(0, 1),
            vec![],
        ));
        all.extend(both(
            "c033c-kill-failed-pods/1-failed-0-normal",
            foo.clone(),
            nodes(0, 1),
            vec![failed(0)],
        ));
        all.extend(both(
            "c033d-kill-failed-pods/1-failed-3-normal",
            foo.clone(),
            nodes(0, 1),
            vec![failed(0), normal(0), normal(1), normal(2)],
        ));
        // c034: the backoff of an earlier sync holds the next delete back, until it expires.
        for (suffix, at, steps) in [
            ("in-backoff", NOW, 1),
            ("expired", NOW - 1, 1),
            ("doubled-in-backoff", NOW - 3, 3),
            ("doubled-expired", NOW - 4, 3),
        ] {
            for s in both(
                &format!("c034-kill-failed-pods-backoff/{suffix}"),
                foo.clone(),
                nodes(0, 1),
                vec![failed(1)],
            ) {
                all.push(s.with_backoff("node-0", at, steps));
            }
        }
        all.extend(both(
            "c034-kill-failed-pods-backoff/two-failed-in-one-sync",
            foo.clone(),
            nodes(0, 2),
            vec![failed(0), failed(1)],
        ));
    }
    let tainted =
        |key: &str, value: &str, effect: &str| with_taint(node("node-0"), key, value, effect);
    {
        let existing = vec![ready(pod_at(&foo, "node-0", "node-0-p", HASH, 0), 0)];
        all.extend(both(
            "c035-no-schedule-taint-keeps-running-intolerant-pod",
            foo.clone(),
            vec![tainted("node.kubernetes.io/fake", "", NO_SCHEDULE)],
            existing.clone(),
        ));
        all.extend(both(
            "c036-no-execute-taint-evicts-running-intolerant-pod",
            foo.clone(),
            vec![tainted("node.kubernetes.io/fake", "", NO_EXECUTE)],
            existing.clone(),
        ));
        all.extend(both(
            "c036-no-execute-taint-evicts-running-intolerant-pods-surge",
            surge(1),
            vec![tainted("dedicated", "infra", NO_EXECUTE)],
            vec![
                ready(pod_at(&foo, "node-0", "node-0-old", OLD, 0), 0),
                pod_at(&foo, "node-0", "node-0-new", HASH, 100),
            ],
        ));
        all.extend(both(
            "c037-tainted-node-does-not-launch-intolerant-pod",
            foo.clone(),
            vec![tainted("dedicated", "user1", NO_SCHEDULE)],
            vec![],
        ));
        all.extend(both(
            "c038-tainted-node-launches-tolerating-pod",
            with_toleration(
                foo.clone(),
                toleration("dedicated", "Equal", "user1", NO_SCHEDULE),
            ),
            vec![tainted("dedicated", "user1", NO_SCHEDULE)],
            vec![],
        ));
        all.extend(both(
            "c039-not-ready-taint-launches-pod",
            foo.clone(),
            vec![tainted(TAINT_NODE_NOT_READY, "", NO_EXECUTE)],
            vec![],
        ));
        all.extend(both(
            "c040-unreachable-taint-launches-pod",
            foo.clone(),
            vec![tainted(TAINT_NODE_UNREACHABLE, "", NO_EXECUTE)],
            vec![],
        ));
        all.extend(both(
            "c041-tolerations-on-untainted-node-launch-pod",
            with_toleration(
                foo.clone(),
                toleration("dedicated", "Equal", "user1", NO_SCHEDULE),
            ),
            nodes(0, 1),
            vec![],
        ));
        all.extend(both(
            "c042-respects-termination",
            foo.clone(),
            nodes(0, 1),
            vec![with_deletion_timestamp(
                ready(pod_at(&foo, "node-0", "node-0-p", HASH, 0), 0),
                NOW - 5,
            )],
        ));
        all.push(Scenario::new(
            "c042-respects-termination/surge",
            surge(1),
            nodes(0, 1),
            vec![with_deletion_timestamp(
                ready(pod_at(&foo, "node-0", "node-0-p", OLD, 0), 0),
                NOW - 5,
            )],
        ));
        let pressure = with_taint(
            with_taint(
                tainted(TAINT_NODE_DISK_PRESSURE, "", NO_SCHEDULE),
                TAINT_NODE_MEMORY_PRESSURE,
                "",
                NO_SCHEDULE,
            ),
            TAINT_NODE_PID_PRESSURE,
            "",
            NO_SCHEDULE,
        );
        all.extend(both(
            "c043-pressure-taints-launch-pod",
            foo.clone(),
            vec![pressure],
            vec![],
        ));
        all.extend(both(
            "c044-11-unschedulable-node-runs-daemon-pod",
            foo.clone(),
            vec![unschedulable(node("node-0"))],
            vec![],
        ));
    }
    {
        let pods = vec![
            ready(pod_at(&foo, "node-0", "bound-to-node-0", HASH, 0), 0),
            ready(
                pod_at(&foo, "node-1", "bound-to-missing-node-1", HASH, 0),
                0,
            ),
            with_name(
                with_affinity_pin(ds_pod(&foo, "", HASH), "node-2"),
                "unscheduled-for-missing-node-2",
            ),
        ];
        all.extend(both(
            "c047-delete-unscheduled-pod-for-not-existing-node",
            foo.clone(),
            nodes(0, 1),
            pods,
        ));
    }
    {
        let ds = surge(1);
        let mut pods = add_pods(&ds, "node-1", true, 1);
        pods.extend(add_pods(&ds, "node-2", true, 2));
        pods.extend(add_pods(&ds, "node-3", true, 5));
        pods.extend(add_pods(&ds, "node-4", false, 2));
        all.push(Scenario::new(
            "c059-surge-deals-with-existing-pods",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    {
        let ds = surge(1);
        all.push(Scenario::new(
            "c060-surge-preserves-ready-old-pods",
            ds.clone(),
            nodes(0, 5),
            vec![
                pod_at(&ds, "node-1", "node-1-new", HASH, 100),
                ready(pod_at(&ds, "node-1", "node-1-old", OLD, 50), 0),
                ready(pod_at(&ds, "node-1", "node-1-delete", OLD, 60), 0),
                pod_at(&ds, "node-2", "node-2-new", HASH, 0),
            ],
        ));
        let mut pods = vec![
            with_ready(pod_at(&ds, "node-0", "node-0-new", HASH, 100), false, 0),
            ready(pod_at(&ds, "node-0", "node-0-old-ready", OLD, 50), 0),
        ];
        for i in 1..5 {
            let node = format!("node-{i}");
            let mut old = ready(pod_at(&ds, &node, &format!("{node}-preserve"), OLD, 1), 0);
            if i == 4 {
                old = with_deletion_timestamp(old, 31);
            }
            pods.push(old);
        }
        all.push(Scenario::new(
            "c061-surge-creates-new-pod-when-at-max-surge-and-old-pod-deleted",
            ds.clone(),
            nodes(0, 5),
            pods,
        ));
        all.push(Scenario::new(
            "c062-surge-deletes-unready-old-pods",
            ds.clone(),
            nodes(0, 5),
            vec![
                pod_at(&ds, "node-1", "node-1-new", HASH, 100),
                with_ready(pod_at(&ds, "node-1", "node-1-old", OLD, 50), false, 0),
                ready(pod_at(&ds, "node-1", "node-1-delete", OLD, 60), 0),
                pod_at(&ds, "node-2", "node-2-new", HASH, 0),
            ],
        ));
        let min_ready = with_min_ready_seconds(ds.clone(), 15);
        for (id, ready_for) in [
            (
                "c063-surge-preserves-old-ready-with-unsatisfied-min-ready",
                10,
            ),
            ("c064-surge-deletes-old-ready-with-satisfied-min-ready", 20),
        ] {
            all.push(Scenario::new(
                id,
                min_ready.clone(),
                nodes(0, 5),
                vec![
                    ready(
                        pod_at(&min_ready, "node-1", "node-1-new", HASH, 5000),
                        NOW - ready_for,
                    ),
                    ready(pod_at(&min_ready, "node-1", "node-1-old", OLD, 50), 0),
                    ready(pod_at(&min_ready, "node-1", "node-1-delete", OLD, 60), 0),
                    pod_at(&min_ready, "node-2", "node-2-new", HASH, 0),
                ],
            ));
        }
    }

    // ---- §10.2 update_test.go -----------------------------------------------------------------
    {
        let ds = rolling(2);
        all.push(Scenario::new(
            "c067-updates-pods-max-unavailable-2/first-round",
            ds.clone(),
            nodes(0, 5),
            old_ready_pods(&ds, 0, 5),
        ));
        let mut pods = old_ready_pods(&ds, 2, 3);
        pods.push(unready(pod_at(&ds, "node-0", "node-0-new", HASH, NOW)));
        pods.push(unready(pod_at(&ds, "node-1", "node-1-new", HASH, NOW)));
        all.push(Scenario::new(
            "c067-updates-pods-max-unavailable-2/new-pods-not-ready-yet",
            ds.clone(),
            nodes(0, 5),
            pods,
        ));
        let mut pods = old_ready_pods(&ds, 2, 3);
        pods.push(ready(pod_at(&ds, "node-0", "node-0-new", HASH, NOW), NOW));
        pods.push(ready(pod_at(&ds, "node-1", "node-1-new", HASH, NOW), NOW));
        all.push(Scenario::new(
            "c067-updates-pods-max-unavailable-2/second-round",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    {
        let ds = surge(2);
        all.push(Scenario::new(
            "c068-updates-pods-with-max-surge-2/first-round",
            ds.clone(),
            nodes(0, 5),
            old_ready_pods(&ds, 0, 5),
        ));
        let mut pods = old_ready_pods(&ds, 0, 5);
        pods.push(unready(pod_at(&ds, "node-0", "node-0-new", HASH, NOW)));
        pods.push(unready(pod_at(&ds, "node-1", "node-1-new", HASH, NOW)));
        all.push(Scenario::new(
            "c068-updates-pods-with-max-surge-2/surge-waiting",
            ds.clone(),
            nodes(0, 5),
            pods,
        ));
        let mut pods = old_ready_pods(&ds, 0, 5);
        pods.push(ready(pod_at(&ds, "node-0", "node-0-new", HASH, NOW), NOW));
        pods.push(ready(pod_at(&ds, "node-1", "node-1-new", HASH, NOW), NOW));
        all.push(Scenario::new(
            "c068-updates-pods-with-max-surge-2/new-pods-available",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    {
        // node-0 is tainted; the DaemonSet tolerated the taint before the update, not any more.
        let ds = surge(1);
        let mut n = nodes(1, 4);
        n.insert(0, tainted("node-role", "special", NO_SCHEDULE));
        all.push(Scenario::new(
            "c069-updates-pods-not-matching-taints-with-max-surge",
            ds.clone(),
            n,
            old_ready_pods(&ds, 0, 5),
        ));
    }
    {
        let ds = rolling(3);
        let mut pods = old_ready_pods(&ds, 3, 2);
        for i in 0..3 {
            let node = format!("node-{i}");
            pods.push(unready(pod_at(
                &ds,
                &node,
                &format!("{node}-new"),
                HASH,
                NOW,
            )));
        }
        all.push(Scenario::new(
            "c070-updates-when-new-pod-is-not-ready",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    {
        let ds = rolling(2);
        let mut pods = old_ready_pods(&ds, 2, 3);
        for i in 0..2 {
            let node = format!("node-{i}");
            pods.push(unready(pod_at(&ds, &node, &format!("{node}-old"), OLD, 0)));
        }
        all.push(Scenario::new(
            "c071-updates-some-old-pods-not-ready",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    for max_unavailable in [5, 9, 10, 11] {
        let ds = rolling(max_unavailable);
        let mut pods = old_ready_pods(&ds, 10, 10);
        for i in 0..10 {
            let node = format!("node-{i}");
            pods.push(unready(pod_at(
                &ds,
                &node,
                &format!("{node}-new"),
                HASH,
                NOW,
            )));
        }
        all.push(Scenario::new(
            format!("c072-updates-save-old-healthy-pods/max-unavailable-{max_unavailable}"),
            ds,
            nodes(0, 20),
            pods,
        ));
    }
    {
        let ds = rolling(10);
        let mut pods = Vec::new();
        for i in 0..100 {
            let node = format!("node-{i}");
            let pod = match i {
                0..88 => unready(pod_at(&ds, &node, &format!("{node}-new"), HASH, NOW)),
                88..90 => unready(pod_at(&ds, &node, &format!("{node}-old"), OLD, 0)),
                _ => ready(pod_at(&ds, &node, &format!("{node}-old"), OLD, 0), 0),
            };
            pods.push(pod);
        }
        all.push(Scenario::new(
            "c073-updates-all-old-not-ready-and-new-not-ready-pods",
            ds,
            nodes(0, 100),
            pods,
        ));
    }
    {
        let ds = rolling(3);
        let pods: Vec<CachedPod> = (0..5)
            .map(|i| {
                let node = format!("node-{i}");
                unready(pod_at(&ds, &node, &format!("{node}-old"), OLD, 0))
            })
            .collect();
        all.push(Scenario::new(
            "c074-updates-all-old-pods-not-ready",
            ds,
            nodes(0, 5),
            pods.clone(),
        ));
        all.push(Scenario::new(
            "c075-updates-all-old-pods-not-ready-max-surge",
            surge(3),
            nodes(0, 5),
            pods,
        ));
        let ds = with_min_ready_seconds(surge(3), 15);
        let mut pods = old_ready_pods(&ds, 0, 5);
        pods[0] = unready(pods[0].clone());
        pods.push(ready(
            pod_at(&ds, "node-1", "node-1-new", HASH, NOW - 20),
            NOW - 20,
        ));
        pods.push(ready(
            pod_at(&ds, "node-2", "node-2-new", HASH, NOW - 10),
            NOW - 10,
        ));
        pods.push(pod_at(&ds, "node-3", "node-3-new", HASH, NOW));
        all.push(Scenario::new(
            "c075-updates-old-pods-max-surge-min-ready-15",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    {
        let ds = rolling(1);
        let pods: Vec<CachedPod> = (0..5)
            .map(|i| {
                let node = format!("node-{i}");
                ready(pod_at(&ds, &node, &format!("{node}-p"), HASH, 0), 0)
            })
            .collect();
        all.push(Scenario::new(
            "c076-updates-no-template-changed",
            ds,
            nodes(0, 5),
            pods,
        ));
    }
    {
        let ds = rolling(0);
        all.push(Scenario::new(
            "c077c-zero-budgets-allow-one-unavailable",
            ds.clone(),
            nodes(0, 2),
            old_ready_pods(&ds, 0, 1),
        ));
        let ds = with_rolling_update(
            daemonset("foo"),
            Some(IntOrString::String("50%".to_string())),
            None,
        );
        let mut pods = old_ready_pods(&ds, 0, 2);
        pods.push(with_deletion_timestamp(
            ready(pod_at(&ds, "node-2", "node-2-old", OLD, 0), 0),
            NOW - 1,
        ));
        all.push(Scenario::new(
            "c077h-50-percent-of-3-terminating-pod-occupies-its-node",
            ds,
            nodes(0, 3),
            pods,
        ));
        let ds = with_rolling_update(
            daemonset("foo"),
            Some(IntOrString::Int(0)),
            Some(IntOrString::String("50%".to_string())),
        );
        all.push(Scenario::new(
            "c077f-surge-50-percent-of-2",
            ds.clone(),
            nodes(0, 2),
            old_ready_pods(&ds, 0, 2),
        ));
    }

    // ---- §10.3 daemonset_util_test.go -----------------------------------------------------
    {
        // Old hash, but the pod-template-generation label equals the DaemonSet's generation.
        let ds = rolling(5);
        let pods: Vec<CachedPod> = (0..3)
            .map(|i| {
                let node = format!("node-{i}");
                let pod = ready(pod_at(&ds, &node, &format!("{node}-p"), OLD, 0), 0);
                with_pod_label(pod, POD_TEMPLATE_GENERATION, if i == 0 { "1" } else { "0" })
            })
            .collect();
        all.push(Scenario::new(
            "c079-is-pod-updated-by-template-generation",
            ds,
            nodes(0, 3),
            pods,
        ));
    }

    // ---- §10.4 integration ---------------------------------------------------------------------
    {
        let zone_test = |name: &str| node_with_labels(name, &[("zone", "test")]);
        let n = vec![
            node("node-0"),
            node("node-1"),
            zone_test("node-2"),
            zone_test("node-3"),
            node("node-4"),
            node("node-5"),
        ];
        let affinity = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![
                        NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "zone".to_string(),
                                operator: "In".to_string(),
                                values: Some(vec!["test".to_string()]),
                            }]),
                            match_fields: None,
                        },
                        NodeSelectorTerm {
                            match_expressions: None,
                            match_fields: Some(vec![NodeSelectorRequirement {
                                key: "metadata.name".to_string(),
                                operator: "In".to_string(),
                                values: Some(vec!["node-1".to_string()]),
                            }]),
                        },
                    ],
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        };
        all.extend(both(
            "c086-node-selector-terms-label-or-metadata-name",
            with_affinity(foo.clone(), affinity),
            n,
            vec![],
        ));
    }
    {
        let succeeded = with_phase(
            pod_at(&foo, "node-0", "node-0-succeeded", HASH, 0),
            "Succeeded",
        );
        let failed = with_phase(pod_at(&foo, "node-1", "node-1-failed", HASH, 0), "Failed");
        let finalized = with_deletion_timestamp(
            with_phase(
                pod_at(&foo, "node-2", "node-2-succeeded-finalizer", HASH, 0),
                "Succeeded",
            ),
            NOW - 30,
        );
        all.extend(both(
            "c085-restarts-pods-on-terminal-phase",
            foo.clone(),
            nodes(0, 3),
            vec![succeeded, failed, finalized],
        ));
    }
    {
        let existing = vec![ready(pod_at(&foo, "node-0", "node-0-p", HASH, 0), 0)];
        all.extend(both(
            "c091-tainted-node/taint-added-no-schedule",
            foo.clone(),
            vec![tainted("dedicated", "infra", NO_SCHEDULE), node("node-1")],
            existing.clone(),
        ));
        all.extend(both(
            "c091-tainted-node/taint-removed",
            foo.clone(),
            vec![node("node-0"), node("node-1")],
            existing,
        ));
    }
    {
        let n = vec![
            unschedulable(node("node-0")),
            with_taint(
                node("node-1"),
                TAINT_NODE_NETWORK_UNAVAILABLE,
                "",
                NO_SCHEDULE,
            ),
        ];
        all.extend(both(
            "c092-unschedulable-and-network-unavailable/host-network",
            with_host_network(foo.clone(), true),
            n.clone(),
            vec![],
        ));
        all.extend(both(
            "c092-unschedulable-and-network-unavailable/pod-network",
            foo.clone(),
            n,
            vec![],
        ));
    }
    {
        // Nodes tainted zone-y ×2, zone-z ×2, zone-common ×2; the DaemonSet tolerated y and common
        // (its old pods run there) and now tolerates z and common, maxSurge 1.
        let zone =
            |i: usize, z: &str| with_taint(node(&format!("node-{i}")), "zone", z, NO_SCHEDULE);
        let n = vec![
            zone(0, "y"),
            zone(1, "y"),
            zone(2, "z"),
            zone(3, "z"),
            zone(4, "common"),
            zone(5, "common"),
        ];
        let tolerate = |ds: DaemonSet, z: &str| {
            with_toleration(ds, toleration("zone", "Equal", z, NO_SCHEDULE))
        };
        let ds = tolerate(tolerate(surge(1), "z"), "common");
        let pods: Vec<CachedPod> = [0, 1, 4, 5]
            .iter()
            .map(|i| {
                let node = format!("node-{i}");
                ready(pod_at(&ds, &node, &format!("{node}-old"), OLD, 0), 0)
            })
            .collect();
        all.push(Scenario::new(
            "c094-rolling-update-with-tolerations/switch-y-to-z",
            ds.clone(),
            n.clone(),
            pods.clone(),
        ));
        let mut later = pods;
        for i in [2, 3, 4] {
            let node = format!("node-{i}");
            later.push(ready(
                pod_at(&ds, &node, &format!("{node}-new"), HASH, NOW - 60),
                NOW - 60,
            ));
        }
        all.push(Scenario::new(
            "c094-rolling-update-with-tolerations/replacements-available",
            ds,
            n.clone(),
            later,
        ));
        let no_tolerations = surge(1);
        all.push(Scenario::new(
            "c094-rolling-update-with-tolerations/all-removed",
            no_tolerations.clone(),
            n,
            (0..6)
                .map(|i| {
                    let node = format!("node-{i}");
                    ready(
                        pod_at(&no_tolerations, &node, &format!("{node}-p"), HASH, 0),
                        0,
                    )
                })
                .collect(),
        ));
    }

    // ---- §10.5 e2e -----------------------------------------------------------------------------
    {
        let ds = with_node_selector(foo.clone(), &[("color", "blue")]);
        let pods = vec![ready(pod_at(&ds, "node-0", "node-0-p", HASH, 0), 0)];
        all.extend(both(
            "c096-complex-daemon/relabelled-green-loses-pod",
            ds.clone(),
            vec![node_with_labels("node-0", &[("color", "green")])],
            pods.clone(),
        ));
        all.extend(both(
            "c096-complex-daemon/labelled-blue-gets-pod",
            ds,
            vec![node_with_labels("node-0", &[("color", "blue")])],
            vec![],
        ));
        let green = with_node_selector(foo.clone(), &[("color", "green")]);
        all.extend(both(
            "c096-complex-daemon/selector-patched-to-green",
            green,
            vec![
                node_with_labels("node-0", &[("color", "green")]),
                node_with_labels("node-1", &[("color", "blue")]),
            ],
            vec![ready(pod_at(&foo, "node-1", "node-1-p", OLD, 0), 0)],
        ));
        all.extend(both(
            "c097-complex-daemon-with-node-affinity/label-removed",
            with_affinity(foo.clone(), required_affinity("color", "In", &["blue"])),
            vec![node("node-0")],
            pods,
        ));
    }
    {
        let ds = with_on_delete(foo.clone());
        all.push(Scenario::new(
            "c099-on-delete-does-not-update-pods",
            ds.clone(),
            nodes(0, 3),
            old_ready_pods(&ds, 0, 3),
        ));
        let ds = rolling(1);
        all.push(Scenario::new(
            "c100-rolling-update-updates-pods",
            ds.clone(),
            nodes(0, 3),
            old_ready_pods(&ds, 0, 3),
        ));
        // Rolled back mid-rollout: the current hash is the old one again.
        let mut pods = old_ready_pods(&ds, 1, 2);
        pods.push(unready(pod_at(&ds, "node-0", "node-0-bad", "bad", NOW)));
        let mut rollback = Scenario::new(
            "c101-rollback-without-unnecessary-restarts",
            ds,
            nodes(0, 3),
            pods,
        );
        rollback.hash = OLD.to_string();
        all.push(rollback);
        let ds = with_min_ready_seconds(
            with_rolling_update(
                daemonset("foo"),
                Some(IntOrString::Int(0)),
                Some(IntOrString::String("20%".to_string())),
            ),
            10,
        );
        let mut pods = old_ready_pods(&ds, 0, 10);
        pods.push(ready(
            pod_at(&ds, "node-0", "node-0-new", HASH, NOW - 5),
            NOW - 5,
        ));
        pods.push(ready(
            pod_at(&ds, "node-1", "node-1-new", HASH, NOW - 30),
            NOW - 30,
        ));
        pods[3] = unready(pods[3].clone());
        all.push(Scenario::new(
            "c102-surge-pods-onto-nodes-20-percent-min-ready-10",
            ds,
            nodes(0, 10),
            pods,
        ));
    }

    // ---- §3–§5 situations named in the reference ----------------------------------------------
    {
        let ds = surge(1);
        all.push(Scenario::new(
            "x-surge-outdated-pod-on-gone-node-fails-the-rolling-update",
            ds.clone(),
            nodes(0, 2),
            vec![
                ready(pod_at(&ds, "node-0", "node-0-old", OLD, 0), 0),
                ready(pod_at(&ds, "node-9", "node-9-old", OLD, 0), 0),
            ],
        ));
        all.extend(both(
            "x-bound-pod-on-gone-node-is-left-to-pod-gc",
            foo.clone(),
            nodes(0, 1),
            vec![ready(pod_at(&foo, "node-9", "node-9-p", HASH, 0), 0)],
        ));
        let unscheduled = with_creation_timestamp(
            with_name(
                with_affinity_pin(ds_pod(&foo, "", HASH), "node-0"),
                "node-0-unscheduled",
            ),
            0,
        );
        all.extend(both(
            "x-duplicate-pods-keep-oldest-scheduled",
            foo.clone(),
            nodes(0, 1),
            vec![
                unscheduled,
                pod_at(&foo, "node-0", "node-0-b", HASH, 100),
                pod_at(&foo, "node-0", "node-0-a", HASH, 100),
                pod_at(&foo, "node-0", "node-0-c", HASH, 200),
            ],
        ));
        let invalid = with_rolling_update(
            daemonset("foo"),
            Some(IntOrString::String("one".to_string())),
            None,
        );
        all.push(Scenario::new(
            "x-invalid-max-unavailable-stops-the-rolling-update",
            invalid.clone(),
            nodes(0, 2),
            old_ready_pods(&invalid, 0, 1),
        ));
        let ds = rolling(1);
        let mut pods = old_ready_pods(&ds, 1, 2);
        pods.push(unready(pod_at(&ds, "node-0", "node-0-new", HASH, NOW)));
        all.push(Scenario::new(
            "x-budget-held-by-an-unavailable-new-pod",
            ds,
            nodes(0, 3),
            pods,
        ));
        let ds = surge(1);
        let mut pods = old_ready_pods(&ds, 0, 2);
        pods.push(unready(pod_at(&ds, "node-0", "node-0-new", HASH, NOW)));
        all.push(Scenario::new(
            "x-surge-waiting-for-the-new-pod",
            ds.clone(),
            nodes(0, 2),
            pods,
        ));
        let mut n = nodes(1, 2);
        n.insert(0, tainted("dedicated", "infra", NO_SCHEDULE));
        let mut pods = old_ready_pods(&ds, 1, 2);
        pods.push(unready(pod_at(&ds, "node-0", "node-0-old", OLD, 0)));
        all.push(Scenario::new(
            "x-surge-unavailable-old-pod-on-excluded-node-goes-at-once",
            ds,
            n,
            pods,
        ));
        all.extend(both(
            "x-prefer-no-schedule-taint-is-ignored",
            foo.clone(),
            vec![tainted("dedicated", "infra", PREFER_NO_SCHEDULE)],
            vec![],
        ));
        all.extend(both(
            "x-exists-toleration-without-key-tolerates-no-execute",
            with_toleration(foo.clone(), toleration("", "Exists", "", "")),
            vec![tainted("dedicated", "infra", NO_EXECUTE)],
            vec![],
        ));
        all.extend(both(
            "x-gt-affinity-on-a-numeric-label",
            with_affinity(foo.clone(), required_affinity("cores", "Gt", &["3"])),
            vec![
                node_with_labels("node-0", &[("cores", "2")]),
                node_with_labels("node-1", &[("cores", "8")]),
                node("node-2"),
            ],
            vec![],
        ));
        all.push(Scenario::new(
            "x-node-removed-from-list-while-its-pod-is-unscheduled/surge",
            surge(1),
            nodes(0, 1),
            vec![with_name(
                with_affinity_pin(ds_pod(&foo, "", OLD), "node-1"),
                "node-1-unscheduled",
            )],
        ));
    }
    all
}
