//! Registries: the `wandb-registry-<name>` projects of an organization's entity, with a description, a
//! visibility and the artifact types they accept. Their collections are portfolios, linked into as any other.
//!
//! A registry project that was linked into before it was created (W&B's core registries, `model` and
//! `dataset`, exist in every organization) is a registry with the defaults: organization-visible, every type.

use std::path::PathBuf;

use artifact_core::REGISTRY_PREFIX;
use serde::{Deserialize, Serialize};

use crate::edit::remove_atomically;
use crate::records::IdIndexRecord;
use crate::time::{now_rfc3339, rfc3339};
use crate::{EmbeddedStore, Error, ProjectRef, Result, list_dir, read_json, write_json};

/// Who sees a registry (W&B's `access`: `PRIVATE` for organization, `RESTRICTED`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryVisibility {
    /// Everyone in the organization.
    #[default]
    Organization,
    /// Only its members.
    Restricted,
}

impl RegistryVisibility {
    /// W&B's `access` value.
    pub fn to_graphql(self) -> &'static str {
        match self {
            RegistryVisibility::Organization => "PRIVATE",
            RegistryVisibility::Restricted => "RESTRICTED",
        }
    }

    /// From W&B's `access` (or the SDK's names); other project access levels count as organization, as the SDK
    /// reads them.
    pub fn from_graphql(access: &str) -> Self {
        match access {
            "RESTRICTED" | "restricted" => RegistryVisibility::Restricted,
            _ => RegistryVisibility::Organization,
        }
    }
}

/// A registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Registry {
    /// The organization's entity it belongs to.
    pub entity: String,
    /// Its name, without the `wandb-registry-` prefix.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Who sees it.
    pub visibility: RegistryVisibility,
    /// Whether every artifact type may be linked into it.
    pub allow_all_artifact_types: bool,
    /// The types it accepts when not all are (types once added are never removed, as in W&B).
    pub artifact_types: Vec<String>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

impl Registry {
    /// Registry `name` of `entity` with the defaults (organization-visible, every type, no description), as a
    /// backend describes one it read.
    pub fn new(entity: &str, name: &str, created_at: &str) -> Self {
        Registry {
            entity: entity.to_owned(),
            name: name.to_owned(),
            description: None,
            visibility: RegistryVisibility::Organization,
            allow_all_artifact_types: true,
            artifact_types: Vec::new(),
            created_at: created_at.to_owned(),
            updated_at: created_at.to_owned(),
        }
    }

    /// Its project, `wandb-registry-<name>` of its entity.
    pub fn project(&self) -> ProjectRef {
        ProjectRef::new(&self.entity, &format!("{REGISTRY_PREFIX}{}", self.name)).expect("validated when made")
    }
}

/// What a new registry is, or what changes on one ([`EmbeddedStore::create_registry`],
/// [`EmbeddedStore::edit_registry`]). Unset fields keep their value (or the default, creating).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrySpec {
    /// A new name (editing only).
    pub rename: Option<String>,
    /// The description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// The visibility.
    pub visibility: Option<RegistryVisibility>,
    /// Whether every type is accepted.
    pub allow_all_artifact_types: Option<bool>,
    /// Types to accept (added to those already accepted).
    pub add_artifact_types: Vec<String>,
}

impl RegistrySpec {
    /// Described as `description`.
    pub fn description(mut self, description: Option<String>) -> Self {
        self.description = Some(description);
        self
    }

    /// With `visibility`.
    pub fn visibility(mut self, visibility: RegistryVisibility) -> Self {
        self.visibility = Some(visibility);
        self
    }

    /// Accepting only these types (and those accepted already).
    pub fn artifact_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.add_artifact_types = types.into_iter().map(Into::into).collect();
        self.allow_all_artifact_types = Some(false);
        self
    }

    /// Renamed to `name`.
    pub fn rename(mut self, name: impl Into<String>) -> Self {
        self.rename = Some(name.into());
        self
    }
}

/// `registry.json` in a registry's project directory.
#[derive(Clone, Serialize, Deserialize)]
struct RegistryRecord {
    description: Option<String>,
    visibility: RegistryVisibility,
    allow_all_artifact_types: bool,
    artifact_types: Vec<String>,
    created_at: String,
    updated_at: String,
}

