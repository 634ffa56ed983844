//! Max-load re-planning: on the scenario's `gpu.count` GPUs (the current plan's first), the
//! target that loses the least capacity for the new traffic mix, then re-cuts the fewest
//! GPUs, then starts the fewest instances.
//!
//! The capacity of a plan is max-load's λ: the largest total query rate whose split among
//! the models follows the new scenario's shares (`plan --objective max-load`, the fluid
//! model of [`crate::maxload`]). The formulation is max-load's with the kept GPUs of each
//! current type t (c_t GPUs, holding cnt_t[m,k] instances of size k for model m) added to
//! the instances the routing may use:
//!
//! ```text
//!   tier 1    λ* = max-load optimum on the N GPUs of the current plan (its own MILP)
//!   tier 2    minimise  Σ_ℓ y[ℓ]            s.t. λ ≥ (1 − slack)·λ*   (GPUs re-cut or added)
//!  (tier 2b   with --load-slack > 0: maximise λ under the tier-2 optimum)
//!   tier 3    minimise  Σ_{m,k} n[m,k]      under every optimum above  (instances started)
//!   demand    Σ_k x[m,b,k] = λ·s_m·p_m(b)                                  ∀ m, b
//!   capacity  Σ_b x[m,b,k]·L_m(k,b)/1000 ≤ ρ·(n[m,k] + Σ_t cnt_t[m,k]·keep[t])  ∀ m, k
//!   supply    Σ_m n[m,k] ≤ Σ_ℓ c[ℓ,k]·y[ℓ]                                  ∀ k
//!   served    Σ_{k∈S} (n[m,k] + Σ_t cnt_t[m,k]·keep[t]) ≥ 1   ∀ m, S as max-load's
//!   count     Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ N
//!   keep[t] ∈ {0..c_t}, n, y ∈ ℤ≥0, x ≥ 0
//! ```
//!
//! **Required capacity during the transition.** A model's capacity on a set of instances
//! is the most requests/s of that model (with its batch mix) the instances carry under the
//! fluid model, its classes routed among all of them at once (a small LP, [`LoadCapacity`];
//! models never share instances, so the plan's λ is the smallest capacity/share). Each
//! model must keep min(its rate in the current plan, its rate in the target) =
//! min(λ_old·s_old,m, λ_target·s_new,m) during every step (never more than it has before
//! the first step).

use super::current::{read_types, Current};
use super::cuts::{first_pattern, keep_vars, new_cuts, Cuts};
use super::handover::{count_instances, hand_over};
use super::target::{assemble, pad_to, server_gpus, target, Solved};
use super::tiers::LoadGoal as Goal;
use super::tiers::{lexicographic, proven_status, tier_order, tier_report, Start};
use super::transition::Capacity;
use super::{ReplanOptions, Tier};
use crate::data::{self, LoadData};
use crate::fluid::{self, add_routing, load_on, Routing};
use crate::maxload::{instances, serve_every_class};
use crate::milp::{lin, Builder, Control, Failure, Outcome, Sense, Var};
use crate::planner::{Job, LoadPlan};
use crate::{PlanOptions, SolverKind};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, Objective, Plan, Scenario, SolveReport};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

/// Relative tolerance on the load floor (λ ≥ (1 − slack)·λ*·(1 − FLOOR_TOL)): λ* is a
/// floating-point optimum and must stay feasible after a round trip through HiGHS.
const FLOOR_TOL: f64 = 1e-7;

/// The built model.
struct Model {
    routing: Routing,
    cuts: Cuts,
}

fn build(d: &LoadData, cur: &Current, floor: f64) -> (Builder, Model) {
    let mut b = Builder::new();
    let routing = add_routing(&mut b, d);
    let keep = keep_vars(&mut b, cur);
    let n = instances(&mut b, d);
    capacity(&mut b, d, cur, &routing, &keep, &n);
    serve_every_class(&mut b, d, &n, &|m, k| kept_of(cur, &keep, m, k));
    // supply, and count  Σ_t keep[t] + Σ_ℓ y[ℓ] ≤ N
    let cuts = new_cuts(&mut b, &d.sizes, keep, n, d.gpus);
    // floor  λ ≥ (1 − slack)·λ*
    b.push(constraint!(routing.lambda.v >= floor));
    (b, Model { routing, cuts })
}

