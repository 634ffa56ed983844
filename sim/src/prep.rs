//! Everything the engines look up, computed once per call before any query is simulated:
//! service-time tables per (instance, batch), eligibility lists and ELSA's candidate lists.
//! Every way a plan and a scenario can fail to fit together is found
//! here, so the engines themselves never fail.

use crate::ServingMode;
use migopt_models::{BatchLookup, Curve, Error, GpuSpec, LayoutRules, Plan, Scenario};
use std::collections::{BTreeMap, BTreeSet};

/// One served model.
#[derive(Debug, Clone)]
pub(crate) struct PModel {
    pub name: String,
    pub sla: f64,
    /// Batch sizes of the scenario's distribution, and an alias table over them.
    pub batch_vals: Vec<u32>,
    pub batch_probs: Vec<f64>,
    /// Instances serving the model, in plan order.
    pub insts: Vec<u32>,
}

/// One MIG instance of the plan.
#[derive(Debug, Clone)]
pub(crate) struct PInst {
    pub gpu: u32,
    pub profile: String,
    pub start: u32,
    pub model: u32,
    pub batch: u32,
    pub procs: u32,
    pub compute: u32,
    /// ELSA group and position in it.
    pub group: u32,
    pub leaf: u32,
    /// First server (MPS process) of the instance; its servers are `srv..srv + procs`.
    pub srv: u32,
}

/// Per-instance fields read on every query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hot {
    pub srv: u32,
    pub procs: u32,
    pub tree_off: u32,
    pub cap: u32,
    pub leaf: u32,
}

/// Instances of one model that are interchangeable for ELSA: same profile, processes and
/// batch limit, hence the same service time for every query. ELSA keeps a tournament tree
/// per group so that the member that drains first is known in O(1).
#[derive(Debug, Clone)]
pub(crate) struct PGroup {
    /// Offset of the group's tree in the shared tree array; the tree has `2·cap` slots,
    /// root at 1, leaves at `cap..2·cap`.
    pub tree_off: u32,
    pub cap: u32,
}

/// One ELSA candidate for a (model, batch): a group with its service time for the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand {
    /// Offset of the group's tournament tree (its root, the member that drains first, is at
    /// `tree_off + 1`).
    pub tree_off: u32,
    pub compute: u32,
    pub svc: f64,
    /// Plan-aware rules: the (class, size) share slot and its target share.
    pub slot: u32,
    pub share: f64,
    /// The size is the only one some batch class of the model may run on.
    pub protected: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub dynamic: Option<f64>,
    pub models: Vec<PModel>,
    pub insts: Vec<PInst>,
    /// The fields of `insts` the engines touch per query, packed for the cache.
    pub hot: Vec<Hot>,
    /// Initial tournament trees (leaves hold instance ids, padding is u32::MAX).
    pub tree_init: Vec<u32>,
    /// Table width: service tables are indexed `inst * width + batch`.
    pub width: usize,
    /// Median service time, ms; infinite where the instance may not run the batch.
    pub med: Vec<f64>,
    /// Jitter: service = shift + scale · Exp(1)^power.
    pub jitter: Jitter,
    /// Interference between co-located instances, when the profiles have neighbour-load
    /// curves ([`crate::interference`]).
    pub interf: Option<crate::interference::Interference>,
    /// Added to every simulated query's latency but not to any service time, ms: the part
    /// of a real server's own cost per query that keeps no instance busy
    /// ([`crate::SimConfig::latency_overhead_ms`]). Zero unless set.
    pub lat_extra: f64,
    /// The serving stack's cost per query included in every service time, ms
    /// ([`Prepared::add_overhead`]); the interference slowdown does not scale it.
    pub occ_extra: f64,
    /// ELSA candidates per `model * width + batch`, ascending compute.
    pub cand_off: Vec<u32>,
    pub cands: Vec<Cand>,
    /// Each (model, batch)'s quickest candidate service time, ms (infinite where none).
    pub quickest: Vec<f64>,
    /// Eligible instances per `model * width + batch`.
    pub elig_off: Vec<u32>,
    pub elig: Vec<u32>,
    /// The same lists (same offsets) in ascending size, then plan order, with each entry's
    /// share slot: what the dispatcher's candidate lists are built from.
    pub elig_sized: Vec<u32>,
    pub elig_slot: Vec<u32>,
    /// Target share of each (model, batch, profile) slot: the plan's route fraction.
    pub slot_share: Vec<f64>,
    /// Per instance: its size is the only one some batch class of its model may run on.
    pub protected: Vec<bool>,
    pub n_servers: usize,
    pub srv_inst: Vec<u32>,
    /// Compute slices of one GPU, and every GPU index of the plan with its instances.
    pub gpu_slices: u32,
    pub gpus: Vec<(u32, Vec<u32>)>,
}

