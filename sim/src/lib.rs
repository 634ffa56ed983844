//! # migopt-sim
//!
//! Discrete-event simulation of a MIG inference server running a [`Plan`]: queries arrive
//! (Poisson, or a replayed trace), a scheduler sends each to an instance of its model, the
//! instance runs it for the profiled latency, and the report says what latency each model
//! saw, how often SLAs were missed and how busy every instance and GPU was. The planner's
//! fluid model promises capacity; this crate checks the promise with queueing included.
//!
//! * [`simulate`] runs independent Monte-Carlo replications (in parallel, bit-identical at
//!   any thread count) and reports means with 95% confidence intervals.
//! * [`capacity`] finds, by bisection on the total arrival rate, the largest load at which
//!   every model still meets its target, beside the plan's fluid promise.
//! * [`read_trace`] reads a `arrival_ms,model,batch` CSV for exact replay.
//! * [`sched`] holds every scheduler: FIFS, JSQ, round-robin, random and the ELSA family —
//!   `elsa-greedy` (the paper's rule as first reconstructed), `elsa-margin`, `elsa-protect`
//!   and `elsa-plan`, which follows the plan's routes; `elsa` runs `elsa-plan`. The
//!   ablation in `papers/paris-elsa` measures them against each other.
//!
//! Two engines sit behind one API, and both take their decisions from one place,
//! [`sched`]: a decision function per scheduler, over candidates that carry only what a real
//! dispatcher knows (see [`sched::Dispatcher`], the same state and rules for a real server).
//! Dispatch-at-arrival schedulers in query-batch mode with median service times need no
//! event queue at all: a query's start and finish are known the moment it is dispatched.
//! FIFS, dynamic batching, and dispatch at arrival under `jitter` (where the dispatcher must
//! not read the drawn service times), run on a binary-heap event engine.
//!
//! ## Modelling choices
//!
//! * Service time is the profile's median latency L(profile, batch, procs), looked up with
//!   the scenario's `batch_lookup` and never extrapolated. With `jitter` it is drawn from a
//!   shifted exponential (a Weibull where p99 > 6.6·p50) whose median is the profile's p50
//!   and whose 99th percentile is its p99, both exactly.
//! * An instance with `procs` MPS processes is `procs` identical servers behind one FIFO
//!   queue, each taking L(·, ·, procs).
//! * Schedulers estimate from the medians of queued work and the elapsed time of running
//!   work (running work's median minus the time it has run, never below zero), as a real
//!   dispatcher can. Without jitter and interference these estimates are exact. With jitter
//!   or the interference model (neighbour-load profiles) the true service times differ from
//!   the medians, so dispatch-at-arrival runs on the event engine with this knowledge; with
//!   `oracle_estimates` they read the true service times instead (the optimistic bound).
//! * Statistics cover queries after the warm-up; utilisation is busy time inside the window
//!   from the first measured arrival to the last arrival, per process.
//! * Dropped queries (`drop_late`) count as SLA violations and as infinitely late for p99
//!   capacity targets, never as fast completions.

#![warn(missing_docs)]

mod capacity;
mod direct;
mod event;
pub mod interference;
mod prep;
mod rng;
mod run;
pub mod sched;
mod served;
mod stats;
mod summary;
mod trace;

pub use capacity::{capacity, capacity_with_progress, promised_capacity, CapacityTarget};
pub use migopt_models::report::{
    CapacityProbe, CapacityReport, Estimate, GpuReport, InstanceReport, LatencySummary,
    ModelReport, QueueSummary, SimReport,
};
pub use sched::{Dispatcher, SchedulerKind};
pub use served::{poisson_trace, served_report, ServedQuery};
pub use trace::{parse_trace, parse_trace_for, read_trace, read_trace_for, TraceRecord};

