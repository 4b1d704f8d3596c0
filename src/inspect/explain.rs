//! `everynode explain`: one row per node saying why it has, lacks or waits for the DaemonSet's pod,
//! then a one-line summary; `-o wide` adds the pod's details, `-o json` gives the same data for
//! scripts. [`render`] is pure; [`run`] reads the cluster and calls it.

use super::InspectError;
use super::connect::Connection;
use super::snapshot;
use super::table;
use crate::api::{DaemonSetRolloutStatus, Phase, StepStatus, WaveStatus};
use crate::core::Timestamp;
use crate::core::node_reason::{Explanation, NodeRow, ReasonClass};
use crate::core::rollout_status::rollout_line;
use crate::core::status::StatusCounters;
use crate::runtime::cli::{ExplainArgs, OutputFormat};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::Serialize;

/// What to render an [`Explanation`] as.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// The DaemonSet's current revision hash (what up-to-date pods carry).
    pub revision: &'a str,
    /// Only this node's row (`--node`); the summary and counters still cover every node.
    pub node: Option<&'a str>,
    /// `None`: the table.
    pub output: Option<OutputFormat>,
    /// The DaemonSet's `DaemonSetRollout`, if it has one: one line above the table, `rollout` in
    /// JSON.
    pub rollout: Option<RolloutView<'a>>,
    /// A note above the table (the `DaemonSetRollout` could not be read).
    pub note: Option<&'a str>,
}

/// A `DaemonSetRollout` as `explain` shows it.
#[derive(Debug, Clone, Copy)]
pub struct RolloutView<'a> {
    pub name: &'a str,
    pub status: &'a DaemonSetRolloutStatus,
}

/// `-o json`'s `rollout`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RolloutJson<'a> {
    name: &'a str,
    line: String,
    phase: Option<Phase>,
    wave: Option<&'a str>,
    step: Option<&'a StepStatus>,
    waves: &'a [WaveStatus],
    updated_nodes: i32,
    desired_nodes: i32,
    conditions: &'a [Condition],
}

impl<'a> RolloutView<'a> {
    fn line(&self) -> String {
        rollout_line(self.name, self.status)
    }

    fn json(&self) -> RolloutJson<'a> {
        RolloutJson {
            name: self.name,
            line: self.line(),
            phase: self.status.phase,
            wave: self.status.wave.as_deref(),
            step: self.status.step.as_ref(),
            waves: &self.status.waves,
            updated_nodes: self.status.updated_nodes,
            desired_nodes: self.status.desired_nodes,
            conditions: &self.status.conditions,
        }
    }
}

const COLUMNS: [&str; 6] = ["NODE", "WANTED", "POD", "REVISION", "STATE", "REASON"];
const WIDE_COLUMNS: [&str; 11] = [
    "NODE",
    "WANTED",
    "POD",
    "REVISION",
    "UP-TO-DATE",
    "STATE",
    "CLASS",
    "PHASE",
    "READY SINCE",
    "RESTARTS",
    "REASON",
];

/// `explanation` as `view` asks: a table (or a wide one) followed by the summary line, or one JSON
/// document. Fails when `--node` names a node without a row (or if JSON cannot be written).
pub fn render(explanation: &Explanation, view: &View) -> Result<String, InspectError> {
    let rows: Vec<&NodeRow> = match view.node {
        None => explanation.rows.iter().collect(),
        Some(node) => {
            let row = explanation
                .rows
                .iter()
                .find(|r| r.node == node)
                .ok_or_else(|| InspectError::NodeNotFound(node.to_string()))?;
            vec![row]
        }
    };
    Ok(match view.output {
        None | Some(OutputFormat::Wide) => {
            let wide = view.output == Some(OutputFormat::Wide);
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| if wide { wide_cells(r) } else { cells(r) })
                .collect();
            let columns: &[&str] = if wide { &WIDE_COLUMNS } else { &COLUMNS };
            let mut above = String::new();
            for line in view
                .note
                .map(str::to_string)
                .into_iter()
                .chain(view.rollout.map(|r| r.line()))
            {
                above.push_str(&line);
                above.push('\n');
            }
            format!(
                "{above}{}{}\n",
                table::render(columns, &cells),
                explanation.summary()
            )
        }
        Some(OutputFormat::Json) => {
            let doc = Document {
                daemon_set: Key {
                    namespace: view.namespace,
                    name: view.name,
                },
                revision: view.revision,
                rollout: view.rollout.map(|r| r.json()),
                summary: explanation.summary(),
                counters: &explanation.counters,
                by_class: ByClass::of(explanation),
                nodes: rows
                    .into_iter()
                    .map(|row| JsonRow {
                        state: row.reason.state(),
                        class: row.class(),
                        message: row.reason.to_string(),
                        row,
                    })
                    .collect(),
            };
            let mut text = serde_json::to_string_pretty(&doc)
                .map_err(|e| InspectError::Output(e.to_string()))?;
            text.push('\n');
            text
        }
    })
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

