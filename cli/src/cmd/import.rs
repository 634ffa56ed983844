//! `migopt import ...`: convert public profile sets.

use super::CliError;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Convert the ParvaGPU A100-80GB profile set (prof_data/ and SLO/) into migopt CSVs
    /// (one per model) and one scenario file per SLO scenario.
    Parvagpu(ParvaArgs),
}

#[derive(clap::Args, Debug)]
pub struct ParvaArgs {
    /// The data set's folder (holding prof_data/ and SLO/).
    dir: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(c: Command) -> Result<(), CliError> {
    match c {
        Command::Parvagpu(a) => {
            let mut inputs = migopt_models::input::Inputs::default();
            let imp = migopt_profiles::parvagpu::read_recording(&a.dir, &mut inputs)?;
            let files = imp.files(&a.out)?;
            crate::out::write_all(&files, &inputs)?;
            let written = files.into_iter().map(|f| f.0);
            let rows: usize = imp.rows.iter().map(|r| r.1.len()).sum();
            crate::sayln!(
                "imported {} models ({} measurements) and {} scenarios into {}:",
                imp.models.len(),
                rows,
                imp.scenarios.len(),
                a.out.display()
            );
            for w in written {
                crate::sayln!("  {}", w.display());
            }
            Ok(())
        }
    }
}
