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

/// How long the pod count of a namespace being emptied may go without a new low before
/// `delete_pods` gives up.
const STALL: Duration = Duration::from_secs(300);

/// How long the count must go without a new low (and the last DeleteCollection be this old) before
/// `delete_pods` sends another.
const RESEND: Duration = Duration::from_secs(30);

/// Whether a failed request may succeed if sent again: no answer (connection, timeout), 429 or 5xx.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => crate::error::server_busy(s.code),
        _ => true,
    }
}

/// Deletes every pod of the namespace at once (grace period 0) and waits until none is left.
///
/// At 5000 nodes a DeleteCollection of 25 000 pods outlasts the API server's request timeout while
/// the server goes on deleting. So after a transient failure (no answer, 429, 5xx), or when pods are
/// left after a DeleteCollection, the next one goes out only once the count has not reached a new
/// low for `RESEND`; it fails
/// when the count has not reached a new low for `STALL`, or at once on any other error. There is no
/// fixed deadline: how long 25 000 deletes take depends on what else the 2 cores are doing.
pub async fn delete_pods(client: &kube::Client, name: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), name);
    let start = Instant::now();
    // The lowest count seen, and when it was first seen.
    let mut low: Option<(usize, Instant)> = None;
    let mut last_delete: Option<Instant> = None;
    let mut last_error: Option<String> = None;
    loop {
        let left = match pods.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items.len(),
            Err(e) if transient(&e) => {
                progress::say(format!(
                    "listing the pods of {name} failed ({e}); trying again"
                ));
                last_error = Some(format!("list pods of {name}: {e}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(Error::kube(format!("list pods of {name}"))(e)),
        };
        if left == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if low.is_none_or(|(l, _)| left < l) {
            low = Some((left, now));
        }
        let since_low = low.map_or(Duration::ZERO, |(_, at)| now.duration_since(at));
        if since_low > STALL {
            let mut state = format!("{left} left");
            if let Some(e) = &last_error {
                state = format!("{state}; last error: {e}");
            }
            return Err(Error::Timeout {
                what: format!(
                    "the pods of {name} to be gone (no fewer for {}s)",
                    STALL.as_secs()
                ),
                seconds: start.elapsed().as_secs(),
                state,
            });
        }
        // The first delete; again only once the pods have stopped going (the last one failed, or
        // pods came after it).
        let send =
            last_delete.is_none_or(|at| now.duration_since(at) > RESEND && since_low > RESEND);
        if send {
            last_delete = Some(now);
            match pods
                .delete_collection(
                    &DeleteParams::default().grace_period(0),
                    &ListParams::default(),
                )
                .await
            {
                Ok(_) => last_error = None,
                Err(e) if transient(&e) => {
                    progress::say(format!(
                        "deleting the pods of {name} failed ({e}); waiting while they go"
                    ));
                    last_error = Some(format!("delete the pods of {name}: {e}"));
                }
                Err(e) => return Err(Error::kube(format!("delete the pods of {name}"))(e)),
            }
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
