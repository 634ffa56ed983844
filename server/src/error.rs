//! What can go wrong while serving, split by whose fault it is.

use thiserror::Error;

/// A serving failure.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Bad input: plan, scenario, trace or flags (exit 2).
    #[error(transparent)]
    Input(#[from] migopt_models::Error),
    /// A worker died, hung, or broke the protocol (exit 1); names its instance.
    #[error("worker of {instance} {message}")]
    Worker {
        /// The instance (`GPU 0 3g.71gb@4 bert-base`).
        instance: String,
        /// What happened.
        message: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The MPS daemon could not be started.
    #[error("MPS: {0}")]
    Mps(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServeError {
    /// Whether the user's input is at fault (exit 2) rather than the system (exit 1).
    pub fn is_input(&self) -> bool {
        matches!(self, ServeError::Input(e) if !e.is_internal())
    }
}
