//! The synchronous face: [`Api`] and [`ArtifactHandle`] over any [`Backend`], on one process-wide runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use artifact_core::{Artifact, ArtifactAddress, DigestMemo, LogicalPath, Manifest, ManifestEntry};
use serde_json::{Map, Value};
use wandb_references::ReferenceResolvers;
use wandb_store::{ArtifactVersion, Collection, CollectionEdit, ProjectRef, Registry, RegistrySpec, VersionEdit};

use crate::backend::{Backend, LogOptions, LoggedArtifact, RunInfo, connect};
use crate::download::{DownloadOptions, DownloadReport};
use crate::error::{Error, Result};
use crate::run::{Run, RunSettings};
use crate::settings::{Settings, default_download_root};

/// The process-wide tokio runtime the blocking face, [`Run`]'s writers and the reference resolvers share,
/// started on first use (multi-threaded, at least two workers).
///
/// # Errors
/// [`Error::Runtime`] when the runtime cannot be started.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("wandb-api")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| Error::Runtime { reason: format!("cannot start the async runtime: {reason}") })
}

/// Runs `future` to completion on [`runtime()`] from synchronous code. Called from inside an async context
/// (where blocking the thread on a runtime is not allowed), it blocks on a helper thread instead.
///
/// # Errors
/// [`Error::Runtime`] when the runtime cannot be started; the future's own errors.
pub fn block_on<T: Send>(future: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    let runtime = runtime()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(|scope| {
        scope.spawn(|| runtime.block_on(future)).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The W&B API for synchronous code: a [`Backend`] from [`Settings`], the SDK's defaults for downloads, and
/// handles for runs ([`Api::init`]) and artifact versions ([`Api::artifact`]). Cheap to clone.
///
/// | Python (`wandb` 0.31.0) | Rust |
/// |---|---|
/// | `wandb.init(project=…, job_type=…)` | `api.init(RunSettings::new(project).job_type(…))` |
/// | `wandb.Api().artifact("e/p/name:alias")` | `api.artifact("e/p/name:alias")` |
/// | `wandb.Api().artifacts(type, "e/p/name")` | `api.artifact_versions("e/p/name")` |
/// | `wandb.Api().run("e/p/id")` | `api.run("e/p/id")` |
///
/// docs/sdk.md maps every artifact and run operation.
#[derive(Clone, Debug)]
pub struct Api {
    backend: Arc<dyn Backend>,
    settings: Settings,
    references: Arc<ReferenceResolvers>,
}

impl Api {
    /// The API the environment configures ([`Settings::from_env`]): the embedded store unless `WANDB_BASE_URL`
    /// names a server.
    ///
    /// # Errors
    /// See [`Settings::from_env`] and [`Api::new`].
    pub fn from_env() -> Result<Self> {
        Self::new(Settings::from_env()?)
    }

    /// The API `settings` configure.
    ///
    /// # Errors
    /// See [`connect`]; reference resolvers whose HTTP clients cannot be built.
    pub fn new(settings: Settings) -> Result<Self> {
        settings.validate()?;
        let backend = connect(&settings)?;
        Self::with_backend(backend, settings)
    }

    /// The API over a backend already connected (an `EmbeddedBackend` of a store in hand, a client with its own
    /// retry policy), with `settings`' entity, project and cache.
    ///
    /// # Errors
    /// Reference resolvers whose HTTP clients cannot be built.
    pub fn with_backend(backend: Arc<dyn Backend>, settings: Settings) -> Result<Self> {
        let references = Arc::new(ReferenceResolvers::from_env_on(runtime()?.handle().clone())?);
        Ok(Api { backend, settings, references })
    }

    /// The backend, for async code or what the blocking face does not wrap.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The configured entity and project.
    pub fn project(&self) -> ProjectRef {
        self.settings.project_ref().expect("settings are validated when the Api is made")
    }

    /// The reference resolvers: for `add_reference_with` on drafts, and what downloads fetch references with.
    pub fn references(&self) -> &Arc<ReferenceResolvers> {
        &self.references
    }

    /// Downloads' defaults: the W&B content cache (when its directory is known) with its digest memo, and every
    /// reference scheme this build fetches.
    pub fn download_options(&self) -> DownloadOptions {
        let cache = self.settings.cache();
        let memo = cache.as_ref().map(|c| Arc::new(c.digest_memo()) as Arc<dyn DigestMemo>);
        let references: Arc<dyn crate::ReferenceFetcher> = self.references.clone();
        DownloadOptions { cache, memo, references: Some(references), ..Default::default() }
    }

    /// Starts (or resumes) a run (`wandb.init`); its project defaults to the settings' project.
    ///
    /// # Errors
    /// See [`Run::start`].
    pub fn init(&self, settings: RunSettings) -> Result<Run> {
        Run::start(self.clone(), settings)
    }

    /// The project an address names, its missing parts from the settings.
    pub(crate) fn project_of(&self, entity: Option<&str>, project: Option<&str>) -> Result<ProjectRef> {
        Ok(ProjectRef::new(entity.unwrap_or(&self.settings.entity), project.unwrap_or(&self.settings.project))?)
    }

    /// The version `path` names: `[[ENTITY/]PROJECT/]NAME[:ALIAS]`, `latest` by default (`wandb.Api().artifact`).
    ///
    /// # Errors
    /// Address parsing errors, [`Error::ProjectNotFound`], [`Error::ArtifactNotFound`].
    pub fn artifact(&self, path: &str) -> Result<ArtifactHandle> {
        let address = ArtifactAddress::parse(path)?;
        let project = self.project_of(address.entity.as_deref(), address.project.as_deref())?;
        let selector = address.alias.as_deref().unwrap_or("latest");
        let version = block_on(self.backend.artifact(&project, &address.name, selector))?;
        Ok(self.handle(version))
    }

    /// The version with id `id`.
    ///
    /// # Errors
    /// [`Error::ArtifactIdNotFound`].
    pub fn artifact_by_id(&self, id: &str) -> Result<ArtifactHandle> {
        Ok(self.handle(block_on(self.backend.artifact_by_id(id))?))
    }

    /// Every version of the collection `path` names (`[[ENTITY/]PROJECT/]NAME`), oldest first.
    ///
    /// # Errors
    /// [`Error::ArtifactNotFound`] for an unknown collection.
    pub fn artifact_versions(&self, path: &str) -> Result<Vec<ArtifactHandle>> {
        let address = ArtifactAddress::parse(path)?;
        let project = self.project_of(address.entity.as_deref(), address.project.as_deref())?;
        let versions = block_on(self.backend.versions(&project, &address.name))?;
        Ok(versions.into_iter().map(|v| self.handle(v)).collect())
    }

    /// The collections of `project` (the settings' when `None`), optionally of one type.
    ///
    /// # Errors
    /// Backend errors.
    pub fn collections(&self, project: Option<&ProjectRef>, artifact_type: Option<&str>) -> Result<Vec<Collection>> {
        let project = project.cloned().unwrap_or_else(|| self.project());
        block_on(self.backend.collections(&project, artifact_type))
    }

    /// The artifact types of `project` (the settings' when `None`).
    ///
    /// # Errors
    /// Backend errors.
    pub fn artifact_types(&self, project: Option<&ProjectRef>) -> Result<Vec<String>> {
        let project = project.cloned().unwrap_or_else(|| self.project());
        block_on(self.backend.artifact_types(&project))
    }

    /// Copies a project's artifacts, with their bodies, aliases, tags, metadata, portfolio links and the runs of
    /// their lineage, from this API's backend to `target`'s (see [`crate::sync`]). A second call copies nothing.
    ///
    /// # Errors
    /// Either backend's errors; running it again resumes an interrupted sync.
    pub fn sync_to(&self, target: &Api, options: &crate::sync::SyncOptions) -> Result<crate::sync::SyncReport> {
        block_on(crate::sync::sync(self.backend.as_ref(), target.backend.as_ref(), options))
    }

    /// Checks that collection `name` of `project` does not exist with a type other than `artifact_type` (the
    /// SDK's `ArtifactType` query before logging); logging checks again.
    ///
    /// # Errors
    /// [`Error::TypeConflict`]; backend errors other than the collection or project not existing.
    pub fn check_type(&self, project: &ProjectRef, name: &str, artifact_type: &str) -> Result<()> {
        match block_on(self.backend.artifact(project, name, "latest")) {
            Ok(existing) if existing.artifact_type != artifact_type => Err(Error::TypeConflict {
                name: name.to_owned(),
                existing: existing.artifact_type,
                requested: artifact_type.to_owned(),
            }),
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Changes collection `name` of `project` (the settings' when `None`): description, tags, name, type
    /// (`collection.save()`).
    ///
    /// # Errors
    /// See [`Backend::edit_collection`].
    pub fn edit_collection(
        &self,
        project: Option<&ProjectRef>,
        name: &str,
        edit: &CollectionEdit,
    ) -> Result<Collection> {
        let project = project.cloned().unwrap_or_else(|| self.project());
        block_on(self.backend.edit_collection(&project, name, edit))
    }

    /// Deletes collection `name` of `project` (the settings' when `None`) with its versions, or a portfolio with
    /// its links (`collection.delete()`).
    ///
    /// # Errors
    /// See [`Backend::delete_collection`].
    pub fn delete_collection(&self, project: Option<&ProjectRef>, name: &str) -> Result<()> {
        let project = project.cloned().unwrap_or_else(|| self.project());
        block_on(self.backend.delete_collection(&project, name))
    }

    /// The registries of the settings' entity's organisation (`api.registries()`).
    ///
    /// # Errors
    /// See [`Backend::registries`].
    pub fn registries(&self) -> Result<Vec<Registry>> {
        block_on(self.backend.registries(&self.settings.entity))
    }

    /// Registry `name`, without the `wandb-registry-` prefix (`api.registry(name)`).
    ///
    /// # Errors
    /// See [`Backend::registry`].
    pub fn registry(&self, name: &str) -> Result<Registry> {
        block_on(self.backend.registry(&self.settings.entity, name))
    }

    /// Creates registry `name` (`api.create_registry(name, visibility, description=, artifact_types=)`).
    ///
    /// # Errors
    /// See [`Backend::create_registry`].
    pub fn create_registry(&self, name: &str, spec: &RegistrySpec) -> Result<Registry> {
        block_on(self.backend.create_registry(&self.settings.entity, name, spec))
    }

    /// Changes `registry` (`registry.save()`).
    ///
    /// # Errors
    /// See [`Backend::edit_registry`].
    pub fn edit_registry(&self, registry: &Registry, spec: &RegistrySpec) -> Result<Registry> {
        block_on(self.backend.edit_registry(registry, spec))
    }

    /// Deletes `registry` and its links (`registry.delete()`).
    ///
    /// # Errors
    /// See [`Backend::delete_registry`].
    pub fn delete_registry(&self, registry: &Registry) -> Result<()> {
        block_on(self.backend.delete_registry(registry))
    }

    /// Logs `artifact` outside any run, to the settings' project (`artifact.save()` without a run).
    ///
    /// # Errors
    /// See [`Backend::log_artifact`].
    pub fn log_artifact(&self, artifact: &Artifact, options: &LogOptions) -> Result<LoggedArtifact> {
        block_on(self.backend.log_artifact(&self.project(), artifact, options))
    }

    /// The run `path` names: `[[ENTITY/]PROJECT/]RUN_ID` (`wandb.Api().run`).
    ///
    /// # Errors
    /// [`Error::RunNotFound`]; a path of more than three parts.
    pub fn run(&self, path: &str) -> Result<RunInfo> {
        let (project, run_id) = self.run_path(path)?;
        block_on(self.backend.run(&project, &run_id))
    }

    /// The runs of `project` (the settings' when `None`), oldest first (`wandb.Api().runs`).
    ///
    /// # Errors
    /// Backend errors.
    pub fn runs(&self, project: Option<&ProjectRef>) -> Result<Vec<RunInfo>> {
        let project = project.cloned().unwrap_or_else(|| self.project());
        block_on(self.backend.runs(&project))
    }

    /// The history rows of the run `path` names, in step order (`run.scan_history()`).
    ///
    /// # Errors
    /// [`Error::RunNotFound`].
    pub fn run_history(&self, path: &str) -> Result<Vec<Map<String, Value>>> {
        let (project, run_id) = self.run_path(path)?;
        block_on(self.backend.run_history(&project, &run_id))
    }

    fn run_path(&self, path: &str) -> Result<(ProjectRef, String)> {
        let parts: Vec<&str> = path.split('/').collect();
        let (entity, project, run_id) = match parts.as_slice() {
            [run] => (None, None, *run),
            [project, run] => (None, Some(*project), *run),
            [entity, project, run] => (Some(*entity), Some(*project), *run),
            _ => return Err(Error::InvalidRunId { run_id: path.to_owned() }),
        };
        Ok((self.project_of(entity, project)?, run_id.to_owned()))
    }

    pub(crate) fn handle(&self, version: ArtifactVersion) -> ArtifactHandle {
        ArtifactHandle { api: self.clone(), version, manifest: Arc::new(OnceLock::new()) }
    }
}

/// A logged artifact version (`wandb.Artifact` once logged): what it is, its files, where it came from, and
/// downloads with the SDK's defaults. Cheap to clone; the manifest is fetched once, on first need.
#[derive(Clone, Debug)]
pub struct ArtifactHandle {
    api: Api,
    version: ArtifactVersion,
    manifest: Arc<OnceLock<Manifest>>,
}

impl ArtifactHandle {
    /// The version's record: name, type, `vN`, aliases, digest, size, metadata, …
    pub fn version(&self) -> &ArtifactVersion {
        &self.version
    }

    /// `name:vN`.
    pub fn qualified_name(&self) -> String {
        self.version.qualified_name()
    }

    /// The manifest (fetched on first use).
    ///
    /// # Errors
    /// Backend errors.
    pub fn manifest(&self) -> Result<&Manifest> {
        if let Some(manifest) = self.manifest.get() {
            return Ok(manifest);
        }
        let fetched = block_on(self.api.backend.manifest(&self.version))?;
        Ok(self.manifest.get_or_init(|| fetched))
    }

    /// The entries, by path (`artifact.files()`, `artifact.manifest.entries`).
    ///
    /// # Errors
    /// Backend errors.
    pub fn files(&self) -> Result<Vec<(&str, &ManifestEntry)>> {
        Ok(self.manifest()?.entries().collect())
    }

    /// Downloads the whole version into the SDK's default root, `./artifacts/<name>:vN` (or under
    /// `$WANDB_ARTIFACT_DIR`), through the W&B cache, references fetched; returns the root (`artifact.download()`).
    ///
    /// # Errors
    /// See [`crate::download()`].
    pub fn download(&self) -> Result<PathBuf> {
        self.download_to(self.default_root()?)
    }

    /// Downloads the whole version into `root` (`artifact.download(root=…)`); returns it.
    ///
    /// # Errors
    /// See [`crate::download()`].
    pub fn download_to(&self, root: impl AsRef<Path>) -> Result<PathBuf> {
        let root = std::path::absolute(root.as_ref()).map_err(|e| Error::io("resolve", root.as_ref(), e))?;
        self.download_with(&root, &self.api.download_options())?;
        Ok(root)
    }

    /// Downloads the whole version into `root` with `options`; reports what was fetched, cached and skipped.
    ///
    /// # Errors
    /// See [`crate::download()`].
    pub fn download_with(&self, root: &Path, options: &DownloadOptions) -> Result<DownloadReport> {
        let manifest = self.manifest()?;
        block_on(self.api.backend.download(&self.version, manifest, root, options))
    }

    /// Downloads the file or directory `path` of the version into the default root and returns where it is
    /// (`artifact.get_path(path).download()`; a directory's files keep their paths under it).
    ///
    /// # Errors
    /// [`Error::NoSuchPath`] when the version has neither a file nor a directory `path`; download errors.
    pub fn get_path(&self, path: &str) -> Result<PathBuf> {
        let root = self.default_root()?;
        let part = self.subset(path)?;
        block_on(self.api.backend.download(&self.version, &part, &root, &self.api.download_options()))?;
        let logical = LogicalPath::new(path.trim_end_matches('/'))?;
        let mut local = root;
        local.extend(logical.components());
        Ok(local)
    }

    /// The entries at `path` (a file) or under it (a directory).
    pub(crate) fn subset(&self, path: &str) -> Result<Manifest> {
        let dir = format!("{}/", path.trim_end_matches('/'));
        self.entries_where(path, |name| name == path || name.starts_with(&dir))
    }

    /// The entries whose path `keep` accepts; [`Error::NoSuchPath`] naming `asked` when there is none.
    fn entries_where(&self, asked: &str, keep: impl Fn(&str) -> bool) -> Result<Manifest> {
        let mut part = Manifest::new();
        for (name, entry) in self.manifest()?.entries().filter(|(name, _)| keep(name)) {
            part.add_entry(LogicalPath::new(name)?, entry.clone(), false)?;
        }
        if part.is_empty() {
            return Err(Error::NoSuchPath { artifact: self.qualified_name(), path: asked.to_owned() });
        }
        Ok(part)
    }

    fn default_root(&self) -> Result<PathBuf> {
        default_download_root(&self.version.name, &self.version.version())
    }

    /// The run that logged this version (`artifact.logged_by()`), if any.
    ///
    /// # Errors
    /// Backend errors.
    pub fn logged_by(&self) -> Result<Option<RunInfo>> {
        Ok(block_on(self.api.backend.lineage(&self.version))?.created_by)
    }

    /// The runs that used this version (`artifact.used_by()`).
    ///
    /// # Errors
    /// Backend errors.
    pub fn used_by(&self) -> Result<Vec<RunInfo>> {
        Ok(block_on(self.api.backend.lineage(&self.version))?.used_by)
    }

    /// Links this version into `target`, `[[ENTITY/]PROJECT/]COLLECTION` or `wandb-registry-<REGISTRY>/<COLLECTION>`
    /// (`artifact.link(target, aliases)`); returns the version as the target sees it.
    ///
    /// # Errors
    /// See [`Backend::link`].
    pub fn link(&self, target: &str, aliases: &[&str]) -> Result<ArtifactHandle> {
        let (project, collection) = wandb_store::link_target(target, &self.api.project())?;
        let aliases: Vec<String> = aliases.iter().map(|a| (*a).to_owned()).collect();
        let linked = block_on(self.api.backend.link(&self.version, &project, &collection, &aliases))?;
        Ok(self.api.handle(linked))
    }

    /// Downloads the entries under `prefix` (a directory of the artifact) into `root`
    /// (`artifact.download(path_prefix=…)`); their paths stay the artifact's.
    ///
    /// # Errors
    /// [`Error::NoSuchPath`] when nothing is under `prefix`; download errors.
    pub fn download_prefix(&self, prefix: &str, root: &Path) -> Result<DownloadReport> {
        self.download_prefix_with(prefix, root, &self.api.download_options())
    }

    /// [`ArtifactHandle::download_prefix`] with `options`.
    ///
    /// # Errors
    /// [`Error::NoSuchPath`] when nothing is under `prefix`; download errors.
    pub fn download_prefix_with(&self, prefix: &str, root: &Path, options: &DownloadOptions) -> Result<DownloadReport> {
        let part = self.entries_where(prefix, |name| name.starts_with(prefix))?;
        block_on(self.api.backend.download(&self.version, &part, root, options))
    }

    /// The entry at `path` (`artifact.get_entry(path)`).
    ///
    /// # Errors
    /// [`Error::NoSuchPath`].
    pub fn get_entry(&self, path: &str) -> Result<ManifestEntry> {
        self.manifest()?
            .get(path)
            .cloned()
            .ok_or_else(|| Error::NoSuchPath { artifact: self.qualified_name(), path: path.to_owned() })
    }

    /// Checks `root` against this version (`artifact.verify(root)`): missing, changed and extra files.
    ///
    /// # Errors
    /// I/O errors reading `root`; backend errors fetching the manifest.
    pub fn verify(&self, root: &Path) -> Result<artifact_core::VerifyReport> {
        Ok(artifact_core::verify_dir(self.manifest()?, root)?)
    }

    /// Makes `root` exactly this version (`artifact.checkout(root)`): downloads it, then removes every file the
    /// version does not contain. Returns the files removed.
    ///
    /// # Errors
    /// Download and I/O errors.
    pub fn checkout(&self, root: &Path) -> Result<Vec<String>> {
        self.download_with(root, &self.api.download_options())?;
        Ok(artifact_core::remove_extra_files(self.manifest()?, root)?)
    }

    /// A new draft from this version (`artifact.new_draft()`): add or remove entries and log it; only new bodies
    /// are sent, the rest of the manifest is reused.
    ///
    /// # Errors
    /// Backend errors fetching the manifest.
    pub fn new_draft(&self) -> Result<Artifact> {
        let v = &self.version;
        let manifest = self.manifest()?.clone();
        Ok(Artifact::from_logged(&v.name, &v.artifact_type, v.description.clone(), v.metadata.clone(), manifest)?)
    }

    /// Changes this version (`artifact.aliases.append(…)`, `.tags`, `.description`, `.metadata`, `.ttl`, then
    /// `save()`); returns it as it is now.
    ///
    /// # Errors
    /// See [`Backend::edit`].
    pub fn edit(&self, edit: &VersionEdit) -> Result<ArtifactHandle> {
        Ok(self.api.handle(block_on(self.api.backend.edit(&self.version, edit))?))
    }

    /// Deletes this version (`artifact.delete(delete_aliases=…)`); through a portfolio, only the link.
    ///
    /// # Errors
    /// See [`Backend::delete`].
    pub fn delete(&self, delete_aliases: bool) -> Result<()> {
        block_on(self.api.backend.delete(&self.version, delete_aliases))
    }

    /// Unlinks this version from the portfolio or registry collection it is seen through (`artifact.unlink()`).
    ///
    /// # Errors
    /// See [`Backend::unlink`].
    pub fn unlink(&self) -> Result<()> {
        block_on(self.api.backend.unlink(&self.version))
    }

    /// The API this handle came from.
    pub fn api(&self) -> &Api {
        &self.api
    }
}
