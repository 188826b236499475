//! Changing versions and collections after they were logged: aliases, tags, description, metadata and TTL;
//! deleting and unlinking versions; describing, tagging, renaming, retyping and deleting collections.
//!
//! Every change happens under the project's lock, and every record is replaced whole by a rename, so readers see
//! a version or collection before or after a change, never in between. A deleted version's number is never given
//! again: `next_index` remembers the highest number a collection or portfolio ever had.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::records::{CollectionRecord, IdIndexRecord, MemberRecord};
use crate::time::parse_rfc3339;
use crate::{
    ArtifactVersion, Collection, EmbeddedStore, Error, ProjectRef, Result, Ttl, custom_aliases, latest_index, list_dir,
    random_suffix, read_aliases, read_json, write_json,
};

/// What to change on a logged version (W&B's `AddAliases`, `DeleteAliases` and `UpdateArtifact`). Fields left
/// `None` (or empty) are kept.
///
/// ```
/// use wandb_store::{Ttl, VersionEdit};
/// let edit = VersionEdit::default().add_aliases(["production"]).ttl(Ttl::Seconds(86_400));
/// assert_eq!(edit.add_aliases, ["production"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct VersionEdit {
    /// Custom aliases to point at this version (an alias on another version of the collection moves here).
    pub add_aliases: Vec<String>,
    /// Custom aliases to take off this version (one it does not hold is ignored).
    pub remove_aliases: Vec<String>,
    /// The tags, replaced whole.
    pub tags: Option<Vec<String>>,
    /// The description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// The metadata, replaced whole.
    pub metadata: Option<Map<String, Value>>,
    /// The time to live.
    pub ttl: Option<Ttl>,
}

impl VersionEdit {
    /// Adding these aliases.
    pub fn add_aliases<S: Into<String>>(mut self, aliases: impl IntoIterator<Item = S>) -> Self {
        self.add_aliases = aliases.into_iter().map(Into::into).collect();
        self
    }

    /// Removing these aliases.
    pub fn remove_aliases<S: Into<String>>(mut self, aliases: impl IntoIterator<Item = S>) -> Self {
        self.remove_aliases = aliases.into_iter().map(Into::into).collect();
        self
    }

    /// Setting the tags to these.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Setting (or with `None`, clearing) the description.
    pub fn description(mut self, description: Option<String>) -> Self {
        self.description = Some(description);
        self
    }

    /// Setting the metadata to `metadata`.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Setting the time to live.
    pub fn ttl(mut self, ttl: Ttl) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// True when the edit changes something besides aliases.
    pub fn changes_record(&self) -> bool {
        self.tags.is_some() || self.description.is_some() || self.metadata.is_some() || self.ttl.is_some()
    }

    /// Checks the edit against `version` as the SDK would, before anything changes (both backends call it).
    ///
    /// # Errors
    /// [`Error::AliasNotEditable`] for `latest` or `vN`; [`Error::TtlOnLink`] for a TTL through a link; alias and
    /// tag validation errors.
    pub fn validate_for(&self, version: &ArtifactVersion) -> Result<()> {
        if version.linked_from.is_some() && self.ttl.is_some() {
            return Err(Error::TtlOnLink {
                name: format!("{}/{}/{}", version.entity, version.project, version.qualified_name()),
            });
        }
        for alias in self.add_aliases.iter().chain(&self.remove_aliases) {
            if alias == "latest" || artifact_core::is_version_alias(alias) {
                return Err(Error::AliasNotEditable { alias: alias.clone() });
            }
            artifact_core::validate_alias(alias)?;
        }
        if let Some(tags) = &self.tags {
            artifact_core::validate_tags(tags)?;
        }
        Ok(())
    }
}

/// What to change on a collection (W&B's `UpdateArtifactSequence`/`Portfolio`, `UpdateArtifactSequenceType`,
/// and the collection-tag operations). Fields left `None` are kept.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CollectionEdit {
    /// The description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// The tags, replaced whole.
    pub tags: Option<Vec<String>>,
    /// A new name (a sequence's versions keep their numbers and ids).
    pub rename: Option<String>,
    /// A new type (sequences only, as in W&B).
    pub artifact_type: Option<String>,
}

