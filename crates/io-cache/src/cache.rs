//! The content cache proper.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use artifact_core::{DigestAlgorithm, b64_to_hex, copy_hashing, to_hex};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::memo::FileDigestMemo;
use crate::unfinished::Unfinished;
use crate::verified;

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
    /// The content cache records on each object it verifies that it did (see [`CachedObject::is_verified`]);
    /// the store does not, its bodies' mtimes being what its `gc` goes by.
    records_verified: bool,
}

impl ObjectDir {
    /// Objects under `objects`, in-flight writes under `tmp` (which must be on the same filesystem).
    pub fn new(objects: impl Into<PathBuf>, tmp: impl Into<PathBuf>) -> Self {
        ObjectDir { objects: objects.into(), tmp: tmp.into(), records_verified: false }
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
        self.write_verified(&destination, digest, algorithm, source)?;
        Ok(destination)
    }

    /// Writes a verified object and returns its handle, still exclusively locked.
    fn write_verified(
        &self,
        destination: &Path,
        digest: &str,
        algorithm: DigestAlgorithm,
        source: &mut dyn Read,
    ) -> Result<File> {
        write_atomically(&self.tmp, destination, |file, tmp_path| {
            let (actual, _) = copy_hashing(algorithm, source, file).map_err(|e| Error::io("write", tmp_path, e))?;
            if actual != digest {
                return Err(Error::DigestMismatch { expected: digest.to_owned(), actual, algorithm });
            }
            if self.records_verified {
                verified::mark_written(file, algorithm, digest);
            }
            Ok(())
        })
    }

    /// Removes the temporary files writers left behind when they died (kill -9, a crash, a power cut): this
    /// crate's own (`tmp` and twelve letters) that no live process holds locked, and any other file directly in
    /// the temporary directory that is unlocked and has not changed for a minute (the Python SDK does not lock
    /// its temporaries, but a live writer keeps moving the mtime). Directories are left alone. One directory
    /// listing; returns the files and bytes removed.
    ///
    /// # Errors
    /// I/O errors other than the directory or a file vanishing meanwhile.
    pub fn remove_stale_temporaries(&self) -> Result<(usize, u64)> {
        remove_stale_temporaries_in(&self.tmp, true)
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
        let objects =
            ObjectDir { records_verified: true, ..ObjectDir::new(artifacts.join("obj"), artifacts.join("tmp")) };
        ContentCache { objects, root }
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

    /// Opens the object for `digest` to read it, if a regular file of `size` bytes is there.
    ///
    /// The handle holds a shared lock until dropped, so [`ContentCache::cleanup`] (in any process) does not
    /// remove the object while it is read, and the access is recorded explicitly (atime set to now), because
    /// `relatime` and `noatime` mounts do not record reads.
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid digest; I/O errors other than "not found".
    pub fn open_object(&self, digest: &str, algorithm: DigestAlgorithm, size: u64) -> Result<Option<CachedObject>> {
        open_locked(self.object_path(digest, algorithm)?, size)
    }

    /// Streams `source` in under `digest`, verified as [`ContentCache::insert_verified`] does, and returns the
    /// new object open for reading. The writer keeps its lock from the first byte to the last read, so no
    /// cleanup can remove the object in between.
    ///
    /// # Errors
    /// [`Error::DigestMismatch`], [`Error::Core`] for an invalid digest, and I/O errors.
    pub fn insert_and_open(
        &self,
        digest: &str,
        algorithm: DigestAlgorithm,
        source: &mut dyn Read,
    ) -> Result<CachedObject> {
        let destination = self.object_path(digest, algorithm)?;
        let file = self.objects.write_verified(&destination, digest, algorithm, source)?;
        CachedObject::from_written(file, destination)
    }

    /// [`ContentCache::open_object`] for a reference object cached under `url`/`etag`.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn open_etag(&self, url: &str, etag: &str, size: u64) -> Result<Option<CachedObject>> {
        open_locked(self.etag_path(url, etag), size)
    }

