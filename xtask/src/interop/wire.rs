//! The W&B wire protocol against the real `wandb` 0.31.0 client: `dagster-wandb server` serves a fresh embedded
//! store; the Python client logs, downloads and links through it, and so does our CLI, each reading what the
//! other wrote. Trees are compared byte for byte (MD5 per file), digests exactly.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, ensure};
use serde_json::Value;

use super::Comparisons;
use crate::project_root;
use crate::served_store::ServedStore;

pub(crate) const API_KEY: &str = "0123456789abcdef0123456789abcdef01234567";

/// The real client (`xtask/interop/wire.py`) and our CLI, both pointed at one served store, each command with
/// its own cache directory under `work`.
pub(crate) struct Sides<'a> {
    pub(crate) python: &'a Path,
    pub(crate) cli: &'a Path,
    pub(crate) work: PathBuf,
    pub(crate) url: String,
    /// More variables for both sides (an object store's endpoint and credentials, for `cargo xtask s3` and `gcs`).
    pub(crate) extra_env: Vec<(String, String)>,
}

impl Sides<'_> {
    pub(crate) fn env(&self, command: &mut Command, cache: &str) {
        let home = self.work.join("home");
        command
            .env("WANDB_BASE_URL", &self.url)
            .env("WANDB_API_KEY", API_KEY)
            .env("WANDB_ENTITY", "ent")
            .env("WANDB_PROJECT", "proj")
            .env("WANDB_DIR", &home)
            .env("WANDB_DATA_DIR", home.join("data"))
            .env("WANDB_CONFIG_DIR", home.join("config"))
            .env("HOME", &home)
            .env("WANDB_CACHE_DIR", self.work.join(cache))
            .env_remove("WANDB_MODE");
        // Last, so a suite may change the key or the entity too.
        command.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
    }

    /// `wire.py ARGS` with the cache `cache`: the JSON line it printed last.
    pub(crate) fn python(&self, args: &[&str], cache: &str) -> Result<Value> {
        let mut command = Command::new(self.python);
        command.arg(project_root().join("xtask/interop/wire.py")).args(args).stdout(Stdio::piped());
        self.env(&mut command, cache);
        let out = command.output()?;
        ensure!(out.status.success(), "wire.py {} failed", args.join(" "));
        let text = String::from_utf8(out.stdout)?;
        Ok(serde_json::from_str(text.lines().last().unwrap_or("null"))?)
    }

    /// `dagster-wandb artifact ARGS --json` with the cache `cache`: what it printed.
    pub(crate) fn cli(&self, args: &[&str], cache: &str) -> Result<Value> {
        let mut command = Command::new(self.cli);
        command.arg("artifact").args(args).arg("--json").stdout(Stdio::piped());
        self.env(&mut command, cache);
        let out = command.output()?;
        ensure!(out.status.success(), "dagster-wandb artifact {} failed", args.join(" "));
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

fn fixture(dir: &Path) -> Result<()> {
    let files: &[(&str, &[u8])] = &[
        ("train/a.csv", b"x,y\n1,2\n3,4\n"),
        ("empty.txt", b""),
        ("unicode-\u{e9}\u{e8} name.txt", "caf\u{e9} cr\u{e8}me\n".as_bytes()),
        ("deep/er/still/b.bin", &[0xA5; 70_000]),
        ("spaces in dir/file with spaces.json", b"{\"k\": [1, 2]}\n"),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().expect("nested"))?;
        fs::write(path, bytes)?;
    }
    Ok(())
}

/// Relative path -> hex MD5 of every file under `root`.
pub(crate) fn tree(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.insert(relative, md5_hex(&fs::read(&path)?));
            }
        }
    }
    Ok(out)
}

