//! The arrival-dispatch engine for query batches (ELSA, JSQ, round-robin, random).
//!
//! Each instance is a FIFO queue in front of `procs` identical servers. Because the
//! scheduler picks the instance at arrival and service times are known when the query is
//! dispatched, the query's start is max(now, the instance's earliest free server) and its
//! finish is start + service (the Kiefer–Wolfowitz recursion). Nothing happens between
//! arrivals that the next arrival needs to see, so the engine keeps no event queue at all:
//! one loop iteration per query, no allocation, state in flat arrays.

use crate::prep::Prepared;
use crate::run::{Arrivals, RepStats, RunSpec};
use crate::SchedulerKind;
use rand::rngs::Xoshiro256PlusPlus;
use rand::Rng;
use rand_distr::{Distribution, Exp1};

const ELSA: u8 = 0;
const JSQ: u8 = 1;
const RR: u8 = 2;
const RANDOM: u8 = 3;

pub(crate) fn run(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    match spec.scheduler {
        SchedulerKind::Elsa => run_k::<ELSA>(p, spec, rng),
        SchedulerKind::Jsq => run_k::<JSQ>(p, spec, rng),
        SchedulerKind::RoundRobin => run_k::<RR>(p, spec, rng),
        SchedulerKind::Random => run_k::<RANDOM>(p, spec, rng),
        // FIFS holds queries centrally and is run by the event engine.
        SchedulerKind::Fifs => unreachable!("FIFS is event-driven"),
    }
}

/// ELSA's per-group tournament trees, all in two flat arrays: each node holds the drain time
/// and id of the member that drains first in its subtree, so the root answers "which
/// instance of this size frees up first, and when" with one load.
struct Trees {
    key: Vec<f64>,
    id: Vec<u32>,
}

impl Trees {
    fn new(ids: &[u32]) -> Self {
        let key = ids
            .iter()
            .map(|&i| if i == u32::MAX { f64::INFINITY } else { 0.0 })
            .collect();
        Self {
            key,
            id: ids.to_vec(),
        }
    }

    /// Sets a leaf's drain time and replays the matches on its path to the root:
    /// O(log group size).
    #[inline(always)]
    fn update(&mut self, off: usize, cap: usize, leaf: usize, drain: f64) {
        let key = &mut self.key[off..off + 2 * cap];
        let id = &mut self.id[off..off + 2 * cap];
        let mut node = cap + leaf;
        key[node] = drain;
        node >>= 1;
        // Every group's tree has the same depth (see `Prepared`), so this loop runs a fixed
        // number of times and the winner is picked by arithmetic: no unpredictable branch.
        while node >= 1 {
            let l = 2 * node;
            // SAFETY: 1 ≤ node < cap, so l + 1 = 2·node + 1 < 2·cap = key.len() = id.len().
            unsafe {
                let w = l + (*key.get_unchecked(l + 1) < *key.get_unchecked(l)) as usize;
                *key.get_unchecked_mut(node) = *key.get_unchecked(w);
                *id.get_unchecked_mut(node) = *id.get_unchecked(w);
            }
            node >>= 1;
        }
    }
}

/// Start times of queries dispatched to an instance but not yet started, oldest first, in
/// a power-of-two ring (starts are non-decreasing per instance, so the ones that have begun
/// are always at the front). Grows by doubling, which happens a handful of times per run.
struct Waiting {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Waiting {
    fn new() -> Self {
        Self {
            buf: vec![0.0; 64],
            head: 0,
            len: 0,
        }
    }

    /// Forgets queries started by `now`, returns how many still wait, and records a query
    /// that starts at `start` if it has to wait.
    #[inline(always)]
    fn arrive(&mut self, now: f64, start: f64) -> u64 {
        let mask = self.buf.len() - 1;
        // Usually zero or one query has started since the last arrival: two branch-free
        // steps cover that, the loop catches the rest.
        for _ in 0..2 {
            let done = (self.len > 0) & (self.buf[self.head] <= now);
            self.head = (self.head + done as usize) & mask;
            self.len -= done as usize;
        }
        // `&`, not `&&`: one well-predicted branch (the slot read is in bounds either way).
        while (self.len > 0) & (self.buf[self.head] <= now) {
            self.head = (self.head + 1) & mask;
            self.len -= 1;
        }
        let waiting = self.len as u64;
        if start > now {
            if self.len == self.buf.len() {
                self.grow();
            }
            let mask = self.buf.len() - 1;
            self.buf[(self.head + self.len) & mask] = start;
            self.len += 1;
        }
        waiting
    }

