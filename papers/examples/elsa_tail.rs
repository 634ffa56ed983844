//! Where a scheduler's latency tail comes from: replays one Poisson trace of a
//! `papers/paris-elsa` workload through the real-server schedulers (`Dispatcher` for the
//! dispatch-at-arrival rules, `Fifs` for the central queue), with every service time its
//! profile's median, and breaks the slowest 1% of queries down by batch size and instance
//! size, into queueing and service.
//!
//! `cargo run --release -p migopt-papers --example elsa_tail -- WORKLOAD paris|milp RATE
//!  [--sched a,b] [--queries N]`

use migopt_models::{Assignment, Objective, Plan, Scenario};
use migopt_papers::paris_elsa::workloads;
use migopt_papers::Options;
use migopt_sim::sched::Fifs;
use migopt_sim::{poisson_trace, Dispatcher, SchedulerKind, ServingMode};
use migopt_solver::{PlanOptions, SolverKind};

/// Flags of `elsa_tail`.
#[derive(clap::Parser)]
struct Args {
    /// The workload.
    workload: String,
    /// The partitioning: paris or milp.
    part: String,
    /// Arrival rate, queries/s.
    rate: f64,
    /// Schedulers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "fifs,elsa")]
    sched: Vec<SchedulerKind>,
    /// Queries in the trace.
    #[arg(long, default_value_t = 400_000)]
    queries: usize,
}
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// One served query.
struct Done {
    batch: u32,
    compute: u32,
    wait: f64,
    svc: f64,
}

fn key(t: f64) -> u64 {
    t.to_bits()
}

/// The state of one replay: the trace, the plan's instances (their sizes and service
/// times), the completions to come, each instance's running query and each query's record.
struct Replay<'a> {
    sc: &'a Scenario,
    trace: &'a [(f64, u32)],
    insts: Vec<Assignment>,
    compute: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    out: Vec<Option<Done>>,
    running: Vec<Option<usize>>,
    next: usize,
}

impl<'a> Replay<'a> {
    /// Nothing served yet.
    fn new(plan: &Plan, sc: &'a Scenario, trace: &'a [(f64, u32)]) -> Self {
        let insts: Vec<_> = plan.instances().map(|(_, a)| a.clone()).collect();
        let gpu = plan.gpu_spec().expect("gpu");
        let compute: Vec<u32> = insts
            .iter()
            .map(|a| gpu.profile(a.profile.as_str()).expect("profile").compute)
            .collect();
        let n = insts.len();
        Replay {
            sc,
            trace,
            insts,
            compute,
            heap: BinaryHeap::new(),
            out: (0..trace.len()).map(|_| None).collect(),
            running: vec![None; n],
            next: 0,
        }
    }

    /// The service time of a batch of `b` on instance `i`: its profile's median.
    fn svc(&self, i: usize, b: u32) -> f64 {
        let a = &self.insts[i];
        let c = self
            .sc
            .profiles
            .curve(a.model.as_str(), a.profile.as_str(), a.procs)
            .expect("curve");
        c.latency(b, self.sc.batch_lookup).expect("latency").0
    }

    /// Starts query `q` on instance `i` at `now`: records it and schedules its completion.
    fn start(&mut self, q: usize, i: usize, now: f64) {
        let (arr, b) = self.trace[q];
        let s = self.svc(i, b);
        self.out[q] = Some(Done {
            batch: b,
            compute: self.compute[i],
            wait: now - arr,
            svc: s,
        });
        self.heap.push(Reverse((key(now + s), i)));
    }

    /// The time of the next arrival and of the next completion (infinite when none).
    fn next_times(&self) -> (f64, f64) {
        let ta = self.trace.get(self.next).map_or(f64::INFINITY, |x| x.0);
        let tc = self
            .heap
            .peek()
            .map_or(f64::INFINITY, |Reverse((k, _))| f64::from_bits(*k));
        (ta, tc)
    }

    /// Every query's record, once all are served.
    fn finish(self) -> Vec<Done> {
        self.out.into_iter().map(|d| d.expect("served")).collect()
    }
}

/// Replays `trace` (arrival ms, batch) under `kind`; every query's wait and service.
fn replay(plan: &Plan, sc: &Scenario, kind: SchedulerKind, trace: &[(f64, u32)]) -> Vec<Done> {
    let model = sc.models[0].name.to_string();
    let mut r = Replay::new(plan, sc, trace);
    if kind == SchedulerKind::Fifs {
        replay_fifs(&mut r, plan, sc, &model);
    } else {
        replay_dispatch(&mut r, plan, sc, kind, &model);
    }
    r.finish()
}

