//! The rollout's phase state machine (design §2.4): a total, pure function of a few signals,
//! checked in the order of [`TRANSITIONS`], first match wins.

use crate::api::Phase;

/// What the phase is decided from; each flag is computed by `plan` for this sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// `spec.frozen`.
    pub frozen: bool,
    /// `spec.paused`.
    pub paused: bool,
    /// The update revision is the target of the last rollback (`hash == rollback.to`).
    pub rollback_active: bool,
    /// Pods of the update revision fail and the failure policy pauses, or a rollback is impossible.
    pub failed: bool,
    /// The update revision failed before and is not retried (`failedRevisions`).
    pub known_bad: bool,
    /// A Manual canary has baked and is not approved for this revision.
    pub waiting_approval: bool,
    /// The current step's nodes are updated and available and its bake runs.
    pub baking: bool,
    /// Every eligible node is updated and available, with no partition or scope hold.
    pub complete: bool,
    /// Every node the policy lets update is done, but partition-held or out-of-scope outdated
    /// nodes remain.
    pub policy_done: bool,
}

/// The phase table, in the order [`next_phase`] checks it: (phase, when, left when).
pub const TRANSITIONS: [(Phase, &str, &str); 9] = [
    (Phase::Frozen, "spec.frozen", "unfreeze"),
    (Phase::Paused, "spec.paused", "resume"),
    (
        Phase::RolledBack,
        "the update revision is the last rollback's target",
        "a new revision",
    ),
    (
        Phase::Failed,
        "new pods fail (action Pause, or no rollback target), or the revision is known bad",
        "a new revision, approvals.retryRevision, or abort (RolledBack)",
    ),
    (
        Phase::WaitingForApproval,
        "a Manual canary baked and is not approved",
        "approve, promote",
    ),
    (
        Phase::Baking,
        "the current step is updated and available and its bake runs",
        "bake done (next step), a restart (the bake restarts), unavailability (Progressing)",
    ),
    (
        Phase::Complete,
        "every eligible node is updated and available, no partition or scope hold",
        "a new revision",
    ),
    (
        Phase::Paused,
        "the policy's target is done; partition-held or out-of-scope nodes remain",
        "partition lowered, scope widened",
    ),
    (Phase::Progressing, "otherwise", "-"),
];

/// The phase for `s`: the first row of [`TRANSITIONS`] that holds.
pub fn next_phase(s: &Signals) -> Phase {
    if s.frozen {
        Phase::Frozen
    } else if s.paused {
        Phase::Paused
    } else if s.rollback_active {
        Phase::RolledBack
    } else if s.failed || s.known_bad {
        Phase::Failed
    } else if s.waiting_approval {
        Phase::WaitingForApproval
    } else if s.baking {
        Phase::Baking
    } else if s.complete {
        Phase::Complete
    } else if s.policy_done {
        Phase::Paused
    } else {
        Phase::Progressing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 512 combinations of signals.
    fn all_signals() -> impl Iterator<Item = Signals> {
        (0u16..512).map(|bits| {
            let b = |i: u16| bits & (1 << i) != 0;
            Signals {
                frozen: b(0),
                paused: b(1),
                rollback_active: b(2),
                failed: b(3),
                known_bad: b(4),
                waiting_approval: b(5),
                baking: b(6),
                complete: b(7),
                policy_done: b(8),
            }
        })
    }

    /// The flags of row `i` of [`TRANSITIONS`], as a predicate.
    fn row_holds(i: usize, s: &Signals) -> bool {
        match i {
            0 => s.frozen,
            1 => s.paused,
            2 => s.rollback_active,
            3 => s.failed || s.known_bad,
            4 => s.waiting_approval,
            5 => s.baking,
            6 => s.complete,
            7 => s.policy_done,
            _ => true,
        }
    }

    #[test]
    fn next_phase_is_the_first_row_that_holds_for_every_combination() {
        for s in all_signals() {
            let row = (0..TRANSITIONS.len())
                .find(|&i| row_holds(i, &s))
                .unwrap_or(8);
            assert_eq!(next_phase(&s), TRANSITIONS[row].0, "{s:?}");
        }
    }

    #[test]
    fn frozen_iff_spec_frozen() {
        for s in all_signals() {
            assert_eq!(next_phase(&s) == Phase::Frozen, s.frozen, "{s:?}");
        }
    }

    #[test]
    fn complete_only_when_complete_and_nothing_outranks_it() {
        for s in all_signals() {
            if next_phase(&s) == Phase::Complete {
                assert!(
                    s.complete && !s.failed && !s.known_bad && !s.paused && !s.baking,
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn failed_stays_while_its_signal_does() {
        // Failed is sticky as long as plan keeps the signal (until a new revision or a retry):
        // only the three holds above it outrank it, never progress.
        for s in all_signals().filter(|s| s.failed || s.known_bad) {
            let expected = if s.frozen {
                Phase::Frozen
            } else if s.paused {
                Phase::Paused
            } else if s.rollback_active {
                Phase::RolledBack
            } else {
                Phase::Failed
            };
            assert_eq!(next_phase(&s), expected, "{s:?}");
        }
    }

    #[test]
    fn nothing_set_is_progressing() {
        assert_eq!(next_phase(&Signals::default()), Phase::Progressing);
    }
}
