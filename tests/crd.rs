//! The DaemonSetRollout CRD as shipped (no cluster needed): what `everynode crd` prints is, byte for
//! byte, `charts/everynode/crds/daemonsetrollouts.everynode.io.yaml` (which Helm installs) and
//! `deploy/crds/daemonsetrollouts.everynode.io.yaml` (which `kubectl apply` users and the test
//! control planes install), and it is the first document of the rendered manifests
//! `deploy/everynode.yaml` and `deploy/replace-builtin.yaml`. Any difference names the first differing
//! line and says to run `make crd`.

use std::path::Path;
use std::process::Command;

const CHART_CRD: &str = "charts/everynode/crds/daemonsetrollouts.everynode.io.yaml";
const DEPLOY_CRD: &str = "deploy/crds/daemonsetrollouts.everynode.io.yaml";
const MANIFESTS: [&str; 2] = ["deploy/everynode.yaml", "deploy/replace-builtin.yaml"];

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {path}: {e}; run make crd"))
}

/// `everynode crd`'s stdout.
fn generated() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_everynode"))
        .arg("crd")
        // It reads no kubeconfig: a broken one must not matter.
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap_or_else(|e| panic!("run everynode crd: {e}"));
    assert!(
        out.status.success(),
        "everynode crd failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("everynode crd printed non-UTF-8: {e}"))
}

/// `None` when equal, else the first line where `got` (from `got_name`) differs from `want`.
fn first_difference(want_name: &str, want: &str, got_name: &str, got: &str) -> Option<String> {
    if want == got {
        return None;
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.split('\n').collect(), got.split('\n').collect());
    let line = (0..w.len().max(g.len()))
        .find(|&i| w.get(i) != g.get(i))
        .unwrap_or(0);
    let show = |l: Option<&&str>| l.map_or("<end of file>".to_string(), |l| format!("{l:?}"));
    Some(format!(
        "{got_name} differs from {want_name} at line {}:\n  {want_name}: {}\n  {got_name}: {}\nrun make crd",
        line + 1,
        show(w.get(line)),
        show(g.get(line)),
    ))
}

fn assert_same(want_name: &str, want: &str, got_name: &str, got: &str) {
    if let Some(d) = first_difference(want_name, want, got_name, got) {
        panic!("{d}");
    }
}

/// The first YAML document of a rendered manifest: after its header comment (up to the first blank
/// line, see scripts/render-manifests.sh), up to the first `---` line, with its final newline.
fn first_document(path: &str, text: &str) -> String {
    let (_, body) = text
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("{path} has no header comment ending in a blank line"));
    let doc = body.split_once("\n---\n").map_or(body, |(first, _)| first);
    format!("{doc}\n")
}

#[test]
fn generated_crd_is_the_charts_file() {
    assert_same("everynode crd", &generated(), CHART_CRD, &read(CHART_CRD));
}

#[test]
fn deploy_crd_is_the_charts_file() {
    assert_same(CHART_CRD, &read(CHART_CRD), DEPLOY_CRD, &read(DEPLOY_CRD));
}

#[test]
fn rendered_manifests_start_with_the_crd() {
    let crd = read(CHART_CRD);
    for path in MANIFESTS {
        let doc = first_document(path, &read(path));
        assert_same(
            CHART_CRD,
            &crd,
            &format!("the first document of {path}"),
            &doc,
        );
    }
}

#[test]
fn a_difference_names_its_line_and_the_fix() {
    let d = first_difference("a", "x\ny\nz\n", "b", "x\ny2\nz\n").unwrap_or_default();
    assert!(d.contains("line 2"), "{d}");
    assert!(d.contains("\"y\"") && d.contains("\"y2\""), "{d}");
    assert!(d.ends_with("run make crd"), "{d}");
    let d = first_difference("a", "x", "b", "x\ny").unwrap_or_default();
    assert!(d.contains("<end of file>"), "{d}");
    assert_eq!(first_difference("a", "x", "b", "x"), None);
}
