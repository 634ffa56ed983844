//! From a transition in counts ([`super::exact`]) to GPUs: which GPU each layout comes down
//! from and goes up on, step by step. A new layout goes up on its own GPU where it can (the
//! GPU is drained in the same step, or idle), else on a GPU drained in that step or idle
//! (one whose own new layout is not still to come first), and on a spare GPU only when no
//! GPU of the plan is free; every choice is by GPU index, so the result is deterministic.

use super::exact::CountStep;
use super::transition::StepGpu;
use super::{Fate, GpuChange};
use migopt_models::Error;
use std::collections::BTreeMap;

/// The changes in each class of the search.
pub(super) struct Members {
    /// Per old class, the changes (indices into the changes) whose current layout is in it.
    pub olds: Vec<Vec<usize>>,
    /// Per new class, the changes whose target layout is in it.
    pub news: Vec<Vec<usize>>,
}

/// The steps on GPUs, the spare GPUs taken, and where each moved layout went: (g, s) says
/// that GPU g's target layout is on GPU s.
pub(super) struct Placed {
    pub steps: Vec<Vec<StepGpu>>,
    pub spares_used: Vec<u32>,
    pub swaps: Vec<(u32, u32)>,
}

/// The GPUs as the transition goes.
struct Gpus<'a> {
    changes: &'a [GpuChange],
    /// Changes whose old layout is still up, per old class (by GPU).
    up: Vec<Vec<usize>>,
    /// Changes whose new layout is not up yet, per new class (by GPU).
    pending: Vec<Vec<usize>>,
    /// Idle GPUs of the plan (added ones not yet used, drained ones) and spares not taken.
    idle: Vec<u32>,
    spares: Vec<u32>,
    /// Where each change's new layout went.
    host: Vec<Option<u32>>,
    /// The change of each GPU of the plan.
    by_gpu: BTreeMap<u32, usize>,
}

/// Places `steps` on GPUs: `spares` spare GPUs from index `first_spare` on.
pub(super) fn place(
    changes: &[GpuChange],
    members: &Members,
    steps: &[CountStep],
    spares: u32,
    first_spare: u32,
) -> Result<Placed, Error> {
    let mut g = Gpus {
        changes,
        up: members.olds.clone(),
        pending: members.news.clone(),
        idle: changes
            .iter()
            .filter(|c| c.fate == Fate::Added)
            .map(|c| c.gpu)
            .collect(),
        spares: (first_spare..first_spare + spares).collect(),
        host: vec![None; changes.len()],
        by_gpu: changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.gpu, i))
            .collect(),
    };
    let placed = steps
        .iter()
        .map(|s| g.step(s))
        .collect::<Result<Vec<_>, _>>()?;
    let spare_range = first_spare..first_spare + spares;
    let mut spares_used: Vec<u32> = g
        .host
        .iter()
        .flatten()
        .copied()
        .filter(|h| spare_range.contains(h))
        .collect();
    spares_used.sort_unstable();
    let swaps = g
        .host
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            h.filter(|&h| h != changes[i].gpu)
                .map(|h| (changes[i].gpu, h))
        })
        .collect();
    Ok(Placed {
        steps: placed,
        spares_used,
        swaps,
    })
}

/// Takes the `n` first of `from` by `key` out of it.
fn take_first(from: &mut Vec<usize>, n: u32, key: impl Fn(usize) -> (u8, u32)) -> Vec<usize> {
    from.sort_by_key(|&i| key(i));
    let rest = from.split_off(usize::try_from(n).unwrap_or(usize::MAX).min(from.len()));
    std::mem::replace(from, rest)
}

