//! `gs://` and Azure blob references at the HTTP level, against in-process fakes of the two services: the
//! exact entries the resolvers record, and what downloads fetch, verify, cache and refuse.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use artifact_core::{Artifact, ManifestEntry, ReferenceOptions, ReferenceResolver, md5_b64};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use io_cache::ContentCache;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use wandb_api::{DownloadOptions, DownloadReport, ReferenceFetcher, download};
use wandb_references::{AzureReferenceResolver, Error, GcsReferenceResolver};

use crate::support::Fixture;

// ---------------------------------------------------------------------------------------------------------------
// The fakes: one bucket (or container) each, on loopback, changed by the tests between requests.

/// Objects per page in both fakes' listings, so every listing of more than two objects is paged.
const PAGE: usize = 2;

/// Every timestamp the fakes report.
const LAST_MODIFIED: &str = "Wed, 01 May 2024 12:00:00 GMT";

/// One stored version of an object. `serial` is unique within a fake and grows with every write; the
/// generation, version id and ETag derive from it, so all three change with every write.
#[derive(Clone)]
struct Version {
    serial: u64,
    bytes: Vec<u8>,
    /// User metadata (`hdi_isfolder` on Azure's directory stubs).
    metadata: Vec<(String, String)>,
}

/// An object's versions, oldest first; the last is the live one unless the object was deleted.
#[derive(Default)]
struct Versions {
    all: Vec<Version>,
    live: bool,
}

/// A bucket or container. Unversioned, a write or a delete drops the previous version; versioned, it is kept
/// (no longer listed, but still readable by its generation or version id), as with GCS object versioning and
/// Azure blob versioning.
struct Bucket {
    name: String,
    versioned: bool,
    serial: u64,
    objects: BTreeMap<String, Versions>,
}

impl Bucket {
    fn live(&self, name: &str) -> Option<&Version> {
        self.objects.get(name).filter(|o| o.live).and_then(|o| o.all.last())
    }

    /// The version of `name` whose serial satisfies `is` (a generation or version id compared).
    fn version(&self, name: &str, is: impl Fn(u64) -> bool) -> Option<&Version> {
        self.objects.get(name)?.all.iter().find(|v| is(v.serial))
    }

    /// The live objects under `prefix` whose names sort after `after`, in name order.
    fn listing<'a>(&'a self, prefix: &'a str, after: &'a str) -> impl Iterator<Item = (&'a str, &'a Version)> {
        self.objects
            .iter()
            .filter(move |(name, o)| o.live && name.as_str() > after && name.starts_with(prefix))
            .filter_map(|(name, o)| Some((name.as_str(), o.all.last()?)))
    }
}

/// A request as a fake received it.
#[derive(Clone, Debug)]
struct Request {
    method: Method,
    /// Still percent-encoded.
    path: String,
    /// Decoded.
    query: BTreeMap<String, String>,
    if_match: Option<String>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

struct Shared {
    bucket: Mutex<Bucket>,
    requests: Mutex<Vec<Request>>,
}

impl Shared {
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Request {
        let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        let query = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request = Request { method: method.clone(), path: uri.path().to_owned(), query, if_match };
        self.requests.lock().unwrap().push(request.clone());
        request
    }
}

#[derive(Clone, Copy)]
enum Service {
    Gcs,
    Azure,
}

/// A running fake service holding one bucket (or container), and the requests it received.
struct Fake {
    url: String,
    shared: Arc<Shared>,
}

impl Fake {
    /// Serves the bucket `name` on `127.0.0.1:<any port>`, from its own thread and runtime.
    fn start(service: Service, name: &str, versioned: bool) -> Fake {
        let bucket = Bucket { name: name.to_owned(), versioned, serial: 0, objects: BTreeMap::new() };
        let shared = Arc::new(Shared { bucket: Mutex::new(bucket), requests: Mutex::new(Vec::new()) });
        let router = match service {
            Service::Gcs => Router::new().fallback(gcs),
            Service::Azure => Router::new().fallback(azure),
        }
        .with_state(Arc::clone(&shared));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, router).await.unwrap();
            });
        });
        Fake { url, shared }
    }

    /// Writes (or overwrites) the object `name`; returns the new version's serial.
    fn put(&self, name: &str, bytes: &[u8]) -> u64 {
        self.put_with(name, bytes, Vec::new())
    }

    /// Writes an Azure directory stub: an empty blob with the metadata `hdi_isfolder=true`.
    fn put_stub(&self, name: &str) -> u64 {
        self.put_with(name, b"", vec![("hdi_isfolder".to_owned(), "true".to_owned())])
    }

    fn put_with(&self, name: &str, bytes: &[u8], metadata: Vec<(String, String)>) -> u64 {
        let mut bucket = self.shared.bucket.lock().unwrap();
        bucket.serial += 1;
        let serial = bucket.serial;
        let versioned = bucket.versioned;
        let object = bucket.objects.entry(name.to_owned()).or_default();
        if !versioned {
            object.all.clear();
        }
        object.all.push(Version { serial, bytes: bytes.to_vec(), metadata });
        object.live = true;
        serial
    }

    fn delete(&self, name: &str) {
        let mut bucket = self.shared.bucket.lock().unwrap();
        if bucket.versioned {
            bucket.objects.get_mut(name).expect("deleting an object that exists").live = false;
        } else {
            bucket.objects.remove(name).expect("deleting an object that exists");
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }
}

