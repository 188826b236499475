//! A Rust step of a Dagster run: the Pipes session, and the IO manager configured from the Pipes extras.
//!
//! The Python side launches the binary with `PipesSubprocessClient` and passes the configuration dagster-wandb
//! would take from its resources and from the definitions' metadata as `extras`:
//!
//! ```json
//! {
//!   "wandb_resource": {"host": "https://api.wandb.ai", "api_key": {"env": "WANDB_API_KEY"}},
//!   "wandb_config": {"entity": "my-team", "project": "my-project"},
//!   "wandb_artifacts_io_manager": {"cache_duration_in_minutes": 60},
//!   "outputs": {"my_asset": {"wandb_artifact_configuration": {"type": "dataset", "aliases": ["best"]}}},
//!   "inputs": {"raw": {"asset_key": "raw_data", "partition_keys": ["2024-01-01"],
//!                      "wandb_artifact_configuration": {"partitions": {"*": {"alias": "latest"}}}}}
//! }
//! ```
//!
//! - `wandb_config` is required; `wandb_resource` and `wandb_artifacts_io_manager` are optional. Without a
//!   `host`, the step uses `WANDB_BASE_URL` if set (`file:///dir` selects an embedded store), else W&B cloud.
//! - `outputs` is keyed by the escaped asset key (`a/b`), or by the output name for an op.
//! - `inputs` is keyed by whatever name the step asks for: `asset_key` (escaped string or list of parts) for an
//!   asset input, `partition_keys` for the upstream partitions to load (all of them, for a reader of every
//!   partition), and the input's `wandb_artifact_configuration`.
//!
//! A step written in Rust alone can build [`crate::io_manager::IoManagerSettings`] itself instead.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::{IoManagerConfig, WandbConfig, WandbResource};
use crate::error::{Error, Result};
use crate::io_manager::{
    InputContext, IoManagerSettings, Loaded, Materialization, Output, OutputContext, WandbArtifactsIoManager,
};
use crate::pipes::{PipesContext, PipesException, PipesSession, parse_asset_key};

/// The extra holding `wandb_resource`'s config.
pub const EXTRA_WANDB_RESOURCE: &str = "wandb_resource";
/// The extra holding `wandb_config` (entity and project).
pub const EXTRA_WANDB_CONFIG: &str = "wandb_config";
/// The extra holding the IO manager's config.
pub const EXTRA_IO_MANAGER: &str = "wandb_artifacts_io_manager";
/// The extra holding each output's settings.
pub const EXTRA_OUTPUTS: &str = "outputs";
/// The extra holding each input's settings.
pub const EXTRA_INPUTS: &str = "inputs";

/// A step launched by Dagster: write outputs as artifacts (reported to Dagster as materializations with the
/// W&B metadata) and load inputs from artifacts.
#[derive(Debug)]
pub struct DagsterStep {
    session: Arc<PipesSession>,
    io: WandbArtifactsIoManager,
}

impl DagsterStep {
    /// The step of `session`, configured from its extras.
    ///
    /// # Errors
    /// [`Error::MissingExtra`] without `wandb_config`; configuration and backend errors.
    pub fn new(session: Arc<PipesSession>) -> Result<Self> {
        let context = session.context();
        let resource = match context.extras.get(EXTRA_WANDB_RESOURCE) {
            Some(value) => {
                let mut resource = WandbResource::from_json(value)?;
                if value.get("host").is_none() {
                    resource.host = default_host()?;
                }
                resource
            }
            None => WandbResource { host: default_host()?, ..Default::default() },
        };
        let wandb_config = WandbConfig::from_json(context.extra(EXTRA_WANDB_CONFIG)?)?;
        let config = match context.extras.get(EXTRA_IO_MANAGER) {
            Some(value) => IoManagerConfig::from_json(value)?,
            None => IoManagerConfig::default(),
        };
        let settings = IoManagerSettings { resource, wandb_config, config, dagster_run_id: context.run_id.clone() };
        let io = WandbArtifactsIoManager::new(settings)?.with_pipes(Arc::clone(&session));
        Ok(DagsterStep { session, io })
    }

    /// The Pipes session (for logs, checks and custom messages).
    pub fn session(&self) -> &Arc<PipesSession> {
        &self.session
    }

    /// The context Dagster passed.
    pub fn context(&self) -> &PipesContext {
        self.session.context()
    }

    /// The IO manager.
    pub fn io_manager(&self) -> &WandbArtifactsIoManager {
        &self.io
    }

