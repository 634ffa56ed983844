//! The event-driven engine, for the cases where a query's start is not known at arrival:
//! FIFS (queries wait in a shared queue until some instance frees up), dynamic batching
//! (requests wait until a batch fills or times out), and dispatch at arrival when service
//! times are drawn (`jitter`) and the dispatcher may not read them. Dispatch-at-arrival rules
//! decide from a [`DispatchState`] that the engine updates exactly as a real server would:
//! on dispatch, on every start and on every completion. Events are server completions and
//! batch timeouts in a binary heap ordered by (time, id), so simultaneous events resolve the
//! same way every run; arrivals are generated one ahead and merged with the heap, never
//! stored. The heap holds at most one completion per server and one timeout per queue, and
//! is allocated once.

use crate::prep::Prepared;
use crate::run::{Arrivals, RepStats, RunSpec};
use crate::sched::{DispatchState, Query, Queues, Rule, Topology, Waits};
use crate::SchedulerKind;
use rand::rngs::Xoshiro256PlusPlus;
use rand::Rng;
use rand_distr::{Distribution, Exp1};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A waiting query (query-batch mode) or request (dynamic batching).
#[derive(Debug, Clone, Copy)]
struct Req {
    arr: f64,
    b: u32,
    m: u16,
    measured: bool,
}

/// A batch about to start: `count` requests from the front of a queue, `n` samples in all,
/// on server `srv` of instance `inst`.
struct Batch {
    srv: usize,
    inst: usize,
    count: usize,
    n: usize,
}

impl Waits for Req {
    #[inline(always)]
    fn arrival_ms(&self) -> f64 {
        self.arr
    }
}

struct Ev<'p> {
    p: &'p Prepared,
    /// The queues, which servers take from each, and which servers are busy or idle since
    /// when: FIFS's central queues, or one per instance.
    cq: Queues<Req>,
    jitter: bool,
    drop_late: bool,
    until: Vec<f64>,
    q_samples: Vec<u64>,
    timer_at: Vec<f64>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    st: RepStats,
    measuring: bool,
    ended: bool,
    /// What the dispatcher knows (per-instance queues only).
    know: DispatchState,
    /// Neighbours' recent utilisation, for the interference model.
    load: Option<crate::interference::LoadState>,
}

/// Heap key of a non-negative time: IEEE-754 bits order like the values.
#[inline(always)]
fn key(t: f64) -> u64 {
    t.to_bits()
}

impl<'p> Ev<'p> {
    fn new(p: &'p Prepared, spec: &RunSpec) -> Self {
        let kind = match (p.dynamic, spec.scheduler) {
            (None, SchedulerKind::Fifs) => Topology::ClassQueues,
            (Some(_), SchedulerKind::Fifs) => Topology::ModelQueues,
            (_, _) => Topology::InstanceQueues,
        };
        let cq = Queues::new(p, kind, p.n_servers, |i| {
            let inst = &p.insts[i as usize];
            inst.srv..inst.srv + inst.procs
        });
        let nq = cq.queues.len();
        Ev {
            p,
            cq,
            jitter: spec.jitter,
            drop_late: spec.drop_late,
            until: vec![0.0; p.n_servers],
            q_samples: vec![0; nq],
            timer_at: vec![f64::NEG_INFINITY; nq],
            heap: BinaryHeap::with_capacity(p.n_servers + nq + 1),
            st: RepStats::new(p, kind == Topology::InstanceQueues),
            measuring: false,
            ended: false,
            know: DispatchState::new(p),
            load: p.interf.as_ref().map(|f| f.state()),
        }
    }

    /// Starts every batch that queue `q` can start at `now`, or arms its timeout.
    fn try_start(&mut self, q: usize, now: f64, rng: &mut Xoshiro256PlusPlus) {
        let p = self.p;
        let model_queue = self.cq.kind == Topology::ModelQueues;
        loop {
            let Some(&head) = self.cq.queues[q].front() else {
                return;
            };
            // First idle, first served; a model's queue (dynamic batching) goes only to
            // servers whose batch cap takes its head.
            let Some(srv) = self.cq.first_idle(q, |s| {
                !model_queue || head.b <= p.insts[p.srv_inst[s] as usize].batch
            }) else {
                return;
            };
            let inst = p.srv_inst[srv] as usize;
            if self.drop_late && self.drop_expired(q, inst, now) {
                continue;
            }
            let Some((count, n)) = self.batch_size(q, inst, head, now) else {
                return;
            };
            let batch = Batch {
                srv,
                inst,
                count,
                n,
            };
            let svc = self.service(&batch, now, rng);
            self.start(q, &batch, now, svc);
        }
    }

