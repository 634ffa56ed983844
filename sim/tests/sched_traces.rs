//! Every dispatch rule pinned by hand-written traces: arrivals, and the instance each query
//! must go to, worked out by hand in the comments. Each trace is checked three ways: through
//! the public [`Dispatcher`] (what a real server calls), and through `simulate` on both
//! engines (the event-free one, and the event-driven one that `jitter` selects), whose
//! per-instance query counts must match.

mod common;

use common::{a, plan, scenario, table};
use migopt_models::{BatchLookup, Objective, Plan, Route, Scenario};
use migopt_sim::sched::{self, Candidate, Query};
use migopt_sim::{
    simulate, Arrivals, Dispatcher, SchedulerKind, ServingMode, SimConfig, TraceRecord,
};

/// Three instances of model `m`, SLA 10 ms. Plan order: 0 = 1g (batch ≤ 8, 4 ms at batch
/// 1), 1 = 3g (batch ≤ 16, 2 ms), 2 = 7g (batch ≤ 8, 1 ms). Batch 16 runs only on the 3g,
/// which makes the 3g "protected". Routes: batch 1 goes ½ to 1g, ¼ to 3g, ¼ to 7g.
fn server() -> (Plan, Scenario) {
    let sc = scenario(
        &[("m", 10.0, 1.0, table(&[(1, 0.9), (16, 0.1)]))],
        "m,1g.10gb,1,4\nm,3g.40gb,1,2\nm,3g.40gb,16,6\nm,7g.80gb,1,1\n",
        BatchLookup::Exact,
    );
    let mut p = plan(
        Objective::MaxLoad,
        vec![
            vec![a("1g.10gb", 0, "m", 8, 1), a("3g.40gb", 4, "m", 16, 1)],
            vec![a("7g.80gb", 0, "m", 8, 1)],
        ],
    );
    let route = |b: u32, profile: &str, fraction: f64| Route {
        model: "m".into(),
        batch: b,
        profile: profile.into(),
        fraction,
    };
    p.routes = vec![
        route(1, "1g.10gb", 0.5),
        route(1, "3g.40gb", 0.25),
        route(1, "7g.80gb", 0.25),
        route(16, "3g.40gb", 1.0),
    ];
    (p, sc)
}

/// Replays `(arrival ms, batch)` through a [`Dispatcher`] driving a model of the server
/// (one process per instance, FIFO, service = the median), reporting every start and
/// completion as a real server would, and returns the instance of each query.
fn replay(kind: SchedulerKind, arrivals: &[(f64, u32)]) -> Vec<u32> {
    let (p, sc) = server();
    let mut d = Dispatcher::new(&p, &sc, kind, ServingMode::QueryBatches).unwrap();
    let n = d.instances().len();
    let svc = |i: usize, b: u32| match (i, b) {
        (0, 1) => 4.0,
        (1, 1) => 2.0,
        (1, 16) => 6.0,
        (2, 1) => 1.0,
        _ => panic!("instance {i} cannot run batch {b}"),
    };
    let mut queue: Vec<std::collections::VecDeque<u32>> = vec![Default::default(); n];
    let mut busy_until: Vec<Option<f64>> = vec![None; n];
    let mut out = Vec::new();
    for &(t, b) in arrivals {
        // Completions up to t, in time order; each frees its instance for the next query.
        loop {
            let next = (0..n)
                .filter_map(|i| busy_until[i].map(|f| (f, i)))
                .filter(|&(f, _)| f <= t)
                .min_by(|x, y| x.partial_cmp(y).unwrap());
            let Some((f, i)) = next else { break };
            d.finished(i as u32, 0).unwrap();
            busy_until[i] = None;
            if let Some(b) = queue[i].pop_front() {
                d.started(i as u32, 0, f, 1, b).unwrap();
                busy_until[i] = Some(f + svc(i, b));
            }
        }
        let q = d.query("m", b, t).unwrap();
        let i = d.dispatch(&q, t, 0).unwrap();
        out.push(i);
        if busy_until[i as usize].is_none() {
            d.started(i, 0, t, 1, b).unwrap();
            busy_until[i as usize] = Some(t + svc(i as usize, b));
        } else {
            queue[i as usize].push_back(b);
        }
    }
    out
}

/// Per-instance query counts from `simulate` replaying the trace, on the event-free engine
/// (`jitter` off) and on the event-driven one (`jitter` on: these profiles have no p99, so
/// service times stay the medians).
fn simulated_counts(kind: SchedulerKind, arrivals: &[(f64, u32)], jitter: bool) -> Vec<u64> {
    let (p, sc) = server();
    let trace = arrivals
        .iter()
        .map(|&(t, b)| TraceRecord {
            arrival_ms: t,
            model: "m".into(),
            batch: b,
        })
        .collect();
    let mut c = SimConfig::new(Arrivals::Trace(trace));
    c.scheduler = kind;
    c.replications = 1;
    c.warmup_fraction = 0.0;
    c.jitter = jitter;
    let r = simulate(&p, &sc, &c).unwrap();
    r.instances.iter().map(|i| i.queries).collect()
}

