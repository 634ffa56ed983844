//! The exact planner: the max-load MILP ([`crate::maxload`]) and the min-gpus MILP
//! ([`crate::mingpus`]) on HiGHS, with the GPU limit min-gpus starts from.

use crate::data::RateData;
use crate::planner::{Job, LoadPlan, Planner, RatePlan};
use crate::{maxload, mingpus, parvagpu, Encoding, PlanOptions};
use migopt_models::Error;

/// The MILPs.
pub(crate) struct Exact;

impl Planner for Exact {
    fn max_load(&self, job: &Job<crate::data::LoadData>) -> Result<LoadPlan, Error> {
        let s = maxload::solve(job.data, job.opts)?;
        Ok(LoadPlan {
            gpus: s.gpus,
            eval: s.eval,
            report: s.report,
        })
    }

    fn min_gpus(&self, job: &Job<RateData>) -> Result<RatePlan, Error> {
        let (max_gpus, lp) = min_gpus_limit(job.data, job.opts)?;
        let s = mingpus::solve(job.data, job.opts, max_gpus, lp)?;
        Ok(RatePlan {
            gpus: s.gpus,
            model_rates: Some(s.model_rates),
            report: s.report,
        })
    }
}

/// The GPU limit of the min-gpus MILP and the LP bound on GPUs. The limit is the cap if the
/// user gave one (checked against the LP bound first), else a heuristic's GPU count: the
/// ParvaGPU allocator's, or one GPU per instance when it cannot run.
pub(crate) fn min_gpus_limit(
    d: &RateData,
    opts: &PlanOptions,
) -> Result<(u32, Option<f64>), Error> {
    let heuristic = parvagpu::min_gpus(d, None).map(|g| g.len() as u32).ok();
    let safe: u32 = d
        .models
        .iter()
        .map(|m| {
            let best = m
                .best
                .iter()
                .flatten()
                .map(|o| o.throughput)
                .fold(0.0, f64::max);
            (m.rate / best).ceil().max(1.0) as u32
        })
        .fold(0u32, u32::saturating_add);
    let upper = heuristic.unwrap_or(safe).max(1);
    let lp = mingpus::lp_gpus(d, Encoding::Layouts, upper, opts)?;
    let needed = lp.map(|l| (l - 1e-6).ceil().max(1.0) as u32);
    if let (Some(cap), Some(n)) = (opts.gpu_cap, needed) {
        if n > cap {
            return Err(Error::Infeasible(format!(
                "the rate targets need at least {n} GPUs (LP bound) but the server has {cap}"
            )));
        }
    }
    let limit = opts.gpu_cap.map_or(upper, |c| c.min(upper));
    let lp = if opts.encoding == Encoding::Layouts && limit == upper {
        lp
    } else {
        mingpus::lp_gpus(d, opts.encoding, limit, opts)?
    };
    Ok((limit, lp))
}
