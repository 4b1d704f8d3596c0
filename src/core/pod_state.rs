//! Facts about one pod: ready, available, terminal, terminating, updated, and the order that decides
//! which of several pods on a node is kept (§3.4, §5, §5.4).

use crate::core::cached_pod::CachedPod;
use crate::core::labels::{CONTROLLER_REVISION_HASH, POD_TEMPLATE_GENERATION};
use k8s_openapi::api::core::v1::PodCondition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::cmp::Ordering;

/// The pod's first `Ready` condition (upstream `GetPodReadyCondition`).
pub fn ready_condition(pod: &CachedPod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &CachedPod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Ready, and ready for at least `min_ready_seconds` at `now` (Ready condition's lastTransitionTime).
pub fn is_available(pod: &CachedPod, min_ready_seconds: i32, now: Timestamp) -> bool {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .is_some_and(|c| condition_available(c, min_ready_seconds, now))
}

/// Whether a pod whose `Ready` condition is `condition` and `True` is available at `now`: ready for
/// at least `min_ready_seconds` (its lastTransitionTime). For a caller that has already found the
/// condition, so that the pod's conditions are searched once ([`is_available`] is this on the
/// pod's own Ready condition).
pub fn condition_available(
    condition: &PodCondition,
    min_ready_seconds: i32,
    now: Timestamp,
) -> bool {
    if min_ready_seconds == 0 {
        return true;
    }
    let Some(since) = condition.last_transition_time.as_ref() else {
        return false;
    };
    match since
        .0
        .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
    {
        Ok(available_at) => available_at <= now,
        // Beyond the representable range: never reached.
        Err(_) => min_ready_seconds < 0,
    }
}

/// The pod's phase ("" when unknown).
pub fn phase(pod: &CachedPod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// Phase Succeeded or Failed.
pub fn is_terminal(pod: &CachedPod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Has a deletionTimestamp.
pub fn is_terminating(pod: &CachedPod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn label<'a>(pod: &'a CachedPod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// Upstream `IsPodUpdated`: the hash label equals a non-empty `hash`, or the `pod-template-generation`
/// label equals `template_generation` as a decimal string.
pub fn is_updated(pod: &CachedPod, hash: &str, template_generation: Option<i64>) -> bool {
    // Go reads a missing label as "", so compare with the empty default. The hash first: it is the
    // label an updated pod has, and the generation's comparison is then not needed.
    let hash_matches =
        !hash.is_empty() && label(pod, CONTROLLER_REVISION_HASH).unwrap_or_default() == hash;
    hash_matches
        || template_generation
            .is_some_and(|g| is_decimal(label(pod, POD_TEMPLATE_GENERATION).unwrap_or_default(), g))
}

/// `text == g.to_string()`, without building the string (this runs for every pod in every sync).
fn is_decimal(text: &str, g: i64) -> bool {
    use std::io::Write;
    let mut buf = [0u8; 20];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // An i64 has at most 20 characters ("-9223372036854775808"), so the write cannot fail; if it
    // did, the written part would not equal a whole label and the comparison says "not equal".
    let _ = write!(cursor, "{g}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    text.as_bytes() == &buf[..len]
}

/// The pod's `controller-revision-hash` label.
pub fn hash_label(pod: &CachedPod) -> Option<&str> {
    label(pod, CONTROLLER_REVISION_HASH)
}

fn is_scheduled(pod: &CachedPod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Upstream's keep order: pods with `spec.nodeName` first, then older creationTimestamp, then name.
///
/// A missing creationTimestamp is Go's zero time, older than any other.
pub fn oldest_scheduled_first(a: &CachedPod, b: &CachedPod) -> Ordering {
    is_scheduled(b)
        .cmp(&is_scheduled(a))
        .then_with(|| {
            let created = |p: &CachedPod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a).cmp(&created(b))
        })
        .then_with(|| {
            let a_name = a.metadata.name.as_deref().unwrap_or_default();
            a_name.cmp(b.metadata.name.as_deref().unwrap_or_default())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::*;

    fn p() -> CachedPod {
        ds_pod(&daemonset("foo"), "node-0", "")
    }

    #[test]
    fn ready_requires_ready_condition_true() {
        assert!(!is_ready(&p()));
        assert!(is_ready(&with_ready(p(), true, 0)));
        assert!(!is_ready(&with_ready(p(), false, 0)));
        assert!(!is_ready(&with_phase(p(), "Running")));
    }

    #[test]
    fn ready_uses_first_ready_condition() {
        let mut pod = with_ready(p(), false, 0);
        if let Some(conds) = pod.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            let mut second = conds[0].clone();
            second.status = "True".to_string();
            conds.push(second);
        }
        assert!(!is_ready(&pod));
    }

    #[test]
    fn ready_ignores_other_conditions() {
        use crate::core::cached_pod::CachedPodStatus;
        use k8s_openapi::api::core::v1::PodCondition;
        let mut pod = p();
        pod.status = Some(CachedPodStatus {
            conditions: Some(vec![PodCondition {
                type_: "ContainersReady".to_string(),
                status: "True".to_string(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert!(!is_ready(&pod));
    }

    #[test]
    fn available_with_zero_min_ready_is_ready() {
        assert!(is_available(&with_ready(p(), true, 100), 0, ts(0)));
        assert!(!is_available(&with_ready(p(), false, 0), 0, ts(100)));
        assert!(!is_available(&p(), 0, ts(100)));
    }

    #[test]
    fn available_after_min_ready_seconds() {
        let pod = with_ready(p(), true, 100);
        assert!(!is_available(&pod, 15, ts(114)));
        assert!(is_available(&pod, 15, ts(115)));
        assert!(is_available(&pod, 15, ts(200)));
        assert!(!is_available(&with_ready(p(), false, 100), 15, ts(200)));
    }

    #[test]
    fn available_surge_min_ready_cases() {
        // TestSurgePreservesOldReadyWithUnsatisfiedMinReady / ...DeletesOldReady...: minReadySeconds 15.
        let pod = with_ready(p(), true, 0);
        assert!(!is_available(&pod, 15, ts(10)));
        assert!(is_available(&pod, 15, ts(20)));
    }

    #[test]
    fn not_available_without_transition_time() {
        let mut pod = with_ready(p(), true, 0);
        if let Some(c) = pod.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            c[0].last_transition_time = None;
        }
        assert!(!is_available(&pod, 5, ts(1_000)));
        assert!(is_available(&pod, 0, ts(1_000)));
    }

    #[test]
    fn terminal_phases() {
        assert!(is_terminal(&with_phase(p(), "Succeeded")));
        assert!(is_terminal(&with_phase(p(), "Failed")));
        for phase in ["Pending", "Running", "Unknown"] {
            assert!(!is_terminal(&with_phase(p(), phase)), "{phase}");
        }
        assert!(!is_terminal(&p()));
    }

    #[test]
    fn terminating_is_deletion_timestamp() {
        assert!(!is_terminating(&p()));
        assert!(is_terminating(&with_deletion_timestamp(p(), 5)));
    }

    #[test]
    fn hash_label_reads_controller_revision_hash() {
        assert_eq!(hash_label(&p()), None);
        assert_eq!(
            hash_label(&ds_pod(&daemonset("foo"), "n", "abc")),
            Some("abc")
        );
    }

    // ---- TestIsPodUpdated ----------------------------------------------------------------

    const HASH: &str = "55d5f56f8c";

    fn pod_with_labels(pairs: Option<&[(&str, &str)]>) -> CachedPod {
        let mut pod = p();
        pod.metadata.labels = pairs.map(labels);
        pod
    }

    #[test]
    fn test_is_pod_updated_template_generation_and_hash_match() {
        let pod = pod_with_labels(Some(&[
            ("pod-template-generation", "12345"),
            ("controller-revision-hash", HASH),
        ]));
        assert!(is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_template_generation_matches_hash_does_not() {
        let pod = pod_with_labels(Some(&[
            ("pod-template-generation", "12345"),
            ("controller-revision-hash", "other"),
        ]));
        assert!(is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_template_generation_matches_no_hash_label() {
        let pod = pod_with_labels(Some(&[("pod-template-generation", "12345")]));
        assert!(is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_template_generation_matches_no_hash_label_empty_hash() {
        let pod = pod_with_labels(Some(&[("pod-template-generation", "12345")]));
        assert!(is_updated(&pod, "", Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_template_generation_matches_hash_label_empty_hash() {
        let pod = pod_with_labels(Some(&[
            ("pod-template-generation", "12345"),
            ("controller-revision-hash", HASH),
        ]));
        assert!(is_updated(&pod, "", Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_hash_matches_template_generation_does_not() {
        let pod = pod_with_labels(Some(&[
            ("pod-template-generation", "12344"),
            ("controller-revision-hash", HASH),
        ]));
        assert!(is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_neither_matches() {
        let pod = pod_with_labels(Some(&[
            ("pod-template-generation", "12344"),
            ("controller-revision-hash", "other"),
        ]));
        assert!(!is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_empty_labels_empty_hash() {
        let pod = pod_with_labels(Some(&[]));
        assert!(!is_updated(&pod, "", Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_empty_labels() {
        let pod = pod_with_labels(Some(&[]));
        assert!(!is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn test_is_pod_updated_nil_labels() {
        let pod = pod_with_labels(None);
        assert!(!is_updated(&pod, HASH, Some(12345)));
    }

    #[test]
    fn is_updated_without_template_generation_uses_hash_only() {
        let pod = pod_with_labels(Some(&[("pod-template-generation", "1")]));
        assert!(!is_updated(&pod, HASH, None));
        let pod = pod_with_labels(Some(&[("controller-revision-hash", HASH)]));
        assert!(is_updated(&pod, HASH, None));
        // An empty hash never matches an empty/missing hash label.
        let pod = pod_with_labels(Some(&[("controller-revision-hash", "")]));
        assert!(!is_updated(&pod, "", None));
    }

    #[test]
    fn is_updated_compares_generation_as_decimal_string() {
        let pod = pod_with_labels(Some(&[("pod-template-generation", "007")]));
        assert!(!is_updated(&pod, "", Some(7)));
        let pod = pod_with_labels(Some(&[("pod-template-generation", "-3")]));
        assert!(is_updated(&pod, "", Some(-3)));
    }

    proptest::proptest! {
        /// The generation's comparison without building a string is the string comparison Go
        /// makes (`fmt.Sprint(generation)`), for any label text and any generation.
        #[test]
        fn decimal_comparison_is_the_string_comparison(
            g in proptest::prop_oneof![
                proptest::prelude::any::<i64>(),
                -20i64..20,
                proptest::prelude::Just(i64::MIN),
                proptest::prelude::Just(i64::MAX),
            ],
            text in "[-+0-9]{0,21}",
            same in proptest::prelude::any::<bool>(),
        ) {
            let text = if same { g.to_string() } else { text };
            proptest::prop_assert_eq!(is_decimal(&text, g), text == g.to_string());
        }
    }

    #[test]
    fn decimal_comparison_edges() {
        assert!(is_decimal("-9223372036854775808", i64::MIN));
        assert!(is_decimal("9223372036854775807", i64::MAX));
        assert!(is_decimal("0", 0));
        assert!(!is_decimal("", 0));
        assert!(!is_decimal("00", 0));
        assert!(!is_decimal("+1", 1));
        assert!(!is_decimal("12", 1));
        assert!(!is_decimal("1", 12));
    }

    #[test]
    fn condition_available_counts_min_ready_seconds_from_the_ready_time() {
        let now = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        for (ready_for, min_ready, want) in [
            (0, 0, true),
            (5, 10, false),
            (10, 10, true),
            (11, 10, true),
            (3, -1, true),
        ] {
            let pod = with_ready(p(), true, 1_000 - ready_for);
            let Some(c) = ready_condition(&pod) else {
                panic!("fixture has a Ready condition")
            };
            let why = format!("ready for {ready_for} s, minReadySeconds {min_ready}");
            assert_eq!(condition_available(c, min_ready, now), want, "{why}");
            assert_eq!(is_available(&pod, min_ready, now), want, "{why}");
        }
    }

    // ---- ordering ----------------------------------------------------------------------

    #[test]
    fn scheduled_pods_sort_first() {
        let ds = daemonset("foo");
        let scheduled = with_creation_timestamp(ds_pod(&ds, "n", ""), 100);
        let unscheduled = with_creation_timestamp(with_pod_node_name(ds_pod(&ds, "n", ""), ""), 1);
        assert_eq!(
            oldest_scheduled_first(&scheduled, &unscheduled),
            Ordering::Less
        );
        assert_eq!(
            oldest_scheduled_first(&unscheduled, &scheduled),
            Ordering::Greater
        );
    }

    #[test]
    fn older_pods_sort_first_then_name() {
        let ds = daemonset("foo");
        let old = with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 50), "z");
        let new = with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 60), "a");
        assert_eq!(oldest_scheduled_first(&old, &new), Ordering::Less);
        let same_a = with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 60), "a");
        let same_b = with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 60), "b");
        assert_eq!(oldest_scheduled_first(&same_a, &same_b), Ordering::Less);
        assert_eq!(oldest_scheduled_first(&same_b, &same_a), Ordering::Greater);
        assert_eq!(oldest_scheduled_first(&same_a, &same_a), Ordering::Equal);
    }

    #[test]
    fn missing_creation_timestamp_is_oldest() {
        let ds = daemonset("foo");
        let mut none = with_name(ds_pod(&ds, "n", ""), "z");
        none.metadata.creation_timestamp = None;
        let some = with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), -100), "a");
        assert_eq!(oldest_scheduled_first(&none, &some), Ordering::Less);
    }

    #[test]
    fn sorting_a_node_group() {
        let ds = daemonset("foo");
        let mut pods = [
            with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 60), "b"),
            with_name(
                with_pod_node_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 1), ""),
                "u",
            ),
            with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 50), "c"),
            with_name(with_creation_timestamp(ds_pod(&ds, "n", ""), 60), "a"),
        ];
        pods.sort_by(oldest_scheduled_first);
        let names: Vec<_> = pods
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["c", "a", "b", "u"]);
    }
}
