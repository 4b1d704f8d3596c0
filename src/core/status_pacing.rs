//! Status write pacing: whether a sync writes a DaemonSet's status now, or leaves it to a sync at
//! most one interval later (`--status-write-interval`).
//!
//! Upstream writes the status in every sync that computes counters different from the cached ones.
//! How many writes that makes depends on how many syncs run while pods come and go, and so on how
//! long one sync takes: everynode's syncs are shorter than upstream's, so more of them see
//! intermediate counts ("412 ready", "415 ready", …), and at 3000 nodes it wrote about 1.75× as
//! many statuses as upstream for the same work, each one a request, an etcd write and a watch event
//! to every DaemonSet watcher (issue 14).
//!
//! `[difference]` With an interval (1 s by default), a write that changes only the seven counters
//! goes out at most once per interval per DaemonSet; a sync within the interval holds it back and
//! asks to be synced again when the interval ends, and that sync writes the counters as they are
//! then. Nothing is lost, only intermediate counts are skipped; what is written is always what a
//! sync computed from the cache. Never held back:
//! - a write that moves `observedGeneration`: a spec change is acknowledged at once;
//! - the first write after a quiet interval;
//! - the write that settles the DaemonSet (every wanted node has one updated, available pod and no
//!   pod runs where it should not) after one that did not, so the end of a create wave or of a
//!   rollout shows at once and `kubectl rollout status` and `helm --wait` finish as soon as
//!   upstream would let them. A DaemonSet that only goes from settled to settled (nodes joining
//!   one at a time, each pod up before the next node) is paced: that is a wave too.
//!
//! An interval of zero writes every change at once, as upstream (docs/differences.md).
//!
//! Kept by DaemonSet UID; the shell records each write it made and forgets a deleted DaemonSet.
//! A new leader remembers nothing, so its first write of each DaemonSet goes at once.

use crate::core::Timestamp;
use crate::core::status::{StatusCounters, status_to_write};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::jiff::SignedDuration;
use std::collections::HashMap;
use std::time::Duration;

/// The default interval between two counters-only status writes of one DaemonSet.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The desired pods one interval covers: a DaemonSet that wants more waits longer between two
/// counters-only writes, in proportion ([`interval_for`]).
pub const PODS_PER_INTERVAL: i32 = 2500;

/// `[difference]` The interval for a DaemonSet that wants `desired` pods: `base` up to
/// [`PODS_PER_INTERVAL`] pods, in proportion above (5000 pods: twice `base`).
///
/// Why: upstream's sync takes time in proportion to the nodes, so it writes a large DaemonSet's status
/// less often; with a fixed interval everynode wrote more statuses than upstream at 5000 nodes × 5
/// DaemonSets (1845 against 1734, `bench/results/n5000-dropreq`), while at 1000 nodes it wrote a
/// seventh of upstream's. A reader of a 5000-node DaemonSet's counters waits at most 2 s instead of 1.
pub fn interval_for(base: Duration, desired: i32) -> Duration {
    let scale = f64::from(desired.max(0)) / f64::from(PODS_PER_INTERVAL);
    base.mul_f64(scale.max(1.0))
}

/// What a sync does with the status it computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    /// The cached status already says it: no request.
    Unchanged,
    /// Write it now.
    Now,
    /// Hold it back: sync again after this long, and write then.
    After(Duration),
}

/// The last status write of each DaemonSet (by UID): when, the observedGeneration it left, and
/// whether it said settled.
#[derive(Debug, Clone, Copy)]
struct LastWrite {
    at: Timestamp,
    observed_generation: i64,
    settled: bool,
}

/// The last status write of each DaemonSet (by UID) and the interval between two of them.
#[derive(Debug, Default)]
pub struct StatusPacer {
    interval: Duration,
    last_write: HashMap<String, LastWrite>,
}

