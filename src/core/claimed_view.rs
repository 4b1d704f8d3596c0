//! The DaemonSet's pods as a later step of the same sync must see them: the pods claimed at the
//! start of the sync, in the version the cache holds now, plus the pods the sync created since.
//!
//! Upstream reads its pods again (`getNodesToDaemonPods`) before the rolling update and before the
//! status, after manage's creates and deletes may have been observed. Planning the rolling update
//! on the view from before manage can delete an old pod manage just deleted, or surge a second pod
//! onto a node whose failed pod manage just replaced.

use crate::core::cached_pod::CachedPod;
use crate::core::ownership::controller_uid;
use std::collections::HashSet;
use std::sync::Arc;

/// A set of pod UIDs (a sync builds these over all its pods).
pub type Uids<T> = HashSet<T, crate::core::HashState>;

/// The claimed pods of DaemonSet `ds_uid` now. `claimed` are the UIDs of the pods the sync claimed
/// at its start (adopted ones included, released ones not; a sync builds the set once for both of
/// its later reads); `seen` the UIDs of every candidate pod it looked at
/// then; `cache_now` the DaemonSet's candidate pods in the cache now. A pod is kept when it was
/// claimed, or when it is new since the start and controlled by the DaemonSet (the sync's own
/// creates). Pods gone from the cache are gone from the view.
pub fn claimed_now(
    claimed: &Uids<&str>,
    seen: &Uids<&str>,
    cache_now: Vec<Arc<CachedPod>>,
    ds_uid: &str,
) -> Vec<Arc<CachedPod>> {
    cache_now
        .into_iter()
        .filter(|p| {
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            claimed.contains(uid)
                || (!seen.contains(uid) && controller_uid(&p.metadata) == Some(ds_uid))
        })
        .collect()
}

/// The UIDs of `pods`, borrowed (a sync keeps its candidate pods while it runs).
pub fn uids(pods: &[Arc<CachedPod>]) -> Uids<&str> {
    pods.iter()
        .filter_map(|p| p.metadata.uid.as_deref())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{daemonset, ds_pod, with_name};

    fn pod(name: &str, owned: bool) -> Arc<CachedPod> {
        let ds = daemonset("foo");
        let mut p = with_name(ds_pod(&ds, "node-0", "h1"), name);
        p.metadata.uid = Some(format!("uid-{name}"));
        if !owned {
            p.metadata.owner_references = None;
        }
        Arc::new(p)
    }

    fn names(pods: &[Arc<CachedPod>]) -> Vec<&str> {
        pods.iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect()
    }

    #[test]
    fn keeps_claimed_pods_in_their_current_version_and_the_syncs_new_pods() {
        let ds_uid = daemonset("foo").metadata.uid.unwrap_or_default();
        let kept = pod("kept", true);
        let adopted = pod("adopted", false); // claimed; the cache does not show the owner yet
        let released = pod("released", true); // not claimed; the cache still shows the owner
        let deleted = pod("deleted", true);
        let stranger = pod("stranger", false);
        let claimed = vec![kept.clone(), adopted.clone(), deleted.clone()];
        let candidates = [
            kept.clone(),
            adopted.clone(),
            released.clone(),
            deleted,
            stranger.clone(),
        ];
        let seen = uids(&candidates);
        let created = pod("created", true);
        let orphan_new = pod("orphan-new", false);
        let now = claimed_now(
            &uids(&claimed),
            &seen,
            vec![kept, adopted, released, stranger, created, orphan_new],
            &ds_uid,
        );
        assert_eq!(names(&now), vec!["kept", "adopted", "created"]);
    }
}
