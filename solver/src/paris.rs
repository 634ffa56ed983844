//! PARIS (Kim et al., "PARIS and ELSA: an elastic scheduling algorithm for reconfigurable
//! multi-GPU inference servers", DAC 2022), reconstructed.
//!
//! The paper's text was not at hand when this was written; this is the documented
//! reconstruction the project uses, and it is labelled so everywhere it is reported:
//!
//! 1. For each partition size k (classic profiles): MaxBatch(k) = the largest measured
//!    batch with L(k,b) ≤ β·SLA; Knee(k) = the smallest batch whose throughput b/L(k,b)
//!    reaches 90% of that size's peak ([`Curve::knee`](migopt_models::Curve::knee)).
//! 2. Each batch size b goes to the smallest size k with b ≤ min(Knee(k), MaxBatch(k)) (and
//!    L(k,b) ≤ β·SLA); failing that, the smallest size with L(k,b) ≤ β·SLA; failing that,
//!    the largest size.
//! 3. Work per size W(k) = Σ_b p(b)·L(k,b) over the batch sizes routed to k. The server's
//!    GPCs are split among models in proportion to share·Σ_k k·W(k) (their GPC-time), and
//!    within a model among sizes so that instance counts are proportional to W(k): a size
//!    busy twice as long gets twice the instances, each of them k GPCs. (Splitting GPCs
//!    proportionally to the plain time W(k) would give a 7g size a seventh of the instances
//!    its work needs.) Every size with W > 0 gets at least one instance; spare GPCs go to
//!    the largest rounding deficits. Instances are packed largest first, best fit; one that
//!    does not fit is split into two smaller ones (7→4+3, 4→2+2, 3→2+1, 2→1+1) and packing
//!    is retried; a 1g that does not fit is dropped.
//!
//! The plan's rate is then the fluid LP's optimum for the fixed instances (the same
//! yardstick as every other planner), not PARIS's own routing.
//!
//! For min-gpus (server-side batching) PARIS's knee rule picks each model's size: the
//! smallest size whose knee batch runs within slo_factor·SLO, at that batch with one
//! process (the largest feasible batch of the best size if no knee fits), replicated to
//! cover the rate and packed like the other heuristics. This adaptation is ours.

use crate::data::{LoadData, RateData, Sizes};
use crate::finish;
use crate::pack::{PackedGpu, Packer};
use crate::planner::{Job, LoadPlan, Planner, RatePlan};
use migopt_models::{Assignment, Error, GpuPlan, Millis, ProfileClass, Scenario};

/// PARIS as a planner.
pub(crate) struct Paris;

impl Planner for Paris {
    fn max_load(&self, job: &Job<LoadData>) -> Result<LoadPlan, Error> {
        let (gpus, counts) = max_load(job.scenario, job.data, job.opts.params.sla_fraction)?;
        finish::scored_plans(job, gpus, counts)
    }

    fn min_gpus(&self, job: &Job<RateData>) -> Result<RatePlan, Error> {
        let (d, opts) = (job.data, job.opts);
        let pts = rate_points(job.scenario, &d.sizes, opts.params.slo_factor)?;
        let mut items = Vec::new();
        for (m, &(k, _, tp)) in pts.iter().enumerate() {
            let n = (d.models[m].rate / tp).ceil().max(1.0) as usize;
            items.extend(std::iter::repeat_n((k, m), n));
        }
        let (packed, left) = Packer::new(&d.sizes).pack(items, opts.gpu_cap.map(|c| c as usize));
        if !left.is_empty() {
            return Err(Error::Infeasible(format!(
                "PARIS needs more than {} GPUs for the rate targets",
                opts.gpu_cap.unwrap_or(0)
            )));
        }
        Ok(finish::counted(job, packed, &|m, _k| (pts[m].1, 1)))
    }
}

/// Indices of the classic sizes, smallest first.
pub(crate) fn classic_sizes(sizes: &Sizes) -> Vec<usize> {
    (0..sizes.profiles.len())
        .filter(|&k| sizes.profiles[k].class == ProfileClass::Classic)
        .collect()
}

/// PARIS's size for each class of each model (rules 1 and 2).
pub(crate) fn route_classes(
    scenario: &Scenario,
    d: &LoadData,
    sla_fraction: f64,
) -> Vec<Vec<usize>> {
    let classic = classic_sizes(&d.sizes);
    let largest = classic.last().copied().unwrap_or(0);
    d.models
        .iter()
        .enumerate()
        .map(|(mi, m)| {
            let limit = Millis(sla_fraction * scenario.models[mi].sla.0);
            let bounds: Vec<Option<u32>> = classic
                .iter()
                .map(|&k| {
                    let c =
                        scenario
                            .profiles
                            .curve(&m.name, d.sizes.profiles[k].name.as_str(), 1)?;
                    Some(c.knee(0.9).min(c.max_batch_within(limit)?))
                })
                .collect();
            m.classes
                .iter()
                .map(|c| {
                    let by_knee = classic.iter().zip(&bounds).find(|(&k, bound)| {
                        bound.is_some_and(|bd| c.batch <= bd) && c.lat[k].is_some()
                    });
                    if let Some((&k, _)) = by_knee {
                        return k;
                    }
                    classic
                        .iter()
                        .copied()
                        .find(|&k| c.lat[k].is_some())
                        .unwrap_or(largest)
                })
                .collect()
        })
        .collect()
}

