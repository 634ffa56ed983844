//! Packing instances into GPUs: the shared bin packer of the heuristics (largest first, best
//! fit over valid placements), and the step every planner ends with, turning per-GPU
//! placements plus per-(model, size) counts into explicit assignments.

use crate::data::Sizes;
use migopt_models::{Assignment, GpuPlan, Placement};
use std::collections::BTreeSet;

/// A GPU state is a bit set over the placement nodes (profile, start) of the allowed sizes.
/// A state is valid exactly when some maximal layout contains it (every valid layout extends
/// to a maximal one), so validity is a subset test against the maximal layouts.
pub(crate) struct Packer<'a> {
    sizes: &'a Sizes,
    /// (size index, start) of each node.
    nodes: Vec<(usize, u32)>,
    /// Maximal layouts as node bit sets.
    layouts: Vec<u64>,
}

/// One packed GPU: its instances as (size index, start, item).
pub(crate) type PackedGpu<T> = Vec<(usize, u32, T)>;

impl<'a> Packer<'a> {
    pub fn new(sizes: &'a Sizes) -> Self {
        let mut nodes = Vec::new();
        for (k, p) in sizes.profiles.iter().enumerate() {
            for &s in &p.starts {
                nodes.push((k, s));
            }
        }
        let layouts = sizes
            .layouts
            .iter()
            .map(|l| {
                l.instances.iter().fold(0u64, |acc, i| {
                    let k = sizes.index(i.profile.as_str());
                    match nodes
                        .iter()
                        .position(|&(nk, ns)| Some(nk) == k && ns == i.start)
                    {
                        Some(n) if n < 64 => acc | (1 << n),
                        _ => acc,
                    }
                })
            })
            .collect();
        Self {
            sizes,
            nodes,
            layouts,
        }
    }

    /// How many maximal layouts contain the state (0: invalid).
    fn room(&self, state: u64) -> usize {
        self.layouts.iter().filter(|&&l| state & !l == 0).count()
    }

    /// The start for size `k` on a GPU in `state` that leaves the most maximal layouts
    /// reachable (ties: the lowest start), if any start is valid.
    fn best_start(&self, state: u64, k: usize) -> Option<(u32, u64)> {
        let mut best: Option<(usize, u32, u64)> = None;
        for (n, &(nk, s)) in self.nodes.iter().enumerate() {
            if nk != k || n >= 64 || state & (1 << n) != 0 {
                continue;
            }
            let next = state | (1 << n);
            let room = self.room(next);
            if room > 0 && best.is_none_or(|b| room > b.0) {
                best = Some((room, s, next));
            }
        }
        best.map(|b| (b.1, b.2))
    }

    /// Packs items of given sizes, largest first, each into the GPU where it leaves the
    /// fewest compute slices free (best fit; ties: the lowest GPU index), opening a GPU when
    /// none fits and fewer than `cap` are open. Returns the GPUs and the items that did not fit.
    pub fn pack<T: Clone>(
        &self,
        mut items: Vec<(usize, T)>,
        cap: Option<usize>,
    ) -> (Vec<PackedGpu<T>>, Vec<(usize, T)>) {
        let sizes = self.sizes;
        let compute = |k: usize| sizes.profiles[k].compute;
        items.sort_by_key(|(k, _)| std::cmp::Reverse((compute(*k), sizes.profiles[*k].slots)));
        let total = sizes.gpu.compute_slices;
        let mut gpus: Vec<PackedGpu<T>> = Vec::new();
        let mut state: Vec<u64> = Vec::new();
        let mut free: Vec<u32> = Vec::new();
        // For each size: GPUs that can take it, ordered by (free compute, index).
        let mut open: Vec<BTreeSet<(u32, usize)>> = vec![BTreeSet::new(); sizes.profiles.len()];
        let mut left = Vec::new();
        for (k, item) in items {
            let target = open[k].iter().next().copied();
            let g = match target {
                Some((_, g)) => g,
                None => {
                    if cap.is_some_and(|c| gpus.len() >= c) || self.best_start(0, k).is_none() {
                        left.push((k, item));
                        continue;
                    }
                    gpus.push(Vec::new());
                    state.push(0);
                    free.push(total);
                    gpus.len() - 1
                }
            };
            let Some((start, next)) = self.best_start(state[g], k) else {
                left.push((k, item));
                continue;
            };
            for set in open.iter_mut() {
                set.remove(&(free[g], g));
            }
            state[g] = next;
            free[g] = free[g].saturating_sub(compute(k));
            gpus[g].push((k, start, item));
            for (j, set) in open.iter_mut().enumerate() {
                if compute(j) <= free[g] && self.best_start(state[g], j).is_some() {
                    set.insert((free[g], g));
                }
            }
        }
        (gpus, left)
    }
}

