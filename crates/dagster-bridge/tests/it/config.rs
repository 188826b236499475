//! Every configuration rule: dagster-wandb's resources, the IO manager's config, and both sides of
//! `wandb_artifact_configuration`, with the errors naming the key and the value.

use dagster_bridge::config::{
    AddFileSpec, IoManagerConfig, Policy, ReadConfiguration, ReadSelection, SerializationModuleConfig, StringSource,
    WandbConfig, WandbResource, WriteConfiguration,
};
use serde_json::{Value, json};

fn error<T: std::fmt::Debug>(result: Result<T, dagster_bridge::Error>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn resource_defaults_sources_and_urls() {
    let resource = WandbResource::from_json(&json!({"api_key": "WANDB_API_KEY"})).unwrap();
    assert_eq!(resource.api_key, Some(StringSource::Value("WANDB_API_KEY".into())));
    assert_eq!(resource.host, "https://api.wandb.ai");
    assert_eq!(resource.app_url(), "https://wandb.ai");
    let custom =
        WandbResource::from_json(&json!({"api_key": "k", "host": "http://wandb.my-custom-host.com/"})).unwrap();
    assert_eq!(custom.host, "http://wandb.my-custom-host.com/", "kept verbatim");
    assert_eq!(custom.app_url(), "http://wandb.my-custom-host.com");
    let slash = WandbResource::from_json(&json!({"host": "https://api.wandb.ai/"})).unwrap();
    assert_eq!(slash.app_url(), "https://api.wandb.ai", "only the exact cloud host maps to wandb.ai");

    let env = WandbResource::from_json(&json!({"api_key": {"env": "DAGSTER_BRIDGE_CONFIG_TEST_KEY"}})).unwrap();
    assert_eq!(env.api_key, Some(StringSource::Env("DAGSTER_BRIDGE_CONFIG_TEST_KEY".into())));
    assert!(error(env.api_key.unwrap().resolve("wandb_resource.api_key")).contains("DAGSTER_BRIDGE_CONFIG_TEST_KEY"));

    assert_eq!(
        error(WandbResource::from_json(&json!({"api_key": 42}))),
        "invalid configuration wandb_resource.api_key: got 42, expected a string or {\"env\": \"NAME\"}"
    );
    assert_eq!(
        error(WandbResource::from_json(&json!({"hots": "x"}))),
        "invalid configuration wandb_resource.hots: is not a known key; expected one of api_key, host"
    );
    assert!(error(WandbResource::from_json(&json!({"host": ""}))).contains("wandb_resource.host"));
}

#[test]
fn wandb_config_rejects_empty_and_missing_values() {
    let config = WandbConfig::from_json(&json!({"entity": "e", "project": "p"})).unwrap();
    assert_eq!((config.entity.as_str(), config.project.as_str()), ("e", "p"));
    assert_eq!(
        error(WandbConfig::from_json(&json!({"entity": "", "project": "p"}))),
        "(dagster_wandb) An empty string was provided for the 'entity' property of the 'wandb_config'."
    );
    assert_eq!(
        error(WandbConfig::from_json(&json!({"entity": "e", "project": ""}))),
        "(dagster_wandb) An empty string was provided for the 'project' property of the 'wandb_config'."
    );
    assert_eq!(
        error(WandbConfig::from_json(&json!({"entity": "e"}))),
        "invalid configuration wandb_config.project: is required"
    );
    assert_eq!(
        error(WandbConfig::from_json(&json!(["e", "p"]))),
        "invalid configuration wandb_config: got [\"e\",\"p\"], expected a dict"
    );
}

#[test]
fn io_manager_config_defaults_and_run_rules() {
    let config = IoManagerConfig::from_json(&json!({})).unwrap();
    assert_eq!(config.cache_duration(), 43_200);
    assert_eq!(config.tags(), ["dagster_wandb"]);
    assert_eq!(config.run_id_for("0ab2e48b-6d63"), "0ab2e48b-6d63");
    assert_eq!(config.run_name_for("0ab2e48b-6d63"), "dagster-run-0ab2e48b");
    let config =
        IoManagerConfig::from_json(&json!({"run_tags": ["dagster_wandb", "x"], "cache_duration_in_minutes": 0}))
            .unwrap();
    assert_eq!(config.tags(), ["dagster_wandb", "x"], "not added twice");
    assert_eq!(config.cache_duration(), 0);
    assert_eq!(
        error(IoManagerConfig::from_json(&json!({"run_id": "a/b"}))),
        "invalid configuration wandb_artifacts_io_manager.run_id: got \"a/b\", expected a run id without /\\#?%: characters"
    );
    assert_eq!(
        error(IoManagerConfig::from_json(&json!({"cache_duration_in_minutes": "1d"}))),
        "invalid configuration wandb_artifacts_io_manager.cache_duration_in_minutes: got \"1d\", expected an integer"
    );
    assert_eq!(
        error(IoManagerConfig::from_json(&json!({"run_tags": ["a", 1]}))),
        "invalid configuration wandb_artifacts_io_manager.run_tags: got [\"a\",1], expected a list of strings"
    );
}

#[test]
fn write_configuration_parses_every_key() {
    let config = WriteConfiguration::from_json(Some(&json!({
        "name": "n", "type": "dataset", "description": "d", "aliases": ["a"],
        "add_files": [{"local_path": "f.py", "name": "filename", "is_tmp": true, "policy": "immutable"}],
        "add_dirs": [{"local_path": "dir", "merge": true}],
        "add_references": [{"uri": "https://picsum.photos/200/300", "name": "Lorem ipsum photo", "checksum": false, "max_objects": 3}],
        "serialization_module": {"name": "joblib", "parameters": {"compress": 3}},
        "partitions": {"ignored": {"on": "write"}},
    })))
    .unwrap();
    assert_eq!(config.name.as_deref(), Some("n"));
    assert_eq!(config.artifact_type.as_deref(), Some("dataset"));
    assert_eq!(
        config.add_files,
        [AddFileSpec {
            local_path: "f.py".into(),
            name: Some("filename".into()),
            is_tmp: true,
            skip_cache: false,
            policy: Policy::Immutable,
            overwrite: false
        }]
    );
    assert!(config.add_dirs[0].merge);
    assert!(!config.add_references[0].checksum);
    assert_eq!(config.add_references[0].max_objects, Some(3));
    let module = config.serialization_module.clone().unwrap();
    assert_eq!(module.module().unwrap(), serde_modules::Module::Joblib);
    assert!(config.has_serialization_module());

    assert_eq!(WriteConfiguration::from_json(None).unwrap(), WriteConfiguration::default());
    assert_eq!(WriteConfiguration::from_json(Some(&Value::Null)).unwrap(), WriteConfiguration::default());
    let empty_module = WriteConfiguration::from_json(Some(&json!({"serialization_module": {}}))).unwrap();
    assert!(!empty_module.has_serialization_module(), "an empty dict has no effect, as len() == 0 in Python");
    assert_eq!(SerializationModuleConfig::default().module().unwrap(), serde_modules::Module::Pickle);

    for (config, expected) in [
        (
            json!({"add_references": [{"name": "x"}]}),
            "invalid configuration wandb_artifact_configuration.add_references[0].uri: is required",
        ),
        (
            json!({"add_files": [{"local_path": "f", "is_tmp": "yes"}]}),
            "invalid configuration wandb_artifact_configuration.add_files[0].is_tmp: got \"yes\", expected true or false",
        ),
        (
            json!({"add_files": [{"local_path": "f", "mode": "x"}]}),
            "invalid configuration wandb_artifact_configuration.add_files[0].mode: is not a known key",
        ),
        (
            json!({"add_dirs": {"local_path": "d"}}),
            "invalid configuration wandb_artifact_configuration.add_dirs: got {\"local_path\":\"d\"}, expected a list of dicts",
        ),
        (
            json!({"add_references": [{"uri": "u", "max_objects": -1}]}),
            "invalid configuration wandb_artifact_configuration.add_references[0].max_objects: got -1, expected a non-negative integer",
        ),
        (
            json!({"serialization_module": {"name": "pickle", "params": {}}}),
            "invalid configuration wandb_artifact_configuration.serialization_module.params: is not a known key",
        ),
        (
            json!({"type": ["dataset"]}),
            "invalid configuration wandb_artifact_configuration.type: got [\"dataset\"], expected a string",
        ),
        (json!("name"), "invalid configuration wandb_artifact_configuration: got \"name\", expected a dict"),
        (
            json!({"get": "x", "version": "v0"}),
            "The configuration keys '['get', 'version']' you are trying to use are not supported within the 'wandb_artifact_configuration' metadata dictionary when writing an Artifact.",
        ),
        (json!({"it's": 1}), "The configuration keys '[\"it's\"]' you are trying"),
    ] {
        let message = error(WriteConfiguration::from_json(Some(&config)));
        assert!(message.starts_with(expected), "{message}\n  expected: {expected}");
    }
}

#[test]
fn read_configuration_and_partition_selection() {
    let config = ReadConfiguration::from_json(Some(&json!({
        "name": "n", "get": "Table", "version": "v1",
        "partitions": {"*": {"alias": "prod"}, "p2": {"get_path": "f"}},
    })))
    .unwrap();
    assert_eq!(
        config.selection,
        ReadSelection { get: Some("Table".into()), version: Some("v1".into()), ..Default::default() }
    );
    assert_eq!(config.partition("p1").unwrap(), ReadSelection { alias: Some("prod".into()), ..Default::default() });
    assert_eq!(config.partition("p2").unwrap(), ReadSelection { get_path: Some("f".into()), ..Default::default() });
    let bare = ReadConfiguration::from_json(None).unwrap();
    assert_eq!(bare.partition("p1").unwrap(), ReadSelection::default(), "no settings: the latest, whole");

    assert!(
        error(ReadConfiguration::from_json(Some(&json!({"partitions": {"p1": "v0"}})))).starts_with(
            "invalid configuration wandb_artifact_configuration.partitions.p1: got \"v0\", expected a dict"
        )
    );
    assert!(
        error(ReadConfiguration::from_json(Some(&json!({"aliases": ["x"]})))).ends_with("when reading an Artifact.")
    );
    let wrong = ReadConfiguration::from_json(Some(&json!({"partitions": {"*": {"version": 0}}}))).unwrap();
    assert_eq!(
        error(wrong.partition("p9")),
        "invalid configuration wandb_artifact_configuration.partitions.p9.version: got 0, expected a string"
    );
}
