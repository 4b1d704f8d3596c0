//! Tests of `core::rollout::conditions`.

use super::*;
use crate::api::{CanaryStatus, StepStatus, WaveStatus};
use crate::core::events::EventType;
use crate::core::fixtures::{time, ts};
use proptest::prelude::*;

fn input(phase: Phase) -> ConditionInput<'static> {
    ConditionInput {
        phase,
        reason_detail: "",
        deadline_exceeded: false,
        failing: &[],
        rollback: None,
        rollback_impossible: None,
        known_bad: false,
        complete_revision_is_update: false,
        held: None,
        policy_done_reason: None,
        invalid: None,
        generation: Some(3),
    }
}

fn summary(cs: &[Condition]) -> Vec<(String, String, String)> {
    cs.iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

fn progressing_of(i: &ConditionInput) -> (String, String) {
    let cs = conditions(i);
    (cs[0].status.clone(), cs[0].reason.clone())
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

fn failing(node: &str, reason: &str, restarts: i32) -> FailingPod {
    FailingPod {
        node: node.into(),
        pod: format!("agent-{node}"),
        reason: reason.into(),
        restarts,
    }
}

#[test]
fn progressing_follows_the_design_table() {
    let cases = [
        (Phase::Progressing, "True", "NodesUpdating"),
        (Phase::Baking, "True", "Baking"),
        (Phase::Complete, "True", "RolloutComplete"),
        (Phase::Paused, "Unknown", "RolloutPaused"),
        (Phase::Frozen, "Unknown", "RolloutFrozen"),
        (Phase::WaitingForApproval, "Unknown", "WaitingForApproval"),
        (Phase::Failed, "False", "RolloutFailed"),
        (Phase::RolledBack, "False", "RolledBack"),
    ];
    for (phase, status, why) in cases {
        assert_eq!(progressing_of(&input(phase)), pair(status, why), "{phase}");
    }
    let done = ConditionInput {
        policy_done_reason: Some(reason::PARTITION_REACHED),
        ..input(Phase::Paused)
    };
    assert_eq!(progressing_of(&done), pair("Unknown", "PartitionReached"));
    let impossible = ConditionInput {
        rollback_impossible: Some("no revision completed yet"),
        ..input(Phase::Failed)
    };
    assert_eq!(
        progressing_of(&impossible),
        pair("False", "RollbackImpossible")
    );
    assert!(
        conditions(&impossible)[0]
            .message
            .ends_with("no revision completed yet")
    );
    let known_bad = ConditionInput {
        known_bad: true,
        ..input(Phase::Failed)
    };
    assert_eq!(
        progressing_of(&known_bad),
        pair("False", "KnownBadRevision")
    );
}

#[test]
fn the_deadline_wins_progressing_and_invalid_wins_everything() {
    for phase in Phase::ALL {
        let late = ConditionInput {
            deadline_exceeded: true,
            reason_detail: "3/12 updated",
            ..input(phase)
        };
        assert_eq!(
            progressing_of(&late),
            pair("False", "ProgressDeadlineExceeded"),
            "{phase}"
        );
        assert_eq!(
            conditions(&late)[0].message,
            "no progress within progressDeadlineSeconds: 3/12 updated"
        );
        let invalid = ConditionInput {
            invalid: Some("spec.partition: \"x\""),
            ..late
        };
        assert_eq!(
            progressing_of(&invalid),
            pair("False", "RolloutPolicyInvalid"),
            "{phase}"
        );
    }
}

#[test]
fn optional_types_are_present_only_while_true() {
    let rollback = RollbackStatus {
        from: "bad".into(),
        to: "good".into(),
        reason: "new pods failing".into(),
        started_at: Some(time(0)),
        completed_at: None,
    };
    let held = HeldDeletions {
        pods: 9,
        of: 12,
        daemon_set_generation: 4,
    };
    let pods = [failing("a", "CrashLoopBackOff", 5)];
    let all = ConditionInput {
        failing: &pods,
        rollback: Some(&rollback),
        held: Some(&held),
        complete_revision_is_update: true,
        ..input(Phase::RolledBack)
    };
    let s = |t: &str, st: &str, r: &str| (t.to_string(), st.to_string(), r.to_string());
    assert_eq!(
        summary(&conditions(&all)),
        vec![
            s("Progressing", "False", "RolledBack"),
            s("Complete", "True", "RolloutComplete"),
            s("Failed", "True", "NewPodsFailing"),
            s("RolledBack", "True", "FailurePolicy"),
            s("DeletionsHeld", "True", "MassDeletionGuard"),
        ]
    );
    let cs = conditions(&all);
    assert_eq!(
        cs[3].message,
        "from bad to good at 1970-01-01T00:00:00Z: new pods failing"
    );
    assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
    let aborted = RollbackStatus {
        reason: ABORT_REASON.into(),
        ..rollback.clone()
    };
    assert_eq!(
        conditions(&ConditionInput {
            rollback: Some(&aborted),
            ..all
        })[3]
            .reason,
        "Aborted"
    );
    assert_eq!(
        summary(&conditions(&input(Phase::Progressing))),
        vec![
            s("Progressing", "True", "NodesUpdating"),
            s("Complete", "False", "NotComplete")
        ]
    );
}

#[test]
fn the_failed_message_names_the_first_five_nodes() {
    let pods: Vec<FailingPod> = (0..7)
        .map(|i| failing(&format!("n{i}"), "CrashLoopBackOff", i))
        .collect();
    let cs = conditions(&ConditionInput {
        failing: &pods,
        ..input(Phase::Failed)
    });
    assert_eq!(
        cs[2].message,
        "7 new pods failing: n0 CrashLoopBackOff, n1 CrashLoopBackOff (1 restart), \
         n2 CrashLoopBackOff (2 restarts), n3 CrashLoopBackOff (3 restarts), \
         n4 CrashLoopBackOff (4 restarts), and 2 more"
    );
    assert_eq!(cs[0].message, cs[2].message);
}

#[test]
fn merge_keeps_the_time_of_an_unchanged_status() {
    let first = merge(&[], conditions(&input(Phase::Progressing)), ts(100));
    assert!(first.iter().all(|c| c.last_transition_time == time(100)));
    // Same status, other reason (Progressing True: NodesUpdating -> Baking): time kept.
    let second = merge(&first, conditions(&input(Phase::Baking)), ts(200));
    assert_eq!(second[0].last_transition_time, time(100));
    assert_eq!(second[0].reason, "Baking");
    // Status changed: now, in whole seconds.
    let now = Timestamp::new(300, 500_000_000).unwrap_or_else(|e| panic!("{e}"));
    let third = merge(&second, conditions(&input(Phase::Paused)), now);
    assert_eq!(third[0].last_transition_time, time(300));
    assert_eq!(third[1].last_transition_time, time(100));
}

fn phase_strategy() -> impl Strategy<Value = Phase> {
    (0usize..8).prop_map(|i| Phase::ALL[i])
}

fn arbitrary_conditions() -> impl Strategy<Value = Vec<Condition>> {
    (
        phase_strategy(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(phase, late, complete, fails, held)| {
            let pods = [failing("a", "Failed", 0)];
            let h = HeldDeletions {
                pods: 3,
                of: 4,
                daemon_set_generation: 1,
            };
            conditions(&ConditionInput {
                deadline_exceeded: late,
                complete_revision_is_update: complete,
                failing: if fails { &pods } else { &[] },
                held: held.then_some(&h),
                ..input(phase)
            })
        })
}

proptest! {
    /// Merging twice is merging once, whatever came before and whenever the second merge runs.
    #[test]
    fn merge_is_idempotent(
        before in arbitrary_conditions(),
        new in arbitrary_conditions(),
        t1 in 0i64..1000,
        t2 in 0i64..1000,
    ) {
        let before = merge(&[], before, ts(t1));
        let once = merge(&before, new.clone(), ts(t1 + 1));
        let twice = merge(&once, new, ts(t1 + 1 + t2));
        prop_assert_eq!(&once, &twice);
        // ... and its mirror needs no patch.
        prop_assert_eq!(mirror_patch(&mirror(&once), &mirror(&twice)), None);
    }
}

fn ds_condition(type_: &str, status: &str, reason: &str, at: i64) -> DaemonSetCondition {
    DaemonSetCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some("m".into()),
        last_transition_time: Some(time(at)),
    }
}

#[test]
fn mirror_copies_every_field() {
    let cs = merge(&[], conditions(&input(Phase::Baking)), ts(7));
    let m = mirror(&cs);
    assert_eq!(m.len(), cs.len());
    for (c, d) in cs.iter().zip(&m) {
        assert_eq!(
            (
                &d.type_,
                &d.status,
                d.reason.as_ref(),
                d.message.as_ref(),
                d.last_transition_time.as_ref()
            ),
            (
                &c.type_,
                &c.status,
                Some(&c.reason),
                Some(&c.message),
                Some(&c.last_transition_time)
            )
        );
    }
}

#[test]
fn mirror_patch_sets_what_differs_and_deletes_only_our_gone_types() {
    let other = ds_condition("SomeoneElses", "True", "X", 1);
    let current = vec![
        ds_condition("Progressing", "True", "NodesUpdating", 1),
        ds_condition("Complete", "False", "NotComplete", 1),
        ds_condition("DeletionsHeld", "True", "MassDeletionGuard", 1),
        other.clone(),
    ];
    let ours = vec![
        ds_condition("Progressing", "True", "Baking", 1),
        ds_condition("Complete", "False", "NotComplete", 1),
    ];
    let patch = mirror_patch(&current, &ours).unwrap_or_else(|| panic!("a patch"));
    assert_eq!(
        patch,
        json!({"status": {"conditions": [
            {"type": "Progressing", "status": "True", "reason": "Baking", "message": "m",
             "lastTransitionTime": "1970-01-01T00:00:01Z"},
            {"type": "DeletionsHeld", "$patch": "delete"},
        ]}})
    );
    // Equal: nothing to send; with none of ours anywhere: nothing either.
    let equal = vec![ours[0].clone(), ours[1].clone(), other.clone()];
    assert_eq!(mirror_patch(&equal, &ours), None);
    assert_eq!(mirror_patch(std::slice::from_ref(&other), &[]), None);
    // A sub-second difference is no difference (the API server stores whole seconds).
    let mut fine = ours[0].clone();
    fine.last_transition_time = Some(Time(
        Timestamp::new(1, 400_000_000).unwrap_or_else(|e| panic!("{e}")),
    ));
    assert_eq!(mirror_patch(&[ours[0].clone()], &[fine]), None);
}

fn status(phase: Phase) -> DaemonSetRolloutStatus {
    DaemonSetRolloutStatus {
        phase: Some(phase),
        update_revision: Some("new".into()),
        available_nodes: 4,
        ..Default::default()
    }
}

fn reasons(events: &[PlannedEvent]) -> Vec<(&'static str, EventType)> {
    events.iter().map(|e| (e.reason, e.type_)).collect()
}

#[test]
fn each_transition_has_its_event() {
    use EventType::{Normal, Warning};
    let step = |index, name: &str| StepStatus {
        index,
        name: name.into(),
        ..Default::default()
    };
    let prev = DaemonSetRolloutStatus {
        step: Some(step(0, "canary")),
        ..status(Phase::Progressing)
    };
    let mut next = DaemonSetRolloutStatus {
        step: Some(step(1, "zone=a")),
        waves: vec![WaveStatus {
            value: "a".into(),
            baked_at: Some(time(5)),
            ..Default::default()
        }],
        canary: Some(CanaryStatus {
            revision: "new".into(),
            nodes: vec!["n1".into()],
            promoted_at: Some(time(5)),
            ..Default::default()
        }),
        ..status(Phase::WaitingForApproval)
    };
    assert_eq!(
        reasons(&transition_events(&prev, &next)),
        vec![
            ("RolloutStepStarted", Normal),
            ("RolloutBaked", Normal),
            ("CanaryPromoted", Normal),
            ("RolloutWaitingForApproval", Normal),
        ]
    );
    assert!(transition_events(&next, &next).is_empty());

    next.phase = Some(Phase::Complete);
    assert_eq!(
        reasons(&transition_events(&prev, &next))[3],
        ("RolloutComplete", Normal)
    );

    let failed = DaemonSetRolloutStatus {
        rollback: Some(RollbackStatus {
            from: "new".into(),
            to: "old".into(),
            reason: "x".into(),
            ..Default::default()
        }),
        held_deletions: Some(HeldDeletions {
            pods: 9,
            of: 12,
            daemon_set_generation: 2,
        }),
        conditions: merge(
            &[],
            conditions(&ConditionInput {
                deadline_exceeded: true,
                ..input(Phase::Failed)
            }),
            ts(1),
        ),
        ..status(Phase::Failed)
    };
    assert_eq!(
        reasons(&transition_events(&status(Phase::Progressing), &failed)),
        vec![
            ("RolloutFailed", Warning),
            ("RolledBack", Warning),
            ("ProgressDeadlineExceeded", Warning),
            ("MassDeletionHeld", Warning),
        ]
    );
    // A new DaemonSet generation held again: one more event.
    let mut held_again = failed.clone();
    held_again.held_deletions = Some(HeldDeletions {
        pods: 9,
        of: 12,
        daemon_set_generation: 3,
    });
    assert_eq!(
        reasons(&transition_events(&failed, &held_again)),
        vec![("MassDeletionHeld", Warning)]
    );
}

#[test]
fn a_new_revision_starts_its_steps_again() {
    let step = Some(StepStatus {
        index: 0,
        name: "canary".into(),
        ..Default::default()
    });
    let prev = DaemonSetRolloutStatus {
        step: step.clone(),
        update_revision: Some("old".into()),
        ..status(Phase::Progressing)
    };
    let next = DaemonSetRolloutStatus {
        step,
        ..status(Phase::Progressing)
    };
    assert_eq!(
        reasons(&transition_events(&prev, &next)),
        vec![("RolloutStepStarted", EventType::Normal)]
    );
}
