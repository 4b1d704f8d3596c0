//! The kubectl plugin's packaging (docs/kubectl-plugin.md): the archive `scripts/plugin-archive.sh`
//! makes, the Krew manifest `scripts/krew-manifest.sh` computes from it, the committed
//! `plugins/everynode.yaml`, and the image's `kubectl-everynode` link. No cluster needed; the binary
//! is this build's.

use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The plugin's version: the crate's, with a `v`.
fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// A fresh folder under the target's tmp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("kubectl-plugin")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This build's binary without its debug information (a tenth of the size: the archives are made
/// and hashed in seconds), made once per test binary.
fn binary() -> &'static Path {
    static STRIPPED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    STRIPPED.get_or_init(|| {
        let path = scratch("binary").join("everynode");
        ok(Command::new("strip")
            .arg("-o")
            .arg(&path)
            .arg(env!("CARGO_BIN_EXE_everynode")));
        path
    })
}

/// `scripts/plugin-archive.sh` on this build's binary for linux/amd64 into `out`: the archive's path.
fn archive(out: &Path) -> PathBuf {
    let printed = ok(Command::new(repo().join("scripts/plugin-archive.sh"))
        .arg(version())
        .arg(binary())
        .arg(out)
        .args(["linux", "amd64"]));
    let path = PathBuf::from(printed.trim());
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(format!("kubectl-everynode_{}_linux_amd64.tar.gz", version()).as_str())
    );
    path
}

fn sha256(path: &Path) -> String {
    let out = ok(Command::new("sha256sum").arg(path));
    out.split(' ').next().unwrap_or_default().to_string()
}

/// `scripts/krew-manifest.sh VERSION URL ARCHIVE` with `HOMEPAGE`.
fn manifest_command(homepage: &str, url: &str, archive: &Path) -> Command {
    let mut cmd = Command::new(repo().join("scripts/krew-manifest.sh"));
    cmd.env("HOMEPAGE", homepage)
        .arg(version())
        .arg(url)
        .arg(archive);
    cmd
}

