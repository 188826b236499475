//! W&B Launch on the server: run queues (in project `model-registry` of their entity), their items, and launch
//! agents — what `launch_add`, `QueuedRun` and `wandb launch-agent` (and ours) speak. Kept in memory, like
//! pending artifacts: a restarted server starts with no queues.
//!
//! Item states: `PENDING` → (`popFromRunQueue`) `LEASED` → (`ackRunQueueItem`) `CLAIMED`, or `FAILED`
//! (`failRunQueueItem`); a lease not acknowledged within a minute returns to `PENDING`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::ServerState;
use super::graphql::{GqlError, GqlResult};
use super::views::{decode_global_id, global_id};
use wandb_store::ProjectRef;

/// A lease not acknowledged for this long is offered again ("pushed back onto the queue in 1 min").
const LEASE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct LaunchState {
    next: u64,
    queues: Vec<Queue>,
    items: Vec<Item>,
    agents: Vec<Agent>,
    /// Runs asked to stop, as `entity/project/run`.
    stopped: HashSet<String>,
}

struct Queue {
    id: String,
    entity: String,
    project: String,
    name: String,
    access: String,
    created_by: String,
}

struct Item {
    id: String,
    queue_id: String,
    spec: Map<String, Value>,
    priority: i64,
    state: &'static str,
    leased: Option<(String, Instant)>,
    associated_run_id: Option<String>,
    failure: Option<Value>,
}

struct Agent {
    id: String,
    /// The entity it registered for (`createLaunchAgent`'s `entity`).
    entity: Option<String>,
    name: String,
    queues: Vec<String>,
    hostname: String,
    status: String,
    stop_polling: bool,
    heartbeat_at: String,
}

impl LaunchState {
    /// The entity a queue, item or agent id belongs to: `None` for an unknown id, `Some(None)` for an agent that
    /// named no entity.
    pub(crate) fn entity_of(&self, id: &str) -> Option<Option<String>> {
        if let Some(queue) = self.queues.iter().find(|q| q.id == id) {
            return Some(Some(queue.entity.clone()));
        }
        if let Some(item) = self.items.iter().find(|i| i.id == id) {
            return self.queues.iter().find(|q| q.id == item.queue_id).map(|q| Some(q.entity.clone()));
        }
        self.agents.iter().find(|a| a.id == id).map(|a| a.entity.clone())
    }

    fn next_id(&mut self, kind: &str) -> (String, u64) {
        self.next += 1;
        (global_id(kind, &self.next.to_string()), self.next)
    }

    fn queue_by_name(&self, entity: &str, project: &str, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.entity == entity && q.project == project && q.name == name)
    }

    fn create_queue(&mut self, entity: &str, project: &str, name: &str, access: &str, creator: &str) -> String {
        if let Some(queue) = self.queue_by_name(entity, project, name) {
            return queue.id.clone();
        }
        let (id, _) = self.next_id("RunQueue");
        self.queues.push(Queue {
            id: id.clone(),
            entity: entity.to_owned(),
            project: project.to_owned(),
            name: name.to_owned(),
            access: access.to_owned(),
            created_by: creator.to_owned(),
        });
        id
    }

    fn push(&mut self, queue_id: &str, run_spec: &str, priority: Option<i64>) -> Result<(String, String), GqlError> {
        let spec: Map<String, Value> =
            serde_json::from_str(run_spec).map_err(|e| GqlError(format!("runSpec is not a JSON object: {e}")))?;
        let (id, _) = self.next_id("RunQueueItem");
        self.items.push(Item {
            id: id.clone(),
            queue_id: queue_id.to_owned(),
            spec,
            // W&B's priorities run from 0 (critical) to 3 (low); an unprioritized item is medium.
            priority: priority.unwrap_or(2),
            state: "PENDING",
            leased: None,
            associated_run_id: None,
            failure: None,
        });
        Ok((id, run_spec.to_owned()))
    }
}

