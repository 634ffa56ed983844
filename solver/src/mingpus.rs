//! The min-gpus MILP (the ParvaGPU / MIG-serving question): the fewest GPUs whose instances
//! serve every model's request rate within its SLO, with server-side batching and MPS.
//!
//! An instance of size k running batch b with p MPS processes serves p·b/L(k,b,p)·1000
//! requests/s and is feasible when L(k,b,p) < slo_factor·SLO. Only the choice of size
//! interacts with the rest of the problem, so each (model, size) runs its best feasible
//! measured (b, p): T_m(k) is that throughput. This reduction is exact.
//!
//! ```text
//!   minimise  BIG·(GPUs used) + Σ_{m,k} compute_k·n[m,k]      (fewest GPUs, then fewest GPCs)
//!   cover     Σ_k T_m(k)·n[m,k] ≥ r_m                         ∀ m
//!   supply    Σ_m n[m,k] ≤ (instances of size k the GPUs hold: encoding A or B), GPUs ≤ U
//!   n[m,k] ∈ ℤ≥0, at most ⌈r_m / T_m(k)⌉ (more is never optimal)
//! ```
//!
//! BIG = C·U + 1 with C compute slices per GPU and U the GPU limit, so one GPU always
//! outweighs any difference in GPCs: the single solve is lexicographic.
//!
//! In the layout encoding, [`crate::decomp`]'s combinatorial bound runs first: per-model
//! whole-instance sets against the GPUs' compute and memory-slot totals. When its instance
//! sets pack into its GPU bound (the usual case), that plan meets both the GPU and the GPC
//! bound and is returned as proven optimal without the MILP; otherwise the MILP runs with
//! the bound as cuts.

use crate::data::RateData;
use crate::decomp;
use crate::maxload::demand_by_size;
use crate::milp::{lin, Builder, Outcome, Sense, Var};
use crate::pack::assign;
use crate::supply::{self, Supply};
use crate::{Encoding, PlanOptions};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, GpuPlan, ModelRate, SolveReport, SolveStatus};

struct Model {
    n: Vec<Vec<Option<Var>>>,
    supply: Supply,
}

/// Instance counts, one integer per (model, size) with a feasible operating point, each at
/// most ⌈r_m / T_m(k)⌉ (and at least 1), capped at `most`.
pub(crate) fn instances(b: &mut Builder, d: &RateData, most: f64) -> Vec<Vec<Option<Var>>> {
    d.models
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            m.best
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    o.map(|o| {
                        let hi = (m.rate / o.throughput).ceil().max(1.0).min(most);
                        b.int(format!("n[{mi},{k}]"), hi)
                    })
                })
                .collect()
        })
        .collect()
}

/// What model m's new instances serve: `Σ_k T_m(k)·n[m,k]`.
pub(crate) fn served(d: &RateData, n: &[Vec<Option<Var>>], m: usize) -> Expression {
    lin(d.models[m]
        .best
        .iter()
        .zip(&n[m])
        .filter_map(|(o, v)| Some((o.as_ref()?.throughput, (*v)?))))
}

/// `cover  Σ_k T_m(k)·n[m,k] ≥ r_m   ∀ m`
fn cover(b: &mut Builder, d: &RateData, n: &[Vec<Option<Var>>]) {
    for (mi, m) in d.models.iter().enumerate() {
        b.push(constraint!(served(d, n, mi) >= m.rate));
    }
}

/// `min gpcs  Σ_k compute_k·n[m,k] ≥ G*_m   ∀ m`, G*_m the fewest GPCs that can serve model m
/// alone (exact knapsack), and `Σ GPUs ≥ ⌈Σ_m G*_m / C⌉`. Both are valid for every integer
/// solution; they lift the LP bound from fractional instances to whole ones, which is what
/// lets large instances close their gap.
fn knapsack_cuts(b: &mut Builder, d: &RateData, n: &[Vec<Option<Var>>], gpus: Expression) {
    for (mi, m) in d.models.iter().enumerate() {
        let used = lin(n[mi]
            .iter()
            .enumerate()
            .filter_map(|(k, v)| Some((d.sizes.profiles[k].compute as f64, (*v)?))));
        b.push(constraint!(used >= m.min_gpcs as f64));
    }
    let total: u32 = d.models.iter().map(|m| m.min_gpcs).sum();
    let least = (total as f64 / d.sizes.gpu.compute_slices as f64).ceil();
    b.push(constraint!(gpus >= least));
}