/// The Makefile's PLUGIN_HOMEPAGE and PLUGIN_RELEASE_URL, as make computes them.
fn makefile_urls() -> (String, String) {
    use std::io::Write;
    let mut child = Command::new("make")
        .current_dir(repo())
        .args([
            "-s",
            "--no-print-directory",
            "-f",
            "Makefile",
            "-f",
            "-",
            "plugin-urls",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run make: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(b"plugin-urls:\n\t@echo $(PLUGIN_HOMEPAGE)\n\t@echo $(PLUGIN_RELEASE_URL)\n")
            .unwrap_or_else(|e| panic!("write to make: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("make: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().map(str::to_string);
    match (lines.next(), lines.next()) {
        (Some(home), Some(url)) if out.status.success() => (home, url),
        _ => panic!("make printed {text:?}"),
    }
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    let mut at = v;
    for key in path.split('.') {
        at = match key.parse::<usize>() {
            Ok(i) => &at[i],
            Err(_) => &at[key],
        };
    }
    at.as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {v:?}"))
}

/// Krew's own validation of a plugin manifest (sigs.k8s.io/krew internal/index/validation
/// `ValidatePlugin`), for the manifest named `name`.
fn check_krew_rules(name: &str, m: &Value) {
    assert_eq!(
        text(m, "apiVersion"),
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(text(m, "kind"), "Plugin");
    assert_eq!(text(m, "metadata.name"), name, "named as its file");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "safe plugin name {name}"
    );
    let short = text(m, "spec.shortDescription");
    assert!(!short.is_empty() && !short.contains(['\r', '\n']));
    assert!(!text(m, "spec.description").is_empty());
    assert!(text(m, "spec.homepage").starts_with("https://"));
    let version = text(m, "spec.version");
    let semver = version
        .strip_prefix('v')
        .unwrap_or_else(|| panic!("{version} has no v"));
    let parts: Vec<&str> = semver.split('.').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u64>().is_ok()),
        "{version} is vMAJOR.MINOR.PATCH"
    );
    let platforms = m["spec"]["platforms"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    assert!(!platforms.is_empty(), "at least one platform");
    for p in &platforms {
        let uri = text(p, "uri");
        assert!(uri.starts_with("https://"), "{uri}");
        let sha = text(p, "sha256");
        assert!(
            sha.len() == 64 && sha.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "sha256 {sha:?} is 64 lowercase hex digits"
        );
        assert_eq!(text(p, "bin"), "kubectl-everynode");
        let labels = p["selector"]["matchLabels"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        assert!(!labels.is_empty(), "a selector");
        for (k, _) in &labels {
            assert!(
                matches!(k.as_str(), Some("os" | "arch")),
                "selector key {k:?}: Krew supports os and arch"
            );
        }
        let name = format!(
            "kubectl-everynode_{version}_{}_{}.tar.gz",
            text(p, "selector.matchLabels.os"),
            text(p, "selector.matchLabels.arch")
        );
        assert!(uri.ends_with(&format!("/{name}")), "{uri} names {name}");
        assert!(p.get("files").is_none(), "the whole archive is installed");
    }
}

#[test]
fn the_archive_holds_the_plugin_and_license_and_is_reproducible() {
    let dir = scratch("archive");
    let first = archive(&dir.join("a"));
    let second = archive(&dir.join("b"));
    assert_eq!(
        sha256(&first),
        sha256(&second),
        "the same binary gives the same archive"
    );
    let listing = ok(Command::new("tar").arg("-tvzf").arg(&first));
    let entries: Vec<(String, String)> = listing
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (
                fields.last().copied().unwrap_or_default().to_string(),
                format!("{} {}", fields[0], fields[1]),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("LICENSE".to_string(), "-rw-r--r-- 0/0".to_string()),
            (
                "kubectl-everynode".to_string(),
                "-rwxr-xr-x 0/0".to_string()
            ),
        ],
        "{listing}"
    );
    let x = dir.join("x");
    std::fs::create_dir_all(&x).unwrap_or_else(|e| panic!("{e}"));
    ok(Command::new("tar")
        .arg("-xzf")
        .arg(&first)
        .arg("-C")
        .arg(&x));
    assert_eq!(
        std::fs::read(x.join("LICENSE")).ok(),
        std::fs::read(repo().join("LICENSE")).ok()
    );
    let help = ok(Command::new(x.join("kubectl-everynode")).arg("--help"));
    assert!(
        help.contains("Usage: kubectl everynode <COMMAND>"),
        "{help}"
    );
    assert!(help.contains("explain"), "{help}");
}

#[test]
fn the_manifest_is_computed_from_the_archive_and_passes_krews_rules() {
    let dir = scratch("manifest");
    let path = archive(&dir);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let url = format!("https://example.org/releases/{}/{name}", version());
    let yaml = ok(&mut manifest_command(
        "https://example.org/everynode",
        &url,
        &path,
    ));
    let m: Value = serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"));
    check_krew_rules("everynode", &m);
    assert_eq!(text(&m, "spec.version"), version());
    assert_eq!(text(&m, "spec.homepage"), "https://example.org/everynode");
    let platform = &m["spec"]["platforms"][0];
    assert_eq!(text(platform, "uri"), url);
    assert_eq!(
        text(platform, "sha256"),
        sha256(&path),
        "the archive's own sha256"
    );
    assert_eq!(text(platform, "selector.matchLabels.os"), "linux");
    assert_eq!(text(platform, "selector.matchLabels.arch"), "amd64");

    // It names only archives that exist, at URLs that end in their names, with a homepage.
    let refused = [
        run(&mut manifest_command(
            "https://example.org/everynode",
            &url,
            &dir.join("kubectl-everynode_v9.9.9_linux_amd64.tar.gz"),
        )),
        run(&mut manifest_command(
            "https://example.org/everynode",
            "https://example.org/releases/other.tar.gz",
            &path,
        )),
        run(&mut manifest_command("", &url, &path)),
    ];
    for out in refused {
        assert!(!out.status.success(), "{out:?}");
        assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("sha256"));
    }
}

#[test]
fn the_committed_manifest_is_the_scripts_output_for_this_version() {
    let committed_path = repo().join("plugins/everynode.yaml");
    let committed = std::fs::read_to_string(&committed_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", committed_path.display()));
    let m: Value =
        serde_yaml_ng::from_str(&committed).unwrap_or_else(|e| panic!("{e}:\n{committed}"));
    check_krew_rules("everynode", &m);
    assert_eq!(text(&m, "spec.version"), version(), "the crate's version");

    // Regenerated from an archive of the same name with the Makefile's URLs, it is the same text
    // but for the sha256 (the committed one is the release archive's, built by `make
    // plugin-manifest`).
    let (homepage, release_url) = makefile_urls();
    assert_eq!(text(&m, "spec.homepage"), homepage);
    let dir = scratch("committed");
    let path = archive(&dir);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let regenerated = ok(&mut manifest_command(
        &homepage,
        &format!("{release_url}/{name}"),
        &path,
    ));
    let mask = |s: &str| {
        s.lines()
            .map(|l| match l.split_once("sha256: ") {
                Some((indent, _)) => format!("{indent}sha256: <sha256>"),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        mask(&committed),
        mask(&regenerated),
        "plugins/everynode.yaml is not what `make plugin-manifest` writes: run it"
    );
}

#[test]
fn the_image_links_kubectl_everynode_to_everynode() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))
        .unwrap_or_else(|e| panic!("read Dockerfile: {e}"));
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ln -s everynode /out/kubectl-everynode")),
        "the build stage makes the link next to the binary"
    );
    assert!(
        lines.contains(&"COPY --from=build /out/ /usr/local/bin/"),
        "the final stage copies both (a folder copy keeps the link a link)"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("install -D -m 0755 -s target/release/everynode /out/everynode")),
        "the binary itself is in /out"
    );
}
