//! The data migopt ships: H100-80GB latency profiles measured on a real H100 (see
//! `profiles/README.md`), embedded in the binary so `migopt plan` and `migopt simulate`
//! work with no arguments, anywhere.

use migopt_models::error::{Error, Result};
use migopt_models::{ProfileSet, Scenario};
use std::path::Path;

/// Shipped profile files, by file name, with their contents.
pub const H100_80GB: &[(&str, &str)] = &[
    ("resnet50.csv", include_str!("../h100-80gb/resnet50.csv")),
    (
        "mobilenetv2.csv",
        include_str!("../h100-80gb/mobilenetv2.csv"),
    ),
    ("bert-base.csv", include_str!("../h100-80gb/bert-base.csv")),
    ("vit-b16.csv", include_str!("../h100-80gb/vit-b16.csv")),
];

/// The default scenario's text (`profiles/h100-80gb/default.toml`).
pub const DEFAULT_SCENARIO: &str = include_str!("../h100-80gb/default.toml");

/// Where embedded files claim to live, so messages point at the file in the repository.
pub const EMBEDDED_DIR: &str = "profiles/h100-80gb";

/// Reads an embedded file by the name a scenario gives it.
fn read_embedded(p: &Path) -> Result<String> {
    let name = p
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    H100_80GB
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
        .ok_or_else(|| Error::Invalid(format!("{}: not a shipped profile file", p.display())))
}

/// The shipped default scenario, with its embedded profiles.
pub fn default_scenario() -> Result<Scenario> {
    Scenario::parse(
        DEFAULT_SCENARIO,
        &Path::new(EMBEDDED_DIR).join("default.toml"),
        &mut read_embedded,
    )
}

/// Every shipped H100-80GB curve, all models.
pub fn h100_profiles() -> Result<ProfileSet> {
    let mut set: Option<ProfileSet> = None;
    for (name, text) in H100_80GB {
        let s = ProfileSet::from_csv_str(text, &Path::new(EMBEDDED_DIR).join(name))?;
        match set.as_mut() {
            None => set = Some(s),
            Some(x) => x.merge(s)?,
        }
    }
    set.ok_or_else(|| Error::Invalid("no shipped profiles".into()))
}

/// The H100 fleet of the reconfiguration study (`papers/reconfiguration`): the four shipped
/// H100-80GB models with rate targets at the day's peak. Profiles are named as the shipped
/// files ([`H100_80GB`]), to be read beside [`EMBEDDED_DIR`] or copied next to the scenario.
/// Batches the profiles did not measure run as the next measured size up (`batch_lookup =
/// "pad"`, what a server with captured batch sizes does).
pub const H100_FLEET: &str = r#"
name = "h100-fleet"
description = "The four shipped H100-80GB models (measured on the lent H100) with rate targets at the day's peak"
[gpu]
kind = "H100-80GB"
count = 1000
[options]
batch_lookup = "pad"
[[model]]
name = "resnet50"
profile = "resnet50.csv"
sla_ms = 40.0
rate_qps = 60000.0
[[model]]
name = "bert-base"
profile = "bert-base.csv"
sla_ms = 40.0
rate_qps = 20000.0
[[model]]
name = "mobilenetv2"
profile = "mobilenetv2.csv"
sla_ms = 20.0
rate_qps = 60000.0
[[model]]
name = "vit-b16"
profile = "vit-b16.csv"
sla_ms = 60.0
rate_qps = 8000.0
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use migopt_models::{BatchLookup, Method};

    #[test]
    fn shipped_profiles_are_complete_measurements() {
        let set = h100_profiles().unwrap();
        assert_eq!(set.gpu.as_str(), "H100-80GB");
        let models: Vec<String> = set.models().iter().map(|m| m.to_string()).collect();
        assert_eq!(models, ["bert-base", "mobilenetv2", "resnet50", "vit-b16"]);
        for m in &models {
            assert_eq!(set.methods[m.as_str()], Method::GreenContext);
            assert_eq!(set.profiles_of(m).len(), 6, "{m}");
            // Bigger slices are faster at large batches: the data is physical, not noise.
            let small = set
                .curve(m, "1g.10gb", 1)
                .unwrap()
                .latency(64, BatchLookup::Exact)
                .unwrap();
            let big = set
                .curve(m, "7g.80gb", 1)
                .unwrap()
                .latency(64, BatchLookup::Exact)
                .unwrap();
            assert!(small.0 > 2.5 * big.0, "{m}: {small} vs {big}");
        }
    }

    #[test]
    fn default_scenario_loads() {
        let s = default_scenario().unwrap();
        assert_eq!(s.gpu_count, 8);
        assert_eq!(s.models.len(), 2);
        assert_eq!(s.shares(), vec![0.5, 0.5]);
        // The disk copy parses the same way (paths relative to the file).
        let disk =
            Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("h100-80gb/default.toml"))
                .unwrap();
        assert_eq!(
            disk.models.iter().map(|m| &m.name).collect::<Vec<_>>(),
            s.models.iter().map(|m| &m.name).collect::<Vec<_>>()
        );
        assert_eq!(disk.profiles.curves, s.profiles.curves);
    }
}
