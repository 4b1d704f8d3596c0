//! everynode: a Kubernetes DaemonSet controller that keeps one pod on every node that should run one.
//!
//! Layers:
//! - [`core`]: the functional core. Every decision (placement, what to create and delete, status,
//!   revisions) is a pure function of plain inputs: no client, no async, no clock of its own.
//! - [`controller`]: the imperative shell. It watches the cluster, reads caches, calls the core and
//!   applies its plan.
//! - [`cli`]: command-line flags and client configuration of the `everynode` binary.
//! - [`client`]: the API client with its rate limit and request metrics; [`leader`]: leader
//!   election; [`metrics`], [`readiness`] and [`http`]: what `--metrics-bind-address` serves.

pub mod cli;
pub mod client;
pub mod controller;
pub mod core;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod readiness;
