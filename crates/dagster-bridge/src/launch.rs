//! dagster-wandb's two launch ops — `run_launch_job` and `run_launch_agent` — with their configuration as
//! dagster-wandb defines it (dagster-wandb §7), mapped onto wandb 0.31.0's launch protocol. dagster-wandb's own
//! ops fail against every wandb release it allows; these work.
//!
//! Keys that no longer mean anything are refused with an error saying what to use instead
//! ([`REFUSED_LAUNCH_JOB_KEYS`]): `uri` (0.31.0 ignores it; a launch needs a `job` or a `docker_image`),
//! `parameters` and `cuda` (not arguments of `launch_add`). A job always goes to a `queue`
//! ([`QUEUE_REQUIRED`]): without one dagster-wandb runs it on the local machine through a container runner, which
//! this toolkit does not have. The Python companion refuses the same keys, with the same reasons, before a step
//! starts. The agent always polls project `model-registry`, so dagster-wandb's `project` (which makes wandb
//! 0.31.0 reject the agent config) is not passed on.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{Map, Value};
use wandb_api::Api;
use wandb_launch::{AgentConfig, AgentReport, LaunchAgent, LaunchRequest, QueuedRun, RunQueues};

use crate::config::WandbConfig;
use crate::error::{Error, Result};

/// The keys of `run_launch_job`'s config that mean nothing in wandb 0.31.0's launch protocol, each with why and
/// what to use instead: a value other than null is refused (`invalid configuration run_launch_job.<key>: <why>`).
pub const REFUSED_LAUNCH_JOB_KEYS: [(&str, &str); 3] = [
    (
        "uri",
        "has no meaning in wandb 0.31.0's launch protocol, which ignores it: a launch names a `job` or a `docker_image`",
    ),
    ("parameters", "is not an argument of launch_add: give run config under `config.overrides.run_config`"),
    ("cuda", "is not an argument of launch_add: request GPUs through `resource_args` of your runner"),
];

/// Why `run_launch_job` refuses a config without a `queue` (`invalid configuration run_launch_job.queue: …`).
pub const QUEUE_REQUIRED: &str = "is required: without a queue dagster-wandb launches on the local machine through a container runner, which this toolkit does not have; give a queue and run an agent on it (`dagster-wandb launch agent`, or a `run_launch_agent` op)";

/// `run_launch_job`'s op config (`launch_config()`): every key optional, `synchronous` true by default.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchJobConfig {
    /// The job, `entity/project/name:alias`.
    pub job: Option<String>,
    /// The queue; without one dagster-wandb launches locally, which needs a container runner ([`run_launch_job`]
    /// refuses it: [`QUEUE_REQUIRED`]).
    pub queue: Option<String>,
    /// Replaces the job's entrypoint.
    pub entry_point: Option<Vec<String>>,
    /// A git version.
    pub version: Option<String>,
    /// The run's name.
    pub name: Option<String>,
    /// The runner (`local-process`, …).
    pub resource: Option<String>,
    /// Per-resource arguments.
    pub resource_args: Option<Value>,
    /// A prebuilt image instead of a job.
    pub docker_image: Option<String>,
    /// The launch config: the spec skeleton (`overrides.run_config`, `overrides.args`, …).
    pub config: Option<Map<String, Value>>,
    /// Wait for the launched run to end (default true).
    pub synchronous: bool,
    /// The run id.
    pub run_id: Option<String>,
}

