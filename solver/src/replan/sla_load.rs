//! The SLA-aware max-load re-plan (`migopt replan --solver sla --objective max-load`, or
//! `--objective sla-capacity`): on the current plan's N GPUs, the target that carries the
//! most load with every model's queries within their SLA at the percentile, then re-cuts
//! the fewest GPUs, then starts the fewest instances.
//!
//! **The queueing model is slaload's.** A plan's load λ is what `plan --objective
//! sla-capacity` maximises ([`crate::slaload`]): the instances of model m on size k form a
//! pool that serves one interval I = (t_a, t_b] of the model's query batches (candidates c
//! = (k, I)), an M/G/n queue with admissible λ per instance count, cap_c(n) (a breakpoint
//! table, with the margin and the simulation loop's cuts). The SLA-aware min-gpus re-plan
//! ([`super::sla`]) uses slagpus's model instead (server-side batching of single requests,
//! one operating point per pool): that model plans rate targets and has no notion of query
//! batches, so it cannot give max-load's λ (the two do not describe the same workload: at
//! the rates λ*·s_m of ParvaGPU's scenario 2 on 64 A100s, slagpus needs 18 GPUs; at those of
//! the default H100 scenario on 8 GPUs, 1). Re-planning at the rates λ*·s_m with slagpus's
//! tiers would therefore give a target that promises λ* without carrying it under the model
//! that defines λ*. Here every tier uses slaload's candidates, so tier 1's λ* is attained
//! and the target's λ is measured the way `plan` measures it.
//!
//! At a fixed λ candidate c needs N_c(λ) = min{n : cap_c(n) ≥ λ} instances (none exists where
//! no pool on the server carries λ). The kept GPUs of each current type t (c_t GPUs, with
//! cnt_t[m,k] instances of model m on size k each, as in [`super`]) join the pools of their
//! models; new instances come from new cuts y[ℓ] (the layout encoding of `supply`):
//!
//! ```text
//!   tier 1    λ* = SLA-aware max-load optimum on the N GPUs (slaload's breakpoint search)
//!   tier 2    minimise  Σ_ℓ y[ℓ]              at λ_f = (1 − slack)·λ*   (GPUs re-cut or added)
//!  (tier 2b   with --load-slack > 0: the largest breakpoint λ ≤ λ* at which tier 2's
//!             optimum still fits: a binary search over breakpoints, as tier 1's)
//!   tier 3    minimise  Σ_{m,k} new[m,k]      under every optimum above  (instances started)
//!   select    Σ_{c ∋ j} e[m,c] = 1, one range per size, ordered sizes (slaload's
//!             `cover`, `one range` and `order`)                          ∀ m, segment j
//!   fits      e[m,c] = 0 where N_c(λ) does not exist
//!   pool      Σ_{c on k} N_c(λ)·e[m,c] ≤ Σ_t cnt_t[m,k]·keep[t] + new[m,k]   ∀ m, k
//!   gpcs      Σ_c C_k·N_c(λ)·e[m,c] ≥ G_m(λ)                              ∀ m
//!   supply    Σ_m new[m,k] ≤ Σ_ℓ c[ℓ,k]·y[ℓ]                              ∀ k
//!   count     Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ N
//!   keep[t] ∈ {0..c_t}, e ∈ {0, 1}, new, y ∈ ℤ≥0
//! ```
//!
//! A pool may hold more instances than N_c(λ) (kept ones): the admissible rate only grows
//! with n. Kept instances of a size that serves no interval of their model carry nothing
//! in the model (the target's routes give them no share). G_m(λ) is the fewest GPCs any
//! selection of m's pools needs at λ, by dynamic programming over the chains of intervals
//! ([`best_chain`]): a valid cut that lifts the LP bound from fractional selections to whole
//! ones, as the knapsack cuts of the other re-plans do. The from-scratch plan of tier 1 is
//! a solution (nothing kept), so tier 2 starts from it; each tier is proven on its own.
//! With slack 0, λ_f = λ* exactly (a breakpoint, where slaload's plan fits).
//!
//! **The target's load** is measured, not assumed: the largest λ at which the target's
//! instances hold a selection for every model (per model, the best chain of its pools, the
//! smallest admissible λ along it maximised; [`IntervalCapacity`]), so it is ≥ λ_f, and
//! with slack 0 it is λ*.
//!
//! **Transition.** Each model keeps min(its rate in the current plan, λ_target·s_m) during
//! every step, judged by the same pools: the instances of the model that are up, each size
//! one pool, carry s_m·(best chain's λ). Never more than the current plan carries under this
//! model (a fluid current plan may carry less here than its provisioned rate).