fn inst_label(gpu: u32, profile: &str, start: u32) -> String {
    format!("GPU {gpu} {profile}@{start}")
}

fn lookup_name(l: BatchLookup) -> &'static str {
    match l {
        BatchLookup::Exact => "exact",
        BatchLookup::Interpolate => "interpolate",
        BatchLookup::Pad => "pad",
    }
}

fn measured_range(c: &Curve) -> String {
    match (c.batches.first(), c.batches.last()) {
        (Some(a), Some(b)) => format!("measured batches {a}..={b}"),
        _ => "no measured batches".into(),
    }
}

/// The plan's instances in plan order, each with its latency curve, and the number of
/// servers (MPS processes) they make.
struct Fleet<'s> {
    insts: Vec<PInst>,
    curves: Vec<&'s Curve>,
    n_servers: u32,
}

/// Rows of per-(model, batch) lists: row `model * width + batch` is
/// `items[off[row]..off[row + 1]]`.
struct Rows<T> {
    off: Vec<u32>,
    items: Vec<T>,
}

/// The serving mode's dynamic-batching queue delay, checked.
fn queue_delay(mode: ServingMode) -> Result<Option<f64>, Error> {
    match mode {
        ServingMode::QueryBatches => Ok(None),
        ServingMode::DynamicBatching { max_queue_delay_ms } => {
            if !max_queue_delay_ms.is_finite() || max_queue_delay_ms < 0.0 {
                return Err(Error::Invalid(format!(
                    "max_queue_delay_ms {max_queue_delay_ms} must be a non-negative number of milliseconds"
                )));
            }
            Ok(Some(max_queue_delay_ms))
        }
    }
}

/// The scenario's models, checked (a batch distribution, a positive SLA), without instances.
fn served_models(sc: &Scenario) -> Result<Vec<PModel>, Error> {
    let mut models: Vec<PModel> = Vec::with_capacity(sc.models.len());
    for m in &sc.models {
        let pmf = m.batch.pmf();
        if pmf.is_empty() {
            return Err(Error::Invalid(format!(
                "model `{}` has an empty batch-size distribution",
                m.name
            )));
        }
        if !(m.sla.0.is_finite() && m.sla.0 > 0.0) {
            return Err(Error::Invalid(format!(
                "model `{}` has SLA {} ms; it must be positive",
                m.name, m.sla.0
            )));
        }
        models.push(PModel {
            name: m.name.to_string(),
            sla: m.sla.0,
            batch_vals: pmf.iter().map(|p| p.0).collect(),
            batch_probs: pmf.iter().map(|p| p.1).collect(),
            insts: Vec::new(),
        });
    }
    if models.len() > u16::MAX as usize {
        return Err(Error::Invalid("more than 65535 models".into()));
    }
    Ok(models)
}

