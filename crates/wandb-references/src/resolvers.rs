//! Every reference resolver this crate has, as one: what adding references and downloading them use.

use std::io::Read;

use artifact_core::{ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};

use crate::ReferenceFetcher;

/// A scheme's resolver, which also opens what it resolved.
trait SchemeHandler: ReferenceResolver + ReferenceFetcher {}
impl<T: ReferenceResolver + ReferenceFetcher> SchemeHandler for T {}

/// The resolvers of the enabled features, asked in the SDK's order — `s3://`, `gs://`, Azure blob URLs
/// (`object-stores`), then `http(s)://` (`http`) — for adding references and for downloading
/// them.
#[derive(Default)]
pub struct ReferenceResolvers {
    handlers: Vec<Box<dyn SchemeHandler>>,
}

impl std::fmt::Debug for ReferenceResolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceResolvers").field("count", &self.handlers.len()).finish()
    }
}

impl ReferenceResolvers {
    /// The resolvers of the enabled features, configured from the environment, on a runtime of their own.
    /// Nothing connects, and no runtime starts, until a reference of their scheme comes.
    ///
    /// # Errors
    /// A resolver whose HTTP client cannot be built.
    pub fn from_env() -> crate::Result<Self> {
        Self::configured(None)
    }

    /// The resolvers of the enabled features, configured from the environment, blocking on `handle`'s runtime
    /// (the caller's, so the process runs one).
    ///
    /// # Errors
    /// A resolver whose HTTP client cannot be built.
    pub fn from_env_on(handle: tokio::runtime::Handle) -> crate::Result<Self> {
        Self::configured(Some(handle))
    }

    #[cfg(any(feature = "http", feature = "object-stores"))]
    fn configured(handle: Option<tokio::runtime::Handle>) -> crate::Result<Self> {
        let mut resolvers = ReferenceResolvers::default();
        #[cfg(feature = "object-stores")]
        {
            let (s3, gcs, azure) = (
                crate::S3ReferenceResolver::from_env()?,
                crate::GcsReferenceResolver::from_env()?,
                crate::AzureReferenceResolver::from_env(),
            );
            match &handle {
                Some(h) => {
                    resolvers.push(s3.on_runtime(h.clone()));
                    resolvers.push(gcs.on_runtime(h.clone()));
                    resolvers.push(azure.on_runtime(h.clone()));
                }
                None => {
                    resolvers.push(s3);
                    resolvers.push(gcs);
                    resolvers.push(azure);
                }
            }
        }
        #[cfg(feature = "http")]
        {
            let http = crate::HttpReferenceResolver::new()?;
            match handle {
                Some(h) => resolvers.push(http.on_runtime(h)),
                None => resolvers.push(http),
            }
        }
        Ok(resolvers)
    }

    #[cfg(not(any(feature = "http", feature = "object-stores")))]
    fn configured(_: Option<tokio::runtime::Handle>) -> crate::Result<Self> {
        Ok(ReferenceResolvers::default())
    }

    /// Adds a resolver, asked after those already present.
    pub fn push(&mut self, resolver: impl ReferenceResolver + ReferenceFetcher + 'static) {
        self.handlers.push(Box::new(resolver));
    }
}

impl ReferenceResolver for ReferenceResolvers {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        self.handlers.iter().any(|r| r.handles(uri))
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let split = SplitUri::parse(uri).ok_or_else(|| artifact_core::Error::NotAUri { uri: uri.to_owned() })?;
        match self.handlers.iter().find(|r| r.handles(&split)) {
            Some(resolver) => resolver.resolve(uri, options),
            None => {
                Err(artifact_core::Error::ResolverRequired { scheme: split.scheme.to_owned(), uri: uri.to_owned() })
            }
        }
    }
}

impl ReferenceFetcher for ReferenceResolvers {
    fn fetches(&self, uri: &SplitUri<'_>) -> bool {
        self.handlers.iter().any(|r| r.fetches(uri))
    }

    fn open_reference(&self, path: &str, entry: &ManifestEntry) -> crate::Result<Box<dyn Read + Send>> {
        let reference = entry.reference.as_deref().unwrap_or_default();
        let unsupported =
            || crate::Error::UnsupportedReference { path: path.to_owned(), reference: reference.to_owned() };
        let split = SplitUri::parse(reference).ok_or_else(unsupported)?;
        match self.handlers.iter().find(|r| r.fetches(&split)) {
            Some(fetcher) => fetcher.open_reference(path, entry),
            None => Err(unsupported()),
        }
    }
}
