//! The decision functions. Each takes the query and its candidates (see [`Candidate`]) and
//! returns the chosen instance, or `None` when there is no candidate. Rules that prefer
//! small sizes expect the candidates in ascending `compute`; ties go to the earliest
//! estimated finish, then to the candidate met first. They are pure: same candidates, same
//! answer, so each is pinned by trace tests (`sim/tests/sched_traces.rs`).
//!
//! The bodies use selects rather than branches where the winner is data: the event-free
//! engine calls them tens of millions of times a second, and which candidate wins is not
//! something a branch predictor can learn.

use super::{Candidate, Query};

/// Deadline margin of the margin, protect and plan rules: a candidate "meets the deadline"
/// when its estimated finish is within arrival + α·SLA. Half the SLA leaves the other half
/// for what the estimate cannot see (later arrivals, service-time jitter); measured against
/// 0.7 and 1.0 in `papers/paris-elsa`.
pub const MARGIN_ALPHA: f64 = 0.5;

/// `elsa-start`'s horizon, as a fraction of the SLA: the latest estimated finish a query
/// accepts to start earlier elsewhere. Half the SLA is the planner's β, the slowest a size
/// may run a batch class in a max-load plan. Measured in `papers/paris-elsa` (quick runs)
/// against 0.4 and 0.6: 0.4 sends too many mid-size batches to wait for the fast sizes
/// (p99 at 70% load above FIFS's on a100-inceptionv3), 0.6 measured as 0.5. Without it
/// (a central queue's behaviour) the capacity gains on a100-mobilenetv2 (MILP plan, +3.6%)
/// and a100-resnet50 (+1–1.3%) go.
pub const START_HORIZON: f64 = 0.5;

/// `elsa-start`'s tail slack, as a fraction of the SLA: a query accepts an estimated finish
/// at most max(0, σ·SLA − its quickest service time) after its earliest possible finish to
/// start earlier elsewhere. The largest batches, whose quickest service alone is σ·SLA or
/// more and which make the latency tail, take the earliest finish; small ones, with time
/// to spare, the earliest start. σ = 0.4 kept p99 at 70% of FIFS's capacity at or below
/// FIFS's on all 30 (workload, plan) cases of `papers/paris-elsa` on seeds 1 and 2 (one
/// bucket above on one case with seed 3); 0.3 and 0.35 gave up to 2.5% above FIFS on the
/// H100 workloads (too many mid-size batches wait for the fast sizes), 0.5 left the two
/// cases where the horizon alone is above FIFS. `papers/examples/elsa_p99.rs` measures it.
pub const START_SLACK: f64 = 0.4;

#[inline(always)]
fn select_f(c: bool, a: f64, b: f64) -> f64 {
    // On the bit patterns, so that it compiles to masks rather than a jump.
    let m = (c as u64).wrapping_neg();
    f64::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
}

#[inline(always)]
fn select_u(c: bool, a: u32, b: u32) -> u32 {
    let m = (c as u32).wrapping_neg();
    (a & m) | (b & !m)
}

/// The earliest estimated finish offered so far and the id (an instance, or a position in
/// the candidate list) that offered it first.
#[derive(Clone, Copy)]
struct Earliest {
    fin: f64,
    id: u32,
}

impl Earliest {
    const NONE: Self = Self {
        fin: f64::INFINITY,
        id: u32::MAX,
    };

    #[inline(always)]
    fn offer(&mut self, fin: f64, id: u32) {
        let better = fin < self.fin;
        self.fin = select_f(better, fin, self.fin);
        self.id = select_u(better, id, self.id);
    }
}

/// `meet` if some candidate met the deadline, else the earliest finish `any`; `None` when
/// there was no candidate.
#[inline(always)]
fn meet_or(meet: u32, any: Earliest) -> Option<u32> {
    let pick = select_u(meet != u32::MAX, meet, any.id);
    (pick != u32::MAX).then_some(pick)
}

/// A preference among candidates, compared field by field (smaller first) without branches.
trait Key: Copy {
    /// Beaten by every candidate's key.
    const NONE: Self;
    /// Whether `self` comes strictly before `other`.
    fn beats(self, other: Self) -> bool;
    /// `a` if `c`, else `b`.
    fn select(c: bool, a: Self, b: Self) -> Self;
}

