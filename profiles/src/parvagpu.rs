//! Importer for the ParvaGPU profile set (Lee et al., SC 2024; MIT licence): real MIG
//! measurements of 11 models on an A100-80GB with MPS, and six SLO scenarios.
//!
//! Source layout: `prof_data/<model>.csv` with header
//! `Mig instance,Batch size,Workload Number,Throughput,Latency` where `Mig instance` is the
//! GPC count (1, 2, 3, 4, 7), `Workload Number` the MPS process count, `Throughput` the
//! throughput of ONE process (requests/s) and `Latency` seconds; a row of `0,0` means the
//! point was not run. `SLO/SLO_req_rate.csv` (requests/s) and `SLO/SLO_latency.csv` (ms)
//! have no header: one row per scenario, one column per model in alphabetical order,
//! `N/A` where the scenario does not serve the model.

use migopt_models::error::{Error, LineIndex, Origin, Result};
use migopt_models::input::Inputs;
use migopt_models::limits::{MAX_BATCH, MAX_LATENCY_MS, MAX_PROCS, MAX_RATE_QPS, MIN_LATENCY_MS};
use migopt_models::profile::{write_csv, Method, ProfileRow};
use migopt_models::{Catalogue, GpuSpec};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The GPU the data set was measured on.
pub const GPU: &str = "A100-80GB";

/// One model's demand in one scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Demand {
    /// Model name (file stem of its profile).
    pub model: String,
    /// Request rate, requests per second.
    pub rate_qps: f64,
    /// Latency SLO, ms.
    pub slo_ms: f64,
}

/// One of the SLO scenarios (rows of the SLO files).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SloScenario {
    /// 1-based row number in the SLO files.
    pub index: usize,
    /// Models served, alphabetical.
    pub demands: Vec<Demand>,
}

/// The whole imported set.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// Models, alphabetical (the SLO files' column order).
    pub models: Vec<String>,
    /// Rows per model in migopt's schema, in model order.
    pub rows: Vec<(String, Vec<ProfileRow>)>,
    /// The SLO scenarios.
    pub scenarios: Vec<SloScenario>,
}

/// The columns of a ParvaGPU profile file.
const WANT: [&str; 5] = [
    "Mig instance",
    "Batch size",
    "Workload Number",
    "Throughput",
    "Latency",
];

/// Reads the data set at `dir`. Nothing is written; every problem names file, line, field.
pub fn read(dir: &Path) -> Result<Import> {
    read_recording(dir, &mut Inputs::default())
}

/// [`read`], recording every file read in `inputs`.
pub fn read_recording(dir: &Path, inputs: &mut Inputs) -> Result<Import> {
    let prof_dir = dir.join("prof_data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&prof_dir)
        .map_err(|e| Error::io(&prof_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no profile CSV files",
            prof_dir.display()
        )));
    }
    let gpu = Catalogue::builtin().gpu(GPU)?;
    let mut models = Vec::new();
    let mut rows = Vec::new();
    for f in &files {
        let model = model_name(f)?;
        let out = read_profile(f, &model, gpu, inputs)?;
        models.push(model.clone());
        rows.push((model, out));
    }
    let (scenarios, origins) = read_scenarios(dir, &models, inputs)?;
    let imp = Import {
        models,
        rows,
        scenarios,
    };
    // Each scenario as migopt will load it, a problem named at its SLO row (the scenario
    // file it becomes exists only once the import is written).
    for (s, origin) in imp.scenarios.iter().zip(origins) {
        imp.scenario(s).map_err(|e| Error::Syntax {
            origin,
            message: format!("scenario {}: {}", s.index, without_origin(e)),
        })?;
    }
    Ok(imp)
}

/// What an error says, without the file and line it names.
fn without_origin(e: Error) -> String {
    match e {
        Error::Field { message, .. } | Error::Syntax { message, .. } => message,
        other => other.to_string(),
    }
}

