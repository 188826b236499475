//! [`Backend`] over the embedded store.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use artifact_core::{Artifact, Manifest, ManifestEntry};
use serde_json::{Map, Value};
use wandb_store::{
    ArtifactVersion, Collection, CollectionEdit, EVENTS_FILE, EmbeddedStore, HISTORY_FILE, OUTPUT_FILE, ProjectRef,
    Registry, RegistrySpec, RunOptions, RunRecord, StreamChunk, VersionEdit,
};

use crate::backend::{Backend, Lineage, LogOptions, LoggedArtifact, RunInfo, UpsertedPart, check_log_request};
use crate::download::{DownloadOptions, DownloadReport, ObjectSource, download};
use crate::error::{Error, Result};
use crate::run::ResumePoint;
use crate::settings::BaseUrl;

/// The embedded store as a [`Backend`]: a directory on this machine (or a shared drive), no server.
///
/// ```
/// use wandb_api::{Backend, EmbeddedBackend, ProjectRef};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> wandb_api::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let backend = EmbeddedBackend::open(dir.path())?;
/// let project = ProjectRef::new("local", "demo")?;
/// assert!(backend.collections(&project, None).await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct EmbeddedBackend {
    store: EmbeddedStore,
}

impl EmbeddedBackend {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// The store's opening errors (a directory that is not a store, a newer format, I/O).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(EmbeddedBackend { store: EmbeddedStore::open(dir)? })
    }

    /// The store in `dir`, which must already exist ([`EmbeddedStore::open_existing`]).
    ///
    /// # Errors
    /// The store's [`wandb_store::Error::NoStore`] when `dir` holds none; as [`EmbeddedBackend::open`].
    pub fn open_existing(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(EmbeddedBackend { store: EmbeddedStore::open_existing(dir)? })
    }

    /// The store, for what only it offers (its directory, serving it with `wandb-server`).
    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    fn run_info(&self, project: &ProjectRef, record: RunRecord) -> Result<RunInfo> {
        let status = self.store.run_status(project, &record.id)?;
        let summary = self.store.run_summary(project, &record.id)?;
        Ok(RunInfo {
            entity: project.entity().to_owned(),
            project: project.project().to_owned(),
            history_rows: status.line_count(HISTORY_FILE),
            id: record.id,
            name: record.name,
            job_type: record.job_type,
            tags: record.tags,
            created_at: record.created_at,
            state: status.state,
            exit_code: status.exit_code,
            config: status.config,
            summary,
            inputs: record.inputs,
            outputs: record.outputs,
        })
    }
}

impl From<EmbeddedStore> for EmbeddedBackend {
    fn from(store: EmbeddedStore) -> Self {
        EmbeddedBackend { store }
    }
}

impl EmbeddedBackend {
    /// Runs file work on the runtime's blocking pool, so it never stalls the async workers (inline when there is no
    /// runtime). The work gets its own handle on the store: the pool needs owned arguments.
    async fn pooled<T: Send + 'static>(
        &self,
        work: impl FnOnce(&EmbeddedBackend) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let backend = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || work(&backend))
                .await
                .map_err(|e| Error::Runtime { reason: format!("a store task failed: {e}") })?,
            Err(_) => work(&backend),
        }
    }
}

/// File work whose arguments are borrowed (a draft, a manifest a caller holds): on a multi-thread runtime the
/// worker hands its other tasks to the rest first (`block_in_place`); on a current-thread runtime, or none, it runs
/// inline.
fn in_place<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

fn store_options(options: &LogOptions) -> wandb_store::LogOptions {
    wandb_store::LogOptions {
        aliases: options.aliases.clone(),
        tags: options.tags.clone(),
        run_id: options.run_id.clone(),
        progress: options.progress.clone(),
    }
}

fn logged(logged: wandb_store::LoggedArtifact) -> LoggedArtifact {
    LoggedArtifact {
        version: logged.version,
        created: logged.created,
        manifest: logged.manifest,
        stored_files: logged.stored_objects,
        reused_files: logged.reused_objects,
        stored_bytes: logged.stored_bytes,
    }
}

/// File bodies straight from the store's object directory.
impl ObjectSource for EmbeddedBackend {
    fn open_object(&self, path: &str, entry: &ManifestEntry) -> Result<Box<dyn Read + Send>> {
        let object = self.store.object_path(entry)?;
        match File::open(&object) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::MissingObject { path: path.to_owned(), digest: entry.digest.clone() })
            }
            Err(e) => Err(Error::io("open", object, e)),
        }
    }
}

#[async_trait::async_trait]
impl Backend for EmbeddedBackend {
    fn base_url(&self) -> BaseUrl {
        BaseUrl::Embedded(self.store.root().to_path_buf())
    }