use super::current::{read_types, Current};
use super::cuts::{keep_vars, new_cuts, plan_counts, Cuts};
use super::handover::{count_instances, hand_over};
use super::sla::kept_counts;
use super::target::{assemble, pad_to, server_gpus, target, Solved};
use super::tiers::LoadGoal as Goal;
use super::tiers::{lexicographic, proven_status, solve_tier, tier_order, tier_report, Start};
use super::transition::Capacity;
use super::{ReplanOptions, Tier};
use crate::data::{self, LoadData};
use crate::milp::{lin, Builder, Failure, Outcome, Var};
use crate::planner::{Job, LoadPlan};
use crate::slaload::{self, Candidate};
use crate::{PlanOptions, SolverKind};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, Objective, Plan, Route, Scenario, SolveReport, SolveStatus};
use std::cell::Cell;
use std::time::Instant;

/// The data every tier is built from.
struct Input<'a> {
    d: &'a LoadData,
    cur: &'a Current,
    /// Per type t, its instances per (model, size): cnt_t[m][k].
    cnt: Vec<Vec<Vec<u32>>>,
    /// Per model, slaload's candidate pools.
    cands: &'a [Vec<Candidate>],
    /// The lowest λ any tier plans at: the candidates that fit there get a binary (the same
    /// columns in every tier, so one tier's solution starts the next).
    floor: f64,
}

/// The built model of a tier.
struct Model {
    /// Per model: (candidate index, e).
    e: Vec<Vec<(usize, Var)>>,
    /// Kept GPUs, new instances and new cuts.
    cuts: Cuts,
}

fn build(inp: &Input<'_>, lambda: f64) -> (Builder, Model) {
    let d = inp.d;
    let mut b = Builder::new();
    let keep = keep_vars(&mut b, inp.cur);
    let e = select(&mut b, inp, lambda);
    let nk = d.sizes.profiles.len();
    let new: Vec<Vec<Option<Var>>> = (0..d.models.len())
        .map(|m| {
            (0..nk)
                .map(|k| {
                    let most = d.gpus.saturating_mul(d.sizes.per_gpu(k));
                    (most > 0).then(|| b.int(format!("new[{m},{k}]"), most as f64))
                })
                .collect()
        })
        .collect();
    for (m, (em, newm)) in e.iter().zip(&new).enumerate() {
        for (k, &v) in newm.iter().enumerate() {
            pool(&mut b, inp, &keep, em, v, (m, k), lambda);
        }
        gpcs(&mut b, inp, em, m, lambda);
    }
    // supply, and count  Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ N
    let cuts = new_cuts(&mut b, &d.sizes, keep, new, d.gpus);
    (b, Model { e, cuts })
}

/// `select` (slaload's `cover`, `one range`, `order`) and `fits  e[m,c] = 0 where N_c(λ)
/// does not exist`: the binaries e[m,c] of the candidates that fit at the floor.
fn select(b: &mut Builder, inp: &Input<'_>, lambda: f64) -> Vec<Vec<(usize, Var)>> {
    let nk = inp.d.sizes.profiles.len();
    inp.cands
        .iter()
        .enumerate()
        .map(|(m, cm)| {
            let em: Vec<(usize, u32, Var)> = cm
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    slaload::needed(c, inp.floor)?;
                    let n = slaload::needed(c, lambda).unwrap_or(0);
                    Some((i, n, b.bin(format!("e[{m},{},{}..{}]", c.k, c.lo, c.hi))))
                })
                .collect();
            slaload::constrain_model(b, nk, cm, &em);
            for &(i, _, v) in &em {
                if slaload::needed(&cm[i], lambda).is_none() {
                    b.push(constraint!(v.v <= 0.0));
                }
            }
            em.into_iter().map(|(i, _, v)| (i, v)).collect()
        })
        .collect()
}

