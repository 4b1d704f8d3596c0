//! Where the control-plane binaries are: built by `controlplane/build.sh` into a cache folder outside
//! the repository, keyed by the pinned versions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder holding kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    /// `$EVERYNODE_CONTROLPLANE_BIN` if set, else what `controlplane/build.sh` prints, building what is
    /// missing first (a cold build takes tens of minutes; its progress goes to stderr).
    pub fn locate() -> Result<Self, crate::Error> {
        if let Some(dir) = std::env::var_os("EVERYNODE_CONTROLPLANE_BIN") {
            return Ok(Self {
                dir: PathBuf::from(dir),
            });
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| crate::Error::io(&script, e))?;
        if !out.status.success() {
            return Err(crate::Error::Build(format!(
                "{} failed ({}); its output is above",
                script.display(),
                out.status
            )));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = stdout.lines().last().unwrap_or_default().trim().to_string();
        if dir.is_empty() {
            return Err(crate::Error::Build(format!(
                "{} printed no folder",
                script.display()
            )));
        }
        Ok(Self {
            dir: PathBuf::from(dir),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// kwok's stage definitions, copied beside the binaries by build.sh.
    pub fn kwok_stages(&self) -> PathBuf {
        self.dir.join("../kwok-stages")
    }
}