/// The runnable rows of one model's profile file `f`, in migopt's schema.
fn read_profile(
    f: &Path,
    model: &str,
    gpu: &GpuSpec,
    inputs: &mut Inputs,
) -> Result<Vec<ProfileRow>> {
    let text = inputs.read_text(f, migopt_models::limits::IMPORT_FILE)?;
    let lines = LineIndex::new(&text);
    let mut out = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::Syntax {
            origin: Origin::at(f, 1),
            message: e.to_string(),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    if header != WANT {
        return Err(Error::Syntax {
            origin: Origin::at(f, 1),
            message: format!(
                "header is `{}`, expected `{}`",
                header.join(","),
                WANT.join(",")
            ),
        });
    }
    // Where each (profile, batch, procs) point was measured, for duplicates.
    let mut seen = std::collections::HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::Syntax {
            origin: lines.origin(f, e.position().map(|p| p.byte()).unwrap_or(0)),
            message: e.to_string(),
        })?;
        let origin = lines.origin(f, rec.position().map(|p| p.byte()).unwrap_or(0));
        let Some(row) = profile_row(&rec, &origin, model, gpu)? else {
            continue;
        };
        let key = (row.profile.clone(), row.batch, row.procs);
        if let Some(first) = seen.insert(key, origin.clone()) {
            return Err(Error::field(
                origin,
                "Batch size",
                format!(
                    "a second measurement of {model} on {} at batch {} with {} processes (first at {first})",
                    row.profile, row.batch, row.procs
                ),
            ));
        }
        out.push(row);
    }
    if out.is_empty() {
        return Err(Error::Syntax {
            origin: Origin::file(f),
            message: format!(
                "model {model} has no runnable point (every row is 0,0): it cannot be imported"
            ),
        });
    }
    Ok(out)
}

/// One record of a profile file as a row, or `None` for a point not run (`0,0`).
fn profile_row(
    rec: &csv::StringRecord,
    origin: &Origin,
    model: &str,
    gpu: &GpuSpec,
) -> Result<Option<ProfileRow>> {
    let (tp, lat_s) = (field_number(rec, origin, 3)?, field_number(rec, origin, 4)?);
    if tp == 0.0 && lat_s == 0.0 {
        return Ok(None); // not run
    }
    let gpcs = field_whole(rec, origin, 0, 7)?;
    let batch = field_whole(rec, origin, 1, MAX_BATCH)?;
    let procs = field_whole(rec, origin, 2, MAX_PROCS)?;
    check_measurement(origin, tp, lat_s, procs)?;
    let profile = gpu.classic_by_compute(gpcs).ok_or_else(|| {
        Error::field(
            origin.clone(),
            "Mig instance",
            format!("{gpcs} GPCs is not a MIG size of {GPU} (1, 2, 3, 4, 7)"),
        )
    })?;
    Ok(Some(ProfileRow {
        model: model.into(),
        gpu: gpu.name.clone(),
        profile: profile.name.clone(),
        batch,
        latency_ms: lat_s * 1000.0,
        latency_p99_ms: None,
        procs,
        throughput_qps: tp * procs as f64,
        method: Method::Imported,
        neighbour_load: 0.0,
    }))
}

/// Column `i` of a record as a finite, non-negative number.
fn field_number(rec: &csv::StringRecord, origin: &Origin, i: usize) -> Result<f64> {
    let s = rec.get(i).unwrap_or("");
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            Error::field(
                origin.clone(),
                WANT[i],
                format!("`{s}` is not a non-negative number"),
            )
        })
}

/// Column `i` of a record as a whole number between 1 and `max`.
fn field_whole(rec: &csv::StringRecord, origin: &Origin, i: usize, max: u32) -> Result<u32> {
    let v = field_number(rec, origin, i)?;
    let shown = migopt_models::limits::num(v);
    if v.fract() != 0.0 || v < 1.0 {
        Err(format!("{shown} is not a whole number ≥ 1"))
    } else if v > max as f64 {
        Err(format!("{shown} is above the limit of {max}"))
    } else {
        Ok(v as u32)
    }
    .map_err(|m| Error::field(origin.clone(), WANT[i], m))
}

