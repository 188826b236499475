//! `EmbeddedStore::check`: a walk of the whole store that names every damaged record, missing or corrupt body
//! and orphaned temporary, and repairs what can be rebuilt from what is intact.
//!
//! Repairable: the id index (`index/artifacts/<n>.json`, rebuilt from the version record that holds the id), the
//! index of uses (`index/uses/<n>/…`, a run's uses of other projects' versions, rebuilt from the run's record),
//! aliases pointing at versions that are gone (dropped), an unreadable `aliases.json` (replaced by an empty one:
//! the custom aliases it held are lost, `latest` and `vN` still resolve), staging directories and temporary
//! files a killed writer left. Not repairable, only reported: unreadable collection, version, manifest and run
//! records, manifests that do not hash to their version's digest, and bodies that are missing or do not hash to
//! their digest (log the files again).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use artifact_core::{DigestAlgorithm, Manifest};
use rayon::prelude::*;

use crate::records::{CollectionRecord, IdIndexRecord, VersionRecord};
use crate::{EmbeddedStore, Error, ProjectRef, Result, list_dir, read_json, write_json};

/// One thing [`EmbeddedStore::check`] found wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub what: String,
    /// Whether `check` repaired it (only when asked to).
    pub repaired: bool,
}

/// What [`EmbeddedStore::check`] walked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// Collections walked.
    pub collections: usize,
    /// Versions walked.
    pub versions: usize,
    /// Runs walked.
    pub runs: usize,
    /// Distinct file bodies hashed.
    pub bodies: usize,
    /// What is wrong, in walking order.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// True when nothing is wrong, or everything wrong was repaired.
    pub fn is_healthy(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }

    fn found(&mut self, path: impl Into<PathBuf>, what: impl Into<String>, repaired: bool) {
        self.problems.push(Problem { path: path.into(), what: what.into(), repaired });
    }
}