    /// Streams `source` into the reference cache under `url`/`etag` and returns it open for reading, locked as
    /// [`ContentCache::insert_and_open`] does. An ETag is not a content hash in general, so the bytes are not
    /// hashed (the caller fetched them conditionally on the ETag); their count must be `size`, so a cut body
    /// never becomes a cache object. The write is atomic.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] and I/O errors.
    pub fn insert_etag_and_open(
        &self,
        url: &str,
        etag: &str,
        size: u64,
        source: &mut dyn Read,
    ) -> Result<CachedObject> {
        let destination = self.etag_path(url, etag);
        let file = write_atomically(self.objects.tmp_dir(), &destination, |file, tmp_path| {
            let written = io::copy(source, file).map_err(|e| Error::io("write", tmp_path, e))?;
            if written != size {
                return Err(Error::SizeMismatch { object: url.to_owned(), expected: size, actual: written });
            }
            Ok(())
        })?;
        CachedObject::from_written(file, destination)
    }

    /// See [`ObjectDir::remove_stale_temporaries`].
    ///
    /// # Errors
    /// As there.
    pub fn remove_stale_temporaries(&self) -> Result<(usize, u64)> {
        self.objects.remove_stale_temporaries()
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

/// Creates a temporary file in `tmp_dir`, lets `fill` write it, then renames it to `destination` and returns
/// the handle, still exclusively locked (the lock taken at creation: cleanup never touches a temporary file being
/// written). On any error the temporary file is removed. A directory removed by a concurrent sweep between
/// creating and using it is created again.
fn write_atomically(
    tmp_dir: &Path,
    destination: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<()>,
) -> Result<File> {
    let (mut file, unfinished) = create_temp_file_retrying(tmp_dir)?;
    let tmp_path = unfinished.path();
    let result = fill(&mut file, tmp_path).and_then(|()| {
        let parent = destination.parent().unwrap_or(tmp_dir);
        let mut attempts = 0;
        // The directory usually exists: it is made only when the rename says it is missing.
        loop {
            match fs::rename(tmp_path, destination) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 4 && tmp_path.exists() => {
                    attempts += 1;
                    create_dir_all_racing(parent).map_err(|e| Error::io("create directory", parent, e))?;
                }
                Err(e) => return Err(Error::io("move into place", destination, e)),
            }
        }
    });
    match result {
        Ok(()) => Ok(file),
        Err(e) => {
            let _ = fs::remove_file(tmp_path);
            Err(e)
        }
    }
}

fn create_temp_file_retrying(dir: &Path) -> Result<(File, Unfinished)> {
    let mut attempts = 0;
    loop {
        // The directory usually exists: it is made only when the creation says it is missing.
        match create_temp_file(dir) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound && attempts < 4 => {
                attempts += 1;
                create_dir_all_racing(dir).map_err(|e| Error::io("create directory", dir, e))?;
            }
            other => return other,
        }
    }
}

/// A cached object open for reading, holding a shared lock (see [`ContentCache::open_object`]).
#[derive(Debug)]
pub struct CachedObject {
    file: File,
    path: PathBuf,
    metadata: fs::Metadata,
    /// Bytes read (or copied) so far.
    position: u64,
}

impl CachedObject {
    /// Where the object lives in the cache.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.metadata.len()
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its modification time when opened. A copy given the same one (as `shutil.copy2`, which the Python SDK
    /// copies with, does) has settled as soon as the object had.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        self.metadata.modified().ok()
    }

    /// True when the object carries this crate's record that it was verified as `digest` and its stamp (size,
    /// mtime, inode, device) has not moved since: copying it out needs no hashing. Objects written through this
    /// crate are recorded as they are verified; others once [`CachedObject::record_verified`] is called after
    /// hashing them. Always false where the filesystem keeps no extended attributes.
    pub fn is_verified(&self, algorithm: DigestAlgorithm, digest: &str) -> bool {
        verified::is_verified(&self.file, &self.metadata, algorithm, digest)
    }

