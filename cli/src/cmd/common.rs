//! What several commands share: finding the scenario (a file or the shipped default),
//! planner options from flags, progress bars.

use super::CliError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use migopt_models::input::Inputs;
use migopt_models::{Objective, Plan, PlanParams, Scenario};
use migopt_solver::{Encoding, PlanOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// A scenario file (recorded in `inputs` with the profiles it names), or the shipped
/// default scenario when none is given.
pub fn load_scenario(path: Option<&Path>, inputs: &mut Inputs) -> Result<Scenario, CliError> {
    Ok(match path {
        Some(p) => Scenario::load_recording(p, inputs)?,
        None => migopt_profiles::default_scenario()?,
    })
}

/// The objective a scenario asks for unless told otherwise: rate targets mean fewest GPUs,
/// traffic shares mean most load.
pub fn default_objective(s: &Scenario) -> Objective {
    if s.rates().is_some() {
        Objective::MinGpus
    } else {
        Objective::MaxLoad
    }
}

/// Planner flags shared by `plan`, `gap`, `simulate` and `capacity`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanFlags {
    /// max-load (largest query rate the server carries), min-gpus (fewest GPUs meeting
    /// every rate target) or sla-capacity (largest rate at which every model meets its SLA
    /// at the target percentile: the SLA-aware planner, checked by simulation). Default:
    /// min-gpus when the scenario gives rates, else max-load.
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveFlag>,
    /// MILP encoding of the MIG rules: layouts (counts per maximal layout) or placements
    /// (binaries per GPU, profile and start).
    #[arg(long, default_value = "layouts", value_parser = parse_encoding)]
    pub encoding: Encoding,
    /// Stop planning after about this many seconds (reports the gap reached).
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Stop at this relative MIP gap (0 proves optimality).
    #[arg(long, default_value_t = 0.0)]
    pub mip_gap: f64,
    /// Highest planned utilisation of an instance (rho), max-load.
    #[arg(long, default_value_t = PlanParams::default().max_utilisation)]
    pub rho: f64,
    /// A query class may use a size only if its latency there is at most beta x SLA, max-load.
    #[arg(long, default_value_t = PlanParams::default().sla_fraction)]
    pub beta: f64,
    /// An instance is feasible when its batch latency < slo-factor x SLO, min-gpus
    /// (0.45 = 0.9 x SLO / 2, ParvaGPU's rule).
    #[arg(long, default_value_t = PlanParams::default().slo_factor)]
    pub slo_factor: f64,
    /// Plan each instance to carry at most this fraction of its throughput, min-gpus
    /// (1 = ParvaGPU's rule; lower leaves queueing headroom).
    #[arg(long, default_value_t = 1.0)]
    pub headroom: f64,
    /// Also use double-memory 1g and +me profiles.
    #[arg(long)]
    pub all_profiles: bool,
    /// Drivers before R510: no 4g beside 3g.
    #[arg(long)]
    pub pre_r510: bool,
    /// min-gpus: use at most the scenario's gpu.count GPUs.
    #[arg(long)]
    pub cap_gpus: bool,
    /// min-gpus: run at most this many MPS processes per instance (ParvaGPU's README: 3);
    /// the scenario's `[options] max_procs` applies too, the smaller wins.
    #[arg(long)]
    pub max_procs: Option<u32>,
}

/// The planner (`plan`, `replan`).
#[derive(clap::Args, Debug, Clone)]
pub struct SolverFlag {
    /// milp (exact, fluid model), sla (exact, queueing model: p99 within the SLA), paris,
    /// parvagpu, or homogeneous-<1g|2g|3g|4g|7g>. Default: milp, or sla with
    /// --objective sla-capacity. `replan` and `replay-day` take milp or sla (`replan
    /// --solver sla` plans min-gpus or max-load targets and checks them by simulation).
    #[arg(long)]
    pub solver: Option<String>,
}

/// What `--objective` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveFlag {
    /// Largest query rate (fluid model).
    MaxLoad,
    /// Fewest GPUs meeting every rate target.
    MinGpus,
    /// Largest query rate meeting every SLA at the target percentile (SLA-aware, verified).
    SlaCapacity,
}

impl ObjectiveFlag {
    /// The planning objective behind the flag.
    pub fn objective(self) -> Objective {
        match self {
            ObjectiveFlag::MaxLoad | ObjectiveFlag::SlaCapacity => Objective::MaxLoad,
            ObjectiveFlag::MinGpus => Objective::MinGpus,
        }
    }
}

