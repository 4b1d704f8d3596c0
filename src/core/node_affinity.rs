//! Required node affinity and nodeSelector matching, and the per-node affinity daemon pods are
//! created with (§3.1 step 2, §4 step 3).
//!
//! The rules are parsed once into [`NodeRules`] (per DaemonSet, `core::placement`) and then matched
//! against each node. Upstream parses them again for every node; parsing depends on the spec alone,
//! so the answers are the same.

use crate::core::cached_node::CachedNode;
use crate::core::selector::{OwnedRequirement, requirement};
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
};
use std::collections::BTreeMap;

/// The only node field node selector terms can match on.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

/// Whether `node` satisfies the pod spec's `nodeSelector` and its required node affinity (terms
/// ORed; expressions and `metadata.name` matchFields ANDed inside a term; operators In, NotIn,
/// Exists, DoesNotExist, Gt, Lt; a term with no requirements matches nothing; unparsable terms are
/// skipped). Compiles the rules for one node; [`NodeRules`] keeps them for many.
pub fn node_matches(node: &CachedNode, spec: &PodSpec) -> bool {
    NodeRules::compile(spec).matches(node)
}

/// Why a node does not satisfy a pod spec's nodeSelector or required node affinity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "camelCase")]
pub enum Mismatch {
    /// The first nodeSelector pair (in key order) the node does not have.
    #[serde(rename_all = "camelCase")]
    NodeSelector {
        key: String,
        value: String,
        /// The node's value for `key`; `None` when the node lacks the label.
        node_value: Option<String>,
    },
    /// No required node affinity term matches; each term as `key Op [values]` requirements.
    NodeAffinity { terms: Vec<String> },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::NodeSelector {
                key,
                value,
                node_value: Some(has),
            } => write!(f, "nodeSelector {key}={value}: node has {key}={has}"),
            Mismatch::NodeSelector {
                key,
                value,
                node_value: None,
            } => write!(f, "nodeSelector {key}={value}: node lacks label {key}"),
            Mismatch::NodeAffinity { terms } => {
                let terms: Vec<String> = terms
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("term {}: {t}", i + 1))
                    .collect();
                write!(
                    f,
                    "required node affinity: no term matches ({})",
                    terms.join("; ")
                )
            }
        }
    }
}

/// A pod spec's `nodeSelector` and required node affinity, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRules {
    /// The nodeSelector pairs, in key order (upstream `labels.SelectorFromSet`).
    node_selector: Vec<(String, String)>,
    /// The required node affinity, when the spec has one.
    required: Option<RequiredTerms>,
}

/// `requiredDuringSchedulingIgnoredDuringExecution`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RequiredTerms {
    /// Each term; `None` for one that cannot match (no requirements, or it fails to parse).
    terms: Vec<Option<Term>>,
    /// Each term as [`Mismatch::NodeAffinity`] says it.
    described: Vec<String>,
}

/// One parsed node selector term (upstream `nodeSelectorTerm`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    labels: Vec<OwnedRequirement>,
    fields: Vec<FieldRequirement>,
}

/// A parsed `matchFields` requirement: `metadata.name` (or any key, which reads as empty) compared
/// to one value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldRequirement {
    Equal(String, String),
    NotEqual(String, String),
}

/// The first rule a node fails, borrowed from the rules (no allocation).
pub(crate) enum Miss<'a> {
    /// A nodeSelector pair.
    NodeSelector(&'a str, &'a str),
    /// The required node affinity.
    NodeAffinity,
}

impl NodeRules {
    /// Parses the spec's nodeSelector and required node affinity.
    pub fn compile(spec: &PodSpec) -> Self {
        let node_selector = spec
            .node_selector
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let required = required_node_affinity(spec).map(|required| RequiredTerms {
            terms: required
                .node_selector_terms
                .iter()
                .map(parse_term)
                .collect(),
            described: required
                .node_selector_terms
                .iter()
                .map(describe_term)
                .collect(),
        });
        Self {
            node_selector,
            required,
        }
    }

    /// Whether `node` satisfies the rules.
    pub fn matches(&self, node: &CachedNode) -> bool {
        self.miss(node).is_none()
    }

