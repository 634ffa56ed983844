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
//! set `MIGOPT_HIGHS_LOG=1` in the environment to see its log when a solve needs explaining
//! (`MIGOPT_HIGHS_SEED=<n>` changes HiGHS's random seed, 1 by default, for robustness studies).
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
mod decomp;
mod exact;
mod finish;
mod fluid;
mod gap;
pub mod homogeneous;
mod maxload;
mod milp;
mod mingpus;
mod pack;
pub mod paris;
pub mod parvagpu;
mod planner;
pub mod queue;
pub mod replan;
mod sla;
mod slagpus;
mod slaload;
mod supply;

pub use fluid::FluidEvaluation;
pub use gap::{gap_report, gap_solvers, GapRow};
pub use planner::SolverKind;
pub use sla::{predict_capacity, Prediction, SlaOptions, ELSA_HORIZON};

pub(crate) use finish::renumber;
use migopt_models::{Error, GpuPlan, LayoutRules, Objective, Plan, PlanParams, Scenario};
use planner::Job;
use std::time::Instant;

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
    /// Wall-clock limit of the whole `plan()` call, seconds (none: until the gap is met).
    /// Every MILP and LP solve of the call gets the time left of it.
    pub time_limit: Option<f64>,
    /// The instant by which the call must end: `plan()` sets it from `time_limit` when it
    /// is `None`; set it to share one limit among several calls.
    pub deadline: Option<Instant>,
    /// Relative MIP gap at which to stop; 0 (the default) proves optimality.
    pub mip_gap: f64,
    /// MILP encoding.
    pub encoding: Encoding,
    /// Placement rules (classic profiles only unless `all_profiles`; pre-R510 pairs).
    pub rules: LayoutRules,
    /// Branch-and-bound node limit: with it (and one thread) results repeat exactly.
    pub node_limit: Option<u64>,
    /// Min-gpus only: use at most this many GPUs (e.g. the scenario's `gpu.count`). `None`
    /// plans as many as the targets need.
    pub gpu_cap: Option<u32>,
    /// The SLA-aware planner's target, margin and cuts ([`SolverKind::Sla`]).
    pub sla: SlaOptions,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            objective: Objective::MaxLoad,
            params: PlanParams::default(),
            time_limit: None,
            mip_gap: 0.0,
            encoding: Encoding::Layouts,
            rules: LayoutRules::default(),
            node_limit: None,
            gpu_cap: None,
            sla: SlaOptions::default(),
            deadline: None,
        }
    }
}

impl PlanOptions {
    /// The options with the deadline fixed: now + `time_limit`, unless one is set already.
    pub fn with_deadline(&self) -> PlanOptions {
        let mut o = self.clone();
        if o.deadline.is_none() {
            // A limit too long for a `Duration` or an `Instant` (1e300 s) is no deadline.
            o.deadline = o
                .time_limit
                .and_then(|t| std::time::Duration::try_from_secs_f64(t).ok())
                .and_then(|d| Instant::now().checked_add(d));
        }
        o
    }

    /// Seconds left before the deadline (at least a few milliseconds, so a solve that starts
    /// late still returns its MIP start), or `None` without a limit.
    pub(crate) fn time_left(&self) -> Option<f64> {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64());
        match (left, self.time_limit) {
            (Some(l), _) => Some(l.max(0.01)),
            (None, t) => t,
        }
    }
}

/// MILP controls from the options.
pub(crate) fn control(opts: &PlanOptions, relax: bool) -> milp::Control {
    milp::Control {
        time_limit: opts.time_left(),
        mip_gap: opts.mip_gap,
        node_limit: opts.node_limit,
        relax,
        lean: false,
        proof_only: false,
        lp_age_limit: None,
    }
}

