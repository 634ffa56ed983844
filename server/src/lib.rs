//! # migopt-server
//!
//! A real inference server for a migopt plan, small and honest: one worker process per
//! planned MIG instance (`profiles/worker.py`: PyTorch, CUDA graphs), placed on a real MIG
//! device or on an emulated slice (an MPS client limited to the slice's SMs), and a Rust
//! front end that replays arrivals open-loop, dispatches with the simulator's own
//! schedulers, and records every query's arrival, dispatch, start, finish, instance and
//! batch. `migopt compare` then re-simulates the same trace and puts the two side by side.
//!
//! * [`Session`] starts the workers (and, when asked, a private MPS daemon), waits until
//!   every one has captured its graphs, and runs any number of traces through them.
//! * Workers that die, hang or break the protocol end the run with an error naming their
//!   instance; whatever happens, no worker and no MPS daemon outlives the session.
//!
//! The real-MIG placement has not been run on hardware: the GPUs lent to this project stay
//! out of MIG mode (it is never changed).

#![warn(missing_docs)]

pub mod compare;
mod error;
pub mod frontend;
mod mps;
pub mod protocol;
pub mod records;
pub mod setup;
mod worker;

pub use error::ServeError;
pub use frontend::{RunOutcome, Timing};
pub use mps::MpsDaemon;
pub use records::{QueryRecord, RunMeta, WorkerMeta};
pub use setup::{Instance, Placement, WorkerCommand};

use frontend::Policy;
use migopt_models::{Plan, Scenario};
use migopt_sim::sched::{Dispatcher, Fifs};
use migopt_sim::{SchedulerKind, ServingMode, TraceRecord};
use std::collections::BTreeSet;
use std::time::Duration;

/// How to serve, apart from the plan and the traffic.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where workers run.
    pub placement: Placement,
    /// How workers are started.
    pub worker: WorkerCommand,
    /// Longest wait for every worker to capture its graphs.
    pub ready_timeout: Duration,
    /// Loop timing and hang detection.
    pub timing: Timing,
}

/// Running workers for one plan.
pub struct Session {
    plan: Plan,
    scenario: Scenario,
    insts: Vec<Instance>,
    pool: worker::Pool,
    workers: Vec<WorkerMeta>,
    timing: Timing,
    // Dropped after the pool: the daemon outlives its clients.
    mps: Option<MpsDaemon>,
    _script_dir: Option<tempfile::TempDir>,
}

impl Session {
    /// Starts one worker per instance of `plan`, able to run every (model, batch) in
    /// `wanted`, and waits until all are ready.
    pub fn start(
        plan: &Plan,
        scenario: &Scenario,
        wanted: &BTreeSet<(String, u32)>,
        cfg: &ServeConfig,
    ) -> Result<Self, ServeError> {
        let insts = setup::instances(plan, scenario, wanted)?;
        if let Placement::Mig { devices } = &cfg.placement {
            if devices.len() != insts.len() {
                return Err(migopt_models::Error::Invalid(format!(
                    "{} MIG devices given for {} instances (one UUID per instance, in plan order)",
                    devices.len(),
                    insts.len()
                ))
                .into());
            }
        }
        let mut worker = cfg.worker.clone();
        let script_dir = if worker.script.as_os_str().is_empty() {
            let d = tempfile::Builder::new()
                .prefix("migopt-worker-")
                .tempdir()
                .map_err(|e| ServeError::Io {
                    what: "cannot create a folder for the worker".into(),
                    source: e,
                })?;
            worker.script = setup::write_embedded_worker(d.path())?;
            Some(d)
        } else {
            None
        };
        let mps = match cfg.placement {
            Placement::Mps { start_daemon: true } => Some(MpsDaemon::start()?),
            _ => None,
        };
        let mps_env: Vec<(String, String)> =
            mps.as_ref().map(|m| m.env().to_vec()).unwrap_or_default();
        let specs: Vec<_> = insts
            .iter()
            .enumerate()
            .map(|(k, i)| setup::worker_spec(k, i, &cfg.placement, &mps_env, &worker))
            .collect();
        let mut pool = worker::Pool::start(&specs)?;
        let ready = pool.wait_ready(cfg.ready_timeout)?;
        let workers = specs
            .iter()
            .zip(ready)
            .enumerate()
            .map(|(k, (s, r))| WorkerMeta {
                instance: k as u32,
                label: s.label.clone(),
                env: s.env.clone(),
                ready: r,
            })
            .collect();
        Ok(Self {
            plan: plan.clone(),
            scenario: scenario.clone(),
            insts,
            pool,
            workers,
            timing: cfg.timing,
            mps,
            _script_dir: script_dir,
        })
    }

    /// The instances, in plan order.
    pub fn instances(&self) -> &[Instance] {
        &self.insts
    }

    /// What the workers said when they were ready, and their placement.
    pub fn workers(&self) -> &[WorkerMeta] {
        &self.workers
    }

    /// Serves `trace` under `scheduler`. Queries are query batches (PARIS/ELSA's setting).
    pub fn run(
        &mut self,
        trace: &[TraceRecord],
        scheduler: SchedulerKind,
    ) -> Result<RunOutcome, ServeError> {
        let policy = if scheduler.dispatches_at_arrival() {
            Policy::AtArrival(Box::new(Dispatcher::new(
                &self.plan,
                &self.scenario,
                scheduler,
                ServingMode::QueryBatches,
            )?))
        } else {
            Policy::Central(Box::new(Fifs::new(&self.plan, &self.scenario)?))
        };
        frontend::run(&mut self.pool, &self.insts, trace, policy, self.timing)
    }

    /// Stops the workers (and the MPS daemon); returns how each worker ended.
    pub fn finish(mut self) -> Vec<String> {
        let pool = std::mem::replace(&mut self.pool, worker::Pool::empty());
        let out = pool.shutdown(Duration::from_secs(10));
        if let Some(m) = self.mps.take() {
            m.stop();
        }
        out
    }
}

/// Every (model, batch) a trace asks for.
pub fn wanted(trace: &[TraceRecord]) -> BTreeSet<(String, u32)> {
    trace
        .iter()
        .map(|q| (q.model.to_string(), q.batch))
        .collect()
}