/// The error for an instance whose (model, profile, procs) has no latency curve.
fn no_profile_error(sc: &Scenario, label: &str, a: &migopt_models::Assignment) -> Error {
    let have = sc.profiles.profiles_of(a.model.as_str());
    let have = if have.is_empty() {
        "none".to_string()
    } else {
        have.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Error::Invalid(format!(
        "{label}: no latency profile for model `{}` on {} with {} process(es) (profiled on: {have})",
        a.model, a.profile, a.procs
    ))
}

/// The plan's instances with their curves, each listed under its model in `models`; every
/// model must get one.
fn fleet<'s>(
    plan: &Plan,
    sc: &'s Scenario,
    gpu: &GpuSpec,
    models: &mut [PModel],
) -> Result<Fleet<'s>, Error> {
    let mut insts = Vec::new();
    let mut curves: Vec<&Curve> = Vec::new();
    let mut n_servers = 0u32;
    for (g, a) in plan.instances() {
        let label = inst_label(g, a.profile.as_str(), a.start);
        let Some(mi) = sc.models.iter().position(|m| m.name == a.model) else {
            return Err(Error::Invalid(format!(
                "{label} serves model `{}`, which scenario `{}` does not have",
                a.model, sc.name
            )));
        };
        if a.procs == 0 || a.batch == 0 {
            return Err(Error::Invalid(format!(
                "{label}: batch {} and procs {} must both be at least 1",
                a.batch, a.procs
            )));
        }
        let spec = gpu.profile(a.profile.as_str())?;
        let Some(curve) = sc
            .profiles
            .curve(a.model.as_str(), a.profile.as_str(), a.procs)
        else {
            return Err(no_profile_error(sc, &label, a));
        };
        models[mi].insts.push(insts.len() as u32);
        insts.push(PInst {
            gpu: g,
            profile: a.profile.to_string(),
            start: a.start,
            model: mi as u32,
            batch: a.batch,
            procs: a.procs,
            compute: spec.compute,
            group: 0,
            leaf: 0,
            srv: n_servers,
        });
        n_servers += a.procs;
        curves.push(curve);
    }
    if let Some(m) = models.iter().find(|m| m.insts.is_empty()) {
        return Err(Error::Invalid(format!(
            "model `{}` has traffic but no instance in the plan",
            m.name
        )));
    }
    Ok(Fleet {
        insts,
        curves,
        n_servers,
    })
}

/// The largest batch instance `i` of `f` may run: its batch limit, and with query batches
/// also its profile's largest measured batch (at least 1 when `floor`).
fn top_batch(f: &Fleet, i: usize, dynamic: bool, floor: bool) -> u32 {
    let inst = &f.insts[i];
    if dynamic {
        inst.batch
    } else {
        let mb = f.curves[i].max_batch();
        inst.batch.min(if floor { mb.max(1) } else { mb })
    }
}

/// Batch sizes each model's queries come in (its distribution and `extra`), checked before
/// any table is sized by them (a trace could name batch 10⁹): some instance of the model
/// must be able to run each.
fn needed_batches(
    models: &[PModel],
    f: &Fleet,
    extra: &BTreeSet<(u32, u32)>,
    dynamic: bool,
    lookup: BatchLookup,
) -> Result<Vec<BTreeSet<u32>>, Error> {
    let mut needed: Vec<BTreeSet<u32>> = models
        .iter()
        .map(|m| m.batch_vals.iter().copied().collect())
        .collect();
    for &(m, b) in extra {
        needed[m as usize].insert(b);
    }
    for (mi, n) in needed.iter().enumerate() {
        let m = &models[mi];
        let top = m
            .insts
            .iter()
            .map(|&i| top_batch(f, i as usize, dynamic, false))
            .max()
            .unwrap_or(0);
        if let Some(&b) = n.iter().find(|&&b| b > top) {
            return Err(no_instance_error(
                m, b, &f.insts, &f.curves, dynamic, lookup,
            ));
        }
    }
    Ok(needed)
}

