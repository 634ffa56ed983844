//! `migopt serve`: run a plan for real, one worker process per instance, and record every
//! query; `migopt compare`: put a recorded run beside the simulator's prediction of it.

use super::common::{load_plan, path_from, resolve_recorded};
use super::simulate::render_sim;
use super::CliError;
use migopt_models::input::Inputs;
use migopt_models::{Plan, Scenario};
use migopt_server::compare::ServerCost;
use migopt_server::records::{self, QueryRecord, RunMeta};
use migopt_server::{Placement, ServeConfig, ServeError, Session, Timing, WorkerCommand};
use migopt_sim::{SchedulerKind, TraceRecord};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where workers run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementArg {
    /// No GPU: each query sleeps for its profiled median (tests, overhead).
    Fake,
    /// Emulated slices: MPS clients limited to each slice's SMs (GPU not in MIG mode).
    Mps,
    /// Real MIG devices (`--mig-devices`, one UUID per instance). Untested on hardware.
    Mig,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The plan (.json, from `migopt plan --out`).
    plan: PathBuf,
    /// The scenario the plan serves, if the plan does not record it.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Replay these traces (`arrival_ms,model,batch`); repeat for several runs on the same workers.
    #[arg(long, conflicts_with = "rate")]
    trace: Vec<PathBuf>,
    /// Poisson arrivals at this total rate, queries/s (with --duration).
    #[arg(long, requires = "duration")]
    rate: Option<f64>,
    /// Seconds of Poisson arrivals.
    #[arg(long)]
    duration: Option<f64>,
    /// Seed of the Poisson arrivals (and of `random`'s choices).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scheduler; repeat for several runs (each trace under each scheduler).
    #[arg(long, default_value = "elsa")]
    scheduler: Vec<String>,
    /// Run the k-th --trace under the k-th --scheduler only (as many of each), instead of
    /// every trace under every scheduler.
    #[arg(long)]
    paired: bool,
    /// Per-query CSV of a single run (a JSON sidecar is written beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder for several runs: <trace>.<scheduler>.csv each.
    #[arg(long, conflicts_with = "out")]
    out_dir: Option<PathBuf>,
    /// Where workers run.
    #[arg(long, value_enum, default_value = "mps")]
    placement: PlacementArg,
    /// mps: start a private MPS daemon (and stop it at the end) instead of using the one
    /// CUDA_MPS_PIPE_DIRECTORY names.
    #[arg(long)]
    start_mps: bool,
    /// mig: the MIG device UUIDs, one per instance in plan order (comma-separated).
    #[arg(long, value_delimiter = ',')]
    mig_devices: Vec<String>,
    /// Python interpreter for the workers.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// The worker script (default: the copy of profiles/worker.py built into migopt).
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Worker precision.
    #[arg(long, default_value = "fp16", value_parser = ["fp16", "bf16", "fp32"])]
    dtype: String,
    /// Folder for one stderr log per worker.
    #[arg(long)]
    worker_logs: Option<PathBuf>,
    /// Fraction of each run's queries left out of the summary as warm-up.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    /// Longest wait for the workers to be ready, s.
    #[arg(long, default_value_t = 600.0)]
    ready_timeout: f64,
    /// A query running longer than max(this, 50 x its profiled median) means a hung worker, ms.
    #[arg(long, default_value_t = 10_000.0)]
    hang_timeout_ms: f64,
    /// Spin this long before each arrival instead of sleeping, µs.
    #[arg(long, default_value_t = 300)]
    spin_us: u64,
    /// Pause between runs, ms.
    #[arg(long, default_value_t = 500)]
    pause_ms: u64,
    /// Tests: extra worker arguments for one instance, `K:ARGS` (fault injection).
    #[arg(long, hide = true)]
    worker_fault: Option<String>,
}

/// A number as a user would write it: `5000`, `1e300`.
fn short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn bad(m: String) -> CliError {
    CliError::Input(migopt_models::Error::Invalid(m))
}

fn serve_err(e: ServeError) -> CliError {
    match e {
        ServeError::Input(e) => CliError::Input(e),
        other => CliError::Internal(other.to_string()),
    }
}

/// One run: a trace under a scheduler, and where its records go.
struct RunSpec {
    name: String,
    trace: Vec<TraceRecord>,
    scheduler: SchedulerKind,
    out: PathBuf,
}

