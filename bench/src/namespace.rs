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

/// Deletes every pod of the namespace at once (grace period 0) and waits until none is left. A
/// failed list or delete is tried again (at 5000 nodes a DeleteCollection of 25 000 pods can outlast
/// the API server's request timeout and part of them go anyway) until the deadline: 5 minutes, or
/// 20 ms a pod if that is longer.
pub async fn delete_pods(client: &kube::Client, name: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), name);
    let start = Instant::now();
    let mut deadline = Duration::from_secs(300);
    let mut last_error = None;
    loop {
        let left = match pods.list_metadata(&ListParams::default()).await {
            Ok(list) => Some(list.items.len()),
            Err(e) => {
                last_error = Some(format!("list pods of {name}: {e}"));
                None
            }
        };
        if left == Some(0) {
            return Ok(());
        }
        if let Some(left) = left {
            deadline = deadline.max(Duration::from_millis(20 * left as u64));
        }
        if start.elapsed() > deadline {
            return Err(Error::Timeout {
                what: format!("the pods of {name} to be gone"),
                seconds: deadline.as_secs(),
                state: match (left, last_error) {
                    (Some(left), None) => format!("{left} left"),
                    (Some(left), Some(e)) => format!("{left} left; last error: {e}"),
                    (None, e) => e.unwrap_or_default(),
                },
            });
        }
        if left.is_some()
            && let Err(e) = pods
                .delete_collection(
                    &DeleteParams::default().grace_period(0),
                    &ListParams::default(),
                )
                .await
        {
            progress::say(format!(
                "deleting the pods of {name} failed ({e}); trying again"
            ));
            last_error = Some(format!("delete the pods of {name}: {e}"));
        }
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
