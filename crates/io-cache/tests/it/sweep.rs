//! The sweeper, rule by rule, on real trees with access times set explicitly.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use filetime::FileTime;
use io_cache::{SweepOptions, SweepReport, storage_root, sweep};

/// A fixed "now" on a whole second, so the `<=` boundary is exact.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn ago(minutes: i64) -> FileTime {
    let secs = now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 - minutes * 60;
    FileTime::from_unix_time(secs, 0)
}

/// One thing to create under the root. Ages are minutes before `now()`.
#[derive(Clone, Copy)]
enum Spec {
    File(&'static str, i64),
    Dir(&'static str),
    /// A link (own age) to a path relative to the root's parent, which holds `outside/`.
    Link(&'static str, &'static str, i64),
}

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn build(specs: &[Spec]) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("wandb_artifacts_manager");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(outside.join("dir")).unwrap();
    fs::write(outside.join("dir/kept.txt"), b"outside").unwrap();
    fs::write(outside.join("file.txt"), b"outside file").unwrap();
    filetime::set_file_atime(outside.join("dir/kept.txt"), ago(100_000)).unwrap();
    for spec in specs {
        match *spec {
            Spec::File(path, age) => {
                let p = root.join(path);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, vec![b'x'; 10]).unwrap();
                filetime::set_file_atime(&p, ago(age)).unwrap();
            }
            Spec::Dir(path) => fs::create_dir_all(root.join(path)).unwrap(),
            Spec::Link(path, target, age) => {
                let p = root.join(path);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                let target = match target.strip_prefix("root/") {
                    Some(inside) => root.join(inside),
                    None => tmp.path().join(target),
                };
                std::os::unix::fs::symlink(target, &p).unwrap();
                filetime::set_symlink_file_times(&p, ago(age), ago(age)).unwrap();
            }
        }
    }
    Tree { _tmp: tmp, root, outside }
}

/// Every path under the root (links not followed), sorted, directories with a trailing `/`.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push(format!("{rel}/"));
                pending.push(path);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn run(tree: &Tree, minutes: i64) -> SweepReport {
    sweep(&tree.root, SweepOptions { duration_minutes: minutes, dry_run: false, now: Some(now()) }).unwrap()
}

struct Case {
    name: &'static str,
    specs: &'static [Spec],
    minutes: i64,
    remaining: &'static [&'static str],
}

#[cfg(unix)]
#[test]
fn sweeping_follows_dagster_wandbs_rules() {
    use Spec::*;
    let cases = [
        Case {
            // The spec's observation with 60 minutes: old files, emptied and empty directories go; fresh stay.
            name: "60 minutes",
            specs: &[
                File("artifacts/a.v0/old.txt", 180),
                File("artifacts/a.v0/new.txt", 1),
                File("artifacts/b.v0/sub/old.bin", 180),
                File("runs/run1/uuid/wandb-metadata.json", 180),
                Dir("emptydir/nested"),
            ],
            minutes: 60,
            remaining: &["artifacts/", "artifacts/a.v0/", "artifacts/a.v0/new.txt"],
        },
        Case {
            // The comparison is `<=` on whole seconds.
            name: "boundary",
            specs: &[File("exactly.txt", 60), File("one-minute-younger.txt", 59)],
            minutes: 60,
            remaining: &["one-minute-younger.txt"],
        },
        Case {
            // A link to a directory is neither followed nor removed, and keeps its parent alive.
            name: "directory links",
            specs: &[
                Link("top-link", "outside/dir", 1000),
                Link("sub/inner-link", "outside/dir", 1000),
                File("sub/old.txt", 1000),
            ],
            minutes: 60,
            remaining: &["sub/", "sub/inner-link", "top-link"],
        },
        Case {
            // A link to a file goes by its own access time; its target is never touched.
            name: "file links",
            specs: &[Link("old-link", "outside/file.txt", 1000), Link("new-link", "outside/file.txt", 1)],
            minutes: 60,
            remaining: &["new-link"],
        },
        Case {
            name: "dangling links",
            specs: &[Link("old-dangling", "nowhere", 1000), Link("new-dangling", "nowhere", 1)],
            minutes: 60,
            remaining: &["new-dangling"],
        },
        Case {
            name: "empty nested directories",
            specs: &[Dir("a/b/c/d"), Dir("e"), File("f/g/fresh.txt", 0)],
            minutes: 60,
            remaining: &["f/", "f/g/", "f/g/fresh.txt"],
        },
        Case {
            // 0 disables caching: everything below the root goes, directory links inside sub-directories
            // included (rmtree); those directly in the root stay, even dangling.
            name: "zero",
            specs: &[
                File("fresh.txt", 0),
                File("d/fresh.txt", 0),
                Link("d/inner-link", "outside/dir", 0),
                Link("top-link", "root/d", 0),
                Dir("empty"),
            ],
            minutes: 0,
            remaining: &["top-link"],
        },
        Case {
            // A negative duration puts the expiry in the future: every file goes, directory links stay.
            name: "negative",
            specs: &[
                File("fresh.txt", 0),
                File("d/fresh.txt", 0),
                Link("e/dir-link", "outside/dir", 0),
                Link("file-link", "outside/file.txt", 0),
            ],
            minutes: -5,
            remaining: &["e/", "e/dir-link"],
        },
    ];
    for case in cases {
        let tree = build(case.specs);
        let report = run(&tree, case.minutes);
        assert_eq!(listing(&tree.root), case.remaining, "{}: {report:?}", case.name);
        assert!(tree.root.is_dir(), "{}: the root is kept", case.name);
        assert!(tree.outside.join("dir/kept.txt").exists(), "{}: link targets are never touched", case.name);
        assert!(tree.outside.join("file.txt").exists(), "{}", case.name);
    }
}

