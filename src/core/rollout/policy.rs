//! The `DaemonSetRollout` spec with every default filled in ([`Policy`]), checked again in code.
//!
//! The schema's CEL rules already reject bad values at the API server; this check covers objects
//! written before a rule existed (version skew) and values only code can see (a selector that
//! does not parse). An unusable policy gives `Mode::Hold`, never "act without the policy".

use crate::core::cached_node::CachedNode;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{Approvals, DaemonSetRollout, DaemonSetRolloutSpec, FailureAction, Promotion};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::core::selector::{InvalidSelector, matches};

/// Canary bake when the spec says none: five minutes.
pub const DEFAULT_CANARY_BAKE_SECONDS: i64 = 300;
/// Restarts a new pod may have before it counts as failing: EDS's default.
pub const DEFAULT_MAX_RESTARTS: i32 = 2;
/// The progress deadline when the spec says none: Deployments' default.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;
/// The share of pods the guard lets go at once when the spec says none.
pub const DEFAULT_MAX_DELETIONS: &str = "50%";

/// The canary with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryPolicy {
    pub nodes: IntOrString,
    pub spread_by_label: Option<String>,
    pub bake_seconds: i64,
    pub manual: bool,
}

/// The waves with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavesPolicy {
    pub node_label: String,
    pub order: Vec<String>,
    pub bake_seconds: i64,
}

/// The spec, every default filled in.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The DaemonSetRollout's (and the DaemonSet's) name.
    pub name: String,
    /// The DaemonSetRollout's generation.
    pub generation: Option<i64>,
    pub paused: bool,
    pub frozen: bool,
    /// `None`: no partition (0).
    pub partition: Option<IntOrString>,
    /// The update scope, parsed; `None`: every node. `scope_text` is it as the user wrote it.
    pub scope: Option<LabelSelector>,
    pub scope_text: Option<String>,
    pub canary: Option<CanaryPolicy>,
    pub waves: Option<WavesPolicy>,
    pub min_seconds_between_node_updates: i64,
    /// Whether the spec has a failure policy at all (failure detection runs either way).
    pub max_restarts: i32,
    pub action: FailureAction,
    pub progress_deadline_seconds: i64,
    /// The guard's share (default 50%, on whenever a DaemonSetRollout exists).
    pub max_deletions: Option<IntOrString>,
    pub approvals: Approvals,
}

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("spec.updateScope: {0}")]
    Scope(#[from] InvalidSelector),
    #[error("spec.{field}: {value:?} is not an integer or a percentage from 0% to 100%")]
    Share { field: &'static str, value: String },
    #[error("spec.{field} must not be negative")]
    Negative { field: &'static str },
}

impl Policy {
    /// The policy of a DaemonSetRollout with every default filled in, or why it cannot be used.
    pub fn from_rollout(rollout: &DaemonSetRollout) -> Result<Policy, PolicyError> {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        Policy::from_spec(&name, rollout.metadata.generation, &rollout.spec)
    }

    /// The policy of `spec`, named `name`.
    pub fn from_spec(
        name: &str,
        generation: Option<i64>,
        spec: &DaemonSetRolloutSpec,
    ) -> Result<Policy, PolicyError> {
        check_share("partition", spec.partition.as_ref(), 0)?;
        let (scope, scope_text) = match &spec.update_scope {
            Some(s) => {
                matches(s, None)?;
                (Some(s.clone()), Some(selector_text(s)))
            }
            None => (None, None),
        };
        let canary = match &spec.canary {
            Some(c) => {
                check_share("canary.nodes", Some(&c.nodes), 1)?;
                Some(CanaryPolicy {
                    nodes: c.nodes.clone(),
                    spread_by_label: c.spread_by_label.clone().filter(|l| !l.is_empty()),
                    bake_seconds: non_negative(
                        "canary.bakeSeconds",
                        c.bake_seconds,
                        DEFAULT_CANARY_BAKE_SECONDS,
                    )?,
                    manual: c.promotion == Some(Promotion::Manual),
                })
            }
            None => None,
        };
        let waves = match &spec.waves {
            Some(w) => Some(WavesPolicy {
                node_label: w.node_label.clone(),
                order: w.order.clone(),
                bake_seconds: non_negative("waves.bakeSeconds", w.bake_seconds, 0)?,
            }),
            None => None,
        };
        // The guard is on whenever a DaemonSetRollout exists (never without one: parity); "100%"
        // turns it off.
        let max_deletions = spec
            .mass_deletion_guard
            .as_ref()
            .and_then(|g| g.max_deletions.clone())
            .unwrap_or_else(|| IntOrString::String(DEFAULT_MAX_DELETIONS.into()));
        check_share("massDeletionGuard.maxDeletions", Some(&max_deletions), 0)?;
        let max_deletions = Some(max_deletions);
        let failure = spec.failure_policy.clone().unwrap_or_default();
        Ok(Policy {
            name: name.to_string(),
            generation,
            paused: spec.paused,
            frozen: spec.frozen,
            partition: spec.partition.clone(),
            scope,
            scope_text,
            canary,
            waves,
            min_seconds_between_node_updates: non_negative(
                "minSecondsBetweenNodeUpdates",
                spec.min_seconds_between_node_updates,
                0,
            )?,
            max_restarts: match failure.max_restarts {
                Some(n) if n < 0 => {
                    return Err(PolicyError::Negative {
                        field: "failurePolicy.maxRestarts",
                    });
                }
                Some(n) => n,
                None => DEFAULT_MAX_RESTARTS,
            },
            action: failure.action,
            progress_deadline_seconds: match spec.progress_deadline_seconds {
                Some(n) if n < 1 => {
                    return Err(PolicyError::Negative {
                        field: "progressDeadlineSeconds",
                    });
                }
                Some(n) => i64::from(n),
                None => DEFAULT_PROGRESS_DEADLINE_SECONDS,
            },
            max_deletions,
            approvals: spec.approvals.clone().unwrap_or_default(),
        })
    }

    /// Whether `node` is in the update scope (every node when there is no scope).
    pub fn in_scope(&self, node: &CachedNode) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| matches(s, node.metadata.labels.as_ref()).unwrap_or(false))
    }
}

