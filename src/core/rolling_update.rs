//! Rolling update: which outdated daemon pods to delete and which nodes get a surge pod in one sync
//! (upstream `rollingUpdate`, `findUpdatedPodsOnNode` and `updatedDesiredNodeCounts`, §5).
//!
//! The sync runs [`plan_rolling_update`] only when the strategy is `RollingUpdate` and the
//! expectations are satisfied after manage (§2 step 8.2), so in practice not in a sync where
//! manage issued creates or deletes. The plan goes to `syncNodes` like manage's: the shell sets
//! the expectations, truncates both lists to the burst limit and issues them.
//!
//! **OnDelete** (§5.5): the shell never calls the planner for `OnDelete` DaemonSets; outdated pods
//! are then only replaced when someone deletes them. As a safety net the planner returns an empty
//! plan for any strategy type other than `RollingUpdate` (which is what upstream's sync does).
//!
//! Upstream iterates a Go map, so the order in which node entries are visited is random; here they
//! are visited by node name. The order decides *which* pods or nodes are picked within a budget,
//! never how many.

use crate::core::Timestamp;
use crate::core::budget::{BudgetError, surge_count, unavailable_count};
use crate::core::cached_node::CachedNode;
use crate::core::cached_pod::CachedPod;
use crate::core::placement::Placements;
use crate::core::pod_state::{is_available, is_terminating, is_updated};
use crate::core::pods_by_node::NodePods;
use crate::core::status::{min_ready_seconds, template_generation};
use k8s_openapi::api::apps::v1::DaemonSet;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The rollout policy's seam into this planner (`core::rollout`): which wanted outdated nodes may
/// start their update now, and which nodes nothing may delete from. [`Gate::OPEN`] is upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gate<'a> {
    /// Wanted nodes whose outdated pod may be replaced now; `None`: every one (upstream).
    pub starts: Option<&'a std::collections::BTreeSet<String>>,
    /// Nodes the rolling update must not delete from (the mass-deletion guard).
    pub keep: Option<&'a std::collections::BTreeSet<String>>,
}

impl Gate<'_> {
    /// No policy: every decision is upstream's.
    pub const OPEN: Gate<'static> = Gate {
        starts: None,
        keep: None,
    };

    /// Whether nothing may be deleted from `node` (it is in `keep`).
    fn keeps(&self, node: &str) -> bool {
        self.keep.is_some_and(|keep| keep.contains(node))
    }

    /// Whether the rolling update treats `node`'s outdated pod as if it were up to date: the node
    /// is in `keep`, or it should run a pod (`should_run`) and `starts` does not name it.
    fn holds(&self, node: &str, should_run: bool) -> bool {
        self.keeps(node) || (should_run && self.starts.is_some_and(|starts| !starts.contains(node)))
    }
}

/// The rolling-update budgets of one sync (upstream `updatedDesiredNodeCounts`, §5.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// `maxSurge` scaled against `desired` (0: no surge).
    pub max_surge: i64,
    /// `maxUnavailable` scaled against `desired`; 1 when both budgets are 0 and `desired > 0`.
    pub max_unavailable: i64,
    /// Number of nodes that should run a daemon pod.
    pub desired: i64,
}

/// A rolling-update budget that cannot be computed from the DaemonSet's spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBudget {
    /// `spec.updateStrategy.rollingUpdate.maxUnavailable` is neither an integer nor a percentage.
    #[error(
        "invalid spec.updateStrategy.rollingUpdate.maxUnavailable {value:?} on the DaemonSet: \
         use an integer or a percentage such as \"25%\"; the rolling update is stopped until it is fixed"
    )]
    MaxUnavailable {
        /// The offending value.
        value: String,
        source: BudgetError,
    },
    /// `spec.updateStrategy.rollingUpdate.maxSurge` is neither an integer nor a percentage.
    #[error(
        "invalid spec.updateStrategy.rollingUpdate.maxSurge {value:?} on the DaemonSet: \
         use an integer or a percentage such as \"25%\"; the rolling update is stopped until it is fixed"
    )]
    MaxSurge {
        /// The offending value.
        value: String,
        source: BudgetError,
    },
}

/// Why no rolling-update plan could be made in this sync (the sync fails and is retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollingUpdateError {
    /// A budget does not parse.
    #[error(transparent)]
    Budget(#[from] InvalidBudget),
    /// Surge mode met an outdated pod on a node that is not in the node list (upstream's
    /// `nodeLister.Get` failure, a **[quirk]** kept on purpose).
    #[error(
        "couldn't get node {node:?} for the surge rolling update: daemon pods still target this node \
         but it no longer exists; the rolling update resumes once the pod garbage collector has \
         removed those pods (or once they are deleted by hand)"
    )]
    NodeNotFound {
        /// The missing node's name.
        node: String,
    },
}

/// What the rolling update does in one sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollingUpdatePlan {
    /// Outdated pods to delete, by name, in decision order (not yet truncated to the burst limit).
    pub pods_to_delete: Vec<String>,
    /// Nodes to create an updated (surge) pod on, in decision order (not truncated either).
    pub nodes_to_create: Vec<String>,
    /// Why each outdated node that this plan does not touch waits, by node name (the decision's
    /// reasons; the decision itself is in the two lists above).
    pub waiting: BTreeMap<String, UpdateWait>,
    /// The nodes that hold the budget the waiting nodes wait for: those counted unavailable (no
    /// surge) or surging (surge), in node-name order.
    pub held_by: Vec<String>,
    /// The budgets of this sync.
    pub budget: Budget,
}

/// Why an outdated pod is not replaced in this sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UpdateWait {
    /// `maxUnavailable` is used up by the nodes in [`RollingUpdatePlan::held_by`].
    MaxUnavailable,
    /// `maxSurge` is used up by the nodes in [`RollingUpdatePlan::held_by`], whose new pods are not
    /// yet available.
    MaxSurge,
    /// The node's new (surge) pod is not yet available; the old one goes when it is.
    NewPodNotAvailable,
    /// The node should no longer run a pod; its available old pod goes only while more pods are
    /// available than desired.
    AvailabilityFloor,
    /// The rollout policy ([`Gate`]) holds the node: its outdated pod is left as it is, as if it
    /// were up to date (an unavailable one still counts against `maxUnavailable`).
    Held,
}

/// The node list as the rolling update sees it: `desired`, and every node entry (nodes with pods,
/// plus empty entries for wanted nodes without any) in node name order.
struct Survey<'a> {
    desired: i64,
    entries: Vec<Entry<'a>>,
}

/// One node entry of a [`Survey`].
struct Entry<'a> {
    node: &'a str,
    pods: &'a [Arc<CachedPod>],
    /// Whether the node should run a pod; `None` for a node with pods that is not in the node list.
    should_run: Option<bool>,
}

/// Builds the [`Survey`] as a B-tree of node names would order it, without one: the sync's node
/// list is already in name order, and sorting 5000 names into a tree in every sync was a tenth of
/// the rolling update's time (issue 14's profile).
fn survey<'a>(placements: &'a Placements<'_>, node_pods: &'a NodePods) -> Survey<'a> {
    struct Listed<'a> {
        node: &'a str,
        pods: Option<&'a [Arc<CachedPod>]>,
        should_run: bool,
        wanted: bool,
    }
    let mut desired = 0i64;
    let mut listed: Vec<Listed> = Vec::with_capacity(placements.len());
    for placed in placements {
        let run = placed.placement.should_run;
        desired += i64::from(run);
        listed.push(Listed {
            node: placed.name,
            pods: node_pods.get(placed.name).map(Vec::as_slice),
            should_run: run,
            wanted: run,
        });
    }
    // The controller's node list is sorted by name; other callers' may not be (a stable sort).
    if !listed.is_sorted_by(|a, b| a.node <= b.node) {
        listed.sort_by(|a, b| a.node.cmp(b.node));
    }
    // A name listed twice takes the `should_run` of its last placement, and has an entry when any
    // of its placements wants a pod.
    listed.dedup_by(|later, kept| {
        let same = later.node == kept.node;
        if same {
            kept.should_run = later.should_run;
            kept.wanted |= later.wanted;
        }
        same
    });
    let with_pods = listed.iter().filter(|l| l.pods.is_some()).count();
    let mut entries: Vec<Entry> = listed
        .iter()
        .filter(|l| l.pods.is_some() || l.wanted)
        .map(|l| Entry {
            node: l.node,
            pods: l.pods.unwrap_or_default(),
            should_run: Some(l.should_run),
        })
        .collect();
    if with_pods < node_pods.len() {
        // Pods on nodes missing from the node list: their entries too, in name order.
        let unlisted = node_pods
            .iter()
            .filter(|(node, _)| {
                listed
                    .binary_search_by(|l| l.node.cmp(node.as_str()))
                    .is_err()
            })
            .map(|(node, pods)| Entry {
                node,
                pods,
                should_run: None,
            });
        entries.extend(unlisted);
        entries.sort_by(|a, b| a.node.cmp(b.node));
    }
    Survey { desired, entries }
}

/// The string form of an unparsable budget value, for the error message.
fn offending_value(error: &BudgetError) -> String {
    match error {
        BudgetError::NotAPercentage(value) | BudgetError::InvalidPercentage(value) => value.clone(),
    }
}

fn budget_for(ds: &DaemonSet, desired: i64) -> Result<Budget, InvalidBudget> {
    let max_unavailable =
        unavailable_count(ds, desired).map_err(|source| InvalidBudget::MaxUnavailable {
            value: offending_value(&source),
            source,
        })?;
    let max_surge = surge_count(ds, desired).map_err(|source| InvalidBudget::MaxSurge {
        value: offending_value(&source),
        source,
    })?;
    // An impossible configuration (validation forbids it): accept one unavailable pod.
    let max_unavailable = if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        1
    } else {
        max_unavailable
    };
    Ok(Budget {
        max_surge,
        max_unavailable,
        desired,
    })
}

/// Upstream `updatedDesiredNodeCounts` (§5.1): the budgets of `ds` over `nodes`, and an empty entry
/// added to `node_pods` for every node that should run a daemon pod but has none, so the rolling
/// update visits it. Percentages are scaled against `desired` and rounded up; integers are used
/// as they are. The empty entries are added even when a budget is invalid, as upstream does.
/// Nodes without a name are skipped.
pub fn updated_desired_node_counts<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &mut NodePods,
) -> Result<Budget, InvalidBudget> {
    let mut desired = 0i64;
    for placed in &Placements::of(ds, nodes) {
        if placed.placement.should_run {
            desired += 1;
            node_pods.entry(placed.name.to_string()).or_default();
        }
    }
    budget_for(ds, desired)
}

