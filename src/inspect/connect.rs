//! How the operator commands reach the cluster: a client from the user's kubeconfig with a timeout
//! on every request, the namespace to look in, and why a read failed as one sentence.

use super::InspectError;
use crate::runtime::cli::{KubeconfigArgs, TargetArgs};
use crate::runtime::client;
use crate::runtime::metrics::Metrics;
use crate::runtime::retry::RetryBudget;
use std::sync::Arc;
use std::time::Duration;

/// The operator commands' requests: a few attempts within 30 s, each answered within 20 s (a
/// person is waiting; `status --watch` tries again on its own).
pub const BUDGET: RetryBudget = RetryBudget {
    max_attempts: 4,
    total: Duration::from_secs(30),
    attempt_timeout: Duration::from_secs(20),
};

/// A client for one operator command, and where it looks.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// `-n`, else the kubeconfig context's namespace, else `default`.
    pub namespace: String,
    /// The API server's URL, for error sentences.
    pub server: String,
    cluster: KubeconfigArgs,
}

impl Connection {
    /// Reads the kubeconfig `target` names and builds the client (no request yet). The error is one
    /// sentence naming what to fix.
    pub async fn open(target: &TargetArgs) -> Result<Self, String> {
        let config = target
            .cluster
            .client_config()
            .await
            .map_err(|e| e.to_string())?;
        let namespace = target
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = client::build(config, Arc::new(Metrics::new()), None, "inspect", BUDGET)
            .map_err(|e| format!("cannot build a Kubernetes client: {e}"))?;
        Ok(Connection {
            client,
            namespace,
            server,
            cluster: target.cluster.clone(),
        })
    }

    /// `e` as one sentence: not-found errors as they are, API errors naming the server (and, for
    /// 401, the kubeconfig's user; for 403, the permissions the commands need).
    pub fn sentence(&self, e: &InspectError) -> String {
        match e {
            InspectError::Api(kube::Error::Api(status)) if status.code == 403 => format!(
                "the API server at {} forbids it (403 Forbidden): {}; explain and status need get \
                 and list on daemonsets, controllerrevisions and pods in the namespace, and list on \
                 nodes",
                self.server, status.message
            ),
            InspectError::Api(api) => {
                client::explain_api_error(api, &self.server, &self.cluster.kubeconfig_user())
            }
            other => other.to_string(),
        }
    }
}