/// Checks a run point's measurement (throughput per process `tp`, latency `lat_s` in
/// seconds, not both zero): each within its accepted range, and neither zero alone.
fn check_measurement(origin: &Origin, tp: f64, lat_s: f64, procs: u32) -> Result<()> {
    let latency_ms = lat_s * 1000.0;
    if tp != 0.0 && lat_s != 0.0 && !(MIN_LATENCY_MS..=MAX_LATENCY_MS).contains(&latency_ms) {
        return Err(Error::field(
            origin.clone(),
            "Latency",
            format!(
                "{} s is outside the accepted range {MIN_LATENCY_MS:e}..{MAX_LATENCY_MS:e} ms",
                migopt_models::limits::num(lat_s)
            ),
        ));
    }
    if tp != 0.0 && !(1e-6..=MAX_RATE_QPS).contains(&(tp * procs as f64)) {
        return Err(Error::field(
            origin.clone(),
            "Throughput",
            format!(
                "{} x {procs} processes is outside the accepted range 1e-6..{MAX_RATE_QPS:e} requests/s",
                migopt_models::limits::num(tp)
            ),
        ));
    }
    if tp == 0.0 || lat_s == 0.0 {
        return Err(Error::field(
            origin.clone(),
            if tp == 0.0 { "Throughput" } else { "Latency" },
            "is zero while the other is not (0,0 marks a point not run)",
        ));
    }
    Ok(())
}

/// The SLO scenarios of `dir/SLO`, one per row of its two files, over `models` (their
/// columns, in order), each with its row in `SLO_req_rate.csv`.
fn read_scenarios(
    dir: &Path,
    models: &[String],
    inputs: &mut Inputs,
) -> Result<(Vec<SloScenario>, Vec<Origin>)> {
    let rate_path = dir.join("SLO").join("SLO_req_rate.csv");
    let rates = read_slo(&rate_path, models.len(), inputs)?;
    let latency_path = dir.join("SLO").join("SLO_latency.csv");
    let slos = read_slo(&latency_path, models.len(), inputs)?;
    if rates.len() != slos.len() {
        return Err(Error::Invalid(format!(
            "{}: {} scenarios in SLO_req_rate.csv but {} in SLO_latency.csv",
            dir.join("SLO").display(),
            rates.len(),
            slos.len()
        )));
    }
    let (mut scenarios, mut origins) = (Vec::new(), Vec::new());
    for (i, ((line, r), (_, l))) in rates.iter().zip(&slos).enumerate() {
        let origin = Origin::at(&rate_path, *line);
        let mut demands = Vec::new();
        for (j, m) in models.iter().enumerate() {
            match (r[j], l[j]) {
                (Some(rate), Some(slo)) => demands.push(Demand {
                    model: m.clone(),
                    rate_qps: rate,
                    slo_ms: slo,
                }),
                (None, None) => {}
                _ => {
                    return Err(Error::Syntax {
                        origin,
                        message: format!(
                            "scenario {} gives model {m} a rate or an SLO but not both",
                            i + 1
                        ),
                    })
                }
            }
        }
        if demands.is_empty() {
            return Err(Error::Syntax {
                origin,
                message: format!("scenario {} serves no model (every cell is N/A)", i + 1),
            });
        }
        scenarios.push(SloScenario {
            index: i + 1,
            demands,
        });
        origins.push(origin);
    }
    Ok((scenarios, origins))
}

/// The model a profile file holds: its file stem, which must be a plain name (letters,
/// digits, `.`, `_`, `+`, `-`) because it is written unquoted into CSVs and into TOML.
fn model_name(f: &Path) -> Result<String> {
    let stem = f
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    if stem.is_empty() || !stem.chars().all(plain) {
        return Err(Error::Syntax {
            origin: Origin::file(f),
            message: format!(
                "the file name gives model name `{stem}`; use letters, digits, `.`, `_`, `+` and `-` only"
            ),
        });
    }
    Ok(stem)
}

/// The bounds of one SLO cell: a rate up to [`MAX_RATE_QPS`], an SLO in the latency range.
fn slo_in_range(v: f64, rates: bool) -> bool {
    if rates {
        v <= MAX_RATE_QPS
    } else {
        (MIN_LATENCY_MS..=MAX_LATENCY_MS).contains(&v)
    }
}

