//! Downloads: round trips, the cache, path safety, corruption and references.

use std::fs;
use std::sync::Arc;

use artifact_core::{LogicalPath, Manifest, ManifestEntry, ReferenceOptions, md5_b64};
use io_cache::ContentCache;
use wandb_api::{DownloadOptions, Error, download};
use wandb_store::LogOptions;

use crate::support::{Fixture, dataset, tree};

fn with_cache(f: &Fixture) -> DownloadOptions {
    DownloadOptions {
        cache: Some(ContentCache::new(f.path("cache"))),
        memo: Some(Arc::new(ContentCache::new(f.path("cache")).digest_memo())),
        ..Default::default()
    }
}

#[test]
fn round_trip_is_byte_identical_and_the_second_get_is_served_locally() {
    let f = Fixture::new();
    let files: Vec<(String, Vec<u8>)> = vec![
        ("README.md".into(), b"# tiny dataset\n".to_vec()),
        ("empty.txt".into(), vec![]),
        ("train/nested/deep/b.bin".into(), (0..=255).collect()),
        ("unicode-éè name.txt".into(), "héllo wörld\n".into()),
        ("big.bin".into(), (0..3_000_000u32).map(|i| (i % 253) as u8).collect()),
    ];
    let spec: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    let src = f.dir("src", &spec);
    let logged = f.store.log_artifact(&f.project, &dataset("rt", &src), &LogOptions::default()).unwrap();
    let manifest = f.store.manifest(&logged.version).unwrap();
    let options = with_cache(&f);

    let first = download(&f.backend, &manifest, &f.path("out1"), &options).unwrap();
    assert_eq!(
        tree(&f.path("out1")),
        files.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()
    );
    assert_eq!((first.fetched, first.from_cache, first.already_present), (5, 0, 0));

    // Into a second root: every body comes from the cache, none from the store.
    let second = download(&f.backend, &manifest, &f.path("out2"), &options).unwrap();
    assert_eq!((second.fetched, second.from_cache), (0, 5));
    assert_eq!(tree(&f.path("out2")), tree(&f.path("out1")));

    // Into the same root again: nothing is copied at all.
    let third = download(&f.backend, &manifest, &f.path("out1"), &options).unwrap();
    assert_eq!(third.already_present, 5);

    // A modified destination file is restored.
    fs::write(f.path("out1/README.md"), b"edited").unwrap();
    let fourth = download(&f.backend, &manifest, &f.path("out1"), &options).unwrap();
    assert_eq!((fourth.already_present, fourth.from_cache), (4, 1));
    assert_eq!(fs::read(f.path("out1/README.md")).unwrap(), b"# tiny dataset\n");
}

/// A file served in place gets its access time recorded (the cache-duration sweeper goes by it), and recording
/// it — which moves the ctime — does not cost the digest memo: the next get still needs no hashing.
#[test]
fn files_served_in_place_record_their_access_and_stay_memoised() {
    use artifact_core::{DigestAlgorithm, DigestMemo, FileStamp, MEMO_SETTLE_TIME};
    use std::time::{Duration, SystemTime};

    let f = Fixture::new();
    let src = f.dir("src", &[("a.txt", b"alpha"), ("d/b.bin", &[7u8; 4096])]);
    let logged = f.store.log_artifact(&f.project, &dataset("m", &src), &LogOptions::default()).unwrap();
    let manifest = f.store.manifest(&logged.version).unwrap();
    let options = with_cache(&f);
    let root = f.path("out");
    download(&f.backend, &manifest, &root, &options).unwrap();
    // Pretend a week passed since the files were last read (which moves their ctime), then let them settle:
    // files changed this recently are never memoised.
    let long_ago = SystemTime::now() - Duration::from_secs(7 * 24 * 3600);
    for (path, _) in manifest.entries() {
        let file = fs::File::options().write(true).open(root.join(path)).unwrap();
        file.set_times(fs::FileTimes::new().set_accessed(long_ago)).unwrap();
    }
    std::thread::sleep(MEMO_SETTLE_TIME + Duration::from_millis(100));

    let memo = ContentCache::new(f.path("cache")).digest_memo();
    let mut previous_access: Vec<SystemTime> = vec![long_ago; manifest.entries().len()];
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(20));
        let report = download(&f.backend, &manifest, &root, &options).unwrap();
        assert_eq!(report.already_present, 2, "round {round}");
        let table = memo.load(&std::path::absolute(&root).unwrap(), DigestAlgorithm::Md5);
        for ((path, entry), previous) in manifest.entries().zip(&mut previous_access) {
            let metadata = fs::symlink_metadata(root.join(path)).unwrap();
            let accessed = metadata.accessed().unwrap();
            assert!(accessed > *previous, "round {round}: {path}'s access is recorded");
            *previous = accessed;
            // Round 0 hashed the files; later rounds found them in the memo, with the stamp the last round left.
            assert_eq!(
                table.lookup(path, &FileStamp::from_metadata(&metadata)),
                Some(entry.digest.as_str()),
                "round {round}: {path} is memoised with its current stamp"
            );
        }
    }
}