/// Assigns models to the instances of some GPUs.
///
/// `gpus[g]` lists (size index, start) of GPU g's instances; `counts[m][k]` is how many
/// instances of size k model m gets. Instances are handed out GPU by GPU, each to the model
/// with the most instances of that size still to place (spreading models over GPUs).
/// Instances left over go to `spare(k)` if it names a model, and are dropped otherwise.
/// `point(m, k)` gives the (batch, procs) the instance runs.
pub(crate) fn assign(
    sizes: &Sizes,
    gpus: &[Vec<(usize, u32)>],
    counts: &[Vec<u32>],
    names: &[String],
    spare: &dyn Fn(usize) -> Option<usize>,
    point: &dyn Fn(usize, usize) -> (u32, u32),
) -> Vec<GpuPlan> {
    let mut left: Vec<Vec<u32>> = counts.to_vec();
    let mut out = Vec::new();
    for (g, insts) in gpus.iter().enumerate() {
        let mut layout = Vec::new();
        let mut insts = insts.clone();
        insts.sort_by_key(|&(k, s)| (s, k));
        for (k, start) in insts {
            let pick = (0..left.len())
                .filter(|&m| left[m][k] > 0)
                .max_by_key(|&m| (left[m][k], std::cmp::Reverse(m)));
            let m = match pick {
                Some(m) => {
                    left[m][k] -= 1;
                    m
                }
                None => match spare(k) {
                    Some(m) => m,
                    None => continue,
                },
            };
            let (batch, procs) = point(m, k);
            layout.push(Assignment {
                profile: sizes.profiles[k].name.clone(),
                start,
                model: names[m].as_str().into(),
                batch,
                procs,
            });
        }
        out.push(GpuPlan {
            index: g as u32,
            layout,
        });
    }
    out
}

/// The placements of a layout as (size index, start), skipping profiles outside the sizes.
pub(crate) fn layout_slots(sizes: &Sizes, l: usize) -> Vec<(usize, u32)> {
    sizes.layouts[l]
        .instances
        .iter()
        .filter_map(|i: &Placement| sizes.index(i.profile.as_str()).map(|k| (k, i.start)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use migopt_models::{validate, Catalogue, LayoutRules, Placement};

    fn sizes() -> Sizes {
        let gpu = Catalogue::builtin().gpu("A100-80GB").unwrap();
        Sizes::for_gpu(gpu, LayoutRules::default())
    }

    fn check(s: &Sizes, gpus: &[PackedGpu<usize>]) {
        for g in gpus {
            let ps: Vec<Placement> = g
                .iter()
                .map(|&(k, st, _)| Placement::new(s.profiles[k].name.clone(), st))
                .collect();
            validate(s.gpu, &ps, LayoutRules::default()).unwrap();
        }
    }

    #[test]
    fn best_fit_fills_gpus_with_valid_starts() {
        let s = sizes();
        let (k1, k2, k3, k4) = (
            s.classic(1).unwrap(),
            s.classic(2).unwrap(),
            s.classic(3).unwrap(),
            s.classic(4).unwrap(),
        );
        // 4g+3g on one GPU, then 2g+2g+2g+1g on another.
        let items = vec![(k2, 0), (k4, 1), (k2, 2), (k3, 3), (k2, 4), (k1, 5)];
        let (gpus, left) = Packer::new(&s).pack(items, None);
        assert!(left.is_empty());
        assert_eq!(gpus.len(), 2);
        check(&s, &gpus);
        // Two 3g share a GPU at starts 0 and 4; a 1g then needs another GPU (no slot left).
        let (gpus, _) = Packer::new(&s).pack(vec![(k3, 0), (k3, 1), (k1, 2)], None);
        assert_eq!(gpus.len(), 2);
        let starts: Vec<u32> = gpus[0].iter().map(|e| e.1).collect();
        assert_eq!(starts, [4, 0]);
        check(&s, &gpus);
    }

    #[test]
    fn cap_leaves_items_out() {
        let s = sizes();
        let k7 = s.classic(7).unwrap();
        let (gpus, left) = Packer::new(&s).pack(vec![(k7, 0), (k7, 1), (k7, 2)], Some(2));
        assert_eq!((gpus.len(), left.len()), (2, 1));
    }
}
