//! FIFS for a real server: first idle, first served, with the queues the event-driven engine
//! uses for query batches (one FIFO per model and set of instances able to run the batch).
//!
//! * A query that arrives while an instance able to run it is idle goes to the one idle
//!   longest (first idle); otherwise it waits in its queue.
//! * An instance that goes idle takes the oldest waiting query among the queues it serves.
//!
//! The server reports arrivals and completions; [`Fifs`] says which query goes where. The
//! event engine (`event.rs`) keeps its own copy of these queues for speed; the CI test of
//! `migopt serve` checks that the two agree query for query on a fake worker.

use crate::prep::Prepared;
use crate::ServingMode;
use migopt_models::{Error, Plan, Scenario};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A waiting query: the server's id for it, and its arrival.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    id: usize,
    arrival_ms: f64,
}

/// FIFS state for one run: which instances are idle since when, and the central queues.
#[derive(Debug, Clone)]
pub struct Fifs {
    prep: Prepared,
    class_of: Vec<u32>,
    queues: Vec<VecDeque<Waiting>>,
    inst_queues: Vec<Vec<u32>>,
    busy: Vec<bool>,
    idle_since: Vec<f64>,
    waiting: usize,
}

impl Fifs {
    /// Tables for `plan` serving `scenario` with query batches (every batch size of the
    /// scenario's distributions; one process per instance is assumed busy or idle as a whole).
    pub fn new(plan: &Plan, scenario: &Scenario) -> Result<Self, Error> {
        let prep = Prepared::new(plan, scenario, ServingMode::QueryBatches, &BTreeSet::new())?;
        let w = prep.width;
        let mut class_of = vec![u32::MAX; prep.models.len() * w];
        let mut ids: BTreeMap<(usize, Vec<u32>), u32> = BTreeMap::new();
        let mut inst_queues: Vec<Vec<u32>> = vec![Vec::new(); prep.insts.len()];
        for m in 0..prep.models.len() {
            for b in 1..w {
                let e = prep.eligible(m, b);
                if e.is_empty() {
                    continue;
                }
                let next = ids.len() as u32;
                let q = *ids.entry((m, e.to_vec())).or_insert_with(|| {
                    for &i in e {
                        inst_queues[i as usize].push(next);
                    }
                    next
                });
                class_of[m * w + b] = q;
            }
        }
        let ni = prep.insts.len();
        Ok(Self {
            queues: vec![VecDeque::new(); ids.len()],
            class_of,
            inst_queues,
            busy: vec![false; ni],
            idle_since: vec![0.0; ni],
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
        let p = &self.prep;
        let m = p
            .models
            .iter()
            .position(|x| x.name == model)
            .ok_or_else(|| Error::Invalid(format!("model `{model}` is not served by this plan")))?;
        let b = batch as usize;
        let q = if b < p.width {
            self.class_of[m * p.width + b]
        } else {
            u32::MAX
        };
        if q == u32::MAX {
            return Err(Error::Invalid(format!(
                "no instance of model `{model}` takes a query of batch {batch}"
            )));
        }
        // First idle: the eligible instance idle longest; ties to plan order.
        let mut pick: Option<u32> = None;
        for &i in p.eligible(m, b) {
            let iu = i as usize;
            if !self.busy[iu]
                && pick.is_none_or(|j| self.idle_since[iu] < self.idle_since[j as usize])
            {
                pick = Some(i);
            }
        }
        match pick {
            Some(i) => {
                self.busy[i as usize] = true;
                Ok(Some(i))
            }
            None => {
                self.queues[q as usize].push_back(Waiting {
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
        let mut best: Option<(f64, u32)> = None;
        for &q in &self.inst_queues[i] {
            if let Some(h) = self.queues[q as usize].front() {
                if best.is_none_or(|(a, _)| h.arrival_ms < a) {
                    best = Some((h.arrival_ms, q));
                }
            }
        }
        match best.and_then(|(_, q)| self.queues[q as usize].pop_front()) {
            Some(w) => {
                self.waiting -= 1;
                self.busy[i] = true;
                Some(w.id)
            }
            None => {
                self.busy[i] = false;
                self.idle_since[i] = now_ms;
                None
            }
        }
    }
}
