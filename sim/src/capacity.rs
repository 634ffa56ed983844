//! Capacity search: the largest total arrival rate a plan carries while every model meets
//! its target, found by bisection in simulation and set beside the planner's fluid promise.

use crate::run::RepStats;
use crate::{no_progress, summary, Arrivals, Job, Progress, SimConfig};
use migopt_models::report::{CapacityProbe, CapacityReport};
use migopt_models::{Error, Objective, Plan, Scenario};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// What "meets its target" means for every model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum CapacityTarget {
    /// The 99th-percentile latency is within the SLA (dropped queries count as infinitely
    /// late).
    P99,
    /// The fraction of queries missing the SLA (dropped included) is within a budget.
    Violations {
        /// Largest acceptable violation rate, e.g. 0.01.
        budget: f64,
    },
}

impl CapacityTarget {
    fn label(&self) -> String {
        match self {
            CapacityTarget::P99 => "p99 <= sla".into(),
            CapacityTarget::Violations { budget } => format!("violations <= {budget}"),
        }
    }
}

/// Bisection steps per replication: the bracket shrinks to 2⁻¹⁰ of the upper bound.
const STEPS: u32 = 10;

/// The worst model's measured quantity relative to its limit (≤ 1 passes).
fn worst_ratio(job: &Job, r: &RepStats, target: CapacityTarget) -> f64 {
    let mut worst: f64 = 0.0;
    for (m, a) in r.models.iter().enumerate() {
        if a.measured == 0 {
            continue;
        }
        let ratio = match target {
            CapacityTarget::P99 => match a.lat.quantile_of(0.99, a.completed + a.dropped) {
                Some(q) => q / job.prep.models[m].sla,
                None => continue,
            },
            CapacityTarget::Violations { budget } => {
                let rate = (a.late + a.dropped) as f64 / a.measured as f64;
                if budget > 0.0 {
                    rate / budget
                } else if rate == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            }
        };
        worst = worst.max(ratio);
    }
    worst
}

/// An upper bound on the total rate: no instance serves queries faster than its fastest
/// query (or, batching, than its most efficient batch filled with the smallest requests),
/// so beyond this some model's queue grows without bound.
fn upper_bound(job: &Job, shares: &[f64]) -> f64 {
    let p = &job.prep;
    let w = p.width;
    let mut ub = f64::INFINITY;
    for (m, pm) in p.models.iter().enumerate() {
        if shares[m] <= 0.0 {
            continue;
        }
        let bmin = pm.batch_vals.first().copied().unwrap_or(1).max(1) as f64;
        let mut cap = 0.0;
        for &i in &pm.insts {
            let inst = &p.insts[i as usize];
            let row = &p.med[i as usize * w..(i as usize + 1) * w];
            let rate = if p.dynamic.is_some() {
                // The best batch size for throughput, whatever the profile's shape: a batch
                // of n samples holds at most n / (smallest request) requests.
                (1..=inst.batch as usize)
                    .map(|n| (n as f64 / bmin).floor().max(1.0) * 1000.0 / row[n])
                    .fold(0.0, f64::max)
            } else {
                let fastest = row.iter().copied().fold(f64::INFINITY, f64::min);
                1000.0 / fastest
            };
            if rate.is_finite() {
                cap += inst.procs as f64 * rate;
            }
        }
        ub = ub.min(cap / shares[m]);
    }
    ub
}