/// Instance counts per (model, size) from the work split (rule 3, before packing).
pub(crate) fn split_gpcs(d: &LoadData, routes: &[Vec<usize>]) -> Vec<Vec<u32>> {
    let nk = d.sizes.profiles.len();
    let compute = |k: usize| d.sizes.profiles[k].compute as f64;
    // W[m][k], ms per query of the model.
    let work: Vec<Vec<f64>> = d
        .models
        .iter()
        .zip(routes)
        .map(|(m, r)| {
            let mut w = vec![0.0; nk];
            for (c, &k) in m.classes.iter().zip(r) {
                w[k] += c.prob * c.lat[k].unwrap_or(0.0);
            }
            w
        })
        .collect();
    let gpc_work: Vec<f64> = d
        .models
        .iter()
        .zip(&work)
        .map(|(m, w)| m.share * (0..nk).map(|k| compute(k) * w[k]).sum::<f64>())
        .collect();
    let total_work: f64 = gpc_work.iter().sum();
    let gpcs = (d.sizes.gpu.compute_slices * d.gpus) as f64;
    let mut ideal = vec![vec![0.0; nk]; d.models.len()];
    let mut n = vec![vec![0u32; nk]; d.models.len()];
    for m in 0..d.models.len() {
        let budget = if total_work > 0.0 {
            gpcs * gpc_work[m] / total_work
        } else {
            0.0
        };
        let per: f64 = (0..nk).map(|k| compute(k) * work[m][k]).sum();
        for k in 0..nk {
            if work[m][k] > 0.0 && per > 0.0 {
                ideal[m][k] = budget * work[m][k] / per;
                n[m][k] = (ideal[m][k].floor() as u32).max(1);
            }
        }
    }
    let used = |n: &Vec<Vec<u32>>| -> f64 {
        n.iter()
            .flat_map(|r| r.iter().enumerate())
            .map(|(k, &c)| c as f64 * compute(k))
            .sum()
    };
    loop {
        let left = gpcs - used(&n);
        let pick = (0..d.models.len())
            .flat_map(|m| (0..nk).map(move |k| (m, k)))
            .filter(|&(m, k)| work[m][k] > 0.0 && compute(k) <= left)
            .max_by(|a, b| {
                let da = ideal[a.0][a.1] - n[a.0][a.1] as f64;
                let db = ideal[b.0][b.1] - n[b.0][b.1] as f64;
                da.total_cmp(&db).then(b.cmp(a))
            });
        match pick {
            Some((m, k)) => n[m][k] += 1,
            None => break,
        }
    }
    n
}

/// Splits an instance size into two smaller classic sizes (7→4+3, 4→2+2, 3→2+1, 2→1+1);
/// empty for the smallest size.
pub(crate) fn split(sizes: &Sizes, k: usize) -> Vec<usize> {
    let classic = classic_sizes(sizes);
    let c = sizes.profiles[k].compute;
    let largest_within = |limit: u32| {
        classic
            .iter()
            .copied()
            .filter(|&j| sizes.profiles[j].compute <= limit)
            .max_by_key(|&j| sizes.profiles[j].compute)
    };
    if c <= 1 {
        return Vec::new();
    }
    let mut pieces = Vec::new();
    let mut rest = c;
    let mut limit = c.div_ceil(2);
    while rest > 0 {
        let Some(j) = largest_within(limit.min(rest)) else {
            break;
        };
        pieces.push(j);
        rest -= sizes.profiles[j].compute;
        limit = rest;
    }
    pieces
}

/// Packs (size, model) instances onto at most `cap` GPUs, splitting the largest instance
/// that does not fit until everything fits (a 1g that does not fit is dropped).
pub(crate) fn pack_with_repair(
    sizes: &Sizes,
    mut items: Vec<(usize, usize)>,
    cap: usize,
) -> Vec<PackedGpu<usize>> {
    let packer = Packer::new(sizes);
    loop {
        let (gpus, left) = packer.pack(items.clone(), Some(cap));
        let Some(worst) = left
            .iter()
            .max_by_key(|(k, _)| sizes.profiles[*k].compute)
            .copied()
        else {
            return gpus;
        };
        if let Some(pos) = items.iter().position(|&it| it == worst) {
            items.remove(pos);
        }
        for piece in split(sizes, worst.0) {
            items.push((piece, worst.1));
        }
    }
}

