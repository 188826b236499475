//! The content cache proper.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use artifact_core::{DigestAlgorithm, b64_to_hex, copy_hashing, to_hex};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::memo::FileDigestMemo;

/// The SDK's cache directory: `$WANDB_CACHE_DIR`, else the platform's user cache directory plus `wandb`
/// (what `platformdirs.user_cache_dir("wandb")` returns).
///
/// # Errors
/// [`Error::NoCacheDir`] when neither `WANDB_CACHE_DIR` nor a home directory is known.
pub fn default_cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WANDB_CACHE_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    platform_cache_root().ok_or(Error::NoCacheDir)
}

#[cfg(target_os = "macos")]
fn platform_cache_root() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Library/Caches/wandb"))
}

#[cfg(windows)]
fn platform_cache_root() -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA").map(|local| PathBuf::from(local).join("wandb").join("wandb").join("Cache"))
}

#[cfg(not(any(target_os = "macos", windows)))]
fn platform_cache_root() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    xdg.or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|base| base.join("wandb"))
}

/// A content-addressed directory: objects at `<dir>/<md5|xxh128>/<hex[0:2]>/<hex[2:]>`, written through a
/// sibling temporary directory and renamed into place only once their digest is verified.
///
/// The content cache keeps its objects in one (`<cache>/artifacts/obj`), and so does the embedded store.
#[derive(Clone, Debug)]
pub struct ObjectDir {
    objects: PathBuf,
    tmp: PathBuf,
}

impl ObjectDir {
    /// Objects under `objects`, in-flight writes under `tmp` (which must be on the same filesystem).
    pub fn new(objects: impl Into<PathBuf>, tmp: impl Into<PathBuf>) -> Self {
        ObjectDir { objects: objects.into(), tmp: tmp.into() }
    }

    /// The directory holding the objects.
    pub fn objects_dir(&self) -> &Path {
        &self.objects
    }

    /// The directory holding in-flight writes.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Where the object with base64 `digest` lives.
    ///
    /// # Errors
    /// [`Error::Core`] when `digest` is not base64.
    pub fn object_path(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<PathBuf> {
        let hex = b64_to_hex(digest)?;
        if hex.len() < 3 {
            return Err(artifact_core::Error::InvalidDigest { digest: digest.to_owned(), reason: "too short" }.into());
        }
        Ok(self.objects.join(algorithm.cache_dir_name()).join(&hex[..2]).join(&hex[2..]))
    }

    /// The object for `digest`, if a regular file of `size` bytes is there (the SDK's hit rule: the size is
    /// checked, the content is not).
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid digest; I/O errors other than "not found".
    pub fn lookup(&self, digest: &str, algorithm: DigestAlgorithm, size: u64) -> Result<Option<PathBuf>> {
        lookup_sized(self.object_path(digest, algorithm)?, size)
    }

    /// Streams `source` in under `digest`, hashing on the way. The object appears only if the bytes hash to
    /// `digest`; otherwise nothing is left behind and [`Error::DigestMismatch`] is returned.
    ///
    /// # Errors
    /// [`Error::DigestMismatch`], [`Error::Core`] for an invalid digest, and I/O errors.
    pub fn insert_verified(&self, digest: &str, algorithm: DigestAlgorithm, source: &mut dyn Read) -> Result<PathBuf> {
        let destination = self.object_path(digest, algorithm)?;
        write_atomically(&self.tmp, &destination, |file, tmp_path| {
            let (actual, _) = copy_hashing(algorithm, source, file).map_err(|e| Error::io("write", tmp_path, e))?;
            if actual != digest {
                return Err(Error::DigestMismatch { expected: digest.to_owned(), actual, algorithm });
            }
            Ok(())
        })?;
        Ok(destination)
    }

    /// Removes an object (for example one found corrupt). Missing objects are not an error.
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid digest; I/O errors other than "not found".
    pub fn remove(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<()> {
        let path = self.object_path(digest, algorithm)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", path, e)),
        }
    }
}

/// The W&B content cache rooted at a cache directory (the directory that holds `artifacts/`).
#[derive(Clone, Debug)]
pub struct ContentCache {
    root: PathBuf,
    objects: ObjectDir,
}

impl ContentCache {
    /// A cache at `root` (created lazily on first insert).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let artifacts = root.join("artifacts");
        ContentCache { objects: ObjectDir::new(artifacts.join("obj"), artifacts.join("tmp")), root }
    }

