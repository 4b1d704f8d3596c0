//! The two controllers under test, each run as its own process with its own API identity: everynode
//! (the release binary) and the upstream DaemonSet controller (a kube-controller-manager running only
//! `daemonset-controller`), at a client-side API budget.

use crate::audit::{AuditLog, VerbCounts};
use crate::error::Error;
use crate::procstat::{self, RssSampler};
use controlplane::ControlPlane;
use controlplane::process::Process;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    #[serde(rename = "everynode")]
    Everynode,
    #[serde(rename = "upstream")]
    Upstream,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Everynode => "everynode",
            Kind::Upstream => "upstream",
        }
    }

    /// The API identity (user of the control plane's token file) this controller runs as.
    pub fn user(self) -> &'static str {
        match self {
            Kind::Everynode => "bench-everynode",
            Kind::Upstream => "bench-upstream",
        }
    }
}

/// A client-side API budget (client-go's QPS and burst), the same for both controllers, and whether
/// the control plane's kube-scheduler keeps its own default limit (50 QPS, burst 100) meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub name: String,
    pub qps: f64,
    pub burst: u32,
    /// `false` for "no client-side limit" (a QPS and burst so large that they never bind).
    pub limited: bool,
    /// `true`: kube-scheduler runs with a client-side limit that never binds (kwok has none), so
    /// binding daemon pods does not bound the figures; `false`: the scheduler's defaults.
    #[serde(default)]
    pub scheduler_lifted: bool,
}

impl Budget {
    /// kube-controller-manager's defaults: 20 QPS, burst 30.
    pub fn upstream_default() -> Self {
        Self {
            name: "default".into(),
            qps: 20.0,
            burst: 30,
            limited: true,
            scheduler_lifted: false,
        }
    }

    /// No client-side limit for the controllers: 100000 QPS, burst 100000; the scheduler at its
    /// defaults, as a user's cluster has it.
    pub fn unlimited() -> Self {
        Self {
            name: "unlimited".into(),
            qps: 100_000.0,
            burst: 100_000,
            limited: false,
            scheduler_lifted: false,
        }
    }

    /// No client-side limit anywhere: the controllers as [`Budget::unlimited`], and kube-scheduler
    /// with a client limit that never binds.
    pub fn lifted() -> Self {
        Self {
            name: "lifted".into(),
            scheduler_lifted: true,
            ..Self::unlimited()
        }
    }

    /// The budget of this name (`default`, `unlimited`, `lifted`).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "default" => Some(Self::upstream_default()),
            "unlimited" => Some(Self::unlimited()),
            "lifted" => Some(Self::lifted()),
            _ => None,
        }
    }

    /// The kube-scheduler client limit this budget runs with (`None`: its defaults).
    pub fn scheduler_limit(&self) -> Option<controlplane::ClientLimit> {
        self.scheduler_lifted
            .then(controlplane::ClientLimit::never_binding)
    }

    /// One line for the report: the controllers' limit and the scheduler's.
    pub fn describe(&self) -> String {
        let controllers = if self.limited {
            format!("controllers {} QPS, burst {}", self.qps, self.burst)
        } else {
            "controllers without a client-side limit (QPS and burst 100000)".into()
        };
        let scheduler = if self.scheduler_lifted {
            "kube-scheduler without a client-side limit (QPS and burst 100000 in its configuration)"
        } else {
            "kube-scheduler at its defaults (50 QPS, burst 100)"
        };
        format!("{controllers}; {scheduler}; kwok has no client-side limit")
    }
}

/// The flags of `everynode run` this build has (another change adds some of them).
#[derive(Debug, Clone, Default)]
pub struct EverynodeFlags {
    pub kube_api_qps: bool,
    pub leader_elect: bool,
    pub metrics_bind_address: bool,
}

