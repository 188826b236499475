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
    /// A dagster-wandb rule was broken (`WandbArtifactsIOManagerError`): the message is dagster-wandb's own, so
    /// a Python and a Rust step fail alike.
    #[error("{0}")]
    IoManager(String),
    /// A configuration value has the wrong type or form, or a key is unknown.
    #[error("invalid configuration {key}: {reason}")]
    InvalidConfig {
        /// The key, with its path (`wandb_artifact_configuration.add_files[1].local_path`).
        key: String,
        /// What is wrong, with the value given.
        reason: String,
    },
    /// `wandb_config.entity` or `.project` is the empty string.
    #[error("(dagster_wandb) An empty string was provided for the '{property}' property of the 'wandb_config'.")]
    EmptyConfigValue {
        /// `entity` or `project`.
        property: String,
    },
    /// An input's artifact could not be found (or read).
    #[error(
        "The artifact you're attempting to download might not exist, or you might have forgotten to include the 'name' property in the 'wandb_artifact_configuration' settings. ({uri}: {source})"
    )]
    ArtifactMissing {
        /// `entity/project/name:alias`.
        uri: String,
        /// Why it could not be found.
        #[source]
        source: wandb_api::Error,
    },
    /// `get` names no object of the artifact.
    #[error(
        "the artifact {uri} has no object named {name:?} (looked for an entry {name:?} or {name:?} + \".<type>.json\")"
    )]
    NoSuchObject {
        /// The artifact.
        uri: String,
        /// The name asked for.
        name: String,
    },
    /// `get_path` names no file of the artifact.
    #[error("the artifact {uri} has no file or directory {path:?}")]
    NoSuchPath {
        /// The artifact.
        uri: String,
        /// The path asked for.
        path: String,
    },
    /// The W&B backend (embedded store or server) failed.
    #[error(transparent)]
    Wandb(#[from] wandb_api::Error),
    /// A W&B Launch operation failed.
    #[cfg(feature = "launch")]
    #[error(transparent)]
    Launch(#[from] wandb_launch::Error),
    /// Building the artifact failed (a bad name, a missing file, …).
    #[error(transparent)]
    Artifact(#[from] artifact_core::Error),
    /// Serializing an output or reading one back failed.
    #[error(transparent)]
    Serialization(#[from] serde_modules::Error),
    /// Sweeping the local storage failed.
    #[error(transparent)]
    Cache(#[from] io_cache::Error),
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
