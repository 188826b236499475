//! The context the orchestrator passes (`PipesContextData`) and asset-key escaping.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A partition key range (`{start, end}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PartitionKeyRange {
    /// The first key.
    pub start: String,
    /// The last key.
    pub end: String,
}

/// A time window (`{start, end}`, ISO-8601 with offset).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PartitionTimeWindow {
    /// The start.
    pub start: String,
    /// The end (exclusive).
    pub end: String,
}

/// What Dagster tells the step about itself. Fields are as Dagster sends them; the accessors apply Python's
/// `dagster_pipes` rules.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PipesContext {
    /// The selected asset keys, escaped (`a/b`, with `\/` and `\\` inside parts); `None` for an op.
    #[serde(default)]
    pub asset_keys: Option<Vec<String>>,
    /// Code version per asset key.
    #[serde(default)]
    pub code_version_by_asset_key: Option<Map<String, Value>>,
    /// Provenance per asset key.
    #[serde(default)]
    pub provenance_by_asset_key: Option<Map<String, Value>>,
    /// The partition key (multi-dimensional keys joined by `|`).
    #[serde(default)]
    pub partition_key: Option<String>,
    /// The partition key range.
    #[serde(default)]
    pub partition_key_range: Option<PartitionKeyRange>,
    /// The time window of a time-partitioned asset.
    #[serde(default)]
    pub partition_time_window: Option<PartitionTimeWindow>,
    /// The Dagster run id.
    pub run_id: String,
    /// The job name.
    #[serde(default)]
    pub job_name: Option<String>,
    /// Which retry this is (0 for the first attempt).
    #[serde(default)]
    pub retry_number: u64,
    /// What the launching code passed as `extras`.
    #[serde(default)]
    pub extras: Map<String, Value>,
}

impl PipesContext {
    /// Parses the context JSON.
    ///
    /// # Errors
    /// [`Error::InvalidContext`] naming what is wrong.
    pub fn from_json(value: Value) -> Result<Self> {
        serde_json::from_value(value).map_err(|e| Error::InvalidContext { reason: e.to_string() })
    }

    /// The one asset in scope.
    ///
    /// # Errors
    /// [`Error::ContextAccess`] for an op or when several assets are selected.
    pub fn asset_key(&self) -> Result<&str> {
        match self.asset_keys.as_deref() {
            None => Err(Error::ContextAccess(
                "Attempted to access property `asset_key`, but no asset is in scope (this step is an op)".to_owned(),
            )),
            Some([one]) => Ok(one),
            Some(many) => Err(Error::ContextAccess(format!(
                "Attempted to access property `asset_key`, but multiple assets are in scope: {many:?}. Use `asset_keys`."
            ))),
        }
    }

    /// The partition key in scope.
    ///
    /// # Errors
    /// [`Error::ContextAccess`] when the step is not partitioned.
    pub fn partition_key(&self) -> Result<&str> {
        self.partition_key.as_deref().ok_or_else(|| {
            Error::ContextAccess(
                "Attempted to access property `partition_key`, but no partition is in scope".to_owned(),
            )
        })
    }

    /// The extra `key`.
    ///
    /// # Errors
    /// [`Error::MissingExtra`] listing the extras present.
    pub fn extra(&self, key: &str) -> Result<&Value> {
        self.extras.get(key).ok_or_else(|| Error::MissingExtra {
            key: key.to_owned(),
            available: self.extras.keys().cloned().collect(),
        })
    }

    /// `asset_key` when given (it must be in scope), else the one asset in scope.
    ///
    /// # Errors
    /// [`Error::ContextAccess`] for an op, or an asset not in scope.
    pub fn resolve_asset_key(&self, asset_key: Option<&str>) -> Result<String> {
        match asset_key {
            None => self.asset_key().map(str::to_owned),
            Some(key) => match self.asset_keys.as_deref() {
                Some(keys) if keys.iter().any(|k| k == key) => Ok(key.to_owned()),
                Some(keys) => Err(Error::ContextAccess(format!(
                    "Invalid asset key {key:?}: expected one of the selected assets {keys:?}"
                ))),
                None => Err(Error::ContextAccess(format!(
                    "Invalid asset key {key:?}: this step is an op and has no assets in scope"
                ))),
            },
        }
    }
}

/// The escaped user string of an asset key, as Dagster writes it in the context: parts joined by `/`, with
/// `\` written `\\` and `/` written `\/` inside a part.
///
/// ```
/// use dagster_bridge::pipes::{escape_asset_key, parse_asset_key};
/// assert_eq!(escape_asset_key(&["ml", "a/b"]), r"ml/a\/b");
/// assert_eq!(parse_asset_key(r"ml/a\/b"), ["ml", "a/b"]);
/// ```
pub fn escape_asset_key<S: AsRef<str>>(parts: &[S]) -> String {
    parts.iter().map(|p| p.as_ref().replace('\\', "\\\\").replace('/', "\\/")).collect::<Vec<_>>().join("/")
}

/// The parts of an escaped asset key (the inverse of [`escape_asset_key`]).
pub fn parse_asset_key(escaped: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => parts.last_mut().expect("one part").push(next),
                None => parts.last_mut().expect("one part").push('\\'),
            },
            '/' => parts.push(String::new()),
            c => parts.last_mut().expect("one part").push(c),
        }
    }
    parts
}
