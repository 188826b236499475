//! References in W&B artifacts to data that stays where it is: `s3://`, `gs://`, Azure blob and `http(s)://`
//! URLs, checksummed as the `wandb` 0.31.0 SDK records them, and downloaded verified.
//!
//! Each resolver is both halves of a scheme: an [`artifact_core::ReferenceResolver`] that turns a URI into
//! manifest entries (the digest is the store's ETag, `extra` carries the ETag and version, a prefix becomes one
//! entry per object), and a [`ReferenceFetcher`] that opens what an entry recorded — at its version, or only if
//! its ETag is unchanged — so a download never silently returns different bytes. [`ReferenceResolvers`] puts
//! the enabled ones behind one, asked in the SDK's scheme order. `file://` references need no resolver:
//! `artifact-core` adds them and `wandb-api`'s download reads them.
//!
//! The object-store and HTTP clients are async; the resolvers block on a tokio runtime handle the caller gives
//! ([`ReferenceResolvers::from_env_on`]), or on a small runtime of their own started on first use.
//!
//! # Example
//!
//! ```
//! use artifact_core::{Artifact, ReferenceOptions};
//! use wandb_references::ReferenceResolvers;
//!
//! let resolvers = ReferenceResolvers::from_env()?;
//! let mut dataset = Artifact::new("images", "dataset")?;
//! // Recording without a checksum makes no request; with one, the resolver asks the store for ETags.
//! let options = ReferenceOptions { checksum: false, ..Default::default() };
//! dataset.add_reference_with("s3://my-bucket/images/cat.png", options, Some(&resolvers))?;
//! assert_eq!(dataset.manifest().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `object-stores` (default): [`S3ReferenceResolver`], [`GcsReferenceResolver`], [`AzureReferenceResolver`].
//! - `http` (default): [`HttpReferenceResolver`].

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
#[cfg(feature = "http")]
mod http;
mod resolvers;
#[cfg(any(feature = "http", feature = "object-stores"))]
mod runtime;
#[cfg(feature = "object-stores")]
mod stores;

use std::io::Read;

use artifact_core::{ManifestEntry, SplitUri};

pub use error::{Error, Result};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::HttpReferenceResolver;
pub use resolvers::ReferenceResolvers;
#[cfg(feature = "object-stores")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-stores")))]
pub use stores::{AzureReferenceResolver, GcsReferenceResolver, S3ReferenceResolver};

/// Opens the objects that reference entries point at, for downloads: [`ReferenceResolvers`] does for every
/// enabled scheme. (`file://` references are read directly.)
pub trait ReferenceFetcher: Send + Sync {
    /// True when this fetcher opens references like `uri`.
    fn fetches(&self, uri: &SplitUri<'_>) -> bool;

    /// Opens the object that the reference entry at logical `path` recorded: the version in its `extra`, or
    /// the current object provided it still has the entry's digest (ETag). An entry added without a checksum
    /// (its digest is its URI) opens the current object.
    ///
    /// # Errors
    /// [`Error::ReferenceMissing`] when the object is gone, [`Error::ReferenceChanged`] when it is not the one
    /// recorded, [`Error::UnsupportedReference`] for a scheme it does not fetch, transport errors.
    fn open_reference(&self, path: &str, entry: &ManifestEntry) -> Result<Box<dyn Read + Send>>;
}
