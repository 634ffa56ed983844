//! A day of traffic, planned three ways: one static plan at the day's peak, a plan from
//! scratch every interval, and migopt's re-planner (fewest GPUs, then fewest re-cut, with a
//! safe transition). Each interval's plan is simulated at that interval's rates, and so is
//! every transition state, for the reconfiguration time, with the GPUs being re-cut down:
//! the capacity lost while re-cutting shows up as SLA violations.
//!
//! The load file (CSV, `#` starts a comment line): a column `hour` (0 ≤ hour < 24), then a
//! column `load` (a factor on every model's `rate_qps` in the scenario) and/or one column
//! per model (a factor on that model's rate). Each interval [t, t + every) is planned for
//! the highest factor of the rows inside it, or the last row before it when none is.

use migopt_models::input::Inputs;
use migopt_models::{Demand, Error, GpuPlan, Objective, Origin, Plan, Scenario, SolveStatus};
use migopt_sim::{Arrivals, SchedulerKind, SimConfig};
use migopt_solver::replan::{layout_key, Replan, ReplanOptions, Transition};
use migopt_solver::{PlanOptions, SolverKind};
use migopt_verify::CheckOptions;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A day's load shape: factors on the scenario's rates, by hour.
#[derive(Debug, Clone, PartialEq)]
pub struct DiurnalLoad {
    /// Hours of the rows, ascending.
    pub hours: Vec<f64>,
    /// Column names after `hour` (`load` or model names).
    pub columns: Vec<String>,
    /// Factors, per row, per column.
    pub factors: Vec<Vec<f64>>,
}

/// The columns of a load file's header line (`(index, line)`, `None` for a file without
/// one): `hour` first, then at least one column, none twice.
fn header_columns(line: Option<(usize, &str)>, path: &Path) -> Result<Vec<String>, Error> {
    let Some((hl, header)) = line else {
        return Err(Error::Syntax {
            origin: Origin::file(path),
            message: "empty load file (expected a header `hour,load` or `hour,<model>,...`)".into(),
        });
    };
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
    if cols.first().map(|c| c.as_str()) != Some("hour") || cols.len() < 2 {
        return Err(Error::Syntax {
            origin: Origin::at(path, hl + 1),
            message: format!(
                "the header must start with `hour` and name at least one column (got `{header}`)"
            ),
        });
    }
    check_columns(&cols, path, hl + 1)?;
    Ok(cols)
}