use migopt_models::{Error, Objective, Plan, Scenario};
use prep::Prepared;
use rayon::prelude::*;
use run::{RepStats, RunSpec, Source, TraceQ, Warm};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// How instances turn queries into GPU work.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ServingMode {
    /// Each query carries its own batch and runs as it is (PARIS/ELSA); no merging. An
    /// instance accepts query batches up to its assignment's `batch`.
    QueryBatches,
    /// Triton-style dynamic batching: requests queue per instance (or per model under FIFS)
    /// and are cut into batches of up to the assignment's `batch` samples. A batch starts
    /// when a process is free and either the batch is full or the oldest request has waited
    /// `max_queue_delay_ms`; an instance with `procs` processes runs that many batches at
    /// once, each taking L(size, n, procs) for its actual size n.
    DynamicBatching {
        /// Longest a request waits for its batch to fill, ms.
        max_queue_delay_ms: f64,
    },
}

impl ServingMode {
    /// The mode a plan was made for: max-load plans route query batches (PARIS), min-gpus
    /// plans batch single requests on the server (ParvaGPU). For dynamic batching the delay
    /// is half the queueing budget the planner left: the planner admits batch latencies up
    /// to `slo_factor`·SLA, so (1 − slo_factor)·SLA remains for waiting; spending half of it
    /// on filling a batch leaves the rest for waiting on a busy process. The tightest SLA of
    /// the scenario sets it.
    pub fn for_plan(plan: &Plan, scenario: &Scenario) -> ServingMode {
        match plan.objective_kind {
            Objective::MaxLoad => ServingMode::QueryBatches,
            Objective::MinGpus => {
                let sla = scenario
                    .models
                    .iter()
                    .map(|m| m.sla.0)
                    .fold(f64::INFINITY, f64::min);
                let budget = (1.0 - plan.params.slo_factor).clamp(0.0, 1.0);
                let d = if sla.is_finite() {
                    sla * budget / 2.0
                } else {
                    0.0
                };
                ServingMode::DynamicBatching {
                    max_queue_delay_ms: d,
                }
            }
        }
    }

    /// The name used in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServingMode::QueryBatches => "query-batches",
            ServingMode::DynamicBatching { .. } => "dynamic-batching",
        }
    }
}

/// Where queries come from. In JSON: `{"kind": "poisson", "with": {"total_rate_qps": 900}}`,
/// `{"kind": "trace", "with": [{"arrival_ms": 0, "model": "m", "batch": 1}, ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "with")]
pub enum Arrivals {
    /// Poisson arrivals at a total rate, split among models by the scenario's shares
    /// (`Scenario::shares`), batch sizes drawn from each model's distribution.
    Poisson {
        /// Queries per second, all models together.
        total_rate_qps: f64,
    },
    /// Independent Poisson arrivals per model, in scenario order (zero silences a model).
    PoissonPerModel {
        /// Queries per second of each model.
        rates_qps: Vec<f64>,
    },
    /// Replay of recorded queries, exactly (times, models and batch sizes).
    Trace(Vec<TraceRecord>),
}

impl Arrivals {
    /// Poisson arrivals at the scenario's own rates (`rate_qps` per model), if it gives any.
    pub fn from_scenario(scenario: &Scenario) -> Option<Arrivals> {
        scenario
            .rates()
            .map(|rates_qps| Arrivals::PoissonPerModel { rates_qps })
    }
}

/// Queries per replication when neither `queries` nor `duration_s` bounds the run.
pub const DEFAULT_QUERIES: u64 = 200_000;

