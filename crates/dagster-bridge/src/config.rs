//! The configuration dagster-wandb reads, typed: the `wandb_resource` and `wandb_config` resources, the IO
//! manager's config, and the `wandb_artifact_configuration` metadata of outputs (write) and inputs (read).
//!
//! Each is parsed from the JSON Dagster carries (Pipes extras, or the same dicts written by hand) with every
//! rule of dagster-wandb 0.29.27: the same key lists, the same error texts for unknown keys and conflicting
//! settings. Unlike dagster-wandb, value types are checked up front, and errors name the key and the value.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The W&B cloud API host, `wandb_resource`'s default `host`.
pub const WANDB_CLOUD_HOST: &str = "https://api.wandb.ai";

/// The metadata key under which outputs and inputs carry their settings.
pub const ARTIFACT_CONFIGURATION_KEY: &str = "wandb_artifact_configuration";

/// Keys of a write configuration (`raise_on_unknown_write_configuration_keys`). `partitions` is accepted and
/// ignored on write, as in dagster-wandb.
pub const WRITE_CONFIGURATION_KEYS: [&str; 9] = [
    "add_dirs",
    "add_files",
    "add_references",
    "aliases",
    "description",
    "name",
    "partitions",
    "serialization_module",
    "type",
];

/// Keys of a read configuration (`SUPPORTED_READ_CONFIG_KEYS`).
pub const READ_CONFIGURATION_KEYS: [&str; 6] = ["alias", "get_path", "get", "name", "partitions", "version"];

/// Keys of one partition's read settings.
pub const PARTITION_CONFIGURATION_KEYS: [&str; 4] = ["get", "get_path", "version", "alias"];

/// The serialization modules dagster-wandb accepts (`ACCEPTED_SERIALIZATION_MODULES`), in its order. This crate
/// accepts these and the other [`serde_modules::Module`]s.
pub const PYTHON_SERIALIZATION_MODULES: [&str; 4] = ["dill", "cloudpickle", "joblib", "pickle"];

/// The cache duration dagster-wandb applies when none is configured: 30 days.
pub const DEFAULT_CACHE_DURATION_MINUTES: i64 = 60 * 24 * 30;

/// The run tag dagster-wandb always adds.
pub const RUN_TAG: &str = "dagster_wandb";

/// The keys of the IO manager's config (`wandb_artifacts_io_manager`), dagster-wandb's.
pub const IO_MANAGER_CONFIGURATION_KEYS: [&str; 5] =
    ["base_dir", "cache_duration_in_minutes", "run_id", "run_name", "run_tags"];

/// A Dagster `StringSource`: a literal, or `{"env": NAME}` read from the environment when used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringSource {
    /// The value itself.
    Value(String),
    /// The name of the environment variable holding it.
    Env(String),
}

impl StringSource {
    fn from_json(key: &str, value: &Value) -> Result<Self> {
        match value {
            Value::String(s) => Ok(StringSource::Value(s.clone())),
            Value::Object(map) if map.len() == 1 && map.get("env").is_some_and(Value::is_string) => {
                Ok(StringSource::Env(map["env"].as_str().unwrap_or_default().to_owned()))
            }
            other => Err(invalid(key, other, "a string or {\"env\": \"NAME\"}")),
        }
    }

    /// The value: the literal, or the environment variable's.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the variable is not set (or not UTF-8).
    pub fn resolve(&self, key: &str) -> Result<String> {
        match self {
            StringSource::Value(value) => Ok(value.clone()),
            StringSource::Env(name) => std::env::var(name).map_err(|_| Error::InvalidConfig {
                key: key.to_owned(),
                reason: format!("the environment variable {name:?} it names is not set"),
            }),
        }
    }
}

/// `wandb_resource`: how to reach W&B.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WandbResource {
    /// The API key. Required by dagster-wandb; optional here, because the embedded store needs none (a server
    /// without one is asked with `WANDB_API_KEY`, if set).
    pub api_key: Option<StringSource>,
    /// The API host: `https://…` for W&B, or `file:///dir` for an embedded store.
    pub host: String,
}

