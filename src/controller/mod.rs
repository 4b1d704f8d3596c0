//! The imperative shell: watches DaemonSets, pods, nodes and ControllerRevisions into caches, queues
//! DaemonSets as upstream's handlers do, and runs one sync per queued DaemonSet, applying the core's
//! plans. One file per concern:
//!
//! - [`daemonset_object`]: the cached DaemonSet with its raw template;
//! - [`object_cache`], [`owner_index`] (revisions), [`pod_index`]: watch-fed caches and their indexes;
//!   [`slim`]: the slim decoding of what they hold;
//! - [`handlers`]: which change queues which DaemonSet, and expectation observations;
//! - [`node_queue`]: node changes wait there, deduplicated, for the node worker;
//! - [`sync`]: one sync; [`claim`], [`revisions`], [`pod_control`], [`status_writer`] apply its parts;
//! - [`events`]: publishing events; [`context`]: what syncs share;
//! - [`rollouts`]: DaemonSetRollout discovery, watch and decision; [`rollout_writer`] writes its
//!   status and mirrored conditions; [`rollback`] writes an earlier template back.
//!
//! [`run`] also feeds the metrics (queue depth, reconciles, expectations) and the readiness state.

pub mod claim;
pub mod context;
pub mod daemonset_object;
pub mod decode_guard;
pub mod events;
pub mod handlers;
pub mod node_queue;
pub mod object_cache;
pub mod owner_index;
pub mod pod_control;
pub mod pod_index;
pub mod revisions;
pub mod rollback;
pub mod rollout_writer;
pub mod rollouts;
pub mod slim;
pub mod status_writer;
pub mod sync;
pub mod workers;

use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::status_pacing::StatusPacer;
use crate::core::sync_pacing::SyncPacer;
use crate::runtime::cli::RunArgs;
use crate::runtime::metrics::Metrics;
use crate::runtime::readiness::Readiness;
use context::{Caches, Context, lock, read, write};
use daemonset_object::CachedDaemonSet;
use decode_guard::Guarded;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::Resource;
use kube::api::Api;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{Instrument, debug, info, warn};

/// Errors of the shell, with messages a cluster operator can act on. [`Error::is_permanent`] tells
/// the ones only a change of the DaemonSet fixes from the ones a retry may fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("DaemonSet {daemonset} cannot be acted on: {reason}")]
    Invalid { daemonset: String, reason: String },
    #[error("DaemonSet {daemonset} is not acted on: {source}")]
    InvalidSpec {
        daemonset: String,
        source: crate::core::spec_check::InvalidSpec,
    },
    #[error("DaemonSet {daemonset}: claiming pods or revisions failed: {}", errors.join("; "))]
    Claim {
        daemonset: String,
        errors: Vec<String>,
    },
    #[error("failed to construct revisions of DaemonSet {daemonset}: {reason}")]
    History { daemonset: String, reason: String },
    #[error("rolling update of DaemonSet {daemonset} cannot proceed yet: {reason}")]
    RollingUpdate { daemonset: String, reason: String },
    #[error("DaemonSet {daemonset}: {}", errors.join("; "))]
    SyncNodes {
        daemonset: String,
        errors: Vec<String>,
    },
    #[error("cannot update status of DaemonSet {daemonset}: {reason}")]
    Status { daemonset: String, reason: String },
    #[error("DaemonSetRollout of DaemonSet {daemonset}: {reason}")]
    Rollout { daemonset: String, reason: String },
}

impl Error {
    pub fn invalid(ds: &CachedDaemonSet, reason: String) -> Self {
        Error::Invalid {
            daemonset: ds.key(),
            reason,
        }
    }

    /// Whether retrying cannot help until the DaemonSet changes (a change queues it anyway).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::InvalidSpec { .. } | Error::Invalid { .. })
    }

    /// The `reason` label of `everynode_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "api",
            Error::Invalid { .. } => "invalid_budget",
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::Claim { .. } => "claim",
            Error::History { .. } => "history",
            Error::RollingUpdate { .. } => "rolling_update",
            Error::SyncNodes { .. } => "sync_nodes",
            Error::Status { .. } => "status",
            Error::Rollout { .. } => "rollout",
        }
    }
}

