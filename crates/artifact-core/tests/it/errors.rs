//! Bad input: every case gets a clear error naming the value, and nothing is half-added.

use std::fs;

use artifact_core::{
    AddDirOptions, AddFileOptions, Artifact, Error, NewFileOptions, ReferenceOptions, parse_metadata_json,
};

#[test]
fn invalid_names_and_types() {
    let err = Artifact::new("my dataset", "dataset").unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }));
    assert!(err.to_string().ends_with("Invalid name: 'my dataset'"), "{err}");
    assert!(matches!(Artifact::new(&"n".repeat(129), "dataset").unwrap_err(), Error::NameTooLong { .. }));
    let err = Artifact::new("ok", "wandb-history").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Artifact type 'wandb-history' is reserved for internal use. Please use a different type."
    );
    let err = Artifact::new("ok", "a/b").unwrap_err();
    assert!(err.to_string().contains("'a/b'"), "{err}");
    assert!(matches!(Artifact::new("ok", "").unwrap_err(), Error::InvalidType { .. }));
}

#[test]
fn invalid_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.txt");
    fs::write(&file, "f").unwrap();
    let mut a = Artifact::new("paths", "dataset").unwrap();
    for bad in ["../escape.txt", "/abs.txt", ".", "a/../../b", "C:\\evil"] {
        let err = a.add_file(&file, AddFileOptions { name: Some(bad.into()), ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{bad}: {err}");
        assert!(err.to_string().contains(bad.replace('\\', "\\\\").as_str()), "{err}");
    }
    let err = a.add_dir(tmp.path(), AddDirOptions { name: Some("..".into()), ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
    assert!(a.new_file("../x", NewFileOptions::default()).is_err());
    assert!(a.manifest().is_empty(), "nothing was added");
}

#[test]
fn missing_files_and_wrong_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Artifact::new("missing", "dataset").unwrap();
    let missing = tmp.path().join("missing.txt");
    let err = a.add_file(&missing, AddFileOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), format!("Path is not a file: '{}'", missing.display()));
    let err = a.add_file(tmp.path(), AddFileOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotAFile { .. }));
    let err = a.add_dir(&missing, AddDirOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), format!("Path is not a directory: '{}'", missing.display()));
}

#[test]
fn duplicate_paths_leave_the_draft_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a.txt"), "one").unwrap();
    fs::write(dir.join("b.txt"), "two").unwrap();
    let other = tmp.path().join("other.txt");
    fs::write(&other, "different").unwrap();

    let mut a = Artifact::new("dups", "dataset").unwrap();
    a.add_file(&other, AddFileOptions { name: Some("b.txt".into()), ..Default::default() }).unwrap();
    let err = a.add_dir(&dir, AddDirOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "Cannot add the same path twice: 'b.txt'");
    assert_eq!(a.manifest().len(), 1, "a.txt was not added either");

    a.add_dir(&dir, AddDirOptions { overwrite: true, ..Default::default() }).unwrap();
    assert_eq!(a.manifest().len(), 2);
    assert_eq!(a.manifest().get("b.txt").unwrap().digest, artifact_core::md5_b64(b"two"));

    let err = a.new_file("a.txt", NewFileOptions::default()).unwrap_err();
    assert!(matches!(err, Error::FileExists { .. }), "{err}");
    let mut f = a.new_file("a.txt", NewFileOptions { overwrite: true }).unwrap();
    std::io::Write::write_all(&mut f, b"replaced").unwrap();
    f.close().unwrap();
    assert_eq!(a.manifest().get("a.txt").unwrap().digest, artifact_core::md5_b64(b"replaced"));
}

#[test]
fn invalid_metadata() {
    let mut a = Artifact::new("meta", "dataset").unwrap();
    assert!(matches!(a.set_metadata(serde_json::json!("text")), Err(Error::InvalidMetadata { .. })));
    let err = parse_metadata_json(r#"{"loss": Infinity}"#).unwrap_err();
    assert!(err.to_string().contains("Out of range float values are not JSON compliant: Infinity"), "{err}");
    let many = format!("{{{}}}", (0..101).map(|i| format!("\"k{i}\": {i}")).collect::<Vec<_>>().join(","));
    assert!(matches!(parse_metadata_json(&many), Err(Error::TooManyMetadataKeys { count: 101 })));
    let hundred = format!("{{{}}}", (0..100).map(|i| format!("\"k{i}\": {i}")).collect::<Vec<_>>().join(","));
    assert_eq!(parse_metadata_json(&hundred).unwrap().len(), 100);
}

#[test]
fn reference_errors_add_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Artifact::new("refs", "dataset").unwrap();
    let err = a.add_reference("relative/path.txt", ReferenceOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with("References must be URIs. To reference a local file, use file://"), "{err}");
    let err = a.add_reference("foo://bucket/x.bin", ReferenceOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "You must pass name=\"<entry_name>\" when tracking references with unknown schemes. ref: foo://bucket/x.bin"
    );
    let err = a.add_reference("https://example.com/x.bin", ReferenceOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ResolverRequired { ref scheme, .. } if scheme == "https"), "{err}");
    let missing = format!("file://{}/missing", tmp.path().display());
    let err = a.add_reference(&missing, ReferenceOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ReferenceNotFound { .. }) && err.to_string().contains("missing"), "{err}");

    for i in 0..3 {
        fs::write(tmp.path().join(format!("f{i}")), "x").unwrap();
    }
    let dir_uri = format!("file://{}", tmp.path().display());
    let err = a.add_reference(&dir_uri, ReferenceOptions { max_objects: Some(2), ..Default::default() }).unwrap_err();
    assert!(err.to_string().starts_with("Exceeded 2 objects tracked, pass max_objects to add_reference"), "{err}");
    assert!(a.manifest().is_empty());
    assert_eq!(
        a.add_reference(&dir_uri, ReferenceOptions { max_objects: Some(3), ..Default::default() }).unwrap().len(),
        3
    );
}