#[test]
fn corrupt_cache_objects_are_evicted_and_refetched() {
    let f = Fixture::new();
    let src = f.dir("src", &[("x.bin", b"the real bytes")]);
    let logged = f.store.log_artifact(&f.project, &dataset("c", &src), &LogOptions::default()).unwrap();
    let manifest = f.store.manifest(&logged.version).unwrap();
    let options = with_cache(&f);
    download(&f.backend, &manifest, &f.path("a"), &options).unwrap();
    let cache = ContentCache::new(f.path("cache"));
    let cached = cache.lookup(&md5_b64(b"the real bytes"), artifact_core::DigestAlgorithm::Md5, 14).unwrap().unwrap();
    fs::write(&cached, b"same size, bad").unwrap();
    let report = download(&f.backend, &manifest, &f.path("b"), &options).unwrap();
    assert_eq!((report.from_cache, report.fetched), (0, 1));
    assert_eq!(fs::read(f.path("b/x.bin")).unwrap(), b"the real bytes");
    assert_eq!(fs::read(&cached).unwrap(), b"the real bytes", "the cache was repaired");
}

#[test]
fn corrupt_store_objects_are_refused() {
    let f = Fixture::new();
    let src = f.dir("src", &[("x.bin", b"stored bytes")]);
    let logged = f.store.log_artifact(&f.project, &dataset("c", &src), &LogOptions::default()).unwrap();
    let manifest = f.store.manifest(&logged.version).unwrap();
    let object = f.store.object_path(manifest.get("x.bin").unwrap()).unwrap();
    fs::write(&object, b"rotten bytes").unwrap();
    for options in [with_cache(&f), DownloadOptions::default()] {
        let err = download(&f.backend, &manifest, &f.path("out"), &options).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!f.path("out/x.bin").exists(), "no partial or wrong file is left");
    }
    fs::remove_file(&object).unwrap();
    let err = download(&f.backend, &manifest, &f.path("out"), &DownloadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MissingObject { .. }), "{err}");
}

/// A manifest with one hostile path among good ones: nothing at all is written.
#[test]
fn unsafe_manifest_paths_are_refused_before_anything_is_written() {
    let f = Fixture::new();
    let src = f.dir("src", &[("good.txt", b"good")]);
    let logged = f.store.log_artifact(&f.project, &dataset("t", &src), &LogOptions::default()).unwrap();
    let good = f.store.manifest(&logged.version).unwrap();
    let good_entry = good.get("good.txt").unwrap().clone();
    for hostile in ["../escape.txt", "/etc/passwd", "a/../../b", "nul\0byte", "a//b", "./x", "", "dir/"] {
        let json = String::from_utf8(good.to_go_json()).unwrap().replacen(
            "\"good.txt\":",
            &format!(
                "{}:{},\"good.txt\":",
                serde_json::to_string(hostile).unwrap(),
                serde_json::to_string(&serde_json::json!({"digest": good_entry.digest, "size": 4})).unwrap()
            ),
            1,
        );
        let manifest = Manifest::from_json(json.as_bytes()).unwrap();
        let root = f.path(&format!("out-{}", hostile.len()));
        let err = download(&f.backend, &manifest, &root, &DownloadOptions::default()).unwrap_err();
        assert!(matches!(err, Error::UnsafeManifestPath { .. }), "{hostile:?}: {err}");
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert!(!root.exists(), "{hostile:?}: the root was not even created");
    }
    assert!(!f.tmp.path().join("escape.txt").exists());
}

#[test]
fn file_and_directory_clashes_and_obstacles_are_refused() {
    let f = Fixture::new();
    let src = f.dir("src", &[("x", b"x")]);
    let logged = f.store.log_artifact(&f.project, &dataset("t", &src), &LogOptions::default()).unwrap();
    let digest = f.store.manifest(&logged.version).unwrap().get("x").unwrap().digest.clone();
    let entry = || ManifestEntry { digest: digest.clone(), size: Some(1), ..Default::default() };

    let mut clash = Manifest::new();
    clash.add_entry(LogicalPath::new("a").unwrap(), entry(), false).unwrap();
    clash.add_entry(LogicalPath::new("a/b").unwrap(), entry(), false).unwrap();
    let err = download(&f.backend, &clash, &f.path("clash"), &DownloadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("both a file and a directory"), "{err}");

    let mut nested = Manifest::new();
    nested.add_entry(LogicalPath::new("sub/file").unwrap(), entry(), false).unwrap();
    nested.add_entry(LogicalPath::new("plain").unwrap(), entry(), false).unwrap();
    let root = f.path("obstacles");
    fs::create_dir_all(root.join("plain")).unwrap();
    let err = download(&f.backend, &nested, &root, &DownloadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::PathConflict { .. }), "{err}");
    assert!(!root.join("sub").exists(), "nothing was written");

    #[cfg(unix)]
    {
        let outside = f.path("outside");
        fs::create_dir_all(&outside).unwrap();
        let root = f.path("linked");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("sub")).unwrap();
        let mut only_sub = Manifest::new();
        only_sub.add_entry(LogicalPath::new("sub/file").unwrap(), entry(), false).unwrap();
        let err = download(&f.backend, &only_sub, &root, &DownloadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing was written through the link");
    }
}

