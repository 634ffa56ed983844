//! What a dispatcher knows, kept up to date from what it observes, and the decision made
//! from it. [`DispatchState`] is the knowledge; [`Dispatcher`] bundles it with a plan's
//! tables for a real server.

use super::rules::{self, MARGIN_ALPHA, START_HORIZON, START_SLACK};
use super::{Candidate, Query, Rule, SchedulerKind};
use crate::prep::Prepared;
use crate::ServingMode;
use migopt_models::{Error, Plan, Scenario};
use std::collections::{BTreeSet, VecDeque};

/// What a dispatcher has observed of every instance: per MPS process, when its running work
/// started and that work's median; per instance, the estimates of its queued work in FIFO
/// order; and, for the plan-aware rule, how many queries of each class went to each size.
/// Nothing in it comes from the future: a real server maintains it from its own dispatches,
/// starts and completions.
#[derive(Debug, Clone)]
pub struct DispatchState {
    busy: Vec<bool>,
    run_start: Vec<f64>,
    run_med: Vec<f64>,
    queue: Vec<VecDeque<(u32, f64)>>,
    queued_ms: Vec<f64>,
    queued_samples: Vec<u64>,
    sent: Vec<u64>,
    class_sent: Vec<u64>,
    rr: Vec<usize>,
    buf: Vec<(Candidate, u32)>,
}

impl DispatchState {
    pub(crate) fn new(p: &Prepared) -> Self {
        let ni = p.insts.len();
        Self {
            busy: vec![false; p.n_servers],
            run_start: vec![0.0; p.n_servers],
            run_med: vec![0.0; p.n_servers],
            queue: (0..ni).map(|_| VecDeque::new()).collect(),
            queued_ms: vec![0.0; ni],
            queued_samples: vec![0; ni],
            sent: vec![0; p.slot_share.len()],
            class_sent: vec![0; p.models.len() * p.width],
            rr: vec![0; p.models.len()],
            buf: Vec::new(),
        }
    }

    /// When instance `i` could start new work, by what is known at `now`: its first process
    /// to free up (running work: its median minus the time it has run, never below zero),
    /// plus its queued work spread over its processes.
    pub(crate) fn start_estimate(&self, p: &Prepared, i: usize, now: f64) -> f64 {
        self.estimates(p, i, now).0
    }

    /// (When instance `i` could start new work, when it frees up): the second is the first
    /// without the clamp to `now`, so for an instance that can start now, when its first
    /// idle process went idle by the estimates (the median end of its last work; 0 if it
    /// never ran).
    fn estimates(&self, p: &Prepared, i: usize, now: f64) -> (f64, f64) {
        let inst = &p.insts[i];
        let (mut free, mut idle_at) = (f64::INFINITY, f64::INFINITY);
        for s in inst.srv as usize..(inst.srv + inst.procs) as usize {
            let end = self.run_start[s] + self.run_med[s];
            if self.busy[s] {
                free = free.min(end.max(now));
            } else {
                free = free.min(now);
                idle_at = idle_at.min(end.min(now));
            }
        }
        let start = free + self.queued_ms[i] / inst.procs as f64;
        if start > now {
            (start, start)
        } else {
            (start, idle_at)
        }
    }

    /// Median service time of a `b`-sample query on instance `i` if it joined now: its own
    /// batch (query batches), or the batch it would be cut into (dynamic batching).
    fn service_estimate(&self, p: &Prepared, i: usize, b: usize) -> f64 {
        let w = p.width;
        if p.dynamic.is_some() {
            let cap = p.insts[i].batch as usize;
            let next = ((self.queued_samples[i] as usize % cap) + b).min(cap);
            p.med[i * w + next]
        } else {
            p.med[i * w + b]
        }
    }

    fn candidate(&self, p: &Prepared, i: u32, slot: u32, q: &Query, now: f64) -> Candidate {
        let iu = i as usize;
        let row = q.model as usize * p.width + q.batch as usize;
        let share = p.slot_share.get(slot as usize).copied().unwrap_or(0.0);
        let (start_ms, free_ms) = self.estimates(p, iu, now);
        Candidate {
            instance: i,
            compute: p.insts[iu].compute,
            start_ms,
            free_ms,
            service_ms: self.service_estimate(p, iu, q.batch as usize),
            deficit: share * (self.class_sent[row] + 1) as f64
                - self.sent.get(slot as usize).copied().unwrap_or(0) as f64,
            protected: p.protected[iu],
        }
    }

