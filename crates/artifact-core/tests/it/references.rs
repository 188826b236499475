//! `file://` references and the resolver extension point.

use std::fs;

use artifact_core::{
    Artifact, ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri, path_to_file_uri,
};

#[test]
fn directory_reference_skips_linked_directories_and_keeps_raw_refs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data set");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("a.txt"), "a").unwrap();
    fs::write(dir.join("sub/b.txt"), "bb").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("sub"), dir.join("linked-sub")).unwrap();
    let uri = format!("file://{}/", dir.display());
    let mut a = Artifact::new("refs", "dataset").unwrap();
    let paths = a.add_reference(&uri, ReferenceOptions { name: Some("ds".into()), ..Default::default() }).unwrap();
    let paths: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
    assert_eq!(paths, ["ds/a.txt", "ds/sub/b.txt"]);
    let b = a.manifest().get("ds/sub/b.txt").unwrap();
    // The ref is the URI as given (no percent-encoding) joined with the relative path, as os.path.join does.
    assert_eq!(b.reference.as_deref(), Some(format!("file://{}/sub/b.txt", dir.display()).as_str()));
    assert_eq!((b.size, b.digest.as_str()), (Some(2), artifact_core::md5_b64(b"bb").as_str()));
    assert!(b.local_path.is_none(), "references are not uploaded");

    let mut unchecked = Artifact::new("refs", "dataset").unwrap();
    unchecked.add_reference(&uri, ReferenceOptions { checksum: false, ..Default::default() }).unwrap();
    let a_entry = unchecked.manifest().get("a.txt").unwrap();
    let resolved = fs::canonicalize(dir.join("a.txt")).unwrap();
    // The URI used for the digest is percent-encoded (`Path.as_uri()`), unlike the ref.
    assert!(path_to_file_uri(&resolved).contains("data%20set"));
    assert_eq!(a_entry.digest, artifact_core::md5_b64(path_to_file_uri(&resolved).as_bytes()));
    assert_eq!(a_entry.size, Some(1));
}

#[test]
fn xxh128_artifacts_keep_md5_file_references() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("one.txt");
    fs::write(&file, "reference target one\n").unwrap();
    let mut a = Artifact::new("refs", "dataset").unwrap();
    a.set_digest_algorithm(artifact_core::DigestAlgorithm::Xxh128).unwrap();
    a.add_reference(&format!("file://{}", file.display()), ReferenceOptions::default()).unwrap();
    let entry = a.manifest().get("one.txt").unwrap();
    assert_eq!(entry.digest, "4yjTxE+l1qgFlR0VBll4Pw==");
    assert!(entry.extra.is_empty(), "no alg tag on MD5 entries");
}

/// A resolver for a made-up scheme, standing in for the network-backed ones in other crates.
struct MemoryResolver;

impl ReferenceResolver for MemoryResolver {
    fn handles(&self, uri: &SplitUri<'_>) -> bool {
        uri.scheme == "mem" || uri.scheme == "https"
    }

    fn resolve(&self, uri: &str, options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        if uri.ends_with("/fail") {
            return Err(artifact_core::Error::Reference { uri: uri.into(), source: "server said no".into() });
        }
        Ok(vec![artifact_core::http_reference_entry(uri, options.name.as_deref(), Some("\"etag-1\""), Some(5))?])
    }
}

#[test]
fn resolvers_handle_network_schemes() {
    let mut a = Artifact::new("refs", "dataset").unwrap();
    let paths = a
        .add_reference_with("https://example.com/d/x.bin", ReferenceOptions::default(), Some(&MemoryResolver))
        .unwrap();
    assert_eq!(paths[0].as_str(), "x.bin");
    assert_eq!(
        a.manifest().get("x.bin").unwrap(),
        &ManifestEntry {
            digest: "etag-1".into(),
            reference: Some("https://example.com/d/x.bin".into()),
            size: Some(5),
            extra: serde_json::json!({"etag": "\"etag-1\""}).as_object().unwrap().clone(),
            ..Default::default()
        }
    );
    // A scheme the resolver claims is resolved by it even though the core would only track it.
    a.add_reference_with("mem://bucket/y", ReferenceOptions::default(), Some(&MemoryResolver)).unwrap();
    assert!(a.manifest().get("y").is_some());
    let err =
        a.add_reference_with("mem://bucket/fail", ReferenceOptions::default(), Some(&MemoryResolver)).unwrap_err();
    assert_eq!(err.to_string(), "cannot resolve reference mem://bucket/fail: server said no");
    // checksum = false never needs a resolver.
    a.add_reference("http://example.com/raw.csv", ReferenceOptions { checksum: false, ..Default::default() }).unwrap();
    assert_eq!(a.manifest().get("raw.csv").unwrap().digest, "http://example.com/raw.csv");
}
