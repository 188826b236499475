//! References: manifest entries that point at data stored elsewhere (spec §2.3).
//!
//! `file://` and every scheme that needs no network (`checksum = false`, unknown schemes) are handled here.
//! Schemes that must talk to a server to checksum (`http(s)://`, `s3://`, `gs://`, Azure) go through a
//! [`ReferenceResolver`] supplied by a crate that does network I/O, such as `wandb-api`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::digest::md5_b64;
use crate::error::{Error, Result};
use crate::manifest::ManifestEntry;
use crate::path::LogicalPath;

/// `DEFAULT_MAX_OBJECTS`: how many objects a reference may expand to unless told otherwise (10**7).
pub const DEFAULT_MAX_OBJECTS: u64 = 10_000_000;

/// Options of `add_reference`.
#[derive(Clone, Debug)]
pub struct ReferenceOptions {
    /// Logical path (single object) or path prefix (directory or object prefix) of the entries.
    pub name: Option<String>,
    /// Whether to checksum the referenced data (`true`, the default) or record the URI only.
    pub checksum: bool,
    /// Upper bound on the number of entries a directory or prefix may expand to.
    pub max_objects: Option<u64>,
}

impl Default for ReferenceOptions {
    fn default() -> Self {
        ReferenceOptions { name: None, checksum: true, max_objects: None }
    }
}

impl ReferenceOptions {
    /// The effective object limit.
    pub fn max_objects(&self) -> u64 {
        self.max_objects.unwrap_or(DEFAULT_MAX_OBJECTS)
    }
}

/// One entry produced by resolving a reference.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedReference {
    /// Where the entry goes in the artifact.
    pub path: LogicalPath,
    /// The entry (with `reference` set).
    pub entry: ManifestEntry,
}

/// Resolves references whose scheme needs I/O this crate does not do (network, object stores).
///
/// Implementations are synchronous: `artifact-core` depends on no async runtime. An implementation backed by
/// an async client blocks on its own runtime.
pub trait ReferenceResolver: Send + Sync {
    /// True when this resolver handles `uri` (already known to have a scheme).
    fn handles(&self, uri: &SplitUri<'_>) -> bool;
    /// Produces the entries for `uri`. Entry paths must follow the SDK's rules for the scheme.
    ///
    /// # Errors
    /// Whatever prevents resolving the reference; wrap foreign errors in [`Error::Reference`].
    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> Result<Vec<ResolvedReference>>;
}

/// A URI split as Python's `urllib.parse.urlsplit` splits it (no percent-decoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitUri<'a> {
    /// Lowercased scheme.
    pub scheme: &'a str,
    /// The authority (`host[:port]`, or the bucket for object stores).
    pub netloc: &'a str,
    /// The path, raw.
    pub path: &'a str,
    /// The query without `?`.
    pub query: &'a str,
    /// The fragment without `#`.
    pub fragment: &'a str,
}

impl<'a> SplitUri<'a> {
    /// Splits `uri`; `None` when it has no scheme.
    pub fn parse(uri: &'a str) -> Option<Self> {
        let (scheme, rest) = uri.split_once(':')?;
        let mut chars = scheme.chars();
        let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_is_letter || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
            return None;
        }
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (netloc, path) = match rest.strip_prefix("//") {
            Some(after) => match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            },
            None => ("", rest),
        };
        Some(SplitUri { scheme, netloc, path, query, fragment })
    }

    /// True for Azure Blob Storage URLs (`https://<account>.blob.core.windows.net/…`).
    pub fn is_azure_blob(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("https") && self.netloc.ends_with(".blob.core.windows.net")
    }

    fn scheme_is(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }
}

/// What the built-in handlers decide for a reference, before any resolver is asked.
pub(crate) enum Builtin {
    /// A `file://` reference to a local path.
    LocalFile(PathBuf),
    /// A known network scheme with `checksum = false`: entries that need no I/O.
    Offline(Vec<ResolvedReference>),
    /// Anything else: a resolver may handle it; otherwise a known network scheme is an error and an unknown
    /// scheme is tracked by URI.
    External {
        /// The lowercased scheme.
        scheme: String,
        /// True for schemes the SDK checksums over the network.
        known: bool,
    },
}

