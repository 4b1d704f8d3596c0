//! The order in which queued DaemonSets are synced: client-go's `workqueue` (a FIFO with a dirty set,
//! a processing set and a delaying queue), as upstream's DaemonSet controller uses it.
//!
//! Hand-written because upstream's semantics need it and kube-runtime's scheduler does not give
//! them: it keeps the DaemonSets that became due while every worker was busy in an unordered set and
//! takes the first its hash order yields, so with more DaemonSets than workers and events queuing all
//! of them all the time (nodes joining), the same DaemonSets were taken again and again and others
//! waited for seconds (`make bench`, 5000 nodes × 5 DaemonSets: gaps of 4.5 to 5.9 s for two of the
//! five, the join p99 2.5× upstream's). Here a key waits behind at most the keys queued before it.
//!
//! - A key is queued at most once (`dirty`); adding it again while it waits changes nothing.
//! - A key being synced (`processing`) is not handed to a second worker: added meanwhile, it is
//!   queued again, at the back, when its sync is done.
//! - A key added for later waits until its time (the earliest, if added for later several times),
//!   then is added as above. Taking a key drops its waiting time: the later add is the requeue a
//!   sync asked for, and the sync about to run asks again (kube-runtime's scheduler merged them the
//!   same way). [difference] client-go keeps it, so each requeue ran a sync of its own even after an
//!   event had synced the DaemonSet: 5424 syncs in one turn at 5000 nodes × 5 DaemonSets.
//!
//! Time comes in as an argument (`T`, any ordered instant), so the order is tested without a clock.

use super::HashState;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// The queue of keys (DaemonSet `namespace/name`) waiting for a worker.
#[derive(Debug)]
pub struct WorkQueue<K, T> {
    /// Keys in the order they are to be taken, each at most once.
    queue: VecDeque<K>,
    /// Keys queued, or added while being processed (queued again when done).
    dirty: HashSet<K, HashState>,
    /// Keys a worker has taken and not yet marked done.
    processing: HashSet<K, HashState>,
    /// Keys added for later, by due time (the counter keeps equal times in the order they came).
    waiting: BTreeSet<(T, u64, K)>,
    /// The due time of each waiting key and its counter.
    waiting_at: HashMap<K, (T, u64), HashState>,
    counter: u64,
}

