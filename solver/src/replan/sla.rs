//! The SLA-aware re-plan target (`migopt replan --solver sla`): for a new load of rate
//! targets, the target that needs the fewest GPUs under the queueing model of
//! [`crate::slagpus`] (every model's p99 within its SLO), then re-cuts the fewest GPUs, then
//! starts the fewest instances.
//!
//! The instances of model m on size k form one pool of n instances at one operating point
//! (batch, MPS processes) with admissible rate α_{m,k}(n) (slagpus's option table, binaries
//! z[m,k,n]). In a re-plan a pool is made of kept instances (the c_t GPUs of each current
//! type t, holding cnt_t[m,k] instances of m on k each, counted as in [`super`]) and new
//! ones (cut by new layouts y[ℓ], as `supply` does). A kept instance runs the point of its
//! pool under the new scenario (batch and MPS processes are runtime settings, not a re-cut),
//! so every instance of a pool runs one point, as the admissible rate assumes:
//!
//! ```text
//!   tier 1    G* = SLA-aware min-gpus optimum of the new load (slagpus's MILP, proven)
//!   tier 2    minimise  Σ_ℓ y[ℓ]                                   (GPUs re-cut or added)
//!  (tier 2b  with --gpu-slack S > 0: the count below is G* + S, and this tier minimises
//!            Σ_t keep[t] + Σ_ℓ y[ℓ], the GPUs used, under the tier-2 optimum)
//!   tier 3    minimise  Σ_{m,k} new[m,k]   under every optimum above   (instances started)
//!   pool      Σ_n n·z[m,k,n] = Σ_t cnt_t[m,k]·keep[t] + new[m,k]       ∀ m, k
//!   one pool  Σ_n z[m,k,n] ≤ 1                                          ∀ m, k
//!   cover     Σ_{k,n} α_{m,k}(n)·z[m,k,n] ≥ r_m                         ∀ m
//!   supply    Σ_m new[m,k] ≤ Σ_ℓ c[ℓ,k]·y[ℓ]                            ∀ k
//!   count     Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ G* (+ S)
//!   keep[t] ∈ {0..c_t}, z ∈ {0, 1}, new, y ∈ ℤ≥0
//! ```
//!
//! The pool sizes z ranges over run from 1 to the first that carries r_m alone, and at least
//! to the kept instances of (m, k) (a pool may hold more instances than its rate needs when
//! they are kept anyway). The from-scratch plan of tier 1 is a solution (nothing kept), so
//! tier 2 starts from it and every tier is feasible; each is proven on its own, as in
//! [`super`]. There is no headroom tie-break tier here: the pools' admissible rates already
//! carry the queueing margin.
//!
//! **Transition.** Each model keeps min(old rate, new rate) during every step, measured
//! with the pools' admissible rates ([`PoolCapacity`]: the instances of (m, k) that are up
//! form one pool at its best point), never more than the current plan gives it there (a
//! fluid current plan may hold less under the queueing model than its provisioned rate).

use super::current::{read_current, Current};
use super::cuts::{keep_vars, new_cuts, plan_counts, Cuts};
use super::handover::{count_instances, hand_over};
use super::target::{assemble, target, target_plan, Solved};
use super::tiers::{lexicographic, proven_status, solve_tier, tier_order, tier_report, Start};
use super::transition::Capacity;
use super::{ReplanOptions, Tier};
use crate::data::{self, RateData};
use crate::milp::{lin, Builder, Failure, Outcome, Var};
use crate::planner::Job;
use crate::slagpus::{pool_vars, PoolOption, PoolTable};
use crate::{PlanOptions, SolverKind};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, ModelRate, Plan, Scenario};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

/// The pool options of every (model, size) and the kept instances per type.
struct Input<'a> {
    d: &'a RateData,
    cur: &'a Current,
    /// Per type t, its instances per (model, size): cnt_t[m][k].
    cnt: Vec<Vec<Vec<u32>>>,
    /// Per (model, size), the pool options (n = 1, 2, ...).
    options: Vec<Vec<Vec<PoolOption>>>,
}

/// The built model of a tier.
struct Model {
    /// z[m][k]: (option, binary).
    z: Vec<Vec<Vec<(PoolOption, Var)>>>,
    /// Kept GPUs, new instances (`None` where the size has no pool) and new cuts.
    cuts: Cuts,
}

