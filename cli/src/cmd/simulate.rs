//! `migopt simulate` and `migopt capacity`: run a plan under load in the discrete-event
//! simulator, with Monte-Carlo replications.

use super::common::{load_plan, load_scenario, PlanFlags, Progress};
use super::{to_json, CliError};
use crate::out::{table, table_fit, term_width};
use migopt_models::input::Inputs;
use migopt_models::report::{Estimate, InstanceReport, SimReport};
use migopt_models::{Objective, Plan, Scenario};
use migopt_sim::{Arrivals, CapacityTarget, SchedulerKind, ServingMode, SimConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `--scheduler`: every [`SchedulerKind`], by its report name (`rr` for round-robin too).
#[derive(Debug, Clone, Copy)]
pub struct Scheduler(pub SchedulerKind);

const SCHEDULERS: [Scheduler; SchedulerKind::ALL.len()] = {
    let mut v = [Scheduler(SchedulerKind::Elsa); SchedulerKind::ALL.len()];
    let mut i = 0;
    while i < v.len() {
        v[i] = Scheduler(SchedulerKind::ALL[i]);
        i += 1;
    }
    v
};

impl clap::ValueEnum for Scheduler {
    fn value_variants<'a>() -> &'a [Self] {
        &SCHEDULERS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let v = clap::builder::PossibleValue::new(self.0.as_str()).help(self.0.summary());
        Some(if self.0 == SchedulerKind::RoundRobin {
            v.alias("rr")
        } else {
            v
        })
    }
}

/// Input and simulation flags shared by `simulate` and `capacity`.
#[derive(clap::Args, Debug)]
pub struct SimFlags {
    /// A plan (.json, from `migopt plan --out`) or a scenario (.toml, planned first with the
    /// MILP). Default: the shipped default scenario, planned with the MILP.
    input: Option<PathBuf>,
    /// The scenario a plan serves, if the plan does not record it.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Scheduler.
    #[arg(long, value_enum, default_value = "elsa")]
    scheduler: Scheduler,
    /// Total arrival rate, queries/s, split by the scenario's shares. Default: the
    /// scenario's rates, or else the plan's planned load (its objective).
    #[arg(long)]
    rate: Option<f64>,
    /// Replay a trace CSV (`arrival_ms,model,batch`) instead of Poisson arrivals.
    #[arg(long, conflicts_with = "rate")]
    trace: Option<PathBuf>,
    /// Queries per replication (warm-up included).
    #[arg(long)]
    queries: Option<u64>,
    /// Simulated seconds per replication (with --queries too, whichever ends first).
    #[arg(long)]
    duration: Option<f64>,
    /// Fraction of each replication discarded as warm-up.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    /// Independent replications (confidence intervals need 2 or more).
    #[arg(long, default_value_t = 5)]
    replications: u32,
    /// Master seed: same seed, same result, at any thread count.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads for replications (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Draw service times between the profile's p50 and p99.
    #[arg(long)]
    jitter: bool,
    /// Drop queries that can no longer meet their deadline.
    #[arg(long)]
    drop_late: bool,
    /// With --jitter: let schedulers read the service times already drawn for queued and
    /// running queries (oracle knowledge). Default: only the medians of queued work and the
    /// elapsed time of running work, as a real dispatcher knows.
    #[arg(long, requires = "jitter")]
    oracle_estimates: bool,
    /// Serving mode: query-batches or dynamic-batching (default: the plan's, or
    /// dynamic-batching when --max-queue-delay is given).
    #[arg(long)]
    mode: Option<String>,
    /// Dynamic batching (implied without --mode): longest wait for a batch to fill, ms
    /// (default: from the shortest SLA, (1 - slo-factor) / 2 of it on a min-gpus plan, a
    /// quarter of it on a max-load plan).
    #[arg(long)]
    max_queue_delay: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Planner flags, used when the input is a scenario.
    #[command(flatten)]
    plan_flags: PlanFlags,
}

/// `capacity` searches the rate itself, on Poisson arrivals: `--rate` and `--trace` stay
/// out of its help (given anyway, they are refused with a message).
#[derive(clap::Args, Debug)]
#[command(mut_arg("rate", |a| a.hide(true)), mut_arg("trace", |a| a.hide(true)))]
pub struct CapacityArgs {
    #[command(flatten)]
    sim: SimFlags,
    /// What "sustained" means: p99 (every model's p99 within its SLA) or violations.
    #[arg(long, default_value = "p99")]
    target: String,
    /// Largest acceptable fraction of queries over their SLA, with --target violations.
    #[arg(long, default_value_t = 0.01)]
    violation_budget: f64,
}

fn bad(m: String) -> CliError {
    CliError::Input(migopt_models::Error::Invalid(m))
}

/// The plan and scenario to simulate, and a note when the plan was made here. (`simulate`
/// and `capacity` write no file: what they read need not be kept.)
fn inputs(f: &SimFlags) -> Result<(Plan, Scenario, Option<String>), CliError> {
    let mut read = Inputs::default();
    match f.input.as_deref() {
        Some(p) if p.extension().is_some_and(|e| e == "json") => {
            let (plan, s) = load_plan(p, f.scenario.as_deref(), &mut read)?;
            Ok((plan, s, None))
        }
        other => {
            if let Some(extra) = &f.scenario {
                return Err(bad(format!(
                    "--scenario {} applies only to a plan (.json) input, and {} is a scenario",
                    extra.display(),
                    other.map_or("the default input".into(), |p| p.display().to_string())
                )));
            }
            let s = load_scenario(other, &mut read)?;
            let plan = super::plan::make_plan(&s, other, "milp", &f.plan_flags)
                .map_err(|e| e.in_scenario(other))?;
            let note = format!(
                "planned {} first with the MILP ({}, {:.1} {})",
                other
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the default scenario".into()),
                plan.report.status.as_str(),
                plan.report.objective,
                if plan.objective_kind == Objective::MaxLoad {
                    "queries/s"
                } else {
                    "GPUs"
                }
            );
            Ok((plan, s, Some(note)))
        }
    }
}

/// The arrival process, with the size of a replication checked against the limits; a
/// trace's records checked against the plan under `mode`, each error at its line.
fn arrivals(
    f: &SimFlags,
    plan: &Plan,
    s: &Scenario,
    mode: Option<ServingMode>,
) -> Result<Arrivals, CliError> {
    if let Some(t) = &f.trace {
        let mut read = Inputs::default();
        return Ok(Arrivals::Trace(migopt_sim::read_trace_for_plan(
            t, plan, s, mode, &mut read,
        )?));
    }
    let a = if let Some(r) = f.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err(bad(format!(
                "--rate {r} must be a positive number of queries per second"
            )));
        }
        Arrivals::Poisson { total_rate_qps: r }
    } else if let Some(a) = Arrivals::from_scenario(s) {
        a
    } else {
        Arrivals::Poisson {
            total_rate_qps: plan.report.objective,
        }
    };
    let total = match &a {
        Arrivals::Poisson { total_rate_qps } => *total_rate_qps,
        Arrivals::PoissonPerModel { rates_qps } => rates_qps.iter().sum(),
        Arrivals::Trace(_) => return Ok(a),
    };
    migopt_models::limits::check_run(total, f.queries, f.duration, migopt_sim::DEFAULT_QUERIES)
        .map_err(bad)?;
    Ok(a)
}