    async fn log_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        check_log_request(artifact, options)?;
        in_place(|| {
            self.store.check_type(project, artifact.name(), artifact.artifact_type())?;
            Ok(logged(self.store.log_artifact(project, artifact, &store_options(options))?))
        })
    }

    async fn upsert_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<UpsertedPart> {
        check_log_request(artifact, options)?;
        in_place(|| {
            let part = self.store.upsert_artifact(project, artifact, distributed_id)?;
            Ok(UpsertedPart {
                manifest: part.manifest,
                stored_files: part.stored_objects,
                reused_files: part.reused_objects,
                stored_bytes: part.stored_bytes,
            })
        })
    }

    async fn finish_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        check_log_request(artifact, options)?;
        in_place(|| {
            Ok(logged(self.store.finish_artifact(project, artifact, distributed_id, &store_options(options))?))
        })
    }

    async fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
        let (project, name, selector) = (project.clone(), name.to_owned(), selector.to_owned());
        self.pooled(move |b| Ok(b.store.artifact(&project, &name, &selector)?)).await
    }

    async fn artifact_by_id(&self, id: &str) -> Result<ArtifactVersion> {
        let id = id.to_owned();
        self.pooled(move |b| Ok(b.store.artifact_by_id(&id)?)).await
    }

    async fn versions(&self, project: &ProjectRef, name: &str) -> Result<Vec<ArtifactVersion>> {
        let (project, name) = (project.clone(), name.to_owned());
        self.pooled(move |b| Ok(b.store.versions(&project, &name)?)).await
    }

    async fn collections(&self, project: &ProjectRef, artifact_type: Option<&str>) -> Result<Vec<Collection>> {
        let (project, artifact_type) = (project.clone(), artifact_type.map(str::to_owned));
        self.pooled(move |b| Ok(b.store.collections(&project, artifact_type.as_deref())?)).await
    }

    async fn artifact_types(&self, project: &ProjectRef) -> Result<Vec<String>> {
        let collections = self.collections(project, None).await?;
        let mut types: Vec<String> = collections.into_iter().map(|c| c.artifact_type).collect();
        types.sort();
        types.dedup();
        Ok(types)
    }

    async fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
        let version = version.clone();
        self.pooled(move |b| Ok(b.store.manifest(&version)?)).await
    }

    async fn download(
        &self,
        _version: &ArtifactVersion,
        entries: &Manifest,
        root: &Path,
        options: &DownloadOptions,
    ) -> Result<DownloadReport> {
        in_place(|| download(self, entries, root, options))
    }

    async fn record_use(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()> {
        let (project, run_id, version) = (project.clone(), run_id.to_owned(), version.clone());
        self.pooled(move |b| Ok(b.store.record_use(&project, &run_id, &version)?)).await
    }

    async fn link(
        &self,
        version: &ArtifactVersion,
        target: &ProjectRef,
        collection: &str,
        aliases: &[String],
    ) -> Result<ArtifactVersion> {
        // A registry's organisation is the entity itself here, as `dagster-wandb server` answers.
        let (version, target) = (version.clone(), target.clone());
        let (collection, aliases) = (collection.to_owned(), aliases.to_vec());
        self.pooled(move |b| Ok(b.store.link_version(&version, &target, &collection, &aliases)?)).await
    }

    async fn edit(&self, version: &ArtifactVersion, edit: &VersionEdit) -> Result<ArtifactVersion> {
        let (version, edit) = (version.clone(), edit.clone());
        self.pooled(move |b| Ok(b.store.edit_version(&version, &edit)?)).await
    }

    async fn delete(&self, version: &ArtifactVersion, delete_aliases: bool) -> Result<()> {
        let version = version.clone();
        self.pooled(move |b| Ok(b.store.delete_version(&version, delete_aliases)?)).await
    }

    async fn unlink(&self, linked: &ArtifactVersion) -> Result<()> {
        let linked = linked.clone();
        self.pooled(move |b| Ok(b.store.unlink_version(&linked)?)).await
    }

    async fn edit_collection(&self, project: &ProjectRef, name: &str, edit: &CollectionEdit) -> Result<Collection> {
        let (project, name, edit) = (project.clone(), name.to_owned(), edit.clone());
        self.pooled(move |b| Ok(b.store.edit_collection(&project, &name, &edit)?)).await
    }

    async fn delete_collection(&self, project: &ProjectRef, name: &str) -> Result<()> {
        let (project, name) = (project.clone(), name.to_owned());
        self.pooled(move |b| Ok(b.store.delete_collection(&project, &name)?)).await
    }

    async fn registries(&self, entity: &str) -> Result<Vec<Registry>> {
        let entity = entity.to_owned();
        self.pooled(move |b| Ok(b.store.registries(&entity)?)).await
    }

    async fn registry(&self, entity: &str, name: &str) -> Result<Registry> {
        let (entity, name) = (entity.to_owned(), name.to_owned());
        self.pooled(move |b| Ok(b.store.registry(&entity, &name)?)).await
    }

    async fn create_registry(&self, entity: &str, name: &str, spec: &RegistrySpec) -> Result<Registry> {
        let (entity, name, spec) = (entity.to_owned(), name.to_owned(), spec.clone());
        self.pooled(move |b| Ok(b.store.create_registry(&entity, &name, &spec)?)).await
    }

    async fn edit_registry(&self, registry: &Registry, spec: &RegistrySpec) -> Result<Registry> {
        let (registry, spec) = (registry.clone(), spec.clone());
        self.pooled(move |b| Ok(b.store.edit_registry(&registry.entity, &registry.name, &spec)?)).await
    }

    async fn delete_registry(&self, registry: &Registry) -> Result<()> {
        let registry = registry.clone();
        self.pooled(move |b| Ok(b.store.delete_registry(&registry.entity, &registry.name)?)).await
    }

    async fn lineage(&self, version: &ArtifactVersion) -> Result<Lineage> {
        let version = version.clone();
        self.pooled(move |b| {
            let lineage = b.store.lineage(&version)?;
            let project = ProjectRef::new(&version.entity, &version.project)?;
            Ok(Lineage {
                created_by: lineage.created_by.map(|r| b.run_info(&project, r)).transpose()?,
                used_by: lineage
                    .used_by
                    .into_iter()
                    .map(|r| b.run_info(&project, r))
                    .chain(lineage.used_elsewhere.into_iter().map(|(elsewhere, r)| b.run_info(&elsewhere, r)))
                    .collect::<Result<_>>()?,
            })
        })
        .await
    }

    async fn resume_run(&self, project: &ProjectRef, options: &RunOptions) -> Result<bool> {
        crate::backend::require_run_id(options)?;
        let (project, options) = (project.clone(), options.clone());
        self.pooled(move |b| Ok(b.store.resume_run(&project, options)?.1)).await
    }

    async fn run(&self, project: &ProjectRef, run_id: &str) -> Result<RunInfo> {
        let (project, run_id) = (project.clone(), run_id.to_owned());
        self.pooled(move |b| b.run_info(&project, b.store.run(&project, &run_id)?)).await
    }

    async fn runs(&self, project: &ProjectRef) -> Result<Vec<RunInfo>> {
        let project = project.clone();
        self.pooled(move |b| {
            let mut runs = Vec::new();
            for record in b.store.runs(&project)? {
                match b.run_info(&project, record) {
                    Ok(info) => runs.push(info),
                    // A damaged logging status costs its run, not the listing (the warning names the file).
                    Err(Error::Store(wandb_store::Error::StoreFormat { path, reason })) => {
                        tracing::warn!(path = %path.display(), reason, "skipping a run with a damaged record");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(runs)
        })
        .await
    }

    async fn run_history(&self, project: &ProjectRef, run_id: &str) -> Result<Vec<Map<String, Value>>> {
        let (project, run_id) = (project.clone(), run_id.to_owned());
        self.pooled(move |b| Ok(b.store.run_history(&project, &run_id)?)).await
    }

    async fn resume_point(&self, project: &ProjectRef, run_id: &str) -> Result<Option<ResumePoint>> {
        let (project, run_id) = (project.clone(), run_id.to_owned());
        self.pooled(move |b| {
            let (project, run_id) = (&project, run_id.as_str());
            match b.store.run(project, run_id) {
                Ok(_) => {}
                Err(wandb_store::Error::RunNotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            let status = b.store.run_status(project, run_id)?;
            let history = b.store.run_stream_lines(project, run_id, HISTORY_FILE)?;
            let last_row_step = history
                .last()
                .and_then(|row| serde_json::from_str::<Value>(row).ok())
                .and_then(|row| row.get("_step").and_then(Value::as_u64));
            Ok(Some(ResumePoint::new(
                status.line_count(HISTORY_FILE),
                status.line_count(OUTPUT_FILE),
                status.line_count(EVENTS_FILE),
                b.store.run_summary(project, run_id)?,
                last_row_step,
                status.config,
                Vec::new(),
            )))
        })
        .await
    }

    async fn write_run_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()> {
        let (project, run_id, chunk) = (project.clone(), run_id.to_owned(), chunk.clone());
        self.pooled(move |b| Ok(b.store.write_run_stream(&project, &run_id, &chunk)?)).await
    }

    async fn update_run_config(&self, project: &ProjectRef, run_id: &str, config: &Map<String, Value>) -> Result<()> {
        let (project, run_id, config) = (project.clone(), run_id.to_owned(), config.clone());
        // The whole config, as a server is sent it: keys dropped by the caller are dropped here too.
        self.pooled(move |b| Ok(b.store.update_run_config(&project, &run_id, config, None)?)).await
    }
}
