//! A small driver for iterating on schedulers without the full `migopt reproduce`: for the
//! named workloads of `papers/paris-elsa` (default: three), plans PARIS and the MILP, then
//! for each scheduler measures the capacity at the SLA and the p99 at 70% of FIFS's.
//!
//! `cargo run --release -p migopt-papers --example elsa_quick -- [workload ...]
//!  [--sched a,b,c] [--reps N] [--queries N] [--parts paris,milp] [--jitter]`

use migopt_models::{CapacityReport, Objective, Plan, Scenario};
use migopt_papers::paris_elsa::{schedulers, workloads};
use migopt_papers::Options;
use migopt_sim::{capacity, simulate, Arrivals, CapacityTarget, SchedulerKind, SimConfig};
use migopt_solver::{PlanOptions, SolverKind};

/// Flags of `elsa_quick`.
#[derive(clap::Parser)]
struct Args {
    /// Workloads (default: a100-mobilenetv2, a100-vgg19, h100-resnet50).
    workloads: Vec<String>,
    /// Schedulers, comma-separated (default: the study's).
    #[arg(long, value_delimiter = ',')]
    sched: Vec<SchedulerKind>,
    /// Replications per point.
    #[arg(long, default_value_t = 4)]
    reps: u32,
    /// Queries per replication.
    #[arg(long, default_value_t = 50_000)]
    queries: u64,
    /// Partitionings, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "paris,milp")]
    parts: Vec<String>,
    /// Draw service times between the profile's p50 and p99 instead of using p50.
    #[arg(long)]
    jitter: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Args = clap::Parser::parse();
    let scheds = if a.sched.is_empty() {
        schedulers(false)
    } else {
        a.sched.clone()
    };
    let ids = if a.workloads.is_empty() {
        ["a100-mobilenetv2", "a100-vgg19", "h100-resnet50"]
            .map(String::from)
            .to_vec()
    } else {
        a.workloads.clone()
    };
    let all = workloads(&Options::default())?;
    for w in all.iter().filter(|w| ids.contains(&w.id)) {
        for part in &a.parts {
            report_plan(&a, &w.id, &w.scenario, part, &scheds)?;
        }
    }
    Ok(())
}

/// Poisson arrivals at `rate` under scheduler `s`, with the flags' replications, queries
/// and service-time jitter, seed 1.
fn sim_config(a: &Args, s: SchedulerKind, rate: f64) -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rate,
    });
    c.scheduler = s;
    c.queries = Some(a.queries);
    c.replications = a.reps;
    c.seed = 1;
    c.jitter = a.jitter;
    c
}

/// Plans workload `id` by partitioning `part` and prints its fluid load and FIFS's
/// capacity against the throughput bound, then one line per scheduler.
fn report_plan(
    a: &Args,
    id: &str,
    sc: &Scenario,
    part: &str,
    scheds: &[SchedulerKind],
) -> Result<(), Box<dyn std::error::Error>> {
    let kind: SolverKind = part.parse()?;
    let popts = PlanOptions {
        objective: Objective::MaxLoad,
        ..PlanOptions::default()
    };
    let plan: Plan = migopt_solver::plan(sc, kind, &popts)?;
    let fluid = plan.report.objective;
    let fifs = capacity(
        &plan,
        sc,
        &sim_config(a, SchedulerKind::Fifs, fluid),
        CapacityTarget::P99,
    )?;
    let base = fifs.capacity_qps.mean;
    let bound = migopt_papers::paris_elsa::throughput_bound(sc, &plan);
    println!(
        "{} {part}: fluid {fluid:.0}, throughput bound {:.0}, FIFS / bound {:.3}",
        id,
        bound.unwrap_or(f64::NAN),
        base / bound.unwrap_or(f64::NAN)
    );
    for &s in scheds {
        let c = if s == SchedulerKind::Fifs {
            fifs.clone()
        } else {
            capacity(&plan, sc, &sim_config(a, s, fluid), CapacityTarget::P99)?
        };
        println!("{}", scheduler_line(a, &plan, sc, s, &c, base)?);
    }
    Ok(())
}

/// One scheduler's line: its capacity (with interval, against FIFS's `base`), then the p99
/// and violation rate at 50%, 70% and 90% of `base`.
fn scheduler_line(
    a: &Args,
    plan: &Plan,
    sc: &Scenario,
    s: SchedulerKind,
    c: &CapacityReport,
    base: f64,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut line = format!(
        "  {:<13} cap {:>8.1} [{:>7.1},{:>7.1}] ({:+5.1}%)",
        s.as_str(),
        c.capacity_qps.mean,
        c.capacity_qps.ci_low.unwrap_or(f64::NAN),
        c.capacity_qps.ci_high.unwrap_or(f64::NAN),
        (c.capacity_qps.mean / base - 1.0) * 100.0
    );
    for f in [0.5, 0.7, 0.9] {
        let r = simulate(plan, sc, &sim_config(a, s, base * f))?;
        let m = &r.models[0];
        line += &format!(
            " | {:.0}%: p99 {:>7.2} viol {:.4}",
            f * 100.0,
            m.latency_ms.map(|l| l.p99.mean).unwrap_or(f64::NAN),
            m.sla_violation_rate.mean
        );
    }
    Ok(line)
}
