//! Runs over the W&B protocol: `file_stream`, `RunResumeStatus`, config through `UpsertBucket`, and reading runs
//! back (`Run`, `Runs`, `HistoryPage`) with the documents the real SDK sends.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::WandbClient;
use crate::backend::RunInfo;
use crate::error::{Error, Result};
use crate::run::ResumePoint;
use wandb_store::{ArtifactEdge, ProjectRef, RunState, StreamChunk};

const RUN_RESUME_STATUS: &str = "query RunResumeStatus ($project: String, $entity: String, $name: String!) {
	model(name: $project, entityName: $entity) {
		id name entity { id name }
		bucket(name: $name, missingOk: true) {
			id name summaryMetrics displayName logLineCount historyLineCount eventsLineCount
			historyTail eventsTail config tags notes wandbConfig(keys: [\"t\"])
		}
	}
}";

const UPSERT_RUN_CONFIG: &str =
    "mutation UpsertBucket($name: String, $project: String, $entity: String, $config: JSONString) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, config: $config}) {
    bucket { id name }
    inserted
  }
}";

impl WandbClient {
    /// Posts one `file_stream` request for run `run_id`, the body as wandb-core sends it, with retries.
    pub(crate) async fn file_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()> {
        let url =
            format!("{}/files/{}/{}/{}/file_stream", self.base_url(), project.entity(), project.project(), run_id);
        let bytes = serde_json::to_vec(&file_stream_body(chunk)).expect("file_stream bodies serialise");
        let timeout = Some(std::time::Duration::from_secs(180));
        self.transport
            .send(Method::POST, &url, timeout, |r| {
                Ok(r.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes.clone()))
            })
            .await?;
        Ok(())
    }

    /// Where run `run_id` stands (`RunResumeStatus`): `None` when the server has no such run — or, as in
    /// wandb-core, a run whose `wandbConfig` lacks the SDK's telemetry key `t` (a run nothing has logged to).
    ///
    /// # Errors
    /// [`Error::Protocol`] for a malformed answer (wandb-core's requirements: a summary object, an events tail,
    /// a config of `{"value": …}` entries); see [`WandbClient::graphql`].
    pub(crate) async fn run_resume_status(&self, project: &ProjectRef, run_id: &str) -> Result<Option<ResumePoint>> {
        let variables = json!({"project": project.project(), "entity": project.entity(), "name": run_id});
        let data = self.graphql("RunResumeStatus", RUN_RESUME_STATUS, variables).await?;
        let Some(bucket) = data.pointer("/model/bucket").filter(|b| !b.is_null()) else { return Ok(None) };
        let bad = |reason: &str| Error::Protocol { operation: "RunResumeStatus".to_owned(), reason: reason.to_owned() };
        let json_field = |name: &str| -> Option<Value> {
            bucket.get(name).and_then(Value::as_str).and_then(|s| serde_json::from_str(s).ok())
        };
        let exists = json_field("wandbConfig").is_some_and(|w| w.get("t").is_some());
        if !exists {
            return Ok(None);
        }
        let summary = match json_field("summaryMetrics") {
            Some(Value::Object(map)) => map,
            _ => return Err(bad("no summary metrics found in resume response")),
        };
        let mut config = Map::new();
        if let Some(Value::Object(entries)) = json_field("config") {
            for (key, entry) in entries {
                let value =
                    entry.get("value").cloned().ok_or_else(|| bad(&format!("config entry {key:?} has no value")))?;
                if key != "_wandb" {
                    config.insert(key, value);
                }
            }
        }
        let count = |name: &str| bucket.get(name).and_then(Value::as_u64).unwrap_or(0);
        let last_row_step = match json_field("historyTail") {
            Some(Value::Array(tail)) => tail
                .last()
                .and_then(Value::as_str)
                .and_then(|row| serde_json::from_str::<Value>(row).ok())
                .and_then(|row| row.get("_step").and_then(Value::as_u64)),
            _ => None,
        };
        let tags = bucket
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Some(ResumePoint::new(
            count("historyLineCount"),
            count("logLineCount"),
            count("eventsLineCount"),
            summary,
            last_row_step,
            config,
            tags,
        )))
    }

    /// Replaces the config of run `run_id` with `config` (plain values), sent as wandb-core sends it: each value
    /// under `{"value": …}`, with the SDK's `_wandb` entry (telemetry `t`, so the SDK sees the run as existing).
    ///
    /// # Errors
    /// See [`WandbClient::graphql`].
    pub(crate) async fn upsert_run_config(
        &self,
        project: &ProjectRef,
        run_id: &str,
        config: &Map<String, Value>,
    ) -> Result<()> {
        let mut wire = Map::new();
        for (key, value) in config {
            wire.insert(key.clone(), json!({"value": value}));
        }
        wire.insert(
            "_wandb".to_owned(),
            json!({"value": {"t": {}, "cli_version": format!("dagster-wandb-rs {}", env!("CARGO_PKG_VERSION"))}}),
        );
        let variables = json!({
            "name": run_id, "project": project.project(), "entity": project.entity(),
            "config": Value::Object(wire).to_string(),
        });
        self.graphql("UpsertBucket", UPSERT_RUN_CONFIG, variables).await?;
        Ok(())
    }

    /// Run `run_id` of `project` (`Run`, with the run's inputs and outputs).
    pub(crate) async fn fetch_run(&self, project: &ProjectRef, run_id: &str) -> Result<RunInfo> {
        let variables = json!({"project": project.project(), "entity": project.entity(), "name": run_id});
        let data = self.graphql("Run", &run_query(), variables).await?;
        match data.pointer("/project/run").filter(|r| !r.is_null()) {
            Some(run) => run_info(project, run),
            None => Err(Error::RunNotFound {
                entity: project.entity().to_owned(),
                project: project.project().to_owned(),
                run_id: run_id.to_owned(),
            }),
        }
    }

    /// The runs of `project`, oldest first (`Runs`, paged).
    pub(crate) async fn list_runs(&self, project: &ProjectRef) -> Result<Vec<RunInfo>> {
        let mut runs = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let variables = json!({
                "project": project.project(), "entity": project.entity(), "cursor": cursor, "perPage": 100,
                "order": "+created_at",
            });
            let data = self.graphql("Runs", &runs_query(), variables).await?;
            let Some(page) = data.pointer("/project/runs").filter(|p| !p.is_null()) else { break };
            for edge in page.get("edges").and_then(Value::as_array).into_iter().flatten() {
                if let Some(node) = edge.get("node") {
                    runs.push(run_info(project, node)?);
                }
            }
            match super::fetch::next_cursor(page, cursor.as_deref()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        // The server's order is the truth: creation times travel to the second, so re-sorting here would put runs
        // started within one second in id order.
        Ok(runs)
    }

    /// The history rows of run `run_id`, in step order, as `run.scan_history()` reads them: the last step from
    /// `historyKeys`, then `HistoryPage` over ranges of steps.
    pub(crate) async fn history(&self, project: &ProjectRef, run_id: &str) -> Result<Vec<Map<String, Value>>> {
        let not_found = || Error::RunNotFound {
            entity: project.entity().to_owned(),
            project: project.project().to_owned(),
            run_id: run_id.to_owned(),
        };
        let variables = json!({"project": project.project(), "entity": project.entity(), "name": run_id});
        let data = self.graphql("RunHistoryKeys", HISTORY_KEYS_QUERY, variables).await?;
        let run = data.pointer("/project/run").filter(|r| !r.is_null()).ok_or_else(not_found)?;
        let keys = match run.get("historyKeys") {
            Some(Value::String(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        let Some(last_step) = keys.get("lastStep").and_then(Value::as_i64).and_then(|s| u64::try_from(s).ok()) else {
            return Ok(Vec::new());
        };
        let bad = |reason: String| Error::Protocol { operation: "HistoryPage".to_owned(), reason };
        let mut rows = Vec::new();
        let mut min_step = 0u64;
        while min_step <= last_step {
            let max_step = min_step + HISTORY_PAGE;
            let variables = json!({
                "entity": project.entity(), "project": project.project(), "run": run_id,
                "minStep": min_step, "maxStep": max_step, "pageSize": HISTORY_PAGE,
            });
            let data = self.graphql("HistoryPage", HISTORY_PAGE_QUERY, variables).await?;
            let lines = data.pointer("/project/run/history").and_then(Value::as_array).cloned().unwrap_or_default();
            for line in lines {
                rows.push(match line {
                    Value::String(text) => serde_json::from_str::<Map<String, Value>>(&text)
                        .map_err(|e| bad(format!("a history row is not a JSON object: {e}")))?,
                    Value::Object(map) => map,
                    other => return Err(bad(format!("a history row is {other}"))),
                });
            }
            min_step = max_step;
        }
        rows.sort_by_key(|row| row.get("_step").and_then(Value::as_u64).unwrap_or(u64::MAX));
        Ok(rows)
    }
}

/// The SDK's `lastHistoryStep` query.
const HISTORY_KEYS_QUERY: &str = "query RunHistoryKeys($project: String!, $entity: String!, $name: String!) {
  project(name: $project, entityName: $entity) { run(name: $name) { historyKeys } }
}";

/// Steps asked for per `HistoryPage` (wandb-core's page size).
const HISTORY_PAGE: u64 = 1000;

/// wandb-core's `HistoryPage`.
const HISTORY_PAGE_QUERY: &str = "query HistoryPage ($entity: String!, $project: String!, $run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
	project(name: $project, entityName: $entity) {
		run(name: $run) {
			history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize)
		}
	}
}";

