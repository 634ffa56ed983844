//! Re-planning over a day of traffic (issue 13; MIG-serving, Tan et al. 2021, asks the same
//! question with heuristics): a synthetic diurnal load (`papers/reconfiguration/diurnal.csv`)
//! replayed hour by hour on two fleets, planned three ways: one static plan at the day's
//! peak, the min-gpus optimum from scratch every hour (applied at once, as
//! `nvidia-mig-parted apply` would), and migopt's re-planner (fewest GPUs, then fewest
//! re-cut, then fewest instances started, with a safe transition).
//!
//! Fleets: the ParvaGPU A100-80GB models (its sixth SLO scenario, all 11 models, rates ×4
//! as the day's peak) and the shipped H100-80GB models (4 models measured on the lent H100,
//! rate targets stated in [`h100_scenario`]), both with the fluid min-gpus planner. The same
//! day with the SLA-aware planner and re-planner is `migopt replay-day --solver sla` (every
//! plan through its check loop); it is not part of the study because its 24 re-plans take
//! about 15 minutes of solving (BENCHMARKS.md, "A day with the SLA-aware planner").

use crate::md::{self, num};
use crate::plot::{line_chart, Chart, Series};
use crate::replay::{replay_day, DayReport, DiurnalLoad, ReplayOptions, Strategy};
use crate::{Claim, Options, Output, Progress};
use migopt_models::input::Inputs;
use migopt_models::{Demand, Error, Scenario};
use migopt_solver::SolverKind;
use std::fmt::Write as _;
use std::path::Path;

/// The shipped diurnal load (synthetic; its header says how it is made).
pub const DIURNAL: &str = include_str!("../reconfiguration/diurnal.csv");

/// GPUs beyond the from-scratch optimum the re-planner may use in an interval when that
/// re-cuts fewer (the goal allows 1).
pub const GPU_SLACK: u32 = 1;

/// Simulated seconds per plan and per transition state (one replication: the p99 of each
/// interval comes from every request of those seconds).
pub const SIM_SECONDS: f64 = 2.0;

/// The peak of the ParvaGPU fleet: scenario 6's rates times this.
pub const PARVAGPU_SCALE: f64 = 4.0;

/// The H100 fleet ([`migopt_profiles::builtin::H100_FLEET`]): the four shipped models with
/// rate targets at the day's peak; its profiles pad unmeasured batches, since the
/// simulator's dynamic batching forms every batch size and the shipped profiles measure
/// powers of two.
pub fn h100_scenario() -> Result<Scenario, Error> {
    let toml = migopt_profiles::builtin::H100_FLEET;
    let dir = Path::new(migopt_profiles::builtin::EMBEDDED_DIR);
    Scenario::parse(toml, &dir.join("h100-fleet.toml"), &mut |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        migopt_profiles::builtin::H100_80GB
            .iter()
            .find(|(n, _)| Some(n.to_string()) == name)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| Error::Invalid(format!("{}: not a shipped profile file", p.display())))
    })
}

fn parvagpu_scenario(opts: &Options, inputs: &mut Inputs) -> Result<Scenario, Error> {
    let imp = migopt_profiles::parvagpu::read_recording(&opts.dataset, inputs)?;
    let sc = imp
        .scenarios
        .last()
        .ok_or_else(|| Error::Invalid("the ParvaGPU data set has no SLO scenario".into()))?;
    let mut s = imp.scenario(sc)?;
    s.name = format!("parvagpu-slo{}-x{PARVAGPU_SCALE}", sc.index);
    for m in &mut s.models {
        if let Demand::Rate(r) = m.demand {
            m.demand = Demand::Rate(r * PARVAGPU_SCALE);
        }
    }
    Ok(s)
}

fn charts(tag: &str, d: &DayReport) -> Result<Vec<(std::path::PathBuf, String)>, Error> {
    let hours = |f: &dyn Fn(&crate::replay::Cell) -> f64| -> Vec<Series> {
        Strategy::ALL
            .iter()
            .enumerate()
            .map(|(k, s)| Series {
                label: s.as_str().into(),
                points: d
                    .intervals
                    .iter()
                    .map(|iv| (iv.start_h, f(&iv.cells[k])))
                    .collect(),
            })
            .collect()
    };
    let gpus = hours(&|c| c.gpus as f64);
    let recuts = hours(&|c| c.recuts as f64);
    let p99 = hours(&|c| c.p99_over_sla.unwrap_or(f64::NAN));
    let mut out = Vec::new();
    for (name, title, y, series, hline) in [
        ("gpus", "GPUs in use", "GPUs", &gpus, None),
        (
            "recuts",
            "GPUs re-cut at the start of each hour",
            "GPUs re-cut",
            &recuts,
            None,
        ),
        (
            "p99",
            "worst model's p99 / SLA (steady state)",
            "p99 / SLA",
            &p99,
            Some((1.0, "SLA")),
        ),
    ] {
        let t = format!("{tag}: {title}");
        out.push((
            format!("figures/{tag}-{name}.svg").into(),
            line_chart(&Chart {
                title: &t,
                x_label: "hour of day",
                y_label: y,
                series,
                hline,
                log_y: false,
                y_max: if name == "p99" { Some(3.0) } else { None },
            })?,
        ));
    }
    Ok(out)
}