impl DiurnalLoad {
    /// Reads a load file (at most [`migopt_models::limits::LOAD_FILE`]).
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::load_recording(path, &mut Inputs::default())
    }

    /// [`DiurnalLoad::load`], recording the file in `inputs`.
    pub fn load_recording(path: &Path, inputs: &mut Inputs) -> Result<Self, Error> {
        let text = inputs.read_text(path, migopt_models::limits::LOAD_FILE)?;
        Self::parse(&text, path)
    }

    /// Parses load-file text; every problem names the file, line and column.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rows = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let cols = header_columns(rows.next(), path)?;
        let columns = cols[1..].to_vec();
        let mut hours = Vec::new();
        let mut factors = Vec::new();
        for (i, line) in rows {
            let at = Origin::at(path, i + 1);
            let cells: Vec<&str> = line.split(',').map(|c| c.trim()).collect();
            if cells.len() != cols.len() {
                return Err(Error::Syntax {
                    origin: at,
                    message: format!("{} fields, the header has {}", cells.len(), cols.len()),
                });
            }
            let num = |j: usize| -> Result<f64, Error> {
                cells[j]
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        Error::field(
                            at.clone(),
                            cols[j].clone(),
                            format!("`{}` is not a number", cells[j]),
                        )
                    })
            };
            let h = num(0)?;
            if !(0.0..24.0).contains(&h) || hours.last().is_some_and(|&p| h <= p) {
                return Err(Error::field(
                    at,
                    "hour",
                    format!("{h} must be in [0, 24) and above the row before"),
                ));
            }
            let mut row = Vec::new();
            for (j, col) in cols.iter().enumerate().skip(1) {
                let v = num(j)?;
                if !(0.0..=1e3).contains(&v) {
                    return Err(Error::field(
                        at.clone(),
                        col.clone(),
                        format!("{v} must be a factor in [0, 1000]"),
                    ));
                }
                row.push(v);
            }
            hours.push(h);
            factors.push(row);
        }
        if hours.is_empty() {
            return Err(Error::Syntax {
                origin: Origin::file(path),
                message: "no rows after the header".into(),
            });
        }
        Ok(Self {
            hours,
            columns,
            factors,
        })
    }

    /// Every model has a column of its own or the `load` column applies to it; the error
    /// names the load file `path` (columns for other models are allowed: one file may
    /// serve several scenarios).
    pub fn check_models(&self, path: &Path, scenario: &Scenario) -> Result<(), Error> {
        let has = |c: &str| self.columns.iter().any(|x| x == c);
        match scenario
            .models
            .iter()
            .find(|m| !has(m.name.as_str()) && !has("load"))
        {
            Some(m) => Err(Error::Syntax {
                origin: Origin::file(path),
                message: format!(
                    "no column for model {} of scenario {} and no `load` column (columns: {})",
                    m.name,
                    scenario.name,
                    self.columns.join(", ")
                ),
            }),
            None => Ok(()),
        }
    }

    /// The factor of each model (scenario order) for hours [t0, t1).
    pub fn factors_for(&self, models: &[String], t0: f64, t1: f64) -> Result<Vec<f64>, Error> {
        let col = |m: &str| {
            self.columns
                .iter()
                .position(|c| c == m)
                .or_else(|| self.columns.iter().position(|c| c == "load"))
        };
        let inside: Vec<usize> = (0..self.hours.len())
            .filter(|&i| self.hours[i] >= t0 && self.hours[i] < t1)
            .collect();
        let rows = if inside.is_empty() {
            let last = (0..self.hours.len())
                .rev()
                .find(|&i| self.hours[i] <= t0)
                .unwrap_or(self.hours.len() - 1);
            vec![last]
        } else {
            inside
        };
        models
            .iter()
            .map(|m| {
                let c = col(m).ok_or_else(|| {
                    Error::Invalid(format!(
                        "the load file has no column for model {m} and no `load` column"
                    ))
                })?;
                Ok(rows.iter().map(|&r| self.factors[r][c]).fold(0.0, f64::max))
            })
            .collect()
    }
}

/// The header's columns (`hour` first, at line `line`) are named, once each: a factor
/// must not depend on which of two columns is read.
fn check_columns(cols: &[String], path: &Path, line: usize) -> Result<(), Error> {
    let names: Vec<&str> = cols.iter().map(String::as_str).collect();
    let problem = match migopt_models::input::repeated_column(&names) {
        Some(m) => m,
        None if names.contains(&"") => "a column has no name".into(),
        None => return Ok(()),
    };
    Err(Error::Syntax {
        origin: Origin::at(path, line),
        message: format!("{problem} in the header"),
    })
}

/// How to replay the day.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Interval length, hours.
    pub every_h: f64,
    /// Time one transition step takes (drain, re-cut, reload), seconds.
    pub reconfig_s: f64,
    /// Spare GPUs the re-planner's transitions may borrow.
    pub spare_gpus: u32,
    /// GPUs beyond the fewest the re-planner may use to re-cut fewer.
    pub gpu_slack: u32,
    /// Planner options (min-gpus).
    pub plan: PlanOptions,
    /// The planner of all three strategies: [`SolverKind::Milp`] (fluid model) or
    /// [`SolverKind::Sla`] (queueing model: the static and from-scratch plans are
    /// `plan --solver sla --verify`'s, the re-plan `replan --solver sla`'s target, each
    /// through its check loop (simulate, cut the models that miss, solve again) when the
    /// day is simulated (`sim_seconds` > 0), under the replay's own scheduler, replications
    /// and seed ([`check_options`]); every cell is then simulated afresh).
    pub solver: SolverKind,
    /// Simulated seconds per state (0: no simulation).
    pub sim_seconds: f64,
    /// Simulation replications.
    pub replications: u32,
    /// Master seed.
    pub seed: u64,
    /// Simulator threads.
    pub threads: Option<usize>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            every_h: 1.0,
            reconfig_s: 30.0,
            spare_gpus: 1,
            gpu_slack: 0,
            plan: PlanOptions {
                objective: Objective::MinGpus,
                ..PlanOptions::default()
            },
            solver: SolverKind::Milp,
            sim_seconds: 10.0,
            replications: 2,
            seed: 1,
            threads: None,
        }
    }
}

