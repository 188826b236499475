//! `POST /graphql`: the operations the real client sends, dispatched by name.

use std::collections::HashMap;
use std::sync::Arc;

use artifact_core::{DigestAlgorithm, Manifest, b64_to_hex};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use axum::http::Method;

use super::auth::Caller;
use super::signing;
use super::views::{artifact_fragment, collection_fragment, global_id, graphql_time, membership_fragment};
use super::{FileSpec, MultipartUpload, PendingArtifact, ServerState, encode_path, faults, id_token};
use wandb_store::Error;
use wandb_store::{ProjectRef, Reservation, RunOptions, VersionDraft};

/// A GraphQL error the client sees in `errors` (status 200, as W&B answers resolver errors).
#[derive(Debug)]
pub(crate) struct GqlError(pub(crate) String);

impl<E: std::fmt::Display> From<E> for GqlError {
    fn from(e: E) -> Self {
        GqlError(e.to_string())
    }
}

pub(crate) type GqlResult = std::result::Result<Value, GqlError>;

pub(crate) async fn handle(
    State(state): State<Arc<ServerState>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")).into_response(),
    };
    let query = request.get("query").and_then(Value::as_str).unwrap_or("");
    let name = match request.get("operationName").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => operation_name(query).unwrap_or_default(),
    };
    let variables = request.get("variables").cloned().unwrap_or(Value::Null);
    if state.requests.enabled() {
        state.requests.push(super::RecordedRequest {
            method: "POST".to_owned(),
            path: "/graphql".to_owned(),
            operation: Some(name.clone()),
            variables: variables.clone(),
            range: None,
        });
    }
    if let Some(fault) = state.faults.take(&super::FaultTarget::GraphQl(Some(name.clone()))) {
        let body = serde_json::to_vec(&json!({"data": null})).expect("json");
        return faults::respond(&fault, body.into());
    }
    let state2 = state.clone();
    let query = query.to_owned();
    // Store operations block on file locks and disk; keep them off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        super::authz::authorize(&state2, &caller, &name, &variables)?;
        dispatch(&state2, &caller, &name, &query, &variables)
    })
    .await;
    match outcome {
        Ok(Ok(data)) => Json(json!({"data": data})).into_response(),
        Ok(Err(GqlError(message))) => Json(json!({"data": null, "errors": [{"message": message}]})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")).into_response(),
    }
}

/// The name in `query Name(...)` / `mutation Name {`, for clients that send an empty `operationName`.
fn operation_name(query: &str) -> Option<String> {
    let mut words = query.split(|c: char| c.is_whitespace() || c == '(' || c == '{').filter(|w| !w.is_empty());
    while let Some(word) = words.next() {
        if word == "query" || word == "mutation" {
            return words.next().map(str::to_owned);
        }
    }
    None
}

fn dispatch(state: &ServerState, caller: &Caller, name: &str, query: &str, v: &Value) -> GqlResult {
    if let Some(answer) = super::launch::dispatch(state, name, v) {
        return answer;
    }
    if let Some(answer) = super::runs::dispatch(state, caller, name, query, v) {
        return answer;
    }
    if let Some(answer) = super::registries::dispatch(state, name, v) {
        return answer;
    }
    if let Some(answer) = super::edit::dispatch(state, name, v) {
        return answer;
    }
    match name {
        "Viewer" | "GetDefaultEntity" => Ok(viewer(caller)),
        "ServerFeaturesQuery" | "ServerInfo" => Ok(json!({"serverInfo": {"features": [
            {"name": "ARTIFACT_DIGEST_ALGORITHM", "isEnabled": true},
            {"name": "USE_ARTIFACT_WITH_ENTITY_AND_PROJECT_INFORMATION", "isEnabled": true},
            {"name": "ARTIFACT_REGISTRY_SEARCH", "isEnabled": true},
            {"name": "INCLUDE_ARTIFACT_TYPES_IN_REGISTRY_CREATION", "isEnabled": true},
            {"name": "TOTAL_COUNT_IN_FILE_CONNECTION", "isEnabled": true},
        ]}})),
        "UpsertBucket" => upsert_bucket(state, v),
        "RunResumeStatus" => run_resume_status(state, v),
        "XXHashDigestsEnabled" => Ok(json!({"entity": {"xxhashDigestsEnabled": state.options.xxhash_digests_enabled}})),
        "FetchArtifactDigestAlgorithm" => fetch_digest_algorithm(state, v),
        "ArtifactType" => artifact_type(state, v),
        "CreateArtifact" => create_artifact(state, caller, input(v)),
        "CreateArtifactManifest" | "UpdateArtifactManifest" => create_manifest(state, v),
        "CreateArtifactFiles" => create_files(state, input(v)),
        "CompleteMultipartUploadArtifact" => complete_multipart(state, input(v)),
        "CommitArtifact" => commit_artifact(state, v),
        "ArtifactByID" => {
            let include_aliases = v.get("includeAliases").and_then(Value::as_bool).unwrap_or(true);
            match state.store.artifact_by_id(str_var(v, "id")?) {
                Ok(version) => Ok(json!({"artifact": artifact_fragment(&version, include_aliases)})),
                Err(Error::ArtifactIdNotFound { .. }) => Ok(json!({"artifact": null})),
                Err(e) => Err(e.into()),
            }
        }
        "ArtifactMembershipByName" => membership_by_name(state, v),
        "FetchArtifactManifest" | "ArtifactManifest" => {
            let id = v.get("id").or_else(|| v.get("artifactID")).or_else(|| v.get("artifact_id"));
            let id = id.and_then(Value::as_str).ok_or_else(|| GqlError("variable id is missing".into()))?;
            let version = state.store.artifact_by_id(id)?;
            let url = state.signed_url(
                &Method::GET,
                &format!("/storage/manifests/{}", id_token(&version.id)),
                signing::DOWNLOAD_TTL,
            );
            Ok(
                json!({"artifact": {"currentManifest": {"id": global_id("ArtifactManifest", id), "file": {"directUrl": url}}}}),
            )
        }
        "GetArtifactMembershipFileUrls" | "ArtifactMembershipFiles" => membership_file_urls(state, v),
        "ProjectArtifactType" => project_artifact_type(state, v),
        "ProjectArtifactTypes" => project_artifact_types(state, v),
        "ProjectArtifactCollections" => project_artifact_collections(state, v, None),
        "ArtifactTypeArtifactCollections" => project_artifact_collections(state, v, Some(str_var(v, "type")?)),
        "ProjectArtifacts" => project_artifacts(state, v),
        "UseArtifact" => use_artifact(state, input(v)),
        "LinkArtifact" => link_artifact(state, query, input(v)),
        "FetchOrgInfoFromEntity" | "FetchOrgEntityFromEntity" => {
            let entity = v.get("entity").or_else(|| v.get("entityName")).and_then(Value::as_str).unwrap_or("");
            // One organisation per entity, named after it: a registry of entity E lives under E.
            let org = json!({"name": entity, "orgEntity": {"name": entity}});
            Ok(json!({"entity": {"organization": org, "user": {"organizations": [org]}}}))
        }
        "CreateRunFiles" => create_run_files(state, v),
        "ClientIDMapping" => match state.store.artifact_for_client_id(str_var(v, "clientID")?)? {
            Some(id) => Ok(json!({"clientIDMapping": {"serverID": id}})),
            None => Ok(json!({"clientIDMapping": null})),
        },
        "" => Err(GqlError("the request names no operation".into())),
        other => Err(GqlError(format!(
            "operation {other:?} is not supported by this server (dagster-wandb's W&B-compatible server over an embedded store)"
        ))),
    }
}

