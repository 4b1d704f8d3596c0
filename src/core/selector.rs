//! Label selectors: matching `matchLabels`/`matchExpressions` against labels, as apimachinery does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// A selector that cannot be turned into a label query (bad operator, values where none are allowed...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector: {0}")]
pub struct InvalidSelector(pub String);

/// True for the empty selector object `{}` (no matchLabels, no matchExpressions), which selects
/// everything and makes upstream emit `SelectingAll` and do nothing.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
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
    let requirements = requirements(selector)?;
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    Ok(requirements.iter().all(|r| r.matches(labels)))
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
