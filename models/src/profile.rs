//! Latency profiles: how long a model takes to run a batch on a MIG instance.
//!
//! The CSV schema (one row per measurement):
//! `model,gpu,profile,batch,latency_ms` required; optional `latency_p99_ms`, `procs` (MPS
//! processes sharing the instance, default 1), `throughput_qps` (derived as
//! procs·batch/latency when absent), `method` (`mig`, `green-context`, `mps`, `imported`) and
//! `neighbour_load` (default 0).
//!
//! `neighbour_load` d in [0, 1]: the row was measured while every other instance of the GPU
//! (the layout named in the sidecar) was busy a fraction d of the time. Rows with d = 0 (or
//! without the column) are the curves every planner and the simulator use; rows with d > 0
//! are kept beside them ([`ProfileSet::loaded`]) and feed the simulator's interference model
//! (`migopt_sim::interference`), which scales an instance's service time by how busy its
//! neighbours are, interpolating between the measured loads. A set without such rows has no
//! interference model.
//! Every problem is reported with file, line and column.

use crate::catalogue::{Catalogue, GpuSpec};
use crate::error::{Error, LineIndex, Origin, Result};
use crate::limits::{
    MAX_BATCH, MAX_INTERPOLATED_POINTS, MAX_LATENCY_MS, MAX_PROCS, MAX_RATE_QPS, MIN_LATENCY_MS,
};
use crate::units::{GpuName, Millis, ModelName, ProfileName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// How a measurement was made. Matters because green-context emulation partitions SMs only,
/// not memory bandwidth or L2, so it flatters small instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Measured on a real MIG instance.
    Mig,
    /// Emulated with CUDA green contexts (SM share only).
    GreenContext,
    /// Emulated with MPS clients limited to the slice's share of SMs
    /// (`CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`), the way `migopt serve` co-locates partitions.
    Mps,
    /// Converted from a third-party data set.
    #[default]
    Imported,
}

impl Method {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "mig" => Some(Method::Mig),
            "green-context" => Some(Method::GreenContext),
            "mps" => Some(Method::Mps),
            "imported" => Some(Method::Imported),
            _ => None,
        }
    }
    /// The CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Mig => "mig",
            Method::GreenContext => "green-context",
            Method::Mps => "mps",
            Method::Imported => "imported",
        }
    }
}

/// One measured row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    /// Model name.
    pub model: ModelName,
    /// GPU kind (catalogue name).
    pub gpu: GpuName,
    /// MIG profile name.
    pub profile: ProfileName,
    /// Query batch size.
    pub batch: u32,
    /// Median latency of one batch.
    pub latency_ms: f64,
    /// 99th-percentile latency, if measured.
    pub latency_p99_ms: Option<f64>,
    /// MPS processes sharing the instance (each runs batches of this size concurrently).
    pub procs: u32,
    /// Throughput of the whole instance, queries (samples) per second.
    pub throughput_qps: f64,
    /// How it was measured.
    pub method: Method,
    /// Fraction of the time the GPU's other instances were busy during the measurement (0:
    /// measured alone).
    #[serde(default)]
    pub neighbour_load: f64,
}

/// The latency curve of one (model, profile, procs): measured batches in increasing order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Measured batch sizes, ascending.
    pub batches: Vec<u32>,
    /// Median latency at each batch, ms.
    pub latency_ms: Vec<f64>,
    /// p99 latency at each batch, ms, where measured (else the median).
    pub p99_ms: Vec<f64>,
    /// Throughput of the whole instance at each batch, queries per second: the CSV's
    /// `throughput_qps` where given (imported sets carry more precise throughput than
    /// latency), else procs·batch/latency.
    pub throughput_qps: Vec<f64>,
    /// Whether p99 was measured for every batch.
    pub has_p99: bool,
}

/// How to get a latency for a batch size that was not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchLookup {
    /// Only measured batches.
    Exact,
    /// Linear between the measured neighbours; never beyond the largest measured batch.
    #[default]
    Interpolate,
    /// Run as the next measured batch size up (what a server with CUDA graphs captured at
    /// fixed sizes does).
    Pad,
}

impl Curve {
    /// Largest measured batch.
    pub fn max_batch(&self) -> u32 {
        self.batches.last().copied().unwrap_or(0)
    }

    /// Median latency at `batch` by the lookup rule, or `None` if it cannot be had without
    /// extrapolating.
    pub fn latency(&self, batch: u32, lookup: BatchLookup) -> Option<Millis> {
        self.lookup(batch, lookup, &self.latency_ms)
    }

    /// p99 latency at `batch` (the median where p99 was not measured).
    pub fn latency_p99(&self, batch: u32, lookup: BatchLookup) -> Option<Millis> {
        self.lookup(batch, lookup, &self.p99_ms)
    }

    fn lookup(&self, batch: u32, lookup: BatchLookup, values: &[f64]) -> Option<Millis> {
        match self.batches.binary_search(&batch) {
            Ok(i) => Some(Millis(values[i])),
            Err(i) => {
                if i == self.batches.len() || lookup == BatchLookup::Exact {
                    return None;
                }
                if lookup == BatchLookup::Pad {
                    return Some(Millis(values[i]));
                }
                if i == 0 {
                    // Below the smallest measured batch: a smaller batch is never slower.
                    return Some(Millis(values[0]));
                }
                let (b0, b1) = (self.batches[i - 1] as f64, self.batches[i] as f64);
                let t = (batch as f64 - b0) / (b1 - b0);
                Some(Millis(values[i - 1] + t * (values[i] - values[i - 1])))
            }
        }
    }

