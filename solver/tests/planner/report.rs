//! Gap reports, homogeneous baselines and the shape of max-load plans.

use crate::data::{dataset_dir, parvagpu_scenarios, synthetic, Synth};
use migopt_models::{BatchDist, Demand, LayoutRules, Objective, SolveStatus};
use migopt_solver::{
    evaluate_fixed_instances, gap_report, homogeneous, plan, PlanOptions, SolverKind,
};

fn three_models(gpus: u32, sla_scale: f64) -> migopt_models::Scenario {
    let ln = |median: f64| BatchDist::Lognormal {
        median,
        sigma: 0.8,
        max: 32,
    };
    synthetic(
        "three",
        gpus,
        &[
            Synth {
                a: 1.0,
                c: 8.0,
                sla: 20.0 * sla_scale,
                demand: Demand::Share(0.5),
                batch: ln(4.0),
            },
            Synth {
                a: 2.5,
                c: 20.0,
                sla: 40.0 * sla_scale,
                demand: Demand::Share(0.3),
                batch: ln(8.0),
            },
            Synth {
                a: 0.6,
                c: 3.0,
                sla: 10.0 * sla_scale,
                demand: Demand::Share(0.2),
                batch: ln(2.0),
            },
        ],
    )
}

#[test]
fn max_load_gap_report() {
    let s = three_models(4, 1.0);
    let rows = gap_report(&s, &PlanOptions::default()).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.solver.as_str()).collect();
    assert_eq!(
        names,
        [
            "milp",
            "paris",
            "parvagpu",
            "homogeneous-1g",
            "homogeneous-2g",
            "homogeneous-3g",
            "homogeneous-4g",
            "homogeneous-7g"
        ]
    );
    assert_eq!(rows[0].gap_pct, Some(0.0));
    assert_eq!(rows[0].status, SolveStatus::Optimal);
    for r in &rows {
        eprintln!(
            "{:16} {:>10.1} gap {:>6.2}% {} GPUs {} GPCs {:?} {}",
            r.solver,
            r.objective.unwrap_or(f64::NAN),
            r.gap_pct.unwrap_or(f64::NAN),
            r.gpus_used,
            r.gpcs_used,
            r.status,
            r.note.clone().unwrap_or_default()
        );
        if let Some(g) = r.gap_pct {
            assert!(g >= -1e-6, "{} beats the MILP by {g}%", r.solver);
        }
    }
}

#[test]
fn max_load_plan_shape() {
    let s = three_models(2, 1.0);
    let p = plan(&s, SolverKind::Milp, &PlanOptions::default()).unwrap();
    assert_eq!(p.gpus.len(), 2);
    assert_eq!(p.solver, "milp");
    p.validate(LayoutRules::default()).unwrap();
    // Fractions of each class sum to 1; batches of instances are routed batches.
    for m in &s.models {
        for (b, _) in m.batch.pmf() {
            let f: f64 = p
                .routes
                .iter()
                .filter(|r| r.model == m.name && r.batch == b)
                .map(|r| r.fraction)
                .sum();
            assert!((f - 1.0).abs() < 1e-6, "{} batch {b}: {f}", m.name);
        }
    }
    for (_, a) in p.instances() {
        let routed: Vec<u32> = p
            .routes
            .iter()
            .filter(|r| r.model == a.model && r.profile == a.profile)
            .map(|r| r.batch)
            .collect();
        if let Some(&max) = routed.iter().max() {
            assert_eq!(a.batch, max);
        }
        assert_eq!(a.procs, 1);
    }
    // The shared yardstick gives the MILP's plan (spare instances included) at least its λ.
    let e = evaluate_fixed_instances(&s, &p.gpus, &PlanOptions::default()).unwrap();
    assert!(
        e.lambda >= p.report.objective * (1.0 - 1e-6),
        "{} < {}",
        e.lambda,
        p.report.objective
    );
    let total: f64 = p.model_rates.iter().map(|r| r.rate_qps).sum();
    assert!((total - p.report.objective).abs() < 1e-6 * total.max(1.0));
}

