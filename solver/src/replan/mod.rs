//! Re-planning when load changes: the target plan for a new load that re-cuts the fewest
//! GPUs of the current plan, and a safe transition to it.
//!
//! Any plan for the new load is a possible target (every GPU can be re-cut), so the fewest
//! GPUs a target needs is the from-scratch optimum G* of the min-gpus MILP. Among targets
//! with G* GPUs the re-planner then minimises the GPUs it re-cuts or adds, and then the
//! instances it starts (each one a model load). A GPU is *kept* when its layout and the
//! model of every instance stay as they are; a kept instance runs the best operating point
//! (server-side batch, MPS processes) of its size under the new scenario, which are runtime
//! settings, not a re-cut.
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
//! 22 (`migopt replay-day`, 24 one-hour intervals, slack 1: BENCHMARKS.md). The
//! transition from the current plan to the target is built in [`transition`]. The
//! SLA-aware target (`--solver sla`, [`replan_with`]) is the same scheme over the pools of
//! the queueing model: module `sla` for min-gpus (slagpus's pools), module `sla_load` for
//! max-load (slaload's pools of batch intervals; tier 1 is `plan --objective sla-capacity`
//! on the current plan's GPUs).

mod load;
mod sla;
mod sla_load;
pub mod transition;

use crate::data::{self, RateData};
use crate::milp::{lin, Builder, Failure, Outcome, Sense, Var};
use crate::pack::assign;
use crate::supply;
use crate::{mingpus, PlanOptions, SolverKind};
use good_lp::constraint::{geq, leq};
use good_lp::Expression;
use migopt_models::{
    Assignment, Error, GpuPlan, ModelRate, Objective, Plan, Scenario, SolveReport, SolveStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;
pub use transition::{Step, StepGpu, Transition};

/// What happens to one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// Layout and assignment unchanged.
    Kept,
    /// In use before and after, with another layout or assignment: drained, re-cut, loaded.
    ReCut,
    /// Unused before, in use after.
    Added,
    /// In use before, unused after (drained).
    Freed,
}

impl Fate {
    /// Lower-case name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Kept => "kept",
            Fate::ReCut => "re-cut",
            Fate::Added => "added",
            Fate::Freed => "freed",
        }
    }
}

/// One GPU before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuChange {
    /// Device index (the current plan's; added GPUs follow them).
    pub gpu: u32,
    /// What happens to it.
    pub fate: Fate,
    /// Its instances in the current plan.
    pub before: Vec<Assignment>,
    /// Its instances in the target plan.
    pub after: Vec<Assignment>,
}

/// One lexicographic tier of the re-plan and how its solve ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// What the tier minimises (`gpus`, `gpus-changed`, `instances-started`).
    pub name: String,
    /// The value reached.
    pub objective: f64,
    /// The best proven bound.
    pub bound: f64,
    /// Relative gap (0 when proven).
    pub gap: f64,
    /// How its solve ended.
    pub status: SolveStatus,
    /// Wall time of the tier, seconds.
    pub seconds: f64,
}

impl Tier {
    /// Tier 1, the from-scratch plan's: its objective `value` (GPUs needed, or the most
    /// load), with the bound, gap and status its report proves, `seconds` after the start.
    pub(super) fn from_scratch(name: &str, value: f64, report: &SolveReport, seconds: f64) -> Self {
        Tier {
            name: name.into(),
            objective: value,
            bound: report.bound.unwrap_or(value),
            gap: report.gap.unwrap_or(0.0),
            status: report.status,
            seconds,
        }
    }

    /// A maximised tier (solved as the minimum of its negation): value, bound and gap in
    /// the maximised sense.
    pub(super) fn maximised(name: &str, o: &Outcome) -> Self {
        let value = -o.objective;
        let bound = (-o.bound).max(value);
        Tier {
            name: name.into(),
            objective: value,
            bound,
            gap: if bound > 1e-9 {
                (bound - value) / bound
            } else {
                0.0
            },
            status: o.status,
            seconds: o.seconds,
        }
    }
}