/// The Python SDK's `RunFragment`, plus the run's input and output artifacts.
const RUN_FIELDS: &str = "fragment RunFragment on Run {
    id tags name displayName sweepName state config group jobType commit readOnly createdAt heartbeatAt
    description notes systemMetrics summaryMetrics historyLineCount user { name username } historyKeys
    inputArtifacts(first: 10000) { edges { node { ...EdgeArtifact } } }
    outputArtifacts(first: 10000) { edges { node { ...EdgeArtifact } } }
}
fragment EdgeArtifact on Artifact { id versionIndex artifactType { name } artifactSequence { name project { name entity { name } } } }";

fn run_query() -> String {
    format!(
        "query Run($project: String!, $entity: String!, $name: String!) {{
  project(name: $project, entityName: $entity) {{ run(name: $name) {{ projectId ...RunFragment }} }}
}}
{RUN_FIELDS}"
    )
}

fn runs_query() -> String {
    format!(
        "query Runs($project: String!, $entity: String!, $cursor: String, $perPage: Int = 50, $order: String, $filters: JSONString) {{
  project(name: $project, entityName: $entity) {{
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {{
      edges {{ node {{ ...RunFragment }} cursor }}
      pageInfo {{ endCursor hasNextPage }}
    }}
  }}
}}
{RUN_FIELDS}"
    )
}

