//! Tests of the queueing decisions: upstream's handler tests (catalogue #1, #2, #45, #46, #49–#58,
//! #66) on plain objects.

use super::*;
use crate::core::fixtures::*;

fn tainted(n: CachedNode, key: &str, effect: &str) -> CachedNode {
    let n = CachedNode { spec: None, ..n };
    with_taint(n, key, "", effect)
}

#[test]
fn test_should_ignore_node_update_identical() {
    let n = node("node-0");
    assert!(!node_update_is_relevant(&n, &n.clone()));
}

#[test]
fn test_should_ignore_node_update_labels_changed() {
    let old = node("node-0");
    let new = node_with_labels("node-0", &[("color", "blue")]);
    assert!(node_update_is_relevant(&old, &new));
}

#[test]
fn test_should_ignore_node_update_taints_changed() {
    let old = node("node-0");
    let new = tainted(node("node-0"), "k", "NoSchedule");
    assert!(node_update_is_relevant(&old, &new));
}

#[test]
fn test_update_node_allocatable_change_is_ignored() {
    let old = node("node-0");
    let mut new = with_allocatable(node("node-0"), "1Gi", "2");
    new.metadata.resource_version = Some("99".into());
    assert!(!node_update_is_relevant(&old, &new));
}

#[test]
fn node_worker_enqueues_only_when_something_must_change() {
    let ds = daemonset("foo");
    let n = node("node-0");
    assert!(
        node_needs_sync(&ds, &n, false),
        "should run, no pod: create"
    );
    assert!(
        !node_needs_sync(&ds, &n, true),
        "should run, has pod: nothing"
    );
    let noexec = tainted(node("node-0"), "k", "NoExecute");
    assert!(
        node_needs_sync(&ds, &noexec, true),
        "must not continue, has pod: delete"
    );
    assert!(
        !node_needs_sync(&ds, &noexec, false),
        "must not run, no pod: nothing"
    );
    let nosched = tainted(node("node-0"), "k", "NoSchedule");
    assert!(
        !node_needs_sync(&ds, &nosched, true),
        "may continue: nothing"
    );
    let mut miss = ds.clone();
    miss.status = Some(k8s_openapi::api::apps::v1::DaemonSetStatus {
        number_misscheduled: 1,
        ..Default::default()
    });
    assert!(
        node_needs_sync(&miss, &nosched, true),
        "misscheduled count may need fixing (#132459)"
    );
}

// ---- pods, DaemonSets and revisions (catalogue #46, #50–#58) ------------------------------------

use std::collections::BTreeMap;

fn ds_named(name: &str, uid: &str, selector: &[(&str, &str)]) -> DaemonSet {
    let mut ds = daemonset(name);
    ds.metadata.uid = Some(uid.to_string());
    if let Some(spec) = ds.spec.as_mut() {
        let labels: BTreeMap<String, String> = selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        spec.selector.match_labels = Some(labels.clone());
        if let Some(m) = spec.template.metadata.as_mut() {
            m.labels = Some(labels);
        }
    }
    ds
}

/// Upstream's three DaemonSets of the handler tests: foo1 and foo2 select `name=foo`, bar selects
/// `name=bar`.
fn three() -> Vec<DaemonSet> {
    vec![
        ds_named("foo1", "uid-foo1", &[("name", "foo")]),
        ds_named("foo2", "uid-foo2", &[("name", "foo")]),
        ds_named("bar", "uid-bar", &[("name", "bar")]),
    ]
}

fn names<'a>(queue: &[&'a DaemonSet]) -> Vec<&'a str> {
    let mut n: Vec<&str> = queue
        .iter()
        .filter_map(|d| d.metadata.name.as_deref())
        .collect();
    n.sort();
    n.dedup();
    n
}

fn owned_by(ds: &DaemonSet, node: &str) -> Arc<CachedPod> {
    let mut p = ds_pod(ds, node, "h1");
    p.metadata.resource_version = Some("1".into());
    Arc::new(p)
}