impl EmbeddedStore {
    /// Walks every project (each under its lock, so no version is half-written meanwhile): collection, alias,
    /// version and manifest records must parse; every body a manifest names must be there, of its size, and
    /// hash to its digest; every version's id must be in the id index; nothing may be left of killed writers.
    /// With `repair`, rebuilds what can be rebuilt (see the module's docs) and says so per problem.
    ///
    /// # Errors
    /// I/O errors of the walk itself (an unreadable directory); damage is reported, not returned.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        // Body -> (size, the first manifest path naming it), hashed once however many versions share it.
        let mut bodies: HashMap<(DigestAlgorithm, String), (Option<u64>, PathBuf)> = HashMap::new();
        for entity in list_dir(&self.root.join("entities"))? {
            for project in list_dir(&self.root.join("entities").join(&entity).join("projects"))? {
                let Ok(project) = ProjectRef::new(&entity, &project) else { continue };
                let _lock = self.lock_project(&project)?;
                for name in list_dir(&self.project_dir(&project).join("collections"))? {
                    if name.starts_with('.') {
                        continue;
                    }
                    report.collections += 1;
                    self.check_collection(&project, &name, repair, &mut report, &mut bodies)?;
                }
                self.check_runs(&project, repair, &mut report)?;
            }
        }
        self.check_bodies(&bodies, &mut report);
        let (files, bytes) = self.removed_at_open;
        if files > 0 {
            report.found(
                self.objects.tmp_dir(),
                format!(
                    "{files} temporary files ({bytes} bytes) left by killed writers, removed when the store was opened"
                ),
                true,
            );
        }
        let (files, bytes) = if repair { self.objects.remove_stale_temporaries()? } else { (0, 0) };
        if files > 0 {
            report.found(
                self.objects.tmp_dir(),
                format!("{files} temporary files ({bytes} bytes) left by killed writers"),
                true,
            );
        }
        Ok(report)
    }

    fn check_collection(
        &self,
        project: &ProjectRef,
        name: &str,
        repair: bool,
        report: &mut CheckReport,
        bodies: &mut HashMap<(DigestAlgorithm, String), (Option<u64>, PathBuf)>,
    ) -> Result<()> {
        let dir = self.collection_dir(project, name);
        let record_path = dir.join("collection.json");
        if let Err(e) = read_json::<CollectionRecord>(&record_path) {
            report.found(&record_path, damage(&e), false);
        }
        let versions_dir = dir.join("versions");
        let mut live = Vec::new();
        for entry in list_dir(&versions_dir)? {
            let path = versions_dir.join(&entry);
            if entry.starts_with(".tmp-") {
                // A version being built is renamed into place under the lock we hold: this one never will be.
                let removed = repair && fs::remove_dir_all(&path).is_ok();
                report.found(&path, "a version a killed writer was building", removed);
                continue;
            }
            let Ok(index) = entry.parse::<u64>() else { continue };
            report.versions += 1;
            live.push(index);
            let record = match read_json::<VersionRecord>(&path.join("version.json")) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    report.found(path.join("version.json"), "missing version record", false);
                    continue;
                }
                Err(e) => {
                    report.found(path.join("version.json"), damage(&e), false);
                    continue;
                }
            };
            self.check_id_index(project, name, &record, repair, report)?;
            let manifest_path = path.join("manifest.json");
            let manifest = fs::read(&manifest_path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| Manifest::from_json(&bytes).map_err(|e| e.to_string()));
            match manifest {
                Ok(manifest) if !record.digest.is_empty() && !manifest.hashes_to(&record.digest) => {
                    let what = format!(
                        "damaged manifest: its entries hash to {}, not to {}",
                        manifest.digest(),
                        record.digest
                    );
                    report.found(&manifest_path, what, false);
                }
                Ok(manifest) => {
                    for (logical, entry) in manifest.entries().filter(|(_, e)| e.reference.is_none()) {
                        bodies
                            .entry((entry.digest_algorithm(), entry.digest.clone()))
                            .or_insert_with(|| (entry.size, manifest_path.join(logical)));
                    }
                }
                Err(reason) => report.found(&manifest_path, format!("damaged manifest: {reason}"), false),
            }
        }
        self.check_aliases(&dir, &live, repair, report)
    }

    /// Each run's record and logging status must parse (nothing to rebuild them from: reported only); each use of
    /// a version of another project must be in the index of uses (rebuilt from the run's record).
    fn check_runs(&self, project: &ProjectRef, repair: bool, report: &mut CheckReport) -> Result<()> {
        let dir = self.project_dir(project).join("runs");
        for name in list_dir(&dir)? {
            let Some(id) = name.strip_suffix(".json").filter(|_| !name.starts_with('.')) else { continue };
            report.runs += 1;
            match read_json::<crate::RunRecord>(&dir.join(&name)) {
                Ok(Some(run)) => self.check_uses_index(project, &run, repair, report)?,
                Ok(None) => {}
                Err(e) => report.found(dir.join(&name), damage(&e), false),
            }
            let state = dir.join(format!("{id}.logs")).join("state.json");
            if let Err(e) = read_json::<crate::RunStatus>(&state) {
                report.found(&state, damage(&e), false);
            }
        }
        Ok(())
    }

    /// A run's uses of versions of other projects must be in the index of uses (records written before the index
    /// existed are not), or the lineage of those versions misses the run.
    fn check_uses_index(
        &self,
        project: &ProjectRef,
        run: &crate::RunRecord,
        repair: bool,
        report: &mut CheckReport,
    ) -> Result<()> {
        for edge in &run.inputs {
            let Ok(dir) = self.uses_dir(&edge.id) else { continue };
            if self.artifact_owner(&edge.id)?.is_none_or(|owner| &owner == project) {
                continue;
            }
            let path = dir.join(project.entity()).join(project.project()).join(&run.id);
            if !path.exists() {
                let repaired = repair && self.index_use(project, &run.id, &edge.id).is_ok();
                report.found(path, format!("a use of {} missing from the index of uses", edge.name), repaired);
            }
        }
        Ok(())
    }

    /// The id index must say where the version with `record.id` lives; rebuilt from the record when not.
    fn check_id_index(
        &self,
        project: &ProjectRef,
        name: &str,
        record: &VersionRecord,
        repair: bool,
        report: &mut CheckReport,
    ) -> Result<()> {
        let Ok(path) = self.id_index_path(&record.id) else {
            report.found(
                self.root.join("index/artifacts"),
                format!("version id {:?} is not a store id", record.id),
                false,
            );
            return Ok(());
        };
        let expected = IdIndexRecord {
            entity: project.entity.clone(),
            project: project.project.clone(),
            name: name.to_owned(),
            version_index: Some(record.version_index),
        };
        let what = match read_json::<IdIndexRecord>(&path) {
            Ok(Some(found)) if same_place(&found, &expected) => return Ok(()),
            Ok(Some(_)) => "the id index points elsewhere".to_owned(),
            Ok(None) => "the id index lacks this version".to_owned(),
            Err(e) => damage(&e),
        };
        let repaired = repair && write_json(&path, &expected).is_ok();
        report.found(&path, format!("{what} ({name}:v{})", record.version_index), repaired);
        Ok(())
    }

    fn check_aliases(&self, dir: &Path, live: &[u64], repair: bool, report: &mut CheckReport) -> Result<()> {
        let path = dir.join("aliases.json");
        let aliases: BTreeMap<String, u64> = match read_json(&path) {
            Ok(aliases) => aliases.unwrap_or_default(),
            Err(e) => {
                let repaired = repair && write_json(&path, &BTreeMap::<String, u64>::new()).is_ok();
                report.found(
                    &path,
                    format!("{}; repairing empties it (its custom aliases are lost)", damage(&e)),
                    repaired,
                );
                return Ok(());
            }
        };
        let (kept, dangling): (BTreeMap<_, _>, BTreeMap<_, _>) =
            aliases.into_iter().partition(|(_, i)| live.contains(i));
        if !dangling.is_empty() {
            let names: Vec<String> = dangling.iter().map(|(a, i)| format!("{a} -> v{i}")).collect();
            let repaired = repair && write_json(&path, &kept).is_ok();
            report.found(&path, format!("aliases of versions that are gone: {}", names.join(", ")), repaired);
        }
        Ok(())
    }

    /// Every body named must be there, of its size, and hash to its digest (hashed in parallel).
    fn check_bodies(
        &self,
        bodies: &HashMap<(DigestAlgorithm, String), (Option<u64>, PathBuf)>,
        report: &mut CheckReport,
    ) {
        let found: Vec<(PathBuf, String)> = bodies
            .par_iter()
            .filter_map(|((algorithm, digest), (size, named_by))| {
                let path = match self.objects.object_path(digest, *algorithm) {
                    Ok(path) => path,
                    Err(e) => return Some((named_by.clone(), format!("invalid digest {digest:?}: {e}"))),
                };
                let what = match fs::File::open(&path) {
                    Err(_) => format!("missing body {digest} (named by {})", named_by.display()),
                    Ok(mut file) => match artifact_core::digest_reader_b64(*algorithm, &mut file) {
                        Err(e) => format!("unreadable body: {e}"),
                        Ok((actual, _)) if actual != *digest => {
                            format!("corrupt body: hashes to {actual}, not {digest} (named by {})", named_by.display())
                        }
                        Ok((_, length)) if size.is_some_and(|s| s != length) => {
                            format!("body of {length} bytes where the manifest says {}", size.unwrap_or(0))
                        }
                        Ok(_) => return None,
                    },
                };
                Some((path, what))
            })
            .collect();
        report.bodies = bodies.len();
        for (path, what) in found {
            report.found(path, what, false);
        }
    }
}

fn same_place(a: &IdIndexRecord, b: &IdIndexRecord) -> bool {
    (&a.entity, &a.project, &a.name, a.version_index) == (&b.entity, &b.project, &b.name, b.version_index)
}

fn damage(error: &Error) -> String {
    match error {
        Error::StoreFormat { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