    /// Instance throughput (queries per second) at a measured batch.
    pub fn throughput_at(&self, batch: u32) -> Option<f64> {
        self.batches
            .binary_search(&batch)
            .ok()
            .map(|i| self.throughput_qps[i])
    }

    /// Smallest measured batch whose throughput reaches `fraction` of the curve's peak
    /// (the knee; PARIS uses 90%).
    pub fn knee(&self, fraction: f64) -> u32 {
        let tp = &self.throughput_qps;
        let peak = tp.iter().cloned().fold(0.0, f64::max);
        self.batches
            .iter()
            .zip(tp)
            .find(|(_, &t)| t >= fraction * peak)
            .map(|(&b, _)| b)
            .unwrap_or_else(|| self.max_batch())
    }

    /// Largest measured batch whose latency fits `limit`, if any.
    pub fn max_batch_within(&self, limit: Millis) -> Option<u32> {
        self.batches
            .iter()
            .zip(&self.latency_ms)
            .rev()
            .find(|(_, &l)| l <= limit.0)
            .map(|(&b, _)| b)
    }
}

/// A key into a profile set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CurveKey {
    /// Model.
    pub model: ModelName,
    /// MIG profile.
    pub profile: ProfileName,
    /// MPS processes.
    pub procs: u32,
}

/// A non-fatal finding while reading a profile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// File and line as text.
    pub at: String,
    /// What looks odd.
    pub message: String,
}

/// All latency curves of one GPU kind, for any number of models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSet {
    /// GPU kind every row is for.
    pub gpu: GpuName,
    /// Curves by (model, profile, procs); in JSON, a list of `[key, curve]` pairs (JSON
    /// keys are strings only).
    #[serde(with = "pairs")]
    pub curves: BTreeMap<CurveKey, Curve>,
    /// Measurement method per model (the first seen).
    pub methods: BTreeMap<ModelName, Method>,
    /// Odd-looking but accepted measurements.
    pub warnings: Vec<Warning>,
    /// Curves measured under neighbour load (rows with `neighbour_load` > 0), per key, in
    /// increasing load: the interference model's data. Empty for most sets. In JSON, a list
    /// of `[key, curves]` pairs, as `curves`.
    #[serde(default, with = "pairs")]
    pub loaded: BTreeMap<CurveKey, Vec<LoadedCurve>>,
}

/// A map with structured keys as a sequence of `(key, value)` pairs, which every serde
/// format can hold (a JSON object's keys must be strings).
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// A curve measured while the GPU's other instances were busy a fraction `load` of the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedCurve {
    /// Neighbour load in (0, 1].
    pub load: f64,
    /// The latency curve measured at that load.
    pub curve: Curve,
}

const REQUIRED: [&str; 5] = ["model", "gpu", "profile", "batch", "latency_ms"];
const OPTIONAL: [&str; 5] = [
    "latency_p99_ms",
    "procs",
    "throughput_qps",
    "method",
    "neighbour_load",
];

