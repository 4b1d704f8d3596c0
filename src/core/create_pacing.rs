//! Create pacing: which creates one sync sends, and in which batches, for upstream's exact pacing
//! and for everynode's default `fast` pacing.
//!
//! Upstream (`syncNodes`) acts on at most [`BURST_REPLICAS`] creates per sync, in slow-start batches
//! of 1, 2, 4, … ([`SlowStart`]), stops at the first batch with a failure, and creates more only in
//! a later sync, once the watch has observed every create of this one (expectations).
//!
//! `[difference]` `fast` (the default) sends exactly the same sequence of create attempts, without
//! the watch round trips: all creates of the sync are expected up front, then taken in chunks of
//! [`BURST_REPLICAS`], each chunk in upstream's slow-start batches restarting at 1, and the next chunk
//! starts as soon as every response of the previous one came back as a success (counted from the
//! responses, not from the watch). The first batch with a failure ends the sync, as upstream's does.
//! For any pattern of failures (a quota of K pods, a webhook rejecting some pods) the attempts are
//! upstream's attempts over its consecutive syncs, so fast pacing never sends more failing creates
//! than upstream; with no failure, one sync creates all N pods (docs/differences.md).
//!
//! A window of in-flight creates growing by one per success (TCP-like) does not keep that bound: with
//! a quota of 2 it sends 3 failing creates where upstream sends 1 (see the tests), and no pipelining
//! can: to stay within upstream's failures for every quota, a create of batch *b* may only go out
//! once every create of the batches before it succeeded, which is this barrier.

use crate::core::labels::BURST_REPLICAS;
use crate::core::slow_start::{AfterBatch, SlowStart, truncate_to_burst};
use std::ops::Range;

/// How a sync paces its creates (`--create-pacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreatePacing {
    /// `[difference]` Upstream's batches, chained over every create of the sync (see the module).
    #[default]
    Fast,
    /// Upstream's exact pacing: at most [`BURST_REPLICAS`] creates per sync.
    Upstream,
}

impl CreatePacing {
    /// The creates one sync acts on (and expects): all of them under `fast`, the first
    /// [`BURST_REPLICAS`] under `upstream`.
    pub fn creates<T>(self, items: &[T]) -> &[T] {
        match self {
            CreatePacing::Fast => items,
            CreatePacing::Upstream => truncate_to_burst(items),
        }
    }
}

/// Slow start over consecutive chunks of [`BURST_REPLICAS`] creates: yields the index ranges of the
/// batches one sync issues, each batch all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacer {
    total: usize,
    /// Start of the current chunk.
    chunk: usize,
    slow: SlowStart,
    aborted: bool,
}

impl Pacer {
    /// Batches over `total` creates (already cut by [`CreatePacing::creates`]).
    pub fn new(total: usize) -> Self {
        Self {
            total,
            chunk: 0,
            slow: SlowStart::new(total.min(BURST_REPLICAS)),
            aborted: false,
        }
    }

    /// The index range (into all creates of the sync) of the next batch, or `None` when done or
    /// aborted.
    pub fn next_batch(&mut self) -> Option<Range<usize>> {
        if self.aborted {
            return None;
        }
        if let Some(r) = self.slow.next_batch() {
            return Some(self.chunk + r.start..self.chunk + r.end);
        }
        // The chunk is done without failure: the next one restarts at 1, as upstream's next sync.
        let next = self.chunk + BURST_REPLICAS;
        if next >= self.total {
            return None;
        }
        self.chunk = next;
        self.slow = SlowStart::new((self.total - next).min(BURST_REPLICAS));
        self.next_batch()
    }

