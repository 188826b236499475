//! A W&B-compatible server over the [`EmbeddedStore`]: the GraphQL endpoint, upload and download URLs, and
//! what `wandb.init` and `run.finish` need, so that the real Python client (and ours) can log, use, download
//! and link artifacts against a store on this machine — in tests, in CI, or as a small team server.
//!
//! What it answers is what the real `wandb` 0.31.0 client sends (the wire captures in the project's shared
//! vectors); the real server's schema is private. Operations are dispatched by name, their variables read
//! as the client sends them, and their responses shaped as the client's fragments read them.
//!
//! Storage URLs (`/storage/...`) stand in for presigned URLs: they need no credentials. Everything else needs
//! HTTP Basic `api:<key>` when [`ServerOptions::api_key`] is set.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> wandb_server::Result<()> {
//! use wandb_store::EmbeddedStore;
//! use wandb_server::{ServerOptions, WandbServer};
//!
//! let store = EmbeddedStore::open("/srv/wandb-store")?;
//! let server = WandbServer::bind(store, "127.0.0.1:8080".parse().unwrap(), ServerOptions::default()).await?;
//! println!("WANDB_BASE_URL={}", server.base_url());
//! server.serve().await
//! # }
//! ```

mod auth;
mod authz;
mod edit;
mod error;
mod faults;
mod filters;
mod graphql;
mod launch;
mod manifest_cache;
mod memory;
mod registries;
mod runs;
mod signing;
mod storage;
mod views;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

pub use auth::{MIN_API_KEY_LEN, Users, hash_api_key};
pub use error::{Error, Result};
pub use faults::{Fault, FaultTarget, Faults};

use artifact_core::DigestAlgorithm;
use wandb_store::{EmbeddedStore, ProjectRef, VersionDraft};

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The one key clients must present (HTTP Basic `api:<key>`), for one user who may use every entity; the
    /// shorthand of [`ServerOptions::users`]. With neither, the server is open to anyone who can reach it.
    pub api_key: Option<String>,
    /// The users, their keys and the entities each may use (`--users FILE`); wins over `api_key`.
    pub users: Option<Users>,
    /// The most bytes a GraphQL request body may have (larger ones get 413 before they are read).
    pub max_graphql_bytes: usize,
    /// The entity `viewer` reports, which clients use when none is given.
    pub default_entity: String,
    /// Whether the viewer's entity allows XXH128 artifact digests (`entity.xxhashDigestsEnabled`); when false,
    /// the real client re-hashes XXH128 artifacts with MD5 before logging them.
    pub xxhash_digests_enabled: bool,
    /// The base URL the server advertises in upload and download URLs; by default `http://<bound address>`.
    /// Set it when clients reach the server through another name (a proxy, a container network).
    pub public_url: Option<String>,
    /// Keep the last [`RequestLog::CAPACITY`] requests for [`RunningServer::requests`] (tests of clients); off by
    /// default, so a long-running server keeps nothing of what it answered.
    pub record_requests: bool,
    /// The key storage URLs are signed with; by default the store's own (`<store>/server/url-signing.key`, made
    /// at first start). Replacing it invalidates every URL handed out.
    pub url_signing_key: Option<[u8; 32]>,
    /// Only the web view and downloads of the files it links: no W&B protocol, and nothing written to the store
    /// (the signing key lives in memory). `dagster-wandb ui`.
    pub web_only: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            api_key: None,
            users: None,
            max_graphql_bytes: 16 << 20,
            default_entity: wandb_store::DEFAULT_ENTITY.to_owned(),
            xxhash_digests_enabled: true,
            public_url: None,
            record_requests: false,
            url_signing_key: None,
            web_only: false,
        }
    }
}

/// A bound server, not yet serving.
pub struct WandbServer {
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
}

/// One request as the server received it, for request-level tests.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// The URL path, still percent-encoded.
    pub path: String,
    /// The GraphQL operation name, for `/graphql`.
    pub operation: Option<String>,
    /// The GraphQL variables, for `/graphql`.
    pub variables: serde_json::Value,
    /// The `Range` header, when there was one.
    pub range: Option<String>,
}

/// The last requests a server received, in order (shared, cheap to clone): empty unless
/// [`ServerOptions::record_requests`], and never more than [`RequestLog::CAPACITY`].
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    enabled: bool,
    requests: Arc<Mutex<std::collections::VecDeque<RecordedRequest>>>,
}

