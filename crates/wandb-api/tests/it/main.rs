//! Integration tests of wandb-api: the embedded store, downloads and the HTTP resolver on real files.

mod download;
#[cfg(feature = "http-references")]
mod http_reference;
mod launch;
#[cfg(feature = "object-references")]
mod object_stores;
#[cfg(feature = "server")]
mod runs;
mod server;
mod store;
mod support;