/// The rows of an SLO file, each with its line number.
fn read_slo(
    path: &Path,
    columns: usize,
    inputs: &mut Inputs,
) -> Result<Vec<(usize, Vec<Option<f64>>)>> {
    let rates = path.file_name().is_some_and(|n| n == "SLO_req_rate.csv");
    let text = inputs.read_text(path, migopt_models::limits::IMPORT_FILE)?;
    // A UTF-8 byte-order mark is accepted, as in every format migopt reads.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let origin = Origin::at(path, i + 1);
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns {
            return Err(Error::Syntax {
                origin,
                message: format!(
                    "{} columns, expected {} (one per model, alphabetical)",
                    cells.len(),
                    columns
                ),
            });
        }
        let row = cells
            .iter()
            .enumerate()
            .map(|(j, c)| {
                if *c == "N/A" {
                    return Ok(None);
                }
                let v = c
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| {
                        Error::field(
                            origin.clone(),
                            format!("column {}", j + 1),
                            format!("`{c}` is not a positive number or N/A"),
                        )
                    })?;
                if !slo_in_range(v, rates) {
                    return Err(Error::field(
                        origin.clone(),
                        format!("column {}", j + 1),
                        format!(
                            "{c} is outside the range migopt accepts for {}",
                            if rates {
                                "a rate (requests/s)"
                            } else {
                                "an SLO (ms)"
                            }
                        ),
                    ));
                }
                Ok(Some(v))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push((i + 1, row));
    }
    Ok(out)
}

impl Import {
    /// The scenario file text for one SLO scenario, referring to `<model>.csv` beside it.
    /// The GPU count is an upper limit for the min-gpus planner.
    pub fn scenario_toml(&self, s: &SloScenario) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# ParvaGPU SLO scenario {} (row {} of SLO/SLO_req_rate.csv and SLO/SLO_latency.csv),",
            s.index, s.index
        );
        let _ = writeln!(t, "# imported by `migopt import parvagpu`. Requests are single; instances batch server-side.");
        let _ = writeln!(t, "name = \"parvagpu-s{}\"", s.index);
        let _ = writeln!(t, "description = \"ParvaGPU SLO scenario {}: {} models on A100-80GB MIG, rates in requests/s\"", s.index, s.demands.len());
        let _ = writeln!(t, "\n[gpu]\nkind = \"{GPU}\"\ncount = 64\n");
        for d in &s.demands {
            let _ = writeln!(t, "[[model]]");
            let _ = writeln!(t, "name = \"{}\"", d.model);
            let _ = writeln!(t, "profile = \"{}.csv\"", d.model);
            let _ = writeln!(t, "sla_ms = {}", d.slo_ms);
            let _ = writeln!(t, "rate_qps = {}", d.rate_qps);
            let _ = writeln!(t, "batch = {{ kind = \"fixed\", size = 1 }}\n");
        }
        t
    }

    /// The files the import makes under `out`: `<model>.csv` per model and
    /// `parvagpu-s<i>.toml` per scenario, rendered in memory (the caller writes them all or
    /// none). Each rendered file is read back through migopt's own parsers, so a value the
    /// formats cannot carry is an error here, not a broken file.
    pub fn files(&self, out: &Path) -> Result<Vec<(PathBuf, String)>> {
        let mut files = Vec::new();
        for (m, rows) in &self.rows {
            let path = out.join(format!("{m}.csv"));
            let text = csv_text(rows, &path)?;
            migopt_models::profile::parse_csv(&text, &path)?;
            files.push((path, text));
        }
        for s in &self.scenarios {
            self.scenario(s)?;
            files.push((
                out.join(format!("parvagpu-s{}.toml", s.index)),
                self.scenario_toml(s),
            ));
        }
        Ok(files)
    }

    /// One scenario as a loaded [`migopt_models::Scenario`], without touching the disk
    /// (profiles are rendered in memory), for tests and reproductions.
    pub fn scenario(&self, s: &SloScenario) -> Result<migopt_models::Scenario> {
        let text = self.scenario_toml(s);
        let mut read = |p: &Path| -> Result<String> {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rows = self
                .rows
                .iter()
                .find(|(m, _)| *m == stem)
                .map(|r| &r.1)
                .ok_or_else(|| Error::Invalid(format!("no imported model {stem}")))?;
            csv_text(rows, p)
        };
        migopt_models::Scenario::parse(
            &text,
            Path::new(&format!("parvagpu/parvagpu-s{}.toml", s.index)),
            &mut read,
        )
    }
}

