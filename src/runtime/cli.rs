//! Command-line flags and client configuration of the `everynode` binary.

use crate::core::create_pacing::CreatePacing;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// everynode: a Kubernetes DaemonSet controller that keeps exactly one pod on every node that should
/// run one, as kube-controller-manager's DaemonSet controller does.
#[derive(Debug, Parser)]
#[command(name = "everynode", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller until SIGTERM or SIGINT.
    Run(RunArgs),
    /// Say why each node has, lacks or waits for a DaemonSet's pod: one row per node, then a
    /// one-line summary. Reads only (get and list), with your kubeconfig.
    Explain(ExplainArgs),
    /// Wait for a DaemonSet's rollout to finish, and say why when it cannot (a rollout status that
    /// cannot hang).
    #[command(after_help = crate::inspect::status::EXIT_CODES)]
    Status(crate::inspect::status::StatusArgs),
    /// Print the DaemonSetRollout CustomResourceDefinition (everynode.io/v1alpha1) as YAML, e.g.
    /// `everynode crd | kubectl apply --server-side -f -`. Reads no kubeconfig.
    Crd,
    /// Pause the DaemonSet's rollout: no old pod is replaced (nodes without a pod still get one).
    /// Creates the DaemonSetRollout of the same name when there is none.
    Pause(TargetArgs),
    /// Resume a paused rollout.
    Resume(TargetArgs),
    /// Freeze the DaemonSet: nothing is created or deleted for it until unfreeze. Creates the
    /// DaemonSetRollout of the same name when there is none.
    Freeze(TargetArgs),
    /// Unfreeze a frozen DaemonSet.
    Unfreeze(TargetArgs),
    /// Skip the bakes (and the canary approval) of the current update revision up to the current
    /// step.
    Promote(TargetArgs),
    /// Approve what waits: a Manual canary, deletions held by the mass-deletion guard, or a retry
    /// of a Failed rollout. Errors when nothing waits.
    Approve(TargetArgs),
    /// Roll the current update revision back now, to the last complete revision.
    Abort(TargetArgs),
}

impl Command {
    /// Whether the command is for an operator (`explain`, `status`, `crd` and the rollout
    /// commands): the only commands `kubectl everynode` runs. `run` starts the controller and is
    /// not one.
    pub fn is_operator_command(&self) -> bool {
        match self {
            Command::Run(_) => false,
            Command::Explain(_) | Command::Status(_) | Command::Crd => true,
            Command::Pause(_)
            | Command::Resume(_)
            | Command::Freeze(_)
            | Command::Unfreeze(_)
            | Command::Promote(_)
            | Command::Approve(_)
            | Command::Abort(_) => true,
        }
    }

    /// The rollout command and its target, for `pause|resume|freeze|unfreeze|promote|approve|abort`.
    pub fn rollout_command(
        &self,
    ) -> Option<(crate::core::rollout::commands::RolloutCommand, &TargetArgs)> {
        use crate::core::rollout::commands::RolloutCommand as C;
        Some(match self {
            Command::Pause(t) => (C::Pause, t),
            Command::Resume(t) => (C::Resume, t),
            Command::Freeze(t) => (C::Freeze, t),
            Command::Unfreeze(t) => (C::Unfreeze, t),
            Command::Promote(t) => (C::Promote, t),
            Command::Approve(t) => (C::Approve, t),
            Command::Abort(t) => (C::Abort, t),
            Command::Run(_) | Command::Explain(_) | Command::Status(_) | Command::Crd => {
                return None;
            }
        })
    }
}

/// The DaemonSet an operator command is about, and the cluster it is in: the arguments `explain`
/// and `status` share.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub cluster: KubeconfigArgs,

    /// The DaemonSet's namespace (default: the kubeconfig context's namespace, else `default`).
    #[arg(short = 'n', long, value_name = "NAMESPACE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub namespace: Option<String>,

    /// The DaemonSet: daemonset/NAME (also ds/NAME) or NAME.
    #[arg(value_name = "daemonset/NAME", value_parser = crate::inspect::snapshot::parse_target)]
    pub daemonset: String,
}

/// Flags of `everynode explain`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Show only this node's row (the summary still counts every node).
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,

    /// Output format: `wide` adds whether the pod is up to date, its phase, Ready since, restarts
    /// and the reason's class; `json` gives the same data for scripts. Default: a table.
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

/// `-o` of the operator commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Wide,
    Json,
}

