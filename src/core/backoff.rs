//! Failed-pod backoff: how long to wait before deleting the next failed daemon pod on a node
//! (upstream `failedPodsBackoff`, a client-go `flowcontrol.Backoff` without jitter, §3.4).
//!
//! Entries are keyed by `<ds.uid>/<ds.status.observedGeneration>/<node>`. The first delay is the
//! initial duration, each further step doubles it up to the maximum; an entry idle for more than
//! twice the maximum starts over, and [`FailedPodBackoff::gc`] drops such entries. All time comes in
//! as `now`.
//!
//! Written by hand: the kept backoff crates (backoff, backon) produce retry sequences for one
//! operation; none keeps a per-key delay that starts over after an idle period or answers "in backoff
//! since the last update" as client-go's `flowcontrol.Backoff` does, which decides when a failed pod
//! may be deleted again (upstream catalogue #34).

use crate::core::Timestamp;
use crate::core::labels::{FAILED_POD_BACKOFF_INITIAL_SECONDS, FAILED_POD_BACKOFF_MAX_SECONDS};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::jiff::SignedDuration;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    backoff: Duration,
    last_update: Timestamp,
}

/// Per-key exponential backoff with explicit time.
#[derive(Debug, Clone)]
pub struct FailedPodBackoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for FailedPodBackoff {
    /// Initial 1 s, maximum 15 min, as kube-controller-manager configures it.
    fn default() -> Self {
        Self::new(
            Duration::from_secs(FAILED_POD_BACKOFF_INITIAL_SECONDS),
            Duration::from_secs(FAILED_POD_BACKOFF_MAX_SECONDS),
        )
    }
}