    /// The decision: where `q` goes at `now`. `bits32` (32 random bits) is used by `random`
    /// only. `None` only if no instance can run the query, which `Prepared` rules out for
    /// the batches it was built for.
    pub(crate) fn pick(
        &mut self,
        p: &Prepared,
        rule: Rule,
        q: &Query,
        now: f64,
        bits32: u64,
    ) -> Option<u32> {
        let (m, b) = (q.model as usize, q.batch as usize);
        let w = p.width;
        let pick = match rule {
            Rule::RoundRobin => rules::round_robin(&mut self.rr[m], &p.models[m].insts, |i| {
                p.med[i as usize * w + b].is_finite()
            }),
            Rule::Random => rules::random(bits32, p.eligible(m, b)),
            Rule::Jsq => {
                let c = p
                    .eligible(m, b)
                    .iter()
                    .map(|&i| self.candidate(p, i, 0, q, now));
                rules::jsq(now, c)
            }
            Rule::Fifs => None,
            elastic => {
                let (list, slots) = p.eligible_sized(m, b);
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                buf.extend(
                    list.iter()
                        .zip(slots)
                        .map(|(&i, &s)| (self.candidate(p, i, s, q, now), s)),
                );
                let c = buf.iter().map(|x| x.0);
                let pick = match elastic {
                    Rule::Greedy => rules::elsa_greedy(q, c),
                    Rule::Margin => rules::elsa_margin(q, MARGIN_ALPHA, c),
                    Rule::Protect => rules::elsa_protect(q, MARGIN_ALPHA, c),
                    Rule::Start => rules::elsa_start(q, START_HORIZON, START_SLACK, c),
                    _ => rules::elsa_plan(q, PLAN_ALPHA, PLAN_SLACK, c),
                };
                if let Some(x) = pick.and_then(|i| buf.iter().find(|x| x.0.instance == i)) {
                    self.sent[x.1 as usize] += 1;
                    self.class_sent[m * w + b] += 1;
                }
                self.buf = buf;
                pick
            }
        };
        pick
    }

    /// Query `q` joined instance `i`'s queue.
    pub(crate) fn enqueue(&mut self, p: &Prepared, i: usize, b: u32) {
        let w = p.width;
        let est = if p.dynamic.is_some() {
            let cap = p.insts[i].batch as usize;
            b as f64 / cap as f64 * p.med[i * w + cap]
        } else {
            p.med[i * w + b as usize]
        };
        self.queue[i].push_back((b, est));
        self.queued_ms[i] += est;
        self.queued_samples[i] += b as u64;
    }

    /// The first `count` queued queries of instance `i` left its queue (started or dropped).
    pub(crate) fn dequeue(&mut self, i: usize, count: usize) {
        for _ in 0..count {
            if let Some((b, est)) = self.queue[i].pop_front() {
                self.queued_ms[i] -= est;
                self.queued_samples[i] -= b as u64;
            }
        }
        if self.queue[i].is_empty() {
            // No drift from the running sum.
            self.queued_ms[i] = 0.0;
        }
    }

    /// Process `s` (a global process index) started work of median `med` at `now`.
    pub(crate) fn run(&mut self, s: usize, now: f64, med: f64) {
        self.busy[s] = true;
        self.run_start[s] = now;
        self.run_med[s] = med;
    }

    /// Process `s` finished its work.
    pub(crate) fn idle(&mut self, s: usize) {
        self.busy[s] = false;
    }
}

/// Plan-aware rule's deadline margin: the plan's shares already spread load, so the
/// fallback is kept for queries that would miss the deadline itself (0.5 and 0.7 measured
/// the same within noise).
pub const PLAN_ALPHA: f64 = 1.0;

/// Plan-aware rule's latency slack, as a fraction of the SLA: how much later than the
/// earliest finish a query may finish to follow the plan, less its own service time.
/// Measured in `papers/paris-elsa` against 0.15 and 0.35 (and against a slack that does not
/// shrink with the service time, 0 to 0.3 of the SLA): 0.25 kept p99 at 70% load at or
/// below FIFS's on most workloads without giving up capacity.
pub const PLAN_SLACK: f64 = 0.25;

/// One instance of the plan, as a dispatcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    /// GPU index in the plan.
    pub gpu: u32,
    /// MIG profile.
    pub profile: String,
    /// NVML placement start.
    pub start: u32,
    /// Model served (its name).
    pub model: String,
    /// Compute slices.
    pub compute: u32,
    /// MPS processes (`0..procs` are its process indices).
    pub procs: u32,
    /// Largest batch (query batches: largest query batch; dynamic batching: batch cap).
    pub max_batch: u32,
}

/// A scheduler for a real server: the plan's tables, a [`DispatchState`] and a rule. The
/// server calls [`Dispatcher::dispatch`] when a query arrives and reports what its workers
/// do with [`Dispatcher::started`], [`Dispatcher::finished`] and [`Dispatcher::dropped`];
/// the simulator's event-driven engine makes exactly these calls. Instances are numbered in
/// plan order ([`migopt_models::Plan::instances`]).
#[derive(Debug, Clone)]
pub struct Dispatcher {
    prep: Prepared,
    state: DispatchState,
    kind: SchedulerKind,
}

