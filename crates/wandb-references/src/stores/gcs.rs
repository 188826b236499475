//! `gs://bucket/key[#generation]` references, as the SDK's `GCSHandler` records them: the digest is the
//! object's JSON-API `etag` (not its MD5), `extra` is `{"versionID": <generation, an integer>}`, objects whose
//! names end in `/` are directory markers, zero-byte objects are entries, and a key that names no object is
//! read as the directory `<key>/`.
//!
//! The JSON API is spoken directly (through `reqwest`), because the digest must be the JSON API's `etag`, which
//! `object_store`'s GCS client (the XML API) does not see; `object_store` still provides the credentials
//! (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`, the metadata server, …). With
//! `STORAGE_EMULATOR_HOST` set, as for Google's own clients, requests go there without credentials.
//!
//! Downloads fetch the recorded generation; when it is gone (a bucket without versioning keeps only the
//! latest), the latest one is fetched provided its `etag` is still the digest, as the SDK does.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use artifact_core::{ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};
use futures_util::TryStreamExt;
use object_store::CredentialProvider;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::{AsyncRuntime, Found, Lookup, entries, recorded_version, reference_error, too_many, unchecksummed};

/// Google's API endpoint.
const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";

/// Characters kept as they are in an object name inside a URL path segment (RFC 3986 unreserved).
const OBJECT_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

type Credentials = Arc<dyn CredentialProvider<Credential = GcpCredential>>;

/// Resolves `gs://` references and opens them for downloads (see the module docs).
pub struct GcsReferenceResolver {
    runtime: AsyncRuntime,
    http: reqwest::Client,
    base: String,
    anonymous: bool,
    credentials: OnceLock<Result<Credentials, String>>,
}

impl std::fmt::Debug for GcsReferenceResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsReferenceResolver").field("base", &self.base).field("anonymous", &self.anonymous).finish()
    }
}

/// An object's JSON-API resource, the fields references use. Emulators send numbers where Google sends
/// strings, so both are taken.
#[derive(serde::Deserialize)]
struct Resource {
    name: String,
    #[serde(default)]
    size: Value,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    generation: Value,
}

#[derive(serde::Deserialize)]
struct Listing {
    #[serde(default)]
    items: Vec<Resource>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

fn as_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl Resource {
    fn found(self) -> Found {
        Found {
            size: as_u64(&self.size).unwrap_or(0),
            etag: self.etag,
            // The SDK records `Blob.generation`, an int.
            version: as_u64(&self.generation).map(Value::from),
            directory_marker: self.name.ends_with('/'),
            key: self.name,
        }
    }
}

impl GcsReferenceResolver {
    /// A resolver for Google Cloud Storage, or for the emulator `STORAGE_EMULATOR_HOST` names.
    ///
    /// # Errors
    /// [`crate::Error::Http`] when the HTTP client cannot be built.
    pub fn from_env() -> crate::Result<Self> {
        match std::env::var("STORAGE_EMULATOR_HOST").ok().filter(|v| !v.is_empty()) {
            Some(host) => Self::emulator(&host),
            None => Self::build(GOOGLE_STORAGE.to_owned(), false),
        }
    }
    /// Blocks on `handle`'s runtime instead of starting one of its own, so a process runs one runtime.
    pub fn on_runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = AsyncRuntime::new(Some(handle));
        self
    }

    /// A resolver talking to the emulator at `host` (`http://127.0.0.1:9023`, or `host:port`), without
    /// credentials.
    ///
    /// # Errors
    /// [`crate::Error::Http`] when the HTTP client cannot be built.
    pub fn emulator(host: &str) -> crate::Result<Self> {
        let base = if host.contains("://") { host.to_owned() } else { format!("http://{host}") };
        Self::build(base.trim_end_matches('/').to_owned(), true)
    }

