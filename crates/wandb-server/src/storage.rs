//! Storage URLs: file, part and manifest uploads, object and manifest downloads, run files and file_stream.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use artifact_core::{DigestAlgorithm, hex_to_b64};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde_json::json;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

use super::auth::Caller;
use super::faults::{self, Fault, FaultTarget};
use super::{FileSpec, ServerState, id_from_token};

/// Manifests are read whole; this bounds the memory one request can take.
const MAX_MANIFEST_BYTES: usize = 1 << 30;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

/// A synchronous reader over a request body, for the store's verifying insert (run on a blocking thread).
fn body_reader(body: Body) -> impl Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

/// Reads through, computing the MD5 the client declared for the storage layer.
struct Md5Reader<R> {
    inner: R,
    hasher: artifact_core::Hasher,
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn take_fault(state: &ServerState, target: FaultTarget) -> Option<Fault> {
    state.faults.take(&target)
}

/// The body back when no upload fault is due; otherwise the fault's response, after reading the body as a
/// server does before answering.
async fn unless_upload_fault(state: &ServerState, body: Body) -> std::result::Result<Body, Response> {
    state.faults.upload().await;
    match take_fault(state, FaultTarget::Upload) {
        None => Ok(body),
        Some(fault) => {
            let _ = axum::body::to_bytes(body, usize::MAX).await;
            Err(faults::respond(&fault, Bytes::from_static(b"{}")))
        }
    }
}

pub(crate) async fn upload_file(
    State(state): State<Arc<ServerState>>,
    Path((token, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match unless_upload_fault(&state, body).await {
        Ok(body) => body,
        Err(fault) => return fault,
    };
    let Some(id) = id_from_token(&token) else { return error(StatusCode::NOT_FOUND, "unknown upload URL") };
    let spec = {
        let pending = state.pending.lock().expect("pending lock");
        pending.get(&id).and_then(|a| a.files.get(&name).cloned())
    };
    let Some(spec) = spec else {
        return error(StatusCode::NOT_FOUND, format!("no file {name:?} was declared for artifact {id}"));
    };
    if let Some(declared) = headers.get("content-md5").and_then(|v| v.to_str().ok())
        && !spec.md5.is_empty()
        && declared != spec.md5
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("BadDigest: Content-MD5 {declared} is not the declared {}", spec.md5),
        );
    }
    let store_state = state.clone();
    let outcome = tokio::task::spawn_blocking(move || store_body(&store_state, &spec, body_reader(body))).await;
    match outcome {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(response)) => *response,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
    }
}

/// Stores a body under its entry digest, checking it against both the entry digest and the declared MD5.
fn store_body(state: &ServerState, spec: &FileSpec, body: impl Read) -> std::result::Result<(), Box<Response>> {
    let mut reader = Md5Reader { inner: body, hasher: DigestAlgorithm::Md5.hasher() };
    match state.store.insert_object(&spec.digest, spec.algorithm, &mut reader) {
        Ok(_) => {}
        Err(wandb_store::Error::Cache(io_cache::Error::DigestMismatch { expected, actual, .. })) => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("BadDigest: the body hashes to {actual}, not {expected}"),
            )));
        }
        Err(e) => return Err(Box::new(error(StatusCode::BAD_REQUEST, format!("upload failed: {e}")))),
    }
    let md5 = reader.hasher.finalize_b64();
    if !spec.md5.is_empty() && md5 != spec.md5 {
        // The entry digest matched (XXH128) but the storage MD5 did not: the client declared a wrong MD5.
        let _ = state.store.remove_object(&spec.digest, spec.algorithm);
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("BadDigest: the body's MD5 is {md5}, not {}", spec.md5),
        )));
    }
    Ok(())
}

/// Where the parts of multipart upload `upload` are kept: in this server's uploads directory, which a killed
/// server's successor removes (see `new_uploads_dir`).
pub(crate) fn multipart_dir(state: &ServerState, upload: &str) -> Option<PathBuf> {
    let valid = !upload.is_empty() && upload.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| state.uploads.join(format!("multipart-{upload}")))
}