/// `capacity  Σ_b x[m,b,k]·L_m(k,b)/1000 ≤ ρ·(n[m,k] + Σ_t cnt_t[m,k]·keep[t])   ∀ m, k`
fn capacity(
    b: &mut Builder,
    d: &LoadData,
    cur: &Current,
    r: &Routing,
    keep: &[Var],
    n: &[Vec<Option<Var>>],
) {
    for (m, nm) in n.iter().enumerate() {
        for (k, v) in nm.iter().enumerate() {
            let kept = kept_of(cur, keep, m, k)
                .into_iter()
                .map(|(c, v)| (d.rho * c, v));
            let new = v.map(|v| (d.rho, v));
            // ρ·(n[m,k] + Σ_t cnt_t[m,k]·keep[t])
            let rho_n = lin(kept.chain(new));
            let load = load_on(d, r, m, k);
            b.push(constraint!(load <= rho_n));
        }
    }
}

/// The kept instances of model m and size k: Σ_t cnt_t[m,k]·keep[t], as terms.
fn kept_of(cur: &Current, keep: &[Var], m: usize, k: usize) -> Vec<(f64, Var)> {
    cur.types
        .iter()
        .zip(keep)
        .filter_map(|((cfg, _, _), &v)| {
            let c = cfg
                .iter()
                .filter(|&&(j, _, x)| j == k && x == Some(m))
                .count();
            (c > 0).then_some((c as f64, v))
        })
        .collect()
}

/// A tier's objective; λ is maximised, solved as −λ.
fn goal(m: &Model, g: Goal) -> Expression {
    match g {
        Goal::Changed => m.cuts.changed(),
        Goal::Load => lin([(-1.0, m.routing.lambda)]),
        Goal::Started => m.cuts.started(),
    }
}

/// Solves one tier under the optima before it (`fixed`: goal ≤ value).
fn tier(
    d: &LoadData,
    cur: &Current,
    floor: f64,
    opts: &PlanOptions,
    minimise: Goal,
    fixed: &[(Goal, f64)],
    from: Start<'_>,
) -> Result<(Outcome, Model), Error> {
    let (mut b, m) = build(d, cur, floor);
    let cols = from.columns(|p| scratch_start(&b, d, &m, p));
    for &(g, v) in fixed {
        // The load tier's optimum is a float: keep it within the floor's tolerance.
        let v = if g == Goal::Load {
            v + v.abs() * FLOOR_TOL
        } else {
            v
        };
        b.push(constraint!(goal(&m, g) <= v));
    }
    let ctl = crate::control(opts, false);
    b.solve_from(Sense::Minimise, goal(&m, minimise), &ctl, Some(&cols))
        .map(|o| (o, m))
        .map_err(|f| match f {
            Failure::Infeasible => Error::Internal(format!(
                "max-load re-plan ({minimise:?}): no target reaches λ ≥ {floor}, although the from-scratch plan does"
            )),
            f => f.into_error("max-load re-plan MILP"),
        })
}

/// The MIP start of tier 2: nothing kept, the from-scratch plan's layouts, counts and
/// routes (flows scaled down a hair so that rounding cannot make them exceed capacity).
fn scratch_start(b: &Builder, d: &LoadData, m: &Model, scratch: &Plan) -> Vec<f64> {
    let names: Vec<String> = d.models.iter().map(|x| x.name.clone()).collect();
    let k = d.sizes.profiles.len();
    let mut counts = vec![vec![0u32; k]; d.models.len()];
    let mut per_layout = vec![0u32; d.sizes.layouts.len()];
    for g in scratch.gpus.iter().filter(|g| !g.layout.is_empty()) {
        let c = count_instances(&d.sizes, &names, &g.layout);
        for (mi, row) in counts.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x += c[mi * k + j];
            }
        }
        if let Some(l) = first_pattern(&d.sizes, &g.layout) {
            per_layout[l] += 1;
        }
    }
    let mut cols = vec![0.0; b.num_vars()];
    let lambda = scratch.report.objective * (1.0 - FLOOR_TOL / 2.0);
    cols[m.routing.lambda.col] = lambda;
    for (mi, model) in d.models.iter().enumerate() {
        for (ci, c) in model.classes.iter().enumerate() {
            let routes: Vec<(usize, f64)> = scratch
                .routes
                .iter()
                .filter(|r| r.model.as_str() == model.name && r.batch == c.batch)
                .filter_map(|r| Some((d.sizes.index(r.profile.as_str())?, r.fraction)))
                .collect();
            let total: f64 = routes.iter().map(|r| r.1).sum();
            for (j, f) in routes {
                if let Some(v) = m.routing.x[mi][ci][j] {
                    cols[v.col] = lambda * model.share * c.prob * f / total;
                }
            }
        }
        for (j, v) in m.cuts.new[mi].iter().enumerate() {
            if let Some(v) = v {
                cols[v.col] = counts[mi][j] as f64;
            }
        }
    }
    m.cuts.supply.set_start(&d.sizes, &per_layout, &mut cols);
    cols
}