/// Upstream `findUpdatedPodsOnNode`: the node's updated ("new") and outdated ("old") pod, ignoring
/// terminating pods; `None` when there are two of either kind (manage prunes those first).
fn find_updated_pods_on_node<'a>(
    pods: &'a [Arc<CachedPod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a CachedPod>, Option<&'a CachedPod>)> {
    let (mut new, mut old): (Option<&CachedPod>, Option<&CachedPod>) = (None, None);
    // Pods without a name cannot exist in the API server, and could not be deleted by name.
    for pod in pods
        .iter()
        .filter(|p| !is_terminating(p) && p.metadata.name.is_some())
    {
        let slot = if is_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

fn name_of(pod: &CachedPod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// `n` as a length bound: negative counts become 0.
fn at_most(n: i64, len: usize) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX).min(len)
}

/// Whether the update strategy is `RollingUpdate` (the API server defaults a missing type to it;
/// upstream compares the type as it is, so a missing type is not a rolling update).
pub fn is_rolling_update(ds: &DaemonSet) -> bool {
    let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    strategy.and_then(|s| s.type_.as_deref()) == Some("RollingUpdate")
}

/// The rolling update of one sync (upstream `rollingUpdate`, §5.2 and §5.3) for `ds` over `nodes`
/// and its claimed pods by node (`node_pods`, terminal+terminating pods excluded, as for manage),
/// with current revision `hash`, at `now`.
///
/// * **No surge** (`maxSurge` scales to 0): deletes every outdated pod that is not Available (each
///   counts as unavailable), then as many Available outdated pods as `maxUnavailable` minus the
///   number of unavailable node entries allows. Never creates: manage recreates on emptied nodes.
/// * **Surge**: creates an updated pod beside every outdated pod that is not Available, and beside
///   Available outdated pods while fewer than `maxSurge` nodes wait for their new pod to become
///   Available; deletes outdated pods whose node already has an Available new pod, unavailable
///   outdated pods on nodes that should no longer run one, and Available outdated pods on such
///   nodes only while more pods are Available than `desired`.
///
/// Availability uses `spec.minReadySeconds` at `now`; a pod is updated if its hash label equals
/// `hash` or its `pod-template-generation` label equals the DaemonSet's template generation.
/// Terminating pods are ignored. A node with two updated or two outdated pods is left to manage
/// and counts as unavailable (no surge) or as surging (surge).
///
/// Returns an empty plan unless the strategy type is `RollingUpdate` (see the module docs).
///
/// This is [`plan_rolling_update_gated`] with [`Gate::OPEN`].
pub fn plan_rolling_update<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
) -> Result<RollingUpdatePlan, RollingUpdateError> {
    plan_rolling_update_gated(ds, nodes, node_pods, hash, now, Gate::OPEN)
}

/// [`plan_rolling_update`] with the rollout policy's `gate` (design §2.2). A node is **held** when
/// `gate.keep` contains it, or when it should run a pod and `gate.starts` is `Some` and does not
/// contain it. A held node's outdated pod is treated as if it were up to date:
///
/// * **No surge**: an unavailable held outdated pod still counts as unavailable (in the budget and
///   in [`RollingUpdatePlan::held_by`]) but is not deleted; an available one counts for nothing.
/// * **Surge**: availability is counted as without a gate; no surge pod is created and no outdated
///   pod deleted.
/// * **Completion** (deleting the outdated pod once the node's surge pod is Available) and
///   **cleanup** (outdated pods on nodes that should not run one) are held only by `keep`.
///
/// Held nodes wait with [`UpdateWait::Held`], except a node whose surge pod is not yet Available,
/// which keeps [`UpdateWait::NewPodNotAvailable`] (that is what it waits for unless it is kept).
/// The budgets stay upstream's, over the whole DaemonSet: the gate only removes candidates, so it
/// never lets more pods be unavailable or surging than [`Gate::OPEN`] would.
pub fn plan_rolling_update_gated<N: Borrow<CachedNode>>(
    ds: &DaemonSet,
    nodes: &[N],
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    gate: Gate,
) -> Result<RollingUpdatePlan, RollingUpdateError> {
    let placements = Placements::of(ds, nodes);
    plan_rolling_update_placed(ds, &placements, node_pods, hash, now, gate)
}

/// [`plan_rolling_update_gated`] over the sync's placements of its nodes.
pub fn plan_rolling_update_placed(
    ds: &DaemonSet,
    placements: &Placements<'_>,
    node_pods: &NodePods,
    hash: &str,
    now: Timestamp,
    gate: Gate,
) -> Result<RollingUpdatePlan, RollingUpdateError> {
    if !is_rolling_update(ds) {
        return Ok(RollingUpdatePlan::default());
    }
    let survey = survey(placements, node_pods);
    let budget = budget_for(ds, survey.desired)?;
    let view = NodeView {
        hash,
        generation: template_generation(ds),
        min_ready_seconds: min_ready_seconds(ds),
        now,
        gate,
    };
    if budget.max_surge == 0 {
        Ok(plan_without_surge(&survey, &budget, &view))
    } else {
        plan_with_surge(&survey, &budget, &view)
    }
}

/// What the per-node decisions need to know about the current revision, the clock and the gate.
struct NodeView<'h> {
    hash: &'h str,
    generation: Option<i64>,
    min_ready_seconds: i32,
    now: Timestamp,
    gate: Gate<'h>,
}

impl NodeView<'_> {
    fn available(&self, pod: &CachedPod) -> bool {
        is_available(pod, self.min_ready_seconds, self.now)
    }
}

/// §5.2: delete just enough outdated pods to stay within `maxUnavailable`.
fn plan_without_surge(survey: &Survey, budget: &Budget, view: &NodeView) -> RollingUpdatePlan {
    let mut num_unavailable = 0i64;
    let mut replacements = Vec::new();
    let mut candidates = Vec::new();
    let mut held_by = Vec::new();
    let mut over_budget = Vec::new();
    let mut held = Vec::new();
    for entry in &survey.entries {
        let (node, pods) = (entry.node, entry.pods);
        let Some((new, old)) = find_updated_pods_on_node(pods, view.hash, view.generation) else {
            // Excess pods: manage prunes them; the node counts as unavailable meanwhile.
            num_unavailable += 1;
            held_by.push(node.to_string());
            continue;
        };
        match (new, old) {
            (None, None) | (Some(_), Some(_)) => {
                num_unavailable += 1;
                held_by.push(node.to_string());
            }
            (Some(new), None) => {
                if !view.available(new) {
                    num_unavailable += 1;
                    held_by.push(node.to_string());
                }
            }
            (None, Some(old)) => {
                // Nodes that should not run (or are not in the node list) are held by `keep` only.
                let should_run = entry.should_run.unwrap_or(false);
                let gated = view.gate.holds(node, should_run);
                if !view.available(old) {
                    // An outdated pod that is not available is always replaced (unless held).
                    if gated {
                        held.push(node);
                    } else {
                        replacements.push(name_of(old));
                    }
                    num_unavailable += 1;
                    held_by.push(node.to_string());
                } else if gated {
                    held.push(node);
                } else if num_unavailable < budget.max_unavailable {
                    candidates.push((node, name_of(old)));
                } else {
                    over_budget.push(node);
                }
            }
        }
    }
    let take = at_most(budget.max_unavailable - num_unavailable, candidates.len());
    let waiting: BTreeMap<String, UpdateWait> = over_budget
        .into_iter()
        .chain(candidates.iter().skip(take).map(|(node, _)| *node))
        .map(|node| (node.to_string(), UpdateWait::MaxUnavailable))
        .chain(
            held.into_iter()
                .map(|node| (node.to_string(), UpdateWait::Held)),
        )
        .collect();
    replacements.extend(candidates.into_iter().take(take).map(|(_, pod)| pod));
    RollingUpdatePlan {
        pods_to_delete: replacements,
        nodes_to_create: Vec::new(),
        waiting,
        held_by,
        budget: *budget,
    }
}

