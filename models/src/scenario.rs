//! Scenario files (TOML): what the server is and what traffic it must carry. The planner
//! and the simulator read the same file, so a plan can always be checked against the
//! traffic it was made for.
//!
//! ```toml
//! name = "two models"
//! [gpu]
//! kind = "H100-80GB"
//! count = 8                   # GPUs in the server (an upper limit for min-gpus)
//!
//! [options]                   # optional
//! batch_lookup = "interpolate"  # or "exact", "pad"
//! max_procs = 3               # min-gpus: at most 3 MPS processes per instance
//!
//! [[model]]
//! name = "resnet50"
//! profile = "h100-80gb/resnet50.csv"   # relative to this file
//! sla_ms = 25.0
//! share = 0.6                 # share of queries; or rate_qps = 1200.0
//! batch = { kind = "lognormal", median = 8, sigma = 1.0, max = 64 }
//! # or batch = { kind = "table", sizes = [1, 8, 32], probs = [0.5, 0.3, 0.2] }
//! # or batch = { kind = "fixed", size = 1 }  (the default: single requests)
//! ```

use crate::catalogue::{Catalogue, GpuSpec};
use crate::error::{Error, LineIndex, Origin, Result};
use crate::input::Inputs;
use crate::limits::num;
use crate::limits::{
    MAX_BATCH, MAX_GPUS, MAX_INSTANCES_PER_MODEL, MAX_LATENCY_MS, MAX_MODELS, MAX_PROCS,
    MAX_RATE_QPS, MAX_SHARE, MIN_LATENCY_MS, MIN_SHARE,
};
use crate::profile::{BatchLookup, ProfileSet};
use crate::units::{GpuName, Millis, ModelName};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// How query batch sizes are distributed for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BatchDist {
    /// Every query has this batch size (1 = single requests).
    Fixed {
        /// The batch size.
        size: u32,
    },
    /// Log-normal, discretised to integers 1..=max and renormalised (PARIS's workload).
    Lognormal {
        /// Median batch size.
        median: f64,
        /// Standard deviation of ln(batch).
        sigma: f64,
        /// Largest batch size; mass above it is cut off.
        max: u32,
    },
    /// An explicit table of batch size → probability.
    Table {
        /// Batch sizes.
        sizes: Vec<u32>,
        /// Their probabilities (normalised if they do not sum to 1).
        probs: Vec<f64>,
    },
}

impl Default for BatchDist {
    fn default() -> Self {
        BatchDist::Fixed { size: 1 }
    }
}

impl BatchDist {
    /// The probability mass function over batch sizes, ascending, zero-mass sizes dropped.
    pub fn pmf(&self) -> Vec<(u32, f64)> {
        let raw: Vec<(u32, f64)> = match self {
            BatchDist::Fixed { size } => vec![(*size, 1.0)],
            BatchDist::Lognormal { median, sigma, max } => {
                let mu = median.ln();
                let cdf = |x: f64| {
                    if x <= 0.0 {
                        0.0
                    } else {
                        normal_cdf((x.ln() - mu) / sigma)
                    }
                };
                (1..=*max)
                    .map(|b| {
                        (
                            b,
                            cdf(b as f64 + 0.5) - if b == 1 { 0.0 } else { cdf(b as f64 - 0.5) },
                        )
                    })
                    .collect()
            }
            BatchDist::Table { sizes, probs } => {
                let mut v: Vec<(u32, f64)> =
                    sizes.iter().copied().zip(probs.iter().copied()).collect();
                v.sort_by_key(|p| p.0);
                v
            }
        };
        let total: f64 = raw.iter().map(|p| p.1).sum();
        raw.into_iter()
            .filter(|p| p.1 > 1e-12)
            .map(|(b, p)| (b, p / total))
            .collect()
    }

    /// Mean batch size.
    pub fn mean(&self) -> f64 {
        self.pmf().iter().map(|&(b, p)| b as f64 * p).sum()
    }

    /// Largest batch size with nonzero probability.
    pub fn max(&self) -> u32 {
        self.pmf().last().map(|p| p.0).unwrap_or(1)
    }
}

