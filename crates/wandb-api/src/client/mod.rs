//! The W&B client: GraphQL and storage over HTTP, as the real `wandb` 0.31.0 client speaks it.
//!
//! [`WandbClient`] logs artifacts (spec §6.2: dedup, batched file registration, uploads with `Content-MD5`,
//! multipart for big files, the manifest, commit), resolves them by `name:alias`, downloads them through the
//! content cache, records their use, and links them to portfolios and registries. It is async (tokio), holds
//! one connection pool, and retries as the SDK does ([`RetryPolicy`]). The API key goes only to the base URL
//! and never into a log line or an error.
//!
//! ```no_run
//! # async fn demo() -> wandb_api::Result<()> {
//! use artifact_core::{AddDirOptions, Artifact};
//! use wandb_api::ProjectRef;
//! use wandb_api::client::{RemoteLogOptions, WandbClient};
//!
//! let client = WandbClient::new("https://api.wandb.ai", Some(std::env::var("WANDB_API_KEY").unwrap()))?;
//! let project = ProjectRef::new("my-team", "my-project")?;
//! let mut dataset = Artifact::new("mnist", "dataset")?;
//! dataset.add_dir("data/mnist", AddDirOptions::default())?;
//! let logged = client.log_artifact(&project, &dataset, &RemoteLogOptions::default()).await?;
//! println!("{}", logged.version.qualified_name());
//! # Ok(()) }
//! ```

mod fetch;
mod http;
mod log;
mod queries;
mod runs;

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

pub use fetch::RemoteDownloadOptions;
pub use http::RetryPolicy;
pub use log::{DEFAULT_MULTIPART_THRESHOLD, RemoteLogOptions, RemoteLogged, UpsertedPart};

use crate::error::{Error, Result};
use crate::store::{ArtifactVersion, ProjectRef};
use http::Transport;

/// A client of one W&B server. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct WandbClient {
    transport: Transport,
    features: Arc<OnceCell<Vec<String>>>,
}

impl WandbClient {
    /// A client of the server at `base_url` (e.g. `https://api.wandb.ai`), authenticating with `api_key`.
    ///
    /// # Errors
    /// [`Error::Http`] when the HTTP client cannot be built or the key cannot go in a header.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self> {
        Self::with_options(base_url, api_key, HeaderMap::new(), RetryPolicy::default())
    }

    /// A client from `WANDB_BASE_URL` (default `https://api.wandb.ai`), `WANDB_API_KEY` and
    /// `WANDB_X_EXTRA_HTTP_HEADERS` (a JSON object of headers added to every request).
    ///
    /// # Errors
    /// Malformed extra headers; see [`WandbClient::new`].
    pub fn from_env() -> Result<Self> {
        let base_url = std::env::var("WANDB_BASE_URL").unwrap_or_else(|_| "https://api.wandb.ai".to_owned());
        let api_key = std::env::var("WANDB_API_KEY").ok().filter(|k| !k.is_empty());
        Self::with_env_headers(&base_url, api_key)
    }

    /// A client of `base_url` with the extra headers of `WANDB_X_EXTRA_HTTP_HEADERS`.
    ///
    /// # Errors
    /// Malformed extra headers; see [`WandbClient::new`].
    pub fn with_env_headers(base_url: &str, api_key: Option<String>) -> Result<Self> {
        let extra = match std::env::var("WANDB_X_EXTRA_HTTP_HEADERS") {
            Ok(json) if !json.trim().is_empty() => extra_headers(&json)?,
            _ => HeaderMap::new(),
        };
        Self::with_options(base_url, api_key, extra, RetryPolicy::default())
    }

    /// A client with extra headers on every request and its own retry policy.
    ///
    /// # Errors
    /// See [`WandbClient::new`].
    pub fn with_options(
        base_url: &str,
        api_key: Option<String>,
        extra_headers: HeaderMap,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let transport = Transport::new(base_url, api_key.as_deref(), extra_headers, retry)?;
        Ok(WandbClient { transport, features: Arc::new(OnceCell::new()) })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.transport.base_url
    }

    /// Runs a GraphQL operation and returns its `data`.
    ///
    /// # Errors
    /// [`Error::Graphql`] for `errors` in the answer, HTTP and transport errors after retries.
    pub async fn graphql(&self, operation: &str, query: &str, variables: Value) -> Result<Value> {
        self.transport.graphql(operation, query, variables).await
    }

    /// The server's enabled features (asked once per client, as `wandb-core` does).
    ///
    /// # Errors
    /// See [`WandbClient::graphql`].
    pub async fn server_features(&self) -> Result<&[String]> {
        let features = self
            .features
            .get_or_try_init(|| async {
                let data = self.graphql("ServerFeaturesQuery", queries::SERVER_FEATURES, Value::Null).await?;
                let list = data.pointer("/serverInfo/features").and_then(Value::as_array).cloned().unwrap_or_default();
                Ok::<_, Error>(
                    list.iter()
                        .filter(|f| f.get("isEnabled").and_then(Value::as_bool).unwrap_or(false))
                        .filter_map(|f| f.get("name").and_then(Value::as_str).map(str::to_owned))
                        .collect(),
                )
            })
            .await?;
        Ok(features)
    }

    pub(crate) async fn has_feature(&self, name: &str) -> Result<bool> {
        Ok(self.server_features().await?.iter().any(|f| f == name))
    }

    /// Creates run `run_id` in `project` or updates it (`UpsertBucket`, what `wandb.init` sends).
    ///
    /// # Errors
    /// See [`WandbClient::graphql`].
    pub async fn upsert_run(&self, project: &ProjectRef, run_id: &str, job_type: Option<&str>) -> Result<()> {
        let variables = json!({
            "name": run_id, "project": project.project(), "entity": project.entity(), "jobType": job_type,
        });
        self.graphql("UpsertBucket", queries::UPSERT_BUCKET, variables).await?;
        Ok(())
    }

    /// Resumes run `options.id` of `project`, creating it when missing (`wandb.init(id=…, name=…, tags=…,
    /// resume="allow")`); returns whether it was created.
    ///
    /// # Errors
    /// [`Error::InvalidRunId`] without an id; see [`WandbClient::graphql`].
    pub async fn resume_run(&self, project: &ProjectRef, options: &crate::RunOptions) -> Result<bool> {
        let Some(run_id) = options.id.as_deref() else {
            return Err(Error::InvalidRunId { run_id: String::new() });
        };
        let tags = crate::store::run_tags(&options.tags);
        let variables = json!({
            "name": run_id, "project": project.project(), "entity": project.entity(),
            "jobType": options.job_type, "displayName": options.name, "tags": if tags.is_empty() { None } else { Some(tags) },
        });
        let data = self.graphql("UpsertBucket", queries::UPSERT_RUN, variables).await?;
        Ok(data.pointer("/upsertBucket/inserted").and_then(Value::as_bool).unwrap_or(false))
    }
}

