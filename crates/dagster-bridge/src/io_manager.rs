//! dagster-wandb's `wandb_artifacts_io_manager`, for Rust steps: an output becomes an artifact version, an
//! input is loaded from one, with the same names, aliases, metadata and rules as the Python IO manager, so
//! Python and Rust steps of one pipeline find each other's artifacts.
//!
//! Differences from dagster-wandb 0.29.27, each a fix of a quirk its spec records:
//! - aliases never pile up across materializations (the configured list is copied, not appended to);
//! - partition errors name the partition instead of printing the literal text `{key}`;
//! - a partitioned read refuses a top-level `version` or `alias` (dagster-wandb silently ignores them);
//! - a partitioned read always yields a map by partition key, even for one partition (dagster-wandb returns
//!   the bare value then);
//! - an asset input whose upstream is not partitioned is read by its own name in a partitioned run
//!   (dagster-wandb appends the run's partition key, looking for an artifact nobody wrote); op inputs keep the
//!   suffix, as dagster-wandb's tests require;
//! - `get` of an object the artifact does not have is an error naming it, not `None`;
//! - there is no `PYTEST_CURRENT_TEST` hook replacing the run id.
//!
//! The naming rules are kept exactly, quirks included: the name is the asset key's **first** component, and
//! `|` of multi-dimensional partition keys becomes `-` on write (not for user-built artifacts) and on
//! partitioned reads (not on run-partitioned op reads).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use artifact_core::{AddDirOptions, AddFileOptions, Artifact, LogicalPath, Manifest, NewFileOptions, ReferenceOptions};
use serde_json::{Map, Value};
use wandb_api::{Api, ArtifactVersion, BaseUrl, LogOptions, ProjectRef, RunOptions, Settings, block_on};

use crate::config::{
    AddFileSpec, IoManagerConfig, ReadConfiguration, ReadSelection, WandbConfig, WandbResource, WriteConfiguration,
    run_alias,
};
use crate::error::{Error, Result};
use crate::pipes::{LogLevel, MetadataValue, PipesSession};

const NONE_OUTPUT_WARNING: &str = "The output value given to the Weights & Biases (W&B) IO Manager is empty. If this was intended, you can disregard this warning.";
const SEVERAL_PARTITIONS: &str = "Sorry, but the Weights & Biases (W&B) IO Manager can't handle processing several partitions at the same time within a single run. Please process each partition separately. If you think this might be an error, don't hesitate to reach out to Weights & Biases Support.";
const ARTIFACT_WITH_NAME: &str = "You've provided a 'name' property in the 'wandb_artifact_configuration' settings. However, this 'name' property should only be used when the output isn't already an Artifact object.";
const ARTIFACT_WITH_TYPE: &str = "You've provided a 'type' property in the 'wandb_artifact_configuration' settings. However, this 'type' property should only be used when the output isn't already an Artifact object.";
const ARTIFACT_SERIALIZATION_IGNORED: &str = "You've included a 'serialization_module' in the 'wandb_artifact_configuration' settings. However, this doesn't have any impact when the output is already an Artifact object.";
const TABLE_SERIALIZATION_IGNORED: &str = "You've included a 'serialization_module' in the 'wandb_artifact_configuration' settings. However, this doesn't have any impact when the output is already a W&B object like e.g Table or Image.";
const DOUBLE_DESCRIPTION: &str = "You've given a 'description' in the 'wandb_artifact_configuration' settings for an existing Artifact that already has a description. Please, either set the description using 'wandb_artifact_argument' or when creating your Artifact.";
const ASSET_WITH_NAME: &str = "You've included a 'name' property in the 'wandb_artifact_configuration' settings. But, a 'name' is only needed when there's no 'AssetKey'. When an Artifact is created from an @asset, it uses the asset name. When it's created from an @op with an 'asset_key' for the output, that value is used. Please remove the 'name' property.";
const OP_OUTPUT_WITHOUT_NAME: &str = "The 'name' property is missing in the 'wandb_artifact_configuration' settings. For Artifacts created from an @op, a 'name' property is needed. You could also use an @asset as an alternative.";
const PARTITIONS_OUTSIDE_PARTITIONED: &str = "You've included a 'partitions' value in the 'wandb_artifact_configuration' settings but it's not within a partitioned execution. Please only use 'partitions' within a partitioned context.";
const TOP_LEVEL_GET_IN_PARTITIONED: &str = "You've given a value for 'get' and/or 'get_path' in the 'wandb_artifact_configuration' settings during a partitioned execution. Please use the 'partitions' property to set 'get' or 'get_path' for each individual partition. To set a default value for all partitions, use '*'.";
const TOP_LEVEL_VERSION_IN_PARTITIONED: &str = "You've given a value for 'version' and/or 'alias' in the 'wandb_artifact_configuration' settings during a partitioned execution. Please use the 'partitions' property to set 'version' or 'alias' for each individual partition. To set a default value for all partitions, use '*'.";
const INPUT_NAME_CONFLICT: &str = "A conflict has been detected in the provided configuration settings. The 'name' parameter appears to be specified twice - once in the 'wandb_artifact_configuration' metadata dictionary, and again as an AssetKey. Kindly avoid setting the name directly, since the AssetKey will be used for this purpose.";
const OP_INPUT_WITHOUT_NAME: &str = "The 'name' property is missing in the 'wandb_artifact_configuration' settings. For Artifacts used in an @op, a 'name' property is required. You could use an @asset as an alternative.";
const VERSION_AND_ALIAS: &str = "You've provided both 'version' and 'alias' in the 'wandb_artifact_configuration' settings. Only one should be used at a time. If you decide not to use any, the latest version will be applied automatically.";
const GET_AND_GET_PATH: &str = "You've provided both 'get' and 'get_path' in the 'wandb_artifact_configuration' settings. Only one should be used at a time. If you decide not to use any, the entire Artifact will be returned.";