/// Standard normal CDF via erfc (W. J. Cody's rational approximation through
/// Numerical Recipes' `erfcc`, relative error < 1.2e-7), enough for batch probabilities.
pub fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    let erfc = if x >= 0.0 { y } else { 2.0 - y };
    0.5 * erfc
}

/// How much traffic a model gets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Demand {
    /// An absolute request rate, queries per second (a rate target for min-gpus).
    Rate(f64),
    /// A share of the total query rate (for max-load, where the total is what is maximised).
    Share(f64),
}

/// One served model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Model name, as in the profile CSV.
    pub name: ModelName,
    /// Latency SLA (or SLO) per query, end to end.
    pub sla: Millis,
    /// Traffic.
    pub demand: Demand,
    /// Batch-size distribution of queries.
    pub batch: BatchDist,
    /// Profile file the model's curves came from (as resolved).
    pub profile_path: PathBuf,
}

/// A whole scenario with its profiles loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Short name (defaults to the file stem).
    pub name: String,
    /// Free text: where the numbers come from.
    pub description: Option<String>,
    /// GPU kind.
    pub gpu: GpuName,
    /// GPUs in the server (for min-gpus: the most that may be used).
    pub gpu_count: u32,
    /// How unmeasured batch sizes get a latency.
    pub batch_lookup: BatchLookup,
    /// The models served, in file order.
    pub models: Vec<ModelSpec>,
    /// Latency curves of the models, restricted to them.
    pub profiles: ProfileSet,
    /// The most MPS processes an instance may run (`[options] max_procs`); `None`: any
    /// measured count.
    #[serde(default)]
    pub max_procs: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    gpu: RawGpu,
    #[serde(default)]
    options: RawOptions,
    #[serde(default)]
    model: Vec<Spanned<RawModel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpu {
    kind: Spanned<String>,
    count: Spanned<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    batch_lookup: Option<BatchLookup>,
    max_procs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Spanned<String>,
    profile: Spanned<String>,
    sla_ms: Spanned<f64>,
    rate_qps: Option<Spanned<f64>>,
    share: Option<Spanned<f64>>,
    batch: Option<Spanned<BatchDist>>,
}

/// Reads the text of a file named in a scenario; lets shipped scenarios resolve their
/// profile paths to embedded data.
pub type Reader<'a> = &'a mut dyn FnMut(&Path) -> Result<String>;

/// Where the TOML text of one scenario is, for located messages (lines found in O(log n)).
struct Locator<'a> {
    path: &'a Path,
    lines: LineIndex,
}

impl Locator<'_> {
    fn at(&self, span: std::ops::Range<usize>) -> Origin {
        Origin::at(self.path, self.lines.line_of_byte(span.start))
    }
}

/// Profile files named by a scenario, each read and parsed once however many models name it.
#[derive(Default)]
struct ProfileCache {
    sets: HashMap<PathBuf, ProfileSet>,
}

impl ProfileCache {
    /// The set of the file at `path`, keyed by the file it resolves to: one file named many
    /// ways (`a/../p.csv`, a link) is still read once, or a scenario of a few kB could make
    /// migopt read and hold a large profile once per model.
    fn get(&mut self, path: &Path, read: Reader<'_>) -> Result<&ProfileSet> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if !self.sets.contains_key(&key) {
            let text = read(path)?;
            let set = ProfileSet::from_csv_str(&text, path)?;
            self.sets.insert(key.clone(), set);
        }
        Ok(&self.sets[&key])
    }
}

