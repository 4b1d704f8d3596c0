//! everynode: a Kubernetes DaemonSet controller that keeps one pod on every node that should run one.
//!
//! Layers:
//! - [`core`]: the functional core. Every decision (placement, what to create and delete, status,
//!   revisions) is a pure function of plain inputs: no client, no async, no clock of its own.
//! - [`controller`]: the imperative shell. It watches the cluster, reads caches, calls the core and
//!   applies its plan.
//! - [`cli`]: command-line flags and client configuration of the `everynode` binary.

pub mod cli;
pub mod controller;
pub mod core;
