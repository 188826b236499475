//! Registries and organizations, as `wandb.Api()` reads and changes them: `FetchOrganization`,
//! `FetchAdvancedRegistryFeatures`, `FetchRegistries`, `FetchRegistry`, `UpsertRegistry`, `RenameRegistry`,
//! `DeleteRegistry`, `RegistryCollections` and `RegistryVersions`. An organization is an entity of the store (its
//! own org entity), as `FetchOrgInfoFromEntity` answers. Membership and role operations are refused: access to a
//! registry is access to its organization's entity, as the users file gives it.

use artifact_core::REGISTRY_PREFIX;
use serde_json::{Value, json};
use wandb_store::{CollectionKind, Error, ProjectRef, Registry, RegistrySpec, RegistryVisibility};

use super::ServerState;
use super::filters;
use super::graphql::{GqlError, GqlResult, opt_str, page_info, page_of, str_var};
use super::views::{
    collection_fragment, decode_global_id, global_id, graphql_time, membership_fragment, project_number,
};

/// Answers `name` when it is one of these operations.
pub(crate) fn dispatch(state: &ServerState, name: &str, v: &Value) -> Option<GqlResult> {
    let input = v.get("input").unwrap_or(v);
    Some(match name {
        "FetchOrganization" => organization(v),
        "FetchAdvancedRegistryFeatures" => {
            Ok(json!({"organization": {"advancedRegistryFeatures": {"advancedSearch": false}}}))
        }
        "FetchRegistries" => fetch_registries(state, v),
        "FetchRegistry" => fetch_registry(state, v),
        "UpsertRegistry" => upsert_registry(state, input),
        "RenameRegistry" => rename_registry(state, input),
        "DeleteRegistry" => delete_registry(state, v),
        "RegistryCollections" => registry_collections(state, v),
        "RegistryVersions" => registry_versions(state, v),
        "RegistryUserMembers"
        | "RegistryTeamMembers"
        | "CreateRegistryMembers"
        | "DeleteRegistryMembers"
        | "UpdateUserRegistryRole"
        | "UpdateTeamRegistryRole" => Err(GqlError(format!(
            "{name}: dagster-wandb server keeps no registry members or roles; a user may use a registry when the \
             users file gives them its organization's entity"
        ))),
        _ => return None,
    })
}

fn organization(v: &Value) -> GqlResult {
    let org = str_var(v, "org")?;
    Ok(json!({"organization": {
        "id": global_id("Organization", org),
        "name": org,
        "orgEntity": {"__typename": "Entity", "id": global_id("Entity", org), "name": org, "entityType": "organization"},
    }}))
}

/// `RegistryFragment`.
fn registry_fragment(state: &ServerState, registry: &Registry) -> GqlResult {
    let project = registry.project();
    let types: Vec<String> = if registry.allow_all_artifact_types {
        let mut present: Vec<String> =
            state.store.collections(&project, None)?.into_iter().map(|c| c.artifact_type).collect();
        present.sort();
        present.dedup();
        present
    } else {
        registry.artifact_types.clone()
    };
    let types: Vec<Value> = types.iter().map(|t| json!({"node": {"name": t}})).collect();
    Ok(json!({
        "__typename": "Project",
        "id": global_id("Project", &project.to_string()),
        "internalId": global_id("ProjectInternalId", &project_number(&project).to_string()),
        "name": project.project(),
        "entity": {"name": registry.entity, "organization": {"name": registry.entity}},
        "description": registry.description,
        "createdAt": graphql_time(&registry.created_at),
        "updatedAt": graphql_time(&registry.updated_at),
        "access": registry.visibility.to_graphql(),
        "allowAllArtifactTypes": registry.allow_all_artifact_types,
        "artifactTypes": {"edges": types},
    }))
}