    /// Drops from the front of queue `q` what can no longer make its deadline even if
    /// instance `i` started it alone at `now`; whether it dropped any.
    #[inline(always)]
    fn drop_expired(&mut self, q: usize, i: usize, now: f64) -> bool {
        let p = self.p;
        let mut dropped = false;
        while let Some(&h) = self.cq.queues[q].front() {
            if h.b > p.insts[i].batch && p.dynamic.is_some() {
                // Not this server's to judge: re-pick for the new head.
                break;
            }
            let sla = p.models[h.m as usize].sla;
            let est = p.med[i * p.width + h.b as usize];
            if now + est <= h.arr + sla {
                break;
            }
            self.cq.queues[q].pop_front();
            self.q_samples[q] -= h.b as u64;
            if self.cq.kind == Topology::InstanceQueues {
                self.know.dequeue(q, 1);
            }
            if h.measured {
                self.st.dropped(h.m as usize);
            }
            dropped = true;
        }
        dropped
    }

    /// The batch instance `i` would start from queue `q` (front `head`) at `now`: how many
    /// requests and samples. The head alone in query-batch mode; with dynamic batching, as
    /// many requests as fit the instance's batch cap, once they fill it or the head has
    /// waited the delay; before that `None`, with the queue's timeout armed.
    #[inline(always)]
    fn batch_size(&mut self, q: usize, i: usize, head: Req, now: f64) -> Option<(usize, usize)> {
        let p = self.p;
        let Some(delay) = p.dynamic else {
            return Some((1, head.b as usize));
        };
        let cap = p.insts[i].batch as u64;
        if self.q_samples[q] < cap && now < head.arr + delay {
            let due = head.arr + delay;
            if self.timer_at[q] != due {
                self.timer_at[q] = due;
                self.heap
                    .push(Reverse((key(due), (p.n_servers + q) as u32)));
            }
            return None;
        }
        let (mut count, mut n) = (0usize, 0u64);
        for r in &self.cq.queues[q] {
            if n + r.b as u64 > cap {
                break;
            }
            n += r.b as u64;
            count += 1;
        }
        Some((count, n as usize))
    }

    /// The service time of `batch` started at `now`: the median, or a draw with jitter,
    /// slowed by how busy the neighbours are when the interference model is on.
    #[inline(always)]
    fn service(&mut self, batch: &Batch, now: f64, rng: &mut Xoshiro256PlusPlus) -> f64 {
        let p = self.p;
        let (i, n) = (batch.inst, batch.n);
        let k = i * p.width + n;
        let mut svc = if self.jitter {
            p.jitter.draw(k, Distribution::<f64>::sample(&Exp1, rng))
        } else {
            p.med[k]
        };
        if let (Some(f), Some(ls)) = (p.interf.as_ref(), self.load.as_mut()) {
            let (busy, until) = (&self.cq.busy, &self.until);
            let left = |j: usize| {
                let x = &p.insts[j];
                (x.srv as usize..(x.srv + x.procs) as usize)
                    .filter(|&s| busy[s])
                    .map(|s| (until[s] - now).max(0.0))
                    .sum::<f64>()
            };
            svc = (svc - p.occ_extra) * f.factor(ls, i, n, now, left) + p.occ_extra;
            crate::interference::Interference::add_work(ls, i, svc);
        }
        svc
    }

    /// Starts `batch` from the front of queue `q` at `now`, running `svc` ms: the server
    /// busy until it finishes, the completion scheduled, the requests recorded.
    #[inline(always)]
    fn start(&mut self, q: usize, batch: &Batch, now: f64, svc: f64) {
        let p = self.p;
        let (pick, i) = (batch.srv, batch.inst);
        let finish = now + svc;
        if self.cq.kind == Topology::InstanceQueues {
            self.know.dequeue(i, batch.count);
            self.know.run(pick, now, p.med[i * p.width + batch.n]);
        }
        self.cq.busy[pick] = true;
        self.until[pick] = finish;
        self.heap.push(Reverse((key(finish), pick as u32)));
        let mut any = false;
        for _ in 0..batch.count {
            let Some(r) = self.cq.queues[q].pop_front() else {
                break;
            };
            self.q_samples[q] -= r.b as u64;
            if r.measured {
                any = true;
                let m = r.m as usize;
                self.st.models[m].measured += 1;
                self.st
                    .completed(m, p.models[m].sla, r.arr, now, finish, r.b as usize);
                self.st.insts[i].queries += 1;
            }
        }
        if any {
            self.st.insts[i].batches += 1;
        }
        if self.measuring && !self.ended {
            self.st.insts[i].busy += svc;
        }
    }

