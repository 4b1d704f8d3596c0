//! The API client's transport on the real control plane: everynode multiplexes concurrent requests
//! over one HTTP/2 connection, as client-go does, where kube-rs's default client opens a TLS
//! connection per request in flight.
//!
//! Connections are counted from `/proc`: the established TCP sockets of this process whose remote
//! port is the API server's, before and after a burst of concurrent requests.

mod support;

use everynode::runtime::metrics::Metrics;
use futures::future::join_all;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use std::collections::BTreeSet;
use std::sync::Arc;

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

    let ours = everynode::runtime::client::build(
        config().await,
        Arc::new(Metrics::new()),
        None,
        "controller",
        everynode::runtime::retry::RetryBudget::CONTROLLER,
    )
    .unwrap_or_else(|e| panic!("everynode's client: {e}"));
    let opened = new_connections_for_burst(ours).await;
    assert_eq!(
        opened, 1,
        "everynode's client opened {opened} connections for {BURST} concurrent requests; \
         HTTP/2 multiplexes them over one"
    );
}
