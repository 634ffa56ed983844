//! The SLA-aware max-load MILP: the largest total rate at which every model's queries meet
//! their SLA at the target percentile, under the queueing model of [`crate::queue`].
//!
//! **Routing as ELSA does it.** ELSA sends a query to the smallest instance size that may
//! run its batch (batch ≤ the instance's batch limit) and meets the deadline. So a model's
//! pools, ordered by size, serve consecutive ranges of batch sizes: the smallest pool takes
//! batches up to its limit, the next one the batches above that up to its own limit, and so
//! on. The planner chooses these ranges among cut points T_m (quantiles of the batch
//! distribution and the largest batch each size runs within the SLA), so each (model, size)
//! picks one interval I = (t_a, t_b] of batches, or none.
//!
//! **Pools.** Interval I on size k with n instances is an M/G/n queue whose admissible rate
//! α_{m,k,I}(n) (largest rate with miss probability ≤ δ_m) is computed in advance for every
//! n up to what the server holds. Batches of I that run longer than the SLA on k miss it
//! whatever the load: they are allowed only in the last interval (ELSA would send them to a
//! larger size otherwise) and they use up the same budget.
//!
//! **The optimum is a breakpoint.** At a fixed λ each candidate pool needs
//! N_{m,k,I}(λ) = min{n : α_{m,k,I}(n) ≥ λ·s_m·P_m(I)} instances, and whether some choice of
//! intervals fits the server is a small selection MILP:
//!
//! ```text
//!   fits(λ):  find e ∈ {0,1} (minimising GPCs)
//!   cover     Σ_{k, I ∋ j} e[m,k,I] = 1                              ∀ m, segment j of T_m
//!   one range Σ_I e[m,k,I] ≤ 1                                       ∀ m, k
//!   order     Σ_{I ∋ j} e[m,k',I] + Σ_{I: top(I) ≥ j} e[m,k,I] ≤ 1   ∀ m, j, k < k'
//!   supply    Σ_m Σ_I N_{m,k,I}(λ)·e[m,k,I] ≤ (instances of size k the GPUs hold: A or B)
//! ```
//!
//! (e[m,k,I] exists only where N_{m,k,I}(λ) is finite.) fits is monotone in λ, and the
//! largest feasible λ is attained where some chosen pool is exactly full: it is one of the
//! breakpoints α_{m,k,I}(n)/(s_m·P_m(I)). So the planner sorts the breakpoints and binary
//! searches them: the answer λ* fits (a plan), the next breakpoint provably does not (HiGHS
//! proves the MILP infeasible), so λ* is the exact optimum of the queueing model, with no
//! big-M and no count variables. `order` says that a size with a smaller batch limit is
//! smaller: no pool takes a batch that a smaller eligible size would take first. Each pool
//! keeps its own miss probability within δ = budget·(1 − margin), so the model's aggregate
//! is within it too; the simulation loop's cut for model m scales its pools' admissible
//! rates (α ← cut_m·α).
//!
//! **Spill-over.** ELSA also moves a query to a larger eligible size when it can start there
//! earlier. This MILP does not count these moves (a query that would miss on its pool is
//! counted as a miss, and the load they add to larger pools is at most δ_m of the smaller
//! pool's queries): here spill-over is bounded conservatively. The capacity predicted for
//! the chosen plan ([`crate::predict_capacity`]) models it: classes shared by several
//! sizes are split to balance the instances' utilisations, and queries wait in the pool of
//! every instance they may use.

use crate::data::LoadData;
use crate::fluid::FluidEvaluation;
use crate::milp;
use crate::milp::{lin, Builder, Outcome, Sense, Var};
use crate::pack::assign;
use crate::planner::{Job, LoadPlan};
use crate::queue::Pool;
use crate::supply::{self, Supply};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Error, GpuPlan, ModelRate, Route, SolveReport, SolveStatus};

/// Quantiles of a model's batch distribution offered as cut points.
const QUANTILES: [f64; 7] = [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995];

/// One candidate pool: size k serving the classes `lo..hi` (indices into the model's
/// classes), with its bound on λ per instance count.
pub(crate) struct Candidate {
    /// The size.
    pub k: usize,
    /// First class served.
    pub lo: usize,
    /// One past the last class served.
    pub hi: usize,
    /// `cap[n]`: the largest λ (all models) the pool allows with n instances; cap[0] = 0.
    pub cap: Vec<f64>,
}

