//! Homogeneous baselines: every GPU cut into as many instances of one classic profile as
//! fit (all 1g ×7, all 2g ×3 with a slice idle, all 3g ×2, 4g ×1 with 3 GPCs idle, or 7g),
//! the way a cluster without a partition planner is usually set up. Used by the paper
//! reproductions as the reference point.
//!
//! * Max-load: the N·per-GPU instances go to models in proportion to their work on that
//!   profile (share × mean query latency; largest remainders, at least one each), and the
//!   plan is scored by the shared fluid LP.
//! * Min-gpus: each model gets ⌈r / T⌉ instances, T its best feasible throughput on the
//!   profile, and GPUs are filled in order.

use crate::data::{LoadData, RateData, Sizes};
use crate::finish;
use crate::pack::PackedGpu;
use crate::planner::{Job, LoadPlan, Planner, RatePlan};
use migopt_models::{Error, ProfileClass};

/// A homogeneous cut as a planner: the profile as the user named it.
pub(crate) struct Homogeneous<'a>(pub &'a str);

impl Planner for Homogeneous<'_> {
    fn max_load(&self, job: &Job<LoadData>) -> Result<LoadPlan, Error> {
        let k = resolve(&job.data.sizes, self.0)?;
        finish::scored(job, max_load(job.data, k)?)
    }

    fn min_gpus(&self, job: &Job<RateData>) -> Result<RatePlan, Error> {
        let d = job.data;
        let k = resolve(&d.sizes, self.0)?;
        let packed = min_gpus(d, k, job.opts.gpu_cap)?;
        Ok(finish::counted(job, packed, &|m, k| d.point(m, k)))
    }
}

/// Resolves `3g`, `3` or `3g.40gb` to the index of a classic size.
pub(crate) fn resolve(sizes: &Sizes, profile: &str) -> Result<usize, Error> {
    let p = profile.trim();
    let by_name = sizes
        .index(p)
        .filter(|&k| sizes.profiles[k].class == ProfileClass::Classic);
    let by_compute = p
        .trim_end_matches('g')
        .parse::<u32>()
        .ok()
        .and_then(|c| sizes.classic(c));
    by_name.or(by_compute).ok_or_else(|| {
        let classic: Vec<&str> = sizes
            .profiles
            .iter()
            .filter(|q| q.class == ProfileClass::Classic)
            .map(|q| q.name.as_str())
            .collect();
        Error::Invalid(format!(
            "homogeneous: `{profile}` is not a classic profile of {} (choose one of {})",
            sizes.gpu.name,
            classic.join(", ")
        ))
    })
}

/// The starts at which one GPU holds the most instances of size k.
fn starts(sizes: &Sizes, k: usize) -> Vec<u32> {
    let best = (0..sizes.layouts.len()).max_by_key(|&l| (sizes.count[l][k], std::cmp::Reverse(l)));
    best.map(|l| {
        crate::pack::layout_slots(sizes, l)
            .into_iter()
            .filter(|&(j, _)| j == k)
            .map(|(_, s)| s)
            .collect()
    })
    .unwrap_or_default()
}

/// Fills `gpus` GPUs with instances of size k, handing them out per `owners` (a model
/// index per instance, in order).
fn fill(sizes: &Sizes, k: usize, owners: &[usize]) -> Vec<PackedGpu<usize>> {
    let st = starts(sizes, k);
    if st.is_empty() {
        return Vec::new();
    }
    owners
        .chunks(st.len())
        .map(|chunk| chunk.iter().zip(&st).map(|(&m, &s)| (k, s, m)).collect())
        .collect()
}

/// Max-load homogeneous plan: packed GPUs (every GPU of the server cut alike).
pub(crate) fn max_load(d: &LoadData, k: usize) -> Result<Vec<PackedGpu<usize>>, Error> {
    let name = &d.sizes.profiles[k].name;
    let mut work = Vec::new();
    for m in &d.models {
        let Some(w) = m.mean_latency(k) else {
            let c = m
                .classes
                .iter()
                .find(|c| c.lat[k].is_none())
                .map(|c| c.batch)
                .unwrap_or(0);
            return Err(Error::Infeasible(format!(
                "homogeneous {name}: model {}: batch {c} cannot run on {name} within the SLA",
                m.name
            )));
        };
        work.push(m.share * w);
    }
    let per = d.sizes.per_gpu(k) as usize;
    let total = per * d.gpus as usize;
    let models = d.models.len();
    if total < models {
        return Err(Error::Infeasible(format!(
            "homogeneous {name}: {} GPUs hold {total} instances of {name}, fewer than the {models} models",
            d.gpus
        )));
    }
    let sum: f64 = work.iter().sum();
    let ideal: Vec<f64> = work
        .iter()
        .map(|w| {
            if sum > 0.0 {
                total as f64 * w / sum
            } else {
                0.0
            }
        })
        .collect();
    let mut n: Vec<usize> = ideal.iter().map(|&x| (x.floor() as usize).max(1)).collect();
    while n.iter().sum::<usize>() > total {
        // Too many after the at-least-one rule: take from the largest surplus.
        let Some(m) = (0..models)
            .filter(|&m| n[m] > 1)
            .max_by(|&a, &b| (n[a] as f64 - ideal[a]).total_cmp(&(n[b] as f64 - ideal[b])))
        else {
            break;
        };
        n[m] -= 1;
    }
    while n.iter().sum::<usize>() < total {
        let m = (0..models)
            .max_by(|&a, &b| {
                (ideal[a] - n[a] as f64)
                    .total_cmp(&(ideal[b] - n[b] as f64))
                    .then(b.cmp(&a))
            })
            .unwrap_or(0);
        n[m] += 1;
    }
    let owners: Vec<usize> = spread(&n);
    Ok(fill(&d.sizes, k, &owners))
}

/// Instance owners interleaved (round-robin over models), so each model spans GPUs.
fn spread(n: &[usize]) -> Vec<usize> {
    let mut left = n.to_vec();
    let mut out = Vec::new();
    while left.iter().any(|&c| c > 0) {
        for (m, c) in left.iter_mut().enumerate() {
            if *c > 0 {
                *c -= 1;
                out.push(m);
            }
        }
    }
    out
}

/// Min-gpus homogeneous plan: packed GPUs, or why the profile cannot serve the targets.
pub(crate) fn min_gpus(
    d: &RateData,
    k: usize,
    cap: Option<u32>,
) -> Result<Vec<PackedGpu<usize>>, Error> {
    let name = &d.sizes.profiles[k].name;
    let mut n = Vec::new();
    for m in &d.models {
        let Some(o) = m.best[k] else {
            return Err(Error::Infeasible(format!(
                "homogeneous {name}: model {}: no measured point on {name} runs within the SLO",
                m.name
            )));
        };
        n.push((m.rate / o.throughput).ceil().max(1.0) as usize);
    }
    let mut owners = Vec::new();
    for (m, &c) in n.iter().enumerate() {
        owners.extend(std::iter::repeat_n(m, c));
    }
    let gpus = fill(&d.sizes, k, &owners);
    if let Some(cap) = cap {
        if gpus.len() > cap as usize {
            return Err(Error::Infeasible(format!(
                "homogeneous {name} needs {} GPUs for the rate targets but the server has {cap}",
                gpus.len()
            )));
        }
    }
    Ok(gpus)
}
