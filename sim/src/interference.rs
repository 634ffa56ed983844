//! Interference between instances that share a GPU without MIG's isolation (MPS clients on
//! one GPU): an instance's service time grows with how busy its neighbours are, because they
//! share L2 and HBM bandwidth.
//!
//! ## The model
//!
//! A profile set may hold, beside each isolated curve L₀(b), curves measured while every
//! other partition of a layout was busy a fraction d of the time (`neighbour_load` rows,
//! [`migopt_models::ProfileSet::loaded`]). For instance i and batch b the slowdown at the
//! measured loads is s(b, d) = L_d(b) / L₀(b), with s(b, 0) = 1; between loads it is linear,
//! above the largest it stays there.
//!
//! A query's service time on instance i is its median (or its jitter draw) times
//! s(b, uᵢ), where uᵢ is how busy i's neighbours are when the query is dispatched: the
//! compute-weighted mean, over the other instances j of the same GPU, of j's recent
//! utilisation ρⱼ. ρⱼ is an exponentially weighted moving average, with time constant
//! [`WINDOW_MS`], of the fraction of time j's processes were busy, read from the work the
//! simulation has given j so far (work started minus the part not yet done). So a burst on
//! one instance slows its neighbours for about the next window, and at steady load uᵢ is the
//! neighbours' utilisation, which is what the measured duty stands for.
//!
//! * Off (no cost) when no instance of the plan has neighbour-load curves; an instance
//!   without them (for example a whole-GPU profile) runs at its isolated speed.
//! * Deterministic: a function of the simulated history only.
//! * The dispatcher's estimates stay the isolated medians, as a real dispatcher's would: with
//!   the model on, dispatch-at-arrival rules run on the event-driven engine, whose
//!   dispatcher knows only the medians of queued work and how long running work has run
//!   (unless `oracle_estimates` lets the event-free engine read the slowed service times).
//! * A serving stack's own cost per query (`service_overhead_ms`) is not slowed.

use crate::prep::PInst;
use migopt_models::{BatchLookup, Curve, Error, LoadedCurve};
use std::collections::HashMap;
use std::sync::Arc;

/// Time constant of the neighbours' utilisation average, ms.
pub const WINDOW_MS: f64 = 200.0;

/// Slowdown tables and neighbourhoods, built once per run.
#[derive(Debug, Clone)]
pub(crate) struct Interference {
    width: usize,
    /// Neighbours of each instance with their weights (summing to 1).
    nb: Vec<Vec<(u32, f64)>>,
    /// Load knots of each instance (0 first); empty: no model for it. Shared by the
    /// instances of one curve.
    knots: Vec<Arc<[f64]>>,
    /// Slowdown per instance, `b * knots + k` (shared as `knots`).
    fac: Vec<Arc<[f64]>>,
    procs: Vec<f64>,
}

/// Per-instance slowdown tables (knots, factors), one per curve: the instances of one
/// (model, profile, procs) share theirs, so a plan of many instances holds a table per curve.
type Tables = (Vec<Arc<[f64]>>, Vec<Arc<[f64]>>);

/// One curve's load knots and slowdowns, shared.
type Table = (Arc<[f64]>, Arc<[f64]>);

/// The slowdown tables of the instances with neighbours and neighbour-load curves (the
/// others get empty ones), at most [`migopt_models::limits::MAX_SERVICE_TABLE_CELLS`]
/// entries in all.
fn tables(
    nb: &[Vec<(u32, f64)>],
    curves: &[&Curve],
    loaded: &[&[LoadedCurve]],
    lookup: BatchLookup,
    width: usize,
) -> Result<Tables, Error> {
    let n = nb.len();
    let empty: Arc<[f64]> = Arc::from(Vec::new());
    let mut knots = vec![empty.clone(); n];
    let mut fac = vec![empty; n];
    // Tables by curve (the set's curves, by address): built once each.
    let mut shared: HashMap<(*const Curve, *const LoadedCurve), Table> = HashMap::new();
    let mut cells = 0usize;
    for i in 0..n {
        if loaded[i].is_empty() || nb[i].is_empty() {
            continue;
        }
        let key = (curves[i] as *const Curve, loaded[i].as_ptr());
        let t = match shared.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                cells = cells.saturating_add(width.saturating_mul(loaded[i].len() + 1));
                let limit = migopt_models::limits::MAX_SERVICE_TABLE_CELLS;
                if cells > limit {
                    return Err(Error::Invalid(format!(
                        "the plan's neighbour-load curves with batches up to {} need more than {limit} slowdown-table entries",
                        width - 1
                    )));
                }
                let (k, f) = table(curves[i], loaded[i], lookup, width);
                e.insert((Arc::from(k), Arc::from(f)))
            }
        };
        (knots[i], fac[i]) = t.clone();
    }
    Ok((knots, fac))
}

