//! Expectations: creates and deletes a DaemonSet issued but has not yet observed, per DaemonSet
//! (upstream `ControllerExpectations`, §2.1).
//!
//! One record per DaemonSet UID: the nodes it is creating a pod on, the pods it is deleting, and the
//! time the record was set. The shell wraps an [`Expectations`] in a mutex; the event handlers
//! record observations and every sync asks [`Expectations::satisfied`] before acting.
//!
//! [difference] Upstream's DaemonSet controller only counts, under the key `namespace/name`.
//! everynode tracks each create by its target node and each delete by pod name, as upstream's
//! ReplicaSet controller does for deletes (`UIDTrackingControllerExpectations`), and keys records by
//! the DaemonSet's UID:
//! - a gracefully deleted pod is observed twice (its update with a deletionTimestamp, then its
//!   removal); with counts alone the second observation can arrive after the next sync has set new
//!   expectations and lower them for a delete that has not happened, so a sync acts on a cache that
//!   does not yet show its own deletes: it deletes the same pods again (404) or creates a second pod
//!   on a node (measured at 1000 nodes without a client-side limit: 9 such deletes, 2 such creates);
//! - a late or repeated add event (a relist, a create that was answered with an error but committed)
//!   likewise lowers a later sync's count of creates; only the first observation of a create on a
//!   node the sync is creating on counts here;
//! - a DaemonSet deleted and recreated under the same name does not inherit the old one's record
//!   (which could hold its syncs back until the record expires, 5 minutes).
//!
//! [difference] A create answered without saying whether the pod was made (a 5xx such as the API
//! server's own 504 timeout, a broken connection, a timed-out attempt) stays expected for
//! [`UNCONFIRMED_CREATE_SECONDS`] unless its pod is observed first. Upstream counts every failed
//! create as observed at once, so a sync that runs before the watch delivers a committed pod creates
//! a second one on that node (and deletes it later). A create the API server refused (4xx) is
//! observed at once, as upstream.

use crate::core::Timestamp;
use crate::core::labels::EXPECTATIONS_TIMEOUT_SECONDS;
use k8s_openapi::jiff::SignedDuration;
use std::collections::{HashMap, HashSet};

/// How long a create whose outcome is unknown holds its DaemonSet's next sync back, unless its pod
/// is observed before: long enough for a committed pod to reach the watch on a loaded control plane,
/// short against the 5-minute expectations timeout.
pub const UNCONFIRMED_CREATE_SECONDS: i64 = 5;

/// How a create that did not succeed ended, as far as its outcome is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAnswer {
    /// The API server answered with this status.
    Status(u16),
    /// The request may have reached the API server, but no status came back (a broken connection,
    /// a timed-out attempt, a response that could not be read).
    NoAnswer,
    /// The request was never sent (it could not be built or authenticated).
    NotSent,
}

/// Whether a failed create may still have made its pod: any 5xx (the API server's 504 after its own
/// timeout, or a 500 when etcd timed out, can follow a commit) and no answer at all. A 4xx (refused
/// by validation, admission, quota, or rejected by API Priority and Fairness before anything was
/// done) and a request never sent made nothing.
pub fn create_outcome_unknown(answer: CreateAnswer) -> bool {
    match answer {
        CreateAnswer::Status(code) => code >= 500,
        CreateAnswer::NoAnswer => true,
        CreateAnswer::NotSent => false,
    }
}

/// The outstanding counts of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outstanding {
    /// Creates not yet observed.
    pub add: i64,
    /// Deletes not yet observed.
    pub del: i64,
    /// When the record was last set.
    pub since: Timestamp,
    /// Until when creates whose outcome is unknown (and whose pods are not yet observed) hold the
    /// record open (the latest of them), if any.
    pub unconfirmed_until: Option<Timestamp>,
}

impl Outstanding {
    /// Both counts are ≤ 0 (upstream `Fulfilled`) and no unconfirmed create is still open at `now`.
    pub fn fulfilled(&self, now: Timestamp) -> bool {
        self.add <= 0 && self.del <= 0 && self.unconfirmed_until.is_none_or(|until| until <= now)
    }

