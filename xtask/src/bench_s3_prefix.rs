//! `cargo xtask bench s3-prefix`: the manifest of a 100,000-object `s3://` prefix, against moto (the pinned
//! emulator of `cargo xtask s3`, filled through its own backend by `xtask/s3/bench_server.py`).
//!
//! Times `dagster-wandb artifact put s3://bench/prefix/ --dry-run --json` (release build) from start to exit,
//! checks the manifest has one entry per object, and reports the CLI's CPU time and peak resident memory (from
//! `wait4`): the wall time is mostly the emulator's, a single Python process answering the listing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::{project_root, say};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut objects: u64 = 100_000;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--objects" => {
                objects =
                    rest.next().context("--objects needs a number")?.parse().context("--objects needs a number")?
            }
            other => bail!("unknown option {other:?}; usage: cargo xtask bench s3-prefix [--objects N]"),
        }
    }
    let python = crate::venv::python("target/s3/venv", crate::s3::PACKAGES)?;
    let cli = crate::cli_binary(true)?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    say(&format!("filling moto with {objects} objects under s3://bench/prefix/"));
    let filled = Instant::now();
    let mut server = Command::new(&python)
        .arg(project_root().join("xtask/s3/bench_server.py"))
        .args([port.to_string(), objects.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start moto")?;
    let mut ready = String::new();
    BufReader::new(server.stdout.take().context("no stdout")?).read_line(&mut ready)?;
    ensure!(ready.trim() == "ready", "moto did not get ready: {ready:?}");
    say(&format!("filled in {:.1} s", filled.elapsed().as_secs_f64()));

    let endpoint = format!("http://127.0.0.1:{port}");
    let mut put = Command::new(&cli);
    put.args(["artifact", "put", "s3://bench/prefix/", "--name", "bench", "--type", "dataset", "--dry-run", "--json"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_S3_ENDPOINT_URL");
    let started = cpu_time_of_children();
    let (elapsed, peak, out) = crate::bench_transfer::measure(&mut put)?;
    let cpu = cpu_time_of_children() - started;
    drop(server.stdin.take());
    let _ = server.wait();

    let printed: Value = serde_json::from_str(&out).context("the CLI printed no JSON")?;
    let entries = printed.pointer("/manifest/contents").and_then(Value::as_object).map_or(0, |c| c.len());
    ensure!(entries as u64 == objects, "the manifest has {entries} entries for {objects} objects");
    say(&format!(
        "s3-prefix: {objects} objects -> manifest in {:.1} s wall ({:.0} objects/s), CLI CPU {:.2} s, CLI peak RSS {:.0} MiB",
        elapsed.as_secs_f64(),
        objects as f64 / elapsed.as_secs_f64(),
        cpu,
        peak as f64 / f64::from(1 << 20)
    ));
    Ok(())
}

/// User + system seconds of the reaped children so far.
#[allow(unsafe_code, reason = "getrusage has no safe wrapper in std; the argument is a valid local out-pointer")]
fn cpu_time_of_children() -> f64 {
    // SAFETY: `rusage` is plain old data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