/// `pool  Σ_{c on k} N_c(λ)·e[m,c] ≤ Σ_t cnt_t[m,k]·keep[t] + new[m,k]`
fn pool(
    b: &mut Builder,
    inp: &Input<'_>,
    keep: &[Var],
    em: &[(usize, Var)],
    new: Option<Var>,
    (m, k): (usize, usize),
    lambda: f64,
) {
    let cm = &inp.cands[m];
    let need: Vec<(f64, Var)> = em
        .iter()
        .filter(|(i, _)| cm[*i].k == k)
        .filter_map(|&(i, v)| Some((slaload::needed(&cm[i], lambda)? as f64, v)))
        .collect();
    if need.is_empty() {
        // No pool of m on k: its kept instances there carry nothing for m.
        return;
    }
    let need = lin(need);
    let kept = lin(inp
        .cnt
        .iter()
        .zip(keep)
        .filter(|(c, _)| c[m][k] > 0)
        .map(|(c, &v)| (c[m][k] as f64, v)));
    let new = lin(new.map(|v| (1.0, v)));
    // need − kept ≤ new: the pool, with the row's terms in the order they always had.
    b.push(constraint!(need - kept <= new));
}

/// `gpcs  Σ_c C_k·N_c(λ)·e[m,c] ≥ G_m(λ)`, G_m(λ) the fewest GPCs of any selection of model
/// m's pools at λ ([`best_chain`]).
fn gpcs(b: &mut Builder, inp: &Input<'_>, em: &[(usize, Var)], m: usize, lambda: f64) {
    let compute = |k: usize| inp.d.sizes.profiles[k].compute as f64;
    let cm = &inp.cands[m];
    let size = |c: &Candidate| Some(slaload::needed(c, lambda)? as f64 * compute(c.k));
    let classes = inp.d.models[m].classes.len();
    let nk = inp.d.sizes.profiles.len();
    let Some(need) = best_chain(cm, nk, classes, size, |a, v| a + v, |x, y| x < y, 0.0) else {
        return;
    };
    let used = lin(em.iter().filter_map(|&(i, v)| Some((size(&cm[i])?, v))));
    b.push(constraint!(used >= need));
}

/// The best chain of a model's pools: intervals that cover its classes `0..classes` in
/// order, each on a larger size than the one before (exactly the selections slaload's
/// `cover`, `one range` and `order` allow), each candidate valued by `val` (`None`: not
/// usable), values combined along the chain by `join` from `empty`, `better` choosing
/// between chains. Dynamic programming over (size, class boundary); `None` when no chain
/// exists.
fn best_chain<V: Copy>(
    cands: &[Candidate],
    nk: usize,
    classes: usize,
    val: impl Fn(&Candidate) -> Option<V>,
    join: impl Fn(V, V) -> V,
    better: impl Fn(V, V) -> bool,
    empty: V,
) -> Option<V> {
    // g[j]: the best chain covering classes 0..j on the sizes seen so far.
    let mut g: Vec<Option<V>> = vec![None; classes + 1];
    g[0] = Some(empty);
    for k in 0..nk {
        let before = g.clone();
        for c in cands.iter().filter(|c| c.k == k) {
            let (Some(a), Some(v)) = (before[c.lo], val(c)) else {
                continue;
            };
            let x = join(a, v);
            if g[c.hi].is_none_or(|y| better(x, y)) {
                g[c.hi] = Some(x);
            }
        }
    }
    g[classes]
}

