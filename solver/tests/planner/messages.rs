//! Infeasible input is explained in the user's terms: exact texts.

use crate::data::{synthetic, synthetic_rows, Synth};
use migopt_models::{BatchDist, Demand, Objective, Origin, ProfileRow, ProfileSet};
use migopt_solver::{explain_infeasible, plan, PlanOptions, SolverKind};

fn one(a: f64, c: f64, sla: f64, demand: Demand, batch: BatchDist) -> Synth {
    Synth {
        a,
        c,
        sla,
        demand,
        batch,
    }
}

fn max_load() -> PlanOptions {
    PlanOptions::default()
}

fn min_gpus() -> PlanOptions {
    PlanOptions {
        objective: Objective::MinGpus,
        ..Default::default()
    }
}

#[test]
fn batch_too_slow_on_every_profile() {
    // L(7g, 32) = 1 + 20·32/98 = 7.531 ms > 0.5 × 10 ms.
    let s = synthetic(
        "t",
        2,
        &[one(
            1.0,
            20.0,
            10.0,
            Demand::Share(1.0),
            BatchDist::Table {
                sizes: vec![1, 32],
                probs: vec![0.5, 0.5],
            },
        )],
    );
    let e = plan(&s, SolverKind::Milp, &max_load())
        .unwrap_err()
        .to_string();
    assert_eq!(e, "model m0: batch 32 needs 7.531 ms on 7g.80gb, the largest profile, but the SLA allows 0.5 × 10 ms = 5 ms");
    assert_eq!(explain_infeasible(&s, &max_load()), Some(e.clone()));
    // Every planner gives the same explanation: it comes from the shared input check.
    let p = plan(&s, SolverKind::Paris, &max_load())
        .unwrap_err()
        .to_string();
    assert_eq!(p, e);
}

#[test]
fn batch_beyond_the_measurements() {
    let s = synthetic(
        "t",
        1,
        &[one(
            1.0,
            1.0,
            100.0,
            Demand::Share(1.0),
            BatchDist::Fixed { size: 64 },
        )],
    );
    let e = plan(&s, SolverKind::Milp, &max_load())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "model m0: batch 64 is larger than any measured batch (the largest is 32, on 7g.80gb); measure it or cap the batch distribution"
    );
}

#[test]
fn no_point_within_the_slo() {
    // The fastest point: batch 1, one process on 7g: 1 + 1/98 = 1.0102 ms > 0.45 × 2 ms.
    let s = synthetic(
        "t",
        1,
        &[one(1.0, 1.0, 2.0, Demand::Rate(10.0), BatchDist::default())],
    );
    let e = plan(&s, SolverKind::Milp, &min_gpus())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "model m0: no measured (profile, batch, processes) point runs within 0.45 × 2 ms = 0.9 ms; the fastest is batch 1 with 1 process on 7g.80gb at 1.01 ms"
    );
}

#[test]
fn min_gpus_needs_rates() {
    let s = synthetic(
        "shares",
        1,
        &[one(
            1.0,
            1.0,
            100.0,
            Demand::Share(1.0),
            BatchDist::default(),
        )],
    );
    let e = plan(&s, SolverKind::Milp, &min_gpus())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "scenario shares: field model.rate_qps: fewest-GPUs planning needs a request rate for every model, \
         but the scenario gives shares (plan it for max-load)"
    );
}

#[test]
fn rate_targets_beyond_the_cap() {
    // Best throughput per GPU: batch 32, 1 proc: 32 / (1 + 32/14) ms on 1g ≈ 9,739/s per 1g,
    // about 68,000/s per GPU. 300,000/s needs at least 5 GPUs.
    let s = synthetic(
        "t",
        2,
        &[one(
            1.0,
            1.0,
            1000.0,
            Demand::Rate(300_000.0),
            BatchDist::default(),
        )],
    );
    let opts = PlanOptions {
        gpu_cap: Some(2),
        ..min_gpus()
    };
    let e = plan(&s, SolverKind::Milp, &opts).unwrap_err().to_string();
    assert!(e.starts_with("the rate targets need at least "), "{e}");
    let lp = plan(&s, SolverKind::Milp, &min_gpus())
        .unwrap()
        .report
        .lp_bound
        .unwrap();
    assert_eq!(
        e,
        format!(
            "the rate targets need at least {} GPUs (LP bound) but the server has 2",
            (lp - 1e-6).ceil()
        )
    );
    assert_eq!(explain_infeasible(&s, &opts), Some(e));
    assert_eq!(explain_infeasible(&s, &min_gpus()), None);
}

