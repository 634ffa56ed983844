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

    /// An origin at the line holding byte `offset` of `text`. Counting lines ourselves is
    /// reliable for both LF and CRLF files (the csv crate's own line count is not for CRLF).
    pub fn at_byte(file: impl Into<PathBuf>, text: &str, offset: u64) -> Self {
        let mut end = (offset as usize).min(text.len());
        // In CRLF files a record's recorded start can sit on the previous line's '\n'.
        if text.as_bytes().get(end) == Some(&b'\n') {
            end += 1;
        }
        Self::at(
            file,
            text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
        )
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
