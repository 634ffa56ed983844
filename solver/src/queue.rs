//! Queueing model of one pool: the n instances of one size serving one model, fed by
//! Poisson arrivals of a mix of query batches.
//!
//! In query-batch mode, ELSA (and JSQ) send a query to the member of an instance group that
//! drains first, which is first-come-first-served with n servers: an M/G/n queue whose
//! service time is the latency L(k, b) of the query's batch. A query of batch b meets its
//! SLA when its wait W satisfies W ≤ SLA − L(k, b). The pool's miss probability is
//!
//! ```text
//!   miss(λ) = Σ_b w_b · P(W > SLA − L(k,b))        (w_b: the batch mix of the pool)
//!   P(W > t) ≈ κ · C(n, a) · K · exp(−θ t)         (t ≥ 0; 1 for t < 0)
//! ```
//!
//! with a = λ·E[S] the offered load, C(n, a) Erlang's C formula (the probability of
//! waiting), and θ the decay rate of the waiting-time tail, the positive root of
//!
//! ```text
//!   λ · (E[exp(θ·S/n)] − 1) = θ
//! ```
//!
//! This is the Cramér–Lundberg equation of the M/G/1 queue whose server works n times
//! faster; for deterministic service (M/D/n) its root is exactly the geometric decay rate of
//! Crommelin's solution (z^n = e^{λD(z−1)}, θ = n·ln z / D), and for a mix of service times
//! it weights each by its moment generating function, so long batches shorten the tail's
//! scale as they should. K = (1 − ρ) / (ρ·(λ·E[(S/n)·e^{θS/n}] − 1)) is the Cramér–Lundberg
//! constant of that M/G/1 over its waiting probability ρ: exact for one server (where
//! C(1, a) = ρ), it carries the shape of the service mix (below 1 for deterministic service,
//! above 1 for very mixed batches) into the n-server pool. κ is calibrated against the
//! simulator (see [`KAPPA`]).
//!
//! The admissible rate α(n) of a pool is the largest λ with miss(λ) ≤ δ; it grows faster
//! than linearly in n (pooling), which is what lets ten pooled instances run hotter than one.

/// Calibration factor of the tail prefactor, checked against migopt-sim (ELSA, query
/// batches): with κ = 1 the predicted p99 capacity of the SLA planner's plans is within the
/// simulation's interval on the shipped scenario and the paper workloads (BENCHMARKS.md,
/// papers/paris-elsa), and a property test (migopt-verify) checks that pools at their
/// admissible rate meet the SLA in simulation.
pub const KAPPA: f64 = 1.0;

/// One class of a pool's mix: its share of the pool's queries and its service time (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Class {
    /// Fraction of the pool's queries (the mix sums to 1).
    pub weight: f64,
    /// Service time, ms.
    pub service_ms: f64,
}

/// A pool's batch mix and its SLA.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Classes with positive weight, weights summing to 1.
    pub classes: Vec<Class>,
    /// The latency limit, ms.
    pub sla_ms: f64,
    /// Mean service time, ms.
    pub mean_ms: f64,
    /// Squared coefficient of variation of the interarrival times (1: Poisson).
    pub arrival_scv: f64,
}

impl Pool {
    /// A pool from (weight, service ms) pairs; weights are normalised. `None` if the mix
    /// is empty or has no positive weight.
    pub fn new(mix: impl IntoIterator<Item = (f64, f64)>, sla_ms: f64) -> Option<Self> {
        let raw: Vec<(f64, f64)> = mix.into_iter().filter(|c| c.0 > 0.0).collect();
        let total: f64 = raw.iter().map(|c| c.0).sum();
        if total <= 0.0 || raw.is_empty() {
            return None;
        }
        let classes: Vec<Class> = raw
            .iter()
            .map(|&(w, s)| Class {
                weight: w / total,
                service_ms: s,
            })
            .collect();
        let mean_ms = classes.iter().map(|c| c.weight * c.service_ms).sum();
        Some(Self {
            classes,
            sla_ms,
            mean_ms,
            arrival_scv: 1.0,
        })
    }

