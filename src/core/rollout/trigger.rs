//! Which `DaemonSetRollout` change queues its DaemonSet: an add, a delete, or a spec change
//! (`metadata.generation`); status-only updates, which are the controller's own writes, queue
//! nothing, so writing status never loops.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::core::triggers::Change;

/// `(namespace, name)` of the DaemonSet to queue for `change` of a DaemonSetRollout (the DaemonSet
/// has the same namespace and name), or `None` when the change cannot alter a decision. `meta`
/// reads an object's metadata (the shell caches the rollout in a wrapper).
pub fn rollout_change<K>(
    change: &Change<K>,
    meta: impl Fn(&K) -> &ObjectMeta,
) -> Option<(String, String)> {
    let key = |k: &Arc<K>| {
        let m = meta(k);
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        )
    };
    match change {
        Change::Added(k) | Change::Deleted(k) => Some(key(k)),
        Change::Updated { old, new } => {
            let (o, n) = (meta(old), meta(new));
            let changed = o.generation != n.generation || o.uid != n.uid;
            changed.then(|| key(new))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(generation: i64, rv: &str) -> Arc<ObjectMeta> {
        Arc::new(ObjectMeta {
            name: Some("agent".into()),
            namespace: Some("ns".into()),
            uid: Some("u1".into()),
            generation: Some(generation),
            resource_version: Some(rv.into()),
            ..Default::default()
        })
    }

    fn queued(change: Change<ObjectMeta>) -> Option<(String, String)> {
        rollout_change(&change, |m| m)
    }

    #[test]
    fn add_delete_and_spec_changes_queue_the_daemonset_of_the_same_name() {
        let key = Some(("ns".to_string(), "agent".to_string()));
        assert_eq!(queued(Change::Added(meta(1, "1"))), key);
        assert_eq!(queued(Change::Deleted(meta(1, "1"))), key);
        assert_eq!(
            queued(Change::Updated {
                old: meta(1, "1"),
                new: meta(2, "2")
            }),
            key
        );
    }

    #[test]
    fn status_only_updates_queue_nothing() {
        assert_eq!(
            queued(Change::Updated {
                old: meta(1, "1"),
                new: meta(1, "2")
            }),
            None
        );
    }

    #[test]
    fn a_replaced_object_queues_even_at_the_same_generation() {
        let mut other = (*meta(1, "5")).clone();
        other.uid = Some("u2".into());
        assert!(
            queued(Change::Updated {
                old: meta(1, "1"),
                new: Arc::new(other)
            })
            .is_some()
        );
    }
}
