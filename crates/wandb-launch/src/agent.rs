//! A W&B Launch agent: registers on its queues, polls them round-robin up to `max_jobs`, acknowledges each item
//! with the run id it picks, runs the job through a [`Runner`], honours stop requests, reports failures with
//! `failRunQueueItem`, and stops cleanly when asked. Jobs (artifact type `job`) are created by [`create_job`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use artifact_core::{AddDirOptions, Artifact, NewFileOptions};
use serde_json::{Map, Value, json};
use wandb_api::client::WandbClient;
use wandb_api::{Api, Backend, LogOptions, ProjectRef};

use crate::error::{Error, Result};
use crate::queue::{LAUNCH_PROJECT, RunQueues};

/// Runs `future` on wandb-api's process-wide runtime.
fn block<T: Send>(future: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    wandb_api::block_on(async { Ok(future.await) })?
}

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The entity whose queues it polls.
    pub entity: String,
    /// The queues, polled round-robin.
    pub queues: Vec<String>,
    /// Jobs at once; `None` is unlimited (the SDK's `-1`).
    pub max_jobs: Option<usize>,
    /// The pause between polls when nothing was popped or all slots are busy (the SDK's 10 s).
    pub poll_interval: Duration,
}

/// A job the agent received.
#[derive(Clone, Debug)]
pub struct LaunchJob {
    /// The run queue item.
    pub item_id: String,
    /// The queue it came from.
    pub queue: String,
    /// The launch spec.
    pub spec: Map<String, Value>,
    /// The run id the agent acknowledged it with.
    pub run_id: String,
    /// Where the job's code was downloaded.
    pub project_dir: PathBuf,
    /// The command: the entrypoint (or the override) and the override args.
    pub command: Vec<String>,
    /// The `WANDB_*` environment for the run, in the SDK's order.
    pub env: Vec<(String, String)>,
}

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// Still running.
    Running,
    /// Exited with this code.
    Exited(i32),
}

/// Runs jobs for one kind of resource. `local-process` is built in; others plug in here.
pub trait Runner: Send + Sync {
    /// The resource name in launch specs.
    fn resource(&self) -> &'static str;
    /// Starts the job.
    ///
    /// # Errors
    /// Whatever stops it from starting.
    fn start(&self, job: &LaunchJob) -> Result<Box<dyn RunningJob>>;
}

/// A started job.
pub trait RunningJob: Send {
    /// Polls it.
    ///
    /// # Errors
    /// I/O errors.
    fn status(&mut self) -> Result<JobStatus>;
    /// Stops it.
    fn cancel(&mut self);
    /// Its recent output, for failure reports.
    fn output_tail(&self) -> String;
}

/// `local-process`: the command in the job's directory, with the agent's environment plus the run's `WANDB_*`.
#[derive(Debug, Default)]
pub struct LocalProcessRunner;

struct LocalProcess {
    child: Child,
    log: PathBuf,
}

impl Runner for LocalProcessRunner {
    fn resource(&self) -> &'static str {
        "local-process"
    }

    fn start(&self, job: &LaunchJob) -> Result<Box<dyn RunningJob>> {
        let (program, args) = job
            .command
            .split_first()
            .ok_or_else(|| Error::LaunchSpec { reason: "the job has no entrypoint".to_owned() })?;
        let log = job.project_dir.join(".launch-output.log");
        let out = std::fs::File::create(&log).map_err(|e| Error::io("create", &log, e))?;
        let err = out.try_clone().map_err(|e| Error::io("open", &log, e))?;
        let shown: Vec<String> =
            job.env.iter().map(|(k, v)| if k == "WANDB_API_KEY" { k.clone() } else { format!("{k}={v}") }).collect();
        tracing::info!(
            "launch: Launching run as a local-process with command {} {}",
            shown.join(" "),
            job.command.join(" ")
        );
        let child = Command::new(program)
            .args(args)
            .envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&job.project_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::LaunchSpec { reason: format!("cannot start {program:?}: {e}") })?;
        Ok(Box::new(LocalProcess { child, log }))
    }
}

