//! The two exact encodings of "which instances can the GPUs hold", shared by both
//! objectives. Both take the instance demand per size (an expression per size, Σ_m n[m,k])
//! and constrain it by what the GPUs offer.
//!
//! * Layouts (encoding A): an integer y[ℓ] counts the GPUs cut by maximal layout ℓ. Its
//!   size does not grow with the GPU count, so it scales to thousands of GPUs.
//! * Placements (encoding B): a binary z[g,k,s] says that GPU g holds an instance of size k
//!   at start s, with NVIDIA's placement rules written as constraints. It derives the
//!   valid layouts independently of the enumeration, which is what makes agreement between
//!   A and B a meaningful test, but it grows with the GPU count.

use crate::data::Sizes;
use crate::milp::{lin, Builder, Outcome, Var};
use crate::Encoding;
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::ProfileClass;

/// The supply side of a model, after it is built.
pub(crate) enum Supply {
    /// Encoding A: (layout index, y[ℓ]): GPUs per maximal layout, for the count patterns.
    Layouts { y: Vec<(usize, Var)> },
    /// Encoding B: per GPU its placement binaries (size, start, z) and, when GPUs may stay
    /// unused, the binary saying it is used.
    Placements {
        z: Vec<Vec<(usize, u32, Var)>>,
        used: Vec<Option<Var>>,
    },
}

impl Supply {
    /// GPUs in use, as an expression (for min-gpus' objective).
    pub fn gpus(&self) -> Expression {
        let (vars, fixed) = self.gpu_count();
        lin(vars.into_iter().map(|v| (1.0, v))) + fixed
    }

    /// GPUs in use as a sum: the columns that count them, and the GPUs always in use.
    pub fn gpu_count(&self) -> (Vec<Var>, f64) {
        match self {
            Supply::Layouts { y } => (y.iter().map(|&(_, v)| v).collect(), 0.0),
            Supply::Placements { used, .. } => (
                used.iter().flatten().copied().collect(),
                used.iter().filter(|u| u.is_none()).count() as f64,
            ),
        }
    }

    /// Writes a start into column values: `per_layout[ℓ]` GPUs cut by maximal layout ℓ
    /// (encoding B: the fullest GPUs first, as the symmetry constraints want; GPUs beyond
    /// the model's count are left out).
    pub fn set_start(&self, sizes: &Sizes, per_layout: &[u32], cols: &mut [f64]) {
        match self {
            Supply::Layouts { y } => {
                for &(l, v) in y {
                    cols[v.col] = per_layout.get(l).copied().unwrap_or(0) as f64;
                }
            }
            Supply::Placements { z, used } => {
                let mut gpus: Vec<usize> = per_layout
                    .iter()
                    .enumerate()
                    .flat_map(|(l, &c)| std::iter::repeat_n(l, c as usize))
                    .collect();
                let compute = |l: usize| -> u32 {
                    crate::pack::layout_slots(sizes, l)
                        .iter()
                        .map(|&(k, _)| sizes.profiles[k].compute)
                        .sum()
                };
                gpus.sort_by_key(|&l| std::cmp::Reverse(compute(l)));
                for (g, l) in gpus.into_iter().enumerate().take(z.len()) {
                    if let Some(u) = used[g] {
                        cols[u.col] = 1.0;
                    }
                    for (k, s) in crate::pack::layout_slots(sizes, l) {
                        if let Some(e) = z[g].iter().find(|e| e.0 == k && e.1 == s) {
                            cols[e.2.col] = 1.0;
                        }
                    }
                }
            }
        }
    }

    /// Per GPU, its instances as (size index, start), from a solution. Unused GPUs come out
    /// empty (encoding B) or are absent (encoding A).
    pub fn decode(&self, sizes: &Sizes, out: &Outcome) -> Vec<Vec<(usize, u32)>> {
        match self {
            Supply::Layouts { y } => {
                let mut gpus = Vec::new();
                for &(l, v) in y {
                    for _ in 0..out.int(v) {
                        gpus.push(crate::pack::layout_slots(sizes, l));
                    }
                }
                gpus
            }
            Supply::Placements { z, .. } => z
                .iter()
                .map(|g| {
                    g.iter()
                        .filter(|(_, _, v)| out.val(*v) > 0.5)
                        .map(|&(k, s, _)| (k, s))
                        .collect()
                })
                .collect(),
        }
    }
}

