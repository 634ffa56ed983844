//! Worker processes: started with their placement in the environment, read by one thread
//! each, stopped (and killed if they do not stop) whatever happens to the front end.
//!
//! Every worker runs in its own process group, so a Ctrl-C on the terminal reaches only the
//! front end; when the front end dies for any reason the workers' stdin reaches end of file
//! and they exit (the worker also asks Linux for SIGTERM on its parent's death).

use crate::error::ServeError;
use crate::protocol::{self, FromWorker};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to start one worker.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The instance, for messages (`GPU 0 3g.71gb@4 bert-base`).
    pub label: String,
    /// Program and arguments.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment added to the front end's (placement).
    pub env: Vec<(String, String)>,
    /// Where the worker's stderr goes (none: discarded).
    pub log: Option<PathBuf>,
}

/// What the reader threads report.
#[derive(Debug)]
pub enum Event {
    /// A line from worker `inst`, read at `at`.
    Msg {
        /// Instance index.
        inst: usize,
        /// The message.
        msg: FromWorker,
        /// When the front end read it.
        at: Instant,
    },
    /// A line that is not the protocol.
    Garbled {
        /// Instance index.
        inst: usize,
        /// What is wrong.
        why: String,
    },
    /// The worker's stdout closed: it exited or is exiting.
    Closed {
        /// Instance index.
        inst: usize,
    },
}

struct Worker {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
}

/// The running workers and the channel their reader threads feed.
pub struct Pool {
    workers: Vec<Worker>,
    rx: Receiver<Event>,
}

fn reader(inst: usize, out: std::process::ChildStdout, tx: Sender<Event>) {
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Event::Closed { inst });
                return;
            }
            Ok(_) => {
                let at = Instant::now();
                let ev = match protocol::parse(&line) {
                    Ok(msg) => Event::Msg { inst, msg, at },
                    Err(why) => Event::Garbled { inst, why },
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    }
}

