//! What one replication needs (arrival source, limits, options) and what it produces (raw
//! accumulators), shared by both engines.

use crate::prep::Prepared;
use crate::rng::Alias;
use crate::stats::{IntHist, LogHist};
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Exp1};

/// A trace query, resolved to indices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceQ {
    pub t: f64,
    pub m: u32,
    pub b: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum Source<'a> {
    /// Superposed Poisson arrivals: exponential gaps of the total rate, then one draw picks
    /// the (model, batch) class with probability share(model)·pmf(batch) — exactly
    /// independent per-model Poisson streams with independent batch sizes, at one random
    /// number per query for both choices.
    Poisson {
        gap_ms: f64,
        classes: Alias,
        class_mb: Vec<(u32, u32)>,
    },
    Trace(&'a [TraceQ]),
}

/// When the warm-up ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Warm {
    /// After this many queries.
    Count(u64),
    /// At this simulated time, ms.
    Time(f64),
}

#[derive(Debug, Clone)]
pub(crate) struct RunSpec<'a> {
    pub src: Source<'a>,
    pub max_queries: u64,
    pub max_ms: f64,
    pub warm: Warm,
    pub jitter: bool,
    pub drop_late: bool,
    pub scheduler: crate::SchedulerKind,
}

/// Produces arrivals in time order.
pub(crate) struct Arrivals<'a> {
    spec: &'a RunSpec<'a>,
    k: u64,
    t: f64,
}

impl<'a> Arrivals<'a> {
    pub(crate) fn new(spec: &'a RunSpec<'a>) -> Self {
        Self { spec, k: 0, t: 0.0 }
    }

    /// The next query (time ms, model, batch, measured?), or `None` when the run is over.
    #[inline(always)]
    pub(crate) fn next(
        &mut self,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<(f64, usize, usize, bool)> {
        if self.k >= self.spec.max_queries {
            return None;
        }
        let (t, m, b) = match &self.spec.src {
            Source::Poisson {
                gap_ms,
                classes,
                class_mb,
            } => {
                let e: f64 = Exp1.sample(rng);
                let t = self.t + e * gap_ms;
                let (m, b) = class_mb[classes.sample(rng)];
                (t, m as usize, b as usize)
            }
            Source::Trace(q) => {
                let r = q[self.k as usize];
                (r.t, r.m as usize, r.b as usize)
            }
        };
        if t > self.spec.max_ms {
            return None;
        }
        let measured = match self.spec.warm {
            Warm::Count(n) => self.k >= n,
            Warm::Time(w) => t >= w,
        };
        self.k += 1;
        self.t = t;
        Some((t, m, b, measured))
    }

    pub(crate) fn generated(&self) -> u64 {
        self.k
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ModelAcc {
    pub measured: u64,
    pub completed: u64,
    pub dropped: u64,
    pub late: u64,
    pub samples: u64,
    pub sum_lat: f64,
    pub sum_wait: f64,
    pub last_finish: f64,
    pub lat: LogHist,
    pub qlen: IntHist,
}

#[derive(Debug, Clone)]
pub(crate) struct InstAcc {
    pub busy: f64,
    pub queries: u64,
    pub batches: u64,
    pub qlen: Option<IntHist>,
}

/// Raw results of one replication.
#[derive(Debug, Clone)]
pub(crate) struct RepStats {
    pub models: Vec<ModelAcc>,
    pub insts: Vec<InstAcc>,
    pub generated: u64,
    /// First measured arrival and last arrival, ms (NaN when nothing was measured).
    pub tw0: f64,
    pub tend: f64,
    /// Added to every recorded latency ([`Prepared::lat_extra`]).
    lat_extra: f64,
}

impl RepStats {
    pub(crate) fn new(p: &Prepared, per_instance_queues: bool) -> Self {
        Self {
            models: p
                .models
                .iter()
                .map(|_| ModelAcc {
                    measured: 0,
                    completed: 0,
                    dropped: 0,
                    late: 0,
                    samples: 0,
                    sum_lat: 0.0,
                    sum_wait: 0.0,
                    last_finish: 0.0,
                    lat: LogHist::new(),
                    qlen: IntHist::new(),
                })
                .collect(),
            insts: p
                .insts
                .iter()
                .map(|_| InstAcc {
                    busy: 0.0,
                    queries: 0,
                    batches: 0,
                    qlen: per_instance_queues.then(IntHist::new),
                })
                .collect(),
            generated: 0,
            tw0: f64::NAN,
            tend: f64::NAN,
            lat_extra: p.lat_extra,
        }
    }

    /// Records a measured query that completed.
    #[inline(always)]
    pub(crate) fn completed(
        &mut self,
        m: usize,
        sla: f64,
        arrival: f64,
        start: f64,
        finish: f64,
        b: usize,
    ) {
        let a = &mut self.models[m];
        let lat = finish - arrival + self.lat_extra;
        a.completed += 1;
        a.samples += b as u64;
        a.sum_lat += lat;
        a.sum_wait += start - arrival;
        a.late += (lat > sla) as u64;
        a.last_finish = a.last_finish.max(finish);
        a.lat.record(lat);
    }

    /// Records a measured query of model `m`, batch `b`, that ran as a batch of its own on
    /// instance `inst` ([`Self::completed`], `times` = its arrival, start and finish) after
    /// finding `qlen` queries waiting in its queue.
    #[inline(always)]
    pub(crate) fn ran_alone(
        &mut self,
        (m, b): (usize, usize),
        inst: usize,
        sla: f64,
        (arrival, start, finish): (f64, f64, f64),
        qlen: u64,
    ) {
        self.models[m].measured += 1;
        self.models[m].qlen.record(qlen);
        self.completed(m, sla, arrival, start, finish, b);
        let ia = &mut self.insts[inst];
        ia.queries += 1;
        ia.batches += 1;
        if let Some(h) = ia.qlen.as_mut() {
            h.record(qlen);
        }
    }

    /// Records a measured query of model `m` dropped because it would finish late.
    #[inline(always)]
    pub(crate) fn dropped(&mut self, m: usize) {
        let a = &mut self.models[m];
        a.measured += 1;
        a.dropped += 1;
    }
}