/// Which cluster to talk to: the kubeconfig flags every command shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeconfigArgs {
    /// Path to a kubeconfig file. Without it: $KUBECONFIG, then ~/.kube/config, then the in-cluster
    /// service account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Flags of `everynode run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub cluster: KubeconfigArgs,

    /// Log format: human-readable text or one JSON object per line. The level comes from RUST_LOG
    /// (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How many DaemonSets are synced at the same time (kube-controller-manager's
    /// --concurrent-daemonset-syncs).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_daemonset_syncs: u16,

    /// Address of the HTTP server for /metrics (Prometheus text format), /healthz (200 while the
    /// process runs) and /readyz. /readyz is 200 for the leader once its caches have synced and every
    /// DaemonSet has been synced once; a follower (waiting for the lease, caches not started) is
    /// ready as soon as it is waiting, so that a rolling update of the Deployment can proceed.
    /// `:8080` listens on every address, as Kubernetes components accept it.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "HOST:PORT", value_parser = parse_bind_address)]
    pub metrics_bind_address: SocketAddr,

    /// Elect a leader on a coordination.k8s.io/v1 Lease so that only one replica acts; the others
    /// wait and take over within the lease duration when it dies. A leader that loses the lease exits
    /// with a non-zero code. --leader-elect=false runs the controller at once (one replica only).
    #[arg(
        long,
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub leader_elect: bool,

    /// How long followers wait after the last renewal before taking the lease over (whole seconds,
    /// e.g. 15s).
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps acting without being able to confirm its lease before it gives up
    /// and exits (whole seconds, less than the lease duration).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub leader_elect_renew_deadline: Duration,

    /// How often the leader renews the lease (and checks it still holds it); whole seconds, at least
    /// 1s, less than the renew deadline.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub leader_elect_retry_period: Duration,

    /// Namespace of the leader Lease.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "kube-system",
        value_name = "NAMESPACE"
    )]
    pub leader_elect_resource_namespace: String,

    /// Name of the leader Lease. The holder identity is $POD_NAME (else the host name) plus a random
    /// suffix.
    #[arg(long, default_value = "everynode", value_name = "NAME")]
    pub leader_elect_resource_name: String,

    /// Client-side limit of API requests per second, as kube-controller-manager's --kube-api-qps:
    /// one token bucket for the controller's requests (creates, deletes, patches, events) and
    /// another, the same size, for the lists and watches that feed its caches (kube-controller-
    /// manager's shared informers have a client of their own too). 0 disables the client-side
    /// limit (the API server's priority and fairness still applies). The leader-election requests
    /// use a client of their own without this limit, so that a busy controller cannot lose its
    /// lease.
    #[arg(long, default_value_t = 20.0, value_name = "QPS", value_parser = parse_qps)]
    pub kube_api_qps: f32,

    /// Requests allowed at once above --kube-api-qps after an idle period (the bucket size).
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub kube_api_burst: u32,

    /// How a sync paces its pod creates. `fast` ([difference], the default): upstream's slow-start
    /// batches (1, 2, 4, ..., restarting every 250 creates, stopping at the first batch with a
    /// failure) chained over every pod the sync needs, counted from the responses instead of
    /// waiting for the watch after each 250: the same create attempts as upstream, so never more
    /// failing ones, without its round trips. `upstream`: at most 250 creates per sync, as
    /// kube-controller-manager.
    #[arg(long, default_value = "fast", value_name = "PACING", value_parser = parse_create_pacing)]
    pub create_pacing: CreatePacing,

    /// The least time between two status writes of one DaemonSet that change only its counters
    /// ([difference]): a sync within it holds its write back and syncs again when it ends. A new
    /// generation, the first change after a quiet interval and a settled DaemonSet are written at
    /// once. A DaemonSet that wants more than 2500 pods waits longer in proportion (5000: twice
    /// the interval). The same interval paces syncs ([difference]): an update that changes only a
    /// pod's status (readiness as it was, or any once nothing is left to create, delete or replace)
    /// waits for the DaemonSet's next sync, at most one interval after its last; a readiness change
    /// mid-rollout waits 0.1 ms per node (5000 nodes: 0.5 s). `0s` writes every
    /// change at once and syncs on every pod event, as kube-controller-manager.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub status_write_interval: Duration,
}

/// Parses `--create-pacing`: `fast` or `upstream`.
pub fn parse_create_pacing(s: &str) -> Result<CreatePacing, String> {
    match s {
        "fast" => Ok(CreatePacing::Fast),
        "upstream" => Ok(CreatePacing::Upstream),
        _ => Err(format!("{s:?} is not a create pacing: fast or upstream")),
    }
}

/// Parses `--metrics-bind-address`: `HOST:PORT` with an IP or a host name (`localhost:8080`), or
/// `:PORT` for every address (`0.0.0.0`), as Kubernetes components accept it.
pub fn parse_bind_address(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    };
    if let Ok(addr) = full.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (_, port) = full.rsplit_once(':').ok_or_else(|| {
        format!("{s:?} is not HOST:PORT or :PORT (for example :8080 or 127.0.0.1:8080)")
    })?;
    port.parse::<u16>()
        .map_err(|_| format!("{s:?}: the port {port:?} is not a number from 0 to 65535"))?;
    full.to_socket_addrs()
        .map_err(|e| format!("{s:?}: cannot resolve the host: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?}: the host has no address"))
}

