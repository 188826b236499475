//! Runs logged to: history with the SDK's step rules, summary, config, exit code and resume, on the embedded
//! store and through the server's `file_stream`.

use std::time::Duration;

use serde_json::{Map, Value, json};
use wandb_api::run::{LogStep, Resume, Run, RunSettings};
use wandb_api::{Api, HISTORY_FILE, OUTPUT_FILE, ProjectRef, RunState, Settings, StreamChunk};
use wandb_server::{ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

fn row(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn project() -> ProjectRef {
    ProjectRef::new("ent", "proj").unwrap()
}

fn settings(id: &str) -> RunSettings {
    let mut settings = RunSettings::new("proj")
        .entity("ent")
        .id(id)
        .name("first")
        .tags(["t1"])
        .config(row(json!({"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}})));
    settings.transmit_interval = Duration::from_millis(50);
    settings.flush_interval = Duration::from_millis(50);
    settings
}

/// The API over the embedded store in `dir`.
fn embedded(dir: &std::path::Path) -> Api {
    Api::new(Settings::embedded(dir).with_cache_dir(None)).unwrap()
}

/// The first process of the SDK capture (`runlog.jsonl`), minus the prints: steps 0–2, then step 5.
fn log_first_process(run: &mut Run) {
    run.log(row(json!({"loss": 0.5, "acc": 0.1}))).unwrap();
    run.log(row(json!({"loss": 0.4, "acc": 0.2, "nested": {"a": 1}}))).unwrap();
    run.log_with(row(json!({"extra": 1.5})), LogStep { commit: Some(false), ..Default::default() }).unwrap();
    run.log(row(json!({"loss": 0.3}))).unwrap();
    run.log_with(row(json!({"loss": 0.2})), LogStep { step: Some(5), ..Default::default() }).unwrap();
    // An earlier step is dropped, as the SDK drops it.
    run.log_with(row(json!({"loss": 9.9})), LogStep { step: Some(1), ..Default::default() }).unwrap();
    run.summary_update(row(json!({"best_loss": 0.2}))).unwrap();
    run.summary_update(row(json!({"final": "yes"}))).unwrap();
    run.config_update(row(json!({"bs": 32}))).unwrap();
}

fn check_first_process(store: &EmbeddedStore) {
    let history = store.run_history(&project(), "runlog1").unwrap();
    let steps: Vec<u64> = history.iter().map(|r| r["_step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 1, 2, 5]);
    assert_eq!(history[2]["extra"], 1.5, "commit=False values merge into the next row");
    assert_eq!(history[2]["loss"], 0.3);
    assert_eq!(history[1]["nested"], json!({"a": 1}));
    assert!(history.iter().all(|r| r["_runtime"].is_f64() && r["_timestamp"].as_f64().unwrap() > 1.7e9));
    let summary = store.run_summary(&project(), "runlog1").unwrap();
    assert_eq!(summary["loss"], 0.2);
    assert_eq!(summary["acc"], 0.2);
    assert_eq!(summary["_step"], 5);
    assert_eq!(summary["best_loss"], 0.2);
    assert_eq!(summary["final"], "yes");
    assert!(summary["_wandb"]["runtime"].is_u64());
    let status = store.run_status(&project(), "runlog1").unwrap();
    assert_eq!((status.state, status.exit_code), (RunState::Failed, Some(3)));
    assert_eq!(status.config["lr"], 0.1);
    assert_eq!(status.config["bs"], 32);
    assert_eq!(status.config["opt"], json!({"name": "adam"}));
    let record = store.run(&project(), "runlog1").unwrap();
    assert_eq!((record.name.as_deref(), record.tags.as_slice()), (Some("first"), ["t1".to_owned()].as_slice()));
}

fn check_resumed(store: &EmbeddedStore) {
    let history = store.run_history(&project(), "runlog1").unwrap();
    let steps: Vec<u64> = history.iter().map(|r| r["_step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 1, 2, 5, 6], "the resumed run continues after the last step");
    assert!(history[4]["_runtime"].as_f64().unwrap() >= history[3]["_runtime"].as_f64().unwrap().floor());
    let lines = store.run_stream_lines(&project(), "runlog1", HISTORY_FILE).unwrap();
    assert_eq!(lines.len(), 5, "appended at offset 4, nothing rewritten");
    let status = store.run_status(&project(), "runlog1").unwrap();
    assert_eq!((status.state, status.exit_code), (RunState::Finished, Some(0)));
    assert_eq!(status.config["bs"], 32, "the config survives the resume");
    let summary = store.run_summary(&project(), "runlog1").unwrap();
    assert_eq!(summary["loss"], 0.1);
    assert_eq!(summary["best_loss"], 0.2, "the resumed summary is kept");
}

#[test]
fn a_run_logs_and_resumes_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let api = embedded(dir.path());
    let mut run = api.init(settings("runlog1")).unwrap();
    assert!(!run.resumed());
    log_first_process(&mut run);
    run.finish_with_exit_code(3).unwrap();
    check_first_process(&store);

    let mut resume = RunSettings::new("proj").entity("ent").id("runlog1");
    resume.flush_interval = Duration::from_millis(10);
    let mut run = api.init(resume).unwrap();
    assert!(run.resumed());
    assert_eq!(run.step(), 6);
    assert_eq!(run.config()["lr"], 0.1);
    run.log(row(json!({"loss": 0.1}))).unwrap();
    run.finish().unwrap();
    check_resumed(&store);
}

#[test]
fn resume_must_and_never_refuse_with_the_sdk_messages() {
    let dir = tempfile::tempdir().unwrap();
    let api = embedded(dir.path());
    let must = RunSettings::new("proj").entity("ent").id("ghost").resume(Resume::Must);
    let error = api.init(must).unwrap_err().to_string();
    assert!(error.starts_with("You provided an invalid value for the `resume` argument. The value 'must' is not a valid option for resuming the run (ghost) that has not been initialized."), "{error}");
    api.init(settings("exists")).unwrap().finish().unwrap();
    let never = RunSettings::new("proj").entity("ent").id("exists").resume(Resume::Never);
    let error = api.init(never).unwrap_err().to_string();
    assert!(
        error.contains("The value 'never' is not a valid option for resuming a run (exists) that already exists."),
        "{error}"
    );
}

#[test]
fn streams_replace_lines_at_their_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    store.resume_run(&project(), wandb_api::RunOptions { id: Some("r".into()), ..Default::default() }).unwrap();
    let write = |offset: u64, lines: &[&str]| {
        let mut chunk = StreamChunk::default();
        chunk.files.insert(OUTPUT_FILE.into(), (offset, lines.iter().map(|l| l.to_string()).collect()));
        store.write_run_stream(&project(), "r", &chunk).unwrap();
    };
    write(0, &["RESUMED?"]);
    write(0, &["RESUMED? False step 0", "hello from stdout"]);
    write(2, &["second line"]);
    write(1, &["hello, again"]);
    assert_eq!(
        store.run_stream_lines(&project(), "r", OUTPUT_FILE).unwrap(),
        ["RESUMED? False step 0", "hello, again", "second line"]
    );
    assert_eq!(store.run_status(&project(), "r").unwrap().line_count(OUTPUT_FILE), 3);
    let mut bad = StreamChunk::default();
    bad.files.insert("../escape".into(), (0, vec!["x".into()]));
    let error = store.write_run_stream(&project(), "r", &bad).unwrap_err().to_string();
    assert!(error.contains("bad stream file name \"../escape\""), "{error}");
}

#[test]
fn a_run_logs_and_resumes_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let runtime = wandb_api::runtime().unwrap();
    let server = runtime.block_on(async {
        let options = ServerOptions { record_requests: true, ..ServerOptions::default() };
        WandbServer::bind(store.clone(), "127.0.0.1:0".parse().unwrap(), options).await.unwrap().spawn()
    });
    let api = Api::new(Settings::server(server.base_url(), Some("key".into())).with_cache_dir(None)).unwrap();
    let mut run = api.init(settings("runlog1")).unwrap();
    assert!(!run.resumed());
    log_first_process(&mut run);
    run.finish_with_exit_code(3).unwrap();
    check_first_process(&store);
    let streams = server.requests().requests().into_iter().filter(|r| r.path.ends_with("/file_stream")).count();
    assert!(streams >= 1, "{streams} file_stream requests");

    let resume = RunSettings::new("proj").entity("ent").id("runlog1").resume(Resume::Must);
    let mut run = api.init(resume).unwrap();
    assert!(run.resumed());
    assert_eq!(run.step(), 6);
    assert_eq!(run.config()["bs"], 32);
    run.log(row(json!({"loss": 0.1}))).unwrap();
    run.finish().unwrap();
    check_resumed(&store);
    runtime.block_on(server.shutdown());
}

#[test]
fn run_tags_are_any_text_unlike_artifact_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let options = wandb_api::RunOptions {
        id: Some("tagged".into()),
        tags: vec!["needs review!".into(), "".into(), "needs review!".into(), "ünïcode".into()],
        ..Default::default()
    };
    let (record, created) = store.resume_run(&project(), options).unwrap();
    assert!(created);
    assert_eq!(record.tags, ["needs review!", "ünïcode"]);
}