    /// The cache the SDK would use: see [`default_cache_root`].
    ///
    /// # Errors
    /// [`Error::NoCacheDir`].
    pub fn from_env() -> Result<Self> {
        Ok(ContentCache::new(default_cache_root()?))
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/artifacts`.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// `<root>/artifacts/tmp`, where in-flight writes live.
    pub fn tmp_dir(&self) -> &Path {
        self.objects.tmp_dir()
    }

    /// The content-addressed part, `<root>/artifacts/obj/{md5,xxh128}`.
    pub fn objects(&self) -> &ObjectDir {
        &self.objects
    }

    /// Where the object with base64 `digest` lives: `obj/<md5|xxh128>/<hex[0:2]>/<hex[2:]>`.
    ///
    /// # Errors
    /// [`Error::Core`] when `digest` is not base64.
    pub fn object_path(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<PathBuf> {
        self.objects.object_path(digest, algorithm)
    }

    /// Where a reference object fetched from `url` with `etag` lives:
    /// `obj/etag/<h[0:2]>/<h[2:]>` with `h = sha256(sha256(url) ‖ sha256(etag))`.
    pub fn etag_path(&self, url: &str, etag: &str) -> PathBuf {
        let mut outer = Sha256::new();
        outer.update(Sha256::digest(url.as_bytes()));
        outer.update(Sha256::digest(etag.as_bytes()));
        let h = to_hex(&outer.finalize());
        self.objects.objects_dir().join("etag").join(&h[..2]).join(&h[2..])
    }

    /// See [`ObjectDir::lookup`].
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid digest; I/O errors other than "not found".
    pub fn lookup(&self, digest: &str, algorithm: DigestAlgorithm, size: u64) -> Result<Option<PathBuf>> {
        self.objects.lookup(digest, algorithm, size)
    }

    /// The cached reference object for `url`/`etag`, if a regular file of `size` bytes is there.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn lookup_etag(&self, url: &str, etag: &str, size: u64) -> Result<Option<PathBuf>> {
        lookup_sized(self.etag_path(url, etag), size)
    }

    /// See [`ObjectDir::insert_verified`].
    ///
    /// # Errors
    /// [`Error::DigestMismatch`], [`Error::Core`] for an invalid digest, and I/O errors.
    pub fn insert_verified(&self, digest: &str, algorithm: DigestAlgorithm, source: &mut dyn Read) -> Result<PathBuf> {
        self.objects.insert_verified(digest, algorithm, source)
    }

    /// Streams `source` into the reference cache under `url`/`etag` without verification (an ETag is not a
    /// content hash in general); the write is still atomic.
    ///
    /// # Errors
    /// I/O errors.
    pub fn insert_etag(&self, url: &str, etag: &str, source: &mut dyn Read) -> Result<PathBuf> {
        let destination = self.etag_path(url, etag);
        write_atomically(self.objects.tmp_dir(), &destination, |file, tmp_path| {
            io::copy(source, file).map_err(|e| Error::io("write", tmp_path, e))?;
            Ok(())
        })?;
        Ok(destination)
    }

    /// See [`ObjectDir::remove`].
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid digest; I/O errors other than "not found".
    pub fn remove(&self, digest: &str, algorithm: DigestAlgorithm) -> Result<()> {
        self.objects.remove(digest, algorithm)
    }

    /// The digest memo stored in this cache.
    pub fn digest_memo(&self) -> FileDigestMemo {
        FileDigestMemo::new(self.artifacts_dir().join("digest-memo"))
    }
}

/// Creates a temporary file in `tmp_dir`, lets `fill` write it, then renames it to `destination`.
/// On any error the temporary file is removed.
fn write_atomically(
    tmp_dir: &Path,
    destination: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<()>,
) -> Result<()> {
    fs::create_dir_all(tmp_dir).map_err(|e| Error::io("create directory", tmp_dir, e))?;
    let (mut file, tmp_path) = create_temp_file(tmp_dir)?;
    let result = fill(&mut file, &tmp_path).and_then(|()| {
        drop(file);
        let parent = destination.parent().unwrap_or(tmp_dir);
        fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
        fs::rename(&tmp_path, destination).map_err(|e| Error::io("move into place", destination, e))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn lookup_sized(path: PathBuf, size: u64) -> Result<Option<PathBuf>> {
    match fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == size => Ok(Some(path)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read metadata of", path, e)),
    }
}

/// Creates a new, uniquely named file in `dir` with mode `0o666 & !umask` (what the SDK gives committed files).
pub(crate) fn create_temp_file(dir: &Path) -> Result<(File, PathBuf)> {
    loop {
        let path = dir.join(format!("tmp{}", random_suffix()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
        match options.open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", path, e)),
        }
    }
}

fn random_suffix() -> String {
    std::iter::repeat_with(fastrand::lowercase).take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_sdk() {
        let cache = ContentCache::new("/c");
        assert_eq!(
            cache.object_path("QM+SH2Mt7Eytyc/KD1FhOw==", DigestAlgorithm::Md5).unwrap(),
            Path::new("/c/artifacts/obj/md5/40/cf921f632dec4cadc9cfca0f51613b")
        );
        assert_eq!(
            cache
                .object_path("zUmKd4GDyWOsBq8Q08yNWg==", DigestAlgorithm::Xxh128)
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap(),
            Path::new("/c/artifacts/obj/xxh128")
        );
        // sha256(sha256("https://x/y") + sha256("\"abc\"")), computed with Python's hashlib.
        assert_eq!(
            cache.etag_path("https://x/y", "\"abc\""),
            Path::new("/c/artifacts/obj/etag/56/2c8553fc9cf650ff64ffe647119cff4531a27981cfb902455b96f2d5731a87")
        );
        assert!(cache.object_path("not-base64!", DigestAlgorithm::Md5).is_err());
    }
}