    fn build(base: String, anonymous: bool) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("wandb-references/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            // Per read, not per request: a download may take as long as it needs while bytes keep coming.
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| crate::Error::Http { url: base.clone(), reason: e.to_string() })?;
        Ok(GcsReferenceResolver {
            runtime: AsyncRuntime::new(None),
            http,
            base,
            anonymous,
            credentials: OnceLock::new(),
        })
    }

    async fn authorized(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, String> {
        if self.anonymous {
            return Ok(request);
        }
        let provider = self
            .credentials
            .get_or_init(|| {
                // The bucket name only satisfies the builder: credentials are the same for every bucket.
                let store = GoogleCloudStorageBuilder::from_env().with_bucket_name("-").build();
                store.map(|s| Arc::clone(s.credentials())).map_err(|e| format!("no Google Cloud credentials: {e}"))
            })
            .clone()?;
        let credential = provider.get_credential().await.map_err(|e| e.to_string())?;
        Ok(request.bearer_auth(&credential.bearer))
    }

    fn object_url(&self, bucket: &str, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            utf8_percent_encode(bucket, OBJECT_NAME),
            utf8_percent_encode(name, OBJECT_NAME)
        )
    }

    /// The object's resource, or `None` when it (or that generation) does not exist.
    async fn resource(&self, bucket: &str, name: &str, generation: Option<&str>) -> Result<Option<Resource>, String> {
        let mut url = self.object_url(bucket, name);
        if let Some(generation) = generation {
            url = format!("{url}?generation={}", utf8_percent_encode(generation, OBJECT_NAME));
        }
        let response = self.authorized(self.http.get(url)).await?.send().await.map_err(|e| e.to_string())?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => json(response).await.map(Some),
            status => Err(format!("gs://{bucket}/{name}: Google Cloud Storage answered {status}")),
        }
    }

    /// Every object under `dir` (`images/`, or empty for the bucket), page by page, in name order.
    async fn list(&self, uri: &str, bucket: &str, dir: &str, max_objects: u64) -> Result<Vec<Found>, String> {
        let url = format!("{}/storage/v1/b/{}/o", self.base, utf8_percent_encode(bucket, OBJECT_NAME));
        let mut found = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut page_url = format!("{url}?maxResults=1000");
            if !dir.is_empty() {
                page_url = format!("{page_url}&prefix={}", utf8_percent_encode(dir, OBJECT_NAME));
            }
            if let Some(token) = &page_token {
                page_url = format!("{page_url}&pageToken={}", utf8_percent_encode(token, OBJECT_NAME));
            }
            let request = self.authorized(self.http.get(page_url)).await?;
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("listing gs://{bucket}/{dir}: Google Cloud Storage answered {status}"));
            }
            let page: Listing = json(response).await?;
            for item in page.items {
                if found.len() as u64 >= max_objects {
                    return Err(too_many(uri, max_objects));
                }
                found.push(item.found());
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(token) => page_token = Some(token),
                None => return Ok(found),
            }
        }
    }

    async fn find(
        &self,
        uri: &str,
        bucket: &str,
        key: &str,
        generation: Option<&str>,
        max_objects: u64,
    ) -> Result<Lookup, String> {
        if !key.is_empty() {
            match self.resource(bucket, key, generation).await? {
                Some(resource) if !resource.name.ends_with('/') => return Ok(Lookup::Object(resource.found())),
                Some(_) => {}
                // The SDK's message.
                None if generation.is_some() => return Err(format!("Object does not exist: {uri}")),
                None => {}
            }
        }
        let dir = if key.is_empty() { String::new() } else { format!("{}/", key.trim_end_matches('/')) };
        let objects = self.list(uri, bucket, &dir, max_objects).await?;
        Ok(Lookup::Prefix(dir, objects))
    }

    /// The resource to download for `entry`: its generation, else the latest if its etag is still the digest.
    async fn resource_to_fetch(
        &self,
        path: &str,
        entry: &ManifestEntry,
        bucket: &str,
        name: &str,
    ) -> crate::Result<Resource> {
        let reference = entry.reference.clone().unwrap_or_default();
        let http = |reason: String| crate::Error::Http { url: reference.clone(), reason };
        // Only that generation will do: a server that ignores the parameter (gcp-storage-emulator does) answers
        // with the latest, which must then pass the ETag check below.
        if let Some(generation) = recorded_version(entry)
            && let Some(resource) = self.resource(bucket, name, Some(&generation)).await.map_err(http)?
            && as_u64(&resource.generation).is_some_and(|found| found.to_string() == generation)
        {
            return Ok(resource);
        }
        let latest = self.resource(bucket, name, None).await.map_err(http)?;
        let Some(latest) = latest else {
            return Err(crate::Error::ReferenceMissing { path: path.to_owned(), reference });
        };
        if !unchecksummed(entry) && latest.etag != entry.digest {
            return Err(crate::Error::ReferenceChanged {
                path: path.to_owned(),
                reference,
                expected: entry.digest.clone(),
                found: latest.etag,
            });
        }
        Ok(latest)
    }
}

