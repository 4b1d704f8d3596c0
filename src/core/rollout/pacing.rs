//! Pacing: the minimum time between the starts of two node updates (`minSecondsBetweenNodeUpdates`,
//! kubernetes#111073).
//!
//! The anchor is the latest of the recorded `lastUpdateStartTime`, the newest creation of an
//! update-revision pod and the newest deletion (minus its grace period) of an outdated pod, so
//! it survives a restart of the controller and a cache that lags its writes.

use std::sync::Arc;

use crate::core::cached_pod::CachedPod;
use k8s_openapi::jiff::SignedDuration;

use crate::core::Timestamp;
use crate::core::pod_state::is_updated;

/// When the last node update started, as far as the status and the pods tell.
pub fn pacing_anchor(
    recorded: Option<Timestamp>,
    pods: &[Arc<CachedPod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<Timestamp> {
    let from_pods = pods.iter().filter_map(|pod| {
        if is_updated(pod, hash, generation) {
            pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
        } else {
            let deleted = pod.metadata.deletion_timestamp.as_ref()?.0;
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            deleted.checked_sub(SignedDuration::from_secs(grace)).ok()
        }
    });
    recorded.into_iter().chain(from_pods).max()
}

/// The earliest time the next node update may start (None: now).
pub fn next_start_at(anchor: Option<Timestamp>, seconds: i64) -> Option<Timestamp> {
    if seconds <= 0 {
        return None;
    }
    anchor.and_then(|a| a.checked_add(SignedDuration::from_secs(seconds)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{
        daemonset, ds_pod, ts, with_creation_timestamp, with_deletion_timestamp,
    };

    #[test]
    fn the_anchor_is_the_latest_start_the_status_or_the_pods_show() {
        let ds = daemonset("agent");
        let new = Arc::new(with_creation_timestamp(ds_pod(&ds, "a", "new"), 50));
        let mut old = with_deletion_timestamp(ds_pod(&ds, "b", "old"), 100);
        old.metadata.deletion_grace_period_seconds = Some(30);
        let old_created_late = Arc::new(with_creation_timestamp(ds_pod(&ds, "c", "old"), 500));
        let pods = vec![new.clone(), Arc::new(old), old_created_late];
        assert_eq!(
            pacing_anchor(Some(ts(10)), &pods, "new", None),
            Some(ts(70))
        );
        assert_eq!(
            pacing_anchor(Some(ts(90)), &pods, "new", None),
            Some(ts(90))
        );
        assert_eq!(pacing_anchor(None, &[], "new", None), None);
        assert_eq!(next_start_at(Some(ts(70)), 30), Some(ts(100)));
        assert_eq!(next_start_at(Some(ts(70)), 0), None);
    }
}
