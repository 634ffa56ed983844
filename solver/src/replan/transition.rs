//! The transition from a current plan to a re-planned target: ordered steps, each of which
//! drains, re-cuts and reloads a set of GPUs at once (what `nvidia-mig-parted apply` does to
//! a GPU: it deletes every instance before it creates the new layout).
//!
//! Safety rule: during every step, every model keeps at least its required capacity
//! (normally min(old rate, new rate)) on the GPUs that are not being re-cut, counting each
//! GPU in the state it is in at that moment. Instances come up only when their step ends.
//!
//! Steps are built greedily, each as large as the rule allows: GPUs that lose nothing
//! (added ones) first, then re-cuts by the capacity they add, then GPUs that are freed.
//! When no pending GPU can go down without breaking the rule, the change is *swapped*: an
//! idle GPU (one of the spares given, or one this transition has already drained) is cut
//! into the blocked GPU's new layout, and the blocked GPU is drained once that is up (it
//! ends idle; the target's layout lives on the other device). The step count is therefore
//! *bounded*, not minimised: the report gives the count reached and a lower bound (1 when
//! the whole change fits one step, 2 otherwise), and says whether they meet.

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
    /// A lower bound on the number of steps any safe transition needs.
    pub lower_bound: u32,
    /// Whether the step count is proven minimal (it meets the lower bound).
    pub minimal: bool,
    /// Spare GPUs taken (indices after the plan's GPUs).
    pub spares_used: Vec<u32>,
    /// Swaps (g, s): GPU g could not go down safely, so idle GPU s was cut into g's new
    /// layout and g drained instead (g ends idle, s in use).
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

/// A pending change of one GPU.
#[derive(Debug, Clone)]
struct Op {
    gpu: u32,
    kind: &'static str,
    to: Vec<Assignment>,
    loss: Vec<f64>,
    gain: Vec<f64>,
}

const TOL: f64 = 1e-9;

fn fits(avail: &[f64], loss: &[f64], required: &[f64]) -> bool {
    avail
        .iter()
        .zip(loss)
        .zip(required)
        .all(|((a, l), r)| a - l >= r * (1.0 - TOL) - TOL)
}

fn sub(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x -= y);
}

fn add(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}