fn time(t: Option<Timestamp>) -> String {
    t.map(crate::core::node_reason::utc)
        .unwrap_or_else(|| "-".into())
}

/// NODE, WANTED, POD, REVISION, STATE, REASON.
fn cells(row: &NodeRow) -> Vec<String> {
    let pod = row.pod.as_ref();
    vec![
        row.node.clone(),
        yes_no(row.wanted),
        dash(pod.map(|p| p.name.as_str())),
        dash(pod.and_then(|p| p.revision.as_deref())),
        row.reason.state().to_string(),
        row.reason.to_string(),
    ]
}

/// [`WIDE_COLUMNS`]: [`cells`] with UP-TO-DATE after REVISION, and CLASS, PHASE, READY SINCE and
/// RESTARTS after STATE.
fn wide_cells(row: &NodeRow) -> Vec<String> {
    let pod = row.pod.as_ref();
    let mut out = cells(row);
    let reason = out.pop().unwrap_or_default();
    let state = out.pop().unwrap_or_default();
    out.extend([
        pod.map(|p| yes_no(p.updated)).unwrap_or_else(|| "-".into()),
        state,
        row.class().as_str().to_string(),
        dash(pod.map(|p| p.phase.as_str())),
        time(pod.and_then(|p| p.ready_since)),
        pod.map(|p| p.restarts.to_string())
            .unwrap_or_else(|| "-".into()),
        reason,
    ]);
    out
}

/// `-o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    daemon_set: Key<'a>,
    revision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<RolloutJson<'a>>,
    summary: String,
    counters: &'a StatusCounters,
    by_class: ByClass,
    nodes: Vec<JsonRow<'a>>,
}

/// The rows by class, in the classes' order (ok, excluded, waiting, failed).
#[derive(Serialize)]
struct ByClass {
    ok: usize,
    excluded: usize,
    waiting: usize,
    failed: usize,
}

impl ByClass {
    fn of(explanation: &Explanation) -> Self {
        let counts = explanation.by_class();
        let n = |class| counts.get(&class).copied().unwrap_or(0);
        ByClass {
            ok: n(ReasonClass::Ok),
            excluded: n(ReasonClass::Excluded),
            waiting: n(ReasonClass::Waiting),
            failed: n(ReasonClass::Failed),
        }
    }
}

#[derive(Serialize)]
struct Key<'a> {
    namespace: &'a str,
    name: &'a str,
}

/// A row with its STATE, class and REASON text next to the structured reason.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    row: &'a NodeRow,
    state: &'a str,
    class: ReasonClass,
    message: String,
}

/// Runs `everynode explain`: reads the DaemonSet, its nodes and pods, and renders them at the
/// current time. The error is one sentence.
pub async fn run(args: &ExplainArgs) -> Result<String, String> {
    let connection = Connection::open(&args.target).await?;
    let name = &args.target.daemonset;
    let snapshot = snapshot::read(&connection.client, &connection.namespace, name)
        .await
        .map_err(|e| connection.sentence(&e))?;
    let explanation = snapshot.explain(Timestamp::now());
    let empty = DaemonSetRolloutStatus::default();
    let view = View {
        namespace: &connection.namespace,
        name,
        revision: &snapshot.hash,
        node: args.node.as_deref(),
        output: args.output,
        rollout: snapshot.rollout.as_ref().map(|r| RolloutView {
            name: r.metadata.name.as_deref().unwrap_or(name),
            status: r.status.as_ref().unwrap_or(&empty),
        }),
        note: snapshot.rollout_note.as_deref(),
    };
    render(&explanation, &view).map_err(|e| connection.sentence(&e))
}

#[cfg(test)]
mod tests;
