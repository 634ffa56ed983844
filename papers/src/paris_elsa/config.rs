//! The study's configuration: the workloads (one model on 8 GPUs, its SLA and batch
//! sizes), the partitionings and schedulers compared, the loads, and the simulation settings.

use crate::Options;
use migopt_models::input::Inputs;
use migopt_models::{
    BatchDist, BatchLookup, Demand, Error, Millis, ModelSpec, ProfileSet, Scenario,
};
use migopt_sim::{Arrivals, SchedulerKind, SimConfig};
use std::path::{Path, PathBuf};

/// One served model on one data source.
pub struct Workload {
    /// Short id used in file names, e.g. `h100-resnet50`.
    pub id: String,
    /// Where the curves come from.
    pub source: String,
    /// The 8-GPU, one-model scenario.
    pub scenario: Scenario,
}

/// Query batch sizes of every workload: log-normal, median 8, σ 1, at most 128 (or the
/// largest batch the biggest slice was measured at).
pub(super) const MEDIAN: f64 = 8.0;
pub(super) const SIGMA: f64 = 1.0;
pub(super) const MAX_BATCH: u32 = 128;

/// A one-model, 8-GPU scenario whose SLA is 4x the full GPU's latency at the largest batch
/// (rounded up to a whole ms), so that with β = 0.5 the largest batches need big slices.
pub fn workload(
    id: &str,
    source: &str,
    profiles: &ProfileSet,
    model: &str,
    gpus: u32,
) -> Result<Workload, Error> {
    let set = profiles.restrict_to(&[model]);
    let gpu = set.gpu_spec();
    let full = gpu
        .classic_profiles()
        .last()
        .map(|p| p.name.to_string())
        .ok_or_else(|| Error::Invalid(format!("{} has no profiles", gpu.name)))?;
    let curve = set
        .curve(model, &full, 1)
        .ok_or_else(|| Error::Invalid(format!("{model} has no curve on {full}")))?;
    let max = curve.max_batch().min(MAX_BATCH);
    let top = curve
        .latency(max, BatchLookup::Interpolate)
        .ok_or_else(|| Error::Invalid(format!("{model}: no latency at batch {max}")))?;
    let sla = (4.0 * top.0).ceil();
    let scenario = Scenario {
        name: id.to_string(),
        description: Some(format!(
            "{model} alone on {gpus}x {}; SLA {sla} ms = 4x {full} at batch {max}",
            gpu.name
        )),
        gpu: gpu.name.clone(),
        gpu_count: gpus,
        batch_lookup: BatchLookup::Interpolate,
        max_procs: None,
        models: vec![ModelSpec {
            name: model.into(),
            sla: Millis(sla),
            demand: Demand::Share(1.0),
            batch: BatchDist::Lognormal {
                median: MEDIAN,
                sigma: SIGMA,
                max,
            },
            profile_path: PathBuf::from(format!("{id}.csv")),
        }],
        profiles: set,
    };
    Ok(Workload {
        id: id.to_string(),
        source: source.to_string(),
        scenario,
    })
}

/// The workloads: the four shipped H100 models, and the eleven models of the vendored
/// ParvaGPU A100 MIG data (real MIG measurements). Quick runs take one.
pub fn workloads(opts: &Options) -> Result<Vec<Workload>, Error> {
    workloads_recording(opts, &mut Inputs::default())
}

/// [`workloads`], recording the files read (the ParvaGPU data set) in `inputs`.
pub fn workloads_recording(opts: &Options, inputs: &mut Inputs) -> Result<Vec<Workload>, Error> {
    let h100 = migopt_profiles::h100_profiles()?;
    let mut w = Vec::new();
    let h100_models: &[&str] = if opts.quick {
        &["resnet50"]
    } else {
        &["resnet50", "mobilenetv2", "bert-base", "vit-b16"]
    };
    for m in h100_models {
        w.push(workload(
            &format!("h100-{m}"),
            "H100-80GB, green-context emulation (shipped)",
            &h100,
            m,
            8,
        )?);
    }
    if !opts.quick {
        let set = a100_profiles(&opts.dataset, inputs)?;
        for m in set.models() {
            let m = m.as_str();
            w.push(workload(
                &format!("a100-{m}"),
                "A100-80GB, real MIG (ParvaGPU data set)",
                &set,
                m,
                8,
            )?);
        }
    }
    Ok(w)
}

/// The ParvaGPU profiles with one process per instance (PARIS/ELSA use no MPS); the files
/// read are recorded in `inputs`.
pub fn a100_profiles(dir: &Path, inputs: &mut Inputs) -> Result<ProfileSet, Error> {
    let imp = migopt_profiles::parvagpu::read_recording(dir, inputs)?;
    let rows = imp
        .rows
        .iter()
        .flat_map(|(m, r)| {
            let origin =
                migopt_models::Origin::file(dir.join("prof_data").join(format!("{m}.csv")));
            r.iter()
                .filter(|r| r.procs == 1)
                .map(move |r| (origin.clone(), r.clone()))
        })
        .collect();
    ProfileSet::from_rows(rows)
}

/// Partitionings compared, as planner names.
pub(super) fn partitionings(quick: bool) -> Vec<&'static str> {
    if quick {
        vec![
            "homogeneous-1g",
            "homogeneous-3g",
            "homogeneous-7g",
            "paris",
            "milp",
            "sla",
        ]
    } else {
        vec![
            "homogeneous-1g",
            "homogeneous-2g",
            "homogeneous-3g",
            "homogeneous-4g",
            "homogeneous-7g",
            "paris",
            "milp",
            "sla",
        ]
    }
}

/// Schedulers compared: the baselines, then the ELSA family. `elsa` is not run twice: it is
/// the variant [`SchedulerKind::elsa_rule`] names.
pub fn schedulers(quick: bool) -> Vec<SchedulerKind> {
    use SchedulerKind::*;
    if quick {
        vec![Fifs, Jsq, ElsaGreedy, SchedulerKind::elsa_rule()]
    } else {
        vec![
            Fifs,
            Jsq,
            ElsaGreedy,
            ElsaMargin,
            ElsaProtect,
            ElsaPlan,
            ElsaStart,
        ]
    }
}

/// Loads of the latency tables, as fractions of the plan's FIFS capacity.
pub(super) const LOADS: [f64; 3] = [0.5, 0.7, 0.9];
/// Where the p99 goal is judged, as an index into [`LOADS`].
pub(super) const AT_70: usize = 1;

/// Loads (as fractions of the MILP plan's fluid capacity) of the p99-vs-load figure.
pub(super) fn fractions(quick: bool) -> Vec<f64> {
    if quick {
        vec![0.5, 0.9]
    } else {
        vec![0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25]
    }
}

/// The study's simulation settings: Poisson arrivals at `rate` under `scheduler`, 4
/// replications of 100,000 queries (2 of 20,000 when quick), `opts`'s seed and threads.
pub fn sim_config(opts: &Options, scheduler: SchedulerKind, rate: f64) -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rate,
    });
    c.scheduler = scheduler;
    c.queries = Some(if opts.quick { 20_000 } else { 100_000 });
    c.replications = if opts.quick { 2 } else { 4 };
    c.seed = opts.seed;
    c.threads = opts.threads;
    c
}