fn build(inp: &Input<'_>, gpus: u32) -> (Builder, Model) {
    let mut b = Builder::new();
    let keep = keep_vars(&mut b, inp.cur);
    let (z, new) = pools(&mut b, inp);
    for m in 0..z.len() {
        for k in 0..z[m].len() {
            pool(&mut b, inp, &keep, &z[m][k], new[m][k], m, k);
        }
        cover(&mut b, inp, &z[m], m);
        gpcs(&mut b, inp, &z[m], m);
    }
    // supply, and count  Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ G*
    let cuts = new_cuts(&mut b, &inp.d.sizes, keep, new, gpus);
    (b, Model { z, cuts })
}

/// The pool binaries z[m,k,n] and the new-instance counts new[m,k] (bounded by the largest
/// pool of (m, k)).
#[allow(clippy::type_complexity)]
fn pools(
    b: &mut Builder,
    inp: &Input<'_>,
) -> (Vec<Vec<Vec<(PoolOption, Var)>>>, Vec<Vec<Option<Var>>>) {
    let z = pool_vars(b, &inp.options);
    let new = inp
        .options
        .iter()
        .enumerate()
        .map(|(m, om)| {
            om.iter()
                .enumerate()
                .map(|(k, ok)| {
                    let most = ok.last()?.n;
                    Some(b.int(format!("new[{m},{k}]"), most as f64))
                })
                .collect()
        })
        .collect();
    (z, new)
}

/// `pool  Σ_n n·z[m,k,n] = Σ_t cnt_t[m,k]·keep[t] + new[m,k]` and
/// `one pool  Σ_n z[m,k,n] ≤ 1` (a kept instance of a size without pools forces keep[t] = 0).
fn pool(
    b: &mut Builder,
    inp: &Input<'_>,
    keep: &[Var],
    z: &[(PoolOption, Var)],
    new: Option<Var>,
    m: usize,
    k: usize,
) {
    let kept: Vec<(f64, Var)> = inp
        .cnt
        .iter()
        .zip(keep)
        .filter(|(c, _)| c[m][k] > 0)
        .map(|(c, &v)| (c[m][k] as f64, v))
        .collect();
    if z.is_empty() && kept.is_empty() {
        return;
    }
    let size = lin(z.iter().map(|&(o, v)| (o.n as f64, v)));
    let kept = lin(kept);
    let new = lin(new.map(|v| (1.0, v)));
    // size − kept = new: the pool, with the row's terms in the order they always had.
    b.push(constraint!(size - kept == new));
    if !z.is_empty() {
        let pools = lin(z.iter().map(|&(_, v)| (1.0, v)));
        b.push(constraint!(pools <= 1.0));
    }
}

/// `cover  Σ_{k,n} α_{m,k}(n)·z[m,k,n] ≥ r_m`
fn cover(b: &mut Builder, inp: &Input<'_>, zm: &[Vec<(PoolOption, Var)>], m: usize) {
    let served = lin(zm.iter().flatten().map(|&(o, v)| (o.rate, v)));
    b.push(constraint!(served >= inp.d.models[m].rate));
}

/// `gpcs  Σ_{k,n} C_k·n·z[m,k,n] ≥ G*_m`, G*_m the fewest GPCs whose pools carry r_m
/// ([`min_gpcs`]). Valid for every solution (its pools of m are one of the combinations the
/// knapsack ranges over); it lifts the LP bound from fractional pools to whole ones, as the
/// knapsack cuts of the fluid re-plan do.
fn gpcs(b: &mut Builder, inp: &Input<'_>, zm: &[Vec<(PoolOption, Var)>], m: usize) {
    let need = min_gpcs(inp, m);
    if need == 0 {
        return;
    }
    let compute = |k: usize| inp.d.sizes.profiles[k].compute as f64;
    let used = lin(zm
        .iter()
        .enumerate()
        .flat_map(|(k, zk)| zk.iter().map(move |&(o, v)| (compute(k) * o.n as f64, v))));
    b.push(constraint!(used >= need as f64));
}

