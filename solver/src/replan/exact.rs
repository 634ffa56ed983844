//! The exact search behind [`super::transition`]: a transition in counts, and a breadth-first
//! search over its states for the fewest steps with a given number of spare GPUs.
//!
//! **Counts.** GPUs are interchangeable, so a transition is searched in counts: the layouts
//! the transition takes down (*olds*: the current layouts of re-cut and freed GPUs) and
//! brings up (*news*: the target layouts of re-cut and added GPUs), each grouped into
//! classes of equal instance counts. A state is how many of each old class are down and how
//! many of each new class are up. A step takes down some olds (safe: every model keeps its
//! required capacity on what stays up) and brings up news on GPUs idle at its start or
//! drained in it; idle GPUs are the spares, the added GPUs and those drained earlier, so
//! `ups so far ≤ spares + added + downs so far` after every step.
//!
//! **Canonical steps.** With capacity monotone (an instance more never lowers any model's
//! capacity), some fewest-step transition (and, without a step limit, some transition at
//! all, when there is one) has these forms, which the search alone visits:
//!
//! * every step brings up as many news as there are GPUs for (moving the next later
//!   bring-up into a step with a GPU to spare only adds capacity in between);
//! * a new class whose instances include another's (componentwise ≥) is all up before any
//!   of the other comes up (swapping the two bring-ups only adds capacity in between);
//! * an old class whose instances are included in another's is all down before any of the
//!   other goes down (swapping the two take-downs only adds capacity in between, and leaves
//!   the later step's capacity as it was);
//! * without a step limit (is there a transition at all?), one take-down per step: the
//!   take-downs of a safe step are safe one at a time.
//!
//! Each exchange lowers (steps, Σ bring-up times, inversions) lexicographically, so they end.
//! The search is breadth-first, so the first transition it finds has the fewest steps; it is
//! bounded by [`SEARCH_LIMIT`] candidate steps per transition.

use super::transition::Capacity;
use std::collections::{HashMap, HashSet};

/// Candidate steps (take-downs and bring-ups from one state) the exact search examines for
/// one transition, over every spare count it tries, before it stops: the greedy ordering's
/// answer then stands, reported as not proven.
pub const SEARCH_LIMIT: u64 = 20_000;

/// Tolerance of the capacity rule (relative and absolute).
pub(super) const TOL: f64 = 1e-9;

/// Whether capacity `cap` meets `required` (within a relative 1e-9).
pub(super) fn meets(cap: &[f64], required: &[f64]) -> bool {
    cap.iter()
        .zip(required)
        .all(|(a, r)| *a >= r * (1.0 - TOL) - TOL)
}

/// Layouts with the same instances, and how many of them there are.
#[derive(Debug, Clone)]
pub(super) struct Class {
    /// Instances per (model, size), as [`Capacity::count`] gives them.
    pub counts: Vec<u32>,
    /// Layouts in the class.
    pub n: u32,
}

/// A transition in counts.
pub(super) struct Problem<'a> {
    pub cap: &'a dyn Capacity,
    pub required: &'a [f64],
    /// Instances on the GPUs the transition does not touch.
    pub kept: Vec<u32>,
    /// Layouts taken down and brought up.
    pub olds: Vec<Class>,
    pub news: Vec<Class>,
    /// GPUs idle before the first step, spares aside (the added ones).
    pub idle: u32,
}

/// One step in counts: layouts of each old class taken down, of each new class brought up.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CountStep {
    pub down: Vec<u32>,
    pub up: Vec<u32>,
}

/// How a search with one spare count ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The fewest steps (within the limit).
    Found(Vec<CountStep>),
    /// No transition within the step limit (none at all without one).
    Exhausted,
    /// The search stopped at [`SEARCH_LIMIT`]; every transition with these spares has at
    /// least `steps` steps.
    Stopped { steps: u32 },
}

/// A state: olds down per class, then news up per class.
type State = Vec<u32>;

impl Problem<'_> {
    /// Instances up in state `s`.
    pub fn instances(&self, s: &[u32]) -> Vec<u32> {
        let mut v = self.kept.clone();
        let (down, up) = s.split_at(self.olds.len());
        for (c, &d) in self.olds.iter().zip(down) {
            add(&mut v, &c.counts, c.n - d);
        }
        for (c, &u) in self.news.iter().zip(up) {
            add(&mut v, &c.counts, u);
        }
        v
    }

    /// GPUs idle in state `s` with `spares` spares.
    fn idle(&self, s: &[u32], spares: u32) -> u32 {
        let (down, up) = s.split_at(self.olds.len());
        let sum = |x: &[u32]| x.iter().sum::<u32>();
        (self.idle + spares + sum(down)).saturating_sub(sum(up))
    }

    fn goal(&self) -> State {
        self.olds.iter().chain(&self.news).map(|c| c.n).collect()
    }

    /// Whether state `s` keeps the canonical order: a class with fewer instances than
    /// another (olds) or more (news) is done before any of the other starts.
    fn canonical(&self, s: &[u32]) -> bool {
        let (down, up) = s.split_at(self.olds.len());
        let ordered = |cs: &[Class], at: &[u32], first: &dyn Fn(&[u32], &[u32]) -> bool| {
            (0..cs.len()).all(|a| {
                at[a] == cs[a].n
                    || (0..cs.len())
                        .all(|b| b == a || at[b] == 0 || !first(&cs[a].counts, &cs[b].counts))
            })
        };
        ordered(&self.olds, down, &|a, b| leq(a, b)) && ordered(&self.news, up, &|a, b| leq(b, a))
    }
}