impl Default for WandbResource {
    fn default() -> Self {
        WandbResource { api_key: None, host: WANDB_CLOUD_HOST.to_owned() }
    }
}

impl WandbResource {
    /// Parses `{"api_key": …, "host": …}`; `host` defaults to [`WANDB_CLOUD_HOST`].
    ///
    /// ```
    /// use dagster_bridge::config::{StringSource, WandbResource};
    /// let resource = WandbResource::from_json(&serde_json::json!({"api_key": {"env": "WANDB_API_KEY"}}))?;
    /// assert_eq!(resource.api_key, Some(StringSource::Env("WANDB_API_KEY".into())));
    /// assert_eq!(resource.host, "https://api.wandb.ai");
    /// # Ok::<(), dagster_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unknown keys and values of the wrong type.
    pub fn from_json(value: &Value) -> Result<Self> {
        let map = object("wandb_resource", value)?;
        reject_unknown("wandb_resource", map, &["api_key", "host"])?;
        let api_key = match map.get("api_key") {
            None | Some(Value::Null) => None,
            Some(value) => Some(StringSource::from_json("wandb_resource.api_key", value)?),
        };
        let host =
            optional_string("wandb_resource.host", map.get("host"))?.unwrap_or_else(|| WANDB_CLOUD_HOST.to_owned());
        if host.is_empty() {
            return Err(invalid("wandb_resource.host", &Value::String(host), "a non-empty URL"));
        }
        Ok(WandbResource { api_key, host })
    }

    /// The base of the web URLs of artifacts and runs: `https://wandb.ai` for exactly [`WANDB_CLOUD_HOST`], else
    /// the host without trailing slashes (dagster-wandb's rule, `https://api.wandb.ai/` included).
    pub fn app_url(&self) -> String {
        if self.host == WANDB_CLOUD_HOST {
            "https://wandb.ai".to_owned()
        } else {
            self.host.trim_end_matches('/').to_owned()
        }
    }
}

/// `wandb_config`: the entity and project every artifact and run belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WandbConfig {
    /// The entity (user or team).
    pub entity: String,
    /// The project.
    pub project: String,
}

impl WandbConfig {
    /// Parses `{"entity": …, "project": …}`; both are required and may not be empty.
    ///
    /// ```
    /// use dagster_bridge::config::WandbConfig;
    /// let err = WandbConfig::from_json(&serde_json::json!({"entity": "", "project": "p"})).unwrap_err();
    /// assert_eq!(err.to_string(), "(dagster_wandb) An empty string was provided for the 'entity' property of the 'wandb_config'.");
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a missing, empty or mistyped value and unknown keys.
    pub fn from_json(value: &Value) -> Result<Self> {
        let map = object("wandb_config", value)?;
        reject_unknown("wandb_config", map, &["entity", "project"])?;
        let field = |name: &str| -> Result<String> {
            let key = format!("wandb_config.{name}");
            match optional_string(&key, map.get(name))? {
                None => Err(Error::InvalidConfig { key, reason: "is required".to_owned() }),
                Some(s) if s.is_empty() => Err(Error::EmptyConfigValue { property: name.to_owned() }),
                Some(s) => Ok(s),
            }
        };
        Ok(WandbConfig { entity: field("entity")?, project: field("project")? })
    }
}

/// The IO manager's own config. Every field is optional; defaults are applied by the accessors, as
/// dagster-wandb applies them in code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoManagerConfig {
    /// Where local files go: `<base_dir>/storage/wandb_artifacts_manager` (a `base_dir` named `storage` is used
    /// as is). Defaults to `$DAGSTER_HOME`.
    pub base_dir: Option<PathBuf>,
    /// Cached files not accessed for this long are removed after each operation; `0` keeps nothing.
    pub cache_duration_in_minutes: Option<i64>,
    /// The W&B run id; defaults to the Dagster run id, so every step of a Dagster run resumes one W&B run.
    pub run_id: Option<String>,
    /// The W&B run name; defaults to `dagster-run-<first 8 characters of the Dagster run id>`.
    pub run_name: Option<String>,
    /// Tags of the W&B run; `dagster_wandb` is added last.
    pub run_tags: Option<Vec<String>>,
}