fn decode_path(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Where a listing resumes: both services' page tokens are opaque; the fakes' are the base64 of the last name
/// returned.
fn resume_after(token: Option<&str>) -> Option<String> {
    match token {
        None => Some(String::new()),
        Some(token) => BASE64.decode(token).ok().and_then(|name| String::from_utf8(name).ok()),
    }
}

/// Up to `PAGE` (or fewer, when asked) of the live objects under `prefix` after `after`, and the next page's
/// token when there are more.
fn page<'a>(
    bucket: &'a Bucket,
    prefix: &'a str,
    after: &'a str,
    max: Option<&str>,
) -> (Vec<(&'a str, &'a Version)>, Option<String>) {
    let max = max.and_then(|m| m.parse().ok()).map_or(PAGE, |m: usize| m.min(PAGE));
    let mut objects: Vec<_> = bucket.listing(prefix, after).take(max + 1).collect();
    let more = objects.len() > max;
    objects.truncate(max);
    let token = more.then(|| BASE64.encode(objects.last().expect("a full page").0));
    (objects, token)
}

// ---------------------------------------------------------------------------------------------------------------
// Google Cloud Storage, JSON API (https://cloud.google.com/storage/docs/json_api/v1/objects).

/// Generations are microsecond timestamps, like Google's.
fn gcs_generation(serial: u64) -> u64 {
    1_714_564_800_000_000 + serial
}

/// An object's JSON-API `etag`: as Google's, the base64 of a small protobuf message holding the generation and
/// the metageneration (always 1 here); `CKih16GjycICEAE=` is generation 1418688703353000, metageneration 1.
fn gcs_etag(serial: u64) -> String {
    let mut message = vec![0x08];
    let mut generation = gcs_generation(serial);
    while generation >= 0x80 {
        message.push((generation as u8 & 0x7f) | 0x80);
        generation >>= 7;
    }
    message.extend([generation as u8, 0x10, 0x01]);
    BASE64.encode(message)
}

/// Emulates the JSON API's `objects.get` (`/storage/v1/b/{bucket}/o/{name}`, the resource or, with
/// `alt=media`, the bytes; `generation` selects one) and `objects.list` (`/storage/v1/b/{bucket}/o`, live
/// objects only, in name order, paged, filtered by `prefix`).
async fn gcs(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let request = shared.record(&method, &uri, &headers);
    let bucket = shared.bucket.lock().unwrap();
    let Some((bucket_name, objects)) = uri.path().strip_prefix("/storage/v1/b/").and_then(|p| p.split_once("/o"))
    else {
        return gcs_error(StatusCode::NOT_FOUND, "Not Found");
    };
    if method != Method::GET {
        return gcs_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    if decode_path(bucket_name) != bucket.name {
        return gcs_error(StatusCode::NOT_FOUND, "The specified bucket does not exist.");
    }
    match objects.strip_prefix('/') {
        None if objects.is_empty() => gcs_list(&bucket, &request),
        None => gcs_error(StatusCode::NOT_FOUND, "Not Found"),
        Some(name) => gcs_object(&bucket, &decode_path(name), &request),
    }
}

fn gcs_object(bucket: &Bucket, name: &str, request: &Request) -> Response {
    let version = match request.param("generation") {
        None => bucket.live(name),
        Some(generation) => match generation.parse::<u64>() {
            Ok(generation) => bucket.version(name, |serial| gcs_generation(serial) == generation),
            Err(_) => return gcs_error(StatusCode::BAD_REQUEST, "Invalid argument."),
        },
    };
    let Some(version) = version else {
        return gcs_error(StatusCode::NOT_FOUND, &format!("No such object: {}/{name}", bucket.name));
    };
    if request.param("alt") != Some("media") {
        return Json(gcs_resource(&bucket.name, name, version)).into_response();
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, version.bytes.len())
        .header("x-goog-generation", gcs_generation(version.serial))
        .header("x-goog-metageneration", 1)
        .header("x-goog-stored-content-length", version.bytes.len())
        .header("x-goog-hash", format!("md5={}", md5_b64(&version.bytes)))
        .body(Body::from(version.bytes.clone()))
        .unwrap()
}

fn gcs_list(bucket: &Bucket, request: &Request) -> Response {
    let prefix = request.param("prefix").unwrap_or_default();
    let Some(after) = resume_after(request.param("pageToken")) else {
        return gcs_error(StatusCode::BAD_REQUEST, "Invalid pageToken.");
    };
    let (objects, next) = page(bucket, prefix, &after, request.param("maxResults"));
    let mut listing = json!({"kind": "storage#objects"});
    if !objects.is_empty() {
        let items = objects.iter().map(|(name, version)| gcs_resource(&bucket.name, name, version)).collect();
        listing["items"] = Value::Array(items);
    }
    if let Some(next) = next {
        listing["nextPageToken"] = Value::String(next);
    }
    Json(listing).into_response()
}

/// An object resource as Google sends it: 64-bit numbers as strings.
fn gcs_resource(bucket: &str, name: &str, version: &Version) -> Value {
    let generation = gcs_generation(version.serial);
    json!({
        "kind": "storage#object",
        "id": format!("{bucket}/{name}/{generation}"),
        "name": name,
        "bucket": bucket,
        "generation": generation.to_string(),
        "metageneration": "1",
        "contentType": "application/octet-stream",
        "storageClass": "STANDARD",
        "size": version.bytes.len().to_string(),
        "md5Hash": md5_b64(&version.bytes),
        "etag": gcs_etag(version.serial),
        "timeCreated": "2024-05-01T12:00:00.000Z",
        "updated": "2024-05-01T12:00:00.000Z",
    })
}

fn gcs_error(status: StatusCode, message: &str) -> Response {
    let reason = if status == StatusCode::NOT_FOUND { "notFound" } else { "invalid" };
    let error = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
    }});
    (status, Json(error)).into_response()
}