/// One curve's load knots (0 first) and slowdowns `b * knots + k`.
fn table(
    base_curve: &Curve,
    loaded: &[LoadedCurve],
    lookup: BatchLookup,
    width: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut k = vec![0.0];
    k.extend(loaded.iter().map(|l| l.load));
    let nk = k.len();
    let mut f = vec![1.0; width * nk];
    for b in 1..width {
        let Some(base) = base_curve.latency(b as u32, lookup) else {
            continue;
        };
        for (kk, l) in loaded.iter().enumerate() {
            // A batch the loaded curve lacks keeps the previous load's slowdown.
            let prev = f[b * nk + kk];
            f[b * nk + kk + 1] = l
                .curve
                .latency(b as u32, lookup)
                .map_or(prev, |x| x.0 / base.0);
        }
    }
    (k, f)
}

/// Each instance's recent utilisation, updated lazily when read.
#[derive(Debug, Clone)]
pub(crate) struct LoadState {
    work: Vec<f64>,
    last_t: Vec<f64>,
    last_done: Vec<f64>,
    ewma: Vec<f64>,
}

impl Interference {
    /// The model, or `None` when no instance has neighbour-load curves. Refuses
    /// (`Invalid`) slowdown tables of more than
    /// [`migopt_models::limits::MAX_SERVICE_TABLE_CELLS`] entries in all.
    pub(crate) fn build(
        insts: &[PInst],
        curves: &[&Curve],
        loaded: &[&[LoadedCurve]],
        lookup: BatchLookup,
        width: usize,
    ) -> Result<Option<Self>, Error> {
        if loaded.iter().all(|l| l.is_empty()) {
            return Ok(None);
        }
        let n = insts.len();
        let mut nb = vec![Vec::new(); n];
        // Each instance's neighbours from its GPU's list (not a scan of every instance per
        // instance, which was quadratic in the plan's size).
        let by_gpu = crate::prep::instances_by_gpu(insts);
        for (i, a) in insts.iter().enumerate() {
            let others: Vec<usize> = by_gpu
                .get(&a.gpu)
                .into_iter()
                .flatten()
                .map(|&j| j as usize)
                .filter(|&j| j != i)
                .collect();
            let total: f64 = others.iter().map(|&j| insts[j].compute as f64).sum();
            if total > 0.0 {
                nb[i] = others
                    .iter()
                    .map(|&j| (j as u32, insts[j].compute as f64 / total))
                    .collect();
            }
        }
        let (knots, fac) = tables(&nb, curves, loaded, lookup, width)?;
        Ok(Some(Self {
            width,
            nb,
            knots,
            fac,
            procs: insts.iter().map(|i| i.procs as f64).collect(),
        }))
    }

    /// A fresh state for one replication.
    pub(crate) fn state(&self) -> LoadState {
        let n = self.nb.len();
        LoadState {
            work: vec![0.0; n],
            last_t: vec![0.0; n],
            last_done: vec![0.0; n],
            ewma: vec![0.0; n],
        }
    }

