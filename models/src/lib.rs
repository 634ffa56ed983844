//! # migopt-models
//!
//! The vocabulary every migopt crate speaks: the MIG catalogue (one embedded data file),
//! layouts and their validator, latency profiles, scenarios, plans and reports. Plain data
//! with serde, so that plans and results round-trip through JSON between the planner, the
//! simulator and the user's own tools.

#![warn(missing_docs)]

pub mod catalogue;
pub mod error;
pub mod input;
pub mod json;
pub mod layout;
pub mod limits;
pub mod plan;
pub mod profile;
pub mod report;
pub mod scenario;
mod toml_key;
pub mod units;

pub use catalogue::{Catalogue, GpuSpec, ProfileClass, ProfileSpec};
pub use error::{Error, Origin, Result};
pub use layout::{enumerate_maximal, validate, Layout, LayoutRules, Placement};
pub use plan::{
    Assignment, GpuPlan, ModelRate, Objective, Plan, PlanParams, Route, SolveReport, SolveStatus,
};
pub use profile::{BatchLookup, Curve, CurveKey, LoadedCurve, Method, ProfileRow, ProfileSet};
pub use report::{
    interval_note, CapacityProbe, CapacityReport, Estimate, GpuReport, InstanceReport,
    LatencySummary, ModelReport, QueueSummary, SimReport,
};
pub use scenario::{BatchDist, Demand, ModelSpec, Scenario};
pub use units::{Gpcs, GpuName, Millis, ModelName, ProfileName};
