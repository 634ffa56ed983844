//! From a plan to worker processes: which batch sizes each instance may run (and so which
//! CUDA graphs its worker captures), where it is placed, and the command line that starts it.

use crate::error::ServeError;
use crate::worker::WorkerSpec;
use migopt_models::{Error, Plan, Scenario};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where workers run.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// No GPU: each query sleeps for its profiled median (tests, overhead benchmarks).
    Fake,
    /// An emulated slice on a GPU not in MIG mode: an MPS client limited to the slice's
    /// share of SMs. With `start_daemon` the front end runs a private MPS daemon; otherwise
    /// the workers use the daemon of the inherited `CUDA_MPS_PIPE_DIRECTORY`.
    Mps {
        /// Start (and stop) a private daemon.
        start_daemon: bool,
    },
    /// Real MIG devices, one UUID per instance in plan order (`MIG-...`). Untested on
    /// hardware: the lent GPUs stay out of MIG mode.
    Mig {
        /// Device UUIDs.
        devices: Vec<String>,
    },
}

impl Placement {
    /// The name used in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Placement::Fake => "fake",
            Placement::Mps { .. } => "mps",
            Placement::Mig { .. } => "mig",
        }
    }
}

/// One planned instance as the server runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// GPU index in the plan.
    pub gpu: u32,
    /// MIG profile.
    pub profile: String,
    /// NVML start.
    pub start: u32,
    /// Model.
    pub model: String,
    /// The batch sizes it may run and their profiled median service times, ms.
    pub batches: Vec<(u32, f64)>,
    /// SMs of the slice, and of the whole GPU.
    pub sms: u32,
    /// SMs of the GPU.
    pub gpu_sms: u32,
    /// Memory of the slice, GB.
    pub memory_gb: f64,
}

impl Instance {
    /// `GPU 0 3g.71gb@4 bert-base`.
    pub fn label(&self) -> String {
        format!(
            "GPU {} {}@{} {}",
            self.gpu, self.profile, self.start, self.model
        )
    }

    /// The profiled median of batch `b` here, if the instance runs it.
    pub fn median_ms(&self, b: u32) -> Option<f64> {
        self.batches
            .binary_search_by_key(&b, |x| x.0)
            .ok()
            .map(|k| self.batches[k].1)
    }

    /// `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` for the slice: rounded up, because MPS grants
    /// whole TPCs (pairs of SMs) rounded down (measured on the H200: 12% gave 14 SMs, 13% 16).
    pub fn thread_percentage(&self) -> u32 {
        ((100.0 * self.sms as f64 / self.gpu_sms as f64 - 1e-9).ceil() as u32).clamp(1, 100)
    }
}

/// The plan's instances, in plan order, with the batch sizes the queries in `wanted`
/// ((model, batch) pairs) may take there: at most the assignment's batch, and only where
/// the profile has a latency (by the scenario's lookup).
pub fn instances(
    plan: &Plan,
    scenario: &Scenario,
    wanted: &BTreeSet<(String, u32)>,
) -> Result<Vec<Instance>, Error> {
    let gpu = plan.gpu_spec()?;
    let mut out = Vec::new();
    for (g, a) in plan.instances() {
        let spec = gpu.profile(a.profile.as_str())?;
        if a.procs != 1 {
            return Err(Error::Invalid(format!(
                "GPU {g} {}@{}: `migopt serve` runs one worker per instance; {} MPS processes per instance are not supported",
                a.profile, a.start, a.procs
            )));
        }
        let curve = scenario
            .profiles
            .curve(a.model.as_str(), a.profile.as_str(), a.procs)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "GPU {g} {}@{}: no latency profile for `{}` there",
                    a.profile, a.start, a.model
                ))
            })?;
        let mut batches: Vec<(u32, f64)> = wanted
            .iter()
            .filter(|(m, b)| m == a.model.as_str() && *b <= a.batch)
            .filter_map(|(_, b)| curve.latency(*b, scenario.batch_lookup).map(|l| (*b, l.0)))
            .collect();
        if batches.is_empty() {
            // No query will come here; the worker still needs one graph to be ready.
            let b = curve.batches[0];
            batches.push((b, curve.latency_ms[0]));
        }
        batches.sort_by_key(|x| x.0);
        out.push(Instance {
            gpu: g,
            profile: a.profile.to_string(),
            start: a.start,
            model: a.model.to_string(),
            batches,
            sms: spec.sms,
            gpu_sms: gpu.sms,
            memory_gb: spec.memory_gb,
        });
    }
    check_servable(&out, wanted)?;
    Ok(out)
}

