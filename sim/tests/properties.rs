//! Invariants that must hold for any traffic: every measured query ends served or dropped,
//! instances account for every served query, utilisations are fractions, and the thread
//! count never changes the answer.

mod common;

use common::{a, plan};
use migopt_models::{BatchDist, Objective};
use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig, TraceRecord};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

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
