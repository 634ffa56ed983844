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

/// The most queries one served run may replay (`migopt serve --rate R --duration S`): the
/// trace is held in memory and replayed in real time, so this is hours of serving at
/// thousands of queries/s.
pub const MAX_SERVED_QUERIES: u64 = 10_000_000;

/// Worker threads per CPU core that `--threads` may ask for.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The smallest latency (ms) a profile may give: anything below is a unit error, and
/// denormal or zero values would break the arithmetic downstream.
pub const MIN_LATENCY_MS: f64 = 1e-6;

/// The largest latency (ms) a profile or an SLA may give (about 11.6 days).
pub const MAX_LATENCY_MS: f64 = 1e9;

/// The largest request rate (queries per second) a scenario, a plan or `--rate` may give:
/// a billion queries per second is beyond any server, and keeping rates here keeps
/// inter-arrival times far above the resolution of the simulator's clock.
pub const MAX_RATE_QPS: f64 = 1e9;

/// The smallest and largest share of traffic a model may be given (shares are normalised,
/// so only their ratios matter; these keep the normalisation finite and exact enough).
pub const MIN_SHARE: f64 = 1e-9;
/// See [`MIN_SHARE`].
pub const MAX_SHARE: f64 = 1e9;

/// The longest simulated span of one replication, seconds (about 31 years). Simulated
/// clocks are f64 milliseconds: below 10^12 ms they resolve 0.25 µs, so a latency of a few
/// milliseconds never vanishes next to the arrival time it is added to.
pub const MAX_SIM_SECONDS: f64 = 1e9;

/// The most replications one simulation may run.
pub const MAX_REPLICATIONS: u32 = 100_000;

/// The most results one simulation keeps ((models + instances) x replications): each
/// replication's figures per model and instance (about 100 bytes) are kept until the report
/// is built, so this is about 2 GB. 100,000 replications of a plan of 200 instances, or 28
/// of a plan of [`MAX_GPUS`] GPUs cut in seven.
pub const MAX_REPLICATION_CELLS: u64 = 20_000_000;

/// The most neighbour loads one curve (model, profile, MPS processes) may be measured under
/// (`neighbour_load` rows): the interference model keeps a slowdown table of (largest batch
/// + 1) x (loads + 1) entries per curve. Measured sets hold a handful (0.25, 0.5, 1, ...).
pub const MAX_NEIGHBOUR_LOADS: usize = 16;

/// The most entries of the simulator's service tables ((instances + models) x (largest
/// batch + 1)): about 160 MB per table.
pub const MAX_SERVICE_TABLE_CELLS: usize = 20_000_000;

/// The most (curve, batch) points `profile check --interpolate` may create in total.
pub const MAX_INTERPOLATED_POINTS: u64 = 10_000_000;

/// The most points `gap --sweep` may plan, over all its scenarios (GPU counts x SLA
/// multipliers): each point solves the MILP and every heuristic, seconds each, so this is
/// hours of solving at most. The default sweep of an 8-GPU scenario is 40 points.
pub const MAX_SWEEP_POINTS: u64 = 1_000;

/// The most bytes migopt reads from one input file of a kind, with the kind's name for
/// messages. Every user file is read through [`crate::input::read_text`], which refuses a
/// larger one (naming the file and the cap) before reading past the cap: a pipe or a device
/// such as `/dev/zero` reports no length, so the cap is enforced on the bytes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCap {
    /// The most bytes.
    pub bytes: u64,
    /// What kind of file, as messages name it.
    pub what: &'static str,
}

const MIB: u64 = 1 << 20;

/// The cap of the small text inputs: 256 MiB, far above the largest of them (a profile of
/// every batch 1 - 65,536 on every profile of a GPU is a few tens of MB).
const TEXT_BYTES: u64 = 256 * MIB;

/// A profile CSV.
pub const PROFILE_FILE: FileCap = FileCap {
    bytes: TEXT_BYTES,
    what: "a profile CSV",
};
/// A scenario TOML.
pub const SCENARIO_FILE: FileCap = FileCap {
    bytes: TEXT_BYTES,
    what: "a scenario",
};
/// A diurnal load CSV (`replay-day --load`).
pub const LOAD_FILE: FileCap = FileCap {
    bytes: TEXT_BYTES,
    what: "a load file",
};
/// A served run's JSON sidecar.
pub const SIDECAR_FILE: FileCap = FileCap {
    bytes: TEXT_BYTES,
    what: "a served run's sidecar",
};
/// A file of the ParvaGPU data set (`import parvagpu`).
pub const IMPORT_FILE: FileCap = FileCap {
    bytes: TEXT_BYTES,
    what: "a ParvaGPU data file",
};

/// Plan JSON: 1 GiB, room for [`MAX_GPUS`] GPUs of seven instances each with their routes
/// (a few hundred bytes per instance).
pub const PLAN_FILE: FileCap = FileCap {
    bytes: 1024 * MIB,
    what: "a plan",
};

/// A query trace: 4 GiB, [`MAX_QUERIES_PER_RUN`] queries at 42 bytes a line (a line such as
/// `3599999.123456,resnet50,8` is 25). Traces are read whole, so a trace at this cap needs
/// about as much memory again for its records.
pub const TRACE_FILE: FileCap = FileCap {
    bytes: 4096 * MIB,
    what: "a trace",
};
/// A served record CSV: 4 GiB, [`MAX_SERVED_QUERIES`] records of 400 bytes.
pub const RECORDS_FILE: FileCap = FileCap {
    bytes: 4096 * MIB,
    what: "a served record file",
};

