//! The progress deadline's clock (stand-in until core-b's version merges).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::SignedDuration;

use crate::api::DaemonSetRolloutStatus;
use crate::api::daemonset_rollout::HighWater;
use crate::core::Timestamp;

/// The clock after this sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    pub last_progress: Timestamp,
    pub high_water: HighWater,
    pub exceeded: bool,
    pub requeue_after: Option<Duration>,
}

/// Progress is a new revision, leaving a hold, or a gain over the high-water mark.
pub fn progress_clock(
    previous: &DaemonSetRolloutStatus,
    hash: &str,
    updated: i32,
    available: i32,
    running: bool,
    deadline_seconds: i64,
    now: Timestamp,
) -> Clock {
    let high = previous.high_water.clone().filter(|h| h.revision == hash);
    let gained = high
        .as_ref()
        .is_none_or(|h| updated > h.updated || available > h.available);
    let left_hold = running && previous.phase != Some(crate::api::Phase::Progressing);
    let last_progress = match previous.last_progress_time.as_ref() {
        Some(Time(t)) if !gained && !left_hold => *t,
        _ => now,
    };
    let high_water = HighWater {
        revision: hash.to_string(),
        updated: high.as_ref().map_or(updated, |h| h.updated.max(updated)),
        available: high
            .as_ref()
            .map_or(available, |h| h.available.max(available)),
    };
    let at = last_progress
        .checked_add(SignedDuration::from_secs(deadline_seconds))
        .unwrap_or(now);
    let exceeded = running && at <= now;
    let requeue_after = (running && !exceeded)
        .then(|| now.duration_until(at).try_into().ok())
        .flatten();
    Clock {
        last_progress,
        high_water,
        exceeded,
        requeue_after,
    }
}
