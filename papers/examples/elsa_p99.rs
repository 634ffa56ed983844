//! The p99 goal of `papers/paris-elsa` without the full study: for every workload (or the
//! named ones), on PARIS and MILP plans, the p99 of FIFS and of each named scheduler at a
//! fraction (default 70%) of FIFS's capacity as the committed study measured it
//! (`papers/paris-elsa/results/capacity.csv`), with the study's simulation settings (4
//! replications of 100,000 queries). With `--cap`, each scheduler's capacity at the SLA
//! against max(FIFS, JSQ) from the same file, judged as the study judges it (the upper end
//! of its 95% interval reaches the baseline).
//!
//! `cargo run --release -p migopt-papers --example elsa_p99 -- [workload ...]
//!  [--sched a,b] [--frac F] [--seed S] [--cap]`

use migopt_models::{Objective, Plan, Scenario};
use migopt_papers::paris_elsa::{sim_config, workloads, Workload};
use migopt_papers::Options;
use migopt_sim::{capacity, simulate, CapacityTarget, SchedulerKind};
use migopt_solver::{PlanOptions, SolverKind};
use std::collections::BTreeMap;

/// Flags of `elsa_p99`.
#[derive(clap::Parser)]
struct Args {
    /// Workloads (default: every one of the study).
    workloads: Vec<String>,
    /// Schedulers to compare with FIFS, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "elsa")]
    sched: Vec<SchedulerKind>,
    /// Fraction of FIFS's capacity at which the p99 is measured.
    #[arg(long, default_value_t = 0.7)]
    frac: f64,
    /// Simulation seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Compare capacities at the SLA instead of p99s.
    #[arg(long)]
    cap: bool,
}

type Key = (String, String);

/// (FIFS's capacity, max(FIFS, JSQ)) per (workload, partitioning), from the study's CSV.
fn baselines() -> Result<BTreeMap<Key, (f64, f64)>, Box<dyn std::error::Error>> {
    let csv = std::fs::read_to_string("papers/paris-elsa/results/capacity.csv")?;
    let mut out: BTreeMap<Key, (f64, f64)> = BTreeMap::new();
    for l in csv.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let (Some(s), Some(c)) = (f.get(2), f.get(5).and_then(|c| c.parse::<f64>().ok())) else {
            continue;
        };
        let e = out
            .entry((f[0].into(), f[1].into()))
            .or_insert((f64::NAN, 0.0));
        if *s == "fifs" {
            e.0 = c;
        }
        if *s == "fifs" || *s == "jsq" {
            e.1 = e.1.max(c);
        }
    }
    Ok(out)
}

/// Per scheduler compared: on how many plans it did worse than the baseline, and the sum
/// of the logs of its ratios to it.
struct Tally {
    worse: Vec<usize>,
    log_ratio: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Args = clap::Parser::parse();
    let base = baselines()?;
    let opts = Options {
        seed: a.seed,
        ..Options::default()
    };
    let mut tally = Tally {
        worse: vec![0usize; a.sched.len()],
        log_ratio: vec![0f64; a.sched.len()],
    };
    let mut n = 0;
    for w in workloads(&Options::default())?
        .iter()
        .filter(|w| a.workloads.is_empty() || a.workloads.contains(&w.id))
    {
        let sc = &w.scenario;
        for part in ["paris", "milp"] {
            let popts = PlanOptions {
                objective: Objective::MaxLoad,
                ..PlanOptions::default()
            };
            let plan: Plan = migopt_solver::plan(sc, part.parse::<SolverKind>()?, &popts)?;
            let Some(&(fifs_cap, best)) = base.get(&(w.id.clone(), part.to_string())) else {
                continue;
            };
            n += 1;
            let line = if a.cap {
                format!("{:<17} {part:<5} max(FIFS, JSQ) {best:>8.1}", w.id)
                    + &cap_cells(&a, &opts, &plan, sc, best, &mut tally)?
            } else {
                p99_line(&a, &opts, w, part, &plan, fifs_cap, &mut tally)?
            };
            println!("{line}");
        }
    }
    let what = if a.cap {
        "capacity short of max(FIFS, JSQ)"
    } else {
        "p99 above FIFS's"
    };
    for (k, s) in a.sched.iter().enumerate() {
        println!(
            "{s}: {what} on {} of {n}; geometric-mean ratio {:.4}",
            tally.worse[k],
            (tally.log_ratio[k] / n.max(1) as f64).exp()
        );
    }
    Ok(())
}

/// Each scheduler's capacity at the SLA against `best` (max(FIFS, JSQ)), marked `!` when
/// the upper end of its interval falls short; tallied.
fn cap_cells(
    a: &Args,
    opts: &Options,
    plan: &Plan,
    sc: &Scenario,
    best: f64,
    tally: &mut Tally,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut line = String::new();
    for (k, &s) in a.sched.iter().enumerate() {
        let fluid = plan.report.objective;
        let e = capacity(plan, sc, &sim_config(opts, s, fluid), CapacityTarget::P99)?.capacity_qps;
        let short = e.ci_high.unwrap_or(e.mean) < best;
        tally.worse[k] += short as usize;
        tally.log_ratio[k] += (e.mean / best).ln();
        let mark = if short { "!" } else { " " };
        line += &format!(" | {s} {:>8.1} ({:.3}){mark}", e.mean, e.mean / best);
    }
    Ok(line)
}

/// The line of workload `w`'s plan by `part`: FIFS's p99 at `--frac` of its capacity
/// `fifs_cap`, then each scheduler's, marked `!` when above FIFS's; tallied.
fn p99_line(
    a: &Args,
    opts: &Options,
    w: &Workload,
    part: &str,
    plan: &Plan,
    fifs_cap: f64,
    tally: &mut Tally,
) -> Result<String, Box<dyn std::error::Error>> {
    let p99 = |s| -> Result<f64, Box<dyn std::error::Error>> {
        let r = simulate(plan, &w.scenario, &sim_config(opts, s, fifs_cap * a.frac))?;
        Ok(r.models[0].latency_ms.map_or(f64::NAN, |l| l.p99.mean))
    };
    let f = p99(SchedulerKind::Fifs)?;
    let mut line = format!("{:<17} {part:<5} fifs p99 {f:>7.2}", w.id);
    for (k, &s) in a.sched.iter().enumerate() {
        let e = p99(s)?;
        tally.worse[k] += (e > f) as usize;
        tally.log_ratio[k] += (e / f).ln();
        let mark = if e > f { "!" } else { " " };
        line += &format!(" | {s} {e:>7.2}{mark}");
    }
    Ok(line)
}
