//! A thin layer between the formulations and HiGHS.
//!
//! Formulations are written with good_lp (named variables, one function per constraint
//! family). good_lp's own `solve()` hides the objective value, the best bound and the gap, so
//! the problem is handed to the `highs` crate through `into_inner()` (see
//! `shared/notes/highs.md`): options are set there, and the solution is read back by column.
//! Columns are numbered in the order variables are added, which is why every variable goes
//! through [`Builder`], which remembers its column.

use good_lp::solvers::highs::highs;
use good_lp::{variable, Constraint, Expression, ProblemVariables, SolverModel, Variable};
use highs::{HighsModelStatus, HighsSolutionStatus};
use migopt_models::{Error, SolveStatus};
use std::time::Instant;

/// A variable and its HiGHS column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Var {
    /// The good_lp handle, for building expressions.
    pub v: Variable,
    /// Column index, for reading the solution.
    pub col: usize,
}

impl From<Var> for Expression {
    fn from(v: Var) -> Expression {
        Expression::from(v.v)
    }
}

/// Which way to optimise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sense {
    Maximise,
    Minimise,
}

/// Solver controls shared by every solve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Control {
    /// Wall-clock limit, seconds.
    pub time_limit: Option<f64>,
    /// Relative MIP gap at which to stop (0 = prove optimality).
    pub mip_gap: f64,
    /// Branch-and-bound node limit, for deterministic tests.
    pub node_limit: Option<u64>,
    /// Solve the LP relaxation instead (integrality dropped).
    pub relax: bool,
    /// Skip HiGHS's RINS and RENS sub-MIP heuristics. On the max-load MILP in the layout
    /// encoding they spend half the solve re-finding the incumbent the root already has
    /// (measured: 0.40 s → 0.25 s for 8 GPUs, 35–45% less for 1–16 GPUs); in the placement
    /// encoding they help (2–8 GPUs: 0.4–0.6 s → 0.7–1.0 s without them), and on min-gpus
    /// they are what finds tight packings (1,000 GPUs: 7.7 s → over 20 s without them). So
    /// only max-load in the layout encoding sets this.
    pub lean: bool,
    /// Search for no solutions: HiGHS's primal heuristics off (`mip_heuristic_effort` 0) and
    /// its sub-MIPs too ([`Control::lean`]), for a solve whose MIP start is already the
    /// incumbent it needs and whose work is the proof, or a few nodes of a tie-break. The
    /// re-plan's instances-started tier after its polished start and its headroom tie-break
    /// set it (`replan_100_gpus_11_models`: 2.4-2.5 s → 1.8-2.0 s, with the same or more
    /// headroom on 8 current plans; BENCHMARKS.md, "The waste budget").
    pub proof_only: bool,
    /// HiGHS's `mip_lp_age_limit` (default 10): after how many rounds without being tight a
    /// cut leaves the LP. The min-gpus MILP sets 5: its root separation adds hundreds of
    /// cuts that mostly stop binding, and dropping them sooner makes each LP cheaper
    /// (measured side by side in CPU time: 100 models proven 20–25% faster, 1,000 GPUs at
    /// 0.1% 10% faster; BENCHMARKS.md).
    pub lp_age_limit: Option<u32>,
}

impl Control {
    /// Controls for a plain LP solve.
    pub fn lp() -> Self {
        Self {
            time_limit: None,
            mip_gap: 0.0,
            node_limit: None,
            relax: false,
            lean: false,
            proof_only: false,
            lp_age_limit: None,
        }
    }
}

/// What a solve produced.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Optimal, gap-limit or time-limit (a node limit counts as a time limit).
    pub status: SolveStatus,
    /// Column values of the best solution.
    pub values: Vec<f64>,
    /// Objective value of that solution.
    pub objective: f64,
    /// Best proven bound (the objective itself for an LP).
    pub bound: f64,
    /// Relative gap as HiGHS reports it (0 for an LP).
    pub gap: f64,
    /// Wall time of HiGHS's run.
    pub seconds: f64,
}

impl Outcome {
    /// Value of a variable in the solution.
    pub fn val(&self, v: Var) -> f64 {
        self.values.get(v.col).copied().unwrap_or(0.0)
    }
    /// Value of an integer variable, rounded.
    pub fn int(&self, v: Var) -> u32 {
        let x = self.val(v).round();
        if x <= 0.0 {
            0
        } else {
            x as u32
        }
    }
    /// Values of per-(model, size) count variables, 0 where a pair has none.
    pub fn counts(&self, n: &[Vec<Option<Var>>]) -> Vec<Vec<u32>> {
        n.iter()
            .map(|nm| nm.iter().map(|v| v.map_or(0, |v| self.int(v))).collect())
            .collect()
    }
}

/// Why a solve gave no solution.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// HiGHS proved that no solution exists.
    Infeasible,
    /// A limit stopped the run before any solution was found.
    NoSolution,
    /// HiGHS failed (a bug or a numerical breakdown).
    Solver(String),
}

