//! Shared helpers: the vector files and the fixture tree they were generated from.

use std::path::{Path, PathBuf};
use std::sync::Once;

use serde_json::Value;

/// The workspace's copy of the wandb 0.31.0 vectors.
pub(crate) fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wandb-0.31.0")
}

pub(crate) fn load_vector(relative: &str) -> Value {
    let path = vectors_dir().join(relative);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The root the vectors were generated under; `file://` digests with `checksum=False` depend on it.
pub(crate) const FIXTURE_ROOT: &str = "/tmp/wandb-manifest-vectors/fixtures";

/// Recreates the vectors' fixture tree at [`FIXTURE_ROOT`] from the `input_tree` hex of every case.
///
/// Test binaries may run concurrently, so every file is written to a temporary name and renamed into place;
/// the bytes are always the same.
pub(crate) fn fixture_root() -> &'static Path {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for case in ["case1_add_dir.json", "case2_add_file_rename.json", "case3_file_reference.json"] {
            let vector = load_vector(&format!("manifest/{case}"));
            for file in vector["input_tree"].as_array().unwrap() {
                let path = Path::new(FIXTURE_ROOT).join(file["path"].as_str().unwrap());
                let bytes = hex(file["content_hex"].as_str().unwrap());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                if std::fs::read(&path).ok().as_deref() == Some(&bytes[..]) {
                    continue;
                }
                let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
                std::fs::write(&tmp, &bytes).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
        }
    });
    Path::new(FIXTURE_ROOT)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
