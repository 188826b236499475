//! The crate's one error type.

use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong launching, queueing or running a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A backend error (GraphQL, HTTP, artifacts, runs).
    #[error(transparent)]
    Api(#[from] wandb_api::Error),
    /// An artifact-model error (a job address that does not parse, a draft that cannot be built).
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    /// A launch request or spec breaks the SDK's rules.
    #[error("invalid launch spec: {reason}")]
    LaunchSpec {
        /// The rule (the SDK's words).
        reason: String,
    },
    /// A run queue is missing, ambiguous or refused the item, or the backend has no queues.
    #[error("{reason}")]
    LaunchQueue {
        /// What went wrong (the SDK's words).
        reason: String,
    },
    /// A launched item failed (or was removed) before its run finished.
    #[error("run queue item {item_id} ended in state {state} without a finished run")]
    LaunchFailed {
        /// The item.
        item_id: String,
        /// Its state.
        state: String,
    },
    /// Waiting for a launched run took longer than allowed.
    #[error("the run of queue item {item_id} did not finish within {waited:.0?}")]
    LaunchTimeout {
        /// The item.
        item_id: String,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// The server's answer lacks something the protocol requires.
    #[error("unexpected answer to {operation}: {reason}")]
    Protocol {
        /// The operation.
        operation: String,
        /// What was wrong.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
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
