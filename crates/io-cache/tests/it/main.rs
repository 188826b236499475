//! Integration tests of io-cache on real files with real access times.

mod cache;
mod cleanup;
mod sweep;
