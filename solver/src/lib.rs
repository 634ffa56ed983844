//! # migopt-solver
//!
//! Partition planners for MIG GPUs. Two questions, each answered by an exact MILP on HiGHS
//! and by the heuristics the literature uses, so that the heuristics' distance from the
//! optimum can be measured:
//!
//! * **Max-load** ([`Objective::MaxLoad`], the PARIS question): on a fixed server of N GPUs,
//!   the largest total query rate λ, queries carrying their own batch. Planners: the MILP,
//!   PARIS (reconstructed, see [`paris`]), ParvaGPU's allocator wrapped in a search, and
//!   homogeneous cuts. All plans are scored by the same fluid LP
//!   ([`evaluate_fixed_instances`]).
//! * **Min-gpus** ([`Objective::MinGpus`], the ParvaGPU question): the fewest GPUs (then
//!   fewest GPCs) that serve every model's rate within its SLO, with server-side batching
//!   and MPS processes. Planners: the MILP, ParvaGPU's allocator (reimplemented, see
//!   [`parvagpu`]), PARIS's knee rule, and homogeneous cuts.
//!
//! The MILPs come in two exact encodings ([`Encoding`]): GPUs counted per maximal layout
//! (compact, independent of N) or explicit per-GPU placements (the placement rules as
//! constraints). Every plan returned carries explicit placements, passes the catalogue's
//! independent validator, and reports how it was obtained ([`SolveReport`]). HiGHS is silent;
//! set `MIGOPT_HIGHS_LOG=1` in the environment to see its log when a solve needs explaining.
//!
//! ```
//! use migopt_models::{LayoutRules, SolveStatus};
//! use migopt_solver::{plan, PlanOptions, SolverKind};
//!
//! // The shipped scenario: 8x H100-80GB serving ResNet-50 and BERT-base.
//! let scenario = migopt_profiles::default_scenario().unwrap();
//! let opts = PlanOptions::default();
//! let exact = plan(&scenario, SolverKind::Milp, &opts).unwrap();
//! let paris = plan(&scenario, SolverKind::Paris, &opts).unwrap();
//! assert_eq!(exact.report.status, SolveStatus::Optimal);
//! // The optimum is never below a heuristic, nor above its own bounds.
//! assert!(exact.report.objective >= paris.report.objective - 1e-6);
//! assert!(exact.report.lp_bound.unwrap() >= exact.report.objective - 1e-6);
//! exact.validate(LayoutRules::default()).unwrap();
//! ```

#![warn(missing_docs)]

mod data;
mod fluid;
pub mod homogeneous;
mod maxload;
mod milp;
mod mingpus;
mod pack;
pub mod paris;
pub mod parvagpu;
mod supply;

pub use fluid::FluidEvaluation;

use data::{LoadData, RateData};
use migopt_models::{
    Error, GpuPlan, LayoutRules, ModelRate, Objective, Plan, PlanParams, Scenario, SolveReport,
    SolveStatus,
};
use pack::PackedGpu;
use std::time::Instant;

/// Which planner to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SolverKind {
    /// The exact MILP (HiGHS), in the encoding [`PlanOptions::encoding`] selects.
    Milp,
    /// PARIS (DAC 2022), reconstructed; see [`paris`].
    Paris,
    /// ParvaGPU's allocator (SC 2024), reimplemented; see [`parvagpu`].
    Parvagpu,
    /// Every GPU cut into one classic profile, named as `3g`, `3` or `3g.40gb`.
    Homogeneous(String),
}

impl SolverKind {
    /// The name written into plans and reports (`milp`, `paris`, `parvagpu`,
    /// `homogeneous-3g`).
    pub fn name(&self) -> String {
        match self {
            SolverKind::Milp => "milp".into(),
            SolverKind::Paris => "paris".into(),
            SolverKind::Parvagpu => "parvagpu".into(),
            SolverKind::Homogeneous(p) => {
                let short = p.split('.').next().unwrap_or(p);
                let short = if short.ends_with('g') {
                    short.to_string()
                } else {
                    format!("{short}g")
                };
                format!("homogeneous-{short}")
            }
        }
    }
}