    /// Slowdown of batch `b` on instance `i` at time `t`. `remaining(j)` is the work given
    /// to instance j that is not done by `t` (summed over its processes).
    #[inline]
    pub(crate) fn factor(
        &self,
        st: &mut LoadState,
        i: usize,
        b: usize,
        t: f64,
        remaining: impl Fn(usize) -> f64,
    ) -> f64 {
        let knots = &self.knots[i];
        if knots.is_empty() {
            return 1.0;
        }
        let mut u = 0.0;
        for &(j, w) in &self.nb[i] {
            let j = j as usize;
            let dt = t - st.last_t[j];
            if dt > 0.0 {
                let done = st.work[j] - remaining(j);
                let busy = ((done - st.last_done[j]) / (dt * self.procs[j])).clamp(0.0, 1.0);
                let a = (-dt / WINDOW_MS).exp();
                st.ewma[j] = a * st.ewma[j] + (1.0 - a) * busy;
                st.last_t[j] = t;
                st.last_done[j] = done;
            }
            u += w * st.ewma[j];
        }
        let nk = knots.len();
        let f = &self.fac[i][b.min(self.width - 1) * nk..][..nk];
        let k = knots.partition_point(|&x| x <= u);
        if k >= nk {
            return f[nk - 1];
        }
        let (x0, x1) = (knots[k - 1], knots[k]);
        f[k - 1] + (f[k] - f[k - 1]) * (u - x0) / (x1 - x0)
    }

    /// Instance `i` was given `svc` ms of work.
    #[inline]
    pub(crate) fn add_work(st: &mut LoadState, i: usize, svc: f64) {
        st.work[i] += svc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_of_a_plan_of_the_most_gpus_are_found_in_linear_time() {
        // 100,000 GPUs of seven instances. Each instance's neighbours were found by scanning
        // every instance: 4.9·10¹¹ steps, hours before the first query.
        let n = 700_000;
        let inst = |i: usize| PInst {
            gpu: (i / 7) as u32,
            profile: "1g.10gb".into(),
            start: (i % 7) as u32,
            model: 0,
            batch: 1,
            procs: 1,
            compute: 1,
            group: 0,
            leaf: 0,
            srv: i as u32,
        };
        let insts: Vec<PInst> = (0..n).map(inst).collect();
        let curve = |ms: f64| Curve {
            batches: vec![1],
            latency_ms: vec![ms],
            p99_ms: vec![ms],
            throughput_qps: vec![1000.0 / ms],
            has_p99: false,
        };
        let (base, loaded) = (
            curve(1.0),
            [LoadedCurve {
                load: 1.0,
                curve: curve(1.5),
            }],
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let curves = vec![&base; n];
            let loaded = vec![&loaded[..]; n];
            let f = Interference::build(&insts, &curves, &loaded, BatchLookup::Exact, 2);
            let f = f.unwrap().map(|f| {
                // One curve: one table, shared by every instance.
                assert!((1..n).all(|i| Arc::ptr_eq(&f.fac[0], &f.fac[i])));
                (f.nb[8].clone(), f.fac[8].to_vec())
            });
            tx.send(f).unwrap();
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(60));
        let (nb, fac) = got.expect("built within a minute").expect("a model");
        let w = 1.0 / 6.0;
        assert_eq!(nb, [7, 9, 10, 11, 12, 13].map(|j| (j, w)));
        assert_eq!(fac, [1.0, 1.0, 1.0, 1.5]);
    }

    /// Slowdown tables past the limit are refused before they are built, and the instances of
    /// one curve count its table once: two instances on one GPU, 2 loads (3 entries a batch).
    #[test]
    fn slowdown_tables_past_the_limit_are_refused() {
        let limit = migopt_models::limits::MAX_SERVICE_TABLE_CELLS;
        let inst = |i: u32| PInst {
            gpu: 0,
            profile: "3g.40gb".into(),
            start: 4 * i,
            model: 0,
            batch: 1,
            procs: 1,
            compute: 3,
            group: 0,
            leaf: 0,
            srv: i,
        };
        let curve = Curve {
            batches: vec![1],
            latency_ms: vec![1.0],
            p99_ms: vec![1.0],
            throughput_qps: vec![1000.0],
            has_p99: false,
        };
        let other = curve.clone();
        let loads = [0.5, 1.0].map(|load| LoadedCurve {
            load,
            curve: curve.clone(),
        });
        let insts = [inst(0), inst(1)];
        let build = |curves: [&Curve; 2], width| {
            Interference::build(
                &insts,
                &curves,
                &[&loads[..], &loads[..]],
                BatchLookup::Exact,
                width,
            )
        };
        // Two curves of 3/5 of the limit each: refused.
        let err = build([&curve, &other], limit / 5).unwrap_err().to_string();
        assert!(err.contains("slowdown-table entries"), "{err}");
        // One curve (shared by both instances) of 3/5 of the limit: built.
        assert!(build([&curve, &curve], limit / 5).unwrap().is_some());
    }
}
