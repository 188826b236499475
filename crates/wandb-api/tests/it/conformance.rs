//! One conformance suite for the `Backend` trait, written once against `&dyn Backend` and run on both backends:
//! the embedded store, and our client talking to `dagster-wandb server` over loopback HTTP. Where the two must
//! differ, the case says why.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use artifact_core::{AddDirOptions, Artifact, LogicalPath, Manifest};
use serde_json::json;
use wandb_api::client::{ClientOptions, RetryPolicy, WandbClient};
use wandb_api::{
    Api, Backend, BaseUrl, CollectionEdit, CollectionKind, DownloadOptions, EmbeddedBackend, Error, LogOptions,
    ProjectRef, RegistrySpec, RegistryVisibility, RunInfo, RunOptions, RunSettings, RunState, Settings, Ttl,
    VersionEdit,
};
use wandb_server::{RunningServer, ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

use crate::support::tree;

/// A backend under test and what keeps it alive.
struct Subject {
    backend: Arc<dyn Backend>,
    dir: tempfile::TempDir,
    _server: Option<RunningServer>,
}

impl Subject {
    fn embedded() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(EmbeddedBackend::open(dir.path().join("store")).unwrap());
        Subject { backend, dir, _server: None }
    }

    async fn served() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("store")).unwrap();
        let server =
            WandbServer::bind(store, "127.0.0.1:0".parse().unwrap(), ServerOptions::default()).await.unwrap().spawn();
        let retry = RetryPolicy {
            min_wait: std::time::Duration::from_millis(10),
            max_wait: std::time::Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let options = ClientOptions::default().with_retry(retry);
        let client = WandbClient::with_options(server.base_url(), Some("key".into()), &[], options);
        Subject { backend: Arc::new(client.unwrap()), dir, _server: Some(server) }
    }

    fn served_by_http(&self) -> bool {
        matches!(self.backend.base_url(), BaseUrl::Server(_))
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.dir.path().join(relative)
    }

    /// A directory of files under the subject's temporary directory.
    fn files(&self, relative: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
        let root = self.path(relative);
        for (name, bytes) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        root
    }

    /// The blocking API over this backend, for runs.
    fn api(&self) -> Api {
        let settings = Settings::embedded(self.path("unused")).with_entity("ent").with_project("proj");
        Api::with_backend(self.backend.clone(), settings.with_cache_dir(Some(self.path("cache")))).unwrap()
    }

    fn download_options(&self, cache: &str) -> DownloadOptions {
        DownloadOptions { cache: Some(io_cache::ContentCache::new(self.path(cache))), ..Default::default() }
    }
}

fn project() -> ProjectRef {
    ProjectRef::new("ent", "proj").unwrap()
}

fn artifact(name: &str, kind: &str, dir: &Path) -> Artifact {
    let mut a = Artifact::new(name, kind).unwrap();
    a.add_dir(dir, AddDirOptions::default()).unwrap();
    a
}

/// Creation times travel to the second over the protocol; compare versions without the fraction.
fn to_seconds(mut version: wandb_api::ArtifactVersion) -> wandb_api::ArtifactVersion {
    version.created_at.truncate("2026-01-01T00:00:00".len());
    version
}

async fn logging_dedups_and_moves_aliases(s: &Subject) {
    let b = s.backend.as_ref();
    let dir = s.files("d", &[("a.txt", b"a"), ("sub/b.bin", &[7; 300])]);
    let v0 = b
        .log_artifact(&project(), &artifact("ds", "dataset", &dir), &LogOptions::default().with_aliases(["best"]))
        .await
        .unwrap();
    assert!(v0.created);
    assert_eq!(
        (v0.version.qualified_name(), v0.version.aliases.clone()),
        ("ds:v0".into(), vec!["best".into(), "latest".into()])
    );
    assert_eq!((v0.stored_files, v0.reused_files), (2, 0));

    // Identical content: no new version, only the alias moves.
    let again = b
        .log_artifact(&project(), &artifact("ds", "dataset", &dir), &LogOptions::default().with_aliases(["again"]))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!((again.version.id.as_str(), again.stored_files), (v0.version.id.as_str(), 0));
    assert_eq!(b.artifact(&project(), "ds", "again").await.unwrap().version_index, 0);

    fs::write(dir.join("a.txt"), b"changed").unwrap();
    let v1 = b.log_artifact(&project(), &artifact("ds", "dataset", &dir), &LogOptions::default()).await.unwrap();
    assert_eq!(v1.version.version_index, 1);
    assert_eq!((v1.stored_files, v1.reused_files), (1, 1), "the unchanged body is not sent again");

    // Resolving by latest, vN, alias and id gives the same records.
    let latest = b.artifact(&project(), "ds", "latest").await.unwrap();
    assert_eq!(latest.id, v1.version.id);
    assert_eq!(b.artifact(&project(), "ds", "v0").await.unwrap().aliases, ["again", "best"]);
    assert_eq!(to_seconds(b.artifact_by_id(&v0.version.id).await.unwrap()).id, v0.version.id);
    let versions = b.versions(&project(), "ds").await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version_index).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(versions[1].aliases, ["latest"]);
}

