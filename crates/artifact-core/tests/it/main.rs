//! Integration tests of artifact-core: the SDK's vectors, digests of hand-built trees, errors and the memo.

mod errors;
mod memo;
mod references;
mod support;
mod trees;
mod vectors;