/// The registries of organization `org` that `filter` accepts (fields `id`, `name` with its prefix,
/// `description`, `created_at`, `updated_at`).
fn registries_matching(state: &ServerState, org: &str, filter: Option<&Value>) -> Result<Vec<Registry>, GqlError> {
    let mut out = Vec::new();
    for registry in state.store.registries(org)? {
        let project = registry.project();
        let field = |name: &str| -> Vec<Value> {
            match name {
                "id" => vec![json!(project_number(&project))],
                "name" => vec![json!(project.project())],
                "description" => registry.description.iter().map(|d| json!(d)).collect(),
                "created_at" | "createdAt" => vec![json!(registry.created_at)],
                "updated_at" | "updatedAt" => vec![json!(registry.updated_at)],
                _ => Vec::new(),
            }
        };
        if filters::matches(filter, &field)? {
            out.push(registry);
        }
    }
    Ok(out)
}

fn fetch_registries(state: &ServerState, v: &Value) -> GqlResult {
    let org = str_var(v, "organization")?;
    let filter = filters::parse(v, "filters")?;
    let mut registries = registries_matching(state, org, filter.as_ref())?;
    if v.get("order").and_then(Value::as_str).is_some_and(|o| o.starts_with('-')) {
        registries.reverse();
    }
    let page = page_of(v, registries.len());
    let edges = registries[page.clone()]
        .iter()
        .map(|r| Ok(json!({"node": registry_fragment(state, r)?})))
        .collect::<Result<Vec<Value>, GqlError>>()?;
    Ok(json!({"organization": {"orgEntity": {"projects": {
        "pageInfo": page_info(&page, registries.len()),
        "edges": edges,
    }}}}))
}

/// The registry a full project name (`wandb-registry-<name>`) names.
fn registry_name(full: &str) -> Result<&str, GqlError> {
    full.strip_prefix(REGISTRY_PREFIX)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| GqlError(format!("{full:?} is not a registry project (wandb-registry-<name>)")))
}

fn fetch_registry(state: &ServerState, v: &Value) -> GqlResult {
    let entity = str_var(v, "entity")?;
    let name = registry_name(str_var(v, "name")?)?;
    match state.store.registry(entity, name) {
        Ok(registry) => Ok(json!({"entity": {"project": registry_fragment(state, &registry)?}})),
        Err(Error::RegistryNotFound { .. }) => Ok(json!({"entity": {"project": null}})),
        Err(e) => Err(e.into()),
    }
}