async fn errors_have_one_kind_on_both_backends(s: &Subject) {
    let b = s.backend.as_ref();
    let dir = s.files("d", &[("a.txt", b"a")]);
    let nowhere = ProjectRef::new("ent", "no-such-project").unwrap();
    assert!(matches!(b.artifact(&nowhere, "ds", "latest").await, Err(Error::ProjectNotFound { .. })));
    b.log_artifact(&project(), &artifact("ds", "dataset", &dir), &LogOptions::default()).await.unwrap();
    assert!(matches!(b.artifact(&project(), "other", "latest").await, Err(Error::ArtifactNotFound { .. })));
    assert!(matches!(b.artifact(&project(), "ds", "v9").await, Err(Error::ArtifactNotFound { .. })));
    assert!(matches!(b.artifact(&project(), "ds", "no-alias").await, Err(Error::ArtifactNotFound { .. })));
    assert!(matches!(b.versions(&project(), "other").await, Err(Error::ArtifactNotFound { .. })));
    assert!(matches!(b.run(&project(), "nope").await, Err(Error::RunNotFound { .. })));

    let err = b.log_artifact(&project(), &artifact("ds", "model", &dir), &LogOptions::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::TypeConflict { existing, requested, .. } if existing == "dataset" && requested == "model"),
        "{err}"
    );
    let err = b
        .log_artifact(&project(), &artifact("ds", "dataset", &dir), &LogOptions::default().with_aliases(["a/b"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a/b"), "{err}");
    let err = b
        .log_artifact(&project(), &artifact("ds", "dataset", &dir), &LogOptions::default().with_tags(["a,b"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a,b"), "{err}");
    let err = b.resume_run(&project(), &RunOptions { id: None, ..Default::default() }).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRunId { .. }), "{err}");
}

async fn collections_list_sequences_and_portfolios(s: &Subject) {
    let b = s.backend.as_ref();
    let data = b
        .log_artifact(&project(), &artifact("raw", "dataset", &s.files("d", &[("a", b"a")])), &Default::default())
        .await
        .unwrap();
    b.log_artifact(&project(), &artifact("net", "model", &s.files("m", &[("w", b"w")])), &Default::default())
        .await
        .unwrap();
    b.link(&data.version, &project(), "gold", &["prod".into()]).await.unwrap();

    let all = b.collections(&project(), None).await.unwrap();
    let kinds: Vec<(&str, &str, CollectionKind)> =
        all.iter().map(|c| (c.name.as_str(), c.artifact_type.as_str(), c.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("gold", "dataset", CollectionKind::Portfolio),
            ("net", "model", CollectionKind::Sequence),
            ("raw", "dataset", CollectionKind::Sequence)
        ]
    );
    assert_eq!(all[0].latest.linked_from.as_deref(), Some("ent/proj/raw:v0"));
    let models = b.collections(&project(), Some("model")).await.unwrap();
    assert_eq!(models.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["net"]);
    assert_eq!(b.artifact_types(&project()).await.unwrap(), ["dataset", "model"]);
    let nowhere = ProjectRef::new("ent", "no-such-project").unwrap();
    assert!(b.collections(&nowhere, None).await.unwrap().is_empty(), "an unknown project has no collections");
    assert!(b.artifact_types(&nowhere).await.unwrap().is_empty());
}

async fn downloads_all_or_part_verified(s: &Subject) {
    let b = s.backend.as_ref();
    let dir = s.files(
        "d",
        &[("a.txt", b"alpha"), ("sub/b.bin", &[9; 5000]), ("sub/c.txt", b"c"), ("unicode-\u{e9}.txt", b"e")],
    );
    let logged = b.log_artifact(&project(), &artifact("ds", "dataset", &dir), &Default::default()).await.unwrap();
    let manifest = b.manifest(&logged.version).await.unwrap();
    assert_eq!(manifest.to_go_json(), logged.manifest.to_go_json(), "the manifest as stored");

    let report = b.download(&logged.version, &manifest, &s.path("all"), &s.download_options("cache")).await.unwrap();
    assert_eq!((report.files, report.fetched), (4, 4));
    assert_eq!(tree(&s.path("all")), tree(&dir));
    // Again, elsewhere: every body from the cache.
    let report = b.download(&logged.version, &manifest, &s.path("again"), &s.download_options("cache")).await.unwrap();
    assert_eq!((report.fetched, report.from_cache), (0, 4));

    let mut part = Manifest::new();
    for (path, entry) in manifest.entries().filter(|(p, _)| p.starts_with("sub/")) {
        part.add_entry(LogicalPath::new(path).unwrap(), entry.clone(), false).unwrap();
    }
    b.download(&logged.version, &part, &s.path("part"), &s.download_options("cache-2")).await.unwrap();
    let names: Vec<String> = tree(&s.path("part")).into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, ["sub/b.bin", "sub/c.txt"]);
}

async fn links_make_portfolios_and_registry_collections(s: &Subject) {
    let b = s.backend.as_ref();
    let v0 = b
        .log_artifact(&project(), &artifact("ds", "dataset", &s.files("d", &[("a", b"0")])), &Default::default())
        .await
        .unwrap();
    let v1 = b
        .log_artifact(&project(), &artifact("ds", "dataset", &s.files("e", &[("a", b"1")])), &Default::default())
        .await
        .unwrap();
    let linked = b.link(&v0.version, &project(), "gold", &["prod".into()]).await.unwrap();
    assert_eq!(
        (linked.qualified_name(), linked.aliases.clone()),
        ("gold:v0".into(), vec!["latest".into(), "prod".into()])
    );
    let linked = b.link(&v1.version, &project(), "gold", &["prod".into()]).await.unwrap();
    assert_eq!(linked.version_index, 1);
    let prod = b.artifact(&project(), "gold", "prod").await.unwrap();
    assert_eq!((prod.id.as_str(), prod.linked_from.as_deref()), (v1.version.id.as_str(), Some("ent/proj/ds:v1")));
    let members = b.versions(&project(), "gold").await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.version_index, m.linked_from.clone())).collect::<Vec<_>>(),
        [(0, Some("ent/proj/ds:v0".to_owned())), (1, Some("ent/proj/ds:v1".to_owned()))]
    );
    // Through the portfolio, the files are the source's.
    let manifest = b.manifest(&prod).await.unwrap();
    b.download(&prod, &manifest, &s.path("out"), &DownloadOptions::default()).await.unwrap();
    assert_eq!(fs::read(s.path("out/a")).unwrap(), b"1");

    let registry = ProjectRef::new("ent", "wandb-registry-model").unwrap();
    let in_registry = b.link(&v0.version, &registry, "mnist", &[]).await.unwrap();
    assert_eq!(
        (in_registry.entity.as_str(), in_registry.project.as_str(), in_registry.name.as_str()),
        ("ent", "wandb-registry-model", "mnist"),
        "the registry's organisation is the entity on both backends (dagster-wandb server answers so)"
    );
    let err = b.link(&v0.version, &project(), "ds", &[]).await.unwrap_err();
    assert!(err.to_string().contains("not a portfolio"), "a sequence is not a link target: {err}");
}