fn input(v: &Value) -> &Value {
    v.get("input").unwrap_or(v)
}

pub(crate) fn str_var<'a>(v: &'a Value, key: &str) -> std::result::Result<&'a str, GqlError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| GqlError(format!("variable {key} is missing or not a string")))
}

pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The caller as W&B's `viewer` describes a user: their own entity, and their other entities as teams, so a client
/// picks the right default entity.
fn viewer(caller: &Caller) -> Value {
    let teams: Vec<Value> = caller.teams.iter().map(|t| json!({"node": {"name": t}})).collect();
    json!({"viewer": {
        "id": global_id("User", &caller.name), "entity": caller.home, "username": caller.name, "email": null,
        "flags": "{}", "teams": {"edges": teams}, "admin": !caller.is_restricted(), "photoUrl": null,
    }})
}

pub(crate) fn project_of(v: &Value, entity_key: &str, project_key: &str) -> std::result::Result<ProjectRef, GqlError> {
    Ok(ProjectRef::new(str_var(v, entity_key)?, str_var(v, project_key)?)?)
}

/// The run exists afterwards; a run the client names but never upserted is created (the server's leniency).
fn ensure_run(
    state: &ServerState,
    project: &ProjectRef,
    run_id: &str,
    job_type: Option<&str>,
) -> std::result::Result<bool, GqlError> {
    match state.store.run(project, run_id) {
        Ok(_) => Ok(false),
        Err(Error::RunNotFound { .. }) => {
            let options =
                RunOptions { id: Some(run_id.to_owned()), job_type: job_type.map(str::to_owned), ..Default::default() };
            let created = state.store.resume_run(project, options)?.1;
            // Its client is elsewhere: without heartbeats it reads as crashed, not running for ever.
            state.store.record_heartbeat(project, run_id)?;
            Ok(created)
        }
        Err(e) => Err(e.into()),
    }
}

