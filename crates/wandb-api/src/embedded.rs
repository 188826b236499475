//! [`Backend`] over the embedded store.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use artifact_core::{Artifact, Manifest, ManifestEntry};
use serde_json::{Map, Value};
use wandb_store::{
    ArtifactVersion, Collection, EVENTS_FILE, EmbeddedStore, HISTORY_FILE, OUTPUT_FILE, ProjectRef, RunOptions,
    RunRecord, StreamChunk,
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

    /// The store, for what only it offers (its directory, serving it with `wandb_store::server`).
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

/// Runs file work without stalling the runtime: on a multi-thread runtime its worker hands its other tasks to
/// the rest first (`block_in_place`); elsewhere (a current-thread runtime, no runtime) there is no one to stall.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
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
        blocking(|| {
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
        blocking(|| {
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
        blocking(|| {
            Ok(logged(self.store.finish_artifact(project, artifact, distributed_id, &store_options(options))?))
        })
    }

    async fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
        blocking(|| Ok(self.store.artifact(project, name, selector)?))
    }

    async fn artifact_by_id(&self, id: &str) -> Result<ArtifactVersion> {
        blocking(|| Ok(self.store.artifact_by_id(id)?))
    }

    async fn versions(&self, project: &ProjectRef, name: &str) -> Result<Vec<ArtifactVersion>> {
        blocking(|| Ok(self.store.versions(project, name)?))
    }

    async fn collections(&self, project: &ProjectRef, artifact_type: Option<&str>) -> Result<Vec<Collection>> {
        blocking(|| Ok(self.store.collections(project, artifact_type)?))
    }

    async fn artifact_types(&self, project: &ProjectRef) -> Result<Vec<String>> {
        let collections = self.collections(project, None).await?;
        let mut types: Vec<String> = collections.into_iter().map(|c| c.artifact_type).collect();
        types.sort();
        types.dedup();
        Ok(types)
    }

    async fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
        blocking(|| Ok(self.store.manifest(version)?))
    }

    async fn download(
        &self,
        _version: &ArtifactVersion,
        entries: &Manifest,
        root: &Path,
        options: &DownloadOptions,
    ) -> Result<DownloadReport> {
        blocking(|| download(self, entries, root, options))
    }

    async fn record_use(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()> {
        blocking(|| Ok(self.store.record_use(project, run_id, version)?))
    }

    async fn link(
        &self,
        version: &ArtifactVersion,
        target: &ProjectRef,
        collection: &str,
        aliases: &[String],
    ) -> Result<ArtifactVersion> {
        // A registry's organisation is the entity itself here, as `dagster-wandb server` answers.
        blocking(|| Ok(self.store.link_version(version, target, collection, aliases)?))
    }

    async fn lineage(&self, version: &ArtifactVersion) -> Result<Lineage> {
        blocking(|| {
            let lineage = self.store.lineage(version)?;
            let project = ProjectRef::new(&version.entity, &version.project)?;
            Ok(Lineage {
                created_by: lineage.created_by.map(|r| self.run_info(&project, r)).transpose()?,
                used_by: lineage.used_by.into_iter().map(|r| self.run_info(&project, r)).collect::<Result<_>>()?,
            })
        })
    }

    async fn resume_run(&self, project: &ProjectRef, options: &RunOptions) -> Result<bool> {
        crate::backend::require_run_id(options)?;
        blocking(|| Ok(self.store.resume_run(project, options.clone())?.1))
    }

    async fn run(&self, project: &ProjectRef, run_id: &str) -> Result<RunInfo> {
        blocking(|| self.run_info(project, self.store.run(project, run_id)?))
    }

    async fn runs(&self, project: &ProjectRef) -> Result<Vec<RunInfo>> {
        blocking(|| self.store.runs(project)?.into_iter().map(|r| self.run_info(project, r)).collect())
    }

    async fn run_history(&self, project: &ProjectRef, run_id: &str) -> Result<Vec<Map<String, Value>>> {
        blocking(|| Ok(self.store.run_history(project, run_id)?))
    }

    async fn resume_point(&self, project: &ProjectRef, run_id: &str) -> Result<Option<ResumePoint>> {
        blocking(|| {
            match self.store.run(project, run_id) {
                Ok(_) => {}
                Err(wandb_store::Error::RunNotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            let status = self.store.run_status(project, run_id)?;
            let history = self.store.run_stream_lines(project, run_id, HISTORY_FILE)?;
            let last_row_step = history
                .last()
                .and_then(|row| serde_json::from_str::<Value>(row).ok())
                .and_then(|row| row.get("_step").and_then(Value::as_u64));
            Ok(Some(ResumePoint::new(
                status.line_count(HISTORY_FILE),
                status.line_count(OUTPUT_FILE),
                status.line_count(EVENTS_FILE),
                self.store.run_summary(project, run_id)?,
                last_row_step,
                status.config,
                Vec::new(),
            )))
        })
    }

    async fn write_run_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()> {
        blocking(|| Ok(self.store.write_run_stream(project, run_id, chunk)?))
    }

    async fn update_run_config(&self, project: &ProjectRef, run_id: &str, config: &Map<String, Value>) -> Result<()> {
        blocking(|| {
            // The whole config, as a server is sent it: keys dropped by the caller are dropped here too.
            Ok(self.store.update_run_config(project, run_id, config.clone(), None)?)
        })
    }
}
