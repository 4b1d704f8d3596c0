//! Label selectors: matching `matchLabels`/`matchExpressions` against labels, as apimachinery does.
//!
//! Written by hand rather than with kube-core's `Selector`, which would break upstream semantics the
//! tests below hold it to: kube-core accepts an `In`/`NotIn` requirement with an empty value list and
//! an `Exists`/`DoesNotExist` requirement with values, and never checks label keys and values, all
//! of which apimachinery's `LabelSelectorAsSelector` rejects (so upstream treats such a selector as
//! an error, not as a match); and node selector terms need `Gt`/`Lt`, which kube-core lacks.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// A selector that cannot be turned into a label query (bad operator, values where none are allowed...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector: {0}")]
pub struct InvalidSelector(pub String);

/// True for the empty selector object `{}` (no matchLabels, no matchExpressions), which selects
/// everything and makes upstream emit `SelectingAll` and do nothing.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// Whether `selector` matches `labels`. `None` labels behave as empty labels. An empty selector
/// matches everything; operators In, NotIn, Exists, DoesNotExist (NotIn matches a missing key).
///
/// Like upstream `LabelSelectorAsSelector`, the whole selector is validated first (label keys and
/// values, operators, number of values), so an invalid selector is an error even when an earlier
/// requirement already fails to match.
pub fn matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, InvalidSelector> {
    compile(selector).map(|c| c.matches(labels))
}

/// A selector validated and parsed once, to match many label sets: a sync claims every candidate
/// pod against its DaemonSet's selector, and parsing it per pod cost more than matching.
#[derive(Debug, Clone)]
pub struct Compiled<'a>(Vec<Requirement<'a>>);

/// Validates and parses `selector` as [`matches()`] does, for [`Compiled::matches`].
pub fn compile(selector: &LabelSelector) -> Result<Compiled<'_>, InvalidSelector> {
    requirements(selector).map(Compiled)
}

impl Compiled<'_> {
    /// [`matches()`] of the compiled selector. `None` labels behave as empty labels.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        self.0.iter().all(|r| r.matches(labels))
    }
}

/// A parsed label requirement, as apimachinery's `labels.Requirement` (restricted to the operators
/// selectors and node selector terms can express).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requirement<'a> {
    /// Key present with exactly this value (matchLabels / nodeSelector entries).
    Equals(&'a str, &'a str),
    In(&'a str, &'a [String]),
    NotIn(&'a str, &'a [String]),
    Exists(&'a str),
    DoesNotExist(&'a str),
    /// Key present, value parses as an integer greater than the bound.
    Gt(&'a str, i64),
    /// Key present, value parses as an integer less than the bound.
    Lt(&'a str, i64),
}

impl Requirement<'_> {
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(*k).is_some_and(|l| l == v),
            Requirement::In(k, vs) => labels.get(*k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(*k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(*k),
            Requirement::DoesNotExist(k) => !labels.contains_key(*k),
            Requirement::Gt(k, bound) => parse_int(labels.get(*k)).is_some_and(|v| v > *bound),
            Requirement::Lt(k, bound) => parse_int(labels.get(*k)).is_some_and(|v| v < *bound),
        }
    }
}

/// A [`Requirement`] that owns its key and values, for selectors parsed once and kept (a
/// DaemonSet's compiled placement rules, `core::placement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnedRequirement {
    Equals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Gt(String, i64),
    Lt(String, i64),
}

impl OwnedRequirement {
    /// The borrowed form, whose [`Requirement::matches`] is the one matching rule.
    pub(crate) fn as_requirement(&self) -> Requirement<'_> {
        match self {
            OwnedRequirement::Equals(k, v) => Requirement::Equals(k, v),
            OwnedRequirement::In(k, vs) => Requirement::In(k, vs),
            OwnedRequirement::NotIn(k, vs) => Requirement::NotIn(k, vs),
            OwnedRequirement::Exists(k) => Requirement::Exists(k),
            OwnedRequirement::DoesNotExist(k) => Requirement::DoesNotExist(k),
            OwnedRequirement::Gt(k, b) => Requirement::Gt(k, *b),
            OwnedRequirement::Lt(k, b) => Requirement::Lt(k, *b),
        }
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.as_requirement().matches(labels)
    }
}