/// Table width: the largest batch any instance may run, or any query carries, plus one;
/// bounded by the service-table limit.
fn table_width(
    models: &[PModel],
    f: &Fleet,
    needed: &[BTreeSet<u32>],
    dynamic: bool,
) -> Result<usize, Error> {
    let mut width = 1usize;
    for i in 0..f.insts.len() {
        width = width.max(top_batch(f, i, dynamic, true) as usize + 1);
    }
    for n in needed {
        if let Some(&b) = n.iter().next_back() {
            width = width.max(b as usize + 1);
        }
    }
    let ni = f.insts.len();
    let cells = (ni + models.len())
        .saturating_mul(width)
        .saturating_add(f.n_servers as usize);
    if cells > migopt_models::limits::MAX_SERVICE_TABLE_CELLS {
        return Err(Error::Invalid(format!(
            "the plan's {ni} instances ({} MPS processes) and {} models with batches up to {} need {cells} service-table entries, above the limit of {}",
            f.n_servers,
            models.len(),
            width - 1,
            migopt_models::limits::MAX_SERVICE_TABLE_CELLS
        )));
    }
    Ok(width)
}

/// Median service times and jitter per `inst * width + batch`: with dynamic batching every
/// batch up to the instance's limit (which the profile must cover), with query batches the
/// batches the profile covers.
fn service_tables(
    models: &[PModel],
    f: &Fleet,
    width: usize,
    dynamic: bool,
    lookup: BatchLookup,
) -> Result<(Vec<f64>, Jitter), Error> {
    let ni = f.insts.len();
    let mut med = vec![f64::INFINITY; ni * width];
    let mut jit = Jitter::new(ni * width);
    for (i, inst) in f.insts.iter().enumerate() {
        let c = f.curves[i];
        let mut set = |b: u32, l: f64| {
            let p99 = c.latency_p99(b, lookup).map(|m| m.0).unwrap_or(l);
            set_service(
                &mut med,
                &mut jit,
                i * width + b as usize,
                l,
                p99,
                c.has_p99,
            );
        };
        if dynamic {
            // A dynamic batch can come out at any size up to the instance's batch.
            for n in 1..=inst.batch {
                let Some(l) = c.latency(n, lookup) else {
                    let label = inst_label(inst.gpu, &inst.profile, inst.start);
                    let model = &models[inst.model as usize].name;
                    return Err(Error::Invalid(format!(
                        "model `{model}` on {} ({label}): dynamic batching may run batches of 1..={} but the profile has no latency for batch {n} ({}, batch_lookup {}; migopt never extrapolates)",
                        inst.profile,
                        inst.batch,
                        measured_range(c),
                        lookup_name(lookup)
                    )));
                };
                set(n, l.0);
            }
        } else {
            for b in 1..=inst.batch.min(width as u32 - 1) {
                if let Some(l) = c.latency(b, lookup) {
                    set(b, l.0);
                }
            }
        }
    }
    Ok((med, jit))
}

/// Whether instance `inst` (latency curve `c`) can run a query of batch `b`: the one rule for
/// it, which [`eligibility`] and [`TraceCheck`] apply. Query batches: b ≤ the assignment's
/// batch and the profile has a latency for b; dynamic batching: b ≤ the instance's batch.
fn runs(inst: &PInst, c: &Curve, b: u32, dynamic: bool, lookup: BatchLookup) -> bool {
    b <= inst.batch && (dynamic || c.latency(b, lookup).is_some())
}

/// A plan's instances, for checking a trace's records before a run: whether some instance
/// of a model can run a query of a batch, under a serving mode (by [`runs`]).
pub(crate) struct TraceCheck<'s> {
    models: Vec<PModel>,
    fleet: Fleet<'s>,
    index: std::collections::HashMap<String, usize>,
    dynamic: bool,
    lookup: BatchLookup,
    /// (model, batch) pairs already found servable: a long trace repeats a few.
    ok: std::collections::HashSet<(usize, u32)>,
}

impl<'s> TraceCheck<'s> {
    /// The plan's instances on `sc`, checked against it as a run checks them.
    pub(crate) fn new(plan: &Plan, sc: &'s Scenario, mode: ServingMode) -> Result<Self, Error> {
        let gpu = plan.gpu_spec()?;
        let mut models = served_models(sc)?;
        let fleet = fleet(plan, sc, gpu, &mut models)?;
        let index = (models.iter().enumerate())
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        Ok(Self {
            models,
            fleet,
            index,
            dynamic: queue_delay(mode)?.is_some(),
            lookup: sc.batch_lookup,
            ok: Default::default(),
        })
    }