/// GPCs of all instances: Σ compute_k·n[m,k].
fn gpcs(d: &RateData, n: &[Vec<Option<Var>>]) -> Expression {
    lin(n.iter().flat_map(|nm| {
        nm.iter()
            .enumerate()
            .filter_map(|(k, v)| Some((d.sizes.profiles[k].compute as f64, (*v)?)))
    }))
}

fn build(d: &RateData, encoding: Encoding, max_gpus: u32) -> (Builder, Model) {
    let mut b = Builder::new();
    let n = instances(&mut b, d, f64::INFINITY);
    cover(&mut b, d, &n);
    let demand = demand_by_size(&n, d.sizes.profiles.len());
    let supply = supply::build(encoding, &mut b, &d.sizes, &demand, max_gpus, true);
    knapsack_cuts(&mut b, d, &n, supply.gpus());
    (b, Model { n, supply })
}

/// Weight of one GPU in the objective: more than all GPCs of `max_gpus` GPUs.
fn big(d: &RateData, max_gpus: u32) -> f64 {
    (d.sizes.gpu.compute_slices as f64) * max_gpus as f64 + 1.0
}

/// The LP bound on GPUs: the relaxation of encoding A (or B) minimising GPUs alone.
pub(crate) fn lp_gpus(
    d: &RateData,
    encoding: Encoding,
    max_gpus: u32,
    opts: &PlanOptions,
) -> Result<Option<f64>, Error> {
    let (b, m) = build(d, encoding, max_gpus);
    match b.solve(
        Sense::Minimise,
        m.supply.gpus(),
        &crate::control(opts, true),
    ) {
        Ok(o) => Ok(Some(o.objective)),
        Err(crate::milp::Failure::Infeasible) => Ok(None),
        Err(f) => Err(f.into_error("min-gpus LP relaxation")),
    }
}

/// Result of the min-gpus MILP before it becomes a plan.
pub(crate) struct Solved {
    pub gpus: Vec<GpuPlan>,
    pub model_rates: Vec<ModelRate>,
    pub report: SolveReport,
}

/// A first plan for the MILP to improve on, by rounding its LP relaxation: each model
/// keeps the whole instances of the LP solution (rounded down) and covers the rest of its
/// rate with the fewest GPCs (the knapsack of [`crate::data::min_gpcs`]); the instances are
/// then packed by the small layout IP `min Σ_ℓ y[ℓ]  s.t.  Σ_ℓ c[ℓ,k]·y[ℓ] ≥ N_k`. The LP's
/// mix of sizes packs well, which per-model choices alone do not (on the 1,000-GPU benchmark
/// the fewest-GPC sets of each model pack into 6% more GPUs than the optimum; this start is
/// within 0.5%). It costs one LP and a 12-variable IP, and means a time-limited solve always
/// has a good plan to return. Returns the instance counts and GPUs per layout.
fn warm_start(
    d: &RateData,
    opts: &PlanOptions,
    max_gpus: u32,
) -> Option<(Vec<Vec<u32>>, Vec<u32>)> {
    let lp_ctl = crate::milp::Control {
        relax: true,
        time_limit: opts.time_left(),
        ..crate::milp::Control::lp()
    };
    let (b, model) = build(d, Encoding::Layouts, max_gpus);
    let objective = model.supply.gpus() * big(d, max_gpus) + gpcs(d, &model.n);
    let relaxed = b.solve(Sense::Minimise, objective, &lp_ctl).ok()?;
    let counts: Vec<Vec<u32>> = d
        .models
        .iter()
        .zip(&model.n)
        .map(|(m, nm)| {
            let mut c: Vec<u32> = nm
                .iter()
                .map(|v| v.map_or(0, |v| (relaxed.val(v) + 1e-9).floor().max(0.0) as u32))
                .collect();
            let served: f64 = m
                .best
                .iter()
                .zip(&c)
                .filter_map(|(o, &n)| Some(o.as_ref()?.throughput * n as f64))
                .sum();
            if served < m.rate * (1.0 - 1e-12) {
                let (_, rest) = crate::data::min_gpcs(&d.sizes, &m.best, m.rate - served);
                for (ck, r) in c.iter_mut().zip(rest) {
                    *ck += r;
                }
            }
            c
        })
        .collect();
    let per_layout = pack_counts(
        &d.sizes,
        &counts,
        &crate::milp::Control {
            relax: false,
            ..lp_ctl
        },
    )?;
    Some((counts, per_layout))
}

