//! Resolving, downloading, using and linking artifacts (spec §5.2, §6.6, §6.7, §6.10).

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Mutex;

use artifact_core::{Manifest, ManifestEntry};
use futures_util::TryStreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::http::{Transport, redact, transport_reason};
use super::{WandbClient, queries, version_from_membership};
use crate::download::{DownloadOptions, DownloadReport, ObjectSource, download};
use crate::error::{Error, Result};
use crate::store::{ArtifactVersion, ProjectRef};

/// File URLs asked for per page (`WANDB_ARTIFACT_FETCH_FILE_URL_BATCH_SIZE`'s default).
const URLS_PER_PAGE: u64 = 5000;
/// A body cut mid-transfer is resumed with a range request this many times.
const RESUMES: u32 = 5;

/// Options of [`WandbClient::download`]: the local ones of [`DownloadOptions`].
pub type RemoteDownloadOptions = DownloadOptions;

impl WandbClient {
    /// The version `selector` (`latest`, `vN` or an alias) names in collection `name` of `project` — a
    /// portfolio or registry collection included (the result's `linked_from` then names the source).
    ///
    /// # Errors
    /// [`Error::ProjectNotFound`], [`Error::ArtifactNotFound`], [`Error::Graphql`] and HTTP errors.
    pub async fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
        let variables =
            json!({"entity": project.entity(), "project": project.project(), "name": format!("{name}:{selector}")});
        let data = self.graphql("ArtifactMembershipByName", &queries::membership_by_name(), variables).await?;
        let Some(found) = data.get("project").filter(|p| !p.is_null()) else {
            return Err(Error::ProjectNotFound {
                entity: project.entity().to_owned(),
                project: project.project().to_owned(),
            });
        };
        match found.get("artifactCollectionMembership") {
            Some(membership) if !membership.is_null() => version_from_membership(membership),
            _ => Err(Error::ArtifactNotFound {
                entity: project.entity().to_owned(),
                project: project.project().to_owned(),
                name: format!("{name}:{selector}"),
            }),
        }
    }

    /// The manifest of `version`, fetched from its direct URL.
    ///
    /// # Errors
    /// [`Error::Graphql`] and HTTP errors, a manifest that does not parse.
    pub async fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The URL is asked for afresh each time: presigned URLs expire.
            let data =
                self.graphql("FetchArtifactManifest", queries::FETCH_MANIFEST, json!({"id": version.id})).await?;
            let url =
                data.pointer("/artifact/currentManifest/file/directUrl").and_then(Value::as_str).ok_or_else(|| {
                    Error::Protocol {
                        operation: "FetchArtifactManifest".to_owned(),
                        reason: format!("no manifest URL for {}", version.qualified_name()),
                    }
                })?;
            let fetched = match self.transport.send(Method::GET, url, None, Ok).await {
                Ok(response) => {
                    response.bytes().await.map_err(|e| Error::Http { url: redact(url), reason: transport_reason(&e) })
                }
                Err(e) => Err(e),
            };
            match fetched {
                Ok(bytes) => return Ok(Manifest::from_json(&bytes)?),
                Err(e @ (Error::HttpStatus { status: 401 | 403, .. } | Error::Http { .. })) if attempt < 3 => {
                    tracing::info!(error = %e, "fetching the manifest again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Direct URLs of `version`'s files by path, paged (never one request per file).
    async fn file_urls(&self, version: &ArtifactVersion) -> Result<HashMap<String, String>> {
        let mut urls = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let variables = json!({
                "entity": version.entity, "project": version.project, "collection": version.name,
                "alias": version.version(), "cursor": cursor, "perPage": URLS_PER_PAGE,
            });
            let data = self.graphql("GetArtifactMembershipFileUrls", queries::FILE_URLS, variables).await?;
            let files =
                data.pointer("/project/artifactCollection/artifactMembership/files").cloned().ok_or_else(|| {
                    Error::Protocol {
                        operation: "GetArtifactMembershipFileUrls".to_owned(),
                        reason: format!("no files for {}", version.qualified_name()),
                    }
                })?;
            for edge in files.get("edges").and_then(Value::as_array).into_iter().flatten() {
                let node = edge.get("node").cloned().unwrap_or(Value::Null);
                if let (Some(name), Some(url)) =
                    (node.get("name").and_then(Value::as_str), node.get("directUrl").and_then(Value::as_str))
                {
                    urls.insert(name.to_owned(), url.to_owned());
                }
            }
            let has_next = files.pointer("/pageInfo/hasNextPage").and_then(Value::as_bool).unwrap_or(false);
            let next = files.pointer("/pageInfo/endCursor").and_then(Value::as_str).map(str::to_owned);
            match (has_next, next) {
                (true, Some(next)) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(urls),
            }
        }
    }

    /// Downloads `version` into `root` through the content cache, verifying every byte (see
    /// [`download`](crate::download())). Bodies stream from their presigned URLs without credentials; a cut
    /// body resumes with a range request; an expired URL (401/403) is replaced by a fresh one.
    ///
    /// # Errors
    /// See [`download`](crate::download()); [`Error::Graphql`] and HTTP errors.
    pub async fn download(
        &self,
        version: &ArtifactVersion,
        root: &std::path::Path,
        options: &RemoteDownloadOptions,
    ) -> Result<(Manifest, DownloadReport)> {
        let manifest = self.manifest(version).await?;
        let urls = self.file_urls(version).await?;
        let source = RemoteObjects {
            client: self.clone(),
            version: version.clone(),
            urls: Mutex::new(urls),
            runtime: tokio::runtime::Handle::current(),
        };
        let root = root.to_path_buf();
        let options = options.clone();
        let manifest2 = manifest.clone();
        let report = tokio::task::spawn_blocking(move || download(&source, &manifest2, &root, &options))
            .await
            .map_err(|e| Error::Protocol { operation: "download".to_owned(), reason: e.to_string() })??;
        Ok((manifest, report))
    }

    /// Records that run `run_id` of `project` used `version` (`UseArtifact`).
    ///
    /// # Errors
    /// [`Error::Graphql`] and HTTP errors.
    pub async fn use_artifact(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()> {
        let mut input = json!({
            "artifactID": version.id, "entityName": project.entity(), "projectName": project.project(), "runName": run_id,
        });
        if self.has_feature("USE_ARTIFACT_WITH_ENTITY_AND_PROJECT_INFORMATION").await? {
            input["artifactEntityName"] = json!(version.entity);
            input["artifactProjectName"] = json!(version.project);
        }
        self.graphql("UseArtifact", queries::USE_ARTIFACT, json!({"input": input})).await?;
        Ok(())
    }

    /// Links `version` to `target` — `[[ENTITY/]PROJECT/]COLLECTION` of a portfolio, or
    /// `wandb-registry-<registry>/<collection>` of a registry (whose entity is the organisation's, resolved
    /// from `default`'s entity) — with `aliases`, and returns the linked version as the target sees it.
    ///
    /// # Errors
    /// An invalid target, [`Error::Graphql`] and HTTP errors.
    pub async fn link(
        &self,
        version: &ArtifactVersion,
        target: &str,
        default: &ProjectRef,
        aliases: &[String],
    ) -> Result<ArtifactVersion> {
        for alias in aliases {
            artifact_core::validate_alias(alias)?;
        }
        let (target_project, collection) = crate::store::link_target(target, default)?;
        let target_project = if target_project.project().starts_with("wandb-registry-") {
            ProjectRef::new(&self.org_entity(target_project.entity()).await?, target_project.project())?
        } else {
            target_project
        };
        let collection = collection.as_str();
        let (entity, project) = (target_project.entity(), target_project.project());
        let input = json!({
            "artifactID": version.id, "artifactPortfolioName": collection, "entityName": entity,
            "projectName": project,
            "aliases": aliases.iter().map(|a| json!({"alias": a, "artifactCollectionName": collection})).collect::<Vec<_>>(),
        });
        let data = self.graphql("LinkArtifact", queries::LINK_ARTIFACT, json!({"input": input})).await?;
        let index = data.pointer("/linkArtifact/versionIndex").and_then(Value::as_u64).ok_or_else(|| {
            Error::Protocol { operation: "LinkArtifact".to_owned(), reason: "no versionIndex".to_owned() }
        })?;
        self.artifact(&target_project, collection, &format!("v{index}")).await
    }

    /// The organisation entity a registry of `entity` lives under.
    async fn org_entity(&self, entity: &str) -> Result<String> {
        let data = self.graphql("FetchOrgInfoFromEntity", queries::FETCH_ORG, json!({"entity": entity})).await?;
        let org = data
            .pointer("/entity/organization/orgEntity/name")
            .or_else(|| data.pointer("/entity/user/organizations/0/orgEntity/name"))
            .and_then(Value::as_str);
        org.map(str::to_owned).ok_or_else(|| Error::Protocol {
            operation: "FetchOrgInfoFromEntity".to_owned(),
            reason: format!("entity {entity:?} belongs to no organisation, so it has no registries"),
        })
    }
}

/// Bodies of one version, fetched from their direct URLs on the download's blocking threads.
struct RemoteObjects {
    client: WandbClient,
    version: ArtifactVersion,
    urls: Mutex<HashMap<String, String>>,
    runtime: tokio::runtime::Handle,
}

impl RemoteObjects {
    fn url(&self, path: &str) -> Result<String> {
        self.urls.lock().expect("urls lock").get(path).cloned().ok_or_else(|| Error::Protocol {
            operation: "GetArtifactMembershipFileUrls".to_owned(),
            reason: format!("the server gave no download URL for {path:?}"),
        })
    }
}

impl ObjectSource for RemoteObjects {
    fn open_object(&self, path: &str, _entry: &ManifestEntry) -> Result<Box<dyn Read + Send>> {
        let url = self.url(path)?;
        let transport = &self.client.transport;
        match self.runtime.block_on(open_at(transport, &url, 0)) {
            Ok(response) => Ok(Box::new(ResumingReader::new(transport.clone(), url, response, self.runtime.clone()))),
            Err(Error::HttpStatus { status: 401 | 403, .. }) => {
                tracing::info!(path, "download URL expired; asking for a fresh one");
                let fresh = self.runtime.block_on(self.client.file_urls(&self.version))?;
                *self.urls.lock().expect("urls lock") = fresh;
                let url = self.url(path)?;
                let response = self.runtime.block_on(open_at(transport, &url, 0))?;
                Ok(Box::new(ResumingReader::new(transport.clone(), url, response, self.runtime.clone())))
            }
            Err(e) => Err(e),
        }
    }
}

/// A GET from `offset` (a range request past 0), retried as the transport retries.
async fn open_at(transport: &Transport, url: &str, offset: u64) -> Result<reqwest::Response> {
    transport
        .send(Method::GET, url, None, |r| {
            Ok(if offset > 0 { r.header(reqwest::header::RANGE, format!("bytes={offset}-")) } else { r })
        })
        .await
}

type BodyReader =
    SyncIoBridge<StreamReader<futures_util::stream::BoxStream<'static, io::Result<bytes::Bytes>>, bytes::Bytes>>;

/// Reads a response body; when the connection breaks mid-body, asks again from the byte it got to.
struct ResumingReader {
    transport: Transport,
    url: String,
    runtime: tokio::runtime::Handle,
    inner: BodyReader,
    offset: u64,
    resumes: u32,
}

impl ResumingReader {
    fn new(transport: Transport, url: String, response: reqwest::Response, runtime: tokio::runtime::Handle) -> Self {
        let inner = body_reader(response, &runtime);
        ResumingReader { transport, url, runtime, inner, offset: 0, resumes: 0 }
    }
}

fn body_reader(response: reqwest::Response, runtime: &tokio::runtime::Handle) -> BodyReader {
    let stream: futures_util::stream::BoxStream<'static, io::Result<bytes::Bytes>> =
        Box::pin(response.bytes_stream().map_err(io::Error::other));
    SyncIoBridge::new_with_handle(StreamReader::new(stream), runtime.clone())
}

impl Read for ResumingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if self.resumes < RESUMES => {
                    self.resumes += 1;
                    tracing::info!(url = redact(&self.url), offset = self.offset, error = %e, "body cut; resuming");
                    let response = self
                        .runtime
                        .block_on(open_at(&self.transport, &self.url, self.offset))
                        .map_err(io::Error::other)?;
                    if self.offset > 0 && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                        return Err(io::Error::other(format!(
                            "{} does not resume transfers (no range support); the body was cut at byte {}",
                            redact(&self.url),
                            self.offset
                        )));
                    }
                    self.inner = body_reader(response, &self.runtime);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
