//! Re-planning when load changes: the target plan for a new load that re-cuts the fewest
//! GPUs of the current plan, and a safe transition to it.
//!
//! Any plan for the new load is a possible target (every GPU can be re-cut), so the fewest
//! GPUs a target needs is the from-scratch optimum G* of the min-gpus MILP. Among targets
//! with G* GPUs the re-planner then minimises the GPUs it re-cuts or adds, and then the
//! instances it starts (each one a model load). A GPU is *kept* when its layout and the
//! model of every instance stay as they are; a kept instance runs the best operating point
//! (server-side batch, MPS processes) of its size under the new scenario, which are runtime
//! settings, not a re-cut.
//!
//! The min-gpus re-plan's model, with its math above it, is in module `rates`: GPUs of the
//! current plan counted by type, new cuts in the layout encoding of `supply`, and four
//! lexicographic tiers (the fewest GPUs, the fewest re-cut or added, the fewest instances
//! started, the most headroom) solved one after the other. The transition from the current
//! plan to the target is built in [`transition`]. The SLA-aware target (`--solver sla`,
//! [`replan_with`]) is the same scheme over the pools of the queueing model: module `sla`
//! for min-gpus (slagpus's pools), module `sla_load` for max-load (slaload's pools of batch
//! intervals; tier 1 is `plan --objective sla-capacity` on the scenario's `gpu.count` GPUs).
//!
//! Modules, one job each: `current` reads the current plan into GPU types, `cuts` holds the
//! kept GPUs and new cuts every re-plan model shares, `tiers` the lexicographic tier loop,
//! `target` builds the target plan and every GPU's fate from a solution, `handover` glues
//! the target to its safe transition ([`transition`]: the greedy ordering and the result;
//! `exact`: the search for the fewest spares and steps; `concrete`: its steps on GPUs), and
//! `rates`, `load`, `sla`, `sla_load` are the four re-plans.

mod concrete;
mod current;
mod cuts;
mod exact;
mod handover;
mod load;
mod rates;
mod sla;
mod sla_load;
mod target;
mod tiers;
pub mod transition;

use crate::milp::Outcome;
use crate::{PlanOptions, SolverKind};
use migopt_models::{Assignment, Error, Objective, Plan, Scenario, SolveReport, SolveStatus};
use serde::{Deserialize, Serialize};
pub use target::layout_key;
pub use transition::{Step, StepGpu, Transition};

/// What happens to one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// Layout and assignment unchanged.
    Kept,
    /// In use before and after, with another layout or assignment: drained, re-cut, loaded.
    ReCut,
    /// Unused before, in use after.
    Added,
    /// In use before, unused after (drained).
    Freed,
}

impl Fate {
    /// Lower-case name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Kept => "kept",
            Fate::ReCut => "re-cut",
            Fate::Added => "added",
            Fate::Freed => "freed",
        }
    }
}

/// One GPU before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuChange {
    /// Device index (the current plan's; added GPUs follow them).
    pub gpu: u32,
    /// What happens to it.
    pub fate: Fate,
    /// Its instances in the current plan.
    pub before: Vec<Assignment>,
    /// Its instances in the target plan.
    pub after: Vec<Assignment>,
}

/// One lexicographic tier of the re-plan and how its solve ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// What the tier minimises (`gpus`, `gpus-changed`, `instances-started`).
    pub name: String,
    /// The value reached.
    pub objective: f64,
    /// The best proven bound.
    pub bound: f64,
    /// Relative gap (0 when proven).
    pub gap: f64,
    /// How its solve ended.
    pub status: SolveStatus,
    /// Wall time of the tier, seconds.
    pub seconds: f64,
}

impl Tier {
    /// Tier 1, the from-scratch plan's: its objective `value` (GPUs needed, or the most
    /// load), with the bound, gap and status its report proves, `seconds` after the start.
    fn from_scratch(name: &str, value: f64, report: &SolveReport, seconds: f64) -> Self {
        Tier {
            name: name.into(),
            objective: value,
            bound: report.bound.unwrap_or(value),
            gap: report.gap.unwrap_or(0.0),
            status: report.status,
            seconds,
        }
    }

    /// A maximised tier (solved as the minimum of its negation): value, bound and gap in
    /// the maximised sense.
    fn maximised(name: &str, o: &Outcome) -> Self {
        let value = -o.objective;
        let bound = (-o.bound).max(value);
        Tier {
            name: name.into(),
            objective: value,
            bound,
            gap: if bound > 1e-9 {
                (bound - value) / bound
            } else {
                0.0
            },
            status: o.status,
            seconds: o.seconds,
        }
    }
}

