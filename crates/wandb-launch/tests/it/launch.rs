//! W&B Launch against our server: enqueue, our agent runs a local-process job whose run finishes, the waiter
//! returns; a failing job is reported with its output; a stop request ends the job; bad requests are refused.
//!
//! The job is this test binary run again (`launch_job_process`), which logs to a W&B run from the `WANDB_*`
//! environment the agent gives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use wandb_api::{Api, ProjectRef, RunSettings, Settings};
use wandb_launch::{
    AgentConfig, AgentReport, LaunchAgent, LaunchRequest, QueuedRun, RunQueues, create_job, launch_spec,
};
use wandb_server::{RunningServer, ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

const JOB_TEST: &str = "launch::launch_job_process";

/// The launched job: does nothing unless the agent started it.
#[test]
fn launch_job_process() {
    if std::env::var("WANDB_LAUNCH").as_deref() != Ok("True") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    // The agent's environment names the server, key, entity and project.
    let api = Api::from_env().unwrap();
    let config = serde_json::from_str::<serde_json::Value>(&env("WANDB_CONFIG")).unwrap().as_object().cloned().unwrap();
    let mut run = api.init(RunSettings::default().id(&env("WANDB_RUN_ID")).config(config)).unwrap();
    run.log(
        json!({"artifacts": env("WANDB_ARTIFACTS"), "queue": env("WANDB_LAUNCH_QUEUE_NAME")})
            .as_object()
            .cloned()
            .unwrap(),
    )
    .unwrap();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "mode_sleep") {
        std::thread::sleep(Duration::from_secs(60));
    }
    if args.iter().any(|a| a == "mode_fail") {
        let _ = std::io::Write::write_all(&mut std::io::stdout(), b"the job fails on purpose\n");
        run.finish_with_exit_code(3).unwrap();
        std::process::exit(3);
    }
    run.finish().unwrap();
}

struct Launch {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    server: Option<RunningServer>,
    api: Api,
    queues: RunQueues,
    job: String,
}

/// Runs a launch future on wandb-api's runtime.
fn block<T: Send>(
    future: impl std::future::Future<Output = wandb_launch::Result<T>> + Send,
) -> wandb_launch::Result<T> {
    wandb_api::block_on(async { Ok(future.await) }).unwrap()
}

impl Launch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("store")).unwrap();
        let server = wandb_api::runtime().unwrap().block_on(async {
            WandbServer::bind(store.clone(), "127.0.0.1:0".parse().unwrap(), ServerOptions::default())
                .await
                .unwrap()
                .spawn()
        });
        let settings = Settings::server(server.base_url(), Some("key".into())).with_entity("ent").with_project("proj");
        let api = Api::new(settings.with_cache_dir(Some(dir.path().join("cache")))).unwrap();
        let queues = RunQueues::new(api.backend().as_client().unwrap().clone());
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("README.md"), "the job is the test binary\n").unwrap();
        let exe = std::env::current_exe().unwrap().to_string_lossy().into_owned();
        let entrypoint = vec![exe, JOB_TEST.to_owned(), "--exact".to_owned(), "--nocapture".to_owned()];
        let project = ProjectRef::new("ent", "proj").unwrap();
        let job = block(create_job(api.backend().as_ref(), &project, "job-main", &code, &entrypoint)).unwrap();
        block(queues.create_run_queue("ent", "q1")).unwrap();
        Launch { _dir: dir, store, server: Some(server), api, queues, job }
    }

    fn agent(&self, queues: &[&str]) -> wandb_launch::Result<LaunchAgent> {
        let config = AgentConfig {
            entity: "ent".into(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
            max_jobs: Some(2),
            poll_interval: Duration::from_millis(100),
        };
        LaunchAgent::register(self.api.clone(), config)
    }

    fn add(&self, args: &[&str], resource: &str) -> QueuedRun {
        let mut request = LaunchRequest {
            job: Some(self.job.clone()),
            entity: "ent".into(),
            queue: Some("q1".into()),
            resource: Some(resource.into()),
            ..Default::default()
        };
        request.config = json!({"overrides": {"run_config": {"lr": 0.1}, "args": args}}).as_object().cloned().unwrap();
        block(self.queues.launch_add(&request)).unwrap()
    }

    fn wait(&self, queued: &QueuedRun) -> wandb_launch::Result<(String, String)> {
        block(self.queues.wait_until_finished(queued, Duration::from_secs(60), Duration::from_millis(100)))
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            wandb_api::runtime().unwrap().block_on(server.shutdown());
        }
    }
}