async fn lineage_and_runs_read_back(s: &Subject) {
    let api = s.api();
    let dir = s.files("d", &[("a.txt", b"a")]);
    let raw = artifact("raw", "dataset", &dir);
    let (logged, producer, consumer) = tokio::task::spawn_blocking(move || {
        let mut load = api.init(RunSettings::new("proj").entity("ent").job_type("load-data").name("loader")).unwrap();
        let logged = load.log_artifact(&raw, &["best"]).unwrap();
        load.log(json!({"rows": 1}).as_object().cloned().unwrap()).unwrap();
        let producer = load.id().to_owned();
        load.finish().unwrap();
        let mut train = api.init(RunSettings::new("proj").entity("ent").job_type("train").id("train-1")).unwrap();
        let used = train.use_artifact("raw:best").unwrap();
        assert_eq!(used.version().id, logged.version.id);
        for loss in [0.5, 0.25, 0.125] {
            train.log(json!({"loss": loss}).as_object().cloned().unwrap()).unwrap();
        }
        train.summary_update(json!({"best": 0.125}).as_object().cloned().unwrap()).unwrap();
        train.config_update(json!({"lr": 0.1}).as_object().cloned().unwrap()).unwrap();
        train.finish_with_exit_code(2).unwrap();
        (logged, producer, "train-1".to_owned())
    })
    .await
    .unwrap();
    let b = s.backend.as_ref();

    let lineage = b.lineage(&logged.version).await.unwrap();
    let creator = lineage.created_by.expect("a producing run");
    assert_eq!((creator.id.as_str(), creator.job_type.as_deref()), (producer.as_str(), Some("load-data")));
    assert_eq!(creator.outputs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["raw:v0"]);
    assert_eq!(lineage.used_by.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [consumer.as_str()]);

    let train = b.run(&project(), &consumer).await.unwrap();
    assert_eq!((train.job_type.as_deref(), train.history_rows), (Some("train"), 3));
    assert_eq!(
        train.inputs.iter().map(|e| (e.name.as_str(), e.artifact_type.as_str())).collect::<Vec<_>>(),
        [("raw:v0", "dataset")]
    );
    assert_eq!((train.summary["best"].clone(), train.summary["loss"].clone()), (json!(0.125), json!(0.125)));
    assert_eq!(train.config["lr"], 0.1);
    assert_eq!(train.state, RunState::Failed);
    // The store records the exit code; a W&B server's run fragment has only the state.
    assert_eq!(train.exit_code, if s.served_by_http() { None } else { Some(2) });

    let history = b.run_history(&project(), &consumer).await.unwrap();
    assert_eq!(history.iter().map(|r| r["_step"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(history.iter().map(|r| r["loss"].as_f64().unwrap()).collect::<Vec<_>>(), [0.5, 0.25, 0.125]);

    let runs = b.runs(&project()).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [producer.as_str(), consumer.as_str()], "oldest first");
    assert_eq!(runs[0].name.as_deref(), Some("loader"));
    assert_eq!(runs[0].state, RunState::Finished);
    let point = b.resume_point(&project(), &consumer).await.unwrap().expect("the run exists");
    assert_eq!((point.history_line_count, point.starting_step()), (3, 3));
    assert!(b.runs(&ProjectRef::new("ent", "no-such-project").unwrap()).await.unwrap().is_empty());
}

async fn a_use_across_projects_names_both_projects(s: &Subject) {
    let api = s.api();
    let raw = artifact("raw", "dataset", &s.files("d", &[("a.txt", b"a")]));
    let logged = tokio::task::spawn_blocking(move || {
        let load = api.init(RunSettings::new("proj").entity("ent").job_type("load-data")).unwrap();
        let logged = load.log_artifact(&raw, &[]).unwrap();
        load.finish().unwrap();
        let train = api.init(RunSettings::new("elsewhere").entity("ent").id("far-1")).unwrap();
        train.use_artifact("ent/proj/raw:v0").unwrap();
        train.finish().unwrap();
        logged
    })
    .await
    .unwrap();
    let b = s.backend.as_ref();
    // The run's edge names the version's project, not the run's.
    let far = b.run(&ProjectRef::new("ent", "elsewhere").unwrap(), "far-1").await.unwrap();
    let edge = &far.inputs[0];
    assert_eq!((edge.name.as_str(), edge.id.as_str()), ("raw:v0", logged.version.id.as_str()));
    assert_eq!((edge.entity.as_deref(), edge.project.as_deref()), (Some("ent"), Some("proj")));
    // The version's lineage finds the run in its project.
    let lineage = b.lineage(&logged.version).await.unwrap();
    let users: Vec<String> = lineage.used_by.iter().map(RunInfo::path).collect();
    assert_eq!(users, ["ent/elsewhere/far-1"]);
}

async fn distributed_artifacts_merge_every_part(s: &Subject) {
    let b = s.backend.as_ref();
    let one = artifact("big", "dataset", &s.files("p1", &[("part-1.txt", b"1"), ("shared.txt", b"first")]));
    let two = artifact("big", "dataset", &s.files("p2", &[("part-2.txt", b"2"), ("shared.txt", b"second")]));
    b.upsert_artifact(&project(), &one, "grp", &LogOptions::default()).await.unwrap();
    b.upsert_artifact(&project(), &two, "grp", &LogOptions::default()).await.unwrap();
    let finisher = Artifact::new("big", "dataset").unwrap();
    let logged =
        b.finish_artifact(&project(), &finisher, "grp", &LogOptions::default().with_aliases(["all"])).await.unwrap();
    let paths: Vec<&str> = logged.manifest.entries().map(|(p, _)| p).collect();
    assert_eq!(paths, ["part-1.txt", "part-2.txt", "shared.txt"]);
    assert_eq!(logged.version.aliases, ["all", "latest"]);
    b.download(&logged.version, &logged.manifest, &s.path("out"), &DownloadOptions::default()).await.unwrap();
    assert_eq!(fs::read(s.path("out/shared.txt")).unwrap(), b"second", "a later part wins on the same path");
    let err = b.upsert_artifact(&project(), &one, "grp", &LogOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::DistributedArtifactFinished { .. }), "a late part is refused, not lost: {err}");
}

async fn concurrent_writers_lose_no_version(s: &Subject) {
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let backend = s.backend.clone();
            let dir = s.files(&format!("w{i}"), &[("file.txt", format!("writer {i}").as_bytes())]);
            tokio::spawn(async move {
                let a = artifact("shared", "dataset", &dir);
                backend.log_artifact(&project(), &a, &LogOptions::default()).await.unwrap().version.version_index
            })
        })
        .collect();
    let mut indices = Vec::new();
    for writer in writers {
        indices.push(writer.await.unwrap());
    }
    indices.sort_unstable();
    assert_eq!(indices, [0, 1, 2, 3], "every writer got its own version");
    assert_eq!(s.backend.versions(&project(), "shared").await.unwrap().len(), 4);
}