impl CollectionEdit {
    /// Setting (or with `None`, clearing) the description.
    pub fn description(mut self, description: Option<String>) -> Self {
        self.description = Some(description);
        self
    }

    /// Setting the tags to these.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Renaming the collection.
    pub fn rename(mut self, name: &str) -> Self {
        self.rename = Some(name.to_owned());
        self
    }

    /// Changing the collection's type.
    pub fn artifact_type(mut self, artifact_type: &str) -> Self {
        self.artifact_type = Some(artifact_type.to_owned());
        self
    }
}

/// Checks that `version` may be deleted (both backends call it): a version holding custom aliases only with
/// `delete_aliases`, as the SDK's `Artifact.delete`. A version seen through a portfolio is unlinked instead.
///
/// # Errors
/// [`Error::VersionHasAliases`].
pub fn check_deletable(version: &ArtifactVersion, delete_aliases: bool) -> Result<()> {
    let custom: Vec<String> = version.aliases.iter().filter(|a| *a != "latest").cloned().collect();
    if version.linked_from.is_none() && !custom.is_empty() && !delete_aliases {
        return Err(Error::VersionHasAliases {
            name: format!("{}/{}/{}", version.entity, version.project, version.qualified_name()),
            aliases: custom,
        });
    }
    Ok(())
}

/// Checks that `version` is seen through a portfolio, so it can be unlinked (both backends call it).
///
/// # Errors
/// [`Error::NotLinked`].
pub fn check_linked(version: &ArtifactVersion) -> Result<()> {
    match version.linked_from {
        Some(_) => Ok(()),
        None => Err(Error::NotLinked {
            name: format!("{}/{}/{}", version.entity, version.project, version.qualified_name()),
        }),
    }
}

/// True when `ttl`, counted from `created_at`, has run out by `now`.
pub(crate) fn is_expired(ttl: Ttl, created_at: &str, now: SystemTime) -> bool {
    match (ttl, parse_rfc3339(created_at)) {
        (Ttl::Seconds(seconds), Some(created)) => created + Duration::from_secs(seconds) <= now,
        _ => false,
    }
}

/// The number the next version (or member) of `dir` gets: after the highest it has, and after any deleted one.
pub(crate) fn next_index(dir: &Path) -> Result<u64> {
    let after_latest = latest_index(&dir.join("versions"))?.map_or(0, |i| i + 1);
    let recorded = read_json::<u64>(&dir.join("next_index"))?.unwrap_or(0);
    Ok(after_latest.max(recorded))
}

/// Removes a directory by renaming it away first (`.tmp-deleted-…`, which the store's cleanup removes if a crash
/// interrupts), so no reader sees it half removed.
pub(crate) fn remove_atomically(dir: &Path) -> Result<()> {
    let parent = dir.parent().expect("store directories have a parent");
    let trash = parent.join(format!(".tmp-deleted-{}", random_suffix()));
    match fs::rename(dir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("remove", dir, e)),
    }
    fs::remove_dir_all(&trash).map_err(|e| Error::io("remove", &trash, e))
}

fn remove_file_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