fn with_agent<T>(launch: &Launch, body: impl FnOnce() -> T) -> (T, AgentReport) {
    let mut agent = launch.agent(&["q1"]).unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let handle = std::thread::spawn(move || agent.run(&flag));
    let result = body();
    shutdown.store(true, Ordering::Relaxed);
    (result, handle.join().unwrap().unwrap())
}

#[test]
fn a_queued_job_runs_on_our_agent_and_the_waiter_sees_its_run_finish() {
    let launch = Launch::new();
    assert!(launch.job.starts_with("ent/proj/job-main:v0"), "{}", launch.job);
    let queued = launch.add(&[], "local-process");
    assert_eq!((queued.entity.as_str(), queued.project.as_str(), queued.queue.as_str()), ("ent", "proj", "q1"));
    let ((run_id, state), report) = with_agent(&launch, || launch.wait(&queued).unwrap());
    assert_eq!(state, "finished");
    assert_eq!(report.succeeded, 1);
    let project = ProjectRef::new("ent", "proj").unwrap();
    let history = launch.store.run_history(&project, &run_id).unwrap();
    assert_eq!(history[0]["artifacts"], json!({"_wandb_job": launch.job}).to_string(), "WANDB_ARTIFACTS names the job");
    assert_eq!(history[0]["queue"], "q1");
    assert_eq!(launch.store.run_status(&project, &run_id).unwrap().config["lr"], 0.1, "WANDB_CONFIG became the config");
    let item = block(launch.queues.queue_item(&queued)).unwrap().unwrap();
    assert_eq!((item.state.as_str(), item.run_id.as_deref()), ("CLAIMED", Some(run_id.as_str())));
}

