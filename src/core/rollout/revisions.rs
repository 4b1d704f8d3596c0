//! The revision a rollback writes back, and the last complete revision of an adopted DaemonSet
//! (design §2.3 "Rollback", §2.4 "Adoption").
//!
//! A rollback needs a revision that ran on every eligible node (`lastCompleteRevision`), other than
//! the failing one, whose ControllerRevision still exists. Without one it is impossible, and the
//! reason says why; it never guesses further.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;

use crate::api::DaemonSetRolloutStatus;
use crate::core::pod_state::{hash_label, is_terminating, is_updated};
use crate::core::pods_by_node::NodePods;
use crate::core::rollout::RevisionRef;
use crate::core::status::template_generation;

/// Why no rollback target exists; the text is the reason an operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RollbackImpossible(pub String);

/// The owned ControllerRevision of `previous.lastCompleteRevision`, the revision to roll back to
/// from update revision `hash`. With several revisions of that hash, the newest (highest number).
pub fn rollback_target(
    previous: &DaemonSetRolloutStatus,
    revisions: &[RevisionRef],
    hash: &str,
) -> Result<RevisionRef, RollbackImpossible> {
    let Some(last) = previous
        .last_complete_revision
        .as_deref()
        .filter(|l| !l.is_empty())
    else {
        return Err(RollbackImpossible("no revision completed yet".to_string()));
    };
    if last == hash {
        return Err(RollbackImpossible(format!(
            "revision {hash} is itself the last complete revision"
        )));
    }
    revisions
        .iter()
        .filter(|r| r.hash == last)
        .max_by_key(|r| r.revision)
        .cloned()
        .ok_or_else(|| {
            RollbackImpossible(format!("revision {last}'s ControllerRevision was removed"))
        })
}

/// The last complete revision of a DaemonSet adopted with no status yet: `hash` when the
/// DaemonSet is complete now (`complete_now`); else the one revision every not-updated pod on a
/// wanted node runs (inferred); else none (no old pod, several old revisions, or an old pod
/// without a hash label). Terminating pods are left out.
pub fn last_complete_on_adoption(
    ds: &DaemonSet,
    wanted: &BTreeSet<String>,
    node_pods: &NodePods,
    hash: &str,
    complete_now: bool,
) -> Option<String> {
    if complete_now {
        return Some(hash.to_string());
    }
    let generation = template_generation(ds);
    let mut old = BTreeSet::new();
    for node in wanted {
        for pod in node_pods.get(node).into_iter().flatten() {
            if is_terminating(pod) || is_updated(pod, hash, generation) {
                continue;
            }
            old.insert(hash_label(pod).unwrap_or_default());
        }
    }
    match old.into_iter().collect::<Vec<_>>().as_slice() {
        [only] if !only.is_empty() => Some((*only).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::*;
    use std::sync::Arc;

    fn rev(name: &str, hash: &str, revision: i64) -> RevisionRef {
        RevisionRef {
            name: name.into(),
            hash: hash.into(),
            revision,
        }
    }

    fn status(last: Option<&str>) -> DaemonSetRolloutStatus {
        DaemonSetRolloutStatus {
            last_complete_revision: last.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn the_target_is_the_newest_revision_of_the_last_complete_hash() {
        let revisions = [
            rev("agent-1", "aaa", 1),
            rev("agent-3", "aaa", 3),
            rev("agent-2", "bbb", 2),
        ];
        assert_eq!(
            rollback_target(&status(Some("aaa")), &revisions, "bbb"),
            Ok(rev("agent-3", "aaa", 3))
        );
    }

    #[test]
    fn each_impossible_rollback_says_why() {
        let revisions = [rev("agent-2", "bbb", 2)];
        let why = |s, h| rollback_target(&status(s), &revisions, h).map_err(|e| e.to_string());
        assert_eq!(
            why(None, "bbb"),
            Err("no revision completed yet".to_string())
        );
        assert_eq!(
            why(Some(""), "bbb"),
            Err("no revision completed yet".to_string())
        );
        assert_eq!(
            why(Some("bbb"), "bbb"),
            Err("revision bbb is itself the last complete revision".to_string())
        );
        assert_eq!(
            why(Some("aaa"), "bbb"),
            Err("revision aaa's ControllerRevision was removed".to_string())
        );
    }

    fn node_pods(list: &[(&str, CachedPod)]) -> NodePods {
        let mut out = NodePods::default();
        for (node, pod) in list {
            out.entry(node.to_string())
                .or_default()
                .push(Arc::new(pod.clone()));
        }
        out
    }

    use crate::core::cached_pod::CachedPod;

    #[test]
    fn adoption_takes_the_update_revision_when_complete() {
        let ds = daemonset("agent");
        let pods = node_pods(&[("a", ds_pod(&ds, "a", "old"))]);
        let wanted: BTreeSet<String> = ["a".to_string()].into();
        assert_eq!(
            last_complete_on_adoption(&ds, &wanted, &pods, "new", true),
            Some("new".to_string())
        );
    }

    #[test]
    fn adoption_infers_the_one_old_revision_of_the_wanted_nodes() {
        let ds = daemonset("agent");
        let wanted: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let infer = |list: &[(&str, CachedPod)]| {
            last_complete_on_adoption(&ds, &wanted, &node_pods(list), "new", false)
        };
        // One old revision (plus updated pods, an unwanted node's other revision, a dying pod).
        assert_eq!(
            infer(&[
                ("a", ds_pod(&ds, "a", "old")),
                ("b", ds_pod(&ds, "b", "new")),
                ("x", ds_pod(&ds, "x", "older")),
                ("c", with_deletion_timestamp(ds_pod(&ds, "c", "older"), 1)),
            ]),
            Some("old".to_string())
        );
        // Two old revisions: no guess.
        assert_eq!(
            infer(&[
                ("a", ds_pod(&ds, "a", "old")),
                ("b", ds_pod(&ds, "b", "older"))
            ]),
            None
        );
        // No old pod, or one without a hash: none.
        assert_eq!(infer(&[("a", ds_pod(&ds, "a", "new"))]), None);
        assert_eq!(
            infer(&[("a", ds_pod(&ds, "a", "old")), ("b", ds_pod(&ds, "b", ""))]),
            None
        );
    }
}