    /// The W&B run of this Dagster run (same id, resumed), to log metrics to:
    /// `step.start_run()?.log(row)?`, then `finish(0)`.
    ///
    /// # Errors
    /// Backend errors.
    pub fn start_run(&self) -> Result<wandb_api::run::Run> {
        self.io.start_run()
    }

    /// Logs `output` as the artifact of `asset_key` (escaped form; `None` = the one asset in scope) and reports
    /// the materialization to Dagster with the W&B metadata, the artifact digest as its data version.
    ///
    /// # Errors
    /// [`Error::ContextAccess`] for an asset not in scope; the IO manager's errors; Pipes errors.
    pub fn materialize(&self, asset_key: Option<&str>, output: Output) -> Result<Option<Materialization>> {
        let context = self.context();
        let escaped = context.resolve_asset_key(asset_key)?;
        let output_context = OutputContext {
            asset_key: Some(parse_asset_key(&escaped)),
            partition_key: context.partition_key.clone(),
            several_partitions: context.partition_key.is_none() && context.partition_key_range.is_some(),
            configuration: self.output_configuration(&escaped),
        };
        let materialization = self.io.handle_output(&output_context, output)?;
        if let Some(m) = &materialization {
            self.session.report_asset_materialization(Some(&escaped), m.metadata.clone(), Some(&m.version.digest))?;
        }
        Ok(materialization)
    }

    /// dagster-wandb's `run_launch_job` with the op config in extra `op_config` (or `config` when given), then a
    /// materialization of the asset in scope carrying the launched run (with `synchronous`).
    ///
    /// # Errors
    /// Configuration and launch errors; Pipes errors.
    #[cfg(feature = "launch")]
    pub fn launch_job(
        &self,
        config: Option<&Value>,
        timeout: std::time::Duration,
    ) -> Result<crate::launch::LaunchOutcome> {
        let config = match config {
            Some(config) => config.clone(),
            None => self.context().extra("op_config")?.clone(),
        };
        let config = crate::launch::LaunchJobConfig::from_json(&config)?;
        let outcome = self.io.launch_job(&config, timeout)?;
        if self.context().asset_keys.is_some() {
            let mut metadata = vec![
                ("run_queue_item_id".to_owned(), crate::pipes::MetadataValue::Text(outcome.queued.item_id.clone())),
                ("queue".to_owned(), crate::pipes::MetadataValue::Text(outcome.queued.queue.clone())),
            ];
            if let Some((run_id, state)) = &outcome.finished {
                let url = self.io.run_url(&outcome.queued.entity, &outcome.queued.project, run_id);
                metadata.push(("wandb_run_id".to_owned(), crate::pipes::MetadataValue::Text(run_id.clone())));
                metadata.push(("wandb_run_state".to_owned(), crate::pipes::MetadataValue::Text(state.clone())));
                metadata.push(("wandb_run_url".to_owned(), crate::pipes::MetadataValue::Url(url)));
            }
            self.session.report_asset_materialization(None, metadata, None)?;
        }
        Ok(outcome)
    }

    /// dagster-wandb's `run_launch_agent` with the op config in extra `op_config` (`queues`, `max_jobs`): runs an
    /// agent until `shutdown` is set (a step wires it to SIGINT/SIGTERM, which Dagster sends on termination) or the
    /// server stops it; the counts are logged to Dagster.
    ///
    /// # Errors
    /// Configuration and launch errors; Pipes errors.
    #[cfg(feature = "launch")]
    pub fn launch_agent(&self, shutdown: &std::sync::atomic::AtomicBool) -> Result<wandb_launch::AgentReport> {
        let config = match self.context().extras.get("op_config") {
            Some(config) => crate::launch::LaunchAgentConfig::from_json(config)?,
            None => crate::launch::LaunchAgentConfig::default(),
        };
        let report = self.io.launch_agent(&config, shutdown)?;
        self.session.log_info(&format!(
            "launch agent stopped: {} succeeded, {} failed, {} stopped",
            report.succeeded, report.failed, report.stopped
        ))?;
        Ok(report)
    }