/// The field manager of every write (`metadata.managedFields[].manager`).
pub const FIELD_MANAGER: &str = "everynode";

/// Create parameters of every create: everynode's field manager.
pub fn post_params() -> kube::api::PostParams {
    kube::api::PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// Patch parameters of every patch: everynode's field manager.
pub fn patch_params() -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// How long a DaemonSet whose spec cannot be acted on waits before it is looked at again without a
/// change (a change of the DaemonSet queues it at once).
pub const PERMANENT_ERROR_RETRY: Duration = Duration::from_secs(300);

/// Drops managed fields before caching: nothing reads them and they are most of an object's size.
/// (Slim types never decode them; this is for the DaemonSets, cached whole.)
fn strip_managed_fields<K: Resource>(mut event: Event<K>) -> Event<K> {
    let strip = |o: &mut K| o.meta_mut().managed_fields = None;
    match &mut event {
        Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => strip(o),
        Event::Init | Event::InitDone => {}
    }
    event
}

/// An object that did not decode, as an object of its kind carrying just its metadata (so the
/// cache can drop whatever version of it it holds).
fn placeholder<K: Resource + Default>(invalid: InvalidObject) -> K {
    let mut k = K::default();
    *k.meta_mut() = invalid.metadata;
    k
}

/// Unwraps the decode guard of one event. An object that fails to decode is logged, counted and
/// removed from the cache instead of breaking the whole list or watch ([`decode_guard`]).
fn decoded<K: Resource + Default>(
    event: Event<Guarded<K>>,
    kind: &'static str,
    metrics: &Metrics,
) -> Option<Event<K>> {
    let invalid = |inv: InvalidObject| {
        warn!(
            kind,
            object = %format!("{}/{}", inv.metadata.namespace.as_deref().unwrap_or_default(), inv.metadata.name.as_deref().unwrap_or_default()),
            "cannot decode a watched object; leaving it out of the cache: {}", inv.error
        );
        metrics.undecodable_object(kind);
        placeholder::<K>(inv)
    };
    Some(match event {
        Event::Apply(Guarded(Ok(k))) => Event::Apply(k),
        Event::Apply(Guarded(Err(inv))) => Event::Delete(invalid(inv)),
        Event::InitApply(Guarded(Ok(k))) => Event::InitApply(k),
        Event::InitApply(Guarded(Err(inv))) => {
            invalid(inv);
            return None;
        }
        Event::Delete(Guarded(Ok(k))) => Event::Delete(k),
        Event::Delete(Guarded(Err(inv))) => Event::Delete(placeholder(inv)),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    })
}

/// Runs a watch forever, decoding objects as `D` (a slim type, [`slim`]) and handing every event,
/// converted to `K`, to `apply`. Its health goes to the readiness state and
/// `everynode_watch_healthy`: failing from an error until the watch has listed again.
///
/// After an error the watch starts over with a list (after [`watch_backoff`]) instead of resuming
/// from its last resourceVersion: a resumed watch of a quiet kind delivers no event, so nothing would
/// ever say it recovered, and syncs held back while it fails would change nothing that could produce
/// one. The list also brings the cache back in line with whatever happened while it failed.
///
/// The list is a streaming list (a watch with `sendInitialEvents`, what client-go's WatchListClient
/// sends: no LIST request, objects decoded one at a time). An API server that refuses it
/// ([`streaming_refused`]) gets, from then on, a paged list served from its watch cache
/// (`resourceVersion=0`), as client-go falls back; the log says which one fills the cache.
async fn watch<D, K, F>(api: Api<Guarded<D>>, kind: &'static str, ctx: Arc<Context>, mut apply: F)
where
    D: Resource + Clone + DeserializeOwned + Debug + Send + Default + 'static,
    D::DynamicType: Default,
    K: Resource + From<D>,
    F: FnMut(Event<K>),
{
    ctx.metrics.set_watch_healthy(kind, true);
    let mut failures: u32 = 0;
    let mut streaming = true;
    let mut said_how = false;
    let mut retry_now = false;
    loop {
        let config = if streaming {
            watcher::Config::default().streaming_lists()
        } else {
            // Unpaged: kube sends no resourceVersion=0 with a limit (the watch cache would
            // ignore the limit anyway), and client-go lists from the watch cache unpaged too.
            let mut c = watcher::Config::default().any_semantic();
            c.page_size = None;
            c
        };
        let mut listed = false;
        let mut stream = watcher::watcher(api.clone(), config).boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if matches!(event, Event::InitDone) {
                        listed = true;
                        if !said_how {
                            said_how = true;
                            info!(
                                kind,
                                streaming,
                                "cache of {kind} filled from {}",
                                list_kind(streaming)
                            );
                        }
                        if failures > 0 {
                            info!(kind, "watch of {kind} recovered");
                            failures = 0;
                        }
                    }
                    if failures == 0 {
                        ctx.readiness.watch_ok(kind);
                        ctx.metrics.set_watch_healthy(kind, true);
                    }
                    if let Some(event) = decoded(event, kind, &ctx.metrics) {
                        apply(strip_managed_fields(converted(event)));
                    }
                }
                Err(e) => {
                    if streaming && !listed && streaming_refused(&e) {
                        streaming = false;
                        said_how = false;
                        retry_now = true;
                        warn!(
                            kind,
                            "the API server refused a streaming list of {kind} ({e}); using {} instead",
                            list_kind(false)
                        );
                        break;
                    }
                    failures = failures.saturating_add(1);
                    let delay = watch_backoff(failures);
                    warn!("watch of {kind} failed (listing again in {delay:?}): {e}");
                    ctx.readiness.watch_failed(kind, e.to_string());
                    ctx.metrics.set_watch_healthy(kind, false);
                    break;
                }
            }
        }
        if std::mem::take(&mut retry_now) {
            // A refused streaming list: fall back at once, nothing failed.
            continue;
        }
        tokio::time::sleep(watch_backoff(failures.max(1))).await;
    }
}

