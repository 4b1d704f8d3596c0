//! The composition of the rollout policy: [`plan_rollout`].

use std::borrow::Borrow;

use k8s_openapi::api::core::v1::Node;

use super::{RolloutInput, RolloutPlan};

/// The policy's decision for one sync (see the module docs of `core::rollout`).
///
/// Placeholder of the seams step: every decision is upstream's (`Mode::Act`, no gate) and the
/// previous status is kept. The composition replaces it.
pub fn plan_rollout<N: Borrow<Node>>(input: &RolloutInput<N>) -> RolloutPlan {
    RolloutPlan {
        status: input.previous.clone(),
        ..RolloutPlan::default()
    }
}
