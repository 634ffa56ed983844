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

/// Re-simulates the recorded trace of `recs` and summarises both. `overhead_ms` is the
/// serving stack's own cost per query (pipes, worker wake-up), added to every simulated
/// service time; [`server_overhead_ms`] reads the one a run measured.
pub fn compare(
    plan: &Plan,
    scenario: &Scenario,
    scheduler: SchedulerKind,
    recs: &[QueryRecord],
    warmup_fraction: f64,
    overhead_ms: f64,
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
    cfg.service_overhead_ms = overhead_ms;
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

/// The server's own cost per query as the front end measured it in a run: the median,
/// over queries sent to an idle worker, of answer read − request written − the worker's
/// service time (both pipes, the worker's wake-up and parsing). No GPU time is in it.
pub fn server_overhead_ms(meta: &crate::records::RunMeta) -> f64 {
    meta.overhead
        .round_trip_us_p50
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(0.0, |us| us / 1e3)
}

/// Relative error of a prediction, (predicted − measured) / measured.
pub fn rel_err(predicted: f64, measured: f64) -> f64 {
    (predicted - measured) / measured
}