/// Answers a launch operation, or `None` when `name` is not one.
pub(crate) fn dispatch(state: &ServerState, name: &str, v: &Value) -> Option<GqlResult> {
    let mut launch = state.launch.lock().expect("launch lock");
    let launch = &mut *launch;
    let default_entity = state.options.default_entity.as_str();
    Some(match name {
        "ProjectRunQueues" => project_run_queues(launch, v),
        "CreateRunQueue" => (|| {
            let entity = text(v, "entity")?;
            let id = launch.create_queue(
                entity,
                text(v, "project")?,
                text(v, "queueName")?,
                text(v, "access")?,
                default_entity,
            );
            Ok(json!({"createRunQueue": {"success": true, "queueID": id}}))
        })(),
        "pushToRunQueueByName" => (|| {
            let (entity, project, queue) = (text(v, "entityName")?, text(v, "projectName")?, text(v, "queueName")?);
            let queue_id = launch
                .queue_by_name(entity, project, queue)
                .map(|q| q.id.clone())
                .ok_or_else(|| GqlError(format!("run queue {queue:?} not found in {entity}/{project}")))?;
            let (id, spec) = launch.push(&queue_id, text(v, "runSpec")?, v.get("priority").and_then(Value::as_i64))?;
            Ok(json!({"pushToRunQueueByName": {"runQueueItemId": id, "runSpec": spec}}))
        })(),
        "pushToRunQueue" => (|| {
            let queue_id = text(v, "queueID")?;
            if !launch.queues.iter().any(|q| q.id == queue_id) {
                return Err(GqlError(format!("run queue {queue_id:?} not found")));
            }
            let (id, _) = launch.push(queue_id, text(v, "runSpec")?, None)?;
            Ok(json!({"pushToRunQueue": {"runQueueItemId": id}}))
        })(),
        "GetRunQueueItem" => get_run_queue_item(launch, v),
        "fetchRunQueuesFromProject" => (|| {
            // entityName is the run's entity in the SDK's query; queues are matched by project and name.
            let (project, queue) = (text(v, "projectName")?, text(v, "runQueueName")?);
            let id = launch.queues.iter().find(|q| q.project == project && q.name == queue).map(|q| q.id.clone());
            Ok(json!({"project": {"runQueue": id.map(|id| json!({"id": id}))}}))
        })(),
        "DeleteFromRunQueue" => (|| {
            let item = text(v, "runQueueItemId")?;
            let before = launch.items.len();
            launch.items.retain(|i| i.id != item);
            Ok(json!({"deleteFromRunQueue": {"success": launch.items.len() < before, "clientMutationId": null}}))
        })(),
        "popFromRunQueue" => pop(launch, v),
        "ackRunQueueItem" => (|| {
            let (item_id, run_id) = (text(v, "itemId")?, text(v, "runId")?);
            let item = launch.items.iter_mut().find(|i| i.id == item_id);
            let success = match item {
                Some(item) if item.state == "LEASED" => {
                    item.state = "CLAIMED";
                    item.associated_run_id = Some(run_id.to_owned());
                    true
                }
                _ => false,
            };
            Ok(json!({"ackRunQueueItem": {"success": success}}))
        })(),
        "failRunQueueItem" => (|| {
            let item_id = text(v, "runQueueItemId")?;
            let item = launch.items.iter_mut().find(|i| i.id == item_id);
            let success = match item {
                Some(item) => {
                    item.state = "FAILED";
                    item.failure = Some(json!({
                        "message": v.get("message"), "stage": v.get("stage"), "filePaths": v.get("filePaths"),
                    }));
                    true
                }
                None => false,
            };
            Ok(json!({"failRunQueueItem": {"success": success}}))
        })(),
        "createLaunchAgent" => {
            let (id, n) = launch.next_id("LaunchAgent");
            let queues = v
                .get("queues")
                .and_then(Value::as_array)
                .map(|q| q.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            launch.agents.push(Agent {
                id: id.clone(),
                entity: v.get("entity").or_else(|| v.get("entityName")).and_then(Value::as_str).map(str::to_owned),
                name: format!("launch-agent-{n}"),
                queues,
                hostname: v.get("hostname").and_then(Value::as_str).unwrap_or("").to_owned(),
                status: "POLLING".to_owned(),
                stop_polling: false,
                heartbeat_at: wandb_store::now_rfc3339(),
            });
            Ok(json!({"createLaunchAgent": {"launchAgentId": id}}))
        }
        "updateLaunchAgent" => (|| {
            let id = text(v, "agentId")?;
            let agent = launch.agents.iter_mut().find(|a| a.id == id);
            let success = match agent {
                Some(agent) => {
                    if let Some(status) = v.get("agentStatus").and_then(Value::as_str) {
                        status.clone_into(&mut agent.status);
                    }
                    agent.heartbeat_at = wandb_store::now_rfc3339();
                    true
                }
                None => false,
            };
            Ok(json!({"updateLaunchAgent": {"success": success}}))
        })(),
        "LaunchAgent" => (|| {
            let id = text(v, "agentId")?;
            let agent = launch.agents.iter().find(|a| a.id == id).map(|a| {
                json!({"id": a.id, "name": a.name, "runQueues": a.queues, "hostname": a.hostname,
                       "agentStatus": a.status, "stopPolling": a.stop_polling, "heartbeatAt": a.heartbeat_at})
            });
            Ok(json!({"launchAgent": agent}))
        })(),
        "stopLaunchAgent" => (|| {
            // Ours (the W&B UI's "stop polling"): the agent stops at its next tick.
            let id = text(v, "agentId")?;
            let agent = launch.agents.iter_mut().find(|a| a.id == id);
            let success = agent.map(|a| a.stop_polling = true).is_some();
            Ok(json!({"stopLaunchAgent": {"success": success}}))
        })(),
        "EntityIsTeam" => {
            let entity = v.get("entity").and_then(Value::as_str).unwrap_or(default_entity);
            Ok(json!({"entity": {"id": global_id("Entity", entity), "isTeam": false}}))
        }
        "RunState" => run_state(state, &launch.stopped, v),
        "RunStoppedStatus" => (|| {
            let (project, entity, run) = (text(v, "projectName")?, text(v, "entityName")?, text(v, "runId")?);
            let stopped = launch.stopped.contains(&format!("{entity}/{project}/{run}"));
            Ok(json!({"project": {"run": {"stopped": stopped}}}))
        })(),
        "stopRun" | "StopRun" => (|| {
            // `stopRun(input: {id})` with a run id as this server writes it, or entity/project/name variables.
            let path = match v.get("input").and_then(|i| i.get("id")).or_else(|| v.get("id")).and_then(Value::as_str) {
                Some(id) => decode_global_id(id, "Run")?,
                None => format!("{}/{}/{}", text(v, "entity")?, text(v, "project")?, text(v, "name")?),
            };
            launch.stopped.insert(path);
            Ok(json!({"stopRun": {"clientMutationId": null, "success": true}}))
        })(),
        _ => return None,
    })
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, GqlError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| GqlError(format!("variable {key} is missing or not a string")))
}

