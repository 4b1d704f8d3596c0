//! The `everynode` binary: parses flags, sets up logging, serves metrics and health, connects to the
//! API server, waits for the leader lease and runs the controller until SIGTERM or SIGINT (or, as
//! leader, until it loses the lease: then it exits with a non-zero code). `everynode explain` and
//! `everynode status` (and the same binary as `kubectl everynode`) read and explain instead;
//! `everynode pause|resume|freeze|unfreeze|promote|approve|abort` write the DaemonSetRollout.

use everynode::controller::Clients;
use everynode::runtime::cli::{Command, LogFormat, RunArgs};
use everynode::runtime::client::{self, RateLimit};
use everynode::runtime::kubectl_plugin::Invocation;
use everynode::runtime::leader::{self, Election, LeaderConfig};
use everynode::runtime::metrics::Metrics;
use everynode::runtime::readiness::Readiness;
use everynode::runtime::retry::RetryBudget;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::{error, info};

/// Sets up logging to stderr: the level from RUST_LOG (default info; an invalid value is an error),
/// colours only on a terminal and without NO_COLOR.
fn init_logging(format: LogFormat) -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| {
                format!(
                    "RUST_LOG={v:?} is not a log filter such as info or info,everynode=debug: {e}"
                )
            })?
        }
        _ => tracing_subscriber::EnvFilter::new("info"),
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
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
    // The kubeconfig first: a mistake there is reported before anything binds a port.
    let config = args.cluster.client_config().await?;
    let server = config.cluster_url.to_string();
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    everynode::runtime::http::serve(
        args.metrics_bind_address,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    let limit = RateLimit::new(args.kube_api_qps, args.kube_api_burst);
    let client = client::build(
        config.clone(),
        metrics.clone(),
        limit,
        "controller",
        RetryBudget::CONTROLLER,
    )?;
    // The watches get a client and a budget of their own, as kube-controller-manager's informers do.
    let clients = Clients {
        requests: client.clone(),
        watches: client::build(
            config.clone(),
            metrics.clone(),
            limit,
            "watches",
            RetryBudget::CONTROLLER,
        )?,
    };
    let version = tokio::select! {
        v = client.apiserver_version() => v.map_err(|e| client::explain_api_error(&e, &server, &args.cluster.kubeconfig_user()))?,
        _ = &mut shutdown => return Ok(()),
    };
    info!(server = %server, version = %version.git_version, qps = args.kube_api_qps, burst = args.kube_api_burst, "connected to the API server");

    if !args.leader_elect {
        info!("leader election disabled: acting as the controller");
        metrics.set_leader(true);
        everynode::controller::run(clients, &args, metrics, readiness, shutdown).await?;
        info!("stopped");
        return Ok(());
    }

    // The lease has a client of its own, without the client-side rate limit: a controller busy with
    // many requests must not delay its renewals.
    let lease_client = client::build(
        config,
        metrics.clone(),
        None,
        "lease",
        RetryBudget::lease(args.leader_elect_renew_deadline),
    )?;
    let mut election = Election::start(
        lease_client,
        LeaderConfig {
            namespace: args.leader_elect_resource_namespace.clone(),
            name: args.leader_elect_resource_name.clone(),
            identity: leader::default_identity(),
            lease_duration: args.leader_elect_lease_duration,
            renew_deadline: args.leader_elect_renew_deadline,
            retry_period: args.leader_elect_retry_period,
        },
    )
    .await?;
    metrics.set_leader(false);
    readiness.following();
    tokio::select! {
        acquired = election.acquired() => acquired?,
        _ = &mut shutdown => {
            election.release().await;
            info!("stopped");
            return Ok(());
        }
    }
    metrics.set_leader(true);
    let controller =
        everynode::controller::run(clients, &args, metrics.clone(), readiness, &mut shutdown);
    tokio::select! {
        result = controller => {
            result?;
            election.release().await;
            info!("stopped");
            Ok(())
        }
        lost = election.lost() => {
            // Stop acting at once: the controller future is dropped with its in-flight syncs.
            metrics.set_leader(false);
            Err(Box::new(lost))
        }
    }
}

/// mimalloc instead of glibc's malloc. Each sync builds and drops views of every node and pod of its
/// DaemonSet (thousands of small allocations); with glibc's malloc that was about a fifth of
/// everynode's CPU (issue 14). Built without transparent huge pages (`no_thp`): mimalloc would
/// otherwise ask for them on its arenas, and each touched 2 MiB page counts whole in the RSS. Its
/// version 2 (`v2`) returns freed memory to the OS after 10 to 100 ms, version 3 after a second (see
/// Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // As `kubectl-everynode` (argv[0]) the binary is the kubectl plugin: `kubectl everynode ...`.
    let invocation = Invocation::from_argv0(std::env::args_os().next().as_deref());
    let cli = match invocation.parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Run(args) => {
            if let Err(e) = args.validate().and_then(|()| init_logging(args.log_format)) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status(args) => ExitCode::from(everynode::inspect::status::run(args).await),
        Command::Crd => match everynode::api::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot render the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Explain(args) => {
            if let Err(e) = init_operator_logging() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            print_result(everynode::inspect::explain::run(&args).await)
        }
        other => {
            let Some((command, target)) = other.rollout_command() else {
                return ExitCode::from(2);
            };
            if let Err(e) = init_operator_logging() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            print_result(everynode::inspect::control::run(command, target).await)
        }
    }
}

/// The operator commands log nothing unless RUST_LOG asks: their output is for people and scripts.
fn init_operator_logging() -> Result<(), String> {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => init_logging(LogFormat::Text),
        _ => Ok(()),
    }
}

/// An operator command's output on stdout (exit 0), or its error as one line on stderr (exit 1).
fn print_result(result: Result<String, String>) -> ExitCode {
    use std::io::Write;
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