/// The run-size and timing flags, each checked with its name in the message.
fn check_flags(f: &SimFlags) -> Result<(), CliError> {
    use migopt_models::limits::{num, MAX_LATENCY_MS, MAX_REPLICATIONS};
    if let Some(t) = f.threads {
        super::common::check_threads(t as u64)?;
    }
    if f.replications > MAX_REPLICATIONS {
        return Err(bad(format!(
            "--replications {} is above the limit of {MAX_REPLICATIONS}",
            f.replications
        )));
    }
    if f.replications == 0 {
        return Err(bad("--replications 0 must be at least 1".into()));
    }
    if let Some(q) = f.queries {
        migopt_models::limits::check_queries(q).map_err(bad)?;
    }
    if !(0.0..1.0).contains(&f.warmup) {
        return Err(bad(format!(
            "--warmup {} must be at least 0 and below 1",
            num(f.warmup)
        )));
    }
    if let Some(d) = f
        .max_queue_delay
        .filter(|d| !(0.0..=MAX_LATENCY_MS).contains(d))
    {
        return Err(bad(format!(
            "--max-queue-delay {} must be a number of milliseconds from 0 to {MAX_LATENCY_MS:e}",
            num(d)
        )));
    }
    Ok(())
}

fn config(f: &SimFlags, plan: &Plan, s: &Scenario) -> Result<SimConfig, CliError> {
    check_flags(f)?;
    let mode = mode(f, plan, s)?;
    let arrivals = arrivals(f, plan, s, mode)?;
    let mut cfg = SimConfig::new(arrivals);
    cfg.scheduler = f.scheduler.0;
    cfg.queries = f.queries;
    cfg.duration_s = f.duration;
    cfg.warmup_fraction = f.warmup;
    cfg.replications = f.replications;
    cfg.seed = f.seed;
    cfg.threads = f.threads;
    cfg.jitter = f.jitter;
    cfg.drop_late = f.drop_late;
    cfg.oracle_estimates = f.oracle_estimates;
    cfg.mode = mode;
    Ok(cfg)
}

