//! Which entities a GraphQL request reaches, and whether its caller may use them.
//!
//! Every operation names what it works on in its variables: an entity (`entity`, `entityName`, `organization`),
//! or the id of something that belongs to one (an artifact, a collection, a run, a project, a manifest, a run
//! queue, its items, a launch agent, a client id). All are gathered, at any depth (and inside a launch `runSpec`),
//! and each must be one the caller may use. A request that names none, or an id whose kind the server cannot
//! place, is refused for a restricted caller: what cannot be placed cannot be allowed.

use serde_json::Value;

use super::ServerState;
use super::auth::Caller;
use super::graphql::GqlError;
use super::views::decode_global_id;

/// Operations that touch no entity's data: the caller's own identity and the server's features.
const ENTITY_FREE: &[&str] = &["Viewer", "GetDefaultEntity", "ServerFeaturesQuery", "ServerInfo"];

/// Variables naming an entity.
const ENTITY_KEYS: &[&str] = &["entity", "entityName", "organization", "org"];

/// Variables holding the id of something an entity owns.
const ID_KEYS: &[&str] = &[
    "id",
    "artifactID",
    "artifactId",
    "artifactPortfolioID",
    "artifactSequenceID",
    "artifactCollectionID",
    "artifactManifestID",
    "queueID",
    "runQueueID",
    "runQueueItemId",
    "itemId",
    "agentId",
];

/// Refuses the request unless `caller` may use every entity `variables` reach.
pub(crate) fn authorize(
    state: &ServerState,
    caller: &Caller,
    operation: &str,
    variables: &Value,
) -> Result<(), GqlError> {
    if !caller.is_restricted() || ENTITY_FREE.contains(&operation) {
        return Ok(());
    }
    let mut entities = Vec::new();
    gather(state, variables, &mut entities)?;
    if entities.is_empty() {
        return Err(GqlError(format!("{operation}: the request names no entity, so {} may not make it", caller.name)));
    }
    if let Some(entity) = entities.iter().find(|e| !caller.may_use(e)) {
        return Err(GqlError(format!("permission denied: {} may not use entity {entity:?}", caller.name)));
    }
    // An artifact between CreateArtifact and CommitArtifact is its creator's alone.
    let pending = state.pending.lock().expect("pending lock");
    let mut ids = Vec::new();
    artifact_ids(variables, &mut ids);
    match ids.iter().filter_map(|id| pending.get(id.as_str())).find(|p| p.owner != caller.name) {
        Some(_) => {
            Err(GqlError(format!("permission denied: {} may not change another user's pending artifact", caller.name)))
        }
        None => Ok(()),
    }
}

/// The values of every `artifactID`-like variable.
fn artifact_ids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("artifactID" | "artifactId", Value::String(id)) => out.push(id.clone()),
                    ("artifactManifestID", Value::String(id)) => {
                        if let Ok(key) = decode_global_id(id, "ArtifactManifest") {
                            out.push(key.rsplit_once('#').map_or(key.clone(), |(id, _)| id.to_owned()));
                        }
                    }
                    _ => artifact_ids(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| artifact_ids(item, out)),
        _ => {}
    }
}

fn gather(state: &ServerState, value: &Value, out: &mut Vec<String>) -> Result<(), GqlError> {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    (k, Value::String(entity)) if ENTITY_KEYS.contains(&k) => out.push(entity.clone()),
                    (k, Value::String(id)) if ID_KEYS.contains(&k) => {
                        if let Some(entity) = owner_of_id(state, id)? {
                            out.push(entity);
                        }
                    }
                    ("clientID", Value::String(client)) => {
                        if let Some(id) = state.store.artifact_for_client_id(client)?
                            && let Some(entity) = owner_of_id(state, &id)?
                        {
                            out.push(entity);
                        }
                    }
                    // A launch run spec says where its run goes.
                    ("runSpec", Value::String(spec)) => {
                        if let Ok(spec) = serde_json::from_str::<Value>(spec) {
                            gather(state, &spec, out)?;
                        }
                    }
                    _ => gather(state, value, out)?,
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                gather(state, item, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The entity an id belongs to; `None` when nothing has that id (the operation answers "not found"), an error
/// when the id is of a kind the server cannot place.
fn owner_of_id(state: &ServerState, id: &str) -> Result<Option<String>, GqlError> {
    let unplaceable = || GqlError(format!("{id:?} is not an id this server can check access to"));
    let decoded = match decode_kind(id) {
        Some(decoded) => decoded,
        None => return Err(unplaceable()),
    };
    let (kind, key) = decoded;
    let first = |key: &str| key.split('/').next().filter(|e| !e.is_empty()).map(str::to_owned);
    match kind.as_str() {
        "Artifact" => Ok(state.store.artifact_owner(id)?.map(|p| p.entity().to_owned())),
        "ArtifactManifest" => {
            let artifact = key.rsplit_once('#').map_or(key.as_str(), |(id, _)| id);
            Ok(state.store.artifact_owner(artifact)?.map(|p| p.entity().to_owned()))
        }
        "ArtifactCollection" | "ArtifactCollectionMembership" | "Project" | "Run" => Ok(first(&key)),
        "RunQueue" | "RunQueueItem" | "LaunchAgent" => match state.launch.lock().expect("launch lock").entity_of(id) {
            Some(Some(entity)) => Ok(Some(entity)),
            Some(None) => Err(unplaceable()),
            None => Ok(None),
        },
        _ => Err(unplaceable()),
    }
}

/// `(kind, key)` of a global id `base64("<Kind>:<key>")`.
fn decode_kind(id: &str) -> Option<(String, String)> {
    for kind in [
        "Artifact",
        "ArtifactManifest",
        "ArtifactCollectionMembership",
        "ArtifactCollection",
        "Project",
        "Run",
        "RunQueueItem",
        "RunQueue",
        "LaunchAgent",
    ] {
        if let Ok(key) = decode_global_id(id, kind) {
            return Some((kind.to_owned(), key));
        }
    }
    None
}
