//! Taints and tolerations: which taint a toleration tolerates, and the default tolerations every
//! daemon pod gets (§3.3).

use k8s_openapi::api::core::v1::{Taint, Toleration};

pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NODE_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_NODE_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_NODE_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NODE_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";

fn exists(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        value: None,
        toleration_seconds: None,
    }
}

/// The default DaemonSet tolerations (§3.3); network-unavailable only with host networking.
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut out = vec![
        exists(TAINT_NODE_NOT_READY, NO_EXECUTE),
        exists(TAINT_NODE_UNREACHABLE, NO_EXECUTE),
        exists(TAINT_NODE_DISK_PRESSURE, NO_SCHEDULE),
        exists(TAINT_NODE_MEMORY_PRESSURE, NO_SCHEDULE),
        exists(TAINT_NODE_PID_PRESSURE, NO_SCHEDULE),
        exists(TAINT_NODE_UNSCHEDULABLE, NO_SCHEDULE),
    ];
    if host_network {
        out.push(exists(TAINT_NODE_NETWORK_UNAVAILABLE, NO_SCHEDULE));
    }
    out
}

fn s(field: &Option<String>) -> &str {
    field.as_deref().unwrap_or_default()
}

/// Upstream `Toleration.MatchToleration`: same key, operator, value and effect (unset == empty).
fn same_identity(a: &Toleration, b: &Toleration) -> bool {
    s(&a.key) == s(&b.key)
        && s(&a.operator) == s(&b.operator)
        && s(&a.value) == s(&b.value)
        && s(&a.effect) == s(&b.effect)
}

/// Go's semantic deep equality of two tolerations (unset strings equal empty ones).
fn semantically_equal(a: &Toleration, b: &Toleration) -> bool {
    same_identity(a, b) && a.toleration_seconds == b.toleration_seconds
}

/// Upstream `AddOrUpdateTolerationInPodSpec` for one toleration.
fn add_or_update(tolerations: &mut Vec<Toleration>, toleration: &Toleration) {
    let mut updated = false;
    let mut out = Vec::with_capacity(tolerations.len() + 1);
    for existing in tolerations.iter() {
        if same_identity(toleration, existing) {
            if semantically_equal(toleration, existing) {
                // Already present exactly: upstream leaves the list untouched.
                return;
            }
            out.push(toleration.clone());
            updated = true;
        } else {
            out.push(existing.clone());
        }
    }
    if !updated {
        out.push(toleration.clone());
    }
    *tolerations = out;
}

/// Adds each default toleration, replacing a user toleration with the same key, operator, value and
/// effect in place, otherwise appending it after the user's tolerations (§3.3).
pub fn add_default_tolerations(tolerations: &mut Vec<Toleration>, host_network: bool) {
    for toleration in default_tolerations(host_network) {
        add_or_update(tolerations, &toleration);
    }
}

/// Whether `toleration` tolerates `taint` (effect, key, operator Exists/Equal; tolerationSeconds ignored).
///
/// Unknown operators (including `Gt`/`Lt`, which need the alpha `TaintTolerationComparisonOperators`
/// gate upstream) tolerate nothing.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = s(&toleration.effect);
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = s(&toleration.key);
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match s(&toleration.operator) {
        "" | "Equal" => s(&toleration.value) == s(&taint.value),
        "Exists" => true,
        _ => false,
    }
}

