//! The SLA-aware planner: plans that are optimal for what users measure, the load at which
//! every model's queries meet their SLA at a percentile (max-load, [`crate::slaload`]) or
//! the fewest GPUs with which every model meets its SLO (min-gpus, [`crate::slagpus`]),
//! under the queueing model of [`crate::queue`]. The simulation loop that checks these
//! plans and tightens a model's budget when it misses lives above the solver (the
//! `migopt-verify` crate), since the simulator is a separate crate.

use crate::data::{self, LoadData, RateData};
use crate::planner::{Job, LoadPlan, Planner, RatePlan};
use crate::queue::{Pool, Tail};
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
    /// Per model (scenario order), milliseconds taken off its SLO when planning min-gpus:
    /// the simulation loop's latency cuts (a model whose simulated p99 overshoots its SLO
    /// is planned against an SLO shorter by the overshoot, which reaches misses that come
    /// from latency rather than load). Missing entries are 0. Max-load ignores them.
    pub slo_cuts_ms: Vec<f64>,
}

impl Default for SlaOptions {
    fn default() -> Self {
        Self {
            budget: 0.01,
            margin: 0.1,
            cuts: Vec::new(),
            slo_cuts_ms: Vec::new(),
        }
    }
}

impl SlaOptions {
    /// The cut factor of model m.
    pub fn cut(&self, m: usize) -> f64 {
        self.cuts.get(m).copied().unwrap_or(1.0)
    }

