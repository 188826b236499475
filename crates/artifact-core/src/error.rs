//! The crate's one error type.

use std::path::PathBuf;

use crate::pyrepr::py_repr;

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, validating or parsing an artifact.
///
/// Where the Python SDK has an error for the same condition, the message starts with the SDK's exact
/// text, so that users of both see the same words; the offending value is always named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The artifact name has characters outside `[a-zA-Z0-9_\-.]` or is empty.
    #[error(
        "Artifact name may only contain alphanumeric characters, dashes, underscores, and dots. Invalid name: {}",
        py_repr(.name)
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The artifact name is `.` or `..`, which name directories (the SDK lets them through; a store or server
    /// holding one could not list its project).
    #[error("Artifact name {} is not allowed: '.' and '..' name directories", py_repr(.name))]
    DotName {
        /// The rejected name.
        name: String,
    },
    /// The artifact name is longer than 128 characters.
    #[error("Artifact name is longer than 128 characters: {}", truncated_name(.name))]
    NameTooLong {
        /// The rejected name.
        name: String,
    },
    /// The artifact type is reserved for W&B's internal use (`wandb-*`, `job`, …).
    #[error("Artifact type {} is reserved for internal use. Please use a different type.", py_repr(.artifact_type))]
    ReservedType {
        /// The rejected type.
        artifact_type: String,
    },
    /// The artifact type breaks the server's rules (characters, length, emptiness).
    #[error("Invalid artifact type {}: {reason}", py_repr(.artifact_type))]
    InvalidType {
        /// The rejected type.
        artifact_type: String,
        /// Which rule it breaks, in the SDK's words where it has them.
        reason: String,
    },
    /// An alias breaks the rules for aliases.
    #[error("Invalid alias {}: {reason}", py_repr(.alias))]
    InvalidAlias {
        /// The rejected alias.
        alias: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A tag breaks the rules for tags.
    #[error("Invalid tag {}: {reason}", py_repr(.tag))]
    InvalidTag {
        /// The rejected tag.
        tag: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A project, registry or entity name breaks the rules for such names.
    #[error("Invalid {kind} name {}: {reason}", py_repr(.name))]
    InvalidScopeName {
        /// `"project"` or `"entity"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// An artifact address such as `entity/project/name:alias` could not be parsed.
    #[error("Invalid artifact path: {} ({reason})", py_repr(.path))]
    InvalidArtifactAddress {
        /// The rejected address.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A logical path inside the artifact is empty, absolute, or climbs out with `..`.
    #[error("Invalid artifact path: {}", py_repr(.path))]
    InvalidPath {
        /// The rejected path, as given.
        path: String,
    },
    /// Metadata is not a JSON object, or holds a value JSON cannot carry.
    #[error("Invalid artifact metadata: {reason}")]
    InvalidMetadata {
        /// What is wrong, naming the offending key or token.
        reason: String,
    },
    /// Metadata has more than 100 top-level keys.
    #[error("Artifact must not have more than 100 metadata keys. (got {count})")]
    TooManyMetadataKeys {
        /// How many keys were given.
        count: usize,
    },
    /// The same logical path was added twice with different contents.
    #[error("Cannot add the same path twice: {}", py_repr(.path))]
    DuplicatePath {
        /// The logical path.
        path: String,
    },
    /// `new_file` was asked for a name that is already in the artifact.
    #[error("File with name {} already exists in the artifact", py_repr(.path))]
    FileExists {
        /// The logical path.
        path: String,
    },
    /// `add_file` was given something that is not a regular file.
    #[error("Path is not a file: {}", py_repr_path(.path))]
    NotAFile {
        /// The local path.
        path: PathBuf,
    },
    /// `add_dir` was given something that is not a directory.
    #[error("Path is not a directory: {}", py_repr_path(.path))]
    NotADirectory {
        /// The local path.
        path: PathBuf,
    },
    /// A directory walk met a symbolic link that points nowhere.
    #[error("dangling symbolic link {}: its target does not exist", .path.display())]
    DanglingSymlink {
        /// The link.
        path: PathBuf,
    },
    /// A directory walk met a symbolic link that points back to one of its own ancestors.
    #[error("symbolic link {} points to its ancestor {}; following it would never end", .path.display(), .ancestor.display())]
    SymlinkCycle {
        /// The link.
        path: PathBuf,
        /// The ancestor directory it resolves to.
        ancestor: PathBuf,
    },
    /// A directory walk met a FIFO, socket or device, which cannot be hashed or stored.
    #[error("{} is a {kind}, not a regular file; only regular files can be added", .path.display())]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A file name is not valid UTF-8, so it cannot be a W&B logical path.
    #[error("file name {} is not valid UTF-8; W&B paths must be UTF-8", .path.display())]
    NonUtf8Path {
        /// The offending path (lossily displayed).
        path: PathBuf,
    },
    /// A file changed while it was being hashed or stored.
    #[error("{} changed while it was being read (expected {expected} bytes, found {actual}); retry once it is stable", .path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Size when the read started.
        expected: u64,
        /// Size observed afterwards.
        actual: u64,
    },
    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done (`"read"`, `"open"`, …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A reference was not given as a URI.
    #[error("References must be URIs. To reference a local file, use file:// (got {})", py_repr(.uri))]
    NotAUri {
        /// The rejected string.
        uri: String,
    },
    /// A reference with a scheme nobody can checksum was given without a `name`.
    #[error("You must pass name=\"<entry_name>\" when tracking references with unknown schemes. ref: {uri}")]
    ReferenceNeedsName {
        /// The reference.
        uri: String,
    },
    /// A reference expanded to more objects than `max_objects` allows.
    #[error("Exceeded {max_objects} objects tracked, pass max_objects to add_reference (reference {uri})")]
    TooManyObjects {
        /// The limit.
        max_objects: u64,
        /// The reference.
        uri: String,
    },
    /// A `file://` reference points at nothing.
    #[error("file reference {uri}: no file or directory at {}", .path.display())]
    ReferenceNotFound {
        /// The reference as given.
        uri: String,
        /// The local path the URI names.
        path: PathBuf,
    },
    /// A reference needs a network resolver (for example `http(s)://` with checksums) and none was given.
    #[error(
        "references with scheme {scheme:?} need a resolver that can reach the network ({uri}); use add_reference_with and a resolver such as wandb_api::HttpReferenceResolver, or pass checksum = false"
    )]
    ResolverRequired {
        /// The scheme.
        scheme: String,
        /// The reference.
        uri: String,
    },
    /// A reference resolver failed.
    #[error("cannot resolve reference {uri}: {source}")]
    Reference {
        /// The reference.
        uri: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A manifest document is not valid JSON or lacks required fields.
    #[error("Invalid manifest format. {reason}")]
    ManifestFormat {
        /// What is wrong.
        reason: String,
    },
    /// A manifest has a version other than 1.
    #[error("Invalid manifest version. (got {version})")]
    ManifestVersion {
        /// The version found.
        version: String,
    },
    /// A digest is not the base64 (or hex) form it should be.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The rejected digest.
        digest: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The digest algorithm was changed after files were added.
    #[error("the digest algorithm of artifact {name:?} cannot change once it has entries")]
    AlgorithmLocked {
        /// The artifact.
        name: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path and the action that failed.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

fn truncated_name(name: &str) -> String {
    let head: String = name.chars().take(128).collect();
    format!("'{head} ...'")
}

fn py_repr_path(path: &std::path::Path) -> String {
    py_repr(&path.to_string_lossy())
}
