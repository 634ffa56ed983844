//! `papers/sim-to-real`: the simulator measured against a real server.
//!
//! One H200 (not in MIG mode) cut by the planner into 3g.71gb + 2g.35gb + 1g.18gb + 1g.18gb
//! (emulated with MPS), serving ResNet-50 and BERT-base through `migopt serve` under ELSA and
//! FIFS. The raw per-query records (`raw/*.csv.gz`, with their sidecars) were measured once
//! on the GPU (`run.sh`), in two steps:
//!
//! 1. **calibration** (`raw/calib.<scheduler>.csv.gz`): one trace of its own, from which the
//!    server's own cost per query is read (pipe round trip and busy gap,
//!    [`compare::ServerCost`]); no evaluation run is used for it;
//! 2. **evaluation** (`raw/load<NN>.<scheduler>.csv.gz`): Poisson traces at NN% of the plan's
//!    simulated capacity under the load-aware model with that cost, per scheduler
//!    ([`capacity`], written to `results/capacity.csv` before the traces are made).
//!
//! This module re-simulates every evaluation trace three ways (isolated profiles, profiles
//! with every neighbour flat out, and the load-aware interference model) and writes
//! RESULTS.md, `results/errors.csv`, `results/capacity.csv` and the figures. No GPU is needed
//! to regenerate them. With calibration runs but no evaluation runs yet (the middle of
//! `run.sh`), it writes `results/capacity.csv` alone.

use crate::md;
use crate::plot::{line_chart, Chart, Series};
use crate::{Claim, Options, Output, Progress};
use migopt_models::input::Inputs;
use migopt_models::report::SimReport;
use migopt_models::{Error, Plan, Scenario};
use migopt_server::compare::{self, Comparison, ServerCost, ServiceSpread as Spread};
use migopt_server::records::{self, QueryRecord, RunMeta};
use migopt_sim::{Arrivals, CapacityTarget, SchedulerKind, ServingMode, SimConfig};
use std::path::{Path, PathBuf};

/// The study folder in the repository.
pub fn study_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-to-real")
}

/// The evaluation loads, % of simulated capacity.
pub const LOADS_PCT: [u32; 3] = [30, 60, 85];

/// The schedulers of the study.
const SCHEDULERS: [SchedulerKind; 2] = [SchedulerKind::Elsa, SchedulerKind::Fifs];

/// One served run as committed: records and sidecar.
struct Served {
    recs: Vec<QueryRecord>,
    meta: RunMeta,
    /// The scheduler the server was asked for (`elsa`, `fifs`): the study's label.
    scheduler: SchedulerKind,
    /// The rule it really ran (`elsa` resolves to an ELSA variant that has changed between
    /// versions): what the simulator re-runs.
    rule: SchedulerKind,
}

/// `raw/<stem>.<scheduler>.csv.gz` (or `.csv`) and its sidecar `raw/<stem>.<scheduler>.csv.json`,
/// both recorded in `inputs`.
fn read_served(csv: &Path, inputs: &mut Inputs) -> Result<Served, Error> {
    let name = csv.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let text = if name.ends_with(".gz") {
        inputs.read_gzip_text(csv, migopt_models::limits::RECORDS_FILE)?
    } else {
        inputs.read_text(csv, migopt_models::limits::RECORDS_FILE)?
    };
    let recs = records::parse_csv(&text, csv)?;
    let side = csv.with_file_name(name.trim_end_matches(".gz").to_string() + ".json");
    let mtext = inputs.read_text(&side, migopt_models::limits::SIDECAR_FILE)?;
    let meta = records::parse_sidecar(&mtext, &side)?;
    let scheduler: SchedulerKind = meta.scheduler.parse()?;
    let rule = meta.rule()?;
    Ok(Served {
        recs,
        meta,
        scheduler,
        rule,
    })
}