/// Capacity under slaload's pools: per model, the instances of each size that are up form
/// one pool, and the model carries s_m·λ_m, λ_m the best chain's smallest admissible λ.
pub(crate) struct IntervalCapacity<'a> {
    d: &'a LoadData,
    cands: &'a [Vec<Candidate>],
    names: Vec<String>,
}

impl IntervalCapacity<'_> {
    /// The largest λ model m's pools carry with `n[k]` instances of each size.
    fn lambda(&self, m: usize, n: &[u32]) -> f64 {
        let at = |c: &Candidate| {
            let i = (n.get(c.k).copied().unwrap_or(0) as usize).min(c.cap.len() - 1);
            Some(c.cap[i])
        };
        let classes = self.d.models[m].classes.len();
        let nk = self.d.sizes.profiles.len();
        best_chain(
            &self.cands[m],
            nk,
            classes,
            at,
            f64::min,
            |x, y| x > y,
            f64::INFINITY,
        )
        .filter(|x| x.is_finite())
        .unwrap_or(0.0)
    }

    /// The largest λ (all models at their shares) the instances `counts` carry.
    fn plan_lambda(&self, counts: &[u32]) -> f64 {
        let nk = self.d.sizes.profiles.len();
        (0..self.d.models.len())
            .filter(|&m| self.d.models[m].share > 0.0)
            .map(|m| self.lambda(m, &counts[m * nk..(m + 1) * nk]))
            .fold(f64::INFINITY, f64::min)
    }
}

impl Capacity for IntervalCapacity<'_> {
    fn count(&self, layout: &[migopt_models::Assignment]) -> Vec<u32> {
        count_instances(&self.d.sizes, &self.names, layout)
    }
    fn of(&self, counts: &[u32]) -> Vec<f64> {
        let nk = self.d.sizes.profiles.len();
        let mut full = counts.to_vec();
        full.resize(self.d.models.len() * nk, 0);
        (0..self.d.models.len())
            .map(|m| self.d.models[m].share * self.lambda(m, &full[m * nk..(m + 1) * nk]))
            .collect()
    }
}

/// A tier's objective; λ is maximised over the breakpoints (tier 2b), each a solve that
/// minimises the GPUs re-cut or added.
fn goal(m: &Model, g: Goal) -> Expression {
    match g {
        Goal::Changed | Goal::Load => m.cuts.changed(),
        Goal::Started => m.cuts.started(),
    }
}

/// The MIP start of tier 2: nothing kept, the from-scratch plan's pools (read off its
/// routes: the classes each (model, size) serves), instances and layouts.
fn scratch_start(b: &Builder, inp: &Input<'_>, m: &Model, scratch: &Plan) -> Vec<f64> {
    let d = inp.d;
    let names: Vec<String> = d.models.iter().map(|x| x.name.clone()).collect();
    let (per_layout, counts) = plan_counts(&d.sizes, &names, scratch);
    let mut cols = vec![0.0; b.num_vars()];
    for (mi, model) in d.models.iter().enumerate() {
        for (k, &count) in counts[mi].iter().enumerate() {
            let served: Vec<usize> = scratch
                .routes
                .iter()
                .filter(|r| {
                    r.model.as_str() == model.name && d.sizes.index(r.profile.as_str()) == Some(k)
                })
                .filter_map(|r| model.classes.iter().position(|c| c.batch == r.batch))
                .collect();
            let (Some(&lo), Some(&hi)) = (served.iter().min(), served.iter().max()) else {
                continue;
            };
            let cm = &inp.cands[mi];
            let chosen = m.e[mi]
                .iter()
                .find(|(i, _)| (cm[*i].k, cm[*i].lo, cm[*i].hi) == (k, lo, hi + 1));
            if let Some(&(_, v)) = chosen {
                cols[v.col] = 1.0;
            }
            if let Some(v) = m.cuts.new[mi][k] {
                cols[v.col] = count as f64;
            }
        }
    }
    m.cuts.supply.set_start(&d.sizes, &per_layout, &mut cols);
    cols
}

