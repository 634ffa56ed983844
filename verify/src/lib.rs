//! # migopt-verify
//!
//! Simulation in the loop. The SLA-aware planner ([`SolverKind::Sla`]) plans against a
//! queueing model; this crate checks the plan with the simulator, under the scheduler the
//! user names, with replications and 95% intervals. When a model misses its target, its
//! pools' admissible rates are cut (`SlaOptions::cuts`) and the planner solves again, until
//! the plan is verified or no plan exists; for min-gpus the model's SLO is also shortened
//! by its simulated overshoot. The loop lives here because the solver does not
//! depend on the simulator: `solver` and `sim` both depend only on `models`, and this crate
//! on both.
//!
//! * Max-load: the plan promises its objective λ (queries/s at the scenario's shares); it is
//!   verified when every model's simulated p-quantile latency at λ is within its SLA.
//! * Min-gpus: verified when every model meets its SLO at the scenario's rates.
//!
//! Reports set the queueing model's predicted capacity beside the simulated one (capacity
//! search, [`migopt_sim::capacity`]).

#![warn(missing_docs)]

use migopt_models::{Error, Estimate, Objective, Plan, Scenario};
use migopt_sim::{Arrivals, CapacityTarget, SchedulerKind, SimConfig, SimReport};
use migopt_solver::replan::{Replan, ReplanOptions};
use migopt_solver::{PlanOptions, SolverKind};
use serde::Serialize;

/// How plans are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// The scheduler the plan is simulated under.
    pub scheduler: SchedulerKind,
    /// Independent replications (95% intervals need at least 2).
    pub replications: u32,
    /// Queries per replication.
    pub queries: u64,
    /// Master seed.
    pub seed: u64,
    /// Simulation threads (`None`: every core; results do not depend on it).
    pub threads: Option<usize>,
    /// Plan-check-cut rounds before giving up.
    pub max_rounds: u32,
    /// A missing model's cut is multiplied by this each round.
    pub cut_step: f64,
    /// Also search the simulated capacity (max-load always reports it when true).
    pub capacity: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            scheduler: SchedulerKind::Elsa,
            replications: 5,
            queries: 100_000,
            seed: 1,
            threads: None,
            max_rounds: 8,
            cut_step: 0.95,
            capacity: true,
        }
    }
}

/// One model's simulated latency against its SLA.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelCheck {
    /// Model name.
    pub model: String,
    /// Its SLA (SLO), ms.
    pub sla_ms: f64,
    /// Offered rate, queries/s.
    pub rate_qps: f64,
    /// Simulated latency at the target percentile, ms (`None`: nothing completed).
    pub quantile_ms: Option<Estimate>,
    /// Which percentile (99 for p99).
    pub percentile: f64,
    /// Whether the mean over replications is within the SLA.
    pub met: bool,
}

/// One round of the loop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    /// The plan's objective this round (λ or GPUs).
    pub objective: f64,
    /// Models that missed their target.
    pub missed: Vec<String>,
    /// The cuts the round was planned with (scenario order).
    pub cuts: Vec<f64>,
    /// The latency cuts (ms off each model's SLO, min-gpus) the round was planned with.
    pub slo_cuts_ms: Vec<f64>,
}

impl Round {
    /// The round of a plan and its models' checks, planned with `cuts`.
    fn new(plan: &Plan, models: &[ModelCheck], cuts: Vec<f64>, slo_cuts_ms: Vec<f64>) -> Self {
        Self {
            objective: plan.report.objective,
            missed: models
                .iter()
                .filter(|m| !m.met)
                .map(|m| m.model.clone())
                .collect(),
            cuts,
            slo_cuts_ms,
        }
    }
}

/// A plan with its check.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The plan (today's fields).
    #[serde(flatten)]
    pub plan: Plan,
    /// The queueing model's capacity for the plan, queries/s (max-load: total at the
    /// scenario's shares; min-gpus: total at the scenario's rate proportions).
    pub predicted_capacity_qps: Option<f64>,
    /// Simulated capacity at the target percentile, with its 95% interval.
    pub simulated_capacity_qps: Option<Estimate>,
    /// Every model met its target in simulation at the plan's promised load.
    pub verified: bool,
    /// Per model, the simulated percentile against the SLA.
    pub models: Vec<ModelCheck>,
    /// The scheduler it was simulated under.
    pub scheduler: String,
    /// The loop's rounds (one for a plan that passed at once).
    pub rounds: Vec<Round>,
}

/// The percentile a miss budget stands for (0.01 → 99).
fn percentile(budget: f64) -> f64 {
    100.0 * (1.0 - budget)
}