/// Every wanted (model, batch) runs on some instance: a query no worker can take would
/// otherwise end the run after every worker has started.
fn check_servable(insts: &[Instance], wanted: &BTreeSet<(String, u32)>) -> Result<(), Error> {
    for (m, b) in wanted {
        let of_model: Vec<&Instance> = insts.iter().filter(|i| i.model == *m).collect();
        if of_model.is_empty() {
            return Err(Error::Invalid(format!(
                "model `{m}` is not served by this plan"
            )));
        }
        if !of_model.iter().any(|i| i.batches.iter().any(|x| x.0 == *b)) {
            return Err(Error::Invalid(format!(
                "no instance of model `{m}` takes a query of batch {b} (it has no profiled latency for it, or it is above every instance's batch)"
            )));
        }
    }
    Ok(())
}

/// How to start workers.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The Python interpreter.
    pub python: PathBuf,
    /// `worker.py` (its folder must also hold `measure.py`).
    pub script: PathBuf,
    /// fp16, bf16 or fp32.
    pub dtype: String,
    /// Folder for one stderr log per worker.
    pub logs: Option<PathBuf>,
    /// Extra arguments for one instance's worker (fault injection in tests).
    pub extra: Option<(usize, Vec<String>)>,
}

/// The shipped worker and the module it imports, embedded so `migopt serve` runs anywhere.
pub const WORKER_PY: &str = include_str!("../../profiles/worker.py");
/// `measure.py`, whose model builders the worker uses.
pub const MEASURE_PY: &str = include_str!("../../profiles/measure.py");

/// Writes the embedded worker into `dir`, returning the script's path.
pub fn write_embedded_worker(dir: &Path) -> Result<PathBuf, ServeError> {
    for (name, text) in [("worker.py", WORKER_PY), ("measure.py", MEASURE_PY)] {
        std::fs::write(dir.join(name), text).map_err(|e| ServeError::Io {
            what: format!("cannot write {}", dir.join(name).display()),
            source: e,
        })?;
    }
    Ok(dir.join("worker.py"))
}

fn fmt_ms(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The worker of instance `k` under `placement`; `mps_env` is the private daemon's.
pub fn worker_spec(
    k: usize,
    inst: &Instance,
    placement: &Placement,
    mps_env: &[(String, String)],
    cmd: &WorkerCommand,
) -> WorkerSpec {
    let batches: Vec<String> = inst.batches.iter().map(|b| b.0.to_string()).collect();
    let mut args = vec![
        cmd.script.display().to_string(),
        "--model".into(),
        inst.model.clone(),
        "--batches".into(),
        batches.join(","),
        "--dtype".into(),
        cmd.dtype.clone(),
        "--label".into(),
        inst.label(),
    ];
    let mut env = Vec::new();
    match placement {
        Placement::Fake => {
            let lat: Vec<String> = inst
                .batches
                .iter()
                .map(|(b, ms)| format!("{b}:{}", fmt_ms(*ms)))
                .collect();
            args.extend(["--fake".into(), "--fake-latencies".into(), lat.join(",")]);
        }
        Placement::Mps { .. } => {
            env.push(("CUDA_VISIBLE_DEVICES".into(), inst.gpu.to_string()));
            env.push((
                "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE".into(),
                inst.thread_percentage().to_string(),
            ));
            env.extend(mps_env.iter().cloned());
            args.extend(["--memory-gib".into(), fmt_ms(inst.memory_gb)]);
        }
        Placement::Mig { devices } => {
            env.push(("CUDA_VISIBLE_DEVICES".into(), devices[k].clone()));
        }
    }
    if let Some((i, extra)) = &cmd.extra {
        if *i == k {
            args.extend(extra.iter().cloned());
        }
    }
    WorkerSpec {
        label: inst.label(),
        program: cmd.python.clone(),
        args,
        env,
        log: cmd
            .logs
            .as_ref()
            .map(|d| d.join(format!("worker-{k}-{}-{}.log", inst.profile, inst.model))),
    }
}
