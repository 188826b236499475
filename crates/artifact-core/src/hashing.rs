//! Parallel, streaming file hashing with a digest memo.
//!
//! Files are hashed on rayon's pool, one file per task, each read through a reused 1 MiB buffer, so memory does
//! not grow with file size. A [`DigestMemo`] remembers digests keyed by path, size, mtime, ctime, inode and
//! device, so re-adding an unchanged tree reads no file contents at all.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::digest::{DigestAlgorithm, copy_hashing};
use crate::error::{Error, Result};

/// What identifies a version of a file on disk without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: i64,
    /// Status-change time (ctime) on Unix, creation time elsewhere, nanoseconds since the Unix epoch. Unlike
    /// mtime it cannot be set back by tools such as `touch -d` or `rsync -t`.
    pub changed_ns: i64,
    /// Inode number (0 where the platform does not expose one).
    pub inode: u64,
    /// Device number (0 where the platform does not expose one).
    pub device: u64,
}

/// How long after its last change a file must be before its digest is memoised. Timestamps have a coarse
/// granularity on many filesystems, so a file written again within the same tick could keep its stamp; files
/// changed this recently are hashed every time (git's "racily clean" rule).
pub const MEMO_SETTLE_TIME: Duration = Duration::from_secs(2);

impl FileStamp {
    /// Reads the stamp from metadata (which should have followed symbolic links).
    pub fn from_metadata(metadata: &Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileStamp {
                size: metadata.len(),
                modified_ns: metadata.mtime().saturating_mul(1_000_000_000).saturating_add(metadata.mtime_nsec()),
                changed_ns: metadata.ctime().saturating_mul(1_000_000_000).saturating_add(metadata.ctime_nsec()),
                inode: metadata.ino(),
                device: metadata.dev(),
            }
        }
        #[cfg(not(unix))]
        {
            FileStamp {
                size: metadata.len(),
                modified_ns: metadata.modified().map(system_time_ns).unwrap_or(0),
                changed_ns: metadata.created().map(system_time_ns).unwrap_or(0),
                inode: 0,
                device: 0,
            }
        }
    }

    /// True when the file last changed at least [`MEMO_SETTLE_TIME`] before `now`, so its stamp is trustworthy.
    pub fn is_settled(&self, now: SystemTime) -> bool {
        let last_change = self.modified_ns.max(self.changed_ns);
        let settle = MEMO_SETTLE_TIME.as_nanos() as i64;
        last_change.saturating_add(settle) <= system_time_ns(now)
    }

    /// True when the contents last changed (mtime) at least [`MEMO_SETTLE_TIME`] before `now`, whatever the
    /// ctime says. For a stamp whose ctime the caller itself just moved, by setting the access time of a file it
    /// had verified: any later write lands on a newer mtime.
    pub fn is_content_settled(&self, now: SystemTime) -> bool {
        let settle = MEMO_SETTLE_TIME.as_nanos() as i64;
        self.modified_ns.saturating_add(settle) <= system_time_ns(now)
    }
}

/// Nanoseconds since the Unix epoch (negative before it).
pub(crate) fn system_time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// One remembered digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoRecord {
    /// The file's stamp when it was hashed.
    pub stamp: FileStamp,
    /// The base64 digest.
    pub digest: String,
}

/// Remembered digests for the files under one root directory, keyed by `/`-separated path relative to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoTable {
    /// The records.
    pub records: HashMap<String, MemoRecord>,
}

impl MemoTable {
    /// The digest remembered for `relative` if the stamp still matches.
    pub fn lookup(&self, relative: &str, stamp: &FileStamp) -> Option<&str> {
        self.records.get(relative).filter(|r| r.stamp == *stamp).map(|r| r.digest.as_str())
    }
}

/// Persistent storage for [`MemoTable`]s, one per (root directory, algorithm).
///
/// A memo is a cache: implementations swallow their own I/O errors (a lost memo only costs re-hashing), which
/// is why the methods do not return `Result`. `io_cache::FileDigestMemo` keeps tables in the W&B cache
/// directory; [`InMemoryDigestMemo`] keeps them in memory.
pub trait DigestMemo: Send + Sync + fmt::Debug {
    /// The table for files under `root` (an absolute, canonical directory), or an empty one.
    fn load(&self, root: &Path, algorithm: DigestAlgorithm) -> MemoTable;
    /// Replaces the table for `root`.
    fn save(&self, root: &Path, algorithm: DigestAlgorithm, table: &MemoTable);
}

/// A [`DigestMemo`] that lives as long as the value.
#[derive(Debug, Default)]
pub struct InMemoryDigestMemo {
    tables: Mutex<HashMap<(PathBuf, DigestAlgorithm), MemoTable>>,
}

