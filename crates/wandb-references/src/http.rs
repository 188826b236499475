//! Checksummed `http(s)://` references.

use std::io::Read;
use std::time::Duration;

use artifact_core::{
    ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri, http_reference_entry,
};
use futures_util::TryStreamExt;

use crate::runtime::AsyncRuntime;

/// Resolves `http://` and `https://` references as the SDK's `HTTPHandler` does: one GET per reference,
/// whose `ETag` becomes the digest and `Content-Length` the size. The body is not read.
///
/// Its methods block; call them from a plain thread (or `spawn_blocking`), not from inside an async task.
#[derive(Clone, Debug)]
pub struct HttpReferenceResolver {
    /// Bounds connecting only: a download's body may take longer than any fixed timeout, so the 60 s bound
    /// is set on each resolving request instead.
    client: reqwest::Client,
    runtime: AsyncRuntime,
}

/// How long resolving one reference (a GET whose body is not read) may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(60);

impl HttpReferenceResolver {
    /// A resolver with a 60-second timeout per request (downloads bound only the connection).
    ///
    /// # Errors
    /// [`crate::Error::Http`] when the TLS backend cannot be initialised.
    pub fn new() -> crate::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("wandb-references/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Http { url: String::new(), reason: e.to_string() })?;
        Ok(HttpReferenceResolver { client, runtime: AsyncRuntime::new(None) })
    }

    /// Blocks on `handle`'s runtime instead of starting one of its own, so a process runs one runtime.
    pub fn on_runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = AsyncRuntime::new(Some(handle));
        self
    }

    fn get(&self, uri: &str, timeout: Option<Duration>) -> Result<(reqwest::Response, tokio::runtime::Handle), String> {
        let handle = self.runtime.handle()?;
        let mut request = self.client.get(uri);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        // Sent inside the runtime: reqwest starts its timers when the request is sent.
        let response = handle.block_on(async { request.send().await }).map_err(|e| e.without_url().to_string())?;
        Ok((response, handle))
    }
}

impl ReferenceResolver for HttpReferenceResolver {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        (uri.scheme.eq_ignore_ascii_case("http") || uri.scheme.eq_ignore_ascii_case("https")) && !uri.is_azure_blob()
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let failure = |reason: String| artifact_core::Error::Reference {
            uri: redact(uri),
            source: Box::new(crate::Error::Http { url: redact(uri), reason }),
        };
        let (response, _) = self.get(uri, Some(RESOLVE_TIMEOUT)).map_err(failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(failure(format!("the server answered {status}")));
        }
        let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let length = response.content_length();
        drop(response);
        Ok(vec![http_reference_entry(uri, options.name.as_deref(), etag.as_deref(), length)?])
    }
}

impl crate::ReferenceFetcher for HttpReferenceResolver {
    fn fetches(&self, uri: &SplitUri<'_>) -> bool {
        self.handles(uri)
    }

    /// A GET whose `ETag` must still be the digest (the SDK's check); a reference recorded without an ETag (its
    /// digest is its URL) is taken as it comes.
    fn open_reference(&self, path: &str, entry: &ManifestEntry) -> crate::Result<Box<dyn Read + Send>> {
        let reference = entry.reference.as_deref().unwrap_or_default();
        let failed = |reason: String| crate::Error::Http { url: redact(reference), reason };
        let (response, handle) = self.get(reference, None).map_err(failed)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(crate::Error::ReferenceMissing { path: path.to_owned(), reference: redact(reference) });
        }
        if !status.is_success() {
            return Err(failed(format!("the server answered {status}")));
        }
        if entry.digest != reference {
            let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or("");
            let etag = etag.trim_matches('"');
            if etag != entry.digest {
                return Err(crate::Error::ReferenceChanged {
                    path: path.to_owned(),
                    reference: redact(reference),
                    expected: entry.digest.clone(),
                    found: if etag.is_empty() { "no ETag".to_owned() } else { etag.to_owned() },
                });
            }
        }
        let body = tokio_util::io::StreamReader::new(response.bytes_stream().map_err(std::io::Error::other));
        Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(body, handle)))
    }
}

/// The URL without its query string, which may carry credentials (presigned URLs).
fn redact(uri: &str) -> String {
    uri.split_once('?').map_or_else(|| uri.to_owned(), |(base, _)| format!("{base}?…"))
}