impl IoManagerConfig {
    /// Parses the config dict.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unknown keys, mistyped values, and a `run_id` with a character W&B forbids
    /// (`/\#?%:`), which dagster-wandb documents but does not check.
    pub fn from_json(value: &Value) -> Result<Self> {
        const SECTION: &str = "wandb_artifacts_io_manager";
        let map = object(SECTION, value)?;
        reject_unknown(SECTION, map, &IO_MANAGER_CONFIGURATION_KEYS)?;
        let cache_duration_in_minutes = match map.get("cache_duration_in_minutes") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64().ok_or_else(|| invalid(&format!("{SECTION}.cache_duration_in_minutes"), v, "an integer"))?,
            ),
        };
        let run_id = optional_string(&format!("{SECTION}.run_id"), map.get("run_id"))?;
        if let Some(id) = run_id.as_ref().filter(|id| id.is_empty() || id.contains(['/', '\\', '#', '?', '%', ':'])) {
            return Err(invalid(
                &format!("{SECTION}.run_id"),
                &Value::String(id.clone()),
                "a run id without /\\#?%: characters",
            ));
        }
        Ok(IoManagerConfig {
            base_dir: optional_string(&format!("{SECTION}.base_dir"), map.get("base_dir"))?.map(PathBuf::from),
            cache_duration_in_minutes,
            run_id,
            run_name: optional_string(&format!("{SECTION}.run_name"), map.get("run_name"))?,
            run_tags: optional_strings(&format!("{SECTION}.run_tags"), map.get("run_tags"))?,
        })
    }

    /// The cache duration, defaulting to [`DEFAULT_CACHE_DURATION_MINUTES`].
    pub fn cache_duration(&self) -> i64 {
        self.cache_duration_in_minutes.unwrap_or(DEFAULT_CACHE_DURATION_MINUTES)
    }

    /// The run tags: the configured ones, then [`RUN_TAG`] unless already present.
    ///
    /// ```
    /// use dagster_bridge::config::IoManagerConfig;
    /// let config = IoManagerConfig { run_tags: Some(vec!["a".into(), "b".into()]), ..Default::default() };
    /// assert_eq!(config.tags(), ["a", "b", "dagster_wandb"]);
    /// ```
    pub fn tags(&self) -> Vec<String> {
        let mut tags = self.run_tags.clone().unwrap_or_default();
        if !tags.iter().any(|t| t == RUN_TAG) {
            tags.push(RUN_TAG.to_owned());
        }
        tags
    }

    /// The run id for Dagster run `dagster_run_id`.
    pub fn run_id_for(&self, dagster_run_id: &str) -> String {
        self.run_id.clone().unwrap_or_else(|| dagster_run_id.to_owned())
    }

    /// The run name for Dagster run `dagster_run_id`.
    pub fn run_name_for(&self, dagster_run_id: &str) -> String {
        self.run_name.clone().unwrap_or_else(|| run_alias(dagster_run_id))
    }
}

/// `dagster-run-<first 8 characters>`: the default run name and the alias every output version gets.
///
/// ```
/// assert_eq!(dagster_bridge::config::run_alias("0ab2e48b-6d63-4ff5-b160-662cc60145f4"), "dagster-run-0ab2e48b");
/// ```
pub fn run_alias(dagster_run_id: &str) -> String {
    let prefix: String = dagster_run_id.chars().take(8).collect();
    format!("dagster-run-{prefix}")
}