/// The fewest GPCs in pools (at most one per size) whose admissible rates sum to model m's
/// rate: a knapsack over GPC budgets, best[g] = the most rate g GPCs carry (0: none found).
fn min_gpcs(inp: &Input<'_>, m: usize) -> u32 {
    let om = &inp.options[m];
    let compute = |k: usize| inp.d.sizes.profiles[k].compute as usize;
    let most: usize = om
        .iter()
        .enumerate()
        .map(|(k, ok)| ok.last().map_or(0, |o| o.n as usize * compute(k)))
        .sum();
    let most = most.min(MAX_KNAPSACK);
    let mut best = vec![0.0f64; most + 1];
    for (k, ok) in om.iter().enumerate() {
        let before = best.clone();
        for (g, slot) in best.iter_mut().enumerate() {
            for o in ok {
                let c = o.n as usize * compute(k);
                if c <= g {
                    *slot = slot.max(before[g - c] + o.rate);
                }
            }
        }
    }
    let rate = inp.d.models[m].rate * (1.0 - 1e-9);
    best.iter().position(|&r| r >= rate).unwrap_or(0) as u32
}

/// The largest GPC budget [`min_gpcs`] searches (beyond it the cut is left out).
const MAX_KNAPSACK: usize = 20_000;

/// What a tier minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// GPUs re-cut or added: Σ_ℓ y[ℓ].
    Changed,
    /// GPUs used: Σ_t keep[t] + Σ_ℓ y[ℓ].
    Used,
    /// Instances started: Σ new[m,k].
    Started,
}

fn goal(m: &Model, g: Goal) -> Expression {
    match g {
        Goal::Changed => m.cuts.changed(),
        Goal::Used => m.cuts.used(),
        Goal::Started => m.cuts.started(),
    }
}

/// The MIP start of tier 2: nothing kept, the from-scratch plan's pools and layouts.
fn scratch_start(b: &Builder, inp: &Input<'_>, m: &Model, scratch: &Plan) -> Vec<f64> {
    let (per_layout, counts) = plan_counts(&inp.d.sizes, &inp.d.names(), scratch);
    let mut cols = vec![0.0; b.num_vars()];
    for (mi, cm) in counts.iter().enumerate() {
        for (k, &c) in cm.iter().enumerate() {
            if let Some(&(_, v)) = m.z[mi][k].iter().find(|(o, _)| o.n == c) {
                cols[v.col] = 1.0;
            }
            if let Some(v) = m.cuts.new[mi][k] {
                cols[v.col] = c as f64;
            }
        }
    }
    m.cuts
        .supply
        .set_start(&inp.d.sizes, &per_layout, &mut cols);
    cols
}

/// Solves one tier under the optima of the tiers before it (`fixed`: goal ≤ value), started
/// from `start` (column values, or the from-scratch plan).
fn tier(
    inp: &Input<'_>,
    gpus: u32,
    opts: &PlanOptions,
    minimise: Goal,
    fixed: &[(Goal, f64)],
    from: Start<'_>,
) -> Result<(Outcome, Model), Error> {
    let (b, m) = build(inp, gpus);
    let cols = from.columns(|p| scratch_start(&b, inp, &m, p));
    let fixed = fixed.iter().map(|&(g, v)| (goal(&m, g), v));
    solve_tier(b, goal(&m, minimise), fixed, &cols, opts)
        .map(|o| (o, m))
        .map_err(|f| match f {
            Failure::Infeasible => Error::Internal(format!(
                "SLA-aware re-plan ({minimise:?}): no target within {gpus} GPUs, although the from-scratch plan fits"
            )),
            f => f.into_error("SLA-aware re-plan MILP"),
        })
}

/// Tiers 2, (2b) and 3, each under the optima before it and started from the last solution.
fn solve_tiers(
    inp: &Input<'_>,
    limit: u32,
    opts: &PlanOptions,
    slack: bool,
    scratch: &Plan,
) -> Result<(Vec<Tier>, Outcome, Model), Error> {
    let order = tier_order(
        Goal::Changed,
        slack.then_some((Goal::Used, "gpus-used")),
        Goal::Started,
    );
    lexicographic(
        &order,
        scratch,
        |g, fixed, from| tier(inp, limit, opts, g, fixed, from),
        |_, name, o| tier_report(name, o),
    )
}

/// The chosen pool of every (model, size) in a solution.
fn chosen(m: &Model, out: &Outcome) -> Vec<Vec<Option<PoolOption>>> {
    m.z.iter()
        .map(|zm| {
            zm.iter()
                .map(|zk| zk.iter().find(|&&(_, v)| out.int(v) == 1).map(|&(o, _)| o))
                .collect()
        })
        .collect()
}

