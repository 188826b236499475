//! Checksummed `s3://` references through the `object_store` crate, with the SDK's entries (`digest` = the
//! ETag, `extra.etag`, `extra.versionID`, paths relative to the prefix) and four of its bugs fixed:
//!
//! - a prefix without a trailing slash lists that directory only (the SDK also lists sibling prefixes such as
//!   `images2/` for `images`, then fails the whole call);
//! - zero-byte objects are entries (the SDK drops them silently, even when named directly); directory markers
//!   (`application/x-directory` or a key ending in `/`) are not;
//! - more objects than `max_objects` is an error (the SDK truncates the listing silently);
//! - `?versionId=` pins that version (the SDK records the latest one instead).
//!
//! Endpoint, region and credentials come from the standard variables: `AWS_S3_ENDPOINT_URL` or
//! `AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//! (and the others `object_store` reads).

use artifact_core::{LogicalPath, ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions, ObjectStore};
use serde_json::{Map, Value};

/// HEAD requests in flight while expanding a prefix.
const HEADS_IN_FLIGHT: usize = 16;

/// Resolves `s3://bucket/key` references (see the module docs).
pub struct S3ReferenceResolver {
    runtime: tokio::runtime::Runtime,
    endpoint: Option<String>,
    region: String,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for S3ReferenceResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ReferenceResolver").field("endpoint", &self.endpoint).field("region", &self.region).finish()
    }
}

impl S3ReferenceResolver {
    /// A resolver configured from the environment.
    ///
    /// # Errors
    /// [`crate::Error::Http`] when its runtime cannot start.
    pub fn from_env() -> crate::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let endpoint = var("AWS_S3_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL"));
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".to_owned());
        Self::new(endpoint, region)
    }

    /// A resolver for `endpoint` (`None`: AWS) in `region`; credentials from the environment.
    ///
    /// # Errors
    /// [`crate::Error::Http`] when its runtime cannot start.
    pub fn new(endpoint: Option<String>, region: String) -> crate::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Http { url: endpoint.clone().unwrap_or_default(), reason: e.to_string() })?;
        Ok(S3ReferenceResolver { runtime, endpoint, region, credentials: None })
    }

    /// Uses these credentials instead of the environment's (an emulator's, say).
    pub fn with_static_credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.credentials = Some((access_key_id.to_owned(), secret_access_key.to_owned()));
        self
    }

    fn bucket(&self, bucket: &str) -> object_store::Result<AmazonS3> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&self.region);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some((key, secret)) = &self.credentials {
            builder = builder.with_access_key_id(key).with_secret_access_key(secret);
        }
        builder.build()
    }
}

/// One object as a reference needs it.
struct Found {
    key: String,
    size: u64,
    etag: String,
    version: Option<String>,
    directory_marker: bool,
}

impl ReferenceResolver for S3ReferenceResolver {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        uri.scheme.eq_ignore_ascii_case("s3")
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let fail = |reason: String| artifact_core::Error::Reference {
            uri: uri.to_owned(),
            source: Box::new(crate::Error::Http { url: uri.to_owned(), reason }),
        };
        let split = SplitUri::parse(uri).ok_or_else(|| artifact_core::Error::NotAUri { uri: uri.to_owned() })?;
        let bucket = split.netloc.to_owned();
        let key = split.path.trim_start_matches('/').to_owned();
        let version = split
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("versionId="))
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let store = self.bucket(&bucket).map_err(|e| fail(e.to_string()))?;
        let found = self.runtime.block_on(find(&store, &key, version, options.max_objects())).map_err(fail)?;
        let (objects, prefix) = match found {
            Lookup::Object(object) => (vec![object], None),
            Lookup::Prefix(dir, objects) => (objects, Some(dir)),
        };
        let mut resolved = Vec::with_capacity(objects.len());
        for object in objects.into_iter().filter(|o| !o.directory_marker) {
            let relative = match &prefix {
                Some(dir) => object.key.strip_prefix(dir.as_str()).unwrap_or(&object.key).to_owned(),
                None => object.key.rsplit('/').next().unwrap_or(&object.key).to_owned(),
            };
            let path = match (&options.name, &prefix) {
                (Some(name), Some(_)) => format!("{}/{relative}", name.trim_end_matches('/')),
                (Some(name), None) => name.clone(),
                (None, _) => relative,
            };
            let mut extra = Map::new();
            extra.insert("etag".to_owned(), Value::String(object.etag.clone()));
            if let Some(version) = object.version.filter(|v| v != "null") {
                extra.insert("versionID".to_owned(), Value::String(version));
            }
            resolved.push(ResolvedReference {
                path: LogicalPath::new(&path)?,
                entry: ManifestEntry {
                    digest: object.etag,
                    reference: Some(format!("s3://{bucket}/{}", object.key)),
                    birth_artifact_id: None,
                    size: Some(object.size),
                    extra,
                    local_path: None,
                    skip_cache: false,
                },
            });
        }
        Ok(resolved)
    }
}

enum Lookup {
    Object(Found),
    /// The directory prefix (`images/`, or empty for a whole bucket) and its objects in key order.
    Prefix(String, Vec<Found>),
}

/// A single object when `key` names one (and is not a directory marker), else the directory under it.
async fn find(store: &AmazonS3, key: &str, version: Option<String>, max_objects: u64) -> Result<Lookup, String> {
    if !key.is_empty() && !key.ends_with('/') {
        match head(store, key, version.clone()).await {
            Ok(found) if !found.directory_marker => return Ok(Lookup::Object(found)),
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) if version.is_none() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let dir = if key.is_empty() { String::new() } else { format!("{}/", key.trim_end_matches('/')) };
    let prefix = (!dir.is_empty()).then(|| ObjectPath::from(dir.trim_end_matches('/')));
    // The listing streams into the HEADs (one per object, as the SDK does, for its version and content type),
    // a few at a time: only the entries themselves accumulate, never the whole listing.
    let found: Vec<Found> = store
        .list(prefix.as_ref())
        .enumerate()
        .map(|(index, meta)| {
            if index as u64 >= max_objects {
                return Err(format!(
                    "the prefix s3://…/{dir} holds more than max_objects = {max_objects} objects; raise max_objects or reference a narrower prefix"
                ));
            }
            meta.map(|m| m.location.to_string()).map_err(|e| e.to_string())
        })
        .map_ok(|key| async move { head(store, &key, None).await.map_err(|e| e.to_string()) })
        .try_buffered(HEADS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(Lookup::Prefix(dir, found))
}

async fn head(store: &AmazonS3, key: &str, version: Option<String>) -> object_store::Result<Found> {
    let options = GetOptions { head: true, version, ..Default::default() };
    let result = store.get_opts(&ObjectPath::from(key), options).await?;
    let content_type = result.attributes.get(&Attribute::ContentType).map(|v| v.to_string()).unwrap_or_default();
    let meta = result.meta;
    Ok(Found {
        key: key.to_owned(),
        size: meta.size,
        etag: meta.e_tag.unwrap_or_default().trim_matches('"').to_owned(),
        version: meta.version,
        directory_marker: content_type.contains("x-directory") || key.ends_with('/'),
    })
}
