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
//! Downloads follow the SDK: an object recorded without a version whose ETag has changed since is looked for
//! among the key's versions (`ListObjectVersions`), and the version with the recorded ETag is downloaded; that
//! finds the bytes of objects written before the bucket's versioning was turned on and overwritten after.
//!
//! Endpoint, region and credentials come from the standard variables: `AWS_S3_ENDPOINT_URL` or
//! `AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//! (and the others `object_store` reads).

use std::io::Read;
use std::sync::Arc;

use artifact_core::{ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::{Attribute, Attributes};

use serde_json::Value;

use super::{
    AsyncRuntime, Heads, StoreCache, entries, find, open_object, recorded_version, reference_error, transfer_timeouts,
    unchecksummed,
};

/// Resolves `s3://bucket/key` references and opens them for downloads (see the module docs).
pub struct S3ReferenceResolver {
    runtime: AsyncRuntime,
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
        // Only for GetBucketVersioning and ListObjectVersions, small answers.
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("wandb-references/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Http { url: endpoint.clone().unwrap_or_default(), reason: e.to_string() })?;
        Ok(S3ReferenceResolver {
            runtime: AsyncRuntime::new(None),
            stores: StoreCache::new(),
            http,
            endpoint,
            region,
            credentials: None,
        })
    }
    /// Blocks on `handle`'s runtime instead of starting one of its own, so a process runs one runtime.
    pub fn on_runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = AsyncRuntime::new(Some(handle));
        self
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
        let body = self.bucket_request(store, bucket, "versioning", "GetBucketVersioning").await?;
        Ok(xml_field(&body, "Status").map(|status| status.trim().to_owned()))
    }

    /// The id of the version of `key` whose ETag is `etag` (`ListObjectVersions`, newest first, as the SDK
    /// looks), or `None` when no version has it.
    async fn version_with_etag(
        &self,
        store: &AmazonS3,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<String>, String> {
        let mut markers = String::new();
        // A key with more versions than this many pages is not searched further.
        for _page in 0..100 {
            let query = format!("versions&prefix={}{markers}", query_encoded(key));
            let body = self.bucket_request(store, bucket, &query, "ListObjectVersions").await?;
            let page = versions_page(&body, key, etag);
            if page.found.is_some() {
                return Ok(page.found);
            }
            let Some((next_key, next_version)) = page.next else { break };
            markers =
                format!("&key-marker={}&version-id-marker={}", query_encoded(&next_key), query_encoded(&next_version));
        }
        Ok(None)
    }

    /// A signed GET of the bucket subresource `query` (`versioning`, `versions&prefix=…`): the body.
    async fn bucket_request(
        &self,
        store: &AmazonS3,
        bucket: &str,
        query: &str,
        operation: &str,
    ) -> Result<String, String> {
        let credential = store.credentials().get_credential().await.map_err(|e| e.to_string())?;
        // Path style for a custom endpoint (what object_store uses there), virtual-hosted style on AWS.
        let url = match &self.endpoint {
            Some(endpoint) => format!("{}/{bucket}?{query}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{}.amazonaws.com/?{query}", self.region),
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
            return Err(format!("{operation} answered {status}"));
        }
        Ok(body)
    }
}

/// What one `ListObjectVersions` page says about the versions of one key.
#[derive(Debug, PartialEq)]
struct VersionsPage {
    /// The id of the first version of the key with the ETag looked for.
    found: Option<String>,
    /// The markers of the next page, when the listing goes on within the same key.
    next: Option<(String, String)>,
}

/// Reads a `ListObjectVersions` answer for the version of `key` whose ETag is `etag` (delete markers and other
/// keys under the same prefix are not versions of it).
fn versions_page(body: &str, key: &str, etag: &str) -> VersionsPage {
    let found = body.split("<Version>").skip(1).filter_map(|v| v.split_once("</Version>")).find_map(|(version, _)| {
        let field = |name: &str| xml_field(version, name).map(xml_unescaped);
        let matches =
            field("Key").as_deref() == Some(key) && field("ETag").is_some_and(|found| found.trim_matches('"') == etag);
        if matches { field("VersionId") } else { None }
    });
    let next_key = xml_field(body, "NextKeyMarker").map(xml_unescaped);
    let next_version = xml_field(body, "NextVersionIdMarker").map(xml_unescaped);
    let next = match (xml_field(body, "IsTruncated"), next_key, next_version) {
        (Some("true"), Some(next_key), Some(next_version)) if next_key == key => Some((next_key, next_version)),
        _ => None,
    };
    VersionsPage { found, next }
}

/// The text of the first `<name>` element of `xml` (S3's answers are flat enough for this).
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = xml.split_once(&format!("<{name}>"))?;
    Some(rest.split_once(&format!("</{name}>"))?.0)
}

