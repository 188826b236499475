//! Integration tests of serde-modules: the real modules' vectors, refusals, limits and round trips.

mod hostile;
mod properties;
mod round_trips;
mod tables;
mod vectors;

use std::path::{Path, PathBuf};

/// The workspace's test data.
pub(crate) fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(relative)
}

pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}