/// The raw files whose name starts with `prefix`, sorted.
fn raw_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, Error> {
    let raw = dir.join("raw");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&raw)
        .map_err(|e| Error::io(&raw, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(prefix) && (n.ends_with(".csv.gz") || n.ends_with(".csv"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The server's cost per query and the spread of its service times under each scheduler,
/// from its calibration run.
struct Calibration {
    scheduler: SchedulerKind,
    /// The rule the calibration run really dispatched with (see [`Served::rule`]).
    rule: SchedulerKind,
    meta: RunMeta,
    cost: ServerCost,
    spread: Spread,
}

fn calibrations(dir: &Path, plan: &Plan, inputs: &mut Inputs) -> Result<Vec<Calibration>, Error> {
    let mut out = Vec::new();
    for f in raw_files(dir, "calib.")? {
        let s = read_served(&f, inputs)?;
        out.push(Calibration {
            cost: ServerCost::from_overhead(&s.meta.overhead, s.rule),
            spread: compare::service_spread(plan, &s.recs, s.meta.warmup_fraction),
            scheduler: s.scheduler,
            rule: s.rule,
            meta: s.meta,
        });
    }
    for k in SCHEDULERS {
        if !out.iter().any(|c| c.scheduler == k) {
            return Err(Error::Invalid(format!(
                "{}: no calibration run under {k} (raw/calib.{k}.csv.gz)",
                dir.join("raw").display()
            )));
        }
    }
    Ok(out)
}

/// One evaluation run and its predictions.
struct Run {
    load_pct: u32,
    scheduler: SchedulerKind,
    meta: RunMeta,
    cmp: Comparison,
}

fn load_runs(
    dir: &Path,
    plan: &Plan,
    s: &Scenario,
    cal: &[Calibration],
    progress: Progress<'_>,
    inputs: &mut Inputs,
) -> Result<Vec<Run>, Error> {
    let files = raw_files(dir, "load")?;
    let mut runs = Vec::new();
    for (k, f) in files.iter().enumerate() {
        progress(k as u64, files.len() as u64);
        let sv = read_served(f, inputs)?;
        let load_pct: u32 = sv
            .meta
            .arrivals
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_start_matches("load")
            .parse()
            .map_err(|_| {
                Error::Invalid(format!(
                    "{}: arrivals `{}` (expected loadNN)",
                    f.display(),
                    sv.meta.arrivals
                ))
            })?;
        let c = calibration_of(cal, sv.scheduler)?;
        if c.rule != sv.rule {
            return Err(Error::Invalid(format!(
                "{}: served under {}, but its calibration run under {}",
                f.display(),
                sv.rule,
                c.rule
            )));
        }
        let cmp = compare::compare_spread(
            plan,
            s,
            sv.rule,
            &sv.recs,
            sv.meta.warmup_fraction,
            c.cost,
            Some(&c.spread),
        )?;
        runs.push(Run {
            load_pct,
            scheduler: sv.scheduler,
            meta: sv.meta,
            cmp,
        });
    }
    runs.sort_by(|a, b| {
        a.scheduler
            .as_str()
            .cmp(b.scheduler.as_str())
            .then(a.load_pct.cmp(&b.load_pct))
    });
    Ok(runs)
}

fn calibration_of(cal: &[Calibration], k: SchedulerKind) -> Result<&Calibration, Error> {
    cal.iter()
        .find(|c| c.scheduler == k)
        .ok_or_else(|| Error::Invalid(format!("no calibration run under {k}")))
}

fn cost_of(cal: &[Calibration], k: SchedulerKind) -> ServerCost {
    calibration_of(cal, k).map_or(ServerCost::default(), |c| c.cost)
}

/// Simulated capacity (p99 within the SLA) of the plan under the load-aware model, with the
/// server's calibrated cost per query and service-time spread.
fn capacity(plan: &Plan, s: &Scenario, cal: &Calibration, opts: &Options) -> Result<f64, Error> {
    let s = compare::with_spread(s, &cal.spread);
    let cost = cal.cost;
    let mut cfg = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 500.0,
    });
    cfg.scheduler = cal.rule;
    cfg.mode = Some(ServingMode::QueryBatches);
    cfg.queries = Some(if opts.quick { 10_000 } else { 60_000 });
    cfg.replications = if opts.quick { 2 } else { 5 };
    cfg.seed = opts.seed;
    cfg.threads = opts.threads;
    cfg.service_overhead_ms = cost.occupancy_ms;
    cfg.latency_overhead_ms = cost.latency_ms;
    cfg.jitter = true;
    Ok(migopt_sim::capacity(plan, &s, &cfg, CapacityTarget::P99)?
        .capacity_qps
        .mean)
}

fn pcts(r: &SimReport, m: usize) -> Option<[f64; 3]> {
    r.models[m]
        .latency_ms
        .as_ref()
        .map(|l| [l.p50.mean, l.p95.mean, l.p99.mean])
}

/// `results/capacity.csv`: per scheduler, the calibrated cost, the capacity and the rate of
/// each evaluation load (what `make_traces.py` reads).
fn capacity_csv(cal: &[Calibration], caps: &[(SchedulerKind, f64)]) -> String {
    let rows: Vec<Vec<String>> = caps
        .iter()
        .map(|(k, c)| {
            let cb = cal.iter().find(|x| x.scheduler == *k);
            let us = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
            let cost = cost_of(cal, *k);
            let mut row = vec![
                k.to_string(),
                format!("{c:.1}"),
                format!("{:.4}", cost.occupancy_ms),
                format!("{:.4}", cost.latency_ms),
                us(cb.and_then(|x| x.meta.overhead.round_trip_us_p50)),
                us(cb.and_then(|x| x.meta.overhead.busy_gap_us_p50)),
            ];
            row.extend(
                LOADS_PCT
                    .iter()
                    .map(|l| format!("{:.1}", c * *l as f64 / 100.0)),
            );
            row
        })
        .collect();
    let mut head = vec![
        "scheduler".to_string(),
        "capacity_qps".into(),
        "occupancy_overhead_ms".into(),
        "latency_overhead_ms".into(),
        "calib_round_trip_us_p50".into(),
        "calib_busy_gap_us_p50".into(),
    ];
    head.extend(LOADS_PCT.iter().map(|l| format!("rate_load{l}_qps")));
    let h: Vec<&str> = head.iter().map(String::as_str).collect();
    md::csv(&h, &rows)
}

/// Runs the study on the committed raw data.
pub fn run(opts: &Options, progress: Progress<'_>) -> Result<Output, Error> {
    let dir = opts.dir.clone().unwrap_or_else(study_dir);
    let mut out = Output::default();
    let s = Scenario::load_recording(&dir.join("scenario.toml"), &mut out.inputs)?;
    let ppath = dir.join("plan.json");
    let ptext = out
        .inputs
        .read_text(&ppath, migopt_models::limits::PLAN_FILE)?;
    let plan = Plan::from_json(&ptext, &ppath)?;
    let cal = calibrations(&dir, &plan, &mut out.inputs)?;
    let caps: Vec<(SchedulerKind, f64)> = SCHEDULERS
        .into_iter()
        .map(|k| capacity(&plan, &s, calibration_of(&cal, k)?, opts).map(|c| (k, c)))
        .collect::<Result<_, _>>()?;
    out.files
        .push(("results/capacity.csv".into(), capacity_csv(&cal, &caps)));
    let runs = load_runs(&dir, &plan, &s, &cal, progress, &mut out.inputs)?;
    if runs.is_empty() {
        // run.sh between its calibration and evaluation steps: the rates are all it needs.
        return Ok(out);
    }
    let cap_of = |k: SchedulerKind| caps.iter().find(|c| c.0 == k).map_or(f64::NAN, |c| c.1);
    let (csv_rows, worst) = error_rows(&runs, &s, cap_of);
    out.files.push((
        "results/errors.csv".into(),
        md::csv(
            &[
                "scheduler",
                "load_pct",
                "rate_qps",
                "model",
                "stat",
                "measured_ms",
                "isolated_ms",
                "flat_out_ms",
                "load_aware_ms",
            ],
            &csv_rows,
        ),
    ));
    for k in SCHEDULERS {
        out.files
            .push((format!("results/p99-{k}.svg").into(), figure(&runs, k, &s)?));
    }
    out.files.push((
        "RESULTS.md".into(),
        results_md(&runs, &s, &caps, &cal, &worst),
    ));
    out.claims.push(Claim {
        text: format!(
            "load-aware p50 and p99 within 10% of measured at every load up to 85% of simulated capacity (worst {:.1}%)",
            worst.load_aware * 100.0
        ),
        holds: worst.load_aware <= 0.10,
    });
    out.claims.push(Claim {
        text: "the load-aware model is closer than both isolated and flat-out profiles".into(),
        holds: worst.load_aware < worst.isolated && worst.load_aware < worst.flat_out,
    });
    Ok(out)
}

/// Worst relative error (|p50| and |p99|) over the runs at or below 85% of capacity.
struct Worst {
    isolated: f64,
    flat_out: f64,
    load_aware: f64,
}

fn error_rows(
    runs: &[Run],
    s: &Scenario,
    cap: impl Fn(SchedulerKind) -> f64,
) -> (Vec<Vec<String>>, Worst) {
    let mut rows = Vec::new();
    let mut w = Worst {
        isolated: 0.0,
        flat_out: 0.0,
        load_aware: 0.0,
    };
    for r in runs {
        let rate = cap(r.scheduler) * r.load_pct as f64 / 100.0;
        for (m, model) in s.models.iter().enumerate() {
            let Some(meas) = pcts(&r.cmp.measured, m) else {
                continue;
            };
            let pred: Vec<[f64; 3]> = r
                .cmp
                .predictions
                .iter()
                .map(|p| pcts(&p.report, m).unwrap_or([f64::NAN; 3]))
                .collect();
            for (k, stat) in ["p50", "p95", "p99"].iter().enumerate() {
                let mut row = vec![
                    r.scheduler.as_str().to_string(),
                    r.load_pct.to_string(),
                    format!("{rate:.1}"),
                    model.name.to_string(),
                    stat.to_string(),
                    format!("{:.3}", meas[k]),
                ];
                row.extend(pred.iter().map(|p| format!("{:.3}", p[k])));
                rows.push(row);
                if k != 1 && r.load_pct <= 85 && pred.len() == 3 {
                    let e = |i: usize| compare::rel_err(pred[i][k], meas[k]).abs();
                    w.isolated = w.isolated.max(e(0));
                    w.flat_out = w.flat_out.max(e(1));
                    w.load_aware = w.load_aware.max(e(2));
                }
            }
        }
    }
    (rows, w)
}

fn figure(runs: &[Run], k: SchedulerKind, s: &Scenario) -> Result<String, Error> {
    let mut series = Vec::new();
    for (m, model) in s.models.iter().enumerate() {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.scheduler == k).collect();
        let pt = |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<(f64, f64)> {
            mine.iter()
                .filter_map(|r| f(r).map(|y| (r.load_pct as f64, y)))
                .collect()
        };
        series.push(Series {
            label: format!("{} measured", model.name),
            points: pt(&|r| pcts(&r.cmp.measured, m).map(|v| v[2])),
        });
        for (i, name) in ["isolated", "flat-out", "load-aware"].iter().enumerate() {
            series.push(Series {
                label: format!("{} {name}", model.name),
                points: pt(&|r| {
                    r.cmp
                        .predictions
                        .get(i)
                        .and_then(|p| pcts(&p.report, m))
                        .map(|v| v[2])
                }),
            });
        }
    }
    line_chart(&Chart {
        title: &format!("p99 latency under {k}: measured on the H200 vs predicted"),
        x_label: "offered load, % of simulated capacity (load-aware model)",
        y_label: "p99 latency, ms",
        series: &series,
        hline: None,
        log_y: false,
        y_max: None,
    })
}

fn calibration_md(caps: &[(SchedulerKind, f64)], cal: &[Calibration]) -> String {
    let mut o = String::from(
        "\n## Calibration: the server's own cost per query, and the capacity it gives\n\n\
         Measured on the calibration runs only (`raw/calib.*`), never on the evaluation runs. \
         Round trip: a query sent to an idle worker, answer read − request written − the worker's \
         service time (median). Busy gap: a query queued in a busy worker's pipe, its answer's \
         read − the previous answer's read − its service time (median). ELSA queues in the \
         worker's pipe, so the simulator adds the busy gap to every service time and the rest \
         of the round trip to every latency; FIFS sends a query only after the instance's \
         answer is read, so every query costs its instance the whole round trip. Service-time \
         spread: per slice, p99 / p50 of each query's service time over the median of its \
         (instance, batch); the simulator draws every service time around its median with that \
         p99 (its jitter), since co-located slices vary from query to query far more than the \
         profiles measured alone (p99 / p50 of the H200 profiles' isolated rows: median 1.02, 1.05 at the 90th percentile).\n\n",
    );
    let mut rows = Vec::new();
    for (k, c) in caps {
        let Some(x) = cal.iter().find(|x| x.scheduler == *k) else {
            continue;
        };
        let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        rows.push(vec![
            k.to_string(),
            format!("{}", x.recs_label()),
            us(x.meta.overhead.round_trip_us_p50),
            us(x.meta.overhead.busy_gap_us_p50),
            format!(
                "{:.0} / {:.0}",
                x.cost.occupancy_ms * 1e3,
                x.cost.latency_ms * 1e3
            ),
            x.spread
                .iter()
                .map(|((m, p, _), r)| format!("{m} {p} {r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{c:.0}"),
            LOADS_PCT
                .iter()
                .map(|l| format!("{:.0}", c * *l as f64 / 100.0))
                .collect::<Vec<_>>()
                .join(" / "),
        ]);
    }
    o += &md::table(
        &[
            "scheduler",
            "calibration run",
            "round trip p50, µs",
            "busy gap p50, µs",
            "added to service / latency, µs",
            "service p99 / p50",
            "simulated capacity, q/s",
            "30 / 60 / 85% rates, q/s",
        ],
        &rows,
    );
    o
}

impl Calibration {
    fn recs_label(&self) -> String {
        format!(
            "{} ({} q, {:.0} s)",
            self.meta.arrivals, self.meta.overhead.at_arrival, self.meta.wall_s
        )
    }
}

/// The opening of RESULTS.md before INTRO.md (the hand-written setup and method): its title
/// and the line saying that RESULTS.md is generated.
const RESULTS_TITLE: &str = "# sim-to-real: the simulator measured against a real server\n\n\
    *Written by `migopt reproduce papers/sim-to-real` from the committed raw runs; do not edit by hand.*\n\n";

fn results_md(
    runs: &[Run],
    s: &Scenario,
    caps: &[(SchedulerKind, f64)],
    cal: &[Calibration],
    w: &Worst,
) -> String {
    let mut o = String::from(RESULTS_TITLE);
    o += include_str!("../sim-to-real/INTRO.md");
    o += &calibration_md(caps, cal);
    o += &format!(
        "\n## Worst relative error of p50 and p99, every run (loads up to 85% of capacity)\n\n| profiles | worst error |\n|---|---:|\n| isolated | {:.1}% |\n| flat-out | {:.1}% |\n| load-aware | {:.1}% |\n",
        w.isolated * 100.0,
        w.flat_out * 100.0,
        w.load_aware * 100.0
    );
    o += "\n## Every run: measured p50 / p99 (ms) and the error of each prediction\n\n";
    let mut rows = Vec::new();
    for r in runs {
        let cap = caps
            .iter()
            .find(|c| c.0 == r.scheduler)
            .map_or(f64::NAN, |c| c.1);
        for (m, model) in s.models.iter().enumerate() {
            let Some(meas) = pcts(&r.cmp.measured, m) else {
                continue;
            };
            let mut row = vec![
                r.scheduler.to_string(),
                format!("{}%", r.load_pct),
                format!("{:.0}", cap * r.load_pct as f64 / 100.0),
                model.name.to_string(),
                format!("{:.2} / {:.2}", meas[0], meas[2]),
            ];
            for p in &r.cmp.predictions {
                let v = pcts(&p.report, m).unwrap_or([f64::NAN; 3]);
                row.push(format!(
                    "{:+.1}% / {:+.1}%",
                    100.0 * compare::rel_err(v[0], meas[0]),
                    100.0 * compare::rel_err(v[2], meas[2])
                ));
            }
            rows.push(row);
        }
    }
    o += &md::table(
        &[
            "scheduler",
            "load",
            "q/s",
            "model",
            "measured p50 / p99",
            "isolated",
            "flat-out",
            "load-aware",
        ],
        &rows,
    );
    o += "\n## Front end\n\n| run | queries | dispatch lag p50 / p99 / max, µs | round trip p50, µs | busy gap p50, µs |\n|---|---:|---|---:|---:|\n";
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    for r in runs {
        o += &format!(
            "| {} {}% | {} | {:.1} / {:.1} / {:.0} | {} | {} |\n",
            r.scheduler,
            r.load_pct,
            r.cmp.measured.queries_per_replication,
            r.meta.overhead.lag_us_p50,
            r.meta.overhead.lag_us_p99,
            r.meta.overhead.lag_us_max,
            us(r.meta.overhead.round_trip_us_p50),
            us(r.meta.overhead.busy_gap_us_p50),
        );
    }
    o += "\nFigures: [ELSA](results/p99-elsa.svg), [FIFS](results/p99-fifs.svg). Per-point numbers: [results/errors.csv](results/errors.csv). Capacity and rates: [results/capacity.csv](results/capacity.csv).\n";
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzipped_run_and_its_sidecar_are_recorded_as_inputs() {
        let csv = study_dir().join("raw").join("calib.elsa.csv.gz");
        let mut inputs = Inputs::default();
        let served = read_served(&csv, &mut inputs).unwrap();
        assert!(!served.recs.is_empty());
        assert!(inputs.contains(&csv), "the gzipped records are an input");
        assert!(inputs.contains(&csv.with_file_name("calib.elsa.csv.json")));
    }
}
