//! FIFS, first idle, first served, and the queues it runs on: one home for the central-queue
//! rule, which the event-driven engine and a real server both call.
//!
//! * A query waits in its queue: with query batches, one FIFO per model and set of instances
//!   able to run the batch, so an idle instance only ever looks at queues whose every query
//!   it can run; with dynamic batching, one FIFO per model.
//! * A query that arrives while a server able to run it is idle goes to the one idle longest
//!   (first idle), ties to plan order; otherwise it waits.
//! * A server that goes idle takes the oldest waiting query among the queues it serves, ties
//!   to the lowest queue.
//!
//! [`Queues`] holds the queues, which servers take from each and which are idle since when;
//! the event engine (`event.rs`) runs every queue it has on it (FIFS's, and the per-instance
//! queues of dispatch at arrival). [`Fifs`] is the same rule for a real server: it reports
//! arrivals and completions, and [`Fifs`] says which query goes where. The CI test of
//! `migopt serve` checks the rule on served runs (fake workers): queries of a class start in
//! arrival order, and none waits long while an instance able to run it is idle.

use crate::prep::Prepared;
use crate::ServingMode;
use migopt_models::{Error, Plan, Scenario};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;

/// The queue a query joins, per mode and scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the queue is what differs
pub(crate) enum Topology {
    /// Query batches, FIFS: one queue per (model, set of instances able to run the batch).
    ClassQueues,
    /// Dynamic batching, FIFS: one queue per model feeding all its instances.
    ModelQueues,
    /// Dispatch at arrival in the event engine (dynamic batching, or query batches with
    /// jitter and no oracle): one queue per instance.
    InstanceQueues,
}

/// Something waiting in a queue.
pub(crate) trait Waits {
    /// When it arrived, ms.
    fn arrival_ms(&self) -> f64;
}

/// Queues of waiting work and the servers that take from them. A server is whatever runs
/// one batch at a time: an MPS process in the simulator, an instance's worker in a server.
#[derive(Debug, Clone)]
pub(crate) struct Queues<T> {
    pub kind: Topology,
    /// Class queues: the queue of each (model, batch) row, `model * width + batch`
    /// (`u32::MAX` where no instance runs the batch).
    class_of: Vec<u32>,
    /// Servers that take from each queue, in plan order.
    q_servers: Vec<Vec<u32>>,
    /// Queues each server takes from, ascending.
    srv_queues: Vec<Vec<u32>>,
    /// The waiting work of each queue, oldest first.
    pub queues: Vec<VecDeque<T>>,
    /// Whether each server is running work.
    pub busy: Vec<bool>,
    /// When each idle server went idle, ms (read only while it is idle).
    pub idle_since: Vec<f64>,
}

impl<T: Waits> Queues<T> {
    /// The queues of `kind` for the plan `p`, with `n_servers` servers, instance `i` being
    /// the servers `servers_of(i)`.
    pub(crate) fn new(
        p: &Prepared,
        kind: Topology,
        n_servers: usize,
        servers_of: impl Fn(u32) -> Range<u32>,
    ) -> Self {
        let w = p.width;
        let mut class_of = vec![u32::MAX; p.models.len() * w];
        let mut q_servers: Vec<Vec<u32>> = Vec::new();
        match kind {
            Topology::ClassQueues => {
                let mut ids: BTreeMap<(usize, Vec<u32>), u32> = BTreeMap::new();
                for m in 0..p.models.len() {
                    for b in 1..w {
                        let e = p.eligible(m, b);
                        if e.is_empty() {
                            continue;
                        }
                        let next = ids.len() as u32;
                        let q = *ids.entry((m, e.to_vec())).or_insert_with(|| {
                            q_servers.push(e.iter().flat_map(|&i| servers_of(i)).collect());
                            next
                        });
                        class_of[m * w + b] = q;
                    }
                }
            }
            Topology::ModelQueues => {
                for m in &p.models {
                    q_servers.push(m.insts.iter().flat_map(|&i| servers_of(i)).collect());
                }
            }
            Topology::InstanceQueues => {
                for i in 0..p.insts.len() as u32 {
                    q_servers.push(servers_of(i).collect());
                }
            }
        }
        let mut srv_queues: Vec<Vec<u32>> = vec![Vec::new(); n_servers];
        for (q, ss) in q_servers.iter().enumerate() {
            for &s in ss {
                srv_queues[s as usize].push(q as u32);
            }
        }
        Self {
            kind,
            class_of,
            queues: (0..q_servers.len())
                .map(|_| VecDeque::with_capacity(64))
                .collect(),
            q_servers,
            srv_queues,
            busy: vec![false; n_servers],
            idle_since: vec![0.0; n_servers],
        }
    }

