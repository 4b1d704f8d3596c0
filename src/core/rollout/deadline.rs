//! The progress deadline's clock (design §2.3 "Progress deadline"), as Deployments'
//! `progressDeadlineSeconds`.
//!
//! The clock runs only while the rollout is `running` (phase Progressing or Failed). It restarts on a new
//! update revision, on leaving a hold (the previous phase was neither Progressing nor Failed), and when the
//! updated or available nodes rise above their high-water mark. Only gains count: a pod that
//! flaps between available and not keeps nothing alive (the rule of `rollout_status::observe`).
//! While the clock does not run, the last progress time is kept, so a held rollout writes no
//! new status on every sync.

use std::time::Duration;

use k8s_openapi::jiff::SignedDuration;

use crate::api::daemonset_rollout::HighWater;
use crate::api::{DaemonSetRolloutStatus, Phase};
use crate::core::Timestamp;

/// The clock after this sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    /// When the rollout last made progress (`status.lastProgressTime`), in whole seconds.
    pub last_progress: Timestamp,
    /// The most updated and available nodes seen for the update revision (`status.highWater`).
    pub high_water: HighWater,
    /// No progress for the deadline while running: `Progressing=False/ProgressDeadlineExceeded`.
    pub exceeded: bool,
    /// When the deadline will pass, if the clock runs and it has not yet.
    pub requeue_after: Option<Duration>,
}

/// The clock for update revision `hash` with `updated` and `available` nodes now.
pub fn progress_clock(
    previous: &DaemonSetRolloutStatus,
    hash: &str,
    updated: i32,
    available: i32,
    running: bool,
    deadline_seconds: i64,
    now: Timestamp,
) -> Clock {
    let now = whole_seconds(now);
    let same_revision = previous.high_water.as_ref().filter(|h| h.revision == hash);
    let high_water = HighWater {
        revision: hash.to_string(),
        updated: same_revision.map_or(updated, |h| h.updated.max(updated)),
        available: same_revision.map_or(available, |h| h.available.max(available)),
    };
    let gained = same_revision.is_some_and(|h| updated > h.updated || available > h.available);
    // Failed is no hold: the clock runs through it (see `plan`), so entering it resets nothing.
    let left_hold = !matches!(previous.phase, Some(Phase::Progressing | Phase::Failed));
    let last = previous.last_progress_time.as_ref().map(|t| t.0);
    let last_progress = match last {
        Some(t) if same_revision.is_some() && !gained && !(running && left_hold) => t,
        _ => now,
    };
    let deadline = last_progress
        .checked_add(SignedDuration::from_secs(deadline_seconds))
        .ok();
    let exceeded = running && deadline.is_some_and(|d| d <= now);
    let requeue_after = match deadline {
        Some(d) if running && !exceeded => Duration::try_from(d.duration_since(now)).ok(),
        _ => None,
    };
    Clock {
        last_progress,
        high_water,
        exceeded,
        requeue_after,
    }
}

