//! `cargo xtask web`: the web view in a real browser. The README's main job runs against `dagster-wandb server`
//! (with an API key), an artifact with hostile names is logged beside it, and a run named with markup, in another
//! project, uses the job's raw data; `xtask/web/browse.py` drives headless Chromium through Selenium (PyPI,
//! pinned, in `target/web/venv`; Chromium and chromedriver from the system, Debian's `chromium` and
//! `chromium-driver`): sign-in, project, collection, version, files, lineage, the training run and its charts
//! (as many points as the run logged), the hostile pages, the use across projects, and sign-out. Screenshots of
//! each page land in `target/web/screenshots/` for a person to look at. `dagster-wandb ui` is checked to serve the
//! same pages without the W&B protocol.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::served_store::ServedStore;
use crate::{cargo, project_root, say};

const PACKAGES: &[(&str, &str)] = &[("selenium", "4.27.1")];
const KEY: &str = "webview0123456789abcdef0123456789abcdefab";
/// Markup in every place a user may put text, which must render as text.
const HOSTILE: &str = "<script>alert(1)</script>";
/// A run's name, with markup.
const HOSTILE_RUN: &str = "<script>alert(3)</script> run";

pub(crate) fn run() -> Result<()> {
    for tool in ["chromium", "chromedriver"] {
        ensure!(
            Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok(),
            "{tool} is not installed (Debian: apt-get install chromium chromium-driver)"
        );
    }
    let python = crate::venv::python("target/web/venv", PACKAGES)?;
    // Target flags apply to every package named: the binary and the example are asked for one by one.
    let mut build = cargo();
    build.args(["build", "--quiet", "-p", "dagster-wandb-cli", "--bin", "dagster-wandb"]);
    build.args(["-p", "examples", "--example", "track_models_and_datasets"]);
    ensure!(build.status()?.success(), "building the CLI and the main job failed");
    let cli = project_root().join("target/debug/dagster-wandb");
    let work = project_root().join("target/web");
    let store = work.join("store");
    let _ = std::fs::remove_dir_all(&store);
    let shots = work.join("screenshots");
    let _ = std::fs::remove_dir_all(&shots);

    let server = ServedStore::start(&cli, &store, &["--api-key", KEY], Stdio::null())?;
    say("the README's main job against dagster-wandb server");
    let job = Command::new(project_root().join("target/debug/examples/track_models_and_datasets"))
        .env("WANDB_BASE_URL", &server.url)
        .env("WANDB_API_KEY", KEY)
        .env("WANDB_CACHE_DIR", work.join("cache"))
        .current_dir(&work)
        .output()?;
    ensure!(job.status.success(), "the main job failed:\n{}", String::from_utf8_lossy(&job.stderr));
    let hostile_dir = work.join("hostile");
    std::fs::create_dir_all(&hostile_dir)?;
    // A file name cannot hold the `/` of `</script>`: markup of another kind.
    std::fs::write(hostile_dir.join("<img src=x onerror=alert(2)>.txt"), HOSTILE)?;
    let metadata = serde_json::json!({ "note": HOSTILE }).to_string();
    let put = Command::new(&cli)
        .args(["artifact", "put"])
        .arg(&hostile_dir)
        .args(["--name", "hostile", "--type", "dataset", "--project", "artifacts-example"])
        .args(["--description", HOSTILE, "--metadata", &metadata])
        .env("WANDB_BASE_URL", &server.url)
        .env("WANDB_API_KEY", KEY)
        .env("WANDB_CACHE_DIR", work.join("cache"))
        .output()?;
    ensure!(put.status.success(), "logging the hostile artifact failed:\n{}", String::from_utf8_lossy(&put.stderr));
    let expected = through_the_sdk(&server.url, &work)?;

    say("headless Chromium through the pages (screenshots in target/web/screenshots)");
    let browse = Command::new(&python)
        .arg(project_root().join("xtask/web/browse.py"))
        .args([&server.url, KEY])
        .arg(&shots)
        .arg(expected.to_string())
        .output()?;
    ensure!(
        browse.status.success(),
        "the browser walk failed:\n{}\n{}",
        String::from_utf8_lossy(&browse.stderr),
        String::from_utf8_lossy(&browse.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&browse.stdout).context("browse.py printed no JSON")?;
    let checked = report["checked"].as_array().map_or(0, Vec::len);
    drop(server);

    say("dagster-wandb ui over the same store");
    check_ui(&cli, &store)?;
    say(&format!("web: ok ({checked} checks in the browser; screenshots in {})", shots.display()));
    Ok(())
}

/// Through the SDK on the server: a run named with markup, in another project, uses the job's raw data and logs a
/// few rows under a key with markup; and what the training run logged, for the browser to count. What browse.py
/// expects, as JSON.
fn through_the_sdk(url: &str, work: &Path) -> Result<serde_json::Value> {
    let settings = wandb_api::Settings::server(url, Some(KEY.to_owned()))
        .with_entity("local")
        .with_project("artifacts-example")
        .with_cache_dir(Some(work.join("cache")));
    let api = wandb_api::Api::new(settings)?;
    let mut run = api.init(wandb_api::RunSettings::new("hostile-runs").name(HOSTILE_RUN).job_type("inspect"))?;
    run.use_artifact("local/artifacts-example/mnist-raw:v0")?;
    for step in 0..5 {
        run.log(serde_json::json!({ "<b>markup</b>": step }).as_object().cloned().unwrap_or_default())?;
    }
    let hostile_run = format!("/local/hostile-runs/runs/{}", run.id());
    run.finish()?;

    let train = api
        .runs(None)?
        .into_iter()
        .find(|r| r.job_type.as_deref() == Some("train"))
        .context("the main job has no train run")?;
    let history = api.run_history(&train.path())?;
    // What the page charts: each numeric key's points (W&B's own `_` keys left out).
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for row in &history {
        for (key, _) in row.iter().filter(|(k, v)| !k.starts_with('_') && v.as_f64().is_some_and(f64::is_finite)) {
            *counts.entry(key.clone()).or_default() += 1;
        }
    }
    ensure!(!counts.is_empty(), "the train run logged no history");
    Ok(serde_json::json!({
        "hostile_artifact": "/local/artifacts-example/artifacts/dataset/hostile/v0",
        "hostile_markup": HOSTILE,
        "hostile_run": hostile_run,
        "hostile_run_name": HOSTILE_RUN,
        "train_run": train.id,
        "train_rows": history.len(),
        "train_points": counts,
    }))
}

/// `dagster-wandb ui` serves the pages without a key and without the W&B protocol.
fn check_ui(cli: &Path, store: &Path) -> Result<()> {
    use std::io::BufRead as _;
    let mut child = Command::new(cli)
        .args(["ui", "--port", "0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let url = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split(" at ").nth(1).map(str::to_owned))
        .context("dagster-wandb ui printed no URL")?;
    let get = |path: &str| -> Result<(u16, String)> {
        let out = Command::new("curl").args(["-s", "-w", "\n%{http_code}"]).arg(format!("{url}{path}")).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').context("curl printed no status")?;
        Ok((code.trim().parse()?, body.to_owned()))
    };
    let result = (|| -> Result<()> {
        let (status, body) = get("/local/artifacts-example/artifacts/model/trained-model/best/lineage?depth=6")?;
        ensure!(status == 200 && body.contains("data-name=\"mnist-raw:v0\""), "ui lineage page: {status}");
        let (status, _) = get("/graphql")?;
        ensure!(status == 404, "ui answers the W&B protocol ({status})");
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