/// `v += k·c`, `v` growing to fit.
fn add(v: &mut Vec<u32>, c: &[u32], k: u32) {
    if v.len() < c.len() {
        v.resize(c.len(), 0);
    }
    for (a, b) in v.iter_mut().zip(c) {
        *a += k * b;
    }
}

/// `v -= k·c` (saturating).
fn sub(v: &mut [u32], c: &[u32], k: u32) {
    for (a, b) in v.iter_mut().zip(c) {
        *a = a.saturating_sub(k * b);
    }
}

/// Componentwise `a ≤ b` (missing entries are 0).
fn leq(a: &[u32], b: &[u32]) -> bool {
    (0..a.len().max(b.len())).all(|i| a.get(i).unwrap_or(&0) <= b.get(i).unwrap_or(&0))
}

/// The search: its budget and the safety of instance vectors already judged.
pub(super) struct Search<'a> {
    p: &'a Problem<'a>,
    /// Candidate steps examined so far (all spare counts).
    pub examined: u64,
    safe: HashMap<Vec<u32>, bool>,
}

/// Budget spent: the search stops.
struct Spent;

impl<'a> Search<'a> {
    pub fn new(p: &'a Problem<'a>) -> Self {
        Search {
            p,
            examined: 0,
            safe: HashMap::new(),
        }
    }

    fn is_safe(&mut self, v: &[u32]) -> bool {
        if let Some(&b) = self.safe.get(v) {
            return b;
        }
        let b = meets(&self.p.cap.of(v), self.p.required);
        self.safe.insert(v.to_vec(), b);
        b
    }

    fn spend(&mut self) -> Result<(), Spent> {
        self.examined += 1;
        if self.examined > SEARCH_LIMIT {
            Err(Spent)
        } else {
            Ok(())
        }
    }

    /// 0 at the goal, 1 when every remaining old can go down in one step, else 2: a lower
    /// bound on the steps left (the last step can always bring up every remaining new).
    fn steps_left(&mut self, s: &[u32]) -> u32 {
        let p = self.p;
        if s == p.goal().as_slice() {
            return 0;
        }
        let mut v = p.instances(s);
        for (c, &d) in p.olds.iter().zip(s) {
            sub(&mut v, &c.counts, c.n - d);
        }
        if self.is_safe(&v) {
            1
        } else {
            2
        }
    }

    /// 0 without a change, 1 when every old layout can go down in one step, else 2: a lower
    /// bound on the steps of any transition.
    pub fn lower_bound(&mut self) -> u32 {
        let start = vec![0; self.p.olds.len() + self.p.news.len()];
        self.steps_left(&start)
    }

    /// The fewest steps with `spares` spare GPUs, at most `max_steps`; `single`: one
    /// take-down per step (enough to tell whether there is a transition at all).
    pub fn fewest_steps(&mut self, spares: u32, single: bool, max_steps: u32) -> Outcome {
        let goal = self.p.goal();
        let start: State = vec![0; goal.len()];
        if start == goal {
            return Outcome::Found(Vec::new());
        }
        // Every state reached, with its parent and the step from it.
        let mut nodes: Vec<(State, usize, Option<CountStep>)> = vec![(start.clone(), 0, None)];
        let mut seen: HashSet<State> = HashSet::from([start]);
        let mut layer = 0..1;
        for depth in 1..=max_steps {
            for i in layer.clone() {
                let from = nodes[i].0.clone();
                let Ok(next) = self.successors(&from, spares, single) else {
                    return Outcome::Stopped { steps: depth };
                };
                for (step, to) in next {
                    if !seen.insert(to.clone()) {
                        continue;
                    }
                    if to == goal {
                        return Outcome::Found(path(&nodes, i, step));
                    }
                    if depth.saturating_add(self.steps_left(&to)) <= max_steps {
                        nodes.push((to, i, Some(step)));
                    }
                }
            }
            layer = layer.end..nodes.len();
            if layer.is_empty() {
                return Outcome::Exhausted;
            }
        }
        Outcome::Exhausted
    }

