//! The crate's one error type.

use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Dagster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bootstrap param (`DAGSTER_PIPES_CONTEXT`, `DAGSTER_PIPES_MESSAGES` or their flags) is malformed.
    #[error("invalid Dagster Pipes param {name}: {reason}")]
    InvalidParam {
        /// Where the param came from (the env var or the flag).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// One of the two bootstrap params is present and the other is not.
    #[error("Dagster Pipes param {missing} is missing while {present} is set")]
    MissingParam {
        /// The absent one.
        missing: String,
        /// The one that is set.
        present: String,
    },
    /// The context the orchestrator passed does not have the expected shape.
    #[error("invalid Dagster Pipes context: {reason}")]
    InvalidContext {
        /// What is wrong with it.
        reason: String,
    },
    /// An accessor's precondition does not hold (no asset, several assets, no partition), as in Python's
    /// `dagster_pipes`.
    #[error("{0}")]
    ContextAccess(String),
    /// `get_extra` of a key the orchestrator did not pass.
    #[error("Extra {key:?} is undefined. Extras must be provided by user. Available extras: {available:?}")]
    MissingExtra {
        /// The key asked for.
        key: String,
        /// The keys present.
        available: Vec<String>,
    },
    /// A second materialization of the same asset in one session.
    #[error("Asset {asset_key:?} has already been materialized, so no additional data can be reported for it.")]
    DuplicateMaterialization {
        /// The asset key (escaped form).
        asset_key: String,
    },
    /// A message after `closed`.
    #[error("the Dagster Pipes session is closed; {method} was not sent")]
    Closed {
        /// The method that was not sent.
        method: String,
    },
    /// A filesystem or stream operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or stream involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}
