//! Bad input fails before anything is simulated, with a message that says what to fix.

mod common;

use common::{a, plan, scenario, single_server, table};
use migopt_models::{BatchDist, BatchLookup, Objective};
use migopt_sim::{
    read_trace, simulate, Arrivals, SchedulerKind, ServingMode, SimConfig, TraceRecord,
};

fn poisson(rate: f64) -> SimConfig {
    SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rate,
    })
}

fn err(p: &migopt_models::Plan, sc: &migopt_models::Scenario, c: &SimConfig) -> String {
    simulate(p, sc, c).unwrap_err().to_string()
}

#[test]
fn instance_without_a_profile_for_its_model() {
    let (_, sc) = single_server(1.0, false);
    let p = plan(
        Objective::MaxLoad,
        vec![vec![a("4g.40gb", 0, "m", 1, 1), a("3g.40gb", 4, "m", 1, 1)]],
    );
    assert_eq!(
        err(&p, &sc, &poisson(100.0)),
        "GPU 0 4g.40gb@0: no latency profile for model `m` on 4g.40gb with 1 process(es) (profiled on: 7g.80gb)"
    );
}

#[test]
fn zero_or_negative_rate() {
    let (p, sc) = single_server(1.0, false);
    assert_eq!(
        err(&p, &sc, &poisson(0.0)),
        "total arrival rate must be a positive number of queries/s, got 0"
    );
    assert_eq!(
        err(&p, &sc, &poisson(-5.0)),
        "total arrival rate must be a positive number of queries/s, got -5"
    );
    let c = SimConfig::new(Arrivals::PoissonPerModel {
        rates_qps: vec![0.0],
    });
    assert_eq!(
        err(&p, &sc, &c),
        "total arrival rate must be a positive number of queries/s, got 0"
    );
}

#[test]
fn trace_going_backwards() {
    let (p, sc) = single_server(1.0, false);
    let rec = |t: f64| TraceRecord {
        arrival_ms: t,
        model: "m".into(),
        batch: 1,
    };
    let c = SimConfig::new(Arrivals::Trace(vec![rec(0.0), rec(5.0), rec(4.0)]));
    assert_eq!(
        err(&p, &sc, &c),
        "trace record 3: arrival_ms 4 is before the previous record's 5: time must not go backwards"
    );
    let path =
        std::env::temp_dir().join(format!("migopt-sim-backwards-{}.csv", std::process::id()));
    std::fs::write(&path, "arrival_ms,model,batch\n0,m,1\n2.5,m,1\n1,m,1\n").unwrap();
    let e = read_trace(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        e,
        format!(
            "{}:4: field `arrival_ms`: 1 is before 2.5 on line 3: time must not go backwards",
            path.display()
        )
    );
}

#[test]
fn invalid_placement() {
    let (_, sc) = single_server(1.0, false);
    let p = plan(Objective::MaxLoad, vec![vec![a("7g.80gb", 1, "m", 1, 1)]]);
    assert_eq!(
        err(&p, &sc, &poisson(100.0)),
        "invalid MIG placement on H100-80GB: GPU 0: 7g.80gb cannot start at memory slot 1 (valid starts: [0])"
    );
}

#[test]
fn batch_that_no_instance_can_run() {
    let sc = scenario(
        &[("m", 10.0, 1.0, table(&[(1, 0.5), (64, 0.5)]))],
        "m,7g.80gb,1,1\nm,7g.80gb,32,4\nm,1g.10gb,1,3\n",
        BatchLookup::Interpolate,
    );
    let p = plan(
        Objective::MaxLoad,
        vec![
            vec![a("7g.80gb", 0, "m", 64, 1)],
            vec![a("1g.10gb", 0, "m", 8, 1)],
        ],
    );
    assert_eq!(
        err(&p, &sc, &poisson(100.0)),
        "no instance of model `m` can serve a query of batch 64: 7g.80gb has no latency for batch 64 \
         (measured batches 1..=32, batch_lookup interpolate; migopt never extrapolates); 1g.10gb takes batches up to 8"
    );
}

#[test]
fn dynamic_batch_size_missing_from_an_exact_profile() {
    let sc = scenario(
        &[("m", 10.0, 1.0, BatchDist::Fixed { size: 1 })],
        "m,7g.80gb,1,1\nm,7g.80gb,2,1.5\nm,7g.80gb,4,2\n",
        BatchLookup::Exact,
    );
    let p = plan(Objective::MinGpus, vec![vec![a("7g.80gb", 0, "m", 4, 1)]]);
    let mut c = poisson(100.0);
    c.mode = Some(ServingMode::DynamicBatching {
        max_queue_delay_ms: 1.0,
    });
    assert_eq!(
        err(&p, &sc, &c),
        "model `m` on 7g.80gb (GPU 0 7g.80gb@0): dynamic batching may run batches of 1..=4 but the profile has no \
         latency for batch 3 (measured batches 1..=4, batch_lookup exact; migopt never extrapolates)"
    );
}

#[test]
fn plan_and_scenario_disagree() {
    let (_, sc) = single_server(1.0, false);
    let p = plan(
        Objective::MaxLoad,
        vec![vec![a("7g.80gb", 0, "other", 1, 1)]],
    );
    assert_eq!(
        err(&p, &sc, &poisson(1.0)),
        "GPU 0 7g.80gb@0 serves model `other`, which scenario `test` does not have"
    );
    let p = plan(Objective::MaxLoad, vec![vec![]]);
    assert_eq!(
        err(&p, &sc, &poisson(1.0)),
        "model `m` has traffic but no instance in the plan"
    );
    let (p, _) = single_server(1.0, false);
    let c = SimConfig::new(Arrivals::Trace(vec![TraceRecord {
        arrival_ms: 0.0,
        model: "x".into(),
        batch: 1,
    }]));
    assert_eq!(
        err(&p, &sc, &c),
        "trace record 1: model `x` is not in scenario `test`"
    );
}

#[test]
fn bad_configuration() {
    let (p, sc) = single_server(1.0, false);
    let mut c = poisson(1.0);
    c.warmup_fraction = 1.0;
    assert_eq!(
        err(&p, &sc, &c),
        "warm-up fraction 1 must be at least 0 and below 1"
    );
    let mut c = poisson(1.0);
    c.replications = 0;
    assert_eq!(err(&p, &sc, &c), "replications must be at least 1");
    assert_eq!(
        "fastest".parse::<SchedulerKind>().unwrap_err().to_string(),
        "unknown scheduler `fastest` (known: elsa, elsa-greedy, elsa-margin, elsa-protect, elsa-plan, elsa-start, fifs, jsq, round-robin, random)"
    );
    assert_eq!(
        "Round_Robin".parse::<SchedulerKind>().unwrap(),
        SchedulerKind::RoundRobin
    );
}