    /// The first reason `node` fails the rules: the nodeSelector, then the required node
    /// affinity; `None` when it matches.
    pub fn mismatch(&self, node: &CachedNode) -> Option<Mismatch> {
        self.miss(node).map(|miss| self.explain(miss, node))
    }

    /// [`NodeRules::mismatch`] without building the message.
    pub(crate) fn miss(&self, node: &CachedNode) -> Option<Miss<'_>> {
        let empty = BTreeMap::new();
        let node_labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        if let Some((k, v)) = self
            .node_selector
            .iter()
            .find(|(k, v)| node_labels.get(k).is_none_or(|l| l != v))
        {
            return Some(Miss::NodeSelector(k, v));
        }
        let required = self.required.as_ref()?;
        // Upstream `extractNodeFields`: only a non-empty name is a field.
        let node_name = node.metadata.name.as_deref().filter(|n| !n.is_empty());
        // Upstream `LazyErrorNodeSelector.Match`: the first term that parses and matches wins.
        let any = required
            .terms
            .iter()
            .flatten()
            .any(|term| term.matches(node_labels, node_name));
        (!any).then_some(Miss::NodeAffinity)
    }

    /// The [`Mismatch`] of a [`Miss`] on `node`.
    pub(crate) fn explain(&self, miss: Miss<'_>, node: &CachedNode) -> Mismatch {
        match miss {
            Miss::NodeSelector(key, value) => Mismatch::NodeSelector {
                key: key.to_string(),
                value: value.to_string(),
                node_value: node
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(key))
                    .cloned(),
            },
            Miss::NodeAffinity => Mismatch::NodeAffinity {
                terms: self
                    .required
                    .as_ref()
                    .map(|r| r.described.clone())
                    .unwrap_or_default(),
            },
        }
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

/// The pod spec's `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`, if any.
pub fn required_node_affinity(spec: &PodSpec) -> Option<&NodeSelector> {
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
}

fn field_value<'a>(key: &str, node_name: Option<&'a str>) -> &'a str {
    if key == OBJECT_NAME_FIELD {
        node_name.unwrap_or_default()
    } else {
        ""
    }
}

/// Upstream's parse of a `nodeSelectorTerm`: `None` for a term without requirements or one that
/// fails to parse (it matches nothing).
fn parse_term(term: &NodeSelectorTerm) -> Option<Term> {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return None;
    }
    let labels = expressions
        .iter()
        .map(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            requirement(&e.key, &e.operator, values)
                .ok()
                .map(|r| r.to_owned_requirement())
        })
        .collect::<Option<Vec<_>>>()?;
    let fields = fields
        .iter()
        .map(|f| match (f.operator.as_str(), f.values.as_deref()) {
            ("In", Some([value])) => Some(FieldRequirement::Equal(f.key.clone(), value.clone())),
            ("NotIn", Some([value])) => {
                Some(FieldRequirement::NotEqual(f.key.clone(), value.clone()))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Term { labels, fields })
}

impl Term {
    /// Upstream `nodeSelectorTerm.match`.
    fn matches(&self, node_labels: &BTreeMap<String, String>, node_name: Option<&str>) -> bool {
        if !self.labels.iter().all(|r| r.matches(node_labels)) {
            return false;
        }
        // [quirk] upstream skips matchFields entirely when the node has no fields (empty name).
        if !self.fields.is_empty() && node_name.is_some() {
            return self.fields.iter().all(|r| match r {
                FieldRequirement::Equal(k, v) => field_value(k, node_name) == v,
                FieldRequirement::NotEqual(k, v) => field_value(k, node_name) != v,
            });
        }
        true
    }
}

/// The single required term that pins a pod to `node_name`.
fn pinning_term(node_name: &str) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: OBJECT_NAME_FIELD.to_string(),
            operator: "In".to_string(),
            values: Some(vec![node_name.to_string()]),
        }]),
    }
}