/// One `add_files` entry: the keyword arguments of the SDK's `add_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddFileSpec {
    /// The file.
    pub local_path: PathBuf,
    /// Its path in the artifact; defaults to the file's name.
    pub name: Option<String>,
    /// Rename the file to its digest (the part before the first dot becomes 20 hex digits of it).
    pub is_tmp: bool,
    /// Keep it out of the cache.
    pub skip_cache: bool,
    /// `mutable` (default) or `immutable`. Both read the file when the artifact is logged, right after
    /// it is added, and verify it against the digest taken when it was added.
    pub policy: Policy,
    /// Replace an entry of the same path.
    pub overwrite: bool,
}

/// One `add_dirs` entry: the keyword arguments of the SDK's `add_dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddDirSpec {
    /// The directory.
    pub local_path: PathBuf,
    /// A prefix for its files' paths in the artifact.
    pub name: Option<String>,
    /// Keep them out of the cache.
    pub skip_cache: bool,
    /// `mutable` (default) or `immutable`.
    pub policy: Policy,
    /// Replace entries of the same paths.
    pub merge: bool,
}

/// One `add_references` entry: the keyword arguments of the SDK's `add_reference`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddReferenceSpec {
    /// The URI (`file://`, `http(s)://`, …).
    pub uri: String,
    /// The entry's path, or a prefix for a directory.
    pub name: Option<String>,
    /// Checksum the referenced data (default) or record the URI only.
    pub checksum: bool,
    /// Upper bound on the entries a directory may expand to.
    pub max_objects: Option<u64>,
}

/// The SDK's file policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Copy the file at add time (the SDK's default).
    #[default]
    Mutable,
    /// Use the file in place.
    Immutable,
}

/// `serialization_module`: how an output value is written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SerializationModuleConfig {
    /// The module's name; `pickle` when absent.
    pub name: Option<String>,
    /// Its parameters (`protocol`, joblib's `compress`, …).
    pub parameters: Map<String, Value>,
}

impl SerializationModuleConfig {
    /// The module named (default `pickle`).
    ///
    /// # Errors
    /// [`Error::IoManager`] with dagster-wandb's "isn't recognized" message, listing the modules supported.
    pub fn module(&self) -> Result<serde_modules::Module> {
        let name = self.name.as_deref().unwrap_or("pickle");
        serde_modules::Module::from_name(name).map_err(|_| {
            let supported: Vec<&str> = serde_modules::Module::ALL.iter().map(|m| m.name()).collect();
            Error::IoManager(format!(
                "Oops! It looks like the value you provided, '{name}', isn't recognized as a valid serialization module. Here are the ones we do support: {}.",
                py_str_list(&supported)
            ))
        })
    }
}

/// `wandb_artifact_configuration` of an output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteConfiguration {
    /// The artifact name (only for outputs without an asset key).
    pub name: Option<String>,
    /// The artifact type (default `artifact`).
    pub artifact_type: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// Extra aliases of the new version.
    pub aliases: Vec<String>,
    /// Directories to add.
    pub add_dirs: Vec<AddDirSpec>,
    /// Files to add.
    pub add_files: Vec<AddFileSpec>,
    /// References to add.
    pub add_references: Vec<AddReferenceSpec>,
    /// How a plain value is serialized; `None` when the key is absent (an empty dict is `Some`).
    pub serialization_module: Option<SerializationModuleConfig>,
}

