//! Every reference resolver this crate has, as one: what `artifact put URI` and the IO manager's
//! `add_references` use.

use artifact_core::{ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri};

/// The resolvers of the enabled features — `http(s)://` (`http-references`) and `s3://`
/// (`object-references`) — asked in turn.
#[derive(Default)]
pub struct ReferenceResolvers {
    resolvers: Vec<Box<dyn ReferenceResolver>>,
}

impl std::fmt::Debug for ReferenceResolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceResolvers").field("count", &self.resolvers.len()).finish()
    }
}

impl ReferenceResolvers {
    /// The resolvers of the enabled features, configured from the environment.
    ///
    /// # Errors
    /// A resolver that cannot start (its HTTP client or runtime).
    #[allow(unused_mut, clippy::vec_init_then_push, reason = "each push depends on a feature; none may be enabled")]
    pub fn from_env() -> crate::Result<Self> {
        let mut resolvers: Vec<Box<dyn ReferenceResolver>> = Vec::new();
        #[cfg(feature = "http-references")]
        resolvers.push(Box::new(crate::HttpReferenceResolver::new()?));
        #[cfg(feature = "object-references")]
        resolvers.push(Box::new(crate::S3ReferenceResolver::from_env()?));
        Ok(ReferenceResolvers { resolvers })
    }

    /// Adds a resolver, asked after those already present.
    pub fn push(&mut self, resolver: Box<dyn ReferenceResolver>) {
        self.resolvers.push(resolver);
    }
}

impl ReferenceResolver for ReferenceResolvers {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        self.resolvers.iter().any(|r| r.handles(uri))
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let split = SplitUri::parse(uri).ok_or_else(|| artifact_core::Error::NotAUri { uri: uri.to_owned() })?;
        match self.resolvers.iter().find(|r| r.handles(&split)) {
            Some(resolver) => resolver.resolve(uri, options),
            None => {
                Err(artifact_core::Error::ResolverRequired { scheme: split.scheme.to_owned(), uri: uri.to_owned() })
            }
        }
    }
}
