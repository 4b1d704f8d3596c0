//! The tools `tools/build.sh` builds from Go modules into the cache (helm, actionlint, prometheus,
//! promtool): built on first use, a missing tool fails the test, it is never skipped. Standalone, so
//! that test binaries without the control-plane harness (`tests/shipping.rs`) can include it by path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds `names` with `tools/build.sh` if they are not cached yet and returns each binary's path.
/// Progress of a cold build goes to stderr, straight to the terminal.
pub fn build(names: &[&'static str]) -> BTreeMap<&'static str, PathBuf> {
    let script = repo().join("tools/build.sh");
    let out = Command::new(&script)
        .args(names)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): {names:?} are needed for this test; see its output above",
        script.display(),
        out.status
    );
    let dirs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(dirs.len(), names.len(), "tools/build.sh printed {dirs:?}");
    names
        .iter()
        .zip(dirs)
        .map(|(name, dir)| {
            let bin = dir.join(name);
            assert!(
                bin.is_file(),
                "{} is missing after tools/build.sh",
                bin.display()
            );
            (*name, bin)
        })
        .collect()
}