/// Everything the IO manager is built from: dagster-wandb's two resources, its own config, and the run.
#[derive(Clone, Debug)]
pub struct IoManagerSettings {
    /// `wandb_resource`.
    pub resource: WandbResource,
    /// `wandb_config`.
    pub wandb_config: WandbConfig,
    /// The IO manager's config.
    pub config: IoManagerConfig,
    /// The Dagster run id (Pipes: `context.run_id`).
    pub dagster_run_id: String,
}

/// What an output is.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Nothing: a warning, and no artifact (dagster-wandb's `None` output).
    None,
    /// A value, written as `output.<module>` with the configured serialization module (`pickle` by default).
    Value(serde_modules::Value),
    /// A W&B Table, written as `Table.table.json` (read back with `get: "Table"`).
    Table(serde_modules::Table),
    /// An artifact the step built itself; it is logged as it is, plus the configured extras and aliases.
    Artifact(Box<Artifact>),
}

impl Output {
    /// Any serializable value, as Python's plain data (see [`serde_modules::to_value`]).
    ///
    /// # Errors
    /// What [`serde_modules::to_value`] refuses.
    pub fn serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Output::Value(serde_modules::to_value(value)?))
    }
}

/// Where an output goes (dagster's `OutputContext`, reduced to what the IO manager reads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputContext {
    /// The asset key's path, for an asset (or an op output with an asset key).
    pub asset_key: Option<Vec<String>>,
    /// The run's partition key (multi-dimensional keys joined by `|`).
    pub partition_key: Option<String>,
    /// The run covers several partitions at once (a single-run backfill), which the IO manager refuses.
    pub several_partitions: bool,
    /// The output's `wandb_artifact_configuration` metadata.
    pub configuration: Option<Value>,
}

/// Where an input comes from (dagster's `InputContext`, reduced to what the IO manager reads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputContext {
    /// The upstream asset key's path, for an asset input.
    pub asset_key: Option<Vec<String>>,
    /// The run's partition key.
    pub partition_key: Option<String>,
    /// The upstream partitions to load, for a partitioned upstream asset (all of them for an unpartitioned
    /// reader, the mapped ones for a partitioned reader).
    pub upstream_partition_keys: Option<Vec<String>>,
    /// The input's `wandb_artifact_configuration` metadata.
    pub configuration: Option<Value>,
}

/// What an input loads to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Loaded {
    /// The value of the artifact's `output.<module>` file, and the module that wrote it.
    Value {
        /// The module (detected from the file present, as dagster-wandb does).
        module: serde_modules::Module,
        /// The value.
        value: serde_modules::Value,
    },
    /// A W&B Table (`get` of a `*.table.json` object, or of a `*.partitioned-table.json` one: its parts in one).
    Table(serde_modules::Table),
    /// Another W&B object (`get` of a `*.<type>.json` object), as JSON.
    Object(Value),
    /// A file or directory of the artifact (`get_path`), downloaded.
    Path(PathBuf),
    /// The whole artifact, downloaded and verified, when it holds no `output.*` file.
    Artifact(Box<LoadedArtifact>),
    /// Upstream partitions, by partition key (keys as Dagster gives them, `|` kept), in the order asked.
    Partitions(Vec<(String, Loaded)>),
}

impl Loaded {
    /// The value converted into `T`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the input is not a value; conversion errors.
    pub fn into_value<T: serde::de::DeserializeOwned>(self) -> Result<T> {
        match self {
            Loaded::Value { value, .. } => Ok(serde_modules::from_value(value)?),
            other => Err(Error::InvalidConfig {
                key: "input".to_owned(),
                reason: format!("is {}, not a serialized value", other.kind()),
            }),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Loaded::Value { .. } => "a value",
            Loaded::Table(_) => "a table",
            Loaded::Object(_) => "a W&B object",
            Loaded::Path(_) => "a path",
            Loaded::Artifact(_) => "a whole artifact",
            Loaded::Partitions(_) => "a map of partitions",
        }
    }
}

