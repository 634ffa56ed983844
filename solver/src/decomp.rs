//! A combinatorial bound and plan for the min-gpus MILP (layout encoding), exact when they meet.
//!
//! Every GPU's instances fit one maximal layout, so a plan on G GPUs uses at most C·G compute
//! slices and M·G memory slots (C, M: the most any maximal layout uses). Each model needs a
//! set of whole instances that covers its rate. Relaxing the layouts to these two totals,
//! but keeping each model's instances whole, gives a bound the LP relaxation does not reach:
//!
//! ```text
//!   G*_m       fewest GPCs that serve model m alone (`RateModel::min_gpcs`)
//!   x_m        GPCs model m uses above G*_m            (compute excess, ≥ 0)
//!   e_m(x)     fewest extra memory slots (slots − compute, summed over its instances) of any
//!              instance set of model m with at most G*_m + x GPCs that covers its rate
//!   D[x]       min Σ_m e_m(x_m)  over  Σ_m x_m = x          (min-plus convolution)
//!   G feasible ⇒ ∃ x:  Σ G*_m + x ≤ C·G   and   Σ G*_m + x + D[x] ≤ M·G
//! ```
//!
//! The smallest such G is a lower bound on GPUs, and at that G the smallest such x gives a
//! lower bound Σ G*_m + x on GPCs. The instance sets behind that x are then packed exactly
//! (the layout IP `min Σ_ℓ y[ℓ]  s.t.  Σ_ℓ c[ℓ,k]·y[ℓ] ≥ N_k`). When the packing needs no
//! more than the bound's G GPUs, the plan meets both bounds and is the lexicographic optimum
//! (fewest GPUs, then fewest GPCs): no branch and bound is needed. Otherwise it is a good
//! MIP start, and the bounds are valid cuts for the MILP.
//!
//! `e_m(x)` comes from a dynamic programme over (GPCs ≤ g, extra slots ≤ e) of the most
//! requests/s whole instances can serve, so its size grows with the model's GPCs; the
//! bound is only computed when the tables stay small (see [`MAX_CELLS`]); otherwise, as when
//! a size has fewer memory slots than compute slices, the MILP runs alone.

use crate::data::{RateData, Sizes};

/// Largest DP table (cells, 9 bytes each) the bound may build for one model.
const MAX_CELLS: usize = 4_000_000;

/// Most DP cells one bound may fill over all its models and rounds (about a second).
const MAX_TOTAL_CELLS: usize = 200_000_000;

/// One model's options: for each compute excess at which its fewest extra slots drop, the
/// instance counts per size that achieve it.
#[derive(Debug, Clone)]
struct Options {
    /// (compute excess x, extra slots e, counts per size), x increasing, e decreasing.
    steps: Vec<(u32, u32, Vec<u32>)>,
}

/// Per size: compute slices, extra memory slots (slots − compute), of the usable sizes.
fn weights(sizes: &Sizes) -> Option<Vec<(usize, usize)>> {
    sizes
        .profiles
        .iter()
        .map(|p| {
            let e = p.slots.checked_sub(p.compute)?;
            Some((p.compute as usize, e as usize))
        })
        .collect()
}

/// The most compute slices and memory slots a GPU can use (over the maximal layouts).
pub(crate) fn capacity(sizes: &Sizes) -> (u32, u32) {
    let used = |w: &dyn Fn(usize) -> u32| {
        sizes
            .count
            .iter()
            .map(|c| c.iter().enumerate().map(|(k, &n)| n * w(k)).sum::<u32>())
            .max()
            .unwrap_or(0)
    };
    (
        used(&|k| sizes.profiles[k].compute),
        used(&|k| sizes.profiles[k].slots),
    )
}

/// A size a model can use: (size index, compute slices, extra memory slots, requests/s).
type Item = (usize, usize, usize, f64);

/// `f[g·cols + e]`: the most requests/s of whole instances with at most g GPCs and at most e
/// extra slots (an unbounded knapsack with two capacities), and how each cell was reached.
struct Table {
    f: Vec<f64>,
    /// The item added (`u8::MAX`: taken from g−1, `u8::MAX − 1`: from e−1).
    how: Vec<u8>,
    cols: usize,
}

