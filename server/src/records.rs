//! What `migopt serve` writes: one CSV row per query, and a JSON sidecar describing the run
//! (plan, scenario, scheduler, placement, workers), which `migopt compare` reads back.

use migopt_models::limits::{num, MAX_BATCH, MAX_LATENCY_MS};
use migopt_models::{Error, Origin, Plan};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One served query. Times are milliseconds since the run's start on the front end's
/// monotonic clock; `start_ms` is `finish_ms - service_ms` (the worker measures its own
/// service time, so no clocks need to agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// Position in the trace.
    pub query: u64,
    /// When it was due (the trace's arrival).
    pub arrival_ms: f64,
    /// Model.
    pub model: String,
    /// Query batch size.
    pub batch: u32,
    /// Instance index in plan order.
    pub instance: u32,
    /// When the front end sent its request to the worker (stamped just before the write).
    pub dispatch_ms: f64,
    /// When the worker started it.
    pub start_ms: f64,
    /// When the front end read its answer.
    pub finish_ms: f64,
    /// The worker's service time.
    pub service_ms: f64,
    /// The batch size the worker ran (the next captured size up).
    pub ran_batch: u32,
}

/// CSV header of the per-query file.
pub const HEADER: &str =
    "query,arrival_ms,model,batch,instance,dispatch_ms,start_ms,finish_ms,service_ms,ran_batch";

/// The per-query CSV text.
pub fn to_csv(recs: &[QueryRecord]) -> String {
    let mut s = String::with_capacity(64 * (recs.len() + 1));
    s.push_str(HEADER);
    s.push('\n');
    for r in recs {
        use std::fmt::Write;
        let _ = writeln!(
            s,
            "{},{:.4},{},{},{},{:.4},{:.4},{:.4},{:.4},{}",
            r.query,
            r.arrival_ms,
            r.model,
            r.batch,
            r.instance,
            r.dispatch_ms,
            r.start_ms,
            r.finish_ms,
            r.service_ms,
            r.ran_batch
        );
    }
    s
}

/// Reads a per-query CSV, naming the file, line and field of any problem. Each record is
/// checked on its own: batch sizes within [`MAX_BATCH`], arrivals from 0 and in order (as
/// the front end writes them), no negative service time, no answer before its arrival.
pub fn parse_csv(text: &str, origin: &Path) -> Result<Vec<QueryRecord>, Error> {
    parse_checked(text, origin, |_| Ok(()))
}

/// [`parse_csv`] for a run served on `plan`: every record also names an instance of the
/// plan that serves its model.
pub fn parse_csv_for(text: &str, origin: &Path, plan: &Plan) -> Result<Vec<QueryRecord>, Error> {
    let models: Vec<&str> = plan.instances().map(|(_, a)| a.model.as_str()).collect();
    parse_checked(text, origin, |r| match models.get(r.instance as usize) {
        None => Err((
            "instance",
            format!(
                "{} is not an instance of the plan ({} instances)",
                r.instance,
                models.len()
            ),
        )),
        Some(&m) if m != r.model => Err((
            "model",
            format!("`{}`, but instance {} serves `{m}`", r.model, r.instance),
        )),
        Some(_) => Ok(()),
    })
}

/// A field's name and what is wrong with it.
type FieldProblem = (&'static str, String);

/// Parses every record, checking each ([`check_record`], then `check`).
fn parse_checked(
    text: &str,
    origin: &Path,
    check: impl Fn(&QueryRecord) -> Result<(), FieldProblem>,
) -> Result<Vec<QueryRecord>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let mut seen = std::collections::HashSet::new();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => {
            return Err(Error::Syntax {
                origin: Origin::at(origin, 1),
                message: format!("not a `migopt serve` record file (header must be {HEADER})"),
            })
        }
    }
    let names: Vec<&str> = HEADER.split(',').collect();
    let mut out: Vec<QueryRecord> = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let at = Origin::at(origin, i + 1);
        let r = parse_record(line, &names, &at)?;
        let prev = out.last().map_or(0.0, |p| p.arrival_ms);
        check_record(&r, prev)
            .and_then(|()| check(&r))
            .and_then(|()| once(&mut seen, &r))
            .map_err(|(field, m)| Error::field(at, field, m))?;
        out.push(r);
    }
    if out.is_empty() {
        return Err(Error::Syntax {
            origin: Origin::file(origin),
            message: "no queries".into(),
        });
    }
    Ok(out)
}