impl Key for (f64, f64) {
    const NONE: Self = (f64::INFINITY, f64::INFINITY);

    #[inline(always)]
    fn beats(self, o: Self) -> bool {
        (self.0 < o.0) | ((self.0 == o.0) & (self.1 < o.1))
    }

    #[inline(always)]
    fn select(c: bool, a: Self, b: Self) -> Self {
        (select_f(c, a.0, b.0), select_f(c, a.1, b.1))
    }
}

impl Key for (f64, f64, f64) {
    const NONE: Self = (f64::INFINITY, f64::INFINITY, f64::INFINITY);

    #[inline(always)]
    fn beats(self, o: Self) -> bool {
        (self.0 < o.0) | ((self.0 == o.0) & (self.1, self.2).beats((o.1, o.2)))
    }

    #[inline(always)]
    fn select(c: bool, a: Self, b: Self) -> Self {
        let (x, y) = <(f64, f64)>::select(c, (a.1, a.2), (b.1, b.2));
        (select_f(c, a.0, b.0), x, y)
    }
}

/// Among the candidates whose estimated finish is at most `deadline`, the id of the one
/// with the least `key(candidate, finish)` (ties to the candidate met first); with none,
/// the earliest finish; `None` without candidates.
#[inline(always)]
fn least_in_time<K: Key>(
    deadline: f64,
    cands: impl Iterator<Item = (u32, Candidate)>,
    key: impl Fn(&Candidate, f64) -> K,
) -> Option<u32> {
    let mut any = Earliest::NONE;
    let (mut best, mut pick) = (K::NONE, u32::MAX);
    for (id, c) in cands {
        let fin = c.finish_ms();
        let k = key(&c, fin);
        let ok = (fin <= deadline) & k.beats(best);
        best = K::select(ok, k, best);
        pick = select_u(ok, id, pick);
        any.offer(fin, id);
    }
    meet_or(pick, any)
}

/// The smallest size whose estimated finish is at most `deadline` (ties to the earliest
/// finish), else the earliest finish overall. Candidates in ascending `compute`.
#[inline(always)]
fn smallest_meeting<I: IntoIterator<Item = Candidate>>(deadline: f64, cands: I) -> Option<u32> {
    let mut any = Earliest::NONE;
    let (mut meet_fin, mut meet_i, mut meet_c) = (f64::INFINITY, u32::MAX, u32::MAX);
    for c in cands {
        if c.compute > meet_c {
            // Ascending sizes: nothing later is smaller than the one that meets it.
            break;
        }
        let fin = c.finish_ms();
        let ok = (fin <= deadline) & (fin < meet_fin);
        meet_fin = select_f(ok, fin, meet_fin);
        meet_i = select_u(ok, c.instance, meet_i);
        meet_c = select_u(ok, c.compute, meet_c);
        any.offer(fin, c.instance);
    }
    meet_or(meet_i, any)
}

/// `elsa-greedy`, the reconstruction of the paper's ELSA: the smallest size whose estimated
/// finish meets arrival + SLA, ties to the earliest finish; if none does, the earliest
/// finish overall. Candidates in ascending `compute`.
#[inline(always)]
pub fn elsa_greedy<I: IntoIterator<Item = Candidate>>(q: &Query, cands: I) -> Option<u32> {
    smallest_meeting(q.deadline(), cands)
}

/// `elsa-margin`: [`elsa_greedy`] against arrival + α·SLA instead of the full deadline, so a
/// query is not parked on a small instance until just before its deadline. Candidates in
/// ascending `compute`.
#[inline(always)]
pub fn elsa_margin<I: IntoIterator<Item = Candidate>>(
    q: &Query,
    alpha: f64,
    cands: I,
) -> Option<u32> {
    smallest_meeting(q.arrival_ms + alpha * q.sla_ms, cands)
}

