//! Command-line flags and client configuration of the `everynode` binary.

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
}

/// Flags of `everynode run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Path to a kubeconfig file. Without it: $KUBECONFIG, then ~/.kube/config, then the in-cluster
    /// service account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Log format: human-readable text or one JSON object per line. The level comes from RUST_LOG
    /// (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How many DaemonSets are synced at the same time (kube-controller-manager's
    /// --concurrent-daemonset-syncs).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub concurrent_daemonset_syncs: u16,

    /// Address of the HTTP server for /metrics (Prometheus text format), /healthz (200 while the
    /// process runs) and /readyz. /readyz is 200 for the leader once its caches have synced and every
    /// DaemonSet has been synced once; a follower (waiting for the lease, caches not started) is
    /// ready as soon as it is waiting, so that a rolling update of the Deployment can proceed.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "HOST:PORT")]
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
    #[arg(long, default_value_t = 20.0, value_name = "QPS")]
    pub kube_api_qps: f32,

    /// Requests allowed at once above --kube-api-qps after an idle period (the bucket size).
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub kube_api_burst: u32,
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

/// Why the client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no cluster configuration found: pass --kubeconfig, set KUBECONFIG, or run inside a cluster ({0})"
    )]
    Infer(kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

impl RunArgs {
    /// The client configuration: `--kubeconfig` if given, else kube-rs's usual inference
    /// ($KUBECONFIG, ~/.kube/config, in-cluster).
    pub async fn client_config(&self) -> Result<kube::Config, ConfigError> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        match &self.kubeconfig {
            Some(path) => {
                let err = |source| ConfigError::Kubeconfig {
                    path: path.clone(),
                    source,
                };
                let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(err)
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|source| ConfigError::Kubeconfig {
                    path: "$KUBECONFIG".into(),
                    source,
                }),
            None => kube::Config::infer().await.map_err(ConfigError::Infer),
        }
    }
}
