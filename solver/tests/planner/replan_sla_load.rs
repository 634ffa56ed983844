//! The SLA-aware max-load re-plan (`replan --solver sla --objective max-load`): tier 1 is
//! `plan --objective sla-capacity` on the current plan's GPUs, an unchanged mix re-cuts
//! nothing, from an empty plan the re-plan carries the from-scratch λ, a load slack only
//! re-cuts fewer GPUs, and every transition step is a valid MIG state that keeps each
//! model's required capacity.

use crate::data::{dataset_dir, parvagpu_scenarios, scaled};
use migopt_models::{BatchDist, BatchLookup, Objective, Plan, Scenario, SolveStatus};
use migopt_solver::replan::{replan_with, Fate, Replan, ReplanOptions};
use migopt_solver::{plan, PlanOptions, SolverKind};
use proptest::prelude::*;

fn opts() -> PlanOptions {
    PlanOptions {
        objective: Objective::MaxLoad,
        ..Default::default()
    }
}

/// ParvaGPU's scenario `which`, its first `models` models on `gpus` A100s, with query
/// batches of 1 to 8, latencies interpolated between measured batches (so that pools serve intervals of batches, not single classes); the
/// rates set the traffic shares.
fn scenario(which: usize, models: usize, gpus: u32) -> Scenario {
    let mut s = parvagpu_scenarios(&dataset_dir())[which].clone();
    s.models.truncate(models);
    s.gpu_count = gpus;
    s.batch_lookup = BatchLookup::Interpolate;
    for m in &mut s.models {
        m.batch = BatchDist::Lognormal {
            median: 2.0,
            sigma: 0.8,
            max: 8,
        };
    }
    s
}

fn sla_load_replan(current: &Plan, new: &Scenario, spares: u32, slack: f64) -> Replan {
    let ro = ReplanOptions {
        plan: opts(),
        spare_gpus: spares,
        gpu_slack: 0,
        required: None,
        load_slack: slack,
    };
    replan_with(current, new, SolverKind::Sla, &ro).unwrap()
}

/// [`replay`] of the SLA-aware min-gpus tests, and: the required capacity is at most
/// min(old rate, new rate), and the target uses at most the server's GPUs (a swap may move a
/// layout to a spare).
fn replay(current: &Plan, r: &Replan) {
    crate::replan_sla::replay(current, r);
    let t = &r.transition;
    for (m, need) in t.required.iter().enumerate() {
        let old = current.model_rates[m].rate_qps;
        let new = r.target.model_rates[m].rate_qps;
        assert!(
            *need <= old.min(new) * (1.0 + 1e-9) + 1e-9,
            "{}",
            t.models[m]
        );
    }
    let n = current.gpus.iter().map(|g| g.index + 1).max().unwrap_or(0);
    assert!(r.gpus_used <= n);
}

/// The target is a max-load plan of the SLA-aware re-planner whose λ is at least `floor`.
fn carries(r: &Replan, floor: f64) {
    assert_eq!(r.target.objective_kind, Objective::MaxLoad);
    assert_eq!(r.target.solver, "sla-replan");
    let lambda = r.target.report.objective;
    assert!(lambda >= floor * (1.0 - 1e-9), "λ {lambda} < {floor}");
    assert_eq!(r.tiers[0].name, "load-max");
}

#[test]
fn sla_max_load_unchanged_mix_recuts_nothing() {
    let s = scenario(3, 4, 4);
    let current = plan(&s, SolverKind::Sla, &opts()).unwrap();
    let r = sla_load_replan(&current, &s, 0, 0.0);
    assert_eq!(r.status, SolveStatus::Optimal);
    assert_eq!(r.gpus_changed, 0);
    assert_eq!(r.instances_started, 0);
    assert!(r.transition.steps.is_empty());
    assert!(r.gpus.iter().all(|g| g.fate == Fate::Kept));
    assert_eq!(r.tiers[0].objective, current.report.objective);
    // The target's λ, measured on its instances by the pools' chains, is the plan's own: the
    // measure agrees with slaload's selection MILP on a plan it made.
    let lambda = current.report.objective;
    assert!((r.target.report.objective - lambda).abs() <= 1e-9 * lambda);
    carries(&r, lambda);
}

#[test]
fn sla_max_load_tier_one_is_the_from_scratch_plan_on_the_current_gpus() {
    let old = scenario(3, 4, 4);
    let current = plan(&old, SolverKind::Sla, &opts()).unwrap();
    let new = scaled(&old, &[2.0, 0.5, 1.0, 1.5]);
    let scratch = plan(&new, SolverKind::Sla, &opts()).unwrap();
    let r = sla_load_replan(&current, &new, 4, 0.0);
    assert_eq!(r.status, SolveStatus::Optimal);
    // Exactly `plan --objective sla-capacity` on the same 4 GPUs, and the target carries it.
    assert_eq!(r.tiers[0].objective, scratch.report.objective);
    carries(&r, scratch.report.objective);
    assert!(r.target.report.objective <= scratch.report.objective * (1.0 + 1e-9));
    assert!(r.gpus_changed > 0 && r.gpus_changed <= 4);
    replay(&current, &r);
    // A load slack only widens tier 2's feasible set, and tier 2b takes back what it can.
    let loose = sla_load_replan(&current, &new, 4, 0.2);
    assert!(loose.gpus_changed <= r.gpus_changed);
    let names: Vec<&str> = loose.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["load-max", "gpus-changed", "load", "instances-started"]
    );
    carries(&loose, 0.8 * scratch.report.objective);
    assert!(
        (loose.tiers[2].objective - loose.target.report.objective).abs()
            <= 1e-9 * loose.tiers[2].objective
    );
    replay(&current, &loose);
}

#[test]
fn sla_max_load_replan_of_an_empty_plan_is_a_from_scratch_plan() {
    let s = scenario(2, 3, 3);
    let scratch = plan(&s, SolverKind::Sla, &opts()).unwrap();
    let mut empty = scratch.clone();
    for g in &mut empty.gpus {
        g.layout.clear();
    }
    let r = sla_load_replan(&empty, &s, 0, 0.0);
    assert_eq!(r.status, SolveStatus::Optimal);
    assert_eq!(r.target.report.objective, scratch.report.objective);
    assert!(r.gpus.iter().all(|c| c.fate == Fate::Added));
    assert_eq!(r.gpus_changed, r.gpus_used);
    assert!(r.gpus_used as usize <= scratch.gpus_used());
    // Fewest instances among the targets with the fewest GPUs cut.
    assert!(r.instances_started as usize <= scratch.instances().count());
    replay(&empty, &r);
}

proptest! {
    // Each case plans twice (about a second each in a test build): a few cases only.
    #![proptest_config(crate::proptest_config(3))]
    #[test]
    fn sla_max_load_transition_steps_are_valid_and_keep_capacity(
        f in proptest::collection::vec(0.3f64..3.0, 3),
        which in 1usize..5,
    ) {
        let old = scenario(which, 3, 3);
        let current = plan(&old, SolverKind::Sla, &opts()).unwrap();
        let r = sla_load_replan(&current, &scaled(&old, &f), 3, 0.0);
        prop_assert_eq!(r.status, SolveStatus::Optimal);
        carries(&r, r.tiers[0].objective);
        replay(&current, &r);
    }
}
