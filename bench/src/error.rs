//! What can go wrong while benchmarking, each with what to look at or do about it.

use std::path::PathBuf;

/// An answer that says the API server was too busy or failed (429 or 5xx), so the same request may
/// succeed later.
pub fn server_busy(code: u16) -> bool {
    code == 429 || code >= 500
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("local control plane: {0}")]
    ControlPlane(#[from] controlplane::Error),
    #[error("kubernetes API: {context}: {source}")]
    Kube {
        context: String,
        source: kube::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the everynode binary {0} does not exist: build it first (`cargo build --release`, which `make bench` does)"
    )]
    NoEverynode(PathBuf),
    #[error("{controller} did not start watching {what} within {seconds}s; its log: {log}")]
    ControllerNotReady {
        controller: String,
        what: String,
        seconds: u64,
        log: PathBuf,
    },
    #[error("{controller} exited during the benchmark ({status}); its log: {log}")]
    ControllerExited {
        controller: String,
        status: String,
        log: PathBuf,
    },
    #[error("timed out after {seconds}s waiting for {what}; last state: {state}")]
    Timeout {
        what: String,
        seconds: u64,
        state: String,
    },
    #[error(
        "no TrueType font for the charts at {0}: install Debian's fonts-dejavu-core (scripts/ensure-tools.sh does) or set EVERYNODE_BENCH_FONT to a .ttf file"
    )]
    Font(PathBuf),
    #[error("cannot draw chart {path}: {message}")]
    Chart { path: PathBuf, message: String },
    #[error("bad argument: {0} (see `everynode-bench --help`)")]
    Usage(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A Kubernetes API error with what the benchmark was doing.
    pub fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }
}