/// §5.3: surge new pods beside old ones, delete old pods once their replacement is available.
fn plan_with_surge(
    survey: &Survey,
    budget: &Budget,
    view: &NodeView,
) -> Result<RollingUpdatePlan, RollingUpdateError> {
    let mut pods_to_delete = Vec::new();
    let mut should_not_run_pods = Vec::new();
    let mut allowed_new_nodes = Vec::new();
    let mut candidate_new_nodes = Vec::new();
    let mut waiting = BTreeMap::new();
    let mut held_by = Vec::new();
    let (mut num_surge, mut num_available) = (0i64, 0i64);
    for entry in &survey.entries {
        let (node, pods) = (entry.node, entry.pods);
        let Some((new, old)) = find_updated_pods_on_node(pods, view.hash, view.generation) else {
            // Excess pods: manage prunes them; the node counts as surging meanwhile.
            num_surge += 1;
            held_by.push(node.to_string());
            continue;
        };
        // Availability over every node, including those that should no longer run a pod.
        let old_available = old.is_some_and(|p| view.available(p));
        match (old, new) {
            (Some(_), _) if old_available => num_available += 1,
            (None, Some(new)) if view.available(new) => num_available += 1,
            _ => {}
        }
        match (old, new) {
            // Nothing outdated here; manage creates on empty nodes.
            (None, _) => {}
            (Some(old), None) => {
                let should_run =
                    entry
                        .should_run
                        .ok_or_else(|| RollingUpdateError::NodeNotFound {
                            node: node.to_string(),
                        })?;
                if view.gate.holds(node, should_run) {
                    // Counted as available (or not) above, like an updated pod; left alone.
                    waiting.insert(node.to_string(), UpdateWait::Held);
                } else if !old_available {
                    if should_run {
                        // Replace an unavailable pod at once, whatever the surge budget.
                        allowed_new_nodes.push(node.to_string());
                    } else {
                        pods_to_delete.push(name_of(old));
                    }
                } else if !should_run {
                    should_not_run_pods.push((node, name_of(old)));
                } else if num_surge < budget.max_surge {
                    candidate_new_nodes.push(node.to_string());
                } else {
                    waiting.insert(node.to_string(), UpdateWait::MaxSurge);
                }
            }
            (Some(old), Some(new)) => {
                if view.available(new) {
                    // Completion: held by `keep` only.
                    if view.gate.keeps(node) {
                        waiting.insert(node.to_string(), UpdateWait::Held);
                    } else {
                        pods_to_delete.push(name_of(old));
                    }
                } else {
                    // Waiting for the new pod to become available.
                    num_surge += 1;
                    held_by.push(node.to_string());
                    waiting.insert(node.to_string(), UpdateWait::NewPodNotAvailable);
                }
            }
        }
    }
    // Scheduling constraints changed (PR #119317): old pods on nodes that no longer qualify go
    // only while more pods are available than desired, so availability never drops.
    let deletable = at_most(num_available - budget.desired, should_not_run_pods.len());
    for (node, _) in should_not_run_pods.iter().skip(deletable) {
        waiting.insert(node.to_string(), UpdateWait::AvailabilityFloor);
    }
    pods_to_delete.extend(
        should_not_run_pods
            .into_iter()
            .take(deletable)
            .map(|(_, pod)| pod),
    );

    let take = at_most(budget.max_surge - num_surge, candidate_new_nodes.len());
    for node in candidate_new_nodes.iter().skip(take) {
        waiting.insert(node.clone(), UpdateWait::MaxSurge);
    }
    allowed_new_nodes.extend(candidate_new_nodes.into_iter().take(take));
    Ok(RollingUpdatePlan {
        pods_to_delete,
        nodes_to_create: allowed_new_nodes,
        waiting,
        held_by,
        budget: *budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{
        daemonset, ds_pod, ds_pod_arc, node, node_with_labels, running_ready, template_spec_mut,
        toleration, with_creation_timestamp, with_deletion_timestamp, with_name,
        with_node_selector, with_on_delete, with_pod_label, with_ready, with_rolling_update,
        with_taint, with_template_generation, with_toleration,
    };
    use crate::core::labels::{CONTROLLER_REVISION_HASH, POD_TEMPLATE_GENERATION};
    use crate::core::pod_state::{hash_label, is_ready};
    use crate::core::simulation::{Mode, Sim};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::collections::{BTreeSet, HashSet};

    fn nodes(n: usize) -> Vec<CachedNode> {
        (0..n).map(|i| node(&format!("node-{i}"))).collect()
    }

    /// The survey as it was built before it became a sorted list: a B-tree of every node with
    /// pods plus every wanted node, and `should_run` by name (the last placement's).
    fn survey_by_tree(
        placements: &Placements<'_>,
        node_pods: &NodePods,
    ) -> (i64, Vec<(String, usize, Option<bool>)>) {
        let mut should_run = std::collections::HashMap::new();
        let mut desired = 0i64;
        let mut entries: BTreeMap<&str, &[Arc<CachedPod>]> = node_pods
            .iter()
            .map(|(node, pods)| (node.as_str(), pods.as_slice()))
            .collect();
        for placed in placements {
            should_run.insert(placed.name, placed.placement.should_run);
            if placed.placement.should_run {
                desired += 1;
                entries.entry(placed.name).or_insert(&[]);
            }
        }
        let entries = entries
            .into_iter()
            .map(|(node, pods)| (node.to_string(), pods.len(), should_run.get(node).copied()))
            .collect();
        (desired, entries)
    }

    proptest::proptest! {
        /// The survey lists the same entries in the same order with the same `should_run` as the
        /// B-tree it replaced, for node lists in any order, with names listed twice, and with pods
        /// on nodes missing from the list.
        #[test]
        fn survey_is_the_tree_it_replaced(
            listed in proptest::collection::vec((0usize..12, proptest::prelude::any::<bool>()), 0..16),
            with_pods in proptest::collection::vec((0usize..16, 0usize..3), 0..12),
            sorted in proptest::prelude::any::<bool>(),
        ) {
            let ds = with_node_selector(daemonset("foo"), &[("run", "yes")]);
            let name = |i: usize| format!("node-{i:02}");
            let mut node_list: Vec<CachedNode> = listed
                .iter()
                .map(|&(i, run)| node_with_labels(&name(i), &[("run", if run { "yes" } else { "no" })]))
                .collect();
            if sorted {
                node_list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            }
            let mut node_pods = NodePods::default();
            for &(i, n) in &with_pods {
                let pods = (0..n).map(|_| ds_pod_arc(&ds, &name(i), "h")).collect();
                node_pods.insert(name(i), pods);
            }
            let placements = Placements::of(&ds, &node_list);
            let got = survey(&placements, &node_pods);
            let got_entries: Vec<(String, usize, Option<bool>)> = got
                .entries
                .iter()
                .map(|e| (e.node.to_string(), e.pods.len(), e.should_run))
                .collect();
            proptest::prop_assert_eq!((got.desired, got_entries), survey_by_tree(&placements, &node_pods));
        }
    }

    /// Upstream's `newDaemonSet`: OnDelete, and no template-generation annotation (no API server
    /// maintains it in the unit tests), so only the hash label tells old from new.
    fn upstream_ds() -> DaemonSet {
        with_on_delete(with_template_generation(daemonset("foo"), None))
    }

    /// Upstream's `newUpdateUnavailable`.
    fn max_unavailable(ds: &mut DaemonSet, value: IntOrString) {
        *ds = with_rolling_update(ds.clone(), Some(value), None);
    }

    /// Upstream's `newUpdateSurge`: maxUnavailable 0 and the given maxSurge.
    fn max_surge(ds: &mut DaemonSet, value: IntOrString) {
        *ds = with_rolling_update(ds.clone(), Some(IntOrString::Int(0)), Some(value));
    }

    fn set_image(ds: &mut DaemonSet, image: &str) {
        template_spec_mut(ds).containers[0].image = Some(image.to_string());
    }

    fn pct(value: &str) -> IntOrString {
        IntOrString::String(value.to_string())
    }

    fn pods_by_node(pods: Vec<(&str, CachedPod)>) -> NodePods {
        let mut map = NodePods::default();
        for (node, pod) in pods {
            map.entry(node.to_string()).or_default().push(Arc::new(pod));
        }
        map
    }

    fn pod(ds: &DaemonSet, node: &str, name: &str, hash: &str) -> CachedPod {
        with_name(ds_pod(ds, node, hash), name)
    }

    fn ready_pod(ds: &DaemonSet, node: &str, name: &str, hash: &str) -> CachedPod {
        running_ready(pod(ds, node, name, hash), 0)
    }

    fn plan(
        ds: &DaemonSet,
        nodes: &[CachedNode],
        pods: &NodePods,
        hash: &str,
        now: i64,
    ) -> RollingUpdatePlan {
        // The decisions only; the reasons beside them are checked by the `waiting_*` tests.
        match plan_rolling_update(ds, nodes, pods, hash, crate::core::fixtures::ts(now)) {
            Ok(plan) => RollingUpdatePlan {
                pods_to_delete: plan.pods_to_delete,
                nodes_to_create: plan.nodes_to_create,
                ..RollingUpdatePlan::default()
            },
            Err(error) => panic!("rolling update failed: {error}"),
        }
    }

    fn ready_count(sim: &Sim) -> usize {
        sim.pods().filter(|(_, p)| is_ready(p)).count()
    }

    fn all_updated_and_ready(sim: &Sim) -> bool {
        sim.pods()
            .all(|(_, p)| hash_label(p) == Some(sim.hash.as_str()) && is_ready(p))
    }

    // -----------------------------------------------------------------------------------------
    // Catalogue §10.2, `pkg/controller/daemon/update_test.go`
    // -----------------------------------------------------------------------------------------

    /// #67
    #[test]
    fn test_daemon_set_updates_pods() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.mark_all_ready();
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_unavailable(ds, IntOrString::Int(2));
        });
        for _ in 0..2 {
            sim.expect_sync(0, 2);
            sim.expect_sync(2, 0);
            sim.mark_all_ready();
        }
        sim.expect_sync(0, 1);
        sim.expect_sync(1, 0);
        sim.mark_all_ready();
        sim.expect_sync(0, 0);
        assert!(all_updated_and_ready(&sim));
        assert_eq!(sim.pods().count(), 5);
    }

    /// #68
    #[test]
    fn test_daemon_set_updates_pods_with_max_surge() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.mark_all_ready();
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_surge(ds, IntOrString::Int(2));
        });
        for (creates, deletes) in [(2, 0), (2, 2), (1, 2), (0, 1)] {
            sim.expect_sync(creates, deletes);
            sim.expect_sync(0, 0);
            sim.mark_all_ready();
        }
        assert!(all_updated_and_ready(&sim));
        assert_eq!(sim.pods().count(), 5);
    }

    /// #69 (upstream's name keeps its typo)
    #[test]
    fn test_daemon_set_updates_pods_not_match_tainst_with_max_surge() {
        const CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";
        let mut ds = with_toleration(upstream_ds(), toleration(CONTROL_PLANE, "Exists", "", ""));
        max_surge(&mut ds, IntOrString::Int(1));
        let mut all = nodes(5);
        all[0] = with_taint(node("node-0"), CONTROL_PLANE, "", "NoSchedule");
        let mut sim = Sim::new(ds, all, "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.mark_all_ready();

        // The new template no longer tolerates node-0: 5 available > 4 desired, so its pod goes.
        sim.update_template("h2", |ds| template_spec_mut(ds).tolerations = None);
        let first = sim.expect_sync(1, 1);
        let rolling = first
            .rolling
            .as_ref()
            .map(|r| r.plan.clone())
            .unwrap_or_default();
        assert_eq!(
            rolling.pods_to_delete,
            vec!["foo-000001-node-0".to_string()]
        );
        sim.expect_sync(0, 0);
        sim.mark_all_ready();
        for _ in 0..3 {
            sim.expect_sync(1, 1);
            sim.expect_sync(0, 0);
            sim.mark_all_ready();
        }
        sim.expect_sync(0, 1);
        sim.expect_sync(0, 0);
        assert!(sim.pods_on("node-0").is_empty());
        assert!(all_updated_and_ready(&sim));
        assert_eq!(sim.pods().count(), 4);
    }

    /// #70 (upstream: `TestDaemonSetUpdatesWhenNewPodIsNotReady`)
    #[test]
    fn test_daemon_set_updates_when_new_pod_is_not_ready() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.mark_all_ready();
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_unavailable(ds, IntOrString::Int(3));
        });
        // The new pods never become ready: numUnavailable == maxUnavailable, the rollout stalls.
        sim.expect_sync(0, 3);
        sim.expect_sync(3, 0);
        sim.expect_sync(0, 0);
        sim.expect_sync(0, 0);
    }

    /// #71
    #[test]
    fn test_daemon_set_updates_some_old_pods_not_ready() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.mark_all_ready();
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_unavailable(ds, IntOrString::Int(2));
        });
        // All old pods are available: 2 are updated.
        sim.expect_sync(0, 2);
        sim.expect_sync(2, 0);
        sim.expect_sync(0, 0);
        // Another update: the 2 unready pods are replaced, the 3 available ones stay untouched.
        sim.update_template("h3", |ds| set_image(ds, "foo2/bar3"));
        sim.expect_sync(0, 2);
        sim.expect_sync(2, 0);
        sim.expect_sync(0, 0);
        assert_eq!(ready_count(&sim), 3);
    }

    /// #72
    #[test]
    fn test_daemon_set_updates_save_old_healthy_pods() {
        let mut sim = Sim::new(upstream_ds(), nodes(20), "h1", Mode::FakePodControl);
        sim.expect_sync(20, 0);
        sim.mark_all_ready();
        // A first update leaves 10 ready old pods which must never be touched.
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_unavailable(ds, IntOrString::Int(10));
        });
        sim.expect_sync(0, 10);
        sim.expect_sync(10, 0);
        sim.expect_sync(0, 0);
        let old_ready: BTreeSet<String> = sim
            .pods()
            .filter(|(_, p)| is_ready(p))
            .filter_map(|(_, p)| p.metadata.name.clone())
            .collect();
        assert_eq!(old_ready.len(), 10);

        // Upstream draws maxUnavailable at random in [0, 10); every value is covered here.
        for (i, budget) in [3, 7, 0, 9, 1, 5, 8, 2, 6, 4].into_iter().enumerate() {
            sim.update_template(&format!("h3-{i}"), |ds| {
                set_image(ds, &format!("foo2/bar3-{i}"));
                max_unavailable(ds, IntOrString::Int(budget));
            });
            // Only the 10 unavailable pods are replaced.
            sim.expect_sync(0, 10);
            sim.expect_sync(10, 0);
            sim.expect_sync(0, 0);
            let ready: BTreeSet<String> = sim
                .pods()
                .filter(|(_, p)| is_ready(p))
                .filter_map(|(_, p)| p.metadata.name.clone())
                .collect();
            assert!(
                ready.is_superset(&old_ready),
                "iteration {i} (maxUnavailable {budget}) touched ready pods"
            );
        }

        sim.update_template("h4", |ds| {
            set_image(ds, "foo2/bar4");
            max_unavailable(ds, IntOrString::Int(11));
        });
        sim.expect_sync(0, 11);
        sim.expect_sync(11, 0);
        sim.expect_sync(0, 0);
        assert_eq!(ready_count(&sim), 9);
    }

    /// #73
    #[test]
    fn test_daemon_set_updates_all_old_not_ready_pods_and_new_not_ready_pods() {
        let mut sim = Sim::new(upstream_ds(), nodes(100), "h1", Mode::FakePodControl);
        sim.expect_sync(100, 0);
        sim.mark_all_ready();
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_unavailable(ds, IntOrString::Int(10));
        });
        for _ in 0..10 {
            sim.expect_sync(0, 10);
            sim.expect_sync(10, 0);
            sim.mark_all_ready();
        }
        sim.expect_sync(0, 0);

        // 10 available old pods, 2 unavailable old pods, 88 unavailable new pods.
        let names = sim.pod_names();
        let now = sim.now;
        let mut old_unavailable = BTreeSet::new();
        for (i, name) in names.iter().enumerate() {
            sim.modify_pod(name, |pod| {
                if i >= 10 {
                    *pod = with_ready(pod.clone(), false, now);
                }
                if i < 12 {
                    *pod = with_pod_label(pod.clone(), CONTROLLER_REVISION_HASH, "h1");
                }
            });
            if (10..12).contains(&i) {
                old_unavailable.insert(name.clone());
            }
        }
        sim.expect_sync(0, 2);
        sim.expect_sync(2, 0);
        sim.expect_sync(0, 0);
        let remaining: BTreeSet<String> = sim.pod_names().into_iter().collect();
        assert!(
            remaining.is_disjoint(&old_unavailable),
            "the unavailable old pods were replaced"
        );
    }

    /// #74
    #[test]
    fn test_daemon_set_updates_all_old_pods_not_ready() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_unavailable(ds, IntOrString::Int(3));
        });
        // All old pods are unavailable, so all are replaced whatever the budget.
        sim.expect_sync(0, 5);
        sim.expect_sync(5, 0);
        sim.expect_sync(0, 0);
    }

    /// #75
    #[test]
    fn test_daemon_set_updates_all_old_pods_not_ready_max_surge() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        sim.update_template("h2", |ds| {
            set_image(ds, "foo2/bar2");
            max_surge(ds, IntOrString::Int(3));
        });
        // All old pods are unavailable, so each gets a new pod whatever the surge budget.
        sim.now = 100;
        sim.expect_sync(5, 0);
        // Waiting for the new pods to become ready: the unready old pods are deleted.
        sim.now = 200;
        sim.expect_sync(0, 5);

        assert_eq!(sim.set_readiness(true, 5, |_, _| true), 5);
        sim.update_template("h3", |ds| {
            ds.spec
                .get_or_insert_with(Default::default)
                .min_ready_seconds = Some(15);
            set_image(ds, "foo3/bar3");
        });
        sim.now = 300;
        sim.expect_sync(3, 0);

        let surged: HashSet<String> = sim
            .pods()
            .filter(|(_, p)| hash_label(p) == Some("h3"))
            .map(|(node, _)| node.to_string())
            .collect();
        // Two updated pods become ready at t=300.
        assert_eq!(
            sim.set_readiness(true, 2, |_, p| hash_label(p) == Some("h3")),
            2
        );
        // One old pod on a node without an updated pod becomes unready.
        let unready = sim.set_readiness(false, 1, |node, p| {
            hash_label(p) != Some("h3") && !surged.contains(node)
        });
        assert_eq!(unready, 1);

        // The new pods wait for minReadySeconds; the unready old pod gets a replacement.
        sim.now = 310;
        sim.expect_sync(1, 0);
        // The two ready new pods are available: their old pods go, as does the unready old pod;
        // a surge slot frees up for the last node.
        sim.now = 320;
        sim.expect_sync(1, 3);
        assert_eq!(
            sim.set_readiness(true, 3, |_, p| hash_label(p) == Some("h3")),
            3
        );
        sim.now = 340;
        sim.expect_sync(0, 2);
        // The update is complete.
        sim.now = 350;
        sim.expect_sync(0, 0);
        assert!(all_updated_and_ready(&sim));
        assert_eq!(sim.pods().count(), 5);
    }

    /// #76
    #[test]
    fn test_daemon_set_updates_no_template_changed() {
        let mut sim = Sim::new(upstream_ds(), nodes(5), "h1", Mode::FakePodControl);
        sim.expect_sync(5, 0);
        max_unavailable(&mut sim.ds, IntOrString::Int(3));
        // Only the strategy changed: no pod is removed.
        sim.expect_sync(0, 0);
    }

    /// #77
    #[test]
    fn test_get_unavailable_numbers() {
        struct Case {
            name: &'static str,
            nodes: usize,
            ds: DaemonSet,
            pods: NodePods,
            expected: Budget,
            empty_nodes: usize,
        }
        let x = with_template_generation(daemonset("x"), None);
        let with = |update: fn(&mut DaemonSet, IntOrString), value: IntOrString| {
            let mut ds = x.clone();
            update(&mut ds, value);
            ds
        };
        let two_ready = || {
            pods_by_node(vec![
                ("node-0", ready_pod(&x, "node-0", "pod-0", "")),
                ("node-1", ready_pod(&x, "node-1", "pod-1", "")),
            ])
        };
        let one_ready = || pods_by_node(vec![("node-0", ready_pod(&x, "node-0", "pod-0", ""))]);
        let budget = |max_surge, max_unavailable, desired| Budget {
            max_surge,
            max_unavailable,
            desired,
        };
        let cases = vec![
            Case {
                name: "No nodes",
                nodes: 0,
                ds: with(max_unavailable, IntOrString::Int(0)),
                pods: NodePods::default(),
                expected: budget(0, 0, 0),
                empty_nodes: 0,
            },
            Case {
                name: "Two nodes with ready pods",
                nodes: 2,
                ds: with(max_unavailable, IntOrString::Int(1)),
                pods: two_ready(),
                expected: budget(0, 1, 2),
                empty_nodes: 0,
            },
            Case {
                name: "Two nodes, one node without pods",
                nodes: 2,
                ds: with(max_unavailable, IntOrString::Int(0)),
                pods: one_ready(),
                expected: budget(0, 1, 2),
                empty_nodes: 1,
            },
            Case {
                name: "Two nodes, one node without pods, surge",
                nodes: 2,
                ds: with(max_surge, IntOrString::Int(0)),
                pods: one_ready(),
                expected: budget(0, 1, 2),
                empty_nodes: 1,
            },
            Case {
                name: "Two nodes with pods, MaxUnavailable in percents",
                nodes: 2,
                ds: with(max_unavailable, pct("50%")),
                pods: two_ready(),
                expected: budget(0, 1, 2),
                empty_nodes: 0,
            },
            Case {
                name: "Two nodes with pods, MaxUnavailable in percents, surge",
                nodes: 2,
                ds: with(max_surge, pct("50%")),
                pods: two_ready(),
                expected: budget(1, 0, 2),
                empty_nodes: 0,
            },
            Case {
                name: "Two nodes with pods, MaxUnavailable is 100%, surge",
                nodes: 2,
                ds: with(max_surge, pct("100%")),
                pods: two_ready(),
                expected: budget(2, 0, 2),
                empty_nodes: 0,
            },
            Case {
                name: "Two nodes with pods, MaxUnavailable in percents, pod terminating",
                nodes: 3,
                ds: with(max_unavailable, pct("50%")),
                pods: pods_by_node(vec![
                    ("node-0", ready_pod(&x, "node-0", "pod-0", "")),
                    (
                        "node-1",
                        with_deletion_timestamp(ready_pod(&x, "node-1", "pod-1", ""), 0),
                    ),
                ]),
                expected: budget(0, 2, 3),
                empty_nodes: 1,
            },
        ];
        for mut case in cases {
            let result = updated_desired_node_counts(&case.ds, &nodes(case.nodes), &mut case.pods);
            assert_eq!(result, Ok(case.expected), "{}", case.name);
            let empty = case.pods.values().filter(|pods| pods.is_empty()).count();
            assert_eq!(empty, case.empty_nodes, "{}: empty node entries", case.name);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Further behaviour of §5 not covered by the catalogue
    // -----------------------------------------------------------------------------------------

    #[test]
    fn invalid_budgets_name_the_field_and_the_value() {
        let mut ds = daemonset("foo");
        max_unavailable(&mut ds, pct("lots"));
        let pods = pods_by_node(vec![("node-0", ready_pod(&ds, "node-0", "a", "h1"))]);
        let error = plan_rolling_update(&ds, &nodes(1), &pods, "h2", crate::core::fixtures::ts(0));
        let Err(RollingUpdateError::Budget(InvalidBudget::MaxUnavailable { value, source })) =
            &error
        else {
            panic!("expected an invalid maxUnavailable, got {error:?}");
        };
        assert_eq!(value, "lots");
        assert_eq!(source, &BudgetError::NotAPercentage("lots".into()));
        let message = error
            .as_ref()
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            message.contains("rollingUpdate.maxUnavailable \"lots\"") && message.contains("25%"),
            "{message}"
        );

        let mut ds = daemonset("foo");
        max_surge(&mut ds, pct("x%"));
        let mut pods = pods.clone();
        let error = updated_desired_node_counts(&ds, &nodes(1), &mut pods);
        assert_eq!(
            error,
            Err(InvalidBudget::MaxSurge {
                value: "x%".into(),
                source: BudgetError::InvalidPercentage("x%".into())
            })
        );
        let message = error
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            message.contains("rollingUpdate.maxSurge \"x%\""),
            "{message}"
        );
    }

    #[test]
    fn empty_entries_are_added_even_when_a_budget_is_invalid() {
        let mut ds = daemonset("foo");
        max_unavailable(&mut ds, pct("5"));
        let mut pods = NodePods::default();
        assert!(updated_desired_node_counts(&ds, &nodes(2), &mut pods).is_err());
        assert_eq!(pods.len(), 2);
    }

    #[test]
    fn on_delete_plans_nothing() {
        let ds = with_on_delete(daemonset("foo"));
        let pods = pods_by_node(vec![("node-0", pod(&ds, "node-0", "a", "old"))]);
        assert_eq!(
            plan(&ds, &nodes(1), &pods, "new", 0),
            RollingUpdatePlan::default()
        );
    }

    #[test]
    fn percentages_round_up_against_desired_nodes() {
        let mut ds = daemonset("foo");
        max_unavailable(&mut ds, pct("30%"));
        let names: Vec<(String, String)> = (0..5)
            .map(|i| (format!("node-{i}"), format!("p{i}")))
            .collect();
        let pods = pods_by_node(
            names
                .iter()
                .map(|(n, p)| (n.as_str(), ready_pod(&ds, n, p, "old")))
                .collect(),
        );
        // ceil(30% × 5) = 2; candidates are taken in node-name order.
        let plan = plan(&ds, &nodes(5), &pods, "new", 0);
        assert_eq!(
            plan.pods_to_delete,
            vec!["p0".to_string(), "p1".to_string()]
        );
        assert!(plan.nodes_to_create.is_empty());
    }

    #[test]
    fn without_surge_unavailable_old_pods_are_always_replaced_and_consume_the_budget() {
        let mut ds = daemonset("foo");
        max_unavailable(&mut ds, IntOrString::Int(2));
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-1", pod(&ds, "node-1", "b", "old")),
            ("node-2", ready_pod(&ds, "node-2", "c", "old")),
            ("node-3", pod(&ds, "node-3", "d", "old")),
            ("node-4", ready_pod(&ds, "node-4", "e", "old")),
        ]);
        // b and d count against the budget of 2: a was a candidate when seen, but none is left.
        assert_eq!(
            plan(&ds, &nodes(5), &pods, "new", 0).pods_to_delete,
            vec!["b", "d"]
        );
        max_unavailable(&mut ds, IntOrString::Int(3));
        assert_eq!(
            plan(&ds, &nodes(5), &pods, "new", 0).pods_to_delete,
            vec!["b", "d", "a"]
        );
    }

    /// The whole plan, reasons included.
    fn full_plan(
        ds: &DaemonSet,
        nodes: &[CachedNode],
        pods: &NodePods,
        hash: &str,
    ) -> RollingUpdatePlan {
        match plan_rolling_update(ds, nodes, pods, hash, crate::core::fixtures::ts(100)) {
            Ok(plan) => plan,
            Err(error) => panic!("rolling update failed: {error}"),
        }
    }

    fn waits(plan: &RollingUpdatePlan) -> Vec<(&str, UpdateWait)> {
        plan.waiting.iter().map(|(n, w)| (n.as_str(), *w)).collect()
    }

    #[test]
    fn waiting_without_surge_names_the_nodes_that_hold_max_unavailable() {
        let ds = daemonset("foo"); // maxUnavailable 1
        // node-0 runs a new pod that is not ready: it holds the budget; node-1 and node-2 wait.
        let pods = pods_by_node(vec![
            ("node-0", pod(&ds, "node-0", "a", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
            ("node-2", ready_pod(&ds, "node-2", "c", "old")),
        ]);
        let plan = full_plan(&ds, &nodes(3), &pods, "new");
        assert!(plan.pods_to_delete.is_empty());
        assert_eq!(plan.held_by, vec!["node-0"]);
        assert_eq!(plan.budget.max_unavailable, 1);
        assert_eq!(
            waits(&plan),
            vec![
                ("node-1", UpdateWait::MaxUnavailable),
                ("node-2", UpdateWait::MaxUnavailable)
            ]
        );
        // All available: one old pod goes, the other waits; nobody holds the budget yet.
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        let plan = full_plan(&ds, &nodes(2), &pods, "new");
        assert_eq!(plan.pods_to_delete, vec!["a"]);
        assert!(plan.held_by.is_empty());
        assert_eq!(waits(&plan), vec![("node-1", UpdateWait::MaxUnavailable)]);
    }

    #[test]
    fn waiting_with_surge_names_surging_nodes_and_pending_new_pods() {
        let ds = with_rolling_update(
            daemonset("foo"),
            Some(IntOrString::Int(0)),
            Some(IntOrString::Int(1)),
        );
        // node-0 surges (new pod not available beside the old); node-1 waits for maxSurge.
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-0", pod(&ds, "node-0", "a2", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        let plan = full_plan(&ds, &nodes(2), &pods, "new");
        assert!(plan.pods_to_delete.is_empty() && plan.nodes_to_create.is_empty());
        assert_eq!(plan.held_by, vec!["node-0"]);
        assert_eq!(
            waits(&plan),
            vec![
                ("node-0", UpdateWait::NewPodNotAvailable),
                ("node-1", UpdateWait::MaxSurge)
            ]
        );
        // An old pod on a node that no longer qualifies waits while availability is at the floor.
        let ds = with_node_selector(ds, &[("want", "yes")]);
        let nodes = vec![
            node_with_labels("node-0", &[("want", "yes")]),
            node("node-1"),
        ];
        let pods = pods_by_node(vec![
            ("node-0", pod(&ds, "node-0", "a", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        let plan = full_plan(&ds, &nodes, &pods, "new");
        assert!(plan.pods_to_delete.is_empty());
        assert_eq!(
            waits(&plan),
            vec![("node-1", UpdateWait::AvailabilityFloor)]
        );
        // Once node-0's new pod is available, node-1's old pod goes.
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        let plan = full_plan(&ds, &nodes, &pods, "new");
        assert_eq!(plan.pods_to_delete, vec!["b"]);
        assert!(plan.waiting.is_empty());
    }

    #[test]
    fn without_surge_terminating_pods_are_ignored_and_their_node_counts_as_unavailable() {
        let ds = daemonset("foo"); // maxUnavailable 1
        let pods = pods_by_node(vec![
            (
                "node-0",
                with_deletion_timestamp(ready_pod(&ds, "node-0", "a", "old"), 0),
            ),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 0),
            RollingUpdatePlan::default()
        );
        // A new pod beside a terminating old one: only the new one is seen.
        let pods = pods_by_node(vec![
            (
                "node-0",
                with_deletion_timestamp(ready_pod(&ds, "node-0", "a", "old"), 0),
            ),
            ("node-0", ready_pod(&ds, "node-0", "a2", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 0).pods_to_delete,
            vec!["b"]
        );
    }

    #[test]
    fn without_surge_excess_pods_and_mixed_nodes_count_as_unavailable() {
        let ds = daemonset("foo"); // maxUnavailable 1
        for extra in [("a2", "old"), ("a2", "new")] {
            let pods = pods_by_node(vec![
                ("node-0", ready_pod(&ds, "node-0", "a", "old")),
                ("node-0", ready_pod(&ds, "node-0", extra.0, extra.1)),
                ("node-1", ready_pod(&ds, "node-1", "b", "old")),
            ]);
            assert_eq!(
                plan(&ds, &nodes(2), &pods, "new", 0),
                RollingUpdatePlan::default(),
                "{extra:?}"
            );
        }
    }

    #[test]
    fn without_surge_pods_on_nodes_that_no_longer_exist_are_candidates_too() {
        let ds = daemonset("foo");
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "new")),
            ("node-gone", ready_pod(&ds, "node-gone", "b", "old")),
        ]);
        assert_eq!(
            plan(&ds, &nodes(1), &pods, "new", 0).pods_to_delete,
            vec!["b"]
        );
    }

    #[test]
    fn updated_is_also_decided_by_the_template_generation_label() {
        let ds = with_template_generation(daemonset("foo"), Some("4"));
        let by_generation = with_pod_label(
            ready_pod(&ds, "node-0", "a", "other"),
            POD_TEMPLATE_GENERATION,
            "4",
        );
        let stale = with_pod_label(
            ready_pod(&ds, "node-1", "b", "other"),
            POD_TEMPLATE_GENERATION,
            "3",
        );
        let pods = pods_by_node(vec![("node-0", by_generation), ("node-1", stale)]);
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 0).pods_to_delete,
            vec!["b"]
        );
    }

    #[test]
    fn availability_honours_min_ready_seconds_at_now() {
        let mut ds = crate::core::fixtures::with_min_ready_seconds(daemonset("foo"), 10);
        max_unavailable(&mut ds, IntOrString::Int(1));
        // node-1's old pod has been ready since t=5: before t=15 it is not available, so it is
        // replaced and uses the budget; from t=15 on both are candidates and node-0's goes first.
        let pods = pods_by_node(vec![
            ("node-0", running_ready(pod(&ds, "node-0", "a", "old"), 0)),
            ("node-1", running_ready(pod(&ds, "node-1", "b", "old"), 5)),
        ]);
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 14).pods_to_delete,
            vec!["b"]
        );
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 15).pods_to_delete,
            vec!["a"]
        );
    }

    #[test]
    fn surge_creates_within_budget_and_replaces_unavailable_old_pods_regardless() {
        let mut ds = daemonset("foo");
        max_surge(&mut ds, IntOrString::Int(1));
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-1", pod(&ds, "node-1", "b", "old")),
            ("node-2", ready_pod(&ds, "node-2", "c", "old")),
            ("node-3", pod(&ds, "node-3", "d", "old")),
        ]);
        let plan = plan(&ds, &nodes(5), &pods, "new", 0);
        // node-4 has no pod: manage creates there. Unavailable pods on node-1 and node-3 are
        // replaced at once; one surge slot goes to the first available old pod.
        assert_eq!(plan.nodes_to_create, vec!["node-1", "node-3", "node-0"]);
        assert!(plan.pods_to_delete.is_empty());
    }

    #[test]
    fn surge_deletes_old_pods_once_the_new_one_is_available_and_counts_waiting_nodes() {
        let mut ds = crate::core::fixtures::with_min_ready_seconds(daemonset("foo"), 10);
        max_surge(&mut ds, IntOrString::Int(1));
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            (
                "node-0",
                with_creation_timestamp(running_ready(pod(&ds, "node-0", "a2", "new"), 20), 15),
            ),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        // At t=25 node-0's new pod is not available yet: it uses the only surge slot.
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 25),
            RollingUpdatePlan::default()
        );
        // At t=30 it is: node-0's old pod goes and node-1 may surge.
        let plan = plan(&ds, &nodes(2), &pods, "new", 30);
        assert_eq!(plan.pods_to_delete, vec!["a"]);
        assert_eq!(plan.nodes_to_create, vec!["node-1"]);
    }

    #[test]
    fn surge_removes_pods_from_nodes_that_should_not_run_only_while_enough_are_available() {
        let mut ds = with_node_selector(daemonset("foo"), &[("color", "blue")]);
        max_surge(&mut ds, IntOrString::Int(1));
        let all = vec![
            node("node-0"),
            node_with_labels("node-1", &[("color", "blue")]),
            node_with_labels("node-2", &[("color", "blue")]),
        ];
        // desired 2; available: node-0 (old), node-1 (old), node-2 (new) = 3 > 2.
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
            ("node-2", ready_pod(&ds, "node-2", "c", "new")),
        ]);
        let plan_now = plan(&ds, &all, &pods, "new", 0);
        assert_eq!(plan_now.pods_to_delete, vec!["a"]);
        assert_eq!(plan_now.nodes_to_create, vec!["node-1"]);
        // With node-2's new pod not ready only 2 are available: node-0's pod stays.
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
            ("node-2", pod(&ds, "node-2", "c", "new")),
        ]);
        let plan_now = plan(&ds, &all, &pods, "new", 0);
        assert!(plan_now.pods_to_delete.is_empty());
        assert_eq!(plan_now.nodes_to_create, vec!["node-1"]);
        // An unavailable old pod on such a node goes at once.
        let pods = pods_by_node(vec![
            ("node-0", pod(&ds, "node-0", "a", "old")),
            ("node-1", ready_pod(&ds, "node-1", "b", "new")),
            ("node-2", ready_pod(&ds, "node-2", "c", "new")),
        ]);
        assert_eq!(plan(&ds, &all, &pods, "new", 0).pods_to_delete, vec!["a"]);
    }

    #[test]
    fn surge_excess_pods_count_as_surging() {
        let mut ds = daemonset("foo");
        max_surge(&mut ds, IntOrString::Int(1));
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "new")),
            ("node-0", ready_pod(&ds, "node-0", "a2", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
        ]);
        assert_eq!(
            plan(&ds, &nodes(2), &pods, "new", 0),
            RollingUpdatePlan::default()
        );
    }

    #[test]
    fn surge_aborts_on_an_old_pod_whose_node_no_longer_exists() {
        let mut ds = daemonset("foo");
        max_surge(&mut ds, IntOrString::Int(1));
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-gone", ready_pod(&ds, "node-gone", "b", "old")),
        ]);
        let error = plan_rolling_update(&ds, &nodes(1), &pods, "new", crate::core::fixtures::ts(0));
        assert_eq!(
            error,
            Err(RollingUpdateError::NodeNotFound {
                node: "node-gone".into()
            })
        );
        let message = error
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            message.contains("\"node-gone\"") && message.contains("garbage collector"),
            "{message}"
        );
        // Only outdated pods make the planner look the node up.
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-gone", ready_pod(&ds, "node-gone", "b", "new")),
        ]);
        assert_eq!(
            plan(&ds, &nodes(1), &pods, "new", 0).nodes_to_create,
            vec!["node-0"]
        );
    }

    #[test]
    fn pods_without_a_name_are_ignored() {
        let ds = daemonset("foo");
        let mut nameless = ready_pod(&ds, "node-0", "a", "old");
        nameless.metadata.name = None;
        let pods = pods_by_node(vec![("node-0", nameless)]);
        assert_eq!(
            plan(&ds, &nodes(1), &pods, "new", 0),
            RollingUpdatePlan::default()
        );
    }
}

