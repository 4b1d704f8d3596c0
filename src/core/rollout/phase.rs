//! The phase state machine (stand-in until core-b's version merges).

use crate::api::Phase;

/// What the phase is decided from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    pub frozen: bool,
    pub paused: bool,
    pub rollback_active: bool,
    pub failed: bool,
    pub known_bad: bool,
    pub waiting_approval: bool,
    pub baking: bool,
    pub complete: bool,
    pub policy_done: bool,
}

/// The first phase whose condition holds (design §2.4's table).
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
