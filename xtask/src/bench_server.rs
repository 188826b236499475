//! `cargo xtask bench server`: the server-security issue's measurements, against the release binary.
//!
//! 1. Memory across a battery of requests: N GraphQL requests with 100 KB of variables on kept-alive
//!    connections, then three 200 MB GraphQL bodies (refused with 413): the server's resident memory before,
//!    after and at its peak.
//! 2. Latency on a kept-alive connection: small GraphQL requests one after another on one connection (with
//!    Nagle's algorithm against delayed ACKs each waited about 44 ms; with `TCP_NODELAY` about a millisecond).
//! 3. A large artifact: E entries sharing one body, committed through the raw protocol (one 1-byte upload, the
//!    manifest streamed), then every page of its file URLs (5,000 a page) timed, then `dagster-wandb artifact
//!    get` of the whole artifact through the server: times and the server's memory, at its peak and once idle.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::served_store::ServedStore;
use crate::{project_root, say};

const KEY: &str = "bench0123456789abcdef0123456789abcdef0123";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut requests = 10_000usize;
    let mut entries = 1_000_000usize;
    let mut download = true;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<usize> {
            let text = args.next().with_context(|| format!("{flag} needs a number"))?;
            text.parse().with_context(|| format!("{flag} needs a number, not {text:?}"))
        };
        match arg.as_str() {
            "--requests" => requests = number("--requests")?,
            "--entries" => entries = number("--entries")?,
            "--no-get" => download = false,
            other => bail!(
                "unknown option {other:?}; usage: cargo xtask bench server [--requests N] [--entries N] [--no-get]"
            ),
        }
    }
    let binary = crate::cli_binary(true)?;
    let work = project_root().join("target/bench/server");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let server = ServedStore::start(&binary, &work.join("store"), &["--api-key", KEY], Stdio::null())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
    runtime.block_on(battery(&server, requests))?;
    runtime.block_on(latency(&server))?;
    runtime.block_on(large_artifact(&server, &binary, &work, entries, download))?;
    Ok(())
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(600)).pool_max_idle_per_host(8).build()?)
}