/// Arrivals at a plan's promised load.
fn promised(plan: &Plan, scenario: &Scenario) -> Result<Arrivals, Error> {
    match plan.objective_kind {
        Objective::MaxLoad => Ok(Arrivals::Poisson {
            total_rate_qps: plan.report.objective.max(1e-9),
        }),
        Objective::MinGpus => Arrivals::from_scenario(scenario).ok_or_else(|| {
            Error::Invalid(format!(
                "scenario {}: min-gpus checks need a rate for every model",
                scenario.name
            ))
        }),
    }
}

fn config(check: &CheckOptions, arrivals: Arrivals) -> SimConfig {
    let mut cfg = SimConfig::new(arrivals);
    cfg.scheduler = check.scheduler;
    cfg.replications = check.replications.max(1);
    cfg.queries = Some(check.queries.max(1));
    cfg.seed = check.seed;
    cfg.threads = check.threads;
    cfg
}

/// The latency at `pct` from a model's simulated latency summary (p99 / p95 / p90 / p99.9;
/// other percentiles use the next stricter one reported).
fn quantile(r: &migopt_models::ModelReport, pct: f64) -> Option<Estimate> {
    let l = r.latency_ms.as_ref()?;
    Some(if pct > 99.0 {
        l.p999
    } else if pct > 95.0 {
        l.p99
    } else if pct > 90.0 {
        l.p95
    } else if pct > 50.0 {
        l.p90
    } else {
        l.p50
    })
}

/// Simulates a plan at its promised load and checks every model against its SLA.
pub fn check_models(
    scenario: &Scenario,
    plan: &Plan,
    budget: f64,
    check: &CheckOptions,
) -> Result<(Vec<ModelCheck>, SimReport), Error> {
    let cfg = config(check, promised(plan, scenario)?);
    let rep = migopt_sim::simulate(plan, scenario, &cfg)?;
    let pct = percentile(budget);
    let models = rep
        .models
        .iter()
        .map(|r| {
            let q = quantile(r, pct);
            ModelCheck {
                model: r.model.to_string(),
                sla_ms: r.sla_ms,
                rate_qps: r.offered_rate_qps.unwrap_or(0.0),
                quantile_ms: q,
                percentile: pct,
                met: q.is_some_and(|q| q.mean <= r.sla_ms) || r.queries == 0,
            }
        })
        .collect();
    Ok((models, rep))
}

/// The simulated capacity of a plan at the target (largest total rate with every model
/// within its SLA at the percentile), with its 95% interval.
pub fn simulated_capacity(
    scenario: &Scenario,
    plan: &Plan,
    budget: f64,
    check: &CheckOptions,
) -> Result<Estimate, Error> {
    let cfg = config(check, promised(plan, scenario)?);
    let target = if (budget - 0.01).abs() < 1e-12 {
        CapacityTarget::P99
    } else {
        CapacityTarget::Violations { budget }
    };
    Ok(migopt_sim::capacity(plan, scenario, &cfg, target)?.capacity_qps)
}

/// The queueing model's capacity of any plan (total queries/s; see `predict_capacity`).
/// For min-gpus plans: the planned per-model capacities, at the scenario's proportions (what
/// `migopt capacity` reports as the plan's promise: [`migopt_sim::promised_capacity`]).
pub fn predicted_capacity(scenario: &Scenario, plan: &Plan, opts: &PlanOptions) -> Option<f64> {
    match plan.objective_kind {
        Objective::MaxLoad => migopt_solver::predict_capacity(scenario, plan, opts)
            .ok()
            .map(|p| p.capacity_qps),
        Objective::MinGpus => {
            let rates = scenario.rates()?;
            let total: f64 = rates.iter().sum();
            let shares: Vec<f64> = rates.iter().map(|r| r / total).collect();
            migopt_sim::promised_capacity(plan, scenario, &shares)
        }
    }
}

/// Plans with the SLA-aware planner and checks the plan by simulation, cutting the models
/// that miss and solving again until the plan is verified or the rounds run out (then the
/// last plan is returned with `verified: false`). Errors when no plan exists at all.
pub fn plan_checked(
    scenario: &Scenario,
    opts: &PlanOptions,
    check: &CheckOptions,
) -> Result<Checked, Error> {
    let mut opts = opts.clone();
    opts.sla.cuts.resize(scenario.models.len(), 1.0);
    let budget = opts.sla.budget;
    let mut rounds = Vec::new();
    loop {
        let plan = migopt_solver::plan(scenario, SolverKind::Sla, &opts)?;
        let (models, _) = check_models(scenario, &plan, budget, check)?;
        rounds.push(Round::new(
            &plan,
            &models,
            opts.sla.cuts.clone(),
            opts.sla.slo_cuts_ms.clone(),
        ));
        let verified = models.iter().all(|m| m.met);
        if verified || rounds.len() as u32 >= check.max_rounds.max(1) {
            return finish(scenario, plan, &opts, check, models, rounds);
        }
        cut(&mut opts.sla, &plan, &models, check.cut_step);
    }
}