impl Scenario {
    /// Loads a scenario file and the profile files it names (relative to it).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_recording(path, &mut Inputs::default())
    }

    /// [`Scenario::load`], recording the scenario file and every profile file it names
    /// in `inputs`.
    pub fn load_recording(path: &Path, inputs: &mut Inputs) -> Result<Self> {
        let text = inputs.read_text(path, crate::limits::SCENARIO_FILE)?;
        Self::parse(&text, path, &mut |p: &Path| {
            inputs.read_text(p, crate::limits::PROFILE_FILE)
        })
    }

    /// Parses scenario text from `path`, reading profiles through `read`. Each profile file
    /// is read and parsed once; the whole load is linear in the size of the inputs.
    pub fn parse(text: &str, path: &Path, read: Reader<'_>) -> Result<Self> {
        let loc = Locator {
            path,
            lines: LineIndex::new(text),
        };
        let raw = raw_scenario(text, &loc)?;
        let gpu: &GpuSpec = Catalogue::builtin()
            .gpu(raw.gpu.kind.get_ref())
            .map_err(|e| Error::field(loc.at(raw.gpu.kind.span()), "gpu.kind", e.to_string()))?;
        let count = whole_within(&loc, &raw.gpu.count, "gpu.count", MAX_GPUS)?;
        check_model_count(&raw.model, &loc)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let (models, profiles) = model_specs(&raw.model, &loc, base, gpu, read)?;
        check_one_demand_kind(&models, path)?;
        let name = raw.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let max_procs = match &raw.options.max_procs {
            None => None,
            Some(v) => Some(whole_within(&loc, v, "options.max_procs", MAX_PROCS)?),
        };
        let Some(profiles) = profiles else {
            return Err(Error::internal("a scenario with models has no profiles"));
        };
        Ok(Scenario {
            name,
            description: raw.description,
            gpu: gpu.name.clone(),
            gpu_count: count,
            batch_lookup: raw.options.batch_lookup.unwrap_or_default(),
            models,
            profiles,
            max_procs,
        })
    }

    /// The catalogue entry of the scenario's GPU.
    pub fn gpu_spec(&self) -> &'static GpuSpec {
        Catalogue::builtin()
            .gpu(self.gpu.as_str())
            .expect("checked at load")
    }

    /// Each model's share of the total query rate (rates normalised when rates are given).
    pub fn shares(&self) -> Vec<f64> {
        let raw: Vec<f64> = self
            .models
            .iter()
            .map(|m| match m.demand {
                Demand::Rate(r) | Demand::Share(r) => r,
            })
            .collect();
        let total: f64 = raw.iter().sum();
        raw.iter().map(|r| r / total).collect()
    }

    /// Each model's request rate, if the scenario gives rates.
    pub fn rates(&self) -> Option<Vec<f64>> {
        self.models
            .iter()
            .map(|m| match m.demand {
                Demand::Rate(r) => Some(r),
                Demand::Share(_) => None,
            })
            .collect()
    }

    /// Looks a model up by name.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name.as_str() == name)
    }

    /// Whether this scenario still describes an instance of a plan: its model is one of the
    /// scenario's, and the model's profile measures it on the instance's size (at some
    /// process count). A plan in service that a scenario or profile edited in place no
    /// longer describes is re-cut there by the re-planner.
    pub fn describes(&self, a: &crate::plan::Assignment) -> bool {
        self.model(a.model.as_str()).is_some()
            && self.profiles.measures(a.model.as_str(), a.profile.as_str())
    }
}

/// The TOML text deserialised into the raw tables, a syntax error located at its line.
/// A type error names the field of the value it is about (`gpu.count`), as other errors do.
fn raw_scenario(text: &str, loc: &Locator<'_>) -> Result<RawScenario> {
    toml::from_str(text).map_err(|e| {
        let origin = Origin {
            file: loc.path.to_path_buf(),
            line: e.span().map(|s| loc.lines.line_of_byte(s.start)),
        };
        let message = e.message().to_string();
        let key = e
            .span()
            .filter(|_| message.starts_with("invalid ") || message.starts_with("unknown variant"))
            .and_then(|s| crate::toml_key::key_at(text, s.start));
        match key {
            Some(k) => Error::field(origin, k, message),
            None => Error::Syntax { origin, message },
        }
    })
}

/// Checks that the scenario lists at least one and at most [`MAX_MODELS`] models.
fn check_model_count(models: &[Spanned<RawModel>], loc: &Locator<'_>) -> Result<()> {
    if models.is_empty() {
        return Err(Error::field(
            Origin::file(loc.path),
            "model",
            "the scenario serves no model (add a [[model]] table)",
        ));
    }
    if models.len() > MAX_MODELS {
        return Err(Error::field(
            loc.at(models[MAX_MODELS].span()),
            "model",
            format!("{} models, above the limit of {MAX_MODELS}", models.len()),
        ));
    }
    Ok(())
}