    /// `Ok` if some instance of `model` runs batch `b`, else why not (every instance's
    /// reason). A model the plan does not know is left to the trace's own model check.
    pub(crate) fn check(&mut self, model: &str, b: u32) -> Result<(), String> {
        let Some(&mi) = self.index.get(model) else {
            return Ok(());
        };
        if self.ok.contains(&(mi, b)) {
            return Ok(());
        }
        let (f, m) = (&self.fleet, &self.models[mi]);
        let served = (m.insts.iter().map(|&i| i as usize))
            .any(|i| runs(&f.insts[i], f.curves[i], b, self.dynamic, self.lookup));
        if !served {
            let e = no_instance_error(m, b, &f.insts, &f.curves, self.dynamic, self.lookup);
            return Err(match e {
                Error::Invalid(s) => s,
                e => e.to_string(),
            });
        }
        self.ok.insert((mi, b));
        Ok(())
    }
}

/// Eligibility: an instance may take a query of batch b if it has a service time for it
/// (query batches: b ≤ the assignment's batch and the profile covers b; dynamic batching:
/// b ≤ the instance's batch). Every needed batch must have an eligible instance.
fn eligibility(
    models: &[PModel],
    f: &Fleet,
    needed: &[BTreeSet<u32>],
    med: &[f64],
    width: usize,
    (dynamic, lookup): (bool, BatchLookup),
) -> Result<Rows<u32>, Error> {
    let nm = models.len();
    let mut off = vec![0u32; nm * width + 1];
    let mut elig = Vec::new();
    for (mi, m) in models.iter().enumerate() {
        for b in 0..width {
            off[mi * width + b] = elig.len() as u32;
            if b == 0 || !needed[mi].contains(&(b as u32)) {
                continue;
            }
            let before = elig.len();
            for &i in &m.insts {
                let i_ = i as usize;
                if runs(&f.insts[i_], f.curves[i_], b as u32, dynamic, lookup) {
                    debug_assert!(med[i_ * width + b].is_finite());
                    elig.push(i);
                }
            }
            if elig.len() == before {
                return Err(no_instance_error(
                    m, b as u32, &f.insts, &f.curves, dynamic, lookup,
                ));
            }
        }
    }
    off[nm * width] = elig.len() as u32;
    Ok(Rows { off, items: elig })
}

/// ELSA groups, (model, profile, procs, batch limit), each with a tournament tree; sets
/// every instance's group and leaf. Returns the groups and the initial trees.
fn trees(insts: &mut [PInst]) -> (Vec<PGroup>, Vec<u32>) {
    let mut gkey: BTreeMap<(u32, String, u32, u32), Vec<u32>> = BTreeMap::new();
    for (i, inst) in insts.iter().enumerate() {
        gkey.entry((inst.model, inst.profile.clone(), inst.procs, inst.batch))
            .or_default()
            .push(i as u32);
    }
    let mut groups = Vec::new();
    let mut tree_init = Vec::new();
    // One depth for all trees: the update loop then always runs the same number of
    // times, which the branch predictor learns.
    let cap = gkey
        .values()
        .map(|m| m.len())
        .max()
        .unwrap_or(1)
        .next_power_of_two() as u32;
    for members in gkey.values() {
        let off = tree_init.len() as u32;
        tree_init.resize(tree_init.len() + 2 * cap as usize, u32::MAX);
        for (k, &i) in members.iter().enumerate() {
            tree_init[(off + cap) as usize + k] = i;
            insts[i as usize].group = groups.len() as u32;
            insts[i as usize].leaf = k as u32;
        }
        // All drain times start at zero: the leftmost member wins every match.
        for node in (1..cap).rev() {
            let (l, r) = (
                tree_init[(off + 2 * node) as usize],
                tree_init[(off + 2 * node + 1) as usize],
            );
            tree_init[(off + node) as usize] = if l == u32::MAX { r } else { l };
        }
        groups.push(PGroup { tree_off: off, cap });
    }
    (groups, tree_init)
}