/// The three ways of planning the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One plan for the day's peak, never changed.
    StaticPeak,
    /// The min-gpus optimum of each interval, applied at once to every GPU that differs.
    FromScratch,
    /// migopt replan from the previous interval's plan, with its safe transition.
    Replan,
}

impl Strategy {
    /// All three, in report order.
    pub const ALL: [Strategy; 3] = [
        Strategy::StaticPeak,
        Strategy::FromScratch,
        Strategy::Replan,
    ];
    /// Name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::StaticPeak => "static-peak",
            Strategy::FromScratch => "from-scratch",
            Strategy::Replan => "replan",
        }
    }
}

/// One strategy in one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// GPUs in use.
    pub gpus: u32,
    /// GPUs re-cut or added at the start of the interval.
    pub recuts: u32,
    /// Transition steps at the start of the interval.
    pub steps: u32,
    /// Whether the plan was proven optimal (for replan: every tier).
    pub status: SolveStatus,
    /// Planner wall time, seconds.
    pub solve_seconds: f64,
    /// Fraction of the interval's requests that missed their SLA (transitions included);
    /// `None` without simulation.
    pub violations: Option<f64>,
    /// Of which during transitions (fraction of the interval's requests).
    pub transition_violations: Option<f64>,
    /// Worst model's steady-state p99 over its SLA.
    pub p99_over_sla: Option<f64>,
    /// Lowest capacity any model had during a transition step, as a fraction of the capacity
    /// it had to keep (min of old and new rate); `None` without a transition.
    pub min_kept_ratio: Option<f64>,
    /// The SLA-aware plan passed its check loop (every model within its SLA in the loop's
    /// own simulation); `None` when not checked (the fluid planner, or no simulation).
    pub verified: Option<bool>,
}

/// One interval of the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// Start hour.
    pub start_h: f64,
    /// Each model's rate, requests/s.
    pub rates: Vec<f64>,
    /// Per strategy, in [`Strategy::ALL`] order.
    pub cells: Vec<Cell>,
}

/// The whole day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    /// Scenario name.
    pub scenario: String,
    /// Models, scenario order.
    pub models: Vec<String>,
    /// Interval length, hours.
    pub every_h: f64,
    /// Reconfiguration time per step, seconds.
    pub reconfig_s: f64,
    /// The intervals.
    pub intervals: Vec<Interval>,
    /// Per strategy: GPU-hours over the day.
    pub gpu_hours: Vec<f64>,
    /// Per strategy: GPUs re-cut over the day.
    pub recuts: Vec<u32>,
    /// Per strategy: fraction of the day's requests that missed their SLA.
    pub violations: Vec<Option<f64>>,
    /// Intervals whose replan transition swapped a change onto an idle GPU.
    pub intervals_with_swaps: u32,
    /// Most spare GPUs any replan transition took.
    pub spares_needed: u32,
    /// Per strategy: the intervals whose SLA-aware plan passed its check loop (`None`: not
    /// checked, see [`Cell::verified`]).
    pub verified: Vec<Option<u32>>,
}

impl DayReport {
    /// One row per strategy: its name, GPU-hours, GPUs re-cut, and its violations as `viol`
    /// writes them.
    pub fn strategy_rows(&self, viol: &dyn Fn(Option<f64>) -> String) -> Vec<Vec<String>> {
        Strategy::ALL
            .iter()
            .enumerate()
            .map(|(k, s)| {
                vec![
                    s.as_str().into(),
                    format!("{:.1}", self.gpu_hours[k]),
                    self.recuts[k].to_string(),
                    viol(self.violations[k]),
                ]
            })
            .collect()
    }

    /// One row per interval: start hour, total rate, static GPUs, from-scratch GPUs / re-cut,
    /// replan GPUs / re-cut / steps, and the from-scratch and replan violations as `viol`
    /// writes them.
    pub fn interval_rows(&self, viol: &dyn Fn(Option<f64>) -> String) -> Vec<Vec<String>> {
        self.intervals
            .iter()
            .map(|iv| {
                let c = &iv.cells;
                vec![
                    format!("{:05.2}", iv.start_h),
                    format!("{:.0}", iv.rates.iter().sum::<f64>()),
                    c[0].gpus.to_string(),
                    format!("{} / {}", c[1].gpus, c[1].recuts),
                    format!("{} / {} / {}", c[2].gpus, c[2].recuts, c[2].steps),
                    viol(c[1].violations),
                    viol(c[2].violations),
                ]
            })
            .collect()
    }
}

