//! The crate's one error type.

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
    /// `WANDB_BASE_URL` (or `--base-url`) is not a URL this crate understands.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The rejected URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The base URL names a W&B server where an embedded store was asked for.
    #[error(
        "the base URL {url} names a W&B server, not an embedded store: talk to it with wandb_api::client::WandbClient \
         (or set WANDB_BASE_URL=file:///path/to/store for a store)"
    )]
    ServerBackendUnsupported {
        /// The server URL.
        url: String,
    },
    /// No default location for the embedded store could be determined.
    #[error(
        "cannot determine where to keep the embedded store: set WANDB_BASE_URL=file:///path/to/store (HOME is not set)"
    )]
    NoStoreLocation,
    /// A directory that should hold an embedded store does not, or holds a damaged one.
    #[error("{}: {reason}", .path.display())]
    StoreFormat {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong with it.
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
    #[error("no artifact with id {id:?} in this store")]
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

    /// A link target names a collection of versions, not a portfolio.
    #[error("cannot link into {target}: it is an artifact collection, not a portfolio or registry collection")]
    LinkTargetIsSequence {
        /// `entity/project/name`.
        target: String,
    },

    /// A link target that is not `[[ENTITY/]PROJECT/]COLLECTION`.
    #[error("link target {target:?} is not [[ENTITY/]PROJECT/]COLLECTION")]
    InvalidLinkTarget {
        /// The target as given.
        target: String,
    },

    /// An artifact is logged under a name that is a portfolio (link target) of the project.
    #[error("{name} is a portfolio (a link target); log the artifact under another name and link it there")]
    NameIsPortfolio {
        /// `entity/project/name`.
        name: String,
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
    /// A launch request or spec breaks the SDK's rules.
    #[error("invalid launch spec: {reason}")]
    LaunchSpec {
        /// The rule (the SDK's words).
        reason: String,
    },
    /// A run queue is missing, ambiguous or refused the item.
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
    /// A run's logging data (a `file_stream` request, a history row) is malformed.
    #[error("invalid run stream: {reason}")]
    InvalidRunStream {
        /// What is wrong.
        reason: String,
    },
    /// `resume` forbids what the run's existence requires (the SDK's messages).
    #[error("{message}")]
    ResumeRefused {
        /// The SDK's message.
        message: String,
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
    /// A file changed between being added to the artifact and being stored.
    #[error("{} changed after it was added to the artifact (it now hashes to {actual}, the manifest says {expected}); nothing was logged", .path.display())]
    FileChanged {
        /// The local file.
        path: PathBuf,
        /// The digest in the manifest.
        expected: String,
        /// What the file hashes to now.
        actual: String,
    },
    /// A manifest entry that is not a reference has no local file to store.
    #[error("entry {path:?} has neither a local file nor a reference, so there is nothing to store")]
    EntryWithoutSource {
        /// The logical path.
        path: String,
    },
    /// An object the manifest needs is missing from the store.
    #[error("the store has no object for {path:?} (digest {digest}); the store is damaged")]
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
    /// A reference whose scheme no configured fetcher handles.
    #[error(
        "cannot download reference {path:?} ({reference}): no reference fetcher handles its scheme (file://, s3://, gs://, Azure blob and http(s):// URLs can be downloaded with the object-references and http-references features)"
    )]
    UnsupportedReference {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
    },
    /// A referenced file is gone.
    #[error(
        "reference {path:?} points to {reference}, which does not exist (pass allow_missing_references to skip it)"
    )]
    ReferenceMissing {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
    },
    /// A referenced object is no longer the one the artifact recorded.
    #[error(
        "reference {path:?} points to {reference}, which changed since it was added: the artifact recorded ETag {expected}, the object now has {found}"
    )]
    ReferenceChanged {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
        /// The digest (ETag) the manifest recorded.
        expected: String,
        /// The ETag the object has now.
        found: String,
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
}