/// The replay under FIFS's central queue: an idle instance takes the oldest query it can
/// serve.
fn replay_fifs(r: &mut Replay<'_>, plan: &Plan, sc: &Scenario, model: &str) {
    let mut f = Fifs::new(plan, sc).expect("fifs");
    loop {
        let (ta, tc) = r.next_times();
        if ta.is_infinite() && tc.is_infinite() {
            break;
        }
        if ta < tc {
            let next = r.next;
            if let Some(i) = f.arrive(next, model, r.trace[next].1, ta).expect("enq") {
                r.running[i as usize] = Some(next);
                r.start(next, i as usize, ta);
            }
            r.next += 1;
        } else {
            let Reverse((_, i)) = r.heap.pop().expect("heap");
            r.running[i] = None;
            if let Some(q) = f.idle(i as u32, tc) {
                r.running[i] = Some(q);
                r.start(q, i, tc);
            }
        }
    }
}

/// The replay under a dispatch-at-arrival rule: each query joins the queue of the instance
/// the dispatcher picks, and each instance serves its queue in order.
fn replay_dispatch(
    r: &mut Replay<'_>,
    plan: &Plan,
    sc: &Scenario,
    kind: SchedulerKind,
    model: &str,
) {
    let mut d = Dispatcher::new(plan, sc, kind, ServingMode::QueryBatches).expect("disp");
    let mut queues: Vec<VecDeque<usize>> = vec![VecDeque::new(); r.insts.len()];
    loop {
        let (ta, tc) = r.next_times();
        if ta.is_infinite() && tc.is_infinite() {
            break;
        }
        let (i, now) = if ta < tc {
            let q = d.query(model, r.trace[r.next].1, ta).expect("query");
            let i = d.dispatch(&q, ta, 0).expect("dispatch") as usize;
            queues[i].push_back(r.next);
            r.next += 1;
            (i, ta)
        } else {
            let Reverse((_, i)) = r.heap.pop().expect("heap");
            r.running[i] = None;
            d.finished(i as u32, 0).expect("finished");
            (i, tc)
        };
        if r.running[i].is_none() {
            if let Some(q) = queues[i].pop_front() {
                r.running[i] = Some(q);
                d.started(i as u32, 0, now, 1, r.trace[q].1)
                    .expect("started");
                r.start(q, i, now);
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        workload,
        part,
        rate,
        sched: scheds,
        queries,
    } = clap::Parser::parse();
    let (id, part) = (&workload, &part);
    let all = workloads(&Options::default())?;
    let w = all.iter().find(|w| &w.id == id).ok_or("no such workload")?;
    let sc = &w.scenario;
    let popts = PlanOptions {
        objective: Objective::MaxLoad,
        ..PlanOptions::default()
    };
    let plan = migopt_solver::plan(sc, part.parse::<SolverKind>()?, &popts)?;
    let recs = poisson_trace(&plan, sc, rate, queries as f64 / rate, 1)?;
    let trace: Vec<(f64, u32)> = recs.iter().map(|r| (r.arrival_ms, r.batch)).collect();
    let skip = trace.len() / 10;
    println!("{id} {part} at {rate} q/s, SLA {} ms", sc.models[0].sla.0);
    for kind in scheds {
        let done = replay(&plan, sc, kind, &trace);
        let mut lat: Vec<(f64, usize)> = done[skip..]
            .iter()
            .enumerate()
            .map(|(i, d)| (d.wait + d.svc, i + skip))
            .collect();
        lat.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = lat.len();
        let p99 = lat[(n as f64 * 0.99) as usize].0;
        let p50 = lat[n / 2].0;
        let tail = &lat[(n as f64 * 0.99) as usize..];
        let mut by: BTreeMap<(u32, u32), (usize, f64, f64)> = BTreeMap::new();
        for &(_, q) in tail {
            let d = &done[q];
            let bb = d.batch.next_power_of_two();
            let e = by.entry((bb, d.compute)).or_default();
            e.0 += 1;
            e.1 += d.wait;
            e.2 += d.svc;
        }
        let mut all_by: BTreeMap<u32, (usize, f64)> = BTreeMap::new();
        for d in &done[skip..] {
            let e = all_by.entry(d.compute).or_default();
            e.0 += 1;
            e.1 += d.wait;
        }
        println!("  {:<12} p50 {p50:.1} p99 {p99:.1}; tail (slowest 1%) by batch<=, size: count, mean wait / service", kind.as_str());
        for ((bb, c), (cnt, w, s)) in by {
            println!(
                "    b<={bb:<4} {c}g: {cnt:>5} wait {:>7.1} svc {:>7.1}",
                w / cnt as f64,
                s / cnt as f64
            );
        }
        let mix: Vec<String> = all_by
            .iter()
            .map(|(c, (cnt, w))| {
                format!(
                    "{c}g {:.1}% (wait {:.1})",
                    100.0 * *cnt as f64 / n as f64,
                    w / *cnt as f64
                )
            })
            .collect();
        println!("    all queries by size: {}", mix.join(", "));
    }
    Ok(())
}