/// Property tests: the simulator of `simulation.rs` driven through random event sequences.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::core::fixtures::{
        daemonset, node, time, with_min_ready_seconds, with_phase, with_ready, with_rolling_update,
    };
    use crate::core::pod_state::{is_ready, is_terminal};
    use crate::core::simulation::{Mode, Sim, SyncOutcome};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use std::collections::{BTreeSet, HashSet};

    /// Something that happens to the cluster between (or as) syncs.
    #[derive(Debug, Clone)]
    enum Event {
        /// The controller syncs the DaemonSet (manage, then the rolling update).
        Sync,
        /// The k-th (modulo) non-ready live pod becomes ready now.
        Ready(usize),
        /// The k-th ready live pod becomes unready now.
        Unready(usize),
        /// The k-th live pod fails (phase Failed, not ready).
        Fail(usize),
        /// The k-th pod disappears (evicted, garbage collected, deleted by someone).
        Vanish(usize),
        /// The k-th non-terminating pod starts terminating (it stays until `FinishTerminating`).
        Terminate(usize),
        /// Every terminating pod is gone.
        FinishTerminating,
        /// The clock moves forward (crossing minReadySeconds, failed-pod backoff).
        Advance(i64),
        /// The template changes: a new revision hash (and template generation).
        NewTemplate,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            8 => Just(Event::Sync),
            4 => any::<usize>().prop_map(Event::Ready),
            2 => any::<usize>().prop_map(Event::Unready),
            1 => any::<usize>().prop_map(Event::Fail),
            1 => any::<usize>().prop_map(Event::Vanish),
            1 => any::<usize>().prop_map(Event::Terminate),
            1 => Just(Event::FinishTerminating),
            3 => (1i64..=40).prop_map(Event::Advance),
            1 => Just(Event::NewTemplate),
        ]
    }

    /// An integer or a percentage between `min` and the top of the range.
    fn int_or_percent(min: i32) -> impl Strategy<Value = IntOrString> {
        prop_oneof![
            (min..=6).prop_map(IntOrString::Int),
            (min..=100).prop_map(|p| IntOrString::String(format!("{p}%"))),
        ]
    }

    fn mode() -> impl Strategy<Value = Mode> {
        prop_oneof![Just(Mode::FakePodControl), Just(Mode::Informers)]
    }

    /// The budget as the API documents it, computed independently of the planner.
    fn scaled(value: &IntOrString, total: i64) -> i64 {
        match value {
            IntOrString::Int(i) => i64::from(*i),
            IntOrString::String(s) => {
                let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
                (percent * total + 99) / 100
            }
        }
    }

    /// The rules one scenario is checked against.
    struct Rules {
        surge: bool,
        /// Scaled maxUnavailable (1 when both budgets scale to 0).
        max_unavailable: i64,
        /// Scaled maxSurge.
        max_surge: i64,
    }

    fn live(pod: &CachedPod) -> bool {
        !is_terminating(pod) && !is_terminal(pod)
    }

    fn name(pod: &CachedPod) -> &str {
        pod.metadata.name.as_deref().unwrap_or_default()
    }

    /// Nodes of `sim` with an Available pod that is not terminating and not in `gone`.
    fn available_nodes(sim: &Sim, pods: &NodePods, gone: &HashSet<&str>) -> BTreeSet<String> {
        let min_ready = min_ready_seconds(&sim.ds);
        sim.nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .filter(|n| {
                pods.get(n).is_some_and(|pods| {
                    pods.iter().any(|p| {
                        !is_terminating(p)
                            && !gone.contains(name(p))
                            && is_available(p, min_ready, sim.timestamp())
                    })
                })
            })
            .collect()
    }

    /// Nodes of `sim` with a live outdated Available pod and a live updated pod not yet Available:
    /// the nodes where a surge pod spends the surge budget.
    fn surging_nodes(sim: &Sim, pods: &NodePods) -> usize {
        let (min_ready, generation) = (min_ready_seconds(&sim.ds), template_generation(&sim.ds));
        let now = sim.timestamp();
        pods.values()
            .filter(|pods| {
                let live: Vec<&Arc<CachedPod>> = pods.iter().filter(|p| live(p)).collect();
                let old_available = live.iter().any(|p| {
                    !is_updated(p, &sim.hash, generation) && is_available(p, min_ready, now)
                });
                let new_waiting = live.iter().any(|p| {
                    is_updated(p, &sim.hash, generation) && !is_available(p, min_ready, now)
                });
                old_available && new_waiting
            })
            .count()
    }

    /// The invariants of one sync (see the property tests' docs).
    fn check_sync(sim: &Sim, outcome: &SyncOutcome, rules: &Rules) -> Result<(), TestCaseError> {
        let generation = template_generation(&sim.ds);
        if let Some(step) = &outcome.rolling {
            let gone: HashSet<&str> = step
                .plan
                .pods_to_delete
                .iter()
                .map(String::as_str)
                .collect();
            // The planner only ever deletes outdated pods.
            for pod in step
                .before
                .values()
                .flatten()
                .filter(|p| gone.contains(name(p)))
            {
                prop_assert!(
                    !is_updated(pod, &sim.hash, generation),
                    "deleted updated pod {}",
                    name(pod)
                );
            }
            let before = available_nodes(sim, &step.before, &HashSet::new());
            let after = available_nodes(sim, &step.before, &gone);
            let lost = before.difference(&after).count() as i64;
            let already_unavailable = sim.nodes.len() as i64 - before.len() as i64;
            if rules.surge {
                prop_assert_eq!(lost, 0, "surge must not take availability away");
                let (surging_before, surging_after) = (
                    surging_nodes(sim, &step.before),
                    surging_nodes(sim, &sim.input()),
                );
                prop_assert!(
                    surging_after as i64 <= rules.max_surge.max(surging_before as i64),
                    "surging nodes {} -> {} with maxSurge {}",
                    surging_before,
                    surging_after,
                    rules.max_surge
                );
            } else {
                prop_assert!(
                    step.plan.nodes_to_create.is_empty(),
                    "no surge: the planner never creates"
                );
                prop_assert!(
                    lost <= (rules.max_unavailable - already_unavailable).max(0),
                    "{} nodes lost their available pod with {} already unavailable and maxUnavailable {}: {:?}",
                    lost,
                    already_unavailable,
                    rules.max_unavailable,
                    step.plan
                );
            }
        }
        for n in &sim.nodes {
            let node = n.metadata.name.as_deref().unwrap_or_default();
            let live: Vec<&Arc<CachedPod>> = sim.pods_on(node).iter().filter(|p| live(p)).collect();
            let new = live
                .iter()
                .filter(|p| is_updated(p, &sim.hash, generation))
                .count();
            let old = live.len() - new;
            if rules.surge {
                prop_assert!(
                    new <= 1 && old <= 1,
                    "{node}: {new} new and {old} old live pods"
                );
            } else {
                prop_assert!(
                    live.len() <= 1,
                    "{node}: {} live pods without surge",
                    live.len()
                );
            }
        }
        Ok(())
    }

    fn pick(sim: &Sim, k: usize, filter: impl Fn(&CachedPod) -> bool) -> Option<String> {
        let names: Vec<String> = sim
            .pods()
            .filter(|(_, p)| filter(p))
            .map(|(_, p)| name(p).to_string())
            .collect();
        (!names.is_empty()).then(|| names[k % names.len()].clone())
    }

    fn sync(sim: &mut Sim, rules: &Rules) -> Result<SyncOutcome, TestCaseError> {
        let outcome = sim
            .sync()
            .map_err(|e| TestCaseError::fail(format!("sync failed: {e}")))?;
        check_sync(sim, &outcome, rules)?;
        Ok(outcome)
    }

    fn apply(
        sim: &mut Sim,
        event: &Event,
        rules: &Rules,
        revision: &mut u32,
    ) -> Result<(), TestCaseError> {
        let now = sim.now;
        match *event {
            Event::Sync => {
                sync(sim, rules)?;
            }
            Event::Ready(k) => {
                if let Some(chosen) = pick(sim, k, |p| live(p) && !is_ready(p)) {
                    sim.set_readiness(true, 1, |_, p| name(p) == chosen);
                }
            }
            Event::Unready(k) => {
                if let Some(chosen) = pick(sim, k, |p| live(p) && is_ready(p)) {
                    sim.set_readiness(false, 1, |_, p| name(p) == chosen);
                }
            }
            Event::Fail(k) => {
                if let Some(chosen) = pick(sim, k, live) {
                    sim.modify_pod(&chosen, |p| {
                        *p = with_phase(with_ready(p.clone(), false, now), "Failed")
                    });
                }
            }
            Event::Vanish(k) => {
                if let Some(chosen) = pick(sim, k, |_| true) {
                    sim.remove_pod(&chosen);
                }
            }
            Event::Terminate(k) => {
                if let Some(chosen) = pick(sim, k, |p| !is_terminating(p)) {
                    sim.modify_pod(&chosen, |p| p.metadata.deletion_timestamp = Some(time(now)));
                }
            }
            Event::FinishTerminating => finish_terminating(sim),
            Event::Advance(secs) => sim.advance(secs),
            Event::NewTemplate => {
                *revision += 1;
                sim.update_template(&format!("h{revision}"), |_| {});
            }
        }
        Ok(())
    }

    fn finish_terminating(sim: &mut Sim) {
        let terminating: Vec<String> = sim
            .pods()
            .filter(|(_, p)| is_terminating(p))
            .map(|(_, p)| name(p).to_string())
            .collect();
        for pod in terminating {
            sim.remove_pod(&pod);
        }
    }

    /// Every node runs exactly one pod, updated and Available, and nothing else.
    fn rolled_out(sim: &Sim) -> bool {
        let (min_ready, generation) = (min_ready_seconds(&sim.ds), template_generation(&sim.ds));
        sim.pods().all(|(node, _)| {
            sim.nodes
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(node))
        }) && sim.nodes.iter().all(|n| {
            let pods = sim.pods_on(n.metadata.name.as_deref().unwrap_or_default());
            pods.len() == 1
                && live(&pods[0])
                && is_updated(&pods[0], &sim.hash, generation)
                && is_available(&pods[0], min_ready, sim.timestamp())
        })
    }

    /// Runs one scenario: `node_count` nodes all running an available pod of revision h0, a
    /// template change to h1, the random `events`, then the convergence phase.
    fn run(
        node_count: usize,
        ds: DaemonSet,
        mode: Mode,
        events: &[Event],
        rules: &Rules,
    ) -> Result<(), TestCaseError> {
        let nodes = (0..node_count)
            .map(|i| node(&format!("node-{i}")))
            .collect();
        let mut sim = Sim::new(ds, nodes, "h0", mode);
        sync(&mut sim, rules)?;
        sim.mark_all_ready();
        sim.advance(i64::from(min_ready_seconds(&sim.ds)) + 1);
        prop_assert_eq!(sync(&mut sim, rules)?.counts(), (0, 0));
        let mut revision = 1;
        sim.update_template("h1", |_| {});

        for event in events {
            apply(&mut sim, event, rules, &mut revision)?;
        }

        // Every pod becomes ready and time passes (beyond minReadySeconds and the longest
        // failed-pod backoff) between syncs: the rollout must finish within a bounded number of
        // syncs and then stay put.
        finish_terminating(&mut sim);
        let bound = 4 * node_count + 10;
        for _ in 0..bound {
            let outcome = sync(&mut sim, rules)?;
            if outcome.counts() == (0, 0) && rolled_out(&sim) {
                return Ok(());
            }
            sim.mark_all_ready();
            sim.advance(1000);
        }
        let state: Vec<String> = sim
            .pods()
            .map(|(node, p)| format!("{node}:{}", name(p)))
            .collect();
        Err(TestCaseError::fail(format!(
            "not rolled out after {bound} syncs: {state:?}"
        )))
    }

    fn config() -> Config {
        Config {
            cases: 128,
            failure_persistence: None,
            ..Config::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// maxSurge 0, maxUnavailable an int (0-6) or a percentage (0-100 %), 1-20 nodes,
        /// minReadySeconds 0-30, either sync mode, up to 80 random events.
        ///
        /// At every rolling update, with U = the wanted nodes that have no Available
        /// non-terminating pod in the planner's input ("already unavailable", which includes
        /// nodes whose only pod is outdated and unavailable — upstream deletes and counts those
        /// regardless of the budget) and L = the wanted nodes that had an Available pod before
        /// the planner's deletions and have none after them: L ≤ max(0, maxUnavailable − U),
        /// where maxUnavailable is scaled against the node count (percentages rounded up, 1 when
        /// it scales to 0). The planner also never creates and never deletes an updated pod.
        /// After every sync each node has at most one live (non-terminating, non-terminal) pod.
        /// Finally, with every pod becoming ready and time passing between syncs, at most
        /// 4 × nodes + 10 syncs end with every node running exactly one updated Available pod
        /// and a sync that issues nothing.
        #[test]
        fn without_surge_availability_never_drops_below_the_budget(
            node_count in 1usize..=20,
            budget in int_or_percent(0),
            min_ready in prop_oneof![Just(0), 1i32..=30],
            mode in mode(),
            events in proptest::collection::vec(event(), 0..80),
        ) {
            let ds = with_min_ready_seconds(with_rolling_update(daemonset("foo"), Some(budget.clone()), None), min_ready);
            let max_unavailable = scaled(&budget, node_count as i64).max(1);
            let rules = Rules { surge: false, max_unavailable, max_surge: 0 };
            run(node_count, ds, mode, &events, &rules)?;
        }

        /// maxUnavailable 0, maxSurge an int (1-6) or a percentage (1-100 %), otherwise as above.
        ///
        /// After every sync each node has at most one live updated pod and at most one live
        /// outdated pod (so at most two, one of each). At every rolling update the planner never
        /// removes the last Available pod of a node (maxUnavailable 0), never deletes an updated
        /// pod, and the number of nodes with a live outdated Available pod beside a live updated
        /// pod that is not yet Available (the surge in use) never grows beyond
        /// max(maxSurge, its value before the planner ran). Convergence as above.
        #[test]
        fn with_surge_at_most_one_extra_pod_per_node_within_the_budget(
            node_count in 1usize..=20,
            budget in int_or_percent(1),
            min_ready in prop_oneof![Just(0), 1i32..=30],
            mode in mode(),
            events in proptest::collection::vec(event(), 0..80),
        ) {
            let ds = with_rolling_update(daemonset("foo"), Some(IntOrString::Int(0)), Some(budget.clone()));
            let ds = with_min_ready_seconds(ds, min_ready);
            let rules = Rules { surge: true, max_unavailable: 0, max_surge: scaled(&budget, node_count as i64) };
            run(node_count, ds, mode, &events, &rules)?;
        }
    }
}

