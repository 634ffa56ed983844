//! The engines against queueing theory: a single server with Poisson arrivals must show the
//! M/D/1 and M/M/1 waiting times that Pollaczek–Khinchine predicts.

mod common;

use migopt_sim::{simulate, Arrivals, SchedulerKind, ServingMode, SimConfig};

const S: f64 = 1.0;

fn cfg(rho: f64, queries: u64, reps: u32, sched: SchedulerKind, exponential: bool) -> SimConfig {
    let mut c = SimConfig::new(Arrivals::Poisson {
        total_rate_qps: rho / S * 1000.0,
    });
    c.scheduler = sched;
    c.queries = Some(queries);
    c.replications = reps;
    c.warmup_fraction = 0.02;
    c.seed = 11;
    c.jitter = exponential;
    c
}

fn mean_wait(
    rho: f64,
    queries: u64,
    reps: u32,
    sched: SchedulerKind,
    exponential: bool,
) -> (f64, migopt_sim::SimReport) {
    let (p, sc) = common::single_server(S, exponential);
    let r = simulate(&p, &sc, &cfg(rho, queries, reps, sched, exponential)).unwrap();
    (r.models[0].wait_ms_mean.unwrap().mean, r)
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    let rel = (got / want - 1.0).abs();
    eprintln!(
        "{what}: {got:.5} vs {want:.5} ({:+.3}%)",
        (got / want - 1.0) * 100.0
    );
    assert!(
        rel <= tol,
        "{what}: simulated {got:.5}, theory {want:.5}, off by {:.2}%",
        rel * 100.0
    );
}

/// Queries per replication × replications for each load: ρ = 0.9 relaxes slowly (its
/// waiting times are correlated over ~1/(1−√ρ)² ≈ 400 services), so it gets the most.
fn budget(rho: f64) -> (u64, u32) {
    if rho < 0.5 {
        (400_000, 4)
    } else if rho < 0.8 {
        (1_000_000, 4)
    } else {
        (6_000_000, 4)
    }
}

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine() {
    for rho in [0.3, 0.6, 0.9] {
        let (n, reps) = budget(rho);
        let want = rho * S / (2.0 * (1.0 - rho));
        let (got, r) = mean_wait(rho, n, reps, SchedulerKind::Elsa, false);
        close(got, want, 0.02, &format!("M/D/1 ρ={rho}"));
        // The only instance is busy a fraction ρ of the time.
        close(
            r.instances[0].utilisation.mean,
            rho,
            0.01,
            &format!("M/D/1 ρ={rho} utilisation"),
        );
    }
}

#[test]
fn md1_through_the_event_engine() {
    // FIFS with one instance is the same queue, run by the event-driven engine.
    let rho = 0.6;
    let (n, reps) = budget(rho);
    let (got, _) = mean_wait(rho, n, reps, SchedulerKind::Fifs, false);
    close(
        got,
        rho * S / (2.0 * (1.0 - rho)),
        0.02,
        "M/D/1 (FIFS engine)",
    );
}

#[test]
fn md1_through_dynamic_batching_of_one() {
    // Dynamic batching with batch 1 and no delay degenerates to the same single server.
    let rho = 0.6;
    let (p, sc) = common::single_server(S, false);
    let mut c = cfg(rho, 1_000_000, 4, SchedulerKind::Jsq, false);
    c.mode = Some(ServingMode::DynamicBatching {
        max_queue_delay_ms: 0.0,
    });
    let r = simulate(&p, &sc, &c).unwrap();
    close(
        r.models[0].wait_ms_mean.unwrap().mean,
        rho * S / (2.0 * (1.0 - rho)),
        0.02,
        "M/D/1 (dynamic)",
    );
}

#[test]
fn mm1_mean_wait_and_p99_sojourn_match_theory() {
    for rho in [0.3, 0.6, 0.9] {
        let (n, reps) = budget(rho);
        let (got, r) = mean_wait(rho, n, reps, SchedulerKind::Elsa, true);
        close(
            got,
            rho * S / (1.0 - rho),
            0.02,
            &format!("M/M/1 ρ={rho} mean wait"),
        );
        let p99 = r.models[0].latency_ms.unwrap().p99.mean;
        close(
            p99,
            -(0.01f64.ln()) * S / (1.0 - rho),
            0.02,
            &format!("M/M/1 ρ={rho} p99 sojourn"),
        );
    }
}