/// Options of a re-plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplanOptions {
    /// Planner options (objective, planning parameters, rules, limits, threads).
    pub plan: PlanOptions,
    /// Idle GPUs beside the plan's that a transition may borrow (they end idle again).
    pub spare_gpus: u32,
    /// GPUs beyond the from-scratch optimum the target may use when that re-cuts fewer GPUs
    /// (0: the fewest GPUs come first, strictly).
    pub gpu_slack: u32,
    /// Capacity each model must keep during every transition step, requests/s, in the new
    /// scenario's model order (normally min(old, new) rate); `None`: min(the current plan's
    /// provisioned rate, the new rate).
    pub required: Option<Vec<f64>>,
    /// Max-load only: the fraction of the from-scratch capacity λ* the target may give up
    /// when that re-cuts fewer GPUs (0: the most load first, strictly).
    pub load_slack: f64,
}

impl ReplanOptions {
    /// The max-load re-plans' load slack must be a fraction in [0, 1).
    pub(super) fn check_load_slack(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.load_slack) {
            return Err(Error::Invalid(format!(
                "load slack {} must be in [0, 1)",
                self.load_slack
            )));
        }
        Ok(())
    }
}

/// A re-plan: the target plan, what happens to each GPU, how well it is proven, and the
/// transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replan {
    /// The target plan (GPU indices are the current plan's; added GPUs follow them).
    pub target: Plan,
    /// Every GPU used before or after.
    pub gpus: Vec<GpuChange>,
    /// GPUs the target uses.
    pub gpus_used: u32,
    /// GPUs re-cut or added.
    pub gpus_changed: u32,
    /// Instances the target starts (on re-cut and added GPUs).
    pub instances_started: u32,
    /// The lexicographic tiers, in order.
    pub tiers: Vec<Tier>,
    /// How the re-plan ended: optimal only if every tier is proven.
    pub status: SolveStatus,
    /// The ordered transition from the current plan to the target.
    pub transition: Transition,
}

/// A target's GPUs, and what happens to every GPU used before or after.
pub(super) type Fates = (Vec<GpuPlan>, Vec<GpuChange>);

/// A GPU configuration of the current plan: its instances as (size, start, model), sorted.
type Config = Vec<(usize, u32, Option<usize>)>;

/// The current plan in the new scenario's terms.
pub(super) struct Current {
    /// Per type: the configuration, the GPU indices that have it, capacity per model.
    pub types: Vec<(Config, Vec<u32>, Vec<f64>)>,
    /// GPU slots of the current plan (used or not).
    pub slots: u32,
}

fn read_current(d: &RateData, current: &Plan) -> Result<Current, Error> {
    read_types(&d.sizes, &d.names(), current, &|m, k| d.throughput(m, k))
}

/// The current plan's GPU types under these sizes and models; `cap(m, k)`: requests/s one
/// instance of size k serves for model m.
pub(super) fn read_types(
    sizes: &crate::data::Sizes,
    names: &[String],
    current: &Plan,
    cap: &dyn Fn(usize, usize) -> f64,
) -> Result<Current, Error> {
    let mut by: BTreeMap<Config, Vec<u32>> = BTreeMap::new();
    for g in &current.gpus {
        if g.layout.is_empty() {
            continue;
        }
        let mut cfg: Config = Vec::new();
        for a in &g.layout {
            let k = sizes.index(a.profile.as_str()).ok_or_else(|| {
                Error::Invalid(format!(
                    "current plan, GPU {}: profile {} is not usable under the layout rules (usable: {})",
                    g.index,
                    a.profile,
                    sizes.names()
                ))
            })?;
            let m = names.iter().position(|x| x.as_str() == a.model.as_str());
            cfg.push((k, a.start, m));
        }
        cfg.sort();
        by.entry(cfg).or_default().push(g.index);
    }
    let types = by
        .into_iter()
        .map(|(cfg, gpus)| {
            let mut c = vec![0.0; names.len()];
            for &(k, _, m) in &cfg {
                if let Some(m) = m {
                    c[m] += cap(m, k);
                }
            }
            (cfg, gpus, c)
        })
        .collect();
    let slots = current
        .gpus
        .iter()
        .map(|g| g.index + 1)
        .max()
        .unwrap_or(0)
        .max(current.gpus.len() as u32);
    Ok(Current { types, slots })
}

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
    let total = lin(keep.iter().map(|&v| (1.0, v))) + supply.gpus();
    b.push(leq(total, gpus as f64));
    Cuts { keep, new, supply }
}

