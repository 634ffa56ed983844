//! Input-handling benchmarks (divan): reading and validating profile CSVs and scenarios at
//! scale. Synthetic H100-80GB profiles in migopt's schema, in the shape of real ones: for
//! model m (latency scale a_m = 0.5 + (m mod 17)/10 ms) on a profile of k GPCs with p MPS
//! processes, L(b) = a_m·(1 + 0.25·(p − 1)) + 0.2·b·p / k ms at batches 1, 2, 4, …, 128.
//!
//! * `scenario_1000_models_shared_csv`: a scenario of 1,000 `[[model]]` tables (rate
//!   targets) that all name one CSV holding every model's curves (1,000 models × 5
//!   profiles × 8 batches = 40,000 rows, 2.0 MB). Goal < 1 s.
//! * `scenario_1000_models_one_csv_each`: the same models, one 40-row CSV each. Goal < 1 s.
//! * `profile_check_200k_rows`: one CSV of 200,000 rows (625 models × 5 profiles × 8 MPS
//!   process counts × 8 batches, 10.4 MB), read and validated as `migopt profile check`
//!   does, knee of every curve included. Goal < 1 s.
//!
//! Files are written once to a temporary folder; each iteration reads them from disk.
//!
//! Run: `cargo bench -p migopt-models --bench load`.

use migopt_models::{ProfileSet, Scenario};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn main() {
    divan::main();
}

const PROFILES: [(&str, u32); 5] = [
    ("1g.10gb", 1),
    ("2g.20gb", 2),
    ("3g.40gb", 3),
    ("4g.40gb", 4),
    ("7g.80gb", 7),
];
const BATCHES: [u32; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

fn rows(out: &mut String, model: usize, procs: &[u32]) {
    let a = 0.5 + (model % 17) as f64 / 10.0;
    for (p, k) in PROFILES {
        for &n in procs {
            for b in BATCHES {
                let l = a * (1.0 + 0.25 * (n - 1) as f64) + 0.2 * (b * n) as f64 / k as f64;
                let _ = writeln!(out, "m{model},H100-80GB,{p},{b},{l:.4},{n}");
            }
        }
    }
}

const HEADER: &str = "model,gpu,profile,batch,latency_ms,procs\n";

fn scenario_text(models: usize, file: impl Fn(usize) -> String) -> String {
    let mut t = String::from("name = \"bench\"\n[gpu]\nkind = \"H100-80GB\"\ncount = 8000\n\n");
    for m in 0..models {
        let _ = writeln!(
            t,
            "[[model]]\nname = \"m{m}\"\nprofile = \"{}\"\nsla_ms = 100\nrate_qps = {}\n",
            file(m),
            500 + 10 * (m % 50)
        );
    }
    t
}

struct Files {
    _dir: tempfile::TempDir,
    shared: PathBuf,
    each: PathBuf,
    big_csv: PathBuf,
}

fn files() -> &'static Files {
    static F: OnceLock<Files> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut all = String::from(HEADER);
        for m in 0..1000 {
            rows(&mut all, m, &[1]);
            let mut one = String::from(HEADER);
            rows(&mut one, m, &[1]);
            std::fs::write(d.join(format!("m{m}.csv")), one).unwrap();
        }
        std::fs::write(d.join("all.csv"), all).unwrap();
        let shared = d.join("shared.toml");
        std::fs::write(&shared, scenario_text(1000, |_| "all.csv".into())).unwrap();
        let each = d.join("each.toml");
        std::fs::write(&each, scenario_text(1000, |m| format!("m{m}.csv"))).unwrap();
        let mut big = String::from(HEADER);
        for m in 0..625 {
            rows(&mut big, m, &[1, 2, 3, 4, 5, 6, 7, 8]);
        }
        let big_csv = d.join("big.csv");
        std::fs::write(&big_csv, big).unwrap();
        Files {
            _dir: dir,
            shared,
            each,
            big_csv,
        }
    })
}

fn load(p: &Path) -> Scenario {
    let s = Scenario::load(p).unwrap();
    assert_eq!(s.models.len(), 1000);
    s
}

#[divan::bench(sample_count = 5)]
fn scenario_1000_models_shared_csv() -> Scenario {
    load(&files().shared)
}

#[divan::bench(sample_count = 5)]
fn scenario_1000_models_one_csv_each() -> Scenario {
    load(&files().each)
}

#[divan::bench(sample_count = 5)]
fn profile_check_200k_rows() -> u64 {
    let set = ProfileSet::load(&[&files().big_csv]).unwrap();
    assert_eq!(set.curves.len(), 625 * 5 * 8);
    set.curves.values().map(|c| c.knee(0.9) as u64).sum()
}
