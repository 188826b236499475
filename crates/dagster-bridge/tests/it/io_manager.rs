//! The IO manager against a real embedded store (and once through the W&B-compatible server): the intent of
//! dagster-wandb's 43 tests, its naming, alias and partition rules, and the quirks this crate fixes.

use std::path::{Path, PathBuf};

use artifact_core::{Artifact, NewFileOptions};
use dagster_bridge::Error;
use dagster_bridge::config::{IoManagerConfig, StringSource, WandbConfig, WandbResource};
use dagster_bridge::io_manager::{
    InputContext, IoManagerSettings, Loaded, Output, OutputContext, WandbArtifactsIoManager,
};
use dagster_bridge::pipes::MetadataValue;
use serde_json::{Value, json};
use serde_modules::{Module, Table};
use wandb_api::ProjectRef;
use wandb_store::EmbeddedStore;

const RUN_ID: &str = "0ab2e48b-6d63-4ff5-b160-662cc60145f4";
const RUN_ALIAS: &str = "dagster-run-0ab2e48b";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture { dir: tempfile::tempdir().unwrap() }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn store(&self) -> EmbeddedStore {
        EmbeddedStore::open(self.store_dir()).unwrap()
    }

    fn project() -> ProjectRef {
        ProjectRef::new("entity", "project").unwrap()
    }

    fn settings(&self, run_id: &str) -> IoManagerSettings {
        IoManagerSettings {
            resource: WandbResource { host: format!("file://{}", self.store_dir().display()), api_key: None },
            wandb_config: WandbConfig { entity: "entity".into(), project: "project".into() },
            config: IoManagerConfig { base_dir: Some(self.dir.path().join("dagster_home")), ..Default::default() },
            dagster_run_id: run_id.into(),
        }
    }

    fn io(&self) -> WandbArtifactsIoManager {
        WandbArtifactsIoManager::new(self.settings(RUN_ID)).unwrap()
    }

    fn file(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join("inputs").join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

fn op_output(configuration: Value) -> OutputContext {
    OutputContext { configuration: Some(configuration), ..Default::default() }
}

fn asset_output(key: &[&str], configuration: Value) -> OutputContext {
    OutputContext {
        asset_key: Some(key.iter().map(|s| s.to_string()).collect()),
        configuration: Some(configuration),
        ..Default::default()
    }
}

fn message(error: Error) -> String {
    error.to_string()
}

fn metadata_of(materialization: &dagster_bridge::io_manager::Materialization) -> Vec<(&str, &MetadataValue)> {
    materialization.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect()
}

#[test]
fn op_output_is_pickled_with_the_run_alias_and_dagster_wandb_metadata() {
    let f = Fixture::new();
    let logged = f
        .io()
        .handle_output(
            &op_output(json!({"name": "artifact_name", "type": "dataset"})),
            Output::serialize(&[1, 2, 3]).unwrap(),
        )
        .unwrap()
        .unwrap();
    let version = &logged.version;
    assert_eq!(version.qualified_name(), "artifact_name:v0");
    assert_eq!(version.artifact_type, "dataset");
    assert_eq!(version.description, None);
    assert_eq!(version.aliases, [RUN_ALIAS, "latest"]);
    assert_eq!(version.created_by.as_deref(), Some(RUN_ID));
    let manifest = f.store().manifest(version).unwrap();
    assert_eq!(manifest.entries().map(|(p, _)| p).collect::<Vec<_>>(), ["output.pickle"]);
    let md = &version.metadata;
    assert_eq!(md["source_dagster_run_id"], RUN_ID);
    assert_eq!(md["source_serialization_module"], "pickle");
    assert_eq!(md["source_pickle_protocol_used"], 5);
    assert_eq!(md["source_integration"], serde_modules::INTEGRATION_NAME);
    let created_at = md["source_created_at"].as_str().unwrap();
    assert!(created_at.ends_with("+00:00") && created_at.len() == 32, "{created_at}");

    // The pickle is what `pickle.load` reads as [1, 2, 3].
    let object = f.store().object_path(manifest.get("output.pickle").unwrap()).unwrap();
    assert_eq!(Module::Pickle.decode::<Vec<i32>>(&std::fs::read(object).unwrap()).unwrap(), [1, 2, 3]);

    // Dagster's 12 keys in dagster-wandb's order, with their types, then digest and file count.
    let store_url = format!("file://{}", f.store_dir().display());
    let md = metadata_of(&logged);
    let keys: Vec<&str> = md.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "dagster_run_id",
            "wandb_artifact_id",
            "wandb_artifact_type",
            "wandb_artifact_version",
            "wandb_artifact_size",
            "wandb_artifact_url",
            "wandb_entity",
            "wandb_project",
            "wandb_run_id",
            "wandb_run_name",
            "wandb_run_path",
            "wandb_run_url",
            "wandb_artifact_digest",
            "wandb_artifact_file_count"
        ]
    );
    assert_eq!(md[0].1, &MetadataValue::DagsterRun(RUN_ID.into()));
    assert_eq!(md[1].1, &MetadataValue::Text(version.id.clone()));
    assert_eq!(md[3].1, &MetadataValue::Text("v0".into()));
    assert_eq!(md[4].1, &MetadataValue::Int(version.size as i64));
    assert_eq!(md[5].1, &MetadataValue::Url(format!("{store_url}/entity/project/artifacts/dataset/artifact_name/v0")));
    assert_eq!(md[8].1, &MetadataValue::Text(RUN_ID.into()));
    assert_eq!(md[9].1, &MetadataValue::Text(RUN_ALIAS.into()));
    assert_eq!(md[10].1, &MetadataValue::Text(format!("entity/project/{RUN_ID}")));
    assert_eq!(md[11].1, &MetadataValue::Url(format!("{store_url}/entity/project/runs/{RUN_ID}")));
    assert_eq!(md[12].1, &MetadataValue::Text(version.digest.clone()));
    assert_eq!(md[13].1, &MetadataValue::Int(1));

    // The W&B run is the Dagster run, named after it and tagged dagster_wandb.
    let run = f.store().run(&Fixture::project(), RUN_ID).unwrap();
    assert_eq!(run.name.as_deref(), Some(RUN_ALIAS));
    assert_eq!(run.tags, ["dagster_wandb"]);
}

