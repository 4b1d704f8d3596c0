//! Expectations: creates and deletes a DaemonSet issued but has not yet observed, per DaemonSet key
//! (upstream `ControllerExpectations`, §2.1).
//!
//! One record per key `namespace/name`: outstanding adds, outstanding deletes and the time the record
//! was set. The shell wraps an [`Expectations`] in a mutex; the event handlers lower the counters and
//! every sync asks [`Expectations::satisfied`] before acting.
//!
//! [difference] Deletes are tracked by pod name ([`Expectations::expect`]), as upstream's ReplicaSet
//! controller does (`UIDTrackingControllerExpectations`) and its DaemonSet controller does not. A
//! gracefully deleted pod is observed twice (its update with a deletionTimestamp, then its removal);
//! with counts alone the second observation can arrive after the next sync has set new expectations
//! and lower them for a delete that has not happened, so a sync acts on a cache that does not yet show
//! its own deletes: it deletes the same pods again (404) or creates a second pod on a node. Measured at
//! 1000 nodes without a client-side limit: 9 such deletes and 2 such creates in one rollout.

use crate::core::Timestamp;
use crate::core::labels::EXPECTATIONS_TIMEOUT_SECONDS;
use k8s_openapi::jiff::SignedDuration;
use std::collections::{HashMap, HashSet};

/// The outstanding counts of one key. Counts may go negative (an observation without a matching
/// expectation, e.g. a pod deleted gracefully is observed twice); negative counts are satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outstanding {
    /// Creates not yet observed.
    pub add: i64,
    /// Deletes not yet observed.
    pub del: i64,
    /// When the record was last set.
    pub since: Timestamp,
}

impl Outstanding {
    /// Both counts are ≤ 0 (upstream `Fulfilled`).
    pub fn fulfilled(&self) -> bool {
        self.add <= 0 && self.del <= 0
    }

    /// Older than the expectations timeout (5 minutes, strictly) at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        now.duration_since(self.since) > SignedDuration::from_secs(EXPECTATIONS_TIMEOUT_SECONDS)
    }
}