impl Dispatcher {
    /// Builds the tables for `plan` serving `scenario` in `mode` (the batch sizes of the
    /// scenario's distributions are the ones it knows). FIFS holds queries centrally and
    /// has no decision at arrival, so it is refused here.
    pub fn new(
        plan: &Plan,
        scenario: &Scenario,
        kind: SchedulerKind,
        mode: ServingMode,
    ) -> Result<Self, Error> {
        if !kind.dispatches_at_arrival() {
            return Err(Error::Invalid(format!(
                "scheduler `{kind}` holds queries in a central queue; it has no decision at arrival"
            )));
        }
        let prep = Prepared::new(plan, scenario, mode, &BTreeSet::new())?;
        let state = DispatchState::new(&prep);
        Ok(Self { prep, state, kind })
    }

    /// The scheduler.
    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// The plan's instances, in the order the other methods number them.
    pub fn instances(&self) -> Vec<InstanceInfo> {
        let p = &self.prep;
        p.insts
            .iter()
            .map(|i| InstanceInfo {
                gpu: i.gpu,
                profile: i.profile.clone(),
                start: i.start,
                model: p.models[i.model as usize].name.clone(),
                compute: i.compute,
                procs: i.procs,
                max_batch: i.batch,
            })
            .collect()
    }

    /// A query of model `model` (its name) with `batch` samples arriving at `arrival_ms`.
    pub fn query(&self, model: &str, batch: u32, arrival_ms: f64) -> Result<Query, Error> {
        let (m, _) = self.prep.class(model, batch)?;
        if !arrival_ms.is_finite() {
            return Err(Error::Invalid(format!("arrival time {arrival_ms} ms")));
        }
        Ok(Query {
            model: m as u32,
            batch,
            arrival_ms,
            sla_ms: self.prep.models[m].sla,
        })
    }

    /// Decides where `q` goes at `now_ms` and records it as queued there. `random_bits`
    /// (32 bits) is used by `random` only.
    pub fn dispatch(&mut self, q: &Query, now_ms: f64, random_bits: u32) -> Result<u32, Error> {
        let rule = self.kind.rule();
        let i = self
            .state
            .pick(&self.prep, rule, q, now_ms, random_bits as u64)
            .ok_or_else(|| Error::Invalid(format!("no instance takes batch {}", q.batch)))?;
        self.state.enqueue(&self.prep, i as usize, q.batch);
        Ok(i)
    }

    fn server(&self, instance: u32, process: u32) -> Result<usize, Error> {
        let inst = self
            .prep
            .insts
            .get(instance as usize)
            .ok_or_else(|| Error::Invalid(format!("no instance {instance}")))?;
        if process >= inst.procs {
            return Err(Error::Invalid(format!(
                "instance {instance} has {} process(es), not {}",
                inst.procs,
                process + 1
            )));
        }
        Ok((inst.srv + process) as usize)
    }

    /// Process `process` of `instance` started, at `now_ms`, the first `queries` queued
    /// queries, `samples` samples in all (query batches: one query, its batch).
    pub fn started(
        &mut self,
        instance: u32,
        process: u32,
        now_ms: f64,
        queries: u32,
        samples: u32,
    ) -> Result<(), Error> {
        let s = self.server(instance, process)?;
        let w = self.prep.width;
        let med = self
            .prep
            .med
            .get(instance as usize * w + samples as usize)
            .copied()
            .filter(|m| m.is_finite())
            .ok_or_else(|| {
                Error::Invalid(format!("instance {instance} cannot run {samples} samples"))
            })?;
        self.state.dequeue(instance as usize, queries as usize);
        self.state.run(s, now_ms, med);
        Ok(())
    }

    /// Process `process` of `instance` finished its work.
    pub fn finished(&mut self, instance: u32, process: u32) -> Result<(), Error> {
        let s = self.server(instance, process)?;
        self.state.idle(s);
        Ok(())
    }

    /// The first `queries` queued queries of `instance` were dropped without running.
    pub fn dropped(&mut self, instance: u32, queries: u32) -> Result<(), Error> {
        self.server(instance, 0)?;
        self.state.dequeue(instance as usize, queries as usize);
        Ok(())
    }

    /// When `instance` is estimated to be able to start new work, seen at `now_ms`.
    pub fn estimated_start(&self, instance: u32, now_ms: f64) -> Option<f64> {
        ((instance as usize) < self.prep.insts.len()).then(|| {
            self.state
                .start_estimate(&self.prep, instance as usize, now_ms)
        })
    }
}