impl RequestLog {
    /// The most requests kept; older ones are dropped.
    pub const CAPACITY: usize = 10_000;

    /// The requests kept, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("request log lock").iter().cloned().collect()
    }

    /// Forgets what was received so far.
    pub fn clear(&self) {
        self.requests.lock().expect("request log lock").clear();
    }

    /// Whether requests are recorded at all (the recording is built only then).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn push(&self, request: RecordedRequest) {
        if !self.enabled {
            return;
        }
        let mut requests = self.requests.lock().expect("request log lock");
        if requests.len() == Self::CAPACITY {
            requests.pop_front();
        }
        requests.push_back(request);
    }
}

/// How long requests in flight may take to finish once the server is told to stop.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A server serving in the background; dropping it (or [`RunningServer::shutdown`]) stops it.
pub struct RunningServer {
    base_url: String,
    faults: Faults,
    requests: RequestLog,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) struct ServerState {
    pub(crate) store: EmbeddedStore,
    pub(crate) options: ServerOptions,
    /// Who may use the server; `None` for anyone.
    pub(crate) users: Option<Users>,
    pub(crate) base_url: String,
    /// Signs and checks storage URLs.
    pub(crate) signer: signing::UrlSigner,
    pub(crate) faults: Faults,
    pub(crate) requests: RequestLog,
    /// Artifacts created but not committed, by id. In memory: a restarted server forgets uploads in flight
    /// (their bodies stay in the store, unreferenced), as a client's retry after a failed commit starts over.
    pub(crate) pending: Mutex<HashMap<String, PendingArtifact>>,
    /// Multipart uploads in flight, by upload id.
    pub(crate) multipart: Mutex<HashMap<String, MultipartUpload>>,
    /// Distributed artifacts: the pending id of each `(project, collection, distributedID)`, and those already
    /// committed (an upsert to one is refused rather than silently lost).
    pub(crate) distributed: Mutex<DistributedArtifacts>,
    /// Run queues, their items and launch agents.
    pub(crate) launch: Mutex<launch::LaunchState>,
    /// Parsed manifests of the versions being read, by id.
    pub(crate) manifests: manifest_cache::ManifestCache,
    /// Where uploaded manifests and the parts of multipart uploads wait for their commit (see
    /// [`new_uploads_dir`]).
    pub(crate) uploads: std::path::PathBuf,
    /// Held while this server runs: a server that finds the lock of another's uploads free knows it is gone.
    pub(crate) _uploads_lock: Option<std::fs::File>,
    /// Browsers signed in to the web view.
    pub(crate) sessions: web::Sessions,
}

impl Drop for ServerState {
    fn drop(&mut self) {
        self.pending.get_mut().map(std::collections::HashMap::clear).ok();
        let _ = std::fs::remove_dir_all(&self.uploads);
    }
}

/// Drops idle parsed manifests every few seconds, for as long as the server's state lives.
fn forget_idle_manifests(state: &Arc<ServerState>) {
    let state = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(manifest_cache::IDLE / 3);
        loop {
            ticks.tick().await;
            match state.upgrade() {
                Some(state) => state.manifests.forget_idle(),
                None => return,
            }
        }
    });
}

impl ServerState {
    /// The manifest of `version` (a portfolio view reads its source's), parsed once while it is in use.
    pub(crate) fn manifest(
        &self,
        version: &wandb_store::ArtifactVersion,
    ) -> wandb_store::Result<Arc<artifact_core::Manifest>> {
        self.manifests.get_or_load(&version.id, || self.store.manifest(version))
    }
}

/// Distributed artifacts by `(entity/project, collection, distributedID)`.
#[derive(Default)]
pub(crate) struct DistributedArtifacts {
    pub(crate) pending: HashMap<(String, String, String), String>,
    pub(crate) committed: HashMap<(String, String, String), String>,
}

/// An artifact between `CreateArtifact` and `CommitArtifact`.
pub(crate) struct PendingArtifact {
    /// The user who created it: only they may upload to it, declare its files or commit it.
    pub(crate) owner: String,
    pub(crate) project: ProjectRef,
    pub(crate) draft: VersionDraft,
    /// Declared files by name: what each upload must hash to.
    pub(crate) files: HashMap<String, FileSpec>,
    /// The uploaded manifest, on disk until the commit reads it.
    pub(crate) manifest: Option<TempFile>,
    /// For a distributed artifact: its key, and each writer's PATCH manifest in creation order (`None` until
    /// uploaded), merged at commit.
    pub(crate) distributed: Option<(String, String, String)>,
    pub(crate) patches: Vec<Option<TempFile>>,
    /// When it was created: one never committed is forgotten after [`signing::UPLOAD_TTL`], its files with it.
    pub(crate) created: std::time::Instant,
}