/// The serving mode of `--mode` and `--max-queue-delay` (`None`: the plan's own).
fn mode(f: &SimFlags, plan: &Plan, s: &Scenario) -> Result<Option<ServingMode>, CliError> {
    Ok(match f.mode.as_deref() {
        None => f.max_queue_delay.map(|d| ServingMode::DynamicBatching {
            max_queue_delay_ms: d,
        }),
        Some("query-batches") if f.max_queue_delay.is_some() => {
            return Err(bad(
                "--max-queue-delay applies to dynamic batching, not to --mode query-batches".into(),
            ))
        }
        Some("query-batches") => Some(ServingMode::QueryBatches),
        Some("dynamic-batching") => Some(ServingMode::DynamicBatching {
            max_queue_delay_ms: match f.max_queue_delay {
                Some(d) => d,
                None => match ServingMode::for_plan(plan, s) {
                    ServingMode::DynamicBatching { max_queue_delay_ms } => max_queue_delay_ms,
                    ServingMode::QueryBatches => {
                        s.models
                            .iter()
                            .map(|m| m.sla.0)
                            .fold(f64::INFINITY, f64::min)
                            / 4.0
                    }
                },
            },
        }),
        Some(m) => {
            return Err(bad(format!(
                "unknown mode `{m}` (query-batches or dynamic-batching)"
            )))
        }
    })
}

/// `12.34 ± 0.56`
fn est(e: &Estimate, digits: usize) -> String {
    e.fmt_pm(digits)
}

pub fn run_simulate(f: SimFlags) -> Result<(), CliError> {
    let (plan, s, note) = inputs(&f)?;
    let cfg = config(&f, &plan, &s)?;
    let bar = Progress::new("simulating", !f.json);
    let report = migopt_sim::simulate_with_progress(&plan, &s, &cfg, &|d, t| bar.update(d, t))?;
    bar.finish();
    if f.json {
        crate::say!("{}", to_json(&report)?);
        return Ok(());
    }
    if let Some(n) = note {
        crate::sayln!("{n}");
    }
    crate::say!("{}", render_sim(&report));
    Ok(())
}

/// The human report of a simulation.
pub fn render_sim(r: &SimReport) -> String {
    let mut o = format!(
        "simulated {} ({} plan) on {}: scheduler {}, {}\narrivals {}, {} replication{} x {:.0} queries, seed {}\n",
        r.scenario, r.solver, r.gpu, r.scheduler, r.mode, r.arrivals, r.replications,
        if r.replications == 1 { "" } else { "s" }, r.queries_per_replication, r.seed
    );
    o += &format!(
        "overall: throughput {} q/s, SLA violations {}% ({})\n\n",
        est(&r.throughput_qps, 1),
        est(&r.sla_violation_rate.scaled(100.0), 3),
        r.interval_note()
    );
    o += &model_table(r);
    o += "\n";
    o += &gpu_table(r);
    o
}

/// The per-model table of a simulation: latency percentiles, violations, drops,
/// throughput and queue length.
fn model_table(r: &SimReport) -> String {
    let rows: Vec<Vec<String>> = r.models.iter().map(model_row).collect();
    table(
        &[
            "model",
            "SLA ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
            "viol %",
            "drop %",
            "q/s",
            "queue p50/p99",
        ],
        &rows,
    )
}

