//! dagster-wandb's cache-duration sweeper (`_clean_local_storage_path`), rule for rule.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::cleanup::remove_unless_in_use;
use crate::error::{Error, Result};

/// dagster-wandb's default `cache_duration_in_minutes`: 30 days.
pub const DEFAULT_CACHE_DURATION_MINUTES: i64 = 30 * 24 * 60;

/// The directory dagster-wandb sweeps for a `base_dir`: `<base_dir>/storage/wandb_artifacts_manager`, or
/// `<base_dir>/wandb_artifacts_manager` when `base_dir` is itself named `storage`.
///
/// ```
/// use std::path::Path;
/// assert_eq!(io_cache::storage_root(Path::new("/d")), Path::new("/d/storage/wandb_artifacts_manager"));
/// assert_eq!(io_cache::storage_root(Path::new("/d/storage")), Path::new("/d/storage/wandb_artifacts_manager"));
/// ```
pub fn storage_root(base_dir: &Path) -> PathBuf {
    let storage = if base_dir.file_name().is_some_and(|n| n == "storage") {
        base_dir.to_path_buf()
    } else {
        base_dir.join("storage")
    };
    storage.join("wandb_artifacts_manager")
}

/// Threads of the sweep's own pool. Unlinking is bound by the filesystem's latency, not the CPU: with more
/// requests in flight a journaled filesystem batches them. Measured with 100,000 files on 2 cores: ext4 on a
/// virtual disk 5.8 s with 2 threads, 2.1 s with 16 (no gain beyond); tmpfs 0.37 s either way.
const SWEEP_THREADS: usize = 16;

/// Options of [`sweep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepOptions {
    /// `cache_duration_in_minutes`: files not accessed for this long go. `0` removes everything below the
    /// root; a negative value puts the expiry in the future, which also removes every file.
    pub duration_minutes: i64,
    /// Report what would be removed without removing anything.
    pub dry_run: bool,
    /// The clock, for tests; `None` is now.
    pub now: Option<SystemTime>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions { duration_minutes: DEFAULT_CACHE_DURATION_MINUTES, dry_run: false, now: None }
    }
}

/// What [`sweep`] removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Files (and links to files, dangling links, other non-directories) removed.
    pub files_removed: u64,
    /// Directories removed.
    pub dirs_removed: u64,
    /// Bytes of the removed files (a link counts its own size).
    pub bytes_removed: u64,
    /// Files kept because they were accessed within the duration.
    pub files_kept: u64,
    /// Files kept because another process was writing or reading them.
    pub skipped_in_use: u64,
}

#[derive(Default)]
struct Counters {
    files_removed: AtomicU64,
    dirs_removed: AtomicU64,
    bytes_removed: AtomicU64,
    files_kept: AtomicU64,
    skipped_in_use: AtomicU64,
}

/// Sweeps `root` exactly as dagster-wandb does at the end of every IO-manager call:
///
/// - a file goes when its access time — from `lstat`, so a link's own — is at or before now minus the duration
///   (whole seconds, `<=`), or when the duration is `0`; links to files and dangling links are files;
/// - directories are visited bottom-up, and one that is not a link goes when it is empty at that point, or, with
///   `0`, whatever it holds, links to directories included;
/// - links to directories are never followed, and never removed from the root itself;
/// - the root is never removed, and a missing root is an empty sweep.
///
/// Unlike dagster-wandb, a file that another process holds a lock on (being downloaded or read through this
/// workspace) is kept, and files vanishing under a concurrent sweep are not errors.
///
/// # Errors
/// I/O errors other than files vanishing meanwhile.
pub fn sweep(root: &Path, options: SweepOptions) -> Result<SweepReport> {
    let now = options.now.unwrap_or_else(SystemTime::now);
    // `int(time.time()) - minutes * 60`, compared with the float atime.
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i128;
    let expiry_secs = now_secs - i128::from(options.duration_minutes) * 60;
    let sweeper = Sweeper {
        expiry_secs,
        remove_all: options.duration_minutes == 0,
        dry_run: options.dry_run,
        counters: Counters::default(),
    };
    match fs::symlink_metadata(root) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SweepReport::default()),
        Err(e) => return Err(Error::io("read metadata of", root, e)),
    }
    let run = || sweeper.directory(root, true);
    match rayon::ThreadPoolBuilder::new().num_threads(SWEEP_THREADS).thread_name(|i| format!("sweep-{i}")).build() {
        Ok(pool) => pool.install(run)?,
        // No threads to be had: the global pool does the same work, only slower on disks.
        Err(_) => run()?,
    };
    let c = &sweeper.counters;
    Ok(SweepReport {
        files_removed: c.files_removed.load(Ordering::Relaxed),
        dirs_removed: c.dirs_removed.load(Ordering::Relaxed),
        bytes_removed: c.bytes_removed.load(Ordering::Relaxed),
        files_kept: c.files_kept.load(Ordering::Relaxed),
        skipped_in_use: c.skipped_in_use.load(Ordering::Relaxed),
    })
}

