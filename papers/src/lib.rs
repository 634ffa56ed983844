//! # migopt-papers
//!
//! Reproductions of published MIG partitioning results on migopt's own planner, simulator
//! and data: every number in a `RESULTS.md` is written by the code here, never by hand.

#![warn(missing_docs)]

pub mod plot;
