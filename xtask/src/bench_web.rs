//! `cargo xtask bench web`: how long the web view's heaviest pages take, through `dagster-wandb ui` (release
//! build) on loopback: a project with 1,000 collections, a version with 100,000 files (its Files tab at the root
//! and inside a directory), its lineage, and the page of a run with 10,000 history rows (two charts, each
//! downsampled to 1,000 points). Each page is fetched five times; the slowest is reported. `--check` fails above
//! one second.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::{project_root, say};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let check = match args.first().map(String::as_str) {
        None => false,
        Some("--check") => true,
        Some(other) => bail!("unknown option {other:?}; usage: cargo xtask bench web [--check]"),
    };
    let cli = crate::cli_binary(true)?;
    let work = project_root().join("target/bench/web");
    let _ = std::fs::remove_dir_all(&work);
    let store = work.join("store");
    std::fs::create_dir_all(&work)?;
    let put = |dir: &Path, name: &str| -> Result<()> {
        let out = Command::new(&cli)
            .args(["artifact", "put"])
            .arg(dir)
            .args(["--name", name, "--type", "dataset", "--project", "big"])
            .env("WANDB_BASE_URL", format!("file://{}", store.display()))
            .env("WANDB_CACHE_DIR", work.join("cache"))
            .output()?;
        ensure!(out.status.success(), "put {name}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    say("filling a store: 1,000 collections, one version of 100,000 files");
    let one = work.join("one");
    std::fs::create_dir_all(&one)?;
    for i in 0..1000 {
        std::fs::write(one.join("f.txt"), i.to_string())?;
        put(&one, &format!("collection-{i:04}"))?;
    }
    let many = work.join("many");
    for i in 0..100_000 {
        let sub = many.join(format!("d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub)?;
        }
        std::fs::write(sub.join(format!("f{i:06}.txt")), i.to_string())?;
    }
    put(&many, "many-files")?;
    say("a run with 10,000 history rows");
    let run_path = long_run(&store, &work)?;

    let mut ui = Command::new(&cli)
        .args(["ui", "--port", "0", "--store"])
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = ui.stdout.take().context("no stdout")?;
    let url = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split(" at ").nth(1).map(str::to_owned))
        .context("dagster-wandb ui printed no URL")?;
    let version = "/local/big/artifacts/dataset/many-files/v0";
    let pages = [
        ("project with 1,000 collections (first page)", "/local/big".to_owned()),
        ("collection list, page 10", "/local/big?page=10".to_owned()),
        ("version of 100,000 files, overview", version.to_owned()),
        ("its Files tab, root (1,000 directories)", format!("{version}/files")),
        ("its Files tab, one directory", format!("{version}/files?dir=d0500%2F")),
        ("its Lineage tab", format!("{version}/lineage")),
        ("run with 10,000 history rows (2 charts)", run_path),
    ];
    let mut slowest_of_all = 0f64;
    let fetch = |path: &str| -> Result<f64> {
        let started = Instant::now();
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{url}{path}"))
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(String::from_utf8_lossy(&out.stdout) == "200", "{path}: {}", String::from_utf8_lossy(&out.stdout));
        Ok(seconds)
    };
    let result = (|| -> Result<()> {
        for (label, path) in &pages {
            let mut slowest = 0f64;
            for _ in 0..5 {
                slowest = slowest.max(fetch(path)?);
            }
            slowest_of_all = slowest_of_all.max(slowest);
            say(&format!("  {label:<48} {:>7.1} ms (slowest of 5)", slowest * 1e3));
        }
        Ok(())
    })();
    let _ = ui.kill();
    let _ = ui.wait();
    result?;
    if check {
        ensure!(slowest_of_all <= 1.0, "a page took {slowest_of_all:.2} s, above 1 s");
    }
    Ok(())
}

/// Logs a run of `local/big` with 10,000 history rows of two metrics through the SDK; its page's path.
fn long_run(store: &Path, work: &Path) -> Result<String> {
    let settings = wandb_api::Settings::embedded(store)
        .with_entity("local")
        .with_project("big")
        .with_cache_dir(Some(work.join("cache")));
    let api = wandb_api::Api::new(settings)?;
    let mut run = api.init(wandb_api::RunSettings::new("big").job_type("train"))?;
    for step in 0..10_000u32 {
        let x = f64::from(step);
        let row = serde_json::json!({"loss": 1.0 / (1.0 + x / 100.0), "accuracy": (x / 10_000.0).sqrt()});
        run.log(row.as_object().cloned().unwrap_or_default())?;
    }
    let path = format!("/local/big/runs/{}", run.id());
    run.finish()?;
    Ok(path)
}