    /// Records the outcome of the batch just issued (`new_errors` counted failures). On a failure,
    /// returns `Abort { skipped }`: the last `skipped` creates of the sync are never sent (lower the
    /// add expectation by them).
    pub fn finish_batch(&mut self, new_errors: usize) -> AfterBatch {
        let chunk_end = (self.chunk + BURST_REPLICAS).min(self.total);
        let in_chunk = self.slow.finish_batch(new_errors);
        let skipped = match in_chunk {
            AfterBatch::Abort { skipped } => skipped + (self.total - chunk_end),
            // Errors in the chunk's last batch: nothing left in the chunk, but the later chunks
            // belong to a later sync upstream, which a failed sync does not reach before its retry.
            AfterBatch::Continue if new_errors > 0 => self.total - chunk_end,
            AfterBatch::Continue => 0,
        };
        if new_errors > 0 {
            self.aborted = true;
        }
        if skipped > 0 {
            AfterBatch::Abort { skipped }
        } else {
            AfterBatch::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::slow_start::batch_sizes;

    /// Result of a sequence of syncs: the indices attempted, in order, and how many failed.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Run {
        attempts: Vec<usize>,
        failed: usize,
        syncs: usize,
    }

    /// One sync over the `pending` creates (indices into the node list) with `pacing`, against an
    /// API that fails create `i` when `fails(i, accepted so far)`; returns the accepted indices.
    fn one_sync(
        pacing: CreatePacing,
        pending: &[usize],
        accepted: &mut usize,
        fails: &dyn Fn(usize, usize) -> bool,
        run: &mut Run,
        pacer_for: &dyn Fn(usize) -> Pacer,
    ) -> (Vec<usize>, bool) {
        let creates = pacing.creates(pending);
        let mut pacer = pacer_for(creates.len());
        let mut ok = Vec::new();
        let mut failed_any = false;
        let mut sent = 0;
        while let Some(batch) = pacer.next_batch() {
            assert_eq!(batch.start, sent, "batches are contiguous");
            sent = batch.end;
            let mut errors = 0;
            for &i in &creates[batch] {
                run.attempts.push(i);
                if fails(i, *accepted) {
                    errors += 1;
                    run.failed += 1;
                } else {
                    *accepted += 1;
                    ok.push(i);
                }
            }
            failed_any |= errors > 0;
            if let AfterBatch::Abort { skipped } = pacer.finish_batch(errors) {
                assert_eq!(
                    sent + skipped,
                    creates.len(),
                    "skipped is what was not sent"
                );
                break;
            }
        }
        if !failed_any {
            assert_eq!(
                sent,
                creates.len(),
                "a sync without failure sends all it expects"
            );
        }
        (ok, failed_any)
    }

    /// Syncs until the first sync with a failure (included), or until all `n` exist.
    fn until_failure(
        pacing: CreatePacing,
        n: usize,
        fails: &dyn Fn(usize, usize) -> bool,
        pacer_for: &dyn Fn(usize) -> Pacer,
    ) -> Run {
        let (mut run, mut done, mut accepted) = (Run::default(), vec![false; n], 0);
        loop {
            let pending: Vec<usize> = (0..n).filter(|&i| !done[i]).collect();
            if pending.is_empty() {
                break;
            }
            run.syncs += 1;
            let (ok, failed) =
                one_sync(pacing, &pending, &mut accepted, fails, &mut run, pacer_for);
            for i in ok {
                done[i] = true;
            }
            if failed {
                break;
            }
        }
        run
    }

    /// Upstream modelled directly from its code: per sync the first 250, slow start, stop at the first
    /// failing batch; the next sync takes the next 250 still missing.
    fn upstream_model(n: usize, fails: &dyn Fn(usize, usize) -> bool) -> Run {
        let (mut run, mut done, mut accepted) = (Run::default(), vec![false; n], 0);
        'syncs: loop {
            let creates: Vec<usize> = (0..n).filter(|&i| !done[i]).take(250).collect();
            if creates.is_empty() {
                break;
            }
            run.syncs += 1;
            let (mut pos, mut batch) = (0, 1.min(creates.len()));
            while pos < creates.len() {
                let mut errors = 0;
                for &i in &creates[pos..pos + batch] {
                    run.attempts.push(i);
                    if fails(i, accepted) {
                        errors += 1;
                        run.failed += 1;
                    } else {
                        accepted += 1;
                        done[i] = true;
                    }
                }
                pos += batch;
                batch = (2 * batch).min(creates.len() - pos);
                if errors > 0 {
                    break 'syncs;
                }
            }
        }
        run
    }

    fn quota(k: usize) -> impl Fn(usize, usize) -> bool {
        move |_, accepted| accepted >= k
    }

    fn fast(n: usize, fails: &dyn Fn(usize, usize) -> bool) -> Run {
        until_failure(CreatePacing::Fast, n, fails, &Pacer::new)
    }

    #[test]
    fn upstream_pacing_is_upstreams_model() {
        for n in [0, 1, 2, 7, 249, 250, 251, 600, 1000] {
            for k in [0, 1, 3, 100, 249, 250, 251, 400, n] {
                let f = quota(k.min(n));
                let ours = until_failure(CreatePacing::Upstream, n, &f, &Pacer::new);
                assert_eq!(ours, upstream_model(n, &f), "n {n} quota {k}");
            }
        }
    }