fn orphan_pod(name: &str, labels: &[(&str, &str)]) -> Arc<CachedPod> {
    let mut p = pod(name, labels);
    p.metadata.resource_version = Some("1".into());
    Arc::new(p)
}

fn bumped(pod: &Arc<CachedPod>, change: impl FnOnce(&mut CachedPod)) -> Arc<CachedPod> {
    let mut p = (**pod).clone();
    p.metadata.resource_version = Some("2".into());
    change(&mut p);
    Arc::new(p)
}

/// #50 TestAddPod: an owned pod's add queues exactly its owner and observes one create on its node.
#[test]
fn test_add_pod() {
    let dss = three();
    let p = owned_by(&dss[0], "node-0");
    let r = pod_change(&Change::Added(p), &dss);
    assert_eq!(names(&r.queue), vec!["foo1"]);
    let (owner, node) = r.creation_observed.expect("a create observed");
    assert_eq!(
        (owner.metadata.name.as_deref(), node.as_str()),
        (Some("foo1"), "node-0")
    );
    assert!(r.deletion_observed.is_none());
}

/// An owned pod whose owner is not cached (or has another UID) queues nothing.
#[test]
fn an_owned_pod_of_an_unknown_or_replaced_daemonset_queues_nothing() {
    let dss = three();
    let mut stale_owner = dss[0].clone();
    stale_owner.metadata.uid = Some("uid-old".into());
    let p = owned_by(&stale_owner, "node-0");
    let r = pod_change(&Change::Added(p), &dss);
    assert!(r.queue.is_empty() && r.creation_observed.is_none());
}

/// #51 TestAddPodOrphan: an orphan queues the two DaemonSets whose selector matches, not the
/// third; several matches are reported (a user error, §9.2).
#[test]
fn test_add_pod_orphan() {
    let dss = three();
    let r = pod_change(&Change::Added(orphan_pod("o", &[("name", "foo")])), &dss);
    assert_eq!(names(&r.queue), vec!["foo1", "foo2"]);
    assert!(r.overlapping);
    assert!(
        r.creation_observed.is_none(),
        "orphans never touch expectations"
    );
    let r = pod_change(&Change::Added(orphan_pod("o", &[("name", "bar")])), &dss);
    assert_eq!(names(&r.queue), vec!["bar"]);
    assert!(!r.overlapping);
    let r = pod_change(&Change::Added(orphan_pod("o", &[])), &dss);
    assert!(r.queue.is_empty(), "a pod without labels matches nothing");
}

/// #52 TestUpdatePod: an owned pod's update queues its owner; the same resourceVersion nothing.
#[test]
fn test_update_pod() {
    let dss = three();
    let old = owned_by(&dss[0], "node-0");
    let new = bumped(&old, |_| {});
    let r = pod_change(
        &Change::Updated {
            old: old.clone(),
            new,
        },
        &dss,
    );
    assert_eq!(names(&r.queue), vec!["foo1"]);
    let r = pod_change(
        &Change::Updated {
            old: old.clone(),
            new: old,
        },
        &dss,
    );
    assert!(r.queue.is_empty(), "resync of an unchanged pod");
}

/// A pod that turns Ready queues its owner again after minReadySeconds + 1 s.
#[test]
fn a_pod_turning_ready_requeues_after_min_ready_seconds() {
    let mut dss = three();
    dss[0] = with_min_ready_seconds(dss[0].clone(), 10);
    let old = owned_by(&dss[0], "node-0");
    let new = bumped(&old, |p| *p = with_ready(p.clone(), true, 0));
    let r = pod_change(&Change::Updated { old, new }, &dss);
    let (ds, delay) = r.queue_after.expect("a delayed sync");
    assert_eq!(ds.metadata.name.as_deref(), Some("foo1"));
    assert_eq!(delay, Duration::from_secs(11));
}

