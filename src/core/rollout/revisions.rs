//! Last complete revision and rollback target (stand-in until core-b's version merges).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::DaemonSet;

use super::RevisionRef;
use crate::api::DaemonSetRolloutStatus;
use crate::core::pod_state::{hash_label, is_terminating, is_updated};
use crate::core::pods_by_node::NodePods;
use crate::core::status::template_generation;

/// Why there is nothing to roll back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackImpossible(pub String);

impl std::fmt::Display for RollbackImpossible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The owned revision of `previous.lastCompleteRevision`, when it is not `hash`.
pub fn rollback_target(
    previous: &DaemonSetRolloutStatus,
    revisions: &[RevisionRef],
    hash: &str,
) -> Result<RevisionRef, RollbackImpossible> {
    let Some(last) = previous.last_complete_revision.as_deref() else {
        return Err(RollbackImpossible("no revision has completed yet".into()));
    };
    if last == hash {
        return Err(RollbackImpossible(format!(
            "revision {hash} is the last complete one"
        )));
    }
    revisions
        .iter()
        .find(|r| r.hash == last)
        .cloned()
        .ok_or_else(|| RollbackImpossible(format!("the ControllerRevision of {last} was removed")))
}

/// At adoption: `hash` when complete now, else the one revision every not-updated wanted pod runs.
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
    let mut seen = BTreeMap::new();
    for (_, pods) in node_pods.iter().filter(|(n, _)| wanted.contains(*n)) {
        for pod in pods
            .iter()
            .filter(|p| !is_terminating(p) && !is_updated(p, hash, generation))
        {
            *seen
                .entry(hash_label(pod).unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
    }
    (seen.len() == 1)
        .then(|| seen.into_keys().next())
        .flatten()
        .filter(|h| !h.is_empty())
}