async fn record_use_of_a_run_nobody_started(s: &Subject) {
    let b = s.backend.as_ref();
    let logged = b
        .log_artifact(&project(), &artifact("ds", "dataset", &s.files("d", &[("a", b"a")])), &Default::default())
        .await
        .unwrap();
    let result = b.record_use(&project(), "never-started", &logged.version).await;
    // The store refuses a run that does not exist; a W&B server creates the runs clients name.
    if s.served_by_http() {
        result.unwrap();
        assert_eq!(b.run(&project(), "never-started").await.unwrap().inputs.len(), 1);
    } else {
        assert!(matches!(result, Err(Error::RunNotFound { .. })));
    }
}

async fn versions_are_edited_after_logging(s: &Subject) {
    let b = s.backend.as_ref();
    let v0 = b
        .log_artifact(&project(), &artifact("m", "model", &s.files("a", &[("w", b"0")])), &Default::default())
        .await
        .unwrap()
        .version;
    let v1 = b
        .log_artifact(&project(), &artifact("m", "model", &s.files("b", &[("w", b"1")])), &Default::default())
        .await
        .unwrap()
        .version;

    // Promoting `production`: added to v0, then moved to v1.
    let edited = b.edit(&v0, &VersionEdit::default().add_aliases(["production", "candidate"])).await.unwrap();
    assert_eq!(edited.aliases, ["candidate", "production"]);
    let promoted = b.edit(&v1, &VersionEdit::default().add_aliases(["production"])).await.unwrap();
    assert_eq!(promoted.aliases, ["latest", "production"]);
    assert_eq!(b.artifact(&project(), "m", "production").await.unwrap().version_index, 1);
    assert_eq!(b.artifact(&project(), "m", "v0").await.unwrap().aliases, ["candidate"]);
    let dropped = b.edit(&v0, &VersionEdit::default().remove_aliases(["candidate", "not-there"])).await.unwrap();
    assert!(dropped.aliases.is_empty());
    for alias in ["latest", "v7"] {
        let err = b.edit(&v0, &VersionEdit::default().add_aliases([alias])).await.unwrap_err();
        assert!(matches!(err, Error::Store(wandb_store::Error::AliasNotEditable { .. })), "{alias}: {err}");
    }

    // Tags, description, metadata and TTL replace what is stored, and read back the same on both backends.
    let mut metadata = serde_json::Map::new();
    metadata.insert("accuracy".into(), json!(0.93));
    let edit = VersionEdit::default()
        .tags(["nightly", "gpu"])
        .description(Some("the better one".into()))
        .metadata(metadata)
        .ttl(Ttl::Seconds(86_400));
    b.edit(&v1, &edit).await.unwrap();
    let read = b.artifact(&project(), "m", "production").await.unwrap();
    assert_eq!(
        (read.tags.clone(), read.description.as_deref()),
        (vec!["nightly".to_owned(), "gpu".to_owned()], Some("the better one"))
    );
    assert_eq!((read.metadata["accuracy"].clone(), read.ttl), (json!(0.93), Ttl::Seconds(86_400)));
    let read = b.edit(&v1, &VersionEdit::default().tags(["gpu"]).ttl(Ttl::None)).await.unwrap();
    assert_eq!(
        (read.tags.clone(), read.ttl, read.description.as_deref()),
        (vec!["gpu".to_owned()], Ttl::None, Some("the better one"))
    );

    // Through a portfolio, aliases are the portfolio's; a TTL is refused there (the SDK's rule).
    let linked = b.link(&v1, &project(), "registry-like", &[]).await.unwrap();
    let linked = b.edit(&linked, &VersionEdit::default().add_aliases(["staging"])).await.unwrap();
    assert_eq!(linked.aliases, ["latest", "staging"]);
    assert_eq!(
        b.artifact(&project(), "m", "v1").await.unwrap().aliases,
        ["latest", "production"],
        "the source's aliases are its own"
    );
    let err = b.edit(&linked, &VersionEdit::default().ttl(Ttl::Seconds(60))).await.unwrap_err();
    assert!(matches!(err, Error::Store(wandb_store::Error::TtlOnLink { .. })), "{err}");
}

