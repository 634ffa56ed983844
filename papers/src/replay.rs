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

use migopt_models::{Demand, Error, GpuPlan, Objective, Origin, Plan, Scenario, SolveStatus};
use migopt_sim::{Arrivals, SchedulerKind, SimConfig};
use migopt_solver::replan::{ReplanOptions, Transition};
use migopt_solver::{PlanOptions, SolverKind};
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

impl DiurnalLoad {
    /// Reads a load file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses load-file text; every problem names the file, line and column.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rows = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((hl, header)) = rows.next() else {
            return Err(Error::Syntax {
                origin: Origin::file(path),
                message: "empty load file (expected a header `hour,load` or `hour,<model>,...`)"
                    .into(),
            });
        };
        let cols: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
        if cols.first().map(|c| c.as_str()) != Some("hour") || cols.len() < 2 {
            return Err(Error::Syntax {
                origin: Origin::at(path, hl + 1),
                message: format!("the header must start with `hour` and name at least one column (got `{header}`)"),
            });
        }
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
            for j in 1..cols.len() {
                let v = num(j)?;
                if !(0.0..=1e3).contains(&v) {
                    return Err(Error::field(
                        at.clone(),
                        cols[j].clone(),
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
}

fn with_rates(s: &Scenario, rates: &[f64]) -> Scenario {
    let mut s = s.clone();
    for (m, &r) in s.models.iter_mut().zip(rates) {
        m.demand = Demand::Rate(r.max(1e-9));
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
        .filter(|(_, s)| !**s)
        .map(|(r, _)| r)
        .sum();
    if served.iter().all(|s| !s) {
        return Ok((1.0, f64::INFINITY));
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
    c.scheduler = SchedulerKind::Jsq;
    c.duration_s = Some(opts.sim_seconds);
    c.replications = opts.replications.max(1);
    c.seed = opts.seed.wrapping_add(salt);
    c.threads = opts.threads;
    let r = migopt_sim::simulate(&p, &sub, &c)?;
    let mut missed = lost;
    let mut worst: f64 = if lost > 0.0 { f64::INFINITY } else { 0.0 };
    for (m, &rate) in r.models.iter().zip(&sim_rates) {
        missed += rate * m.sla_violation_rate.mean;
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

/// Configurations of a plan's used GPUs, as sortable keys.
fn configs(p: &Plan) -> Vec<Vec<(String, u32, String)>> {
    p.gpus
        .iter()
        .filter(|g| !g.layout.is_empty())
        .map(|g| {
            let mut v: Vec<(String, u32, String)> = g
                .layout
                .iter()
                .map(|a| (a.profile.to_string(), a.start, a.model.to_string()))
                .collect();
            v.sort();
            v
        })
        .collect()
}

/// From-scratch re-cuts, matching the new plan's GPUs to the old plan's identical ones as
/// well as possible (the fairest count for it), and the GPUs that stay up during the swap.
fn scratch_change(old: &Plan, new: &Plan) -> (u32, Vec<GpuPlan>) {
    let mut pool = configs(old);
    let mut kept = Vec::new();
    let mut recut = 0;
    for g in new.gpus.iter().filter(|g| !g.layout.is_empty()) {
        let mut key: Vec<(String, u32, String)> = g
            .layout
            .iter()
            .map(|a| (a.profile.to_string(), a.start, a.model.to_string()))
            .collect();
        key.sort();
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

/// Replays the day; `progress(done, total)` after each interval.
pub fn replay_day(
    scenario: &Scenario,
    load: &DiurnalLoad,
    opts: &ReplayOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<DayReport, Error> {
    if !(opts.every_h > 0.0 && opts.every_h <= 24.0) {
        return Err(Error::Invalid(format!(
            "--every {} h must be above 0 and at most 24 h",
            opts.every_h
        )));
    }
    if !(opts.reconfig_s >= 0.0 && opts.reconfig_s < opts.every_h * 3600.0) {
        return Err(Error::Invalid(format!(
            "--reconfig-seconds {} must be at least 0 and below the interval",
            opts.reconfig_s
        )));
    }
    let base = scenario.rates().ok_or_else(|| {
        Error::Invalid(format!(
            "scenario {}: replay-day needs rate_qps for every model (the rates at load 1)",
            scenario.name
        ))
    })?;
    let names: Vec<String> = scenario.models.iter().map(|m| m.name.to_string()).collect();
    let n = (24.0 / opts.every_h).ceil() as usize;
    let mut rates = Vec::new();
    for i in 0..n {
        let t0 = i as f64 * opts.every_h;
        let f = load.factors_for(&names, t0, (t0 + opts.every_h).min(24.0))?;
        rates.push(
            base.iter()
                .zip(&f)
                .map(|(r, f)| r * f)
                .collect::<Vec<f64>>(),
        );
    }
    let peak: Vec<f64> = (0..names.len())
        .map(|m| rates.iter().map(|r| r[m]).fold(0.0, f64::max))
        .collect();
    let popts = &opts.plan;
    let static_plan = migopt_solver::plan(&with_rates(scenario, &peak), SolverKind::Milp, popts)?;
    let mut intervals: Vec<Interval> = Vec::new();
    let mut prev_scratch: Option<Plan> = None;
    let mut prev_replan: Option<Plan> = None;
    let mut spares = 0;
    let mut spares_max = 0;
    let secs = opts.every_h * 3600.0;
    for (i, r) in rates.iter().enumerate() {
        let s = with_rates(scenario, r);
        let salt = i as u64 * 1000;
        let mut cells = Vec::new();
        // (a) static peak plan.
        let mut cell = Cell {
            gpus: static_plan.gpus_used() as u32,
            recuts: 0,
            steps: 0,
            status: static_plan.report.status,
            solve_seconds: if i == 0 {
                static_plan.report.solve_seconds
            } else {
                0.0
            },
            violations: None,
            transition_violations: None,
            p99_over_sla: None,
            min_kept_ratio: None,
        };
        if opts.sim_seconds > 0.0 {
            let (v, p) = simulate(opts, &s, &static_plan, static_plan.gpus.clone(), salt)?;
            (cell.violations, cell.p99_over_sla) = (Some(v), Some(p));
        }
        cells.push(cell);
        // (b) from scratch, applied at once.
        let scratch = migopt_solver::plan(&s, SolverKind::Milp, popts)?;
        let (recuts, up) = match &prev_scratch {
            Some(p) => scratch_change(p, &scratch),
            None => (0, scratch.gpus.clone()),
        };
        let mut cell = Cell {
            gpus: scratch.gpus_used() as u32,
            recuts,
            steps: u32::from(recuts > 0),
            status: scratch.report.status,
            solve_seconds: scratch.report.solve_seconds,
            violations: None,
            transition_violations: None,
            p99_over_sla: None,
            min_kept_ratio: None,
        };
        if opts.sim_seconds > 0.0 {
            let (v, p) = simulate(opts, &s, &scratch, scratch.gpus.clone(), salt + 1)?;
            let tv = if recuts > 0 {
                simulate(opts, &s, &scratch, up, salt + 2)?.0 * opts.reconfig_s / secs
            } else {
                0.0
            };
            let steady = v * (secs - if recuts > 0 { opts.reconfig_s } else { 0.0 }) / secs;
            (
                cell.violations,
                cell.transition_violations,
                cell.p99_over_sla,
            ) = (Some(steady + tv), Some(tv), Some(p));
        }
        cells.push(cell);
        prev_scratch = Some(scratch.clone());
        // (c) migopt replan from the previous interval's target.
        let cell = match prev_replan.as_ref() {
            None => {
                prev_replan = Some(scratch.clone());
                let mut c = cells[1].clone();
                c.recuts = 0;
                c.steps = 0;
                c
            }
            Some(prev) => {
                let old = &rates[i - 1];
                let ro = ReplanOptions {
                    plan: popts.clone(),
                    spare_gpus: opts.spare_gpus,
                    gpu_slack: opts.gpu_slack,
                    required: Some(old.iter().zip(r).map(|(a, b)| a.min(*b)).collect()),
                };
                // Too few spares for a safe transition: take as many as it needs (reported).
                let rp = match migopt_solver::replan::replan(prev, &s, &ro) {
                    Err(Error::Infeasible(_)) if opts.spare_gpus < 1000 => {
                        let more = ReplanOptions {
                            spare_gpus: 1000,
                            ..ro.clone()
                        };
                        migopt_solver::replan::replan(prev, &s, &more)?
                    }
                    r => r?,
                };
                spares_max = spares_max.max(rp.transition.spares_used.len() as u32);
                spares += u32::from(!rp.transition.swaps.is_empty());
                let t = &rp.transition;
                let kept = t
                    .steps
                    .iter()
                    .flat_map(|st| {
                        st.capacity_during
                            .iter()
                            .zip(&t.required)
                            .filter(|(_, &need)| need > 0.0)
                            .map(|(c, need)| c / need)
                    })
                    .fold(f64::INFINITY, f64::min);
                let mut cell = Cell {
                    gpus: rp.gpus_used,
                    recuts: rp.gpus_changed,
                    steps: t.steps.len() as u32,
                    status: rp.status,
                    solve_seconds: rp.target.report.solve_seconds,
                    violations: None,
                    transition_violations: None,
                    p99_over_sla: None,
                    min_kept_ratio: kept.is_finite().then_some(kept),
                };
                if opts.sim_seconds > 0.0 {
                    let (v, p) = simulate(opts, &s, &rp.target, rp.target.gpus.clone(), salt + 3)?;
                    let start: BTreeMap<u32, GpuPlan> =
                        prev.gpus.iter().map(|g| (g.index, g.clone())).collect();
                    let mut tv = 0.0;
                    for (j, st) in step_states(&start, t).into_iter().enumerate() {
                        tv += simulate(opts, &s, &rp.target, st, salt + 10 + j as u64)?.0
                            * opts.reconfig_s
                            / secs;
                    }
                    let down = t.steps.len() as f64 * opts.reconfig_s;
                    let steady = v * (secs - down).max(0.0) / secs;
                    (
                        cell.violations,
                        cell.transition_violations,
                        cell.p99_over_sla,
                    ) = (Some(steady + tv), Some(tv), Some(p));
                }
                prev_replan = Some(rp.target);
                cell
            }
        };
        cells.push(cell);
        intervals.push(Interval {
            start_h: i as f64 * opts.every_h,
            rates: r.clone(),
            cells,
        });
        progress(i as u64 + 1, n as u64);
    }
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
    Ok(DayReport {
        scenario: scenario.name.clone(),
        models: names,
        every_h: opts.every_h,
        reconfig_s: opts.reconfig_s,
        intervals,
        gpu_hours,
        recuts,
        violations,
        intervals_with_swaps: spares,
        spares_needed: spares_max,
    })
}
