//! everynode: a Kubernetes DaemonSet controller that keeps one pod on every node that should run one.
//!
//! Layers:
//! - [`api`]: the custom resources everynode serves (`DaemonSetRollout`): types, schema, CRD.
//! - [`core`]: the functional core. Every decision (placement, what to create and delete, status,
//!   revisions) is a pure function of plain inputs: no client, no async, no clock of its own.
//! - [`controller`]: the imperative shell. It watches the cluster, reads caches, calls the core and
//!   applies its plan.
//! - [`inspect`]: the read-only operator commands (`explain`, `status`): they read the cluster with
//!   the user's kubeconfig and explain it with the core.
//! - [`runtime`]: the wiring that runs it as a cluster component: flags, the API client, leader
//!   election, metrics, health and readiness.

pub mod api;
pub mod controller;
pub mod core;
pub mod inspect;
pub mod runtime;
