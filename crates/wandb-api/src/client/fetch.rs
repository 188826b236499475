//! Resolving, downloading, using and linking artifacts (spec §5.2, §6.6, §6.7, §6.10).

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use artifact_core::{Manifest, ManifestEntry, Progress};
use futures_util::{StreamExt, TryStreamExt};
use io_cache::ContentCache;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::http::{Transport, redact, transport_reason};
use super::{WandbClient, queries, version_from_fragment, version_from_membership};
use crate::download::{DownloadOptions, DownloadReport, ObjectSource, download};
use crate::error::{Error, Result};
use wandb_store::{ArtifactVersion, Collection, CollectionKind, ProjectRef};

/// File URLs asked for per page (`WANDB_ARTIFACT_FETCH_FILE_URL_BATCH_SIZE`'s default).
/// Fetched bodies below this size are hashed and written into the cache by the download's own thread, which
/// polls the fetches; larger ones on the blocking pool, so the other fetches go on meanwhile.
const INSERT_INLINE_BELOW: u64 = 64 << 10;

/// Download URLs per page: the first page small, so the first bodies come sooner; then the largest the
/// server gives.
const FIRST_URLS_PAGE: u64 = 1000;
const URLS_PER_PAGE: u64 = 5000;
/// A body cut mid-transfer is resumed with a range request this many times.
const RESUMES: u32 = 5;
/// Files smaller than this are fetched ahead of the copy, many at once and each whole in memory (so the bodies
/// in flight stay under `download_concurrency` MiB); bigger ones stream when they are copied.
const PREFETCH_BELOW: u64 = 1 << 20;

impl WandbClient {
    /// The version `selector` (`latest`, `vN` or an alias) names in collection `name` of `project` — a
    /// portfolio or registry collection included (the result's `linked_from` then names the source).
    pub(crate) async fn membership(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
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
    pub(crate) async fn fetch_manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
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
            let limit = self.options.max_manifest_bytes;
            let fetched = match self.transport.send(Method::GET, url, None, Ok).await {
                Ok(response) => read_at_most(response, limit, version).await,
                Err(e) => Err(e),
            };
            match fetched {
                Ok(bytes) => {
                    let manifest = Manifest::from_json(&bytes)?;
                    check_manifest_digest(&manifest, version)?;
                    return Ok(manifest);
                }
                Err(e @ (Error::HttpStatus { status: 401 | 403, .. } | Error::Http { .. })) if attempt < 3 => {
                    tracing::info!(error = %e, "fetching the manifest again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One page of the direct URLs of `version`'s files from `cursor` on: the (name, URL) pairs and the next
    /// page's cursor, `None` after the last.
    async fn file_url_page(
        &self,
        version: &ArtifactVersion,
        cursor: Option<&str>,
        per_page: u64,
    ) -> Result<(Vec<(String, String)>, Option<String>)> {
        let variables = json!({
            "entity": version.entity, "project": version.project, "collection": version.name,
            "alias": version.version(), "cursor": cursor, "perPage": per_page,
        });
        let data = self.graphql("GetArtifactMembershipFileUrls", queries::FILE_URLS, variables).await?;
        let files =
            data.pointer("/project/artifactCollection/artifactMembership/files").ok_or_else(|| Error::Protocol {
                operation: "GetArtifactMembershipFileUrls".to_owned(),
                reason: format!("no files for {}", version.qualified_name()),
            })?;
        let mut urls = Vec::new();
        for edge in files.get("edges").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(name), Some(url)) = (
                edge.pointer("/node/name").and_then(Value::as_str),
                edge.pointer("/node/directUrl").and_then(Value::as_str),
            ) {
                urls.push((name.to_owned(), url.to_owned()));
            }
        }
        Ok((urls, next_cursor(files, cursor)))
    }

    /// Downloads `entries` — `version`'s manifest or a part of it (one file, one directory) — into `root`
    /// through the content cache, verifying every byte (see [`download`](crate::download())). Bodies stream
    /// from their presigned URLs without credentials; big files come in parallel ranges (see
    /// [`super::ClientOptions`]); a cut body resumes with a range request; an expired URL (401/403) is replaced.
    pub(crate) async fn download_entries(
        &self,
        version: &ArtifactVersion,
        entries: &Manifest,
        root: &std::path::Path,
        options: &DownloadOptions,
    ) -> Result<DownloadReport> {
        let source = RemoteObjects {
            // URLs are asked for when a body needs one: a download the cache serves needs none.
            book: Arc::new(UrlBook::new(self.clone(), version.clone())),
            runtime: tokio::runtime::Handle::current(),
            ranged_threshold: self.options.ranged_threshold,
            range_size: self.options.range_size.max(1),
            ranges_in_flight: self.options.ranges_in_flight.max(1),
            download_concurrency: self.options.download_concurrency.max(1),
        };
        match tokio::runtime::Handle::current().runtime_flavor() {
            // The worker hands its other tasks on and blocks here: the manifest is not copied (a million
            // entries are hundreds of MB), and `prefetch` may `block_on` in here.
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| download(&source, entries, root, options))
            }
            // A current-thread runtime cannot block its one thread: the download moves to the blocking pool.
            _ => {
                let (root, options, entries) = (root.to_path_buf(), options.clone(), entries.clone());
                tokio::task::spawn_blocking(move || download(&source, &entries, &root, &options))
                    .await
                    .map_err(|e| Error::Runtime { reason: format!("the download task failed: {e}") })?
            }
        }
    }

