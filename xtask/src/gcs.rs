//! `cargo xtask gcs`: `gs://` references against a real GCS emulator — `gcp-storage-emulator` (PyPI, pinned, in
//! `target/gcs/venv`) on loopback — with the real wandb 0.31.0 client beside our CLI, both through one
//! `dagster-wandb server` and `STORAGE_EMULATOR_HOST`:
//!
//! - the entries both record for a prefix are the same, but where the SDK's sibling-prefix bug records
//!   `images2/x.jpg` (under its basename and with the prefix as its ref);
//! - each side downloads what the other logged, byte for byte;
//! - a cache either side filled serves the other with the emulator stopped (so the `obj/etag/…` paths agree);
//! - an object overwritten since is refused, naming both ETags, with nothing written.
//!
//! The emulator's generations are nanoseconds, past 2⁵³: wandb-core (Go) carries `extra.versionID` as a float64,
//! so both sides' uploaded manifests hold it rounded, and both fall back to the latest generation when its ETag is
//! still the digest. Real GCS generations are microseconds and exact.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Result, ensure};
use serde_json::{Map, Value};

use crate::interop::WANDB_VERSION;
use crate::interop::wire::{API_KEY, Sides, json_tree, tree};
use crate::loopback::LoopbackService;
use crate::served_store::ServedStore;
use crate::{project_root, say};

/// The emulator, the client the seed script uses, and the SDK, pinned.
const PACKAGES: &[(&str, &str)] =
    &[("gcp-storage-emulator", "2026.7.19"), ("google-cloud-storage", "3.17.1"), ("wandb", WANDB_VERSION)];

fn start_emulator(python: &Path) -> Result<LoopbackService> {
    LoopbackService::start(
        &python.with_file_name("gcp-storage-emulator"),
        |port| ["start", "--host", "127.0.0.1", "--port", port, "--in-memory"].map(str::to_owned).to_vec(),
        Stdio::null(),
    )
}

