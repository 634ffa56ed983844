//! The SLA-aware planner: plans that are optimal for what users measure, the load at which
//! every model's queries meet their SLA at a percentile (max-load, [`crate::slaload`]) or
//! the fewest GPUs with which every model meets its SLO (min-gpus, [`crate::slagpus`]),
//! under the queueing model of [`crate::queue`]. The simulation loop that checks these
//! plans and tightens a model's budget when it misses lives above the solver (the
//! `migopt-verify` crate), since the simulator is a separate crate.

use crate::data::{self, LoadData, RateData};
use crate::planner::{Job, LoadPlan, Planner, RatePlan};
use crate::queue::Pool;
use crate::PlanOptions;
use migopt_models::{Error, Objective, Plan, PlanParams, Scenario};

/// What the SLA-aware planner aims at, and the cuts the simulation loop adds.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaOptions {
    /// Share of a model's queries that may miss the SLA: 0.01 is p99 ≤ SLA.
    pub budget: f64,
    /// Safety margin taken off the budget when planning (0.1: plan for 90% of it).
    pub margin: f64,
    /// Per model (scenario order), a factor ≤ 1 on its pools' admissible rates: the
    /// simulation loop's cuts. Missing entries are 1.
    pub cuts: Vec<f64>,
}

impl Default for SlaOptions {
    fn default() -> Self {
        Self {
            budget: 0.01,
            margin: 0.1,
            cuts: Vec::new(),
        }
    }
}

impl SlaOptions {
    /// The cut factor of model m.
    pub fn cut(&self, m: usize) -> f64 {
        self.cuts.get(m).copied().unwrap_or(1.0)
    }

    /// Checks the numbers a user can get wrong.
    pub fn check(&self) -> Result<(), Error> {
        if !(self.budget > 0.0 && self.budget < 1.0) {
            return Err(Error::Invalid(format!(
                "SLA miss budget {} must be in (0, 1) (0.01 for p99)",
                self.budget
            )));
        }
        if !(0.0..1.0).contains(&self.margin) {
            return Err(Error::Invalid(format!(
                "SLA safety margin {} must be at least 0 and below 1",
                self.margin
            )));
        }
        if self.cuts.iter().any(|c| !(*c > 0.0 && *c <= 1.0)) {
            return Err(Error::Invalid("SLA cuts must be in (0, 1]".into()));
        }
        Ok(())
    }
}

/// The SLA-aware planner.
pub(crate) struct SlaAware;

/// Plan parameters under which every measured latency is a candidate: the queueing model,
/// not β, decides which batches a size may run.
pub(crate) fn open_params(p: &PlanParams) -> PlanParams {
    PlanParams {
        sla_fraction: 1e12,
        ..*p
    }
}

impl Planner for SlaAware {
    fn max_load(&self, job: &Job<LoadData>) -> Result<LoadPlan, Error> {
        job.opts.sla.check()?;
        crate::slaload::solve(job)
    }

    fn min_gpus(&self, job: &Job<RateData>) -> Result<RatePlan, Error> {
        job.opts.sla.check()?;
        crate::slagpus::solve(job)
    }

    fn params(&self, p: &PlanParams) -> PlanParams {
        open_params(p)
    }
}

/// The queueing model's view of a plan: its predicted capacity and each model's predicted
/// miss probability there.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Largest total rate (queries/s, at the scenario's shares or the plan's rates'
    /// proportions) at which every model's predicted miss probability is within the budget.
    pub capacity_qps: f64,
    /// Per model (scenario order): predicted miss probability at that rate.
    pub miss: Vec<f64>,
}