/// Decides how to handle `uri` without doing any I/O.
pub(crate) fn classify(uri: &str, options: &ReferenceOptions) -> Result<Builtin> {
    let Some(split) = SplitUri::parse(uri) else {
        return Err(Error::NotAUri { uri: uri.to_owned() });
    };
    if split.scheme_is("file") {
        return Ok(Builtin::LocalFile(PathBuf::from(split.path)));
    }
    let scheme = split.scheme.to_ascii_lowercase();
    let known = matches!(scheme.as_str(), "http" | "https" | "s3" | "gs" | "wandb-artifact" | "wandb-client-artifact");
    if !known || options.checksum || scheme.starts_with("wandb-") {
        return Ok(Builtin::External { scheme, known });
    }
    // checksum = false: no request is made; the URI is the digest.
    let name = options.name.as_deref();
    let entry = if scheme == "s3" {
        let key = split.path.trim_start_matches('/');
        let stripped = format!("s3://{}/{}", split.netloc, key);
        let path = name.unwrap_or(if key.is_empty() { split.netloc } else { key });
        uri_entry(LogicalPath::new(path)?, &stripped, &stripped)
    } else if scheme == "gs" {
        let key = split.path.trim_start_matches('/');
        let stripped = format!("gs://{}/{}", split.netloc, key);
        uri_entry(LogicalPath::new(name.unwrap_or(key))?, &stripped, &stripped)
    } else if split.is_azure_blob() {
        // The SDK drops the query (`?versionId=`) from the URI it records.
        let blob = split.path.trim_start_matches('/').split_once('/').map_or("", |(_, blob)| blob);
        let stripped = format!("https://{}{}", split.netloc, split.path);
        uri_entry(LogicalPath::new(name.unwrap_or(blob))?, &stripped, &stripped)
    } else {
        // `os.path.basename(url)` on the whole URL string, query included, as the SDK does.
        let basename = uri.rsplit('/').next().unwrap_or(uri);
        uri_entry(LogicalPath::new(name.unwrap_or(basename))?, uri, uri)
    };
    Ok(Builtin::Offline(vec![entry]))
}

/// `TrackingHandler`: a reference with a scheme nobody checksums is recorded as is, under an explicit name.
pub(crate) fn tracking_entry(uri: &str, options: &ReferenceOptions) -> Result<ResolvedReference> {
    let Some(name) = options.name.as_deref() else {
        return Err(Error::ReferenceNeedsName { uri: uri.to_owned() });
    };
    tracing::warn!(reference = uri, "Artifact references with unsupported schemes cannot be checksummed");
    Ok(uri_entry(LogicalPath::new(name)?, uri, uri))
}

fn uri_entry(path: LogicalPath, reference: &str, digest: &str) -> ResolvedReference {
    ResolvedReference {
        path,
        entry: ManifestEntry { digest: digest.to_owned(), reference: Some(reference.to_owned()), ..Default::default() },
    }
}

/// Builds the entry for an `http(s)://` reference from the response to a GET, as `HTTPHandler` does:
/// the digest is the ETag without its quotes (or the URL when there is none), `extra.etag` keeps the raw ETag,
/// the size is the `Content-Length`, and the path is `name` or the basename of the URL.
///
/// # Errors
/// [`Error::InvalidPath`] when the path is not a valid logical path.
pub fn http_reference_entry(
    uri: &str,
    name: Option<&str>,
    etag: Option<&str>,
    content_length: Option<u64>,
) -> Result<ResolvedReference> {
    let basename = uri.rsplit('/').next().unwrap_or(uri);
    let path = LogicalPath::new(name.unwrap_or(basename))?;
    let mut extra = Map::with_capacity(usize::from(etag.is_some()));
    let digest = match etag {
        Some(etag) => {
            extra.insert("etag".to_owned(), Value::String(etag.to_owned()));
            etag.trim_matches('"').to_owned()
        }
        None => uri.to_owned(),
    };
    Ok(ResolvedReference {
        path,
        entry: ManifestEntry {
            digest,
            reference: Some(uri.to_owned()),
            size: content_length,
            extra,
            ..Default::default()
        },
    })
}

