//! The `migopt` command. Thin: it parses arguments, calls the library crates, and prints.
//! Exit codes: 0 success, 2 bad input (file, line and field named), 1 internal failure.

mod cmd;
mod out;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("migopt: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
