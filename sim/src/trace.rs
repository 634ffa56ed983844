//! Query traces: recorded arrivals replayed exactly, so a plan can be judged on real
//! traffic (bursts, diurnal swings) rather than on Poisson's idealisation.

use migopt_models::input::Inputs;
use migopt_models::limits::{MAX_BATCH, MAX_QUERIES_PER_RUN, MAX_SIM_SECONDS};
use migopt_models::{Error, ModelName, Origin};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One recorded query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Arrival time, ms from the start of the trace.
    pub arrival_ms: f64,
    /// Model queried (as named in the scenario).
    pub model: ModelName,
    /// Query batch size.
    pub batch: u32,
}

const COLUMNS: [&str; 3] = ["arrival_ms", "model", "batch"];

/// Reads a trace CSV with the header `arrival_ms,model,batch` (columns in any order; blank
/// lines and lines starting with `#` are skipped; fields are not quoted). Every error names
/// the file, the line and the field; a record earlier than the one before it is an error,
/// because a replay cannot go back in time and a silently sorted trace is not the trace
/// that was recorded.
pub fn read_trace(path: &Path) -> Result<Vec<TraceRecord>, Error> {
    read_trace_for(path, None)
}

/// [`read_trace`], also checking that every record names one of `models` (the scenario's),
/// so that an unknown model is reported at its line.
pub fn read_trace_for(path: &Path, models: Option<&[&str]>) -> Result<Vec<TraceRecord>, Error> {
    read_trace_with(path, models, &mut |_, _| Ok(()), &mut Inputs::default())
}

/// A check of each record's (model, batch) beyond the trace's own rules: `Err` says why the
/// record cannot be replayed, and the reader reports it at the record's line.
pub(crate) type RecordCheck<'a> = &'a mut dyn FnMut(&str, u32) -> Result<(), String>;

/// [`read_trace_for`], also applying `check` to every record, recording the file in `inputs`.
pub(crate) fn read_trace_with(
    path: &Path,
    models: Option<&[&str]>,
    check: RecordCheck<'_>,
    inputs: &mut Inputs,
) -> Result<Vec<TraceRecord>, Error> {
    let text = inputs.read_text(path, migopt_models::limits::TRACE_FILE)?;
    parse_trace_with(&text, path, models, check)
}

/// [`read_trace`] on text already read; `origin` names it in errors.
pub fn parse_trace(text: &str, origin: &Path) -> Result<Vec<TraceRecord>, Error> {
    parse_trace_for(text, origin, None)
}

/// [`read_trace_for`] on text already read. A UTF-8 byte-order mark is accepted; times are
/// bounded by [`MAX_SIM_SECONDS`], batches by [`MAX_BATCH`], the record count by
/// [`MAX_QUERIES_PER_RUN`].
pub fn parse_trace_for(
    text: &str,
    origin: &Path,
    models: Option<&[&str]>,
) -> Result<Vec<TraceRecord>, Error> {
    parse_trace_with(text, origin, models, &mut |_, _| Ok(()))
}

/// [`parse_trace_for`], also applying `check` to every record (its error under `batch`).
fn parse_trace_with(
    text: &str,
    origin: &Path,
    models: Option<&[&str]>,
    check: RecordCheck<'_>,
) -> Result<Vec<TraceRecord>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let Some((hline, header)) = lines.next() else {
        return Err(Error::Syntax {
            origin: Origin::file(origin),
            message: "the trace is empty".into(),
        });
    };
    let (width, idx) = header_columns(header, &Origin::at(origin, hline + 1))?;
    let mut out = Vec::new();
    let mut prev: Option<(f64, usize)> = None;
    let mut fields: Vec<&str> = Vec::with_capacity(width);
    for (i, line) in lines {
        let at = Line {
            file: origin,
            line: i + 1,
        };
        fields.clear();
        fields.extend(line.split(',').map(str::trim));
        if fields.len() != width {
            return Err(Error::Syntax {
                origin: at.origin(),
                message: format!("{} fields, the header has {}", fields.len(), width),
            });
        }
        let t = parse_arrival(fields[idx[0]], at, prev)?;
        let model = parse_model(fields[idx[1]], at, models)?;
        let batch = parse_batch(fields[idx[2]], at)?;
        check(model, batch).map_err(|m| Error::field(at.origin(), "batch", m))?;
        if out.len() as u64 >= MAX_QUERIES_PER_RUN {
            return Err(Error::field(
                at.origin(),
                "arrival_ms",
                format!(
                    "the trace has more than {MAX_QUERIES_PER_RUN} queries, the limit of one run"
                ),
            ));
        }
        prev = Some((t, i + 1));
        out.push(TraceRecord {
            arrival_ms: t,
            model: model.into(),
            batch,
        });
    }
    if out.is_empty() {
        return Err(Error::Syntax {
            origin: Origin::file(origin),
            message: "the trace has no queries".into(),
        });
    }
    Ok(out)
}