#[test]
fn every_python_serialization_module_writes_its_own_file() {
    for (module, file) in [
        ("dill", "output.dill"),
        ("cloudpickle", "output.cloudpickle"),
        ("joblib", "output.joblib"),
        ("pickle", "output.pickle"),
    ] {
        let f = Fixture::new();
        let config = json!({"name": "x", "serialization_module": {"name": module, "parameters": {"protocol": 4}}});
        let logged = f.io().handle_output(&op_output(config), Output::serialize("content").unwrap()).unwrap().unwrap();
        let manifest = f.store().manifest(&logged.version).unwrap();
        assert!(manifest.get(file).is_some(), "{module}");
        assert_eq!(logged.version.metadata["source_serialization_module"], module);
        assert_eq!(logged.version.metadata["source_pickle_protocol_used"], 4, "the user's protocol wins");
        let input = InputContext { configuration: Some(json!({"name": "x"})), ..Default::default() };
        assert_eq!(f.io().load_input(&input).unwrap().into_value::<String>().unwrap(), "content");
    }
}

#[test]
fn custom_run_id_name_and_tags_name_the_resumed_run() {
    let f = Fixture::new();
    let mut settings = f.settings(RUN_ID);
    settings.config = IoManagerConfig::from_json(&json!({
        "base_dir": f.dir.path().join("home").display().to_string(),
        "run_name": "my_custom_run_name", "run_id": "my_custom_run_id", "run_tags": ["my_first_tag", "my_second_tag"],
    }))
    .unwrap();
    let io = WandbArtifactsIoManager::new(settings).unwrap();
    let logged = io.handle_output(&op_output(json!({"name": "a"})), Output::serialize(&1).unwrap()).unwrap().unwrap();
    let run = f.store().run(&Fixture::project(), "my_custom_run_id").unwrap();
    assert_eq!(run.name.as_deref(), Some("my_custom_run_name"));
    assert_eq!(run.tags, ["my_first_tag", "my_second_tag", "dagster_wandb"]);
    assert_eq!(logged.run.id, "my_custom_run_id");
    assert_eq!(logged.run.name, "my_custom_run_name");
    // The alias still comes from the Dagster run.
    assert_eq!(logged.version.aliases, [RUN_ALIAS, "latest"]);
    assert_eq!(logged.version.created_by.as_deref(), Some("my_custom_run_id"));
    assert!(io.storage_root().starts_with(f.dir.path().join("home/storage")));
}

#[test]
fn names_follow_dagster_wandb_asset_key_and_partition_rules() {
    let cases: [(OutputContext, &str); 5] = [
        (asset_output(&["asset_name"], json!({"type": "dataset"})), "asset_name"),
        // Only the first component of the key, as dagster-wandb (so both address the same artifact).
        (asset_output(&["pre", "fix", "prefixed"], json!({})), "pre"),
        (
            OutputContext {
                partition_key: Some("partition_key".into()),
                ..op_output(json!({"name": "artifact_name"}))
            },
            "artifact_name.partition_key",
        ),
        (
            OutputContext { partition_key: Some("p2".into()), ..asset_output(&["static_part"], json!({})) },
            "static_part.p2",
        ),
        // Multi-dimensional keys join their values with `|`, which becomes `-`.
        (
            OutputContext { partition_key: Some("y|a".into()), ..asset_output(&["multi_part"], json!({})) },
            "multi_part.y-a",
        ),
    ];
    for (context, name) in cases {
        let f = Fixture::new();
        let logged = f.io().handle_output(&context, Output::serialize(&0).unwrap()).unwrap().unwrap();
        assert_eq!(logged.version.name, name);
        assert_eq!(logged.version.artifact_type, if name == "asset_name" { "dataset" } else { "artifact" });
    }
}