/// Expectations of all DaemonSets, keyed by `namespace/name`. Not UID-aware: delete the record when
/// the DaemonSet is deleted, not found, or recreated with another UID.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    records: HashMap<String, Outstanding>,
    /// Per key set by [`Expectations::expect`]: the pods whose deletion is still outstanding.
    deleting: HashMap<String, HashSet<String>>,
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Expectations {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overwrites the record of `key` with `add` creates and `del` deletes, stamped `now`
    /// (upstream `SetExpectations`; called on every manage pass, even with 0/0).
    pub fn set(&mut self, key: &str, add: usize, del: usize, now: Timestamp) {
        self.deleting.remove(key);
        self.records.insert(
            key.to_string(),
            Outstanding {
                add: count(add),
                del: count(del),
                since: now,
            },
        );
    }

    /// [`Expectations::set`] with the names of the pods to delete: from now until the next set, only
    /// the first observed deletion of each of those pods lowers the outstanding deletes.
    pub fn expect(&mut self, key: &str, add: usize, deleting: &[String], now: Timestamp) {
        let names: HashSet<String> = deleting.iter().cloned().collect();
        self.set(key, add, names.len(), now);
        self.deleting.insert(key.to_string(), names);
    }

    /// One create was observed (pod add event) or failed: add − 1. No-op without a record.
    pub fn creation_observed(&mut self, key: &str) {
        self.lower(key, 1, 0);
    }

    /// The delete of `pod` was observed (pod delete, or update/add with deletionTimestamp) or failed:
    /// del − 1. No-op without a record, and, for a record set by [`Expectations::expect`], unless
    /// `pod` is one of its pods not yet observed.
    pub fn deletion_observed(&mut self, key: &str, pod: &str) {
        if let Some(pending) = self.deleting.get_mut(key)
            && !pending.remove(pod)
        {
            return;
        }
        self.lower(key, 0, 1);
    }

    /// `n` creates will not happen (skipped by slow start): add − n. No-op without a record.
    pub fn lower_adds(&mut self, key: &str, n: usize) {
        self.lower(key, count(n), 0);
    }

    fn lower(&mut self, key: &str, add: i64, del: i64) {
        // Upstream lowers without touching the timestamp.
        if let Some(record) = self.records.get_mut(key) {
            record.add = record.add.saturating_sub(add);
            record.del = record.del.saturating_sub(del);
        }
    }

    /// Whether a sync of `key` may act: no record, or both counts ≤ 0, or the record is older than
    /// 5 minutes at `now`.
    pub fn satisfied(&self, key: &str, now: Timestamp) -> bool {
        match self.records.get(key) {
            None => true,
            Some(record) => record.fulfilled() || record.expired(now),
        }
    }

    /// Forgets `key` (DaemonSet deleted, not found or recreated).
    pub fn delete(&mut self, key: &str) {
        self.records.remove(key);
        self.deleting.remove(key);
    }

    /// The record of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Outstanding> {
        self.records.get(key).copied()
    }

    /// Every record, in no particular order (for metrics).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Outstanding)> {
        self.records.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Sum of positive outstanding adds and deletes over all records that are neither fulfilled nor
    /// expired at `now` — what the controller is waiting for (for metrics).
    pub fn waiting(&self, now: Timestamp) -> (i64, i64) {
        self.records
            .values()
            .filter(|r| !r.fulfilled() && !r.expired(now))
            .fold((0, 0), |(a, d), r| (a + r.add.max(0), d + r.del.max(0)))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::ts;

    const KEY: &str = "default/foo";

    #[test]
    fn no_record_is_satisfied() {
        let exp = Expectations::new();
        assert!(exp.satisfied(KEY, ts(0)));
        assert_eq!(exp.get(KEY), None);
        assert!(exp.is_empty());
    }

    #[test]
    fn set_zero_zero_is_satisfied_but_recorded() {
        let mut exp = Expectations::new();
        exp.set(KEY, 0, 0, ts(10));
        assert!(exp.satisfied(KEY, ts(10)));
        assert_eq!(
            exp.get(KEY),
            Some(Outstanding {
                add: 0,
                del: 0,
                since: ts(10)
            })
        );
        assert_eq!(exp.len(), 1);
    }

    #[test]
    fn outstanding_adds_block_until_observed() {
        let mut exp = Expectations::new();
        exp.set(KEY, 2, 0, ts(0));
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.creation_observed(KEY);
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.creation_observed(KEY);
        assert!(exp.satisfied(KEY, ts(1)));
    }

    #[test]
    fn outstanding_deletes_block_until_observed() {
        let mut exp = Expectations::new();
        exp.set(KEY, 0, 1, ts(0));
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.creation_observed(KEY);
        assert!(
            !exp.satisfied(KEY, ts(1)),
            "an add observation does not satisfy a delete"
        );
        exp.deletion_observed(KEY, "p");
        assert!(exp.satisfied(KEY, ts(1)));
    }

    #[test]
    fn both_counts_must_be_observed() {
        let mut exp = Expectations::new();
        exp.set(KEY, 1, 1, ts(0));
        exp.deletion_observed(KEY, "p");
        assert!(!exp.satisfied(KEY, ts(0)));
        exp.creation_observed(KEY);
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn negative_counts_are_satisfied() {
        // A gracefully deleted pod is observed deleted twice.
        let mut exp = Expectations::new();
        exp.set(KEY, 0, 1, ts(0));
        exp.deletion_observed(KEY, "p");
        exp.deletion_observed(KEY, "p");
        assert_eq!(exp.get(KEY).map(|o| o.del), Some(-1));
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn set_overwrites_the_record_and_timestamp() {
        let mut exp = Expectations::new();
        exp.set(KEY, 5, 0, ts(0));
        exp.creation_observed(KEY);
        exp.set(KEY, 1, 2, ts(30));
        assert_eq!(
            exp.get(KEY),
            Some(Outstanding {
                add: 1,
                del: 2,
                since: ts(30)
            })
        );
    }

    #[test]
    fn expire_strictly_after_five_minutes() {
        let mut exp = Expectations::new();
        exp.set(KEY, 1, 0, ts(100));
        assert!(!exp.satisfied(KEY, ts(100 + 299)));
        assert!(
            !exp.satisfied(KEY, ts(100 + 300)),
            "exactly 5 minutes is not yet expired"
        );
        let just_after = ts(400).checked_add(SignedDuration::from_nanos(1)).unwrap();
        assert!(exp.satisfied(KEY, just_after));
    }

    #[test]
    fn observing_does_not_refresh_the_timestamp() {
        let mut exp = Expectations::new();
        exp.set(KEY, 3, 0, ts(0));
        exp.creation_observed(KEY);
        exp.lower_adds(KEY, 0);
        assert_eq!(exp.get(KEY).map(|o| o.since), Some(ts(0)));
        assert!(exp.satisfied(KEY, ts(301)));
    }

    #[test]
    fn observations_without_a_record_do_nothing() {
        let mut exp = Expectations::new();
        exp.creation_observed(KEY);
        exp.deletion_observed(KEY, "p");
        exp.lower_adds(KEY, 3);
        assert_eq!(exp.get(KEY), None);
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn lower_adds_by_skipped_creates() {
        let mut exp = Expectations::new();
        exp.set(KEY, 100, 0, ts(0));
        exp.lower_adds(KEY, 85);
        assert_eq!(exp.get(KEY).map(|o| o.add), Some(15));
        assert!(!exp.satisfied(KEY, ts(0)));
        exp.lower_adds(KEY, 15);
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn keys_are_independent_and_delete_forgets() {
        let mut exp = Expectations::new();
        exp.set(KEY, 1, 0, ts(0));
        exp.set("default/bar", 0, 1, ts(0));
        exp.creation_observed("default/bar");
        assert!(!exp.satisfied("default/bar", ts(0)));
        assert!(!exp.satisfied(KEY, ts(0)));
        exp.delete(KEY);
        assert!(exp.satisfied(KEY, ts(0)));
        assert_eq!(exp.get(KEY), None);
        assert!(!exp.satisfied("default/bar", ts(0)));
        assert_eq!(exp.len(), 1);
    }

    #[test]
    fn recreated_daemonset_starts_with_clean_expectations() {
        // The record is deleted on DaemonSet delete; a recreated DaemonSet sets a fresh one.
        let mut exp = Expectations::new();
        exp.set(KEY, 1, 0, ts(0));
        exp.delete(KEY);
        assert!(exp.satisfied(KEY, ts(1)));
        exp.set(KEY, 1, 0, ts(2));
        assert!(!exp.satisfied(KEY, ts(2)));
        assert_eq!(
            exp.get(KEY),
            Some(Outstanding {
                add: 1,
                del: 0,
                since: ts(2)
            })
        );
    }

    #[test]
    fn iter_and_waiting_report_outstanding_counts() {
        let mut exp = Expectations::new();
        exp.set("a/x", 3, 1, ts(0));
        exp.set("a/y", 0, 2, ts(0));
        exp.set("a/old", 7, 7, ts(-1000));
        exp.set("a/neg", 0, 0, ts(0));
        exp.deletion_observed("a/neg", "p");
        assert_eq!(exp.waiting(ts(0)), (3, 3));
        let mut all: Vec<_> = exp
            .iter()
            .map(|(k, o)| (k.to_string(), o.add, o.del))
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                ("a/neg".to_string(), 0, -1),
                ("a/old".to_string(), 7, 7),
                ("a/x".to_string(), 3, 1),
                ("a/y".to_string(), 0, 2),
            ]
        );
    }

    fn names(pods: &[&str]) -> Vec<String> {
        pods.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn tracked_deletes_count_each_expected_pod_once() {
        let mut exp = Expectations::new();
        exp.expect(KEY, 0, &names(&["a", "b"]), ts(0));
        exp.deletion_observed(KEY, "a");
        exp.deletion_observed(KEY, "a");
        assert!(
            !exp.satisfied(KEY, ts(0)),
            "a graceful delete of a is observed twice"
        );
        assert_eq!(exp.get(KEY).map(|o| o.del), Some(1));
        exp.deletion_observed(KEY, "other");
        assert!(!exp.satisfied(KEY, ts(0)), "a pod not deleted by the sync");
        exp.deletion_observed(KEY, "b");
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn a_late_second_observation_does_not_lower_the_next_syncs_deletes() {
        // Sync 1 deletes old-1; its update with a deletionTimestamp is observed; sync 2 deletes
        // old-2; then old-1's removal arrives. Counting alone (upstream DaemonSet) would satisfy
        // sync 2's expectations here although old-2 is not yet observed.
        let mut exp = Expectations::new();
        exp.expect(KEY, 0, &names(&["old-1"]), ts(0));
        exp.deletion_observed(KEY, "old-1");
        assert!(exp.satisfied(KEY, ts(0)));
        exp.expect(KEY, 1, &names(&["old-2"]), ts(1));
        exp.deletion_observed(KEY, "old-1");
        exp.creation_observed(KEY);
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.deletion_observed(KEY, "old-2");
        assert!(exp.satisfied(KEY, ts(1)));

        // The upstream counting this replaces.
        let mut counted = Expectations::new();
        counted.set(KEY, 0, 1, ts(0));
        counted.deletion_observed(KEY, "old-1");
        counted.set(KEY, 1, 1, ts(1));
        counted.deletion_observed(KEY, "old-1");
        counted.creation_observed(KEY);
        assert!(
            counted.satisfied(KEY, ts(1)),
            "the race tracked deletes close"
        );
    }

    #[test]
    fn set_after_expect_counts_again() {
        let mut exp = Expectations::new();
        exp.expect(KEY, 0, &names(&["a"]), ts(0));
        exp.set(KEY, 0, 1, ts(1));
        exp.deletion_observed(KEY, "anything");
        assert!(exp.satisfied(KEY, ts(1)));
        exp.expect(KEY, 0, &names(&["a"]), ts(2));
        exp.delete(KEY);
        assert!(exp.satisfied(KEY, ts(2)));
    }
}
