//! The crate's one error type.

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong opening a referenced object. (Resolving one reports [`artifact_core::Error::Reference`],
/// with one of these as its source.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference whose scheme no configured fetcher handles.
    #[error(
        "cannot download reference {path:?} ({reference}): no reference fetcher handles its scheme (file://, s3://, gs://, Azure blob and http(s):// URLs can be downloaded with the object-stores and http features)"
    )]
    UnsupportedReference {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
    },
    /// A referenced object is gone.
    #[error(
        "reference {path:?} points to {reference}, which does not exist (pass allow_missing_references to skip it)"
    )]
    ReferenceMissing {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
    },
    /// A referenced object is no longer the one the artifact recorded.
    #[error(
        "reference {path:?} points to {reference}, which changed since it was added: the artifact recorded ETag {expected}, the object now has {found}"
    )]
    ReferenceChanged {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
        /// The digest (ETag) the manifest recorded.
        expected: String,
        /// The ETag the object has now.
        found: String,
    },
    /// A `file://` reference to something other than a regular file (a device, a FIFO, a socket, a
    /// directory): reading it could block or never end.
    #[error("reference {path:?} points to {reference}, which is {kind}, not a regular file; refusing to read it")]
    NotARegularFile {
        /// The logical path.
        path: String,
        /// The referenced URI.
        reference: String,
        /// What it is.
        kind: &'static str,
    },
    /// A request to the object store or web server failed.
    #[error("request to {url} failed: {reason}")]
    Http {
        /// The URL, without query string (which may hold credentials).
        url: String,
        /// What went wrong.
        reason: String,
    },
}