impl std::fmt::Display for SolverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for SolverKind {
    type Err = Error;
    /// Parses `milp`, `paris`, `parvagpu` or `homogeneous-<profile>`, for the command line.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "milp" => Ok(SolverKind::Milp),
            "paris" => Ok(SolverKind::Paris),
            "parvagpu" => Ok(SolverKind::Parvagpu),
            other => match other.strip_prefix("homogeneous-") {
                Some(p) if !p.is_empty() => Ok(SolverKind::Homogeneous(s["homogeneous-".len()..].to_string())),
                _ => Err(Error::Invalid(format!(
                    "unknown solver `{s}` (choose milp, paris, parvagpu or homogeneous-<profile>, e.g. homogeneous-3g)"
                ))),
            },
        }
    }
}

/// How the MILP describes what GPUs can hold. Both are exact and give the same optimum
/// (a property the tests check); they differ in size and speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Integer count of GPUs per maximal layout: size independent of the GPU count.
    #[default]
    Layouts,
    /// Binary per (GPU, profile, start) with the placement rules as constraints: grows with
    /// the GPU count, but derives valid layouts without the enumeration.
    Placements,
}

impl std::str::FromStr for Encoding {
    type Err = Error;
    /// Parses `layouts` or `placements`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "layouts" | "a" => Ok(Encoding::Layouts),
            "placements" | "b" => Ok(Encoding::Placements),
            _ => Err(Error::Invalid(format!(
                "unknown encoding `{s}` (choose layouts or placements)"
            ))),
        }
    }
}

/// What to plan and how hard to try.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// Max-load or min-gpus.
    pub objective: Objective,
    /// Fluid-model parameters (ρ, β, SLO factor).
    pub params: PlanParams,
    /// Wall-clock limit of each MILP solve, seconds (none: until the gap is met).
    pub time_limit: Option<f64>,
    /// Relative MIP gap at which to stop; 0 (the default) proves optimality.
    pub mip_gap: f64,
    /// HiGHS threads. HiGHS keeps one scheduler per OS thread, created at its first solve;
    /// solving again on that thread with another value fails, so keep one value per thread
    /// (and 1 under rayon).
    pub threads: u32,
    /// MILP encoding.
    pub encoding: Encoding,
    /// Placement rules (classic profiles only unless `all_profiles`; pre-R510 pairs).
    pub rules: LayoutRules,
    /// Branch-and-bound node limit: with it (and one thread) results repeat exactly.
    pub node_limit: Option<u64>,
    /// Min-gpus only: use at most this many GPUs (e.g. the scenario's `gpu.count`). `None`
    /// plans as many as the targets need.
    pub gpu_cap: Option<u32>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            objective: Objective::MaxLoad,
            params: PlanParams::default(),
            time_limit: None,
            mip_gap: 0.0,
            threads: 1,
            encoding: Encoding::Layouts,
            rules: LayoutRules::default(),
            node_limit: None,
            gpu_cap: None,
        }
    }
}

/// MILP controls from the options.
pub(crate) fn control(opts: &PlanOptions, relax: bool) -> milp::Control {
    milp::Control {
        time_limit: opts.time_limit,
        mip_gap: opts.mip_gap,
        threads: opts.threads.max(1),
        node_limit: opts.node_limit,
        relax,
        lean: false,
    }
}

