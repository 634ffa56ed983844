//! The study's CSV files: capacity, latency at load, p99 against load and utilisation per
//! cell, and one row a plan.

use super::config::{AT_70, LOADS};
use super::results::{utilisation_by_profile, Cell, PlanRun, WorkloadRun};
use crate::md::{self, num};
use migopt_models::Plan;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The rows of one (workload, partitioning, scheduler) cell in each per-cell CSV.
#[derive(Default)]
struct CellRows {
    cap: Vec<Vec<String>>,
    lat: Vec<Vec<String>>,
    curve: Vec<Vec<String>>,
    util: Vec<Vec<String>>,
}

impl CellRows {
    /// Adds the rows of cell `c` of plan `p` on workload `r`, each keyed by (workload,
    /// partitioning, scheduler).
    fn add(&mut self, r: &WorkloadRun, p: &PlanRun, c: &Cell) {
        let key = |rest: Vec<String>| -> Vec<String> {
            [
                r.id.clone(),
                p.name.to_string(),
                c.sched.as_str().to_string(),
            ]
            .into_iter()
            .chain(rest)
            .collect()
        };
        if let Some(e) = c.cap() {
            let fluid = p.plan.as_ref().ok().filter(|_| p.rejected.is_none());
            self.cap.push(key(vec![
                num(fluid.map(|p| p.report.objective), 1),
                num(p.ceiling(), 1),
                format!("{:.1}", e.mean),
                num(e.ci_low, 1),
                num(e.ci_high, 1),
            ]));
        }
        let points = c.loads.iter().zip(LOADS).map(|(x, f)| (x, f, false));
        for (x, f, drop) in points.chain([(&c.dropping, LOADS[AT_70], true)]) {
            if let Some(x) = x {
                self.lat.push(key(vec![
                    format!("{f:.2}"),
                    drop.to_string(),
                    format!("{:.1}", x.rate),
                    num(x.p50, 3),
                    num(x.p99, 3),
                    format!("{:.5}", x.violations),
                    format!("{:.5}", x.drops),
                ]));
            }
        }
        for x in c.curve.iter().flatten() {
            self.curve.push(key(vec![
                format!("{:.1}", x.rate),
                format!("{:.2}", x.rate / r.reference),
                num(x.p99, 3),
                format!("{:.5}", x.violations),
            ]));
        }
        if let Some(at) = c.capacity.as_ref().and_then(|c| c.at_capacity.as_ref()) {
            for (profile, (n, u)) in utilisation_by_profile(at) {
                self.util
                    .push(key(vec![profile, n.to_string(), format!("{u:.3}")]));
            }
        }
    }

    /// The four per-cell CSVs (capacity, latency at load, p99 against load, utilisation at
    /// capacity), each keyed by (workload, partitioning, scheduler).
    fn csv_files(self) -> Vec<(PathBuf, String)> {
        let CellRows {
            cap,
            lat,
            curve,
            util,
        } = self;
        let k = ["workload", "partitioning", "scheduler"];
        let h = |rest: &[&'static str]| -> Vec<&'static str> {
            k.iter().chain(rest).copied().collect()
        };
        vec![
            (
                "results/capacity.csv".into(),
                md::csv(
                    &h(&[
                        "fluid_qps",
                        "ceiling_qps",
                        "capacity_qps",
                        "ci_low",
                        "ci_high",
                    ]),
                    &cap,
                ),
            ),
            (
                "results/latency_at_load.csv".into(),
                md::csv(
                    &h(&[
                        "load_fraction_of_fifs_capacity",
                        "drop_late",
                        "load_qps",
                        "p50_ms",
                        "p99_ms",
                        "violation_rate",
                        "drop_rate",
                    ]),
                    &lat,
                ),
            ),
            (
                "results/p99_vs_load.csv".into(),
                md::csv(
                    &h(&[
                        "load_qps",
                        "load_fraction_of_milp_fluid",
                        "p99_ms",
                        "violation_rate",
                    ]),
                    &curve,
                ),
            ),
            (
                "results/utilisation_at_capacity.csv".into(),
                md::csv(&h(&["profile", "instances", "mean_utilisation"]), &util),
            ),
        ]
    }
}

/// The per-cell CSVs of every workload's plans, then `results/plans.csv` (one row a plan).
pub(super) fn csv_files(runs: &[WorkloadRun]) -> Vec<(PathBuf, String)> {
    let mut plans = Vec::new();
    let mut rows = CellRows::default();
    for r in runs {
        for p in &r.plans {
            plans.push(plan_row(r, p));
            for c in &p.cells {
                rows.add(r, p, c);
            }
        }
    }
    let mut files = rows.csv_files();
    files.push((
        "results/plans.csv".into(),
        md::csv(
            &[
                "workload",
                "partitioning",
                "layouts",
                "gpcs_used",
                "fluid_qps",
                "note",
            ],
            &plans,
        ),
    ));
    files
}

/// One plan's row of `results/plans.csv`: its layouts, GPCs used, fluid load and note.
fn plan_row(r: &WorkloadRun, p: &PlanRun) -> Vec<String> {
    let plan = p.plan.as_ref().ok();
    vec![
        r.id.clone(),
        p.name.to_string(),
        plan.map(layout_summary).unwrap_or_else(|| "-".into()),
        plan.and_then(|p| p.gpcs_used().ok())
            .map(|g| g.to_string())
            .unwrap_or("-".into()),
        if p.rejected.is_some() {
            "-".into()
        } else {
            num(plan.map(|p| p.report.objective), 1)
        },
        p.plan
            .as_ref()
            .err()
            .or(p.rejected.as_ref())
            .cloned()
            .unwrap_or_default(),
    ]
}

/// The plan's GPU layouts, largest profile first, counted: `8x[3g.40gb+3g.40gb]`.
pub(super) fn layout_summary(p: &Plan) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in &p.gpus {
        let mut l: Vec<&str> = g.layout.iter().map(|a| a.profile.as_str()).collect();
        l.sort_by(|a, b| b.cmp(a));
        let key = if l.is_empty() {
            "(empty)".to_string()
        } else {
            l.join("+")
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| format!("{n}x[{k}]"))
        .collect::<Vec<_>>()
        .join(" ")
}