async fn graphql(http: &reqwest::Client, base_url: &str, operation: &str, variables: Value) -> Result<(u16, Value)> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{KEY}"));
    let response = http
        .post(format!("{base_url}/graphql"))
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(
            &json!({"operationName": operation, "query": format!("query {operation} {{ x }}"), "variables": variables}),
        )?)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn rss(server: &ServedStore) -> f64 {
    mib(server.rss().unwrap_or(0))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

async fn battery(server: &ServedStore, requests: usize) -> Result<()> {
    let http = client()?;
    graphql(&http, &server.url, "Viewer", json!({})).await?;
    let before = rss(server);
    let padding = "p".repeat(100_000);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (http, url, padding) = (http.clone(), server.url.clone(), padding.clone());
        let share = requests / 8 + usize::from(worker < requests % 8);
        tasks.spawn(async move {
            for _ in 0..share {
                let (status, _) = graphql(&http, &url, "Viewer", json!({"padding": padding})).await?;
                ensure!(status == 200, "a request failed with {status}");
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    let after = rss(server);
    let huge = "h".repeat(200 << 20);
    for _ in 0..3 {
        let (status, _) =
            graphql(&http, &server.url, "Viewer", json!({"padding": huge})).await.unwrap_or((0, Value::Null));
        ensure!(status == 413 || status == 0, "a 200 MB GraphQL body was answered {status}");
    }
    drop(huge);
    let after_huge = rss(server);
    say(&format!(
        "memory: {requests} GraphQL requests of 100 KB in {:.1} s: server RSS {before:.1} MiB before, {after:.1} MiB after; \
         after three 200 MB bodies (413): {after_huge:.1} MiB; peak {:.1} MiB",
        elapsed.as_secs_f64(),
        mib(server.peak_rss().unwrap_or(0))
    ));
    Ok(())
}

async fn latency(server: &ServedStore) -> Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(1).build()?;
    graphql(&http, &server.url, "Viewer", json!({})).await?;
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        graphql(&http, &server.url, "Viewer", json!({})).await?;
    }
    let kept_alive = started.elapsed() / n;
    say(&format!("latency: {:.2} ms per small request on one kept-alive connection", kept_alive.as_secs_f64() * 1e3));
    Ok(())
}

async fn large_artifact(
    server: &ServedStore,
    binary: &std::path::Path,
    work: &std::path::Path,
    entries: usize,
    download: bool,
) -> Result<()> {
    let http = client()?;
    let body = b"x";
    let md5 = {
        let mut reader: &[u8] = body;
        artifact_core::digest_reader_b64(artifact_core::DigestAlgorithm::Md5, &mut reader)?.0
    };
    // The manifest as a client writes it, streamed from a file.
    let manifest_path = work.join("manifest.json");
    let mut manifest = artifact_core::Manifest::new();
    for i in 0..entries {
        let entry = artifact_core::ManifestEntry { digest: md5.clone(), size: Some(1), ..Default::default() };
        manifest.add_entry(artifact_core::LogicalPath::new(&format!("d{:04}/f{i:07}.txt", i / 1000))?, entry, false)?;
    }
    let digest = manifest.digest();
    std::fs::write(&manifest_path, manifest.to_go_json())?;
    let manifest_bytes = std::fs::metadata(&manifest_path)?.len();
    drop(manifest);

    let started = Instant::now();
    let (_, created) = graphql(
        &http,
        &server.url,
        "CreateArtifact",
        json!({"input": {"entityName": "bench", "projectName": "large", "artifactTypeName": "dataset",
                         "artifactCollectionName": "many-files", "digest": digest, "digestAlgorithm": "MANIFEST_MD5"}}),
    )
    .await?;
    let id = created.pointer("/data/createArtifact/artifact/id").and_then(Value::as_str).context("no id")?.to_owned();
    let (_, files) = graphql(
        &http,
        &server.url,
        "CreateArtifactFiles",
        json!({"input": {"artifactFiles": [{"artifactID": id, "name": "d0000/f0000000.txt", "md5": md5}]}}),
    )
    .await?;
    if let Some(url) = files.pointer("/data/createArtifactFiles/files/edges/0/node/uploadUrl").and_then(Value::as_str) {
        ensure!(http.put(url).header("Content-MD5", &md5).body(&body[..]).send().await?.status().is_success());
    }
    let (_, declared) =
        graphql(&http, &server.url, "CreateArtifactManifest", json!({"artifactID": id, "includeUpload": true})).await?;
    let upload = declared
        .pointer("/data/createArtifactManifest/artifactManifest/file/uploadUrl")
        .and_then(Value::as_str)
        .context("no manifest URL")?;
    let file = tokio::fs::File::open(&manifest_path).await?;
    let stream = tokio_util::io::ReaderStream::new(file);
    let put = http.put(upload).body(reqwest::Body::wrap_stream(stream)).send().await?;
    ensure!(put.status().is_success(), "manifest upload: {}", put.status());
    let (_, committed) = graphql(&http, &server.url, "CommitArtifact", json!({"input": {"artifactID": id}})).await?;
    ensure!(committed.get("errors").is_none(), "commit failed: {committed}");
    let commit_time = started.elapsed();
    let peak_commit = mib(server.peak_rss().unwrap_or(0));
    let held_commit = rss(server);

    let started = Instant::now();
    let mut cursor: Option<String> = None;
    let (mut pages, mut listed, mut slowest) = (0, 0usize, Duration::ZERO);
    loop {
        let page_started = Instant::now();
        let (_, page) = graphql(
            &http,
            &server.url,
            "GetArtifactMembershipFileUrls",
            json!({"entity": "bench", "project": "large", "collection": "many-files", "alias": "latest",
                   "cursor": cursor, "perPage": 5000}),
        )
        .await?;
        slowest = slowest.max(page_started.elapsed());
        let files = page.pointer("/data/project/artifactCollection/artifactMembership/files").context("no files")?;
        listed += files.pointer("/edges").and_then(Value::as_array).map_or(0, Vec::len);
        pages += 1;
        match (files.pointer("/pageInfo/hasNextPage").and_then(Value::as_bool), files.pointer("/pageInfo/endCursor")) {
            (Some(true), Some(Value::String(next))) => cursor = Some(next.clone()),
            _ => break,
        }
    }
    ensure!(listed == entries, "listed {listed} of {entries} files");
    let paging = started.elapsed();
    let held_paging = rss(server);
    // The server drops a manifest 30 s after its last use.
    tokio::time::sleep(Duration::from_secs(45)).await;
    let held_idle = rss(server);

    say(&format!(
        "large artifact: {entries} entries ({:.0} MiB manifest) committed in {:.1} s (server RSS peak {peak_commit:.0} MiB, \
         then {held_commit:.0} MiB); {pages} pages of file URLs in {:.1} s (slowest page {:.0} ms; server RSS then \
         {held_paging:.0} MiB, {held_idle:.0} MiB 45 s later)",
        mib(manifest_bytes),
        commit_time.as_secs_f64(),
        paging.as_secs_f64(),
        slowest.as_secs_f64() * 1e3,
    ));
    if !download {
        return Ok(());
    }
    let root: PathBuf = work.join("download");
    let mut get = Command::new(binary);
    get.args(["artifact", "get", "bench/large/many-files:latest", "--json", "--root"])
        .arg(&root)
        .env("WANDB_BASE_URL", &server.url)
        .env("WANDB_API_KEY", KEY)
        .env("WANDB_CACHE_DIR", work.join("cache"));
    let (elapsed, client_peak, _) = crate::bench_transfer::measure(&mut get)?;
    say(&format!(
        "large artifact: `artifact get` of all of it in {:.1} s; client peak RSS {:.0} MiB ({:.0} bytes per entry); \
         server RSS peak {:.0} MiB, then {:.0} MiB",
        elapsed.as_secs_f64(),
        mib(client_peak),
        client_peak as f64 / entries as f64,
        mib(server.peak_rss().unwrap_or(0)),
        rss(server)
    ));
    Ok(())
}