    /// The same pool fed by a renewal process with this interarrival SCV instead of Poisson
    /// (batches of B Poisson requests: 1/B). The tail's decay rate is scaled by Kingman's
    /// heavy-traffic ratio (1 + c_s²)/(c_a² + c_s²).
    pub fn with_arrival_scv(mut self, scv: f64) -> Self {
        self.arrival_scv = scv.max(1e-6);
        self
    }

    /// Squared coefficient of variation of the service time.
    fn service_scv(&self) -> f64 {
        let m2: f64 = self
            .classes
            .iter()
            .map(|c| c.weight * c.service_ms * c.service_ms)
            .sum();
        (m2 / (self.mean_ms * self.mean_ms) - 1.0).max(0.0)
    }

    /// Share of the pool's queries that miss the SLA whatever the load (L > SLA).
    pub fn hopeless(&self) -> f64 {
        self.classes
            .iter()
            .filter(|c| c.service_ms > self.sla_ms)
            .map(|c| c.weight)
            .sum()
    }

    /// The waiting-time tail of the pool with `n` instances at `rate` queries per second
    /// (saturated: every query waits without bound).
    pub fn tail(&self, n: u32, rate_qps: f64) -> Tail {
        let lam = rate_qps / 1000.0; // per ms
        if lam <= 0.0 {
            return Tail::NONE;
        }
        let c = n as f64;
        let a = lam * self.mean_ms;
        if n == 0 || a >= c {
            return Tail::SATURATED;
        }
        let (theta0, slope) = decay_rate(&self.classes, lam, c, self.mean_ms);
        let rho = a / c;
        // Cramér–Lundberg's constant of the scaled M/G/1 over its P(wait) = ρ: exact for one
        // server, it carries the shape of the service mix into Erlang's C for n servers.
        let shape = if slope > 0.0 {
            (1.0 - rho) / slope / rho
        } else {
            1.0
        };
        let cs2 = self.service_scv();
        Tail {
            wait: (KAPPA * erlang_c(n, a) * shape).min(1.0),
            decay: theta0 * (1.0 + cs2) / (self.arrival_scv + cs2),
        }
    }

    /// Probability that a query misses the SLA with `n` instances at `rate` queries per
    /// second (1 when the pool is saturated).
    pub fn miss(&self, n: u32, rate_qps: f64) -> f64 {
        if n == 0 {
            return if rate_qps > 0.0 { 1.0 } else { 0.0 };
        }
        let tail = self.tail(n, rate_qps);
        self.classes
            .iter()
            .map(|cl| cl.weight * tail.over(self.sla_ms - cl.service_ms))
            .sum()
    }

    /// The largest rate (queries/s) at which `n` instances keep the miss probability within
    /// `budget`; 0 if even an idle pool misses more (its hopeless share exceeds the budget).
    pub fn admissible(&self, n: u32, budget: f64) -> f64 {
        if n == 0 || self.hopeless() > budget {
            return 0.0;
        }
        let sat = n as f64 * 1000.0 / self.mean_ms;
        largest(sat, 1e-5, |r| self.miss(n, r) <= budget)
    }
}

/// A pool's waiting-time tail, P(W > t) ≈ min(1, wait·e^{−decay·t}) for t ≥ 0 (and 1 for
/// t < 0: a query whose service alone overruns its limit misses it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tail {
    /// The prefactor: κ·C(n, a)·K, the probability of waiting at all (shaped).
    pub wait: f64,
    /// The decay rate θ, per ms.
    pub decay: f64,
}

impl Tail {
    /// No traffic: nobody waits.
    pub const NONE: Self = Self {
        wait: 0.0,
        decay: 0.0,
    };
    /// Saturated: every query waits without bound.
    pub const SATURATED: Self = Self {
        wait: 1.0,
        decay: 0.0,
    };

    /// P(W > t), t in ms.
    pub fn over(&self, t: f64) -> f64 {
        if t < 0.0 {
            1.0
        } else {
            (self.wait * (-self.decay * t).exp()).min(1.0)
        }
    }
}

/// The largest x in [0, hi] with `ok(x)`, by bisection (`ok` monotone, true at 0): at most
/// 60 halvings, stopping once the bracket is within `rel_tol` of its top.
pub(crate) fn largest(hi: f64, rel_tol: f64, ok: impl Fn(f64) -> bool) -> f64 {
    let (mut lo, mut hi) = (0.0, hi);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= rel_tol * hi {
            break;
        }
    }
    lo
}

