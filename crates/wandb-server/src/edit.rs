//! Changing what was logged, as the public API asks: aliases (`AddAliases`, `DeleteAliases`), a version's record
//! (`UpdateArtifact`), deletes and unlinks (`DeleteArtifact`, `UnlinkArtifact`), collections
//! (`ProjectArtifactCollection`, `UpdateArtifactSequence`/`Portfolio`, `UpdateArtifactSequenceType`, the
//! collection-tag mutations, `DeleteArtifactSequence`/`Portfolio`), and what a version is linked to
//! (`FetchLinkedArtifacts`, `ArtifactCollectionAliases`).
//!
//! Answers carry each result under the `result` alias the SDK's documents use and under the field's own name.

use serde_json::{Map, Value, json};

use super::ServerState;
use super::graphql::{GqlError, GqlResult, opt_str, page_info, page_of, project_of, str_var};
use super::views::{artifact_fragment, collection_fragment, decode_global_id, global_id, graphql_time, project_info};
use wandb_store::{ArtifactVersion, CollectionEdit, CollectionKind, ProjectRef, Ttl, VersionEdit};

/// Answers the editing operations; `None` for any other.
pub(crate) fn dispatch(state: &ServerState, name: &str, v: &Value) -> Option<GqlResult> {
    let input = v.get("input").unwrap_or(v);
    Some(match name {
        "AddAliases" => aliases(state, input, true),
        "DeleteAliases" => aliases(state, input, false),
        "UpdateArtifact" => update_artifact(state, input, v),
        "DeleteArtifact" => delete_artifact(state, input),
        "UnlinkArtifact" => unlink_artifact(state, input),
        "ProjectArtifactCollection" => project_artifact_collection(state, v),
        "UpdateArtifactSequence" => update_collection(state, input, "artifactSequenceID", "updateArtifactSequence"),
        "UpdateArtifactPortfolio" => update_collection(state, input, "artifactPortfolioID", "updateArtifactPortfolio"),
        "UpdateArtifactSequenceType" => move_sequence(state, input),
        "AddArtifactCollectionTags" => collection_tags(state, input, true),
        "DeleteArtifactCollectionTags" => collection_tags(state, input, false),
        "DeleteArtifactSequence" => delete_collection(state, v, "deleteArtifactSequence"),
        "DeleteArtifactPortfolio" => delete_collection(state, v, "deleteArtifactPortfolio"),
        "FetchLinkedArtifacts" => linked_artifacts(state, v),
        "ArtifactCollectionAliases" => collection_aliases(state, v),
        "DeleteRun" => delete_run(state, input),
        _ => return None,
    })
}

/// `{"result": value, field: value}`.
fn result(field: &str, value: Value) -> Value {
    json!({"result": value.clone(), field: value})
}

fn artifact_id(input: &Value) -> std::result::Result<&str, GqlError> {
    input
        .get("artifactID")
        .or_else(|| input.get("artifactId"))
        .and_then(Value::as_str)
        .ok_or_else(|| GqlError("variable input.artifactID is missing or not a string".into()))
}

/// The version `id` as collection `entity/project/collection` sees it: itself in its own collection, else its
/// (newest) membership in that portfolio.
fn view_in(
    state: &ServerState,
    id: &str,
    project: &ProjectRef,
    collection: &str,
) -> std::result::Result<ArtifactVersion, GqlError> {
    let source = state.store.artifact_by_id(id)?;
    if source.entity == project.entity() && source.project == project.project() && source.name == collection {
        return Ok(source);
    }
    let members = state.store.versions(project, collection)?;
    members
        .into_iter()
        .rev()
        .find(|m| m.id == id)
        .ok_or_else(|| GqlError(format!("artifact {id} is not a member of {project}/{collection}")))
}

/// `collection` of `entity/project` from a collection id.
fn collection_of(id: &str) -> std::result::Result<(ProjectRef, String), GqlError> {
    let key = decode_global_id(id, "ArtifactCollection")?;
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(entity), Some(project), Some(name)) => Ok((ProjectRef::new(entity, project)?, name.to_owned())),
        _ => Err(GqlError(format!("{id:?} is not a collection id"))),
    }
}

fn aliases(state: &ServerState, input: &Value, add: bool) -> GqlResult {
    let id = artifact_id(input)?;
    let list = input.get("aliases").and_then(Value::as_array).cloned().unwrap_or_default();
    // Grouped by the collection each alias names: a version's own, or a portfolio it is linked into.
    let mut groups: Vec<((ProjectRef, String), Vec<String>)> = Vec::new();
    for alias in &list {
        let name = str_var(alias, "alias")?.to_owned();
        let collection = str_var(alias, "artifactCollectionName")?.to_owned();
        let source = state.store.artifact_by_id(id)?;
        let entity = opt_str(alias, "entityName").unwrap_or(&source.entity).to_owned();
        let project = opt_str(alias, "projectName").unwrap_or(&source.project).to_owned();
        let key = (ProjectRef::new(&entity, &project)?, collection);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(name),
            None => groups.push((key, vec![name])),
        }
    }
    for ((project, collection), names) in groups {
        let view = view_in(state, id, &project, &collection)?;
        let edit =
            if add { VersionEdit::default().add_aliases(names) } else { VersionEdit::default().remove_aliases(names) };
        state.store.edit_version(&view, &edit)?;
    }
    let field = if add { "addAliases" } else { "deleteAliases" };
    Ok(result(field, json!({"success": true})))
}

