//! Errors for everything a user hands to migopt. Each variant names where the bad input is
//! (file, line, field) because the person reading the message has to go and fix it.

use std::path::PathBuf;
use thiserror::Error;

/// Where a value came from: a file (or an embedded source), and a 1-based line if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File path, or a label such as `<embedded default>` for shipped data.
    pub file: PathBuf,
    /// 1-based line number, when the format has lines.
    pub line: Option<usize>,
}

impl Origin {
    /// An origin without a line.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            line: None,
        }
    }
    /// An origin at a line.
    pub fn at(file: impl Into<PathBuf>, line: usize) -> Self {
        Self {
            file: file.into(),
            line: Some(line),
        }
    }
}

/// The start of every line of a text, so that a byte offset becomes a line number in
/// O(log lines): built once per file in one pass, where recounting newlines from byte 0 for
/// every record would make reading a file quadratic in its length.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of the first byte after each `\n`.
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    /// Indexes `text` (one linear pass).
    pub fn new(text: &str) -> Self {
        let starts = text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        Self {
            starts,
            len: text.len(),
        }
    }

    /// The 1-based line holding byte `offset`. Counting lines ourselves is reliable for both
    /// LF and CRLF files (the csv crate's own line count is not for CRLF); in CRLF files a
    /// record's recorded start can sit on the previous line's `\n`, which counts as the
    /// next line.
    pub fn line(&self, offset: u64) -> usize {
        let at = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len);
        // Lines before `at`, plus one more when `at` is itself a newline.
        self.starts.partition_point(|&s| s <= at + 1) + 1
    }

    /// The 1-based line of byte `offset` by newlines strictly before it (a `\n` belongs
    /// to the line it ends), for parsers whose offsets are exact, such as TOML's spans.
    pub fn line_of_byte(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset.min(self.len)) + 1
    }

    /// An origin in `file` at the line holding byte `offset`.
    pub fn origin(&self, file: impl Into<PathBuf>, offset: u64) -> Origin {
        Origin::at(file, self.line(offset))
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}", self.file.display(), l),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Every way input can be wrong, or a request impossible. The CLI maps all of these to
/// exit code 2 (bad input), except [`Error::Internal`], which exits 1 (see
/// [`Error::is_internal`]).
#[derive(Debug, Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file larger than migopt reads for its kind (see [`crate::limits::FileCap`]).
    #[error(
        "{path}: larger than {} MiB, the most migopt reads from {what} (see README, Limits)",
        .bytes >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, bytes.
        bytes: u64,
        /// The kind of file.
        what: &'static str,
    },
    /// A field of a record is missing, unparsable or out of range.
    #[error("{origin}: field `{field}`: {message}")]
    Field {
        /// File and line.
        origin: Origin,
        /// The column or key.
        field: String,
        /// What is wrong, in user terms.
        message: String,
    },
    /// A file is malformed as a whole (bad CSV quoting, TOML syntax, missing header).
    #[error("{origin}: {message}")]
    Syntax {
        /// File and line.
        origin: Origin,
        /// What the parser said.
        message: String,
    },
    /// A GPU name that is not in the catalogue.
    #[error("unknown GPU `{name}` (known: {known})")]
    UnknownGpu {
        /// What was asked for.
        name: String,
        /// The catalogue's names, comma separated.
        known: String,
    },
    /// A profile name that this GPU does not have.
    #[error("GPU {gpu} has no MIG profile `{profile}` (it has: {known})")]
    UnknownProfile {
        /// The GPU.
        gpu: String,
        /// What was asked for.
        profile: String,
        /// The GPU's profiles, comma separated.
        known: String,
    },
    /// A set of MIG instances that NVIDIA's placement rules forbid.
    #[error("invalid MIG placement on {gpu}: {message}")]
    InvalidPlacement {
        /// The GPU kind.
        gpu: String,
        /// Which rule is broken, naming the instances.
        message: String,
    },
    /// The request cannot be met, explained in user terms (which model, which batch size).
    #[error("{0}")]
    Infeasible(String),
    /// Anything else the user must fix, with enough context to find it.
    #[error("{0}")]
    Invalid(String),
    /// Something broke inside migopt (a solver failure, a broken invariant): not the user's
    /// input. The CLI exits 1 for it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for a field error.
    pub fn field(origin: Origin, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Field {
            origin,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether this is migopt's fault (exit 1) rather than the input's (exit 2).
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal(_))
    }

    /// Shorthand for an internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// Shorthand for an I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with migopt's input error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_lf_and_crlf_lines() {
        let t = "a,b\nc,d\n\ne\n";
        let ix = LineIndex::new(t);
        let naive = |o: usize| {
            t.as_bytes()[..o.min(t.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        };
        for o in 0..=t.len() + 3 {
            let want = if t.as_bytes().get(o) == Some(&b'\n') {
                naive(o + 1)
            } else {
                naive(o)
            };
            assert_eq!(ix.line(o as u64), want, "offset {o}");
        }
        let crlf = LineIndex::new("h\r\nx\r\ny\r\n");
        // A record start recorded on the previous line's `\n` belongs to the next line.
        assert_eq!(crlf.line(2), 2);
        assert_eq!(crlf.line(3), 2);
        assert_eq!(crlf.line(5), 3);
        assert_eq!(crlf.origin("f.csv", u64::MAX).to_string(), "f.csv:4");
    }
}
