//! Random streams and discrete sampling.
//!
//! Each replication draws from its own xoshiro256++ stream (rand's portable generator, whose
//! output is fixed across rand releases) seeded through SplitMix64 from (seed, replication
//! index). A replication's numbers therefore depend only on those two values, never on which
//! thread ran it or in what order, which is what makes reports bit-identical at any thread
//! count.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

/// One step of SplitMix64 (Steele, Lea & Flood), the standard way to spread a small seed over
/// a large generator state.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator of replication `index` under master seed `seed`.
pub(crate) fn stream(seed: u64, index: u64) -> Xoshiro256PlusPlus {
    let mut st = seed;
    // Mix the seed first so that (seed, index) and (seed ^ index, 0) do not collide.
    st = splitmix64(&mut st) ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut st).to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(bytes)
}

/// Maps 32 random bits to `0..n` by multiply-shift (Lemire): one multiplication instead of a
/// division; the bias is below n/2³², far under any statistical effect we measure.
#[inline(always)]
pub(crate) fn below(bits32: u64, n: usize) -> usize {
    ((bits32 * n as u64) >> 32) as usize
}

/// Walker/Vose alias table: samples a discrete distribution in O(1) with one 64-bit random
/// draw (high half picks the column, low half decides column or alias). Built once per run,
/// so the per-query cost does not grow with the number of batch sizes.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    thr: Vec<u32>,
    alias: Vec<u32>,
}

impl Alias {
    /// Builds the table from non-negative weights with a positive sum.
    pub(crate) fn new(weights: &[f64]) -> Self {
        let n = weights.len().max(1);
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
        scaled.resize(n, 1.0);
        let mut thr = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            thr[s] = (scaled[s] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left (rounding) keeps its own column with certainty.
        Self { thr, alias }
    }

    /// Draws an outcome index; a single-outcome table draws no random number at all.
    #[inline(always)]
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let n = self.thr.len();
        if n == 1 {
            return 0;
        }
        let u = rng.next_u64();
        let i = below(u >> 32, n);
        // A mask instead of a branch: the coin is random, so a branch would mispredict half
        // the time.
        let keep = ((u as u32) < self.thr[i]) as usize;
        let m = keep.wrapping_neg();
        (i & m) | (self.alias[i] as usize & !m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_matches_weights() {
        let w = [0.5, 0.3, 0.2, 0.0];
        let a = Alias::new(&w);
        let mut rng = stream(1, 0);
        let mut c = [0u32; 4];
        let n = 400_000;
        for _ in 0..n {
            c[a.sample(&mut rng)] += 1;
        }
        for i in 0..4 {
            let f = c[i] as f64 / n as f64;
            assert!((f - w[i]).abs() < 0.005, "{i}: {f}");
        }
    }

    #[test]
    fn streams_differ_by_index_and_repeat_by_seed() {
        let a: Vec<u64> = (0..3).map(|i| stream(7, i).next_u64()).collect();
        assert_ne!(a[0], a[1]);
        assert_ne!(a[1], a[2]);
        assert_eq!(stream(7, 1).next_u64(), a[1]);
        assert_ne!(stream(6, 0).next_u64(), stream(7, 1).next_u64());
    }
}
