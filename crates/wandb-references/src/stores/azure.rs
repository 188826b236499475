//! Azure Blob Storage references, `https://<account>.blob.core.windows.net/<container>/<blob>[?versionId=…]`,
//! as the SDK's `AzureHandler` records them: digest and `extra.etag` = the ETag without quotes,
//! `extra.versionID` when the account keeps versions, directory stubs (`hdi_isfolder=true` metadata) skipped,
//! a blob that does not exist (or is a stub) read as the directory `<blob>/`. Besides the common fixes, a
//! container URL without a blob lists the whole container (the SDK fails to parse it).
//!
//! Credentials and options come from the `AZURE_*` variables `object_store` reads (`AZURE_STORAGE_ACCOUNT_KEY`,
//! `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`/`AZURE_TENANT_ID`, `AZURE_STORAGE_SAS_KEY`, managed identity, …);
//! `AZURE_STORAGE_ENDPOINT` sends the requests elsewhere (an emulator or a proxy) while the references keep
//! their `blob.core.windows.net` form.

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use artifact_core::{ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};
use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::{Attribute, Attributes};
use percent_encoding::percent_decode_str;

use super::{AsyncRuntime, Heads, StoreCache, entries, find, open_object, reference_error, transfer_timeouts};

/// Resolves Azure Blob Storage references and opens them for downloads (see the module docs).
pub struct AzureReferenceResolver {
    runtime: AsyncRuntime,
    stores: StoreCache<MicrosoftAzure>,
    endpoint: Option<String>,
    access_key: Option<String>,
}

impl std::fmt::Debug for AzureReferenceResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureReferenceResolver").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// The parts of an Azure blob URL.
struct BlobUrl<'a> {
    host: &'a str,
    account: &'a str,
    container: &'a str,
    blob: &'a str,
    /// Percent-decoded, as the SDK (`parse_qsl`) reads it: `2024-05-01T12%3A00…` is `2024-05-01T12:00…`.
    version: Option<Cow<'a, str>>,
}

impl<'a> BlobUrl<'a> {
    fn parse(uri: &'a str) -> Option<Self> {
        let split = SplitUri::parse(uri).filter(SplitUri::is_azure_blob)?;
        let account = split.netloc.split('.').next()?;
        let (container, blob) = split.path.trim_start_matches('/').split_once('/').unwrap_or((split.path, ""));
        let container = container.trim_start_matches('/');
        let version = split.query.split('&').find_map(|pair| pair.strip_prefix("versionId=")).filter(|v| !v.is_empty());
        let version = version.map(|v| percent_decode_str(v).decode_utf8_lossy());
        (!account.is_empty() && !container.is_empty()).then_some(BlobUrl {
            host: split.netloc,
            account,
            container,
            blob,
            version,
        })
    }
}

impl AzureReferenceResolver {
    /// A resolver configured from the environment (`AZURE_STORAGE_ENDPOINT` and the credential variables).
    pub fn from_env() -> Self {
        let endpoint = std::env::var("AZURE_STORAGE_ENDPOINT").ok().filter(|v| !v.is_empty());
        AzureReferenceResolver {
            runtime: AsyncRuntime::new(None),
            stores: StoreCache::new(),
            endpoint,
            access_key: None,
        }
    }
    /// Blocks on `handle`'s runtime instead of starting one of its own, so a process runs one runtime.
    pub fn on_runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = AsyncRuntime::new(Some(handle));
        self
    }

    /// Sends every request to `endpoint` (an emulator, say) instead of `https://<account>.blob.core.windows.net`.
    pub fn with_endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    /// Signs requests with this storage account key (base64) instead of the environment's credentials.
    pub fn with_access_key(mut self, access_key: &str) -> Self {
        self.access_key = Some(access_key.to_owned());
        self
    }

    fn container(&self, url: &BlobUrl<'_>) -> Result<Arc<MicrosoftAzure>, String> {
        self.stores.get_or_build(&format!("{}/{}", url.account, url.container), || {
            let mut builder =
                MicrosoftAzureBuilder::from_env().with_account(url.account).with_container_name(url.container);
            for (key, value) in transfer_timeouts("AZURE") {
                builder = builder.with_config(AzureConfigKey::Client(key), value);
            }
            if let Some(endpoint) = &self.endpoint {
                builder = builder.with_endpoint(endpoint.clone()).with_allow_http(endpoint.starts_with("http://"));
            }
            if let Some(key) = &self.access_key {
                builder = builder.with_access_key(key);
            }
            builder.build()
        })
    }
}

/// Azure's directory stubs (hierarchical-namespace folders, and the tools that imitate them).
fn is_marker(_key: &str, attributes: &Attributes) -> bool {
    attributes.get(&Attribute::Metadata("hdi_isfolder".into())).is_some_and(|v| v.as_ref() == "true")
}

impl ReferenceResolver for AzureReferenceResolver {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        uri.is_azure_blob()
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let fail = |reason: String| reference_error(uri, reason);
        let url = BlobUrl::parse(uri)
            .ok_or_else(|| fail("expected https://<account>.blob.core.windows.net/<container>[/<blob>]".to_owned()))?;
        let store = self.container(&url).map_err(fail)?;
        let runtime = self.runtime.handle().map_err(fail)?;
        let version = url.version.map(Cow::into_owned);
        let lookup = runtime
            .block_on(find(
                store.as_ref(),
                uri,
                url.blob,
                version,
                options.max_objects(),
                is_marker,
                std::future::ready(Heads::All),
            ))
            .map_err(fail)?;
        entries(&format!("https://{}/{}", url.host, url.container), lookup, options)
    }
}

impl crate::ReferenceFetcher for AzureReferenceResolver {
    fn fetches(&self, uri: &SplitUri<'_>) -> bool {
        uri.is_azure_blob()
    }

    fn open_reference(&self, path: &str, entry: &ManifestEntry) -> crate::Result<Box<dyn Read + Send>> {
        let reference = entry.reference.as_deref().unwrap_or_default();
        let url = BlobUrl::parse(reference).ok_or_else(|| crate::Error::UnsupportedReference {
            path: path.to_owned(),
            reference: reference.to_owned(),
        })?;
        let failed = |reason: String| crate::Error::Http { url: reference.to_owned(), reason };
        let store = self.container(&url).map_err(failed)?;
        let runtime = self.runtime.handle().map_err(failed)?;
        open_object(&runtime, store, url.blob, path, entry)
    }
}
