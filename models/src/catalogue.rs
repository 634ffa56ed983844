//! The MIG catalogue: which GPUs exist, which profiles each can be cut into, and where each
//! profile may be placed. The facts live in one embedded data file
//! (`models/data/mig_catalogue.toml`), so adding a GPU is a data change, not a code change.

use crate::error::{Error, Result};
use crate::units::{Gpcs, GpuName, ProfileName};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The embedded catalogue text; see the file for its sources.
pub const CATALOGUE_TOML: &str = include_str!("../data/mig_catalogue.toml");

/// Which family of MIG profile this is. Layout enumeration uses only `Classic` profiles
/// unless asked for all, because those are what every MIG tool and paper uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileClass {
    /// 1g, 2g, 3g, 4g, 7g with the standard memory share.
    Classic,
    /// A 1g instance with two memory slots (e.g. `1g.20gb` on H100).
    DoubleMemory,
    /// A `+me` instance: owns the media engines; at most one per GPU.
    Media,
}

/// One MIG GPU-instance profile of one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Profile name, e.g. `3g.40gb`.
    pub name: ProfileName,
    /// Family of the profile.
    pub class: ProfileClass,
    /// Compute slices (GPCs) used.
    pub compute: u32,
    /// Memory slots occupied (consecutive, from the start).
    pub slots: u32,
    /// Valid NVML placement starts (memory-slot indices).
    pub starts: Vec<u32>,
    /// NVIDIA's per-GPU limit on instances of this profile.
    pub max_count: u32,
    /// Streaming multiprocessors in the instance.
    pub sms: u32,
    /// Memory of the instance, in GB (nominal or as reported by nvidia-smi).
    pub memory_gb: f64,
    /// Oldest driver branch that supports the profile, if newer than MIG's first.
    #[serde(default)]
    pub min_driver: Option<String>,
}

impl ProfileSpec {
    /// Compute slices as a typed count.
    pub fn gpcs(&self) -> Gpcs {
        Gpcs(self.compute)
    }

    /// Bit mask of the memory slots occupied when placed at `start`.
    pub fn slot_mask(&self, start: u32) -> u32 {
        ((1u32 << self.slots) - 1) << start
    }
}

/// A pair of profiles that drivers before R510 refuse to place together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForbiddenPair {
    /// One profile.
    pub a: ProfileName,
    /// The other.
    pub b: ProfileName,
}

/// One GPU kind and its MIG profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Catalogue name, e.g. `H100-80GB`.
    pub name: GpuName,
    /// Names the driver reports (`nvidia-smi --query-gpu=name`) that mean this GPU.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Compute slices of the whole GPU (7; A30: 4).
    pub compute_slices: u32,
    /// Memory slots of the whole GPU (8; A30: 4).
    pub memory_slots: u32,
    /// SMs of the whole GPU with MIG disabled.
    pub sms: u32,
    /// Memory of the whole GPU, GB.
    pub memory_gb: f64,
    /// Where the facts come from.
    pub source: String,
    /// How the placements are known: documented, measured, or inferred.
    pub placements: String,
    /// The GPU's profiles.
    #[serde(rename = "profile")]
    pub profiles: Vec<ProfileSpec>,
    /// Pairs refused by drivers before R510.
    #[serde(default, rename = "forbidden_before_r510")]
    pub forbidden_before_r510: Vec<ForbiddenPair>,
}

impl GpuSpec {
    /// Looks a profile up by name, with an error that lists the valid names.
    pub fn profile(&self, name: &str) -> Result<&ProfileSpec> {
        self.profiles
            .iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| Error::UnknownProfile {
                gpu: self.name.to_string(),
                profile: name.to_string(),
                known: self.profile_names().join(", "),
            })
    }

    /// Index of a profile in `profiles`, if it exists.
    pub fn profile_index(&self, name: &str) -> Option<usize> {
        self.profiles.iter().position(|p| p.name.as_str() == name)
    }

    /// All profile names, in catalogue order.
    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.iter().map(|p| p.name.to_string()).collect()
    }

    /// The classic profile with this many compute slices (`3` gives `3g.40gb` on H100).
    pub fn classic_by_compute(&self, compute: u32) -> Option<&ProfileSpec> {
        self.profiles
            .iter()
            .find(|p| p.class == ProfileClass::Classic && p.compute == compute)
    }

    /// Classic profiles, smallest first: the partition sizes planners choose among.
    pub fn classic_profiles(&self) -> Vec<&ProfileSpec> {
        let mut v: Vec<&ProfileSpec> = self
            .profiles
            .iter()
            .filter(|p| p.class == ProfileClass::Classic)
            .collect();
        v.sort_by_key(|p| (p.compute, p.slots));
        v
    }

    /// Bit mask of all memory slots.
    pub fn all_slots_mask(&self) -> u32 {
        (1u32 << self.memory_slots) - 1
    }
}