    /// The latency cut of model m, ms.
    pub fn slo_cut(&self, m: usize) -> f64 {
        self.slo_cuts_ms.get(m).copied().unwrap_or(0.0)
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
        if self
            .slo_cuts_ms
            .iter()
            .any(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err(Error::Invalid(
                "SLO latency cuts must be finite and at least 0 ms".into(),
            ));
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

/// Predicts the capacity of any max-load plan (query batches, `elsa` routing) with the
/// queueing model of [`plan_pools`], and a model meets its target while its queries' misses
/// stay within `opts.sla.budget` (no margin, no cuts).
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
    let net = plan_pools(scenario, plan, &d)?;
    let budget = opts.sla.budget;
    let miss_at = |lambda: f64| net.miss(d.models.len(), lambda);
    let ok = |lambda: f64| miss_at(lambda).iter().all(|&x| x <= budget);
    let sat = net
        .pools
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

/// A pool of a plan as the predictor sees it: n instances and the traffic they carry.
struct PlanPool {
    n: u32,
    /// Its queries per unit of total rate.
    share: f64,
    pool: Pool,
}

/// A part of one class's traffic on one group: what it waits for and how long it runs.
struct Piece {
    model: usize,
    /// Queries per unit of total rate.
    weight: f64,
    /// Its latency on the group and the model's SLA, ms.
    service_ms: f64,
    sla_ms: f64,
    /// The pool of its group's component (the shared wait), and the pool of the classes
    /// confined to its choices, where those are fewer than the component's groups.
    shared: usize,
    confined: Option<usize>,
}

/// The queueing network of a plan: pools and the pieces of traffic that wait in them.
struct Network {
    pools: Vec<PlanPool>,
    pieces: Vec<Piece>,
}

impl Network {
    /// Per model, the share of its queries that miss the SLA at total rate λ.
    fn miss(&self, models: usize, lambda: f64) -> Vec<f64> {
        let tails: Vec<Tail> = self
            .pools
            .iter()
            .map(|p| p.pool.tail(p.n, p.share * lambda))
            .collect();
        let mut missed = vec![0.0; models];
        let mut total = vec![0.0; models];
        for q in &self.pieces {
            let t = q.sla_ms - q.service_ms;
            let p = tails[q.shared].over(t) + q.confined.map_or(0.0, |c| tails[c].over(t));
            missed[q.model] += q.weight * p.min(1.0);
            total[q.model] += q.weight;
        }
        missed
            .iter()
            .zip(&total)
            .map(|(m, t)| if *t > 0.0 { m / t } else { 0.0 })
            .collect()
    }
}

/// `elsa`'s horizon as a fraction of the SLA (the simulator's `START_HORIZON`, checked
/// equal by a test in migopt-verify): a query accepts any instance whose estimated finish
/// is within arrival + horizon·SLA, and takes the one that can start earliest.
pub const ELSA_HORIZON: f64 = 0.5;

/// Rounds of the routing balance ([`balance`]).
const BALANCE_ROUNDS: usize = 400;

/// A (model, size, batch limit) group of a plan: its instances.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Group {
    model: usize,
    k: usize,
    limit: u32,
    n: u32,
}

/// The plan's instances grouped by (model, size, batch limit).
fn groups(plan: &Plan, d: &LoadData) -> Result<Vec<Group>, Error> {
    let mut out: Vec<Group> = Vec::new();
    for (_, a) in plan.instances() {
        let model = d
            .models
            .iter()
            .position(|x| x.name == a.model.as_str())
            .ok_or_else(|| {
                Error::Invalid(format!("plan serves model {} not in the scenario", a.model))
            })?;
        let k = d
            .sizes
            .index(a.profile.as_str())
            .ok_or_else(|| Error::Invalid(format!("profile {} is not usable here", a.profile)))?;
        match out
            .iter_mut()
            .find(|g| g.model == model && g.k == k && g.limit == a.batch)
        {
            Some(g) => g.n += 1,
            None => out.push(Group {
                model,
                k,
                limit: a.batch,
                n: 1,
            }),
        }
    }
    Ok(out)
}

/// Groups a plan's instances into pools and routes every class as `elsa` does under load.
///
/// **Routing.** A query of batch b may go to any group whose batch limit admits b and whose
/// latency for b is within the horizon ([`ELSA_HORIZON`]·SLA; none such: the fastest group
/// that admits b, `elsa`'s earliest finish). `elsa`'s tail guard (the largest batches take
/// the earliest finish) is not modelled as a further restriction: under load the earliest
/// finish is any in-horizon instance that is free soonest, not the fastest size (with the
/// restriction, the predictions fell 15–38% short on the plans that mix sizes). Among those, `elsa` takes the instance that
/// can start earliest, whatever the batch: under load that is a central queue, which keeps
/// every eligible instance equally busy. So a class shared by several groups is split
/// among them in proportions that do not depend on the batch (one weight per group) and
/// that equalise the groups' utilisations as far as their eligibility allows
/// ([`balance`]): spill-over between sizes is modelled, as this balanced split.
///
/// **Waiting.** Groups joined by shared classes form a component, and a query waits as in
/// one M/G/n pool of all the component's instances (the earliest start among them: the
/// small batches that spill over fill whichever instance frees first, so every instance's
/// backlog tracks the component's). A class confined to some of the component's groups
/// (large batches only the large sizes run) also waits for its own excess: its groups
/// form a second pool fed only by the classes confined to them, and its tail is the sum
/// of the two pools' tails (a union bound on the excess over the component's level).
fn plan_pools(scenario: &Scenario, plan: &Plan, d: &LoadData) -> Result<Network, Error> {
    let groups = groups(plan, d)?;
    let mut net = Network {
        pools: Vec::new(),
        pieces: Vec::new(),
    };
    for (m, model) in d.models.iter().enumerate() {
        let sla = scenario.models[m].sla.0;
        let mine: Vec<Group> = groups.iter().copied().filter(|g| g.model == m).collect();
        let classes = choices(model, &mine, sla)?;
        let n: Vec<f64> = mine.iter().map(|g| g.n as f64).collect();
        let y = balance(&classes, &n);
        // Per class and choice: (weight, latency).
        let split = |(w, choice): &ClassChoice| -> Vec<(usize, f64, f64)> {
            let total: f64 = choice.iter().map(|&(i, _)| y[i]).sum();
            choice
                .iter()
                .map(|&(i, l)| (i, w * y[i] / total, l))
                .collect()
        };
        let comps = components(&classes, mine.len());
        let comp_of = |i: usize| comps.iter().position(|c| c.contains(&i)).unwrap_or(0);
        // A pool of the classes whose choices lie within `within`, on those groups.
        let pool_of = |within: &[usize], net: &mut Network| -> Option<usize> {
            let mix: Vec<(f64, f64)> = classes
                .iter()
                .filter(|(_, ch)| ch.iter().all(|(i, _)| within.contains(i)))
                .flat_map(|c| split(c).into_iter().map(|(_, w, l)| (w, l)))
                .collect();
            let share: f64 = mix.iter().map(|x| x.0).sum();
            let pool = Pool::new(mix, sla)?;
            net.pools.push(PlanPool {
                n: within.iter().map(|&i| mine[i].n).sum(),
                share,
                pool,
            });
            Some(net.pools.len() - 1)
        };
        let shared: Vec<Option<usize>> = comps.iter().map(|c| pool_of(c, &mut net)).collect();
        let mut confined: Vec<(Vec<usize>, Option<usize>)> = Vec::new();
        for c in &classes {
            let mut set: Vec<usize> = c.1.iter().map(|x| x.0).collect();
            set.sort_unstable();
            let comp = comp_of(set[0]);
            let conf = if set.len() < comps[comp].len() {
                match confined.iter().find(|x| x.0 == set) {
                    Some(x) => x.1,
                    None => {
                        let p = pool_of(&set, &mut net);
                        confined.push((set, p));
                        p
                    }
                }
            } else {
                None
            };
            for (_, w, l) in split(c) {
                if let Some(sh) = shared[comp] {
                    net.pieces.push(Piece {
                        model: m,
                        weight: w,
                        service_ms: l,
                        sla_ms: sla,
                        shared: sh,
                        confined: conf,
                    });
                }
            }
        }
    }
    Ok(net)
}

/// A query class's weight (queries per unit of total rate) and the groups it may go to,
/// each with its latency there.
type ClassChoice = (f64, Vec<(usize, f64)>);

/// Each class of a model: its weight (queries per unit of total rate) and the groups it
/// may go to, with its latency there (see [`plan_pools`]).
fn choices(
    model: &crate::data::LoadModel,
    mine: &[Group],
    sla: f64,
) -> Result<Vec<ClassChoice>, Error> {
    let mut classes = Vec::new();
    for c in &model.classes {
        let elig: Vec<(usize, f64)> = mine
            .iter()
            .enumerate()
            .filter(|(_, g)| g.limit >= c.batch)
            .filter_map(|(i, g)| c.lat[g.k].map(|l| (i, l)))
            .collect();
        let within: Vec<(usize, f64)> = elig
            .iter()
            .copied()
            .filter(|e| e.1 <= ELSA_HORIZON * sla)
            .collect();
        let choice = if within.is_empty() {
            let fastest = elig.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
            let Some(f) = fastest else {
                return Err(Error::Invalid(format!(
                    "model {}: no instance of the plan runs batch {}",
                    model.name, c.batch
                )));
            };
            vec![f]
        } else {
            within
        };
        classes.push((model.share * c.prob, choice));
    }
    Ok(classes)
}

/// Groups joined by the classes they share (connected components).
fn components(classes: &[ClassChoice], n: usize) -> Vec<Vec<usize>> {
    let mut root: Vec<usize> = (0..n).collect();
    fn find(r: &mut [usize], i: usize) -> usize {
        let mut i = i;
        while r[i] != i {
            r[i] = r[r[i]];
            i = r[i];
        }
        i
    }
    for (_, choice) in classes {
        if let Some(&(a, _)) = choice.first() {
            for &(b, _) in &choice[1..] {
                let (ra, rb) = (find(&mut root, a), find(&mut root, b));
                root[ra] = rb;
            }
        }
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut seen: Vec<Option<usize>> = vec![None; n];
    for i in 0..n {
        let r = find(&mut root, i);
        match seen[r] {
            Some(c) => out[c].push(i),
            None => {
                seen[r] = Some(out.len());
                out.push(vec![i]);
            }
        }
    }
    out
}

/// The groups' weights y (positive) such that splitting every class among its choices in
/// proportion to y equalises the groups' utilisations (work per instance) as far as the
/// choices allow: multiplicative updates towards the mean utilisation. `classes`: (weight,
/// [(group, latency)]); `n`: instances per group.
fn balance(classes: &[ClassChoice], n: &[f64]) -> Vec<f64> {
    let mut y: Vec<f64> = n.to_vec();
    let total_n: f64 = n.iter().sum();
    for _ in 0..BALANCE_ROUNDS {
        let mut work = vec![0.0; n.len()];
        for (w, choice) in classes {
            let sum: f64 = choice.iter().map(|&(i, _)| y[i]).sum();
            for &(i, l) in choice {
                work[i] += w * y[i] / sum * l;
            }
        }
        let mean = work.iter().sum::<f64>() / total_n;
        if mean.is_nan() || mean <= 0.0 {
            break;
        }
        let mut moved = 0.0f64;
        for i in 0..n.len() {
            let u = work[i] / n[i];
            if u > 0.0 {
                let f = (mean / u).sqrt();
                moved = moved.max((f - 1.0).abs());
                y[i] = (y[i] * f).max(1e-12);
            }
        }
        if moved < 1e-9 {
            break;
        }
    }
    y
}