/// The lock file in each server's uploads directory, held for as long as that server runs.
const UPLOADS_LOCK: &str = ".lock";

/// Where this server's uploaded manifests and multipart parts wait for their commit:
/// `<store>/server/uploads/<server>`, one directory per running server (several may serve one store), removed
/// when it stops, and locked while it runs. What a killed server left is removed by the next to start: any
/// directory whose lock nobody holds (or, without a lock, older than any upload URL). Returns the directory and
/// its held lock (`None` when it could not be made; uploads then fail with the error of the first write).
fn new_uploads_dir(store_root: &std::path::Path) -> (std::path::PathBuf, Option<std::fs::File>) {
    let parent = store_root.join("server").join("uploads");
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for entry in entries.flatten() {
            let abandoned = match std::fs::File::open(entry.path().join(UPLOADS_LOCK)) {
                Ok(lock) => lock.try_lock().is_ok(),
                Err(_) => {
                    let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                    age.is_some_and(|age| age > signing::UPLOAD_TTL)
                }
            };
            if abandoned {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = parent.join(format!("{:016x}", fastrand::u64(..)));
    let lock = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::File::create(dir.join(UPLOADS_LOCK)))
        .and_then(|file| file.try_lock().map(|()| file).map_err(std::io::Error::other));
    match lock {
        Ok(file) => (dir, Some(file)),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot lock this server's uploads directory");
            (dir, None)
        }
    }
}