    /// A query of model `m`, batch `b`, arriving at `t`: queued (in its central queue, or
    /// at the instance the rule picks), its queue length recorded, started if it can be.
    fn arrive(
        &mut self,
        (t, m, b, measured): (f64, usize, usize, bool),
        rule: Rule,
        rng: &mut Xoshiro256PlusPlus,
    ) {
        let p = self.p;
        let (q, inst) = match self.cq.kind {
            Topology::ClassQueues | Topology::ModelQueues => (self.cq.central(m, b, p.width), None),
            Topology::InstanceQueues => {
                let q = Query {
                    model: m as u32,
                    batch: b as u32,
                    arrival_ms: t,
                    sla_ms: p.models[m].sla,
                };
                let bits = if rule == Rule::Random {
                    rng.next_u64() >> 32
                } else {
                    0
                };
                let i = self.know.pick(p, rule, &q, t, bits).unwrap_or(0) as usize;
                self.know.enqueue(p, i, b as u32);
                (i, Some(i))
            }
        };
        if measured {
            let ql = self.cq.queues[q].len() as u64;
            self.st.models[m].qlen.record(ql);
            if let Some(h) = inst.and_then(|i| self.st.insts[i].qlen.as_mut()) {
                h.record(ql);
            }
        }
        self.cq.queues[q].push_back(Req {
            arr: t,
            b: b as u32,
            m: m as u16,
            measured,
        });
        self.q_samples[q] += b as u64;
        self.try_start(q, t, rng);
    }

    /// Event `id` at `now`: a completion on server `id`, or (past the servers) the batch
    /// timeout of queue `id` − servers.
    fn event(&mut self, now: f64, id: usize, rng: &mut Xoshiro256PlusPlus) {
        let p = self.p;
        if id < p.n_servers {
            self.cq.free(id, now);
            self.know.idle(id);
            // The oldest waiting query among the queues this server takes from.
            if let Some(q) = self.cq.oldest(id) {
                self.try_start(q, now, rng);
            }
        } else {
            let q = id - p.n_servers;
            if self.timer_at[q] == now {
                self.timer_at[q] = f64::NEG_INFINITY;
                self.try_start(q, now, rng);
            }
        }
    }

    /// The measurement window opens at `t`, the first measured arrival: work running then
    /// is done inside it.
    #[cold]
    fn open_window(&mut self, t: f64) {
        self.measuring = true;
        self.st.tw0 = t;
        self.add_running_work(t, 1.0);
    }

    /// The window closes at the last arrival `t`: work still running then is outside.
    #[cold]
    fn close_window(&mut self, t: f64) {
        self.add_running_work(t, -1.0);
        self.ended = true;
    }

    /// Adds `sign` × each busy server's work left after `t` to its instance's busy time.
    fn add_running_work(&mut self, t: f64, sign: f64) {
        let p = self.p;
        for s in 0..p.n_servers {
            if self.cq.busy[s] {
                self.st.insts[p.srv_inst[s] as usize].busy += sign * (self.until[s] - t).max(0.0);
            }
        }
    }
}

pub(crate) fn run(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    let mut ev = Ev::new(p, spec);
    let rule = spec.scheduler.rule();
    let mut arr = Arrivals::new(spec);
    let mut next = arr.next(rng);
    let mut tend = f64::NAN;
    loop {
        let ev_t = ev.heap.peek().map(|Reverse((k, _))| f64::from_bits(*k));
        let take_arrival = match (next, ev_t) {
            (Some((t, ..)), Some(e)) => t < e,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_arrival {
            let Some(a @ (t, _, _, measured)) = next else {
                break;
            };
            if measured && !ev.measuring {
                ev.open_window(t);
            }
            tend = t;
            ev.arrive(a, rule, rng);
            next = arr.next(rng);
            if next.is_none() && ev.measuring {
                ev.close_window(t);
            }
        } else {
            let Some(Reverse((k, id))) = ev.heap.pop() else {
                break;
            };
            ev.event(f64::from_bits(k), id as usize, rng);
        }
    }
    ev.st.tend = tend;
    ev.st.generated = arr.generated();
    ev.st
}
