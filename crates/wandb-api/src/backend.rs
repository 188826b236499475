//! The one interface to the places artifacts and runs live: [`Backend`], its option and report types, and
//! [`connect`], the only place that decides between the embedded store and a W&B server.

use std::path::Path;
use std::sync::Arc;

use artifact_core::{Artifact, Manifest, Progress};
use serde_json::{Map, Value};
use wandb_store::{
    ArtifactEdge, ArtifactVersion, Collection, CollectionEdit, ProjectRef, Registry, RegistrySpec, RunOptions,
    RunState, StreamChunk, VersionEdit,
};

use crate::download::{DownloadOptions, DownloadReport};
use crate::error::{Error, Result};
use crate::run::ResumePoint;
use crate::settings::{BaseUrl, Settings};

/// Where artifacts and runs live: the embedded store ([`crate::EmbeddedBackend`]) or a W&B server
/// ([`crate::client::WandbClient`], feature `client`). Every consumer in this workspace — the CLI, the Dagster
/// IO manager, [`crate::run::Run`], the launch agent — works through this trait, so what works on one backend
/// works on the other; [`connect`] picks one from [`Settings`].
///
/// The trait is async and object-safe (`Arc<dyn Backend>`). The embedded store does its file work on the
/// runtime's blocking pool, or, where it borrows a draft or a manifest (logging, downloading), with
/// `tokio::task::block_in_place`, so it never stalls the runtime's other tasks (on a current-thread runtime those
/// two run inline).
/// [`crate::Api`] is the synchronous face over it.
///
/// Names are validated the same way on both backends; the errors both can meet have one variant each
/// ([`Error::ArtifactNotFound`], [`Error::TypeConflict`], …).
///
/// # Cancel safety
/// No method is cancel safe: dropping a future mid-way may leave uploaded bodies unreferenced (never a
/// half-committed version).
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The base URL this backend stands for (`file:///…` or `http(s)://…`).
    fn base_url(&self) -> BaseUrl;

    /// True when each [`Backend::write_run_stream`] is a request worth batching (a server: at most one per
    /// `RunSettings::transmit_interval`); false when it is a cheap local append (`RunSettings::flush_interval`).
    fn batches_run_streams(&self) -> bool {
        false
    }

    /// The W&B client, when this backend is a server (Launch and other server-only operations need it).
    #[cfg(feature = "client")]
    fn as_client(&self) -> Option<&crate::client::WandbClient> {
        None
    }

    /// Logs `artifact` as a new version of its collection in `project` (`run.log_artifact`) — or, when its
    /// digest equals the latest version's, returns that version with `created = false` (the SDK's dedup),
    /// moving only the aliases. The type is checked first: a name has one type.
    ///
    /// # Errors
    /// [`Error::TypeConflict`], invalid aliases or tags, [`Error::RunNotFound`] for a run that does not exist,
    /// files changed since they were added, transport errors.
    async fn log_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        options: &LogOptions,
    ) -> Result<LoggedArtifact>;

    /// Adds this process's part to the distributed artifact `distributed_id` (`run.upsert_artifact`); nothing
    /// is committed until [`Backend::finish_artifact`].
    ///
    /// # Errors
    /// [`Error::DistributedArtifactFinished`] once it was finished (the SDK silently loses such a part), and the
    /// errors of [`Backend::log_artifact`].
    async fn upsert_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<UpsertedPart>;

    /// Adds this process's part (if any) and commits the distributed artifact `distributed_id`: one version
    /// whose manifest is every part's entries (a later part wins on the same path), with `artifact`'s
    /// description and metadata (`run.finish_artifact`).
    ///
    /// # Errors
    /// See [`Backend::upsert_artifact`].
    async fn finish_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<LoggedArtifact>;

    /// The version `selector` names in collection `name` of `project`: `latest`, `vN` or a custom alias. A
    /// portfolio or registry collection resolves too; the result's `linked_from` then names the source.
    ///
    /// # Errors
    /// [`Error::ProjectNotFound`], [`Error::ArtifactNotFound`].
    async fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion>;

    /// The version with id `id`.
    ///
    /// # Errors
    /// [`Error::ArtifactIdNotFound`].
    async fn artifact_by_id(&self, id: &str) -> Result<ArtifactVersion>;

    /// Every version of collection `name` of `project`, oldest first.
    ///
    /// # Errors
    /// [`Error::ProjectNotFound`], [`Error::ArtifactNotFound`] for an unknown collection.
    async fn versions(&self, project: &ProjectRef, name: &str) -> Result<Vec<ArtifactVersion>>;

    /// The collections of `project` — artifact sequences and portfolios (link targets, registry collections
    /// in a `wandb-registry-*` project) — optionally of one type, by name, each with its newest version. An
    /// unknown project has none.
    ///
    /// # Errors
    /// Transport errors, damaged records.
    async fn collections(&self, project: &ProjectRef, artifact_type: Option<&str>) -> Result<Vec<Collection>>;

    /// The artifact types used in `project`, by name. An unknown project has none.
    ///
    /// # Errors
    /// Transport errors, damaged records.
    async fn artifact_types(&self, project: &ProjectRef) -> Result<Vec<String>>;

    /// The manifest of `version` (for a version seen through a portfolio, its source's).
    ///
    /// # Errors
    /// Transport errors, a manifest that does not parse.
    async fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest>;

    /// Downloads `entries` — `version`'s manifest, or part of it (one file, one directory) — into `root`
    /// through the content cache, checking every path first and every byte against its digest (see
    /// [`crate::download()`]).
    ///
    /// # Errors
    /// The errors of [`crate::download()`]; transport errors.
    async fn download(
        &self,
        version: &ArtifactVersion,
        entries: &Manifest,
        root: &Path,
        options: &DownloadOptions,
    ) -> Result<DownloadReport>;

    /// Records that run `run_id` of `project` used `version` (an input edge of the lineage; `run.use_artifact`).
    ///
    /// # Errors
    /// [`Error::RunNotFound`] on the embedded store (a server creates runs it is told about).
    async fn record_use(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()>;

    /// Links `version` into collection `collection` of `target` (`artifact.link`): a portfolio, created on first
    /// use with the version's type, or a registry collection when `target`'s project is `wandb-registry-*`
    /// (whose entity becomes the organisation's). Returns the version as the target sees it.
    ///
    /// # Errors
    /// [`Error::TypeConflict`], invalid names or aliases, link targets that are artifact sequences.
    async fn link(
        &self,
        version: &ArtifactVersion,
        target: &ProjectRef,
        collection: &str,
        aliases: &[String],
    ) -> Result<ArtifactVersion>;

    /// Changes a logged version (`artifact.aliases`/`tags`/`description`/`metadata`/`ttl` then `artifact.save()`):
    /// custom aliases move onto or off it (`latest` and `vN` are not editable), the rest replaces what is stored.
    /// Through a portfolio, aliases are the portfolio's and the rest changes the source (a TTL is refused there).
    /// Returns the version as it is now.
    ///
    /// # Errors
    /// [`Error::Store`] with `AliasNotEditable` or `TtlOnLink`; validation errors; [`Error::ArtifactNotFound`].
    async fn edit(&self, version: &ArtifactVersion, edit: &VersionEdit) -> Result<ArtifactVersion>;

    /// Deletes a version (`artifact.delete(delete_aliases=…)`); through a portfolio only the link goes. Refused
    /// while it holds custom aliases unless `delete_aliases`.
    ///
    /// # Errors
    /// [`Error::Store`] with `VersionHasAliases`; [`Error::ArtifactNotFound`] when it is gone already.
    async fn delete(&self, version: &ArtifactVersion, delete_aliases: bool) -> Result<()>;

    /// Unlinks a version seen through a portfolio or registry collection (`artifact.unlink()`).
    ///
    /// # Errors
    /// [`Error::Store`] with `NotLinked` for a version of its own collection.
    async fn unlink(&self, linked: &ArtifactVersion) -> Result<()>;

    /// Changes collection `name` of `project`: description, tags, name, type (sequences only). Returns it as it
    /// is now.
    ///
    /// # Errors
    /// [`Error::ArtifactNotFound`], a name in use, validation errors.
    async fn edit_collection(&self, project: &ProjectRef, name: &str, edit: &CollectionEdit) -> Result<Collection>;

    /// Deletes collection `name` of `project`: a sequence with every version, a portfolio with every link.
    ///
    /// # Errors
    /// [`Error::ArtifactNotFound`].
    async fn delete_collection(&self, project: &ProjectRef, name: &str) -> Result<()>;

    /// The registries of `entity`'s organisation (on the embedded store, the entity's own `wandb-registry-*`
    /// projects; on a W&B server, its organisation's).
    ///
    /// # Errors
    /// Transport errors; an entity in no organisation on a W&B server.
    async fn registries(&self, entity: &str) -> Result<Vec<Registry>>;

    /// Registry `name` (without the `wandb-registry-` prefix) of `entity`'s organisation.
    ///
    /// # Errors
    /// [`Error::Store`] with `RegistryNotFound`.
    async fn registry(&self, entity: &str, name: &str) -> Result<Registry>;

    /// Creates registry `name` in `entity`'s organisation (`api.create_registry`).
    ///
    /// # Errors
    /// [`Error::Store`] with `RegistryExists`; invalid names and types.
    async fn create_registry(&self, entity: &str, name: &str, spec: &RegistrySpec) -> Result<Registry>;

    /// Changes `registry` (`registry.save()`): description, visibility, accepted types (only added), name.
    ///
    /// # Errors
    /// [`Error::Store`] with `RegistryNotFound` or `RegistryExists` (a rename onto another).
    async fn edit_registry(&self, registry: &Registry, spec: &RegistrySpec) -> Result<Registry>;

    /// Deletes `registry` and every link into it (`registry.delete()`); the linked versions stay.
    ///
    /// # Errors
    /// [`Error::Store`] with `RegistryNotFound`.
    async fn delete_registry(&self, registry: &Registry) -> Result<()>;

    /// The run that logged `version` and the runs that used it.
    ///
    /// # Errors
    /// Transport errors, damaged records.
    async fn lineage(&self, version: &ArtifactVersion) -> Result<Lineage>;

    /// Resumes run `options.id` of `project`, creating it when missing (`wandb.init(resume="allow")`); a name or
    /// tags given replace the stored ones. Returns whether it was created.
    ///
    /// # Errors
    /// [`Error::InvalidRunId`] (an id is required), transport errors.
    async fn resume_run(&self, project: &ProjectRef, options: &RunOptions) -> Result<bool>;

    /// Run `run_id` of `project`: its state, config, summary, history row count, inputs and outputs.
    ///
    /// # Errors
    /// [`Error::RunNotFound`].
    async fn run(&self, project: &ProjectRef, run_id: &str) -> Result<RunInfo>;

    /// The runs of `project`, oldest first. An unknown project has none.
    ///
    /// # Errors
    /// Transport errors, damaged records.
    async fn runs(&self, project: &ProjectRef) -> Result<Vec<RunInfo>>;

    /// The history rows of run `run_id`, in step order.
    ///
    /// # Errors
    /// [`Error::RunNotFound`].
    async fn run_history(&self, project: &ProjectRef, run_id: &str) -> Result<Vec<Map<String, Value>>>;

    /// Where run `run_id` stands for a process resuming it (stream offsets, summary, last step, config), or
    /// `None` when nothing has logged to it yet.
    ///
    /// # Errors
    /// Transport errors, damaged records.
    async fn resume_point(&self, project: &ProjectRef, run_id: &str) -> Result<Option<ResumePoint>>;

    /// Stores one batch of what a run logs (`file_stream`): stream lines at their offsets (a line re-sent
    /// replaces the one at its offset), the summary, and the run's completion.
    ///
    /// # Errors
    /// [`Error::RunNotFound`] on the embedded store, transport errors.
    async fn write_run_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()>;

    /// Replaces run `run_id`'s config with `config` (plain values).
    ///
    /// # Errors
    /// [`Error::RunNotFound`] on the embedded store, transport errors.
    async fn update_run_config(&self, project: &ProjectRef, run_id: &str, config: &Map<String, Value>) -> Result<()>;
}

