//! An embedded W&B artifact store: W&B's artifact semantics in a directory, with no server.
//!
//! [`EmbeddedStore`] keeps collections (all versions of one artifact name), versions `v0, v1, …` in log order,
//! `latest` (always the highest version) and custom aliases, dedup against the latest digest, one type per name,
//! runs and their lineage, what runs log (history, summary, config, state), and portfolios (link targets with
//! their own versions and aliases), with store-wide artifact ids shaped like W&B's. Several processes may use
//! one store at once. `wandb-server` serves a store over the W&B protocol, to the Python `wandb` client and to
//! `wandb-api`'s, through the staged logging this crate offers for it ([`EmbeddedStore::reserve_version`],
//! [`EmbeddedStore::insert_object`], [`EmbeddedStore::commit_version`]).
//!
//! Most users reach the store through `wandb-api`, whose `Backend` trait puts it and a W&B server behind one
//! face; this crate is the store itself.
//!
//! ```text
//! <store>/dagster-wandb-store.json                 marker and format version
//! <store>/objects/{md5,xxh128}/<hex[0:2]>/<hex[2:]> file bodies, once per digest
//! <store>/tmp/                                      in-flight object writes
//! <store>/ids.lock, ids.next, index/artifacts/<n>.json   store-wide artifact ids
//! <store>/index/uses/<n>/<entity>/<project>/<run id>    runs that used artifact n (empty files)
//! <store>/entities/<entity>/projects/<project>/
//!     lock                                          held while versions, aliases or runs change
//!     collections/<name>/collection.json            name, type
//!     collections/<name>/aliases.json               custom alias -> version index
//!     collections/<name>/versions/<n>/manifest.json the manifest (Go dialect, birthArtifactID set)
//!     collections/<name>/versions/<n>/version.json  digest, description, metadata, size, run, time
//!     runs/<run id>.json                            job type, inputs and outputs (lineage)
//!     portfolios/<name>/portfolio.json              a link target: name, type
//!     portfolios/<name>/versions/<n>                the id of the version linked as member n
//!     portfolios/<name>/aliases.json                custom alias -> member index
//! ```
//!
//! Concurrency: file bodies are content-addressed and written to `tmp/` then renamed, so any number of
//! processes may store them at once. Everything that assigns a version or moves an alias happens under the
//! project's `lock` (an OS file lock), and a version directory is built under a temporary name and renamed
//! into place, so readers never see half a version and two writers never take the same number. `latest` is
//! not stored: it is always the highest committed version.
//!
//! # Example
//!
//! ```
//! use artifact_core::{Artifact, NewFileOptions};
//! use std::io::Write;
//! use wandb_store::{EmbeddedStore, LogOptions, ProjectRef, RunOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = EmbeddedStore::open(dir.path().join("store"))?;
//! let project = ProjectRef::new("local", "artifacts-example")?;
//! let run = store.create_run(&project, RunOptions { job_type: Some("load-data".into()), ..Default::default() })?;
//!
//! let mut raw = Artifact::new("mnist-raw", "dataset")?;
//! let mut f = raw.new_file("training.csv", NewFileOptions::default())?;
//! writeln!(f, "x,y")?;
//! f.close()?;
//! let logged = store.log_artifact(&project, &raw, &LogOptions { run_id: Some(run.id.clone()), ..Default::default() })?;
//! assert_eq!(logged.version.qualified_name(), "mnist-raw:v0");
//!
//! // Logging identical content again creates no new version.
//! assert!(!store.log_artifact(&project, &raw, &LogOptions::default())?.created);
//! assert_eq!(store.artifact(&project, "mnist-raw", "latest")?.version_index, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod distributed;
mod edit;
mod error;
mod gc;
mod records;
mod registry;
mod run_logs;
mod time;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use artifact_core::{
    Artifact, DigestAlgorithm, Manifest, ManifestEntry, NoProgress, Progress, is_version_alias, md5_b64,
    validate_alias, validate_entity_name, validate_project_name,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use io_cache::ObjectDir;
use rayon::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use check::{CheckReport, Problem};
pub use distributed::StoredPart;
pub use edit::{CollectionEdit, VersionEdit, check_deletable, check_linked};
pub use gc::{GcOptions, GcReport};
pub use records::{
    ArtifactEdge, ArtifactVersion, Collection, CollectionKind, Lineage, RunRecord, Ttl, VersionLocation,
};
use records::{CollectionRecord, IdIndexRecord, MemberRecord, StoreMarker, VersionRecord};
pub use registry::{Registry, RegistrySpec, RegistryVisibility};
pub use run_logs::{
    EVENTS_FILE, HEARTBEAT_TIMEOUT, HISTORY_FILE, OUTPUT_FILE, RunState, RunStatus, RunWriter, SUMMARY_FILE,
    StreamChunk,
};

pub use error::{Error, Result};
pub use time::{now_rfc3339, utc_isoformat};

/// The entity used with the embedded store when none is configured.
pub const DEFAULT_ENTITY: &str = "local";

const MARKER_FILE: &str = "dagster-wandb-store.json";
const FORMAT: u32 = 1;

/// An entity and project, validated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProjectRef {
    entity: String,
    project: String,
}

impl ProjectRef {
    /// Validates both names.
    ///
    /// # Errors
    /// The name validation error.
    pub fn new(entity: &str, project: &str) -> artifact_core::Result<Self> {
        validate_entity_name(entity)?;
        validate_project_name(project)?;
        Ok(ProjectRef { entity: entity.to_owned(), project: project.to_owned() })
    }

    /// The entity.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.project
    }
}

/// Splits a link target, `[[ENTITY/]PROJECT/]COLLECTION`, into its project (missing parts from `default`) and
/// collection name, both validated.
///
/// ```
/// use wandb_store::{ProjectRef, link_target};
/// let default = ProjectRef::new("ent", "proj")?;
/// let (project, collection) = link_target("wandb-registry-model/mnist", &default)?;
/// assert_eq!((project.to_string(), collection.as_str()), ("ent/wandb-registry-model".to_owned(), "mnist"));
/// assert!(link_target("a/b/c/d", &default).is_err());
/// # Ok::<(), wandb_store::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidLinkTarget`], name validation errors.
pub fn link_target(target: &str, default: &ProjectRef) -> Result<(ProjectRef, String)> {
    let parts: Vec<&str> = target.split('/').collect();
    let (entity, project, collection) = match parts.as_slice() {
        [collection] => (default.entity(), default.project(), *collection),
        [project, collection] => (default.entity(), *project, *collection),
        [entity, project, collection] => (*entity, *project, *collection),
        _ => return Err(Error::InvalidLinkTarget { target: target.to_owned() }),
    };
    artifact_core::validate_artifact_name(collection)?;
    Ok((ProjectRef::new(entity, project)?, collection.to_owned()))
}

impl std::fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.entity, self.project)
    }
}

/// Options of [`EmbeddedStore::create_run`].
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The run id; a random 8-character id (as the SDK generates) when absent.
    pub id: Option<String>,
    /// A display name.
    pub name: Option<String>,
    /// The kind of step (`load-data`, `train`, …).
    pub job_type: Option<String>,
    /// Tags: any non-empty text (duplicates dropped).
    pub tags: Vec<String>,
}

/// Options of [`EmbeddedStore::log_artifact`].
#[derive(Clone, Default)]
pub struct LogOptions {
    /// Custom aliases for the new version (`latest` is implied and may be repeated).
    pub aliases: Vec<String>,
    /// Tags for the new version (see [`artifact_core::validate_tag`]; duplicates dropped).
    pub tags: Vec<String>,
    /// The run logging the artifact; it must exist. Without a run the artifact has no producer in the lineage.
    pub run_id: Option<String>,
    /// Receives progress while file bodies are stored.
    pub progress: Option<Arc<dyn Progress>>,
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

/// The outcome of [`EmbeddedStore::log_artifact`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedArtifact {
    /// The version the artifact now is: a new one, or the existing latest when the content was identical.
    pub version: ArtifactVersion,
    /// False when the digest equalled the latest version's, so no version was created (the SDK's dedup).
    pub created: bool,
    /// The manifest as stored (`birthArtifactID` set, `local_path` removed).
    pub manifest: Manifest,
    /// File bodies written to the store by this call.
    pub stored_objects: usize,
    /// File bodies the store already had.
    pub reused_objects: usize,
    /// Bytes written to the store by this call.
    pub stored_bytes: u64,
}