/// Tag names of a `TagInput` list.
fn tag_names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|t| t.get("tagName").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn update_artifact(state: &ServerState, input: &Value, v: &Value) -> GqlResult {
    let id = artifact_id(input)?;
    let version = state.store.artifact_by_id(id)?;
    let mut edit = VersionEdit::default();
    if let Some(description) = input.get("description") {
        edit = edit.description(description.as_str().map(str::to_owned));
    }
    if let Some(text) = opt_str(input, "metadata") {
        let metadata: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| GqlError(format!("metadata is not a JSON object: {e}")))?;
        edit = edit.metadata(metadata);
    }
    let (added, removed) = (tag_names(input.get("tagsToAdd")), tag_names(input.get("tagsToDelete")));
    if !added.is_empty() || !removed.is_empty() {
        let mut tags: Vec<String> = version.tags.iter().filter(|t| !removed.contains(t)).cloned().collect();
        tags.extend(added.into_iter().filter(|t| !version.tags.contains(t)));
        edit = edit.tags(tags);
    }
    if let Some(seconds) = input.get("ttlDurationSeconds").and_then(Value::as_i64) {
        edit = edit.ttl(match seconds {
            -1 => Ttl::Inherit,
            s if s > 0 => Ttl::Seconds(s as u64),
            _ => Ttl::None,
        });
    }
    let updated = state.store.edit_version(&version, &edit)?;
    let include_aliases = v.get("includeAliases").and_then(Value::as_bool).unwrap_or(true);
    Ok(result("updateArtifact", json!({"artifact": artifact_fragment(&updated, include_aliases)})))
}

fn delete_artifact(state: &ServerState, input: &Value) -> GqlResult {
    let id = artifact_id(input)?;
    let version = state.store.artifact_by_id(id)?;
    let delete_aliases = input.get("deleteAliases").and_then(Value::as_bool).unwrap_or(false);
    state.store.delete_version(&version, delete_aliases)?;
    Ok(result("deleteArtifact", json!({"artifact": {"id": id}})))
}

fn unlink_artifact(state: &ServerState, input: &Value) -> GqlResult {
    let id = artifact_id(input)?;
    let portfolio = str_var(input, "artifactPortfolioID")?;
    let (project, name) = collection_of(portfolio)?;
    let member = view_in(state, id, &project, &name)?;
    state.store.unlink_version(&member)?;
    Ok(result("unlinkArtifact", json!({"success": true})))
}

/// The collection `name` of `project`, as listed.
fn find_collection(
    state: &ServerState,
    project: &ProjectRef,
    name: &str,
) -> std::result::Result<Option<wandb_store::Collection>, GqlError> {
    match state.store.collections(project, None) {
        Ok(list) => Ok(list.into_iter().find(|c| c.name == name)),
        Err(e) => Err(e.into()),
    }
}

fn project_artifact_collection(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    if !state.store.project_exists(&project) {
        return Ok(json!({"project": null}));
    }
    let (kind, name) = (str_var(v, "type")?, str_var(v, "name")?);
    let collection = find_collection(state, &project, name)?.filter(|c| c.artifact_type == kind);
    Ok(json!({"project": {"artifactType": {
        "__typename": "ArtifactType", "name": kind,
        "artifactCollection": collection.as_ref().map(collection_fragment),
    }}}))
}

fn updated_collection(
    state: &ServerState,
    project: &ProjectRef,
    name: &str,
    edit: &CollectionEdit,
    field: &str,
) -> GqlResult {
    let collection = state.store.edit_collection(project, name, edit)?;
    Ok(result(field, json!({"artifactCollection": collection_fragment(&collection)})))
}

fn update_collection(state: &ServerState, input: &Value, id_key: &str, field: &str) -> GqlResult {
    let (project, name) = collection_of(str_var(input, id_key)?)?;
    let mut edit = CollectionEdit::default();
    if let Some(description) = input.get("description") {
        edit = edit.description(description.as_str().map(str::to_owned));
    }
    if let Some(new_name) = opt_str(input, "name") {
        edit = edit.rename(new_name);
    }
    updated_collection(state, &project, &name, &edit, field)
}

fn move_sequence(state: &ServerState, input: &Value) -> GqlResult {
    let (project, name) = collection_of(str_var(input, "artifactSequenceID")?)?;
    let edit = CollectionEdit::default().artifact_type(str_var(input, "destinationArtifactTypeName")?);
    updated_collection(state, &project, &name, &edit, "moveArtifactSequence")
}