impl RunningJob for LocalProcess {
    fn status(&mut self) -> Result<JobStatus> {
        match self.child.try_wait().map_err(|e| Error::io("wait for", &self.log, e))? {
            None => Ok(JobStatus::Running),
            Some(status) => Ok(JobStatus::Exited(status.code().unwrap_or(-1))),
        }
    }

    fn cancel(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn output_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// What an agent did before it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentReport {
    /// Jobs whose process exited 0.
    pub succeeded: usize,
    /// Jobs reported failed.
    pub failed: usize,
    /// Jobs stopped on request.
    pub stopped: usize,
}

struct Active {
    job: LaunchJob,
    running: Box<dyn RunningJob>,
    last_stop_check: Instant,
}

/// A registered launch agent.
pub struct LaunchAgent {
    api: Api,
    client: WandbClient,
    config: AgentConfig,
    id: String,
    name: String,
    queues: Vec<String>,
    runners: Vec<Box<dyn Runner>>,
    work_dir: tempfile::TempDir,
}

impl std::fmt::Debug for LaunchAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchAgent").field("name", &self.name).field("queues", &self.queues).finish_non_exhaustive()
    }
}

impl LaunchAgent {
    /// Registers an agent on `config.queues` (`ProjectRunQueues`, `createLaunchAgent`, `LaunchAgent`) of `api`'s
    /// server, with the `local-process` runner. Jobs get the server's URL and `api`'s key.
    ///
    /// # Errors
    /// [`Error::LaunchQueue`] on an embedded store (run queues live on a server), when no queue is named or one
    /// does not exist (listing those that do); GraphQL and HTTP errors.
    pub fn register(api: Api, config: AgentConfig) -> Result<Self> {
        let client = server_client(&api)?;
        let queues_api = RunQueues::new(client.clone());
        if config.queues.is_empty() {
            return Err(Error::LaunchQueue {
                reason:
                    "To launch an agent please specify a queue or a list of queues in the configuration file or cli."
                        .to_owned(),
            });
        }
        let mut available = block(queues_api.run_queues(&config.entity))?;
        if available.is_empty() {
            // As the SDK's agent does: an entity without queues gets its `default` one.
            block(queues_api.create_run_queue(&config.entity, "default"))?;
            available = block(queues_api.run_queues(&config.entity))?;
        }
        let ids: Vec<String> =
            available.iter().filter(|(_, name)| config.queues.contains(name)).map(|(id, _)| id.clone()).collect();
        if ids.len() != config.queues.len() {
            let names: Vec<&str> = available.iter().map(|(_, n)| n.as_str()).collect();
            return Err(Error::LaunchQueue {
                reason: format!(
                    "Could not start launch agent: Not all of requested queues ({}) found. Available queues for this project: {}",
                    config.queues.join(", "),
                    names.join(",")
                ),
            });
        }
        let agent_config = json!({"max_jobs": config.max_jobs.map_or(-1, |m| m as i64), "queues": config.queues, "entity": config.entity});
        let hostname = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        let data = wandb_api::block_on(client.graphql(
            "createLaunchAgent",
            "mutation createLaunchAgent($entity: String!, $project: String!, $queues: [ID!]!, $hostname: String!, $agentConfig: JSONString, $version: String) { createLaunchAgent(input: {entityName: $entity, projectName: $project, runQueues: $queues, hostname: $hostname, agentConfig: $agentConfig, version: $version}) { launchAgentId } }",
            json!({"entity": config.entity, "project": LAUNCH_PROJECT, "queues": ids, "hostname": hostname,
                   "agentConfig": agent_config.to_string(), "version": format!("dagster-wandb-rs@{}", env!("CARGO_PKG_VERSION"))}),
        ))?;
        let id =
            data.pointer("/createLaunchAgent/launchAgentId").and_then(Value::as_str).map(str::to_owned).ok_or_else(
                || Error::Protocol { operation: "createLaunchAgent".to_owned(), reason: "no launchAgentId".to_owned() },
            )?;
        let agent = wandb_api::block_on(agent_info(&client, &id))?;
        let name = agent.get("name").and_then(Value::as_str).unwrap_or(&id).to_owned();
        let work_dir = tempfile::Builder::new()
            .prefix("launch-agent-")
            .tempdir()
            .map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
        let queues = config.queues.clone();
        Ok(LaunchAgent { api, client, config, id, name, queues, runners: vec![Box::new(LocalProcessRunner)], work_dir })
    }

