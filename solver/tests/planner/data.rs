//! Test-local reader for the ParvaGPU A100-80GB data set (until `migopt_profiles::parvagpu`
//! lands), and synthetic scenarios for property tests.

use migopt_models::{
    BatchDist, BatchLookup, Demand, Method, Millis, ModelSpec, Origin, ProfileRow, ProfileSet,
    Scenario,
};
use std::path::{Path, PathBuf};

/// The eleven models, in the column order of the SLO files (alphabetical).
pub const MODELS: [&str; 11] = [
    "bert",
    "densenet121",
    "densenet169",
    "densenet201",
    "inceptionv3",
    "mobilenetv2",
    "resnet101",
    "resnet152",
    "resnet50",
    "vgg16",
    "vgg19",
];

/// The vendored data set's directory (it ships with the repository, so tests never skip).
pub fn dataset_dir() -> PathBuf {
    migopt_profiles::parvagpu::dataset_dir()
}

fn profile_of(gpcs: u32) -> Option<&'static str> {
    match gpcs {
        1 => Some("1g.10gb"),
        2 => Some("2g.20gb"),
        3 => Some("3g.40gb"),
        4 => Some("4g.40gb"),
        7 => Some("7g.80gb"),
        _ => None,
    }
}

/// Reads one model's `prof_data/<model>.csv`: GPC count, batch, MPS processes, throughput
/// per process (req/s), latency in seconds; `0,0` rows were not run.
fn read_profile(dir: &Path, model: &str) -> Vec<(Origin, ProfileRow)> {
    let path = dir.join("prof_data").join(format!("{model}.csv"));
    let text = std::fs::read_to_string(&path).expect("readable profile");
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').map(|s| s.trim()).collect();
        if f.len() < 5 {
            continue;
        }
        let (gpcs, batch, procs): (u32, u32, u32) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
        );
        let (tp, lat): (f64, f64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
        if tp == 0.0 || lat == 0.0 {
            continue;
        }
        rows.push((
            Origin::at(&path, i + 1),
            ProfileRow {
                model: model.into(),
                gpu: "A100-80GB".into(),
                profile: profile_of(gpcs).expect("known GPC count").into(),
                batch,
                latency_ms: lat * 1000.0,
                latency_p99_ms: None,
                procs,
                throughput_qps: procs as f64 * tp,
                method: Method::Imported,
                neighbour_load: 0.0,
            },
        ));
    }
    rows
}

fn read_slo(dir: &Path, file: &str) -> Vec<Vec<Option<f64>>> {
    let text = std::fs::read_to_string(dir.join("SLO").join(file)).expect("readable SLO file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.trim().parse::<f64>().ok()).collect())
        .collect()
}

/// The six SLO scenarios as migopt scenarios (rates and SLOs; single requests, batched by
/// the server). `gpu_count` is set high: min-gpus decides how many are needed.
pub fn parvagpu_scenarios(dir: &Path) -> Vec<Scenario> {
    let rates = read_slo(dir, "SLO_req_rate.csv");
    let slos = read_slo(dir, "SLO_latency.csv");
    let mut all = Vec::new();
    for m in MODELS {
        all.extend(read_profile(dir, m));
    }
    let profiles = ProfileSet::from_rows(all).expect("valid profile rows");
    rates
        .iter()
        .zip(&slos)
        .enumerate()
        .map(|(i, (r, s))| {
            let mut models = Vec::new();
            for (j, name) in MODELS.iter().enumerate() {
                if let (Some(Some(rate)), Some(Some(slo))) = (r.get(j), s.get(j)) {
                    models.push(ModelSpec {
                        name: (*name).into(),
                        sla: Millis(*slo),
                        demand: Demand::Rate(*rate),
                        batch: BatchDist::Fixed { size: 1 },
                        profile_path: dir.join("prof_data").join(format!("{name}.csv")),
                    });
                }
            }
            let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            Scenario {
                name: format!("parvagpu-slo{}", i + 1),
                description: Some("ParvaGPU A100-80GB SLO scenario".into()),
                gpu: "A100-80GB".into(),
                gpu_count: 64,
                batch_lookup: BatchLookup::Exact,
                max_procs: None,
                profiles: profiles.restrict_to(&names),
                models,
            }
        })
        .collect()
}

/// A synthetic model on A100-80GB: latency a + c·b·p/sms (+ a per-process overhead) for
/// each classic profile, batches 1..=32 (powers of two), procs 1..=3.
pub fn synthetic_rows(model: &str, a: f64, c: f64, procs: u32) -> Vec<(Origin, ProfileRow)> {
    let sms = [
        ("1g.10gb", 14.0),
        ("2g.20gb", 28.0),
        ("3g.40gb", 42.0),
        ("4g.40gb", 56.0),
        ("7g.80gb", 98.0),
    ];
    let mut rows = Vec::new();
    for (profile, s) in sms {
        for p in 1..=procs {
            for b in [1u32, 2, 4, 8, 16, 32] {
                let lat = a * (1.0 + 0.25 * (p - 1) as f64) + c * b as f64 * p as f64 / s;
                rows.push((
                    Origin::file("synthetic"),
                    ProfileRow {
                        model: model.into(),
                        gpu: "A100-80GB".into(),
                        profile: profile.into(),
                        batch: b,
                        latency_ms: lat,
                        latency_p99_ms: None,
                        procs: p,
                        throughput_qps: p as f64 * b as f64 * 1000.0 / lat,
                        method: Method::Imported,
                        neighbour_load: 0.0,
                    },
                ));
            }
        }
    }
    rows
}

/// One synthetic model's parameters.
#[derive(Debug, Clone)]
pub struct Synth {
    pub a: f64,
    pub c: f64,
    pub sla: f64,
    pub demand: Demand,
    pub batch: BatchDist,
}

/// A synthetic scenario on `gpus` A100-80GB GPUs.
pub fn synthetic(name: &str, gpus: u32, models: &[Synth]) -> Scenario {
    let mut rows = Vec::new();
    let mut specs = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let n = format!("m{i}");
        rows.extend(synthetic_rows(&n, m.a, m.c, 3));
        specs.push(ModelSpec {
            name: n.as_str().into(),
            sla: Millis(m.sla),
            demand: m.demand,
            batch: m.batch.clone(),
            profile_path: PathBuf::from("synthetic"),
        });
    }
    Scenario {
        name: name.into(),
        description: None,
        gpu: "A100-80GB".into(),
        gpu_count: gpus,
        batch_lookup: BatchLookup::Interpolate,
        max_procs: None,
        profiles: ProfileSet::from_rows(rows).expect("valid synthetic rows"),
        models: specs,
    }
}

/// `s` with each model's rate target scaled by the factors of `f`, in turn.
pub fn scaled(s: &Scenario, f: &[f64]) -> Scenario {
    let mut s = s.clone();
    for (m, f) in s.models.iter_mut().zip(f.iter().cycle()) {
        if let Demand::Rate(r) = m.demand {
            m.demand = Demand::Rate(r * f);
        }
    }
    s
}
