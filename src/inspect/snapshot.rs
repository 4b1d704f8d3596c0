//! What `everynode explain` and `everynode status` read from the cluster: one DaemonSet with the
//! nodes, its pods and its revisions, read with the user's kubeconfig (get and list only).

use super::InspectError;
use crate::api::DaemonSetRollout;
use crate::controller::daemonset_object::CachedDaemonSet;
use crate::core::Timestamp;
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::history::plan_history;
use crate::core::labels::CONTROLLER_REVISION_HASH;
use crate::core::node_reason::{Context, Explanation, explain};
use crate::core::ownership::controller_uid;
use crate::core::pods_by_node::{NodePods, group_by_node};
use crate::core::rollout::{RevisionRef, RolloutInput, RolloutPlan, plan_rollout};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::core::Selector;
use std::sync::Arc;

/// A DaemonSet named on the command line: `daemonset/NAME` (also `ds/`, `daemonsets/`,
/// `daemonset.apps/`), or a bare `NAME`.
pub fn parse_target(target: &str) -> Result<String, String> {
    let name = match target.split_once('/') {
        None => target,
        Some((kind, name)) => {
            let kind = kind.to_ascii_lowercase();
            let known = ["daemonset", "daemonsets", "ds"];
            let kind = kind.strip_suffix(".apps").unwrap_or(&kind);
            if !known.contains(&kind) {
                return Err(format!(
                    "{target:?} is not a DaemonSet: give daemonset/NAME or NAME"
                ));
            }
            name
        }
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "{target:?} is not a DaemonSet: give daemonset/NAME or NAME"
        ));
    }
    Ok(name.to_string())
}

/// One DaemonSet and what it is explained with.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub daemonset: DaemonSet,
    /// Every node, in name order.
    pub nodes: Vec<CachedNode>,
    /// The pods the DaemonSet controls.
    pub pods: Vec<Arc<CachedPod>>,
    /// The current revision's hash (what the controller labels the pods of the current template
    /// with; computed as the controller does when the revision does not exist yet).
    pub hash: String,
    /// The `DaemonSetRollout` of the same name, if any (none when the CRD is not installed).
    pub rollout: Option<DaemonSetRollout>,
    /// Why the `DaemonSetRollout` could not be read (403), said above the table.
    pub rollout_note: Option<String>,
    /// The DaemonSet's ControllerRevisions, by revision number (the policy's rollback targets).
    pub revisions: Vec<RevisionRef>,
}

impl Snapshot {
    /// The DaemonSet's pods by node, as the controller groups them.
    pub fn node_pods(&self) -> NodePods {
        group_by_node(self.pods.iter(), false)
    }

    /// The rollout policy's plan at `now`, as the controller would decide it (None without a
    /// `DaemonSetRollout`).
    pub fn rollout_plan(&self, node_pods: &NodePods, now: Timestamp) -> Option<RolloutPlan> {
        let rollout = self.rollout.as_ref()?;
        let previous = rollout.status.clone().unwrap_or_default();
        Some(plan_rollout(&RolloutInput {
            ds: &self.daemonset,
            nodes: &self.nodes,
            node_pods,
            pods: &self.pods,
            hash: &self.hash,
            revisions: &self.revisions,
            rollout,
            previous: &previous,
            starts_issued: false,
            now,
        }))
    }

    /// Every node's row at `now`, from the same core functions the controller decides with (the
    /// rollout policy's included, when there is a `DaemonSetRollout`).
    pub fn explain(&self, now: Timestamp) -> Explanation {
        let node_pods = self.node_pods();
        let plan = self.rollout_plan(&node_pods, now);
        explain(
            &self.daemonset,
            &self.nodes,
            &node_pods,
            &self.hash,
            now,
            &Context {
                backoff_until: None,
                rollout: plan.as_ref(),
                rolling_update: None,
                classes_only: false,
            },
        )
    }
}

/// Reads the DaemonSet `namespace/name`, the nodes, its pods and its revisions.
pub async fn read(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Snapshot, InspectError> {
    // The typed object and the raw template in one decode, as the controller caches it.
    let api: Api<CachedDaemonSet> = Api::namespaced(client.clone(), namespace);
    let Some(CachedDaemonSet {
        ds: daemonset,
        raw_template,
        ..
    }) = api.get_opt(name).await.map_err(InspectError::api)?
    else {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        return Err(match namespaces.get_opt(namespace).await {
            Ok(None) => InspectError::NamespaceNotFound(namespace.to_string()),
            _ => InspectError::DaemonSetNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
        });
    };
    let uid = daemonset.metadata.uid.clone().unwrap_or_default();
    let selector = daemonset
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let selector =
        Selector::try_from(selector).map_err(|e| InspectError::InvalidSelector(e.to_string()))?;
    let params = ListParams::default().labels_from(&selector);

    let mut nodes: Vec<CachedNode> = Api::<CachedNode>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(InspectError::api)?
        .items;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let pods: Vec<Arc<CachedPod>> = Api::<CachedPod>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .map_err(InspectError::api)?
        .items
        .into_iter()
        .filter(|p| controller_uid(&p.metadata) == Some(uid.as_str()))
        .map(Arc::new)
        .collect();
    let mut revisions: Vec<ControllerRevision> =
        Api::<ControllerRevision>::namespaced(client.clone(), namespace)
            .list(&params)
            .await
            .map_err(InspectError::api)?
            .items
            .into_iter()
            .filter(|r| controller_uid(&r.metadata) == Some(uid.as_str()))
            .collect();
    revisions.sort_by_key(|r| (r.revision, r.metadata.name.clone()));
    let history = plan_history(
        &daemonset,
        &raw_template,
        revisions.iter(),
        pods.iter().map(|p| p.as_ref()),
    )
    .map_err(|e| InspectError::Decode(e.to_string()))?;
    let hash = history.hash().to_string();
    let (rollout, rollout_note) = read_rollout(client, namespace, name).await?;
    let revisions = revisions
        .iter()
        .map(|r| RevisionRef {
            name: r.metadata.name.clone().unwrap_or_default(),
            hash: r
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
                .cloned()
                .unwrap_or_default(),
            revision: r.revision,
        })
        .collect();
    Ok(Snapshot {
        daemonset,
        nodes,
        pods,
        hash,
        rollout,
        rollout_note,
        revisions,
    })
}

/// The `DaemonSetRollout` `namespace/name`: `None` when there is none or its CRD is not installed
/// (both 404); `None` and a note when reading it is forbidden (explain still works without it).
pub async fn read_rollout(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(Option<DaemonSetRollout>, Option<String>), InspectError> {
    let api: Api<DaemonSetRollout> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(found) => Ok((found, None)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok((None, None)),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok((
            None,
            Some(format!(
                "note: cannot read DaemonSetRollout {name} (403 Forbidden), so its rollout policy is not shown: {}",
                s.message
            )),
        )),
        Err(e) => Err(InspectError::api(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_target;

    #[test]
    fn targets_name_a_daemonset() {
        for ok in [
            "foo",
            "daemonset/foo",
            "ds/foo",
            "daemonsets/foo",
            "daemonset.apps/foo",
            "DaemonSet/foo",
        ] {
            assert_eq!(parse_target(ok).as_deref(), Ok("foo"), "{ok}");
        }
        for bad in ["deployment/foo", "", "ds/", "ds/a/b"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
