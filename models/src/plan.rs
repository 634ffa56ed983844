//! Partition plans: how every GPU is cut, which model each instance serves, and how good
//! the plan is known to be. Planners write plans; the simulator, the exporters and the CLI
//! read them. The JSON form is the contract between them.

use crate::catalogue::{Catalogue, GpuSpec};
use crate::error::{Error, Origin, Result};
pub use crate::json::json_line;
use crate::layout::{validate, Layout, LayoutRules, Placement};
use crate::limits::{MAX_BATCH, MAX_GPUS, MAX_PROCS, MAX_RATE_QPS};
use crate::scenario::Scenario;
use crate::units::{GpuName, ModelName, ProfileName};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// What a plan optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Largest total query rate a fixed server carries (the PARIS question). Queries carry
    /// their own batch; instances run them as they come.
    MaxLoad,
    /// Fewest GPUs that meet every model's rate and SLO (the ParvaGPU question). Requests are
    /// single; instances batch them server-side.
    MinGpus,
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SolveStatus {
    /// Proven optimal (gap 0 within tolerance).
    Optimal,
    /// Stopped at the requested MIP gap with a feasible plan.
    GapLimit,
    /// Stopped at the time or node limit with a feasible plan.
    TimeLimit,
    /// No plan exists.
    Infeasible,
    /// A heuristic's plan: no optimality claim.
    Heuristic,
}

impl SolveStatus {
    /// Lower-case name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            SolveStatus::Optimal => "optimal",
            SolveStatus::GapLimit => "gap-limit",
            SolveStatus::TimeLimit => "time-limit",
            SolveStatus::Infeasible => "infeasible",
            SolveStatus::Heuristic => "heuristic",
        }
    }
}

/// What is known about a plan's quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolveReport {
    /// How the solve ended.
    pub status: SolveStatus,
    /// Objective value: total queries/s for max-load, GPUs used for min-gpus.
    pub objective: f64,
    /// Best proven bound on the objective (MILP only).
    pub bound: Option<f64>,
    /// Relative gap between objective and bound, as a fraction (MILP only).
    pub gap: Option<f64>,
    /// Bound from the LP relaxation (MILP only).
    pub lp_bound: Option<f64>,
    /// Wall time of the solve.
    pub solve_seconds: f64,
    /// Secondary objective for min-gpus: compute slices (GPCs) used.
    #[serde(default)]
    pub gpcs_used: Option<u32>,
}

impl SolveReport {
    /// The report of a heuristic: an objective and a time, no optimality claim.
    pub fn heuristic(objective: f64, solve_seconds: f64) -> Self {
        Self {
            status: SolveStatus::Heuristic,
            objective,
            bound: None,
            gap: None,
            lp_bound: None,
            solve_seconds,
            gpcs_used: None,
        }
    }
}

/// One GPU instance of a plan and what runs on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// MIG profile.
    pub profile: ProfileName,
    /// NVML placement start (memory slot).
    pub start: u32,
    /// Model served.
    pub model: ModelName,
    /// Batch size: for min-gpus the server-side batch the instance runs; for max-load the
    /// largest query batch routed to it.
    #[serde(deserialize_with = "batch_in_range")]
    pub batch: u32,
    /// MPS processes on the instance (each runs `batch`).
    #[serde(deserialize_with = "procs_in_range")]
    pub procs: u32,
}

/// A whole number in 1..=max, rejected while the JSON is parsed so the message carries
/// the line and column.
fn in_range<'de, D: Deserializer<'de>>(d: D, what: &str, max: u32) -> Result<u32, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 || v > max as u64 {
        return Err(serde::de::Error::custom(format!(
            "{what} {v} must be between 1 and {max}"
        )));
    }
    Ok(v as u32)
}

fn batch_in_range<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, "batch", MAX_BATCH)
}

fn procs_in_range<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    in_range(d, "procs", MAX_PROCS)
}

/// Adds the line to a field error of [`Plan::check_against`], found in the plan's text.
pub fn locate(e: Error, text: &str) -> Error {
    match e {
        Error::Field {
            origin: Origin { file, line: None },
            field,
            message,
        } => Error::Field {
            origin: Origin {
                line: json_line(text, &field),
                file,
            },
            field,
            message,
        },
        other => other,
    }
}

