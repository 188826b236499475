//! Our client against our W&B-compatible server, over real HTTP on loopback: every step of logging, using,
//! downloading and linking, and every injected fault.

use std::fs;
use std::time::Duration;

use artifact_core::{AddDirOptions, Artifact, DigestAlgorithm};
use wandb_api::client::{ClientOptions, RetryPolicy, WandbClient};
use wandb_api::{ArtifactVersion, Backend, DownloadOptions, DownloadReport, Error, LogOptions, ProjectRef, RunOptions};
use wandb_server::{Fault, FaultTarget, RunningServer, ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

use crate::support::Fixture;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

async fn serve(f: &Fixture, options: ServerOptions) -> RunningServer {
    let store = EmbeddedStore::open(f.store.root()).unwrap();
    let options = ServerOptions { record_requests: true, ..options };
    WandbServer::bind(store, "127.0.0.1:0".parse().unwrap(), options).await.unwrap().spawn()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        min_wait: Duration::from_millis(10),
        max_wait: Duration::from_millis(50),
        deadline: Some(Duration::from_secs(60)),
        ..RetryPolicy::default()
    }
}

fn client(server: &RunningServer) -> WandbClient {
    client_with(server, ClientOptions::default())
}

fn client_with(server: &RunningServer, options: ClientOptions) -> WandbClient {
    let options = options.with_retry(fast_retries());
    WandbClient::with_options(server.base_url(), Some(KEY.to_owned()), &[], options).unwrap()
}

/// Downloads all of `version` into `root`, as `ArtifactHandle::download_with` does.
async fn fetch(
    client: &WandbClient,
    version: &ArtifactVersion,
    root: &std::path::Path,
    options: &DownloadOptions,
) -> wandb_api::Result<DownloadReport> {
    let manifest = client.manifest(version).await?;
    client.download(version, &manifest, root, options).await
}

fn run_options(id: &str, job_type: Option<&str>) -> RunOptions {
    RunOptions { id: Some(id.into()), job_type: job_type.map(str::to_owned), ..Default::default() }
}

fn files(f: &Fixture) -> std::path::PathBuf {
    f.dir(
        "data",
        &[
            ("train/a.csv", b"x,y\n1,2\n"),
            ("empty.txt", b""),
            ("unicode-\u{e9}\u{e8} name.txt", b"caf\xc3\xa9\n"),
            ("deep/er/b.bin", &[7u8; 3000]),
        ],
    )
}

fn dataset(name: &str, dir: &std::path::Path, algorithm: DigestAlgorithm) -> Artifact {
    let mut a = Artifact::new(name, "dataset").unwrap();
    a.set_digest_algorithm(algorithm).unwrap();
    a.set_description(Some("desc".into()));
    a.set_metadata(serde_json::json!({"k": 1})).unwrap();
    a.add_dir(dir, AddDirOptions::default()).unwrap();
    a
}