/// A number of milliseconds (or a factor) for messages: up to 3 decimals, no trailing zeros.
pub(crate) fn fmt_ms(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

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

/// Plans a scenario with one planner.
///
/// Errors: [`Error::Infeasible`] when no plan can meet the targets (explained in terms of
/// models, batch sizes and latencies), [`Error::Invalid`] for unusable options.
pub fn plan(scenario: &Scenario, solver: SolverKind, opts: &PlanOptions) -> Result<Plan, Error> {
    let start = Instant::now();
    match opts.objective {
        Objective::MaxLoad => {
            let d = data::load_data(scenario, &opts.params, opts.rules)?;
            match &solver {
                SolverKind::Milp => {
                    let s = maxload::solve(&d, opts)?;
                    finish_load(scenario, &d, opts, &solver, s.gpus, s.eval, s.report)
                }
                SolverKind::Paris => {
                    let (gpus, counts) = paris::max_load(scenario, &d, opts.params.sla_fraction)?;
                    load_heuristic(scenario, &d, opts, &solver, gpus, counts, start)
                }
                SolverKind::Parvagpu => {
                    let packed = parvagpu::max_load(&d)?;
                    let (gpus, counts) =
                        unpack(&d.sizes, packed, d.gpus as usize, &names_load(&d), None);
                    load_heuristic(scenario, &d, opts, &solver, gpus, counts, start)
                }
                SolverKind::Homogeneous(p) => {
                    let k = homogeneous::resolve(&d.sizes, p)?;
                    let packed = homogeneous::max_load(&d, k)?;
                    let (gpus, counts) =
                        unpack(&d.sizes, packed, d.gpus as usize, &names_load(&d), None);
                    load_heuristic(scenario, &d, opts, &solver, gpus, counts, start)
                }
            }
        }
        Objective::MinGpus => {
            let d = data::rate_data(scenario, &opts.params, opts.rules)?;
            let point = |m: usize, k: usize| {
                d.models[m].best[k]
                    .map(|o| (o.batch, o.procs))
                    .unwrap_or((1, 1))
            };
            match &solver {
                SolverKind::Milp => {
                    let (max_gpus, lp) = min_gpus_limit(&d, opts)?;
                    let s = mingpus::solve(&d, opts, max_gpus, lp)?;
                    finish_rate(
                        scenario,
                        opts,
                        &solver,
                        s.gpus,
                        Some(s.model_rates),
                        s.report,
                    )
                }
                SolverKind::Parvagpu => {
                    let packed = parvagpu::min_gpus(&d, opts.gpu_cap)?;
                    let (gpus, _) = unpack(&d.sizes, packed, 0, &names_rate(&d), Some(&point));
                    rate_heuristic(scenario, opts, &solver, gpus, start)
                }
                SolverKind::Paris => {
                    let pts = paris::rate_points(scenario, &d.sizes, opts.params.slo_factor)?;
                    let mut items = Vec::new();
                    for (m, &(k, _, tp)) in pts.iter().enumerate() {
                        let n = (d.models[m].rate / tp).ceil().max(1.0) as usize;
                        items.extend(std::iter::repeat_n((k, m), n));
                    }
                    let (packed, left) =
                        pack::Packer::new(&d.sizes).pack(items, opts.gpu_cap.map(|c| c as usize));
                    if !left.is_empty() {
                        return Err(Error::Infeasible(format!(
                            "PARIS needs more than {} GPUs for the rate targets",
                            opts.gpu_cap.unwrap_or(0)
                        )));
                    }
                    let paris_point = |m: usize, _k: usize| (pts[m].1, 1);
                    let (gpus, _) =
                        unpack(&d.sizes, packed, 0, &names_rate(&d), Some(&paris_point));
                    rate_heuristic(scenario, opts, &solver, gpus, start)
                }
                SolverKind::Homogeneous(p) => {
                    let k = homogeneous::resolve(&d.sizes, p)?;
                    let packed = homogeneous::min_gpus(&d, k, opts.gpu_cap)?;
                    let (gpus, _) = unpack(&d.sizes, packed, 0, &names_rate(&d), Some(&point));
                    rate_heuristic(scenario, opts, &solver, gpus, start)
                }
            }
        }
    }
}

/// Plans with every GPU cut into one classic profile (`1g`, `3g`, `3g.40gb`, ...); see
/// [`mod@homogeneous`]. The same as `plan(scenario, SolverKind::Homogeneous(profile), opts)`.
pub fn homogeneous(scenario: &Scenario, profile: &str, opts: &PlanOptions) -> Result<Plan, Error> {
    plan(scenario, SolverKind::Homogeneous(profile.to_string()), opts)
}

fn names_load(d: &LoadData) -> Vec<String> {
    d.models.iter().map(|m| m.name.clone()).collect()
}

fn names_rate(d: &RateData) -> Vec<String> {
    d.models.iter().map(|m| m.name.clone()).collect()
}

type PointFn<'a> = &'a dyn Fn(usize, usize) -> (u32, u32);

/// GPU plans and per-(model, size) counts from packed GPUs, padded with empty GPUs up to
/// `gpus`. `point` gives (batch, procs) per (model, size); max-load fills batches later.
fn unpack(
    sizes: &data::Sizes,
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

fn heuristic_report(objective: f64, start: Instant, gpcs: Option<u32>) -> SolveReport {
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

fn load_heuristic(
    scenario: &Scenario,
    d: &LoadData,
    opts: &PlanOptions,
    solver: &SolverKind,
    gpus: Vec<GpuPlan>,
    counts: Vec<Vec<u32>>,
    start: Instant,
) -> Result<Plan, Error> {
    let eval = evaluate(d, &counts, opts.threads)?;
    let report = heuristic_report(eval.lambda, start, None);
    finish_load(scenario, d, opts, solver, gpus, eval, report)
}

/// The shared fluid yardstick for a fixed set of instances (`counts[m][k]` instances of
/// size k serving model m), used by every max-load heuristic.
fn evaluate(d: &LoadData, counts: &[Vec<u32>], threads: u32) -> Result<FluidEvaluation, Error> {
    fluid::evaluate(d, counts, threads.max(1))
}

/// Scores a plan's instances under the max-load fluid model: the largest total query rate
/// they carry with the best routing of query classes to profiles (ρ, β from `opts.params`,
/// the batch lookup from the scenario, profiles allowed by `opts.rules`, HiGHS on
/// `opts.threads`). PARIS, ParvaGPU and homogeneous plans are scored by this, and the MILP
/// maximises the same quantity, so all planners share one yardstick.
pub fn evaluate_fixed_instances(
    scenario: &Scenario,
    gpus: &[GpuPlan],
    opts: &PlanOptions,
) -> Result<FluidEvaluation, Error> {
    let d = data::load_data(scenario, &opts.params, opts.rules)?;
    let mut counts = vec![vec![0u32; d.sizes.profiles.len()]; d.models.len()];
    for g in gpus {
        for a in &g.layout {
            let k = d.sizes.index(a.profile.as_str()).ok_or_else(|| {
                Error::Invalid(format!(
                    "GPU {}: profile {} is not usable under the layout rules (usable: {})",
                    g.index,
                    a.profile,
                    d.sizes.names()
                ))
            })?;
            let m = d
                .models
                .iter()
                .position(|m| m.name == a.model.as_str())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "GPU {}: model {} is not in scenario {}",
                        g.index, a.model, scenario.name
                    ))
                })?;
            counts[m][k] += 1;
        }
    }
    evaluate(&d, &counts, opts.threads)
}