async fn an_expired_version_stops_resolving(s: &Subject) {
    let b = s.backend.as_ref();
    let old = b
        .log_artifact(&project(), &artifact("t", "dataset", &s.files("a", &[("x", b"0")])), &Default::default())
        .await
        .unwrap()
        .version;
    let kept = b
        .log_artifact(&project(), &artifact("t", "dataset", &s.files("b", &[("x", b"1")])), &Default::default())
        .await
        .unwrap()
        .version;
    b.edit(&old, &VersionEdit::default().ttl(Ttl::Seconds(1))).await.unwrap();
    // Expiry counts from creation: wait until a second has passed since the version was logged.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(matches!(b.artifact(&project(), "t", "v0").await, Err(Error::ArtifactNotFound { .. })));
    assert_eq!(
        b.versions(&project(), "t").await.unwrap().iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        [kept.id.as_str()]
    );
}

async fn deleting_refuses_aliases_and_never_reuses_numbers(s: &Subject) {
    let b = s.backend.as_ref();
    let v0 = b
        .log_artifact(
            &project(),
            &artifact("d", "dataset", &s.files("a", &[("x", b"0")])),
            &LogOptions::default().with_aliases(["keep"]),
        )
        .await
        .unwrap()
        .version;
    let v1 = b
        .log_artifact(&project(), &artifact("d", "dataset", &s.files("b", &[("x", b"1")])), &Default::default())
        .await
        .unwrap()
        .version;
    let err = b.delete(&v0, false).await.unwrap_err();
    assert!(
        matches!(&err, Error::Store(wandb_store::Error::VersionHasAliases { aliases, .. }) if aliases == &["keep".to_owned()]),
        "{err}"
    );
    b.delete(&v0, true).await.unwrap();
    assert!(matches!(b.artifact(&project(), "d", "keep").await, Err(Error::ArtifactNotFound { .. })));
    assert!(b.artifact_by_id(&v0.id).await.is_err());
    // The latest can go too (it holds only `latest`), and its number is not given again.
    b.delete(&v1, false).await.unwrap();
    assert!(matches!(b.artifact(&project(), "d", "latest").await, Err(Error::ArtifactNotFound { .. })));
    let v2 = b
        .log_artifact(&project(), &artifact("d", "dataset", &s.files("c", &[("x", b"2")])), &Default::default())
        .await
        .unwrap()
        .version;
    assert_eq!(v2.version_index, 2);
    assert_eq!(b.versions(&project(), "d").await.unwrap().len(), 1);
}