impl Requirement<'_> {
    pub(crate) fn to_owned_requirement(&self) -> OwnedRequirement {
        match *self {
            Requirement::Equals(k, v) => OwnedRequirement::Equals(k.into(), v.into()),
            Requirement::In(k, vs) => OwnedRequirement::In(k.into(), vs.to_vec()),
            Requirement::NotIn(k, vs) => OwnedRequirement::NotIn(k.into(), vs.to_vec()),
            Requirement::Exists(k) => OwnedRequirement::Exists(k.into()),
            Requirement::DoesNotExist(k) => OwnedRequirement::DoesNotExist(k.into()),
            Requirement::Gt(k, b) => OwnedRequirement::Gt(k.into(), b),
            Requirement::Lt(k, b) => OwnedRequirement::Lt(k.into(), b),
        }
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits only.
pub(crate) fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_int(value: Option<&String>) -> Option<i64> {
    value.and_then(|v| parse_go_int(v))
}

/// Builds and validates one requirement (upstream `labels.NewRequirement`). `operator` is one of
/// the apimachinery operator names In, NotIn, Exists, DoesNotExist, Gt, Lt.
pub(crate) fn requirement<'a>(
    key: &'a str,
    operator: &str,
    values: &'a [String],
) -> Result<Requirement<'a>, InvalidSelector> {
    validate_label_key(key)?;
    let requirement = match operator {
        "In" | "NotIn" => {
            if values.is_empty() {
                return Err(InvalidSelector(format!(
                    "key {key:?}: for 'in', 'notin' operators, values set can't be empty"
                )));
            }
            if operator == "In" {
                Requirement::In(key, values)
            } else {
                Requirement::NotIn(key, values)
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                return Err(InvalidSelector(format!(
                    "key {key:?}: values set must be empty for exists and does not exist"
                )));
            }
            if operator == "Exists" {
                Requirement::Exists(key)
            } else {
                Requirement::DoesNotExist(key)
            }
        }
        "Gt" | "Lt" => {
            let [value] = values else {
                return Err(InvalidSelector(format!(
                    "key {key:?}: for 'Gt', 'Lt' operators, exactly one value is required"
                )));
            };
            let Some(bound) = parse_go_int(value) else {
                return Err(InvalidSelector(format!(
                    "key {key:?}: for 'Gt', 'Lt' operators, the value must be an integer, got {value:?}"
                )));
            };
            if operator == "Gt" {
                Requirement::Gt(key, bound)
            } else {
                Requirement::Lt(key, bound)
            }
        }
        other => {
            return Err(InvalidSelector(format!(
                "{other:?} is not a valid label selector operator"
            )));
        }
    };
    for value in values {
        validate_label_value(key, value)?;
    }
    Ok(requirement)
}

/// All requirements of a label selector (matchLabels first, then matchExpressions), validated.
fn requirements(selector: &LabelSelector) -> Result<Vec<Requirement<'_>>, InvalidSelector> {
    let mut out = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        validate_label_key(key)?;
        validate_label_value(key, value)?;
        out.push(Requirement::Equals(key, value));
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {
                out.push(requirement(&expr.key, &expr.operator, values)?)
            }
            other => {
                return Err(InvalidSelector(format!(
                    "{other:?} is not a valid label selector operator"
                )));
            }
        }
    }
    Ok(out)
}

/// `validation.IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub(crate) fn validate_label_key(key: &str) -> Result<(), InvalidSelector> {
    let invalid = || InvalidSelector(format!("invalid label key {key:?}"));
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(invalid());
    }
    if name.is_empty() || name.len() > 63 || !is_qualified_name_part(name) {
        return Err(invalid());
    }
    Ok(())
}

