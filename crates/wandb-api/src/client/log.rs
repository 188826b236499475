//! Logging an artifact (spec §6.2–§6.5, §6.9).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use artifact_core::{Artifact, DigestAlgorithm, Manifest, NoProgress, Progress, md5_b64};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::{Value, json};

use super::http::redact;
use super::{WandbClient, queries, version_from_fragment};
use crate::backend::{LogOptions, LoggedArtifact, UpsertedPart};
use crate::error::{Error, Result};
use wandb_store::{ArtifactVersion, ProjectRef};

/// The part size (`S3DefaultChunkSize`) is grown for files over this many parts.
const MAX_PARTS: u64 = 10_000;
/// Files registered per `CreateArtifactFiles` request.
const FILES_PER_BATCH: usize = 1000;

enum Saved {
    /// A distributed writer's part, uploaded; the artifact stays pending.
    Part(UpsertedPart),
    /// The version, committed (or found with the same content).
    Committed(Box<LoggedArtifact>),
}

impl Saved {
    fn committed(self) -> Result<LoggedArtifact> {
        match self {
            Saved::Committed(logged) => Ok(*logged),
            Saved::Part(_) => Err(Error::Protocol {
                operation: "CommitArtifact".to_owned(),
                reason: "the artifact was left pending".to_owned(),
            }),
        }
    }
}

/// One file to register and upload.
struct Upload {
    name: String,
    local: PathBuf,
    size: u64,
    md5: String,
    digest: String,
    /// Hex MD5 of each part, for multipart files.
    parts: Option<Vec<String>>,
    part_size: u64,
}

impl WandbClient {
    /// Logs `artifact` to `project`, as `run.log_artifact` does (see [`crate::Backend::log_artifact`]).
    pub(crate) async fn log(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        self.save(project, artifact, options, None).await?.committed()
    }