async fn unlinking_removes_only_the_link(s: &Subject) {
    let b = s.backend.as_ref();
    let v0 = b
        .log_artifact(&project(), &artifact("u", "model", &s.files("a", &[("x", b"0")])), &Default::default())
        .await
        .unwrap()
        .version;
    let linked = b.link(&v0, &project(), "gold", &["prod".into()]).await.unwrap();
    let err = b.unlink(&v0).await.unwrap_err();
    assert!(matches!(err, Error::Store(wandb_store::Error::NotLinked { .. })), "{err}");
    b.unlink(&linked).await.unwrap();
    assert!(matches!(b.artifact(&project(), "gold", "prod").await, Err(Error::ArtifactNotFound { .. })));
    assert_eq!(b.artifact(&project(), "u", "v0").await.unwrap().id, v0.id, "the source stays");
    // Deleting a linked view deletes the link, not the source (the SDK's rule).
    let again = b.link(&v0, &project(), "gold", &[]).await.unwrap();
    assert_eq!(again.version_index, 1, "a portfolio's numbers are not reused either");
    b.delete(&again, false).await.unwrap();
    assert_eq!(b.artifact(&project(), "u", "latest").await.unwrap().id, v0.id);
    // Deleting the source takes its links with it.
    b.link(&v0, &project(), "silver", &[]).await.unwrap();
    b.delete(&v0, false).await.unwrap();
    assert!(b.versions(&project(), "silver").await.is_err());
}

