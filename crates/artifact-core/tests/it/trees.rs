//! Digests of a tree with awkward names, checked against a preimage computed independently here.

use std::fs;
use std::path::Path;

use artifact_core::{AddDirOptions, Artifact};
use base64::Engine as _;
use md5::Digest as _;

/// Names that stress escaping and ordering: HTML-special characters (escaped by Go), non-ASCII (raw in Go,
/// `\u` in Python's json.dumps), U+2028, spaces and quotes, an empty file, and 40 levels of nesting.
fn build_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("<tag>&amp.txt".into(), b"html special\n".to_vec()),
        ("ünïcödé/日本語 ファイル.csv".into(), "a,b\n1,2\n".as_bytes().to_vec()),
        ("empty.bin".into(), Vec::new()),
        ("empty-dir-sibling/also-empty.txt".into(), Vec::new()),
        ("quote'\"name.txt".into(), b"q".to_vec()),
        ("line\u{2028}sep.txt".into(), b"ls".to_vec()),
        ("Zebra.txt".into(), b"upper before lower".to_vec()),
        ("a.txt".into(), b"a".to_vec()),
        ("a/b.txt".into(), b"ab".to_vec()),
        ("a-b.txt".into(), b"a-b".to_vec()),
        ("😀/emoji.txt".into(), b"astral plane".to_vec()),
    ];
    let deep: String = (0..40).map(|i| format!("d{i}/")).collect();
    files.push((format!("{deep}leaf.txt"), vec![0xffu8; 4097]));
    for (relative, bytes) in &files {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
    }
    // An empty directory contributes nothing, as in the SDK.
    fs::create_dir_all(root.join("nothing/here")).unwrap();
    files
}

/// The §2.2 preimage, built without the crate: code-point order (Python's), `{path}:{b64 md5}\n` lines.
fn independent_digest(files: &[(String, Vec<u8>)], prefix: &str) -> String {
    let mut lines: Vec<(String, String)> = files
        .iter()
        .map(|(path, bytes)| {
            let digest = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes));
            (format!("{prefix}{path}"), digest)
        })
        .collect();
    lines.sort_by(|a, b| a.0.chars().cmp(b.0.chars()));
    let mut preimage = String::from("wandb-artifact-manifest-v1\n");
    for (path, digest) in &lines {
        preimage.push_str(&format!("{path}:{digest}\n"));
    }
    let hash = md5::Md5::digest(preimage.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn awkward_tree_digest_matches_independent_preimage() {
    let tmp = tempfile::tempdir().unwrap();
    let files = build_tree(tmp.path());
    let mut a = Artifact::new("awkward", "dataset").unwrap();
    let report = a.add_dir(tmp.path(), AddDirOptions::default()).unwrap();
    assert_eq!(report.files, files.len());
    assert_eq!(a.manifest().len(), files.len());
    assert_eq!(a.digest(), independent_digest(&files, ""));
    assert_eq!(a.manifest().get("empty.bin").unwrap().digest, artifact_core::EMPTY_MD5_B64);
    assert_eq!(a.manifest().get("empty.bin").unwrap().size, Some(0));

    let mut prefixed = Artifact::new("awkward", "dataset").unwrap();
    prefixed.add_dir(tmp.path(), AddDirOptions { name: Some("pre/fix".into()), ..Default::default() }).unwrap();
    assert_eq!(prefixed.digest(), independent_digest(&files, "pre/fix/"));
}

#[test]
fn awkward_tree_serialises_with_go_escaping() {
    let tmp = tempfile::tempdir().unwrap();
    build_tree(tmp.path());
    let mut a = Artifact::new("awkward", "dataset").unwrap();
    a.add_dir(tmp.path(), AddDirOptions::default()).unwrap();
    let json = String::from_utf8(a.manifest().to_go_json()).unwrap();
    assert!(json.contains(r#""\u003ctag\u003e\u0026amp.txt":{"digest":"#), "{json}");
    assert!(json.contains(r#""ünïcödé/日本語 ファイル.csv""#));
    assert!(json.contains(r#""line\u2028sep.txt""#));
    assert!(json.contains(r#""quote'\"name.txt""#));
    assert!(json.contains(r#""empty.bin":{"digest":"1B2M2Y8AsgTpgAmY7PhCfg==","size":0,"local_path":"#));
    // Keys are in byte order: uppercase before lowercase, '-' (0x2d) before '/' (0x2f) before '<' (0x3c).
    let order: Vec<usize> = ["\"Zebra.txt\"", "\"a-b.txt\"", "\"a.txt\"", "\"a/b.txt\"", "\"empty-dir-sibling"]
        .iter()
        .map(|k| json.find(k).unwrap_or_else(|| panic!("{k} missing")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // Parsing our own output gives back the same manifest.
    assert_eq!(&artifact_core::Manifest::from_json(json.as_bytes()).unwrap(), a.manifest());
}

#[cfg(unix)]
#[test]
fn add_dir_follows_directory_links_like_os_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("x.txt"), "x").unwrap();
    fs::write(root.join("own.txt"), "own").unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
    let mut a = Artifact::new("links", "dataset").unwrap();
    a.add_dir(&root, AddDirOptions::default()).unwrap();
    let paths: Vec<&str> = a.manifest().entries().map(|(p, _)| p).collect();
    assert_eq!(paths, ["linked/x.txt", "own.txt"]);
    // The entry records where the file was read, through the link.
    assert_eq!(
        a.manifest().get("linked/x.txt").unwrap().local_path.as_deref(),
        Some(root.join("linked/x.txt").as_path())
    );
}
