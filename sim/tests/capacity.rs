//! Capacity search against a closed form, and beside the planner's promise.

mod common;

use migopt_models::{BatchDist, Millis, Objective};
use migopt_sim::{
    capacity, capacity_with_progress, Arrivals, CapacityTarget, SimConfig, TraceRecord,
};
use std::sync::atomic::{AtomicU64, Ordering};

fn cfg() -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 1.0,
    });
    c.queries = Some(200_000);
    c.replications = 4;
    c.seed = 5;
    c
}

#[test]
fn single_exponential_server_matches_the_closed_form() {
    // M/M/1 with mean service 1 ms: sojourn is exponential with rate μ − λ, so
    // P(sojourn > SLA) = e^{−(μ−λ)·SLA} ≤ 1% ⇔ λ ≤ μ − ln 100 / SLA = 769.7 queries/s for a
    // 20 ms SLA; "p99 ≤ SLA" is the same condition.
    let (p, mut sc) = common::single_server(1.0, true);
    sc.models[0].sla = Millis(20.0);
    let mut c = cfg();
    c.jitter = true;
    let want = 1000.0 * (1.0 - 100f64.ln() / 20.0);
    for target in [
        CapacityTarget::P99,
        CapacityTarget::Violations { budget: 0.01 },
    ] {
        let r = capacity(&p, &sc, &c, target).unwrap();
        let got = r.capacity_qps.mean;
        eprintln!(
            "{target:?}: capacity {got:.1} ± {:.1}, closed form {want:.1}",
            r.capacity_qps.half_width().unwrap()
        );
        assert!(
            (got / want - 1.0).abs() < 0.03,
            "{target:?}: {got} vs {want}"
        );
        assert_eq!(r.per_replication_qps.len(), 4);
        assert!(r.capacity_qps.half_width().unwrap() < 0.05 * want);
        assert!(r.resolution_qps < 0.002 * want * 2.0);
        assert_eq!(r.probes.len(), 40);
        // The report at capacity shows the target just met.
        let at = r.at_capacity.unwrap();
        let v = at.models[0].sla_violation_rate.mean;
        assert!(v < 0.02, "{target:?}: {v}");
    }
}

#[test]
fn fluid_promise_sits_beside_the_simulated_capacity() {
    let mut p = common::eight_gpu_plan(Objective::MaxLoad, 32);
    p.report.objective = 5000.0;
    let sc = common::two_model_scenario(BatchDist::Lognormal {
        median: 4.0,
        sigma: 1.0,
        max: 32,
    });
    let mut c = cfg();
    c.queries = Some(50_000);
    c.replications = 2;
    let calls = AtomicU64::new(0);
    let r = capacity_with_progress(
        &p,
        &sc,
        &c,
        CapacityTarget::Violations { budget: 0.01 },
        &|done, total| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert!(done <= total && total == 21);
        },
    )
    .unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 21);
    assert_eq!(r.fluid_capacity_qps, Some(5000.0));
    let cap = r.capacity_qps.mean;
    assert!((3000.0..6000.0).contains(&cap), "{cap}");
    assert_eq!(r.ratio_to_fluid, Some(cap / 5000.0));
    assert_eq!(r.target, "violations <= 0.01");
}

#[test]
fn fluid_promise_of_a_max_load_plan_follows_the_mix_searched() {
    // A max-load plan for a 50/50 mix (λ = 5000: 2500 queries/s each) searched at the
    // scenario's 60/40 mix promises what its per-model rates carry there, 2500 / 0.6,
    // not its objective at its own mix.
    let mut p = common::eight_gpu_plan(Objective::MaxLoad, 32);
    p.report.objective = 5000.0;
    p.model_rates = ["resnet", "bert"]
        .iter()
        .map(|m| migopt_models::ModelRate {
            model: (*m).into(),
            rate_qps: 2500.0,
        })
        .collect();
    let sc = common::two_model_scenario(BatchDist::Fixed { size: 4 });
    let mut c = cfg();
    c.queries = Some(5_000);
    c.replications = 2;
    let r = capacity(&p, &sc, &c, CapacityTarget::P99).unwrap();
    let want = 2500.0 / 0.6;
    assert!((r.fluid_capacity_qps.unwrap() - want).abs() < 1e-9 * want);
}

#[test]
fn capacity_needs_poisson_arrivals_and_a_sane_budget() {
    let (p, sc) = common::single_server(1.0, false);
    let mut c = cfg();
    c.arrivals = Arrivals::Trace(vec![TraceRecord {
        arrival_ms: 0.0,
        model: "m".into(),
        batch: 1,
    }]);
    assert_eq!(
        capacity(&p, &sc, &c, CapacityTarget::P99)
            .unwrap_err()
            .to_string(),
        "capacity search varies the arrival rate, so it needs Poisson arrivals, not a trace"
    );
    assert_eq!(
        capacity(&p, &sc, &cfg(), CapacityTarget::Violations { budget: 1.5 })
            .unwrap_err()
            .to_string(),
        "violation budget 1.5 must be at least 0 and below 1"
    );
}

#[test]
fn dynamic_batching_capacity_stays_below_full_batch_throughput() {
    // One instance batching up to 8 requests at 4 ms a batch carries at most 2000
    // requests/s; with a 20 ms SLA the p99 target holds close to that.
    let sc = common::scenario(
        &[("m", 20.0, 1.0, BatchDist::Fixed { size: 1 })],
        "m,7g.80gb,1,1\nm,7g.80gb,8,4\n",
        migopt_models::BatchLookup::Interpolate,
    );
    let p = common::plan(
        Objective::MinGpus,
        vec![vec![common::a("7g.80gb", 0, "m", 8, 1)]],
    );
    let mut c = cfg();
    c.queries = Some(50_000);
    c.replications = 2;
    let r = capacity(&p, &sc, &c, CapacityTarget::P99).unwrap();
    assert_eq!(r.mode, "dynamic-batching");
    let cap = r.capacity_qps.mean;
    assert!((1500.0..2000.0).contains(&cap), "{cap}");
    // A min-gpus plan without provisioned rates promises nothing to compare with.
    assert_eq!(r.fluid_capacity_qps, None);
}
