//! Canary and wave steps: which step is current, its bake, promotion and approval, and which
//! nodes may be updated now.
//!
//! Step 0 is the canary (when there is one), then one step per wave (or one step "all"). A step
//! is done when its target nodes are all updated and available, it has baked (`bakeSeconds` with
//! no restart of its new pods) and, for a Manual canary, it is approved. Done is sticky for the
//! revision (the caller passes what the previous status recorded). The current step is the first
//! step not done; nodes of later steps wait.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::SignedDuration;

use super::facts::NodeFacts;
use super::order::Wave;
use super::policy::Policy;
use crate::api::StepStatus;
use crate::core::Timestamp;

/// One step of the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// "canary", a wave's label value, or "" for the single step without waves.
    pub key: String,
    /// As `status.wave` shows it: "canary", "2/3 topology.kubernetes.io/zone=b", "all".
    pub name: String,
    /// Every eligible node of the step.
    pub members: Vec<String>,
    /// The step's nodes the partition lets update.
    pub nodes: Vec<String>,
    pub bake_seconds: i64,
    /// A Manual canary.
    pub manual: bool,
    pub canary: bool,
}

/// The steps of `policy` over the canary and the waves, restricted to `target`.
pub fn steps(
    policy: &Policy,
    eligible: &[String],
    canary: &[String],
    waves: &[Wave],
    target: &BTreeSet<String>,
) -> Vec<Step> {
    let restrict = |nodes: &[String]| {
        nodes
            .iter()
            .filter(|n| target.contains(*n))
            .cloned()
            .collect()
    };
    let mut out = Vec::new();
    if let Some(c) = &policy.canary {
        out.push(Step {
            key: "canary".into(),
            name: "canary".into(),
            members: canary.to_vec(),
            nodes: restrict(canary),
            bake_seconds: c.bake_seconds,
            manual: c.manual,
            canary: true,
        });
    }
    match &policy.waves {
        Some(w) => {
            for (i, wave) in waves.iter().enumerate() {
                let value = if wave.value.is_empty() {
                    "<none>"
                } else {
                    &wave.value
                };
                out.push(Step {
                    key: wave.value.clone(),
                    name: format!("{}/{} {}={value}", i + 1, waves.len(), w.node_label),
                    members: wave.nodes.clone(),
                    nodes: restrict(&wave.nodes),
                    bake_seconds: w.bake_seconds,
                    manual: false,
                    canary: false,
                });
            }
        }
        None => {
            let rest: Vec<String> = eligible
                .iter()
                .filter(|n| !canary.contains(n))
                .cloned()
                .collect();
            out.push(Step {
                key: String::new(),
                name: "all".into(),
                nodes: restrict(&rest),
                members: rest,
                bake_seconds: 0,
                manual: false,
                canary: false,
            });
        }
    }
    out
}

/// Where the rollout stands among its steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepState {
    /// The first step not done; `steps.len()` when every step is done.
    pub current: usize,
    /// Target nodes of the steps up to the current one: the nodes that may be updated now.
    pub allowed: BTreeSet<String>,
    /// The current step's status (None when every step is done).
    pub status: Option<StepStatus>,
    /// The current step's nodes are all updated and available and its bake runs until then.
    pub bake_until: Option<Timestamp>,
    pub baking: bool,
    /// A Manual canary has baked and waits for `approvals.canaryRevision`.
    pub waiting_approval: bool,
    /// When each done step finished baking, by step index (sticky values are kept).
    pub baked_at: BTreeMap<usize, Timestamp>,
}

