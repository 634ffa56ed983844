//! Statistics without allocation on the hot path: fixed log-bucketed histograms filled per
//! query, exact sums for means, and Student-t intervals across replications.

use migopt_models::report::{Estimate, LatencySummary, QueueSummary};

/// Mantissa bits kept per histogram bucket: 2⁸ = 256 buckets per power of two, so a bucket
/// spans a relative width of 1/256 ≈ 0.39% and its midpoint is within ±0.2% of any value in
/// it.
const SUB_BITS: u32 = 8;
/// Smallest resolved value: 2⁻¹⁶ ms (15 ns). Anything smaller lands in bucket 0.
const MIN_EXP: i64 = -16;
/// Largest resolved value: 2⁴⁰ ms (35 years), above every latency a run within the limits
/// can have (an SLA up to 10⁹ ms, a replication up to 10⁹ simulated seconds). Anything
/// larger lands in the last bucket.
const MAX_EXP: i64 = 40;
const LOG_BUCKETS: usize = ((MAX_EXP - MIN_EXP) as usize) << SUB_BITS;
const KEY_SHIFT: u32 = 52 - SUB_BITS;
const KEY_LOW: u64 = ((1023 + MIN_EXP) as u64) << SUB_BITS;

/// Relative width of a latency bucket, reported so readers know the percentile precision.
pub(crate) const RESOLUTION: f64 = 1.0 / (1u64 << SUB_BITS) as f64;

/// Makes `counts` long enough to hold bucket `idx`. Histograms hold the buckets up to the
/// highest one recorded, not all of them: one is kept per model and per instance (a plan of
/// 700,000 instances), and most queue lengths and latencies fill a few low buckets.
#[inline(always)]
fn grow_to(counts: &mut Vec<u64>, idx: usize) {
    if idx >= counts.len() {
        counts.resize(idx + 1, 0);
    }
}

/// Histogram of positive latencies with log-spaced buckets. The bucket of a value is read
/// straight off its IEEE-754 bits (exponent and top mantissa bits), so recording is a shift,
/// a subtraction and an increment.
#[derive(Debug, Clone)]
pub(crate) struct LogHist {
    counts: Vec<u64>,
    max: f64,
}

impl LogHist {
    pub(crate) fn new() -> Self {
        Self {
            counts: Vec::new(),
            max: 0.0,
        }
    }

    #[inline(always)]
    pub(crate) fn record(&mut self, v: f64) {
        let key = v.to_bits() >> KEY_SHIFT;
        let idx = (key.saturating_sub(KEY_LOW) as usize).min(LOG_BUCKETS - 1);
        grow_to(&mut self.counts, idx);
        self.counts[idx] += 1;
        if v > self.max {
            self.max = v;
        }
    }

    /// Values recorded (a sum over buckets: recording stays one increment).
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub(crate) fn max(&self) -> f64 {
        self.max
    }

    fn bucket_mid(idx: usize) -> f64 {
        if idx == 0 {
            return f64::from_bits(KEY_LOW << KEY_SHIFT) / 2.0;
        }
        let lo = f64::from_bits((idx as u64 + KEY_LOW) << KEY_SHIFT);
        let hi = f64::from_bits((idx as u64 + 1 + KEY_LOW) << KEY_SHIFT);
        (lo + hi) / 2.0
    }