/// Where a record stands (its file and 1-based line), made into an [`Origin`] only for an
/// error: a valid record allocates nothing for it.
#[derive(Clone, Copy)]
struct Line<'a> {
    file: &'a Path,
    line: usize,
}

impl Line<'_> {
    fn origin(self) -> Origin {
        Origin::at(self.file, self.line)
    }
}

/// The header's field count and where each of [`COLUMNS`] stands in it; `at` is its line.
fn header_columns(header: &str, at: &Origin) -> Result<(usize, [usize; 3]), Error> {
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let wrong = |what: &str, name: &str| Error::Syntax {
        origin: at.clone(),
        message: format!(
            "{what} column `{name}` (the header must be {})",
            COLUMNS.join(",")
        ),
    };
    if let Some(m) = migopt_models::input::repeated_column(&names) {
        return Err(Error::Syntax {
            origin: at.clone(),
            message: m,
        });
    }
    let mut idx = [0usize; 3];
    for (k, c) in COLUMNS.iter().enumerate() {
        idx[k] = names
            .iter()
            .position(|n| n == c)
            .ok_or_else(|| wrong("missing", c))?;
    }
    if let Some(extra) = names.iter().find(|n| !COLUMNS.contains(n)) {
        return Err(wrong("unknown", extra));
    }
    Ok((names.len(), idx))
}

/// The `arrival_ms` field `s` on line `at`: a time in ms, within the simulated-time limit
/// and not before the previous record's (`prev`: its time and line).
fn parse_arrival(s: &str, at: Line<'_>, prev: Option<(f64, usize)>) -> Result<f64, Error> {
    let bad = |message: String| Error::field(at.origin(), "arrival_ms", message);
    let t: f64 = s
        .parse()
        .map_err(|_| bad(format!("`{s}` is not a number")))?;
    if !(t.is_finite() && t >= 0.0) {
        return Err(bad(format!("{s} must be a non-negative time in ms")));
    }
    if t > MAX_SIM_SECONDS * 1000.0 {
        return Err(bad(format!(
            "{s} ms is above the limit of {:e} ms of simulated time",
            MAX_SIM_SECONDS * 1000.0
        )));
    }
    match prev {
        Some((pt, pl)) if t < pt => Err(bad(format!(
            "{s} is before {pt} on line {pl}: time must not go backwards"
        ))),
        _ => Ok(t),
    }
}

/// The `model` field `s` on line `at`: not empty, and one of `models` when given.
fn parse_model<'t>(s: &'t str, at: Line<'_>, models: Option<&[&str]>) -> Result<&'t str, Error> {
    if s.is_empty() {
        return Err(Error::field(at.origin(), "model", "is empty"));
    }
    if let Some(known) = models.filter(|k| !k.contains(&s)) {
        return Err(Error::field(
            at.origin(),
            "model",
            format!(
                "`{s}` is not a model of the scenario ({})",
                known.join(", ")
            ),
        ));
    }
    Ok(s)
}

/// The `batch` field `s` on line `at`: a whole number from 1 to [`MAX_BATCH`].
fn parse_batch(s: &str, at: Line<'_>) -> Result<u32, Error> {
    match s.parse::<u64>() {
        Ok(b) if (1..=MAX_BATCH as u64).contains(&b) => Ok(b as u32),
        Ok(b) if b > 1 => Err(Error::field(
            at.origin(),
            "batch",
            format!("{b} is above the limit of {MAX_BATCH}"),
        )),
        _ => Err(Error::field(
            at.origin(),
            "batch",
            format!("`{s}` is not a whole number ≥ 1"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_column_order_and_skips_comments() {
        let t = "# recorded 2024-05-01\nmodel,arrival_ms,batch\na,0,1\n\nb, 1.5 ,8\n";
        let r = parse_trace(t, Path::new("t.csv")).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            TraceRecord {
                arrival_ms: 1.5,
                model: "b".into(),
                batch: 8
            }
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = |t: &str| parse_trace(t, Path::new("t.csv")).unwrap_err().to_string();
        assert_eq!(
            e("arrival_ms,model,batch\n0,a,1\n5,a,1\n4.5,a,1\n"),
            "t.csv:4: field `arrival_ms`: 4.5 is before 5 on line 3: time must not go backwards"
        );
        assert_eq!(
            e("arrival_ms,model,batch\n0,a,0\n"),
            "t.csv:2: field `batch`: `0` is not a whole number ≥ 1"
        );
        assert_eq!(
            e("arrival_ms,model,batch\nx,a,1\n"),
            "t.csv:2: field `arrival_ms`: `x` is not a number"
        );
        assert_eq!(
            e("arrival_ms,model\n"),
            "t.csv:1: missing column `batch` (the header must be arrival_ms,model,batch)"
        );
        assert_eq!(
            e("arrival_ms,model,batch\n1,a\n"),
            "t.csv:2: 2 fields, the header has 3"
        );
    }
}
