//! `cargo xtask interop`: our artifacts and step outputs against the real Python packages.
//!
//! A virtualenv with pinned packages from PyPI (`wandb`, `dill`, `cloudpickle`, `joblib`, `msgpack`) is created once
//! under `target/interop/venv` and reused. Three suites run: `manifests` (our manifests and digests against the
//! wandb SDK, both ways), `outputs` (step outputs written by Rust load in the Python modules to the same values,
//! and what the Python modules write decodes in Rust to the same values) and `wandb` (the real client and ours
//! against `dagster-wandb server`, each downloading what the other logged).

mod edits;
mod manifests;
mod outputs;
pub(crate) mod wire;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::{project_root, say};

/// The SDK version the project is compatible with.
pub(crate) const WANDB_VERSION: &str = "0.31.0";

/// Every package of the venv, pinned; the venv is rebuilt when any differs.
pub(crate) const PACKAGES: &[(&str, &str)] =
    &[("wandb", WANDB_VERSION), ("dill", "0.4.1"), ("cloudpickle", "3.1.2"), ("joblib", "1.6.0"), ("msgpack", "1.2.4")];

/// Runs every suite, or the one named (`manifests`, `outputs`, `wandb`).
pub(crate) fn run(suite: Option<&str>) -> Result<()> {
    let wanted = |name: &str| suite.is_none_or(|s| s == name);
    if let Some(other) = suite.filter(|s| !["manifests", "outputs", "wandb"].contains(s)) {
        bail!("unknown interop suite {other:?}: expected manifests, outputs or wandb");
    }
    let python = crate::venv::python("target/interop/venv", PACKAGES)?;
    let cli = crate::cli_binary(false)?;

    let mut results = Comparisons::default();
    if wanted("manifests") {
        manifests::run(&python, &cli, &mut results)?;
    }
    if wanted("outputs") {
        outputs::run(&python, &cli, &mut results)?;
    }
    if wanted("wandb") {
        wire::run(&python, &cli, &mut results)?;
    }
    if !results.failures.is_empty() {
        bail!(
            "{} of {} comparisons differ:\n{}",
            results.failures.len(),
            results.compared,
            results.failures.join("\n")
        );
    }
    say(&format!("interop: all {} comparisons agree with the Python packages", results.compared));
    Ok(())
}

/// A tally of comparisons; failures are collected so one run reports all of them.
#[derive(Default)]
pub(crate) struct Comparisons {
    compared: usize,
    failures: Vec<String>,
}

impl Comparisons {
    pub(crate) fn record(&mut self, label: &str, same: bool, details: impl FnOnce() -> String) {
        self.compared += 1;
        if same {
            say(&format!("same: {label}"));
        } else {
            self.failures.push(format!("{label}:\n  {}", details()));
        }
    }
}

/// Runs `xtask/interop/<script>` with `input` on stdin; returns one JSON value per output line.
pub(crate) fn run_script(python: &Path, script: &str, input: &[u8]) -> Result<Vec<Value>> {
    run_script_args(python, script, &[], input)
}

pub(crate) fn run_script_args(python: &Path, script: &str, args: &[&str], input: &[u8]) -> Result<Vec<Value>> {
    let home = project_root().join("target/interop/home");
    std::fs::create_dir_all(&home)?;
    let mut child = Command::new(python)
        .arg(project_root().join("xtask/interop").join(script))
        .args(args)
        .env("WANDB_MODE", "offline")
        .env("WANDB_DIR", &home)
        .env("WANDB_CACHE_DIR", home.join("cache"))
        .env("WANDB_DATA_DIR", home.join("data"))
        .env("WANDB_CONFIG_DIR", home.join("config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {script}"))?;
    child.stdin.take().expect("piped").write_all(input)?;
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "{script} failed");
    // Views of deep values nest beyond serde_json's default limit of 128.
    let parse = |line: &str| -> Result<Value> {
        let mut de = serde_json::Deserializer::from_str(line);
        de.disable_recursion_limit();
        Ok(serde::Deserialize::deserialize(&mut de)?)
    };
    String::from_utf8(out.stdout)?.lines().map(parse).collect()
}