/// Every `--trace`, read (and recorded in `inputs`) and checked against the scenario and
/// the plan, then the Poisson arrivals of `--rate`, each with the name its runs take.
fn traces(
    a: &ServeArgs,
    plan: &Plan,
    s: &Scenario,
    inputs: &mut Inputs,
) -> Result<Vec<(String, Vec<TraceRecord>)>, CliError> {
    let mut traces: Vec<(String, Vec<TraceRecord>)> = Vec::new();
    for t in &a.trace {
        let stem = t
            .file_stem()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = stem.trim_end_matches(".csv").to_string();
        // Each record checked against the plan, at its line, as `simulate --trace` checks it.
        let mode = Some(migopt_sim::ServingMode::QueryBatches);
        let recs = migopt_sim::read_trace_for_plan(t, plan, s, mode, inputs)?;
        // The server's own rules (one worker per instance), before any worker starts.
        migopt_server::setup::instances(plan, s, &migopt_server::wanted(&recs))
            .map_err(|e| migopt_models::Error::Invalid(format!("{}: {e}", t.display())))?;
        traces.push((stem, recs));
    }
    if let Some(r) = a.rate {
        traces.push(poisson_run(a, plan, s, r)?);
    }
    Ok(traces)
}

/// The Poisson arrivals of `--rate r` for `--duration`, within the limits of a served run.
fn poisson_run(
    a: &ServeArgs,
    plan: &Plan,
    s: &Scenario,
    r: f64,
) -> Result<(String, Vec<TraceRecord>), CliError> {
    let d = a.duration.unwrap_or(0.0);
    if !(r > 0.0 && r.is_finite() && d > 0.0 && d.is_finite()) {
        return Err(bad(format!(
            "--rate {r} and --duration {d} must be positive"
        )));
    }
    let n = r * d;
    if n > migopt_models::limits::MAX_SERVED_QUERIES as f64 {
        return Err(bad(format!(
            "--rate {} for --duration {} s is {n:.3e} queries, above the limit of {} per served run",
            short(r),
            short(d),
            migopt_models::limits::MAX_SERVED_QUERIES
        )));
    }
    migopt_models::limits::check_run(r, None, Some(d), 0).map_err(bad)?;
    let t = migopt_sim::poisson_trace(plan, s, r, d, a.seed)?;
    if t.is_empty() {
        return Err(bad(format!(
            "--rate {} for --duration {} s draws no query (seed {}): raise the rate or the duration",
            migopt_models::limits::num(r),
            short(d),
            a.seed
        )));
    }
    Ok((format!("poisson-{}", migopt_models::limits::num(r)), t))
}

fn runs(
    a: &ServeArgs,
    plan: &Plan,
    s: &Scenario,
    inputs: &mut Inputs,
) -> Result<Vec<RunSpec>, CliError> {
    let scheds: Vec<SchedulerKind> = a
        .scheduler
        .iter()
        .map(|x| x.parse::<SchedulerKind>())
        .collect::<Result<_, _>>()?;
    let traces = traces(a, plan, s, inputs)?;
    if traces.is_empty() {
        return Err(bad("give --trace FILE or --rate R --duration S".into()));
    }
    let pairs: Vec<(usize, SchedulerKind)> = if a.paired {
        if traces.len() != scheds.len() {
            return Err(bad(format!(
                "--paired needs as many --scheduler as traces ({} and {})",
                scheds.len(),
                traces.len()
            )));
        }
        scheds.iter().copied().enumerate().collect()
    } else {
        (0..traces.len())
            .flat_map(|t| scheds.iter().map(move |&k| (t, k)))
            .collect()
    };
    let many = pairs.len() > 1;
    let mut out = Vec::new();
    for (ti, k) in pairs {
        let (name, t) = &traces[ti];
        {
            let path = match (&a.out, &a.out_dir, many) {
                (Some(p), _, false) => p.clone(),
                (_, Some(d), _) => d.join(format!("{name}.{k}.csv")),
                (Some(_), _, true) => {
                    return Err(bad(
                        "several runs (traces x schedulers) need --out-dir".into()
                    ))
                }
                (None, None, _) => return Err(bad("give --out FILE or --out-dir DIR".into())),
            };
            out.push(RunSpec {
                name: format!("{name} under {k}"),
                trace: t.clone(),
                scheduler: k,
                out: path,
            });
        }
    }
    Ok(out)
}