#[cfg(unix)]
#[test]
fn reports_count_files_directories_and_bytes_and_dry_runs_agree() {
    use Spec::*;
    let specs = &[File("a/old1", 500), File("a/old2", 500), File("b/new", 0), Dir("c/d")];
    let dry_tree = build(specs);
    let before = listing(&dry_tree.root);
    let dry = sweep(&dry_tree.root, SweepOptions { duration_minutes: 60, dry_run: true, now: Some(now()) }).unwrap();
    assert_eq!(listing(&dry_tree.root), before, "a dry run removes nothing");
    let tree = build(specs);
    let real = run(&tree, 60);
    assert_eq!(
        real,
        SweepReport { files_removed: 2, dirs_removed: 3, bytes_removed: 20, files_kept: 1, skipped_in_use: 0 }
    );
    assert_eq!(dry, real, "a dry run predicts the real one");
}

#[cfg(unix)]
#[test]
fn files_in_use_are_kept_even_at_zero() {
    let tree = build(&[Spec::File("busy/being-written.tmp", 1000), Spec::File("busy/idle", 1000)]);
    let busy = fs::File::open(tree.root.join("busy/being-written.tmp")).unwrap();
    busy.lock().unwrap();
    let report = run(&tree, 0);
    assert_eq!(listing(&tree.root), ["busy/", "busy/being-written.tmp"]);
    assert_eq!((report.skipped_in_use, report.files_removed), (1, 1));
    drop(busy);
    run(&tree, 0);
    assert!(listing(&tree.root).is_empty());
}

#[test]
fn storage_layout_and_missing_roots() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(storage_root(tmp.path()), tmp.path().join("storage/wandb_artifacts_manager"));
    let named = tmp.path().join("storage");
    assert_eq!(storage_root(&named), named.join("wandb_artifacts_manager"), "a base_dir named storage is used as is");
    let report = sweep(&storage_root(tmp.path()), SweepOptions::default()).unwrap();
    assert_eq!(report, SweepReport::default(), "a missing root is an empty sweep");
    assert_eq!(SweepOptions::default().duration_minutes, 30 * 24 * 60);

    // With the default clock and duration, a file just written stays.
    let root = storage_root(&named);
    fs::create_dir_all(root.join("artifacts/x.v0")).unwrap();
    fs::write(root.join("artifacts/x.v0/f"), b"f").unwrap();
    let report = sweep(&root, SweepOptions::default()).unwrap();
    assert_eq!(report.files_kept, 1);
}