/// The scheduler every state of the day is simulated under, and the SLA-aware plans checked
/// under.
pub const SCHEDULER: SchedulerKind = SchedulerKind::Jsq;

/// Fewest and most queries per replication of an SLA-aware plan's check.
const CHECK_QUERIES: (f64, f64) = (10_000.0, 10_000_000.0);

/// The check loop of the SLA-aware plans (`plan --solver sla --verify`, `replan --solver
/// sla`) at the replay's simulation settings: its scheduler, replications and seed, and as
/// many queries as `sim_seconds` of the interval's total rate (10,000 to 10 million). `None`
/// for the fluid planner or a day that is not simulated.
pub fn check_options(opts: &ReplayOptions, s: &Scenario) -> Option<CheckOptions> {
    if opts.solver != SolverKind::Sla || opts.sim_seconds <= 0.0 {
        return None;
    }
    let total: f64 = s.rates().unwrap_or_default().iter().sum();
    let (lo, hi) = CHECK_QUERIES;
    Some(CheckOptions {
        scheduler: SCHEDULER,
        replications: opts.replications.max(1),
        queries: (total * opts.sim_seconds).ceil().clamp(lo, hi) as u64,
        seed: opts.seed,
        threads: opts.threads,
        capacity: false,
        ..CheckOptions::default()
    })
}

/// The plan of a scenario's rates under the replay's planner, through its check loop when
/// there is one: the plan and whether the loop verified it.
fn plan_for(opts: &ReplayOptions, s: &Scenario) -> Result<(Plan, Option<bool>), Error> {
    match check_options(opts, s) {
        Some(c) => {
            let checked = migopt_verify::plan_checked(s, &opts.plan, &c)?;
            Ok((checked.plan, Some(checked.verified)))
        }
        None => Ok((
            migopt_solver::plan(s, opts.solver.clone(), &opts.plan)?,
            None,
        )),
    }
}

/// The re-plan of `prev` for a scenario's rates, through its check loop when there is one:
/// the re-plan and whether the loop verified its target.
fn replan_for(
    opts: &ReplayOptions,
    s: &Scenario,
    prev: &Plan,
    ro: &ReplanOptions,
) -> Result<(Replan, Option<bool>), Error> {
    match check_options(opts, s) {
        Some(c) => {
            let checked = migopt_verify::replan_checked(prev, s, opts.solver.clone(), ro, &c)?;
            Ok((checked.replan, Some(checked.check.verified)))
        }
        None => Ok((
            migopt_solver::replan::replan_with(prev, s, opts.solver.clone(), ro)?,
            None,
        )),
    }
}

/// The rate an idle model (load factor 0) is planned for: a rate target must be positive.
/// It sends no request in any simulated interval, so it has no p99 and loses nothing.
const IDLE_RATE: f64 = 1e-9;

fn with_rates(s: &Scenario, rates: &[f64]) -> Scenario {
    let mut s = s.clone();
    for (m, &r) in s.models.iter_mut().zip(rates) {
        m.demand = Demand::Rate(r.max(IDLE_RATE));
    }
    s
}

/// Fraction of requests missing their SLA and the worst p99/SLA when `gpus` serve the
/// scenario's rates; models with no instance lose every request.
fn simulate(
    opts: &ReplayOptions,
    s: &Scenario,
    plan: &Plan,
    gpus: Vec<GpuPlan>,
    salt: u64,
) -> Result<(f64, f64), Error> {
    let rates = s.rates().unwrap_or_default();
    let total: f64 = rates.iter().sum();
    let mut p = plan.clone();
    p.gpus = gpus;
    let served: Vec<bool> = s
        .models
        .iter()
        .map(|m| p.instances().any(|(_, a)| a.model == m.name))
        .collect();
    let lost: f64 = rates
        .iter()
        .zip(&served)
        .filter(|(&r, s)| !**s && r > IDLE_RATE)
        .map(|(r, _)| r)
        .sum();
    if served.iter().all(|s| !s) {
        return Ok(if lost > 0.0 {
            (1.0, f64::INFINITY)
        } else {
            (0.0, 0.0)
        });
    }
    // The simulator wants an instance for every model: simulate the served ones only.
    let mut sub = s.clone();
    let keep: Vec<bool> = served.clone();
    let mut it = keep.iter();
    sub.models.retain(|_| *it.next().unwrap_or(&false));
    let sim_rates: Vec<f64> = rates
        .iter()
        .zip(&served)
        .filter(|(_, s)| **s)
        .map(|(r, _)| *r)
        .collect();
    let mut c = SimConfig::new(Arrivals::PoissonPerModel {
        rates_qps: sim_rates.clone(),
    });
    c.scheduler = SCHEDULER;
    c.duration_s = Some(opts.sim_seconds);
    c.replications = opts.replications.max(1);
    c.seed = opts.seed.wrapping_add(salt);
    c.threads = opts.threads;
    let r = migopt_sim::simulate(&p, &sub, &c)?;
    let mut missed = lost;
    let mut worst: f64 = if lost > 0.0 { f64::INFINITY } else { 0.0 };
    for (m, &rate) in r.models.iter().zip(&sim_rates) {
        missed += rate * m.sla_violation_rate.mean;
        if rate <= IDLE_RATE {
            continue;
        }
        let p99 = m.latency_ms.map(|l| l.p99.mean).unwrap_or(f64::INFINITY);
        worst = worst.max(p99 / m.sla_ms);
    }
    Ok((if total > 0.0 { missed / total } else { 0.0 }, worst))
}