/// One GPU of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPlan {
    /// Device index (0-based) in the server.
    pub index: u32,
    /// Its instances, by start slot.
    pub layout: Vec<Assignment>,
}

impl GpuPlan {
    /// The GPU's instances as catalogue placements (profile and start slot).
    pub fn placements(&self) -> Vec<Placement> {
        self.layout
            .iter()
            .map(|a| Placement::new(a.profile.clone(), a.start))
            .collect()
    }
}

/// For max-load plans: the fraction of a (model, batch) query class sent to one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Model.
    pub model: ModelName,
    /// Query batch size.
    #[serde(deserialize_with = "batch_in_range")]
    pub batch: u32,
    /// Instance profile the class goes to.
    pub profile: ProfileName,
    /// Fraction of the class's queries (fractions of a class sum to 1).
    pub fraction: f64,
}

/// Parameters of the fluid model the plan was made under.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanParams {
    /// Highest planned utilisation of an instance (ρ).
    pub max_utilisation: f64,
    /// Max-load: a class may use a size only if L(size, batch) ≤ β·SLA.
    pub sla_fraction: f64,
    /// Min-gpus: an instance is feasible if its batch latency < slo_factor·SLO.
    pub slo_factor: f64,
    /// Min-gpus: each instance is planned to carry at most this fraction of its measured
    /// throughput. 1.0 is ParvaGPU's rule (throughput ≥ rate); below 1 leaves queueing
    /// headroom, which the simulation shows server-side batching needs near saturation.
    #[serde(default = "one")]
    pub rate_headroom: f64,
    /// Min-gpus: the most MPS processes an instance may run (ParvaGPU's README caps them at
    /// 3); `None`: as many as the profiles measure. The scenario's `options.max_procs`
    /// applies too (the smaller wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_procs: Option<u32>,
}

fn one() -> f64 {
    1.0
}

impl Default for PlanParams {
    fn default() -> Self {
        Self {
            max_utilisation: 0.8,
            sla_fraction: 0.5,
            slo_factor: 0.45,
            rate_headroom: 1.0,
            max_procs: None,
        }
    }
}

/// Per-model rate the plan provisions: for max-load λ·share; for min-gpus the capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRate {
    /// Model.
    pub model: ModelName,
    /// Queries per second.
    pub rate_qps: f64,
}

/// A complete partition plan. Its JSON form is read through [`PlanFile`], which refuses
/// unknown keys at every level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "PlanFile")]
pub struct Plan {
    /// Scenario it was made for.
    pub scenario: String,
    /// Path of the scenario file, when it came from one, so `migopt simulate plan.json`
    /// can find the profiles and traffic the plan was made for: relative to the plan
    /// file's folder in a plan written by `--out` (plans written before recorded it
    /// relative to the folder `migopt plan` ran in).
    pub scenario_path: Option<String>,
    /// GPU kind.
    pub gpu: GpuName,
    /// What was optimised.
    pub objective_kind: Objective,
    /// Which planner made it (`milp`, `paris`, `parvagpu`, `homogeneous-3g`, ...).
    pub solver: String,
    /// Quality report (status, objective, bound, gap, solve_seconds, ...).
    #[serde(flatten)]
    pub report: SolveReport,
    /// Fluid-model parameters.
    pub params: PlanParams,
    /// The GPUs, including unused ones (empty layout) for max-load.
    pub gpus: Vec<GpuPlan>,
    /// Max-load routing of query classes to profiles (empty for min-gpus).
    pub routes: Vec<Route>,
    /// Per-model provisioned rate.
    pub model_rates: Vec<ModelRate>,
}

