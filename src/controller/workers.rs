//! The DaemonSet work queue and its workers (upstream's `queue` and `runWorker`): handlers add
//! DaemonSet keys, `--concurrent-daemonset-syncs` workers take them in the order of
//! `core::work_queue` and sync them, and each sync says when to look at its DaemonSet again.
//!
//! Hand-written in place of kube-runtime's `applier`, whose scheduler picks among the DaemonSets
//! that became due while the workers were busy in hash order rather than in the order they came
//! (see `core::work_queue` for what that cost at 5000 nodes).

use crate::core::work_queue::WorkQueue;
use crate::runtime::metrics::Metrics;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The queue of DaemonSet keys (`namespace/name`), shared by the handlers and the workers.
pub struct Queue {
    state: Mutex<WorkQueue<String, Instant>>,
    wake: Notify,
    metrics: Arc<Metrics>,
}

impl Queue {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(WorkQueue::new()),
            wake: Notify::new(),
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WorkQueue<String, Instant>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change` to the queue, records its depth and, if `wake` says so for that depth, wakes
    /// a waiting worker.
    fn change(
        &self,
        change: impl FnOnce(&mut WorkQueue<String, Instant>),
        wake: impl Fn(usize) -> bool,
    ) {
        let depth = {
            let mut state = self.state();
            change(&mut state);
            state.len()
        };
        self.metrics.set_queue_depth(depth);
        if wake(depth) {
            self.wake.notify_one();
        }
    }

    /// Queues a sync of `key` now.
    pub fn add(&self, key: String) {
        self.change(|q| q.add(key), |_| true);
    }

    /// Queues a sync of `key` after `delay` (at once for zero). Wakes a worker either way: one
    /// waiting for the next due time may now have an earlier one.
    pub fn add_after(&self, key: String, delay: Duration) {
        let now = Instant::now();
        self.change(|q| q.add_at(key, now + delay, now), |_| true);
    }

    /// Waits for the key that has waited longest and takes it; [`Queue::done`] must follow.
    async fn take(&self) -> String {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (key, due, depth) = {
                let mut state = self.state();
                state.promote(Instant::now());
                (state.take(), state.next_due(), state.len())
            };
            if let Some(key) = key {
                self.metrics.set_queue_depth(depth);
                // Another key may be ready for another idle worker.
                if depth > 0 {
                    self.wake.notify_one();
                }
                return key;
            }
            match due {
                Some(due) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The sync of `key` is over; a key added during it is queued again.
    fn done(&self, key: &String) {
        self.change(|q| q.done(key), |depth| depth > 0);
    }
}

/// Runs `workers` workers, each a task of its own (syncs of different DaemonSets use several cores,
/// as upstream's goroutines do), until the future is dropped, which stops them: each takes a key,
/// awaits `sync(key)` and, if it returns a delay, queues the key again after it. A panicking sync
/// is a bug: it is raised here, as it would be by a single task.
pub async fn run<S, F>(queue: Arc<Queue>, workers: usize, sync: S)
where
    S: Fn(String) -> F + Clone + Send + 'static,
    F: Future<Output = Option<Duration>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let sync = sync.clone();
        tasks.spawn(async move {
            loop {
                let key = queue.take().await;
                if let Some(delay) = sync(key.clone()).await {
                    queue.add_after(key.clone(), delay);
                }
                queue.done(&key);
            }
        });
    }
    while let Some(ended) = tasks.join_next().await {
        if let Err(e) = ended
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn queue() -> Arc<Queue> {
        Arc::new(Queue::new(Arc::new(Metrics::new())))
    }

    /// Two workers, five DaemonSets that every sync queues again (as node events do while nodes
    /// join): every DaemonSet is synced, in turn, never two syncs of one at once.
    #[tokio::test(start_paused = true)]
    async fn busy_workers_take_every_daemonset_in_turn() {
        let q = queue();
        let keys: Vec<String> = (0..5).map(|i| format!("ns/ds-{i}")).collect();
        for k in &keys {
            q.add(k.clone());
        }
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let running: Arc<Mutex<Vec<String>>> = Arc::default();
        let sync = {
            let (q, log, running, keys) = (q.clone(), log.clone(), running.clone(), keys.clone());
            move |key: String| {
                let (q, log, running, keys) =
                    (q.clone(), log.clone(), running.clone(), keys.clone());
                async move {
                    {
                        let mut r = running.lock().unwrap_or_else(PoisonError::into_inner);
                        assert!(!r.contains(&key), "{key} synced twice at once");
                        r.push(key.clone());
                    }
                    // Syncs of different lengths; events queue every DaemonSet meanwhile.
                    let ms = 10
                        + 7 * (key.len() as u64 % 3)
                        + (log.lock().map_or(0, |l| l.len()) as u64 % 5);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    for k in &keys {
                        q.add(k.clone());
                    }
                    running
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .retain(|k| k != &key);
                    log.lock().unwrap_or_else(PoisonError::into_inner).push(key);
                    None
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), run(q.clone(), 2, sync)).await;
        let log = log.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert!(log.len() > 300, "only {} syncs in 5 s", log.len());
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut longest = 0;
        for (i, k) in log.iter().enumerate() {
            if let Some(before) = last.insert(k, i) {
                longest = longest.max(i - before);
            }
        }
        assert_eq!(last.len(), 5, "every DaemonSet was synced: {last:?}");
        assert!(longest <= 7, "a DaemonSet waited for {longest} other syncs");
    }

    /// A sync's requeue delay brings the key back after it, not before; a later add for the same
    /// key does not postpone an earlier one.
    #[tokio::test(start_paused = true)]
    async fn a_requeue_comes_back_after_its_delay() {
        let q = queue();
        q.add("ns/a".into());
        let start = Instant::now();
        let seen: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
        let sync = {
            let seen = seen.clone();
            move |key: String| {
                let seen = seen.clone();
                async move {
                    let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    s.push((key, start.elapsed()));
                    (s.len() < 3).then_some(Duration::from_secs(2))
                }
            }
        };
        let q2 = q.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), async move {
            tokio::join!(run(q2.clone(), 2, sync), async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                q2.add_after("ns/a".into(), Duration::from_secs(30));
            });
        })
        .await;
        let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let at: Vec<u64> = seen.iter().map(|(_, d)| d.as_secs()).collect();
        assert_eq!(at, vec![0, 2, 4], "{seen:?}");
    }

    /// Every requeue a sync asks for comes, on a multi-threaded runtime with real time: no wakeup
    /// is lost between the workers' tasks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requeues_are_never_lost_across_threads() {
        let q = queue();
        let counts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        for i in 0..3 {
            q.add(format!("ns/ds-{i}"));
        }
        let sync = {
            let counts = counts.clone();
            move |key: String| {
                let counts = counts.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
                    let n = c.entry(key).or_insert(0);
                    *n += 1;
                    (*n < 20).then_some(Duration::from_millis(20))
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), run(q.clone(), 2, sync)).await;
        let c = counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert!(c.len() == 3 && c.values().all(|n| *n == 20), "{c:?}");
    }
}