/// What a new version is, apart from its files: the input of [`EmbeddedStore::reserve_version`] and
/// [`EmbeddedStore::commit_version`] (a W&B server's `CreateArtifact`).
#[derive(Clone, Debug, Default)]
pub struct VersionDraft {
    /// The collection name.
    pub name: String,
    /// The type.
    pub artifact_type: String,
    /// The artifact digest (lowercase hex) the client computed; equal to the latest version's means dedup.
    pub digest: String,
    /// The algorithm of the entry digests.
    pub digest_algorithm: DigestAlgorithm,
    /// The description.
    pub description: Option<String>,
    /// The metadata object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Custom aliases (`latest` is implied).
    pub aliases: Vec<String>,
    /// Tags (duplicates dropped, first occurrence kept).
    pub tags: Vec<String>,
    /// The run logging it, if any; it must exist.
    pub run_id: Option<String>,
}

impl VersionDraft {
    /// The draft of `artifact` with `digest` (the artifact's own, or a merged manifest's) and `options`.
    pub fn of(artifact: &Artifact, digest: String, options: &LogOptions) -> Self {
        VersionDraft {
            name: artifact.name().to_owned(),
            artifact_type: artifact.artifact_type().to_owned(),
            digest,
            digest_algorithm: artifact.digest_algorithm(),
            description: artifact.description().map(str::to_owned),
            metadata: artifact.metadata().clone(),
            aliases: options.aliases.clone(),
            tags: options.tags.clone(),
            run_id: options.run_id.clone(),
        }
    }
}

/// The outcome of [`EmbeddedStore::reserve_version`].
#[derive(Clone, Debug, PartialEq)]
pub enum Reservation {
    /// The latest version has the same digest: it is the result, and nothing is to be uploaded.
    Existing(Box<ArtifactVersion>),
    /// A new version will be committed under this id.
    Reserved {
        /// The store-wide id of the version to be.
        id: String,
    },
}

/// An embedded artifact store in a local (or shared) directory. See the module docs for the layout.
///
/// ```
/// use artifact_core::{Artifact, NewFileOptions};
/// use std::io::Write;
/// use wandb_store::{EmbeddedStore, LogOptions, ProjectRef, RunOptions};
///
/// let dir = tempfile::tempdir()?;
/// let store = EmbeddedStore::open(dir.path().join("store"))?;
/// let project = ProjectRef::new("local", "artifacts-example")?;
/// let run = store.create_run(&project, RunOptions { job_type: Some("load-data".into()), ..Default::default() })?;
///
/// let mut raw = Artifact::new("mnist-raw", "dataset")?;
/// let mut f = raw.new_file("training.csv", NewFileOptions::default())?;
/// writeln!(f, "x,y")?;
/// f.close()?;
/// let logged = store.log_artifact(&project, &raw, &LogOptions { run_id: Some(run.id.clone()), ..Default::default() })?;
/// assert_eq!(logged.version.qualified_name(), "mnist-raw:v0");
///
/// // Logging identical content again creates no new version.
/// assert!(!store.log_artifact(&project, &raw, &LogOptions::default())?.created);
/// assert_eq!(store.artifact(&project, "mnist-raw", "latest")?.version_index, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    root: PathBuf,
    objects: ObjectDir,
    /// Files and bytes of killed writers' temporaries removed when this store was opened (`check` reports them).
    removed_at_open: (usize, u64),
}