/// One line of a record file; `names`: the header's columns.
fn parse_record(line: &str, names: &[&str], at: &Origin) -> Result<QueryRecord, Error> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != names.len() {
        return Err(Error::Syntax {
            origin: at.clone(),
            message: format!("{} fields, the header has {}", f.len(), names.len()),
        });
    }
    let num = |k: usize| -> Result<f64, Error> {
        f[k].parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                Error::field(at.clone(), names[k], format!("`{}` is not a number", f[k]))
            })
    };
    let int = |k: usize| -> Result<u64, Error> {
        f[k].parse::<u64>().map_err(|_| {
            Error::field(
                at.clone(),
                names[k],
                format!("`{}` is not a whole number", f[k]),
            )
        })
    };
    let small = |k: usize| -> Result<u32, Error> {
        u32::try_from(int(k)?).map_err(|_| Error::field(at.clone(), names[k], "is too large"))
    };
    if f[2].is_empty() {
        return Err(Error::field(at.clone(), "model", "is empty"));
    }
    Ok(QueryRecord {
        query: int(0)?,
        arrival_ms: num(1)?,
        model: f[2].to_string(),
        batch: small(3)?,
        instance: small(4)?,
        dispatch_ms: num(5)?,
        start_ms: num(6)?,
        finish_ms: num(7)?,
        service_ms: num(8)?,
        ran_batch: small(9)?,
    })
}

/// A query is served once: its id must not come again (`seen` holds the ids so far).
fn once(seen: &mut std::collections::HashSet<u64>, r: &QueryRecord) -> Result<(), FieldProblem> {
    if seen.insert(r.query) {
        Ok(())
    } else {
        Err(("query", format!("{} is recorded twice", r.query)))
    }
}

/// What one record must satisfy on its own; `prev` is the previous record's arrival.
fn check_record(r: &QueryRecord, prev: f64) -> Result<(), FieldProblem> {
    for (field, b) in [("batch", r.batch), ("ran_batch", r.ran_batch)] {
        if !(1..=MAX_BATCH).contains(&b) {
            return Err((field, format!("{b} is outside 1..{MAX_BATCH}")));
        }
    }
    if r.arrival_ms < 0.0 {
        return Err(("arrival_ms", format!("{} is negative", r.arrival_ms)));
    }
    if r.arrival_ms < prev {
        return Err((
            "arrival_ms",
            format!(
                "{} is before the previous query's {prev}: records are in arrival order",
                r.arrival_ms
            ),
        ));
    }
    if r.service_ms < 0.0 {
        return Err(("service_ms", format!("{} is negative", r.service_ms)));
    }
    if r.start_ms > r.finish_ms {
        return Err((
            "start_ms",
            format!(
                "{} is after the query's finish at {}",
                r.start_ms, r.finish_ms
            ),
        ));
    }
    if r.finish_ms < r.arrival_ms {
        return Err((
            "finish_ms",
            format!(
                "{} is before the query's arrival at {}",
                r.finish_ms, r.arrival_ms
            ),
        ));
    }
    Ok(())
}

/// One worker as it was started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerMeta {
    /// Instance index in plan order.
    pub instance: u32,
    /// `GPU 0 3g.71gb@4 bert-base`.
    pub label: String,
    /// Placement variables given to it.
    pub env: Vec<(String, String)>,
    /// What it said when ready.
    pub ready: serde_json::Value,
}

