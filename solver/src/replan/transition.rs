//! The transition from a current plan to a re-planned target: ordered steps, each of which
//! drains, re-cuts and reloads a set of GPUs at once (what `nvidia-mig-parted apply` does to
//! a GPU: it deletes every instance before it creates the new layout).
//!
//! Safety rule: during every step, every model keeps at least its required capacity
//! (normally min(old rate, new rate)) on the GPUs that are not being re-cut, counting each
//! GPU in the state it is in at that moment. Instances come up only when their step ends.
//!
//! **Moves.** Every current layout that changes goes down once, and every target layout
//! that is new comes up once, on its own GPU or on any GPU idle at the start of its step (a
//! spare, an added GPU not yet used, one drained earlier) or drained in the same step;
//! nothing else is cut (no layout outside the current plan and the target). A target layout
//! that goes up on another GPU than its own is a *swap* (g, s): s ends with g's layout, g
//! idle or with another's, and the target is moved accordingly. Spare GPUs are idle GPUs
//! beside the plan's; a GPU the plan does not use (not re-cut, added or freed) is not one.
//!
//! **What is minimised.** First the spare GPUs taken (at most `--spare-gpus`), then the
//! steps. [`plan`] runs the greedy ordering (steps as large as the rule allows: GPUs that
//! lose nothing first, then re-cuts by the capacity they add, then frees; when no change can
//! go down, the blocked re-cut's layout goes up on an idle GPU first) as the incumbent, then
//! the exact search of module `exact`: for 0, 1, ... spares up to the incumbent's, is there
//! a safe transition at all (a search of one take-down per step, over the states "how many
//! layouts of each kind are down or up"); at the first spare count with one, the fewest
//! steps (breadth-first, steps of any size, below the incumbent's count when the count is
//! the incumbent's). The search assumes capacity is monotone (an instance more never lowers
//! a model's capacity; true of every [`Capacity`] here) and works through [`Capacity`]
//! alone, so it is exact for additive (min-gpus) and routed (max-load) capacity alike.
//!
//! **What is proven.** [`Transition::spares_minimal`]: the spares taken are the fewest of any
//! safe transition with these moves (every smaller count was searched to the end);
//! [`Transition::minimal`]: no safe transition with at most as many spares has fewer steps.
//! Their lower bounds are given beside them. The search examines at most
//! [`SEARCH_LIMIT`] candidate steps per transition (every spare count together); when
//! it stops there, the best transition found stands (the greedy ordering's, or one found
//! for fewer spares), and what the search did not finish is reported as not proven, with
//! the lower bound it reached (0 or a smaller count for spares; 1 or 2, or the depth the
//! breadth-first search completed, for steps). The result is deterministic: same input,
//! same transition.

use super::concrete::{place, Members};
pub use super::exact::SEARCH_LIMIT;
use super::exact::{self, compact, meets, Class, CountStep, Outcome, Problem, Search};
use super::{Fate, GpuChange};
use migopt_models::{Assignment, Error};
use serde::{Deserialize, Serialize};

/// One GPU of a step and the layout it gets (empty: drained and left idle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepGpu {
    /// Device index.
    pub gpu: u32,
    /// What happens: `add`, `re-cut`, `free`, `swap in` (an idle GPU takes the layout of
    /// one that cannot go down safely) or `swap out` (that GPU is drained).
    pub kind: String,
    /// The instances it gets.
    pub layout: Vec<Assignment>,
}

/// One step: these GPUs are drained, re-cut and reloaded together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// GPUs re-cut in this step.
    pub gpus: Vec<StepGpu>,
    /// Each model's capacity while the step runs (requests/s, scenario order).
    pub capacity_during: Vec<f64>,
    /// Each model's capacity once the step is done.
    pub capacity_after: Vec<f64>,
}

/// The whole transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Models, in the order of the capacity vectors.
    pub models: Vec<String>,
    /// Capacity each model must keep during every step.
    pub required: Vec<f64>,
    /// Capacity before the first step.
    pub capacity_before: Vec<f64>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// A lower bound on the number of steps of any safe transition that takes at most
    /// `spares_used.len()` spare GPUs.
    pub lower_bound: u32,
    /// Whether the step count is proven minimal (it meets the lower bound).
    pub minimal: bool,
    /// Spare GPUs taken (indices after the plan's GPUs).
    pub spares_used: Vec<u32>,
    /// A lower bound on the spare GPUs any safe transition to this target takes.
    #[serde(default)]
    pub spares_lower_bound: u32,
    /// Whether the spare GPUs taken are proven the fewest (they meet their lower bound).
    #[serde(default)]
    pub spares_minimal: bool,
    /// Swaps (g, s): GPU g's target layout went up on GPU s instead (an idle GPU: a spare,
    /// an added GPU or one this transition drained), because g could not go down safely
    /// first; g ends idle or with another GPU's target layout, s in use.
    pub swaps: Vec<(u32, u32)>,
}

