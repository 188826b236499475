//! Size-capped LRU cleanup and access recording.

use std::fs;
use std::io::Read;
use std::time::{Duration, SystemTime};

use artifact_core::{DigestAlgorithm, md5_b64};
use filetime::FileTime;
use io_cache::{CleanupOptions, ContentCache};

/// Inserts objects of 1000 bytes each, with access times in the given order (oldest first).
fn cache_with(n: usize) -> (tempfile::TempDir, ContentCache, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(tmp.path());
    let mut digests = Vec::new();
    for i in 0..n {
        let body = vec![i as u8; 1000];
        let digest = md5_b64(&body);
        let path = cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &body[..]).unwrap();
        filetime::set_file_atime(&path, FileTime::from_unix_time(1_700_000_000 + i as i64 * 100, 0)).unwrap();
        digests.push(digest);
    }
    (tmp, cache, digests)
}

fn present(cache: &ContentCache, digests: &[String]) -> Vec<bool> {
    digests.iter().map(|d| cache.lookup(d, DigestAlgorithm::Md5, 1000).unwrap().is_some()).collect()
}

#[test]
fn least_recently_used_objects_go_first() {
    let (_tmp, cache, digests) = cache_with(5);
    let report = cache.cleanup(CleanupOptions { max_size: 2500, ..Default::default() }).unwrap();
    assert_eq!(present(&cache, &digests), [false, false, false, true, true]);
    assert_eq!((report.objects_removed, report.bytes_reclaimed), (3, 3000));
    assert_eq!((report.size_before, report.size_after, report.reached_target), (5000, 2000, true));

    let report = cache.cleanup(CleanupOptions { max_size: 10_000, ..Default::default() }).unwrap();
    assert_eq!(report.objects_removed, 0, "already within the cap");
}

#[test]
fn reading_an_object_records_the_access_and_protects_it() {
    let (_tmp, cache, digests) = cache_with(3);
    // Reading the oldest makes it the most recently used.
    let mut object = cache.open_object(&digests[0], DigestAlgorithm::Md5, 1000).unwrap().unwrap();
    let accessed = fs::metadata(object.path()).unwrap().accessed().unwrap();
    assert!(SystemTime::now().duration_since(accessed).unwrap() < Duration::from_secs(60), "atime set explicitly");
    // While it is open, not even a cap of zero removes it.
    let report = cache.cleanup(CleanupOptions { max_size: 0, ..Default::default() }).unwrap();
    assert_eq!(present(&cache, &digests), [true, false, false]);
    assert_eq!((report.skipped_in_use, report.reached_target), (1, false));
    let mut body = Vec::new();
    object.read_to_end(&mut body).unwrap();
    assert_eq!(body, vec![0u8; 1000]);
    drop(object);
    cache.cleanup(CleanupOptions { max_size: 0, ..Default::default() }).unwrap();
    assert_eq!(present(&cache, &digests), [false, false, false]);
    assert!(
        cache.open_object(&digests[0], DigestAlgorithm::Md5, 1000).unwrap().is_none(),
        "a removed object is a miss"
    );
}

#[test]
fn an_inserted_object_stays_until_its_writer_has_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(tmp.path());
    let body = b"just written".to_vec();
    let mut object = cache.insert_and_open(&md5_b64(&body), DigestAlgorithm::Md5, &mut &body[..]).unwrap();
    cache.cleanup(CleanupOptions { max_size: 0, ..Default::default() }).unwrap();
    let mut read = Vec::new();
    object.read_to_end(&mut read).unwrap();
    assert_eq!(read, body);
    assert!(object.path().exists());
}

#[test]
fn temporary_files_are_counted_and_removed_only_when_abandoned() {
    let (tmp, cache, _) = cache_with(1);
    let tmp_dir = tmp.path().join("artifacts/tmp");
    fs::write(tmp_dir.join("tmpabandoned"), vec![0u8; 300]).unwrap();
    filetime::set_file_mtime(tmp_dir.join("tmpabandoned"), FileTime::from_unix_time(1_600_000_000, 0)).unwrap();
    fs::write(tmp_dir.join("tmpyoung"), vec![0u8; 200]).unwrap();
    fs::write(tmp_dir.join("tmpwriting"), vec![0u8; 100]).unwrap();
    filetime::set_file_mtime(tmp_dir.join("tmpwriting"), FileTime::from_unix_time(1_600_000_000, 0)).unwrap();
    let writer = fs::File::open(tmp_dir.join("tmpwriting")).unwrap();
    writer.lock().unwrap();

    let report = cache.cleanup(CleanupOptions { max_size: 10_000, ..Default::default() }).unwrap();
    assert_eq!((report.temp_bytes, report.temp_removed, report.size_before), (600, 0, 1600));
    let report = cache.cleanup(CleanupOptions { max_size: 10_000, remove_temp: true, dry_run: false }).unwrap();
    assert_eq!((report.temp_removed, report.bytes_reclaimed, report.temp_bytes), (1, 300, 300));
    assert!(!tmp_dir.join("tmpabandoned").exists());
    assert!(tmp_dir.join("tmpyoung").exists(), "younger than a minute");
    assert!(tmp_dir.join("tmpwriting").exists(), "a writer holds it");
}

#[test]
fn dry_runs_remove_nothing() {
    let (_tmp, cache, digests) = cache_with(4);
    let report = cache.cleanup(CleanupOptions { max_size: 1000, remove_temp: true, dry_run: true }).unwrap();
    assert_eq!((report.objects_removed, report.size_after), (3, 1000));
    assert_eq!(present(&cache, &digests), [true, true, true, true]);
}
