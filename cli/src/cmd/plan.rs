//! `migopt plan`: decide how every GPU is cut and which model each instance serves.

use super::common::{
    load_scenario, recorded_path, CheckFlags, ObjectiveFlag, PlanFlags, SolverFlag,
};
use super::{to_json, CliError};
use crate::out::{slot_bar, table, table_fit, term_width, write_all};
use migopt_models::input::Inputs;
use migopt_models::{GpuPlan, GpuSpec, Layout, Objective, Plan, Scenario, SolveStatus};
use migopt_solver::SolverKind;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario TOML. Default: the shipped 8x H100-80GB scenario (profiles/h100-80gb/default.toml).
    scenario: Option<PathBuf>,
    #[command(flatten)]
    solver: SolverFlag,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    check: CheckFlags,
    /// Print the plan as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write the plan as JSON to this file (input of `migopt simulate`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write a config for NVIDIA's mig-parted to this file.
    #[arg(long)]
    mig_parted: Option<PathBuf>,
}

/// Plans a scenario (used by `simulate` and `capacity` too), recording where it came from.
pub fn make_plan(
    s: &Scenario,
    path: Option<&std::path::Path>,
    solver: &str,
    flags: &PlanFlags,
) -> Result<Plan, CliError> {
    plan_with(s, path, solver, &flags.options(s)?)
}

/// Plans a scenario with planner options already made (and checked).
fn plan_with(
    s: &Scenario,
    path: Option<&std::path::Path>,
    solver: &str,
    opts: &migopt_solver::PlanOptions,
) -> Result<Plan, CliError> {
    let kind: SolverKind = solver.parse()?;
    let mut plan = migopt_solver::plan(s, kind, opts)?;
    plan.scenario_path = path.map(|p| p.display().to_string());
    validated(&plan, opts)?;
    Ok(plan)
}

/// Every plan leaves migopt validated; the solver checks too, this guards the contract.
fn validated(plan: &Plan, opts: &migopt_solver::PlanOptions) -> Result<(), CliError> {
    plan.validate(opts.rules)
        .map_err(|e| CliError::Internal(format!("planner returned an invalid plan: {e}")))
}

/// Writes the plan's files (`--out`: `json`, `--mig-parted`), all or none, and names them.
fn write_plan_files<'a>(
    a: &'a Args,
    plan: &Plan,
    json: &str,
    inputs: &Inputs,
) -> Result<Vec<&'a std::path::Path>, CliError> {
    let mut files = Vec::new();
    if let Some(p) = &a.out {
        files.push((p.as_path(), json.to_string()));
    }
    if let Some(p) = &a.mig_parted {
        files.push((p.as_path(), plan.to_mig_parted_yaml()?));
    }
    write_all(&files, inputs)?;
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// The scenario path the plan records ([`recorded_path`]).
fn recorded_scenario(a: &Args) -> Option<String> {
    Some(recorded_path(a.scenario.as_deref()?, a.out.as_deref()))
}

pub fn run(a: Args) -> Result<(), CliError> {
    let path = a.scenario.clone();
    run_on(a).map_err(|e| e.in_scenario(path.as_deref()))
}

