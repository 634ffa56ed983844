//! The SLA-aware planner against the simulator: plans are verified, the prediction tracks
//! the simulated capacity, and the queueing model is never looser than the simulator.

use migopt_models::{
    Assignment, BatchDist, BatchLookup, Demand, GpuPlan, Method, Millis, ModelSpec, Objective,
    Origin, Plan, PlanParams, ProfileRow, ProfileSet, Scenario, SolveReport, SolveStatus,
};
use migopt_sim::{Arrivals, SchedulerKind, SimConfig};
use migopt_solver::{PlanOptions, SolverKind};
use migopt_verify::{plan_checked, replan_checked, CheckOptions};
use proptest::prelude::*;
use std::path::PathBuf;

/// The config of every property test here: `cases` cases on a fixed seed.
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    // Fixed: the same seed gives the same result (the guide demands determinism).
    let mut config = Config::with_cases(cases);
    // Unless PROPTEST_RNG_SEED=<u64> (read into the default config) asks for another seed.
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(1);
    }
    config
}

/// One model on A100-80GB: latency a + c·batch / (SMs of the slice), batches 1..32.
fn scenario(gpus: u32, a: f64, c: f64, sla: f64, batch: BatchDist) -> Scenario {
    let sms = [
        ("1g.10gb", 14.0),
        ("2g.20gb", 28.0),
        ("3g.40gb", 42.0),
        ("4g.40gb", 56.0),
        ("7g.80gb", 98.0),
    ];
    let mut rows = Vec::new();
    for (profile, s) in sms {
        for b in [1u32, 2, 4, 8, 16, 32] {
            let lat = a + c * b as f64 / s;
            rows.push((
                Origin::file("synthetic"),
                ProfileRow {
                    model: "m".into(),
                    gpu: "A100-80GB".into(),
                    profile: profile.into(),
                    batch: b,
                    latency_ms: lat,
                    latency_p99_ms: None,
                    procs: 1,
                    throughput_qps: b as f64 * 1000.0 / lat,
                    method: Method::Imported,
                    neighbour_load: 0.0,
                },
            ));
        }
    }
    Scenario {
        name: "synthetic".into(),
        description: None,
        gpu: "A100-80GB".into(),
        gpu_count: gpus,
        batch_lookup: BatchLookup::Interpolate,
        max_procs: None,
        profiles: ProfileSet::from_rows(rows).expect("valid rows"),
        models: vec![ModelSpec {
            name: "m".into(),
            sla: Millis(sla),
            demand: Demand::Share(1.0),
            batch,
            profile_path: PathBuf::from("synthetic"),
        }],
    }
}

fn quick_check() -> CheckOptions {
    CheckOptions {
        replications: 3,
        queries: 30_000,
        threads: Some(1),
        ..CheckOptions::default()
    }
}

#[test]
fn sla_plan_is_verified_and_predicted_close_to_simulation() {
    let batch = BatchDist::Lognormal {
        median: 4.0,
        sigma: 0.8,
        max: 32,
    };
    let s = scenario(2, 1.0, 40.0, 30.0, batch);
    let c = plan_checked(&s, &PlanOptions::default(), &quick_check()).unwrap();
    assert!(c.verified, "{:?}", c.models);
    assert_eq!(c.plan.solver, "sla");
    assert_eq!(c.plan.report.status, SolveStatus::Optimal);
    let predicted = c.predicted_capacity_qps.unwrap();
    let simulated = c.simulated_capacity_qps.unwrap();
    // The plan promises less than it predicts (the margin) and the simulation agrees with
    // the prediction to within a few percent.
    assert!(c.plan.report.objective <= predicted + 1e-6);
    let err = (predicted - simulated.mean).abs() / simulated.mean;
    assert!(err < 0.08, "predicted {predicted}, simulated {simulated:?}");
}