/// The current step of revision `hash`. `sticky` has the steps the previous status recorded as
/// baked, by [`Step::key`]; `previous` is the previous status's step (of the same revision).
pub fn current_step(
    steps: &[Step],
    facts: &BTreeMap<String, NodeFacts>,
    policy: &Policy,
    sticky: &BTreeMap<String, Timestamp>,
    previous: Option<&StepStatus>,
    hash: &str,
    now: Timestamp,
) -> StepState {
    let approvals = &policy.approvals;
    let mut state = StepState {
        current: steps.len(),
        ..StepState::default()
    };
    for (index, step) in steps.iter().enumerate() {
        state.allowed.extend(step.nodes.iter().cloned());
        let index_i32 = i32::try_from(index).unwrap_or(i32::MAX);
        let promoted = approvals
            .promote
            .as_ref()
            .is_some_and(|p| p.revision == hash && p.through_step >= index_i32);
        if let Some(t) = sticky.get(&step.key) {
            state.baked_at.insert(index, *t);
            continue;
        }
        if step.nodes.is_empty() {
            continue;
        }
        let mut status = StepStatus {
            index: index_i32,
            name: step.name.clone(),
            ..StepStatus::default()
        };
        let all_done = step
            .nodes
            .iter()
            .all(|n| facts.get(n).is_some_and(NodeFacts::done));
        if !all_done {
            state.current = index;
            state.status = Some(status);
            return state;
        }
        let restarts: i32 = step
            .nodes
            .iter()
            .filter_map(|n| facts.get(n))
            .map(|f| f.new_pod_restarts)
            .sum();
        let prev = previous.filter(|p| p.index == index_i32 && p.name == step.name);
        let started =
            match prev.and_then(|p| p.bake_started_at.as_ref().map(|t| (t.0, p.bake_restarts))) {
                Some((t, before)) if restarts <= before => t,
                _ => now,
            };
        status.bake_started_at = Some(Time(started));
        status.bake_restarts = restarts;
        let bake_end = started
            .checked_add(SignedDuration::from_secs(step.bake_seconds))
            .unwrap_or(started);
        if !promoted && bake_end > now {
            state.current = index;
            state.baking = true;
            state.bake_until = Some(bake_end);
            state.status = Some(status);
            return state;
        }
        let approved =
            !step.manual || promoted || approvals.canary_revision.as_deref() == Some(hash);
        if !approved {
            state.current = index;
            state.waiting_approval = true;
            state.status = Some(status);
            return state;
        }
        state.baked_at.insert(index, now);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Canary, DaemonSetRolloutSpec, Promotion, Waves};
    use crate::core::fixtures::ts;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn policy(manual: bool) -> Policy {
        let spec = DaemonSetRolloutSpec {
            canary: Some(Canary {
                nodes: IntOrString::Int(1),
                bake_seconds: Some(60),
                promotion: manual.then_some(Promotion::Manual),
                ..Canary::default()
            }),
            waves: Some(Waves {
                node_label: "zone".into(),
                order: vec![],
                bake_seconds: Some(10),
            }),
            ..DaemonSetRolloutSpec::default()
        };
        Policy::from_spec("agent", Some(1), &spec).unwrap_or_else(|e| panic!("{e}"))
    }

    fn fixture_with(
        manual: bool,
        done: &[&str],
        restarts: i32,
    ) -> (Vec<Step>, BTreeMap<String, NodeFacts>) {
        let names = ["c", "a1", "b1"];
        let facts = names
            .iter()
            .map(|n| {
                let d = done.contains(n);
                (
                    n.to_string(),
                    NodeFacts {
                        should_run: true,
                        in_scope: true,
                        updated: d,
                        available: d,
                        new_pod_restarts: restarts,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let waves = vec![
            Wave {
                value: "a".into(),
                nodes: vec!["a1".into()],
            },
            Wave {
                value: "b".into(),
                nodes: vec!["b1".into()],
            },
        ];
        let target = names.iter().map(|n| n.to_string()).collect();
        let eligible: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        (
            steps(&policy(manual), &eligible, &["c".into()], &waves, &target),
            facts,
        )
    }

    fn fixture(done: &[&str], restarts: i32) -> (Vec<Step>, BTreeMap<String, NodeFacts>) {
        fixture_with(false, done, restarts)
    }

    #[test]
    fn the_canary_bakes_before_the_first_wave_and_a_restart_restarts_the_bake() {
        let (steps, facts) = fixture(&[], 0);
        let s = current_step(
            &steps,
            &facts,
            &policy(false),
            &BTreeMap::new(),
            None,
            "h",
            ts(0),
        );
        assert_eq!((s.current, s.allowed.len()), (0, 1));
        let (steps, facts) = fixture(&["c"], 0);
        let s = current_step(
            &steps,
            &facts,
            &policy(false),
            &BTreeMap::new(),
            None,
            "h",
            ts(0),
        );
        assert!(s.baking && s.bake_until == Some(ts(60)));
        let s2 = current_step(
            &steps,
            &facts,
            &policy(false),
            &BTreeMap::new(),
            s.status.as_ref(),
            "h",
            ts(60),
        );
        assert_eq!((s2.current, s2.baked_at.get(&0)), (1, Some(&ts(60))));
        assert!(s2.allowed.contains("a1") && !s2.allowed.contains("b1"));
        let (steps, facts) = fixture(&["c"], 1);
        let s3 = current_step(
            &steps,
            &facts,
            &policy(false),
            &BTreeMap::new(),
            s.status.as_ref(),
            "h",
            ts(60),
        );
        assert!(s3.baking && s3.bake_until == Some(ts(120)), "{s3:?}");
    }

    #[test]
    fn a_manual_canary_waits_for_its_revision_to_be_approved() {
        let (steps, facts) = fixture_with(true, &["c"], 0);
        let mut p = policy(true);
        let baked = StepStatus {
            index: 0,
            name: "canary".into(),
            bake_started_at: Some(Time(ts(0))),
            bake_restarts: 0,
        };
        let s = current_step(
            &steps,
            &facts,
            &p,
            &BTreeMap::new(),
            Some(&baked),
            "h",
            ts(100),
        );
        assert!(s.waiting_approval && s.current == 0);
        p.approvals.canary_revision = Some("other".into());
        assert!(
            current_step(
                &steps,
                &facts,
                &p,
                &BTreeMap::new(),
                Some(&baked),
                "h",
                ts(100)
            )
            .waiting_approval
        );
        p.approvals.canary_revision = Some("h".into());
        assert_eq!(
            current_step(
                &steps,
                &facts,
                &p,
                &BTreeMap::new(),
                Some(&baked),
                "h",
                ts(100)
            )
            .current,
            1
        );
    }

    #[test]
    fn done_is_sticky() {
        let (steps, facts) = fixture(&[], 0);
        let sticky = [("canary".to_string(), ts(5)), ("a".to_string(), ts(6))]
            .into_iter()
            .collect();
        let s = current_step(&steps, &facts, &policy(false), &sticky, None, "h", ts(10));
        assert_eq!(s.current, 2);
        assert_eq!(s.allowed.len(), 3);
    }
}