fn upsert_bucket(state: &ServerState, v: &Value) -> GqlResult {
    let entity = opt_str(v, "entity").unwrap_or(&state.options.default_entity);
    let project = ProjectRef::new(entity, opt_str(v, "project").unwrap_or(artifact_core::DEFAULT_PROJECT))?;
    let run_id = str_var(v, "name")?;
    let tags: Vec<String> = match v.get("tags") {
        Some(Value::Array(tags)) => tags.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let options = RunOptions {
        id: Some(run_id.to_owned()),
        name: opt_str(v, "displayName").map(str::to_owned),
        job_type: opt_str(v, "jobType").map(str::to_owned),
        tags,
    };
    let (record, inserted) = state.store.resume_run(&project, options)?;
    // The client is elsewhere: it is alive while its requests (heartbeats at least) keep coming.
    state.store.record_heartbeat(&project, run_id)?;
    if let Some(config) = opt_str(v, "config") {
        // wandb-core sends the whole config each time, every value under `{"value": …}`; `_wandb` is its own.
        let entries: Map<String, Value> =
            serde_json::from_str(config).map_err(|e| GqlError(format!("config is not a JSON object: {e}")))?;
        let mut plain = Map::new();
        let mut wandb = None;
        for (key, entry) in entries {
            let value =
                entry.get("value").cloned().ok_or_else(|| GqlError(format!("config entry {key:?} has no value")))?;
            if key == "_wandb" {
                wandb = value.as_object().cloned();
            } else {
                plain.insert(key, value);
            }
        }
        state.store.update_run_config(&project, run_id, plain, wandb)?;
    }
    Ok(json!({"upsertBucket": {"bucket": {
        "id": global_id("Run", &format!("{project}/{run_id}")),
        "name": run_id, "displayName": record.name.as_deref().unwrap_or(run_id), "description": null,
        "config": "{}", "sweepName": null, "tags": record.tags,
        "project": {"id": global_id("Project", &project.to_string()), "name": project.project(),
                    "entity": {"id": global_id("Entity", project.entity()), "name": project.entity()}},
        "historyLineCount": state.store.run_status(&project, run_id)?.line_count(wandb_store::HISTORY_FILE),
    }, "inserted": inserted}}))
}

/// Where a run stands, for a resuming client. A run exists for wandb-core only when `wandbConfig` holds the
/// telemetry key `t`, which only a client that logged config to it has sent.
fn run_resume_status(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    let run_id = str_var(v, "name")?;
    let mut model = json!({"id": global_id("Project", &project.to_string()), "name": project.project(),
                           "entity": {"id": global_id("Entity", project.entity()), "name": project.entity()},
                           "bucket": null});
    let record = match state.store.run(&project, run_id) {
        Ok(record) => record,
        Err(Error::RunNotFound { .. }) => return Ok(json!({"model": model})),
        Err(e) => return Err(e.into()),
    };
    let status = state.store.run_status(&project, run_id)?;
    let summary = state.store.run_summary(&project, run_id)?;
    let history = state.store.run_stream_lines(&project, run_id, wandb_store::HISTORY_FILE)?;
    let tail: Vec<&String> = history.iter().rev().take(10).rev().collect();
    let mut config = Map::new();
    for (key, value) in &status.config {
        config.insert(key.clone(), json!({"value": value}));
    }
    if !status.wandb_config.is_empty() {
        config.insert("_wandb".to_owned(), json!({"value": status.wandb_config}));
    }
    let wandb_config = match status.wandb_config.get("t") {
        Some(t) => json!({"t": t}).to_string(),
        None => "{}".to_owned(),
    };
    model["bucket"] = json!({
        "id": global_id("Run", &format!("{project}/{run_id}")),
        "name": run_id,
        "displayName": record.name.as_deref().unwrap_or(run_id),
        "summaryMetrics": Value::Object(summary).to_string(),
        "logLineCount": status.line_count(wandb_store::OUTPUT_FILE),
        "historyLineCount": status.line_count(wandb_store::HISTORY_FILE),
        "eventsLineCount": status.line_count(wandb_store::EVENTS_FILE),
        "historyTail": serde_json::to_string(&tail).expect("strings serialise"),
        "eventsTail": "[]",
        "config": Value::Object(config).to_string(),
        "tags": record.tags,
        "notes": null,
        "wandbConfig": wandb_config,
    });
    Ok(json!({"model": model}))
}

fn artifact_type(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    let name = str_var(v, "name")?;
    let (collection, selector) = name.split_once(':').unwrap_or((name, "latest"));
    match state.store.artifact(&project, collection, selector) {
        Ok(version) => Ok(json!({"project": {"artifact": {"artifactType": {"name": version.artifact_type}}}})),
        Err(Error::ProjectNotFound { .. }) => Ok(json!({"project": null})),
        Err(Error::ArtifactNotFound { .. }) => Ok(json!({"project": {"artifact": null}})),
        Err(e) => Err(e.into()),
    }
}

fn fetch_digest_algorithm(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entityName", "projectName")?;
    let name = str_var(v, "artifactCollectionName")?;
    let wanted_type = str_var(v, "artifactTypeName")?;
    match state.store.artifact(&project, name, "latest") {
        Ok(version) if version.artifact_type == wanted_type && version.linked_from.is_none() => {
            Ok(json!({"project": {"artifactType": {"artifactCollection": {
                "__typename": "ArtifactSequence", "digestAlgorithm": version.digest_algorithm,
            }}}}))
        }
        Ok(_) | Err(Error::ArtifactNotFound { .. }) => Ok(json!({"project": {"artifactType": null}})),
        Err(Error::ProjectNotFound { .. }) => Ok(json!({"project": null})),
        Err(e) => Err(e.into()),
    }
}

fn digest_algorithm_of(name: Option<&str>) -> std::result::Result<DigestAlgorithm, GqlError> {
    match name {
        None | Some("MANIFEST_MD5") => Ok(DigestAlgorithm::Md5),
        Some("MANIFEST_XXH128") => Ok(DigestAlgorithm::Xxh128),
        Some(other) => Err(GqlError(format!("unknown digestAlgorithm {other:?}"))),
    }
}

fn create_artifact(state: &ServerState, caller: &Caller, input: &Value) -> GqlResult {
    state.forget_abandoned_uploads();
    let project = project_of(input, "entityName", "projectName")?;
    // wandb-core sends one name; the public API (`wandb job create`, `Api.create_artifact`) a list of them.
    let name = match input.get("artifactCollectionNames").and_then(Value::as_array) {
        Some(names) => match names.as_slice() {
            [Value::String(name)] => name.clone(),
            _ => return Err(GqlError(format!("artifactCollectionNames must name one collection, got {names:?}"))),
        },
        None => str_var(input, "artifactCollectionName")?.to_owned(),
    };
    let client_id = opt_str(input, "clientID");
    if let Some(answer) = client_id.map(|c| same_client_artifact(state, &project, &name, c)).transpose()?.flatten() {
        return Ok(answer);
    }
    let distributed_key = opt_str(input, "distributedID").map(|d| (project.to_string(), name.clone(), d.to_owned()));
    // Held until the pending artifact is registered, so that concurrent writers all get the same one.
    let mut distributed_guard = distributed_key.as_ref().map(|_| state.distributed.lock().expect("distributed lock"));
    if let (Some(key), Some(distributed)) = (&distributed_key, &distributed_guard) {
        if let Some(id) = distributed.committed.get(key) {
            return Err(GqlError(format!(
                "artifact {name:?} with distributedID {:?} was already finished (id {id}); parts upserted after finish_artifact would be lost, so they are refused",
                key.2
            )));
        }
        if let Some(id) = distributed.pending.get(key) {
            // Every writer of one distributed artifact gets the same pending artifact, and its aliases (the
            // finisher's among them) join the version's.
            if let Some(pending) = state.pending.lock().expect("pending lock").get_mut(id) {
                for alias in requested_aliases(input, &name) {
                    if !pending.draft.aliases.contains(&alias) {
                        pending.draft.aliases.push(alias);
                    }
                }
            }
            return Ok(
                json!({"createArtifact": {"artifact": {"id": id, "state": "PENDING", "artifactSequence": {"latestArtifact": null}}}}),
            );
        }
    }
    let metadata: Map<String, Value> = match opt_str(input, "metadata") {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| GqlError(format!("metadata is not a JSON object: {e}")))?
        }
        None => Map::new(),
    };
    let aliases = requested_aliases(input, &name);
    let tags = input
        .get("tags")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|t| t.get("tagName").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default();
    let run_id = opt_str(input, "runName");
    if let Some(run_id) = run_id {
        ensure_run(state, &project, run_id, None)?;
    }
    let draft = VersionDraft {
        name: name.clone(),
        artifact_type: str_var(input, "artifactTypeName")?.to_owned(),
        digest: str_var(input, "digest")?.to_owned(),
        digest_algorithm: digest_algorithm_of(opt_str(input, "digestAlgorithm"))?,
        description: opt_str(input, "description").map(str::to_owned),
        metadata,
        aliases,
        tags,
        run_id: run_id.map(str::to_owned),
    };
    let sequence = sequence_of(state, &project, &name)?;
    let reservation = match &distributed_key {
        // Each writer's digest covers its own part only: no dedup until the merged manifest exists.
        Some(_) => Reservation::Reserved { id: state.store.reserve_id(&project, &draft.name)? },
        None => state.store.reserve_version(&project, &draft)?,
    };
    let id = match &reservation {
        Reservation::Existing(version) => &version.id,
        Reservation::Reserved { id } => id,
    };
    if let Some(client_id) = client_id {
        state.store.record_client_id(client_id, id)?;
    }
    match reservation {
        Reservation::Existing(version) => Ok(json!({"createArtifact": {"artifact": {
            "id": version.id, "state": "COMMITTED", "artifactSequence": sequence,
        }}})),
        Reservation::Reserved { id } => {
            if let (Some(key), Some(distributed)) = (&distributed_key, distributed_guard.as_mut()) {
                distributed.pending.insert(key.clone(), id.clone());
            }
            let pending = PendingArtifact {
                owner: caller.name.clone(),
                project,
                draft,
                files: HashMap::new(),
                manifest: None,
                distributed: distributed_key,
                patches: Vec::new(),
                created: std::time::Instant::now(),
            };
            state.pending.lock().expect("pending lock").insert(id.clone(), pending);
            Ok(json!({"createArtifact": {"artifact": {
                "id": id, "state": "PENDING", "artifactSequence": sequence,
            }}}))
        }
    }
}

