//! Operator commands that read the cluster and say why: `everynode explain` and `everynode status`
//! (also `kubectl everynode explain|status` when the binary is installed as `kubectl-everynode`).
//! They only get and list, with the user's kubeconfig, and explain with the controller's own core.
//!
//! - [`control`]: `everynode pause|resume|freeze|unfreeze|promote|approve|abort`, the only
//!   commands here that write (the `DaemonSetRollout` of the same name);
//! - [`snapshot`]: reads one DaemonSet with its nodes, pods and revisions;
//! - [`connect`]: the client from the user's kubeconfig, the namespace, errors as one sentence;
//! - [`explain`]: `everynode explain`, rendered by a pure function;
//! - [`status`]: `everynode status`, the rollout status that cannot hang;
//! - [`table`]: kubectl-style aligned tables.

pub mod connect;
pub mod control;
pub mod explain;
pub mod snapshot;
pub mod status;
pub mod table;

/// Why a command could not read what it needs: one sentence each.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("namespace {0:?} not found")]
    NamespaceNotFound(String),
    #[error("daemonset {name:?} not found in namespace {namespace:?}")]
    DaemonSetNotFound { namespace: String, name: String },
    #[error("node {0:?} not found")]
    NodeNotFound(String),
    #[error("the DaemonSet's selector cannot be used: {0}")]
    InvalidSelector(String),
    #[error("cannot read the DaemonSet: {0}")]
    Decode(String),
    #[error("{0}")]
    Api(kube::Error),
    #[error("cannot write the output: {0}")]
    Output(String),
}

impl InspectError {
    pub fn api(e: kube::Error) -> Self {
        InspectError::Api(e)
    }

    /// Whether trying again may help (`status --watch` keeps trying on these).
    pub fn is_transient(&self) -> bool {
        match self {
            InspectError::Api(kube::Error::Api(s)) => s.code == 429 || s.code >= 500,
            InspectError::Api(_) => true,
            _ => false,
        }
    }
}
