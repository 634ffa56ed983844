//! What the simulator reports. These are the output types of `migopt simulate` and
//! `migopt capacity`; they live here, beside plans, so that a plan, the simulation of that
//! plan and its capacity search all round-trip through JSON with one vocabulary, and so that
//! tools that only read results need not depend on the simulator.
//!
//! Every random quantity is an [`Estimate`]: the mean over independent Monte-Carlo
//! replications with a 95% Student-t confidence interval, because a single simulation run
//! of a queue near saturation can be far off and the reader must see how far.

use crate::units::{GpuName, ModelName, ProfileName};
use serde::{Deserialize, Serialize};

/// A quantity measured in each replication: the mean over replications and, when there are
/// at least two, a 95% confidence interval for it (Student t, `n − 1` degrees of freedom).
/// With one replication there is no honest interval, so the bounds are absent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Mean over the replications that measured the quantity.
    pub mean: f64,
    /// Lower end of the 95% confidence interval.
    pub ci_low: Option<f64>,
    /// Upper end of the 95% confidence interval.
    pub ci_high: Option<f64>,
    /// Replications that contributed (a model with no completed query in a replication has
    /// no latency there).
    pub n: u32,
}

impl Estimate {
    /// Half the width of the interval, when there is one: the "±" a table prints.
    pub fn half_width(&self) -> Option<f64> {
        match (self.ci_low, self.ci_high) {
            (Some(l), Some(h)) => Some((h - l) / 2.0),
            _ => None,
        }
    }

    /// `mean ± half-width` with `digits` decimals (just the mean without an interval): the
    /// one way tables print an estimate.
    pub fn fmt_pm(&self, digits: usize) -> String {
        match self.half_width() {
            Some(h) => format!("{:.*} ± {:.*}", digits, self.mean, digits, h),
            None => format!("{:.*}", digits, self.mean),
        }
    }

    /// The same estimate in other units (e.g. ×100 for percent).
    pub fn scaled(&self, factor: f64) -> Estimate {
        Estimate {
            mean: self.mean * factor,
            ci_low: self.ci_low.map(|v| v * factor),
            ci_high: self.ci_high.map(|v| v * factor),
            n: self.n,
        }
    }
}

/// What a text report says of the intervals of its estimates, made from `replications`
/// replications: a 95% interval needs two at least, so one replication says it has none
/// (and [`Estimate::fmt_pm`] prints no `±`).
pub fn interval_note(replications: usize) -> String {
    if replications < 2 {
        "one replication: no interval".into()
    } else {
        format!("95% intervals over {replications} replications")
    }
}

impl Estimate {
    /// Whether every replication measured the same value (an interval of width 0 from two
    /// replications or more).
    pub fn is_exact(&self) -> bool {
        // Identical values can leave a variance of rounding size, not exactly 0.
        self.n >= 2
            && self
                .half_width()
                .is_some_and(|h| h.abs() <= 1e-9 * self.mean.abs().max(1.0))
    }
}

impl SimReport {
    /// Whether the replications all came out the same: the overall throughput and
    /// violations and every model's latency percentiles and violations have intervals of
    /// width 0. A replayed trace does, unless service times jitter (`--jitter`) or the
    /// scheduler draws at random: such runs repeat one deterministic replay.
    pub fn replications_identical(&self) -> bool {
        let latency = |l: &LatencySummary| {
            [l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
                .iter()
                .all(Estimate::is_exact)
        };
        self.replications >= 2
            && self.throughput_qps.is_exact()
            && self.sla_violation_rate.is_exact()
            && self.models.iter().all(|m| {
                m.sla_violation_rate.is_exact() && m.latency_ms.as_ref().is_none_or(latency)
            })
    }

    /// What the text report says of its intervals: as [`interval_note`], or that the
    /// replications were identical and so give no interval.
    pub fn interval_note(&self) -> String {
        if self.replications_identical() {
            format!(
                "{} identical replications (a deterministic replay: no --jitter, no random scheduler): no interval",
                self.replications
            )
        } else {
            interval_note(self.replications as usize)
        }
    }
}

/// Latency of completed queries, arrival to completion, in milliseconds. Percentiles come
/// from a log-bucketed histogram; `SimReport::histogram_resolution` says how fine it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Mean (exact, not from the histogram).
    pub mean: Estimate,
    /// Median.
    pub p50: Estimate,
    /// 90th percentile.
    pub p90: Estimate,
    /// 95th percentile.
    pub p95: Estimate,
    /// 99th percentile: what SLAs are usually written against.
    pub p99: Estimate,
    /// 99.9th percentile.
    pub p999: Estimate,
    /// Largest latency seen (exact).
    pub max: Estimate,
}

/// Queue length as seen by arriving queries: how many queries were already waiting (not yet
/// started) in the queue the new query joined. By PASTA this is also the time-average queue
/// length for Poisson arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// Mean.
    pub mean: Estimate,
    /// Median.
    pub p50: Estimate,
    /// 90th percentile.
    pub p90: Estimate,
    /// 99th percentile.
    pub p99: Estimate,
    /// Largest.
    pub max: Estimate,
}

