//! Size-capped cleanup of the content cache, least recently used first (`wandb artifact cache cleanup`).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cache::ContentCache;
use crate::error::{Error, Result};

/// Temporary files younger than this are never removed, even with `remove_temp`: a writer may have created
/// one and not yet locked it.
const TEMP_GRACE: Duration = Duration::from_secs(60);

/// Options of [`ContentCache::cleanup`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanupOptions {
    /// Remove objects until the cache (objects and temporary files) is at most this many bytes.
    pub max_size: u64,
    /// Also remove abandoned temporary files (those no writer holds and older than a minute).
    pub remove_temp: bool,
    /// Report what would be removed without removing anything.
    pub dry_run: bool,
}

/// What [`ContentCache::cleanup`] did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Objects and temporary files before, in bytes.
    pub size_before: u64,
    /// After.
    pub size_after: u64,
    /// Objects removed.
    pub objects_removed: u64,
    /// Temporary files removed.
    pub temp_removed: u64,
    /// Bytes reclaimed.
    pub bytes_reclaimed: u64,
    /// Objects skipped because another process was reading or writing them.
    pub skipped_in_use: u64,
    /// Bytes held by temporary files that were kept.
    pub temp_bytes: u64,
    /// True when the cache is now within `max_size`.
    pub reached_target: bool,
}

struct Candidate {
    path: PathBuf,
    size: u64,
    accessed: SystemTime,
}

impl ContentCache {
    /// Removes the least recently accessed objects (`obj/md5`, `obj/xxh128`, `obj/etag`) until the cache
    /// is within `options.max_size`, as `wandb artifact cache cleanup` does.
    ///
    /// Access time is what orders the objects; [`ContentCache::open_object`] sets it on every hit, so the
    /// order holds on `noatime` and `relatime` mounts. An object another process is reading or writing (it holds
    /// a lock on it) is skipped, never removed; an object another process removed meanwhile is simply gone.
    ///
    /// # Errors
    /// I/O errors other than files vanishing under a concurrent cleanup.
    pub fn cleanup(&self, options: CleanupOptions) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        let mut total = 0u64;

        let now = SystemTime::now();
        for (path, metadata) in files_under(self.tmp_dir())? {
            let size = metadata.len();
            total += size;
            if options.remove_temp && is_abandoned(&metadata, now) && remove_unless_in_use(&path, options.dry_run)? {
                report.temp_removed += 1;
                report.bytes_reclaimed += size;
                total -= size;
            } else {
                report.temp_bytes += size;
            }
        }

        let mut candidates = Vec::new();
        for (path, metadata) in files_under(&self.artifacts_dir().join("obj"))? {
            total += metadata.len();
            let accessed = metadata.accessed().or_else(|_| metadata.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
            candidates.push(Candidate { path, size: metadata.len(), accessed });
        }
        report.size_before = total + report.bytes_reclaimed;
        candidates.sort_by_key(|c| c.accessed);

        for candidate in candidates {
            if total <= options.max_size {
                break;
            }
            if remove_unless_in_use(&candidate.path, options.dry_run)? {
                report.objects_removed += 1;
                report.bytes_reclaimed += candidate.size;
                total -= candidate.size;
            } else {
                report.skipped_in_use += 1;
            }
        }
        report.size_after = total;
        report.reached_target = total <= options.max_size;
        Ok(report)
    }
}

/// A temporary file unchanged for [`TEMP_GRACE`] (or of unknown age): a live writer keeps moving its mtime.
pub(crate) fn is_abandoned(metadata: &fs::Metadata, now: SystemTime) -> bool {
    metadata.modified().map_or(true, |m| now.duration_since(m).unwrap_or_default() >= TEMP_GRACE)
}

/// Removes `path` unless another process holds a lock on it (the lock protocol of [`crate::create_new_locked`]):
/// true when it was removed or had already gone. For temporary files a killed writer left behind.
///
/// # Errors
/// I/O errors other than the file vanishing meanwhile.
pub fn remove_unless_locked(path: &Path) -> Result<bool> {
    remove_unless_in_use(path, false)
}

/// Removes `path` unless another process holds a lock on it. True when it was removed (or, in a dry run,
/// would be) or had already gone.
pub(crate) fn remove_unless_in_use(path: &Path, dry_run: bool) -> Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        // Unreadable to us, so not lockable either; removing it needs only the directory's permission.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return remove_plain(path, dry_run),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
    }
    // Removed while we hold the lock: a reader that opened it meanwhile waits, then reads the intact content.
    remove_plain(path, dry_run)
}

fn remove_plain(path: &Path, dry_run: bool) -> Result<bool> {
    if dry_run {
        return Ok(true);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Every regular file under `dir` (not following links), with its metadata; a missing `dir` is empty.
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list directory", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", &dir, e))?;
            let path = entry.path();
            let metadata = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read metadata of", path, e)),
            };
            if metadata.is_dir() {
                pending.push(path);
            } else if metadata.is_file() {
                out.push((path, metadata));
            }
        }
    }
    Ok(out)
}

/// Parses a size such as `10GB`, `512MiB`, `1.5 TB` or `100` (bytes). Decimal units (`KB`, `MB`, `GB`, `TB`, `PB`)
/// are powers of 1000 as in `wandb artifact cache cleanup`; binary units (`KiB`, `MiB`, `GiB`, `TiB`, `PiB`) are
/// powers of 1024. Case does not matter; anything else is an error (the SDK silently reads `512MiB` as 512 bytes).
///
/// ```
/// assert_eq!(io_cache::parse_size("10GB")?, 10_000_000_000);
/// assert_eq!(io_cache::parse_size("512MiB")?, 512 << 20);
/// assert!(io_cache::parse_size("ten").is_err());
/// # Ok::<(), io_cache::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidSize`] naming the text.
pub fn parse_size(text: &str) -> Result<u64> {
    let invalid = || Error::InvalidSize { text: text.to_owned() };
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "pb" => 1e15,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        "pib" => 1024f64.powi(5),
        _ => return Err(invalid()),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("0", 0),
            ("100", 100),
            ("10B", 10),
            ("10 kb", 10_000),
            ("1.5GB", 1_500_000_000),
            ("10GB", 10_000_000_000),
            ("512MiB", 512 << 20),
            ("2 GiB", 2 << 30),
            ("1TiB", 1 << 40),
        ] {
            assert_eq!(parse_size(text).unwrap(), bytes, "{text}");
        }
        for bad in ["", "GB", "ten", "10 GiBs", "-5GB", "10XB", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
