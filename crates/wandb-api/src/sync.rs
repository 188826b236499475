//! Copying a project's artifacts from one backend to another: an embedded store pushed to W&B, or a W&B project
//! pulled into an embedded store for an air-gapped machine.
//!
//! Versions are matched by content: walking a collection oldest first, a source version is already in the target
//! when the target's next versions include one with its digest; otherwise it is downloaded (through the content
//! cache, so a body shared by several versions is fetched once) and logged to the target, which stores only the
//! bodies it lacks. Aliases, tags, description, metadata and TTL are then made the source's; portfolio members
//! are linked; the runs of each version's lineage are copied (id, name, job type, tags, config, summary, history,
//! state) and the uses recorded. A second sync finds everything present and moves no bytes.
//!
//! Version numbers are the target's: a source whose versions were deleted has gaps the target does not.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use artifact_core::{Artifact, Manifest, is_version_alias};
use serde_json::Value;

use crate::backend::{Backend, LogOptions, RunInfo};
use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::{ArtifactVersion, CollectionKind, HISTORY_FILE, ProjectRef, RunOptions, RunState, SUMMARY_FILE};
use crate::{StreamChunk, VersionEdit};

/// What [`sync`] copies, and where.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SyncOptions {
    /// The source project.
    pub project: ProjectRef,
    /// The target project; the source's name when `None`.
    pub target: Option<ProjectRef>,
    /// Only this collection (and, for a portfolio, its members' sources must be synced already).
    pub name: Option<String>,
    /// How the source's bodies are downloaded (its content cache above all). Without a cache, the sync keeps a
    /// temporary one, so a body is still fetched once.
    pub download: DownloadOptions,
    /// Where versions are downloaded before they are logged to the target (removed afterwards); the system's
    /// temporary directory when `None`.
    pub staging: Option<PathBuf>,
}

impl SyncOptions {
    /// Everything in `project`, into the same entity and project of the target.
    pub fn new(project: ProjectRef) -> Self {
        SyncOptions { project, target: None, name: None, download: DownloadOptions::default(), staging: None }
    }

    /// Into `target` instead.
    pub fn with_target(mut self, target: ProjectRef) -> Self {
        self.target = Some(target);
        self
    }

    /// Only collection `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Downloading with `download`.
    pub fn with_download(mut self, download: DownloadOptions) -> Self {
        self.download = download;
        self
    }

    /// Staging downloads under `staging`.
    pub fn with_staging(mut self, staging: impl Into<PathBuf>) -> Self {
        self.staging = Some(staging.into());
        self
    }
}

/// What [`sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SyncReport {
    /// Versions logged to the target, `name:vN` as the source numbers them.
    pub versions_copied: Vec<String>,
    /// Versions the target had already.
    pub versions_present: usize,
    /// Versions whose aliases, tags, description, metadata or TTL were brought in line.
    pub versions_updated: usize,
    /// Portfolio members linked in the target.
    pub links_made: usize,
    /// Portfolio members whose source version is not in the target (another project, not synced).
    pub links_skipped: Vec<String>,
    /// Runs created in the target.
    pub runs_copied: usize,
    /// Uses of versions by runs recorded in the target.
    pub uses_recorded: usize,
    /// File bodies fetched from the source (not from the cache).
    pub files_fetched: usize,
    /// File bodies the target stored.
    pub files_stored: usize,
    /// Their bytes.
    pub bytes_stored: u64,
}

/// Copies `options.project` from `from` to `to` (see the module docs).
///
/// # Errors
/// Either backend's errors; a version half copied is never visible (the target logs it whole or not at all), so
/// running the sync again resumes it.
pub async fn sync(from: &dyn Backend, to: &dyn Backend, options: &SyncOptions) -> Result<SyncReport> {
    let source = &options.project;
    let target = options.target.clone().unwrap_or_else(|| source.clone());
    let staging = Staging::new(options.staging.as_deref())?;
    let mut download = options.download.clone();
    if download.cache.is_none() {
        download.cache = Some(io_cache::ContentCache::new(staging.path().join("cache")));
    }
    let mut collections = from.collections(source, None).await?;
    collections.retain(|c| options.name.as_ref().is_none_or(|n| *n == c.name));
    // Sources before portfolios, which link to them.
    collections.sort_by_key(|c| c.kind == CollectionKind::Portfolio);

    let mut sync = Sync {
        from,
        to,
        target,
        download,
        staging,
        report: SyncReport::default(),
        copied: HashMap::new(),
        runs: HashSet::new(),
    };
    for collection in &collections {
        match collection.kind {
            CollectionKind::Sequence => sync.sequence(source, &collection.name).await?,
            _ => sync.portfolio(source, &collection.name).await?,
        }
    }
    Ok(sync.report)
}

