//! The transition against the greedy ordering it replaces and a brute force over every step
//! sequence: small hand-built cases where the greedy ordering needs a spare GPU or a step
//! too many, and random small transitions whose fewest spares and steps the brute force
//! finds independently (on GPUs, not counts).

use super::{first_spare, greedy, plan, Capacity, Transition};
use crate::replan::{Fate, GpuChange};
use migopt_models::{Assignment, Error};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};

/// The config of every property test here: `cases` cases on a fixed seed.
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    // Fixed: the same seed gives the same result (the guide demands determinism).
    let mut config = Config::with_cases(cases);
    // Unless PROPTEST_RNG_SEED=<u64> (read into the default config) asks for another seed.
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(1);
    }
    config
}

/// Two models, `a` and `b`, on instances of size 1 and 2 serving 1 and 2 requests/s (additive).
struct Toy;

impl Capacity for Toy {
    fn count(&self, layout: &[Assignment]) -> Vec<u32> {
        let mut c = vec![0; 4];
        for x in layout {
            let m = usize::from(x.model.as_str() == "b");
            let k = usize::from(x.profile.as_str() == "2g");
            c[m * 2 + k] += 1;
        }
        c
    }
    fn of(&self, c: &[u32]) -> Vec<f64> {
        vec![f64::from(c[0] + 2 * c[1]), f64::from(c[2] + 2 * c[3])]
    }
}

/// A layout of `(model, size)` instances.
fn layout(xs: &[(&str, u32)]) -> Vec<Assignment> {
    xs.iter()
        .map(|&(m, k)| Assignment {
            profile: format!("{k}g").as_str().into(),
            start: 0,
            model: m.into(),
            batch: 1,
            procs: 1,
        })
        .collect()
}

fn change(gpu: u32, before: Vec<Assignment>, after: Vec<Assignment>) -> GpuChange {
    let fate = match (before.is_empty(), after.is_empty()) {
        _ if before == after => Fate::Kept,
        (true, _) => Fate::Added,
        (_, true) => Fate::Freed,
        _ => Fate::ReCut,
    };
    GpuChange {
        gpu,
        fate,
        before,
        after,
    }
}

fn models() -> Vec<String> {
    vec!["a".into(), "b".into()]
}

fn slots(changes: &[GpuChange]) -> u32 {
    changes.iter().map(|c| c.gpu + 1).max().unwrap_or(0)
}

/// Walks `t` on GPUs: every step keeps `required` on the GPUs that stay up, every GPU is cut
/// only into a target layout (or left idle), and the end state holds every target layout
/// once, the kept GPUs untouched; at most `spares` GPUs beyond the plan's are used.
fn walk(changes: &[GpuChange], required: &[f64], t: &Transition, spares: u32) {
    let mut on: BTreeMap<u32, Vec<Assignment>> =
        changes.iter().map(|c| (c.gpu, c.before.clone())).collect();
    let targets: Vec<&Vec<Assignment>> = changes.iter().map(|c| &c.after).collect();
    for (i, step) in t.steps.iter().enumerate() {
        let down: Vec<u32> = step.gpus.iter().map(|g| g.gpu).collect();
        let mut up = vec![0u32; 4];
        for (g, l) in &on {
            if !down.contains(g) {
                for (a, b) in up.iter_mut().zip(Toy.count(l)) {
                    *a += b;
                }
            }
        }
        let have = Toy.of(&up);
        for (h, r) in have.iter().zip(required) {
            assert!(
                h + 1e-9 >= *r,
                "step {}: {have:?} below {required:?}",
                i + 1
            );
        }
        for g in &step.gpus {
            assert!(
                g.layout.is_empty() || targets.contains(&&g.layout),
                "step {}",
                i + 1
            );
            assert!(changes
                .iter()
                .all(|c| c.gpu != g.gpu || c.fate != Fate::Kept));
            on.insert(g.gpu, g.layout.clone());
        }
    }
    let mut end: Vec<_> = on.values().filter(|l| !l.is_empty()).cloned().collect();
    let mut want: Vec<_> = changes
        .iter()
        .map(|c| c.after.clone())
        .filter(|l| !l.is_empty())
        .collect();
    end.sort_by_key(|l| format!("{l:?}"));
    want.sort_by_key(|l| format!("{l:?}"));
    assert_eq!(end, want, "end state");
    let beyond = on.keys().filter(|&&g| g >= slots(changes)).count() as u32;
    assert_eq!(beyond, t.spares_used.len() as u32);
    assert!(beyond <= spares);
}