fn day_csv(d: &DayReport) -> String {
    let mut rows = Vec::new();
    for iv in &d.intervals {
        for (k, s) in Strategy::ALL.iter().enumerate() {
            let c = &iv.cells[k];
            rows.push(vec![
                format!("{}", iv.start_h),
                format!("{:.1}", iv.rates.iter().sum::<f64>()),
                s.as_str().into(),
                c.gpus.to_string(),
                c.recuts.to_string(),
                c.steps.to_string(),
                c.status.as_str().into(),
                format!("{:.4}", c.solve_seconds),
                num(c.violations, 6),
                num(c.transition_violations, 6),
                num(c.p99_over_sla, 4),
                num(c.min_kept_ratio, 4),
            ]);
        }
    }
    md::csv(
        &[
            "hour",
            "total_rate_qps",
            "strategy",
            "gpus",
            "gpus_recut",
            "transition_steps",
            "status",
            "solve_seconds",
            "sla_violation_fraction",
            "of_which_in_transitions",
            "worst_p99_over_sla",
            "min_capacity_kept_over_required",
        ],
        &rows,
    )
}

/// What one fleet's day says against the goals.
struct Verdict {
    saving: f64,
    recut_ratio: f64,
    max_extra_gpus: i64,
    min_kept: f64,
}

fn verdict(d: &DayReport) -> Verdict {
    let saving = 1.0 - d.gpu_hours[2] / d.gpu_hours[0].max(1e-9);
    let recut_ratio = d.recuts[1] as f64 / (d.recuts[2].max(1)) as f64;
    let max_extra_gpus = d
        .intervals
        .iter()
        .map(|iv| iv.cells[2].gpus as i64 - iv.cells[1].gpus as i64)
        .max()
        .unwrap_or(0);
    let min_kept = d
        .intervals
        .iter()
        .filter_map(|iv| iv.cells[2].min_kept_ratio)
        .fold(f64::INFINITY, f64::min);
    Verdict {
        saving,
        recut_ratio,
        max_extra_gpus,
        min_kept,
    }
}

/// One fleet's section of RESULTS.md.
fn fleet_md(tag: &str, s: &Scenario, d: &DayReport, v: &Verdict) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n## {tag}: {}\n",
        s.description.clone().unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "{} models, peak rates {:.0} requests/s in all; {} intervals of {} h; {} s per transition step.\n",
        s.models.len(),
        s.rates().unwrap_or_default().iter().sum::<f64>(),
        d.intervals.len(),
        d.every_h,
        d.reconfig_s
    );
    md += &md::table(
        &["strategy", "GPU-hours", "GPUs re-cut", "SLA violations (%)"],
        &d.strategy_rows(&|x| num(x.map(|x| x * 100.0), 4)),
    );
    let _ = writeln!(
        md,
        "\nReplan against the static peak plan: {:.1}% fewer GPU-hours. Against planning from scratch: \
         {:.1}× fewer GPUs re-cut, at most {} GPU(s) more in any interval. Lowest capacity any model kept \
         during a transition step: {:.0}% of the capacity it had to keep (min of old and new rate). \
         Intervals whose transition swapped a change onto an idle GPU: {}; most spare GPUs taken: {}.\n",
        v.saving * 100.0,
        v.recut_ratio,
        v.max_extra_gpus,
        if v.min_kept.is_finite() { v.min_kept * 100.0 } else { f64::NAN },
        d.intervals_with_swaps,
        d.spares_needed
    );
    let mut rows = d.interval_rows(&|x| num(x.map(|x| x * 100.0), 3));
    for (row, iv) in rows.iter_mut().zip(&d.intervals) {
        row.push(num(iv.cells[2].p99_over_sla, 2));
    }
    md += &md::table(
        &[
            "hour",
            "req/s",
            "static GPUs",
            "scratch GPUs / re-cut",
            "replan GPUs / re-cut / steps",
            "scratch viol. %",
            "replan viol. %",
            "replan worst p99/SLA",
        ],
        &rows,
    );
    let _ = writeln!(
        md,
        "\n![GPUs]({0}) ![re-cuts]({1}) ![p99]({2})\n",
        format_args!("figures/{tag}-gpus.svg"),
        format_args!("figures/{tag}-recuts.svg"),
        format_args!("figures/{tag}-p99.svg")
    );
    md
}

