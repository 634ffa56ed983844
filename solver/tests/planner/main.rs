//! Integration tests of the planners: one test binary (HiGHS links slowly), one module per
//! concern.

mod data;
mod messages;
mod parvagpu;
mod props;
mod replan;
mod replan_sla;
mod replan_sla_load;
mod report;

/// The config of every property test here: `cases` cases on a fixed seed.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    // Fixed: the same seed gives the same result (the guide demands determinism).
    let mut config = Config::with_cases(cases);
    // Unless PROPTEST_RNG_SEED=<u64> (read into the default config) asks for another seed.
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(1);
    }
    config
}