impl Table {
    fn new(items: &[Item], rows: usize, cols: usize) -> Self {
        let mut f = vec![0.0f64; rows * cols];
        let mut how = vec![u8::MAX; rows * cols];
        for g in 0..rows {
            for e in 0..cols {
                let at = g * cols + e;
                let (mut v, mut h) = (0.0, u8::MAX);
                if g > 0 {
                    v = f[at - cols];
                }
                if e > 0 && f[at - 1] > v {
                    v = f[at - 1];
                    h = u8::MAX - 1;
                }
                for (i, &(_, c, ei, t)) in items.iter().enumerate() {
                    if c <= g && ei <= e {
                        let u = f[(g - c) * cols + (e - ei)] + t;
                        if u > v {
                            v = u;
                            h = i as u8;
                        }
                    }
                }
                f[at] = v;
                how[at] = h;
            }
        }
        Self { f, how, cols }
    }

    /// Fewest extra slots with at most g GPCs that reach `target`, if any.
    fn fewest_extra(&self, g: usize, target: f64) -> Option<usize> {
        (0..self.cols).find(|&e| self.f[g * self.cols + e] >= target)
    }

    /// Instance counts per size behind cell (g, e).
    fn counts(&self, items: &[Item], sizes: usize, mut g: usize, mut e: usize) -> Vec<u32> {
        let mut n = vec![0u32; sizes];
        while g > 0 || e > 0 {
            match self.how[g * self.cols + e] {
                u8::MAX if g > 0 => g -= 1,
                u8::MAX => break,
                h if h == u8::MAX - 1 => e -= 1,
                h => {
                    let (k, c, ei, _) = items[h as usize];
                    n[k] += 1;
                    g -= c;
                    e -= ei;
                }
            }
        }
        n
    }
}

/// Model m's options with compute excess up to `xmax`, or `None` if its table is too big
/// (or would overrun what is left of `budget`, in cells).
fn options(
    d: &RateData,
    m: usize,
    xmax: u32,
    w: &[(usize, usize)],
    budget: &mut usize,
) -> Option<Options> {
    let model = &d.models[m];
    let items: Vec<Item> = model
        .best
        .iter()
        .enumerate()
        .filter_map(|(k, o)| Some((k, w[k].0, w[k].1, o.as_ref()?.throughput)))
        .filter(|&(_, c, _, t)| c > 0 && t > 0.0 && t.is_finite())
        .collect();
    if items.len() >= (u8::MAX - 1) as usize {
        return None;
    }
    // e_m(x) ≤ e_m(0) ≤ the extra slots of the fewest-GPC set, so no more columns are needed.
    let (_, fewest) = crate::data::min_gpcs(&d.sizes, &model.best, model.rate);
    let emax: usize = fewest
        .iter()
        .enumerate()
        .map(|(k, &n)| n as usize * w[k].1)
        .sum();
    let rows = (model.min_gpcs + xmax) as usize + 1;
    let cells = rows.checked_mul(emax + 1)?;
    if cells > MAX_CELLS {
        return None;
    }
    *budget = budget.checked_sub(cells)?;
    let table = Table::new(&items, rows, emax + 1);
    let target = model.rate * (1.0 - 1e-12);
    let mut steps: Vec<(u32, u32, Vec<u32>)> = Vec::new();
    for x in 0..=xmax {
        let g = (model.min_gpcs + x) as usize;
        let Some(e) = table.fewest_extra(g, target) else {
            continue;
        };
        if steps.last().is_none_or(|s| (e as u32) < s.1) {
            steps.push((x, e as u32, table.counts(&items, model.best.len(), g, e)));
        }
    }
    // The fewest-GPC set itself is an option at x = 0; were it missed (rounding), the
    // bound could exceed the optimum, so there is none. (Steps are indexed by u16.)
    if steps.first().map(|s| s.0) != Some(0) || steps.len() > u16::MAX as usize {
        return None;
    }
    Some(Options { steps })
}

