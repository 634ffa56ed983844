//! The study's typed results: latency points, (partitioning, scheduler) cells, plans and
//! workloads, as measured and before anything is rendered.

use migopt_models::report::{CapacityReport, Estimate, SimReport};
use migopt_models::{Plan, Scenario};
use migopt_sim::SchedulerKind;
use std::collections::BTreeMap;

/// Latency and misses of the (one) model at one offered load.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub(super) rate: f64,
    pub(super) p50: Option<f64>,
    pub(super) p99: Option<f64>,
    /// Late or dropped, over all measured queries.
    pub(super) violations: f64,
    /// Dropped (with `drop_late`), over all measured queries.
    pub(super) drops: f64,
}

impl Point {
    /// The first model's latency and misses in `r`, measured at `rate`.
    pub(super) fn of(rate: f64, r: &SimReport) -> Option<Self> {
        let m = r.models.first()?;
        Some(Self {
            rate,
            p50: m.latency_ms.map(|l| l.p50.mean),
            p99: m.latency_ms.map(|l| l.p99.mean),
            violations: m.sla_violation_rate.mean,
            drops: m.drop_rate.mean,
        })
    }
}

/// Results of one (workload, partitioning, scheduler).
pub(super) struct Cell {
    pub(super) sched: SchedulerKind,
    pub(super) capacity: Option<CapacityReport>,
    /// At [`LOADS`](super::config::LOADS) × the plan's FIFS capacity.
    pub(super) loads: Vec<Option<Point>>,
    /// At 70% of the plan's FIFS capacity, dropping queries that can no longer make it.
    pub(super) dropping: Option<Point>,
    /// At the figure's loads, for the series drawn.
    pub(super) curve: Vec<Option<Point>>,
}

impl Cell {
    /// The simulated capacity at the SLA, if measured.
    pub(super) fn cap(&self) -> Option<&Estimate> {
        self.capacity.as_ref().map(|c| &c.capacity_qps)
    }
}

/// One partitioning of a workload and its cells.
pub(super) struct PlanRun {
    pub(super) name: &'static str,
    pub(super) plan: Result<Plan, String>,
    /// The plan's throughput bound ([`throughput_bound`](super::throughput_bound)).
    pub(super) bound: Option<f64>,
    /// The same LP with no batch on a size whose median service exceeds the SLA
    /// ([`sla_throughput_bound`](super::sla_throughput_bound)).
    pub(super) sla_bound: Option<f64>,
    /// Why the planner rejected it, when it is simulated as cut anyway.
    pub(super) rejected: Option<String>,
    pub(super) cells: Vec<Cell>,
}

impl PlanRun {
    /// The cell of scheduler `k`.
    pub(super) fn cell(&self, k: SchedulerKind) -> Option<&Cell> {
        self.cells.iter().find(|c| c.sched == k)
    }

    /// The simulated capacity of scheduler `k` on this plan.
    pub(super) fn cap(&self, k: SchedulerKind) -> Option<&Estimate> {
        self.cell(k).and_then(Cell::cap)
    }

    /// The plan's throughput bound: no dispatch rule carries more
    /// ([`throughput_bound`](super::throughput_bound)).
    pub(super) fn ceiling(&self) -> Option<f64> {
        self.bound
    }
}

/// Everything measured on one workload.
pub struct WorkloadRun {
    pub(super) id: String,
    pub(super) source: String,
    pub(super) description: String,
    pub(super) sla: f64,
    /// The MILP plan's fluid capacity: the x axis unit of the figure.
    pub(super) reference: f64,
    pub(super) plans: Vec<PlanRun>,
    /// The scenario, for the SLA-aware planner's queueing prediction.
    pub(super) scenario: Option<Scenario>,
}

impl WorkloadRun {
    /// The partitioning named `name`.
    pub(super) fn plan(&self, name: &str) -> Option<&PlanRun> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The homogeneous cut with the highest FIFS capacity, and that capacity.
    pub(super) fn best_homogeneous(&self) -> Option<(&PlanRun, f64)> {
        self.plans
            .iter()
            .filter(|p| p.name.starts_with("homogeneous"))
            .filter_map(|p| p.cap(SchedulerKind::Fifs).map(|c| (p, c.mean)))
            .fold(None, |a, b| match a {
                Some(a) if a.1 >= b.1 => Some(a),
                _ => Some(b),
            })
    }

    /// Whether the profiles come from real MIG slices.
    pub(super) fn real_mig(&self) -> bool {
        self.source.contains("real MIG")
    }
}

/// Instances and mean utilisation per profile at a simulated point.
pub(super) fn utilisation_by_profile(r: &SimReport) -> BTreeMap<String, (usize, f64)> {
    let mut m: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for i in &r.instances {
        let e = m.entry(i.profile.to_string()).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += i.utilisation.mean;
    }
    m.into_iter()
        .map(|(k, (n, u))| (k, (n, u / n as f64)))
        .collect()
}