impl ProfileSet {
    /// Reads and validates one or more profile CSV files. All rows must be for one GPU kind.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self> {
        let mut rows = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let text = crate::input::read_text(p, crate::limits::PROFILE_FILE)?;
            rows.extend(parse_csv(&text, p)?);
        }
        Self::from_rows(rows)
    }

    /// Parses CSV text (already read) from a named origin.
    pub fn from_csv_str(text: &str, origin: &Path) -> Result<Self> {
        Self::from_rows(parse_csv(text, origin)?)
    }

    /// Builds a set from rows that carry their origins, checking uniqueness and the GPU.
    pub fn from_rows(rows: Vec<(Origin, ProfileRow)>) -> Result<Self> {
        let cat = Catalogue::builtin();
        let Some((first_origin, first)) = rows.first() else {
            return Err(Error::Invalid(
                "no profile rows: the profile files are empty".into(),
            ));
        };
        let gpu_spec = cat
            .gpu(first.gpu.as_str())
            .map_err(|e| Error::field(first_origin.clone(), "gpu", e.to_string()))?;
        let gpu = gpu_spec.name.clone();
        // One pass over the rows, borrowing their names: rows grouped by (model, profile,
        // procs, neighbour load) as indices, so nothing is allocated per row.
        let mut groups: HashMap<Group<'_>, Vec<usize>> = HashMap::new();
        let mut profiles_ok: HashSet<&str> = HashSet::new();
        let mut methods = BTreeMap::new();
        let mut last: Option<(Group<'_>, Vec<usize>)> = None;
        for (i, (origin, r)) in rows.iter().enumerate() {
            if r.gpu != first.gpu {
                let this = cat
                    .gpu(r.gpu.as_str())
                    .map_err(|e| Error::field(origin.clone(), "gpu", e.to_string()))?;
                if this.name != gpu {
                    return Err(Error::field(
                        origin.clone(),
                        "gpu",
                        format!(
                            "{} differs from {} at {}: one profile set is for one GPU kind",
                            this.name, gpu, first_origin
                        ),
                    ));
                }
            }
            if !profiles_ok.contains(r.profile.as_str()) {
                gpu_spec
                    .profile(r.profile.as_str())
                    .map_err(|e| Error::field(origin.clone(), "profile", e.to_string()))?;
                profiles_ok.insert(r.profile.as_str());
            }
            if !methods.contains_key(r.model.as_str()) {
                methods.insert(r.model.clone(), r.method);
            }
            let key = (
                r.model.as_str(),
                r.profile.as_str(),
                r.procs,
                r.neighbour_load.to_bits(),
            );
            // Rows of one curve are usually consecutive: hash only when the key changes.
            match &mut last {
                Some((k, v)) if *k == key => v.push(i),
                _ => {
                    if let Some((k, v)) = last.take() {
                        groups.entry(k).or_default().extend(v);
                    }
                    last = Some((key, vec![i]));
                }
            }
        }
        if let Some((k, v)) = last {
            groups.entry(k).or_default().extend(v);
        }
        check_duplicates(&rows, &mut groups)?;
        check_neighbour_loads(&rows, &groups)?;
        let Curves {
            curves,
            warnings,
            loaded,
        } = curves_of(&rows, groups)?;
        Ok(Self {
            gpu,
            curves,
            methods,
            warnings,
            loaded,
        })
    }

    /// The catalogue entry of this set's GPU.
    pub fn gpu_spec(&self) -> &'static GpuSpec {
        Catalogue::builtin()
            .gpu(self.gpu.as_str())
            .expect("checked at load")
    }

    /// The curve of a model on a profile with `procs` processes.
    pub fn curve(&self, model: &str, profile: &str, procs: u32) -> Option<&Curve> {
        self.curves.get(&CurveKey {
            model: model.into(),
            profile: profile.into(),
            procs,
        })
    }

    /// Models present, sorted.
    pub fn models(&self) -> Vec<ModelName> {
        let mut v: Vec<ModelName> = self.curves.keys().map(|k| k.model.clone()).collect();
        v.dedup();
        v
    }

    /// Profiles measured for a model (any procs), in catalogue order.
    pub fn profiles_of(&self, model: &str) -> Vec<ProfileName> {
        let spec = self.gpu_spec();
        spec.profiles
            .iter()
            .filter(|p| {
                self.curves
                    .keys()
                    .any(|k| k.model.as_str() == model && k.profile == p.name)
            })
            .map(|p| p.name.clone())
            .collect()
    }

    /// Whether a model is measured on a profile (at any process count).
    pub fn measures(&self, model: &str, profile: &str) -> bool {
        // Keys sort by (model, profile, procs): the first at or after procs 0 tells.
        let from = CurveKey {
            model: model.into(),
            profile: profile.into(),
            procs: 0,
        };
        self.curves
            .range(from..)
            .next()
            .is_some_and(|(k, _)| k.model.as_str() == model && k.profile.as_str() == profile)
    }

    /// MPS process counts measured for a model on a profile, ascending.
    pub fn procs_of(&self, model: &str, profile: &str) -> Vec<u32> {
        self.curves
            .keys()
            .filter(|k| k.model.as_str() == model && k.profile.as_str() == profile)
            .map(|k| k.procs)
            .collect()
    }

    /// Keeps only the given models (a scenario names the models it serves).
    pub fn restrict_to(&self, models: &[&str]) -> Self {
        let mut s = self.clone();
        s.curves.retain(|k, _| models.contains(&k.model.as_str()));
        s.loaded.retain(|k, _| models.contains(&k.model.as_str()));
        s.methods.retain(|k, _| models.contains(&k.as_str()));
        s
    }

    /// The curves of one model only, found by a range query (linear in that model's curves,
    /// not in the whole set: a scenario whose many models share one file stays linear).
    pub fn only(&self, model: &str) -> Self {
        let prefix = format!("{model} on ");
        Self {
            gpu: self.gpu.clone(),
            curves: of_model(&self.curves, model),
            loaded: of_model(&self.loaded, model),
            methods: self
                .methods
                .get_key_value(model)
                .map(|(k, v)| (k.clone(), *v))
                .into_iter()
                .collect(),
            warnings: self
                .warnings
                .iter()
                .filter(|w| w.at.starts_with(&prefix))
                .cloned()
                .collect(),
        }
    }

    /// Merges another set of the same GPU into this one; a curve present in both is an error.
    pub fn merge(&mut self, other: ProfileSet) -> Result<()> {
        if other.gpu != self.gpu {
            return Err(Error::Invalid(format!(
                "profiles for {} and {} cannot be mixed in one scenario",
                self.gpu, other.gpu
            )));
        }
        for (k, c) in other.curves {
            if self.curves.contains_key(&k) {
                if self.curves[&k] == c {
                    continue;
                }
                return Err(Error::Invalid(format!(
                    "{} on {} (procs {}) is measured in two different profile files",
                    k.model, k.profile, k.procs
                )));
            }
            self.curves.insert(k, c);
        }
        for (k, v) in other.loaded {
            match self.loaded.get(&k) {
                Some(mine) if *mine != v => {
                    return Err(Error::Invalid(format!(
                    "{} on {} (procs {}) has neighbour-load curves in two different profile files",
                    k.model, k.profile, k.procs
                )))
                }
                _ => {
                    self.loaded.insert(k, v);
                }
            }
        }
        for (m, me) in other.methods {
            self.methods.entry(m).or_insert(me);
        }
        self.warnings.extend(other.warnings);
        Ok(())
    }

    /// Whether any curve was measured under neighbour load.
    pub fn has_loaded(&self) -> bool {
        !self.loaded.is_empty()
    }

    /// The set as measured with every neighbour at `load`: each curve that has a curve
    /// measured at exactly that load is replaced by it (curves without one, such as a
    /// whole-GPU profile that has no neighbours, stay as they are), and the loaded curves are
    /// dropped, so no interference model applies on top. `load` 1 gives the "all neighbours
    /// flat out" profiles. An error if no curve was measured at that load.
    pub fn at_neighbour_load(&self, load: f64) -> Result<Self> {
        let mut s = self.clone();
        let mut hit = 0;
        for (k, v) in &self.loaded {
            if let Some(lc) = v.iter().find(|lc| (lc.load - load).abs() < 1e-9) {
                s.curves.insert(k.clone(), lc.curve.clone());
                hit += 1;
            }
        }
        if hit == 0 {
            return Err(Error::Invalid(format!(
                "no curve of the {} profiles was measured at neighbour load {load}",
                self.gpu
            )));
        }
        s.loaded.clear();
        Ok(s)
    }

    /// The set without its neighbour-load curves (isolated profiles, no interference model).
    pub fn isolated(&self) -> Self {
        let mut s = self.clone();
        s.loaded.clear();
        s
    }

    /// Fills every missing batch between the smallest and largest measured one by linear
    /// interpolation (only when the user asks: the rows it adds are not measurements).
    /// Refuses to create more than [`MAX_INTERPOLATED_POINTS`] points in all.
    pub fn interpolated(&self) -> Result<Self> {
        let points: u64 = self
            .curves
            .values()
            .map(|c| (c.max_batch() - c.batches[0]) as u64 + 1)
            .sum();
        if points > MAX_INTERPOLATED_POINTS {
            return Err(Error::Invalid(format!(
                "interpolating every batch between the measured ones would create {points} points, above the limit of {MAX_INTERPOLATED_POINTS}"
            )));
        }
        let mut s = self.clone();
        for (key, c) in s.curves.iter_mut() {
            let (lo, hi) = (c.batches[0], c.max_batch());
            let batches: Vec<u32> = (lo..=hi).collect();
            let at = |values: &[f64]| -> Vec<f64> {
                batches
                    .iter()
                    .map(|&b| {
                        c.lookup(b, BatchLookup::Interpolate, values)
                            .map_or(f64::NAN, |m| m.0)
                    })
                    .collect()
            };
            let (lat, p99) = (at(&c.latency_ms), at(&c.p99_ms));
            c.throughput_qps = batches
                .iter()
                .zip(&lat)
                .map(|(&b, &l)| key.procs as f64 * b as f64 * 1000.0 / l)
                .collect();
            c.batches = batches;
            c.latency_ms = lat;
            c.p99_ms = p99;
        }
        Ok(s)
    }
}

