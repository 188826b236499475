//! Integration tests of wandb-api: one conformance suite over both backends, downloads and references on real
//! files, runs, and our client against our server over real HTTP.

#[cfg(feature = "client")]
mod conformance;
mod download;
#[cfg(feature = "http-references")]
mod http_reference;
#[cfg(feature = "object-references")]
mod object_stores;
mod reading;
#[cfg(feature = "client")]
mod runs;
#[cfg(feature = "client")]
mod server;
mod support;
#[cfg(feature = "client")]
mod sync;