/// The rollout policy's [`Gate`] (design §2.2): unit tests, and properties over the decision
/// corpus's generator.
#[cfg(test)]
mod gated {
    use super::*;
    use crate::core::decision_corpus::generated_input;
    use crate::core::fixtures::{
        daemonset, ds_pod, node, node_with_labels, running_ready, ts, with_name,
        with_node_selector, with_rolling_update,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use std::collections::BTreeSet;

    fn nodes(n: usize) -> Vec<CachedNode> {
        (0..n).map(|i| node(&format!("node-{i}"))).collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn pods_by_node(pods: Vec<(&str, CachedPod)>) -> NodePods {
        let mut map = NodePods::default();
        for (node, pod) in pods {
            map.entry(node.to_string()).or_default().push(Arc::new(pod));
        }
        map
    }

    /// A pod that is not Ready (so not Available).
    fn pod(ds: &DaemonSet, node: &str, name: &str, hash: &str) -> CachedPod {
        with_name(ds_pod(ds, node, hash), name)
    }

    fn ready_pod(ds: &DaemonSet, node: &str, name: &str, hash: &str) -> CachedPod {
        running_ready(pod(ds, node, name, hash), 0)
    }

    fn surge(max_surge: i32) -> DaemonSet {
        with_rolling_update(
            daemonset("foo"),
            Some(IntOrString::Int(0)),
            Some(IntOrString::Int(max_surge)),
        )
    }

    fn gated(
        ds: &DaemonSet,
        nodes: &[CachedNode],
        pods: &NodePods,
        gate: Gate,
    ) -> RollingUpdatePlan {
        plan_rolling_update_gated(ds, nodes, pods, "new", ts(100), gate)
            .unwrap_or_else(|e| panic!("rolling update failed: {e}"))
    }

    fn waits(plan: &RollingUpdatePlan) -> Vec<(&str, UpdateWait)> {
        plan.waiting.iter().map(|(n, w)| (n.as_str(), *w)).collect()
    }

    #[test]
    fn without_surge_only_started_nodes_are_replaced_within_the_budget() {
        let ds = with_rolling_update(daemonset("foo"), Some(IntOrString::Int(3)), None);
        let names = ["node-0", "node-1", "node-2", "node-3", "node-4"];
        let pods = pods_by_node(
            names
                .iter()
                .enumerate()
                .map(|(i, node)| (*node, ready_pod(&ds, node, &format!("p{i}"), "old")))
                .collect(),
        );
        let open = gated(&ds, &nodes(5), &pods, Gate::OPEN);
        assert_eq!(open.pods_to_delete, vec!["p0", "p1", "p2"]);
        let starts = set(&["node-1"]);
        let gate = Gate {
            starts: Some(&starts),
            keep: None,
        };
        let plan = gated(&ds, &nodes(5), &pods, gate);
        assert_eq!(plan.pods_to_delete, vec!["p1"]);
        assert!(plan.nodes_to_create.is_empty());
        assert!(plan.held_by.is_empty());
        assert_eq!(
            waits(&plan),
            vec![
                ("node-0", UpdateWait::Held),
                ("node-2", UpdateWait::Held),
                ("node-3", UpdateWait::Held),
                ("node-4", UpdateWait::Held),
            ]
        );
    }

    #[test]
    fn without_surge_an_unavailable_held_pod_counts_against_the_budget() {
        let ds = daemonset("foo"); // maxUnavailable 1
        let pods = pods_by_node(vec![
            ("node-0", pod(&ds, "node-0", "a", "old")),
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
            ("node-2", ready_pod(&ds, "node-2", "c", "old")),
        ]);
        let starts = set(&["node-1", "node-2"]);
        let gate = Gate {
            starts: Some(&starts),
            keep: None,
        };
        let plan = gated(&ds, &nodes(3), &pods, gate);
        // node-0 is not replaced, but it is unavailable and holds the only unit of the budget.
        assert!(plan.pods_to_delete.is_empty(), "{plan:?}");
        assert_eq!(plan.held_by, vec!["node-0"]);
        assert_eq!(
            waits(&plan),
            vec![
                ("node-0", UpdateWait::Held),
                ("node-1", UpdateWait::MaxUnavailable),
                ("node-2", UpdateWait::MaxUnavailable),
            ]
        );
        // Open, node-0's pod is replaced and still holds the budget.
        let open = gated(&ds, &nodes(3), &pods, Gate::OPEN);
        assert_eq!(open.pods_to_delete, vec!["a"]);
        assert_eq!(open.held_by, vec!["node-0"]);
    }

    #[test]
    fn with_surge_a_closed_gate_creates_nothing_but_completes_surged_nodes() {
        let ds = surge(2);
        let pods = pods_by_node(vec![
            // Surged, and the new pod is available: completion deletes the old one.
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-0", ready_pod(&ds, "node-0", "a2", "new")),
            // Surged, new pod not available yet.
            ("node-1", ready_pod(&ds, "node-1", "b", "old")),
            ("node-1", pod(&ds, "node-1", "b2", "new")),
            // Not surged: an available and an unavailable old pod.
            ("node-2", ready_pod(&ds, "node-2", "c", "old")),
            ("node-3", pod(&ds, "node-3", "d", "old")),
        ]);
        let open = gated(&ds, &nodes(4), &pods, Gate::OPEN);
        assert_eq!(open.pods_to_delete, vec!["a"]);
        assert_eq!(open.nodes_to_create, vec!["node-3", "node-2"]);
        let none = BTreeSet::new();
        let gate = Gate {
            starts: Some(&none),
            keep: None,
        };
        let plan = gated(&ds, &nodes(4), &pods, gate);
        assert_eq!(plan.pods_to_delete, vec!["a"]);
        assert!(plan.nodes_to_create.is_empty(), "{plan:?}");
        assert_eq!(plan.held_by, vec!["node-1"]);
        assert_eq!(
            waits(&plan),
            vec![
                ("node-1", UpdateWait::NewPodNotAvailable),
                ("node-2", UpdateWait::Held),
                ("node-3", UpdateWait::Held),
            ]
        );
    }

    #[test]
    fn keep_blocks_every_delete_including_completion_and_cleanup() {
        // node-2 no longer matches the DaemonSet's nodeSelector: its old pods are cleanup.
        let ds = with_node_selector(surge(1), &[("run", "yes")]);
        let nodes: Vec<CachedNode> = vec![
            node_with_labels("node-0", &[("run", "yes")]),
            node_with_labels("node-1", &[("run", "yes")]),
            node_with_labels("node-2", &[]),
        ];
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-0", ready_pod(&ds, "node-0", "a2", "new")),
            ("node-1", ready_pod(&ds, "node-1", "b", "new")),
            ("node-2", pod(&ds, "node-2", "c", "old")),
        ]);
        // `starts` holds neither completion nor cleanup.
        let none = BTreeSet::new();
        let closed = Gate {
            starts: Some(&none),
            keep: None,
        };
        assert_eq!(
            gated(&ds, &nodes, &pods, closed).pods_to_delete,
            vec!["a", "c"]
        );
        let keep = set(&["node-0", "node-2"]);
        let kept = Gate {
            starts: None,
            keep: Some(&keep),
        };
        let plan = gated(&ds, &nodes, &pods, kept);
        assert!(plan.pods_to_delete.is_empty(), "{plan:?}");
        assert_eq!(
            waits(&plan),
            vec![("node-0", UpdateWait::Held), ("node-2", UpdateWait::Held)]
        );

        // Without surge: a kept unavailable pod (wanted or not) is not deleted but still counts.
        let ds = with_node_selector(daemonset("foo"), &[("run", "yes")]); // maxUnavailable 1
        let pods = pods_by_node(vec![
            ("node-0", ready_pod(&ds, "node-0", "a", "old")),
            ("node-1", pod(&ds, "node-1", "b", "old")),
            ("node-2", pod(&ds, "node-2", "c", "old")),
        ]);
        assert_eq!(
            gated(&ds, &nodes, &pods, closed).pods_to_delete,
            vec!["c"],
            "starts does not hold cleanup"
        );
        let keep = set(&["node-1", "node-2"]);
        let kept = Gate {
            starts: None,
            keep: Some(&keep),
        };
        let plan = gated(&ds, &nodes, &pods, kept);
        assert!(plan.pods_to_delete.is_empty(), "{plan:?}");
        assert_eq!(plan.held_by, vec!["node-1", "node-2"]);
        assert_eq!(
            waits(&plan),
            vec![
                ("node-0", UpdateWait::MaxUnavailable),
                ("node-1", UpdateWait::Held),
                ("node-2", UpdateWait::Held),
            ]
        );
    }

