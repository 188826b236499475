//! Rust steps in Dagster runs.
//!
//! [`pipes`] implements Dagster Pipes in-house (the stock Rust crate loses messages and mis-reports errors):
//! a Rust binary launched by `PipesSubprocessClient` reads its context and reports logs, materializations and
//! checks, and a failure or panic reaches Dagster as a failed step with its message.
//!
//! # Example
//!
//! Outside Dagster there is no session, so a binary runs the same with or without an orchestrator:
//!
//! ```
//! use dagster_bridge::pipes::PipesSession;
//!
//! assert!(std::env::var_os("DAGSTER_PIPES_CONTEXT").is_none());
//! assert!(PipesSession::open_from_env_and_args(std::iter::empty::<String>())?.is_none());
//! # Ok::<(), dagster_bridge::Error>(())
//! ```

pub mod config;
mod error;
pub mod io_manager;
#[cfg(feature = "launch")]
#[cfg_attr(docsrs, doc(cfg(feature = "launch")))]
pub mod launch;
pub mod pipes;
pub mod step;

pub use error::{Error, Result};
