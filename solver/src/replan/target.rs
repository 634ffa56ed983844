//! The target from a solved re-plan model: every GPU's layout and fate, the target as a
//! validated plan, and the re-plan assembled from its parts.

use super::current::Current;
use super::cuts::Cuts;
use super::{Fate, GpuChange, Replan, Tier, Transition};
use crate::data::RateData;
use crate::milp::Outcome;
use crate::pack::assign;
use crate::PlanOptions;
use migopt_models::{
    Assignment, Error, GpuPlan, ModelRate, Objective, Plan, Scenario, SolveReport, SolveStatus,
};
use std::collections::BTreeMap;

/// A target's GPUs, and what happens to every GPU used before or after.
pub(super) type Fates = (Vec<GpuPlan>, Vec<GpuChange>);

/// The parts of a solved re-plan model the target is read from.
pub(super) struct Solved<'a> {
    /// The model's kept GPUs, new instances and new cuts.
    pub cuts: &'a Cuts,
    /// The solution.
    pub out: &'a Outcome,
}

/// The target's GPUs (indices of the current plan, added ones after them) and the fate of
/// every GPU used before or after. `point(m, k)`: (batch, procs) of model m on size k.
pub(super) fn target(
    sizes: &crate::data::Sizes,
    names: &[String],
    point: &dyn Fn(usize, usize) -> (u32, u32),
    cur: &Current,
    current: &Plan,
    s: &Solved<'_>,
) -> Fates {
    let before: BTreeMap<u32, Vec<Assignment>> = current
        .gpus
        .iter()
        .map(|g| (g.index, g.layout.clone()))
        .collect();
    let after = after_layouts(sizes, names, point, cur, &before, s);
    let top = after.keys().max().map_or(0, |&m| m + 1);
    let gpus = (0..top)
        .map(|i| GpuPlan {
            index: i,
            layout: after.get(&i).cloned().unwrap_or_default(),
        })
        .collect();
    (gpus, fates(&before, &after))
}

/// Every GPU's layout in the target: the kept GPUs of each type (at the new scenario's best
/// points), then the new cuts on the freed GPUs and the current plan's idle ones, in index
/// order, and on new indices.
fn after_layouts(
    sizes: &crate::data::Sizes,
    names: &[String],
    point: &dyn Fn(usize, usize) -> (u32, u32),
    cur: &Current,
    before: &BTreeMap<u32, Vec<Assignment>>,
    s: &Solved<'_>,
) -> BTreeMap<u32, Vec<Assignment>> {
    let mut after: BTreeMap<u32, Vec<Assignment>> = BTreeMap::new();
    let mut free: Vec<u32> = Vec::new();
    for ((_, gpus, _), &v) in cur.types.iter().zip(&s.cuts.keep) {
        let k = (s.out.int(v) as usize).min(gpus.len());
        for &g in &gpus[..k] {
            let mut layout = before[&g].clone();
            for a in &mut layout {
                if let (Some(ki), Some(mi)) = (
                    sizes.index(a.profile.as_str()),
                    names.iter().position(|x| x.as_str() == a.model.as_str()),
                ) {
                    (a.batch, a.procs) = point(mi, ki);
                }
            }
            after.insert(g, layout);
        }
        free.extend_from_slice(&gpus[k..]);
    }
    // The current plan's idle GPUs (a max-load server's unused ones, a re-plan's dropped
    // ones) take new cuts before any new index does.
    free.extend((0..cur.slots).filter(|i| before.get(i).is_none_or(|l| l.is_empty())));
    // GPUs serving a model the new scenario dropped, or a model on a size its new profile
    // no longer measures, are re-cut in place.
    free.extend_from_slice(&cur.retired);
    free.sort_unstable();
    let per_gpu = s.cuts.supply.decode(sizes, s.out);
    let counts = s.out.counts(&s.cuts.new);
    let new = assign(sizes, &per_gpu, &counts, names, &|_| None, point);
    let mut next = cur.slots;
    let mut free_iter = free.iter();
    for g in new.into_iter().filter(|g| !g.layout.is_empty()) {
        let idx = match free_iter.next() {
            Some(&i) => i,
            None => {
                next += 1;
                next - 1
            }
        };
        after.insert(idx, g.layout);
    }
    after
}