/// `elsa-protect`: the smallest *unprotected* size meeting arrival + α·SLA; else the
/// smallest protected one meeting it; else the earliest finish. A size is protected when
/// some batch class of the model may run only there, so other queries keep off it while
/// they have anywhere else to go. Candidates in ascending `compute`.
#[inline(always)]
pub fn elsa_protect<I: IntoIterator<Item = Candidate>>(
    q: &Query,
    alpha: f64,
    cands: I,
) -> Option<u32> {
    let deadline = q.arrival_ms + alpha * q.sla_ms;
    // Best meeting candidate per tier (0: unprotected, 1: protected) and overall.
    let mut meet = [(u32::MAX, f64::INFINITY, u32::MAX); 2];
    let mut any = Earliest::NONE;
    for c in cands {
        let fin = c.finish_ms();
        let t = &mut meet[c.protected as usize];
        let ok = (fin <= deadline) & ((c.compute < t.0) | ((c.compute == t.0) & (fin < t.1)));
        if ok {
            *t = (c.compute, fin, c.instance);
        }
        any.offer(fin, c.instance);
    }
    let meet = if meet[0].2 != u32::MAX {
        meet[0].2
    } else {
        meet[1].2
    };
    meet_or(meet, any)
}

/// `elsa-plan`: the plan's routes as target shares, within the query's latency slack.
///
/// A candidate is *admissible* when its estimated finish meets arrival + α·SLA and is at
/// most `room` after the earliest estimated finish, where room = max(0, slack·SLA − the
/// query's quickest service time). Among admissible candidates the one whose size is
/// furthest behind its target share of the query's (model, batch) class wins (largest
/// `deficit`), ties to the earliest finish; with none admissible, the earliest finish.
///
/// The room shrinks with the query's own service time: small batches, which have time to
/// spare, follow the plan to the sizes that run them efficiently; the largest batches, which
/// make the latency tail, take the earliest finish. Any candidate order.
#[inline(always)]
pub fn elsa_plan<I>(q: &Query, alpha: f64, slack: f64, cands: I) -> Option<u32>
where
    I: IntoIterator<Item = Candidate>,
    I::IntoIter: Clone,
{
    let (deadline, cands) = deadline_and_tagged(q, alpha, slack, cands);
    plan_choice(deadline, cands)
}

/// [`finish_deadline`] for `q` with `first` and `quickest` taken from `cands`, and the
/// candidates tagged with their instances, ready for a choice ([`plan_choice`],
/// [`start_choice`]).
#[inline(always)]
fn deadline_and_tagged<I>(
    q: &Query,
    within: f64,
    slack: f64,
    cands: I,
) -> (f64, impl Iterator<Item = (u32, Candidate)>)
where
    I: IntoIterator<Item = Candidate>,
    I::IntoIter: Clone,
{
    let cands = cands.into_iter();
    let (first, quickest) = first_and_quickest(cands.clone());
    let deadline = finish_deadline(q, within, slack, first, quickest);
    (deadline, cands.map(|c| (c.instance, c)))
}

/// The latest estimated finish [`elsa_plan`] and [`elsa_start`] accept for `q`: arrival +
/// `within`·SLA (α, or the horizon), and at most room = max(0, `slack`·SLA − `quickest`)
/// after `first`, where `first` is the earliest estimated finish among the candidates and
/// `quickest` the query's quickest service time (which an engine whose service times are
/// fixed per (model, batch) computes once).
#[inline(always)]
pub fn finish_deadline(q: &Query, within: f64, slack: f64, first: f64, quickest: f64) -> f64 {
    let (latest, room) = finish_limits(q, within, slack, quickest);
    latest.min(first + room)
}

/// [`finish_deadline`]'s two terms: the latest finish (arrival + `within`·SLA) and the room
/// after the earliest finish.
#[inline(always)]
fn finish_limits(q: &Query, within: f64, slack: f64, quickest: f64) -> (f64, f64) {
    let room = (slack * q.sla_ms - quickest).max(0.0);
    (q.arrival_ms + within * q.sla_ms, room)
}

/// The earliest estimated finish among `cands` and the quickest service time, the two
/// inputs of [`finish_deadline`] (infinite without candidates).
#[inline(always)]
fn first_and_quickest(cands: impl Iterator<Item = Candidate>) -> (f64, f64) {
    cands.fold((f64::INFINITY, f64::INFINITY), |(f, s), c| {
        (f.min(c.finish_ms()), s.min(c.service_ms))
    })
}

/// [`elsa_plan`]'s choice once its deadline ([`finish_deadline`]) is known, as a position in
/// `cands`: among candidates finishing by `deadline` the one furthest behind its share
/// (largest `deficit`), ties to the earliest finish; with none, the earliest finish; ties
/// to the candidate met first. `None` without candidates.
#[inline(always)]
pub fn elsa_plan_within<I: IntoIterator<Item = Candidate>>(
    deadline: f64,
    cands: I,
) -> Option<usize> {
    let at = cands.into_iter().enumerate().map(|(k, c)| (k as u32, c));
    plan_choice(deadline, at).map(|k| k as usize)
}