/// Rows of one curve: (model, profile, procs, neighbour load as bits), borrowed from the rows.
type Group<'a> = (&'a str, &'a str, u32, u64);

/// At most [`crate::limits::MAX_NEIGHBOUR_LOADS`] neighbour loads per curve: the first row
/// (in file order) of the first load past the limit is named.
fn check_neighbour_loads(
    rows: &[(Origin, ProfileRow)],
    groups: &HashMap<Group<'_>, Vec<usize>>,
) -> Result<()> {
    use crate::limits::MAX_NEIGHBOUR_LOADS;
    // Per curve, the first row of each load above 0.
    let mut firsts: HashMap<(&str, &str, u32), Vec<usize>> = HashMap::new();
    for (&(model, profile, procs, load), idx) in groups {
        if f64::from_bits(load) > 0.0 {
            if let Some(&first) = idx.iter().min() {
                firsts
                    .entry((model, profile, procs))
                    .or_default()
                    .push(first);
            }
        }
    }
    let over = firsts
        .into_values()
        .filter(|v| v.len() > MAX_NEIGHBOUR_LOADS)
        .map(|mut v| {
            v.sort_unstable();
            v[MAX_NEIGHBOUR_LOADS]
        })
        .min();
    let Some(i) = over else { return Ok(()) };
    let (origin, r) = &rows[i];
    Err(Error::field(
        origin.clone(),
        "neighbour_load",
        format!(
            "{} on {} (procs {}) is measured under more than {MAX_NEIGHBOUR_LOADS} neighbour loads \
             (this row's {} is one too many): the interference model keeps at most \
             {MAX_NEIGHBOUR_LOADS} per curve",
            r.model, r.profile, r.procs, r.neighbour_load
        ),
    ))
}

/// Sorts each group's row indices by batch (the order [`curves_of`] builds curves in);
/// equal batches within a group are duplicates, reported at the earliest later row.
fn check_duplicates(
    rows: &[(Origin, ProfileRow)],
    groups: &mut HashMap<Group<'_>, Vec<usize>>,
) -> Result<()> {
    // Within a group (rows in file order), equal batches are duplicates.
    let mut dup: Option<(usize, usize)> = None;
    for idx in groups.values_mut() {
        idx.sort_by_key(|&i| rows[i].1.batch);
        for w in idx.windows(2) {
            if rows[w[0]].1.batch == rows[w[1]].1.batch && dup.is_none_or(|d| w[1] < d.0) {
                dup = Some((w[1], w[0]));
            }
        }
    }
    if let Some((later, earlier)) = dup {
        let (origin, r) = &rows[later];
        return Err(Error::field(
            origin.clone(),
            "batch",
            format!(
                "duplicate measurement of {} on {} at batch {} with {} procs{} (first at {})",
                r.model,
                r.profile,
                r.batch,
                r.procs,
                if r.neighbour_load > 0.0 {
                    format!(" under neighbour load {}", r.neighbour_load)
                } else {
                    String::new()
                },
                rows[earlier].0
            ),
        ));
    }
    Ok(())
}

/// The curves of a set, built from its grouped rows.
struct Curves {
    curves: BTreeMap<CurveKey, Curve>,
    warnings: Vec<Warning>,
    loaded: BTreeMap<CurveKey, Vec<LoadedCurve>>,
}

