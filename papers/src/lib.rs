//! # migopt-papers
//!
//! Reproductions of published MIG partitioning results on migopt's own planner, simulator
//! and data: every number and figure in a `RESULTS.md` is written by the code here, never by
//! hand. `migopt reproduce papers/<study>` runs one study and writes its folder.

#![warn(missing_docs)]

pub mod md;
pub mod paris_elsa;
pub mod parvagpu;
pub mod plot;
pub mod reconfiguration;
pub mod replay;
pub mod sim_to_real;

use migopt_models::input::Inputs;
use migopt_models::Error;
use std::path::{Path, PathBuf};

/// The studies that can be reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Study {
    /// PARIS + ELSA (DAC 2022) against homogeneous partitions and baseline schedulers.
    ParisElsa,
    /// ParvaGPU's six SLO scenarios (SC 2024): GPUs used, optimality, simulated SLOs.
    Parvagpu,
    /// Re-planning over a day of traffic: static peak vs from scratch vs migopt replan.
    Reconfiguration,
    /// The simulator against a real server on the H200 (`migopt serve` runs, committed).
    SimToReal,
}

impl Study {
    /// Picks the study from a folder such as `papers/paris-elsa`.
    pub fn from_dir(dir: &Path) -> Result<Self, Error> {
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("paris-elsa") => Ok(Study::ParisElsa),
            Some("parvagpu") => Ok(Study::Parvagpu),
            Some("reconfiguration") => Ok(Study::Reconfiguration),
            Some("sim-to-real") => Ok(Study::SimToReal),
            _ => Err(Error::Invalid(format!(
                "{}: not a study folder (use papers/paris-elsa, papers/parvagpu, papers/reconfiguration or papers/sim-to-real)",
                dir.display()
            ))),
        }
    }
}

/// How hard to try, and where the shared data set is.
#[derive(Debug, Clone)]
pub struct Options {
    /// A reduced run (one workload, fewer queries) for tests and CI.
    pub quick: bool,
    /// Master seed of every simulation.
    pub seed: u64,
    /// Simulator threads (results do not depend on it).
    pub threads: Option<usize>,
    /// The ParvaGPU data set (default: the copy vendored in `profiles/parvagpu-a100-80gb`).
    pub dataset: PathBuf,
    /// The study folder, for studies that read measured data from it (`papers/sim-to-real`);
    /// default: the one in the source tree.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            seed: 1,
            threads: None,
            dataset: migopt_profiles::parvagpu::dataset_dir(),
            dir: None,
        }
    }
}

/// A qualitative claim the run checked, and whether it held.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Claim {
    /// What is claimed.
    pub text: String,
    /// Whether the numbers of this run bear it out.
    pub holds: bool,
}

/// Everything a study produces: files (path relative to the study folder, contents), the
/// claims it checked, and the files it read.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Files to write, relative to the study folder.
    pub files: Vec<(PathBuf, String)>,
    /// Checked claims.
    pub claims: Vec<Claim>,
    /// The files the study read (data set, measured runs), which its outputs must not replace.
    pub inputs: Inputs,
}

/// Progress callback: (steps done, steps in all).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Runs a study and returns its files, without writing anything.
pub fn reproduce(study: Study, opts: &Options, progress: Progress<'_>) -> Result<Output, Error> {
    match study {
        Study::ParisElsa => paris_elsa::run(opts, progress),
        Study::Parvagpu => parvagpu::run(opts, progress),
        Study::Reconfiguration => reconfiguration::run(opts, progress),
        Study::SimToReal => sim_to_real::run(opts, progress),
    }
}
