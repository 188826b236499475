//! Manifests and digests against the real `wandb` Python SDK.
//!
//! Trees with
//! awkward names (HTML-special characters, non-ASCII, U+2028, quotes, empty files, deep nesting, symlinked
//! directories) are built in a scratch directory; the SDK builds artifacts from them offline
//! (`xtask/interop/manifests.py`), and so do our CLI (`artifact put --dry-run --json`) and `artifact-core`
//! directly. Digests and entries must be equal. In the other direction, the SDK parses the Go-dialect manifest we
//! write and must compute our digest.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, ensure};
use artifact_core::{AddDirOptions, Artifact, DigestAlgorithm, NewFileOptions, ReferenceOptions};
use serde_json::{Value, json};

use super::{Comparisons, WANDB_VERSION};
use crate::project_root;

pub(crate) fn run(python: &Path, cli: &Path, results: &mut Comparisons) -> Result<()> {
    let work = project_root().join("target/interop/work/manifests");
    let _ = fs::remove_dir_all(&work);
    let awkward = build_awkward_tree(&work.join("awkward"))?;
    let linked = build_linked_tree(&work.join("linked"))?;
    let single = write(&work.join("single/model.pt"), &(0..100_000u32).map(|i| (i % 241) as u8).collect::<Vec<_>>())?;

    // 1. The CLI against the SDK, for the things the CLI can do.
    let cli_cases: Vec<(&str, Vec<&str>, Value)> = vec![
        ("add_dir, awkward names", vec![path_str(&awkward)], json!({"calls": [{"call": "add_dir", "path": awkward}]})),
        (
            "add_dir with a name prefix",
            vec![path_str(&awkward), "--prefix", "data/v1"],
            json!({"calls": [{"call": "add_dir", "path": awkward, "name": "data/v1"}]}),
        ),
        (
            "add_dir, XXH128",
            vec![path_str(&awkward), "--digest", "xxh128"],
            json!({"algorithm": "XXH128", "calls": [{"call": "add_dir", "path": awkward}]}),
        ),
        (
            "add_dir through a symlinked directory",
            vec![path_str(&linked)],
            json!({"calls": [{"call": "add_dir", "path": linked}]}),
        ),
        (
            "add_file with a prefix",
            vec![path_str(&single), "--prefix", "weights"],
            json!({"calls": [{"call": "add_file", "path": single, "name": "weights/model.pt"}]}),
        ),
    ];
    let mut scenarios = Vec::new();
    let mut ours = Vec::new();
    let mut go_manifests: Vec<(String, Value)> = Vec::new();
    for (label, args, mut scenario) in cli_cases {
        scenario["name"] = json!("interop");
        scenario["type"] = json!("dataset");
        let algorithm = scenario.get("algorithm").cloned().unwrap_or(json!("MD5"));
        scenarios.push(scenario);
        let out = Command::new(cli)
            .args(["artifact", "put"])
            .args(&args)
            .args(["--name", "interop", "--type", "dataset", "--dry-run", "--json"])
            .env("WANDB_CACHE_DIR", work.join("cache"))
            .output()?;
        ensure!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        let value: Value = serde_json::from_slice(&out.stdout)?;
        go_manifests.push((serde_json::to_string(&value["manifest"])?, algorithm));
        let manifest = artifact_core::Manifest::from_json(serde_json::to_string(&value["manifest"])?.as_bytes())?;
        ours.push((
            label.to_owned(),
            json!({"digest": value["digest"], "contents": manifest.to_python_json()["contents"]}),
        ));
    }

    // 2. artifact-core directly, for new_file and references.
    let library = library_scenarios(&awkward, &single)?;
    for (label, scenario, artifact) in &library {
        scenarios.push(scenario.clone());
        ours.push((
            label.clone(),
            json!({"digest": artifact.digest(), "contents": artifact.manifest().to_python_json()["contents"]}),
        ));
    }

    // 3. The SDK reads the manifests we write.
    for (i, (manifest, algorithm)) in go_manifests.iter().enumerate() {
        scenarios.push(json!({"parse": manifest, "algorithm": algorithm}));
        let label = format!("wandb parses our Go manifest of \"{}\"", ours[i].0);
        ours.push((label, ours[i].1.clone()));
    }

    let theirs = super::run_script(python, "manifests.py", &serde_json::to_vec(&scenarios)?)?;
    ensure!(theirs.len() == ours.len(), "the SDK answered {} of {} scenarios", theirs.len(), ours.len());
    for ((label, ours), theirs) in ours.iter().zip(&theirs) {
        let same = ours["digest"] == theirs["digest"] && ours["contents"] == theirs["contents"];
        results.record(&format!("wandb {WANDB_VERSION}: {label}"), same, || format!("ours: {ours}\n  wandb: {theirs}"));
    }
    Ok(())
}

