//! `migopt gap`: every heuristic against the MILP optimum, per scenario, optionally swept
//! over GPU counts and SLA multipliers.

use super::common::{load_scenario, CheckFlags, ObjectiveFlag, PlanFlags};
use super::{to_json, CliError};
use crate::out::table;
use migopt_models::input::Inputs;
use migopt_models::{Millis, Objective, Scenario};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario TOML files (default: the shipped default scenario).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    check: CheckFlags,
    /// Also sweep: GPU counts 1..N (N = the scenario's count) and SLA multipliers.
    #[arg(long)]
    sweep: bool,
    /// SLA multipliers for --sweep.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.75,1,1.5,2")]
    sla_multipliers: Vec<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    scenario: String,
    gpus: u32,
    sla_multiplier: f64,
    solver: String,
    objective: Option<f64>,
    milp_objective: f64,
    gap_pct: Option<f64>,
    seconds: f64,
    gpus_used: usize,
    gpcs_used: u32,
    status: String,
    note: Option<String>,
}

fn rows_for(s: &Scenario, mult: f64, flags: &PlanFlags) -> Result<Vec<Row>, CliError> {
    let opts = flags.options(s)?;
    Ok(migopt_solver::gap_report(s, &opts)?
        .into_iter()
        .map(|r| Row {
            scenario: r.scenario,
            gpus: s.gpu_count,
            sla_multiplier: mult,
            solver: r.solver,
            objective: r.objective,
            milp_objective: r.milp_objective,
            gap_pct: r.gap_pct,
            seconds: r.seconds,
            gpus_used: r.gpus_used,
            gpcs_used: r.gpcs_used,
            status: r.status.as_str().to_string(),
            note: r.note,
        })
        .collect())
}

/// One planner's plan measured by simulation, against the SLA-aware optimum.
#[derive(Serialize)]
struct CheckedRow {
    scenario: String,
    solver: String,
    objective: Option<f64>,
    predicted_capacity_qps: Option<f64>,
    simulated_capacity_qps: Option<migopt_models::Estimate>,
    /// Simulated capacity below the SLA-aware plan's, percent of it (max-load).
    gap_to_sla_pct: Option<f64>,
    verified: Option<bool>,
    missed: Vec<String>,
    note: Option<String>,
}

/// `gap --verify` / `--objective sla-capacity`: every planner and the SLA-aware one, all
/// measured by simulation under the same scheduler.
fn run_checked(a: &Args, s: &Scenario) -> Result<Vec<CheckedRow>, CliError> {
    let mut opts = a.flags.options(s)?;
    a.check.apply(&mut opts)?;
    let check = a.check.check()?;
    let mut solvers = vec![migopt_solver::SolverKind::Sla];
    solvers.extend(migopt_solver::gap_solvers(s, &opts)?);
    let mut rows = Vec::new();
    for kind in solvers {
        let checked = if kind == migopt_solver::SolverKind::Sla {
            migopt_verify::plan_checked(s, &opts, &check)
        } else {
            migopt_solver::plan(s, kind.clone(), &opts)
                .and_then(|p| migopt_verify::check_plan(s, p, &opts, &check))
        };
        rows.push(match checked {
            Ok(c) => CheckedRow {
                scenario: s.name.clone(),
                solver: kind.name(),
                objective: Some(c.plan.report.objective),
                predicted_capacity_qps: c.predicted_capacity_qps,
                simulated_capacity_qps: c.simulated_capacity_qps,
                gap_to_sla_pct: None,
                verified: Some(c.verified),
                missed: c
                    .models
                    .iter()
                    .filter(|m| !m.met)
                    .map(|m| m.model.clone())
                    .collect(),
                note: None,
            },
            Err(e) => CheckedRow {
                scenario: s.name.clone(),
                solver: kind.name(),
                objective: None,
                predicted_capacity_qps: None,
                simulated_capacity_qps: None,
                gap_to_sla_pct: None,
                verified: None,
                missed: Vec::new(),
                note: Some(e.to_string()),
            },
        });
    }
    let best = rows[0].simulated_capacity_qps.map(|e| e.mean);
    for r in &mut rows {
        if let (Some(b), Some(e)) = (best, r.simulated_capacity_qps) {
            r.gap_to_sla_pct = (b > 0.0).then(|| (b - e.mean) / b * 100.0);
        }
    }
    Ok(rows)
}

