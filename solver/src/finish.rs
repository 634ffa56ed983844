//! Plan finishing: what every planner's GPUs go through before they leave the solver.
//! Heuristics are scored here (max-load: the shared fluid LP; min-gpus: the GPUs they use),
//! max-load batches are filled in from the routes, min-gpus rates from the instances, and
//! every plan passes the catalogue's validator.

use crate::data::{LoadData, RateData, Sizes};
use crate::fluid::{self, FluidEvaluation};
use crate::milp::Outcome;
use crate::pack::PackedGpu;
use crate::planner::{Job, LoadPlan, RatePlan};
use crate::{paris, PlanOptions};
use migopt_models::{Error, GpuPlan, ModelRate, Objective, Plan, SolveReport, SolveStatus};
use std::time::Instant;

/// Drops empty GPUs and numbers the rest from 0.
pub(crate) fn renumber(gpus: Vec<GpuPlan>) -> Vec<GpuPlan> {
    gpus.into_iter()
        .filter(|g| !g.layout.is_empty())
        .enumerate()
        .map(|(i, mut g)| {
            g.index = i as u32;
            g
        })
        .collect()
}

/// Model names in scenario order, for turning packed model indices into assignments.
pub(crate) fn names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    names.cloned().collect()
}

/// (batch, procs) of model m on size k.
pub(crate) type PointFn<'a> = &'a dyn Fn(usize, usize) -> (u32, u32);

/// GPU plans and per-(model, size) counts from packed GPUs, padded with empty GPUs up to
/// `gpus`. `point` gives (batch, procs) per (model, size); max-load fills batches later.
pub(crate) fn unpack(
    sizes: &Sizes,
    packed: Vec<PackedGpu<usize>>,
    gpus: usize,
    names: &[String],
    point: Option<PointFn<'_>>,
) -> (Vec<GpuPlan>, Vec<Vec<u32>>) {
    let (mut plans, counts) = paris::to_plans(sizes, packed, gpus, names, names.len());
    if let Some(point) = point {
        for g in &mut plans {
            for a in &mut g.layout {
                if let (Some(m), Some(k)) = (
                    names.iter().position(|n| n.as_str() == a.model.as_str()),
                    sizes.index(a.profile.as_str()),
                ) {
                    (a.batch, a.procs) = point(m, k);
                }
            }
        }
    }
    (plans, counts)
}

/// The report of a heuristic: no bound, no gap.
pub(crate) fn heuristic_report(objective: f64, start: Instant, gpcs: Option<u32>) -> SolveReport {
    SolveReport {
        status: SolveStatus::Heuristic,
        objective,
        bound: None,
        gap: None,
        lp_bound: None,
        solve_seconds: start.elapsed().as_secs_f64(),
        gpcs_used: gpcs,
    }
}

/// The report of a lexicographic min-gpus MILP (objective `weight`·GPUs + GPCs): `used`
/// GPUs against the GPU bound HiGHS proved (`used` itself when optimal; at least `floor`,
/// a bound known from elsewhere, where one is given), and the gap between them.
pub(crate) fn min_gpus_report(
    out: &Outcome,
    weight: f64,
    used: f64,
    floor: Option<f64>,
) -> SolveReport {
    let mip_bound = ((out.bound + 1e-6) / weight).floor();
    let bound = if out.status == SolveStatus::Optimal {
        used
    } else {
        floor.map_or(mip_bound, |f| mip_bound.max(f)).min(used)
    };
    SolveReport {
        status: out.status,
        objective: used,
        bound: Some(bound),
        gap: Some(if used > 0.0 {
            (used - bound) / used
        } else {
            0.0
        }),
        lp_bound: None,
        solve_seconds: out.seconds,
        gpcs_used: None,
    }
}

/// A max-load heuristic's packed GPUs, scored by the shared fluid yardstick.
pub(crate) fn scored(
    job: &Job<LoadData>,
    packed: Vec<PackedGpu<usize>>,
) -> Result<LoadPlan, Error> {
    let d = job.data;
    let names = names(d.models.iter().map(|m| &m.name));
    let (gpus, counts) = unpack(&d.sizes, packed, d.gpus as usize, &names, None);
    scored_plans(job, gpus, counts)
}

