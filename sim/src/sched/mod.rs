//! # Schedulers: one home for every dispatch rule
//!
//! Each scheduler is one **decision function** in [`rules`]: it gets the query and, for every
//! place the query may go, a [`Candidate`] that says only what a real dispatcher knows: the
//! instance's size, the median service time of this query there, and when the instance is
//! estimated to be able to start it. The function returns the instance. The same functions
//! are called by
//!
//! * the event-free engine (query batches without jitter), which keeps each group of
//!   identical instances in a tournament tree and passes one candidate per group, so a
//!   decision costs O(sizes) plus an O(log n) tree update;
//! * the event-driven engine (dynamic batching, and query batches with `--jitter`), which
//!   keeps a [`DispatchState`] built only from what it observed;
//! * a real server: [`Dispatcher`] wraps a plan, a scenario and a [`DispatchState`]; the
//!   server reports what happens ([`Dispatcher::dispatched`], [`Dispatcher::started`],
//!   [`Dispatcher::finished`]) and asks [`Dispatcher::pick`] where each query goes.
//!
//! ## What the estimates are built from
//!
//! Knowledge, never the future: the medians L(size, batch, procs) of the profile for queued
//! work, and for running work its median minus the time it has already run (never below
//! zero). A query's estimated start on an instance is when its first process is estimated to
//! free up, plus the queued work spread over its processes. Without `--jitter` every service
//! time *is* its median, so these estimates are exact; with `--jitter` they are what a
//! dispatcher could know, and the simulator reads the already-drawn service times only when
//! asked to (`SimConfig::oracle_estimates`).
//!
//! FIFS is not a dispatch-at-arrival rule: queries wait in a central queue per (model, set of
//! instances able to run them) and an instance that goes idle takes the oldest. Its queues
//! and picks are one piece, `fifs::Queues`, that the event-driven engine runs on and that
//! [`Fifs`] wraps for a real server.

mod fifs;
pub mod rules;
mod shares;
mod state;

pub(crate) use fifs::{Queues, Topology, Waits};
pub(crate) use shares::ShareTables;

pub use fifs::Fifs;
pub use rules::{
    earliest_finish, elsa_greedy, elsa_margin, elsa_plan, elsa_protect, elsa_start, jsq, random,
    round_robin, MARGIN_ALPHA, START_HORIZON, START_SLACK,
};
pub use state::{DispatchState, Dispatcher, InstanceInfo, PLAN_ALPHA, PLAN_SLACK};

use migopt_models::Error;
use serde::{Deserialize, Serialize};

/// How a query is sent to an instance. All schedulers choose only among instances assigned
/// to the query's model that can run its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerKind {
    /// ELSA, the elastic scheduler: migopt's best elastic rule, measured in
    /// `papers/paris-elsa` against the variants below. It runs `elsa-start`
    /// ([`SchedulerKind::elsa_rule`]).
    Elsa,
    /// ELSA as first reconstructed from the paper's description (Kim, Choi and Rhu, DAC
    /// 2022): the SMALLEST instance size whose estimated finish meets the deadline
    /// (arrival + SLA), ties to the earliest finish; if none meets it, the earliest finish
    /// overall.
    /// Kept so that the reconstruction stays reproducible ([`rules::elsa_greedy`]).
    ElsaGreedy,
    /// ELSA with a deadline margin: the smallest size whose estimated finish is within
    /// arrival + α·SLA, α = [`MARGIN_ALPHA`]; otherwise the earliest finish
    /// ([`rules::elsa_margin`]).
    ElsaMargin,
    /// ELSA that protects the queries with fewer eligible sizes: a size that some batch
    /// class can run on alone is taken by other queries only when no unprotected size meets
    /// the margin deadline ([`rules::elsa_protect`]).
    ElsaProtect,
    /// Plan-aware ELSA: the plan's routes (the share of each (model, batch) class per size)
    /// are target shares; the query goes to the size furthest behind its share among those
    /// that meet the deadline and cost it little latency (see [`PLAN_SLACK`]), within it the
    /// earliest finish; the earliest finish when none does ([`rules::elsa_plan`]). Classes
    /// without a route (min-gpus plans, hand-cut plans) share in proportion to compute.
    ElsaPlan,
    /// Late-binding ELSA: FIFS's choice made at arrival (the earliest estimated start, ties
    /// to the instance idle longest) among the sizes whose estimated finish is within
    /// arrival + h·SLA, h = [`START_HORIZON`], and within max(0, σ·SLA − the query's quickest
    /// service) of its earliest finish, σ = [`START_SLACK`]; the earliest finish when none
    /// is ([`rules::elsa_start`]). The largest batches take the earliest finish.
    ElsaStart,
    /// First idle, first served: one central FIFO queue per model; an instance that goes
    /// idle takes the oldest query it can run. Work-conserving baseline of the ELSA paper.
    Fifs,
    /// Join the instance with the least estimated backlog (time until the query could
    /// start), ties to the earliest finish.
    Jsq,
    /// The model's instances in turn.
    RoundRobin,
    /// A uniformly random instance of the model.
    Random,
}

/// The elastic rule a scheduler runs, after resolving `elsa` to its variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Greedy,
    Margin,
    Protect,
    Plan,
    Start,
    Jsq,
    RoundRobin,
    Random,
    Fifs,
}

