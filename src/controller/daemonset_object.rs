//! The DaemonSet as the shell caches it: the typed object plus the raw `spec.template` JSON the API
//! server served, from which ControllerRevision data is built byte-for-byte like upstream (§12.1),
//! and its placement rules, compiled once when the object is decoded so that neither syncs nor node
//! events compile them again.

use crate::core::placement::{PlacementRules, WithPlacementRules};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};
use std::borrow::{Borrow, Cow};

/// A DaemonSet with the raw JSON of its pod template.
#[derive(Clone, Debug, Default)]
pub struct CachedDaemonSet {
    pub ds: DaemonSet,
    /// `spec.template` exactly as served (null if absent).
    pub raw_template: serde_json::Value,
    /// The placement rules of `ds`, compiled when it was decoded.
    pub placement: PlacementRules,
}

impl CachedDaemonSet {
    /// A DaemonSet with its raw template and its placement rules compiled.
    pub fn new(ds: DaemonSet, raw_template: serde_json::Value) -> Self {
        let placement = PlacementRules::compile(&ds);
        Self {
            ds,
            raw_template,
            placement,
        }
    }
}

impl Borrow<DaemonSet> for CachedDaemonSet {
    fn borrow(&self) -> &DaemonSet {
        &self.ds
    }
}

impl WithPlacementRules for CachedDaemonSet {
    fn placement_rules(&self) -> Cow<'_, PlacementRules> {
        Cow::Borrowed(&self.placement)
    }
}

impl<'de> Deserialize<'de> for CachedDaemonSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let raw_template = value
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let ds = DaemonSet::deserialize(value).map_err(serde::de::Error::custom)?;
        Ok(Self::new(ds, raw_template))
    }
}

impl kube::Resource for CachedDaemonSet {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("DaemonSet")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("apps")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("daemonsets")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.ds.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.ds.metadata
    }
}

impl CachedDaemonSet {
    /// `namespace/name`, the key of expectations and the work queue.
    pub fn key(&self) -> String {
        key_of(&self.ds.metadata)
    }

    /// The DaemonSet's UID, the key of its expectations (empty if the object has none).
    pub fn uid(&self) -> &str {
        self.ds.metadata.uid.as_deref().unwrap_or_default()
    }
}

/// `namespace/name` of an object.
pub fn key_of(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_raw_template_and_the_typed_object() {
        let json = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"selector": {"matchLabels": {"x": "y"}},
                     "template": {"metadata": {"creationTimestamp": null, "labels": {"x": "y"}},
                                  "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}}}
        });
        let cached: CachedDaemonSet = serde_json::from_value(json).expect("valid DaemonSet");
        assert_eq!(
            cached.raw_template["metadata"]["creationTimestamp"],
            serde_json::Value::Null
        );
        assert!(cached.raw_template["spec"]["containers"][0]["resources"].is_object());
        assert_eq!(cached.key(), "n/a");
        assert_eq!(
            cached
                .ds
                .spec
                .and_then(|s| s.template.metadata)
                .and_then(|m| m.labels)
                .map(|l| l.len()),
            Some(1)
        );
    }

    #[test]
    fn decoding_compiles_the_placement_rules_of_the_decoded_object() {
        let json = serde_json::json!({
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"selector": {"matchLabels": {"x": "y"}},
                     "template": {"metadata": {"labels": {"x": "y"}},
                                  "spec": {"nodeSelector": {"disk": "ssd"},
                                           "tolerations": [{"key": "k", "operator": "Exists"}],
                                           "containers": [{"name": "c", "image": "i"}]}}}
        });
        let cached: CachedDaemonSet = serde_json::from_value(json).expect("valid DaemonSet");
        assert_eq!(cached.placement, PlacementRules::compile(&cached.ds));
        assert_ne!(cached.placement, PlacementRules::default());
    }
}