/// The combinatorial bound and the instance sets behind it.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    /// No plan has fewer GPUs.
    pub gpus: u32,
    /// No plan with `gpus` GPUs has fewer GPCs.
    pub gpcs: u32,
    /// Per model and size, instance counts that meet both totals (not yet packed).
    pub counts: Vec<Vec<u32>>,
}

/// `D[x] = min Σ_m e_m(x_m)` over `Σ_m x_m = x`, for x ≤ `xmax`, and per model the step
/// it takes at each x (for recovering the choice).
fn convolve(opts: &[Options], xmax: u32) -> (Vec<u64>, Vec<Vec<u16>>) {
    let n = xmax as usize + 1;
    let mut dp = vec![u64::MAX; n];
    dp[0] = 0;
    let mut pick = Vec::with_capacity(opts.len());
    for o in opts {
        let mut next = vec![u64::MAX; n];
        let mut choice = vec![u16::MAX; n];
        for (x, cur) in dp.iter().enumerate() {
            if *cur == u64::MAX {
                continue;
            }
            for (i, &(sx, se, _)) in o.steps.iter().enumerate() {
                let to = x + sx as usize;
                if to >= n {
                    break;
                }
                let v = cur + se as u64;
                if v < next[to] {
                    next[to] = v;
                    choice[to] = i as u16;
                }
            }
        }
        dp = next;
        pick.push(choice);
    }
    (dp, pick)
}

/// The bound on at most `upto` GPUs, or `None` when the tables would be too big, a size
/// uses fewer memory slots than compute slices, or no G ≤ `upto` passes.
///
/// The options are built for compute excesses up to what `reach` GPUs allow, and `reach`
/// grows (by doubling its distance from the first candidate) until some G ≤ `reach` passes.
pub(crate) fn bound(d: &RateData, upto: u32) -> Option<Bound> {
    let w = weights(&d.sizes)?;
    let (c, mem) = capacity(&d.sizes);
    if c == 0 || mem < c {
        return None;
    }
    let totals = Totals {
        base: d.models.iter().map(|m| m.min_gpcs as u64).sum(),
        compute: c as u64,
        memory: mem as u64,
    };
    let (first, upto) = (totals.base.div_ceil(totals.compute), upto as u64);
    let mut reach = (first + 2).min(upto);
    let mut budget = MAX_TOTAL_CELLS;
    while first <= reach {
        let xmax = u32::try_from(totals.compute * reach - totals.base).ok()?;
        let opts: Vec<Options> = (0..d.models.len())
            .map(|m| options(d, m, xmax, &w, &mut budget))
            .collect::<Option<_>>()?;
        if let Some(b) = first_fit(&opts, &totals, first..=reach, xmax) {
            return Some(b);
        }
        if reach >= upto {
            return None;
        }
        reach = (reach + (reach - first).max(1)).min(upto);
    }
    None
}

/// What the GPUs' totals are checked against: Σ G*_m, and one GPU's compute and memory.
struct Totals {
    base: u64,
    compute: u64,
    memory: u64,
}