    /// Records that the whole object, read through this handle from `hashed_from` on, hashed to `digest`, when
    /// nothing about it moved meanwhile and it had settled before (best effort; see
    /// [`CachedObject::is_verified`]).
    pub fn record_verified(&self, algorithm: DigestAlgorithm, digest: &str, hashed_from: std::time::SystemTime) {
        verified::mark_read(&self.file, &self.metadata, hashed_from, algorithm, digest);
    }

    /// Copies what is left of the object into `to`, in the kernel (`copy_file_range`, a reflink where the
    /// filesystem shares extents) where it can, else through a buffer. Returns the bytes copied.
    ///
    /// # Errors
    /// The I/O error of reading or writing; an object shorter than it was when opened.
    pub fn copy_to(&mut self, to: &mut File) -> io::Result<u64> {
        let remaining = self.len().saturating_sub(self.position);
        let copied = copy_file(&mut self.file, to, remaining)?;
        self.position += copied;
        if copied != remaining {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ended after {copied} of {remaining} bytes", self.path.display()),
            ));
        }
        Ok(copied)
    }

    /// The open file, positioned where reading left off.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The handle of an object just written: the writer's exclusive lock becomes a shared one.
    fn from_written(mut file: File, path: PathBuf) -> Result<Self> {
        file.unlock().map_err(|e| Error::io("unlock", &path, e))?;
        file.lock_shared().map_err(|e| Error::io("lock", &path, e))?;
        file.seek(io::SeekFrom::Start(0)).map_err(|e| Error::io("rewind", &path, e))?;
        let metadata = file.metadata().map_err(|e| Error::io("read metadata of", &path, e))?;
        Ok(CachedObject { file, path, metadata, position: 0 })
    }
}

impl Read for CachedObject {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// Copies up to `len` bytes from `from`'s position into `to`'s: in the kernel where it can, else through a
/// buffer (another filesystem, an old kernel).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn copy_file(from: &mut File, to: &mut File, len: u64) -> io::Result<u64> {
    let mut copied = 0u64;
    while copied < len {
        let chunk = usize::try_from(len - copied).unwrap_or(usize::MAX).min(1 << 30);
        match rustix::fs::copy_file_range(&*from, None, &*to, None, chunk) {
            Ok(0) => return Ok(copied),
            Ok(n) => copied += n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) if copied == 0 && is_unsupported(e) => return io::copy(&mut Read::take(from, len), to),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(copied)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_unsupported(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::XDEV, Errno::NOSYS, Errno::INVAL, Errno::OPNOTSUPP, Errno::PERM, Errno::BADF].contains(&e)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn copy_file(from: &mut File, to: &mut File, len: u64) -> io::Result<u64> {
    io::copy(&mut Read::take(from, len), to)
}

/// Opens `path` for reading under a shared lock if it is a regular file of `size` bytes, and records the access.
fn open_locked(path: PathBuf, size: u64) -> Result<Option<CachedObject>> {
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    file.lock_shared().map_err(|e| Error::io("lock", &path, e))?;
    // Recorded first: setting the access time moves the ctime, and the stamp kept is the one after it.
    record_access(&file);
    let metadata = file.metadata().map_err(|e| Error::io("read metadata of", &path, e))?;
    if !metadata.is_file() || metadata.len() != size {
        return Ok(None);
    }
    Ok(Some(CachedObject { file, path, metadata, position: 0 }))
}

/// Sets the access time to now, explicitly: reads alone do not update it on `noatime` (and rarely on
/// `relatime`) mounts, and the LRU cleanup and the sweeper order by it. Best effort: a cache shared between
/// users may not let us change another user's file, which only makes that object look older.
pub(crate) fn record_access(file: &File) {
    let _ = file.set_times(std::fs::FileTimes::new().set_accessed(std::time::SystemTime::now()));
}

fn lookup_sized(path: PathBuf, size: u64) -> Result<Option<PathBuf>> {
    match fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == size => Ok(Some(path)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read metadata of", path, e)),
    }
}

/// True for the names [`create_temp_file`] gives.
/// Removes from `dir` this crate's temporaries (`tmp` and twelve letters) that no live process holds locked and,
/// with `foreign_too` (a directory that holds nothing but temporaries), any other file that is unlocked and has
/// not changed for a minute. Returns the files and bytes removed.
pub(crate) fn remove_stale_temporaries_in(dir: &Path, foreign_too: bool) -> Result<(usize, u64)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let now = std::time::SystemTime::now();
    let (mut files, mut bytes) = (0, 0);
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let ours = name.to_str().is_some_and(is_own_temporary_name);
        if !ours && !foreign_too {
            continue;
        }
        let Ok(metadata) = entry.metadata() else { continue };
        if !metadata.is_file() {
            continue;
        }
        if (ours || crate::cleanup::is_abandoned(&metadata, now))
            && crate::cleanup::remove_unless_in_use(&entry.path(), false)?
        {
            files += 1;
            bytes += metadata.len();
        }
    }
    if files > 0 {
        tracing::info!(dir = %dir.display(), files, bytes, "removed temporary files left by interrupted writers");
    }
    Ok((files, bytes))
}