fn check(kind: SchedulerKind, arrivals: &[(f64, u32)], want: &[u32]) {
    assert_eq!(replay(kind, arrivals), want, "{kind}: dispatcher");
    let mut counts = vec![0u64; 3];
    for &i in want {
        counts[i as usize] += 1;
    }
    for jitter in [false, true] {
        assert_eq!(
            simulated_counts(kind, arrivals, jitter),
            counts,
            "{kind}: simulate, jitter {jitter}"
        );
    }
}

/// Eight batch-1 queries at once.
const BURST: [(f64, u32); 8] = [(0.0, 1); 8];

#[test]
fn elsa_greedy_fills_the_smallest_size_up_to_the_deadline() {
    // Deadline 10. 1g finishes at 4, 8 (12 misses); the 3g at 2, 4, 6, 8, 10 (12 misses);
    // the last goes to the 7g.
    check(SchedulerKind::ElsaGreedy, &BURST, &[0, 0, 1, 1, 1, 1, 1, 2]);
}

#[test]
fn elsa_margin_plans_to_finish_within_half_the_sla() {
    // Deadline 0 + 0.5·10 = 5: 1g at 4 (8 misses); 3g at 2, 4 (6 misses); 7g at 1..=5.
    check(SchedulerKind::ElsaMargin, &BURST, &[0, 1, 1, 2, 2, 2, 2, 2]);
}

#[test]
fn elsa_protect_keeps_off_the_only_size_of_batch_16() {
    // The 3g is batch 16's only home. Deadline 5: 1g at 4; then the unprotected 7g at
    // 1..=5; then, nothing unprotected meeting 5, the 3g at 2, 4.
    check(
        SchedulerKind::ElsaProtect,
        &BURST,
        &[0, 2, 2, 2, 2, 2, 1, 1],
    );
}

#[test]
fn elsa_plan_follows_the_routes_within_the_latency_slack() {
    // Shares ½, ¼, ¼; deficit = share·(class sent + 1) − sent to the size. A candidate is
    // admissible if it finishes within 0.25·10 − 1 (the quickest service) = 1.5 ms of the
    // earliest finish. Finishes (1g, 3g, 7g) before each, admissible ones, deficits:
    // q0 (4,2,1) 3g,7g tie at .25 → earlier 7g. q1 (4,2,2) 3g .5, 7g −.5 → 3g.
    // q2 (4,4,2) only 7g. q3 (4,4,3) all; 1g 2 → 1g. q4 (8,4,3) 3g .25, 7g −.75 → 3g.
    // q5 (8,6,3) only 7g. q6 (8,6,4) only 7g. q7 (8,6,5) 3g 0, 7g −2 → 3g.
    check(SchedulerKind::ElsaPlan, &BURST, &[2, 1, 2, 0, 1, 2, 2, 1]);
}

#[test]
fn elsa_start_takes_the_earliest_start_in_time() {
    // In time: finish by 0 + 0.5·10 = 5 and within room = 0.4·10 − 1 (the quickest service)
    // = 3 ms of the earliest finish. Starts and finishes (1g, 3g, 7g) before each; among
    // those in time the earliest start, ties to the instance free longest, then the
    // earliest finish. None has run at 0, so they tie on freeing up.
    // q0: starts 0 0 0, finishes 4 2 1 → 7g (earliest finish). q1: starts 0 0 1, finishes
    // 4 2 2, all in time → 3g (start 0, finish 2 < 4). q2: starts 0 2 1 → 1g. q3: 1g would
    // finish at 8 → 7g (start 1). q4: 3g and 7g start at 2 → 7g finishes first (3).
    // q5: 3g starts at 2, 7g at 3 → 3g. q6: 3g would finish at 6 > 5 → 7g (finish 4).
    // q7: 7g (finish 5).
    check(SchedulerKind::ElsaStart, &BURST, &[2, 1, 0, 2, 2, 1, 2, 2]);
}

