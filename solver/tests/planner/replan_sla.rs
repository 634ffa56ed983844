//! The SLA-aware re-plan target (`replan --solver sla`): unchanged load re-cuts nothing, the
//! target needs exactly the SLA-aware from-scratch optimum, every transition step is a valid
//! MIG state that keeps each model's required capacity, and from an empty plan the re-plan
//! is the from-scratch plan.

use crate::data::{dataset_dir, parvagpu_scenarios, scaled};
use migopt_models::{Assignment, LayoutRules, Objective, Plan, Scenario, SolveStatus};
use migopt_solver::replan::{replan_with, Fate, Replan, ReplanOptions};
use migopt_solver::{plan, PlanOptions, SolverKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn opts() -> PlanOptions {
    PlanOptions {
        objective: Objective::MinGpus,
        ..Default::default()
    }
}

/// Re-plan options from `old` to `new`: each model keeps min(old, new) of its rate, with
/// `spares` spare GPUs and no slack.
fn sla_ropts(old: &Scenario, new: &Scenario, spares: u32) -> ReplanOptions {
    let (o, n) = (old.rates().unwrap(), new.rates().unwrap());
    ReplanOptions {
        plan: opts(),
        spare_gpus: spares,
        gpu_slack: 0,
        required: Some(o.iter().zip(&n).map(|(a, b)| a.min(*b)).collect()),
        load_slack: 0.0,
    }
}

fn sla_replan(current: &Plan, old: &Scenario, new: &Scenario, spares: u32) -> Replan {
    replan_with(current, new, SolverKind::Sla, &sla_ropts(old, new, spares)).unwrap()
}

fn key(l: &[Assignment]) -> Vec<(String, u32, String)> {
    let mut v: Vec<_> = l
        .iter()
        .map(|a| (a.profile.to_string(), a.start, a.model.to_string()))
        .collect();
    v.sort();
    v
}

/// Replays the transition on the current plan's GPUs: every GPU's state validates at every
/// step, the GPUs a step re-cuts are the ones it names, each step keeps every model's
/// required capacity (as the pool model measures it), and the end state is the target.
pub(crate) fn replay(current: &Plan, r: &Replan) {
    let mut state: BTreeMap<u32, Vec<Assignment>> = current
        .gpus
        .iter()
        .map(|g| (g.index, g.layout.clone()))
        .collect();
    let valid = |idx: u32, layout: &[Assignment]| {
        let mut p = r.target.clone();
        p.gpus = vec![migopt_models::GpuPlan {
            index: idx,
            layout: layout.to_vec(),
        }];
        p.validate(LayoutRules::default()).unwrap();
    };
    let t = &r.transition;
    for (i, step) in t.steps.iter().enumerate() {
        for (m, (&have, &need)) in step.capacity_during.iter().zip(&t.required).enumerate() {
            assert!(
                have >= need * (1.0 - 1e-9) - 1e-9,
                "step {}: {} keeps {have} < {need}",
                i + 1,
                t.models[m]
            );
        }
        for g in &step.gpus {
            valid(g.gpu, &g.layout);
            state.insert(g.gpu, g.layout.clone());
        }
        for (idx, l) in &state {
            valid(*idx, l);
        }
    }
    for g in &r.target.gpus {
        let got = state.get(&g.index).cloned().unwrap_or_default();
        assert_eq!(key(&got), key(&g.layout), "GPU {} ends elsewhere", g.index);
    }
}

fn provisions(r: &Replan, s: &Scenario) {
    for (m, rate) in r.target.model_rates.iter().zip(s.rates().unwrap()) {
        assert!(m.rate_qps >= rate * (1.0 - 1e-9), "{} short", m.model);
    }
}

#[test]
fn sla_unchanged_load_recuts_nothing() {
    let s = &parvagpu_scenarios(&dataset_dir())[3];
    let current = plan(s, SolverKind::Sla, &opts()).unwrap();
    let r = sla_replan(&current, s, s, 0);
    assert_eq!(r.status, SolveStatus::Optimal);
    assert_eq!(r.gpus_changed, 0);
    assert_eq!(r.instances_started, 0);
    assert!(r.transition.steps.is_empty());
    assert!(r.gpus.iter().all(|g| g.fate == Fate::Kept));
    assert_eq!(r.gpus_used as usize, current.gpus_used());
    assert_eq!(r.target.solver, "sla-replan");
    provisions(&r, s);
}

#[test]
fn sla_target_needs_the_from_scratch_optimum_and_transitions_safely() {
    let s = &parvagpu_scenarios(&dataset_dir())[3];
    let current = plan(s, SolverKind::Sla, &opts()).unwrap();
    let new = scaled(s, &[0.6, 1.3, 0.9]);
    let scratch = plan(&new, SolverKind::Sla, &opts()).unwrap();
    let r = sla_replan(&current, s, &new, 2);
    assert_eq!(r.status, SolveStatus::Optimal);
    assert_eq!(r.gpus_used as usize, scratch.gpus_used());
    assert_eq!(r.tiers[0].objective as usize, scratch.gpus_used());
    assert!(r.gpus_changed > 0 && r.gpus_changed <= r.gpus_used);
    provisions(&r, &new);
    replay(&current, &r);
}

#[test]
fn sla_replan_of_an_empty_plan_is_a_from_scratch_plan() {
    let s = &parvagpu_scenarios(&dataset_dir())[2];
    let scratch = plan(s, SolverKind::Sla, &opts()).unwrap();
    let mut empty = scratch.clone();
    empty.gpus.clear();
    let r = sla_replan(&empty, s, s, 0);
    assert_eq!(r.status, SolveStatus::Optimal);
    let g = scratch.gpus_used() as u32;
    assert_eq!((r.gpus_used, r.gpus_changed), (g, g));
    assert!(r.gpus.iter().all(|c| c.fate == Fate::Added));
    // Fewest instances among the plans with the fewest GPUs: never more than the
    // from-scratch plan starts.
    assert!(r.instances_started as usize <= scratch.instances().count());
    provisions(&r, s);
    replay(&empty, &r);
}

proptest! {
    #![proptest_config(crate::proptest_config(6))]
    #[test]
    fn sla_transition_steps_are_valid_and_keep_capacity(
        f in proptest::collection::vec(0.4f64..1.6, 3),
        which in 1usize..4,
    ) {
        let s = &parvagpu_scenarios(&dataset_dir())[which];
        let current = plan(s, SolverKind::Sla, &opts()).unwrap();
        let new = scaled(s, &f);
        let scratch = plan(&new, SolverKind::Sla, &opts()).unwrap();
        let r = sla_replan(&current, s, &new, 64);
        prop_assert_eq!(r.gpus_used as usize, scratch.gpus_used());
        provisions(&r, &new);
        replay(&current, &r);
    }
}

/// A soak over random SLA-aware re-plans (`replan --solver sla`) of the ParvaGPU scenarios
/// at random scales, load changes and spare GPUs: the target provisions the new rates with
/// the SLA-aware from-scratch optimum's GPUs, its fates match its counts, every transition
/// replays ([`replay`]), a re-plan without enough spares may only fail by saying so, and the
/// same load re-cuts nothing. CI runs 4 cases; `SOAK_CASES`/`SOAK_SEED` run more
/// (BENCHMARKS.md, "Re-plan soak").
#[test]
fn soak_random_sla_replans() {
    let (seed, cases) = crate::replan::soak_env();
    let mut next = crate::replan::soak_rng(seed, 0xA076_1D64_78BD_642F);
    let all = parvagpu_scenarios(&dataset_dir());
    for case in 0..cases {
        let which = (next() * all.len() as f64) as usize % all.len();
        let scale = [0.5, 1.0, 2.0][(next() * 3.0) as usize % 3];
        let old = scaled(&all[which], &[scale]);
        let f: Vec<f64> = (0..old.models.len()).map(|_| 0.3 + 1.4 * next()).collect();
        let new = scaled(&old, &f);
        let spares = [0u32, 1, 2, 64][(next() * 4.0) as usize % 4];
        let tag =
            format!("seed {seed} case {case}: scenario {which} x{scale} f {f:?} spares {spares}");
        let current = plan(&old, SolverKind::Sla, &opts()).unwrap_or_else(|e| panic!("{tag}: {e}"));
        let ro = sla_ropts(&old, &new, spares);
        match replan_with(&current, &new, SolverKind::Sla, &ro) {
            Ok(r) => {
                let scratch = plan(&new, SolverKind::Sla, &opts()).unwrap();
                if r.status == SolveStatus::Optimal && scratch.report.status == SolveStatus::Optimal
                {
                    assert_eq!(r.gpus_used as usize, scratch.gpus_used(), "{tag}");
                }
                let changed = r
                    .gpus
                    .iter()
                    .filter(|g| matches!(g.fate, Fate::ReCut | Fate::Added));
                assert_eq!(changed.count() as u32, r.gpus_changed, "{tag}");
                provisions(&r, &new);
                replay(&current, &r);
            }
            Err(migopt_models::Error::Infeasible(m)) if spares < 64 => eprintln!("{tag}: {m}"),
            Err(e) => panic!("{tag}: {e}"),
        }
        if case % 4 == 0 {
            let r = sla_replan(&current, &old, &old, 0);
            assert_eq!(r.gpus_changed, 0, "{tag}: the same load re-cut");
        }
    }
}
