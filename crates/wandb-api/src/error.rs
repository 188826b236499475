//! The crate's one error type.
//!
//! Conditions both backends can meet (an unknown artifact, a type conflict, …) have one variant each, whichever
//! backend met them, so callers match them without knowing which backend they talk to. What only the embedded
//! store can report (a damaged record, a link target that is a sequence) stays the store's error, in
//! [`Error::Store`].

use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a backend or downloading an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An artifact-model error (validation, hashing, manifest parsing).
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    /// A content-cache error.
    #[error(transparent)]
    Cache(#[from] io_cache::Error),
    /// A referenced object could not be opened, is gone, or changed.
    #[error(transparent)]
    Reference(#[from] wandb_references::Error),
    /// What only the embedded store reports: damaged records, portfolio rules, bad stream data.
    #[error(transparent)]
    Store(wandb_store::Error),
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
    /// A setting read from the environment has a value it cannot take.
    #[error("invalid {name}={value:?}: {reason}")]
    InvalidSetting {
        /// The setting (an environment variable's name).
        name: String,
        /// The value given.
        value: String,
        /// What it should be.
        reason: String,
    },
    /// `WANDB_BASE_URL` (or `--base-url`) is not a URL this crate understands.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The rejected URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The base URL names a W&B server, and this build has no W&B client.
    #[error(
        "the base URL {url} names a W&B server, but this build of wandb-api has no W&B client (enable its `client` feature), \
         or set WANDB_BASE_URL=file:///path/to/store for an embedded store"
    )]
    ClientNotBuilt {
        /// The server URL.
        url: String,
    },
    /// No default location for the embedded store could be determined.
    #[error(
        "cannot determine where to keep the embedded store: set WANDB_BASE_URL=file:///path/to/store (HOME is not set)"
    )]
    NoStoreLocation,
    /// The async runtime could not be started or a blocking task did not finish.
    #[error("async runtime: {reason}")]
    Runtime {
        /// What failed.
        reason: String,
    },
    /// The project does not exist.
    #[error("project '{project}' not found under entity '{entity}'")]
    ProjectNotFound {
        /// The entity.
        entity: String,
        /// The project.
        project: String,
    },
    /// No artifact version matches the name and alias.
    #[error("artifact membership '{name}' not found in '{entity}/{project}'")]
    ArtifactNotFound {
        /// The entity.
        entity: String,
        /// The project.
        project: String,
        /// `collection:alias` as asked for.
        name: String,
    },
    /// No artifact has the id.
    #[error("no artifact with id {id:?}")]
    ArtifactIdNotFound {
        /// The id.
        id: String,
    },
    /// A collection of that name already exists with another type.
    #[error("Artifact {name} already exists with type '{existing}'; cannot create another with type '{requested}'")]
    TypeConflict {
        /// The collection.
        name: String,
        /// Its type.
        existing: String,
        /// The type asked for.
        requested: String,
    },
    /// The run does not exist.
    #[error("run '{run_id}' not found in '{entity}/{project}'")]
    RunNotFound {
        /// The entity.
        entity: String,
        /// The project.
        project: String,
        /// The run id.
        run_id: String,
    },
    /// A run with that id already exists.
    #[error("run '{run_id}' already exists in '{entity}/{project}'")]
    RunExists {
        /// The entity.
        entity: String,
        /// The project.
        project: String,
        /// The run id.
        run_id: String,
    },
    /// A run id breaks the rules for run ids.
    #[error("invalid run id {run_id:?}: run ids are 1 to 128 characters from [A-Za-z0-9_.-]")]
    InvalidRunId {
        /// The rejected id.
        run_id: String,
    },
    /// A part was upserted to a distributed artifact that is already finished (the SDK silently loses it).
    #[error(
        "artifact {name:?} with distributed id {distributed_id:?} is already finished: this part would be lost, so it was not uploaded"
    )]
    DistributedArtifactFinished {
        /// The collection.
        name: String,
        /// The distributed id.
        distributed_id: String,
    },
    /// `resume` forbids what the run's existence requires (the SDK's messages).
    #[error("{message}")]
    ResumeRefused {
        /// The SDK's message.
        message: String,
    },
    /// A run's writer stopped, or was given data it cannot send.
    #[error("run {run_id}: {reason}")]
    RunWriter {
        /// The run.
        run_id: String,
        /// What happened.
        reason: String,
    },
    /// An object the manifest needs is missing from the backend.
    #[error("the backend has no object for {path:?} (digest {digest})")]
    MissingObject {
        /// The logical path.
        path: String,
        /// Its digest.
        digest: String,
    },
    /// A manifest path would land outside the download root.
    #[error("refusing to download {path:?}: {reason}; nothing was written")]
    UnsafeManifestPath {
        /// The manifest path.
        path: String,
        /// Why it is unsafe.
        reason: String,
    },
    /// Something on disk is in the way of a download.
    #[error("cannot download into {}: {reason}; nothing was written", .path.display())]
    PathConflict {
        /// The path in the way.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Downloaded or cached bytes do not match the manifest.
    #[error("digest mismatch for {path:?}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The logical path.
        path: String,
        /// The manifest digest.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A manifest larger than [`crate::client::ClientOptions::max_manifest_bytes`].
    #[error(
        "the manifest of {version} is larger than {limit} bytes, the most this client reads (DAGSTER_WANDB_MAX_MANIFEST_BYTES, ClientOptions::max_manifest_bytes)"
    )]
    ManifestTooLarge {
        /// The version.
        version: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A manifest that does not hash to its version's digest.
    #[error(
        "the manifest the server gave for {version} does not hash to its digest {expected} (it hashes to {actual}); refusing it"
    )]
    ManifestMismatch {
        /// The version.
        version: String,
        /// The version's digest.
        expected: String,
        /// The digest the manifest hashes to.
        actual: String,
    },
    /// A body longer than the manifest says: reading stopped one byte past the entry's size.
    #[error("the body of {path:?} is longer than the {expected} bytes its manifest entry has")]
    BodyTooLong {
        /// The logical path.
        path: String,
        /// The entry's size.
        expected: u64,
    },
    /// A path asked for is not in the artifact.
    #[error("{artifact} has no file or directory {path:?}")]
    NoSuchPath {
        /// `name:vN`.
        artifact: String,
        /// The path asked for.
        path: String,
    },
    /// The server answered a GraphQL operation with errors.
    #[error("W&B operation {operation} failed: {message}")]
    Graphql {
        /// The operation name.
        operation: String,
        /// The server's messages, joined.
        message: String,
    },
    /// The server answered with a status that is not retried, or kept failing until retries ran out.
    #[error("{method} {url} answered {status}: {body}")]
    HttpStatus {
        /// The method.
        method: String,
        /// The URL, without query string (which may hold credentials).
        url: String,
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The server's answer lacks something the protocol requires.
    #[error("unexpected answer to {operation}: {reason}")]
    Protocol {
        /// The operation or request.
        operation: String,
        /// What was wrong.
        reason: String,
    },
    /// No attempt could connect to the server (refused, unknown name, TLS to a plain-HTTP port) within the
    /// retry policy's connect deadline.
    #[error(
        "cannot connect to {url}: {reason} ({attempts} attempts over {seconds:.0} s); is the server running and the \
         URL right (WANDB_BASE_URL, --base-url)?"
    )]
    Unreachable {
        /// The URL, without query string.
        url: String,
        /// The last attempt's failure.
        reason: String,
        /// Attempts made.
        attempts: u32,
        /// Seconds since the first.
        seconds: f64,
    },
    /// An HTTP request failed.
    #[error("HTTP request to {url} failed: {reason}")]
    Http {
        /// The URL, without query string (which may hold credentials).
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// True for the "does not exist" kinds: no such project, artifact, id or run.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ProjectNotFound { .. }
                | Error::ArtifactNotFound { .. }
                | Error::ArtifactIdNotFound { .. }
                | Error::RunNotFound { .. }
        )
    }
}