impl Failure {
    /// Turns the failure into a user-facing error, naming what was being solved.
    pub fn into_error(self, what: &str) -> Error {
        match self {
            Failure::Infeasible => Error::Infeasible(format!("{what}: no plan satisfies the constraints")),
            Failure::NoSolution => Error::Infeasible(format!(
                "{what}: the time or node limit stopped the solver before it found any plan; raise the limit"
            )),
            Failure::Solver(m) => Error::Internal(format!("{what}: solver failure: {m}")),
        }
    }
}

/// Collects variables (remembering their columns) and constraints.
pub(crate) struct Builder {
    vars: ProblemVariables,
    constraints: Vec<Constraint>,
}

impl Builder {
    pub fn new() -> Self {
        Self {
            vars: ProblemVariables::new(),
            constraints: Vec::new(),
        }
    }

    fn add(&mut self, def: good_lp::VariableDefinition) -> Var {
        let col = self.vars.len();
        Var {
            v: self.vars.add(def),
            col,
        }
    }

    /// A continuous variable in `[lo, hi]` (`hi` may be infinite).
    pub fn cont(&mut self, name: String, lo: f64, hi: f64) -> Var {
        let d = variable().name(name).min(lo);
        self.add(if hi.is_finite() { d.max(hi) } else { d })
    }

    /// An integer variable in `[0, hi]`.
    pub fn int(&mut self, name: String, hi: f64) -> Var {
        self.add(variable().name(name).integer().min(0).max(hi))
    }

    /// A binary variable.
    pub fn bin(&mut self, name: String) -> Var {
        self.add(variable().name(name).binary())
    }

    /// Adds a constraint.
    pub fn push(&mut self, c: Constraint) {
        self.constraints.push(c);
    }

    /// Solves with HiGHS under the given controls.
    pub fn solve(
        self,
        sense: Sense,
        objective: Expression,
        ctl: &Control,
    ) -> Result<Outcome, Failure> {
        self.solve_from(sense, objective, ctl, None)
    }

    /// Number of variables (columns) so far.
    pub fn num_vars(&self) -> usize {
        self.vars.len()
    }

    /// Solves with HiGHS, starting from a known solution (column values, as a MIP start;
    /// HiGHS ignores it if it is not feasible).
    pub fn solve_from(
        self,
        sense: Sense,
        objective: Expression,
        ctl: &Control,
        start: Option<&[f64]>,
    ) -> Result<Outcome, Failure> {
        let unsolved = match sense {
            Sense::Maximise => self.vars.maximise(objective),
            Sense::Minimise => self.vars.minimise(objective),
        };
        let problem = unsolved.using(highs).with_all(self.constraints);
        let mut model = problem
            .try_into_inner()
            .map_err(|e| Failure::Solver(e.to_string()))?;
        configure(&mut model, ctl)?;
        if let Some(cols) = start {
            // A start HiGHS cannot use only costs it the search it would have done anyway.
            let _ = model.try_set_solution(Some(cols), None, None, None);
            // HiGHS 1.16 compares a MIP start's objective in the presolved space (where
            // presolve has moved a constant out of the objective) with bounds in the original
            // space: with a good start it prunes the root and reports the start as optimal
            // (seen on the 1,000-GPU benchmark: "optimal" 968 GPUs where 963 exist). Without
            // presolve the start is compared correctly, and the solve is faster anyway.
            set_option(&mut model, "presolve", "off")?;
        }
        let began = Instant::now();
        let solved = model
            .try_solve()
            .map_err(|e| Failure::Solver(format!("{e:?}")))?;
        outcome(&solved, ctl, began.elapsed().as_secs_f64())
    }
}

/// HiGHS's thread count for every solve. With more threads HiGHS 1.16 searches the
/// branch-and-bound tree in parallel, and which of several equally good solutions it returns
/// then depends on the thread count: `replan --threads 4` returned another target than
/// `--threads 1` on 5 of 6 ParvaGPU re-plans (BENCHMARKS.md, "One thread for HiGHS"), which
/// breaks "the same input gives the same result at any thread count". It was not faster
/// either: 16 threads took 29.1 s against 29.5 s on the 100-GPU re-plan, and 2 threads on the
/// 2-core VM 1 min 46 s against 37.5 s. One thread per solve also lets solves run side by side
/// on rayon's threads (HiGHS keeps one scheduler per OS thread and cannot change its size).
pub(crate) const HIGHS_THREADS: i32 = 1;

/// Sets one HiGHS option, or says which one HiGHS refused.
fn set_option<V: highs::HighsOptionValue>(
    model: &mut highs::Model,
    key: &str,
    value: V,
) -> Result<(), Failure> {
    model
        .try_set_option(key, value)
        .map_err(|_| Failure::Solver(format!("HiGHS refused option {key}")))
}