/// A file removed when dropped (an uploaded manifest waiting for its commit; a pending artifact abandoned or
/// committed takes it with it).
#[derive(Debug)]
pub(crate) struct TempFile(pub(crate) std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl ServerState {
    /// Forgets pending artifacts older than their upload URLs, and the multipart uploads of forgotten ones.
    pub(crate) fn forget_abandoned_uploads(&self) {
        let mut pending = self.pending.lock().expect("pending lock");
        pending.retain(|_, p| p.created.elapsed() < signing::UPLOAD_TTL);
        self.multipart.lock().expect("multipart lock").retain(|_, m| pending.contains_key(&m.artifact_id));
    }
}

/// What an uploaded file must be.
#[derive(Clone, Debug)]
pub(crate) struct FileSpec {
    /// Base64 MD5 (the storage integrity check, always sent), empty for multipart files.
    pub(crate) md5: String,
    /// The entry digest the object is stored under, and its algorithm.
    pub(crate) digest: String,
    pub(crate) algorithm: DigestAlgorithm,
}

pub(crate) struct MultipartUpload {
    pub(crate) artifact_id: String,
    pub(crate) name: String,
    pub(crate) parts: usize,
    /// Where its parts are kept until completion (in this server's uploads directory).
    pub(crate) dir: std::path::PathBuf,
}

impl Drop for MultipartUpload {
    /// An upload forgotten (abandoned, or its artifact gone) takes its parts with it.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl WandbServer {
    /// Binds `addr` (port 0 picks a free one) to serve `store`.
    ///
    /// # Errors
    /// [`Error::Listen`] when the address cannot be bound.
    pub async fn bind(store: EmbeddedStore, addr: SocketAddr, options: ServerOptions) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr: addr.to_string(), source })?;
        let local = listener.local_addr().map_err(|source| Error::Listen { addr: addr.to_string(), source })?;
        let base_url = options
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local}"));
        let record_requests = options.record_requests;
        let mut options = options;
        if options.web_only && options.url_signing_key.is_none() {
            // A key of this process alone: the links it hands out die with it, and the store stays untouched.
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| {
                Error::Store(wandb_store::Error::Io {
                    action: "make a URL-signing key for",
                    path: store.root().to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                })
            })?;
            options.url_signing_key = Some(key);
        }
        let (uploads, uploads_lock) = if options.web_only {
            (store.root().join("server").join("uploads").join("web-only"), None)
        } else {
            new_uploads_dir(store.root())
        };
        let users = options
            .users
            .clone()
            .or_else(|| options.api_key.as_deref().map(|key| Users::single(key, &options.default_entity)));
        if users.is_none() && !addr.ip().is_loopback() {
            return Err(Error::OpenOnNetwork { addr: addr.to_string() });
        }
        let signer = signing::UrlSigner::load_or_create(store.root(), options.url_signing_key).map_err(|e| {
            Error::Store(wandb_store::Error::Io {
                action: "read the URL-signing key of",
                path: store.root().to_path_buf(),
                source: e,
            })
        })?;
        let state = Arc::new(ServerState {
            store,
            users,
            options,
            base_url,
            signer,
            faults: Faults::default(),
            requests: RequestLog { enabled: record_requests, ..RequestLog::default() },
            pending: Mutex::new(HashMap::new()),
            multipart: Mutex::new(HashMap::new()),
            distributed: Mutex::new(DistributedArtifacts::default()),
            launch: Mutex::new(launch::LaunchState::default()),
            manifests: manifest_cache::ManifestCache::new(),
            uploads,
            _uploads_lock: uploads_lock,
            sessions: web::Sessions::default(),
        });
        Ok(WandbServer { listener, state })
    }

    /// The URL clients use as `WANDB_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// The fault injector, for tests of clients' retries.
    pub fn faults(&self) -> Faults {
        self.state.faults.clone()
    }

    /// Serves until the process ends.
    ///
    /// # Errors
    /// [`Error::Serve`] when accepting connections fails.
    pub async fn serve(self) -> Result<()> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `signal` completes (e.g. Ctrl-C), then gives requests in flight 5 seconds to finish.
    ///
    /// # Errors
    /// [`Error::Serve`] when accepting connections fails.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
        let addr = self.state.base_url.clone();
        forget_idle_manifests(&self.state);
        let (signalled, grace_begins) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            signal.await;
            let _ = signalled.send(());
        };
        let serving = axum::serve(no_delay(self.listener), router(self.state)).with_graceful_shutdown(signal);
        // A connection a client opened but never sent a request on is held until hyper's header timeout (30 s):
        // requests in flight get a grace period, not that.
        tokio::select! {
            served = serving => served.map_err(|source| Error::Serve { addr, source }),
            () = async {
                if grace_begins.await.is_ok() {
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => Ok(()),
        }
    }

    /// Serves on the current tokio runtime in the background.
    pub fn spawn(self) -> RunningServer {
        let base_url = self.state.base_url.clone();
        let faults = self.state.faults.clone();
        let requests = self.state.requests.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = self
                .serve_until(async move {
                    let _ = rx.await;
                })
                .await;
        });
        RunningServer { base_url, faults, requests, shutdown: Some(tx), task: Some(task) }
    }
}

impl RunningServer {
    /// The URL clients use as `WANDB_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The fault injector, for tests of clients' retries.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> &RequestLog {
        &self.requests
    }

    /// Stops accepting connections and waits for requests in flight (5 seconds at most).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Bounded: a connection that never sent a request can keep hyper's graceful shutdown waiting.
            if tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Accepted connections with `TCP_NODELAY`: without it every response on a kept-alive connection waits for the
/// client's delayed ACK (about 40 ms on Linux), capping a connection at some 23 requests a second.
fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a connection: {e}");
        }
    })
}

fn router(state: Arc<ServerState>) -> Router {
    // The web view: a sign-in form, and pages at the W&B App's URL shapes for whatever is not routed otherwise.
    let web = Router::new().route("/login", get(web::login_form).post(web::login)).route("/logout", post(web::logout));
    if state.options.web_only {
        let downloads = Router::new()
            .route("/storage/objects/{algorithm}/{digest}", get(storage::download_object))
            .route_layer(middleware::from_fn_with_state(state.clone(), require_signature));
        return Router::new().merge(web).merge(downloads).fallback(any(web::fallback)).with_state(state);
    }
    let authenticated = Router::new()
        .route(
            "/graphql",
            post(graphql::handle)
                .layer(axum::extract::DefaultBodyLimit::max(state.options.max_graphql_bytes))
                .layer(middleware::from_fn_with_state(state.clone(), refuse_declared_oversize)),
        )
        .route("/files/{entity}/{project}/{run}/file_stream", post(storage::file_stream))
        .route("/artifactsV2/{*rest}", get(storage::download_v2))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    // Storage URLs stand in for presigned ones: their signature is their credential, checked before any body.
    let signed = Router::new()
        .route("/storage/upload/{artifact}/{*name}", put(storage::upload_file))
        .route("/storage/multipart/{upload}/{part}", put(storage::upload_part))
        .route("/storage/manifests/{artifact}", put(storage::upload_manifest).get(storage::download_manifest))
        .route("/storage/objects/{algorithm}/{digest}", get(storage::download_object))
        .route("/storage/runfiles/{*path}", put(storage::upload_run_file))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_signature));
    Router::new()
        .merge(authenticated)
        .merge(signed)
        .merge(web)
        .fallback(any(web::fallback))
        .layer(middleware::from_fn_with_state(state.clone(), record_storage_request))
        // Bodies stream to disk; the GraphQL and manifest handlers bound what they buffer themselves.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Records every request but GraphQL's, which the GraphQL handler records with its operation and variables.
