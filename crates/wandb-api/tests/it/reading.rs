//! The blocking face's reading helpers: `verify`, `checkout`, a download by path prefix, `get_entry`.

use std::fs;

use artifact_core::{AddDirOptions, Artifact};
use wandb_api::{Api, Error, Settings};

use crate::support::tree;

fn logged(dir: &std::path::Path) -> (Api, wandb_api::ArtifactHandle) {
    let api = Api::new(Settings::embedded(dir.join("store")).with_cache_dir(None)).unwrap();
    let data = dir.join("data");
    for (name, body) in [("a.txt", &b"alpha"[..]), ("img/1.png", b"one"), ("img/2.png", b"two")] {
        fs::create_dir_all(data.join(name).parent().unwrap()).unwrap();
        fs::write(data.join(name), body).unwrap();
    }
    let mut artifact = Artifact::new("ds", "dataset").unwrap();
    artifact.add_dir(&data, AddDirOptions::default()).unwrap();
    let run = api.init(wandb_api::RunSettings::new("proj").entity("ent")).unwrap();
    run.log_artifact(&artifact, &[]).unwrap();
    run.finish().unwrap();
    let handle = api.artifact("ent/proj/ds:v0").unwrap();
    (api, handle)
}

#[test]
fn verify_names_missing_changed_and_extra_files_and_checkout_repairs_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_api, handle) = logged(dir.path());
    let root = dir.path().join("work");
    handle.download_to(root.clone()).unwrap();
    let report = handle.verify(&root).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.verified, 3);

    fs::write(root.join("a.txt"), b"ALPHA").unwrap();
    fs::remove_file(root.join("img/1.png")).unwrap();
    fs::create_dir_all(root.join("scratch")).unwrap();
    fs::write(root.join("scratch/notes.txt"), b"mine").unwrap();
    let report = handle.verify(&root).unwrap();
    assert!(!report.is_clean());
    assert_eq!(
        (report.changed.clone(), report.missing.clone(), report.extra.clone()),
        (vec!["a.txt".to_owned()], vec!["img/1.png".to_owned()], vec!["scratch/notes.txt".to_owned()])
    );

    let removed = handle.checkout(&root).unwrap();
    assert_eq!(removed, ["scratch/notes.txt"]);
    assert!(!root.join("scratch").exists(), "emptied directories go too");
    assert!(handle.verify(&root).unwrap().is_clean());
    assert_eq!(tree(&root), tree(&dir.path().join("data")));
}

#[test]
fn a_prefix_downloads_that_part_only_and_get_entry_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (_api, handle) = logged(dir.path());
    let root = dir.path().join("images");
    let report = handle.download_prefix("img/", &root).unwrap();
    assert_eq!(report.files, 2);
    let names: Vec<String> = tree(&root).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, ["img/1.png", "img/2.png"]);
    assert!(matches!(handle.download_prefix("nothing/", &root), Err(Error::NoSuchPath { .. })));

    assert_eq!(handle.get_entry("a.txt").unwrap().size, Some(5));
    let err = handle.get_entry("b.txt").unwrap_err();
    assert!(err.to_string().contains("b.txt"), "{err}");
}