/// ELSA candidates per (model, batch): one entry per group among the eligible instances,
/// smallest compute first.
fn candidate_rows(
    insts: &[PInst],
    groups: &[PGroup],
    elig: &Rows<u32>,
    med: &[f64],
    shares: &crate::sched::ShareTables,
    width: usize,
) -> Rows<Cand> {
    let n_rows = elig.off.len() - 1;
    let mut off = Vec::with_capacity(n_rows + 1);
    let mut cands = Vec::new();
    for row in 0..n_rows {
        off.push(cands.len() as u32);
        let b = row % width;
        let mut seen = BTreeSet::new();
        let mut list: Vec<Cand> = Vec::new();
        for &i in &elig.items[elig.off[row] as usize..elig.off[row + 1] as usize] {
            let inst = &insts[i as usize];
            if seen.insert(inst.group) {
                let slot = shares.slot_of(row, i);
                list.push(Cand {
                    tree_off: groups[inst.group as usize].tree_off,
                    compute: inst.compute,
                    svc: med[i as usize * width + b],
                    slot,
                    share: shares.slot_share[slot as usize],
                    protected: shares.protected[i as usize],
                });
            }
        }
        list.sort_by_key(|c| (c.compute, c.tree_off));
        cands.extend(list);
    }
    off.push(cands.len() as u32);
    Rows { off, items: cands }
}

/// Each row's quickest candidate service time (infinite for a row without candidates).
fn quickest_rows(c: &Rows<Cand>) -> Vec<f64> {
    c.off
        .windows(2)
        .map(|r| {
            c.items[r[0] as usize..r[1] as usize]
                .iter()
                .fold(f64::INFINITY, |s, c| s.min(c.svc))
        })
        .collect()
}

/// Every GPU index of the plan with its instances, in one pass over the instances (a scan
/// of every instance per GPU was quadratic: hours on a plan of 100,000 GPUs).
fn gpu_members(plan: &Plan, insts: &[PInst]) -> Vec<(u32, Vec<u32>)> {
    let by_gpu = instances_by_gpu(insts);
    plan.gpus
        .iter()
        .map(|g| (g.index, by_gpu.get(&g.index).cloned().unwrap_or_default()))
        .collect()
}

/// The instances of each GPU index, each list in instance order.
pub(crate) fn instances_by_gpu(insts: &[PInst]) -> BTreeMap<u32, Vec<u32>> {
    let mut by_gpu: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (i, x) in insts.iter().enumerate() {
        by_gpu.entry(x.gpu).or_default().push(i as u32);
    }
    by_gpu
}

/// Interference between co-located instances, from the profiles' neighbour-load curves.
fn interference(
    sc: &Scenario,
    models: &[PModel],
    f: &Fleet,
    width: usize,
) -> Result<Option<crate::interference::Interference>, Error> {
    let loaded: Vec<&[migopt_models::LoadedCurve]> = f
        .insts
        .iter()
        .map(|i| {
            sc.profiles
                .loaded
                .get(&migopt_models::CurveKey {
                    model: models[i.model as usize].name.as_str().into(),
                    profile: i.profile.as_str().into(),
                    procs: i.procs,
                })
                .map_or(&[][..], |v| v.as_slice())
        })
        .collect();
    crate::interference::Interference::build(&f.insts, &f.curves, &loaded, sc.batch_lookup, width)
}