    /// Logs `output` of an op's output `name` (named by its `wandb_artifact_configuration`); the metadata goes to
    /// Dagster as a custom message `{"output": name, "metadata": {...}}`, as ops have no materialization.
    ///
    /// # Errors
    /// The IO manager's errors; Pipes errors.
    pub fn handle_op_output(&self, name: &str, output: Output) -> Result<Option<Materialization>> {
        let context = self.context();
        let output_context = OutputContext {
            asset_key: None,
            partition_key: context.partition_key.clone(),
            several_partitions: context.partition_key.is_none() && context.partition_key_range.is_some(),
            configuration: self.output_configuration(name),
        };
        let materialization = self.io.handle_output(&output_context, output)?;
        if let Some(m) = &materialization {
            let metadata: Map<String, Value> = m.metadata.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
            self.session.report_custom_message(json!({"output": name, "metadata": metadata}))?;
        }
        Ok(materialization)
    }

    /// Loads input `name` as its `inputs` extra describes it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing or malformed `inputs.<name>`; the IO manager's errors.
    pub fn load(&self, name: &str) -> Result<Loaded> {
        let key = format!("{EXTRA_INPUTS}.{name}");
        let spec = self.context().extras.get(EXTRA_INPUTS).and_then(|inputs| inputs.get(name)).ok_or_else(|| {
            Error::InvalidConfig { key: key.clone(), reason: "is not in the Pipes extras".to_owned() }
        })?;
        let asset_key = match spec.get("asset_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(escaped)) => Some(parse_asset_key(escaped)),
            Some(Value::Array(parts)) => Some(
                parts
                    .iter()
                    .map(|p| p.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(&format!("{key}.asset_key"), spec, "a string or a list of strings"))?,
            ),
            Some(other) => return Err(invalid(&format!("{key}.asset_key"), other, "a string or a list of strings")),
        };
        let upstream_partition_keys = match spec.get("partition_keys") {
            None | Some(Value::Null) => None,
            Some(Value::Array(keys)) => {
                Some(keys.iter().map(|k| k.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(
                    || invalid(&format!("{key}.partition_keys"), &spec["partition_keys"], "a list of strings"),
                )?)
            }
            Some(other) => return Err(invalid(&format!("{key}.partition_keys"), other, "a list of strings")),
        };
        let input = InputContext {
            asset_key,
            partition_key: self.context().partition_key.clone(),
            upstream_partition_keys,
            configuration: spec.get(crate::config::ARTIFACT_CONFIGURATION_KEY).cloned(),
        };
        self.io.load_input(&input)
    }

    fn output_configuration(&self, key: &str) -> Option<Value> {
        self.context()
            .extras
            .get(EXTRA_OUTPUTS)
            .and_then(|outputs| outputs.get(key))
            .and_then(|output| output.get(crate::config::ARTIFACT_CONFIGURATION_KEY))
            .cloned()
    }
}

/// A step given no `host` uses what every other part of the toolkit would: `WANDB_BASE_URL`, else the embedded
/// store (`wandb_api::Settings::from_env`'s one rule).
fn default_host() -> Result<String> {
    Ok(wandb_api::Settings::from_env()?.base_url.to_url())
}

fn invalid(key: &str, value: &Value, expected: &str) -> Error {
    Error::InvalidConfig { key: key.to_owned(), reason: format!("got {value}, expected {expected}") }
}

/// The `main` of a step binary: opens the Pipes session (env vars or the `--dagster-pipes-*` flags), reports
/// panics, runs `body`, and closes the session — with the error and its chain when `body` failed, so Dagster
/// shows a failed step with that message. Exit code 0 on success, 1 on failure, 2 when not launched by Dagster.
pub fn run_step<F>(body: F) -> ExitCode
where
    F: FnOnce(&DagsterStep) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    #[allow(clippy::print_stderr, reason = "a step binary reports its failure on stderr as well as to Dagster")]
    fn report(message: &str) {
        eprintln!("error: {message}");
    }
    let session = match PipesSession::open_from_env_and_args(std::env::args()) {
        Ok(Some(session)) => session,
        Ok(None) => {
            report("not launched by Dagster Pipes (DAGSTER_PIPES_CONTEXT is not set); run it from a Dagster asset");
            return ExitCode::from(2);
        }
        Err(e) => {
            report(&e.to_string());
            return ExitCode::from(2);
        }
    };
    session.install_panic_hook();
    let outcome: std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> =
        DagsterStep::new(Arc::clone(&session)).map_err(Into::into).and_then(|step| body(&step));
    match outcome {
        Ok(()) => match session.close(None) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                report(&e.to_string());
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            let error: &(dyn std::error::Error + 'static) = &*error;
            let _ = session.close(Some(&PipesException::from_error(error)));
            report(&error.to_string());
            ExitCode::FAILURE
        }
    }
}