/// Model a keeps 2 requests/s. GPU 1 (a → bbb) adds the most capacity, so the greedy
/// ordering re-cuts it first, and then GPU 2 (a → aa) cannot go down without a spare; GPU 2
/// first, then GPU 1, needs none.
fn greedy_needs_a_spare() -> (Vec<GpuChange>, Vec<f64>) {
    let changes = vec![
        change(0, layout(&[("a", 1)]), layout(&[("a", 1)])),
        change(
            1,
            layout(&[("a", 1)]),
            layout(&[("b", 1), ("b", 1), ("b", 1)]),
        ),
        change(2, layout(&[("a", 1)]), layout(&[("a", 1), ("a", 1)])),
    ];
    (changes, vec![2.0, 0.0])
}

#[test]
fn a_transition_the_greedy_ordering_misses_needs_no_spare() {
    let (changes, required) = greedy_needs_a_spare();
    let s = slots(&changes);
    assert!(greedy(&changes, &Toy, &required, &models(), 0, s).is_err());
    let t = plan(&changes, &Toy, &required, &models(), 0, s).expect("a transition without spares");
    walk(&changes, &required, &t, 0);
    assert!(t.spares_used.is_empty() && t.spares_minimal);
    assert_eq!((t.steps.len(), t.lower_bound, t.minimal), (2, 2, true));
    // With a spare given, the fewest spares come first: none is taken.
    let t1 = plan(&changes, &Toy, &required, &models(), 1, s).expect("transition");
    assert_eq!(t1, t);
}

/// Model a keeps 2 requests/s, all it has: GPU 0 (a) is freed, GPU 1 added (a), GPU 2 re-cut
/// (a → 2a, one instance of size 2). The greedy ordering adds GPU 1, then re-cuts GPU 2,
/// then frees GPU 0: three steps. Two do: GPU 2's new layout goes up on GPU 1 first, then
/// GPUs 0 and 2 go down together and GPU 1's layout goes up on one of them.
fn greedy_takes_a_step_too_many() -> (Vec<GpuChange>, Vec<f64>) {
    let changes = vec![
        change(0, layout(&[("a", 1)]), Vec::new()),
        change(1, Vec::new(), layout(&[("a", 1)])),
        change(2, layout(&[("a", 1)]), layout(&[("a", 2)])),
    ];
    (changes, vec![2.0, 0.0])
}

#[test]
fn the_fewest_steps_beat_the_greedy_ordering() {
    let (changes, required) = greedy_takes_a_step_too_many();
    let s = slots(&changes);
    let g = greedy(&changes, &Toy, &required, &models(), 0, s).expect("greedy transition");
    let t = plan(&changes, &Toy, &required, &models(), 0, s).expect("transition");
    walk(&changes, &required, &t, 0);
    let best = brute_force(&changes, &required, 0).expect("a transition");
    assert_eq!(t.steps.len() as u32, best);
    assert!(
        g.steps.len() > t.steps.len(),
        "greedy {} steps",
        g.steps.len()
    );
    assert!(t.minimal && t.lower_bound == best);
}

#[test]
fn the_refusal_names_the_proven_fewest_spares() {
    // Model a keeps all 2 of its requests/s, and its only GPU is re-cut: its new layout
    // must come up on a spare first.
    let changes = vec![change(
        0,
        layout(&[("a", 2)]),
        layout(&[("a", 1), ("a", 1)]),
    )];
    let required = [2.0, 0.0];
    let Err(Error::Infeasible(why)) = plan(&changes, &Toy, &required, &models(), 0, 1) else {
        panic!("a transition without a spare");
    };
    assert!(why.contains("proven by exhaustive search"), "{why}");
    assert!(
        why.contains("needs 1 spare GPU(s) (--spare-gpus 1)"),
        "{why}"
    );
    let t = plan(&changes, &Toy, &required, &models(), 3, 1).expect("transition");
    walk(&changes, &required, &t, 3);
    assert_eq!(t.spares_used, vec![1]);
    assert!(t.spares_minimal && t.spares_lower_bound == 1 && t.minimal);
}

