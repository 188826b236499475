//! What uploads leave on disk: each running server keeps them in a locked directory of its own, and what a killed
//! server left goes when the next one starts.

use std::fs;

use wandb_server::{ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

use crate::support::Served;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_uploads_go_when_the_next_server_starts() {
    let first = Served::start(ServerOptions::default()).await;
    let uploads = first.dir.path().join("store/server/uploads");
    let running: Vec<_> = fs::read_dir(&uploads).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(running.len(), 1, "one directory per running server");
    assert!(running[0].join(".lock").is_file());

    // What a server killed mid-upload leaves: its directory, its (no longer held) lock, a part of an upload.
    let dead = uploads.join("00000000deadbeef");
    fs::create_dir_all(dead.join("multipart-x")).unwrap();
    fs::write(dead.join(".lock"), b"").unwrap();
    fs::write(dead.join("multipart-x/1-0123"), vec![7u8; 4096]).unwrap();

    let store = EmbeddedStore::open(first.dir.path().join("store")).unwrap();
    let second = WandbServer::bind(store, "127.0.0.1:0".parse().unwrap(), ServerOptions::default()).await.unwrap();
    assert!(!dead.exists(), "the killed server's uploads are gone");
    assert!(running[0].is_dir(), "a running server's uploads stay");
    let now: Vec<_> = fs::read_dir(&uploads).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(now.len(), 2, "{now:?}");
    drop(second);
}