/// Everything about a simulation run except the plan and scenario. Plain data, so the CLI
/// can fill it from flags or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Serving mode; `None` takes the plan's ([`ServingMode::for_plan`]).
    pub mode: Option<ServingMode>,
    /// Arrival process.
    pub arrivals: Arrivals,
    /// Queries per replication, warm-up included. With neither this nor `duration_s`,
    /// [`DEFAULT_QUERIES`]; with both, whichever ends first.
    pub queries: Option<u64>,
    /// Simulated seconds per replication.
    pub duration_s: Option<f64>,
    /// Fraction of each replication discarded from the statistics as warm-up: of the
    /// queries when the run is bounded by a query count (or is a trace), of the simulated
    /// time otherwise.
    pub warmup_fraction: f64,
    /// Independent replications (at least 2 for confidence intervals).
    pub replications: u32,
    /// Master seed.
    pub seed: u64,
    /// Worker threads; `None` uses every core. Results do not depend on it.
    pub threads: Option<usize>,
    /// Draw service times between the profile's p50 and p99 instead of using p50.
    pub jitter: bool,
    /// Drop a query once it can no longer meet its deadline (reported separately).
    pub drop_late: bool,
    /// With `jitter` or the interference model: let dispatch-at-arrival schedulers read the
    /// true service times of queued and running queries (oracle knowledge, as migopt did
    /// before 0.2; the event-free engine runs). Off, they know only the isolated medians of
    /// queued work and how long running work has run, as a real dispatcher (`migopt serve`)
    /// does, and the event-driven engine runs. Without jitter and interference both are the
    /// same.
    #[serde(default)]
    pub oracle_estimates: bool,
    /// A fixed cost per query of the serving stack, ms, added to every service time (the
    /// dispatcher's estimates included): for predicting a real server such as `migopt serve`,
    /// whose worker spends it on the request pipe and waking up. 0 (the default) simulates
    /// the GPU work alone.
    #[serde(default)]
    pub service_overhead_ms: f64,
    /// A fixed cost per query of the serving stack that delays the answer but keeps no
    /// instance busy, ms, added to every query's latency only: for `migopt serve`, the part
    /// of a pipe round trip that is not spent between two queued queries (waking an idle
    /// worker, reading the answer back). 0 (the default) simulates the GPU work alone.
    #[serde(default)]
    pub latency_overhead_ms: f64,
}

impl SimConfig {
    /// A configuration with the defaults the CLI starts from: ELSA, the plan's mode,
    /// [`DEFAULT_QUERIES`] queries, 10% warm-up, 5 replications, seed 0, no jitter, no drops.
    pub fn new(arrivals: Arrivals) -> Self {
        Self {
            scheduler: SchedulerKind::Elsa,
            mode: None,
            arrivals,
            queries: None,
            duration_s: None,
            warmup_fraction: 0.1,
            replications: 5,
            seed: 0,
            threads: None,
            jitter: false,
            drop_late: false,
            oracle_estimates: false,
            service_overhead_ms: 0.0,
            latency_overhead_ms: 0.0,
        }
    }

    fn check(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return Err(Error::Invalid(format!(
                "warm-up fraction {} must be at least 0 and below 1",
                self.warmup_fraction
            )));
        }
        if self.replications == 0 {
            return Err(Error::Invalid("replications must be at least 1".into()));
        }
        if self.queries == Some(0) {
            return Err(Error::Invalid("queries must be at least 1".into()));
        }
        if let Some(d) = self.duration_s {
            if !(d.is_finite() && d > 0.0) {
                return Err(Error::Invalid(format!(
                    "duration {d} s must be a positive number of seconds"
                )));
            }
        }
        if self.threads == Some(0) {
            return Err(Error::Invalid("threads must be at least 1".into()));
        }
        if !(self.service_overhead_ms.is_finite() && self.service_overhead_ms >= 0.0) {
            return Err(Error::Invalid(format!(
                "service overhead {} ms must be a non-negative number of milliseconds",
                self.service_overhead_ms
            )));
        }
        if !(self.latency_overhead_ms.is_finite() && self.latency_overhead_ms >= 0.0) {
            return Err(Error::Invalid(format!(
                "latency overhead {} ms must be a non-negative number of milliseconds",
                self.latency_overhead_ms
            )));
        }
        Ok(())
    }
}

/// Reports progress as (done, total): replications for [`simulate`], simulations for
/// [`capacity`]. Called from worker threads, hence `Sync`; the CLI drives a progress bar
/// with it.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

fn no_progress(_: u64, _: u64) {}

/// A run fully resolved: tables, arrival source, limits.
pub(crate) struct Job {
    pub prep: Prepared,
    pub trace: Vec<TraceQ>,
    pub src_rates: Option<Vec<f64>>,
    pub cfg: SimConfig,
    pub mode: ServingMode,
}

