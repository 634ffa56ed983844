//! The bounds on every size that comes from the user, in one place. Each is checked where
//! the value is parsed (with a located message) before anything is sized from it, so that
//! no input can exhaust memory or time. The README's "Limits" section lists them.

/// The largest batch size a profile row, a batch distribution, a plan or a trace may name.
pub const MAX_BATCH: u32 = 65_536;

/// The most MPS processes one instance may run.
pub const MAX_PROCS: u32 = 64;

/// The most GPUs a scenario (or a plan) may have.
pub const MAX_GPUS: u32 = 100_000;

/// The most instances any one model may need (its rate over the throughput of its smallest
/// instance). Rates and throughputs are bounded so that this holds.
pub const MAX_INSTANCES_PER_MODEL: u64 = 1_000_000;

/// The most models a scenario may serve.
pub const MAX_MODELS: usize = 10_000;

/// The most queries one simulated replication may contain (arrival rate x duration, or
/// `--queries`): a bound on both memory and run time.
pub const MAX_QUERIES_PER_RUN: u64 = 100_000_000;

/// Worker threads per CPU core that `--threads` may ask for.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The smallest latency (ms) a profile may give: anything below is a unit error, and
/// denormal or zero values would break the arithmetic downstream.
pub const MIN_LATENCY_MS: f64 = 1e-6;

/// The largest latency (ms) a profile or an SLA may give (about 11.6 days).
pub const MAX_LATENCY_MS: f64 = 1e9;
