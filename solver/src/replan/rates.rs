//! The min-gpus re-plan (rate targets): the fewest GPUs first, then the fewest GPUs re-cut
//! or added, then the fewest instances started, then the most headroom (a tie-break).
//!
//! GPUs of the current plan with the same layout and assignment are interchangeable, so the
//! MILP counts them by *type* t (c_t GPUs, serving cap_t[m] requests/s of model m each)
//! instead of giving each a keep-binary; new cuts use the layout encoding of `supply`:
//!
//! ```text
//!   tier 1    G* = min-gpus optimum of the new load (its own MILP, proven)
//!   tier 2    minimise  Σ_ℓ y[ℓ]                          (GPUs re-cut or added)
//!  (tier 2b  with --gpu-slack S > 0: the count below is G* + S, and this tier minimises
//!            Σ_t keep[t] + Σ_ℓ y[ℓ], the GPUs used, under the tier-2 optimum)
//!   tier 3    minimise  Σ_{m,k} n[m,k]   s.t. Σ_ℓ y[ℓ] = tier-2 optimum   (instances started)
//!   tier 4    maximise  Σ_m s[m]  under every optimum above (headroom; a tie-break, stopped
//!             at a 2% gap or 200 nodes: the target that absorbs the next load change best)
//!   cover     Σ_t cap_t[m]·keep[t] + Σ_k T_m(k)·n[m,k] ≥ r_m·(1 + s[m])   ∀ m,  0 ≤ s[m] ≤ 0.25
//!   supply    Σ_m n[m,k] ≤ Σ_ℓ c[ℓ,k]·y[ℓ]                           ∀ k
//!   count     Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ G*
//!   keep[t] ∈ {0..c_t}, n, y ∈ ℤ≥0
//! ```
//!
//! The tiers are solved one after the other (each fixes the optimum of the one before), so
//! each is proven on its own and no big-M weights blur the proof. Tier 4 exists because the
//! tiers before it leave many equally good targets, and the tightest of them (every model
//! at exactly its rate) is re-cut again by the next small rise: on a 24-hour diurnal day it
//! cut the re-cuts of the H100 fleet from 19 to 15 and of ParvaGPU's scenario 6 from 26 to
//! 22 (`migopt replay-day`, 24 one-hour intervals, slack 1: BENCHMARKS.md).

use super::current::{read_current, Current};
use super::cuts::{keep_vars, new_cuts, plan_counts, Cuts};
use super::handover::{count_instances, hand_over};
use super::target::{assemble, target, target_plan, Solved};
use super::tiers::{lexicographic, proven_status, tier_order, tier_report, Start, LP_AGE_LIMIT};
use super::{transition, Replan, ReplanOptions, Tier};
use crate::data::{self, RateData};
use crate::milp::{lin, Builder, Failure, Outcome, Sense, Var};
use crate::{mingpus, PlanOptions, SolverKind};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Assignment, Error, Plan, Scenario};
use std::time::Instant;

/// The built tier-2/3 model.
struct Model {
    /// The kept GPUs, new instances and new cuts.
    cuts: Cuts,
    /// Per model: relative headroom s[m] ∈ [0, HEADROOM_CAP] (tie-break tier).
    head: Vec<Var>,
}

/// The tier-2/3 model on at most `gpus` GPUs: cover, knapsack cuts, supply and count.
fn build(d: &RateData, cur: &Current, gpus: u32) -> (Builder, Model) {
    let mut b = Builder::new();
    let keep = keep_vars(&mut b, cur);
    let n = mingpus::instances(&mut b, d, 7.0 * gpus as f64);
    let head: Vec<Var> = (0..d.models.len())
        .map(|mi| b.cont(format!("s[{mi}]"), 0.0, HEADROOM_CAP))
        .collect();
    // cover  Σ_t cap_t[m]·keep[t] + Σ_k T_m(k)·n[m,k] ≥ r_m·(1 + s[m])
    for (mi, m) in d.models.iter().enumerate() {
        let kept = lin(cur
            .types
            .iter()
            .zip(&keep)
            .filter(|((_, _, cap), _)| cap[mi] > 0.0)
            .map(|((_, _, cap), &v)| (cap[mi], v)));
        let served = mingpus::served(d, &n, mi);
        let head = lin([(m.rate, head[mi])]);
        b.push(constraint!(kept + served - head >= m.rate));
    }
    knapsack_cuts(&mut b, d, cur, &keep, &n);
    let cuts = new_cuts(&mut b, &d.sizes, keep, n, gpus);
    (b, Model { cuts, head })
}