/// [`elsa_plan_within`] over candidates tagged with ids; returns the chosen id. The largest
/// deficit first is the least negated deficit first.
#[inline(always)]
fn plan_choice(deadline: f64, cands: impl Iterator<Item = (u32, Candidate)>) -> Option<u32> {
    least_in_time(deadline, cands, |c, fin| (-c.deficit, fin))
}

/// `elsa-start`: late binding at arrival, with a guard for the latency tail.
///
/// A candidate is *in time* when its estimated finish is within arrival + `horizon`·SLA
/// and at most room = max(0, `slack`·SLA − the query's quickest service time) after the
/// earliest estimated finish among the candidates ([`finish_deadline`]). Among candidates in
/// time, the one that can start earliest; ties (several idle instances, which all start
/// now) to the one that freed up first (idle longest, `free_ms`), then the earliest finish;
/// with none in time, the earliest finish. Ties left go to the candidate met first. Any
/// candidate order.
///
/// A central queue (FIFS) gives each query the first instance able to run it that frees up,
/// whatever its speed, and an idle instance that has been idle longest. With estimates of
/// queued and running work, the earliest estimated start is that instance, so without its
/// two limits this rule *is* FIFS, decided at arrival. The limits add size-awareness where
/// it matters: the horizon keeps queries off sizes that run them too slowly (a query whose
/// only in-time choice is to wait for a faster size waits for it), and the room makes the
/// largest batches, which make the latency tail, take the earliest finish rather than the
/// first idle slow instance.
#[inline(always)]
pub fn elsa_start<I>(q: &Query, horizon: f64, slack: f64, cands: I) -> Option<u32>
where
    I: IntoIterator<Item = Candidate>,
    I::IntoIter: Clone,
{
    let (deadline, cands) = deadline_and_tagged(q, horizon, slack, cands);
    start_choice(deadline, cands)
}

/// [`elsa_start`] over candidates tagged with ids, given its deadline; the chosen id.
#[inline(always)]
fn start_choice(deadline: f64, cands: impl Iterator<Item = (u32, Candidate)>) -> Option<u32> {
    least_in_time(deadline, cands, |c, fin| (c.start_ms, c.free_ms, fin))
}

/// The most candidates [`elsa_start_clamped`] takes. Its width is fixed per call (a power
/// of two up to this), so that its work per query does not depend on the data.
pub const CLAMPED_WIDTH: usize = 8;

/// [`elsa_start`] for an engine whose candidates each start when they free up, but not
/// before the query's arrival: start = max(free, arrival). Candidate k is instance `ids[k]`
/// with free time `free[k]` and service `svc[k]` (ms, not NaN); unused slots have an
/// infinite service. `quickest` is the least service (an engine whose service times are
/// fixed per (model, batch) keeps it per class). `W` is a power of two, at most
/// [`CLAMPED_WIDTH`]. Returns the instance [`elsa_start`] picks among the same candidates
/// (`sim/tests/properties.rs` pins it).
///
/// Since max(free, arrival) is non-decreasing in free, ordering by (start, free) is
/// ordering by free alone: a smaller free never starts later, and equal frees start
/// together. So the choice is two minima, each carrying its instance: the earliest finish,
/// which sets the deadline, then the least free time among candidates in time. Both are
/// pairwise reductions (log₂ W steps deep, no branch on the data), which keeps the chain
/// from one query's tree update to the next query's choice short. A minimum shared by
/// several candidates (rare: e.g. instances that never ran) goes to [`elsa_start`]'s own
/// tie rules.
#[inline(always)]
pub fn elsa_start_clamped<const W: usize>(
    q: &Query,
    (horizon, slack, quickest): (f64, f64, f64),
    ids: &[u32; W],
    free: &[f64; W],
    svc: &[f64; W],
) -> Option<u32> {
    const { assert!(W.is_power_of_two() && W <= CLAMPED_WIDTH) };
    let now = q.arrival_ms;
    let fin: [f64; W] = std::array::from_fn(|k| select_f(free[k] > now, free[k], now) + svc[k]);
    let (latest, room) = finish_limits(q, horizon, slack, quickest);
    let (first, first_id) = argmin(&fin, ids);
    // In time: finish ≤ min(latest, first + room), i.e. [`finish_deadline`].
    let cut = first + room;
    let key: [f64; W] = std::array::from_fn(|k| {
        let ok = (fin[k] <= latest) & (fin[k] <= cut);
        select_f(ok, free[k], f64::INFINITY)
    });
    let (best, best_id) = argmin(&key, ids);
    let (x, pick, of) = if best < f64::INFINITY {
        (best, best_id, &key)
    } else {
        // None in time: the earliest finish.
        (first, first_id, &fin)
    };
    if x == f64::INFINITY {
        None
    } else if of.iter().filter(|&&y| y == x).count() == 1 {
        Some(pick)
    } else {
        clamped_ties(q, (horizon, slack, quickest), ids, free, svc)
    }
}