impl LaunchJobConfig {
    /// Parses the op config.
    ///
    /// ```
    /// use dagster_bridge::launch::LaunchJobConfig;
    /// let config = LaunchJobConfig::from_json(&serde_json::json!({"queue": "my_queue", "job": "e/p/j:latest"}))?;
    /// assert!(config.synchronous);
    /// let err = LaunchJobConfig::from_json(&serde_json::json!({"uri": "https://github.com/x/y"})).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid configuration run_launch_job.uri: has no meaning"));
    /// # Ok::<(), dagster_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unknown keys, keys without meaning in today's protocol, and mistyped values.
    pub fn from_json(value: &Value) -> Result<Self> {
        const SECTION: &str = "run_launch_job";
        let map = value.as_object().ok_or_else(|| invalid(SECTION, value, "a dict"))?;
        for (key, reason) in REFUSED_LAUNCH_JOB_KEYS {
            if map.get(key).is_some_and(|v| !v.is_null()) {
                return Err(Error::InvalidConfig { key: format!("{SECTION}.{key}"), reason: reason.to_owned() });
            }
        }
        const KNOWN: [&str; 14] = [
            "uri",
            "job",
            "queue",
            "entry_point",
            "version",
            "parameters",
            "name",
            "resource",
            "resource_args",
            "docker_image",
            "config",
            "synchronous",
            "cuda",
            "run_id",
        ];
        if let Some(key) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::InvalidConfig {
                key: format!("{SECTION}.{key}"),
                reason: format!("is not a known key; expected one of {}", KNOWN.join(", ")),
            });
        }
        let string = |key: &str| -> Result<Option<String>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(invalid(&format!("{SECTION}.{key}"), other, "a string")),
            }
        };
        let entry_point = match map.get("entry_point") {
            None | Some(Value::Null) => None,
            Some(Value::Array(words)) if words.iter().all(Value::is_string) => {
                Some(words.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            }
            Some(other) => return Err(invalid(&format!("{SECTION}.entry_point"), other, "a list of strings")),
        };
        let config = match map.get("config") {
            None | Some(Value::Null) => None,
            Some(Value::Object(config)) => Some(config.clone()),
            Some(other) => return Err(invalid(&format!("{SECTION}.config"), other, "a dict")),
        };
        let synchronous = match map.get("synchronous") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(invalid(&format!("{SECTION}.synchronous"), other, "true or false")),
        };
        Ok(LaunchJobConfig {
            job: string("job")?,
            queue: string("queue")?,
            entry_point,
            version: string("version")?,
            name: string("name")?,
            resource: string("resource")?,
            resource_args: map.get("resource_args").filter(|v| !v.is_null()).cloned(),
            docker_image: string("docker_image")?,
            config,
            synchronous,
            run_id: string("run_id")?,
        })
    }

    /// The `launch_add` request: `{"entity", "project", **op_config}` as dagster-wandb builds it, with `queue`
    /// as the queue name (dagster-wandb passes `queue=`, which `launch_add` does not take).
    pub fn request(&self, wandb_config: &WandbConfig) -> LaunchRequest {
        LaunchRequest {
            job: self.job.clone(),
            docker_image: self.docker_image.clone(),
            entity: wandb_config.entity.clone(),
            project: Some(wandb_config.project.clone()),
            queue: self.queue.clone(),
            resource: self.resource.clone(),
            entry_point: self.entry_point.clone(),
            name: self.name.clone(),
            run_id: self.run_id.clone(),
            version: self.version.clone(),
            resource_args: self.resource_args.clone(),
            config: self.config.clone().unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// What `run_launch_job` did: the queued item, and with `synchronous`, the run and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchOutcome {
    /// The queued item.
    pub queued: QueuedRun,
    /// The run id and its final state, when waited for.
    pub finished: Option<(String, String)>,
}

/// `run_launch_job`: enqueues the job and, when `synchronous`, waits (up to `timeout`) for its run to end.
///
/// # Errors
/// [`Error::InvalidConfig`] without a queue ([`QUEUE_REQUIRED`]: a queue-less launch needs a container runner);
/// launch errors.
pub fn run_launch_job(
    client: &wandb_api::client::WandbClient,
    wandb_config: &WandbConfig,
    config: &LaunchJobConfig,
    timeout: Duration,
    log: &dyn Fn(&str),
) -> Result<LaunchOutcome> {
    let Some(queue) = &config.queue else {
        return Err(Error::InvalidConfig { key: "run_launch_job.queue".to_owned(), reason: QUEUE_REQUIRED.to_owned() });
    };
    let queues = RunQueues::new(client.clone());
    let queued = launch_block_on(queues.launch_add(&config.request(wandb_config)))?;
    if !config.synchronous {
        log(&format!("Asynchronous Launch job added to queue with name={queue}"));
        return Ok(LaunchOutcome { queued, finished: None });
    }
    log(&format!("Synchronous Launch job added to queue with name={queue}. Waiting for completion..."));
    let finished = launch_block_on(queues.wait_until_finished(&queued, timeout, Duration::from_secs(2)))?;
    Ok(LaunchOutcome { queued, finished: Some(finished) })
}

/// `run_launch_agent`'s op config (`launch_agent_config()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchAgentConfig {
    /// Queues to poll (default `["default"]`).
    pub queues: Option<Vec<String>>,
    /// Jobs at once (default 1; `-1` unlimited).
    pub max_jobs: Option<i64>,
}

impl LaunchAgentConfig {
    /// Parses the op config.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unknown keys and mistyped or negative values (other than `-1`).
    pub fn from_json(value: &Value) -> Result<Self> {
        const SECTION: &str = "run_launch_agent";
        let map = value.as_object().ok_or_else(|| invalid(SECTION, value, "a dict"))?;
        if let Some(key) = map.keys().find(|k| !["queues", "max_jobs"].contains(&k.as_str())) {
            return Err(Error::InvalidConfig {
                key: format!("{SECTION}.{key}"),
                reason: "is not a known key; expected queues, max_jobs".to_owned(),
            });
        }
        let queues = match map.get("queues") {
            None | Some(Value::Null) => None,
            Some(Value::Array(q)) if q.iter().all(Value::is_string) => {
                Some(q.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            }
            Some(other) => return Err(invalid(&format!("{SECTION}.queues"), other, "a list of strings")),
        };
        let max_jobs = match map.get("max_jobs") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if n == -1 || n > 0 => Some(n),
                _ => return Err(invalid(&format!("{SECTION}.max_jobs"), v, "a positive integer, or -1 for no limit")),
            },
        };
        Ok(LaunchAgentConfig { queues, max_jobs })
    }
}

/// `run_launch_agent`: runs an agent on the queues until `shutdown` is set or the server stops it.
///
/// # Errors
/// Launch errors (a missing queue names those that exist).
pub fn run_launch_agent(
    api: &Api,
    wandb_config: &WandbConfig,
    config: &LaunchAgentConfig,
    shutdown: &AtomicBool,
) -> Result<AgentReport> {
    let agent_config = AgentConfig {
        entity: wandb_config.entity.clone(),
        queues: config.queues.clone().unwrap_or_else(|| vec!["default".to_owned()]),
        max_jobs: match config.max_jobs {
            Some(-1) => None,
            Some(n) => Some(n.max(1) as usize),
            None => Some(1),
        },
        poll_interval: Duration::from_secs(10),
    };
    let mut agent = LaunchAgent::register(api.clone(), agent_config)?;
    Ok(agent.run(shutdown)?)
}

/// Runs a launch future on wandb-api's process-wide runtime.
fn launch_block_on<T: Send>(future: impl std::future::Future<Output = wandb_launch::Result<T>> + Send) -> Result<T> {
    Ok(wandb_api::block_on(async { Ok(future.await) })??)
}

fn invalid(key: &str, value: &Value, expected: &str) -> Error {
    Error::InvalidConfig { key: key.to_owned(), reason: format!("got {value}, expected {expected}") }
}