    /// The canonical steps from state `s`.
    fn successors(
        &mut self,
        s: &[u32],
        spares: u32,
        single: bool,
    ) -> Result<Vec<(CountStep, State)>, Spent> {
        let p = self.p;
        let no = p.olds.len();
        let mut downs = Vec::new();
        let mut d = vec![0u32; no];
        self.downs(s, 0, &mut d, p.instances(s), single, &mut downs)?;
        let mut out = Vec::new();
        for d in downs {
            let taken: u32 = d.iter().sum();
            let pending: u32 = p.news.iter().zip(&s[no..]).map(|(c, &u)| c.n - u).sum();
            let k = pending.min(p.idle(s, spares) + taken);
            if taken == 0 && k == 0 {
                continue;
            }
            let mut ups = Vec::new();
            // No more than the budget has room for: the count of ways can be astronomical.
            let mut room = SEARCH_LIMIT.saturating_sub(self.examined) + 1;
            let mut u = vec![0; p.news.len()];
            ups_of(p, (&s[no..], k), 0, &mut u, (&mut ups, &mut room));
            for u in ups {
                self.spend()?;
                let to: State = s
                    .iter()
                    .zip(d.iter().chain(&u))
                    .map(|(a, b)| a + b)
                    .collect();
                if p.canonical(&to) {
                    out.push((
                        CountStep {
                            down: d.clone(),
                            up: u,
                        },
                        to,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Every safe take-down from `s` (class `i` on; `d` so far, `up` the instances that stay
    /// up with it): capacity is monotone, so a count that breaks the rule ends its class.
    fn downs(
        &mut self,
        s: &[u32],
        i: usize,
        d: &mut Vec<u32>,
        up: Vec<u32>,
        single: bool,
        out: &mut Vec<Vec<u32>>,
    ) -> Result<(), Spent> {
        let p = self.p;
        if i == p.olds.len() {
            out.push(d.clone());
            return Ok(());
        }
        self.downs(s, i + 1, d, up.clone(), single, out)?;
        let taken: u32 = d.iter().sum();
        let left_in_class = p.olds[i].n - s[i];
        let most = match (single, taken) {
            (false, _) => left_in_class,
            (true, 0) => left_in_class.min(1),
            (true, _) => 0,
        };
        let mut left = up;
        for k in 1..=most {
            self.spend()?;
            sub(&mut left, &p.olds[i].counts, 1);
            if !self.is_safe(&left) {
                break;
            }
            d[i] = k;
            self.downs(s, i + 1, d, left.clone(), single, out)?;
        }
        d[i] = 0;
        Ok(())
    }
}

/// Every way to bring up `k` news from state `up` (class `i` on, `u` so far), at most
/// `room` of them.
fn ups_of(
    p: &Problem<'_>,
    (up, k): (&[u32], u32),
    i: usize,
    u: &mut Vec<u32>,
    (out, room): (&mut Vec<Vec<u32>>, &mut u64),
) {
    if *room == 0 {
        return;
    }
    if i == p.news.len() {
        if k == 0 {
            out.push(u.clone());
            *room -= 1;
        }
        return;
    }
    let rest: u32 = (i + 1..p.news.len()).map(|j| p.news[j].n - up[j]).sum();
    let most = (p.news[i].n - up[i]).min(k);
    for x in (k.saturating_sub(rest)..=most).rev() {
        u[i] = x;
        ups_of(p, (up, k - x), i + 1, u, (&mut *out, &mut *room));
    }
    u[i] = 0;
}

/// The steps from the start to node `i`, then `last`.
fn path(
    nodes: &[(State, usize, Option<CountStep>)],
    mut i: usize,
    last: CountStep,
) -> Vec<CountStep> {
    let mut steps = vec![last];
    while let Some(step) = &nodes[i].2 {
        steps.push(step.clone());
        i = nodes[i].1;
    }
    steps.reverse();
    steps
}

/// Merges each step into the one before it while the merged step is safe (a transition
/// found one take-down per step, made shorter; still safe, same spares).
pub(super) fn compact(p: &Problem<'_>, steps: Vec<CountStep>) -> Vec<CountStep> {
    let mut out: Vec<CountStep> = Vec::new();
    let mut state: State = vec![0; p.olds.len() + p.news.len()];
    let mut before = state.clone();
    for step in steps {
        if let Some(last) = out.last_mut() {
            let mut v = p.instances(&before);
            for (c, (&a, &b)) in p.olds.iter().zip(last.down.iter().zip(&step.down)) {
                sub(&mut v, &c.counts, a + b);
            }
            if meets(&p.cap.of(&v), p.required) {
                for (a, b) in last.down.iter_mut().zip(&step.down) {
                    *a += b;
                }
                for (a, b) in last.up.iter_mut().zip(&step.up) {
                    *a += b;
                }
                apply(&mut state, &step);
                continue;
            }
        }
        before = state.clone();
        apply(&mut state, &step);
        out.push(step);
    }
    out
}

/// The state after `step`.
pub(super) fn apply(state: &mut [u32], step: &CountStep) {
    for (a, b) in state.iter_mut().zip(step.down.iter().chain(&step.up)) {
        *a += b;
    }
}