/// Solves one tier at λ under the optima before it (`fixed`: goal ≤ value); `None` when
/// HiGHS proves it infeasible.
fn solve_at(
    inp: &Input<'_>,
    lambda: f64,
    opts: &PlanOptions,
    minimise: Goal,
    fixed: &[(Goal, f64)],
    from: &Start<'_>,
) -> Result<Option<(Outcome, Model)>, Error> {
    let (b, m) = build(inp, lambda);
    let cols = from.columns(|p| scratch_start(&b, inp, &m, p));
    let fixed = fixed.iter().map(|&(g, v)| (goal(&m, g), v));
    match solve_tier(b, goal(&m, minimise), fixed, &cols, opts) {
        Ok(o) => Ok(Some((o, m))),
        Err(Failure::Infeasible) => Ok(None),
        Err(f) => Err(f.into_error("SLA-aware max-load re-plan MILP")),
    }
}

/// What the tier-2b search found.
struct MostLoad {
    /// The largest breakpoint λ at which the tiers before still fit (λ_f when none above it
    /// does).
    lambda: f64,
    /// The status of the worst search step.
    status: SolveStatus,
    /// Wall time of the whole search, seconds.
    seconds: f64,
    /// The solution at λ, if a breakpoint above λ_f fits.
    solved: Option<(Outcome, Model)>,
}

/// Tier 2b: the largest breakpoint λ in [λ_f, λ*] at which the tiers before still fit, and
/// the solution there (λ_f itself when no breakpoint above it does); the status is that of
/// the worst search step, the seconds those of the whole search.
fn most_load(
    inp: &Input<'_>,
    top: f64,
    opts: &PlanOptions,
    fixed: &[(Goal, f64)],
    from: &Start<'_>,
) -> Result<MostLoad, Error> {
    let mut points: Vec<f64> = slaload::breakpoints(inp.cands)
        .into_iter()
        .filter(|&x| x > inp.floor && x <= top * (1.0 + 1e-12))
        .collect();
    points.insert(0, inp.floor);
    let t0 = Instant::now();
    let mut status = SolveStatus::Optimal;
    let found = slaload::largest_fit(&points, |lambda| {
        let r = solve_at(inp, lambda, opts, Goal::Changed, fixed, from)?;
        if let Some((o, _)) = &r {
            if o.status != SolveStatus::Optimal {
                status = o.status;
            }
        }
        Ok(r)
    })?;
    let seconds = t0.elapsed().as_secs_f64();
    let (lambda, solved) = match found {
        Some((i, r)) => (points[i], Some(r)),
        None => (inp.floor, None),
    };
    Ok(MostLoad {
        lambda,
        status,
        seconds,
        solved,
    })
}

/// Tiers 2, (2b) and 3: the tiers, the last solution and model, and the λ tier 3 planned at.
fn solve_tiers(
    inp: &Input<'_>,
    top: f64,
    opts: &PlanOptions,
    slack: bool,
    scratch: &Plan,
) -> Result<(Vec<Tier>, Outcome, Model, f64), Error> {
    let order = tier_order(
        Goal::Changed,
        slack.then_some((Goal::Load, "load")),
        Goal::Started,
    );
    let lambda = Cell::new(inp.floor);
    let load_status = Cell::new((SolveStatus::Optimal, 0.0));
    let (tiers, out, model) = lexicographic(
        &order,
        scratch,
        |g, fixed, from| {
            if g == Goal::Load {
                let found = most_load(inp, top, opts, fixed, &from)?;
                lambda.set(found.lambda);
                load_status.set((found.status, found.seconds));
                if let Some(r) = found.solved {
                    return Ok(r);
                }
            }
            solve_at(inp, lambda.get(), opts, g, fixed, &from)?.ok_or_else(|| {
                Error::Internal(format!(
                    "SLA-aware max-load re-plan ({g:?}): no target at λ = {}, although the from-scratch plan carries it",
                    lambda.get()
                ))
            })
        },
        |g, name, o| match g {
            // The λ found is exact (the next breakpoint was shown not to fit); later tiers
            // plan at it (it fixes λ, not an expression).
            Goal::Load => {
                let l = lambda.get();
                let (status, seconds) = load_status.get();
                let t = Tier {
                    name: name.into(),
                    objective: l,
                    bound: l,
                    gap: 0.0,
                    status,
                    seconds: seconds.max(o.seconds),
                };
                (t, None)
            }
            _ => tier_report(name, o),
        },
    )?;
    Ok((tiers, out, model, lambda.get()))
}