/// The `files` map (relative path -> hex MD5) that `wire.py get` printed.
pub(crate) fn json_tree(value: &Value) -> BTreeMap<String, String> {
    value
        .get("files")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

pub(crate) fn run(python: &Path, cli: &Path, results: &mut Comparisons) -> Result<()> {
    let work = project_root().join("target/interop/work/wire");
    let _ = fs::remove_dir_all(&work);
    let data = work.join("data");
    fixture(&data)?;
    let expected = tree(&data)?;
    let server = ServedStore::start(
        cli,
        &work.join("store"),
        &["--api-key", API_KEY, "--default-entity", "ent"],
        Stdio::inherit(),
    )?;
    let sides = Sides { python, cli, work: work.clone(), url: server.url.clone(), extra_env: Vec::new() };
    let path = |p: &Path| p.to_string_lossy().into_owned();

    // Python logs (MD5 and XXH128); our CLI downloads with an empty cache.
    for (name, algorithm) in [("py-md5", "MD5"), ("py-xxh", "XXH128")] {
        let logged = sides.python(&["log", &path(&data), name, algorithm, "py"], "cache-py")?;
        let root = work.join(format!("cli-get-{name}"));
        let got = sides
            .cli(&["get", &format!("ent/proj/{name}:py"), "--root", &path(&root)], &format!("cache-cli-{name}"))?;
        results.record(
            &format!("wire: Python logs {algorithm}, our CLI downloads the same digest"),
            got["digest"] == logged["digest"],
            || format!("python {} ours {}", logged["digest"], got["digest"]),
        );
        let ours = tree(&root)?;
        results.record(
            &format!("wire: Python logs {algorithm}, our CLI downloads identical bytes"),
            ours == expected,
            || format!("expected {expected:?}\n  got {ours:?}"),
        );
        results.record(
            &format!("wire: Python logs {algorithm} with a tag, our CLI sees it"),
            got["tags"] == serde_json::json!(["from python"]),
            || format!("tags {}", got["tags"]),
        );
    }

    // Our CLI logs; Python downloads (and verifies) with an empty cache.
    for (name, algorithm) in [("rs-md5", "md5"), ("rs-xxh", "xxh128")] {
        let logged = sides.cli(
            &[
                "put",
                &path(&data),
                "--name",
                &format!("ent/proj/{name}"),
                "--type",
                "dataset",
                "--alias",
                "rs",
                "--digest",
                algorithm,
                "--tag",
                "from rust",
            ],
            "cache-cli",
        )?;
        let root = work.join(format!("py-get-{name}"));
        let got = sides.python(&["get", &format!("ent/proj/{name}:rs"), &path(&root)], &format!("cache-py-{name}"))?;
        results.record(
            &format!("wire: our CLI logs {algorithm}, Python downloads and verifies the same digest"),
            got["digest"] == logged["digest"],
            || format!("ours {} python {}", logged["digest"], got["digest"]),
        );
        let theirs = json_tree(&got);
        results.record(
            &format!("wire: our CLI logs {algorithm}, Python downloads identical bytes"),
            theirs == expected,
            || format!("expected {expected:?}\n  got {theirs:?}"),
        );
        results.record(
            &format!("wire: our CLI logs {algorithm}, Python sees the aliases and the tag"),
            got["aliases"] == serde_json::json!(["latest", "rs"]) && got["tags"] == serde_json::json!(["from rust"]),
            || format!("aliases {} tags {}", got["aliases"], got["tags"]),
        );
    }

    // Listing: Python and our CLI see the same collections, each with its number of versions.
    let theirs = sides.python(&["ls", "ent/proj", "dataset"], "cache-py")?;
    let ours = sides.cli(&["ls", "--type", "dataset"], "cache-cli")?;
    let ours: Vec<Value> =
        ours.as_array().into_iter().flatten().map(|c| serde_json::json!([c["name"], c["version_count"]])).collect();
    results.record(
        "wire: Python and our CLI list the same collections and version counts",
        theirs["collections"] == Value::Array(ours.clone()) && ours.len() == 4,
        || format!("python {} ours {ours:?}", theirs["collections"]),
    );

    // Links both ways: each side resolves the other's portfolio membership to the source's content.
    let ours = sides.cli(&["link", "ent/proj/rs-md5:rs", "ent/proj/portfolio-rs", "--alias", "prod"], "cache-cli")?;
    ensure!(ours["linked_from"] == "ent/proj/rs-md5:v0", "unexpected link answer {ours}");
    let got = sides
        .python(&["get", "ent/proj/portfolio-rs:prod", &path(&work.join("py-get-portfolio"))], "cache-py-portfolio")?;
    results.record(
        "wire: our CLI links, Python downloads the portfolio member",
        json_tree(&got) == expected && got["digest"] == ours["digest"],
        || format!("got {got}"),
    );
    sides.python(&["link", "ent/proj/py-md5:py", "ent/proj/portfolio-py", "prod"], "cache-py")?;
    let root = work.join("cli-get-portfolio");
    sides.cli(&["get", "ent/proj/portfolio-py:prod", "--root", &path(&root)], "cache-cli-portfolio")?;
    let ours = tree(&root)?;
    results.record("wire: Python links, our CLI downloads the portfolio member", ours == expected, || {
        format!("got {ours:?}")
    });
    runs(&sides, &work.join("store"), results)?;
    main_job(&sides, results)?;
    distributed(&sides, &work, &expected_parts(), results)?;
    launch(&sides, &work, &work.join("store"), results)?;
    super::edits::run(&sides, results)?;
    drop(server);
    super::edits::users(python, cli, &work, &data, &expected, results)?;
    Ok(())
}

/// Runs both ways: the real client logs metrics (the SDK capture's first process) and resumes; our `Run` logs
/// and the real client resumes it with `resume="must"`. The store holds every row, at the right steps.
fn runs(sides: &Sides<'_>, store_dir: &Path, results: &mut Comparisons) -> Result<()> {
    let store = wandb_store::EmbeddedStore::open(store_dir)?;
    let project = wandb_api::ProjectRef::new("ent", "proj")?;
    let steps = |run: &str| -> Result<Vec<u64>> {
        Ok(store.run_history(&project, run)?.iter().filter_map(|r| r.get("_step").and_then(Value::as_u64)).collect())
    };

    let first = sides.python(&["runlog", "pyrun"], "cache-py")?;
    let history = store.run_history(&project, "pyrun")?;
    let status = store.run_status(&project, "pyrun")?;
    let summary = store.run_summary(&project, "pyrun")?;
    results.record(
        "runs: Python logs rows; the store has them at steps 0, 1, 2, 5 with commit=False merged",
        first["resumed"] == false
            && steps("pyrun")? == [0, 1, 2, 5]
            && history[2].get("extra") == Some(&serde_json::json!(1.5))
            && history[1].get("nested") == Some(&serde_json::json!({"a": 1})),
        || format!("history {history:?}"),
    );
    results.record(
        "runs: Python's summary, config and exit code are stored",
        summary.get("best_loss") == Some(&serde_json::json!(0.2))
            && summary.get("final") == Some(&serde_json::json!("yes"))
            && status.config.get("bs") == Some(&serde_json::json!(32))
            && status.config.get("opt") == Some(&serde_json::json!({"name": "adam"}))
            && status.exit_code == Some(3),
        || format!("summary {summary:?} config {:?} exit {:?}", status.config, status.exit_code),
    );
    let resumed = sides.python(&["resume", "pyrun", "allow"], "cache-py")?;
    results.record(
        "runs: Python resumes its run from our server, continuing at step 6",
        resumed["resumed"] == true && steps("pyrun")? == [0, 1, 2, 5, 6] && resumed["config"]["lr"] == 0.1,
        || format!("resume answer {resumed}, steps {:?}", steps("pyrun")),
    );
    let cli = Command::new(sides.cli)
        .args(["run", "history", "ent/proj/pyrun", "--json", "--base-url"])
        .arg(format!("file://{}", store_dir.display()))
        .output()?;
    let cli_rows: Vec<Value> =
        String::from_utf8(cli.stdout)?.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let stored: Vec<Value> = store.run_history(&project, "pyrun")?.into_iter().map(Value::Object).collect();
    results.record(
        "runs: `dagster-wandb run history` prints the rows Python logged",
        cli.status.success() && cli_rows == stored,
        || format!("cli {cli_rows:?}"),
    );

    // Our Run logs through the server; the real client must see it as existing and continue it.
    let api = wandb_api::Api::new(
        wandb_api::Settings::server(&sides.url, Some(API_KEY.to_owned())).with_entity("ent").with_project("proj"),
    )?;
    let settings = wandb_api::RunSettings::default()
        .id("rsrun")
        .config(serde_json::json!({"lr": 0.5}).as_object().cloned().unwrap_or_default());
    let mut run = api.init(settings)?;
    for loss in [0.9, 0.8, 0.7] {
        run.log(serde_json::json!({"loss": loss}).as_object().cloned().unwrap_or_default())?;
    }
    run.finish()?;
    // Python reads back what our Run logged: history(), scan_history() and the summary.
    let read = sides.python(&["history", "ent/proj/rsrun"], "cache-py")?;
    let losses = |rows: &Value| -> Vec<f64> {
        rows.as_array().into_iter().flatten().filter_map(|r| r["loss"].as_f64()).collect::<Vec<_>>()
    };
    results.record(
        "runs: Python's run.history() and scan_history() return the rows our Run logged, in step order",
        losses(&read["history"]) == [0.9, 0.8, 0.7] && losses(&read["scan"]) == [0.9, 0.8, 0.7],
        || format!("python read {read}"),
    );
    results.record(
        "runs: Python sees our finished run's state and summary",
        read["state"] == "finished" && read["summary"]["loss"] == 0.7,
        || format!("python read {read}"),
    );
    let resumed = sides.python(&["resume", "rsrun", "must"], "cache-py")?;
    results.record(
        "runs: our Run logs through the server, Python resumes it (must) at step 3 with its config",
        resumed["resumed"] == true && steps("rsrun")? == [0, 1, 2, 3] && resumed["config"]["lr"] == 0.5,
        || format!("resume answer {resumed}, steps {:?}", steps("rsrun")),
    );
    // Our CLI reads runs through the server as well as from the store.
    let mut ls = Command::new(sides.cli);
    ls.args(["run", "ls", "--json"]).stdout(Stdio::piped());
    sides.env(&mut ls, "cache-cli");
    let listed: Value = serde_json::from_slice(&ls.output()?.stdout).unwrap_or(Value::Null);
    let ids: Vec<&str> = listed.as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()).collect();
    let mut history = Command::new(sides.cli);
    history.args(["run", "history", "ent/proj/rsrun", "--json"]).stdout(Stdio::piped());
    sides.env(&mut history, "cache-cli");
    let rows: Vec<Value> =
        String::from_utf8(history.output()?.stdout)?.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let stored: Vec<Value> = store.run_history(&project, "rsrun")?.into_iter().map(Value::Object).collect();
    results.record(
        "runs: `dagster-wandb run ls` and `run history` against the server show the store's runs and rows",
        ids.contains(&"pyrun") && ids.contains(&"rsrun") && rows == stored,
        || {
            format!(
                "ls {listed}
  history {rows:?}
  stored {stored:?}"
            )
        },
    );
    Ok(())
}

