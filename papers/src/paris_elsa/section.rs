//! One workload's section of RESULTS.md: capacity of every (partitioning, scheduler),
//! latency at the loads, utilisation per size at capacity, and its figures.

use super::config::LOADS;
use super::figures::figures;
use super::markdown::{cap_text, sched_names};
use super::results::{utilisation_by_profile, PlanRun, WorkloadRun};
use crate::md::{self, num};
use crate::{Options, Output};
use migopt_models::Error;
use migopt_sim::SchedulerKind;
use std::fmt::Write as _;

/// One workload's section: capacity of every (partitioning, scheduler), latency at the
/// loads on PARIS and MILP plans, utilisation per size at capacity, figures.
pub(super) fn section(r: &WorkloadRun, opts: &Options, out: &mut Output) -> Result<String, Error> {
    let scheds = sched_names(std::slice::from_ref(r));
    let mut md = format!("## {}\n\n{} — {}.\n\n", r.id, r.source, r.description);
    let mut rows = Vec::new();
    for p in &r.plans {
        let fluid = if p.rejected.is_some() {
            "β-infeasible".to_string()
        } else {
            num(p.plan.as_ref().ok().map(|p| p.report.objective), 0)
        };
        let mut row = vec![p.name.to_string(), fluid];
        row.extend(scheds.iter().map(|&k| cap_text(p, k)));
        rows.push(row);
    }
    let mut header = vec!["partitioning".to_string(), "fluid q/s".into()];
    header.extend(scheds.iter().map(|k| format!("{} q/s", k.as_str())));
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    md += "Capacity at the SLA (largest load with p99 ≤ SLA; 95% interval over replications):\n\n";
    md += &md::table(&h, &rows);
    for name in ["paris", "milp"] {
        let Some(p) = r.plan(name) else { continue };
        md += &format!(
            "\n{name}: p50 / p99 ms and SLA violations at {} of FIFS's capacity; last column at 70% with `--drop-late` \
             (violations, of which dropped):\n\n",
            LOADS.map(|f| format!("{:.0}%", f * 100.0)).join(" / ")
        );
        md += &latency_table(p);
    }
    md += "\nUtilisation per partition size at the capacity point:\n\n";
    md += &utilisation_table(r);
    md += &figures(r, opts, out)?;
    for p in &r.plans {
        if let Err(e) = &p.plan {
            let _ = writeln!(md, "\n{}: no plan — {e}", p.name);
        }
        if let Some(e) = &p.rejected {
            let _ = writeln!(
                md,
                "\n{}: the planner rejects it ({e}); simulated as cut, every instance serving the model.",
                p.name
            );
        }
    }
    md += "\n";
    Ok(md)
}

/// p50 / p99 and violations of every scheduler at the loads on one plan.
fn latency_table(p: &PlanRun) -> String {
    let mut rows = Vec::new();
    for c in &p.cells {
        let mut row = vec![c.sched.as_str().to_string()];
        for x in &c.loads {
            row.push(match x {
                Some(x) => format!(
                    "{} / {} ({:.4})",
                    num(x.p50, 1),
                    num(x.p99, 1),
                    x.violations
                ),
                None => "-".into(),
            });
        }
        row.push(match c.dropping {
            Some(x) => format!("{:.4} ({:.4})", x.violations, x.drops),
            None => "-".into(),
        });
        rows.push(row);
    }
    let mut header = vec!["scheduler".to_string()];
    header.extend(LOADS.iter().map(|f| format!("{:.0}%", f * 100.0)));
    header.push("70%, drop-late".into());
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    md::table(&h, &rows)
}

/// Utilisation per profile at capacity, for the cells worth showing.
fn utilisation_table(r: &WorkloadRun) -> String {
    let mut rows = Vec::new();
    for p in &r.plans {
        for c in &p.cells {
            let shown = matches!(p.name, "paris" | "milp")
                || matches!(c.sched, SchedulerKind::Fifs)
                || c.sched == SchedulerKind::elsa_rule();
            let Some(at) = c.capacity.as_ref().and_then(|c| c.at_capacity.as_ref()) else {
                continue;
            };
            if shown {
                let u = utilisation_by_profile(at)
                    .iter()
                    .map(|(k, (n, u))| format!("{k} x{n}: {:.0}%", u * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ");
                rows.push(vec![p.name.to_string(), c.sched.as_str().to_string(), u]);
            }
        }
    }
    md::table(
        &[
            "partitioning",
            "scheduler",
            "profile x instances: mean utilisation",
        ],
        &rows,
    )
}