/// [`elsa_start_clamped`] when its minimum is shared: [`elsa_start`]'s passes.
#[cold]
#[inline(never)]
fn clamped_ties<const W: usize>(
    q: &Query,
    (horizon, slack, quickest): (f64, f64, f64),
    ids: &[u32; W],
    free: &[f64; W],
    svc: &[f64; W],
) -> Option<u32> {
    let now = q.arrival_ms;
    let cands = (0..W).map(|k| {
        let c = Candidate {
            instance: ids[k],
            compute: 0,
            start_ms: select_f(free[k] > now, free[k], now),
            free_ms: free[k],
            service_ms: svc[k],
            deficit: 0.0,
            protected: false,
        };
        (ids[k], c)
    });
    let (first, _) = first_and_quickest(cands.clone().map(|(_, c)| c));
    let deadline = finish_deadline(q, horizon, slack, first, quickest);
    start_choice(deadline, cands)
}

/// The least of `W` values (a power of two) and the id beside it, by halving: slot k
/// against slot k + W/2, then k + W/4, ...; which of equal values wins is unspecified.
#[inline(always)]
fn argmin<const W: usize>(v: &[f64; W], id: &[u32; W]) -> (f64, u32) {
    let (mut v, mut id) = (*v, *id);
    let mut h = W / 2;
    while h >= 1 {
        for k in 0..h {
            let take = v[k + h] < v[k];
            v[k] = select_f(take, v[k + h], v[k]);
            id[k] = select_u(take, id[k + h], id[k]);
        }
        h /= 2;
    }
    (v[0], id[0])
}

/// The earliest estimated finish (ties to the candidate met first).
#[inline(always)]
pub fn earliest_finish<I: IntoIterator<Item = Candidate>>(cands: I) -> Option<u32> {
    let mut any = Earliest::NONE;
    for c in cands {
        any.offer(c.finish_ms(), c.instance);
    }
    meet_or(u32::MAX, any)
}

/// `jsq`: the least estimated backlog (time from `now` until the query could start), ties
/// to the earliest finish, then to the candidate met first. One candidate per instance.
#[inline(always)]
pub fn jsq<I: IntoIterator<Item = Candidate>>(now: f64, cands: I) -> Option<u32> {
    let mut best = (f64::INFINITY, f64::INFINITY, u32::MAX);
    for c in cands {
        let back = (c.start_ms - now).max(0.0);
        let fin = c.finish_ms();
        if back < best.0 || (back == best.0 && fin < best.1) {
            best = (back, fin, c.instance);
        }
    }
    (best.2 != u32::MAX).then_some(best.2)
}

/// `round-robin`: the model's instances in turn from `cursor`, skipping those for which
/// `eligible` is false; advances the cursor. `None` if no instance is eligible.
#[inline]
pub fn round_robin(
    cursor: &mut usize,
    instances: &[u32],
    eligible: impl Fn(u32) -> bool,
) -> Option<u32> {
    for _ in 0..instances.len() {
        let c = *cursor % instances.len();
        *cursor = if c + 1 == instances.len() { 0 } else { c + 1 };
        if eligible(instances[c]) {
            return Some(instances[c]);
        }
    }
    None
}

/// `random`: a uniformly random eligible instance, from 32 random bits (in the low half of
/// `bits32`).
#[inline(always)]
pub fn random(bits32: u64, eligible: &[u32]) -> Option<u32> {
    (!eligible.is_empty()).then(|| eligible[crate::rng::below(bits32, eligible.len())])
}