/// An artifact version downloaded in full.
#[derive(Debug)]
pub struct LoadedArtifact {
    /// The version.
    pub version: ArtifactVersion,
    /// Its manifest.
    pub manifest: Manifest,
    /// Where its files are.
    pub root: PathBuf,
}

/// The W&B run the operations belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// The id (the Dagster run id unless configured).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The entity.
    pub entity: String,
    /// The project.
    pub project: String,
    /// `entity/project/id`.
    pub path: String,
    /// The run's web page.
    pub url: String,
}

/// An output logged: the version and the metadata Dagster shows for it.
#[derive(Clone, Debug)]
pub struct Materialization {
    /// The version (a new one, or the latest when the content was identical).
    pub version: ArtifactVersion,
    /// Whether a new version was created.
    pub created: bool,
    /// The version's web page.
    pub artifact_url: String,
    /// The run.
    pub run: RunInfo,
    /// dagster-wandb's 12 output-metadata keys, then `wandb_artifact_digest` and `wandb_artifact_file_count`.
    pub metadata: Vec<(String, MetadataValue)>,
}

/// The IO manager. Every operation resumes the W&B run, does its work, and sweeps the local storage
/// afterwards, also when it failed.
///
/// ```
/// use dagster_bridge::config::{IoManagerConfig, WandbConfig, WandbResource};
/// use dagster_bridge::io_manager::{InputContext, IoManagerSettings, Loaded, Output, OutputContext, WandbArtifactsIoManager};
/// use serde_json::json;
///
/// let dir = tempfile::tempdir()?;
/// let settings = IoManagerSettings {
///     resource: WandbResource { host: format!("file://{}", dir.path().join("store").display()), ..Default::default() },
///     wandb_config: WandbConfig { entity: "team".into(), project: "demo".into() },
///     config: IoManagerConfig { base_dir: Some(dir.path().into()), ..Default::default() },
///     dagster_run_id: "0ab2e48b-6d63-4ff5-b160-662cc60145f4".into(),
/// };
/// let io = WandbArtifactsIoManager::new(settings)?;
/// let out = OutputContext {
///     asset_key: Some(vec!["numbers".into()]),
///     configuration: Some(json!({"type": "dataset", "aliases": ["best"]})),
///     ..Default::default()
/// };
/// let logged = io.handle_output(&out, Output::serialize(&vec![1, 2, 3])?)?.expect("not None");
/// assert_eq!(logged.version.qualified_name(), "numbers:v0");
/// assert_eq!(logged.version.aliases, ["best", "dagster-run-0ab2e48b", "latest"]);
///
/// let input = InputContext { asset_key: Some(vec!["numbers".into()]), ..Default::default() };
/// assert_eq!(io.load_input(&input)?.into_value::<Vec<i32>>()?, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WandbArtifactsIoManager {
    /// The backend the resource's host names, with the reference resolvers and the W&B cache.
    api: Api,
    project: ProjectRef,
    app_url: String,
    dagster_run_id: String,
    run_id: String,
    run_name: String,
    run_tags: Vec<String>,
    storage_root: PathBuf,
    cache_duration_minutes: i64,
    pipes: Option<Arc<PipesSession>>,
}

impl std::fmt::Debug for WandbArtifactsIoManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WandbArtifactsIoManager")
            .field("project", &self.project)
            .field("run_id", &self.run_id)
            .field("storage_root", &self.storage_root)
            .finish_non_exhaustive()
    }
}

