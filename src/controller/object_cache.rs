//! A watch-fed cache of one kind of object that turns watch events, including re-lists, into the
//! add/update/delete changes informer handlers see.

use kube::Resource;
use kube::runtime::watcher::Event;
use std::collections::HashMap;
use std::sync::Arc;

/// `(namespace, name)`.
pub type Key = (String, String);

pub use crate::core::triggers::Change;

/// Objects by key, plus the buffer of a re-list in progress.
#[derive(Debug)]
pub struct ObjectCache<K> {
    objects: HashMap<Key, Arc<K>>,
    relist: Option<HashMap<Key, Arc<K>>>,
    synced: bool,
}

impl<K> Default for ObjectCache<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            relist: None,
            synced: false,
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

impl<K: Resource> ObjectCache<K> {
    /// Applies one watch event and returns the changes it makes. A re-list (`Init`..`InitDone`) is
    /// applied at `InitDone` as a diff: objects that appeared are added, changed ones updated and
    /// vanished ones deleted, so handlers never miss a delete that happened while the watch was down.
    pub fn apply(&mut self, event: Event<K>) -> Vec<Change<K>> {
        match event {
            Event::Init => {
                self.relist = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(obj) => {
                let obj = Arc::new(obj);
                self.relist
                    .get_or_insert_with(HashMap::new)
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
        self.objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
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
}
