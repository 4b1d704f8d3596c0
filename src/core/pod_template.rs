//! The pod everynode creates for one node: template copy, default tolerations, revision labels,
//! node-pinning affinity, generateName and controller reference (§4 steps 2–3).

use crate::core::labels::{
    CONTROLLER_REVISION_HASH, POD_TEMPLATE_GENERATION, TEMPLATE_GENERATION_ANNOTATION,
};
use crate::core::node_affinity::pin_to_node;
use crate::core::ownership::daemonset_controller_ref;
use crate::core::selector::{is_dns1123_subdomain, parse_go_int};
use crate::core::tolerations::add_default_tolerations;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The DaemonSet's template generation: its `deprecated.daemonset.template.generation`
/// annotation parsed as an integer (upstream `GetTemplateGeneration`); `None` when missing or
/// unparsable.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .and_then(|v| parse_go_int(v))
}

/// Upstream `CreatePodTemplate`: the template with default tolerations and revision labels.
fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let spec = template.spec.get_or_insert_with(Default::default);
    let host_network = spec.host_network.unwrap_or(false);
    let mut tolerations = spec.tolerations.take().unwrap_or_default();
    add_default_tolerations(&mut tolerations, host_network);
    spec.tolerations = Some(tolerations);

    let metadata = template.metadata.get_or_insert_with(ObjectMeta::default);
    let labels = metadata.labels.get_or_insert_with(Default::default);
    if let Some(generation) = template_generation(ds) {
        labels.insert(POD_TEMPLATE_GENERATION.to_string(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(CONTROLLER_REVISION_HASH.to_string(), hash.to_string());
    }
    if labels.is_empty() {
        metadata.labels = None;
    }
    template
}

/// Upstream `getPodsPrefix`: `<name>-` unless that is not a valid generateName prefix.
fn generate_name(ds_name: &str) -> String {
    // A generateName prefix is validated with its trailing dash masked (as `<name>a`).
    if is_dns1123_subdomain(&format!("{ds_name}a")) {
        format!("{ds_name}-")
    } else {
        ds_name.to_string()
    }
}

/// The pod to create for `node_name` from `ds`'s template with revision `hash` (empty: no hash label).
/// `pod-template-generation` comes from the DS annotation when it parses as an integer.
///
/// Like upstream `GetPodFromTemplate`, only labels, annotations and finalizers of the template
/// metadata are carried over; `spec.nodeName` stays as in the template.
pub fn new_pod(ds: &DaemonSet, hash: &str, node_name: &str) -> Pod {
    let template = pod_template(ds, hash);
    let template_meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node_name));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(
                ds.metadata.name.as_deref().unwrap_or_default(),
            )),
            namespace: ds.metadata.namespace.clone(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![daemonset_controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cached_pod::CachedPod;
    use crate::core::fixtures::*;
    use crate::core::node_affinity::{OBJECT_NAME_FIELD, node_matches};
    use crate::core::pods_by_node::target_node_name;
    use crate::core::tolerations::{NO_SCHEDULE, default_tolerations};
    use std::collections::BTreeMap;

    fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
        pod.metadata.labels.clone().unwrap_or_default()
    }

    // ---- TestCreatePodTemplate ---------------------------------------------------------

    #[test]
    fn test_create_pod_template_generation_without_hash() {
        let ds = with_template_generation(daemonset("foo"), Some("1"));
        let pod = new_pod(&ds, "", "node-0");
        let l = pod_labels(&pod);
        assert_eq!(
            l.get(POD_TEMPLATE_GENERATION).map(String::as_str),
            Some("1")
        );
        assert!(!l.contains_key(CONTROLLER_REVISION_HASH));
    }

    #[test]
    fn test_create_pod_template_generation_with_hash() {
        let ds = with_template_generation(daemonset("foo"), Some("2"));
        let pod = new_pod(&ds, "3242341807", "node-0");
        let l = pod_labels(&pod);
        assert_eq!(
            l.get(POD_TEMPLATE_GENERATION).map(String::as_str),
            Some("2")
        );
        assert_eq!(
            l.get(CONTROLLER_REVISION_HASH).map(String::as_str),
            Some("3242341807")
        );
    }

    #[test]
    fn test_create_pod_template_large_generation() {
        let ds = with_template_generation(daemonset("foo"), Some("3"));
        let pod = new_pod(&ds, "abc", "node-0");
        assert_eq!(
            pod_labels(&pod),
            labels(&[
                ("name", "foo"),
                (POD_TEMPLATE_GENERATION, "3"),
                (CONTROLLER_REVISION_HASH, "abc"),
            ])
        );
    }

    #[test]
    fn generation_label_omitted_when_annotation_missing_or_unparsable() {
        let missing = with_template_generation(daemonset("foo"), None);
        assert!(!pod_labels(&new_pod(&missing, "h", "n")).contains_key(POD_TEMPLATE_GENERATION));
        let bad = with_template_generation(daemonset("foo"), Some("one"));
        let l = pod_labels(&new_pod(&bad, "h", "n"));
        assert!(!l.contains_key(POD_TEMPLATE_GENERATION));
        assert_eq!(
            l.get(CONTROLLER_REVISION_HASH).map(String::as_str),
            Some("h")
        );
        let mut no_annotations = daemonset("foo");
        no_annotations.metadata.annotations = None;
        assert_eq!(template_generation(&no_annotations), None);
    }

    #[test]
    fn template_generation_parses_like_go() {
        assert_eq!(
            template_generation(&with_template_generation(daemonset("f"), Some("17"))),
            Some(17)
        );
        assert_eq!(
            template_generation(&with_template_generation(daemonset("f"), Some("+4"))),
            Some(4)
        );
        assert_eq!(
            template_generation(&with_template_generation(daemonset("f"), Some(" 4"))),
            None
        );
        assert_eq!(
            template_generation(&with_template_generation(daemonset("f"), Some(""))),
            None
        );
    }

    // ---- the rest of the created pod ---------------------------------------------------

    #[test]
    fn test_simple_daemon_set_schedule_daemon_set_pods_launches_pods() {
        let ds = daemonset("foo");
        for i in 0..5 {
            let node_name = format!("node-{i}");
            let pod = new_pod(&ds, "h", &node_name);
            let spec = pod.spec.as_ref().unwrap();
            assert_eq!(spec.node_name, None);
            let terms = &spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|na| {
                    na.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .unwrap()
                .node_selector_terms;
            assert_eq!(terms.len(), 1);
            assert_eq!(terms[0].match_expressions, None);
            let fields = terms[0].match_fields.as_ref().unwrap();
            assert_eq!(fields.len(), 1);
            assert_eq!(fields[0].key, OBJECT_NAME_FIELD);
            assert_eq!(fields[0].operator, "In");
            assert_eq!(fields[0].values, Some(vec![node_name.clone()]));
            assert_eq!(
                target_node_name(&CachedPod::from(pod.clone())),
                Some(node_name.clone())
            );
            assert!(node_matches(&node(&node_name), spec));
            assert!(!node_matches(&node("elsewhere"), spec));
        }
    }

    #[test]
    fn pod_metadata_generate_name_namespace_and_owner() {
        let ds = daemonset("foo");
        let pod = new_pod(&ds, "h", "node-0");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("foo-"));
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.metadata.owner_references, Some(vec![ds_owner_ref(&ds)]));
        assert_eq!(pod.status, None);
    }

    #[test]
    fn generate_name_falls_back_when_prefix_too_long() {
        let long = "a".repeat(253);
        let mut ds = daemonset("foo");
        ds.metadata.name = Some(long.clone());
        assert_eq!(new_pod(&ds, "", "n").metadata.generate_name, Some(long));
        let ok = "a".repeat(252);
        ds.metadata.name = Some(ok.clone());
        assert_eq!(
            new_pod(&ds, "", "n").metadata.generate_name,
            Some(format!("{ok}-"))
        );
    }

    #[test]
    fn default_tolerations_appended_after_user_tolerations() {
        let user = toleration("dedicated", "Equal", "x", NO_SCHEDULE);
        let ds = with_toleration(daemonset("foo"), user.clone());
        let pod = new_pod(&ds, "", "n");
        let mut want = vec![user];
        want.extend(default_tolerations(false));
        assert_eq!(pod.spec.unwrap().tolerations, Some(want));
    }

    #[test]
    fn host_network_adds_network_unavailable_toleration() {
        let ds = with_host_network(daemonset("foo"), true);
        let pod = new_pod(&ds, "", "n");
        assert_eq!(
            pod.spec.unwrap().tolerations,
            Some(default_tolerations(true))
        );
    }

    #[test]
    fn template_metadata_labels_annotations_finalizers_copied_name_not() {
        let mut ds = daemonset("foo");
        if let Some(m) = ds_spec_mut(&mut ds).template.metadata.as_mut() {
            m.name = Some("template-name".to_string());
            m.annotations = Some(labels(&[("a", "b")]));
            m.finalizers = Some(vec!["example.com/f".to_string()]);
        }
        let pod = new_pod(&ds, "", "n");
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.annotations, Some(labels(&[("a", "b")])));
        assert_eq!(
            pod.metadata.finalizers,
            Some(vec!["example.com/f".to_string()])
        );
    }

    #[test]
    fn template_spec_copied_and_node_name_kept() {
        let ds = with_template_node_name(daemonset("foo"), "node-0");
        let pod = new_pod(&ds, "", "node-0");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node-0"));
        assert_eq!(spec.containers.len(), 1);
        assert_eq!(spec.containers[0].image.as_deref(), Some("foo/bar"));
    }

    #[test]
    fn user_required_affinity_replaced_preferred_kept() {
        let mut affinity = required_affinity("color", "In", &["blue"]);
        if let Some(na) = affinity.node_affinity.as_mut() {
            na.preferred_during_scheduling_ignored_during_execution = Some(vec![]);
        }
        let ds = with_affinity(daemonset("foo"), affinity);
        let pod = new_pod(&ds, "", "node-3");
        let got = pod.spec.unwrap().affinity.unwrap();
        let mut want = pin_to_node(None, "node-3");
        if let Some(na) = want.node_affinity.as_mut() {
            na.preferred_during_scheduling_ignored_during_execution = Some(vec![]);
        }
        assert_eq!(got, want);
    }

    #[test]
    fn template_not_mutated() {
        let ds = daemonset("foo");
        let before = ds.clone();
        let _ = new_pod(&ds, "h", "n");
        assert_eq!(ds, before);
    }

    #[test]
    fn missing_template_pieces_are_tolerated() {
        let mut ds = daemonset("foo");
        ds.metadata.annotations = None;
        ds.spec = None;
        let pod = new_pod(&ds, "", "n");
        assert_eq!(pod.metadata.labels, None);
        assert_eq!(
            pod.spec.as_ref().unwrap().tolerations,
            Some(default_tolerations(false))
        );
        assert_eq!(
            target_node_name(&CachedPod::from(pod)).as_deref(),
            Some("n")
        );
    }
}
