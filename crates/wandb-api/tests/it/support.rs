//! Shared helpers.

use std::fs;
use std::path::{Path, PathBuf};

use artifact_core::{AddDirOptions, Artifact};
use wandb_api::{EmbeddedBackend, ProjectRef};
use wandb_store::EmbeddedStore;

pub(crate) struct Fixture {
    pub(crate) tmp: tempfile::TempDir,
    /// The store, and the same store as a backend (also the object source downloads read).
    pub(crate) store: EmbeddedStore,
    pub(crate) backend: EmbeddedBackend,
    pub(crate) project: ProjectRef,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(tmp.path().join("store")).unwrap();
        let backend = EmbeddedBackend::from(store.clone());
        Fixture { tmp, store, backend, project: ProjectRef::new("ent", "proj").unwrap() }
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.tmp.path().join(relative)
    }

    /// A directory with the given files.
    pub(crate) fn dir(&self, relative: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let dir = self.path(relative);
        for (name, bytes) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        dir
    }
}

pub(crate) fn dataset(name: &str, dir: &Path) -> Artifact {
    let mut a = Artifact::new(name, "dataset").unwrap();
    a.add_dir(dir, AddDirOptions::default()).unwrap();
    a
}

/// Every file under `root`, relative, with its bytes, sorted.
pub(crate) fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}
