//! Re-planning: a replan with unchanged load re-cuts nothing, the target is as small as
//! the from-scratch optimum, and every transition step is a valid MIG state that keeps
//! every model's required capacity (property tests over random load changes).

use crate::data::{dataset_dir, parvagpu_scenarios, scaled};
use migopt_models::{Demand, LayoutRules, Objective, Plan, Scenario, SolveStatus};
use migopt_solver::replan::{replan, replan_with, Fate, ReplanOptions};
use migopt_solver::{plan, PlanOptions, SolverKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn opts() -> PlanOptions {
    PlanOptions {
        objective: Objective::MinGpus,
        ..Default::default()
    }
}

fn ropts(old: &Scenario, new: &Scenario, spares: u32) -> ReplanOptions {
    let (o, n) = (old.rates().unwrap(), new.rates().unwrap());
    ReplanOptions {
        plan: opts(),
        spare_gpus: spares,
        gpu_slack: 0,
        required: Some(o.iter().zip(&n).map(|(a, b)| a.min(*b)).collect()),
        load_slack: 0.0,
    }
}

/// Walks the transition: every intermediate state validates and keeps every model's
/// required capacity (checked independently of the planner's own bookkeeping).
fn check_transition(
    current: &Plan,
    r: &migopt_solver::replan::Replan,
    required: &[f64],
    s: &Scenario,
) {
    let mut state: BTreeMap<u32, Plan> = BTreeMap::new();
    for g in &current.gpus {
        state.insert(g.index, one_gpu(&r.target, g.index, g.layout.clone()));
    }
    for (i, step) in r.transition.steps.iter().enumerate() {
        let down: Vec<u32> = step.gpus.iter().map(|g| g.gpu).collect();
        let mut during = vec![0.0; s.models.len()];
        for (idx, p) in &state {
            p.validate(LayoutRules::default()).unwrap();
            if !down.contains(idx) {
                for (d, c) in during.iter_mut().zip(capacity(p, s)) {
                    *d += c;
                }
            }
        }
        for (m, (&have, &need)) in during.iter().zip(required).enumerate() {
            assert!(
                have >= need * (1.0 - 1e-9) - 1e-9,
                "step {}: model {} has {have} < {need}",
                i + 1,
                s.models[m].name
            );
        }
        for g in &step.gpus {
            let p = one_gpu(&r.target, g.gpu, g.layout.clone());
            p.validate(LayoutRules::default()).unwrap();
            state.insert(g.gpu, p);
        }
    }
    check_end_state(&state, &r.target);
}

/// A copy of `target` with one GPU, `idx`, cut as `layout`.
fn one_gpu(target: &Plan, idx: u32, layout: Vec<migopt_models::Assignment>) -> Plan {
    let mut p = target.clone();
    p.gpus = vec![migopt_models::GpuPlan { index: idx, layout }];
    p
}

/// Each model's capacity on plan `p`: the sum over its instances of their size's best
/// operating point (what the planner counts).
fn capacity(p: &Plan, s: &Scenario) -> Vec<f64> {
    s.models
        .iter()
        .map(|m| {
            p.instances()
                .filter(|(_, a)| a.model == m.name)
                .map(|(_, a)| best_point_qps(s, m, a.profile.as_str()))
                .sum()
        })
        .collect()
}

/// The highest throughput of model `m` on `profile` at any process count, among points
/// whose latency is below 45% of its SLA.
fn best_point_qps(s: &Scenario, m: &migopt_models::ModelSpec, profile: &str) -> f64 {
    (1..=64)
        .filter_map(|procs| s.profiles.curve(m.name.as_str(), profile, procs))
        .flat_map(|c| {
            c.batches
                .iter()
                .zip(&c.latency_ms)
                .zip(&c.throughput_qps)
                .filter(|((_, &l), _)| l < 0.45 * m.sla.0)
                .map(|(_, &t)| t)
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

/// The end state of the transition is the target: every target GPU holds the same
/// instances (profile, start, model).
fn check_end_state(state: &BTreeMap<u32, Plan>, target: &Plan) {
    for g in &target.gpus {
        let got = state
            .get(&g.index)
            .map(|p| p.gpus[0].layout.clone())
            .unwrap_or_default();
        let key = |l: &[migopt_models::Assignment]| {
            let mut v: Vec<_> = l
                .iter()
                .map(|a| (a.profile.clone(), a.start, a.model.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            key(&got),
            key(&g.layout),
            "GPU {} ends in another state",
            g.index
        );
    }
}

#[test]
fn unchanged_load_recuts_nothing() {
    let s = &parvagpu_scenarios(&dataset_dir())[5];
    let current = plan(s, SolverKind::Milp, &opts()).unwrap();
    let r = replan(&current, s, &ropts(s, s, 0)).unwrap();
    assert_eq!(r.status, SolveStatus::Optimal);
    assert_eq!(r.gpus_changed, 0);
    assert_eq!(r.instances_started, 0);
    assert!(r.transition.steps.is_empty());
    assert!(r.gpus.iter().all(|g| g.fate == Fate::Kept));
    assert_eq!(r.gpus_used as usize, current.gpus_used());
}

#[test]
fn replan_is_as_small_as_from_scratch_and_safe() {
    let s = &parvagpu_scenarios(&dataset_dir())[5];
    let current = plan(s, SolverKind::Milp, &opts()).unwrap();
    let new = scaled(s, &[0.6, 1.2, 0.9]);
    let scratch = plan(&new, SolverKind::Milp, &opts()).unwrap();
    let ro = ropts(s, &new, 1);
    let r = replan(&current, &new, &ro).unwrap();
    assert_eq!(r.status, SolveStatus::Optimal);
    assert_eq!(r.gpus_used as usize, scratch.gpus_used());
    for (m, rate) in r.target.model_rates.iter().zip(new.rates().unwrap()) {
        assert!(
            m.rate_qps >= rate * (1.0 - 1e-9),
            "{} under-provisioned",
            m.model
        );
    }
    check_transition(&current, &r, ro.required.as_ref().unwrap(), &new);
}

proptest! {
    #![proptest_config(crate::proptest_config(12))]
    #[test]
    fn every_transition_step_is_valid_and_keeps_capacity(
        f in proptest::collection::vec(0.3f64..1.6, 3),
        which in 2usize..6,
    ) {
        let s = &parvagpu_scenarios(&dataset_dir())[which];
        let current = plan(s, SolverKind::Milp, &opts()).unwrap();
        let new = scaled(s, &f);
        // With a spare per changed GPU a safe transition always exists.
        let ro = ropts(s, &new, 64);
        let r = replan(&current, &new, &ro).unwrap();
        check_transition(&current, &r, ro.required.as_ref().unwrap(), &new);
        let changed = r.gpus.iter().filter(|g| matches!(g.fate, Fate::ReCut | Fate::Added)).count();
        prop_assert_eq!(changed as u32, r.gpus_changed);
    }
}

#[test]
fn gpu_slack_never_recuts_more_and_stays_within_one_gpu() {
    let s = &parvagpu_scenarios(&dataset_dir())[5];
    let current = plan(s, SolverKind::Milp, &opts()).unwrap();
    let new = scaled(s, &[0.7, 1.3, 0.9, 1.1]);
    let scratch = plan(&new, SolverKind::Milp, &opts()).unwrap();
    let strict = ropts(s, &new, 64);
    let loose = ReplanOptions {
        gpu_slack: 1,
        ..strict.clone()
    };
    let (a, b) = (
        replan(&current, &new, &strict).unwrap(),
        replan(&current, &new, &loose).unwrap(),
    );
    assert_eq!(b.status, SolveStatus::Optimal);
    // Slack only widens the feasible set of the gpus-changed tier.
    assert!(
        b.gpus_changed <= a.gpus_changed,
        "{} > {}",
        b.gpus_changed,
        a.gpus_changed
    );
    assert!(b.gpus_used as usize <= scratch.gpus_used() + 1);
    assert!(b.tiers.iter().any(|t| t.name == "gpus-used"));
    // The headroom tie-break comes last and never undoes a tier before it.
    let h = b.tiers.last().unwrap();
    assert_eq!(h.name, "headroom");
    assert!(h.objective >= -1e-9 && h.objective <= 0.25 * new.models.len() as f64 + 1e-9);
    for (m, rate) in b.target.model_rates.iter().zip(new.rates().unwrap()) {
        assert!(
            m.rate_qps >= rate * (1.0 - 1e-9),
            "{} under-provisioned",
            m.model
        );
    }
    check_transition(&current, &b, loose.required.as_ref().unwrap(), &new);
}

// ---- max-load re-planning ----

fn load_opts() -> PlanOptions {
    PlanOptions {
        objective: Objective::MaxLoad,
        ..Default::default()
    }
}

fn lopts(spares: u32, slack: f64) -> ReplanOptions {
    ReplanOptions {
        plan: load_opts(),
        spare_gpus: spares,
        gpu_slack: 0,
        required: None,
        load_slack: slack,
    }
}

/// The default scenario (8 H100s, two models) with these traffic shares.
fn mix(shares: &[f64]) -> Scenario {
    let mut s = migopt_profiles::default_scenario().unwrap();
    for (m, &w) in s.models.iter_mut().zip(shares) {
        m.demand = Demand::Share(w);
    }
    s
}

/// Each model's max-load capacity on these GPUs, computed independently of the
/// re-planner: the model alone (share 1) scored by the shared fluid LP on its instances.
fn model_caps(s: &Scenario, gpus: &[migopt_models::GpuPlan]) -> Vec<f64> {
    s.models
        .iter()
        .map(|m| {
            let mut one = s.clone();
            let mut spec = m.clone();
            spec.demand = Demand::Share(1.0);
            one.models = vec![spec];
            let mine: Vec<migopt_models::GpuPlan> = gpus
                .iter()
                .map(|g| migopt_models::GpuPlan {
                    index: g.index,
                    layout: g
                        .layout
                        .iter()
                        .filter(|a| a.model == m.name)
                        .cloned()
                        .collect(),
                })
                .collect();
            migopt_solver::evaluate_fixed_instances(&one, &mine, &load_opts())
                .unwrap()
                .lambda
        })
        .collect()
}

/// Walks a max-load transition: every state validates, every model keeps its required
/// capacity on the GPUs that stay up (independent fluid LPs), the end state is the target.
fn check_load_transition(current: &Plan, r: &migopt_solver::replan::Replan, s: &Scenario) {
    let mut state: BTreeMap<u32, Vec<migopt_models::Assignment>> = current
        .gpus
        .iter()
        .map(|g| (g.index, g.layout.clone()))
        .collect();
    let as_plan = |st: &BTreeMap<u32, Vec<migopt_models::Assignment>>, down: &[u32]| {
        st.iter()
            .filter(|(i, _)| !down.contains(i))
            .map(|(&index, l)| migopt_models::GpuPlan {
                index,
                layout: l.clone(),
            })
            .collect::<Vec<_>>()
    };
    let required = &r.transition.required;
    for (i, step) in r.transition.steps.iter().enumerate() {
        let down: Vec<u32> = step.gpus.iter().map(|g| g.gpu).collect();
        let caps = model_caps(s, &as_plan(&state, &down));
        for (m, (&have, &need)) in caps.iter().zip(required).enumerate() {
            assert!(
                have >= need * (1.0 - 1e-6) - 1e-6,
                "step {}: model {} has {have} < {need}",
                i + 1,
                s.models[m].name
            );
        }
        for g in &step.gpus {
            state.insert(g.gpu, g.layout.clone());
        }
        let mut p = r.target.clone();
        p.gpus = as_plan(&state, &[]);
        p.validate(LayoutRules::default()).unwrap();
    }
    for g in &r.target.gpus {
        let got = state.get(&g.index).cloned().unwrap_or_default();
        assert_eq!(
            migopt_solver::replan::layout_key(&got),
            migopt_solver::replan::layout_key(&g.layout),
            "GPU {} ends in another state",
            g.index
        );
    }
    // Required capacity is min(old rate, new rate) per model.
    for (m, need) in required.iter().enumerate() {
        let old = current.model_rates[m].rate_qps;
        let new = r.target.model_rates[m].rate_qps;
        assert!(*need <= old.min(new) * (1.0 + 1e-9) + 1e-9);
    }
}

proptest! {
    #![proptest_config(crate::proptest_config(4))]
    #[test]
    fn max_load_replan_with_an_unchanged_mix_recuts_nothing(w in 0.1f64..0.9) {
        let s = mix(&[w, 1.0 - w]);
        let current = plan(&s, SolverKind::Milp, &load_opts()).unwrap();
        let r = replan(&current, &s, &lopts(0, 0.0)).unwrap();
        prop_assert_eq!(r.status, SolveStatus::Optimal);
        prop_assert_eq!(r.gpus_changed, 0);
        prop_assert_eq!(r.instances_started, 0);
        prop_assert!(r.transition.steps.is_empty());
        prop_assert!(r.gpus.iter().all(|g| g.fate == Fate::Kept));
        prop_assert!(r.target.report.objective >= current.report.objective * (1.0 - 1e-6));
    }

}

proptest! {
    #![proptest_config(crate::proptest_config(3))]
    #[test]
    fn max_load_replan_keeps_the_most_load_and_a_safe_transition(
        w0 in 0.1f64..0.9,
        w1 in 0.1f64..0.9,
    ) {
        let (old, new) = (mix(&[w0, 1.0 - w0]), mix(&[w1, 1.0 - w1]));
        let current = plan(&old, SolverKind::Milp, &load_opts()).unwrap();
        let scratch = plan(&new, SolverKind::Milp, &load_opts()).unwrap();
        let r = replan(&current, &new, &lopts(8, 0.0)).unwrap();
        prop_assert_eq!(r.status, SolveStatus::Optimal);
        prop_assert_eq!(r.target.objective_kind, Objective::MaxLoad);
        // The most load first: the target carries the from-scratch optimum.
        let lambda = r.target.report.objective;
        prop_assert!(lambda >= scratch.report.objective * (1.0 - 1e-6), "{lambda} < {}", scratch.report.objective);
        // Re-cutting every GPU is always possible, so never more are changed.
        prop_assert!(r.gpus_changed <= new.gpu_count);
        check_load_transition(&current, &r, &new);
        // A load slack only widens the gpus-changed tier's feasible set.
        let loose = replan(&current, &new, &lopts(8, 0.1)).unwrap();
        prop_assert!(loose.gpus_changed <= r.gpus_changed);
        prop_assert!(loose.target.report.objective >= scratch.report.objective * 0.9 * (1.0 - 1e-6));
        check_load_transition(&current, &loose, &new);
    }
}

/// Every model of the plan has an instance.
fn serves_every_model(p: &Plan, s: &Scenario) {
    for m in &s.models {
        let n = p
            .instances()
            .filter(|(_, a)| a.model.as_str() == m.name.as_str());
        assert!(n.count() > 0, "{} has no instance: {:?}", m.name, p.gpus);
    }
}

/// A share as small as the scenario allows (10⁻⁹ beside 1): its demand λ·s is under the
/// MILP's tolerances. Every max-load planner serves the model all the same (before, the
/// MILP gave it no instance, so no command read the plan back, and ParvaGPU's search
/// aborted on a 64 GiB allocation), and a re-plan to that mix keeps it served through a
/// safe transition (before: "no safe transition ... 0.0 requests/s, below the 0.0").
#[test]
fn max_load_serves_a_model_of_the_smallest_share() {
    let tiny = mix(&[1e-9, 1.0]);
    for solver in [SolverKind::Milp, SolverKind::Parvagpu, SolverKind::Paris] {
        let p = plan(&tiny, solver, &load_opts()).unwrap();
        serves_every_model(&p, &tiny);
    }
    let current = plan(&mix(&[0.5, 0.5]), SolverKind::Milp, &load_opts()).unwrap();
    let r = replan(&current, &tiny, &lopts(2, 0.0)).unwrap();
    serves_every_model(&r.target, &tiny);
    check_load_transition(&current, &r, &tiny);
    // The target re-planned for the same mix re-cuts nothing.
    let again = replan(&r.target, &tiny, &lopts(2, 0.0)).unwrap();
    assert_eq!(again.gpus_changed, 0);
}

/// A soak over random min-gpus re-plans of the ParvaGPU scenarios at random scales, load
/// changes, spare GPUs and GPU slacks: every transition is walked independently
/// ([`check_transition`], [`soak_checks`]), a re-plan without enough spares may only fail by
/// saying so, and the same load again re-cuts nothing. CI runs 4 cases; `SOAK_CASES=N
/// SOAK_SEED=S` runs more (BENCHMARKS.md, "Re-plan soak": 1,200 cases on the device).
#[test]
fn soak_random_replans() {
    let (seed, cases) = soak_env();
    let mut next = soak_rng(seed, 0x9E37_79B9_7F4A_7C15);
    let all = parvagpu_scenarios(&dataset_dir());
    let (mut ok, mut infeasible, mut limited) = (0, 0, 0);
    for case in 0..cases {
        let which = (next() * all.len() as f64) as usize % all.len();
        let scale = [0.5, 1.0, 2.0, 4.0][(next() * 4.0) as usize % 4];
        let old = scaled(&all[which], &[scale]);
        let f: Vec<f64> = (0..old.models.len()).map(|_| 0.2 + 1.6 * next()).collect();
        let new = scaled(&old, &f);
        let spares = [0u32, 1, 2, 64][(next() * 4.0) as usize % 4];
        let slack = [0u32, 0, 1, 2][(next() * 4.0) as usize % 4];
        let tag = format!("seed {seed} case {case}: scenario {which} x{scale} f {f:?} spares {spares} slack {slack}");
        let mut po = opts();
        po.time_limit = Some(60.0);
        let current =
            plan(&old, SolverKind::Milp, &po).unwrap_or_else(|e| panic!("{tag}: plan {e}"));
        let mut ro = ropts(&old, &new, spares);
        ro.gpu_slack = slack;
        ro.plan.time_limit = Some(60.0);
        match replan(&current, &new, &ro) {
            Ok(r) => {
                check_transition(&current, &r, ro.required.as_ref().unwrap(), &new);
                soak_checks(&current, &r, &new, &ro, &tag);
                if r.status == SolveStatus::Optimal {
                    ok += 1
                } else {
                    limited += 1
                }
            }
            Err(migopt_models::Error::Infeasible(m)) if spares < 64 => {
                infeasible += 1;
                eprintln!("{tag}: infeasible: {m}");
            }
            Err(e) => panic!("{tag}: {e}"),
        }
        // The same load again: nothing re-cut.
        if case % 5 == 0 {
            let same = ropts(&old, &old, 0);
            let r =
                replan(&current, &old, &same).unwrap_or_else(|e| panic!("{tag}: same load {e}"));
            assert_eq!(r.gpus_changed, 0, "{tag}: same load re-cut");
            assert!(r.transition.steps.is_empty(), "{tag}");
        }
    }
    eprintln!("soak seed {seed}: {ok} optimal, {limited} time-limited, {infeasible} infeasible (no spares enough)");
}

/// What the soak checks beside the walked transition: the target serves the new rates, is
/// no larger than the from-scratch optimum plus the slack, its counts match its fates, and
/// at no step are more GPUs occupied than max(before, after) plus the spares.
fn soak_checks(
    current: &Plan,
    r: &migopt_solver::replan::Replan,
    new: &Scenario,
    ro: &ReplanOptions,
    tag: &str,
) {
    r.target.validate(LayoutRules::default()).unwrap();
    let cap = capacity(&r.target, new);
    for ((m, c), rate) in new.models.iter().zip(&cap).zip(new.rates().unwrap()) {
        assert!(
            *c >= rate * (1.0 - 1e-9),
            "{tag}: {} has {c} < {rate}",
            m.name
        );
    }
    let scratch = plan(new, SolverKind::Milp, &ro.plan).unwrap();
    if r.status == SolveStatus::Optimal && scratch.report.status == SolveStatus::Optimal {
        assert!(
            r.gpus_used as usize <= scratch.gpus_used() + ro.gpu_slack as usize,
            "{tag}: {} > {} + slack",
            r.gpus_used,
            scratch.gpus_used()
        );
        if ro.gpu_slack == 0 {
            assert_eq!(r.gpus_used as usize, scratch.gpus_used(), "{tag}");
        }
    }
    let changed = r
        .gpus
        .iter()
        .filter(|g| matches!(g.fate, Fate::ReCut | Fate::Added))
        .count();
    assert_eq!(changed as u32, r.gpus_changed, "{tag}");
    let before = current.gpus.iter().filter(|g| !g.layout.is_empty()).count();
    let limit = before.max(r.gpus_used as usize) + ro.spare_gpus as usize;
    let mut state: BTreeMap<u32, bool> = current
        .gpus
        .iter()
        .map(|g| (g.index, !g.layout.is_empty()))
        .collect();
    for (i, step) in r.transition.steps.iter().enumerate() {
        for g in &step.gpus {
            state.insert(g.gpu, true);
        }
        let busy = state.values().filter(|b| **b).count();
        assert!(
            busy <= limit,
            "{tag}: step {} occupies {busy} GPUs > {limit}",
            i + 1
        );
        for g in &step.gpus {
            state.insert(g.gpu, !g.layout.is_empty());
        }
    }
}

/// The same soak for max-load re-plans: the ParvaGPU scenarios turned into traffic shares on
/// 2–12 GPUs, random old and new mixes, spare GPUs and load slacks; the target carries the
/// from-scratch optimum (less the slack). CI runs 4 cases; `SOAK_CASES`/`SOAK_SEED` as above.
#[test]
fn soak_random_max_load_replans() {
    let (seed, cases) = soak_env();
    let mut next = soak_rng(seed, 0xD1B5_4A32_D192_ED03);
    let all = parvagpu_scenarios(&dataset_dir());
    let shares = |s: &Scenario, next: &mut dyn FnMut() -> f64, gpus: u32| {
        let mut s = s.clone();
        s.gpu_count = gpus;
        for m in s.models.iter_mut() {
            m.demand = Demand::Share(0.05 + next());
        }
        s
    };
    let (mut ok, mut infeasible) = (0, 0);
    for case in 0..cases {
        let which = (next() * all.len() as f64) as usize % all.len();
        let gpus = 2 + (next() * 11.0) as u32;
        let old = shares(&all[which], &mut next, gpus);
        let new = shares(&all[which], &mut next, gpus);
        let spares = [0u32, 1, 8][(next() * 3.0) as usize % 3];
        let slack = [0.0, 0.0, 0.1][(next() * 3.0) as usize % 3];
        let tag = format!("seed {seed} case {case}: scenario {which} on {gpus} GPUs, spares {spares} slack {slack}");
        let mut po = load_opts();
        po.time_limit = Some(60.0);
        let current =
            plan(&old, SolverKind::Milp, &po).unwrap_or_else(|e| panic!("{tag}: plan {e}"));
        let mut ro = lopts(spares, slack);
        ro.plan.time_limit = Some(60.0);
        match replan(&current, &new, &ro) {
            Ok(r) => {
                check_load_transition(&current, &r, &new);
                let scratch = plan(&new, SolverKind::Milp, &po).unwrap();
                if r.status == SolveStatus::Optimal && scratch.report.status == SolveStatus::Optimal
                {
                    let (got, best) = (r.target.report.objective, scratch.report.objective);
                    assert!(
                        got >= best * (1.0 - slack) * (1.0 - 1e-6),
                        "{tag}: {got} < {best}"
                    );
                }
                ok += 1;
            }
            Err(migopt_models::Error::Infeasible(m)) if spares < 8 => {
                infeasible += 1;
                eprintln!("{tag}: infeasible: {m}");
            }
            Err(e) => panic!("{tag}: {e}"),
        }
    }
    eprintln!(
        "max-load soak seed {seed}: {ok} re-planned, {infeasible} infeasible (no spares enough)"
    );
}

/// The soak's random numbers in [0, 1): xorshift64 from `seed` scrambled by `salt`, so that
/// each soak draws its own stream.
pub(crate) fn soak_rng(seed: u64, salt: u64) -> impl FnMut() -> f64 {
    let mut st = seed.wrapping_mul(salt) | 1;
    move || {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        (st >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The soak's seed and case count: `SOAK_SEED` (default 1) and `SOAK_CASES` (default 4).
pub(crate) fn soak_env() -> (u64, u64) {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (env("SOAK_SEED", 1), env("SOAK_CASES", 4))
}

// ---- a profile that no longer measures a size the plan in service uses ----

/// The H100 fleet of the reconfiguration study (the four shipped models, rate targets at
/// the day's peak; `papers/src/reconfiguration.rs`), with the shipped profiles.
fn h100_fleet() -> Scenario {
    let toml = migopt_profiles::builtin::H100_FLEET;
    let dir = std::path::Path::new(migopt_profiles::builtin::EMBEDDED_DIR);
    Scenario::parse(toml, &dir.join("h100-fleet.toml"), &mut |p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (_, text) = migopt_profiles::builtin::H100_80GB
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap();
        Ok(text.to_string())
    })
    .unwrap()
}

/// `s` with no measurement of `model` on `profile` (its rows cut from the profile CSV).
fn unmeasured(s: &Scenario, model: &str, profile: &str) -> Scenario {
    let mut s = s.clone();
    s.profiles
        .curves
        .retain(|k, _| !(k.model.as_str() == model && k.profile.as_str() == profile));
    s
}

/// Every (model, profile) the plan runs, once.
fn pairs_in(p: &Plan) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .instances()
        .map(|(_, a)| (a.model.to_string(), a.profile.to_string()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A re-plan to a profile without (model, profile): no target instance runs the model on
/// that size (migopt has no measurement for it any more), and every GPU of the current plan
/// that ran one is re-cut or freed, none kept as it is.
fn recuts_unmeasured(current: &Plan, r: &migopt_solver::replan::Replan, pair: &(String, String)) {
    let on = |a: &migopt_models::Assignment| {
        (a.model.as_str(), a.profile.as_str()) == (&pair.0[..], &pair.1[..])
    };
    assert!(
        !r.target.instances().any(|(_, a)| on(a)),
        "{pair:?} kept in the target: {:?}",
        r.target.gpus
    );
    for g in current.gpus.iter().filter(|g| g.layout.iter().any(on)) {
        let c = r.gpus.iter().find(|c| c.gpu == g.index).unwrap();
        assert!(
            matches!(c.fate, Fate::ReCut | Fate::Freed),
            "{pair:?}: GPU {} is {:?}",
            g.index,
            c.fate
        );
    }
}

/// A size the new profile of a model no longer measures (its CSV rows for that size cut):
/// the GPUs that run the model there are re-cut, like those of a model the new scenario
/// drops, and every model still gets its rate. Before, such a GPU could be kept as it was
/// (here with a GPU of slack), its instance planned at a made-up operating point (batch 1)
/// that no profile measures, so the target failed to load in `simulate` and the next
/// `replan`.
#[test]
fn replan_recuts_the_gpus_of_a_size_the_new_profile_no_longer_measures() {
    let s = h100_fleet();
    let current = plan(&s, SolverKind::Milp, &opts()).unwrap();
    for pair in pairs_in(&current) {
        let new = unmeasured(&s, &pair.0, &pair.1);
        let mut ro = ropts(&s, &new, 64);
        ro.gpu_slack = 1;
        let r = replan(&current, &new, &ro).unwrap();
        recuts_unmeasured(&current, &r, &pair);
        for (m, rate) in r.target.model_rates.iter().zip(new.rates().unwrap()) {
            assert!(m.rate_qps >= rate * (1.0 - 1e-9), "{pair:?}: {m:?}");
        }
        r.target
            .check_against(std::path::Path::new("t.json"), &new)
            .unwrap();
        check_transition(&current, &r, &r.transition.required, &new);
    }
}

/// The same under max-load (with a load slack, which lets the re-plan keep more GPUs).
#[test]
fn max_load_replan_recuts_the_gpus_of_a_size_no_longer_measured() {
    let s = mix(&[0.5, 0.5]);
    let current = plan(&s, SolverKind::Milp, &load_opts()).unwrap();
    for pair in pairs_in(&current) {
        let new = unmeasured(&s, &pair.0, &pair.1);
        let r = replan(&current, &new, &lopts(8, 0.05)).unwrap();
        recuts_unmeasured(&current, &r, &pair);
        r.target
            .check_against(std::path::Path::new("t.json"), &new)
            .unwrap();
        check_load_transition(&current, &r, &new);
    }
}

/// The same with the SLA-aware re-planners (`--solver sla`), min-gpus and max-load.
#[test]
fn sla_replans_recut_the_gpus_of_a_size_no_longer_measured() {
    let s = h100_fleet();
    let current = plan(&s, SolverKind::Sla, &opts()).unwrap();
    for pair in pairs_in(&current) {
        let new = unmeasured(&s, &pair.0, &pair.1);
        let mut ro = ropts(&s, &new, 64);
        ro.gpu_slack = 1;
        let r = replan_with(&current, &new, SolverKind::Sla, &ro).unwrap();
        recuts_unmeasured(&current, &r, &pair);
        r.target
            .check_against(std::path::Path::new("t.json"), &new)
            .unwrap();
        crate::replan_sla::replay(&current, &r);
    }
    let s = mix(&[0.5, 0.5]);
    let current = plan(&s, SolverKind::Sla, &load_opts()).unwrap();
    for pair in pairs_in(&current) {
        let new = unmeasured(&s, &pair.0, &pair.1);
        let r = replan_with(&current, &new, SolverKind::Sla, &lopts(8, 0.05)).unwrap();
        recuts_unmeasured(&current, &r, &pair);
        r.target
            .check_against(std::path::Path::new("t.json"), &new)
            .unwrap();
        crate::replan_sla::replay(&current, &r);
    }
}