/// Front-end overhead, from the records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overhead {
    /// Queries sent at their arrival (dispatch-at-arrival schedulers, or FIFS with an idle
    /// instance).
    pub at_arrival: u64,
    /// Dispatch lag (request written minus due time), µs: p50, p99, max.
    pub lag_us_p50: f64,
    /// p99 of the lag, µs.
    pub lag_us_p99: f64,
    /// Largest lag, µs.
    pub lag_us_max: f64,
    /// For queries sent to an idle worker: answer read minus request written minus the
    /// worker's service time (both pipes, the worker's parsing), µs: p50 and p99.
    pub round_trip_us_p50: Option<f64>,
    /// p99 of the round trip, µs.
    pub round_trip_us_p99: Option<f64>,
    /// For queries sent to a busy worker (queued in its pipe): answer read minus the
    /// previous answer's read minus the worker's service time, µs, median: the worker's gap
    /// between two queued queries (writing one answer, reading the next request). `None`
    /// when no query was queued (FIFS never queues in a pipe).
    #[serde(default)]
    pub busy_gap_us_p50: Option<f64>,
}

/// The sidecar of a per-query file (`<out>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMeta {
    /// Format tag.
    pub schema: String,
    /// The plan file.
    pub plan: String,
    /// The scenario file, if the plan did not name it.
    pub scenario: Option<String>,
    /// Scheduler.
    pub scheduler: String,
    /// The rule the scheduler ran (`elsa` resolves to one of the ELSA family, which has
    /// changed between versions); absent in older sidecars.
    #[serde(default)]
    pub scheduler_rule: Option<String>,
    /// Where the arrivals came from (a trace file, or Poisson at a rate).
    pub arrivals: String,
    /// Warm-up fraction of the queries, left out of the summaries.
    pub warmup_fraction: f64,
    /// Worker placement: fake, mps or mig.
    pub placement: String,
    /// The workers.
    pub workers: Vec<WorkerMeta>,
    /// Dispatch overhead measured in this run.
    pub overhead: Overhead,
    /// Wall-clock length of the run, s.
    pub wall_s: f64,
}

impl RunMeta {
    /// Checks what `migopt compare` takes from a sidecar read from `side`: the rule it
    /// re-simulates, the warm-up fraction, and the server's cost per query (at most a
    /// latency's bound, [`MAX_LATENCY_MS`]), each error naming its field.
    pub fn check(&self, side: &Path) -> Result<(), Error> {
        let field = |name: &str, m: String| Error::field(Origin::file(side), name, m);
        // The label `compare` prints ("served under …"), and the rule it re-simulates
        // (the label's where the sidecar records none).
        if let Err(e) = self.scheduler.parse::<migopt_sim::SchedulerKind>() {
            return Err(field("scheduler", e.to_string()));
        }
        if let Err(e) = self.rule() {
            return Err(field("scheduler_rule", e.to_string()));
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return Err(field(
                "warmup_fraction",
                format!("{} must be at least 0 and below 1", self.warmup_fraction),
            ));
        }
        let o = &self.overhead;
        let costs = [
            ("overhead.round_trip_us_p50", o.round_trip_us_p50),
            ("overhead.busy_gap_us_p50", o.busy_gap_us_p50),
        ];
        let max_us = MAX_LATENCY_MS * 1e3;
        for (name, v) in costs {
            if let Some(v) = v.filter(|v| !(-max_us..=max_us).contains(v)) {
                return Err(field(
                    name,
                    format!("{} µs is outside ±{max_us:e} µs", num(v)),
                ));
            }
        }
        Ok(())
    }

    /// The rule the run really dispatched with: `scheduler_rule` where the sidecar records
    /// it (`elsa` names whichever ELSA variant was current when the run was served), else
    /// `scheduler`. Re-simulating a run must use this, not today's meaning of `elsa`.
    pub fn rule(&self) -> Result<migopt_sim::SchedulerKind, Error> {
        self.scheduler_rule
            .as_deref()
            .unwrap_or(&self.scheduler)
            .parse()
    }
}

