//! What every re-plan model shares: the kept GPUs of each current type, the new instances
//! and the new cuts (the layout encoding of `supply`) that hold them, and a plan counted in
//! that encoding (for MIP starts).

use super::current::Current;
use crate::milp::{lin, Builder, Var};
use crate::supply;
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Assignment, Plan};

/// `keep[t] ∈ {0..c_t}`: the GPUs of each current type t that stay as they are.
pub(super) fn keep_vars(b: &mut Builder, cur: &Current) -> Vec<Var> {
    cur.types
        .iter()
        .enumerate()
        .map(|(t, (_, g, _))| b.int(format!("keep[{t}]"), g.len() as f64))
        .collect()
}

/// What every re-plan model holds beside its own capacity model: the kept GPUs of each
/// current type, the new instances per (model, size) and the new cuts that hold them.
pub(super) struct Cuts {
    /// keep[t]: GPUs of current type t that stay as they are.
    pub keep: Vec<Var>,
    /// new[m][k]: new instances of model m on size k (`None` where there can be none).
    pub new: Vec<Vec<Option<Var>>>,
    /// The new cuts y[ℓ].
    pub supply: supply::Supply,
}

impl Cuts {
    /// GPUs re-cut or added: Σ_ℓ y[ℓ].
    pub fn changed(&self) -> Expression {
        self.supply.gpus()
    }

    /// GPUs used: Σ_t keep[t] + Σ_ℓ y[ℓ].
    pub fn used(&self) -> Expression {
        lin(self.keep.iter().map(|&v| (1.0, v))) + self.supply.gpus()
    }

    /// Instances started: Σ_{m,k} new[m,k].
    pub fn started(&self) -> Expression {
        lin(self.new.iter().flatten().flatten().map(|&v| (1.0, v)))
    }
}

/// `supply  Σ_m new[m,k] ≤ Σ_ℓ c[ℓ,k]·y[ℓ]` by new cuts y, and `count  Σ_t keep[t] +
/// Σ_ℓ y[ℓ] ≤ gpus`: the model's [`Cuts`].
pub(super) fn new_cuts(
    b: &mut Builder,
    sizes: &crate::data::Sizes,
    keep: Vec<Var>,
    new: Vec<Vec<Option<Var>>>,
    gpus: u32,
) -> Cuts {
    let demand = crate::maxload::demand_by_size(&new, sizes.profiles.len());
    let supply = supply::layouts(b, sizes, &demand, gpus);
    let (kept, cut) = (lin(keep.iter().map(|&v| (1.0, v))), supply.gpus());
    b.push(constraint!(kept + cut <= gpus as f64));
    Cuts { keep, new, supply }
}

/// The first count pattern of the layout encoding that covers a GPU's instances (its
/// instances per size).
pub(super) fn first_pattern(sizes: &crate::data::Sizes, layout: &[Assignment]) -> Option<usize> {
    let mut c = vec![0u32; sizes.profiles.len()];
    for a in layout {
        if let Some(k) = sizes.index(a.profile.as_str()) {
            c[k] += 1;
        }
    }
    sizes
        .patterns
        .iter()
        .copied()
        .find(|&l| sizes.count[l].iter().zip(&c).all(|(a, b)| a >= b))
}

/// A plan as the layout encoding counts it: GPUs per maximal layout (each GPU under the
/// first count pattern that covers it) and instances per (model, size).
pub(super) fn plan_counts(
    sizes: &crate::data::Sizes,
    names: &[String],
    plan: &Plan,
) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut per_layout = vec![0u32; sizes.layouts.len()];
    let mut counts = vec![vec![0u32; sizes.profiles.len()]; names.len()];
    for g in &plan.gpus {
        for a in &g.layout {
            if let Some(k) = sizes.index(a.profile.as_str()) {
                if let Some(mi) = names.iter().position(|x| x.as_str() == a.model.as_str()) {
                    counts[mi][k] += 1;
                }
            }
        }
        if let Some(l) = first_pattern(sizes, &g.layout) {
            per_layout[l] += 1;
        }
    }
    (per_layout, counts)
}