/// The state of every GPU during each step of a transition (GPUs being re-cut are down).
fn step_states(start: &BTreeMap<u32, GpuPlan>, t: &Transition) -> Vec<Vec<GpuPlan>> {
    let mut now = start.clone();
    let mut out = Vec::new();
    for s in &t.steps {
        let down: Vec<u32> = s.gpus.iter().map(|g| g.gpu).collect();
        out.push(
            now.values()
                .filter(|g| !down.contains(&g.index))
                .cloned()
                .collect(),
        );
        for g in &s.gpus {
            now.insert(
                g.gpu,
                GpuPlan {
                    index: g.gpu,
                    layout: g.layout.clone(),
                },
            );
        }
    }
    out
}

/// From-scratch re-cuts, matching the new plan's GPUs to the old plan's identical ones as
/// well as possible (the fairest count for it), and the GPUs that stay up during the swap.
fn scratch_change(old: &Plan, new: &Plan) -> (u32, Vec<GpuPlan>) {
    let mut pool: Vec<_> = old
        .gpus
        .iter()
        .filter(|g| !g.layout.is_empty())
        .map(|g| layout_key(&g.layout))
        .collect();
    let mut kept = Vec::new();
    let mut recut = 0;
    for g in new.gpus.iter().filter(|g| !g.layout.is_empty()) {
        let key = layout_key(&g.layout);
        match pool.iter().position(|c| *c == key) {
            Some(i) => {
                pool.swap_remove(i);
                kept.push(g.clone());
            }
            None => recut += 1,
        }
    }
    (recut, kept)
}

impl Cell {
    /// A cell not simulated (yet).
    fn new(gpus: usize, recuts: u32, steps: u32, status: SolveStatus, solve_seconds: f64) -> Self {
        Self {
            gpus: gpus as u32,
            recuts,
            steps,
            status,
            solve_seconds,
            violations: None,
            transition_violations: None,
            p99_over_sla: None,
            min_kept_ratio: None,
            verified: None,
        }
    }

    /// Simulates `plan` over the interval, its start spent in the transition `states` (one
    /// per step, each down for the reconfiguration time): violations (transitions included),
    /// those of the transitions, and the steady p99 over SLA. Salts: `salt` for the steady
    /// state, `step_salt + j` for step j.
    fn simulate(
        &mut self,
        opts: &ReplayOptions,
        s: &Scenario,
        plan: &Plan,
        states: Vec<Vec<GpuPlan>>,
        (salt, step_salt): (u64, u64),
    ) -> Result<(), Error> {
        let secs = opts.every_h * 3600.0;
        let (v, p) = simulate(opts, s, plan, plan.gpus.clone(), salt)?;
        let down = states.len() as f64 * opts.reconfig_s;
        let mut tv = 0.0;
        for (j, st) in states.into_iter().enumerate() {
            tv += simulate(opts, s, plan, st, step_salt + j as u64)?.0 * opts.reconfig_s / secs;
        }
        let steady = v * (secs - down).max(0.0) / secs;
        (
            self.violations,
            self.transition_violations,
            self.p99_over_sla,
        ) = (Some(steady + tv), Some(tv), Some(p));
        Ok(())
    }
}

/// The shortest interval a day may be cut into: one minute (1440 intervals).
pub const MIN_EVERY_H: f64 = 1.0 / 60.0;