/// The SLA-aware max-load re-plan (see the module docs).
pub(super) fn replan(
    current: &Plan,
    scenario: &Scenario,
    opts: &ReplanOptions,
) -> Result<super::Replan, Error> {
    let started = Instant::now();
    opts.plan.sla.check()?;
    opts.check_load_slack()?;
    let popts = opts.plan.with_deadline();
    let params = crate::sla::open_params(&popts.params);
    let names: Vec<String> = scenario.models.iter().map(|m| m.name.to_string()).collect();
    let sizes = crate::data::Sizes::new(scenario, popts.rules)?;
    let cur = read_types(&sizes, &names, scenario, current, &|_, _| 0.0)?;
    // The server is the scenario's GPUs.
    let mut server = scenario.clone();
    server.gpu_count = server_gpus(scenario);
    let d = data::load_data(&server, &params, popts.rules)?;
    let job = Job {
        scenario: &server,
        data: &d,
        opts: &popts,
        started,
    };
    let cands = slaload::all_candidates(&job)?;
    // Tier 1: `plan --objective sla-capacity` on these GPUs.
    let scratch = crate::finish::load(
        &job,
        &SolverKind::Sla.name(),
        slaload::solve_with(&job, &cands)?,
    )?;
    let best = scratch.report.objective;
    let seconds = started.elapsed().as_secs_f64();
    let first = Tier::from_scratch("load-max", best, &scratch.report, seconds);
    let (cnt, _) = kept_counts(d.models.len(), d.sizes.profiles.len(), &cur);
    let slack = opts.load_slack > 0.0;
    let inp = Input {
        d: &d,
        cur: &cur,
        cnt,
        cands: &cands,
        floor: if slack {
            best * (1.0 - opts.load_slack)
        } else {
            best
        },
    };
    let (later, out, model, _) = solve_tiers(&inp, best, &popts, slack, &scratch)?;
    let mut tiers = vec![first];
    tiers.extend(later);
    let status = proven_status(&tiers);
    let finished = Finished {
        job: &job,
        cands: &cands,
        cur: &cur,
        current,
        scratch: &scratch,
        status,
        opts,
    };
    let (plan, changes, transition) = finished.target(&model, &out)?;
    Ok(assemble(plan, changes, tiers, status, transition))
}

/// What the target is read with.
struct Finished<'a> {
    job: &'a Job<'a, LoadData>,
    cands: &'a [Vec<Candidate>],
    cur: &'a Current,
    current: &'a Plan,
    scratch: &'a Plan,
    status: SolveStatus,
    opts: &'a ReplanOptions,
}

