//! A watch-fed cache of one kind of object that turns watch events, including re-lists, into the
//! add/update/delete changes informer handlers see; [`apply_to_store`] does the same for a kube
//! reflector store (the DaemonSets, whose store the workers read).

use crate::core::HashState;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::watcher::Event;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// `(namespace, name)`.
pub type Key = (String, String);

/// A map with the core's [`HashState`]: every sync resolves each of its pods by key.
pub type FastMap<K, V> = HashMap<K, V, HashState>;

/// A set with [`HashState`].
pub type FastSet<K> = HashSet<K, HashState>;

pub use crate::core::triggers::Change;

/// Objects by key, plus the buffer of a re-list in progress and the objects in key order, sorted
/// on first need after a change ([`ObjectCache::sorted`]).
#[derive(Debug)]
pub struct ObjectCache<K> {
    objects: FastMap<Key, Arc<K>>,
    relist: Option<FastMap<Key, Arc<K>>>,
    synced: bool,
    sorted: Mutex<Option<Arc<[Arc<K>]>>>,
}

impl<K> Default for ObjectCache<K> {
    fn default() -> Self {
        Self {
            objects: FastMap::default(),
            relist: None,
            synced: false,
            sorted: Mutex::new(None),
        }
    }
}

pub fn key<K: Resource>(obj: &K) -> Key {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// Keeps an index of `state` in step with a cache's changes: an added object is indexed, an updated
/// one unindexed as it was and indexed as it is, a deleted one unindexed.
pub fn reindex<K, S>(
    state: &mut S,
    changes: &[Change<K>],
    unindex: fn(&mut S, &K),
    index: fn(&mut S, &K),
) {
    for change in changes {
        match change {
            Change::Added(new) => index(state, new),
            Change::Updated { old, new } => {
                unindex(state, old);
                index(state, new);
            }
            Change::Deleted(old) => unindex(state, old),
        }
    }
}

/// Removes `k` from the set at `at`, and the set once it is empty (so the maps shrink with the
/// cluster).
pub fn remove_key(map: &mut FastMap<String, FastSet<Key>>, at: &str, k: &Key) {
    if let Some(set) = map.get_mut(at) {
        set.remove(k);
        if set.is_empty() {
            map.remove(at);
        }
    }
}

impl<K: Resource> ObjectCache<K> {
    /// Applies one watch event and returns the changes it makes. A re-list (`Init`..`InitDone`) is
    /// applied at `InitDone` as a diff: objects that appeared are added, changed ones updated and
    /// vanished ones deleted, so handlers never miss a delete that happened while the watch was down.
    pub fn apply(&mut self, event: Event<K>) -> Vec<Change<K>> {
        // A re-list replaces every object, changed or not: the sorted view would keep the old ones.
        let relisted = matches!(event, Event::InitDone);
        let changes = self.apply_event(event);
        if relisted || !changes.is_empty() {
            *self
                .sorted
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
        changes
    }

    fn apply_event(&mut self, event: Event<K>) -> Vec<Change<K>> {
        match event {
            Event::Init => {
                self.relist = Some(FastMap::default());
                Vec::new()
            }
            Event::InitApply(obj) => {
                let obj = Arc::new(obj);
                self.relist
                    .get_or_insert_with(FastMap::default)
                    .insert(key(obj.as_ref()), obj);
                Vec::new()
            }
            Event::InitDone => {
                let fresh = self.relist.take().unwrap_or_default();
                let mut changes = Vec::new();
                for (k, old) in &self.objects {
                    if !fresh.contains_key(k) {
                        changes.push(Change::Deleted(old.clone()));
                    }
                }
                for (k, new) in &fresh {
                    match self.objects.get(k) {
                        None => changes.push(Change::Added(new.clone())),
                        Some(old) if old.meta().resource_version != new.meta().resource_version => {
                            changes.push(Change::Updated {
                                old: old.clone(),
                                new: new.clone(),
                            })
                        }
                        Some(_) => {}
                    }
                }
                self.objects = fresh;
                self.synced = true;
                changes
            }
            Event::Apply(obj) => {
                let obj = Arc::new(obj);
                match self.objects.insert(key(obj.as_ref()), obj.clone()) {
                    None => vec![Change::Added(obj)],
                    Some(old) => vec![Change::Updated { old, new: obj }],
                }
            }
            Event::Delete(obj) => {
                let old = self
                    .objects
                    .remove(&key(&obj))
                    .unwrap_or_else(|| Arc::new(obj));
                vec![Change::Deleted(old)]
            }
        }
    }

    /// Whether the first full list has been applied.
    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.get_key(&(namespace.to_string(), name.to_string()))
    }

    /// The object under `key`.
    pub fn get_key(&self, key: &Key) -> Option<Arc<K>> {
        self.objects.get(key).cloned()
    }

    /// Every object in key order (for cluster-scoped objects, name order), shared: built once
    /// after each change and handed to every sync until the next (a sync at 5000 nodes sorted
    /// them itself before, issue 14).
    pub fn sorted(&self) -> Arc<[Arc<K>]> {
        let mut sorted = self.sorted.lock().unwrap_or_else(PoisonError::into_inner);
        sorted
            .get_or_insert_with(|| {
                let mut all: Vec<(&Key, &Arc<K>)> = self.objects.iter().collect();
                all.sort_unstable_by(|a, b| a.0.cmp(b.0));
                all.into_iter().map(|(_, o)| Arc::clone(o)).collect()
            })
            .clone()
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<K>> {
        self.objects.values()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Applies one watch event to a reflector store and returns the changes [`ObjectCache::apply`]
/// would, taking the old objects from the store itself before it changes: the store keeps the only
/// copy of each object (an [`ObjectCache`] beside it would hold a second).
pub fn apply_to_store<K>(writer: &mut Writer<K>, event: Event<K>) -> Vec<Change<K>>
where
    K: Resource + Clone,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let store = writer.as_reader();
    match &event {
        Event::Apply(obj) => {
            let r = ObjectRef::from_obj(obj);
            let old = store.get(&r);
            writer.apply_watcher_event(&event);
            let Some(new) = store.get(&r) else {
                return Vec::new();
            };
            match old {
                None => vec![Change::Added(new)],
                Some(old) => vec![Change::Updated { old, new }],
            }
        }
        Event::Delete(obj) => {
            let old = store.get(&ObjectRef::from_obj(obj));
            writer.apply_watcher_event(&event);
            let Event::Delete(obj) = event else {
                return Vec::new();
            };
            vec![Change::Deleted(old.unwrap_or_else(|| Arc::new(obj)))]
        }
        Event::Init | Event::InitApply(_) => {
            writer.apply_watcher_event(&event);
            Vec::new()
        }
        Event::InitDone => {
            let before: HashMap<Key, Arc<K>> = store
                .state()
                .into_iter()
                .map(|o| (key(o.as_ref()), o))
                .collect();
            writer.apply_watcher_event(&event);
            let after: HashMap<Key, Arc<K>> = store
                .state()
                .into_iter()
                .map(|o| (key(o.as_ref()), o))
                .collect();
            let mut changes = Vec::new();
            for (k, old) in &before {
                if !after.contains_key(k) {
                    changes.push(Change::Deleted(old.clone()));
                }
            }
            for (k, new) in after {
                match before.get(&k) {
                    None => changes.push(Change::Added(new)),
                    Some(old) if old.meta().resource_version != new.meta().resource_version => {
                        changes.push(Change::Updated {
                            old: old.clone(),
                            new,
                        })
                    }
                    Some(_) => {}
                }
            }
            changes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn kinds(changes: &[Change<ConfigMap>]) -> Vec<String> {
        let mut v: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Added(o) => format!("+{}", o.metadata.name.as_deref().unwrap_or_default()),
                Change::Updated { new, .. } => {
                    format!("~{}", new.metadata.name.as_deref().unwrap_or_default())
                }
                Change::Deleted(o) => {
                    format!("-{}", o.metadata.name.as_deref().unwrap_or_default())
                }
            })
            .collect();
        v.sort();
        v
    }

    fn sorted_names(c: &ObjectCache<ConfigMap>) -> Vec<String> {
        c.sorted()
            .iter()
            .map(|o| {
                format!(
                    "{}@{}",
                    o.metadata.name.as_deref().unwrap_or_default(),
                    o.metadata.resource_version.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }

    /// The shared sorted view is in key order and follows every change: adds, updates, deletes
    /// and a re-list that drops an object.
    #[test]
    fn the_sorted_view_is_in_key_order_and_follows_each_change() {
        let mut c = ObjectCache::default();
        for name in ["n3", "n1", "n2"] {
            c.apply(Event::Apply(cm(name, "1")));
        }
        assert_eq!(sorted_names(&c), ["n1@1", "n2@1", "n3@1"]);
        let shared = c.sorted();
        assert!(
            Arc::ptr_eq(&shared, &c.sorted()),
            "built once until a change"
        );
        c.apply(Event::Apply(cm("n2", "2")));
        assert_eq!(sorted_names(&c), ["n1@1", "n2@2", "n3@1"]);
        c.apply(Event::Apply(cm("n0", "1")));
        assert_eq!(sorted_names(&c), ["n0@1", "n1@1", "n2@2", "n3@1"]);
        c.apply(Event::Delete(cm("n1", "3")));
        assert_eq!(sorted_names(&c), ["n0@1", "n2@2", "n3@1"]);
        c.apply(Event::Init);
        c.apply(Event::InitApply(cm("n3", "1")));
        c.apply(Event::InitApply(cm("n2", "2")));
        assert_eq!(
            sorted_names(&c),
            ["n0@1", "n2@2", "n3@1"],
            "a re-list applies at its end"
        );
        c.apply(Event::InitDone);
        assert_eq!(sorted_names(&c), ["n2@2", "n3@1"]);
    }

    #[test]
    fn relist_is_applied_as_a_diff() {
        let mut c = ObjectCache::default();
        assert!(!c.synced());
        c.apply(Event::Init);
        c.apply(Event::InitApply(cm("a", "1")));
        c.apply(Event::InitApply(cm("b", "1")));
        assert_eq!(kinds(&c.apply(Event::InitDone)), ["+a", "+b"]);
        assert!(c.synced());
        assert_eq!(kinds(&c.apply(Event::Apply(cm("c", "2")))), ["+c"]);
        assert_eq!(kinds(&c.apply(Event::Apply(cm("c", "3")))), ["~c"]);
        // The watch drops; meanwhile a is deleted, b changes, c is unchanged, d appears.
        c.apply(Event::Init);
        c.apply(Event::InitApply(cm("b", "4")));
        c.apply(Event::InitApply(cm("c", "3")));
        c.apply(Event::InitApply(cm("d", "5")));
        assert_eq!(kinds(&c.apply(Event::InitDone)), ["+d", "-a", "~b"]);
        assert_eq!(c.len(), 3);
        assert_eq!(kinds(&c.apply(Event::Delete(cm("d", "6")))), ["-d"]);
        assert!(c.get("ns", "d").is_none());
    }

    /// The reflector store gives the same changes as the cache, and every object a change carries
    /// is the store's own `Arc`: one copy per object.
    #[test]
    fn a_reflector_store_gives_the_same_changes_from_its_only_copy() {
        let (store, mut w) = kube::runtime::reflector::store::<ConfigMap>();
        let mut apply = |e| {
            let changes = apply_to_store(&mut w, e);
            for c in &changes {
                if let Change::Added(o) | Change::Updated { new: o, .. } = c {
                    let held = store.get(&ObjectRef::from_obj(o.as_ref()));
                    assert!(
                        held.is_some_and(|h| Arc::ptr_eq(&h, o)),
                        "a change carries a second copy"
                    );
                }
            }
            kinds(&changes)
        };
        apply(Event::Init);
        apply(Event::InitApply(cm("a", "1")));
        apply(Event::InitApply(cm("b", "1")));
        assert_eq!(apply(Event::InitDone), ["+a", "+b"]);
        assert_eq!(apply(Event::Apply(cm("c", "2"))), ["+c"]);
        assert_eq!(apply(Event::Apply(cm("c", "3"))), ["~c"]);
        apply(Event::Init);
        apply(Event::InitApply(cm("b", "4")));
        apply(Event::InitApply(cm("c", "3")));
        apply(Event::InitApply(cm("d", "5")));
        assert_eq!(apply(Event::InitDone), ["+d", "-a", "~b"]);
        assert_eq!(apply(Event::Delete(cm("d", "6"))), ["-d"]);
        assert_eq!(store.len(), 2);
    }
}
