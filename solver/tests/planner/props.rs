//! Property tests on random small scenarios with synthetic monotone latency curves:
//! the two MILP encodings agree; every plan validates; the MILP is at least as good as
//! every heuristic and never better than its own bounds.

use crate::data::{synthetic, Synth};
use migopt_models::{BatchDist, Demand, LayoutRules, Objective, Plan, Scenario, SolveStatus};
use migopt_solver::{plan, Encoding, PlanOptions, SolverKind};
use proptest::prelude::*;

const BATCHES: [u32; 6] = [1, 2, 4, 8, 16, 32];

/// Latency of the synthetic curve on 7g.80gb (98 SMs), one process.
fn l7(a: f64, c: f64, b: u32) -> f64 {
    a + c * b as f64 / 98.0
}

fn model(min_gpus: bool) -> impl Strategy<Value = Synth> {
    (
        0.5f64..5.0,
        1.0f64..30.0,
        1.05f64..4.0,
        0.1f64..1.0,
        10.0f64..20_000.0,
        prop::collection::vec(0.0f64..1.0, 6),
        1usize..=6,
    )
        .prop_map(move |(a, c, slack, share, rate, probs, top)| {
            let sizes: Vec<u32> = BATCHES[..top].to_vec();
            let mut probs: Vec<f64> = probs[..top].to_vec();
            probs[0] += 0.05;
            if min_gpus {
                Synth {
                    a,
                    c,
                    sla: l7(a, c, 1) / 0.45 * slack,
                    demand: Demand::Rate(rate),
                    batch: BatchDist::default(),
                }
            } else {
                let sla = l7(a, c, *sizes.last().unwrap()) / 0.5 * slack;
                Synth {
                    a,
                    c,
                    sla,
                    demand: Demand::Share(share),
                    batch: BatchDist::Table { sizes, probs },
                }
            }
        })
}

fn scenario(min_gpus: bool) -> impl Strategy<Value = Scenario> {
    (1u32..=3, prop::collection::vec(model(min_gpus), 1..=3))
        .prop_map(|(n, ms)| synthetic("prop", n, &ms))
}

