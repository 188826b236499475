//! Reclaiming space: expired versions go, then every body no remaining version (or pending distributed part)
//! references, once it has not been touched for a grace period.
//!
//! A body is touched when it is stored, and again when a log or an upload finds it already present, so a body
//! that an in-flight log is about to reference is always younger than the grace period and stays; readers of a
//! removed body never existed, since no version references it.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use artifact_core::{DigestAlgorithm, Manifest};

use crate::records::{CollectionRecord, VersionRecord};
use crate::{EmbeddedStore, Error, ProjectRef, Result, list_dir, read_json};

/// Options of [`EmbeddedStore::gc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// Report what would go, change nothing.
    pub dry_run: bool,
    /// Bodies touched more recently than this stay even when nothing references them (a log may be about to).
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { dry_run: false, grace: Duration::from_secs(24 * 3600) }
    }
}

impl GcOptions {
    /// Only reporting.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// With grace period `grace`.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// What [`EmbeddedStore::gc`] removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// Expired versions deleted, `entity/project/name:vN`.
    pub expired_versions: Vec<String>,
    /// Bodies no version references, removed.
    pub objects_removed: usize,
    /// Their bytes.
    pub bytes_removed: u64,
    /// Unreferenced bodies kept because they were touched within the grace period.
    pub objects_in_grace: usize,
    /// Bodies still referenced.
    pub objects_kept: usize,
}

impl EmbeddedStore {
    /// Deletes expired versions (their aliases with them), then removes every body that no remaining version
    /// and no pending distributed part references and that nobody touched within `options.grace`. Safe while
    /// other processes log and download.
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn gc(&self, options: GcOptions) -> Result<GcReport> {
        let mut report = GcReport::default();
        let now = SystemTime::now();
        let mut referenced: HashSet<(DigestAlgorithm, String)> = HashSet::new();
        for entity in list_dir(&self.root.join("entities"))? {
            for project in list_dir(&self.root.join("entities").join(&entity).join("projects"))? {
                let Ok(project) = ProjectRef::new(&entity, &project) else { continue };
                self.gc_project(&project, options, now, &mut report, &mut referenced)?;
            }
        }
        self.sweep_objects(options, now, &referenced, &mut report)?;
        Ok(report)
    }

    fn gc_project(
        &self,
        project: &ProjectRef,
        options: GcOptions,
        now: SystemTime,
        report: &mut GcReport,
        referenced: &mut HashSet<(DigestAlgorithm, String)>,
    ) -> Result<()> {
        let collections = self.project_dir(project).join("collections");
        for name in list_dir(&collections)? {
            let dir = collections.join(&name);
            if read_json::<CollectionRecord>(&dir.join("collection.json"))?.is_none() {
                continue;
            }
            for index in list_dir(&dir.join("versions"))?.iter().filter_map(|n| n.parse::<u64>().ok()) {
                let version_dir = dir.join("versions").join(index.to_string());
                let Some(record) = read_json::<VersionRecord>(&version_dir.join("version.json"))? else { continue };
                if crate::edit::is_expired(record.ttl, &record.created_at, now) {
                    report.expired_versions.push(format!("{project}/{name}:v{index}"));
                    if !options.dry_run {
                        // Resolution already skips it; here it goes, aliases included, its links with it.
                        let version = self.view_even_if_expired(project, &name, index)?;
                        match self.delete_version(&version, true) {
                            Ok(()) | Err(Error::ArtifactNotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    continue;
                }
                reference_manifest(&version_dir.join("manifest.json"), referenced)?;
            }
        }
        // Parts of distributed artifacts not yet finished reference bodies too.
        let distributed = self.project_dir(project).join("distributed");
        for name in list_dir(&distributed)? {
            for id in list_dir(&distributed.join(&name))? {
                let parts = distributed.join(&name).join(&id).join("parts");
                for part in list_dir(&parts)? {
                    reference_manifest(&parts.join(part), referenced)?;
                }
            }
        }
        Ok(())
    }

    fn sweep_objects(
        &self,
        options: GcOptions,
        now: SystemTime,
        referenced: &HashSet<(DigestAlgorithm, String)>,
        report: &mut GcReport,
    ) -> Result<()> {
        for algorithm in [DigestAlgorithm::Md5, DigestAlgorithm::Xxh128] {
            let root = self.objects.objects_dir().join(algorithm.cache_dir_name());
            for prefix in list_dir(&root)? {
                for rest in list_dir(&root.join(&prefix))? {
                    let path = root.join(&prefix).join(&rest);
                    let Some(digest) = artifact_core::hex_to_b64(&format!("{prefix}{rest}")).ok() else { continue };
                    if referenced.contains(&(algorithm, digest)) {
                        report.objects_kept += 1;
                        continue;
                    }
                    let Ok(metadata) = fs::metadata(&path) else { continue };
                    let touched = metadata.modified().unwrap_or(now);
                    if now.duration_since(touched).unwrap_or_default() < options.grace {
                        report.objects_in_grace += 1;
                        continue;
                    }
                    report.objects_removed += 1;
                    report.bytes_removed += metadata.len();
                    if !options.dry_run {
                        match fs::remove_file(&path) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(Error::io("remove", &path, e)),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Adds the bodies a manifest file references (references to other stores have none here).
fn reference_manifest(path: &std::path::Path, referenced: &mut HashSet<(DigestAlgorithm, String)>) -> Result<()> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let manifest = Manifest::from_json(&bytes)?;
    for (_, entry) in manifest.entries().filter(|(_, e)| !e.is_reference()) {
        referenced.insert((entry.digest_algorithm(), entry.digest.clone()));
    }
    Ok(())
}