#[test]
fn write_rules_fail_with_dagster_wandb_messages_and_log_nothing() {
    let cases: Vec<(OutputContext, Output, &str)> = vec![
        (
            OutputContext::default(),
            Output::serialize(&1).unwrap(),
            "The 'name' property is missing in the 'wandb_artifact_configuration' settings. For Artifacts created from an @op, a 'name' property is needed.",
        ),
        (
            op_output(json!({"name": "a", "serialization_module": {"name": "unsupported"}})),
            Output::serialize(&1).unwrap(),
            "Oops! It looks like the value you provided, 'unsupported', isn't recognized as a valid serialization module. Here are the ones we do support: ['dill', 'cloudpickle', 'joblib', 'pickle', ",
        ),
        (
            asset_output(&["asset_name"], json!({"name": "other"})),
            Output::serialize(&1).unwrap(),
            "You've included a 'name' property in the 'wandb_artifact_configuration' settings. But, a 'name' is only needed when there's no 'AssetKey'.",
        ),
        (
            op_output(json!({"name": "a", "foo": 1, "bar": 2})),
            Output::serialize(&1).unwrap(),
            "The configuration keys '['foo', 'bar']' you are trying to use are not supported within the 'wandb_artifact_configuration' metadata dictionary when writing an Artifact.",
        ),
        (
            op_output(json!({"name": "a"})),
            Output::Artifact(Box::new(Artifact::new("a", "dataset").unwrap())),
            "You've provided a 'name' property in the 'wandb_artifact_configuration' settings. However, this 'name' property should only be used when the output isn't already an Artifact object.",
        ),
        (
            op_output(json!({"type": "model"})),
            Output::Artifact(Box::new(Artifact::new("a", "dataset").unwrap())),
            "You've provided a 'type' property in the 'wandb_artifact_configuration' settings. However, this 'type' property should only be used when the output isn't already an Artifact object.",
        ),
        (
            asset_output(&["a"], json!({"description": "two"})),
            Output::Artifact(Box::new({
                let mut a = Artifact::new("a", "dataset").unwrap();
                a.set_description(Some("one".into()));
                a
            })),
            "You've given a 'description' in the 'wandb_artifact_configuration' settings for an existing Artifact that already has a description.",
        ),
        (
            op_output(json!({"name": "a", "add_files": [{"local_path": 7}]})),
            Output::serialize(&1).unwrap(),
            "invalid configuration wandb_artifact_configuration.add_files[0].local_path: got 7, expected a string",
        ),
        (
            op_output(json!({"name": "a", "add_dirs": [{"local_path": "/x", "policy": "sometimes"}]})),
            Output::serialize(&1).unwrap(),
            "invalid configuration wandb_artifact_configuration.add_dirs[0].policy: got \"sometimes\", expected `mutable` or `immutable`",
        ),
        (
            op_output(json!({"name": "a", "aliases": "best"})),
            Output::serialize(&1).unwrap(),
            "invalid configuration wandb_artifact_configuration.aliases: got \"best\", expected a list of strings",
        ),
    ];
    for (context, output, expected) in cases {
        let f = Fixture::new();
        let error = message(f.io().handle_output(&context, output).unwrap_err());
        assert!(error.starts_with(expected), "{error}\n  expected: {expected}");
        // The run was resumed (as dagster-wandb inits before validating), but nothing was logged.
        assert!(f.store().run(&Fixture::project(), RUN_ID).is_ok());
        assert!(f.store().collections(&Fixture::project(), None).unwrap().is_empty());
    }
}

#[test]
fn several_partitions_are_refused_before_the_run_starts_and_none_outputs_do_nothing() {
    let f = Fixture::new();
    let context = OutputContext { several_partitions: true, ..asset_output(&["daily"], json!({})) };
    let error = message(f.io().handle_output(&context, Output::serialize(&1).unwrap()).unwrap_err());
    assert!(
        error
            .starts_with("Sorry, but the Weights & Biases (W&B) IO Manager can't handle processing several partitions")
    );
    assert!(f.store().run(&Fixture::project(), RUN_ID).is_err());

    assert!(f.io().handle_output(&asset_output(&["a"], json!({})), Output::None).unwrap().is_none());
    assert!(f.store().run(&Fixture::project(), RUN_ID).is_err());
}