impl Transition {
    /// The tightest model during step `i`: its index and the capacity it keeps there as a
    /// fraction of its required capacity (`None` when no model has one).
    pub fn tightest(&self, i: usize) -> Option<(usize, f64)> {
        self.steps[i]
            .capacity_during
            .iter()
            .zip(&self.required)
            .enumerate()
            .filter(|(_, (_, &need))| need > 0.0)
            .map(|(m, (c, need))| (m, c / need))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The lowest fraction of its required capacity any model keeps in any step (`None`
    /// without a step where a model has one).
    pub fn min_kept_ratio(&self) -> Option<f64> {
        let kept = (0..self.steps.len())
            .filter_map(|i| self.tightest(i))
            .map(|(_, r)| r)
            .fold(f64::INFINITY, f64::min);
        kept.is_finite().then_some(kept)
    }
}

/// How a transition measures capacity: a GPU's instances as counts per (model, size), and
/// the requests/s each model carries on a set of instances. Min-gpus capacity is additive
/// (each instance serves its throughput); max-load capacity is not (a model's query classes
/// are routed among all its instances at once), which is why a step is judged on the whole
/// set of GPUs that stay up, never on per-GPU sums.
pub trait Capacity {
    /// Instances of a layout per (model, size), flattened model-major.
    fn count(&self, layout: &[Assignment]) -> Vec<u32>;
    /// Requests/s each model carries on the instances `counts` gives (scenario order).
    fn of(&self, counts: &[u32]) -> Vec<f64>;
}

/// A pending change of one GPU.
#[derive(Debug, Clone)]
struct Op {
    gpu: u32,
    kind: &'static str,
    to: Vec<Assignment>,
    /// Instances that go down (per model and size) and come up.
    loss: Vec<u32>,
    gain: Vec<u32>,
    /// Capacity of those alone (for ordering only).
    loss_cap: f64,
    gain_cap: f64,
}

fn minus(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().zip(b).map(|(x, y)| x.saturating_sub(*y)).collect()
}

fn plus(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The transition's bookkeeping: instances up now, the capacity rule and what it needs.
struct State<'a> {
    cap: &'a dyn Capacity,
    required: &'a [f64],
    now: Vec<u32>,
}

impl State<'_> {
    /// Whether `up` (instances that stay up) keeps every model's required capacity.
    fn safe(&self, up: &[u32]) -> bool {
        meets(&self.cap.of(up), self.required)
    }
}

/// The pending changes of a transition.
fn pending_ops(changes: &[GpuChange], cap: &dyn Capacity) -> Vec<Op> {
    let total = |c: &[u32]| -> f64 { cap.of(c).iter().sum() };
    changes
        .iter()
        .filter(|c| c.fate != Fate::Kept)
        .map(|c| {
            let (loss, gain) = (cap.count(&c.before), cap.count(&c.after));
            Op {
                gpu: c.gpu,
                kind: match c.fate {
                    Fate::Added => "add",
                    Fate::Freed => "free",
                    _ => "re-cut",
                },
                to: c.after.clone(),
                loss_cap: total(&loss),
                gain_cap: total(&gain),
                loss,
                gain,
            }
        })
        .collect()
}

/// The safe transition with the fewest spare GPUs (at most `spares`), then the fewest steps,
/// proven where the exact search ends within [`SEARCH_LIMIT`] (see the module docs).
///
/// `cap` measures capacity (monotone: an instance more never lowers a model's capacity);
/// `slots`: the plan's GPU slots (spares take the first device indices past them and
/// past every GPU the change names, see [`first_spare`]). Error: [`Error::Infeasible`] when no safe transition takes at most
/// `spares` spare GPUs (or none was found and the search stopped), saying how many one takes.
pub fn plan(
    changes: &[GpuChange],
    cap: &dyn Capacity,
    required: &[f64],
    models: &[String],
    spares: u32,
    slots: u32,
) -> Result<Transition, Error> {
    let t0 = std::time::Instant::now();
    let slots = first_spare(changes, slots);
    let (problem, members) = problem(changes, cap, required);
    // With a spare per re-cut GPU there is always one: every new layout up first, then
    // every old one down.
    let most = changes.iter().filter(|c| c.fate == Fate::ReCut).count() as u32;
    let given = greedy(changes, cap, required, models, spares, slots);
    let greedy_s = t0.elapsed().as_secs_f64();
    let incumbent = match &given {
        Ok(t) => Some(t.clone()),
        Err(_) => greedy(changes, cap, required, models, most.max(spares), slots).ok(),
    };
    let mut search = Search::new(&problem);
    let s = settle(&mut search, &problem, incumbent.as_ref(), most.max(spares));
    // The greedy ordering's spares/steps, for the log: with the spares given, else "none"
    // and with a spare per re-cut GPU.
    let sum = |t: &Transition| format!("{}/{}", t.spares_used.len(), t.steps.len());
    let greedy_was = match (&given, &incumbent) {
        (Ok(t), _) => sum(t),
        (Err(_), Some(t)) => format!("none greedy-most {}", sum(t)),
        (Err(_), None) => "none greedy-most none".into(),
    };
    let best = match (s.better, incumbent) {
        (Some((k, steps)), _) => {
            from_counts(&problem, &members, changes, &steps, k, slots, models)?
        }
        (None, Some(t)) => t,
        (None, None) => return Err(refusal(given.err(), spares, None, s.spares_lb)),
    };
    let t = Transition {
        minimal: best.steps.len() as u32 == s.steps_lb,
        lower_bound: s.steps_lb,
        spares_minimal: best.spares_used.len() as u32 == s.spares_lb,
        spares_lower_bound: s.spares_lb,
        ..best
    };
    let moving = changes.iter().filter(|c| c.fate != Fate::Kept).count();
    log(
        &greedy_was,
        &t,
        (spares, moving),
        search.examined,
        (greedy_s, t0),
    );
    if t.spares_used.len() as u32 > spares {
        return Err(refusal(given.err(), spares, Some(&t), s.spares_lb));
    }
    Ok(t)
}

/// `MIGOPT_TRANSITION_LOG` set: one line on stderr per transition, the greedy ordering's
/// spares and steps beside the result's, with what is proven, the search's effort, the
/// greedy ordering's time and the whole transition's.
fn log(
    g: &str,
    t: &Transition,
    (spares, moving): (u32, usize),
    examined: u64,
    (greedy_s, t0): (f64, std::time::Instant),
) {
    if std::env::var_os("MIGOPT_TRANSITION_LOG").is_none() {
        return;
    }
    eprintln!(
        "transition: changes {moving} spares-given {spares} greedy {g} exact {}/{} spares-proven {} steps-proven {} lower-bounds {}/{} examined {examined} greedy-seconds {greedy_s:.6} seconds {:.6}",
        t.spares_used.len(),
        t.steps.len(),
        t.spares_minimal,
        t.minimal,
        t.spares_lower_bound,
        t.lower_bound,
        t0.elapsed().as_secs_f64()
    );
}

/// The refusal when the transition found takes more than `given` spare GPUs (`found`; `None`:
/// none found), `why` the greedy ordering's block with the spares given.
fn refusal(why: Option<Error>, given: u32, found: Option<&Transition>, lb: u32) -> Error {
    let why = match why {
        Some(Error::Infeasible(w)) | Some(Error::Internal(w)) => w,
        Some(e) => e.to_string(),
        None => "no step is safe".into(),
    };
    let head = if lb > given {
        format!("no safe transition with {given} spare GPU(s) (proven by exhaustive search; where the greedy ordering stops, {why})")
    } else {
        format!(
            "no safe transition found with {given} spare GPU(s) (where the greedy ordering stops, {why}; the exact search stopped at its limit of {} candidate steps, so one may exist)",
            SEARCH_LIMIT
        )
    };
    let text = match found {
        Some(t) if t.spares_minimal => {
            let n = t.spares_used.len();
            format!("{head}; a safe transition to this target needs {n} spare GPU(s) (--spare-gpus {n})")
        }
        Some(t) => {
            let n = t.spares_used.len();
            format!("{head}; a safe transition to this target needs at least {lb} and at most {n} spare GPU(s): one was found with {n} (--spare-gpus {n})")
        }
        None => head,
    };
    Error::Infeasible(text)
}

/// The transition in counts: its classes of old and new layouts, and their changes.
fn problem<'a>(
    changes: &[GpuChange],
    cap: &'a dyn Capacity,
    required: &'a [f64],
) -> (Problem<'a>, Members) {
    let mut p = Problem {
        cap,
        required,
        kept: Vec::new(),
        olds: Vec::new(),
        news: Vec::new(),
        idle: 0,
    };
    let mut m = Members {
        olds: Vec::new(),
        news: Vec::new(),
    };
    let join =
        |classes: &mut Vec<Class>, members: &mut Vec<Vec<usize>>, counts: Vec<u32>, i: usize| {
            match classes.iter().position(|c| c.counts == counts) {
                Some(c) => {
                    classes[c].n += 1;
                    members[c].push(i);
                }
                None => {
                    classes.push(Class { counts, n: 1 });
                    members.push(vec![i]);
                }
            }
        };
    for (i, c) in changes.iter().enumerate() {
        if c.fate == Fate::Kept {
            let k = cap.count(&c.before);
            p.kept.resize(p.kept.len().max(k.len()), 0);
            for (a, b) in p.kept.iter_mut().zip(k) {
                *a += b;
            }
            continue;
        }
        if !c.before.is_empty() {
            join(&mut p.olds, &mut m.olds, cap.count(&c.before), i);
        }
        if !c.after.is_empty() {
            join(&mut p.news, &mut m.news, cap.count(&c.after), i);
        }
        p.idle += u32::from(c.before.is_empty());
    }
    (p, m)
}

