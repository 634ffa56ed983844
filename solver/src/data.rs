//! The numbers every planner works from, read once from a scenario: which instance sizes
//! may be used, the maximal layouts, and per model the latency of each query class (max-load)
//! or the best feasible operating point of each size (min-gpus). Infeasible input is
//! reported here, in the user's terms, before any solver runs.

use crate::fmt_ms;
use migopt_models::limits::{MAX_GPUS, MAX_INSTANCES_PER_MODEL};
use migopt_models::{
    enumerate_maximal, Catalogue, Error, GpuSpec, Layout, LayoutRules, PlanParams, ProfileClass,
    ProfileSpec, Scenario,
};

/// The instance sizes (profiles) a planner may cut GPUs into, with the maximal layouts.
#[derive(Debug, Clone)]
pub(crate) struct Sizes {
    /// The GPU kind.
    pub gpu: &'static GpuSpec,
    /// Usable profiles, smallest first (classic only unless `rules.all_profiles`).
    pub profiles: Vec<&'static ProfileSpec>,
    /// Maximal layouts of one GPU under the rules.
    pub layouts: Vec<Layout>,
    /// `count[l][k]`: instances of `profiles[k]` in `layouts[l]`.
    pub count: Vec<Vec<u32>>,
    /// The layouts encoding A needs: one per distinct count vector, leaving out any whose
    /// counts another layout's counts cover (instances may stay unused, so a GPU can always
    /// take the covering layout instead). The choice among same-count layouts is only where
    /// the instances start; dropping the duplicates removes symmetry from the MILP.
    pub patterns: Vec<usize>,
    /// The rules the sizes were chosen under.
    pub rules: LayoutRules,
}

impl Sizes {
    /// Sizes of the scenario's GPU under `rules`; errors if the scenario (built in code, not
    /// loaded) names a GPU the catalogue does not know, or serves no model.
    pub fn new(scenario: &Scenario, rules: LayoutRules) -> Result<Self, Error> {
        if scenario.models.is_empty() {
            return Err(Error::Invalid(format!(
                "scenario {} serves no model",
                scenario.name
            )));
        }
        Ok(Self::for_gpu(
            Catalogue::builtin().gpu(scenario.gpu.as_str())?,
            rules,
        ))
    }

    /// Sizes of a GPU kind under `rules`.
    pub fn for_gpu(gpu: &'static GpuSpec, rules: LayoutRules) -> Self {
        let mut profiles: Vec<&'static ProfileSpec> = gpu
            .profiles
            .iter()
            .filter(|p| rules.all_profiles || p.class == ProfileClass::Classic)
            .collect();
        profiles.sort_by_key(|p| (p.compute, p.slots, p.class != ProfileClass::Classic));
        let layouts = enumerate_maximal(gpu, rules);
        let count: Vec<Vec<u32>> = layouts
            .iter()
            .map(|l| {
                profiles
                    .iter()
                    .map(|p| l.instances.iter().filter(|i| i.profile == p.name).count() as u32)
                    .collect()
            })
            .collect();
        Self {
            gpu,
            profiles,
            layouts,
            patterns: patterns(&count),
            count,
            rules,
        }
    }

