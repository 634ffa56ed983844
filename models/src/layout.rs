//! MIG layouts: sets of GPU instances placed on one GPU, the independent validator that
//! every plan passes through, and the enumeration of all maximal layouts.
//!
//! Enumeration works on a placement conflict graph: one node per (profile, start), an edge
//! where two placements overlap in memory slots (or may not coexist for another rule). A
//! layout is an independent set of that graph; a *maximal* layout is one to which no further
//! instance can be added. They are found as the maximal cliques of the complement graph.
//! The validator checks the rules directly on slot bit masks, independently of the graph,
//! so the two cross-check each other in the tests.

use crate::catalogue::{GpuSpec, ProfileClass, ProfileSpec};
use crate::error::{Error, Result};
use crate::units::ProfileName;
use petgraph::graph::{NodeIndex, UnGraph};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One GPU instance: a profile at an NVML placement start (memory-slot index).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Placement {
    /// Profile name.
    pub profile: ProfileName,
    /// First memory slot (the NVML placement start).
    pub start: u32,
}

impl Placement {
    /// A placement from a profile name and start.
    pub fn new(profile: impl Into<ProfileName>, start: u32) -> Self {
        Self {
            profile: profile.into(),
            start,
        }
    }
}

/// Which profiles and rules apply when enumerating or validating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LayoutRules {
    /// Include double-memory 1g and `+me` profiles, not only the classic ones.
    pub all_profiles: bool,
    /// Apply the pre-R510 driver rule (no 4g beside 3g).
    pub pre_r510: bool,
}

/// A layout of one GPU: its instances, sorted by start, plus what is left idle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Instances, sorted by start slot.
    pub instances: Vec<Placement>,
    /// Memory slots that no instance occupies.
    pub idle_slots: Vec<u32>,
    /// Compute slices that no instance uses.
    pub idle_compute: u32,
}

impl Layout {
    /// Builds a layout from placements, computing what is idle. Does not validate.
    pub fn new(gpu: &GpuSpec, mut instances: Vec<Placement>) -> Result<Self> {
        instances.sort_by(|a, b| a.start.cmp(&b.start).then(a.profile.cmp(&b.profile)));
        let mut used = 0u32;
        let mut compute = 0u32;
        for p in &instances {
            let spec = gpu.profile(p.profile.as_str())?;
            used |= spec.slot_mask(p.start);
            compute += spec.compute;
        }
        let idle_slots = (0..gpu.memory_slots)
            .filter(|s| used & (1 << s) == 0)
            .collect();
        Ok(Self {
            instances,
            idle_slots,
            idle_compute: gpu.compute_slices.saturating_sub(compute),
        })
    }

    /// Short human label such as `4g.40gb+2g.20gb+1g.10gb`, largest first.
    pub fn label(&self) -> String {
        let mut v: Vec<&str> = self.instances.iter().map(|p| p.profile.as_str()).collect();
        v.sort_by_key(|n| std::cmp::Reverse(leading_compute(n)));
        v.join("+")
    }

