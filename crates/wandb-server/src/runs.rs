//! Reading runs back, as `wandb.Api()` and wandb-core ask: `Run`, `Runs`, the history queries
//! (`RunHistoryKeys`, `HistoryPage`, `RunFullHistory`, `RunSampledHistory`, `SampledHistoryPage`,
//! `RunParquetHistory`), a run's artifacts (`RunInputArtifacts`, `RunOutputArtifacts`) and the lineage of a
//! version (`ArtifactCreatedBy`, `ArtifactUsedBy`).
//!
//! The documents alias fields (`artifacts: inputArtifacts`), and the server answers without parsing them, so each
//! answer carries a field under both its name and the alias the real client uses.

use serde_json::{Map, Value, json};

use super::ServerState;
use super::auth::Caller;
use super::graphql::{GqlError, GqlResult, page_info, page_of, project_of, str_var};
use super::views::{artifact_fragment, global_id, graphql_time, project_info};
use wandb_store::Error;
use wandb_store::{ArtifactEdge, ProjectRef, RunRecord, RunState};

/// Answers the run-reading operations; `None` for any other.
pub(crate) fn dispatch(state: &ServerState, caller: &Caller, name: &str, query: &str, v: &Value) -> Option<GqlResult> {
    Some(match name {
        "Run" => one_run(state, v),
        "Runs" => runs(state, v),
        "RunHistoryKeys" => history_keys(state, v),
        "HistoryPage" => history_page(state, v),
        "RunFullHistory" => full_history(state, query, v),
        "RunSampledHistory" | "SampledHistoryPage" => sampled_history(state, v),
        "RunParquetHistory" => parquet_history(state, v),
        "RunInputArtifacts" => run_artifacts(state, v, Edges::Inputs),
        "RunOutputArtifacts" => run_artifacts(state, v, Edges::Outputs),
        "ArtifactCreatedBy" => created_by(state, v),
        "ArtifactUsedBy" => used_by(state, caller, v),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Edges {
    Inputs,
    Outputs,
}

/// `project(name, entityName) { run(name) { … } }`, with the run variable named as the document names it.
fn project_and_run(v: &Value) -> std::result::Result<(ProjectRef, &str), GqlError> {
    let project = project_of(v, "entity", "project")?;
    let run = ["name", "run", "runName"]
        .iter()
        .find_map(|key| v.get(*key).and_then(Value::as_str))
        .ok_or_else(|| GqlError("variable name (the run) is missing or not a string".into()))?;
    Ok((project, run))
}

/// The run, or `None` when it (or its project) does not exist: the answer is then `run: null`.
fn find_run(
    state: &ServerState,
    project: &ProjectRef,
    run_id: &str,
) -> std::result::Result<Option<RunRecord>, GqlError> {
    match state.store.run(project, run_id) {
        Ok(record) => Ok(Some(record)),
        Err(Error::RunNotFound { .. } | Error::InvalidRunId { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The history rows of a run, parsed, in step order.
fn rows(
    state: &ServerState,
    project: &ProjectRef,
    run_id: &str,
) -> std::result::Result<Vec<Map<String, Value>>, GqlError> {
    Ok(state.store.run_history(project, run_id)?)
}

fn step_of(row: &Map<String, Value>) -> Option<u64> {
    row.get("_step").and_then(Value::as_u64)
}

/// `historyKeys`: the last step and, per key, the types logged and how often.
fn history_keys_value(rows: &[Map<String, Value>]) -> Value {
    let mut keys: Map<String, Value> = Map::new();
    for row in rows {
        for (key, value) in row {
            let kind = match value {
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Null => "nil",
                Value::Array(_) => "list",
                Value::Object(_) => "map",
            };
            let counts = keys.entry(key.clone()).or_insert_with(|| json!({"typeCounts": []}));
            let list = counts["typeCounts"].as_array_mut().expect("built as an array");
            match list.iter_mut().find(|c| c["type"] == kind) {
                Some(count) => count["count"] = json!(count["count"].as_u64().unwrap_or(0) + 1),
                None => list.push(json!({"type": kind, "count": 1})),
            }
        }
    }
    let last = rows.iter().filter_map(step_of).max().map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
    json!({"lastStep": last, "keys": keys})
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Finished => "finished",
        RunState::Failed => "failed",
        RunState::Crashed => "crashed",
        RunState::Killed => "killed",
        _ => "running",
    }
}

/// An edge list as a connection of `ArtifactFragment`s, paged by the request's `cursor` and `perPage`.
fn artifact_connection(state: &ServerState, edges: &[ArtifactEdge], v: &Value) -> GqlResult {
    let page = page_of(v, edges.len());
    let include_aliases = v.get("includeAliases").and_then(Value::as_bool).unwrap_or(true);
    let mut nodes = Vec::with_capacity(page.len());
    for edge in &edges[page.clone()] {
        match state.store.artifact_by_id(&edge.id) {
            Ok(version) => nodes.push(json!({"node": artifact_fragment(&version, include_aliases)})),
            // A version that was never committed, or a damaged index entry: the edge is left out.
            Err(Error::ArtifactIdNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({"totalCount": edges.len(), "pageInfo": page_info(&page, edges.len()), "edges": nodes}))
}

/// `RunFragment` (and the lightweight one, a subset) of `record`, with its inputs and outputs.
fn run_fragment(state: &ServerState, project: &ProjectRef, record: &RunRecord) -> GqlResult {
    let status = state.store.run_status(project, &record.id)?;
    let summary = state.store.run_summary(project, &record.id)?;
    let history = rows(state, project, &record.id)?;
    let mut config = Map::new();
    for (key, value) in &status.config {
        config.insert(key.clone(), json!({"value": value}));
    }
    if !status.wandb_config.is_empty() {
        config.insert("_wandb".to_owned(), json!({"value": status.wandb_config}));
    }
    // Every edge of the run (the connection arguments of the document are not parsed).
    let all = json!({"perPage": 10_000});
    let inputs = artifact_connection(state, &record.inputs, &all)?;
    let outputs = artifact_connection(state, &record.outputs, &all)?;
    let created = graphql_time(&record.created_at);
    Ok(json!({
        "__typename": "Run",
        "id": global_id("Run", &format!("{project}/{}", record.id)),
        "projectId": super::views::project_number(project).to_string(),
        "name": record.id,
        "displayName": record.name.as_deref().unwrap_or(&record.id),
        "tags": record.tags,
        "sweepName": null,
        "state": state_name(status.state),
        "config": Value::Object(config).to_string(),
        "group": null,
        "jobType": record.job_type,
        "commit": null,
        "readOnly": false,
        "createdAt": created,
        "heartbeatAt": created,
        "description": null,
        "notes": null,
        "systemMetrics": "{}",
        "summaryMetrics": Value::Object(summary).to_string(),
        "historyLineCount": status.line_count(wandb_store::HISTORY_FILE),
        "historyKeys": history_keys_value(&history),
        "user": {"name": project.entity(), "username": project.entity()},
        "project": project_info(project.entity(), project.project()),
        "inputArtifacts": inputs,
        "outputArtifacts": outputs,
        "exitcode": status.exit_code,
    }))
}

fn one_run(state: &ServerState, v: &Value) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    if !state.store.project_exists(&project) {
        return Ok(json!({"project": null}));
    }
    let run = match find_run(state, &project, run_id)? {
        Some(record) => run_fragment(state, &project, &record)?,
        None => Value::Null,
    };
    Ok(json!({"project": {"run": run}}))
}

fn runs(state: &ServerState, v: &Value) -> GqlResult {
    let project = project_of(v, "entity", "project")?;
    if !state.store.project_exists(&project) {
        return Ok(json!({"project": null}));
    }
    let mut records = state.store.runs(&project)?;
    // Oldest first is the store's order; `-created_at` (the SDK's default) asks for newest first.
    if v.get("order").and_then(Value::as_str).is_none_or(|o| o.starts_with('-')) {
        records.reverse();
    }
    let page = page_of(v, records.len());
    let mut edges = Vec::with_capacity(page.len());
    for (offset, record) in records[page.clone()].iter().enumerate() {
        let node = run_fragment(state, &project, record)?;
        edges.push(json!({"node": node, "cursor": (page.start + offset + 1).to_string()}));
    }
    Ok(json!({"project": {"runs": {
        "totalCount": records.len(), "edges": edges, "pageInfo": page_info(&page, records.len()),
    }}}))
}

fn history_keys(state: &ServerState, v: &Value) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    let Some(record) = find_run(state, &project, run_id)? else { return Ok(json!({"project": {"run": null}})) };
    let history = rows(state, &project, &record.id)?;
    Ok(json!({"project": {"run": {"historyKeys": history_keys_value(&history)}}}))
}

/// `history(minStep, maxStep, samples)`: rows with `minStep <= _step < maxStep`, at most `samples`, as JSON text.
fn history_page(state: &ServerState, v: &Value) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    let Some(record) = find_run(state, &project, run_id)? else { return Ok(json!({"project": {"run": null}})) };
    let min = v.get("minStep").and_then(Value::as_u64).unwrap_or(0);
    let max = v.get("maxStep").and_then(Value::as_u64).unwrap_or(u64::MAX);
    let limit = v.get("pageSize").and_then(Value::as_u64).map_or(usize::MAX, |n| n as usize);
    let lines: Vec<String> = rows(state, &project, &record.id)?
        .into_iter()
        .filter(|row| step_of(row).is_some_and(|s| s >= min && s < max))
        .take(limit)
        .map(|row| Value::Object(row).to_string())
        .collect();
    Ok(json!({"project": {"run": {"history": lines}}}))
}

/// `history(samples)` (or `events(samples)` for the system stream): every row as JSON text, up to `samples`.
fn full_history(state: &ServerState, query: &str, v: &Value) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    let Some(record) = find_run(state, &project, run_id)? else { return Ok(json!({"project": {"run": null}})) };
    let limit = v.get("samples").and_then(Value::as_u64).map_or(usize::MAX, |n| n as usize);
    let (field, file) = if query.contains("events(") {
        ("events", wandb_store::EVENTS_FILE)
    } else {
        ("history", wandb_store::HISTORY_FILE)
    };
    let lines: Vec<String> = if file == wandb_store::HISTORY_FILE {
        rows(state, &project, &record.id)?.into_iter().take(limit).map(|row| Value::Object(row).to_string()).collect()
    } else {
        state.store.run_stream_lines(&project, &record.id, file)?.into_iter().take(limit).collect()
    };
    Ok(json!({"project": {"run": {field: lines}}}))
}

/// `sampledHistory(specs)`: per spec (`{"keys": […], "samples": n}`), the rows that have all its keys, restricted to
/// them; every row is returned (no sampling below the count asked for).
fn sampled_history(state: &ServerState, v: &Value) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    let Some(record) = find_run(state, &project, run_id)? else { return Ok(json!({"project": {"run": null}})) };
    let specs: Vec<Value> = match (v.get("specs"), v.get("spec")) {
        (Some(Value::Array(specs)), _) => specs.clone(),
        (_, Some(spec)) => vec![spec.clone()],
        _ => return Err(GqlError("variable specs is missing".into())),
    };
    let history = rows(state, &project, &record.id)?;
    let mut answers = Vec::with_capacity(specs.len());
    for spec in specs {
        let spec: Value = match spec {
            Value::String(text) => {
                serde_json::from_str(&text).map_err(|e| GqlError(format!("a spec is not JSON: {e}")))?
            }
            other => other,
        };
        let keys: Vec<&str> =
            spec.get("keys").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let limit = spec.get("samples").and_then(Value::as_u64).map_or(usize::MAX, |n| n as usize);
        let picked: Vec<Value> = history
            .iter()
            .filter(|row| keys.iter().all(|k| row.contains_key(*k)))
            .take(limit)
            .map(|row| Value::Object(keys.iter().map(|k| ((*k).to_owned(), row[*k].clone())).collect()))
            .collect();
        answers.push(Value::Array(picked));
    }
    Ok(json!({"project": {"run": {"sampledHistory": answers}}}))
}

/// `parquetHistory`: no exported parquet files, every row live (the SDK then reads `liveData`).
fn parquet_history(state: &ServerState, v: &Value) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    let Some(record) = find_run(state, &project, run_id)? else { return Ok(json!({"project": {"run": null}})) };
    let live: Vec<Value> = rows(state, &project, &record.id)?.into_iter().map(Value::Object).collect();
    Ok(json!({"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": live}}}}))
}