pub(crate) async fn upload_part(
    State(state): State<Arc<ServerState>>,
    Path((upload, part)): Path<(String, u32)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match unless_upload_fault(&state, body).await {
        Ok(body) => body,
        Err(fault) => return fault,
    };
    let known = state.multipart.lock().expect("multipart lock").get(&upload).map(|u| u.parts);
    let (Some(parts), Some(dir)) = (known, multipart_dir(&state, &upload)) else {
        return error(StatusCode::NOT_FOUND, format!("unknown multipart upload {upload:?}"));
    };
    if part == 0 || part as usize > parts {
        return error(StatusCode::BAD_REQUEST, format!("part number {part} is outside 1..={parts}"));
    }
    let declared = headers.get("content-md5").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let outcome = tokio::task::spawn_blocking(move || -> io::Result<std::result::Result<String, String>> {
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{part}.{}", fastrand::u64(..)));
        let mut reader = Md5Reader { inner: body_reader(body), hasher: DigestAlgorithm::Md5.hasher() };
        let result = (|| {
            io::copy(&mut reader, &mut File::create(&tmp)?)?;
            let hex = std::mem::replace(&mut reader.hasher, DigestAlgorithm::Md5.hasher()).finalize_hex();
            let b64 = artifact_core::hex_to_b64(&hex).map_err(io::Error::other)?;
            if let Some(declared) = declared.filter(|d| d.trim() != b64) {
                return Ok(Err(format!("BadDigest: part {part} has MD5 {b64}, not the declared {declared}")));
            }
            // Named by its MD5, the ETag: completion finds the exact body it names, and a retried part
            // cannot be mistaken for another attempt's.
            fs::rename(&tmp, dir.join(format!("{part}-{hex}")))?;
            Ok(Ok(hex))
        })();
        if !matches!(result, Ok(Ok(_))) {
            let _ = fs::remove_file(&tmp);
        }
        result
    })
    .await;
    match outcome {
        Ok(Ok(Ok(hex))) => (StatusCode::OK, [(header::ETAG, format!("\"{hex}\""))]).into_response(),
        Ok(Ok(Err(bad_digest))) => error(StatusCode::BAD_REQUEST, bad_digest),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store part {part}: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
    }
}

/// Concatenates the parts of a multipart upload, each the body its ETag names (verified when it arrived),
/// into the store, which checks the whole file's digest on the way.
pub(crate) fn assemble_multipart(
    state: &ServerState,
    upload: &str,
    etags: &[String],
    spec: &FileSpec,
) -> std::result::Result<(), String> {
    let dir = multipart_dir(state, upload).ok_or_else(|| format!("invalid upload id {upload:?}"))?;
    let result = (|| {
        let mut readers: Vec<File> = Vec::with_capacity(etags.len());
        for (i, etag) in etags.iter().enumerate() {
            if etag.is_empty() || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("part {} was completed with ETag {etag:?}, which is no MD5", i + 1));
            }
            let path = dir.join(format!("{}-{}", i + 1, etag.to_ascii_lowercase()));
            let file = File::open(&path).map_err(|_| format!("part {} with ETag {etag} was not uploaded", i + 1))?;
            readers.push(file);
        }
        let chained =
            readers.into_iter().fold(Box::new(io::empty()) as Box<dyn Read + Send>, |acc, f| Box::new(acc.chain(f)));
        store_body(state, spec, chained).map_err(|_| format!("the assembled file does not hash to {}", spec.digest))
    })();
    let _ = fs::remove_dir_all(&dir);
    result
}

