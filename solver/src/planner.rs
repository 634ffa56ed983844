//! The seam every planner plugs into.
//!
//! A planner turns one scenario, read once into the view its objective needs
//! ([`LoadData`] for max-load, [`RateData`] for min-gpus), into GPUs and a report; plan
//! finishing ([`crate::finish`]) turns that into a validated [`Plan`](migopt_models::Plan).
//! Each planner lives in one module that owns its whole path:
//!
//! | planner | module |
//! |---|---|
//! | the exact MILPs | [`crate::exact`] (formulations in `maxload`, `mingpus`) |
//! | PARIS | [`crate::paris`] |
//! | ParvaGPU's allocator | [`crate::parvagpu`] |
//! | homogeneous cuts | [`crate::homogeneous`] |
//!
//! A new planner is a new [`SolverKind`] variant, a type implementing [`Planner`] in its
//! own module, and one line in [`SolverKind::planner`].

use crate::data::{LoadData, RateData};
use crate::fluid::FluidEvaluation;
use crate::PlanOptions;
use migopt_models::{Error, GpuPlan, ModelRate, PlanParams, Scenario, SolveReport};
use std::time::Instant;

/// Which planner to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SolverKind {
    /// The exact MILP (HiGHS), in the encoding [`PlanOptions::encoding`] selects.
    Milp,
    /// PARIS (DAC 2022), reconstructed; see [`crate::paris`].
    Paris,
    /// ParvaGPU's allocator (SC 2024), reimplemented; see [`crate::parvagpu`].
    Parvagpu,
    /// Every GPU cut into one classic profile, named as `3g`, `3` or `3g.40gb`.
    Homogeneous(String),
    /// The SLA-aware MILP: optimal for the load (or GPUs) at which every model meets its SLA
    /// at a percentile, under a queueing model; see [`crate::SlaOptions`].
    Sla,
}

impl SolverKind {
    /// The name written into plans and reports (`milp`, `paris`, `parvagpu`,
    /// `homogeneous-3g`).
    pub fn name(&self) -> String {
        match self {
            SolverKind::Milp => "milp".into(),
            SolverKind::Paris => "paris".into(),
            SolverKind::Parvagpu => "parvagpu".into(),
            SolverKind::Sla => "sla".into(),
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

    /// The planner that answers for this kind.
    pub(crate) fn planner(&self) -> Box<dyn Planner + '_> {
        match self {
            SolverKind::Milp => Box::new(crate::exact::Exact),
            SolverKind::Paris => Box::new(crate::paris::Paris),
            SolverKind::Parvagpu => Box::new(crate::parvagpu::Parvagpu),
            SolverKind::Homogeneous(p) => Box::new(crate::homogeneous::Homogeneous(p)),
            SolverKind::Sla => Box::new(crate::sla::SlaAware),
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
            "sla" => Ok(SolverKind::Sla),
            other => match other.strip_prefix("homogeneous-") {
                Some(p) if !p.is_empty() => Ok(SolverKind::Homogeneous(s["homogeneous-".len()..].to_string())),
                _ => Err(Error::Invalid(format!(
                    "unknown solver `{s}` (choose milp, sla, paris, parvagpu or homogeneous-<profile>, e.g. homogeneous-3g)"
                ))),
            },
        }
    }
}

/// One planning job: the scenario, its view for the objective, the options, and when
/// planning started (heuristics report their time from there).
pub(crate) struct Job<'a, D> {
    pub scenario: &'a Scenario,
    pub data: &'a D,
    pub opts: &'a PlanOptions,
    pub started: Instant,
}

/// What a max-load planner produces: its GPUs (batches are filled in by finishing), the
/// fluid evaluation of their instances, and how the plan was obtained.
pub(crate) struct LoadPlan {
    pub gpus: Vec<GpuPlan>,
    pub eval: FluidEvaluation,
    pub report: SolveReport,
}

/// What a min-gpus planner produces: its GPUs with (batch, procs) set, the rate each model
/// is provisioned for (`None`: finishing computes it from the instances), and the report.
pub(crate) struct RatePlan {
    pub gpus: Vec<GpuPlan>,
    pub model_rates: Option<Vec<ModelRate>>,
    pub report: SolveReport,
}

/// A partition planner: one answer per objective.
pub(crate) trait Planner {
    /// Max-load: on the scenario's GPUs, the largest total query rate.
    fn max_load(&self, job: &Job<LoadData>) -> Result<LoadPlan, Error>;
    /// Min-gpus: the fewest GPUs that serve every model's rate within its SLO.
    fn min_gpus(&self, job: &Job<RateData>) -> Result<RatePlan, Error>;
    /// The parameters the planner's view of the scenario is read with (the options' own,
    /// unless the planner judges feasibility by other means).
    fn params(&self, p: &PlanParams) -> PlanParams {
        *p
    }
}