/// PARIS's max-load instances, packed onto the scenario's GPUs: (GPU plans, counts).
pub(crate) fn max_load(
    scenario: &Scenario,
    d: &LoadData,
    sla_fraction: f64,
) -> Result<(Vec<GpuPlan>, Vec<Vec<u32>>), Error> {
    let routes = route_classes(scenario, d, sla_fraction);
    let n = split_gpcs(d, &routes);
    let mut items = Vec::new();
    for (m, row) in n.iter().enumerate() {
        for (k, &c) in row.iter().enumerate() {
            items.extend(std::iter::repeat_n((k, m), c as usize));
        }
    }
    let packed = pack_with_repair(&d.sizes, items, d.gpus as usize);
    Ok(to_plans(
        &d.sizes,
        packed,
        d.gpus as usize,
        &d.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        d.models.len(),
    ))
}

/// GPU plans (batch 1, one process: callers fill batches in) and counts from packed GPUs.
pub(crate) fn to_plans(
    sizes: &Sizes,
    packed: Vec<PackedGpu<usize>>,
    gpus: usize,
    names: &[String],
    models: usize,
) -> (Vec<GpuPlan>, Vec<Vec<u32>>) {
    let mut counts = vec![vec![0u32; sizes.profiles.len()]; models];
    let mut out: Vec<GpuPlan> = Vec::new();
    for (g, insts) in packed.into_iter().enumerate() {
        let mut layout: Vec<Assignment> = insts
            .into_iter()
            .map(|(k, start, m)| {
                counts[m][k] += 1;
                Assignment {
                    profile: sizes.profiles[k].name.clone(),
                    start,
                    model: names[m].as_str().into(),
                    batch: 1,
                    procs: 1,
                }
            })
            .collect();
        layout.sort_by_key(|a| a.start);
        out.push(GpuPlan {
            index: g as u32,
            layout,
        });
    }
    while out.len() < gpus {
        out.push(GpuPlan {
            index: out.len() as u32,
            layout: Vec::new(),
        });
    }
    (out, counts)
}

/// PARIS's operating point per model for min-gpus: (size, batch, throughput), or why none.
pub(crate) fn rate_points(
    scenario: &Scenario,
    sizes: &Sizes,
    slo_factor: f64,
) -> Result<Vec<(usize, u32, f64)>, Error> {
    let classic = classic_sizes(sizes);
    let mut out = Vec::new();
    for m in &scenario.models {
        let limit = slo_factor * m.sla.0;
        let mut knee_pick = None;
        let mut best: Option<(usize, u32, f64)> = None;
        for &k in &classic {
            let Some(c) =
                scenario
                    .profiles
                    .curve(m.name.as_str(), sizes.profiles[k].name.as_str(), 1)
            else {
                continue;
            };
            let feasible: Vec<(u32, f64)> = c
                .batches
                .iter()
                .zip(&c.latency_ms)
                .filter(|(_, &l)| l < limit)
                .map(|(&b, &l)| (b, l))
                .collect();
            let Some(&(maxb, maxl)) = feasible.last() else {
                continue;
            };
            let tp = maxb as f64 * 1000.0 / maxl;
            if best.is_none_or(|b| tp > b.2) {
                best = Some((k, maxb, tp));
            }
            let knee = c.knee(0.9);
            if knee_pick.is_none() && knee <= maxb {
                if let Some(&(b, l)) = feasible.iter().find(|(b, _)| *b == knee) {
                    knee_pick = Some((k, b, b as f64 * 1000.0 / l));
                }
            }
        }
        match knee_pick.or(best) {
            Some(p) => out.push(p),
            None => {
                return Err(Error::Infeasible(format!(
                    "PARIS: model {}: no batch runs within {} × {} ms with a single process on any classic profile",
                    m.name,
                    crate::fmt_ms(slo_factor),
                    crate::fmt_ms(m.sla.0)
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use migopt_models::{Catalogue, LayoutRules};

    #[test]
    fn splits_halve_instances() {
        let gpu = Catalogue::builtin().gpu("A100-80GB").unwrap();
        let s = Sizes::for_gpu(gpu, LayoutRules::default());
        let c = |k: usize| s.profiles[k].compute;
        let split_of = |g: u32| {
            split(&s, s.classic(g).unwrap())
                .into_iter()
                .map(c)
                .collect::<Vec<_>>()
        };
        assert_eq!(split_of(7), [4, 3]);
        assert_eq!(split_of(4), [2, 2]);
        assert_eq!(split_of(3), [2, 1]);
        assert_eq!(split_of(2), [1, 1]);
        assert!(split_of(1).is_empty());
        let a30 = Sizes::for_gpu(
            Catalogue::builtin().gpu("A30-24GB").unwrap(),
            LayoutRules::default(),
        );
        let k4 = a30.classic(4).unwrap();
        assert_eq!(
            split(&a30, k4)
                .into_iter()
                .map(|k| a30.profiles[k].compute)
                .collect::<Vec<_>>(),
            [2, 2]
        );
    }
}