pub(crate) async fn upload_manifest(
    State(state): State<Arc<ServerState>>,
    Path(token): Path<String>,
    body: Body,
) -> Response {
    let body = match unless_upload_fault(&state, body).await {
        Ok(body) => body,
        Err(fault) => return fault,
    };
    let Some(key) = id_from_token(&token) else { return error(StatusCode::NOT_FOUND, "unknown manifest URL") };
    let (id, slot) = super::graphql::split_manifest_key(&key);
    // Which manifest it is, before a byte of the body is read.
    if let Err(missing) = manifest_slot(&state, &id, slot, |_| ()) {
        return error(StatusCode::NOT_FOUND, missing);
    }
    let dir = state.uploads.clone();
    let file = super::TempFile(dir.join(format!("manifest-{:016x}", fastrand::u64(..))));
    let path = file.0.clone();
    let written = tokio::task::spawn_blocking(move || -> io::Result<u64> {
        fs::create_dir_all(&dir)?;
        let mut out = File::create_new(&path)?;
        io::copy(&mut body_reader(body).take(MAX_MANIFEST_BYTES as u64 + 1), &mut out)
    })
    .await;
    match written {
        Ok(Ok(n)) if n > MAX_MANIFEST_BYTES as u64 => {
            error(StatusCode::PAYLOAD_TOO_LARGE, format!("a manifest may have at most {MAX_MANIFEST_BYTES} bytes"))
        }
        Ok(Ok(_)) => match manifest_slot(&state, &id, slot, |place| *place = Some(file)) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(missing) => error(StatusCode::NOT_FOUND, missing),
        },
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, format!("cannot read the manifest: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
    }
}

/// Runs `fill` on the place of manifest `slot` (the FULL one for `None`) of pending artifact `id`; why not, when
/// there is no such place.
fn manifest_slot(
    state: &ServerState,
    id: &str,
    slot: Option<usize>,
    fill: impl FnOnce(&mut Option<super::TempFile>),
) -> std::result::Result<(), String> {
    let mut pending = state.pending.lock().expect("pending lock");
    match (pending.get_mut(id), slot) {
        (Some(artifact), None) => {
            fill(&mut artifact.manifest);
            Ok(())
        }
        (Some(artifact), Some(n)) if n < artifact.patches.len() => {
            fill(&mut artifact.patches[n]);
            Ok(())
        }
        (Some(_), Some(n)) => Err(format!("artifact {id} has no patch {n}")),
        (None, _) => Err(format!("artifact {id} is not pending")),
    }
}