#[test]
fn all_parameters_add_files_dirs_and_references_and_user_aliases_come_first() {
    let f = Fixture::new();
    let script = f.file("path/to/file.py", "print('hi')\n");
    let tmp = f.file("path/to/data.tar.gz", "temporary");
    f.file("path/to/dir/a.txt", "a");
    f.file("path/to/dir/sub/b.txt", "b");
    let dir = f.dir.path().join("inputs/path/to/dir");
    let reference = f.file("ref/readme.md", "referenced");
    let config = json!({
        "name": "artifact_name", "type": "dataset", "description": "Artifact description", "aliases": ["extra_alias"],
        "add_files": [{"name": "filename", "local_path": script}, {"is_tmp": true, "local_path": tmp}],
        "add_dirs": [{"name": "dirname", "local_path": dir}, {"local_path": dir, "merge": true}],
        "add_references": [{"uri": format!("file://{}", reference.display()), "name": "Lorem ipsum photo"}],
    });
    let logged = f.io().handle_output(&op_output(config), Output::serialize(&[1, 2, 3]).unwrap()).unwrap().unwrap();
    assert_eq!(logged.version.description.as_deref(), Some("Artifact description"));
    assert_eq!(logged.version.aliases, ["dagster-run-0ab2e48b", "extra_alias", "latest"], "stored sorted");
    let manifest = f.store().manifest(&logged.version).unwrap();
    let mut paths: Vec<&str> = manifest.entries().map(|(p, _)| p).collect();
    paths.sort_unstable();
    // is_tmp: the part before the first dot becomes 20 hex digits of the MD5.
    let md5_hex = artifact_core::b64_to_hex(&artifact_core::md5_b64(b"temporary")).unwrap();
    let tmp_name = format!("{}.tar.gz", &md5_hex[..20]);
    let mut expected = vec![
        "Lorem ipsum photo",
        "a.txt",
        "dirname/a.txt",
        "dirname/sub/b.txt",
        "filename",
        "output.pickle",
        "sub/b.txt",
        tmp_name.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(paths, expected);
    assert!(manifest.get("Lorem ipsum photo").unwrap().is_reference());
}

#[test]
fn aliases_do_not_pile_up_across_materializations() {
    let f = Fixture::new();
    let config = json!({"name": "a", "aliases": ["extra"]});
    let first = WandbArtifactsIoManager::new(f.settings("8f3fe703-0000-0000-0000-000000000000")).unwrap();
    first.handle_output(&op_output(config.clone()), Output::serialize(&1).unwrap()).unwrap();
    let second = WandbArtifactsIoManager::new(f.settings("abe0135c-0000-0000-0000-000000000000")).unwrap();
    let logged = second.handle_output(&op_output(config), Output::serialize(&2).unwrap()).unwrap().unwrap();
    assert_eq!(logged.version.aliases, ["dagster-run-abe0135c", "extra", "latest"]);
    let v0 = f.store().artifact(&Fixture::project(), "a", "v0").unwrap();
    assert_eq!(v0.aliases, ["dagster-run-8f3fe703"]);
}

#[test]
fn a_table_is_stored_as_the_sdk_stores_it_and_read_back_with_get() {
    let f = Fixture::new();
    let table = Table::with_rows(["a", "b", "c"], vec![vec![json!(1), json!(2), json!(3)]]).unwrap();
    let config = json!({"name": "t", "serialization_module": {"name": "dill"}});
    let logged = f.io().handle_output(&op_output(config), Output::Table(table.clone())).unwrap().unwrap();
    let manifest = f.store().manifest(&logged.version).unwrap();
    assert_eq!(manifest.entries().map(|(p, _)| p).collect::<Vec<_>>(), ["Table.table.json"]);
    assert!(logged.version.metadata.get("source_serialization_module").is_none());

    let input = InputContext { configuration: Some(json!({"name": "t", "get": "Table"})), ..Default::default() };
    match f.io().load_input(&input).unwrap() {
        Loaded::Table(read) => assert_eq!(read, table),
        other => panic!("{other:?}"),
    }
    let input = InputContext { configuration: Some(json!({"name": "t", "get": "Chart"})), ..Default::default() };
    let error = message(f.io().load_input(&input).unwrap_err());
    assert!(error.contains("entity/project/t:v0 has no object named \"Chart\""), "{error}");
}

#[test]
fn a_user_built_artifact_is_renamed_after_its_asset_and_partition() {
    let f = Fixture::new();
    let build = |name: &str| {
        let mut artifact = Artifact::new(name, "model").unwrap();
        let mut file = artifact.new_file("weights.bin", NewFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut file, b"weights").unwrap();
        file.close().unwrap();
        artifact.set_metadata(json!({"accuracy": 0.9, "source_dagster_run_id": "mine"})).unwrap();
        Box::new(artifact)
    };
    let context = asset_output(&["asset_key_name"], json!({"description": "configured", "aliases": ["extra_alias"]}));
    let logged = f.io().handle_output(&context, Output::Artifact(build("artifact_name"))).unwrap().unwrap();
    assert_eq!(logged.version.name, "asset_key_name");
    assert_eq!(logged.version.artifact_type, "model");
    assert_eq!(logged.version.description.as_deref(), Some("configured"));
    assert_eq!(logged.version.metadata["accuracy"], 0.9);
    assert_eq!(logged.version.metadata["source_dagster_run_id"], RUN_ID, "the integration's keys win");
    assert_eq!(logged.version.aliases, ["dagster-run-0ab2e48b", "extra_alias", "latest"]);

    let context =
        OutputContext { partition_key: Some("partition_key".into()), ..asset_output(&["asset_key_name"], json!({})) };
    let logged = f.io().handle_output(&context, Output::Artifact(build("artifact_name"))).unwrap().unwrap();
    assert_eq!(logged.version.name, "asset_key_name.partition_key");

    // No `|` replacement for a user-built artifact (kept from dagster-wandb): the name is refused, named.
    let context = OutputContext { partition_key: Some("1|a".into()), ..asset_output(&["m"], json!({})) };
    let error = message(f.io().handle_output(&context, Output::Artifact(build("m"))).unwrap_err());
    assert!(error.contains("m.1|a"), "{error}");
}

fn logged_versions(f: &Fixture) {
    let io = f.io();
    io.handle_output(&op_output(json!({"name": "artifact_name"})), Output::serialize("v0 value").unwrap()).unwrap();
    io.handle_output(
        &op_output(json!({"name": "artifact_name", "aliases": ["extra_alias"]})),
        Output::serialize("v1 value").unwrap(),
    )
    .unwrap();
    io.handle_output(&op_output(json!({"name": "artifact_name"})), Output::serialize("v2 value").unwrap()).unwrap();
}

fn read(f: &Fixture, context: InputContext) -> Result<Loaded, Error> {
    f.io().load_input(&context)
}

fn op_input(configuration: Value) -> InputContext {
    InputContext { configuration: Some(configuration), ..Default::default() }
}

#[test]
fn inputs_load_latest_a_version_or_an_alias() {
    let f = Fixture::new();
    logged_versions(&f);
    let value = |config: Value| read(&f, op_input(config)).unwrap().into_value::<String>().unwrap();
    assert_eq!(value(json!({"name": "artifact_name"})), "v2 value");
    assert_eq!(value(json!({"name": "artifact_name", "version": "v0"})), "v0 value");
    assert_eq!(value(json!({"name": "artifact_name", "alias": "extra_alias"})), "v1 value");
    // The download root is dagster-wandb's.
    assert!(
        f.dir
            .path()
            .join("dagster_home/storage/wandb_artifacts_manager/artifacts/artifact_name.v1/output.pickle")
            .is_file()
    );
    // The run used what it read (lineage).
    let v0 = f.store().artifact(&Fixture::project(), "artifact_name", "v0").unwrap();
    let lineage = f.store().lineage(&v0).unwrap();
    assert_eq!(lineage.used_by.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [RUN_ID]);
}

#[test]
fn read_rules_fail_with_dagster_wandb_messages() {
    let f = Fixture::new();
    logged_versions(&f);
    let cases: Vec<(InputContext, &str)> = vec![
        (
            InputContext::default(),
            "The 'name' property is missing in the 'wandb_artifact_configuration' settings. For Artifacts used in an @op, a 'name' property is required.",
        ),
        (
            op_input(json!({"name": "artifact_name", "version": "v1", "alias": "latest"})),
            "You've provided both 'version' and 'alias' in the 'wandb_artifact_configuration' settings.",
        ),
        (
            op_input(json!({"name": "artifact_name", "get": "file", "get_path": "path"})),
            "You've provided both 'get' and 'get_path' in the 'wandb_artifact_configuration' settings.",
        ),
        (
            op_input(json!({"name ": "x", "path": "y"})),
            "The configuration keys '['name ', 'path']' you are trying to use are not supported within the 'wandb_artifact_configuration' metadata dictionary when reading an Artifact.",
        ),
        (
            op_input(json!({"name": "artifact_name", "partitions": {"*": {}}})),
            "You've included a 'partitions' value in the 'wandb_artifact_configuration' settings but it's not within a partitioned execution.",
        ),
        (
            InputContext {
                asset_key: Some(vec!["artifact_name".into()]),
                ..op_input(json!({"name": "artifact_name"}))
            },
            "A conflict has been detected in the provided configuration settings. The 'name' parameter appears to be specified twice",
        ),
        (op_input(json!({"name": "nothing_here"})), "The artifact you're attempting to download might not exist"),
        (
            op_input(json!({"name": "artifact_name", "get_path": "missing.txt"})),
            "the artifact entity/project/artifact_name:v2 has no file or directory \"missing.txt\"",
        ),
    ];
    for (context, expected) in cases {
        let error = message(read(&f, context).unwrap_err());
        assert!(error.starts_with(expected), "{error}\n  expected: {expected}");
    }
}

#[test]
fn get_path_downloads_one_file_and_a_plain_artifact_comes_back_whole() {
    let f = Fixture::new();
    let mut artifact = Artifact::new("files", "dataset").unwrap();
    for (name, body) in [("path/to/files/a.txt", "a"), ("path/to/files/b.txt", "b"), ("other.txt", "o")] {
        let mut file = artifact.new_file(name, NewFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut file, body.as_bytes()).unwrap();
        file.close().unwrap();
    }
    f.io().handle_output(&asset_output(&["files"], json!({})), Output::Artifact(Box::new(artifact))).unwrap();
    let asset_input = |config: Value| InputContext {
        asset_key: Some(vec!["files".into()]),
        configuration: Some(config),
        ..Default::default()
    };

    let Loaded::Path(path) = read(&f, asset_input(json!({"get_path": "path/to/files/a.txt"}))).unwrap() else {
        panic!()
    };
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a");
    assert!(!path.parent().unwrap().join("b.txt").exists(), "only the file asked for");
    let Loaded::Path(dir) = read(&f, asset_input(json!({"get_path": "path/to/files"}))).unwrap() else { panic!() };
    assert_eq!(std::fs::read_to_string(dir.join("b.txt")).unwrap(), "b");

    let Loaded::Artifact(whole) = read(&f, asset_input(json!({}))).unwrap() else { panic!() };
    assert_eq!(whole.version.qualified_name(), "files:v0");
    assert_eq!(std::fs::read_to_string(whole.root.join("other.txt")).unwrap(), "o");
    assert_eq!(whole.manifest.len(), 3);
}

#[test]
fn run_partitioned_op_inputs_add_the_partition_and_asset_inputs_do_not() {
    let f = Fixture::new();
    let partitioned = OutputContext {
        partition_key: Some("partition_key".into()),
        ..op_output(json!({"name": "artifact_name", "aliases": ["extra_alias"]}))
    };
    f.io().handle_output(&partitioned, Output::serialize("partitioned").unwrap()).unwrap();
    f.io().handle_output(&asset_output(&["plain"], json!({})), Output::serialize("plain").unwrap()).unwrap();

    let input = InputContext {
        partition_key: Some("partition_key".into()),
        ..op_input(json!({"name": "artifact_name", "alias": "extra_alias"}))
    };
    assert_eq!(read(&f, input).unwrap().into_value::<String>().unwrap(), "partitioned");
    assert!(
        f.dir
            .path()
            .join("dagster_home/storage/wandb_artifacts_manager/artifacts/artifact_name.partition_key.v0")
            .is_dir()
    );

    // An unpartitioned upstream asset read from a partitioned run is found by its own name (dagster-wandb
    // would look for `plain.p1`).
    let input =
        InputContext { asset_key: Some(vec!["plain".into()]), partition_key: Some("p1".into()), ..Default::default() };
    assert_eq!(read(&f, input).unwrap().into_value::<String>().unwrap(), "plain");
}

#[test]
fn upstream_partitions_load_as_a_map_with_star_defaults_never_merged() {
    let f = Fixture::new();
    let io = f.io();
    for key in ["p1", "p2", "p3"] {
        let context = OutputContext { partition_key: Some(key.into()), ..asset_output(&["up"], json!({})) };
        io.handle_output(&context, Output::serialize(&format!("{key} v0")).unwrap()).unwrap();
    }
    let table = Table::with_rows(["x"], vec![vec![json!(1)]]).unwrap();
    io.handle_output(
        &OutputContext { partition_key: Some("p2".into()), ..asset_output(&["up"], json!({})) },
        Output::Table(table.clone()),
    )
    .unwrap();
    let mut with_file = Artifact::new("up", "artifact").unwrap();
    with_file.new_file("some/file", NewFileOptions::default()).unwrap().close().unwrap();
    io.handle_output(
        &OutputContext { partition_key: Some("p3".into()), ..asset_output(&["up"], json!({"aliases": ["prod"]})) },
        Output::Artifact(Box::new(with_file)),
    )
    .unwrap();

    let input = InputContext {
        asset_key: Some(vec!["up".into()]),
        upstream_partition_keys: Some(vec!["p1".into(), "p2".into(), "p3".into()]),
        configuration: Some(
            json!({"partitions": {"*": {"version": "v0"}, "p2": {"get": "Table"}, "p3": {"get_path": "some/file", "alias": "prod"}}}),
        ),
        ..Default::default()
    };
    let Loaded::Partitions(parts) = read(&f, input).unwrap() else { panic!() };
    let keys: Vec<&str> = parts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["p1", "p2", "p3"]);
    let mut parts = parts.into_iter().map(|(_, v)| v);
    assert_eq!(parts.next().unwrap().into_value::<String>().unwrap(), "p1 v0");
    let Loaded::Table(read_table) = parts.next().unwrap() else { panic!() };
    assert_eq!(read_table, table, "p2's own settings win over '*' and are not merged with its version");
    let Loaded::Path(path) = parts.next().unwrap() else { panic!() };
    assert!(path.ends_with("up.p3.v1/some/file") && path.is_file(), "{}", path.display());

    // One partition is still a map, keyed as Dagster keys it.
    let single = InputContext {
        asset_key: Some(vec!["up".into()]),
        upstream_partition_keys: Some(vec!["p1".into()]),
        ..Default::default()
    };
    let Loaded::Partitions(parts) = read(&f, single).unwrap() else { panic!() };
    assert_eq!(parts.len(), 1);
}

