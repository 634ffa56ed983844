//! Running the study: planning every partitioning (with its throughput bounds), then
//! simulating every (partitioning, scheduler) cell into the typed results.

use super::config::{fractions, partitionings, schedulers, sim_config, Workload, AT_70, LOADS};
use super::results::{Cell, PlanRun, Point, WorkloadRun};
use crate::Options;
use migopt_models::{Error, Objective, Plan, Scenario};
use migopt_sim::{CapacityTarget, SchedulerKind};
use migopt_solver::{PlanOptions, SolverKind};

/// The SLA-aware plan, checked in simulation under ELSA (cuts until verified).
fn sla_plan(s: &Scenario, popts: &PlanOptions, opts: &Options) -> Result<Plan, Error> {
    let check = migopt_verify::CheckOptions {
        scheduler: SchedulerKind::Elsa,
        replications: if opts.quick { 2 } else { 4 },
        queries: if opts.quick { 20_000 } else { 100_000 },
        seed: opts.seed,
        threads: opts.threads,
        capacity: false,
        ..Default::default()
    };
    Ok(migopt_verify::plan_checked(s, popts, &check)?.plan)
}

/// An upper bound on the load any dispatch rule carries on `plan`'s instances, q/s: the
/// fluid LP over the fixed instances (`migopt_solver::evaluate_fixed_instances`) with
/// every instance busy 100% of the time (ρ = 1) and every batch allowed on every size
/// whose profile has it (no β). A simulated dispatcher can use no more sizes than that (an
/// instance takes batches up to its batch limit, which its profile covers), and with
/// service times at their medians every query costs its instance exactly its median, so
/// the total work per second cannot exceed the instances' time: a rule that carried more
/// would leave queues growing without bound, whatever its order. `None` where the plan
/// runs several MPS processes on an instance (the LP prices one process per instance) or
/// the LP fails.
pub fn throughput_bound(s: &Scenario, plan: &Plan) -> Option<f64> {
    fluid_bound(s, plan, 1e12)
}

/// [`throughput_bound`] with no batch on a size whose median service time exceeds the SLA
/// (β = 1). Not a bound on what a rule carries at p99 ≤ SLA (1% of the queries may run too
/// slowly), but where it equals [`throughput_bound`] the bound's optimal routing already
/// serves every batch within the SLA, so the SLA cannot tighten it through the routing.
/// `None` as [`throughput_bound`], or where some batch has no such size.
pub fn sla_throughput_bound(s: &Scenario, plan: &Plan) -> Option<f64> {
    fluid_bound(s, plan, 1.0)
}

/// The fluid LP over `plan`'s instances at 100% busy with batches allowed on sizes whose
/// median is within `beta`·SLA, q/s.
fn fluid_bound(s: &Scenario, plan: &Plan, beta: f64) -> Option<f64> {
    if plan.instances().any(|(_, a)| a.procs != 1) {
        return None;
    }
    let opts = PlanOptions {
        objective: Objective::MaxLoad,
        params: migopt_models::PlanParams {
            max_utilisation: 1.0,
            sla_fraction: beta,
            ..plan.params
        },
        ..PlanOptions::default()
    };
    migopt_solver::evaluate_fixed_instances(s, &plan.gpus, &opts)
        .ok()
        .map(|e| e.lambda)
}