/// Fills batches from the routes (the largest query batch routed to the instance's size
/// for its model; the largest that could be, where none is), then builds and validates.
fn finish_load(
    scenario: &Scenario,
    d: &LoadData,
    opts: &PlanOptions,
    solver: &SolverKind,
    mut gpus: Vec<GpuPlan>,
    eval: FluidEvaluation,
    report: SolveReport,
) -> Result<Plan, Error> {
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
    let plan = Plan {
        scenario: scenario.name.clone(),
        scenario_path: None,
        gpu: scenario.gpu.clone(),
        objective_kind: Objective::MaxLoad,
        solver: solver.name(),
        report,
        params: opts.params,
        gpus,
        routes: eval.routes,
        model_rates: eval.model_rates,
    };
    checked(plan, opts)
}

fn rate_heuristic(
    scenario: &Scenario,
    opts: &PlanOptions,
    solver: &SolverKind,
    gpus: Vec<GpuPlan>,
    start: Instant,
) -> Result<Plan, Error> {
    let gpus = renumber(gpus);
    let report = heuristic_report(gpus.len() as f64, start, None);
    finish_rate(scenario, opts, solver, gpus, None, report)
}

/// Builds and validates a min-gpus plan; model rates are the capacity of the instances.
fn finish_rate(
    scenario: &Scenario,
    opts: &PlanOptions,
    solver: &SolverKind,
    gpus: Vec<GpuPlan>,
    model_rates: Option<Vec<ModelRate>>,
    mut report: SolveReport,
) -> Result<Plan, Error> {
    let model_rates = model_rates.unwrap_or_else(|| capacity(scenario, &gpus));
    let mut plan = Plan {
        scenario: scenario.name.clone(),
        scenario_path: None,
        gpu: scenario.gpu.clone(),
        objective_kind: Objective::MinGpus,
        solver: solver.name(),
        report: report.clone(),
        params: opts.params,
        gpus,
        routes: Vec::new(),
        model_rates,
    };
    report.gpcs_used = Some(plan.gpcs_used()?);
    report.objective = plan.gpus_used() as f64;
    plan.report = report;
    checked(plan, opts)
}

