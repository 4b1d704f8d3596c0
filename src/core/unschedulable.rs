//! The `PodsUnschedulable` warning: a DaemonSet's pods the scheduler cannot place, summarised by
//! the scheduler's message with a few of their nodes, e.g. "3 pods cannot be scheduled: 0/5 nodes
//! are available: 1 Insufficient cpu, 4 node(s) didn't match Pod's node affinity/selector (node-a,
//! node-b, node-c)".
//!
//! [difference] Upstream says nothing on the DaemonSet: the reason is only in the scheduler's
//! `FailedScheduling` events on each pod, and `kubectl rollout status` waits until its timeout
//! (docs/differences.md). The summary comes from the same rows `everynode explain` prints
//! ([`crate::core::node_reason`]); when it is said is [`crate::core::said`]'s part.

use crate::core::events::{PODS_UNSCHEDULABLE, PlannedEvent};
use crate::core::node_reason::{NodeRow, Reason};

/// How many distinct scheduler messages the summary names; the rest are counted.
const NAMED_MESSAGES: usize = 3;
/// How many nodes it names per message.
const NAMED_NODES: usize = 3;
/// A scheduler message is cut after this many characters.
const MESSAGE_CHARS: usize = 300;

/// The part of a scheduler message that says why the pod does not fit, the same for every pod of
/// the DaemonSet that fails for the same reason: its first sentence ("0/5 nodes are available: 1
/// Insufficient cpu, 4 node(s) didn't satisfy plugin(s) [NodeAffinity]"), without what the
/// post-filter plugins append (". no new claims to deallocate, preemption: 0/5 nodes are
/// available: ..."), whitespace collapsed, at most [`MESSAGE_CHARS`] characters.
pub fn scheduler_reason(message: &str) -> String {
    let words: Vec<&str> = message.split_whitespace().collect();
    let collapsed = words.join(" ");
    let head = collapsed
        .split_once(". ")
        .map_or(collapsed.as_str(), |(head, _)| head);
    let mut reason = head.to_string();
    while reason.ends_with('.') {
        reason.pop();
    }
    match reason.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &reason[..cut]),
        None => reason,
    }
}

fn pods(n: usize) -> String {
    if n == 1 {
        "1 pod".to_string()
    } else {
        format!("{n} pods")
    }
}

fn node_list(nodes: &[&str]) -> String {
    let named = nodes
        .iter()
        .take(NAMED_NODES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    match nodes.len().saturating_sub(NAMED_NODES) {
        0 => named,
        more => format!("{named} and {more} more"),
    }
}

/// The summary of the rows whose pod the scheduler cannot place ([`Reason::Unschedulable`]), or
/// `None` when there is none: how many pods, and per scheduler reason (most pods first) its first
/// nodes, in row order.
pub fn summary(rows: &[NodeRow]) -> Option<String> {
    // (reason, nodes), in order of first appearance.
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for row in rows {
        let Reason::Unschedulable { message } = &row.reason else {
            continue;
        };
        let reason = scheduler_reason(message);
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, nodes)) => nodes.push(&row.node),
            None => groups.push((reason, vec![&row.node])),
        }
    }
    let total: usize = groups.iter().map(|(_, nodes)| nodes.len()).sum();
    if total == 0 {
        return None;
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    let head = format!("{} cannot be scheduled", pods(total));
    let text = match groups.as_slice() {
        [(reason, nodes)] => format!("{head}: {reason} ({})", node_list(nodes)),
        _ => {
            let mut parts: Vec<String> = groups
                .iter()
                .take(NAMED_MESSAGES)
                .map(|(reason, nodes)| {
                    format!("{reason} ({}: {})", pods(nodes.len()), node_list(nodes))
                })
                .collect();
            let rest: usize = groups
                .iter()
                .skip(NAMED_MESSAGES)
                .map(|(_, nodes)| nodes.len())
                .sum();
            if rest > 0 {
                parts.push(format!("{} for other reasons", pods(rest)));
            }
            format!("{head}: {}", parts.join("; "))
        }
    };
    Some(text)
}

