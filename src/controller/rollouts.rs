//! DaemonSetRollout policies in the shell: the cached object (a tombstone when it does not decode),
//! discovery of `everynode.io/v1alpha1` at start and every 60 s, the watch that feeds the cache, and
//! the policy's decision for one sync (`core::rollout::plan_rollout`, or `Mode::Hold` for an object
//! that does not decode).

use super::context::{Context, lock, read, write};
use super::daemonset_object::CachedDaemonSet;
use super::decode_guard::Guarded;
use super::handlers;
use crate::api::{DaemonSetRollout, DaemonSetRolloutStatus};
use crate::core::Timestamp;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::history::hash_label;
use crate::core::pods_by_node::NodePods;
use crate::core::rollout::{Mode, RevisionRef, RolloutInput, RolloutPlan, plan_rollout};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::DaemonSetCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::Api;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The API group and version the policies are served under.
pub const API_VERSION: &str = "everynode.io/v1alpha1";

/// The watch's name in readiness and `everynode_watch_healthy`.
pub const KIND: &str = "daemonsetrollouts";

/// How often discovery looks again for a CRD that is not installed.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// The DaemonSet condition type that says a policy cannot be used.
pub const POLICY_INVALID: &str = "RolloutPolicyInvalid";

/// A cached DaemonSetRollout: its metadata always, the typed object when it decodes (version skew:
/// the schema validates what the API server stores, but an older controller may not read it).
#[derive(Clone, Debug)]
pub struct CachedRollout {
    pub meta: ObjectMeta,
    pub rollout: Result<DaemonSetRollout, String>,
}

impl Default for CachedRollout {
    fn default() -> Self {
        Self {
            meta: ObjectMeta::default(),
            rollout: Err("no object".into()),
        }
    }
}

impl<'de> Deserialize<'de> for CachedRollout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let meta = ObjectMeta::deserialize(
            value
                .get("metadata")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        )
        .map_err(serde::de::Error::custom)?;
        let rollout = DaemonSetRollout::deserialize(value).map_err(|e| e.to_string());
        Ok(Self { meta, rollout })
    }
}

impl Resource for CachedRollout {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        DaemonSetRollout::kind(&())
    }
    fn group(_: &()) -> Cow<'_, str> {
        DaemonSetRollout::group(&())
    }
    fn version(_: &()) -> Cow<'_, str> {
        DaemonSetRollout::version(&())
    }
    fn plural(_: &()) -> Cow<'_, str> {
        DaemonSetRollout::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

impl CachedRollout {
    pub fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }

    /// The status persisted on the object (empty when it has none or does not decode).
    pub fn persisted_status(&self) -> DaemonSetRolloutStatus {
        self.rollout
            .as_ref()
            .ok()
            .and_then(|r| r.status.clone())
            .unwrap_or_default()
    }
}

/// Whether the API server serves `everynode.io/v1alpha1` (discovery needs no RBAC). It asks for the
/// API groups first (`GET /apis`, as client-go's discovery does) and for the group's resources only
/// when the group is there, so a cluster without the CRD never sees a refused (404) request from
/// everynode. Errors are logged and count as "not yet": discovery asks again later.
async fn served(client: &kube::Client) -> bool {
    let (group, version) = API_VERSION.split_once('/').unwrap_or((API_VERSION, ""));
    let listed = match client.list_api_groups().await {
        Ok(groups) => groups
            .groups
            .iter()
            .any(|g| g.name == group && g.versions.iter().any(|v| v.version == version)),
        Err(e) => {
            warn!(
                "discovery of the API groups failed (asking again in {DISCOVERY_INTERVAL:?}): {e}"
            );
            return false;
        }
    };
    if !listed {
        return false;
    }
    match client.list_api_group_resources(API_VERSION).await {
        Ok(list) => list.resources.iter().any(|r| r.name == KIND),
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => {
            warn!(
                "discovery of {API_VERSION} failed (asking again in {DISCOVERY_INTERVAL:?}): {e}"
            );
            false
        }
    }
}

fn spawn_watch(ctx: &Arc<Context>, watches: &kube::Client) {
    let c = ctx.clone();
    tokio::spawn(super::watch(
        Api::<Guarded<CachedRollout>>::all(watches.clone()),
        KIND,
        ctx.clone(),
        move |ev| {
            let changes = write(&c.caches.rollouts).apply(ev);
            for change in changes {
                handlers::rollout_changed(&c, change);
            }
        },
    ));
}

/// Starts the DaemonSetRollout watch if the CRD is served now; returns whether it is (the workers
/// then wait for its cache like the others). Otherwise checks again every 60 s, starts the watch
/// when the CRD appears, and queues every DaemonSet once its cache has synced.
pub async fn start(ctx: &Arc<Context>, watches: &kube::Client) -> bool {
    if served(&ctx.client).await {
        info!("{API_VERSION} is served; watching DaemonSetRollouts");
        spawn_watch(ctx, watches);
        return true;
    }
    info!(
        "{API_VERSION} is not served (the DaemonSetRollout CRD is not installed); every DaemonSet follows upstream's behaviour; looking again every {}s",
        DISCOVERY_INTERVAL.as_secs()
    );
    let ctx = ctx.clone();
    let watches = watches.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(DISCOVERY_INTERVAL).await;
            if served(&ctx.client).await {
                break;
            }
        }
        info!("{API_VERSION} is served now; watching DaemonSetRollouts");
        spawn_watch(&ctx, &watches);
        while !read(&ctx.caches.rollouts).synced() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for ds in ctx.caches.daemonsets.state() {
            ctx.enqueue(&ds);
        }
    });
    false
}

