//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), with
//! kube-controller-manager's timing flags: only the holder runs the controller, and a holder that
//! cannot confirm its lease within the renew deadline, or sees another holder, gives up at once.
//!
//! kube-lease-manager renews `grace` seconds before expiry; everynode sets `grace = lease duration -
//! retry period`, so the holder renews every retry period as client-go does. The crate has no renew
//! deadline, so a watchdog reads the Lease every retry period while leading and reports the
//! leadership lost when the Lease names another holder or its renewTime is older than the renew
//! deadline (renewals failing), or when the Lease cannot be read for that long.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseParams};
use rand::distr::Alphanumeric;
use rand::{RngExt, rng};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Leader election settings (the `--leader-elect-*` flags).
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Errors of leader election, with what to check.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "invalid leader election timing: {0} (need --leader-elect-lease-duration > --leader-elect-renew-deadline > --leader-elect-retry-period >= 1s, in whole seconds)"
    )]
    Timing(String),
    #[error(
        "cannot use the leader Lease {namespace}/{name}: {source} (the namespace must exist and the ServiceAccount needs get, create, update and patch on leases in coordination.k8s.io)"
    )]
    Setup {
        namespace: String,
        name: String,
        source: kube_lease_manager::LeaseManagerError,
    },
    #[error("leader election of Lease {namespace}/{name} stopped unexpectedly: {reason}")]
    Stopped {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "lost the leader Lease {namespace}/{name}: {reason}; exiting so that the restarted process competes for it again"
    )]
    Lost {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// kube-lease-manager's `(duration, grace)` in seconds for these flags.
pub fn lease_params(
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
) -> Result<(u64, u64), String> {
    let whole = |d: Duration, flag: &str| {
        if d.subsec_nanos() == 0 {
            Ok(d.as_secs())
        } else {
            Err(format!("{flag} {d:?} is not a whole number of seconds"))
        }
    };
    let lease = whole(lease_duration, "lease duration")?;
    let renew = whole(renew_deadline, "renew deadline")?;
    let retry = whole(retry_period, "retry period")?;
    if retry == 0 || retry >= renew || renew >= lease {
        return Err(format!(
            "lease duration {lease}s, renew deadline {renew}s, retry period {retry}s"
        ));
    }
    Ok((lease, lease - retry))
}

/// The holder identity: the pod name (POD_NAME) or the host name, plus a random suffix so that a
/// restarted process never mistakes its predecessor's lease for its own.
pub fn identity<'a>(pod_name: Option<&'a str>, hostname: Option<&'a str>, suffix: &str) -> String {
    let usable = |s: Option<&'a str>| s.map(str::trim).filter(|s| !s.is_empty());
    let base = usable(pod_name).or(usable(hostname)).unwrap_or("everynode");
    format!("{base}_{suffix}")
}

/// This process's identity from POD_NAME, else the host name.
pub fn default_identity() -> String {
    let pod = std::env::var("POD_NAME").ok();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok());
    let suffix: String = rng()
        .sample_iter(&Alphanumeric)
        .take(8)
        .map(char::from)
        .collect();
    identity(pod.as_deref(), host.as_deref(), &suffix.to_lowercase())
}

/// A running election.
pub struct Election {
    config: LeaderConfig,
    leading: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    leases: Api<Lease>,
}

impl Election {
    /// Creates the Lease if needed and starts competing for it in the background.
    pub async fn start(client: kube::Client, config: LeaderConfig) -> Result<Self, LeaderError> {
        let (duration, grace) = lease_params(
            config.lease_duration,
            config.renew_deadline,
            config.retry_period,
        )
        .map_err(LeaderError::Timing)?;
        let manager = LeaseManagerBuilder::new(client.clone(), &config.name)
            .with_namespace(&config.namespace)
            .with_parameters(LeaseParams::new(&config.identity, duration, grace))
            .build()
            .await
            .map_err(|source| LeaderError::Setup {
                namespace: config.namespace.clone(),
                name: config.name.clone(),
                source,
            })?;
        let (leading, task) = manager.watch().await;
        info!(identity = %config.identity, lease = %format!("{}/{}", config.namespace, config.name), "waiting for the leader lease");
        Ok(Self {
            leases: Api::namespaced(client, &config.namespace),
            config,
            leading,
            task,
        })
    }

    fn stopped(&self, reason: impl Into<String>) -> LeaderError {
        LeaderError::Stopped {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            reason: reason.into(),
        }
    }

    fn lost_because(&self, reason: impl Into<String>) -> LeaderError {
        LeaderError::Lost {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            reason: reason.into(),
        }
    }