fn project_run_queues(launch: &LaunchState, v: &Value) -> GqlResult {
    let entity = text(v, "entity")?;
    let project = text(v, "projectName")?;
    let queues: Vec<Value> = launch
        .queues
        .iter()
        .filter(|q| q.entity == entity && q.project == project)
        .map(|q| json!({"id": q.id, "name": q.name, "createdBy": q.created_by, "access": q.access}))
        .collect();
    Ok(json!({"project": {"runQueues": queues}}))
}

fn get_run_queue_item(launch: &mut LaunchState, v: &Value) -> GqlResult {
    let (project, queue_name) = (text(v, "projectName")?, text(v, "runQueue")?);
    release_expired_leases(launch);
    // `entityName` is the launched run's entity, not the queue's: the queue is found by project and name.
    let Some(queue) = launch.queues.iter().find(|q| q.project == project && q.name == queue_name) else {
        return Ok(json!({"project": {"runQueue": null}}));
    };
    let view = |item: &Item| json!({"id": item.id, "state": item.state, "associatedRunId": item.associated_run_id});
    match v.get("itemId").and_then(Value::as_str) {
        Some(item_id) => {
            let item = launch.items.iter().find(|i| i.id == item_id && i.queue_id == queue.id).map(view);
            Ok(json!({"project": {"runQueue": {"runQueueItem": item}}}))
        }
        None => {
            let edges: Vec<Value> =
                launch.items.iter().filter(|i| i.queue_id == queue.id).map(|i| json!({"node": view(i)})).collect();
            Ok(json!({"project": {"runQueue": {"runQueueItems": {"edges": edges}}}}))
        }
    }
}

fn release_expired_leases(launch: &mut LaunchState) {
    for item in &mut launch.items {
        if item.state == "LEASED" && item.leased.as_ref().is_some_and(|(_, at)| at.elapsed() >= LEASE_TIMEOUT) {
            item.state = "PENDING";
            item.leased = None;
        }
    }
}

fn pop(launch: &mut LaunchState, v: &Value) -> GqlResult {
    let (entity, project, queue_name) = (text(v, "entity")?, text(v, "project")?, text(v, "queueName")?);
    let agent = v.get("launchAgentId").and_then(Value::as_str).unwrap_or("").to_owned();
    release_expired_leases(launch);
    let Some(queue_id) = launch.queue_by_name(entity, project, queue_name).map(|q| q.id.clone()) else {
        return Err(GqlError(format!("run queue {queue_name:?} not found in {entity}/{project}")));
    };
    // Highest priority first (0 is critical), then the order of arrival.
    let next =
        launch.items.iter_mut().filter(|i| i.queue_id == queue_id && i.state == "PENDING").min_by_key(|i| i.priority);
    let Some(item) = next else { return Ok(json!({"popFromRunQueue": null})) };
    item.state = "LEASED";
    item.leased = Some((agent, Instant::now()));
    Ok(json!({"popFromRunQueue": {"runQueueItemId": item.id, "runSpec": Value::Object(item.spec.clone())}}))
}

fn run_state(state: &ServerState, stopped_runs: &HashSet<String>, v: &Value) -> GqlResult {
    let project = ProjectRef::new(text(v, "entity")?, text(v, "project")?)?;
    let run_id = text(v, "name")?;
    let run = match state.store.run_status(&project, run_id) {
        Ok(status) => {
            let stopped = stopped_runs.contains(&format!("{project}/{run_id}"));
            let name = match status.state {
                wandb_store::RunState::Finished => "finished",
                wandb_store::RunState::Failed => "failed",
                _ if stopped => "killed",
                _ => "running",
            };
            json!({"state": name})
        }
        Err(wandb_store::Error::RunNotFound { .. }) => Value::Null,
        Err(e) => return Err(e.into()),
    };
    Ok(json!({"project": {"run": run}}))
}