    /// Uploads this process's part of the distributed artifact `distributed_id` (`run.upsert_artifact`): the
    /// artifact stays pending until one writer finishes it.
    pub(crate) async fn upsert(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<UpsertedPart> {
        match self.save(project, artifact, options, Some((distributed_id, false))).await? {
            Saved::Part(part) => Ok(part),
            // Found committed with the same content: every file is there already.
            Saved::Committed(logged) => Ok(UpsertedPart {
                reused_files: logged.manifest.len(),
                manifest: logged.manifest,
                stored_files: 0,
                stored_bytes: 0,
            }),
        }
    }

    /// Uploads this process's part, if any, and commits the distributed artifact `distributed_id`
    /// (`run.finish_artifact`); the server merges every part uploaded for it.
    pub(crate) async fn finish(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        self.save(project, artifact, options, Some((distributed_id, true))).await?.committed()
    }

    /// §6.2, or §9.2 for one writer of a distributed artifact (`Some((id, finalize))`).
    async fn save(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        options: &LogOptions,
        distributed: Option<(&str, bool)>,
    ) -> Result<Saved> {
        crate::backend::check_log_request(artifact, options)?;
        let tags = artifact_core::validate_tags(&options.tags)?;
        let name = artifact.name();
        self.check_type(project, name, artifact.artifact_type()).await?;
        let (manifest, algorithm) = self.negotiate_algorithm(project, artifact).await?;
        let digest = manifest.digest_with(algorithm);
        let send_digests = self.has_feature("ARTIFACT_DIGEST_ALGORITHM").await?;

        let mut aliases: Vec<Value> = options
            .aliases
            .iter()
            .filter(|a| a.as_str() != "latest")
            .map(|a| json!({"alias": a, "artifactCollectionName": name}))
            .collect();
        aliases.push(json!({"alias": "latest", "artifactCollectionName": name}));
        let mut input = json!({
            "aliases": aliases, "artifactCollectionName": name, "artifactCollectionNames": null,
            "artifactTypeName": artifact.artifact_type(), "clientID": random_client_id(),
            "clientMutationId": null, "description": artifact.description(), "digest": digest,
            "distributedID": distributed.map(|(d, _)| d), "enableDigestDeduplication": true, "entityName": project.entity(),
            "historyStep": null, "labels": null,
            "metadata": serde_json::to_string(artifact.metadata()).expect("metadata serialises"),
            "projectName": project.project(), "runName": options.run_id, "sequenceClientID": random_client_id(),
            "storageRegion": null, "ttlDurationSeconds": null,
        });
        if send_digests {
            input["digestAlgorithm"] = json!(algorithm.graphql_name());
        }
        if !tags.is_empty() {
            input["tags"] =
                tags.iter().map(|t| json!({"attributes": null, "tagCategoryName": null, "tagName": t})).collect();
        }
        let data = match self.graphql("CreateArtifact", queries::CREATE_ARTIFACT, json!({"input": input})).await {
            // `dagster-wandb server` refuses a part for a finished distributed artifact (W&B answers COMMITTED,
            // handled below); both are the same condition.
            Err(Error::Graphql { message, .. })
                if distributed.is_some() && message.contains("was already finished") =>
            {
                return Err(Error::DistributedArtifactFinished {
                    name: name.to_owned(),
                    distributed_id: distributed.map(|(d, _)| d.to_owned()).unwrap_or_default(),
                });
            }
            other => other?,
        };
        let created = data.pointer("/createArtifact/artifact").cloned().unwrap_or(Value::Null);
        let id = created.get("id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| Error::Protocol {
            operation: "CreateArtifact".to_owned(),
            reason: "no artifact id".to_owned(),
        })?;
        let base_id = created.pointer("/artifactSequence/latestArtifact/id").and_then(Value::as_str).map(str::to_owned);
        match created.get("state").and_then(Value::as_str) {
            Some("COMMITTED") if distributed.is_some() => {
                return Err(Error::DistributedArtifactFinished {
                    name: name.to_owned(),
                    distributed_id: distributed.map(|(d, _)| d.to_owned()).unwrap_or_default(),
                });
            }
            Some("COMMITTED") => {
                // Info, as the embedded store logs it: callers see `created: false`, and the CLI says it once.
                tracing::info!(
                    "Artifact \"{name}\" already exists with the same content. No new version will be created."
                );
                let version = self.artifact_by_id(&id).await?;
                let manifest = self.fetch_manifest(&version).await?;
                let reused_files = manifest.len();
                return Ok(Saved::Committed(Box::new(LoggedArtifact {
                    version,
                    created: false,
                    manifest,
                    stored_files: 0,
                    reused_files,
                    stored_bytes: 0,
                })));
            }
            Some("PENDING" | "DELETED") => {}
            other => {
                return Err(Error::Protocol {
                    operation: "CreateArtifact".to_owned(),
                    reason: format!("unexpected artifact state {other:?}"),
                });
            }
        }

        let run_name = options.run_id.clone().unwrap_or_default();
        // A distributed writer's manifest is a PATCH holding its own entries; the server merges them at commit.
        let (manifest_name, manifest_type, base_id) = match distributed {
            Some(_) => ("wandb_manifest.patch.json", "PATCH", None),
            None => ("wandb_manifest.json", "FULL", base_id),
        };
        let manifest_vars = |digest: &str, include_upload: bool| {
            json!({
                "artifactID": id, "baseArtifactID": base_id, "name": manifest_name, "digest": digest,
                "entityName": project.entity(), "projectName": project.project(), "runName": run_name,
                "manifestType": manifest_type, "includeUpload": include_upload,
            })
        };
        let data = self.graphql("CreateArtifactManifest", queries::CREATE_MANIFEST, manifest_vars("", false)).await?;
        let manifest_id = data
            .pointer("/createArtifactManifest/artifactManifest/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol {
                operation: "CreateArtifactManifest".to_owned(),
                reason: "no manifest id".to_owned(),
            })?;

