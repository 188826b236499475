//! `dagster-wandb launch add | agent | create-job`: W&B Launch. Queues and agents need a W&B server
//! (`--base-url http(s)://…`); jobs can be created on either backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Map, Value};
use wandb_launch::{
    AgentConfig, LaunchAgent, LaunchRequest, QueuedRun, RunQueues, Waiting, create_image_job, create_job,
};

use super::output::{print_json, print_line};
use super::{Backend, CliError, CliResult};

#[derive(Debug, Subcommand)]
pub(crate) enum LaunchCommand {
    /// Enqueue a job or an image on a run queue (`launch_add`).
    Add {
        /// The job, ENTITY/PROJECT/NAME:ALIAS.
        #[arg(long, conflicts_with = "docker_image", required_unless_present = "docker_image")]
        job: Option<String>,
        /// A prebuilt image instead of a job.
        #[arg(long)]
        docker_image: Option<String>,
        /// The queue.
        #[arg(long, default_value = "default")]
        queue: String,
        /// The runner: local-process, local-container, …
        #[arg(long)]
        resource: Option<String>,
        /// Replaces the job's entrypoint (repeat for each word).
        #[arg(long = "entry-point", value_name = "WORD")]
        entry_point: Vec<String>,
        /// The launch config (the spec skeleton), e.g. '{"overrides": {"run_config": {"lr": 0.1}}}'.
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// The run's display name.
        #[arg(long)]
        name: Option<String>,
        /// 0 (critical) to 3 (low).
        #[arg(long)]
        priority: Option<i64>,
        /// Wait until the launched run ends.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a launch agent on queues until interrupted (SIGINT/SIGTERM) or told to stop polling.
    Agent {
        /// A queue to poll (repeatable; polled round-robin).
        #[arg(long = "queue", short = 'q', required = true)]
        queues: Vec<String>,
        /// Jobs at once; -1 for no limit.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        max_jobs: i64,
        /// Seconds between polls of empty queues.
        #[arg(long, default_value_t = 10.0)]
        poll_interval: f64,
    },
    /// Create a job: from a code directory (the code as a `code` artifact, and a `job` artifact pointing at it),
    /// or from a container image (--image).
    CreateJob {
        /// The code directory.
        #[arg(required_unless_present = "image", conflicts_with = "image")]
        path: Option<std::path::PathBuf>,
        /// A container image instead of code (its tag becomes an alias of the job).
        #[arg(long)]
        image: Option<String>,
        /// The job's name (required for a code directory; default `job-<image>` for an image).
        #[arg(long, required_unless_present = "image")]
        name: Option<String>,
        /// The command that runs the code (repeat for each word), e.g. --entry-point python --entry-point main.py.
        #[arg(long = "entry-point", value_name = "WORD", required_unless_present = "image")]
        entry_point: Vec<String>,
    },
}

/// Runs a launch future on wandb-api's process-wide runtime.
/// How often `launch add --wait` says what it is waiting for.
const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(30);

/// What `launch add --wait` is waiting for, on one line.
fn waiting_line(queued: &QueuedRun, waiting: &Waiting, waited: Duration) -> String {
    let waited = waited.as_secs();
    match waiting {
        Waiting::ForAgent { item_state } => format!(
            "launch: waiting for an agent to take the run off queue {} (item {item_state}, {waited} s so far;              is an agent polling this queue?)",
            queued.queue
        ),
        Waiting::ForRun { run_id, run_state } => format!(
            "launch: waiting for run {}/{}/{run_id} to end ({}, {waited} s so far)",
            queued.entity,
            queued.project,
            run_state.as_deref().unwrap_or("not started yet")
        ),
        _ => format!("launch: waiting for the run of queue {} ({waited} s so far)", queued.queue),
    }
}

fn block<T: Send>(future: impl std::future::Future<Output = wandb_launch::Result<T>> + Send) -> CliResult<T> {
    Ok(wandb_api::block_on(async { Ok(future.await) })??)
}

pub(crate) fn run(backend: &Backend, command: &LaunchCommand) -> CliResult {
    // Launch creates runs and queues, as logging does.
    let api = backend.api_creating_store()?;
    let settings = api.settings().clone();
    let run_queues = || {
        api.backend().as_client().cloned().map(RunQueues::new).ok_or_else(|| {
            CliError::Usage(
                "launch needs a W&B server (--base-url http(s)://… or WANDB_BASE_URL); `dagster-wandb server` serves one over a store".to_owned(),
            )
        })
    };
    match command {
        LaunchCommand::Add {
            job,
            docker_image,
            queue,
            resource,
            entry_point,
            config,
            name,
            priority,
            wait,
            timeout,
            json,
        } => {
            let config: Map<String, Value> = match config {
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| CliError::Usage(format!("--config {text:?} is not a JSON object: {e}")))?,
                None => Map::new(),
            };
            let request = LaunchRequest {
                job: job.clone(),
                docker_image: docker_image.clone(),
                entity: settings.entity.clone(),
                project: Some(settings.project.clone()).filter(|p| p != artifact_core::DEFAULT_PROJECT),
                queue: Some(queue.clone()),
                resource: resource.clone(),
                entry_point: (!entry_point.is_empty()).then(|| entry_point.clone()),
                name: name.clone(),
                config,
                priority: *priority,
                ..Default::default()
            };
            let queues = run_queues()?;
            let queued = block(queues.launch_add(&request))?;
            let finished = if *wait {
                if !*json {
                    // Said before the wait, which may be long.
                    print_line(&format!("launch: Added run to queue {}.", queued.queue))?;
                }
                let mut last_said = Duration::ZERO;
                let say_what_it_waits_for = |waiting: &Waiting, waited: Duration| {
                    if waited < last_said + WAIT_NOTICE_EVERY {
                        return;
                    }
                    last_said = waited;
                    super::output::notice(&waiting_line(&queued, waiting, waited));
                };
                let waited = block(queues.wait_until_finished_reporting(
                    &queued,
                    Duration::from_secs(*timeout),
                    Duration::from_secs(5),
                    say_what_it_waits_for,
                ))?;
                Some(waited)
            } else {
                None
            };
            if *json {
                return print_json(&serde_json::json!({
                    "queue": queued.queue, "run_queue_item_id": queued.item_id, "entity": queued.entity,
                    "project": queued.project, "run_id": finished.as_ref().map(|f| &f.0),
                    "state": finished.as_ref().map(|f| &f.1),
                }));
            }
            if !*wait {
                print_line(&format!("launch: Added run to queue {}.", queued.queue))?;
            }
            if let Some((run_id, state)) = finished {
                print_line(&format!("launch: run {}/{}/{run_id} ended {state}", queued.entity, queued.project))?;
            }
            Ok(())
        }
        LaunchCommand::Agent { queues, max_jobs, poll_interval } => {
            let max_jobs = match *max_jobs {
                -1 => None,
                n if n > 0 => Some(n as usize),
                n => {
                    return Err(CliError::Usage(format!(
                        "Error when parsing LaunchAgent config key: ['max_jobs': {n}]. Error: negative value."
                    )));
                }
            };
            let config = AgentConfig {
                entity: settings.entity.clone(),
                queues: queues.clone(),
                max_jobs,
                poll_interval: Duration::from_secs_f64(poll_interval.max(0.05)),
            };
            run_queues()?;
            let mut agent = LaunchAgent::register(api.clone(), config)?;
            let shutdown = Arc::new(AtomicBool::new(false));
            let flag = shutdown.clone();
            wandb_api::runtime()?.spawn(async move {
                wait_for_termination().await;
                flag.store(true, Ordering::Relaxed);
            });
            super::output::notice(&format!("agent {} polling on queues {}", agent.name(), queues.join(", ")));
            let report = agent.run(&shutdown)?;
            super::output::notice(&format!(
                "agent {} stopped: {} succeeded, {} failed, {} stopped",
                agent.name(),
                report.succeeded,
                report.failed,
                report.stopped
            ));
            Ok(())
        }
        LaunchCommand::CreateJob { path, image, name, entry_point } => {
            let project = api.project();
            let backend = api.backend().as_ref();
            let job = match (path, image) {
                (Some(path), None) => {
                    let name = name.as_deref().unwrap_or_default();
                    block(create_job(backend, &project, name, path, entry_point))?
                }
                (None, Some(image)) => block(create_image_job(backend, &project, image, name.as_deref()))?,
                _ => return Err(CliError::Usage("give a code directory or --image".to_owned())),
            };
            print_line(&job)
        }
    }
}

/// SIGINT or SIGTERM (Ctrl-C elsewhere).
pub(crate) async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
