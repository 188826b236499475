//! Distributed artifacts in the embedded store: many processes upsert parts of one artifact, one finishes it.
//!
//! Layout: `distributed/<name>/<distributed id>/` holds `parts/<nanos>-<random>.json` (each writer's entries, as
//! a Go-dialect manifest), `lock`, and `finished` (the committed version's id) once finished. Parts are written
//! and the artifact finished under the lock, so an upsert racing a finish is either in the artifact or refused.

use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use artifact_core::{Artifact, LogicalPath, Manifest, NoProgress};

use super::{
    EmbeddedStore, LogOptions, LoggedArtifact, ProjectRef, VersionDraft, open_lock, random_suffix, write_file,
};
use crate::error::{Error, Result};

impl EmbeddedStore {
    fn distributed_dir(&self, project: &ProjectRef, name: &str, distributed_id: &str) -> Result<PathBuf> {
        artifact_core::validate_artifact_name(name)?;
        if distributed_id.is_empty() || distributed_id.contains(['/', '\\']) || distributed_id.starts_with('.') {
            return Err(Error::InvalidRunStream { reason: format!("bad distributed id {distributed_id:?}") });
        }
        Ok(self.project_dir(project).join("distributed").join(name).join(distributed_id))
    }

    /// Stores this process's part of the distributed artifact `distributed_id` (`run.upsert_artifact`): its
    /// bodies go into the store, its entries wait for [`EmbeddedStore::finish_artifact`].
    ///
    /// # Errors
    /// [`Error::DistributedArtifactFinished`] once it was finished (the SDK silently loses such a part);
    /// [`Error::TypeConflict`]; I/O errors.
    pub fn upsert_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
    ) -> Result<StoredPart> {
        self.check_type(project, artifact.name(), artifact.artifact_type())?;
        let dir = self.distributed_dir(project, artifact.name(), distributed_id)?;
        let (stored_objects, reused_objects, stored_bytes) = self.store_objects(artifact.manifest(), &NoProgress)?;
        let _lock = open_lock(&dir.join("lock"))?;
        if dir.join("finished").exists() {
            return Err(Error::DistributedArtifactFinished {
                name: artifact.name().to_owned(),
                distributed_id: distributed_id.to_owned(),
            });
        }
        let manifest = write_part(&dir, artifact.manifest())?;
        Ok(StoredPart { manifest, stored_objects, reused_objects, stored_bytes })
    }

    /// Adds this process's part (if it has entries) and commits the distributed artifact: one version whose
    /// manifest is every part's entries (a later part wins on the same path), with this artifact's
    /// description and metadata and `options`' aliases (`run.finish_artifact`).
    ///
    /// # Errors
    /// [`Error::DistributedArtifactFinished`] when already finished; the errors of
    /// [`EmbeddedStore::log_artifact`].
    pub fn finish_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        self.check_type(project, artifact.name(), artifact.artifact_type())?;
        if let Some(run_id) = &options.run_id {
            self.run(project, run_id)?;
        }
        let dir = self.distributed_dir(project, artifact.name(), distributed_id)?;
        let stored = self.store_objects(artifact.manifest(), &NoProgress)?;
        let _lock = open_lock(&dir.join("lock"))?;
        if dir.join("finished").exists() {
            return Err(Error::DistributedArtifactFinished {
                name: artifact.name().to_owned(),
                distributed_id: distributed_id.to_owned(),
            });
        }
        if !artifact.manifest().is_empty() {
            write_part(&dir, artifact.manifest())?;
        }
        let merged = merged_parts(&dir)?;
        let draft = VersionDraft::of(artifact, merged.digest_with(artifact.digest_algorithm()), options);
        let logged = self.log_draft(project, &draft, &merged, stored)?;
        write_file(&dir.join("finished"), format!("{}\n", logged.version.id).as_bytes())?;
        Ok(logged)
    }
}

/// Writes this process's part; returns its entries as stored (without local paths).
fn write_part(dir: &std::path::Path, manifest: &Manifest) -> Result<Manifest> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = dir.join("parts").join(format!("{nanos:020}-{}.json", random_suffix()));
    let mut part = manifest.clone();
    for (_, entry) in part.entries_mut() {
        entry.local_path = None;
    }
    write_file(&path, &part.to_go_json())?;
    Ok(part)
}

/// This process's part of a distributed artifact, stored (see [`EmbeddedStore::upsert_artifact`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPart {
    /// The part's entries, as stored.
    pub manifest: Manifest,
    /// File bodies written to the store by this call.
    pub stored_objects: usize,
    /// File bodies the store already had.
    pub reused_objects: usize,
    /// Bytes written to the store by this call.
    pub stored_bytes: u64,
}

/// Every part's entries, in the order the parts were written.
fn merged_parts(dir: &std::path::Path) -> Result<Manifest> {
    let parts_dir = dir.join("parts");
    let mut names: Vec<PathBuf> = match fs::read_dir(&parts_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("list", &parts_dir, e)),
    };
    names.sort();
    let mut merged = Manifest::new();
    for path in names {
        let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        for (name, entry) in Manifest::from_json(&bytes)?.entries() {
            merged.add_entry(LogicalPath::new(name)?, entry.clone(), true)?;
        }
    }
    Ok(merged)
}