/// The supply side in the encoding the options name, on at most `gpus` GPUs (encoding B:
/// each of them may stay unused when `optional`; encoding A always lets them).
pub(crate) fn build(
    encoding: Encoding,
    b: &mut Builder,
    sizes: &Sizes,
    demand: &[Expression],
    gpus: u32,
    optional: bool,
) -> Supply {
    match encoding {
        Encoding::Layouts => layouts(b, sizes, demand, gpus),
        Encoding::Placements => placements(b, sizes, demand, gpus, optional),
    }
}

/// Encoding A, GPUs cut by maximal layouts:
///
/// ```text
///   supply    Σ_m n[m,k] ≤ Σ_ℓ c[ℓ,k]·y[ℓ]      ∀ k   (instances of a layout may stay unused)
///   gpus      Σ_ℓ y[ℓ] ≤ N
///   y[ℓ] ∈ ℤ≥0, one per count pattern (see `Sizes::patterns`)
/// ```
pub(crate) fn layouts(
    b: &mut Builder,
    sizes: &Sizes,
    demand: &[Expression],
    max_gpus: u32,
) -> Supply {
    let y: Vec<(usize, Var)> = sizes
        .patterns
        .iter()
        .map(|&l| (l, b.int(format!("y[{l}]"), max_gpus as f64)))
        .collect();
    supply_by_layouts(b, sizes, demand, &y);
    gpu_limit(b, &y, max_gpus);
    Supply::Layouts { y }
}

fn supply_by_layouts(b: &mut Builder, sizes: &Sizes, demand: &[Expression], y: &[(usize, Var)]) {
    for (k, need) in demand.iter().enumerate() {
        let offer = lin(y.iter().map(|&(l, v)| (sizes.count[l][k] as f64, v)));
        b.push(constraint!(need.clone() <= offer));
    }
}

fn gpu_limit(b: &mut Builder, y: &[(usize, Var)], max_gpus: u32) {
    let gpus = lin(y.iter().map(|&(_, v)| (1.0, v)));
    b.push(constraint!(gpus <= max_gpus as f64));
}

/// Encoding B, explicit placements on `gpus` GPUs (each may stay unused when `optional`):
///
/// ```text
///   supply    Σ_m n[m,k] ≤ Σ_g Σ_s z[g,k,s]                         ∀ k
///   slots     Σ_{(k,s) covers slot t} z[g,k,s] ≤ u[g]               ∀ g, t
///   compute   Σ_{k,s} compute_k·z[g,k,s] ≤ C·u[g]                   ∀ g
///   max count Σ_s z[g,k,s] ≤ max_count_k      (where it binds)      ∀ g, k
///   media     Σ_{k media} Σ_s z[g,k,s] ≤ 1                          ∀ g
///   pre-R510  z[g,a,s] + z[g,b,t] ≤ 1        (forbidden pairs a, b) ∀ g, s, t
///   symmetry  Σ compute·z[g,·] ≥ Σ compute·z[g+1,·],  u[g] ≥ u[g+1]  ∀ g
///   z, u ∈ {0,1}   (u[g] = 1 when GPUs are not optional)
/// ```
pub(crate) fn placements(
    b: &mut Builder,
    sizes: &Sizes,
    demand: &[Expression],
    gpus: u32,
    optional: bool,
) -> Supply {
    let mut z = Vec::new();
    let mut used = Vec::new();
    for g in 0..gpus {
        let u = optional.then(|| b.bin(format!("u[{g}]")));
        let zg: Vec<(usize, u32, Var)> = sizes
            .profiles
            .iter()
            .enumerate()
            .flat_map(|(k, p)| p.starts.iter().map(move |&s| (k, s)))
            .map(|(k, s)| (k, s, b.bin(format!("z[{g},{k},{s}]"))))
            .collect();
        z.push(zg);
        used.push(u);
    }
    placement_supply(b, &z, demand);
    for g in 0..gpus as usize {
        placement_rules(b, sizes, &z[g], used[g]);
    }
    placement_symmetry(b, sizes, &z, &used);
    Supply::Placements { z, used }
}

fn placement_supply(b: &mut Builder, z: &[Vec<(usize, u32, Var)>], demand: &[Expression]) {
    for (k, need) in demand.iter().enumerate() {
        let offer = lin(z.iter().flatten().filter(|e| e.0 == k).map(|e| (1.0, e.2)));
        b.push(constraint!(need.clone() <= offer));
    }
}