/// Orders and groups the changes into safe steps.
///
/// `caps(layout)` gives a GPU's capacity per model; `slots` is the first device index after
/// the plan's GPUs (spares take `slots`, `slots + 1`, ...).
pub fn plan(
    changes: &[GpuChange],
    caps: &dyn Fn(&[Assignment]) -> Vec<f64>,
    required: &[f64],
    models: &[String],
    spares: u32,
    slots: u32,
) -> Result<Transition, Error> {
    let nm = required.len();
    let mut now = vec![0.0; nm];
    for c in changes.iter().filter(|c| c.fate != Fate::Added) {
        add(&mut now, &caps(&c.before));
    }
    let before = now.clone();
    let mut pending: Vec<Op> = changes
        .iter()
        .filter(|c| c.fate != Fate::Kept)
        .map(|c| Op {
            gpu: c.gpu,
            kind: match c.fate {
                Fate::Added => "add",
                Fate::Freed => "free",
                _ => "re-cut",
            },
            to: c.after.clone(),
            loss: caps(&c.before),
            gain: caps(&c.after),
        })
        .collect();
    let lower_bound = if pending.is_empty() {
        0
    } else {
        let all: Vec<f64> = (0..nm)
            .map(|m| pending.iter().map(|o| o.loss[m]).sum())
            .collect();
        if fits(&now, &all, required) {
            1
        } else {
            2
        }
    };
    let mut steps = Vec::new();
    let mut spares_used = Vec::new();
    let mut next_spare = slots;
    // GPUs drained by this transition, free for a swap; swaps made.
    let mut idle: Vec<u32> = Vec::new();
    let mut swaps: Vec<(u32, u32)> = Vec::new();
    while !pending.is_empty() {
        order(&mut pending);
        let mut avail = now.clone();
        let mut take = Vec::new();
        for (i, op) in pending.iter().enumerate() {
            if fits(&avail, &op.loss, required) {
                sub(&mut avail, &op.loss);
                take.push(i);
            }
        }
        if take.is_empty() {
            // Swap: cut an idle GPU (a spare, or one this transition already drained) into
            // the blocked GPU's new layout, and drain the blocked GPU instead.
            // Swap the change whose new layout, once up, unblocks the most other changes.
            let unblocked = |c: usize| -> usize {
                let mut after = now.clone();
                add(&mut after, &pending[c].gain);
                (0..pending.len())
                    .filter(|&j| j != c && fits(&after, &pending[j].loss, required))
                    .count()
            };
            let Some(bi) = (0..pending.len())
                .filter(|&i| pending[i].kind == "re-cut")
                .max_by_key(|&i| (unblocked(i), std::cmp::Reverse(i)))
            else {
                return Err(blocked(&pending[0], &now, required, models, spares));
            };
            let spare = match idle.pop() {
                Some(s) => s,
                None if (spares_used.len() as u32) < spares => {
                    next_spare += 1;
                    spares_used.push(next_spare - 1);
                    next_spare - 1
                }
                None => return Err(blocked(&pending[bi], &now, required, models, spares)),
            };
            let op = pending.remove(bi);
            swaps.push((op.gpu, spare));
            pending.push(Op {
                gpu: spare,
                kind: "swap in",
                to: op.to.clone(),
                loss: vec![0.0; nm],
                gain: op.gain.clone(),
            });
            pending.push(Op {
                gpu: op.gpu,
                kind: "swap out",
                to: Vec::new(),
                loss: op.loss,
                gain: vec![0.0; nm],
            });
            continue;
        }
        let mut during = now.clone();
        let mut gpus = Vec::new();
        // Remove from the back so indices stay valid.
        for &i in take.iter().rev() {
            let op = pending.remove(i);
            if op.to.is_empty() {
                // Drained and idle from now on: it may take a later swap.
                idle.push(op.gpu);
            }
            sub(&mut during, &op.loss);
            sub(&mut now, &op.loss);
            add(&mut now, &op.gain);
            gpus.push(StepGpu {
                gpu: op.gpu,
                kind: op.kind.to_string(),
                layout: op.to,
            });
        }
        gpus.sort_by_key(|g| g.gpu);
        steps.push(Step {
            gpus,
            capacity_during: during,
            capacity_after: now.clone(),
        });
    }
    let count = steps.len() as u32;
    Ok(Transition {
        models: models.to_vec(),
        required: required.to_vec(),
        capacity_before: before,
        steps,
        lower_bound,
        minimal: count == lower_bound,
        spares_used,
        swaps,
    })
}

/// Losses first by none, then by the net capacity a change adds (most first), frees last;
/// ties by GPU index (deterministic).
fn order(ops: &mut [Op]) {
    let key = |o: &Op| {
        let loss: f64 = o.loss.iter().sum();
        let net: f64 = o.gain.iter().sum::<f64>() - loss;
        let class = match o.kind {
            _ if loss <= TOL => 1,
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

fn blocked(op: &Op, now: &[f64], required: &[f64], models: &[String], spares: u32) -> Error {
    let m = (0..required.len())
        .find(|&m| now[m] - op.loss[m] < required[m] * (1.0 - TOL) - TOL)
        .unwrap_or(0);
    Error::Infeasible(format!(
        "no safe transition with {spares} spare GPU(s): re-cutting GPU {} would leave model {} with {:.1} requests/s, \
         below the {:.1} it must keep (min of old and new rate)",
        op.gpu,
        models.get(m).map_or("?", |s| s.as_str()),
        now[m] - op.loss[m],
        required[m],
    ))
}
