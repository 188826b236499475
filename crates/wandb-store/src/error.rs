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
    /// There is no store where one was to be read ([`crate::EmbeddedStore::open_existing`]): a command that only
    /// reads never creates one, so a mistyped path is not mistaken for an empty store.
    #[error(
        "no embedded store at {} (nothing was ever logged there; check WANDB_BASE_URL or --base-url)",
        .path.display()
    )]
    NoStore {
        /// The directory that holds no store.
        path: PathBuf,
    },
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
    /// A run's logging data (a `file_stream` request, a history row) is malformed.
    #[error("invalid run stream: {reason}")]
    InvalidRunStream {
        /// What is wrong.
        reason: String,
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
    /// A time to live that is neither a positive duration, `inherit` nor `none`.
    #[error(
        "invalid time to live {value:?}: give a positive duration (3600, 90s, 45m, 12h, 30d, 2w), `inherit` or `none`"
    )]
    InvalidTtl {
        /// What was given.
        value: String,
    },
    /// `latest` and `vN` are the store's to assign, not the user's to add or remove.
    #[error("alias {alias:?} cannot be added or removed: `latest` and version aliases (vN) are assigned by the store")]
    AliasNotEditable {
        /// The alias.
        alias: String,
    },
    /// A version with custom aliases is deleted without `delete_aliases` (the SDK refuses it too).
    #[error(
        "cannot delete {name}: it has aliases {aliases:?}; remove them first, or delete with delete_aliases (`--delete-aliases`)"
    )]
    VersionHasAliases {
        /// `entity/project/name:vN`.
        name: String,
        /// Its custom aliases.
        aliases: Vec<String>,
    },
    /// Unlinking a version that is not seen through a portfolio.
    #[error("{name} is not a linked artifact and cannot be unlinked; to delete it, use delete instead")]
    NotLinked {
        /// `entity/project/name:vN`.
        name: String,
    },
    /// A TTL set through a link (the SDK's rule).
    #[error(
        "Cannot set TTL for link artifact. Unlink the artifact first then set the TTL for the source artifact ({name})"
    )]
    TtlOnLink {
        /// `entity/project/name:vN`.
        name: String,
    },
    /// No registry of that name in the entity.
    #[error("registry {name:?} not found in {entity} (its project would be wandb-registry-{name})")]
    RegistryNotFound {
        /// The organization's entity.
        entity: String,
        /// The registry name, without the prefix.
        name: String,
    },
    /// A registry created, or renamed, onto one that exists.
    #[error("registry {name:?} already exists in {entity}")]
    RegistryExists {
        /// The organization's entity.
        entity: String,
        /// The registry name, without the prefix.
        name: String,
    },
    /// A version of a type the registry does not accept is linked into it.
    #[error("registry {registry:?} does not accept artifacts of type {artifact_type:?} (it accepts {accepted:?})")]
    TypeNotInRegistry {
        /// The registry name.
        registry: String,
        /// The version's type.
        artifact_type: String,
        /// What it accepts.
        accepted: Vec<String>,
    },
    /// A collection renamed to a name already in use in its project.
    #[error("cannot rename to {name}: a collection or portfolio of that name exists")]
    CollectionNameTaken {
        /// `entity/project/name`.
        name: String,
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
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}