/// The claims one fleet's day is checked against.
fn claims(tag: &str, v: &Verdict) -> Vec<Claim> {
    vec![
        Claim {
            text: format!(
                "{tag}: replan uses at least 30% fewer GPU-hours than the static peak plan"
            ),
            holds: v.saving >= 0.30,
        },
        Claim {
            text: format!(
                "{tag}: replan re-cuts at least 5x fewer GPUs than planning from scratch"
            ),
            holds: v.recut_ratio >= 5.0,
        },
        Claim {
            text: format!(
                "{tag}: replan uses at most 1 GPU more than from scratch in every interval"
            ),
            holds: v.max_extra_gpus <= 1,
        },
        Claim {
            text: format!("{tag}: no model falls below its required capacity during a transition"),
            holds: v.min_kept >= 1.0 - 1e-9 || v.min_kept.is_nan(),
        },
    ]
}

/// Runs the study.
pub fn run(opts: &Options, progress: Progress<'_>) -> Result<Output, Error> {
    let load = DiurnalLoad::parse(DIURNAL, Path::new("papers/reconfiguration/diurnal.csv"))?;
    let mut out = Output::default();
    let parvagpu = parvagpu_scenario(opts, &mut out.inputs)?;
    let mut fleets = vec![("parvagpu", parvagpu, SolverKind::Milp)];
    if !opts.quick {
        fleets.push(("h100", h100_scenario()?, SolverKind::Milp));
    }
    let ro = replay_options(opts);
    let mut md = String::new();
    let mut summary = Vec::new();
    let n = fleets.len() as u64;
    for (i, (tag, s, solver)) in fleets.iter().enumerate() {
        let base = i as u64 * 100;
        let ro = ReplayOptions {
            solver: solver.clone(),
            ..ro.clone()
        };
        let d = replay_day(s, &load, &ro, &|a, t| {
            progress(base + a * 100 / t.max(1), n * 100)
        })?;
        out.files.extend(charts(tag, &d)?);
        out.files
            .push((format!("results/{tag}-day.csv").into(), day_csv(&d)));
        for row in d.strategy_rows(&|x| num(x.map(|x| x * 100.0), 4)) {
            summary.push(std::iter::once(tag.to_string()).chain(row).collect());
        }
        let v = verdict(&d);
        md += &fleet_md(tag, s, &d, &v);
        out.claims.extend(claims(tag, &v));
    }
    out.files.push((
        "results/summary.csv".into(),
        md::csv(
            &[
                "fleet",
                "strategy",
                "gpu_hours",
                "gpus_recut",
                "sla_violations_pct",
            ],
            &summary,
        ),
    ));
    let text = results_md(&md, &out.claims);
    out.files.push(("RESULTS.md".into(), text));
    Ok(out)
}

/// How each fleet's day is replayed: every hour (every 6 hours and no simulation when
/// quick), one replication of [`SIM_SECONDS`], within [`GPU_SLACK`].
fn replay_options(opts: &Options) -> ReplayOptions {
    ReplayOptions {
        every_h: if opts.quick { 6.0 } else { 1.0 },
        gpu_slack: GPU_SLACK,
        sim_seconds: if opts.quick { 0.0 } else { SIM_SECONDS },
        replications: 1,
        seed: opts.seed,
        threads: opts.threads,
        ..ReplayOptions::default()
    }
}

/// `RESULTS.md`: how the study is made, each fleet's section (`fleets_md`) and the claims
/// checked.
fn results_md(fleets_md: &str, claims: &[Claim]) -> String {
    let mut text = String::from(
        "# Re-planning over a day of traffic\n\n\
         Regenerate with `migopt reproduce papers/reconfiguration` (every number and figure here is written by \
         `papers/src/reconfiguration.rs`).\n\n\
         The load is synthetic (`diurnal.csv`, its header gives the formula): each model's rate moves between 20% \
         and 100% of its peak, with peaks at different hours, so the mix changes through the day. Each hour is \
         planned three ways: **static-peak**, one min-gpus plan for every model's peak, never changed; \
         **from-scratch**, the min-gpus optimum of the hour, applied at once to every GPU that differs (GPUs \
         matched to the previous hour's identical ones as well as possible); **replan**, `migopt replan --gpu-slack 1` \
         from the previous hour's plan: at most one GPU more than the hour's fewest, the fewest GPUs re-cut or \
         added, then the fewest GPUs in use, then the fewest instances started, then (a tie-break) the most \
         headroom, applied by its safe transition (each step drains, re-cuts and reloads a set of GPUs while \
         every model keeps min(old, new) of its rate; one spare GPU may be borrowed). Every plan is simulated \
         at the hour's rates (JSQ, server-side dynamic batching), and every transition state for the \
         reconfiguration time with the GPUs being re-cut down; SLA violations are the fraction of the day's \
         requests that missed their SLA, transitions included.\n",
    );
    text += fleets_md;
    text += "\n## Claims checked by this run\n\n";
    for c in claims {
        let _ = writeln!(
            text,
            "- [{}] {}",
            if c.holds { "holds" } else { "fails" },
            c.text
        );
    }
    text
}