/// The isolated curves (with warnings where latency falls as the batch grows) and the
/// curves measured under neighbour load, in increasing load, from rows grouped and sorted by
/// batch ([`check_duplicates`]).
fn curves_of(
    rows: &[(Origin, ProfileRow)],
    groups: HashMap<Group<'_>, Vec<usize>>,
) -> Result<Curves> {
    let mut grouped: BTreeMap<CurveKey, Vec<&ProfileRow>> = BTreeMap::new();
    let mut loaded_rows: BTreeMap<(CurveKey, u64), Vec<&ProfileRow>> = BTreeMap::new();
    for ((model, profile, procs, load), idx) in groups {
        let key = CurveKey {
            model: model.into(),
            profile: profile.into(),
            procs,
        };
        let pts: Vec<&ProfileRow> = idx.iter().map(|&i| &rows[i].1).collect();
        if f64::from_bits(load) > 0.0 {
            loaded_rows.insert((key, load), pts);
        } else {
            grouped.insert(key, pts);
        }
    }
    let mut warnings = Vec::new();
    let mut curves = BTreeMap::new();
    for (key, pts) in grouped {
        for w in pts.windows(2) {
            if w[1].latency_ms < w[0].latency_ms {
                warnings.push(Warning {
                    at: format!("{} on {} (procs {})", key.model, key.profile, key.procs),
                    message: format!(
                        "latency falls from {:.3} ms at batch {} to {:.3} ms at batch {}",
                        w[0].latency_ms, w[0].batch, w[1].latency_ms, w[1].batch
                    ),
                });
            }
        }
        curves.insert(key, curve_of(&pts));
    }
    let mut loaded: BTreeMap<CurveKey, Vec<LoadedCurve>> = BTreeMap::new();
    for ((key, load), pts) in loaded_rows {
        if !curves.contains_key(&key) {
            return Err(Error::Invalid(format!(
                "{} on {} (procs {}) is measured under neighbour load but never alone (no row with neighbour_load 0): the interference model needs the isolated curve",
                key.model, key.profile, key.procs
            )));
        }
        loaded.entry(key).or_default().push(LoadedCurve {
            load: f64::from_bits(load),
            curve: curve_of(&pts),
        });
    }
    for v in loaded.values_mut() {
        v.sort_by(|a, b| a.load.total_cmp(&b.load));
    }
    Ok(Curves {
        curves,
        warnings,
        loaded,
    })
}

/// The entries of `map` whose key is `model`'s, found by a range query.
fn of_model<V: Clone>(map: &BTreeMap<CurveKey, V>, model: &str) -> BTreeMap<CurveKey, V> {
    let from = CurveKey {
        model: model.into(),
        profile: ProfileName(String::new()),
        procs: 0,
    };
    map.range(from..)
        .take_while(|(k, _)| k.model.as_str() == model)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn curve_of(pts: &[&ProfileRow]) -> Curve {
    Curve {
        batches: pts.iter().map(|r| r.batch).collect(),
        latency_ms: pts.iter().map(|r| r.latency_ms).collect(),
        p99_ms: pts
            .iter()
            .map(|r| r.latency_p99_ms.unwrap_or(r.latency_ms))
            .collect(),
        throughput_qps: pts.iter().map(|r| r.throughput_qps).collect(),
        has_p99: pts.iter().all(|r| r.latency_p99_ms.is_some()),
    }
}

/// Parses migopt's profile CSV, reporting the file, line and column of every problem.
pub fn parse_csv(text: &str, path: &Path) -> Result<Vec<(Origin, ProfileRow)>> {
    // Fields are trimmed as they are read (cheaper than the csv crate's record trimming).
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| Error::Syntax {
        origin: Origin::at(path, 1),
        message: e.to_string(),
    })?;
    let cols = Columns::of(headers, path)?;
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr
        .read_record(&mut rec)
        .map_err(|e| record_error(&e, &lines, path))?
    {
        let origin = lines.origin(path, rec.position().map(|p| p.byte()).unwrap_or(0));
        let row = cols.row(&rec, &origin)?;
        out.push((origin, row));
    }
    if out.is_empty() {
        return Err(Error::Syntax {
            origin: Origin::file(path),
            message: "no data rows".into(),
        });
    }
    Ok(out)
}

/// A record the csv reader refused, at its line.
fn record_error(e: &csv::Error, lines: &LineIndex, path: &Path) -> Error {
    let byte = e.position().map(|p| p.byte()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields, but the header has {expected_len}")
        }
        _ => e.to_string(),
    };
    Error::Syntax {
        origin: lines.origin(path, byte),
        message,
    }
}

/// Where each column of a profile CSV is: the required ones by [`REQUIRED`]'s order, the
/// optional ones where the header has them.
struct Columns {
    required: [usize; 5],
    p99: Option<usize>,
    procs: Option<usize>,
    throughput: Option<usize>,
    method: Option<usize>,
    neighbour_load: Option<usize>,
}

impl Columns {
    /// The columns of a header line; an unknown or missing column is an error at line 1.
    fn of(headers: &csv::StringRecord, path: &Path) -> Result<Self> {
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let at_header = |message: String| Error::Syntax {
            origin: Origin::at(path, 1),
            message,
        };
        if let Some(h) = headers
            .iter()
            .map(str::trim)
            .find(|h| !REQUIRED.contains(h) && !OPTIONAL.contains(h))
        {
            return Err(at_header(format!(
                "unknown column `{h}` (columns: {}, optional {})",
                REQUIRED.join(","),
                OPTIONAL.join(",")
            )));
        }
        let names: Vec<&str> = headers.iter().map(str::trim).collect();
        if let Some(m) = crate::input::repeated_column(&names) {
            return Err(at_header(m));
        }
        let mut required = [0usize; 5];
        for (i, r) in REQUIRED.iter().enumerate() {
            required[i] = col(r).ok_or_else(|| {
                at_header(format!(
                    "missing required column `{r}` (header must include {})",
                    REQUIRED.join(",")
                ))
            })?;
        }
        Ok(Columns {
            required,
            p99: col("latency_p99_ms"),
            procs: col("procs"),
            throughput: col("throughput_qps"),
            method: col("method"),
            neighbour_load: col("neighbour_load"),
        })
    }