/// Requests per second each model's instances serve at their (batch, procs).
fn capacity(scenario: &Scenario, gpus: &[GpuPlan]) -> Vec<ModelRate> {
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
                    let l = c.latency(a.batch, migopt_models::BatchLookup::Exact)?;
                    Some(a.procs as f64 * a.batch as f64 * 1000.0 / l.0)
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

/// The GPU limit of the min-gpus MILP and the LP bound on GPUs. The limit is the cap if the
/// user gave one (checked against the LP bound first), else a heuristic's GPU count: the
/// ParvaGPU allocator's, or one GPU per instance when it cannot run.
fn min_gpus_limit(d: &RateData, opts: &PlanOptions) -> Result<(u32, Option<f64>), Error> {
    let heuristic = parvagpu::min_gpus(d, None).map(|g| g.len() as u32).ok();
    let safe: u32 = d
        .models
        .iter()
        .map(|m| {
            let best = m
                .best
                .iter()
                .flatten()
                .map(|o| o.throughput)
                .fold(0.0, f64::max);
            (m.rate / best).ceil().max(1.0) as u32
        })
        .sum();
    let upper = heuristic.unwrap_or(safe).max(1);
    let lp = mingpus::lp_gpus(d, Encoding::Layouts, upper, opts)?;
    let needed = lp.map(|l| (l - 1e-6).ceil().max(1.0) as u32);
    if let (Some(cap), Some(n)) = (opts.gpu_cap, needed) {
        if n > cap {
            return Err(Error::Infeasible(format!(
                "the rate targets need at least {n} GPUs (LP bound) but the server has {cap}"
            )));
        }
    }
    let limit = opts.gpu_cap.map_or(upper, |c| c.min(upper));
    let lp = if opts.encoding == Encoding::Layouts && limit == upper {
        lp
    } else {
        mingpus::lp_gpus(d, opts.encoding, limit, opts)?
    };
    Ok((limit, lp))
}

/// Why the scenario cannot be planned under the options, in user terms, or `None` if it
/// can (as far as the checks that need no MILP can tell: every model and batch size has a
/// profile within its latency bound, rates are given where needed, and for min-gpus with
/// a GPU cap, the LP bound fits the cap).
pub fn explain_infeasible(scenario: &Scenario, opts: &PlanOptions) -> Option<String> {
    let r = match opts.objective {
        Objective::MaxLoad => data::load_data(scenario, &opts.params, opts.rules).map(|_| ()),
        Objective::MinGpus => data::rate_data(scenario, &opts.params, opts.rules)
            .and_then(|d| min_gpus_limit(&d, opts).map(|_| ())),
    };
    match r {
        Ok(()) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// One row of a gap report: a planner's result against the MILP's.
#[derive(Debug, Clone, PartialEq)]
pub struct GapRow {
    /// Scenario name.
    pub scenario: String,
    /// Planner name (`milp`, `paris`, ...).
    pub solver: String,
    /// The planner's objective (λ for max-load, GPUs for min-gpus); `None` if it failed.
    pub objective: Option<f64>,
    /// The MILP's objective on the same scenario.
    pub milp_objective: f64,
    /// How far from the MILP, in percent of the MILP's objective (positive: worse).
    pub gap_pct: Option<f64>,
    /// Wall time of the planner, seconds.
    pub seconds: f64,
    /// GPUs with at least one instance.
    pub gpus_used: usize,
    /// GPCs of all instances.
    pub gpcs_used: u32,
    /// How the planner ended (`infeasible` when it could not produce a plan).
    pub status: SolveStatus,
    /// Why a planner failed, in user terms.
    pub note: Option<String>,
}

/// Runs the MILP and every heuristic (PARIS, ParvaGPU, each homogeneous classic profile)
/// on a scenario and reports each heuristic's distance from the MILP. The MILP's own row
/// comes first with a gap of 0; heuristics that cannot plan the scenario get a row with
/// status `infeasible` and the reason.
pub fn gap_report(scenario: &Scenario, opts: &PlanOptions) -> Result<Vec<GapRow>, Error> {
    let milp = plan(scenario, SolverKind::Milp, opts)?;
    let best = milp.report.objective;
    let mut solvers = vec![SolverKind::Milp, SolverKind::Paris, SolverKind::Parvagpu];
    let sizes = data::Sizes::new(scenario, opts.rules)?;
    for p in paris::classic_sizes(&sizes) {
        solvers.push(SolverKind::Homogeneous(sizes.profiles[p].name.to_string()));
    }
    let mut rows = Vec::new();
    for s in solvers {
        let start = Instant::now();
        let result = if s == SolverKind::Milp {
            Ok(milp.clone())
        } else {
            plan(scenario, s.clone(), opts)
        };
        let row = match result {
            Ok(p) => {
                let obj = p.report.objective;
                let gap = if best.abs() > 0.0 {
                    match opts.objective {
                        Objective::MaxLoad => (best - obj) / best * 100.0,
                        Objective::MinGpus => (obj - best) / best * 100.0,
                    }
                } else {
                    0.0
                };
                GapRow {
                    scenario: scenario.name.clone(),
                    solver: s.name(),
                    objective: Some(obj),
                    milp_objective: best,
                    gap_pct: Some(gap),
                    seconds: if s == SolverKind::Milp {
                        p.report.solve_seconds
                    } else {
                        start.elapsed().as_secs_f64()
                    },
                    gpus_used: p.gpus_used(),
                    gpcs_used: p.gpcs_used().unwrap_or(0),
                    status: p.report.status,
                    note: None,
                }
            }
            Err(e) => GapRow {
                scenario: scenario.name.clone(),
                solver: s.name(),
                objective: None,
                milp_objective: best,
                gap_pct: None,
                seconds: start.elapsed().as_secs_f64(),
                gpus_used: 0,
                gpcs_used: 0,
                status: SolveStatus::Infeasible,
                note: Some(e.to_string()),
            },
        };
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_names_parse_and_print() {
        for (s, name) in [
            ("milp", "milp"),
            ("PARIS", "paris"),
            ("parvagpu", "parvagpu"),
            ("homogeneous-3g", "homogeneous-3g"),
            ("homogeneous-3g.40gb", "homogeneous-3g"),
            ("homogeneous-7", "homogeneous-7g"),
        ] {
            assert_eq!(s.parse::<SolverKind>().unwrap().name(), name);
        }
        let e = "greedy".parse::<SolverKind>().unwrap_err().to_string();
        assert_eq!(e, "unknown solver `greedy` (choose milp, paris, parvagpu or homogeneous-<profile>, e.g. homogeneous-3g)");
        assert_eq!(
            "placements".parse::<Encoding>().unwrap(),
            Encoding::Placements
        );
        assert!("x".parse::<Encoding>().is_err());
    }

    #[test]
    fn milliseconds_print_short() {
        assert_eq!(fmt_ms(20.0), "20");
        assert_eq!(fmt_ms(23.1), "23.1");
        assert_eq!(fmt_ms(0.45), "0.45");
        assert_eq!(fmt_ms(7.530612), "7.531");
    }

    #[test]
    fn defaults_prove_optimality_on_one_thread() {
        let o = PlanOptions::default();
        assert_eq!(
            (o.mip_gap, o.threads, o.encoding, o.time_limit),
            (0.0, 1, Encoding::Layouts, None)
        );
        assert_eq!(o.params, PlanParams::default());
    }
}
