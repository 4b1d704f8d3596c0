//! Where a rolling update's time goes, read from the benchmark's pod watch: for every slot (one
//! DaemonSet on one node), when its old pod went, when its new pod was created, bound and Ready, and
//! how many slots were without an available pod on average. Pure: pod records in, figures out.
//!
//! The figures split the rollout time by Little's law: slots replaced per second = slots unavailable
//! on average / seconds each slot is unavailable. So a controller's rollout is slow either because
//! each slot stays unavailable long (the controller's create after the old pod went, then the
//! scheduler and kwok), or because it keeps fewer slots open than maxUnavailable allows (its delete
//! after new pods became available).

use crate::podwatch::PodRecord;
use crate::stats::percentile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Median, 99th percentile and mean of one interval over the replaced slots, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spread {
    pub median: Option<f64>,
    pub p99: Option<f64>,
    pub mean: Option<f64>,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        Self {
            median: percentile(&values, 50.0),
            p99: percentile(&values, 99.0),
            mean,
        }
    }
}

/// One rolling update, slot by slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutProfile {
    /// Slots whose old pod went and whose new pod became Ready, and whose times are exact: the
    /// figures below are over these.
    pub replaced: usize,
    /// Slots left out because the pod watch was down when one of their changes happened (a relist
    /// found it late: `PodRecord::approximate`).
    pub approximate: usize,
    /// Old pod gone → new pod first seen: the controller's create (0 when the new pod came first).
    pub create_gap_s: Spread,
    /// New pod first seen → bound to its node: kube-scheduler.
    pub schedule_s: Spread,
    /// Bound → Ready: kwok.
    pub start_s: Spread,
    /// Old pod gone → new pod Ready: how long the slot had no available pod.
    pub unavailable_s: Spread,
    /// Slots without an available pod, averaged over the rollout (from the template change to the
    /// last new pod Ready).
    pub mean_unavailable: f64,
}

