//! The current plan in the new scenario's terms: its GPUs grouped into types (same layout
//! and assignment), with each type's GPU indices and capacity per model.

use crate::data::RateData;
use migopt_models::{Error, Plan, Scenario};
use std::collections::BTreeMap;

/// A GPU configuration of the current plan: its instances as (size, start, model), sorted.
type Config = Vec<(usize, u32, Option<usize>)>;

/// The current plan in the new scenario's terms.
pub(super) struct Current {
    /// Per type: the configuration, the GPU indices that have it, capacity per model.
    pub types: Vec<(Config, Vec<u32>, Vec<f64>)>,
    /// GPU slots of the current plan (used or not).
    pub slots: u32,
    /// GPUs with an instance of a model the new scenario no longer has, or of a model on a
    /// size its new profile no longer measures: never kept as they are (the target would
    /// serve a model its scenario lacks, or run an instance no latency curve describes),
    /// re-cut first.
    pub retired: Vec<u32>,
}

/// The current plan's GPU types under the scenario's sizes, models, profiles and
/// throughputs.
pub(super) fn read_current(
    d: &RateData,
    scenario: &Scenario,
    current: &Plan,
) -> Result<Current, Error> {
    read_types(&d.sizes, &d.names(), scenario, current, &|m, k| {
        d.throughput(m, k)
    })
}

/// The current plan's GPU types under these sizes and models (`scenario`'s, the new one);
/// `cap(m, k)`: requests/s one instance of size k serves for model m. A GPU with an
/// instance the scenario no longer describes ([`Scenario::describes`]) is retired.
pub(super) fn read_types(
    sizes: &crate::data::Sizes,
    names: &[String],
    scenario: &Scenario,
    current: &Plan,
    cap: &dyn Fn(usize, usize) -> f64,
) -> Result<Current, Error> {
    let mut by: BTreeMap<Config, Vec<u32>> = BTreeMap::new();
    let mut retired = Vec::new();
    for g in &current.gpus {
        if g.layout.is_empty() {
            continue;
        }
        if !g.layout.iter().all(|a| scenario.describes(a)) {
            retired.push(g.index);
            continue;
        }
        let mut cfg: Config = Vec::new();
        for a in &g.layout {
            let k = sizes.index(a.profile.as_str()).ok_or_else(|| {
                Error::Invalid(format!(
                    "current plan, GPU {}: profile {} is not usable under the layout rules (usable: {})",
                    g.index,
                    a.profile,
                    sizes.names()
                ))
            })?;
            let m = names.iter().position(|x| x.as_str() == a.model.as_str());
            cfg.push((k, a.start, m));
        }
        cfg.sort();
        by.entry(cfg).or_default().push(g.index);
    }
    let types = by
        .into_iter()
        .map(|(cfg, gpus)| {
            let mut c = vec![0.0; names.len()];
            for &(k, _, m) in &cfg {
                if let Some(m) = m {
                    c[m] += cap(m, k);
                }
            }
            (cfg, gpus, c)
        })
        .collect();
    let slots = current
        .gpus
        .iter()
        .map(|g| g.index + 1)
        .max()
        .unwrap_or(0)
        .max(current.gpus.len() as u32);
    Ok(Current {
        types,
        slots,
        retired,
    })
}
