//! A persistent [`DigestMemo`]: one small binary file per (root directory, algorithm) under the cache.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use artifact_core::{DigestAlgorithm, DigestMemo, FileStamp, MemoRecord, MemoTable, to_hex};
use sha2::{Digest as _, Sha256};

use crate::cache::create_temp_file;

const MAGIC: &[u8; 8] = b"DWMEMO1\n";

/// Digest memo tables stored as files in a directory (normally `<cache>/artifacts/digest-memo`).
///
/// Each table is written whole to a temporary file and renamed into place, so concurrent writers never
/// produce a torn table (the last writer wins, which is fine for a cache). A table that cannot be read or
/// parsed is treated as empty: the memo only ever saves work, it never supplies a digest it cannot prove
/// belongs to the file's current stamp.
#[derive(Clone, Debug)]
pub struct FileDigestMemo {
    dir: PathBuf,
}

impl FileDigestMemo {
    /// A memo storing its tables in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileDigestMemo { dir: dir.into() }
    }

    /// The file holding the table of `root` for `algorithm`.
    pub fn table_path(&self, root: &Path, algorithm: DigestAlgorithm) -> PathBuf {
        let key = to_hex(&Sha256::digest(root.as_os_str().as_encoded_bytes()));
        self.dir.join(algorithm.cache_dir_name()).join(&key[..2]).join(&key[2..])
    }
}

impl DigestMemo for FileDigestMemo {
    fn load(&self, root: &Path, algorithm: DigestAlgorithm) -> MemoTable {
        let path = self.table_path(root, algorithm);
        let Ok(bytes) = fs::read(&path) else { return MemoTable::default() };
        decode(&bytes, root).unwrap_or_else(|| {
            tracing::debug!(path = %path.display(), "ignoring an unreadable digest memo table");
            MemoTable::default()
        })
    }

    fn save(&self, root: &Path, algorithm: DigestAlgorithm, table: &MemoTable) {
        let path = self.table_path(root, algorithm);
        if let Err(e) = write_table(&path, &encode(table, root)) {
            tracing::debug!(path = %path.display(), error = %e, "could not save a digest memo table");
        }
    }
}

fn write_table(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let parent = path.parent().expect("table paths have a parent");
    crate::create_dir_all_racing(parent).map_err(|e| crate::Error::io("create directory", parent, e))?;
    let (mut file, unfinished) = create_temp_file(parent)?;
    let tmp = unfinished.path();
    let written = file.write_all(bytes).map_err(|e| crate::Error::io("write", tmp, e));
    drop(file);
    let result = written.and_then(|()| fs::rename(tmp, path).map_err(|e| crate::Error::io("move into place", path, e)));
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    // The temporaries of writers killed mid-save: one listing of a small directory, at each save.
    let _ = crate::cache::remove_stale_temporaries_in(parent, false);
    result
}

/// Layout: magic, root (u32 length + bytes), count (u32), then per record: key (u32 + bytes), size (u64),
/// mtime ns (i64), ctime ns (i64), inode (u64), device (u64), digest (u8 length + bytes). Little-endian.
fn encode(table: &MemoTable, root: &Path) -> Vec<u8> {
    let root = root.as_os_str().as_encoded_bytes();
    let mut out = Vec::with_capacity(16 + root.len() + table.records.len() * 96);
    out.extend_from_slice(MAGIC);
    put_bytes32(&mut out, root);
    out.extend_from_slice(&(table.records.len() as u32).to_le_bytes());
    for (key, record) in &table.records {
        put_bytes32(&mut out, key.as_bytes());
        let s = &record.stamp;
        out.extend_from_slice(&s.size.to_le_bytes());
        out.extend_from_slice(&s.modified_ns.to_le_bytes());
        out.extend_from_slice(&s.changed_ns.to_le_bytes());
        out.extend_from_slice(&s.inode.to_le_bytes());
        out.extend_from_slice(&s.device.to_le_bytes());
        out.push(record.digest.len().min(255) as u8);
        out.extend_from_slice(&record.digest.as_bytes()[..record.digest.len().min(255)]);
    }
    out
}

fn put_bytes32(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn decode(bytes: &[u8], expected_root: &Path) -> Option<MemoTable> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let root_len = r.u32()? as usize;
    if r.take(root_len)? != expected_root.as_os_str().as_encoded_bytes() {
        return None; // A hash collision or a moved file: not our table.
    }
    let count = r.u32()? as usize;
    let mut records = HashMap::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let key_len = r.u32()? as usize;
        let key = String::from_utf8(r.take(key_len)?.to_vec()).ok()?;
        let stamp = FileStamp {
            size: r.u64()?,
            modified_ns: r.u64()? as i64,
            changed_ns: r.u64()? as i64,
            inode: r.u64()?,
            device: r.u64()?,
        };
        let digest_len = r.take(1)?[0] as usize;
        let digest = String::from_utf8(r.take(digest_len)?.to_vec()).ok()?;
        records.insert(key, MemoRecord { stamp, digest });
    }
    r.0.is_empty().then_some(MemoTable { records })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MemoTable {
        let mut t = MemoTable::default();
        for i in 0..50u64 {
            let stamp =
                FileStamp { size: i, modified_ns: -(i as i64), changed_ns: i as i64 * 7, inode: i + 1, device: 9 };
            t.records.insert(format!("dir/ファイル{i}.bin"), MemoRecord { stamp, digest: format!("digest{i}==") });
        }
        t
    }

    #[test]
    fn tables_round_trip_per_root_and_algorithm() {
        let tmp = tempfile::tempdir().unwrap();
        let memo = FileDigestMemo::new(tmp.path());
        let root = Path::new("/data/set");
        memo.save(root, DigestAlgorithm::Md5, &table());
        assert_eq!(memo.load(root, DigestAlgorithm::Md5), table());
        assert!(memo.load(root, DigestAlgorithm::Xxh128).records.is_empty());
        assert!(memo.load(Path::new("/data/other"), DigestAlgorithm::Md5).records.is_empty());
    }

    #[test]
    fn damaged_tables_read_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let memo = FileDigestMemo::new(tmp.path());
        let root = Path::new("/r");
        memo.save(root, DigestAlgorithm::Md5, &table());
        let path = memo.table_path(root, DigestAlgorithm::Md5);
        let bytes = fs::read(&path).unwrap();
        for cut in [0, 5, MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 1] {
            fs::write(&path, &bytes[..cut]).unwrap();
            assert!(memo.load(root, DigestAlgorithm::Md5).records.is_empty(), "truncated at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        fs::write(&path, extra).unwrap();
        assert!(memo.load(root, DigestAlgorithm::Md5).records.is_empty(), "trailing garbage");
    }

    #[test]
    fn a_save_removes_what_killed_savers_left_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let memo = FileDigestMemo::new(tmp.path());
        let root = Path::new("/r");
        memo.save(root, DigestAlgorithm::Md5, &table());
        let dir = memo.table_path(root, DigestAlgorithm::Md5).parent().unwrap().to_path_buf();
        fs::write(dir.join("tmpabcdefghijkl"), b"half a table").unwrap();
        let held = dir.join("tmpmnopqrstuvwx");
        let locked = crate::create_new_locked(&held).unwrap().unwrap();
        // The next save of the same root's table, which writes in that directory.
        memo.save(root, DigestAlgorithm::Md5, &table());
        assert!(!dir.join("tmpabcdefghijkl").exists(), "a killed saver's temporary is gone");
        assert!(held.exists(), "a live saver's stays");
        assert_eq!(memo.load(root, DigestAlgorithm::Md5), table(), "the tables stay");
        drop(locked);
    }
}
