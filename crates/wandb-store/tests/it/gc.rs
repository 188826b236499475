//! Time to live and reclaiming space: expired versions stop resolving and `gc` removes them with the bodies no
//! remaining version references.

use std::time::Duration;

use wandb_store::{Error, GcOptions, LogOptions, Ttl, VersionEdit};

use crate::support::{Fixture, dataset};

fn log(f: &Fixture, name: &str, files: &[(&str, &[u8])], dir: &str) -> wandb_store::ArtifactVersion {
    let a = dataset(name, &f.dir(dir, files));
    f.store.log_artifact(&f.project, &a, &LogOptions::default()).unwrap().version
}

fn object_count(f: &Fixture) -> usize {
    walk(&f.store.root().join("objects"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

#[test]
fn an_expired_version_stops_resolving_and_gc_removes_it_with_its_own_bodies() {
    let f = Fixture::new();
    let v0 = log(&f, "ds", &[("shared.txt", b"kept"), ("only-v0.txt", b"goes")], "v0");
    let v1 = log(&f, "ds", &[("shared.txt", b"kept"), ("only-v1.txt", b"stays")], "v1");
    assert_eq!(object_count(&f), 3);

    let edited = f.store.edit_version(&v0, &VersionEdit::default().ttl(Ttl::Seconds(1))).unwrap();
    assert_eq!(edited.ttl, Ttl::Seconds(1));
    std::thread::sleep(Duration::from_millis(1100));

    assert!(matches!(f.store.artifact(&f.project, "ds", "v0"), Err(Error::ArtifactNotFound { .. })));
    assert!(matches!(f.store.artifact_by_id(&v0.id), Err(Error::ArtifactNotFound { .. })));
    let listed: Vec<u64> = f.store.versions(&f.project, "ds").unwrap().iter().map(|v| v.version_index).collect();
    assert_eq!(listed, [1]);

    // A dry run reports and changes nothing.
    let dry = f.store.gc(GcOptions::default().dry_run(true).grace(Duration::ZERO)).unwrap();
    assert_eq!(dry.expired_versions, ["ent/proj/ds:v0"]);
    assert_eq!(object_count(&f), 3);

    let report = f.store.gc(GcOptions::default().grace(Duration::ZERO)).unwrap();
    assert_eq!(report.expired_versions, ["ent/proj/ds:v0"]);
    assert_eq!((report.objects_removed, report.bytes_removed, report.objects_kept), (1, 4, 2));
    assert_eq!(object_count(&f), 2);
    assert_eq!(f.store.artifact(&f.project, "ds", "latest").unwrap().id, v1.id);

    // Every body v1 has is still there.
    let manifest = f.store.manifest(&v1).unwrap();
    for (path, entry) in manifest.entries() {
        let body = f.store.object_file(&entry.digest, entry.digest_algorithm()).unwrap();
        assert!(body.is_file(), "{path} lost its body");
    }

    // A second sweep has nothing to do.
    let again = f.store.gc(GcOptions::default().grace(Duration::ZERO)).unwrap();
    assert!(again.expired_versions.is_empty());
    assert_eq!(again.objects_removed, 0);
}

#[test]
fn gc_keeps_unreferenced_bodies_inside_the_grace_period() {
    let f = Fixture::new();
    let v0 = log(&f, "ds", &[("a.txt", b"first")], "v0");
    log(&f, "ds", &[("a.txt", b"second")], "v1");
    f.store.delete_version(&v0, false).unwrap();

    let young = f.store.gc(GcOptions::default()).unwrap();
    assert_eq!((young.objects_removed, young.objects_in_grace, young.objects_kept), (0, 1, 1));
    assert_eq!(object_count(&f), 2);

    let swept = f.store.gc(GcOptions::default().grace(Duration::ZERO)).unwrap();
    assert_eq!((swept.objects_removed, swept.objects_kept), (1, 1));
}

#[test]
fn a_deleted_number_is_never_given_again_and_inherit_clears_a_ttl() {
    let f = Fixture::new();
    log(&f, "ds", &[("a.txt", b"0")], "v0");
    let v1 = log(&f, "ds", &[("a.txt", b"1")], "v1");
    f.store.delete_version(&v1, false).unwrap();
    assert_eq!(log(&f, "ds", &[("a.txt", b"2")], "v2").version_index, 2);

    let v2 = f.store.artifact(&f.project, "ds", "v2").unwrap();
    let with_ttl = f.store.edit_version(&v2, &VersionEdit::default().ttl(Ttl::Seconds(3600))).unwrap();
    assert_eq!(with_ttl.ttl, Ttl::Seconds(3600));
    let inherited = f.store.edit_version(&with_ttl, &VersionEdit::default().ttl(Ttl::Inherit)).unwrap();
    assert_eq!(inherited.ttl, Ttl::Inherit);
    assert_eq!(f.store.artifact(&f.project, "ds", "v2").unwrap().ttl, Ttl::Inherit);
}
