//! A Rust step over a real Pipes session: configuration from the extras, outputs reported to Dagster as
//! materializations with the W&B metadata, inputs loaded as the extras describe them.

use std::path::Path;
use std::sync::Arc;

use dagster_bridge::io_manager::{Loaded, Output};
use dagster_bridge::pipes::{PipesSession, encode_param};
use dagster_bridge::step::DagsterStep;
use serde_json::{Value, json};

const RUN_ID: &str = "61d5060d-0b57-48e6-846c-6d856d346093";

fn session(dir: &Path, asset: &str, partition: Option<&str>, extras: Value) -> Arc<PipesSession> {
    let context = json!({
        "asset_keys": [asset], "partition_key": partition, "run_id": RUN_ID, "retry_number": 0, "extras": extras,
    });
    PipesSession::open_with(
        &encode_param(&json!({"data": context})),
        &encode_param(&json!({"path": dir.join(format!("{asset}.messages"))})),
    )
    .unwrap()
}

fn messages(dir: &Path, asset: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{asset}.messages"))).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn extras(dir: &Path, more: Value) -> Value {
    let mut extras = json!({
        "wandb_resource": {"host": format!("file://{}", dir.join("store").display())},
        "wandb_config": {"entity": "e", "project": "p"},
        "wandb_artifacts_io_manager": {"base_dir": dir.join("home").display().to_string()},
    });
    extras.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
    extras
}

#[test]
fn outputs_become_materializations_and_inputs_load_from_the_extras() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ml")).unwrap();
    let writer = session(
        dir.path(),
        "ml/dataset",
        Some("2024-01-02"),
        extras(dir.path(), json!({"outputs": {"ml/dataset": {"wandb_artifact_configuration": {"type": "dataset"}}}})),
    );
    let step = DagsterStep::new(Arc::clone(&writer)).unwrap();
    let logged = step.materialize(None, Output::serialize(&[1.5, 2.5]).unwrap()).unwrap().unwrap();
    assert_eq!(logged.version.qualified_name(), "ml.2024-01-02:v0", "the first key component, then the partition");
    writer.close(None).unwrap();
    drop(step);

    let sent = messages(dir.path(), "ml/dataset");
    let methods: Vec<&str> = sent.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["opened", "log", "report_asset_materialization", "closed"]);
    assert_eq!(sent[1]["params"]["message"], "Output serialized using pickle with parameters={'protocol': 5}");
    let materialization = &sent[2]["params"];
    assert_eq!(materialization["asset_key"], "ml/dataset");
    assert_eq!(materialization["data_version"], logged.version.digest.as_str());
    let metadata = &materialization["metadata"];
    assert_eq!(metadata["dagster_run_id"], json!({"raw_value": RUN_ID, "type": "dagster_run"}));
    assert_eq!(metadata["wandb_artifact_size"]["type"], "int");
    assert_eq!(metadata["wandb_artifact_url"]["type"], "url");
    assert_eq!(metadata["wandb_run_url"]["type"], "url");
    assert_eq!(metadata["wandb_artifact_version"], json!({"raw_value": "v0", "type": "text"}));
    assert_eq!(metadata.as_object().unwrap().len(), 14);

    let reader = session(
        dir.path(),
        "report",
        None,
        extras(
            dir.path(),
            json!({"inputs": {
                "days": {"asset_key": ["ml", "dataset"], "partition_keys": ["2024-01-02"]},
                "bad": {"asset_key": 7},
            }}),
        ),
    );
    let step = DagsterStep::new(Arc::clone(&reader)).unwrap();
    let Loaded::Partitions(days) = step.load("days").unwrap() else { panic!() };
    assert_eq!(days.len(), 1);
    let (day, value) = days.into_iter().next().unwrap();
    assert_eq!((day.as_str(), value.into_value::<Vec<f64>>().unwrap()), ("2024-01-02", vec![1.5, 2.5]));
    assert_eq!(
        step.load("bad").unwrap_err().to_string(),
        "invalid configuration inputs.bad.asset_key: got 7, expected a string or a list of strings"
    );
    assert_eq!(
        step.load("absent").unwrap_err().to_string(),
        "invalid configuration inputs.absent: is not in the Pipes extras"
    );
}

#[test]
fn a_step_without_wandb_config_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let session = session(dir.path(), "a", None, json!({"wandb_resource": {"host": "file:///tmp/never"}}));
    let error = DagsterStep::new(session).unwrap_err().to_string();
    assert!(error.starts_with("Extra \"wandb_config\" is undefined."), "{error}");
}
