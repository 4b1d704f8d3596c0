//! Burst limits and slow-start batching of pod creates (upstream `syncNodes`, §4 steps 1 and 3).
//!
//! A pass acts on at most [`BURST_REPLICAS`] creates and, separately, deletes. Creates go out in
//! batches of 1, 2, 4, 8, ... (never more than what remains); after a batch that produced at least
//! one new error, the remaining creates are skipped and the add expectation is lowered by their
//! number. The shell drives a [`SlowStart`] and performs the calls.

use crate::core::labels::{BURST_REPLICAS, SLOW_START_INITIAL_BATCH};
use std::ops::Range;

/// The first [`BURST_REPLICAS`] items: what one pass acts on (creates and deletes are truncated
/// separately).
pub fn truncate_to_burst<T>(items: &[T]) -> &[T] {
    &items[..items.len().min(BURST_REPLICAS)]
}

/// What to do after a create batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterBatch {
    /// Go on with the next batch, if any.
    Continue,
    /// Stop creating: `skipped` creates were never attempted, lower the add expectation by that many
    /// (`Expectations::creations_skipped`) and return the errors.
    Abort { skipped: usize },
}

/// Slow-start state over `total` creates: yields index ranges of successive batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowStart {
    total: usize,
    pos: usize,
    batch: usize,
    aborted: bool,
}

impl SlowStart {
    /// Batches over `total` creates (already truncated to the burst limit).
    pub fn new(total: usize) -> Self {
        Self {
            total,
            pos: 0,
            batch: total.min(SLOW_START_INITIAL_BATCH),
            aborted: false,
        }
    }

    /// The index range of the next batch to issue (all concurrently), or `None` when done or aborted.
    pub fn next_batch(&mut self) -> Option<Range<usize>> {
        if self.aborted || self.pos >= self.total || self.batch == 0 {
            return None;
        }
        Some(self.pos..self.pos + self.batch)
    }

    /// Records the outcome of the batch just issued: `new_errors` is the number of its creates that
    /// failed with a counted error (namespace-terminating failures are not counted).
    pub fn finish_batch(&mut self, new_errors: usize) -> AfterBatch {
        if self.aborted {
            return AfterBatch::Continue;
        }
        let end = self.pos + self.batch;
        let skipped = self.total.saturating_sub(end);
        if new_errors > 0 && skipped > 0 {
            self.aborted = true;
            return AfterBatch::Abort { skipped };
        }
        self.pos = end;
        self.batch = (2 * self.batch).min(skipped);
        AfterBatch::Continue
    }
}