/// The first G in `gpus` that passes, with its fewest GPCs and the instance sets behind them.
fn first_fit(
    opts: &[Options],
    t: &Totals,
    gpus: std::ops::RangeInclusive<u64>,
    xmax: u32,
) -> Option<Bound> {
    let (dp, pick) = convolve(opts, xmax);
    for g in gpus {
        let xs = (t.compute * g - t.base).min(xmax as u64) as usize;
        let room = t.memory * g - t.base;
        let Some(x) = (0..=xs).find(|&x| dp[x] != u64::MAX && x as u64 + dp[x] <= room) else {
            continue;
        };
        let mut counts = vec![Vec::new(); opts.len()];
        let mut at = x;
        for m in (0..opts.len()).rev() {
            let step = &opts[m].steps[pick[m][at] as usize];
            counts[m] = step.2.clone();
            at -= step.0 as usize;
        }
        return Some(Bound {
            gpus: u32::try_from(g).ok()?,
            gpcs: u32::try_from(t.base + x as u64).ok()?,
            counts,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encoding, PlanOptions, SolverKind};
    use migopt_models::{
        BatchDist, BatchLookup, Demand, LayoutRules, Method, Millis, ModelSpec, Objective, Origin,
        ProfileRow, ProfileSet, Scenario, SolveStatus,
    };
    use std::path::PathBuf;

    /// SplitMix64 in [0, 1).
    fn rng(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    }

    /// Classic profiles and their SMs, per GPU kind the tests plan on.
    const GPUS: [(&str, &[(&str, f64)]); 3] = [
        (
            "A100-80GB",
            &[
                ("1g.10gb", 14.0),
                ("2g.20gb", 28.0),
                ("3g.40gb", 42.0),
                ("4g.40gb", 56.0),
                ("7g.80gb", 98.0),
            ],
        ),
        (
            "H100-80GB",
            &[
                ("1g.10gb", 16.0),
                ("2g.20gb", 32.0),
                ("3g.40gb", 60.0),
                ("4g.40gb", 64.0),
                ("7g.80gb", 132.0),
            ],
        ),
        (
            "A30-24GB",
            &[("1g.6gb", 14.0), ("2g.12gb", 28.0), ("4g.24gb", 56.0)],
        ),
    ];

    /// `models` synthetic models (the bench's curves) on a GPU of `GPUS`, needing about
    /// `gpus` GPUs.
    fn scenario(gpu: usize, models: usize, gpus: f64, seed: u64) -> Scenario {
        let (gpu, sms) = GPUS[gpu];
        let top = sms.last().map_or(1.0, |p| p.1);
        let mut s = seed;
        let (mut rows, mut specs) = (Vec::new(), Vec::new());
        for i in 0..models {
            let (a, c) = (0.5 + 4.5 * rng(&mut s), 2.0 + 38.0 * rng(&mut s));
            let lat = |b: u32, p: u32, sm: f64| {
                a * (1.0 + 0.25 * (p - 1) as f64) + c * (b * p) as f64 / sm
            };
            let name = format!("m{i}");
            for &(profile, sm) in sms {
                for p in 1..=3 {
                    for b in [1u32, 2, 4, 8, 16, 32] {
                        let l = lat(b, p, sm);
                        rows.push((
                            Origin::file("test"),
                            ProfileRow {
                                model: name.as_str().into(),
                                gpu: gpu.into(),
                                profile: profile.into(),
                                batch: b,
                                latency_ms: l,
                                latency_p99_ms: None,
                                procs: p,
                                throughput_qps: (p * b) as f64 * 1000.0 / l,
                                method: Method::Imported,
                                neighbour_load: 0.0,
                            },
                        ));
                    }
                }
            }
            let sla = lat(1, 1, top) / 0.45 * (1.5 + 6.5 * rng(&mut s));
            // About gpus/models GPUs' worth of the whole-GPU profile's throughput, ±80%.
            let rate =
                gpus / models as f64 * 1000.0 / lat(1, 1, top) * (0.2 + 1.6 * rng(&mut s)) * 8.0;
            specs.push(ModelSpec {
                name: name.as_str().into(),
                sla: Millis(sla),
                demand: Demand::Rate(rate),
                batch: BatchDist::default(),
                profile_path: PathBuf::from("test"),
            });
        }
        Scenario {
            name: "decomp".into(),
            description: None,
            gpu: gpu.into(),
            gpu_count: 1,
            batch_lookup: BatchLookup::Interpolate,
            max_procs: None,
            profiles: ProfileSet::from_rows(rows).expect("valid rows"),
            models: specs,
        }
    }

    fn data(s: &Scenario, rules: LayoutRules) -> (RateData, PlanOptions) {
        let opts = PlanOptions {
            objective: Objective::MinGpus,
            encoding: Encoding::Layouts,
            rules,
            ..Default::default()
        };
        let params = SolverKind::Milp.planner().params(&opts.params);
        (crate::data::rate_data(s, &params, rules).unwrap(), opts)
    }

    /// On random instances on three GPU kinds, under each rule set: the bound never exceeds the MILP's proven
    /// optimum, and `solve` (the bound's plan where it meets the bound, else the MILP with
    /// the bound as cuts) proves the same optimum (GPUs and GPCs) as the MILP alone.
    #[test]
    fn bound_is_valid_and_plans_agree_with_the_milp() {
        let rules = [
            LayoutRules::default(),
            LayoutRules {
                all_profiles: false,
                pre_r510: true,
            },
            LayoutRules {
                all_profiles: true,
                pre_r510: false,
            },
        ];
        let mut met = 0;
        for seed in 0..36u64 {
            let (gpu, models) = (seed as usize % 3, 2 + (seed as usize * 5) % 14);
            let s = scenario(gpu, models, 1.0 + (seed * 7 % 19) as f64, seed);
            let (d, opts) = data(&s, rules[seed as usize / 3 % 3]);
            let (max, lp) = crate::exact::min_gpus_limit(&d, &opts).unwrap();
            let plain = crate::mingpus::solve_milp(&d, &opts, max, lp, None, None).unwrap();
            let ours = crate::mingpus::solve(&d, &opts, max, lp).unwrap();
            assert_eq!(plain.report.status, SolveStatus::Optimal);
            assert_eq!(ours.report.status, SolveStatus::Optimal);
            let cost = |p: &crate::mingpus::Solved| (p.gpus.len(), p.report.gpcs_used);
            assert_eq!(cost(&ours), cost(&plain), "seed {seed}");
            let b = bound(&d, max).expect("small tables");
            let optimum = (plain.gpus.len() as u32, plain.report.gpcs_used.unwrap());
            assert!(
                (b.gpus, b.gpcs) <= optimum,
                "seed {seed}: bound {b:?} above {optimum:?}"
            );
            met += usize::from((b.gpus, b.gpcs) == optimum);
        }

        // The bound is the optimum on most of these instances (so the fast path is tested).
        assert!(met >= 24, "bound met on {met} of 36");
    }
    /// Models that run on one size only, with throughput 100 requests/s per instance.
    fn one_size(rules: LayoutRules, models: &[(u32, f64)]) -> RateData {
        let gpu = migopt_models::Catalogue::builtin()
            .gpu("A100-80GB")
            .unwrap();
        let sizes = Sizes::for_gpu(gpu, rules);
        let models = models
            .iter()
            .enumerate()
            .map(|(i, &(compute, rate))| {
                let best: Vec<Option<crate::data::OpPoint>> = sizes
                    .profiles
                    .iter()
                    .map(|p| {
                        (p.compute == compute && p.class == migopt_models::ProfileClass::Classic)
                            .then_some(crate::data::OpPoint {
                                batch: 1,
                                procs: 1,
                                latency: 1.0,
                                throughput: 100.0,
                            })
                    })
                    .collect();
                let min_gpcs = crate::data::min_gpcs(&sizes, &best, rate).0;
                crate::data::RateModel {
                    name: format!("m{i}"),
                    rate,
                    best,
                    min_gpcs,
                }
            })
            .collect();
        RateData { sizes, models }
    }

    /// Where the layouts bind beyond compute and memory totals, the bound's plan needs more
    /// GPUs than the bound, and the MILP (with the bound as cuts) proves the optimum: eight
    /// 4g instances need eight GPUs (one 4g per GPU; the totals allow five), and before
    /// R510 four 4g and four 3g need six (no 4g beside a 3g; the totals allow four).
    #[test]
    fn falls_back_to_the_milp_where_layouts_bind() {
        let pre = LayoutRules {
            all_profiles: false,
            pre_r510: true,
        };
        let cases = [
            (LayoutRules::default(), vec![(4, 800.0)], (5, 8)),
            (pre, vec![(4, 400.0), (3, 400.0)], (4, 6)),
        ];
        for (rules, models, (lower, optimum)) in cases {
            let d = one_size(rules, &models);
            let opts = PlanOptions {
                objective: Objective::MinGpus,
                rules,
                ..Default::default()
            };
            let b = bound(&d, 100).unwrap();
            assert_eq!(b.gpus, lower);
            let s = crate::mingpus::solve(&d, &opts, 100, None).unwrap();
            assert_eq!(s.report.status, SolveStatus::Optimal);
            assert_eq!(s.gpus.len(), optimum);
            let plain = crate::mingpus::solve_milp(&d, &opts, 100, None, None, None).unwrap();
            assert_eq!(plain.gpus.len(), optimum);
        }
    }
}