/// A plan's JSON as read: [`Plan`]'s keys with its report's inline (serde cannot refuse
/// unknown keys beside a flattened struct), and the keys `migopt plan --verify --json` adds
/// to the plan it prints (`migopt_verify::Checked`), which users save and read back as a
/// plan: accepted at the top level and ignored. Any other key is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The keys of the check are read only to be ignored.
struct PlanFile {
    scenario: String,
    #[serde(default)]
    scenario_path: Option<String>,
    gpu: GpuName,
    objective_kind: Objective,
    solver: String,
    status: SolveStatus,
    objective: f64,
    bound: Option<f64>,
    gap: Option<f64>,
    lp_bound: Option<f64>,
    solve_seconds: f64,
    #[serde(default)]
    gpcs_used: Option<u32>,
    params: PlanParams,
    gpus: Vec<GpuPlan>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    model_rates: Vec<ModelRate>,
    // The check `plan --verify --json` prints beside the plan: the one list of these keys.
    #[serde(default)]
    predicted_capacity_qps: IgnoredAny,
    #[serde(default)]
    simulated_capacity_qps: IgnoredAny,
    #[serde(default)]
    verified: IgnoredAny,
    #[serde(default)]
    models: IgnoredAny,
    #[serde(default)]
    scheduler: IgnoredAny,
    #[serde(default)]
    rounds: IgnoredAny,
}

impl From<PlanFile> for Plan {
    fn from(f: PlanFile) -> Self {
        Plan {
            scenario: f.scenario,
            scenario_path: f.scenario_path,
            gpu: f.gpu,
            objective_kind: f.objective_kind,
            solver: f.solver,
            report: SolveReport {
                status: f.status,
                objective: f.objective,
                bound: f.bound,
                gap: f.gap,
                lp_bound: f.lp_bound,
                solve_seconds: f.solve_seconds,
                gpcs_used: f.gpcs_used,
            },
            params: f.params,
            gpus: f.gpus,
            routes: f.routes,
            model_rates: f.model_rates,
        }
    }
}

