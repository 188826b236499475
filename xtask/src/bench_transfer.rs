//! `cargo xtask bench transfer`: uploads and downloads through `dagster-wandb server`, next to `curl`.
//!
//! Starts the release `dagster-wandb server` on a fresh store, then times, each once on a cold cache:
//! - `dagster-wandb artifact put` of one big file (hashing it, then uploading it; multipart past 2 GiB), and
//!   `curl -T` of a file of the same size to an upload URL of the same server (what the transfer alone costs);
//! - `dagster-wandb artifact get` of it into a fresh directory with a fresh cache (parallel ranges, verified,
//!   written to the cache and the destination), and `curl -o /dev/null` of the same object.
//!
//! It reports wall time, throughput and the peak resident memory of each CLI process (from `wait4`), and the
//! server's own peak. `--check` fails when a CLI process's peak exceeds 64 MiB, the target of the W&B
//! protocol issue. Files live under `target/bench/transfer` (on disk: a 2 GiB run needs about 12 GiB).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::bench::XorShift;
use crate::served_store::ServedStore;
use crate::{project_root, say};

const DEFAULT_SIZE: u64 = 2 << 30;
const RSS_TARGET: u64 = 64 << 20;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask bench transfer [--check] [--size BYTES] [--dir DIR]";
    let mut check = false;
    let mut size = DEFAULT_SIZE;
    let mut dir = project_root().join("target/bench/transfer");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--size" => {
                let text = args.next().context("--size needs a number of bytes")?;
                size = text.parse().with_context(|| format!("--size needs a number of bytes, not {text:?}"))?;
            }
            "--dir" => dir = std::path::absolute(args.next().context("--dir needs a path")?)?,
            other => bail!("unknown option {other:?}; {usage}"),
        }
    }
    ensure!(size > 0, "--size must be positive");

    let binary = crate::cli_binary(true)?;

    let ours = dir.join("ours/model.bin");
    let theirs = dir.join("curl/model.bin");
    make_file(&ours, size, 0x9e37_79b9_7f4a_7c15)?;
    make_file(&theirs, size, 0x2545_f491_4f6c_dd1d)?;
    let work = dir.join("work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;

    let server = ServedStore::start(&binary, &work.join("store"), &["--default-entity", "bench"], Stdio::null())?;
    let url = server.url.clone();
    let cli = |args: &[&str], cache: &str| {
        let mut command = Command::new(&binary);
        command
            .args(args)
            .env("WANDB_BASE_URL", &url)
            .env("WANDB_API_KEY", "bench")
            .env("WANDB_CACHE_DIR", work.join(cache))
            .env("WANDB_ENTITY", "bench")
            .env("WANDB_PROJECT", "transfer")
            .env_remove("RUST_LOG");
        command
    };

    say(&format!("transfer of one {} file through dagster-wandb server at {url}", human(size)));
    let mut put = cli(&["artifact", "put", "--name", "model", "--type", "model", "--json"], "cache-put");
    put.arg(ours.parent().expect("a parent"));
    let (put_time, put_rss, put_out) = measure(&mut put)?;
    let logged: Value = serde_json::from_str(&put_out).context("`artifact put --json` printed no JSON")?;
    let md5 = object_md5(&logged, "model.bin")?;

    let curl_up = curl_upload(&url, &theirs)?;

    let root = work.join("download");
    let mut get = cli(&["artifact", "get", "model:latest", "--json", "--root"], "cache-get");
    get.arg(&root);
    let (get_time, get_rss, _) = measure(&mut get)?;
    ensure!(fs::metadata(root.join("model.bin"))?.len() == size, "the download has the wrong size");

    // The signed URL the server hands a client for the body (storage URLs are presigned).
    let urls = graphql(
        &url,
        "GetArtifactMembershipFileUrls",
        json!({"entity": "bench", "project": "transfer", "collection": "model", "alias": "latest", "perPage": 1}),
    )?;
    let object_url = urls
        .pointer("/project/artifactCollection/artifactMembership/files/edges/0/node/directUrl")
        .and_then(Value::as_str)
        .context("the server gave no download URL")?
        .to_owned();
    ensure!(object_url.contains(&b64_to_hex(&md5)?), "the download URL {object_url} is not the body's");
    let curl_down = curl_download(&object_url)?;
    let server_rss = server.peak_rss();

    let mib_s = |seconds: f64| size as f64 / (1 << 20) as f64 / seconds.max(1e-9);
    say(&format!(
        "  upload    dagster-wandb artifact put   {:>7.2} s  {:>7.0} MiB/s  peak RSS {:>6.1} MiB  (hashing included)",
        put_time.as_secs_f64(),
        mib_s(put_time.as_secs_f64()),
        mib(put_rss)
    ));
    say(&format!("            curl -T (transfer only)      {:>7.2} s  {:>7.0} MiB/s", curl_up, mib_s(curl_up)));
    say(&format!(
        "  download  dagster-wandb artifact get   {:>7.2} s  {:>7.0} MiB/s  peak RSS {:>6.1} MiB  (verified, cached)",
        get_time.as_secs_f64(),
        mib_s(get_time.as_secs_f64()),
        mib(get_rss)
    ));
    say(&format!("            curl -o /dev/null            {:>7.2} s  {:>7.0} MiB/s", curl_down, mib_s(curl_down)));
    if let Some(rss) = server_rss {
        say(&format!("  server peak RSS {:.1} MiB", mib(rss)));
    }
    drop(server);
    let _ = fs::remove_dir_all(&work);

    if check {
        for (what, rss) in [("artifact put", put_rss), ("artifact get", get_rss)] {
            ensure!(
                rss <= RSS_TARGET,
                "{what} peaked at {:.1} MiB, over the {} MiB target",
                mib(rss),
                RSS_TARGET >> 20
            );
        }
        say("check: ok (peak RSS within 64 MiB)");
    }
    Ok(())
}

