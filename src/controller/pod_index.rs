//! The pod cache with the two indexes upstream added for scale (§1.1): pods by controller UID plus
//! orphans by namespace ([`super::owner_index`]), and pods by node name on top, so one sync costs what
//! its DaemonSet owns and one node event costs what runs on that node.

use super::object_cache::{Change, Groups, group, insert_in, key, reindex, remove_from};
use super::owner_index::OwnerIndex;
use crate::core::cached_pod::CachedPod;
use kube::runtime::watcher::Event;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct PodIndex {
    owners: OwnerIndex<CachedPod>,
    by_node: Groups<CachedPod>,
}

fn node_of(pod: &CachedPod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl PodIndex {
    /// Applies a watch event to the cache and the indexes; returns the changes.
    pub fn apply(&mut self, event: Event<CachedPod>) -> Vec<Change<CachedPod>> {
        let changes = self.owners.apply(event);
        reindex(self, &changes, Self::unindex, Self::index);
        changes
    }

    fn index(&mut self, pod: &Arc<CachedPod>) {
        if let Some(node) = node_of(pod) {
            insert_in(&mut self.by_node, node, key(pod.as_ref()), pod);
        }
    }

    fn unindex(&mut self, pod: &CachedPod) {
        if let Some(node) = node_of(pod) {
            remove_from(&mut self.by_node, node, &key(pod));
        }
    }

    /// Pods bound to `node`.
    pub fn on_node(&self, node: &str) -> Vec<Arc<CachedPod>> {
        group(&self.by_node, node)
            .map(|(_, p)| Arc::clone(p))
            .collect()
    }

    /// The pods a DaemonSet may claim: those it controls (upstream's pod index by controller UID,
    /// which is not namespaced) plus the orphans of its namespace.
    pub fn candidates(&self, namespace: &str, controller_uid: &str) -> Vec<Arc<CachedPod>> {
        let mut v = self.owners.controlled_by(controller_uid);
        v.extend(self.owners.orphans(namespace));
        v
    }

    /// Orphan pods of a namespace.
    pub fn orphans(&self, namespace: &str) -> Vec<Arc<CachedPod>> {
        self.owners.orphans(namespace)
    }

    pub fn synced(&self) -> bool {
        self.owners.synced()
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(name: &str, node: Option<&str>, owner: Option<&str>, rv: &str) -> CachedPod {
        CachedPod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "DaemonSet".into(),
                        name: "ds".into(),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]
                }),
                ..Default::default()
            },
            spec: Some(crate::core::cached_pod::CachedPodSpec {
                node_name: node.map(str::to_string),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn names(pods: Vec<Arc<CachedPod>>) -> Vec<String> {
        let mut v: Vec<String> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn indexes_follow_binding_adoption_and_deletion() {
        let mut idx = PodIndex::default();
        idx.apply(Event::Apply(pod("a", None, Some("u1"), "1")));
        idx.apply(Event::Apply(pod("b", Some("n1"), None, "1")));
        assert_eq!(names(idx.candidates("ns", "u1")), ["a", "b"]);
        assert!(idx.on_node("n1").len() == 1 && idx.on_node("n2").is_empty());
        // a gets bound, b gets adopted by u2
        idx.apply(Event::Apply(pod("a", Some("n2"), Some("u1"), "2")));
        idx.apply(Event::Apply(pod("b", Some("n1"), Some("u2"), "2")));
        assert_eq!(names(idx.candidates("ns", "u1")), ["a"]);
        assert_eq!(names(idx.candidates("ns", "u2")), ["b"]);
        assert_eq!(names(idx.on_node("n2")), ["a"]);
        // The indexes hold the objects themselves: each read gives the version last applied.
        let a = idx.candidates("ns", "u1");
        assert_eq!(a[0].metadata.resource_version.as_deref(), Some("2"));
        idx.apply(Event::Apply(pod("a", Some("n2"), Some("u1"), "2b")));
        for a in [idx.candidates("ns", "u1"), idx.on_node("n2")] {
            assert_eq!(a[0].metadata.resource_version.as_deref(), Some("2b"));
        }
        assert!(idx.orphans("ns").is_empty());
        idx.apply(Event::Delete(pod("a", Some("n2"), Some("u1"), "3")));
        assert!(idx.on_node("n2").is_empty() && idx.candidates("ns", "u1").is_empty());
    }
}