impl Plan {
    /// The catalogue entry of the plan's GPU.
    pub fn gpu_spec(&self) -> Result<&'static GpuSpec> {
        Catalogue::builtin().gpu(self.gpu.as_str())
    }

    /// Checks every GPU's instances against the catalogue's placement rules.
    pub fn validate(&self, rules: LayoutRules) -> Result<()> {
        let gpu = self.gpu_spec()?;
        for g in &self.gpus {
            validate(gpu, &g.placements(), rules).map_err(|e| match e {
                Error::InvalidPlacement { gpu, message } => Error::InvalidPlacement {
                    gpu,
                    message: format!("GPU {}: {message}", g.index),
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// Reads a plan's JSON text (a UTF-8 byte-order mark is accepted); `path` names it in
    /// messages, with the line of the problem.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        crate::json::parse(text).map_err(|r| not_a_plan(text, path, &r))
    }

    /// Checks a plan read from `path` against the scenario it serves: its GPU kind and
    /// count, GPU indices, every instance's placement, model and curve, and its routes.
    /// Every message names the file and the JSON field.
    pub fn check_against(&self, path: &Path, s: &Scenario) -> Result<()> {
        let bad = |field: String, message: String| Error::Field {
            origin: Origin::file(path),
            field,
            message,
        };
        self.check_gpus(s, &bad)?;
        self.check_layouts(&bad)?;
        self.check_instances(s, &bad)?;
        self.check_routes(s, &bad)?;
        self.check_model_rates(s, &bad)?;
        self.check_objective(&bad)
    }

    /// The plan's GPU kind is the scenario's, its GPU count within bounds (the scenario's
    /// for max-load), and its GPU indices distinct and below the count.
    fn check_gpus(&self, s: &Scenario, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        if self.gpu != s.gpu {
            return Err(bad(
                "gpu".into(),
                format!(
                    "the plan is for {} but scenario `{}` is for {}",
                    self.gpu, s.name, s.gpu
                ),
            ));
        }
        let n = self.gpus.len();
        if n > MAX_GPUS as usize {
            return Err(bad(
                "gpus".into(),
                format!("{n} GPUs, above the limit of {MAX_GPUS}"),
            ));
        }
        // A max-load plan lists the whole server; a re-plan that swapped a GPU's new cut onto
        // a spare lists one more slot per spare (the GPU it freed idles), never more in use.
        let used = self.gpus.iter().filter(|g| !g.layout.is_empty()).count();
        if self.objective_kind == Objective::MaxLoad && n < s.gpu_count as usize {
            return Err(bad(
                "gpus".into(),
                format!(
                    "{n} GPUs, but scenario `{}` has {} (gpu.count)",
                    s.name, s.gpu_count
                ),
            ));
        }
        if self.objective_kind == Objective::MaxLoad && used > s.gpu_count as usize {
            return Err(bad(
                "gpus".into(),
                format!(
                    "{used} GPUs in use, but scenario `{}` has {} (gpu.count)",
                    s.name, s.gpu_count
                ),
            ));
        }
        let mut seen = vec![false; n];
        for (i, g) in self.gpus.iter().enumerate() {
            let slot = seen.get_mut(g.index as usize).filter(|x| !**x);
            let Some(slot) = slot else {
                return Err(bad(
                    format!("gpus[{i}].index"),
                    format!("{} is repeated or not below the GPU count {n}", g.index),
                ));
            };
            *slot = true;
        }
        Ok(())
    }

    /// Every GPU's instances obey the catalogue's placement rules (all profiles allowed).
    fn check_layouts(&self, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        let rules = LayoutRules {
            all_profiles: true,
            pre_r510: false,
        };
        for (i, g) in self.gpus.iter().enumerate() {
            validate(self.gpu_spec()?, &g.placements(), rules)
                .map_err(|e| bad(format!("gpus[{i}].layout"), e.to_string()))?;
        }
        Ok(())
    }

    /// Every route names a model of the scenario and carries a fraction in 0..=1.
    fn check_routes(&self, s: &Scenario, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        for (i, r) in self.routes.iter().enumerate() {
            if s.model(r.model.as_str()).is_none() {
                return Err(bad(
                    format!("routes[{i}].model"),
                    format!("`{}` is not a model of scenario `{}`", r.model, s.name),
                ));
            }
            if !(0.0..=1.0).contains(&r.fraction) {
                return Err(bad(
                    format!("routes[{i}].fraction"),
                    format!("{} must be between 0 and 1", r.fraction),
                ));
            }
        }
        Ok(())
    }

    /// Every provisioned rate names a model of the scenario, once, and is a finite,
    /// non-negative rate: `replan` keeps them during a transition when the plan's scenario
    /// is unknown.
    fn check_model_rates(&self, s: &Scenario, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        let mut seen = vec![false; s.models.len()];
        for (i, r) in self.model_rates.iter().enumerate() {
            let field = format!("model_rates[{i}]");
            let mi = model_of(s, &r.model, &field, bad)?;
            if std::mem::replace(&mut seen[mi], true) {
                return Err(bad(
                    format!("{field}.model"),
                    format!("`{}` has a provisioned rate already", r.model),
                ));
            }
            if !(r.rate_qps.is_finite() && r.rate_qps >= 0.0) {
                return Err(bad(
                    format!("{field}.rate_qps"),
                    format!(
                        "{} must be a non-negative number of queries/s",
                        crate::limits::num(r.rate_qps)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The objective is a finite, non-negative load (at most [`MAX_RATE_QPS`]) or GPU count.
    fn check_objective(&self, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        if !(self.report.objective.is_finite() && self.report.objective >= 0.0)
            || (self.objective_kind == Objective::MaxLoad && self.report.objective > MAX_RATE_QPS)
        {
            return Err(bad(
                "objective".into(),
                format!(
                    "{} is not a load or GPU count migopt can have planned",
                    crate::limits::num(self.report.objective)
                ),
            ));
        }
        Ok(())
    }

    /// Every instance serves a model of the scenario on a profiled (profile, procs), and
    /// every model has an instance.
    fn check_instances(&self, s: &Scenario, bad: &dyn Fn(String, String) -> Error) -> Result<()> {
        let mut served = vec![false; s.models.len()];
        for (gi, g) in self.gpus.iter().enumerate() {
            for (ai, a) in g.layout.iter().enumerate() {
                let field = format!("gpus[{gi}].layout[{ai}]");
                let mi = model_of(s, &a.model, &field, bad)?;
                served[mi] = true;
                if s.profiles
                    .curve(a.model.as_str(), a.profile.as_str(), a.procs)
                    .is_none()
                {
                    return Err(bad(
                        field,
                        format!(
                            "no latency profile for `{}` on {} with {} process(es)",
                            a.model, a.profile, a.procs
                        ),
                    ));
                }
            }
        }
        if let Some(mi) = served.iter().position(|x| !x) {
            return Err(bad(
                "gpus".into(),
                format!(
                    "no instance serves model `{}` of scenario `{}`",
                    s.models[mi].name, s.name
                ),
            ));
        }
        Ok(())
    }

    /// GPUs that hold at least one instance.
    pub fn gpus_used(&self) -> usize {
        self.gpus.iter().filter(|g| !g.layout.is_empty()).count()
    }

    /// Every instance with its GPU index, in GPU then slot order.
    pub fn instances(&self) -> impl Iterator<Item = (u32, &Assignment)> {
        self.gpus
            .iter()
            .flat_map(|g| g.layout.iter().map(move |a| (g.index, a)))
    }

    /// Compute slices used by all instances.
    pub fn gpcs_used(&self) -> Result<u32> {
        let gpu = self.gpu_spec()?;
        self.instances()
            .map(|(_, a)| gpu.profile(a.profile.as_str()).map(|p| p.compute))
            .sum()
    }

    /// The layout of one GPU (profiles and starts only).
    pub fn layout_of(&self, g: &GpuPlan) -> Result<Layout> {
        Layout::new(self.gpu_spec()?, g.placements())
    }

    /// A config for NVIDIA's mig-parted: one entry per distinct layout (with the devices
    /// that take it), and `migopt-plan`, which applies the whole plan at once. mig-parted
    /// places instances by count; the NVML starts in the plan JSON are the placement this
    /// count set admits, as migopt validated it.
    pub fn to_mig_parted_yaml(&self) -> Result<String> {
        let mut groups: BTreeMap<Vec<(String, u32)>, Vec<u32>> = BTreeMap::new();
        for g in &self.gpus {
            let layout = self.layout_of(g)?;
            let key: Vec<(String, u32)> =
                layout.counts().into_iter().map(|(p, c)| (p.0, c)).collect();
            groups.entry(key).or_default().push(g.index);
        }
        let mut y = String::new();
        let _ = writeln!(
            y,
            "# Written by migopt for scenario {:?} ({} solver, {}).",
            self.scenario, self.solver, self.gpu
        );
        let _ = writeln!(
            y,
            "# Apply with: nvidia-mig-parted apply -f <this file> -c migopt-plan"
        );
        let _ = writeln!(y, "version: v1");
        let _ = writeln!(y, "mig-configs:");
        let write_group = |y: &mut String, key: &Vec<(String, u32)>, devs: &Vec<u32>| {
            let list = devs
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(y, "    - devices: [{list}]");
            let _ = writeln!(y, "      mig-enabled: {}", !key.is_empty());
            if key.is_empty() {
                let _ = writeln!(y, "      mig-devices: {{}}");
            } else {
                let _ = writeln!(y, "      mig-devices:");
                for (p, c) in key {
                    let _ = writeln!(y, "        \"{p}\": {c}");
                }
            }
        };
        let _ = writeln!(y, "  migopt-plan:");
        for (key, devs) in &groups {
            write_group(&mut y, key, devs);
        }
        for (i, (key, devs)) in groups.iter().enumerate() {
            let _ = writeln!(y, "  migopt-layout-{i}:");
            write_group(&mut y, key, devs);
        }
        Ok(y)
    }
}

/// The error for plan text `text` of `path` that serde refused (`r`). The JSON that
/// `migopt replan --json` prints (a target plan with its fates, tiers and transition, which
/// users feed back as a plan) is pointed at its `target`; a misspelt key of a plan is named
/// by its path; an object with none of the keys every plan has is some other file, and
/// said to be no plan. The text's top-level keys are read once, here, on the error path.
fn not_a_plan(text: &str, path: &Path, r: &crate::json::Refusal) -> Error {
    let top = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(v)) => Some(v),
        _ => None,
    };
    let has = |k: &str| top.as_ref().is_some_and(|v| v.contains_key(k));
    if has("target") && has("transition") {
        return Error::Syntax {
            origin: Origin::at(path, 1),
            message: "not a migopt plan but a re-plan report (`migopt replan --json`); \
                      its plan is the field `target`: write it with `migopt replan --out`"
                .into(),
        };
    }
    let plan_like = top.is_none()
        || [
            "scenario",
            "gpu",
            "objective_kind",
            "solver",
            "params",
            "gpus",
        ]
        .iter()
        .any(|k| has(k));
    if let Some(unknown) = crate::json::unknown_key(r, path).filter(|_| plan_like) {
        return unknown;
    }
    Error::Syntax {
        origin: Origin::at(path, r.error.line().max(1)),
        message: format!("not a migopt plan: {}", r.error),
    }
}

/// The index of model `name` in scenario `s`, or the error for `{field}.model` naming it.
fn model_of(
    s: &Scenario,
    name: &ModelName,
    field: &str,
    bad: &dyn Fn(String, String) -> Error,
) -> Result<usize> {
    s.models
        .iter()
        .position(|m| &m.name == name)
        .ok_or_else(|| {
            bad(
                format!("{field}.model"),
                format!("`{name}` is not a model of scenario `{}`", s.name),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let a = |p: &str, s, m: &str| Assignment {
            profile: p.into(),
            start: s,
            model: m.into(),
            batch: 8,
            procs: 1,
        };
        Plan {
            scenario: "t".into(),
            scenario_path: None,
            gpu: "H100-80GB".into(),
            objective_kind: Objective::MaxLoad,
            solver: "test".into(),
            report: SolveReport::heuristic(1.0, 0.0),
            params: PlanParams::default(),
            gpus: vec![
                GpuPlan {
                    index: 0,
                    layout: vec![a("4g.40gb", 0, "x"), a("3g.40gb", 4, "y")],
                },
                GpuPlan {
                    index: 1,
                    layout: vec![a("7g.80gb", 0, "x")],
                },
                GpuPlan {
                    index: 2,
                    layout: vec![a("4g.40gb", 0, "y"), a("3g.40gb", 4, "x")],
                },
            ],
            routes: vec![],
            model_rates: vec![],
        }
    }

    #[test]
    fn json_round_trip_has_the_contract_fields() {
        let p = plan();
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        for f in [
            "status",
            "objective",
            "bound",
            "gap",
            "solve_seconds",
            "gpus",
        ] {
            assert!(v.get(f).is_some(), "missing {f}");
        }
        assert_eq!(v["gpus"][0]["layout"][1]["start"], 4);
        let back: Plan = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    /// A plan with every optional field set, so that its JSON has every key a plan has.
    fn full_plan() -> Plan {
        let mut p = plan();
        p.scenario_path = Some("s.toml".into());
        p.report.bound = Some(2.0);
        p.report.gap = Some(0.5);
        p.report.lp_bound = Some(2.0);
        p.report.gpcs_used = Some(7);
        p.params.max_procs = Some(3);
        p.routes = vec![Route {
            model: "x".into(),
            batch: 8,
            profile: "7g.80gb".into(),
            fraction: 1.0,
        }];
        p.model_rates = vec![ModelRate {
            model: "x".into(),
            rate_qps: 1.0,
        }];
        p
    }

    #[test]
    fn every_key_a_plan_writes_reads_back() {
        let p = full_plan();
        let text = serde_json::to_string_pretty(&p).unwrap();
        assert_eq!(Plan::from_json(&text, Path::new("p.json")).unwrap(), p);
    }

    /// The error of reading `p`'s JSON after `edit`.
    fn refusal(p: &Plan, edit: impl Fn(&mut serde_json::Value)) -> String {
        let mut v = serde_json::to_value(p).unwrap();
        edit(&mut v);
        let text = serde_json::to_string_pretty(&v).unwrap();
        Plan::from_json(&text, Path::new("p.json"))
            .unwrap_err()
            .to_string()
    }

    /// Renames key `from` of the object `v` to `to`.
    fn rename(v: &mut serde_json::Value, from: &str, to: &str) {
        let m = v.as_object_mut().unwrap();
        let x = m.remove(from).unwrap();
        m.insert(to.into(), x);
    }

    #[test]
    fn a_misspelt_key_is_refused_at_every_level_by_its_path() {
        let p = full_plan();
        type Edit<'a> = &'a dyn Fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 7] = [
            ("model_rate", &|v| rename(v, "model_rates", "model_rate")),
            ("objectve", &|v| rename(v, "objective", "objectve")),
            ("params.max_proc", &|v| {
                rename(&mut v["params"], "max_procs", "max_proc")
            }),
            ("gpus[2].indx", &|v| {
                rename(&mut v["gpus"][2], "index", "indx")
            }),
            ("gpus[2].layout[1].proc", &|v| {
                rename(&mut v["gpus"][2]["layout"][1], "procs", "proc")
            }),
            ("routes[0].fractoin", &|v| {
                rename(&mut v["routes"][0], "fraction", "fractoin")
            }),
            ("model_rates[0].rate", &|v| {
                rename(&mut v["model_rates"][0], "rate_qps", "rate")
            }),
        ];
        for (field, edit) in cases {
            let e = refusal(&p, edit);
            assert!(e.starts_with("p.json:"), "{e}");
            assert!(
                e.contains(&format!(": field `{field}`: unknown key; did you mean `")),
                "{e}"
            );
        }
        let e = refusal(&p, |v| {
            rename(&mut v["gpus"][2]["layout"][1], "procs", "proc")
        });
        let want = "field `gpus[2].layout[1].proc`: unknown key; did you mean `procs`?";
        assert!(e.ends_with(want), "{e}");
    }

    #[test]
    fn json_with_none_of_a_plans_keys_is_no_plan() {
        let e = Plan::from_json("{\"not\": \"a plan\"}", Path::new("p.json")).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "p.json:1: not a migopt plan: unknown field `not`, expected one of `scenario`"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_keys_of_a_verify_check_are_accepted_at_the_top_level_only() {
        let p = full_plan();
        let mut v = serde_json::to_value(&p).unwrap();
        v["verified"] = true.into();
        v["rounds"] = serde_json::json!([{"objective": 1.0}]);
        let text = v.to_string();
        assert_eq!(Plan::from_json(&text, Path::new("p.json")).unwrap(), p);
        let e = refusal(&p, |v| v["gpus"][0]["verified"] = true.into());
        assert!(e.contains("field `gpus[0].verified`: unknown key"), "{e}");
    }

    #[test]
    fn json_fields_are_found_at_their_line() {
        let text = serde_json::to_string_pretty(&plan()).unwrap();
        let line = |f: &str| json_line(&text, f).unwrap();
        let at = |needle: &str, nth: usize| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains(needle))
                .nth(nth)
                .unwrap()
                .0
                + 1
        };
        assert_eq!(line("gpu"), at("\"gpu\":", 0));
        assert_eq!(line("gpus[1].layout[0].model"), at("\"model\": \"x\"", 1));
        assert_eq!(line("gpus[2].index"), at("\"index\": 2", 0));
        assert_eq!(line("gpus[2].layout"), at("\"index\": 2", 0) + 1);
        assert_eq!(json_line(&text, "gpus[9].index"), None);
        let compact = serde_json::to_string(&plan()).unwrap();
        assert_eq!(
            json_line(&format!("\u{feff}{compact}"), "gpus[2].layout[1].batch"),
            Some(1)
        );
    }

    #[test]
    fn validation_names_the_gpu() {
        let mut p = plan();
        p.validate(LayoutRules::default()).unwrap();
        p.gpus[1].layout[0].start = 1;
        let e = p.validate(LayoutRules::default()).unwrap_err().to_string();
        assert!(e.contains("GPU 1: 7g.80gb cannot start"), "{e}");
    }

    #[test]
    fn mig_parted_groups_identical_layouts() {
        let y = plan().to_mig_parted_yaml().unwrap();
        assert!(y.contains("version: v1"));
        assert!(y.contains("    - devices: [0, 2]\n      mig-enabled: true\n      mig-devices:\n        \"3g.40gb\": 1\n        \"4g.40gb\": 1\n"), "{y}");
        assert!(y.contains("  migopt-layout-1:\n    - devices: [1]"), "{y}");
    }
}