/// The README's main job (the seed tutorial's pipeline) through the server, then the real client walks its
/// lineage: `trained-model:best` was logged by a run that used `mnist-preprocess`, whose run used `mnist-raw`.
fn main_job(sides: &Sides<'_>, results: &mut Comparisons) -> Result<()> {
    let mut build = crate::cargo();
    build.args(["build", "--quiet", "-p", "examples", "--example", "track_models_and_datasets"]);
    ensure!(build.status()?.success(), "building the main job failed");
    let mut job = Command::new(project_root().join("target/debug/examples/track_models_and_datasets"));
    job.current_dir(&sides.work).stdout(Stdio::piped()).stderr(Stdio::piped());
    sides.env(&mut job, "cache-main-job");
    let out = job.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "the main job failed against the server: {stderr}");
    let printed = String::from_utf8(out.stdout)? + &stderr;

    let lineage = sides.python(&["lineage", "ent/artifacts-example/trained-model:best"], "cache-py")?;
    let chain: Vec<(String, String, Vec<String>)> = lineage["chain"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|link| {
            let text = |key: &str| link[key].as_str().unwrap_or("").to_owned();
            let used = link["used"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned);
            (text("artifact"), text("job_type"), used.collect())
        })
        .collect();
    let expected = [
        ("trained-model:v0", "train", vec!["mnist-preprocess:v0"]),
        ("mnist-preprocess:v0", "preprocess-data", vec!["mnist-raw:v0"]),
        ("mnist-raw:v0", "load-data", vec![]),
    ];
    let same = chain.len() == expected.len()
        && chain.iter().zip(&expected).all(|((a, j, u), (ea, ej, eu))| a == ea && j == ej && u == eu);
    results.record(
        "main job: our SDK runs the tutorial through the server; Python's logged_by().used_artifacts() walks it back to mnist-raw",
        same && printed.contains("mnist-raw:v0 <- logged by run"),
        || format!("python saw {lineage}
  the job printed {printed}"),
    );
    let raw_used_by = lineage["chain"][2]["used_by"].as_array().map_or(0, Vec::len);
    results.record("main job: Python's used_by() names the run that preprocessed mnist-raw", raw_used_by == 1, || {
        format!("{lineage}")
    });
    Ok(())
}