impl DigestMemo for InMemoryDigestMemo {
    fn load(&self, root: &Path, algorithm: DigestAlgorithm) -> MemoTable {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(&(root.to_path_buf(), algorithm)).cloned().unwrap_or_default()
    }

    fn save(&self, root: &Path, algorithm: DigestAlgorithm, table: &MemoTable) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.insert((root.to_path_buf(), algorithm), table.clone());
    }
}

/// Receives progress while files are hashed, stored or downloaded. All methods default to doing nothing.
pub trait Progress: Send + Sync {
    /// A phase starts (`"hashing"`, `"storing"`, `"downloading"`, …) with this many bytes of work.
    fn begin(&self, phase: &str, total_bytes: u64) {
        let _ = (phase, total_bytes);
    }
    /// `bytes` more bytes are done.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
    /// The phase that just began covers this many files (not every phase says).
    fn set_files(&self, total_files: u64) {
        let _ = total_files;
    }
    /// One more file of the phase is done (its bytes were reported with [`Progress::advance`]).
    fn file_done(&self) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A file to hash.
pub(crate) struct HashJob {
    /// Where to read it.
    pub(crate) physical: PathBuf,
    /// Its key in the memo table.
    pub(crate) memo_key: String,
    /// Its stamp before reading.
    pub(crate) stamp: FileStamp,
}

/// The result of hashing one file.
pub(crate) struct Hashed {
    pub(crate) digest: String,
    pub(crate) from_memo: bool,
}

/// Hashes `jobs` in parallel, answering from `memo` where the stamp matches. The output is in job order.
/// After the call, `memo` holds a record for every settled file that was hashed.
pub(crate) fn hash_files(
    jobs: &[HashJob],
    algorithm: DigestAlgorithm,
    memo: &mut MemoTable,
    progress: &dyn Progress,
) -> Result<Vec<Hashed>> {
    let total: u64 = jobs.iter().map(|j| j.stamp.size).sum();
    progress.begin("hashing", total);
    progress.set_files(jobs.len() as u64);
    let started = SystemTime::now();
    let table: &MemoTable = memo;
    let results: Vec<Hashed> = jobs
        .par_iter()
        .map(|job| {
            if let Some(digest) = table.lookup(&job.memo_key, &job.stamp) {
                progress.advance(job.stamp.size);
                progress.file_done();
                return Ok(Hashed { digest: digest.to_owned(), from_memo: true });
            }
            let digest = hash_file(&job.physical, job.stamp.size, algorithm, progress)?;
            progress.file_done();
            Ok(Hashed { digest, from_memo: false })
        })
        .collect::<Result<_>>()?;
    progress.finish();
    for (job, hashed) in jobs.iter().zip(&results) {
        if !hashed.from_memo && job.stamp.is_settled(started) {
            memo.records.insert(job.memo_key.clone(), MemoRecord { stamp: job.stamp, digest: hashed.digest.clone() });
        }
    }
    Ok(results)
}

/// Hashes one file, checking that it still has `expected_size` bytes and reporting progress per buffer.
pub(crate) fn hash_file(
    path: &Path,
    expected_size: u64,
    algorithm: DigestAlgorithm,
    progress: &dyn Progress,
) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let (digest, read) =
        copy_hashing(algorithm, &mut file, &mut ProgressSink(progress)).map_err(|e| Error::io("read", path, e))?;
    if read != expected_size {
        return Err(Error::FileChanged { path: path.to_path_buf(), expected: expected_size, actual: read });
    }
    Ok(digest)
}

/// Discards bytes, reporting how many went by.
struct ProgressSink<'a>(&'a dyn Progress);

impl std::io::Write for ProgressSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.advance(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_means_old_enough() {
        let now = SystemTime::now();
        let now_ns = system_time_ns(now);
        let mut stamp = FileStamp {
            size: 1,
            modified_ns: now_ns - 10_000_000_000,
            changed_ns: now_ns - 10_000_000_000,
            inode: 1,
            device: 1,
        };
        assert!(stamp.is_settled(now));
        stamp.changed_ns = now_ns - 500_000_000;
        assert!(!stamp.is_settled(now), "a recent ctime makes the stamp untrustworthy");
    }

    #[test]
    fn memo_lookup_requires_identical_stamp() {
        let stamp = FileStamp { size: 3, modified_ns: 1, changed_ns: 2, inode: 3, device: 4 };
        let mut table = MemoTable::default();
        table.records.insert("a".into(), MemoRecord { stamp, digest: "d".into() });
        assert_eq!(table.lookup("a", &stamp), Some("d"));
        assert_eq!(table.lookup("a", &FileStamp { inode: 9, ..stamp }), None);
        assert_eq!(table.lookup("a", &FileStamp { size: 4, ..stamp }), None);
        assert_eq!(table.lookup("b", &stamp), None);
    }
}