fn render_checked(rows: &[CheckedRow]) -> String {
    let t: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.scenario.clone(),
                r.solver.clone(),
                r.objective.map(|v| format!("{v:.1}")).unwrap_or("-".into()),
                r.predicted_capacity_qps
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or("-".into()),
                r.simulated_capacity_qps
                    .map(|e| e.fmt_pm(1))
                    .unwrap_or("-".into()),
                r.gap_to_sla_pct
                    .map(|g| format!("{g:.2}"))
                    .unwrap_or("-".into()),
                match r.verified {
                    Some(true) => "yes".into(),
                    Some(false) => format!("no ({})", r.missed.join(", ")),
                    None => r.note.clone().unwrap_or("-".into()),
                },
            ]
        })
        .collect();
    table(
        &[
            "scenario",
            "solver",
            "objective",
            "predicted q/s",
            "simulated q/s",
            "below sla %",
            "meets target at its objective",
        ],
        &t,
    )
}

/// One scenario's rows: as given, or swept over GPU counts and SLA multipliers (a sweep
/// point that cannot be planned gets an `infeasible` row with the reason).
fn scenario_rows(a: &Args, s: &Scenario) -> Result<Vec<Row>, CliError> {
    if !a.sweep {
        return rows_for(s, 1.0, &a.flags);
    }
    let mut rows = Vec::new();
    for n in sweep_counts(a, s) {
        for &m in &a.sla_multipliers {
            let mut v = s.clone();
            v.gpu_count = n;
            for model in &mut v.models {
                model.sla = Millis(model.sla.0 * m);
            }
            match rows_for(&v, m, &a.flags) {
                Ok(r) => rows.extend(r),
                Err(CliError::Input(e)) if !e.is_internal() => rows.push(Row {
                    scenario: s.name.clone(),
                    gpus: n,
                    sla_multiplier: m,
                    solver: "milp".into(),
                    objective: None,
                    milp_objective: f64::NAN,
                    gap_pct: None,
                    seconds: 0.0,
                    gpus_used: 0,
                    gpcs_used: 0,
                    status: "infeasible".into(),
                    note: Some(e.to_string()),
                }),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(rows)
}

/// The GPU counts `--sweep` plans `s` on: 1..N for a fixed server (max-load), only N for
/// min-gpus, which chooses its own count.
fn sweep_counts(a: &Args, s: &Scenario) -> std::ops::RangeInclusive<u32> {
    let max_load = a
        .flags
        .objective
        .map_or_else(|| super::common::default_objective(s), |o| o.objective())
        == Objective::MaxLoad;
    if max_load {
        1..=s.gpu_count
    } else {
        s.gpu_count..=s.gpu_count
    }
}

/// `--sweep`: at most [`MAX_SWEEP_POINTS`] points (GPU counts x SLA multipliers) over all
/// the scenarios, checked before any is planned.
fn check_sweep_size(a: &Args, scenarios: &[Scenario]) -> Result<(), CliError> {
    use migopt_models::limits::MAX_SWEEP_POINTS;
    if !a.sweep {
        return Ok(());
    }
    let mults = a.sla_multipliers.len() as u64;
    let points: u64 = scenarios
        .iter()
        .map(|s| (sweep_counts(a, s).count() as u64).saturating_mul(mults))
        .fold(0, u64::saturating_add);
    if points <= MAX_SWEEP_POINTS {
        return Ok(());
    }
    let each: Vec<String> = scenarios
        .iter()
        .map(|s| format!("{}: {} GPU counts", s.name, sweep_counts(a, s).count()))
        .collect();
    Err(CliError::Input(migopt_models::Error::Invalid(format!(
        "--sweep: {points} points ({} x {mults} --sla-multipliers), more than the {MAX_SWEEP_POINTS} one sweep may plan; sweep fewer GPUs (gpu.count) or fewer multipliers",
        each.join(", ")
    ))))
}

/// `--sla-multipliers`: positive, and with `--sweep` every SLA they make within the range a
/// scenario's SLA may take.
fn check_multipliers(a: &Args, scenarios: &[Scenario]) -> Result<(), CliError> {
    use migopt_models::limits::{num, MAX_LATENCY_MS, MIN_LATENCY_MS};
    let bad = |m: String| CliError::Input(migopt_models::Error::Invalid(m));
    for (i, &m) in a.sla_multipliers.iter().enumerate() {
        if !(m > 0.0 && m.is_finite()) {
            return Err(bad(format!(
                "--sla-multipliers {m}: a multiplier must be positive"
            )));
        }
        // The same multiplier twice would plan every point of it twice.
        if a.sla_multipliers[..i].contains(&m) {
            return Err(bad(format!("--sla-multipliers: {} is given twice", num(m))));
        }
        // Without --sweep the multipliers scale nothing.
        if !a.sweep {
            continue;
        }
        let models = scenarios
            .iter()
            .flat_map(|s| s.models.iter().map(move |x| (s, x)));
        for (s, model) in models {
            let sla = model.sla.0 * m;
            if !(MIN_LATENCY_MS..=MAX_LATENCY_MS).contains(&sla) {
                return Err(bad(format!(
                    "--sla-multipliers {}: model {} of scenario {} would get an SLA of {} ms, outside the accepted range {MIN_LATENCY_MS:e}..{MAX_LATENCY_MS:e} ms",
                    num(m),
                    model.name,
                    s.name,
                    num(sla)
                )));
            }
        }
    }
    Ok(())
}

/// The gap table.
fn render(rows: &[Row]) -> String {
    let t: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.scenario.clone(),
                r.gpus.to_string(),
                format!("{}", r.sla_multiplier),
                r.solver.clone(),
                r.objective.map(|v| format!("{v:.1}")).unwrap_or("-".into()),
                if r.milp_objective.is_finite() {
                    format!("{:.1}", r.milp_objective)
                } else {
                    "-".into()
                },
                r.gap_pct
                    .map(|g| format!("{:.2}", if g.abs() < 0.005 { 0.0 } else { g }))
                    .unwrap_or("-".into()),
                format!("{:.3}", r.seconds),
                r.gpus_used.to_string(),
                r.gpcs_used.to_string(),
                r.status.clone(),
            ]
        })
        .collect();
    table(
        &[
            "scenario",
            "GPUs",
            "SLA x",
            "solver",
            "objective",
            "MILP",
            "gap %",
            "seconds",
            "GPUs used",
            "GPCs",
            "status",
        ],
        &t,
    )
}