/// A number as messages print it: plainly when it is of everyday size, in scientific
/// notation when it is huge or tiny (`1e300` rather than three hundred digits).
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-4..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The most worker threads a command may start on a machine with `cores` cores.
pub fn max_threads(cores: usize) -> usize {
    cores.max(1).saturating_mul(MAX_THREADS_PER_CORE)
}

/// The number of CPU cores of this machine (1 when it cannot be told).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a thread count asked for with `flag` against [`max_threads`] of this machine.
pub fn check_threads(flag: &str, threads: u64) -> Result<usize, String> {
    let max = max_threads(cores());
    if threads == 0 {
        return Err(format!("{flag} {threads} must be at least 1"));
    }
    if threads > max as u64 {
        return Err(format!(
            "{flag} {threads} is more than {MAX_THREADS_PER_CORE} threads per core of this machine"
        ));
    }
    Ok(threads as usize)
}

/// Checks a `--queries` count: at least 1, at most [`MAX_QUERIES_PER_RUN`].
pub fn check_queries(queries: u64) -> Result<(), String> {
    if queries == 0 {
        return Err("--queries 0 must be at least 1".into());
    }
    if queries > MAX_QUERIES_PER_RUN {
        return Err(format!(
            "--queries {queries} is above the limit of {MAX_QUERIES_PER_RUN} queries per replication"
        ));
    }
    Ok(())
}

/// Checks the size of one simulated replication: `rate_qps` arrivals per second, bounded by
/// `queries` and/or `duration_s` (`default_queries` when neither is given). It must hold at
/// most [`MAX_QUERIES_PER_RUN`] queries and span at most [`MAX_SIM_SECONDS`].
pub fn check_run(
    rate_qps: f64,
    queries: Option<u64>,
    duration_s: Option<f64>,
    default_queries: u64,
) -> Result<(), String> {
    if !(rate_qps.is_finite() && rate_qps > 0.0) {
        return Err(format!(
            "the arrival rate {} must be a positive number of queries/s",
            num(rate_qps)
        ));
    }
    if rate_qps > MAX_RATE_QPS {
        return Err(format!(
            "the arrival rate {} queries/s is above the limit of {MAX_RATE_QPS:e} queries/s",
            num(rate_qps)
        ));
    }
    if let Some(d) = duration_s {
        if !(d.is_finite() && d > 0.0) {
            return Err(format!(
                "--duration {} must be a positive number of seconds",
                num(d)
            ));
        }
        if d > MAX_SIM_SECONDS {
            return Err(format!(
                "--duration {} s is above the limit of {MAX_SIM_SECONDS:e} simulated seconds",
                num(d)
            ));
        }
    }
    if let Some(q) = queries {
        check_queries(q)?;
    }
    // Queries the replication holds: the count, or rate x duration, whichever ends first.
    let by_time = duration_s.map(|d| rate_qps * d);
    let n = match (queries, by_time) {
        (Some(q), Some(t)) => (q as f64).min(t),
        (Some(q), None) => q as f64,
        (None, Some(t)) => t,
        (None, None) => default_queries as f64,
    };
    if n > MAX_QUERIES_PER_RUN as f64 {
        return Err(format!(
            "{} queries/s for {} s is {n:.3e} queries per replication, above the limit of {MAX_QUERIES_PER_RUN}; lower --duration or set --queries",
            num(rate_qps),
            num(duration_s.unwrap_or(0.0))
        ));
    }
    let span = n / rate_qps;
    if span > MAX_SIM_SECONDS {
        return Err(format!(
            "{n:.0} queries at {} queries/s span {span:.3e} simulated seconds, above the limit of {MAX_SIM_SECONDS:e}: the rate is too low for the run (raise the rate or lower --queries)",
            num(rate_qps)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_bounded_in_queries_and_span() {
        assert!(check_run(7500.0, None, None, 200_000).is_ok());
        assert!(check_run(7500.0, None, Some(60.0), 200_000).is_ok());
        let e = check_run(7500.0, None, Some(1e300), 200_000).unwrap_err();
        assert!(e.contains("--duration 1e300 s is above the limit"), "{e}");
        let e = check_run(7500.0, None, Some(1e6), 200_000).unwrap_err();
        assert!(e.contains("7.500e9 queries per replication"), "{e}");
        let e = check_run(1e-30, None, None, 200_000).unwrap_err();
        assert!(e.contains("span 2.000e35 simulated seconds"), "{e}");
        let e = check_run(1e300, None, None, 200_000).unwrap_err();
        assert!(e.contains("above the limit of 1e9"), "{e}");
        assert!(check_run(f64::NAN, None, None, 1).is_err());
        assert!(check_run(10.0, Some(u64::MAX), None, 1).is_err());
        assert_eq!(
            check_queries(0).unwrap_err(),
            "--queries 0 must be at least 1"
        );
        assert!(check_queries(MAX_QUERIES_PER_RUN).is_ok());
        assert!(check_queries(MAX_QUERIES_PER_RUN + 1).is_err());
        // A query count bounds a long duration.
        assert!(check_run(1e6, Some(1000), Some(1e8), 1).is_ok());
    }

    #[test]
    fn threads_are_bounded_by_cores() {
        assert_eq!(check_threads("--threads", 1), Ok(1));
        assert!(check_threads("--threads", 0).is_err());
        let e = check_threads("--threads", 4_000_000_000).unwrap_err();
        assert!(e.contains("threads per core"), "{e}");
        assert!(check_threads("--threads", max_threads(cores()) as u64).is_ok());
    }
}
