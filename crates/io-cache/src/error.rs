//! The crate's one error type.

use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// No cache directory could be determined.
    #[error("cannot determine the W&B cache directory: set WANDB_CACHE_DIR (neither it nor HOME is set)")]
    NoCacheDir,
    /// Bytes offered to the cache do not hash to the digest they were offered under.
    #[error("digest mismatch for cache object {expected}: the data hashes to {actual} ({algorithm})")]
    DigestMismatch {
        /// The digest the data was offered under.
        expected: String,
        /// What it hashes to.
        actual: String,
        /// The algorithm.
        algorithm: artifact_core::DigestAlgorithm,
    },
    /// A body offered to the cache is not as long as announced (a cut transfer, or an object that changed).
    #[error("size mismatch for {object}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What the body is of (a URL).
        object: String,
        /// The size announced.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },
    /// A size such as `10GB` could not be parsed.
    #[error("invalid size {text:?}: expected a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")]
    InvalidSize {
        /// The text given.
        text: String,
    },
    /// A digest could not be turned into a cache path.
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}