/// The store's errors, with the kinds both backends share mapped to this crate's variants.
impl From<wandb_store::Error> for Error {
    fn from(e: wandb_store::Error) -> Self {
        use wandb_store::Error as S;
        match e {
            S::Core(e) => Error::Core(e),
            S::Cache(e) => Error::Cache(e),
            S::Io { action, path, source } => Error::Io { action, path, source },
            S::ProjectNotFound { entity, project } => Error::ProjectNotFound { entity, project },
            S::ArtifactNotFound { entity, project, name } => Error::ArtifactNotFound { entity, project, name },
            S::ArtifactIdNotFound { id } => Error::ArtifactIdNotFound { id },
            S::TypeConflict { name, existing, requested } => Error::TypeConflict { name, existing, requested },
            S::RunNotFound { entity, project, run_id } => Error::RunNotFound { entity, project, run_id },
            S::RunExists { entity, project, run_id } => Error::RunExists { entity, project, run_id },
            S::InvalidRunId { run_id } => Error::InvalidRunId { run_id },
            S::DistributedArtifactFinished { name, distributed_id } => {
                Error::DistributedArtifactFinished { name, distributed_id }
            }
            S::MissingObject { path, digest } => Error::MissingObject { path, digest },
            other => Error::Store(other),
        }
    }
}