/// Runs `command` to completion: its wall time, peak resident memory and standard output.
pub(crate) fn measure(command: &mut Command) -> Result<(Duration, u64, String)> {
    let start = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn().context("cannot start the CLI")?;
    let mut out = String::new();
    child.stdout.take().context("no stdout")?.read_to_string(&mut out)?;
    let (status, peak) = wait_with_peak_rss(&child)?;
    let elapsed = start.elapsed();
    ensure!(status == 0, "{command:?} failed (wait status {status})");
    Ok((elapsed, peak, out))
}

/// Reaps `child` with `wait4`, the one call that reports a single child's peak resident set.
#[allow(unsafe_code, reason = "wait4 has no safe wrapper in std; the arguments are valid local out-pointers")]
fn wait_with_peak_rss(child: &Child) -> Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills; both pointers outlive the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `pid` is our own unreaped child, so no other process is reaped by mistake.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    ensure!(reaped == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    // ru_maxrss is in KiB on Linux.
    Ok((status, u64::try_from(usage.ru_maxrss).unwrap_or(0) << 10))
}

/// `curl -T` of `file` to an upload URL the server hands out for a new pending artifact: seconds taken.
fn curl_upload(base_url: &str, file: &Path) -> Result<f64> {
    let md5 = {
        let mut reader = BufReader::with_capacity(1 << 20, File::open(file)?);
        artifact_core::digest_reader_b64(artifact_core::DigestAlgorithm::Md5, &mut reader)?.0
    };
    let created = graphql(
        base_url,
        "CreateArtifact",
        json!({"input": {
            "entityName": "bench", "projectName": "transfer", "artifactTypeName": "model",
            "artifactCollectionName": "curl-upload", "digest": md5, "digestAlgorithm": "MANIFEST_MD5",
            "aliases": [], "enableDigestDeduplication": false,
        }}),
    )?;
    let id = created.pointer("/createArtifact/artifact/id").and_then(Value::as_str).context("no artifact id")?;
    let files = graphql(
        base_url,
        "CreateArtifactFiles",
        json!({"input": {"artifactFiles": [{"artifactID": id, "name": "model.bin", "md5": md5}]}}),
    )?;
    let upload_url = files
        .pointer("/createArtifactFiles/files/edges/0/node/uploadUrl")
        .and_then(Value::as_str)
        .context("the server gave no upload URL")?;
    let md5_header = format!("Content-MD5: {md5}");
    let args = [OsStr::new("-H"), OsStr::new(&md5_header), OsStr::new("-T"), file.as_os_str(), OsStr::new(upload_url)];
    timed_curl("upload", &args)
}

/// `curl -o /dev/null` of `url`: seconds taken.
fn curl_download(url: &str) -> Result<f64> {
    timed_curl("download", &[OsStr::new(url)])
}

/// `curl` with `args`, its body discarded: the seconds it reports (`time_total`).
fn timed_curl(what: &str, args: &[&OsStr]) -> Result<f64> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}"])
        .args(args)
        .output()
        .context("cannot run curl")?;
    ensure!(out.status.success(), "curl {what} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// A GraphQL operation through `curl` (the server dispatches on the operation name and reads the variables).
fn graphql(base_url: &str, operation: &str, variables: Value) -> Result<Value> {
    let body =
        json!({"query": format!("mutation {operation} {{ }}"), "operationName": operation, "variables": variables});
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-u", "api:bench", "-H", "Content-Type: application/json", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("{base_url}/graphql"))
        .output()
        .context("cannot run curl")?;
    ensure!(out.status.success(), "{operation} failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout)?;
    if let Some(errors) = answer.get("errors").filter(|e| !e.is_null()) {
        bail!("{operation}: {errors}");
    }
    answer.get("data").cloned().context("no data")
}

/// The digest `artifact put --json` reports for `path`.
fn object_md5(logged: &Value, path: &str) -> Result<String> {
    let manifest = logged.get("manifest").context("`artifact put --json` printed no manifest")?;
    let entry = manifest.pointer(&format!("/contents/{path}")).context("the manifest lacks the file")?;
    Ok(entry.get("digest").and_then(Value::as_str).context("no digest")?.to_owned())
}

fn b64_to_hex(b64: &str) -> Result<String> {
    Ok(artifact_core::b64_to_hex(b64)?)
}

/// A file of `size` pseudo-random bytes (incompressible, distinct per seed), kept between runs.
fn make_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    // Beside the file's directory, not in it: the directory is what gets logged.
    let marker = path.parent().expect("a parent").with_extension(format!("seed-{seed:x}-{size}"));
    if marker.exists() && fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    fs::create_dir_all(path.parent().expect("a parent"))?;
    let stem = marker.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    for old in fs::read_dir(marker.parent().expect("a parent"))? {
        let old = old?.path();
        if old.file_stem().is_some_and(|s| s.to_string_lossy() == stem) && old.extension().is_some() {
            fs::remove_file(old)?;
        }
    }
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = XorShift(seed);
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        rng.fill(&mut buffer[..n]);
        out.write_all(&buffer[..n])?;
        left -= n as u64;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    File::create(&marker)?;
    Ok(())
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", mib(bytes))
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