/// The whole catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// All GPU kinds.
    #[serde(rename = "gpu")]
    pub gpus: Vec<GpuSpec>,
}

impl Catalogue {
    /// Parses a catalogue from TOML text and checks its internal consistency.
    pub fn from_toml(text: &str) -> Result<Self> {
        let cat: Catalogue = toml::from_str(text).map_err(|e| Error::Syntax {
            origin: crate::error::Origin::file("mig_catalogue.toml"),
            message: e.to_string(),
        })?;
        cat.check()?;
        Ok(cat)
    }

    /// The embedded catalogue. Parsed once; it is immutable data.
    pub fn builtin() -> &'static Catalogue {
        static CAT: OnceLock<Catalogue> = OnceLock::new();
        CAT.get_or_init(|| {
            // The embedded file is part of the build and covered by tests; failing here is a
            // build defect, never a user error.
            Catalogue::from_toml(CATALOGUE_TOML).expect("embedded MIG catalogue is valid")
        })
    }

    /// Finds a GPU by catalogue name or driver alias (case-insensitive).
    pub fn gpu(&self, name: &str) -> Result<&GpuSpec> {
        let want = name.trim().to_ascii_lowercase();
        self.gpus
            .iter()
            .find(|g| {
                g.name.as_str().to_ascii_lowercase() == want
                    || g.aliases.iter().any(|a| a.to_ascii_lowercase() == want)
            })
            .ok_or_else(|| Error::UnknownGpu {
                name: name.to_string(),
                known: self
                    .gpus
                    .iter()
                    .map(|g| g.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn check(&self) -> Result<()> {
        let bad = |gpu: &GpuSpec, m: String| Error::InvalidPlacement {
            gpu: gpu.name.to_string(),
            message: m,
        };
        for g in &self.gpus {
            if g.memory_slots > 16 || g.memory_slots == 0 {
                return Err(bad(
                    g,
                    format!("memory_slots {} out of range", g.memory_slots),
                ));
            }
            for p in &g.profiles {
                if p.slots == 0 || p.compute == 0 || p.compute > g.compute_slices {
                    return Err(bad(g, format!("profile {} has bad size", p.name)));
                }
                for &s in &p.starts {
                    if s + p.slots > g.memory_slots {
                        return Err(bad(
                            g,
                            format!("profile {} start {} overruns the slots", p.name, s),
                        ));
                    }
                }
            }
            for f in &g.forbidden_before_r510 {
                g.profile(f.a.as_str())?;
                g.profile(f.b.as_str())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_five_gpus() {
        let c = Catalogue::builtin();
        let names: Vec<_> = c.gpus.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "A100-40GB",
                "A100-80GB",
                "H100-80GB",
                "H200-141GB",
                "A30-24GB"
            ]
        );
    }

    #[test]
    fn h100_facts_match_nvidia_smi() {
        let g = Catalogue::builtin().gpu("H100-80GB").unwrap();
        let sms: Vec<_> = [
            "1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb",
        ]
        .iter()
        .map(|n| g.profile(n).unwrap().sms)
        .collect();
        assert_eq!(sms, [16, 26, 32, 60, 64, 132]);
        assert_eq!(g.profile("3g.40gb").unwrap().starts, [0, 4]);
        assert_eq!(g.profile("1g.20gb").unwrap().starts, [0, 2, 4, 6]);
        assert_eq!(g.profile("1g.10gb+me").unwrap().max_count, 1);
    }

    #[test]
    fn lookup_by_alias_and_errors_name_the_choices() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.gpu("nvidia h100 80gb hbm3").unwrap().name.as_str(),
            "H100-80GB"
        );
        let e = c.gpu("V100").unwrap_err().to_string();
        assert!(
            e.contains("unknown GPU `V100`") && e.contains("H200-141GB"),
            "{e}"
        );
        let g = c.gpu("A30-24GB").unwrap();
        let e = g.profile("3g.20gb").unwrap_err().to_string();
        assert!(e.contains("2g.12gb"), "{e}");
    }

    #[test]
    fn classic_profiles_sorted_by_size() {
        let g = Catalogue::builtin().gpu("A100-80GB").unwrap();
        let names: Vec<_> = g
            .classic_profiles()
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]
        );
    }

    #[test]
    fn max_counts_are_one_or_the_natural_packing() {
        // Layout enumeration encodes max_count = 1 as conflict edges and relies on the
        // placements alone for the rest; this keeps that assumption honest.
        for g in &Catalogue::builtin().gpus {
            for p in &g.profiles {
                let natural = {
                    let mut used = 0u32;
                    let mut n = 0;
                    for &s in &p.starts {
                        let m = p.slot_mask(s);
                        if used & m == 0 {
                            used |= m;
                            n += 1;
                        }
                    }
                    n
                };
                assert!(
                    p.max_count == 1 || p.max_count == natural,
                    "{} {}",
                    g.name,
                    p.name
                );
            }
        }
    }
}