    /// One data record as a row, every field checked.
    fn row(&self, rec: &csv::StringRecord, origin: &Origin) -> Result<ProfileRow> {
        let get = |i: usize| rec.get(i).unwrap_or("").trim();
        // An optional column's value, when the header has it and the field is not empty.
        let opt = |i: Option<usize>| i.map(get).filter(|s| !s.is_empty());
        let text_field = |i: usize, name: &str| -> Result<String> {
            let v = get(i);
            if v.is_empty() {
                Err(Error::field(origin.clone(), name, "is empty"))
            } else {
                Ok(v.to_string())
            }
        };
        let [model_i, gpu_i, profile_i, batch_i, latency_i] = self.required;
        let model = text_field(model_i, "model")?;
        let gpu = text_field(gpu_i, "gpu")?;
        let profile = text_field(profile_i, "profile")?;
        let batch = whole(get(batch_i), origin, "batch", MAX_BATCH)?;
        let latency_ms = latency(get(latency_i), origin, "latency_ms")?;
        let latency_p99_ms = opt(self.p99)
            .map(|s| p99_field(s, origin, latency_ms))
            .transpose()?;
        let procs: u32 = match opt(self.procs) {
            Some(s) => whole(s, origin, "procs", MAX_PROCS)?,
            None => 1,
        };
        let throughput_qps = match opt(self.throughput) {
            Some(s) => throughput_field(s, origin)?,
            None => procs as f64 * batch as f64 * 1000.0 / latency_ms,
        };
        let method = match opt(self.method) {
            Some(s) => method_field(s, origin)?,
            None => Method::Imported,
        };
        let neighbour_load = match opt(self.neighbour_load) {
            Some(s) => fraction_field(s, origin, "neighbour_load")?,
            None => 0.0,
        };
        Ok(ProfileRow {
            model: model.into(),
            gpu: gpu.into(),
            profile: profile.into(),
            batch,
            latency_ms,
            latency_p99_ms,
            procs,
            throughput_qps,
            method,
            neighbour_load,
        })
    }
}

/// `latency_p99_ms`: a latency no lower than the row's median.
fn p99_field(s: &str, origin: &Origin, median_ms: f64) -> Result<f64> {
    let v = latency(s, origin, "latency_p99_ms")?;
    if v < median_ms {
        return Err(Error::field(
            origin.clone(),
            "latency_p99_ms",
            format!("{v} is below the median latency {median_ms}"),
        ));
    }
    Ok(v)
}

/// `throughput_qps`: positive and within [`MAX_RATE_QPS`].
fn throughput_field(s: &str, origin: &Origin) -> Result<f64> {
    let v = positive(s, origin, "throughput_qps")?;
    if v > MAX_RATE_QPS {
        return Err(Error::field(
            origin.clone(),
            "throughput_qps",
            format!("{s} is above the limit of {MAX_RATE_QPS:e} queries/s"),
        ));
    }
    Ok(v)
}

/// `method`: one of the measurement methods.
fn method_field(s: &str, origin: &Origin) -> Result<Method> {
    Method::parse(s).ok_or_else(|| {
        Error::field(
            origin.clone(),
            "method",
            format!("`{s}` is not one of mig, green-context, mps, imported"),
        )
    })
}

/// A fraction between 0 and 1.
fn fraction_field(s: &str, origin: &Origin, field: &str) -> Result<f64> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(Error::field(
            origin.clone(),
            field,
            format!("`{s}` is not a fraction between 0 and 1"),
        )),
    }
}

/// A whole number in 1..=max.
fn whole(s: &str, origin: &Origin, field: &str, max: u32) -> Result<u32> {
    let v: u64 = s.parse().map_err(|_| {
        Error::field(
            origin.clone(),
            field,
            format!("`{s}` is not a whole number"),
        )
    })?;
    if v == 0 {
        return Err(Error::field(origin.clone(), field, "must be at least 1"));
    }
    if v > max as u64 {
        return Err(Error::field(
            origin.clone(),
            field,
            format!("{v} is above the limit of {max}"),
        ));
    }
    Ok(v as u32)
}

/// A latency in [MIN_LATENCY_MS, MAX_LATENCY_MS]: smaller values are unit errors (or
/// denormals that break the arithmetic), larger ones overflow throughputs.
fn latency(s: &str, origin: &Origin, field: &str) -> Result<f64> {
    let v = positive(s, origin, field)?;
    if !(MIN_LATENCY_MS..=MAX_LATENCY_MS).contains(&v) {
        return Err(Error::field(
            origin.clone(),
            field,
            format!(
                "{s} ms is outside the accepted range {MIN_LATENCY_MS:e}..{MAX_LATENCY_MS:e} ms (check the unit)"
            ),
        ));
    }
    Ok(v)
}

fn positive(s: &str, origin: &Origin, field: &str) -> Result<f64> {
    let v: f64 = s
        .parse()
        .map_err(|_| Error::field(origin.clone(), field, format!("`{s}` is not a number")))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(Error::field(
            origin.clone(),
            field,
            format!("{s} must be a positive finite number"),
        ));
    }
    Ok(v)
}