fn collection_tags(state: &ServerState, input: &Value, add: bool) -> GqlResult {
    let project = project_of(input, "entityName", "projectName")?;
    let name = str_var(input, "artifactCollectionName")?;
    let current =
        find_collection(state, &project, name)?.ok_or_else(|| GqlError(format!("no collection {project}/{name}")))?;
    let given = tag_names(input.get("tags"));
    let tags: Vec<String> = if add {
        let mut tags = current.tags.clone();
        tags.extend(given.iter().filter(|t| !current.tags.contains(t)).cloned());
        tags
    } else {
        current.tags.iter().filter(|t| !given.contains(t)).cloned().collect()
    };
    let updated = state.store.edit_collection(&project, name, &CollectionEdit::default().tags(tags))?;
    if add {
        let nodes: Vec<Value> = updated
            .tags
            .iter()
            .filter(|t| given.contains(t))
            .map(|t| json!({"__typename": "Tag", "id": global_id("Tag", t), "name": t}))
            .collect();
        Ok(result("createArtifactCollectionTagAssignments", json!({"tags": nodes})))
    } else {
        Ok(result("deleteArtifactCollectionTagAssignments", json!({"success": true})))
    }
}

fn delete_collection(state: &ServerState, v: &Value, field: &str) -> GqlResult {
    let id = v
        .get("id")
        .or_else(|| v.pointer("/input/artifactSequenceID"))
        .or_else(|| v.pointer("/input/artifactPortfolioID"));
    let id = id.and_then(Value::as_str).ok_or_else(|| GqlError("variable id is missing".into()))?;
    let (project, name) = collection_of(id)?;
    let kind = find_collection(state, &project, &name)?.map(|c| c.kind);
    state.store.delete_collection(&project, &name)?;
    let typename = if kind == Some(CollectionKind::Portfolio) { "ArtifactPortfolio" } else { "ArtifactSequence" };
    Ok(result(field, json!({"artifactCollection": {"__typename": typename, "state": "DELETED"}})))
}

/// `FetchLinkedArtifacts`: every portfolio membership of version `artifactID`.
fn linked_artifacts(state: &ServerState, v: &Value) -> GqlResult {
    let id = v.get("artifactID").or_else(|| v.get("id")).and_then(Value::as_str);
    let id = id.ok_or_else(|| GqlError("variable artifactID is missing".into()))?;
    let source = state.store.artifact_by_id(id)?;
    let mut edges = Vec::new();
    for member in state.store.memberships(&source.id)? {
        edges.push(json!({"node": {
            "versionIndex": member.version_index,
            "createdAt": graphql_time(&member.created_at),
            "aliases": member.aliases.iter().map(|a| json!({
                "__typename": "ArtifactAlias",
                "id": global_id("ArtifactAlias", &format!("{}/{}/{}:{a}", member.entity, member.project, member.name)),
                "alias": a,
            })).collect::<Vec<_>>(),
            "artifactCollection": {
                "__typename": "ArtifactPortfolio", "name": member.name,
                "project": project_info(&member.entity, &member.project),
            },
        }}));
    }
    Ok(json!({"artifact": {"artifactMemberships": {"edges": edges}}}))
}

/// `DeleteRun` (`run.delete()`, and `wandb job create` removing the run it made the job with).
fn delete_run(state: &ServerState, input: &Value) -> GqlResult {
    let id = str_var(input, "id")?;
    let key = decode_global_id(id, "Run")?;
    let Some((project, run)) = key.rsplit_once('/') else {
        return Err(GqlError(format!("{id:?} is not a run id")));
    };
    let (entity, project) = project.split_once('/').ok_or_else(|| GqlError(format!("{id:?} is not a run id")))?;
    let delete_artifacts = input.get("deleteArtifacts").and_then(Value::as_bool).unwrap_or(false);
    state.store.delete_run(&ProjectRef::new(entity, project)?, run, delete_artifacts)?;
    Ok(json!({"deleteRun": {"clientMutationId": null}}))
}

/// `ArtifactCollectionAliases`: every alias of a collection's versions (`latest` included: the real server keeps
/// it as an alias row like any other), with the version it names.
fn collection_aliases(state: &ServerState, v: &Value) -> GqlResult {
    let (project, name) = collection_of(str_var(v, "id")?)?;
    let mut aliases: Vec<(String, u64)> = Vec::new();
    for version in state.store.versions(&project, &name)? {
        for alias in &version.aliases {
            aliases.push((alias.clone(), version.version_index));
        }
    }
    aliases.sort();
    let page = page_of(v, aliases.len());
    let edges: Vec<Value> = aliases[page.clone()]
        .iter()
        .map(|(alias, index)| {
            json!({"node": {
                "__typename": "ArtifactAlias",
                "id": global_id("ArtifactAlias", &format!("{project}/{name}:{alias}:{index}")),
                "alias": alias,
            }})
        })
        .collect();
    Ok(json!({"artifactCollection": {
        "__typename": "ArtifactSequence",
        "aliases": {"pageInfo": page_info(&page, aliases.len()), "edges": edges},
    }}))
}