/// #53 TestUpdatePodOrphanSameLabels: an orphan's update without a label change queues nothing.
#[test]
fn test_update_pod_orphan_same_labels() {
    let dss = three();
    let old = orphan_pod("o", &[("name", "foo")]);
    let new = bumped(&old, |_| {});
    assert!(
        pod_change(&Change::Updated { old, new }, &dss)
            .queue
            .is_empty()
    );
}

/// #54 TestUpdatePodOrphanWithNewLabels: an orphan whose labels changed queues both matching
/// DaemonSets.
#[test]
fn test_update_pod_orphan_with_new_labels() {
    let dss = three();
    let old = orphan_pod("o", &[("name", "other")]);
    let new = bumped(&old, |p| {
        p.metadata.labels = Some([("name".to_string(), "foo".to_string())].into())
    });
    let r = pod_change(&Change::Updated { old, new }, &dss);
    assert_eq!(names(&r.queue), vec!["foo1", "foo2"]);
}

/// #55 TestUpdatePodChangeControllerRef: the controller ref moved from foo2 to foo1: both queued.
#[test]
fn test_update_pod_change_controller_ref() {
    let dss = three();
    let old = owned_by(&dss[1], "node-0");
    let new = bumped(&old, |p| {
        p.metadata.owner_references = owned_by(&dss[0], "node-0")
            .metadata
            .owner_references
            .clone();
    });
    let r = pod_change(&Change::Updated { old, new }, &dss);
    assert_eq!(names(&r.queue), vec!["foo1", "foo2"]);
}

/// #56 TestUpdatePodControllerRefRemoved: the old owner and the matching DaemonSets are queued.
#[test]
fn test_update_pod_controller_ref_removed() {
    let dss = three();
    let old = owned_by(&dss[1], "node-0");
    let new = bumped(&old, |p| p.metadata.owner_references = None);
    let r = pod_change(&Change::Updated { old, new }, &dss);
    assert_eq!(names(&r.queue), vec!["foo1", "foo2"]);
    assert_eq!(r.queue.len(), 3, "foo2 as the old owner and as a match");
}

/// #57 TestDeletePod (and #1, the delete of a pod whose last state was unknown): an owned pod's
/// delete queues its owner and observes the deletion; a deletionTimestamp counts as deleted.
#[test]
fn test_delete_pod() {
    let dss = three();
    let p = owned_by(&dss[0], "node-0");
    let r = pod_change(&Change::Deleted(p.clone()), &dss);
    assert_eq!(names(&r.queue), vec!["foo1"]);
    assert_eq!(
        r.deletion_observed
            .map(|(d, n)| (d.metadata.name.clone(), n)),
        Some((Some("foo1".into()), "foo1-node-0".into()))
    );
    let terminating = bumped(&p, |p| {
        p.metadata.deletion_timestamp = Some(crate::core::fixtures::time(5))
    });
    let r = pod_change(
        &Change::Updated {
            old: p.clone(),
            new: terminating.clone(),
        },
        &dss,
    );
    assert!(r.deletion_observed.is_some());
    let r = pod_change(&Change::Added(terminating), &dss);
    assert!(
        r.deletion_observed.is_some(),
        "seen terminating at start-up"
    );
}

/// #58 TestDeletePodOrphan and #46 TestDeleteNoDaemonPod: deleting an orphan, a pod with a foreign
/// controller ref, or an unscheduled non-daemon pod queues nothing.
#[test]
fn test_delete_pod_orphan_and_no_daemon_pod() {
    let dss = three();
    assert!(
        pod_change(&Change::Deleted(orphan_pod("o", &[("name", "foo")])), &dss)
            .queue
            .is_empty()
    );
    let mut foreign = (*orphan_pod("rs-pod", &[("name", "foo")])).clone();
    foreign.metadata.owner_references =
        Some(vec![other_controller_ref("ReplicaSet", "rs", "uid-rs")]);
    let r = pod_change(&Change::Deleted(Arc::new(foreign)), &dss);
    assert!(r.queue.is_empty() && r.deletion_observed.is_none());
    let unscheduled = orphan_pod("loose", &[]);
    assert!(
        pod_change(&Change::Deleted(unscheduled), &dss)
            .queue
            .is_empty()
    );
}

