//! What interrupted writers leave: runs whose process died read as crashed, temporaries go on the next open.

use std::fs;

use wandb_store::{EmbeddedStore, RunOptions, RunState, StreamChunk};

use crate::support::Fixture;

/// A run whose writing process is gone (kill -9, a crash) reads as crashed, not running forever; one that
/// finished stays finished.
#[cfg(target_os = "linux")]
#[test]
fn a_run_whose_process_died_reads_as_crashed() {
    let f = Fixture::new();
    let run = f.store.create_run(&f.project, RunOptions::default()).unwrap();
    assert_eq!(f.store.run_status(&f.project, &run.id).unwrap().state, RunState::Running, "this process is alive");

    // The same record, written by a process that has exited since.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let state = f.path("store/entities/ent/projects/proj/runs").join(format!("{}.logs/state.json", run.id));
    let text = fs::read_to_string(&state).unwrap();
    let pid = format!("\"pid\": {}", std::process::id());
    assert!(text.contains(&pid), "{text}");
    fs::write(&state, text.replace(&pid, &format!("\"pid\": {dead}"))).unwrap();
    assert_eq!(f.store.run_status(&f.project, &run.id).unwrap().state, RunState::Crashed);

    let finished = f.store.create_run(&f.project, RunOptions::default()).unwrap();
    let chunk = StreamChunk { complete: true, exit_code: Some(0), ..Default::default() };
    f.store.write_run_stream(&f.project, &finished.id, &chunk).unwrap();
    assert_eq!(f.store.run_status(&f.project, &finished.id).unwrap().state, RunState::Finished);
}

/// Temporary bodies of a killed writer (unlocked) are removed when the store is next opened; one a live
/// writer holds locked stays.
#[test]
fn temporaries_of_killed_writers_go_when_the_store_is_opened() {
    let f = Fixture::new();
    let tmp = f.path("store/tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::write(tmp.join("tmpabcdefghijkl"), vec![0u8; 1000]).unwrap();
    let held = tmp.join("tmpmnopqrstuvwx");
    let locked = io_cache::create_new_locked(&held).unwrap().unwrap();
    fs::create_dir_all(tmp.join("multipart-1")).unwrap();
    fs::write(tmp.join("someone-elses"), b"fresh").unwrap();

    EmbeddedStore::open(f.path("store")).unwrap();
    assert!(!tmp.join("tmpabcdefghijkl").exists(), "a killed writer's body is gone");
    assert!(held.exists(), "a live writer's body stays");
    assert!(tmp.join("multipart-1").is_dir(), "directories stay");
    assert!(tmp.join("someone-elses").exists(), "a file not ours stays until it is a minute old");
    drop(locked);
}

/// A run written by a client through a server reads as crashed once its heartbeats stop for
/// `HEARTBEAT_TIMEOUT`; each request (an empty one included) is a heartbeat, and a finished run stays finished.
#[test]
fn a_run_whose_client_stopped_sending_heartbeats_reads_as_crashed() {
    let f = Fixture::new();
    let run = f.store.create_run(&f.project, RunOptions::default()).unwrap();
    f.store.record_heartbeat(&f.project, &run.id).unwrap();
    let status = f.store.run_status(&f.project, &run.id).unwrap();
    assert_eq!(status.state, RunState::Running);
    assert!(status.writer.is_none(), "the client is elsewhere: this server's process says nothing about it");

    let state = f.path("store/entities/ent/projects/proj/runs").join(format!("{}.logs/state.json", run.id));
    let age_heartbeat = |seconds: u64| {
        let mut value: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
        let at = value["heartbeat_unix_secs"].as_u64().unwrap();
        value["heartbeat_unix_secs"] = (at - seconds).into();
        fs::write(&state, serde_json::to_vec(&value).unwrap()).unwrap();
    };
    age_heartbeat(wandb_store::HEARTBEAT_TIMEOUT.as_secs() - 10);
    assert_eq!(f.store.run_status(&f.project, &run.id).unwrap().state, RunState::Running, "not yet");
    age_heartbeat(20);
    assert_eq!(f.store.run_status(&f.project, &run.id).unwrap().state, RunState::Crashed);

    // A heartbeat (an empty request) brings it back to running; completing it ends it for good.
    f.store.write_client_run_stream(&f.project, &run.id, &StreamChunk::default()).unwrap();
    assert_eq!(f.store.run_status(&f.project, &run.id).unwrap().state, RunState::Running);
    let done = StreamChunk { complete: true, exit_code: Some(0), ..Default::default() };
    f.store.write_client_run_stream(&f.project, &run.id, &done).unwrap();
    age_heartbeat(wandb_store::HEARTBEAT_TIMEOUT.as_secs() * 2);
    assert_eq!(f.store.run_status(&f.project, &run.id).unwrap().state, RunState::Finished);
}

/// A damaged run record costs its run, not the listing or the lineage; `check` names it.
#[test]
fn a_damaged_run_record_costs_only_its_run() {
    let f = Fixture::new();
    let kept = f.store.create_run(&f.project, RunOptions::default()).unwrap();
    let damaged = f.store.create_run(&f.project, RunOptions::default()).unwrap();
    let runs_dir = f.path("store/entities/ent/projects/proj/runs");
    fs::write(runs_dir.join(format!("{}.json", damaged.id)), b"{\"id\": \"trunc").unwrap();
    fs::write(runs_dir.join(format!("{}.logs/state.json", kept.id)), b"[").unwrap();

    let listed: Vec<String> = f.store.runs(&f.project).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, [kept.id]);
    let report = f.store.check(false).unwrap();
    assert_eq!(report.runs, 2);
    let named = |file: &str| report.problems.iter().any(|p| p.path.ends_with(file) && !p.repaired);
    assert!(named(&format!("{}.json", damaged.id)), "{report:?}");
    assert!(named("state.json"), "{report:?}");
    assert!(!report.is_healthy());
}

/// A manifest changed after its commit is refused wherever it is read, naming the file; `check` reports it.
#[test]
fn a_manifest_changed_after_its_commit_is_refused() {
    let f = Fixture::new();
    let dir = f.dir("d", &[("a.txt", b"alpha"), ("b.txt", b"bravo")]);
    let logged = f.store.log_artifact(&f.project, &crate::support::dataset("ds", &dir), &Default::default()).unwrap();
    let path = f.path("store/entities/ent/projects/proj/collections/ds/versions/0/manifest.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("\"b.txt\"", "\"c.txt\"")).unwrap();

    let err = f.store.manifest(&logged.version).unwrap_err().to_string();
    assert!(err.contains("manifest.json: damaged manifest: its entries hash to"), "{err}");
    assert!(err.contains(&logged.version.digest), "{err}");
    let report = f.store.check(false).unwrap();
    assert!(report.problems.iter().any(|p| p.path == path && p.what.contains("damaged manifest")), "{report:?}");

    fs::write(&path, text).unwrap();
    assert_eq!(f.store.manifest(&logged.version).unwrap().len(), 2, "the committed manifest reads again");
}