struct Sweeper {
    expiry_secs: i128,
    remove_all: bool,
    dry_run: bool,
    counters: Counters,
}

enum Kind {
    /// A real directory: descended into.
    Dir,
    /// A link to a directory: never followed.
    DirLink,
    /// Anything else, links to files and dangling links included.
    File,
}

impl Sweeper {
    /// Sweeps a directory's contents bottom-up; returns true when the directory would be empty afterwards.
    fn directory(&self, dir: &Path, is_root: bool) -> Result<bool> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(Error::io("list directory", dir, e)),
        };
        let mut children = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
            children.push(entry.path());
        }
        // Classify every entry before touching any, as `os.walk` does when it lists a directory: a link to a
        // sibling directory stays a directory link even once that sibling is swept away.
        let classified = children
            .into_par_iter()
            .filter_map(|path| match fs::symlink_metadata(&path) {
                Ok(metadata) => {
                    let kind = kind(&path, &metadata);
                    Some(Ok((path, metadata, kind)))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => Some(Err(Error::io("read metadata of", path, e))),
            })
            .collect::<Result<Vec<_>>>()?;
        let outcomes = classified
            .par_iter()
            .map(|(path, metadata, kind)| -> Result<bool> {
                match kind {
                    Kind::File => self.file(path, metadata),
                    Kind::DirLink => {
                        // Never followed; only a `0` sweep removes one, and never from the root itself.
                        if self.remove_all && !is_root {
                            self.remove_link(path)?;
                            return Ok(true);
                        }
                        Ok(false)
                    }
                    Kind::Dir => {
                        let empty = self.directory(path, false)?;
                        if empty || self.remove_all {
                            return self.remove_dir(path, empty);
                        }
                        Ok(false)
                    }
                }
            })
            .collect::<Result<Vec<bool>>>()?;
        Ok(outcomes.into_iter().all(|gone| gone))
    }

    fn file(&self, path: &Path, metadata: &Metadata) -> Result<bool> {
        let accessed = metadata.accessed().unwrap_or(UNIX_EPOCH);
        let accessed_secs = match accessed.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        if !(self.remove_all || accessed_secs <= self.expiry_secs as f64) {
            self.counters.files_kept.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        let removed = if metadata.is_file() {
            remove_unless_in_use(path, self.dry_run)?
        } else if self.dry_run {
            true
        } else {
            remove_file_if_present(path)?;
            true
        };
        if removed {
            self.counters.files_removed.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes_removed.fetch_add(metadata.len(), Ordering::Relaxed);
        } else {
            self.counters.skipped_in_use.fetch_add(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    fn remove_link(&self, path: &Path) -> Result<()> {
        if !self.dry_run {
            remove_file_if_present(path)?;
        }
        self.counters.files_removed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Removes a directory that is empty (or, in a dry run, would be). A directory that is not empty — a `0`
    /// sweep that kept files in use, or a writer that added a file meanwhile — stays.
    fn remove_dir(&self, path: &Path, would_be_empty: bool) -> Result<bool> {
        if self.dry_run {
            if would_be_empty {
                self.counters.dirs_removed.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(would_be_empty);
        }
        match fs::remove_dir(path) {
            Ok(()) => {
                self.counters.dirs_removed.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(false),
            Err(e) => Err(Error::io("remove directory", path, e)),
        }
    }
}

fn kind(path: &Path, metadata: &Metadata) -> Kind {
    if metadata.is_dir() {
        Kind::Dir
    } else if metadata.file_type().is_symlink() && fs::metadata(path).is_ok_and(|target| target.is_dir()) {
        Kind::DirLink
    } else {
        Kind::File
    }
}

fn remove_file_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}
