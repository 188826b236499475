//! Content-cache behaviour on real files: hits, atomic verified inserts, concurrency.

use std::fs;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use artifact_core::{DigestAlgorithm, digest_bytes_b64, md5_b64};
use io_cache::{ContentCache, Error};

#[test]
fn a_hit_is_a_regular_file_of_the_right_size() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(tmp.path());
    let digest = md5_b64(b"abc");
    let path = cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &b"abc"[..]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"abc");
    assert!(cache.lookup(&digest, DigestAlgorithm::Md5, 3).unwrap().is_some());
    assert!(cache.lookup(&digest, DigestAlgorithm::Md5, 4).unwrap().is_none(), "wrong size is a miss");
    assert!(cache.lookup(&digest, DigestAlgorithm::Xxh128, 3).unwrap().is_none(), "algorithms do not mix");
    cache.remove(&digest, DigestAlgorithm::Md5).unwrap();
    assert!(cache.lookup(&digest, DigestAlgorithm::Md5, 3).unwrap().is_none());
    cache.remove(&digest, DigestAlgorithm::Md5).unwrap();

    let xxh = digest_bytes_b64(DigestAlgorithm::Xxh128, b"abc");
    let path = cache.insert_verified(&xxh, DigestAlgorithm::Xxh128, &mut &b"abc"[..]).unwrap();
    assert!(path.to_string_lossy().contains("/obj/xxh128/"));
}

#[test]
fn mismatched_bytes_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(tmp.path());
    let digest = md5_b64(b"expected");
    let err = cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &b"tampered"[..]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&digest));
    assert!(cache.lookup(&digest, DigestAlgorithm::Md5, 8).unwrap().is_none());
    assert_eq!(fs::read_dir(cache.tmp_dir()).unwrap().count(), 0, "temporary file removed");
}

#[cfg(unix)]
#[test]
fn committed_objects_get_the_umask_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(tmp.path());
    let path = cache.insert_verified(&md5_b64(b"m"), DigestAlgorithm::Md5, &mut &b"m"[..]).unwrap();
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o600, 0o600, "readable and writable by the owner: {mode:o}");
    assert_eq!(mode & 0o111, 0, "never executable: {mode:o}");
}

/// Writers keep replacing one object while readers keep reading it: a reader sees either nothing or the
/// whole object, never a prefix.
#[test]
fn concurrent_writers_never_expose_a_partial_object() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Arc::new(ContentCache::new(tmp.path()));
    let body: Arc<Vec<u8>> = Arc::new((0..4 << 20).map(|i| (i % 251) as u8).collect());
    let digest = Arc::new(md5_b64(&body));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (cache, body, digest, stop) = (cache.clone(), body.clone(), digest.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &body[..]).unwrap();
                }
            })
        })
        .collect();
    let path = cache.object_path(&digest, DigestAlgorithm::Md5).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "no writer finished");
        std::thread::yield_now();
    }
    let mut full_reads = 0;
    for _ in 0..200 {
        if let Ok(mut f) = fs::File::open(&path) {
            let mut read = Vec::new();
            f.read_to_end(&mut read).unwrap();
            assert_eq!(read.len(), body.len(), "a reader saw a partial object");
            full_reads += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(full_reads, 200, "the object never disappears once written");
    assert_eq!(fs::read_dir(cache.tmp_dir()).unwrap().count(), 0);
}

/// Objects written through the cache carry a record that they were verified, trusted only while the object is
/// unchanged; a write of the same size is enough to lose it. (Linux: the record is an extended attribute.)
#[cfg(target_os = "linux")]
#[test]
fn objects_written_through_the_cache_are_known_verified_until_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(dir.path());
    let digest = md5_b64(b"verified bytes");
    let path = cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &b"verified bytes"[..]).unwrap();
    let object = cache.open_object(&digest, DigestAlgorithm::Md5, 14).unwrap().unwrap();
    assert!(object.is_verified(DigestAlgorithm::Md5, &digest));
    assert!(!object.is_verified(DigestAlgorithm::Md5, &md5_b64(b"other bytes")), "the record names its digest");
    assert!(!object.is_verified(DigestAlgorithm::Xxh128, &digest), "and its algorithm");
    drop(object);

    fs::write(&path, b"changed  bytes").unwrap();
    let object = cache.open_object(&digest, DigestAlgorithm::Md5, 14).unwrap().unwrap();
    assert!(!object.is_verified(DigestAlgorithm::Md5, &digest), "a write moves the mtime past the record's");
}

/// An object the cache did not write (the Python SDK's, say) is recorded once it has been hashed, if it had
/// settled before the hashing began; one changed just now is not.
#[cfg(target_os = "linux")]
#[test]
fn objects_from_elsewhere_are_recorded_once_hashed_if_settled() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(dir.path());
    for (body, age, recorded) in [(&b"written long ago"[..], 3600, true), (&b"written just now"[..], 0, false)] {
        let digest = md5_b64(body);
        let path = cache.object_path(&digest, DigestAlgorithm::Md5).unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        let written = SystemTime::now() - Duration::from_secs(age);
        filetime::set_file_mtime(&path, filetime::FileTime::from_system_time(written)).unwrap();

        let object = cache.open_object(&digest, DigestAlgorithm::Md5, body.len() as u64).unwrap().unwrap();
        assert!(!object.is_verified(DigestAlgorithm::Md5, &digest), "no record yet");
        object.record_verified(DigestAlgorithm::Md5, &digest, SystemTime::now());
        drop(object);
        let object = cache.open_object(&digest, DigestAlgorithm::Md5, body.len() as u64).unwrap().unwrap();
        assert_eq!(object.is_verified(DigestAlgorithm::Md5, &digest), recorded, "{:?}", String::from_utf8_lossy(body));
    }
}

/// `copy_to` copies what is left of the object, whatever was read before.
#[test]
fn copy_to_copies_the_rest_of_the_object() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let cache = ContentCache::new(dir.path());
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let digest = md5_b64(&body);
    cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &body[..]).unwrap();
    let mut object = cache.open_object(&digest, DigestAlgorithm::Md5, body.len() as u64).unwrap().unwrap();
    let mut head = [0u8; 10];
    object.read_exact(&mut head).unwrap();
    let mut out = fs::File::options().read(true).write(true).create_new(true).open(dir.path().join("out")).unwrap();
    assert_eq!(object.copy_to(&mut out).unwrap(), body.len() as u64 - 10);
    assert_eq!(fs::read(dir.path().join("out")).unwrap(), &body[10..]);
}
