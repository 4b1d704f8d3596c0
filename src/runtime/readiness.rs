//! Readiness of this instance, as `/readyz` reports it: a follower waiting for the lease is ready; the
//! acting controller is ready once its caches have synced and every DaemonSet that existed then has
//! been synced once (successfully or not: a DaemonSet that keeps failing must not keep the instance
//! unready forever).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Connecting to the API server, before leader election or the controller started.
    Starting,
    /// Waiting for the leader lease; the caches are not started.
    Following,
    /// Acting as the controller, caches not yet synced.
    CachesSyncing,
    /// Caches synced; these DaemonSets (`namespace/name`) still await their first sync.
    FirstSyncs(HashSet<String>),
    Ready,
}

/// The readiness state, shared by the controller, leader election and the HTTP server.
#[derive(Debug)]
pub struct Readiness {
    state: Mutex<State>,
    /// Watches whose last attempt failed (kind → error), until they deliver events again.
    failing_watches: Mutex<BTreeMap<&'static str, String>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::Starting),
            failing_watches: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Readiness {
    fn set(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
        if matches!(&*s, State::FirstSyncs(pending) if pending.is_empty()) {
            *s = State::Ready;
        }
    }

    /// Waiting for the leader lease.
    pub fn following(&self) {
        self.set(|s| *s = State::Following);
    }

    /// The controller starts its caches.
    pub fn leading(&self) {
        self.set(|s| *s = State::CachesSyncing);
    }

    /// The caches have synced; `daemonsets` (keys `namespace/name`) are the DaemonSets to sync once.
    pub fn caches_synced(&self, daemonsets: impl IntoIterator<Item = String>) {
        let pending = daemonsets.into_iter().collect();
        self.set(|s| *s = State::FirstSyncs(pending));
    }

    /// A sync of `key` finished (or found the DaemonSet gone).
    pub fn synced(&self, key: &str) {
        self.set(|s| {
            if let State::FirstSyncs(pending) = s {
                pending.remove(key);
            }
        });
    }

    /// The watch of `kind` failed with `error`; it is retried with backoff.
    pub fn watch_failed(&self, kind: &'static str, error: String) {
        self.watches().insert(kind, error);
    }

    /// The watch of `kind` delivered an event.
    pub fn watch_ok(&self, kind: &'static str) {
        self.watches().remove(kind);
    }

    /// Whether none of `kinds` is failing.
    pub fn watches_ok(&self, kinds: &[&str]) -> bool {
        let failing = self.watches();
        kinds.iter().all(|k| !failing.contains_key(k))
    }

    fn watches(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.failing_watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `/readyz` answers 200, and why not otherwise. A leader whose watches fail is not
    /// ready: it acts on nothing but status until they recover.
    pub fn check(&self) -> Result<&'static str, String> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let leading = !matches!(&*s, State::Starting | State::Following);
        if leading && let Some((kind, error)) = self.watches().iter().next() {
            return Err(format!(
                "leading: the watch of {kind} is failing ({error}); pods are not created or deleted until it recovers"
            ));
        }
        match &*s {
            State::Ready => Ok("ok: leading, caches synced, every DaemonSet synced once"),
            State::Following => Ok("ok: following, waiting for the leader lease"),
            State::Starting => Err("starting: connecting to the API server".into()),
            State::CachesSyncing => Err("leading: waiting for the caches to sync".into()),
            State::FirstSyncs(pending) => Err(format!(
                "leading: {} DaemonSets not synced yet since the caches synced",
                pending.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn a_failing_watch_makes_the_leader_unready_until_it_recovers() {
        let r = Readiness::default();
        r.leading();
        r.caches_synced(Vec::new());
        assert!(r.check().is_ok());
        r.watch_failed("pods", "connection refused".into());
        let err = r.check().err().unwrap_or_default();
        assert!(
            err.contains("pods") && err.contains("connection refused"),
            "{err}"
        );
        assert!(!r.watches_ok(&["pods", "nodes"]));
        assert!(r.watches_ok(&["nodes"]));
        r.watch_ok("pods");
        assert!(r.check().is_ok());
        assert!(r.watches_ok(&["pods", "nodes"]));
        r.watch_failed("nodes", "410".into());
        r.following();
        assert!(r.check().is_ok(), "a follower has no watches to speak of");
    }

    #[test]
    fn leader_is_ready_only_after_caches_and_every_first_sync() {
        let r = Readiness::default();
        assert!(r.check().is_err(), "starting");
        r.leading();
        assert!(r.check().is_err(), "caches syncing");
        r.caches_synced(["a/x".to_string(), "b/y".to_string()]);
        assert!(r.check().is_err());
        r.synced("a/x");
        r.synced("a/x");
        assert!(r.check().is_err(), "b/y still pending");
        r.synced("b/y");
        assert!(r.check().is_ok());
        // Later syncs change nothing.
        r.synced("c/z");
        assert!(r.check().is_ok());
    }

    #[test]
    fn no_daemonsets_means_ready_at_cache_sync() {
        let r = Readiness::default();
        r.leading();
        r.caches_synced(Vec::new());
        assert!(r.check().is_ok());
    }

    #[test]
    fn a_follower_is_ready() {
        let r = Readiness::default();
        r.following();
        assert!(r.check().is_ok());
    }
}
