//! The lexicographic tier loop every re-plan runs (min-gpus, max-load, SLA-aware): the tier
//! order, the MIP starts, solving and reporting a tier, and the re-plan's proven status.

use super::Tier;
use crate::milp::{Builder, Failure, Outcome, Sense};
use crate::PlanOptions;
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, Plan, SolveStatus};

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
        b.push(constraint!(e <= v));
    }
    let mut ctl = crate::control(opts, false);
    ctl.lp_age_limit = Some(LP_AGE_LIMIT);
    b.solve_from(Sense::Minimise, objective, &ctl, Some(cols))
}

/// HiGHS's `mip_lp_age_limit` for the tiers (default 10; see [`crate::milp::Control`]): the
/// instances-started tier is a small MILP (about 30 rows, 120 columns) whose proof takes tens
/// of thousands of nodes, and dropping stale cuts sooner made it several times faster on
/// `replan_100_gpus_11_models` (BENCHMARKS.md, re-planning section).
pub(super) const LP_AGE_LIMIT: u32 = 5;

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
