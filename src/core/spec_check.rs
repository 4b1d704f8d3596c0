//! Whether a DaemonSet's spec can be acted on at all: checked once at the top of every sync, before
//! any pod is adopted, released, created or deleted (§9.2).
//!
//! The API server's validation makes every check here pass for objects it accepted; they guard
//! against objects that got past it (older servers, direct etcd writes, a missing spec in a hand-made
//! object). Without them an invalid selector is noticed only per pod, after pods were created; a
//! selector that does not match the template's labels creates pods it then releases, forever; a
//! negative `maxSurge` sends the rolling update down the surge path while manage does not surge.
//!
//! [difference] Upstream acts on such a spec as far as it gets and logs the errors; everynode does
//! nothing for that DaemonSet, emits one Warning event saying what to fix, and waits for a change
//! (docs/differences.md).

use crate::core::budget::{BudgetError, rolling_update, scaled_value};
use crate::core::events::{INVALID_SELECTOR, INVALID_SPEC, INVALID_UPDATE_STRATEGY};
use crate::core::selector;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Why a DaemonSet's spec cannot be acted on. Permanent: only a change of the DaemonSet fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpec {
    #[error("the DaemonSet has no spec; nothing is done until it has one")]
    MissingSpec,
    #[error(
        "spec.selector is invalid ({0}); no pod is adopted, created or deleted until it is fixed"
    )]
    InvalidSelector(String),
    #[error(
        "spec.selector does not match the labels of spec.template.metadata.labels: every pod \
         created would be released at once; make the template carry the selected labels"
    )]
    SelectorDoesNotMatchTemplate,
    #[error(
        "spec.updateStrategy.rollingUpdate.{field} {value:?} is not a number of pods or a \
         percentage such as \"25%\" ({source}); the DaemonSet is not acted on until it is fixed"
    )]
    UnparsableBudget {
        field: &'static str,
        value: String,
        source: BudgetError,
    },
    #[error(
        "spec.updateStrategy.rollingUpdate.{field} is negative ({value}); use 0 or more; the \
         DaemonSet is not acted on until it is fixed"
    )]
    NegativeBudget { field: &'static str, value: String },
}

impl InvalidSpec {
    /// The reason of the Warning event that reports it.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidSpec::MissingSpec => INVALID_SPEC,
            InvalidSpec::InvalidSelector(_) | InvalidSpec::SelectorDoesNotMatchTemplate => {
                INVALID_SELECTOR
            }
            InvalidSpec::UnparsableBudget { .. } | InvalidSpec::NegativeBudget { .. } => {
                INVALID_UPDATE_STRATEGY
            }
        }
    }
}

fn check_budget(field: &'static str, value: Option<&IntOrString>) -> Result<(), InvalidSpec> {
    let Some(value) = value else {
        return Ok(());
    };
    let shown = match value {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    match scaled_value(value, 100) {
        Ok(n) if n < 0 => Err(InvalidSpec::NegativeBudget {
            field,
            value: shown,
        }),
        Ok(_) => Ok(()),
        Err(source) => Err(InvalidSpec::UnparsableBudget {
            field,
            value: shown,
            source,
        }),
    }
}

/// Checks that `ds` can be acted on: it has a spec; its selector parses and matches the template's
/// labels; its rolling-update budgets (for the RollingUpdate strategy) parse and are not negative.
/// The empty selector is not checked here: upstream answers it with the `SelectingAll` event
/// ([`crate::core::manage::selecting_all_event`]), which runs first.
pub fn check_spec(ds: &DaemonSet) -> Result<(), InvalidSpec> {
    let spec = ds.spec.as_ref().ok_or(InvalidSpec::MissingSpec)?;
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    match selector::matches(&spec.selector, labels) {
        Err(e) => return Err(InvalidSpec::InvalidSelector(e.0)),
        Ok(false) => return Err(InvalidSpec::SelectorDoesNotMatchTemplate),
        Ok(true) => {}
    }
    if let Some(r) = rolling_update(ds) {
        check_budget("maxUnavailable", r.max_unavailable.as_ref())?;
        check_budget("maxSurge", r.max_surge.as_ref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{daemonset, with_on_delete, with_rolling_update};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.to_string())
    }

    #[test]
    fn a_well_formed_daemonset_passes() {
        assert_eq!(check_spec(&daemonset("foo")), Ok(()));
        let ds = with_rolling_update(daemonset("foo"), Some(s("25%")), Some(IntOrString::Int(0)));
        assert_eq!(check_spec(&ds), Ok(()));
    }

    #[test]
    fn a_missing_spec_is_refused() {
        let mut ds = daemonset("foo");
        ds.spec = None;
        assert_eq!(check_spec(&ds), Err(InvalidSpec::MissingSpec));
    }

    #[test]
    fn an_invalid_selector_is_refused_before_any_pod_is_looked_at() {
        let mut ds = daemonset("foo");
        if let Some(spec) = ds.spec.as_mut() {
            spec.selector = LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "name".into(),
                    operator: "In".into(),
                    values: None,
                }]),
                match_labels: None,
            };
        }
        let err = check_spec(&ds);
        assert!(
            matches!(err, Err(InvalidSpec::InvalidSelector(_))),
            "{err:?}"
        );
        assert_eq!(err.map_err(|e| e.reason()), Err(INVALID_SELECTOR));
    }

    #[test]
    fn a_selector_that_misses_the_template_labels_is_refused() {
        let mut ds = daemonset("foo");
        if let Some(spec) = ds.spec.as_mut() {
            spec.selector.match_labels = Some([("name".to_string(), "other".to_string())].into());
        }
        assert_eq!(
            check_spec(&ds),
            Err(InvalidSpec::SelectorDoesNotMatchTemplate)
        );
    }

    #[test]
    fn negative_or_unparsable_budgets_are_refused_for_rolling_updates_only() {
        let negative =
            with_rolling_update(daemonset("foo"), Some(s("0%")), Some(IntOrString::Int(-1)));
        assert_eq!(
            check_spec(&negative),
            Err(InvalidSpec::NegativeBudget {
                field: "maxSurge",
                value: "-1".into()
            })
        );
        let negative_percent = with_rolling_update(daemonset("foo"), Some(s("-10%")), None);
        assert!(matches!(
            check_spec(&negative_percent),
            Err(InvalidSpec::NegativeBudget {
                field: "maxUnavailable",
                ..
            })
        ));
        let garbage = with_rolling_update(daemonset("foo"), Some(s("lots")), None);
        let err = check_spec(&garbage);
        assert!(
            matches!(err, Err(InvalidSpec::UnparsableBudget { .. })),
            "{err:?}"
        );
        assert_eq!(err.map_err(|e| e.reason()), Err(INVALID_UPDATE_STRATEGY));
        // OnDelete ignores the rolling-update parameters, as upstream does.
        assert_eq!(check_spec(&with_on_delete(negative)), Ok(()));
    }
}
