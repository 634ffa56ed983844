//! The SLA-aware min-gpus MILP: the fewest GPUs (then GPCs) whose instances serve every
//! model's request rate with its p99 latency within the SLO, under server-side (dynamic)
//! batching and MPS, with the queueing model of [`crate::queue`].
//!
//! **Pools.** The instances of one model on one size, all at one operating point (batch B,
//! MPS processes p, batch latency L), form a pool of c = n·p servers. Requests are grouped
//! into batches of B (under load, batches fill before the queue delay τ runs out), so the
//! pool is a c-server queue of batches with deterministic service L and batch arrivals
//! every B requests (arrival SCV 1/B). A request misses its SLO when
//!
//! ```text
//!   Δ + W + L > SLO
//! ```
//!
//! where Δ is the longest a request waits for its batch to start ([`batch_gap`]): at light
//! load the time a batch takes to fill or the queue delay τ, form = min(τ, (B − 1)·n / r);
//! under load, when an instance is never idle and each batch takes what arrived while the
//! previous ones ran, the batch time L(m)/p at the batch size m that load settles at. (The
//! first version used form alone; one 3g instance of densenet169 at batch 128 then missed
//! its SLO in simulation, 154 ms against 150, whatever the cut on its rate, because the
//! miss came from batch formation under load, not from queueing.)
//!
//! and the pool's admissible rate α_{m,k}(n) is the largest r with P(miss) ≤ δ_m
//! ([`crate::queue::Pool::admissible`]), maximised over the measured operating points.
//! τ is the simulator's queue delay for min-gpus plans: (1 − slo_factor)·min SLO / 2.
//!
//! ```text
//!   minimise  BIG·(GPUs used) + Σ_{m,k,n} n·compute_k·z[m,k,n]
//!   cover     Σ_{k,n} α_{m,k}(n)·z[m,k,n] ≥ r_m          ∀ m
//!   one pool  Σ_n z[m,k,n] ≤ 1                           ∀ m, k
//!   supply    Σ_m Σ_n n·z[m,k,n] ≤ (instances of size k the GPUs hold), GPUs ≤ U
//!   z ∈ {0, 1}
//! ```
//!
//! Pools of several sizes serving one model share its traffic in proportion to their
//! admissible rates (JSQ and ELSA balance by backlog). With the status `optimal`, no plan
//! with fewer GPUs satisfies these constraints: that is the proof the report carries.

use crate::data::RateData;
use crate::milp::{lin, Builder, Outcome, Sense, Var};
use crate::pack::assign;
use crate::planner::{Job, RatePlan};
use crate::queue::Pool;
use crate::supply::{self, Supply};
use good_lp::constraint;
use good_lp::Expression;
use migopt_models::{Curve, Error, ModelRate, Scenario, SolveReport};

/// One operating point of a (model, size).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    /// Server-side batch.
    pub batch: u32,
    /// MPS processes per instance.
    pub procs: u32,
    /// Batch latency, ms.
    pub latency: f64,
}

/// A (model, size) pool option with n instances: its point and admissible rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolOption {
    /// Instances in the pool.
    pub n: u32,
    /// The operating point every instance of the pool runs.
    pub point: Point,
    /// Admissible request rate, requests/s.
    pub rate: f64,
}

/// Admissible request rate of n instances at a point (see the module docs).
fn admissible(p: Point, curve: &Curve, n: u32, slo: f64, tau: f64, budget: f64) -> f64 {
    let c = n * p.procs;
    let b = p.batch as f64;
    let ok = |r: f64| -> bool {
        let gap = batch_gap(p, curve, n, r, tau);
        match Pool::new([(1.0, p.latency)], slo - gap) {
            Some(pool) => pool.with_arrival_scv(1.0 / b).miss(c, r / b) <= budget,
            None => false,
        }
    };
    let sat = c as f64 * b * 1000.0 / p.latency;
    if !ok(1e-6 * sat) {
        // Even a trickle misses: the latency leaves no room for a batch to form.
        return 0.0;
    }
    crate::queue::largest(sat, 1e-5, ok)
}

