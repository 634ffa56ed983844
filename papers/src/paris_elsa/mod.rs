//! The PARIS + ELSA comparison (Kim, Choi, Rhu, "PARIS and ELSA: an elastic scheduling
//! algorithm for reconfigurable multi-GPU inference servers", DAC 2022), re-run on migopt's
//! data, with an ablation of the ELSA family. The paper's text is not at hand; its abstract
//! claims that heterogeneous partitions (PARIS) with elastic scheduling (ELSA) beat
//! homogeneous partitions in latency and utilisation. This study measures that claim on
//! 8-GPU servers, one model at a time:
//!
//! * partitionings: every homogeneous cut (1g x56, 2g x24, 3g x16, 4g x8, 7g x8), PARIS, and
//!   the MILP max-load plan;
//! * schedulers: FIFS (the paper's baseline), JSQ, and every ELSA variant of
//!   `migopt_sim::sched` (`elsa` is one of them);
//! * per combination: the simulated capacity at the SLA (largest load with p99 ≤ SLA) with
//!   its 95% interval; p50, p99 and SLA violations at 50/70/90% of the plan's FIFS capacity
//!   (and with `drop_late` at 70%); utilisation per partition size at capacity.
//!
//! The run computes typed results first ([`WorkloadRun`]), then renders CSVs, figures and
//! RESULTS.md from them:
//!
//! * `config`: the workloads, partitionings, schedulers, loads and simulation settings;
//! * `results`: the typed results (points, cells, plans, workloads);
//! * `measure`: planning every partitioning and simulating every cell, with the throughput
//!   bounds;
//! * `csvs`: the CSV files; `goals`: the goals and the checked claims;
//! * `markdown`: RESULTS.md's study-wide parts; `section`: one workload's section;
//!   `figures`: the p99-vs-load figure and the plan drawings; `sla`: the SLA-aware
//!   planner's table, claims and section.

mod config;
mod csvs;
mod figures;
mod goals;
mod markdown;
mod measure;
mod results;
mod section;
mod sla;

pub use config::{
    a100_profiles, schedulers, sim_config, workload, workloads, workloads_recording, Workload,
};
pub use measure::{sla_throughput_bound, throughput_bound};
pub use results::WorkloadRun;

use crate::md;
use crate::{Options, Output, Progress};
use config::partitionings;
use csvs::csv_files;
use goals::{claims, Goals};
use markdown::results_md;
use measure::run_workload;
use migopt_models::input::Inputs;
use migopt_models::Error;
use section::section;
use sla::{sla_claims, sla_md, sla_row, SlaRow};

/// Runs the study.
pub fn run(opts: &Options, progress: Progress<'_>) -> Result<Output, Error> {
    let mut inputs = Inputs::default();
    let loads = config::workloads_recording(opts, &mut inputs)?;
    let per_workload = partitionings(opts.quick).len() * (1 + schedulers(opts.quick).len()) + 1;
    let total = (loads.len() * per_workload) as u64;
    let mut done = 0u64;
    let mut tick = || {
        done += 1;
        progress(done.min(total), total);
    };
    let mut runs = Vec::new();
    for w in &loads {
        runs.push(run_workload(w, opts, &mut tick)?);
    }
    let mut out = render(opts, &runs)?;
    out.inputs = inputs;
    Ok(out)
}

/// Every file of the study, from the measured results.
fn render(opts: &Options, runs: &[WorkloadRun]) -> Result<Output, Error> {
    let mut out = Output::default();
    out.files.extend(csv_files(runs));
    let goals: Vec<Goals> = ["paris", "milp", "sla"]
        .iter()
        .map(|p| Goals::of(runs, p))
        .collect();
    out.claims = claims(runs, &goals);
    let sla_rows: Vec<SlaRow> = runs.iter().map(sla_row).collect();
    // The SLA-aware planner's two claims come right after the first three.
    let mut sla_c = Output::default();
    sla_claims(&sla_rows, &mut sla_c);
    let tail = out.claims.split_off(3.min(out.claims.len()));
    out.claims.extend(sla_c.claims);
    out.claims.extend(tail);
    out.files.push((
        "results/sla_planner.csv".into(),
        md::csv(
            &[
                "workload",
                "sla_layouts",
                "planned_qps",
                "predicted_qps",
                "sla_elsa_qps",
                "sla_ci_low",
                "sla_ci_high",
                "best_other",
                "best_other_qps",
                "best_other_ci_low",
                "best_other_ci_high",
                "milp_elsa_qps",
                "prediction_error_pct",
            ],
            &sla_rows.iter().map(SlaRow::csv).collect::<Vec<_>>(),
        ),
    ));
    let mut sections = String::new();
    for r in runs {
        sections += &section(r, opts, &mut out)?;
    }
    out.files.push((
        "RESULTS.md".into(),
        results_md(opts, runs, &goals, &out.claims, &sections) + &sla_md(&sla_rows),
    ));
    Ok(out)
}
