//! W&B Launch against our server: enqueue, our agent runs a local-process job whose run finishes, the waiter
//! returns; a failing job is reported with its output; a stop request ends the job; bad requests are refused.
//!
//! The job is this test binary run again (`launch_job_process`), which logs to a W&B run from the `WANDB_*`
//! environment the agent gives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use wandb_api::client::WandbClient;
use wandb_api::launch::{LaunchRequest, QueuedRun, launch_spec};
use wandb_api::launch_agent::{AgentConfig, LaunchAgent, create_job};
use wandb_api::run::{Run, RunSettings};
use wandb_api::server::{RunningServer, ServerOptions, WandbServer};
use wandb_api::{EmbeddedStore, ProjectRef};

const JOB_TEST: &str = "launch::launch_job_process";

/// The launched job: does nothing unless the agent started it.
#[test]
fn launch_job_process() {
    if std::env::var("WANDB_LAUNCH").as_deref() != Ok("True") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let runtime = Arc::new(tokio::runtime::Runtime::new().unwrap());
    let client = WandbClient::new(&env("WANDB_BASE_URL"), Some(env("WANDB_API_KEY"))).unwrap();
    let project = ProjectRef::new(&env("WANDB_ENTITY"), &env("WANDB_PROJECT")).unwrap();
    let config = serde_json::from_str::<Value>(&env("WANDB_CONFIG")).unwrap().as_object().cloned().unwrap();
    let settings = RunSettings { id: Some(env("WANDB_RUN_ID")), config, ..Default::default() };
    let mut run = Run::init_remote(&client, runtime, &project, settings).unwrap();
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
        run.finish(3).unwrap();
        std::process::exit(3);
    }
    run.finish(0).unwrap();
}

struct Launch {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    runtime: Arc<tokio::runtime::Runtime>,
    server: Option<RunningServer>,
    client: WandbClient,
    job: String,
}

impl Launch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("store")).unwrap();
        let runtime = Arc::new(tokio::runtime::Runtime::new().unwrap());
        let server = runtime.block_on(async {
            WandbServer::bind(store.clone(), "127.0.0.1:0".parse().unwrap(), ServerOptions::default())
                .await
                .unwrap()
                .spawn()
        });
        let client = WandbClient::new(server.base_url(), Some("key".into())).unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("README.md"), "the job is the test binary\n").unwrap();
        let exe = std::env::current_exe().unwrap().to_string_lossy().into_owned();
        let entrypoint = vec![exe, JOB_TEST.to_owned(), "--exact".to_owned(), "--nocapture".to_owned()];
        let project = ProjectRef::new("ent", "proj").unwrap();
        let job = runtime.block_on(create_job(&client, &project, "job-main", &code, &entrypoint)).unwrap();
        runtime.block_on(client.create_run_queue("ent", "q1")).unwrap();
        Launch { _dir: dir, store, runtime, server: Some(server), client, job }
    }

    fn agent(&self, queues: &[&str]) -> wandb_api::Result<LaunchAgent> {
        let config = AgentConfig {
            entity: "ent".into(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
            max_jobs: Some(2),
            poll_interval: Duration::from_millis(100),
            base_url: self.server.as_ref().unwrap().base_url().to_owned(),
            api_key: Some("key".into()),
        };
        LaunchAgent::register(self.client.clone(), self.runtime.clone(), config)
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
        self.runtime.block_on(self.client.launch_add(&request)).unwrap()
    }

    fn wait(&self, queued: &QueuedRun) -> wandb_api::Result<(String, String)> {
        self.runtime.block_on(self.client.wait_until_finished(
            queued,
            Duration::from_secs(60),
            Duration::from_millis(100),
        ))
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

fn with_agent<T>(launch: &Launch, body: impl FnOnce() -> T) -> (T, wandb_api::launch_agent::AgentReport) {
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
    let item = launch.runtime.block_on(launch.client.queue_item(&queued)).unwrap().unwrap();
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
            if let Some(run_id) =
                launch.runtime.block_on(launch.client.queue_item(&sleeping)).unwrap().and_then(|i| i.run_id)
            {
                break run_id;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        launch
            .runtime
            .block_on(launch.client.graphql(
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
    let item = launch.runtime.block_on(launch.client.queue_item(&failing)).unwrap().unwrap();
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
    let error = launch.runtime.block_on(launch.client.launch_add(&missing)).unwrap_err().to_string();
    assert_eq!(error, "Unable to push to run queue ghost. Queue not found.");
    // The default queue is created when it is the one asked for, as the SDK does.
    let default = LaunchRequest { job: Some(launch.job.clone()), entity: "ent".into(), ..Default::default() };
    let queued = launch.runtime.block_on(launch.client.launch_add(&default)).unwrap();
    assert_eq!(queued.queue, "default");

    // An image job: named after the image, its tag an alias.
    let project = ProjectRef::new("ent", "proj").unwrap();
    let job = launch
        .runtime
        .block_on(wandb_api::launch_agent::create_image_job(
            &launch.client,
            &project,
            "ghcr.io/acme/train:release",
            None,
        ))
        .unwrap();
    assert_eq!(job, "ent/proj/job-ghcr.io_acme_train:v0");
    let version = launch.store.artifact(&project, "job-ghcr.io_acme_train", "release").unwrap();
    assert_eq!(version.artifact_type, "job");
}