#[test]
fn model_measured_only_on_non_classic_profiles() {
    let rows: Vec<(Origin, ProfileRow)> = synthetic_rows("m0", 1.0, 1.0, 1)
        .into_iter()
        .map(|(o, mut r)| {
            r.profile = "1g.20gb".into();
            (o, r)
        })
        .filter(|(_, r)| r.batch <= 32)
        .collect();
    // Keep one row per batch (the synthetic rows repeat batches across profiles).
    let mut seen = std::collections::BTreeSet::new();
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(_, r)| seen.insert(r.batch))
        .collect();
    let mut s = synthetic(
        "t",
        1,
        &[one(
            1.0,
            1.0,
            100.0,
            Demand::Share(1.0),
            BatchDist::default(),
        )],
    );
    s.profiles = ProfileSet::from_rows(rows).unwrap();
    let e = plan(&s, SolverKind::Milp, &max_load())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "model m0: no latency profile with 1 process on any MIG profile the planner may use \
         (1g.10gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb) (it is measured on 1g.20gb; enable all profiles to use non-classic ones)"
    );
}

#[test]
fn unknown_homogeneous_profile() {
    let s = synthetic(
        "t",
        1,
        &[one(
            1.0,
            1.0,
            100.0,
            Demand::Share(1.0),
            BatchDist::default(),
        )],
    );
    let e = plan(&s, SolverKind::Homogeneous("5g".into()), &max_load())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "homogeneous: `5g` is not a classic profile of A100-80GB (choose one of 1g.10gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb)"
    );
}

#[test]
fn server_that_carries_nothing_is_infeasible_naming_model_and_batch() {
    // Batch 32 of m0 and of m1 runs within 0.5 × SLA only on 7g.80gb; one GPU holds one.
    let big = |sla| {
        one(
            1.0,
            20.0,
            sla,
            Demand::Share(0.5),
            BatchDist::Table {
                sizes: vec![1, 32],
                probs: vec![0.5, 0.5],
            },
        )
    };
    let s = synthetic("t", 1, &[big(16.0), big(16.0)]);
    let e = plan(&s, SolverKind::Milp, &max_load()).unwrap_err();
    assert!(matches!(e, migopt_models::Error::Infeasible(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "no plan serves every model on 1 A100-80GB: model m1, batch 32 runs within its latency bound only on \
         7g.80gb and the GPUs cannot hold such an instance beside one instance for every batch of m0 (add GPUs, \
         relax the SLA, or drop a model)"
    );
    // Two GPUs carry both.
    let s = synthetic("t", 2, &[big(16.0), big(16.0)]);
    assert!(
        plan(&s, SolverKind::Milp, &max_load())
            .unwrap()
            .report
            .objective
            > 0.0
    );
}

#[test]
fn absurd_rates_are_errors_not_panics() {
    for rate in [1e300, 1e12, f64::INFINITY] {
        let s = synthetic(
            "t",
            1,
            &[one(
                1.0,
                8.0,
                40.0,
                Demand::Rate(rate),
                BatchDist::default(),
            )],
        );
        let e = plan(&s, SolverKind::Milp, &min_gpus())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("instances") || e.contains("finite") || e.contains("GPUs"),
            "{rate}: {e}"
        );
    }
}

#[test]
fn max_procs_caps_mps_processes() {
    let s = synthetic(
        "t",
        8,
        &[one(
            1.0,
            8.0,
            40.0,
            Demand::Rate(20_000.0),
            BatchDist::default(),
        )],
    );
    let free = plan(&s, SolverKind::Milp, &min_gpus()).unwrap();
    assert!(free.instances().any(|(_, a)| a.procs > 1));
    let mut o = min_gpus();
    o.params.max_procs = Some(1);
    let one_proc = plan(&s, SolverKind::Milp, &o).unwrap();
    assert!(one_proc.instances().all(|(_, a)| a.procs == 1));
    assert_eq!(one_proc.params.max_procs, Some(1));
    assert!(one_proc.gpus_used() >= free.gpus_used());
    // The scenario's own cap applies too.
    let mut capped = s.clone();
    capped.max_procs = Some(2);
    let two = plan(&capped, SolverKind::Milp, &min_gpus()).unwrap();
    assert!(two.instances().all(|(_, a)| a.procs <= 2));
}

#[test]
fn sla_min_gpus_names_a_rate_beyond_its_largest_pools() {
    // 4096 instances of 7g carry far less than 1e9 requests/s, and no smaller size more:
    // the SLA-aware planner says so (before: "no instance size serves its rate").
    let s = synthetic(
        "t",
        1,
        &[one(1.0, 8.0, 40.0, Demand::Rate(1e9), BatchDist::default())],
    );
    let e = plan(&s, SolverKind::Sla, &min_gpus())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("model m0: field model.rate_qps: 1000000000.0 queries/s is more than 4096 instances of any one size carry with p99 latency within the 40 ms SLO (the most: "),
        "{e}"
    );
    assert!(e.contains("on 7g.80gb), the largest pool the SLA-aware planner weighs; plan it with --solver milp"), "{e}");
}