/// What the exact search settled.
struct Settled {
    /// A transition better than the incumbent (fewer spares, or as many and fewer steps):
    /// its spares and steps in counts.
    better: Option<(u32, Vec<CountStep>)>,
    /// Every safe transition takes at least this many spares.
    spares_lb: u32,
    /// Every safe transition with at most the chosen spares has at least this many steps.
    steps_lb: u32,
}

/// Spare counts from 0 up to the incumbent's (or `top` without one): each proven impossible
/// (a search of one take-down per step that ends without a transition) before the next;
/// the first possible one is searched for its fewest steps (the incumbent's steps less one
/// at most, when it is the incumbent's). Stops at the search limit.
fn settle(
    search: &mut Search<'_>,
    p: &Problem<'_>,
    incumbent: Option<&Transition>,
    top: u32,
) -> Settled {
    let simple = search.lower_bound();
    let mut s = Settled {
        better: None,
        spares_lb: 0,
        steps_lb: simple,
    };
    let inc = incumbent.map(|t| (t.spares_used.len() as u32, t.steps.len() as u32));
    for k in 0..=inc.map_or(top, |i| i.0) {
        s.spares_lb = k;
        let quick = match inc {
            Some((ks, steps)) if ks == k => {
                fewest_steps(search, k, (steps, simple), None, &mut s);
                return s;
            }
            _ => match search.fewest_steps(k, true, u32::MAX) {
                Outcome::Exhausted => continue,
                Outcome::Stopped { .. } => return s,
                Outcome::Found(single) => compact(p, single),
            },
        };
        let n = quick.len() as u32;
        fewest_steps(search, k, (n, simple), Some(quick), &mut s);
        return s;
    }
    s.spares_lb = top + 1;
    s
}

