//! What the controller last said about each DaemonSet in its own warnings, so that they are said
//! once per change rather than once per sync: `SelectsFewNodes` once per generation
//! ([`crate::core::shrink`]), `PodsUnschedulable` when its summary changed and held
//! ([`crate::core::unschedulable`]). Kept by DaemonSet UID; the shell forgets a DaemonSet when it
//! is deleted. Whatever still repeats (a new leader remembers nothing) the event correlator counts
//! and filters as client-go does.

use crate::core::Timestamp;
use crate::core::events::PlannedEvent;
use crate::core::unschedulable;
use k8s_openapi::jiff::SignedDuration;
use std::collections::HashMap;
use std::time::Duration;

/// How long a new unschedulable summary must hold before it is said: pods are created in
/// slow-start batches and the scheduler marks them one by one, so a DaemonSet's first seconds go
/// through "1 pod", "3 pods", "7 pods"...; one event says where it settled.
pub const SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Record {
    /// The generation the last `SelectsFewNodes` was said for.
    few_nodes_generation: Option<i64>,
    /// The unschedulable summary as last said (`None`: nothing unschedulable).
    unschedulable: Option<String>,
    /// Another summary seen since, and since when.
    pending: Option<(Option<String>, Timestamp)>,
}

/// The memory, by DaemonSet UID.
#[derive(Debug, Default)]
pub struct Said {
    by_uid: HashMap<String, Record>,
}

/// What to say about unschedulable pods now, and when to look again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Saying {
    pub event: Option<PlannedEvent>,
    /// Sync again after this long: a new summary is waiting to have held for [`SETTLE`].
    pub requeue_after: Option<Duration>,
}

impl Said {
    /// `event`, the `SelectsFewNodes` warning of the sync of `generation`, unless it was already
    /// said for that generation (a sync that failed before writing observedGeneration is retried
    /// and decides the same again).
    pub fn once_per_generation(
        &mut self,
        uid: &str,
        generation: i64,
        event: Option<PlannedEvent>,
    ) -> Option<PlannedEvent> {
        let event = event?;
        let record = self.by_uid.entry(uid.to_string()).or_default();
        if record.few_nodes_generation == Some(generation) {
            return None;
        }
        record.few_nodes_generation = Some(generation);
        Some(event)
    }

    /// The unschedulable-pods summary of a sync at `now` (`None`: nothing unschedulable). A
    /// summary that differs from the one last said is said once it has been seen unchanged for
    /// [`SETTLE`]; until then the sync is asked to look again. Going back to what was last said
    /// says nothing, and neither does nothing being unschedulable any more.
    pub fn unschedulable(&mut self, uid: &str, summary: Option<String>, now: Timestamp) -> Saying {
        let record = match self.by_uid.get_mut(uid) {
            Some(r) => r,
            None if summary.is_none() => return Saying::default(),
            None => self.by_uid.entry(uid.to_string()).or_default(),
        };
        if summary == record.unschedulable {
            record.pending = None;
            return Saying::default();
        }
        let since = match &record.pending {
            Some((pending, since)) if *pending == summary => *since,
            _ => {
                record.pending = Some((summary.clone(), now));
                now
            }
        };
        let held = now.duration_since(since);
        let settle = SignedDuration::try_from(SETTLE).unwrap_or(SignedDuration::MAX);
        if held >= settle {
            record.pending = None;
            record.unschedulable = summary.clone();
            return Saying {
                event: summary.as_deref().map(unschedulable::event),
                requeue_after: None,
            };
        }
        // Only a summary to say needs a sync of its own; clearing one waits for the next sync.
        let left = Duration::try_from(settle - held).unwrap_or(SETTLE);
        Saying {
            event: None,
            requeue_after: summary.is_some().then_some(left),
        }
    }

    /// Forgets a deleted DaemonSet.
    pub fn forget(&mut self, uid: &str) {
        self.by_uid.remove(uid);
    }