fn tree(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn download_options(f: &Fixture, cache: &str) -> DownloadOptions {
    DownloadOptions { cache: Some(io_cache::ContentCache::new(f.path(cache))), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_dedup_use_download_and_link_round_trip() {
    let f = Fixture::new();
    let server = serve(&f, ServerOptions { api_key: Some(KEY.into()), ..Default::default() }).await;
    let client = client(&server);
    let project = ProjectRef::new("ent", "proj").unwrap();
    let dir = files(&f);
    client.resume_run(&project, &run_options("run1", Some("train"))).await.unwrap();

    let art = dataset("my-ds", &dir, DigestAlgorithm::Md5);
    let options = LogOptions::default().with_aliases(["best"]).with_run_id("run1");
    let logged = client.log_artifact(&project, &art, &options).await.unwrap();
    assert!(logged.created);
    assert_eq!(logged.version.qualified_name(), "my-ds:v0");
    assert_eq!(logged.version.digest, art.digest());
    assert_eq!(logged.version.aliases, ["best", "latest"]);
    assert_eq!(logged.version.metadata["k"], 1);
    assert_eq!(logged.stored_files, 4);
    // The store now holds what a local log would: same digest, manifest with birth ids.
    let stored = f.store.artifact(&project, "my-ds", "best").unwrap();
    assert_eq!(stored.digest, art.digest());
    assert_eq!(stored.created_by.as_deref(), Some("run1"));

    // Identical content: dedup, nothing uploaded, the new alias lands on v0.
    let again = LogOptions::default().with_aliases(["again"]);
    let deduped = client.log_artifact(&project, &art, &again).await.unwrap();
    assert!(!deduped.created);
    assert_eq!(deduped.stored_files, 0);
    assert_eq!(deduped.version.id, logged.version.id);
    assert_eq!(f.store.artifact(&project, "my-ds", "again").unwrap().version_index, 0);

    // A second version re-uploads only the changed body (the server has the others).
    fs::write(dir.join("train/a.csv"), b"x,y\n3,4\n").unwrap();
    let v1 = client
        .log_artifact(&project, &dataset("my-ds", &dir, DigestAlgorithm::Md5), &Default::default())
        .await
        .unwrap();
    assert_eq!(v1.version.version_index, 1);
    assert_eq!((v1.stored_files, v1.reused_files), (1, 3));

    // Tags travel with CreateArtifact and come back with the version.
    fs::write(dir.join("train/a.csv"), b"x,y\n5,6\n").unwrap();
    let tagged = LogOptions::default().with_tags(["nightly", "from ci", "nightly"]);
    let v2 = client.log_artifact(&project, &dataset("my-ds", &dir, DigestAlgorithm::Md5), &tagged).await.unwrap();
    assert_eq!(v2.version.tags, ["nightly", "from ci"]);
    assert_eq!(f.store.artifact(&project, "my-ds", "v2").unwrap().tags, ["nightly", "from ci"]);
    let bad = LogOptions::default().with_tags(["a,b"]);
    fs::write(dir.join("train/a.csv"), b"x,y\n7,8\n").unwrap();
    let err = client.log_artifact(&project, &dataset("my-ds", &dir, DigestAlgorithm::Md5), &bad).await.unwrap_err();
    assert!(err.to_string().contains("'a,b'"), "{err}");
    fs::write(dir.join("train/a.csv"), b"x,y\n3,4\n").unwrap();

    // Listing: what the embedded store itself lists, through the protocol.
    // (The protocol carries creation times to the second.)
    let seconds = |mut list: Vec<wandb_api::Collection>| {
        list.iter_mut().for_each(|c| c.latest.created_at.truncate("2026-01-01T00:00:00".len()));
        list
    };
    let listed = seconds(client.collections(&project, None).await.unwrap());
    assert_eq!(listed, seconds(f.store.collections(&project, None).unwrap()));
    assert_eq!((listed.len(), listed[0].version_count, listed[0].latest.version_index), (1, 3, 2));
    assert!(client.collections(&project, Some("model")).await.unwrap().is_empty());
    let nowhere = ProjectRef::new("ent", "no-such-project").unwrap();
    assert!(client.collections(&nowhere, None).await.unwrap().is_empty());

    // Resolve by alias, download through a fresh cache: the bytes of v0, names with spaces and accents included.
    let version = client.artifact(&project, "my-ds", "best").await.unwrap();
    assert_eq!(version.version_index, 0);
    let out = f.path("out");
    let report = fetch(&client, &version, &out, &download_options(&f, "cache")).await.unwrap();
    assert_eq!(report.fetched, 4);
    fs::write(dir.join("train/a.csv"), b"x,y\n1,2\n").unwrap();
    assert_eq!(tree(&out), tree(&dir));
    // Again into another directory: every body from the cache.
    let report = fetch(&client, &version, &f.path("out2"), &download_options(&f, "cache")).await.unwrap();
    assert_eq!((report.fetched, report.from_cache), (0, 4));

    // Use records the lineage; link makes a portfolio with its own versions and aliases.
    client.resume_run(&project, &run_options("run2", None)).await.unwrap();
    client.record_use(&project, "run2", &version).await.unwrap();
    let lineage = f.store.lineage(&f.store.artifact(&project, "my-ds", "v0").unwrap()).unwrap();
    assert_eq!(lineage.used_by.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["run2"]);
    let linked = client.link(&version, &project, "portfolio-x", &["prod".into()]).await.unwrap();
    assert_eq!(linked.qualified_name(), "portfolio-x:v0");
    assert_eq!(linked.aliases, ["latest", "prod"]);
    assert_eq!(linked.linked_from.as_deref(), Some("ent/proj/my-ds:v0"));
    let linked_v1 = client.link(&v1.version, &project, "portfolio-x", &["prod".into()]).await.unwrap();
    assert_eq!(linked_v1.version_index, 1);
    assert_eq!(client.artifact(&project, "portfolio-x", "prod").await.unwrap().id, v1.version.id);
    // Downloading through the portfolio gives the source's files.
    let report = fetch(&client, &linked, &f.path("out3"), &download_options(&f, "cache")).await.unwrap();
    assert_eq!(report.files, 4);

    // A registry target resolves the organisation entity first.
    let registry_project = ProjectRef::new("ent", "wandb-registry-model").unwrap();
    let registry = client.link(&version, &registry_project, "mnist", &[]).await.unwrap();
    assert_eq!((registry.entity.as_str(), registry.project.as_str()), ("ent", "wandb-registry-model"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xxh128_is_kept_when_allowed_and_replaced_by_md5_when_not() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let dir = files(&f);
    let art = dataset("xx", &dir, DigestAlgorithm::Xxh128);

    let server = serve(&f, ServerOptions::default()).await;
    let logged = client(&server).log_artifact(&project, &art, &Default::default()).await.unwrap();
    assert_eq!(logged.version.digest_algorithm, "MANIFEST_XXH128");
    assert_eq!(logged.version.digest, art.digest());
    assert!(logged.manifest.entries().all(|(_, e)| e.digest_algorithm() == DigestAlgorithm::Xxh128));
    let report = fetch(&client(&server), &logged.version, &f.path("out"), &download_options(&f, "c")).await.unwrap();
    assert_eq!(report.fetched, 4);
    server.shutdown().await;

    let server = serve(&f, ServerOptions { xxhash_digests_enabled: false, ..Default::default() }).await;
    let logged = client(&server)
        .log_artifact(&project, &dataset("md", &dir, DigestAlgorithm::Xxh128), &Default::default())
        .await
        .unwrap();
    assert_eq!(logged.version.digest_algorithm, "MANIFEST_MD5");
    assert_eq!(logged.version.digest, dataset("md", &dir, DigestAlgorithm::Md5).digest());
    assert!(logged.manifest.entries().all(|(_, e)| e.extra.get("alg").is_none()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_files_go_up_in_parts() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let big: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let dir = f.dir("big", &[("model.bin", &big), ("small.txt", b"s")]);
    let server = serve(&f, ServerOptions::default()).await;
    let client = client_with(&server, ClientOptions::default().with_multipart(1 << 20, 1 << 20));
    let art = dataset("big", &dir, DigestAlgorithm::Md5);
    let logged = client.log_artifact(&project, &art, &Default::default()).await.unwrap();
    assert_eq!(logged.stored_files, 2);
    let object = f.store.object_path(art.manifest().get("model.bin").unwrap()).unwrap();
    assert_eq!(fs::read(object).unwrap(), big);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_come_down_many_at_once_and_each_body_once() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let mut named: Vec<(String, Vec<u8>)> =
        (0..180).map(|i| (format!("d{}/f{i:03}.txt", i % 7), format!("body {i}\n").repeat(40).into_bytes())).collect();
    named.extend((0..20).map(|i| (format!("same/{i}.txt"), b"the same body".to_vec())));
    let borrowed: Vec<(&str, &[u8])> = named.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let dir = f.dir("many", &borrowed);
    let server = serve(&f, ServerOptions::default()).await;
    let logged = client(&server)
        .log_artifact(&project, &dataset("many", &dir, DigestAlgorithm::Md5), &Default::default())
        .await
        .unwrap();

    // As a distant object store: each body waits 50 ms before it is sent.
    let faults = server.faults();
    faults.set_download_latency(Duration::from_millis(50));
    let shared = client(&server);
    let options = download_options(&f, "cache");
    let (root_one, root_two) = (f.path("one"), f.path("two"));
    let (one, two) = tokio::join!(
        fetch(&shared, &logged.version, &root_one, &options),
        fetch(&shared, &logged.version, &root_two, &options),
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.fetched + two.fetched + one.from_cache + two.from_cache, 400);
    assert!(one.fetched + two.fetched >= 181, "{one:?} {two:?}");
    assert_eq!((tree(&f.path("one")), tree(&f.path("two"))), (tree(&dir), tree(&dir)));
    // 181 distinct bodies, each fetched once by the two downloads together.
    assert_eq!(faults.downloads_answered(), 181);
    let peak = faults.peak_downloads_in_flight();
    assert!(peak >= 16, "only {peak} downloads were in flight at once");

    // The concurrency is the client's option.
    let serial = client_with(&server, ClientOptions::default().with_download_concurrency(1));
    fetch(&serial, &logged.version, &f.path("three"), &download_options(&f, "cache3")).await.unwrap();
    assert_eq!(faults.downloads_answered(), 362);
    assert_eq!(tree(&f.path("three")), tree(&dir));
    server.shutdown().await;
}

/// Download URLs are asked for a page at a time as bodies need them (a small first page, so the first bodies
/// come sooner), and not at all when the cache has every body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_urls_come_in_pages_and_only_when_a_body_is_fetched() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let named: Vec<(String, Vec<u8>)> =
        (0..2500).map(|i| (format!("d{:02}/f{i:04}.txt", i / 100), format!("file {i}\n").into_bytes())).collect();
    let borrowed: Vec<(&str, &[u8])> = named.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let dir = f.dir("paged", &borrowed);
    let server = serve(&f, ServerOptions::default()).await;
    let client = client(&server);
    let logged = client
        .log_artifact(&project, &dataset("paged", &dir, DigestAlgorithm::Md5), &Default::default())
        .await
        .unwrap();
    let url_pages = || {
        let pages: Vec<_> = server
            .requests()
            .requests()
            .into_iter()
            .filter(|r| r.operation.as_deref() == Some("GetArtifactMembershipFileUrls"))
            .map(|r| r.variables["perPage"].as_u64().unwrap_or(0))
            .collect();
        server.requests().clear();
        pages
    };
    url_pages();
    let options = download_options(&f, "cache");
    let cold = fetch(&client, &logged.version, &f.path("cold"), &options).await.unwrap();
    assert_eq!(cold.fetched, 2500);
    assert_eq!(tree(&f.path("cold")), tree(&dir));
    assert_eq!(url_pages(), [1000, 5000], "a first small page, then the rest");

    let warm = fetch(&client, &logged.version, &f.path("warm"), &options).await.unwrap();
    assert_eq!(warm.from_cache, 2500);
    assert_eq!(tree(&f.path("warm")), tree(&dir));
    assert_eq!(url_pages(), Vec::<u64>::new(), "the cache had every body: no URL was needed");
    server.shutdown().await;
}

/// A hostile or broken server cannot make a download write more than the manifest says, nor hand out another
/// manifest under a version's name, nor a manifest of any size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_and_manifests_are_refused_and_nothing_is_written() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let dir = f.dir("ten", &[("ten.bin", b"0123456789")]);
    let server = serve(&f, ServerOptions::default()).await;
    let client = client(&server);
    let logged =
        client.log_artifact(&project, &dataset("ten", &dir, DigestAlgorithm::Md5), &Default::default()).await.unwrap();
    let faults = server.faults();

    // An endless (here: a MiB) body for a 10-byte entry: reading stops past 10 bytes.
    faults.inject(FaultTarget::FileDownload, Fault::ReplaceBody(vec![0u8; 1 << 20]), 1);
    let err = fetch(&client, &logged.version, &f.path("long"), &download_options(&f, "cache")).await.unwrap_err();
    assert!(matches!(&err, Error::BodyTooLong { path, expected: 10 } if path == "ten.bin"), "{err}");
    assert!(!f.path("long/ten.bin").exists());

    // Another manifest under the version's name.
    let other = br#"{"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {},
        "contents": {"ten.bin": {"digest": "4aspHQ7Fou0dANzo2SIgQg==", "size": 10}}}"#;
    faults.inject(FaultTarget::Download, Fault::ReplaceBody(other.to_vec()), 1);
    let err = client.manifest(&logged.version).await.unwrap_err();
    assert!(matches!(err, Error::ManifestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&logged.version.digest), "{err}");

    // A manifest over the client's limit.
    let small = client_with(&server, ClientOptions::default().with_max_manifest_bytes(64));
    let err = small.manifest(&logged.version).await.unwrap_err();
    assert!(matches!(err, Error::ManifestTooLarge { limit: 64, .. }), "{err}");
    assert_eq!(client.manifest(&logged.version).await.unwrap().len(), 1, "the real one still comes");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_expired_urls_replaced() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let dir = files(&f);
    let server = serve(&f, ServerOptions::default()).await;
    let faults = server.faults();
    faults.inject(FaultTarget::GraphQl(Some("CreateArtifactFiles".into())), Fault::Status(503), 2);
    faults.inject(
        FaultTarget::GraphQl(Some("CommitArtifact".into())),
        Fault::TooManyRequests { retry_after_seconds: 1 },
        1,
    );
    faults.inject(FaultTarget::Upload, Fault::Status(500), 1);
    faults.inject(FaultTarget::Upload, Fault::Forbidden, 1);
    let started = std::time::Instant::now();
    let logged = client(&server)
        .log_artifact(&project, &dataset("d", &dir, DigestAlgorithm::Md5), &Default::default())
        .await
        .unwrap();
    assert_eq!(faults.pending(), 0, "every fault happened");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    assert_eq!(logged.stored_files, 4);

    faults.inject(FaultTarget::Download, Fault::CutBody, 2);
    faults.inject(FaultTarget::Download, Fault::Forbidden, 1);
    faults.inject(FaultTarget::Download, Fault::Status(502), 1);
    let out = f.path("out");
    fetch(&client(&server), &logged.version, &out, &download_options(&f, "c")).await.unwrap();
    assert_eq!(faults.pending(), 0);
    assert_eq!(tree(&out), tree(&dir));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_files_come_down_in_parallel_ranges_through_faults() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    // Not a multiple of the range size: the last range is short.
    let big: Vec<u8> = (0..2_600_001u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    // Only the big file, so every fault lands on one of its ranges.
    let dir = f.dir("big", &[("model.bin", &big)]);
    let server = serve(&f, ServerOptions::default()).await;
    let logged =
        client(&server).log_artifact(&project, &dataset("big", &dir, DigestAlgorithm::Md5), &Default::default()).await;
    let version = logged.unwrap().version;

    let ranged = client_with(&server, ClientOptions::default().with_ranged_downloads(1 << 20, 256 << 10, 3));
    let faults = server.faults();
    faults.inject(FaultTarget::FileDownload, Fault::Status(502), 1);
    faults.inject(FaultTarget::FileDownload, Fault::CutBody, 4);
    faults.inject(FaultTarget::FileDownload, Fault::Forbidden, 1);
    let before = server.requests().requests().len();
    let out = f.path("out");
    let report = fetch(&ranged, &version, &out, &download_options(&f, "c")).await.unwrap();
    assert_eq!(faults.pending(), 0);
    assert_eq!(report.fetched, 1);
    assert_eq!(tree(&out), tree(&dir));

    let ranges: Vec<String> =
        server.requests().requests()[before..].iter().filter_map(|r| r.range.clone()).collect::<Vec<_>>();
    // Ten ranges, and one more request per fault (the 502 retried, the 403 after fresh URLs, each cut resumed).
    assert_eq!(ranges.len(), 10 + 6, "{ranges:?}");
    assert!(ranges.contains(&"bytes=0-262143".to_owned()), "{ranges:?}");
    assert!(ranges.contains(&format!("bytes={}-2600000", 9 * (256 << 10))), "{ranges:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_errors_fail_at_once_and_never_show_the_key() {
    let f = Fixture::new();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let dir = files(&f);
    let server = serve(&f, ServerOptions { api_key: Some(KEY.into()), ..Default::default() }).await;

    let options = ClientOptions::default().with_retry(fast_retries());
    let wrong = WandbClient::with_options(server.base_url(), Some("wrong-key-123".into()), &[], options).unwrap();
    let err = wrong.artifact(&project, "nope", "latest").await.unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 401, .. }), "{err}");
    assert!(!err.to_string().contains("wrong-key-123"), "{err}");
    assert!(!format!("{wrong:?}").contains("wrong-key-123"));

    let client = client(&server);
    server.faults().inject(FaultTarget::GraphQl(Some("CreateArtifact".into())), Fault::Status(400), 1);
    let err = client
        .log_artifact(&project, &dataset("d", &dir, DigestAlgorithm::Md5), &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 400, .. }), "{err}");

    let err = client.artifact(&project, "missing", "latest").await.unwrap_err();
    assert!(matches!(err, Error::ProjectNotFound { .. }), "{err}");
    client.log_artifact(&project, &dataset("d", &dir, DigestAlgorithm::Md5), &Default::default()).await.unwrap();
    let err = client.artifact(&project, "missing", "latest").await.unwrap_err();
    assert_eq!(err.to_string(), "artifact membership 'missing:latest' not found in 'ent/proj'");
    let mut model = Artifact::new("d", "model").unwrap();
    model.add_dir(&dir, AddDirOptions::default()).unwrap();
    let err = client.log_artifact(&project, &model, &Default::default()).await.unwrap_err();
    assert!(matches!(err, Error::TypeConflict { .. }), "{err}");

    // Retries run out: the error says how often it tried.
    server.faults().inject(FaultTarget::GraphQl(None), Fault::Status(503), 100);
    let err = client.artifact(&project, "d", "latest").await.unwrap_err();
    assert!(err.to_string().contains("gave up after 20 attempts"), "{err}");
    server.shutdown().await;
}

/// The artifact part of a request sequence: operations by name, uploads by kind; `ServerFeaturesQuery` once
/// (the Python public client asks again with its own cache).
fn artifact_sequence(requests: &[(String, Option<String>, serde_json::Value)]) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    let start = requests.iter().position(|(_, op, _)| op.as_deref() == Some("ArtifactType")).expect("ArtifactType");
    for (path, op, variables) in &requests[start..] {
        let label = match op.as_deref() {
            Some("ServerFeaturesQuery") if out.iter().any(|(l, _)| l == "ServerFeaturesQuery") => continue,
            Some(op) => op.to_owned(),
            None if path.contains("manifest") => "PUT manifest".to_owned(),
            None => "PUT file".to_owned(),
        };
        let done = label == "ArtifactByID";
        out.push((label, variables.clone()));
        if done {
            break;
        }
    }
    out
}

fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_match_the_wire_captures_of_the_real_client() {
    for (capture, xxhash_enabled) in [("xxh.jsonl", true), ("xxhoff.jsonl", false)] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/wandb-0.31.0/wandb-wire")
            .join(capture);
        let captured: Vec<(String, Option<String>, serde_json::Value)> = fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| {
                r["path"].as_str().is_some_and(|p| {
                    p == "/graphql" || p.starts_with("/upload/files") || p == "/upload/wandb_manifest.json"
                })
            })
            .map(|r| {
                (
                    r["path"].as_str().unwrap().to_owned(),
                    r["op"].as_str().map(str::to_owned),
                    r["request"]["variables"].clone(),
                )
            })
            .collect();
        let expected = artifact_sequence(&captured);

        // The capture's fixture: the manifest vectors' dataset tree and a checksum-free file:// reference.
        let f = Fixture::new();
        let dir = f.dir(
            "dataset",
            &[
                ("README.md", b"# tiny dataset\n"),
                ("empty.txt", b""),
                ("train/a.csv", b"x,y\n1,2\n3,4\n"),
                ("train/nested/deep/b.bin", &(0..=255u8).collect::<Vec<_>>()),
                ("unicode-\u{e9}\u{e8} name.txt", "h\u{e9}llo w\u{f6}rld\n".as_bytes()),
                ("val/c.json", b"{\"k\": \"v\\u00e9\", \"n\": [1, 2, 3]}\n"),
            ],
        );
        let mut art = dataset("my-ds", &dir, DigestAlgorithm::Xxh128);
        // The capture's reference target, where the vectors were generated (its digest is of the URI, but the
        // file must exist); written atomically, since other test binaries write the same bytes there.
        let target = std::path::Path::new("/tmp/wandb-manifest-vectors/fixtures/dataset/README.md");
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        let staged = target.with_extension(format!("tmp-{}", std::process::id()));
        fs::write(&staged, b"# tiny dataset\n").unwrap();
        fs::rename(&staged, target).unwrap();
        art.add_reference(
            "file:///tmp/wandb-manifest-vectors/fixtures/dataset/README.md",
            artifact_core::ReferenceOptions { name: Some("ref/readme".into()), checksum: false, ..Default::default() },
        )
        .unwrap();
        let project = ProjectRef::new("ent", "proj").unwrap();
        let server = serve(&f, ServerOptions { xxhash_digests_enabled: xxhash_enabled, ..Default::default() }).await;
        let client = client(&server);
        client.resume_run(&project, &run_options("run1", None)).await.unwrap();
        let options = LogOptions::default().with_aliases(["best"]).with_tags(["t1"]).with_run_id("run1");
        client.log_artifact(&project, &art, &options).await.unwrap();
        let ours: Vec<(String, Option<String>, serde_json::Value)> =
            server.requests().requests().into_iter().map(|r| (r.path, r.operation, r.variables)).collect();
        let actual = artifact_sequence(&ours);

        let labels = |s: &[(String, serde_json::Value)]| s.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&actual), labels(&expected), "{capture}: operations and order");
        for ((label, ours), (_, theirs)) in actual.iter().zip(&expected) {
            assert_eq!(keys(ours), keys(theirs), "{capture}: variables of {label}");
            match label.as_str() {
                "CreateArtifact" => {
                    let (ours, theirs) = (&ours["input"], &theirs["input"]);
                    assert_eq!(keys(ours), keys(theirs), "{capture}: CreateArtifact input");
                    for key in keys(theirs) {
                        if ["clientID", "sequenceClientID", "aliases"].contains(&key.as_str()) {
                            continue;
                        }
                        assert_eq!(ours[&key], theirs[&key], "{capture}: CreateArtifact input.{key}");
                    }
                    let aliases = |v: &serde_json::Value| {
                        let mut a: Vec<String> =
                            v["aliases"].as_array().unwrap().iter().map(|a| a.to_string()).collect();
                        a.sort();
                        a
                    };
                    assert_eq!(aliases(ours), aliases(theirs), "{capture}: aliases");
                    assert_eq!(ours["clientID"].as_str().unwrap().len(), 128);
                }
                "CreateArtifactFiles" => {
                    let (ours, theirs) = (&ours["input"], &theirs["input"]);
                    assert_eq!(keys(ours), keys(theirs), "{capture}: CreateArtifactFiles input");
                    assert_eq!(ours["digestAlgorithm"], theirs["digestAlgorithm"]);
                    let files = |v: &serde_json::Value| {
                        let mut files: Vec<(Vec<String>, String, String, String)> = v["artifactFiles"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| (keys(f), f["name"].to_string(), f["md5"].to_string(), f["digest"].to_string()))
                            .collect();
                        files.sort();
                        files
                    };
                    assert_eq!(files(ours), files(theirs), "{capture}: file specs");
                }
                "CreateArtifactManifest" => {
                    for key in [
                        "name",
                        "entityName",
                        "projectName",
                        "runName",
                        "manifestType",
                        "includeUpload",
                        "baseArtifactID",
                    ] {
                        assert_eq!(ours[key], theirs[key], "{capture}: CreateArtifactManifest.{key}");
                    }
                }
                _ => {}
            }
        }
        server.shutdown().await;
    }
}