impl Candidate {
    /// The routes of the pool as model m's: every class it serves, wholly to its size.
    pub(crate) fn routes<'a>(
        &'a self,
        d: &'a LoadData,
        m: usize,
    ) -> impl Iterator<Item = Route> + 'a {
        d.models[m].classes[self.lo..self.hi]
            .iter()
            .map(move |cl| Route {
                model: d.models[m].name.as_str().into(),
                batch: cl.batch,
                profile: d.sizes.profiles[self.k].name.clone(),
                fraction: 1.0,
            })
    }
}

/// A plan's evaluation at λ: its routes, and every model at λ times its share.
pub(crate) fn evaluation(d: &LoadData, lambda: f64, routes: Vec<Route>) -> FluidEvaluation {
    FluidEvaluation {
        lambda,
        routes,
        model_rates: d
            .models
            .iter()
            .map(|m| ModelRate {
                model: m.name.as_str().into(),
                rate_qps: lambda * m.share,
            })
            .collect(),
    }
}

/// The cut points of a model: class indices where an interval may end (exclusive ends),
/// always including the last.
fn cuts(d: &LoadData, m: usize, sla: f64) -> Vec<usize> {
    let model = &d.models[m];
    let nc = model.classes.len();
    let mut ends = vec![nc];
    let mut cum = 0.0;
    let mut qi = 0;
    for (j, c) in model.classes.iter().enumerate() {
        cum += c.prob;
        while qi < QUANTILES.len() && cum >= QUANTILES[qi] - 1e-12 {
            ends.push(j + 1);
            qi += 1;
        }
    }
    for k in 0..d.sizes.profiles.len() {
        // The largest batch each size runs within the SLA, and within half of it.
        for limit in [sla, 0.5 * sla] {
            let last = model
                .classes
                .iter()
                .rposition(|c| c.lat[k].is_some_and(|l| l <= limit));
            if let Some(j) = last {
                ends.push(j + 1);
            }
        }
    }
    ends.sort_unstable();
    ends.dedup();
    ends.retain(|&e| e > 0);
    ends
}

/// The candidate pools of model m: every interval between cut points on every size that
/// can run all of it, with its admissible λ for 1..=n_max instances.
fn candidates(d: &LoadData, m: usize, sla: f64, budget: f64, cut: f64) -> Vec<Candidate> {
    let model = &d.models[m];
    let ends = cuts(d, m, sla);
    let starts: Vec<usize> = std::iter::once(0)
        .chain(ends.iter().copied().filter(|&e| e < model.classes.len()))
        .collect();
    let nc = model.classes.len();
    let mut out = Vec::new();
    for k in 0..d.sizes.profiles.len() {
        let nmax = d.gpus * d.sizes.per_gpu(k);
        if nmax == 0 {
            continue;
        }
        for &lo in &starts {
            for &hi in ends.iter().filter(|&&e| e > lo) {
                let cls = &model.classes[lo..hi];
                if cls.iter().any(|c| c.lat[k].is_none()) {
                    continue;
                }
                // Hopeless batches only in the last interval (else ELSA sends them larger).
                let hopeless = cls.iter().any(|c| c.lat[k].is_some_and(|l| l > sla));
                if hopeless && hi < nc {
                    continue;
                }
                let mass: f64 = cls.iter().map(|c| c.prob).sum();
                let Some(pool) = Pool::new(
                    cls.iter()
                        .map(|c| (c.prob, c.lat[k].unwrap_or(f64::INFINITY))),
                    sla,
                ) else {
                    continue;
                };
                if pool.hopeless() > budget {
                    continue;
                }
                let per_lambda = model.share * mass;
                let cap: Vec<f64> = (0..=nmax)
                    .map(|n| cut * pool.admissible(n, budget) / per_lambda)
                    .collect();
                out.push(Candidate { k, lo, hi, cap });
            }
        }
    }
    out
}

/// The miss budget of each pool: budget·(1 − margin).
pub(crate) fn pool_budget(opts: &crate::PlanOptions) -> f64 {
    opts.sla.budget * (1.0 - opts.sla.margin)
}

/// The candidates of every model, or why a model has none.
pub(crate) fn all_candidates(job: &Job<LoadData>) -> Result<Vec<Vec<Candidate>>, Error> {
    let (d, opts) = (job.data, job.opts);
    let mut all = Vec::new();
    for (m, model) in d.models.iter().enumerate() {
        let sla = job.scenario.models[m].sla.0;
        let cands = candidates(d, m, sla, pool_budget(opts), opts.sla.cut(m));
        if cands.iter().all(|c| c.cap.last().is_none_or(|&x| x <= 0.0)) {
            return Err(Error::Infeasible(format!(
                "model {}: no instance size serves its batches within the {} ms SLA at the p{} target",
                model.name,
                crate::fmt_ms(sla),
                crate::fmt_ms(100.0 * (1.0 - opts.sla.budget))
            )));
        }
        all.push(cands);
    }
    Ok(all)
}