/// Every `[[model]]` table's spec, names unique, and their curves merged into one set
/// (`None` only when there is no model).
fn model_specs(
    raw: &[Spanned<RawModel>],
    loc: &Locator<'_>,
    base: &Path,
    gpu: &GpuSpec,
    read: Reader<'_>,
) -> Result<(Vec<ModelSpec>, Option<ProfileSet>)> {
    let mut models = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    let mut cache = ProfileCache::default();
    let mut profiles: Option<ProfileSet> = None;
    for m in raw {
        let (spec, set) = model_spec(m, loc, base, gpu, &mut cache, &mut *read)?;
        if !names.insert(spec.name.clone()) {
            return Err(Error::field(
                loc.at(m.get_ref().name.span()),
                "model.name",
                format!("`{}` is listed twice", spec.name),
            ));
        }
        match profiles.as_mut() {
            None => profiles = Some(set),
            Some(p) => p.merge(set)?,
        }
        models.push(spec);
    }
    Ok((models, profiles))
}

/// Checks that the models all give rates or all give shares, not a mix.
fn check_one_demand_kind(models: &[ModelSpec], path: &Path) -> Result<()> {
    let kinds: Vec<bool> = models
        .iter()
        .map(|m| matches!(m.demand, Demand::Rate(_)))
        .collect();
    if kinds.iter().any(|&k| k) && kinds.iter().any(|&k| !k) {
        return Err(Error::field(
            Origin::file(path),
            "model",
            "mix of rate_qps and share: use one kind for every model",
        ));
    }
    Ok(())
}

/// Why `name` cannot name a model, if it cannot: it is written unquoted into traces and
/// served record files (comma-separated, one record a line), so it must be non-empty and
/// hold no comma, quote or control character.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    name.chars()
        .find(|c| matches!(c, ',' | '"') || c.is_control())
        .map(|c| format!("{name:?} holds {c:?}: a model name cannot hold a comma, a quote or a control character (traces and served records are comma-separated)"))
}

/// One `[[model]]` table: its spec and its curves (from the cached profile file).
fn model_spec(
    m: &Spanned<RawModel>,
    loc: &Locator<'_>,
    base: &Path,
    gpu: &GpuSpec,
    cache: &mut ProfileCache,
    read: Reader<'_>,
) -> Result<(ModelSpec, ProfileSet)> {
    let mo = loc.at(m.span());
    let m = m.get_ref();
    let name = m.name.get_ref().trim().to_string();
    if let Some(problem) = name_problem(&name) {
        return Err(Error::field(loc.at(m.name.span()), "model.name", problem));
    }
    let sla = sla_ms(m, loc)?;
    let demand = demand(m, &name, mo, loc)?;
    let batch = batch_dist(m, loc)?;
    let (ppath, set) = model_curves(m, &name, loc, base, gpu, cache, read)?;
    if let (Demand::Rate(rate), Some(r)) = (demand, &m.rate_qps) {
        check_instances(rate, &name, &set)
            .map_err(|msg| Error::field(loc.at(r.span()), "model.rate_qps", msg))?;
    }
    Ok((
        ModelSpec {
            name: name.into(),
            sla: Millis(sla),
            demand,
            batch,
            profile_path: ppath,
        },
        set,
    ))
}

/// A model's SLA in milliseconds, within [`MIN_LATENCY_MS`]..=[`MAX_LATENCY_MS`].
fn sla_ms(m: &RawModel, loc: &Locator<'_>) -> Result<f64> {
    positive_within(
        loc,
        &m.sla_ms,
        "model.sla_ms",
        MIN_LATENCY_MS..=MAX_LATENCY_MS,
        |v| format!("{v} must be a positive number of milliseconds"),
        |v| {
            format!(
                "{v} ms is outside the accepted range {MIN_LATENCY_MS:e}..{MAX_LATENCY_MS:e} ms"
            )
        },
    )
}