impl EmbeddedStore {
    /// The registries of `entity`, by name.
    ///
    /// # Errors
    /// I/O errors and damaged records.
    pub fn registries(&self, entity: &str) -> Result<Vec<Registry>> {
        let mut out = Vec::new();
        for project in list_dir(&self.root.join("entities").join(entity).join("projects"))? {
            if let Some(name) = project.strip_prefix(REGISTRY_PREFIX)
                && let Some(registry) = self.read_registry(entity, name)?
            {
                out.push(registry);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Registry `name` (without the prefix) of `entity`.
    ///
    /// # Errors
    /// [`Error::RegistryNotFound`], damaged records.
    pub fn registry(&self, entity: &str, name: &str) -> Result<Registry> {
        self.read_registry(entity, name)?
            .ok_or_else(|| Error::RegistryNotFound { entity: entity.to_owned(), name: name.to_owned() })
    }

    /// Creates registry `name` of `entity` (`api.create_registry`).
    ///
    /// # Errors
    /// [`Error::RegistryExists`], invalid names or types, I/O errors.
    pub fn create_registry(&self, entity: &str, name: &str, spec: &RegistrySpec) -> Result<Registry> {
        let project = registry_project(entity, name)?;
        for artifact_type in &spec.add_artifact_types {
            artifact_core::validate_stored_type(artifact_type)?;
        }
        let _lock = self.lock_project(&project)?;
        if self.read_registry(entity, name)?.is_some() {
            return Err(Error::RegistryExists { entity: entity.to_owned(), name: name.to_owned() });
        }
        let now = now_rfc3339();
        let record = RegistryRecord {
            description: spec.description.clone().flatten(),
            visibility: spec.visibility.unwrap_or_default(),
            allow_all_artifact_types: spec.allow_all_artifact_types.unwrap_or(spec.add_artifact_types.is_empty()),
            artifact_types: dedup(spec.add_artifact_types.clone()),
            created_at: now.clone(),
            updated_at: now,
        };
        write_json(&self.registry_path(&project), &record)?;
        Ok(view(entity, name, record))
    }

    /// Changes registry `name` of `entity` (`registry.save()`): description, visibility, accepted types (only
    /// added), and its name.
    ///
    /// # Errors
    /// [`Error::RegistryNotFound`], [`Error::RegistryExists`] for a rename onto another registry, invalid names
    /// or types, I/O errors.
    pub fn edit_registry(&self, entity: &str, name: &str, spec: &RegistrySpec) -> Result<Registry> {
        let registry = self.registry(entity, name)?;
        let project = registry.project();
        for artifact_type in &spec.add_artifact_types {
            artifact_core::validate_stored_type(artifact_type)?;
        }
        let mut record = RegistryRecord {
            description: registry.description,
            visibility: registry.visibility,
            allow_all_artifact_types: registry.allow_all_artifact_types,
            artifact_types: registry.artifact_types,
            created_at: registry.created_at,
            updated_at: now_rfc3339(),
        };
        if let Some(description) = &spec.description {
            record.description.clone_from(description);
        }
        if let Some(visibility) = spec.visibility {
            record.visibility = visibility;
        }
        if let Some(all) = spec.allow_all_artifact_types {
            record.allow_all_artifact_types = all;
        }
        record.artifact_types.extend(spec.add_artifact_types.iter().cloned());
        record.artifact_types = dedup(std::mem::take(&mut record.artifact_types));
        {
            let _lock = self.lock_project(&project)?;
            write_json(&self.registry_path(&project), &record)?;
        }
        match spec.rename.as_deref().filter(|new| *new != name) {
            Some(new) => {
                self.rename_project(&project, &registry_project(entity, new)?)?;
                self.registry(entity, new)
            }
            None => Ok(view(entity, name, record)),
        }
    }

    /// Deletes registry `name` of `entity` and every link into it; the linked versions stay where they were
    /// logged.
    ///
    /// # Errors
    /// [`Error::RegistryNotFound`], I/O errors.
    pub fn delete_registry(&self, entity: &str, name: &str) -> Result<()> {
        let project = self.registry(entity, name)?.project();
        self.forget_project_ids(&project, None)?;
        remove_atomically(&self.project_dir(&project))
    }

    /// Checks that registry `project` (any `wandb-registry-*` project) accepts `artifact_type`; other projects
    /// accept everything.
    pub(crate) fn check_registry_accepts(&self, project: &ProjectRef, artifact_type: &str) -> Result<()> {
        let Some(name) = project.project().strip_prefix(REGISTRY_PREFIX) else { return Ok(()) };
        match self.read_registry(project.entity(), name)? {
            Some(r) if !r.allow_all_artifact_types && !r.artifact_types.iter().any(|t| t == artifact_type) => {
                Err(Error::TypeNotInRegistry {
                    registry: name.to_owned(),
                    artifact_type: artifact_type.to_owned(),
                    accepted: r.artifact_types,
                })
            }
            _ => Ok(()),
        }
    }

    fn registry_path(&self, project: &ProjectRef) -> PathBuf {
        self.project_dir(project).join("registry.json")
    }

    fn read_registry(&self, entity: &str, name: &str) -> Result<Option<Registry>> {
        let Ok(project) = registry_project(entity, name) else { return Ok(None) };
        let dir = self.project_dir(&project);
        if let Some(record) = read_json::<RegistryRecord>(&self.registry_path(&project))? {
            return Ok(Some(view(entity, name, record)));
        }
        // Linked into before anyone created it: a core registry, with the defaults. (A bare directory is not one:
        // taking the project's lock makes it.)
        if !dir.join("portfolios").is_dir() && !dir.join("collections").is_dir() {
            return Ok(None);
        }
        let Ok(metadata) = std::fs::metadata(&dir) else { return Ok(None) };
        let created = metadata.modified().map(rfc3339).unwrap_or_else(|_| now_rfc3339());
        let record = RegistryRecord {
            description: None,
            visibility: RegistryVisibility::Organization,
            allow_all_artifact_types: true,
            artifact_types: Vec::new(),
            created_at: created.clone(),
            updated_at: created,
        };
        Ok(Some(view(entity, name, record)))
    }

    /// Moves project `from` to `to` (same entity), and the store-wide ids of its versions with it.
    fn rename_project(&self, from: &ProjectRef, to: &ProjectRef) -> Result<()> {
        let _lock = self.lock_project(from)?;
        let target = self.project_dir(to);
        if target.exists() {
            let name = to.project().strip_prefix(REGISTRY_PREFIX).unwrap_or(to.project());
            return Err(Error::RegistryExists { entity: to.entity().to_owned(), name: name.to_owned() });
        }
        let source = self.project_dir(from);
        std::fs::rename(&source, &target).map_err(|e| Error::io("rename", &source, e))?;
        self.forget_project_ids(from, Some(to))
    }

    /// Points the id index entries of `project`'s versions at `moved_to`, or drops them when it is gone.
    fn forget_project_ids(&self, project: &ProjectRef, moved_to: Option<&ProjectRef>) -> Result<()> {
        let index = self.root.join("index/artifacts");
        for file in list_dir(&index)? {
            let path = index.join(&file);
            let Some(mut record) = read_json::<IdIndexRecord>(&path)? else { continue };
            if record.entity != project.entity() || record.project != project.project() {
                continue;
            }
            match moved_to {
                Some(to) => {
                    to.project().clone_into(&mut record.project);
                    write_json(&path, &record)?;
                }
                None => match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", &path, e)),
                },
            }
        }
        Ok(())
    }
}

fn registry_project(entity: &str, name: &str) -> Result<ProjectRef> {
    let project = format!("{REGISTRY_PREFIX}{name}");
    artifact_core::validate_project_name(&project)?;
    Ok(ProjectRef::new(entity, &project)?)
}

fn view(entity: &str, name: &str, record: RegistryRecord) -> Registry {
    Registry {
        entity: entity.to_owned(),
        name: name.to_owned(),
        description: record.description,
        visibility: record.visibility,
        allow_all_artifact_types: record.allow_all_artifact_types,
        artifact_types: record.artifact_types,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

fn dedup(mut types: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    types.retain(|t| seen.insert(t.clone()));
    types
}
