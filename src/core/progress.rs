//! Whether a DaemonSet's rollout is complete, and since when it has made no progress: the "stuck"
//! signal of `everynode_daemonset_rollout_stalled_seconds`, a pure function of the status counters
//! each sync computes and the clock.
//!
//! Complete means what `kubectl rollout status` waits for: every desired pod updated and available.
//! Progress is a change of the number of desired pods, or more pods updated or available; a rollout
//! that starts (complete, then not) starts the clock.

use crate::core::Timestamp;
use crate::core::status::StatusCounters;

/// The last progress of one DaemonSet's rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The counters when progress was last seen.
    pub counters: StatusCounters,
    /// Whether the rollout was complete then.
    pub complete: bool,
    /// When progress was last seen.
    pub since: Timestamp,
}

/// Every desired pod updated and available (`kubectl rollout status` for a DaemonSet).
pub fn rollout_complete(c: &StatusCounters) -> bool {
    c.updated_number_scheduled >= c.desired_number_scheduled
        && c.number_available >= c.desired_number_scheduled
}

/// The progress after a sync computed `counters` at `now`, given the previous record.
pub fn track(prev: Option<&Progress>, counters: StatusCounters, now: Timestamp) -> Progress {
    let complete = rollout_complete(&counters);
    let progressed = match prev {
        None => true,
        Some(p) => {
            // A rollout that just started (complete before, not now) or just finished.
            p.complete
                || complete
                || counters.desired_number_scheduled != p.counters.desired_number_scheduled
                || counters.updated_number_scheduled > p.counters.updated_number_scheduled
                || counters.number_available > p.counters.number_available
        }
    };
    match prev {
        Some(p) if !progressed => Progress {
            counters: p.counters,
            complete,
            since: p.since,
        },
        _ => Progress {
            counters,
            complete,
            since: now,
        },
    }
}

/// Seconds the rollout has made no progress at `now`; 0 when it is complete.
pub fn stalled_seconds(p: &Progress, now: Timestamp) -> f64 {
    if p.complete {
        return 0.0;
    }
    now.duration_since(p.since).as_secs_f64().max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::ts;

    fn c(desired: i32, updated: i32, available: i32) -> StatusCounters {
        StatusCounters {
            desired_number_scheduled: desired,
            updated_number_scheduled: updated,
            number_available: available,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_rollout_is_never_stalled() {
        let p = track(None, c(3, 3, 3), ts(0));
        assert!(p.complete);
        assert_eq!(stalled_seconds(&p, ts(1000)), 0.0);
        let p = track(Some(&p), c(3, 3, 3), ts(500));
        assert_eq!(stalled_seconds(&p, ts(1000)), 0.0);
    }

    #[test]
    fn the_clock_starts_with_the_rollout_and_restarts_on_progress() {
        let done = track(None, c(3, 3, 3), ts(0));
        // A template change: nothing updated yet.
        let p = track(Some(&done), c(3, 0, 3), ts(100));
        assert!(!p.complete);
        assert_eq!(stalled_seconds(&p, ts(160)), 60.0);
        // The same counters again: no progress, the clock keeps running.
        let p = track(Some(&p), c(3, 0, 2), ts(130));
        assert_eq!(stalled_seconds(&p, ts(160)), 60.0);
        // One pod updated: progress.
        let p = track(Some(&p), c(3, 1, 2), ts(150));
        assert_eq!(stalled_seconds(&p, ts(160)), 10.0);
        // Availability going down is not progress.
        let p = track(Some(&p), c(3, 1, 1), ts(155));
        assert_eq!(stalled_seconds(&p, ts(160)), 10.0);
        let p = track(Some(&p), c(3, 3, 3), ts(200));
        assert_eq!(stalled_seconds(&p, ts(900)), 0.0);
    }

    #[test]
    fn a_change_of_desired_pods_counts_as_progress() {
        let p = track(None, c(3, 0, 0), ts(0));
        let p = track(Some(&p), c(4, 0, 0), ts(50));
        assert_eq!(stalled_seconds(&p, ts(60)), 10.0);
    }
}
