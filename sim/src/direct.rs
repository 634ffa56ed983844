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
use std::collections::VecDeque;

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

/// Recomputes the winners of a group's tournament tree on the path above a leaf whose
/// instance's drain time changed: O(log group size).
#[inline(always)]
fn tree_update(tree: &mut [u32], drain: &[f64], off: usize, cap: usize, leaf: usize) {
    let mut node = (cap + leaf) >> 1;
    while node >= 1 {
        let l = tree[off + 2 * node];
        let r = tree[off + 2 * node + 1];
        tree[off + node] = if r != u32::MAX && drain[r as usize] < drain[l as usize] {
            r
        } else {
            l
        };
        node >>= 1;
    }
}

fn run_k<const K: u8>(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    let ni = p.insts.len();
    let w = p.width;
    let mut srv_free = vec![0.0f64; p.n_servers];
    let mut drain = vec![0.0f64; ni];
    let mut tree = p.tree_init.clone();
    let mut rr = vec![0usize; p.models.len()];
    // Start times of queries dispatched but not yet started, per instance (FIFO, so the
    // front starts first): their count is the queue length an arrival sees.
    let mut waiting: Vec<VecDeque<f64>> = (0..ni).map(|_| VecDeque::with_capacity(64)).collect();
    let mut st = RepStats::new(p, true);
    let mut arr = Arrivals::new(spec, p);
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
                let mut best_any = (f64::INFINITY, u32::MAX);
                let mut meet = (f64::INFINITY, u32::MAX, u32::MAX);
                for c in p.candidates(m, b) {
                    if c.compute > meet.2 {
                        break;
                    }
                    let g = &p.groups[c.group as usize];
                    let i = tree[g.tree_off as usize + 1];
                    let fin = drain[i as usize].max(t) + c.svc;
                    if fin <= deadline && fin < meet.0 {
                        meet = (fin, i, c.compute);
                    }
                    if fin < best_any.0 {
                        best_any = (fin, i);
                    }
                }
                if meet.1 != u32::MAX {
                    meet.1 as usize
                } else {
                    best_any.1 as usize
                }
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
        let pi = &p.insts[inst];
        let (start, srv) = if pi.procs == 1 {
            (drain[inst].max(t), pi.srv as usize)
        } else {
            let mut best = pi.srv as usize;
            for s in pi.srv as usize + 1..(pi.srv + pi.procs) as usize {
                if srv_free[s] < srv_free[best] {
                    best = s;
                }
            }
            (srv_free[best].max(t), best)
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
            let mut d = f64::INFINITY;
            for s in pi.srv as usize..(pi.srv + pi.procs) as usize {
                d = d.min(srv_free[s]);
            }
            d
        };
        if K == ELSA {
            let g = &p.groups[pi.group as usize];
            tree_update(
                &mut tree,
                &drain,
                g.tree_off as usize,
                g.cap as usize,
                pi.leaf as usize,
            );
        }
        let q = &mut waiting[inst];
        while let Some(&s0) = q.front() {
            if s0 <= t {
                q.pop_front();
            } else {
                break;
            }
        }
        let qlen = q.len() as u64;
        if start > t {
            q.push_back(start);
        }
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
