//! `sync` between backends: an embedded store pushed to a server, the server pulled into a second embedded
//! store; downloads byte-identical, the same aliases, tags, metadata, links and lineage; a repeated sync moves
//! nothing.

use std::fs;
use std::path::Path;

use artifact_core::{AddDirOptions, Artifact};
use wandb_api::sync::SyncOptions;
use wandb_api::{Api, ArtifactHandle, ProjectRef, RunSettings, Settings, Ttl, VersionEdit};
use wandb_server::{ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

use crate::support::tree;

fn dataset(dir: &Path, files: &[(&str, &[u8])]) -> Artifact {
    for (name, body) in files {
        fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
        fs::write(dir.join(name), body).unwrap();
    }
    let mut artifact = Artifact::new("ds", "dataset").unwrap();
    artifact.add_dir(dir, AddDirOptions::default()).unwrap();
    artifact
}

/// The source: three versions sharing a body, aliases, tags, metadata, a TTL, a deleted version, a portfolio,
/// and a lineage of two runs.
fn populate(api: &Api, dir: &Path) {
    let mut run = api.init(RunSettings::new("proj").entity("ent").job_type("load-data").name("loader")).unwrap();
    run.log(serde_json::json!({"rows": 3}).as_object().cloned().unwrap()).unwrap();
    let shared = vec![7u8; 100_000];
    let v0 =
        run.log_artifact(&dataset(&dir.join("v0"), &[("a.txt", b"zero"), ("big.bin", &shared)]), &["old"]).unwrap();
    run.log_artifact(&dataset(&dir.join("v1"), &[("a.txt", b"one"), ("big.bin", &shared)]), &[]).unwrap();
    run.log_artifact(&dataset(&dir.join("v2"), &[("a.txt", b"two"), ("big.bin", &shared), ("sub/c", b"c")]), &["best"])
        .unwrap();
    run.finish().unwrap();
    api.artifact("ent/proj/ds:v1").unwrap().delete(false).unwrap();
    api.artifact("ent/proj/ds:v0")
        .unwrap()
        .edit(
            &VersionEdit::default()
                .tags(["gold"])
                .description(Some("the first".into()))
                .metadata(serde_json::json!({"rows": 2}).as_object().cloned().unwrap())
                .ttl(Ttl::Seconds(90 * 86_400)),
        )
        .unwrap();
    api.artifact("ent/proj/ds:best").unwrap().link("ent/proj/ds-portfolio", &["production"]).unwrap();
    let consumer = api.init(RunSettings::new("proj").entity("ent").job_type("train").id("trainer")).unwrap();
    consumer.use_artifact("ent/proj/ds:old").unwrap();
    consumer.finish_with_exit_code(3).unwrap();
    assert_eq!(v0.version.version_index, 0);
}

/// What a user sees of a project: every version's number, aliases, tags, description, metadata, TTL and files.
fn view(api: &Api, root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["ds", "ds-portfolio"] {
        for handle in api.artifact_versions(&format!("ent/proj/{name}")).unwrap() {
            let handle: ArtifactHandle = handle;
            let dir = root.join(format!("{name}-{}", handle.version().version()));
            handle.download_to(dir.clone()).unwrap();
            let v = handle.version();
            out.push(format!(
                "{name}:{} aliases={:?} tags={:?} description={:?} metadata={} ttl={} linked={} files={:?}",
                v.version(),
                v.aliases,
                v.tags,
                v.description,
                serde_json::Value::Object(v.metadata.clone()),
                v.ttl,
                v.linked_from.is_some(),
                tree(&dir)
            ));
        }
    }
    out
}

#[test]
fn embedded_to_server_to_embedded_is_identical_and_a_second_sync_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        |name: &str| Settings::embedded(dir.path().join(name)).with_cache_dir(Some(dir.path().join("cache")));
    let first = Api::new(settings("first")).unwrap();
    populate(&first, &dir.path().join("data"));

    let runtime = wandb_api::runtime().unwrap();
    let store = EmbeddedStore::open(dir.path().join("served")).unwrap();
    let server = runtime
        .block_on(async { WandbServer::bind(store, "127.0.0.1:0".parse().unwrap(), ServerOptions::default()).await })
        .unwrap();
    let server = runtime.block_on(async { server.spawn() });
    let served = Api::new(
        Settings::server(server.base_url(), Some("key".into())).with_cache_dir(Some(dir.path().join("cache-served"))),
    )
    .unwrap();
    let third = Api::new(settings("third")).unwrap();
    let project = ProjectRef::new("ent", "proj").unwrap();
    let options = SyncOptions::new(project).with_staging(dir.path().join("staging"));

    let pushed = first.sync_to(&served, &options.clone().with_download(first.download_options())).unwrap();
    assert_eq!(pushed.versions_copied, ["ds:v0", "ds:v2"]);
    assert_eq!((pushed.links_made, pushed.runs_copied, pushed.uses_recorded), (1, 2, 1));
    assert_eq!(pushed.files_stored, 4, "the shared body is stored once: a.txt twice, big.bin and sub/c");
    let pulled = served.sync_to(&third, &options.clone().with_download(served.download_options())).unwrap();
    assert_eq!(pulled.versions_copied, ["ds:v0", "ds:v1"], "the server numbered them v0 and v1");
    assert_eq!(pulled.files_stored, 4);
    assert_eq!(pulled.files_fetched, 4, "each body fetched from the server once");

    // Numbers are the target's (v1 was deleted in the first store); everything else is the same.
    let renumber = |lines: Vec<String>| -> Vec<String> { lines.into_iter().map(|l| l.replace("v2", "v1")).collect() };
    let first_view = renumber(view(&first, &dir.path().join("view-first")));
    assert_eq!(first_view, view(&served, &dir.path().join("view-served")));
    assert_eq!(first_view, view(&third, &dir.path().join("view-third")));
    assert!(first_view[0].contains("aliases=[\"old\"]") && first_view[0].contains("tags=[\"gold\"]"), "{first_view:?}");

    // The lineage came along: who logged each version, who used it.
    let copy = third.artifact("ent/proj/ds:old").unwrap();
    let creator = copy.logged_by().unwrap().expect("the producing run was copied");
    assert_eq!((creator.job_type.as_deref(), creator.name.as_deref()), (Some("load-data"), Some("loader")));
    assert_eq!(copy.used_by().unwrap().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["trainer"]);
    let trainer = third.run("ent/proj/trainer").unwrap();
    assert_eq!((trainer.state, trainer.job_type.as_deref()), (wandb_api::RunState::Failed, Some("train")));
    // A W&B server reports a run's state, not its exit code: through one, a failed run's code is 1.
    assert_eq!(served.run("ent/proj/trainer").unwrap().state, wandb_api::RunState::Failed);
    assert_eq!(trainer.exit_code, Some(1));
    assert_eq!(third.run_history(&format!("ent/proj/{}", creator.id)).unwrap().len(), 1);

    // Again, both ways: nothing is copied, fetched or stored.
    for (from, to) in [(&first, &served), (&served, &third)] {
        let again = from.sync_to(to, &options.clone().with_download(from.download_options())).unwrap();
        assert!(again.versions_copied.is_empty(), "{again:?}");
        assert_eq!((again.versions_present, again.versions_updated), (2, 0), "{again:?}");
        assert_eq!((again.files_fetched, again.files_stored, again.bytes_stored), (0, 0, 0));
        assert_eq!((again.links_made, again.runs_copied, again.uses_recorded), (0, 0, 0));
    }

    // An alias moved in the source moves in the target on the next sync.
    first.artifact("ent/proj/ds:v2").unwrap().edit(&VersionEdit::default().add_aliases(["old"])).unwrap();
    let moved = first.sync_to(&served, &options.with_download(first.download_options())).unwrap();
    assert_eq!((moved.versions_updated, moved.files_stored), (2, 0), "off v0, onto v1");
    assert_eq!(served.artifact("ent/proj/ds:old").unwrap().version().version_index, 1);
    assert!(!dir.path().join("staging").read_dir().unwrap().any(|_| true), "the staging directory is left empty");
}