/// Per type, its instances per (model, size); per (model, size), all kept instances
/// (`models` models, `nk` sizes).
pub(super) fn kept_counts(
    models: usize,
    nk: usize,
    cur: &Current,
) -> (Vec<Vec<Vec<u32>>>, Vec<Vec<u32>>) {
    let mut all = vec![vec![0u32; nk]; models];
    let cnt = cur
        .types
        .iter()
        .map(|(cfg, gpus, _)| {
            let mut c = vec![vec![0u32; nk]; models];
            for &(k, _, m) in cfg {
                if let Some(m) = m {
                    c[m][k] += 1;
                    all[m][k] = all[m][k].saturating_add(gpus.len() as u32);
                }
            }
            c
        })
        .collect();
    (cnt, all)
}

/// Transition capacity under the queueing model: the instances of (m, k) that are up form
/// one pool at its best point, carrying its admissible rate (memoised per pool size).
pub(crate) struct PoolCapacity<'a> {
    d: &'a RateData,
    table: &'a PoolTable<'a>,
    memo: RefCell<HashMap<(usize, usize, u32), f64>>,
}

impl PoolCapacity<'_> {
    fn alpha(&self, m: usize, k: usize, n: u32) -> f64 {
        if n == 0 {
            return 0.0;
        }
        *self
            .memo
            .borrow_mut()
            .entry((m, k, n))
            .or_insert_with(|| self.table.best(m, k, n).map_or(0.0, |o| o.rate))
    }
}

impl Capacity for PoolCapacity<'_> {
    fn count(&self, layout: &[migopt_models::Assignment]) -> Vec<u32> {
        count_instances(&self.d.sizes, &self.d.names(), layout)
    }
    fn of(&self, counts: &[u32]) -> Vec<f64> {
        let nk = self.d.sizes.profiles.len();
        (0..self.d.models.len())
            .map(|m| {
                (0..nk)
                    .map(|k| self.alpha(m, k, counts.get(m * nk + k).copied().unwrap_or(0)))
                    .sum()
            })
            .collect()
    }
}

