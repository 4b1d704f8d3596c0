//! Sync pacing: which pod events may wait for the DaemonSet's next paced sync instead of syncing it
//! at once (`--status-write-interval`, the same interval as [`super::status_pacing`]).
//!
//! Upstream syncs a DaemonSet on every event of one of its pods. While a wave of pods is scheduled
//! and becomes Ready (every pod of a new DaemonSet, a node pool joining), almost all of those events
//! change only a pod's status, and a sync of a DaemonSet with nothing left to create, delete or
//! replace can then only change the status counters, whose writes are paced to one per interval
//! anyway. At 5000 nodes × 5 DaemonSets that was one sync per pod event, about 22 syncs a second
//! for minutes, each reading every node (issue 14).
//!
//! `[difference]` A pod update waits for the DaemonSet's next paced sync (at most one interval
//! after its last sync) when it changed only the pod's status and either:
//! - it left the pod's readiness and binding as they were (a condition other than Ready, a
//!   container's state): such a change moves no decision of manage or the rolling update, only the
//!   node's reason; or
//! - the DaemonSet was **quiet** at its last sync: every wanted node held one updated pod and no
//!   other, nothing was to be created, deleted or replaced, expectations were satisfied and no pod
//!   was failing or unschedulable; then readiness moves only the counters. The event that may make
//!   the last unready pod Ready syncs at once, so a wave's end shows as soon as upstream's does.
//!
//! A readiness change or a binding of a DaemonSet that is not quiet (a rollout under way: a new pod's
//! availability frees the budget for the next old one) waits much less: [`readiness_window`], 0.1 ms
//! per cached node, at most one interval (1000 nodes: 0.1 s; 5000 nodes: 0.5 s). A sync reads every
//! node, so this keeps the syncs such events cause to a few a second on a large cluster, where each
//! costs tens of milliseconds, and costs a rollout step at most that window. Upstream's own syncs
//! batch the same way, by taking that long.
//!
//! Never paced: adds and deletes, a deletion timestamp, changed labels or owner, a pod that turned
//! Failed or Succeeded or moved to another node, and every pod of a DaemonSet governed by a
//! DaemonSetRollout (whose failure detection reads container states). An interval of zero paces
//! nothing, as upstream (docs/differences.md).
//!
//! Nothing waits longer than one interval after the last sync, and a sync that runs earlier (for
//! another event) sees every update that waited. An update that arrives while a sync runs is
//! counted against the sync before; the quiet count the running sync leaves may then miss it, and
//! the last Ready event waits for the paced sync (at most one interval) instead of syncing at once.
//!
//! Kept by DaemonSet UID in the shell; a new leader knows no DaemonSet's last sync, so every event
//! syncs at once until the DaemonSet's first sync.

use super::Timestamp;
use super::node_reason::{Explanation, Reason};
use super::pod_state::{is_ready, ready_condition};
use super::pods_by_node::{NodePods, target_node_name};
use super::status_pacing::{interval_for, remaining};
use crate::core::cached_pod::CachedPod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;
use std::time::Duration;

/// What a sync left for the pacing of its DaemonSet's next pod events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The DaemonSet is governed by a DaemonSetRollout, or the sync failed or stopped before it
    /// knew (a selector of everything, a DaemonSet being deleted, an invalid spec): no event waits.
    /// A sync that only wrote status (expectations outstanding, a watch failing) is paced: what it
    /// waits for is an add or a delete, never paced.
    pub unpaced: bool,
    /// The DaemonSet was quiet ([`is_quiet`]), with this many wanted pods not Ready.
    pub quiet_unready: Option<i32>,
    /// Its desired number of pods (the interval grows with it, [`interval_for`]).
    pub desired: i32,
    /// The nodes the sync read (the readiness window grows with them, [`readiness_window`]).
    pub nodes: usize,
}

impl SyncOutcome {
    /// No event of the DaemonSet waits.
    pub const UNPACED: SyncOutcome = SyncOutcome {
        unpaced: true,
        quiet_unready: None,
        desired: 0,
        nodes: 0,
    };
}

/// How long a readiness change waits per cached node when its DaemonSet is not quiet.
pub const READINESS_WAIT_PER_NODE: Duration = Duration::from_micros(100);

/// How long after its last sync a readiness change of a DaemonSet that is not quiet waits, in a
/// cluster of `nodes` nodes: [`READINESS_WAIT_PER_NODE`] each, at most `interval`.
pub fn readiness_window(interval: Duration, nodes: usize) -> Duration {
    let per_node = READINESS_WAIT_PER_NODE.saturating_mul(u32::try_from(nodes).unwrap_or(u32::MAX));
    per_node.min(interval)
}

