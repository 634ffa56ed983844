//! The fluid yardstick of max-load: the largest total query rate a fixed set of instances
//! carries when every query class is routed optimally among the sizes that can serve it.
//! Every max-load planner's plan is scored by this one LP (the MILP optimises it jointly
//! with the instances), so planners are compared on the same terms.

use crate::data::LoadData;
use crate::milp::{lin, Builder, Control, Sense, Var};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, ModelRate, Route};

/// Routing variables and the rate, shared by the evaluation LP and the MILPs.
pub(crate) struct Routing {
    /// Total query rate λ.
    pub lambda: Var,
    /// `x[m][c][k]`: rate of class c of model m sent to size k (where allowed).
    pub x: Vec<Vec<Vec<Option<Var>>>>,
}

/// Adds λ and the routing variables with the demand constraints:
///
/// ```text
///   demand    Σ_k x[m,b,k] = λ·s_m·p_m(b)          ∀ m, b
///   λ ≥ 0, x ≥ 0, x[m,b,k] exists only where L_m(k,b) ≤ β·SLA_m
/// ```
pub(crate) fn add_routing(b: &mut Builder, d: &LoadData) -> Routing {
    let lambda = b.cont("lambda".into(), 0.0, f64::INFINITY);
    let mut x = Vec::new();
    for (mi, m) in d.models.iter().enumerate() {
        let mut xm = Vec::new();
        for c in &m.classes {
            let xc: Vec<Option<Var>> = c
                .lat
                .iter()
                .enumerate()
                .map(|(k, l)| {
                    l.map(|_| b.cont(format!("x[{mi},{},{k}]", c.batch), 0.0, f64::INFINITY))
                })
                .collect();
            xm.push(xc);
        }
        x.push(xm);
    }
    for (mi, m) in d.models.iter().enumerate() {
        for (ci, c) in m.classes.iter().enumerate() {
            let served = lin(x[mi][ci].iter().flatten().map(|&v| (1.0, v)));
            let demand = lin([(m.share * c.prob, lambda)]);
            b.push(constraint!(served == demand));
        }
    }
    Routing { lambda, x }
}

/// The work a model's routed classes put on its instances of size k, in instance-seconds
/// per second: `Σ_b x[m,b,k]·L_m(k,b)/1000`.
pub(crate) fn load_on(d: &LoadData, r: &Routing, m: usize, k: usize) -> Expression {
    lin(d.models[m]
        .classes
        .iter()
        .enumerate()
        .filter_map(|(ci, c)| match (c.lat[k], r.x[m][ci][k]) {
            (Some(l), Some(v)) => Some((l / 1000.0, v)),
            _ => None,
        }))
}

/// What the fluid LP says about a fixed set of instances.
#[derive(Debug, Clone, PartialEq)]
pub struct FluidEvaluation {
    /// Largest total query rate, queries per second.
    pub lambda: f64,
    /// How each (model, batch) class is split among profiles at that rate.
    pub routes: Vec<Route>,
    /// Per-model rate (λ·share).
    pub model_rates: Vec<ModelRate>,
}

/// Routes and rates from solved routing variables.
pub(crate) fn read_routes(d: &LoadData, r: &Routing, val: &dyn Fn(Var) -> f64) -> FluidEvaluation {
    let lambda = val(r.lambda).max(0.0);
    let mut routes = Vec::new();
    for (mi, m) in d.models.iter().enumerate() {
        for (ci, c) in m.classes.iter().enumerate() {
            let demand = lambda * m.share * c.prob;
            let flows: Vec<(usize, f64)> = r.x[mi][ci]
                .iter()
                .enumerate()
                .filter_map(|(k, v)| v.map(|v| (k, val(v).max(0.0))))
                .collect();
            let total: f64 = flows.iter().map(|f| f.1).sum();
            if demand <= 0.0 || total <= 0.0 {
                continue;
            }
            for (k, f) in flows {
                if f > 1e-9 * total {
                    routes.push(migopt_models::Route {
                        model: m.name.as_str().into(),
                        batch: c.batch,
                        profile: d.sizes.profiles[k].name.clone(),
                        fraction: f / total,
                    });
                }
            }
        }
    }
    let model_rates = d
        .models
        .iter()
        .map(|m| ModelRate {
            model: m.name.as_str().into(),
            rate_qps: lambda * m.share,
        })
        .collect();
    FluidEvaluation {
        lambda,
        routes,
        model_rates,
    }
}

/// Largest rate a fixed set of instances carries: `counts[m][k]` instances of size k serve
/// model m. The LP:
///
/// ```text
///   maximise  λ
///   demand    Σ_k x[m,b,k] = λ·s_m·p_m(b)                  ∀ m, b
///   capacity  Σ_b x[m,b,k]·L_m(k,b)/1000 ≤ ρ·n[m,k]         ∀ m, k   (n fixed)
/// ```
pub(crate) fn evaluate(d: &LoadData, counts: &[Vec<u32>]) -> Result<FluidEvaluation, Error> {
    let mut b = Builder::new();
    let r = add_routing(&mut b, d);
    for m in 0..d.models.len() {
        for k in 0..d.sizes.profiles.len() {
            let n = counts.get(m).and_then(|c| c.get(k)).copied().unwrap_or(0) as f64;
            let load = load_on(d, &r, m, k);
            b.push(constraint!(load <= d.rho * n));
        }
    }
    let ctl = Control::lp();
    let lambda = r.lambda;
    let out = b
        .solve(Sense::Maximise, Expression::from(lambda.v), &ctl)
        .map_err(|f| f.into_error("fluid evaluation of fixed instances"))?;
    Ok(read_routes(d, &r, &|v| out.val(v)))
}
