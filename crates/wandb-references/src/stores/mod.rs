//! Checksummed references to objects in S3 (`s3://`), Google Cloud Storage (`gs://`) and Azure Blob Storage
//! (`https://<account>.blob.core.windows.net/<container>/…`), and the download of what they point at.
//!
//! Entries are the SDK's: the digest is the store's ETag, `extra` carries the ETag and the version, and a
//! prefix gives one entry per object with its path relative to the prefix. Where the SDK has a bug it is
//! fixed, the same way for every store (each module lists its store's):
//!
//! - a prefix without a trailing slash means that directory only (the SDK also lists sibling prefixes such as
//!   `images2/` for `images`, then fails or records wrong references);
//! - more objects than `max_objects` is an error naming the prefix (the SDK truncates the listing silently).
//!
//! Downloads ([`crate::ReferenceFetcher`]) fetch the version the entry recorded, or without one the current
//! object only if its ETag is still the digest (a conditional GET, so the check and the bytes agree), and
//! cache it under `obj/etag/…` as the SDK does. A changed object is [`crate::Error::ReferenceChanged`] (on S3,
//! after looking for the recorded ETag among the key's versions, as the SDK does), a missing one
//! [`crate::Error::ReferenceMissing`]. An entry added without a checksum (its digest is its URI)
//! is fetched as it is now, unverified.

mod azure;
mod gcs;
mod s3;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use artifact_core::{LogicalPath, ManifestEntry, ReferenceOptions, ResolvedReference};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{Attributes, GetOptions, ObjectStore, ObjectStoreExt};
use serde_json::{Map, Value};

pub(crate) use crate::runtime::AsyncRuntime;

pub use azure::AzureReferenceResolver;
pub use gcs::GcsReferenceResolver;
pub use s3::S3ReferenceResolver;

/// HEAD requests in flight while expanding a prefix.
const HEADS_IN_FLIGHT: usize = 16;

/// One client per bucket (or container), built on first use and kept, so a download of many entries reuses
/// its connections.
struct StoreCache<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T> StoreCache<T> {
    fn new() -> Self {
        StoreCache(Mutex::new(HashMap::new()))
    }

    fn get_or_build(&self, key: &str, build: impl FnOnce() -> object_store::Result<T>) -> Result<Arc<T>, String> {
        let mut stores = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(key) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(build().map_err(|e| e.to_string())?);
        stores.insert(key.to_owned(), Arc::clone(&store));
        Ok(store)
    }
}

/// object_store bounds a whole request by 30 s by default, body included, which would cut the download of any
/// big object. Bodies are bounded per read instead (a minute without a byte), unless the environment sets its
/// own (`<PREFIX>_TIMEOUT`, `<PREFIX>_READ_TIMEOUT`, as object_store reads them).
fn transfer_timeouts(env_prefix: &str) -> Vec<(object_store::ClientConfigKey, &'static str)> {
    use object_store::ClientConfigKey::{ReadTimeout, Timeout};
    let unset = |name: &str| std::env::var_os(format!("{env_prefix}_{name}")).is_none();
    let mut settings = Vec::new();
    if unset("TIMEOUT") {
        settings.push((Timeout, "7d"));
    }
    if unset("READ_TIMEOUT") {
        settings.push((ReadTimeout, "60s"));
    }
    settings
}

/// One object as a reference needs it.
struct Found {
    key: String,
    size: u64,
    etag: String,
    /// The version id (S3, Azure) or generation (GCS), as the store's entry records it.
    version: Option<Value>,
    directory_marker: bool,
}

enum Lookup {
    Object(Found),
    /// The directory prefix (`images/`, or empty for a whole bucket) and its objects in key order.
    Prefix(String, Vec<Found>),
}

/// Tells directory markers apart, from an object's key and attributes.
type MarkerRule = fn(&str, &Attributes) -> bool;

/// Which listed objects need a HEAD of their own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Heads {
    /// Every one: the listing lacks the version id (and, on Azure, the metadata telling stubs).
    All,
    /// Only zero-byte objects, whose content type tells directory markers: in a bucket that never had
    /// versioning the listing says everything else (key, size, ETag).
    ZeroByteOnly,
}

/// The entries for what `lookup` found, with references under `base` (`s3://bucket`, `https://acct…/container`).
fn entries(base: &str, lookup: Lookup, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
    let (objects, prefix) = match lookup {
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
        // Sized exactly: a map grown by insertion reserves room for three fields, about 200 bytes an entry
        // more on a million-object prefix.
        let mut extra = Map::with_capacity(1 + usize::from(object.version.is_some()));
        extra.insert("etag".to_owned(), Value::String(object.etag.clone()));
        if let Some(version) = object.version {
            extra.insert("versionID".to_owned(), version);
        }
        resolved.push(ResolvedReference {
            path: LogicalPath::new(&path)?,
            entry: ManifestEntry {
                digest: object.etag,
                reference: Some(format!("{base}/{}", object.key)),
                size: Some(object.size),
                extra,
                ..Default::default()
            },
        });
    }
    Ok(resolved)
}