impl WriteConfiguration {
    /// Parses the dict; `None` or `null` is the empty configuration.
    ///
    /// ```
    /// use dagster_bridge::config::WriteConfiguration;
    /// let err = WriteConfiguration::from_json(Some(&serde_json::json!({"nam": "x", "typ": "y"}))).unwrap_err();
    /// assert!(err.to_string().starts_with("The configuration keys '['nam', 'typ']' you are trying to use"));
    /// # Ok::<(), dagster_bridge::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::IoManager`] with dagster-wandb's message for unknown keys; [`Error::InvalidConfig`] for values
    /// of the wrong type.
    pub fn from_json(value: Option<&Value>) -> Result<Self> {
        let Some(map) = configuration_object(value)? else { return Ok(Self::default()) };
        reject_unknown_configuration_keys(map, &WRITE_CONFIGURATION_KEYS, "writing")?;
        let key = |k: &str| format!("{ARTIFACT_CONFIGURATION_KEY}.{k}");
        let serialization_module = match map.get("serialization_module") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let k = key("serialization_module");
                let m = object(&k, v)?;
                reject_unknown(&k, m, &["name", "parameters"])?;
                let parameters = match m.get("parameters") {
                    None | Some(Value::Null) => Map::new(),
                    Some(p) => object(&format!("{k}.parameters"), p)?.clone(),
                };
                Some(SerializationModuleConfig {
                    name: optional_string(&format!("{k}.name"), m.get("name"))?,
                    parameters,
                })
            }
        };
        Ok(WriteConfiguration {
            name: optional_string(&key("name"), map.get("name"))?,
            artifact_type: optional_string(&key("type"), map.get("type"))?,
            description: optional_string(&key("description"), map.get("description"))?,
            aliases: optional_strings(&key("aliases"), map.get("aliases"))?.unwrap_or_default(),
            add_dirs: each_object(&key("add_dirs"), map.get("add_dirs"), add_dir_spec)?,
            add_files: each_object(&key("add_files"), map.get("add_files"), add_file_spec)?,
            add_references: each_object(&key("add_references"), map.get("add_references"), add_reference_spec)?,
            serialization_module,
        })
    }

    /// Whether a non-empty `serialization_module` was given (it has no effect on artifacts and W&B objects).
    pub fn has_serialization_module(&self) -> bool {
        self.serialization_module.as_ref().is_some_and(|s| s.name.is_some() || !s.parameters.is_empty())
    }
}

/// Which version to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSelection {
    /// An object of the artifact by name (`Table` for `Table.table.json`).
    pub get: Option<String>,
    /// A file of the artifact, downloaded; the result is its local path.
    pub get_path: Option<String>,
    /// A version, `vN`.
    pub version: Option<String>,
    /// An alias.
    pub alias: Option<String>,
}

/// `wandb_artifact_configuration` of an input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadConfiguration {
    /// The artifact name (only for inputs without an asset key).
    pub name: Option<String>,
    /// What to read (the top level; not allowed in a partitioned read except `version`/`alias`, which are
    /// refused there too, see [`crate::io_manager`]).
    pub selection: ReadSelection,
    /// Per upstream partition, by key, with `"*"` as the default for keys not listed. Insertion order kept.
    pub partitions: Vec<(String, Map<String, Value>)>,
}