    /// The collections of `project` (only those of `artifact_type` when given) — sequences and portfolios — by
    /// name, each with its newest version and how many versions it has (`ProjectArtifactCollections`, then
    /// `ProjectArtifacts` per collection; a portfolio's newest member through `ArtifactMembershipByName`). An
    /// unknown project has none.
    pub(crate) async fn list_collections(
        &self,
        project: &ProjectRef,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Collection>> {
        /// What the collections page says of one collection, before its newest version is fetched.
        struct Listed {
            name: String,
            artifact_type: String,
            kind: CollectionKind,
            description: Option<String>,
            tags: Vec<String>,
        }
        let mut named: Vec<Listed> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let variables =
                json!({"entity": project.entity(), "project": project.project(), "cursor": cursor, "perPage": 100});
            let data = self.graphql("ProjectArtifactCollections", queries::PROJECT_COLLECTIONS, variables).await?;
            let Some(page) = data.pointer("/project/artifactCollections").filter(|p| !p.is_null()) else { break };
            for edge in page.get("edges").and_then(Value::as_array).into_iter().flatten() {
                let name = edge.pointer("/node/name").and_then(Value::as_str);
                let kind = edge.pointer("/node/type/name").and_then(Value::as_str);
                let portfolio = edge.pointer("/node/__typename").and_then(Value::as_str) == Some("ArtifactPortfolio");
                if let (Some(name), Some(kind)) = (name, kind)
                    && artifact_type.is_none_or(|t| t == kind)
                {
                    let collection_kind = if portfolio { CollectionKind::Portfolio } else { CollectionKind::Sequence };
                    let description = edge.pointer("/node/description").and_then(Value::as_str).map(str::to_owned);
                    let tags = edge
                        .pointer("/node/tags/edges")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.pointer("/node/name").and_then(Value::as_str).map(str::to_owned))
                        .collect();
                    named.push(Listed {
                        name: name.to_owned(),
                        artifact_type: kind.to_owned(),
                        kind: collection_kind,
                        description,
                        tags,
                    });
                }
            }
            match next_cursor(page, cursor.as_deref()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let query = queries::project_artifacts();
        let mut collections: Vec<Collection> = futures_util::stream::iter(named)
            .map(|Listed { name, artifact_type, kind, description, tags }| {
                let query = &query;
                async move {
                    let variables = json!({
                        "entity": project.entity(), "project": project.project(), "type": artifact_type,
                        "collection": name, "perPage": 1, "order": "-createdAt",
                    });
                    let data = self.graphql("ProjectArtifacts", query, variables).await?;
                    let artifacts = data.pointer("/project/artifactType/artifactCollection/artifacts");
                    let newest = artifacts.and_then(|a| a.pointer("/edges/0/node")).filter(|n| !n.is_null());
                    let Some(newest) = newest else { return Ok(None) };
                    let version_count = artifacts.and_then(|a| a.get("totalCount")).and_then(Value::as_u64);
                    let latest = match kind {
                        CollectionKind::Sequence => version_from_fragment(newest)?,
                        CollectionKind::Portfolio => self.membership(project, &name, "latest").await?,
                    };
                    let version_count = version_count.unwrap_or(latest.version_index + 1);
                    let collection = Collection { name, artifact_type, kind, description, tags, version_count, latest };
                    Ok::<_, Error>(Some(collection))
                }
            })
            .buffered(8)
            .try_filter_map(|c| async move { Ok(c) })
            .try_collect()
            .await?;
        collections.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(collections)
    }

    /// Every version of collection `name`, oldest first: `ProjectArtifacts` paged in ascending order (a
    /// portfolio's members each through `ArtifactMembershipByName`, so they carry the portfolio's view).
    pub(crate) async fn list_versions(&self, project: &ProjectRef, name: &str) -> Result<Vec<ArtifactVersion>> {
        let latest = self.membership(project, name, "latest").await?;
        let query = queries::project_artifacts();
        let mut versions = Vec::new();
        let mut indices = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let variables = json!({
                "entity": project.entity(), "project": project.project(), "type": latest.artifact_type,
                "collection": name, "cursor": cursor, "perPage": 100, "order": "+createdAt",
            });
            let data = self.graphql("ProjectArtifacts", &query, variables).await?;
            let Some(page) =
                data.pointer("/project/artifactType/artifactCollection/artifacts").filter(|p| !p.is_null())
            else {
                break;
            };
            for edge in page.get("edges").and_then(Value::as_array).into_iter().flatten() {
                match (&latest.linked_from, edge.get("node")) {
                    (None, Some(node)) => versions.push(version_from_fragment(node)?),
                    (Some(_), _) => {
                        if let Some(index) = edge.get("version").and_then(Value::as_str) {
                            indices.push(index.to_owned());
                        }
                    }
                    (None, None) => {}
                }
            }
            match next_cursor(page, cursor.as_deref()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if latest.linked_from.is_some() {
            versions = futures_util::stream::iter(indices)
                .map(|index| async move { self.membership(project, name, &index).await })
                .buffered(8)
                .try_collect()
                .await?;
        }
        versions.sort_by_key(|v| v.version_index);
        Ok(versions)
    }

    /// The artifact types of `project` (`ProjectArtifactTypes`, paged), by name.
    pub(crate) async fn list_artifact_types(&self, project: &ProjectRef) -> Result<Vec<String>> {
        let mut types = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let variables =
                json!({"entity": project.entity(), "project": project.project(), "cursor": cursor, "perPage": 100});
            let data = self.graphql("ProjectArtifactTypes", queries::PROJECT_ARTIFACT_TYPES, variables).await?;
            let Some(page) = data.pointer("/project/artifactTypes").filter(|p| !p.is_null()) else { break };
            for edge in page.get("edges").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = edge.pointer("/node/name").and_then(Value::as_str) {
                    types.push(name.to_owned());
                }
            }
            match next_cursor(page, cursor.as_deref()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        types.sort();
        types.dedup();
        Ok(types)
    }

    /// Records that run `run_id` of `project` used `version` (`UseArtifact`).
    pub(crate) async fn use_version(
        &self,
        project: &ProjectRef,
        run_id: &str,
        version: &ArtifactVersion,
    ) -> Result<()> {
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

    /// Links `version` into `collection` of `target` (`LinkArtifact`); a `wandb-registry-*` project's entity is
    /// replaced by its organisation's. Returns the linked version as the target sees it.
    pub(crate) async fn link_version(
        &self,
        version: &ArtifactVersion,
        target: &ProjectRef,
        collection: &str,
        aliases: &[String],
    ) -> Result<ArtifactVersion> {
        for alias in aliases {
            artifact_core::validate_alias(alias)?;
        }
        artifact_core::validate_artifact_name(collection)?;
        let target_project = if target.project().starts_with(artifact_core::REGISTRY_PREFIX) {
            ProjectRef::new(&self.org_entity(target.entity()).await?, target.project())?
        } else {
            target.clone()
        };
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
        self.membership(&target_project, collection, &format!("v{index}")).await
    }

    /// The organisation entity a registry of `entity` lives under.
    async fn org_entity(&self, entity: &str) -> Result<String> {
        Ok(self.organization_of(entity).await?.1)
    }

    /// The organisation `entity` belongs to: its name and its entity (`FetchOrgInfoFromEntity`; an entity in
    /// several organisations counts as its first, as the SDK's fallback does).
    pub(crate) async fn organization_of(&self, entity: &str) -> Result<(String, String)> {
        let data = self.graphql("FetchOrgInfoFromEntity", queries::FETCH_ORG, json!({"entity": entity})).await?;
        let org = data
            .pointer("/entity/organization")
            .filter(|o| !o.is_null())
            .or_else(|| data.pointer("/entity/user/organizations/0"));
        let name = org.and_then(|o| o.get("name")).and_then(Value::as_str);
        let org_entity = org.and_then(|o| o.pointer("/orgEntity/name")).and_then(Value::as_str);
        match (name, org_entity) {
            (Some(name), Some(org_entity)) => Ok((name.to_owned(), org_entity.to_owned())),
            _ => Err(Error::Protocol {
                operation: "FetchOrgInfoFromEntity".to_owned(),
                reason: format!("entity {entity:?} belongs to no organisation, so it has no registries"),
            }),
        }
    }
}

/// The cursor of the page after `connection`'s, if there is one (a server repeating a cursor ends the paging).
/// Hashes and stores a fetched body in the cache; a body that is not the entry's is named by its logical path.
fn insert_fetched(
    cache: &ContentCache,
    digest: &str,
    algorithm: artifact_core::DigestAlgorithm,
    path: &str,
    body: &[u8],
) -> Result<()> {
    cache.insert_verified(digest, algorithm, &mut &body[..]).map(drop).map_err(|e| match e {
        io_cache::Error::DigestMismatch { expected, actual, .. } => {
            Error::DigestMismatch { path: path.to_owned(), expected, actual }
        }
        e => e.into(),
    })
}

/// A manifest body, refused once it passes `limit` bytes (a hostile or broken server could send any amount).
async fn read_at_most(response: reqwest::Response, limit: u64, version: &ArtifactVersion) -> Result<Vec<u8>> {
    let url = redact(response.url().as_str());
    let too_big = || Error::ManifestTooLarge { version: version.qualified_name(), limit };
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| Error::Http { url: url.clone(), reason: transport_reason(&e) })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The manifest must hash to the version's digest (with either algorithm an artifact digest may use): a
/// server cannot hand out other files under a version's name.
fn check_manifest_digest(manifest: &Manifest, version: &ArtifactVersion) -> Result<()> {
    if version.digest.is_empty() {
        return Ok(());
    }
    if manifest.hashes_to(&version.digest) {
        return Ok(());
    }
    Err(Error::ManifestMismatch {
        version: version.qualified_name(),
        expected: version.digest.clone(),
        actual: manifest.digest(),
    })
}

pub(crate) fn next_cursor(connection: &Value, current: Option<&str>) -> Option<String> {
    let has_next = connection.pointer("/pageInfo/hasNextPage").and_then(Value::as_bool).unwrap_or(false);
    let next = connection.pointer("/pageInfo/endCursor").and_then(Value::as_str)?;
    (has_next && Some(next) != current).then(|| next.to_owned())
}

/// The direct URLs of one version's files, asked for a page at a time when a body needs one, and again from
/// the first page when they expire.
struct UrlBook {
    client: WandbClient,
    version: ArtifactVersion,
    urls: Mutex<Urls>,
    /// One page request at a time: the bodies waiting for URLs ask once.
    paging: tokio::sync::Mutex<()>,
}

/// The URLs known so far.
#[derive(Default)]
struct Urls {
    /// Counts restarts, so a caller can tell whether someone restarted the pages since it looked.
    generation: u64,
    by_name: HashMap<String, String>,
    /// Where the next page starts; `None` with `pages_asked == 0` means the first page.
    cursor: Option<String>,
    pages_asked: u64,
    complete: bool,
}

impl UrlBook {
    fn new(client: WandbClient, version: ArtifactVersion) -> Self {
        UrlBook { client, version, urls: Mutex::new(Urls::default()), paging: tokio::sync::Mutex::new(()) }
    }

    /// The URL of `path` and the generation it belongs to, asking for further pages until it is known.
    async fn url(&self, path: &str) -> Result<(u64, String)> {
        loop {
            let generation = {
                let urls = self.urls.lock().expect("urls lock");
                if let Some(url) = urls.by_name.get(path) {
                    return Ok((urls.generation, url.clone()));
                }
                if urls.complete {
                    return Err(Error::Protocol {
                        operation: "GetArtifactMembershipFileUrls".to_owned(),
                        reason: format!("the server gave no download URL for {path:?}"),
                    });
                }
                urls.generation
            };
            let _one_page_at_a_time = self.paging.lock().await;
            let (cursor, pages_asked) = {
                let urls = self.urls.lock().expect("urls lock");
                // Someone else fetched a page (or restarted) while this one waited: look again.
                if urls.generation != generation || urls.by_name.contains_key(path) || urls.complete {
                    continue;
                }
                (urls.cursor.clone(), urls.pages_asked)
            };
            let per_page = if pages_asked == 0 { FIRST_URLS_PAGE } else { URLS_PER_PAGE };
            let (page, next) = self.client.file_url_page(&self.version, cursor.as_deref(), per_page).await?;
            let mut urls = self.urls.lock().expect("urls lock");
            urls.by_name.extend(page);
            urls.pages_asked += 1;
            urls.complete = next.is_none();
            urls.cursor = next;
        }
    }

    /// Forgets the URLs of generation `seen` (expired), so they are asked for again from the first page, unless
    /// someone did so already.
    fn restart(&self, seen: u64) {
        let mut urls = self.urls.lock().expect("urls lock");
        if urls.generation == seen {
            tracing::info!(version = self.version.qualified_name(), "download URLs expired; asking for fresh ones");
            *urls = Urls { generation: seen + 1, ..Urls::default() };
        }
    }

    /// A GET of `path`'s body from `start` (to `end` inclusive, or the end), with a fresh URL when the one
    /// held has expired.
    async fn get(&self, path: &str, start: u64, end: Option<u64>) -> Result<reqwest::Response> {
        let mut refreshed = false;
        loop {
            let (generation, url) = self.url(path).await?;
            match open_at(&self.client.transport, &url, start, end).await {
                Err(Error::HttpStatus { status: 401 | 403, .. }) if !refreshed => {
                    refreshed = true;
                    self.restart(generation);
                }
                other => return other,
            }
        }
    }

    /// Drops the URL of `path`, whose whole body has been fetched, so the book holds the pages being worked
    /// through rather than every URL of the version (a million signed URLs are hundreds of MB).
    fn forget(&self, path: &str) {
        self.urls.lock().expect("urls lock").by_name.remove(path);
    }

    /// The URL of `path` if it is known, for messages.
    fn known_url(&self, path: &str) -> Option<String> {
        self.urls.lock().expect("urls lock").by_name.get(path).cloned()
    }
}

/// Bodies of one version, fetched from their direct URLs.
struct RemoteObjects {
    book: Arc<UrlBook>,
    runtime: tokio::runtime::Handle,
    ranged_threshold: u64,
    range_size: u64,
    ranges_in_flight: usize,
    download_concurrency: usize,
}

impl UrlBook {
    /// Fetches one small body into `cache`, unless another download of this client is fetching it (then waits
    /// for that one) or it is there already; true when this call fetched it.
    async fn prefetch_one(&self, path: &str, entry: &ManifestEntry, cache: &ContentCache) -> Result<bool> {
        let algorithm = entry.digest_algorithm();
        let size = entry.size.unwrap_or(0);
        let key = cache.object_path(&entry.digest, algorithm)?;
        let fetching = &self.client.fetching;
        let flight = fetching.entry(key.clone()).or_default().clone();
        let result = async {
            let _only_fetch = flight.lock().await;
            if cache.lookup(&entry.digest, algorithm, size)?.is_some() {
                return Ok(false);
            }
            let body = self.fetch_whole(path, size).await?;
            self.forget(path);
            if size < INSERT_INLINE_BELOW {
                // This future is polled by the download's blocking thread (`prefetch`), not by an async worker,
                // and a hop to the blocking pool (two thread wake-ups) costs more than hashing and writing this.
                insert_fetched(cache, &entry.digest, algorithm, path, &body)?;
            } else {
                let (cache, digest, path) = (cache.clone(), entry.digest.clone(), path.to_owned());
                tokio::task::spawn_blocking(move || insert_fetched(&cache, &digest, algorithm, &path, &body))
                    .await
                    .map_err(|e| Error::Runtime { reason: format!("a download task failed: {e}") })??;
            }
            Ok(true)
        }
        .await;
        // The last one out removes the entry (the map holds one reference, this call another).
        fetching.remove_if(&key, |_, f| Arc::strong_count(f) <= 2);
        result
    }

    /// The whole body of `path`, never more than `size` bytes; a body cut mid-transfer is fetched again.
    async fn fetch_whole(&self, path: &str, size: u64) -> Result<Vec<u8>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.get(path, 0, None).await?;
            let url = redact(response.url().as_str());
            let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            let mut chunks = response.bytes_stream();
            let cut = loop {
                match chunks.next().await {
                    Some(Ok(chunk)) if (body.len() + chunk.len()) as u64 > size => {
                        return Err(Error::BodyTooLong { path: path.to_owned(), expected: size });
                    }
                    Some(Ok(chunk)) => body.extend_from_slice(&chunk),
                    Some(Err(e)) => break Some(e),
                    None => break None,
                }
            };
            match cut {
                None => return Ok(body),
                Some(e) if attempt <= RESUMES => {
                    tracing::warn!(path, error = %transport_reason(&e), "body cut; fetching it again (attempt {} of {})", attempt + 1, RESUMES + 1);
                }
                Some(e) => return Err(Error::Http { url, reason: transport_reason(&e) }),
            }
        }
    }
}

impl ObjectSource for RemoteObjects {
    fn prefetch(
        &self,
        wanted: &[(&str, &ManifestEntry)],
        cache: &ContentCache,
        progress: &dyn Progress,
    ) -> Result<Vec<bool>> {
        let small = wanted.iter().enumerate().filter(|(_, (_, entry))| entry.size.is_some_and(|s| s < PREFETCH_BELOW));
        // Polled here, on the download's own blocking thread (`block_on`).
        let fetched: Vec<Option<usize>> = self.runtime.block_on(
            futures_util::stream::iter(small)
                .map(|(i, &(path, entry))| async move {
                    let fetched = self.book.prefetch_one(path, entry, cache).await?;
                    if fetched {
                        progress.advance(entry.size.unwrap_or(0));
                        progress.file_done();
                    }
                    Ok::<_, Error>(fetched.then_some(i))
                })
                .buffer_unordered(self.download_concurrency)
                .try_collect(),
        )?;
        let mut by_entry = vec![false; wanted.len()];
        for i in fetched.into_iter().flatten() {
            by_entry[i] = true;
        }
        Ok(by_entry)
    }