    /// Index of a profile among the usable sizes.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.profiles.iter().position(|p| p.name.as_str() == name)
    }

    /// Index of the classic profile with this many compute slices.
    pub fn classic(&self, compute: u32) -> Option<usize> {
        self.profiles
            .iter()
            .position(|p| p.class == ProfileClass::Classic && p.compute == compute)
    }

    /// Most instances of size `k` one GPU can hold.
    pub fn per_gpu(&self, k: usize) -> u32 {
        self.count.iter().map(|c| c[k]).max().unwrap_or(0)
    }

    /// The profile names, comma separated, for messages.
    pub fn names(&self) -> String {
        self.profiles
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Layouts with distinct count vectors that no other layout's counts cover, first of each
/// in the enumeration's order.
fn patterns(count: &[Vec<u32>]) -> Vec<usize> {
    let covers = |a: &[u32], b: &[u32]| a.iter().zip(b).all(|(x, y)| x >= y);
    let mut out: Vec<usize> = Vec::new();
    for (l, c) in count.iter().enumerate() {
        let dominated = count
            .iter()
            .enumerate()
            .any(|(j, d)| j != l && covers(d, c) && (d != c || j < l));
        if !dominated {
            out.push(l);
        }
    }
    out
}

/// One query class of a model for max-load: a batch size and its probability.
#[derive(Debug, Clone)]
pub(crate) struct Class {
    /// Query batch size.
    pub batch: u32,
    /// Probability of the batch size among the model's queries.
    pub prob: f64,
    /// Latency (ms) on each size, `None` where the size cannot serve the class within
    /// β·SLA (or has no latency for it).
    pub lat: Vec<Option<f64>>,
}

/// A model as max-load sees it.
#[derive(Debug, Clone)]
pub(crate) struct LoadModel {
    /// Model name.
    pub name: String,
    /// Share of all queries.
    pub share: f64,
    /// Its query classes.
    pub classes: Vec<Class>,
}

impl LoadModel {
    /// Whether some class of the model may run on size `k`.
    pub fn uses(&self, k: usize) -> bool {
        self.classes.iter().any(|c| c.lat[k].is_some())
    }
    /// Mean latency of a query on size `k` (every class must fit there).
    pub fn mean_latency(&self, k: usize) -> Option<f64> {
        self.classes
            .iter()
            .map(|c| c.lat[k].map(|l| c.prob * l))
            .sum()
    }
    /// Largest batch that may run on size `k`.
    pub fn max_batch_on(&self, k: usize) -> u32 {
        self.classes
            .iter()
            .filter(|c| c.lat[k].is_some())
            .map(|c| c.batch)
            .max()
            .unwrap_or(1)
    }
}

/// Everything max-load planners need.
#[derive(Debug, Clone)]
pub(crate) struct LoadData {
    /// Sizes and layouts.
    pub sizes: Sizes,
    /// Models in scenario order.
    pub models: Vec<LoadModel>,
    /// GPUs in the server.
    pub gpus: u32,
    /// Highest planned utilisation ρ.
    pub rho: f64,
}

/// Reads the max-load view of a scenario, or explains why no plan can exist.
pub(crate) fn load_data(
    scenario: &Scenario,
    params: &PlanParams,
    rules: LayoutRules,
) -> Result<LoadData, Error> {
    check_params(params)?;
    let sizes = Sizes::new(scenario, rules)?;
    let shares = scenario.shares();
    let mut models = Vec::new();
    for (mi, m) in scenario.models.iter().enumerate() {
        let name = m.name.as_str();
        let curves: Vec<_> = sizes
            .profiles
            .iter()
            .map(|p| scenario.profiles.curve(name, p.name.as_str(), 1))
            .collect();
        if curves.iter().all(|c| c.is_none()) {
            return Err(no_profile(scenario, &sizes, name, " with 1 process"));
        }
        let limit = params.sla_fraction * m.sla.0;
        let mut classes = Vec::new();
        for (batch, prob) in m.batch.pmf() {
            let raw: Vec<Option<f64>> = curves
                .iter()
                .map(|c| {
                    c.and_then(|c| c.latency(batch, scenario.batch_lookup))
                        .map(|l| l.0)
                })
                .collect();
            let lat: Vec<Option<f64>> = raw.iter().map(|l| l.filter(|&l| l <= limit)).collect();
            if lat.iter().all(|l| l.is_none()) {
                return Err(Error::Infeasible(class_message(
                    scenario, &sizes, mi, batch, &raw, params,
                )));
            }
            classes.push(Class { batch, prob, lat });
        }
        models.push(LoadModel {
            name: name.to_string(),
            share: shares[mi],
            classes,
        });
    }
    Ok(LoadData {
        sizes,
        models,
        gpus: scenario.gpu_count,
        rho: params.max_utilisation,
    })
}

fn check_params(p: &PlanParams) -> Result<(), Error> {
    let ok = |v: f64| v.is_finite() && v > 0.0;
    if !ok(p.max_utilisation) || p.max_utilisation > 1.0 {
        return Err(Error::Invalid(format!(
            "max utilisation {} must be in (0, 1]",
            p.max_utilisation
        )));
    }
    if !ok(p.rate_headroom) || p.rate_headroom > 1.0 {
        return Err(Error::Invalid(format!(
            "rate headroom {} must be in (0, 1]",
            p.rate_headroom
        )));
    }
    if !ok(p.sla_fraction) || !ok(p.slo_factor) {
        return Err(Error::Invalid(format!(
            "SLA fraction {} and SLO factor {} must be positive",
            p.sla_fraction, p.slo_factor
        )));
    }
    Ok(())
}

fn no_profile(scenario: &Scenario, sizes: &Sizes, model: &str, what: &str) -> Error {
    let measured = scenario.profiles.profiles_of(model);
    let extra = if measured.is_empty() {
        String::new()
    } else {
        format!(
            " (it is measured on {}{})",
            measured
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if sizes.rules.all_profiles {
                ""
            } else {
                "; enable all profiles to use non-classic ones"
            }
        )
    };
    Error::Infeasible(format!(
        "model {model}: no latency profile{what} on any MIG profile the planner may use ({}){extra}",
        sizes.names()
    ))
}

/// The user-terms explanation for a query class no size can serve.
fn class_message(
    scenario: &Scenario,
    sizes: &Sizes,
    mi: usize,
    batch: u32,
    raw: &[Option<f64>],
    params: &PlanParams,
) -> String {
    let m = &scenario.models[mi];
    let name = m.name.as_str();
    let best = raw
        .iter()
        .enumerate()
        .filter_map(|(k, l)| l.map(|l| (k, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        Some((k, l)) => {
            let largest = sizes
                .profiles
                .iter()
                .enumerate()
                .filter(|(j, _)| raw[*j].is_some())
                .map(|(j, p)| (p.compute, p.slots, j))
                .max()
                .map(|t| t.2);
            let which = if largest == Some(k) {
                "the largest profile"
            } else {
                "the fastest profile"
            };
            format!(
                "model {name}: batch {batch} needs {} ms on {}, {which}, but the SLA allows {} × {} ms = {} ms",
                fmt_ms(l),
                sizes.profiles[k].name,
                fmt_ms(params.sla_fraction),
                fmt_ms(m.sla.0),
                fmt_ms(params.sla_fraction * m.sla.0)
            )
        }
        None => {
            let measured = sizes
                .profiles
                .iter()
                .filter_map(|p| {
                    scenario
                        .profiles
                        .curve(name, p.name.as_str(), 1)
                        .map(|c| (c.max_batch(), p))
                })
                .max_by_key(|(b, p)| (*b, p.compute));
            match measured {
                Some((mb, p)) if batch > mb => format!(
                    "model {name}: batch {batch} is larger than any measured batch (the largest is {mb}, on {}); \
                     measure it or cap the batch distribution",
                    p.name
                ),
                _ => format!(
                    "model {name}: batch {batch} was not measured on any profile and the batch lookup is exact"
                ),
            }
        }
    }
}

/// The best way to run a model on one size for min-gpus: server-side batch, MPS processes
/// and the resulting capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OpPoint {
    /// Server-side batch.
    pub batch: u32,
    /// MPS processes.
    pub procs: u32,
    /// Batch latency, ms.
    pub latency: f64,
    /// Requests per second the instance serves.
    pub throughput: f64,
}

/// A model as min-gpus sees it.
#[derive(Debug, Clone)]
pub(crate) struct RateModel {
    /// Model name.
    pub name: String,
    /// Target rate, requests per second.
    pub rate: f64,
    /// Best feasible point per size (`None`: the size cannot serve the model).
    pub best: Vec<Option<OpPoint>>,
    /// Fewest GPCs any set of instances serving the model alone can have (a knapsack solved
    /// exactly by dynamic programming); a valid cut for the MILP.
    pub min_gpcs: u32,
}

/// Everything min-gpus planners need.
#[derive(Debug, Clone)]
pub(crate) struct RateData {
    /// Sizes and layouts.
    pub sizes: Sizes,
    /// Models in scenario order.
    pub models: Vec<RateModel>,
}

impl RateData {
    /// The (batch, procs) model m runs on size k: its best feasible point ((1, 1) where the
    /// size cannot serve it).
    pub fn point(&self, m: usize, k: usize) -> (u32, u32) {
        self.models[m].best[k]
            .map(|o| (o.batch, o.procs))
            .unwrap_or((1, 1))
    }

    /// Requests/s one instance of size k serves for model m at its best point (0 if it
    /// cannot run there).
    pub fn throughput(&self, m: usize, k: usize) -> f64 {
        self.models[m].best[k].map_or(0.0, |o| o.throughput)
    }

    /// Model names in scenario order.
    pub fn names(&self) -> Vec<String> {
        self.models.iter().map(|m| m.name.clone()).collect()
    }
}

/// The most MPS processes an instance may run: the smaller of the planning parameter and
/// the scenario's `[options] max_procs`, where either is given.
pub(crate) fn max_procs(params: &PlanParams, scenario: &Scenario) -> Option<u32> {
    match (params.max_procs, scenario.max_procs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads the min-gpus view of a scenario, or explains why no plan can exist.
pub(crate) fn rate_data(
    scenario: &Scenario,
    params: &PlanParams,
    rules: LayoutRules,
) -> Result<RateData, Error> {
    check_params(params)?;
    let max_procs = max_procs(params, scenario);
    if max_procs == Some(0) {
        return Err(Error::Invalid("--max-procs must be at least 1".into()));
    }
    let Some(rates) = scenario.rates() else {
        return Err(Error::Infeasible(format!(
            "scenario {}: field model.rate_qps: fewest-GPUs planning needs a request rate for every model, \
             but the scenario gives shares (plan it for max-load)",
            scenario.name
        )));
    };
    let sizes = Sizes::new(scenario, rules)?;
    let models = (0..scenario.models.len())
        .map(|mi| rate_model(scenario, &sizes, params, max_procs, mi, rates[mi]))
        .collect::<Result<Vec<_>, _>>()?;
    check_total(scenario, &sizes, &models)?;
    Ok(RateData { sizes, models })
}

/// Model `mi` as min-gpus sees it, or why no plan can serve it.
fn rate_model(
    scenario: &Scenario,
    sizes: &Sizes,
    params: &PlanParams,
    max_procs: Option<u32>,
    mi: usize,
    rate: f64,
) -> Result<RateModel, Error> {
    let m = &scenario.models[mi];
    let name = m.name.as_str();
    single_requests(m)?;
    let limit = params.slo_factor * m.sla.0;
    let mut scan = Scan {
        // This model's curves alone, by a range query: linear in its own curves, not in the
        // whole set (1,000 models sharing one set took 4 s of lookups without it).
        own: scenario.profiles.only(name),
        name,
        limit,
        procs_cap: max_procs.unwrap_or(u32::MAX),
        headroom: params.rate_headroom,
        any: false,
        fastest: None,
    };
    let best: Vec<Option<OpPoint>> = sizes
        .profiles
        .iter()
        .enumerate()
        .map(|(k, p)| scan.best_point(k, p.name.as_str()))
        .collect();
    if !scan.any {
        return Err(no_profile(scenario, sizes, name, ""));
    }
    if best.iter().all(|b| b.is_none()) {
        let (l, b, procs, k) = scan.fastest.unwrap_or((f64::NAN, 0, 0, 0));
        return Err(Error::Infeasible(format!(
            "model {name}: no measured (profile, batch, processes) point runs within {} × {} ms = {} ms; \
             the fastest is batch {b} with {procs} process{} on {} at {} ms",
            fmt_ms(params.slo_factor),
            fmt_ms(m.sla.0),
            fmt_ms(limit),
            if procs == 1 { "" } else { "es" },
            sizes.profiles[k].name,
            fmt_ms(l)
        )));
    }
    check_instances(scenario, sizes, name, &best, rate)?;
    let (min_gpcs, _) = min_gpcs(sizes, &best, rate);
    Ok(RateModel {
        name: name.to_string(),
        rate,
        best,
        min_gpcs,
    })
}

/// Min-gpus plans single requests batched on the server (ParvaGPU's setting): a model whose
/// queries carry batches of their own (PARIS's setting) would get instances whose server
/// batch is smaller than its largest queries, a plan that no instance of which could serve
/// them, so it is refused with what to change.
fn single_requests(m: &migopt_models::ModelSpec) -> Result<(), Error> {
    let largest = m.batch.max();
    if largest <= 1 {
        return Ok(());
    }
    Err(Error::Infeasible(format!(
        "model {}: field model.batch: fewest-GPUs planning (rate_qps) plans single requests batched on the server, \
         but its queries carry batches of up to {largest}; give it no `batch` (single requests), or plan for \
         shares (max-load), where queries keep their own batch",
        m.name
    )))
}

/// A scan of one model's measured points, size by size.
struct Scan<'a> {
    /// The model's curves.
    own: migopt_models::ProfileSet,
    /// The model.
    name: &'a str,
    /// Latency limit, ms (SLO factor × SLO).
    limit: f64,
    /// Most MPS processes.
    procs_cap: u32,
    /// Share of the throughput planned on (see `PlanParams::rate_headroom`).
    headroom: f64,
    /// Whether any curve exists for the model on a usable size.
    any: bool,
    /// The fastest measured point (latency, batch, procs, size), for the message when
    /// none is fast enough.
    fastest: Option<(f64, u32, u32, usize)>,
}

impl Scan<'_> {
    /// The best feasible point of size `k`: among all measured (batch, procs) points within
    /// the limit, in ParvaGPU's scan order (batch, then procs), the first with the highest
    /// throughput.
    fn best_point(&mut self, k: usize, profile: &str) -> Option<OpPoint> {
        let mut pts: Vec<OpPoint> = Vec::new();
        for procs in self.own.procs_of(self.name, profile) {
            if procs > self.procs_cap {
                continue;
            }
            let Some(c) = self.own.curve(self.name, profile, procs) else {
                continue;
            };
            self.any = true;
            let points = c.batches.iter().zip(&c.latency_ms).zip(&c.throughput_qps);
            for ((&b, &l), &measured) in points {
                if self.fastest.is_none_or(|f| l < f.0) {
                    self.fastest = Some((l, b, procs, k));
                }
                if l < self.limit {
                    // Planned capacity: the profile's throughput column (measured where the
                    // row gives one: ParvaGPU rounds latencies to whole ms but gives exact
                    // throughputs; else procs·batch/latency), less the headroom kept for
                    // queueing (none under ParvaGPU's rule).
                    pts.push(OpPoint {
                        batch: b,
                        procs,
                        latency: l,
                        throughput: measured * self.headroom,
                    });
                }
            }
        }
        pts.sort_by_key(|o| (o.batch, o.procs));
        let mut pick: Option<OpPoint> = None;
        for o in pts {
            if pick.is_none_or(|b| o.throughput > b.throughput) {
                pick = Some(o);
            }
        }
        pick
    }
}

/// A model's rate must need at most [`MAX_INSTANCES_PER_MODEL`] instances of its fastest
/// size, so that nothing sized from the instance counts can be absurd (scenarios built in
/// code skip the parse-time bounds).
fn check_instances(
    scenario: &Scenario,
    sizes: &Sizes,
    name: &str,
    best: &[Option<OpPoint>],
    rate: f64,
) -> Result<(), Error> {
    let top = best
        .iter()
        .flatten()
        .map(|o| o.throughput)
        .fold(0.0, f64::max);
    let need = rate / top;
    if !rate.is_finite() || rate <= 0.0 || !need.is_finite() {
        return Err(Error::Invalid(format!(
            "scenario {}: model {name}: rate {rate} requests/s is not a positive finite number",
            scenario.name
        )));
    }
    if need > MAX_INSTANCES_PER_MODEL as f64 {
        return Err(Error::Invalid(format!(
            "scenario {}: model {name}: rate {rate} requests/s needs {need:.3e} instances even on {} \
             (at most {MAX_INSTANCES_PER_MODEL} per model)",
            scenario.name, sizes.gpu.name
        )));
    }
    Ok(())
}

/// The rate targets together must fit in [`MAX_GPUS`] GPUs by the GPC bound.
fn check_total(scenario: &Scenario, sizes: &Sizes, models: &[RateModel]) -> Result<(), Error> {
    let gpcs: u64 = models.iter().map(|m| m.min_gpcs as u64).sum();
    let gpus = gpcs.div_ceil(sizes.gpu.compute_slices.max(1) as u64);
    if gpus > MAX_GPUS as u64 {
        return Err(Error::Invalid(format!(
            "scenario {}: the rate targets need at least {gpus} GPUs (more than the {MAX_GPUS} migopt plans)",
            scenario.name
        )));
    }
    Ok(())
}

/// Fewest GPCs whose instances (each size at its best point) reach `rate`, and one such
/// set of instances (count per size): the unbounded knapsack
/// `min Σ c_k·n_k  s.t.  Σ T_k·n_k ≥ rate`.
///
/// Let `*` be the size with the best throughput per GPC. Some optimum uses every other size
/// fewer than c_* times (c_* copies of size i can be swapped for c_i copies of `*`: same GPCs,
/// at least the throughput), so the other sizes cost at most `R = Σ_{i≠*} (c_*−1)·c_i` GPCs
/// (≤ 6·17 = 102 on an A100). A dynamic programme over g ≤ R GPCs gives f[g], the most
/// requests/s g GPCs can serve; the optimum is then `min_g g + c_*·⌈(rate − f[g]) / T_*⌉`.
/// Time and memory do not depend on the rate.
pub(crate) fn min_gpcs(sizes: &Sizes, best: &[Option<OpPoint>], rate: f64) -> (u32, Vec<u32>) {
    let mut counts = vec![0u32; best.len()];
    let items: Vec<(usize, usize, f64)> = best
        .iter()
        .enumerate()
        .filter_map(|(k, o)| o.map(|o| (k, sizes.profiles[k].compute as usize, o.throughput)))
        .filter(|&(_, c, t)| c > 0 && t > 0.0 && t.is_finite())
        .collect();
    let Some(&(ks, cs, ts)) = items
        .iter()
        .max_by(|a, b| (a.2 / a.1 as f64).total_cmp(&(b.2 / b.1 as f64)))
    else {
        return (0, counts);
    };
    if rate.is_nan() || rate <= 0.0 {
        return (0, counts);
    }
    let reach: usize = items
        .iter()
        .filter(|i| i.0 != ks)
        .map(|i| (cs - 1) * i.1)
        .sum();
    let target = rate * (1.0 - 1e-12);
    let mut f = vec![0.0f64; reach + 1];
    // choice[g]: the item added to reach f[g] (None: g−1 GPCs and one idle).
    let mut choice: Vec<Option<usize>> = vec![None; reach + 1];
    for g in 1..=reach {
        let (mut v, mut ch) = (f[g - 1], None);
        for (i, &(_, c, t)) in items.iter().enumerate() {
            if c <= g && f[g - c] + t > v {
                v = f[g - c] + t;
                ch = Some(i);
            }
        }
        f[g] = v;
        choice[g] = ch;
    }
    // The best split: g GPCs of any sizes, then whole instances of the best size.
    let rest = |g: usize| -> f64 { ((target - f[g]) / ts).ceil().max(0.0) };
    let cost = |g: usize| -> f64 { g as f64 + cs as f64 * rest(g) };
    let g = (0..=reach)
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)).then(a.cmp(&b)))
        .unwrap_or(0);
    let mut at = g;
    while at > 0 {
        match choice[at] {
            Some(i) => {
                counts[items[i].0] += 1;
                at -= items[i].1;
            }
            None => at -= 1,
        }
    }
    let n = rest(g).min(u32::MAX as f64) as u32;
    counts[ks] = counts[ks].saturating_add(n);
    let total = cost(g).min(u32::MAX as f64) as u32;
    (total, counts)
}