fn run_artifacts(state: &ServerState, v: &Value, which: Edges) -> GqlResult {
    let (project, run_id) = project_and_run(v)?;
    let Some(record) = find_run(state, &project, run_id)? else { return Ok(json!({"project": {"run": null}})) };
    let (field, edges) = match which {
        Edges::Inputs => ("inputArtifacts", &record.inputs),
        Edges::Outputs => ("outputArtifacts", &record.outputs),
    };
    let connection = artifact_connection(state, edges, v)?;
    // The SDK's documents alias the connection `artifacts`.
    Ok(json!({"project": {"run": {"artifacts": connection.clone(), field: connection}}}))
}

/// `RunInfoFragment` of run `run_id` of `project`.
fn run_info(project: &ProjectRef, run_id: &str) -> Value {
    json!({
        "__typename": "Run",
        "id": global_id("Run", &format!("{project}/{run_id}")),
        "name": run_id,
        "project": project_info(project.entity(), project.project()),
    })
}

fn created_by(state: &ServerState, v: &Value) -> GqlResult {
    let id = str_var(v, "id")?;
    let version = match state.store.artifact_by_id(id) {
        Ok(version) => version,
        Err(Error::ArtifactIdNotFound { .. }) => return Ok(json!({"artifact": null})),
        Err(e) => return Err(e.into()),
    };
    let project = ProjectRef::new(&version.entity, &version.project)?;
    let creator = match &version.created_by {
        Some(run_id) => run_info(&project, run_id),
        None => Value::Null,
    };
    Ok(json!({"artifact": {"createdBy": creator}}))
}

fn used_by(state: &ServerState, caller: &Caller, v: &Value) -> GqlResult {
    let id = str_var(v, "id")?;
    let version = match state.store.artifact_by_id(id) {
        Ok(version) => version,
        Err(Error::ArtifactIdNotFound { .. }) => return Ok(json!({"artifact": null})),
        Err(e) => return Err(e.into()),
    };
    let lineage = state.store.lineage(&version)?;
    let project = ProjectRef::new(&version.entity, &version.project)?;
    // Runs of other projects too, each with its own project (W&B's `usedBy` spans projects), but only of entities
    // the caller may use: the version's entity was checked, theirs were not.
    let elsewhere = lineage.used_elsewhere.iter().filter(|(elsewhere, _)| caller.may_use(elsewhere.entity()));
    let edges: Vec<Value> = lineage
        .used_by
        .iter()
        .map(|run| json!({"node": run_info(&project, &run.id)}))
        .chain(elsewhere.map(|(elsewhere, run)| json!({"node": run_info(elsewhere, &run.id)})))
        .collect();
    Ok(json!({"artifact": {"usedBy": {"edges": edges}}}))
}
