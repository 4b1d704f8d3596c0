//! The ControllerRevision cache with the indexes a sync reads through: revisions by controller UID,
//! and revisions without a controller by namespace (the ones a DaemonSet may adopt). A sync reads
//! only its own DaemonSet's candidates, not every revision in the cluster (StatefulSet histories
//! included, whose `data` the slim decoding does not even keep: [`super::slim::revision`]).

use super::object_cache::{Change, Key, ObjectCache, key};
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::runtime::watcher::Event;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct RevisionIndex {
    cache: ObjectCache<ControllerRevision>,
    by_controller: HashMap<String, HashSet<Key>>,
    orphans_by_namespace: HashMap<String, HashSet<Key>>,
}

fn controller_uid(r: &ControllerRevision) -> Option<&str> {
    crate::core::ownership::controller_uid(&r.metadata)
}

fn remove(map: &mut HashMap<String, HashSet<Key>>, at: &str, k: &Key) {
    if let Some(set) = map.get_mut(at) {
        set.remove(k);
        if set.is_empty() {
            map.remove(at);
        }
    }
}

impl RevisionIndex {
    /// Applies a watch event to the cache and the indexes; returns the changes.
    pub fn apply(&mut self, event: Event<ControllerRevision>) -> Vec<Change<ControllerRevision>> {
        let changes = self.cache.apply(event);
        for change in &changes {
            match change {
                Change::Added(new) => self.index(new),
                Change::Updated { old, new } => {
                    self.unindex(old);
                    self.index(new);
                }
                Change::Deleted(old) => self.unindex(old),
            }
        }
        changes
    }

    fn index(&mut self, r: &ControllerRevision) {
        let k = key(r);
        match controller_uid(r) {
            Some(uid) => self.by_controller.entry(uid.to_string()).or_default(),
            None => self.orphans_by_namespace.entry(k.0.clone()).or_default(),
        }
        .insert(k);
    }

    fn unindex(&mut self, r: &ControllerRevision) {
        let k = key(r);
        match controller_uid(r) {
            Some(uid) => remove(&mut self.by_controller, uid, &k),
            None => remove(&mut self.orphans_by_namespace, &k.0, &k),
        }
    }

    fn resolve<'a>(
        &'a self,
        keys: impl IntoIterator<Item = &'a Key>,
    ) -> Vec<Arc<ControllerRevision>> {
        keys.into_iter()
            .filter_map(|(ns, name)| self.cache.get(ns, name))
            .collect()
    }

    /// Revisions in `namespace` controlled by `controller_uid`.
    pub fn owned(&self, namespace: &str, controller_uid: &str) -> Vec<Arc<ControllerRevision>> {
        let keys = self.by_controller.get(controller_uid).into_iter().flatten();
        self.resolve(keys.filter(|(ns, _)| ns == namespace))
    }

    /// The revisions a DaemonSet may claim: those it controls plus the orphans of its namespace.
    pub fn candidates(
        &self,
        namespace: &str,
        controller_uid: &str,
    ) -> Vec<Arc<ControllerRevision>> {
        let mut v = self.owned(namespace, controller_uid);
        v.extend(
            self.resolve(
                self.orphans_by_namespace
                    .get(namespace)
                    .into_iter()
                    .flatten(),
            ),
        );
        v
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<ControllerRevision>> {
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

    /// A sync sees its own revisions and its namespace's orphans, never another owner's or another
    /// namespace's; adoption, release and deletion move revisions between the indexes.
    #[test]
    fn candidates_are_own_revisions_and_the_namespace_orphans() {
        let mut idx = RevisionIndex::default();
        idx.apply(Event::Apply(rev("ns", "mine", Some("u1"), "1")));
        idx.apply(Event::Apply(rev("ns", "orphan", None, "1")));
        idx.apply(Event::Apply(rev("ns", "other", Some("u2"), "1")));
        idx.apply(Event::Apply(rev("elsewhere", "orphan2", None, "1")));
        assert_eq!(names(idx.candidates("ns", "u1")), ["mine", "orphan"]);
        assert_eq!(names(idx.owned("ns", "u1")), ["mine"]);
        assert!(idx.candidates("elsewhere", "u1").len() == 1);
        // u1 adopts the orphan; u2's revision is released.
        idx.apply(Event::Apply(rev("ns", "orphan", Some("u1"), "2")));
        idx.apply(Event::Apply(rev("ns", "other", None, "2")));
        assert_eq!(names(idx.owned("ns", "u1")), ["mine", "orphan"]);
        assert_eq!(names(idx.candidates("ns", "u2")), ["other"]);
        idx.apply(Event::Delete(rev("ns", "mine", Some("u1"), "3")));
        assert_eq!(names(idx.candidates("ns", "u1")), ["orphan", "other"]);
        assert_eq!(idx.len(), 3);
    }
}