/// §1.3: an owned revision's add does not queue its owner ([quirk]); an orphan's queues matches;
/// an owned revision's update and delete queue the owner.
#[test]
fn revision_changes_queue_like_upstream() {
    use k8s_openapi::api::apps::v1::ControllerRevision;
    let dss = three();
    let owned = Arc::new(ControllerRevision {
        metadata: owned_by(&dss[0], "x").metadata.clone(),
        ..Default::default()
    });
    assert!(revision_change(&Change::Added(owned.clone()), &dss).is_empty());
    let mut newer = (*owned).clone();
    newer.metadata.resource_version = Some("2".into());
    assert_eq!(
        names(&revision_change(
            &Change::Updated {
                old: owned.clone(),
                new: Arc::new(newer)
            },
            &dss
        )),
        vec!["foo1"]
    );
    assert_eq!(
        names(&revision_change(&Change::Deleted(owned), &dss)),
        vec!["foo1"]
    );
    let orphan_rev = Arc::new(ControllerRevision {
        metadata: orphan_pod("r", &[("name", "foo")]).metadata.clone(),
        ..Default::default()
    });
    assert_eq!(
        names(&revision_change(&Change::Added(orphan_rev), &dss)),
        vec!["foo1", "foo2"]
    );
}

// ---- nodes (catalogue #45, #49) -------------------------------------------------------------

/// #49 TestAddNode: a new node queues the DaemonSets that should run there (and have no pod there).
#[test]
fn test_add_node() {
    let mut dss = three();
    if let Some(spec) = dss[2].spec.as_mut() {
        spec.template
            .spec
            .get_or_insert_with(Default::default)
            .node_selector = Some([("role".to_string(), "db".to_string())].into());
    }
    let n = Arc::new(node("node-9"));
    assert_eq!(
        names(&node_change(&Change::Added(n.clone()), &dss, &[])),
        vec!["foo1", "foo2"]
    );
    let there = [owned_by(&dss[0], "node-9")];
    assert_eq!(
        names(&node_change(&Change::Added(n), &dss, &there)),
        vec!["foo2"]
    );
}

/// #45 TestUpdateNode: labels now matching queue the DaemonSet; an unchanged or status-only
/// update queues nothing.
#[test]
fn test_update_node() {
    let mut ds = daemonset("foo");
    if let Some(spec) = ds.spec.as_mut() {
        spec.template
            .spec
            .get_or_insert_with(Default::default)
            .node_selector = Some([("color".to_string(), "blue".to_string())].into());
    }
    let dss = vec![ds];
    let old = Arc::new(node("node-0"));
    let blue = Arc::new(node_with_labels("node-0", &[("color", "blue")]));
    assert!(
        node_change(
            &Change::Updated {
                old: old.clone(),
                new: old.clone()
            },
            &dss,
            &[]
        )
        .is_empty()
    );
    assert_eq!(
        names(&node_change(
            &Change::Updated {
                old,
                new: blue.clone()
            },
            &dss,
            &[]
        )),
        vec!["foo"]
    );
    // A status-only update of a node that should run a pod and has none still queues nothing
    // (the node worker is not consulted for it).
    let mut heartbeat = with_node_condition((*blue).clone(), "Ready", "True");
    heartbeat.metadata.resource_version = Some("100".into());
    let r = node_change(
        &Change::Updated {
            old: blue,
            new: Arc::new(heartbeat),
        },
        &dss,
        &[],
    );
    assert!(r.is_empty());
}