/// The built tier-2/3 model.
struct Model {
    cuts: Cuts,
    /// Per model: relative headroom s[m] ∈ [0, HEADROOM_CAP] (tie-break tier).
    head: Vec<Var>,
}

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
        let head = lin([(m.rate, head[mi])]);
        b.push(geq(kept + mingpus::served(d, &n, mi) - head, m.rate));
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
        b.push(geq(kept + new, m.min_gpcs as f64));
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

fn goal(m: &Model, g: Goal) -> Expression {
    match g {
        Goal::Changed => m.cuts.changed(),
        Goal::Used => m.cuts.used(),
        Goal::Started => m.cuts.started(),
        Goal::Headroom => lin(m.head.iter().map(|&v| (-1.0, v))),
    }
}

/// A tier of the two max-load re-plans (`load`, `sla_load`): what it optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoadGoal {
    /// GPUs re-cut or added: Σ_ℓ y[ℓ] (minimised).
    Changed,
    /// λ (maximised; each re-plan says how it solves it).
    Load,
    /// Instances started: Σ new[m,k] (minimised).
    Started,
}

/// Where a tier's MIP start comes from.
pub(super) enum Start<'a> {
    /// The from-scratch plan: nothing kept, its layouts and counts (tier 2).
    Scratch(&'a Plan),
    /// The solution of the tier before.
    Values(&'a [f64]),
}

impl Start<'_> {
    /// The start's column values: the from-scratch plan's as `scratch` reads them into the
    /// model, or the tier before's.
    pub(super) fn columns(&self, scratch: impl FnOnce(&Plan) -> Vec<f64>) -> Vec<f64> {
        match self {
            Start::Scratch(p) => scratch(p),
            Start::Values(v) => v.to_vec(),
        }
    }
}