/// `n` 1g instances of the model on one GPU, every batch allowed.
/// `migopt plan --verify --json` prints a [`migopt_verify::Checked`]: the plan with its
/// check beside it. Users save it and read it back as a plan, so every key the check adds
/// must be one a plan file accepts (`migopt_models::plan`'s `PlanFile`), and nothing else.
#[test]
fn a_checked_plan_reads_back_as_its_plan() {
    let s = scenario(2, 1.0, 40.0, 30.0, BatchDist::Fixed { size: 4 });
    let opts = CheckOptions {
        replications: 2,
        queries: 5_000,
        ..quick_check()
    };
    let c = plan_checked(&s, &PlanOptions::default(), &opts).unwrap();
    let text = serde_json::to_string_pretty(&c).unwrap();
    let read = |text: &str| Plan::from_json(text, std::path::Path::new("checked.json")).unwrap();
    // Exactly the plan: every float round-trips to its last bit (serde_json's
    // `float_roundtrip`), so a saved plan reads back as the plan that was planned.
    assert_eq!(read(&text), c.plan);
    // Every key of the check is at the top level, beside the plan's own.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let plan = serde_json::to_value(&c.plan).unwrap();
    let extra: Vec<&String> = v
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| plan.get(k.as_str()).is_none())
        .collect();
    let want = [
        "models",
        "predicted_capacity_qps",
        "rounds",
        "scheduler",
        "simulated_capacity_qps",
        "verified",
    ];
    assert_eq!(extra, want);
}

fn pool_plan(n: u32, max_batch: u32) -> Plan {
    Plan {
        scenario: "synthetic".into(),
        scenario_path: None,
        gpu: "A100-80GB".into(),
        objective_kind: Objective::MaxLoad,
        solver: "pool".into(),
        report: SolveReport::heuristic(0.0, 0.0),
        params: PlanParams::default(),
        gpus: vec![GpuPlan {
            index: 0,
            layout: (0..n)
                .map(|i| Assignment {
                    profile: "1g.10gb".into(),
                    start: i,
                    model: "m".into(),
                    batch: max_batch,
                    procs: 1,
                })
                .collect(),
        }],
        routes: Vec::new(),
        model_rates: Vec::new(),
    }
}

/// One GPU cut 3g + 4×1g: the 1g instances take batches up to `small`, the 3g every batch.
fn mixed_plan(small: u32) -> Plan {
    let mut p = pool_plan(4, small);
    p.gpus[0].layout.push(Assignment {
        profile: "3g.40gb".into(),
        start: 4,
        model: "m".into(),
        batch: 32,
        procs: 1,
    });
    p
}

/// The simulated share of a plan's queries over the SLA at `rate` under `elsa` (3 × 150k
/// queries), and the low end of its 95% interval.
fn simulated_misses(s: &Scenario, plan: &Plan, rate: f64, seed: u64) -> (f64, f64) {
    let mut cfg = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rate,
    });
    cfg.replications = 3;
    cfg.queries = Some(150_000);
    cfg.seed = seed;
    cfg.threads = Some(1);
    let r = migopt_sim::simulate(plan, s, &cfg).unwrap();
    let miss = r.models[0].sla_violation_rate;
    (miss.mean, miss.ci_low.unwrap_or(miss.mean))
}

#[test]
fn the_predictor_routes_with_the_simulators_elsa_horizon() {
    assert_eq!(
        migopt_solver::ELSA_HORIZON,
        migopt_sim::sched::rules::START_HORIZON
    );

    assert_eq!(
        migopt_sim::SchedulerKind::elsa_rule(),
        migopt_sim::SchedulerKind::ElsaStart,
        "the queueing model's routing (solver/src/sla.rs, plan_pools) models elsa-start"
    );
}

