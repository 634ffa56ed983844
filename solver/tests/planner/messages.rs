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
        "scenario shares: fewest-GPUs planning needs a request rate (rate_qps) for every model, but the scenario gives shares"
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