/// Instances candidate c needs to carry λ (`None`: more than the server holds).
pub(crate) fn needed(c: &Candidate, lambda: f64) -> Option<u32> {
    c.cap
        .iter()
        .skip(1)
        .position(|&x| x >= lambda * (1.0 - 1e-12))
        .map(|i| i as u32 + 1)
}

/// The selection MILP at λ, built.
struct Fit {
    /// Per model: (candidate index, instances needed, e).
    e: Vec<Vec<(usize, u32, Var)>>,
    supply: Supply,
}

fn build(job: &Job<LoadData>, cands: &[Vec<Candidate>], lambda: f64) -> (Builder, Fit) {
    let d = job.data;
    let mut b = Builder::new();
    let nk = d.sizes.profiles.len();
    let mut e = Vec::new();
    for (m, cm) in cands.iter().enumerate() {
        let em: Vec<(usize, u32, Var)> = cm
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = needed(c, lambda)?;
                Some((i, n, b.bin(format!("e[{m},{},{}..{}]", c.k, c.lo, c.hi))))
            })
            .collect();
        constrain_model(&mut b, nk, cm, &em);
        e.push(em);
    }
    let demand: Vec<Expression> = (0..nk)
        .map(|k| {
            lin(e.iter().enumerate().flat_map(|(m, em)| {
                em.iter()
                    .filter(move |(i, _, _)| cands[m][*i].k == k)
                    .map(|&(_, n, v)| (n as f64, v))
            }))
        })
        .collect();
    let supply = supply::build(job.opts.encoding, &mut b, &d.sizes, &demand, d.gpus, false);
    (b, Fit { e, supply })
}

