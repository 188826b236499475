//! After logging, against the real `wandb` 0.31.0 client on `dagster-wandb server`: what one side changes on a
//! version (aliases, tags, description, metadata, TTL), deletes or unlinks, the other sees; collections edited in
//! Python read back in our CLI; `artifact_versions`, `artifact_exists`, `artifact_collection_exists` and
//! `run.logged_artifacts()` answer as they should.

use std::process::{Command, Stdio};

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use super::Comparisons;
use super::wire::{API_KEY, Sides};

/// `dagster-wandb ARGS --json`: what it printed.
fn cli_json(sides: &Sides<'_>, args: &[&str]) -> Result<Value> {
    let mut command = Command::new(sides.cli);
    command.args(args).arg("--json").stdout(Stdio::piped()).stderr(Stdio::piped());
    sides.env(&mut command, "cache-cli-edits");
    let out = command.output()?;
    ensure!(out.status.success(), "dagster-wandb {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `dagster-wandb artifact ARGS` that must fail: its stderr.
fn cli_refused(sides: &Sides<'_>, args: &[&str]) -> Result<String> {
    let mut command = Command::new(sides.cli);
    command.arg("artifact").args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    sides.env(&mut command, "cache-cli-edits");
    let out = command.output()?;
    ensure!(!out.status.success(), "dagster-wandb artifact {} should have failed", args.join(" "));
    Ok(String::from_utf8(out.stderr)?)
}

pub(crate) fn run(sides: &Sides<'_>, results: &mut Comparisons) -> Result<()> {
    let work = sides.work.join("edits");
    let dir = |name: &str, body: &str| -> Result<String> {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("a.txt"), body)?;
        Ok(dir.to_string_lossy().into_owned())
    };
    let cli = |args: &[&str]| sides.cli(args, "cache-cli-edits");
    let python = |args: &[&str]| sides.python(args, "cache-py-edits");
    for (version, body) in [("v0", "zero"), ("v1", "one")] {
        let put = cli(&["put", &dir(version, body)?, "--name", "ent/proj/edits", "--type", "model"])?;
        ensure!(put["version"] == version, "unexpected put {put}");
    }

    // Python edits v0 and saves; our CLI reads every field.
    let spec = json!({"add_aliases": ["production"], "tags": ["gold"], "description": "from python",
                      "metadata": {"acc": 0.9}, "ttl": 30 * 86_400});
    let edited = python(&["edit", "ent/proj/edits:v0", &spec.to_string()])?;
    let ours = cli(&["get", "ent/proj/edits:production", "--root", &work.join("g0").to_string_lossy()])?;
    results.record(
        "edits: Python adds an alias, tags, description, metadata and a TTL; our CLI reads each",
        ours["version"] == "v0"
            && ours["aliases"] == json!(["production"])
            && ours["tags"] == json!(["gold"])
            && ours["description"] == "from python"
            && ours["metadata"] == json!({"acc": 0.9})
            && ours["ttl"] == json!({"seconds": 30 * 86_400})
            && edited["ttl"] == 30 * 86_400,
        || format!("python saved {edited}\n  ours {ours}"),
    );

    // Our CLI edits v1; the alias moves off v0, and Python reads every field.
    cli(&[
        "edit",
        "ent/proj/edits:v1",
        "--add-alias",
        "production",
        "--tag",
        "silver",
        "--description",
        "from rust",
        "--metadata",
        r#"{"acc": 0.95}"#,
        "--ttl",
        "7d",
    ])?;
    let v1 = python(&["show", "ent/proj/edits:v1"])?;
    let v0 = python(&["show", "ent/proj/edits:v0"])?;
    results.record(
        "edits: our CLI moves the alias and sets tags, description, metadata and TTL; Python reads each",
        v1["aliases"] == json!(["latest", "production"])
            && v1["tags"] == json!(["silver"])
            && v1["description"] == "from rust"
            && v1["metadata"] == json!({"acc": 0.95})
            && v1["ttl"] == 7 * 86_400
            && v0["aliases"] == json!([]),
        || format!("v1 {v1}\n  v0 {v0}"),
    );
    let library =
        wandb_api::Api::new(wandb_api::Settings::server(&sides.url, Some(API_KEY.to_owned())).with_cache_dir(None))?;
    let handle = library.artifact("ent/proj/edits:production")?;
    results.record(
        "edits: our library resolves the moved alias and reads the TTL",
        handle.version().version_index == 1 && handle.version().ttl == wandb_api::Ttl::Seconds(7 * 86_400),
        || format!("{:?}", handle.version()),
    );

    // Python's delete is refused while the version holds an alias, then deletes it with delete_aliases.
    let refused = python(&["delete", "ent/proj/edits:v1", "0"])?;
    let deleted = python(&["delete", "ent/proj/edits:v1", "1"])?;
    let latest = cli(&["get", "ent/proj/edits:latest", "--root", &work.join("g1").to_string_lossy()])?;
    let versions = python(&["versions", "ent/proj/edits", "model"])?;
    let gone = cli_refused(sides, &["get", "ent/proj/edits:v1"])?;
    results.record(
        "edits: Python's delete() is refused for an aliased version, then deletes it with delete_aliases=True; our CLI no longer finds it and latest is v0 again",
        refused["deleted"] == false
            && refused["message"].as_str().is_some_and(|m| m.contains("has aliases"))
            && deleted["deleted"] == true
            && latest["version"] == "v0"
            && versions["versions"] == json!([["v0", ["latest"]]])
            && gone.contains("edits:v1"),
        || format!("refused {refused}\n  deleted {deleted}\n  latest {}\n  versions {versions}\n  {gone}", latest["version"]),
    );

    // Our CLI deletes what Python logged.
    python(&["log", &dir("py", "python")?, "py-doomed", "MD5", "keep"])?;
    let err = cli_refused(sides, &["delete", "ent/proj/py-doomed:keep"])?;
    cli(&["delete", "ent/proj/py-doomed:keep", "--delete-aliases"])?;
    let shown = python(&["show", "ent/proj/py-doomed:v0"])?;
    let exists = python(&["exists", "ent/proj/py-doomed:v0", "ent/proj/py-doomed", "dataset"])?;
    results.record(
        "edits: our CLI refuses, then deletes with --delete-aliases, a version Python logged; Python no longer finds it",
        err.contains("--delete-aliases") && shown["missing"] == true && exists["artifact"] == false,
        || format!("{err}\n  shown {shown}\n  exists {exists}"),
    );

    // Unlinks both ways: the link goes, the source stays.
    python(&["link", "ent/proj/edits:v0", "ent/proj/edits-py-link", "prod"])?;
    cli(&["unlink", "ent/proj/edits-py-link:prod"])?;
    let after_ours = python(&["exists", "ent/proj/edits-py-link:v0", "ent/proj/edits", "model"])?;
    cli(&["link", "ent/proj/edits:v0", "ent/proj/edits-rs-link"])?;
    python(&["unlink", "ent/proj/edits-rs-link:v0"])?;
    let after_theirs = cli_refused(sides, &["get", "ent/proj/edits-rs-link:v0"])?;
    let source = python(&["show", "ent/proj/edits:v0"])?;
    results.record(
        "edits: our CLI unlinks what Python linked and Python unlinks what we linked; the source version stays",
        after_ours == json!({"artifact": false, "collection": true})
            && after_theirs.contains("edits-rs-link")
            && source["version"] == "v0",
        || format!("after ours {after_ours}\n  after theirs {after_theirs}\n  source {source}"),
    );

    // A collection saved in Python (description, tags) reads back in our CLI, and its aliases in Python.
    let saved = python(&["collection", "ent/proj/edits", "model", r#"{"description": "models", "tags": ["a", "b"]}"#])?;
    let listed = cli(&["ls", "--type", "model"])?;
    let ours = listed.as_array().and_then(|l| l.iter().find(|c| c["name"] == "edits")).cloned().unwrap_or_default();
    // The SDK sends the tags it adds as a set: their order is not the user's.
    let mut tags: Vec<&str> = ours["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    tags.sort_unstable();
    results.record(
        "edits: Python saves a collection's description and tags; our CLI lists them, Python reads its aliases",
        ours["description"] == "models" && tags == ["a", "b"] && saved["aliases"] == json!(["latest"]),
        || format!("python {saved}\n  ours {ours}"),
    );

    // run.logged_artifacts() of the run our CLI logged v0 with, found through our library's lineage.
    let creator = creator_of(&library, "ent/proj/edits:v0")?;
    let artifacts = python(&["run-artifacts", &format!("ent/proj/{creator}")])?;
    results.record(
        "edits: our library names the run that logged a version; Python's run.logged_artifacts() lists it",
        artifacts["logged"] == json!(["edits:v0"]),
        || format!("run {creator}: {artifacts}"),
    );

    registries(sides, results)?;
    files_and_types(sides, results)?;

    // A TTL set in Python runs out (counted from creation): the version stops resolving on both sides.
    python(&["log", &dir("short", "short-lived")?, "short-lived", "MD5", "tmp"])?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    python(&["edit", "ent/proj/short-lived:v0", r#"{"ttl": 1}"#])?;
    let ours = cli_refused(sides, &["get", "ent/proj/short-lived:tmp"])?;
    let theirs = python(&["show", "ent/proj/short-lived:v0"])?;
    results.record(
        "edits: a one-second TTL set in Python expires; neither side resolves the version afterwards",
        ours.contains("short-lived") && theirs["missing"] == true,
        || format!("ours {ours}\n  python {theirs}"),
    );
    Ok(())
}

/// The id of the run that logged `address`.
fn creator_of(api: &wandb_api::Api, address: &str) -> Result<String> {
    let run = api.artifact(address)?.logged_by()?;
    Ok(run.map(|r| r.id).unwrap_or_default())
}

/// Registries both ways: created, listed, linked into, renamed, deleted; membership refused clearly.
fn registries(sides: &Sides<'_>, results: &mut Comparisons) -> Result<()> {
    let python = |args: &[&str]| sides.python(args, "cache-py-edits");
    python(&["registry-create", "py-reg", "model"])?;
    let ours = cli_json(sides, &["registry", "ls"])?;
    let py_reg = ours.as_array().and_then(|l| l.iter().find(|r| r["name"] == "py-reg")).cloned().unwrap_or_default();
    results.record(
        "registries: Python's create_registry() is listed by our CLI with its description and accepted type",
        py_reg["description"] == "made in python"
            && py_reg["artifact_types"] == json!(["model"])
            && py_reg["allow_all_artifact_types"] == false,
        || format!("{ours}"),
    );

    cli_json(sides, &["registry", "create", "rs-reg", "--type", "model", "--description", "made in rust"])?;
    sides.cli(
        &["link", "ent/proj/edits:v0", "wandb-registry-py-reg/champion", "--alias", "production"],
        "cache-cli-edits",
    )?;
    let theirs = python(&["registries"])?;
    let find = |name: &str| {
        theirs["registries"].as_array().and_then(|l| l.iter().find(|r| r["name"] == name)).cloned().unwrap_or_default()
    };
    let (py_reg, rs_reg) = (find("py-reg"), find("rs-reg"));
    results.record(
        "registries: Python's api.registries() lists ours, and the collection and version our CLI linked into its registry",
        rs_reg["description"] == "made in rust"
            && rs_reg["types"] == json!(["model"])
            && rs_reg["visibility"] == "organization"
            && py_reg["collections"] == json!(["champion"])
            && py_reg["versions"] == json!([["champion:v0", ["latest", "production"]]]),
        || format!("{theirs}"),
    );

    let edited = python(&["registry-edit", "py-reg", "py-core", "renamed in python"])?;
    let ours = cli_json(sides, &["registry", "ls"])?;
    let names: Vec<&str> = ours.as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
    let got = sides.cli(
        &[
            "get",
            "ent/wandb-registry-py-core/champion:production",
            "--root",
            &sides.work.join("edits/reg").to_string_lossy(),
        ],
        "cache-cli-edits",
    )?;
    results.record(
        "registries: Python renames a registry and changes its description; our CLI lists it and downloads through it",
        edited["name"] == "py-core" && names == ["py-core", "rs-reg"] && got["version"] == "v0",
        || format!("edited {edited}\n  ours {ours}\n  got {}", got["version"]),
    );

    let members = python(&["registry-members", "py-core"])?;
    results.record(
        "registries: members() is refused with a message saying why, not a crash",
        members["refused"] == true && members["message"].as_str().is_some_and(|m| m.contains("no registry members")),
        || format!("{members}"),
    );

    let mut delete = Command::new(sides.cli);
    delete.args(["registry", "delete", "py-core"]).stdout(Stdio::null());
    sides.env(&mut delete, "cache-cli-edits");
    ensure!(delete.status()?.success(), "registry delete failed");
    python(&["registry-delete", "rs-reg"])?;
    let theirs = python(&["registries"])?;
    let ours = cli_json(sides, &["registry", "ls"])?;
    results.record(
        "registries: each side deletes one; neither lists any afterwards",
        theirs["registries"] == json!([]) && ours == json!([]),
        || format!("python {theirs}\n  ours {ours}"),
    );
    Ok(())
}

/// `artifact.files()` (`ArtifactMembershipFiles`) and `api.artifact_type()` (`ProjectArtifactType`).
fn files_and_types(sides: &Sides<'_>, results: &mut Comparisons) -> Result<()> {
    let python = |args: &[&str]| sides.python(args, "cache-py-edits");
    let files = python(&["files", "ent/proj/edits:v0"])?;
    let artifact_type = python(&["artifact-type", "ent/proj", "model"])?;
    results.record(
        "edits: Python's artifact.files() lists our version's file with its size, by name too; api.artifact_type() finds its collections",
        files["files"] == json!([["a.txt", 4]])
            && files["total"] == 1
            && files["first"] == json!(["a.txt"])
            && artifact_type["name"] == "model"
            && artifact_type["collections"].as_array().is_some_and(|c| c.contains(&json!("edits"))),
        || format!("files {files}\n  type {artifact_type}"),
    );
    Ok(())
}

/// A server with a users file: the real client and our CLI work unchanged with a user's key, and fail clearly with
/// another user's.
pub(crate) fn users(
    python: &std::path::Path,
    cli: &std::path::Path,
    work: &std::path::Path,
    data: &std::path::Path,
    expected: &std::collections::BTreeMap<String, String>,
    results: &mut Comparisons,
) -> Result<()> {
    const ALICE: &str = "alice0123456789abcdef0123456789abcdef01234";
    const BOB: &str = "bob0123456789abcdef0123456789abcdef0123456";
    let work = work.join("users");
    std::fs::create_dir_all(&work)?;
    let file = work.join("users.json");
    // Bob's key is kept as a hash, made by `dagster-wandb server hash-key`.
    let mut hash =
        Command::new(cli).args(["server", "hash-key"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    std::io::Write::write_all(&mut hash.stdin.take().expect("piped"), format!("{BOB}\n").as_bytes())?;
    let bob_hash = String::from_utf8(hash.wait_with_output()?.stdout)?.trim().to_owned();
    ensure!(bob_hash.starts_with("blake3:"), "server hash-key printed {bob_hash:?}");
    std::fs::write(
        &file,
        json!({"users": [
            {"name": "alice", "api_key": ALICE, "entities": ["alice", "ml-team"]},
            {"name": "bob", "api_key_hash": bob_hash, "entities": ["bob"]},
        ]})
        .to_string(),
    )?;
    let server = crate::served_store::ServedStore::start(
        cli,
        &work.join("store"),
        &["--users", &file.to_string_lossy()],
        Stdio::inherit(),
    )?;
    let side = |key: &str, entity: &str| Sides {
        python,
        cli,
        work: work.clone(),
        url: server.url.clone(),
        extra_env: vec![("WANDB_API_KEY".into(), key.into()), ("WANDB_ENTITY".into(), entity.into())],
    };
    let (alice, bob) = (side(ALICE, "alice"), side(BOB, "bob"));
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();

    let logged = alice.python(&["log", &path(data), "alice-ds", "MD5", "mine"], "cache-alice-py")?;
    let root = work.join("alice-cli-get");
    let got = alice.cli(&["get", "alice/proj/alice-ds:mine", "--root", &path(&root)], "cache-alice-cli")?;
    let ours = super::wire::tree(&root)?;
    results.record(
        "users: with alice's key, Python logs into her entity and our CLI downloads it byte for byte",
        got["digest"] == logged["digest"] && ours == *expected,
        || format!("python {logged}\n  ours {got}"),
    );
    cli_json(&alice, &["artifact", "put", &path(data), "--name", "ml-team/proj/team-ds", "--type", "dataset"])?;
    let theirs =
        alice.python(&["get", "ml-team/proj/team-ds:latest", &path(&work.join("alice-py-get"))], "cache-alice-py2")?;
    results.record(
        "users: alice's team entity works both ways too (our CLI logs, Python downloads)",
        super::wire::json_tree(&theirs) == *expected,
        || format!("{theirs}"),
    );

    // Bob's key reaches none of it, on either side, and says so.
    let mut python_get = Command::new(python);
    python_get
        .arg(crate::project_root().join("xtask/interop/wire.py"))
        .args(["get", "alice/proj/alice-ds:mine", &path(&work.join("bob-py-get"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    bob.env(&mut python_get, "cache-bob-py");
    let python_out = python_get.output()?;
    let python_err = String::from_utf8_lossy(&python_out.stderr).into_owned();
    let ours = cli_refused(&bob, &["get", "alice/proj/alice-ds:mine"])?;
    results.record(
        "users: with bob's key, Python and our CLI are refused alice's artifact with a permission error",
        !python_out.status.success()
            && python_err.contains("permission denied: bob may not use entity")
            && ours.contains("permission denied: bob may not use entity \"alice\""),
        || format!("python: {}\n  ours: {ours}", python_err.lines().last().unwrap_or("")),
    );
    let bob_log = bob.python(&["log", &path(data), "bob-ds", "MD5", "his"], "cache-bob-py2")?;
    results.record("users: bob logs into his own entity with the real client", bob_log["version"] == "v0", || {
        format!("{bob_log}")
    });
    drop(server);
    Ok(())
}