impl StatusPacer {
    /// A pacer with `interval` between two counters-only writes (zero: upstream's every change).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_write: HashMap::new(),
        }
    }

    /// What the sync of `ds` (UID `uid`) at `now` does with `counters` (and observedGeneration when
    /// `update_observed_generation`): see the module.
    pub fn decide(
        &self,
        uid: &str,
        ds: &DaemonSet,
        counters: &StatusCounters,
        update_observed_generation: bool,
        now: Timestamp,
    ) -> StatusWrite {
        if status_to_write(ds, counters, update_observed_generation).is_none() {
            return StatusWrite::Unchanged;
        }
        if self.interval.is_zero() {
            return StatusWrite::Now;
        }
        let last = self.last_write.get(uid);
        if moves_observed_generation(ds, update_observed_generation, last) {
            return StatusWrite::Now;
        }
        let Some(last) = last else {
            return StatusWrite::Now;
        };
        if is_settled(counters) && !last.settled {
            return StatusWrite::Now;
        }
        let interval = interval_for(self.interval, counters.desired_number_scheduled);
        match remaining(interval, last.at, now) {
            None => StatusWrite::Now,
            Some(wait) => StatusWrite::After(wait),
        }
    }

    /// Records the write of `counters` (and observedGeneration when `update_observed_generation`)
    /// for `ds` (UID `uid`) made at `now`.
    pub fn written(
        &mut self,
        uid: &str,
        ds: &DaemonSet,
        counters: &StatusCounters,
        update_observed_generation: bool,
        now: Timestamp,
    ) {
        if !self.interval.is_zero() {
            let cached = cached_observed_generation(ds);
            let observed_generation = if update_observed_generation {
                cached.max(ds.metadata.generation.unwrap_or(0))
            } else {
                cached
            };
            let last = LastWrite {
                at: now,
                observed_generation,
                settled: is_settled(counters),
            };
            self.last_write.insert(uid.to_string(), last);
        }
    }

    /// Forgets a deleted DaemonSet.
    pub fn forget(&mut self, uid: &str) {
        self.last_write.remove(uid);
    }

    /// Keeps only the DaemonSets for which `keep` holds (those deleted while a watch was down).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.last_write.retain(|uid, _| keep(uid));
    }
}

/// Whether the write sets `observedGeneration` to a generation the status has not observed yet:
/// neither in the cache nor by the last write, which the cache may not have seen yet (the sync
/// right after a write reads the status from before it).
fn moves_observed_generation(
    ds: &DaemonSet,
    update_observed_generation: bool,
    last: Option<&LastWrite>,
) -> bool {
    let observed = cached_observed_generation(ds).max(last.map_or(0, |l| l.observed_generation));
    update_observed_generation && ds.metadata.generation.unwrap_or(0) > observed
}

/// The observedGeneration of the cached status (0 when it has none).
fn cached_observed_generation(ds: &DaemonSet) -> i64 {
    ds.status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0)
}

/// Whether the counters say the DaemonSet is settled: every wanted node has exactly the updated,
/// available pod it should, and no pod runs where it should not.
pub fn is_settled(c: &StatusCounters) -> bool {
    let d = c.desired_number_scheduled;
    c.current_number_scheduled == d
        && c.updated_number_scheduled == d
        && c.number_ready == d
        && c.number_available == d
        && c.number_unavailable == 0
        && c.number_misscheduled == 0
}