    /// The agent's name (as the server gave it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a runner for another resource.
    pub fn add_runner(&mut self, runner: Box<dyn Runner>) {
        self.runners.push(runner);
    }

    /// Polls and runs jobs until `shutdown` is set or the server asks the agent to stop polling; then stops the
    /// jobs still running and reports `KILLED`.
    ///
    /// # Errors
    /// GraphQL and HTTP errors of the agent's own calls (a job's errors are reported on its item instead).
    pub fn run(&mut self, shutdown: &AtomicBool) -> Result<AgentReport> {
        let mut report = AgentReport::default();
        let mut active: Vec<Active> = Vec::new();
        let mut ticks: u64 = 0;
        tracing::info!("agent {} polling on queues {}", self.name, self.queues.join(", "));
        let outcome = loop {
            if shutdown.load(Ordering::Relaxed) {
                break Ok(());
            }
            ticks += 1;
            match wandb_api::block_on(agent_info(&self.client, &self.id)) {
                Ok(info) if info.get("stopPolling").and_then(Value::as_bool) == Some(true) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            self.check_jobs(&mut active, &mut report);
            let slot_free = self.config.max_jobs.is_none_or(|max| active.len() < max);
            let popped_item = if slot_free { self.pop() } else { None };
            let popped = popped_item.is_some();
            if let Some((queue, item)) = popped_item {
                self.update_status("RUNNING");
                match self.start_job(&queue, &item) {
                    Ok(started) => active.push(started),
                    Err((item_id, e)) => {
                        tracing::error!("launch: job {item_id} failed: {e}");
                        self.fail(&item_id, &e.to_string(), "agent");
                        report.failed += 1;
                    }
                }
            }
            if ticks.is_multiple_of(2) {
                self.update_status(if active.is_empty() { "POLLING" } else { "RUNNING" });
            }
            if !popped || self.config.max_jobs.is_some_and(|max| active.len() >= max) {
                // Wake often enough to notice a finished job or a shutdown; poll the queues at the interval.
                let until = Instant::now() + self.config.poll_interval;
                while Instant::now() < until && !shutdown.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100).min(self.config.poll_interval));
                    if !active.is_empty() {
                        self.check_jobs(&mut active, &mut report);
                    }
                }
            }
        };
        for mut job in active.drain(..) {
            job.running.cancel();
            report.stopped += 1;
        }
        self.update_status("KILLED");
        outcome.map(|()| report).map_err(Error::from)
    }

    fn pop(&mut self) -> Option<(String, Value)> {
        for i in 0..self.queues.len() {
            let queue = self.queues[i].clone();
            let popped = wandb_api::block_on(self.client.graphql(
                "popFromRunQueue",
                "mutation popFromRunQueue($entity: String!, $project: String!, $queueName: String!, $launchAgentId: ID) { popFromRunQueue(input: {entityName: $entity, projectName: $project, queueName: $queueName, launchAgentId: $launchAgentId}) { runQueueItemId runSpec } }",
                json!({"entity": self.config.entity, "project": LAUNCH_PROJECT, "queueName": queue, "launchAgentId": self.id}),
            ));
            match popped {
                Ok(data) => {
                    if let Some(item) = data.get("popFromRunQueue").filter(|i| !i.is_null()) {
                        // Round-robin: the queue that gave a job goes to the back.
                        let q = self.queues.remove(i);
                        self.queues.push(q);
                        return Some((queue, item.clone()));
                    }
                }
                Err(e) => tracing::warn!("launch: popping {queue} failed: {e}"),
            }
        }
        None
    }

    /// Acknowledges the item, fetches the job and starts it; on failure, the item id and the error.
    fn start_job(&self, queue: &str, item: &Value) -> std::result::Result<Active, (String, Error)> {
        let item_id = item.get("runQueueItemId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let fail = |e: Error| (item_id.clone(), e);
        let spec = match item.get("runSpec") {
            Some(Value::Object(spec)) => spec.clone(),
            Some(Value::String(text)) => serde_json::from_str(text)
                .map_err(|e| fail(Error::LaunchSpec { reason: format!("runSpec is not a JSON object: {e}") }))?,
            _ => return Err(fail(Error::LaunchSpec { reason: "the item has no runSpec".to_owned() })),
        };
        let run_id = spec.get("run_id").and_then(Value::as_str).map_or_else(wandb_api::generate_run_id, str::to_owned);
        tracing::info!("launch: Launch agent received job {item_id} from {queue}");
        let acked = wandb_api::block_on(self.client.graphql(
                "ackRunQueueItem",
                "mutation ackRunQueueItem($itemId: ID!, $runId: String!) { ackRunQueueItem(input: { runQueueItemId: $itemId, runName: $runId }) { success } }",
                json!({"itemId": item_id, "runId": run_id}),
            ))
            .map_err(|e| fail(e.into()))?;
        if acked.pointer("/ackRunQueueItem/success").and_then(Value::as_bool) != Some(true) {
            return Err(fail(Error::LaunchQueue {
                reason: "Error acking run queue item. Item may have already been acknowledged by another process"
                    .to_owned(),
            }));
        }
        let resource = spec.get("resource").and_then(Value::as_str).unwrap_or("local-container").to_owned();
        let runner = self.runners.iter().find(|r| r.resource() == resource).ok_or_else(|| {
            let supported: Vec<&str> = self.runners.iter().map(|r| r.resource()).collect();
            fail(Error::LaunchSpec {
                reason: format!(
                    "resource {resource:?} is not supported by this agent; supported: {}",
                    supported.join(", ")
                ),
            })
        })?;
        let project_dir = self.work_dir.path().join(format!("{}-{run_id}", sanitize(&item_id)));
        std::fs::create_dir_all(&project_dir).map_err(|e| fail(Error::io("create", &project_dir, e)))?;
        let entrypoint = self.fetch_job(&spec, &project_dir).map_err(|e| {
            let job = spec.get("job").and_then(Value::as_str).unwrap_or_default();
            fail(Error::LaunchSpec { reason: format!("Error accessing job {job}: {e} on {}", self.client.base_url()) })
        })?;
        let overrides = spec.get("overrides").cloned().unwrap_or(Value::Null);
        let mut command: Vec<String> = match overrides.get("entry_point").and_then(Value::as_array) {
            Some(entry) => entry.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            None => entrypoint,
        };
        command.extend(
            overrides
                .get("args")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
        let job = LaunchJob {
            env: self.job_env(&spec, queue, &item_id, &run_id),
            item_id: item_id.clone(),
            queue: queue.to_owned(),
            spec,
            run_id,
            project_dir,
            command,
        };
        let running = runner.start(&job).map_err(fail)?;
        Ok(Active { job, running, last_stop_check: Instant::now() })
    }

    /// Downloads the job's code into `dir`; returns its entrypoint.
    fn fetch_job(&self, spec: &Map<String, Value>, dir: &Path) -> Result<Vec<String>> {
        let job = spec.get("job").and_then(Value::as_str).ok_or_else(|| Error::LaunchSpec {
            reason: "only jobs run on local-process (a docker image needs a container runner)".to_owned(),
        })?;
        let address = artifact_core::ArtifactAddress::parse(job)?;
        let (Some(entity), Some(project)) = (&address.entity, &address.project) else {
            return Err(Error::LaunchSpec {
                reason: "Invalid job specification. A job must be of the form: <entity>/<project>/<job-name>:<alias-or-version>".to_owned(),
            });
        };
        let job_dir = dir.join(".job");
        let alias = address.alias.as_deref().unwrap_or("latest");
        let handle = self.api.artifact(&format!("{entity}/{project}/{}:{alias}", address.name))?;
        if handle.version().artifact_type != "job" {
            return Err(Error::LaunchSpec {
                reason: format!("Job artifact {job} not found (it is a {})", handle.version().artifact_type),
            });
        }
        handle.download_to(&job_dir)?;
        let text = std::fs::read(job_dir.join("wandb-job.json"))
            .map_err(|e| Error::io("read", job_dir.join("wandb-job.json"), e))?;
        let source: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::LaunchSpec { reason: format!("wandb-job.json is not JSON: {e}") })?;
        let source_type = source.get("source_type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if source_type != "artifact" {
            return Err(Error::LaunchSpec {
                reason: format!("{source_type:?} jobs cannot run on local-process here (only code-artifact jobs)"),
            });
        }
        let code = source.pointer("/source/artifact").and_then(Value::as_str).unwrap_or_default();
        let code_id = code
            .strip_prefix("wandb-artifact://_id/")
            .ok_or_else(|| Error::LaunchSpec { reason: "No code artifact found".to_owned() })?
            .to_owned();
        self.api.artifact_by_id(&code_id)?.download_to(dir)?;
        tracing::debug!(code_id, "launch: fetched the job's code");
        let entrypoint: Vec<String> = source
            .pointer("/source/entrypoint")
            .and_then(Value::as_array)
            .map(|e| e.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(entrypoint)
    }

    /// The run's environment, in `LaunchProject.get_env_vars_dict`'s order.
    fn job_env(&self, spec: &Map<String, Value>, queue: &str, item_id: &str, run_id: &str) -> Vec<(String, String)> {
        let text = |key: &str| spec.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let mut env = vec![("WANDB_BASE_URL".to_owned(), self.client.base_url().to_owned())];
        let key = text("_wandb_api_key").or_else(|| self.client.api_key().map(str::to_owned)).unwrap_or_default();
        env.push(("WANDB_API_KEY".to_owned(), key));
        if let Some(project) = text("project") {
            env.push(("WANDB_PROJECT".to_owned(), project));
        }
        env.push(("WANDB_ENTITY".to_owned(), text("entity").unwrap_or_else(|| self.config.entity.clone())));
        env.push(("WANDB_LAUNCH".to_owned(), "True".to_owned()));
        env.push(("WANDB_RUN_ID".to_owned(), run_id.to_owned()));
        if let Some(name) = text("name") {
            env.push(("WANDB_NAME".to_owned(), name));
        }
        if spec.get("_resume_count").and_then(Value::as_u64).unwrap_or(0) > 0 {
            env.push(("WANDB_RESUME".to_owned(), "allow".to_owned()));
        }
        env.push(("WANDB_LAUNCH_QUEUE_NAME".to_owned(), queue.to_owned()));
        env.push(("WANDB_LAUNCH_QUEUE_ENTITY".to_owned(), self.config.entity.clone()));
        env.push(("WANDB_LAUNCH_TRACE_ID".to_owned(), item_id.to_owned()));
        let overrides = spec.get("overrides").cloned().unwrap_or(Value::Null);
        let run_config = overrides.get("run_config").cloned().unwrap_or_else(|| json!({}));
        env.push(("WANDB_CONFIG".to_owned(), run_config.to_string()));
        let files = overrides.get("files").cloned().unwrap_or_else(|| json!({}));
        env.push(("WANDB_LAUNCH_FILE_OVERRIDES".to_owned(), files.to_string()));
        let mut artifacts = Map::new();
        if let Some(job) = text("job") {
            artifacts.insert("_wandb_job".to_owned(), job.into());
        }
        if let Some(Value::Object(more)) = overrides.get("artifacts") {
            artifacts.extend(more.clone());
        }
        env.push(("WANDB_ARTIFACTS".to_owned(), Value::Object(artifacts).to_string()));
        env
    }

    /// Polls the running jobs: finished ones leave, failed ones are reported, stopped runs are cancelled.
    fn check_jobs(&self, active: &mut Vec<Active>, report: &mut AgentReport) {
        let mut i = 0;
        while i < active.len() {
            let job = &mut active[i];
            let status = job.running.status();
            let done = match status {
                Ok(JobStatus::Running) => {
                    if job.last_stop_check.elapsed() >= Duration::from_secs(1) {
                        job.last_stop_check = Instant::now();
                        if self.stop_requested(&job.job) {
                            tracing::info!("launch: stopping run {} on request", job.job.run_id);
                            job.running.cancel();
                            report.stopped += 1;
                            active.swap_remove(i);
                            continue;
                        }
                    }
                    false
                }
                Ok(JobStatus::Exited(0)) => {
                    report.succeeded += 1;
                    true
                }
                Ok(JobStatus::Exited(code)) => {
                    let message = format!(
                        "The submitted run exited with code {code}. Its last output:\n{}",
                        job.running.output_tail()
                    );
                    self.fail(&job.job.item_id, &message, "run");
                    report.failed += 1;
                    true
                }
                Err(e) => {
                    self.fail(&job.job.item_id, &e.to_string(), "agent");
                    report.failed += 1;
                    true
                }
            };
            if done {
                tracing::info!("launch: Job finished with run id {}", active[i].job.run_id);
                active.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn stop_requested(&self, job: &LaunchJob) -> bool {
        let entity = job.spec.get("entity").and_then(Value::as_str).unwrap_or(&self.config.entity);
        let project = job.spec.get("project").and_then(Value::as_str).unwrap_or_default();
        wandb_api::block_on(self.client.graphql(
                "RunStoppedStatus",
                "query RunStoppedStatus($projectName: String, $entityName: String, $runId: String!) { project(name:$projectName, entityName:$entityName) { run(name:$runId) { stopped } } }",
                json!({"projectName": project, "entityName": entity, "runId": job.run_id}),
            ))
            .ok()
            .and_then(|data| data.pointer("/project/run/stopped").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    fn fail(&self, item_id: &str, message: &str, stage: &str) {
        let result = wandb_api::block_on(self.client.graphql(
            "failRunQueueItem",
            "mutation failRunQueueItem($runQueueItemId: ID!, $message: String!, $stage: String!, $filePaths: [String!]) { failRunQueueItem(input: { runQueueItemId: $runQueueItemId, message: $message, stage: $stage, filePaths: $filePaths }) { success } }",
            json!({"runQueueItemId": item_id, "message": message, "stage": stage}),
        ));
        if let Err(e) = result {
            tracing::warn!("launch: reporting the failure of {item_id} failed: {e}");
        }
    }

    fn update_status(&self, status: &str) {
        let result = wandb_api::block_on(self.client.graphql(
            "updateLaunchAgent",
            "mutation updateLaunchAgent($agentId: ID!, $agentStatus: String){ updateLaunchAgent(input: { launchAgentId: $agentId agentStatus: $agentStatus }) { success } }",
            json!({"agentId": self.id, "agentStatus": status}),
        ));
        if !result.is_ok_and(|d| d.pointer("/updateLaunchAgent/success").and_then(Value::as_bool) == Some(true)) {
            tracing::warn!("Failed to update agent status to {status}");
        }
    }
}

async fn agent_info(client: &WandbClient, id: &str) -> wandb_api::Result<Value> {
    let data = client
        .graphql(
            "LaunchAgent",
            "query LaunchAgent($agentId: ID!) { launchAgent(id: $agentId) { id name runQueues hostname agentStatus stopPolling heartbeatAt } }",
            json!({"agentId": id}),
        )
        .await?;
    Ok(data.get("launchAgent").cloned().unwrap_or(Value::Null))
}

/// The W&B client of `api`'s backend, which must be a server: run queues live there.
fn server_client(api: &Api) -> Result<WandbClient> {
    api.backend().as_client().cloned().ok_or_else(|| Error::LaunchQueue {
        reason: format!(
            "W&B Launch needs a W&B server, and {} is an embedded store (`dagster-wandb server` serves one over it)",
            api.backend().base_url()
        ),
    })
}

fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Creates a job from a local code directory (`wandb job create code …`): the code as an artifact of type
/// `code`, then the job artifact (type `job`) with `wandb-job.json` pointing at it and `requirements.frozen.txt`
/// (the directory's `requirements.txt`, or empty). Returns the job's address, `entity/project/name:vN`.
///
/// # Errors
/// Name errors, I/O errors reading the directory, and the errors of [`Backend::log_artifact`].
pub async fn create_job(
    backend: &dyn Backend,
    project: &ProjectRef,
    name: &str,
    code_dir: &Path,
    entrypoint: &[String],
) -> Result<String> {
    let mut code = Artifact::new_sdk_kind(&format!("source-{name}"), "code")?;
    code.add_dir(code_dir, AddDirOptions::default())?;
    let code = backend.log_artifact(project, &code, &LogOptions::default()).await?;
    let requirements = std::fs::read_to_string(code_dir.join("requirements.txt")).unwrap_or_default();
    let info = json!({
        "_version": "v0",
        "source_type": "artifact",
        "source": {"entrypoint": entrypoint, "notebook": false, "artifact": format!("wandb-artifact://_id/{}", code.version.id)},
        "input_types": {"wb_type": "typedDict", "params": {"type_map": {}}},
        "output_types": {"wb_type": "typedDict", "params": {"type_map": {}}},
        "runtime": "",
    });
    let mut job = Artifact::new_sdk_kind(name, "job")?;
    for (file, body) in [
        ("wandb-job.json", serde_json::to_string_pretty(&info).expect("JSON serialises")),
        ("requirements.frozen.txt", requirements),
    ] {
        let mut handle = job.new_file(file, NewFileOptions::default())?;
        std::io::Write::write_all(&mut handle, body.as_bytes()).map_err(|e| Error::io("write", file, e))?;
        handle.close()?;
    }
    let logged = backend.log_artifact(project, &job, &LogOptions::default()).await?;
    Ok(format!("{project}/{}", logged.version.qualified_name()))
}

/// Creates a job from a container image (`wandb job create image …`): a `job` artifact whose `wandb-job.json`
/// names the image. Named `job-<image without its tag>` (made name-safe) unless `name` is given; the tag becomes
/// an alias. Returns the job's address, `entity/project/name:vN`. Image jobs need a container runner.
///
/// # Errors
/// Name errors and the errors of [`Backend::log_artifact`].
pub async fn create_image_job(
    backend: &dyn Backend,
    project: &ProjectRef,
    image: &str,
    name: Option<&str>,
) -> Result<String> {
    let (repository, tag) = match image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
        Some((repository, tag)) => (repository, Some(tag)),
        None => (image, None),
    };
    let name = match name {
        Some(name) => name.to_owned(),
        None => {
            let safe: String = format!("job-{repository}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
                .take(artifact_core::NAME_MAX_LEN)
                .collect();
            safe
        }
    };
    let info = json!({
        "_version": "v0",
        "source_type": "image",
        "source": {"image": image},
        "input_types": {"wb_type": "typedDict", "params": {"type_map": {}}},
        "output_types": {"wb_type": "typedDict", "params": {"type_map": {}}},
        "runtime": "",
    });
    let mut job = Artifact::new_sdk_kind(&name, "job")?;
    let mut handle = job.new_file("wandb-job.json", NewFileOptions::default())?;
    std::io::Write::write_all(&mut handle, serde_json::to_string_pretty(&info).expect("JSON serialises").as_bytes())
        .map_err(|e| Error::io("write", "wandb-job.json", e))?;
    handle.close()?;
    let options = LogOptions::default().with_aliases(tag);
    let logged = backend.log_artifact(project, &job, &options).await?;
    Ok(format!("{project}/{}", logged.version.qualified_name()))
}
