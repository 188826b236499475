//! Every vector in `testdata/wandb-0.31.0/manifest` and the offline S3 ones, reproduced.

use std::io::Write;

use artifact_core::{
    AddDirOptions, AddFileOptions, Artifact, DigestAlgorithm, Manifest, NewFileOptions, ReferenceOptions,
};
use serde_json::Value;

use crate::support::{fixture_root, load_vector};

fn variant<'a>(vector: &'a Value, name: &str) -> &'a Value {
    &vector["variants"][name]
}

/// Asserts that `artifact` matches a vector variant: the manifest as a map, the digest, the preimage-derived
/// digest, the size, and the fields the SDK does not serialise (`skip_cache`, whether `local_path` is set).
fn assert_matches(artifact: &Artifact, expected: &Value) {
    assert_eq!(artifact.manifest().to_python_json(), expected["manifest_json"], "manifest");
    assert_eq!(artifact.digest(), expected["artifact_digest"].as_str().unwrap(), "artifact digest");
    assert_eq!(artifact.size(), expected["artifact_size"].as_u64().unwrap(), "artifact size");
    let algorithm = match expected["digest_algorithm"].as_str().unwrap() {
        "MANIFEST_XXH128" => DigestAlgorithm::Xxh128,
        _ => DigestAlgorithm::Md5,
    };
    let preimage = expected["artifact_digest_preimage"].as_str().unwrap();
    let mut hasher = algorithm.hasher();
    hasher.update(preimage.as_bytes());
    assert_eq!(hasher.finalize_hex(), artifact.digest(), "digest of the vector's preimage");
    for (path, internal) in expected["entries_internal"].as_object().unwrap() {
        let entry = artifact.manifest().get(path).unwrap_or_else(|| panic!("missing entry {path}"));
        assert_eq!(entry.skip_cache, internal["skip_cache"].as_bool().unwrap(), "skip_cache of {path}");
        assert_eq!(
            entry.local_path.is_some(),
            internal["local_path_is_set"].as_bool().unwrap(),
            "local_path of {path}"
        );
    }
}

#[test]
fn case1_add_dir_root() {
    let vector = load_vector("manifest/case1_add_dir.json");
    let mut a = Artifact::new("vec-dir", "dataset").unwrap();
    a.add_dir(fixture_root().join("dataset"), AddDirOptions::default()).unwrap();
    assert_matches(&a, variant(&vector, "add_dir_root"));
}

#[test]
fn case1_add_dir_name_prefix() {
    let vector = load_vector("manifest/case1_add_dir.json");
    let mut a = Artifact::new("vec-dir-prefixed", "dataset").unwrap();
    a.add_dir(fixture_root().join("dataset"), AddDirOptions { name: Some("data/v1".into()), ..Default::default() })
        .unwrap();
    assert_matches(&a, variant(&vector, "add_dir_name_prefix"));
}

#[test]
fn case1_add_dir_xxh128() {
    let vector = load_vector("manifest/case1_add_dir.json");
    let mut a = Artifact::new("vec-dir-xxh", "dataset").unwrap();
    a.set_digest_algorithm(DigestAlgorithm::Xxh128).unwrap();
    a.add_dir(fixture_root().join("dataset"), AddDirOptions::default()).unwrap();
    assert_matches(&a, variant(&vector, "add_dir_xxh128"));
}

#[test]
fn case2_add_file_renamed() {
    let vector = load_vector("manifest/case2_add_file_rename.json");
    let mut a = Artifact::new("vec-file", "model").unwrap();
    let opts = AddFileOptions { name: Some("weights/renamed.pt".into()), ..Default::default() };
    a.add_file(fixture_root().join("single/model.pt"), opts).unwrap();
    assert_matches(&a, variant(&vector, "add_file_renamed"));
}

#[test]
fn case2_add_file_default_name_plus_new_file() {
    let vector = load_vector("manifest/case2_add_file_rename.json");
    let mut a = Artifact::new("vec-file-default", "model").unwrap();
    a.add_file(fixture_root().join("single/model.pt"), AddFileOptions::default()).unwrap();
    let mut f = a.new_file("notes/info.txt", NewFileOptions::default()).unwrap();
    f.write_all(b"written via new_file\n").unwrap();
    f.close().unwrap();
    assert_matches(&a, variant(&vector, "add_file_default_name_plus_new_file"));
}

#[test]
fn case2_duplicate_path_behaviour() {
    let vector = load_vector("manifest/case2_add_file_rename.json");
    let expected = variant(&vector, "duplicate_path_behaviour");
    let mut a = Artifact::new("vec-dup", "model").unwrap();
    let named = || AddFileOptions { name: Some("m.pt".into()), ..Default::default() };
    a.add_file(fixture_root().join("single/model.pt"), named()).unwrap();
    a.add_file(fixture_root().join("single/model.pt"), named()).unwrap();
    let err = a.add_file(fixture_root().join("refs/one.txt"), named()).unwrap_err();
    assert_eq!(err.to_string(), expected["error_message"].as_str().unwrap());
    assert_matches(&a, expected);
}