/// How much of `interval` since `last` is still to run at `now`; `None` when it has run out. A clock
/// that went back (`now` before `last`) waits one whole interval, never longer.
pub(crate) fn remaining(interval: Duration, last: Timestamp, now: Timestamp) -> Option<Duration> {
    let elapsed = now.duration_since(last);
    if elapsed < SignedDuration::ZERO {
        return Some(interval);
    }
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::MAX);
    interval.checked_sub(elapsed).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetStatus;

    const UID: &str = "ds-uid";

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).expect("a valid timestamp")
    }

    fn counters(desired: i32, ready: i32) -> StatusCounters {
        StatusCounters {
            desired_number_scheduled: desired,
            current_number_scheduled: desired,
            number_misscheduled: 0,
            number_ready: ready,
            updated_number_scheduled: desired,
            number_available: ready,
            number_unavailable: desired - ready,
        }
    }

    /// A DaemonSet of `generation` whose cached status observed `observed` with `cached` counters.
    fn ds(generation: i64, observed: i64, cached: StatusCounters) -> DaemonSet {
        let mut ds = DaemonSet::default();
        ds.metadata.generation = Some(generation);
        let mut status = DaemonSetStatus::default();
        cached.apply_to(&mut status, Some(observed));
        ds.status = Some(status);
        ds
    }

    /// A pacer that wrote a status (not settled) of `UID` at `ms`.
    fn pacer_written_at(ms: i64) -> StatusPacer {
        let mut p = StatusPacer::new(DEFAULT_INTERVAL);
        p.written(
            UID,
            &ds(1, 1, counters(10, 3)),
            &counters(10, 4),
            true,
            t(ms),
        );
        p
    }

    #[test]
    fn unchanged_counters_need_no_write_whatever_the_pacing() {
        let d = ds(1, 1, counters(10, 4));
        for p in [StatusPacer::new(Duration::ZERO), pacer_written_at(0)] {
            assert_eq!(
                p.decide(UID, &d, &counters(10, 4), true, t(10)),
                StatusWrite::Unchanged
            );
        }
    }

    #[test]
    fn a_counters_only_change_within_the_interval_waits_for_the_rest_of_it() {
        let p = pacer_written_at(0);
        let d = ds(1, 1, counters(10, 4));
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), true, t(300)),
            StatusWrite::After(Duration::from_millis(700))
        );
        // The status-only path (no observedGeneration update) is paced the same way.
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), false, t(999)),
            StatusWrite::After(Duration::from_millis(1))
        );
    }

    #[test]
    fn once_the_interval_ran_out_the_write_goes_at_once() {
        let p = pacer_written_at(0);
        let d = ds(1, 1, counters(10, 4));
        for ms in [1000, 1001, 60_000] {
            assert_eq!(
                p.decide(UID, &d, &counters(10, 5), true, t(ms)),
                StatusWrite::Now,
                "{ms} ms after the last write"
            );
        }
    }

    #[test]
    fn a_daemonset_of_more_than_2500_pods_waits_longer_in_proportion() {
        assert_eq!(interval_for(DEFAULT_INTERVAL, 0), DEFAULT_INTERVAL);
        assert_eq!(interval_for(DEFAULT_INTERVAL, -3), DEFAULT_INTERVAL);
        assert_eq!(interval_for(DEFAULT_INTERVAL, 2500), DEFAULT_INTERVAL);
        assert_eq!(
            interval_for(DEFAULT_INTERVAL, 3750),
            Duration::from_millis(1500)
        );
        assert_eq!(interval_for(DEFAULT_INTERVAL, 5000), Duration::from_secs(2));
        assert_eq!(interval_for(Duration::ZERO, 5000), Duration::ZERO);
        // A pacer that wrote a 5000-pod DaemonSet's status at 0 ms holds the next change until 2 s.
        let mut p = StatusPacer::new(DEFAULT_INTERVAL);
        p.written(
            UID,
            &ds(1, 1, counters(5000, 3)),
            &counters(5000, 4),
            true,
            t(0),
        );
        let d = ds(1, 1, counters(5000, 4));
        assert_eq!(
            p.decide(UID, &d, &counters(5000, 5), true, t(1500)),
            StatusWrite::After(Duration::from_millis(500))
        );
        assert_eq!(
            p.decide(UID, &d, &counters(5000, 5), true, t(2000)),
            StatusWrite::Now
        );
    }

    #[test]
    fn the_first_write_of_a_daemonset_goes_at_once() {
        let p = pacer_written_at(0);
        let d = ds(1, 1, counters(10, 4));
        assert_eq!(
            p.decide("another-uid", &d, &counters(10, 5), true, t(10)),
            StatusWrite::Now
        );
    }

    #[test]
    fn a_new_generation_is_acknowledged_at_once() {
        let p = pacer_written_at(0);
        let d = ds(2, 1, counters(10, 4));
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), true, t(10)),
            StatusWrite::Now
        );
        // The status-only path does not move observedGeneration: its counters are paced.
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), false, t(10)),
            StatusWrite::After(Duration::from_millis(990))
        );
    }

    #[test]
    fn a_generation_already_written_is_not_acknowledged_again_from_a_stale_cache() {
        // The write at 0 ms acknowledged generation 2; the sync 60 ms later still reads the cached
        // status from before that write (observedGeneration 1): its counters are paced.
        let mut p = StatusPacer::new(DEFAULT_INTERVAL);
        let stale = ds(2, 1, counters(10, 3));
        p.written(UID, &stale, &counters(10, 4), true, t(0));
        assert_eq!(
            p.decide(UID, &stale, &counters(10, 5), true, t(60)),
            StatusWrite::After(Duration::from_millis(940))
        );
        // A status-only write leaves the cached observedGeneration: generation 3 still goes at once.
        let mut p = StatusPacer::new(DEFAULT_INTERVAL);
        p.written(
            UID,
            &ds(3, 2, counters(10, 3)),
            &counters(10, 4),
            false,
            t(0),
        );
        assert_eq!(
            p.decide(
                UID,
                &ds(3, 2, counters(10, 4)),
                &counters(10, 5),
                true,
                t(60)
            ),
            StatusWrite::Now
        );
    }

    #[test]
    fn the_write_that_settles_the_daemonset_goes_at_once() {
        let p = pacer_written_at(0);
        let d = ds(1, 1, counters(10, 9));
        assert_eq!(
            p.decide(UID, &d, &counters(10, 10), true, t(10)),
            StatusWrite::Now
        );
        // Settled but for one misscheduled pod: paced.
        let mut misscheduled = counters(10, 10);
        misscheduled.number_misscheduled = 1;
        assert_eq!(
            p.decide(UID, &d, &misscheduled, true, t(10)),
            StatusWrite::After(Duration::from_millis(990))
        );
        // Every pod ready but one still on the old revision: paced.
        let mut old = counters(10, 10);
        old.updated_number_scheduled = 9;
        assert_eq!(
            p.decide(UID, &d, &old, true, t(10)),
            StatusWrite::After(Duration::from_millis(990))
        );
    }

    #[test]
    fn settled_to_settled_is_paced() {
        // Nodes joining one at a time, each pod up before the next node: 10 of 10, then 11 of 11.
        let mut p = StatusPacer::new(DEFAULT_INTERVAL);
        p.written(
            UID,
            &ds(1, 1, counters(10, 9)),
            &counters(10, 10),
            true,
            t(0),
        );
        let d = ds(1, 1, counters(10, 10));
        assert_eq!(
            p.decide(UID, &d, &counters(11, 11), true, t(10)),
            StatusWrite::After(Duration::from_millis(990))
        );
        // In between, an unsettled count was held back, never written: still paced.
        assert_eq!(
            p.decide(UID, &d, &counters(11, 10), true, t(5)),
            StatusWrite::After(Duration::from_millis(995))
        );
    }

    #[test]
    fn a_zero_interval_writes_every_change_at_once_as_upstream() {
        let mut p = StatusPacer::new(Duration::ZERO);
        p.written(
            UID,
            &ds(1, 1, counters(10, 3)),
            &counters(10, 4),
            true,
            t(0),
        );
        let d = ds(1, 1, counters(10, 4));
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), true, t(1)),
            StatusWrite::Now
        );
    }

    #[test]
    fn a_clock_that_went_back_waits_one_interval_at_most() {
        let p = pacer_written_at(5000);
        let d = ds(1, 1, counters(10, 4));
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), true, t(0)),
            StatusWrite::After(DEFAULT_INTERVAL)
        );
    }

    #[test]
    fn a_forgotten_daemonset_is_written_at_once() {
        let mut p = pacer_written_at(0);
        p.forget(UID);
        let d = ds(1, 1, counters(10, 4));
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), true, t(10)),
            StatusWrite::Now
        );
        let mut p = pacer_written_at(0);
        p.retain(|uid| uid != UID);
        assert_eq!(
            p.decide(UID, &d, &counters(10, 5), true, t(10)),
            StatusWrite::Now
        );
    }

    /// Over any sequence of syncs, the paced writes of counters alone are at least one interval
    /// apart, and every change is written at the latest one interval after it was computed (by
    /// the sync the held-back write asked for).
    #[test]
    fn writes_are_an_interval_apart_and_none_is_held_longer_than_one() {
        let d = ds(1, 1, counters(100, 0));
        let mut p = StatusPacer::new(DEFAULT_INTERVAL);
        let mut writes: Vec<i64> = Vec::new();
        let mut held_until: Option<i64> = None;
        // Syncs every 7 ms for 5 s, each seeing one more ready pod (never settled).
        let mut ms = 0;
        let mut ready = 0;
        while ms < 5000 {
            ready = (ready + 1) % 99;
            // A sync the held-back write asked for comes at its time.
            if let Some(h) = held_until.filter(|&h| h <= ms) {
                assert!(
                    matches!(
                        p.decide(UID, &d, &counters(100, ready), true, t(h)),
                        StatusWrite::Now
                    ),
                    "the requeued sync at {h} ms writes"
                );
                p.written(UID, &d, &counters(100, ready), true, t(h));
                writes.push(h);
                held_until = None;
            }
            match p.decide(UID, &d, &counters(100, ready), true, t(ms)) {
                StatusWrite::Now => {
                    p.written(UID, &d, &counters(100, ready), true, t(ms));
                    writes.push(ms);
                }
                StatusWrite::After(wait) => {
                    let at = ms + i64::try_from(wait.as_millis()).expect("small");
                    assert!(at - writes.last().copied().unwrap_or(0) <= 1000);
                    held_until = Some(held_until.map_or(at, |h| h.min(at)));
                }
                StatusWrite::Unchanged => {}
            }
            ms += 7;
        }
        assert!(writes.len() >= 5, "{writes:?}");
        for pair in writes.windows(2) {
            assert!(pair[1] - pair[0] >= 1000, "writes {pair:?} closer than 1 s");
        }
    }
}