/// The tiers after the first, each under the optima before it and started from the
/// solution before it.
fn solve_tiers(
    d: &LoadData,
    cur: &Current,
    floor: f64,
    opts: &PlanOptions,
    slack: bool,
    scratch: &Plan,
) -> Result<(Vec<Tier>, Outcome, Model), Error> {
    let order = tier_order(
        Goal::Changed,
        slack.then_some((Goal::Load, "load")),
        Goal::Started,
    );
    lexicographic(
        &order,
        scratch,
        |g, fixed, from| tier(d, cur, floor, opts, g, fixed, from),
        |g, name, o| match g {
            // Solved as −λ: the bound it leaves is the raw optimum.
            Goal::Load => (Tier::maximised(name, o), Some(o.objective)),
            _ => tier_report(name, o),
        },
    )
}

/// Max-load capacity: per model, the most requests/s its instances carry with its classes
/// routed among them (a small LP per model, memoised on the model's instance counts).
pub(crate) struct LoadCapacity<'a> {
    d: &'a LoadData,
    names: Vec<String>,
    memo: RefCell<HashMap<(usize, Vec<u32>), f64>>,
}

impl<'a> LoadCapacity<'a> {
    pub(crate) fn new(d: &'a LoadData) -> Self {
        Self {
            d,
            names: d.models.iter().map(|m| m.name.clone()).collect(),
            memo: RefCell::new(HashMap::new()),
        }
    }
}

impl Capacity for LoadCapacity<'_> {
    fn count(&self, layout: &[migopt_models::Assignment]) -> Vec<u32> {
        count_instances(&self.d.sizes, &self.names, layout)
    }
    fn of(&self, counts: &[u32]) -> Vec<f64> {
        let k = self.d.sizes.profiles.len();
        (0..self.d.models.len())
            .map(|m| {
                let n: Vec<u32> = (0..k)
                    .map(|j| counts.get(m * k + j).copied().unwrap_or(0))
                    .collect();
                if let Some(&c) = self.memo.borrow().get(&(m, n.clone())) {
                    return c;
                }
                let c = model_capacity(self.d, m, &n);
                self.memo.borrow_mut().insert((m, n), c);
                c
            })
            .collect()
    }
}

/// The most requests/s of model m that `n[k]` instances of each size carry:
///
/// ```text
///   maximise  μ
///   demand    Σ_k x[b,k] = μ·p_m(b)                   ∀ b
///   capacity  Σ_b x[b,k]·L_m(k,b)/1000 ≤ ρ·n[k]       ∀ k
/// ```
fn model_capacity(d: &LoadData, m: usize, n: &[u32]) -> f64 {
    let model = &d.models[m];
    let usable = |k: usize| n.get(k).copied().unwrap_or(0) > 0;
    // A class no instance can serve: the model carries nothing (its mix is fixed).
    if model
        .classes
        .iter()
        .any(|c| !(0..c.lat.len()).any(|k| c.lat[k].is_some() && usable(k)))
    {
        return 0.0;
    }
    let mut b = Builder::new();
    let mu = b.cont("mu".into(), 0.0, f64::INFINITY);
    let x: Vec<Vec<Option<Var>>> = model
        .classes
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            (0..c.lat.len())
                .map(|k| {
                    (c.lat[k].is_some() && usable(k))
                        .then(|| b.cont(format!("x[{ci},{k}]"), 0.0, f64::INFINITY))
                })
                .collect()
        })
        .collect();
    for (c, xc) in model.classes.iter().zip(&x) {
        let served = lin(xc.iter().flatten().map(|&v| (1.0, v)));
        let demand = lin([(c.prob, mu)]);
        b.push(constraint!(served == demand));
    }
    for (k, &nk) in n.iter().enumerate().filter(|(k, _)| usable(*k)) {
        let load = lin(model
            .classes
            .iter()
            .zip(&x)
            .filter_map(|(c, xc)| Some((c.lat[k]? / 1000.0, xc[k]?))));
        b.push(constraint!(load <= d.rho * nk as f64));
    }
    b.solve(Sense::Maximise, Expression::from(mu), &Control::lp())
        .map(|o| o.objective.max(0.0))
        .unwrap_or(0.0)
}

