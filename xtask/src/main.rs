//! `cargo xtask`: benchmarks, tidy checks and the CI recipe, runnable on a clean clone.

mod bench;
mod bench_manifest_memory;
mod bench_s3_prefix;
mod bench_sdk;
mod bench_serde;
mod bench_server;
mod bench_sweep;
mod bench_transfer;
mod bench_web;
mod dagster_e2e;
mod gcs;
mod interop;
mod loopback;
mod s3;
mod served_store;
mod tidy;
mod venv;
mod web;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  bench add-dir [--check] [--runs N] [--dir DIR]
        time `artifact put --dry-run` on 10,000 x 4 KiB files in 1,000 dirs and on 2 x 512 MiB files,
        next to md5sum over the same files, plus the memoised re-add; --check fails on a missed target
  bench serde [--runs N]
        encode/decode throughput of every serialization module on a ~100 MB nested value, next to
        CPython's pickle on the same value
  bench sweep [--check] [--runs N] [--dir DIR]
        time `cache sweep` removing 100,000 expired files in 1,000 dirs, and scanning them when nothing has
        expired, next to CPython running dagster-wandb's loop; --check fails when removing takes over 1 s
  bench transfer [--check] [--size BYTES] [--dir DIR]
        upload and download one big file (default 2 GiB) through `dagster-wandb server`, next to curl against
        the same server, with each CLI process's peak RSS; --check fails when one exceeds 64 MiB
  bench run-log [--check] [--rows N]
        the cost of `Run::log` on the caller's thread over 1,000,000 rows logged to an embedded store (release
        build), and the time for the writer to drain them; --check fails above 1 µs per call
  bench s3-prefix [--objects N]
        the manifest of a 100,000-object s3:// prefix on moto: wall time, the CLI's CPU time and peak RSS
  bench manifest-memory [--check] [--entries N]
        bytes per entry of a reference manifest (default 1,000,000 s3:// entries), counted by xtask's allocator:
        held, peak while adding and writing, and parsed back; --check fails above 1 KiB per entry at the peak
  bench web [--check]
        the web view's heaviest pages through `dagster-wandb ui` (release build): a project of 1,000
        collections, a version of 100,000 files (overview, Files at the root and in a directory, Lineage);
        --check fails above 1 s
  interop [manifests|outputs|wandb]
        compare with the real Python packages (PyPI, pinned, in target/interop/venv): manifests and digests
        with wandb 0.31.0; step outputs with pickle, dill, cloudpickle, joblib, msgpack; and the wire protocol,
        the real wandb client and our CLI each downloading what the other logged through `dagster-wandb server`,
        runs logged and resumed, distributed artifacts, and W&B Launch both ways
  dagster-e2e
        the Python companion pip-installed and its pytest suite run at both ends of its dagster range (PyPI,
        pinned, in target/dagster-e2e/venv and venv-lowest); materialize examples/dagster with the real `dagster`
        CLI on a fresh embedded store and through `dagster-wandb server`, run its launch agent and launch jobs;
        check Dagster's event log (W&B metadata, checks, failing Rust steps, launches) and the stores
  gcs   gs:// references against gcp-storage-emulator (PyPI, pinned, in target/gcs/venv) on loopback, shared
        with the real wandb 0.31.0 client through `dagster-wandb server`: entries, downloads both ways, caches
  s3    s3:// references against moto (PyPI, pinned, in target/s3/venv) on loopback: every vector of
        shared/vectors/s3-references, with our documented fixes of the SDK's bugs
  web   the web view in headless Chromium (Debian's chromium and chromium-driver; Selenium from PyPI, pinned,
        in target/web/venv) after the README's main job ran against `dagster-wandb server`; screenshots of each
        page in target/web/screenshots
  tidy  check workspace conventions (also run by `cargo test`)
  ci    run what CI runs: fmt, clippy, tests, docs, publish dry-run, tidy, the example
";

#[global_allocator]
static ALLOCATOR: bench_manifest_memory::Counting = bench_manifest_memory::Counting;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("tidy") => {
            let problems = tidy::check(&project_root())?;
            if problems.is_empty() {
                say("tidy: ok");
                Ok(())
            } else {
                bail!("tidy found problems:\n  {}", problems.join("\n  "))
            }
        }
        Some("interop") => interop::run(args.get(1).map(String::as_str)),
        Some("dagster-e2e") => dagster_e2e::run(),
        Some("s3") => s3::run(),
        Some("gcs") => gcs::run(),
        Some("web") => web::run(),
        Some("ci") => ci(),
        Some("-h" | "--help" | "help") | None => {
            say(USAGE);
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The workspace root.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_path_buf()
}

/// Prints a line for the user; xtask is a command-line tool.
#[allow(clippy::print_stdout, reason = "xtask reports to its user on stdout")]
pub(crate) fn say(line: &str) {
    println!("{line}");
}

/// `cargo` as invoked by the user (or from `PATH`).
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// The `dagster-wandb` binary, built first (`release` for benchmarks).
pub(crate) fn cli_binary(release: bool) -> Result<PathBuf> {
    let mut build = cargo();
    build.args(["build", "--quiet", "-p", "dagster-wandb-cli", "--bin", "dagster-wandb"]);
    if release {
        build.arg("--release");
    }
    anyhow::ensure!(build.status()?.success(), "building the dagster-wandb binary failed");
    Ok(project_root().join(if release { "target/release" } else { "target/debug" }).join("dagster-wandb"))
}

/// The checks CI runs: `.ci/run`, the single recipe.
fn ci() -> Result<()> {
    let status = Command::new("bash")
        .arg(project_root().join(".ci/run"))
        .current_dir(project_root())
        .status()
        .context("cannot start bash to run .ci/run")?;
    if !status.success() {
        bail!(".ci/run failed ({status})");
    }
    Ok(())
}
