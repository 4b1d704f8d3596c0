//! The local control plane itself: fake nodes become Ready through kwok, kube-scheduler binds pods to
//! them and kwok drives the pods to Running and Ready; the built binaries report the pinned version.

mod support;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::time::Duration;
use support::{TestEnv, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn fake_node_becomes_ready_and_a_scheduled_pod_runs_on_it() {
    let env = TestEnv::new("cp-node-pod").await;
    let node = env.add_node("n1", &[], vec![]).await;
    env.wait_node_ready(&node).await;

    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("probe".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                ..Default::default()
            }],
            node_selector: Some([(env.node_label(), "true".to_string())].into()),
            tolerations: Some(vec![Toleration {
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod: {e}"));

    let bound = wait_for(
        "the pod to be bound, Running and Ready",
        Duration::from_secs(90),
        || async {
            let p = pods.get("probe").await.map_err(|e| e.to_string())?;
            let node_name = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let status = p.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            match (node_name, status.phase.as_deref(), ready) {
                (Some(n), Some("Running"), true) => Ok(n),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        bound, node,
        "kube-scheduler bound the pod to the only node matching its selector"
    );
}

#[test]
fn built_apiserver_reports_the_pinned_version() {
    let cp = support::control_plane();
    let pinned = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/controlplane/versions.env"
    ))
    .unwrap_or_default()
    .lines()
    .find_map(|l| l.strip_prefix("K8S_VERSION=").map(str::to_string))
    .expect("controlplane/versions.env has K8S_VERSION");
    let out = std::process::Command::new(cp.binaries().path("kube-apiserver"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run kube-apiserver --version: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("Kubernetes {pinned}")
    );
}