/// `gpcs  Σ_t g_t[m]·keep[t] + Σ_k C_k·n[m,k] ≥ G*_m   ∀ m`, g_t[m] the GPCs of type t's
/// instances of model m and G*_m the fewest GPCs that can serve r_m (the knapsack of
/// min-gpus): kept and new instances of m together serve r_m, so together they hold at
/// least G*_m GPCs. Valid for every integer solution (kept instances that no longer serve m
/// only make the left side larger); it lifts the LP bound of tier 2 from fractional
/// instances to whole ones.
fn knapsack_cuts(
    b: &mut Builder,
    d: &RateData,
    cur: &Current,
    keep: &[Var],
    n: &[Vec<Option<Var>>],
) {
    let compute = |k: usize| d.sizes.profiles[k].compute as f64;
    for (mi, m) in d.models.iter().enumerate() {
        let kept = lin(cur.types.iter().zip(keep).filter_map(|((cfg, _, _), &v)| {
            let g: f64 = cfg
                .iter()
                .filter(|&&(_, _, x)| x == Some(mi))
                .map(|&(k, _, _)| compute(k))
                .sum();
            (g > 0.0).then_some((g, v))
        }));
        let new = lin(n[mi]
            .iter()
            .enumerate()
            .filter_map(|(k, v)| Some((compute(k), (*v)?))));
        b.push(constraint!(kept + new >= m.min_gpcs as f64));
    }
}

/// What a tier minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// GPUs re-cut or added: Σ_ℓ y[ℓ].
    Changed,
    /// GPUs used: Σ_t keep[t] + Σ_ℓ y[ℓ].
    Used,
    /// Instances started: Σ n[m,k].
    Started,
    /// Headroom, maximised: −Σ_m s[m].
    Headroom,
}

/// The expression a goal minimises in the model.
fn goal(m: &Model, g: Goal) -> Expression {
    match g {
        Goal::Changed => m.cuts.changed(),
        Goal::Used => m.cuts.used(),
        Goal::Started => m.cuts.started(),
        Goal::Headroom => lin(m.head.iter().map(|&v| (-1.0, v))),
    }
}

/// Solves one tier under the optima of the tiers before it (`fixed`: goal ≤ value).
fn tier(
    d: &RateData,
    cur: &Current,
    gpus: u32,
    opts: &PlanOptions,
    minimise: Goal,
    fixed: &[(Goal, f64)],
    from: Start<'_>,
) -> Result<(Outcome, Model), Error> {
    let (mut b, m) = build(d, cur, gpus);
    let start = from.columns(|p| scratch_start(&b, d, &m, p));
    for &(g, v) in fixed {
        b.push(constraint!(goal(&m, g) <= v));
    }
    let mut ctl = crate::control(opts, false);
    ctl.lp_age_limit = Some(LP_AGE_LIMIT);
    if minimise == Goal::Headroom {
        // A tie-break among equally good targets: near-best is enough, and a node limit
        // keeps it short (and deterministic) where its LP bound is loose.
        ctl.mip_gap = ctl.mip_gap.max(HEADROOM_GAP);
        ctl.node_limit = Some(
            ctl.node_limit
                .map_or(HEADROOM_NODES, |n| n.min(HEADROOM_NODES)),
        );
    }
    b.solve_from(Sense::Minimise, goal(&m, minimise), &ctl, Some(&start))
    .map(|o| (o, m))
    .map_err(|f| match f {
        Failure::Infeasible => Error::Internal(format!(
            "re-plan ({minimise:?}): no target within {gpus} GPUs, although the from-scratch plan fits"
        )),
        f => f.into_error("re-plan MILP"),
    })
}

/// Cap of the relative headroom per model the tie-break tier rewards (25% above the rate).
const HEADROOM_CAP: f64 = 0.25;
/// Relative gap at which the headroom tie-break stops.
const HEADROOM_GAP: f64 = 0.02;
/// Branch-and-bound nodes the headroom tie-break may spend.
const HEADROOM_NODES: u64 = 200;