/// [difference] A deleted node queues each DaemonSet with a pod there, once.
#[test]
fn a_deleted_node_queues_the_daemonsets_with_pods_there() {
    let dss = three();
    let n = Arc::new(node("node-0"));
    let pods = [
        owned_by(&dss[0], "node-0"),
        owned_by(&dss[0], "node-0"),
        owned_by(&dss[2], "node-0"),
    ];
    let q = node_change(&Change::Deleted(n), &dss, &pods);
    assert_eq!(q.len(), 2);
    assert_eq!(names(&q), vec!["bar", "foo1"]);
}

/// [difference] A NoSchedule taint landing on a node that keeps its pod queues the DaemonSet, so
/// `numberMisscheduled` becomes 1 at once (upstream's three conditions queue nothing: shouldRun
/// false, shouldContinueRunning true, misscheduled still 0); removing it queues it again even while
/// the cached status still says 0; a DaemonSet without a pod there is not queued for it.
#[test]
fn a_no_schedule_taint_on_a_node_with_a_pod_queues_its_daemonset() {
    let dss = three();
    let clean = Arc::new(node("node-0"));
    let taint_of = |n: &CachedNode| tainted(n.clone(), "k", "NoSchedule");
    let tainted_node = Arc::new(taint_of(&clean));
    let there = [owned_by(&dss[0], "node-0")];
    let taint_lands = Change::Updated {
        old: clean.clone(),
        new: tainted_node.clone(),
    };
    assert!(
        !node_needs_sync(&dss[0], &tainted_node, true),
        "upstream's rule alone queues nothing"
    );
    assert_eq!(
        names(&node_change(&taint_lands, &dss, &there)),
        vec!["foo1"]
    );
    let taint_goes = Change::Updated {
        old: tainted_node.clone(),
        new: clean.clone(),
    };
    // foo2 and bar have no pod on the untainted node: upstream's create rule queues them.
    assert_eq!(
        names(&node_change(&taint_goes, &dss, &there)),
        vec!["bar", "foo1", "foo2"]
    );
    // A node added with a pod already bound and a NoSchedule taint (recreated under its name).
    assert_eq!(
        names(&node_change(&Change::Added(tainted_node), &dss, &there)),
        vec!["foo1"]
    );
}

/// [difference] The added condition is a flip of shouldRun on a node with a pod, nothing else.
#[test]
fn misscheduled_may_change_only_when_should_run_flips_under_a_pod() {
    let ds = daemonset("foo");
    let clean = node("node-0");
    let no_schedule = tainted(node("node-0"), "k", "NoSchedule");
    let relabelled = with_node_labels(no_schedule.clone(), &[("color", "blue")]);
    // Flips, with a pod: yes; without one: no.
    assert!(misscheduled_may_change(
        &ds,
        Some(&clean),
        &no_schedule,
        true
    ));
    assert!(misscheduled_may_change(
        &ds,
        Some(&no_schedule),
        &clean,
        true
    ));
    assert!(!misscheduled_may_change(
        &ds,
        Some(&clean),
        &no_schedule,
        false
    ));
    // No flip: a relabel of a node that stays tainted, or of a clean one.
    assert!(!misscheduled_may_change(
        &ds,
        Some(&no_schedule),
        &relabelled,
        true
    ));
    let blue = with_node_labels(clean.clone(), &[("color", "blue")]);
    assert!(!misscheduled_may_change(&ds, Some(&clean), &blue, true));
    // A new node: only when it does not qualify and has a pod.
    assert!(misscheduled_may_change(&ds, None, &no_schedule, true));
    assert!(!misscheduled_may_change(&ds, None, &clean, true));
    // A tolerating DaemonSet is not affected by the taint at all.
    let tolerating = with_toleration(
        daemonset("foo"),
        toleration("k", "Exists", "", "NoSchedule"),
    );
    assert!(!misscheduled_may_change(
        &tolerating,
        Some(&clean),
        &no_schedule,
        true
    ));
}