impl ReadConfiguration {
    /// Parses the dict; `None` or `null` is the empty configuration. Partition settings are checked when
    /// used, as in dagster-wandb, so that their errors name the partition being read.
    ///
    /// # Errors
    /// [`Error::IoManager`] with dagster-wandb's message for unknown keys; [`Error::InvalidConfig`] for values
    /// of the wrong type.
    pub fn from_json(value: Option<&Value>) -> Result<Self> {
        let Some(map) = configuration_object(value)? else { return Ok(Self::default()) };
        reject_unknown_configuration_keys(map, &READ_CONFIGURATION_KEYS, "reading")?;
        let key = |k: &str| format!("{ARTIFACT_CONFIGURATION_KEY}.{k}");
        let partitions = match map.get("partitions") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => object(&key("partitions"), v)?
                .iter()
                .map(|(partition, settings)| {
                    let settings = object(&format!("{}.{partition}", key("partitions")), settings)?;
                    Ok((partition.clone(), settings.clone()))
                })
                .collect::<Result<_>>()?,
        };
        Ok(ReadConfiguration {
            name: optional_string(&key("name"), map.get("name"))?,
            selection: selection_of(&key(""), map)?,
            partitions,
        })
    }

    /// The settings for upstream partition `partition_key`: its own entry, else `"*"`'s (never merged), checked
    /// as dagster-wandb checks them. Unlike dagster-wandb, the messages name the partition instead of the
    /// literal text `{key}`.
    ///
    /// # Errors
    /// [`Error::IoManager`]: empty settings, unknown keys, `version` with `alias`, `get` with `get_path`.
    pub fn partition(&self, partition_key: &str) -> Result<ReadSelection> {
        let settings = self
            .partitions
            .iter()
            .find(|(k, _)| k == partition_key)
            .or_else(|| self.partitions.iter().find(|(k, _)| k == "*"))
            .map(|(_, s)| s);
        let Some(settings) = settings else { return Ok(ReadSelection::default()) };
        if settings.is_empty() {
            return Err(Error::IoManager(format!(
                "The configuration is empty for the partition identified by the key '{partition_key}'. This happened within the 'wandb_artifact_configuration' metadata dictionary."
            )));
        }
        let unknown: Vec<&str> =
            settings.keys().map(String::as_str).filter(|k| !PARTITION_CONFIGURATION_KEYS.contains(k)).collect();
        if !unknown.is_empty() {
            return Err(Error::IoManager(format!(
                "The configuration keys '{}' you are trying to use are not supported for the partition identified by the key '{partition_key}'. This happened within the 'wandb_artifact_configuration' metadata dictionary.",
                py_str_list(&unknown)
            )));
        }
        let selection = selection_of(&format!("{ARTIFACT_CONFIGURATION_KEY}.partitions.{partition_key}."), settings)?;
        if selection.version.is_some() && selection.alias.is_some() {
            return Err(Error::IoManager(format!(
                "You've provided both 'version' and 'alias' for the partition with key '{partition_key}'. You should only use one of these properties at a time. If you choose not to use any, the latest version will be used by default. If this partition is configured with the '*' key, please correct the wildcard configuration."
            )));
        }
        if selection.get.is_some() && selection.get_path.is_some() {
            return Err(Error::IoManager(format!(
                "You've provided both 'get' and 'get_path' in the 'wandb_artifact_configuration' settings for the partition with key '{partition_key}'. Only one of these properties should be used. If you choose not to use any, the whole Artifact will be returned. If this partition is configured with the '*' key, please correct the wildcard configuration."
            )));
        }
        Ok(selection)
    }
}

fn selection_of(prefix: &str, map: &Map<String, Value>) -> Result<ReadSelection> {
    let key = |k: &str| format!("{prefix}{k}");
    Ok(ReadSelection {
        get: optional_string(&key("get"), map.get("get"))?,
        get_path: optional_string(&key("get_path"), map.get("get_path"))?,
        version: optional_string(&key("version"), map.get("version"))?,
        alias: optional_string(&key("alias"), map.get("alias"))?,
    })
}

fn add_file_spec(key: &str, map: &Map<String, Value>) -> Result<AddFileSpec> {
    reject_unknown(key, map, &["local_path", "name", "is_tmp", "skip_cache", "policy", "overwrite"])?;
    Ok(AddFileSpec {
        local_path: required_string(key, map, "local_path")?.into(),
        name: optional_string(&format!("{key}.name"), map.get("name"))?,
        is_tmp: optional_bool(&format!("{key}.is_tmp"), map.get("is_tmp"))?.unwrap_or(false),
        skip_cache: optional_bool(&format!("{key}.skip_cache"), map.get("skip_cache"))?.unwrap_or(false),
        policy: policy(&format!("{key}.policy"), map.get("policy"))?,
        overwrite: optional_bool(&format!("{key}.overwrite"), map.get("overwrite"))?.unwrap_or(false),
    })
}

fn add_dir_spec(key: &str, map: &Map<String, Value>) -> Result<AddDirSpec> {
    reject_unknown(key, map, &["local_path", "name", "skip_cache", "policy", "merge"])?;
    Ok(AddDirSpec {
        local_path: required_string(key, map, "local_path")?.into(),
        name: optional_string(&format!("{key}.name"), map.get("name"))?,
        skip_cache: optional_bool(&format!("{key}.skip_cache"), map.get("skip_cache"))?.unwrap_or(false),
        policy: policy(&format!("{key}.policy"), map.get("policy"))?,
        merge: optional_bool(&format!("{key}.merge"), map.get("merge"))?.unwrap_or(false),
    })
}