/// The parts of the distributed capture, as both sides write them: `parts/table_<i>.table.json` and the
/// finisher's `merged.partitioned-table.json`.
fn expected_parts() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for i in 0..2 {
        let table = serde_modules::Table::with_rows(
            ["a", "b"],
            vec![
                vec![serde_json::json!(i), serde_json::json!(format!("row{i}"))],
                vec![serde_json::json!(i + 10), serde_json::json!(format!("row{}", i + 10))],
            ],
        )
        .expect("a valid table");
        files.insert(format!("parts/table_{i}.table.json"), md5_hex(&table.to_wandb_json()));
    }
    files.insert(
        "merged.partitioned-table.json".to_owned(),
        md5_hex(&serde_modules::PartitionedTable::new("parts").to_wandb_json()),
    );
    files
}

/// The hex MD5 of `bytes`, as `wire.py` reports file digests.
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    artifact_core::b64_to_hex(&artifact_core::md5_b64(bytes)).expect("an MD5")
}

/// Python writers with our finisher, and ours with Python's: one artifact, which both download identically.
fn distributed(
    sides: &Sides<'_>,
    work: &Path,
    expected: &BTreeMap<String, String>,
    results: &mut Comparisons,
) -> Result<()> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let write_part = |dir: &Path, i: usize| -> Result<()> {
        let table = serde_modules::Table::with_rows(
            ["a", "b"],
            vec![
                vec![serde_json::json!(i), serde_json::json!(format!("row{i}"))],
                vec![serde_json::json!(i + 10), serde_json::json!(format!("row{}", i + 10))],
            ],
        )?;
        fs::create_dir_all(dir)?;
        fs::write(dir.join(format!("table_{i}.table.json")), table.to_wandb_json())?;
        Ok(())
    };
    let merged = work.join("dist-merged/merged.partitioned-table.json");
    fs::create_dir_all(merged.parent().expect("a parent"))?;
    fs::write(&merged, serde_modules::PartitionedTable::new("parts").to_wandb_json())?;

    // Python writes both parts; our CLI finishes.
    for i in 0..2 {
        sides.python(&["dist-write", "py-dist", "grp-py", &i.to_string()], "cache-py")?;
    }
    let ours = sides.cli(
        &["put", &path(&merged), "--name", "py-dist", "--type", "dataset", "--distributed-id", "grp-py", "--finish"],
        "cache-cli",
    )?;
    // Our CLI writes both parts; Python finishes.
    for i in 0..2 {
        let dir = work.join(format!("dist-part-{i}"));
        write_part(&dir, i)?;
        sides.cli(
            &[
                "put",
                &path(&dir),
                "--name",
                "rs-dist",
                "--type",
                "dataset",
                "--prefix",
                "parts",
                "--distributed-id",
                "grp-rs",
            ],
            "cache-cli",
        )?;
    }
    let theirs = sides.python(&["dist-finish", "rs-dist", "grp-rs"], "cache-py")?;

    for (name, finished_digest) in [("py-dist", &ours["digest"]), ("rs-dist", &theirs["digest"])] {
        let py = sides.python(
            &["get", &format!("ent/proj/{name}:latest"), &path(&work.join(format!("py-get-{name}")))],
            &format!("cache-py-{name}"),
        )?;
        let root = work.join(format!("cli-get-{name}"));
        let rs = sides
            .cli(&["get", &format!("ent/proj/{name}:latest"), "--root", &path(&root)], &format!("cache-cli-{name}"))?;
        let ours_tree = tree(&root)?;
        results.record(
            &format!("distributed: {name} holds every part, and Python and our CLI download it identically"),
            json_tree(&py) == *expected
                && ours_tree == *expected
                && py["digest"] == rs["digest"]
                && &py["digest"] == finished_digest,
            || format!("python {py}\n  ours {ours_tree:?}\n  expected {expected:?}"),
        );
    }
    results.record(
        "distributed: Python's parts finished by us and ours finished by Python make the same artifact digest",
        ours["digest"] == theirs["digest"],
        || format!("ours {} python {}", ours["digest"], theirs["digest"]),
    );
    // A part upserted after the finish is refused by our server (the SDK would lose it silently).
    let late = work.join("dist-late");
    write_part(&late, 7)?;
    let refused = Command::new(sides.cli)
        .args(["artifact", "put"])
        .arg(&late)
        .args(["--name", "rs-dist", "--type", "dataset", "--distributed-id", "grp-rs"])
        .env("WANDB_BASE_URL", &sides.url)
        .env("WANDB_API_KEY", API_KEY)
        .env("WANDB_ENTITY", "ent")
        .env("WANDB_PROJECT", "proj")
        .output()?;
    results.record(
        "distributed: our CLI's upsert after Python's finish is refused with an error naming it",
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("already finished"),
        || format!("stderr {}", String::from_utf8_lossy(&refused.stderr)),
    );
    Ok(())
}

