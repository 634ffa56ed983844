//! Command-line definitions and dispatch.

mod common;
mod gap;
mod import;
mod layouts;
mod plan;
mod profile;
mod replan;
mod replay;
mod reproduce;
mod scenario;
mod serve;
mod simulate;

use clap::{Parser, Subcommand};
use std::fmt;

/// Plan NVIDIA MIG partitions for inference servers, prove how good the plan is, and
/// simulate it under load.
#[derive(Parser, Debug)]
#[command(name = "migopt", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every maximal MIG layout of a GPU, with NVML placements and idle slices.
    Layouts(layouts::Args),
    /// Plan MIG partitions for a scenario (default: the shipped 8x H100 scenario).
    Plan(plan::Args),
    /// Re-plan a running plan for a new load: fewest GPUs (max-load: most load), then fewest
    /// re-cut, with a safe transition (--solver sla, --objective sla-capacity: the SLA-aware
    /// target, checked by simulation).
    Replan(replan::Args),
    /// Replay a day of traffic: static peak plan vs from-scratch vs replan (GPU-hours,
    /// re-cuts, simulated SLA violations including transitions).
    ReplayDay(replay::Args),
    /// Compare every heuristic with the MILP optimum, per scenario (and sweeps).
    Gap(gap::Args),
    /// Simulate a plan under load: latency percentiles, SLA violations, utilisation.
    Simulate(simulate::SimFlags),
    /// Find the largest load a plan sustains within its SLAs (bisection over the rate).
    Capacity(simulate::CapacityArgs),
    /// Serve a plan for real: one worker process per instance (MPS-emulated slices, real MIG
    /// devices, or fake CPU workers), the simulator's schedulers dispatching, every query recorded.
    Serve(serve::ServeArgs),
    /// Put a served run (`migopt serve --out`) beside the simulator's prediction of the same
    /// trace: p50/p95/p99 per model with relative errors, utilisation per instance.
    Compare(serve::CompareArgs),
    /// Regenerate a reproduction under papers/ (CSVs, SVG figures, RESULTS.md).
    Reproduce(reproduce::Args),
    /// Work with latency profile CSV files.
    #[command(subcommand)]
    Profile(profile::Command),
    /// Validate and summarise scenario files.
    #[command(subcommand)]
    Scenario(scenario::Command),
    /// Convert public profile sets into migopt's CSV and scenario formats.
    #[command(subcommand)]
    Import(import::Command),
}

/// A failure, split by whose fault it is: bad input exits 2, internal failures exit 1.
#[derive(Debug)]
pub enum CliError {
    /// The user's input is wrong or the request impossible.
    Input(migopt_models::Error),
    /// Something broke inside migopt (a solver failure, a bug).
    Internal(String),
}

impl CliError {
    /// Process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(e) if e.is_internal() => 1,
            CliError::Input(_) => 2,
            CliError::Internal(_) => 1,
        }
    }
}

impl CliError {
    /// Names the scenario file in a message that says its requests cannot be served (the
    /// planner knows the scenario, not the file it came from), so that every bad-input
    /// message names its file. The shipped default scenario (`None`) is left as is.
    pub fn in_scenario(self, path: Option<&std::path::Path>) -> Self {
        match (self, path) {
            (CliError::Input(migopt_models::Error::Infeasible(m)), Some(p)) => CliError::Input(
                migopt_models::Error::Infeasible(format!("{}: {m}", p.display())),
            ),
            (e, _) => e,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(e) => write!(f, "{e}"),
            CliError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl From<migopt_models::Error> for CliError {
    fn from(e: migopt_models::Error) -> Self {
        CliError::Input(e)
    }
}

/// Serialises to pretty JSON; failure here is internal.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Internal(e.to_string()))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Layouts(a) => layouts::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Replan(a) => replan::run(a),
        Command::ReplayDay(a) => replay::run(a),
        Command::Gap(a) => gap::run(a),
        Command::Simulate(a) => simulate::run_simulate(a),
        Command::Capacity(a) => simulate::run_capacity(a),
        Command::Serve(a) => serve::run_serve(a),
        Command::Compare(a) => serve::run_compare(a),
        Command::Profile(c) => profile::run(c),
        Command::Import(c) => import::run(c),
        Command::Scenario(c) => scenario::run(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_exit_1_and_input_errors_exit_2() {
        use migopt_models::Error;
        assert_eq!(
            CliError::from(Error::internal("HiGHS failed")).exit_code(),
            1
        );
        assert_eq!(CliError::Internal("bug".into()).exit_code(), 1);
        assert_eq!(CliError::from(Error::Invalid("bad".into())).exit_code(), 2);
        assert_eq!(
            CliError::from(Error::Infeasible("no".into())).exit_code(),
            2
        );
    }

    #[test]
    fn infeasible_requests_name_the_scenario_file() {
        use migopt_models::Error;
        let p = std::path::Path::new("s.toml");
        let named =
            CliError::from(Error::Infeasible("model m: batch 9".into())).in_scenario(Some(p));
        assert_eq!(named.to_string(), "s.toml: model m: batch 9");
        let other = CliError::from(Error::Invalid("bad".into())).in_scenario(Some(p));
        assert_eq!(other.to_string(), "bad");
        let default = CliError::from(Error::Infeasible("x".into())).in_scenario(None);
        assert_eq!(default.to_string(), "x");
    }
}