#[test]
fn multi_dimensional_upstream_keys_read_dashed_names_and_keep_their_keys() {
    let f = Fixture::new();
    for key in ["1|a", "2|a"] {
        let context = OutputContext { partition_key: Some(key.into()), ..asset_output(&["mup"], json!({})) };
        f.io().handle_output(&context, Output::serialize(key).unwrap()).unwrap();
    }
    assert!(f.store().artifact(&Fixture::project(), "mup.1-a", "latest").is_ok());
    let input = InputContext {
        asset_key: Some(vec!["mup".into()]),
        upstream_partition_keys: Some(vec!["1|a".into(), "2|a".into()]),
        ..Default::default()
    };
    let Loaded::Partitions(parts) = read(&f, input).unwrap() else { panic!() };
    let parts: Vec<(String, String)> = parts.into_iter().map(|(k, v)| (k, v.into_value().unwrap())).collect();
    assert_eq!(parts, [("1|a".to_owned(), "1|a".to_owned()), ("2|a".to_owned(), "2|a".to_owned())]);
}

#[test]
fn partitioned_read_rules_name_the_partition() {
    let f = Fixture::new();
    let context = OutputContext { partition_key: Some("p1".into()), ..asset_output(&["up"], json!({})) };
    f.io().handle_output(&context, Output::serialize(&1).unwrap()).unwrap();
    let input = |config: Value| InputContext {
        asset_key: Some(vec!["up".into()]),
        upstream_partition_keys: Some(vec!["p1".into()]),
        configuration: Some(config),
        ..Default::default()
    };
    let cases = [
        (
            json!({"get": "x"}),
            "You've given a value for 'get' and/or 'get_path' in the 'wandb_artifact_configuration' settings during a partitioned execution.",
        ),
        (
            json!({"alias": "prod"}),
            "You've given a value for 'version' and/or 'alias' in the 'wandb_artifact_configuration' settings during a partitioned execution.",
        ),
        (json!({"partitions": {"p1": {}}}), "The configuration is empty for the partition identified by the key 'p1'."),
        (
            json!({"partitions": {"*": {"colour": "red"}}}),
            "The configuration keys '['colour']' you are trying to use are not supported for the partition identified by the key 'p1'.",
        ),
        (
            json!({"partitions": {"*": {"version": "v0", "alias": "x"}}}),
            "You've provided both 'version' and 'alias' for the partition with key 'p1'.",
        ),
        (
            json!({"partitions": {"p1": {"get": "a", "get_path": "b"}}}),
            "You've provided both 'get' and 'get_path' in the 'wandb_artifact_configuration' settings for the partition with key 'p1'.",
        ),
        (
            json!({"partitions": {"p1": {"version": "v7"}}}),
            "The artifact you're attempting to download might not exist",
        ),
    ];
    for (config, expected) in cases {
        let error = message(read(&f, input(config)).unwrap_err());
        assert!(error.starts_with(expected), "{error}\n  expected: {expected}");
        assert!(!error.contains("{key}"));
    }
}