/// GPUs per maximal layout that hold the instances `counts[m][k]` on the fewest GPUs: the
/// small layout IP `min Σ_ℓ y[ℓ]  s.t.  Σ_ℓ c[ℓ,k]·y[ℓ] ≥ N_k` (one integer per count
/// pattern, solved exactly).
pub(crate) fn pack_counts(
    sizes: &crate::data::Sizes,
    counts: &[Vec<u32>],
    ctl: &crate::milp::Control,
) -> Option<Vec<u32>> {
    let need: Vec<f64> = (0..sizes.profiles.len())
        .map(|k| counts.iter().map(|c| c[k] as f64).sum())
        .collect();
    let total: f64 = need.iter().sum();
    let mut b = Builder::new();
    let y: Vec<(usize, Var)> = sizes
        .patterns
        .iter()
        .map(|&l| (l, b.int(format!("y[{l}]"), total.max(1.0))))
        .collect();
    for (k, &nk) in need.iter().enumerate() {
        let offer = lin(y.iter().map(|&(l, v)| (sizes.count[l][k] as f64, v)));
        b.push(constraint!(offer >= nk));
    }
    let out = b
        .solve(Sense::Minimise, lin(y.iter().map(|&(_, v)| (1.0, v))), ctl)
        .ok()?;
    let mut per_layout = vec![0u32; sizes.layouts.len()];
    for &(l, v) in &y {
        per_layout[l] = out.int(v);
    }
    Some(per_layout)
}

/// Column values of a start: the instance counts into `n`, and the GPUs per layout as the
/// supply's encoding (A or B) holds them.
pub(crate) fn start_values(
    b: &Builder,
    d: &RateData,
    n: &[Vec<Option<Var>>],
    supply: &Supply,
    counts: &[Vec<u32>],
    per_layout: &[u32],
) -> Vec<f64> {
    let mut cols = vec![0.0; b.num_vars()];
    for (nm, cm) in n.iter().zip(counts) {
        for (v, &c) in nm.iter().zip(cm) {
            if let Some(v) = v {
                cols[v.col] = c as f64;
            }
        }
    }
    supply.set_start(&d.sizes, per_layout, &mut cols);
    cols
}

/// Cut age limit of the min-gpus MILP (see [`crate::milp::Control::lp_age_limit`]).
const LP_AGE_LIMIT: u32 = 5;

/// Solves the min-gpus problem with at most `max_gpus` GPUs (a cap, or a heuristic's count).
///
/// In the layout encoding the combinatorial bound of [`crate::decomp`] comes first: when its
/// instance sets pack into its GPU bound, that plan is the proven optimum and no MILP runs.
/// Otherwise the MILP runs from the better of two starts (the bound's packing, LP
/// rounding), with the bound as cuts. The placement encoding always runs its own MILP (it
/// is the check on the layout enumeration, so it takes nothing from it).
pub(crate) fn solve(
    d: &RateData,
    opts: &PlanOptions,
    max_gpus: u32,
    lp: Option<f64>,
) -> Result<Solved, Error> {
    let started = std::time::Instant::now();
    let bound = match opts.encoding {
        Encoding::Layouts => decomp::bound(d, max_gpus),
        Encoding::Placements => None,
    };
    let ctl = crate::milp::Control::lp();
    if let Some(b) = &bound {
        if let Some(s) = proven(d, b, &ctl, lp, started) {
            return Ok(s);
        }
    }
    // The bound's sets, packed exactly, as a start for the MILP.
    let packed = bound.as_ref().and_then(|b| {
        let y = pack_counts(&d.sizes, &b.counts, &ctl)?;
        Some((b.counts.clone(), y))
    });
    solve_milp(d, opts, max_gpus, lp, bound.as_ref(), packed)
}

