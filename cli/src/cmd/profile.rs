//! `migopt profile ...`: validate and summarise latency profile files.

use super::{to_json, CliError};
use crate::out::table;
use migopt_models::profile::Warning;
use migopt_models::ProfileSet;
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Validate profile CSVs and print, per model and profile, the batch range, the knee
    /// (smallest batch reaching 90% of peak throughput) and the best throughput per GPC.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Profile CSV files (migopt schema).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Fill missing batch sizes between measured ones by linear interpolation first.
    #[arg(long)]
    interpolate: bool,
}

/// One row of the summary.
#[derive(Serialize)]
struct Summary {
    file: String,
    gpu: String,
    model: String,
    profile: String,
    procs: u32,
    batch_min: u32,
    batch_max: u32,
    measured_batches: usize,
    knee_batch: u32,
    peak_qps: f64,
    best_qps_per_gpc: f64,
    method: String,
}

#[derive(Serialize)]
struct Report {
    files: usize,
    summaries: Vec<Summary>,
    warnings: Vec<Warning>,
}

pub fn run(c: Command) -> Result<(), CliError> {
    match c {
        Command::Check(a) => check(a),
    }
}

fn check(a: CheckArgs) -> Result<(), CliError> {
    // Everything is read and validated before anything is printed.
    let report = summarise(&a.files, a.interpolate)?;
    if a.json {
        crate::say!("{}", to_json(&report)?);
    } else {
        render(&report);
    }
    Ok(())
}

/// Reads and validates every file: per file its curves' summaries and its warnings.
fn summarise(files: &[PathBuf], interpolate: bool) -> Result<Report, CliError> {
    let mut summaries = Vec::new();
    let mut warnings = Vec::new();
    for f in files {
        let mut set = ProfileSet::load(std::slice::from_ref(f))?;
        if interpolate {
            set = set.interpolated()?;
        }
        summaries.extend(curve_summaries(&set, &f.display().to_string())?);
        warnings.extend(set.warnings.into_iter().map(|w| Warning {
            at: format!("{}: {}", f.display(), w.at),
            ..w
        }));
    }
    // Per file, curves are keyed (model, profile, procs); show profiles in size order.
    summaries.sort_by(|x, y| {
        (&x.file, &x.model, x.procs, size_key(&x.profile)).cmp(&(
            &y.file,
            &y.model,
            y.procs,
            size_key(&y.profile),
        ))
    });
    Ok(Report {
        files: files.len(),
        summaries,
        warnings,
    })
}

/// One summary per curve of a profile set read from `file`.
fn curve_summaries(set: &ProfileSet, file: &str) -> Result<Vec<Summary>, CliError> {
    let gpu = set.gpu_spec();
    let mut out = Vec::new();
    for (k, c) in &set.curves {
        let gpcs = gpu.profile(k.profile.as_str())?.compute as f64;
        let peak = c.throughput_qps.iter().cloned().fold(0.0, f64::max);
        out.push(Summary {
            file: file.to_string(),
            gpu: set.gpu.to_string(),
            model: k.model.to_string(),
            profile: k.profile.to_string(),
            procs: k.procs,
            batch_min: c.batches[0],
            batch_max: c.max_batch(),
            measured_batches: c.batches.len(),
            knee_batch: c.knee(0.9),
            peak_qps: peak,
            best_qps_per_gpc: peak / gpcs,
            method: set
                .methods
                .get(&k.model)
                .map(|m| m.as_str())
                .unwrap_or("imported")
                .to_string(),
        });
    }
    Ok(out)
}

/// The summary as a table, a count and the warnings.
fn render(report: &Report) {
    let rows: Vec<Vec<String>> = report
        .summaries
        .iter()
        .map(|s| {
            vec![
                s.model.clone(),
                s.gpu.clone(),
                s.profile.clone(),
                s.procs.to_string(),
                format!("{}..{} ({})", s.batch_min, s.batch_max, s.measured_batches),
                s.knee_batch.to_string(),
                format!("{:.1}", s.peak_qps),
                format!("{:.1}", s.best_qps_per_gpc),
                s.method.clone(),
            ]
        })
        .collect();
    let header = [
        "model",
        "gpu",
        "profile",
        "procs",
        "batches",
        "knee",
        "peak q/s",
        "q/s per GPC",
        "method",
    ];
    crate::say!("{}", table(&header, &rows));
    crate::sayln!(
        "{} file(s) valid: {} curves.",
        report.files,
        report.summaries.len()
    );
    for w in &report.warnings {
        crate::sayln!("warning: {}: {}", w.at, w.message);
    }
}

fn size_key(profile: &str) -> (u32, String) {
    let g = profile
        .split('g')
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (g, profile.to_string())
}