fn aged_file(root: &Path) -> PathBuf {
    let path = root.join("artifacts/old.v0/stale.bin");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"stale").unwrap();
    let long_ago = filetime::FileTime::from_unix_time(1_000_000_000, 0);
    filetime::set_file_times(&path, long_ago, long_ago).unwrap();
    path
}

#[test]
fn the_sweep_runs_after_every_operation_even_a_failed_one() {
    let f = Fixture::new();
    let io = f.io();
    let stale = aged_file(io.storage_root());
    io.handle_output(&OutputContext::default(), Output::serialize(&1).unwrap()).unwrap_err();
    assert!(!stale.exists(), "swept after a failed handle_output");
    assert!(!stale.parent().unwrap().exists(), "and its emptied directory");

    let stale = aged_file(io.storage_root());
    io.load_input(&op_input(json!({"name": "missing"}))).unwrap_err();
    assert!(!stale.exists(), "swept after a failed load_input");

    // `0` keeps nothing: the download is gone after the value was read.
    let mut settings = f.settings(RUN_ID);
    settings.config.cache_duration_in_minutes = Some(0);
    let io = WandbArtifactsIoManager::new(settings).unwrap();
    io.handle_output(&op_output(json!({"name": "n"})), Output::serialize(&5).unwrap()).unwrap();
    assert_eq!(io.load_input(&op_input(json!({"name": "n"}))).unwrap().into_value::<i32>().unwrap(), 5);
    assert_eq!(std::fs::read_dir(io.storage_root()).unwrap().count(), 0);
}