#[test]
fn homogeneous_cuts() {
    let s = three_models(2, 4.0);
    let o = PlanOptions::default();
    let p = homogeneous(&s, "3g", &o).unwrap();
    assert_eq!(p.solver, "homogeneous-3g");
    assert_eq!(p.gpus.len(), 2);
    for g in &p.gpus {
        let starts: Vec<u32> = g.layout.iter().map(|a| a.start).collect();
        assert_eq!(starts, [0, 4]);
        assert!(g.layout.iter().all(|a| a.profile.as_str() == "3g.40gb"));
    }
    let p = homogeneous(&s, "1g.10gb", &o).unwrap();
    assert_eq!(p.instances().count(), 14);
    // Work-proportional: the heavy model gets the most instances.
    let of = |m: &str| p.instances().filter(|(_, a)| a.model.as_str() == m).count();
    assert!(of("m1") > of("m2"), "{} vs {}", of("m1"), of("m2"));
    let p = homogeneous(&s, "2g", &o).unwrap();
    assert_eq!(p.instances().count(), 6);
}

#[test]
fn min_gpus_gap_report_on_parvagpu_scenario() {
    let dir = dataset_dir();
    let s = &parvagpu_scenarios(&dir)[4];
    let o = PlanOptions {
        objective: Objective::MinGpus,
        ..Default::default()
    };
    let rows = gap_report(s, &o).unwrap();
    for r in &rows {
        eprintln!(
            "{:16} {:>6} gap {:>6.2}% {} GPCs {:?} {}",
            r.solver,
            r.objective.unwrap_or(f64::NAN),
            r.gap_pct.unwrap_or(f64::NAN),
            r.gpcs_used,
            r.status,
            r.note.clone().unwrap_or_default()
        );
    }
    assert_eq!(rows[0].objective, Some(12.0));
    let parva = rows.iter().find(|r| r.solver == "parvagpu").unwrap();
    assert_eq!(parva.objective, Some(14.0));
    assert!((parva.gap_pct.unwrap() - 100.0 * 2.0 / 12.0).abs() < 1e-9);
}

#[test]
fn node_limit_repeats_exactly_and_still_plans() {
    let dir = dataset_dir();
    let s = &parvagpu_scenarios(&dir)[5];
    let o = PlanOptions {
        objective: Objective::MinGpus,
        node_limit: Some(1),
        ..Default::default()
    };
    let a = plan(s, SolverKind::Milp, &o).unwrap();
    let b = plan(s, SolverKind::Milp, &o).unwrap();
    assert_eq!(a.gpus, b.gpus);
    assert_eq!(a.report.objective, b.report.objective);
    assert!(matches!(
        a.report.status,
        SolveStatus::TimeLimit | SolveStatus::Optimal | SolveStatus::GapLimit
    ));
    // Whatever the limit, the plan is valid, covers the rates and respects its bound.
    a.validate(LayoutRules::default()).unwrap();
    assert!(a.report.objective >= a.report.bound.unwrap());
    for (m, r) in s.models.iter().zip(&a.model_rates) {
        let Demand::Rate(t) = m.demand else {
            unreachable!()
        };
        assert!(r.rate_qps >= t - 1e-6);
    }
}

/// HiGHS runs on one thread in every solve, so plans can be solved side by side on several OS
/// threads (as rayon does), and each is the plan solved alone.
#[test]
fn plans_solved_side_by_side_are_the_plan_solved_alone() {
    let s = three_models(2, 1.0);
    let alone = plan(&s, SolverKind::Milp, &PlanOptions::default()).unwrap();
    let side_by_side: Vec<_> = std::thread::scope(|sc| {
        let runs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| plan(&s, SolverKind::Milp, &PlanOptions::default()).unwrap()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for p in side_by_side {
        assert_eq!(p.gpus, alone.gpus);
        assert_eq!(p.report.objective, alone.report.objective);
    }
}
