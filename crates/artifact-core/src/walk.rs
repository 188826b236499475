//! Directory walks with the SDK's rules for symbolic links, and errors instead of silent skips.

use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};

/// A regular file found by a walk.
pub(crate) struct WalkedFile {
    /// The path to read it at (through any followed links).
    pub(crate) physical: PathBuf,
    /// `/`-separated path relative to the walk root.
    pub(crate) relative: String,
    /// Metadata with symbolic links followed.
    pub(crate) metadata: Metadata,
}

/// Whether a walk descends into symbolic links to directories.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirLinks {
    /// `add_dir` (`os.walk(followlinks=True)`): follow them, refusing cycles.
    Follow,
    /// `file://` references (`os.walk()`): skip them, as `os.walk` lists them as directories it never enters.
    Skip,
}

/// Walks `root` and returns every regular file below it, sorted by relative path.
///
/// Symbolic links to files are followed (hashed through the link). Dangling links, FIFOs, sockets, devices,
/// unreadable directories and non-UTF-8 names are errors: the SDK either skips them silently or hangs on them.
/// Directories are walked in parallel on rayon's pool, so the `stat` calls of a large tree spread over cores.
pub(crate) fn walk_files(root: &Path, dir_links: DirLinks) -> Result<Vec<WalkedFile>> {
    let root_meta = fs::metadata(root).map_err(|e| Error::io("read metadata of", root, e))?;
    let ancestors = vec![(dir_identity(&root_meta, root), root.to_path_buf())];
    let mut out = walk_into(root, "", dir_links, &ancestors)?;
    out.sort_unstable_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

/// One directory entry, classified.
enum Found {
    File(WalkedFile),
    Dir { physical: PathBuf, relative: String, identity: DirIdentity },
    Skipped,
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    dir_links: DirLinks,
    ancestors: &[(DirIdentity, PathBuf)],
) -> Result<Vec<WalkedFile>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))?;
    let entries = entries.collect::<std::io::Result<Vec<_>>>().map_err(|e| Error::io("list directory", dir, e))?;
    let found = entries.par_iter().map(|entry| classify(entry, prefix, dir_links)).collect::<Result<Vec<Found>>>()?;
    let mut files = Vec::with_capacity(found.len());
    let mut subdirs = Vec::new();
    for item in found {
        match item {
            Found::File(file) => files.push(file),
            Found::Dir { physical, relative, identity } => {
                if let Some((_, ancestor)) = ancestors.iter().find(|(id, _)| *id == identity) {
                    return Err(Error::SymlinkCycle { path: physical, ancestor: ancestor.clone() });
                }
                subdirs.push((physical, relative, identity));
            }
            Found::Skipped => {}
        }
    }
    let nested = subdirs
        .into_par_iter()
        .map(|(physical, relative, identity)| {
            let mut chain = ancestors.to_vec();
            chain.push((identity, physical.clone()));
            walk_into(&physical, &relative, dir_links, &chain)
        })
        .collect::<Result<Vec<_>>>()?;
    files.extend(nested.into_iter().flatten());
    Ok(files)
}

fn classify(entry: &fs::DirEntry, prefix: &str, dir_links: DirLinks) -> Result<Found> {
    let physical = entry.path();
    let name = entry.file_name();
    let Some(name) = name.to_str() else {
        return Err(Error::NonUtf8Path { path: physical });
    };
    let relative = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
    let file_type = entry.file_type().map_err(|e| Error::io("read metadata of", &physical, e))?;
    let is_link = file_type.is_symlink();
    let metadata = if is_link {
        match fs::metadata(&physical) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::DanglingSymlink { path: physical });
            }
            Err(e) => return Err(Error::io("follow symbolic link", &physical, e)),
        }
    } else {
        entry.metadata().map_err(|e| Error::io("read metadata of", &physical, e))?
    };
    if metadata.is_dir() {
        if is_link && dir_links == DirLinks::Skip {
            return Ok(Found::Skipped);
        }
        let identity = dir_identity(&metadata, &physical);
        Ok(Found::Dir { physical, relative, identity })
    } else if metadata.is_file() {
        Ok(Found::File(WalkedFile { physical, relative, metadata }))
    } else {
        Err(Error::UnsupportedFileType { path: physical, kind: special_kind(&metadata) })
    }
}

/// Identity of a directory, to detect link cycles.
#[derive(Clone, PartialEq, Eq)]
enum DirIdentity {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg_attr(unix, allow(dead_code))]
    Path(PathBuf),
}

fn dir_identity(metadata: &Metadata, path: &Path) -> DirIdentity {
    #[cfg(unix)]
    {
        let _ = path;
        use std::os::unix::fs::MetadataExt;
        DirIdentity::Inode(metadata.dev(), metadata.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        DirIdentity::Path(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}

fn special_kind(metadata: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = metadata.file_type();
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    let _ = metadata;
    "special file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn follows_or_skips_directory_links_and_refuses_cycles() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/a.txt"), "a").unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("b.txt"), "b").unwrap();
        symlink(&outside, root.join("linked")).unwrap();
        symlink(root.join("sub/a.txt"), root.join("alias.txt")).unwrap();

        let rel = |files: Vec<WalkedFile>| files.into_iter().map(|f| f.relative).collect::<Vec<_>>();
        assert_eq!(rel(walk_files(&root, DirLinks::Follow).unwrap()), ["alias.txt", "linked/b.txt", "sub/a.txt"]);
        assert_eq!(rel(walk_files(&root, DirLinks::Skip).unwrap()), ["alias.txt", "sub/a.txt"]);

        symlink(&root, root.join("sub/loop")).unwrap();
        let err = walk_files(&root, DirLinks::Follow).err().unwrap();
        assert!(matches!(err, Error::SymlinkCycle { .. }), "{err}");
        assert!(walk_files(&root, DirLinks::Skip).is_ok());
    }

    #[test]
    fn dangling_links_and_fifos_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        symlink(tmp.path().join("missing"), tmp.path().join("dangling")).unwrap();
        let err = walk_files(tmp.path(), DirLinks::Follow).err().unwrap();
        assert!(err.to_string().contains("dangling"), "{err}");
    }
}