/// A `RunFragment` as a [`RunInfo`]; config values unwrapped from `{"value": …}`, the SDK's `_wandb` dropped.
fn run_info(project: &ProjectRef, run: &Value) -> Result<RunInfo> {
    let bad = |reason: &str| Error::Protocol { operation: "Run".to_owned(), reason: reason.to_owned() };
    let text = |key: &str| run.get(key).and_then(Value::as_str).map(str::to_owned);
    let object = |key: &str| -> Map<String, Value> {
        match run.get(key) {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        }
    };
    let mut config = Map::new();
    for (key, entry) in object("config") {
        if key == "_wandb" {
            continue;
        }
        let value = match entry {
            Value::Object(mut wrapped) if wrapped.contains_key("value") => wrapped.remove("value").unwrap_or_default(),
            other => other,
        };
        config.insert(key, value);
    }
    let edges = |key: &str| -> Vec<ArtifactEdge> {
        let nodes = run.pointer(&format!("/{key}/edges")).and_then(Value::as_array).cloned().unwrap_or_default();
        nodes
            .iter()
            .filter_map(|e| {
                let node = e.get("node")?;
                Some(ArtifactEdge {
                    id: node.get("id")?.as_str()?.to_owned(),
                    name: format!(
                        "{}:v{}",
                        node.pointer("/artifactSequence/name")?.as_str()?,
                        node.get("versionIndex")?.as_u64()?
                    ),
                    artifact_type: node.pointer("/artifactType/name")?.as_str()?.to_owned(),
                    // The version's own project, which a use across projects makes another than the run's.
                    entity: node
                        .pointer("/artifactSequence/project/entity/name")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    project: node.pointer("/artifactSequence/project/name").and_then(Value::as_str).map(str::to_owned),
                })
            })
            .collect()
    };
    let state = match run.get("state").and_then(Value::as_str).unwrap_or("running") {
        "finished" => RunState::Finished,
        "failed" => RunState::Failed,
        "crashed" => RunState::Crashed,
        "killed" => RunState::Killed,
        _ => RunState::Running,
    };
    Ok(RunInfo {
        entity: project.entity().to_owned(),
        project: project.project().to_owned(),
        id: text("name").ok_or_else(|| bad("the run has no name"))?,
        name: text("displayName"),
        job_type: text("jobType"),
        tags: run
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        created_at: text("createdAt").unwrap_or_default(),
        state,
        exit_code: None,
        config,
        summary: object("summaryMetrics"),
        history_rows: run.get("historyLineCount").and_then(Value::as_u64).unwrap_or(0),
        inputs: edges("inputArtifacts"),
        outputs: edges("outputArtifacts"),
    })
}

/// A `file_stream` body as wandb-core sends it: `files` by name with their offset and lines, then `complete`
/// and `exitcode` when the run ends.
fn file_stream_body(chunk: &StreamChunk) -> Value {
    let mut body = Map::new();
    if !chunk.files.is_empty() {
        let files: Map<String, Value> = chunk
            .files
            .iter()
            .map(|(name, (offset, lines))| (name.clone(), json!({"offset": offset, "content": lines})))
            .collect();
        body.insert("files".to_owned(), Value::Object(files));
    }
    if chunk.complete {
        body.insert("complete".to_owned(), true.into());
        body.insert("exitcode".to_owned(), chunk.exit_code.unwrap_or(0).into());
    }
    Value::Object(body)
}