/// Parses `--kube-api-qps`: a number, 0 or more (0: no client-side limit).
pub fn parse_qps(s: &str) -> Result<f32, String> {
    let qps: f32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of requests per second"))?;
    if qps.is_finite() && qps >= 0.0 {
        Ok(qps)
    } else {
        Err(format!("{s:?} must be 0 (no limit) or more"))
    }
}

/// Parses a duration such as `15s`, `1m30s` or `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: k8s_openapi::jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 15s or 1m30s: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("{s:?} must not be negative"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the client could not be configured: one sentence each, naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the kubeconfig {} does not exist{hint}", path.display())]
    MissingFile { path: PathBuf, hint: &'static str },
    #[error("cannot use the kubeconfig {}: {reason}", path.display())]
    Kubeconfig { path: PathBuf, reason: String },
    #[error("the context {context:?} is not in the kubeconfig {}; its contexts: {}", path.display(), if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownContext {
        context: String,
        path: PathBuf,
        known: Vec<String>,
    },
    #[error(
        "no cluster configuration found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run inside a cluster ({0})"
    )]
    Infer(String),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The first kubeconfig file `$KUBECONFIG` names (or `~/.kube/config`), if any.
fn default_kubeconfig() -> Option<(PathBuf, &'static str)> {
    if let Some(v) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let first = std::env::split_paths(&v).next()?;
        return Some((first, " (named by KUBECONFIG)"));
    }
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".kube").join("config");
    path.exists().then_some((path, ""))
}

/// The kubeconfig error's chain as one line (kube's messages nest the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl RunArgs {
    /// Checks what one flag's parser cannot: the leader-election timings against each other. Runs
    /// before anything binds a port or connects.
    pub fn validate(&self) -> Result<(), String> {
        if self.leader_elect {
            crate::runtime::leader::lease_params(
                self.leader_elect_lease_duration,
                self.leader_elect_renew_deadline,
                self.leader_elect_retry_period,
            )
            .map_err(|e| {
                format!(
                    "invalid leader election timing: {e}; need --leader-elect-lease-duration > \
                     --leader-elect-renew-deadline > --leader-elect-retry-period >= 1s, in whole seconds"
                )
            })?;
        }
        if self.kube_api_qps > 0.0 && self.kube_api_burst == 0 {
            return Err(
                "--kube-api-burst must be at least 1 when --kube-api-qps is above 0".into(),
            );
        }
        Ok(())
    }
}

impl KubeconfigArgs {
    /// The user the kubeconfig's context names (for error messages), or `in-cluster`.
    pub fn kubeconfig_user(&self) -> String {
        let path = self
            .kubeconfig
            .clone()
            .or_else(|| default_kubeconfig().map(|(p, _)| p));
        let Some(kc) = path.and_then(|p| kube::config::Kubeconfig::read_from(p).ok()) else {
            return "in-cluster service account".into();
        };
        let context = self.context.clone().or(kc.current_context.clone());
        kc.contexts
            .iter()
            .find(|c| Some(&c.name) == context.as_ref())
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.user.clone())
            .unwrap_or_default()
    }

    /// The client configuration: `--kubeconfig` if given, else kube-rs's usual inference
    /// ($KUBECONFIG, ~/.kube/config, in-cluster).
    pub async fn client_config(&self) -> Result<kube::Config, ConfigError> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let (path, hint) = match (&self.kubeconfig, default_kubeconfig()) {
            (Some(path), _) => (path.clone(), ""),
            (None, Some(found)) => found,
            (None, None) if self.context.is_none() => {
                return kube::Config::infer()
                    .await
                    .map_err(|e| ConfigError::Infer(chain(&e)));
            }
            (None, None) => {
                return Err(ConfigError::Infer(
                    "--context needs a kubeconfig".to_string(),
                ));
            }
        };
        if !path.exists() {
            return Err(ConfigError::MissingFile { path, hint });
        }
        let kc =
            kube::config::Kubeconfig::read_from(&path).map_err(|e| ConfigError::Kubeconfig {
                path: path.clone(),
                reason: chain(&e),
            })?;
        if let Some(context) = &self.context
            && !kc.contexts.iter().any(|c| &c.name == context)
        {
            return Err(ConfigError::UnknownContext {
                context: context.clone(),
                known: kc.contexts.iter().map(|c| c.name.clone()).collect(),
                path,
            });
        }
        kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| ConfigError::Kubeconfig {
                path,
                reason: chain(&e),
            })
    }
}
