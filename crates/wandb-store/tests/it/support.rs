//! Shared helpers.

use std::fs;
use std::path::{Path, PathBuf};

use artifact_core::{AddDirOptions, Artifact};
use wandb_store::{EmbeddedStore, ProjectRef};

pub(crate) struct Fixture {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) store: EmbeddedStore,
    pub(crate) project: ProjectRef,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(tmp.path().join("store")).unwrap();
        Fixture { tmp, store, project: ProjectRef::new("ent", "proj").unwrap() }
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