/// `xtask/gcs/objects.py ARGS` against the emulator: every object's `[etag, generation]` by key.
fn objects(python: &Path, emulator: &LoopbackService, args: &[&str]) -> Result<Value> {
    let out = Command::new(python)
        .arg(project_root().join("xtask/gcs/objects.py"))
        .args(args)
        .env("STORAGE_EMULATOR_HOST", &emulator.url)
        .output()?;
    ensure!(out.status.success(), "objects.py {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Entries with `extra.versionID` as a float64, the precision wandb-core uploads it with (see the module docs).
fn as_uploaded(contents: &Value) -> Value {
    let mut contents = contents.as_object().cloned().unwrap_or_default();
    for entry in contents.values_mut().filter_map(Value::as_object_mut) {
        entry.remove("skip_cache");
        if let Some(version) = entry.get_mut("extra").and_then(|e| e.get_mut("versionID")) {
            *version = version.as_f64().map(Value::from).unwrap_or(Value::Null);
        }
    }
    Value::Object(contents)
}

pub(crate) fn run() -> Result<()> {
    let python = crate::venv::python("target/gcs/venv", PACKAGES)?;
    let cli = crate::cli_binary(false)?;
    let mut emulator = start_emulator(&python)?;
    let seeded = objects(&python, &emulator, &["seed"])?;
    ensure!(seeded.as_object().is_some_and(|o| o.len() == 5), "seeding the emulator: {seeded}");

    let work = project_root().join("target/gcs/work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let server = ServedStore::start(
        &cli,
        &work.join("store"),
        &["--api-key", API_KEY, "--default-entity", "ent"],
        Stdio::null(),
    )?;
    let extra_env = vec![("STORAGE_EMULATOR_HOST".to_owned(), emulator.url.clone())];
    let sides = Sides { python: &python, cli: &cli, work: work.clone(), url: server.url.clone(), extra_env };
    let root = |name: &str| work.join(name).to_string_lossy().into_owned();
    let images = crate::s3::images_tree();
    let mut checks = 0;

    // 1. The same entries for a prefix given without its slash, but the sibling the SDK takes in.
    let ours = sides.cli(&["put", "gs://wb-gcs/images", "--name", "rs-sib", "--type", "dataset"], "cache-put")?;
    let theirs = sides.python(&["log-ref", "gs://wb-gcs/images", "py-sib"], "cache-log")?;
    let mut theirs_without_sibling: Map<String, Value> =
        as_uploaded(&theirs["contents"]).as_object().cloned().unwrap_or_default();
    let sibling = theirs_without_sibling.remove("x.jpg");
    ensure!(
        sibling.as_ref().and_then(|s| s["ref"].as_str()) == Some("gs://wb-gcs/images"),
        "the SDK's sibling-prefix entry is not what the spec records: {sibling:?}"
    );
    let ours = as_uploaded(&ours["manifest"]["contents"]);
    ensure!(
        ours == Value::Object(theirs_without_sibling.clone()),
        "entries differ:\n  ours   {ours}\n  theirs {}",
        Value::Object(theirs_without_sibling)
    );
    checks += 1;

    // 2. Each side downloads what the other logged (with the slash: no sibling), byte for byte, from the emulator.
    sides.cli(&["put", "gs://wb-gcs/images/", "--name", "rs-imgs", "--type", "dataset"], "cache-put")?;
    sides.python(&["log-ref", "gs://wb-gcs/images/", "py-imgs"], "cache-log")?;
    let got = sides.python(&["get", "ent/proj/rs-imgs:latest", &root("py-got-rs")], "cache-py")?;
    ensure!(json_tree(&got) == images, "the SDK downloaded our artifact as {:?}", json_tree(&got));
    let got = sides.cli(&["get", "ent/proj/py-imgs:latest", "--root", &root("rs-got-py")], "cache-rs")?;
    ensure!(got["download"]["references"] == 4, "our download of the SDK's artifact: {}", got["download"]);
    let ours = tree(&work.join("rs-got-py"))?;
    ensure!(ours == images, "we downloaded the SDK's artifact as {ours:?}");
    checks += 2;

    // 3. An object overwritten since: refused with both ETags, nothing written (a fresh cache).
    let after = objects(&python, &emulator, &["put", "images/a.jpg", "changed!"])?;
    let new_etag = after["images/a.jpg"][0].as_str().unwrap_or_default().to_owned();
    let out = Command::new(&cli)
        .args(["artifact", "get", "ent/proj/rs-imgs:latest", "--root", &root("rs-changed")])
        .env("WANDB_BASE_URL", &server.url)
        .env("WANDB_API_KEY", API_KEY)
        .env("WANDB_CACHE_DIR", work.join("cache-changed"))
        .env("STORAGE_EMULATOR_HOST", &emulator.url)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("\"a.jpg\"") && err.contains(&new_etag),
        "the changed object's error: {err}"
    );
    ensure!(!work.join("rs-changed/a.jpg").exists(), "a changed object was written");
    checks += 1;

    // 4. With the emulator gone, each side's cache serves the other.
    emulator.stop();
    let got = sides.python(&["get", "ent/proj/py-imgs:latest", &root("py-from-rs-cache")], "cache-rs")?;
    ensure!(json_tree(&got) == images, "the SDK read our cache as {:?}", json_tree(&got));
    let got = sides.cli(&["get", "ent/proj/rs-imgs:latest", "--root", &root("rs-from-py-cache")], "cache-py")?;
    ensure!(got["download"]["from_cache"] == 4, "our download from the SDK's cache: {}", got["download"]);
    ensure!(tree(&work.join("rs-from-py-cache"))? == images, "our download from the SDK's cache differs");
    checks += 2;

    say(&format!("gcs: all {checks} checks passed against gcp-storage-emulator with wandb {WANDB_VERSION}"));
    Ok(())
}
