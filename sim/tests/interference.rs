//! The interference model on the H200 MPS profiles of papers/sim-to-real: neighbours' load
//! slows an instance between its isolated and its all-neighbours-flat-out speed, the model
//! is off without neighbour-load curves, and results are deterministic.

use migopt_models::{Plan, Scenario};
use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig, TraceRecord};
use std::path::Path;

fn setup() -> (Plan, Scenario) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../papers/sim-to-real");
    let s = Scenario::load(&dir.join("scenario.toml")).unwrap();
    let p: Plan =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    (p, s)
}

fn cfg(rate: f64, sched: SchedulerKind, threads: usize) -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rate,
    });
    c.scheduler = sched;
    c.mode = Some(ServingMode::QueryBatches);
    c.queries = Some(20_000);
    c.replications = 2;
    c.threads = Some(threads);
    c.seed = 7;
    c
}

fn p50(p: &Plan, s: &Scenario, c: &SimConfig, m: usize) -> f64 {
    simulate(p, s, c).unwrap().models[m]
        .latency_ms
        .unwrap()
        .p50
        .mean
}

#[test]
fn load_aware_lies_between_isolated_and_flat_out() {
    let (p, s) = setup();
    assert!(s.profiles.has_loaded());
    let mut iso = s.clone();
    iso.profiles = s.profiles.isolated();
    let mut flat = s.clone();
    flat.profiles = s.profiles.at_neighbour_load(1.0).unwrap();
    for sched in [SchedulerKind::Elsa, SchedulerKind::Fifs] {
        for rate in [200.0, 600.0] {
            let c = cfg(rate, sched, 1);
            for m in 0..2 {
                let (a, b, f) = (
                    p50(&p, &iso, &c, m),
                    p50(&p, &s, &c, m),
                    p50(&p, &flat, &c, m),
                );
                assert!(
                    a < b && b < f,
                    "{sched} {rate} model {m}: isolated {a} load-aware {b} flat-out {f}"
                );
            }
        }
    }
    // More load, more slowdown relative to the isolated prediction.
    let lo = p50(&p, &s, &cfg(150.0, SchedulerKind::Fifs, 1), 0)
        / p50(&p, &iso, &cfg(150.0, SchedulerKind::Fifs, 1), 0);
    let hi = p50(&p, &s, &cfg(650.0, SchedulerKind::Fifs, 1), 0)
        / p50(&p, &iso, &cfg(650.0, SchedulerKind::Fifs, 1), 0);
    assert!(
        hi > lo,
        "slowdown at 650 q/s {hi} not above that at 150 q/s {lo}"
    );
}

#[test]
fn deterministic_at_any_thread_count() {
    let (p, s) = setup();
    for sched in [SchedulerKind::Elsa, SchedulerKind::Fifs] {
        let a = simulate(&p, &s, &cfg(500.0, sched, 1)).unwrap();
        let b = simulate(&p, &s, &cfg(500.0, sched, 2)).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn a_lone_query_runs_at_its_isolated_speed() {
    // Nothing else is running: the neighbours' utilisation is zero, so is the slowdown.
    let (p, s) = setup();
    let mut c = SimConfig::new(Arrivals::Trace(vec![TraceRecord {
        arrival_ms: 5.0,
        model: "bert-base".into(),
        batch: 32,
    }]));
    c.mode = Some(ServingMode::QueryBatches);
    c.warmup_fraction = 0.0;
    c.replications = 1;
    let r = simulate(&p, &s, &c).unwrap();
    let want = s
        .profiles
        .curve("bert-base", "3g.71gb", 1)
        .unwrap()
        .latency(32, migopt_models::BatchLookup::Exact)
        .unwrap()
        .0;
    let got = r.models[1].latency_ms.unwrap().max.mean;
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
}
