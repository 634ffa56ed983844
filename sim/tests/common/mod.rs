//! Tiny plans and scenarios built in code, so each test states exactly the server it needs.
#![allow(dead_code)]

use migopt_models::{
    Assignment, BatchDist, BatchLookup, Demand, GpuPlan, Millis, ModelSpec, Objective, Plan,
    PlanParams, ProfileSet, Scenario, SolveReport,
};
use std::path::{Path, PathBuf};

/// A scenario on H100-80GB with the given models (name, SLA ms, share, batch distribution)
/// and profile CSV rows (`model,profile,batch,latency_ms[,p99]`).
pub fn scenario(
    models: &[(&str, f64, f64, BatchDist)],
    rows: &str,
    lookup: BatchLookup,
) -> Scenario {
    let mut csv = String::from("model,gpu,profile,batch,latency_ms,latency_p99_ms\n");
    for line in rows.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let p99 = f.get(4).copied().unwrap_or("");
        csv.push_str(&format!(
            "{},H100-80GB,{},{},{},{}\n",
            f[0], f[1], f[2], f[3], p99
        ));
    }
    Scenario {
        name: "test".into(),
        description: None,
        gpu: "H100-80GB".into(),
        gpu_count: 8,
        batch_lookup: lookup,
        max_procs: None,
        models: models
            .iter()
            .map(|(n, sla, share, b)| ModelSpec {
                name: (*n).into(),
                sla: Millis(*sla),
                demand: Demand::Share(*share),
                batch: b.clone(),
                profile_path: PathBuf::from("test.csv"),
            })
            .collect(),
        profiles: ProfileSet::from_csv_str(&csv, Path::new("test.csv")).unwrap(),
    }
}

/// A batch-size table from (size, probability) pairs.
pub fn table(pmf: &[(u32, f64)]) -> BatchDist {
    BatchDist::Table {
        sizes: pmf.iter().map(|&(s, _)| s).collect(),
        probs: pmf.iter().map(|&(_, p)| p).collect(),
    }
}

/// An assignment shorthand: (profile, start, model, batch, procs).
pub fn a(profile: &str, start: u32, model: &str, batch: u32, procs: u32) -> Assignment {
    Assignment {
        profile: profile.into(),
        start,
        model: model.into(),
        batch,
        procs,
    }
}

pub fn plan(objective: Objective, gpus: Vec<Vec<Assignment>>) -> Plan {
    Plan {
        scenario: "test".into(),
        scenario_path: None,
        gpu: "H100-80GB".into(),
        objective_kind: objective,
        solver: "hand".into(),
        report: SolveReport::heuristic(0.0, 0.0),
        params: PlanParams::default(),
        gpus: gpus
            .into_iter()
            .enumerate()
            .map(|(i, layout)| GpuPlan {
                index: i as u32,
                layout,
            })
            .collect(),
        routes: vec![],
        model_rates: vec![],
    }
}

/// One 7g instance serving model `m` with a fixed service time `s` ms (batch 1 only), and
/// optionally a p99 so that jitter makes the service exponential with mean `s`.
pub fn single_server(s: f64, exponential: bool) -> (Plan, Scenario) {
    let rows = if exponential {
        // Median s·ln2 and p99 s·ln100: the shifted exponential with these is Exp(mean s).
        format!("m,7g.80gb,1,{},{}", s * 2f64.ln(), s * 100f64.ln())
    } else {
        format!("m,7g.80gb,1,{s}")
    };
    let sc = scenario(
        &[("m", 1e9, 1.0, BatchDist::Fixed { size: 1 })],
        &rows,
        BatchLookup::Interpolate,
    );
    let p = plan(Objective::MaxLoad, vec![vec![a("7g.80gb", 0, "m", 1, 1)]]);
    (p, sc)
}

/// Profiles of two models on every classic H100 profile, batch 1..32, latency growing with
/// batch and shrinking with instance size (roughly like ResNet-50 and BERT).
pub fn two_model_rows() -> String {
    let mut rows = String::new();
    let sizes = [
        ("1g.10gb", 1.0f64),
        ("2g.20gb", 2.0),
        ("3g.40gb", 3.0),
        ("4g.40gb", 4.0),
        ("7g.80gb", 7.0),
    ];
    for (model, base, per) in [("resnet", 2.0, 0.5), ("bert", 4.0, 1.2)] {
        for (p, g) in sizes {
            for b in [1u32, 2, 4, 8, 16, 32] {
                // Smaller instances are slower, sub-linearly in compute slices.
                let l = (base + per * b as f64) / g.powf(0.8);
                rows.push_str(&format!("{model},{p},{b},{l:.4},{:.4}\n", l * 1.3));
            }
        }
    }
    rows
}

/// 8 H100s cut heterogeneously into 28 instances serving two models.
pub fn eight_gpu_plan(objective: Objective, batch: u32) -> Plan {
    let layouts: [&[(&str, u32)]; 4] = [
        &[("4g.40gb", 0), ("2g.20gb", 4), ("1g.10gb", 6)],
        &[("3g.40gb", 0), ("3g.40gb", 4)],
        &[
            ("2g.20gb", 0),
            ("2g.20gb", 2),
            ("2g.20gb", 4),
            ("1g.10gb", 6),
        ],
        &[
            ("1g.10gb", 0),
            ("1g.10gb", 1),
            ("1g.10gb", 2),
            ("1g.10gb", 3),
            ("3g.40gb", 4),
        ],
    ];
    let mut gpus = Vec::new();
    for g in 0..8 {
        let l = layouts[g % 4];
        let model = |k: usize| if (g + k) % 2 == 0 { "resnet" } else { "bert" };
        gpus.push(
            l.iter()
                .enumerate()
                .map(|(k, &(p, s))| a(p, s, model(k), batch, 1))
                .collect(),
        );
    }
    plan(objective, gpus)
}

pub fn two_model_scenario(batch: BatchDist) -> Scenario {
    scenario(
        &[
            ("resnet", 15.0, 0.6, batch.clone()),
            ("bert", 30.0, 0.4, batch),
        ],
        &two_model_rows(),
        BatchLookup::Interpolate,
    )
}

/// The config of every property test here: `cases` cases on a fixed seed.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    // Fixed: the same seed gives the same result (the guide demands determinism).
    let mut config = Config::with_cases(cases);
    // Unless PROPTEST_RNG_SEED=<u64> (read into the default config) asks for another seed.
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(1);
    }
    config
}
