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
    /// Create the Event object `name` with this message, count and `firstTimestamp` (`first`); the
    /// count is 1 and `first` is now unless the event was observed before but never sent.
    Create {
        name: String,
        message: String,
        count: i32,
        first: Timestamp,
    },
    /// Update the existing Event `name`: count, message and lastTimestamp. When the API server no
    /// longer has it (events expire), the shell creates it with this name, count and `first`, as
    /// client-go's recorder does after a patch answered 404.
    Patch {
        name: String,
        count: i32,
        message: String,
        first: Timestamp,
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
    first: Timestamp,
    /// Whether a create or patch of it was decided on (not held back by the spam filter).
    sent: bool,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Timestamp,
}

/// The correlator's memory. `object` below identifies the involved object (its UID is enough).
#[derive(Debug)]
pub struct EventCorrelator {
    aggregates: HashMap<String, Aggregate>,
    observed: HashMap<String, Observed>,
    spam: HashMap<String, Bucket>,
    spam_burst: f64,
    spam_qps: f64,
}

impl Default for EventCorrelator {
    fn default() -> Self {
        Self::with_spam_filter(SPAM_BURST, SPAM_QPS)
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

impl EventCorrelator {
    /// A correlator whose spam filter lets `burst` events through per object and type, then `qps`
    /// a second ([`SPAM_BURST`] and [`SPAM_QPS`] by default; tests shorten them).
    pub fn with_spam_filter(burst: f64, qps: f64) -> Self {
        Self {
            aggregates: HashMap::new(),
            observed: HashMap::new(),
            spam: HashMap::new(),
            spam_burst: burst,
            spam_qps: qps,
        }
    }

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
            Some(seen) if seen.sent => {
                seen.count += 1;
                Decision::Patch {
                    name: seen.name.clone(),
                    count: seen.count,
                    message,
                    first: seen.first,
                }
            }
            // [difference] A repeat of an event the spam filter held back every time so far: upstream
            // patches the Event it never created, gets 404 and creates it with this name, count and
            // first timestamp. This creates the same Event without the patch that must fail.
            Some(seen) => {
                seen.count += 1;
                Decision::Create {
                    name: seen.name.clone(),
                    message,
                    count: seen.count,
                    first: seen.first,
                }
            }
            None => {
                let name = format!("{object_name}.{:x}", now.as_nanosecond());
                self.observed.insert(
                    key.clone(),
                    Observed {
                        name: name.clone(),
                        count: 1,
                        first: now,
                        sent: false,
                    },
                );
                Decision::Create {
                    name,
                    message,
                    count: 1,
                    first: now,
                }
            }
        };

        // 3. Spam filter per object and type.
        let bucket = self
            .spam
            .entry(format!("{object}\x00{type_}"))
            .or_insert(Bucket {
                tokens: self.spam_burst,
                last: now,
            });
        bucket.tokens = (bucket.tokens + seconds(bucket.last, now).max(0.0) * self.spam_qps)
            .min(self.spam_burst);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            return Decision::Drop;
        }
        bucket.tokens -= 1.0;
        if let Some(seen) = self.observed.get_mut(&key) {
            seen.sent = true;
        }
        decision
    }

    /// Forgets state older than the aggregation interval, to bound memory. [difference] client-go
    /// keeps what it observed of each event in an LRU cache of 4096 entries with no time limit, so a
    /// repeat after a long quiet updates the old Event; here it creates a new one.
    pub fn gc(&mut self, now: Timestamp) {
        let stale: Vec<String> = self
            .aggregates
            .iter()
            .filter(|(_, a)| seconds(a.last, now) > AGGREGATE_INTERVAL_SECONDS as f64)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.aggregates.remove(&k);
            // The aggregate's own key, and the keys of its single messages (`key\x00message`).
            let prefix = format!("{k}\x00");
            self.observed
                .retain(|key, _| key != &k && !key.starts_with(&prefix));
        }
        let (burst, qps) = (self.spam_burst, self.spam_qps);
        self.spam.retain(|_, b| seconds(b.last, now) * qps < burst);
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
                message: "Error creating: quota".into(),
                first: t(0),
            }
        );
    }

    /// An event the spam filter held back was never created: its next repeat that passes the filter
    /// creates it, with the name, count and first timestamp upstream's create after its failed
    /// patch gives it, and the repeat after that updates it.
    #[test]
    fn a_held_back_event_is_created_by_its_next_repeat_not_patched() {
        let mut c = EventCorrelator::with_spam_filter(1.0, 0.5);
        let ev = |c: &mut EventCorrelator, m: &str, at: i64| {
            c.correlate("uid", "ds", "Normal", "SuccessfulDelete", m, t(at))
        };
        assert!(matches!(ev(&mut c, "one", 0), Decision::Create { .. }));
        // No token left: "two" is held back, though observed (count 1, first at 0).
        assert_eq!(ev(&mut c, "two", 0), Decision::Drop);
        // Still no token a second later: held back again (count 2).
        assert_eq!(ev(&mut c, "two", 1), Decision::Drop);
        let Decision::Create {
            name,
            message,
            count,
            first,
        } = ev(&mut c, "two", 3)
        else {
            panic!("a repeat of an event never sent must create it")
        };
        assert_eq!(
            (message.as_str(), count, first),
            ("two", 3, t(0)),
            "upstream's create after the 404 carries the observed count and first timestamp"
        );
        assert!(name.starts_with("ds."), "{name}");
        // Sent now: the next repeat updates it.
        assert_eq!(
            ev(&mut c, "two", 6),
            Decision::Patch {
                name,
                count: 4,
                message: "two".into(),
                first: t(0),
            }
        );
    }

    /// Every event is sent at most once as a create: a patch only ever names an event a create
    /// was decided for, whatever the order of messages, times and spam budget.
    #[test]
    fn a_patch_names_only_an_event_created_before() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..200 {
            let mut c = EventCorrelator::with_spam_filter(1.0 + next(3) as f64, 0.2);
            let mut created = std::collections::BTreeSet::new();
            let mut at = 0;
            for _ in 0..60 {
                at += 1 + next(4) as i64;
                let message = format!("m{}", next(14));
                match c.correlate("uid", "ds", "Normal", "R", &message, t(at)) {
                    Decision::Create { name, .. } => {
                        assert!(created.insert(name.clone()), "{name} created twice");
                    }
                    Decision::Patch { name, .. } => {
                        assert!(
                            created.contains(&name),
                            "{name} patched before it was created"
                        );
                    }
                    Decision::Drop => {}
                }
            }
        }
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

    /// Forgetting a quiet reason leaves a busy reason that starts with the same text alone.
    #[test]
    fn gc_forgets_only_the_quiet_reason() {
        let mut c = EventCorrelator::default();
        let first = c.correlate("uid", "ds", "Normal", "R", "m", t(0));
        assert!(matches!(first, Decision::Create { .. }));
        let Decision::Create { name, .. } = c.correlate("uid", "ds", "Normal", "Rx", "m", t(0))
        else {
            panic!("a new event")
        };
        // "Rx" stays busy, "R" goes quiet for longer than the interval.
        c.correlate("uid", "ds", "Normal", "Rx", "m", t(500));
        c.gc(t(700));
        match c.correlate("uid", "ds", "Normal", "Rx", "m", t(701)) {
            Decision::Patch { name: patched, .. } => assert_eq!(patched, name),
            other => panic!("the busy reason was forgotten: {other:?}"),
        }
        assert!(matches!(
            c.correlate("uid", "ds", "Normal", "R", "m", t(701)),
            Decision::Create { .. }
        ));
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
