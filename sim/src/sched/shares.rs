//! Tables the dispatch rules read besides the service times: each (model, batch) class's
//! eligible instances in ascending size, the plan's target share of each (class, size), and
//! which sizes are the only home of some class. Built once per run from the plan.

use crate::prep::{PInst, PModel};
use migopt_models::Plan;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) struct ShareTables {
    /// Eligible instances per class, ascending (compute, plan order); offsets as `elig_off`.
    pub elig_sized: Vec<u32>,
    /// Share slot of each `elig_sized` entry.
    pub elig_slot: Vec<u32>,
    /// Target share per slot.
    pub slot_share: Vec<f64>,
    /// Per instance.
    pub protected: Vec<bool>,
    /// (class row, instance) → slot, for the engines' group candidates.
    slot_by: BTreeMap<(usize, u32), u32>,
}

impl ShareTables {
    pub(crate) fn new(
        plan: &Plan,
        models: &[PModel],
        insts: &[PInst],
        width: usize,
        elig_off: &[u32],
        elig: &[u32],
    ) -> Self {
        // The plan's routes: (model, batch, profile) → fraction of the class.
        let mut route: BTreeMap<(usize, u32, &str), f64> = BTreeMap::new();
        let mut routed: BTreeSet<(usize, u32)> = BTreeSet::new();
        for r in &plan.routes {
            if let Some(m) = models.iter().position(|m| m.name == r.model.as_str()) {
                if r.fraction.is_finite() && r.fraction > 0.0 {
                    *route.entry((m, r.batch, r.profile.as_str())).or_default() += r.fraction;
                    routed.insert((m, r.batch));
                }
            }
        }
        let protected = protected_sizes(models, insts, width, elig_off, elig);
        let mut t = Self {
            elig_sized: Vec::with_capacity(elig.len()),
            elig_slot: Vec::with_capacity(elig.len()),
            slot_share: Vec::new(),
            protected,
            slot_by: BTreeMap::new(),
        };
        for row in 0..elig_off.len().saturating_sub(1) {
            let (m, b) = (row / width, (row % width) as u32);
            let mut list = elig[elig_off[row] as usize..elig_off[row + 1] as usize].to_vec();
            list.sort_by_key(|&i| (insts[i as usize].compute, i));
            // One slot per profile of the class, in order of first appearance.
            let mut slots: Vec<(&str, u32, u32)> = Vec::new(); // (profile, slot, instances)
            for &i in &list {
                let p = insts[i as usize].profile.as_str();
                let s = match slots.iter_mut().find(|s| s.0 == p) {
                    Some(s) => {
                        s.2 += 1;
                        s.1
                    }
                    None => {
                        let s = (t.slot_share.len() + slots.len()) as u32;
                        slots.push((p, s, 1));
                        s
                    }
                };
                t.slot_by.insert((row, i), s);
                t.elig_sized.push(i);
                t.elig_slot.push(s);
            }
            // Routed classes take the plan's fractions; others (no route: a min-gpus plan, a
            // hand-cut plan, a batch only a trace carries) the sizes' compute in proportion.
            let weight = |p: &str, n: u32| -> f64 {
                if routed.contains(&(m, b)) {
                    route.get(&(m, b, p)).copied().unwrap_or(0.0)
                } else {
                    let c = list
                        .iter()
                        .find(|&&i| insts[i as usize].profile == p)
                        .map(|&i| insts[i as usize].compute)
                        .unwrap_or(1);
                    (n * c) as f64
                }
            };
            let total: f64 = slots.iter().map(|s| weight(s.0, s.2)).sum();
            for s in &slots {
                let w = weight(s.0, s.2);
                t.slot_share.push(if total > 0.0 { w / total } else { 0.0 });
            }
        }
        t
    }

    /// The share slot of an eligible instance for a class row.
    pub(crate) fn slot_of(&self, row: usize, inst: u32) -> u32 {
        self.slot_by.get(&(row, inst)).copied().unwrap_or(0)
    }
}

/// A size is protected for a model when some batch class of the model may run on that size
/// alone while the model has other sizes.
fn protected_sizes(
    models: &[PModel],
    insts: &[PInst],
    width: usize,
    elig_off: &[u32],
    elig: &[u32],
) -> Vec<bool> {
    let mut sizes: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); models.len()];
    for x in insts {
        sizes[x.model as usize].insert(x.profile.as_str());
    }
    let mut only: BTreeSet<(usize, &str)> = BTreeSet::new();
    for row in 0..elig_off.len().saturating_sub(1) {
        let m = row / width;
        let ps: BTreeSet<&str> = elig[elig_off[row] as usize..elig_off[row + 1] as usize]
            .iter()
            .map(|&i| insts[i as usize].profile.as_str())
            .collect();
        if ps.len() == 1 && sizes[m].len() > 1 {
            only.extend(ps.into_iter().map(|p| (m, p)));
        }
    }
    insts
        .iter()
        .map(|x| only.contains(&(x.model as usize, x.profile.as_str())))
        .collect()
}
