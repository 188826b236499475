//! Versioning semantics of the embedded store.

use std::fs;
use std::sync::Arc;

use artifact_core::{AddFileOptions, Artifact, DigestAlgorithm};
use wandb_store::{EmbeddedStore, Error, LogOptions, ProjectRef, RunOptions};

use crate::support::{Fixture, dataset};

fn log(f: &Fixture, a: &Artifact, aliases: &[&str]) -> wandb_store::LoggedArtifact {
    let options = LogOptions { aliases: aliases.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    f.store.log_artifact(&f.project, a, &options).unwrap()
}

#[test]
fn versions_follow_log_order_and_identical_content_dedups() {
    let f = Fixture::new();
    let v0_dir = f.dir("v0", &[("a.txt", b"one")]);
    let first = log(&f, &dataset("my-ds", &v0_dir), &[]);
    assert!(first.created);
    assert_eq!(first.version.qualified_name(), "my-ds:v0");
    assert_eq!(first.version.aliases, ["latest"]);
    assert_eq!((first.stored_objects, first.reused_objects), (1, 0));

    let again = log(&f, &dataset("my-ds", &v0_dir), &[]);
    assert!(!again.created, "same digest as latest: no new version");
    assert_eq!(again.version.id, first.version.id);

    let v1_dir = f.dir("v1", &[("a.txt", b"one"), ("b.txt", b"two")]);
    let second = log(&f, &dataset("my-ds", &v1_dir), &[]);
    assert_eq!(second.version.version_index, 1);
    assert_eq!((second.stored_objects, second.reused_objects), (1, 1), "a.txt's body is stored once");

    // Content equal to v0 but not to the latest makes a new version, as the server does.
    let third = log(&f, &dataset("my-ds", &v0_dir), &[]);
    assert!(third.created);
    assert_eq!(third.version.version_index, 2);
    assert_eq!(third.version.digest, first.version.digest);

    let versions = f.store.versions(&f.project, "my-ds").unwrap();
    assert_eq!(versions.iter().map(|v| v.version_index).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(versions[0].aliases, Vec::<String>::new());
    assert_eq!(versions[2].aliases, ["latest"]);
}

#[test]
fn aliases_move_and_resolve() {
    let f = Fixture::new();
    let a = log(&f, &dataset("m", &f.dir("a", &[("x", b"1")])), &["best", "latest"]);
    assert_eq!(a.version.aliases, ["best", "latest"]);
    let b = log(&f, &dataset("m", &f.dir("b", &[("x", b"2")])), &["prod"]);
    assert_eq!(b.version.aliases, ["latest", "prod"]);
    assert_eq!(f.store.artifact(&f.project, "m", "best").unwrap().version_index, 0);
    assert_eq!(f.store.artifact(&f.project, "m", "v0").unwrap().aliases, ["best"]);

    // Reusing "best" moves it; a dedup'd log still applies the requested aliases.
    let c = log(&f, &dataset("m", &f.dir("b", &[])), &["best"]);
    assert!(!c.created);
    assert_eq!(c.version.aliases, ["best", "latest", "prod"]);
    assert_eq!(f.store.artifact(&f.project, "m", "v0").unwrap().aliases, Vec::<String>::new());

    let err = f.store.artifact(&f.project, "m", "staging").unwrap_err();
    assert_eq!(err.to_string(), "artifact membership 'm:staging' not found in 'ent/proj'");
    assert!(matches!(f.store.artifact(&f.project, "m", "v7"), Err(Error::ArtifactNotFound { .. })));
    let other = ProjectRef::new("ent", "nowhere").unwrap();
    let err = f.store.artifact(&other, "m", "latest").unwrap_err();
    assert_eq!(err.to_string(), "project 'nowhere' not found under entity 'ent'");

    let bad = LogOptions { aliases: vec!["v3".into()], ..Default::default() };
    assert!(f.store.log_artifact(&f.project, &dataset("m", &f.dir("c", &[("y", b"3")])), &bad).is_err());
    assert_eq!(f.store.versions(&f.project, "m").unwrap().len(), 2, "a refused alias logs nothing");
}

#[test]
fn one_type_per_name() {
    let f = Fixture::new();
    log(&f, &dataset("cats", &f.dir("d", &[("c", b"meow")])), &[]);
    let mut model = Artifact::new("cats", "model").unwrap();
    model.add_file(f.dir("m", &[("w", b"w")]).join("w"), AddFileOptions::default()).unwrap();
    let err = f.store.log_artifact(&f.project, &model, &LogOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Artifact cats already exists with type 'dataset'; cannot create another with type 'model'"
    );
}

#[test]
fn metadata_description_and_ids_are_kept() {
    let f = Fixture::new();
    let mut a = dataset("meta", &f.dir("d", &[("x", b"x")]));
    a.set_description(Some("Raw MNIST".into()));
    a.set_metadata(serde_json::json!({"source": "torchvision", "sizes": [50000, 10000]})).unwrap();
    let logged = log(&f, &a, &[]);
    let read = f.store.artifact(&f.project, "meta", "latest").unwrap();
    assert_eq!(read.description.as_deref(), Some("Raw MNIST"));
    assert_eq!(read.metadata["sizes"][1], 10000);
    assert_eq!(read, logged.version);
    assert_eq!(f.store.artifact_by_id(&logged.version.id).unwrap(), read);
    assert!(f.store.artifact_by_id("QXJ0aWZhY3Q6OTk5").is_err());

    let manifest = f.store.manifest(&read).unwrap();
    let entry = manifest.get("x").unwrap();
    assert_eq!(entry.birth_artifact_id.as_deref(), Some(read.id.as_str()));
    assert!(entry.local_path.is_none(), "the uploader's paths are not kept");
    assert_eq!(manifest.digest(), read.digest);
}

#[test]
fn xxh128_artifacts_are_stored_by_their_own_digest() {
    let f = Fixture::new();
    let mut a = Artifact::new("fast", "dataset").unwrap();
    a.set_digest_algorithm(DigestAlgorithm::Xxh128).unwrap();
    a.add_file(f.dir("d", &[("x", b"payload")]).join("x"), AddFileOptions::default()).unwrap();
    let logged = log(&f, &a, &[]);
    assert_eq!(logged.version.digest_algorithm, "MANIFEST_XXH128");
    let entry = logged.manifest.get("x").unwrap();
    assert!(f.store.object_path(entry).unwrap().to_string_lossy().contains("/objects/xxh128/"));
}

#[test]
fn a_file_changed_after_adding_is_caught_and_nothing_is_logged() {
    let f = Fixture::new();
    let dir = f.dir("d", &[("x", b"original")]);
    let a = dataset("changing", &dir);
    fs::write(dir.join("x"), b"tampered").unwrap();
    let err = f.store.log_artifact(&f.project, &a, &LogOptions::default()).unwrap_err();
    assert!(matches!(err, Error::FileChanged { .. }), "{err}");
    assert!(err.to_string().contains("changed after it was added"), "{err}");
    assert!(f.store.collections(&f.project, None).unwrap().is_empty());
}

#[test]
fn lineage_records_producers_and_consumers() {
    let f = Fixture::new();
    let load = f
        .store
        .create_run(&f.project, RunOptions { job_type: Some("load-data".into()), ..Default::default() })
        .unwrap();
    let raw = dataset("raw", &f.dir("raw", &[("r", b"r")]));
    let logged = f
        .store
        .log_artifact(&f.project, &raw, &LogOptions { run_id: Some(load.id.clone()), ..Default::default() })
        .unwrap();
    let prep = f
        .store
        .create_run(
            &f.project,
            RunOptions { id: Some("prep-1".into()), job_type: Some("preprocess".into()), ..Default::default() },
        )
        .unwrap();
    let used = f.store.artifact(&f.project, "raw", "latest").unwrap();
    assert_eq!(used.id, logged.version.id);
    f.store.record_use(&f.project, &prep.id, &used).unwrap();
    f.store.record_use(&f.project, &prep.id, &f.store.artifact(&f.project, "raw", "v0").unwrap()).unwrap();

    let lineage = f.store.lineage(&used).unwrap();
    assert_eq!(lineage.created_by.as_ref().map(|r| r.id.as_str()), Some(load.id.as_str()));
    assert_eq!(lineage.used_by.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["prep-1"]);
    let prep = f.store.run(&f.project, "prep-1").unwrap();
    assert_eq!(prep.inputs.len(), 1, "using the same version twice records one edge");
    assert_eq!(prep.inputs[0].name, "raw:v0");
    assert_eq!(f.store.run(&f.project, &load.id).unwrap().outputs[0].name, "raw:v0");

    assert!(matches!(f.store.record_use(&f.project, "nope", &used), Err(Error::RunNotFound { .. })));
    assert!(matches!(
        f.store.create_run(&f.project, RunOptions { id: Some("prep-1".into()), ..Default::default() }),
        Err(Error::RunExists { .. })
    ));
    assert!(matches!(
        f.store.create_run(&f.project, RunOptions { id: Some("../x".into()), ..Default::default() }),
        Err(Error::InvalidRunId { .. })
    ));
}

#[test]
fn collections_list_by_type() {
    let f = Fixture::new();
    log(&f, &dataset("b-data", &f.dir("1", &[("x", b"1")])), &[]);
    log(&f, &dataset("a-data", &f.dir("2", &[("x", b"2")])), &[]);
    log(&f, &dataset("a-data", &f.dir("3", &[("x", b"3")])), &[]);
    let mut model = Artifact::new("net", "model").unwrap();
    model.add_file(f.dir("4", &[("w", b"w")]).join("w"), AddFileOptions::default()).unwrap();
    log(&f, &model, &[]);
    let all = f.store.collections(&f.project, None).unwrap();
    assert_eq!(
        all.iter().map(|c| (c.name.as_str(), c.version_count)).collect::<Vec<_>>(),
        [("a-data", 2), ("b-data", 1), ("net", 1)]
    );
    assert_eq!(all[0].latest.version_index, 1);
    let models = f.store.collections(&f.project, Some("model")).unwrap();
    assert_eq!(models.len(), 1);
}

#[test]
fn opening_refuses_foreign_directories() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("precious.txt"), "keep").unwrap();
    let err = EmbeddedStore::open(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("not an embedded store"), "{err}");
    let store_dir = tmp.path().join("s");
    EmbeddedStore::open(&store_dir).unwrap();
    EmbeddedStore::open(&store_dir).unwrap();
    fs::write(store_dir.join("dagster-wandb-store.json"), r#"{"format": 99, "created_at": "x"}"#).unwrap();
    assert!(EmbeddedStore::open(&store_dir).unwrap_err().to_string().contains("format 99"));
}

/// Threads with their own store handles (separate lock descriptions, as separate processes have) logging
/// distinct content to one collection: every log gets its own version, none is lost.
#[test]
fn concurrent_writers_lose_no_version() {
    let f = Arc::new(Fixture::new());
    let writers = 8;
    let handles: Vec<_> = (0..writers)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || {
                let store = EmbeddedStore::open(f.store.root()).unwrap();
                let dir = f.dir(
                    &format!("w{i}"),
                    &[("shared.txt", b"same in all"), ("own.txt", format!("writer {i}").as_bytes())],
                );
                store.log_artifact(&f.project, &dataset("busy", &dir), &LogOptions::default()).unwrap()
            })
        })
        .collect();
    let mut indexes: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap().version.version_index).collect();
    indexes.sort();
    assert_eq!(indexes, (0..writers).collect::<Vec<u64>>());
    let ids: std::collections::HashSet<String> =
        f.store.versions(&f.project, "busy").unwrap().into_iter().map(|v| v.id).collect();
    assert_eq!(ids.len(), writers as usize, "ids are unique");
    for v in f.store.versions(&f.project, "busy").unwrap() {
        assert_eq!(f.store.manifest(&v).unwrap().len(), 2);
    }
}