/// The backend `settings` name: the embedded store for `file://` (created if missing, unless
/// [`Settings::create_store`] is off), a W&B server for
/// `http(s)://` — the one decision between the two in this workspace.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let backend = wandb_api::connect(&wandb_api::Settings::embedded(dir.path()))?;
/// assert!(matches!(backend.base_url(), wandb_api::BaseUrl::Embedded(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The store's opening errors; [`Error::ClientNotBuilt`] for a server URL in a build without the `client`
/// feature; an HTTP client that cannot be built.
pub fn connect(settings: &Settings) -> Result<Arc<dyn Backend>> {
    match &settings.base_url {
        BaseUrl::Embedded(dir) if settings.create_store => Ok(Arc::new(crate::EmbeddedBackend::open(dir)?)),
        BaseUrl::Embedded(dir) => Ok(Arc::new(crate::EmbeddedBackend::open_existing(dir)?)),
        #[cfg(feature = "client")]
        BaseUrl::Server(_) => Ok(Arc::new(crate::client::WandbClient::from_settings(settings)?)),
        #[cfg(not(feature = "client"))]
        BaseUrl::Server(url) => Err(Error::ClientNotBuilt { url: url.clone() }),
    }
}

/// Options of [`Backend::log_artifact`], [`Backend::upsert_artifact`] and [`Backend::finish_artifact`].
///
/// ```
/// let options = wandb_api::LogOptions::default().with_aliases(["best"]).with_run_id("r1");
/// assert_eq!(options.aliases, ["best"]);
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct LogOptions {
    /// Custom aliases for the new version (`latest` is implied and may be repeated).
    pub aliases: Vec<String>,
    /// Tags for the new version (see [`artifact_core::validate_tag`]; duplicates dropped).
    pub tags: Vec<String>,
    /// The run logging the artifact; without one the version has no producer in the lineage.
    pub run_id: Option<String>,
    /// Receives progress in bytes stored or uploaded.
    pub progress: Option<Arc<dyn Progress>>,
}

