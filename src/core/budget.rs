//! Rolling-update budgets: scaling `maxSurge`/`maxUnavailable` (int or percent) against a node count
//! (upstream `GetScaledValueFromIntOrPercent`, `SurgeCount`, `UnavailableCount`, `AllowsSurge`, §5.1).

use k8s_openapi::api::apps::v1::{DaemonSet, RollingUpdateDaemonSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A `maxSurge`/`maxUnavailable` value that is neither an integer nor a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// A string without a trailing `%` (upstream: "string is not a percentage").
    #[error(
        "rolling-update budget {0:?} is a string but not a percentage; set \
         spec.updateStrategy.rollingUpdate.maxSurge/maxUnavailable to an integer or a value like \"25%\""
    )]
    NotAPercentage(String),
    /// A string ending in `%` whose number does not parse.
    #[error(
        "rolling-update budget {0:?} is not a valid percentage; set \
         spec.updateStrategy.rollingUpdate.maxSurge/maxUnavailable to an integer or a value like \"25%\""
    )]
    InvalidPercentage(String),
}

/// `value` scaled against `total`: integers as-is (not capped), percentages `ceil(p × total / 100)`.
pub fn scaled_value(value: &IntOrString, total: i64) -> Result<i64, BudgetError> {
    match value {
        IntOrString::Int(i) => Ok(i64::from(*i)),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(BudgetError::NotAPercentage(s.clone()));
            };
            let percent: i64 = number
                .parse()
                .map_err(|_| BudgetError::InvalidPercentage(s.clone()))?;
            // Same floating-point computation as upstream (math.Ceil over float64).
            Ok((percent as f64 * total as f64 / 100.0).ceil() as i64)
        }
    }
}

/// The rolling-update parameters when the strategy type is `RollingUpdate`, else `None`.
pub fn rolling_update(ds: &DaemonSet) -> Option<&RollingUpdateDaemonSet> {
    if !crate::core::rolling_update::is_rolling_update(ds) {
        return None;
    }
    ds.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()
}

/// `maxSurge` scaled against `total` nodes; 0 unless the strategy is RollingUpdate with a maxSurge.
pub fn surge_count(ds: &DaemonSet, total: i64) -> Result<i64, BudgetError> {
    match rolling_update(ds).and_then(|r| r.max_surge.as_ref()) {
        Some(v) => scaled_value(v, total),
        None => Ok(0),
    }
}

/// `maxUnavailable` scaled against `total` nodes; 0 unless the strategy is RollingUpdate with a
/// maxUnavailable (a missing value counts as 0, §9.2; upstream would fail on it).
pub fn unavailable_count(ds: &DaemonSet, total: i64) -> Result<i64, BudgetError> {
    match rolling_update(ds).and_then(|r| r.max_unavailable.as_ref()) {
        Some(v) => scaled_value(v, total),
        None => Ok(0),
    }
}

/// Upstream `AllowsSurge`: maxSurge scaled against one node is positive. An unparsable maxSurge
/// disables surge.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    matches!(surge_count(ds, 1), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{daemonset, with_on_delete, with_rolling_update};

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.to_string())
    }

    #[test]
    fn integers_are_used_as_is_and_not_capped() {
        assert_eq!(scaled_value(&IntOrString::Int(3), 2), Ok(3));
        assert_eq!(scaled_value(&IntOrString::Int(0), 10), Ok(0));
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled_value(&s("50%"), 3), Ok(2));
        assert_eq!(scaled_value(&s("20%"), 5), Ok(1));
        assert_eq!(scaled_value(&s("50%"), 2), Ok(1));
        assert_eq!(scaled_value(&s("100%"), 2), Ok(2));
        assert_eq!(scaled_value(&s("1%"), 1), Ok(1));
        assert_eq!(scaled_value(&s("0%"), 100), Ok(0));
        assert_eq!(scaled_value(&s("10%"), 0), Ok(0));
        assert_eq!(scaled_value(&s("30%"), 10), Ok(3));
    }

    #[test]
    fn unparsable_values_are_errors() {
        assert_eq!(
            scaled_value(&s("5"), 3),
            Err(BudgetError::NotAPercentage("5".into()))
        );
        assert_eq!(
            scaled_value(&s("abc%"), 3),
            Err(BudgetError::InvalidPercentage("abc%".into()))
        );
        assert_eq!(
            scaled_value(&s("%"), 3),
            Err(BudgetError::InvalidPercentage("%".into()))
        );
        let message = BudgetError::NotAPercentage("x".into()).to_string();
        assert!(
            message.contains("\"x\"") && message.contains("25%"),
            "{message}"
        );
    }

    #[test]
    fn surge_count_is_zero_without_rolling_update_or_max_surge() {
        let on_delete = with_on_delete(daemonset("foo"));
        assert_eq!(surge_count(&on_delete, 5), Ok(0));
        let no_surge = with_rolling_update(daemonset("foo"), Some(IntOrString::Int(1)), None);
        assert_eq!(surge_count(&no_surge, 5), Ok(0));
        let surge = with_rolling_update(daemonset("foo"), None, Some(s("50%")));
        assert_eq!(surge_count(&surge, 5), Ok(3));
        assert_eq!(unavailable_count(&surge, 5), Ok(0));
        assert_eq!(unavailable_count(&no_surge, 5), Ok(1));
        assert_eq!(unavailable_count(&on_delete, 5), Ok(0));
    }

    #[test]
    fn allows_surge_resolves_against_one_node() {
        assert!(allows_surge(&with_rolling_update(
            daemonset("foo"),
            None,
            Some(IntOrString::Int(1))
        )));
        assert!(allows_surge(&with_rolling_update(
            daemonset("foo"),
            None,
            Some(s("1%"))
        )));
        assert!(!allows_surge(&with_rolling_update(
            daemonset("foo"),
            None,
            Some(s("0%"))
        )));
        assert!(!allows_surge(&with_rolling_update(
            daemonset("foo"),
            None,
            Some(IntOrString::Int(0))
        )));
        assert!(!allows_surge(&with_rolling_update(
            daemonset("foo"),
            None,
            Some(s("lots"))
        )));
        assert!(!allows_surge(&with_rolling_update(
            daemonset("foo"),
            Some(IntOrString::Int(1)),
            None
        )));
        assert!(!allows_surge(&with_on_delete(daemonset("foo"))));
        // OnDelete with a leftover rollingUpdate block never surges.
        let mut ds = with_rolling_update(daemonset("foo"), None, Some(IntOrString::Int(1)));
        if let Some(strategy) = ds.spec.as_mut().and_then(|s| s.update_strategy.as_mut()) {
            strategy.type_ = Some("OnDelete".into());
        }
        assert!(!allows_surge(&ds));
    }
}