    /// How many instances of each profile the layout holds.
    pub fn counts(&self) -> BTreeMap<ProfileName, u32> {
        let mut m = BTreeMap::new();
        for p in &self.instances {
            *m.entry(p.profile.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// The compute-slice count written at the front of a profile name (`3` for `3g.40gb`).
fn leading_compute(name: &str) -> u32 {
    name.split('g')
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

fn profile_allowed(p: &ProfileSpec, rules: LayoutRules) -> bool {
    rules.all_profiles || p.class == ProfileClass::Classic
}

/// Checks a set of instances against NVIDIA's placement rules for this GPU: known profile
/// (of the allowed classes), valid start, per-profile maximum, at most one media instance,
/// no overlapping memory slots, compute within the GPU, and the pre-R510 pair rule when asked.
/// Every plan migopt emits passes through here.
pub fn validate(gpu: &GpuSpec, instances: &[Placement], rules: LayoutRules) -> Result<()> {
    let fail = |m: String| {
        Err(Error::InvalidPlacement {
            gpu: gpu.name.to_string(),
            message: m,
        })
    };
    let mut used = 0u32;
    let mut compute = 0u32;
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut media = 0;
    for p in instances {
        let spec = gpu.profile(p.profile.as_str())?;
        if !profile_allowed(spec, rules) {
            return fail(format!(
                "{} is not a classic profile (enable all profiles to use it)",
                spec.name
            ));
        }
        if !spec.starts.contains(&p.start) {
            return fail(format!(
                "{} cannot start at memory slot {} (valid starts: {:?})",
                spec.name, p.start, spec.starts
            ));
        }
        let mask = spec.slot_mask(p.start);
        if used & mask != 0 {
            return fail(format!(
                "{}@{} overlaps memory slots already taken",
                spec.name, p.start
            ));
        }
        used |= mask;
        compute += spec.compute;
        let c = counts.entry(spec.name.as_str()).or_insert(0);
        *c += 1;
        if *c > spec.max_count {
            return fail(format!(
                "more than {} instances of {}",
                spec.max_count, spec.name
            ));
        }
        if spec.class == ProfileClass::Media {
            media += 1;
            if media > 1 {
                return fail("more than one media-engine (+me) instance".to_string());
            }
        }
    }
    if compute > gpu.compute_slices {
        return fail(format!(
            "{} compute slices used, the GPU has {}",
            compute, gpu.compute_slices
        ));
    }
    if rules.pre_r510 {
        for f in &gpu.forbidden_before_r510 {
            if counts.contains_key(f.a.as_str()) && counts.contains_key(f.b.as_str()) {
                return fail(format!("{} beside {} needs driver R510 or newer", f.a, f.b));
            }
        }
    }
    Ok(())
}

/// Every placement node of the conflict graph: (profile index in the catalogue, start).
fn placement_nodes(gpu: &GpuSpec, rules: LayoutRules) -> Vec<(usize, u32)> {
    gpu.profiles
        .iter()
        .enumerate()
        .filter(|(_, p)| profile_allowed(p, rules))
        .flat_map(|(i, p)| p.starts.iter().map(move |&s| (i, s)))
        .collect()
}

/// Whether two placements may not coexist on one GPU.
fn conflicts(gpu: &GpuSpec, a: (usize, u32), b: (usize, u32), rules: LayoutRules) -> bool {
    let (pa, pb) = (&gpu.profiles[a.0], &gpu.profiles[b.0]);
    if pa.slot_mask(a.1) & pb.slot_mask(b.1) != 0 {
        return true;
    }
    if a.0 == b.0 && pa.max_count == 1 {
        return true;
    }
    if pa.class == ProfileClass::Media && pb.class == ProfileClass::Media {
        return true;
    }
    rules.pre_r510
        && gpu
            .forbidden_before_r510
            .iter()
            .any(|f| (f.a == pa.name && f.b == pb.name) || (f.a == pb.name && f.b == pa.name))
}

/// The placement conflict graph: nodes are placements, edges join placements that cannot
/// share a GPU.
pub fn conflict_graph(gpu: &GpuSpec, rules: LayoutRules) -> UnGraph<Placement, ()> {
    let nodes = placement_nodes(gpu, rules);
    let mut g = UnGraph::new_undirected();
    let idx: Vec<NodeIndex> = nodes
        .iter()
        .map(|&(p, s)| g.add_node(Placement::new(gpu.profiles[p].name.clone(), s)))
        .collect();
    for i in 0..nodes.len() {
        for j in i + 1..nodes.len() {
            if conflicts(gpu, nodes[i], nodes[j], rules) {
                g.add_edge(idx[i], idx[j], ());
            }
        }
    }
    g
}

/// Every maximal layout of a GPU under the given rules, in a stable order (largest
/// instances first). A100/H100/H200 with classic profiles have 19; A30 has 5.
pub fn enumerate_maximal(gpu: &GpuSpec, rules: LayoutRules) -> Vec<Layout> {
    let conflict = conflict_graph(gpu, rules);
    // Maximal independent sets of the conflict graph are the maximal cliques of its
    // complement; petgraph's Bron–Kerbosch finds those.
    let mut compat: UnGraph<(), ()> = UnGraph::with_capacity(conflict.node_count(), 0);
    let ids: Vec<NodeIndex> = conflict
        .node_indices()
        .map(|_| compat.add_node(()))
        .collect();
    for a in conflict.node_indices() {
        for b in conflict.node_indices() {
            if a < b && !conflict.contains_edge(a, b) {
                compat.add_edge(ids[a.index()], ids[b.index()], ());
            }
        }
    }
    let mut layouts: Vec<Layout> = petgraph::algo::maximal_cliques(&compat)
        .into_iter()
        .map(|clique| {
            let instances = clique.into_iter().map(|n| conflict[n].clone()).collect();
            Layout::new(gpu, instances).expect("catalogue profiles exist")
        })
        .collect();
    // petgraph returns the cliques in hash order; the instances break the key's ties (a 1g
    // beside a 1g+me at the same starts), so the order is the same in every run.
    layouts.sort_by(|a, b| {
        (layout_sort_key(gpu, a), &a.instances).cmp(&(layout_sort_key(gpu, b), &b.instances))
    });
    layouts.dedup();
    layouts
}

/// Orders layouts with big instances first, then by starts, so listings read naturally.
fn layout_sort_key(gpu: &GpuSpec, l: &Layout) -> (Vec<std::cmp::Reverse<u32>>, Vec<u32>) {
    let mut sizes: Vec<u32> = l
        .instances
        .iter()
        .map(|p| {
            gpu.profile(p.profile.as_str())
                .map(|s| s.compute * 16 + s.slots)
                .unwrap_or(0)
        })
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    (
        sizes.into_iter().map(std::cmp::Reverse).collect(),
        l.instances.iter().map(|p| p.start).collect(),
    )
}

/// Whether every instance of `part` appears in `whole` (same profile and start).
pub fn contains(whole: &Layout, part: &[Placement]) -> bool {
    part.iter().all(|p| whole.instances.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    fn gpu(name: &str) -> &'static GpuSpec {
        Catalogue::builtin().gpu(name).unwrap()
    }

    /// petgraph hands the cliques back in hash order, which differs between calls; the
    /// enumeration must not (plans and MILP columns follow its order).
    #[test]
    fn enumeration_order_is_the_same_in_every_call() {
        let rules = LayoutRules {
            all_profiles: true,
            pre_r510: true,
        };
        let first = enumerate_maximal(gpu("A100-80GB"), rules);
        for _ in 0..8 {
            assert_eq!(enumerate_maximal(gpu("A100-80GB"), rules), first);
        }
    }

    #[test]
    fn nineteen_layouts_on_seven_slice_gpus() {
        for name in ["A100-40GB", "A100-80GB", "H100-80GB", "H200-141GB"] {
            let g = gpu(name);
            let ls = enumerate_maximal(g, LayoutRules::default());
            assert_eq!(ls.len(), 19, "{name}");
            let old = enumerate_maximal(
                g,
                LayoutRules {
                    pre_r510: true,
                    ..Default::default()
                },
            );
            assert_eq!(old.len(), 18, "{name} pre-R510");
        }
    }

    #[test]
    fn five_layouts_on_a30() {
        assert_eq!(
            enumerate_maximal(gpu("A30-24GB"), LayoutRules::default()).len(),
            5
        );
    }

    #[test]
    fn every_enumerated_layout_validates_and_is_maximal() {
        for g in &Catalogue::builtin().gpus {
            for rules in [
                LayoutRules::default(),
                LayoutRules {
                    all_profiles: true,
                    pre_r510: false,
                },
                LayoutRules {
                    all_profiles: true,
                    pre_r510: true,
                },
            ] {
                let nodes = placement_nodes(g, rules);
                for l in enumerate_maximal(g, rules) {
                    validate(g, &l.instances, rules).unwrap();
                    for &(p, s) in &nodes {
                        let extra = Placement::new(g.profiles[p].name.clone(), s);
                        if l.instances.contains(&extra) {
                            continue;
                        }
                        let mut more = l.instances.clone();
                        more.push(extra);
                        assert!(
                            validate(g, &more, rules).is_err(),
                            "{} {} not maximal",
                            g.name,
                            l.label()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn validator_rejects_each_rule() {
        let g = gpu("H100-80GB");
        let r = LayoutRules::default();
        let e = |v: &[(&str, u32)], r| {
            let ps: Vec<_> = v.iter().map(|&(p, s)| Placement::new(p, s)).collect();
            validate(g, &ps, r).unwrap_err().to_string()
        };
        assert!(e(&[("3g.40gb", 2)], r).contains("cannot start at memory slot 2"));
        assert!(e(&[("4g.40gb", 0), ("2g.20gb", 2)], r).contains("overlaps"));
        assert!(e(&[("1g.20gb", 0)], r).contains("not a classic profile"));
        let all = LayoutRules {
            all_profiles: true,
            pre_r510: false,
        };
        assert!(e(&[("1g.10gb+me", 0), ("1g.10gb+me", 1)], all).contains("more than 1 instances"));
        let old = LayoutRules {
            all_profiles: false,
            pre_r510: true,
        };
        assert!(e(&[("4g.40gb", 0), ("3g.40gb", 4)], old).contains("R510"));
        assert!(e(&[("5g.50gb", 0)], r).contains("no MIG profile"));
        validate(
            g,
            &[Placement::new("4g.40gb", 0), Placement::new("3g.40gb", 4)],
            r,
        )
        .unwrap();
    }

    #[test]
    fn idle_slots_are_reported() {
        let g = gpu("H100-80GB");
        let l = Layout::new(
            g,
            vec![
                Placement::new("4g.40gb", 0),
                Placement::new("2g.20gb", 4),
                Placement::new("1g.10gb", 6),
            ],
        )
        .unwrap();
        assert_eq!(l.idle_slots, vec![7]);
        assert_eq!(l.idle_compute, 0);
        assert_eq!(l.label(), "4g.40gb+2g.20gb+1g.10gb");
    }
}