/// Re-plans `current` for the traffic mix of `scenario` under max-load (see the module
/// docs).
pub(crate) fn replan(
    current: &Plan,
    scenario: &Scenario,
    opts: &ReplanOptions,
) -> Result<super::Replan, Error> {
    let started = Instant::now();
    let popts = opts.plan.with_deadline();
    opts.check_load_slack()?;
    // The server is the scenario's GPUs.
    let names: Vec<String> = scenario.models.iter().map(|m| m.name.to_string()).collect();
    let sizes = crate::data::Sizes::new(scenario, popts.rules)?;
    let cur = read_types(&sizes, &names, scenario, current, &|_, _| 0.0)?;
    let mut server = scenario.clone();
    server.gpu_count = server_gpus(scenario);
    let d = data::load_data(&server, &popts.params, popts.rules)?;
    let scratch = crate::plan(&server, SolverKind::Milp, &popts)?;
    let best = scratch.report.objective;
    let seconds = started.elapsed().as_secs_f64();
    let mut tiers = vec![Tier::from_scratch(
        "load-max",
        best,
        &scratch.report,
        seconds,
    )];
    let floor = best * (1.0 - opts.load_slack) * (1.0 - FLOOR_TOL);
    let slack = opts.load_slack > 0.0;
    let (later, out, model) = solve_tiers(&d, &cur, floor, &popts, slack, &scratch)?;
    tiers.extend(later);
    let status = proven_status(&tiers);
    let solved = Solved {
        cuts: &model.cuts,
        out: &out,
    };
    let point = |m: usize, k: usize| (d.models[m].max_batch_on(k), 1);
    let (gpus, changes) = target(&d.sizes, &names, &point, &cur, current, &solved);
    let cap = LoadCapacity::new(&d);
    let eval = fluid::evaluate(&d, &counts_of(&cap, &gpus, &d))?;
    let ((gpus, changes), transition) = hand_over(
        &cap,
        &names,
        current,
        cur.slots,
        (gpus, changes),
        opts,
        |m| eval.model_rates.get(m).map_or(0.0, |r| r.rate_qps),
    )?;
    let mut gpus = gpus;
    pad_to(&mut gpus, server.gpu_count);
    let report = SolveReport {
        status,
        objective: eval.lambda,
        bound: scratch.report.bound,
        gap: scratch
            .report
            .bound
            .filter(|b| *b > 1e-9)
            .map(|b| ((b - eval.lambda) / b).max(0.0)),
        lp_bound: scratch.report.lp_bound,
        solve_seconds: started.elapsed().as_secs_f64(),
        gpcs_used: None,
    };
    let job = Job {
        scenario: &server,
        data: &d,
        opts: &popts,
        started,
    };
    let mut plan = crate::finish::load(&job, "milp-replan", LoadPlan { gpus, eval, report })?;
    plan.objective_kind = Objective::MaxLoad;
    plan.report.gpcs_used = Some(plan.gpcs_used()?);
    Ok(assemble(plan, changes, tiers, status, transition))
}

/// Instances per (model, size) of a set of GPUs.
fn counts_of(
    cap: &LoadCapacity<'_>,
    gpus: &[migopt_models::GpuPlan],
    d: &LoadData,
) -> Vec<Vec<u32>> {
    let k = d.sizes.profiles.len();
    let mut flat = vec![0u32; d.models.len() * k];
    for g in gpus {
        for (x, c) in flat.iter_mut().zip(cap.count(&g.layout)) {
            *x += c;
        }
    }
    flat.chunks(k.max(1)).map(|c| c.to_vec()).collect()
}