/// The answer to a `CreateArtifact` whose `clientID` already has an artifact: that artifact, pending or
/// committed, as the real server gives it (`wandb job create` creates the version through the public API, then
/// its run logs the same artifact with the same client id).
fn same_client_artifact(
    state: &ServerState,
    project: &ProjectRef,
    name: &str,
    client_id: &str,
) -> std::result::Result<Option<Value>, GqlError> {
    let Some(id) = state.store.artifact_for_client_id(client_id)? else { return Ok(None) };
    let state_name = if state.pending.lock().expect("pending lock").contains_key(&id) {
        "PENDING"
    } else {
        match state.store.artifact_by_id(&id) {
            Ok(_) => "COMMITTED",
            // Deleted since, or a reservation never committed nor pending (the server restarted): a new one.
            Err(Error::ArtifactIdNotFound { .. } | Error::ArtifactNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    let sequence = sequence_of(state, project, name)?;
    Ok(Some(json!({"createArtifact": {"artifact": {"id": id, "state": state_name, "artifactSequence": sequence}}})))
}

/// `artifactSequence { id latestArtifact { id versionIndex } }` of a `CreateArtifact` answer, the latest as it was
/// before this artifact (`None` for a new collection, which is how clients tell "created" from "updated").
fn sequence_of(state: &ServerState, project: &ProjectRef, name: &str) -> std::result::Result<Value, GqlError> {
    let latest = match state.store.artifact(project, name, "latest") {
        Ok(version) => json!({"id": version.id, "versionIndex": version.version_index}),
        Err(Error::ArtifactNotFound { .. } | Error::ProjectNotFound { .. }) => Value::Null,
        Err(e) => return Err(e.into()),
    };
    let id = crate::views::collection_id(project.entity(), project.project(), name);
    Ok(json!({"id": id, "latestArtifact": latest}))
}

/// The aliases a `CreateArtifact` input asks for collection `name`.
fn requested_aliases(input: &Value, name: &str) -> Vec<String> {
    input
        .get("aliases")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|a| a.get("artifactCollectionName").and_then(Value::as_str).is_none_or(|c| c == name))
                .filter_map(|a| a.get("alias").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn create_manifest(state: &ServerState, v: &Value) -> GqlResult {
    // UpdateArtifactManifest names the manifest, whose id we derive from the artifact's (`<id>` for the FULL
    // manifest, `<id>#<n>` for the n-th PATCH of a distributed artifact).
    let (id, slot) = match v.get("artifactID").and_then(Value::as_str) {
        Some(id) => (id.to_owned(), None),
        None => split_manifest_key(&manifest_artifact(str_var(v, "artifactManifestID")?)?),
    };
    let creating = v.get("artifactID").is_some();
    let mut pending = state.pending.lock().expect("pending lock");
    let artifact = pending
        .get_mut(&id)
        .ok_or_else(|| GqlError(format!("artifact {id} is not pending (unknown, or already committed)")))?;
    let slot = match opt_str(v, "manifestType") {
        Some("PATCH") if creating => {
            if artifact.distributed.is_none() {
                return Err(GqlError(format!(
                    "a PATCH manifest needs a distributed artifact; {id} has no distributedID"
                )));
            }
            artifact.patches.push(None);
            Some(artifact.patches.len() - 1)
        }
        Some(kind) if kind != "FULL" && kind != "PATCH" => {
            return Err(GqlError(format!("manifestType {kind} is not supported by this server (FULL or PATCH)")));
        }
        _ => slot,
    };
    let key = match slot {
        Some(n) => format!("{id}#{n}"),
        None => id.clone(),
    };
    let mut file = json!({"id": global_id("File", &format!("{key}/wandb_manifest.json"))});
    if v.get("includeUpload").and_then(Value::as_bool).unwrap_or(false) {
        let path = format!("/storage/manifests/{}", id_token(&key));
        file["uploadUrl"] = json!(state.signed_url(&Method::PUT, &path, signing::UPLOAD_TTL));
        file["uploadHeaders"] = json!(["Content-Type:application/json"]);
    }
    let field = if creating { "createArtifactManifest" } else { "updateArtifactManifest" };
    Ok(json!({field: {"artifactManifest": {"id": global_id("ArtifactManifest", &key), "file": file}}}))
}

/// `<id>#<n>` into the artifact id and the patch slot.
pub(crate) fn split_manifest_key(key: &str) -> (String, Option<usize>) {
    match key.rsplit_once('#') {
        Some((id, n)) if n.parse::<usize>().is_ok() => (id.to_owned(), n.parse().ok()),
        _ => (key.to_owned(), None),
    }
}

fn manifest_artifact(manifest_id: &str) -> std::result::Result<String, GqlError> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD.decode(manifest_id).ok();
    decoded
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|s| s.strip_prefix("ArtifactManifest:").map(str::to_owned))
        .ok_or_else(|| GqlError(format!("unknown artifactManifestID {manifest_id:?}")))
}

fn create_files(state: &ServerState, input: &Value) -> GqlResult {
    let files = input
        .get("artifactFiles")
        .and_then(Value::as_array)
        .ok_or_else(|| GqlError("variable input.artifactFiles is missing".into()))?;
    let batch_algorithm = digest_algorithm_of(opt_str(input, "digestAlgorithm"))?;
    let mut pending = state.pending.lock().expect("pending lock");
    let mut edges = Vec::with_capacity(files.len());
    for file in files {
        let id = str_var(file, "artifactID")?;
        let artifact = pending.get_mut(id).ok_or_else(|| GqlError(format!("artifact {id} is not pending")))?;
        let name = str_var(file, "name")?;
        artifact_core::LogicalPath::new(name).map_err(|e| GqlError(format!("file name {name:?}: {e}")))?;
        let md5 = file.get("md5").and_then(Value::as_str).unwrap_or("").to_owned();
        let (digest, algorithm) = match opt_str(file, "digest") {
            Some(digest) => (digest.to_owned(), batch_algorithm),
            None => (md5.clone(), DigestAlgorithm::Md5),
        };
        let parts = file.get("uploadPartsInput").and_then(Value::as_array).filter(|p| !p.is_empty());
        if digest.is_empty() {
            return Err(GqlError(format!("file {name:?} has neither md5 nor digest")));
        }
        let storage_path = format!("{}/{}", id_token(id), name);
        let spec = FileSpec { md5: md5.clone(), digest: digest.clone(), algorithm };
        // A body the store already has needs no upload: the null URL tells the client so.
        let present = state.store.object_path_if_present(&digest, algorithm)?;
        artifact.files.insert(name.to_owned(), spec);
        let mut node = json!({
            "storagePath": storage_path,
            "uploadUrl": null,
            "uploadHeaders": [],
            "uploadMultipartUrls": null,
            "artifact": {"id": id},
        });
        if !present {
            match parts {
                Some(parts) => {
                    let upload_id = format!("{}-{}", id_token(id), fastrand::u64(..));
                    let urls: Vec<Value> = parts
                        .iter()
                        .filter_map(|p| p.get("partNumber").and_then(Value::as_u64))
                        .map(|n| {
                            let path = format!("/storage/multipart/{upload_id}/{n}");
                            json!({"partNumber": n, "uploadUrl": state.signed_url(&Method::PUT, &path, signing::UPLOAD_TTL)})
                        })
                        .collect();
                    let dir = super::storage::multipart_dir(state, &upload_id)
                        .ok_or_else(|| GqlError(format!("invalid upload id {upload_id:?}")))?;
                    state.multipart.lock().expect("multipart lock").insert(
                        upload_id.clone(),
                        MultipartUpload { artifact_id: id.to_owned(), name: name.to_owned(), parts: urls.len(), dir },
                    );
                    node["uploadHeaders"] = json!(["Content-Type:application/octet-stream"]);
                    node["uploadMultipartUrls"] = json!({"uploadID": upload_id, "uploadUrlParts": urls});
                }
                None => {
                    node["uploadUrl"] = json!(state.signed_url(
                        &Method::PUT,
                        &format!("/storage/upload/{}/{}", id_token(id), encode_path(name)),
                        signing::UPLOAD_TTL,
                    ));
                    node["uploadHeaders"] = json!([format!("Content-MD5:{md5}")]);
                }
            }
        }
        edges.push(json!({"node": node}));
    }
    Ok(json!({"createArtifactFiles": {"files": {"edges": edges}}}))
}

fn complete_multipart(state: &ServerState, input: &Value) -> GqlResult {
    let upload_id = str_var(input, "uploadID")?.to_owned();
    let upload = state
        .multipart
        .lock()
        .expect("multipart lock")
        .remove(&upload_id)
        .ok_or_else(|| GqlError(format!("unknown multipart upload {upload_id:?}")))?;
    let spec = {
        let pending = state.pending.lock().expect("pending lock");
        let artifact = pending
            .get(&upload.artifact_id)
            .ok_or_else(|| GqlError(format!("artifact {} is not pending", upload.artifact_id)))?;
        artifact.files.get(&upload.name).cloned().ok_or_else(|| GqlError(format!("no file {:?}", upload.name)))?
    };
    let completed = input.get("completedParts").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut etags = Vec::new();
    for (i, part) in completed.iter().enumerate() {
        let number = part.get("partNumber").and_then(Value::as_u64).unwrap_or(0);
        if number != i as u64 + 1 {
            return Err(GqlError(format!("completedParts must be numbered 1..n in order; got {number} at {}", i + 1)));
        }
        etags.push(part.get("hexMD5").and_then(Value::as_str).unwrap_or("").trim_matches('"').to_owned());
    }
    if etags.len() != upload.parts {
        return Err(GqlError(format!("expected {} completed parts, got {}", upload.parts, etags.len())));
    }
    super::storage::assemble_multipart(state, &upload_id, &etags, &spec)?;
    Ok(json!({"completeMultipartUploadArtifact": {"digest": spec.digest}}))
}

fn commit_artifact(state: &ServerState, v: &Value) -> GqlResult {
    let id = str_var(input(v), "artifactID")?.to_owned();
    let pending = state
        .pending
        .lock()
        .expect("pending lock")
        .remove(&id)
        .ok_or_else(|| GqlError(format!("artifact {id} is not pending (unknown, or already committed)")))?;
    if pending.distributed.is_some() {
        return commit_distributed(state, id, pending);
    }
    let mut parsed_entries = 0;
    let result = (|| {
        let file =
            pending.manifest.as_ref().ok_or_else(|| GqlError(format!("artifact {id} has no manifest uploaded")))?;
        let manifest = read_manifest(file)?;
        parsed_entries = manifest.len();
        let digest = manifest.digest_with(pending.draft.digest_algorithm);
        if digest != pending.draft.digest {
            return Err(GqlError(format!(
                "the uploaded manifest hashes to artifact digest {digest}, not the {} CreateArtifact declared",
                pending.draft.digest
            )));
        }
        let logged = state.store.commit_version(&pending.project, &id, &pending.draft, manifest)?;
        Ok(json!({"commitArtifact": {"artifact": {"id": logged.version.id, "digest": logged.version.digest}}}))
    })();
    crate::memory::after_freeing(parsed_entries);
    result.inspect_err(|_| {
        // Still pending: the client may upload what was missing and commit again.
        state.pending.lock().expect("pending lock").insert(id, pending);
    })
}

/// An uploaded manifest, parsed (its errors named as the client's).
fn read_manifest(file: &super::TempFile) -> std::result::Result<Manifest, GqlError> {
    let bytes = std::fs::read(&file.0).map_err(|e| GqlError(format!("the uploaded manifest is gone: {e}")))?;
    Manifest::from_json(&bytes).map_err(|e| GqlError(format!("the uploaded manifest does not parse: {e}")))
}

/// Commits a distributed artifact: the union of every uploaded PATCH manifest (a later patch wins on the same
/// path), its digest computed here, since no writer knows the whole.
fn commit_distributed(state: &ServerState, id: String, mut pending: PendingArtifact) -> GqlResult {
    let result = (|| {
        let mut merged = Manifest::new();
        for (n, patch) in pending.patches.iter().enumerate() {
            let file =
                patch.as_ref().ok_or_else(|| GqlError(format!("artifact {id}: patch {n} was never uploaded")))?;
            for (path, entry) in read_manifest(file)?.entries() {
                merged.add_entry(artifact_core::LogicalPath::from_stored_key(path)?, entry.clone(), true)?;
            }
        }
        pending.draft.digest = merged.digest_with(pending.draft.digest_algorithm);
        Ok(state.store.commit_version(&pending.project, &id, &pending.draft, merged)?)
    })();
    match result {
        Ok(logged) => {
            let key = pending.distributed.clone().expect("a distributed artifact");
            let mut distributed = state.distributed.lock().expect("distributed lock");
            distributed.pending.remove(&key);
            distributed.committed.insert(key, id);
            Ok(json!({"commitArtifact": {"artifact": {"id": logged.version.id, "digest": logged.version.digest}}}))
        }
        Err(e) => {
            state.pending.lock().expect("pending lock").insert(id, pending);
            Err(e)
        }
    }
}

fn membership_by_name(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    let name = str_var(v, "name")?;
    let include_aliases = v.get("includeAliases").and_then(Value::as_bool).unwrap_or(false);
    let (collection, selector) = name.split_once(':').unwrap_or((name, "latest"));
    match state.store.artifact(&project, collection, selector) {
        Ok(view) => Ok(
            json!({"project": {"artifactCollectionMembership": membership_fragment(state, &view, include_aliases)?}}),
        ),
        Err(Error::ProjectNotFound { .. }) => Ok(json!({"project": null})),
        Err(Error::ArtifactNotFound { .. }) => Ok(json!({"project": {"artifactCollectionMembership": null}})),
        Err(e) => Err(e.into()),
    }
}

/// The items `[start, end)` of `len` that a connection's `cursor` (an offset) and `perPage` ask for.
pub(crate) fn page_of(v: &Value, len: usize) -> std::ops::Range<usize> {
    let per_page = v.get("perPage").and_then(Value::as_u64).unwrap_or(50).clamp(1, 10_000) as usize;
    let start = opt_str(v, "cursor").and_then(|c| c.parse().ok()).unwrap_or(0usize).min(len);
    start..(start + per_page).min(len)
}

/// The `pageInfo` of `page` out of `len` items.
pub(crate) fn page_info(page: &std::ops::Range<usize>, len: usize) -> Value {
    json!({
        "__typename": "PageInfo",
        "endCursor": if page.is_empty() { Value::Null } else { json!(page.end.to_string()) },
        "hasNextPage": page.end < len,
    })
}

/// One page of `nodes` as a GraphQL connection (`perPage`, `cursor`).
fn connection(nodes: Vec<Value>, v: &Value) -> Value {
    let total = nodes.len();
    let page = page_of(v, total);
    let info = page_info(&page, total);
    let edges: Vec<Value> = nodes.into_iter().skip(page.start).take(page.len()).collect();
    json!({"totalCount": total, "edges": edges, "pageInfo": info})
}

/// The collections of the `entity`/`project` variables; `None` for an unknown project.
fn collections_of(
    state: &ServerState,
    v: &Value,
) -> std::result::Result<Option<Vec<wandb_store::Collection>>, GqlError> {
    let project = project_of(v, "entity", "project")?;
    match state.store.collections(&project, None) {
        Ok(collections) => Ok(Some(collections)),
        Err(Error::ProjectNotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `ProjectArtifactTypes`: the types the project's collections have.
fn project_artifact_types(state: &ServerState, v: &Value) -> GqlResult {
    let Some(collections) = collections_of(state, v)? else { return Ok(json!({"project": null})) };
    let project = project_of(v, "entity", "project")?;
    let mut types: Vec<(&str, &str)> =
        collections.iter().map(|c| (c.artifact_type.as_str(), c.latest.created_at.as_str())).collect();
    types.sort_unstable();
    types.dedup_by(|a, b| a.0 == b.0);
    let nodes = types
        .into_iter()
        .map(|(name, created_at)| {
            json!({"node": {
                "__typename": "ArtifactType",
                "id": global_id("ArtifactType", &format!("{project}/{name}")),
                "name": name, "description": null, "createdAt": graphql_time(created_at),
            }})
        })
        .collect();
    Ok(json!({"project": {"artifactTypes": connection(nodes, v)}}))
}

/// `ProjectArtifactCollections`: the project's collections, by name; `ArtifactTypeArtifactCollections`: those
/// of one type.
fn project_artifact_collections(state: &ServerState, v: &Value, artifact_type: Option<&str>) -> GqlResult {
    let Some(collections) = collections_of(state, v)? else { return Ok(json!({"project": null})) };
    let nodes = collections
        .iter()
        .filter(|c| artifact_type.is_none_or(|t| t == c.artifact_type))
        .map(|c| json!({"node": collection_fragment(c)}))
        .collect();
    let page = connection(nodes, v);
    Ok(match artifact_type {
        None => json!({"project": {"artifactCollections": page}}),
        Some(name) => {
            json!({"project": {"artifactType": {"__typename": "ArtifactType", "name": name, "artifactCollections": page}}})
        }
    })
}

/// `ProjectArtifacts`: the versions of collection `collection` of type `type`, newest first unless `order`
/// asks for ascending order.
fn project_artifacts(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    let (artifact_type, name) = (str_var(v, "type")?, str_var(v, "collection")?);
    let include_aliases = v.get("includeAliases").and_then(Value::as_bool).unwrap_or(true);
    let mut versions = match state.store.versions(&project, name) {
        Ok(versions) => versions,
        Err(Error::ProjectNotFound { .. }) => return Ok(json!({"project": null})),
        Err(Error::ArtifactNotFound { .. }) => {
            return Ok(json!({"project": {"artifactType": {"artifactCollection": null}}}));
        }
        Err(e) => return Err(e.into()),
    };
    if versions.first().is_some_and(|first| first.artifact_type != artifact_type) {
        return Ok(json!({"project": {"artifactType": {"artifactCollection": null}}}));
    }
    if opt_str(v, "order").is_none_or(|order| order.starts_with('-')) {
        versions.reverse();
    }
    let nodes = versions
        .iter()
        .map(|version| json!({"version": version.version(), "node": artifact_fragment(version, include_aliases)}))
        .collect();
    Ok(json!({"project": {"artifactType": {"artifactCollection": {
        "__typename": "ArtifactSequence", "artifacts": connection(nodes, v),
    }}}}))
}

fn membership_file_urls(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    let view = state.store.artifact(&project, str_var(v, "collection")?, str_var(v, "alias")?)?;
    let manifest = state.manifest(&view)?;
    // References are listed too: the SDK downloads exactly the entries this connection names, so leaving them
    // out made a Python download skip every reference without a word. Their URL is the reference itself (the
    // SDK fetches it through its storage handler and never uses this one).
    let per_page = v.get("perPage").and_then(Value::as_u64).unwrap_or(50).clamp(1, 10_000) as usize;
    let cursor = opt_str(v, "cursor");
    // A page costs O(log n + page): named files are looked up, the rest read after the cursor (the last path of
    // the page before), never counted from the start.
    let (page, total, more): (Vec<(&str, &artifact_core::ManifestEntry)>, usize, bool) =
        match v.get("fileNames").and_then(Value::as_array) {
            Some(names) => {
                let mut names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                names.sort_unstable();
                names.dedup();
                let found: Vec<_> = names.iter().filter_map(|n| manifest.get(n).map(|e| (*n, e))).collect();
                let total = found.len();
                let rest: Vec<_> = found.into_iter().filter(|(n, _)| cursor.is_none_or(|c| *n > c)).collect();
                let more = rest.len() > per_page;
                (rest.into_iter().take(per_page).collect(), total, more)
            }
            None => {
                let mut page: Vec<_> = manifest.entries_after(cursor).take(per_page + 1).collect();
                let more = page.len() > per_page;
                page.truncate(per_page);
                (page, manifest.len(), more)
            }
        };
    let updated = graphql_time(&view.created_at);
    let edges: Vec<Value> = page
        .iter()
        .map(|(name, entry)| {
            let url = entry.reference.clone().unwrap_or_else(|| object_url(state, entry));
            json!({"node": {
                "__typename": "File", "id": global_id("File", &format!("{}/{name}", view.id)), "name": name,
                "url": url, "directUrl": url, "sizeBytes": entry.size.unwrap_or(0), "storagePath": null,
                "mimetype": null, "updatedAt": updated, "digest": entry.digest,
                "md5": if entry.digest_algorithm() == DigestAlgorithm::Md5 { json!(entry.digest) } else { Value::Null },
            }})
        })
        .collect();
    let end = page.last().map(|(name, _)| json!(name)).unwrap_or(Value::Null);
    Ok(json!({"project": {"artifactCollection": {"__typename": "ArtifactSequence", "artifactMembership": {"files": {
        "totalCount": total,
        "pageInfo": {"__typename": "PageInfo", "endCursor": end, "hasNextPage": more},
        "edges": edges,
    }}}}}))
}

/// `ProjectArtifactType`: a type of the project, when some collection has it.
fn project_artifact_type(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    if !state.store.project_exists(&project) {
        return Ok(json!({"project": null}));
    }
    let wanted = str_var(v, "type")?;
    let collections = state.store.collections(&project, Some(wanted))?;
    let first = collections.iter().map(|c| c.latest.created_at.as_str()).min();
    Ok(json!({"project": {"artifactType": first.map(|created| json!({
        "__typename": "ArtifactType",
        "id": global_id("ArtifactType", &format!("{project}/{wanted}")),
        "name": wanted,
        "description": null,
        "createdAt": graphql_time(created),
    }))}}))
}

/// The download URL of an entry's body.
pub(crate) fn object_url(state: &ServerState, entry: &artifact_core::ManifestEntry) -> String {
    let algorithm = entry.digest_algorithm();
    let hex = b64_to_hex(&entry.digest).unwrap_or_default();
    state.signed_url(
        &Method::GET,
        &format!("/storage/objects/{}/{hex}", algorithm.cache_dir_name()),
        signing::DOWNLOAD_TTL,
    )
}

fn use_artifact(state: &ServerState, input: &Value) -> GqlResult {
    let project = project_of(input, "entityName", "projectName")?;
    let run_id = str_var(input, "runName")?;
    let version = state.store.artifact_by_id(str_var(input, "artifactID")?)?;
    ensure_run(state, &project, run_id, None)?;
    state.store.record_use(&project, run_id, &version)?;
    Ok(json!({"useArtifact": {"artifact": {
        "id": version.id, "digest": version.digest, "description": version.description, "state": "COMMITTED",
        "createdAt": graphql_time(&version.created_at),
        "metadata": serde_json::to_string(&version.metadata).expect("metadata serialises"),
    }}}))
}

fn link_artifact(state: &ServerState, query: &str, input: &Value) -> GqlResult {
    let project = project_of(input, "entityName", "projectName")?;
    let portfolio = str_var(input, "artifactPortfolioName")?;
    let id = input
        .get("artifactID")
        .or_else(|| input.get("artifactId"))
        .and_then(Value::as_str)
        .ok_or_else(|| GqlError("variable artifactID is missing".into()))?;
    let version = state.store.artifact_by_id(id)?;
    let aliases: Vec<String> = input
        .get("aliases")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|a| a.get("alias").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default();
    let linked = state.store.link_version(&version, &project, portfolio, &aliases)?;
    let membership = membership_fragment(state, &linked, true)?;
    let result = json!({"versionIndex": linked.version_index, "artifactMembership": membership});
    // The Python document aliases the field `result`; wandb-core's reads `linkArtifact`.
    let key = if query.contains("result:") { "result" } else { "linkArtifact" };
    Ok(json!({key: result}))
}

fn create_run_files(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    let run = str_var(v, "run")?;
    let names: Vec<&str> = v
        .get("files")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let files: Vec<Value> = names
        .iter()
        .map(|name| {
            let path = format!(
                "/storage/runfiles/{}/{}/{}/{}",
                encode_path(project.entity()),
                encode_path(project.project()),
                encode_path(run),
                encode_path(name)
            );
            json!({"name": name, "uploadUrl": state.signed_url(&Method::PUT, &path, signing::UPLOAD_TTL)})
        })
        .collect();
    Ok(
        json!({"createRunFiles": {"runID": global_id("Run", &format!("{project}/{run}")), "uploadHeaders": [], "files": files}}),
    )
}

#[cfg(test)]
mod tests {
    use super::operation_name;

    #[test]
    fn operation_names_from_query_text() {
        assert_eq!(operation_name("\nquery Viewer {\n\tviewer { id } }").as_deref(), Some("Viewer"));
        assert_eq!(operation_name("mutation CreateArtifact($input: X!) {").as_deref(), Some("CreateArtifact"));
        assert_eq!(operation_name("{ viewer { id } }"), None);
    }
}
