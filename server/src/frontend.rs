//! The front end of one run: replays the arrivals open-loop at their timestamps, asks the
//! scheduler where each query goes, writes it to that worker, reads completions, and records
//! every query. It decides nothing itself: dispatch-at-arrival rules are the simulator's
//! [`Dispatcher`] (the same decision functions both engines call), FIFS is the simulator's
//! central-queue rule ([`Fifs`]).
//!
//! Waiting for the next arrival, the loop blocks on the completion channel until `spin`
//! before the arrival is due, then spins, so a query is written within microseconds of its
//! due time (the dispatch lag is recorded per query and summarised as overhead).

use crate::error::ServeError;
use crate::protocol::{self, FromWorker};
use crate::records::QueryRecord;
use crate::setup::Instance;
use crate::worker::{Event, Pool};
use migopt_sim::sched::{Dispatcher, Fifs};
use migopt_sim::TraceRecord;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// Who decides where queries go.
pub enum Policy {
    /// A dispatch-at-arrival scheduler (ELSA, JSQ, ...).
    AtArrival(Box<Dispatcher>),
    /// FIFS: queries wait centrally; an instance that goes idle takes the oldest it can run.
    Central(Box<Fifs>),
}

/// Timing knobs of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Spin (instead of blocking) this long before an arrival is due.
    pub spin: Duration,
    /// A query running longer than max(`hang_min`, `hang_factor` × its profiled median)
    /// means its worker hangs.
    pub hang_min: Duration,
    /// See `hang_min`.
    pub hang_factor: f64,
    /// Seed of the random bits the `random` scheduler uses.
    pub seed: u64,
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// One record per query, in trace order.
    pub records: Vec<QueryRecord>,
    /// Whether each query was sent at its arrival (not held centrally).
    pub at_arrival: Vec<bool>,
    /// Whether each query was sent to an idle worker.
    pub sent_idle: Vec<bool>,
    /// Wall-clock length, s.
    pub wall_s: f64,
}

struct Slot {
    pending: VecDeque<usize>,
    head_start: f64,
}

struct Run<'a> {
    pool: &'a mut Pool,
    insts: &'a [Instance],
    trace: &'a [TraceRecord],
    policy: Policy,
    timing: Timing,
    rng: Xoshiro256PlusPlus,
    slots: Vec<Slot>,
    recs: Vec<QueryRecord>,
    at_arrival: Vec<bool>,
    sent_idle: Vec<bool>,
    t0: Instant,
    outstanding: usize,
    buf: String,
}

/// Runs `trace` through the workers of `pool` (one per instance, all ready).
pub fn run(
    pool: &mut Pool,
    insts: &[Instance],
    trace: &[TraceRecord],
    policy: Policy,
    timing: Timing,
) -> Result<RunOutcome, ServeError> {
    let blank = |q: &TraceRecord, k: usize| QueryRecord {
        query: k as u64,
        arrival_ms: q.arrival_ms,
        model: q.model.to_string(),
        batch: q.batch,
        instance: u32::MAX,
        dispatch_ms: f64::NAN,
        start_ms: f64::NAN,
        finish_ms: f64::NAN,
        service_ms: f64::NAN,
        ran_batch: 0,
    };
    let mut r = Run {
        pool,
        insts,
        trace,
        policy,
        timing,
        rng: Xoshiro256PlusPlus::seed_from_u64(timing.seed),
        slots: insts
            .iter()
            .map(|_| Slot {
                pending: VecDeque::new(),
                head_start: 0.0,
            })
            .collect(),
        recs: trace.iter().enumerate().map(|(k, q)| blank(q, k)).collect(),
        at_arrival: vec![false; trace.len()],
        sent_idle: vec![false; trace.len()],
        t0: Instant::now() + Duration::from_millis(20),
        outstanding: 0,
        buf: String::with_capacity(64),
    };
    r.main_loop()?;
    Ok(RunOutcome {
        wall_s: r.t0.elapsed().as_secs_f64(),
        records: r.recs,
        at_arrival: r.at_arrival,
        sent_idle: r.sent_idle,
    })
}