impl Prepared {
    /// Checks the plan against the scenario and builds the tables. `extra` lists
    /// (model, batch) pairs that a trace will ask for beyond the scenario's distributions.
    pub(crate) fn new(
        plan: &Plan,
        sc: &Scenario,
        mode: ServingMode,
        extra: &BTreeSet<(u32, u32)>,
    ) -> Result<Self, Error> {
        let gpu = plan.gpu_spec()?;
        let sgpu = sc.gpu_spec();
        if gpu.name != sgpu.name {
            return Err(Error::Invalid(format!(
                "the plan is for {} but the scenario `{}` is for {}",
                gpu.name, sc.name, sgpu.name
            )));
        }
        // Non-classic profiles are legal MIG; the placement rules themselves are what must
        // hold.
        plan.validate(LayoutRules {
            all_profiles: true,
            pre_r510: false,
        })?;
        let dynamic = queue_delay(mode)?;
        let (dy, lookup) = (dynamic.is_some(), sc.batch_lookup);
        let mut models = served_models(sc)?;
        let mut f = fleet(plan, sc, gpu, &mut models)?;
        let needed = needed_batches(&models, &f, extra, dy, lookup)?;
        let width = table_width(&models, &f, &needed, dy)?;
        let (med, jitter) = service_tables(&models, &f, width, dy, lookup)?;
        let elig = eligibility(&models, &f, &needed, &med, width, (dy, lookup))?;
        let shares =
            crate::sched::ShareTables::new(plan, &models, &f.insts, width, &elig.off, &elig.items);
        let (groups, tree_init) = trees(&mut f.insts);
        let cands = candidate_rows(&f.insts, &groups, &elig, &med, &shares, width);
        let interf = interference(sc, &models, &f, width)?;
        let srv_inst = (f.insts.iter().enumerate())
            .flat_map(|(i, x)| std::iter::repeat_n(i as u32, x.procs as usize))
            .collect();
        let hot = f
            .insts
            .iter()
            .map(|i| Hot {
                srv: i.srv,
                procs: i.procs,
                tree_off: groups[i.group as usize].tree_off,
                cap: groups[i.group as usize].cap,
                leaf: i.leaf,
            })
            .collect();
        Ok(Self {
            dynamic,
            gpus: gpu_members(plan, &f.insts),
            models,
            hot,
            tree_init,
            width,
            med,
            jitter,
            interf,
            lat_extra: 0.0,
            occ_extra: 0.0,
            quickest: quickest_rows(&cands),
            cand_off: cands.off,
            cands: cands.items,
            elig_off: elig.off,
            elig: elig.items,
            elig_sized: shares.elig_sized,
            elig_slot: shares.elig_slot,
            slot_share: shares.slot_share,
            protected: shares.protected,
            n_servers: f.n_servers as usize,
            srv_inst,
            gpu_slices: gpu.compute_slices,
            insts: f.insts,
        })
    }

    /// Adds a fixed per-query cost of the serving stack to every service time (medians, the
    /// candidates' estimates and jitter draws). The interference slowdown scales the GPU
    /// work only, not this cost.
    pub(crate) fn add_overhead(&mut self, ms: f64) {
        if ms == 0.0 {
            return;
        }
        self.occ_extra += ms;
        for (m, sh) in self.med.iter_mut().zip(self.jitter.shift.iter_mut()) {
            if m.is_finite() {
                *m += ms;
                *sh += ms;
            }
        }
        for c in &mut self.cands {
            c.svc += ms;
        }
        for q in &mut self.quickest {
            *q += ms;
        }
    }

    /// The (model, batch) row of a query of `model` (its name) with `batch` samples, checked:
    /// the model is served and some instance of it runs the batch.
    pub(crate) fn class(&self, model: &str, batch: u32) -> Result<(usize, usize), Error> {
        let m = self
            .models
            .iter()
            .position(|x| x.name == model)
            .ok_or_else(|| Error::Invalid(format!("model `{model}` is not served by this plan")))?;
        let b = batch as usize;
        if b == 0 || b >= self.width || self.eligible(m, b).is_empty() {
            return Err(Error::Invalid(format!(
                "no instance of model `{model}` takes a query of batch {batch}"
            )));
        }
        Ok((m, b))
    }

    /// Eligible instances for a (model, batch).
    #[inline(always)]
    pub(crate) fn eligible(&self, m: usize, b: usize) -> &[u32] {
        let row = m * self.width + b;
        &self.elig[self.elig_off[row] as usize..self.elig_off[row + 1] as usize]
    }

