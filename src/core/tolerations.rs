//! Taints and tolerations: which taint a toleration tolerates, and the default tolerations every
//! daemon pod gets (§3.3).

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// The default DaemonSet tolerations (§3.3); network-unavailable only with host networking.
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    todo!("{host_network}")
}

/// Adds each default toleration, replacing a user toleration with the same key, operator, value and
/// effect in place, otherwise appending it after the user's tolerations (§3.3).
pub fn add_default_tolerations(tolerations: &mut Vec<Toleration>, host_network: bool) {
    todo!("{tolerations:?} {host_network}")
}

/// Whether `toleration` tolerates `taint` (effect, key, operator Exists/Equal; tolerationSeconds ignored).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    todo!("{toleration:?} {taint:?}")
}

/// The first taint among `taints` with effect NoSchedule or NoExecute (accepted by `effect_filter`)
/// that no toleration tolerates. PreferNoSchedule taints are never returned.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effect_filter: impl Fn(&str) -> bool,
) -> Option<&'a Taint> {
    todo!("{taints:?} {tolerations:?} {}", effect_filter(""))
}
