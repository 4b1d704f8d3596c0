//! Which failed API requests are sent again, when, and for how long (client-go's `withRetry` rules,
//! written by hand because kube's `RetryPolicy` retries every verb, POST included).
//!
//! A create that reached the API server and was committed can still come back as a 504 or a broken
//! connection; sending it again makes a second pod. So:
//! - a **429 with `Retry-After`** is retried for every verb: the API server (API Priority and
//!   Fairness) rejected it before doing anything, and says when to come back (client-go `checkWait`);
//! - **idempotent verbs** (GET, HEAD, PUT, DELETE, OPTIONS) are also retried after a 429, 502, 503 or
//!   504 without `Retry-After`, and after a transport error or a timed-out attempt;
//! - **POST and PATCH** are retried only when the connection could not be made (nothing was sent);
//! - everything stops after [`RetryBudget::max_attempts`] attempts or when the next attempt would
//!   start after the request's deadline ([`RetryBudget::total`] after it was first sent).
//!
//! [difference] client-go also retries a POST answered by a 5xx that carries `Retry-After`; everynode
//! does not, since it cannot know whether the object was created (docs/differences.md).

use http::Method;
use std::time::Duration;

/// How long a request may keep being retried, and each attempt's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Attempts at most, the first included (client-go: 1 + 10 retries).
    pub max_attempts: u32,
    /// No attempt starts later than this after the first one was sent.
    pub total: Duration,
    /// One attempt (up to the response headers) may take this long; watches are not limited.
    pub attempt_timeout: Duration,
}

impl RetryBudget {
    /// The controller's requests: 11 attempts within 60 s, each at most 60 s (the API server's own
    /// `--request-timeout`, after which it answers 504 itself).
    pub const CONTROLLER: RetryBudget = RetryBudget {
        max_attempts: 11,
        total: Duration::from_secs(60),
        attempt_timeout: Duration::from_secs(60),
    };

    /// The leader Lease's requests: everything, retries included, within the renew deadline (as
    /// kube-controller-manager sets its leader-election client's timeout to the renew deadline).
    pub fn lease(renew_deadline: Duration) -> RetryBudget {
        RetryBudget {
            max_attempts: 11,
            total: renew_deadline,
            attempt_timeout: renew_deadline,
        }
    }
}

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this status code and, if any, its `Retry-After` seconds.
    Status { code: u16, retry_after: Option<u64> },
    /// No connection could be made: the request was not sent.
    ConnectFailed,
    /// The request may have been sent: a broken connection, a protocol error, or the attempt timed
    /// out.
    Failed,
}

/// Whether `method` may be sent twice with the effect of once.
pub fn is_idempotent(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .contains(method)
}

/// The wait before retry number `retry` (1 for the first retry) when the server named none: 100 ms
/// doubling, at most 5 s.
pub fn backoff(retry: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << retry.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(5_000))
}

/// Whether to send the request again after attempt number `attempt` (1-based) ended with `outcome`,
/// `elapsed` after the first attempt was sent; returns the wait before the next attempt.
pub fn next_attempt(
    method: &Method,
    outcome: Outcome,
    attempt: u32,
    elapsed: Duration,
    budget: &RetryBudget,
) -> Option<Duration> {
    if attempt >= budget.max_attempts {
        return None;
    }
    let idempotent = is_idempotent(method);
    let wait = match outcome {
        Outcome::Status {
            code: 429,
            retry_after: Some(seconds),
        } => Duration::from_secs(seconds),
        Outcome::Status {
            code: 429 | 502 | 503 | 504,
            retry_after,
        } if idempotent => retry_after
            .map(Duration::from_secs)
            .unwrap_or_else(|| backoff(attempt)),
        Outcome::Status { .. } => return None,
        Outcome::ConnectFailed => backoff(attempt),
        Outcome::Failed if idempotent => backoff(attempt),
        Outcome::Failed => return None,
    };
    (elapsed.saturating_add(wait) < budget.total).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: RetryBudget = RetryBudget::CONTROLLER;

    fn status(code: u16, retry_after: Option<u64>) -> Outcome {
        Outcome::Status { code, retry_after }
    }

    fn first(method: Method, outcome: Outcome) -> Option<Duration> {
        next_attempt(&method, outcome, 1, Duration::ZERO, &B)
    }

    #[test]
    fn a_create_answered_504_or_cut_off_is_never_sent_again() {
        for outcome in [
            status(504, None),
            status(503, None),
            status(500, None),
            status(504, Some(1)),
            Outcome::Failed,
        ] {
            assert_eq!(first(Method::POST, outcome), None, "{outcome:?}");
            assert_eq!(first(Method::PATCH, outcome), None, "{outcome:?}");
        }
    }

    #[test]
    fn a_429_with_retry_after_is_retried_for_every_verb_after_that_wait() {
        for method in [Method::POST, Method::PATCH, Method::GET, Method::DELETE] {
            assert_eq!(
                first(method.clone(), status(429, Some(3))),
                Some(Duration::from_secs(3)),
                "{method}"
            );
        }
        assert_eq!(first(Method::POST, status(429, None)), None);
        assert_eq!(
            first(Method::GET, status(429, None)),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn idempotent_verbs_are_retried_after_gateway_errors_and_broken_connections() {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            for outcome in [
                status(502, None),
                status(503, None),
                status(504, None),
                Outcome::Failed,
            ] {
                assert!(
                    first(method.clone(), outcome).is_some(),
                    "{method} {outcome:?}"
                );
            }
            assert_eq!(first(method.clone(), status(500, None)), None);
            assert_eq!(first(method.clone(), status(409, None)), None);
            assert_eq!(first(method.clone(), status(404, None)), None);
        }
    }

    #[test]
    fn a_request_that_was_never_sent_is_retried_whatever_its_verb() {
        assert!(first(Method::POST, Outcome::ConnectFailed).is_some());
    }

    #[test]
    fn retries_stop_at_the_attempt_limit_and_the_deadline() {
        let get = Method::GET;
        let failed = Outcome::Failed;
        assert!(next_attempt(&get, failed, 10, Duration::ZERO, &B).is_some());
        assert_eq!(next_attempt(&get, failed, 11, Duration::ZERO, &B), None);
        // A wait that would start the next attempt after the deadline ends the retries.
        assert_eq!(
            next_attempt(&get, status(429, Some(30)), 1, Duration::from_secs(31), &B),
            None
        );
        assert!(
            next_attempt(&get, status(429, Some(30)), 1, Duration::from_secs(29), &B).is_some()
        );
        let lease = RetryBudget::lease(Duration::from_secs(10));
        assert_eq!(
            next_attempt(&get, status(429, Some(15)), 1, Duration::ZERO, &lease),
            None
        );
    }

    #[test]
    fn backoff_doubles_from_100ms_to_5s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(6), Duration::from_millis(3200));
        assert_eq!(backoff(7), Duration::from_secs(5));
        assert_eq!(backoff(40), Duration::from_secs(5));
    }
}