/// Predicts the capacity of any max-load plan (query batches, ELSA routing) with the
/// queueing model: each query batch goes to the smallest size that may run it and finishes
/// within the SLA when idle (else to the fastest that may run it), each (model, size, batch
/// limit) group is an M/G/n pool, and a model meets its target while its pools' misses,
/// weighted by their traffic, stay within `opts.sla.budget` (no margin, no cuts).
pub fn predict_capacity(
    scenario: &Scenario,
    plan: &Plan,
    opts: &PlanOptions,
) -> Result<Prediction, Error> {
    if plan.objective_kind != Objective::MaxLoad {
        return Err(Error::Invalid(
            "capacity prediction is for max-load (query-batch) plans".into(),
        ));
    }
    let d = data::load_data(scenario, &open_params(&opts.params), opts.rules)?;
    let pools = plan_pools(scenario, plan, &d)?;
    let budget = opts.sla.budget;
    let miss_at = |lambda: f64| -> Vec<f64> {
        d.models
            .iter()
            .enumerate()
            .map(|(m, model)| {
                let lm = lambda * model.share;
                if lm <= 0.0 {
                    return 0.0;
                }
                pools
                    .iter()
                    .filter(|p| p.model == m)
                    .map(|p| p.share * lambda * p.pool.miss(p.n, p.share * lambda))
                    .sum::<f64>()
                    / lm
            })
            .collect()
    };
    let ok = |lambda: f64| miss_at(lambda).iter().all(|&x| x <= budget);
    let sat = pools
        .iter()
        .filter(|p| p.share > 0.0)
        .map(|p| p.n as f64 * 1000.0 / p.pool.mean_ms / p.share)
        .fold(f64::INFINITY, f64::min);
    if !sat.is_finite() || !ok(0.0) {
        return Ok(Prediction {
            capacity_qps: 0.0,
            miss: miss_at(0.0),
        });
    }
    let lo = crate::queue::largest(sat, 1e-6, ok);
    Ok(Prediction {
        capacity_qps: lo,
        miss: miss_at(lo),
    })
}

/// One pool of a plan as the predictor sees it.
struct PlanPool {
    model: usize,
    n: u32,
    /// Its queries per unit of total rate.
    share: f64,
    pool: Pool,
}

/// Groups a plan's instances into pools and routes every class as ELSA would at idle.
fn plan_pools(scenario: &Scenario, plan: &Plan, d: &LoadData) -> Result<Vec<PlanPool>, Error> {
    // (model, size, batch limit) -> instances
    let mut groups: Vec<(usize, usize, u32, u32)> = Vec::new();
    for g in &plan.gpus {
        for a in &g.layout {
            let m = d
                .models
                .iter()
                .position(|x| x.name == a.model.as_str())
                .ok_or_else(|| {
                    Error::Invalid(format!("plan serves model {} not in the scenario", a.model))
                })?;
            let k = d.sizes.index(a.profile.as_str()).ok_or_else(|| {
                Error::Invalid(format!("profile {} is not usable here", a.profile))
            })?;
            match groups
                .iter_mut()
                .find(|x| x.0 == m && x.1 == k && x.2 == a.batch)
            {
                Some(x) => x.3 += 1,
                None => groups.push((m, k, a.batch, 1)),
            }
        }
    }
    let mut mixes: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
    for (m, model) in d.models.iter().enumerate() {
        let sla = scenario.models[m].sla.0;
        for c in &model.classes {
            let elig = groups
                .iter()
                .enumerate()
                .filter(|(_, x)| x.0 == m && x.2 >= c.batch)
                .filter_map(|(i, x)| c.lat[x.1].map(|l| (i, x.1, l)));
            let pick = elig.clone().filter(|e| e.2 <= sla).min_by_key(|e| e.1);
            let pick = pick.or_else(|| elig.min_by(|a, b| a.2.total_cmp(&b.2)));
            let Some((i, _, l)) = pick else {
                return Err(Error::Invalid(format!(
                    "model {}: no instance of the plan runs batch {}",
                    model.name, c.batch
                )));
            };
            mixes[i].push((model.share * c.prob, l));
        }
    }
    let mut out = Vec::new();
    for ((m, _, _, n), mix) in groups.into_iter().zip(mixes) {
        let share: f64 = mix.iter().map(|x| x.0).sum();
        if let Some(pool) = Pool::new(mix, scenario.models[m].sla.0) {
            out.push(PlanPool {
                model: m,
                n,
                share,
                pool,
            });
        }
    }
    Ok(out)
}
