//! Store records shaped as the client's GraphQL fragments read them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::ServerState;
use wandb_store::ArtifactVersion;
use wandb_store::Result;

/// A W&B-style global id: `base64("<Type>:<key>")`.
pub(crate) fn global_id(kind: &str, key: &str) -> String {
    B64.encode(format!("{kind}:{key}"))
}

/// The key of a [`global_id`] of type `kind`.
pub(crate) fn decode_global_id(id: &str, kind: &str) -> std::result::Result<String, super::graphql::GqlError> {
    B64.decode(id)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(&format!("{kind}:")).map(str::to_owned))
        .ok_or_else(|| super::graphql::GqlError(format!("{id:?} is not a {kind} id")))
}

/// A number for a project, as W&B's integer `projectId` (the SDK parses it with `int()`), and the
/// `ProjectInternalId` the registry searches filter by.
pub(crate) fn project_number(project: &wandb_store::ProjectRef) -> u64 {
    // FNV-1a: stable across processes and releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in project.to_string().bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash >> 34
}

/// `ProjectInfoFragment`.
pub(crate) fn project_info(entity: &str, project: &str) -> Value {
    let number = wandb_store::ProjectRef::new(entity, project).map(|p| project_number(&p)).unwrap_or(0);
    json!({
        "id": global_id("Project", &format!("{entity}/{project}")),
        "internalId": global_id("ProjectInternalId", &number.to_string()),
        "name": project,
        "entity": {"id": global_id("Entity", entity), "name": entity},
    })
}

/// `CollectionInfoFragment` / `SourceCollectionInfoFragment`.
fn collection_info(version: &ArtifactVersion, typename: &str) -> Value {
    json!({"__typename": typename, "name": version.name, "project": project_info(&version.entity, &version.project)})
}

fn alias_list(version: &ArtifactVersion, with_collection: bool) -> Vec<Value> {
    version
        .aliases
        .iter()
        .map(|alias| {
            let mut value = json!({
                "__typename": "ArtifactAlias",
                "id": global_id("ArtifactAlias", &format!("{}:{}", version.id, alias)),
                "alias": alias,
            });
            if with_collection {
                value["artifactCollection"] = collection_info(version, "ArtifactSequence");
            }
            value
        })
        .collect()
}

/// `ArtifactFragment` of a source version (never a portfolio view).
pub(crate) fn artifact_fragment(version: &ArtifactVersion, include_aliases: bool) -> Value {
    let mut value = json!({
        "__typename": "Artifact",
        "id": version.id,
        "artifactSequence": collection_info(version, "ArtifactSequence"),
        "versionIndex": version.version_index,
        "artifactType": {"name": version.artifact_type},
        "description": version.description,
        "metadata": serde_json::to_string(&version.metadata).expect("metadata serialises"),
        // An inherited TTL is the team's policy, which the embedded store does not have: none (-2).
        "ttlDurationSeconds": match version.ttl { wandb_store::Ttl::Seconds(s) => s as i64, _ => -2 },
        "ttlIsInherited": version.ttl == wandb_store::Ttl::Inherit,
        "tags": version.tags.iter().map(|name| json!({
            "__typename": "Tag", "id": global_id("Tag", name), "name": name,
        })).collect::<Vec<_>>(),
        "historyStep": null,
        "state": "COMMITTED",
        "size": version.size,
        "digest": version.digest,
        "digestAlgorithm": version.digest_algorithm,
        "commitHash": version.digest,
        "fileCount": version.file_count,
        "createdAt": graphql_time(&version.created_at),
        "updatedAt": null,
    });
    if include_aliases {
        value["aliases"] = Value::Array(alias_list(version, true));
    }
    value
}

/// `ArtifactMembershipFragment` of `view` (a version as its collection or a portfolio sees it).
pub(crate) fn membership_fragment(state: &ServerState, view: &ArtifactVersion, include_aliases: bool) -> Result<Value> {
    let source = match &view.linked_from {
        Some(_) => state.store.artifact_by_id(&view.id)?,
        None => view.clone(),
    };
    let typename = if view.linked_from.is_some() { "ArtifactPortfolio" } else { "ArtifactSequence" };
    Ok(json!({
        "__typename": "ArtifactCollectionMembership",
        "id": global_id("ArtifactCollectionMembership", &format!("{}/{}/{}:{}", view.entity, view.project, view.name, view.version_index)),
        "versionIndex": view.version_index,
        "createdAt": graphql_time(&view.created_at),
        "aliases": alias_list(view, false),
        "artifactCollection": collection_info(view, typename),
        "artifact": artifact_fragment(&source, include_aliases),
    }))
}

/// The id of collection `name` of `entity/project`, as `ArtifactCollectionFragment` carries it.
pub(crate) fn collection_id(entity: &str, project: &str, name: &str) -> String {
    global_id("ArtifactCollection", &format!("{entity}/{project}/{name}"))
}

/// `ArtifactCollectionFragment` of `c`.
pub(crate) fn collection_fragment(c: &wandb_store::Collection) -> Value {
    let (entity, project) = (c.latest.entity.as_str(), c.latest.project.as_str());
    let created = graphql_time(&c.latest.created_at);
    let typename = match c.kind {
        wandb_store::CollectionKind::Sequence => "ArtifactSequence",
        wandb_store::CollectionKind::Portfolio => "ArtifactPortfolio",
    };
    let tags: Vec<Value> =
        c.tags.iter().map(|t| json!({"node": {"__typename": "Tag", "id": global_id("Tag", t), "name": t}})).collect();
    json!({
        "__typename": typename,
        "id": collection_id(entity, project, &c.name),
        "name": c.name, "description": c.description, "createdAt": created, "updatedAt": created,
        "project": project_info(entity, project),
        "type": {"name": c.artifact_type},
        "tags": {"edges": tags},
        "state": "READY",
    })
}

/// W&B returns times without a zone suffix (`2026-01-01T00:00:00`), in UTC.
pub(crate) fn graphql_time(rfc3339: &str) -> String {
    let trimmed = rfc3339.trim_end_matches('Z');
    trimmed.split('.').next().unwrap_or(trimmed).to_owned()
}