/// `UpsertModelInput` as a change to a registry.
fn spec_of(input: &Value) -> RegistrySpec {
    let mut spec = RegistrySpec::default();
    if let Some(description) = input.get("description") {
        spec = spec.description(description.as_str().map(str::to_owned));
    }
    if let Some(access) = opt_str(input, "access") {
        spec = spec.visibility(RegistryVisibility::from_graphql(access));
    }
    spec.allow_all_artifact_types = input.get("allowAllArtifactTypesInRegistry").and_then(Value::as_bool);
    spec.add_artifact_types = input
        .get("artifactTypes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    spec
}

fn upsert_registry(state: &ServerState, input: &Value) -> GqlResult {
    let entity = str_var(input, "entityName")?;
    let name = registry_name(str_var(input, "name")?)?;
    let spec = spec_of(input);
    let (registry, inserted) = match state.store.registry(entity, name) {
        Ok(_) => (state.store.edit_registry(entity, name, &spec)?, false),
        Err(Error::RegistryNotFound { .. }) => (state.store.create_registry(entity, name, &spec)?, true),
        Err(e) => return Err(e.into()),
    };
    Ok(json!({"upsertModel": {"inserted": inserted, "project": registry_fragment(state, &registry)?}}))
}

fn rename_registry(state: &ServerState, input: &Value) -> GqlResult {
    let entity = str_var(input, "entityName")?;
    let old = registry_name(str_var(input, "oldProjectName")?)?;
    let new = registry_name(str_var(input, "newProjectName")?)?;
    let registry = state.store.edit_registry(entity, old, &RegistrySpec::default().rename(new))?;
    Ok(json!({"renameProject": {"inserted": false, "project": registry_fragment(state, &registry)?}}))
}

fn delete_registry(state: &ServerState, v: &Value) -> GqlResult {
    let key = decode_global_id(str_var(v, "id")?, "Project")?;
    let (entity, project) = key.split_once('/').ok_or_else(|| GqlError(format!("{key:?} is not a project")))?;
    state.store.delete_registry(entity, registry_name(project)?)?;
    Ok(json!({"deleteModel": {"success": true}}))
}

/// The collections of the registries `registryFilter` accepts that `collectionFilter` accepts (fields `name`,
/// `tag`, `description`, `type`, `created_at`), of the kinds `collectionTypes` asks for (portfolios by default).
fn collections_matching(state: &ServerState, v: &Value) -> Result<Vec<wandb_store::Collection>, GqlError> {
    let org = str_var(v, "organization")?;
    let registry_filter = filters::parse(v, "registryFilter")?;
    let collection_filter = filters::parse(v, "collectionFilter")?;
    let kinds: Vec<CollectionKind> = match v.get("collectionTypes").and_then(Value::as_array) {
        Some(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|k| match k {
                "PORTFOLIO" => Some(CollectionKind::Portfolio),
                "SEQUENCE" => Some(CollectionKind::Sequence),
                _ => None,
            })
            .collect(),
        None => vec![CollectionKind::Portfolio],
    };
    let mut out = Vec::new();
    for registry in registries_matching(state, org, registry_filter.as_ref())? {
        for collection in state.store.collections(&registry.project(), None)? {
            let field = |name: &str| -> Vec<Value> {
                match name {
                    "name" => vec![json!(collection.name)],
                    "tag" | "tags" => collection.tags.iter().map(|t| json!(t)).collect(),
                    "description" => collection.description.iter().map(|d| json!(d)).collect(),
                    "type" => vec![json!(collection.artifact_type)],
                    "created_at" | "createdAt" => vec![json!(collection.latest.created_at)],
                    _ => Vec::new(),
                }
            };
            if kinds.contains(&collection.kind) && filters::matches(collection_filter.as_ref(), &field)? {
                out.push(collection);
            }
        }
    }
    Ok(out)
}

fn registry_collections(state: &ServerState, v: &Value) -> GqlResult {
    let org = str_var(v, "organization")?;
    let collections = collections_matching(state, v)?;
    let page = page_of(v, collections.len());
    let edges: Vec<Value> = collections[page.clone()].iter().map(|c| json!({"node": collection_fragment(c)})).collect();
    Ok(json!({"organization": {"orgEntity": {"name": org, "artifactCollections": {
        "totalCount": collections.len(),
        "pageInfo": page_info(&page, collections.len()),
        "edges": edges,
    }}}}))
}

fn registry_versions(state: &ServerState, v: &Value) -> GqlResult {
    let org = str_var(v, "organization")?;
    let artifact_filter = filters::parse(v, "artifactFilter")?;
    let include_aliases = v.get("includeAliases").and_then(Value::as_bool).unwrap_or(false);
    let mut members = Vec::new();
    for collection in collections_matching(state, v)? {
        let project = ProjectRef::new(&collection.latest.entity, &collection.latest.project)?;
        for member in state.store.versions(&project, &collection.name)? {
            let field = |name: &str| -> Vec<Value> {
                match name {
                    "alias" | "aliases" => member.aliases.iter().map(|a| json!(a)).collect(),
                    "tag" | "tags" => member.tags.iter().map(|t| json!(t)).collect(),
                    "created_at" | "createdAt" => vec![json!(member.created_at)],
                    "version" => vec![json!(member.version())],
                    other => match other.strip_prefix("metadata.") {
                        Some(key) => member.metadata.get(key).cloned().into_iter().collect(),
                        None => Vec::new(),
                    },
                }
            };
            if filters::matches(artifact_filter.as_ref(), &field)? {
                members.push(member);
            }
        }
    }
    let page = page_of(v, members.len());
    let edges = members[page.clone()]
        .iter()
        .map(|m| Ok(json!({"node": membership_fragment(state, m, include_aliases)?})))
        .collect::<Result<Vec<Value>, GqlError>>()?;
    Ok(json!({"organization": {"orgEntity": {"name": org, "artifactMemberships": {
        "pageInfo": page_info(&page, members.len()),
        "edges": edges,
    }}}}))
}