async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, String> {
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("unexpected answer from Google Cloud Storage: {e}"))
}

fn parse(uri: &str) -> Option<(&str, &str, Option<&str>)> {
    let split = SplitUri::parse(uri).filter(|s| s.scheme.eq_ignore_ascii_case("gs"))?;
    let generation = Some(split.fragment).filter(|f| !f.is_empty());
    Some((split.netloc, split.path.trim_start_matches('/'), generation))
}

impl ReferenceResolver for GcsReferenceResolver {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        uri.scheme.eq_ignore_ascii_case("gs")
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let fail = |reason: String| reference_error(uri, reason);
        let (bucket, key, generation) =
            parse(uri).ok_or_else(|| artifact_core::Error::NotAUri { uri: uri.to_owned() })?;
        let runtime = self.runtime.handle().map_err(fail)?;
        let lookup = runtime.block_on(self.find(uri, bucket, key, generation, options.max_objects())).map_err(fail)?;
        entries(&format!("gs://{bucket}"), lookup, options).map(|mut resolved| {
            // GCS entries carry the generation only, not the etag.
            for r in &mut resolved {
                r.entry.extra.remove("etag");
            }
            resolved
        })
    }
}

impl crate::ReferenceFetcher for GcsReferenceResolver {
    fn fetches(&self, uri: &SplitUri<'_>) -> bool {
        uri.scheme.eq_ignore_ascii_case("gs")
    }

    fn open_reference(&self, path: &str, entry: &ManifestEntry) -> crate::Result<Box<dyn Read + Send>> {
        let reference = entry.reference.as_deref().unwrap_or_default();
        let Some((bucket, name, _)) = parse(reference) else {
            return Err(crate::Error::UnsupportedReference { path: path.to_owned(), reference: reference.to_owned() });
        };
        let failed = |reason: String| crate::Error::Http { url: reference.to_owned(), reason };
        let runtime = self.runtime.handle().map_err(failed)?;
        let response = runtime.block_on(async {
            let resource = self.resource_to_fetch(path, entry, bucket, name).await?;
            let generation = as_u64(&resource.generation).map(|g| g.to_string()).unwrap_or_default();
            let mut url = format!("{}?alt=media", self.object_url(bucket, name));
            if !generation.is_empty() {
                url = format!("{url}&generation={generation}");
            }
            let request = self.http.get(url);
            let response =
                self.authorized(request).await.map_err(failed)?.send().await.map_err(|e| failed(e.to_string()))?;
            match response.status() {
                // Deleted between the two requests.
                reqwest::StatusCode::NOT_FOUND => {
                    Err(crate::Error::ReferenceMissing { path: path.to_owned(), reference: reference.to_owned() })
                }
                status if status.is_success() => Ok(response),
                status => Err(failed(format!("Google Cloud Storage answered {status}"))),
            }
        })?;
        let body = tokio_util::io::StreamReader::new(response.bytes_stream().map_err(std::io::Error::other));
        Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(body, runtime.clone())))
    }
}