/// `affinity` with its required node affinity replaced by exactly one term
/// `matchFields: [{key: metadata.name, operator: In, values: [node_name]}]`; preferred terms and pod
/// (anti-)affinity kept (upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn pin_to_node(affinity: Option<Affinity>, node_name: &str) -> Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![pinning_term(node_name)],
    });
    affinity
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{labels, node, node_with_labels};
    use k8s_openapi::api::core::v1::{PodAffinity, PreferredSchedulingTerm};

    fn expr(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_string(),
            operator: operator.to_string(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn term(
        exprs: Vec<NodeSelectorRequirement>,
        fields: Vec<NodeSelectorRequirement>,
    ) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: (!exprs.is_empty()).then_some(exprs),
            match_fields: (!fields.is_empty()).then_some(fields),
        }
    }

    fn required(terms: Vec<NodeSelectorTerm>) -> Affinity {
        Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        }
    }

    fn spec_with(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(required(terms)),
            ..Default::default()
        }
    }

    fn pinned(node_name: &str) -> Affinity {
        required(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "In", &[node_name])],
        )])
    }

    // ---- node_matches ------------------------------------------------------------------------

    #[test]
    fn empty_spec_matches_any_node() {
        assert!(node_matches(&node("n"), &PodSpec::default()));
    }

    #[test]
    fn node_selector_requires_all_labels() {
        let spec = PodSpec {
            node_selector: Some(labels(&[("color", "blue"), ("zone", "a")])),
            ..Default::default()
        };
        assert!(node_matches(
            &node_with_labels("n", &[("color", "blue"), ("zone", "a"), ("x", "y")]),
            &spec
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("color", "blue")]),
            &spec
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("color", "red"), ("zone", "a")]),
            &spec
        ));
        assert!(!node_matches(&node("n"), &spec));
    }

    #[test]
    fn empty_node_selector_map_matches() {
        let spec = PodSpec {
            node_selector: Some(BTreeMap::new()),
            ..Default::default()
        };
        assert!(node_matches(&node("n"), &spec));
    }

    #[test]
    fn node_selector_and_affinity_are_anded() {
        let mut spec = spec_with(vec![term(vec![expr("color", "In", &["blue"])], vec![])]);
        spec.node_selector = Some(labels(&[("zone", "a")]));
        assert!(node_matches(
            &node_with_labels("n", &[("color", "blue"), ("zone", "a")]),
            &spec
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("color", "blue")]),
            &spec
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("zone", "a")]),
            &spec
        ));
    }

    #[test]
    fn affinity_operator_in_and_not_in() {
        let in_spec = spec_with(vec![term(
            vec![expr("color", "In", &["blue", "green"])],
            vec![],
        )]);
        assert!(node_matches(
            &node_with_labels("n", &[("color", "green")]),
            &in_spec
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("color", "red")]),
            &in_spec
        ));
        assert!(!node_matches(&node("n"), &in_spec));
        let not_in = spec_with(vec![term(vec![expr("color", "NotIn", &["blue"])], vec![])]);
        assert!(node_matches(
            &node_with_labels("n", &[("color", "red")]),
            &not_in
        ));
        assert!(node_matches(&node("n"), &not_in));
        assert!(!node_matches(
            &node_with_labels("n", &[("color", "blue")]),
            &not_in
        ));
    }

    #[test]
    fn affinity_operator_exists_and_does_not_exist() {
        let exists = spec_with(vec![term(vec![expr("gpu", "Exists", &[])], vec![])]);
        let absent = spec_with(vec![term(vec![expr("gpu", "DoesNotExist", &[])], vec![])]);
        let gpu = node_with_labels("n", &[("gpu", "")]);
        assert!(node_matches(&gpu, &exists));
        assert!(!node_matches(&node("n"), &exists));
        assert!(!node_matches(&gpu, &absent));
        assert!(node_matches(&node("n"), &absent));
    }

    #[test]
    fn affinity_operator_gt_and_lt() {
        let gt = spec_with(vec![term(vec![expr("cores", "Gt", &["4"])], vec![])]);
        let lt = spec_with(vec![term(vec![expr("cores", "Lt", &["4"])], vec![])]);
        assert!(node_matches(&node_with_labels("n", &[("cores", "8")]), &gt));
        assert!(!node_matches(
            &node_with_labels("n", &[("cores", "4")]),
            &gt
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("cores", "many")]),
            &gt
        ));
        assert!(!node_matches(&node("n"), &gt));
        assert!(node_matches(&node_with_labels("n", &[("cores", "2")]), &lt));
        assert!(!node_matches(
            &node_with_labels("n", &[("cores", "4")]),
            &lt
        ));
    }

    #[test]
    fn expressions_inside_a_term_are_anded() {
        let spec = spec_with(vec![term(
            vec![expr("color", "In", &["blue"]), expr("zone", "Exists", &[])],
            vec![],
        )]);
        assert!(node_matches(
            &node_with_labels("n", &[("color", "blue"), ("zone", "x")]),
            &spec
        ));
        assert!(!node_matches(
            &node_with_labels("n", &[("color", "blue")]),
            &spec
        ));
    }

    #[test]
    fn terms_are_ored() {
        // Integration TestDaemonSetWithNodeSelectorLaunchesPods: zone=test OR metadata.name=node-1.
        let spec = spec_with(vec![
            term(vec![expr("zone", "In", &["test"])], vec![]),
            term(vec![], vec![expr(OBJECT_NAME_FIELD, "In", &["node-1"])]),
        ]);
        assert!(node_matches(
            &node_with_labels("node-0", &[("zone", "test")]),
            &spec
        ));
        assert!(node_matches(&node("node-1"), &spec));
        assert!(!node_matches(&node("node-2"), &spec));
    }

    #[test]
    fn match_fields_metadata_name() {
        let is = spec_with(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "In", &["a"])],
        )]);
        assert!(node_matches(&node("a"), &is));
        assert!(!node_matches(&node("b"), &is));
        let not = spec_with(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "NotIn", &["a"])],
        )]);
        assert!(!node_matches(&node("a"), &not));
        assert!(node_matches(&node("b"), &not));
    }

    #[test]
    fn match_fields_and_expressions_are_anded() {
        let spec = spec_with(vec![term(
            vec![expr("color", "In", &["blue"])],
            vec![expr(OBJECT_NAME_FIELD, "In", &["a"])],
        )]);
        assert!(node_matches(
            &node_with_labels("a", &[("color", "blue")]),
            &spec
        ));
        assert!(!node_matches(
            &node_with_labels("b", &[("color", "blue")]),
            &spec
        ));
        assert!(!node_matches(&node("a"), &spec));
    }

    #[test]
    fn match_fields_with_several_values_does_not_parse() {
        let spec = spec_with(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "In", &["a", "b"])],
        )]);
        assert!(!node_matches(&node("a"), &spec));
    }

    #[test]
    fn match_fields_unsupported_operator_does_not_parse() {
        let spec = spec_with(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "Exists", &[])],
        )]);
        assert!(!node_matches(&node("a"), &spec));
    }

    #[test]
    fn match_fields_unknown_key_reads_as_empty() {
        let spec = spec_with(vec![term(vec![], vec![expr("metadata.uid", "In", &["x"])])]);
        assert!(!node_matches(&node("a"), &spec));
        let spec = spec_with(vec![term(
            vec![],
            vec![expr("metadata.uid", "NotIn", &["x"])],
        )]);
        assert!(node_matches(&node("a"), &spec));
    }

    #[test]
    fn empty_term_matches_nothing() {
        assert!(!node_matches(
            &node("a"),
            &spec_with(vec![term(vec![], vec![])])
        ));
        // An empty expressions list counts as no requirement too.
        let empty_lists = NodeSelectorTerm {
            match_expressions: Some(vec![]),
            match_fields: Some(vec![]),
        };
        assert!(!node_matches(&node("a"), &spec_with(vec![empty_lists])));
    }

    #[test]
    fn required_with_no_terms_matches_nothing() {
        assert!(!node_matches(&node("a"), &spec_with(vec![])));
    }

    #[test]
    fn unparsable_term_is_skipped_and_others_still_count() {
        let bad = term(vec![expr("color", "Bogus", &["x"])], vec![]);
        let bad_in = term(vec![expr("color", "In", &[])], vec![]);
        let good = term(vec![expr("color", "In", &["blue"])], vec![]);
        let blue = node_with_labels("n", &[("color", "blue")]);
        assert!(!node_matches(&blue, &spec_with(vec![bad.clone()])));
        assert!(!node_matches(&blue, &spec_with(vec![bad_in.clone()])));
        assert!(node_matches(&blue, &spec_with(vec![bad, bad_in, good])));
    }

    #[test]
    fn term_with_one_bad_expression_is_skipped_entirely() {
        // The DoesNotExist alone would match, but the Gt with a non-integer bound fails parsing.
        let t = term(
            vec![expr("a", "DoesNotExist", &[]), expr("b", "Gt", &["x"])],
            vec![],
        );
        assert!(!node_matches(&node("n"), &spec_with(vec![t])));
    }

    #[test]
    fn preferred_affinity_is_ignored() {
        let spec = PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: None,
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        PreferredSchedulingTerm {
                            weight: 100,
                            preference: term(vec![expr("color", "In", &["blue"])], vec![]),
                        },
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(node_matches(&node("n"), &spec));
    }

    #[test]
    fn unnamed_node_skips_match_fields_quirk() {
        let spec = spec_with(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "In", &["a"])],
        )]);
        let mut n = node("a");
        n.metadata.name = None;
        assert!(node_matches(&n, &spec));
    }

    // ---- pin_to_node: TestReplaceDaemonSetPodNodeNameNodeAffinity ---------------------------

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_nil_affinity() {
        assert_eq!(pin_to_node(None, "host_1"), pinned("host_1"));
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_hostname_expressions_replaced() {
        let a = required(vec![term(
            vec![expr("kubernetes.io/hostname", "In", &["host_1"])],
            vec![],
        )]);
        assert_eq!(pin_to_node(Some(a), "host_1"), pinned("host_1"));
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_preferred_kept_required_added() {
        let preferred = vec![PreferredSchedulingTerm {
            weight: 100,
            preference: term(
                vec![expr("kubernetes.io/hostname", "In", &["host_1"])],
                vec![],
            ),
        }];
        let a = Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: None,
                preferred_during_scheduling_ignored_during_execution: Some(preferred.clone()),
            }),
            ..Default::default()
        };
        let mut want = pinned("host_1");
        if let Some(na) = want.node_affinity.as_mut() {
            na.preferred_during_scheduling_ignored_during_execution = Some(preferred);
        }
        assert_eq!(pin_to_node(Some(a), "host_1"), want);
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_multi_value_narrowed() {
        let a = required(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "In", &["host_1", "host_2"])],
        )]);
        assert_eq!(pin_to_node(Some(a), "host_1"), pinned("host_1"));
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_nil_again() {
        assert_eq!(pin_to_node(None, "host_2"), pinned("host_2"));
        // Empty affinity object and empty nodeAffinity object behave like nil.
        assert_eq!(
            pin_to_node(Some(Affinity::default()), "host_2"),
            pinned("host_2")
        );
        let empty_na = Affinity {
            node_affinity: Some(NodeAffinity::default()),
            ..Default::default()
        };
        assert_eq!(pin_to_node(Some(empty_na), "host_2"), pinned("host_2"));
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_two_terms_collapsed() {
        let a = required(vec![
            term(vec![], vec![expr(OBJECT_NAME_FIELD, "In", &["host_2"])]),
            term(vec![expr("zone", "In", &["a"])], vec![]),
        ]);
        assert_eq!(pin_to_node(Some(a), "host_1"), pinned("host_1"));
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_not_in_replaced_by_in() {
        let a = required(vec![term(
            vec![],
            vec![expr(OBJECT_NAME_FIELD, "NotIn", &["host_2"])],
        )]);
        assert_eq!(pin_to_node(Some(a), "host_1"), pinned("host_1"));
    }

    #[test]
    fn test_replace_daemon_set_pod_node_name_node_affinity_unknown_field_key_replaced() {
        let a = required(vec![term(
            vec![],
            vec![expr("metadata.foo", "In", &["bar"])],
        )]);
        assert_eq!(pin_to_node(Some(a), "host_1"), pinned("host_1"));
    }

    #[test]
    fn pin_to_node_keeps_pod_affinity() {
        let pod_affinity = PodAffinity::default();
        let a = Affinity {
            pod_affinity: Some(pod_affinity.clone()),
            ..Default::default()
        };
        let got = pin_to_node(Some(a), "n");
        assert_eq!(got.pod_affinity, Some(pod_affinity));
        assert_eq!(got.node_affinity, pinned("n").node_affinity);
    }

    #[test]
    fn pinned_affinity_matches_only_that_node() {
        let spec = PodSpec {
            affinity: Some(pin_to_node(None, "node-1")),
            ..Default::default()
        };
        assert!(node_matches(&node("node-1"), &spec));
        assert!(!node_matches(&node("node-2"), &spec));
    }
}