/// Erlang's C formula: the probability that an arrival waits in M/M/n at offered load a
/// (a < n), through the stable Erlang B recursion.
pub fn erlang_c(n: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=n {
        b = a * b / (k as f64 + a * b);
    }
    let rho = a / n as f64;
    (b / (1.0 - rho * (1.0 - b))).clamp(0.0, 1.0)
}

/// The positive root θ (per ms) of λ·(E[e^{θS/c}] − 1) = θ, for ρ = λE[S]/c < 1, and the
/// slope of the left side minus θ there, λ·E[(S/c)·e^{θS/c}] − 1.
fn decay_rate(classes: &[Class], lam: f64, c: f64, mean: f64) -> (f64, f64) {
    let g = |t: f64| -> (f64, f64) {
        let mut m = 0.0;
        let mut dm = 0.0;
        for cl in classes {
            let s = cl.service_ms / c;
            let e = (t * s).exp();
            m += cl.weight * e;
            dm += cl.weight * s * e;
        }
        (lam * (m - 1.0) - t, lam * dm - 1.0)
    };
    let rho = lam * mean / c;
    let smax = classes.iter().map(|c| c.service_ms).fold(0.0, f64::max) / c;
    // Start right of the root (g convex, g(0) = 0, g'(0) < 0): Newton then falls monotonically.
    let mut t = (2.0 * (1.0 - rho) / (mean / c)).max(1e-9);
    for _ in 0..200 {
        if g(t).0 > 0.0 || t * smax > 600.0 {
            break;
        }
        t *= 2.0;
    }
    for _ in 0..100 {
        let (v, d) = g(t);
        if d <= 0.0 {
            break;
        }
        let next = t - v / d;
        if next.is_nan() || next <= 0.0 || (t - next).abs() <= 1e-12 * t {
            t = next.max(t * 0.5);
            break;
        }
        t = next;
    }
    (t, g(t).1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn erlang_c_matches_tables() {
        // M/M/1: P(wait) = ρ; M/M/2 at a = 1: 1/3.
        assert_relative_eq!(erlang_c(1, 0.7), 0.7, epsilon = 1e-12);
        assert_relative_eq!(erlang_c(2, 1.0), 1.0 / 3.0, epsilon = 1e-12);
    }

    #[test]
    fn decay_rate_is_crommelins_for_deterministic_service() {
        // M/D/1 at ρ = 0.8, D = 1 ms: 0.8·(e^θ − 1) = θ, θ ≈ 0.43.
        let cl = [Class {
            weight: 1.0,
            service_ms: 1.0,
        }];
        let (t, _) = decay_rate(&cl, 0.8, 1.0, 1.0);
        assert_relative_eq!(0.8 * (t.exp() - 1.0), t, epsilon = 1e-9);
        assert!(t > 0.4 && t < 0.45, "{t}");
        // M/D/4 at λ = 3.2/ms: z^4 = e^{3.2(z−1)}, θ = 4 ln z.
        let (t, _) = decay_rate(&cl, 3.2, 4.0, 1.0);
        let z = (t / 4.0).exp();
        assert_relative_eq!(z.powi(4), (3.2 * (z - 1.0)).exp(), epsilon = 1e-7);
    }

    #[test]
    fn pooling_raises_admissible_load_per_instance() {
        let p = Pool::new([(0.9, 2.0), (0.1, 8.0)], 20.0).unwrap();
        let per = |n: u32| p.admissible(n, 0.01) / n as f64;
        assert!(per(1) < per(4) && per(4) < per(16));
        assert!(per(16) < 1000.0 / p.mean_ms);
        // Misses grow with load and the admissible rate sits on the budget.
        let a = p.admissible(4, 0.01);
        assert!((p.miss(4, a) - 0.01).abs() < 1e-4);
        assert!(p.miss(4, 0.5 * a) < p.miss(4, a));
    }

    #[test]
    fn hopeless_classes_use_the_budget() {
        let p = Pool::new([(0.995, 2.0), (0.005, 30.0)], 20.0).unwrap();
        assert_relative_eq!(p.hopeless(), 0.005, epsilon = 1e-12);
        assert_eq!(p.admissible(4, 0.004), 0.0);
        assert!(p.admissible(4, 0.01) > 0.0);
    }
}