/// Rows in migopt's CSV schema, as text.
fn csv_text(rows: &[ProfileRow], path: &Path) -> Result<String> {
    let mut buf = Vec::new();
    write_csv(rows, &mut buf).map_err(|e| Error::io(path, e))?;
    String::from_utf8(buf).map_err(|e| Error::internal(format!("{}: {e}", path.display())))
}

/// The ParvaGPU A100-80GB data set vendored in this repository (`profiles/parvagpu-a100-80gb/`,
/// MIT licence, with its LICENSE). The one place that knows where it lives.
pub fn dataset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("parvagpu-a100-80gb")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mini(dir: &Path, prof: &str, rate: &str, lat: &str) {
        std::fs::create_dir_all(dir.join("prof_data")).unwrap();
        std::fs::create_dir_all(dir.join("SLO")).unwrap();
        std::fs::write(dir.join("prof_data/aa.csv"), prof).unwrap();
        std::fs::write(
            dir.join("prof_data/bb.csv"),
            "Mig instance,Batch size,Workload Number,Throughput,Latency\r\n7,1,1,500,0.002\r\n",
        )
        .unwrap();
        std::fs::write(dir.join("SLO/SLO_req_rate.csv"), rate).unwrap();
        std::fs::write(dir.join("SLO/SLO_latency.csv"), lat).unwrap();
    }

    const PROF: &str = "Mig instance,Batch size,Workload Number,Throughput,Latency\r\n1,1,1,196.762,0.005\r\n1,2,2,150.088,0.013\r\n1,4,4,0,0\r\n";

    #[test]
    fn converts_units_and_skips_unrun_points() {
        let d = tempfile::tempdir().unwrap();
        mini(d.path(), PROF, "10,N/A\n20,5", "100,N/A\n200,50");
        let imp = read(d.path()).unwrap();
        assert_eq!(imp.models, ["aa", "bb"]);
        let rows = &imp.rows[0].1;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].profile.as_str(), "1g.10gb");
        assert_eq!(rows[1].procs, 2);
        assert!((rows[1].latency_ms - 13.0).abs() < 1e-9);
        assert!((rows[1].throughput_qps - 300.176).abs() < 1e-9);
        assert_eq!(imp.scenarios[0].demands.len(), 1);
        assert_eq!(
            imp.scenarios[1].demands[1],
            Demand {
                model: "bb".into(),
                rate_qps: 5.0,
                slo_ms: 50.0
            }
        );
        let s = imp.scenario(&imp.scenarios[1]).unwrap();
        assert_eq!(s.rates(), Some(vec![20.0, 5.0]));
        assert_eq!(s.gpu.as_str(), "A100-80GB");
    }

    #[test]
    fn bad_input_names_file_line_field_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        mini(d.path(), &PROF.replace("0.013", "abc"), "10,N/A", "100,N/A");
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("aa.csv:3: field `Latency`: `abc` is not a non-negative number"),
            "{e}"
        );
        mini(
            d.path(),
            &PROF.replace("1,2,2", "5,2,2"),
            "10,N/A",
            "100,N/A",
        );
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("aa.csv:3: field `Mig instance`: 5 GPCs"), "{e}");
        mini(d.path(), PROF, "10,N/A,3", "100,N/A");
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("SLO_req_rate.csv:1: 3 columns, expected 2 (one per model, alphabetical)"),
            "{e}"
        );
        mini(d.path(), PROF, "10,4", "100,N/A");
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("scenario 1 gives model bb a rate or an SLO but not both"),
            "{e}"
        );
    }

    #[test]
    fn a_scenario_serving_no_model_is_named_by_its_slo_line() {
        let d = tempfile::tempdir().unwrap();
        // The second scenario, after a blank line, is all N/A: line 3 of both files.
        mini(
            d.path(),
            PROF,
            "10,N/A\n\nN/A,N/A\n",
            "100,N/A\n\nN/A,N/A\n",
        );
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("SLO_req_rate.csv:3: scenario 2 serves no model (every cell is N/A)"),
            "{e}"
        );
        mini(d.path(), PROF, "10,N/A\n\n10,4\n", "100,N/A\n\n100,N/A\n");
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "SLO_req_rate.csv:3: scenario 2 gives model bb a rate or an SLO but not both"
            ),
            "{e}"
        );
    }

    #[test]
    fn slo_files_with_a_byte_order_mark_and_crlf_import() {
        let d = tempfile::tempdir().unwrap();
        mini(d.path(), PROF, "\u{feff}10,N/A\r\n", "\u{feff}100,N/A\r\n");
        let imp = read(d.path()).unwrap();
        assert_eq!(imp.scenarios[0].demands[0].rate_qps, 10.0);
        assert_eq!(imp.scenarios[0].demands[0].slo_ms, 100.0);
    }

    #[test]
    fn a_point_measured_twice_is_named_at_its_source_line() {
        let d = tempfile::tempdir().unwrap();
        // Line 5 repeats line 2's point (a 0,0 row between them is not run).
        let prof = format!("{PROF}1,1,1,150,0.006\n");
        mini(d.path(), &prof, "10,N/A", "100,N/A");
        let e = read(d.path()).unwrap_err().to_string();
        let want = "aa.csv:5: field `Batch size`: a second measurement of aa on 1g.10gb at batch 1 with 1 processes (first at ";
        assert!(e.contains(want) && e.ends_with("aa.csv:2)"), "{e}");
    }

    #[test]
    fn a_scenario_migopt_cannot_load_is_named_at_its_slo_line() {
        let d = tempfile::tempdir().unwrap();
        // 1e9 requests/s of aa needs more instances than migopt allows.
        mini(d.path(), PROF, "10,N/A\n1e9,N/A\n", "100,N/A\n100,N/A\n");
        let e = read(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("SLO_req_rate.csv:2: scenario 2: 1e9 queries/s needs at least"),
            "{e}"
        );
        assert!(!e.contains("parvagpu-s2.toml"), "{e}");
    }

    #[test]
    fn values_the_formats_cannot_carry_are_rejected_with_file_and_row() {
        let d = tempfile::tempdir().unwrap();
        let err = |prof: &str| {
            mini(d.path(), prof, "10,N/A", "100,N/A");
            read(d.path()).unwrap_err().to_string()
        };
        let e = err(&PROF.replace("1,2,2,150.088", "1,1e18,2,150.088"));
        assert!(
            e.ends_with("aa.csv:3: field `Batch size`: 1e18 is above the limit of 65536"),
            "{e}"
        );
        let e = err(&PROF.replace("0.013", "1e306"));
        assert!(
            e.ends_with(
                "aa.csv:3: field `Latency`: 1e306 s is outside the accepted range 1e-6..1e9 ms"
            ),
            "{e}"
        );
        let e = err(&PROF.replace("1,2,2,150.088", "1,2,100,150.088"));
        assert!(
            e.ends_with("aa.csv:3: field `Workload Number`: 100 is above the limit of 64"),
            "{e}"
        );
        let e = err("Mig instance,Batch size,Workload Number,Throughput,Latency\n1,1,1,0,0\n");
        assert!(
            e.ends_with(
                "aa.csv: model aa has no runnable point (every row is 0,0): it cannot be imported"
            ),
            "{e}"
        );
        mini(d.path(), PROF, "10,N/A", "100,N/A");
        std::fs::write(d.path().join("prof_data/b\"b.csv"), PROF).unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.ends_with("b\"b.csv: the file name gives model name `b\"b`; use letters, digits, `.`, `_`, `+` and `-` only"), "{e}");
        std::fs::remove_file(d.path().join("prof_data/b\"b.csv")).unwrap();
        mini(d.path(), PROF, "1e300,N/A", "100,N/A");
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.ends_with("SLO_req_rate.csv:1: field `column 1`: 1e300 is outside the range migopt accepts for a rate (requests/s)"), "{e}");
    }

    #[test]
    fn the_vendored_dataset_imports() {
        let dir = dataset_dir();
        let imp = read(&dir).unwrap();
        assert_eq!(imp.models.len(), 11);
        assert_eq!(imp.scenarios.len(), 6);
        assert_eq!(imp.scenarios[0].demands.len(), 6);
        assert!(imp.scenarios[1..].iter().all(|s| s.demands.len() == 11));
        for s in &imp.scenarios {
            imp.scenario(s).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let files = imp.files(out.path()).unwrap();
        assert_eq!(files.len(), 17);
        for (p, text) in &files {
            std::fs::write(p, text).unwrap();
        }
        migopt_models::Scenario::load(&out.path().join("parvagpu-s6.toml")).unwrap();
    }
}