impl LogOptions {
    /// With these custom aliases.
    pub fn with_aliases<S: Into<String>>(mut self, aliases: impl IntoIterator<Item = S>) -> Self {
        self.aliases = aliases.into_iter().map(Into::into).collect();
        self
    }

    /// With these tags.
    pub fn with_tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Logged by run `run_id`.
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Reporting progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Validates the aliases and tags, as both backends do before anything is stored or sent.
    pub(crate) fn validate(&self) -> Result<()> {
        for alias in &self.aliases {
            artifact_core::validate_alias(alias)?;
        }
        artifact_core::validate_tags(&self.tags)?;
        Ok(())
    }
}

impl std::fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogOptions")
            .field("aliases", &self.aliases)
            .field("tags", &self.tags)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// What [`Backend::log_artifact`] and [`Backend::finish_artifact`] did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoggedArtifact {
    /// The version the artifact now is: a new one, or the existing latest when the content was identical.
    pub version: ArtifactVersion,
    /// False when the digest equalled the latest version's, so no version was created (the SDK's dedup).
    pub created: bool,
    /// The manifest as stored (`birthArtifactID` set, `local_path` removed; on a server that refuses XXH128,
    /// re-hashed with MD5).
    pub manifest: Manifest,
    /// File bodies sent to the backend by this call.
    pub stored_files: usize,
    /// File bodies the backend already had.
    pub reused_files: usize,
    /// Bytes sent to the backend by this call.
    pub stored_bytes: u64,
}