/// The cuts for the models that missed: their pools' admissible rates shrink by `step`
/// (the load they may carry), and for min-gpus their SLO by the simulated overshoot (the
/// latency the model did not see: a miss that comes from batch formation or service rather
/// than from load, which a rate cut may not reach). Both only tighten the queueing model.
fn cut(sla: &mut migopt_solver::SlaOptions, plan: &Plan, models: &[ModelCheck], step: f64) {
    sla.slo_cuts_ms.resize(models.len(), 0.0);
    for (m, check) in models.iter().enumerate() {
        if check.met {
            continue;
        }
        sla.cuts[m] *= step;
        let over = check.quantile_ms.map_or(0.0, |q| q.mean - check.sla_ms);
        if plan.objective_kind == Objective::MinGpus && over > 0.0 {
            sla.slo_cuts_ms[m] += over;
        }
    }
}

/// Checks a plan from any planner (no loop): the same report as [`plan_checked`].
pub fn check_plan(
    scenario: &Scenario,
    plan: Plan,
    opts: &PlanOptions,
    check: &CheckOptions,
) -> Result<Checked, Error> {
    let (models, _) = check_models(scenario, &plan, opts.sla.budget, check)?;
    let rounds = vec![Round::new(&plan, &models, Vec::new(), Vec::new())];
    finish(scenario, plan, opts, check, models, rounds)
}

/// The check's report: verified when every model met its target in the last round.
fn finish(
    scenario: &Scenario,
    plan: Plan,
    opts: &PlanOptions,
    check: &CheckOptions,
    models: Vec<ModelCheck>,
    rounds: Vec<Round>,
) -> Result<Checked, Error> {
    let verified = models.iter().all(|m| m.met);
    let predicted_capacity_qps = predicted_capacity(scenario, &plan, opts);
    let simulated_capacity_qps = if check.capacity {
        Some(simulated_capacity(scenario, &plan, opts.sla.budget, check)?)
    } else {
        None
    };
    Ok(Checked {
        plan,
        predicted_capacity_qps,
        simulated_capacity_qps,
        verified,
        models,
        scheduler: check.scheduler.as_str().to_string(),
        rounds,
    })
}

/// A re-plan with the check of its target by simulation.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedReplan {
    /// The re-plan (today's fields).
    #[serde(flatten)]
    pub replan: Replan,
    /// The target's check at its promised load (the new rates, or its λ at the new shares).
    pub check: TargetCheck,
}

/// How a re-plan's target did in simulation.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// Every model met its target in simulation at the promised load.
    pub verified: bool,
    /// Per model, the simulated percentile against the SLA.
    pub models: Vec<ModelCheck>,
    /// The scheduler it was simulated under.
    pub scheduler: String,
    /// The loop's rounds (one for a target that passed at once, or any `milp` target).
    pub rounds: Vec<Round>,
}

/// Re-plans `current` for `scenario` and checks the target by simulation at its promised
/// load: the new rates (min-gpus), or its λ at the new shares (max-load). With
/// [`SolverKind::Sla`] this is [`plan_checked`]'s loop around the re-planner: the models that
/// miss are cut (admissible rate, and for min-gpus the SLO) and the re-plan runs again, until
/// the target is verified or the rounds run out (then the last target is returned with
/// `verified: false`); under max-load a cut lowers the λ* of tier 1 and so the λ the target
/// promises, as in `plan --objective sla-capacity`. Any other target is checked once.
pub fn replan_checked(
    current: &Plan,
    scenario: &Scenario,
    solver: SolverKind,
    opts: &ReplanOptions,
    check: &CheckOptions,
) -> Result<CheckedReplan, Error> {
    let mut opts = opts.clone();
    opts.plan.sla.cuts.resize(scenario.models.len(), 1.0);
    let budget = opts.plan.sla.budget;
    let mut rounds = Vec::new();
    loop {
        let r = migopt_solver::replan::replan_with(current, scenario, solver.clone(), &opts)?;
        let (models, _) = check_models(scenario, &r.target, budget, check)?;
        let cuts = match solver {
            SolverKind::Sla => opts.plan.sla.cuts.clone(),
            _ => Vec::new(),
        };
        let slo_cuts = opts.plan.sla.slo_cuts_ms.clone();
        rounds.push(Round::new(&r.target, &models, cuts, slo_cuts));
        let verified = models.iter().all(|m| m.met);
        let last = rounds.len() as u32 >= check.max_rounds.max(1);
        if verified || last || solver != SolverKind::Sla {
            return Ok(CheckedReplan {
                replan: r,
                check: TargetCheck {
                    verified,
                    models,
                    scheduler: check.scheduler.as_str().to_string(),
                    rounds,
                },
            });
        }
        cut(&mut opts.plan.sla, &r.target, &models, check.cut_step);
    }
}
