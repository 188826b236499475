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