/// Options of a re-plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplanOptions {
    /// Planner options (objective, planning parameters, rules, limits).
    pub plan: PlanOptions,
    /// Idle GPUs beside the plan's that a transition may borrow (they end idle again).
    pub spare_gpus: u32,
    /// GPUs beyond the from-scratch optimum the target may use when that re-cuts fewer GPUs
    /// (0: the fewest GPUs come first, strictly).
    pub gpu_slack: u32,
    /// Capacity each model must keep during every transition step, requests/s, in the new
    /// scenario's model order (normally min(old, new) rate); `None`: min(the current plan's
    /// provisioned rate, the new rate). Either way capped at what the current plan gives
    /// each model before the first step (no transition can keep more).
    pub required: Option<Vec<f64>>,
    /// Max-load only: the fraction of the from-scratch capacity λ* the target may give up
    /// when that re-cuts fewer GPUs (0: the most load first, strictly).
    pub load_slack: f64,
}

impl ReplanOptions {
    /// The max-load re-plans' load slack must be a fraction in [0, 1).
    fn check_load_slack(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.load_slack) {
            return Err(Error::Invalid(format!(
                "load slack {} must be in [0, 1)",
                self.load_slack
            )));
        }
        Ok(())
    }
}

/// A re-plan: the target plan, what happens to each GPU, how well it is proven, and the
/// transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replan {
    /// The target plan (GPU indices are the current plan's; added GPUs follow them).
    pub target: Plan,
    /// Every GPU used before or after.
    pub gpus: Vec<GpuChange>,
    /// GPUs the target uses.
    pub gpus_used: u32,
    /// GPUs re-cut or added.
    pub gpus_changed: u32,
    /// Instances the target starts (on re-cut and added GPUs).
    pub instances_started: u32,
    /// The lexicographic tiers, in order.
    pub tiers: Vec<Tier>,
    /// How the re-plan ended: optimal only if every tier is proven.
    pub status: SolveStatus,
    /// The ordered transition from the current plan to the target.
    pub transition: Transition,
}

/// Re-plans `current` for the load of `scenario`: under min-gpus (rate targets) the fewest
/// GPUs first, under max-load (traffic shares, on the scenario's `gpu.count` GPUs) the most load
/// first (see [`load`]); then the fewest GPUs re-cut or added, then the fewest instances
/// started.
///
/// Errors: [`Error::Infeasible`] when no plan serves the new load, or no transition keeps
/// every model's required capacity with the spare GPUs given; [`Error::Invalid`] when the
/// current plan does not fit the scenario (another GPU kind, profiles outside the rules).
pub fn replan(current: &Plan, scenario: &Scenario, opts: &ReplanOptions) -> Result<Replan, Error> {
    replan_with(current, scenario, SolverKind::Milp, opts)
}

/// [`replan`] with the target's planner: [`SolverKind::Milp`] (the fluid model, `rates`) or
/// [`SolverKind::Sla`] (the SLA-aware target, whose pools meet every model's SLO at the
/// percentile under the queueing model: [`sla`] for min-gpus, [`sla_load`] for max-load).
///
/// Errors: as [`replan`], and [`Error::Invalid`] for another planner.
pub fn replan_with(
    current: &Plan,
    scenario: &Scenario,
    solver: SolverKind,
    opts: &ReplanOptions,
) -> Result<Replan, Error> {
    if current.gpu != scenario.gpu {
        return Err(Error::Invalid(format!(
            "the current plan is for {} but scenario {} is for {}",
            current.gpu, scenario.name, scenario.gpu
        )));
    }
    match (solver, opts.plan.objective) {
        (SolverKind::Milp, Objective::MinGpus) => rates::replan(current, scenario, opts),
        (SolverKind::Milp, Objective::MaxLoad) => load::replan(current, scenario, opts),
        (SolverKind::Sla, Objective::MinGpus) => sla::replan(current, scenario, opts),
        (SolverKind::Sla, Objective::MaxLoad) => sla_load::replan(current, scenario, opts),
        (other, _) => Err(Error::Invalid(format!(
            "re-plan: --solver {other} has no re-planner (choose milp or sla)"
        ))),
    }
}