/// What the planner promised, in total queries/s at these shares: the largest total rate
/// the plan's provisioned per-model rates carry at them. For a max-load plan at its own
/// mix that is its objective (each model's rate is λ·share); at another mix (`--scenario`)
/// it is less, so the objective stands only when the plan lists no rates. `None` when a
/// model with a share has no provisioned rate, or the plan carries nothing.
pub fn promised_capacity(plan: &Plan, scenario: &Scenario, shares: &[f64]) -> Option<f64> {
    let carried = || {
        let mut best = f64::INFINITY;
        for (m, s) in scenario.models.iter().zip(shares) {
            if *s <= 0.0 {
                continue;
            }
            let r = plan.model_rates.iter().find(|r| r.model == m.name)?;
            best = best.min(r.rate_qps / s);
        }
        Some(best)
    };
    let v = match plan.objective_kind {
        Objective::MaxLoad => carried()
            .filter(|v| v.is_finite())
            .unwrap_or(plan.report.objective),
        Objective::MinGpus => carried()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

/// Finds the largest total arrival rate (split by the scenario's shares, or by the
/// proportions of `PoissonPerModel` rates) at which every model meets `target`. Each
/// replication bisects on its own random stream with common random numbers across rates,
/// so the answer comes with a 95% interval over replications; a full simulation at the
/// capacity found is attached.
pub fn capacity(
    plan: &Plan,
    scenario: &Scenario,
    cfg: &SimConfig,
    target: CapacityTarget,
) -> Result<CapacityReport, Error> {
    capacity_with_progress(plan, scenario, cfg, target, &no_progress)
}

/// [`capacity`], calling `progress(done, total)` after every simulation.
pub fn capacity_with_progress(
    plan: &Plan,
    scenario: &Scenario,
    cfg: &SimConfig,
    target: CapacityTarget,
    progress: Progress<'_>,
) -> Result<CapacityReport, Error> {
    let shares = search_shares(scenario, cfg, target)?;
    // Validates the configuration (rates included) and builds the tables once.
    let job = Job::new(plan, scenario, cfg)?;
    let hi0 = upper_bound(&job, &shares);
    if !(hi0.is_finite() && hi0 > 0.0) {
        return Err(Error::Invalid(
            "the plan has no instance that can serve its models' queries".into(),
        ));
    }
    // The search probes rates up to `hi0`: each probe is a run the limits must hold.
    let top = hi0.ceil();
    migopt_models::limits::check_run(top, cfg.queries, cfg.duration_s, crate::DEFAULT_QUERIES)
        .map_err(|m| {
            Error::Invalid(format!(
                "the capacity search probes rates up to the plan's throughput bound: {m}"
            ))
        })?;
    let reps = cfg.replications;
    let total = reps as u64 * STEPS as u64 + 1;
    let done = AtomicU64::new(0);
    let pool = job.pool()?;
    let results: Vec<(f64, Vec<CapacityProbe>)> = pool.install(|| {
        (0..reps)
            .into_par_iter()
            .map(|r| {
                bisect(&job, &shares, target, (r, hi0), || {
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total)
                })
            })
            .collect()
    });
    let per_rep: Vec<f64> = results.iter().map(|r| r.0).collect();
    let est = crate::stats::estimate(&per_rep);
    let at_capacity = if est.mean > 0.0 {
        let rates: Vec<f64> = shares.iter().map(|s| s * est.mean).collect();
        let stats = job.run_all(Some(&rates), &|_, _| {})?;
        Some(summary::build(
            &job.prep,
            job.header(scenario, plan, Some(&rates)),
            &stats,
        ))
    } else {
        None
    };
    progress(total, total);
    let fluid = promised_capacity(plan, scenario, &shares);
    Ok(CapacityReport {
        scenario: scenario.name.clone(),
        solver: plan.solver.clone(),
        scheduler: cfg.scheduler.as_str().into(),
        mode: job.mode.as_str().into(),
        target: target.label(),
        capacity_qps: est,
        per_replication_qps: per_rep,
        resolution_qps: hi0 / (1u64 << STEPS) as f64,
        fluid_capacity_qps: fluid,
        ratio_to_fluid: fluid.map(|f| est.mean / f),
        probes: results.into_iter().flat_map(|r| r.1).collect(),
        at_capacity,
    })
}

/// The share of the total rate each model gets in the search: the scenario's shares, or the
/// proportions of `PoissonPerModel` rates. Errors on a bad violation budget or a trace.
fn search_shares(
    scenario: &Scenario,
    cfg: &SimConfig,
    target: CapacityTarget,
) -> Result<Vec<f64>, Error> {
    if let CapacityTarget::Violations { budget } = target {
        if !(budget.is_finite() && (0.0..1.0).contains(&budget)) {
            return Err(Error::Invalid(format!(
                "violation budget {budget} must be at least 0 and below 1"
            )));
        }
    }
    match &cfg.arrivals {
        Arrivals::Poisson { .. } => Ok(scenario.shares()),
        Arrivals::PoissonPerModel { rates_qps } => {
            let t: f64 = rates_qps.iter().sum();
            Ok(rates_qps.iter().map(|r| r / t).collect())
        }
        Arrivals::Trace(_) => Err(Error::Invalid(
            "capacity search varies the arrival rate, so it needs Poisson arrivals, not a trace"
                .into(),
        )),
    }
}

/// Replication `r`'s bisection between 0 and `hi0` queries/s: the highest rate that passed
/// and every probe; `probed` is called after each simulation.
fn bisect(
    job: &Job,
    shares: &[f64],
    target: CapacityTarget,
    (r, hi0): (u32, f64),
    probed: impl Fn(),
) -> (f64, Vec<CapacityProbe>) {
    let (mut lo, mut hi) = (0.0, hi0);
    let mut probes = Vec::with_capacity(STEPS as usize);
    for _ in 0..STEPS {
        let mid = (lo + hi) / 2.0;
        let rates: Vec<f64> = shares.iter().map(|s| s * mid).collect();
        let spec = job.spec(Some(&rates));
        let st = job.replicate(&spec, r);
        let ratio = worst_ratio(job, &st, target);
        let passed = ratio <= 1.0;
        if passed {
            lo = mid;
        } else {
            hi = mid;
        }
        probes.push(CapacityProbe {
            replication: r,
            rate_qps: mid,
            passed,
            worst_ratio: ratio.is_finite().then_some(ratio),
        });
        probed();
    }
    (lo, probes)
}
