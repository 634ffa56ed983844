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

use crate::prep::{Prepared, Topology};
use crate::run::{Arrivals, RepStats, RunSpec};
use crate::sched::{DispatchState, Query, Rule};
use crate::SchedulerKind;
use rand::rngs::Xoshiro256PlusPlus;
use rand::Rng;
use rand_distr::{Distribution, Exp1};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// A waiting query (query-batch mode) or request (dynamic batching).
#[derive(Debug, Clone, Copy)]
struct Req {
    arr: f64,
    b: u32,
    m: u16,
    measured: bool,
}

/// Which queues exist and who serves them.
struct Topo {
    kind: Topology,
    /// Query batches, FIFS: the queue of each (model, batch) row.
    class_of: Vec<u32>,
    q_servers: Vec<Vec<u32>>,
    srv_queues: Vec<Vec<u32>>,
}

impl Topo {
    fn new(p: &Prepared, sched: SchedulerKind) -> Self {
        let kind = match (p.dynamic, sched) {
            (None, SchedulerKind::Fifs) => Topology::ClassQueues,
            (Some(_), SchedulerKind::Fifs) => Topology::ModelQueues,
            (_, _) => Topology::InstanceQueues,
        };
        let w = p.width;
        let servers_of = |i: u32| {
            let inst = &p.insts[i as usize];
            inst.srv..inst.srv + inst.procs
        };
        let mut class_of = vec![u32::MAX; p.models.len() * w];
        let mut q_servers: Vec<Vec<u32>> = Vec::new();
        let mut srv_queues: Vec<Vec<u32>> = vec![Vec::new(); p.n_servers];
        match kind {
            Topology::ClassQueues => {
                // Batches that the same set of instances can run share one FIFO queue, so an
                // idle instance only ever looks at queues whose every query it can run.
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
        for (q, ss) in q_servers.iter().enumerate() {
            for &s in ss {
                srv_queues[s as usize].push(q as u32);
            }
        }
        Self {
            kind,
            class_of,
            q_servers,
            srv_queues,
        }
    }
}

struct Ev<'p> {
    p: &'p Prepared,
    topo: Topo,
    jitter: bool,
    drop_late: bool,
    busy: Vec<bool>,
    until: Vec<f64>,
    idle_since: Vec<f64>,
    queues: Vec<VecDeque<Req>>,
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
    /// Starts every batch that queue `q` can start at `now`, or arms its timeout.
    fn try_start(&mut self, q: usize, now: f64, rng: &mut Xoshiro256PlusPlus) {
        let p = self.p;
        let w = p.width;
        loop {
            let Some(&head) = self.queues[q].front() else {
                return;
            };
            // The idle server that has been idle longest (first idle, first served).
            let mut pick = usize::MAX;
            for &s in &self.topo.q_servers[q] {
                let s = s as usize;
                if self.busy[s] {
                    continue;
                }
                let inst = &p.insts[p.srv_inst[s] as usize];
                if self.topo.kind == Topology::ModelQueues && head.b > inst.batch {
                    continue;
                }
                if pick == usize::MAX || self.idle_since[s] < self.idle_since[pick] {
                    pick = s;
                }
            }
            if pick == usize::MAX {
                return;
            }
            let i = p.srv_inst[pick] as usize;
            let inst = &p.insts[i];
            if self.drop_late {
                // Drop what can no longer make its deadline even if started alone, now.
                let mut dropped = false;
                while let Some(&h) = self.queues[q].front() {
                    if h.b > inst.batch && p.dynamic.is_some() {
                        // Not this server's to judge: re-pick for the new head.
                        break;
                    }
                    let sla = p.models[h.m as usize].sla;
                    let est = p.med[i * w + h.b as usize];
                    if now + est > h.arr + sla {
                        self.queues[q].pop_front();
                        self.q_samples[q] -= h.b as u64;
                        if self.topo.kind == Topology::InstanceQueues {
                            self.know.dequeue(q, 1);
                        }
                        if h.measured {
                            let a = &mut self.st.models[h.m as usize];
                            a.measured += 1;
                            a.dropped += 1;
                        }
                        dropped = true;
                    } else {
                        break;
                    }
                }
                if dropped {
                    continue;
                }
            }
            let (count, n) = if let Some(delay) = p.dynamic {
                let cap = inst.batch as u64;
                if self.q_samples[q] < cap && now < head.arr + delay {
                    let due = head.arr + delay;
                    if self.timer_at[q] != due {
                        self.timer_at[q] = due;
                        self.heap
                            .push(Reverse((key(due), (p.n_servers + q) as u32)));
                    }
                    return;
                }
                let (mut count, mut n) = (0usize, 0u64);
                for r in &self.queues[q] {
                    if n + r.b as u64 > cap {
                        break;
                    }
                    n += r.b as u64;
                    count += 1;
                }
                (count, n as usize)
            } else {
                (1, head.b as usize)
            };
            let k = i * w + n;
            let mut svc = if self.jitter {
                p.jitter.draw(k, Distribution::<f64>::sample(&Exp1, rng))
            } else {
                p.med[k]
            };
            if let (Some(f), Some(ls)) = (p.interf.as_ref(), self.load.as_mut()) {
                let (busy, until) = (&self.busy, &self.until);
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
            let finish = now + svc;
            if self.topo.kind == Topology::InstanceQueues {
                self.know.dequeue(i, count);
                self.know.run(pick, now, p.med[k]);
            }
            self.busy[pick] = true;
            self.until[pick] = finish;
            self.heap.push(Reverse((key(finish), pick as u32)));
            let mut any = false;
            for _ in 0..count {
                let Some(r) = self.queues[q].pop_front() else {
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
    }
}

pub(crate) fn run(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    let topo = Topo::new(p, spec.scheduler);
    let nq = topo.q_servers.len();
    let per_instance = topo.kind == Topology::InstanceQueues;
    let mut ev = Ev {
        p,
        topo,
        jitter: spec.jitter,
        drop_late: spec.drop_late,
        busy: vec![false; p.n_servers],
        until: vec![0.0; p.n_servers],
        idle_since: vec![0.0; p.n_servers],
        queues: (0..nq).map(|_| VecDeque::with_capacity(64)).collect(),
        q_samples: vec![0; nq],
        timer_at: vec![f64::NEG_INFINITY; nq],
        heap: BinaryHeap::with_capacity(p.n_servers + nq + 1),
        st: RepStats::new(p, per_instance),
        measuring: false,
        ended: false,
        know: DispatchState::new(p),
        load: p.interf.as_ref().map(|f| f.state()),
    };
    let rule = spec.scheduler.rule();
    let mut arr = Arrivals::new(spec);
    let mut next = arr.next(rng);
    let mut tend = f64::NAN;
    let w = p.width;
    loop {
        let ev_t = ev.heap.peek().map(|Reverse((k, _))| f64::from_bits(*k));
        let take_arrival = match (next, ev_t) {
            (Some((t, ..)), Some(e)) => t < e,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_arrival {
            let Some((t, m, b, measured)) = next else {
                break;
            };
            if measured && !ev.measuring {
                ev.measuring = true;
                ev.st.tw0 = t;
                for s in 0..p.n_servers {
                    if ev.busy[s] {
                        ev.st.insts[p.srv_inst[s] as usize].busy += (ev.until[s] - t).max(0.0);
                    }
                }
            }
            tend = t;
            let (q, inst) = match ev.topo.kind {
                Topology::ClassQueues => (ev.topo.class_of[m * w + b] as usize, None),
                Topology::ModelQueues => (m, None),
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
                    let i = ev.know.pick(p, rule, &q, t, bits).unwrap_or(0) as usize;
                    ev.know.enqueue(p, i, b as u32);
                    (i, Some(i))
                }
            };
            if measured {
                let ql = ev.queues[q].len() as u64;
                ev.st.models[m].qlen.record(ql);
                if let Some(h) = inst.and_then(|i| ev.st.insts[i].qlen.as_mut()) {
                    h.record(ql);
                }
            }
            ev.queues[q].push_back(Req {
                arr: t,
                b: b as u32,
                m: m as u16,
                measured,
            });
            ev.q_samples[q] += b as u64;
            ev.try_start(q, t, rng);
            next = arr.next(rng);
            if next.is_none() && ev.measuring {
                // The window closes at the last arrival: work still running then is outside.
                for s in 0..p.n_servers {
                    if ev.busy[s] {
                        ev.st.insts[p.srv_inst[s] as usize].busy -= (ev.until[s] - t).max(0.0);
                    }
                }
                ev.ended = true;
            }
        } else {
            let Some(Reverse((k, id))) = ev.heap.pop() else {
                break;
            };
            let now = f64::from_bits(k);
            let id = id as usize;
            if id < p.n_servers {
                ev.busy[id] = false;
                ev.know.idle(id);
                ev.idle_since[id] = now;
                if ev.topo.kind == Topology::ClassQueues {
                    // Oldest waiting query among the queues this server can take from.
                    let mut best = (f64::INFINITY, usize::MAX);
                    for &q in &ev.topo.srv_queues[id] {
                        if let Some(h) = ev.queues[q as usize].front() {
                            if h.arr < best.0 {
                                best = (h.arr, q as usize);
                            }
                        }
                    }
                    if best.1 != usize::MAX {
                        ev.try_start(best.1, now, rng);
                    }
                } else {
                    let q = ev.topo.srv_queues[id][0] as usize;
                    ev.try_start(q, now, rng);
                }
            } else {
                let q = id - p.n_servers;
                if ev.timer_at[q] == now {
                    ev.timer_at[q] = f64::NEG_INFINITY;
                    ev.try_start(q, now, rng);
                }
            }
        }
    }
    ev.st.tend = tend;
    ev.st.generated = arr.generated();
    ev.st
}