/// HiGHS options from the controls (quiet unless `MIGOPT_HIGHS_LOG` is set).
///
/// HiGHS always runs on one thread ([`HIGHS_THREADS`]), and its `random_seed` is 1, so every
/// solve is deterministic and a plan does not depend on the machine or on `--threads`;
/// `MIGOPT_HIGHS_SEED=<n>` changes the seed,
/// for studying how a solve's time depends on HiGHS's search path (BENCHMARKS.md, "replan
/// speed": equally optimal current plans re-plan in 2 s to over 300 s).
fn configure(model: &mut highs::Model, ctl: &Control) -> Result<(), Failure> {
    model.make_quiet();
    if std::env::var_os("MIGOPT_HIGHS_LOG").is_some() {
        let _ = model.try_set_option("output_flag", true);
        let _ = model.try_set_option("log_to_console", true);
    }
    set_option(model, "threads", HIGHS_THREADS)?;
    let seed = std::env::var("MIGOPT_HIGHS_SEED")
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|s| *s >= 0)
        .unwrap_or(1);
    set_option(model, "random_seed", seed)?;
    set_option(model, "mip_rel_gap", ctl.mip_gap.max(0.0))?;
    set_option(model, "mip_abs_gap", MIP_ABS_GAP)?;
    if let Some(t) = ctl.time_limit {
        set_option(model, "time_limit", t.max(0.0))?;
    }
    if let Some(n) = ctl.node_limit {
        set_option(model, "mip_max_nodes", i32::try_from(n).unwrap_or(i32::MAX))?;
    }
    if ctl.lean || ctl.proof_only {
        set_option(model, "mip_heuristic_run_rins", false)?;
        set_option(model, "mip_heuristic_run_rens", false)?;
    }
    if ctl.proof_only {
        set_option(model, "mip_heuristic_effort", 0.0)?;
    }
    if let Some(a) = ctl.lp_age_limit {
        set_option(
            model,
            "mip_lp_age_limit",
            i32::try_from(a).unwrap_or(i32::MAX),
        )?;
    }
    if ctl.relax {
        set_option(model, "solve_relaxation", true)?;
    }
    Ok(())
}

/// What HiGHS's model status means for us: a solve status, or why there is no solution.
fn status_of(status: HighsModelStatus) -> Result<SolveStatus, Failure> {
    match status {
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
            Err(Failure::Infeasible)
        }
        HighsModelStatus::Optimal
        | HighsModelStatus::ObjectiveBound
        | HighsModelStatus::ObjectiveTarget => Ok(SolveStatus::Optimal),
        HighsModelStatus::ReachedTimeLimit
        | HighsModelStatus::ReachedSolutionLimit
        | HighsModelStatus::ReachedInterrupt
        | HighsModelStatus::ReachedIterationLimit
        | HighsModelStatus::ReachedMemoryLimit => Ok(SolveStatus::TimeLimit),
        other => Err(Failure::Solver(format!(
            "HiGHS ended with status {other:?}"
        ))),
    }
}

/// HiGHS's absolute MIP gap (its default, set explicitly): a solve whose bound is within
/// this of its objective is proven optimal, whatever the relative gap.
const MIP_ABS_GAP: f64 = 1e-6;

/// The outcome of a finished solve: its solution, objective, bound and gap (an optimum HiGHS
/// reached with a gap above the one asked, and above [`MIP_ABS_GAP`] in absolute terms, is
/// `GapLimit`).
fn outcome(solved: &highs::SolvedModel, ctl: &Control, seconds: f64) -> Result<Outcome, Failure> {
    let status = status_of(solved.status())?;
    if solved.primal_solution_status() != HighsSolutionStatus::Feasible {
        return Err(Failure::NoSolution);
    }
    let values = solved.get_solution().columns().to_vec();
    let objective = solved.objective_value();
    let is_mip = !ctl.relax && solved.mip_gap().is_finite();
    let (bound, gap) = if is_mip {
        let b = solved
            .double_info_value(c"mip_dual_bound")
            .unwrap_or(f64::NAN);
        let g = solved.mip_gap();
        (b, if g.is_finite() { g.max(0.0) } else { 0.0 })
    } else {
        (objective, 0.0)
    };
    // Within HiGHS's absolute gap is proven (an unknown bound is not).
    let abs_closed = (bound - objective).abs() <= MIP_ABS_GAP;
    let status = match status {
        SolveStatus::Optimal
            if (gap > ctl.mip_gap.max(0.0) + 1e-9 && !abs_closed)
                || (gap > 1e-9 && ctl.mip_gap > 0.0) =>
        {
            SolveStatus::GapLimit
        }
        s => s,
    };
    Ok(Outcome {
        status,
        values,
        objective,
        bound,
        gap,
        seconds,
    })
}

/// Sum of `coef · var` terms as an expression.
pub(crate) fn lin(terms: impl IntoIterator<Item = (f64, Var)>) -> Expression {
    let mut e = Expression::from(0.0);
    for (c, v) in terms {
        e.add_mul(c, v.v);
    }
    e
}