/// The largest plan there is, [`migopt_models::limits::MAX_GPUS`] (100,000) GPU slots: the
/// spare GPUs a transition takes are numbered past every GPU of the current plan (its slots,
/// named by a change or not) and of the target (a GPU it adds takes the next index, the
/// slots), so no spare is a GPU of either plan, and numbering them overflows nothing (a test
/// build checks overflow), even with every spare there is given. A few changes only: it runs
/// at once.
#[test]
fn the_spares_of_the_largest_plan_are_past_every_gpu_of_either_plan() {
    let slots = migopt_models::limits::MAX_GPUS;
    let required = [2.0, 0.0];
    // Model a keeps all 2 of its requests/s, on a GPU that is re-cut: its new layout must
    // come up on a spare first. The plan's last GPU (slots - 1) is idle, named by no change.
    let changes = vec![change(
        slots - 2,
        layout(&[("a", 2)]),
        layout(&[("a", 1), ("a", 1)]),
    )];
    assert_eq!(first_spare(&changes, slots), slots);
    let t = plan(&changes, &Toy, &required, &models(), u32::MAX, slots).expect("transition");
    walk(&changes, &required, &t, u32::MAX);
    assert_eq!(
        t.spares_used,
        vec![slots],
        "a spare past the idle GPU {}",
        slots - 1
    );

    // The target adds a GPU at the next index, `slots`: the spares start past it.
    let changes = vec![
        change(
            slots - 1,
            layout(&[("a", 2)]),
            layout(&[("a", 1), ("a", 1)]),
        ),
        change(slots, Vec::new(), layout(&[("b", 1)])),
    ];
    let first = first_spare(&changes, slots);
    assert_eq!(first, slots + 1);
    let named: HashSet<u32> = changes.iter().map(|c| c.gpu).collect();
    // The greedy ordering takes a spare here (the added GPU goes up first, with its own
    // layout); the search swaps through the added GPU instead and takes none.
    let g = greedy(&changes, &Toy, &required, &models(), u32::MAX, first).expect("greedy");
    assert_eq!(g.spares_used, vec![slots + 1]);
    let t = plan(&changes, &Toy, &required, &models(), u32::MAX, slots).expect("transition");
    walk(&changes, &required, &t, u32::MAX);
    for s in g.spares_used.iter().chain(&t.spares_used) {
        assert!(
            *s >= first && !named.contains(s),
            "spare {s} is a GPU of a plan"
        );
    }
}

/// More changed GPUs of one layout class than a `u16` counts (the exact search counts each
/// class's GPUs; 70,000 of the 100,000 a plan may hold): every GPU of model a goes from one
/// size-2 instance to two size-1 instances, and a keeps half its capacity throughout, so
/// half the GPUs are re-cut in each of two steps (a count kept in 16 bits wrapped, or
/// overflowed in a test build, before).
#[test]
fn a_class_of_more_gpus_than_sixteen_bits_count_re_cuts_in_two_steps() {
    let n: u32 = 70_000;
    let changes: Vec<GpuChange> = (0..n)
        .map(|g| change(g, layout(&[("a", 2)]), layout(&[("a", 1), ("a", 1)])))
        .collect();
    let required = [f64::from(n), 0.0];
    let t = plan(&changes, &Toy, &required, &models(), 0, n).expect("transition");
    assert_eq!(
        t.steps.len(),
        2,
        "{:?}",
        t.steps.iter().map(|s| s.gpus.len()).collect::<Vec<_>>()
    );
    assert!(t.minimal && t.spares_used.is_empty());
    let mut seen: Vec<u32> = t
        .steps
        .iter()
        .flat_map(|s| s.gpus.iter().map(|g| g.gpu))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every GPU re-cut once");
    assert!(
        t.steps.iter().all(|s| s.gpus.len() as u32 <= n / 2),
        "a keeps half"
    );
}

/// One GPU's state in the brute force.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Gpu {
    /// Its current layout (change i's before).
    Old(usize),
    Idle,
    /// Change i's target layout.
    New(usize),
}