// ---------------------------------------------------------------------------------------------------------------
// Azure Blob Storage REST API (https://learn.microsoft.com/rest/api/storageservices/blob-service-rest-api), as
// object_store calls it with a custom endpoint: `{endpoint}/{container}/{blob}`.

/// Any valid base64: the fake does not check signatures.
const AZURE_KEY: &str = "ZmFrZS1hY2NvdW50LWtleQ==";

/// A blob's ETag, unquoted (headers quote it).
fn azure_etag(serial: u64) -> String {
    format!("0x8DC69A1B2C{serial:05X}")
}

/// Version ids are timestamps with seven fractional digits, like Azure's.
fn azure_version(serial: u64) -> String {
    format!("2024-05-01T12:00:00.{serial:07}Z")
}

fn azure_url(blob: &str) -> String {
    format!("https://acct.blob.core.windows.net/cont/{blob}")
}

/// Emulates Get Blob (GET) and Get Blob Properties (HEAD) on `/{container}/{blob}`, with `versionid` and
/// `If-Match` (by HTTP/1.1, which Azure follows and Azurite implements: a blob that does not exist fails it too,
/// 412), and List Blobs (`/{container}?restype=container&comp=list`, live blobs in name order, paged with `marker`).
async fn azure(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let request = shared.record(&method, &uri, &headers);
    let bucket = shared.bucket.lock().unwrap();
    let path = uri.path().trim_start_matches('/');
    let (container, blob) = path.split_once('/').unwrap_or((path, ""));
    if decode_path(container) != bucket.name {
        return azure_error(
            &method,
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        );
    }
    if blob.is_empty() {
        return match (&method, request.param("restype"), request.param("comp")) {
            (&Method::GET, Some("container"), Some("list")) => azure_list(&bucket, &request),
            _ => azure_error(&method, StatusCode::BAD_REQUEST, "InvalidQueryParameterValue", "Unsupported request."),
        };
    }
    if method != Method::GET && method != Method::HEAD {
        return azure_error(&method, StatusCode::METHOD_NOT_ALLOWED, "UnsupportedHttpVerb", "Unsupported verb.");
    }
    let name = decode_path(blob);
    let version = match request.param("versionid") {
        None => bucket.live(&name),
        Some(id) => bucket.version(&name, |serial| azure_version(serial) == id),
    };
    if let Some(if_match) = &request.if_match {
        let matches = version.is_some_and(|v| {
            if_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_matches('"') == azure_etag(v.serial))
        });
        if !matches {
            let message = "The condition specified using HTTP conditional header(s) is not met.";
            return azure_error(&method, StatusCode::PRECONDITION_FAILED, "ConditionNotMet", message);
        }
    }
    let Some(version) = version else {
        return azure_error(&method, StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.");
    };
    let mut response = Response::builder()
        .header(header::CONTENT_LENGTH, version.bytes.len())
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ETAG, format!("\"{}\"", azure_etag(version.serial)))
        .header(header::LAST_MODIFIED, LAST_MODIFIED)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("x-ms-creation-time", LAST_MODIFIED)
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-server-encrypted", "true")
        .header("x-ms-version", "2021-08-06");
    if bucket.versioned {
        response = response.header("x-ms-version-id", azure_version(version.serial));
        if bucket.live(&name).is_some_and(|live| live.serial == version.serial) {
            response = response.header("x-ms-is-current-version", "true");
        }
    }
    for (key, value) in &version.metadata {
        response = response.header(format!("x-ms-meta-{key}"), value);
    }
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(version.bytes.clone()) };
    response.body(body).unwrap()
}

fn azure_list(bucket: &Bucket, request: &Request) -> Response {
    let prefix = request.param("prefix").unwrap_or_default();
    let Some(after) = resume_after(request.param("marker")) else {
        return azure_error(&Method::GET, StatusCode::BAD_REQUEST, "OutOfRangeInput", "Invalid marker.");
    };
    let (objects, next) = page(bucket, prefix, &after, request.param("maxresults"));
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"https://acct.blob.core.windows.net/\" ContainerName=\"{}\">",
        escape(&bucket.name)
    );
    for (element, value) in [("Prefix", request.param("prefix")), ("Marker", request.param("marker"))] {
        if let Some(value) = value {
            xml.push_str(&format!("<{element}>{}</{element}>", escape(value)));
        }
    }
    xml.push_str("<Blobs>");
    for (name, version) in objects {
        xml.push_str(&format!("<Blob><Name>{}</Name>", escape(name)));
        if bucket.versioned {
            xml.push_str(&format!(
                "<VersionId>{}</VersionId><IsCurrentVersion>true</IsCurrentVersion>",
                azure_version(version.serial)
            ));
        }
        xml.push_str(&format!(
            "<Properties><Creation-Time>{LAST_MODIFIED}</Creation-Time><Last-Modified>{LAST_MODIFIED}</Last-Modified>\
             <Etag>{}</Etag><Content-Length>{}</Content-Length><Content-Type>application/octet-stream</Content-Type>\
             <BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred>\
             <LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted>\
             </Properties><OrMetadata /></Blob>",
            azure_etag(version.serial),
            version.bytes.len()
        ));
    }
    xml.push_str("</Blobs>");
    match next {
        Some(next) => xml.push_str(&format!("<NextMarker>{next}</NextMarker>")),
        None => xml.push_str("<NextMarker />"),
    }
    xml.push_str("</EnumerationResults>");
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

