//! dagster-wandb's launch ops: their configuration (dagster-wandb §7 and the six tests of §8.5) mapped onto
//! wandb 0.31.0's protocol, against our server. The synchronous path runs end to end in `cargo xtask dagster-e2e`.

use dagster_bridge::config::{IoManagerConfig, StringSource, WandbConfig, WandbResource};
use dagster_bridge::io_manager::{IoManagerSettings, WandbArtifactsIoManager};
use dagster_bridge::launch::{LaunchAgentConfig, LaunchJobConfig};
use serde_json::json;

#[test]
fn launch_job_config_follows_dagster_wandb_and_refuses_dead_keys() {
    let config = LaunchJobConfig::from_json(&json!({"queue": "my_queue"})).unwrap();
    assert!(config.synchronous, "synchronous defaults to true");
    let request = config.request(&WandbConfig { entity: "entity".into(), project: "project".into() });
    assert_eq!(
        (request.entity.as_str(), request.project.as_deref(), request.queue.as_deref()),
        ("entity", Some("project"), Some("my_queue"))
    );
    for (key, value) in
        [("uri", json!("https://github.com/a/b")), ("parameters", json!({"lr": 1})), ("cuda", json!(true))]
    {
        let error = LaunchJobConfig::from_json(&json!({key: value})).unwrap_err().to_string();
        assert!(error.starts_with(&format!("invalid configuration run_launch_job.{key}:")), "{error}");
    }
    let error = LaunchJobConfig::from_json(&json!({"queue_name": "q"})).unwrap_err().to_string();
    assert!(error.contains("run_launch_job.queue_name: is not a known key"), "{error}");
    let error = LaunchJobConfig::from_json(&json!({"entry_point": "python main.py"})).unwrap_err().to_string();
    assert!(error.contains("expected a list of strings"), "{error}");
    // dagster-wandb's empty-string checks on wandb_config, with its words.
    let error = WandbConfig::from_json(&json!({"entity": "", "project": "project"})).unwrap_err().to_string();
    assert_eq!(error, "(dagster_wandb) An empty string was provided for the 'entity' property of the 'wandb_config'.");
}

#[test]
fn launch_agent_config_takes_queues_and_max_jobs_only() {
    let config =
        LaunchAgentConfig::from_json(&json!({"queues": ["first_queue", "second_queue"], "max_jobs": 42})).unwrap();
    assert_eq!(config.queues.as_deref(), Some(&["first_queue".to_owned(), "second_queue".to_owned()][..]));
    assert_eq!(config.max_jobs, Some(42));
    assert_eq!(LaunchAgentConfig::from_json(&json!({"max_jobs": -1})).unwrap().max_jobs, Some(-1));
    assert!(LaunchAgentConfig::from_json(&json!({"max_jobs": -2})).is_err());
    let error = LaunchAgentConfig::from_json(&json!({"project": "p"})).unwrap_err().to_string();
    assert!(error.contains("run_launch_agent.project: is not a known key"), "{error}");
}

#[test]
fn an_asynchronous_launch_is_queued_on_the_server_and_an_embedded_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = wandb_store::EmbeddedStore::open(dir.path().join("store")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        wandb_server::WandbServer::bind(store, "127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap()
            .spawn()
    });
    let settings = |host: String| IoManagerSettings {
        resource: WandbResource { host, api_key: Some(StringSource::Value("key".into())) },
        wandb_config: WandbConfig { entity: "entity".into(), project: "project".into() },
        config: IoManagerConfig { base_dir: Some(dir.path().join("home")), ..Default::default() },
        dagster_run_id: "0ab2e48b-6d63-4ff5-b160-662cc60145f4".into(),
    };
    let io = WandbArtifactsIoManager::new(settings(server.base_url().to_owned())).unwrap();
    let config = LaunchJobConfig::from_json(
        &json!({"job": "entity/project/job:latest", "queue": "default", "synchronous": false}),
    )
    .unwrap();
    let outcome = io.launch_job(&config, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!((outcome.queued.queue.as_str(), outcome.finished), ("default", None));

    let no_queue = LaunchJobConfig::from_json(&json!({"job": "entity/project/job:latest"})).unwrap();
    let error = io.launch_job(&no_queue, std::time::Duration::from_secs(5)).unwrap_err().to_string();
    assert!(error.starts_with("invalid configuration run_launch_job.queue: is required"), "{error}");

    let embedded =
        WandbArtifactsIoManager::new(settings(format!("file://{}", dir.path().join("store").display()))).unwrap();
    let error = embedded.launch_job(&config, std::time::Duration::from_secs(5)).unwrap_err().to_string();
    assert!(error.contains("W&B Launch needs a W&B server"), "{error}");
    runtime.block_on(server.shutdown());
}