impl Gpus<'_> {
    /// Whether change `i`'s new layout is still to come up (after `now`).
    fn still_to_come(&self, i: usize, now: &[usize]) -> bool {
        !self.changes[i].after.is_empty() && self.host[i].is_none() && !now.contains(&i)
    }

    /// One step: the changes whose old layouts go down, the new layouts that go up and where.
    fn step(&mut self, step: &CountStep) -> Result<Vec<StepGpu>, Error> {
        let ups_now: Vec<usize> = (0..step.up.len())
            .filter(|&c| step.up[c] > 0)
            .flat_map(|c| self.pending[c].clone())
            .collect();
        let mut downed = Vec::new();
        for (c, &d) in step.down.iter().enumerate() {
            let mut up = std::mem::take(&mut self.up[c]);
            let key = |i: usize| {
                let rank = if ups_now.contains(&i) {
                    0
                } else if self.still_to_come(i, &[]) {
                    2
                } else {
                    1
                };
                (rank, self.changes[i].gpu)
            };
            downed.extend(take_first(&mut up, d, key));
            self.up[c] = up;
        }
        let down_gpus: Vec<u32> = downed.iter().map(|&i| self.changes[i].gpu).collect();
        let mut ups = Vec::new();
        for (c, &u) in step.up.iter().enumerate() {
            let mut pend = std::mem::take(&mut self.pending[c]);
            let key = |i: usize| {
                let gpu = self.changes[i].gpu;
                let rank = if down_gpus.contains(&gpu) {
                    0
                } else if self.idle.contains(&gpu) {
                    1
                } else {
                    2
                };
                (rank, gpu)
            };
            ups.extend(take_first(&mut pend, u, key));
            self.pending[c] = pend;
        }
        self.host_ups(&downed, &ups)
    }

    /// Hosts the new layouts `ups` on GPUs (drained ones: `downed`) and writes the step.
    fn host_ups(&mut self, downed: &[usize], ups: &[usize]) -> Result<Vec<StepGpu>, Error> {
        let mut free: Vec<u32> = downed.iter().map(|&i| self.changes[i].gpu).collect();
        let mut hosted: BTreeMap<u32, usize> = BTreeMap::new();
        let mut rest = Vec::new();
        for &i in ups {
            let gpu = self.changes[i].gpu;
            if let Some(p) = free.iter().position(|&x| x == gpu) {
                free.remove(p);
            } else if let Some(p) = self.idle.iter().position(|&x| x == gpu) {
                self.idle.remove(p);
            } else {
                rest.push(i);
                continue;
            }
            hosted.insert(gpu, i);
        }
        for &i in &rest {
            let gpu = self.free_gpu(&mut free, ups).ok_or_else(|| {
                Error::Internal("transition: a step brings up more layouts than it has GPUs for; please report this".into())
            })?;
            hosted.insert(gpu, i);
        }
        for (&gpu, &i) in &hosted {
            self.host[i] = Some(gpu);
        }
        self.idle.extend(free);
        Ok(self.write(downed, &hosted))
    }

    /// A GPU for a layout that cannot go on its own: drained in this step (`free`) or idle,
    /// one whose own new layout is not still to come first, lowest index first; else a spare.
    fn free_gpu(&mut self, free: &mut Vec<u32>, ups: &[usize]) -> Option<u32> {
        let waits =
            |g: &Gpus<'_>, gpu: u32| g.by_gpu.get(&gpu).is_some_and(|&i| g.still_to_come(i, ups));
        let pick = |g: &Gpus<'_>, from: &[u32]| {
            (0..from.len()).min_by_key(|&p| (waits(g, from[p]), from[p]))
        };
        if let Some(p) = pick(self, free) {
            return Some(free.remove(p));
        }
        if let Some(p) = pick(self, &self.idle) {
            return Some(self.idle.remove(p));
        }
        // The search counted the GPUs: a spare is free when no GPU of the plan is.
        (!self.spares.is_empty()).then(|| self.spares.remove(0))
    }

    /// The step's GPUs: those drained (with what they host, if anything) and those cut from
    /// idle.
    fn write(&self, downed: &[usize], hosted: &BTreeMap<u32, usize>) -> Vec<StepGpu> {
        let mut out: Vec<StepGpu> = Vec::new();
        let own = |gpu: u32, i: usize| self.changes[i].gpu == gpu;
        for &i in downed {
            let gpu = self.changes[i].gpu;
            let kind = match hosted.get(&gpu) {
                Some(&j) if own(gpu, j) => "re-cut",
                Some(_) => "swap in",
                None if self.changes[i].after.is_empty() => "free",
                None if self.host[i].is_some() => "swap out",
                None => "drain",
            };
            let layout = hosted
                .get(&gpu)
                .map(|&j| self.changes[j].after.clone())
                .unwrap_or_default();
            out.push(StepGpu {
                gpu,
                kind: kind.into(),
                layout,
            });
        }
        for (&gpu, &j) in hosted {
            if out.iter().any(|s| s.gpu == gpu) {
                continue;
            }
            let kind = match self.changes[j].fate {
                _ if !own(gpu, j) => "swap in",
                Fate::Added => "add",
                _ => "re-cut",
            };
            out.push(StepGpu {
                gpu,
                kind: kind.into(),
                layout: self.changes[j].after.clone(),
            });
        }
        out.sort_by_key(|s| s.gpu);
        out
    }
}