/// Azure's error answer: the code in `x-ms-error-code` and, except to HEAD, an XML body.
fn azure_error(method: &Method, status: StatusCode, code: &str, message: &str) -> Response {
    let body = if *method == Method::HEAD {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
    };
    (status, [("x-ms-error-code", code), (header::CONTENT_TYPE.as_str(), "application/xml")], body).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

fn gcs_resolver(fake: &Fake) -> Arc<GcsReferenceResolver> {
    Arc::new(GcsReferenceResolver::emulator(&fake.url).unwrap())
}

fn azure_resolver(fake: &Fake) -> Arc<AzureReferenceResolver> {
    Arc::new(AzureReferenceResolver::from_env().with_endpoint(&fake.url).with_access_key(AZURE_KEY))
}

/// A new artifact with the references added.
fn with_references(
    resolver: &dyn ReferenceResolver,
    references: &[(&str, ReferenceOptions)],
) -> artifact_core::Result<Artifact> {
    let mut artifact = Artifact::new("refs", "dataset").unwrap();
    for (uri, options) in references {
        artifact.add_reference_with(uri, options.clone(), Some(resolver))?;
    }
    Ok(artifact)
}

fn named(name: &str) -> ReferenceOptions {
    ReferenceOptions { name: Some(name.to_owned()), ..Default::default() }
}

fn entry(digest: &str, reference: &str, size: u64, extra: Value) -> ManifestEntry {
    let Value::Object(extra) = extra else { panic!("extra is an object") };
    ManifestEntry {
        digest: digest.to_owned(),
        reference: Some(reference.to_owned()),
        size: Some(size),
        extra,
        ..Default::default()
    }
}

/// The manifest's entries, in path order.
fn entries(artifact: &Artifact) -> Vec<(String, ManifestEntry)> {
    artifact.manifest().entries().map(|(path, entry)| (path.to_owned(), entry.clone())).collect()
}

fn paths(artifact: &Artifact) -> Vec<String> {
    artifact.manifest().entries().map(|(path, _)| path.to_owned()).collect()
}

/// An error and its sources, joined.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    message
}