/// The Warning `PodsUnschedulable` saying `summary`.
pub fn event(summary: &str) -> PlannedEvent {
    PlannedEvent::warning(PODS_UNSCHEDULABLE, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::node_reason::Reason;

    const CPU: &str = "0/5 nodes are available: 1 Insufficient cpu, 4 node(s) didn't match Pod's node affinity/selector. preemption: 0/5 nodes are available: 1 No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling.";
    const MEMORY: &str = "0/5 nodes are available: 1 Insufficient memory. preemption: 0/5 nodes are available: 1 No preemption victims found for incoming pod.";

    fn row(node: &str, reason: Reason) -> NodeRow {
        NodeRow {
            node: node.to_string(),
            wanted: true,
            pod: None,
            reason,
        }
    }

    fn unschedulable(node: &str, message: &str) -> NodeRow {
        row(
            node,
            Reason::Unschedulable {
                message: message.to_string(),
            },
        )
    }

    #[test]
    fn the_scheduler_reason_drops_the_preemption_report_and_the_full_stop() {
        assert_eq!(
            scheduler_reason(CPU),
            "0/5 nodes are available: 1 Insufficient cpu, 4 node(s) didn't match Pod's node affinity/selector"
        );
        // kube-scheduler 1.36, with the DRA plugin's post-filter note.
        assert_eq!(
            scheduler_reason(
                "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) \
                 [NodeAffinity]. no new claims to deallocate, preemption: 0/3 nodes are available: \
                 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for \
                 scheduling."
            ),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]"
        );
        assert_eq!(
            scheduler_reason(
                "pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available."
            ),
            "pod has unbound immediate PersistentVolumeClaims"
        );
        assert_eq!(
            scheduler_reason("0/1 nodes are available:\n 1 Too many pods.  "),
            "0/1 nodes are available: 1 Too many pods"
        );
        let long = "x".repeat(400);
        assert_eq!(
            scheduler_reason(&long),
            format!("{}...", "x".repeat(MESSAGE_CHARS))
        );
    }

    #[test]
    fn pods_failing_for_one_reason_are_counted_with_their_first_nodes() {
        let rows = vec![
            row("a", Reason::UpToDate),
            unschedulable("b", CPU),
            unschedulable("c", CPU),
            row("d", Reason::NoPod),
            unschedulable("e", CPU),
            unschedulable("f", CPU),
        ];
        assert_eq!(
            summary(&rows).as_deref(),
            Some(
                "4 pods cannot be scheduled: 0/5 nodes are available: 1 Insufficient cpu, 4 \
                 node(s) didn't match Pod's node affinity/selector (b, c, e and 1 more)"
            )
        );
        assert_eq!(
            summary(&rows[..2]).as_deref(),
            Some(
                "1 pod cannot be scheduled: 0/5 nodes are available: 1 Insufficient cpu, 4 \
                 node(s) didn't match Pod's node affinity/selector (b)"
            )
        );
    }

    #[test]
    fn several_reasons_most_pods_first_and_the_rest_counted() {
        let rows = vec![
            unschedulable("a", MEMORY),
            unschedulable("b", CPU),
            unschedulable("c", CPU),
            unschedulable("d", "0/5 nodes are available: 1 Too many pods."),
            unschedulable(
                "e",
                "0/5 nodes are available: 1 node(s) had volume node affinity conflict.",
            ),
        ];
        assert_eq!(
            summary(&rows).as_deref(),
            Some(
                "5 pods cannot be scheduled: 0/5 nodes are available: 1 Insufficient cpu, 4 \
                 node(s) didn't match Pod's node affinity/selector (2 pods: b, c); 0/5 nodes are \
                 available: 1 Insufficient memory (1 pod: a); 0/5 nodes are available: 1 Too many \
                 pods (1 pod: d); 1 pod for other reasons"
            )
        );
    }

    #[test]
    fn nothing_unschedulable_is_no_summary() {
        assert_eq!(summary(&[]), None);
        let rows = vec![row("a", Reason::UpToDate), row("b", Reason::NoPod)];
        assert_eq!(summary(&rows), None);
    }

    #[test]
    fn the_event_is_a_warning_with_its_own_reason() {
        let e = event("1 pod cannot be scheduled: x (a)");
        assert_eq!(e.reason, "PodsUnschedulable");
        assert_eq!(e.type_, crate::core::events::EventType::Warning);
        assert_eq!(e.message, "1 pod cannot be scheduled: x (a)");
    }
}