impl<K: Clone + Eq + Hash + Ord, T: Copy + Ord> Default for WorkQueue<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash + Ord, T: Copy + Ord> WorkQueue<K, T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            dirty: HashSet::default(),
            processing: HashSet::default(),
            waiting: BTreeSet::new(),
            waiting_at: HashMap::default(),
            counter: 0,
        }
    }

    /// Queues `key` now (client-go `Add`): at the back, unless it is queued already, or after its
    /// running sync if one is.
    pub fn add(&mut self, key: K) {
        if !self.dirty.insert(key.clone()) {
            return;
        }
        if !self.processing.contains(&key) {
            self.queue.push_back(key);
        }
    }

    /// Queues `key` at `due` (client-go `AddAfter`); at once if `due` is not after `now`. A key
    /// already waiting keeps the earlier of the two times.
    pub fn add_at(&mut self, key: K, due: T, now: T) {
        if due <= now {
            self.add(key);
            return;
        }
        if let Some(&(at, n)) = self.waiting_at.get(&key) {
            if at <= due {
                return;
            }
            self.waiting.remove(&(at, n, key.clone()));
        }
        self.counter += 1;
        self.waiting.insert((due, self.counter, key.clone()));
        self.waiting_at.insert(key, (due, self.counter));
    }

    /// Adds every waiting key that is due at `now`, earliest first.
    pub fn promote(&mut self, now: T) {
        while let Some((due, _, _)) = self.waiting.first() {
            if *due > now {
                break;
            }
            if let Some((_, _, key)) = self.waiting.pop_first() {
                self.waiting_at.remove(&key);
                self.add(key);
            }
        }
    }

    /// When the next waiting key is due, if any waits.
    pub fn next_due(&self) -> Option<T> {
        self.waiting.first().map(|(due, _, _)| *due)
    }

    /// Takes the key that has waited longest (client-go `Get`); the caller syncs it and then calls
    /// [`WorkQueue::done`].
    pub fn take(&mut self) -> Option<K> {
        let key = self.queue.pop_front()?;
        self.dirty.remove(&key);
        if let Some((at, n)) = self.waiting_at.remove(&key) {
            self.waiting.remove(&(at, n, key.clone()));
        }
        self.processing.insert(key.clone());
        Some(key)
    }

    /// The sync of `key` is over (client-go `Done`): if it was added meanwhile, it is queued at the
    /// back.
    pub fn done(&mut self, key: &K) {
        self.processing.remove(key);
        if self.dirty.contains(key) {
            self.queue.push_back(key.clone());
        }
    }

    /// Keys queued and not yet taken (client-go's `depth`).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// No key is queued (keys may still be waiting for later or being processed).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Keys waiting for a later time.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Q = WorkQueue<&'static str, u64>;

    fn drain(q: &mut Q) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some(k) = q.take() {
            q.done(&k);
            out.push(k);
        }
        out
    }

    #[test]
    fn keys_come_out_in_the_order_they_were_first_added_once_each() {
        let mut q = Q::new();
        for k in ["b", "a", "c", "a", "b"] {
            q.add(k);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(drain(&mut q), vec!["b", "a", "c"]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_key_added_during_its_sync_is_not_handed_out_twice_and_goes_to_the_back_when_done() {
        let mut q = Q::new();
        q.add("a");
        q.add("b");
        assert_eq!(q.take(), Some("a"));
        q.add("a");
        // Still being synced: the next worker gets b, not a second a.
        assert_eq!(q.take(), Some("b"));
        assert_eq!(q.take(), None);
        q.add("c");
        q.done(&"a");
        assert_eq!(q.take(), Some("c"));
        assert_eq!(q.take(), Some("a"));
        // Not added during its second sync: done drops it.
        q.done(&"a");
        q.done(&"b");
        q.done(&"c");
        assert_eq!(q.take(), None);
    }

    /// The case kube-runtime's scheduler handled badly: more DaemonSets than workers, every one of
    /// them queued again after every sync (node events). Between two syncs of a key come at most
    /// the syncs of the other keys and of the workers that outlast it, whichever finish first.
    #[test]
    fn with_every_key_queued_all_the_time_none_waits_more_than_one_round() {
        let keys = ["ds-0", "ds-1", "ds-2", "ds-3", "ds-4"];
        let mut q = Q::new();
        for k in keys {
            q.add(k);
        }
        let workers = 2;
        let mut running: VecDeque<&str> = (0..workers).filter_map(|_| q.take()).collect();
        let mut last_taken: HashMap<&str, usize> = HashMap::new();
        let mut longest_wait = 0;
        for step in 0..1000 {
            // The oldest sync finishes (or, every third step, the newest), while events queue
            // every key again.
            let finished = if step % 3 == 0 {
                running.pop_back()
            } else {
                running.pop_front()
            };
            for k in keys {
                q.add(k);
            }
            if let Some(k) = finished {
                q.done(&k);
            }
            let Some(next) = q.take() else {
                panic!("a key is always queued")
            };
            if let Some(before) = last_taken.insert(next, step) {
                longest_wait = longest_wait.max(step - before);
            }
            running.push_back(next);
        }
        assert_eq!(last_taken.len(), keys.len(), "every key was synced");
        assert!(
            longest_wait <= keys.len() + workers,
            "a key waited {longest_wait} syncs of others"
        );
    }

    #[test]
    fn a_key_added_for_later_waits_until_its_earliest_time() {
        let mut q = Q::new();
        q.add_at("a", 10, 0);
        q.add_at("a", 30, 0);
        q.add_at("b", 5, 0);
        assert_eq!(q.waiting(), 2);
        assert_eq!(q.next_due(), Some(5));
        q.promote(4);
        assert_eq!(q.take(), None);
        q.promote(10);
        assert_eq!(drain(&mut q), vec!["b", "a"]);
        assert_eq!(q.waiting(), 0);
        assert_eq!(q.next_due(), None);
        // An earlier time replaces a later one.
        q.add_at("c", 50, 20);
        q.add_at("c", 25, 20);
        q.promote(25);
        assert_eq!(drain(&mut q), vec!["c"]);
        q.promote(50);
        assert_eq!(
            q.take(),
            None,
            "the replaced later time does not add it again"
        );
    }

    #[test]
    fn a_time_not_after_now_queues_at_once_and_taking_a_key_drops_its_later_time() {
        let mut q = Q::new();
        q.add_at("a", 7, 7);
        assert_eq!(q.len(), 1);
        q.add_at("b", 20, 7);
        q.add("b");
        assert_eq!(
            q.waiting(),
            1,
            "queued now, still waiting for 20 until taken"
        );
        assert_eq!(drain(&mut q), vec!["a", "b"]);
        assert_eq!(q.waiting(), 0);
        q.promote(20);
        assert_eq!(q.take(), None, "the sync that ran asks for its own requeue");
        // A requeue asked for during the sync (before done) stays.
        q.add("c");
        assert_eq!(q.take(), Some("c"));
        q.add_at("c", 30, 20);
        q.done(&"c");
        q.promote(30);
        assert_eq!(drain(&mut q), vec!["c"]);
    }

    #[test]
    fn a_waiting_key_that_is_queued_already_when_due_is_queued_once() {
        let mut q = Q::new();
        q.add_at("a", 5, 0);
        q.add("a");
        q.promote(5);
        assert_eq!(q.len(), 1);
        assert_eq!(drain(&mut q), vec!["a"]);
    }
}
