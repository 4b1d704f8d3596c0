//! Event publishing on the real control plane: the events everynode writes on a DaemonSet, through
//! its own API client and the event correlator of `runtime::event_correlator`.
//!
//! An event that the spam filter held back was never created. Upstream's recorder patches it anyway
//! at its next repeat, gets 404 and then creates it; everynode creates it straight away
//! (docs/differences.md, "A repeat of an event the spam filter held back is created, not patched").
//! The test shortens the spam filter to 2 events, then one every 2 seconds, so one held-back event
//! and its repeat fit in a few seconds.

mod support;

use everynode::controller::daemonset_object::CachedDaemonSet;
use everynode::controller::events::EventSink;
use everynode::core::events::PlannedEvent;
use everynode::runtime::event_correlator::EventCorrelator;
use everynode::runtime::metrics::Metrics;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use std::sync::Arc;
use std::time::Duration;
use support::invariants::api_requests;
use support::{TestEnv, wait_for};

async fn everynode_client(metrics: Arc<Metrics>) -> kube::Client {
    let path = support::control_plane().kubeconfig();
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", path.display()));
    everynode::runtime::client::build(
        config,
        metrics,
        None,
        "controller",
        everynode::runtime::retry::RetryBudget::CONTROLLER,
    )
    .unwrap_or_else(|e| panic!("everynode's client: {e}"))
}

/// `(message, count, firstTimestamp, lastTimestamp)` of the namespace's events, by message.
async fn events(env: &TestEnv) -> Vec<(String, i32, String, String)> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let list = api
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list events: {e}"));
    let mut v: Vec<_> = list
        .items
        .into_iter()
        .map(|e| {
            (
                e.message.unwrap_or_default(),
                e.count.unwrap_or_default(),
                e.first_timestamp
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                e.last_timestamp
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_back_event_is_created_at_its_repeat_without_a_failing_patch() {
    let env = TestEnv::new("events").await;
    let metrics = Arc::new(Metrics::new());
    let client = everynode_client(metrics.clone()).await;
    let sink = EventSink::start_with(
        client,
        "events-test".into(),
        metrics.clone(),
        EventCorrelator::with_spam_filter(2.0, 0.5),
    );
    let mut ds = CachedDaemonSet::default();
    ds.ds.metadata.name = Some("agent".into());
    ds.ds.metadata.namespace = Some(env.ns.clone());
    ds.ds.metadata.uid = Some("00000000-0000-0000-0000-00000000e1e1".into());
    let event = |m: &str| PlannedEvent::normal("SuccessfulDelete", m);

    // "one" is created and its repeat updates it: the burst of 2 is spent.
    sink.publish(&ds, event("one"));
    sink.publish(&ds, event("one"));
    // "two" is held back by the spam filter: nothing is sent for it.
    sink.publish(&ds, event("two"));
    wait_for(
        "one event, updated once",
        Duration::from_secs(30),
        || async {
            let got = events(&env).await;
            match got.as_slice() {
                [(m, 2, _, _)] if m == "one" => Ok(()),
                _ => Err(format!("{got:?}")),
            }
        },
    )
    .await;
    // A token comes back after 2 s: the repeat of "two" is sent.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sink.publish(&ds, event("two"));
    let got = wait_for(
        "the repeat of the held-back event",
        Duration::from_secs(30),
        || async {
            let got = events(&env).await;
            if got.len() == 2 {
                Ok(got)
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
    let (message, count, first, last) = &got[1];
    assert_eq!(
        (message.as_str(), *count),
        ("two", 2),
        "the held-back event is created with its observed count, as upstream's create after 404: {got:?}"
    );
    assert!(
        first < last,
        "firstTimestamp is the first observation's: {got:?}"
    );

    let text = metrics.encode().unwrap_or_default();
    let patches_refused = api_requests(&text, r#"verb="PATCH",code="404""#);
    let creates = api_requests(&text, r#"verb="POST",code="201""#);
    let patches = api_requests(&text, r#"verb="PATCH",code="200""#);
    assert_eq!(
        (patches_refused, creates, patches),
        (0.0, 2.0, 1.0),
        "no patch of an event that was never created; one create per event, one update:\n{}",
        text.lines()
            .filter(|l| l.starts_with("everynode_api_requests_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