    #[cold]
    fn grow(&mut self) {
        let n = self.buf.len();
        let mut v = Vec::with_capacity(2 * n);
        v.extend((0..self.len).map(|k| self.buf[(self.head + k) & (n - 1)]));
        v.resize(2 * n, 0.0);
        self.buf = v;
        self.head = 0;
    }
}

#[inline(always)]
fn select_f(c: bool, a: f64, b: f64) -> f64 {
    // On the bit patterns, so that it compiles to masks rather than a jump.
    let m = (c as u64).wrapping_neg();
    f64::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
}

#[inline(always)]
fn select_u(c: bool, a: u32, b: u32) -> u32 {
    // Arithmetic select: the compiler keeps it branch-free.
    let m = (c as u32).wrapping_neg();
    (a & m) | (b & !m)
}

#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

fn run_k<const K: u8>(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    let ni = p.insts.len();
    let w = p.width;
    let mut srv_free = vec![0.0f64; p.n_servers];
    let mut drain = vec![0.0f64; ni];
    let mut tree = Trees::new(&p.tree_init);
    let mut rr = vec![0usize; p.models.len()];
    // Start times of queries dispatched but not yet started, per instance (FIFO, so the
    // front starts first): their count is the queue length an arrival sees.
    let mut waiting: Vec<Waiting> = (0..ni).map(|_| Waiting::new()).collect();
    let mut st = RepStats::new(p, true);
    let mut arr = Arrivals::new(spec);
    let mut measuring = false;
    let mut tend = f64::NAN;
    while let Some((t, m, b, measured)) = arr.next(rng) {
        if measured && !measuring {
            measuring = true;
            st.tw0 = t;
            // Work already queued when the window opens is done inside it (each server
            // is busy without a gap until it drains).
            for (i, inst) in p.insts.iter().enumerate() {
                for s in inst.srv..inst.srv + inst.procs {
                    st.insts[i].busy += (srv_free[s as usize] - t).max(0.0);
                }
            }
        }
        tend = t;
        let sla = p.models[m].sla;
        let deadline = t + sla;
        let inst = match K {
            ELSA => {
                // Smallest instance size whose estimated finish meets the deadline (ties to
                // the earliest finish); if none does, the earliest finish overall.
                // Selects instead of branches: which candidate wins is data, not control
                // flow, so the CPU has nothing to mispredict.
                let (mut any_fin, mut any_i) = (f64::INFINITY, u32::MAX);
                let (mut meet_fin, mut meet_i, mut meet_c) = (f64::INFINITY, u32::MAX, u32::MAX);
                for c in p.candidates(m, b) {
                    if c.compute > meet_c {
                        break;
                    }
                    let root = c.tree_off as usize + 1;
                    let (d, i) = (tree.key[root], tree.id[root]);
                    let fin = fmax(d, t) + c.svc;
                    let ok = (fin <= deadline) & (fin < meet_fin);
                    meet_fin = select_f(ok, fin, meet_fin);
                    meet_i = select_u(ok, i, meet_i);
                    meet_c = select_u(ok, c.compute, meet_c);
                    let better = fin < any_fin;
                    any_fin = select_f(better, fin, any_fin);
                    any_i = select_u(better, i, any_i);
                }
                select_u(meet_i != u32::MAX, meet_i, any_i) as usize
            }
            JSQ => {
                // Least backlog (time until the query could start); ties to the earliest
                // finish, then to plan order.
                let mut best = (f64::INFINITY, f64::INFINITY, 0usize);
                for &i in p.eligible(m, b) {
                    let i = i as usize;
                    let back = (drain[i] - t).max(0.0);
                    let fin = drain[i].max(t) + p.med[i * w + b];
                    if back < best.0 || (back == best.0 && fin < best.1) {
                        best = (back, fin, i);
                    }
                }
                best.2
            }
            RR => {
                // The model's instances in turn, skipping those that cannot run the batch.
                let list = &p.models[m].insts;
                loop {
                    let c = rr[m];
                    rr[m] = if c + 1 == list.len() { 0 } else { c + 1 };
                    let i = list[c] as usize;
                    if p.med[i * w + b].is_finite() {
                        break i;
                    }
                }
            }
            _ => {
                let e = p.eligible(m, b);
                e[crate::rng::below(rng.next_u64() >> 32, e.len())] as usize
            }
        };
        let k = inst * w + b;
        let est = p.med[k];
        let pi = p.hot[inst];
        let (start, srv) = if pi.procs == 1 {
            (fmax(drain[inst], t), pi.srv as usize)
        } else {
            let mut best = pi.srv as usize;
            for s in pi.srv as usize + 1..(pi.srv + pi.procs) as usize {
                if srv_free[s] < srv_free[best] {
                    best = s;
                }
            }
            (fmax(srv_free[best], t), best)
        };
        if spec.drop_late && start + est > deadline {
            if measuring {
                st.models[m].measured += 1;
                st.models[m].dropped += 1;
            }
            continue;
        }
        let svc = if spec.jitter {
            p.jshift[k] + p.jscale[k] * Distribution::<f64>::sample(&Exp1, rng)
        } else {
            est
        };
        let finish = start + svc;
        srv_free[srv] = finish;
        drain[inst] = if pi.procs == 1 {
            finish
        } else {
            srv_free[pi.srv as usize..(pi.srv + pi.procs) as usize]
                .iter()
                .fold(f64::INFINITY, |d, &f| d.min(f))
        };
        if K == ELSA {
            tree.update(
                pi.tree_off as usize,
                pi.cap as usize,
                pi.leaf as usize,
                drain[inst],
            );
        }
        let qlen = waiting[inst].arrive(t, start);
        if measuring {
            st.models[m].measured += 1;
            st.models[m].qlen.record(qlen);
            st.completed(m, sla, t, start, finish, b);
            let ia = &mut st.insts[inst];
            ia.busy += svc;
            ia.queries += 1;
            ia.batches += 1;
            if let Some(h) = ia.qlen.as_mut() {
                h.record(qlen);
            }
        }
    }
    if measuring {
        // Work that runs past the last arrival lies outside the window.
        for (i, inst) in p.insts.iter().enumerate() {
            for s in inst.srv..inst.srv + inst.procs {
                st.insts[i].busy -= (srv_free[s as usize] - tend).max(0.0);
            }
        }
    }
    st.tend = tend;
    st.generated = arr.generated();
    st
}