/// The SLA-aware min-gpus re-plan (see the module docs).
pub(super) fn replan(
    current: &Plan,
    scenario: &Scenario,
    opts: &ReplanOptions,
) -> Result<super::Replan, Error> {
    opts.plan.sla.check()?;
    let popts = opts.plan.with_deadline();
    let d = data::rate_data(
        scenario,
        &crate::sla::open_params(&popts.params),
        popts.rules,
    )?;
    let cur = read_current(&d, scenario, current)?;
    let t0 = Instant::now();
    let (scratch, first) = needed(scenario, &popts, t0)?;
    let g_star = scratch.gpus_used() as u32;
    let mut tiers = vec![first];
    let limit = g_star.saturating_add(opts.gpu_slack);
    let job = Job {
        scenario,
        data: &d,
        opts: &popts,
        started: t0,
    };
    let table = PoolTable::new(&job);
    let (cnt, kept) = kept_counts(d.models.len(), d.sizes.profiles.len(), &cur);
    let rates: Vec<f64> = d.models.iter().map(|m| m.rate).collect();
    let most = |k: usize| limit.saturating_mul(d.sizes.per_gpu(k).max(1));
    let options = table.options(&rates, &|m, k| kept[m][k].min(most(k)), &most)?;
    let inp = Input {
        d: &d,
        cur: &cur,
        cnt,
        options,
    };
    let (later, out, model) = solve_tiers(&inp, limit, &popts, opts.gpu_slack > 0, &scratch)?;
    tiers.extend(later);
    let status = proven_status(&tiers);
    let pools = chosen(&model, &out);
    let point = |m: usize, k: usize| {
        pools[m][k].map_or_else(|| d.point(m, k), |o| (o.point.batch, o.point.procs))
    };
    let solved = Solved {
        cuts: &model.cuts,
        out: &out,
    };
    let (target_gpus, changes) = target(&d.sizes, &d.names(), &point, &cur, current, &solved);
    let cap = PoolCapacity {
        d: &d,
        table: &table,
        memo: RefCell::new(HashMap::new()),
    };
    let ((target_gpus, changes), transition) = hand_over(
        &cap,
        &d.names(),
        current,
        cur.slots,
        (target_gpus, changes),
        opts,
        |m| d.models[m].rate,
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut plan = target_plan(
        &d,
        scenario,
        &popts,
        target_gpus,
        status,
        &scratch.report,
        seconds,
    )?;
    plan.solver = "sla-replan".into();
    plan.model_rates = pool_rates(&d, &pools);
    Ok(assemble(plan, changes, tiers, status, transition))
}

/// Tier 1: the SLA-aware from-scratch plan of the new load and its tier.
fn needed(scenario: &Scenario, popts: &PlanOptions, t0: Instant) -> Result<(Plan, Tier), Error> {
    let scratch = crate::plan(scenario, SolverKind::Sla, popts)?;
    let g = scratch.gpus_used() as f64;
    let tier = Tier::from_scratch(
        "gpus-needed",
        g,
        &scratch.report,
        t0.elapsed().as_secs_f64(),
    );
    Ok((scratch, tier))
}

/// The rate each model's chosen pools admit (the target's provisioned rates).
fn pool_rates(d: &RateData, pools: &[Vec<Option<PoolOption>>]) -> Vec<ModelRate> {
    d.models
        .iter()
        .zip(pools)
        .map(|(rm, pm)| ModelRate {
            model: rm.name.as_str().into(),
            rate_qps: pm.iter().flatten().map(|o| o.rate).sum(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ParvaGPU's scenario 3 (5 A100s under the SLA-aware planner).
    fn scenario() -> Scenario {
        let dir = migopt_profiles::parvagpu::dataset_dir();
        let import = migopt_profiles::parvagpu::read(&dir).unwrap();
        import.scenario(&import.scenarios[2]).unwrap()
    }

    /// The fewest GPCs over every choice of one option (or none) per size, where there are
    /// at most a million choices.
    fn brute_gpcs(inp: &Input<'_>, m: usize) -> Option<u32> {
        let om = &inp.options[m];
        let total: usize = om.iter().map(|ok| ok.len() + 1).product();
        if total > 1_000_000 {
            return None;
        }
        let mut best: Option<u32> = None;
        for mut code in 0..total {
            let (mut gpcs, mut rate) = (0u32, 0.0);
            for (k, ok) in om.iter().enumerate() {
                let pick = code % (ok.len() + 1);
                code /= ok.len() + 1;
                if pick > 0 {
                    let o = ok[pick - 1];
                    gpcs += o.n * inp.d.sizes.profiles[k].compute;
                    rate += o.rate;
                }
            }
            if rate >= inp.d.models[m].rate * (1.0 - 1e-9) {
                best = Some(best.map_or(gpcs, |b| b.min(gpcs)));
            }
        }
        best
    }

    #[test]
    fn pool_capacity_of_a_from_scratch_plan_is_its_provisioned_rate() {
        let s = scenario();
        let opts = PlanOptions {
            objective: migopt_models::Objective::MinGpus,
            ..Default::default()
        };
        let plan = crate::plan(&s, SolverKind::Sla, &opts).unwrap();
        let d = data::rate_data(&s, &crate::sla::open_params(&opts.params), opts.rules).unwrap();
        let job = Job {
            scenario: &s,
            data: &d,
            opts: &opts,
            started: Instant::now(),
        };
        let table = PoolTable::new(&job);
        let cap = PoolCapacity {
            d: &d,
            table: &table,
            memo: RefCell::new(HashMap::new()),
        };
        let all: Vec<_> = plan.gpus.iter().flat_map(|g| g.layout.clone()).collect();
        let got = cap.of(&cap.count(&all));
        for (m, r) in plan.model_rates.iter().enumerate() {
            assert!(
                (got[m] - r.rate_qps).abs() <= 1e-6 * r.rate_qps.max(1.0),
                "{}: pool capacity {} vs provisioned {}",
                r.model,
                got[m],
                r.rate_qps
            );
            assert!(got[m] >= d.models[m].rate * (1.0 - 1e-9));
        }
        // The GPC knapsack of the cut agrees with brute force over the option table.
        let rates: Vec<f64> = d.models.iter().map(|m| m.rate).collect();
        let cur = Current {
            types: Vec::new(),
            slots: 0,
            retired: Vec::new(),
        };
        let inp = Input {
            d: &d,
            cur: &cur,
            cnt: Vec::new(),
            options: table
                .options(&rates, &|_, _| 0, &|_| crate::slagpus::MAX_POOL)
                .unwrap(),
        };
        let mut checked = 0;
        for m in 0..d.models.len() {
            let got = min_gpcs(&inp, m);
            if let Some(want) = brute_gpcs(&inp, m) {
                assert_eq!(got, want, "model {m}");
                checked += 1;
            }
        }
        assert!(checked >= d.models.len() / 2, "{checked} models checked");
        // Capacity grows with instances and is 0 without them.
        assert!(cap
            .of(&vec![0; d.models.len() * d.sizes.profiles.len()])
            .iter()
            .all(|&c| c == 0.0));
    }
}
