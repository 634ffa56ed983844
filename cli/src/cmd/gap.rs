//! `migopt gap`: every heuristic against the MILP optimum, per scenario, optionally swept
//! over GPU counts and SLA multipliers.

use super::common::{load_scenario, PlanFlags};
use super::{to_json, CliError};
use crate::out::table;
use migopt_models::{Millis, Objective, Scenario};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario TOML files (default: the shipped default scenario).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    flags: PlanFlags,
    /// HiGHS threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
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

fn rows_for(
    s: &Scenario,
    mult: f64,
    flags: &PlanFlags,
    threads: u32,
) -> Result<Vec<Row>, CliError> {
    let opts = flags.options(s, threads)?;
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

pub fn run(a: Args) -> Result<(), CliError> {
    super::common::check_threads(a.threads as u64)?;
    let scenarios: Vec<Scenario> = if a.scenarios.is_empty() {
        vec![load_scenario(None)?]
    } else {
        a.scenarios
            .iter()
            .map(|p| load_scenario(Some(p)))
            .collect::<Result<_, _>>()?
    };
    for m in &a.sla_multipliers {
        if !(*m > 0.0 && m.is_finite()) {
            return Err(CliError::Input(migopt_models::Error::Invalid(format!(
                "SLA multiplier {m} must be positive"
            ))));
        }
    }
    let mut rows = Vec::new();
    for s in &scenarios {
        if !a.sweep {
            rows.extend(rows_for(s, 1.0, &a.flags, a.threads)?);
            continue;
        }
        let max_load = a
            .flags
            .objective
            .map_or_else(|| super::common::default_objective(s), |o| o.objective())
            == Objective::MaxLoad;
        // GPU counts only change a fixed server (max-load); min-gpus chooses its own count.
        let counts: Vec<u32> = if max_load {
            (1..=s.gpu_count).collect()
        } else {
            vec![s.gpu_count]
        };
        for n in counts {
            for &m in &a.sla_multipliers {
                let mut v = s.clone();
                v.gpu_count = n;
                for model in &mut v.models {
                    model.sla = Millis(model.sla.0 * m);
                }
                match rows_for(&v, m, &a.flags, a.threads) {
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
    }
    if a.json {
        crate::say!("{}", to_json(&rows)?);
        return Ok(());
    }
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
    crate::say!(
        "{}",
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
                "status"
            ],
            &t
        )
    );
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