impl Pool {
    /// Starts every worker; on any failure the ones already started are stopped.
    pub fn start(specs: &[WorkerSpec]) -> Result<Self, ServeError> {
        let (tx, rx) = mpsc::channel();
        let mut pool = Pool {
            workers: Vec::with_capacity(specs.len()),
            rx,
        };
        for (inst, s) in specs.iter().enumerate() {
            let stderr = match &s.log {
                Some(p) => Stdio::from(std::fs::File::create(p).map_err(|e| ServeError::Io {
                    what: format!("cannot create worker log {}", p.display()),
                    source: e,
                })?),
                None => Stdio::null(),
            };
            let mut child = Command::new(&s.program)
                .args(&s.args)
                .envs(s.env.iter().map(|(k, v)| (k, v)))
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .process_group(0)
                .spawn()
                .map_err(|e| ServeError::Io {
                    what: format!(
                        "cannot start the worker of {} ({})",
                        s.label,
                        s.program.display()
                    ),
                    source: e,
                })?;
            let stdin = child.stdin.take();
            let out = child.stdout.take().expect("stdout is piped");
            let tx = tx.clone();
            let reader = std::thread::Builder::new()
                .name(format!("worker-{inst}"))
                .spawn(move || reader(inst, out, tx))
                .map_err(|e| ServeError::Io {
                    what: "cannot start a reader thread".into(),
                    source: e,
                })?;
            pool.workers.push(Worker {
                label: s.label.clone(),
                child,
                stdin,
                reader: Some(reader),
            });
        }
        Ok(pool)
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The instance label of worker `inst`.
    pub fn label(&self, inst: usize) -> &str {
        &self.workers[inst].label
    }

    /// Waits until every worker said `ready`, returning what each said.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Vec<serde_json::Value>, ServeError> {
        let deadline = Instant::now() + timeout;
        let mut ready: Vec<Option<serde_json::Value>> = vec![None; self.workers.len()];
        while ready.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Event::Msg {
                    inst,
                    msg: FromWorker::Ready(v),
                    ..
                }) => {
                    let proto = v.get("protocol").and_then(|p| p.as_u64());
                    if proto != Some(protocol::VERSION as u64) {
                        return Err(self.failed(
                            inst,
                            format!(
                                "speaks protocol {proto:?}, the front end {}",
                                protocol::VERSION
                            ),
                        ));
                    }
                    ready[inst] = Some(v);
                }
                Ok(ev) => return Err(self.fault(ev)),
                Err(RecvTimeoutError::Timeout) => {
                    let late = ready.iter().position(Option::is_none).unwrap_or(0);
                    return Err(self.failed(
                        late,
                        format!("not ready after {:.0} s", timeout.as_secs_f64()),
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ServeError::Internal("worker channel closed".into()))
                }
            }
        }
        Ok(ready.into_iter().flatten().collect())
    }

    /// The channel of events.
    pub fn events(&self) -> &Receiver<Event> {
        &self.rx
    }

    /// Sends a line to worker `inst`.
    pub fn send(&mut self, inst: usize, line: &[u8]) -> Result<(), ServeError> {
        let w = &mut self.workers[inst];
        let res = match w.stdin.as_mut() {
            Some(s) => s.write_all(line),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        res.map_err(|e| self.failed(inst, format!("cannot be written to ({e})")))
    }

    /// The error for an unexpected event: a worker failed, closed or garbled its output.
    pub fn fault(&mut self, ev: Event) -> ServeError {
        match ev {
            Event::Msg {
                inst,
                msg: FromWorker::Error { id, message },
                ..
            } => {
                let on = id.map(|q| format!(" on query {q}")).unwrap_or_default();
                self.failed(inst, format!("failed{on}: {message}"))
            }
            Event::Msg { inst, msg, .. } => {
                self.failed(inst, format!("sent an unexpected message {msg:?}"))
            }
            Event::Garbled { inst, why } => self.failed(inst, format!("broke the protocol: {why}")),
            Event::Closed { inst } => self.failed(inst, "exited".into()),
        }
    }

    /// A [`ServeError::Worker`] for `inst`, with its exit status if it has one.
    pub fn failed(&mut self, inst: usize, what: String) -> ServeError {
        let w = &mut self.workers[inst];
        // Give an exiting process a moment to be reaped, so its status can be reported.
        let mut status = None;
        for _ in 0..50 {
            if let Ok(Some(s)) = w.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        ServeError::Worker {
            instance: w.label.clone(),
            message: match status {
                Some(s) => format!("{what} ({})", describe(s)),
                None => what,
            },
        }
    }

    /// Asks every worker to exit, waits up to `grace`, kills the rest; returns how each ended.
    pub fn shutdown(mut self, grace: Duration) -> Vec<String> {
        for w in &mut self.workers {
            if let Some(mut s) = w.stdin.take() {
                let _ = s.write_all(protocol::EXIT.as_bytes());
            }
        }
        let deadline = Instant::now() + grace;
        let mut out = Vec::new();
        for w in &mut self.workers {
            out.push(stop(w, deadline));
        }
        out
    }
}

fn stop(w: &mut Worker, deadline: Instant) -> String {
    w.stdin.take();
    loop {
        match w.child.try_wait() {
            Ok(Some(s)) => {
                if let Some(r) = w.reader.take() {
                    let _ = r.join();
                }
                return describe(s);
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = w.child.kill();
                let s = w.child.wait();
                if let Some(r) = w.reader.take() {
                    let _ = r.join();
                }
                return match s {
                    Ok(s) => format!("killed ({})", describe(s)),
                    Err(e) => format!("killed (wait failed: {e})"),
                };
            }
        }
    }
}

fn describe(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Whatever path left the pool behind: no worker outlives it.
        let now = Instant::now();
        for w in &mut self.workers {
            if w.child.try_wait().ok().flatten().is_none() {
                let _ = w.child.kill();
            }
            stop(w, now);
        }
    }
}

impl Pool {
    /// A pool with no workers.
    pub fn empty() -> Self {
        let (_tx, rx) = mpsc::channel();
        Pool {
            workers: Vec::new(),
            rx,
        }
    }
}