/// This process's part of a distributed artifact, stored and pending (see [`Backend::upsert_artifact`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UpsertedPart {
    /// This process's entries.
    pub manifest: Manifest,
    /// File bodies sent to the backend by this call.
    pub stored_files: usize,
    /// File bodies the backend already had.
    pub reused_files: usize,
    /// Bytes sent to the backend by this call.
    pub stored_bytes: u64,
}

/// A run as a backend reports it: what it is, where it stands, and what it used and logged.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// The entity.
    pub entity: String,
    /// The project.
    pub project: String,
    /// The run id (unique in its project).
    pub id: String,
    /// The display name.
    pub name: Option<String>,
    /// The kind of step (`load-data`, `train`, …).
    pub job_type: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// Where it is in its life.
    pub state: RunState,
    /// The exit code it finished with.
    pub exit_code: Option<i64>,
    /// The config, as plain values.
    pub config: Map<String, Value>,
    /// The summary (each key's last logged value, plus what was set directly).
    pub summary: Map<String, Value>,
    /// History rows logged.
    pub history_rows: u64,
    /// Artifact versions it used, in order of first use.
    pub inputs: Vec<ArtifactEdge>,
    /// Artifact versions it logged, in order of first logging.
    pub outputs: Vec<ArtifactEdge>,
}

impl RunInfo {
    /// `entity/project/id`.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.entity, self.project, self.id)
    }
}

/// Which runs produced and consumed an artifact version.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Lineage {
    /// The run that logged the version, if any.
    pub created_by: Option<RunInfo>,
    /// The runs that used it.
    pub used_by: Vec<RunInfo>,
}

/// Checks the name and type before anything is stored: the SDK's one-name-one-type rule.
pub(crate) fn check_log_request(artifact: &Artifact, options: &LogOptions) -> Result<()> {
    artifact_core::validate_artifact_name(artifact.name())?;
    options.validate()
}

/// `Error` for an empty run id where one is required.
pub(crate) fn require_run_id(options: &RunOptions) -> Result<&str> {
    options.id.as_deref().ok_or_else(|| Error::InvalidRunId { run_id: String::new() })
}