    /// The nodes of `nodes` that should run a pod of `ds`.
    fn wanted(ds: &DaemonSet, nodes: &[CachedNode]) -> BTreeSet<String> {
        nodes
            .iter()
            .filter(|n| crate::core::placement::placement(n, ds).should_run)
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    }

    fn config() -> Config {
        Config {
            cases: 512,
            failure_persistence: None,
            ..Config::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Over the decision corpus's generator (any scenario index: nodes with labels and taints,
        /// placement rules, every update strategy and budget, 0-3 pods per node of either
        /// revision in every phase, pods for nodes not in the list), a gate that starts every
        /// wanted node and keeps none decides exactly as [`Gate::OPEN`]: the same deletes,
        /// creates, `held_by`, `waiting` and budget, or the same error.
        #[test]
        fn a_gate_that_starts_every_wanted_node_and_keeps_none_is_open(index in any::<usize>()) {
            let (ds, nodes, node_pods, hash, now) = generated_input(index);
            let starts = wanted(&ds, &nodes);
            let keep = BTreeSet::new();
            let gate = Gate { starts: Some(&starts), keep: Some(&keep) };
            let open = plan_rolling_update(&ds, &nodes, &node_pods, &hash, now);
            let all_started = plan_rolling_update_gated(&ds, &nodes, &node_pods, &hash, now, gate);
            prop_assert_eq!(all_started, open);
        }

        /// With random `starts` and `keep` over the same scenarios: no pod on a kept node is
        /// deleted, no surge pod is created on a held node, and a held wanted node loses its old
        /// pod only to completion (an Available updated pod beside it).
        #[test]
        fn a_gate_never_touches_held_nodes(
            index in any::<usize>(),
            started in any::<u16>(),
            kept in any::<u16>(),
            has_starts in any::<bool>(),
        ) {
            let (ds, nodes, node_pods, hash, now) = generated_input(index);
            let mut names: Vec<String> = node_pods.keys().cloned().collect();
            names.sort();
            let pick = |bits: u16| -> BTreeSet<String> {
                names.iter().enumerate().filter(|(i, _)| bits & (1 << (i % 16)) != 0)
                    .map(|(_, n)| n.clone()).collect()
            };
            let (starts, keep) = (pick(started), pick(kept));
            let gate = Gate { starts: has_starts.then_some(&starts), keep: Some(&keep) };
            let Ok(plan) = plan_rolling_update_gated(&ds, &nodes, &node_pods, &hash, now, gate)
            else {
                return Ok(());
            };
            let wanted = wanted(&ds, &nodes);
            let (generation, min_ready) = (template_generation(&ds), min_ready_seconds(&ds));
            for (node, pods) in &node_pods {
                let held_by_starts = wanted.contains(node) && has_starts && !starts.contains(node);
                let deleted = pods.iter().any(|p| {
                    plan.pods_to_delete.iter().any(|d| Some(d) == p.metadata.name.as_ref())
                });
                prop_assert!(!(keep.contains(node) && deleted), "deleted from kept {}: {:?}", node, plan);
                let held = keep.contains(node) || held_by_starts;
                prop_assert!(
                    !(held && plan.nodes_to_create.contains(node)),
                    "surge pod on held {}: {:?}", node, plan
                );
                let completed = pods.iter().any(|p| {
                    !is_terminating(p) && is_updated(p, &hash, generation)
                        && is_available(p, min_ready, now)
                });
                prop_assert!(
                    !(held_by_starts && deleted && !completed),
                    "replaced held {}: {:?}", node, plan
                );
            }
        }
    }
}