/// A model's batch-size distribution, checked (single requests when none is given).
fn batch_dist(m: &RawModel, loc: &Locator<'_>) -> Result<BatchDist> {
    match &m.batch {
        Some(b) => {
            check_batch(b.get_ref())
                .map_err(|msg| Error::field(loc.at(b.span()), "model.batch", msg))?;
            Ok(b.get_ref().clone())
        }
        None => Ok(BatchDist::default()),
    }
}

/// A model's profile path (resolved against `base`) and its curves from that file, which
/// must have rows for the model, measured on the scenario's GPU.
fn model_curves(
    m: &RawModel,
    name: &str,
    loc: &Locator<'_>,
    base: &Path,
    gpu: &GpuSpec,
    cache: &mut ProfileCache,
    read: Reader<'_>,
) -> Result<(PathBuf, ProfileSet)> {
    let ppath = base.join(m.profile.get_ref());
    let profile_at = loc.at(m.profile.span());
    let set = cache
        .get(&ppath, read)
        .map_err(|e| match e {
            Error::Io { .. } | Error::Invalid(_) => {
                Error::field(profile_at.clone(), "model.profile", e.to_string())
            }
            other => other,
        })?
        .only(name);
    if set.curves.is_empty() {
        return Err(Error::field(
            profile_at,
            "model.profile",
            format!("{} has no rows for model `{name}`", ppath.display()),
        ));
    }
    if set.gpu != gpu.name {
        return Err(Error::field(
            profile_at,
            "model.profile",
            format!(
                "{} is measured on {}, the scenario's GPU is {}",
                ppath.display(),
                set.gpu,
                gpu.name
            ),
        ));
    }
    Ok((ppath, set))
}

/// A model's traffic: a rate (bounded by [`MAX_RATE_QPS`]) or a share.
fn demand(m: &RawModel, name: &str, mo: Origin, loc: &Locator<'_>) -> Result<Demand> {
    match (&m.rate_qps, &m.share) {
        (Some(r), None) => positive_within(
            loc,
            r,
            "model.rate_qps",
            0.0..=MAX_RATE_QPS,
            |v| format!("{v} must be a positive rate"),
            |v| format!("{v} queries/s is above the limit of {MAX_RATE_QPS:e}"),
        )
        .and_then(|x| normal_rate(loc, r, x))
        .map(Demand::Rate),
        (None, Some(s)) => positive_within(
            loc,
            s,
            "model.share",
            MIN_SHARE..=MAX_SHARE,
            |v| format!("{v} must be positive"),
            |v| format!("{v} is outside the accepted range {MIN_SHARE:e}..{MAX_SHARE:e}"),
        )
        .map(Demand::Share),
        (Some(_), Some(_)) => Err(Error::field(
            mo,
            "model",
            format!("`{name}` gives both rate_qps and share; give one"),
        )),
        (None, None) => Err(Error::field(
            mo,
            "model",
            format!("`{name}` needs rate_qps or share"),
        )),
    }
}

/// The whole number at `v`, between 1 and `max`, located at its line.
fn whole_within(loc: &Locator<'_>, v: &Spanned<i64>, field: &str, max: u32) -> Result<u32> {
    let n = *v.get_ref();
    if !(1..=max as i64).contains(&n) {
        return Err(Error::field(
            loc.at(v.span()),
            field,
            format!("{n} must be between 1 and {max}"),
        ));
    }
    Ok(n as u32)
}

/// The number at `v`: finite and positive (else the message `not_positive` makes of it, as
/// [`num`] prints it), and within `range` (else `outside`'s), located at its line.
fn positive_within(
    loc: &Locator<'_>,
    v: &Spanned<f64>,
    field: &str,
    range: std::ops::RangeInclusive<f64>,
    not_positive: impl Fn(&str) -> String,
    outside: impl Fn(&str) -> String,
) -> Result<f64> {
    let x = *v.get_ref();
    let message = if !x.is_finite() || x <= 0.0 {
        not_positive(&num(x))
    } else if !range.contains(&x) {
        outside(&num(x))
    } else {
        return Ok(x);
    };
    Err(Error::field(loc.at(v.span()), field, message))
}