/// How many intervals of `every_h` hours make the day, or `None` unless `every_h` is at
/// least [`MIN_EVERY_H`] and divides 24 h: a shorter last interval would be counted as a
/// whole one in GPU-hours and in the weights of its requests.
pub fn intervals_in_day(every_h: f64) -> Option<usize> {
    if !(MIN_EVERY_H * (1.0 - 1e-9)..=24.0).contains(&every_h) {
        return None;
    }
    let n = (24.0 / every_h).round();
    ((n * every_h - 24.0).abs() <= 24.0 * 1e-9).then_some(n as usize)
}

/// Each model's rate in each interval of the day (the scenario's rates times the load).
fn day_rates(
    scenario: &Scenario,
    load: &DiurnalLoad,
    opts: &ReplayOptions,
    names: &[String],
) -> Result<Vec<Vec<f64>>, Error> {
    let n = intervals_in_day(opts.every_h).ok_or_else(|| {
        Error::Invalid(format!(
            "--every {} h must cut the day (24 h) into whole intervals of at least a minute",
            opts.every_h
        ))
    })?;
    if !(opts.reconfig_s >= 0.0 && opts.reconfig_s < opts.every_h * 3600.0) {
        return Err(Error::Invalid(format!(
            "--reconfig-seconds {} must be at least 0 and below the interval",
            migopt_models::limits::num(opts.reconfig_s)
        )));
    }
    let base = scenario.rates().ok_or_else(|| {
        Error::Invalid(format!(
            "scenario {}: replay-day needs rate_qps for every model (the rates at load 1)",
            scenario.name
        ))
    })?;
    (0..n)
        .map(|i| {
            let t0 = i as f64 * opts.every_h;
            let f = load.factors_for(names, t0, (t0 + opts.every_h).min(24.0))?;
            Ok(base.iter().zip(&f).map(|(r, f)| r * f).collect())
        })
        .collect()
}

/// The static peak plan in interval i.
fn static_cell(opts: &ReplayOptions, s: &Scenario, plan: &Plan, i: usize) -> Result<Cell, Error> {
    let seconds = if i == 0 {
        plan.report.solve_seconds
    } else {
        0.0
    };
    let mut cell = Cell::new(plan.gpus_used(), 0, 0, plan.report.status, seconds);
    if opts.sim_seconds > 0.0 {
        let (v, p) = simulate(opts, s, plan, plan.gpus.clone(), i as u64 * 1000)?;
        (cell.violations, cell.p99_over_sla) = (Some(v), Some(p));
    }
    Ok(cell)
}

/// The from-scratch plan of interval i, applied at once (its re-cut GPUs down together).
fn scratch_cell(
    opts: &ReplayOptions,
    s: &Scenario,
    scratch: &Plan,
    prev: Option<&Plan>,
    i: usize,
) -> Result<Cell, Error> {
    let (recuts, up) = match prev {
        Some(p) => scratch_change(p, scratch),
        None => (0, scratch.gpus.clone()),
    };
    let r = &scratch.report;
    let steps = u32::from(recuts > 0);
    let mut cell = Cell::new(
        scratch.gpus_used(),
        recuts,
        steps,
        r.status,
        r.solve_seconds,
    );
    if opts.sim_seconds > 0.0 {
        let states = if recuts > 0 { vec![up] } else { Vec::new() };
        let salt = i as u64 * 1000;
        cell.simulate(opts, s, scratch, states, (salt + 1, salt + 2))?;
    }
    Ok(cell)
}

