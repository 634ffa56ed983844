//! A served run beside the simulator's prediction of it: the same plan, the same trace
//! (arrival times, models and batch sizes of the recorded queries), the same scheduler and
//! warm-up, simulated once per way of reading the profiles.

use crate::records::QueryRecord;
use migopt_models::{Error, Plan, Scenario, SimReport};
use migopt_sim::{Arrivals, SchedulerKind, ServedQuery, ServingMode, SimConfig, TraceRecord};

/// Per (model, MIG profile, procs): how far a served run's service times spread, p99 over
/// p50 ([`service_spread`]).
pub type ServiceSpread = std::collections::BTreeMap<(String, String, u32), f64>;

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
    compare_spread(plan, scenario, scheduler, recs, warmup_fraction, cost, None)
}

/// [`compare`], with service times drawn around their medians with the given spread
/// ([`service_spread`], [`with_spread`]; the simulator's jitter) when `spread` is given.
pub fn compare_spread(
    plan: &Plan,
    scenario: &Scenario,
    scheduler: SchedulerKind,
    recs: &[QueryRecord],
    warmup_fraction: f64,
    cost: ServerCost,
    spread: Option<&ServiceSpread>,
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
    if spread.is_some() {
        cfg.jitter = true;
    }
    for (name, about, s) in variants(scenario)? {
        let s = match spread {
            Some(sp) => with_spread(&s, sp),
            None => s,
        };
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
    let k: SchedulerKind = meta.rule()?;
    Ok(ServerCost::from_overhead(&meta.overhead, k))
}

/// Relative error of a prediction, (predicted − measured) / measured.
pub fn rel_err(predicted: f64, measured: f64) -> f64 {
    (predicted - measured) / measured
}

/// How much a served run's service times spread, per (model, MIG profile, procs): the p99
/// over the p50 of every query's service time divided by the median of its (instance, batch).
/// Only queries after the warm-up count. A class with fewer than 100 queries is left out.
pub fn service_spread(plan: &Plan, recs: &[QueryRecord], warmup_fraction: f64) -> ServiceSpread {
    use std::collections::BTreeMap;
    let insts: Vec<_> = plan.instances().map(|(_, a)| a).collect();
    let skip = (warmup_fraction * recs.len() as f64).floor() as usize;
    let mut by: BTreeMap<(u32, u32), Vec<f64>> = BTreeMap::new();
    for r in recs.iter().skip(skip) {
        if r.service_ms.is_finite() && r.service_ms > 0.0 {
            by.entry((r.instance, r.ran_batch))
                .or_default()
                .push(r.service_ms);
        }
    }
    let mut rel: BTreeMap<(String, String, u32), Vec<f64>> = BTreeMap::new();
    for ((i, _), mut v) in by {
        let Some(a) = insts.get(i as usize) else {
            continue;
        };
        v.sort_by(f64::total_cmp);
        let med = crate::records::pct(&v, 50.0);
        rel.entry((a.model.to_string(), a.profile.to_string(), a.procs))
            .or_default()
            .extend(v.iter().map(|x| x / med));
    }
    rel.into_iter()
        .filter(|(_, v)| v.len() >= 100)
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            let r = crate::records::pct(&v, 99.0) / crate::records::pct(&v, 50.0);
            (k, r.max(1.0))
        })
        .collect()
}

/// `scenario` with the p99 of every curve (isolated and under neighbour load) of a
/// (model, profile, procs) in `spread` set to its median times that spread.
pub fn with_spread(scenario: &Scenario, spread: &ServiceSpread) -> Scenario {
    let mut s = scenario.clone();
    let set = |c: &mut migopt_models::Curve, r: f64| {
        c.p99_ms = c.latency_ms.iter().map(|l| l * r).collect();
        c.has_p99 = true;
    };
    for (k, c) in s.profiles.curves.iter_mut() {
        if let Some(&r) = spread.get(&(k.model.to_string(), k.profile.to_string(), k.procs)) {
            set(c, r);
        }
    }
    for (k, v) in s.profiles.loaded.iter_mut() {
        if let Some(&r) = spread.get(&(k.model.to_string(), k.profile.to_string(), k.procs)) {
            for lc in v.iter_mut() {
                set(&mut lc.curve, r);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Overhead;

    fn overhead(rt: Option<f64>, gap: Option<f64>) -> Overhead {
        Overhead {
            at_arrival: 1,
            lag_us_p50: 1.0,
            lag_us_p99: 1.0,
            lag_us_max: 1.0,
            round_trip_us_p50: rt,
            round_trip_us_p99: rt,
            busy_gap_us_p50: gap,
        }
    }

    #[test]
    fn server_cost_splits_by_how_the_scheduler_queues() {
        let o = overhead(Some(130.0), Some(30.0));
        let e = ServerCost::from_overhead(&o, SchedulerKind::Elsa);
        assert!((e.occupancy_ms - 0.030).abs() < 1e-12 && (e.latency_ms - 0.100).abs() < 1e-12);
        let f = ServerCost::from_overhead(&o, SchedulerKind::Fifs);
        assert!((f.occupancy_ms - 0.130).abs() < 1e-12 && f.latency_ms == 0.0);
        assert!((e.total_ms() - f.total_ms()).abs() < 1e-12);
        // No busy gap measured: the whole round trip is latency; nothing measured: no cost.
        let n = ServerCost::from_overhead(&overhead(Some(100.0), None), SchedulerKind::Jsq);
        assert_eq!((n.occupancy_ms, n.latency_ms), (0.0, 0.1));
        let z = ServerCost::from_overhead(&overhead(None, None), SchedulerKind::Fifs);
        assert_eq!(z, ServerCost::default());
    }

    #[test]
    fn spread_is_p99_over_p50_of_service_relative_to_its_class_median() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../papers/sim-to-real");
        let plan: Plan =
            serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
        // Instance 0 (1g.18gb resnet50): batch 1 at 1 ms and batch 8 at 3 ms medians, each
        // with 1% of queries 1.5x slower; 200 queries each.
        let mut recs = Vec::new();
        for k in 0..400u64 {
            let (b, med) = if k % 2 == 0 { (1, 1.0) } else { (8, 3.0) };
            let slow = k % 100 >= 98;
            let s = if slow { 1.5 * med } else { med };
            recs.push(QueryRecord {
                query: k,
                arrival_ms: k as f64,
                model: "resnet50".into(),
                batch: b,
                instance: 0,
                dispatch_ms: k as f64,
                start_ms: k as f64,
                finish_ms: k as f64 + s,
                service_ms: s,
                ran_batch: b,
            });
        }
        let sp = service_spread(&plan, &recs, 0.0);
        let key = ("resnet50".to_string(), "1g.18gb".to_string(), 1);
        assert_eq!(sp.len(), 1, "{sp:?}");
        assert!((sp[&key] - 1.5).abs() < 1e-12, "{sp:?}");
        // Fewer than 100 queries in a class: no spread for it.
        assert!(service_spread(&plan, &recs[..50], 0.0).is_empty());
    }
}