/// XML text with its entities replaced (S3 writes ETags as `&quot;…&quot;`).
fn xml_unescaped(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `value` percent-encoded for a query string as SigV4 canonicalises it (RFC 3986 unreserved kept).
fn query_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
        let runtime = self.runtime.handle().map_err(fail)?;
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
        let runtime = self.runtime.handle().map_err(failed)?;
        let key = split.path.trim_start_matches('/');
        match open_object(&runtime, store.clone(), key, path, entry) {
            // As the SDK: the recorded ETag may still be one of the key's versions (the object was written
            // before versioning was turned on, and overwritten since).
            Err(changed @ crate::Error::ReferenceChanged { .. })
                if recorded_version(entry).is_none() && !unchecksummed(entry) =>
            {
                let found = runtime.block_on(self.version_with_etag(&store, split.netloc, key, &entry.digest));
                match found {
                    Ok(Some(version)) => {
                        tracing::info!(path, reference, version, "downloading the version with the recorded ETag");
                        let mut pinned = entry.clone();
                        pinned.extra.insert("versionID".to_owned(), Value::String(version));
                        open_object(&runtime, store, key, path, &pinned)
                    }
                    Ok(None) => Err(changed),
                    Err(reason) => {
                        tracing::debug!(path, reason, "cannot list the object's versions");
                        Err(changed)
                    }
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_object_versions_answers_are_read() {
        let page = |truncated: &str, next_key: &str| {
            format!(
                "<ListVersionsResult><Prefix>a&amp;b.txt</Prefix><IsTruncated>{truncated}</IsTruncated>\
                 <NextKeyMarker>{next_key}</NextKeyMarker><NextVersionIdMarker>v0</NextVersionIdMarker>\
                 <Version><Key>a&amp;b.txt</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>\
                 <ETag>&quot;new&quot;</ETag></Version>\
                 <DeleteMarker><Key>a&amp;b.txt</Key><VersionId>d1</VersionId></DeleteMarker>\
                 <Version><Key>a&amp;b.txt</Key><VersionId>null</VersionId><ETag>&#34;old&#34;</ETag></Version>\
                 <Version><Key>a&amp;b.txt.bak</Key><VersionId>other</VersionId><ETag>&quot;bak&quot;</ETag></Version>\
                 </ListVersionsResult>"
            )
        };
        let done = page("false", "");
        assert_eq!(versions_page(&done, "a&b.txt", "old"), VersionsPage { found: Some("null".into()), next: None });
        assert_eq!(versions_page(&done, "a&b.txt", "new").found.as_deref(), Some("v2"));
        // Another key under the same prefix is not a version of this one.
        assert_eq!(versions_page(&done, "a&b.txt", "bak"), VersionsPage { found: None, next: None });
        let more = page("true", "a&amp;b.txt");
        assert_eq!(versions_page(&more, "a&b.txt", "gone").next, Some(("a&b.txt".into(), "v0".into())));
        // Past this key, its versions are all listed.
        let past = page("true", "a&amp;b.txt.bak");
        assert_eq!(versions_page(&past, "a&b.txt", "gone").next, None);
        assert_eq!(xml_unescaped("&#x41;&bogus;&"), "A&bogus;&");
    }

    #[test]
    fn query_values_are_encoded_as_sigv4_canonicalises_them() {
        assert_eq!(query_encoded("dir/a b+c~d_e-f.g"), "dir%2Fa%20b%2Bc~d_e-f.g");
        assert_eq!(query_encoded("é"), "%C3%A9");
    }
}