    /// The quotas checked for `n` creates: every K for N up to 300 and for 500, 1000 and 1100; for
    /// the other N, K around every batch and chunk boundary plus a stride (every K costs 2 minutes
    /// unoptimised).
    fn quotas(n: usize) -> Vec<usize> {
        if n <= 300 || [500, 1000, 1100].contains(&n) {
            return (0..=n).collect();
        }
        let mut ks: Vec<usize> = (0..=n).step_by(97).chain([n - 1, n]).collect();
        for chunk in (0..n).step_by(BURST_REPLICAS) {
            for batch_end in [0, 1, 3, 7, 15, 31, 63, 127, 250] {
                let at = chunk + batch_end;
                ks.extend(
                    [at.saturating_sub(1), at, at + 1]
                        .iter()
                        .filter(|&&k| k <= n),
                );
            }
        }
        ks
    }

    /// Every N in 1..=1100 and a sample of quotas K in 0..=N ([`quotas`]): fast pacing sends
    /// upstream's exact sequence of attempts up to the first failure, so its failed creates are
    /// never more than upstream's (they are equal), and in one sync.
    #[test]
    fn fast_pacing_never_fails_more_creates_than_upstream_for_any_quota() {
        for n in 1..=1100 {
            for k in quotas(n) {
                let f = quota(k);
                let ours = fast(n, &f);
                let theirs = upstream_model(n, &f);
                assert!(
                    ours.failed <= theirs.failed,
                    "n {n} quota {k}: fast {} failed, upstream {}",
                    ours.failed,
                    theirs.failed
                );
                assert_eq!(ours.attempts, theirs.attempts, "n {n} quota {k}");
                assert_eq!(ours.syncs, 1, "n {n} quota {k}");
            }
        }
    }

    /// A webhook rejecting any set of pods (here: pseudo-random node sets): the same attempts.
    #[test]
    fn fast_pacing_sends_upstreams_attempts_for_any_rejected_set() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = 1 + (seed % 1100) as usize;
            // Reject roughly one pod in `1 << rate` (rate 0: all), from a per-round salt.
            let rate = (seed >> 20) % 12;
            let salt = seed >> 32;
            let rejected = move |i: usize, _: usize| {
                let h = (i as u64 ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                h.is_multiple_of(1 << rate)
            };
            let ours = fast(n, &rejected);
            let theirs = upstream_model(n, &rejected);
            assert_eq!(ours.attempts, theirs.attempts, "round {round} n {n}");
            assert!(ours.failed <= theirs.failed);
        }
    }

    #[test]
    fn without_failures_one_sync_creates_all_in_restarting_chunks() {
        for n in [1, 249, 250, 251, 1000, 1100] {
            let run = fast(n, &|_, _| false);
            assert_eq!(run.syncs, 1);
            assert_eq!(run.attempts, (0..n).collect::<Vec<_>>());
            assert_eq!(run.failed, 0);
        }
        let mut pacer = Pacer::new(600);
        let mut sizes = Vec::new();
        while let Some(b) = pacer.next_batch() {
            sizes.push(b.len());
            assert_eq!(pacer.finish_batch(0), AfterBatch::Continue);
        }
        let expected: Vec<usize> = [batch_sizes(250), batch_sizes(250), batch_sizes(100)].concat();
        assert_eq!(sizes, expected);
        // Upstream pacing: one sync creates at most 250.
        let up = until_failure(CreatePacing::Upstream, 1000, &|_, _| false, &Pacer::new);
        assert_eq!(up.syncs, 4);
    }

    #[test]
    fn errors_in_a_chunks_last_batch_skip_the_later_chunks() {
        let mut pacer = Pacer::new(300);
        let mut last = None;
        while let Some(b) = pacer.next_batch() {
            if b.end == 250 {
                last = Some(b);
                break;
            }
            pacer.finish_batch(0);
        }
        assert_eq!(last, Some(127..250));
        assert_eq!(pacer.finish_batch(1), AfterBatch::Abort { skipped: 50 });
        assert_eq!(pacer.next_batch(), None);
    }

    /// The pipelined alternative (a window of in-flight creates that grows by one per success,
    /// TCP-like) with responses in the worst order: it fails more creates than upstream, which is
    /// why fast pacing keeps the batch barrier.
    #[test]
    fn a_tcp_like_window_would_fail_more_creates_than_upstream() {
        // Quota 2. Window starts at 1: #0 succeeds (window 2: send #1, #2); #1 succeeds (window 3,
        // one in flight: send #3, #4); #2, #3, #4 fail.
        let window_failed = 3;
        let theirs = upstream_model(100, &quota(2));
        assert_eq!(theirs.failed, 1);
        assert!(window_failed > theirs.failed);
    }
}