/// Right-hand side `c·u[g]`, or `c` for a GPU that is always there.
fn scaled(c: f64, u: Option<Var>) -> Expression {
    match u {
        Some(u) => lin([(c, u)]),
        None => Expression::from(c),
    }
}

/// One GPU's placement rules: one function per constraint family below.
fn placement_rules(b: &mut Builder, sizes: &Sizes, zg: &[(usize, u32, Var)], u: Option<Var>) {
    slots(b, sizes, zg, u);
    compute(b, sizes, zg, u);
    max_count(b, sizes, zg);
    media(b, sizes, zg);
    pre_r510(b, sizes, zg);
}

/// `slots  Σ_{(k,s) covers slot t} z[g,k,s] ≤ u[g]   ∀ t`: no two instances share a memory
/// slot, and an unused GPU holds nothing.
fn slots(b: &mut Builder, sizes: &Sizes, zg: &[(usize, u32, Var)], u: Option<Var>) {
    for t in 0..sizes.gpu.memory_slots {
        let covering = zg
            .iter()
            .filter(|&&(k, s, _)| s <= t && t < s + sizes.profiles[k].slots);
        let taken = lin(covering.map(|e| (1.0, e.2)));
        b.push(constraint!(taken <= scaled(1.0, u)));
    }
}

/// `compute  Σ_{k,s} compute_k·z[g,k,s] ≤ C·u[g]`: within the GPU's compute slices (implied
/// by the slots on NVIDIA's GPUs, kept because the validator checks it independently).
fn compute(b: &mut Builder, sizes: &Sizes, zg: &[(usize, u32, Var)], u: Option<Var>) {
    let used = lin(zg
        .iter()
        .map(|&(k, _, v)| (sizes.profiles[k].compute as f64, v)));
    b.push(constraint!(
        used <= scaled(sizes.gpu.compute_slices as f64, u)
    ));
}

/// `max count  Σ_s z[g,k,s] ≤ max_count_k`, only where the placements alone would allow
/// more (the `+me` profile: one per GPU, seven starts).
fn max_count(b: &mut Builder, sizes: &Sizes, zg: &[(usize, u32, Var)]) {
    for (k, p) in sizes.profiles.iter().enumerate() {
        if (p.max_count as usize) < p.starts.len() {
            let held = lin(zg.iter().filter(|e| e.0 == k).map(|e| (1.0, e.2)));
            b.push(constraint!(held <= p.max_count as f64));
        }
    }
}

/// `media  Σ_{k media} Σ_s z[g,k,s] ≤ 1`: one media-engine instance per GPU, whichever
/// media profile it is.
fn media(b: &mut Builder, sizes: &Sizes, zg: &[(usize, u32, Var)]) {
    let media: Vec<_> = zg
        .iter()
        .filter(|e| sizes.profiles[e.0].class == ProfileClass::Media)
        .collect();
    if media.len() > 1 {
        let held = lin(media.iter().map(|e| (1.0, e.2)));
        b.push(constraint!(held <= 1.0));
    }
}

/// `pre-R510  z[g,a,s] + z[g,b,t] ≤ 1` for the pairs older drivers refuse side by side, when
/// the rules ask for them.
fn pre_r510(b: &mut Builder, sizes: &Sizes, zg: &[(usize, u32, Var)]) {
    if !sizes.rules.pre_r510 {
        return;
    }
    for f in &sizes.gpu.forbidden_before_r510 {
        let (Some(a), Some(c)) = (sizes.index(f.a.as_str()), sizes.index(f.b.as_str())) else {
            continue;
        };
        for ea in zg.iter().filter(|e| e.0 == a) {
            for ec in zg.iter().filter(|e| e.0 == c) {
                let (za, zb) = (ea.2.v, ec.2.v);
                b.push(constraint!(za + zb <= 1.0));
            }
        }
    }
}

/// `symmetry  Σ compute·z[g,·] ≥ Σ compute·z[g+1,·],  u[g] ≥ u[g+1]`: GPUs are identical,
/// so only orderings by compute used need exploring.
fn placement_symmetry(
    b: &mut Builder,
    sizes: &Sizes,
    z: &[Vec<(usize, u32, Var)>],
    used: &[Option<Var>],
) {
    let compute = |zg: &[(usize, u32, Var)]| {
        lin(zg
            .iter()
            .map(|&(k, _, v)| (sizes.profiles[k].compute as f64, v)))
    };
    for g in 1..z.len() {
        b.push(constraint!(compute(&z[g - 1]) >= compute(&z[g])));
        if let (Some(a), Some(c)) = (used[g - 1], used[g]) {
            b.push(constraint!(a.v >= c.v));
        }
    }
}