    /// Older than the expectations timeout (5 minutes, strictly) at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        now.duration_since(self.since) > SignedDuration::from_secs(EXPECTATIONS_TIMEOUT_SECONDS)
    }

    /// When the record expires: from then on a sync may act although it is not fulfilled.
    pub fn expiry(&self) -> Timestamp {
        self.since
            .checked_add(SignedDuration::from_secs(EXPECTATIONS_TIMEOUT_SECONDS))
            .unwrap_or(self.since)
    }

    /// When a sync held back by this record should run again without an event: a second after it
    /// expires, or when its unconfirmed creates stop holding it if only they do, or `None` when
    /// nothing is outstanding. Nothing else queues a DaemonSet whose creates or deletes are never
    /// observed (upstream waits for the next event).
    pub fn requeue_after(&self, now: Timestamp) -> Option<std::time::Duration> {
        if self.fulfilled(now) {
            return None;
        }
        let until = |t: Timestamp| {
            std::time::Duration::try_from(now.duration_until(t))
                .unwrap_or(std::time::Duration::ZERO)
        };
        let expiry = until(self.expiry()) + std::time::Duration::from_secs(1);
        match self.unconfirmed_until {
            Some(t) if self.add <= 0 && self.del <= 0 => Some(until(t).min(expiry)),
            _ => Some(expiry),
        }
    }
}

/// What one DaemonSet is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    /// Nodes a create was sent for and not yet observed.
    creating: HashSet<String>,
    /// Pods a delete was sent for and not yet observed.
    deleting: HashSet<String>,
    /// Nodes whose create got an answer that does not say whether the pod was made, and until when
    /// they count as outstanding.
    unconfirmed: HashMap<String, Timestamp>,
    since: Timestamp,
}

impl Record {
    fn outstanding(&self) -> Outstanding {
        Outstanding {
            add: count(self.creating.len()),
            del: count(self.deleting.len()),
            since: self.since,
            unconfirmed_until: self.unconfirmed.values().max().copied(),
        }
    }
}