proptest! {
    // Statistical properties: each case is judged on a finite simulation, so a case near a
    // steep point of the miss curve fails now and then by noise alone. A fixed seed makes the
    // 16 cases the same in every run (the product's rule: the same seed, the same result),
    // so CI cannot fail at random ([`proptest_config`]); the counterexample a random seed
    // once found is kept as its own test below, judged on enough queries to tell noise from
    // error.
    #![proptest_config(proptest_config(16))]

    /// Within 5% of the simulator on a plan of two sizes, where `elsa` spills small batches
    /// onto the large instance: at 95% of the capacity the queueing model predicts (p99, no
    /// margin), the simulated share of queries over the SLA is within the p99 budget (the
    /// same 20% statistical slack as for one pool). The shared-pool model is an
    /// approximation that may overshoot (by up to 3% on five instances) as well as fall
    /// short; this is its stated tolerance.
    #[test]
    fn the_shared_pool_model_overshoots_the_simulator_by_at_most_5_percent(
        small in prop::sample::select(vec![4u32, 8, 16]),
        a in 0.5f64..3.0,
        c in 5.0f64..60.0,
        median in 1.0f64..8.0,
        slack in 2.0f64..6.0,
        seed in 0u64..1000,
    ) {
        let batch = BatchDist::Lognormal { median, sigma: 0.9, max: 32 };
        let mean: f64 = batch.pmf().iter().map(|&(b, p)| p * (a + c * b as f64 / 14.0)).sum();
        let s = scenario(1, a, c, slack * mean, batch);
        let plan = mixed_plan(small);
        let opts = PlanOptions::default();
        let predicted = migopt_solver::predict_capacity(&s, &plan, &opts).unwrap().capacity_qps;
        prop_assume!(predicted > 0.0);
        let rate = 0.95 * predicted;
        let (miss, low) = simulated_misses(&s, &plan, rate, seed);
        prop_assert!(low <= opts.sla.budget * 1.2, "small {small}: misses {miss} at {rate} q/s");
    }

    /// Never looser than the simulator: at the rate the queueing model admits for a pool
    /// (with the planner's margin), the simulated share of queries over the SLA is within
    /// the p99 budget.
    #[test]
    fn queueing_model_is_never_looser_than_the_simulator(
        n in 1u32..=7,
        a in 0.5f64..3.0,
        c in 5.0f64..60.0,
        median in 1.0f64..8.0,
        slack in 2.0f64..6.0,
        seed in 0u64..1000,
    ) {
        let batch = BatchDist::Lognormal { median, sigma: 0.7, max: 32 };
        // SLA: `slack` times the mean service time on 1g.
        let mean: f64 = batch.pmf().iter().map(|&(b, p)| p * (a + c * b as f64 / 14.0)).sum();
        let s = scenario(1, a, c, slack * mean, batch);
        let plan = pool_plan(n, 32);
        let opts = PlanOptions::default();
        let mut planned = opts.clone();
        planned.sla.budget = opts.sla.budget * (1.0 - opts.sla.margin);
        let rate = migopt_solver::predict_capacity(&s, &plan, &planned).unwrap().capacity_qps;
        prop_assume!(rate > 0.0);
        let mut cfg = SimConfig::new(Arrivals::Poisson { total_rate_qps: rate });
        cfg.replications = 3;
        cfg.queries = Some(150_000);
        cfg.seed = seed;
        cfg.threads = Some(1);
        let r = migopt_sim::simulate(&plan, &s, &cfg).unwrap();
        // The share of queries over the SLA (what p99 ≤ SLA bounds, and a far less noisy
        // estimate than the 99th percentile itself) is within the 1% budget.
        let miss = r.models[0].sla_violation_rate;
        // Judged within the 95% interval: a busy period makes the count noisy.
        let low = miss.ci_low.unwrap_or(miss.mean);
        // The simulator's miss count is itself noisy at these sizes (a run at the boundary
        // was seen with its interval's low end at 1.09%): allow 20% statistical slack.
        prop_assert!(low <= opts.sla.budget * 1.2, "n {n}: misses {miss:?} at {rate} q/s");
    }
}