    fn open_object(&self, path: &str, entry: &ManifestEntry) -> Result<Box<dyn Read + Send>> {
        let size = entry.size.unwrap_or(0);
        if size >= self.ranged_threshold && size > self.range_size {
            let end = self.range_size - 1;
            let first = self.runtime.block_on(self.book.get(path, 0, Some(end)))?;
            // A server without range support answers the whole body: stream it as is.
            if first.status() == reqwest::StatusCode::PARTIAL_CONTENT {
                return Ok(Box::new(RangedReader::new(self, path, size, first)));
            }
            tracing::debug!(path, "no range support; fetching in one stream");
            return Ok(Box::new(ResumingReader::new(self.book.clone(), path, first, self.runtime.clone())));
        }
        let response = self.runtime.block_on(self.book.get(path, 0, None))?;
        Ok(Box::new(ResumingReader::new(self.book.clone(), path, response, self.runtime.clone())))
    }
}

/// A GET from byte `start` to `end` (inclusive; the end of the body when `None`), retried as the transport
/// retries. No `Range` header for a whole body.
async fn open_at(transport: &Transport, url: &str, start: u64, end: Option<u64>) -> Result<reqwest::Response> {
    let range = match (start, end) {
        (0, None) => None,
        (start, None) => Some(format!("bytes={start}-")),
        (start, Some(end)) => Some(format!("bytes={start}-{end}")),
    };
    transport
        .send(Method::GET, url, None, |r| {
            Ok(match &range {
                Some(range) => r.header(reqwest::header::RANGE, range),
                None => r,
            })
        })
        .await
}

type BodyReader =
    SyncIoBridge<StreamReader<futures_util::stream::BoxStream<'static, io::Result<bytes::Bytes>>, bytes::Bytes>>;

/// Reads a response body; when the connection breaks mid-body, asks again from the byte it got to.
struct ResumingReader {
    book: Arc<UrlBook>,
    path: String,
    runtime: tokio::runtime::Handle,
    inner: BodyReader,
    offset: u64,
    resumes: u32,
}

impl ResumingReader {
    fn new(book: Arc<UrlBook>, path: &str, response: reqwest::Response, runtime: tokio::runtime::Handle) -> Self {
        let inner = body_reader(response, &runtime);
        ResumingReader { book, path: path.to_owned(), runtime, inner, offset: 0, resumes: 0 }
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
                    tracing::info!(path = self.path, offset = self.offset, error = %e, "body cut; resuming");
                    let response = self
                        .runtime
                        .block_on(self.book.get(&self.path, self.offset, None))
                        .map_err(io::Error::other)?;
                    if self.offset > 0 && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
                        return Err(io::Error::other(format!(
                            "the server does not resume transfers (no range support); the body of {:?} was cut at byte {}",
                            self.path, self.offset
                        )));
                    }
                    self.inner = body_reader(response, &self.runtime);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A big body fetched as consecutive ranges, several at once, read in order.
///
/// Each range is gathered in memory by its own task; at most `in_flight` ranges exist at a time (the one
/// being read included), so memory is bounded by `in_flight × range_size`. The range buffers are recycled:
/// allocating and freeing one per range lets the allocator's arenas grow well past that bound.
struct RangedReader {
    book: Arc<UrlBook>,
    path: String,
    runtime: tokio::runtime::Handle,
    size: u64,
    range_size: u64,
    in_flight: usize,
    /// Where the next range to ask for starts.
    next_start: u64,
    pending: VecDeque<tokio::task::JoinHandle<Result<Vec<u8>>>>,
    /// The range being read, and how far.
    current: Vec<u8>,
    position: usize,
    /// Buffers of ranges already read, for the next ones.
    spare: Vec<Vec<u8>>,
}

impl RangedReader {
    fn new(source: &RemoteObjects, path: &str, size: u64, first: reqwest::Response) -> Self {
        let book = source.book.clone();
        let first_end = source.range_size.min(size) - 1;
        let buffer = Vec::new();
        let first_task =
            source.runtime.spawn(gather_range(book.clone(), path.to_owned(), Some(first), 0, first_end, buffer));
        let mut reader = RangedReader {
            book,
            path: path.to_owned(),
            runtime: source.runtime.clone(),
            size,
            range_size: source.range_size,
            in_flight: source.ranges_in_flight,
            next_start: first_end + 1,
            pending: VecDeque::from([first_task]),
            current: Vec::new(),
            position: 0,
            spare: Vec::new(),
        };
        reader.fill_pipeline(source.ranges_in_flight);
        reader
    }