/// `validation.IsValidLabelValue`: empty, or at most 63 characters shaped like a name part.
pub(crate) fn validate_label_value(key: &str, value: &str) -> Result<(), InvalidSelector> {
    if value.is_empty() || (value.len() <= 63 && is_qualified_name_part(value)) {
        Ok(())
    } else {
        Err(InvalidSelector(format!(
            "invalid label value {value:?} for key {key:?}"
        )))
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `validation.IsDNS1123Subdomain`: at most 253 characters, dot-separated lowercase labels of
/// alphanumerics and `-`, each starting and ending alphanumeric.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    is_lower_alnum(*first)
                        && is_lower_alnum(*last)
                        && bytes.iter().all(|b| is_lower_alnum(*b) || *b == b'-')
                }
                _ => false,
            }
        })
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{labels, requirement as req, selector_labels};

    fn sel(
        match_labels: &[(&str, &str)],
        exprs: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement>,
    ) -> LabelSelector {
        LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }

    #[test]
    fn is_empty_for_default_and_empty_collections() {
        assert!(is_empty(&LabelSelector::default()));
        assert!(is_empty(&LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(Vec::new()),
        }));
        assert!(!is_empty(&selector_labels(&[("a", "b")])));
        assert!(!is_empty(&sel(&[], vec![req("a", "Exists", &[])])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert_eq!(matches(&LabelSelector::default(), None), Ok(true));
        assert_eq!(
            matches(&LabelSelector::default(), Some(&labels(&[("x", "y")]))),
            Ok(true)
        );
    }

    #[test]
    fn match_labels_require_every_pair() {
        let s = selector_labels(&[("name", "foo"), ("tier", "web")]);
        assert_eq!(
            matches(
                &s,
                Some(&labels(&[("name", "foo"), ("tier", "web"), ("x", "1")]))
            ),
            Ok(true)
        );
        assert_eq!(matches(&s, Some(&labels(&[("name", "foo")]))), Ok(false));
        assert_eq!(
            matches(&s, Some(&labels(&[("name", "foo"), ("tier", "db")]))),
            Ok(false)
        );
        assert_eq!(matches(&s, None), Ok(false));
    }

    #[test]
    fn match_labels_empty_value_requires_key_present() {
        let s = selector_labels(&[("k", "")]);
        assert_eq!(matches(&s, Some(&labels(&[("k", "")]))), Ok(true));
        assert_eq!(matches(&s, Some(&labels(&[]))), Ok(false));
    }

    #[test]
    fn operator_in() {
        let s = sel(&[], vec![req("env", "In", &["a", "b"])]);
        assert_eq!(matches(&s, Some(&labels(&[("env", "b")]))), Ok(true));
        assert_eq!(matches(&s, Some(&labels(&[("env", "c")]))), Ok(false));
        assert_eq!(matches(&s, None), Ok(false));
    }

    #[test]
    fn operator_not_in_matches_missing_key() {
        let s = sel(&[], vec![req("env", "NotIn", &["a"])]);
        assert_eq!(matches(&s, Some(&labels(&[("env", "b")]))), Ok(true));
        assert_eq!(matches(&s, Some(&labels(&[("env", "a")]))), Ok(false));
        assert_eq!(matches(&s, None), Ok(true));
    }

    #[test]
    fn operators_exists_and_does_not_exist() {
        let exists = sel(&[], vec![req("env", "Exists", &[])]);
        let absent = sel(&[], vec![req("env", "DoesNotExist", &[])]);
        let with = labels(&[("env", "")]);
        assert_eq!(matches(&exists, Some(&with)), Ok(true));
        assert_eq!(matches(&exists, None), Ok(false));
        assert_eq!(matches(&absent, Some(&with)), Ok(false));
        assert_eq!(matches(&absent, None), Ok(true));
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let s = sel(&[("name", "foo")], vec![req("env", "In", &["prod"])]);
        assert_eq!(
            matches(&s, Some(&labels(&[("name", "foo"), ("env", "prod")]))),
            Ok(true)
        );
        assert_eq!(matches(&s, Some(&labels(&[("name", "foo")]))), Ok(false));
        assert_eq!(matches(&s, Some(&labels(&[("env", "prod")]))), Ok(false));
    }

    #[test]
    fn unknown_operator_is_invalid() {
        let s = sel(&[], vec![req("env", "Equals", &["a"])]);
        assert!(matches(&s, None).is_err());
        // Gt/Lt are node-selector operators, not label-selector ones.
        let s = sel(&[], vec![req("env", "Gt", &["1"])]);
        assert!(matches(&s, None).is_err());
        // Operators are case-sensitive.
        let s = sel(&[], vec![req("env", "in", &["a"])]);
        assert!(matches(&s, None).is_err());
    }

    #[test]
    fn value_count_rules() {
        assert!(matches(&sel(&[], vec![req("env", "In", &[])]), None).is_err());
        assert!(matches(&sel(&[], vec![req("env", "NotIn", &[])]), None).is_err());
        assert!(matches(&sel(&[], vec![req("env", "Exists", &["x"])]), None).is_err());
        assert!(matches(&sel(&[], vec![req("env", "DoesNotExist", &["x"])]), None).is_err());
    }

    #[test]
    fn invalid_keys_and_values_are_errors_even_after_a_mismatch() {
        // First requirement fails to match, second is invalid: still an error.
        let s = sel(&[("a", "b")], vec![req("bad key", "Exists", &[])]);
        assert!(matches(&s, None).is_err());
        assert!(matches(&selector_labels(&[("k", "bad value!")]), None).is_err());
        assert!(matches(&selector_labels(&[("-k", "v")]), None).is_err());
        assert!(matches(&selector_labels(&[("Example.com/k", "v")]), None).is_err());
        assert_eq!(
            matches(
                &selector_labels(&[("example.com/k", "v")]),
                Some(&labels(&[("example.com/k", "v")]))
            ),
            Ok(true)
        );
    }

    #[test]
    fn label_key_validation() {
        assert!(validate_label_key("app.kubernetes.io/name").is_ok());
        assert!(validate_label_key("a").is_ok());
        assert!(validate_label_key("A_b.c-D").is_ok());
        assert!(validate_label_key("").is_err());
        assert!(validate_label_key("a/").is_err());
        assert!(validate_label_key("/a").is_err());
        assert!(validate_label_key("a/b/c").is_err());
        assert!(validate_label_key(&"a".repeat(64)).is_err());
        assert!(validate_label_key(&"a".repeat(63)).is_ok());
        assert!(validate_label_key("a_").is_err());
    }

    #[test]
    fn label_value_validation() {
        assert!(validate_label_value("k", "").is_ok());
        assert!(validate_label_value("k", "v1.2-3_x").is_ok());
        assert!(validate_label_value("k", &"v".repeat(63)).is_ok());
        assert!(validate_label_value("k", &"v".repeat(64)).is_err());
        assert!(validate_label_value("k", ".v").is_err());
        assert!(validate_label_value("k", "a/b").is_err());
    }

    #[test]
    fn go_int_parsing() {
        assert_eq!(parse_go_int("42"), Some(42));
        assert_eq!(parse_go_int("-7"), Some(-7));
        assert_eq!(parse_go_int("+7"), Some(7));
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_int("+"), None);
        assert_eq!(parse_go_int("1_000"), None);
        assert_eq!(parse_go_int(" 1"), None);
        assert_eq!(parse_go_int("99999999999999999999"), None);
    }

    #[test]
    fn gt_lt_requirements() {
        let values = vec!["5".to_string()];
        let gt = requirement("cpu", "Gt", &values).unwrap();
        let lt = requirement("cpu", "Lt", &values).unwrap();
        assert!(gt.matches(&labels(&[("cpu", "6")])));
        assert!(!gt.matches(&labels(&[("cpu", "5")])));
        assert!(!gt.matches(&labels(&[("cpu", "x")])));
        assert!(!gt.matches(&labels(&[])));
        assert!(lt.matches(&labels(&[("cpu", "-1")])));
        assert!(!lt.matches(&labels(&[("cpu", "5")])));
        let two = vec!["1".to_string(), "2".to_string()];
        assert!(requirement("cpu", "Gt", &two).is_err());
        let nan = vec!["x".to_string()];
        assert!(requirement("cpu", "Lt", &nan).is_err());
    }

    #[test]
    fn dns_subdomain() {
        assert!(is_dns1123_subdomain("foo.bar-1"));
        assert!(!is_dns1123_subdomain("Foo"));
        assert!(!is_dns1123_subdomain("foo..bar"));
        assert!(!is_dns1123_subdomain("-foo"));
        assert!(!is_dns1123_subdomain("foo-"));
        assert!(!is_dns1123_subdomain(""));
        assert!(is_dns1123_subdomain(&"a".repeat(253)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    }
}
