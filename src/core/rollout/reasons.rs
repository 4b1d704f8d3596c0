//! Why the rollout policy holds a node: [`PolicyWait`], its sentence and its summary phrase.
//!
//! `explain` and `status` print these, and the controller decided with the same values, so the
//! reason shown is the reason acted on.

use serde::Serialize;

use crate::core::Timestamp;
use crate::core::node_reason::utc;

/// Why the policy holds a node (its outdated pod is not replaced, it gets no pod, or its pod is
/// not deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "camelCase")]
pub enum PolicyWait {
    /// `partition`: the node is among the last `partition` nodes in update order.
    #[serde(rename_all = "camelCase")]
    Partition { rollout: String, partition: i32 },
    /// `updateScope`: the node does not match the selector (`selector` as text).
    #[serde(rename_all = "camelCase")]
    OutOfScope { rollout: String, selector: String },
    /// `paused`.
    #[serde(rename_all = "camelCase")]
    Paused { rollout: String },
    /// `frozen` (for nodes that lack a pod or have one to delete).
    #[serde(rename_all = "camelCase")]
    Frozen { rollout: String },
    /// The node is not in the canary, which is not yet updated, available and baked.
    #[serde(rename_all = "camelCase")]
    Canary {
        nodes: Vec<String>,
        /// When the bake ends (None: the canary is not yet updated and available).
        until: Option<Timestamp>,
    },
    /// The node's wave waits for an earlier one (`after`, e.g. "topology.kubernetes.io/zone=a").
    #[serde(rename_all = "camelCase")]
    Wave {
        wave: String,
        after: String,
        /// When the earlier wave's bake ends (None: it is not yet updated and available).
        until: Option<Timestamp>,
        /// The earlier wave's updated-and-available nodes, of its total.
        done: i32,
        total: i32,
    },
    /// `minSecondsBetweenNodeUpdates`: the next node update starts at `next_at`.
    #[serde(rename_all = "camelCase")]
    Pacing { next_at: Timestamp, seconds: i32 },
    /// A Manual canary has baked and waits for approval.
    #[serde(rename_all = "camelCase")]
    Approval { rollout: String },
    /// The rollout failed (failure policy Pause, or no revision to roll back to).
    #[serde(rename_all = "camelCase")]
    Failed { rollout: String, cause: String },
    /// The update revision failed before and is not rolled out again by itself.
    #[serde(rename_all = "camelCase")]
    KnownBad { rollout: String, revision: String },
    /// The mass-deletion guard holds this node's pod.
    #[serde(rename_all = "camelCase")]
    DeletionHeld { rollout: String, pods: i32, of: i32 },
    /// The policy cannot be used; nothing is created or deleted.
    #[serde(rename_all = "camelCase")]
    Invalid { rollout: String, message: String },
}

/// The time of day a reason names (`12:05:10`), UTC; the full time is in `-o json`.
fn clock(t: Timestamp) -> String {
    let full = utc(t);
    full.get(11..19).map(str::to_string).unwrap_or(full)
}

impl PolicyWait {
    /// The phrase the one-line summary counts nodes under.
    pub fn summary_phrase(&self) -> &'static str {
        match self {
            PolicyWait::Partition { .. } => "held by partition",
            PolicyWait::OutOfScope { .. } => "outside the update scope",
            PolicyWait::Paused { .. } => "paused",
            PolicyWait::Frozen { .. } => "frozen",
            PolicyWait::Canary { .. } => "waiting for the canary",
            PolicyWait::Wave { .. } => "waiting for an earlier wave",
            PolicyWait::Pacing { .. } => "waiting for pacing",
            PolicyWait::Approval { .. } => "waiting for approval",
            PolicyWait::Failed { .. } | PolicyWait::KnownBad { .. } => "held by a failed rollout",
            PolicyWait::DeletionHeld { .. } => "deletion held",
            PolicyWait::Invalid { .. } => "held by an unusable policy",
        }
    }
}

impl std::fmt::Display for PolicyWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyWait::Partition { rollout, partition } => write!(
                f,
                "held by partition {partition} (DaemonSetRollout {rollout} keeps the last {partition} nodes in update order on the old revision)"
            ),
            PolicyWait::OutOfScope { rollout, selector } => write!(
                f,
                "outside the updateScope of DaemonSetRollout {rollout} ({selector})"
            ),
            PolicyWait::Paused { rollout } => write!(
                f,
                "paused by DaemonSetRollout {rollout} (kubectl everynode resume daemonset/{rollout})"
            ),
            PolicyWait::Frozen { rollout } => write!(
                f,
                "DaemonSetRollout {rollout} freezes this DaemonSet (kubectl everynode unfreeze daemonset/{rollout})"
            ),
            PolicyWait::Canary { nodes, until } => {
                let names = nodes.join(", ");
                match until {
                    Some(t) => write!(
                        f,
                        "waits for the canary ({names}) to bake, until {}",
                        clock(*t)
                    ),
                    None => write!(
                        f,
                        "waits for the canary ({names}) to be updated and available"
                    ),
                }
            }
            PolicyWait::Wave {
                wave,
                after,
                until,
                done,
                total,
            } => match until {
                Some(t) => write!(
                    f,
                    "wave {wave} starts after {after} bakes, at {}",
                    clock(*t)
                ),
                None => write!(
                    f,
                    "wave {wave} starts after {after} is updated and available ({done} of {total})"
                ),
            },
            PolicyWait::Pacing { next_at, seconds } => write!(
                f,
                "next node update at {} (minSecondsBetweenNodeUpdates {seconds})",
                clock(*next_at)
            ),
            PolicyWait::Approval { rollout } => write!(
                f,
                "waits for approval of the canary (kubectl everynode approve daemonset/{rollout})"
            ),
            PolicyWait::Failed { rollout, cause } => write!(
                f,
                "the rollout failed: {cause}; fix the template or kubectl everynode abort daemonset/{rollout}"
            ),
            PolicyWait::KnownBad { rollout, revision } => write!(
                f,
                "revision {revision} failed before and is not rolled out again by itself (kubectl everynode approve daemonset/{rollout} retries it)"
            ),
            PolicyWait::DeletionHeld { rollout, pods, of } => write!(
                f,
                "deletion held by the mass-deletion guard ({pods} of {of} pods would go; kubectl everynode approve daemonset/{rollout}, or revert the change)"
            ),
            PolicyWait::Invalid { rollout, message } => write!(
                f,
                "DaemonSetRollout {rollout} cannot be used, nothing is created or deleted: {message}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_name_the_control_and_the_way_out() {
        let at: Timestamp = "2026-12-02T12:05:10Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            PolicyWait::Partition {
                rollout: "agent".into(),
                partition: 3
            }
            .to_string(),
            "held by partition 3 (DaemonSetRollout agent keeps the last 3 nodes in update order on the old revision)"
        );
        assert_eq!(
            PolicyWait::Wave {
                wave: "topology.kubernetes.io/zone=b".into(),
                after: "zone=a".into(),
                until: Some(at),
                done: 4,
                total: 4
            }
            .to_string(),
            "wave topology.kubernetes.io/zone=b starts after zone=a bakes, at 12:05:10"
        );
        assert_eq!(
            PolicyWait::Pacing {
                next_at: at,
                seconds: 30
            }
            .to_string(),
            "next node update at 12:05:10 (minSecondsBetweenNodeUpdates 30)"
        );
        assert_eq!(
            PolicyWait::Paused {
                rollout: "agent".into()
            }
            .summary_phrase(),
            "paused"
        );
    }
}