/// migopt replan from the previous interval's target to interval i's rates (`old`: the
/// previous interval's), with its safe transition.
fn replan_cell(
    opts: &ReplayOptions,
    s: &Scenario,
    prev: &Plan,
    (old, new): (&[f64], &[f64]),
    i: usize,
) -> Result<(Cell, Replan), Error> {
    let ro = ReplanOptions {
        plan: opts.plan.clone(),
        spare_gpus: opts.spare_gpus,
        gpu_slack: opts.gpu_slack,
        required: Some(old.iter().zip(new).map(|(a, b)| a.min(*b)).collect()),
        load_slack: 0.0,
    };
    // Too few spares for a safe transition: take as many as it needs (reported).
    let replan = |ro: &ReplanOptions| replan_for(opts, s, prev, ro);
    let (rp, verified) = match replan(&ro) {
        Err(Error::Infeasible(_)) if opts.spare_gpus < 1000 => {
            let more = ReplanOptions {
                spare_gpus: 1000,
                ..ro.clone()
            };
            replan(&more)?
        }
        r => r?,
    };
    let t = &rp.transition;
    let seconds = rp.target.report.solve_seconds;
    let steps = t.steps.len() as u32;
    let mut cell = Cell::new(
        rp.gpus_used as usize,
        rp.gpus_changed,
        steps,
        rp.status,
        seconds,
    );
    cell.min_kept_ratio = t.min_kept_ratio();
    cell.verified = verified;
    if opts.sim_seconds > 0.0 {
        let start: BTreeMap<u32, GpuPlan> =
            prev.gpus.iter().map(|g| (g.index, g.clone())).collect();
        let salt = i as u64 * 1000;
        cell.simulate(
            opts,
            s,
            &rp.target,
            step_states(&start, t),
            (salt + 3, salt + 10),
        )?;
    }
    Ok((cell, rp))
}

/// Per strategy over the day: GPU-hours, GPUs re-cut, and the request-weighted violations.
fn totals(intervals: &[Interval], opts: &ReplayOptions) -> (Vec<f64>, Vec<u32>, Vec<Option<f64>>) {
    let per = |f: &dyn Fn(&Cell) -> f64| -> Vec<f64> {
        (0..3)
            .map(|k| intervals.iter().map(|iv| f(&iv.cells[k])).sum())
            .collect()
    };
    let gpu_hours = per(&|c| c.gpus as f64 * opts.every_h);
    let recuts = per(&|c| c.recuts as f64)
        .iter()
        .map(|&v| v as u32)
        .collect();
    let violations = if opts.sim_seconds > 0.0 {
        let weights: Vec<f64> = intervals.iter().map(|iv| iv.rates.iter().sum()).collect();
        let total: f64 = weights.iter().sum();
        (0..3)
            .map(|k| {
                Some(
                    intervals
                        .iter()
                        .zip(&weights)
                        .map(|(iv, w)| iv.cells[k].violations.unwrap_or(0.0) * w)
                        .sum::<f64>()
                        / total.max(1e-12),
                )
            })
            .collect()
    } else {
        vec![None; 3]
    };
    (gpu_hours, recuts, violations)
}

/// Per strategy, the intervals whose plan passed its check loop (`None` if none was checked).
fn verified_counts(intervals: &[Interval]) -> Vec<Option<u32>> {
    (0..Strategy::ALL.len())
        .map(|k| {
            let checked: Vec<bool> = intervals
                .iter()
                .filter_map(|iv| iv.cells[k].verified)
                .collect();
            (!checked.is_empty()).then(|| checked.iter().filter(|&&v| v).count() as u32)
        })
        .collect()
}