fn library_scenarios(awkward: &Path, single: &Path) -> Result<Vec<(String, Value, Artifact)>> {
    let mut out = Vec::new();

    let mut a = Artifact::new("interop", "dataset")?;
    let mut f = a.new_file("notes/ファイル <1>.txt", NewFileOptions::default())?;
    f.write_all(b"written via new_file\n")?;
    f.close()?;
    a.add_file(single, artifact_core::AddFileOptions { name: Some("m/model.pt".into()), ..Default::default() })?;
    let calls = json!([
        {"call": "new_file", "name": "notes/ファイル <1>.txt", "hex": hex(b"written via new_file\n")},
        {"call": "add_file", "path": single, "name": "m/model.pt"},
    ]);
    out.push(("new_file and add_file".to_owned(), json!({"name": "interop", "type": "dataset", "calls": calls}), a));

    for checksum in [true, false] {
        let mut a = Artifact::new("interop", "dataset")?;
        let dir_uri = format!("file://{}", awkward.display());
        let file_uri = format!("file://{}/ünïcödé/日本語 ファイル.csv", awkward.display());
        let opts = |name: Option<&str>| ReferenceOptions { name: name.map(str::to_owned), checksum, max_objects: None };
        a.add_reference(&dir_uri, opts(Some("refs")))?;
        a.add_reference(&file_uri, opts(None))?;
        a.add_reference("foo://bucket/x.bin", opts(Some("tracked/x.bin")))?;
        a.add_reference("https://example.com/data/x.csv?sig=1", ReferenceOptions { checksum: false, ..opts(None) })?;
        let calls = json!([
            {"call": "add_reference", "uri": dir_uri, "name": "refs", "checksum": checksum},
            {"call": "add_reference", "uri": file_uri, "checksum": checksum},
            {"call": "add_reference", "uri": "foo://bucket/x.bin", "name": "tracked/x.bin", "checksum": checksum},
            {"call": "add_reference", "uri": "https://example.com/data/x.csv?sig=1", "checksum": false},
        ]);
        out.push((
            format!("file:// references, checksum={checksum}"),
            json!({"name": "interop", "type": "dataset", "calls": calls}),
            a,
        ));
    }

    let mut a = Artifact::new("interop", "dataset")?;
    a.set_digest_algorithm(DigestAlgorithm::Xxh128)?;
    a.add_dir(awkward, AddDirOptions::default())?;
    let reference = ReferenceOptions { name: Some("ref/empty.bin".into()), ..Default::default() };
    a.add_reference(&format!("file://{}/empty.bin", awkward.display()), reference)?;
    let calls = json!([
        {"call": "add_dir", "path": awkward},
        {"call": "add_reference", "uri": format!("file://{}/empty.bin", awkward.display()), "name": "ref/empty.bin"},
    ]);
    out.push((
        "XXH128 with an MD5 file:// reference".to_owned(),
        json!({"name": "interop", "type": "dataset", "algorithm": "XXH128", "calls": calls}),
        a,
    ));
    Ok(out)
}

fn build_awkward_tree(root: &Path) -> Result<PathBuf> {
    let deep: String = (0..40).map(|i| format!("d{i}/")).collect();
    let files: Vec<(String, Vec<u8>)> = vec![
        ("<tag>&amp.txt".into(), b"html special\n".to_vec()),
        ("ünïcödé/日本語 ファイル.csv".into(), "a,b\n1,2\n".as_bytes().to_vec()),
        ("empty.bin".into(), Vec::new()),
        ("quote'\"name.txt".into(), b"q".to_vec()),
        ("line\u{2028}sep.txt".into(), b"ls".to_vec()),
        ("tab\tname.txt".into(), b"tab".to_vec()),
        ("Zebra.txt".into(), b"upper before lower".to_vec()),
        ("a-b.txt".into(), b"a-b".to_vec()),
        ("a/b.txt".into(), b"ab".to_vec()),
        ("😀/emoji.txt".into(), b"astral plane".to_vec()),
        (format!("{deep}leaf.txt"), vec![0xffu8; 70_000]),
    ];
    for (relative, bytes) in &files {
        write(&root.join(relative), bytes)?;
    }
    fs::create_dir_all(root.join("empty-dir"))?;
    Ok(root.to_path_buf())
}

fn build_linked_tree(root: &Path) -> Result<PathBuf> {
    write(&root.join("tree/own.txt"), b"own")?;
    write(&root.join("outside/x.txt"), b"through the link")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("outside"), root.join("tree/linked"))?;
    Ok(root.join("tree"))
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(path.parent().expect("has a parent"))?;
    fs::write(path, bytes)?;
    Ok(path.to_path_buf())
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
