//! Event correlation as kube-controller-manager's event recorder does it (client-go
//! `tools/record/events_cache.go`): similar events are aggregated, repeats become count updates, and
//! a per-object spam filter lets at most 25 events through, then one per 5 minutes.
//!
//! Written by hand: kube-runtime's `Recorder` publishes events.k8s.io/v1 Events with its own series
//! deduplication and no spam filter, so `kubectl describe ds` would show other events (no combined
//! "(combined from similar events)" messages, no count updates on core/v1 Events, no 25-then-1-per-5-
//! minutes limit) than the built-in controller's; the tests below are client-go's.

use crate::core::Timestamp;
use std::collections::{BTreeSet, HashMap};

/// More distinct messages than this (same object, type and reason) within the interval are
/// combined into one aggregate event (`defaultAggregateMaxEvents`).
pub const AGGREGATE_MAX_EVENTS: usize = 10;
/// `defaultAggregateIntervalInSeconds`.
pub const AGGREGATE_INTERVAL_SECONDS: i64 = 600;
/// `defaultSpamBurst`.
pub const SPAM_BURST: f64 = 25.0;
/// `defaultSpamQPS`: one event per 5 minutes once the burst is spent.
pub const SPAM_QPS: f64 = 1.0 / 300.0;
/// Prefix of aggregated messages.
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// What to send for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create a new Event object with this name and message (count 1).
    Create { name: String, message: String },
    /// Update the existing Event `name`: count, message and lastTimestamp.
    Patch {
        name: String,
        count: i32,
        message: String,
    },
    /// The spam filter holds it back: send nothing.
    Drop,
}

#[derive(Debug)]
struct Aggregate {
    messages: BTreeSet<String>,
    last: Timestamp,
}

#[derive(Debug)]
struct Observed {
    name: String,
    count: i32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Timestamp,
}

/// The correlator's memory. `object` below identifies the involved object (its UID is enough).
#[derive(Debug, Default)]
pub struct EventCorrelator {
    aggregates: HashMap<String, Aggregate>,
    observed: HashMap<String, Observed>,
    spam: HashMap<String, Bucket>,
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

impl EventCorrelator {
    /// Decides what to send for an event on `object` (named `object_name`, for new Event names) of
    /// `type_`, `reason` and `message` at `now`.
    pub fn correlate(
        &mut self,
        object: &str,
        object_name: &str,
        type_: &str,
        reason: &str,
        message: &str,
        now: Timestamp,
    ) -> Decision {
        // 1. Aggregation: past AGGREGATE_MAX_EVENTS distinct messages, one combined event.
        let aggregate_key = format!("{object}\x00{type_}\x00{reason}");
        let record = self
            .aggregates
            .entry(aggregate_key.clone())
            .or_insert_with(|| Aggregate {
                messages: BTreeSet::new(),
                last: now,
            });
        if seconds(record.last, now) > AGGREGATE_INTERVAL_SECONDS as f64 {
            record.messages.clear();
        }
        record.messages.insert(message.to_string());
        record.last = now;
        let (key, message) = if record.messages.len() < AGGREGATE_MAX_EVENTS {
            (format!("{aggregate_key}\x00{message}"), message.to_string())
        } else {
            // Do not let the set grow past the maximum (upstream pops an arbitrary element).
            if let Some(first) = record.messages.iter().next().cloned() {
                record.messages.remove(&first);
            }
            (aggregate_key, format!("{COMBINED_PREFIX}{message}"))
        };

        // 2. Deduplication: a repeat of a known event is a count update (recorded before the filter,
        // as upstream).
        let decision = match self.observed.get_mut(&key) {
            Some(seen) => {
                seen.count += 1;
                Decision::Patch {
                    name: seen.name.clone(),
                    count: seen.count,
                    message,
                }
            }
            None => {
                let name = format!("{object_name}.{:x}", now.as_nanosecond());
                self.observed.insert(
                    key,
                    Observed {
                        name: name.clone(),
                        count: 1,
                    },
                );
                Decision::Create { name, message }
            }
        };

        // 3. Spam filter per object and type.
        let bucket = self
            .spam
            .entry(format!("{object}\x00{type_}"))
            .or_insert(Bucket {
                tokens: SPAM_BURST,
                last: now,
            });
        bucket.tokens =
            (bucket.tokens + seconds(bucket.last, now).max(0.0) * SPAM_QPS).min(SPAM_BURST);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            return Decision::Drop;
        }
        bucket.tokens -= 1.0;
        decision
    }