/// Writes rows in migopt's CSV schema (all columns), for importers and the profiler's peers.
pub fn write_csv(rows: &[ProfileRow], mut w: impl std::io::Write) -> std::io::Result<()> {
    let loaded = rows.iter().any(|r| r.neighbour_load > 0.0);
    writeln!(
        w,
        "model,gpu,profile,batch,latency_ms,latency_p99_ms,procs,throughput_qps,method{}",
        if loaded { ",neighbour_load" } else { "" }
    )?;
    for r in rows {
        write!(
            w,
            "{},{},{},{},{},{},{},{},{}",
            r.model,
            r.gpu,
            r.profile,
            r.batch,
            fmt_num(r.latency_ms),
            r.latency_p99_ms.map(fmt_num).unwrap_or_default(),
            r.procs,
            fmt_num(r.throughput_qps),
            r.method.as_str()
        )?;
        if loaded {
            write!(w, ",{}", fmt_num(r.neighbour_load))?;
        }
        writeln!(w)?;
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    const CSV: &str = "model,gpu,profile,batch,latency_ms,latency_p99_ms\n\
        m,H100-80GB,1g.10gb,1,2.0,2.5\n\
        m,H100-80GB,1g.10gb,4,5.0,6\n\
        m,H100-80GB,1g.10gb,8,8.0,9\n\
        m,H100-80GB,7g.80gb,1,1.0,1.1\n\
        m,H100-80GB,7g.80gb,8,2.0,2.2\n";

    fn set() -> ProfileSet {
        ProfileSet::from_csv_str(CSV, Path::new("p.csv")).unwrap()
    }

    #[test]
    fn lookups_interpolate_but_never_extrapolate() {
        let s = set();
        let c = s.curve("m", "1g.10gb", 1).unwrap();
        assert_relative_eq!(c.latency(2, BatchLookup::Interpolate).unwrap().0, 3.0);
        assert_relative_eq!(c.latency(6, BatchLookup::Interpolate).unwrap().0, 6.5);
        assert_eq!(c.latency(2, BatchLookup::Exact), None);
        assert_relative_eq!(c.latency(2, BatchLookup::Pad).unwrap().0, 5.0);
        assert_eq!(c.latency(9, BatchLookup::Interpolate), None);
        assert_relative_eq!(c.latency_p99(4, BatchLookup::Exact).unwrap().0, 6.0);
    }

    #[test]
    fn knee_and_max_batch() {
        let s = set();
        let c = s.curve("m", "1g.10gb", 1).unwrap();
        // throughputs 500, 800, 1000 per second: 90% of 1000 is reached at batch 8.
        assert_eq!(c.knee(0.9), 8);
        assert_eq!(c.knee(0.8), 4);
        assert_eq!(c.max_batch_within(Millis(5.0)), Some(4));
        assert_eq!(c.max_batch_within(Millis(1.0)), None);
    }

    #[test]
    fn throughput_is_derived() {
        let rows = parse_csv(CSV, Path::new("p.csv")).unwrap();
        assert_relative_eq!(rows[1].1.throughput_qps, 800.0);
        assert_eq!(rows[1].0, Origin::at("p.csv", 3));
    }

    #[test]
    fn crlf_files_report_the_right_line() {
        let t = "model,gpu,profile,batch,latency_ms\r\nm,H100-80GB,1g.10gb,1,3\r\nm,H100-80GB,1g.10gb,2,x\r\n";
        let e = parse_csv(t, Path::new("c.csv")).unwrap_err().to_string();
        assert_eq!(e, "c.csv:3: field `latency_ms`: `x` is not a number");
    }

    #[test]
    fn falling_latency_is_a_warning() {
        let t = "model,gpu,profile,batch,latency_ms\nm,H100-80GB,1g.10gb,1,3\nm,H100-80GB,1g.10gb,2,2\n";
        let s = ProfileSet::from_csv_str(t, Path::new("w.csv")).unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].message.contains("falls"));
    }

    #[test]
    fn interpolation_fills_gaps_only_when_asked() {
        let s = set().interpolated().unwrap();
        let c = s.curve("m", "1g.10gb", 1).unwrap();
        assert_eq!(c.batches, (1..=8).collect::<Vec<_>>());
        assert_relative_eq!(c.latency_ms[2], 4.0);
    }

    const LOADED: &str =
        "model,gpu,profile,batch,latency_ms,latency_p99_ms,method,neighbour_load\n\
        m,H200-141GB,1g.18gb,1,2.0,2.5,mps,0\n\
        m,H200-141GB,1g.18gb,8,8.0,9,mps,0\n\
        m,H200-141GB,1g.18gb,1,2.2,2.9,mps,0.3\n\
        m,H200-141GB,1g.18gb,8,9.0,10,mps,0.3\n\
        m,H200-141GB,1g.18gb,1,3.0,3.5,mps,1\n\
        m,H200-141GB,1g.18gb,8,11.0,12,mps,1\n\
        m,H200-141GB,7g.141gb,1,1.0,1.1,mps,0\n";

    #[test]
    fn profile_sets_round_trip_through_json() {
        for s in [
            set(),
            ProfileSet::from_csv_str(LOADED, Path::new("l.csv")).unwrap(),
        ] {
            let text = serde_json::to_string(&s).unwrap();
            let back: ProfileSet = serde_json::from_str(&text).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn neighbour_load_rows_are_kept_beside_the_isolated_curves() {
        let s = ProfileSet::from_csv_str(LOADED, Path::new("l.csv")).unwrap();
        assert_eq!(s.methods["m"], Method::Mps);
        let c = s.curve("m", "1g.18gb", 1).unwrap();
        assert_eq!(c.latency_ms, vec![2.0, 8.0]);
        let key = CurveKey {
            model: "m".into(),
            profile: "1g.18gb".into(),
            procs: 1,
        };
        let l = &s.loaded[&key];
        assert_eq!(l.iter().map(|x| x.load).collect::<Vec<_>>(), vec![0.3, 1.0]);
        assert_eq!(l[1].curve.latency_ms, vec![3.0, 11.0]);
        // all neighbours flat out: the 1.0 curves replace the isolated ones; 7g has none
        let flat = s.at_neighbour_load(1.0).unwrap();
        assert_eq!(
            flat.curve("m", "1g.18gb", 1).unwrap().latency_ms,
            vec![3.0, 11.0]
        );
        assert_eq!(
            flat.curve("m", "7g.141gb", 1).unwrap().latency_ms,
            vec![1.0]
        );
        assert!(!flat.has_loaded());
        assert!(s.at_neighbour_load(0.6).is_err());
        assert!(!s.isolated().has_loaded());
    }

    #[test]
    fn too_many_neighbour_loads_are_refused_at_the_first_row_past_the_limit() {
        use crate::limits::MAX_NEIGHBOUR_LOADS;
        let mut text = String::from(
            "model,gpu,profile,batch,latency_ms,neighbour_load\nm,H200-141GB,1g.18gb,1,2,0\n",
        );
        // Loads 0.01, 0.02, ... one row each: the (MAX + 1)-th is on line MAX + 3.
        for j in 1..=MAX_NEIGHBOUR_LOADS + 2 {
            text.push_str(&format!("m,H200-141GB,1g.18gb,1,3,{}\n", j as f64 / 100.0));
        }
        let rows = parse_csv(&text, Path::new("l.csv")).unwrap();
        let err = ProfileSet::from_rows(rows.clone()).unwrap_err().to_string();
        let line = MAX_NEIGHBOUR_LOADS + 3;
        assert!(
            err.starts_with(&format!(
                "l.csv:{line}: field `neighbour_load`: m on 1g.18gb"
            )),
            "{err}"
        );
        // At the limit the set is read.
        let kept = rows[..MAX_NEIGHBOUR_LOADS + 1].to_vec();
        let s = ProfileSet::from_rows(kept).unwrap();
        assert_eq!(s.loaded.values().next().unwrap().len(), MAX_NEIGHBOUR_LOADS);
    }

    /// `measures` finds a size measured at any process count only (here 2 and 3), and
    /// not a neighbouring size or model.
    #[test]
    fn a_size_measured_only_with_several_processes_counts_as_measured() {
        let text = "model,gpu,profile,batch,latency_ms,procs\n\
                    m,H200-141GB,2g.35gb,1,2,2\n\
                    m,H200-141GB,2g.35gb,1,2,3\n\
                    n,H200-141GB,1g.18gb,1,2,1\n";
        let s = ProfileSet::from_rows(parse_csv(text, Path::new("p.csv")).unwrap()).unwrap();
        assert!(s.measures("m", "2g.35gb"));
        assert!(!s.measures("m", "1g.18gb"));
        assert!(!s.measures("m", "3g.71gb"));
        assert!(!s.measures("n", "2g.35gb"));
        assert!(s.measures("n", "1g.18gb"));
        assert!(!s.measures("o", "1g.18gb"));
    }

    #[test]
    fn neighbour_load_errors_name_the_field() {
        let bad = LOADED.replace("mps,0.3", "mps,1.3");
        let e = ProfileSet::from_csv_str(&bad, Path::new("l.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "l.csv:4: field `neighbour_load`: `1.3` is not a fraction between 0 and 1"
        );
        let only_loaded =
            "model,gpu,profile,batch,latency_ms,neighbour_load\nm,H200-141GB,1g.18gb,1,2,0.5\n";
        let e = ProfileSet::from_csv_str(only_loaded, Path::new("o.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("never alone"), "{e}");
        let dup = format!("{LOADED}m,H200-141GB,1g.18gb,8,9.5,10,mps,0.3\n");
        let e = ProfileSet::from_csv_str(&dup, Path::new("d.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.csv:9: field `batch`: duplicate measurement of m on 1g.18gb at batch 8 with 1 procs under neighbour load 0.3"), "{e}");
    }

    /// The rows of CSV text, without their origins.
    fn rows_of(text: &str) -> Vec<ProfileRow> {
        parse_csv(text, Path::new("p.csv"))
            .unwrap()
            .into_iter()
            .map(|r| r.1)
            .collect()
    }

    /// Rows written by [`write_csv`].
    fn written(rows: &[ProfileRow]) -> String {
        let mut buf = Vec::new();
        write_csv(rows, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn loaded_rows_round_trip_through_write_csv() {
        let rows = rows_of(LOADED);
        let text = &written(&rows);
        assert!(text
            .lines()
            .next()
            .unwrap()
            .ends_with(",method,neighbour_load"));
        let key = |r: &ProfileRow| (r.profile.clone(), r.batch, r.latency_ms, r.neighbour_load);
        assert_eq!(
            rows_of(text).iter().map(key).collect::<Vec<_>>(),
            rows.iter().map(key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn write_then_read_round_trips() {
        let rows = rows_of(CSV);
        assert_eq!(rows_of(&written(&rows)), rows);
    }
}