#[test]
fn a_failing_job_is_reported_and_a_stopped_one_ends_killed() {
    let launch = Launch::new();
    let failing = launch.add(&["mode_fail"], "local-process");
    let sleeping = launch.add(&["mode_sleep"], "local-process");
    let unsupported = launch.add(&[], "kubernetes");
    let ((failed, stopped, refused), report) = with_agent(&launch, || {
        let failed = launch.wait(&failing);
        // Stop the sleeping job's run once it exists, as the W&B UI would.
        let run_id = loop {
            if let Some(run_id) = block(launch.queues.queue_item(&sleeping)).unwrap().and_then(|i| i.run_id) {
                break run_id;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        wandb_api::block_on(launch.queues.client().graphql(
            "stopRun",
            "mutation stopRun($entity: String, $project: String, $name: String) { stopRun }",
            json!({"entity": "ent", "project": "proj", "name": run_id}),
        ))
        .unwrap();
        let stopped = launch.wait(&sleeping);
        let refused = launch.wait(&unsupported);
        (failed, stopped, refused)
    });
    // The run ended failed (exit code 3), or the item failed first: either way the item is FAILED.
    match failed {
        Ok((_, state)) => assert_eq!(state, "failed"),
        Err(e) => assert!(e.to_string().contains("FAILED"), "{e}"),
    }
    let item = block(launch.queues.queue_item(&failing)).unwrap().unwrap();
    assert_eq!(item.state, "FAILED");
    assert_eq!(stopped.unwrap().1, "killed");
    let refused = refused.unwrap_err().to_string();
    assert!(refused.contains("FAILED"), "{refused}");
    assert_eq!((report.failed, report.stopped), (2, 1), "{report:?}");
}

#[test]
fn bad_requests_and_missing_queues_are_refused_by_name() {
    let both = LaunchRequest {
        job: Some("e/p/j:v0".into()),
        docker_image: Some("img".into()),
        entity: "e".into(),
        ..Default::default()
    };
    assert_eq!(
        launch_spec(&both).unwrap_err().to_string(),
        "invalid launch spec: Exactly one of job or docker_image must be specified in the launch spec."
    );
    let image = LaunchRequest {
        docker_image: Some("img".into()),
        resource: Some("local-process".into()),
        entity: "e".into(),
        ..Default::default()
    };
    assert!(launch_spec(&image).unwrap_err().to_string().contains("Cannot specify docker image with local-process"));
    let mut args = LaunchRequest { job: Some("e/p/j:v0".into()), entity: "e".into(), ..Default::default() };
    args.config = json!({"overrides": {"args": "--epochs 2"}}).as_object().cloned().unwrap();
    assert!(launch_spec(&args).unwrap_err().to_string().contains("override args must be a list of strings"));

    let launch = Launch::new();
    let error = launch.agent(&["q1", "nope"]).unwrap_err().to_string();
    assert_eq!(
        error,
        "Could not start launch agent: Not all of requested queues (q1, nope) found. Available queues for this project: q1"
    );
    let missing = LaunchRequest {
        job: Some(launch.job.clone()),
        entity: "ent".into(),
        queue: Some("ghost".into()),
        ..Default::default()
    };
    let error = block(launch.queues.launch_add(&missing)).unwrap_err().to_string();
    assert_eq!(error, "Unable to push to run queue ghost. Queue not found.");
    // The default queue is created when it is the one asked for, as the SDK does.
    let default = LaunchRequest { job: Some(launch.job.clone()), entity: "ent".into(), ..Default::default() };
    let queued = block(launch.queues.launch_add(&default)).unwrap();
    assert_eq!(queued.queue, "default");

    // An image job: named after the image, its tag an alias.
    let project = ProjectRef::new("ent", "proj").unwrap();
    let job = block(wandb_launch::create_image_job(
        launch.api.backend().as_ref(),
        &project,
        "ghcr.io/acme/train:release",
        None,
    ))
    .unwrap();
    assert_eq!(job, "ent/proj/job-ghcr.io_acme_train:v0");
    let version = launch.store.artifact(&project, "job-ghcr.io_acme_train", "release").unwrap();
    assert_eq!(version.artifact_type, "job");
}

/// A wait reports after each poll what it still waits for: an agent while none has taken the item, then the run.
#[test]
fn a_wait_says_what_it_is_waiting_for() {
    use wandb_launch::Waiting;
    let launch = Launch::new();
    let queued = launch.add(&[], "local-process");
    let mut seen = Vec::new();
    let outcome = block(launch.queues.wait_until_finished_reporting(
        &queued,
        Duration::from_millis(600),
        Duration::from_millis(100),
        |waiting, waited| seen.push((waiting.clone(), waited)),
    ));
    assert!(matches!(outcome, Err(wandb_launch::Error::LaunchTimeout { .. })), "{outcome:?}");
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.iter().all(|(w, _)| *w == Waiting::ForAgent { item_state: "PENDING".into() }), "{seen:?}");
    assert!(seen.windows(2).all(|pair| pair[0].1 <= pair[1].1), "time only moves forward: {seen:?}");

    let mut seen = Vec::new();
    let ((run_id, state), _) = with_agent(&launch, || {
        block(launch.queues.wait_until_finished_reporting(
            &queued,
            Duration::from_secs(60),
            Duration::from_millis(100),
            |waiting, _| seen.push(waiting.clone()),
        ))
        .unwrap()
    });
    assert_eq!(state, "finished");
    // Whatever it reported about a run was about the one that finished.
    for waiting in &seen {
        if let Waiting::ForRun { run_id: reported, .. } = waiting {
            assert_eq!(reported, &run_id);
        }
    }
}