/// Downloads `artifact` into `f/root` with `fetcher` and the content cache `f/cache`.
fn get(
    f: &Fixture,
    artifact: &Artifact,
    fetcher: Arc<dyn ReferenceFetcher>,
    root: &str,
    cache: &str,
    allow_missing_references: bool,
) -> wandb_api::Result<DownloadReport> {
    let options = DownloadOptions {
        references: Some(fetcher),
        cache: Some(ContentCache::new(f.path(cache))),
        allow_missing_references,
        ..Default::default()
    };
    download(&f.backend, artifact.manifest(), &f.path(root), &options)
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    fs::read(path).unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// GCS: adding references.

#[test]
fn gcs_single_objects_record_etag_size_and_generation() {
    let gcs = Fake::start(Service::Gcs, "b", false);
    let x = gcs.put("data/x.txt", b"hello");
    let empty = gcs.put("data/empty.bin", b"");
    let resolver = gcs_resolver(&gcs);
    let artifact = with_references(
        &*resolver,
        &[
            ("gs://b/data/x.txt", ReferenceOptions::default()),
            ("gs://b/data/x.txt", named("renamed/x.txt")),
            ("gs://b/data/empty.bin", ReferenceOptions::default()),
        ],
    )
    .unwrap();
    let x_entry = entry(&gcs_etag(x), "gs://b/data/x.txt", 5, json!({"versionID": gcs_generation(x)}));
    assert_eq!(
        entries(&artifact),
        vec![
            (
                "empty.bin".to_owned(),
                entry(&gcs_etag(empty), "gs://b/data/empty.bin", 0, json!({"versionID": gcs_generation(empty)}))
            ),
            ("renamed/x.txt".to_owned(), x_entry.clone()),
            ("x.txt".to_owned(), x_entry),
        ]
    );
    assert!(!artifact.manifest().get("x.txt").unwrap().extra.contains_key("etag"), "GCS entries carry no etag");
    let requests = gcs.requests();
    assert!(requests.iter().any(|r| r.path == "/storage/v1/b/b/o/data%2Fx.txt"), "{requests:?}");
    assert!(requests.iter().all(|r| r.path != "/storage/v1/b/b/o"), "a single object is not listed: {requests:?}");
}

#[test]
fn gcs_prefix_lists_that_directory_only_page_by_page() {
    let gcs = Fake::start(Service::Gcs, "b", false);
    let a = gcs.put("images/a.jpg", b"aaa");
    let b = gcs.put("images/sub/b.jpg", b"bb");
    let c = gcs.put("images/sub/c.jpg", b"c");
    gcs.put("images2/d.jpg", b"a sibling prefix");
    gcs.put("images.txt", b"a sibling object");
    let resolver = gcs_resolver(&gcs);
    let artifact = with_references(&*resolver, &[("gs://b/images", ReferenceOptions::default())]).unwrap();
    let expected = |serial: u64, key: &str, size: u64| {
        entry(&gcs_etag(serial), &format!("gs://b/{key}"), size, json!({"versionID": gcs_generation(serial)}))
    };
    assert_eq!(
        entries(&artifact),
        vec![
            ("a.jpg".to_owned(), expected(a, "images/a.jpg", 3)),
            ("sub/b.jpg".to_owned(), expected(b, "images/sub/b.jpg", 2)),
            ("sub/c.jpg".to_owned(), expected(c, "images/sub/c.jpg", 1)),
        ]
    );
    let renamed = with_references(&*resolver, &[("gs://b/images", named("imgs"))]).unwrap();
    assert_eq!(paths(&renamed), ["imgs/a.jpg", "imgs/sub/b.jpg", "imgs/sub/c.jpg"]);

    let listings: Vec<Request> = gcs.requests().into_iter().filter(|r| r.path == "/storage/v1/b/b/o").collect();
    assert_eq!(listings.len(), 4, "two pages per listing: {listings:?}");
    assert!(listings.iter().all(|r| r.param("prefix") == Some("images/")), "{listings:?}");
    assert_eq!(listings.iter().filter(|r| r.param("pageToken").is_some()).count(), 2, "{listings:?}");
}

#[test]
fn gcs_objects_named_like_directories_are_skipped() {
    let gcs = Fake::start(Service::Gcs, "b", false);
    gcs.put("dir/", b"");
    gcs.put("dir/sub/", b"");
    gcs.put("dir/f.txt", b"f");
    gcs.put("dir/sub/g.txt", b"g");
    let resolver = gcs_resolver(&gcs);
    for uri in ["gs://b/dir", "gs://b/dir/"] {
        let artifact = with_references(&*resolver, &[(uri, ReferenceOptions::default())]).unwrap();
        assert_eq!(paths(&artifact), ["f.txt", "sub/g.txt"], "{uri}");
    }
}

#[test]
fn gcs_generation_fragment_pins_that_generation() {
    let f = Fixture::new();
    let gcs = Fake::start(Service::Gcs, "b", true);
    let old = gcs.put("data/x.txt", b"old");
    gcs.put("data/x.txt", b"newer");
    let resolver = gcs_resolver(&gcs);
    let pinned = format!("gs://b/data/x.txt#{}", gcs_generation(old));
    let artifact = with_references(&*resolver, &[(&pinned, ReferenceOptions::default())]).unwrap();
    assert_eq!(
        entries(&artifact),
        vec![(
            "x.txt".to_owned(),
            entry(&gcs_etag(old), "gs://b/data/x.txt", 3, json!({"versionID": gcs_generation(old)}))
        )]
    );
    get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap();
    assert_eq!(read(f.path("out/x.txt")), b"old");

    let err = with_references(&*resolver, &[("gs://b/data/x.txt#1234", ReferenceOptions::default())]).unwrap_err();
    assert!(chain(&err).contains("Object does not exist"), "{}", chain(&err));
}

#[test]
fn gcs_more_objects_than_max_objects_is_an_error() {
    let gcs = Fake::start(Service::Gcs, "b", false);
    for name in ["many/1", "many/2", "many/3"] {
        gcs.put(name, b"x");
    }
    let resolver = gcs_resolver(&gcs);
    let limit = |max| ReferenceOptions { max_objects: Some(max), ..Default::default() };
    let err = with_references(&*resolver, &[("gs://b/many", limit(2))]).unwrap_err();
    assert!(chain(&err).contains("max_objects"), "{}", chain(&err));
    let artifact = with_references(&*resolver, &[("gs://b/many", limit(3))]).unwrap();
    assert_eq!(paths(&artifact), ["1", "2", "3"]);
}

#[test]
fn gcs_without_checksum_makes_no_request_and_downloads_unverified() {
    let f = Fixture::new();
    let gcs = Fake::start(Service::Gcs, "b", false);
    gcs.put("data/x.txt", b"first");
    let resolver = gcs_resolver(&gcs);
    let options = ReferenceOptions { checksum: false, ..Default::default() };
    let artifact = with_references(&*resolver, &[("gs://b/data/x.txt", options)]).unwrap();
    let uri = "gs://b/data/x.txt";
    let expected = ManifestEntry { digest: uri.to_owned(), reference: Some(uri.to_owned()), ..Default::default() };
    assert_eq!(entries(&artifact), vec![("data/x.txt".to_owned(), expected)]);
    assert!(gcs.requests().is_empty(), "{:?}", gcs.requests());

    gcs.put("data/x.txt", b"second");
    get(&f, &artifact, resolver, "out", "cache", false).unwrap();
    assert_eq!(read(f.path("out/data/x.txt")), b"second", "the object as it is now");
}

// ---------------------------------------------------------------------------------------------------------------
// GCS: downloads.

#[test]
fn gcs_download_fetches_the_recorded_generation_and_caches_it() {
    let f = Fixture::new();
    let gcs = Fake::start(Service::Gcs, "b", false);
    let x = gcs.put("data/x.txt", b"payload");
    let resolver = gcs_resolver(&gcs);
    let artifact = with_references(&*resolver, &[("gs://b/data/x.txt", ReferenceOptions::default())]).unwrap();

    let report = get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap();
    assert_eq!((report.references, report.from_cache), (1, 0));
    assert_eq!(read(f.path("out/x.txt")), b"payload");
    let cached = ContentCache::new(f.path("cache")).etag_path("gs://b/data/x.txt", &gcs_etag(x));
    assert_eq!(read(cached), b"payload");
    let generation = gcs_generation(x).to_string();
    assert!(
        gcs.requests().iter().any(|r| r.param("alt") == Some("media") && r.param("generation") == Some(&generation)),
        "{:?}",
        gcs.requests()
    );

    let before = gcs.requests().len();
    let again = get(&f, &artifact, resolver, "out2", "cache", false).unwrap();
    assert_eq!(again.from_cache, 1);
    assert_eq!(read(f.path("out2/x.txt")), b"payload");
    assert_eq!(gcs.requests().len(), before, "served from the cache without a request");
}

#[test]
fn gcs_overwritten_object_is_reference_changed() {
    let f = Fixture::new();
    let gcs = Fake::start(Service::Gcs, "b", false);
    let old = gcs.put("data/x.txt", b"old");
    let resolver = gcs_resolver(&gcs);
    let artifact = with_references(&*resolver, &[("gs://b/data/x.txt", ReferenceOptions::default())]).unwrap();
    let new = gcs.put("data/x.txt", b"new");

    let err = get(&f, &artifact, resolver, "out", "fresh-cache", false).unwrap_err();
    match err {
        wandb_api::Error::Reference(Error::ReferenceChanged { path, reference, expected, found }) => {
            assert_eq!((path.as_str(), reference.as_str()), ("x.txt", "gs://b/data/x.txt"));
            assert_eq!((expected, found), (gcs_etag(old), gcs_etag(new)));
        }
        other => panic!("expected ReferenceChanged, got {other}"),
    }
    assert!(!f.path("out/x.txt").exists(), "nothing is written");
}

#[test]
fn gcs_versioned_bucket_still_serves_the_recorded_generation() {
    let f = Fixture::new();
    let gcs = Fake::start(Service::Gcs, "b", true);
    gcs.put("data/x.txt", b"old");
    let resolver = gcs_resolver(&gcs);
    let artifact = with_references(&*resolver, &[("gs://b/data/x.txt", ReferenceOptions::default())]).unwrap();
    gcs.put("data/x.txt", b"overwritten");
    get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap();
    assert_eq!(read(f.path("out/x.txt")), b"old");

    gcs.delete("data/x.txt");
    get(&f, &artifact, resolver, "out2", "fresh-cache", false).unwrap();
    assert_eq!(read(f.path("out2/x.txt")), b"old", "a noncurrent generation outlives the live object");
}

#[test]
fn gcs_deleted_object_is_reference_missing_unless_allowed() {
    let f = Fixture::new();
    let gcs = Fake::start(Service::Gcs, "b", false);
    gcs.put("data/x.txt", b"gone soon");
    let resolver = gcs_resolver(&gcs);
    let artifact = with_references(&*resolver, &[("gs://b/data/x.txt", ReferenceOptions::default())]).unwrap();
    gcs.delete("data/x.txt");

    let err = get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap_err();
    assert!(
        matches!(&err, wandb_api::Error::Reference(Error::ReferenceMissing { path, .. }) if path == "x.txt"),
        "{err}"
    );
    let report = get(&f, &artifact, resolver, "out", "cache", true).unwrap();
    assert_eq!((report.missing_references, report.references), (1, 0));
    assert!(!f.path("out/x.txt").exists());
}

// ---------------------------------------------------------------------------------------------------------------
// Azure: adding references.

#[test]
fn azure_single_blobs_record_etag_and_version() {
    let versioned = Fake::start(Service::Azure, "cont", true);
    let plain = Fake::start(Service::Azure, "cont", false);
    let v = versioned.put("data/x.txt", b"hello");
    let p = plain.put("data/x.txt", b"hello");
    let empty = plain.put("data/empty.bin", b"");
    let url = azure_url("data/x.txt");

    let artifact = with_references(&*azure_resolver(&versioned), &[(&url, ReferenceOptions::default())]).unwrap();
    let extra = json!({"etag": azure_etag(v), "versionID": azure_version(v)});
    assert_eq!(entries(&artifact), vec![("x.txt".to_owned(), entry(&azure_etag(v), &url, 5, extra))]);

    let empty_url = azure_url("data/empty.bin");
    let artifact = with_references(
        &*azure_resolver(&plain),
        &[(&url, ReferenceOptions::default()), (&url, named("renamed.txt")), (&empty_url, ReferenceOptions::default())],
    )
    .unwrap();
    let x_entry = entry(&azure_etag(p), &url, 5, json!({"etag": azure_etag(p)}));
    assert_eq!(
        entries(&artifact),
        vec![
            ("empty.bin".to_owned(), entry(&azure_etag(empty), &empty_url, 0, json!({"etag": azure_etag(empty)}))),
            ("renamed.txt".to_owned(), x_entry.clone()),
            ("x.txt".to_owned(), x_entry),
        ]
    );
    let requests = plain.requests();
    let single = |r: &Request| {
        r.method == Method::HEAD && ["/cont/data/x.txt", "/cont/data/empty.bin"].contains(&r.path.as_str())
    };
    assert!(requests.iter().all(single), "single blobs are HEADed, not listed: {requests:?}");
}

#[test]
fn azure_prefix_lists_that_directory_only_page_by_page() {
    let azure = Fake::start(Service::Azure, "cont", false);
    let a = azure.put("images/a.jpg", b"aaa");
    let b = azure.put("images/sub/b.jpg", b"bb");
    let c = azure.put("images/sub/c.jpg", b"c");
    azure.put("images2/d.jpg", b"a sibling prefix");
    azure.put("images.txt", b"a sibling blob");
    let resolver = azure_resolver(&azure);
    let artifact = with_references(&*resolver, &[(&azure_url("images"), ReferenceOptions::default())]).unwrap();
    let expected = |serial: u64, blob: &str, size: u64| {
        entry(&azure_etag(serial), &azure_url(blob), size, json!({"etag": azure_etag(serial)}))
    };
    assert_eq!(
        entries(&artifact),
        vec![
            ("a.jpg".to_owned(), expected(a, "images/a.jpg", 3)),
            ("sub/b.jpg".to_owned(), expected(b, "images/sub/b.jpg", 2)),
            ("sub/c.jpg".to_owned(), expected(c, "images/sub/c.jpg", 1)),
        ]
    );
    let renamed = with_references(&*resolver, &[(&azure_url("images"), named("imgs"))]).unwrap();
    assert_eq!(paths(&renamed), ["imgs/a.jpg", "imgs/sub/b.jpg", "imgs/sub/c.jpg"]);

    let listings: Vec<Request> = azure.requests().into_iter().filter(|r| r.param("comp") == Some("list")).collect();
    assert_eq!(listings.len(), 4, "two pages per listing: {listings:?}");
    assert!(listings.iter().all(|r| r.path == "/cont" && r.param("prefix") == Some("images/")), "{listings:?}");
    assert_eq!(listings.iter().filter(|r| r.param("marker").is_some()).count(), 2, "{listings:?}");
}

#[test]
fn azure_directory_stubs_are_skipped_and_list_as_directories() {
    let azure = Fake::start(Service::Azure, "cont", false);
    azure.put_stub("images");
    azure.put_stub("images/sub");
    azure.put("images/a.jpg", b"aaa");
    azure.put("images/sub/b.jpg", b"bb");
    let resolver = azure_resolver(&azure);
    let artifact = with_references(&*resolver, &[(&azure_url("images"), ReferenceOptions::default())]).unwrap();
    assert_eq!(paths(&artifact), ["a.jpg", "sub/b.jpg"]);
    let artifact = with_references(&*resolver, &[(&azure_url("images/sub"), ReferenceOptions::default())]).unwrap();
    assert_eq!(paths(&artifact), ["b.jpg"]);
}

#[test]
fn azure_version_id_pins_that_version() {
    let f = Fixture::new();
    let azure = Fake::start(Service::Azure, "cont", true);
    let old = azure.put("data/x.txt", b"old");
    azure.put("data/x.txt", b"newer");
    let resolver = azure_resolver(&azure);
    let url = azure_url("data/x.txt");
    let expected = vec![(
        "x.txt".to_owned(),
        entry(&azure_etag(old), &url, 3, json!({"etag": azure_etag(old), "versionID": azure_version(old)})),
    )];
    let pinned = format!("{url}?versionId={}", azure_version(old));
    let artifact = with_references(&*resolver, &[(&pinned, ReferenceOptions::default())]).unwrap();
    assert_eq!(entries(&artifact), expected);
    // As the SDK (`parse_qsl`), a percent-encoded version id is the same version.
    let encoded = format!("{url}?versionId={}", azure_version(old).replace(':', "%3A"));
    let artifact = with_references(&*resolver, &[(&encoded, ReferenceOptions::default())]).unwrap();
    assert_eq!(entries(&artifact), expected);

    get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap();
    assert_eq!(read(f.path("out/x.txt")), b"old");

    let missing = format!("{url}?versionId=2020-01-01T00:00:00.0000000Z");
    let err = with_references(&*resolver, &[(&missing, ReferenceOptions::default())]).unwrap_err();
    assert!(chain(&err).contains("does not exist"), "{}", chain(&err));
}

#[test]
fn azure_more_blobs_than_max_objects_is_an_error() {
    let azure = Fake::start(Service::Azure, "cont", false);
    for name in ["many/1", "many/2", "many/3"] {
        azure.put(name, b"x");
    }
    let resolver = azure_resolver(&azure);
    let limit = |max| ReferenceOptions { max_objects: Some(max), ..Default::default() };
    let err = with_references(&*resolver, &[(&azure_url("many"), limit(2))]).unwrap_err();
    assert!(chain(&err).contains("max_objects"), "{}", chain(&err));
    let artifact = with_references(&*resolver, &[(&azure_url("many"), limit(3))]).unwrap();
    assert_eq!(paths(&artifact), ["1", "2", "3"]);
}

#[test]
fn azure_without_checksum_makes_no_request_and_downloads_unverified() {
    let f = Fixture::new();
    let azure = Fake::start(Service::Azure, "cont", false);
    azure.put("data/x.txt", b"first");
    let resolver = azure_resolver(&azure);
    let options = ReferenceOptions { checksum: false, ..Default::default() };
    let with_query = format!("{}?versionId=2024-05-01T12:00:00.0000001Z", azure_url("data/x.txt"));
    let artifact = with_references(&*resolver, &[(&with_query, options)]).unwrap();
    let url = azure_url("data/x.txt");
    let expected = ManifestEntry { digest: url.clone(), reference: Some(url), ..Default::default() };
    assert_eq!(entries(&artifact), vec![("data/x.txt".to_owned(), expected)]);
    assert!(azure.requests().is_empty(), "{:?}", azure.requests());

    azure.put("data/x.txt", b"second");
    get(&f, &artifact, resolver, "out", "cache", false).unwrap();
    assert_eq!(read(f.path("out/data/x.txt")), b"second", "the blob as it is now");
}

// ---------------------------------------------------------------------------------------------------------------
// Azure: downloads.

#[test]
fn azure_download_fetches_with_if_match_and_caches() {
    let f = Fixture::new();
    let azure = Fake::start(Service::Azure, "cont", false);
    let x = azure.put("data/x.txt", b"payload");
    let resolver = azure_resolver(&azure);
    let url = azure_url("data/x.txt");
    let artifact = with_references(&*resolver, &[(&url, ReferenceOptions::default())]).unwrap();

    let report = get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap();
    assert_eq!((report.references, report.from_cache), (1, 0));
    assert_eq!(read(f.path("out/x.txt")), b"payload");
    assert_eq!(read(ContentCache::new(f.path("cache")).etag_path(&url, &azure_etag(x))), b"payload");
    let quoted = format!("\"{}\"", azure_etag(x));
    assert!(
        azure.requests().iter().any(|r| r.method == Method::GET && r.if_match.as_deref() == Some(quoted.as_str())),
        "{:?}",
        azure.requests()
    );

    let before = azure.requests().len();
    let again = get(&f, &artifact, resolver, "out2", "cache", false).unwrap();
    assert_eq!(again.from_cache, 1);
    assert_eq!(read(f.path("out2/x.txt")), b"payload");
    assert_eq!(azure.requests().len(), before, "served from the cache without a request");
}

#[test]
fn azure_overwritten_blob_is_reference_changed() {
    let f = Fixture::new();
    let azure = Fake::start(Service::Azure, "cont", false);
    let old = azure.put("data/x.txt", b"old");
    let resolver = azure_resolver(&azure);
    let url = azure_url("data/x.txt");
    let artifact = with_references(&*resolver, &[(&url, ReferenceOptions::default())]).unwrap();
    let new = azure.put("data/x.txt", b"new");

    let err = get(&f, &artifact, resolver, "out", "fresh-cache", false).unwrap_err();
    match err {
        wandb_api::Error::Reference(Error::ReferenceChanged { path, reference, expected, found }) => {
            assert_eq!((path.as_str(), reference.as_str()), ("x.txt", url.as_str()));
            assert_eq!((expected, found), (azure_etag(old), azure_etag(new)));
        }
        other => panic!("expected ReferenceChanged, got {other}"),
    }
    assert!(!f.path("out/x.txt").exists(), "nothing is written");
}

#[test]
fn azure_versioned_container_still_serves_the_recorded_version() {
    let f = Fixture::new();
    let azure = Fake::start(Service::Azure, "cont", true);
    azure.put("data/x.txt", b"old");
    let resolver = azure_resolver(&azure);
    let artifact = with_references(&*resolver, &[(&azure_url("data/x.txt"), ReferenceOptions::default())]).unwrap();
    azure.put("data/x.txt", b"overwritten");
    get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap();
    assert_eq!(read(f.path("out/x.txt")), b"old");

    azure.delete("data/x.txt");
    get(&f, &artifact, resolver, "out2", "fresh-cache", false).unwrap();
    assert_eq!(read(f.path("out2/x.txt")), b"old", "a previous version outlives the current blob");
}

#[test]
fn azure_deleted_blob_is_reference_missing_unless_allowed() {
    let f = Fixture::new();
    let azure = Fake::start(Service::Azure, "cont", false);
    azure.put("data/x.txt", b"gone soon");
    let resolver = azure_resolver(&azure);
    let artifact = with_references(&*resolver, &[(&azure_url("data/x.txt"), ReferenceOptions::default())]).unwrap();
    azure.delete("data/x.txt");

    let err = get(&f, &artifact, resolver.clone(), "out", "cache", false).unwrap_err();
    assert!(
        matches!(&err, wandb_api::Error::Reference(Error::ReferenceMissing { path, .. }) if path == "x.txt"),
        "{err}"
    );
    let report = get(&f, &artifact, resolver, "out", "cache", true).unwrap();
    assert_eq!((report.missing_references, report.references), (1, 0));
    assert!(!f.path("out/x.txt").exists());
}
