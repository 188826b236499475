//! `cargo xtask web`: the web view in a real browser. The README's main job runs against `dagster-wandb server`
//! (with an API key), an artifact with hostile names is logged beside it, and `xtask/web/browse.py` drives
//! headless Chromium through Selenium (PyPI, pinned, in `target/web/venv`; Chromium and chromedriver from the
//! system, Debian's `chromium` and `chromium-driver`): sign-in, project, collection, version, files, lineage, the
//! training run and its chart. Screenshots of each page land in `target/web/screenshots/` for a person to look
//! at. `dagster-wandb ui` is checked to serve the same pages without the W&B protocol.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::served_store::ServedStore;
use crate::{cargo, project_root, say};

const PACKAGES: &[(&str, &str)] = &[("selenium", "4.27.1")];
const KEY: &str = "webview0123456789abcdef0123456789abcdefab";
/// Markup in every place a user may put text, which must render as text.
const HOSTILE: &str = "<script>alert(1)</script>";

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

    say("headless Chromium through the pages (screenshots in target/web/screenshots)");
    let browse = Command::new(&python)
        .arg(project_root().join("xtask/web/browse.py"))
        .args([&server.url, KEY])
        .arg(&shots)
        .arg("/local/artifacts-example/artifacts/dataset/hostile/v0/metadata")
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