pub fn run(a: Args) -> Result<(), CliError> {
    a.check.check_threads()?;
    // `gap` writes no file: what it reads need not be kept.
    let mut read = Inputs::default();
    if a.check.verify || a.flags.objective == Some(ObjectiveFlag::SlaCapacity) {
        let mut rows = Vec::new();
        for p in &a.scenarios {
            let s = load_scenario(Some(p), &mut read)?;
            rows.extend(run_checked(&a, &s).map_err(|e| e.in_scenario(Some(p)))?);
        }
        if a.scenarios.is_empty() {
            rows.extend(run_checked(&a, &load_scenario(None, &mut read)?)?);
        }
        if a.json {
            crate::say!("{}", to_json(&rows)?);
        } else {
            crate::say!("{}", render_checked(&rows));
        }
        return Ok(());
    }
    let scenarios: Vec<Scenario> = if a.scenarios.is_empty() {
        vec![load_scenario(None, &mut read)?]
    } else {
        a.scenarios
            .iter()
            .map(|p| load_scenario(Some(p), &mut read))
            .collect::<Result<_, _>>()?
    };
    check_sweep_size(&a, &scenarios)?;
    check_multipliers(&a, &scenarios)?;
    let paths: Vec<Option<&std::path::Path>> = match a.scenarios.is_empty() {
        true => vec![None],
        false => a.scenarios.iter().map(|p| Some(p.as_path())).collect(),
    };
    let mut rows = Vec::new();
    for (s, p) in scenarios.iter().zip(paths) {
        rows.extend(scenario_rows(&a, s).map_err(|e| e.in_scenario(p))?);
    }
    if a.json {
        crate::say!("{}", to_json(&rows)?);
        return Ok(());
    }
    crate::say!("{}", render(&rows));
    for r in rows.iter().filter(|r| r.note.is_some()) {
        crate::sayln!(
            "note: {} {} (GPUs {}, SLA x{}): {}",
            r.scenario,
            r.solver,
            r.gpus,
            r.sla_multiplier,
            r.note.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