fn is_own_temporary_name(name: &str) -> bool {
    name.len() == 3 + TEMP_SUFFIX_LEN && name.starts_with("tmp") && name[3..].bytes().all(|b| b.is_ascii_lowercase())
}

/// The random part of a temporary file's name.
const TEMP_SUFFIX_LEN: usize = 12;

/// Creates a new, uniquely named file in `dir` with mode `0o666 & !umask` (what the SDK gives committed files),
/// open for reading and writing and exclusively locked, and registered as [`Unfinished`] until the guard drops.
pub(crate) fn create_temp_file(dir: &Path) -> Result<(File, Unfinished)> {
    loop {
        let path = dir.join(format!("tmp{}", random_suffix()));
        match create_new_locked(&path) {
            Ok(Some(file)) => return Ok((file, Unfinished::register(path))),
            Ok(None) => continue,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", path, e)),
        }
    }
}

/// Creates `path` (which must not exist) open for reading and writing, with mode `0o666 & !umask`, and locks
/// it exclusively — the lock that makes [`ContentCache::cleanup`] and [`crate::sweep`] leave a file alone.
///
/// Returns `None` when the file was removed between its creation and the lock (a cleanup or sweep got there
/// first); the caller should try again under a new name. Once this returns a file, nothing in this workspace
/// removes it until the lock is released.
///
/// # Errors
/// The I/O error of creating or locking the file (`AlreadyExists` when `path` exists).
pub fn create_new_locked(path: &Path) -> io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
    let file = options.open(path)?;
    file.lock()?;
    Ok(still_linked(&file)?.then_some(file))
}

/// [`fs::create_dir_all`] that holds its ground against a concurrent [`crate::sweep`] with duration `0`, which
/// may remove a just-created empty parent before its child is made, or `dir` itself between std's `mkdir` and its
/// check that a directory exists: it starts over a few times.
///
/// # Errors
/// The I/O error of the last attempt (`AlreadyExists` at once when something other than a directory is there).
pub fn create_dir_all_racing(dir: &Path) -> io::Result<()> {
    let mut attempts = 0;
    loop {
        match fs::create_dir_all(dir) {
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists && fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) =>
            {
                return Err(e);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists) && attempts < 8 => {
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// Whether the file just created is still linked where it was created. Only its creator renames it, so a file
/// still linked anywhere is still there: one `fstat`, no second lookup of the path.
#[cfg(unix)]
fn still_linked(file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    Ok(file.metadata()?.nlink() > 0)
}

#[cfg(not(unix))]
fn still_linked(_: &File) -> io::Result<bool> {
    // Windows refuses to delete a file that is open without delete sharing, so it is still ours.
    Ok(true)
}

fn random_suffix() -> String {
    std::iter::repeat_with(fastrand::lowercase).take(TEMP_SUFFIX_LEN).collect()
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