impl WandbArtifactsIoManager {
    /// Connects to the backend the resource's host names (`file://` an embedded store, `http(s)://` a server).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when there is no `base_dir` and no `DAGSTER_HOME`, or the API key's variable is
    /// unset; backend errors.
    pub fn new(settings: IoManagerSettings) -> Result<Self> {
        let IoManagerSettings { resource, wandb_config, config, dagster_run_id } = settings;
        let base_dir = match &config.base_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("DAGSTER_HOME").map(PathBuf::from).ok_or_else(|| Error::InvalidConfig {
                key: "wandb_artifacts_io_manager.base_dir".to_owned(),
                reason: "is not set, and neither is DAGSTER_HOME".to_owned(),
            })?,
        };
        let api_key = resource.api_key.as_ref().map(|k| k.resolve("wandb_resource.api_key")).transpose()?;
        let mut settings = Settings::from_env_with_base_url(BaseUrl::parse(&resource.host)?)?
            .with_entity(&wandb_config.entity)
            .with_project(&wandb_config.project);
        if api_key.is_some() {
            settings = settings.with_api_key(api_key);
        }
        Ok(WandbArtifactsIoManager {
            api: Api::new(settings)?,
            project: ProjectRef::new(&wandb_config.entity, &wandb_config.project)?,
            app_url: resource.app_url(),
            run_id: config.run_id_for(&dagster_run_id),
            run_name: config.run_name_for(&dagster_run_id),
            run_tags: config.tags(),
            storage_root: io_cache::storage_root(&base_dir),
            cache_duration_minutes: config.cache_duration(),
            dagster_run_id,
            pipes: None,
        })
    }

    /// Sends the IO manager's warnings and info logs to Dagster through `session` (they always go to
    /// `tracing` too).
    pub fn with_pipes(mut self, session: Arc<PipesSession>) -> Self {
        self.pipes = Some(session);
        self
    }

    /// `<base_dir>/storage/wandb_artifacts_manager`: downloads go under `artifacts/`, and the sweep covers it all.
    pub fn storage_root(&self) -> &Path {
        &self.storage_root
    }

    /// The web page of run `run_id` of `entity/project`, on this IO manager's host.
    pub fn run_url(&self, entity: &str, project: &str, run_id: &str) -> String {
        format!("{}/{entity}/{project}/runs/{run_id}", self.app_url)
    }

    /// The W&B run every operation resumes.
    pub fn run(&self) -> RunInfo {
        let (entity, project) = (self.project.entity(), self.project.project());
        RunInfo {
            id: self.run_id.clone(),
            name: self.run_name.clone(),
            entity: entity.to_owned(),
            project: project.to_owned(),
            path: format!("{entity}/{project}/{}", self.run_id),
            url: self.run_url(entity, project, &self.run_id),
        }
    }

    /// The W&B run, resumed (`resume="allow"`), to log metrics to beside the artifacts: the same run every
    /// IO-manager operation of this Dagster run resumes, so its history continues across steps.
    ///
    /// # Errors
    /// Backend errors.
    pub fn start_run(&self) -> Result<wandb_api::Run> {
        let settings = wandb_api::RunSettings::new(self.project.project())
            .entity(self.project.entity())
            .id(&self.run_id)
            .name(&self.run_name)
            .tags(self.run_tags.clone());
        Ok(self.api.init(settings)?)
    }

    /// The API (backend, reference resolvers, cache) this IO manager works through.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The W&B server launches go through, with this IO manager's entity and project.
    #[cfg(feature = "launch")]
    fn launch_target(&self) -> Result<(&wandb_api::client::WandbClient, WandbConfig)> {
        let Some(client) = self.api.backend().as_client() else {
            return Err(Error::InvalidConfig {
                key: "wandb_resource.host".to_owned(),
                reason: "names an embedded store; W&B Launch needs a W&B server (`dagster-wandb server` serves one over a store)".to_owned(),
            });
        };
        let wandb_config =
            WandbConfig { entity: self.project.entity().to_owned(), project: self.project.project().to_owned() };
        Ok((client, wandb_config))
    }

    /// dagster-wandb's `run_launch_job` op on this IO manager's W&B server and entity/project (see
    /// [`crate::launch`]); `log` receives the op's messages.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] on an embedded store (launch needs a server) or without a queue; launch errors.
    #[cfg(feature = "launch")]
    pub fn launch_job(
        &self,
        config: &crate::launch::LaunchJobConfig,
        timeout: std::time::Duration,
    ) -> Result<crate::launch::LaunchOutcome> {
        let (client, wandb_config) = self.launch_target()?;
        crate::launch::run_launch_job(client, &wandb_config, config, timeout, &|m| self.log(LogLevel::Info, m))
    }

    /// dagster-wandb's `run_launch_agent` op on this IO manager's W&B server and entity: runs until `shutdown` is
    /// set or the server asks the agent to stop.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] on an embedded store; launch errors.
    #[cfg(feature = "launch")]
    pub fn launch_agent(
        &self,
        config: &crate::launch::LaunchAgentConfig,
        shutdown: &std::sync::atomic::AtomicBool,
    ) -> Result<wandb_launch::AgentReport> {
        let (_, wandb_config) = self.launch_target()?;
        crate::launch::run_launch_agent(&self.api, &wandb_config, config, shutdown)
    }

    /// Logs `output` as an artifact version (dagster-wandb's `handle_output`). `Output::None` logs nothing and
    /// returns `None`.
    ///
    /// # Errors
    /// [`Error::IoManager`] for every dagster-wandb rule broken (several partitions, unknown keys, an
    /// unsupported module, `name`/`type`/`description` conflicts, a missing name); configuration, artifact,
    /// serialization and backend errors.
    pub fn handle_output(&self, context: &OutputContext, output: Output) -> Result<Option<Materialization>> {
        if let Output::None = output {
            self.log(LogLevel::Warning, NONE_OUTPUT_WARNING);
            return Ok(None);
        }
        if context.several_partitions && context.partition_key.is_none() {
            return Err(Error::IoManager(SEVERAL_PARTITIONS.to_owned()));
        }
        self.in_run(|| self.upload(context, output)).map(Some)
    }

    /// Loads an input from its artifact (dagster-wandb's `load_input`).
    ///
    /// # Errors
    /// [`Error::IoManager`] for every dagster-wandb rule broken; [`Error::ArtifactMissing`],
    /// [`Error::NoSuchObject`], [`Error::NoSuchPath`]; backend and deserialization errors.
    pub fn load_input(&self, context: &InputContext) -> Result<Loaded> {
        self.in_run(|| self.download_input(context))
    }

    /// Resumes the run, runs `body`, and sweeps whatever happened. A failed sweep is a warning: the operation's
    /// own outcome is what the step reports.
    fn in_run<T>(&self, body: impl FnOnce() -> Result<T>) -> Result<T> {
        let run = RunOptions {
            id: Some(self.run_id.clone()),
            name: Some(self.run_name.clone()),
            tags: self.run_tags.clone(),
            job_type: None,
        };
        let resumed = block_on(self.api.backend().resume_run(&self.project, &run)).map_err(Error::from);
        let result = resumed.and_then(|_| body());
        let options = io_cache::SweepOptions { duration_minutes: self.cache_duration_minutes, ..Default::default() };
        if let Err(e) = io_cache::sweep(&self.storage_root, options) {
            self.log(LogLevel::Warning, &format!("sweeping {} failed: {e}", self.storage_root.display()));
        }
        result
    }

    fn upload(&self, context: &OutputContext, output: Output) -> Result<Materialization> {
        let config = WriteConfiguration::from_json(context.configuration.as_ref())?;
        let module_config = config.serialization_module.clone().unwrap_or_default();
        let module = module_config.module()?;
        let mut metadata = Map::new();
        metadata.insert("source_integration".into(), serde_modules::INTEGRATION_NAME.into());
        metadata.insert("source_integration_version".into(), serde_modules::INTEGRATION_VERSION.into());
        metadata.insert("source_dagster_run_id".into(), self.dagster_run_id.clone().into());
        metadata.insert("source_created_at".into(), wandb_api::utc_isoformat(SystemTime::now()).into());

        let mut artifact = match output {
            Output::Artifact(artifact) => self.adopt_artifact(context, &config, *artifact, metadata)?,
            other => {
                let name = match &context.asset_key {
                    Some(key) => {
                        if config.name.is_some() {
                            return Err(Error::IoManager(ASSET_WITH_NAME.to_owned()));
                        }
                        first_component(key)?
                    }
                    None => config.name.clone().ok_or_else(|| Error::IoManager(OP_OUTPUT_WITHOUT_NAME.to_owned()))?,
                };
                let name = match &context.partition_key {
                    Some(partition) => format!("{name}.{partition}"),
                    None => name,
                };
                // `|` separates the dimensions of multi-dimensional partition keys; W&B names cannot hold it.
                let name = name.replace('|', "-");
                let mut artifact = Artifact::new(&name, config.artifact_type.as_deref().unwrap_or("artifact"))?;
                artifact.set_description(config.description.clone());
                match other {
                    Output::Table(table) => {
                        if config.has_serialization_module() {
                            self.log(LogLevel::Warning, TABLE_SERIALIZATION_IGNORED);
                        }
                        write_new_file(
                            &mut artifact,
                            &serde_modules::Table::file_name("Table"),
                            &table.to_wandb_json(),
                        )?;
                    }
                    Output::Value(value) => {
                        let options = module.options(&module_config.parameters)?;
                        let bytes = module.encode_value(&value, &options)?;
                        write_new_file(&mut artifact, module.file_name(), &bytes)?;
                        metadata.extend(module.metadata(&options));
                        self.log(
                            LogLevel::Info,
                            &format!(
                                "Output serialized using {} with parameters={}",
                                module.name(),
                                py_dict(&options_shown(&module_config.parameters, &options))
                            ),
                        );
                    }
                    Output::None | Output::Artifact(_) => unreachable!("handled above"),
                }
                artifact.set_metadata(Value::Object(metadata))?;
                artifact
            }
        };

        for spec in &config.add_files {
            add_file(&mut artifact, spec)?;
        }
        for spec in &config.add_dirs {
            let options = AddDirOptions { name: spec.name.clone(), skip_cache: spec.skip_cache, overwrite: spec.merge };
            artifact.add_dir(&spec.local_path, options)?;
        }
        for spec in &config.add_references {
            let options =
                ReferenceOptions { name: spec.name.clone(), checksum: spec.checksum, max_objects: spec.max_objects };
            artifact.add_reference_with(&spec.uri, options, Some(self.api.references().as_ref()))?;
        }

        // A copy: dagster-wandb appends to the configured list itself, so aliases pile up across runs.
        let mut aliases = config.aliases.clone();
        aliases.push(run_alias(&self.dagster_run_id));
        if !aliases.iter().any(|a| a == "latest") {
            aliases.push("latest".to_owned());
        }
        let options = LogOptions::default().with_aliases(aliases).with_run_id(self.run_id.clone());
        let logged = block_on(self.api.backend().log_artifact(&self.project, &artifact, &options))?;
        Ok(self.materialization(logged.version, logged.created))
    }

    /// dagster-wandb's branch for an output that is already an artifact.
    fn adopt_artifact(
        &self,
        context: &OutputContext,
        config: &WriteConfiguration,
        mut artifact: Artifact,
        metadata: Map<String, Value>,
    ) -> Result<Artifact> {
        if config.name.is_some() {
            return Err(Error::IoManager(ARTIFACT_WITH_NAME.to_owned()));
        }
        if config.artifact_type.is_some() {
            return Err(Error::IoManager(ARTIFACT_WITH_TYPE.to_owned()));
        }
        if let Some(key) = &context.asset_key {
            let identifier = first_component(key)?;
            if artifact.name() != identifier {
                self.log(LogLevel::Warning, &format!(
                    "Please note, the name '{}' of your Artifact is overwritten by the name derived from the AssetKey '{identifier}'. For consistency and to avoid confusion, we advise sharing a constant for both your asset's name and the artifact's name.",
                    artifact.name()
                ));
                artifact.set_name(&identifier)?;
            }
        }
        if let Some(partition) = &context.partition_key {
            // No `|` replacement on this path, as in dagster-wandb: a multi-dimensional key is an invalid name.
            let name = format!("{}.{partition}", artifact.name());
            artifact.set_name(&name)?;
        }
        if config.has_serialization_module() {
            self.log(LogLevel::Warning, ARTIFACT_SERIALIZATION_IGNORED);
        }
        let mut merged = artifact.metadata().clone();
        merged.extend(metadata);
        artifact.set_metadata(Value::Object(merged))?;
        match (artifact.description(), &config.description) {
            (Some(_), Some(_)) => return Err(Error::IoManager(DOUBLE_DESCRIPTION.to_owned())),
            (None, Some(description)) => artifact.set_description(Some(description.clone())),
            _ => {}
        }
        Ok(artifact)
    }

    fn materialization(&self, version: ArtifactVersion, created: bool) -> Materialization {
        let run = self.run();
        let artifact_url = format!(
            "{}/{}/{}/artifacts/{}/{}/{}",
            self.app_url,
            run.entity,
            run.project,
            version.artifact_type,
            version.name,
            version.version()
        );
        let metadata = vec![
            ("dagster_run_id".to_owned(), MetadataValue::DagsterRun(self.dagster_run_id.clone())),
            ("wandb_artifact_id".to_owned(), MetadataValue::Text(version.id.clone())),
            ("wandb_artifact_type".to_owned(), MetadataValue::Text(version.artifact_type.clone())),
            ("wandb_artifact_version".to_owned(), MetadataValue::Text(version.version())),
            ("wandb_artifact_size".to_owned(), MetadataValue::Int(i64::try_from(version.size).unwrap_or(i64::MAX))),
            ("wandb_artifact_url".to_owned(), MetadataValue::Url(artifact_url.clone())),
            ("wandb_entity".to_owned(), MetadataValue::Text(run.entity.clone())),
            ("wandb_project".to_owned(), MetadataValue::Text(run.project.clone())),
            ("wandb_run_id".to_owned(), MetadataValue::Text(run.id.clone())),
            ("wandb_run_name".to_owned(), MetadataValue::Text(run.name.clone())),
            ("wandb_run_path".to_owned(), MetadataValue::Text(run.path.clone())),
            ("wandb_run_url".to_owned(), MetadataValue::Url(run.url.clone())),
            ("wandb_artifact_digest".to_owned(), MetadataValue::Text(version.digest.clone())),
            (
                "wandb_artifact_file_count".to_owned(),
                MetadataValue::Int(i64::try_from(version.file_count).unwrap_or(i64::MAX)),
            ),
        ];
        Materialization { version, created, artifact_url, run, metadata }
    }

    fn download_input(&self, context: &InputContext) -> Result<Loaded> {
        let config = ReadConfiguration::from_json(context.configuration.as_ref())?;
        let Some(partition_keys) = &context.upstream_partition_keys else {
            if !config.partitions.is_empty() {
                return Err(Error::IoManager(PARTITIONS_OUTSIDE_PARTITIONED.to_owned()));
            }
            return self.download_unpartitioned(context, &config);
        };
        if config.selection.get.is_some() || config.selection.get_path.is_some() {
            return Err(Error::IoManager(TOP_LEVEL_GET_IN_PARTITIONED.to_owned()));
        }
        if config.selection.version.is_some() || config.selection.alias.is_some() {
            return Err(Error::IoManager(TOP_LEVEL_VERSION_IN_PARTITIONED.to_owned()));
        }
        let name = match (&config.name, &context.asset_key) {
            (Some(name), _) => name.clone(),
            (None, Some(key)) => first_component(key)?,
            (None, None) => return Err(Error::IoManager(OP_INPUT_WITHOUT_NAME.to_owned())),
        };
        let mut loaded = Vec::with_capacity(partition_keys.len());
        for key in partition_keys {
            self.log(LogLevel::Info, &format!("Handling partition with key '{key}'"));
            let selection = config.partition(key)?;
            let artifact_name = format!("{name}.{}", key.replace('|', "-"));
            let identifier = selection.version.as_deref().or(selection.alias.as_deref()).unwrap_or("latest");
            let version = self.find(&artifact_name, identifier)?;
            loaded.push((key.clone(), self.read(&version, &selection)?));
        }
        Ok(Loaded::Partitions(loaded))
    }

    fn download_unpartitioned(&self, context: &InputContext, config: &ReadConfiguration) -> Result<Loaded> {
        let name = match &context.asset_key {
            Some(key) => {
                if config.name.is_some() {
                    return Err(Error::IoManager(INPUT_NAME_CONFLICT.to_owned()));
                }
                first_component(key)?
            }
            None => {
                let name = config.name.clone().ok_or_else(|| Error::IoManager(OP_INPUT_WITHOUT_NAME.to_owned()))?;
                // The run's partition names an op's upstream output (no `|` replacement, as in dagster-wandb).
                match &context.partition_key {
                    Some(partition) => format!("{name}.{partition}"),
                    None => name,
                }
            }
        };
        let selection = &config.selection;
        if selection.alias.is_some() && selection.version.is_some() {
            return Err(Error::IoManager(VERSION_AND_ALIAS.to_owned()));
        }
        let identifier = selection.alias.as_deref().or(selection.version.as_deref()).unwrap_or("latest");
        let version = self.find(&name, identifier)?;
        if selection.get.is_some() && selection.get_path.is_some() {
            return Err(Error::IoManager(GET_AND_GET_PATH.to_owned()));
        }
        self.read(&version, selection)
    }

    /// The version `name:identifier` of the project, recorded as used by the run.
    fn find(&self, name: &str, identifier: &str) -> Result<ArtifactVersion> {
        let uri = format!("{}/{name}:{identifier}", self.project);
        artifact_core::validate_artifact_name(name)?;
        let backend = self.api.backend();
        let version = block_on(backend.artifact(&self.project, name, identifier))
            .map_err(|source| Error::ArtifactMissing { uri: uri.clone(), source })?;
        block_on(backend.record_use(&self.project, &self.run_id, &version))?;
        Ok(version)
    }

    fn read(&self, version: &ArtifactVersion, selection: &ReadSelection) -> Result<Loaded> {
        let root = self.storage_root.join("artifacts").join(format!("{}.{}", version.name, version.version()));
        let manifest = block_on(self.api.backend().manifest(version))?;
        let uri = || format!("{}/{}/{}", version.entity, version.project, version.qualified_name());
        if let Some(name) = &selection.get {
            let (path, kind) =
                object_entry(&manifest, name).ok_or_else(|| Error::NoSuchObject { uri: uri(), name: name.clone() })?;
            self.download(version, &subset(&manifest, |p| p == path)?, &root)?;
            let bytes = std::fs::read(root.join(path)).map_err(|e| Error::io("read", root.join(path), e))?;
            return Ok(match kind {
                Some("table") => Loaded::Table(serde_modules::Table::from_wandb_json(&bytes)?),
                Some("partitioned-table") => {
                    // The parts of a distributed dataset, read as one table.
                    let partitioned = serde_modules::PartitionedTable::from_wandb_json(&bytes)?;
                    let parts: Vec<String> = partitioned
                        .part_paths(manifest.entries().map(|(p, _)| p))
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    self.download(version, &subset(&manifest, |p| parts.iter().any(|q| q == p))?, &root)?;
                    let tables = parts
                        .iter()
                        .map(|part| {
                            let bytes =
                                std::fs::read(root.join(part)).map_err(|e| Error::io("read", root.join(part), e))?;
                            Ok(serde_modules::Table::from_wandb_json(&bytes)?)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Loaded::Table(serde_modules::PartitionedTable::concat(tables)?)
                }
                _ => Loaded::Object(serde_json::from_slice(&bytes).map_err(|e| Error::InvalidConfig {
                    key: format!("get {name:?}"),
                    reason: format!("{path} of {} is not JSON: {e}", uri()),
                })?),
            });
        }
        if let Some(path) = &selection.get_path {
            let wanted = path.trim_end_matches('/');
            let prefix = format!("{wanted}/");
            let part = subset(&manifest, |p| p == wanted || p.starts_with(&prefix))?;
            if part.is_empty() {
                return Err(Error::NoSuchPath { uri: uri(), path: path.clone() });
            }
            self.download(version, &part, &root)?;
            return Ok(Loaded::Path(root.join(wanted)));
        }
        self.download(version, &manifest, &root)?;
        if serde_modules::Module::detect(&root).is_some() {
            // The environment may relax or tighten what a step output may cost to read (CPython's own variable).
            let limits = serde_modules::Limits::from_env()?;
            let (module, value) = serde_modules::read_output_value_within(&root, &limits)?;
            return Ok(Loaded::Value { module, value });
        }
        Ok(Loaded::Artifact(Box::new(LoadedArtifact { version: version.clone(), manifest, root })))
    }

    /// Downloads `entries` of `version` into `root` through the W&B cache, references fetched.
    fn download(&self, version: &ArtifactVersion, entries: &Manifest, root: &Path) -> Result<()> {
        block_on(self.api.backend().download(version, entries, root, &self.api.download_options()))?;
        Ok(())
    }

    fn log(&self, level: LogLevel, message: &str) {
        match level {
            LogLevel::Warning | LogLevel::Error | LogLevel::Critical => tracing::warn!("{message}"),
            _ => tracing::info!("{message}"),
        }
        if let Some(pipes) = &self.pipes {
            // Losing a log line must not fail the operation; the line went to tracing as well.
            let _ = pipes.log(level, message);
        }
    }
}

/// The asset key's first component: dagster-wandb's `get_asset_identifier()[0]`, kept so that both address the
/// same artifact.
fn first_component(key: &[String]) -> Result<String> {
    key.first()
        .cloned()
        .ok_or_else(|| Error::InvalidConfig { key: "asset_key".to_owned(), reason: "is empty".to_owned() })
}

/// The entry `get(name)` reads: `name` itself, or `name.<type>.json` as the SDK's `Artifact.add(obj, name)` writes.
fn object_entry<'m>(manifest: &'m Manifest, name: &str) -> Option<(&'m str, Option<&'m str>)> {
    let prefix = format!("{name}.");
    manifest.entries().find_map(|(path, _)| {
        if path == name {
            return Some((path, None));
        }
        let kind = path.strip_prefix(&prefix)?.strip_suffix(".json")?;
        (!kind.is_empty() && !kind.contains(['.', '/'])).then_some((path, Some(kind)))
    })
}