/// The fewest steps of a safe transition with `spares` spare GPUs, by breadth-first search
/// over every step on GPUs: any set of GPUs holding an old layout or idle goes down, each
/// comes back idle or with a target layout not up yet (`None`: no transition).
fn brute_force(changes: &[GpuChange], required: &[f64], spares: usize) -> Option<u32> {
    let moving: Vec<usize> = (0..changes.len())
        .filter(|&i| changes[i].fate != Fate::Kept)
        .collect();
    let mut start: Vec<Gpu> = moving
        .iter()
        .map(|&i| {
            if changes[i].before.is_empty() {
                Gpu::Idle
            } else {
                Gpu::Old(i)
            }
        })
        .collect();
    start.extend(std::iter::repeat_n(Gpu::Idle, spares));
    let news: Vec<usize> = moving
        .iter()
        .copied()
        .filter(|&i| !changes[i].after.is_empty())
        .collect();
    let done = |s: &[Gpu]| {
        s.iter().all(|g| !matches!(g, Gpu::Old(_)))
            && news.iter().all(|&i| s.contains(&Gpu::New(i)))
    };
    let mut kept = vec![0u32; 4];
    for c in changes.iter().filter(|c| c.fate == Fate::Kept) {
        for (a, b) in kept.iter_mut().zip(Toy.count(&c.before)) {
            *a += b;
        }
    }
    let mut seen = HashSet::from([start.clone()]);
    let mut layer = vec![start];
    for depth in 0..20 {
        if layer.iter().any(|s| done(s)) {
            return Some(depth);
        }
        let mut next = Vec::new();
        for s in &layer {
            for t in brute_steps(changes, required, &kept, &news, s) {
                if seen.insert(t.clone()) {
                    next.push(t);
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        layer = next;
    }
    None
}

/// Every state one safe step from `s`.
fn brute_steps(
    changes: &[GpuChange],
    required: &[f64],
    kept: &[u32],
    news: &[usize],
    s: &[Gpu],
) -> Vec<Vec<Gpu>> {
    let n = s.len();
    let mut out = Vec::new();
    for set in 1u32..(1 << n) {
        let pick: Vec<usize> = (0..n).filter(|&g| set >> g & 1 == 1).collect();
        if pick.iter().any(|&g| matches!(s[g], Gpu::New(_))) {
            continue;
        }
        let mut up = kept.to_vec();
        for (g, st) in s.iter().enumerate() {
            let l = match st {
                Gpu::Old(i) if !pick.contains(&g) => &changes[*i].before,
                Gpu::New(i) => &changes[*i].after,
                _ => continue,
            };
            for (a, b) in up.iter_mut().zip(Toy.count(l)) {
                *a += b;
            }
        }
        if !Toy
            .of(&up)
            .iter()
            .zip(required)
            .all(|(h, r)| h + 1e-9 >= *r)
        {
            continue;
        }
        let pending: Vec<usize> = news
            .iter()
            .copied()
            .filter(|i| !s.contains(&Gpu::New(*i)))
            .collect();
        assign(s, &pick, &pending, 0, &mut s.to_vec(), &mut out);
    }
    out
}

/// Every way to give the GPUs `pick[k..]` a pending target layout each (distinct) or none.
fn assign(
    s: &[Gpu],
    pick: &[usize],
    pending: &[usize],
    k: usize,
    t: &mut Vec<Gpu>,
    out: &mut Vec<Vec<Gpu>>,
) {
    if k == pick.len() {
        out.push(t.clone());
        return;
    }
    let g = pick[k];
    t[g] = Gpu::Idle;
    assign(s, pick, pending, k + 1, t, out);
    for &i in pending {
        if !t.contains(&Gpu::New(i)) {
            t[g] = Gpu::New(i);
            assign(s, pick, pending, k + 1, t, out);
        }
    }
    t[g] = s[g].clone();
}

/// A random small layout: one or two instances.
fn small_layout() -> impl Strategy<Value = Vec<(bool, u32)>> {
    prop::collection::vec((any::<bool>(), 1u32..=2), 1..=2)
}

fn to_layout(xs: &[(bool, u32)]) -> Vec<Assignment> {
    let named: Vec<(&str, u32)> = xs
        .iter()
        .map(|&(b, k)| (if b { "b" } else { "a" }, k))
        .collect();
    layout(&named)
}

/// A random small transition: a kept GPU or none, and one to four changes (re-cut, added
/// or freed), each model keeping min(old, new) or half of it.
fn small_transition() -> impl Strategy<Value = (Vec<GpuChange>, Vec<f64>)> {
    let one = (0u8..4, small_layout(), small_layout());
    (
        prop::option::of(small_layout()),
        prop::collection::vec(one, 1..=4),
        any::<[bool; 2]>(),
    )
        .prop_map(|(kept, ones, all)| {
            let mut changes = Vec::new();
            if let Some(k) = kept {
                changes.push(change(0, to_layout(&k), to_layout(&k)));
            }
            for (fate, b, a) in ones {
                let gpu = changes.len() as u32;
                let (b, a) = (to_layout(&b), to_layout(&a));
                changes.push(match fate {
                    0 => change(gpu, Vec::new(), a),
                    1 => change(gpu, b, Vec::new()),
                    _ => change(gpu, b, a),
                });
            }
            let sum = |f: &dyn Fn(&GpuChange) -> &Vec<Assignment>| {
                let mut c = vec![0; 4];
                for g in &changes {
                    for (x, y) in c.iter_mut().zip(Toy.count(f(g))) {
                        *x += y;
                    }
                }
                Toy.of(&c)
            };
            let (old, new) = (sum(&|c| &c.before), sum(&|c| &c.after));
            let required = (0..2)
                .map(|m| old[m].min(new[m]) * if all[m] { 1.0 } else { 0.5 })
                .collect();
            (changes, required)
        })
}

proptest! {
    #![proptest_config(proptest_config(64))]

    /// The transition takes the fewest spare GPUs (of at most 2) and then the fewest steps
    /// the brute force finds, proves both, and is safe; without a transition with 2 spares
    /// it refuses.
    #[test]
    fn the_transition_matches_a_brute_force((changes, required) in small_transition()) {
        let s = slots(&changes);
        let fewest = (0..=2).find_map(|k| brute_force(&changes, &required, k).map(|n| (k, n)));
        match (plan(&changes, &Toy, &required, &models(), 2, s), fewest) {
            (Ok(t), Some((k, n))) => {
                walk(&changes, &required, &t, 2);
                prop_assert_eq!((t.spares_used.len(), t.steps.len() as u32), (k, n));
                prop_assert!(t.spares_minimal && t.minimal);
                prop_assert_eq!((t.spares_lower_bound as usize, t.lower_bound), (k, n));
                // Deterministic.
                prop_assert_eq!(plan(&changes, &Toy, &required, &models(), 2, s).ok(), Some(t));
            }
            (Err(Error::Infeasible(why)), None) => prop_assert!(why.contains("needs"), "{}", why),
            (t, b) => prop_assert!(false, "plan {:?} vs brute force {:?}", t, b),
        }
    }
}

/// Sixteen models `m0`..`m15`, one request/s per instance.
struct Wide;

const WIDE: usize = 16;

impl Capacity for Wide {
    fn count(&self, layout: &[Assignment]) -> Vec<u32> {
        let mut c = vec![0; WIDE];
        for x in layout {
            if let Some(i) = x
                .model
                .as_str()
                .strip_prefix('m')
                .and_then(|i| i.parse::<usize>().ok())
            {
                c[i] += 1;
            }
        }
        c
    }
    fn of(&self, c: &[u32]) -> Vec<f64> {
        c.iter().map(|&x| f64::from(x)).collect()
    }
}

#[test]
fn past_the_search_limit_the_greedy_ordering_stands_unproven() {
    // Each model keeps both its instances, one on kept GPU 0 and one on GPU i + 1, which is
    // re-cut: its new layout must be up before it goes down, so a spare takes the first one
    // and every drained GPU the next. Which order is the search's to explore (2^16 states).
    let names: Vec<String> = (0..WIDE).map(|i| format!("m{i}")).collect();
    let one = |i: usize, n: usize| -> Vec<Assignment> {
        (0..n)
            .map(|_| Assignment {
                profile: "1g".into(),
                start: 0,
                model: names[i].as_str().into(),
                batch: 1,
                procs: 1,
            })
            .collect()
    };
    let kept: Vec<Assignment> = (0..WIDE).flat_map(|i| one(i, 1)).collect();
    let mut changes = vec![change(0, kept.clone(), kept)];
    changes.extend((0..WIDE).map(|i| change(i as u32 + 1, one(i, 1), one(i, 2))));
    let required = vec![2.0; WIDE];
    let s = slots(&changes);
    let g = greedy(&changes, &Wide, &required, &names, 1, s).expect("greedy transition");
    let t = plan(&changes, &Wide, &required, &names, 1, s).expect("transition");
    assert_eq!(t.steps, g.steps);
    assert_eq!(t.spares_used, vec![s]);
    // No transition without a spare (nothing can go down): one is the fewest, proven.
    assert!(t.spares_minimal && t.spares_lower_bound == 1);
    assert!(!t.minimal && t.lower_bound < t.steps.len() as u32 && t.lower_bound >= 2);
}
