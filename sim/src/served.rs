//! Queries served for real (by `migopt serve`), summarised exactly as the simulator
//! summarises its own, and the Poisson traces a server replays: one generator, one report
//! builder, so a measured run and its prediction differ only where the world differs.

use crate::prep::Prepared;
use crate::run::{Arrivals as Gen, RepStats};
use crate::{rng, summary, Arrivals, Job, SchedulerKind, ServingMode, SimConfig, TraceRecord};
use migopt_models::{Error, Plan, Scenario, SimReport};
use std::collections::{BTreeSet, BinaryHeap};

/// One query as a server recorded it (times in ms from the run's start).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedQuery {
    /// When it was due.
    pub arrival_ms: f64,
    /// Model (scenario name).
    pub model: String,
    /// Query batch size.
    pub batch: u32,
    /// Instance index in plan order.
    pub instance: u32,
    /// When it started running.
    pub start_ms: f64,
    /// When its result was back.
    pub finish_ms: f64,
}

/// The arrivals the simulator would generate for `plan` under Poisson traffic at
/// `total_rate_qps` (split by the scenario's shares) for `duration_s` seconds, with `seed`:
/// the same generator as [`crate::simulate`]'s first replication, written out as a trace.
pub fn poisson_trace(
    plan: &Plan,
    scenario: &Scenario,
    total_rate_qps: f64,
    duration_s: f64,
    seed: u64,
) -> Result<Vec<TraceRecord>, Error> {
    let mut cfg = SimConfig::new(Arrivals::Poisson { total_rate_qps });
    cfg.duration_s = Some(duration_s);
    cfg.mode = Some(ServingMode::QueryBatches);
    cfg.seed = seed;
    let job = Job::new(plan, scenario, &cfg)?;
    let spec = job.spec(None);
    let mut gen = Gen::new(&spec);
    let mut r = rng::stream(seed, 0);
    let mut out = Vec::new();
    while let Some((t, m, b, _)) = gen.next(&mut r) {
        out.push(TraceRecord {
            arrival_ms: t,
            model: job.prep.models[m].name.as_str().into(),
            batch: b as u32,
        });
    }
    Ok(out)
}

/// The simulator's report of queries a server ran: latency percentiles, SLA violations,
/// throughput, queue lengths and utilisation per instance and GPU, with the first
/// `warmup_fraction` of the queries left out as the simulator leaves out its warm-up.
/// `scheduler` says which queue a query waited in (its instance, or FIFS's central queue
/// per model) for the queue-length statistics.
pub fn served_report(
    plan: &Plan,
    scenario: &Scenario,
    scheduler: SchedulerKind,
    queries: &[ServedQuery],
    warmup_fraction: f64,
) -> Result<SimReport, Error> {
    if queries.is_empty() {
        return Err(Error::Invalid("no served queries".into()));
    }
    if !(0.0..1.0).contains(&warmup_fraction) {
        return Err(Error::Invalid(format!(
            "warm-up fraction {warmup_fraction} must be at least 0 and below 1"
        )));
    }
    let idx = model_indices(scenario, queries)?;
    let extra: BTreeSet<(u32, u32)> = idx
        .iter()
        .zip(queries)
        .map(|(&m, q)| (m as u32, q.batch))
        .collect();
    let prep = Prepared::new(plan, scenario, ServingMode::QueryBatches, &extra)?;
    if let Some(q) = queries
        .iter()
        .find(|q| q.instance as usize >= prep.insts.len())
    {
        return Err(Error::Invalid(format!(
            "instance {} is not in the plan ({} instances)",
            q.instance,
            prep.insts.len()
        )));
    }
    let central = scheduler == SchedulerKind::Fifs;
    let st = served_stats(&prep, queries, &idx, warmup_fraction, central);
    let header = summary::Header {
        scenario: scenario.name.clone(),
        solver: plan.solver.clone(),
        gpu: plan.gpu.clone(),
        scheduler: scheduler.as_str().into(),
        mode: ServingMode::QueryBatches.as_str().into(),
        max_queue_delay_ms: None,
        arrivals: "served".into(),
        offered_rate_qps: None,
        model_rates: None,
        warmup_fraction,
        seed: 0,
        jitter: false,
        drop_late: false,
    };
    Ok(summary::build(&prep, header, &[summary::RepResult::of(st)]))
}

/// The scenario's index of each query's model.
fn model_indices(scenario: &Scenario, queries: &[ServedQuery]) -> Result<Vec<usize>, Error> {
    queries
        .iter()
        .map(|q| {
            scenario
                .models
                .iter()
                .position(|m| m.name.as_str() == q.model.as_str())
                .ok_or_else(|| {
                    Error::Invalid(format!("model `{}` is not in the scenario", q.model))
                })
        })
        .collect()
}

/// The served queries as one replication's accumulators (`idx`: each query's model), the
/// first `warmup_fraction` of them left out and the busy time clipped to the window; queue
/// lengths per instance, or per model's central queue when `central`.
fn served_stats(
    prep: &Prepared,
    queries: &[ServedQuery],
    idx: &[usize],
    warmup_fraction: f64,
    central: bool,
) -> RepStats {
    let mut st = RepStats::new(prep, !central);
    let warm = (warmup_fraction * queries.len() as f64).floor() as usize;
    st.tw0 = queries.get(warm).map_or(f64::NAN, |q| q.arrival_ms);
    st.tend = queries
        .iter()
        .map(|q| q.arrival_ms)
        .fold(f64::NAN, f64::max);
    st.generated = queries.len() as u64;
    let qlen = queue_lengths(queries, idx, central);
    for (k, q) in queries.iter().enumerate() {
        let i = q.instance as usize;
        let lo = q.start_ms.max(st.tw0);
        let hi = q.finish_ms.min(st.tend);
        if hi > lo {
            st.insts[i].busy += hi - lo;
        }
        if k < warm {
            continue;
        }
        let m = idx[k];
        let times = (q.arrival_ms, q.start_ms, q.finish_ms);
        st.ran_alone((m, q.batch as usize), i, prep.models[m].sla, times, qlen[k]);
    }
    st
}

/// How many queries each query found waiting (arrived, not started) in its queue: its
/// instance's, or under FIFS its model's central queue.
fn queue_lengths(queries: &[ServedQuery], model: &[usize], central: bool) -> Vec<u64> {
    let groups = if central {
        model.iter().max().map_or(0, |m| m + 1)
    } else {
        queries
            .iter()
            .map(|q| q.instance as usize + 1)
            .max()
            .unwrap_or(0)
    };
    let mut order: Vec<usize> = (0..queries.len()).collect();
    order.sort_by(|&a, &b| {
        queries[a]
            .arrival_ms
            .total_cmp(&queries[b].arrival_ms)
            .then(a.cmp(&b))
    });
    // Per group, a min-heap of the start times of the queries that arrived before.
    let mut heaps: Vec<BinaryHeap<std::cmp::Reverse<u64>>> = vec![BinaryHeap::new(); groups];
    let mut out = vec![0u64; queries.len()];
    for k in order {
        let q = &queries[k];
        let g = if central {
            model[k]
        } else {
            q.instance as usize
        };
        let h = &mut heaps[g];
        let now = q.arrival_ms.max(0.0).to_bits();
        while h.peek().is_some_and(|s| s.0 <= now) {
            h.pop();
        }
        out[k] = h.len() as u64;
        h.push(std::cmp::Reverse(q.start_ms.max(0.0).to_bits()));
    }
    out
}