/// The fewest steps with `k` spares given a transition with `steps` (`quick`: in counts,
/// or `None`: the incumbent's) and a lower bound `simple`: a better one found goes into
/// `s.better` (`quick` when none is).
fn fewest_steps(
    search: &mut Search<'_>,
    k: u32,
    (steps, simple): (u32, u32),
    quick: Option<Vec<CountStep>>,
    s: &mut Settled,
) {
    s.steps_lb = steps;
    if steps > simple {
        match search.fewest_steps(k, false, steps - 1) {
            Outcome::Found(path) => {
                s.steps_lb = path.len() as u32;
                s.better = Some((k, path));
                return;
            }
            Outcome::Exhausted => {}
            Outcome::Stopped { steps: lb } => s.steps_lb = lb.max(simple),
        }
    }
    s.better = quick.map(|q| (k, q));
}

/// The transition on GPUs from its steps in counts (`k` spare GPUs from index `slots` on).
fn from_counts(
    p: &Problem<'_>,
    members: &Members,
    changes: &[GpuChange],
    steps: &[CountStep],
    k: u32,
    slots: u32,
    models: &[String],
) -> Result<Transition, Error> {
    let placed = place(changes, members, steps, k, slots)?;
    let mut state = vec![0u32; p.olds.len() + p.news.len()];
    let before = p.cap.of(&p.instances(&state));
    let mut out = Vec::new();
    for (step, gpus) in steps.iter().zip(placed.steps) {
        let mut during = p.instances(&state);
        for (c, &d) in p.olds.iter().zip(&step.down) {
            for (a, b) in during.iter_mut().zip(&c.counts) {
                *a = a.saturating_sub(d * b);
            }
        }
        exact::apply(&mut state, step);
        out.push(Step {
            gpus,
            capacity_during: p.cap.of(&during),
            capacity_after: p.cap.of(&p.instances(&state)),
        });
    }
    Ok(Transition {
        models: models.to_vec(),
        required: p.required.to_vec(),
        capacity_before: before,
        steps: out,
        lower_bound: 0,
        minimal: false,
        spares_used: placed.spares_used,
        spares_lower_bound: 0,
        spares_minimal: false,
        swaps: placed.swaps,
    })
}

