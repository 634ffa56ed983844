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

/// The safe transition to the target (its GPUs and every GPU's fate) with the spare GPUs
/// given, and the target's GPUs and fates after the spare swaps the transition makes.
fn transition_to(
    cap: &dyn transition::Capacity,
    names: &[String],
    slots: u32,
    (gpus, changes): Fates,
    required: &[f64],
    spare_gpus: u32,
) -> Result<(Fates, Transition), Error> {
    let t = safe_transition(cap, names, slots, &changes, required, spare_gpus)?;
    Ok((apply_swaps(gpus, changes, &t.swaps), t))
}

/// The safe transition to the target with the spare GPUs given; when there is none, the
/// error says how many spares one takes.
fn safe_transition(
    cap: &dyn transition::Capacity,
    names: &[String],
    slots: u32,
    changes: &[GpuChange],
    required: &[f64],
    spare_gpus: u32,
) -> Result<Transition, Error> {
    let first_spare = changes
        .iter()
        .map(|c| c.gpu + 1)
        .max()
        .unwrap_or(0)
        .max(slots);
    let plan_with = |k: u32| transition::plan(changes, cap, required, names, k, first_spare);
    match plan_with(spare_gpus) {
        Err(Error::Infeasible(why)) => {
            // With a spare per changed GPU a transition always exists (every new layout up
            // on a spare first, then every old GPU drained): say how many it takes.
            let most = changes.iter().filter(|c| c.fate != Fate::Kept).count() as u32;
            let need = plan_with(most.max(spare_gpus))
                .map(|t| t.spares_used.len())
                .map_err(|_| Error::Infeasible(why.clone()))?;
            Err(Error::Infeasible(format!(
                "{why}; a safe transition to this target needs {need} spare GPU(s) (--spare-gpus {need})"
            )))
        }
        r => r,
    }
}

/// Moves each swapped GPU's new layout to the idle GPU that took it: (g, s) leaves g idle
/// (freed) and s in use (added).
fn apply_swaps(mut gpus: Vec<GpuPlan>, mut changes: Vec<GpuChange>, swaps: &[(u32, u32)]) -> Fates {
    for &(g, s) in swaps {
        let layout = changes
            .iter()
            .find(|c| c.gpu == g)
            .map(|c| c.after.clone())
            .unwrap_or_default();
        let top = gpus.len().max(s as usize + 1);
        while gpus.len() < top {
            let index = gpus.len() as u32;
            gpus.push(GpuPlan {
                index,
                layout: Vec::new(),
            });
        }
        gpus[s as usize].layout = layout.clone();
        if let Some(x) = gpus.get_mut(g as usize) {
            x.layout.clear();
        }
        // Either GPU may already have a record (s: drained earlier by this transition).
        if let Some(c) = changes.iter_mut().find(|c| c.gpu == g) {
            c.after.clear();
            c.fate = if c.before.is_empty() {
                Fate::Kept
            } else {
                Fate::Freed
            };
        }
        match changes.iter_mut().find(|c| c.gpu == s) {
            Some(c) => {
                c.after = layout;
                c.fate = if c.before.is_empty() {
                    Fate::Added
                } else {
                    Fate::ReCut
                };
            }
            None => changes.push(GpuChange {
                gpu: s,
                fate: Fate::Added,
                before: Vec::new(),
                after: layout,
            }),
        }
    }
    changes.retain(|c| !(c.before.is_empty() && c.after.is_empty()));
    changes.sort_by_key(|c| c.gpu);
    (gpus, changes)
}