/// Poisson arrivals at `total` queries/s split by the scenario's shares: each model's rate.
fn poisson_rates(scenario: &Scenario, total: f64) -> Result<Vec<f64>, Error> {
    check_rate(total, "total arrival rate")?;
    let shares = scenario.shares();
    if shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(Error::Invalid(format!(
            "scenario `{}`: model shares must be non-negative with a positive sum",
            scenario.name
        )));
    }
    Ok(shares.iter().map(|s| s * total).collect())
}

/// Checks per-model Poisson rates: one per model of the scenario, each non-negative, with
/// a positive total.
fn check_model_rates(scenario: &Scenario, rates_qps: &[f64]) -> Result<(), Error> {
    let nm = scenario.models.len();
    if rates_qps.len() != nm {
        return Err(Error::Invalid(format!(
            "{} per-model rates given for {} models (scenario order: {})",
            rates_qps.len(),
            nm,
            scenario
                .models
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for (r, m) in rates_qps.iter().zip(&scenario.models) {
        if !r.is_finite() || *r < 0.0 {
            return Err(Error::Invalid(format!(
                "arrival rate of model `{}` must be a non-negative number of queries/s, got {r}",
                m.name
            )));
        }
    }
    check_rate(rates_qps.iter().sum(), "total arrival rate")
}

/// A trace's queries by model index, and the (model, batch) classes it uses.
type ResolvedTrace = (Vec<TraceQ>, BTreeSet<(u32, u32)>);

/// A trace's records resolved to model indices, checked (known models, non-negative times
/// that never go backwards, batches ≥ 1), and the (model, batch) classes it uses.
fn resolve_trace(scenario: &Scenario, recs: &[TraceRecord]) -> Result<ResolvedTrace, Error> {
    if recs.is_empty() {
        return Err(Error::Invalid("the trace has no queries".into()));
    }
    let mut trace = Vec::with_capacity(recs.len());
    let mut extra = BTreeSet::new();
    let mut last = 0.0;
    for (k, r) in recs.iter().enumerate() {
        // The message is only formatted for a record that fails a check.
        let bad = |what: String| Error::Invalid(format!("trace record {}: {what}", k + 1));
        let Some(m) = scenario.models.iter().position(|x| x.name == r.model) else {
            return Err(bad(format!(
                "model `{}` is not in scenario `{}`",
                r.model, scenario.name
            )));
        };
        if !(r.arrival_ms.is_finite() && r.arrival_ms >= 0.0) {
            return Err(bad(format!(
                "arrival_ms {} must be a non-negative time",
                r.arrival_ms
            )));
        }
        if r.arrival_ms < last {
            return Err(bad(format!(
                "arrival_ms {} is before the previous record's {last}: time must not go backwards",
                r.arrival_ms
            )));
        }
        if r.batch == 0 {
            return Err(bad("batch must be at least 1".into()));
        }
        last = r.arrival_ms;
        extra.insert((m as u32, r.batch));
        trace.push(TraceQ {
            t: r.arrival_ms,
            m: m as u32,
            b: r.batch,
        });
    }
    Ok((trace, extra))
}

impl Job {
    pub(crate) fn new(plan: &Plan, scenario: &Scenario, cfg: &SimConfig) -> Result<Self, Error> {
        cfg.check()?;
        let mode = cfg
            .mode
            .unwrap_or_else(|| ServingMode::for_plan(plan, scenario));
        let (src_rates, trace, extra) = match &cfg.arrivals {
            Arrivals::Poisson { total_rate_qps } => {
                let rates = poisson_rates(scenario, *total_rate_qps)?;
                (Some(rates), Vec::new(), BTreeSet::new())
            }
            Arrivals::PoissonPerModel { rates_qps } => {
                check_model_rates(scenario, rates_qps)?;
                (Some(rates_qps.clone()), Vec::new(), BTreeSet::new())
            }
            Arrivals::Trace(recs) => {
                let (trace, extra) = resolve_trace(scenario, recs)?;
                (None, trace, extra)
            }
        };
        let mut prep = Prepared::new(plan, scenario, mode, &extra)?;
        check_kept(&prep, cfg.replications)?;
        prep.add_overhead(cfg.service_overhead_ms);
        prep.lat_extra = cfg.latency_overhead_ms;
        Ok(Self {
            prep,
            trace,
            src_rates,
            cfg: cfg.clone(),
            mode,
        })
    }

    /// The run specification at a given total Poisson rate (`None`: the configured one).
    pub(crate) fn spec(&self, rates: Option<&[f64]>) -> RunSpec<'_> {
        let cfg = &self.cfg;
        let max_ms = cfg.duration_s.map(|d| d * 1000.0).unwrap_or(f64::INFINITY);
        let rates = rates.or(self.src_rates.as_deref());
        let (src, count) = match rates {
            Some(r) => {
                let total: f64 = r.iter().sum();
                let q = match (cfg.queries, cfg.duration_s) {
                    (Some(q), _) => Some(q),
                    (None, Some(_)) => None,
                    (None, None) => Some(DEFAULT_QUERIES),
                };
                (
                    {
                        let mut weights = Vec::new();
                        let mut class_mb = Vec::new();
                        for (m, pm) in self.prep.models.iter().enumerate() {
                            for (&b, &pr) in pm.batch_vals.iter().zip(&pm.batch_probs) {
                                if r[m] > 0.0 {
                                    weights.push(r[m] * pr);
                                    class_mb.push((m as u32, b));
                                }
                            }
                        }
                        Source::Poisson {
                            gap_ms: 1000.0 / total,
                            classes: rng::Alias::new(&weights),
                            class_mb,
                        }
                    },
                    q,
                )
            }
            None => {
                let n = self.trace.len() as u64;
                (
                    Source::Trace(&self.trace),
                    Some(cfg.queries.map_or(n, |q| q.min(n))),
                )
            }
        };
        let warm = match count {
            Some(n) => Warm::Count((cfg.warmup_fraction * n as f64).floor() as u64),
            None => Warm::Time(cfg.warmup_fraction * max_ms),
        };
        RunSpec {
            src,
            max_queries: count.unwrap_or(u64::MAX),
            max_ms,
            warm,
            jitter: cfg.jitter,
            drop_late: cfg.drop_late,
            scheduler: cfg.scheduler,
        }
    }

    /// Runs replication `rep`; its random stream depends only on (seed, rep).
    pub(crate) fn replicate(&self, spec: &RunSpec<'_>, rep: u32) -> RepStats {
        let mut rng = rng::stream(self.cfg.seed, rep as u64);
        // The event-free engine's dispatcher reads the drain times it computes, which are
        // the true service times. They are what a real dispatcher knows (the medians of
        // queued work) only without jitter and without interference, or when oracle
        // knowledge is asked for.
        let knows_truth =
            self.cfg.oracle_estimates || (!self.cfg.jitter && self.prep.interf.is_none());
        if self.prep.dynamic.is_none() && self.cfg.scheduler.dispatches_at_arrival() && knows_truth
        {
            direct::run(&self.prep, spec, &mut rng)
        } else {
            event::run(&self.prep, spec, &mut rng)
        }
    }

    pub(crate) fn pool(&self) -> Result<rayon::ThreadPool, Error> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.cfg.threads.unwrap_or(0))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start the simulation threads: {e}")))
    }

    pub(crate) fn header(
        &self,
        scenario: &Scenario,
        plan: &Plan,
        rates: Option<&[f64]>,
    ) -> summary::Header {
        let rates = rates.map(|r| r.to_vec()).or_else(|| self.src_rates.clone());
        summary::Header {
            scenario: scenario.name.clone(),
            solver: plan.solver.clone(),
            gpu: plan.gpu.clone(),
            scheduler: self.cfg.scheduler.as_str().into(),
            mode: self.mode.as_str().into(),
            max_queue_delay_ms: match self.mode {
                ServingMode::DynamicBatching { max_queue_delay_ms } => Some(max_queue_delay_ms),
                ServingMode::QueryBatches => None,
            },
            arrivals: match self.cfg.arrivals {
                Arrivals::Poisson { .. } => "poisson",
                Arrivals::PoissonPerModel { .. } => "poisson-per-model",
                Arrivals::Trace(_) => "trace",
            }
            .into(),
            offered_rate_qps: rates.as_ref().map(|r| r.iter().sum()),
            model_rates: rates,
            warmup_fraction: self.cfg.warmup_fraction,
            seed: self.cfg.seed,
            jitter: self.cfg.jitter,
            drop_late: self.cfg.drop_late,
        }
    }

    /// All replications at the given rates, in parallel, in replication order.
    pub(crate) fn run_all(
        &self,
        rates: Option<&[f64]>,
        progress: Progress<'_>,
    ) -> Result<Vec<summary::RepResult>, Error> {
        let pool = self.pool()?;
        let spec = self.spec(rates);
        let total = self.cfg.replications as u64;
        let done = AtomicU64::new(0);
        Ok(pool.install(|| {
            (0..self.cfg.replications)
                .into_par_iter()
                .map(|r| {
                    let s = summary::RepResult::of(self.replicate(&spec, r));
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    s
                })
                .collect()
        }))
    }
}

/// Every replication's results are kept until the report is built (a few words per model
/// and instance): their number is bounded by
/// [`migopt_models::limits::MAX_REPLICATION_CELLS`].
fn check_kept(prep: &Prepared, replications: u32) -> Result<(), Error> {
    use migopt_models::limits::MAX_REPLICATION_CELLS;
    let (nm, ni) = (prep.models.len() as u64, prep.insts.len() as u64);
    let cells = (nm + ni).saturating_mul(replications as u64);
    if cells > MAX_REPLICATION_CELLS {
        return Err(Error::Invalid(format!(
            "{replications} replications x ({nm} models + {ni} instances) = {cells} results to keep, above the limit of {MAX_REPLICATION_CELLS}; run at most {} replications",
            (MAX_REPLICATION_CELLS / (nm + ni).max(1)).max(1)
        )));
    }
    Ok(())
}

fn check_rate(r: f64, what: &str) -> Result<(), Error> {
    if !(r.is_finite() && r > 0.0) {
        return Err(Error::Invalid(format!(
            "{what} must be a positive number of queries/s, got {r}"
        )));
    }
    Ok(())
}

/// Reads a trace to replay on `plan` serving `scenario` under `mode` (`None`: the plan's
/// own, as [`simulate`] takes it): the records as [`read_trace_for`] checks them against the
/// scenario's models, and each one a query some instance of the plan can run, by the rule
/// the simulator applies, so that a batch no instance takes is reported at its line (exit 2)
/// before anything runs. The file is recorded in `inputs`.
pub fn read_trace_for_plan(
    path: &std::path::Path,
    plan: &Plan,
    scenario: &Scenario,
    mode: Option<ServingMode>,
    inputs: &mut migopt_models::input::Inputs,
) -> Result<Vec<TraceRecord>, Error> {
    let mode = mode.unwrap_or_else(|| ServingMode::for_plan(plan, scenario));
    let mut can = prep::TraceCheck::new(plan, scenario, mode)?;
    let names: Vec<&str> = scenario.models.iter().map(|m| m.name.as_str()).collect();
    trace::read_trace_with(path, Some(&names), &mut |m, b| can.check(m, b), inputs)
}

/// Simulates `plan` serving `scenario`'s models under `cfg` and reports latency
/// percentiles, SLA violations, throughput and utilisation, each with a 95% interval over
/// replications. Fails, before simulating anything, on any mismatch between plan and
/// scenario (unknown model, missing profile, a batch no instance can run, invalid MIG
/// placement) and on a bad configuration.
pub fn simulate(plan: &Plan, scenario: &Scenario, cfg: &SimConfig) -> Result<SimReport, Error> {
    simulate_with_progress(plan, scenario, cfg, &no_progress)
}

/// [`simulate`], calling `progress(done, total)` as replications finish.
pub fn simulate_with_progress(
    plan: &Plan,
    scenario: &Scenario,
    cfg: &SimConfig,
    progress: Progress<'_>,
) -> Result<SimReport, Error> {
    let job = Job::new(plan, scenario, cfg)?;
    let reps = job.run_all(None, progress)?;
    Ok(summary::build(
        &job.prep,
        job.header(scenario, plan, None),
        &reps,
    ))
}
