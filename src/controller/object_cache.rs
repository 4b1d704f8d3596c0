//! A watch-fed cache of one kind of object that turns watch events, including re-lists, into the
//! add/update/delete changes informer handlers see; [`apply_to_store`] does the same for a kube
//! reflector store (the DaemonSets, whose store the workers read).

use crate::core::HashState;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::watcher::Event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// `(namespace, name)`.
pub type Key = (String, String);

/// A map with the core's [`HashState`]: every watch event of a pod updates three of them (the cache,
/// its owner group, its node group).
pub type FastMap<K, V> = HashMap<K, V, HashState>;

/// Cached objects grouped under a string (a controller UID, a namespace, a node name), each group
/// holding the objects themselves by key: reading a group clones its `Arc`s, with no lookup in the
/// cache per object (resolving keys took 7% of everynode's CPU at 5000 nodes × 5 DaemonSets).
pub type Groups<K> = FastMap<String, FastMap<Key, Arc<K>>>;

pub use crate::core::triggers::Change;

/// Objects by key, plus the buffer of a re-list in progress and the objects in key order
/// ([`ObjectCache::sorted`]).
#[derive(Debug)]
pub struct ObjectCache<K> {
    objects: FastMap<Key, Arc<K>>,
    relist: Option<FastMap<Key, Arc<K>>>,
    synced: bool,
    sorted: Mutex<SortedView<K>>,
}

/// The objects in key order as last handed out, and the new versions of objects updated since.
///
/// An update keeps every key where it was, so the next read puts each new version in its place
/// (a binary search each) instead of sorting again; only an add, a delete or a re-list sorts again.
/// Nodes change all the time (kubelet heartbeats), and sorting 5000 of them by name in every sync
/// took a tenth of everynode's CPU at 5000 nodes × 5 DaemonSets (issue 14).
#[derive(Debug)]
struct SortedView<K> {
    all: Option<Arc<[Arc<K>]>>,
    updated: Vec<Arc<K>>,
    /// How many times the view was sorted from scratch (read by tests).
    sorts: u64,
}

impl<K> Default for SortedView<K> {
    fn default() -> Self {
        Self {
            all: None,
            updated: Vec::new(),
            sorts: 0,
        }
    }
}

impl<K> Default for ObjectCache<K> {
    fn default() -> Self {
        Self {
            objects: FastMap::default(),
            relist: None,
            synced: false,
            sorted: Mutex::new(SortedView::default()),
        }
    }
}

/// `(namespace, name)` of an object, borrowed: ordered as its [`Key`].
fn key_ref<K: Resource>(obj: &K) -> (&str, &str) {
    let m = obj.meta();
    (
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
    )
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
    index: fn(&mut S, &Arc<K>),
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

/// Puts `obj` under `k` in the group `at` (replacing what was there).
pub fn insert_in<K>(groups: &mut Groups<K>, at: &str, k: Key, obj: &Arc<K>) {
    match groups.get_mut(at) {
        Some(group) => group.insert(k, Arc::clone(obj)),
        None => groups
            .entry(at.to_string())
            .or_default()
            .insert(k, Arc::clone(obj)),
    };
}

/// Removes `k` from the group `at`, and the group once it is empty (so the maps shrink with the
/// cluster).
pub fn remove_from<K>(groups: &mut Groups<K>, at: &str, k: &Key) {
    if let Some(group) = groups.get_mut(at) {
        group.remove(k);
        if group.is_empty() {
            groups.remove(at);
        }
    }
}

/// The objects of the group `at`.
pub fn group<'a, K>(
    groups: &'a Groups<K>,
    at: &str,
) -> impl Iterator<Item = (&'a Key, &'a Arc<K>)> {
    groups.get(at).into_iter().flatten()
}