        let progress: Arc<dyn Progress> = options.progress.clone().unwrap_or_else(|| Arc::new(NoProgress));
        let uploads =
            plan_uploads(&manifest, algorithm, self.options.multipart_threshold, self.options.part_size).await?;
        progress.begin("uploading", uploads.iter().map(|u| u.size).sum());
        progress.set_files(uploads.len() as u64);
        let mut manifest = manifest;
        let mut uploaded_files = 0;
        let mut skipped_files = 0;
        let mut uploaded_bytes = 0;
        for batch in uploads.chunks(FILES_PER_BATCH) {
            let outcome = self
                .upload_batch(
                    &id,
                    &manifest_id,
                    batch,
                    algorithm,
                    send_digests,
                    self.options.upload_concurrency,
                    &progress,
                )
                .await?;
            for (upload, birth_id, uploaded) in outcome {
                if let Some(entry) = manifest.get_mut(&upload.name) {
                    entry.birth_artifact_id = Some(birth_id);
                }
                if uploaded {
                    uploaded_files += 1;
                    uploaded_bytes += upload.size;
                } else {
                    skipped_files += 1;
                    progress.advance(upload.size);
                }
                progress.file_done();
            }
        }
        progress.finish();
        for (_, entry) in manifest.entries_mut() {
            entry.local_path = None;
        }