/// The state of one sync.
struct Sync<'a> {
    from: &'a dyn Backend,
    to: &'a dyn Backend,
    target: ProjectRef,
    download: DownloadOptions,
    staging: Staging,
    report: SyncReport,
    /// Source version id -> the target's version.
    copied: HashMap<String, ArtifactVersion>,
    /// Runs known to be in the target, `entity/project/id` of the source.
    runs: HashSet<String>,
}

impl Sync<'_> {
    async fn sequence(&mut self, source: &ProjectRef, name: &str) -> Result<()> {
        let versions = self.from.versions(source, name).await?;
        let mut existing = not_found_is_empty(self.to.versions(&self.target, name).await)?;
        let mut next = 0;
        for version in versions {
            let lineage = self.from.lineage(&version).await?;
            let creator = match &lineage.created_by {
                Some(run) => Some(self.run(run).await?),
                None => None,
            };
            let matched = existing[next..].iter().position(|t| t.digest == version.digest).map(|i| next + i);
            let copy = match matched {
                Some(i) => {
                    next = i + 1;
                    self.report.versions_present += 1;
                    existing[i].clone()
                }
                None => {
                    let copy = self.copy(&version, creator.as_deref()).await?;
                    self.report.versions_copied.push(version.qualified_name());
                    existing.push(copy.clone());
                    next = existing.len();
                    copy
                }
            };
            let copy = self.align(&version, copy, true).await?;
            // The project's own runs: a run of another project that used the version stays where it is.
            let own = |r: &&RunInfo| r.entity == source.entity() && r.project == source.project();
            for user in lineage.used_by.iter().filter(own) {
                let run_id = self.run(user).await?;
                let target_run = self.to.run(&self.target, &run_id).await?;
                if !target_run.inputs.iter().any(|e| e.id == copy.id) {
                    self.to.record_use(&self.target, &run_id, &copy).await?;
                    self.report.uses_recorded += 1;
                }
            }
            self.copied.insert(version.id.clone(), copy);
        }
        Ok(())
    }

    /// Logs `version` to the target: downloaded whole into the staging directory, then logged by `run_id`.
    async fn copy(&mut self, version: &ArtifactVersion, run_id: Option<&str>) -> Result<ArtifactVersion> {
        let manifest = self.from.manifest(version).await?;
        let root = self.staging.path().join(&version.id);
        let bodies = files_only(&manifest)?;
        let report = self.from.download(version, &bodies, &root, &self.download).await?;
        self.report.files_fetched += report.fetched;
        let draft = Artifact::from_downloaded(
            &version.name,
            &version.artifact_type,
            version.description.clone(),
            version.metadata.clone(),
            manifest,
            &root,
        )?;
        let mut log = LogOptions::default().with_aliases(custom_aliases(version)).with_tags(version.tags.clone());
        if let Some(run_id) = run_id {
            log = log.with_run_id(run_id);
        }
        let logged = self.to.log_artifact(&self.target, &draft, &log).await;
        let removed = std::fs::remove_dir_all(&root).map_err(|e| Error::io("remove", &root, e));
        let logged = logged?;
        removed?;
        self.report.files_stored += logged.stored_files;
        self.report.bytes_stored += logged.stored_bytes;
        Ok(logged.version)
    }

    /// Makes `copy`'s aliases (and, for a version of a sequence, its tags, description, metadata and TTL) the
    /// source's.
    async fn align(&mut self, source: &ArtifactVersion, copy: ArtifactVersion, own: bool) -> Result<ArtifactVersion> {
        let wanted: Vec<String> = custom_aliases(source);
        let held: Vec<String> = custom_aliases(&copy);
        let mut edit = VersionEdit::default()
            .add_aliases(wanted.iter().filter(|a| !held.contains(a)).cloned())
            .remove_aliases(held.iter().filter(|a| !wanted.contains(a)).cloned());
        if own {
            if sorted(&copy.tags) != sorted(&source.tags) {
                edit = edit.tags(source.tags.clone());
            }
            if copy.description != source.description {
                edit = edit.description(source.description.clone());
            }
            if copy.metadata != source.metadata {
                edit = edit.metadata(source.metadata.clone());
            }
            if copy.ttl != source.ttl {
                edit = edit.ttl(source.ttl);
            }
        }
        if edit == VersionEdit::default() {
            return Ok(copy);
        }
        self.report.versions_updated += 1;
        self.to.edit(&copy, &edit).await
    }

    async fn portfolio(&mut self, source: &ProjectRef, name: &str) -> Result<()> {
        let members = self.from.versions(source, name).await?;
        let existing = not_found_is_empty(self.to.versions(&self.target, name).await)?;
        for member in members {
            let Some(copy) = self.copied.get(&member.id).cloned() else {
                self.report.links_skipped.push(format!("{name}:{}", member.version()));
                continue;
            };
            let linked = match existing.iter().find(|t| t.id == copy.id) {
                Some(linked) => linked.clone(),
                None => {
                    self.report.links_made += 1;
                    self.to.link(&copy, &self.target, name, &[]).await?
                }
            };
            self.align(&member, linked, false).await?;
        }
        Ok(())
    }

    /// The target's id for run `run` of the source, copying the run first when the target lacks it.
    async fn run(&mut self, run: &RunInfo) -> Result<String> {
        let key = run.path();
        if self.runs.contains(&key) {
            return Ok(run.id.clone());
        }
        match self.to.run(&self.target, &run.id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                self.copy_run(run).await?;
                self.report.runs_copied += 1;
            }
            Err(e) => return Err(e),
        }
        self.runs.insert(key);
        Ok(run.id.clone())
    }

    async fn copy_run(&self, run: &RunInfo) -> Result<()> {
        let source = ProjectRef::new(&run.entity, &run.project)?;
        let full = self.from.run(&source, &run.id).await?;
        let options = RunOptions {
            id: Some(full.id.clone()),
            name: full.name.clone(),
            job_type: full.job_type.clone(),
            tags: full.tags.clone(),
        };
        self.to.resume_run(&self.target, &options).await?;
        if !full.config.is_empty() {
            self.to.update_run_config(&self.target, &full.id, &full.config).await?;
        }
        let history = self.from.run_history(&source, &full.id).await?;
        let mut chunk = StreamChunk::default();
        let rows: Vec<String> = history.iter().map(|row| Value::Object(row.clone()).to_string()).collect();
        chunk.files.insert(HISTORY_FILE.to_owned(), (0, rows));
        chunk.files.insert(SUMMARY_FILE.to_owned(), (0, vec![Value::Object(full.summary.clone()).to_string()]));
        if matches!(full.state, RunState::Finished | RunState::Failed | RunState::Crashed) {
            chunk.complete = true;
            chunk.exit_code = Some(full.exit_code.unwrap_or(i64::from(full.state != RunState::Finished)));
        }
        self.to.write_run_stream(&self.target, &full.id, &chunk).await
    }
}

/// A directory removed when the sync ends, however it ends.
struct Staging(PathBuf);

impl Staging {
    fn new(parent: Option<&Path>) -> Result<Self> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = parent.join(format!("dagster-wandb-sync-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(Staging(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The entries with bodies (references are not downloaded; the target records them as they are).
fn files_only(manifest: &Manifest) -> Result<Manifest> {
    let mut files = Manifest::new();
    for (path, entry) in manifest.entries().filter(|(_, e)| !e.is_reference()) {
        files.add_entry(artifact_core::LogicalPath::new(path)?, entry.clone(), false)?;
    }
    Ok(files)
}

/// The aliases a user gave (not `latest`, not `vN`), sorted.
fn custom_aliases(version: &ArtifactVersion) -> Vec<String> {
    let mut aliases: Vec<String> =
        version.aliases.iter().filter(|a| *a != "latest" && !is_version_alias(a)).cloned().collect();
    aliases.sort();
    aliases
}

fn sorted(items: &[String]) -> Vec<&String> {
    let mut items: Vec<&String> = items.iter().collect();
    items.sort();
    items
}

fn not_found_is_empty(versions: Result<Vec<ArtifactVersion>>) -> Result<Vec<ArtifactVersion>> {
    match versions {
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}