/// A sidecar's text, parsed and checked ([`RunMeta::check`]); `side` names it in errors. A
/// UTF-8 byte-order mark is accepted.
pub fn parse_sidecar(text: &str, side: &Path) -> Result<RunMeta, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let meta: RunMeta = migopt_models::json::parse(text).map_err(|r| {
        migopt_models::json::unknown_key(&r, side).unwrap_or_else(|| Error::Syntax {
            origin: Origin::at(side, r.error.line()),
            message: format!("not a `migopt serve` sidecar: {}", r.error),
        })
    })?;
    meta.check(side)?;
    Ok(meta)
}

/// Sidecar path of a record file: `measured.csv` -> `measured.csv.json`.
pub fn sidecar_path(csv: &Path) -> std::path::PathBuf {
    let mut s = csv.as_os_str().to_owned();
    s.push(".json");
    s.into()
}

/// Nearest-rank percentile of a sorted slice.
pub(crate) fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((q / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

/// The front end's overhead in a run. `sent_idle[i]`: the query was sent to an idle worker.
pub fn overhead(recs: &[QueryRecord], at_arrival: &[bool], sent_idle: &[bool]) -> Overhead {
    let mut lag: Vec<f64> = recs
        .iter()
        .zip(at_arrival)
        .filter(|(_, &a)| a)
        .map(|(r, _)| (r.dispatch_ms - r.arrival_ms) * 1000.0)
        .collect();
    lag.sort_by(f64::total_cmp);
    let mut rt: Vec<f64> = recs
        .iter()
        .zip(sent_idle)
        .filter(|(_, &a)| a)
        .map(|(r, _)| (r.finish_ms - r.dispatch_ms - r.service_ms) * 1000.0)
        .collect();
    rt.sort_by(f64::total_cmp);
    let gap = busy_gaps(recs, sent_idle);
    Overhead {
        at_arrival: lag.len() as u64,
        lag_us_p50: pct(&lag, 50.0),
        lag_us_p99: pct(&lag, 99.0),
        lag_us_max: lag.last().copied().unwrap_or(f64::NAN),
        round_trip_us_p50: (!rt.is_empty()).then(|| pct(&rt, 50.0)),
        round_trip_us_p99: (!rt.is_empty()).then(|| pct(&rt, 99.0)),
        busy_gap_us_p50: (!gap.is_empty()).then(|| pct(&gap, 50.0)),
    }
}

/// Sorted busy gaps, µs: for each query sent to a busy worker, its answer's read minus the
/// read of the answer before it on the same instance minus its service time.
fn busy_gaps(recs: &[QueryRecord], sent_idle: &[bool]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..recs.len())
        .filter(|&k| recs[k].finish_ms.is_finite() && recs[k].instance != u32::MAX)
        .collect();
    order.sort_by(|&a, &b| {
        (recs[a].instance, recs[a].finish_ms)
            .partial_cmp(&(recs[b].instance, recs[b].finish_ms))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut gap: Vec<f64> = order
        .windows(2)
        .filter(|w| recs[w[0]].instance == recs[w[1]].instance && !sent_idle[w[1]])
        .map(|w| {
            let (a, b) = (&recs[w[0]], &recs[w[1]]);
            (b.finish_ms - a.finish_ms - b.service_ms) * 1000.0
        })
        .collect();
    gap.sort_by(f64::total_cmp);
    gap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(q: u64) -> QueryRecord {
        QueryRecord {
            query: q,
            arrival_ms: 1.5 * q as f64,
            model: "resnet50".into(),
            batch: 4,
            instance: 2,
            dispatch_ms: 1.5 * q as f64 + 0.01,
            start_ms: 1.5 * q as f64 + 0.02,
            finish_ms: 1.5 * q as f64 + 2.0,
            service_ms: 1.98,
            ran_batch: 4,
        }
    }

    #[test]
    fn a_run_is_re_simulated_with_the_rule_it_ran() {
        let text = include_str!("../../papers/sim-to-real/raw/load30.elsa.csv.json");
        let mut meta: RunMeta = serde_json::from_str(text).unwrap();
        assert_eq!(meta.scheduler, "elsa");
        assert_eq!(meta.rule().unwrap(), migopt_sim::SchedulerKind::ElsaPlan);
        meta.scheduler_rule = None; // an older sidecar: the asked-for scheduler stands
        assert_eq!(meta.rule().unwrap(), migopt_sim::SchedulerKind::Elsa);
    }

    #[test]
    fn what_compare_reads_from_a_sidecar_is_checked() {
        let text = include_str!("../../papers/sim-to-real/raw/load30.elsa.csv.json");
        let meta: RunMeta = serde_json::from_str(text).unwrap();
        let side = Path::new("m.csv.json");
        assert!(meta.check(side).is_ok());
        let err = |edit: &dyn Fn(&mut RunMeta)| {
            let mut m = meta.clone();
            edit(&mut m);
            m.check(side).unwrap_err().to_string()
        };
        assert_eq!(
            err(&|m| m.warmup_fraction = 1.5),
            "m.csv.json: field `warmup_fraction`: 1.5 must be at least 0 and below 1"
        );
        assert!(err(&|m| m.scheduler_rule = Some("x".into()))
            .starts_with("m.csv.json: field `scheduler_rule`: unknown scheduler `x`"));
        assert!(err(&|m| m.scheduler = "x".into())
            .starts_with("m.csv.json: field `scheduler`: unknown scheduler `x`"));
        assert_eq!(
            err(&|m| m.overhead.round_trip_us_p50 = Some(1e300)),
            "m.csv.json: field `overhead.round_trip_us_p50`: 1e300 µs is outside ±1e12 µs"
        );
    }

    #[test]
    fn a_misspelt_sidecar_key_is_refused_by_its_path() {
        let text = include_str!("../../papers/sim-to-real/raw/load30.elsa.csv.json");
        let side = Path::new("m.csv.json");
        let refusal = |v: serde_json::Value| {
            let t = serde_json::to_string_pretty(&v).unwrap();
            parse_sidecar(&t, side).unwrap_err().to_string()
        };
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut w = v.clone();
        let worker = w["workers"][1].as_object_mut().unwrap();
        let label = worker.remove("label").unwrap();
        worker.insert("lable".into(), label);
        let e = refusal(w);
        assert!(e.starts_with("m.csv.json:"), "{e}");
        assert!(
            e.ends_with(": field `workers[1].lable`: unknown key; did you mean `label`?"),
            "{e}"
        );
        let mut w = v;
        w["warmup"] = 0.1.into();
        let e = refusal(w);
        assert!(
            e.ends_with(": field `warmup`: unknown key; did you mean `warmup_fraction`?"),
            "{e}"
        );
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_accepted() {
        let recs: Vec<_> = (0..3).map(rec).collect();
        let text = format!("\u{feff}{}", to_csv(&recs).replace('\n', "\r\n"));
        assert_eq!(parse_csv(&text, Path::new("m.csv")).unwrap(), recs);
        let side = include_str!("../../papers/sim-to-real/raw/load30.elsa.csv.json");
        let meta = parse_sidecar(&format!("\u{feff}{side}"), Path::new("m.csv.json")).unwrap();
        assert_eq!(meta.scheduler, "elsa");
    }

    #[test]
    fn csv_round_trips() {
        let recs: Vec<_> = (0..3).map(rec).collect();
        let text = to_csv(&recs);
        assert_eq!(parse_csv(&text, Path::new("m.csv")).unwrap(), recs);
    }

    #[test]
    fn errors_name_line_and_field() {
        let text = to_csv(&[rec(0)]).replace(",resnet50,4,", ",resnet50,x,");
        assert_eq!(
            parse_csv(&text, Path::new("m.csv"))
                .unwrap_err()
                .to_string(),
            "m.csv:2: field `batch`: `x` is not a whole number"
        );
        assert!(parse_csv("a,b\n", Path::new("m.csv")).is_err());
        assert!(parse_csv(&format!("{HEADER}\n"), Path::new("m.csv")).is_err());
    }

    /// The error of parsing `rec(0..3)` with record 2 (line 4) changed by `edit`.
    fn error_with(edit: impl Fn(&mut QueryRecord)) -> String {
        let mut recs: Vec<_> = (0..3).map(rec).collect();
        edit(&mut recs[2]);
        parse_csv(&to_csv(&recs), Path::new("m.csv"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn impossible_records_are_rejected_with_line_and_field() {
        assert_eq!(
            error_with(|r| r.batch = 70_000),
            "m.csv:4: field `batch`: 70000 is outside 1..65536"
        );
        assert_eq!(
            error_with(|r| r.ran_batch = 0),
            "m.csv:4: field `ran_batch`: 0 is outside 1..65536"
        );
        assert_eq!(
            error_with(|r| r.arrival_ms = 0.5),
            "m.csv:4: field `arrival_ms`: 0.5 is before the previous query's 1.5: records are in arrival order"
        );
        assert_eq!(
            error_with(|r| r.service_ms = -1.0),
            "m.csv:4: field `service_ms`: -1 is negative"
        );
        assert_eq!(
            error_with(|r| r.finish_ms = 1.0),
            "m.csv:4: field `start_ms`: 3.02 is after the query's finish at 1"
        );
        assert_eq!(
            error_with(|r| {
                r.start_ms = 0.5;
                r.finish_ms = 1.0
            }),
            "m.csv:4: field `finish_ms`: 1 is before the query's arrival at 3"
        );
        assert_eq!(
            error_with(|r| r.query = 1),
            "m.csv:4: field `query`: 1 is recorded twice"
        );
        let first = to_csv(&[rec(0)]).replace("\n0,0.0000,", "\n0,-2,");
        assert_eq!(
            parse_csv(&first, Path::new("m.csv"))
                .unwrap_err()
                .to_string(),
            "m.csv:2: field `arrival_ms`: -2 is negative"
        );
    }

    #[test]
    fn records_are_checked_against_the_plan_they_ran_on() {
        let plan = Plan::from_json(
            include_str!("../../papers/sim-to-real/plan.json"),
            Path::new("plan.json"),
        )
        .unwrap();
        let parse = |r: QueryRecord| {
            parse_csv_for(&to_csv(&[rec(0), r]), Path::new("m.csv"), &plan)
                .map_err(|e| e.to_string())
        };
        // Instance 2 of the plan is a 2g.35gb serving resnet50.
        assert!(parse(rec(1)).is_ok());
        let mut far = rec(1);
        far.instance = 4;
        assert_eq!(
            parse(far).unwrap_err(),
            "m.csv:3: field `instance`: 4 is not an instance of the plan (4 instances)"
        );
        let mut other = rec(1);
        other.model = "bert-base".into();
        assert_eq!(
            parse(other).unwrap_err(),
            "m.csv:3: field `model`: `bert-base`, but instance 2 serves `resnet50`"
        );
    }

    #[test]
    fn overhead_percentiles() {
        let recs: Vec<_> = (0..100).map(rec).collect();
        let o = overhead(&recs, &[true; 100], &[true; 100]);
        assert_eq!(o.at_arrival, 100);
        assert!((o.lag_us_p99 - 10.0).abs() < 1e-6, "{o:?}");
        assert!((o.round_trip_us_p50.unwrap() - 10.0).abs() < 1e-6);
        assert_eq!(o.busy_gap_us_p50, None, "no query was queued");
    }

    #[test]
    fn busy_gap_is_between_queued_answers() {
        // Three queries on one instance: the 2nd and 3rd were queued behind the one before.
        let mut recs: Vec<_> = (0..3).map(rec).collect();
        for (k, r) in recs.iter_mut().enumerate() {
            r.dispatch_ms = 0.0;
            r.service_ms = 2.0;
            r.finish_ms = 2.1 + k as f64 * (2.0 + [0.0, 0.02, 0.03][k]);
        }
        recs[2].finish_ms = recs[1].finish_ms + 2.03;
        let o = overhead(&recs, &[true; 3], &[true, false, false]);
        let g = o.busy_gap_us_p50.unwrap();
        assert!((g - 20.0).abs() < 1e-6, "{g}");
    }
}
