//! Simulator throughput: simulated queries per second per core on a realistic server (8 H100s
//! cut into 28 instances, two models, log-normal query batches, 70% load), for ELSA in
//! query-batch mode (the hot path), FIFS and dynamic batching (event-driven, for reference),
//! and Monte-Carlo replications on one vs two threads. Run with `cargo bench -p migopt-sim`;
//! the figures go in BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use divan::counter::ItemsCount;
use divan::Bencher;
use migopt_models::{BatchDist, Objective, Plan, Scenario};
use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig};

fn main() {
    divan::main();
}

const QUERIES: u64 = 2_000_000;

fn setup() -> (Plan, Scenario) {
    let p = common::eight_gpu_plan(Objective::MaxLoad, 32);
    let sc = common::two_model_scenario(BatchDist::Lognormal {
        median: 4.0,
        sigma: 1.0,
        max: 32,
    });
    (p, sc)
}

fn cfg(sched: SchedulerKind, mode: Option<ServingMode>, reps: u32, threads: usize) -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 4000.0,
    });
    c.scheduler = sched;
    c.mode = mode;
    c.queries = Some(QUERIES);
    c.replications = reps;
    c.threads = Some(threads);
    c
}

fn one_core(b: Bencher, sched: SchedulerKind, mode: Option<ServingMode>) {
    let (p, sc) = setup();
    let c = cfg(sched, mode, 1, 1);
    b.counter(ItemsCount::new(QUERIES))
        .bench(|| simulate(&p, &sc, &c).map(|r| r.throughput_qps.mean));
}

/// ELSA (`elsa`, the plan-aware rule), query batches, one replication on one thread: the
/// paper's setting.
#[divan::bench(sample_count = 10)]
fn elsa_query_batches(b: Bencher) {
    one_core(b, SchedulerKind::Elsa, None);
}

/// `elsa-greedy` (the first reconstruction, the rule ELSA ran before), query batches.
#[divan::bench(sample_count = 10)]
fn elsa_greedy_query_batches(b: Bencher) {
    one_core(b, SchedulerKind::ElsaGreedy, None);
}

/// `elsa` with `--jitter`: knowledge-only estimates, so the event-driven engine.
#[divan::bench(sample_count = 10)]
fn elsa_query_batches_jitter(b: Bencher) {
    let (p, sc) = setup();
    let mut c = cfg(SchedulerKind::Elsa, None, 1, 1);
    c.jitter = true;
    b.counter(ItemsCount::new(QUERIES))
        .bench(|| simulate(&p, &sc, &c).map(|r| r.throughput_qps.mean));
}

/// JSQ, query batches (scans the model's instances per query).
#[divan::bench(sample_count = 10)]
fn jsq_query_batches(b: Bencher) {
    one_core(b, SchedulerKind::Jsq, None);
}

/// FIFS, query batches: event-driven.
#[divan::bench(sample_count = 10)]
fn fifs_query_batches(b: Bencher) {
    one_core(b, SchedulerKind::Fifs, None);
}

/// ELSA with dynamic batching of single requests (batch 32, 2 ms delay): event-driven.
#[divan::bench(sample_count = 10)]
fn elsa_dynamic_batching(b: Bencher) {
    let (p, mut sc) = setup();
    for m in &mut sc.models {
        m.batch = BatchDist::Fixed { size: 1 };
    }
    // Single requests: 4× the query rate keeps the load comparable.
    let mut c = cfg(
        SchedulerKind::Elsa,
        Some(ServingMode::DynamicBatching {
            max_queue_delay_ms: 2.0,
        }),
        1,
        1,
    );
    c.arrivals = Arrivals::Poisson {
        total_rate_qps: 16000.0,
    };
    b.counter(ItemsCount::new(QUERIES))
        .bench(|| simulate(&p, &sc, &c).map(|r| r.throughput_qps.mean));
}

/// Four ELSA replications on 1 and 2 threads: the parallel speed-up.
#[divan::bench(args = [1, 2], sample_count = 10)]
fn elsa_4_replications(b: Bencher, threads: usize) {
    let (p, sc) = setup();
    let c = cfg(SchedulerKind::Elsa, None, 4, threads);
    b.counter(ItemsCount::new(4 * QUERIES))
        .bench(|| simulate(&p, &sc, &c).map(|r| r.throughput_qps.mean));
}

/// ELSA, query batches, with the interference model on: papers/sim-to-real's H200 plan (four
/// MPS slices, profiles with neighbour-load curves) at 600 queries/s, side by side:
/// `off`, the same plan with the isolated profiles only (model off, event-free engine);
/// `on`, the model on with the dispatcher's knowledge of a real server (event-driven
/// engine, the default); `on-oracle`, the model on with `oracle_estimates` (event-free
/// engine, whose dispatcher reads the slowed service times).
#[divan::bench(args = ["off", "on", "on-oracle"], sample_count = 10)]
fn elsa_interference(b: Bencher, case: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../papers/sim-to-real");
    let mut sc = Scenario::load(&dir.join("scenario.toml")).unwrap();
    if case == "off" {
        sc.profiles = sc.profiles.isolated();
    }
    let p: Plan =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let mut c = cfg(SchedulerKind::Elsa, Some(ServingMode::QueryBatches), 1, 1);
    c.arrivals = Arrivals::Poisson {
        total_rate_qps: 600.0,
    };
    c.oracle_estimates = case == "on-oracle";
    b.counter(ItemsCount::new(QUERIES))
        .bench(|| simulate(&p, &sc, &c).map(|r| r.throughput_qps.mean));
}