/// A max-load heuristic's GPU plans and counts, scored by the shared fluid yardstick.
pub(crate) fn scored_plans(
    job: &Job<LoadData>,
    gpus: Vec<GpuPlan>,
    counts: Vec<Vec<u32>>,
) -> Result<LoadPlan, Error> {
    let eval = fluid::evaluate(job.data, &counts)?;
    let report = heuristic_report(eval.lambda, job.started, None);
    Ok(LoadPlan { gpus, eval, report })
}

/// A min-gpus heuristic's packed GPUs, each instance at `point`, counted in GPUs used.
pub(crate) fn counted(
    job: &Job<RateData>,
    packed: Vec<PackedGpu<usize>>,
    point: PointFn<'_>,
) -> RatePlan {
    let d = job.data;
    let names = names(d.models.iter().map(|m| &m.name));
    let (gpus, _) = unpack(&d.sizes, packed, 0, &names, Some(point));
    let gpus = renumber(gpus);
    let report = heuristic_report(gpus.len() as f64, job.started, None);
    RatePlan {
        gpus,
        model_rates: None,
        report,
    }
}

/// Fills batches from the routes (the largest query batch routed to the instance's size
/// for its model; the largest that could be, where none is), then builds and validates.
pub(crate) fn load(job: &Job<LoadData>, solver: &str, out: LoadPlan) -> Result<Plan, Error> {
    let (d, opts) = (job.data, job.opts);
    let LoadPlan {
        mut gpus,
        eval,
        report,
    } = out;
    for g in &mut gpus {
        for a in &mut g.layout {
            let routed = eval
                .routes
                .iter()
                .filter(|r| r.model == a.model && r.profile == a.profile)
                .map(|r| r.batch)
                .max();
            let fallback = d
                .models
                .iter()
                .find(|m| m.name == a.model.as_str())
                .zip(d.sizes.index(a.profile.as_str()))
                .map(|(m, k)| m.max_batch_on(k))
                .unwrap_or(1);
            a.batch = routed.unwrap_or(fallback);
            a.procs = 1;
        }
    }
    let FluidEvaluation {
        routes,
        model_rates,
        ..
    } = eval;
    let plan = Plan {
        scenario: job.scenario.name.clone(),
        scenario_path: None,
        gpu: job.scenario.gpu.clone(),
        objective_kind: Objective::MaxLoad,
        solver: solver.to_string(),
        report,
        params: opts.params,
        gpus,
        routes,
        model_rates,
    };
    checked(plan, opts)
}

/// Builds and validates a min-gpus plan; model rates are the capacity of the instances
/// unless the planner gave them.
pub(crate) fn rate(job: &Job<RateData>, solver: &str, out: RatePlan) -> Result<Plan, Error> {
    let scenario = job.scenario;
    let RatePlan {
        gpus,
        model_rates,
        mut report,
    } = out;
    let model_rates = model_rates.unwrap_or_else(|| capacity(scenario, &gpus));
    let mut plan = Plan {
        scenario: scenario.name.clone(),
        scenario_path: None,
        gpu: scenario.gpu.clone(),
        objective_kind: Objective::MinGpus,
        solver: solver.to_string(),
        report: report.clone(),
        params: job.opts.params,
        gpus,
        routes: Vec::new(),
        model_rates,
    };
    report.gpcs_used = Some(plan.gpcs_used()?);
    report.objective = plan.gpus_used() as f64;
    plan.report = report;
    checked(plan, job.opts)
}

/// Requests per second each model's instances serve at their (batch, procs).
fn capacity(scenario: &migopt_models::Scenario, gpus: &[GpuPlan]) -> Vec<ModelRate> {
    scenario
        .models
        .iter()
        .map(|m| {
            let rate = gpus
                .iter()
                .flat_map(|g| &g.layout)
                .filter(|a| a.model == m.name)
                .filter_map(|a| {
                    let c =
                        scenario
                            .profiles
                            .curve(m.name.as_str(), a.profile.as_str(), a.procs)?;
                    // The throughput column (measured where the profile gives one).
                    c.throughput_at(a.batch)
                })
                .sum();
            ModelRate {
                model: m.name.clone(),
                rate_qps: rate,
            }
        })
        .collect()
}

/// Every plan passes the catalogue's validator before it leaves; a failure is a planner bug.
fn checked(plan: Plan, opts: &PlanOptions) -> Result<Plan, Error> {
    match plan.validate(opts.rules) {
        Ok(()) => Ok(plan),
        Err(e) => Err(Error::Internal(format!(
            "planner error: {} produced a plan the MIG validator rejects ({e}); please report this",
            plan.solver
        ))),
    }
}