    /// Forgets state older than the aggregation interval, to bound memory.
    pub fn gc(&mut self, now: Timestamp) {
        let stale: Vec<String> = self
            .aggregates
            .iter()
            .filter(|(_, a)| seconds(a.last, now) > AGGREGATE_INTERVAL_SECONDS as f64)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.aggregates.remove(&k);
            self.observed.retain(|key, _| !key.starts_with(&k));
        }
        self.spam
            .retain(|_, b| seconds(b.last, now) * SPAM_QPS < SPAM_BURST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid")
    }

    fn creates(ds: &[Decision]) -> usize {
        ds.iter()
            .filter(|d| matches!(d, Decision::Create { .. }))
            .count()
    }

    #[test]
    fn a_repeated_event_becomes_a_count_update() {
        let mut c = EventCorrelator::default();
        let first = c.correlate(
            "uid",
            "ds",
            "Warning",
            "FailedCreate",
            "Error creating: quota",
            t(0),
        );
        let Decision::Create { name, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            c.correlate(
                "uid",
                "ds",
                "Warning",
                "FailedCreate",
                "Error creating: quota",
                t(1)
            ),
            Decision::Patch {
                name,
                count: 2,
                message: "Error creating: quota".into()
            }
        );
    }

    #[test]
    fn distinct_messages_past_ten_are_combined() {
        let mut c = EventCorrelator::default();
        let out: Vec<Decision> = (0..12)
            .map(|i| {
                c.correlate(
                    "uid",
                    "ds",
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: p{i}"),
                    t(i),
                )
            })
            .collect();
        // 9 distinct events, then the 10th starts the combined one, the 11th and 12th update it.
        assert_eq!(creates(&out), 10);
        match &out[9] {
            Decision::Create { message, .. } => {
                assert_eq!(message, "(combined from similar events): Created pod: p9")
            }
            other => panic!("{other:?}"),
        }
        match &out[11] {
            Decision::Patch { count, message, .. } => {
                assert_eq!(*count, 3);
                assert_eq!(message, "(combined from similar events): Created pod: p11");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_spam_filter_lets_25_through_then_one_per_five_minutes() {
        let mut c = EventCorrelator::default();
        let sent = (0..100)
            .filter(|i| {
                c.correlate("uid", "ds", "Normal", "R", &format!("m{i}"), t(0)) != Decision::Drop
            })
            .count();
        assert_eq!(sent, 25);
        assert_eq!(
            c.correlate("uid", "ds", "Normal", "R", "x", t(299)),
            Decision::Drop
        );
        assert_ne!(
            c.correlate("uid", "ds", "Normal", "R", "y", t(301)),
            Decision::Drop
        );
        // Other objects and other types have their own budget.
        assert_ne!(
            c.correlate("uid2", "ds2", "Normal", "R", "m", t(301)),
            Decision::Drop
        );
        assert_ne!(
            c.correlate("uid", "ds", "Warning", "R", "m", t(301)),
            Decision::Drop
        );
    }

    #[test]
    fn aggregation_restarts_after_the_interval() {
        let mut c = EventCorrelator::default();
        for i in 0..10 {
            c.correlate("uid", "ds", "Normal", "R", &format!("m{i}"), t(i));
        }
        let later = c.correlate("uid", "ds", "Normal", "R", "fresh", t(2000));
        match later {
            Decision::Create { message, .. } => assert_eq!(message, "fresh"),
            other => panic!("{other:?}"),
        }
        c.gc(t(5000));
        assert!(c.aggregates.is_empty() && c.observed.is_empty());
    }
}