/// The SDK downloads exactly the entries `GetArtifactMembershipFileUrls` names, so references must be among
/// them (with the reference as their URL), paged like files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_urls_name_references_too() {
    let f = Fixture::new();
    let server = serve(&f, ServerOptions::default()).await;
    let client = client(&server);
    let project = ProjectRef::new("ent", "proj").unwrap();
    let mut art = dataset("refs", &files(&f), DigestAlgorithm::Md5);
    for (uri, name) in [("s3://bucket/images/a.jpg", "images/a.jpg"), ("https://example.com/b.txt", "b.txt")] {
        let options =
            artifact_core::ReferenceOptions { name: Some(name.into()), checksum: false, ..Default::default() };
        art.add_reference(uri, options).unwrap();
    }
    client.log_artifact(&project, &art, &Default::default()).await.unwrap();

    let query = "query GetArtifactMembershipFileUrls($entity: String!, $project: String!, $collection: String!, \
                 $alias: String!, $cursor: String, $perPage: Int) { project(name: $project, entityName: $entity) { \
                 artifactCollection(name: $collection) { artifactMembership(aliasName: $alias) { \
                 files(after: $cursor, first: $perPage) { pageInfo { endCursor hasNextPage } \
                 edges { node { name directUrl } } } } } } }";
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut listed = std::collections::BTreeMap::new();
    let mut cursor = serde_json::Value::Null;
    for _page in 0..10 {
        let variables = serde_json::json!({"entity": "ent", "project": "proj", "collection": "refs", "alias": "v0",
                                           "cursor": cursor, "perPage": 4});
        let response: serde_json::Value = http
            .post(format!("{}/graphql", server.base_url()))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"query": query, "variables": variables}).to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|body| serde_json::from_slice(&body).unwrap())
            .unwrap();
        let files = &response["data"]["project"]["artifactCollection"]["artifactMembership"]["files"];
        for edge in files["edges"].as_array().unwrap() {
            let node = &edge["node"];
            listed.insert(node["name"].as_str().unwrap().to_owned(), node["directUrl"].as_str().unwrap().to_owned());
        }
        if files["pageInfo"]["hasNextPage"] != true {
            break;
        }
        cursor = files["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(listed.len(), 6, "4 files and 2 references: {listed:?}");
    assert_eq!(listed["images/a.jpg"], "s3://bucket/images/a.jpg");
    assert_eq!(listed["b.txt"], "https://example.com/b.txt");
    assert!(listed["train/a.csv"].starts_with(server.base_url()), "{listed:?}");

    // Our own client never takes a reference's "URL" for a file to GET: with no fetcher for its scheme, the
    // download is refused before anything is written.
    let version = f.store.artifact(&project, "refs", "v0").unwrap();
    let root = f.path("root");
    let err = fetch(&client, &version, &root, &download_options(&f, "cache")).await.unwrap_err();
    assert!(err.to_string().contains("no reference fetcher"), "{err}");
    assert!(!root.exists() || tree(&root).is_empty(), "nothing written");
}
