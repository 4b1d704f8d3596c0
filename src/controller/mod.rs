//! The imperative shell: watches the cluster, keeps caches, calls the core and applies its plans.

use crate::cli::RunArgs;
use std::future::Future;

/// Errors of the shell, with messages an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(client: kube::Client, args: &RunArgs, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let _ = (client, args);
    shutdown.await;
    Ok(())
}