#[test]
fn file_references_are_copied_and_verified() {
    let f = Fixture::new();
    let target = f.dir("targets", &[("ref.txt", b"referenced"), ("loose.txt", b"unverified")]);
    let mut a = artifact_core::Artifact::new("refs", "dataset").unwrap();
    a.add_reference(&format!("file://{}", target.join("ref.txt").display()), ReferenceOptions::default()).unwrap();
    let opts = ReferenceOptions { checksum: false, ..Default::default() };
    a.add_reference(&format!("file://{}", target.join("loose.txt").display()), opts).unwrap();
    let logged = f.store.log_artifact(&f.project, &a, &LogOptions::default()).unwrap();
    assert_eq!(logged.stored_objects, 0, "references are not stored");
    let manifest = f.store.manifest(&logged.version).unwrap();

    let report = download(&f.backend, &manifest, &f.path("out"), &with_cache(&f)).unwrap();
    assert_eq!(report.references, 2);
    assert_eq!(fs::read(f.path("out/ref.txt")).unwrap(), b"referenced");
    assert_eq!(fs::read(f.path("out/loose.txt")).unwrap(), b"unverified");

    fs::write(target.join("ref.txt"), b"REFERENCED").unwrap();
    let err = download(&f.backend, &manifest, &f.path("out2"), &DownloadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "a changed reference target is caught: {err}");

    fs::remove_file(target.join("ref.txt")).unwrap();
    let err = download(&f.backend, &manifest, &f.path("out3"), &DownloadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Reference(wandb_references::Error::ReferenceMissing { .. })), "{err}");
    let allowed = DownloadOptions { allow_missing_references: true, ..Default::default() };
    let report = download(&f.backend, &manifest, &f.path("out4"), &allowed).unwrap();
    assert_eq!((report.references, report.missing_references), (1, 1));
}

/// `file://` references to devices or FIFOs are refused before they are opened, and a target grown past the
/// recorded size is not copied past it (a reference added without a checksum cannot be verified otherwise).
#[cfg(unix)]
#[test]
fn file_references_read_regular_files_and_no_more_than_their_size() {
    let f = Fixture::new();
    let json = |uri: &str, digest: &str, size: u64| {
        format!(
            r#"{{"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {{}},
               "contents": {{"r.bin": {{"digest": "{digest}", "ref": "{uri}", "size": {size}}}}}}}"#
        )
    };
    let manifest = Manifest::from_json(json("file:///dev/zero", &md5_b64(&[0u8; 10]), 10).as_bytes()).unwrap();
    let err = download(&f.backend, &manifest, &f.path("zero"), &DownloadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("which is a device, not a regular file"), "{err}");
    assert!(!f.path("zero/r.bin").exists());

    let target = f.dir("t", &[("grown.txt", b"0123456789 and then some more")]);
    let uri = format!("file://{}", target.join("grown.txt").display());
    let unchecked = artifact_core::unchecksummed_file_digest(&fs::canonicalize(target.join("grown.txt")).unwrap());
    let manifest = Manifest::from_json(json(&uri, &unchecked, 10).as_bytes()).unwrap();
    let err = download(&f.backend, &manifest, &f.path("grown"), &DownloadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("longer than the 10 bytes its manifest entry has"), "{err}");
    assert!(!f.path("grown/r.bin").exists());
}

#[test]
fn network_references_are_refused_clearly() {
    let f = Fixture::new();
    let mut a = artifact_core::Artifact::new("refs", "dataset").unwrap();
    a.add_reference("s3://bucket/key.bin", ReferenceOptions { checksum: false, ..Default::default() }).unwrap();
    let logged = f.store.log_artifact(&f.project, &a, &LogOptions::default()).unwrap();
    let manifest = f.store.manifest(&logged.version).unwrap();
    let err = download(&f.backend, &manifest, &f.path("out"), &DownloadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Reference(wandb_references::Error::UnsupportedReference { .. })), "{err}");
    assert!(err.to_string().contains("s3://bucket/key.bin"));
}