/// The entries of `manifest` whose paths `keep` accepts.
fn subset(manifest: &Manifest, keep: impl Fn(&str) -> bool) -> Result<Manifest> {
    let mut part = Manifest::new();
    for (path, entry) in manifest.entries() {
        if keep(path) {
            part.add_entry(LogicalPath::new(path)?, entry.clone(), true)?;
        }
    }
    Ok(part)
}

fn write_new_file(artifact: &mut Artifact, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = artifact.new_file(name, NewFileOptions::default())?;
    let path = file.local_path().to_path_buf();
    file.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    file.close()?;
    Ok(())
}

/// The SDK's `add_file`, with `is_tmp` (the file name's part before its first dot becomes 20 hex digits of
/// the digest).
fn add_file(artifact: &mut Artifact, spec: &AddFileSpec) -> Result<()> {
    let mut name = spec.name.clone();
    if spec.is_tmp {
        let logical = match &spec.name {
            Some(name) => name.clone(),
            None => spec.local_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        let mut file = std::fs::File::open(&spec.local_path).map_err(|e| Error::io("open", &spec.local_path, e))?;
        let (digest, _) = artifact_core::digest_reader_b64(artifact.digest_algorithm(), &mut file)
            .map_err(|e| Error::io("read", &spec.local_path, e))?;
        let hex = artifact_core::b64_to_hex(&digest)?;
        let (dir, file_name) = match logical.rsplit_once('/') {
            Some((dir, file_name)) => (Some(dir), file_name),
            None => (None, logical.as_str()),
        };
        let renamed = match file_name.split_once('.') {
            Some((_, rest)) => format!("{}.{rest}", &hex[..20]),
            None => hex[..20].to_owned(),
        };
        name = Some(match dir {
            Some(dir) => format!("{dir}/{renamed}"),
            None => renamed,
        });
    }
    let options = AddFileOptions { name, skip_cache: spec.skip_cache, overwrite: spec.overwrite };
    artifact.add_file(&spec.local_path, options)?;
    Ok(())
}

/// The parameters as dagster-wandb logs them: the protocol first (for pickle modules), then the user's.
fn options_shown(parameters: &Map<String, Value>, options: &serde_modules::Options) -> Map<String, Value> {
    let mut shown = Map::new();
    if options.module().is_pickle() {
        shown.insert("protocol".into(), options.protocol().into());
    }
    for (k, v) in parameters {
        shown.insert(k.clone(), v.clone());
    }
    shown
}

/// A JSON object as Python prints a dict of plain values: `{'protocol': 5}`.
fn py_dict(map: &Map<String, Value>) -> String {
    fn py(v: &Value) -> String {
        match v {
            Value::Null => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => artifact_core::py_repr(s),
            Value::Array(items) => format!("[{}]", items.iter().map(py).collect::<Vec<_>>().join(", ")),
            Value::Object(map) => py_dict(map),
        }
    }
    let items: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", py(&Value::String(k.clone())), py(v))).collect();
    format!("{{{}}}", items.join(", "))
}