async fn record_storage_request(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    if state.requests.enabled() && request.uri().path() != "/graphql" {
        state.requests.push(RecordedRequest {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            operation: None,
            variables: serde_json::Value::Null,
            range: request.headers().get(axum::http::header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        });
    }
    next.run(request).await
}

pub(crate) async fn not_found(request: Request) -> Response {
    let message = format!("no such endpoint: {} {}", request.method(), request.uri().path());
    (StatusCode::NOT_FOUND, message).into_response()
}

/// Refuses a GraphQL request whose `Content-Length` is over the limit from its headers alone, so the server
/// neither reads nor waits for a body it would refuse (one without a length is cut off at the limit instead).
async fn refuse_declared_oversize(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let limit = state.options.max_graphql_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("a GraphQL request may have at most {limit} bytes; this one declares {length}"),
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

/// Resolves the caller from `Authorization: Basic api:<key>` (any caller when the server has no users) and
/// hands them to the route; an unknown key is a 401 that does not echo it.
async fn require_api_key(State(state): State<Arc<ServerState>>, mut request: Request, next: Next) -> Response {
    let caller = match &state.users {
        None => Some(auth::Caller::anyone(&state.options.default_entity)),
        Some(users) => basic_api_key(request.headers()).and_then(|key| users.authenticate(&key)),
    };
    match caller {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"wandb\"")],
            Body::from("unauthorized"),
        )
            .into_response(),
    }
}

async fn require_signature(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    match state.signer.verify(request.method(), request.uri().path(), request.uri().query()) {
        Ok(()) => next.run(request).await,
        Err(reason) => signing::access_denied(reason),
    }
}

impl ServerState {
    /// The full URL of `path` (under this server, percent-encoded), signed for `method` for `ttl`.
    pub(crate) fn signed_url(&self, method: &axum::http::Method, path: &str, ttl: std::time::Duration) -> String {
        format!("{}{}", self.base_url, self.signer.sign(method, path, ttl))
    }
}

/// The key of an `Authorization: Basic base64("api:<key>")` header.
fn basic_api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    decoded.split_once(':').map(|(_, key)| key.to_owned())
}

/// Hex of an id, for use in URL paths (ids are base64 and may hold `/` and `+`).
pub(crate) fn id_token(id: &str) -> String {
    artifact_core::to_hex(id.as_bytes())
}

/// The id a token of [`id_token`] stands for.
pub(crate) fn id_from_token(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Percent-encodes a file name for a URL path, keeping `/` between segments.
pub(crate) fn encode_path(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: usize) -> RecordedRequest {
        RecordedRequest {
            method: "POST".into(),
            path: format!("/graphql/{n}"),
            operation: None,
            variables: serde_json::Value::Null,
            range: None,
        }
    }

    #[test]
    fn the_request_log_keeps_nothing_unless_enabled_and_then_only_the_latest() {
        let off = RequestLog::default();
        off.push(request(0));
        assert!(off.requests().is_empty());

        let on = RequestLog { enabled: true, ..RequestLog::default() };
        for n in 0..RequestLog::CAPACITY + 5 {
            on.push(request(n));
        }
        let kept = on.requests();
        assert_eq!(kept.len(), RequestLog::CAPACITY);
        assert_eq!(
            (kept[0].path.as_str(), kept.last().map(|r| r.path.as_str())),
            ("/graphql/5", Some("/graphql/10004"))
        );
    }
}