/// A positive rate `x` (at `v`) must be a normal number: a subnormal one (below 2.2e-308,
/// a unit error) divides to 0 instances, and the planners then serve the model by none.
fn normal_rate(loc: &Locator<'_>, v: &Spanned<f64>, x: f64) -> Result<f64> {
    if x.is_normal() {
        return Ok(x);
    }
    Err(Error::field(
        loc.at(v.span()),
        "model.rate_qps",
        format!(
            "{} queries/s is too small to plan for (below {:e}: a unit error)",
            num(x),
            f64::MIN_POSITIVE
        ),
    ))
}

/// A rate must be servable by fewer than [`MAX_INSTANCES_PER_MODEL`] instances of the
/// model's fastest measured point (each point counted at the lower of its measured and its
/// derived throughput), so that no planner sizes anything from an absurd count.
fn check_instances(rate: f64, name: &str, set: &ProfileSet) -> std::result::Result<(), String> {
    let fastest = set
        .curves
        .iter()
        .flat_map(|(k, c)| {
            c.batches
                .iter()
                .zip(&c.latency_ms)
                .zip(&c.throughput_qps)
                .map(move |((&b, &l), &t)| t.min(k.procs as f64 * b as f64 * 1000.0 / l))
        })
        .fold(0.0, f64::max);
    let need = rate / fastest;
    if need.is_nan() || need >= MAX_INSTANCES_PER_MODEL as f64 {
        return Err(format!(
            "{} queries/s needs at least {need:.3e} instances of `{name}` (its fastest measured point serves {fastest:.4} queries/s), above the limit of {MAX_INSTANCES_PER_MODEL}",
            num(rate)
        ));
    }
    Ok(())
}