#[test]
fn an_api_key_from_an_unset_variable_is_named() {
    let f = Fixture::new();
    let mut settings = f.settings(RUN_ID);
    settings.resource.api_key = Some(StringSource::Env("DAGSTER_BRIDGE_TEST_UNSET_KEY".into()));
    let error = message(WandbArtifactsIoManager::new(settings).unwrap_err());
    assert_eq!(
        error,
        "invalid configuration wandb_resource.api_key: the environment variable \"DAGSTER_BRIDGE_TEST_UNSET_KEY\" it names is not set"
    );
}

#[test]
fn a_python_step_and_a_rust_step_meet_through_a_w_and_b_server() {
    let f = Fixture::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(async {
        let options = wandb_server::ServerOptions::default();
        wandb_server::WandbServer::bind(f.store(), "127.0.0.1:0".parse().unwrap(), options).await.unwrap().spawn()
    });
    let mut settings = f.settings(RUN_ID);
    settings.resource =
        WandbResource { host: format!("{}/", server.base_url()), api_key: Some(StringSource::Value("key".into())) };
    let io = WandbArtifactsIoManager::new(settings).unwrap();
    let logged = io
        .handle_output(
            &asset_output(&["served"], json!({"type": "dataset", "aliases": ["best"]})),
            Output::serialize(&vec!["a", "b"]).unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(logged.artifact_url, format!("{}/entity/project/artifacts/dataset/served/v0", server.base_url()));
    // The URLs the materialization carries open the server's pages (an open server: no sign-in).
    for key in ["wandb_artifact_url", "wandb_run_url"] {
        let Some((_, MetadataValue::Url(url))) = logged.metadata.iter().find(|(k, _)| k == key) else {
            panic!("no {key} in {:?}", logged.metadata)
        };
        let (status, body) = http_get(url);
        assert_eq!(status, 200, "{key} {url}: {body}");
        assert!(body.contains(if key == "wandb_run_url" { RUN_ID } else { "served:v0" }), "{key}: {body}");
    }
    let input = InputContext {
        asset_key: Some(vec!["served".into()]),
        configuration: Some(json!({"alias": "best"})),
        ..Default::default()
    };
    assert_eq!(io.load_input(&input).unwrap().into_value::<Vec<String>>().unwrap(), ["a", "b"]);
    // The server's store holds the version, made and used by the Dagster run, which is tagged.
    let version = f.store().artifact(&Fixture::project(), "served", "best").unwrap();
    assert_eq!(version.created_by.as_deref(), Some(RUN_ID));
    assert_eq!(f.store().lineage(&version).unwrap().used_by.len(), 1);
    assert_eq!(f.store().run(&Fixture::project(), RUN_ID).unwrap().tags, ["dagster_wandb"]);
    runtime.block_on(server.shutdown());
}

/// A GET over plain HTTP/1.1 (the server is on loopback): status and body.
fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[test]
fn a_step_logs_metrics_to_the_run_its_artifacts_belong_to() {
    let f = Fixture::new();
    let io = f.io();
    let mut run = io.start_run().unwrap();
    for loss in [0.9, 0.5] {
        run.log(json!({"loss": loss}).as_object().unwrap().clone()).unwrap();
    }
    run.finish().unwrap();
    let logged =
        io.handle_output(&op_output(json!({"name": "model"})), Output::serialize(&[1]).unwrap()).unwrap().unwrap();
    assert_eq!(logged.version.created_by.as_deref(), Some(RUN_ID));

    // The next step of the same Dagster run resumes the run and continues its history.
    let mut run = f.io().start_run().unwrap();
    assert!(run.resumed());
    run.log(json!({"loss": 0.1}).as_object().unwrap().clone()).unwrap();
    run.finish().unwrap();
    let history = f.store().run_history(&Fixture::project(), RUN_ID).unwrap();
    let steps: Vec<u64> = history.iter().map(|r| r["_step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 1, 2]);
    let record = f.store().run(&Fixture::project(), RUN_ID).unwrap();
    assert_eq!(record.tags, ["dagster_wandb"]);
    assert_eq!(record.outputs.len(), 1);
}

#[test]
fn get_of_a_partitioned_table_reads_its_parts_as_one_table() {
    let f = Fixture::new();
    let store = f.store();
    let project = Fixture::project();
    for i in 0..3 {
        let mut part = Artifact::new("dist-ds", "dataset").unwrap();
        let table = Table::with_rows(["a", "b"], vec![vec![json!(i), json!(format!("row{i}"))]]).unwrap();
        let mut file = part.new_file(&format!("parts/table_{i}.table.json"), NewFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut file, &table.to_wandb_json()).unwrap();
        file.close().unwrap();
        store.upsert_artifact(&project, &part, "grp").unwrap();
    }
    let mut finisher = Artifact::new("dist-ds", "dataset").unwrap();
    let mut file = finisher.new_file("merged.partitioned-table.json", NewFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut file, &serde_modules::PartitionedTable::new("parts").to_wandb_json()).unwrap();
    file.close().unwrap();
    store.finish_artifact(&project, &finisher, "grp", &wandb_store::LogOptions::default()).unwrap();

    let input = op_input(json!({"name": "dist-ds", "get": "merged"}));
    let Loaded::Table(table) = read(&f, input).unwrap() else { panic!() };
    let a: Vec<i64> = table.rows().iter().map(|r| r[0].as_i64().unwrap()).collect();
    assert_eq!(a, [0, 1, 2]);
}
