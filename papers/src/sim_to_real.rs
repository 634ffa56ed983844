//! `papers/sim-to-real`: the simulator measured against a real server.
//!
//! One H200 (not in MIG mode) cut by the planner into 3g.71gb + 2g.35gb + 1g.18gb + 1g.18gb
//! (emulated with MPS), serving ResNet-50 and BERT-base through `migopt serve` under ELSA and
//! FIFS at six loads. The raw per-query records (`raw/*.csv.gz`, with their sidecars) were
//! measured once on the GPU (`run.sh`); this module re-simulates every recorded trace three
//! ways (isolated profiles, profiles with every neighbour flat out, and the load-aware
//! interference model) and writes RESULTS.md, `results/errors.csv` and the figures. No GPU
//! is needed to regenerate them.

use crate::md;
use crate::plot::{line_chart, Chart, Series};
use crate::{Claim, Options, Output, Progress};
use migopt_models::report::SimReport;
use migopt_models::{Error, Plan, Scenario};
use migopt_server::compare::{self, Comparison};
use migopt_server::records::{self, RunMeta};
use migopt_sim::{Arrivals, CapacityTarget, SchedulerKind, ServingMode, SimConfig};
use std::path::{Path, PathBuf};

/// The study folder in the repository.
pub fn study_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sim-to-real")
}

/// The gzipped per-query file, decompressed (with the system's `gzip`).
fn gunzip(path: &Path) -> Result<String, Error> {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| Error::io(path, e))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{}: gzip -dc failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| Error::Invalid(format!("{}: not text", path.display())))
}

/// One measured run and its predictions.
struct Run {
    rate: f64,
    scheduler: SchedulerKind,
    meta: RunMeta,
    cmp: Comparison,
}

fn load_runs(
    dir: &Path,
    plan: &Plan,
    s: &Scenario,
    progress: Progress<'_>,
) -> Result<Vec<Run>, Error> {
    let raw = dir.join("raw");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&raw)
        .map_err(|e| Error::io(&raw, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("rate") && n.ends_with(".csv.gz")
        })
        .collect();
    files.sort();
    let mut runs = Vec::new();
    for (k, f) in files.iter().enumerate() {
        progress(k as u64, files.len() as u64);
        let text = gunzip(f)?;
        let recs = records::parse_csv(&text, f)?;
        let side = raw.join(
            f.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .trim_end_matches(".gz")
                .to_string()
                + ".json",
        );
        let mtext = std::fs::read_to_string(&side).map_err(|e| Error::io(&side, e))?;
        let meta: RunMeta = serde_json::from_str(&mtext)
            .map_err(|e| Error::Invalid(format!("{}: {e}", side.display())))?;
        let scheduler: SchedulerKind = meta.scheduler.parse()?;
        let rate: f64 = meta
            .arrivals
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_start_matches("rate")
            .parse()
            .map_err(|_| {
                Error::Invalid(format!("{}: arrivals `{}`", side.display(), meta.arrivals))
            })?;
        let ovh = compare::server_overhead_ms(&meta);
        let cmp = compare::compare(plan, s, scheduler, &recs, meta.warmup_fraction, ovh)?;
        runs.push(Run {
            rate,
            scheduler,
            meta,
            cmp,
        });
    }
    runs.sort_by(|a, b| {
        a.scheduler
            .as_str()
            .cmp(b.scheduler.as_str())
            .then(a.rate.total_cmp(&b.rate))
    });
    Ok(runs)
}

/// Simulated capacity (p99 within the SLA) of the plan under the load-aware model.
fn capacity(plan: &Plan, s: &Scenario, k: SchedulerKind, opts: &Options) -> Result<f64, Error> {
    let mut cfg = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 500.0,
    });
    cfg.scheduler = k;
    cfg.mode = Some(ServingMode::QueryBatches);
    cfg.queries = Some(if opts.quick { 10_000 } else { 60_000 });
    cfg.replications = if opts.quick { 2 } else { 5 };
    cfg.seed = opts.seed;
    cfg.threads = opts.threads;
    Ok(migopt_sim::capacity(plan, s, &cfg, CapacityTarget::P99)?
        .capacity_qps
        .mean)
}

fn pcts(r: &SimReport, m: usize) -> Option<[f64; 3]> {
    r.models[m]
        .latency_ms
        .as_ref()
        .map(|l| [l.p50.mean, l.p95.mean, l.p99.mean])
}

