//! A client-side token bucket like client-go's (QPS and burst), for the physical-limit loop.

use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Requests may start at `qps` per second on average, `burst` at once; `None` never waits.
#[derive(Debug)]
pub struct TokenBucket {
    inner: Option<Mutex<State>>,
    qps: f64,
    burst: f64,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub fn new(qps: Option<(f64, u32)>) -> Self {
        match qps {
            Some((qps, burst)) => Self {
                inner: Some(Mutex::new(State {
                    tokens: f64::from(burst),
                    at: Instant::now(),
                })),
                qps,
                burst: f64::from(burst),
            },
            None => Self {
                inner: None,
                qps: 0.0,
                burst: 0.0,
            },
        }
    }

    /// Waits for one token.
    pub async fn take(&self) {
        let Some(inner) = &self.inner else { return };
        let wait = {
            let mut s = inner.lock().await;
            let now = Instant::now();
            s.tokens =
                (s.tokens + now.duration_since(s.at).as_secs_f64() * self.qps).min(self.burst);
            s.at = now;
            s.tokens -= 1.0;
            if s.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-s.tokens / self.qps)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_is_free_then_qps_paces() {
        let b = TokenBucket::new(Some((100.0, 5)));
        let start = Instant::now();
        for _ in 0..15 {
            b.take().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(90), "{took:?}");
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
}
