//! Small newtypes that carry units and meaning, so a latency can never be added to a rate
//! and a profile name can never be confused with a model name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A duration in milliseconds. Profiles, SLAs and simulated latencies all use it, so the
/// whole tool shares one unit and conversions happen only at the edges (CSV in seconds,
/// rates per second).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub f64);

impl Millis {
    /// The value in seconds, for rates expressed per second.
    pub fn seconds(self) -> f64 {
        self.0 / 1000.0
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} ms", self.0)
    }
}

/// A count of MIG compute slices (GPCs). A GPU has 7 (A30: 4); a `3g` profile uses 3.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Gpcs(pub u32);

impl fmt::Display for Gpcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}g", self.0)
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The name as written in files and on the command line.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A MIG profile name such as `3g.40gb`. Profiles are keyed by name, never by the
    /// nvidia-smi profile ID, because IDs differ between GPU families.
    ProfileName
);
name_type!(
    /// A GPU kind from the catalogue, such as `H100-80GB`.
    GpuName
);
name_type!(
    /// A served model, such as `resnet50`, as named in profile CSVs and scenarios.
    ModelName
);
