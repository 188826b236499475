//! The digest memo: unchanged files are not read again; changed ones always are.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use artifact_core::{
    AddDirOptions, AddFileOptions, Artifact, DigestAlgorithm, DigestMemo, InMemoryDigestMemo, MEMO_SETTLE_TIME,
};

fn settle() {
    // ctime cannot be set back, so the only way to get settled files is to wait out the window.
    std::thread::sleep(MEMO_SETTLE_TIME + Duration::from_millis(200));
}

fn tree(root: &Path) {
    for i in 0..20 {
        let dir = root.join(format!("dir{}", i % 4));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}.bin")), vec![i as u8; 1000 + i]).unwrap();
    }
}

fn add(root: &Path, memo: &Arc<InMemoryDigestMemo>) -> (artifact_core::AddReport, String) {
    let mut a = Artifact::new("memo", "dataset").unwrap();
    a.set_digest_memo(memo.clone());
    let report = a.add_dir(root, AddDirOptions::default()).unwrap();
    (report, a.digest())
}

#[test]
fn unchanged_tree_is_not_rehashed_and_changes_are_seen() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    settle();
    let memo = Arc::new(InMemoryDigestMemo::default());
    let (first, digest) = add(tmp.path(), &memo);
    assert_eq!((first.hashed, first.memo_hits), (20, 0));
    let (second, again) = add(tmp.path(), &memo);
    assert_eq!((second.hashed, second.memo_hits), (0, 20));
    assert_eq!(again, digest);

    // Same size, mtime restored: only the ctime (and content) differ. The memo must not hide the change.
    let victim = tmp.path().join("dir0/f0.bin");
    let mtime = fs::metadata(&victim).unwrap().modified().unwrap();
    fs::write(&victim, vec![0xAAu8; 1000]).unwrap();
    fs::File::options().write(true).open(&victim).unwrap().set_modified(mtime).unwrap();
    let (third, changed) = add(tmp.path(), &memo);
    assert_eq!((third.hashed, third.memo_hits), (1, 19));
    assert_ne!(changed, digest);

    let mut fresh = Artifact::new("memo", "dataset").unwrap();
    fresh.add_dir(tmp.path(), AddDirOptions::default()).unwrap();
    assert_eq!(fresh.digest(), changed, "memoised digest equals a full re-hash");
}

#[test]
fn freshly_written_files_are_not_memoised() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path());
    let memo = Arc::new(InMemoryDigestMemo::default());
    let (first, _) = add(tmp.path(), &memo);
    let (second, _) = add(tmp.path(), &memo);
    assert_eq!((first.hashed, second.hashed), (20, 20), "files changed within the settle window are re-read");
}

#[test]
fn add_file_records_are_saved_when_the_draft_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("weights.bin");
    fs::write(&file, vec![7u8; 4096]).unwrap();
    settle();
    let memo = Arc::new(InMemoryDigestMemo::default());
    {
        let mut a = Artifact::new("memo", "model").unwrap();
        a.set_digest_memo(memo.clone());
        a.add_file(&file, AddFileOptions::default()).unwrap();
    }
    let root = fs::canonicalize(tmp.path()).unwrap();
    let table = memo.load(&root, DigestAlgorithm::Md5);
    let record = table.records.get("weights.bin").expect("record saved on drop");
    assert_eq!(record.digest, artifact_core::md5_b64(&[7u8; 4096]));
    assert!(memo.load(&root, DigestAlgorithm::Xxh128).records.is_empty(), "tables are per algorithm");
    assert!(record.stamp.is_settled(SystemTime::now()));
}