impl Run<'_> {
    fn now_ms(&self) -> f64 {
        let now = Instant::now();
        if now >= self.t0 {
            (now - self.t0).as_secs_f64() * 1e3
        } else {
            -((self.t0 - now).as_secs_f64() * 1e3)
        }
    }

    fn main_loop(&mut self) -> Result<(), ServeError> {
        let n = self.trace.len();
        let mut next = 0;
        let mut checked = Instant::now();
        loop {
            let ev = if next < n {
                let due = self.t0 + Duration::from_secs_f64(self.trace[next].arrival_ms / 1e3);
                let now = Instant::now();
                if now >= due {
                    self.arrive(next)?;
                    next += 1;
                    continue;
                }
                let wait = due - now;
                if wait > self.timing.spin {
                    self.recv(Some(wait - self.timing.spin))?
                } else {
                    self.recv(None)?
                }
            } else if self.outstanding > 0 || self.queued() {
                self.recv(Some(Duration::from_millis(5)))?
            } else {
                return Ok(());
            };
            if let Some(ev) = ev {
                self.handle(ev)?;
            }
            if checked.elapsed() > Duration::from_millis(5) {
                self.check_hung()?;
                checked = Instant::now();
            }
        }
    }

    fn queued(&self) -> bool {
        matches!(&self.policy, Policy::Central(f) if f.waiting() > 0)
    }

    /// The next event: blocking up to `wait`, or just a look when `None`.
    fn recv(&mut self, wait: Option<Duration>) -> Result<Option<Event>, ServeError> {
        let rx = self.pool.events();
        match wait {
            Some(w) => match rx.recv_timeout(w) {
                Ok(e) => Ok(Some(e)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => {
                    Err(ServeError::Internal("every worker reader ended".into()))
                }
            },
            None => match rx.try_recv() {
                Ok(e) => Ok(Some(e)),
                Err(TryRecvError::Empty) => {
                    std::hint::spin_loop();
                    Ok(None)
                }
                Err(TryRecvError::Disconnected) => {
                    Err(ServeError::Internal("every worker reader ended".into()))
                }
            },
        }
    }

    /// Query `k` is due.
    fn arrive(&mut self, k: usize) -> Result<(), ServeError> {
        let q = &self.trace[k];
        let now = self.now_ms();
        let target = match &mut self.policy {
            Policy::AtArrival(d) => {
                let query = d.query(q.model.as_str(), q.batch, q.arrival_ms)?;
                let bits = self.rng.next_u32();
                Some(d.dispatch(&query, now, bits)? as usize)
            }
            Policy::Central(f) => f
                .arrive(k, q.model.as_str(), q.batch, now)?
                .map(|i| i as usize),
        };
        if let Some(i) = target {
            self.send(k, i, true)?;
        }
        Ok(())
    }

    fn send(&mut self, k: usize, i: usize, at_arrival: bool) -> Result<(), ServeError> {
        let b = self.trace[k].batch;
        self.buf.clear();
        protocol::request(&mut self.buf, k as u64, b);
        // Stamped before the write: once the request is in the pipe the worker may start (and
        // finish) before this thread runs again, so a stamp taken after it could come later
        // than the worker's own start and finish on a loaded machine.
        let t = self.now_ms();
        self.pool.send(i, self.buf.as_bytes())?;
        let idle = self.slots[i].pending.is_empty();
        self.slots[i].pending.push_back(k);
        let r = &mut self.recs[k];
        r.instance = i as u32;
        r.dispatch_ms = t;
        self.at_arrival[k] = at_arrival;
        self.sent_idle[k] = idle;
        self.outstanding += 1;
        if idle {
            self.start(i, t)?;
        }
        Ok(())
    }

    /// The head of instance `i`'s queue starts (as far as the front end can tell) at `t`.
    fn start(&mut self, i: usize, t: f64) -> Result<(), ServeError> {
        self.slots[i].head_start = t;
        if let Policy::AtArrival(d) = &mut self.policy {
            let b = self.trace[self.slots[i].pending[0]].batch;
            d.started(i as u32, 0, t, 1, b)?;
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event) -> Result<(), ServeError> {
        match ev {
            Event::Msg {
                inst,
                msg:
                    FromWorker::Done {
                        id,
                        service_us,
                        ran,
                    },
                at,
            } => self.done(inst, id, service_us, ran, at),
            other => Err(self.pool.fault(other)),
        }
    }

    fn done(
        &mut self,
        i: usize,
        id: u64,
        service_us: f64,
        ran: u32,
        at: Instant,
    ) -> Result<(), ServeError> {
        let finish = (at.saturating_duration_since(self.t0)).as_secs_f64() * 1e3;
        match self.slots[i].pending.pop_front() {
            Some(k) if k as u64 == id => {
                let r = &mut self.recs[k];
                r.finish_ms = finish;
                r.service_ms = service_us / 1e3;
                r.start_ms = finish - r.service_ms;
                r.ran_batch = ran;
            }
            other => {
                return Err(self.pool.failed(
                    i,
                    format!("answered query {id} but query {other:?} was first in its queue"),
                ))
            }
        }
        self.outstanding -= 1;
        if let Policy::AtArrival(d) = &mut self.policy {
            d.finished(i as u32, 0)?;
        }
        if !self.slots[i].pending.is_empty() {
            return self.start(i, finish);
        }
        if let Policy::Central(f) = &mut self.policy {
            if let Some(k) = f.idle(i as u32, finish) {
                self.send(k, i, false)?;
            }
        }
        Ok(())
    }

    fn check_hung(&mut self) -> Result<(), ServeError> {
        let now = self.now_ms();
        for i in 0..self.slots.len() {
            let Some(&k) = self.slots[i].pending.front() else {
                continue;
            };
            let b = self.trace[k].batch;
            let med = self.insts[i].median_ms(b).unwrap_or(0.0);
            let limit =
                (self.timing.hang_min.as_secs_f64() * 1e3).max(self.timing.hang_factor * med);
            let ran = now - self.slots[i].head_start;
            if ran > limit {
                return Err(self.pool.failed(
                    i,
                    format!(
                        "hangs: query {k} (batch {b}) has run {:.0} ms, its profiled median is {med:.2} ms (limit {limit:.0} ms)",
                        ran
                    ),
                ));
            }
        }
        Ok(())
    }
}
