//! The max-load MILP (the PARIS question): on a fixed server of N GPUs, choose how to cut
//! every GPU, which model each instance serves and how to route each (model, batch) query
//! class among instance sizes, to maximise the total query rate λ.
//!
//! ```text
//!   maximise  λ
//!   demand    Σ_k x[m,b,k] = λ·s_m·p_m(b)                  ∀ m, b
//!   capacity  Σ_b x[m,b,k]·L_m(k,b)/1000 ≤ ρ·n[m,k]         ∀ m, k
//!   supply    Σ_m n[m,k] ≤ (instances of size k the GPUs hold: encoding A or B)
//!   served    Σ_{k∈S} n[m,k] ≥ 1    ∀ m, S = the sizes serving a class of m whose
//!                                   demand s_m·p_m(b) is too small for the solver to see
//!   λ ≥ 0; x ≥ 0 only where L_m(k,b) ≤ β·SLA_m; n ∈ ℤ≥0
//! ```
//!
//! A query of batch b on an instance of size k keeps it busy for L_m(k,b) (the fluid model);
//! an instance is planned to be busy at most a fraction ρ of the time.

use crate::data::LoadData;
use crate::fluid::{add_routing, load_on, read_routes, FluidEvaluation, Routing};
use crate::milp::{self, lin, Builder, Failure, Outcome, Sense, Var};
use crate::pack::assign;
use crate::supply::{self, Supply};
use crate::{Encoding, PlanOptions};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, GpuPlan, SolveReport, SolveStatus};

/// The built model: routing, instance counts and the supply encoding.
struct Model {
    routing: Routing,
    /// `n[m][k]`: instances of size k serving model m (absent where m cannot use k).
    n: Vec<Vec<Option<Var>>>,
    supply: Supply,
}

/// Instance counts n[m,k], one integer per (model, size) the model can use.
pub(crate) fn instances(b: &mut Builder, d: &LoadData) -> Vec<Vec<Option<Var>>> {
    d.models
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            (0..d.sizes.profiles.len())
                .map(|k| {
                    let hi = d.gpus as f64 * d.sizes.per_gpu(k) as f64;
                    (m.uses(k) && hi > 0.0).then(|| b.int(format!("n[{mi},{k}]"), hi))
                })
                .collect()
        })
        .collect()
}

/// `capacity  Σ_b x[m,b,k]·L_m(k,b)/1000 ≤ ρ·n[m,k]   ∀ m, k`
fn capacity(b: &mut Builder, d: &LoadData, r: &Routing, n: &[Vec<Option<Var>>]) {
    for (m, nm) in n.iter().enumerate() {
        for (k, v) in nm.iter().enumerate() {
            let rho_n = match v {
                Some(v) => lin([(d.rho, *v)]),
                None => Expression::from(0.0),
            };
            let load = load_on(d, r, m, k);
            b.push(constraint!(load <= rho_n));
        }
    }
}

/// A class demand coefficient s_m·p_m(b) below this is too small for the solver to see:
/// HiGHS drops matrix entries under 10⁻⁹ and accepts violations of 10⁻⁷, so λ·s_m·p_m(b)
/// may then be served by no instance.
const UNSEEN_DEMAND: f64 = 1e-6;

/// `served  Σ_{k ∈ S} (n[m,k] + kept[m,k]) ≥ 1`, S the sizes that can serve a class of m,
/// for the sets S whose classes' demands are all too small for the solver to see
/// ([`UNSEEN_DEMAND`]: a share of 10⁻⁹ beside 1, say): every class then still has an
/// instance to go to, as it has for any real demand (so elsewhere the rows would change
/// nothing but which of equally good plans the solver returns, and are left out).
/// `kept(m, k)`: the terms of the instances of model m and size k a re-plan keeps (none
/// from scratch).
pub(crate) fn serve_every_class(
    b: &mut Builder,
    d: &LoadData,
    n: &[Vec<Option<Var>>],
    kept: &dyn Fn(usize, usize) -> Vec<(f64, Var)>,
) {
    for (m, nm) in n.iter().enumerate() {
        let model = &d.models[m];
        // Per set of sizes: the largest demand coefficient of its classes.
        let mut sets: std::collections::BTreeMap<Vec<usize>, f64> = Default::default();
        for c in &model.classes {
            let set = (0..nm.len()).filter(|&k| c.lat[k].is_some()).collect();
            let most = sets.entry(set).or_insert(0.0);
            *most = most.max(model.share * c.prob);
        }
        for (set, _) in sets.into_iter().filter(|&(_, most)| most < UNSEEN_DEMAND) {
            let terms = set.iter().flat_map(|&k| {
                let new = nm[k].map(|v| (1.0, v));
                new.into_iter().chain(kept(m, k))
            });
            b.push(constraint!(lin(terms) >= 1.0));
        }
    }
}

