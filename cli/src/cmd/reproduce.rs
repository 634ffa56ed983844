//! `migopt reproduce papers/<study>`: regenerate a reproduction's CSVs, figures and
//! RESULTS.md.

use super::common::Progress;
use super::CliError;
use migopt_papers::{Options, Study};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The study folder: papers/paris-elsa, papers/parvagpu, papers/reconfiguration or
    /// papers/sim-to-real.
    dir: PathBuf,
    /// A reduced run (one workload, fewer queries), as the tests use.
    #[arg(long)]
    quick: bool,
    /// Master seed of every simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulator threads (results do not depend on it).
    #[arg(long)]
    threads: Option<usize>,
    /// The ParvaGPU data set folder (default: the copy vendored in profiles/parvagpu-a100-80gb).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Write the outputs here instead of the study folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    if let Some(t) = a.threads {
        super::common::check_threads(t as u64)?;
    }
    let study = Study::from_dir(&a.dir)?;
    // An output folder that cannot be written is refused before the study runs.
    // Nothing has been read yet: the study's inputs are checked once it has run.
    let none = migopt_models::input::Inputs::default();
    crate::out::check_target(&a.out.as_ref().unwrap_or(&a.dir).join("RESULTS.md"), &none)?;
    let opts = Options {
        quick: a.quick,
        seed: a.seed,
        threads: a.threads,
        dataset: a
            .dataset
            .clone()
            .unwrap_or_else(migopt_profiles::parvagpu::dataset_dir),
        dir: Some(a.dir.clone()),
    };
    let bar = Progress::new(&format!("reproducing {}", a.dir.display()), true);
    let out = migopt_papers::reproduce(study, &opts, &|d, t| bar.update(d, t))?;
    bar.finish();
    let dir = a.out.unwrap_or(a.dir);
    let migopt_papers::Output {
        files,
        claims,
        inputs,
    } = out;
    let files: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|(rel, text)| (dir.join(rel), text))
        .collect();
    crate::out::write_all(&files, &inputs)?;
    crate::sayln!("wrote {} files under {}", files.len(), dir.display());
    for c in &claims {
        crate::sayln!("[{}] {}", if c.holds { "holds" } else { "fails" }, c.text);
    }
    Ok(())
}
