//! The server's error type.

/// What can go wrong starting or running the server. Requests never fail the server: each is answered, with the
/// store's error shaped as the W&B API shapes it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be bound (in use, not permitted, …).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting connections failed.
    #[error("serving on {addr} failed: {source}")]
    Serve {
        /// The address served.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A users file that cannot be used.
    #[error("{source_name}: {reason}")]
    Users {
        /// The file (or "the users file" for text given directly).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server would serve the network without asking for keys.
    #[error("refusing to serve {addr} without keys: give --users FILE or --api-key KEY, or listen on loopback")]
    OpenOnNetwork {
        /// The address asked for.
        addr: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] wandb_store::Error),
}

/// The server's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