    /// Waits until this instance holds the lease.
    pub async fn acquired(&mut self) -> Result<(), LeaderError> {
        let acquired = self.leading.wait_for(|leading| *leading).await.is_ok();
        if acquired {
            info!(identity = %self.config.identity, "acquired the leader lease");
            Ok(())
        } else {
            Err(self.stopped("the lease task ended"))
        }
    }

    /// Resolves when this instance, leading, loses the lease; returns why.
    ///
    /// The Lease is read every retry period by a task of its own; the deadline is checked here,
    /// independently of that read, so a slow or hanging GET cannot keep a deposed leader acting.
    pub async fn lost(&mut self) -> LeaderError {
        let leases = self.leases.clone();
        let name = self.config.name.clone();
        let reason = watchdog(
            &mut self.leading,
            move || {
                let leases = leases.clone();
                let name = name.clone();
                async move { leases.get(&name).await.map_err(|e| e.to_string()) }
            },
            &self.config,
        )
        .await;
        self.lost_because(reason)
    }

    /// Releases the lease if held (so that another instance takes over without waiting for it to
    /// expire) and stops competing. Waits at most the retry period.
    pub async fn release(self) {
        let Self {
            leading,
            task,
            config,
            ..
        } = self;
        let held = *leading.borrow();
        drop(leading);
        match tokio::time::timeout(config.retry_period, task).await {
            Ok(Ok(Ok(_))) if held => info!("released the leader lease"),
            Ok(Ok(Ok(_))) => info!("stopped waiting for the leader lease"),
            Ok(Ok(Err(e))) => warn!("could not release the leader lease: {e}"),
            Ok(Err(e)) => warn!("the leader lease task failed: {e}"),
            Err(_) => warn!("releasing the leader lease timed out; it expires on its own"),
        }
    }
}

/// What one read of the Lease says about this instance's leadership.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseReading {
    /// The Lease names this instance; it was last renewed this long ago (0 if renewTime is in the
    /// future by this machine's clock).
    Held { age: Duration },
    /// The Lease names nobody, or this instance without a renewTime: nothing is confirmed.
    Unconfirmed,
    /// Another instance holds the Lease.
    HeldBy(String),
}

/// Reads `lease` for `identity` at wall-clock `now`.
pub fn read_lease(lease: &Lease, identity: &str, now: Timestamp) -> LeaseReading {
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder.is_empty() {
        return LeaseReading::Unconfirmed;
    }
    if holder != identity {
        return LeaseReading::HeldBy(holder);
    }
    match spec.renew_time {
        Some(t) => LeaseReading::Held {
            age: Duration::try_from(now.duration_since(t.0)).unwrap_or(Duration::ZERO),
        },
        None => LeaseReading::Unconfirmed,
    }
}

