//! Run logging over the W&B protocol: `file_stream`, `RunResumeStatus`, and config through `UpsertBucket`.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::WandbClient;
use crate::error::{Error, Result};
use crate::run::ResumePoint;
use crate::store::ProjectRef;

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
    /// Posts one `file_stream` request for run `run_id` (the body as wandb-core sends it), with retries.
    ///
    /// # Errors
    /// HTTP errors after retries.
    pub async fn file_stream(&self, project: &ProjectRef, run_id: &str, body: &Value) -> Result<()> {
        let url =
            format!("{}/files/{}/{}/{}/file_stream", self.base_url(), project.entity(), project.project(), run_id);
        let bytes = serde_json::to_vec(body).expect("file_stream bodies serialise");
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
    pub async fn run_resume_status(&self, project: &ProjectRef, run_id: &str) -> Result<Option<ResumePoint>> {
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
    pub async fn upsert_run_config(
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
}
