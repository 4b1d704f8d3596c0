//! The decode guard of the watches: one object that does not decode is set aside with its metadata
//! instead of failing the whole list or watch, as kube's `DeserializeGuard` does, at a fraction of
//! its cost.
//!
//! Why not kube's: `DeserializeGuard` first decodes every object into a generic value tree, clones
//! that tree, and decodes the clone. At 1000 nodes that was about a seventh of everynode's CPU
//! (issue 14's profile). This guard keeps the object's JSON text as it came (one copy of the bytes)
//! and decodes the type straight from it; only an object that fails is decoded a second time, for
//! its metadata.
//!
//! The limit: the raw text exists only while serde_json reads the object itself. kube decodes every
//! list and watch response from text with serde_json, and the API server writes a watch event's
//! `type` before its `object`, so that always holds. An event with `object` first would make serde
//! buffer the object before it knows the event's type, and the whole event would fail to decode
//! (a watch error, then a new list), where kube's guard decoded it (test below).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::core::error_boundary::InvalidObject;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// `K`, or the metadata of an object that did not decode as `K` and why.
#[derive(Debug, Clone)]
pub struct Guarded<K>(pub Result<K, InvalidObject>);

impl<'de, K> Deserialize<'de> for Guarded<K>
where
    K: DeserializeOwned + Resource,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        let text = raw.get();
        match serde_json::from_str::<K>(text) {
            Ok(k) => Ok(Guarded(Ok(k))),
            Err(error) => {
                let PartialObjectMeta { metadata, .. } =
                    serde_json::from_str::<PartialObjectMeta<K>>(text).map_err(D::Error::custom)?;
                Ok(Guarded(Err(InvalidObject {
                    error: error.to_string(),
                    metadata,
                })))
            }
        }
    }
}

impl<K: Resource> Resource for Guarded<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.as_ref().map_or_else(|e| &e.metadata, K::meta)
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0
            .as_mut()
            .map_or_else(|e| &mut e.metadata, K::meta_mut)
    }
}

#[cfg(test)]
mod tests {
    use super::Guarded;
    use crate::core::cached_pod::CachedPod;
    use kube::Resource;
    use kube::core::WatchEvent;

    /// Inside a watch event, as kube decodes it: a good object decodes, a bad one keeps its
    /// metadata and says why, and neither fails the event.
    #[test]
    fn a_bad_object_keeps_its_metadata_and_fails_alone() {
        let good = r#"{"type":"ADDED","object":{"metadata":{"name":"good","namespace":"n"},"spec":{"nodeName":"node-1"}}}"#;
        let bad = r#"{"type":"MODIFIED","object":{"metadata":{"name":"bad","namespace":"n"},"spec":{"nodeName":7}}}"#;
        let Ok(WatchEvent::Added(Guarded(Ok(pod)))) =
            serde_json::from_str::<WatchEvent<Guarded<CachedPod>>>(good)
        else {
            panic!("the good pod did not decode");
        };
        assert_eq!(pod.metadata.name.as_deref(), Some("good"));
        assert_eq!(
            pod.spec.and_then(|s| s.node_name).as_deref(),
            Some("node-1")
        );
        let Ok(WatchEvent::Modified(guarded)) =
            serde_json::from_str::<WatchEvent<Guarded<CachedPod>>>(bad)
        else {
            panic!("the bad pod failed the whole event");
        };
        assert_eq!(guarded.meta().name.as_deref(), Some("bad"));
        let Err(invalid) = guarded.0 else {
            panic!("a node name of 7 decoded");
        };
        assert!(invalid.error.contains("invalid type"), "{}", invalid.error);
    }

    /// The limit of the module doc: the API server writes `type` first; an event with `object`
    /// first is refused as a whole rather than decoded wrongly.
    #[test]
    fn an_event_with_its_object_before_its_type_is_refused_whole() {
        let first = r#"{"type":"ADDED","object":{"metadata":{"name":"p","namespace":"n"}}}"#;
        let reversed = r#"{"object":{"metadata":{"name":"p","namespace":"n"}},"type":"ADDED"}"#;
        assert!(serde_json::from_str::<WatchEvent<Guarded<CachedPod>>>(first).is_ok());
        assert!(serde_json::from_str::<WatchEvent<Guarded<CachedPod>>>(reversed).is_err());
    }
}