/// The longest a request waits for its batch to start, ms, with n instances carrying
/// `rate` requests/s at point p (each instance its share, as JSQ balances them): the
/// least fixed point of
///
/// ```text
///   Δ = max(form, L(m)/procs),   m = min(B, rate_i·Δ)
/// ```
///
/// with form = min(τ, (B − 1)/rate_i) (an idle instance starts a batch when it is full or
/// its oldest request has waited τ). Under load an instance is never idle: each of its
/// processes frees up every L(m) and takes the m requests that arrived meanwhile, so a
/// request may wait a whole batch time before its own starts, whatever τ (one 3g instance
/// of densenet169 at batch 128 and 949 requests/s settles at m ≈ 73, Δ ≈ 77 ms, where
/// form is 31 ms).
fn batch_gap(p: Point, curve: &Curve, n: u32, rate: f64, tau: f64) -> f64 {
    let per_ms = (rate / n as f64 / 1000.0).max(1e-12);
    let b = p.batch as f64;
    let form = tau.min((b - 1.0) / per_ms);
    let mut gap = form;
    for _ in 0..200 {
        let m = (per_ms * gap).clamp(1.0, b);
        let next = form.max(latency_at(curve, m).unwrap_or(p.latency) / p.procs as f64);
        if next <= gap * (1.0 + 1e-9) {
            break;
        }
        gap = next;
    }
    gap
}

/// The curve's latency at a fractional batch m, linear between measured batches (the
/// smallest measured latency below them); `None` above the largest measured batch.
fn latency_at(curve: &Curve, m: f64) -> Option<f64> {
    let (bs, ls) = (&curve.batches, &curve.latency_ms);
    let i = bs.iter().position(|&x| x as f64 >= m)?;
    if i == 0 {
        return ls.first().copied();
    }
    let (b0, b1) = (bs[i - 1] as f64, bs[i] as f64);
    Some(ls[i - 1] + (m - b0) / (b1 - b0) * (ls[i] - ls[i - 1]))
}

/// The measured operating points of model m on size k with at most `max_procs` processes,
/// each with its curve.
fn points<'a>(
    s: &'a Scenario,
    d: &RateData,
    m: usize,
    k: usize,
    max_procs: Option<u32>,
) -> Vec<(Point, &'a Curve)> {
    let name = d.models[m].name.as_str();
    let prof = d.sizes.profiles[k].name.as_str();
    let mut out = Vec::new();
    for procs in s.profiles.procs_of(name, prof) {
        if max_procs.is_some_and(|c| procs > c) {
            continue;
        }
        if let Some(c) = s.profiles.curve(name, prof, procs) {
            for (&b, &l) in c.batches.iter().zip(&c.latency_ms) {
                let point = Point {
                    batch: b,
                    procs,
                    latency: l,
                };
                out.push((point, c));
            }
        }
    }
    out
}

/// The simulator's queue delay for a min-gpus plan.
fn queue_delay(s: &Scenario, slo_factor: f64) -> f64 {
    let sla = s
        .models
        .iter()
        .map(|m| m.sla.0)
        .fold(f64::INFINITY, f64::min);
    sla * (1.0 - slo_factor).clamp(0.0, 1.0) / 2.0
}

/// What the pool options of a scenario are computed from: per (model, size) the measured
/// operating points, per model the SLO the pools are sized for and the loop's cut, and the
/// queue delay and miss budget. The re-planner ([`crate::replan`]) reads the same table.
pub(crate) struct PoolTable<'a> {
    points: Vec<Vec<Vec<(Point, &'a Curve)>>>,
    slo: Vec<f64>,
    cut: Vec<f64>,
    tau: f64,
    budget: f64,
}