/// `share` of `total`: an integer as is, a percentage of `total` rounded up (`round_up`) or down,
/// never more than `total` nor less than 0. Invalid values give 0 (`from_spec` refuses them first).
pub fn scaled(share: &IntOrString, total: usize, round_up: bool) -> usize {
    match share {
        IntOrString::Int(n) => usize::try_from(*n).unwrap_or(0).min(total),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<usize>().ok()) else {
                return 0;
            };
            let p = p.min(100);
            let n = if round_up {
                (total * p).div_ceil(100)
            } else {
                total * p / 100
            };
            n.min(total)
        }
    }
}

fn check_share(
    field: &'static str,
    share: Option<&IntOrString>,
    min: i32,
) -> Result<(), PolicyError> {
    let bad = || PolicyError::Share {
        field,
        value: match share {
            Some(IntOrString::Int(n)) => n.to_string(),
            Some(IntOrString::String(s)) => s.clone(),
            None => String::new(),
        },
    };
    match share {
        None => Ok(()),
        Some(IntOrString::Int(n)) if *n >= min => Ok(()),
        Some(IntOrString::Int(_)) => Err(bad()),
        Some(IntOrString::String(s)) => {
            match s.strip_suffix('%').and_then(|p| p.parse::<i32>().ok()) {
                Some(p) if p >= min && p <= 100 => Ok(()),
                _ => Err(bad()),
            }
        }
    }
}

fn non_negative(field: &'static str, value: Option<i32>, default: i64) -> Result<i64, PolicyError> {
    match value {
        Some(n) if n < 0 => Err(PolicyError::Negative { field }),
        Some(n) => Ok(i64::from(n)),
        None => Ok(default),
    }
}

/// A label selector as `kubectl` prints one: `pool=a,zone in (x,y)`.
pub fn selector_text(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {op} ({values})", e.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Canary, MassDeletionGuard};

    #[test]
    fn defaults_fill_what_the_spec_leaves_out() {
        let spec = DaemonSetRolloutSpec {
            canary: Some(Canary {
                nodes: IntOrString::Int(2),
                ..Canary::default()
            }),
            mass_deletion_guard: Some(MassDeletionGuard::default()),
            ..DaemonSetRolloutSpec::default()
        };
        let p = Policy::from_spec("agent", Some(1), &spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.canary.as_ref().map(|c| c.bake_seconds),
            Some(DEFAULT_CANARY_BAKE_SECONDS)
        );
        assert_eq!(p.max_restarts, DEFAULT_MAX_RESTARTS);
        assert_eq!(
            p.progress_deadline_seconds,
            DEFAULT_PROGRESS_DEADLINE_SECONDS
        );
        assert_eq!(p.max_deletions, Some(IntOrString::String("50%".into())));
        assert_eq!(p.action, FailureAction::Pause);
    }

    #[test]
    fn values_the_schema_would_refuse_are_refused_in_code_too() {
        for bad in [
            IntOrString::Int(-1),
            IntOrString::String("150%".into()),
            IntOrString::String("x".into()),
        ] {
            let spec = DaemonSetRolloutSpec {
                partition: Some(bad.clone()),
                ..Default::default()
            };
            assert!(Policy::from_spec("a", None, &spec).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shares_scale_like_the_rolling_update_budget() {
        assert_eq!(scaled(&IntOrString::String("25%".into()), 10, true), 3);
        assert_eq!(scaled(&IntOrString::String("25%".into()), 10, false), 2);
        assert_eq!(scaled(&IntOrString::Int(30), 10, true), 10);
        assert_eq!(scaled(&IntOrString::String("100%".into()), 7, false), 7);
    }
}