/// How one model fared: the numbers an operator checks against the model's SLA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// Model.
    pub model: ModelName,
    /// Its latency SLA, ms.
    pub sla_ms: f64,
    /// Offered query rate, when arrivals are Poisson (a trace has no nominal rate).
    pub offered_rate_qps: Option<f64>,
    /// Queries measured (after warm-up), summed over replications.
    pub queries: u64,
    /// Of those, queries served to completion, summed over replications.
    pub completed: u64,
    /// Of those, queries dropped because they could no longer meet the deadline
    /// (only with drop-late), summed over replications.
    pub dropped: u64,
    /// Latency of completed queries; absent if none completed.
    pub latency_ms: Option<LatencySummary>,
    /// Mean time from arrival to the start of service, ms.
    pub wait_ms_mean: Option<Estimate>,
    /// Fraction of measured queries that missed the SLA, dropped ones included: the number a
    /// capacity target with a violation budget is checked against.
    pub sla_violation_rate: Estimate,
    /// Fraction of measured queries dropped.
    pub drop_rate: Estimate,
    /// Completed queries per second, from the first measured arrival to the model's last
    /// measured completion: the offered rate while the server keeps up, its service rate
    /// when it does not.
    pub throughput_qps: Estimate,
    /// Completed samples (query batch sizes summed) per second, on the same span.
    pub samples_per_s: Estimate,
    /// Queue length seen by the model's arriving queries.
    pub queue_length: QueueSummary,
}

/// How busy one MIG instance was and how much it served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// GPU index.
    pub gpu: u32,
    /// MIG profile.
    pub profile: ProfileName,
    /// Placement start slot (identifies the instance on its GPU).
    pub start: u32,
    /// Model served.
    pub model: ModelName,
    /// The assignment's batch size (server-side batch, or largest query batch accepted).
    pub batch: u32,
    /// MPS processes.
    pub procs: u32,
    /// Busy fraction over the measurement window, per process (1.0 = every process busy all
    /// the time).
    pub utilisation: Estimate,
    /// Queries (requests) served in the measurement phase, summed over replications.
    pub queries: u64,
    /// Batches run in the measurement phase, summed over replications (equal to `queries` in
    /// query-batch mode).
    pub batches: u64,
    /// Queue length seen by queries dispatched to this instance; absent when queries wait in
    /// a shared per-model queue (FIFS), where the queue belongs to no instance.
    pub queue_length: Option<QueueSummary>,
}

/// How busy one GPU was, weighting each instance by its compute slices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuReport {
    /// GPU index.
    pub index: u32,
    /// Instances on it.
    pub instances: u32,
    /// Σ(compute slices × instance utilisation) ÷ the GPU's compute slices: idle slices and
    /// unused GPUs count as idle, so this is the share of the GPU's compute doing work.
    pub utilisation: Estimate,
}

/// The result of simulating a plan under a traffic pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// Scenario name.
    pub scenario: String,
    /// Planner that made the plan.
    pub solver: String,
    /// GPU kind.
    pub gpu: GpuName,
    /// Scheduler (`elsa`, `fifs`, `jsq`, `round-robin`, `random`).
    pub scheduler: String,
    /// Serving mode (`query-batches` or `dynamic-batching`).
    pub mode: String,
    /// Dynamic batching's longest wait for a batch to fill, ms.
    pub max_queue_delay_ms: Option<f64>,
    /// How arrivals were made (`poisson`, `poisson-per-model`, `trace`).
    pub arrivals: String,
    /// Total offered rate, when arrivals are Poisson.
    pub offered_rate_qps: Option<f64>,
    /// Independent replications.
    pub replications: u32,
    /// Queries generated per replication (warm-up included), averaged.
    pub queries_per_replication: f64,
    /// Fraction of each replication discarded as warm-up.
    pub warmup_fraction: f64,
    /// Master seed; replication `i` draws from a stream derived from (seed, i).
    pub seed: u64,
    /// Whether service times were drawn between the profile's p50 and p99.
    pub jitter: bool,
    /// Whether queries that could no longer meet their deadline were dropped.
    pub drop_late: bool,
    /// Length of the measurement window (first measured arrival to last arrival), seconds.
    pub window_s: Estimate,
    /// Relative width of a latency histogram bucket: percentiles are exact to within half of
    /// it (the bucket midpoint is reported).
    pub histogram_resolution: f64,
    /// Per model, in scenario order.
    pub models: Vec<ModelReport>,
    /// Per instance, in plan order (GPU, then slot).
    pub instances: Vec<InstanceReport>,
    /// Per GPU of the plan.
    pub gpus: Vec<GpuReport>,
    /// Fraction of all measured queries that missed their SLA or were dropped.
    pub sla_violation_rate: Estimate,
    /// Completed queries per second, all models.
    pub throughput_qps: Estimate,
}

