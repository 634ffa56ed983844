//! The arrival-dispatch engine for query batches (the ELSA family, JSQ, round-robin,
//! random) when service times are the profile's medians, or when the dispatcher is allowed
//! to read the drawn ones (`oracle_estimates`).
//!
//! Each instance is a FIFO queue in front of `procs` identical servers. Because the
//! scheduler picks the instance at arrival and service times are known when the query is
//! dispatched, the query's start is max(now, the instance's earliest free server) and its
//! finish is start + service (the Kiefer–Wolfowitz recursion). Nothing happens between
//! arrivals that the next arrival needs to see, so the engine keeps no event queue at all:
//! one loop iteration per query, no allocation, state in flat arrays. Without jitter the
//! drain times it keeps are exactly what a dispatcher knows (the medians of queued work
//! and the start of running work); the decisions are the functions of [`crate::sched`].

use crate::interference::{Interference, LoadState};
use crate::prep::{Cand, Prepared};
use crate::run::{Arrivals, RepStats, RunSpec};
use crate::sched::rules::CLAMPED_WIDTH;
use crate::sched::{
    rules, Candidate, Query, Rule, MARGIN_ALPHA, PLAN_ALPHA, PLAN_SLACK, START_HORIZON, START_SLACK,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::Rng;
use rand_distr::{Distribution, Exp1};

const GREEDY: u8 = 0;
const MARGIN: u8 = 1;
const PROTECT: u8 = 2;
const PLAN: u8 = 3;
const START: u8 = 4;
const JSQ: u8 = 5;
const RR: u8 = 6;
const RANDOM: u8 = 7;

pub(crate) fn run(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    match spec.scheduler.rule() {
        Rule::Greedy => run_k::<GREEDY>(p, spec, rng),
        Rule::Margin => run_k::<MARGIN>(p, spec, rng),
        Rule::Protect => run_k::<PROTECT>(p, spec, rng),
        Rule::Plan => run_k::<PLAN>(p, spec, rng),
        Rule::Start => run_k::<START>(p, spec, rng),
        Rule::Jsq => run_k::<JSQ>(p, spec, rng),
        Rule::RoundRobin => run_k::<RR>(p, spec, rng),
        Rule::Random => run_k::<RANDOM>(p, spec, rng),
        // FIFS holds queries centrally and is run by the event engine.
        Rule::Fifs => unreachable!("FIFS is event-driven"),
    }
}

/// ELSA's per-group tournament trees, all in two flat arrays: each node holds the drain time
/// and id of the member that drains first in its subtree, so the root answers "which
/// instance of this size frees up first, and when" with one load.
struct Trees {
    key: Vec<f64>,
    id: Vec<u32>,
}

impl Trees {
    fn new(ids: &[u32]) -> Self {
        let key = ids
            .iter()
            .map(|&i| if i == u32::MAX { f64::INFINITY } else { 0.0 })
            .collect();
        Self {
            key,
            id: ids.to_vec(),
        }
    }

    /// Sets a leaf's drain time and replays the matches on its path to the root:
    /// O(log group size).
    #[inline(always)]
    fn update(&mut self, off: usize, cap: usize, leaf: usize, drain: f64) {
        let key = &mut self.key[off..off + 2 * cap];
        let id = &mut self.id[off..off + 2 * cap];
        let mut node = cap + leaf;
        key[node] = drain;
        // The winner's drain time on the path so far stays in a register: each match only
        // reads the sibling, which no earlier match of this update wrote, so the drain times
        // form a short chain of minima (the next query reads the root). Every group's tree
        // has the same depth (see `Prepared`), so the loop runs a fixed number of times, and
        // the winner's id is read at an index computed by arithmetic: no unpredictable branch.
        let mut k = drain;
        while node > 1 {
            let sib = node ^ 1;
            // SAFETY: 2 ≤ node < 2·cap, so sib < 2·cap = key.len() = id.len(), and the
            // parent node / 2 ≥ 1.
            unsafe {
                let sk = *key.get_unchecked(sib);
                // The left child (even index) wins ties, as `key[l + 1] < key[l]` decides.
                let take = (sk < k) | ((node & 1 == 1) & (sk == k));
                let w = node ^ take as usize;
                k = if sk < k { sk } else { k };
                let i = *id.get_unchecked(w);
                node >>= 1;
                *key.get_unchecked_mut(node) = k;
                *id.get_unchecked_mut(node) = i;
            }
        }
    }
}

/// Start times of queries dispatched to an instance but not yet started, oldest first, in
/// a power-of-two ring (starts are non-decreasing per instance, so the ones that have begun
/// are always at the front). Grows by doubling, which happens a handful of times per run.
struct Waiting {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Waiting {
    fn new() -> Self {
        Self {
            buf: vec![0.0; 64],
            head: 0,
            len: 0,
        }
    }

    /// Forgets queries started by `now`, returns how many still wait, and records a query
    /// that starts at `start` if it has to wait.
    #[inline(always)]
    fn arrive(&mut self, now: f64, start: f64) -> u64 {
        let mask = self.buf.len() - 1;
        // Usually zero or one query has started since the last arrival: two branch-free
        // steps cover that, the loop catches the rest.
        for _ in 0..2 {
            let done = (self.len > 0) & (self.buf[self.head] <= now);
            self.head = (self.head + done as usize) & mask;
            self.len -= done as usize;
        }
        // `&`, not `&&`: one well-predicted branch (the slot read is in bounds either way).
        while (self.len > 0) & (self.buf[self.head] <= now) {
            self.head = (self.head + 1) & mask;
            self.len -= 1;
        }
        let waiting = self.len as u64;
        if start > now {
            if self.len == self.buf.len() {
                self.grow();
            }
            let mask = self.buf.len() - 1;
            self.buf[(self.head + self.len) & mask] = start;
            self.len += 1;
        }
        waiting
    }

    #[cold]
    fn grow(&mut self) {
        let n = self.buf.len();
        let mut v = Vec::with_capacity(2 * n);
        v.extend((0..self.len).map(|k| self.buf[(self.head + k) & (n - 1)]));
        v.resize(2 * n, 0.0);
        self.buf = v;
        self.head = 0;
    }
}

/// One (model, batch) row's `elsa-start` candidates in [`rules::elsa_start_clamped`]'s
/// layout: each group's tree root (`tree_off + 1`) and service time; unused slots have an
/// infinite service (and root 0, any valid slot).
struct StartRow {
    root: [u32; CLAMPED_WIDTH],
    svc: [f64; CLAMPED_WIDTH],
}

/// Every row's [`StartRow`] (`None` for a row with more groups than [`CLAMPED_WIDTH`], or
/// none, which [`rules::elsa_start`] decides on), checked against the trees they index.
struct StartRows {
    rows: Vec<Option<StartRow>>,
    /// Every row has at most 4 groups: the decisions take half the width.
    narrow: bool,
    tree_len: usize,
}

impl StartRows {
    /// The rows of `p`, or none unless `used`.
    fn new(p: &Prepared, tree: &Trees, used: bool) -> Self {
        let mut narrow = true;
        let off: &[u32] = if used { &p.cand_off } else { &[] };
        let rows: Vec<_> = off
            .windows(2)
            .map(|w| {
                let cands = &p.cands[w[0] as usize..w[1] as usize];
                narrow &= cands.len() <= 4;
                (1..=CLAMPED_WIDTH).contains(&cands.len()).then(|| {
                    let mut r = StartRow {
                        root: [0; CLAMPED_WIDTH],
                        svc: [f64::INFINITY; CLAMPED_WIDTH],
                    };
                    for (k, c) in cands.iter().enumerate() {
                        r.root[k] = c.tree_off + 1;
                        r.svc[k] = c.svc;
                    }
                    r
                })
            })
            .collect();
        let tree_len = tree.key.len().min(tree.id.len());
        let roots = rows.iter().flatten().flat_map(|r| r.root);
        assert!(roots.into_iter().all(|i| (i as usize) < tree_len));
        Self {
            rows,
            narrow,
            tree_len,
        }
    }

    /// `elsa-start`'s pick for row `row` from the trees' current roots, or `None` when the
    /// row is too wide for the fixed-width path.
    #[inline(always)]
    fn pick(&self, row: usize, tree: &Trees, q: &Query, quickest: f64) -> Option<Option<u32>> {
        let r = self.rows[row].as_ref()?;
        assert_eq!(tree.key.len().min(tree.id.len()), self.tree_len);
        Some(if self.narrow {
            Self::pick_w::<4>(r, tree, q, quickest)
        } else {
            Self::pick_w::<CLAMPED_WIDTH>(r, tree, q, quickest)
        })
    }

    #[inline(always)]
    fn pick_w<const W: usize>(r: &StartRow, tree: &Trees, q: &Query, quickest: f64) -> Option<u32> {
        let (mut ids, mut free, mut svc) = ([0; W], [0.0; W], [0.0; W]);
        for k in 0..W {
            let i = r.root[k] as usize;
            // SAFETY: `new` checked every root against the trees' length, and `pick` that
            // the length is the same.
            unsafe {
                free[k] = *tree.key.get_unchecked(i);
                ids[k] = *tree.id.get_unchecked(i);
            }
            svc[k] = r.svc[k];
        }
        let rule = (START_HORIZON, START_SLACK, quickest);
        rules::elsa_start_clamped(q, rule, &ids, &free, &svc)
    }
}

/// The earliest estimated finish among a class's candidate groups, each starting at `start`.
#[inline(always)]
fn first_finish(cands: &[Cand], start: impl Fn(&Cand) -> f64) -> f64 {
    cands
        .iter()
        .fold(f64::INFINITY, |f, c| f.min(start(c) + c.svc))
}

#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

/// One replication's state, in flat arrays: per server when it frees up, per instance when
/// its earliest server does (its drain time), its ELSA tree leaf and its queue, the rules'
/// counters, and the statistics.
struct Engine<'a> {
    p: &'a Prepared,
    spec: &'a RunSpec<'a>,
    /// When each server frees up, ms.
    srv_free: Vec<f64>,
    /// When each instance's earliest server frees up, ms.
    drain: Vec<f64>,
    tree: Trees,
    /// Round-robin cursors, per model.
    rr: Vec<usize>,
    /// Plan-aware rule: queries of each class sent to each size, and per class.
    sent: Vec<u64>,
    class_sent: Vec<u64>,
    /// Start times of queries dispatched but not yet started, per instance (FIFO, so the
    /// front starts first): their count is the queue length an arrival sees.
    waiting: Vec<Waiting>,
    starts: StartRows,
    load: Option<LoadState>,
    st: RepStats,
    /// Whether the measurement window is open.
    measuring: bool,
}

/// Where and when a query runs: its instance, server, start and service time (ms).
struct Placement {
    inst: usize,
    srv: usize,
    start: f64,
    svc: f64,
}

fn run_k<const K: u8>(p: &Prepared, spec: &RunSpec, rng: &mut Xoshiro256PlusPlus) -> RepStats {
    let mut e = Engine::new(p, spec, K == START);
    let mut arr = Arrivals::new(spec);
    let mut tend = f64::NAN;
    while let Some((t, m, b, measured)) = arr.next(rng) {
        if measured && !e.measuring {
            e.open_window(t);
        }
        tend = t;
        e.arrive::<K>(t, m, b, rng);
    }
    e.close_window(tend, arr.generated())
}

impl<'a> Engine<'a> {
    fn new(p: &'a Prepared, spec: &'a RunSpec<'a>, start_rule: bool) -> Self {
        let tree = Trees::new(&p.tree_init);
        let starts = StartRows::new(p, &tree, start_rule);
        Self {
            p,
            spec,
            srv_free: vec![0.0; p.n_servers],
            drain: vec![0.0; p.insts.len()],
            tree,
            rr: vec![0; p.models.len()],
            sent: vec![0; p.slot_share.len()],
            class_sent: vec![0; p.models.len() * p.width],
            waiting: (0..p.insts.len()).map(|_| Waiting::new()).collect(),
            starts,
            load: p.interf.as_ref().map(|f| f.state()),
            st: RepStats::new(p, true),
            measuring: false,
        }
    }

    /// Opens the measurement window at `t`: work already queued then is done inside it
    /// (each server is busy without a gap until it drains).
    #[cold]
    fn open_window(&mut self, t: f64) {
        self.measuring = true;
        self.st.tw0 = t;
        self.add_queued_work(t, 1.0);
    }

    /// The statistics, the window closed at the last arrival `tend`: work that runs past
    /// it lies outside the window.
    fn close_window(mut self, tend: f64, generated: u64) -> RepStats {
        if self.measuring {
            self.add_queued_work(tend, -1.0);
        }
        self.st.tend = tend;
        self.st.generated = generated;
        self.st
    }

    /// Adds `sign` × the work each server has queued past `t` to its instance's busy time.
    fn add_queued_work(&mut self, t: f64, sign: f64) {
        for (i, inst) in self.p.insts.iter().enumerate() {
            for s in inst.srv..inst.srv + inst.procs {
                self.st.insts[i].busy += sign * (self.srv_free[s as usize] - t).max(0.0);
            }
        }
    }

    /// One query of model `m`, batch `b`, arriving at `t`: picked an instance, dropped if
    /// late and `drop_late`, else queued there, and recorded.
    #[inline(always)]
    fn arrive<const K: u8>(&mut self, t: f64, m: usize, b: usize, rng: &mut Xoshiro256PlusPlus) {
        let sla = self.p.models[m].sla;
        let q = Query {
            model: m as u32,
            batch: b as u32,
            arrival_ms: t,
            sla_ms: sla,
        };
        let inst = if K <= START {
            self.pick_elsa::<K>(&q, m, b)
        } else {
            self.pick_baseline::<K>(t, m, b, rng)
        };
        let inst = inst.unwrap_or(u32::MAX) as usize;
        let k = inst * self.p.width + b;
        let est = self.p.med[k];
        let (start, srv) = self.earliest_server(inst, t);
        if self.spec.drop_late && start + est > t + sla {
            if self.measuring {
                self.st.dropped(m);
            }
            return;
        }
        let svc = self.service(inst, k, b, t, est, rng);
        let at = Placement {
            inst,
            srv,
            start,
            svc,
        };
        let finish = self.dispatch::<K>(&at);
        let qlen = self.waiting[inst].arrive(t, start);
        if self.measuring {
            self.record(&at, m, b, t, finish, qlen);
        }
    }

    /// The ELSA family's pick: one candidate per group of identical instances, its
    /// earliest-draining member (the root of the group's tree).
    #[inline(always)]
    fn pick_elsa<const K: u8>(&mut self, q: &Query, m: usize, b: usize) -> Option<u32> {
        let (p, t) = (self.p, q.arrival_ms);
        let row = m * p.width + b;
        let row_cands = p.candidates(m, b);
        let tree = &self.tree;
        let free = |c: &Cand| tree.key[c.tree_off as usize + 1];
        let start = |c: &Cand| fmax(free(c), t);
        let (sent, class_sent) = (&self.sent, &self.class_sent);
        let cands = row_cands.iter().map(|c| Candidate {
            instance: tree.id[c.tree_off as usize + 1],
            compute: c.compute,
            start_ms: start(c),
            free_ms: free(c),
            service_ms: c.svc,
            deficit: if K == PLAN {
                c.share * (class_sent[row] + 1) as f64 - sent[c.slot as usize] as f64
            } else {
                0.0
            },
            protected: c.protected,
        });
        match K {
            GREEDY => rules::elsa_greedy(q, cands),
            MARGIN => rules::elsa_margin(q, MARGIN_ALPHA, cands),
            PROTECT => rules::elsa_protect(q, MARGIN_ALPHA, cands),
            START => self
                .starts
                .pick(row, tree, q, p.quickest[row])
                .unwrap_or_else(|| rules::elsa_start(q, START_HORIZON, START_SLACK, cands)),
            _ => {
                // `elsa_plan` in two light steps: the earliest finish (the quickest
                // service time is fixed per class), then the choice, by position, so
                // that the chosen group's share slot needs no search.
                let first = first_finish(row_cands, start);
                let deadline =
                    rules::finish_deadline(q, PLAN_ALPHA, PLAN_SLACK, first, p.quickest[row]);
                let k = rules::elsa_plan_within(deadline, cands)?;
                let c = &row_cands[k];
                self.sent[c.slot as usize] += 1;
                self.class_sent[row] += 1;
                Some(self.tree.id[c.tree_off as usize + 1])
            }
        }
    }

    /// The baselines' pick (JSQ, round-robin, random), one candidate per instance.
    #[inline(always)]
    fn pick_baseline<const K: u8>(
        &mut self,
        t: f64,
        m: usize,
        b: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<u32> {
        let (p, w, drain) = (self.p, self.p.width, &self.drain);
        match K {
            JSQ => rules::jsq(
                t,
                p.eligible(m, b).iter().map(|&i| Candidate {
                    instance: i,
                    compute: 0,
                    start_ms: fmax(drain[i as usize], t),
                    free_ms: drain[i as usize],
                    service_ms: p.med[i as usize * w + b],
                    deficit: 0.0,
                    protected: false,
                }),
            ),
            RR => rules::round_robin(&mut self.rr[m], &p.models[m].insts, |i| {
                p.med[i as usize * w + b].is_finite()
            }),
            _ => rules::random(rng.next_u64() >> 32, p.eligible(m, b)),
        }
    }

    /// When a query arriving at `t` can start on instance `inst`, and on which server: the
    /// one that frees up first (the lowest-numbered of those that tie).
    #[inline(always)]
    fn earliest_server(&self, inst: usize, t: f64) -> (f64, usize) {
        let pi = self.p.hot[inst];
        if pi.procs == 1 {
            return (fmax(self.drain[inst], t), pi.srv as usize);
        }
        let srv_free = &self.srv_free;
        let mut best = pi.srv as usize;
        for s in pi.srv as usize + 1..(pi.srv + pi.procs) as usize {
            if srv_free[s] < srv_free[best] {
                best = s;
            }
        }
        (fmax(srv_free[best], t), best)
    }

    /// The service time of batch `b` on instance `inst` (`k` = its table index) dispatched
    /// at `t`: the estimate `est`, or a draw with jitter, slowed by how busy the neighbours
    /// are when the interference model is on.
    #[inline(always)]
    fn service(
        &mut self,
        inst: usize,
        k: usize,
        b: usize,
        t: f64,
        est: f64,
        rng: &mut Xoshiro256PlusPlus,
    ) -> f64 {
        let p = self.p;
        let mut svc = if self.spec.jitter {
            p.jitter.draw(k, Distribution::<f64>::sample(&Exp1, rng))
        } else {
            est
        };
        if let (Some(f), Some(ls)) = (p.interf.as_ref(), self.load.as_mut()) {
            // Slowed by how busy the neighbours are (off, and free, without load data).
            let srv_free = &self.srv_free;
            let left = |j: usize| {
                let h = p.hot[j];
                srv_free[h.srv as usize..(h.srv + h.procs) as usize]
                    .iter()
                    .map(|&f| (f - t).max(0.0))
                    .sum::<f64>()
            };
            svc = (svc - p.occ_extra) * f.factor(ls, inst, b, t, left) + p.occ_extra;
            Interference::add_work(ls, inst, svc);
        }
        svc
    }

    /// Books the query on its server and updates the instance's drain time (and its ELSA
    /// tree); returns its finish time.
    #[inline(always)]
    fn dispatch<const K: u8>(&mut self, at: &Placement) -> f64 {
        let (inst, pi) = (at.inst, self.p.hot[at.inst]);
        let finish = at.start + at.svc;
        self.srv_free[at.srv] = finish;
        self.drain[inst] = if pi.procs == 1 {
            finish
        } else {
            self.srv_free[pi.srv as usize..(pi.srv + pi.procs) as usize]
                .iter()
                .fold(f64::INFINITY, |d, &f| d.min(f))
        };
        if K <= START {
            self.tree.update(
                pi.tree_off as usize,
                pi.cap as usize,
                pi.leaf as usize,
                self.drain[inst],
            );
        }
        finish
    }

    /// Records a measured query of model `m`, batch `b`, that arrived at `t`, saw `qlen`
    /// queries waiting, and finishes at `finish`.
    #[inline(always)]
    fn record(&mut self, at: &Placement, m: usize, b: usize, t: f64, finish: f64, qlen: u64) {
        let sla = self.p.models[m].sla;
        self.st
            .ran_alone((m, b), at.inst, sla, (t, at.start, finish), qlen);
        self.st.insts[at.inst].busy += at.svc;
    }
}

#[cfg(test)]
mod tests {
    use super::Trees;

    /// A tree rebuilt from its leaves, every match replayed (the left child wins ties).
    fn rebuilt(key: &[f64], id: &[u32], cap: usize) -> (Vec<f64>, Vec<u32>) {
        let (mut k, mut i) = (key.to_vec(), id.to_vec());
        for node in (1..cap).rev() {
            let w = 2 * node + (k[2 * node + 1] < k[2 * node]) as usize;
            (k[node], i[node]) = (k[w], i[w]);
        }
        (k, i)
    }

    #[test]
    fn tree_updates_match_a_full_replay() {
        // Two groups of 8 leaves, the second with padding; drain times on a coarse grid so
        // that ties are frequent.
        let cap = 8;
        let mut ids = vec![u32::MAX; 4 * cap];
        for l in 0..cap {
            ids[cap + l] = l as u32;
        }
        for l in 0..5 {
            ids[3 * cap + l] = 100 + l as u32;
        }
        let mut t = Trees::new(&ids);
        for g in [0, 2 * cap] {
            let (k, i) = rebuilt(&t.key[g..g + 2 * cap], &t.id[g..g + 2 * cap], cap);
            t.key[g..g + 2 * cap].copy_from_slice(&k);
            t.id[g..g + 2 * cap].copy_from_slice(&i);
        }
        let mut x = 12345u64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (g, leaf) = if x % 2 == 0 {
                (0, (x >> 8) as usize % cap)
            } else {
                (2 * cap, (x >> 8) as usize % 5)
            };
            let drain = ((x >> 20) % 6) as f64 * 0.5;
            t.update(g, cap, leaf, drain);
            let (k, i) = rebuilt(&t.key[g..g + 2 * cap], &t.id[g..g + 2 * cap], cap);
            assert_eq!(&t.key[g + 1..g + 2 * cap], &k[1..]);
            assert_eq!(&t.id[g + 1..g + 2 * cap], &i[1..]);
        }
    }
}
