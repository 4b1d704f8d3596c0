//! A fresh namespace per turn: created with its `default` ServiceAccount in place, emptied of pods
//! and deleted afterwards.

use crate::error::Error;
use crate::progress;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::time::{Duration, Instant};

/// Creates `name` (deleting a leftover of an earlier run first) and waits for its ServiceAccount.
pub async fn create(client: &kube::Client, name: &str) -> Result<(), Error> {
    delete(client, name).await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    nss.create(&PostParams::default(), &ns)
        .await
        .map_err(Error::kube(format!("create namespace {name}")))?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let start = Instant::now();
    while sas
        .get_opt("default")
        .await
        .map_err(Error::kube(format!("get ServiceAccount {name}/default")))?
        .is_none()
    {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(Error::Timeout {
                what: format!("ServiceAccount {name}/default"),
                seconds: 60,
                state: "absent (is kube-controller-manager's serviceaccount controller running?)"
                    .into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Deletes every pod of the namespace at once (grace period 0) and waits until none is left.
pub async fn delete_pods(client: &kube::Client, name: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), name);
    let start = Instant::now();
    loop {
        let left = pods
            .list_metadata(&ListParams::default())
            .await
            .map_err(Error::kube(format!("list pods of {name}")))?
            .items
            .len();
        if left == 0 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(300) {
            return Err(Error::Timeout {
                what: format!("the pods of {name} to be gone"),
                seconds: 300,
                state: format!("{left} left"),
            });
        }
        pods.delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await
        .map_err(Error::kube(format!("delete the pods of {name}")))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes the namespace and waits (up to 5 minutes) until it is gone.
pub async fn delete(client: &kube::Client, name: &str) -> Result<(), Error> {
    let nss: Api<Namespace> = Api::all(client.clone());
    match nss.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(Error::kube(format!("delete namespace {name}"))(e)),
    }
    let start = Instant::now();
    while nss
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("get namespace {name}")))?
        .is_some()
    {
        if start.elapsed() > Duration::from_secs(300) {
            progress::say(format!(
                "namespace {name} is still terminating after 300s; going on"
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
