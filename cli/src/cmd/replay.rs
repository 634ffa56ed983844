//! `migopt replay-day`: plan a day of traffic three ways (static peak plan, from scratch
//! every interval, migopt replan) and compare GPU-hours, re-cuts and simulated SLA
//! violations, transitions included.

use super::common::{PlanFlags, Progress, SolverFlag};
use super::{to_json, CliError};
use crate::out::{table, write_all};
use migopt_models::input::Inputs;
use migopt_models::{Objective, Scenario};
use migopt_papers::replay::{
    intervals_in_day, replay_day, DayReport, DiurnalLoad, ReplayOptions, Strategy, SCHEDULER,
};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario whose `rate_qps` are the rates at load factor 1.
    scenario: PathBuf,
    /// Load file: `hour,load` (a factor on every rate) and/or `hour,<model>,...` columns;
    /// see papers/reconfiguration/diurnal.csv.
    #[arg(long)]
    load: PathBuf,
    /// Interval length: `1h`, `30m`, `2h` or hours as a number; it must divide the day (24 h).
    #[arg(long, default_value = "1h", value_parser = parse_hours)]
    every: f64,
    /// Seconds one transition step takes (drain, re-cut, reload).
    #[arg(long, default_value_t = 30.0)]
    reconfig_seconds: f64,
    /// Spare GPUs the re-planner's transitions may borrow.
    #[arg(long, default_value_t = 1)]
    spare_gpus: u32,
    /// GPUs beyond the fewest the re-planner may use to re-cut fewer.
    #[arg(long, default_value_t = 0)]
    gpu_slack: u32,
    /// Simulated seconds per plan and per transition state (0: no simulation).
    #[arg(long, default_value_t = 10.0)]
    sim_seconds: f64,
    /// Simulation replications (1 to 100).
    #[arg(long, default_value_t = 2)]
    replications: u32,
    /// Master seed of the simulations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    solver: SolverFlag,
    #[command(flatten)]
    flags: PlanFlags,
    /// Print the whole day as JSON.
    #[arg(long)]
    json: bool,
    /// Write the day as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Most simulation replications per plan and transition state (each interval simulates
/// three plans and every transition state).
const MAX_REPLICATIONS: u32 = 100;

fn parse_hours(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, scale) = if let Some(h) = s.strip_suffix('h') {
        (h, 1.0)
    } else if let Some(m) = s.strip_suffix('m') {
        (m, 1.0 / 60.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|v| v * scale)
        .filter(|&v| intervals_in_day(v).is_some())
        .ok_or_else(|| {
            format!(
                "`{s}` does not cut the day into whole intervals: give one such as 1h, 30m, 6h \
                 or 2 (hours) that divides 24 h, from 1m to 24h"
            )
        })
}

pub fn run(a: Args) -> Result<(), CliError> {
    let path = a.scenario.clone();
    run_on(a).map_err(|e| e.in_scenario(Some(&path)))
}

fn run_on(a: Args) -> Result<(), CliError> {
    let mut inputs = Inputs::default();
    let scenario = Scenario::load_recording(&a.scenario, &mut inputs)?;
    let load = DiurnalLoad::load_recording(&a.load, &mut inputs)?;
    load.check_models(&a.load, &scenario)?;
    let mut plan = a.flags.options(&scenario)?;
    plan.objective = Objective::MinGpus;
    if !(a.sim_seconds >= 0.0 && a.sim_seconds <= 3600.0) {
        return Err(CliError::Input(migopt_models::Error::Invalid(format!(
            "--sim-seconds {} must be between 0 and 3600",
            migopt_models::limits::num(a.sim_seconds)
        ))));
    }
    if !(1..=MAX_REPLICATIONS).contains(&a.replications) {
        return Err(CliError::Input(migopt_models::Error::Invalid(format!(
            "--replications {} must be between 1 and {MAX_REPLICATIONS}",
            a.replications
        ))));
    }
    let solver: migopt_solver::SolverKind = a.solver.solver.as_deref().unwrap_or("milp").parse()?;
    if !matches!(
        solver,
        migopt_solver::SolverKind::Milp | migopt_solver::SolverKind::Sla
    ) {
        return Err(CliError::Input(migopt_models::Error::Invalid(format!(
            "replay-day: --solver {solver} has no re-planner; use milp or sla"
        ))));
    }
    let opts = ReplayOptions {
        every_h: a.every,
        reconfig_s: a.reconfig_seconds,
        spare_gpus: a.spare_gpus,
        gpu_slack: a.gpu_slack,
        plan,
        solver,
        sim_seconds: a.sim_seconds,
        replications: a.replications,
        seed: a.seed,
        threads: None,
    };
    let bar = Progress::new("replaying the day", !a.json);
    let day = replay_day(&scenario, &load, &opts, &|d, t| bar.update(d, t))?;
    bar.finish();
    let json = to_json(&day)?;
    if let Some(p) = &a.out {
        write_all(&[(p.as_path(), json.clone())], &inputs)?;
    }
    if a.json {
        crate::say!("{json}");
    } else {
        crate::say!("{}", render(&day));
        if let Some(p) = &a.out {
            crate::sayln!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// An interval length as a user gives it: whole hours as `6 h`, anything else in minutes
/// (`5 min`, `90 min`), not as a long fraction of an hour.
fn interval_label(h: f64) -> String {
    if h.fract() == 0.0 {
        format!("{h} h")
    } else {
        format!("{} min", (h * 6000.0).round() / 100.0)
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.3}%", v * 100.0))
}

/// How many intervals' SLA-aware plans passed their check loop, per strategy (empty when
/// no plan was checked).
fn checked_line(d: &DayReport) -> String {
    let parts: Vec<String> = Strategy::ALL
        .iter()
        .zip(&d.verified)
        .filter_map(|(s, v)| Some(format!("{} {}", s.as_str(), (*v)?)))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!(
        "SLA-aware plans verified by their check loop ({}), intervals of {}: {}\n\n",
        SCHEDULER.as_str(),
        d.intervals.len(),
        parts.join(", ")
    )
}

/// The day in two tables: totals, then interval by interval.
pub fn render(d: &DayReport) -> String {
    let mut o = format!(
        "scenario {} · {} intervals of {} · {} s per transition step\n\n",
        d.scenario,
        d.intervals.len(),
        interval_label(d.every_h),
        d.reconfig_s
    );
    o += &table(
        &["strategy", "GPU-hours", "GPUs re-cut", "SLA violations"],
        &d.strategy_rows(&pct),
    );
    o += &format!(
        "replan: {} interval(s) swapped a change onto an idle GPU; at most {} spare GPU(s) taken\n\n",
        d.intervals_with_swaps, d.spares_needed
    );
    o += &checked_line(d);
    // Each interval's row, with the worst model's simulated steady p99 over its SLA under
    // the from-scratch and the re-planned plan.
    let ratio = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let rows: Vec<Vec<String>> = d
        .interval_rows(&pct)
        .into_iter()
        .zip(&d.intervals)
        .map(|(mut row, iv)| {
            row.push(ratio(iv.cells[1].p99_over_sla));
            row.push(ratio(iv.cells[2].p99_over_sla));
            row
        })
        .collect();
    o += &table(
        &[
            "hour",
            "req/s",
            "static GPUs",
            "scratch GPUs / re-cut",
            "replan GPUs / re-cut / steps",
            "scratch viol.",
            "replan viol.",
            "scratch p99/SLA",
            "replan p99/SLA",
        ],
        &rows,
    );
    o
}