/// `cover`, `one range` and `order` for one model.
pub(crate) fn constrain_model(
    b: &mut Builder,
    nk: usize,
    cands: &[Candidate],
    e: &[(usize, u32, Var)],
) {
    let mut bounds: Vec<usize> = cands.iter().flat_map(|c| [c.lo, c.hi]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let pick = |f: &dyn Fn(&Candidate) -> bool| {
        lin(e
            .iter()
            .filter(|(i, _, _)| f(&cands[*i]))
            .map(|&(_, _, v)| (1.0, v)))
    };
    for w in bounds.windows(2) {
        let j = w[0];
        let covering = pick(&|c| c.lo <= j && j < c.hi);
        b.push(constraint!(covering == 1.0));
        for k in 0..nk {
            for k2 in k + 1..nk {
                let serves = pick(&|c| c.k == k2 && c.lo <= j && j < c.hi);
                let limit = pick(&|c| c.k == k && c.hi > j);
                b.push(constraint!(serves + limit <= 1.0));
            }
        }
    }
    for k in 0..nk {
        let ranges = pick(&|c| c.k == k);
        b.push(constraint!(ranges <= 1.0));
    }
}

/// GPCs of the chosen instances.
fn gpcs(d: &LoadData, cands: &[Vec<Candidate>], fit: &Fit) -> Expression {
    lin(fit.e.iter().enumerate().flat_map(|(m, em)| {
        em.iter().map(move |&(i, n, v)| {
            let k = cands[m][i].k;
            (n as f64 * d.sizes.profiles[k].compute as f64, v)
        })
    }))
}

/// Solves fits(λ): the fewest-GPC selection, `None` if HiGHS proves there is none.
fn fits(
    job: &Job<LoadData>,
    cands: &[Vec<Candidate>],
    lambda: f64,
) -> Result<Option<(Fit, Outcome)>, Error> {
    let (b, fit) = build(job, cands, lambda);
    let objective = gpcs(job.data, cands, &fit);
    match b.solve(Sense::Minimise, objective, &crate::control(job.opts, false)) {
        Ok(out) => Ok(Some((fit, out))),
        Err(milp::Failure::Infeasible) => Ok(None),
        Err(f) => Err(f.into_error("SLA-aware max-load selection MILP")),
    }
}

/// The breakpoints of the candidates' admissible λ, sorted and deduplicated: the values the
/// optimum is one of.
pub(crate) fn breakpoints(cands: &[Vec<Candidate>]) -> Vec<f64> {
    let mut points: Vec<f64> = cands
        .iter()
        .flatten()
        .flat_map(|c| c.cap.iter().skip(1).copied())
        .filter(|&x| x > 0.0 && x.is_finite())
        .collect();
    points.sort_by(f64::total_cmp);
    points.dedup_by(|a, b| (*a - *b).abs() <= 1e-12 * b.abs());
    points
}

/// The largest of the sorted `points` at which `fits` finds a solution (`fits` is monotone:
/// where it fails, it fails at every larger point), by binary search: its index and the
/// solution there, `None` when even the first point fails. The point after the answer was
/// shown not to fit (or there is none).
pub(crate) fn largest_fit<T>(
    points: &[f64],
    mut fits: impl FnMut(f64) -> Result<Option<T>, Error>,
) -> Result<Option<(usize, T)>, Error> {
    let Some(&first) = points.first() else {
        return Ok(None);
    };
    let Some(mut best) = fits(first)? else {
        return Ok(None);
    };
    // Invariant: points[lo] fits, points[hi] does not (or is past the end).
    let (mut lo, mut hi) = (0usize, points.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        match fits(points[mid])? {
            Some(f) => {
                best = f;
                lo = mid;
            }
            None => hi = mid,
        }
    }
    Ok(Some((lo, best)))
}

/// Solves the SLA-aware max-load problem exactly: a binary search over the breakpoints.
pub(crate) fn solve(job: &Job<LoadData>) -> Result<LoadPlan, Error> {
    solve_with(job, &all_candidates(job)?)
}

/// [`solve`] over candidates already computed (the re-planner's).
pub(crate) fn solve_with(job: &Job<LoadData>, cands: &[Vec<Candidate>]) -> Result<LoadPlan, Error> {
    let d = job.data;
    let points = breakpoints(cands);
    if points.is_empty() {
        return Err(Error::Infeasible("no pool can serve any load".into()));
    }
    let mut status = SolveStatus::Optimal;
    let found = largest_fit(&points, |lambda| {
        let f = fits(job, cands, lambda)?;
        if let Some((_, o)) = &f {
            if o.status != SolveStatus::Optimal {
                status = o.status;
            }
        }
        Ok(f)
    })?;
    let Some((lo, best)) = found else {
        return Err(Error::Infeasible(format!(
            "no plan on {} GPUs meets every SLA at the p{} target, even at the lightest load",
            d.gpus,
            crate::fmt_ms(100.0 * (1.0 - job.opts.sla.budget))
        )));
    };
    decode(job, cands, points[lo], status, best)
}

fn decode(
    job: &Job<LoadData>,
    cands: &[Vec<Candidate>],
    lambda: f64,
    status: SolveStatus,
    (fit, out): (Fit, Outcome),
) -> Result<LoadPlan, Error> {
    let d = job.data;
    let nk = d.sizes.profiles.len();
    let mut counts = vec![vec![0u32; nk]; d.models.len()];
    let mut routes = Vec::new();
    for (m, em) in fit.e.iter().enumerate() {
        for &(i, n, v) in em {
            if out.int(v) != 1 {
                continue;
            }
            let c = &cands[m][i];
            counts[m][c.k] += n;
            routes.extend(c.routes(d, m));
        }
    }
    let gpus = placements(d, &fit.supply, &out, &counts);
    let eval = evaluation(d, lambda, routes);
    // Optimal: λ* fits and the next breakpoint is proven not to (every search step solved).
    let report = SolveReport {
        status,
        objective: lambda,
        bound: Some(lambda),
        gap: Some(0.0),
        lp_bound: None,
        solve_seconds: job.started.elapsed().as_secs_f64(),
        gpcs_used: None,
    };
    Ok(LoadPlan { gpus, eval, report })
}

/// Explicit GPUs: the decoded layouts, instances handed to models by the counts; an
/// instance no count claims joins the pool of that size with the most instances (more
/// capacity for it), or stays uncut if no model has a pool of that size.
fn placements(d: &LoadData, supply: &Supply, out: &Outcome, counts: &[Vec<u32>]) -> Vec<GpuPlan> {
    let sizes = &d.sizes;
    let mut per_gpu = supply.decode(sizes, out);
    per_gpu.resize(d.gpus as usize, Vec::new());
    let spare = |k: usize| -> Option<usize> {
        (0..counts.len())
            .filter(|&m| counts[m][k] > 0)
            .max_by_key(|&m| (counts[m][k], std::cmp::Reverse(m)))
    };
    let names: Vec<String> = d.models.iter().map(|m| m.name.clone()).collect();
    let point = |m: usize, k: usize| (d.models[m].max_batch_on(k), 1);
    assign(sizes, &per_gpu, counts, &names, &spare, &point)
}
