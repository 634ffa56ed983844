//! Turns raw per-replication accumulators into the report: per-replication values first,
//! then means and intervals across replications.

use crate::prep::Prepared;
use crate::run::RepStats;
use crate::stats::{
    estimate, estimate_opt, latency_summary, queue_summary, LatPoint, QueuePoint, RESOLUTION,
};
use migopt_models::report::{Estimate, GpuReport, InstanceReport, ModelReport, SimReport};

/// Fields of the report that describe the run rather than measure it.
pub(crate) struct Header {
    pub scenario: String,
    pub solver: String,
    pub gpu: migopt_models::GpuName,
    pub scheduler: String,
    pub mode: String,
    pub max_queue_delay_ms: Option<f64>,
    pub arrivals: String,
    pub offered_rate_qps: Option<f64>,
    pub model_rates: Option<Vec<f64>>,
    pub warmup_fraction: f64,
    pub seed: u64,
    pub jitter: bool,
    pub drop_late: bool,
}

/// What the report reads of one replication: its counters, each histogram reduced to the
/// points taken of it. Every replication is kept until the report is built, so this is a few
/// words per model and instance; the histograms (about 120 KB per model and 8 KB per
/// instance) are dropped as each replication ends. Kept whole, 100,000 replications of the
/// default plan, or 5 of a 100,000-GPU plan, exhausted memory.
#[derive(Debug, Clone)]
pub(crate) struct RepResult {
    models: Vec<ModelRes>,
    insts: Vec<InstRes>,
    generated: u64,
    tw0: f64,
    tend: f64,
}

#[derive(Debug, Clone)]
struct ModelRes {
    measured: u64,
    completed: u64,
    dropped: u64,
    late: u64,
    samples: u64,
    sum_wait: f64,
    last_finish: f64,
    lat: Option<LatPoint>,
    qlen: Option<QueuePoint>,
}

#[derive(Debug, Clone)]
struct InstRes {
    busy: f64,
    queries: u64,
    batches: u64,
    /// `None`: queue lengths were not recorded per instance; `Some(None)`: none was seen.
    qlen: Option<Option<QueuePoint>>,
}

impl RepResult {
    /// The replication `r` as the report reads it.
    pub(crate) fn of(r: RepStats) -> Self {
        let models = r.models.iter().map(|a| ModelRes {
            measured: a.measured,
            completed: a.completed,
            dropped: a.dropped,
            late: a.late,
            samples: a.samples,
            sum_wait: a.sum_wait,
            last_finish: a.last_finish,
            lat: (a.completed > 0)
                .then(|| LatPoint::from_hist(&a.lat, a.sum_lat))
                .flatten(),
            qlen: QueuePoint::from_hist(&a.qlen),
        });
        let insts = r.insts.iter().map(|a| InstRes {
            busy: a.busy,
            queries: a.queries,
            batches: a.batches,
            qlen: a.qlen.as_ref().map(QueuePoint::from_hist),
        });
        Self {
            models: models.collect(),
            insts: insts.collect(),
            generated: r.generated,
            tw0: r.tw0,
            tend: r.tend,
        }
    }
}

fn window_ms(r: &RepResult) -> f64 {
    let w = r.tend - r.tw0;
    if w.is_finite() && w > 0.0 {
        w
    } else {
        0.0
    }
}

