//! The API client's transport on the real control plane: everynode multiplexes concurrent requests
//! over one HTTP/2 connection, as client-go does, where kube-rs's default client opens a TLS
//! connection per request in flight.
//!
//! Connections are counted from `/proc`: the established TCP sockets of this process whose remote
//! port is the API server's, before and after a burst of concurrent requests.
//!
//! On one shared connection, a watch whose reader lags must hold up only itself: the connection's
//! flow-control window is larger than what the lagging watches can hold (client-go's 1 GiB).

mod support;

use everynode::runtime::metrics::Metrics;
use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Requests sent at once.
const BURST: usize = 40;

/// Inodes of this process's sockets.
fn own_socket_inodes() -> BTreeSet<u64> {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap_or_else(|e| panic!("/proc/self/fd: {e}"));
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Inodes of this process's established TCP connections to `port` on the loopback.
fn connections_to(port: u16) -> BTreeSet<u64> {
    let own = own_socket_inodes();
    let mut found = BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(remote), Some(state), Some(inode)) = (cols.get(2), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let remote_port = remote
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let inode: u64 = inode.parse().unwrap_or(0);
            if *state == "01" && remote_port == Some(port) && own.contains(&inode) {
                found.insert(inode);
            }
        }
    }
    found
}

fn apiserver_port() -> u16 {
    let server = support::control_plane().server();
    let port = server
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok());
    port.unwrap_or_else(|| panic!("no port in the API server URL {server}"))
}

async fn config() -> kube::Config {
    let path = support::control_plane().kubeconfig();
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", path.display()))
}

/// everynode's controller client (no client-side limit) for the test control plane.
async fn everynode_client() -> kube::Client {
    everynode::runtime::client::build(
        config().await,
        Arc::new(Metrics::new()),
        None,
        "controller",
        everynode::runtime::retry::RetryBudget::CONTROLLER,
    )
    .unwrap_or_else(|e| panic!("everynode's client: {e}"))
}

/// Sends `BURST` concurrent list requests with `client` and returns how many new connections to the
/// API server it opened for them.
async fn new_connections_for_burst(client: kube::Client) -> usize {
    let port = apiserver_port();
    let before = connections_to(port);
    let api: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default();
    let results = join_all((0..BURST).map(|_| api.list(&lp))).await;
    for r in results {
        r.unwrap_or_else(|e| panic!("list namespaces: {e}"));
    }
    let after = connections_to(port);
    drop(client);
    after.difference(&before).count()
}

#[tokio::test]
async fn concurrent_requests_share_one_http2_connection() {
    // The control: kube-rs's default HTTP/1.1 client needs more than one connection for the burst,
    // so the count below measures what it claims to.
    let default = kube::Client::try_from(config().await)
        .unwrap_or_else(|e| panic!("kube's default client: {e}"));
    let opened = new_connections_for_burst(default).await;
    assert!(
        opened > 1,
        "kube's default client opened {opened} connection(s) for {BURST} concurrent requests; \
         expected several (HTTP/1.1)"
    );

    let ours = everynode_client().await;
    let opened = new_connections_for_burst(ours).await;
    assert_eq!(
        opened, 1,
        "everynode's client opened {opened} connections for {BURST} concurrent requests; \
         HTTP/2 multiplexes them over one"
    );
}

/// Watches opened and never read, ConfigMaps created, and the size of each one's data: every
/// watch receives all of them (8 × 900 KiB), more than its stream window (2 MiB), so each one holds
/// a full stream window of unread data, 6 MiB together: more than hyper's default connection window
/// (5 MiB), far less than client-go's.
const UNREAD_WATCHES: usize = 3;
const BIG_CONFIGMAPS: usize = 8;
const BIG_CONFIGMAP_BYTES: usize = 900 * 1024;

/// How long one request may take here; on an idle control plane each takes milliseconds.
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn watches_nobody_reads_do_not_hold_up_other_requests_on_the_connection() {
    let client = everynode_client().await;
    let ns_name = format!("client-window-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": ns_name }
    }))
    .unwrap_or_else(|e| panic!("namespace object: {e}"));
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {ns_name}: {e}"));
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_name);

    // Opened (the API server answered each), then never polled: what they receive stays unread.
    let mut unread = Vec::new();
    for i in 0..UNREAD_WATCHES {
        let watch = configmaps
            .watch(&WatchParams::default(), "0")
            .await
            .unwrap_or_else(|e| panic!("open watch {i}: {e}"));
        unread.push(Box::pin(watch));
    }

    let payload = "x".repeat(BIG_CONFIGMAP_BYTES);
    for i in 0..BIG_CONFIGMAPS {
        let cm = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("big-{i}")),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("payload".to_string(), payload.clone())])),
            ..Default::default()
        };
        match tokio::time::timeout(
            REQUEST_DEADLINE,
            configmaps.create(&PostParams::default(), &cm),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!(
                "create ConfigMap big-{i} while {UNREAD_WATCHES} watches go unread: {e} \
                 (the unread watches hold the connection's flow-control window)"
            ),
            Err(_) => panic!(
                "create ConfigMap big-{i} got no answer in {REQUEST_DEADLINE:?} while \
                 {UNREAD_WATCHES} watches go unread: they hold the connection's flow-control window"
            ),
        }
    }
    let got = tokio::time::timeout(REQUEST_DEADLINE, configmaps.get("big-0")).await;
    match got {
        Ok(Ok(cm)) => assert_eq!(
            cm.data.and_then(|d| d.get("payload").map(String::len)),
            Some(BIG_CONFIGMAP_BYTES)
        ),
        Ok(Err(e)) => panic!("get ConfigMap big-0 while the watches go unread: {e}"),
        Err(_) => panic!(
            "get ConfigMap big-0 got no answer in {REQUEST_DEADLINE:?} while {UNREAD_WATCHES} \
             watches go unread: they hold the connection's flow-control window"
        ),
    }

    drop(unread);
    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
}