impl Finished<'_> {
    /// The target plan (its λ measured on its instances), every GPU's fate, the transition.
    fn target(
        &self,
        model: &Model,
        out: &Outcome,
    ) -> Result<(Plan, Vec<super::GpuChange>, super::transition::Transition), Error> {
        let d = self.job.data;
        let names: Vec<String> = d.models.iter().map(|m| m.name.clone()).collect();
        let solved = Solved {
            cuts: &model.cuts,
            out,
        };
        let point = |m: usize, k: usize| (d.models[m].max_batch_on(k), 1);
        let (gpus, changes) = target(&d.sizes, &names, &point, self.cur, self.current, &solved);
        let cap = IntervalCapacity {
            d,
            cands: self.cands,
            names: names.clone(),
        };
        let lambda = cap.plan_lambda(&total_counts(&cap, gpus.iter().map(|g| &g.layout[..])));
        let ((gpus, changes), transition) = hand_over(
            &cap,
            &names,
            self.current,
            self.cur.slots,
            (gpus, changes),
            self.opts,
            |m| lambda * d.models[m].share,
        )?;
        let mut gpus = gpus;
        pad_to(&mut gpus, self.job.scenario.gpu_count);
        let best = self.scratch.report.objective;
        let report = SolveReport {
            status: self.status,
            objective: lambda,
            bound: Some(best),
            gap: Some(if best > 1e-9 {
                ((best - lambda) / best).max(0.0)
            } else {
                0.0
            }),
            lp_bound: None,
            solve_seconds: self.job.started.elapsed().as_secs_f64(),
            gpcs_used: None,
        };
        let eval = slaload::evaluation(d, lambda, routes(self.cands, model, out, d));
        let mut plan =
            crate::finish::load(self.job, "sla-replan", LoadPlan { gpus, eval, report })?;
        plan.objective_kind = Objective::MaxLoad;
        plan.report.gpcs_used = Some(plan.gpcs_used()?);
        Ok((plan, changes, transition))
    }
}

/// Instances per (model, size), flattened model-major, of a set of layouts.
fn total_counts<'a>(
    cap: &IntervalCapacity<'_>,
    layouts: impl Iterator<Item = &'a [migopt_models::Assignment]>,
) -> Vec<u32> {
    let nk = cap.d.sizes.profiles.len();
    let mut n = vec![0u32; cap.d.models.len() * nk];
    for l in layouts {
        for (x, c) in n.iter_mut().zip(cap.count(l)) {
            *x += c;
        }
    }
    n
}

/// The target's routes: every class of each chosen pool goes to its size.
fn routes(cands: &[Vec<Candidate>], model: &Model, out: &Outcome, d: &LoadData) -> Vec<Route> {
    let chosen = model.e.iter().enumerate().flat_map(|(m, em)| {
        em.iter()
            .filter(|&&(_, v)| out.int(v) == 1)
            .map(move |&(i, _)| (m, i))
    });
    chosen.flat_map(|(m, i)| cands[m][i].routes(d, m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(k: usize, lo: usize, hi: usize, cap: f64) -> Candidate {
        Candidate {
            k,
            lo,
            hi,
            cap: vec![0.0, cap],
        }
    }

    /// The best chain covers the classes in order on increasing sizes: a larger size never
    /// takes smaller batches than a smaller one, each size serves one interval.
    #[test]
    fn chains_cover_the_classes_on_increasing_sizes() {
        let bottleneck = |cands: &[Candidate]| {
            best_chain(
                cands,
                2,
                3,
                |c| Some(c.cap[1]),
                f64::min,
                |x, y| x > y,
                f64::INFINITY,
            )
        };
        // Size 1 on classes 0..2 and size 0 on 2..3 is out of order: only the chains on one
        // size (size 0 on 0..3: 1.0) and (size 0 on 0..1, size 1 on 1..3: min 2, 3) remain.
        let cands = [
            cand(1, 0, 2, 10.0),
            cand(0, 2, 3, 10.0),
            cand(0, 0, 3, 1.0),
            cand(0, 0, 1, 2.0),
            cand(1, 1, 3, 3.0),
        ];
        assert_eq!(bottleneck(&cands), Some(2.0));
        // One size cannot serve two intervals (0..1 and 1..3 on size 0).
        let cands = [cand(0, 0, 1, 5.0), cand(0, 1, 3, 5.0), cand(1, 0, 3, 1.0)];
        assert_eq!(bottleneck(&cands), Some(1.0));
        // No chain reaches the last class.
        assert_eq!(bottleneck(&[cand(0, 0, 2, 5.0)]), None);
        // Summed along the chain: the fewest units.
        let sum = best_chain(
            &[cand(0, 0, 1, 2.0), cand(1, 1, 3, 3.0), cand(1, 0, 3, 9.0)],
            2,
            3,
            |c| Some(c.cap[1]),
            |a, v| a + v,
            |x, y| x < y,
            0.0,
        );
        assert_eq!(sum, Some(5.0));
    }
}