/// The policy of `ds`: the DaemonSetRollout of the same namespace and name, if any.
pub fn lookup(ctx: &Context, ds: &CachedDaemonSet) -> Option<Arc<CachedRollout>> {
    let m = &ds.ds.metadata;
    read(&ctx.caches.rollouts).get(
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
    )
}

/// The last status of `rollout`: what this leader last wrote (the cache lags its own writes), else
/// the persisted one.
pub fn previous(ctx: &Context, rollout: &CachedRollout) -> DaemonSetRolloutStatus {
    lock(&ctx.rollout_status)
        .get(rollout.uid())
        .cloned()
        .unwrap_or_else(|| rollout.persisted_status())
}

/// The DaemonSet's own ControllerRevisions, as the policy reads them.
pub fn revision_refs(ctx: &Context, ds: &CachedDaemonSet) -> Vec<RevisionRef> {
    let ns = ds.ds.metadata.namespace.as_deref().unwrap_or_default();
    let mut refs: Vec<RevisionRef> = read(&ctx.caches.revisions)
        .owned(ns, ds.uid())
        .iter()
        .map(|r| RevisionRef {
            name: r.metadata.name.clone().unwrap_or_default(),
            hash: hash_label(r).to_string(),
            revision: r.revision,
        })
        .collect();
    refs.sort_by(|a, b| (a.revision, &a.name).cmp(&(b.revision, &b.name)));
    refs
}

/// One view of the DaemonSet the policy decides on.
pub struct View<'a> {
    pub ds: &'a CachedDaemonSet,
    pub nodes: &'a [Arc<CachedNode>],
    pub node_pods: &'a NodePods,
    pub pods: &'a [Arc<CachedPod>],
    pub hash: &'a str,
    pub revisions: &'a [RevisionRef],
}

/// The policy's decision on `view`: `plan_rollout`, or [`hold`] for an object that does not decode.
pub fn decide(
    rollout: &CachedRollout,
    previous: &DaemonSetRolloutStatus,
    view: &View<'_>,
    starts_issued: bool,
    now: Timestamp,
) -> RolloutPlan {
    match &rollout.rollout {
        Ok(r) => plan_rollout(&RolloutInput {
            ds: &view.ds.ds,
            nodes: view.nodes,
            node_pods: view.node_pods,
            pods: view.pods,
            hash: view.hash,
            revisions: view.revisions,
            rollout: r,
            previous,
            starts_issued,
            now,
        }),
        Err(error) => hold(&rollout.meta, previous, error, now),
    }
}

/// The decision for a DaemonSetRollout that does not decode: act on nothing (acting without the
/// policy the user asked for is never the fallback), keep its status, and say why on the DaemonSet.
pub fn hold(
    meta: &ObjectMeta,
    previous: &DaemonSetRolloutStatus,
    error: &str,
    now: Timestamp,
) -> RolloutPlan {
    let name = meta.name.as_deref().unwrap_or_default();
    RolloutPlan {
        mode: Mode::Hold,
        starts: Some(Default::default()),
        status: previous.clone(),
        ds_conditions: vec![DaemonSetCondition {
            type_: POLICY_INVALID.into(),
            status: "True".into(),
            reason: Some("Undecodable".into()),
            message: Some(format!(
                "DaemonSetRollout {name} cannot be read by this everynode ({error}); no pod is created or deleted until it is fixed or deleted"
            )),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        }],
        ..RolloutPlan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_policy_is_cached_as_a_tombstone_with_its_metadata() {
        let bad: CachedRollout = serde_json::from_value(serde_json::json!({
            "apiVersion": API_VERSION, "kind": "DaemonSetRollout",
            "metadata": {"name": "agent", "namespace": "ns", "uid": "u"},
            "spec": {"paused": "very"}
        }))
        .unwrap_or_else(|e| panic!("metadata decodes: {e}"));
        assert_eq!(bad.uid(), "u");
        assert!(bad.rollout.is_err());
        let good: CachedRollout = serde_json::from_value(serde_json::json!({
            "apiVersion": API_VERSION, "kind": "DaemonSetRollout",
            "metadata": {"name": "agent", "namespace": "ns"},
            "spec": {"paused": true}
        }))
        .unwrap_or_else(|e| panic!("decodes: {e}"));
        assert!(good.rollout.as_ref().is_ok_and(|r| r.spec.paused));
    }

    #[test]
    fn an_undecodable_policy_holds_and_says_so_on_the_daemonset() {
        let meta = ObjectMeta {
            name: Some("agent".into()),
            ..Default::default()
        };
        let previous = DaemonSetRolloutStatus {
            observed_generation: Some(3),
            ..Default::default()
        };
        let plan = hold(&meta, &previous, "bad spec", Timestamp::UNIX_EPOCH);
        assert_eq!(plan.mode, Mode::Hold);
        assert_eq!(plan.status, previous);
        assert_eq!(plan.ds_conditions.len(), 1);
        assert_eq!(plan.ds_conditions[0].type_, POLICY_INVALID);
        assert!(
            plan.ds_conditions[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("bad spec"))
        );
    }
}
