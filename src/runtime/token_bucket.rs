//! The client-side token bucket of API requests (client-go's `flowcontrol.NewTokenBucketRateLimiter`):
//! `qps` tokens per second, at most `burst` saved up; a request that finds no token reserves the next
//! one and waits for it, so waiting requests are served in arrival order.
//!
//! Written by hand: the kept rate-limit crates (governor and its GCRA) let waiting callers retry
//! until a cell is free, so under contention requests are served in no particular order and a burst
//! of creates can starve a status write; client-go reserves a token per request and serves them in
//! arrival order, which the tests of this file and of `client.rs` hold it to.

use std::time::Duration;

/// A token bucket whose clock is the caller's: every call passes the time elapsed since an origin
/// the caller chose (a monotonic clock in the shell, plain numbers in tests).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    /// Tokens at `updated`; negative when requests have reserved tokens not yet refilled.
    tokens: f64,
    updated: Duration,
}

impl TokenBucket {
    /// A full bucket at time zero. `qps` must be positive; a `burst` of 0 is treated as 1 (a request
    /// always needs one token).
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps,
            burst,
            tokens: burst,
            updated: Duration::ZERO,
        }
    }

    /// Takes one token at `now` and returns how long the request must wait for it (zero when a token
    /// was available). A `now` earlier than a previous call counts as that call's time.
    pub fn reserve(&mut self, now: Duration) -> Duration {
        let now = now.max(self.updated);
        let refill = (now - self.updated).as_secs_f64() * self.qps;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.updated = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Whole microseconds: float noise must not turn 100 ms into 99.999999 ms.
            let micros = (-self.tokens / self.qps * 1e6).round();
            Duration::from_micros(micros as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_bucket_serves_burst_requests_at_once_then_one_per_interval() {
        let mut b = TokenBucket::new(10.0, 3);
        for _ in 0..3 {
            assert_eq!(b.reserve(ms(0)), Duration::ZERO);
        }
        // The 4th and 5th wait for the next tokens, 100 ms apart, in arrival order.
        assert_eq!(b.reserve(ms(0)), ms(100));
        assert_eq!(b.reserve(ms(0)), ms(200));
    }

    #[test]
    fn tokens_refill_at_qps_up_to_burst_only() {
        let mut b = TokenBucket::new(10.0, 2);
        b.reserve(ms(0));
        b.reserve(ms(0));
        // 50 ms refill half a token: the next request waits the other 50 ms.
        assert_eq!(b.reserve(ms(50)), ms(50));
        // A long idle period refills to burst (2), not more.
        assert_eq!(b.reserve(ms(10_000)), Duration::ZERO);
        assert_eq!(b.reserve(ms(10_000)), Duration::ZERO);
        assert_eq!(b.reserve(ms(10_000)), ms(100));
    }

    #[test]
    fn sustained_rate_is_qps() {
        let mut b = TokenBucket::new(20.0, 30);
        // 130 requests at t=0: 30 from the burst, the other 100 spread over 100 / 20 = 5 s.
        let waits: Vec<Duration> = (0..130).map(|_| b.reserve(ms(0))).collect();
        assert_eq!(waits[29], Duration::ZERO);
        assert_eq!(waits[129], ms(5000));
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::new(1.0, 1);
        assert_eq!(b.reserve(ms(1000)), Duration::ZERO);
        assert_eq!(b.reserve(ms(0)), ms(1000));
    }
}