fn utilisation(p: &Prepared, r: &RepResult, i: usize) -> f64 {
    let w = window_ms(r);
    if w > 0.0 {
        (r.insts[i].busy / (p.insts[i].procs as f64 * w)).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Completed per second over the span from the first measured arrival to `last_finish`.
fn per_second(count: u64, tw0: f64, last_finish: f64) -> Option<f64> {
    let span = last_finish - tw0;
    (count > 0 && span.is_finite() && span > 0.0).then(|| count as f64 * 1000.0 / span)
}

pub(crate) fn build(p: &Prepared, h: Header, reps: &[RepResult]) -> SimReport {
    let models = (0..p.models.len())
        .map(|m| model_report(p, &h, reps, m))
        .collect();
    let instances = (0..p.insts.len())
        .map(|i| instance_report(p, reps, i))
        .collect();
    SimReport {
        scenario: h.scenario,
        solver: h.solver,
        gpu: h.gpu,
        scheduler: h.scheduler,
        mode: h.mode,
        max_queue_delay_ms: h.max_queue_delay_ms,
        arrivals: h.arrivals,
        offered_rate_qps: h.offered_rate_qps,
        replications: reps.len() as u32,
        queries_per_replication: reps.iter().map(|r| r.generated as f64).sum::<f64>()
            / reps.len().max(1) as f64,
        warmup_fraction: h.warmup_fraction,
        seed: h.seed,
        jitter: h.jitter,
        drop_late: h.drop_late,
        window_s: estimate(
            &reps
                .iter()
                .map(|r| window_ms(r) / 1000.0)
                .collect::<Vec<_>>(),
        ),
        histogram_resolution: RESOLUTION,
        models,
        instances,
        gpus: gpu_reports(p, reps),
        sla_violation_rate: violation_rate(reps),
        throughput_qps: throughput(reps),
    }
}

/// Model `m`'s figures across the replications.
fn model_report(p: &Prepared, h: &Header, reps: &[RepResult], m: usize) -> ModelReport {
    let pm = &p.models[m];
    fn model_of(r: &RepResult, m: usize) -> &ModelRes {
        &r.models[m]
    }
    let acc = |r| model_of(r, m);
    let lat: Vec<Option<LatPoint>> = reps.iter().map(|r| acc(r).lat).collect();
    let queue: Vec<Option<QueuePoint>> = reps.iter().map(|r| acc(r).qlen).collect();
    let ratio = |num: fn(&ModelRes) -> u64| {
        estimate_opt(reps.iter().map(|r| {
            let a = acc(r);
            (a.measured > 0).then(|| num(a) as f64 / a.measured as f64)
        }))
        .unwrap_or_else(|| estimate(&[]))
    };
    let rate = |count: fn(&ModelRes) -> u64| {
        estimate_opt(
            reps.iter()
                .map(|r| per_second(count(acc(r)), r.tw0, acc(r).last_finish)),
        )
        .unwrap_or_else(|| estimate(&[0.0]))
    };
    ModelReport {
        model: pm.name.as_str().into(),
        sla_ms: pm.sla,
        offered_rate_qps: h.model_rates.as_ref().map(|v| v[m]),
        queries: reps.iter().map(|r| acc(r).measured).sum(),
        completed: reps.iter().map(|r| acc(r).completed).sum(),
        dropped: reps.iter().map(|r| acc(r).dropped).sum(),
        latency_ms: latency_summary(&lat),
        wait_ms_mean: estimate_opt(
            reps.iter()
                .map(|r| (acc(r).completed > 0).then(|| acc(r).sum_wait / acc(r).completed as f64)),
        ),
        sla_violation_rate: ratio(|a| a.late + a.dropped),
        drop_rate: ratio(|a| a.dropped),
        throughput_qps: rate(|a| a.completed),
        samples_per_s: rate(|a| a.samples),
        queue_length: queue_summary(&queue),
    }
}

/// Instance `i`'s figures across the replications.
fn instance_report(p: &Prepared, reps: &[RepResult], i: usize) -> InstanceReport {
    let pi = &p.insts[i];
    let queue: Vec<Option<QueuePoint>> = reps.iter().map(|r| r.insts[i].qlen.flatten()).collect();
    let has_queue = reps.iter().any(|r| r.insts[i].qlen.is_some());
    InstanceReport {
        gpu: pi.gpu,
        profile: pi.profile.as_str().into(),
        start: pi.start,
        model: p.models[pi.model as usize].name.as_str().into(),
        batch: pi.batch,
        procs: pi.procs,
        utilisation: estimate(
            &reps
                .iter()
                .map(|r| utilisation(p, r, i))
                .collect::<Vec<_>>(),
        ),
        queries: reps.iter().map(|r| r.insts[i].queries).sum(),
        batches: reps.iter().map(|r| r.insts[i].batches).sum(),
        queue_length: has_queue.then(|| queue_summary(&queue)),
    }
}

/// Each GPU's utilisation: its instances' compute-weighted utilisations, over its slices.
fn gpu_reports(p: &Prepared, reps: &[RepResult]) -> Vec<GpuReport> {
    p.gpus
        .iter()
        .map(|(index, members)| {
            let u: Vec<f64> = reps
                .iter()
                .map(|r| {
                    members
                        .iter()
                        .map(|&i| {
                            p.insts[i as usize].compute as f64 * utilisation(p, r, i as usize)
                        })
                        .sum::<f64>()
                        / p.gpu_slices as f64
                })
                .collect();
            GpuReport {
                index: *index,
                instances: members.len() as u32,
                utilisation: estimate(&u),
            }
        })
        .collect()
}

/// The share of measured queries, all models together, that missed their SLA or were
/// dropped.
fn violation_rate(reps: &[RepResult]) -> Estimate {
    estimate_opt(reps.iter().map(|r| {
        let (bad, all) = r
            .models
            .iter()
            .fold((0, 0), |(b, a), m| (b + m.late + m.dropped, a + m.measured));
        (all > 0).then(|| bad as f64 / all as f64)
    }))
    .unwrap_or_else(|| estimate(&[]))
}

/// Queries completed per second, all models together.
fn throughput(reps: &[RepResult]) -> Estimate {
    estimate_opt(reps.iter().map(|r| {
        let done: u64 = r.models.iter().map(|m| m.completed).sum();
        let last = r
            .models
            .iter()
            .map(|m| m.last_finish)
            .fold(f64::NEG_INFINITY, f64::max);
        per_second(done, r.tw0, last)
    }))
    .unwrap_or_else(|| estimate(&[0.0]))
}