/// The MIP start of tier 2: nothing kept, the from-scratch plan's layouts and counts.
fn scratch_start(b: &Builder, d: &RateData, m: &Model, scratch: &Plan) -> Vec<f64> {
    let (per_layout, counts) = plan_counts(&d.sizes, &d.names(), scratch);
    mingpus::start_values(b, d, &m.cuts.new, &m.cuts.supply, &counts, &per_layout)
}

/// Tiers 2 and 3 (and `gpus-used` between them with a GPU slack), each under the optima of
/// the ones before, each started from the solution before it: the tiers and the last
/// solution.
fn solve_tiers(
    d: &RateData,
    cur: &Current,
    limit: u32,
    opts: &PlanOptions,
    slack: bool,
    scratch: &Plan,
) -> Result<(Vec<Tier>, Outcome, Model), Error> {
    let mut order = tier_order(
        Goal::Changed,
        slack.then_some((Goal::Used, "gpus-used")),
        Goal::Started,
    );
    order.push((Goal::Headroom, "headroom"));
    lexicographic(
        &order,
        scratch,
        |g, fixed, from| tier(d, cur, limit, opts, g, fixed, from),
        |g, name, o| match g {
            // A tie-break: reported, but it bounds nothing after it.
            // Its objective Σ_m s[m] is maximised (solved as −Σ s[m]).
            Goal::Headroom => (Tier::maximised(name, o), None),
            _ => tier_report(name, o),
        },
    )
}

/// The min-gpus re-plan.
pub(super) fn replan(
    current: &Plan,
    scenario: &Scenario,
    opts: &ReplanOptions,
) -> Result<Replan, Error> {
    let popts = opts.plan.with_deadline();
    let d = data::rate_data(scenario, &popts.params, popts.rules)?;
    let cur = read_current(&d, scenario, current)?;
    let t0 = Instant::now();
    // Tier 1: the from-scratch optimum.
    let scratch = crate::plan(scenario, SolverKind::Milp, &popts)?;
    let g_star = scratch.gpus_used() as u32;
    let seconds = t0.elapsed().as_secs_f64();
    let mut tiers = vec![Tier::from_scratch(
        "gpus-needed",
        g_star as f64,
        &scratch.report,
        seconds,
    )];
    // Tier 2 starts from the from-scratch plan (feasible), each later tier from the last.
    let limit = g_star.saturating_add(opts.gpu_slack);
    let (later, o3, model) = solve_tiers(&d, &cur, limit, &popts, opts.gpu_slack > 0, &scratch)?;
    tiers.extend(later);
    let status = proven_status(&tiers);
    let solved = Solved {
        cuts: &model.cuts,
        out: &o3,
    };
    let point = |m: usize, k: usize| d.point(m, k);
    let (target_gpus, changes) = target(&d.sizes, &d.names(), &point, &cur, current, &solved);
    let ((target_gpus, changes), transition) = hand_over(
        &RateCapacity(&d),
        &d.names(),
        current,
        cur.slots,
        (target_gpus, changes),
        opts,
        |m| d.models[m].rate,
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let plan = target_plan(
        &d,
        scenario,
        &popts,
        target_gpus,
        status,
        &scratch.report,
        seconds,
    )?;
    Ok(assemble(plan, changes, tiers, status, transition))
}

/// Min-gpus capacity: each instance serves its size's throughput at the model's best point
/// under the new scenario (additive).
struct RateCapacity<'a>(&'a RateData);

impl transition::Capacity for RateCapacity<'_> {
    fn count(&self, layout: &[Assignment]) -> Vec<u32> {
        count_instances(&self.0.sizes, &self.0.names(), layout)
    }
    fn of(&self, counts: &[u32]) -> Vec<f64> {
        let d = self.0;
        let k = d.sizes.profiles.len();
        (0..d.models.len())
            .map(|m| {
                (0..k)
                    .map(|j| {
                        counts.get(m * k + j).copied().unwrap_or(0) as f64 * d.throughput(m, j)
                    })
                    .sum()
            })
            .collect()
    }
}