    /// The value of the query at nearest rank ⌈q·total⌉ among `total` queries, where the
    /// `total − n` queries not in the histogram (dropped ones) rank above every recorded
    /// value. Infinite when the rank falls among those; `None` when there is nothing at all.
    pub(crate) fn quantile_of(&self, q: f64, total: u64) -> Option<f64> {
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        if rank > self.count() {
            return Some(f64::INFINITY);
        }
        let mut cum = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            cum += c;
            if cum >= rank {
                return Some(Self::bucket_mid(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Percentile among the recorded values only.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        self.quantile_of(q, self.count())
    }
}

const INT_EXACT: u64 = 64;
const INT_SUB: u32 = 4;
const INT_BUCKETS: usize = INT_EXACT as usize + ((64 - 6) << INT_SUB);

/// Histogram of small counts (queue lengths): exact below 64, then 16 buckets per power of
/// two (6% wide), small enough to keep one per instance in cache.
#[derive(Debug, Clone)]
pub(crate) struct IntHist {
    counts: Vec<u64>,
    sum: u64,
    max: u64,
}

impl IntHist {
    pub(crate) fn new() -> Self {
        Self {
            counts: Vec::new(),
            sum: 0,
            max: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn record(&mut self, v: u64) {
        let idx = if v < INT_EXACT {
            v as usize
        } else {
            let e = 63 - v.leading_zeros();
            let sub = (v >> (e - INT_SUB)) & ((1 << INT_SUB) - 1);
            INT_EXACT as usize + (((e - 6) as usize) << INT_SUB) + sub as usize
        };
        debug_assert!(idx < INT_BUCKETS);
        grow_to(&mut self.counts, idx);
        self.counts[idx] += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    fn bucket_low(idx: usize) -> u64 {
        if idx < INT_EXACT as usize {
            return idx as u64;
        }
        let k = idx - INT_EXACT as usize;
        let e = 6 + (k >> INT_SUB) as u32;
        let sub = (k & ((1 << INT_SUB) - 1)) as u64;
        ((1 << INT_SUB) + sub) << (e - INT_SUB)
    }

    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut cum = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            cum += c;
            if cum >= rank {
                return Some(Self::bucket_low(i).min(self.max) as f64);
            }
        }
        Some(self.max as f64)
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum as f64 / n as f64)
    }

    /// Values recorded (a sum over buckets: recording stays one increment).
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }
}

/// Two-sided 95% Student-t quantiles t₀.₉₇₅ for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// t₀.₉₇₅ with `df` degrees of freedom: the table up to 30, then the Cornish–Fisher
/// expansion around the normal quantile (error < 10⁻⁴ beyond 30).
pub(crate) fn t975(df: u32) -> f64 {
    if df == 0 {
        return f64::INFINITY;
    }
    if (df as usize) <= T975.len() {
        return T975[df as usize - 1];
    }
    let z = 1.959_963_985_f64;
    let d = df as f64;
    z + (z.powi(3) + z) / (4.0 * d)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
}

/// Mean of per-replication values with a 95% Student-t interval. Non-finite values (a p99
/// that is infinite because most queries were dropped) make the interval unbounded, which
/// JSON cannot hold, so the interval is then omitted and the mean is infinite only if a value
/// is.
pub(crate) fn estimate(values: &[f64]) -> Estimate {
    let n = values.len();
    if n == 0 {
        return Estimate {
            mean: 0.0,
            ci_low: None,
            ci_high: None,
            n: 0,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 || !mean.is_finite() {
        return Estimate {
            mean,
            ci_low: None,
            ci_high: None,
            n: n as u32,
        };
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    let h = t975(n as u32 - 1) * (var / n as f64).sqrt();
    Estimate {
        mean,
        ci_low: Some(mean - h),
        ci_high: Some(mean + h),
        n: n as u32,
    }
}

/// Estimate over the replications that measured the quantity (`None` entries skipped);
/// `None` when none did.
pub(crate) fn estimate_opt(values: impl Iterator<Item = Option<f64>>) -> Option<Estimate> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| estimate(&v))
}

/// One replication's latency percentiles (ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LatPoint {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatPoint {
    pub(crate) fn from_hist(h: &LogHist, sum: f64) -> Option<Self> {
        let n = h.count();
        Some(Self {
            mean: sum / n as f64,
            p50: h.quantile(0.5)?,
            p90: h.quantile(0.9)?,
            p95: h.quantile(0.95)?,
            p99: h.quantile(0.99)?,
            p999: h.quantile(0.999)?,
            max: h.max(),
        })
    }
}

pub(crate) fn latency_summary(points: &[Option<LatPoint>]) -> Option<LatencySummary> {
    let pts: Vec<LatPoint> = points.iter().flatten().copied().collect();
    if pts.is_empty() {
        return None;
    }
    let e = |f: fn(&LatPoint) -> f64| estimate(&pts.iter().map(f).collect::<Vec<_>>());
    Some(LatencySummary {
        mean: e(|p| p.mean),
        p50: e(|p| p.p50),
        p90: e(|p| p.p90),
        p95: e(|p| p.p95),
        p99: e(|p| p.p99),
        p999: e(|p| p.p999),
        max: e(|p| p.max),
    })
}

/// One replication's queue-length percentiles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueuePoint {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl QueuePoint {
    pub(crate) fn from_hist(h: &IntHist) -> Option<Self> {
        if h.count() == 0 {
            return None;
        }
        Some(Self {
            mean: h.mean()?,
            p50: h.quantile(0.5)?,
            p90: h.quantile(0.9)?,
            p99: h.quantile(0.99)?,
            max: h.max() as f64,
        })
    }
}

pub(crate) fn queue_summary(points: &[Option<QueuePoint>]) -> QueueSummary {
    let pts: Vec<QueuePoint> = points.iter().flatten().copied().collect();
    let e = |f: fn(&QueuePoint) -> f64| estimate(&pts.iter().map(f).collect::<Vec<_>>());
    QueueSummary {
        mean: e(|p| p.mean),
        p50: e(|p| p.p50),
        p90: e(|p| p.p90),
        p99: e(|p| p.p99),
        max: e(|p| p.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_hist_percentiles_are_within_resolution() {
        let mut h = LogHist::new();
        let n = 100_000;
        for i in 1..=n {
            h.record(i as f64 * 0.01);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = (q * n as f64).ceil() * 0.01;
            let got = h.quantile(q).unwrap();
            assert!(
                (got / exact - 1.0).abs() <= RESOLUTION / 2.0 + 1e-9,
                "{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), 1000.0);
        assert_eq!(h.quantile_of(0.99, 2 * n), Some(f64::INFINITY));
    }

    #[test]
    fn log_hist_resolves_latencies_of_hours_and_years() {
        // An overloaded run's backlog (a day, a year) and the largest SLA (10⁹ ms): a
        // percentile must not stop at the range's end (it stopped at 2²⁴ ms, 4.7 hours).
        for v in [86_400_000.0, 3.15e10, 1e9, 1e12] {
            let mut h = LogHist::new();
            for k in 0..100 {
                h.record(v * (1.0 + k as f64 / 1000.0));
            }
            let got = h.quantile(0.5).unwrap();
            assert!(
                (got / (v * 1.049) - 1.0).abs() <= RESOLUTION,
                "{v}: p50 {got}"
            );
        }
    }

    #[test]
    fn int_hist_is_exact_for_small_counts() {
        let mut h = IntHist::new();
        for v in 0..100u64 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(49.0));
        assert_eq!(h.max(), 99);
        // 97 lies in the bucket [96, 100) of the 64..128 octave.
        assert_eq!(h.quantile(0.98), Some(96.0));
        let mut g = IntHist::new();
        g.record(u64::MAX / 2);
        assert!(g.quantile(0.5).unwrap() > 1e18);
    }

    #[test]
    fn t_quantiles_and_intervals() {
        assert_eq!(t975(1), 12.706);
        assert!((t975(31) - 2.0395).abs() < 1e-3);
        assert!((t975(1000) - 1.9623).abs() < 1e-3);
        let e = estimate(&[1.0, 2.0, 3.0]);
        assert_eq!(e.mean, 2.0);
        assert!((e.half_width().unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(estimate(&[5.0]).ci_low, None);
    }
}