fn list_kind(streaming: bool) -> &'static str {
    if streaming {
        "a streaming list (sendInitialEvents)"
    } else {
        "a list served from the watch cache (resourceVersion=0)"
    }
}

/// Whether a watch error before the first full list means the API server does not serve streaming
/// lists: a 4xx status (the `sendInitialEvents` parameter refused, e.g. the WatchList feature off)
/// other than 410 Gone and 429 Too Many Requests, which a retry of the same request answers.
fn streaming_refused(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::WatchStartFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return false,
    };
    (400..500).contains(&code) && code != 410 && code != 429
}

/// An event of slim objects as an event of the type the caches hold.
fn converted<D, K: From<D>>(event: Event<D>) -> Event<K> {
    match event {
        Event::Apply(o) => Event::Apply(o.into()),
        Event::InitApply(o) => Event::InitApply(o.into()),
        Event::Delete(o) => Event::Delete(o.into()),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    }
}

/// The wait before listing again after `failures` consecutive watch failures: 800 ms doubling, at
/// most 30 s (kube-runtime's default watcher backoff).
fn watch_backoff(failures: u32) -> Duration {
    let ms = 800u64.saturating_mul(1u64 << failures.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(30_000))
}

/// The client-go default per-item rate limiter: 5 ms doubling per consecutive failure, up to 1000 s.
fn retry_delay(failures: u32) -> Duration {
    let ms = 5u64.saturating_mul(1u64 << failures.min(30));
    Duration::from_millis(ms.min(1_000_000))
}