/// The bound's instance sets on at most its GPU bound, if they fit: by best fit first
/// (no solver; it reaches the bound on small instances, measured: 10 models on 1–8 GPUs,
/// not on 100 or 1,000), else by the exact layout IP.
fn pack_bound(
    d: &RateData,
    b: &decomp::Bound,
    ctl: &crate::milp::Control,
) -> Option<Vec<Vec<(usize, u32)>>> {
    let items: Vec<(usize, ())> = b
        .counts
        .iter()
        .flat_map(|c| c.iter().enumerate())
        .flat_map(|(k, &n)| std::iter::repeat_n((k, ()), n as usize))
        .collect();
    let (fit, left) = crate::pack::Packer::new(&d.sizes).pack(items, Some(b.gpus as usize));
    if left.is_empty() {
        return Some(
            fit.into_iter()
                .map(|g| g.into_iter().map(|(k, s, _)| (k, s)).collect())
                .collect(),
        );
    }
    let per_layout = pack_counts(&d.sizes, &b.counts, ctl)?;
    (per_layout.iter().sum::<u32>() <= b.gpus).then(|| {
        per_layout
            .iter()
            .enumerate()
            .flat_map(|(l, &c)| {
                std::iter::repeat_n(crate::pack::layout_slots(&d.sizes, l), c as usize)
            })
            .collect()
    })
}

/// The plan of the bound's instance sets, if they pack into its GPU bound: then it meets
/// both bounds and is the lexicographic optimum (see [`crate::decomp`]).
fn proven(
    d: &RateData,
    b: &decomp::Bound,
    ctl: &crate::milp::Control,
    lp: Option<f64>,
    started: std::time::Instant,
) -> Option<Solved> {
    let per_gpu = pack_bound(d, b, ctl)?;
    let counts = &b.counts;
    let gpus = crate::renumber(assign(
        &d.sizes,
        &per_gpu,
        counts,
        &d.names(),
        &|_| None,
        &|m, k| d.point(m, k),
    ));
    let gpc = gpcs_of(d, &gpus);
    // Both bounds met (anything else would be a bug in the bound: leave it to the MILP).
    if gpus.len() != b.gpus as usize || gpc != b.gpcs {
        return None;
    }
    let used = gpus.len() as f64;
    let report = SolveReport {
        status: SolveStatus::Optimal,
        objective: used,
        bound: Some(used),
        gap: Some(0.0),
        lp_bound: lp,
        solve_seconds: started.elapsed().as_secs_f64(),
        gpcs_used: Some(gpc),
    };
    Some(Solved {
        gpus,
        model_rates: model_rates(d, counts),
        report,
    })
}

/// GPCs of a plan's instances.
fn gpcs_of(d: &RateData, gpus: &[GpuPlan]) -> u32 {
    gpus.iter()
        .flat_map(|g| &g.layout)
        .filter_map(|a| d.sizes.index(a.profile.as_str()))
        .map(|k| d.sizes.profiles[k].compute)
        .sum()
}

/// Requests/s each model's instances serve.
fn model_rates(d: &RateData, counts: &[Vec<u32>]) -> Vec<ModelRate> {
    d.models
        .iter()
        .zip(counts)
        .map(|(rm, cm)| ModelRate {
            model: rm.name.as_str().into(),
            rate_qps: rm
                .best
                .iter()
                .zip(cm)
                .filter_map(|(o, &c)| Some(o.as_ref()?.throughput * c as f64))
                .sum(),
        })
        .collect()
}

