//! `migopt scenario check`: load a scenario and its profiles, and say what it asks for.

use super::{to_json, CliError};
use crate::out::table;
use migopt_models::{Demand, Scenario};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Validate scenario files (and the profiles they name) and summarise each model's
    /// traffic, SLA, batch distribution and measured profiles.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Scenario TOML files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the loaded scenarios as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(c: Command) -> Result<(), CliError> {
    let Command::Check(a) = c;
    let scenarios = a
        .files
        .iter()
        .map(|f| Scenario::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    if a.json {
        crate::say!("{}", to_json(&scenarios)?);
        return Ok(());
    }
    for s in &scenarios {
        crate::sayln!(
            "{}: {} x {}{}",
            s.name,
            s.gpu_count,
            s.gpu,
            s.description
                .as_ref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        );
        let rows: Vec<Vec<String>> = s
            .models
            .iter()
            .map(|m| {
                vec![
                    m.name.to_string(),
                    format!("{:.1}", m.sla.0),
                    match m.demand {
                        Demand::Rate(r) => format!("{r} q/s"),
                        Demand::Share(x) => format!("share {x}"),
                    },
                    format!("{:.2}", m.batch.mean()),
                    m.batch.max().to_string(),
                    s.profiles
                        .profiles_of(m.name.as_str())
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        crate::say!(
            "{}",
            table(
                &[
                    "model",
                    "SLA ms",
                    "traffic",
                    "mean batch",
                    "max batch",
                    "profiles"
                ],
                &rows
            )
        );
    }
    Ok(())
}