/// The first device index a spare GPU may take: past every GPU the change names and the
/// plan's `slots`.
fn first_spare(changes: &[GpuChange], slots: u32) -> u32 {
    changes
        .iter()
        .map(|c| c.gpu + 1)
        .max()
        .unwrap_or(0)
        .max(slots)
}

/// The greedy ordering: steps as large as the rule allows, a swap when no change can go
/// down. Error: the blocked change, when no idle GPU is left for a swap.
fn greedy(
    changes: &[GpuChange],
    cap: &dyn Capacity,
    required: &[f64],
    models: &[String],
    spares: u32,
    slots: u32,
) -> Result<Transition, Error> {
    let width = changes
        .iter()
        .flat_map(|c| [cap.count(&c.before).len(), cap.count(&c.after).len()])
        .max()
        .unwrap_or(0);
    let mut now = vec![0u32; width];
    for c in changes.iter().filter(|c| c.fate != Fate::Added) {
        now = plus(&now, &cap.count(&c.before));
    }
    let mut st = State { cap, required, now };
    let before = cap.of(&st.now);
    let mut pending = pending_ops(changes, cap);
    let lower_bound = lower_bound(&st, &pending);
    let mut steps = Vec::new();
    let mut spares = Spares {
        given: spares,
        used: Vec::new(),
        next: slots,
        idle: Vec::new(),
        swaps: Vec::new(),
    };
    while !pending.is_empty() {
        order(&mut pending);
        match take(&st, &pending) {
            take if take.is_empty() => swap(&st, &mut pending, &mut spares, models)?,
            take => steps.push(apply(&mut st, &mut pending, &take, &mut spares.idle)),
        }
    }
    let count = steps.len() as u32;
    Ok(Transition {
        models: models.to_vec(),
        required: required.to_vec(),
        capacity_before: before,
        steps,
        lower_bound,
        minimal: count == lower_bound,
        spares_lower_bound: 0,
        spares_minimal: spares.used.is_empty(),
        spares_used: spares.used,
        swaps: spares.swaps,
    })
}

/// 0 without changes, 1 when every change fits one step, else 2.
fn lower_bound(st: &State<'_>, pending: &[Op]) -> u32 {
    if pending.is_empty() {
        return 0;
    }
    let all = pending
        .iter()
        .fold(st.now.clone(), |a, o| minus(&a, &o.loss));
    if st.safe(&all) {
        1
    } else {
        2
    }
}

/// The largest safe step in the pending order: each change joins if, with every change
/// taken before it down too, every model keeps its required capacity.
fn take(st: &State<'_>, pending: &[Op]) -> Vec<usize> {
    let mut avail = st.now.clone();
    let mut take = Vec::new();
    for (i, op) in pending.iter().enumerate() {
        let left = minus(&avail, &op.loss);
        if st.safe(&left) {
            avail = left;
            take.push(i);
        }
    }
    take
}