/// SLA-aware planning and its check by simulation (`plan`, `gap`).
#[derive(clap::Args, Debug, Clone)]
pub struct CheckFlags {
    /// Check the plan by simulation at its promised load; with the sla solver, cut the
    /// models that miss and plan again until verified (implied by --objective sla-capacity
    /// and by `replan --solver sla`).
    #[arg(long)]
    pub verify: bool,
    /// The percentile every model must meet its SLA at: p99 (default), p95, p90 or p99.9.
    #[arg(long, default_value = "p99", value_parser = parse_target)]
    pub target: f64,
    /// Safety margin the sla solver takes off the miss budget (0.1: plans for 90% of it).
    #[arg(long, default_value_t = 0.1)]
    pub sla_margin: f64,
    /// Scheduler the check simulates: elsa, an ELSA variant (elsa-greedy, elsa-margin,
    /// elsa-protect, elsa-plan, elsa-start), fifs, jsq, round-robin or random.
    #[arg(long, default_value = "elsa")]
    pub scheduler: String,
    /// Simulation replications of the check (95% intervals).
    #[arg(long, default_value_t = 5)]
    pub replications: u32,
    /// Queries per replication of the check.
    #[arg(long, default_value_t = 100_000)]
    pub queries: u64,
    /// Seed of the check's simulations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads of the check's simulations (default: every core). Neither the plan
    /// nor the check depends on it: HiGHS solves every MILP on one thread, and each
    /// replication's random stream comes from the seed alone.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `p99` → the miss budget 0.01.
fn parse_target(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .trim_start_matches(['p', 'P'])
        .parse()
        .map_err(|_| format!("`{s}` is not a percentile like p99"))?;
    if !(p > 50.0 && p < 100.0) {
        return Err(format!("percentile {p} must be between 50 and 100"));
    }
    Ok(1.0 - p / 100.0)
}

impl CheckFlags {
    /// The simulation check's options.
    pub fn check(&self) -> Result<migopt_verify::CheckOptions, CliError> {
        if self.replications < 2 {
            return Err(CliError::Input(migopt_models::Error::Invalid(
                "--replications must be at least 2 for 95% intervals".into(),
            )));
        }
        self.check_threads()?;
        migopt_models::limits::check_queries(self.queries)
            .map_err(|m| CliError::Input(migopt_models::Error::Invalid(m)))?;
        Ok(migopt_verify::CheckOptions {
            scheduler: self.scheduler.parse()?,
            replications: self.replications,
            queries: self.queries,
            seed: self.seed,
            threads: self.threads,
            ..Default::default()
        })
    }

    /// Refuses a `--threads` beyond the machine's bound (every command that takes the flag
    /// checks it, whether or not it simulates).
    pub fn check_threads(&self) -> Result<(), CliError> {
        if let Some(t) = self.threads {
            check_threads(t as u64)?;
        }
        Ok(())
    }

    /// The SLA planner's target and margin, into planner options.
    pub fn apply(&self, opts: &mut PlanOptions) -> Result<(), CliError> {
        if !(0.0..1.0).contains(&self.sla_margin) {
            return Err(CliError::Input(migopt_models::Error::Invalid(format!(
                "--sla-margin {} must be at least 0 and below 1",
                migopt_models::limits::num(self.sla_margin)
            ))));
        }
        opts.sla.budget = self.target;
        opts.sla.margin = self.sla_margin;
        Ok(opts.sla.check()?)
    }
}

fn parse_encoding(s: &str) -> Result<Encoding, String> {
    s.parse().map_err(|e: migopt_models::Error| e.to_string())
}

impl PlanFlags {
    /// Planner options for a scenario, checking the numbers a user can get wrong.
    pub fn options(&self, s: &Scenario) -> Result<PlanOptions, CliError> {
        use migopt_models::limits::num;
        let bad = |m: String| CliError::Input(migopt_models::Error::Invalid(m));
        if !(self.rho > 0.0 && self.rho <= 1.0) {
            return Err(bad(format!("--rho {} must be in (0, 1]", num(self.rho))));
        }
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return Err(bad(format!("--beta {} must be positive", num(self.beta))));
        }
        if !(self.slo_factor > 0.0 && self.slo_factor.is_finite()) {
            return Err(bad(format!(
                "--slo-factor {} must be positive",
                num(self.slo_factor)
            )));
        }
        if !(self.headroom > 0.0 && self.headroom <= 1.0) {
            return Err(bad(format!(
                "--headroom {} must be in (0, 1]",
                num(self.headroom)
            )));
        }
        if !(0.0..1.0).contains(&self.mip_gap) {
            return Err(bad(format!(
                "--mip-gap {} must be in [0, 1)",
                num(self.mip_gap)
            )));
        }
        if let Some(t) = self.time_limit.filter(|t| !(*t > 0.0 && t.is_finite())) {
            return Err(bad(format!(
                "--time-limit {} must be a positive number of seconds",
                num(t)
            )));
        }
        if let Some(p) = self
            .max_procs
            .filter(|p| !(1..=migopt_models::limits::MAX_PROCS).contains(p))
        {
            return Err(bad(format!(
                "--max-procs {p} must be between 1 and {}",
                migopt_models::limits::MAX_PROCS
            )));
        }
        let objective = self
            .objective
            .map_or_else(|| default_objective(s), |o| o.objective());
        Ok(PlanOptions {
            objective,
            params: PlanParams {
                max_utilisation: self.rho,
                sla_fraction: self.beta,
                slo_factor: self.slo_factor,
                rate_headroom: self.headroom,
                max_procs: self.max_procs,
            },
            time_limit: self.time_limit,
            mip_gap: self.mip_gap,
            encoding: self.encoding,
            rules: migopt_models::LayoutRules {
                all_profiles: self.all_profiles,
                pre_r510: self.pre_r510,
            },
            node_limit: None,
            gpu_cap: self.cap_gpus.then_some(s.gpu_count),
            sla: Default::default(),
            deadline: None,
        })
    }
}