/// A timeout flag's `value` in `unit`s (`per_second` of them in a second): positive, and at
/// most [`migopt_models::limits::MAX_SIM_SECONDS`] so that a deadline stays a time.
fn timeout(flag: &str, value: f64, unit: &str, per_second: f64) -> Result<Duration, CliError> {
    let max = migopt_models::limits::MAX_SIM_SECONDS;
    let secs = value / per_second;
    if !(secs > 0.0 && secs <= max) {
        return Err(bad(format!(
            "{flag} {} must be a positive number of {unit}, at most {}",
            short(value),
            short(max * per_second)
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The worker's interpreter (when given as a path), script and log folder exist as what
/// they must be: a mistake there is the user's, found before any worker starts.
fn check_worker_paths(a: &ServeArgs) -> Result<(), CliError> {
    let python_is_path = a.python.components().count() > 1;
    if python_is_path && !a.python.is_file() {
        return Err(bad(format!(
            "--python {}: no such file",
            a.python.display()
        )));
    }
    if let Some(w) = a.worker.as_ref().filter(|w| !w.is_file()) {
        return Err(bad(format!("--worker {}: no such file", w.display())));
    }
    if let Some(d) = &a.worker_logs {
        // The folder, or the nearest folder above it that exists (a missing one is made).
        if let Some(f) = crate::out::nearest_existing(d).filter(|f| !f.is_dir()) {
            let what = match f == d.as_path() {
                true => String::new(),
                false => format!(" {} is", f.display()),
            };
            return Err(bad(format!(
                "--worker-logs {}:{what} not a folder",
                d.display()
            )));
        }
    }
    Ok(())
}

/// Makes the `--worker-logs` folder when it is missing, once nothing is left to check.
fn make_log_folder(a: &ServeArgs) -> Result<(), CliError> {
    match &a.worker_logs {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| CliError::Input(migopt_models::Error::io(d, e)))
        }
        None => Ok(()),
    }
}

/// Most spinning before an arrival, µs: the front end busy-waits this long, so more than a
/// second is a mistake (and an absurd value would spin a core for ever).
const MAX_SPIN_US: u64 = 1_000_000;
/// Longest pause between runs, ms (an hour).
const MAX_PAUSE_MS: u64 = 3_600_000;

fn config(a: &ServeArgs) -> Result<ServeConfig, CliError> {
    if !(0.0..1.0).contains(&a.warmup) {
        return Err(bad(format!(
            "--warmup {} must be in [0, 1)",
            migopt_models::limits::num(a.warmup)
        )));
    }
    if a.spin_us > MAX_SPIN_US {
        return Err(bad(format!(
            "--spin-us {} is above {MAX_SPIN_US} (1 s of spinning before each arrival)",
            a.spin_us
        )));
    }
    if a.pause_ms > MAX_PAUSE_MS {
        return Err(bad(format!(
            "--pause-ms {} is above {MAX_PAUSE_MS} (an hour between runs)",
            a.pause_ms
        )));
    }
    let ready_timeout = timeout("--ready-timeout", a.ready_timeout, "seconds", 1.0)?;
    let hang_min = timeout("--hang-timeout-ms", a.hang_timeout_ms, "milliseconds", 1e3)?;
    check_worker_paths(a)?;
    let placement = match a.placement {
        PlacementArg::Fake => Placement::Fake,
        PlacementArg::Mps => Placement::Mps {
            start_daemon: a.start_mps,
        },
        PlacementArg::Mig => Placement::Mig {
            devices: a.mig_devices.clone(),
        },
    };
    let extra = match &a.worker_fault {
        Some(f) => {
            let (k, args) = f
                .split_once(':')
                .ok_or_else(|| bad("--worker-fault K:ARGS".into()))?;
            let k: usize = k.parse().map_err(|_| bad("--worker-fault K:ARGS".into()))?;
            Some((k, args.split_whitespace().map(String::from).collect()))
        }
        None => None,
    };
    Ok(ServeConfig {
        placement,
        worker: WorkerCommand {
            python: a.python.clone(),
            script: a.worker.clone().unwrap_or_default(),
            dtype: a.dtype.clone(),
            logs: a.worker_logs.clone(),
            extra,
        },
        ready_timeout,
        timing: Timing {
            spin: Duration::from_micros(a.spin_us),
            hang_min,
            hang_factor: 50.0,
            seed: a.seed,
        },
    })
}

pub fn run_serve(a: ServeArgs) -> Result<(), CliError> {
    let mut inputs = Inputs::default();
    let (plan, s) = load_plan(&a.plan, a.scenario.as_deref(), &mut inputs)?;
    let cfg = config(&a)?;
    let runs = runs(&a, &plan, &s, &mut inputs)?;
    // Outputs that cannot be written are refused before any GPU time is spent.
    let outs: Vec<PathBuf> = runs
        .iter()
        .flat_map(|r| [r.out.clone(), records::sidecar_path(&r.out)])
        .collect();
    crate::out::check_targets(outs.iter().map(PathBuf::as_path), &inputs)?;
    let mut wanted = std::collections::BTreeSet::new();
    for r in &runs {
        wanted.extend(migopt_server::wanted(&r.trace));
    }
    make_log_folder(&a)?;
    eprintln!(
        "migopt serve: starting {} workers ({})",
        plan.instances().count(),
        cfg.placement.as_str()
    );
    let mut session = Session::start(&plan, &s, &wanted, &cfg).map_err(serve_err)?;
    // Every run's files are written together at the end: a failed run leaves nothing.
    let mut files = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        if k > 0 {
            std::thread::sleep(Duration::from_millis(a.pause_ms));
        }
        eprintln!("migopt serve: {} ({} queries)", r.name, r.trace.len());
        let o = session.run(&r.trace, r.scheduler).map_err(serve_err)?;
        let meta = RunMeta {
            schema: "migopt-serve-run/1".into(),
            plan: path_from(&a.plan, &r.out),
            scenario: a.scenario.as_ref().map(|p| path_from(p, &r.out)),
            scheduler: r.scheduler.as_str().into(),
            scheduler_rule: Some(
                match r.scheduler {
                    SchedulerKind::Elsa => SchedulerKind::elsa_rule(),
                    k => k,
                }
                .as_str()
                .into(),
            ),
            arrivals: r.name.clone(),
            warmup_fraction: a.warmup,
            placement: cfg.placement.as_str().into(),
            workers: session.workers().to_vec(),
            overhead: records::overhead(&o.records, &o.at_arrival, &o.sent_idle),
            wall_s: o.wall_s,
        };
        let report =
            migopt_server::compare::measured(&plan, &s, r.scheduler, &o.records, a.warmup)?;
        files.push((r.out.clone(), records::to_csv(&o.records)));
        files.push((records::sidecar_path(&r.out), super::to_json(&meta)?));
        crate::say!("{}", render_sim(&report).replacen("simulated", "served", 1));
        crate::sayln!(
            "front end: dispatch lag p50 {:.1} µs, p99 {:.1} µs, max {:.0} µs over {} queries sent at arrival; will write {}\n",
            meta.overhead.lag_us_p50,
            meta.overhead.lag_us_p99,
            meta.overhead.lag_us_max,
            meta.overhead.at_arrival,
            r.out.display()
        );
    }
    let ends = session.finish();
    if let Some(bad) = ends.iter().find(|e| *e != "exit status 0") {
        eprintln!("migopt serve: a worker ended with {bad}");
    }
    crate::out::write_all(&files, &inputs)?;
    for (p, _) in &files {
        crate::sayln!("wrote {}", p.display());
    }
    Ok(())
}

/// Reads a record file's sidecar.
fn load_meta(path: &Path) -> Result<RunMeta, CliError> {
    read_sidecar(&records::sidecar_path(path))
}

/// Reads and checks a sidecar.
fn read_sidecar(side: &Path) -> Result<RunMeta, CliError> {
    let text = migopt_models::input::read_text(side, migopt_models::limits::SIDECAR_FILE)?;
    Ok(records::parse_sidecar(&text, side)?)
}

/// Reads a record file served on `plan`, every record checked against it.
fn load_records(path: &Path, plan: &Plan) -> Result<Vec<QueryRecord>, CliError> {
    let text = migopt_models::input::read_text(path, migopt_models::limits::RECORDS_FILE)?;
    Ok(records::parse_csv_for(&text, path, plan)?)
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// A per-query file written by `migopt serve` (its `.json` sidecar beside it).
    measured: PathBuf,
    /// The plan (default: the one the sidecar names, relative to the record file).
    #[arg(long)]
    plan: Option<PathBuf>,
    /// The scenario (default: the one the sidecar names, relative to the record file, else
    /// the plan's).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Take the server's own cost per query (pipe round trip and busy gap) and the spread of
    /// its service times from this served run, for example a calibration run (default: the
    /// cost from the run being compared, service times at their medians). See
    /// `migopt_server::compare::ServerCost` and `service_spread`.
    #[arg(long, conflicts_with = "overhead_ms")]
    calibration: Option<PathBuf>,
    /// The server's own cost per query added to every simulated service time, ms, instead of
    /// a measured one.
    #[arg(long)]
    overhead_ms: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Where the server's own cost per query comes from.
#[derive(Debug, Clone, Copy)]
pub enum CostFrom<'a> {
    /// The run being compared.
    Run,
    /// Another served run (a calibration run), its record file or sidecar.
    Calibration(&'a Path),
    /// A fixed cost added to every service time, ms.
    Fixed(f64),
}

/// `--overhead-ms`: a cost per query from 0 to a latency's bound.
fn overhead_ms(ms: f64) -> Result<f64, CliError> {
    use migopt_models::limits::{num, MAX_LATENCY_MS};
    if !(0.0..=MAX_LATENCY_MS).contains(&ms) {
        return Err(bad(format!(
            "--overhead-ms {} must be a number of milliseconds from 0 to {MAX_LATENCY_MS:e}",
            num(ms)
        )));
    }
    Ok(ms)
}

fn server_cost(
    from: CostFrom<'_>,
    meta: &RunMeta,
    sched: SchedulerKind,
) -> Result<ServerCost, CliError> {
    use migopt_server::compare::ServerCost as C;
    Ok(match from {
        CostFrom::Run => C::from_overhead(&meta.overhead, sched),
        CostFrom::Calibration(p) => {
            let side = if p.extension().is_some_and(|e| e == "json") {
                p.to_path_buf()
            } else {
                records::sidecar_path(p)
            };
            C::from_overhead(&read_sidecar(&side)?.overhead, sched)
        }
        CostFrom::Fixed(ms) => C {
            occupancy_ms: overhead_ms(ms)?,
            latency_ms: 0.0,
        },
    })
}

/// Loads a served run and compares it with its predictions.
pub fn comparison(
    measured: &Path,
    plan: Option<&Path>,
    scenario: Option<&Path>,
    cost: CostFrom<'_>,
) -> Result<(migopt_server::compare::Comparison, RunMeta, ServerCost), CliError> {
    let meta = load_meta(measured)?;
    let plan_path = plan
        .map(Path::to_path_buf)
        .unwrap_or_else(|| resolve_recorded(measured, &meta.plan));
    let scen = scenario.map(Path::to_path_buf).or_else(|| {
        meta.scenario
            .as_deref()
            .map(|s| resolve_recorded(measured, s))
    });
    // `compare` writes no file: what it reads need not be kept.
    let (plan, s) = load_plan(&plan_path, scen.as_deref(), &mut Inputs::default())?;
    let recs = load_records(measured, &plan)?;
    let sched: SchedulerKind = meta.rule()?;
    let spread = match &cost {
        CostFrom::Calibration(p) => {
            let csv = if p.extension().is_some_and(|e| e == "json") {
                p.with_extension("")
            } else {
                p.to_path_buf()
            };
            let (r2, m2) = (load_records(&csv, &plan)?, load_meta(&csv)?);
            Some(migopt_server::compare::service_spread(
                &plan,
                &r2,
                m2.warmup_fraction,
            ))
        }
        _ => None,
    };
    let cost = server_cost(cost, &meta, sched)?;
    let c = migopt_server::compare::compare_spread(
        &plan,
        &s,
        sched,
        &recs,
        meta.warmup_fraction,
        cost,
        spread.as_ref(),
    )?;
    Ok((c, meta, cost))
}

pub fn run_compare(a: CompareArgs) -> Result<(), CliError> {
    let from = match (&a.calibration, a.overhead_ms) {
        (Some(p), _) => CostFrom::Calibration(p),
        (None, Some(ms)) => CostFrom::Fixed(overhead_ms(ms)?),
        (None, None) => CostFrom::Run,
    };
    let (c, meta, ovh) = comparison(&a.measured, a.plan.as_deref(), a.scenario.as_deref(), from)?;
    if a.json {
        #[derive(serde::Serialize)]
        struct J<'a> {
            measured: &'a migopt_models::SimReport,
            predictions: Vec<(&'a str, &'a migopt_models::SimReport)>,
        }
        let j = J {
            measured: &c.measured,
            predictions: c
                .predictions
                .iter()
                .map(|p| (p.name.as_str(), &p.report))
                .collect(),
        };
        crate::say!("{}", super::to_json(&j)?);
        return Ok(());
    }
    crate::say!("{}", render_compare(&c, &meta, ovh));
    Ok(())
}

fn lat(r: &migopt_models::SimReport, m: usize) -> Option<[f64; 3]> {
    r.models[m]
        .latency_ms
        .as_ref()
        .map(|l| [l.p50.mean, l.p95.mean, l.p99.mean])
}

/// The human report of a comparison.
pub fn render_compare(
    c: &migopt_server::compare::Comparison,
    meta: &RunMeta,
    ovh: ServerCost,
) -> String {
    let mut o = format!(
        "{} served under {} ({} placement, {} queries, warm-up {:.0}%): measured against the simulator on the same trace\n",
        meta.arrivals,
        meta.scheduler,
        meta.placement,
        c.measured.queries_per_replication,
        meta.warmup_fraction * 100.0
    );
    for p in &c.predictions {
        o += &format!("  {}: {}\n", p.name, p.about);
    }
    o += &format!(
        "  every prediction adds the server's own cost per query: {:.3} ms to each service time, {:.3} ms to each latency\n",
        ovh.occupancy_ms, ovh.latency_ms
    );
    o += "\nlatency, ms (relative error of the prediction)\n";
    o += &latency_table(c);
    o += "\nutilisation per instance, %\n";
    o += &utilisation_table(c);
    o
}

/// Measured p50/p95/p99 latency per model beside each prediction's, with its relative
/// error (models without latencies left out).
fn latency_table(c: &migopt_server::compare::Comparison) -> String {
    let mut head = vec!["model".to_string(), "measured p50/p95/p99".to_string()];
    for p in &c.predictions {
        head.push(format!("{} p50/p95/p99", p.name));
    }
    let mut rows = Vec::new();
    for (m, mr) in c.measured.models.iter().enumerate() {
        let Some(meas) = lat(&c.measured, m) else {
            continue;
        };
        let mut row = vec![
            mr.model.to_string(),
            format!("{:.2} / {:.2} / {:.2}", meas[0], meas[1], meas[2]),
        ];
        for p in &c.predictions {
            row.push(match lat(&p.report, m) {
                Some(v) => predicted_latencies(v, meas),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let h: Vec<&str> = head.iter().map(String::as_str).collect();
    crate::out::table(&h, &rows)
}

/// Predicted p50/p95/p99 `v`, each with its relative error against the measured `meas`.
fn predicted_latencies(v: [f64; 3], meas: [f64; 3]) -> String {
    (0..3)
        .map(|k| {
            format!(
                "{:.2} ({:+.0}%)",
                v[k],
                100.0 * migopt_server::compare::rel_err(v[k], meas[k])
            )
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Measured utilisation per instance beside each prediction's.
fn utilisation_table(c: &migopt_server::compare::Comparison) -> String {
    let mut head = vec!["instance".to_string(), "measured".to_string()];
    head.extend(c.predictions.iter().map(|p| p.name.clone()));
    let rows: Vec<Vec<String>> = c
        .measured
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let mut row = vec![
                format!(
                    "GPU {} {}@{} {}",
                    inst.gpu, inst.profile, inst.start, inst.model
                ),
                format!("{:.1}", inst.utilisation.mean * 100.0),
            ];
            row.extend(
                c.predictions
                    .iter()
                    .map(|p| format!("{:.1}", p.report.instances[i].utilisation.mean * 100.0)),
            );
            row
        })
        .collect();
    let h: Vec<&str> = head.iter().map(String::as_str).collect();
    crate::out::table(&h, &rows)
}