    /// Asks for further ranges until `limit` are pending or the body is covered.
    fn fill_pipeline(&mut self, limit: usize) {
        while self.pending.len() < limit && self.next_start < self.size {
            let start = self.next_start;
            let end = (start + self.range_size).min(self.size) - 1;
            let buffer = self.spare.pop().unwrap_or_default();
            let task = gather_range(self.book.clone(), self.path.clone(), None, start, end, buffer);
            self.pending.push_back(self.runtime.spawn(task));
            self.next_start = end + 1;
        }
    }
}

impl Read for RangedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            let done = std::mem::take(&mut self.current);
            if done.capacity() > 0 {
                self.spare.push(done);
            }
            self.position = 0;
            if self.pending.is_empty() {
                self.fill_pipeline(1);
            }
            let Some(task) = self.pending.pop_front() else { return Ok(0) };
            // The range being read counts against the limit.
            self.fill_pipeline(self.in_flight - 1);
            self.current = self.runtime.block_on(task).map_err(io::Error::other)?.map_err(io::Error::other)?;
        }
        let available = &self.current[self.position..];
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.position += n;
        Ok(n)
    }
}

impl Drop for RangedReader {
    fn drop(&mut self) {
        // A reader given up on (a digest mismatch, an error elsewhere) stops its transfers.
        for task in &self.pending {
            task.abort();
        }
    }
}