/// The batch sizes slow start uses for `total` creates when no batch fails.
pub fn batch_sizes(total: usize) -> Vec<usize> {
    let mut slow = SlowStart::new(total);
    let mut sizes = Vec::new();
    while let Some(batch) = slow.next_batch() {
        sizes.push(batch.len());
        slow.finish_batch(0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::expectations::Expectations;
    use crate::core::fixtures::ts;

    #[test]
    fn truncation_keeps_the_first_250() {
        let items: Vec<usize> = (0..300).collect();
        let kept = truncate_to_burst(&items);
        assert_eq!(kept.len(), 250);
        assert_eq!(kept.first(), Some(&0));
        assert_eq!(kept.last(), Some(&249));
        let few = [1, 2, 3];
        assert_eq!(truncate_to_burst(&few), &few);
        let none: [u8; 0] = [];
        assert!(truncate_to_burst(&none).is_empty());
    }

    #[test]
    fn batches_double_and_never_exceed_the_remainder() {
        assert_eq!(batch_sizes(0), Vec::<usize>::new());
        assert_eq!(batch_sizes(1), vec![1]);
        assert_eq!(batch_sizes(2), vec![1, 1]);
        assert_eq!(batch_sizes(5), vec![1, 2, 2]);
        assert_eq!(batch_sizes(7), vec![1, 2, 4]);
        assert_eq!(batch_sizes(100), vec![1, 2, 4, 8, 16, 32, 37]);
        assert_eq!(batch_sizes(250), vec![1, 2, 4, 8, 16, 32, 64, 123]);
        assert_eq!(batch_sizes(250).iter().sum::<usize>(), 250);
    }

    #[test]
    fn batches_are_contiguous_ranges() {
        let mut slow = SlowStart::new(10);
        let mut ranges = Vec::new();
        while let Some(r) = slow.next_batch() {
            ranges.push(r);
            assert_eq!(slow.finish_batch(0), AfterBatch::Continue);
        }
        assert_eq!(ranges, vec![0..1, 1..3, 3..7, 7..10]);
    }

    #[test]
    fn a_failing_batch_aborts_and_reports_skipped() {
        let mut slow = SlowStart::new(10);
        assert_eq!(slow.next_batch(), Some(0..1));
        assert_eq!(slow.finish_batch(0), AfterBatch::Continue);
        assert_eq!(slow.next_batch(), Some(1..3));
        assert_eq!(slow.finish_batch(1), AfterBatch::Abort { skipped: 7 });
        assert_eq!(slow.next_batch(), None);
    }

    #[test]
    fn errors_in_the_last_batch_skip_nothing() {
        let mut slow = SlowStart::new(3);
        assert_eq!(slow.next_batch(), Some(0..1));
        assert_eq!(slow.finish_batch(0), AfterBatch::Continue);
        assert_eq!(slow.next_batch(), Some(1..3));
        assert_eq!(slow.finish_batch(2), AfterBatch::Continue);
        assert_eq!(slow.next_batch(), None);
    }

    #[test]
    fn first_batch_failure_skips_all_but_one() {
        let mut slow = SlowStart::new(250);
        assert_eq!(slow.next_batch(), Some(0..1));
        assert_eq!(slow.finish_batch(1), AfterBatch::Abort { skipped: 249 });
    }

    /// Drives one pass the way the shell does, against an API that accepts `quota` creates:
    /// returns (create calls, successful creates). The fake, like upstream's, observes each
    /// successful create immediately; failures lower the add expectation by one.
    fn simulate(total: usize, quota: usize, exp: &mut Expectations, key: &str) -> (usize, usize) {
        let nodes: Vec<String> = (0..total).map(|i| format!("node-{i}")).collect();
        let nodes = truncate_to_burst(&nodes);
        exp.expect(key, nodes, &[], ts(0));
        let (mut calls, mut created) = (0, 0);
        let mut slow = SlowStart::new(nodes.len());
        while let Some(batch) = slow.next_batch() {
            let mut errors = 0;
            for node in &nodes[batch] {
                calls += 1;
                if created < quota {
                    created += 1;
                } else {
                    errors += 1;
                }
                exp.creation_observed(key, node);
            }
            if let AfterBatch::Abort { skipped } = slow.finish_batch(errors) {
                exp.creations_skipped(key, &nodes[nodes.len() - skipped..]);
            }
        }
        (calls, created)
    }

    #[test]
    fn quota_of_ten_over_a_hundred_creates_is_bounded_by_slow_start() {
        // 100 nodes, the API allows 10 creates: 10 created, calls bounded by 1+2+4+8.
        let mut exp = Expectations::new();
        let (calls, created) = simulate(100, 10, &mut exp, "default/foo");
        assert_eq!(created, 10);
        let mut expected_limit = 0;
        let mut pass = 0;
        while expected_limit <= 10 {
            expected_limit += SLOW_START_INITIAL_BATCH << pass;
            pass += 1;
        }
        assert_eq!(expected_limit, 15);
        assert!(calls <= expected_limit, "{calls} create calls");
        assert_eq!(calls, 15);
    }

    #[test]
    fn quota_failures_and_skips_leave_expectations_satisfied() {
        // Same setup: after the failed pass the expectations are satisfied (10 observed, 5 failed,
        // 85 skipped).
        let mut exp = Expectations::new();
        let key = "default/foo";
        simulate(100, 10, &mut exp, key);
        assert!(exp.satisfied(key, ts(0)));
        assert_eq!(exp.get(key).map(|o| (o.add, o.del)), Some((0, 0)));
    }

    #[test]
    fn pass_over_the_burst_limit_expects_only_250() {
        let mut exp = Expectations::new();
        let (calls, created) = simulate(400, 1000, &mut exp, "default/foo");
        assert_eq!((calls, created), (250, 250));
        assert!(exp.satisfied("default/foo", ts(0)));
    }
}
