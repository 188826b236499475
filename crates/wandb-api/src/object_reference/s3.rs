//! `s3://bucket/key[?versionId=…]` references, with the SDK's entries (§11 of the spec: the vectors) and
//! two S3-only bugs fixed besides the common ones:
//!
//! - zero-byte objects are entries (the SDK drops them silently, even when named directly); directory markers
//!   (`application/x-directory`, or a key ending in `/`) are not;
//! - `?versionId=` pins that version (the SDK records the latest one instead).
//!
//! The SDK HEADs every listed object for its version id. That is only needed in a bucket that has (or had)
//! versioning, which one `GetBucketVersioning` tells; elsewhere the listing gives key, size and ETag, and only
//! zero-byte objects are HEADed (their content type tells directory markers). When the bucket's versioning
//! cannot be read (no `s3:GetBucketVersioning` permission, say), every object is HEADed as the SDK does.
//!
//! Endpoint, region and credentials come from the standard variables: `AWS_S3_ENDPOINT_URL` or
//! `AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//! (and the others `object_store` reads).

use std::io::Read;
use std::sync::Arc;

use artifact_core::{ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::{Attribute, Attributes};

use super::{Heads, LazyRuntime, StoreCache, entries, find, open_object, reference_error, transfer_timeouts};

/// Resolves `s3://bucket/key` references and opens them for downloads (see the module docs).
pub struct S3ReferenceResolver {
    runtime: LazyRuntime,
    stores: StoreCache<AmazonS3>,
    http: reqwest::Client,
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
    /// [`crate::Error::Http`] when the HTTP client cannot be built.
    pub fn from_env() -> crate::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let endpoint = var("AWS_S3_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL"));
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".to_owned());
        Self::new(endpoint, region)
    }

    /// A resolver for `endpoint` (`None`: AWS) in `region`; credentials from the environment. Its runtime
    /// starts on first use.
    ///
    /// # Errors
    /// [`crate::Error::Http`] when the HTTP client cannot be built.
    pub fn new(endpoint: Option<String>, region: String) -> crate::Result<Self> {
        // Only for GetBucketVersioning, a small answer.
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("wandb-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Http { url: endpoint.clone().unwrap_or_default(), reason: e.to_string() })?;
        Ok(S3ReferenceResolver {
            runtime: LazyRuntime::new(),
            stores: StoreCache::new(),
            http,
            endpoint,
            region,
            credentials: None,
        })
    }

    /// Uses these credentials instead of the environment's (an emulator's, say).
    pub fn with_static_credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.credentials = Some((access_key_id.to_owned(), secret_access_key.to_owned()));
        self
    }

    fn bucket(&self, bucket: &str) -> Result<Arc<AmazonS3>, String> {
        self.stores.get_or_build(bucket, || self.builder(bucket).build())
    }

    fn builder(&self, bucket: &str) -> AmazonS3Builder {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&self.region);
        for (key, value) in transfer_timeouts("AWS") {
            builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some((key, secret)) = &self.credentials {
            builder = builder.with_access_key_id(key).with_secret_access_key(secret);
        }
        builder
    }

    /// Which listed objects need a HEAD: all of them unless `GetBucketVersioning` says the bucket never had
    /// versioning (no `Status`).
    async fn heads_needed(&self, store: &AmazonS3, bucket: &str) -> Heads {
        match self.versioning_status(store, bucket).await {
            Ok(None) => Heads::ZeroByteOnly,
            Ok(Some(_)) => Heads::All,
            Err(reason) => {
                tracing::debug!(bucket, reason, "cannot read the bucket's versioning; every object gets a HEAD");
                Heads::All
            }
        }
    }

    /// The bucket's versioning `Status` (`Enabled`, `Suspended`), or `None` when it never had versioning.
    async fn versioning_status(&self, store: &AmazonS3, bucket: &str) -> Result<Option<String>, String> {
        let credential = store.credentials().get_credential().await.map_err(|e| e.to_string())?;
        // Path style for a custom endpoint (what object_store uses there), virtual-hosted style on AWS.
        let url = match &self.endpoint {
            Some(endpoint) => format!("{}/{bucket}?versioning", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/?versioning", self.region),
        };
        let mut request = http::Request::builder()
            .method("GET")
            .uri(&url)
            .body(object_store::client::HttpRequestBody::empty())
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| e.to_string())?;
        let mut forwarded = self.http.get(&url);
        for (name, value) in request.headers() {
            forwarded = forwarded.header(name.as_str(), value.as_bytes());
        }
        let response = forwarded.send().await.map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("GetBucketVersioning answered {status}"));
        }
        Ok(body
            .split_once("<Status>")
            .and_then(|(_, rest)| rest.split_once("</Status>"))
            .map(|(status, _)| status.trim().to_owned()))
    }
}

/// S3 directory markers: the console's `application/x-directory` objects, and keys ending in `/`.
fn is_marker(key: &str, attributes: &Attributes) -> bool {
    let content_type = attributes.get(&Attribute::ContentType).map(|v| v.to_string()).unwrap_or_default();
    content_type.contains("x-directory") || key.ends_with('/')
}

impl ReferenceResolver for S3ReferenceResolver {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        uri.scheme.eq_ignore_ascii_case("s3")
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let split = SplitUri::parse(uri).ok_or_else(|| artifact_core::Error::NotAUri { uri: uri.to_owned() })?;
        let bucket = split.netloc.to_owned();
        let key = split.path.trim_start_matches('/').to_owned();
        let version = split
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("versionId="))
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let fail = |reason: String| reference_error(uri, reason);
        let store = self.bucket(&bucket).map_err(fail)?;
        let runtime = self.runtime.get().map_err(fail)?;
        let lookup = runtime
            .block_on(find(
                store.as_ref(),
                uri,
                &key,
                version,
                options.max_objects(),
                is_marker,
                self.heads_needed(&store, &bucket),
            ))
            .map_err(fail)?;
        entries(&format!("s3://{bucket}"), lookup, options)
    }
}

impl crate::ReferenceFetcher for S3ReferenceResolver {
    fn fetches(&self, uri: &SplitUri<'_>) -> bool {
        uri.scheme.eq_ignore_ascii_case("s3")
    }

    fn open_reference(&self, path: &str, entry: &ManifestEntry) -> crate::Result<Box<dyn Read + Send>> {
        let reference = entry.reference.as_deref().unwrap_or_default();
        let split = SplitUri::parse(reference).ok_or_else(|| crate::Error::UnsupportedReference {
            path: path.to_owned(),
            reference: reference.to_owned(),
        })?;
        let failed = |reason: String| crate::Error::Http { url: reference.to_owned(), reason };
        let store = self.bucket(split.netloc).map_err(failed)?;
        let runtime = self.runtime.get().map_err(failed)?;
        open_object(runtime, store, split.path.trim_start_matches('/'), path, entry)
    }
}
