//! Run queues, client side: the launch spec (`runSpec`) as wandb 0.31.0 builds it, enqueueing (`launch_add`),
//! and waiting for the launched run — with a timeout and every final state, where the SDK loops forever on
//! `killed`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use wandb_api::ProjectRef;
use wandb_api::client::WandbClient;

use crate::error::{Error, Result};

/// The project that owns every run queue of an entity.
pub const LAUNCH_PROJECT: &str = "model-registry";

/// What to launch and where (the arguments of `launch_add`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchRequest {
    /// A job, `entity/project/name:alias`.
    pub job: Option<String>,
    /// A prebuilt image (exactly one of `job` and `docker_image`).
    pub docker_image: Option<String>,
    /// The launched run's entity.
    pub entity: String,
    /// The launched run's project (defaults to the job's project).
    pub project: Option<String>,
    /// The queue (`default` when absent).
    pub queue: Option<String>,
    /// The queue's entity, when it differs from `entity`.
    pub queue_entity: Option<String>,
    /// The runner (`local-process`, `local-container`, …).
    pub resource: Option<String>,
    /// Replaces the job's entrypoint.
    pub entry_point: Option<Vec<String>>,
    /// The run's display name.
    pub name: Option<String>,
    /// The run id (the agent picks one when absent).
    pub run_id: Option<String>,
    /// A git version (stored, unused for job sources).
    pub version: Option<String>,
    /// Per-resource arguments.
    pub resource_args: Option<Value>,
    /// The spec skeleton: `overrides` (`run_config`, `args`, …), `builder`, … — `launch_add`'s `config`.
    pub config: Map<String, Value>,
    /// Template variables for the queue's resource config.
    pub template_variables: Option<Map<String, Value>>,
    /// 0 (critical) to 3 (low).
    pub priority: Option<i64>,
}

/// Builds the launch spec as `construct_launch_spec` does, key order included, and checks it.
///
/// ```
/// use wandb_launch::{LaunchRequest, launch_spec};
/// let mut request = LaunchRequest {
///     job: Some("ent/proj/job-main:latest".into()),
///     entity: "ent".into(),
///     project: Some("proj".into()),
///     resource: Some("local-process".into()),
///     entry_point: Some(vec!["python".into(), "main.py".into()]),
///     ..Default::default()
/// };
/// request.config = serde_json::json!({"overrides": {"run_config": {"lr": 0.1}, "args": ["--epochs", "2"]}})
///     .as_object().unwrap().clone();
/// let spec = serde_json::Value::Object(launch_spec(&request)?).to_string();
/// assert_eq!(spec, r#"{"overrides":{"run_config":{"lr":0.1},"args":["--epochs","2"],"entry_point":["python","main.py"]},"job":"ent/proj/job-main:latest","entity":"ent","project":"proj","docker":{},"resource":"local-process","git":{}}"#);
/// # Ok::<(), wandb_launch::Error>(())
/// ```
///
/// # Errors
/// [`Error::LaunchSpec`]: not exactly one of job and image, an image with `local-process`, override args that
/// are not a list of strings.
pub fn launch_spec(request: &LaunchRequest) -> Result<Map<String, Value>> {
    let mut spec = request.config.clone();
    if let Some(job) = &request.job {
        spec.insert("job".into(), job.clone().into());
    }
    let project = request
        .project
        .clone()
        .or_else(|| spec.get("project").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            let parts: Vec<&str> = request.job.as_deref()?.split('/').collect();
            (parts.len() == 3).then(|| parts[1].to_owned())
        })
        .unwrap_or_default();
    let entity = spec.get("entity").and_then(Value::as_str).map_or_else(|| request.entity.clone(), str::to_owned);
    spec.insert("entity".into(), entity.into());
    spec.insert("project".into(), project.into());
    if let Some(name) = &request.name {
        spec.insert("name".into(), name.clone().into());
    }
    let docker = spec.entry("docker").or_insert_with(|| json!({}));
    if let Some(image) = &request.docker_image {
        docker["docker_image"] = image.clone().into();
    }
    if !spec.contains_key("resource") {
        spec.insert("resource".into(), request.resource.clone().map_or(Value::Null, Value::String));
    }
    let git = spec.entry("git").or_insert_with(|| json!({}));
    if let Some(version) = &request.version {
        git["version"] = version.clone().into();
    }
    let overrides = spec.entry("overrides").or_insert_with(|| json!({}));
    if overrides.get("args").is_some_and(|args| !args.as_array().is_some_and(|a| a.iter().all(Value::is_string))) {
        return Err(Error::LaunchSpec { reason: "override args must be a list of strings".to_owned() });
    }
    if let Some(entry_point) = &request.entry_point {
        overrides["entry_point"] = json!(entry_point);
    }
    if let Some(resource_args) = &request.resource_args {
        spec.insert("resource_args".into(), resource_args.clone());
    }
    if let Some(run_id) = &request.run_id {
        spec.insert("run_id".into(), run_id.clone().into());
    }
    if let Some(queue_entity) = &request.queue_entity {
        spec.insert("queue_entity".into(), queue_entity.clone().into());
    }
    let has_job = spec.get("job").and_then(Value::as_str).is_some_and(|j| !j.is_empty());
    let image =
        spec.get("docker").and_then(|d| d.get("docker_image")).and_then(Value::as_str).filter(|i| !i.is_empty());
    if has_job == image.is_some() {
        return Err(Error::LaunchSpec {
            reason: "Exactly one of job or docker_image must be specified in the launch spec.".to_owned(),
        });
    }
    if image.is_some() && spec.get("resource").and_then(Value::as_str) == Some("local-process") {
        return Err(Error::LaunchSpec {
            reason: "Cannot specify docker image with local-process resource runner".to_owned(),
        });
    }
    Ok(spec)
}