/// `now − since` as a signed duration.
fn elapsed(now: Timestamp, since: Timestamp) -> SignedDuration {
    now.duration_since(since)
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// The backoff key of `ds`'s failed pods on `node_name` (upstream `failedPodsBackoffKey`).
pub fn failed_pods_backoff_key(ds: &DaemonSet, node_name: &str) -> String {
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let observed = ds
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    format!("{uid}/{observed}/{node_name}")
}

impl FailedPodBackoff {
    /// A backoff starting at `initial` and doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// The maximum delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Idle for more than twice the maximum at `now` (upstream `hasExpired`).
    fn expired(&self, entry: &Entry, now: Timestamp) -> bool {
        elapsed(now, entry.last_update) > signed(self.max.saturating_mul(2))
    }

    /// The current delay of `key` (zero when unknown).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(Duration::ZERO, |e| e.backoff)
    }

    /// Advances `key` at `now`: a new or expired entry starts at the initial delay, otherwise the
    /// delay doubles, capped at the maximum. The entry's last update becomes `now`.
    pub fn next(&mut self, key: &str, now: Timestamp) {
        let backoff = match self.entries.get(key) {
            Some(entry) if !self.expired(entry, now) => {
                entry.backoff.saturating_mul(2).min(self.max)
            }
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// Whether `now` is still within the current delay of `key` counted from its last update
    /// (upstream `IsInBackOffSinceUpdate`). Unknown and expired entries are not in backoff.
    pub fn is_in_backoff_since_update(&self, key: &str, now: Timestamp) -> bool {
        match self.entries.get(key) {
            None => false,
            Some(entry) if self.expired(entry, now) => false,
            Some(entry) => elapsed(now, entry.last_update) < signed(entry.backoff),
        }
    }

    /// When the backoff of `key` ends, if `now` is within it (see
    /// [`FailedPodBackoff::is_in_backoff_since_update`]).
    pub fn until(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        if !self.is_in_backoff_since_update(key, now) {
            return None;
        }
        let entry = self.entries.get(key)?;
        entry.last_update.checked_add(signed(entry.backoff)).ok()
    }

    /// Forgets `key`.
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops every entry idle for more than twice the maximum at `now` (run every minute).
    pub fn gc(&mut self, now: Timestamp) {
        let max2 = signed(self.max.saturating_mul(2));
        self.entries
            .retain(|_, e| elapsed(now, e.last_update) <= max2);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{daemonset, ts};
    use k8s_openapi::api::apps::v1::DaemonSetStatus;

    const KEY: &str = "ds-uid/0/node-0";

    fn at(secs: i64, nanos: i64) -> Timestamp {
        ts(secs)
            .checked_add(SignedDuration::from_nanos(nanos))
            .unwrap()
    }

    #[test]
    fn key_is_uid_observed_generation_node() {
        let mut ds = daemonset("foo");
        assert_eq!(failed_pods_backoff_key(&ds, "node-0"), "ds-uid/0/node-0");
        ds.status = Some(DaemonSetStatus {
            observed_generation: Some(7),
            ..Default::default()
        });
        assert_eq!(failed_pods_backoff_key(&ds, "node-3"), "ds-uid/7/node-3");
    }

    #[test]
    fn unknown_key_has_no_delay_and_is_not_in_backoff() {
        let b = FailedPodBackoff::default();
        assert_eq!(b.get(KEY), Duration::ZERO);
        assert!(!b.is_in_backoff_since_update(KEY, ts(0)));
        assert!(b.is_empty());
    }

    #[test]
    fn first_step_is_initial_then_doubles_up_to_max() {
        let mut b = FailedPodBackoff::default();
        let mut seen = Vec::new();
        for now in 0..13 {
            b.next(KEY, ts(now));
            seen.push(b.get(KEY).as_secs());
        }
        assert_eq!(
            seen,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
        );
    }

    #[test]
    fn in_backoff_until_exactly_the_delay_has_passed() {
        let mut b = FailedPodBackoff::default();
        b.next(KEY, ts(10));
        b.next(KEY, ts(10)); // 2 s
        assert!(b.is_in_backoff_since_update(KEY, ts(10)));
        assert!(b.is_in_backoff_since_update(KEY, at(11, 999_999_999)));
        assert!(!b.is_in_backoff_since_update(KEY, ts(12)));
        assert!(!b.is_in_backoff_since_update(KEY, ts(13)));
    }

    #[test]
    fn idle_for_more_than_twice_max_restarts_at_initial() {
        let mut b = FailedPodBackoff::default();
        for _ in 0..5 {
            b.next(KEY, ts(0));
        }
        assert_eq!(b.get(KEY), Duration::from_secs(16));
        // Exactly 2×max idle: not yet expired, keeps doubling.
        b.next(KEY, ts(1800));
        assert_eq!(b.get(KEY), Duration::from_secs(32));
        // More than 2×max idle: starts over.
        b.next(KEY, at(3600, 1));
        assert_eq!(b.get(KEY), Duration::from_secs(1));
    }

    #[test]
    fn expired_entry_is_not_in_backoff() {
        let mut b = FailedPodBackoff::new(Duration::from_secs(3600), Duration::from_secs(10));
        // An initial larger than max is kept as-is on the first step (as upstream).
        b.next(KEY, ts(0));
        assert_eq!(b.get(KEY), Duration::from_secs(3600));
        assert!(b.is_in_backoff_since_update(KEY, ts(20)));
        assert!(
            !b.is_in_backoff_since_update(KEY, ts(21)),
            "idle > 2×max: expired"
        );
    }

    #[test]
    fn gc_drops_only_entries_idle_more_than_twice_max() {
        let mut b = FailedPodBackoff::default();
        b.next("a", ts(0));
        b.next("b", ts(100));
        b.gc(ts(1800));
        assert_eq!(b.len(), 2);
        b.gc(ts(1801));
        assert_eq!(b.len(), 1);
        assert_eq!(b.get("a"), Duration::ZERO);
        assert_eq!(b.get("b"), Duration::from_secs(1));
    }

    #[test]
    fn reset_forgets_a_key() {
        let mut b = FailedPodBackoff::default();
        b.next(KEY, ts(0));
        b.next("other", ts(0));
        b.reset(KEY);
        assert_eq!(b.get(KEY), Duration::ZERO);
        assert_eq!(b.get("other"), Duration::from_secs(1));
        assert_eq!(b.max(), Duration::from_secs(900));
    }
}