fn check_batch(b: &BatchDist) -> std::result::Result<(), String> {
    match b {
        BatchDist::Fixed { size } if *size == 0 => Err("fixed size must be at least 1".into()),
        BatchDist::Fixed { size } if *size > MAX_BATCH => Err(format!(
            "fixed size {size} is above the limit of {MAX_BATCH}"
        )),
        BatchDist::Lognormal { median, sigma, max } => {
            if !(median.is_finite() && *median >= 1.0) {
                Err(format!(
                    "lognormal median {} must be at least 1",
                    num(*median)
                ))
            } else if !(sigma.is_finite() && *sigma > 0.0) {
                Err(format!("lognormal sigma {} must be positive", num(*sigma)))
            } else if *max == 0 || (*max as f64) < *median {
                Err(format!("lognormal max {max} must be at least the median"))
            } else if *max > MAX_BATCH {
                Err(format!(
                    "lognormal max {max} is above the limit of {MAX_BATCH}"
                ))
            } else {
                Ok(())
            }
        }
        BatchDist::Table { sizes, probs } => {
            if sizes.is_empty() || sizes.len() != probs.len() {
                Err(format!(
                    "table has {} sizes and {} probs; they must pair up",
                    sizes.len(),
                    probs.len()
                ))
            } else if sizes.contains(&0) {
                Err("table sizes must be at least 1".into())
            } else if let Some(b) = sizes.iter().find(|&&b| b > MAX_BATCH) {
                Err(format!("table size {b} is above the limit of {MAX_BATCH}"))
            } else if probs.iter().any(|p| !p.is_finite() || *p < 0.0)
                || !(probs.iter().sum::<f64>() > 0.0 && probs.iter().sum::<f64>().is_finite())
            {
                Err("table probs must be non-negative with a positive, finite sum".into())
            } else {
                let mut s = sizes.clone();
                s.sort_unstable();
                s.dedup();
                if s.len() != sizes.len() {
                    Err("table lists a size twice".into())
                } else {
                    Ok(())
                }
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    const PROF: &str = "model,gpu,profile,batch,latency_ms\n\
        a,H100-80GB,1g.10gb,1,2\na,H100-80GB,1g.10gb,8,6\na,H100-80GB,7g.80gb,1,1\na,H100-80GB,7g.80gb,8,2\n\
        b,H100-80GB,1g.10gb,1,3\nb,H100-80GB,7g.80gb,1,1\n";

    fn read(_: &Path) -> Result<String> {
        Ok(PROF.to_string())
    }

    fn parse(t: &str) -> Result<Scenario> {
        Scenario::parse(t, Path::new("dir/s.toml"), &mut read)
    }

    const OK: &str = "[gpu]\nkind = \"H100-80GB\"\ncount = 2\n\
        [[model]]\nname = \"a\"\nprofile = \"p.csv\"\nsla_ms = 10\nshare = 3\nbatch = { kind = \"table\", sizes = [1, 8], probs = [1, 1] }\n\
        [[model]]\nname = \"b\"\nprofile = \"p.csv\"\nsla_ms = 5\nshare = 1\n";

    #[test]
    fn parses_and_normalises() {
        let s = parse(OK).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(s.gpu_count, 2);
        assert_eq!(s.shares(), vec![0.75, 0.25]);
        assert_eq!(s.models[0].batch.pmf(), vec![(1, 0.5), (8, 0.5)]);
        assert_eq!(s.models[0].profile_path, Path::new("dir/p.csv"));
        assert_eq!(s.profiles.models().len(), 2);
        assert!(s.rates().is_none());
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let bad = OK.replace("sla_ms = 5", "sla_ms = -5");
        let e = parse(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "dir/s.toml:13: field `model.sla_ms`: -5 must be a positive number of milliseconds"
        );
        let e = parse(&OK.replace("H100-80GB", "V100"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dir/s.toml:2: field `gpu.kind`: unknown GPU `V100`"),
            "{e}"
        );
        let e = parse(&OK.replace("share = 1\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`b` needs rate_qps or share"), "{e}");
        let e = parse(&OK.replace("count = 2", "count = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml:3: field `gpu.count`"), "{e}");
        let e = parse(&OK.replace("name = \"b\"", "name = \"zz\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no rows for model `zz`"), "{e}");
    }

    #[test]
    fn a_profile_file_named_by_many_models_is_read_once() {
        let mut csv = String::from("model,gpu,profile,batch,latency_ms\n");
        let mut toml = String::from("[gpu]\nkind = \"H100-80GB\"\ncount = 2\n");
        for m in 0..200 {
            csv += &format!("m{m},H100-80GB,1g.10gb,1,2\nm{m},H100-80GB,7g.80gb,1,1\n");
            toml += &format!(
                "[[model]]\nname = \"m{m}\"\nprofile = \"all.csv\"\nsla_ms = 10\nrate_qps = 5\n"
            );
        }
        let reads = std::cell::Cell::new(0);
        let mut reader = |_: &Path| {
            reads.set(reads.get() + 1);
            Ok(csv.clone())
        };
        let s = Scenario::parse(&toml, Path::new("s.toml"), &mut reader).unwrap();
        assert_eq!(reads.get(), 1);
        assert_eq!(s.models.len(), 200);
        assert_eq!(s.profiles.curves.len(), 400);
        // Each model keeps only its own curves, and errors still name the CSV's line.
        let bad = csv.replace("m7,H100-80GB,7g.80gb,1,1", "m7,H100-80GB,7g.80gb,1,-1");
        let e = Scenario::parse(&toml, Path::new("s.toml"), &mut |_: &Path| Ok(bad.clone()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "all.csv:17: field `latency_ms`: -1 must be a positive finite number"
        );
    }

    #[test]
    fn a_recorded_load_keeps_the_scenario_and_every_profile_it_names() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let csv = "model,gpu,profile,batch,latency_ms\nm,H100-80GB,1g.10gb,1,2\n";
        std::fs::write(d.path().join("p.csv"), csv).unwrap();
        let toml = "[gpu]\nkind = \"H100-80GB\"\ncount = 1\n[[model]]\nname = \"m\"\nprofile = \"sub/../p.csv\"\nsla_ms = 10\nrate_qps = 5\n";
        let path = d.path().join("s.toml");
        std::fs::write(&path, toml).unwrap();
        let mut inputs = Inputs::default();
        Scenario::load_recording(&path, &mut inputs).unwrap();
        assert!(inputs.contains(&path));
        assert!(inputs.contains(&d.path().join("p.csv")));
        assert!(inputs.contains(&d.path().join("sub/../p.csv")));
        assert!(!inputs.contains(&d.path().join("other.csv")));
        // A failed load keeps what it opened before failing.
        std::fs::write(&path, toml.replace("p.csv", "gone.csv")).unwrap();
        let mut failed = Inputs::default();
        assert!(Scenario::load_recording(&path, &mut failed).is_err());
        assert!(failed.contains(&path) && !failed.contains(&d.path().join("p.csv")));
    }

    #[test]
    fn a_profile_file_named_many_ways_is_read_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("x")).unwrap();
        let mut csv = String::from("model,gpu,profile,batch,latency_ms\n");
        let mut toml = String::from("[gpu]\nkind = \"H100-80GB\"\ncount = 2\n");
        for m in 0..50 {
            csv += &format!("m{m},H100-80GB,1g.10gb,1,2\n");
            let name = format!("{}all.csv", "x/../".repeat(m));
            toml += &format!(
                "[[model]]\nname = \"m{m}\"\nprofile = \"{name}\"\nsla_ms = 10\nrate_qps = 5\n"
            );
        }
        std::fs::write(d.path().join("all.csv"), &csv).unwrap();
        let reads = std::cell::Cell::new(0);
        let mut reader = |p: &Path| {
            reads.set(reads.get() + 1);
            crate::input::read_text(p, crate::limits::PROFILE_FILE)
        };
        let s = Scenario::parse(&toml, &d.path().join("s.toml"), &mut reader).unwrap();
        assert_eq!((reads.get(), s.models.len()), (1, 50));
    }

    #[test]
    fn sizes_and_rates_are_bounded_where_they_are_read() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert!(e(&OK.replace("count = 2", "count = 100001"))
            .ends_with("field `gpu.count`: 100001 must be between 1 and 100000"));
        let lognormal =
            "batch = { kind = \"lognormal\", median = 8.0, sigma = 1.0, max = 4000000000 }";
        let t = OK.replace(
            "batch = { kind = \"table\", sizes = [1, 8], probs = [1, 1] }",
            lognormal,
        );
        assert!(
            e(&t).ends_with("lognormal max 4000000000 is above the limit of 65536"),
            "{}",
            e(&t)
        );
        let t = OK
            .replace("share = 3", "rate_qps = 1e300")
            .replace("share = 1\n", "rate_qps = 1\n");
        assert!(
            e(&t).ends_with("field `model.rate_qps`: 1e300 queries/s is above the limit of 1e9"),
            "{}",
            e(&t)
        );
        let t = OK
            .replace("share = 3", "rate_qps = 1")
            .replace("share = 1\n", "rate_qps = 1e9\n");
        assert!(e(&t).ends_with("field `model.rate_qps`: 1e9 queries/s needs at least 1.000e6 instances of `b` (its fastest measured point serves 1000.0000 queries/s), above the limit of 1000000"), "{}", e(&t));
        assert!(e(&OK.replace("sla_ms = 5", "sla_ms = 5e-324")).contains("5e-324 ms is outside"));
    }

    #[test]
    fn lognormal_pmf_is_normalised_and_centred() {
        let d = BatchDist::Lognormal {
            median: 8.0,
            sigma: 0.5,
            max: 64,
        };
        let pmf = d.pmf();
        assert_relative_eq!(pmf.iter().map(|p| p.1).sum::<f64>(), 1.0, epsilon = 1e-9);
        let below: f64 = pmf.iter().filter(|p| p.0 <= 8).map(|p| p.1).sum();
        assert!((below - 0.5).abs() < 0.05, "{below}");
        assert!(d.max() <= 64);
    }

    #[test]
    fn normal_cdf_matches_tables() {
        assert_relative_eq!(normal_cdf(0.0), 0.5, epsilon = 1e-7);
        assert_relative_eq!(normal_cdf(1.96), 0.9750021, epsilon = 1e-6);
        assert_relative_eq!(normal_cdf(-1.0), 0.1586553, epsilon = 1e-6);
    }
}