    /// Eligible instances for a (model, batch) in ascending size, with their share slots.
    #[inline(always)]
    pub(crate) fn eligible_sized(&self, m: usize, b: usize) -> (&[u32], &[u32]) {
        let row = m * self.width + b;
        let r = self.elig_off[row] as usize..self.elig_off[row + 1] as usize;
        (&self.elig_sized[r.clone()], &self.elig_slot[r])
    }

    /// ELSA candidates for a (model, batch).
    #[inline(always)]
    pub(crate) fn candidates(&self, m: usize, b: usize) -> &[Cand] {
        let row = m * self.width + b;
        &self.cands[self.cand_off[row] as usize..self.cand_off[row + 1] as usize]
    }
}

/// Service-time parameters of one (instance, batch). With jitter the service time is
/// shift + scale·E^power with E ~ Exp(1), fitted so that its median is the profile's p50 and
/// its 99th percentile the profile's p99:
///
/// * while p99 ≤ (ln 100 / ln 2)·p50 ≈ 6.64·p50, a shifted exponential (power 1):
///   scale = (p99 − p50)/ln 50, shift = p50 − scale·ln 2;
/// * beyond, that shift would be negative, so a Weibull (shift 0): power
///   γ = ln(p99/p50) / ln(ln 100 / ln 2), scale = p50/(ln 2)^γ.
///
/// Either way both quantiles are the profile's. Without a measured p99 there is no jitter.
fn set_service(med: &mut [f64], j: &mut Jitter, k: usize, p50: f64, p99: f64, has_p99: bool) {
    med[k] = p50;
    let (ln2, ln100) = (2f64.ln(), 100f64.ln());
    if has_p99 && p99 > p50 {
        let s = (p99 - p50) / 50f64.ln();
        let a = p50 - s * ln2;
        if a >= 0.0 {
            (j.shift[k], j.scale[k], j.power[k]) = (a, s, 1.0);
        } else {
            let g = (p99 / p50).ln() / (ln100 / ln2).ln();
            (j.shift[k], j.scale[k], j.power[k]) = (0.0, p50 / ln2.powf(g), g);
        }
    } else {
        (j.shift[k], j.scale[k], j.power[k]) = (p50, 0.0, 1.0);
    }
}

/// Jitter parameters per `inst * width + batch` (see [`set_service`]).
#[derive(Debug, Clone)]
pub(crate) struct Jitter {
    pub shift: Vec<f64>,
    pub scale: Vec<f64>,
    pub power: Vec<f64>,
}

impl Jitter {
    fn new(n: usize) -> Self {
        Self {
            shift: vec![f64::INFINITY; n],
            scale: vec![0.0; n],
            power: vec![1.0; n],
        }
    }

    /// A service time for cell `k` from one Exp(1) draw `e`.
    #[inline(always)]
    pub(crate) fn draw(&self, k: usize, e: f64) -> f64 {
        let p = self.power[k];
        let x = if p == 1.0 { e } else { e.powf(p) };
        self.shift[k] + self.scale[k] * x
    }
}

fn no_instance_error(
    m: &PModel,
    b: u32,
    insts: &[PInst],
    curves: &[&Curve],
    dynamic: bool,
    lookup: BatchLookup,
) -> Error {
    let mut why: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for &i in &m.insts {
        let inst = &insts[i as usize];
        let c = curves[i as usize];
        let reason = if b > inst.batch {
            format!("{} takes batches up to {}", inst.profile, inst.batch)
        } else if !dynamic && c.latency(b, lookup).is_none() {
            format!(
                "{} has no latency for batch {b} ({}, batch_lookup {}; migopt never extrapolates)",
                inst.profile,
                measured_range(c),
                lookup_name(lookup)
            )
        } else {
            continue;
        };
        if seen.insert(reason.clone()) {
            why.push(reason);
        }
    }
    Error::Invalid(format!(
        "no instance of model `{}` can serve a query of batch {b}: {}",
        m.name,
        why.join("; ")
    ))
}