/// `t` without its fraction of a second, as `metav1.Time` stores it, so the clock read back
/// from the API server equals the one kept in memory.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{time, ts};
    use proptest::prelude::*;

    const DEADLINE: i64 = 60;

    fn previous(clock: &Clock, phase: Phase) -> DaemonSetRolloutStatus {
        DaemonSetRolloutStatus {
            phase: Some(phase),
            last_progress_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                clock.last_progress,
            )),
            high_water: Some(clock.high_water.clone()),
            ..Default::default()
        }
    }

    fn hw(revision: &str, updated: i32, available: i32) -> HighWater {
        HighWater {
            revision: revision.into(),
            updated,
            available,
        }
    }

    fn progressing(last: i64, high_water: HighWater) -> DaemonSetRolloutStatus {
        DaemonSetRolloutStatus {
            phase: Some(Phase::Progressing),
            last_progress_time: Some(time(last)),
            high_water: Some(high_water),
            ..Default::default()
        }
    }

    #[test]
    fn no_progress_for_the_deadline_exceeds_it() {
        let prev = progressing(100, hw("new", 2, 1));
        let c = progress_clock(&prev, "new", 2, 1, true, DEADLINE, ts(159));
        assert_eq!(
            (c.last_progress, c.exceeded, c.requeue_after),
            (ts(100), false, Some(Duration::from_secs(1)))
        );
        let c = progress_clock(&prev, "new", 2, 1, true, DEADLINE, ts(160));
        assert_eq!(
            (c.last_progress, c.exceeded, c.requeue_after),
            (ts(100), true, None)
        );
    }

    #[test]
    fn a_gain_a_new_revision_or_leaving_a_hold_restarts_the_clock() {
        let prev = progressing(100, hw("new", 2, 1));
        let at = |p: &DaemonSetRolloutStatus, h, u, a| {
            progress_clock(p, h, u, a, true, DEADLINE, ts(500))
        };
        assert_eq!(at(&prev, "new", 3, 1).last_progress, ts(500));
        assert_eq!(at(&prev, "new", 2, 2).last_progress, ts(500));
        assert_eq!(at(&prev, "newer", 0, 0).high_water, hw("newer", 0, 0));
        assert_eq!(at(&prev, "newer", 0, 0).last_progress, ts(500));
        let paused = DaemonSetRolloutStatus {
            phase: Some(Phase::Paused),
            ..prev.clone()
        };
        assert_eq!(at(&paused, "new", 2, 1).last_progress, ts(500));
        assert!(!at(&paused, "new", 2, 1).exceeded);
        // A loss is no progress, and the high-water mark keeps the most seen.
        let c = at(&prev, "new", 1, 0);
        assert_eq!(
            (c.last_progress, c.high_water.clone(), c.exceeded),
            (ts(100), hw("new", 2, 1), true)
        );
    }

    #[test]
    fn a_held_rollout_keeps_its_clock_and_never_exceeds() {
        let prev = DaemonSetRolloutStatus {
            phase: Some(Phase::Baking),
            ..progressing(100, hw("new", 2, 2))
        };
        let c = progress_clock(&prev, "new", 2, 2, false, DEADLINE, ts(1000));
        assert_eq!(
            (c.last_progress, c.exceeded, c.requeue_after),
            (ts(100), false, None)
        );
    }

    #[test]
    fn the_clock_keeps_whole_seconds() {
        let now = Timestamp::new(100, 700_000_000).unwrap_or_else(|e| panic!("{e}"));
        let c = progress_clock(
            &DaemonSetRolloutStatus::default(),
            "new",
            0,
            0,
            true,
            DEADLINE,
            now,
        );
        assert_eq!(c.last_progress, ts(100));
        assert_eq!(c.requeue_after, Some(Duration::from_secs(60)));
    }

    proptest! {
        /// Only gains count: while running on one revision, the clock moves exactly when updated or
        /// available rises above every earlier value, so a flapping pod keeps nothing alive.
        #[test]
        fn only_gains_count(counts in proptest::collection::vec((0i32..6, 0i32..6, 1i64..40), 1..40)) {
            let mut clock = progress_clock(&DaemonSetRolloutStatus::default(), "new", 0, 0, true, DEADLINE, ts(0));
            let (mut max_u, mut max_a, mut now) = (0, 0, 0);
            for (updated, available, step) in counts {
                now += step;
                let prev = previous(&clock, Phase::Progressing);
                let next = progress_clock(&prev, "new", updated, available, true, DEADLINE, ts(now));
                let gain = updated > max_u || available > max_a;
                max_u = max_u.max(updated);
                max_a = max_a.max(available);
                if gain {
                    prop_assert_eq!(next.last_progress, ts(now));
                } else {
                    prop_assert_eq!(next.last_progress, clock.last_progress);
                }
                prop_assert_eq!(next.high_water.clone(), hw("new", max_u, max_a));
                prop_assert_eq!(next.exceeded, next.last_progress.as_second() + DEADLINE <= now);
                clock = next;
            }
        }
    }
}