impl EverynodeFlags {
    /// Reads `everynode run --help` once.
    pub fn of(binary: &Path) -> Self {
        static FLAGS: OnceLock<EverynodeFlags> = OnceLock::new();
        FLAGS
            .get_or_init(|| {
                let help = std::process::Command::new(binary)
                    .args(["run", "--help"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                EverynodeFlags {
                    kube_api_qps: help.contains("--kube-api-qps")
                        && help.contains("--kube-api-burst"),
                    leader_elect: help.contains("--leader-elect"),
                    metrics_bind_address: help.contains("--metrics-bind-address"),
                }
            })
            .clone()
    }
}

/// A running controller.
#[derive(Debug)]
pub struct Running {
    pub kind: Kind,
    process: Process,
    sampler: RssSampler,
    started: Instant,
    startup_requests: VerbCounts,
    startup_by_resource: VerbCounts,
}

/// Figures of one phase of a scenario, for the controller process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseStats {
    pub phase: String,
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub requests: VerbCounts,
    /// The same requests by verb and resource (`create pods`, `patch events`, ...).
    pub requests_by_resource: VerbCounts,
}

/// Measures one phase: call [`Phase::end`] when it is over.
#[derive(Debug)]
pub struct Phase {
    name: String,
    cpu: f64,
    at: Instant,
}

impl Running {
    /// Starts the controller under `budget` and waits until it watches pods, nodes and DaemonSets
    /// (seen in the audit log, which `audit` reads from where it stands).
    pub async fn start(
        cp: &ControlPlane,
        kind: Kind,
        budget: &Budget,
        everynode: &Path,
        tag: &str,
        audit: &mut AuditLog,
    ) -> Result<Self, Error> {
        let kubeconfig = cp.user_kubeconfig(kind.user()).ok_or_else(|| {
            Error::Usage(format!("the control plane has no user {}", kind.user()))
        })?;
        let name = format!("{}-{tag}", kind.name());
        let log = cp.log(&name);
        let process = match kind {
            Kind::Everynode => {
                if !everynode.is_file() {
                    return Err(Error::NoEverynode(everynode.to_path_buf()));
                }
                let flags = EverynodeFlags::of(everynode);
                let mut args = vec![
                    "run".to_string(),
                    format!("--kubeconfig={}", kubeconfig.display()),
                ];
                if flags.leader_elect {
                    args.push("--leader-elect=false".into());
                }
                if flags.kube_api_qps {
                    args.push(format!("--kube-api-qps={}", budget.qps));
                    args.push(format!("--kube-api-burst={}", budget.burst));
                }
                if flags.metrics_bind_address {
                    args.push(format!(
                        "--metrics-bind-address=127.0.0.1:{}",
                        controlplane::free_port()?
                    ));
                }
                let filter = std::env::var("EVERYNODE_BENCH_LOG").unwrap_or_else(|_| "info".into());
                Process::spawn_with_env(&name, everynode, &args, &[("RUST_LOG", &filter)], &log)
                    .map_err(|e| Error::io(&log, e))?
            }
            Kind::Upstream => cp.spawn_upstream_daemonset_controller(
                &name,
                kind.user(),
                controlplane::Options::default().node_lease_seconds,
                Some((budget.qps, budget.burst)),
            )?,
        };
        let sampler = RssSampler::start(process.pid());
        let mut running = Self {
            kind,
            process,
            sampler,
            started: Instant::now(),
            startup_requests: VerbCounts::new(),
            startup_by_resource: VerbCounts::new(),
        };
        running.wait_watching(audit).await?;
        Ok(running)
    }

    async fn wait_watching(&mut self, audit: &mut AuditLog) -> Result<(), Error> {
        let want = ["pods", "nodes", "daemonsets"];
        let mut seen = std::collections::BTreeSet::new();
        let start = Instant::now();
        let timeout = Duration::from_secs(120);
        loop {
            let slice = audit.read_new(self.kind.user())?;
            crate::audit::add(&mut self.startup_requests, &slice.verbs);
            crate::audit::add(&mut self.startup_by_resource, &slice.by_resource);
            seen.extend(slice.watched);
            if want.iter().all(|w| seen.contains(*w)) {
                return Ok(());
            }
            self.check_alive()?;
            if start.elapsed() > timeout {
                return Err(Error::ControllerNotReady {
                    controller: self.kind.name().into(),
                    what: format!("{want:?} (saw {seen:?})"),
                    seconds: timeout.as_secs(),
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), Error> {
        match self.process.exited() {
            Some(status) => Err(Error::ControllerExited {
                controller: self.kind.name().into(),
                status: status.to_string(),
                log: self.log(),
            }),
            None => Ok(()),
        }
    }

    pub fn log(&self) -> PathBuf {
        self.process.log().to_path_buf()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The figures of the start-up, from process start until it watched pods, nodes and DaemonSets.
    pub fn startup_stats(&self) -> PhaseStats {
        PhaseStats {
            phase: "start".into(),
            seconds: self.started.elapsed().as_secs_f64(),
            cpu_seconds: self.cpu_total().unwrap_or(0.0),
            peak_rss_bytes: self.sampler.take_peak(),
            requests: self.startup_requests.clone(),
            requests_by_resource: self.startup_by_resource.clone(),
        }
    }

    /// Starts measuring a phase (CPU from now, peak RSS from now).
    pub fn phase(&self, name: &str) -> Phase {
        let _ = self.sampler.take_peak();
        Phase {
            name: name.to_string(),
            cpu: procstat::cpu_seconds(self.pid()).unwrap_or(0.0),
            at: Instant::now(),
        }
    }

    /// Ends a phase: its CPU seconds, peak RSS and the requests the controller sent during it.
    pub fn end(&self, phase: Phase, audit: &mut AuditLog) -> Result<PhaseStats, Error> {
        let cpu = procstat::cpu_seconds(self.pid()).unwrap_or(phase.cpu);
        let slice = audit.read_new(self.kind.user())?;
        Ok(PhaseStats {
            phase: phase.name,
            seconds: phase.at.elapsed().as_secs_f64(),
            cpu_seconds: (cpu - phase.cpu).max(0.0),
            peak_rss_bytes: self.sampler.take_peak(),
            requests: slice.verbs,
            requests_by_resource: slice.by_resource,
        })
    }

    /// VmHWM: the peak RSS since the process started.
    pub fn high_water_mark(&self) -> Option<u64> {
        procstat::status_bytes(self.pid(), "VmHWM")
    }

    /// CPU seconds since the process started.
    pub fn cpu_total(&self) -> Option<f64> {
        procstat::cpu_seconds(self.pid())
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(mut self) {
        self.process.stop(Duration::from_secs(10));
    }
}