/// A `--threads` value, at most [`migopt_models::limits::MAX_THREADS_PER_CORE`] per core.
pub fn check_threads(threads: u64) -> Result<usize, CliError> {
    migopt_models::limits::check_threads("--threads", threads)
        .map_err(|m| CliError::Input(migopt_models::Error::Invalid(m)))
}

/// A plan file and the scenario it was made for: `--scenario`, else the path recorded in
/// the plan, else the shipped default for plans of the default scenario. The plan is
/// checked against the scenario here, so every message names the plan file. Every file
/// read is recorded in `inputs`.
pub fn load_plan(
    path: &Path,
    scenario: Option<&Path>,
    inputs: &mut Inputs,
) -> Result<(Plan, Scenario), CliError> {
    let (plan, text) = read_plan(path, inputs)?;
    let scen = match (scenario, plan.scenario_path.as_deref()) {
        (Some(p), _) => Scenario::load_recording(p, inputs)?,
        (None, Some(p)) => Scenario::load_recording(&resolve_recorded(path, p), inputs)?,
        (None, None) if plan.scenario == "default" => migopt_profiles::default_scenario()?,
        (None, None) => {
            return Err(CliError::Input(migopt_models::Error::Invalid(format!(
                "{}: the plan does not say which scenario it serves; pass --scenario",
                path.display()
            ))))
        }
    };
    check_plan(&plan, &text, path, &scen)?;
    Ok((plan, scen))
}

/// A plan file, parsed, and its text (for the line numbers of later errors); the file is
/// recorded in `inputs`.
pub fn read_plan(path: &Path, inputs: &mut Inputs) -> Result<(Plan, String), CliError> {
    let text = inputs.read_text(path, migopt_models::limits::PLAN_FILE)?;
    let plan = Plan::from_json(&text, path)?;
    Ok((plan, text))
}

/// Checks a plan read from `path` (its `text`) against a scenario; an error names the
/// plan file's line and field.
pub fn check_plan(plan: &Plan, text: &str, path: &Path, scen: &Scenario) -> Result<(), CliError> {
    plan.check_against(path, scen)
        .map_err(|e| migopt_models::plan::locate(e, text))?;
    Ok(())
}

/// A path recorded in a file written by migopt (a plan's scenario, a served run's plan and
/// scenario): relative to that file, as [`path_from`] writes it, where that exists; else as
/// given (files written before recorded it relative to the folder migopt ran in).
pub fn resolve_recorded(file: &Path, recorded: &str) -> PathBuf {
    let p = PathBuf::from(recorded);
    if p.is_absolute() {
        return p;
    }
    file.parent()
        .map(|d| d.join(&p))
        .filter(|q| q.exists())
        .unwrap_or(p)
}

/// The path a plan records for its scenario `p`: relative to the plan file `out` when the
/// plan is written ([`path_from`]), else as given.
pub fn recorded_path(p: &Path, out: Option<&Path>) -> String {
    match out {
        Some(out) => path_from(p, out),
        None => p.display().to_string(),
    }
}

/// `p`, a path given on the command line, as the file `file` that names it records it:
/// relative to `file`'s folder, so that [`resolve_recorded`] finds it from any working
/// folder (as given when the working folder cannot be read).
pub fn path_from(p: &Path, file: &Path) -> String {
    let Ok(cwd) = std::env::current_dir() else {
        return p.display().to_string();
    };
    let target = std::fs::canonicalize(p).unwrap_or_else(|_| lexical(&cwd.join(p)));
    let dir = lexical(&cwd.join(file));
    let dir = dir.parent().unwrap_or(&dir);
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (t, d): (Vec<_>, Vec<_>) = (target.components().collect(), dir.components().collect());
    let common = t.iter().zip(&d).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return target.display().to_string();
    }
    let mut rel: PathBuf = d[common..].iter().map(|_| "..").collect();
    rel.extend(&t[common..]);
    rel.display().to_string()
}

/// `p` with `.` and `..` resolved without reading the file system.
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A progress bar on standard error that appears only if the work runs longer than a
/// second, stderr is a terminal, and the output is not JSON.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    enabled: bool,
    shown: Mutex<bool>,
}

impl Progress {
    /// A bar for `what`, shown only when `enabled` and stderr is a terminal.
    pub fn new(what: &str, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Self {
            bar,
            start: Instant::now(),
            enabled: enabled && std::io::stderr().is_terminal(),
            shown: Mutex::new(false),
        }
    }

    /// Progress callback for the simulator and the reproductions.
    pub fn update(&self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        if let Ok(mut shown) = self.shown.lock() {
            if !*shown && self.start.elapsed().as_secs_f64() > 1.0 {
                self.bar.set_draw_target(ProgressDrawTarget::stderr());
                *shown = true;
            }
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
