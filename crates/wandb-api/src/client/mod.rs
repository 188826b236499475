//! The W&B client: GraphQL and storage over HTTP, as the real `wandb` 0.31.0 client speaks it.
//!
//! [`WandbClient`] is the server [`Backend`](crate::Backend): it logs artifacts (spec §6.2: dedup, batched file
//! registration, uploads with `Content-MD5`, multipart for big files, the manifest, commit), resolves and lists
//! them, downloads them through the content cache, records their use, links them to portfolios and registries,
//! reads lineage, and creates, streams to and reads runs. It is async (tokio), holds one connection pool, and
//! retries as the SDK does ([`RetryPolicy`]). The API key goes only to the base URL and never into a log line
//! or an error.
//!
//! ```no_run
//! # async fn demo() -> wandb_api::Result<()> {
//! use artifact_core::{AddDirOptions, Artifact};
//! use wandb_api::{Backend, LogOptions, ProjectRef, Settings};
//! use wandb_api::client::WandbClient;
//!
//! let settings = Settings::server("https://api.wandb.ai", std::env::var("WANDB_API_KEY").ok());
//! let client = WandbClient::from_settings(&settings)?;
//! let project = ProjectRef::new("my-team", "my-project")?;
//! let mut dataset = Artifact::new("mnist", "dataset")?;
//! dataset.add_dir("data/mnist", AddDirOptions::default())?;
//! let logged = client.log_artifact(&project, &dataset, &LogOptions::default()).await?;
//! println!("{}", logged.version.qualified_name());
//! # Ok(()) }
//! ```

mod backend;
mod edit;
mod fetch;
mod http;
mod lineage;
mod log;
mod queries;
mod registry;
mod runs;

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

pub use http::RetryPolicy;

use crate::error::{Error, Result};
use crate::settings::{BaseUrl, Settings};
use http::Transport;
use wandb_store::{ArtifactVersion, ProjectRef};

/// Files at least this big are uploaded in parts (`S3MinMultiUploadSize`).
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 2 << 30;

/// How a [`WandbClient`] talks to its server: retries, and how big files go up and come down.
///
/// A file of at least `ranged_threshold` bytes is fetched as consecutive `range_size` ranges, `ranges_in_flight`
/// of them at once, handed to the verifier in order: one connection's throughput no longer bounds a big file,
/// and memory stays under `ranges_in_flight × range_size` (24 MiB by default) whatever the file's size.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How requests are retried.
    pub retry: RetryPolicy,
    /// Files at least this big go up in parts (default 2 GiB).
    pub multipart_threshold: u64,
    /// The part size of multipart uploads (default 100 MiB; grown for files of over 10,000 parts).
    pub part_size: u64,
    /// Uploads in flight at once (16).
    pub upload_concurrency: usize,
    /// Files at least this big are fetched in parallel ranges (64 MiB).
    pub ranged_threshold: u64,
    /// The size of one range (4 MiB).
    pub range_size: u64,
    /// Ranges fetched at once per file, the one being consumed included (6).
    pub ranges_in_flight: usize,
    /// Small files fetched at once by a download ([`crate::DEFAULT_DOWNLOAD_CONCURRENCY`]).
    pub download_concurrency: usize,
    /// The largest manifest read (1 GiB; a million entries take about 85 MB).
    pub max_manifest_bytes: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: 100 << 20,
            upload_concurrency: 16,
            ranged_threshold: 64 << 20,
            range_size: 4 << 20,
            ranges_in_flight: 6,
            download_concurrency: crate::DEFAULT_DOWNLOAD_CONCURRENCY,
            max_manifest_bytes: 1 << 30,
        }
    }
}

impl ClientOptions {
    /// With retry policy `retry`.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uploading files of at least `threshold` bytes in parts of `part_size`.
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size;
        self
    }

    /// Reading manifests of at most `bytes` (larger ones are [`Error::ManifestTooLarge`]).
    pub fn with_max_manifest_bytes(mut self, bytes: u64) -> Self {
        self.max_manifest_bytes = bytes;
        self
    }

    /// Fetching up to `requests` small files at once in a download (at least 1).
    pub fn with_download_concurrency(mut self, requests: usize) -> Self {
        self.download_concurrency = requests.max(1);
        self
    }

    /// Fetching files of at least `threshold` bytes as ranges of `range_size`, `in_flight` at once.
    pub fn with_ranged_downloads(mut self, threshold: u64, range_size: u64, in_flight: usize) -> Self {
        self.ranged_threshold = threshold;
        self.range_size = range_size.max(1);
        self.ranges_in_flight = in_flight.max(1);
        self
    }
}