/// An enqueued run (`QueuedRun`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedRun {
    /// The launched run's entity.
    pub entity: String,
    /// The launched run's project.
    pub project: String,
    /// The queue.
    pub queue: String,
    /// The run queue item's id.
    pub item_id: String,
}

/// A run queue item as the queue reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    /// `PENDING`, `LEASED`, `CLAIMED`, `FAILED`, …
    pub state: String,
    /// The launched run, once an agent acknowledged the item.
    pub run_id: Option<String>,
}

/// The states a run ends in.
pub const FINAL_RUN_STATES: [&str; 4] = ["finished", "failed", "crashed", "killed"];

/// What [`RunQueues::wait_until_finished_reporting`] is still waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// For an agent to take the item off the queue and start its run.
    ForAgent {
        /// The item's state on the queue (`PENDING`, `LEASED`, `CLAIMED`, …).
        item_state: String,
    },
    /// For the launched run to end.
    ForRun {
        /// The run.
        run_id: String,
        /// Its state, once the server knows the run (`running`, `pending`, …).
        run_state: Option<String>,
    },
}

/// The run queues of a W&B server: enqueueing launches and following them.
#[derive(Clone, Debug)]
pub struct RunQueues {
    client: WandbClient,
}

impl RunQueues {
    /// The run queues of `client`'s server.
    pub fn new(client: WandbClient) -> Self {
        RunQueues { client }
    }

    /// The client.
    pub fn client(&self) -> &WandbClient {
        &self.client
    }