/// The controller's API clients. As in kube-controller-manager, where the shared informers have a
/// client (and so a client-side rate limiter) of their own and the DaemonSet controller another,
/// lists and watches do not draw on the budget of creates, deletes, patches and events.
#[derive(Clone)]
pub struct Clients {
    /// Everything but lists and watches.
    pub requests: kube::Client,
    /// The watches that feed the caches.
    pub watches: kube::Client,
}

/// Runs the controller until `shutdown` resolves, recording into `metrics` and `readiness`.
pub async fn run(
    clients: Clients,
    args: &RunArgs,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    readiness.leading();
    let Clients {
        requests: client,
        watches,
    } = clients;
    let (ds_store, mut ds_writer) = reflector::store::<CachedDaemonSet>();
    let queue = Arc::new(workers::Queue::new(metrics.clone()));
    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "everynode".into());
    let ctx = Arc::new(Context {
        client: client.clone(),
        caches: Caches {
            daemonsets: ds_store.clone(),
            pods: Default::default(),
            nodes: Default::default(),
            revisions: Default::default(),
            rollouts: Default::default(),
        },
        expectations: Default::default(),
        backoff: Default::default(),
        events: events::EventSink::start(client.clone(), instance, metrics.clone()),
        said: Default::default(),
        queue: queue.clone(),
        failures: Default::default(),
        overlaps_logged: Default::default(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        rollout_status: Default::default(),
        pacing: args.create_pacing,
        status_pacer: Mutex::new(StatusPacer::new(args.status_write_interval)),
        sync_pacer: Mutex::new(SyncPacer::new(args.status_write_interval)),
    });

    // Watches. The DaemonSet watch feeds the DaemonSet store and the handlers.
    // That store is the only copy of each DaemonSet: the workers and the handlers take it from there.
    let c = ctx.clone();
    tokio::spawn(watch(
        Api::<Guarded<CachedDaemonSet>>::all(watches.clone()),
        "daemonsets",
        ctx.clone(),
        move |ev: Event<CachedDaemonSet>| {
            for change in object_cache::apply_to_store(&mut ds_writer, ev) {
                if let object_cache::Change::Deleted(ds) = &change {
                    c.metrics.forget_daemonset(&context::ds_labels(ds));
                }
                handlers::daemonset_changed(&c, change);
            }
        },
    ));
    let c = ctx.clone();
    tokio::spawn(watch(
        Api::<Guarded<CachedPod>>::all(watches.clone()),
        "pods",
        ctx.clone(),
        move |ev: Event<CachedPod>| {
            let changes = write(&c.caches.pods).apply(ev);
            for change in changes {
                handlers::pod_changed(&c, change);
            }
        },
    ));
    // Node changes go through the node queue to its worker, which waits for the caches to sync.
    let node_queue = Arc::new(node_queue::NodeQueue::new(metrics.clone()));
    let c = ctx.clone();
    let q = node_queue.clone();
    tokio::spawn(watch(
        Api::<Guarded<CachedNode>>::all(watches.clone()),
        "nodes",
        ctx.clone(),
        move |ev: Event<CachedNode>| {
            let changes = write(&c.caches.nodes).apply(ev);
            for change in changes {
                handlers::node_changed(&q, change);
            }
        },
    ));
    tokio::spawn(handlers::node_worker(ctx.clone(), node_queue.clone()));
    let c = ctx.clone();
    tokio::spawn(watch(
        Api::<Guarded<slim::SlimRevision>>::all(watches.clone()),
        "controllerrevisions",
        ctx.clone(),
        move |ev: Event<ControllerRevision>| {
            let changes = write(&c.caches.revisions).apply(ev);
            for change in changes {
                handlers::revision_changed(&c, change);
            }
        },
    ));
    // DaemonSetRollout policies: watched when the CRD is served, else looked for every minute.
    let rollouts_served = rollouts::start(&ctx, &watches).await;
    // Failed-pod backoff garbage collection, every minute as upstream.
    let c = ctx.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            lock(&c.backoff).gc(crate::core::Timestamp::now());
            // Records of DaemonSets deleted while a watch was down (their delete never observed).
            let live: std::collections::HashSet<String> = c
                .caches
                .daemonsets
                .state()
                .iter()
                .map(|ds| ds.uid().to_string())
                .collect();
            lock(&c.expectations).retain(|uid| live.contains(uid));
            lock(&c.said).retain(|uid| live.contains(uid));
            lock(&c.status_pacer).retain(|uid| live.contains(uid));
            lock(&c.sync_pacer).retain(|uid| live.contains(uid));
            // Last written statuses of policies deleted while their watch was down.
            let policies: std::collections::HashSet<String> = read(&c.caches.rollouts)
                .values()
                .map(|r| r.uid().to_string())
                .collect();
            lock(&c.rollout_status).retain(|uid, _| policies.contains(uid));
        }
    });
    // The expectations gauges follow the watch handlers' observations too, not only syncs.
    let c = ctx.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.observe_expectations();
        }
    });

    let synced = async {
        let _ = ds_store.wait_until_ready().await;
        while !(read(&ctx.caches.pods).synced()
            && read(&ctx.caches.nodes).synced()
            && read(&ctx.caches.revisions).synced()
            && (!rollouts_served || read(&ctx.caches.rollouts).synced()))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::pin!(shutdown);
    tokio::select! {
        _ = synced => {}
        _ = &mut shutdown => return Ok(()),
    }
    info!(
        daemonsets = ds_store.len(),
        pods = read(&ctx.caches.pods).len(),
        nodes = read(&ctx.caches.nodes).len(),
        "caches synced; starting {} workers",
        args.concurrent_daemonset_syncs
    );
    readiness.caches_synced(ds_store.state().iter().map(|ds| ds.key()));
    node_queue.caches_synced();

    let sync_one = {
        let ctx = ctx.clone();
        let readiness = readiness.clone();
        move |key: String| {
            let ctx = ctx.clone();
            let readiness = readiness.clone();
            async move {
                let requeue = match ctx.daemonset_by_key(&key) {
                    Some(ds) => {
                        sync_logged(ds, &ctx)
                            .instrument(tracing::info_span!("sync", daemonset = %key))
                            .await
                    }
                    None => {
                        // Deleted after it was queued: its delete handler already cleaned up.
                        debug!("DaemonSet {key} is gone");
                        None
                    }
                };
                readiness.synced(&key);
                requeue
            }
        }
    };
    let workers = workers::run(queue, args.concurrent_daemonset_syncs.into(), sync_one);
    tokio::select! {
        _ = workers => warn!("the workers ended"),
        _ = &mut shutdown => {}
    }
    Ok(())
}