fn opts(objective: Objective, encoding: Encoding) -> PlanOptions {
    PlanOptions {
        objective,
        encoding,
        ..Default::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

fn valid(p: &Plan) {
    p.validate(LayoutRules::default()).unwrap();
    for g in &p.gpus {
        for a in &g.layout {
            assert!(a.batch >= 1 && a.procs >= 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..crate::proptest_config(24) })]

    #[test]
    fn encodings_agree_on_max_load(s in scenario(false)) {
        let a = plan(&s, SolverKind::Milp, &opts(Objective::MaxLoad, Encoding::Layouts));
        let b = plan(&s, SolverKind::Milp, &opts(Objective::MaxLoad, Encoding::Placements));
        // A server that cannot carry every model at all is infeasible in both encodings.
        if let (Err(ea), Err(eb)) = (&a, &b) {
            prop_assert!(matches!(ea, migopt_models::Error::Infeasible(_)), "{}", ea);
            prop_assert_eq!(ea.to_string(), eb.to_string());
            return Ok(());
        }
        let (a, b) = (a.unwrap(), b.unwrap());
        prop_assert_eq!(a.report.status, SolveStatus::Optimal);
        prop_assert_eq!(b.report.status, SolveStatus::Optimal);
        prop_assert!(close(a.report.objective, b.report.objective), "{} vs {}", a.report.objective, b.report.objective);
        valid(&a);
        valid(&b);
    }

    #[test]
    fn encodings_agree_on_min_gpus(s in scenario(true)) {
        let a = plan(&s, SolverKind::Milp, &opts(Objective::MinGpus, Encoding::Layouts)).unwrap();
        let b = plan(&s, SolverKind::Milp, &opts(Objective::MinGpus, Encoding::Placements)).unwrap();
        prop_assert_eq!(a.report.status, SolveStatus::Optimal);
        prop_assert_eq!(b.report.status, SolveStatus::Optimal);
        prop_assert_eq!(a.gpus_used(), b.gpus_used());
        prop_assert_eq!(a.report.gpcs_used, b.report.gpcs_used);
        valid(&a);
        valid(&b);
    }

    #[test]
    fn milp_beats_heuristics_on_max_load(s in scenario(false)) {
        let o = opts(Objective::MaxLoad, Encoding::Layouts);
        let m = match plan(&s, SolverKind::Milp, &o) {
            Ok(m) => m,
            Err(e) => {
                // No plan carries any load: no heuristic may claim one.
                prop_assert!(matches!(e, migopt_models::Error::Infeasible(_)), "{}", e);
                for h in heuristics() {
                    if let Ok(p) = plan(&s, h.clone(), &o) {
                        prop_assert!(p.report.objective <= 1e-9, "{} carries {}", h, p.report.objective);
                    }
                }
                return Ok(());
            }
        };
        valid(&m);
        let lam = m.report.objective;
        prop_assert!(lam <= m.report.bound.unwrap() * (1.0 + 1e-6) + 1e-6);
        prop_assert!(lam <= m.report.lp_bound.unwrap() * (1.0 + 1e-6) + 1e-6);
        let rate: f64 = m.model_rates.iter().map(|r| r.rate_qps).sum();
        prop_assert!(close(rate, lam));
        for h in heuristics() {
            if let Ok(p) = plan(&s, h.clone(), &o) {
                valid(&p);
                prop_assert!(p.report.objective <= lam * (1.0 + 1e-6) + 1e-6, "{} {} > milp {}", h, p.report.objective, lam);
            }
        }
    }

    #[test]
    fn milp_beats_heuristics_on_min_gpus(s in scenario(true)) {
        let o = opts(Objective::MinGpus, Encoding::Layouts);
        let m = plan(&s, SolverKind::Milp, &o).unwrap();
        valid(&m);
        let g = m.gpus_used() as f64;
        prop_assert!(g >= m.report.bound.unwrap());
        prop_assert!(g >= m.report.lp_bound.unwrap() - 1e-6);
        for (spec, r) in s.models.iter().zip(&m.model_rates) {
            let Demand::Rate(t) = spec.demand else { unreachable!() };
            prop_assert!(r.rate_qps >= t * (1.0 - 1e-9));
        }
        for h in heuristics() {
            if let Ok(p) = plan(&s, h.clone(), &o) {
                valid(&p);
                prop_assert!(p.gpus_used() as f64 >= g, "{} uses {} < milp {}", h, p.gpus_used(), g);
                if p.gpus_used() as f64 == g {
                    prop_assert!(p.report.gpcs_used >= m.report.gpcs_used, "{}", h);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..crate::proptest_config(8) })]

    /// Under the pre-R510 rule (no 4g beside 3g) the encodings still agree, and plans obey it.
    #[test]
    fn encodings_agree_under_pre_r510(s in scenario(true), max_load in any::<bool>()) {
        let rules = LayoutRules { all_profiles: false, pre_r510: true };
        let objective = if max_load { Objective::MaxLoad } else { Objective::MinGpus };
        let mut s = s;
        if max_load {
            for m in &mut s.models {
                m.demand = Demand::Share(1.0);
            }
        }
        let a = plan(&s, SolverKind::Milp, &PlanOptions { rules, ..opts(objective, Encoding::Layouts) }).unwrap();
        let b = plan(&s, SolverKind::Milp, &PlanOptions { rules, ..opts(objective, Encoding::Placements) }).unwrap();
        prop_assert!(close(a.report.objective, b.report.objective), "{} vs {}", a.report.objective, b.report.objective);
        prop_assert_eq!(a.report.gpcs_used, b.report.gpcs_used);
        a.validate(rules).unwrap();
        b.validate(rules).unwrap();
        for h in heuristics() {
            if let Ok(p) = plan(&s, h, &PlanOptions { rules, ..opts(objective, Encoding::Layouts) }) {
                p.validate(rules).unwrap();
            }
        }
    }
}

fn heuristics() -> Vec<SolverKind> {
    let mut v = vec![SolverKind::Paris, SolverKind::Parvagpu];
    for p in ["1g", "2g", "3g", "4g", "7g"] {
        v.push(SolverKind::Homogeneous(p.into()));
    }
    v
}