fn extra_headers(json: &str) -> Result<HeaderMap> {
    let invalid = |reason: String| Error::Http { url: "WANDB_X_EXTRA_HTTP_HEADERS".to_owned(), reason };
    let map: Map<String, Value> =
        serde_json::from_str(json).map_err(|e| invalid(format!("not a JSON object of headers: {e}")))?;
    let mut headers = HeaderMap::new();
    for (name, value) in map {
        let value = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(format!("bad header name {name:?}")))?;
        let value = HeaderValue::from_str(&value).map_err(|_| invalid(format!("bad value for header {name:?}")))?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// An `ArtifactFragment` as an [`ArtifactVersion`] (the version as its own collection sees it).
pub(crate) fn version_from_fragment(artifact: &Value) -> Result<ArtifactVersion> {
    let missing = |field: &str| Error::Protocol {
        operation: "Artifact".to_owned(),
        reason: format!("the artifact has no {field}"),
    };
    let text = |pointer: &str| artifact.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let metadata = match artifact.get("metadata") {
        Some(Value::String(s)) if !s.is_empty() => serde_json::from_str(s).unwrap_or_default(),
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    let aliases = custom_alias_names(artifact);
    Ok(ArtifactVersion {
        id: text("/id").ok_or_else(|| missing("id"))?,
        entity: text("/artifactSequence/project/entity/name").ok_or_else(|| missing("entity"))?,
        project: text("/artifactSequence/project/name").ok_or_else(|| missing("project"))?,
        name: text("/artifactSequence/name").ok_or_else(|| missing("collection name"))?,
        artifact_type: text("/artifactType/name").ok_or_else(|| missing("type"))?,
        version_index: artifact.get("versionIndex").and_then(Value::as_u64).ok_or_else(|| missing("versionIndex"))?,
        aliases,
        digest: text("/digest").unwrap_or_default(),
        digest_algorithm: text("/digestAlgorithm").unwrap_or_else(|| "MANIFEST_MD5".to_owned()),
        description: text("/description"),
        metadata,
        size: artifact.get("size").and_then(Value::as_u64).unwrap_or(0),
        file_count: artifact.get("fileCount").and_then(Value::as_u64).unwrap_or(0),
        created_at: text("/createdAt").unwrap_or_default(),
        created_by: None,
        tags: artifact
            .get("tags")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned)).collect())
            .unwrap_or_default(),
        linked_from: None,
    })
}

/// An `ArtifactMembershipFragment` as an [`ArtifactVersion`] seen through its collection (a portfolio
/// membership names its source in `linked_from`).
pub(crate) fn version_from_membership(membership: &Value) -> Result<ArtifactVersion> {
    let artifact = membership.get("artifact").ok_or_else(|| Error::Protocol {
        operation: "ArtifactMembershipByName".to_owned(),
        reason: "the membership has no artifact".to_owned(),
    })?;
    let source = version_from_fragment(artifact)?;
    let collection = membership.get("artifactCollection").cloned().unwrap_or(Value::Null);
    let text = |pointer: &str| collection.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let (entity, project, name) = (
        text("/project/entity/name").unwrap_or_else(|| source.entity.clone()),
        text("/project/name").unwrap_or_else(|| source.project.clone()),
        text("/name").unwrap_or_else(|| source.name.clone()),
    );
    let version_index = membership.get("versionIndex").and_then(Value::as_u64).unwrap_or(source.version_index);
    let aliases = custom_alias_names(membership);
    let linked = (entity.as_str(), project.as_str(), name.as_str())
        != (source.entity.as_str(), source.project.as_str(), source.name.as_str());
    let linked_from = linked.then(|| format!("{}/{}/{}", source.entity, source.project, source.qualified_name()));
    Ok(ArtifactVersion { entity, project, name, version_index, aliases, linked_from, ..source })
}

/// The `aliases[].alias` of a fragment, sorted, without the version aliases (`vN`) the server adds.
fn custom_alias_names(fragment: &Value) -> Vec<String> {
    let mut aliases: Vec<String> = fragment
        .get("aliases")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|a| a.get("alias").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default();
    aliases.retain(|a| !artifact_core::is_version_alias(a));
    aliases.sort();
    aliases
}