/// Many processes (here threads, each with its own handle) opening one new store at once: none may mistake
/// another's half-written marker for a foreign directory.
#[test]
fn concurrent_first_opens_all_succeed() {
    for round in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("fresh");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (root, barrier) = (root.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    EmbeddedStore::open(&root).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}

#[test]
fn a_use_from_another_project_is_found_from_the_versions_side() {
    let f = Fixture::new();
    let raw = log(&f, &dataset("raw", &f.dir("raw", &[("r", b"r")])), &[]).version;
    let elsewhere = ProjectRef::new("team", "train").unwrap();
    let run = f.store.create_run(&elsewhere, RunOptions { id: Some("t-1".into()), ..Default::default() }).unwrap();
    f.store.record_use(&elsewhere, &run.id, &raw).unwrap();

    // The edge says where the version lives.
    let edge = f.store.run(&elsewhere, "t-1").unwrap().inputs.remove(0);
    assert_eq!(edge.project_ref(), Some(f.project.clone()));
    assert_eq!(edge.name, "raw:v0");
    let location = f.store.locate_artifact(&raw.id).unwrap().unwrap();
    assert_eq!((location.project.clone(), location.qualified_name()), (f.project.clone(), "raw:v0".to_owned()));
    assert_eq!(location.artifact_type, "dataset");
    assert_eq!(f.store.locate_artifact("QXJ0aWZhY3Q6OTk5").unwrap(), None, "Artifact:999 was never given");

    // The version's lineage finds the run in the other project.
    let lineage = f.store.lineage(&raw).unwrap();
    assert!(lineage.used_by.is_empty());
    assert_eq!(
        lineage.used_elsewhere.iter().map(|(p, r)| (p.to_string(), r.id.as_str())).collect::<Vec<_>>(),
        [("team/train".to_owned(), "t-1")]
    );
    assert_eq!(f.store.uses_elsewhere(&raw.id, 0).unwrap().len(), 0, "the limit holds");

    // A version used through a portfolio is recorded as its source.
    let linked = f.store.link_version(&raw, &elsewhere, "chosen", &[]).unwrap();
    let other = f.store.create_run(&elsewhere, RunOptions { id: Some("t-2".into()), ..Default::default() }).unwrap();
    f.store.record_use(&elsewhere, &other.id, &linked).unwrap();
    let edge = f.store.run(&elsewhere, "t-2").unwrap().inputs.remove(0);
    assert_eq!((edge.name.as_str(), edge.project_ref()), ("raw:v0", Some(f.project.clone())));
    // And the portfolio's view has the source's lineage.
    let users = f.store.lineage(&linked).unwrap().used_elsewhere;
    assert_eq!(users.iter().map(|(_, r)| r.id.as_str()).collect::<Vec<_>>(), ["t-1", "t-2"]);

    // A run deleted leaves the index; the lineage leaves it out.
    f.store.delete_run(&elsewhere, "t-1", false).unwrap();
    assert_eq!(f.store.lineage(&raw).unwrap().used_elsewhere.len(), 1);
}

#[test]
fn check_repairs_the_index_of_uses_of_older_stores() {
    let f = Fixture::new();
    let raw = log(&f, &dataset("raw", &f.dir("raw", &[("r", b"r")])), &[]).version;
    let elsewhere = ProjectRef::new("team", "train").unwrap();
    f.store.create_run(&elsewhere, RunOptions { id: Some("t-1".into()), ..Default::default() }).unwrap();
    f.store.record_use(&elsewhere, "t-1", &raw).unwrap();
    assert!(f.store.check(false).unwrap().is_healthy());
    // A store written before the index existed: the use is only in the run's record.
    fs::remove_dir_all(f.store.root().join("index/uses")).unwrap();
    assert!(f.store.lineage(&raw).unwrap().used_elsewhere.is_empty());
    let report = f.store.check(false).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].what.contains("index of uses"), "{report:?}");
    assert!(f.store.check(true).unwrap().is_healthy());
    assert_eq!(f.store.lineage(&raw).unwrap().used_elsewhere.len(), 1);
    assert!(f.store.check(false).unwrap().problems.is_empty());
}
