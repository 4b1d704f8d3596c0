//! Command-line flags and client configuration of the `everynode` binary.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
