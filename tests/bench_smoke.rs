//! The benchmark of `make bench` at N = 20 with 2 DaemonSets and a 3 s steady state, at all three
//! budgets (so kube-scheduler is restarted without its client limit once), so its code cannot rot: it
//! asserts that every figure was collected (floors and targets included) and the report and charts
//! were written, not how fast anything was.

use bench::config::Config;
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_collects_every_figure() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke");
    let _ = std::fs::remove_dir_all(base.join("results"));
    let config = Config {
        nodes: vec![20],
        daemonsets: 2,
        steady: Duration::from_secs(3),
        everynode: PathBuf::from(env!("CARGO_BIN_EXE_everynode")),
        out: base.join("results"),
        work_dir: base.join("controlplane"),
        ..Default::default()
    };
    let r = bench::run(&config)
        .await
        .unwrap_or_else(|e| panic!("the benchmark failed: {e}"));
    assert!(
        r.everynode_has_api_budget_flags,
        "everynode run lacks --kube-api-qps/--kube-api-burst"
    );
    assert_eq!(r.turns.len(), 6, "2 controllers x 3 budgets");
    assert_eq!(r.limits.len(), 3, "one physical limit per budget");
    assert_eq!(r.floors.len(), 3, "one floor per budget");
    assert!(
        r.budget_limits.iter().any(|b| b.scheduler_lifted),
        "no budget lifted the scheduler's limit: {:?}",
        r.budget_limits
    );
    for t in &r.turns {
        let who = format!("{} at the {} budget", t.controller, t.budget);
        assert!(t.errors.is_empty(), "{who}: {:?}", t.errors);
        for (name, v) in [
            ("create: all pods exist", t.create_all_exist_s),
            ("create: all pods Ready", t.create_all_ready_s),
            ("rolling update", t.rollout_s),
            ("join median", t.join_median_s),
            ("join p99", t.join_p99_s),
        ] {
            assert!(v.is_some_and(|v| v >= 0.0), "{who}: {name} missing");
        }
        assert_eq!(t.joined, 2, "{who}: 10% of 20 nodes join");
        assert_eq!(t.daemonsets, 2, "{who}: DaemonSets");
        assert!(t.churn_patches > 0, "{who}: no label churn was sent");
        let profile = t.rollout_profile.as_ref();
        assert!(
            profile.is_some_and(|p| p.replaced + p.approximate == 40
                && p.unavailable_s.mean.is_some()
                && p.schedule_s.median.is_some()
                && p.mean_unavailable > 0.0),
            "{who}: the rollout profile does not cover the 2 × 20 slots: {profile:?}"
        );
        assert_eq!(
            t.nodes_lost_health,
            Some(0),
            "{who}: nodes lost Ready at N = 20 (or the node health watch never listed)"
        );
        assert!(
            t.high_water_mark_bytes.is_some_and(|b| b > 0),
            "{who}: no VmHWM"
        );
        for phase in ["start", "create", "update", "join", "steady"] {
            let p = t
                .phase(phase)
                .unwrap_or_else(|| panic!("{who}: no figures for phase {phase}"));
            assert!(p.peak_rss_bytes > 0, "{who}: {phase}: no peak RSS");
            assert!(p.cpu_seconds >= 0.0, "{who}: {phase}: CPU seconds");
        }
        let created = t
            .phase("create")
            .and_then(|p| p.requests.get("create").copied());
        assert!(
            created.is_some_and(|c| c >= 40),
            "{who}: the audit log shows {created:?} create requests while creating 2 x 20 pods"
        );
        let watches = t
            .phase("start")
            .and_then(|p| p.requests.get("watch").copied());
        assert!(
            watches.is_some_and(|w| w >= 3),
            "{who}: {watches:?} watches at start"
        );
        if t.controller == "everynode" {
            // No CRD on the bench's control plane: discovery finds that out without a 404.
            let not_found: Vec<_> = t
                .phases
                .iter()
                .flat_map(|p| p.requests_by_resource.keys())
                .filter(|k| k.ends_with(" 404"))
                .collect();
            assert!(
                not_found.is_empty(),
                "{who}: refused with 404: {not_found:?}"
            );
        }
    }
    for l in &r.limits {
        assert!(l.all_created_s > 0.0 && l.all_ready_s.is_some(), "{l:?}");
        assert_eq!(l.daemonsets, 2, "{l:?}");
    }
    for f in &r.floors {
        assert!(f.errors.is_empty(), "the floor failed: {f:?}");
        for (name, v) in [
            ("all exist", f.all_exist_s),
            ("all bound", f.all_bound_s),
            ("all Ready", f.all_ready_s),
            ("rolling replacement", f.rollout_s),
        ] {
            assert!(v.is_some_and(|v| v >= 0.0), "floor {name} missing: {f:?}");
        }
    }
    let report = std::fs::read_to_string(config.out.join("report.md")).unwrap_or_default();
    assert!(
        report.contains("| figure | everynode | upstream | everynode / upstream |"),
        "report.md has no table:\n{report}"
    );
    assert!(report.contains("## N = 20"), "report.md:\n{report}");
    for needle in [
        "| rolling update above the floor (s) | ",
        "Floor at this budget",
        "| figure | target | measured | met |",
        "kube-scheduler without a client-side limit",
        "`bench/results/core.md`",
    ] {
        assert!(
            report.contains(needle),
            "report.md lacks {needle:?}:\n{report}"
        );
    }
    // A targets table for each budget without a client-side limit (unlimited, lifted), each with
    // the seven targets. (Whether the rolling update's row is measured depends on timing: at
    // N = 20 a controller can beat the floor, and a ratio of negative times is shown as "–".)
    let tables: Vec<&str> = report
        .split("| figure | target | measured | met |\n|---|---|---:|---|\n")
        .skip(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or_default())
        .collect();
    assert_eq!(tables.len(), 2, "report.md:\n{report}");
    for t in tables {
        assert_eq!(t.lines().count(), 7, "targets table:\n{t}");
        for l in t.lines().filter(|l| !l.starts_with("| rolling update")) {
            assert!(
                l.ends_with("| yes |") || l.ends_with("| **no** |"),
                "a target was not measured: {l}"
            );
        }
    }
    for f in ["time.png", "memory.png", "results.json"] {
        let len = std::fs::metadata(config.out.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 1000, "{f} is missing or empty ({len} bytes)");
    }
}
