//! # migopt-profiles
//!
//! Latency data for migopt: importers for public profile sets (ParvaGPU), and the profiles
//! measured on real GPUs that ship as migopt's default data (see `profiles/README.md` and
//! `profiles/measure.py`, the profiler that made them).

#![warn(missing_docs)]

pub mod builtin;
pub mod parvagpu;

pub use builtin::{default_scenario, h100_profiles};
