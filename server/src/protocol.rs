//! The worker protocol: text lines over the worker's stdin and stdout (see
//! `profiles/worker.py`). One request per line, one answer per request, in order.
//!
//! ```text
//! worker -> front end   ready <json>                 once, when every graph is captured
//! front end -> worker   q <id> <batch>               run one query batch
//! worker -> front end   d <id> <service_us> <ran>    done: service time on the worker's clock
//!                                                    and the batch size it ran (padding)
//! front end -> worker   x                            exit (end of input does the same)
//! worker -> front end   e <id or -> <message>        a failure; the worker then exits
//! ```
//!
//! Pipes keep the front end's cost per query to one `write` of about 16 bytes; the answer is
//! read by one thread per worker, which stamps the time the line arrived.

use std::fmt::Write as _;

/// Protocol version the front end speaks (the `protocol` field of `ready`).
pub const VERSION: u32 = 1;

/// A message from a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum FromWorker {
    /// Setup done; the JSON describes the worker (engine, captured batches, device).
    Ready(serde_json::Value),
    /// Query `id` done after `service_us` microseconds, run as a batch of `ran`.
    Done {
        /// The query's id.
        id: u64,
        /// Service time measured by the worker, µs.
        service_us: f64,
        /// Batch size actually run (the next captured size up).
        ran: u32,
    },
    /// The worker failed (on query `id`, if any) and exits.
    Error {
        /// The query it failed on.
        id: Option<u64>,
        /// What it said.
        message: String,
    },
}

/// Parses one line from a worker. `Err` holds a description of what is wrong.
pub fn parse(line: &str) -> Result<FromWorker, String> {
    let line = line.trim_end();
    let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
    match tag {
        "ready" => serde_json::from_str(rest)
            .map(FromWorker::Ready)
            .map_err(|e| format!("bad ready message: {e}")),
        "d" => {
            let mut it = rest.split(' ');
            let (Some(id), Some(us), Some(ran), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(format!("bad done message `{line}`"));
            };
            let id = id
                .parse()
                .map_err(|_| format!("bad query id in `{line}`"))?;
            let service_us: f64 = us
                .parse()
                .map_err(|_| format!("bad service time in `{line}`"))?;
            if !(service_us.is_finite() && service_us >= 0.0) {
                return Err(format!("bad service time in `{line}`"));
            }
            let ran = ran.parse().map_err(|_| format!("bad batch in `{line}`"))?;
            Ok(FromWorker::Done {
                id,
                service_us,
                ran,
            })
        }
        "e" => {
            let (id, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            Ok(FromWorker::Error {
                id: id.parse().ok(),
                message: msg.to_string(),
            })
        }
        _ => Err(format!(
            "unexpected line `{}`",
            line.chars().take(120).collect::<String>()
        )),
    }
}

/// The request line for query `id` of `batch` samples, appended to `buf`.
pub fn request(buf: &mut String, id: u64, batch: u32) {
    let _ = writeln!(buf, "q {id} {batch}");
}

/// The exit request.
pub const EXIT: &str = "x\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_message() {
        assert_eq!(
            parse("d 17 1234.5 8\n").unwrap(),
            FromWorker::Done {
                id: 17,
                service_us: 1234.5,
                ran: 8
            }
        );
        match parse("ready {\"engine\":\"fake\",\"protocol\":1}").unwrap() {
            FromWorker::Ready(v) => assert_eq!(v["protocol"], 1),
            m => panic!("{m:?}"),
        }
        assert_eq!(
            parse("e 3 CUDA error: out of memory").unwrap(),
            FromWorker::Error {
                id: Some(3),
                message: "CUDA error: out of memory".into()
            }
        );
        assert_eq!(
            parse("e - startup failed").unwrap(),
            FromWorker::Error {
                id: None,
                message: "startup failed".into()
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "d 1 2",
            "d x 1 1",
            "d 1 -5 1",
            "d 1 nan 1",
            "hello",
            "ready {",
            "d 1 2 3 4",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_lines() {
        let mut s = String::new();
        request(&mut s, 5, 32);
        assert_eq!(s, "q 5 32\n");
    }
}