/// Plans every partitioning. A homogeneous cut that the planner rejects (some batches
/// cannot meet β·SLA on it) is still a partitioning the paper compares: it is built
/// directly and the simulation shows what it costs.
fn make_plans(s: &Scenario, parts: &[&'static str], opts: &Options) -> Result<Vec<PlanRun>, Error> {
    let popts = PlanOptions {
        objective: Objective::MaxLoad,
        ..PlanOptions::default()
    };
    let mut out = Vec::new();
    for &p in parts {
        let kind: SolverKind = p.parse()?;
        let mut plan = if kind == SolverKind::Sla {
            sla_plan(s, &popts, opts)
        } else {
            migopt_solver::plan(s, kind, &popts)
        }
        .map_err(|e| e.to_string());
        let mut rejected = None;
        if let (Err(e), Some(short)) = (&plan, p.strip_prefix("homogeneous-")) {
            if let Ok(cut) = homogeneous_anyway(s, short) {
                rejected = Some(e.clone());
                plan = Ok(cut);
            }
        }
        out.push(PlanRun {
            name: p,
            bound: plan.as_ref().ok().and_then(|p| throughput_bound(s, p)),
            sla_bound: plan.as_ref().ok().and_then(|p| sla_throughput_bound(s, p)),
            plan,
            rejected,
            cells: Vec::new(),
        });
    }
    Ok(out)
}

/// Capacity, then the latency points at `base` (the plan's FIFS capacity; for FIFS itself,
/// its own capacity once known).
fn measure_cell(
    plan: &Plan,
    s: &Scenario,
    sched: SchedulerKind,
    opts: &Options,
    base: Option<f64>,
    reference: f64,
) -> Cell {
    let cfg = sim_config(opts, sched, reference.max(1.0));
    let capacity = migopt_sim::capacity(plan, s, &cfg, CapacityTarget::P99).ok();
    let base = base.or(capacity.as_ref().map(|c| c.capacity_qps.mean));
    let at = |f: f64, drop_late: bool| -> Option<Point> {
        let rate = base? * f;
        if rate.is_nan() || rate <= 0.0 {
            return None;
        }
        let mut c = sim_config(opts, sched, rate);
        c.drop_late = drop_late;
        Point::of(rate, &migopt_sim::simulate(plan, s, &c).ok()?)
    };
    Cell {
        sched,
        loads: LOADS.iter().map(|&f| at(f, false)).collect(),
        dropping: at(LOADS[AT_70], true),
        capacity,
        curve: Vec::new(),
    }
}

/// Every scheduler on one partitioning, FIFS first (its capacity sets the loads).
fn measure_plan(
    p: &mut PlanRun,
    s: &Scenario,
    opts: &Options,
    reference: f64,
    tick: &mut dyn FnMut(),
) {
    let Ok(plan) = &p.plan else {
        for _ in schedulers(opts.quick) {
            tick();
        }
        return;
    };
    let fifs = measure_cell(plan, s, SchedulerKind::Fifs, opts, None, reference);
    let base = fifs.cap().map(|c| c.mean);
    tick();
    let mut cells = vec![fifs];
    for k in schedulers(opts.quick) {
        if k != SchedulerKind::Fifs {
            cells.push(measure_cell(plan, s, k, opts, base, reference));
            tick();
        }
    }
    p.cells = cells;
}

/// The series the p99-vs-load figure draws: (partitioning, scheduler).
pub(super) fn drawn(run: &WorkloadRun) -> Vec<(&'static str, SchedulerKind)> {
    let elsa = SchedulerKind::elsa_rule();
    let mut v = vec![
        ("paris", SchedulerKind::Fifs),
        ("paris", SchedulerKind::ElsaGreedy),
        ("paris", elsa),
        ("milp", elsa),
    ];
    if let Some((p, _)) = run.best_homogeneous() {
        v.push((p.name, SchedulerKind::Fifs));
    }
    v
}

/// p99 along the figure's loads for the drawn series.
fn measure_curves(run: &mut WorkloadRun, s: &Scenario, opts: &Options) {
    let fr = fractions(opts.quick);
    let reference = run.reference;
    for (name, k) in drawn(run) {
        let Some(p) = run.plans.iter_mut().find(|p| p.name == name) else {
            continue;
        };
        let Ok(plan) = &p.plan else { continue };
        let curve: Vec<Option<Point>> = fr
            .iter()
            .map(|f| {
                let rate = reference * f;
                let r = migopt_sim::simulate(plan, s, &sim_config(opts, k, rate)).ok()?;
                Point::of(rate, &r)
            })
            .collect();
        if let Some(c) = p.cells.iter_mut().find(|c| c.sched == k) {
            c.curve = curve;
        }
    }
}

/// Plans and measures one workload.
pub(super) fn run_workload(
    w: &Workload,
    opts: &Options,
    tick: &mut dyn FnMut(),
) -> Result<WorkloadRun, Error> {
    let s = &w.scenario;
    let mut plans = make_plans(s, &partitionings(opts.quick), opts)?;
    let reference = match plans.iter().find(|p| p.name == "milp").map(|p| &p.plan) {
        Some(Ok(p)) => p.report.objective,
        _ => {
            return Err(Error::Infeasible(format!(
                "{}: the MILP found no plan",
                w.id
            )))
        }
    };
    for p in &mut plans {
        tick();
        measure_plan(p, s, opts, reference, tick);
    }
    let mut run = WorkloadRun {
        id: w.id.clone(),
        source: w.source.clone(),
        description: s.description.clone().unwrap_or_default(),
        sla: s.models[0].sla.0,
        reference,
        plans,
        scenario: Some(s.clone()),
    };
    measure_curves(&mut run, s, opts);
    tick();
    Ok(run)
}

/// Every GPU cut into as many instances of one classic profile as fit, all serving the
/// scenario's first model and accepting every batch their profile was measured at.
fn homogeneous_anyway(s: &Scenario, short: &str) -> Result<Plan, Error> {
    use migopt_models::{Assignment, GpuPlan, PlanParams, SolveReport};
    let gpu = s.gpu_spec();
    let bad = || Error::Invalid(format!("{} has no {short} profile", gpu.name));
    let n: u32 = short.trim_end_matches('g').parse().map_err(|_| bad())?;
    let spec = gpu.classic_by_compute(n).ok_or_else(bad)?;
    let model = &s.models[0];
    let batch = s
        .profiles
        .curve(model.name.as_str(), spec.name.as_str(), 1)
        .map(|c| c.max_batch())
        .ok_or_else(|| Error::Invalid(format!("{} has no curve on {}", model.name, spec.name)))?;
    let mut starts = Vec::new();
    let mut used = 0u32;
    for &st in &spec.starts {
        let m = spec.slot_mask(st);
        if used & m == 0 && (starts.len() as u32) < spec.max_count {
            used |= m;
            starts.push(st);
        }
    }
    let gpus = (0..s.gpu_count)
        .map(|i| GpuPlan {
            index: i,
            layout: starts
                .iter()
                .map(|&st| Assignment {
                    profile: spec.name.clone(),
                    start: st,
                    model: model.name.clone(),
                    batch,
                    procs: 1,
                })
                .collect(),
        })
        .collect();
    let plan = Plan {
        scenario: s.name.clone(),
        scenario_path: None,
        gpu: gpu.name.clone(),
        objective_kind: Objective::MaxLoad,
        solver: format!("homogeneous-{short}"),
        // Not planned: no fluid capacity to claim.
        report: SolveReport::heuristic(0.0, 0.0),
        params: PlanParams::default(),
        gpus,
        routes: Vec::new(),
        model_rates: Vec::new(),
    };
    plan.validate(migopt_models::LayoutRules::default())?;
    Ok(plan)
}