    /// Keeps only the DaemonSets `live` names (for deletes no watch delivered).
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.by_uid.retain(|uid, _| live(uid));
    }

    /// How many DaemonSets are remembered.
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::events::{PODS_UNSCHEDULABLE, SELECTS_FEW_NODES};
    use crate::core::fixtures::ts;

    fn few() -> Option<PlannedEvent> {
        Some(PlannedEvent::warning(
            SELECTS_FEW_NODES,
            "x matches 0 of 3 nodes",
        ))
    }

    fn s(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    fn said(saying: &Saying) -> Option<&str> {
        saying.event.as_ref().map(|e| {
            assert_eq!(e.reason, PODS_UNSCHEDULABLE);
            e.message.as_str()
        })
    }

    #[test]
    fn selects_few_nodes_is_said_once_per_generation() {
        let mut m = Said::default();
        assert_eq!(m.once_per_generation("u", 2, few()), few());
        assert_eq!(m.once_per_generation("u", 2, few()), None, "a retried sync");
        assert_eq!(m.once_per_generation("u", 3, None), None);
        assert_eq!(
            m.once_per_generation("u", 4, few()),
            few(),
            "the next change"
        );
        assert_eq!(m.once_per_generation("other", 2, few()), few());
        m.forget("u");
        assert_eq!(m.once_per_generation("u", 4, few()), few(), "forgotten");
    }

    #[test]
    fn a_new_summary_is_said_once_it_held_for_the_settle_time() {
        let mut m = Said::default();
        let first = m.unschedulable("u", s("1 pod"), ts(100));
        assert_eq!(said(&first), None);
        assert_eq!(first.requeue_after, Some(SETTLE));
        // It grows while the pods are created: the clock starts again.
        let grown = m.unschedulable("u", s("3 pods"), ts(102));
        assert_eq!((said(&grown), grown.requeue_after), (None, Some(SETTLE)));
        let early = m.unschedulable("u", s("3 pods"), ts(105));
        assert_eq!(
            (said(&early), early.requeue_after),
            (None, Some(Duration::from_secs(2)))
        );
        let settled = m.unschedulable("u", s("3 pods"), ts(107));
        assert_eq!(said(&settled), Some("3 pods"));
        assert_eq!(settled.requeue_after, None);
        // Every later sync with the same summary says nothing and asks for nothing.
        for t in 108..120 {
            assert_eq!(m.unschedulable("u", s("3 pods"), ts(t)), Saying::default());
        }
    }

    #[test]
    fn a_brief_change_that_comes_back_says_nothing() {
        let mut m = Said::default();
        m.unschedulable("u", s("3 pods"), ts(0));
        assert_eq!(
            said(&m.unschedulable("u", s("3 pods"), ts(5))),
            Some("3 pods")
        );
        // A pod replaced: two pods for a moment, or none, then three again.
        assert_eq!(said(&m.unschedulable("u", s("2 pods"), ts(6))), None);
        assert_eq!(m.unschedulable("u", None, ts(7)), Saying::default());
        assert_eq!(m.unschedulable("u", s("3 pods"), ts(8)), Saying::default());
        assert_eq!(m.unschedulable("u", s("3 pods"), ts(60)), Saying::default());
    }

    #[test]
    fn once_nothing_is_unschedulable_for_a_while_the_same_summary_is_said_again() {
        let mut m = Said::default();
        m.unschedulable("u", s("3 pods"), ts(0));
        assert_eq!(
            said(&m.unschedulable("u", s("3 pods"), ts(5))),
            Some("3 pods")
        );
        // Fixed: no event, and no sync of its own to clear the memory.
        assert_eq!(m.unschedulable("u", None, ts(10)), Saying::default());
        assert_eq!(m.unschedulable("u", None, ts(20)), Saying::default());
        // Broken again later: said again once it held.
        assert_eq!(said(&m.unschedulable("u", s("3 pods"), ts(30))), None);
        assert_eq!(
            said(&m.unschedulable("u", s("3 pods"), ts(35))),
            Some("3 pods")
        );
    }

    #[test]
    fn daemonsets_with_nothing_to_say_are_not_remembered_and_deleted_ones_are_forgotten() {
        let mut m = Said::default();
        assert_eq!(m.unschedulable("quiet", None, ts(0)), Saying::default());
        assert!(m.is_empty());
        m.unschedulable("a", s("1 pod"), ts(0));
        m.unschedulable("b", s("1 pod"), ts(0));
        m.forget("a");
        assert_eq!(m.len(), 1);
        m.retain(|uid| uid != "b");
        assert!(m.is_empty());
    }
}