/// A number of milliseconds (or a factor) for messages: up to 3 decimals, no trailing zeros.
pub(crate) fn fmt_ms(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Plans a scenario with one planner.
///
/// Errors: [`Error::Infeasible`] when no plan can meet the targets (explained in terms of
/// models, batch sizes and latencies), [`Error::Invalid`] for unusable options.
pub fn plan(scenario: &Scenario, solver: SolverKind, opts: &PlanOptions) -> Result<Plan, Error> {
    let started = Instant::now();
    let opts = &opts.with_deadline();
    let planner = solver.planner();
    let params = planner.params(&opts.params);
    match opts.objective {
        Objective::MaxLoad => {
            let data = &data::load_data(scenario, &params, opts.rules)?;
            let job = Job {
                scenario,
                data,
                opts,
                started,
            };
            let out = planner.max_load(&job)?;
            finish::load(&job, &solver.name(), out)
        }
        Objective::MinGpus => {
            let data = &data::rate_data(scenario, &params, opts.rules)?;
            let job = Job {
                scenario,
                data,
                opts,
                started,
            };
            let out = planner.min_gpus(&job)?;
            finish::rate(&job, &solver.name(), out)
        }
    }
}

/// Plans with every GPU cut into one classic profile (`1g`, `3g`, `3g.40gb`, ...); see
/// [`mod@homogeneous`]. The same as `plan(scenario, SolverKind::Homogeneous(profile), opts)`.
pub fn homogeneous(scenario: &Scenario, profile: &str, opts: &PlanOptions) -> Result<Plan, Error> {
    plan(scenario, SolverKind::Homogeneous(profile.to_string()), opts)
}

/// Scores a plan's instances under the max-load fluid model: the largest total query rate
/// they carry with the best routing of query classes to profiles (ρ, β from `opts.params`,
/// the batch lookup from the scenario, profiles allowed by `opts.rules`). PARIS, ParvaGPU and homogeneous plans are scored by this, and the MILP
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
    fluid::evaluate(&d, &counts)
}

/// Why the scenario cannot be planned under the options, in user terms, or `None` if it
/// can (as far as the checks that need no MILP can tell: every model and batch size has a
/// profile within its latency bound, rates are given where needed, and for min-gpus with
/// a GPU cap, the LP bound fits the cap).
pub fn explain_infeasible(scenario: &Scenario, opts: &PlanOptions) -> Option<String> {
    let r = match opts.objective {
        Objective::MaxLoad => data::load_data(scenario, &opts.params, opts.rules).map(|_| ()),
        Objective::MinGpus => data::rate_data(scenario, &opts.params, opts.rules)
            .and_then(|d| exact::min_gpus_limit(&d, opts).map(|_| ())),
    };
    match r {
        Ok(()) => None,
        Err(e) => Some(e.to_string()),
    }
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
        assert_eq!(e, "unknown solver `greedy` (choose milp, sla, paris, parvagpu or homogeneous-<profile>, e.g. homogeneous-3g)");
        assert_eq!(
            "placements".parse::<Encoding>().unwrap(),
            Encoding::Placements
        );
        assert!("x".parse::<Encoding>().is_err());
    }

    #[test]
    fn a_time_limit_beyond_any_instant_sets_no_deadline() {
        for t in [1e300, f64::INFINITY, f64::NAN, -1.0] {
            let o = PlanOptions {
                time_limit: Some(t),
                ..Default::default()
            };
            assert_eq!(o.with_deadline().deadline, None, "{t}");
        }
        let o = PlanOptions {
            time_limit: Some(60.0),
            ..Default::default()
        };
        assert!(o.with_deadline().deadline.is_some());
    }

    #[test]
    fn milliseconds_print_short() {
        assert_eq!(fmt_ms(20.0), "20");
        assert_eq!(fmt_ms(23.1), "23.1");
        assert_eq!(fmt_ms(0.45), "0.45");
        assert_eq!(fmt_ms(7.530612), "7.531");
    }

    #[test]
    fn defaults_prove_optimality() {
        let o = PlanOptions::default();
        assert_eq!(
            (o.mip_gap, o.encoding, o.time_limit, o.node_limit),
            (0.0, Encoding::Layouts, None, None)
        );
        assert_eq!(o.params, PlanParams::default());
    }
}