/// Replays the day; `progress(done, total)` after each interval.
pub fn replay_day(
    scenario: &Scenario,
    load: &DiurnalLoad,
    opts: &ReplayOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<DayReport, Error> {
    let names: Vec<String> = scenario.models.iter().map(|m| m.name.to_string()).collect();
    let rates = day_rates(scenario, load, opts, &names)?;
    let n = rates.len();
    let peak: Vec<f64> = (0..names.len())
        .map(|m| rates.iter().map(|r| r[m]).fold(0.0, f64::max))
        .collect();
    let (static_plan, static_verified) = plan_for(opts, &with_rates(scenario, &peak))?;
    let mut intervals: Vec<Interval> = Vec::new();
    let mut prev_scratch: Option<Plan> = None;
    let mut prev_replan: Option<Plan> = None;
    let mut spares = 0;
    let mut spares_max = 0;
    for (i, r) in rates.iter().enumerate() {
        let s = with_rates(scenario, r);
        let mut cells = vec![static_cell(opts, &s, &static_plan, i)?];
        cells[0].verified = static_verified;
        let (scratch, verified) = plan_for(opts, &s)?;
        cells.push(scratch_cell(opts, &s, &scratch, prev_scratch.as_ref(), i)?);
        cells[1].verified = verified;
        let cell = match prev_replan.as_ref() {
            // The first interval starts from the from-scratch plan.
            None => {
                prev_replan = Some(scratch.clone());
                Cell {
                    recuts: 0,
                    steps: 0,
                    ..cells[1].clone()
                }
            }
            Some(prev) => {
                let (cell, rp) = replan_cell(opts, &s, prev, (&rates[i - 1], r), i)?;
                spares_max = spares_max.max(rp.transition.spares_used.len() as u32);
                spares += u32::from(!rp.transition.swaps.is_empty());
                prev_replan = Some(rp.target);
                cell
            }
        };
        cells.push(cell);
        prev_scratch = Some(scratch);
        intervals.push(Interval {
            start_h: i as f64 * opts.every_h,
            rates: r.clone(),
            cells,
        });
        progress(i as u64 + 1, n as u64);
    }
    let (gpu_hours, recuts, violations) = totals(&intervals, opts);
    Ok(DayReport {
        scenario: scenario.name.clone(),
        models: names,
        every_h: opts.every_h,
        reconfig_s: opts.reconfig_s,
        gpu_hours,
        recuts,
        violations,
        intervals_with_swaps: spares,
        spares_needed: spares_max,
        verified: verified_counts(&intervals),
        intervals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model at load factor 0 sends nothing: the worst p99 over SLA is the other models'
    /// (it read `inf`, hiding theirs, from the idle model's empty latency sample).
    #[test]
    fn an_idle_model_does_not_hide_the_worst_p99() {
        let s = crate::reconfiguration::h100_scenario().unwrap();
        let load = DiurnalLoad {
            hours: vec![0.0],
            columns: vec!["load".into(), "vit-b16".into()],
            factors: vec![vec![0.02, 0.0]],
        };
        let opts = ReplayOptions {
            every_h: 12.0,
            sim_seconds: 0.5,
            replications: 1,
            ..ReplayOptions::default()
        };
        let day = replay_day(&s, &load, &opts, &|_, _| {}).unwrap();
        for iv in &day.intervals {
            for c in &iv.cells {
                let p = c.p99_over_sla.unwrap();
                assert!(p.is_finite() && p > 0.0, "{c:?}");
            }
        }
    }

    /// With the SLA-aware planner every plan of the day goes through its check loop, as
    /// `plan --solver sla --verify` and `replan --solver sla` do: the H100 fleet's second
    /// half-day re-plan read p99 at 1.2× its SLO (4.8% of the day's requests late) when the
    /// replay solved the re-plan without the loop.
    #[test]
    fn sla_aware_plans_of_the_day_pass_their_check() {
        let s = crate::reconfiguration::h100_scenario().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("reconfiguration/diurnal.csv");
        let load = DiurnalLoad::load(&path).unwrap();
        let opts = ReplayOptions {
            every_h: 12.0,
            solver: SolverKind::Sla,
            sim_seconds: 1.0,
            replications: 1,
            ..ReplayOptions::default()
        };
        let day = replay_day(&s, &load, &opts, &|_, _| {}).unwrap();
        assert_eq!(day.verified, vec![Some(2); 3]);
        for iv in &day.intervals {
            for c in &iv.cells {
                assert_eq!(c.verified, Some(true), "{c:?}");
                let p = c.p99_over_sla.unwrap();
                assert!(
                    p < 1.05,
                    "hour {}: p99 at {p:.3} of the SLA: {c:?}",
                    iv.start_h
                );
            }
        }
        // Without simulation there is no check: the plans are the planner's own.
        let quick = ReplayOptions {
            sim_seconds: 0.0,
            ..opts
        };
        let day = replay_day(&s, &load, &quick, &|_, _| {}).unwrap();
        assert_eq!(day.verified, vec![None; 3]);
    }

    #[test]
    fn intervals_cut_the_day_exactly() {
        assert_eq!(intervals_in_day(1.0), Some(24));
        assert_eq!(intervals_in_day(6.0), Some(4));
        assert_eq!(intervals_in_day(24.0), Some(1));
        assert_eq!(intervals_in_day(0.5), Some(48));
        assert_eq!(intervals_in_day(5.0 / 60.0), Some(288));
        assert_eq!(intervals_in_day(0.1), Some(240));
        assert_eq!(intervals_in_day(1.0 / 60.0), Some(1440));
        // 4 intervals of 7 h would make a 28 h day, 2 of 13 h a 26 h one.
        assert_eq!(intervals_in_day(7.0), None);
        assert_eq!(intervals_in_day(13.0), None);
        assert_eq!(intervals_in_day(0.001), None);
        assert_eq!(intervals_in_day(0.0), None);
        assert_eq!(intervals_in_day(25.0), None);
        assert_eq!(intervals_in_day(f64::NAN), None);
    }
}