/// One step of the capacity search in one replication.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CapacityProbe {
    /// Replication whose random stream was used.
    pub replication: u32,
    /// Total offered rate tried, queries/s.
    pub rate_qps: f64,
    /// Whether every model met the target at that rate.
    pub passed: bool,
    /// The worst model's ratio of the measured quantity to its limit (p99 ÷ SLA, or
    /// violation rate ÷ budget): at most 1 passes. Absent when unbounded (the p99 query was
    /// dropped, or the budget is zero and a query missed), since JSON has no infinity.
    pub worst_ratio: Option<f64>,
}

/// The largest load a plan carries while meeting its SLAs, found by simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// Scenario name.
    pub scenario: String,
    /// Planner that made the plan.
    pub solver: String,
    /// Scheduler used.
    pub scheduler: String,
    /// Serving mode used.
    pub mode: String,
    /// What had to hold: `p99 <= sla` or `violations <= <budget>`.
    pub target: String,
    /// Largest total rate (split by the scenario's shares) meeting the target: each
    /// replication bisects on its own random stream, and this is the mean with a 95%
    /// interval over replications.
    pub capacity_qps: Estimate,
    /// Each replication's capacity.
    pub per_replication_qps: Vec<f64>,
    /// Bisection stops when the bracket is narrower than this, queries/s.
    pub resolution_qps: f64,
    /// What the planner's fluid model promised: the largest total rate the plan's
    /// provisioned per-model rates carry at the searched shares (a max-load plan at its own
    /// mix: its objective). Absent when the plan says nothing usable.
    pub fluid_capacity_qps: Option<f64>,
    /// capacity ÷ fluid capacity: how much of the planner's promise survives queueing.
    pub ratio_to_fluid: Option<f64>,
    /// Every rate tried.
    pub probes: Vec<CapacityProbe>,
    /// A full simulation at the capacity found, so the per-model detail is at hand.
    pub at_capacity: Option<SimReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(m: f64) -> Estimate {
        Estimate {
            mean: m,
            ci_low: Some(m - 1.0),
            ci_high: Some(m + 1.0),
            n: 5,
        }
    }

    fn sim() -> SimReport {
        let q = QueueSummary {
            mean: est(1.0),
            p50: est(1.0),
            p90: est(2.0),
            p99: est(3.0),
            max: est(9.0),
        };
        SimReport {
            scenario: "s".into(),
            solver: "milp".into(),
            gpu: "H100-80GB".into(),
            scheduler: "elsa".into(),
            mode: "query-batches".into(),
            max_queue_delay_ms: None,
            arrivals: "poisson".into(),
            offered_rate_qps: Some(1000.0),
            replications: 5,
            queries_per_replication: 1e5,
            warmup_fraction: 0.1,
            seed: 7,
            jitter: false,
            drop_late: true,
            window_s: est(100.0),
            histogram_resolution: 1.0 / 256.0,
            models: vec![ModelReport {
                model: "m".into(),
                sla_ms: 20.0,
                offered_rate_qps: Some(1000.0),
                queries: 10,
                completed: 9,
                dropped: 1,
                latency_ms: Some(LatencySummary {
                    mean: est(3.0),
                    p50: est(2.0),
                    p90: est(5.0),
                    p95: est(6.0),
                    p99: est(9.5),
                    p999: est(12.0),
                    max: Estimate {
                        mean: 14.0,
                        ci_low: None,
                        ci_high: None,
                        n: 1,
                    },
                }),
                wait_ms_mean: Some(est(0.5)),
                sla_violation_rate: est(0.1),
                drop_rate: est(0.1),
                throughput_qps: est(999.0),
                samples_per_s: est(8000.0),
                queue_length: q,
            }],
            instances: vec![InstanceReport {
                gpu: 0,
                profile: "3g.40gb".into(),
                start: 4,
                model: "m".into(),
                batch: 8,
                procs: 1,
                utilisation: est(0.5),
                queries: 9,
                batches: 9,
                queue_length: Some(q),
            }],
            gpus: vec![GpuReport {
                index: 0,
                instances: 1,
                utilisation: est(0.2),
            }],
            sla_violation_rate: est(0.1),
            throughput_qps: est(999.0),
        }
    }

    #[test]
    fn sim_and_capacity_reports_round_trip_through_json() {
        let s = sim();
        let text = serde_json::to_string_pretty(&s).unwrap();
        let back: SimReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let c = CapacityReport {
            scenario: "s".into(),
            solver: "milp".into(),
            scheduler: "elsa".into(),
            mode: "query-batches".into(),
            target: "p99 <= sla".into(),
            capacity_qps: est(900.0),
            per_replication_qps: vec![899.0, 901.0],
            resolution_qps: 1.0,
            fluid_capacity_qps: Some(1000.0),
            ratio_to_fluid: Some(0.9),
            probes: vec![CapacityProbe {
                replication: 0,
                rate_qps: 800.0,
                passed: true,
                worst_ratio: Some(0.7),
            }],
            at_capacity: Some(s),
        };
        let text = serde_json::to_string(&c).unwrap();
        let back: CapacityReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn half_width_needs_an_interval() {
        assert_eq!(est(3.0).half_width(), Some(1.0));
        assert_eq!(
            Estimate {
                mean: 1.0,
                ci_low: None,
                ci_high: None,
                n: 1
            }
            .half_width(),
            None
        );
    }
}