/// Expectations of all DaemonSets, keyed by DaemonSet UID. Delete the record when the DaemonSet is
/// deleted.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    records: HashMap<String, Record>,
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Expectations {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overwrites the record of `key` with creates on `creating` (node names) and deletes of
    /// `deleting` (pod names), stamped `now` (upstream `SetExpectations`; called on every sync that
    /// issues, even with nothing to issue).
    pub fn expect(&mut self, key: &str, creating: &[String], deleting: &[String], now: Timestamp) {
        self.records.insert(
            key.to_string(),
            Record {
                creating: creating.iter().cloned().collect(),
                deleting: deleting.iter().cloned().collect(),
                unconfirmed: HashMap::new(),
                since: now,
            },
        );
    }

    /// A pod on `node` was observed created, or its create failed or was never sent. Counts only for
    /// a node of the record not yet observed.
    pub fn creation_observed(&mut self, key: &str, node: &str) {
        if let Some(record) = self.records.get_mut(key) {
            record.creating.remove(node);
            record.unconfirmed.remove(node);
        }
    }

    /// The create on `node` got an answer that does not say whether the pod was made (answered at
    /// `now`): it stays outstanding until its pod is observed or [`UNCONFIRMED_CREATE_SECONDS`] pass.
    pub fn creation_unconfirmed(&mut self, key: &str, node: &str, now: Timestamp) {
        if let Some(record) = self.records.get_mut(key)
            && record.creating.remove(node)
        {
            let until = now
                .checked_add(SignedDuration::from_secs(UNCONFIRMED_CREATE_SECONDS))
                .unwrap_or(now);
            record.unconfirmed.insert(node.to_string(), until);
        }
    }

    /// Creates on `nodes` will not be sent (skipped by slow start).
    pub fn creations_skipped(&mut self, key: &str, nodes: &[String]) {
        for node in nodes {
            self.creation_observed(key, node);
        }
    }

    /// The delete of `pod` was observed (pod delete, or update/add with deletionTimestamp) or
    /// failed. Counts only for a pod of the record not yet observed.
    pub fn deletion_observed(&mut self, key: &str, pod: &str) {
        if let Some(record) = self.records.get_mut(key) {
            record.deleting.remove(pod);
        }
    }

    /// Whether a sync of `key` may act: no record, or nothing outstanding, or the record is older
    /// than 5 minutes at `now`.
    pub fn satisfied(&self, key: &str, now: Timestamp) -> bool {
        match self.get(key) {
            None => true,
            Some(o) => o.fulfilled(now) || o.expired(now),
        }
    }

    /// Forgets `key` (DaemonSet deleted).
    pub fn delete(&mut self, key: &str) {
        self.records.remove(key);
    }

    /// Forgets every key `keep` rejects (DaemonSets no longer in the cache).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.records.retain(|k, _| keep(k));
    }

    /// The outstanding counts of `key`, if it has a record.
    pub fn get(&self, key: &str) -> Option<Outstanding> {
        self.records.get(key).map(Record::outstanding)
    }

    /// Every record, in no particular order (for metrics).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Outstanding)> {
        self.records
            .iter()
            .map(|(k, r)| (k.as_str(), r.outstanding()))
    }

    /// Sum of outstanding adds and deletes over all records that are neither fulfilled nor expired
    /// at `now`: what the controller is waiting for (for metrics).
    pub fn waiting(&self, now: Timestamp) -> (i64, i64) {
        self.iter()
            .map(|(_, o)| o)
            .filter(|o| !o.fulfilled(now) && !o.expired(now))
            .fold((0, 0), |(a, d), o| (a + o.add, d + o.del))
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

    const KEY: &str = "uid-foo";

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|p| p.to_string()).collect()
    }

    fn expect(exp: &mut Expectations, key: &str, creating: &[&str], deleting: &[&str], at: i64) {
        exp.expect(key, &names(creating), &names(deleting), ts(at));
    }

    #[test]
    fn no_record_is_satisfied() {
        let exp = Expectations::new();
        assert!(exp.satisfied(KEY, ts(0)));
        assert_eq!(exp.get(KEY), None);
        assert!(exp.is_empty());
    }

    #[test]
    fn an_empty_record_is_satisfied_but_recorded() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &[], &[], 10);
        assert!(exp.satisfied(KEY, ts(10)));
        assert_eq!(
            exp.get(KEY),
            Some(Outstanding {
                add: 0,
                del: 0,
                since: ts(10),
                unconfirmed_until: None,
            })
        );
        assert_eq!(exp.len(), 1);
    }

    #[test]
    fn outstanding_creates_block_until_each_node_is_observed() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1", "n2"], &[], 0);
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.creation_observed(KEY, "n1");
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.creation_observed(KEY, "n1");
        assert!(
            !exp.satisfied(KEY, ts(1)),
            "n1 observed twice is one create"
        );
        exp.creation_observed(KEY, "n9");
        assert!(
            !exp.satisfied(KEY, ts(1)),
            "n9 was not created by this sync"
        );
        exp.creation_observed(KEY, "n2");
        assert!(exp.satisfied(KEY, ts(1)));
    }

    #[test]
    fn outstanding_deletes_block_until_observed() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &[], &["p"], 0);
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.creation_observed(KEY, "n1");
        assert!(
            !exp.satisfied(KEY, ts(1)),
            "a create does not satisfy a delete"
        );
        exp.deletion_observed(KEY, "p");
        assert!(exp.satisfied(KEY, ts(1)));
    }

    /// A create answered 504 after the API server committed it: the next sync waits for its pod (or
    /// 5 s), so it does not create a second one on that node from a cache without it.
    #[test]
    fn an_unconfirmed_create_holds_the_record_until_its_pod_is_observed_or_5s_pass() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1", "n2"], &[], 0);
        exp.creation_unconfirmed(KEY, "n1", ts(1));
        exp.creation_observed(KEY, "n2");
        assert!(!exp.satisfied(KEY, ts(1)));
        assert!(!exp.satisfied(KEY, ts(5)));
        assert_eq!(
            exp.get(KEY).and_then(|o| o.requeue_after(ts(2))),
            Some(std::time::Duration::from_secs(4)),
            "looked at again when the wait ends"
        );
        assert!(exp.satisfied(KEY, ts(6)), "5 s later it counts as failed");
        assert_eq!(exp.waiting(ts(6)), (0, 0));
        // Its pod observed before: satisfied at once.
        expect(&mut exp, KEY, &["n3"], &[], 10);
        exp.creation_unconfirmed(KEY, "n3", ts(10));
        exp.creation_observed(KEY, "n3");
        assert!(exp.satisfied(KEY, ts(10)));
        assert_eq!(exp.get(KEY).and_then(|o| o.requeue_after(ts(10))), None);
        // Only a create still expected becomes unconfirmed; a later record drops it.
        exp.creation_unconfirmed(KEY, "n9", ts(10));
        assert!(exp.satisfied(KEY, ts(10)));
        expect(&mut exp, KEY, &["n4"], &[], 20);
        exp.creation_unconfirmed(KEY, "n4", ts(20));
        expect(&mut exp, KEY, &[], &[], 21);
        assert!(exp.satisfied(KEY, ts(21)));
    }

    #[test]
    fn only_5xx_and_missing_answers_leave_a_create_unknown() {
        for code in [500, 502, 503, 504] {
            assert!(create_outcome_unknown(CreateAnswer::Status(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 422, 429] {
            assert!(
                !create_outcome_unknown(CreateAnswer::Status(code)),
                "{code}"
            );
        }
        assert!(create_outcome_unknown(CreateAnswer::NoAnswer));
        assert!(!create_outcome_unknown(CreateAnswer::NotSent));
    }

    #[test]
    fn both_must_be_observed() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1"], &["p"], 0);
        exp.deletion_observed(KEY, "p");
        assert!(!exp.satisfied(KEY, ts(0)));
        exp.creation_observed(KEY, "n1");
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn expect_overwrites_the_record_and_timestamp() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["a", "b", "c"], &[], 0);
        exp.creation_observed(KEY, "a");
        expect(&mut exp, KEY, &["d"], &["p", "q"], 30);
        assert_eq!(
            exp.get(KEY),
            Some(Outstanding {
                add: 1,
                del: 2,
                since: ts(30),
                unconfirmed_until: None,
            })
        );
    }

    #[test]
    fn expire_strictly_after_five_minutes() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1"], &[], 100);
        assert!(!exp.satisfied(KEY, ts(100 + 299)));
        assert!(
            !exp.satisfied(KEY, ts(100 + 300)),
            "exactly 5 minutes is not yet expired"
        );
        let just_after = ts(400)
            .checked_add(SignedDuration::from_nanos(1))
            .unwrap_or(ts(401));
        assert!(exp.satisfied(KEY, just_after));
        assert_eq!(exp.get(KEY).map(|o| o.expiry()), Some(ts(400)));
    }

    /// A sync held back by expectations that are never observed is queued again when they expire
    /// (a second after), not left for the next event.
    #[test]
    fn outstanding_records_requeue_when_they_expire() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1"], &[], 100);
        let record = exp.get(KEY).unwrap_or(Outstanding {
            add: 0,
            del: 0,
            since: ts(0),
            unconfirmed_until: None,
        });
        assert_eq!(
            record.requeue_after(ts(160)),
            Some(std::time::Duration::from_secs(241))
        );
        assert_eq!(
            record.requeue_after(ts(1000)),
            Some(std::time::Duration::from_secs(1)),
            "already expired: at once"
        );
        exp.creation_observed(KEY, "n1");
        assert_eq!(exp.get(KEY).and_then(|o| o.requeue_after(ts(160))), None);
    }

    #[test]
    fn observing_does_not_refresh_the_timestamp() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["a", "b", "c"], &[], 0);
        exp.creation_observed(KEY, "a");
        exp.creations_skipped(KEY, &[]);
        assert_eq!(exp.get(KEY).map(|o| o.since), Some(ts(0)));
        assert!(exp.satisfied(KEY, ts(301)));
    }

    #[test]
    fn observations_without_a_record_do_nothing() {
        let mut exp = Expectations::new();
        exp.creation_observed(KEY, "n1");
        exp.deletion_observed(KEY, "p");
        exp.creations_skipped(KEY, &names(&["n1"]));
        assert_eq!(exp.get(KEY), None);
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn skipped_creates_are_no_longer_expected() {
        let mut exp = Expectations::new();
        let nodes: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
        exp.expect(KEY, &nodes, &[], ts(0));
        exp.creations_skipped(KEY, &nodes[15..]);
        assert_eq!(exp.get(KEY).map(|o| o.add), Some(15));
        assert!(!exp.satisfied(KEY, ts(0)));
        exp.creations_skipped(KEY, &nodes[..15]);
        assert!(exp.satisfied(KEY, ts(0)));
    }

    #[test]
    fn keys_are_independent_and_delete_forgets() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1"], &[], 0);
        expect(&mut exp, "uid-bar", &[], &["p"], 0);
        exp.creation_observed("uid-bar", "n1");
        assert!(!exp.satisfied("uid-bar", ts(0)));
        assert!(!exp.satisfied(KEY, ts(0)));
        exp.delete(KEY);
        assert!(exp.satisfied(KEY, ts(0)));
        assert_eq!(exp.get(KEY), None);
        assert!(!exp.satisfied("uid-bar", ts(0)));
        assert_eq!(exp.len(), 1);
        exp.retain(|k| k != "uid-bar");
        assert!(exp.is_empty());
    }

    /// A DaemonSet deleted and recreated under the same name has another UID: the old record
    /// (whose pods will never be observed) does not hold the new one back.
    #[test]
    fn a_recreated_daemonset_does_not_inherit_the_old_record() {
        let mut exp = Expectations::new();
        expect(&mut exp, "uid-old", &["n1", "n2"], &["p"], 0);
        assert!(exp.satisfied("uid-new", ts(1)));
        expect(&mut exp, "uid-new", &["n1"], &[], 2);
        exp.creation_observed("uid-new", "n1");
        assert!(exp.satisfied("uid-new", ts(2)));
        assert!(!exp.satisfied("uid-old", ts(2)));
    }

    #[test]
    fn iter_and_waiting_report_outstanding_counts() {
        let mut exp = Expectations::new();
        expect(&mut exp, "x", &["a", "b", "c"], &["p"], 0);
        expect(&mut exp, "y", &[], &["p", "q"], 0);
        expect(&mut exp, "old", &["a"], &["p"], -1000);
        expect(&mut exp, "done", &[], &["p"], 0);
        exp.deletion_observed("done", "p");
        assert_eq!(exp.waiting(ts(0)), (3, 3));
        let mut all: Vec<_> = exp
            .iter()
            .map(|(k, o)| (k.to_string(), o.add, o.del))
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                ("done".to_string(), 0, 0),
                ("old".to_string(), 1, 1),
                ("x".to_string(), 3, 1),
                ("y".to_string(), 0, 2),
            ]
        );
    }

    #[test]
    fn a_graceful_delete_observed_twice_counts_once() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &[], &["a", "b"], 0);
        exp.deletion_observed(KEY, "a");
        exp.deletion_observed(KEY, "a");
        assert!(!exp.satisfied(KEY, ts(0)));
        assert_eq!(exp.get(KEY).map(|o| o.del), Some(1));
        exp.deletion_observed(KEY, "other");
        assert!(!exp.satisfied(KEY, ts(0)), "a pod not deleted by the sync");
        exp.deletion_observed(KEY, "b");
        assert!(exp.satisfied(KEY, ts(0)));
    }

    /// Sync 1 deletes old-1; its update with a deletionTimestamp is observed; sync 2 deletes old-2;
    /// then old-1's removal arrives. Counting alone (upstream DaemonSet) would satisfy sync 2's
    /// expectations here although old-2 is not yet observed.
    #[test]
    fn a_late_second_delete_observation_does_not_lower_the_next_syncs_deletes() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &[], &["old-1"], 0);
        exp.deletion_observed(KEY, "old-1");
        assert!(exp.satisfied(KEY, ts(0)));
        expect(&mut exp, KEY, &["n1"], &["old-2"], 1);
        exp.deletion_observed(KEY, "old-1");
        exp.creation_observed(KEY, "n1");
        assert!(!exp.satisfied(KEY, ts(1)));
        exp.deletion_observed(KEY, "old-2");
        assert!(exp.satisfied(KEY, ts(1)));
    }

    /// Sync 1 creates on n1 and observes it; a relist (or the committed create that was answered
    /// with a 504) delivers n1's pod again after sync 2 set its expectations for n2. With counts,
    /// that extra add satisfies sync 2 before n2's pod is in the cache, and sync 3 creates a second
    /// pod on n2.
    #[test]
    fn a_late_or_extra_add_does_not_lower_the_next_syncs_creates() {
        let mut exp = Expectations::new();
        expect(&mut exp, KEY, &["n1"], &[], 0);
        exp.creation_observed(KEY, "n1");
        expect(&mut exp, KEY, &["n2"], &[], 1);
        exp.creation_observed(KEY, "n1");
        assert!(
            !exp.satisfied(KEY, ts(1)),
            "n2's pod is not observed yet: {:?}",
            exp.get(KEY)
        );
        exp.creation_observed(KEY, "n2");
        assert!(exp.satisfied(KEY, ts(1)));
    }
}