#[test]
fn sla_solver_parses_and_plans_max_load_optimally() {
    let batch = BatchDist::Lognormal {
        median: 2.0,
        sigma: 1.0,
        max: 32,
    };
    let s = scenario(1, 1.0, 30.0, 25.0, batch);
    let p = migopt_solver::plan(
        &s,
        "sla".parse::<SolverKind>().unwrap(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(p.report.status, SolveStatus::Optimal);
    assert_eq!(p.report.bound, Some(p.report.objective));
    p.validate(Default::default()).unwrap();
    // Every batch size has an instance that may run it.
    let top = p.gpus.iter().flat_map(|g| &g.layout).map(|a| a.batch).max();
    assert_eq!(top, Some(32));
}

/// ParvaGPU's SLO scenario `i` (1-based) from the vendored data set.
fn parvagpu(i: usize) -> Scenario {
    let imp = migopt_profiles::parvagpu::read(&migopt_profiles::parvagpu::dataset_dir()).unwrap();
    imp.scenario(&imp.scenarios[i - 1]).unwrap()
}

fn min_gpus() -> PlanOptions {
    PlanOptions {
        objective: Objective::MinGpus,
        ..PlanOptions::default()
    }
}

#[test]
fn sla_min_gpus_plan_is_verified_under_jsq_and_proven_optimal() {
    let s = parvagpu(1);
    let check = CheckOptions {
        scheduler: migopt_sim::SchedulerKind::Jsq,
        capacity: false,
        ..quick_check()
    };
    let c = plan_checked(&s, &min_gpus(), &check).unwrap();
    assert!(c.verified, "{:?}", c.models);
    assert_eq!(c.plan.report.status, SolveStatus::Optimal);
    assert_eq!(c.plan.gpus_used(), 2);
    assert!(c.models.iter().all(|m| m.met && m.rate_qps > 0.0));
}

#[test]
fn a_latency_cut_only_tightens_the_min_gpus_model() {
    let s = parvagpu(2);
    let free = migopt_solver::plan(&s, SolverKind::Sla, &min_gpus()).unwrap();
    // Half of each model's SLO taken off: at least as many GPUs, never fewer.
    let mut cut = min_gpus();
    cut.sla.slo_cuts_ms = s.models.iter().map(|m| 0.5 * m.sla.0).collect();
    let tight = migopt_solver::plan(&s, SolverKind::Sla, &cut).unwrap();
    assert!(tight.gpus_used() >= free.gpus_used());
    assert!(tight.gpcs_used().unwrap() >= free.gpcs_used().unwrap());
    // A cut that leaves a model no time at all leaves no plan.
    cut.sla.slo_cuts_ms = vec![s.models[0].sla.0];
    assert!(matches!(
        migopt_solver::plan(&s, SolverKind::Sla, &cut),
        Err(migopt_models::Error::Infeasible(_))
    ));
    // Negative cuts are refused.
    cut.sla.slo_cuts_ms = vec![-1.0];
    assert!(migopt_solver::plan(&s, SolverKind::Sla, &cut).is_err());
}

/// The SLA-aware max-load re-plan in the loop (`replan --objective sla-capacity`): the target
/// is simulated at the λ it promises, and a round in which a model misses cuts that model,
/// so the next round's target promises no more (the cut lowers tier 1's λ*). Under
/// round-robin, which ignores sizes and misses, the loop runs its rounds.
#[test]
fn sla_max_load_replan_is_checked_at_its_lambda_and_cut_when_it_misses() {
    let batch = BatchDist::Lognormal {
        median: 4.0,
        sigma: 0.8,
        max: 32,
    };
    let old = scenario(2, 1.0, 40.0, 30.0, batch.clone());
    let new = scenario(2, 1.0, 40.0, 20.0, batch);
    let opts = PlanOptions::default();
    let current = migopt_solver::plan(&old, SolverKind::Sla, &opts).unwrap();
    let ro = migopt_solver::replan::ReplanOptions {
        plan: opts,
        spare_gpus: 2,
        gpu_slack: 0,
        required: None,
        load_slack: 0.0,
    };
    let mut rounds_seen = Vec::new();
    for scheduler in [SchedulerKind::Elsa, SchedulerKind::RoundRobin] {
        let check = CheckOptions {
            scheduler,
            max_rounds: 3,
            ..quick_check()
        };
        let c = replan_checked(&current, &new, SolverKind::Sla, &ro, &check).unwrap();
        let t = &c.replan.target;
        assert_eq!(t.objective_kind, Objective::MaxLoad);
        assert_eq!(t.solver, "sla-replan");
        let rounds = &c.check.rounds;
        assert_eq!(rounds.last().unwrap().objective, t.report.objective);
        for w in rounds.windows(2) {
            assert_eq!(w[0].missed, vec!["m".to_string()]);
            assert!(w[1].cuts[0] < w[0].cuts[0]);
            assert!(w[1].objective <= w[0].objective * (1.0 + 1e-12));
        }
        assert_eq!(c.check.verified, c.check.models.iter().all(|m| m.met));
        rounds_seen.push(rounds.len());
    }
    // Round-robin misses, so its loop cut at least once.
    assert!(rounds_seen[1] > 1, "{rounds_seen:?}");
}

/// The corner a random seed of `queueing_model_is_never_looser_than_the_simulator` found:
/// six instances at 92% utilisation with an SLA of 6 mean service times, where the miss
/// share rises 2.5-fold per 1% of rate. There, 3 replications of 150,000 queries (the
/// property's) once put the interval's low end at 1.50%; on 12 of 300,000 the simulated miss
/// at the admitted rate is 1.03% (95% interval 0.85–1.20%) against the 1% budget (planned at
/// 0.9%): the model's rate is within about 1% of the simulator's on the loose side, and at
/// 98% of it the miss is 0.37%.
#[test]
fn queueing_model_at_a_steep_six_instance_pool() {
    let (n, a, c, median, slack) = (
        6,
        2.5547206195295478,
        5.0,
        4.689506100876214,
        5.960088653564959,
    );
    let batch = BatchDist::Lognormal {
        median,
        sigma: 0.7,
        max: 32,
    };
    let mean: f64 = batch
        .pmf()
        .iter()
        .map(|&(b, p)| p * (a + c * b as f64 / 14.0))
        .sum();
    let s = scenario(1, a, c, slack * mean, batch);
    let plan = pool_plan(n, 32);
    let opts = PlanOptions::default();
    let mut planned = opts.clone();
    planned.sla.budget = opts.sla.budget * (1.0 - opts.sla.margin);
    let rate = migopt_solver::predict_capacity(&s, &plan, &planned)
        .unwrap()
        .capacity_qps;
    let miss_at = |f: f64| {
        let mut cfg = SimConfig::new(Arrivals::Poisson {
            total_rate_qps: f * rate,
        });
        cfg.replications = 12;
        cfg.queries = Some(300_000);
        cfg.seed = 133;
        migopt_sim::simulate(&plan, &s, &cfg).unwrap().models[0].sla_violation_rate
    };
    let at = miss_at(1.0);
    let (low, high) = (at.ci_low.unwrap(), at.ci_high.unwrap());
    assert!(
        low <= opts.sla.budget && high <= opts.sla.budget * 1.25,
        "{at:?}"
    );
    let below = miss_at(0.98);
    assert!(below.ci_high.unwrap() <= opts.sla.budget * 0.6, "{below:?}");
}

/// A min-gpus plan's predicted capacity is its promise at the scenario's rate proportions:
/// the total rate its provisioned per-model rates carry, min over models of
/// provisioned / rate, times the total rate (models with no rate do not bind).
#[test]
fn a_min_gpus_plan_predicts_what_its_provisioned_rates_carry() {
    let mut s = migopt_profiles::default_scenario().unwrap();
    let rate = |q: f64| Demand::Rate(q);
    s.models[0].demand = rate(3000.0);
    s.models[1].demand = rate(1000.0);
    let mut p = pool_plan(1, 1);
    p.objective_kind = Objective::MinGpus;
    p.model_rates = vec![
        migopt_models::ModelRate {
            model: s.models[0].name.clone(),
            rate_qps: 4500.0,
        },
        migopt_models::ModelRate {
            model: s.models[1].name.clone(),
            rate_qps: 1200.0,
        },
    ];
    let opts = PlanOptions::default();
    // min(4500 / 3000, 1200 / 1000) · 4000 = 1.2 · 4000.
    let got = migopt_verify::predicted_capacity(&s, &p, &opts).unwrap();
    assert!((got - 4800.0).abs() < 1e-9, "{got}");
    // A model the scenario gives no traffic does not bind.
    s.models[1].demand = rate(0.0);
    let got = migopt_verify::predicted_capacity(&s, &p, &opts).unwrap();
    assert!((got - 4500.0).abs() < 1e-9, "{got}");
}