fn reference_variant(name: &str, checksum: bool) {
    let vector = load_vector("manifest/case3_file_reference.json");
    let root = fixture_root();
    let mut a = Artifact::new(if checksum { "vec-ref-cs" } else { "vec-ref-nocs" }, "dataset").unwrap();
    let uri = |p: &str| format!("file://{}/{p}", root.display());
    let opts = |name: Option<&str>| ReferenceOptions { name: name.map(str::to_owned), checksum, max_objects: None };
    a.add_reference(&uri("refs/one.txt"), opts(None)).unwrap();
    a.add_reference(&uri("refs/dir"), opts(Some("refdir"))).unwrap();
    a.add_reference(&uri("refs/one.txt"), opts(Some("renamed/one.txt"))).unwrap();
    assert_matches(&a, variant(&vector, name));
}

#[test]
fn case3_file_references_with_checksum() {
    reference_variant("file_ref_checksum_True", true);
}

#[test]
fn case3_file_references_without_checksum() {
    reference_variant("file_ref_checksum_False", false);
}

#[test]
fn case3_unknown_scheme_reference() {
    let vector = load_vector("manifest/case3_file_reference.json");
    let mut a = Artifact::new("vec-ref-unknown", "dataset").unwrap();
    let opts = ReferenceOptions { name: Some("x.bin".into()), ..Default::default() };
    let paths = a.add_reference("foo://bucket/path/x.bin", opts).unwrap();
    assert_eq!(paths.iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["x.bin"]);
    assert_matches(&a, variant(&vector, "unknown_scheme_reference"));
}

/// The uploaded manifest of `wandb-wire/base.jsonl`, rebuilt from the same inputs and with the two fields only
/// the uploader's machine and the server know (staging paths, birth artifact id) set as they were.
#[test]
fn uploaded_manifest_is_byte_exact() {
    let expected =
        std::fs::read(crate::support::vectors_dir().join("manifest/uploaded_wandb_manifest.example.json")).unwrap();
    let uploaded = Manifest::from_json(&expected).unwrap();
    let root = fixture_root();
    let mut a = Artifact::new("my-ds", "dataset").unwrap();
    a.add_dir(root.join("dataset"), AddDirOptions::default()).unwrap();
    let opts = ReferenceOptions { name: Some("ref/readme".into()), checksum: false, max_objects: None };
    a.add_reference(&format!("file://{}/dataset/README.md", root.display()), opts).unwrap();

    let mut manifest = a.manifest().clone();
    for (path, entry) in manifest.entries_mut() {
        let original = uploaded.get(path).unwrap_or_else(|| panic!("{path} not in the uploaded manifest"));
        assert_eq!(entry.digest, original.digest, "digest of {path}");
        assert_eq!(entry.reference, original.reference, "ref of {path}");
        assert_eq!(entry.size, original.size, "size of {path}");
        entry.local_path = original.local_path.clone();
        entry.birth_artifact_id = original.birth_artifact_id.clone();
    }
    assert_eq!(manifest.len(), uploaded.len());
    assert_eq!(String::from_utf8(manifest.to_go_json()).unwrap(), String::from_utf8(expected.clone()).unwrap());
    assert_eq!(artifact_core::md5_b64(&expected), "hC2W/ADh2RcKeXEorUu/6w==");
}

#[test]
fn both_dialects_parse_to_the_same_entries() {
    let go =
        std::fs::read(crate::support::vectors_dir().join("manifest/uploaded_wandb_manifest.example.json")).unwrap();
    let parsed = Manifest::from_json(&go).unwrap();
    assert_eq!(parsed.to_go_json(), go, "Go dialect round-trips byte for byte");
    assert_eq!(parsed.get("README.md").unwrap().birth_artifact_id.as_deref(), Some("QXJ0aWZhY3Q6NDI0Mg=="));

    let vector = load_vector("manifest/case1_add_dir.json");
    for (name, v) in vector["variants"].as_object().unwrap() {
        let python = Manifest::from_json(v["manifest_json_dumps"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(python.to_python_json(), v["manifest_json"], "{name}");
        assert_eq!(python.digest(), v["artifact_digest"].as_str().unwrap(), "{name}: digest with inferred algorithm");
    }
}

#[test]
fn s3_references_without_checksum_need_no_network() {
    for case in [
        "prefix_nochecksum",
        "prefix_nochecksum_named",
        "single_object_nochecksum",
        "versioned_explicit_old_nochecksum",
    ] {
        let vector = load_vector(&format!("s3-references/{case}.json"));
        let call = &vector["call"];
        let mut a = Artifact::new("s3-refs", "dataset").unwrap();
        let opts = ReferenceOptions {
            name: call["name"].as_str().map(str::to_owned),
            checksum: call["checksum"].as_bool().unwrap_or(true),
            max_objects: None,
        };
        let paths = a.add_reference(call["uri"].as_str().unwrap(), opts).unwrap();
        let returned: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
        let expected: Vec<&str> =
            vector["returned_paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert_eq!(returned, expected, "{case}");
        assert_eq!(a.manifest().to_python_json(), vector["manifest"], "{case}");
        if let Some(digest) = vector["artifact_digest"].as_str() {
            assert_eq!(a.digest(), digest, "{case}");
        }
    }
}
