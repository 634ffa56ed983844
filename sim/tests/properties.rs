//! Invariants that must hold for any traffic: every measured query ends served or dropped,
//! instances account for every served query, utilisations are fractions, and the thread
//! count never changes the answer.

mod common;

use common::{a, plan, proptest_config};
use migopt_models::{BatchDist, Objective};
use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig, TraceRecord};
use proptest::prelude::*;

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn any_trace_conserves_queries(
        gaps in prop::collection::vec(0.0f64..3.0, 1..200),
        picks in prop::collection::vec((0usize..2, 0usize..4), 200),
        sched in 0usize..5,
        dynamic in any::<bool>(),
        drop_late in any::<bool>(),
        jitter in any::<bool>(),
    ) {
        let sc = common::two_model_scenario(BatchDist::Fixed { size: 1 });
        let p = plan(Objective::MaxLoad, vec![
            vec![a("4g.40gb", 0, "resnet", 8, 1), a("3g.40gb", 4, "bert", 8, 1)],
            vec![a("1g.10gb", 0, "resnet", 8, 2), a("2g.20gb", 2, "bert", 4, 1), a("3g.40gb", 4, "bert", 8, 1)],
        ]);
        // The profiles measure procs = 1 only; the second GPU's 1g instance has 2.
        let mut sc = sc;
        let rows: Vec<_> = sc.profiles.curves.iter()
            .filter(|(k, _)| k.profile.as_str() == "1g.10gb" && k.model.as_str() == "resnet")
            .map(|(k, c)| {
                let mut k = k.clone();
                k.procs = 2;
                (k, c.clone())
            })
            .collect();
        sc.profiles.curves.extend(rows);
        let mut t = 0.0;
        let trace: Vec<TraceRecord> = gaps.iter().zip(&picks).map(|(g, &(m, b))| {
            t += g;
            TraceRecord { arrival_ms: t, model: ["resnet", "bert"][m].into(), batch: [1, 2, 3, 4][b] }
        }).collect();
        let n = trace.len() as u64;
        let mut c = SimConfig::new(Arrivals::Trace(trace));
        c.scheduler = SchedulerKind::ALL[sched];
        c.mode = Some(if dynamic {
            ServingMode::DynamicBatching { max_queue_delay_ms: 1.0 }
        } else {
            ServingMode::QueryBatches
        });
        c.replications = 2;
        c.warmup_fraction = 0.0;
        c.drop_late = drop_late;
        c.jitter = jitter;
        c.threads = Some(1);
        let r = simulate(&p, &sc, &c).unwrap();
        let queries: u64 = r.models.iter().map(|m| m.queries).sum();
        prop_assert_eq!(queries, 2 * n);
        let completed: u64 = r.models.iter().map(|m| m.completed).sum();
        for m in &r.models {
            prop_assert_eq!(m.queries, m.completed + m.dropped);
            if !drop_late {
                prop_assert_eq!(m.dropped, 0);
            }
            if let Some(l) = m.latency_ms {
                prop_assert!(l.p50.mean > 0.0 && l.p50.mean <= l.p99.mean * (1.0 + 1e-9) && l.p99.mean <= l.max.mean * (1.0 + 1e-9));
            }
        }
        prop_assert_eq!(r.instances.iter().map(|i| i.queries).sum::<u64>(), completed);
        for i in &r.instances {
            prop_assert!((0.0..=1.0).contains(&i.utilisation.mean));
            prop_assert!(i.batches <= i.queries);
        }
        for g in &r.gpus {
            prop_assert!((0.0..=1.0).contains(&g.utilisation.mean));
        }
        c.threads = Some(2);
        prop_assert_eq!(format!("{r:?}"), format!("{:?}", simulate(&p, &sc, &c).unwrap()));
    }
}

/// Candidates that can start at max(free, now), from grids coarse enough to tie often.
fn clamped_cands() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec(
        (0u32..40, 1u32..40),
        0..=migopt_sim::sched::rules::CLAMPED_WIDTH,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(f, s)| (f as f64 * 0.5, s as f64 * 0.25))
            .collect()
    })
}

proptest! {
    #![proptest_config(proptest_config(4096))]

    /// The event-free engine's `elsa-start` picks what `elsa_start` picks, on any candidate
    /// set (unused slots: infinite service, any free time).
    #[test]
    fn elsa_start_clamped_picks_as_elsa_start(
        cands in clamped_cands(),
        pad_free in (0u32..40).prop_map(|f| f as f64 * 0.5),
        now in (0u32..40).prop_map(|t| t as f64 * 0.5),
        sla in (1u32..80).prop_map(|s| s as f64 * 0.5),
        limits in prop_oneof![
            Just((migopt_sim::sched::START_HORIZON, migopt_sim::sched::START_SLACK)),
            (0.0f64..1.5, 0.0f64..1.0),
        ],
    ) {
        use migopt_sim::sched::{self, rules, Candidate, Query};
        let q = Query { model: 0, batch: 1, arrival_ms: now, sla_ms: sla };
        let (horizon, slack) = limits;
        let quickest = cands.iter().fold(f64::INFINITY, |s, c| s.min(c.1));
        let full = cands.iter().enumerate().map(|(k, &(free, svc))| Candidate {
            instance: k as u32,
            compute: 1,
            start_ms: if free > now { free } else { now },
            free_ms: free,
            service_ms: svc,
            deficit: 0.0,
            protected: false,
        });
        let want = sched::elsa_start(&q, horizon, slack, full);
        let mut free = [pad_free; rules::CLAMPED_WIDTH];
        let mut svc = [f64::INFINITY; rules::CLAMPED_WIDTH];
        for (k, &(f, s)) in cands.iter().enumerate() {
            free[k] = f;
            svc[k] = s;
        }
        let ids = std::array::from_fn(|k| k as u32);
        let rule = (horizon, slack, quickest);
        let got = rules::elsa_start_clamped(&q, rule, &ids, &free, &svc);
        prop_assert_eq!(got, want);
        if cands.len() <= 4 {
            let narrow = |a: [f64; rules::CLAMPED_WIDTH]| [a[0], a[1], a[2], a[3]];
            let ids4 = [0, 1, 2, 3];
            let got4 = rules::elsa_start_clamped(&q, rule, &ids4, &narrow(free), &narrow(svc));
            prop_assert_eq!(got4, want);
        }
    }
}