impl<K: Resource> ObjectCache<K> {
    /// Applies one watch event and returns the changes it makes. A re-list (`Init`..`InitDone`) is
    /// applied at `InitDone` as a diff: objects that appeared are added, changed ones updated and
    /// vanished ones deleted, so handlers never miss a delete that happened while the watch was down.
    pub fn apply(&mut self, event: Event<K>) -> Vec<Change<K>> {
        // A re-list replaces every object, changed or not: the sorted view would keep the old ones.
        let relisted = matches!(event, Event::InitDone);
        let changes = self.apply_event(event);
        let view = self
            .sorted
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let only_updates = changes.iter().all(|c| matches!(c, Change::Updated { .. }));
        if relisted || !only_updates {
            view.all = None;
            view.updated.clear();
        } else if view.all.is_some() {
            for c in &changes {
                if let Change::Updated { new, .. } = c {
                    view.updated.push(Arc::clone(new));
                }
            }
            // Past half the objects a sort is cheaper than putting each in place, and the list of
            // updates stops growing while nothing reads the view.
            if view.updated.len() > (self.objects.len() / 2).max(64) {
                view.all = None;
                view.updated.clear();
            }
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

    /// The object named `name` in `namespace`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every object in key order (for cluster-scoped objects, name order), shared: built after a
    /// change and handed to every sync until the next; updated objects are put in place, only an
    /// add, a delete or a re-list sorts again ([`SortedView`]).
    pub fn sorted(&self) -> Arc<[Arc<K>]> {
        let mut view = self.sorted.lock().unwrap_or_else(PoisonError::into_inner);
        let view = &mut *view;
        if let Some(all) = &view.all
            && !view.updated.is_empty()
        {
            view.all = put_in_place(all, std::mem::take(&mut view.updated));
        }
        if let Some(all) = &view.all {
            return Arc::clone(all);
        }
        view.updated.clear();
        view.sorts += 1;
        let mut all: Vec<(&Key, &Arc<K>)> = self.objects.iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let all: Arc<[Arc<K>]> = all.into_iter().map(|(_, o)| Arc::clone(o)).collect();
        view.all = Some(Arc::clone(&all));
        all
    }

    /// How many times [`ObjectCache::sorted`] sorted from scratch.
    #[cfg(test)]
    fn sorts(&self) -> u64 {
        self.sorted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sorts
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

/// `all` (in key order) with each of `updated` in the place of the object with its key, the last
/// version of a key winning; `None` (sort again) if a key is not there.
fn put_in_place<K: Resource>(all: &[Arc<K>], updated: Vec<Arc<K>>) -> Option<Arc<[Arc<K>]>> {
    let mut next = all.to_vec();
    for new in updated {
        let k = key_ref(new.as_ref());
        let at = next
            .binary_search_by(|o| key_ref(o.as_ref()).cmp(&k))
            .ok()?;
        next[at] = new;
    }
    Some(next.into())
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

    /// Updates are put in place without sorting again; an add, a delete, a re-list and a long run
    /// of unread updates sort again. After every step the view is what a full sort gives.
    #[test]
    fn updates_keep_the_sorted_view_without_sorting_again() {
        fn full_sort(c: &ObjectCache<ConfigMap>) -> Vec<String> {
            let mut v: Vec<(Key, String)> = c
                .values()
                .map(|o| {
                    let rv = o.metadata.resource_version.clone().unwrap_or_default();
                    (key(o.as_ref()), rv)
                })
                .collect();
            v.sort();
            v.into_iter()
                .map(|((_, n), rv)| format!("{n}@{rv}"))
                .collect()
        }
        let mut c = ObjectCache::default();
        for i in 0..200 {
            c.apply(Event::Apply(cm(&format!("n{:03}", (i * 37) % 200), "1")));
        }
        assert_eq!(sorted_names(&c), full_sort(&c));
        assert_eq!(c.sorts(), 1);
        // 150 rounds of a few updates (some to the same object) between reads: no sort.
        for round in 1..=150u32 {
            for j in 0..3u32 {
                let name = format!("n{:03}", (round * 53 + j * 7) % 200);
                c.apply(Event::Apply(cm(&name, &format!("{round}-{j}"))));
            }
            if round % 2 == 0 {
                assert_eq!(sorted_names(&c), full_sort(&c), "round {round}");
            }
        }
        assert_eq!(c.sorts(), 1, "updates alone never sort again");
        c.apply(Event::Apply(cm("n050", "x")));
        c.apply(Event::Apply(cm("m", "1")));
        assert_eq!(sorted_names(&c), full_sort(&c));
        assert_eq!(c.sorts(), 2, "an add sorts again");
        c.apply(Event::Delete(cm("n100", "y")));
        assert_eq!(sorted_names(&c), full_sort(&c));
        assert_eq!(c.sorts(), 3, "a delete sorts again");
        for round in 0..120u32 {
            c.apply(Event::Apply(cm(&format!("n{:03}", round % 200), "z")));
        }
        assert_eq!(sorted_names(&c), full_sort(&c));
        assert_eq!(
            c.sorts(),
            4,
            "more unread updates than half the objects sort again"
        );
        c.apply(Event::Init);
        c.apply(Event::InitApply(cm("n001", "r")));
        c.apply(Event::InitDone);
        assert_eq!(sorted_names(&c), ["n001@r"]);
        assert_eq!(c.sorts(), 5, "a re-list sorts again");
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