impl SchedulerKind {
    /// Every scheduler, for help texts and comparisons.
    pub const ALL: [SchedulerKind; 10] = [
        SchedulerKind::Elsa,
        SchedulerKind::ElsaGreedy,
        SchedulerKind::ElsaMargin,
        SchedulerKind::ElsaProtect,
        SchedulerKind::ElsaPlan,
        SchedulerKind::ElsaStart,
        SchedulerKind::Fifs,
        SchedulerKind::Jsq,
        SchedulerKind::RoundRobin,
        SchedulerKind::Random,
    ];

    /// The ELSA variants, `elsa` last.
    pub const ELSA_FAMILY: [SchedulerKind; 6] = [
        SchedulerKind::ElsaGreedy,
        SchedulerKind::ElsaMargin,
        SchedulerKind::ElsaProtect,
        SchedulerKind::ElsaPlan,
        SchedulerKind::ElsaStart,
        SchedulerKind::Elsa,
    ];

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::Elsa => "elsa",
            SchedulerKind::ElsaGreedy => "elsa-greedy",
            SchedulerKind::ElsaMargin => "elsa-margin",
            SchedulerKind::ElsaProtect => "elsa-protect",
            SchedulerKind::ElsaPlan => "elsa-plan",
            SchedulerKind::ElsaStart => "elsa-start",
            SchedulerKind::Fifs => "fifs",
            SchedulerKind::Jsq => "jsq",
            SchedulerKind::RoundRobin => "round-robin",
            SchedulerKind::Random => "random",
        }
    }

    /// One line for help texts.
    pub fn summary(self) -> &'static str {
        match self {
            SchedulerKind::Elsa => "elastic: migopt's best ELSA variant, elsa-start",
            SchedulerKind::ElsaGreedy => {
                "elastic, as first reconstructed: smallest size that meets the deadline"
            }
            SchedulerKind::ElsaMargin => "elastic: smallest size that finishes within half the SLA",
            SchedulerKind::ElsaProtect => {
                "elastic: keeps off sizes that some batch sizes can run on alone"
            }
            SchedulerKind::ElsaPlan => {
                "elastic: the plan's routes as target shares, with a deadline fallback"
            }
            SchedulerKind::ElsaStart => {
                "elastic: FIFS's earliest start, but the largest batches take the earliest finish"
            }
            SchedulerKind::Fifs => "first idle, first served: a central queue",
            SchedulerKind::Jsq => "join the shortest estimated backlog",
            SchedulerKind::RoundRobin => "instances in turn",
            SchedulerKind::Random => "a uniformly random instance",
        }
    }

    /// The variant `elsa` runs.
    pub fn elsa_rule() -> SchedulerKind {
        SchedulerKind::ElsaStart
    }

    pub(crate) fn rule(self) -> Rule {
        match self {
            SchedulerKind::Elsa => Self::elsa_rule().rule(),
            SchedulerKind::ElsaGreedy => Rule::Greedy,
            SchedulerKind::ElsaMargin => Rule::Margin,
            SchedulerKind::ElsaProtect => Rule::Protect,
            SchedulerKind::ElsaPlan => Rule::Plan,
            SchedulerKind::ElsaStart => Rule::Start,
            SchedulerKind::Fifs => Rule::Fifs,
            SchedulerKind::Jsq => Rule::Jsq,
            SchedulerKind::RoundRobin => Rule::RoundRobin,
            SchedulerKind::Random => Rule::Random,
        }
    }

    /// Whether queries are sent to an instance when they arrive (every rule but FIFS).
    pub fn dispatches_at_arrival(self) -> bool {
        self != SchedulerKind::Fifs
    }
}

impl std::fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SchedulerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let want = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == want || (want == "rr" && *k == SchedulerKind::RoundRobin))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown scheduler `{s}` (known: {})",
                    Self::ALL.map(|k| k.as_str()).join(", ")
                ))
            })
    }
}

/// A query to place, as the dispatcher sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Query {
    /// Model index (scenario order).
    pub model: u32,
    /// Batch size (query batches) or request size (dynamic batching), samples.
    pub batch: u32,
    /// Arrival time, ms.
    pub arrival_ms: f64,
    /// The model's SLA, ms: the deadline is `arrival_ms + sla_ms`.
    pub sla_ms: f64,
}

impl Query {
    /// Arrival + SLA, ms.
    #[inline(always)]
    pub fn deadline(&self) -> f64 {
        self.arrival_ms + self.sla_ms
    }
}

/// One place a query may go, as the dispatcher sees it: an instance (or the instance of a
/// group of identical ones that is estimated to free up first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Instance index (the plan's instance order, as [`migopt_models::Plan::instances`]).
    pub instance: u32,
    /// Size: compute slices of the instance's MIG profile.
    pub compute: u32,
    /// Estimated time at which the instance could start the query, ms (never before now).
    pub start_ms: f64,
    /// Estimated time at which the instance frees up, ms: `start_ms` without the clamp to
    /// now, so for an idle instance the (estimated) end of its last work, when it went idle
    /// (0 if it never ran). Late-binding rules prefer the instance idle longest, as FIFS.
    pub free_ms: f64,
    /// Median service time of the query there, ms.
    pub service_ms: f64,
    /// Plan-aware rules: how far the candidate's size is behind its target share of the
    /// query's (model, batch) class, in queries (positive: behind). Zero for other rules.
    pub deficit: f64,
    /// Protecting rules: the size is the only one some batch class of the model may run on.
    pub protected: bool,
}

impl Candidate {
    /// Estimated finish, ms.
    #[inline(always)]
    pub fn finish_ms(&self) -> f64 {
        self.start_ms + self.service_ms
    }
}