/// A single object when `key` names one (and is not a directory marker), else the directory under it, the
/// listed objects that `heads` (awaited only for a listing) names HEADed for their version and type, a few at a
/// time. The listing streams into the HEADs, so only the entries themselves accumulate, never the whole listing.
async fn find(
    store: &dyn ObjectStore,
    uri: &str,
    key: &str,
    version: Option<String>,
    max_objects: u64,
    is_marker: MarkerRule,
    heads: impl Future<Output = Heads>,
) -> Result<Lookup, String> {
    if !key.is_empty() && !key.ends_with('/') {
        match head(store, key, version.clone(), is_marker).await {
            Ok(found) if !found.directory_marker => return Ok(Lookup::Object(found)),
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) if version.is_none() => {}
            Err(object_store::Error::NotFound { .. }) => return Err(format!("{uri} does not exist")),
            Err(e) => return Err(e.to_string()),
        }
    }
    let dir = if key.is_empty() { String::new() } else { format!("{}/", key.trim_end_matches('/')) };
    let prefix = (!dir.is_empty()).then(|| ObjectPath::from(dir.trim_end_matches('/')));
    // Asked only now: a single object never needs it.
    let heads = heads.await;
    let found: Vec<Found> = store
        .list(prefix.as_ref())
        .enumerate()
        .map(|(index, meta)| {
            if index as u64 >= max_objects {
                return Err(too_many(uri, max_objects));
            }
            meta.map_err(|e| e.to_string())
        })
        .map_ok(|meta| async move {
            let key = meta.location.to_string();
            if heads == Heads::ZeroByteOnly && meta.size > 0 {
                let etag = unquoted_etag(&meta);
                return Ok(Found { directory_marker: key.ends_with('/'), key, size: meta.size, etag, version: None });
            }
            head(store, &key, None, is_marker).await.map_err(|e| e.to_string())
        })
        .try_buffered(HEADS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(Lookup::Prefix(dir, found))
}

fn too_many(uri: &str, max_objects: u64) -> String {
    format!(
        "the prefix {uri} holds more than max_objects = {max_objects} objects; raise max_objects or reference a narrower prefix"
    )
}

async fn head(
    store: &dyn ObjectStore,
    key: &str,
    version: Option<String>,
    is_marker: MarkerRule,
) -> object_store::Result<Found> {
    let options = GetOptions { head: true, version, ..Default::default() };
    let result = store.get_opts(&ObjectPath::from(key), options).await?;
    let directory_marker = is_marker(key, &result.attributes);
    let meta = result.meta;
    Ok(Found {
        key: key.to_owned(),
        size: meta.size,
        etag: unquoted_etag(&meta),
        version: meta.version.filter(|v| v != "null").map(Value::String),
        directory_marker,
    })
}

/// The object's ETag as entries record it: without its quotes (empty when the store sent none).
fn unquoted_etag(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_owned()
}

/// The version an entry recorded (`extra.versionID`: a string, or a GCS generation number).
fn recorded_version(entry: &ManifestEntry) -> Option<String> {
    match entry.extra.get("versionID")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// True for an entry added with `checksum = false`: its digest is its URI, so there is nothing to check.
fn unchecksummed(entry: &ManifestEntry) -> bool {
    entry.reference.as_deref() == Some(entry.digest.as_str())
}

/// Opens the object `key` of `store` that reference entry `path` recorded (see the module docs).
fn open_object(
    runtime: &tokio::runtime::Handle,
    store: Arc<dyn ObjectStore>,
    key: &str,
    path: &str,
    entry: &ManifestEntry,
) -> crate::Result<Box<dyn Read + Send>> {
    let reference = entry.reference.clone().unwrap_or_default();
    let version = recorded_version(entry);
    let check = !unchecksummed(entry);
    // Without a version the ETag condition makes the check and the bytes one atomic answer; with one, the
    // version fixes the bytes and its ETag is compared before they are read.
    let if_match = (check && version.is_none()).then(|| format!("\"{}\"", entry.digest));
    let options = GetOptions { if_match, version: version.clone(), ..Default::default() };
    let location = ObjectPath::from(key);
    let result = runtime.block_on(store.get_opts(&location, options));
    let changed = |found: String| crate::Error::ReferenceChanged {
        path: path.to_owned(),
        reference: reference.clone(),
        expected: entry.digest.clone(),
        found,
    };
    let result = match result {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(crate::Error::ReferenceMissing { path: path.to_owned(), reference });
        }
        Err(object_store::Error::Precondition { .. }) => {
            let now = runtime.block_on(store.as_ref().head(&location));
            // An object that does not exist fails If-Match too (HTTP/1.1; Azure answers 412): missing, not changed.
            if let Err(object_store::Error::NotFound { .. }) = now {
                return Err(crate::Error::ReferenceMissing { path: path.to_owned(), reference: reference.clone() });
            }
            let found = now.ok().filter(|m| m.e_tag.is_some()).map(|m| unquoted_etag(&m));
            return Err(changed(found.unwrap_or_else(|| "unknown".to_owned())));
        }
        Err(e) => return Err(crate::Error::Http { url: reference, reason: e.to_string() }),
    };
    let etag = unquoted_etag(&result.meta);
    if check && etag != entry.digest {
        return Err(changed(etag));
    }
    let body = tokio_util::io::StreamReader::new(result.into_stream().map_err(std::io::Error::other));
    Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(body, runtime.clone())))
}

/// Maps a resolver failure to the error `add_reference` reports.
fn reference_error(uri: &str, reason: String) -> artifact_core::Error {
    artifact_core::Error::Reference {
        uri: uri.to_owned(),
        source: Box::new(crate::Error::Http { url: uri.to_owned(), reason }),
    }
}
