//! A watch-fed cache indexed by owner: objects by controller UID, and objects without a controller
//! by namespace (the ones a DaemonSet may adopt), so a sync reads only its own DaemonSet's candidates
//! and not every object of the kind in the cluster. ControllerRevisions are cached this way (their
//! StatefulSet histories included, whose `data` the slim decoding does not keep:
//! [`super::slim::revision`]); pods too, with a node index on top ([`super::pod_index`]).

use super::object_cache::{
    Change, Groups, ObjectCache, group, insert_in, key, reindex, remove_from,
};
use kube::Resource;
use kube::runtime::watcher::Event;
use std::sync::Arc;

/// The ControllerRevision cache a sync reads its history from.
pub type RevisionIndex = OwnerIndex<k8s_openapi::api::apps::v1::ControllerRevision>;

#[derive(Debug)]
pub struct OwnerIndex<K> {
    cache: ObjectCache<K>,
    by_controller: Groups<K>,
    orphans_by_namespace: Groups<K>,
}

impl<K> Default for OwnerIndex<K> {
    fn default() -> Self {
        Self {
            cache: ObjectCache::default(),
            by_controller: Groups::default(),
            orphans_by_namespace: Groups::default(),
        }
    }
}

impl<K: Resource> OwnerIndex<K> {
    /// Applies a watch event to the cache and the indexes; returns the changes.
    pub fn apply(&mut self, event: Event<K>) -> Vec<Change<K>> {
        let changes = self.cache.apply(event);
        reindex(self, &changes, Self::unindex, Self::index);
        changes
    }

    fn index(&mut self, obj: &Arc<K>) {
        let k = key(obj.as_ref());
        match crate::core::ownership::controller_uid(obj.meta()) {
            Some(uid) => insert_in(&mut self.by_controller, uid, k, obj),
            None => {
                let ns = k.0.clone();
                insert_in(&mut self.orphans_by_namespace, &ns, k, obj)
            }
        }
    }

    fn unindex(&mut self, obj: &K) {
        let k = key(obj);
        match crate::core::ownership::controller_uid(obj.meta()) {
            Some(uid) => remove_from(&mut self.by_controller, uid, &k),
            None => remove_from(&mut self.orphans_by_namespace, &k.0, &k),
        }
    }

    /// Objects controlled by `controller_uid`, in any namespace (upstream's pod index by controller
    /// UID is not namespaced either).
    pub fn controlled_by(&self, controller_uid: &str) -> Vec<Arc<K>> {
        group(&self.by_controller, controller_uid)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }

    /// Objects in `namespace` controlled by `controller_uid`.
    pub fn owned(&self, namespace: &str, controller_uid: &str) -> Vec<Arc<K>> {
        group(&self.by_controller, controller_uid)
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }

    /// Objects of `namespace` without a controller.
    pub fn orphans(&self, namespace: &str) -> Vec<Arc<K>> {
        group(&self.orphans_by_namespace, namespace)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }

    /// The objects a DaemonSet may claim from its namespace, as upstream lists revisions: those it
    /// controls there plus the namespace's orphans.
    pub fn candidates(&self, namespace: &str, controller_uid: &str) -> Vec<Arc<K>> {
        let mut v = self.owned(namespace, controller_uid);
        v.extend(self.orphans(namespace));
        v
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.cache.get(namespace, name)
    }

    pub fn synced(&self) -> bool {
        self.cache.synced()
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ControllerRevision;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn rev(ns: &str, name: &str, owner: Option<&str>, rv: &str) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                resource_version: Some(rv.into()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        kind: "DaemonSet".into(),
                        uid: uid.into(),
                        controller: Some(true),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(v: Vec<Arc<ControllerRevision>>) -> Vec<String> {
        let mut v: Vec<String> = v.iter().filter_map(|r| r.metadata.name.clone()).collect();
        v.sort();
        v
    }

    /// A sync sees its own objects and its namespace's orphans, never another owner's or another
    /// namespace's; adoption, release and deletion move objects between the indexes.
    #[test]
    fn candidates_are_own_objects_and_the_namespace_orphans() {
        let mut idx = RevisionIndex::default();
        idx.apply(Event::Apply(rev("ns", "mine", Some("u1"), "1")));
        idx.apply(Event::Apply(rev("ns", "orphan", None, "1")));
        idx.apply(Event::Apply(rev("ns", "other", Some("u2"), "1")));
        idx.apply(Event::Apply(rev("elsewhere", "orphan2", None, "1")));
        idx.apply(Event::Apply(rev("elsewhere", "stray", Some("u1"), "1")));
        assert_eq!(names(idx.candidates("ns", "u1")), ["mine", "orphan"]);
        assert_eq!(names(idx.owned("ns", "u1")), ["mine"]);
        assert_eq!(names(idx.controlled_by("u1")), ["mine", "stray"]);
        assert_eq!(
            names(idx.candidates("elsewhere", "u1")),
            ["orphan2", "stray"]
        );
        // u1 adopts the orphan; u2's object is released.
        idx.apply(Event::Apply(rev("ns", "orphan", Some("u1"), "2")));
        idx.apply(Event::Apply(rev("ns", "other", None, "2")));
        assert_eq!(names(idx.owned("ns", "u1")), ["mine", "orphan"]);
        assert_eq!(names(idx.candidates("ns", "u2")), ["other"]);
        assert_eq!(names(idx.orphans("ns")), ["other"]);
        idx.apply(Event::Delete(rev("ns", "mine", Some("u1"), "3")));
        assert_eq!(names(idx.candidates("ns", "u1")), ["orphan", "other"]);
        assert_eq!(idx.len(), 4);
        // Emptied sets are dropped, so the maps shrink with the cluster.
        idx.apply(Event::Delete(rev("ns", "other", None, "4")));
        idx.apply(Event::Delete(rev("ns", "orphan", Some("u1"), "4")));
        idx.apply(Event::Delete(rev("elsewhere", "stray", Some("u1"), "4")));
        assert!(idx.by_controller.is_empty());
        assert_eq!(idx.orphans_by_namespace.len(), 1);
    }
}