    /// FIFS: the central queue of a query of model `m` with `b` samples, a (model, batch)
    /// row that some instance runs ([`Prepared::class`]).
    #[inline]
    pub(crate) fn central(&self, m: usize, b: usize, width: usize) -> usize {
        debug_assert!(self.kind != Topology::InstanceQueues);
        match self.kind {
            Topology::ClassQueues => self.class_of[m * width + b] as usize,
            _ => m,
        }
    }

    /// First idle: the idle server of queue `q` for which `fits` holds that has been idle
    /// longest, ties to plan order.
    #[inline]
    pub(crate) fn first_idle(&self, q: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
        let mut pick: Option<usize> = None;
        for &s in &self.q_servers[q] {
            let s = s as usize;
            if !self.busy[s]
                && fits(s)
                && pick.is_none_or(|j| self.idle_since[s] < self.idle_since[j])
            {
                pick = Some(s);
            }
        }
        pick
    }

    /// The queue whose head is oldest among those server `s` takes from, ties to the lowest
    /// queue; `None` if they are all empty.
    #[inline]
    pub(crate) fn oldest(&self, s: usize) -> Option<usize> {
        let mut best: Option<(f64, usize)> = None;
        for &q in &self.srv_queues[s] {
            if let Some(h) = self.queues[q as usize].front() {
                let a = h.arrival_ms();
                if best.is_none_or(|(b, _)| a < b) {
                    best = Some((a, q as usize));
                }
            }
        }
        best.map(|(_, q)| q)
    }

    /// Server `s` finished its work at `now`.
    #[inline]
    pub(crate) fn free(&mut self, s: usize, now: f64) {
        self.busy[s] = false;
        self.idle_since[s] = now;
    }
}

/// A waiting query: the server's id for it, and its arrival.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    id: usize,
    arrival_ms: f64,
}

impl Waits for Waiting {
    fn arrival_ms(&self) -> f64 {
        self.arrival_ms
    }
}

/// FIFS for a real server, with query batches: the [`Queues`] of one run, one server per
/// instance (an instance's worker runs one query at a time, whatever its MPS processes).
#[derive(Debug, Clone)]
pub struct Fifs {
    prep: Prepared,
    q: Queues<Waiting>,
    waiting: usize,
}

impl Fifs {
    /// Tables for `plan` serving `scenario` with query batches (every batch size of the
    /// scenario's distributions).
    pub fn new(plan: &Plan, scenario: &Scenario) -> Result<Self, Error> {
        let prep = Prepared::new(plan, scenario, ServingMode::QueryBatches, &BTreeSet::new())?;
        let q = Queues::new(&prep, Topology::ClassQueues, prep.insts.len(), |i| i..i + 1);
        Ok(Self {
            q,
            waiting: 0,
            prep,
        })
    }

    /// Queries waiting centrally.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Query `id` of `model` with `batch` samples arrives at `now_ms`: the instance that runs
    /// it now (it becomes busy), or `None` if it waits.
    pub fn arrive(
        &mut self,
        id: usize,
        model: &str,
        batch: u32,
        now_ms: f64,
    ) -> Result<Option<u32>, Error> {
        let (m, b) = self.prep.class(model, batch)?;
        let q = self.q.central(m, b, self.prep.width);
        match self.q.first_idle(q, |_| true) {
            Some(i) => {
                self.q.busy[i] = true;
                Ok(Some(i as u32))
            }
            None => {
                self.q.queues[q].push_back(Waiting {
                    id,
                    arrival_ms: now_ms,
                });
                self.waiting += 1;
                Ok(None)
            }
        }
    }

    /// Instance `inst` finished at `now_ms`: the oldest waiting query it can run (it stays
    /// busy with it), or `None` (it is idle from now).
    pub fn idle(&mut self, inst: u32, now_ms: f64) -> Option<usize> {
        let i = inst as usize;
        self.q.free(i, now_ms);
        let w = self
            .q
            .oldest(i)
            .and_then(|q| self.q.queues[q].pop_front())?;
        self.waiting -= 1;
        self.q.busy[i] = true;
        Some(w.id)
    }
}
