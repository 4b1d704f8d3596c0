//! The functional core: pure decisions of the DaemonSet controller, one file per concept.
//!
//! Nothing in here talks to the API server, awaits, or reads a clock: time comes in as a
//! [`Timestamp`] argument. The upstream behaviour each function reproduces is described in
//! `../shared/reference/daemonset-controller.md`; section numbers in the docs below refer to it.

pub use k8s_openapi::jiff::Timestamp;

/// How the maps and sets a sync fills or reads once per pod or node (node names, pod UIDs, cache
/// keys) hash their keys: foldhash, with a random seed per map, several times cheaper than the
/// standard SipHash on short keys (SipHash showed in issue 14's profile). Its resistance to
/// crafted collisions is weaker than SipHash's; the keys are names the API server accepted.
pub type HashState = foldhash::fast::RandomState;

use std::time::Duration;

/// The earliest of some optional delays (when to look at a DaemonSet again).
pub fn earliest(delays: impl IntoIterator<Item = Option<Duration>>) -> Option<Duration> {
    delays.into_iter().flatten().min()
}

pub mod backoff;
pub mod budget;
pub mod cached_meta;
pub mod cached_node;
pub mod cached_pod;
pub mod claimed_view;
pub mod create_pacing;
#[cfg(test)]
pub mod decision_corpus;
pub mod events;
pub mod expectations;
#[cfg(test)]
pub mod fixtures;
pub mod history;
pub mod labels;
pub mod manage;
pub mod node_affinity;
pub mod node_reason;
pub mod ownership;
pub mod placement;
pub mod pod_state;
pub mod pod_template;
pub mod pods_by_node;
pub mod progress;
pub mod revision_data;
pub mod rolling_update;
pub mod rollout;
pub mod rollout_status;
pub mod said;
pub mod selector;
pub mod shrink;
#[cfg(test)]
pub mod simulation;
pub mod slow_start;
pub mod spec_check;
pub mod status;
pub mod status_pacing;
pub mod sync_pacing;
pub mod tolerations;
pub mod triggers;
pub mod unschedulable;
pub mod work_queue;