/// Instances of each size the models ask for: Σ_m n[m,k].
pub(crate) fn demand_by_size(n: &[Vec<Option<Var>>], sizes: usize) -> Vec<Expression> {
    (0..sizes)
        .map(|k| lin(n.iter().filter_map(|nm| nm[k]).map(|v| (1.0, v))))
        .collect()
}

fn build(d: &LoadData, encoding: Encoding) -> (Builder, Model) {
    let mut b = Builder::new();
    let routing = add_routing(&mut b, d);
    let n = instances(&mut b, d);
    capacity(&mut b, d, &routing, &n);
    serve_every_class(&mut b, d, &n, &|_, _| Vec::new());
    let demand = demand_by_size(&n, d.sizes.profiles.len());
    let supply = supply::build(encoding, &mut b, &d.sizes, &demand, d.gpus, false);
    (b, Model { routing, n, supply })
}

/// Result of the max-load MILP before it becomes a plan.
pub(crate) struct Solved {
    pub gpus: Vec<GpuPlan>,
    pub eval: FluidEvaluation,
    pub report: SolveReport,
}

/// Solves the max-load MILP and turns the solution into explicit placements.
pub(crate) fn solve(d: &LoadData, opts: &PlanOptions) -> Result<Solved, Error> {
    // RINS/RENS off for encoding A only: measured faster there, slower for B (see `lean`).
    let lean = opts.encoding == Encoding::Layouts;
    let ctl = milp::Control {
        lean,
        ..crate::control(opts, false)
    };
    let (b, model) = build(d, opts.encoding);
    let lambda = model.routing.lambda;
    let out = b
        .solve(Sense::Maximise, Expression::from(lambda.v), &ctl)
        .map_err(|f| match f {
            // Not every class has an instance: say which one cannot be placed.
            Failure::Infeasible => {
                crate::supply::unplaceable(d).map_or_else(|| fail(f), Error::Infeasible)
            }
            f => fail(f),
        })?;
    let lp = {
        let (b, m) = build(d, opts.encoding);
        b.solve(
            Sense::Maximise,
            Expression::from(m.routing.lambda.v),
            &crate::control(opts, true),
        )
        .ok()
        .map(|o| o.objective)
    };
    let eval = read_routes(d, &model.routing, &|v| out.val(v));
    if out.status == SolveStatus::Optimal && eval.lambda <= 1e-9 {
        if let Some(why) = crate::supply::unplaceable(d) {
            return Err(Error::Infeasible(why));
        }
    }
    let gpus = placements(d, &model, &out);
    let report = SolveReport {
        status: out.status,
        objective: eval.lambda,
        bound: Some(out.bound.max(eval.lambda)),
        gap: Some(if out.status == SolveStatus::Optimal {
            0.0
        } else {
            out.gap
        }),
        lp_bound: lp,
        solve_seconds: out.seconds,
        gpcs_used: None,
    };
    Ok(Solved { gpus, eval, report })
}

fn fail(f: Failure) -> Error {
    f.into_error("max-load MILP")
}

/// Explicit GPUs from a solution: each GPU gets its layout (A) or placements (B); models
/// are assigned to instances by the counts n; an instance no count claims goes to the model
/// that loads that size most heavily (extra headroom at no cost), or stays uncut if no
/// model can use the size. GPUs the solution leaves unused stay empty.
fn placements(d: &LoadData, model: &Model, out: &Outcome) -> Vec<GpuPlan> {
    let sizes = &d.sizes;
    let mut per_gpu = model.supply.decode(sizes, out);
    per_gpu.resize(d.gpus as usize, Vec::new());
    let counts = out.counts(&model.n);
    // Utilisation of (m, k) in the solution, to pick the model that gets a spare instance.
    let util = |m: usize, k: usize| -> f64 {
        let load: f64 = d.models[m]
            .classes
            .iter()
            .enumerate()
            .filter_map(|(ci, c)| Some(c.lat[k]? / 1000.0 * out.val(model.routing.x[m][ci][k]?)))
            .sum();
        load / counts[m][k].max(1) as f64
    };
    let spare = |k: usize| -> Option<usize> {
        (0..d.models.len())
            .filter(|&m| d.models[m].uses(k))
            .max_by(|&a, &b| {
                (util(a, k), d.models[a].share)
                    .partial_cmp(&(util(b, k), d.models[b].share))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    };
    let names: Vec<String> = d.models.iter().map(|m| m.name.clone()).collect();
    let point = |m: usize, k: usize| (d.models[m].max_batch_on(k), 1);
    assign(sizes, &per_gpu, &counts, &names, &spare, &point)
}