/// The profile of the rollout from revision `old` to `new` that began at `start` and was complete
/// at `end`. Slots are (owner, node); a slot counts once its new pod is Ready and an old pod of it is
/// gone (the last to go, if several were). The mean of open slots counts the approximate slots too.
pub fn profile(
    pods: &BTreeMap<String, PodRecord>,
    old: &str,
    new: &str,
    start: Instant,
    end: Instant,
) -> RolloutProfile {
    type Slot<'a> = (&'a str, &'a str);
    let mut gone: BTreeMap<Slot, (Instant, bool)> = BTreeMap::new();
    let mut fresh: BTreeMap<Slot, &PodRecord> = BTreeMap::new();
    for p in pods.values().filter(|p| !p.node.is_empty()) {
        let slot = (p.owner.as_str(), p.node.as_str());
        if p.revision == old {
            if let Some(at) = p.gone_at {
                let e = gone.entry(slot).or_insert((at, p.approximate));
                if at > e.0 {
                    *e = (at, p.approximate);
                }
            }
        } else if p.revision == new && p.live() {
            let e = fresh.entry(slot).or_insert(p);
            if p.first_seen < e.first_seen {
                *e = p;
            }
        }
    }
    let secs = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64();
    let (mut gap, mut schedule, mut begin, mut unavailable) = (vec![], vec![], vec![], vec![]);
    let (mut open, mut approximate) = (0.0, 0);
    for (slot, (went, late)) in &gone {
        let Some(p) = fresh.get(slot) else { continue };
        let (Some(bound), Some(ready)) = (p.bound_at, p.ready_at) else {
            continue;
        };
        open += secs((*went).max(start), ready.min(end));
        if *late || p.approximate {
            approximate += 1;
            continue;
        }
        gap.push(secs(*went, p.first_seen));
        schedule.push(secs(p.first_seen, bound));
        begin.push(secs(bound, ready));
        unavailable.push(secs(*went, ready));
    }
    let window = secs(start, end);
    RolloutProfile {
        replaced: unavailable.len(),
        approximate,
        create_gap_s: Spread::of(gap),
        schedule_s: Spread::of(schedule),
        start_s: Spread::of(begin),
        unavailable_s: Spread::of(unavailable),
        mean_unavailable: if window > 0.0 { open / window } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `s` seconds after the rollout began at `t0` + 10 s (so that pods can predate it).
    fn at(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(10.0 + s)
    }

    fn rec(
        owner: &str,
        node: &str,
        revision: &str,
        t0: Instant,
        times: [Option<f64>; 4],
    ) -> PodRecord {
        let [seen, bound, ready, gone] = times;
        PodRecord {
            uid: String::new(),
            node: node.into(),
            revision: revision.into(),
            owner: owner.into(),
            first_seen: at(t0, seen.unwrap_or(0.0)),
            bound_at: bound.map(|s| at(t0, s)),
            ready_at: ready.map(|s| at(t0, s)),
            gone: gone.is_some(),
            gone_at: gone.map(|s| at(t0, s)),
            approximate: false,
        }
    }

    #[test]
    fn each_interval_is_read_per_slot_and_the_mean_open_slots_follow_littles_law() {
        let t0 = Instant::now();
        let mut pods = BTreeMap::new();
        // Two DaemonSets on node n1, one on n2. The old pods were there before the rollout (t=0).
        let slots = [
            ("a", "n1", 1.0, 2.0, 4.0, 5.0),
            ("b", "n1", 2.0, 3.0, 4.0, 8.0),
            ("a", "n2", 6.0, 6.5, 7.5, 10.0),
        ];
        for (i, (owner, node, went, seen, bound, ready)) in slots.into_iter().enumerate() {
            pods.insert(
                format!("old-{i}"),
                rec(
                    owner,
                    node,
                    "1",
                    t0,
                    [Some(-5.0), Some(-5.0), Some(-4.0), Some(went)],
                ),
            );
            pods.insert(
                format!("new-{i}"),
                rec(
                    owner,
                    node,
                    "2",
                    t0,
                    [Some(seen), Some(bound), Some(ready), None],
                ),
            );
        }
        // A pod of the new revision still unbound, and an old one never gone: neither is a slot.
        pods.insert(
            "stray".into(),
            rec("a", "", "2", t0, [Some(3.0), None, None, None]),
        );
        pods.insert(
            "kept".into(),
            rec(
                "b",
                "n2",
                "1",
                t0,
                [Some(-5.0), Some(-5.0), Some(-4.0), None],
            ),
        );
        let p = profile(&pods, "1", "2", at(t0, 0.0), at(t0, 10.0));
        assert_eq!(p.replaced, 3);
        assert_eq!(p.create_gap_s.median, Some(1.0));
        assert_eq!(p.create_gap_s.p99, Some(1.0));
        assert_eq!(p.schedule_s.median, Some(1.0));
        assert_eq!(p.schedule_s.mean.map(|m| (m * 3.0).round()), Some(4.0));
        assert_eq!(p.start_s.p99, Some(4.0));
        assert_eq!(p.unavailable_s.median, Some(4.0));
        // 4 + 6 + 4 slot-seconds over 10 s.
        assert!(
            (p.mean_unavailable - 1.4).abs() < 1e-9,
            "{}",
            p.mean_unavailable
        );
    }

    #[test]
    fn a_new_pod_made_before_the_old_one_went_has_no_gap_and_time_outside_the_rollout_is_not_counted()
     {
        let t0 = Instant::now();
        let mut pods = BTreeMap::new();
        pods.insert(
            "old".into(),
            rec(
                "a",
                "n1",
                "1",
                t0,
                [Some(-5.0), Some(-5.0), Some(-4.0), Some(3.0)],
            ),
        );
        pods.insert(
            "new".into(),
            rec("a", "n1", "2", t0, [Some(1.0), Some(2.0), Some(12.0), None]),
        );
        let p = profile(&pods, "1", "2", at(t0, 0.0), at(t0, 10.0));
        assert_eq!(p.create_gap_s.median, Some(0.0));
        assert_eq!(p.unavailable_s.median, Some(9.0));
        assert!(
            (p.mean_unavailable - 0.7).abs() < 1e-9,
            "{}",
            p.mean_unavailable
        );
    }

    #[test]
    fn the_last_old_pod_to_go_opens_the_slot_and_late_or_unfinished_slots_are_left_out() {
        let t0 = Instant::now();
        let mut pods = BTreeMap::new();
        let old = |went: f64| {
            rec(
                "a",
                "n1",
                "1",
                t0,
                [Some(-5.0), Some(-5.0), Some(-4.0), Some(went)],
            )
        };
        pods.insert("old-early".into(), old(1.0));
        pods.insert("old-late".into(), old(2.0));
        pods.insert(
            "new".into(),
            rec("a", "n1", "2", t0, [Some(3.0), Some(4.0), Some(5.0), None]),
        );
        // n2: the relist found the old pod gone. n3: the new pod is not Ready yet.
        let mut late = rec(
            "a",
            "n2",
            "1",
            t0,
            [Some(-5.0), Some(-5.0), Some(-4.0), Some(6.0)],
        );
        late.approximate = true;
        pods.insert("old-n2".into(), late);
        pods.insert(
            "new-n2".into(),
            rec("a", "n2", "2", t0, [Some(6.0), Some(6.0), Some(8.0), None]),
        );
        pods.insert(
            "old-n3".into(),
            rec(
                "a",
                "n3",
                "1",
                t0,
                [Some(-5.0), Some(-5.0), Some(-4.0), Some(1.0)],
            ),
        );
        pods.insert(
            "new-n3".into(),
            rec("a", "n3", "2", t0, [Some(2.0), Some(3.0), None, None]),
        );
        let p = profile(&pods, "1", "2", at(t0, 0.0), at(t0, 10.0));
        assert_eq!((p.replaced, p.approximate), (1, 1));
        assert_eq!(p.create_gap_s.median, Some(1.0));
        assert_eq!(p.unavailable_s.median, Some(3.0));
        // n1 open 3 s and n2 2 s (approximate slots still held the budget), over 10 s.
        assert!(
            (p.mean_unavailable - 0.5).abs() < 1e-9,
            "{}",
            p.mean_unavailable
        );
    }

    #[test]
    fn no_rollout_no_figures() {
        let t0 = Instant::now();
        let p = profile(&BTreeMap::new(), "1", "2", t0, t0);
        assert_eq!(p.replaced, 0);
        assert_eq!(p.create_gap_s, Spread::default());
        assert_eq!(p.mean_unavailable, 0.0);
    }
}
