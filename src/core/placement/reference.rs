//! The per-node placement used before its rules were compiled once per DaemonSet:
//! clone the template's pod spec for every node, add the default tolerations, parse its
//! nodeSelector and node affinity again. Kept, test-only, as the oracle the compiled path
//! ([`super::PlacementRules`]) is held to by the property test in `super::tests`.

use super::{Exclusion, Placement};
use crate::core::cached_node::CachedNode;
use crate::core::node_affinity::{Mismatch, OBJECT_NAME_FIELD, required_node_affinity};
use crate::core::selector::{Requirement, requirement};
use crate::core::tolerations::{NO_EXECUTE, add_default_tolerations, find_untolerated};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
};
use std::collections::BTreeMap;

/// The old `placement_explained`.
pub fn placement_explained(node: &CachedNode, ds: &DaemonSet) -> (Placement, Option<Exclusion>) {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let template_spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let template_node_name = template_spec
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    if !template_node_name.is_empty() && template_node_name != node_name {
        let why = Exclusion::NodeName {
            node_name: template_node_name.to_string(),
        };
        return (Placement::NO, Some(why));
    }
    let mut spec: PodSpec = template_spec.cloned().unwrap_or_default();
    spec.node_name = Some(node_name.to_string());
    let host_network = spec.host_network.unwrap_or(false);
    add_default_tolerations(spec.tolerations.get_or_insert_with(Vec::new), host_network);
    if let Some(mismatch) = node_mismatch(node, &spec) {
        return (Placement::NO, Some(Exclusion::Affinity(mismatch)));
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let Some(untolerated) = find_untolerated(taints, tolerations, |_| true) else {
        return (Placement::YES, None);
    };
    let evicting = find_untolerated(taints, tolerations, |e| e == NO_EXECUTE);
    let why = evicting.unwrap_or(untolerated);
    let fit = Placement {
        should_run: false,
        should_continue_running: evicting.is_none(),
    };
    let why = Exclusion::Taint {
        key: why.key.clone(),
        value: why.value.clone().unwrap_or_default(),
        effect: why.effect.clone(),
    };
    (fit, Some(why))
}

/// The first reason `node` fails [`node_matches`]: the nodeSelector, then the required node
/// affinity; `None` when it matches.
fn node_mismatch(node: &CachedNode, spec: &PodSpec) -> Option<Mismatch> {
    let empty = BTreeMap::new();
    let node_labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    // nodeSelector: every key present with an equal value (upstream `labels.SelectorFromSet`).
    if let Some(selector) = &spec.node_selector
        && let Some((k, v)) = selector
            .iter()
            .find(|(k, v)| node_labels.get(*k).is_none_or(|l| l != *v))
    {
        return Some(Mismatch::NodeSelector {
            key: k.clone(),
            value: v.clone(),
            node_value: node_labels.get(k).cloned(),
        });
    }
    match required_node_affinity(spec) {
        Some(required) if !node_selector_matches(node, required) => Some(Mismatch::NodeAffinity {
            terms: required
                .node_selector_terms
                .iter()
                .map(describe_term)
                .collect(),
        }),
        _ => None,
    }
}

/// A node selector term as its requirements, `zone In [a,b], metadata.name NotIn [x]`.
fn describe_term(term: &NodeSelectorTerm) -> String {
    let describe = |r: &NodeSelectorRequirement| match r.values.as_deref() {
        Some(values) if !values.is_empty() => {
            format!("{} {} [{}]", r.key, r.operator, values.join(","))
        }
        _ => format!("{} {}", r.key, r.operator),
    };
    let all: Vec<String> = term
        .match_expressions
        .iter()
        .flatten()
        .chain(term.match_fields.iter().flatten())
        .map(describe)
        .collect();
    if all.is_empty() {
        "no requirements".to_string()
    } else {
        all.join(", ")
    }
}

/// Upstream `LazyErrorNodeSelector.Match`: the first term that parses and matches wins.
fn node_selector_matches(node: &CachedNode, selector: &NodeSelector) -> bool {
    let empty = BTreeMap::new();
    let node_labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    // Upstream `extractNodeFields`: only a non-empty name is a field.
    let node_name = node.metadata.name.as_deref().filter(|n| !n.is_empty());
    selector
        .node_selector_terms
        .iter()
        .any(|term| term_matches(term, node_labels, node_name))
}

/// A parsed `matchFields` requirement: `metadata.name` (or any key, which reads as empty) compared
/// to one value.
enum FieldRequirement<'a> {
    Equal(&'a str, &'a str),
    NotEqual(&'a str, &'a str),
}

fn field_value<'a>(key: &str, node_name: Option<&'a str>) -> &'a str {
    if key == OBJECT_NAME_FIELD {
        node_name.unwrap_or_default()
    } else {
        ""
    }
}

/// Upstream `nodeSelectorTerm.match`; `false` for a term that fails to parse.
fn term_matches(
    term: &NodeSelectorTerm,
    node_labels: &BTreeMap<String, String>,
    node_name: Option<&str>,
) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let Some(label_requirements) = parse_expressions(expressions) else {
        return false;
    };
    let Some(field_requirements) = parse_fields(fields) else {
        return false;
    };
    if !label_requirements.iter().all(|r| r.matches(node_labels)) {
        return false;
    }
    // [quirk] upstream skips matchFields entirely when the node has no fields (empty name).
    if !field_requirements.is_empty() && node_name.is_some() {
        let all = field_requirements.iter().all(|r| match r {
            FieldRequirement::Equal(k, v) => field_value(k, node_name) == *v,
            FieldRequirement::NotEqual(k, v) => field_value(k, node_name) != *v,
        });
        if !all {
            return false;
        }
    }
    true
}

fn parse_expressions(exprs: &[NodeSelectorRequirement]) -> Option<Vec<Requirement<'_>>> {
    exprs
        .iter()
        .map(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            requirement(&e.key, &e.operator, values).ok()
        })
        .collect()
}

fn parse_fields(fields: &[NodeSelectorRequirement]) -> Option<Vec<FieldRequirement<'_>>> {
    fields
        .iter()
        .map(|f| match (f.operator.as_str(), f.values.as_deref()) {
            ("In", Some([value])) => Some(FieldRequirement::Equal(&f.key, value)),
            ("NotIn", Some([value])) => Some(FieldRequirement::NotEqual(&f.key, value)),
            _ => None,
        })
        .collect()
}