        // Shared, not copied, by each attempt of the PUT below.
        let manifest_bytes = bytes::Bytes::from(manifest.to_go_json());
        let file = match distributed {
            Some(_) => {
                let variables = json!({
                    "artifactManifestID": manifest_id, "digest": md5_b64(&manifest_bytes), "baseArtifactID": null,
                    "includeUpload": true,
                });
                let data = self.graphql("UpdateArtifactManifest", queries::UPDATE_MANIFEST, variables).await?;
                data.pointer("/updateArtifactManifest/artifactManifest/file").cloned().unwrap_or(Value::Null)
            }
            None => {
                let variables = manifest_vars(&md5_b64(&manifest_bytes), true);
                let data = self.graphql("CreateArtifactManifest", queries::CREATE_MANIFEST, variables).await?;
                data.pointer("/createArtifactManifest/artifactManifest/file").cloned().unwrap_or(Value::Null)
            }
        };
        let url = file.get("uploadUrl").and_then(Value::as_str).ok_or_else(|| Error::Protocol {
            operation: "CreateArtifactManifest".to_owned(),
            reason: "no upload URL for the manifest".to_owned(),
        })?;
        let headers = upload_headers(&file);
        let body = manifest_bytes;
        self.transport
            .send(Method::PUT, url, None, |r| {
                let mut r = r.header(reqwest::header::CONTENT_LENGTH, body.len()).body(body.clone());
                for (k, v) in &headers {
                    r = r.header(k.as_str(), v.as_str());
                }
                Ok(r)
            })
            .await?;
        if distributed.is_some_and(|(_, finalize)| !finalize) {
            return Ok(Saved::Part(UpsertedPart {
                manifest,
                stored_files: uploaded_files,
                reused_files: skipped_files,
                stored_bytes: uploaded_bytes,
            }));
        }
        self.graphql("CommitArtifact", queries::COMMIT_ARTIFACT, json!({"artifactID": id})).await?;
        let version = self.artifact_by_id(&id).await?;
        if distributed.is_some() {
            // The committed manifest is every writer's parts merged, not this process's alone.
            manifest = self.fetch_manifest(&version).await?;
        }
        Ok(Saved::Committed(Box::new(LoggedArtifact {
            version,
            created: true,
            manifest,
            stored_files: uploaded_files,
            reused_files: skipped_files,
            stored_bytes: uploaded_bytes,
        })))
    }

    /// `ArtifactType`: one name, one type (the SDK checks before logging; a failed check is ignored there and
    /// here, the server checks again).
    pub(crate) async fn check_type(&self, project: &ProjectRef, name: &str, artifact_type: &str) -> Result<()> {
        let variables =
            json!({"entity": project.entity(), "project": project.project(), "name": format!("{name}:latest")});
        let Ok(data) = self.graphql("ArtifactType", queries::ARTIFACT_TYPE, variables).await else { return Ok(()) };
        match data.pointer("/project/artifact/artifactType/name").and_then(Value::as_str) {
            Some(existing) if existing != artifact_type => Err(Error::TypeConflict {
                name: name.to_owned(),
                existing: existing.to_owned(),
                requested: artifact_type.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// §6.9: XXH128 only when the server, the entity and the collection all take it; otherwise every file is
    /// re-hashed with MD5 and the `alg` tags dropped, as `wandb-core` does.
    async fn negotiate_algorithm(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
    ) -> Result<(Manifest, DigestAlgorithm)> {
        let manifest = artifact.manifest().clone();
        if artifact.digest_algorithm() != DigestAlgorithm::Xxh128 {
            return Ok((manifest, DigestAlgorithm::Md5));
        }
        let mut keep = self.has_feature("ARTIFACT_DIGEST_ALGORITHM").await?;
        if keep {
            let data = self
                .graphql("XXHashDigestsEnabled", queries::XXHASH_ENABLED, json!({"entityName": project.entity()}))
                .await?;
            keep = data.pointer("/entity/xxhashDigestsEnabled").and_then(Value::as_bool).unwrap_or(false);
        }
        if keep {
            let variables = json!({
                "entityName": project.entity(), "projectName": project.project(),
                "artifactTypeName": artifact.artifact_type(), "artifactCollectionName": artifact.name(),
            });
            match self.graphql("FetchArtifactDigestAlgorithm", queries::FETCH_DIGEST_ALGORITHM, variables).await {
                Ok(data) => {
                    let existing = data
                        .pointer("/project/artifactType/artifactCollection/digestAlgorithm")
                        .and_then(Value::as_str);
                    keep = existing.is_none_or(|a| a == "MANIFEST_XXH128");
                }
                // 404: a new sequence, which keeps XXH128.
                Err(Error::HttpStatus { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if keep {
            return Ok((manifest, DigestAlgorithm::Xxh128));
        }
        tracing::info!(name = artifact.name(), "the server does not take XXH128 digests here; re-hashing with MD5");
        let mut manifest = manifest;
        let files: Vec<(String, PathBuf)> = manifest
            .entries()
            .filter(|(_, e)| !e.is_reference())
            .filter_map(|(p, e)| e.local_path.clone().map(|l| (p.to_owned(), l)))
            .collect();
        let digests = hash_files(files.iter().map(|(_, l)| l.clone()).collect()).await?;
        for ((path, _), md5) in files.iter().zip(digests) {
            if let Some(entry) = manifest.get_mut(path) {
                entry.digest = md5;
                entry.extra.remove("alg");
            }
        }
        Ok((manifest, DigestAlgorithm::Md5))
    }

    /// Registers a batch of files and uploads those the server asks for. Files whose presigned URL was
    /// refused (403: expired) get fresh URLs and are tried again, while at most half of them keep failing.
    #[allow(clippy::too_many_arguments)]
    async fn upload_batch<'a>(
        &self,
        artifact_id: &str,
        manifest_id: &str,
        batch: &'a [Upload],
        algorithm: DigestAlgorithm,
        send_digests: bool,
        concurrency: usize,
        progress: &Arc<dyn Progress>,
    ) -> Result<Vec<(&'a Upload, String, bool)>> {
        let mut done: Vec<(&Upload, String, bool)> = Vec::with_capacity(batch.len());
        let mut remaining: Vec<&Upload> = batch.iter().collect();
        loop {
            let files: Vec<Value> = remaining
                .iter()
                .map(|u| {
                    let mut spec = json!({
                        "artifactID": artifact_id, "artifactManifestID": manifest_id, "md5": u.md5,
                        "mimetype": null, "name": u.name,
                        "uploadPartsInput": u.parts.as_ref().map(|parts| parts.iter().enumerate()
                            .map(|(i, hex)| json!({"partNumber": i + 1, "hexMD5": hex})).collect::<Vec<_>>()),
                    });
                    if send_digests {
                        spec["digest"] = json!(u.digest);
                    }
                    spec
                })
                .collect();
            let mut input = json!({
                "artifactFiles": files, "clientMutationId": null, "cloudRegionID": null, "storageLayout": "V2",
            });
            if send_digests {
                input["digestAlgorithm"] = json!(algorithm.graphql_name());
            }
            let data = self.graphql("CreateArtifactFiles", queries::CREATE_FILES, json!({"input": input})).await?;
            let edges =
                data.pointer("/createArtifactFiles/files/edges").and_then(Value::as_array).cloned().unwrap_or_default();
            if edges.len() != remaining.len() {
                return Err(Error::Protocol {
                    operation: "CreateArtifactFiles".to_owned(),
                    reason: format!("expected {} upload URLs, got {}", remaining.len(), edges.len()),
                });
            }
            // Items by index, not by reference: a closure over borrowed items makes the future's `Send` bound
            // higher-ranked, which `async_trait`'s boxed futures cannot prove.
            let remaining_ref = &remaining;
            let attempts = futures_util::stream::iter(edges.into_iter().enumerate())
                .map(|(index, edge)| async move {
                    let upload: &Upload = remaining_ref[index];
                    let node = edge.get("node").cloned().unwrap_or(Value::Null);
                    let birth_id =
                        node.pointer("/artifact/id").and_then(Value::as_str).unwrap_or(artifact_id).to_owned();
                    let result = self.upload_one(artifact_id, upload, &node, progress).await;
                    (upload, birth_id, result)
                })
                .buffer_unordered(concurrency.max(1))
                .collect::<Vec<_>>()
                .await;
            let mut expired = Vec::new();
            for (upload, birth_id, result) in attempts {
                match result {
                    Ok(uploaded) => done.push((upload, birth_id, uploaded)),
                    Err(Error::HttpStatus { status: 401 | 403, .. }) => expired.push(upload),
                    Err(e) => return Err(e),
                }
            }
            if expired.is_empty() {
                return Ok(done);
            }
            if expired.len() * 2 > remaining.len() {
                return Err(Error::Protocol {
                    operation: "upload".to_owned(),
                    reason: format!(
                        "most remaining uploads ({}/{}) have failed, giving up",
                        expired.len(),
                        remaining.len()
                    ),
                });
            }
            tracing::info!(files = expired.len(), "upload URLs expired; asking for fresh ones");
            remaining = expired;
        }
    }

    /// Uploads one file per its `CreateArtifactFiles` node; false when the server already has it.
    async fn upload_one(
        &self,
        artifact_id: &str,
        upload: &Upload,
        node: &Value,
        progress: &Arc<dyn Progress>,
    ) -> Result<bool> {
        if let Some(multipart) = node.get("uploadMultipartUrls").filter(|m| !m.is_null()) {
            self.upload_parts(artifact_id, upload, node, multipart, progress).await?;
            return Ok(true);
        }
        let Some(url) = node.get("uploadUrl").and_then(Value::as_str) else { return Ok(false) };
        let headers = upload_headers(node);
        let local = upload.local.clone();
        let size = upload.size;
        self.transport
            .send(Method::PUT, url, None, |r| {
                let mut r = r.header(reqwest::header::CONTENT_LENGTH, size).body(file_body(&local, 0, size, progress)?);
                for (k, v) in &headers {
                    r = r.header(k.as_str(), v.as_str());
                }
                Ok(r)
            })
            .await?;
        Ok(true)
    }

    async fn upload_parts(
        &self,
        artifact_id: &str,
        upload: &Upload,
        node: &Value,
        multipart: &Value,
        progress: &Arc<dyn Progress>,
    ) -> Result<()> {
        let protocol = |reason: String| Error::Protocol { operation: "multipart upload".to_owned(), reason };
        let upload_id =
            multipart.get("uploadID").and_then(Value::as_str).ok_or_else(|| protocol("no uploadID".into()))?;
        let urls = multipart.get("uploadUrlParts").and_then(Value::as_array).cloned().unwrap_or_default();
        let hexes =
            upload.parts.as_ref().ok_or_else(|| protocol(format!("{} was not planned in parts", upload.name)))?;
        let part_size = upload.part_size;
        let content_type = upload_headers(node)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v)
            .unwrap_or_default();
        let mut etags = vec![String::new(); hexes.len()];
        let results = futures_util::stream::iter(urls)
            .map(|part: Value| {
                let content_type = content_type.clone();
                async move {
                    let number = part.get("partNumber").and_then(Value::as_u64).unwrap_or(0);
                    let url = part.get("uploadUrl").and_then(Value::as_str).unwrap_or("");
                    let index = number
                        .checked_sub(1)
                        .filter(|i| (*i as usize) < hexes.len())
                        .ok_or_else(|| protocol(format!("part number {number} is outside 1..={}", hexes.len())))?;
                    let offset = index * part_size;
                    let len = part_size.min(upload.size - offset);
                    let md5 = artifact_core::hex_to_b64(&hexes[index as usize])?;
                    let local = upload.local.clone();
                    let response = self
                        .transport
                        .send(Method::PUT, url, None, |r| {
                            Ok(r.header(reqwest::header::CONTENT_LENGTH, len)
                                .header("Content-MD5", md5.as_str())
                                .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                                .body(file_body(&local, offset, len, progress)?))
                        })
                        .await?;
                    let etag = response
                        .headers()
                        .get(reqwest::header::ETAG)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                        .ok_or_else(|| protocol(format!("no ETag for part {number} of {}", redact(url))))?;
                    Ok::<_, Error>((index as usize, etag))
                }
            })
            .buffer_unordered(4)
            .try_collect::<Vec<_>>()
            .await?;
        for (index, etag) in results {
            etags[index] = etag;
        }
        if let Some(missing) = etags.iter().position(String::is_empty) {
            return Err(protocol(format!("the server gave no URL for part {}", missing + 1)));
        }
        let completed: Vec<Value> =
            etags.iter().enumerate().map(|(i, etag)| json!({"partNumber": i + 1, "hexMD5": etag})).collect();
        let variables = json!({
            "completeMultipartAction": "Complete", "completedParts": completed, "artifactID": artifact_id,
            "storagePath": node.get("storagePath").and_then(Value::as_str).unwrap_or(""), "uploadID": upload_id,
        });
        self.graphql("CompleteMultipartUploadArtifact", queries::COMPLETE_MULTIPART, variables).await?;
        Ok(())
    }

    /// The version with id `id`.
    pub(crate) async fn artifact_by_id(&self, id: &str) -> Result<ArtifactVersion> {
        let data = self.graphql("ArtifactByID", &queries::artifact_by_id(), json!({"id": id})).await?;
        match data.get("artifact") {
            Some(artifact) if !artifact.is_null() => version_from_fragment(artifact),
            _ => Err(Error::ArtifactIdNotFound { id: id.to_owned() }),
        }
    }
}

/// `["Key:Value", …]` as pairs.
fn upload_headers(node: &Value) -> Vec<(String, String)> {
    node.get("uploadHeaders")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter_map(|h| h.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A streaming request body of `len` bytes of `path` from `offset`, reporting progress as it goes.
fn file_body(path: &Path, offset: u64, len: u64, progress: &Arc<dyn Progress>) -> Result<reqwest::Body> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("seek in", path, e))?;
    let file = tokio::fs::File::from_std(file);
    let reader = tokio::io::AsyncReadExt::take(file, len);
    let progress = progress.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).inspect_ok(move |chunk| {
        progress.advance(chunk.len() as u64);
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// The configured part size, grown to a multiple of 4096 when the file would need more than 10,000 parts.
fn part_size(size: u64, configured: u64) -> u64 {
    let configured = configured.max(1);
    if size.div_ceil(configured) > MAX_PARTS { size.div_ceil(MAX_PARTS).div_ceil(4096) * 4096 } else { configured }
}

/// MD5 of every file to upload (the storage check), plus part MD5s for big files, hashed in parallel.
async fn plan_uploads(
    manifest: &Manifest,
    algorithm: DigestAlgorithm,
    threshold: u64,
    configured_part_size: u64,
) -> Result<Vec<Upload>> {
    let mut plans = Vec::new();
    for (name, entry) in manifest.entries() {
        let Some(local) = &entry.local_path else { continue };
        if entry.is_reference() {
            continue;
        }
        let size = entry.size.unwrap_or(0);
        plans.push(Upload {
            name: name.to_owned(),
            local: local.clone(),
            size,
            md5: if algorithm == DigestAlgorithm::Md5 { entry.digest.clone() } else { String::new() },
            digest: entry.digest.clone(),
            parts: (size > 0 && size >= threshold).then(Vec::new),
            part_size: part_size(size, configured_part_size),
        });
    }
    tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        plans.par_iter_mut().try_for_each(|plan| -> Result<()> {
            if plan.parts.is_some() {
                plan.md5 = String::new();
                plan.parts = Some(part_md5s(&plan.local, plan.size, plan.part_size)?);
            } else if plan.md5.is_empty() {
                let mut file = std::fs::File::open(&plan.local).map_err(|e| Error::io("open", &plan.local, e))?;
                plan.md5 = artifact_core::digest_reader_b64(DigestAlgorithm::Md5, &mut file)
                    .map_err(|e| Error::io("read", &plan.local, e))?
                    .0;
            }
            Ok(())
        })?;
        Ok(plans)
    })
    .await
    .map_err(|e| Error::Protocol { operation: "hashing".to_owned(), reason: e.to_string() })?
}

fn part_md5s(path: &Path, size: u64, part: u64) -> Result<Vec<String>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hexes = Vec::new();
    let mut offset = 0;
    while offset < size {
        let len = part.min(size - offset);
        let mut take = (&mut file).take(len);
        let (b64, read) = artifact_core::digest_reader_b64(DigestAlgorithm::Md5, &mut take)
            .map_err(|e| Error::io("read", path, e))?;
        if read != len {
            return Err(Error::io("read", path, std::io::Error::other("the file shrank while it was hashed")));
        }
        hexes.push(artifact_core::b64_to_hex(&b64)?);
        offset += len;
    }
    Ok(hexes)
}

async fn hash_files(paths: Vec<PathBuf>) -> Result<Vec<String>> {
    tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        paths
            .par_iter()
            .map(|path| {
                let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
                Ok(artifact_core::digest_reader_b64(DigestAlgorithm::Md5, &mut file)
                    .map_err(|e| Error::io("read", path, e))?
                    .0)
            })
            .collect::<Result<Vec<_>>>()
    })
    .await
    .map_err(|e| Error::Protocol { operation: "hashing".to_owned(), reason: e.to_string() })?
}

/// 128 characters of `[a-z0-9]`, as the SDK's client ids.
fn random_client_id() -> String {
    std::iter::repeat_with(|| fastrand::alphanumeric().to_ascii_lowercase()).take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::part_size;

    #[test]
    fn part_sizes() {
        assert_eq!(part_size(3 << 30, 100 << 20), 100 << 20);
        let huge = (100u64 << 20) * 10_000 + 1;
        let part = part_size(huge, 100 << 20);
        assert_eq!(part % 4096, 0);
        assert!(huge.div_ceil(part) <= 10_000);
    }
}
