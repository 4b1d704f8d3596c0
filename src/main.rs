//! The `everynode` binary: parses flags, sets up logging, connects to the API server and runs the
//! controller until SIGTERM or SIGINT.

use clap::Parser;
use everynode::cli::{Cli, Command, LogFormat, RunArgs};
use std::process::ExitCode;
use tracing::{error, info};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = term => info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received, shutting down"),
    }
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.client_config().await?;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| format!("cannot reach the API server at {server}: {e}"))?;
    info!(server = %server, version = %version.git_version, "connected to the API server");
    everynode::controller::run(client, &args, shutdown_signal()).await?;
    info!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            init_logging(args.log_format);
            match run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
