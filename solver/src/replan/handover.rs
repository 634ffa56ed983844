//! From a target to its safe transition: the capacity each model keeps, the instance counts
//! the capacity measures read, the transition with the spare GPUs given (or how many it
//! takes), and the target after the spare swaps it makes.

use super::target::Fates;
use super::{transition, Fate, GpuChange, ReplanOptions, Transition};
use migopt_models::{Assignment, Error, GpuPlan, Plan};

/// The safe transition to a target, every re-plan's (min-gpus and max-load, rate and SLA
/// models): each model keeps its [`required`] capacity under `cap` during every step, with the
/// spare GPUs of `opts`; the target's GPUs and fates after the spare swaps it makes, and the
/// transition. `target_rate(m)` is model m's rate in the target (`names` order).
pub(super) fn hand_over(
    cap: &dyn transition::Capacity,
    names: &[String],
    current: &Plan,
    slots: u32,
    target: Fates,
    opts: &ReplanOptions,
    target_rate: impl Fn(usize) -> f64,
) -> Result<(Fates, Transition), Error> {
    let need = required(cap, names, current, opts, target_rate);
    transition_to(cap, names, slots, target, &need, opts.spare_gpus)
}

/// The capacity each model keeps during the transition: the options', else min(the current
/// plan's provisioned rate, its rate in the target); never more than the current plan's GPUs
/// give it under `cap`. No transition can keep more than there is before its first step:
/// when the old rates claim more (an old scenario file edited since the plan was made, for
/// instance in place to the new rates), min(old, new) would be out of reach from the start,
/// and every transition would be refused.
fn required(
    cap: &dyn transition::Capacity,
    names: &[String],
    current: &Plan,
    opts: &ReplanOptions,
    target_rate: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let want: Vec<f64> = match &opts.required {
        Some(r) => r.clone(),
        None => names
            .iter()
            .enumerate()
            .map(|(m, name)| {
                let old = current
                    .model_rates
                    .iter()
                    .find(|r| r.model.as_str() == name.as_str())
                    .map_or(0.0, |r| r.rate_qps);
                old.min(target_rate(m))
            })
            .collect(),
    };
    let mut now: Vec<u32> = Vec::new();
    for g in &current.gpus {
        let c = cap.count(&g.layout);
        now.resize(now.len().max(c.len()), 0);
        for (a, b) in now.iter_mut().zip(c) {
            *a += b;
        }
    }
    want.iter()
        .zip(cap.of(&now))
        .map(|(w, have)| w.min(have))
        .collect()
}

/// A layout's instances per (model, size), flattened model-major (instances of models or
/// sizes outside the scenario are not counted).
pub(super) fn count_instances(
    sizes: &crate::data::Sizes,
    names: &[String],
    layout: &[Assignment],
) -> Vec<u32> {
    let k = sizes.profiles.len();
    let mut c = vec![0u32; names.len() * k];
    for a in layout {
        if let (Some(j), Some(m)) = (
            sizes.index(a.profile.as_str()),
            names.iter().position(|x| x.as_str() == a.model.as_str()),
        ) {
            c[m * k + j] += 1;
        }
    }
    c
}

/// The safe transition to the target (its GPUs and every GPU's fate) with the fewest spare
/// GPUs (at most those given), then the fewest steps (see [`transition::plan`]; when there
/// is none, its error says how many spares one takes, and whether that is proven the
/// fewest), and the target's GPUs and fates after the swaps the transition makes.
fn transition_to(
    cap: &dyn transition::Capacity,
    names: &[String],
    slots: u32,
    (gpus, changes): Fates,
    required: &[f64],
    spare_gpus: u32,
) -> Result<(Fates, Transition), Error> {
    let t = transition::plan(&changes, cap, required, names, spare_gpus, slots)?;
    Ok((apply_swaps(gpus, changes, &t.swaps), t))
}

/// Moves each swapped GPU's new layout to the GPU that took it: (g, s) puts g's target
/// layout on s, all swaps at once (s may itself be a g of another swap). A GPU left without
/// a layout is freed (or dropped, if it had none before), one given another's is re-cut (or
/// added, if it had none before).
fn apply_swaps(mut gpus: Vec<GpuPlan>, mut changes: Vec<GpuChange>, swaps: &[(u32, u32)]) -> Fates {
    let moved: Vec<(u32, u32, Vec<Assignment>)> = swaps
        .iter()
        .map(|&(g, s)| {
            let layout = changes
                .iter()
                .find(|c| c.gpu == g)
                .map(|c| c.after.clone())
                .unwrap_or_default();
            (g, s, layout)
        })
        .collect();
    let top = moved
        .iter()
        .map(|m| m.1 as usize + 1)
        .max()
        .unwrap_or(0)
        .max(gpus.len());
    while gpus.len() < top {
        let index = gpus.len() as u32;
        gpus.push(GpuPlan {
            index,
            layout: Vec::new(),
        });
    }
    for (g, _, _) in &moved {
        if let Some(x) = gpus.get_mut(*g as usize) {
            x.layout.clear();
        }
        if let Some(c) = changes.iter_mut().find(|c| c.gpu == *g) {
            c.after.clear();
        }
    }
    for (_, s, layout) in moved {
        gpus[s as usize].layout = layout.clone();
        match changes.iter_mut().find(|c| c.gpu == s) {
            Some(c) => c.after = layout,
            None => changes.push(GpuChange {
                gpu: s,
                fate: Fate::Added,
                before: Vec::new(),
                after: layout,
            }),
        }
    }
    for c in changes.iter_mut().filter(|c| c.fate != Fate::Kept) {
        c.fate = match (c.before.is_empty(), c.after.is_empty()) {
            (true, _) => Fate::Added,
            (false, true) => Fate::Freed,
            (false, false) => Fate::ReCut,
        };
    }
    changes.retain(|c| !(c.before.is_empty() && c.after.is_empty()));
    changes.sort_by_key(|c| c.gpu);
    (gpus, changes)
}