impl EmbeddedStore {
    /// Deletes run `run_id` of `project` (`run.delete(delete_artifacts=…)`): its record and what it logged (history,
    /// summary, config). The versions it logged stay, with no known producer, unless `delete_artifacts`, which
    /// deletes them and their aliases.
    ///
    /// # Errors
    /// [`Error::RunNotFound`], I/O errors.
    pub fn delete_run(&self, project: &ProjectRef, run_id: &str, delete_artifacts: bool) -> Result<()> {
        let run = self.run(project, run_id)?;
        if delete_artifacts {
            for edge in &run.outputs {
                match self.artifact_by_id(&edge.id) {
                    Ok(version) => self.delete_version(&version, true)?,
                    Err(Error::ArtifactIdNotFound { .. } | Error::ArtifactNotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let _lock = self.lock_project(project)?;
        let record = self.project_dir(project).join("runs").join(format!("{run_id}.json"));
        remove_file_if_present(&record)?;
        remove_atomically(&self.project_dir(project).join("runs").join(format!("{run_id}.logs")))
    }
}

impl EmbeddedStore {
    /// Changes `version` (a version of its collection, or one seen through a portfolio): aliases move onto or
    /// off it; tags, description, metadata and TTL replace the stored ones. Through a portfolio the aliases are
    /// the portfolio's and the rest changes the source version. Returns the version as it is now.
    ///
    /// # Errors
    /// [`Error::AliasNotEditable`], [`Error::TtlOnLink`], validation errors, [`Error::ArtifactNotFound`] when the
    /// version is gone, I/O errors.
    pub fn edit_version(&self, version: &ArtifactVersion, edit: &VersionEdit) -> Result<ArtifactVersion> {
        edit.validate_for(version)?;
        let project = ProjectRef::new(&version.entity, &version.project)?;
        let linked = version.linked_from.is_some();
        {
            let _lock = self.lock_project(&project)?;
            let dir = if linked {
                self.portfolio_dir(&project, &version.name)
            } else {
                self.collection_dir(&project, &version.name)
            };
            if !dir.join("versions").join(version.version_index.to_string()).exists() {
                return Err(Error::ArtifactNotFound {
                    entity: project.entity().to_owned(),
                    project: project.project().to_owned(),
                    name: version.qualified_name(),
                });
            }
            self.move_aliases(&dir, version.version_index, &edit.add_aliases, &edit.remove_aliases)?;
        }
        if edit.changes_record() {
            let source = self.source_of(version)?;
            let source_project = ProjectRef::new(&source.entity, &source.project)?;
            let _lock = self.lock_project(&source_project)?;
            let versions_dir = self.collection_dir(&source_project, &source.name).join("versions");
            let mut record = self.version_record(&versions_dir, source.version_index)?;
            if let Some(tags) = &edit.tags {
                record.tags = artifact_core::validate_tags(tags)?;
            }
            if let Some(description) = &edit.description {
                record.description.clone_from(description);
            }
            if let Some(metadata) = &edit.metadata {
                record.metadata.clone_from(metadata);
            }
            if let Some(ttl) = edit.ttl {
                record.ttl = ttl;
            }
            let path = versions_dir.join(source.version_index.to_string()).join("version.json");
            write_json(&path, &record)?;
        }
        if linked {
            return self.artifact(&project, &version.name, &version.version());
        }
        // A TTL shorter than the version's age expires it at once; the edit still answers with what it made.
        self.view_even_if_expired(&project, &version.name, version.version_index)
    }

    /// The view of version `index` of `name`, expired or not (resolution would not find it).
    pub(crate) fn view_even_if_expired(&self, project: &ProjectRef, name: &str, index: u64) -> Result<ArtifactVersion> {
        let dir = self.collection_dir(project, name);
        let collection: CollectionRecord = read_json(&dir.join("collection.json"))?.ok_or_else(|| {
            Error::StoreFormat { path: dir.join("collection.json"), reason: "collection record missing".to_owned() }
        })?;
        let record = self.version_record(&dir.join("versions"), index)?;
        self.version_view(project, &collection, record, index)
    }

    /// Points `add` at member `index` of `dir` (a collection or portfolio) and takes `remove` off it.
    fn move_aliases(&self, dir: &Path, index: u64, add: &[String], remove: &[String]) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let add = custom_aliases(add)?;
        let mut aliases = read_aliases(dir)?;
        for alias in remove {
            if aliases.get(alias) == Some(&index) {
                aliases.remove(alias);
            }
        }
        for alias in add {
            aliases.insert(alias, index);
        }
        write_json(&dir.join("aliases.json"), &aliases)
    }

    /// Deletes `version` (`artifact.delete(delete_aliases=…)`): refused while it holds custom aliases unless
    /// `delete_aliases`; through a portfolio, only the link goes (the SDK's rule). Its number is not given again;
    /// its bodies stay until [`EmbeddedStore::gc`] finds nothing else uses them. Links to it anywhere in the store
    /// go with it.
    ///
    /// # Errors
    /// [`Error::VersionHasAliases`], [`Error::ArtifactNotFound`] when it is already gone, I/O errors.
    pub fn delete_version(&self, version: &ArtifactVersion, delete_aliases: bool) -> Result<()> {
        if version.linked_from.is_some() {
            return self.unlink_version(version);
        }
        check_deletable(version, delete_aliases)?;
        let project = ProjectRef::new(&version.entity, &version.project)?;
        {
            let _lock = self.lock_project(&project)?;
            let dir = self.collection_dir(&project, &version.name);
            self.remove_member(&dir, version.version_index, &project, &version.qualified_name())?;
            remove_file_if_present(&self.id_index_path(&version.id)?)?;
        }
        self.unlink_everywhere(&version.id)
    }

    /// Removes member `index` of `dir` (a collection's version or a portfolio's member), its aliases with it,
    /// remembering its number. The caller holds the project lock.
    fn remove_member(&self, dir: &Path, index: u64, project: &ProjectRef, name: &str) -> Result<()> {
        let member = dir.join("versions").join(index.to_string());
        if !member.exists() {
            return Err(Error::ArtifactNotFound {
                entity: project.entity().to_owned(),
                project: project.project().to_owned(),
                name: name.to_owned(),
            });
        }
        let next = next_index(dir)?.max(index + 1);
        write_json(&dir.join("next_index"), &next)?;
        let mut aliases = read_aliases(dir)?;
        let before = aliases.len();
        aliases.retain(|_, i| *i != index);
        if aliases.len() != before {
            write_json(&dir.join("aliases.json"), &aliases)?;
        }
        if member.is_dir() { remove_atomically(&member) } else { remove_file_if_present(&member) }
    }

    /// Unlinks `linked`, a version seen through a portfolio or registry collection (`artifact.unlink()`); the
    /// source version is untouched.
    ///
    /// # Errors
    /// [`Error::NotLinked`] for a version of its own collection; [`Error::ArtifactNotFound`] when the link is gone.
    pub fn unlink_version(&self, linked: &ArtifactVersion) -> Result<()> {
        check_linked(linked)?;
        let project = ProjectRef::new(&linked.entity, &linked.project)?;
        let _lock = self.lock_project(&project)?;
        let dir = self.portfolio_dir(&project, &linked.name);
        self.remove_member(&dir, linked.version_index, &project, &linked.qualified_name())
    }

    /// Every portfolio member, in every project of the store, that links version `id`: project, portfolio, index.
    fn members_linking(&self, id: &str) -> Result<Vec<(ProjectRef, String, u64)>> {
        let mut found = Vec::new();
        for entity in list_dir(&self.root.join("entities"))? {
            for project in list_dir(&self.root.join("entities").join(&entity).join("projects"))? {
                let Ok(project) = ProjectRef::new(&entity, &project) else { continue };
                for name in list_dir(&self.project_dir(&project).join("portfolios"))? {
                    let members = self.portfolio_dir(&project, &name).join("versions");
                    for index in list_dir(&members)?.iter().filter_map(|n| n.parse::<u64>().ok()) {
                        let member = read_json::<MemberRecord>(&members.join(index.to_string())).ok().flatten();
                        if member.is_some_and(|m| m.id == id) {
                            found.push((project.clone(), name.clone(), index));
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Version `id` as every portfolio and registry collection it is linked into sees it.
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn memberships(&self, id: &str) -> Result<Vec<ArtifactVersion>> {
        let mut views = Vec::new();
        for (project, name, index) in self.members_linking(id)? {
            match self.artifact(&project, &name, &format!("v{index}")) {
                Ok(view) => views.push(view),
                Err(Error::ArtifactNotFound { .. } | Error::ArtifactIdNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(views)
    }

    /// Removes every portfolio member, in every project of the store, that links version `id`.
    fn unlink_everywhere(&self, id: &str) -> Result<()> {
        for (project, name, index) in self.members_linking(id)? {
            let _lock = self.lock_project(&project)?;
            let dir = self.portfolio_dir(&project, &name);
            match self.remove_member(&dir, index, &project, &format!("{name}:v{index}")) {
                Ok(()) | Err(Error::ArtifactNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes collection `name` of `project` with every version (their links go too) or, for a portfolio,
    /// every link (the sources stay).
    ///
    /// # Errors
    /// [`Error::ArtifactNotFound`] for no such collection, I/O errors.
    pub fn delete_collection(&self, project: &ProjectRef, name: &str) -> Result<()> {
        artifact_core::validate_artifact_name(name)?;
        let sequence = self.collection_dir(project, name);
        if sequence.join("collection.json").exists() {
            let versions = self.versions(project, name).unwrap_or_default();
            {
                let _lock = self.lock_project(project)?;
                for version in &versions {
                    remove_file_if_present(&self.id_index_path(&version.id)?)?;
                }
                remove_atomically(&sequence)?;
            }
            for version in &versions {
                self.unlink_everywhere(&version.id)?;
            }
            return Ok(());
        }
        let portfolio = self.portfolio_dir(project, name);
        if portfolio.join("portfolio.json").exists() {
            let _lock = self.lock_project(project)?;
            return remove_atomically(&portfolio);
        }
        Err(Error::ArtifactNotFound {
            entity: project.entity().to_owned(),
            project: project.project().to_owned(),
            name: name.to_owned(),
        })
    }

    /// Changes collection `name` of `project`: description, tags, name (a sequence's version ids stay theirs,
    /// found under the new name) and type (sequences only). Returns the collection as it is now.
    ///
    /// # Errors
    /// [`Error::ArtifactNotFound`], [`Error::CollectionNameTaken`], name and tag validation, I/O errors.
    pub fn edit_collection(&self, project: &ProjectRef, name: &str, edit: &CollectionEdit) -> Result<Collection> {
        artifact_core::validate_artifact_name(name)?;
        if let Some(tags) = &edit.tags {
            artifact_core::validate_tags(tags)?;
        }
        if let Some(new_name) = &edit.rename {
            artifact_core::validate_artifact_name(new_name)?;
        }
        if let Some(kind) = &edit.artifact_type {
            artifact_core::validate_artifact_type(kind, name)?;
        }
        let _lock = self.lock_project(project)?;
        let (dir, file) = if self.collection_dir(project, name).join("collection.json").exists() {
            (self.collection_dir(project, name), "collection.json")
        } else {
            (self.portfolio_dir(project, name), "portfolio.json")
        };
        let not_found = || Error::ArtifactNotFound {
            entity: project.entity().to_owned(),
            project: project.project().to_owned(),
            name: name.to_owned(),
        };
        let mut record: CollectionRecord = read_json(&dir.join(file))?.ok_or_else(not_found)?;
        if let Some(description) = &edit.description {
            record.description.clone_from(description);
        }
        if let Some(tags) = &edit.tags {
            record.tags = artifact_core::validate_tags(tags)?;
        }
        if let Some(kind) = &edit.artifact_type {
            kind.clone_into(&mut record.artifact_type);
        }
        let mut final_dir = dir.clone();
        if let Some(new_name) = edit.rename.as_ref().filter(|n| *n != name) {
            let taken =
                self.collection_dir(project, new_name).exists() || self.portfolio_dir(project, new_name).exists();
            if taken {
                return Err(Error::CollectionNameTaken { name: format!("{project}/{new_name}") });
            }
            final_dir = dir.parent().expect("collections have a parent").join(new_name);
            new_name.clone_into(&mut record.name);
        }
        write_json(&dir.join(file), &record)?;
        if final_dir != dir {
            fs::rename(&dir, &final_dir).map_err(|e| Error::io("rename", &dir, e))?;
            if file == "collection.json" {
                self.reindex_renamed(project, name, &record.name)?;
            }
        }
        let listed = self.collections_named(project, &record.name)?;
        listed.ok_or_else(not_found)
    }

    /// Points the id index of every version of `old` at `new`. The caller holds the project lock.
    fn reindex_renamed(&self, project: &ProjectRef, old: &str, new: &str) -> Result<()> {
        let index_dir = self.root.join("index/artifacts");
        for file in list_dir(&index_dir)? {
            let path = index_dir.join(&file);
            let Some(mut record) = read_json::<IdIndexRecord>(&path)? else { continue };
            if record.entity == project.entity() && record.project == project.project() && record.name == old {
                new.clone_into(&mut record.name);
                write_json(&path, &record)?;
            }
        }
        Ok(())
    }

    /// The collection `name` of `project`, as [`EmbeddedStore::collections`] lists it.
    fn collections_named(&self, project: &ProjectRef, name: &str) -> Result<Option<Collection>> {
        Ok(self.collections(project, None)?.into_iter().find(|c| c.name == name))
    }
}