impl<'a> PoolTable<'a> {
    /// The table of a job (its scenario, data and SLA options).
    pub(crate) fn new(job: &Job<'a, RateData>) -> Self {
        let (s, d, opts) = (job.scenario, job.data, job.opts);
        let max_procs = crate::data::max_procs(&opts.params, s);
        let nk = d.sizes.profiles.len();
        Self {
            points: (0..d.models.len())
                .map(|m| (0..nk).map(|k| points(s, d, m, k, max_procs)).collect())
                .collect(),
            // The simulation loop's latency cut tightens the SLO the pools are sized for.
            slo: (0..d.models.len())
                .map(|m| s.models[m].sla.0 - opts.sla.slo_cut(m))
                .collect(),
            cut: (0..d.models.len()).map(|m| opts.sla.cut(m)).collect(),
            tau: queue_delay(s, opts.params.slo_factor),
            budget: crate::slaload::pool_budget(opts),
        }
    }

    /// The best pool of n instances of model m on size k: the point with the largest
    /// admissible rate (scaled by the model's cut), `None` where no point admits any load.
    pub(crate) fn best(&self, m: usize, k: usize, n: u32) -> Option<PoolOption> {
        self.points[m][k]
            .iter()
            .map(|&(p, curve)| PoolOption {
                n,
                point: p,
                rate: self.cut[m] * admissible(p, curve, n, self.slo[m], self.tau, self.budget),
            })
            .filter(|o| o.rate > 0.0)
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// Refuses, before the options are built (which grows pools one instance at a time),
    /// a model no size serves at all, or one whose rate no single size carries in a pool of
    /// [`MAX_POOL`] instances: the first such model (scenario order) is named. (The MILP's
    /// GPU limit is each model's best single pool; pools beyond that are too large to
    /// weigh.)
    pub(crate) fn check_pools(&self, job: &Job<RateData>, rates: &[f64]) -> Result<(), Error> {
        let sizes = &job.data.sizes;
        for (m, &rate) in rates.iter().enumerate() {
            if self.carries_within(m, rate, MAX_POOL) {
                continue;
            }
            let largest = (0..self.points[m].len())
                .filter_map(|k| Some((k, self.best(m, k, MAX_POOL)?.rate)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let name = &job.data.models[m].name;
            let slo = crate::fmt_ms(job.scenario.models[m].sla.0);
            let pct = crate::fmt_ms(100.0 * (1.0 - job.opts.sla.budget));
            let Some((k, most)) = largest else {
                return Err(Error::Infeasible(format!(
                    "model {name}: no instance size serves any of its load with p{pct} latency \
                     within the {slo} ms SLO"
                )));
            };
            if most < rate {
                return Err(Error::Infeasible(format!(
                    "model {name}: field model.rate_qps: {rate:.1} queries/s is more than \
                     {MAX_POOL} instances of any one size carry with p{pct} latency within the \
                     {slo} ms SLO (the most: {most:.1} queries/s on {}), the largest pool the \
                     SLA-aware planner weighs; plan it with --solver milp, or split the \
                     model's traffic (at most {most:.1} queries/s each)",
                    sizes.profiles[k].name
                )));
            }
        }
        Ok(())
    }

    /// Whether a pool of at most `most` instances of one size carries `rate` for model m.
    /// Pools of 1, 2, 4, … instances are tried, then `most`: the admissible rate grows with
    /// the pool, so where a small pool carries the rate (every model of a plan that fits)
    /// the queueing sums of the large pools are never computed (pools of [`MAX_POOL`] alone
    /// took 1.8–4.7 s per ParvaGPU scenario, where the whole plan takes 0.02–0.2 s without:
    /// BENCHMARKS.md, thirteenth stop).
    fn carries_within(&self, m: usize, rate: f64, most: u32) -> bool {
        (0..self.points[m].len()).any(|k| {
            let mut n = 1u32;
            loop {
                if self.best(m, k, n).is_some_and(|o| o.rate >= rate) {
                    return true;
                }
                if n >= most {
                    return false;
                }
                n = n.saturating_mul(2).min(most);
            }
        })
    }

    /// Pool options per (model, size): for n = 1.. until the pool alone carries the model's
    /// rate (`rates`, scenario order) and n ≥ `at_least(m, k)`, or n reaches `most(k)` (the
    /// instances of size k the plan's GPUs can hold: no larger pool fits), the best point
    /// and its admissible rate. Refuses (`Infeasible`) tables of more than [`MAX_OPTIONS`]
    /// options in all.
    pub(crate) fn options(
        &self,
        rates: &[f64],
        at_least: &dyn Fn(usize, usize) -> u32,
        most: &dyn Fn(usize) -> u32,
    ) -> Result<Options, Error> {
        let mut total = 0usize;
        let mut all = Vec::with_capacity(self.points.len());
        for m in 0..self.points.len() {
            let mut per_size = Vec::with_capacity(self.points[m].len());
            for k in 0..self.points[m].len() {
                let mut out = Vec::new();
                self.grow(
                    (m, k),
                    &mut out,
                    &mut total,
                    rates,
                    (at_least(m, k), most(k)),
                )?;
                per_size.push(out);
            }
            all.push(per_size);
        }
        Ok(all)
    }

    /// Grows the pools of model m on size k after the last in `out`, one instance at a
    /// time, until a pool of n ≥ `at_least` instances carries the model's rate, or n reaches
    /// `most` (`(at_least, most)`); `total` counts the options of the whole table (at most
    /// [`MAX_OPTIONS`]).
    fn grow(
        &self,
        (m, k): (usize, usize),
        out: &mut Vec<PoolOption>,
        total: &mut usize,
        rates: &[f64],
        (at_least, most): (u32, u32),
    ) -> Result<(), Error> {
        let mut n = out.last().map_or(1, |o| o.n + 1);
        while n <= most.max(1) {
            let Some(o) = self.best(m, k, n) else { break };
            out.push(o);
            *total += 1;
            if *total > MAX_OPTIONS {
                return Err(too_many_options(rates));
            }
            if (o.rate >= rates[m] && n >= at_least) || n >= most {
                break;
            }
            n += 1;
        }
        Ok(())
    }
}

/// The refusal of a table past [`MAX_OPTIONS`].
fn too_many_options(rates: &[f64]) -> Error {
    let total: f64 = rates.iter().sum();
    Error::Infeasible(format!(
        "field model.rate_qps: at {total:.1} queries/s in all the SLA-aware planner would weigh \
         more than {MAX_OPTIONS} pool options (one per model, size and instance count up to \
         what the plan's GPUs hold), which it does not build; plan it with --solver milp, or \
         split the traffic over several scenarios"
    ))
}

/// The largest pool the first pass of the options considers (see [`pool_options`]).
pub(crate) const MAX_POOL: u32 = 4096;

/// The most pool options (binaries of the MILP) a table may hold.
const MAX_OPTIONS: usize = 200_000;

struct Model {
    z: Vec<Vec<Vec<(PoolOption, Var)>>>,
    supply: Supply,
}

/// The pool binaries z[m,k,n], one per option of each (model, size), beside their options.
pub(crate) fn pool_vars(
    b: &mut Builder,
    opts: &[Vec<Vec<PoolOption>>],
) -> Vec<Vec<Vec<(PoolOption, Var)>>> {
    opts.iter()
        .enumerate()
        .map(|(m, om)| {
            om.iter()
                .enumerate()
                .map(|(k, ok)| {
                    ok.iter()
                        .map(|&o| (o, b.bin(format!("z[{m},{k},{}]", o.n))))
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn build(job: &Job<RateData>, opts: &[Vec<Vec<PoolOption>>], max_gpus: u32) -> (Builder, Model) {
    let d = job.data;
    let mut b = Builder::new();
    let z = pool_vars(&mut b, opts);
    for (m, zm) in z.iter().enumerate() {
        let served = lin(zm.iter().flatten().map(|&(o, v)| (o.rate, v)));
        b.push(constraint!(served >= d.models[m].rate));
        for zk in zm {
            let pools = lin(zk.iter().map(|&(_, v)| (1.0, v)));
            b.push(constraint!(pools <= 1.0));
        }
    }
    let nk = d.sizes.profiles.len();
    let demand: Vec<Expression> = (0..nk)
        .map(|k| {
            lin(z
                .iter()
                .flat_map(|zm| zm[k].iter().map(|&(o, v)| (o.n as f64, v))))
        })
        .collect();
    let supply = supply::build(job.opts.encoding, &mut b, &d.sizes, &demand, max_gpus, true);
    (b, Model { z, supply })
}

/// An upper limit on GPUs: each model alone on its own GPUs, in its best single pool (the
/// options pass [`PoolTable::check_pools`], so every size that serves the model at all
/// has a pool that carries its rate).
fn limit(d: &RateData, opts: &[Vec<Vec<PoolOption>>]) -> u32 {
    let mut total = 0u32;
    for (m, om) in opts.iter().enumerate() {
        let single = om
            .iter()
            .enumerate()
            .filter_map(|(k, ok)| {
                let o = ok.iter().find(|o| o.rate >= d.models[m].rate)?;
                Some(o.n.div_ceil(d.sizes.per_gpu(k).max(1)))
            })
            .min()
            .unwrap_or(0);
        total = total.saturating_add(single);
    }
    total.max(1)
}

/// Pool options per model, size and instance count.
type Options = Vec<Vec<Vec<PoolOption>>>;

/// The options of the MILP and its GPU limit. A first pass grows each size's pools until one
/// carries the model's rate or holds `first` instances; the limit is each model's best
/// single pool (or `--cap-gpus`). Pools larger than the limit's GPUs hold are dropped, and
/// a size whose pools stopped short of the rate where the GPUs could hold a larger one is
/// grown to what they hold: no plan within the limit is left out of the proof. (The result
/// does not depend on `first`, so long as some size carries every model within it.)
fn pool_options(
    job: &Job<RateData>,
    table: &PoolTable<'_>,
    rates: &[f64],
    first: u32,
) -> Result<(Options, u32), Error> {
    let d = job.data;
    let mut opts = table.options(rates, &|_, _| 0, &|_| first)?;
    let mut max_gpus = limit(d, &opts);
    if let Some(cap) = job.opts.gpu_cap {
        max_gpus = max_gpus.min(cap);
    }
    let most = |k: usize| max_gpus.saturating_mul(d.sizes.per_gpu(k).max(1));
    for om in &mut opts {
        for (k, ok) in om.iter_mut().enumerate() {
            ok.retain(|o| o.n <= most(k));
        }
    }
    let mut total: usize = opts.iter().flatten().map(Vec::len).sum();
    for (m, om) in opts.iter_mut().enumerate() {
        for (k, ok) in om.iter_mut().enumerate() {
            let cut_short = ok.last().is_some_and(|o| o.n >= first && o.rate < rates[m]);
            if cut_short && most(k) > first {
                table.grow((m, k), ok, &mut total, rates, (0, most(k)))?;
            }
        }
    }
    Ok((opts, max_gpus))
}

/// Solves the SLA-aware min-gpus MILP.
pub(crate) fn solve(job: &Job<RateData>) -> Result<RatePlan, Error> {
    let d = job.data;
    let table = PoolTable::new(job);
    let rates: Vec<f64> = d.models.iter().map(|m| m.rate).collect();
    table.check_pools(job, &rates)?;
    let (opts, max_gpus) = pool_options(job, &table, &rates, MAX_POOL)?;
    let (b, model) = build(job, &opts, max_gpus);
    let cs = d.sizes.gpu.compute_slices as f64;
    let big = cs * max_gpus as f64 + 1.0;
    let gpc_expr = lin(model.z.iter().flat_map(|zm| {
        zm.iter().enumerate().flat_map(|(k, zk)| {
            let c = d.sizes.profiles[k].compute as f64;
            zk.iter().map(move |&(o, v)| (c * o.n as f64, v))
        })
    }));
    let objective = model.supply.gpus() * big + gpc_expr;
    let out = b
        .solve(Sense::Minimise, objective, &crate::control(job.opts, false))
        .map_err(|f| match f {
            crate::milp::Failure::Infeasible => Error::Infeasible(format!(
                "the rate targets need more than {max_gpus} GPUs under the queueing model"
            )),
            f => f.into_error("SLA-aware min-gpus MILP"),
        })?;
    decode(job, &model, &out, big)
}

fn decode(job: &Job<RateData>, model: &Model, out: &Outcome, big: f64) -> Result<RatePlan, Error> {
    let d = job.data;
    let nk = d.sizes.profiles.len();
    let mut counts = vec![vec![0u32; nk]; d.models.len()];
    let mut chosen: Vec<Vec<Option<PoolOption>>> = vec![vec![None; nk]; d.models.len()];
    for (m, zm) in model.z.iter().enumerate() {
        for (k, zk) in zm.iter().enumerate() {
            if let Some(&(o, _)) = zk.iter().find(|&&(_, v)| out.int(v) == 1) {
                counts[m][k] = o.n;
                chosen[m][k] = Some(o);
            }
        }
    }
    let per_gpu = model.supply.decode(&d.sizes, out);
    let point = |m: usize, k: usize| {
        chosen[m][k]
            .map(|o| (o.point.batch, o.point.procs))
            .unwrap_or((1, 1))
    };
    let gpus = crate::renumber(assign(
        &d.sizes,
        &per_gpu,
        &counts,
        &d.names(),
        &|_| None,
        &point,
    ));
    let used = gpus.len() as f64;
    let report = SolveReport {
        solve_seconds: job.started.elapsed().as_secs_f64(),
        ..crate::finish::min_gpus_report(out, big, used, None)
    };
    let model_rates = d
        .models
        .iter()
        .enumerate()
        .map(|(m, rm)| ModelRate {
            model: rm.name.as_str().into(),
            rate_qps: chosen[m].iter().flatten().map(|o| o.rate).sum(),
        })
        .collect();
    Ok(RatePlan {
        gpus,
        model_rates: Some(model_rates),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> Curve {
        // densenet169 on 3g.40gb, one process (ParvaGPU data set).
        Curve {
            batches: vec![1, 16, 32, 64, 128],
            latency_ms: vec![17.0, 22.0, 41.0, 75.0, 88.0],
            p99_ms: vec![17.0, 22.0, 41.0, 75.0, 88.0],
            throughput_qps: vec![58.0, 738.0, 771.0, 849.0, 1460.0],
            has_p99: false,
        }
    }

    #[test]
    fn a_busy_instance_waits_a_batch_time_not_the_queue_delay() {
        let p = Point {
            batch: 128,
            procs: 1,
            latency: 88.0,
        };
        let c = curve();
        // Light load: the queue delay.
        assert!((batch_gap(p, &c, 1, 10.0, 31.0) - 31.0).abs() < 1e-9);
        // 949 requests/s on one instance: batches settle near 73 requests, about 77 ms.
        let g = batch_gap(p, &c, 1, 949.0, 31.0);
        assert!(g > 75.0 && g < 79.0, "{g}");
        // The same load on two instances is back under the queue delay.
        assert!((batch_gap(p, &c, 2, 949.0, 31.0) - 31.0).abs() < 1e-9);
        // So one instance is not admissible at 949/s for a 150 ms SLO, two are.
        assert!(admissible(p, &c, 1, 150.0, 31.0, 0.009) < 949.0);
        assert!(admissible(p, &c, 2, 150.0, 31.0, 0.009) > 949.0);
    }

    #[test]
    fn latency_is_linear_between_measured_batches() {
        let c = curve();
        assert_eq!(latency_at(&c, 0.5), Some(17.0));
        assert_eq!(latency_at(&c, 96.0), Some(81.5));
        assert_eq!(latency_at(&c, 129.0), None);
    }

    /// The options' lengths and rates, to compare tables.
    fn shape(o: &Options) -> Vec<Vec<Vec<(u32, u64)>>> {
        o.iter()
            .map(|om| {
                om.iter()
                    .map(|ok| ok.iter().map(|p| (p.n, p.rate.to_bits())).collect())
                    .collect()
            })
            .collect()
    }

    /// ParvaGPU's third SLO scenario, as the SLA-aware min-gpus planner reads it.
    fn parvagpu_job(f: impl FnOnce(&Job<RateData>)) {
        let dir = migopt_profiles::parvagpu::dataset_dir();
        let import = migopt_profiles::parvagpu::read(&dir).unwrap();
        let s = import.scenario(&import.scenarios[2]).unwrap();
        let opts = crate::PlanOptions {
            objective: migopt_models::Objective::MinGpus,
            ..Default::default()
        };
        let d =
            crate::data::rate_data(&s, &crate::sla::open_params(&opts.params), opts.rules).unwrap();
        f(&Job {
            scenario: &s,
            data: &d,
            opts: &opts,
            started: std::time::Instant::now(),
        });
    }

    /// The doubling check says a rate is carried exactly where the largest pool of some size
    /// carries it (the admissible rate grows with the pool): just below and just above the
    /// most that pools of 48 instances carry (not a power of two: the last step is cut to
    /// it), and each model's own rate within [`MAX_POOL`] (a small pool carries it: fast).
    #[test]
    fn pools_carry_a_rate_where_the_largest_pool_does() {
        const MOST: u32 = 48;
        parvagpu_job(|job| {
            let table = PoolTable::new(job);
            for m in 0..job.data.models.len() {
                let most = (0..job.data.sizes.profiles.len())
                    .filter_map(|k| table.best(m, k, MOST))
                    .map(|o| o.rate)
                    .fold(0.0, f64::max);
                assert!(most > 0.0);
                assert!(table.carries_within(m, job.data.models[m].rate, MAX_POOL));
                assert!(table.carries_within(m, most * (1.0 - 1e-9), MOST));
                assert!(!table.carries_within(m, most * (1.0 + 1e-9), MOST));
            }
        });
    }

    #[test]
    fn pool_options_do_not_depend_on_where_the_first_pass_stops() {
        parvagpu_job(pool_options_for);
    }

    fn pool_options_for(job: &Job<RateData>) {
        let d = job.data;
        let table = PoolTable::new(job);
        let rates: Vec<f64> = d.models.iter().map(|m| m.rate).collect();
        table.check_pools(job, &rates).unwrap();
        let (full, gpus) = pool_options(job, &table, &rates, MAX_POOL).unwrap();
        // Every list carries its model's rate or ends where the GPU limit's GPUs are full.
        for (om, &rate) in full.iter().zip(&rates) {
            for (k, ok) in om.iter().enumerate() {
                if let Some(o) = ok.last() {
                    let most = gpus * d.sizes.per_gpu(k);
                    assert!(o.rate >= rate || o.n == most, "size {k}: {} of {most}", o.n);
                    assert!(o.n <= most);
                }
            }
        }
        // The smallest first pass within which some size carries every model: the lists it
        // stops short grow back to the same table.
        let first = full
            .iter()
            .zip(&rates)
            .filter_map(|(om, &rate)| {
                om.iter()
                    .filter_map(|ok| ok.iter().find(|o| o.rate >= rate).map(|o| o.n))
                    .min()
            })
            .max()
            .unwrap();
        let longest = full.iter().flatten().map(|ok| ok.len()).max().unwrap();
        assert!(
            longest > first as usize,
            "the first pass of {first} cuts no list short"
        );
        let (small, gpus_small) = pool_options(job, &table, &rates, first).unwrap();
        assert_eq!(gpus_small, gpus);
        assert_eq!(shape(&small), shape(&full));
    }
}