fn run_on(a: Args) -> Result<(), CliError> {
    a.check.check_threads()?;
    let mut inputs = Inputs::default();
    let s = load_scenario(a.scenario.as_deref(), &mut inputs)?;
    let sla_objective = a.flags.objective == Some(ObjectiveFlag::SlaCapacity);
    let solver = a
        .solver
        .solver
        .clone()
        .unwrap_or_else(|| if sla_objective { "sla" } else { "milp" }.to_string());
    // Outputs that cannot be written are refused before any solving.
    let outs = a.out.iter().chain(&a.mig_parted).map(PathBuf::as_path);
    crate::out::check_targets(outs, &inputs)?;
    if a.check.verify || sla_objective {
        return run_checked(a, &s, &solver, &inputs);
    }
    // The sla solver plans for --target and --sla-margin with or without the check.
    let mut opts = a.flags.options(&s)?;
    a.check.apply(&mut opts)?;
    let mut plan = plan_with(&s, a.scenario.as_deref(), &solver, &opts)?;
    plan.scenario_path = recorded_scenario(&a);
    let json = to_json(&plan)?;
    let files = write_plan_files(&a, &plan, &json, &inputs)?;
    if a.json {
        crate::say!("{json}");
    } else {
        crate::say!("{}", render(&plan, &s)?);
        for p in files {
            crate::sayln!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// `plan --verify` / `--objective sla-capacity`: the plan with its check by simulation
/// (the SLA-aware loop for the sla solver, one check for any other).
fn run_checked(a: Args, s: &Scenario, solver: &str, inputs: &Inputs) -> Result<(), CliError> {
    let kind: SolverKind = solver.parse()?;
    let mut opts = a.flags.options(s)?;
    a.check.apply(&mut opts)?;
    let check = a.check.check()?;
    let mut checked = if kind == SolverKind::Sla {
        migopt_verify::plan_checked(s, &opts, &check)?
    } else {
        let plan = migopt_solver::plan(s, kind, &opts)?;
        migopt_verify::check_plan(s, plan, &opts, &check)?
    };
    checked.plan.scenario_path = recorded_scenario(&a);
    validated(&checked.plan, &opts)?;
    let files = write_plan_files(&a, &checked.plan, &to_json(&checked.plan)?, inputs)?;
    if a.json {
        crate::say!("{}", to_json(&checked)?);
    } else {
        crate::say!("{}", render(&checked.plan, s)?);
        crate::say!("{}", render_check(&checked));
        for p in files {
            crate::sayln!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// The check: predicted against simulated capacity, each model's percentile against its SLA.
pub fn render_check(c: &migopt_verify::Checked) -> String {
    let pct = c.models.first().map_or(99.0, |m| m.percentile);
    let mut o = check_line(&c.scheduler, &c.rounds, c.verified);
    if let Some(p) = c.predicted_capacity_qps {
        o += &format!("predicted   {p:.1} queries/s at p{pct} within SLA (queueing model)\n");
    }
    if let Some(e) = &c.simulated_capacity_qps {
        o += &format!(
            "simulated   {} queries/s at p{pct} within SLA (95% interval)\n",
            e.fmt_pm(1)
        );
    }
    o += &model_checks(&c.models);
    o
}

/// The check's headline: scheduler, rounds, verified or the models missed.
pub fn check_line(scheduler: &str, rounds: &[migopt_verify::Round], verified: bool) -> String {
    format!(
        "\ncheck       simulated under {}, {} round{}: {}\n",
        scheduler,
        rounds.len(),
        if rounds.len() == 1 { "" } else { "s" },
        if verified {
            "verified".to_string()
        } else {
            format!(
                "NOT verified (missed: {})",
                rounds
                    .last()
                    .map(|r| r.missed.join(", "))
                    .unwrap_or_default()
            )
        }
    )
}

/// Each model's simulated percentile against its SLA, as a table.
pub fn model_checks(models: &[migopt_verify::ModelCheck]) -> String {
    let pct = models.first().map_or(99.0, |m| m.percentile);
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            vec![
                m.model.clone(),
                format!("{:.1}", m.rate_qps),
                m.quantile_ms.map(|q| q.fmt_pm(2)).unwrap_or("-".into()),
                format!("{}", m.sla_ms),
                if m.met { "yes" } else { "NO" }.into(),
            ]
        })
        .collect();
    table(
        &["model", "rate q/s", &format!("p{pct} ms"), "SLA ms", "met"],
        &rows,
    )
}

/// The human report: what was solved, how well, and a table per GPU.
pub fn render(plan: &Plan, s: &Scenario) -> Result<String, CliError> {
    let gpu = plan.gpu_spec()?;
    let mut o = summary(plan, s)?;
    o += "\n";
    let rows = plan
        .gpus
        .iter()
        .map(|g| gpu_row(gpu, g))
        .collect::<Result<Vec<_>, CliError>>()?;
    o += &table_fit(
        &[
            "GPU",
            "memory slots",
            "instances (profile@NVML start, model, batch)",
        ],
        &rows,
        term_width(),
    );
    Ok(o)
}

/// The report's head: scenario, status, objective, bound, gap, what is used and provisioned.
fn summary(plan: &Plan, s: &Scenario) -> Result<String, CliError> {
    let r = &plan.report;
    let (name, unit) = match plan.objective_kind {
        Objective::MaxLoad => ("max-load", "queries/s"),
        Objective::MinGpus => ("min-gpus", "GPUs"),
    };
    let obj = |v: f64| match plan.objective_kind {
        Objective::MaxLoad => format!("{v:.1}"),
        Objective::MinGpus => format!("{v:.0}"),
    };
    let mut o = format!(
        "scenario {} · {} x {} · objective {name} · solver {}\n",
        s.name, s.gpu_count, plan.gpu, plan.solver
    );
    o += &format!("status      {}\n", r.status.as_str());
    o += &format!("objective   {} {unit}\n", obj(r.objective));
    if let Some(b) = r.bound {
        o += &format!("best bound  {} {unit}\n", obj(b));
    }
    if let Some(g) = r.gap {
        o += &format!("gap         {:.3}%\n", g * 100.0);
    }
    if let Some(b) = r.lp_bound {
        o += &format!("LP bound    {b:.2} {unit}\n");
    }
    o += &format!("solve time  {:.3} s\n", r.solve_seconds);
    o += &format!(
        "used        {} of {} GPUs, {} GPCs{}\n",
        plan.gpus_used(),
        plan.gpus.len(),
        plan.gpcs_used()?,
        if r.status == SolveStatus::Heuristic {
            " (heuristic: no optimality claim)"
        } else {
            ""
        }
    );
    if !plan.model_rates.is_empty() {
        o += "provisioned ";
        o += &plan
            .model_rates
            .iter()
            .map(|m| format!("{} {:.1} q/s", m.model, m.rate_qps))
            .collect::<Vec<_>>()
            .join(", ");
        o += "\n";
    }
    Ok(o)
}

/// One GPU's row: its index, its memory-slot bar and its instances, lettered A, B, C... in
/// the bar and listed in the same order.
fn gpu_row(gpu: &GpuSpec, g: &GpuPlan) -> Result<Vec<String>, CliError> {
    let layout = Layout::new(gpu, g.placements())?;
    let letter = |k: usize| (b'A' + (k as u8 % 26)) as char;
    let bar = slot_bar(gpu, &layout, letter);
    let list = layout
        .instances
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let a = g
                .layout
                .iter()
                .find(|a| a.start == p.start && a.profile == p.profile);
            let (m, b, n) = a
                .map(|a| (a.model.to_string(), a.batch, a.procs))
                .unwrap_or_default();
            let procs = if n > 1 {
                format!(" x{n} procs")
            } else {
                String::new()
            };
            format!("{}={}@{} {m} b{b}{procs}", letter(k), p.profile, p.start)
        })
        .collect::<Vec<_>>()
        .join("  ");
    Ok(vec![
        g.index.to_string(),
        bar,
        if list.is_empty() {
            "(unused)".into()
        } else {
            list
        },
    ])
}