/// Bytes `start..=end` of `path`'s body into `buffer` (emptied first), from `response` when given, resuming
/// where a cut left off.
async fn gather_range(
    book: Arc<UrlBook>,
    path: String,
    mut response: Option<reqwest::Response>,
    start: u64,
    end: u64,
    mut buffer: Vec<u8>,
) -> Result<Vec<u8>> {
    let want = usize::try_from(end - start + 1).expect("ranges fit in memory");
    buffer.clear();
    buffer.reserve_exact(want);
    let mut resumes = 0;
    loop {
        let got = buffer.len() as u64;
        let response = match response.take() {
            Some(response) => response,
            None => book.get(&path, start + got, Some(end)).await?,
        };
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(Error::Protocol {
                operation: "download".to_owned(),
                reason: format!(
                    "asked for bytes {}-{end} of {path:?}, the server answered {} instead of a range",
                    start + got,
                    response.status()
                ),
            });
        }
        let mut body = response.bytes_stream();
        let cut = loop {
            match body.try_next().await {
                Ok(Some(chunk)) if buffer.len() + chunk.len() <= want => buffer.extend_from_slice(&chunk),
                Ok(Some(_)) => {
                    return Err(Error::Protocol {
                        operation: "download".to_owned(),
                        reason: format!("the server sent more than bytes {start}-{end} of {path:?}"),
                    });
                }
                Ok(None) => break None,
                Err(e) => break Some(super::http::transport_reason(&e)),
            }
        };
        match cut {
            None if buffer.len() == want => return Ok(buffer),
            None => {}
            Some(reason) => tracing::info!(path, offset = start + buffer.len() as u64, reason, "range cut; resuming"),
        }
        resumes += 1;
        if resumes > RESUMES {
            return Err(Error::Http {
                url: book.known_url(&path).map(|url| redact(&url)).unwrap_or(path),
                reason: format!("bytes {start}-{end} stayed incomplete after {RESUMES} resumptions"),
            });
        }
    }
}