/// One sync with its metrics and, when it fails, upstream's retry policy; returns when to sync the
/// DaemonSet again without an event.
async fn sync_logged(ds: Arc<CachedDaemonSet>, ctx: &Context) -> Option<Duration> {
    let key = ds.key();
    let start = Instant::now();
    let result = sync::sync_daemonset(ds, ctx).await;
    ctx.metrics.reconciled(result.is_ok(), start.elapsed());
    ctx.observe_expectations();
    match result {
        Ok(requeue) => {
            lock(&ctx.failures).remove(&key);
            debug!(daemonset = %key, took = ?start.elapsed(), next = ?requeue, "synced");
            requeue
        }
        Err(err) => {
            ctx.metrics.reconcile_failed(err.metric_label());
            if err.is_permanent() {
                // Retrying cannot help; a change of the DaemonSet queues it at once.
                warn!(daemonset = %key, retry_in = ?PERMANENT_ERROR_RETRY, "sync failed: {err}");
                return Some(PERMANENT_ERROR_RETRY);
            }
            let mut failures = lock(&ctx.failures);
            let n = failures.entry(key.clone()).or_insert(0);
            let delay = retry_delay(*n);
            *n = n.saturating_add(1);
            warn!(daemonset = %key, retry_in = ?delay, "sync failed: {err}");
            Some(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_guard::Guarded;
    use super::{decoded, retry_delay};
    use crate::core::cached_pod::CachedPod;
    use crate::runtime::metrics::Metrics;
    use kube::runtime::watcher::Event;
    use std::time::Duration;

    /// Decoded from JSON text, as kube decodes every list and watch response.
    fn guarded(v: serde_json::Value) -> Guarded<CachedPod> {
        serde_json::from_str(&v.to_string())
            .unwrap_or_else(|e| panic!("the guard itself failed: {e}"))
    }

    /// One pod the typed decoder refuses does not break the list or watch: it is logged, counted,
    /// and leaves the cache, while its neighbours decode as usual.
    #[test]
    fn an_undecodable_object_leaves_the_cache_and_breaks_nothing() {
        let good = guarded(serde_json::json!({"metadata": {"name": "good", "namespace": "n"}}));
        let bad = guarded(serde_json::json!({
            "metadata": {"name": "bad", "namespace": "n"},
            "spec": {"nodeName": ["not", "a", "string"]}
        }));
        assert!(good.0.is_ok());
        assert!(bad.0.is_err());
        let metrics = Metrics::new();
        assert!(matches!(
            decoded(Event::InitApply(good.clone()), "pods", &metrics),
            Some(Event::InitApply(p)) if p.metadata.name.as_deref() == Some("good")
        ));
        assert!(decoded(Event::InitApply(bad.clone()), "pods", &metrics).is_none());
        assert!(matches!(
            decoded(Event::Apply(bad.clone()), "pods", &metrics),
            Some(Event::Delete(p)) if p.metadata.name.as_deref() == Some("bad")
                && p.metadata.namespace.as_deref() == Some("n")
        ));
        assert!(matches!(
            decoded(Event::Delete(bad), "pods", &metrics),
            Some(Event::Delete(_))
        ));
        let text = metrics.encode().unwrap_or_default();
        assert!(
            text.contains(r#"everynode_undecodable_objects_total{kind="pods"} 2"#),
            "{text}"
        );
    }

    /// A 4xx refusal of the first streaming watch (the parameter refused, forbidden) falls back to
    /// a list; 410 Gone, 429 and 5xx are retried as streaming lists.
    #[test]
    fn only_a_4xx_other_than_410_and_429_means_no_streaming_lists() {
        use super::streaming_refused;
        use kube::runtime::watcher::Error;
        let status = |code| kube::core::Status {
            code,
            ..Default::default()
        };
        let start = |code| Error::WatchStartFailed(kube::Error::Api(Box::new(status(code))));
        assert!(streaming_refused(&start(422)));
        assert!(streaming_refused(&start(400)));
        assert!(streaming_refused(&Error::WatchError(Box::new(status(403)))));
        assert!(!streaming_refused(&start(410)));
        assert!(!streaming_refused(&start(429)));
        assert!(!streaming_refused(&start(500)));
        assert!(!streaming_refused(&Error::WatchError(Box::new(status(
            410
        )))));
        assert!(!streaming_refused(&Error::NoResourceVersion));
    }

    #[test]
    fn a_failed_watch_lists_again_after_800ms_doubling_up_to_30s() {
        use super::watch_backoff;
        assert_eq!(watch_backoff(1), Duration::from_millis(800));
        assert_eq!(watch_backoff(2), Duration::from_millis(1600));
        assert_eq!(watch_backoff(6), Duration::from_millis(25_600));
        assert_eq!(watch_backoff(7), Duration::from_secs(30));
        assert_eq!(watch_backoff(99), Duration::from_secs(30));
    }

    #[test]
    fn retry_delay_doubles_from_5ms_up_to_1000s() {
        assert_eq!(retry_delay(0), Duration::from_millis(5));
        assert_eq!(retry_delay(1), Duration::from_millis(10));
        assert_eq!(retry_delay(10), Duration::from_millis(5120));
        assert_eq!(retry_delay(40), Duration::from_secs(1000));
    }
}