/// The first taint among `taints` with effect NoSchedule or NoExecute (accepted by `effect_filter`)
/// that no toleration tolerates. PreferNoSchedule taints are never returned.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effect_filter: impl Fn(&str) -> bool,
) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        (taint.effect == NO_SCHEDULE || taint.effect == NO_EXECUTE)
            && effect_filter(&taint.effect)
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{taint, toleration};

    fn keys_and_effects(ts: &[Toleration]) -> Vec<(String, String, String)> {
        ts.iter()
            .map(|t| {
                (
                    s(&t.key).to_string(),
                    s(&t.operator).to_string(),
                    s(&t.effect).to_string(),
                )
            })
            .collect()
    }

    fn expected_defaults(host_network: bool) -> Vec<(String, String, String)> {
        let mut v = vec![
            (TAINT_NODE_NOT_READY, NO_EXECUTE),
            (TAINT_NODE_UNREACHABLE, NO_EXECUTE),
            (TAINT_NODE_DISK_PRESSURE, NO_SCHEDULE),
            (TAINT_NODE_MEMORY_PRESSURE, NO_SCHEDULE),
            (TAINT_NODE_PID_PRESSURE, NO_SCHEDULE),
            (TAINT_NODE_UNSCHEDULABLE, NO_SCHEDULE),
        ];
        if host_network {
            v.push((TAINT_NODE_NETWORK_UNAVAILABLE, NO_SCHEDULE));
        }
        v.into_iter()
            .map(|(k, e)| (k.to_string(), "Exists".to_string(), e.to_string()))
            .collect()
    }

    #[test]
    fn default_tolerations_table_without_host_network() {
        let d = default_tolerations(false);
        assert_eq!(keys_and_effects(&d), expected_defaults(false));
        assert!(
            d.iter()
                .all(|t| t.value.is_none() && t.toleration_seconds.is_none())
        );
    }

    #[test]
    fn default_tolerations_table_with_host_network() {
        let d = default_tolerations(true);
        assert_eq!(d.len(), 7);
        assert_eq!(keys_and_effects(&d), expected_defaults(true));
    }

    #[test]
    fn add_defaults_to_empty_list() {
        let mut ts = Vec::new();
        add_default_tolerations(&mut ts, false);
        assert_eq!(ts, default_tolerations(false));
        let mut ts = Vec::new();
        add_default_tolerations(&mut ts, true);
        assert_eq!(ts, default_tolerations(true));
    }

    #[test]
    fn add_defaults_appends_after_user_tolerations() {
        let user = toleration("zone", "Equal", "y", NO_SCHEDULE);
        let mut ts = vec![user.clone()];
        add_default_tolerations(&mut ts, false);
        assert_eq!(ts.len(), 7);
        assert_eq!(ts[0], user);
        assert_eq!(&ts[1..], default_tolerations(false).as_slice());
    }

    #[test]
    fn add_defaults_replaces_matching_user_toleration_in_place() {
        let first = toleration("zone", "Exists", "", "");
        let mut matching = toleration(TAINT_NODE_UNREACHABLE, "Exists", "", NO_EXECUTE);
        matching.toleration_seconds = Some(300);
        let last = toleration("other", "Exists", "", NO_EXECUTE);
        let mut ts = vec![first.clone(), matching, last.clone()];
        add_default_tolerations(&mut ts, false);
        // unreachable stays at index 1, without tolerationSeconds; 5 others appended.
        assert_eq!(ts.len(), 3 + 5);
        assert_eq!(ts[0], first);
        assert_eq!(ts[1], exists(TAINT_NODE_UNREACHABLE, NO_EXECUTE));
        assert_eq!(ts[2], last);
        let appended: Vec<_> = default_tolerations(false)
            .into_iter()
            .filter(|t| s(&t.key) != TAINT_NODE_UNREACHABLE)
            .collect();
        assert_eq!(&ts[3..], appended.as_slice());
    }

    #[test]
    fn add_defaults_keeps_exact_duplicate_without_appending() {
        let mut ts = vec![exists(TAINT_NODE_NOT_READY, NO_EXECUTE)];
        add_default_tolerations(&mut ts, false);
        assert_eq!(ts, default_tolerations(false));
    }

    #[test]
    fn add_defaults_does_not_replace_toleration_differing_in_operator_or_effect() {
        // Equal operator (not Exists) and a different effect: both kept, defaults appended.
        let equal = toleration(TAINT_NODE_NOT_READY, "Equal", "", NO_EXECUTE);
        let other_effect = toleration(TAINT_NODE_UNSCHEDULABLE, "Exists", "", NO_EXECUTE);
        let mut ts = vec![equal.clone(), other_effect.clone()];
        add_default_tolerations(&mut ts, false);
        assert_eq!(ts.len(), 8);
        assert_eq!(ts[0], equal);
        assert_eq!(ts[1], other_effect);
        assert_eq!(&ts[2..], default_tolerations(false).as_slice());
    }

    #[test]
    fn add_defaults_treats_unset_and_empty_value_alike() {
        let mut with_empty_value = exists(TAINT_NODE_PID_PRESSURE, NO_SCHEDULE);
        with_empty_value.value = Some(String::new());
        let mut ts = vec![with_empty_value.clone()];
        add_default_tolerations(&mut ts, false);
        // Semantically equal: left untouched, not duplicated.
        assert_eq!(ts.len(), 6);
        assert_eq!(ts[0], with_empty_value);
    }

    #[test]
    fn network_unavailable_default_only_with_host_network() {
        let mut ts = Vec::new();
        add_default_tolerations(&mut ts, false);
        assert!(
            !ts.iter()
                .any(|t| s(&t.key) == TAINT_NODE_NETWORK_UNAVAILABLE)
        );
        let mut ts = Vec::new();
        add_default_tolerations(&mut ts, true);
        assert_eq!(
            ts.last(),
            Some(&exists(TAINT_NODE_NETWORK_UNAVAILABLE, NO_SCHEDULE))
        );
    }

    #[test]
    fn tolerates_equal_operator_compares_values() {
        let t = taint("k", "v", NO_SCHEDULE);
        assert!(tolerates(&toleration("k", "Equal", "v", NO_SCHEDULE), &t));
        assert!(tolerates(&toleration("k", "", "v", NO_SCHEDULE), &t));
        assert!(!tolerates(&toleration("k", "Equal", "w", NO_SCHEDULE), &t));
        assert!(!tolerates(&toleration("k", "Equal", "", NO_SCHEDULE), &t));
    }

    #[test]
    fn tolerates_checks_effect_and_key() {
        let t = taint("k", "v", NO_EXECUTE);
        assert!(!tolerates(&toleration("k", "Exists", "", NO_SCHEDULE), &t));
        assert!(tolerates(&toleration("k", "Exists", "", ""), &t));
        assert!(!tolerates(&toleration("j", "Exists", "", NO_EXECUTE), &t));
    }

    #[test]
    fn empty_key_exists_tolerates_everything() {
        let all = toleration("", "Exists", "", "");
        assert!(tolerates(&all, &taint("a", "b", NO_SCHEDULE)));
        assert!(tolerates(&all, &taint("c", "", NO_EXECUTE)));
        assert!(tolerates(&all, &taint("d", "", PREFER_NO_SCHEDULE)));
    }

    #[test]
    fn empty_key_equal_matches_any_key_with_same_value() {
        let t = toleration("", "Equal", "", NO_SCHEDULE);
        assert!(tolerates(&t, &taint("anything", "", NO_SCHEDULE)));
        assert!(!tolerates(&t, &taint("anything", "v", NO_SCHEDULE)));
    }

    #[test]
    fn unknown_or_comparison_operators_tolerate_nothing() {
        let t = taint("k", "5", NO_SCHEDULE);
        assert!(!tolerates(&toleration("k", "Gt", "1", NO_SCHEDULE), &t));
        assert!(!tolerates(&toleration("k", "Lt", "9", NO_SCHEDULE), &t));
        assert!(!tolerates(&toleration("k", "exists", "", NO_SCHEDULE), &t));
    }

    #[test]
    fn tolerates_ignores_toleration_seconds() {
        let mut tol = toleration("k", "Exists", "", NO_EXECUTE);
        tol.toleration_seconds = Some(0);
        assert!(tolerates(&tol, &taint("k", "", NO_EXECUTE)));
    }

    #[test]
    fn find_untolerated_skips_prefer_no_schedule_and_tolerated() {
        let taints = vec![
            taint("soft", "", PREFER_NO_SCHEDULE),
            taint("a", "", NO_SCHEDULE),
            taint("b", "", NO_EXECUTE),
        ];
        let all = |_: &str| true;
        assert_eq!(find_untolerated(&taints, &[], all), Some(&taints[1]));
        let tol_a = [toleration("a", "Exists", "", "")];
        assert_eq!(find_untolerated(&taints, &tol_a, all), Some(&taints[2]));
        let tol_ab = [
            toleration("a", "Exists", "", ""),
            toleration("b", "Exists", "", ""),
        ];
        assert_eq!(find_untolerated(&taints, &tol_ab, all), None);
        // PreferNoSchedule is never returned, even if the filter accepts everything.
        let soft = [taint("soft", "", PREFER_NO_SCHEDULE)];
        assert_eq!(find_untolerated(&soft, &[], all), None);
    }

    #[test]
    fn find_untolerated_honours_effect_filter() {
        let taints = vec![taint("a", "", NO_SCHEDULE), taint("b", "", NO_EXECUTE)];
        let only_no_execute = |e: &str| e == NO_EXECUTE;
        assert_eq!(
            find_untolerated(&taints, &[], only_no_execute),
            Some(&taints[1])
        );
        let tol_b = [toleration("b", "Exists", "", NO_EXECUTE)];
        assert_eq!(find_untolerated(&taints, &tol_b, only_no_execute), None);
    }

    #[test]
    fn default_tolerations_tolerate_node_condition_taints() {
        let defaults = default_tolerations(false);
        for (key, effect) in [
            (TAINT_NODE_NOT_READY, NO_EXECUTE),
            (TAINT_NODE_UNREACHABLE, NO_EXECUTE),
            (TAINT_NODE_DISK_PRESSURE, NO_SCHEDULE),
            (TAINT_NODE_MEMORY_PRESSURE, NO_SCHEDULE),
            (TAINT_NODE_PID_PRESSURE, NO_SCHEDULE),
            (TAINT_NODE_UNSCHEDULABLE, NO_SCHEDULE),
        ] {
            let taints = [taint(key, "", effect)];
            assert_eq!(
                find_untolerated(&taints, &defaults, |_| true),
                None,
                "{key}"
            );
        }
        let net = [taint(TAINT_NODE_NETWORK_UNAVAILABLE, "", NO_SCHEDULE)];
        assert!(find_untolerated(&net, &defaults, |_| true).is_some());
        assert_eq!(
            find_untolerated(&net, &default_tolerations(true), |_| true),
            None
        );
    }
}