/// W&B Launch both ways: the real `launch_add` enqueues and our agent runs the job; our `launch add` enqueues
/// and the real `wandb launch-agent` runs it. The job (created by our CLI) is a Python script calling
/// `wandb.init()`, so each launched run must reach our store finished, with the queued config.
fn launch(sides: &Sides<'_>, work: &Path, store_dir: &Path, results: &mut Comparisons) -> Result<()> {
    let code = work.join("launch-code");
    fs::create_dir_all(&code)?;
    fs::write(
        code.join("main.py"),
        "import wandb\nrun = wandb.init(settings=wandb.Settings(x_disable_stats=True, x_disable_meta=True, disable_git=True, disable_code=True, console=\"off\", silent=True))\nrun.log({\"lr_seen\": run.config.get(\"lr\")})\nrun.finish()\n",
    )?;
    let venv_bin = sides.python.parent().expect("the venv's bin").to_path_buf();
    let path_env = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut create = Command::new(sides.cli);
    create.args(["launch", "create-job"]).arg(&code).args([
        "--name",
        "job-main",
        "--entry-point",
        "python",
        "--entry-point",
        "main.py",
    ]);
    sides.env(&mut create, "cache-cli");
    let out = create.output()?;
    ensure!(out.status.success(), "launch create-job failed: {}", String::from_utf8_lossy(&out.stderr));
    let job = String::from_utf8(out.stdout)?.trim().to_owned();

    let store = wandb_store::EmbeddedStore::open(store_dir)?;
    let project = wandb_api::ProjectRef::new("ent", "proj")?;
    let finished_runs = || -> Result<Vec<String>> {
        let mut done = Vec::new();
        for run in store.runs(&project)? {
            let status = store.run_status(&project, &run.id)?;
            let saw_lr =
                store.run_history(&project, &run.id)?.iter().any(|r| r.get("lr_seen") == Some(&serde_json::json!(0.1)));
            if status.state == wandb_store::RunState::Finished && saw_lr {
                done.push(run.id);
            }
        }
        Ok(done)
    };
    let wait_for = |count: usize| -> Result<Vec<String>> {
        let started = std::time::Instant::now();
        loop {
            let done = finished_runs()?;
            if done.len() >= count || started.elapsed() > std::time::Duration::from_secs(180) {
                return Ok(done);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    };

    // Python enqueues (creating the default queue through its fallback); our agent runs the job.
    let queued = sides.python(&["launch-add", &job, "default"], "cache-py")?;
    let mut agent = Command::new(sides.cli);
    agent
        .args(["launch", "agent", "--queue", "default", "--poll-interval", "0.2"])
        .env("PATH", &path_env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    sides.env(&mut agent, "cache-agent");
    let agent = agent.spawn()?;
    let done = wait_for(1)?;
    let _ = Command::new("kill").args(["-TERM", &agent.id().to_string()]).status();
    let stopped = agent.wait_with_output()?;
    results.record(
        "launch: Python's launch_add enqueues, our agent runs the job, its run finishes with the queued config",
        queued["queue"] == "default" && done.len() == 1 && stopped.status.success(),
        || format!("queued {queued}, finished runs {done:?}, agent: {}", String::from_utf8_lossy(&stopped.stderr)),
    );

    // Our CLI enqueues and waits; the real Python agent runs the job.
    let mut python_agent = Command::new(venv_bin.join("wandb"));
    python_agent
        .args(["launch-agent", "-q", "default", "-e", "ent"])
        .env("PATH", &path_env)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    sides.env(&mut python_agent, "cache-py-agent");
    let python_agent = python_agent.spawn()?;
    let mut add = Command::new(sides.cli);
    add.args([
        "launch",
        "add",
        "--job",
        &job,
        "--queue",
        "default",
        "--resource",
        "local-process",
        "--config",
        r#"{"overrides": {"run_config": {"lr": 0.1}}}"#,
        "--wait",
        "--timeout",
        "180",
        "--json",
    ]);
    sides.env(&mut add, "cache-cli");
    let out = add.output();
    let _ = Command::new("kill").args(["-INT", &python_agent.id().to_string()]).status();
    let mut python_agent = python_agent;
    let stopped_in_time = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        python_agent.try_wait().ok().flatten().is_some()
    });
    if !stopped_in_time {
        let _ = python_agent.kill();
        let _ = python_agent.wait();
    }
    let out = out?;
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let done = finished_runs()?;
    results.record(
        "launch: our launch add enqueues and waits, the real wandb launch-agent runs the job, the run finishes",
        out.status.success() && answer["state"] == "finished" && done.len() == 2,
        || format!("answer {answer}, stderr {}, finished runs {done:?}", String::from_utf8_lossy(&out.stderr)),
    );

    // The real `wandb job create` makes a code job through the public API (its own CreateArtifact, then the
    // run's with the same client id, then the run deleted); our agent runs it.
    let made = work.join("job-create-code");
    fs::create_dir_all(&made)?;
    fs::copy(code.join("main.py"), made.join("main.py"))?;
    fs::write(made.join("requirements.txt"), "wandb\n")?;
    let mut job_create = Command::new(venv_bin.join("wandb"));
    job_create
        .args([
            "job",
            "create",
            "--project",
            "proj",
            "--entity",
            "ent",
            "--name",
            "py-made-job",
            "-E",
            "python main.py",
        ])
        .arg("code")
        .arg(&made)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sides.env(&mut job_create, "cache-py-job");
    let created = job_create.output()?;
    let created_text = String::from_utf8_lossy(&created.stderr).into_owned();
    let mut agent = Command::new(sides.cli);
    agent
        .args(["launch", "agent", "--queue", "default", "--poll-interval", "0.2"])
        .env("PATH", &path_env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    sides.env(&mut agent, "cache-agent-2");
    let agent = agent.spawn()?;
    let mut add = Command::new(sides.cli);
    add.args(["launch", "add", "--job", "ent/proj/py-made-job:latest", "--queue", "default"])
        .args(["--resource", "local-process", "--config", r#"{"overrides": {"run_config": {"lr": 0.1}}}"#])
        .args(["--wait", "--timeout", "180", "--json"]);
    sides.env(&mut add, "cache-cli");
    let out = add.output();
    let _ = Command::new("kill").args(["-TERM", &agent.id().to_string()]).status();
    let stopped = agent.wait_with_output()?;
    let out = out?;
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let done = finished_runs()?;
    results.record(
        "launch: the real `wandb job create` makes a code job on our server, and our agent runs it to a finished run",
        created.status.success()
            && created_text.contains("Created job: ent/proj/py-made-job:v0")
            && answer["state"] == "finished"
            && done.len() == 3,
        || {
            format!(
                "job create: {created_text}\n  answer {answer}, stderr {}, agent {}, finished runs {done:?}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&stopped.stderr)
            )
        },
    );
    Ok(())
}
