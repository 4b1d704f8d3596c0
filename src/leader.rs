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
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
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
    pub async fn lost(&mut self) -> LeaderError {
        let mut tick = tokio::time::interval(self.config.retry_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut confirmed = Instant::now();
        loop {
            tokio::select! {
                changed = self.leading.changed() => {
                    if changed.is_err() {
                        return self.lost_because("the lease task ended");
                    }
                    if !*self.leading.borrow_and_update() {
                        return self.lost_because("another instance holds the lease now");
                    }
                }
                _ = tick.tick() => {
                    match self.check_lease().await {
                        Ok(true) => confirmed = Instant::now(),
                        Ok(false) => {}
                        Err(reason) => return self.lost_because(reason),
                    }
                    if confirmed.elapsed() > self.config.renew_deadline {
                        return self.lost_because(format!(
                            "the lease was not renewed within the renew deadline of {:?}",
                            self.config.renew_deadline
                        ));
                    }
                }
            }
        }
    }

    /// Reads the Lease: `Ok(true)` if it names this instance and was renewed within the renew
    /// deadline, `Ok(false)` if that cannot be confirmed now, `Err` if another instance holds it.
    async fn check_lease(&self) -> Result<bool, String> {
        let lease = match self.leases.get(&self.config.name).await {
            Ok(l) => l,
            Err(e) => {
                warn!("cannot read the leader lease: {e}");
                return Ok(false);
            }
        };
        let spec = lease.spec.unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        if holder != self.config.identity {
            return Err(format!("the Lease names {holder:?} as holder"));
        }
        let fresh = spec.renew_time.is_some_and(|t| {
            let age = Timestamp::now().duration_since(t.0);
            age.as_secs_f64() <= self.config.renew_deadline.as_secs_f64()
        });
        debug!(fresh, "leader lease checked");
        Ok(fresh)
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
        drop(leading);
        match tokio::time::timeout(config.retry_period, task).await {
            Ok(Ok(Ok(_))) => info!("released the leader lease"),
            Ok(Ok(Err(e))) => warn!("could not release the leader lease: {e}"),
            Ok(Err(e)) => warn!("the leader lease task failed: {e}"),
            Err(_) => warn!("releasing the leader lease timed out; it expires on its own"),
        }
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
}
