//! Runtime wiring: what runs the controller as a component of a cluster, outside the DaemonSet logic.
//!
//! - [`cli`]: command-line flags and client configuration of the `everynode` binary;
//! - [`kubectl_plugin`]: the same binary as `kubectl everynode` (chosen by argv[0]);
//! - [`client`]: the API client (HTTP/2 transport, retries of idempotent requests, per-attempt
//!   timeouts, rate limit, request metrics), with [`token_bucket`] and [`retry`];
//! - [`leader`]: leader election on a Lease;
//! - [`metrics`], [`readiness`] and [`http`]: what `--metrics-bind-address` serves;
//! - [`event_correlator`]: client-go's event aggregation and spam filter.

pub mod cli;
pub mod client;
pub mod event_correlator;
pub mod http;
pub mod kubectl_plugin;
pub mod leader;
pub mod metrics;
pub mod readiness;
pub mod retry;
pub mod token_bucket;