async fn collections_are_described_tagged_renamed_retyped_and_deleted(s: &Subject) {
    let b = s.backend.as_ref();
    let v0 = b
        .log_artifact(&project(), &artifact("c", "dataset", &s.files("a", &[("x", b"0")])), &Default::default())
        .await
        .unwrap()
        .version;
    let edit = CollectionEdit::default().description(Some("all the data".into())).tags(["raw", "daily"]);
    let c = b.edit_collection(&project(), "c", &edit).await.unwrap();
    assert_eq!(
        (c.description.as_deref(), c.tags.clone()),
        (Some("all the data"), vec!["raw".to_owned(), "daily".to_owned()])
    );
    let c = b.edit_collection(&project(), "c", &CollectionEdit::default().tags(["daily"]).rename("c2")).await.unwrap();
    assert_eq!((c.name.as_str(), c.tags.clone()), ("c2", vec!["daily".to_owned()]));
    let moved = b.artifact(&project(), "c2", "v0").await.unwrap();
    assert_eq!(moved.id, v0.id, "a renamed collection's versions keep their ids");
    assert!(matches!(b.artifact(&project(), "c", "v0").await, Err(Error::ArtifactNotFound { .. })));
    let c =
        b.edit_collection(&project(), "c2", &CollectionEdit::default().artifact_type("training-data")).await.unwrap();
    assert_eq!(c.artifact_type, "training-data");
    assert_eq!(b.artifact(&project(), "c2", "latest").await.unwrap().artifact_type, "training-data");
    b.delete_collection(&project(), "c2").await.unwrap();
    assert!(b.collections(&project(), None).await.unwrap().is_empty());
    assert!(b.artifact_by_id(&v0.id).await.is_err());
}

/// `artifact.new_draft()`: a draft from a logged version keeps its entries; logging it after adding one file and
/// removing another sends the one new body, and the new version has exactly the edited set of files.
async fn a_new_draft_sends_only_new_bodies(s: &Subject) {
    let b = s.backend.as_ref();
    let dir = s.files("d", &[("a.txt", b"alpha"), ("b.txt", b"beta"), ("sub/c.bin", &[3; 4000])]);
    let v0 = b.log_artifact(&project(), &artifact("ds", "dataset", &dir), &Default::default()).await.unwrap();
    let manifest = b.manifest(&v0.version).await.unwrap();

    let mut draft = Artifact::from_logged("ds", "dataset", None, Default::default(), manifest).unwrap();
    draft.remove("b.txt").unwrap();
    fs::write(s.path("new.txt"), b"gamma").unwrap();
    draft.add_file(s.path("new.txt"), artifact_core::AddFileOptions::default()).unwrap();
    let v1 = b.log_artifact(&project(), &draft, &Default::default()).await.unwrap();
    assert_eq!(v1.version.version_index, 1);
    assert_eq!((v1.stored_files, v1.stored_bytes), (1, 5), "only new.txt travels");

    let got = b.manifest(&v1.version).await.unwrap();
    let report = b.download(&v1.version, &got, &s.path("out"), &s.download_options("cache")).await.unwrap();
    assert_eq!(report.files, 3);
    let files: Vec<(String, Vec<u8>)> = tree(&s.path("out"));
    assert_eq!(
        files,
        [
            ("a.txt".to_owned(), b"alpha".to_vec()),
            ("new.txt".to_owned(), b"gamma".to_vec()),
            ("sub/c.bin".to_owned(), vec![3; 4000]),
        ]
    );
    // Unchanged entries keep the version they were born in.
    let birth = |m: &Manifest, p: &str| m.get(p).unwrap().birth_artifact_id.clone();
    assert_eq!(birth(&got, "a.txt").as_deref(), Some(v0.version.id.as_str()));
    assert_eq!(birth(&got, "new.txt").as_deref(), Some(v1.version.id.as_str()));
}

