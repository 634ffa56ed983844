//! Gap reports: every heuristic against the MILP's optimum on one scenario.

use crate::planner::SolverKind;
use crate::{data, paris, plan, PlanOptions};
use migopt_models::{Error, Objective, Plan, Scenario, SolveStatus};
use std::time::Instant;

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

/// The planners a gap report compares, the MILP first: PARIS, ParvaGPU and every classic
/// homogeneous cut of the scenario's GPU.
pub fn gap_solvers(scenario: &Scenario, opts: &PlanOptions) -> Result<Vec<SolverKind>, Error> {
    let mut solvers = vec![SolverKind::Milp, SolverKind::Paris, SolverKind::Parvagpu];
    let sizes = data::Sizes::new(scenario, opts.rules)?;
    for p in paris::classic_sizes(&sizes) {
        solvers.push(SolverKind::Homogeneous(sizes.profiles[p].name.to_string()));
    }
    Ok(solvers)
}

/// Runs the MILP and every heuristic (PARIS, ParvaGPU, each homogeneous classic profile)
/// on a scenario and reports each heuristic's distance from the MILP. The MILP's own row
/// comes first with a gap of 0; heuristics that cannot plan the scenario get a row with
/// status `infeasible` and the reason.
pub fn gap_report(scenario: &Scenario, opts: &PlanOptions) -> Result<Vec<GapRow>, Error> {
    let milp = plan(scenario, SolverKind::Milp, opts)?;
    let best = milp.report.objective;
    let mut rows = Vec::new();
    for s in gap_solvers(scenario, opts)? {
        let start = Instant::now();
        let result = if s == SolverKind::Milp {
            Ok(milp.clone())
        } else {
            plan(scenario, s.clone(), opts)
        };
        let seconds = |p: &Plan| {
            if s == SolverKind::Milp {
                p.report.solve_seconds
            } else {
                start.elapsed().as_secs_f64()
            }
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
                    seconds: seconds(&p),
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
