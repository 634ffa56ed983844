//! The SLA-aware planner's prediction against the simulator on the workloads of
//! `papers/paris-elsa`, without the full study: for each workload, plans (default: the
//! SLA-aware plan, checked and cut under ELSA as the study does), then prints the queueing
//! model's predicted p99 capacity beside the simulated one under ELSA and the error.
//!
//! `cargo run --release -p migopt-papers --example sla_predict -- [workload ...]
//!  [--parts sla,milp] [--reps N] [--queries N] [--cache DIR] [--predict-only]`
//!
//! With `--cache DIR` each plan and its simulated capacity are written there (JSON), and
//! `--predict-only` reads them back and only recomputes the predictions (for calibrating
//! the queueing model against fixed simulations).

use migopt_models::{Estimate, Objective, Plan, Scenario};
use migopt_papers::paris_elsa::workloads;
use migopt_papers::Options;
use migopt_sim::{Arrivals, CapacityTarget, SchedulerKind, SimConfig};
use migopt_solver::{PlanOptions, SolverKind};
use std::path::PathBuf;

/// Flags of `sla_predict`.
#[derive(clap::Parser)]
struct Args {
    /// Workloads (default: every one of the study).
    workloads: Vec<String>,
    /// Replications per capacity search.
    #[arg(long, default_value_t = 4)]
    reps: u32,
    /// Queries per replication.
    #[arg(long, default_value_t = 100_000)]
    queries: u64,
    /// Worker threads (default: every core; results do not depend on it).
    #[arg(long)]
    threads: Option<usize>,
    /// Partitionings, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sla")]
    parts: Vec<String>,
    /// Folder where plans and simulated capacities are cached (JSON).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Only recompute the predictions from the cache.
    #[arg(long)]
    predict_only: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Args = clap::Parser::parse();
    let all = workloads(&Options::default())?;
    let popts = PlanOptions {
        objective: Objective::MaxLoad,
        ..PlanOptions::default()
    };
    if let Some(c) = &a.cache {
        std::fs::create_dir_all(c)?;
    }
    let (mut worst, mut within) = (0.0f64, 0usize);
    let mut n = 0;
    for w in all
        .iter()
        .filter(|w| a.workloads.is_empty() || a.workloads.contains(&w.id))
    {
        let sc = &w.scenario;
        for part in &a.parts {
            let Some((plan, sim)) = plan_and_capacity(&a, &w.id, sc, part, &popts)? else {
                continue;
            };
            let pred = migopt_solver::predict_capacity(sc, &plan, &popts)?.capacity_qps;
            let err = (pred - sim.mean) / sim.mean * 100.0;
            n += 1;
            worst = worst.max(err.abs());
            within += (err.abs() <= 5.0) as usize;
            println!(
                "{:<18} {:<5} predicted {:>8.1} simulated {:>8.1} ± {:>5.1} error {:+5.1}%  {}",
                w.id,
                part,
                pred,
                sim.mean,
                sim.ci_high.map_or(0.0, |h| h - sim.mean),
                err,
                size_counts(&plan)
            );
        }
    }
    println!("{within} of {n} within 5%, worst {worst:.1}%");
    Ok(())
}

/// Workload `id`'s plan by partitioning `part` and its simulated p99 capacity under ELSA:
/// read from the cache with `--predict-only`, else made (and cached). `None` when there is
/// none to compare (not cached, or no plan: said on stdout).
fn plan_and_capacity(
    a: &Args,
    id: &str,
    sc: &Scenario,
    part: &str,
    popts: &PlanOptions,
) -> Result<Option<(Plan, Estimate)>, Box<dyn std::error::Error>> {
    let file = a
        .cache
        .as_ref()
        .map(|c| c.join(format!("{id}-{part}.json")));
    if a.predict_only {
        let f = file.as_ref().ok_or("--predict-only needs --cache")?;
        if !f.exists() {
            return Ok(None);
        }
        return Ok(Some(serde_json::from_str(&std::fs::read_to_string(f)?)?));
    }
    let plan = if part == "sla" {
        let check = migopt_verify::CheckOptions {
            scheduler: SchedulerKind::Elsa,
            replications: a.reps,
            queries: a.queries,
            seed: 1,
            threads: a.threads,
            capacity: false,
            ..Default::default()
        };
        migopt_verify::plan_checked(sc, popts, &check)?.plan
    } else {
        match migopt_solver::plan(sc, part.parse::<SolverKind>()?, popts) {
            Ok(p) => p,
            Err(e) => {
                println!("{:<18} {:<5} no plan: {e}", id, part);
                return Ok(None);
            }
        }
    };
    let mut cfg = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: plan.report.objective.max(1.0),
    });
    cfg.scheduler = SchedulerKind::Elsa;
    cfg.queries = Some(a.queries);
    cfg.replications = a.reps;
    cfg.seed = 1;
    cfg.threads = a.threads;
    let cap = migopt_sim::capacity(&plan, sc, &cfg, CapacityTarget::P99)?;
    if let Some(f) = &file {
        std::fs::write(f, serde_json::to_string(&(&plan, &cap.capacity_qps))?)?;
    }
    Ok(Some((plan, cap.capacity_qps)))
}

/// The plan's instance sizes with their counts, in first-seen order (`2x3g.40gb 1x7g.80gb`).
fn size_counts(plan: &Plan) -> String {
    let mut sizes: Vec<(String, u32)> = Vec::new();
    for (_, a) in plan.instances() {
        match sizes.iter_mut().find(|s| s.0 == a.profile.as_str()) {
            Some(s) => s.1 += 1,
            None => sizes.push((a.profile.to_string(), 1)),
        }
    }
    let sizes: Vec<String> = sizes.iter().map(|(p, c)| format!("{c}x{p}")).collect();
    sizes.join(" ")
}