    /// Enqueues a launch (`launch_add`): `pushToRunQueueByName`, falling back to finding the queue by name and
    /// `pushToRunQueue` (creating the `default` queue when that is the one asked for and missing).
    ///
    /// # Errors
    /// [`Error::LaunchSpec`] for a bad request; [`Error::LaunchQueue`] when the queue is missing or ambiguous;
    /// GraphQL and HTTP errors.
    pub async fn launch_add(&self, request: &LaunchRequest) -> Result<QueuedRun> {
        let mut spec = launch_spec(request)?;
        let mut template_variables = request.template_variables.clone();
        if let Some(Value::Object(from_spec)) = spec.remove("template_variables") {
            let mut merged = from_spec;
            merged.extend(template_variables.unwrap_or_default());
            template_variables = Some(merged);
        }
        let entity = spec
            .get("queue_entity")
            .and_then(Value::as_str)
            .or_else(|| spec.get("entity").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let queue = request.queue.clone().unwrap_or_else(|| "default".to_owned());
        let run_spec = Value::Object(spec.clone()).to_string();
        let mut declared = String::new();
        let mut fields = String::new();
        let mut variables =
            json!({"entityName": entity, "projectName": LAUNCH_PROJECT, "queueName": queue, "runSpec": run_spec});
        if let Some(priority) = request.priority {
            declared.push_str(", $priority: Int");
            fields.push_str(", priority: $priority");
            variables["priority"] = priority.into();
        }
        if let Some(template) = &template_variables {
            declared.push_str(", $templateVariableValues: JSONString");
            fields.push_str(", templateVariableValues: $templateVariableValues");
            variables["templateVariableValues"] = Value::Object(template.clone()).to_string().into();
        }
        let query = format!(
            "mutation pushToRunQueueByName($entityName: String!, $projectName: String!, $queueName: String!, $runSpec: JSONString!{declared}) {{
  pushToRunQueueByName(input: {{entityName: $entityName, projectName: $projectName, queueName: $queueName, runSpec: $runSpec{fields}}}) {{ runQueueItemId runSpec }}
}}"
        );
        let pushed = self.client.graphql("pushToRunQueueByName", &query, variables).await.ok().and_then(|data| {
            data.pointer("/pushToRunQueueByName/runQueueItemId").and_then(Value::as_str).map(str::to_owned)
        });
        let item_id = match pushed {
            Some(id) => id,
            None if request.priority.is_some() => {
                return Err(Error::LaunchQueue { reason: format!("Error adding run to queue {queue}") });
            }
            None => self.push_by_queue_id(&entity, &queue, &run_spec).await?,
        };
        Ok(QueuedRun {
            entity: spec.get("entity").and_then(Value::as_str).unwrap_or_default().to_owned(),
            project: spec.get("project").and_then(Value::as_str).unwrap_or_default().to_owned(),
            queue,
            item_id,
        })
    }

    /// The legacy path of `push_to_run_queue`.
    async fn push_by_queue_id(&self, entity: &str, queue: &str, run_spec: &str) -> Result<String> {
        let queues = self.run_queues(entity).await?;
        let matching: Vec<&(String, String)> = queues.iter().filter(|(_, name)| name == queue).collect();
        let queue_id = match matching.as_slice() {
            [(id, _)] => id.clone(),
            [] if queue == "default" => self.create_run_queue(entity, "default").await?,
            [] => {
                return Err(Error::LaunchQueue {
                    reason: format!("Unable to push to run queue {queue}. Queue not found."),
                });
            }
            _ => {
                return Err(Error::LaunchQueue {
                    reason: format!("Unable to push to run queue {queue}. More than one queue found with this name."),
                });
            }
        };
        let data = self
            .client
            .graphql(
                "pushToRunQueue",
                "mutation pushToRunQueue($queueID: ID!, $runSpec: JSONString!) { pushToRunQueue(input: {queueID: $queueID, runSpec: $runSpec}) { runQueueItemId } }",
                json!({"queueID": queue_id, "runSpec": run_spec}),
            )
            .await?;
        data.pointer("/pushToRunQueue/runQueueItemId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::LaunchQueue { reason: format!("Error pushing run queue item to queue {queue}.") })
    }

    /// The run queues of `entity`, as `(id, name)`.
    ///
    /// # Errors
    /// GraphQL and HTTP errors.
    pub async fn run_queues(&self, entity: &str) -> Result<Vec<(String, String)>> {
        let data = self
            .client
            .graphql(
                "ProjectRunQueues",
                "query ProjectRunQueues($entity: String!, $projectName: String!){ project(entityName: $entity, name: $projectName) { runQueues { id name createdBy access } } }",
                json!({"entity": entity, "projectName": LAUNCH_PROJECT}),
            )
            .await?;
        Ok(data
            .pointer("/project/runQueues")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|q| Some((q.get("id")?.as_str()?.to_owned(), q.get("name")?.as_str()?.to_owned())))
            .collect())
    }

    /// Creates run queue `name` of `entity` (project-wide access); returns its id.
    ///
    /// # Errors
    /// [`Error::LaunchQueue`] when the server refuses; GraphQL and HTTP errors.
    pub async fn create_run_queue(&self, entity: &str, name: &str) -> Result<String> {
        let data = self
            .client
            .graphql(
                "CreateRunQueue",
                "mutation CreateRunQueue ($entity: String!, $project: String!, $queueName: String!, $access: RunQueueAccessType!, $prioritizationMode: RunQueuePrioritizationMode, $defaultResourceConfigID: ID) { createRunQueue(input: {entityName:$entity,projectName:$project,queueName:$queueName,access:$access,prioritizationMode:$prioritizationMode,defaultResourceConfigID:$defaultResourceConfigID}) { success queueID } }",
                json!({"entity": entity, "project": LAUNCH_PROJECT, "queueName": name, "access": "PROJECT", "prioritizationMode": null, "defaultResourceConfigID": null}),
            )
            .await?;
        let created = data.get("createRunQueue").cloned().unwrap_or(Value::Null);
        match (created.get("success").and_then(Value::as_bool), created.get("queueID").and_then(Value::as_str)) {
            (Some(true), Some(id)) => Ok(id.to_owned()),
            _ => Err(Error::LaunchQueue { reason: format!("Unable to create queue {name} for entity {entity}") }),
        }
    }

    /// The item of `queued`, as the queue reports it (`None` when the queue no longer has it).
    ///
    /// # Errors
    /// GraphQL and HTTP errors.
    pub async fn queue_item(&self, queued: &QueuedRun) -> Result<Option<QueueItem>> {
        let data = self
            .client
            .graphql(
                "GetRunQueueItem",
                "query GetRunQueueItem($projectName: String!, $entityName: String!, $runQueue: String!, $itemId: ID!) { project(name: $projectName, entityName: $entityName) { runQueue(name: $runQueue) { runQueueItem(id: $itemId) { id state associatedRunId } } } }",
                json!({"projectName": LAUNCH_PROJECT, "entityName": queued.entity, "runQueue": queued.queue, "itemId": queued.item_id}),
            )
            .await?;
        Ok(data.pointer("/project/runQueue/runQueueItem").filter(|i| !i.is_null()).map(|item| QueueItem {
            state: item.get("state").and_then(Value::as_str).unwrap_or_default().to_owned(),
            run_id: item.get("associatedRunId").and_then(Value::as_str).map(str::to_owned),
        }))
    }

    /// The state of run `run_id` (`running`, `finished`, `failed`, `crashed`, `killed`), `None` before it exists.
    ///
    /// # Errors
    /// GraphQL and HTTP errors.
    pub async fn run_state(&self, project: &ProjectRef, run_id: &str) -> Result<Option<String>> {
        let data = self
            .client
            .graphql(
                "RunState",
                "query RunState($project: String!, $entity: String!, $name: String!) { project(name: $project, entityName: $entity) { run(name: $name) { state } } }",
                json!({"project": project.project(), "entity": project.entity(), "name": run_id}),
            )
            .await?;
        Ok(data.pointer("/project/run/state").and_then(Value::as_str).map(str::to_owned))
    }

    /// Waits until the launched run ends (any of [`FINAL_RUN_STATES`]) and returns its id and state, polling
    /// every `poll`. Unlike the SDK, a failed queue item and `killed` end the wait, and `timeout` bounds it.
    ///
    /// # Errors
    /// [`Error::LaunchFailed`] when the item failed; [`Error::LaunchTimeout`]; GraphQL and HTTP errors.
    pub async fn wait_until_finished(
        &self,
        queued: &QueuedRun,
        timeout: Duration,
        poll: Duration,
    ) -> Result<(String, String)> {
        self.wait_until_finished_reporting(queued, timeout, poll, |_, _| {}).await
    }

    /// [`RunQueues::wait_until_finished`], telling `report` after each poll what it is still waiting for and
    /// for how long, so a caller can say so (a wait may last an hour).
    ///
    /// # Errors
    /// As [`RunQueues::wait_until_finished`].
    pub async fn wait_until_finished_reporting(
        &self,
        queued: &QueuedRun,
        timeout: Duration,
        poll: Duration,
        mut report: impl FnMut(&Waiting, Duration),
    ) -> Result<(String, String)> {
        let started = Instant::now();
        let project = ProjectRef::new(&queued.entity, &queued.project)?;
        let mut run_id: Option<String> = None;
        loop {
            let mut waiting = None;
            if run_id.is_none() {
                match self.queue_item(queued).await? {
                    Some(item) if item.state == "FAILED" => {
                        return Err(Error::LaunchFailed { item_id: queued.item_id.clone(), state: item.state });
                    }
                    Some(item) => {
                        run_id = item.run_id;
                        waiting = Some(Waiting::ForAgent { item_state: item.state });
                    }
                    None => {
                        return Err(Error::LaunchFailed {
                            item_id: queued.item_id.clone(),
                            state: "DELETED".to_owned(),
                        });
                    }
                }
            }
            if let Some(id) = &run_id {
                let state = self.run_state(&project, id).await?;
                if let Some(state) = state.as_ref().filter(|s| FINAL_RUN_STATES.contains(&s.as_str())) {
                    return Ok((id.clone(), state.clone()));
                }
                if let Some(item) = self.queue_item(queued).await?.filter(|i| i.state == "FAILED") {
                    return Err(Error::LaunchFailed { item_id: queued.item_id.clone(), state: item.state });
                }
                waiting = Some(Waiting::ForRun { run_id: id.clone(), run_state: state });
            }
            if let Some(waiting) = &waiting {
                report(waiting, started.elapsed());
            }
            if started.elapsed() + poll > timeout {
                return Err(Error::LaunchTimeout { item_id: queued.item_id.clone(), waited: started.elapsed() });
            }
            tokio::time::sleep(poll).await;
        }
    }
}