pub(crate) async fn download_manifest(State(state): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    let Some(id) = id_from_token(&token) else { return error(StatusCode::NOT_FOUND, "unknown manifest URL") };
    let store_state = state.clone();
    let bytes = tokio::task::spawn_blocking(move || -> wandb_store::Result<Vec<u8>> {
        let version = store_state.store.artifact_by_id(&id)?;
        Ok(store_state.manifest(&version)?.to_go_json())
    })
    .await;
    let bytes = match bytes {
        Ok(Ok(bytes)) => Bytes::from(bytes),
        Ok(Err(e)) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")),
    };
    if let Some(fault) = take_fault(&state, FaultTarget::Download) {
        return faults::respond(&fault, bytes);
    }
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

pub(crate) async fn download_object(
    State(state): State<Arc<ServerState>>,
    Path((algorithm, hex)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let algorithm = match algorithm.as_str() {
        "md5" => DigestAlgorithm::Md5,
        "xxh128" => DigestAlgorithm::Xxh128,
        _ => return error(StatusCode::NOT_FOUND, format!("unknown digest algorithm {algorithm:?}")),
    };
    serve_object(&state, &[algorithm], &hex, &headers).await
}

/// `GET /artifactsV2/<region>/<entity>/<project>/<collection>/[<id>/]<birth id>/<hex digest>/<name>`: the
/// SDK's fallback when a file has no direct URL. The body is found by its digest.
pub(crate) async fn download_v2(
    State(state): State<Arc<ServerState>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let segments: Vec<&str> = rest.split('/').collect();
    let (Some(hex), Some(birth)) = (
        segments.len().checked_sub(2).and_then(|i| segments.get(i)),
        segments.len().checked_sub(3).and_then(|i| segments.get(i)),
    ) else {
        return error(StatusCode::NOT_FOUND, "malformed artifactsV2 URL");
    };
    if caller.is_restricted() {
        // The body must be one of the birth artifact's, and that artifact one the caller may use: a digest
        // alone opens nothing.
        let (state2, birth, hex) = (state.clone(), percent_decode(birth), (*hex).to_owned());
        let allowed = tokio::task::spawn_blocking(move || body_of_artifact(&state2, &caller, &birth, &hex)).await;
        if !matches!(allowed, Ok(true)) {
            return error(StatusCode::NOT_FOUND, "no such object in an artifact you may use");
        }
    }
    serve_object(&state, &[DigestAlgorithm::Md5, DigestAlgorithm::Xxh128], hex, &headers).await
}

/// Whether the body with hex digest `hex` is a file of artifact `id` and `caller` may use its entity.
fn body_of_artifact(state: &ServerState, caller: &Caller, id: &str, hex: &str) -> bool {
    let Ok(Some(owner)) = state.store.artifact_owner(id) else { return false };
    if !caller.may_use(owner.entity()) {
        return false;
    }
    let Ok(digest) = hex_to_b64(hex) else { return false };
    let Ok(version) = state.store.artifact_by_id(id) else { return false };
    state.manifest(&version).is_ok_and(|m| m.entries().any(|(_, e)| e.digest == digest))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Bodies below this size are read right where they are opened, on the async worker, and answered whole;
/// larger ones are streamed from the blocking pool. Small-file downloads come thousands at once, and a hop to
/// the blocking pool (two thread wake-ups) costs more than opening and reading a small file: serving 10,000
/// objects of 4 KiB took 1.7 s of CPU with the hop and 0.65 s without.
const READ_INLINE_BELOW: u64 = 64 << 10;

/// The size of one read of a streamed body.
const STREAM_CHUNK: usize = 256 << 10;

/// An object opened for serving: its length and either the requested bytes or the file positioned at them.
enum Opened {
    Whole { len: u64, bytes: Vec<u8> },
    Streamed { len: u64, file: File },
}

/// Opens the first of `paths` that is a regular file, for the `range` header's bytes (all without one).
/// Why an object cannot be served.
enum Unservable {
    Missing,
    /// The body's length, for `Content-Range`.
    Unsatisfiable(u64),
    Io(io::Error),
}

fn open_for_serving(paths: &[PathBuf], range: Option<&str>) -> Result<(Opened, u64, u64), Unservable> {
    let found = paths.iter().find_map(|p| {
        let file = File::open(p).ok()?;
        let metadata = file.metadata().ok()?;
        metadata.is_file().then_some((file, metadata.len()))
    });
    let (mut file, len) = found.ok_or(Unservable::Missing)?;
    let (start, end) = match range.map(|r| parse_range(r, len)) {
        None => (0, len.saturating_sub(1)),
        Some(Some(range)) => range,
        Some(None) => return Err(Unservable::Unsatisfiable(len)),
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    io::Seek::seek(&mut file, io::SeekFrom::Start(start)).map_err(Unservable::Io)?;
    if count < READ_INLINE_BELOW {
        let mut bytes = Vec::with_capacity(count as usize);
        file.take(count).read_to_end(&mut bytes).map_err(Unservable::Io)?;
        return Ok((Opened::Whole { len, bytes }, start, end));
    }
    Ok((Opened::Streamed { len, file }, start, end))
}

async fn serve_object(state: &ServerState, algorithms: &[DigestAlgorithm], hex: &str, headers: &HeaderMap) -> Response {
    let Ok(digest) = hex_to_b64(hex) else { return error(StatusCode::NOT_FOUND, format!("not a digest: {hex:?}")) };
    let _counted = state.faults.file_download().await;
    let paths: Vec<PathBuf> = algorithms.iter().filter_map(|a| state.store.object_file(&digest, *a).ok()).collect();
    let range = headers.get(header::RANGE).map(|v| v.to_str().unwrap_or(""));
    // Opening and sizing are metadata work, done in place; so is reading a small body.
    let (opened, start, end) = match open_for_serving(&paths, range) {
        Ok(opened) => opened,
        Err(Unservable::Missing) => return error(StatusCode::NOT_FOUND, format!("no object {hex}")),
        Err(Unservable::Unsatisfiable(len)) => {
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{len}"))])
                .into_response();
        }
        Err(Unservable::Io(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let partial = headers.contains_key(header::RANGE);
    let len = match &opened {
        Opened::Whole { len, .. } | Opened::Streamed { len, .. } => *len,
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    if let Some(fault) = take_fault(state, FaultTarget::FileDownload) {
        // A fault is shown the part that would have been sent; faults only hit test-sized bodies.
        let bytes = match opened {
            Opened::Whole { bytes, .. } => bytes,
            Opened::Streamed { file, .. } => tokio::task::spawn_blocking(move || {
                let mut bytes = Vec::new();
                let _ = file.take(count).read_to_end(&mut bytes);
                bytes
            })
            .await
            .unwrap_or_default(),
        };
        let mut response = faults::respond(&fault, Bytes::from(bytes));
        if partial && response.status() == StatusCode::OK {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let range = format!("bytes {start}-{end}/{len}");
            response.headers_mut().insert(header::CONTENT_RANGE, range.parse().expect("a valid header"));
        }
        return response;
    }
    let builder = Response::builder()
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let builder = if partial {
        builder.status(StatusCode::PARTIAL_CONTENT).header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
    } else {
        builder.status(StatusCode::OK)
    };
    let body = match opened {
        Opened::Whole { bytes, .. } => Body::from(bytes),
        Opened::Streamed { file, .. } => {
            use tokio::io::AsyncReadExt;
            // Each read is a hop to the blocking pool: 256 KiB per hop, not the default 4 KiB (a 1 GiB body
            // was 262,144 hops).
            Body::from_stream(ReaderStream::with_capacity(tokio::fs::File::from_std(file).take(count), STREAM_CHUNK))
        }
    };
    builder.body(body).expect("a valid response")
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a body of `len` bytes: `None` when not satisfiable.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (s, "") => (s.parse().ok()?, len.checked_sub(1)?),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(len.checked_sub(1)?)),
    };
    (start <= end && end < len).then_some((start, end))
}

/// Run files (config, summary, requirements) are accepted and dropped: runs are not stored yet beyond their
/// artifact lineage.
pub(crate) async fn upload_run_file(Path(path): Path<String>, body: Body) -> Response {
    let mut stream = body.into_data_stream();
    let mut bytes = 0usize;
    while let Ok(Some(chunk)) = stream.try_next().await {
        bytes += chunk.len();
    }
    tracing::debug!(path, bytes, "run file received and dropped");
    StatusCode::OK.into_response()
}

/// A `file_stream` request: its streams are stored with the replace-at-offset rule, its summary replaces the
/// run's, and `complete` finishes the run with `exitcode`. Unknown keys (`uploaded`, `preempting`, older
/// cores' `dropped`) are accepted.
pub(crate) async fn file_stream(
    State(state): State<Arc<ServerState>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((entity, project, run)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if !caller.may_use(&entity) {
        return error(
            StatusCode::FORBIDDEN,
            format!("permission denied: {} may not use entity {entity:?}", caller.name),
        );
    }
    let chunk = match parse_file_stream(&body) {
        Ok(chunk) => chunk,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let stored = tokio::task::spawn_blocking(move || {
        let project = wandb_store::ProjectRef::new(&entity, &project)?;
        if let Err(wandb_store::Error::RunNotFound { .. }) = state.store.run(&project, &run) {
            // A stream for a run nobody upserted (wandb-core always upserts first): start it.
            state
                .store
                .resume_run(&project, wandb_store::RunOptions { id: Some(run.clone()), ..Default::default() })?;
        }
        // The client is elsewhere: each request is its heartbeat (an empty one is only that).
        state.store.write_client_run_stream(&project, &run, &chunk)
    })
    .await;
    match stored {
        Ok(Ok(())) => Json(json!({"exitcode": null, "limits": {}})).into_response(),
        Ok(Err(e @ wandb_store::Error::InvalidRunStream { .. })) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn parse_file_stream(body: &[u8]) -> std::result::Result<wandb_store::StreamChunk, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the file_stream body is not JSON: {e}"))?;
    let mut chunk = wandb_store::StreamChunk::default();
    if let Some(files) = value.get("files").and_then(serde_json::Value::as_object) {
        for (name, file) in files {
            let offset = file.get("offset").and_then(serde_json::Value::as_u64).unwrap_or(0);
            let content = file
                .get("content")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| format!("files.{name}.content is not a list"))?
                .iter()
                .map(|line| {
                    line.as_str().map(str::to_owned).ok_or_else(|| format!("files.{name}.content holds a non-string"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            chunk.files.insert(name.clone(), (offset, content));
        }
    }
    chunk.complete = value.get("complete").and_then(serde_json::Value::as_bool).unwrap_or(false);
    chunk.exit_code = value.get("exitcode").and_then(serde_json::Value::as_i64);
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