/// The leader watchdog: resolves with the reason when leadership must be given up, that is when
/// `leading` turns false or ends, when a read of the Lease names another holder, or when the Lease
/// was last seen renewed more than the renew deadline ago. The last renewal is taken as `t − age`
/// for a read answered at `t`; before any read, acquisition counts as a renewal. Since the renew
/// deadline is shorter than the lease duration, a leader stops before any follower may take over.
///
/// `read` is called every retry period on a task of its own, each call bounded by the retry period;
/// the deadline is checked here whatever the reads do.
pub async fn watchdog<F, Fut>(
    leading: &mut watch::Receiver<bool>,
    read: F,
    config: &LeaderConfig,
) -> String
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Lease, String>> + Send + 'static,
{
    let (tx, mut readings) = tokio::sync::mpsc::channel::<(Instant, LeaseReading)>(4);
    let identity = config.identity.clone();
    let retry_period = config.retry_period;
    let reader = tokio::spawn(async move {
        let mut tick = tokio::time::interval(retry_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let reading = match tokio::time::timeout(retry_period, read()).await {
                Ok(Ok(lease)) => read_lease(&lease, &identity, Timestamp::now()),
                Ok(Err(e)) => {
                    warn!("cannot read the leader lease: {e}");
                    continue;
                }
                Err(_) => {
                    warn!("reading the leader lease took longer than {retry_period:?}");
                    continue;
                }
            };
            if tx.send((Instant::now(), reading)).await.is_err() {
                return;
            }
        }
    });
    let _stop_reader = AbortOnDrop(reader);
    let mut renewed = Instant::now();
    loop {
        let deadline = renewed + config.renew_deadline;
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() {
                    return "the lease task ended".into();
                }
                if !*leading.borrow_and_update() {
                    return "another instance holds the lease now".into();
                }
            }
            reading = readings.recv() => match reading {
                Some((at, LeaseReading::Held { age })) => {
                    debug!(?age, "leader lease checked");
                    renewed = renewed.max(at.checked_sub(age).unwrap_or(at));
                }
                Some((_, LeaseReading::HeldBy(holder))) => {
                    return format!("the Lease names {holder:?} as holder");
                }
                Some((_, LeaseReading::Unconfirmed)) => {}
                None => return "the lease reader ended".into(),
            },
            _ = tokio::time::sleep_until(deadline) => {
                return format!(
                    "the lease was not renewed within the renew deadline of {:?}",
                    config.renew_deadline
                );
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn defaults_renew_every_retry_period() {
        assert_eq!(lease_params(s(15), s(10), s(2)), Ok((15, 13)));
    }

    #[test]
    fn inconsistent_or_fractional_timings_are_refused() {
        assert!(lease_params(s(10), s(10), s(2)).is_err());
        assert!(lease_params(s(15), s(2), s(2)).is_err());
        assert!(lease_params(s(15), s(10), s(0)).is_err());
        assert!(lease_params(s(15), s(10), Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn identity_prefers_pod_name_then_hostname() {
        assert_eq!(identity(Some("pod-1"), Some("host"), "ab"), "pod-1_ab");
        assert_eq!(identity(None, Some("host\n"), "ab"), "host_ab");
        assert_eq!(identity(None, None, "ab"), "everynode_ab");
        assert_eq!(identity(Some(""), Some("host"), "ab"), "host_ab");
    }

    fn config() -> LeaderConfig {
        LeaderConfig {
            namespace: "kube-system".into(),
            name: "everynode".into(),
            identity: "me_ab".into(),
            lease_duration: s(15),
            renew_deadline: s(10),
            retry_period: s(2),
        }
    }

    fn lease(holder: &str, renewed_ago: Duration) -> Lease {
        use k8s_openapi::api::coordination::v1::LeaseSpec;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let renewed = Timestamp::now() - jiff_span(renewed_ago);
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn jiff_span(d: Duration) -> k8s_openapi::jiff::SignedDuration {
        k8s_openapi::jiff::SignedDuration::try_from(d).unwrap_or_default()
    }

    #[test]
    fn a_lease_reading_tells_holder_and_age() {
        let now = Timestamp::now();
        assert_eq!(
            read_lease(&lease("other", s(0)), "me_ab", now),
            LeaseReading::HeldBy("other".into())
        );
        assert_eq!(
            read_lease(&Lease::default(), "me_ab", now),
            LeaseReading::Unconfirmed
        );
        match read_lease(&lease("me_ab", s(4)), "me_ab", Timestamp::now()) {
            LeaseReading::Held { age } => assert!(age >= s(4) && age < s(5), "{age:?}"),
            other => panic!("{other:?}"),
        }
    }

    /// A Lease GET that never answers (an overloaded or stopped API server) must not keep the
    /// leader acting past the renew deadline.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_lease_read_does_not_stop_the_deadline() {
        let (_tx, mut leading) = watch::channel(true);
        let start = Instant::now();
        let config = config();
        let watching = watchdog(
            &mut leading,
            std::future::pending::<Result<Lease, String>>,
            &config,
        );
        let reason = tokio::time::timeout(s(60), watching)
            .await
            .expect("the watchdog must give up within the renew deadline");
        assert!(reason.contains("renew deadline"), "{reason}");
        assert_eq!(start.elapsed(), s(10));
    }

    /// Fresh renewals keep leadership; once the reads show the renewals stopped, the leader gives up
    /// when the last renewal is older than the renew deadline, before the lease (15 s) expires.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_last_renewal_seen() {
        let (_tx, mut leading) = watch::channel(true);
        let start = Instant::now();
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let r = reads.clone();
        let reason = watchdog(
            &mut leading,
            move || {
                // Renewed at each of the first 10 reads (20 s), then never again.
                let n = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let age = if n < 10 {
                    s(0)
                } else {
                    s(2 * u64::from(n - 9))
                };
                async move { Ok(lease("me_ab", age)) }
            },
            &config(),
        )
        .await;
        assert!(reason.contains("renew deadline"), "{reason}");
        let held = start.elapsed();
        assert!(held >= s(26) && held <= s(29), "held for {held:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn another_holder_or_a_lost_lease_ends_leadership_at_once() {
        let (_tx, mut leading) = watch::channel(true);
        let reason = watchdog(
            &mut leading,
            || async { Ok(lease("other_cd", s(0))) },
            &config(),
        )
        .await;
        assert!(reason.contains("other_cd"), "{reason}");

        let (tx, mut leading) = watch::channel(true);
        let pending = || std::future::pending::<Result<Lease, String>>();
        let config = config();
        let watching = watchdog(&mut leading, pending, &config);
        tokio::pin!(watching);
        tokio::select! {
            _ = &mut watching => panic!("ended before the lease was lost"),
            _ = tokio::time::sleep(s(1)) => {}
        }
        let _ = tx.send(false);
        let reason = watching.await;
        assert!(reason.contains("another instance"), "{reason}");
    }
}
