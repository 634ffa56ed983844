//! A served run beside the simulator's prediction of it: the same plan, the same trace
//! (arrival times, models and batch sizes of the recorded queries), the same scheduler and
//! warm-up, simulated once per way of reading the profiles.

use crate::records::QueryRecord;
use migopt_models::{Error, Plan, Scenario, SimReport};
use migopt_sim::{Arrivals, SchedulerKind, ServedQuery, ServingMode, SimConfig, TraceRecord};

/// One way of predicting the run.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `isolated`, `flat-out`, `load-aware`, or `profiles` for sets without load data.
    pub name: String,
    /// What it means.
    pub about: String,
    /// The simulator's report.
    pub report: SimReport,
}

/// Measured and predicted.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The served run, summarised as the simulator summarises its own.
    pub measured: SimReport,
    /// The predictions.
    pub predictions: Vec<Prediction>,
}

/// The profile sets to predict with: with neighbour-load data, the isolated curves, the
/// curves with every neighbour flat out, and the load-aware model; otherwise the profiles.
pub fn variants(scenario: &Scenario) -> Result<Vec<(String, String, Scenario)>, Error> {
    let p = &scenario.profiles;
    if !p.has_loaded() {
        return Ok(vec![(
            "profiles".into(),
            "the scenario's profiles".into(),
            scenario.clone(),
        )]);
    }
    let with = |set| {
        let mut s = scenario.clone();
        s.profiles = set;
        s
    };
    Ok(vec![
        (
            "isolated".into(),
            "each slice measured alone, no interference".into(),
            with(p.isolated()),
        ),
        (
            "flat-out".into(),
            "each slice measured with every neighbour busy 100% of the time".into(),
            with(p.at_neighbour_load(1.0)?),
        ),
        (
            "load-aware".into(),
            "isolated curves scaled by how busy the neighbours are (interference model)".into(),
            scenario.clone(),
        ),
    ])
}

/// The serving stack's own cost per query, as the simulator takes it: `occupancy_ms` is
/// added to every service time (an instance cannot start its next query sooner), and
/// `latency_ms` to every query's latency only.
///
/// `migopt serve` sends a query down a pipe to a Python worker and reads the answer back.
/// Measured per run ([`crate::records::Overhead`]): the **round trip** r (a query sent to an
/// idle worker: answer read − request written − service time; waking the worker, both
/// pipes) and the **busy gap** g (a query queued in a busy worker's pipe: the worker's time
/// between two queries). So:
///
/// * dispatch-at-arrival schedulers (ELSA, JSQ, ...) queue in the worker's pipe: the worker
///   is busy g longer per query, and the answer comes r − g later than that;
/// * FIFS holds queries in the front end until an instance's answer has been read, so each
///   query costs its instance the whole round trip r.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct ServerCost {
    /// Added to every simulated service time, ms.
    pub occupancy_ms: f64,
    /// Added to every simulated latency, ms.
    pub latency_ms: f64,
}

impl ServerCost {
    /// The cost under `scheduler` from a run's measured overhead (round trip and busy gap,
    /// medians). A run without queued queries (FIFS) has no busy gap: it is taken as 0.
    pub fn from_overhead(o: &crate::records::Overhead, scheduler: SchedulerKind) -> Self {
        let ms = |v: Option<f64>| {
            v.filter(|v| v.is_finite())
                .map_or(0.0, |us| (us / 1e3).max(0.0))
        };
        let r = ms(o.round_trip_us_p50);
        if scheduler.dispatches_at_arrival() {
            let g = ms(o.busy_gap_us_p50).min(r);
            Self {
                occupancy_ms: g,
                latency_ms: r - g,
            }
        } else {
            Self {
                occupancy_ms: r,
                latency_ms: 0.0,
            }
        }
    }

    /// The whole cost of a query sent to an idle worker, ms.
    pub fn total_ms(&self) -> f64 {
        self.occupancy_ms + self.latency_ms
    }
}

/// A served run summarised exactly as the simulator summarises its own
/// ([`migopt_sim::served_report`] over the records).
pub fn measured(
    plan: &Plan,
    scenario: &Scenario,
    scheduler: SchedulerKind,
    recs: &[QueryRecord],
    warmup_fraction: f64,
) -> Result<SimReport, Error> {
    let served: Vec<ServedQuery> = recs
        .iter()
        .map(|r| ServedQuery {
            arrival_ms: r.arrival_ms,
            model: r.model.clone(),
            batch: r.batch,
            instance: r.instance,
            start_ms: r.start_ms,
            finish_ms: r.finish_ms,
        })
        .collect();
    migopt_sim::served_report(plan, scenario, scheduler, &served, warmup_fraction)
}

/// Re-simulates the recorded trace of `recs` and summarises both. `cost` is the serving
/// stack's own cost per query (pipes, worker wake-up; [`ServerCost`]), best taken from a
/// calibration run rather than from the run being predicted.
pub fn compare(
    plan: &Plan,
    scenario: &Scenario,
    scheduler: SchedulerKind,
    recs: &[QueryRecord],
    warmup_fraction: f64,
    cost: ServerCost,
) -> Result<Comparison, Error> {
    let measured = measured(plan, scenario, scheduler, recs, warmup_fraction)?;
    let trace: Vec<TraceRecord> = recs
        .iter()
        .map(|r| TraceRecord {
            arrival_ms: r.arrival_ms,
            model: r.model.as_str().into(),
            batch: r.batch,
        })
        .collect();
    let mut cfg = SimConfig::new(Arrivals::Trace(trace));
    cfg.scheduler = scheduler;
    cfg.mode = Some(ServingMode::QueryBatches);
    cfg.warmup_fraction = warmup_fraction;
    cfg.replications = 1;
    cfg.threads = Some(1);
    cfg.service_overhead_ms = cost.occupancy_ms;
    cfg.latency_overhead_ms = cost.latency_ms;
    let mut predictions = Vec::new();
    for (name, about, s) in variants(scenario)? {
        let report = migopt_sim::simulate(plan, &s, &cfg)?;
        predictions.push(Prediction {
            name,
            about,
            report,
        });
    }
    Ok(Comparison {
        measured,
        predictions,
    })
}

/// The server's own cost per query as the front end measured it in a run (see
/// [`ServerCost`]), for the scheduler that run used. No GPU time is in it.
pub fn server_cost(meta: &crate::records::RunMeta) -> Result<ServerCost, Error> {
    let k: SchedulerKind = meta.scheduler.parse()?;
    Ok(ServerCost::from_overhead(&meta.overhead, k))
}

/// Relative error of a prediction, (predicted − measured) / measured.
pub fn rel_err(predicted: f64, measured: f64) -> f64 {
    (predicted - measured) / measured
}