/// Runs one step: the changes `take` (indices into `pending`) go down and come back in
/// their new layouts.
fn apply(st: &mut State<'_>, pending: &mut Vec<Op>, take: &[usize], idle: &mut Vec<u32>) -> Step {
    let mut during = st.now.clone();
    let mut gpus = Vec::new();
    // The taken changes out of `pending` in one pass (removing them one by one moved the
    // rest each time: quadratic in a step of tens of thousands of GPUs), then handled from
    // the back, as before.
    let mut taken = vec![false; pending.len()];
    for &i in take {
        taken[i] = true;
    }
    let mut ops = Vec::with_capacity(take.len());
    for (op, t) in std::mem::take(pending).into_iter().zip(taken) {
        if t {
            ops.push(op);
        } else {
            pending.push(op);
        }
    }
    for op in ops.into_iter().rev() {
        if op.to.is_empty() {
            // Drained and idle from now on: it may take a later swap.
            idle.push(op.gpu);
        }
        during = minus(&during, &op.loss);
        st.now = plus(&minus(&st.now, &op.loss), &op.gain);
        gpus.push(StepGpu {
            gpu: op.gpu,
            kind: op.kind.to_string(),
            layout: op.to,
        });
    }
    gpus.sort_by_key(|g| g.gpu);
    Step {
        gpus,
        capacity_during: st.cap.of(&during),
        capacity_after: st.cap.of(&st.now),
    }
}

/// Idle GPUs a swap may take: spares given and taken, GPUs this transition drained.
struct Spares {
    given: u32,
    used: Vec<u32>,
    next: u32,
    idle: Vec<u32>,
    swaps: Vec<(u32, u32)>,
}

/// No pending change can go down safely: cut an idle GPU (a spare, or one this transition
/// already drained) into the new layout of the blocked re-cut whose new layout, once up,
/// unblocks the most other changes, and drain the blocked GPU instead.
fn swap(
    st: &State<'_>,
    pending: &mut Vec<Op>,
    spares: &mut Spares,
    models: &[String],
) -> Result<(), Error> {
    let unblocked = |c: usize| -> usize {
        let after = plus(&st.now, &pending[c].gain);
        (0..pending.len())
            .filter(|&j| j != c && st.safe(&minus(&after, &pending[j].loss)))
            .count()
    };
    let Some(bi) = (0..pending.len())
        .filter(|&i| pending[i].kind == "re-cut")
        .max_by_key(|&i| (unblocked(i), std::cmp::Reverse(i)))
    else {
        return Err(blocked(st, &pending[0], models));
    };
    let spare = match spares.idle.pop() {
        Some(s) => s,
        None if (spares.used.len() as u32) < spares.given => {
            spares.next += 1;
            spares.used.push(spares.next - 1);
            spares.next - 1
        }
        None => return Err(blocked(st, &pending[bi], models)),
    };
    let op = pending.remove(bi);
    spares.swaps.push((op.gpu, spare));
    let none = vec![0; op.loss.len()];
    pending.push(Op {
        gpu: spare,
        kind: "swap in",
        to: op.to.clone(),
        loss: none.clone(),
        gain: op.gain.clone(),
        loss_cap: 0.0,
        gain_cap: op.gain_cap,
    });
    pending.push(Op {
        gpu: op.gpu,
        kind: "swap out",
        to: Vec::new(),
        loss: op.loss,
        gain: none,
        loss_cap: op.loss_cap,
        gain_cap: 0.0,
    });
    Ok(())
}

/// Losses first by none, then by the net capacity a change adds (most first), frees last;
/// ties by GPU index (deterministic).
fn order(ops: &mut [Op]) {
    let key = |o: &Op| {
        let net = o.gain_cap - o.loss_cap;
        let class = match o.kind {
            _ if o.loss_cap <= exact::TOL => 1,
            "free" | "swap out" => 3,
            _ => 2,
        };
        (class, -net, o.gpu)
    };
    ops.sort_by(|a, b| {
        let (ca, na, ga) = key(a);
        let (cb, nb, gb) = key(b);
        ca.cmp(&cb).then(na.total_cmp(&nb)).then(ga.cmp(&gb))
    });
}

fn blocked(st: &State<'_>, op: &Op, models: &[String]) -> Error {
    let left = st.cap.of(&minus(&st.now, &op.loss));
    let required = st.required;
    let m = (0..required.len())
        .find(|&m| !meets(&left[m..=m], &required[m..=m]))
        .unwrap_or(0);
    Error::Infeasible(format!(
        "re-cutting GPU {} would leave model {} with {:.1} requests/s, \
         below the {:.1} it must keep (min of old and new rate)",
        op.gpu,
        models.get(m).map_or("?", |s| s.as_str()),
        left.get(m).copied().unwrap_or(0.0),
        required.get(m).copied().unwrap_or(0.0),
    ))
}

#[cfg(test)]
mod tests;
