//! Checking a directory against a manifest, and removing what the manifest does not have.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::{LogicalPath, Manifest, ManifestEntry, SplitUri, digest_reader_b64};

/// What [`verify_dir`] found: every manifest entry checked against the file at its path under the root, and the
/// files the manifest does not have.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The directory checked.
    pub root: PathBuf,
    /// Entries whose file is there with the right size and digest.
    pub verified: usize,
    /// Entries with no file (or something else than a regular file) at their path.
    pub missing: Vec<String>,
    /// Entries whose file has another size or digest.
    pub changed: Vec<String>,
    /// Files under the root that are not entries.
    pub extra: Vec<String>,
    /// Object references, present with the right size, whose digest (an ETag) cannot be checked locally.
    pub unverifiable: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is missing, changed or extra.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.changed.is_empty() && self.extra.is_empty()
    }
}

/// Checks `root` against `manifest` (`artifact.verify(root)`): every entry's file must be there with its size and
/// digest, and no other file may be. Files are hashed in parallel; symbolic links are not followed.
///
/// # Errors
/// I/O errors reading the directory.
///
/// # Examples
/// ```
/// use artifact_core::{AddFileOptions, Artifact, verify_dir};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.txt"), "hello")?;
/// let mut artifact = Artifact::new("data", "dataset")?;
/// artifact.add_file(dir.path().join("a.txt"), AddFileOptions::default())?;
/// assert!(verify_dir(artifact.manifest(), dir.path())?.is_clean());
/// std::fs::write(dir.path().join("a.txt"), "changed")?;
/// assert_eq!(verify_dir(artifact.manifest(), dir.path())?.changed, ["a.txt"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_dir(manifest: &Manifest, root: &Path) -> Result<VerifyReport> {
    #[derive(Clone, Copy)]
    enum Finding {
        Verified,
        Missing,
        Changed,
        Unverifiable,
    }
    let entries: Vec<(&str, &ManifestEntry)> = manifest.entries().collect();
    let findings = entries
        .par_iter()
        .map(|(path, entry)| -> Result<Finding> {
            let Ok(logical) = LogicalPath::from_manifest_key(path) else { return Ok(Finding::Missing) };
            let mut local = root.to_path_buf();
            local.extend(logical.components());
            let metadata = match fs::symlink_metadata(&local) {
                Ok(m) if m.is_file() => m,
                Ok(_) => return Ok(Finding::Missing),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Finding::Missing),
                Err(e) => return Err(Error::io("read metadata of", &local, e)),
            };
            if entry.size.is_some_and(|size| size != metadata.len()) {
                return Ok(Finding::Changed);
            }
            if entry
                .reference
                .as_deref()
                .is_some_and(|r| !SplitUri::parse(r).is_some_and(|u| u.scheme.eq_ignore_ascii_case("file")))
            {
                return Ok(Finding::Unverifiable);
            }
            let mut file = File::open(&local).map_err(|e| Error::io("open", &local, e))?;
            let (digest, _) =
                digest_reader_b64(entry.digest_algorithm(), &mut file).map_err(|e| Error::io("read", &local, e))?;
            Ok(if digest == entry.digest { Finding::Verified } else { Finding::Changed })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut report = VerifyReport { root: root.to_path_buf(), ..Default::default() };
    for ((path, _), finding) in entries.iter().zip(findings) {
        match finding {
            Finding::Verified => report.verified += 1,
            Finding::Missing => report.missing.push((*path).to_owned()),
            Finding::Changed => report.changed.push((*path).to_owned()),
            Finding::Unverifiable => report.unverifiable.push((*path).to_owned()),
        }
    }
    report.extra = files_under(root)?.into_iter().filter(|p| manifest.get(p).is_none()).collect();
    Ok(report)
}

/// Removes every file under `root` that `manifest` does not have, and directories left empty (what
/// `artifact.checkout()` does after downloading). Symbolic links are removed, never followed. Returns what went.
///
/// # Errors
/// I/O errors.
pub fn remove_extra_files(manifest: &Manifest, root: &Path) -> Result<Vec<String>> {
    let extra: Vec<String> = files_under(root)?.into_iter().filter(|p| manifest.get(p).is_none()).collect();
    for path in &extra {
        let mut local = root.to_path_buf();
        local.extend(path.split('/'));
        match fs::remove_file(&local) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &local, e)),
        }
    }
    remove_empty_dirs(root, root)?;
    Ok(extra)
}

/// Files (and symbolic links) under `root`, as manifest paths (`/`-separated), sorted. An absent root has none.
fn files_under(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list directory", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", &dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io("read metadata of", &path, e))?;
            if kind.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                let parts: Vec<String> =
                    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the empty directories under `dir` (not `root` itself), deepest first.
fn remove_empty_dirs(root: &Path, dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|k| k.is_dir()) {
            remove_empty_dirs(root, &entry.path())?;
        }
    }
    if dir != root && fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none()) {
        let _ = fs::remove_dir(dir);
    }
    Ok(())
}