#[test]
fn elsa_start_waits_for_a_fast_size_rather_than_run_too_slowly() {
    let q = Query {
        model: 0,
        batch: 1,
        arrival_ms: 0.0,
        sla_ms: 10.0,
    };
    let start = |c| sched::elsa_start(&q, sched::START_HORIZON, sched::START_SLACK, c);
    // The idle 1g would finish at 6 > 5: the busy 7g (start 3, finish 4) is the only
    // candidate in time, though it starts later.
    let c = [cand(0, 1, 0.0, 6.0), cand(2, 7, 3.0, 1.0)];
    assert_eq!(start(c), Some(2));
    // Both in time: the earlier start wins over the earlier finish.
    let c = [cand(0, 1, 0.0, 4.0), cand(2, 7, 2.0, 1.0)];
    assert_eq!(start(c), Some(0));
    // Equal starts: the earlier finish.
    let c = [cand(0, 1, 1.0, 4.0), cand(2, 7, 1.0, 1.0)];
    assert_eq!(start(c), Some(2));
}

#[test]
fn elsa_start_sends_idle_work_to_the_instance_idle_longest() {
    // At 3 both instances are idle (they start now); the 1g went idle at 1, the 7g at 2:
    // the 1g, as FIFS's first idle would, though the 7g finishes first.
    let q = Query {
        model: 0,
        batch: 1,
        arrival_ms: 3.0,
        sla_ms: 10.0,
    };
    let mut c = [cand(0, 1, 3.0, 4.0), cand(2, 7, 3.0, 1.0)];
    c[0].free_ms = 1.0;
    c[1].free_ms = 2.0;
    let start = |c| sched::elsa_start(&q, sched::START_HORIZON, sched::START_SLACK, c);
    assert_eq!(start(c), Some(0));
    c[1].free_ms = 0.5;
    assert_eq!(start(c), Some(2));
}

#[test]
fn elsa_start_prefers_the_instance_idle_longest_on_every_path() {
    // q0, q1 at 0 → 7g (finish 1), 3g (finish 2), as in the burst. At 5 all three are idle:
    // the 1g never ran (free since 0), the 7g since 1, the 3g since 2 → q2 to the 1g. q3 →
    // the 7g (idle since 1). q4: the 3g starts at 5, the 7g at 6, both finish at 7 → 3g.
    let arrivals = [(0.0, 1), (0.0, 1), (5.0, 1), (5.0, 1), (5.0, 1)];
    check(SchedulerKind::ElsaStart, &arrivals, &[2, 1, 0, 2, 1]);
}

#[test]
fn elsa_start_gives_the_largest_batches_the_earliest_finish() {
    // SLA 10. A large batch (quickest service 4 ≥ 0.4·10: no room) takes the busy 7g that
    // finishes it at 4.5 over the idle 1g that would finish it at 5, though both are within
    // half the SLA. A small batch (quickest 0.5: room 3.5) starts at once on the idle 1g.
    let q = Query {
        model: 0,
        batch: 64,
        arrival_ms: 0.0,
        sla_ms: 10.0,
    };
    let start = |c| sched::elsa_start(&q, sched::START_HORIZON, sched::START_SLACK, c);
    assert_eq!(start([cand(0, 1, 0.0, 5.0), cand(2, 7, 0.5, 4.0)]), Some(2));
    assert_eq!(start([cand(0, 1, 0.0, 2.0), cand(2, 7, 0.5, 0.5)]), Some(0));
    // The deadline, spelled out: min(arrival + h·SLA, first + max(0, σ·SLA − quickest)).
    assert_eq!(sched::rules::finish_deadline(&q, 0.5, 0.4, 4.5, 4.0), 4.5);
    assert_eq!(sched::rules::finish_deadline(&q, 0.5, 0.4, 1.0, 0.5), 4.5);
    assert_eq!(sched::rules::finish_deadline(&q, 0.5, 0.4, 0.5, 0.5), 4.0);
}

#[test]
fn elsa_plan_without_slack_limit_is_share_first() {
    // With unlimited slack the rule only needs the deadline: the 1g's share wins twice.
    let q = Query {
        model: 0,
        batch: 1,
        arrival_ms: 0.0,
        sla_ms: 10.0,
    };
    let mut c = [cand(0, 1, 0.0, 4.0), cand(2, 7, 0.0, 1.0)];
    c[0].deficit = 0.5;
    c[1].deficit = 0.25;
    assert_eq!(sched::elsa_plan(&q, 1.0, f64::INFINITY, c), Some(0));
    // With the default slack the 1g finishes 3 ms after the 7g, more than 2.5 − 1 allows.
    assert_eq!(sched::elsa_plan(&q, 1.0, sched::PLAN_SLACK, c), Some(2));
}

#[test]
fn jsq_takes_the_least_backlog_then_the_earliest_finish() {
    // Backlogs (1g, 3g, 7g) before each: q0 (0,0,0) → 7g; q1 (0,0,1) → 3g finishes 2 < 4;
    // q2 (0,2,1) → 1g; q3 (4,2,1) → 7g; q4 (4,2,2) → 7g finishes 3 < 4; q5 (4,2,3) → 3g;
    // q6 (4,4,3) → 7g; q7 (4,4,4) → 7g finishes 5.
    check(SchedulerKind::Jsq, &BURST, &[2, 1, 0, 2, 2, 1, 2, 2]);
}