fn add_reference_spec(key: &str, map: &Map<String, Value>) -> Result<AddReferenceSpec> {
    reject_unknown(key, map, &["uri", "name", "checksum", "max_objects"])?;
    let max_objects = match map.get("max_objects") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| invalid(&format!("{key}.max_objects"), v, "a non-negative integer"))?),
    };
    Ok(AddReferenceSpec {
        uri: required_string(key, map, "uri")?,
        name: optional_string(&format!("{key}.name"), map.get("name"))?,
        checksum: optional_bool(&format!("{key}.checksum"), map.get("checksum"))?.unwrap_or(true),
        max_objects,
    })
}

fn policy(key: &str, value: Option<&Value>) -> Result<Policy> {
    match optional_string(key, value)?.as_deref() {
        None | Some("mutable") => Ok(Policy::Mutable),
        Some("immutable") => Ok(Policy::Immutable),
        Some(other) => Err(invalid(key, &Value::String(other.to_owned()), "`mutable` or `immutable`")),
    }
}

/// The configuration dict, or `None` for an absent or `null` one.
fn configuration_object(value: Option<&Value>) -> Result<Option<&Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => object(ARTIFACT_CONFIGURATION_KEY, v).map(Some),
    }
}

/// dagster-wandb's `raise_on_unknown_keys`: the unknown keys in dict order, as a Python list inside quotes.
fn reject_unknown_configuration_keys(map: &Map<String, Value>, supported: &[&str], action: &str) -> Result<()> {
    let unknown: Vec<&str> = map.keys().map(String::as_str).filter(|k| !supported.contains(k)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::IoManager(format!(
        "The configuration keys '{}' you are trying to use are not supported within the 'wandb_artifact_configuration' metadata dictionary when {action} an Artifact.",
        py_str_list(&unknown)
    )))
}

fn reject_unknown(section: &str, map: &Map<String, Value>, supported: &[&str]) -> Result<()> {
    match map.keys().find(|k| !supported.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Error::InvalidConfig {
            key: format!("{section}.{k}"),
            reason: format!("is not a known key; expected one of {}", supported.join(", ")),
        }),
    }
}

fn each_object<T>(
    key: &str,
    value: Option<&Value>,
    parse: impl Fn(&str, &Map<String, Value>) -> Result<T>,
) -> Result<Vec<T>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item_key = format!("{key}[{i}]");
                parse(&item_key, object(&item_key, item)?)
            })
            .collect(),
        Some(other) => Err(invalid(key, other, "a list of dicts")),
    }
}

fn object<'a>(key: &str, value: &'a Value) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| invalid(key, value, "a dict"))
}

fn required_string(key: &str, map: &Map<String, Value>, field: &str) -> Result<String> {
    let field_key = format!("{key}.{field}");
    optional_string(&field_key, map.get(field))?
        .ok_or_else(|| Error::InvalidConfig { key: field_key, reason: "is required".to_owned() })
}

fn optional_string(key: &str, value: Option<&Value>) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(key, other, "a string")),
    }
}

fn optional_strings(key: &str, value: Option<&Value>) -> Result<Option<Vec<String>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(key, value.unwrap_or(&Value::Null), "a list of strings"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(other) => Err(invalid(key, other, "a list of strings")),
    }
}

fn optional_bool(key: &str, value: Option<&Value>) -> Result<Option<bool>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(key, other, "true or false")),
    }
}

fn invalid(key: &str, value: &Value, expected: &str) -> Error {
    Error::InvalidConfig { key: key.to_owned(), reason: format!("got {value}, expected {expected}") }
}

/// A list of strings as Python's `repr` prints it: `['a', 'b']`.
pub(crate) fn py_str_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| artifact_core::py_repr(s)).collect();
    format!("[{}]", quoted.join(", "))
}