/// Whether a sync's view leaves the DaemonSet quiet: every wanted node holds exactly one updated pod
/// that is up or on its way up (Ready, or starting without failing), no other node holds one (nor a
/// node missing from the node cache, whose pods no row shows), nothing was planned
/// (`nothing_planned`: no create or delete of manage or the rolling update). Returns the number of
/// wanted pods not Ready, or `None` when it is not quiet.
pub fn is_quiet(
    explanation: &Explanation,
    node_pods: &NodePods,
    nothing_planned: bool,
) -> Option<i32> {
    let c = &explanation.counters;
    let d = c.desired_number_scheduled;
    let placed = c.current_number_scheduled == d
        && c.updated_number_scheduled == d
        && c.number_misscheduled == 0;
    // Every wanted node holds at least one pod (current == desired): as many pods as wanted nodes
    // means one each, and none elsewhere.
    let pods: usize = node_pods.values().map(Vec::len).sum();
    let one_each = usize::try_from(d).is_ok_and(|d| d == pods);
    let rows_quiet = explanation.rows.iter().all(|row| {
        matches!(
            row.reason,
            Reason::UpToDate
                | Reason::Excluded { .. }
                | Reason::Starting { .. }
                | Reason::NotYetAvailable { .. }
        )
    });
    (nothing_planned && placed && one_each && rows_quiet).then_some(d - c.number_ready)
}

/// Whether an update of a pod changed only its status: same labels, owner references and target
/// node, not being deleted, and not finished (Failed or Succeeded). A binding (`spec.nodeName` set
/// to the node the pod targets) counts as status; it can change which of two pods on one node
/// manage keeps (bound pods first), so outside a quiet DaemonSet it waits as readiness does.
pub fn status_only(old: &CachedPod, new: &CachedPod) -> bool {
    let finished = |p: &CachedPod| {
        p.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|phase| phase == "Failed" || phase == "Succeeded")
    };
    old.metadata.labels == new.metadata.labels
        && old.metadata.owner_references == new.metadata.owner_references
        && new.metadata.deletion_timestamp.is_none()
        && target_node_name(old) == target_node_name(new)
        && !finished(new)
}

/// The node the pod is bound to (`spec.nodeName`).
fn bound_to(pod: &CachedPod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// The pod's Ready condition as readiness and availability read it: its status and when it last
/// changed.
fn readiness(pod: &CachedPod) -> Option<(&str, Option<&Time>)> {
    ready_condition(pod).map(|c| (c.status.as_str(), c.last_transition_time.as_ref()))
}

/// The last sync of a DaemonSet as pacing needs it.
#[derive(Debug, Clone, Copy)]
struct LastSync {
    at: Timestamp,
    desired: i32,
    nodes: usize,
    /// Wanted pods not Ready when quiet, counted down by the paced Ready events since.
    quiet_unready: Option<i32>,
}

/// The last sync of each DaemonSet (by UID) and the base interval.
#[derive(Debug, Default)]
pub struct SyncPacer {
    interval: Duration,
    last_sync: HashMap<String, LastSync>,
}

impl SyncPacer {
    /// A pacer with `interval` between two paced syncs (zero: every event syncs at once).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sync: HashMap::new(),
        }
    }

    /// Records the sync of the DaemonSet `uid` that ended at `now`.
    pub fn synced(&mut self, uid: &str, outcome: SyncOutcome, now: Timestamp) {
        if self.interval.is_zero() || outcome.unpaced {
            self.last_sync.remove(uid);
            return;
        }
        let last = LastSync {
            at: now,
            desired: outcome.desired,
            nodes: outcome.nodes,
            quiet_unready: outcome.quiet_unready,
        };
        self.last_sync.insert(uid.to_string(), last);
    }

    /// How long the update of a pod of the DaemonSet `uid` from `old` to `new`, seen at `now`, may
    /// wait for the next paced sync; `None`: sync at once (see the module).
    pub fn pod_updated(
        &mut self,
        uid: &str,
        old: &CachedPod,
        new: &CachedPod,
        now: Timestamp,
    ) -> Option<Duration> {
        let last = self.last_sync.get_mut(uid)?;
        if !status_only(old, new) {
            return None;
        }
        let interval = interval_for(self.interval, last.desired);
        let ready_moved = readiness(old) != readiness(new);
        if ready_moved || bound_to(old) != bound_to(new) {
            let Some(unready) = last.quiet_unready.as_mut() else {
                let window = readiness_window(interval, last.nodes);
                return remaining(window, last.at, now);
            };
            match (ready_moved, is_ready(old), is_ready(new)) {
                (true, false, true) => *unready -= 1,
                (true, true, false) => *unready += 1,
                _ => {}
            }
            if ready_moved && *unready <= 0 {
                // This may be the last pod to become Ready: the sync that settles goes now.
                last.quiet_unready = None;
                return None;
            }
        }
        remaining(interval, last.at, now)
    }

    /// Forgets a deleted DaemonSet.
    pub fn forget(&mut self, uid: &str) {
        self.last_sync.remove(uid);
    }

    /// Keeps only the DaemonSets for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.last_sync.retain(|uid, _| keep(uid));
    }
}

#[cfg(test)]
mod tests;