/// One model's row of [`model_table`].
fn model_row(m: &migopt_models::report::ModelReport) -> Vec<String> {
    let l = m.latency_ms.as_ref();
    let g = |f: fn(&migopt_models::report::LatencySummary) -> &Estimate| {
        l.map(|l| est(f(l), 2)).unwrap_or("-".into())
    };
    vec![
        m.model.to_string(),
        format!("{:.1}", m.sla_ms),
        g(|l| &l.p50),
        g(|l| &l.p95),
        g(|l| &l.p99),
        g(|l| &l.p999),
        format!("{:.3}", m.sla_violation_rate.mean * 100.0),
        format!("{:.3}", m.drop_rate.mean * 100.0),
        est(&m.throughput_qps, 1),
        format!(
            "{:.2}/{:.0}",
            m.queue_length.p50.mean, m.queue_length.p99.mean
        ),
    ]
}

/// The per-GPU table of a simulation: utilisation and each instance's, fitted to the
/// terminal.
fn gpu_table(r: &SimReport) -> String {
    // Each GPU's instances, found in one pass (a scan of every instance per GPU took hours
    // on a plan of 100,000 GPUs).
    let mut by_gpu: BTreeMap<u32, Vec<&InstanceReport>> = BTreeMap::new();
    for i in &r.instances {
        by_gpu.entry(i.gpu).or_default().push(i);
    }
    let rows: Vec<Vec<String>> = r
        .gpus
        .iter()
        .map(|g| {
            let inst: Vec<String> = (by_gpu.get(&g.index).into_iter().flatten())
                .map(|i| {
                    format!(
                        "{}@{} {} {:.0}%",
                        i.profile,
                        i.start,
                        i.model,
                        i.utilisation.mean * 100.0
                    )
                })
                .collect();
            vec![
                g.index.to_string(),
                // `+ 0.0` prints an idle GPU's -0.0 (an empty mean) as 0.0.
                format!("{:.1}", g.utilisation.mean * 100.0 + 0.0),
                inst.join("  "),
            ]
        })
        .collect();
    table_fit(
        &["GPU", "util %", "instances (utilisation)"],
        &rows,
        term_width(),
    )
}

pub fn run_capacity(a: CapacityArgs) -> Result<(), CliError> {
    if let Some(r) = a.sim.rate {
        return Err(bad(format!(
            "--rate {} does not apply to capacity: the search varies the total rate itself (split as the scenario's traffic is)",
            migopt_models::limits::num(r)
        )));
    }
    let (plan, s, note) = inputs(&a.sim)?;
    let cfg = config(&a.sim, &plan, &s)?;
    let target = match a.target.as_str() {
        "p99" => CapacityTarget::P99,
        "violations" if (0.0..1.0).contains(&a.violation_budget) => CapacityTarget::Violations {
            budget: a.violation_budget,
        },
        "violations" => {
            return Err(bad(format!(
                "--violation-budget {} must be at least 0 and below 1",
                migopt_models::limits::num(a.violation_budget)
            )))
        }
        t => return Err(bad(format!("unknown target `{t}` (p99 or violations)"))),
    };
    let bar = Progress::new("capacity search", !a.sim.json);
    let report =
        migopt_sim::capacity_with_progress(&plan, &s, &cfg, target, &|d, t| bar.update(d, t))?;
    bar.finish();
    if a.sim.json {
        crate::say!("{}", to_json(&report)?);
        return Ok(());
    }
    if let Some(n) = note {
        crate::sayln!("{n}");
    }
    crate::sayln!(
        "capacity of {} ({} plan) under {} ({}), target {}:",
        report.scenario,
        report.solver,
        report.scheduler,
        report.mode,
        report.target
    );
    crate::sayln!(
        "  simulated  {} queries/s ({})",
        est(&report.capacity_qps, 1),
        migopt_models::interval_note(report.per_replication_qps.len())
    );
    match (report.fluid_capacity_qps, report.ratio_to_fluid) {
        (Some(f), Some(r)) => crate::sayln!(
            "  fluid      {f:.1} queries/s (the plan's fluid model at this mix); simulated/fluid = {r:.3}"
        ),
        (Some(f), None) => crate::sayln!("  fluid      {f:.1} queries/s (the plan's fluid model at this mix)"),
        _ => {}
    }
    crate::sayln!("  resolution {:.1} queries/s", report.resolution_qps);
    Ok(())
}