/// `Path(p).resolve().as_uri()`: the `file://` URI of an absolute path, percent-encoded as
/// `urllib.parse.quote_from_bytes(…, safe="/")` does.
pub fn path_to_file_uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 7);
    out.push_str("file://");
    for b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b'~') {
            out.push(*b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The digest of an unchecksummed `file://` reference: base64 MD5 of the resolved file URI (since SDK 0.19.6).
pub fn unchecksummed_file_digest(resolved: &Path) -> String {
    md5_b64(path_to_file_uri(resolved).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_urlsplit() {
        let u = SplitUri::parse("file:///tmp/a b.txt").unwrap();
        assert_eq!((u.scheme, u.netloc, u.path), ("file", "", "/tmp/a b.txt"));
        let u = SplitUri::parse("file://host/tmp/x").unwrap();
        assert_eq!((u.netloc, u.path), ("host", "/tmp/x"));
        let u = SplitUri::parse("file:///tmp/a#b?c").unwrap();
        assert_eq!((u.path, u.fragment), ("/tmp/a", "b?c"));
        let u = SplitUri::parse("s3://bucket/key/x?versionId=3").unwrap();
        assert_eq!((u.netloc, u.path, u.query), ("bucket", "/key/x", "versionId=3"));
        assert!(SplitUri::parse("no-scheme/path").is_none());
        assert!(SplitUri::parse("1abc://x").is_none());
        assert!(SplitUri::parse("https://acct.blob.core.windows.net/c/b").unwrap().is_azure_blob());
    }

    #[test]
    fn file_uris_are_quoted_like_pathlib() {
        // `Path("/tmp/a b/é~x.txt").as_uri()` in CPython 3.11.
        assert_eq!(path_to_file_uri(Path::new("/tmp/a b/é~x.txt")), "file:///tmp/a%20b/%C3%A9~x.txt");
    }

    #[test]
    fn offline_schemes_follow_the_sdk() {
        let opts =
            |name: Option<&str>| ReferenceOptions { name: name.map(str::to_owned), checksum: false, max_objects: None };
        let one = |uri: &str, name: Option<&str>| match classify(uri, &opts(name)).unwrap() {
            Builtin::Offline(mut v) => v.remove(0),
            _ => panic!("expected an offline entry for {uri}"),
        };
        let e = one("s3://wb-plain/data/v.txt?versionId=x", None);
        assert_eq!((e.path.as_str(), e.entry.digest.as_str()), ("data/v.txt", "s3://wb-plain/data/v.txt"));
        let e = one("s3://wb-plain/images/", Some("imgs"));
        assert_eq!((e.path.as_str(), e.entry.reference.as_deref()), ("imgs", Some("s3://wb-plain/images/")));
        let e = one("gs://b/k/x.bin#123", None);
        assert_eq!((e.path.as_str(), e.entry.digest.as_str()), ("k/x.bin", "gs://b/k/x.bin"));
        let e = one("https://example.com/data/x.csv?sig=1", None);
        assert_eq!((e.path.as_str(), e.entry.size), ("x.csv?sig=1", None));
        let e = one("https://acct.blob.core.windows.net/cont/dir/x.bin", None);
        assert_eq!(e.path.as_str(), "dir/x.bin");
        // The SDK records the URL without its query.
        let e = one("https://acct.blob.core.windows.net/cont/dir/x.bin?versionId=v1", None);
        let url = "https://acct.blob.core.windows.net/cont/dir/x.bin";
        assert_eq!((e.entry.digest.as_str(), e.entry.reference.as_deref()), (url, Some(url)));
        assert!(
            matches!(classify("https://x/y", &ReferenceOptions::default()).unwrap(), Builtin::External { scheme, known: true } if scheme == "https")
        );
        assert!(matches!(classify("foo://b/x.bin", &opts(None)).unwrap(), Builtin::External { known: false, .. }));
        assert!(matches!(
            tracking_entry("foo://b/x.bin", &ReferenceOptions::default()),
            Err(Error::ReferenceNeedsName { .. })
        ));
        let t = tracking_entry("foo://b/x.bin", &opts(Some("x.bin"))).unwrap();
        assert_eq!((t.path.as_str(), t.entry.digest.as_str(), t.entry.size), ("x.bin", "foo://b/x.bin", None));
        assert!(matches!(classify("just/a/path", &ReferenceOptions::default()), Err(Error::NotAUri { .. })));
    }

    #[test]
    fn http_entries_use_the_etag() {
        let r = http_reference_entry("https://h/d/f.bin", None, Some("\"abc\""), Some(7)).unwrap();
        assert_eq!(r.path.as_str(), "f.bin");
        assert_eq!(r.entry.digest, "abc");
        assert_eq!(r.entry.extra.get("etag").unwrap(), "\"abc\"");
        assert_eq!(r.entry.size, Some(7));
        let r = http_reference_entry("https://h/d/f.bin", Some("x/y"), None, None).unwrap();
        assert_eq!((r.path.as_str(), r.entry.digest.as_str()), ("x/y", "https://h/d/f.bin"));
    }
}