impl EmbeddedStore {
    /// Opens the store in `root`, creating it if the directory is missing or empty.
    ///
    /// # Errors
    /// [`Error::StoreFormat`] when `root` is a non-empty directory that is not a store, or a store in a newer
    /// format; I/O errors.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = std::path::absolute(root.as_ref()).map_err(|e| Error::io("resolve", root.as_ref(), e))?;
        let marker = root.join(MARKER_FILE);
        // Several processes may open a new store at once: each may write the marker (atomically, and any one
        // is as good as another); none may mistake another's half-finished initialisation for a foreign directory.
        for _ in 0..3 {
            match fs::read(&marker) {
                Ok(bytes) => {
                    let parsed: StoreMarker = serde_json::from_slice(&bytes).map_err(|e| Error::StoreFormat {
                        path: marker.clone(),
                        reason: format!("unreadable store marker: {e}"),
                    })?;
                    if parsed.format != FORMAT {
                        return Err(Error::StoreFormat {
                            path: marker,
                            reason: format!(
                                "store format {} is not supported by this version (which reads format {FORMAT})",
                                parsed.format
                            ),
                        });
                    }
                    let objects = ObjectDir::new(root.join("objects"), root.join("tmp"));
                    // Bodies a killed writer was storing: nothing will ever finish them.
                    let removed_at_open = objects.remove_stale_temporaries().unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "could not remove stale temporary files from the store");
                        (0, 0)
                    });
                    return Ok(EmbeddedStore { objects, root, removed_at_open });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if has_foreign_entries(&root)? {
                        if marker.exists() {
                            continue; // Another process finished initialising the store meanwhile.
                        }
                        return Err(Error::StoreFormat {
                            path: root,
                            reason: format!(
                                "exists, is not empty and has no {MARKER_FILE}, so it is not an embedded store; refusing to write into it"
                            ),
                        });
                    }
                    fs::create_dir_all(&root).map_err(|e| Error::io("create directory", &root, e))?;
                    write_json(&marker, &StoreMarker { format: FORMAT, created_at: now_rfc3339() })?;
                }
                Err(e) => return Err(Error::io("read", &marker, e)),
            }
        }
        Err(Error::StoreFormat { path: marker, reason: "the store marker keeps disappearing".to_owned() })
    }

    /// Opens the store in `root`, which must already be one: for what only reads, so that a mistyped path is
    /// an error instead of a new, empty store.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let err = wandb_store::EmbeddedStore::open_existing(dir.path().join("typo")).unwrap_err();
    /// assert!(matches!(err, wandb_store::Error::NoStore { .. }));
    /// assert!(!dir.path().join("typo").exists());
    /// wandb_store::EmbeddedStore::open(dir.path().join("store"))?;
    /// wandb_store::EmbeddedStore::open_existing(dir.path().join("store"))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoStore`] when `root` holds no store; as [`EmbeddedStore::open`] otherwise.
    pub fn open_existing(root: impl AsRef<Path>) -> Result<Self> {
        let root = std::path::absolute(root.as_ref()).map_err(|e| Error::io("resolve", root.as_ref(), e))?;
        match fs::symlink_metadata(root.join(MARKER_FILE)) {
            Ok(_) => Self::open(root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoStore { path: root }),
            Err(e) => Err(Error::io("read", root.join(MARKER_FILE), e)),
        }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a run in `project`.
    ///
    /// # Errors
    /// [`Error::InvalidRunId`], [`Error::RunExists`], I/O errors.
    pub fn create_run(&self, project: &ProjectRef, options: RunOptions) -> Result<RunRecord> {
        let id = match options.id {
            Some(id) => {
                validate_run_id(&id)?;
                id
            }
            None => generate_run_id(),
        };
        let tags = run_tags(&options.tags);
        let _lock = self.lock_project(project)?;
        let path = self.run_path(project, &id);
        if path.exists() {
            return Err(Error::RunExists {
                entity: project.entity.clone(),
                project: project.project.clone(),
                run_id: id,
            });
        }
        let record = RunRecord {
            id,
            name: options.name,
            job_type: options.job_type,
            tags,
            created_at: now_rfc3339(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        write_json(&path, &record)?;
        self.record_run_writer(project, &record.id)?;
        Ok(record)
    }

    /// Resumes run `options.id` of `project`, creating it when it does not exist (the SDK's `resume="allow"`):
    /// a name or tags given replace the stored ones, as `wandb.init` does on resume. Returns the run and
    /// whether it was created.
    ///
    /// # Errors
    /// [`Error::InvalidRunId`] (an id is required), I/O errors.
    pub fn resume_run(&self, project: &ProjectRef, options: RunOptions) -> Result<(RunRecord, bool)> {
        let Some(id) = options.id.clone() else {
            return Err(Error::InvalidRunId { run_id: String::new() });
        };
        validate_run_id(&id)?;
        let tags = run_tags(&options.tags);
        {
            let _lock = self.lock_project(project)?;
            let path = self.run_path(project, &id);
            if let Some(mut record) = read_json::<RunRecord>(&path)? {
                if options.name.is_some() || !tags.is_empty() {
                    record.name = options.name.or(record.name);
                    if !tags.is_empty() {
                        record.tags = tags;
                    }
                    write_json(&path, &record)?;
                }
                return Ok((record, false));
            }
        }
        match self.create_run(project, options) {
            Ok(record) => Ok((record, true)),
            // Another process created it between the two locks.
            Err(Error::RunExists { .. }) => Ok((self.run(project, &id)?, false)),
            Err(e) => Err(e),
        }
    }

    /// The run `run_id` of `project`.
    ///
    /// # Errors
    /// [`Error::RunNotFound`], [`Error::StoreFormat`] for a damaged record.
    pub fn run(&self, project: &ProjectRef, run_id: &str) -> Result<RunRecord> {
        validate_run_id(run_id)?;
        read_json(&self.run_path(project, run_id))?.ok_or_else(|| Error::RunNotFound {
            entity: project.entity.clone(),
            project: project.project.clone(),
            run_id: run_id.to_owned(),
        })
    }

    /// The entities that have at least one project, sorted (names that are not valid entity names are skipped).
    ///
    /// # Errors
    /// I/O errors listing the store.
    pub fn entities(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = list_dir(&self.root.join("entities"))?
            .into_iter()
            .filter(|name| !name.starts_with('.') && ProjectRef::new(name, "p").is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The projects of `entity`, sorted.
    ///
    /// # Errors
    /// An invalid entity name; I/O errors listing the store.
    pub fn projects(&self, entity: &str) -> Result<Vec<ProjectRef>> {
        ProjectRef::new(entity, "p")?;
        let mut projects: Vec<ProjectRef> = list_dir(&self.root.join("entities").join(entity).join("projects"))?
            .into_iter()
            .filter(|name| !name.starts_with('.'))
            .filter_map(|name| ProjectRef::new(entity, &name).ok())
            .collect();
        projects.sort_by(|a, b| a.project.cmp(&b.project));
        Ok(projects)
    }

    /// Every run of `project`, oldest first. A run whose record is damaged is left out with a warning naming
    /// the file (it costs itself, not the listing; `store check` reports it).
    ///
    /// # Errors
    /// I/O errors.
    pub fn runs(&self, project: &ProjectRef) -> Result<Vec<RunRecord>> {
        let dir = self.project_dir(project).join("runs");
        let mut runs = Vec::new();
        for name in list_dir(&dir)? {
            if let Some(id) = name.strip_suffix(".json")
                && !name.starts_with('.')
            {
                match self.run(project, id) {
                    Ok(run) => runs.push(run),
                    Err(Error::StoreFormat { path, reason }) => {
                        tracing::warn!(run = id, path = %path.display(), reason, "skipping a damaged run");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        runs.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(runs)
    }

    /// Logs `artifact` to `project`: stores its file bodies, then creates version `v<N+1>` of the collection —
    /// unless its digest equals the latest version's, in which case the latest version is returned with
    /// `created = false` and only the aliases and the run's output edge are recorded (the server's dedup).
    ///
    /// Every file is re-hashed while it is copied into the store, so a file changed since it was added is
    /// caught ([`Error::FileChanged`]) and nothing is logged.
    ///
    /// # Errors
    /// [`Error::TypeConflict`] when the name exists with another type, invalid aliases, [`Error::RunNotFound`],
    /// [`Error::FileChanged`], [`Error::EntryWithoutSource`], I/O errors.
    pub fn log_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        let progress: Arc<dyn Progress> = options.progress.clone().unwrap_or_else(|| Arc::new(NoProgress));
        custom_aliases(&options.aliases)?;
        artifact_core::validate_tags(&options.tags)?;
        if let Some(run_id) = &options.run_id {
            self.run(project, run_id)?;
        }
        let stored = self.store_objects(artifact.manifest(), &*progress)?;
        let draft = VersionDraft::of(artifact, artifact.digest(), options);
        self.log_draft(project, &draft, artifact.manifest(), stored)
    }

    /// The second half of logging, shared by [`EmbeddedStore::log_artifact`] and the finish of a distributed
    /// artifact: the latest version when `draft`'s digest equals it (dedup), else a new version of `manifest`,
    /// whose bodies `stored` (objects stored, reused, bytes) reports.
    pub(crate) fn log_draft(
        &self,
        project: &ProjectRef,
        draft: &VersionDraft,
        manifest: &Manifest,
        stored: (usize, usize, u64),
    ) -> Result<LoggedArtifact> {
        let mut logged = match self.reserve_version(project, draft)? {
            Reservation::Existing(version) => {
                let manifest = self.manifest(&version)?;
                LoggedArtifact {
                    version: *version,
                    created: false,
                    manifest,
                    stored_objects: 0,
                    reused_objects: 0,
                    stored_bytes: 0,
                }
            }
            Reservation::Reserved { id } => self.commit_version(project, &id, draft, manifest.clone())?,
        };
        (logged.stored_objects, logged.reused_objects, logged.stored_bytes) = stored;
        Ok(logged)
    }

    /// Reserves an id for a new version of `name` without the dedup check: a distributed artifact, whose
    /// content is known only when its parts are merged at commit.
    ///
    /// # Errors
    /// Name errors, I/O errors.
    pub fn reserve_id(&self, project: &ProjectRef, name: &str) -> Result<String> {
        artifact_core::validate_artifact_name(name)?;
        self.allocate_id(project, name, None)
    }

    /// The first half of logging, as a W&B server's `CreateArtifact` does it: when `draft.digest` equals the
    /// latest version's, that version gets the draft's aliases and the run's output edge, and is returned
    /// (dedup); otherwise a store-wide id is reserved for the version [`EmbeddedStore::commit_version`] will
    /// create. A reserved id that is never committed stays unused.
    ///
    /// # Errors
    /// [`Error::TypeConflict`], invalid aliases, [`Error::RunNotFound`], I/O errors.
    pub fn reserve_version(&self, project: &ProjectRef, draft: &VersionDraft) -> Result<Reservation> {
        artifact_core::validate_artifact_name(&draft.name)?;
        artifact_core::validate_stored_type(&draft.artifact_type)?;
        let aliases = custom_aliases(&draft.aliases)?;
        artifact_core::validate_tags(&draft.tags)?;
        if let Some(run_id) = &draft.run_id {
            self.run(project, run_id)?;
        }
        let _lock = self.lock_project(project)?;
        self.ensure_not_a_portfolio(project, &draft.name)?;
        let collection_dir = self.collection_dir(project, &draft.name);
        if let Some(existing) = read_json::<CollectionRecord>(&collection_dir.join("collection.json"))? {
            ensure_same_type(&existing, &draft.artifact_type)?;
            let versions_dir = collection_dir.join("versions");
            if let Some(latest) = live_latest(&versions_dir)? {
                let record = self.version_record(&versions_dir, latest)?;
                if record.digest == draft.digest {
                    tracing::info!(
                        "Artifact \"{}\" already exists with the same content. No new version will be created.",
                        draft.name
                    );
                    self.point_aliases(&collection_dir, &aliases, latest)?;
                    let version = self.version_view(project, &existing, record, latest)?;
                    if let Some(run_id) = &draft.run_id {
                        self.add_edge(project, run_id, &version, Direction::Output)?;
                    }
                    return Ok(Reservation::Existing(Box::new(version)));
                }
            }
        }
        let id = self.allocate_id(project, &draft.name, None)?;
        Ok(Reservation::Reserved { id })
    }

    /// Creates the next version of `draft.name` with `manifest` under the id [`EmbeddedStore::reserve_version`]
    /// reserved (the manifest is taken, as it is returned in the result, changed). Every file body must already be in the store (see [`EmbeddedStore::insert_object`]);
    /// `birthArtifactID` is set to `id` on entries that have none and `local_path` is dropped.
    ///
    /// # Errors
    /// [`Error::ArtifactIdNotFound`] for an id not reserved (or already committed), [`Error::TypeConflict`],
    /// [`Error::MissingObject`] for a body the store lacks, invalid aliases, I/O errors.
    pub fn commit_version(
        &self,
        project: &ProjectRef,
        id: &str,
        draft: &VersionDraft,
        mut manifest: Manifest,
    ) -> Result<LoggedArtifact> {
        artifact_core::validate_artifact_name(&draft.name)?;
        artifact_core::validate_stored_type(&draft.artifact_type)?;
        let aliases = custom_aliases(&draft.aliases)?;
        let tags = artifact_core::validate_tags(&draft.tags)?;
        // Nothing a client would refuse to download is committed, whoever uploaded the manifest.
        for (path, _) in manifest.entries() {
            artifact_core::LogicalPath::from_stored_key(path)?;
        }
        let index_path = self.id_index_path(id)?;
        let reserved: Option<IdIndexRecord> = read_json(&index_path)?;
        if reserved.as_ref().is_none_or(|r| r.version_index.is_some()) {
            return Err(Error::ArtifactIdNotFound { id: id.to_owned() });
        }
        for (path, entry) in manifest.entries_mut() {
            entry.local_path = None;
            if entry.is_reference() {
                continue;
            }
            if entry.birth_artifact_id.is_none() {
                entry.birth_artifact_id = Some(id.to_owned());
            }
            if self.objects.lookup(&entry.digest, entry.digest_algorithm(), entry.size.unwrap_or(0))?.is_none() {
                return Err(Error::MissingObject { path: path.to_owned(), digest: entry.digest.clone() });
            }
        }

        let _lock = self.lock_project(project)?;
        self.ensure_not_a_portfolio(project, &draft.name)?;
        let collection_dir = self.collection_dir(project, &draft.name);
        let collection = match read_json::<CollectionRecord>(&collection_dir.join("collection.json"))? {
            Some(existing) => {
                ensure_same_type(&existing, &draft.artifact_type)?;
                existing
            }
            None => {
                let record = CollectionRecord {
                    name: draft.name.clone(),
                    artifact_type: draft.artifact_type.clone(),
                    created_at: now_rfc3339(),
                    description: None,
                    tags: Vec::new(),
                };
                write_json(&collection_dir.join("collection.json"), &record)?;
                record
            }
        };
        let versions_dir = collection_dir.join("versions");
        remove_abandoned_staging(&versions_dir)?;
        let index = edit::next_index(&collection_dir)?;
        let manifest_bytes = manifest.to_go_json();
        let record = VersionRecord {
            id: id.to_owned(),
            version_index: index,
            digest: draft.digest.clone(),
            digest_algorithm: draft.digest_algorithm.graphql_name().to_owned(),
            description: draft.description.clone(),
            metadata: draft.metadata.clone(),
            size: manifest.total_size(),
            file_count: manifest.len() as u64,
            created_at: now_rfc3339(),
            created_by: draft.run_id.clone(),
            manifest_digest: md5_b64(&manifest_bytes),
            tags,
            ttl: Ttl::Inherit,
        };
        let staging = versions_dir.join(format!(".tmp-{}", random_suffix()));
        fs::create_dir_all(&staging).map_err(|e| Error::io("create directory", &staging, e))?;
        write_file(&staging.join("manifest.json"), &manifest_bytes)?;
        write_json(&staging.join("version.json"), &record)?;
        let final_dir = versions_dir.join(index.to_string());
        fs::rename(&staging, &final_dir).map_err(|e| Error::io("commit version", &final_dir, e))?;
        write_json(
            &index_path,
            &IdIndexRecord {
                entity: project.entity.clone(),
                project: project.project.clone(),
                name: draft.name.clone(),
                version_index: Some(index),
            },
        )?;

        self.point_aliases(&collection_dir, &aliases, index)?;
        let version = self.version_view(project, &collection, record, index)?;
        if let Some(run_id) = &draft.run_id {
            self.add_edge(project, run_id, &version, Direction::Output)?;
        }
        Ok(LoggedArtifact { version, created: true, manifest, stored_objects: 0, reused_objects: 0, stored_bytes: 0 })
    }

    /// True when the store has a body under `digest` (of `algorithm`), whatever its size.
    ///
    /// # Errors
    /// [`Error::Cache`] for a digest that is not base64.
    pub fn object_path_if_present(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<bool> {
        let path = self.objects.object_path(digest, algorithm)?;
        let present = path.is_file();
        if present {
            // A client will reference it without uploading it: young enough for `gc` to keep it.
            touch(&path);
        }
        Ok(present)
    }

    /// Where the body with `digest` (of `algorithm`) is kept, whether or not it is there.
    ///
    /// # Errors
    /// [`Error::Cache`] for a digest that is not base64.
    pub fn object_file(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<PathBuf> {
        Ok(self.objects.object_path(digest, algorithm)?)
    }

    /// Removes the body with `digest`, if present.
    ///
    /// # Errors
    /// I/O errors.
    pub fn remove_object(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<()> {
        Ok(self.objects.remove(digest, algorithm)?)
    }

    /// Records that run `run_id` of `project` used `version` (an input edge of the lineage), in the run's record
    /// and in the index of uses, which finds the run from the version's side even when it is in another project.
    /// A version seen through a portfolio or registry collection is recorded as its source (its id's version).
    ///
    /// # Errors
    /// [`Error::RunNotFound`], I/O errors.
    pub fn record_use(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()> {
        self.run(project, run_id)?;
        let version = &*self.source_of(version)?;
        let _lock = self.lock_project(project)?;
        self.add_edge(project, run_id, version, Direction::Input)
    }

    /// Where the version with store-wide id `id` lives now, from the id index (two small records read, whatever
    /// the size of its collection), or `None` for an id never given, only reserved, or whose version was deleted.
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn locate_artifact(&self, id: &str) -> Result<Option<VersionLocation>> {
        let Ok(path) = self.id_index_path(id) else { return Ok(None) };
        let Some(record) = read_json::<IdIndexRecord>(&path)? else { return Ok(None) };
        let Some(version_index) = record.version_index else { return Ok(None) };
        let project = ProjectRef::new(&record.entity, &record.project)?;
        let collection_dir = self.collection_dir(&project, &record.name);
        let Some(collection) = read_json::<CollectionRecord>(&collection_dir.join("collection.json"))? else {
            return Ok(None);
        };
        Ok(Some(VersionLocation { project, name: record.name, artifact_type: collection.artifact_type, version_index }))
    }

    /// Runs of projects other than the version's own that used the version with store-wide id `id`, each with
    /// its project, oldest first, at most `limit` of them: what the index of uses holds (every use recorded since
    /// the index exists; `check` with `repair` adds the older ones). An entry whose run is gone, or no longer
    /// lists the use, is left out. Costs one directory listing per project that used it and one record per run.
    ///
    /// # Errors
    /// I/O errors listing the index.
    pub fn uses_elsewhere(&self, id: &str, limit: usize) -> Result<Vec<(ProjectRef, RunRecord)>> {
        let Ok(dir) = self.uses_dir(id) else { return Ok(Vec::new()) };
        let owner = self.artifact_owner(id)?;
        let mut found = Vec::new();
        for entity in list_dir(&dir)? {
            for project in list_dir(&dir.join(&entity))? {
                let Ok(project) = ProjectRef::new(&entity, &project) else { continue };
                if owner.as_ref() == Some(&project) {
                    continue;
                }
                let mut run_ids = list_dir(&dir.join(&entity).join(project.project()))?;
                run_ids.sort();
                for run_id in run_ids {
                    if found.len() >= limit {
                        break;
                    }
                    match self.run(&project, &run_id) {
                        Ok(run) if run.inputs.iter().any(|e| e.id == id) => found.push((project.clone(), run)),
                        Ok(_) | Err(Error::RunNotFound { .. } | Error::InvalidRunId { .. }) => {}
                        Err(Error::StoreFormat { path, reason }) => {
                            tracing::warn!(run = run_id, path = %path.display(), reason, "skipping a damaged run");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        found.sort_by(|a, b| (&a.1.created_at, &a.0, &a.1.id).cmp(&(&b.1.created_at, &b.0, &b.1.id)));
        Ok(found)
    }

    /// `index/uses/<n>` for id `base64("Artifact:<n>")`.
    fn uses_dir(&self, id: &str) -> Result<PathBuf> {
        let index = self.id_index_path(id)?;
        let number = index.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        Ok(self.root.join("index/uses").join(number))
    }

    /// Adds run `run_id` of `project` to the index of uses of artifact `id` (idempotent: an empty file).
    pub(crate) fn index_use(&self, project: &ProjectRef, run_id: &str, id: &str) -> Result<()> {
        let dir = self.uses_dir(id)?.join(&project.entity).join(&project.project);
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let path = dir.join(run_id);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        Ok(())
    }

    /// Stores a file body under `digest`, verifying it on the way in (what a W&B server does with an upload).
    ///
    /// # Errors
    /// [`Error::Cache`] with the digest mismatch, I/O errors.
    pub fn insert_object(&self, digest: &str, algorithm: DigestAlgorithm, body: &mut dyn Read) -> Result<PathBuf> {
        Ok(self.objects.insert_verified(digest, algorithm, body)?)
    }

    /// Links `version` into the portfolio `portfolio` of `target` (created on first use, with the version's
    /// type), as W&B's `linkArtifact` does: the portfolio gets its own `v0, v1, …`, `latest` is its newest
    /// member, and `aliases` move to the new member. Linking the version the portfolio's latest member already
    /// is returns that member. The result is the version as seen through the portfolio (its `linked_from`
    /// names the source).
    ///
    /// # Errors
    /// [`Error::TypeConflict`] when the portfolio (or a collection of that name) has another type, or the name
    /// is a collection of `target` (a sequence cannot be a link target), invalid aliases, I/O errors.
    pub fn link_version(
        &self,
        version: &ArtifactVersion,
        target: &ProjectRef,
        portfolio: &str,
        aliases: &[String],
    ) -> Result<ArtifactVersion> {
        artifact_core::validate_artifact_name(portfolio)?;
        let aliases = custom_aliases(aliases)?;
        self.check_registry_accepts(target, &version.artifact_type)?;
        let _lock = self.lock_project(target)?;
        if let Some(existing) =
            read_json::<CollectionRecord>(&self.collection_dir(target, portfolio).join("collection.json"))?
        {
            return Err(Error::LinkTargetIsSequence { target: format!("{target}/{}", existing.name) });
        }
        let dir = self.portfolio_dir(target, portfolio);
        let record = match read_json::<CollectionRecord>(&dir.join("portfolio.json"))? {
            Some(existing) => {
                ensure_same_type(&existing, &version.artifact_type)?;
                existing
            }
            None => {
                let record = CollectionRecord {
                    name: portfolio.to_owned(),
                    artifact_type: version.artifact_type.clone(),
                    created_at: now_rfc3339(),
                    description: None,
                    tags: Vec::new(),
                };
                write_json(&dir.join("portfolio.json"), &record)?;
                record
            }
        };
        let members_dir = dir.join("versions");
        let latest = latest_index(&members_dir)?;
        let index = match latest {
            Some(latest) if self.member(&members_dir, latest)?.id == version.id => latest,
            _ => {
                let index = edit::next_index(&dir)?;
                write_json(
                    &members_dir.join(index.to_string()),
                    &MemberRecord { id: version.id.clone(), linked_at: now_rfc3339() },
                )?;
                index
            }
        };
        self.point_aliases(&dir, &aliases, index)?;
        self.portfolio_view(target, &record, index)
    }
    /// Checks that collection `name` does not exist with a type other than `artifact_type` — the SDK's
    /// `ArtifactType` query before logging. [`EmbeddedStore::log_artifact`] checks again under the lock.
    ///
    /// # Errors
    /// [`Error::TypeConflict`], damaged records.
    pub fn check_type(&self, project: &ProjectRef, name: &str, artifact_type: &str) -> Result<()> {
        let collection: Option<CollectionRecord> =
            read_json(&self.collection_dir(project, name).join("collection.json"))?;
        match collection {
            Some(existing) if existing.artifact_type != artifact_type => Err(Error::TypeConflict {
                name: name.to_owned(),
                existing: existing.artifact_type,
                requested: artifact_type.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// The version of collection `name` that `selector` names: `latest`, `vN`, or a custom alias.
    ///
    /// # Errors
    /// [`Error::ProjectNotFound`], [`Error::ArtifactNotFound`], damaged records.
    pub fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
        let not_found = || {
            if self.project_dir(project).is_dir() {
                Error::ArtifactNotFound {
                    entity: project.entity.clone(),
                    project: project.project.clone(),
                    name: format!("{name}:{selector}"),
                }
            } else {
                Error::ProjectNotFound { entity: project.entity.clone(), project: project.project.clone() }
            }
        };
        artifact_core::validate_artifact_name(name)?;
        let collection_dir = self.collection_dir(project, name);
        let Some(collection) = read_json::<CollectionRecord>(&collection_dir.join("collection.json"))? else {
            let portfolio_dir = self.portfolio_dir(project, name);
            let Some(portfolio) = read_json::<CollectionRecord>(&portfolio_dir.join("portfolio.json"))? else {
                return Err(not_found());
            };
            let index = select_index(&portfolio_dir, selector)?.ok_or_else(not_found)?;
            return self.portfolio_view(project, &portfolio, index);
        };
        let index = select_index(&collection_dir, selector)?.ok_or_else(not_found)?;
        let record = self.version_record(&collection_dir.join("versions"), index)?;
        if edit::is_expired(record.ttl, &record.created_at, std::time::SystemTime::now()) {
            return Err(not_found());
        }
        self.version_view(project, &collection, record, index)
    }

    /// The version `version` stands for: itself, or for one seen through a portfolio or registry collection, its
    /// source (the version its id names), where its manifest and lineage live.
    fn source_of<'a>(&self, version: &'a ArtifactVersion) -> Result<std::borrow::Cow<'a, ArtifactVersion>> {
        Ok(match version.linked_from {
            Some(_) => std::borrow::Cow::Owned(self.artifact_by_id(&version.id)?),
            None => std::borrow::Cow::Borrowed(version),
        })
    }

    /// The version with store-wide id `id`.
    ///
    /// # Errors
    /// [`Error::ArtifactIdNotFound`].
    pub fn artifact_by_id(&self, id: &str) -> Result<ArtifactVersion> {
        let not_found = || Error::ArtifactIdNotFound { id: id.to_owned() };
        let index: IdIndexRecord = read_json(&self.id_index_path(id)?)?.ok_or_else(not_found)?;
        let version_index = index.version_index.ok_or_else(not_found)?;
        let project = ProjectRef::new(&index.entity, &index.project)?;
        self.artifact(&project, &index.name, &format!("v{version_index}"))
    }

    /// The manifest of `version` (for a version seen through a portfolio, its source's), refused unless its
    /// entries hash to the version's digest.
    ///
    /// # Errors
    /// Damaged or missing manifest files ([`Error::StoreFormat`] naming the file).
    pub fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
        let version = &*self.source_of(version)?;
        let project = ProjectRef::new(&version.entity, &version.project)?;
        let versions_dir = self.collection_dir(&project, &version.name).join("versions");
        let manifest = self.read_manifest(&versions_dir, version.version_index)?;
        // A manifest changed after its commit would download other files than the version names.
        if !version.digest.is_empty() && !manifest.hashes_to(&version.digest) {
            return Err(Error::StoreFormat {
                path: versions_dir.join(version.version_index.to_string()).join("manifest.json"),
                reason: format!(
                    "damaged manifest: its entries hash to {}, not to {}, the digest {} was committed with",
                    manifest.digest(),
                    version.digest,
                    version.qualified_name()
                ),
            });
        }
        Ok(manifest)
    }

    /// Every version of collection `name` (a sequence or a portfolio), oldest first; expired versions are left
    /// out.
    ///
    /// # Errors
    /// [`Error::ArtifactNotFound`] for an unknown collection; damaged records.
    pub fn versions(&self, project: &ProjectRef, name: &str) -> Result<Vec<ArtifactVersion>> {
        let latest = self.artifact(project, name, "latest")?;
        let versions_dir = match latest.linked_from {
            Some(_) => self.portfolio_dir(project, name).join("versions"),
            None => self.collection_dir(project, name).join("versions"),
        };
        let mut versions = Vec::new();
        for i in (0..=latest.version_index).filter(|i| versions_dir.join(i.to_string()).exists()) {
            match self.artifact(project, name, &format!("v{i}")) {
                Ok(version) => versions.push(version),
                // Expired, or deleted meanwhile.
                Err(Error::ArtifactNotFound { .. } | Error::ArtifactIdNotFound { .. }) => {}
                // One damaged record costs its version, not the listing.
                Err(Error::StoreFormat { path, reason }) => {
                    tracing::warn!(version = format!("{name}:v{i}"), path = %path.display(), reason, "skipping a damaged version");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(versions)
    }

    /// The collections of `project` — sequences and portfolios — (optionally of one type), by name, each with
    /// its latest version.
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn collections(&self, project: &ProjectRef, artifact_type: Option<&str>) -> Result<Vec<Collection>> {
        let mut out = Vec::new();
        type Listing = fn(&EmbeddedStore, &ProjectRef, &str, Option<&str>) -> Result<Option<Collection>>;
        let kinds: [(&str, Listing); 2] =
            [("collections", Self::sequence_listing), ("portfolios", Self::portfolio_listing)];
        for (subdir, listing) in kinds {
            for name in list_dir(&self.project_dir(project).join(subdir))? {
                if name.starts_with('.') {
                    continue;
                }
                match listing(self, project, &name, artifact_type) {
                    Ok(Some(collection)) => out.push(collection),
                    Ok(None) => {}
                    Err(e @ Error::StoreFormat { .. }) => warn_damaged(&name, &e),
                    Err(e) => return Err(e),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Sequence `name` as a listing shows it, if it is of `artifact_type` and has a live version.
    fn sequence_listing(
        &self,
        project: &ProjectRef,
        name: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Collection>> {
        let collection_dir = self.collection_dir(project, name);
        let Some(record) = read_json::<CollectionRecord>(&collection_dir.join("collection.json"))? else {
            return Ok(None);
        };
        if artifact_type.is_some_and(|t| t != record.artifact_type) {
            return Ok(None);
        }
        let versions_dir = collection_dir.join("versions");
        let Some(latest) = live_latest(&versions_dir)? else { return Ok(None) };
        let version_count = count_versions(&versions_dir)?;
        let latest = self.version_view(project, &record, self.version_record(&versions_dir, latest)?, latest)?;
        Ok(Some(Collection {
            name: record.name,
            artifact_type: record.artifact_type,
            kind: CollectionKind::Sequence,
            description: record.description,
            tags: record.tags,
            version_count,
            latest,
        }))
    }

    /// Portfolio `name` as a listing shows it, if it is of `artifact_type` and has a member.
    fn portfolio_listing(
        &self,
        project: &ProjectRef,
        name: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Collection>> {
        let dir = self.portfolio_dir(project, name);
        let Some(record) = read_json::<CollectionRecord>(&dir.join("portfolio.json"))? else { return Ok(None) };
        if artifact_type.is_some_and(|t| t != record.artifact_type) {
            return Ok(None);
        }
        let members_dir = dir.join("versions");
        let Some(latest) = latest_index(&members_dir)? else { return Ok(None) };
        let version_count = count_versions(&members_dir)?;
        let latest = self.portfolio_view(project, &record, latest)?;
        Ok(Some(Collection {
            name: record.name,
            artifact_type: record.artifact_type,
            kind: CollectionKind::Portfolio,
            description: record.description,
            tags: record.tags,
            version_count,
            latest,
        }))
    }

    /// Which run logged `version` and which runs used it, in its project and elsewhere (for a version seen through
    /// a portfolio or registry collection, its source's).
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn lineage(&self, version: &ArtifactVersion) -> Result<Lineage> {
        let version = &*self.source_of(version)?;
        let project = ProjectRef::new(&version.entity, &version.project)?;
        let runs = self.runs(&project)?;
        let created_by = version.created_by.as_ref().and_then(|id| runs.iter().find(|r| &r.id == id).cloned());
        let used_by = runs.into_iter().filter(|r| r.inputs.iter().any(|e| e.id == version.id)).collect();
        let used_elsewhere = self.uses_elsewhere(&version.id, usize::MAX)?;
        Ok(Lineage { created_by, used_by, used_elsewhere })
    }

    /// Where the body of a file entry is kept.
    ///
    /// # Errors
    /// [`Error::Cache`] for an entry whose digest is not base64.
    pub fn object_path(&self, entry: &ManifestEntry) -> Result<PathBuf> {
        Ok(self.objects.object_path(&entry.digest, entry.digest_algorithm())?)
    }

    fn store_objects(&self, manifest: &Manifest, progress: &dyn Progress) -> Result<(usize, usize, u64)> {
        // One task per distinct body: identical files are stored once.
        let mut bodies: HashMap<(DigestAlgorithm, &str), (&str, &ManifestEntry)> = HashMap::new();
        for (path, entry) in manifest.entries() {
            if !entry.is_reference() {
                bodies.entry((entry.digest_algorithm(), entry.digest.as_str())).or_insert((path, entry));
            }
        }
        let bodies: Vec<_> = bodies.into_iter().collect();
        progress.begin("storing", bodies.iter().map(|(_, (_, e))| e.size.unwrap_or(0)).sum());
        progress.set_files(bodies.len() as u64);
        let outcomes = bodies
            .par_iter()
            .map(|((algorithm, digest), (path, entry))| -> Result<Option<u64>> {
                let size = entry.size.unwrap_or(0);
                if let Some(existing) = self.objects.lookup(digest, *algorithm, size)? {
                    // About to be referenced again: young enough for `gc` to keep it.
                    touch(&existing);
                    progress.advance(size);
                    progress.file_done();
                    return Ok(None);
                }
                let local =
                    entry.local_path.as_ref().ok_or_else(|| Error::EntryWithoutSource { path: (*path).to_owned() })?;
                let mut file = File::open(local).map_err(|e| Error::io("open", local, e))?;
                let mut reader = ProgressReader { inner: &mut file, progress };
                let inserted = self.objects.insert_verified(digest, *algorithm, &mut reader);
                progress.file_done();
                match inserted {
                    Ok(_) => Ok(Some(size)),
                    Err(io_cache::Error::DigestMismatch { expected, actual, .. }) => {
                        Err(Error::FileChanged { path: local.clone(), expected, actual })
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        progress.finish();
        let stored: Vec<u64> = outcomes.iter().flatten().copied().collect();
        Ok((stored.len(), outcomes.len() - stored.len(), stored.iter().sum()))
    }

    fn allocate_id(&self, project: &ProjectRef, name: &str, version_index: Option<u64>) -> Result<String> {
        let lock = open_lock(&self.root.join("ids.lock"))?;
        let counter_path = self.root.join("ids.next");
        let next = match fs::read_to_string(&counter_path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| Error::StoreFormat {
                path: counter_path.clone(),
                reason: format!("not a number: {text:?}"),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 1,
            Err(e) => return Err(Error::io("read", &counter_path, e)),
        };
        write_file(&counter_path, format!("{}\n", next + 1).as_bytes())?;
        let index = IdIndexRecord {
            entity: project.entity.clone(),
            project: project.project.clone(),
            name: name.to_owned(),
            version_index,
        };
        write_json(&self.root.join("index/artifacts").join(format!("{next}.json")), &index)?;
        drop(lock);
        Ok(B64.encode(format!("Artifact:{next}")))
    }

    /// `index/artifacts/<n>.json` for id `base64("Artifact:<n>")`.
    /// The project a store-wide artifact id belongs to — reserved or committed, its version deleted or not — or
    /// `None` for an id nothing was given (a server checks access with it before an operation runs).
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn artifact_owner(&self, id: &str) -> Result<Option<ProjectRef>> {
        let Ok(path) = self.id_index_path(id) else { return Ok(None) };
        match read_json::<IdIndexRecord>(&path)? {
            Some(record) => Ok(Some(ProjectRef::new(&record.entity, &record.project)?)),
            None => Ok(None),
        }
    }

    /// The artifact id a client's `clientID` was given, if any: a W&B server answers a repeated `CreateArtifact`
    /// with the same artifact (`wandb job create` sends one from the public API, then the run sends its own).
    ///
    /// # Errors
    /// I/O errors.
    pub fn artifact_for_client_id(&self, client_id: &str) -> Result<Option<String>> {
        let Some(path) = self.client_id_path(client_id) else { return Ok(None) };
        read_json(&path)
    }

    /// Records that `client_id` names artifact `id` (a client id that is not plain letters, digits, `-` and `_` is
    /// not recorded; clients generate alphanumeric ones).
    ///
    /// # Errors
    /// I/O errors.
    pub fn record_client_id(&self, client_id: &str, id: &str) -> Result<()> {
        match self.client_id_path(client_id) {
            Some(path) => write_json(&path, &id),
            None => Ok(()),
        }
    }

    fn client_id_path(&self, client_id: &str) -> Option<PathBuf> {
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        (!client_id.is_empty() && client_id.len() <= 256 && client_id.chars().all(plain))
            .then(|| self.root.join("index/clients").join(client_id))
    }

    fn id_index_path(&self, id: &str) -> Result<PathBuf> {
        let not_found = || Error::ArtifactIdNotFound { id: id.to_owned() };
        let decoded = B64.decode(id).map_err(|_| not_found())?;
        let number = std::str::from_utf8(&decoded)
            .ok()
            .and_then(|s| s.strip_prefix("Artifact:"))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(not_found)?;
        Ok(self.root.join("index/artifacts").join(format!("{number}.json")))
    }

    fn portfolio_dir(&self, project: &ProjectRef, name: &str) -> PathBuf {
        self.project_dir(project).join("portfolios").join(name)
    }

    /// Collections and portfolios share one namespace per project. The caller holds the project lock.
    fn ensure_not_a_portfolio(&self, project: &ProjectRef, name: &str) -> Result<()> {
        match read_json::<CollectionRecord>(&self.portfolio_dir(project, name).join("portfolio.json"))? {
            Some(_) => Err(Error::NameIsPortfolio { name: format!("{project}/{name}") }),
            None => Ok(()),
        }
    }

    fn member(&self, members_dir: &Path, index: u64) -> Result<MemberRecord> {
        let path = members_dir.join(index.to_string());
        read_json(&path)?.ok_or_else(|| Error::StoreFormat { path, reason: "portfolio member missing".to_owned() })
    }

    /// Member `index` of a portfolio: the source version, named and aliased as the portfolio sees it.
    fn portfolio_view(
        &self,
        project: &ProjectRef,
        portfolio: &CollectionRecord,
        index: u64,
    ) -> Result<ArtifactVersion> {
        let dir = self.portfolio_dir(project, &portfolio.name);
        let members_dir = dir.join("versions");
        let member = self.member(&members_dir, index)?;
        let source = self.artifact_by_id(&member.id)?;
        let mut aliases = aliases_for_view(&dir, index)?;
        if latest_index(&members_dir)? == Some(index) {
            aliases.push("latest".to_owned());
        }
        aliases.sort();
        Ok(ArtifactVersion {
            entity: project.entity.clone(),
            project: project.project.clone(),
            name: portfolio.name.clone(),
            version_index: index,
            aliases,
            linked_from: Some(format!("{}/{}/{}", source.entity, source.project, source.qualified_name())),
            ..source
        })
    }

    fn point_aliases(&self, collection_dir: &Path, aliases: &[String], index: u64) -> Result<()> {
        if aliases.is_empty() {
            return Ok(());
        }
        let mut map = read_aliases(collection_dir)?;
        let before = map.clone();
        for alias in aliases {
            map.insert(alias.clone(), index);
        }
        if map != before {
            write_json(&collection_dir.join("aliases.json"), &map)?;
        }
        Ok(())
    }

    /// Records an input or output edge on a run. The caller holds the project lock.
    fn add_edge(
        &self,
        project: &ProjectRef,
        run_id: &str,
        version: &ArtifactVersion,
        direction: Direction,
    ) -> Result<()> {
        let mut run = self.run(project, run_id)?;
        let edges = match direction {
            Direction::Input => &mut run.inputs,
            Direction::Output => &mut run.outputs,
        };
        if matches!(direction, Direction::Input) {
            // Indexed first: an entry whose edge a crash kept from being written is left out by readers.
            self.index_use(project, run_id, &version.id)?;
        }
        if edges.iter().any(|e| e.id == version.id) {
            return Ok(());
        }
        edges.push(ArtifactEdge::of(version));
        write_json(&self.run_path(project, run_id), &run)
    }

    fn version_record(&self, versions_dir: &Path, index: u64) -> Result<VersionRecord> {
        let path = versions_dir.join(index.to_string()).join("version.json");
        read_json(&path)?.ok_or_else(|| Error::StoreFormat { path, reason: "version record missing".to_owned() })
    }

    fn read_manifest(&self, versions_dir: &Path, index: u64) -> Result<Manifest> {
        let path = versions_dir.join(index.to_string()).join("manifest.json");
        let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        Ok(Manifest::from_json(&bytes)?)
    }

    fn version_view(
        &self,
        project: &ProjectRef,
        collection: &CollectionRecord,
        record: VersionRecord,
        index: u64,
    ) -> Result<ArtifactVersion> {
        let collection_dir = self.collection_dir(project, &collection.name);
        let latest = live_latest(&collection_dir.join("versions"))?;
        let mut aliases = aliases_for_view(&collection_dir, index)?;
        if latest == Some(index) {
            aliases.push("latest".to_owned());
        }
        aliases.sort();
        Ok(ArtifactVersion {
            id: record.id,
            entity: project.entity.clone(),
            project: project.project.clone(),
            name: collection.name.clone(),
            artifact_type: collection.artifact_type.clone(),
            version_index: index,
            aliases,
            digest: record.digest,
            digest_algorithm: record.digest_algorithm,
            description: record.description,
            metadata: record.metadata,
            size: record.size,
            file_count: record.file_count,
            created_at: record.created_at,
            created_by: record.created_by,
            tags: record.tags,
            linked_from: None,
            ttl: record.ttl,
        })
    }

    /// True when anything was ever logged to `project` (an artifact or a run).
    pub fn project_exists(&self, project: &ProjectRef) -> bool {
        self.project_dir(project).is_dir()
    }

    fn project_dir(&self, project: &ProjectRef) -> PathBuf {
        self.root.join("entities").join(&project.entity).join("projects").join(&project.project)
    }

    fn collection_dir(&self, project: &ProjectRef, name: &str) -> PathBuf {
        self.project_dir(project).join("collections").join(name)
    }

    fn run_path(&self, project: &ProjectRef, run_id: &str) -> PathBuf {
        self.project_dir(project).join("runs").join(format!("{run_id}.json"))
    }

    fn lock_project(&self, project: &ProjectRef) -> Result<File> {
        open_lock(&self.project_dir(project).join("lock"))
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Input,
    Output,
}

struct ProgressReader<'a> {
    inner: &'a mut File,
    progress: &'a dyn Progress,
}

impl Read for ProgressReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// One name, one type: the SDK's rule, with its message.
fn ensure_same_type(existing: &CollectionRecord, requested: &str) -> Result<()> {
    if existing.artifact_type == requested {
        return Ok(());
    }
    Err(Error::TypeConflict {
        name: existing.name.clone(),
        existing: existing.artifact_type.clone(),
        requested: requested.to_owned(),
    })
}

fn validate_run_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && id != "."
        && id != "..";
    if ok { Ok(()) } else { Err(Error::InvalidRunId { run_id: id.to_owned() }) }
}

/// A new run id as the SDK generates them: 8 characters from `[a-z0-9]`.
pub fn generate_run_id() -> String {
    std::iter::repeat_with(|| fastrand::alphanumeric().to_ascii_lowercase()).take(8).collect()
}

/// Run tags as W&B keeps them: any non-empty text (the artifact tag rules do not apply to runs), first
/// occurrence kept.
///
/// ```
/// assert_eq!(wandb_store::run_tags(&["a".into(), "".into(), "a".into(), "b c".into()]), ["a", "b c"]);
/// ```
pub fn run_tags(tags: &[String]) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags.iter().filter(|t| !t.is_empty()) {
        if !unique.contains(tag) {
            unique.push(tag.clone());
        }
    }
    unique
}

/// Validates and de-duplicates requested aliases, dropping `latest` (which is implicit).
fn custom_aliases(aliases: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for alias in aliases {
        validate_alias(alias)?;
        if alias != "latest" && !out.contains(alias) {
            out.push(alias.clone());
        }
    }
    Ok(out)
}

/// A listing leaves out a collection whose records are damaged, saying which and why.
fn warn_damaged(name: &str, error: &Error) {
    tracing::warn!(collection = name, error = %error, "skipping a damaged collection");
}

fn read_aliases(collection_dir: &Path) -> Result<BTreeMap<String, u64>> {
    Ok(read_json(&collection_dir.join("aliases.json"))?.unwrap_or_default())
}

/// The custom aliases of version `index`, for showing a version: a damaged `aliases.json` costs the aliases
/// (with a warning naming the file), not the version. Resolving or changing an alias still fails on it.
fn aliases_for_view(collection_dir: &Path, index: u64) -> Result<Vec<String>> {
    let aliases = match read_aliases(collection_dir) {
        Ok(aliases) => aliases,
        Err(Error::StoreFormat { path, reason }) => {
            tracing::warn!(path = %path.display(), reason, "damaged alias record; showing versions without their custom aliases");
            BTreeMap::new()
        }
        Err(e) => return Err(e),
    };
    Ok(aliases.into_iter().filter(|(_, i)| *i == index).map(|(a, _)| a).collect())
}

/// The version index `selector` (`latest`, `vN` or a custom alias) names in a collection or portfolio
/// directory (which holds `versions/` and `aliases.json`).
fn select_index(dir: &Path, selector: &str) -> Result<Option<u64>> {
    let versions_dir = dir.join("versions");
    let Some(latest) = live_latest(&versions_dir)? else { return Ok(None) };
    if selector == "latest" {
        return Ok(Some(latest));
    }
    if is_version_alias(selector) {
        return Ok(selector[1..].parse::<u64>().ok().filter(|i| versions_dir.join(i.to_string()).exists()));
    }
    Ok(read_aliases(dir)?.get(selector).copied())
}

/// How many committed versions (or portfolio members) `versions_dir` holds.
fn count_versions(versions_dir: &Path) -> Result<u64> {
    Ok(list_dir(versions_dir)?.iter().filter(|n| n.parse::<u64>().is_ok()).count() as u64)
}

/// The highest version of a collection that has not expired (of a portfolio, its highest member), if any.
fn live_latest(versions_dir: &Path) -> Result<Option<u64>> {
    let mut indices: Vec<u64> = list_dir(versions_dir)?.iter().filter_map(|n| n.parse::<u64>().ok()).collect();
    indices.sort_unstable_by(|a, b| b.cmp(a));
    let now = std::time::SystemTime::now();
    for index in indices {
        let path = versions_dir.join(index.to_string()).join("version.json");
        match read_json::<VersionRecord>(&path) {
            Ok(Some(record)) if edit::is_expired(record.ttl, &record.created_at, now) => continue,
            // A portfolio member is a file, not a directory with a record: members do not expire themselves.
            Ok(_) | Err(Error::Io { .. }) => return Ok(Some(index)),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The highest committed version index in `versions_dir`, if any.
fn latest_index(versions_dir: &Path) -> Result<Option<u64>> {
    Ok(list_dir(versions_dir)?.iter().filter_map(|n| n.parse::<u64>().ok()).max())
}

/// Removes version directories a crashed writer left half-built. The caller holds the project lock.
fn remove_abandoned_staging(versions_dir: &Path) -> Result<()> {
    for name in list_dir(versions_dir)? {
        if name.starts_with(".tmp-") {
            let path = versions_dir.join(&name);
            fs::remove_dir_all(&path).map_err(|e| Error::io("remove abandoned", &path, e))?;
        }
    }
    Ok(())
}

/// True when `dir` holds anything but temporary files of a store being initialised (`.write-*`).
fn has_foreign_entries(dir: &Path) -> Result<bool> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        if !entry.file_name().to_str().is_some_and(|name| name.starts_with(".write-")) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sets a stored body's modification time to now, best effort (`gc` keeps recently touched bodies).
fn touch(path: &Path) {
    if let Ok(file) = File::open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Names in `dir`; an absent directory is empty.
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn open_lock(path: &Path) -> Result<File> {
    let parent = path.parent().expect("lock files have a parent");
    fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    file.lock().map_err(|e| Error::io("lock", path, e))?;
    Ok(file)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::StoreFormat { path: path.to_path_buf(), reason: format!("damaged record: {e}") }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("store records serialise");
    bytes.push(b'\n');
    write_file(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().expect("store files have a parent");
    fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    let tmp = parent.join(format!(".write-{}", random_suffix()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("move into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn random_suffix() -> String {
    std::iter::repeat_with(fastrand::alphanumeric).take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids() {
        assert!(validate_run_id("run1").is_ok());
        assert!(validate_run_id("a-b_c.d").is_ok());
        for bad in ["", "..", "a/b", "a b", &"r".repeat(129)] {
            assert!(validate_run_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn aliases_are_validated_and_deduplicated() {
        let given: Vec<String> = ["best", "latest", "best", "prod"].iter().map(|s| s.to_string()).collect();
        assert_eq!(custom_aliases(&given).unwrap(), ["best", "prod"]);
        assert!(custom_aliases(&["v1".to_string()]).is_err());
        assert!(custom_aliases(&["a:b".to_string()]).is_err());
    }
}
