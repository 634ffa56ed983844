//! Dynamic batching, multi-process instances and trace replay, on servers small enough that
//! the right answer can be worked out by hand.

mod common;

use common::{a, plan, scenario, single_server};
use migopt_models::{BatchDist, BatchLookup, Objective, Plan, ProfileSet, Scenario};
use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig, TraceRecord};
use std::path::Path;

/// One 7g instance batching up to 8 single requests: L(1) = 1 ms, L(8) = 4 ms.
fn batcher() -> (Plan, Scenario) {
    let sc = scenario(
        &[("m", 50.0, 1.0, BatchDist::Fixed { size: 1 })],
        "m,7g.80gb,1,1\nm,7g.80gb,8,4\n",
        BatchLookup::Interpolate,
    );
    (
        plan(Objective::MinGpus, vec![vec![a("7g.80gb", 0, "m", 8, 1)]]),
        sc,
    )
}

fn cfg(rate: f64, sched: SchedulerKind) -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rate,
    });
    c.scheduler = sched;
    c.queries = Some(100_000);
    c.replications = 2;
    c
}

#[test]
fn a_lonely_request_waits_out_the_queue_delay() {
    let (p, sc) = batcher();
    let mut c = cfg(5.0, SchedulerKind::RoundRobin);
    c.mode = Some(ServingMode::DynamicBatching {
        max_queue_delay_ms: 5.0,
    });
    let r = simulate(&p, &sc, &c).unwrap();
    assert_eq!(r.mode, "dynamic-batching");
    let l = r.models[0].latency_ms.unwrap();
    // At 5 requests/s almost every request is alone: it waits 5 ms, then runs 1 ms.
    assert!((l.p50.mean / 6.0 - 1.0).abs() < 0.005, "{:?}", l.p50);
    let i = &r.instances[0];
    assert!(i.queries as f64 / (i.batches as f64) < 1.05);
}

#[test]
fn heavy_traffic_fills_batches() {
    // Full batches carry 8 / 4 ms = 2000 requests/s; at 1800 they run nearly full.
    for sched in [SchedulerKind::Elsa, SchedulerKind::Fifs] {
        let (p, sc) = batcher();
        let mut c = cfg(1800.0, sched);
        c.mode = Some(ServingMode::DynamicBatching {
            max_queue_delay_ms: 2.0,
        });
        let r = simulate(&p, &sc, &c).unwrap();
        let i = &r.instances[0];
        let mean_batch = i.queries as f64 / i.batches as f64;
        assert!(mean_batch > 6.0, "{sched}: mean batch {mean_batch}");
        assert!(
            (r.throughput_qps.mean / 1800.0 - 1.0).abs() < 0.02,
            "{sched}: {:?}",
            r.throughput_qps
        );
        assert!(i.utilisation.mean > 0.8, "{sched}: {:?}", i.utilisation);
        assert_eq!(i.queue_length.is_some(), sched != SchedulerKind::Fifs);
    }
}

#[test]
fn min_gpus_plans_default_to_dynamic_batching() {
    let (p, sc) = batcher();
    let r = simulate(&p, &sc, &cfg(100.0, SchedulerKind::Elsa)).unwrap();
    assert_eq!(r.mode, "dynamic-batching");
    // Half of the (1 − 0.45) · 50 ms the planner left for queueing.
    assert!((r.max_queue_delay_ms.unwrap() - 13.75).abs() < 1e-9);
}

#[test]
fn processes_run_batches_side_by_side() {
    // Two MPS processes, each 1.5 ms per batch-1 query: at 1000 queries/s one process would
    // be 150% busy; two carry it at 75%.
    let csv = "model,gpu,profile,batch,latency_ms,procs\nm,H100-80GB,7g.80gb,1,1.5,2\n";
    let mut sc = single_server(1.0, false).1;
    sc.profiles = ProfileSet::from_csv_str(csv, Path::new("p.csv")).unwrap();
    let p = plan(Objective::MaxLoad, vec![vec![a("7g.80gb", 0, "m", 1, 2)]]);
    for sched in [SchedulerKind::Elsa, SchedulerKind::Fifs] {
        let r = simulate(&p, &sc, &cfg(1000.0, sched)).unwrap();
        let u = r.instances[0].utilisation.mean;
        assert!((u - 0.75).abs() < 0.01, "{sched}: {u}");
        assert!(r.models[0].latency_ms.unwrap().p99.mean < 20.0, "{sched}");
    }
}

#[test]
fn a_trace_is_replayed_exactly() {
    let (p, sc) = single_server(1.0, false);
    let rec = |t: f64| TraceRecord {
        arrival_ms: t,
        model: "m".into(),
        batch: 1,
    };
    // Three queries at once queue behind each other (1, 2, 3 ms); the fourth finds it idle.
    let mut c = SimConfig::new(Arrivals::Trace(vec![
        rec(0.0),
        rec(0.0),
        rec(0.0),
        rec(10.0),
    ]));
    c.replications = 1;
    c.warmup_fraction = 0.0;
    for sched in [SchedulerKind::Elsa, SchedulerKind::Fifs] {
        c.scheduler = sched;
        let r = simulate(&p, &sc, &c).unwrap();
        let m = &r.models[0];
        assert_eq!(m.completed, 4);
        let l = m.latency_ms.unwrap();
        assert_eq!(l.mean.mean, 1.75, "{sched}");
        assert_eq!(l.max.mean, 3.0, "{sched}");
        assert_eq!(m.wait_ms_mean.unwrap().mean, 0.75, "{sched}");
        // The third finds one waiting (and one in service).
        assert_eq!(m.queue_length.max.mean, 1.0, "{sched}");
        assert_eq!(r.arrivals, "trace");
        assert_eq!(r.offered_rate_qps, None);
        // Busy 3 ms of the 10 ms between first and last arrival (the last query runs after).
        assert!(
            (r.instances[0].utilisation.mean - 0.3).abs() < 1e-12,
            "{sched}"
        );
    }
}

#[test]
fn duration_bounds_the_run() {
    let (p, sc) = single_server(1.0, false);
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 500.0,
    });
    c.duration_s = Some(20.0);
    c.replications = 2;
    let r = simulate(&p, &sc, &c).unwrap();
    // 10 000 expected arrivals; the window excludes the first 10% of the time.
    assert!(
        (r.queries_per_replication / 10_000.0 - 1.0).abs() < 0.05,
        "{}",
        r.queries_per_replication
    );
    assert!(
        (r.window_s.mean / 18.0 - 1.0).abs() < 0.01,
        "{:?}",
        r.window_s
    );
}