/// Runs the study on the committed raw data.
pub fn run(opts: &Options, progress: Progress<'_>) -> Result<Output, Error> {
    let dir = study_dir();
    let scen_path = dir.join("scenario.toml");
    let s = Scenario::load(&scen_path)?;
    let ptext = std::fs::read_to_string(dir.join("plan.json"))
        .map_err(|e| Error::io(dir.join("plan.json"), e))?;
    let plan: Plan =
        serde_json::from_str(&ptext).map_err(|e| Error::Invalid(format!("plan.json: {e}")))?;
    let runs = load_runs(&dir, &plan, &s, progress)?;
    if runs.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no raw runs",
            dir.join("raw").display()
        )));
    }
    let caps: Vec<(SchedulerKind, f64)> = [SchedulerKind::Elsa, SchedulerKind::Fifs]
        .into_iter()
        .map(|k| capacity(&plan, &s, k, opts).map(|c| (k, c)))
        .collect::<Result<_, _>>()?;
    let cap_of = |k: SchedulerKind| caps.iter().find(|c| c.0 == k).map_or(f64::NAN, |c| c.1);
    let mut out = Output::default();
    let (csv_rows, worst) = error_rows(&runs, &s, cap_of);
    out.files.push((
        "results/errors.csv".into(),
        md::csv(
            &[
                "scheduler",
                "rate_qps",
                "load_pct",
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
    for k in [SchedulerKind::Elsa, SchedulerKind::Fifs] {
        out.files.push((
            format!("results/p99-{k}.svg").into(),
            figure(&runs, k, &s, cap_of(k))?,
        ));
    }
    out.files
        .push(("RESULTS.md".into(), results_md(&runs, &s, &caps, &worst)));
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
        let load = r.rate / cap(r.scheduler);
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
                    format!("{:.0}", r.rate),
                    format!("{:.1}", load * 100.0),
                    model.name.to_string(),
                    stat.to_string(),
                    format!("{:.3}", meas[k]),
                ];
                row.extend(pred.iter().map(|p| format!("{:.3}", p[k])));
                rows.push(row);
                if k != 1 && load <= 0.85 + 1e-9 && pred.len() == 3 {
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

fn figure(runs: &[Run], k: SchedulerKind, s: &Scenario, cap: f64) -> Result<String, Error> {
    let mut series = Vec::new();
    for (m, model) in s.models.iter().enumerate() {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.scheduler == k).collect();
        let pt = |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<(f64, f64)> {
            mine.iter()
                .filter_map(|r| f(r).map(|y| (100.0 * r.rate / cap, y)))
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
        x_label: "offered load, % of simulated capacity (load-aware)",
        y_label: "p99 latency, ms",
        series: &series,
        hline: None,
        log_y: false,
        y_max: None,
    })
}

fn results_md(runs: &[Run], s: &Scenario, caps: &[(SchedulerKind, f64)], w: &Worst) -> String {
    let mut o = String::from(include_str!("../sim-to-real/INTRO.md"));
    o += "\n## Simulated capacity (load-aware model, p99 within SLA)\n\n";
    for (k, c) in caps {
        o += &format!("- {k}: {c:.0} queries/s\n");
    }
    o += &format!(
        "\n## Worst relative error of p50 and p99, runs up to 85% of capacity\n\n| profiles | worst error |\n|---|---:|\n| isolated | {:.1}% |\n| flat-out | {:.1}% |\n| load-aware | {:.1}% |\n",
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
                format!("{:.0}", r.rate),
                format!("{:.0}%", 100.0 * r.rate / cap),
                model.name.to_string(),
                format!("{:.2} / {:.2}", meas[0], meas[2]),
            ];
            for p in &r.cmp.predictions {
                let v = pcts(&p.report, m).unwrap_or([f64::NAN; 3]);
                row.push(format!(
                    "{:+.0}% / {:+.0}%",
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
            "q/s",
            "load",
            "model",
            "measured p50 / p99",
            "isolated",
            "flat-out",
            "load-aware",
        ],
        &rows,
    );
    o += "\n## Front end\n\n| run | dispatch lag p50 / p99 / max, µs |\n|---|---|\n";
    for r in runs {
        o += &format!(
            "| {} {} q/s | {:.1} / {:.1} / {:.0} |\n",
            r.scheduler,
            r.rate,
            r.meta.overhead.lag_us_p50,
            r.meta.overhead.lag_us_p99,
            r.meta.overhead.lag_us_max
        );
    }
    o += "\nFigures: [ELSA](results/p99-elsa.svg), [FIFS](results/p99-fifs.svg). Per-point numbers: [results/errors.csv](results/errors.csv).\n";
    o
}
