//! The tokio runtime the resolvers' async clients run on.

use std::sync::{Arc, OnceLock};

use tokio::runtime::{Handle, Runtime};

/// A handle the caller gave (so a process runs one runtime), or a small multi-thread runtime of the resolvers'
/// own, started on first use: resolvers are built up front, one per scheme, and most processes use few of them.
#[derive(Clone, Debug)]
pub(crate) struct AsyncRuntime {
    given: Option<Handle>,
    own: Arc<OnceLock<Result<Runtime, String>>>,
}

impl AsyncRuntime {
    pub(crate) fn new(given: Option<Handle>) -> Self {
        AsyncRuntime { given, own: Arc::new(OnceLock::new()) }
    }

    /// The handle to block on. Blocking on it is allowed outside async code only (plain threads, rayon's,
    /// `spawn_blocking`'s), which is where references are resolved and opened.
    pub(crate) fn handle(&self) -> Result<Handle, String> {
        if let Some(handle) = &self.given {
            return Ok(handle.clone());
        }
        self.own
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("wandb-references")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the object-store runtime: {e}"))
            })
            .as_ref()
            .map(|runtime| runtime.handle().clone())
            .map_err(Clone::clone)
    }
}