/// A client of one W&B server. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct WandbClient {
    transport: Transport,
    options: Arc<ClientOptions>,
    features: Arc<OnceCell<Vec<String>>>,
    /// The bodies being fetched into the content cache, by cache path: a second download in this process that
    /// needs one waits for it instead of fetching it again.
    fetching: Arc<dashmap::DashMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl WandbClient {
    /// A client of the server `settings` name, with its API key and extra headers.
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`] when the settings name an embedded store; see [`WandbClient::with_options`].
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        Self::from_settings_with(settings, ClientOptions::default())
    }

    /// A client of the server `settings` name, with `options` (`settings.download_concurrency`,
    /// `settings.retry_deadline` and `settings.max_manifest_bytes`, when set, override those of `options`).
    ///
    /// # Errors
    /// See [`WandbClient::from_settings`].
    pub fn from_settings_with(settings: &Settings, mut options: ClientOptions) -> Result<Self> {
        if let Some(requests) = settings.download_concurrency {
            options = options.with_download_concurrency(requests);
        }
        if let Some(deadline) = settings.retry_deadline {
            options.retry.deadline = Some(deadline);
        }
        if let Some(bytes) = settings.max_manifest_bytes {
            options = options.with_max_manifest_bytes(bytes);
        }
        let BaseUrl::Server(url) = &settings.base_url else {
            return Err(Error::InvalidBaseUrl {
                url: settings.base_url.to_url(),
                reason: "names an embedded store, not a W&B server".to_owned(),
            });
        };
        Self::with_options(url, settings.api_key.clone(), &settings.extra_headers, options)
    }

    /// A client of the server at `base_url` (e.g. `https://api.wandb.ai`), authenticating with `api_key`.
    ///
    /// # Errors
    /// [`Error::Http`] when the HTTP client cannot be built or the key cannot go in a header.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self> {
        Self::with_options(base_url, api_key, &[], ClientOptions::default())
    }

    /// A client with extra headers (name, value) on every request and its own options.
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`] for a header that cannot be sent; see [`WandbClient::new`].
    pub fn with_options(
        base_url: &str,
        api_key: Option<String>,
        extra_headers: &[(String, String)],
        options: ClientOptions,
    ) -> Result<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in extra_headers {
            let invalid =
                |reason: String| Error::InvalidBaseUrl { url: "WANDB_X_EXTRA_HTTP_HEADERS".to_owned(), reason };
            let header =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(format!("bad header name {name:?}")))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid(format!("bad value for header {name:?}")))?;
            headers.insert(header, value);
        }
        let transport = Transport::new(base_url, api_key.as_deref(), headers, options.retry.clone())?;
        Ok(WandbClient {
            transport,
            options: Arc::new(options),
            features: Arc::new(OnceCell::new()),
            fetching: Arc::default(),
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.transport.base_url
    }

    /// The API key this client sends, for processes it starts (a launch agent's jobs).
    pub fn api_key(&self) -> Option<&str> {
        self.transport.api_key()
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

    /// Creates or resumes run `options.id` of `project` (`UpsertBucket`, what `wandb.init` sends); returns
    /// whether it was created.
    pub(crate) async fn upsert_run(&self, project: &ProjectRef, options: &wandb_store::RunOptions) -> Result<bool> {
        let run_id = crate::backend::require_run_id(options)?;
        let tags = wandb_store::run_tags(&options.tags);
        let variables = json!({
            "name": run_id, "project": project.project(), "entity": project.entity(),
            "jobType": options.job_type, "displayName": options.name, "tags": if tags.is_empty() { None } else { Some(tags) },
        });
        let data = self.graphql("UpsertBucket", queries::UPSERT_RUN, variables).await?;
        Ok(data.pointer("/upsertBucket/inserted").and_then(Value::as_bool).unwrap_or(false))
    }
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
        ttl: wandb_store::Ttl::from_graphql(
            artifact.get("ttlDurationSeconds").and_then(Value::as_i64),
            artifact.get("ttlIsInherited").and_then(Value::as_bool).unwrap_or(false),
        ),
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