/// Solves a built tier of the SLA-aware re-plans: minimises `objective` under the optima of
/// the tiers before (each `fixed` expression ≤ its value), from the MIP start `cols`, with
/// the tiers' LP age limit.
pub(super) fn solve_tier(
    mut b: Builder,
    objective: Expression,
    fixed: impl IntoIterator<Item = (Expression, f64)>,
    cols: &[f64],
    opts: &PlanOptions,
) -> Result<Outcome, Failure> {
    for (e, v) in fixed {
        b.push(leq(e, v));
    }
    let mut ctl = crate::control(opts, false);
    ctl.lp_age_limit = Some(LP_AGE_LIMIT);
    b.solve_from(Sense::Minimise, objective, &ctl, Some(cols))
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
        b.push(leq(goal(&m, g), v));
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

/// HiGHS's `mip_lp_age_limit` for the tiers (default 10; see [`crate::milp::Control`]): the
/// instances-started tier is a small MILP (about 30 rows, 120 columns) whose proof takes tens
/// of thousands of nodes, and dropping stale cuts sooner made it several times faster on
/// `replan_100_gpus_11_models` (BENCHMARKS.md, re-planning section).
pub(super) const LP_AGE_LIMIT: u32 = 5;

/// Cap of the relative headroom per model the tie-break tier rewards (25% above the rate).
const HEADROOM_CAP: f64 = 0.25;
/// Relative gap at which the headroom tie-break stops.
const HEADROOM_GAP: f64 = 0.02;
/// Branch-and-bound nodes the headroom tie-break may spend.
const HEADROOM_NODES: u64 = 200;

/// A minimised tier's report (whole-number objective: counts of GPUs or instances) and the
/// value it fixes for the tiers after it (its objective).
pub(super) fn tier_report(name: &str, o: &Outcome) -> (Tier, Option<f64>) {
    let bound = if o.status == SolveStatus::Optimal {
        o.objective
    } else {
        o.bound.min(o.objective)
    };
    let gap = if o.objective.abs() > 1e-9 {
        ((o.objective - bound) / o.objective).max(0.0)
    } else {
        0.0
    };
    let t = Tier {
        name: name.into(),
        objective: o.objective.round(),
        bound: bound.ceil().min(o.objective.round()),
        gap,
        status: o.status,
        seconds: o.seconds,
    };
    let fixes = t.objective;
    (t, Some(fixes))
}

/// The MIP start of tier 2: nothing kept, the from-scratch plan's layouts and counts.
fn scratch_start(b: &Builder, d: &RateData, m: &Model, scratch: &Plan) -> Vec<f64> {
    let (per_layout, counts) = plan_counts(&d.sizes, &d.names(), scratch);
    mingpus::start_values(b, d, &m.cuts.new, &m.cuts.supply, &counts, &per_layout)
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

/// The order of every re-plan's tiers after the first: the GPUs re-cut or added, then the
/// middle tier when a slack allows one (GPUs used, or load), then the instances started.
pub(super) fn tier_order<G>(
    changed: G,
    middle: Option<(G, &'static str)>,
    started: G,
) -> Vec<(G, &'static str)> {
    let mut order = vec![(changed, "gpus-changed")];
    order.extend(middle);
    order.push((started, "instances-started"));
    order
}

/// Solves the tiers of `order` one after the other, each under the optima of the ones
/// before it (`fixed`: goal ≤ value, as `report` gives it; `None` fixes nothing) and started
/// from the solution before it (the first from the from-scratch plan): the tiers' reports,
/// and the last tier's solution and model. The one lexicographic loop of every re-plan
/// (min-gpus, max-load, SLA-aware).
pub(super) fn lexicographic<G: Copy, M>(
    order: &[(G, &str)],
    scratch: &Plan,
    mut solve: impl FnMut(G, &[(G, f64)], Start<'_>) -> Result<(Outcome, M), Error>,
    report: impl Fn(G, &str, &Outcome) -> (Tier, Option<f64>),
) -> Result<(Vec<Tier>, Outcome, M), Error> {
    let mut fixed: Vec<(G, f64)> = Vec::new();
    let mut tiers = Vec::new();
    let mut last: Option<(Outcome, M)> = None;
    for &(g, name) in order {
        let from = match &last {
            Some((o, _)) => Start::Values(&o.values),
            None => Start::Scratch(scratch),
        };
        let (o, m) = solve(g, &fixed, from)?;
        let (t, bound) = report(g, name, &o);
        if let Some(v) = bound {
            fixed.push((g, v));
        }
        tiers.push(t);
        last = Some((o, m));
    }
    let (o, m) = last.ok_or_else(|| Error::Internal("re-plan: no tier solved".into()))?;
    Ok((tiers, o, m))
}

/// The capacity each model keeps during the transition: the options', else min(the current
/// plan's provisioned rate, the new rate).
pub(super) fn required(d: &RateData, current: &Plan, opts: &ReplanOptions) -> Vec<f64> {
    match &opts.required {
        Some(r) => r.clone(),
        None => d
            .models
            .iter()
            .map(|m| {
                let old = current
                    .model_rates
                    .iter()
                    .find(|r| r.model.as_str() == m.name.as_str())
                    .map_or(0.0, |r| r.rate_qps);
                old.min(m.rate)
            })
            .collect(),
    }
}

/// Min-gpus capacity: each instance serves its size's throughput at the model's best point
/// under the new scenario (additive).
pub(crate) struct RateCapacity<'a>(pub &'a RateData);

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

/// A layout's instances per (model, size), flattened model-major (instances of models or
/// sizes outside the scenario are not counted).
pub(crate) fn count_instances(
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
pub(super) fn transition_to(
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

/// Re-plans `current` for the load of `scenario`: under min-gpus (rate targets) the fewest
/// GPUs first, under max-load (traffic shares, on the current plan's GPUs) the most load
/// first (see [`load`]); then the fewest GPUs re-cut or added, then the fewest instances
/// started.
///
/// Errors: [`Error::Infeasible`] when no plan serves the new load, or no transition keeps
/// every model's required capacity with the spare GPUs given; [`Error::Invalid`] when the
/// current plan does not fit the scenario (another GPU kind, profiles outside the rules).
pub fn replan(current: &Plan, scenario: &Scenario, opts: &ReplanOptions) -> Result<Replan, Error> {
    replan_with(current, scenario, SolverKind::Milp, opts)
}

/// [`replan`] with the target's planner: [`SolverKind::Milp`] (the fluid model above) or
/// [`SolverKind::Sla`] (the SLA-aware target, whose pools meet every model's SLO at the
/// percentile under the queueing model: [`sla`] for min-gpus, [`sla_load`] for max-load).
///
/// Errors: as [`replan`], and [`Error::Invalid`] for another planner.
pub fn replan_with(
    current: &Plan,
    scenario: &Scenario,
    solver: SolverKind,
    opts: &ReplanOptions,
) -> Result<Replan, Error> {
    if current.gpu != scenario.gpu {
        return Err(Error::Invalid(format!(
            "the current plan is for {} but scenario {} is for {}",
            current.gpu, scenario.name, scenario.gpu
        )));
    }
    match (solver, opts.plan.objective) {
        (SolverKind::Milp, Objective::MinGpus) => replan_rates(current, scenario, opts),
        (SolverKind::Milp, Objective::MaxLoad) => load::replan(current, scenario, opts),
        (SolverKind::Sla, Objective::MinGpus) => sla::replan(current, scenario, opts),
        (SolverKind::Sla, Objective::MaxLoad) => sla_load::replan(current, scenario, opts),
        (other, _) => Err(Error::Invalid(format!(
            "re-plan: --solver {other} has no re-planner (choose milp or sla)"
        ))),
    }
}

/// The min-gpus re-plan.
fn replan_rates(
    current: &Plan,
    scenario: &Scenario,
    opts: &ReplanOptions,
) -> Result<Replan, Error> {
    let popts = opts.plan.with_deadline();
    let d = data::rate_data(scenario, &popts.params, popts.rules)?;
    let cur = read_current(&d, current)?;
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
    let required = required(&d, current, opts);
    let ((target_gpus, changes), transition) = transition_to(
        &RateCapacity(&d),
        &d.names(),
        cur.slots,
        (target_gpus, changes),
        &required,
        opts.spare_gpus,
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

/// The re-plan from its parts, with the counts of GPUs changed and instances started.
/// How a re-plan ended: optimal only if every tier is proven, else the first unproven
/// tier's status. The headroom tie-break is reported with its own status but proves nothing
/// (it stops at a gap or node limit by design), so it does not count.
pub(super) fn proven_status(tiers: &[Tier]) -> SolveStatus {
    tiers
        .iter()
        .filter(|t| t.name != "headroom")
        .map(|t| t.status)
        .find(|s| *s != SolveStatus::Optimal)
        .unwrap_or(SolveStatus::Optimal)
}

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

/// Requests/s each model gets from a GPU's instances under the new scenario.
pub(crate) fn capacity(d: &RateData, layout: &[Assignment]) -> Vec<f64> {
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

/// The parts of a solved re-plan model the target is read from.
pub(crate) struct Solved<'a> {
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