/// Registries: created with a description and accepted types, listed, linked into (a type it does not accept
/// refused), renamed, deleted with their links while the linked version stays.
async fn registries_are_created_listed_linked_renamed_and_deleted(s: &Subject) {
    let b = s.backend.as_ref();
    let spec = RegistrySpec::default().description(Some("team models".into())).artifact_types(["model"]);
    let created = b.create_registry("ent", "team", &spec).await.unwrap();
    assert_eq!((created.name.as_str(), created.allow_all_artifact_types), ("team", false));
    assert_eq!(
        (created.description.as_deref(), created.artifact_types.clone()),
        (Some("team models"), vec!["model".into()])
    );
    let again = b.create_registry("ent", "team", &RegistrySpec::default()).await.unwrap_err();
    assert!(matches!(again, Error::Store(wandb_store::Error::RegistryExists { .. })), "{again}");

    let dir = s.files("d", &[("w.bin", b"weights")]);
    let model = b.log_artifact(&project(), &artifact("m", "model", &dir), &Default::default()).await.unwrap();
    let data = b.log_artifact(&project(), &artifact("d", "dataset", &dir), &Default::default()).await.unwrap();
    let registry = ProjectRef::new("ent", "wandb-registry-team").unwrap();
    let linked = b.link(&model.version, &registry, "champion", &["production".into()]).await.unwrap();
    assert_eq!(linked.aliases, ["latest", "production"]);
    let refused = b.link(&data.version, &registry, "data", &[]).await.unwrap_err();
    assert!(refused.to_string().contains("does not accept artifacts of type \"dataset\""), "{refused}");

    let listed = b.registries("ent").await.unwrap();
    assert_eq!(listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["team"]);
    let collections = b.collections(&registry, None).await.unwrap();
    assert_eq!(collections.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["champion"]);

    let renamed = b
        .edit_registry(&created, &RegistrySpec::default().rename("core").visibility(RegistryVisibility::Restricted))
        .await
        .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.visibility), ("core", RegistryVisibility::Restricted));
    let moved = ProjectRef::new("ent", "wandb-registry-core").unwrap();
    assert_eq!(b.artifact(&moved, "champion", "production").await.unwrap().digest, model.version.digest);
    assert!(matches!(
        b.registry("ent", "team").await.unwrap_err(),
        Error::Store(wandb_store::Error::RegistryNotFound { .. })
    ));

    b.delete_registry(&renamed).await.unwrap();
    assert!(b.registries("ent").await.unwrap().is_empty());
    assert!(b.artifact(&moved, "champion", "production").await.is_err());
    assert_eq!(b.artifact(&project(), "m", "latest").await.unwrap().id, model.version.id, "the source stays");
}

/// Each case once per backend, as its own test.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Subject::embedded()).await;
                }
            )*
        }
        mod served {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Subject::served().await).await;
                }
            )*
        }
    };
}

conformance!(
    logging_dedups_and_moves_aliases,
    errors_have_one_kind_on_both_backends,
    collections_list_sequences_and_portfolios,
    downloads_all_or_part_verified,
    links_make_portfolios_and_registry_collections,
    lineage_and_runs_read_back,
    a_use_across_projects_names_both_projects,
    distributed_artifacts_merge_every_part,
    concurrent_writers_lose_no_version,
    record_use_of_a_run_nobody_started,
    versions_are_edited_after_logging,
    an_expired_version_stops_resolving,
    deleting_refuses_aliases_and_never_reuses_numbers,
    unlinking_removes_only_the_link,
    collections_are_described_tagged_renamed_retyped_and_deleted,
    a_new_draft_sends_only_new_bodies,
    registries_are_created_listed_linked_renamed_and_deleted,
);

/// `block_in_place` is not allowed on a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`, the
/// default `#[tokio::test]`): the store runs that work inline there instead of panicking.
#[tokio::test(flavor = "current_thread")]
async fn the_embedded_store_works_on_a_current_thread_runtime() {
    logging_dedups_and_moves_aliases(&Subject::embedded()).await;
    downloads_all_or_part_verified(&Subject::embedded()).await;
    distributed_artifacts_merge_every_part(&Subject::embedded()).await;
}