/// The fate of every GPU used before or after.
fn fates(
    before: &BTreeMap<u32, Vec<Assignment>>,
    after: &BTreeMap<u32, Vec<Assignment>>,
) -> Vec<GpuChange> {
    let all: std::collections::BTreeSet<u32> = before
        .iter()
        .filter(|(_, l)| !l.is_empty())
        .map(|(&i, _)| i)
        .chain(after.keys().copied())
        .collect();
    let mut changes = Vec::new();
    for g in all {
        let b = before.get(&g).cloned().unwrap_or_default();
        let a = after.get(&g).cloned().unwrap_or_default();
        let fate = match (b.is_empty(), a.is_empty()) {
            (false, false) if layout_key(&b) == layout_key(&a) => Fate::Kept,
            (false, false) => Fate::ReCut,
            (true, false) => Fate::Added,
            (false, true) => Fate::Freed,
            (true, true) => continue,
        };
        changes.push(GpuChange {
            gpu: g,
            fate,
            before: b,
            after: a,
        });
    }
    changes
}

/// A GPU's configuration as a comparable key: its instances as (profile, start, model),
/// sorted. Two GPUs with the same key need no re-cut to swap roles.
pub fn layout_key(layout: &[Assignment]) -> Vec<(String, u32, String)> {
    let mut v: Vec<(String, u32, String)> = layout
        .iter()
        .map(|x| (x.profile.to_string(), x.start, x.model.to_string()))
        .collect();
    v.sort();
    v
}

/// Requests/s each model gets from a GPU's instances under the new scenario.
fn capacity(d: &RateData, layout: &[Assignment]) -> Vec<f64> {
    let mut cap = vec![0.0; d.models.len()];
    for a in layout {
        if let (Some(k), Some(m)) = (
            d.sizes.index(a.profile.as_str()),
            d.models.iter().position(|x| x.name == a.model.as_str()),
        ) {
            cap[m] += d.throughput(m, k);
        }
    }
    cap
}

/// The target as a validated plan: its GPUs, the capacity they provision, the from-scratch
/// optimum's bound.
pub(super) fn target_plan(
    d: &RateData,
    scenario: &Scenario,
    popts: &PlanOptions,
    gpus: Vec<GpuPlan>,
    status: SolveStatus,
    scratch: &SolveReport,
    seconds: f64,
) -> Result<Plan, Error> {
    let used = gpus.iter().filter(|g| !g.layout.is_empty()).count();
    let caps: Vec<Vec<f64>> = gpus.iter().map(|g| capacity(d, &g.layout)).collect();
    let model_rates = d
        .models
        .iter()
        .enumerate()
        .map(|(mi, m)| ModelRate {
            model: m.name.as_str().into(),
            rate_qps: caps.iter().map(|c| c[mi]).sum(),
        })
        .collect();
    let mut plan = Plan {
        scenario: scenario.name.clone(),
        scenario_path: None,
        gpu: scenario.gpu.clone(),
        objective_kind: Objective::MinGpus,
        solver: "milp-replan".into(),
        report: SolveReport {
            status,
            objective: used as f64,
            bound: scratch.bound,
            gap: scratch.gap,
            lp_bound: scratch.lp_bound,
            solve_seconds: seconds,
            gpcs_used: None,
        },
        params: popts.params,
        gpus,
        routes: Vec::new(),
        model_rates,
    };
    plan.report.gpcs_used = Some(plan.gpcs_used()?);
    plan.validate(popts.rules).map_err(|e| {
        Error::Internal(format!(
            "re-planner produced a plan the MIG validator rejects ({e}); please report this"
        ))
    })?;
    Ok(plan)
}

/// The re-plan from its parts, with the counts of GPUs changed and instances started.
pub(super) fn assemble(
    plan: Plan,
    changes: Vec<GpuChange>,
    tiers: Vec<Tier>,
    status: SolveStatus,
    transition: Transition,
) -> Replan {
    let changed = changes
        .iter()
        .filter(|c| matches!(c.fate, Fate::ReCut | Fate::Added));
    let (gpus_changed, instances_started) =
        changed.fold((0, 0), |(g, i), c| (g + 1, i + c.after.len() as u32));
    Replan {
        gpus_used: plan.gpus_used() as u32,
        gpus_changed,
        instances_started,
        target: plan,
        gpus: changes,
        tiers,
        status,
        transition,
    }
}

/// The GPUs a max-load re-plan fills: the scenario's `gpu.count`, whatever the current
/// plan's slots (a min-gpus plan lists fewer or more, a re-plan that swapped onto a spare
/// one more): the target uses at most that many, on the current plan's indices first.
pub(super) fn server_gpus(scenario: &migopt_models::Scenario) -> u32 {
    scenario.gpu_count.max(1)
}

/// Pads a max-load target with idle GPUs up to the server's `gpus` (its plan lists every
/// GPU of the server, as `plan --objective max-load` does, so that `simulate` and the next
/// `replan` read it against the scenario's `gpu.count`).
pub(super) fn pad_to(gpus: &mut Vec<GpuPlan>, count: u32) {
    let next = gpus.iter().map(|g| g.index + 1).max().unwrap_or(0);
    gpus.extend((next..count).map(|index| GpuPlan {
        index,
        layout: Vec::new(),
    }));
}