/// (GPUs, GPCs) of a start.
fn cost(sizes: &crate::data::Sizes, start: &(Vec<Vec<u32>>, Vec<u32>)) -> (u32, u32) {
    let gpc = start
        .0
        .iter()
        .flat_map(|c| c.iter().enumerate())
        .map(|(k, &n)| n * sizes.profiles[k].compute)
        .sum();
    (start.1.iter().sum(), gpc)
}

/// `bound  GPUs ≥ G,  BIG·GPUs + GPCs ≥ BIG·G + P`: the combinatorial bound (G GPUs, and P
/// GPCs on G GPUs) as cuts; the second holds for more GPUs too, since BIG exceeds any GPCs.
fn bound_cuts(
    b: &mut Builder,
    gpus: Expression,
    objective: Expression,
    bound: &decomp::Bound,
    weight: f64,
) {
    let (big, g, p) = (weight, bound.gpus as f64, bound.gpcs as f64);
    b.push(constraint!(gpus >= g));
    b.push(constraint!(objective >= big * g + p));
}

/// The MILP, from the better start (the bound's packing or LP rounding), with the bound as
/// cuts where there is one.
pub(crate) fn solve_milp(
    d: &RateData,
    opts: &PlanOptions,
    max_gpus: u32,
    lp: Option<f64>,
    bound: Option<&decomp::Bound>,
    packed: Option<(Vec<Vec<u32>>, Vec<u32>)>,
) -> Result<Solved, Error> {
    let warm = [packed, warm_start(d, opts, max_gpus)]
        .into_iter()
        .flatten()
        .filter(|(_, y)| y.iter().sum::<u32>() <= max_gpus)
        .min_by_key(|s| cost(&d.sizes, s));
    // The start is a plan: no optimum needs more GPUs than it has.
    let limit = warm
        .as_ref()
        .map_or(max_gpus, |(_, y)| y.iter().sum::<u32>().max(1));
    let (mut b, model) = build(d, opts.encoding, limit);
    let weight = big(d, limit);
    let objective = model.supply.gpus() * weight + gpcs(d, &model.n);
    if let Some(bd) = bound {
        bound_cuts(&mut b, model.supply.gpus(), objective.clone(), bd, weight);
    }
    let start = warm
        .as_ref()
        .map(|(c, y)| start_values(&b, d, &model.n, &model.supply, c, y));
    let out = b
        .solve_from(
            Sense::Minimise,
            objective,
            &crate::milp::Control {
                lp_age_limit: Some(LP_AGE_LIMIT),
                ..crate::control(opts, false)
            },
            start.as_deref(),
        )
        .map_err(|f| match f {
            crate::milp::Failure::Infeasible => Error::Infeasible(format!(
                "the rate targets need more than {max_gpus} GPUs: no plan fits in {max_gpus}{}",
                lp.map(|l| format!(" (the LP bound is {:.2} GPUs)", l))
                    .unwrap_or_default()
            )),
            f => f.into_error("min-gpus MILP"),
        })?;
    let (gpus, counts) = placements(d, &model, &out);
    let used = gpus.len() as f64;
    let gpc = gpcs_of(d, &gpus);
    let lp_ceil = lp.map(|l| (l - 1e-6).ceil()).unwrap_or(0.0);
    let floor = bound.map_or(lp_ceil, |bd| lp_ceil.max(bd.gpus as f64));
    let report = SolveReport {
        lp_bound: lp,
        gpcs_used: Some(gpc),
        ..crate::finish::min_gpus_report(&out, weight, used, Some(floor))
    };
    Ok(Solved {
        gpus,
        model_rates: model_rates(d, &counts),
        report,
    })
}

/// Explicit GPUs from a solution; instances no count claims are not created, and GPUs left
/// with nothing are dropped (the plan lists the GPUs it uses, numbered from 0).
fn placements(d: &RateData, model: &Model, out: &Outcome) -> (Vec<GpuPlan>, Vec<Vec<u32>>) {
    let per_gpu = model.supply.decode(&d.sizes, out);
    let counts = out.counts(&model.n);
    let gpus = assign(
        &d.sizes,
        &per_gpu,
        &counts,
        &d.names(),
        &|_| None,
        &|m, k| d.point(m, k),
    );
    (crate::renumber(gpus), counts)
}