/// Why a max-load scenario carries no load at all on its GPUs (the optimum λ = 0), or
/// `None` if it carries some. λ > 0 exactly when every query class of every model gets one
/// instance of a size that serves it within its latency bound, and all those instances fit
/// the GPUs:
///
/// ```text
///   serve     Σ_{k serves (m,b)} n[m,k] ≥ 1          ∀ m, b
///   supply    (encoding A on the server's N GPUs)
/// ```
///
/// The culprit is found by adding the classes model by model (the most demanding first)
/// until this feasibility problem has no solution (by bisection): the class that breaks it
/// is the one named.
pub(crate) fn unplaceable(d: &crate::data::LoadData) -> Option<String> {
    let classes = classes_by_demand(d);
    let feasible = |upto: usize| classes_fit(d, &classes[..upto]);
    if feasible(classes.len()) {
        return None;
    }
    // The first prefix that no plan can serve; `feasible(0)` always holds.
    let (mut lo, mut hi) = (0, classes.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if feasible(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (m, c) = classes[hi - 1];
    Some(unplaceable_message(d, m, c))
}

/// Every (model, class), model by model; within a model the most demanding classes first
/// (fewest sizes, then largest batch), so the class named is the one that needs what the
/// GPUs cannot give.
fn classes_by_demand(d: &crate::data::LoadData) -> Vec<(usize, usize)> {
    d.models
        .iter()
        .enumerate()
        .flat_map(|(m, lm)| {
            let mut cs: Vec<usize> = (0..lm.classes.len()).collect();
            cs.sort_by_key(|&c| {
                let c = &lm.classes[c];
                (c.lat.iter().flatten().count(), std::cmp::Reverse(c.batch))
            });
            cs.into_iter().map(move |c| (m, c))
        })
        .collect()
}

/// Whether one instance for each of these (model, class) pairs fits the server's GPUs (the
/// feasibility problem above). Only a proof of infeasibility says no; any other failure
/// leaves λ = 0 unexplained.
fn classes_fit(d: &crate::data::LoadData, classes: &[(usize, usize)]) -> bool {
    let mut b = Builder::new();
    let sizes = d.sizes.profiles.len();
    let n: Vec<Vec<Var>> = (0..d.models.len())
        .map(|m| {
            (0..sizes)
                .map(|k| b.int(format!("n[{m},{k}]"), d.gpus as f64 * 7.0))
                .collect()
        })
        .collect();
    for &(m, c) in classes {
        let lat = &d.models[m].classes[c].lat;
        let serve = lin((0..sizes)
            .filter(|&k| lat[k].is_some())
            .map(|k| (1.0, n[m][k])));
        b.push(constraint!(serve >= 1.0));
    }
    let demand: Vec<Expression> = (0..sizes)
        .map(|k| lin(n.iter().map(|nm| (1.0, nm[k]))))
        .collect();
    let _ = layouts(&mut b, &d.sizes, &demand, d.gpus);
    let zero = lin(n.iter().flatten().map(|&v| (1.0, v)));
    let ctl = crate::milp::Control::lp();
    !matches!(
        b.solve(crate::milp::Sense::Minimise, zero, &ctl),
        Err(crate::milp::Failure::Infeasible)
    )
}

/// The message naming class `c` of model `m` as what the GPUs cannot serve.
fn unplaceable_message(d: &crate::data::LoadData, m: usize, c: usize) -> String {
    let lm = &d.models[m];
    let class = &lm.classes[c];
    let on: Vec<&str> = d
        .sizes
        .profiles
        .iter()
        .zip(&class.lat)
        .filter(|(_, l)| l.is_some())
        .map(|(p, _)| p.name.as_str())
        .collect();
    let before: Vec<&str> = d.models[..m].iter().map(|x| x.name.as_str()).collect();
    let others = if before.is_empty() {
        String::new()
    } else {
        format!(
            " beside one instance for every batch of {}",
            before.join(", ")
        )
    };
    format!(
        "no plan serves every model on {} {}: model {}, batch {} runs within its latency bound only on {} \
         and the GPUs cannot hold such an instance{others} (add GPUs, relax the SLA, or drop a model)",
        d.gpus,
        d.sizes.gpu.name,
        lm.name,
        class.batch,
        on.join(", ")
    )
}