#[test]
fn round_robin_cycles() {
    check(SchedulerKind::RoundRobin, &BURST, &[0, 1, 2, 0, 1, 2, 0, 1]);
}

#[test]
fn elapsed_time_of_running_work_counts() {
    // elsa-greedy. q0 at 0 → 1g (finish 4). q1 at 3: the 1g's running query has run 3 of
    // its 4 ms, so the 1g frees at 4 and q1 finishes at 8 ≤ 13 → 1g. q2 at 5: q1 started at
    // 4, frees at 8, q2 would finish at 12 ≤ 15 → 1g. q3 at 5: the 1g frees at 12 → 16 >
    // 15 → 3g (7). A batch-16 query at 6 can only go to the 3g: it waits for it (7) → 13.
    let arrivals = [(0.0, 1), (3.0, 1), (5.0, 1), (5.0, 1), (6.0, 16)];
    check(SchedulerKind::ElsaGreedy, &arrivals, &[0, 0, 0, 1, 1]);
}

#[test]
fn elsa_runs_its_documented_variant() {
    let rule = SchedulerKind::elsa_rule();
    assert!(SchedulerKind::ELSA_FAMILY.contains(&rule));
    assert_ne!(rule, SchedulerKind::Elsa);
    assert_eq!(replay(SchedulerKind::Elsa, &BURST), replay(rule, &BURST));
}

fn cand(instance: u32, compute: u32, start_ms: f64, service_ms: f64) -> Candidate {
    Candidate {
        instance,
        compute,
        start_ms,
        free_ms: start_ms,
        service_ms,
        deficit: 0.0,
        protected: false,
    }
}

#[test]
fn rules_fall_back_to_the_earliest_finish() {
    let q = Query {
        model: 0,
        batch: 1,
        arrival_ms: 0.0,
        sla_ms: 10.0,
    };
    // Nobody meets the deadline: the earliest finish (instance 7, at 11) wins in every rule.
    let c = [
        cand(3, 1, 10.0, 4.0),
        cand(7, 7, 10.0, 1.0),
        cand(5, 3, 12.0, 2.0),
    ];
    assert_eq!(sched::elsa_greedy(&q, c), Some(7));
    assert_eq!(sched::elsa_margin(&q, 0.5, c), Some(7));
    assert_eq!(sched::elsa_protect(&q, 0.5, c), Some(7));
    assert_eq!(sched::elsa_plan(&q, 1.0, f64::INFINITY, c), Some(7));
    assert_eq!(
        sched::elsa_start(&q, sched::START_HORIZON, sched::START_SLACK, c),
        Some(7)
    );
    assert_eq!(sched::earliest_finish(c), Some(7));
    // No candidates, no answer.
    assert_eq!(sched::elsa_greedy(&q, []), None);
    assert_eq!(sched::jsq(0.0, []), None);
}

#[test]
fn the_plan_rule_prefers_the_largest_deficit_among_those_meeting_the_deadline() {
    let q = Query {
        model: 0,
        batch: 1,
        arrival_ms: 0.0,
        sla_ms: 10.0,
    };
    let mut c = [
        cand(0, 1, 0.0, 4.0),
        cand(1, 3, 0.0, 2.0),
        cand(2, 7, 9.0, 2.0),
    ];
    c[0].deficit = 0.2;
    c[1].deficit = 0.1;
    c[2].deficit = 0.9; // behind its share, but would finish at 11 > 10
    assert_eq!(sched::elsa_plan(&q, 1.0, f64::INFINITY, c), Some(0));
}

#[test]
fn the_dispatcher_refuses_what_it_cannot_place() {
    let (p, sc) = server();
    assert!(Dispatcher::new(&p, &sc, SchedulerKind::Fifs, ServingMode::QueryBatches).is_err());
    let mut d = Dispatcher::new(&p, &sc, SchedulerKind::Elsa, ServingMode::QueryBatches).unwrap();
    assert!(d.query("nope", 1, 0.0).is_err());
    assert!(d.query("m", 99, 0.0).is_err());
    assert!(d.started(9, 0, 0.0, 1, 1).is_err());
    assert!(d.finished(0, 3).is_err());
    let q = d.query("m", 16, 0.0).unwrap();
    assert_eq!(
        d.dispatch(&q, 0.0, 0).unwrap(),
        1,
        "batch 16 runs only on the 3g"
    );
    assert_eq!(d.estimated_start(1, 0.0), Some(6.0), "its queued median");
}
