//! Replications run in parallel, each on a random stream fixed by (seed, replication), so
//! the report must not depend on the thread count.

mod common;

use migopt_models::{BatchDist, Objective};
use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig};

fn report(threads: usize, sched: SchedulerKind, mode: Option<ServingMode>, seed: u64) -> String {
    let p = common::eight_gpu_plan(Objective::MaxLoad, 16);
    let sc = common::two_model_scenario(BatchDist::Lognormal {
        median: 2.0,
        sigma: 0.8,
        max: 16,
    });
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 3000.0,
    });
    c.scheduler = sched;
    c.mode = mode;
    c.queries = Some(20_000);
    c.replications = 5;
    c.threads = Some(threads);
    c.seed = seed;
    c.jitter = true;
    c.drop_late = true;
    // Debug formatting prints every float exactly (shortest round-trip form).
    format!("{:?}", simulate(&p, &sc, &c).unwrap())
}

#[test]
fn reports_are_bit_identical_on_one_and_two_threads() {
    let dynamic = Some(ServingMode::DynamicBatching {
        max_queue_delay_ms: 2.0,
    });
    for (sched, mode) in [
        (SchedulerKind::Elsa, None),
        (SchedulerKind::Random, None),
        (SchedulerKind::Fifs, None),
        (SchedulerKind::Jsq, dynamic),
        (SchedulerKind::Fifs, dynamic),
    ] {
        let one = report(1, sched, mode, 42);
        assert_eq!(one, report(2, sched, mode, 42), "{sched} {mode:?}");
        assert_ne!(
            one,
            report(1, sched, mode, 43),
            "{sched} {mode:?}: the seed must matter"
        );
    }
}

#[test]
fn intervals_come_from_replications() {
    let p = common::eight_gpu_plan(Objective::MaxLoad, 16);
    let sc = common::two_model_scenario(BatchDist::Fixed { size: 4 });
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: 3000.0,
    });
    c.queries = Some(20_000);
    c.replications = 1;
    let one = simulate(&p, &sc, &c).unwrap();
    assert_eq!(one.models[0].latency_ms.unwrap().p99.ci_low, None);
    c.replications = 6;
    let six = simulate(&p, &sc, &c).unwrap();
    let p99 = six.models[0].latency_ms.unwrap().p99;
    assert_eq!(p99.n, 6);
    assert!(p99.ci_low.unwrap() <= p99.mean && p99.mean <= p99.ci_high.unwrap());
    assert!(p99.half_width().unwrap() > 0.0);
}
