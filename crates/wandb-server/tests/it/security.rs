//! What a hostile client sends, and what the server must refuse.

use serde_json::json;
use wandb_server::ServerOptions;

use crate::support::{Served, manifest};

/// The artifact digest of a manifest, as the client declares it in `CreateArtifact`.
fn digest_of(manifest: &serde_json::Value) -> String {
    artifact_core::Manifest::from_json(manifest.to_string().as_bytes()).map(|m| m.digest()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_manifest_paths_are_refused_naming_the_path() {
    let served = Served::start(ServerOptions::default()).await;
    let paths = [
        "../x",
        "/abs",
        "a/../../b",
        "x\0y",
        "a\\b",
        "",
        "..",
        ".",
        "x/..",
        "./x",
        "a//b",
        "a/./b",
        "C:/win",
        "tab\there",
    ];
    assert_eq!(paths.len(), 14);
    for (n, path) in paths.iter().enumerate() {
        let contents = json!({ *path: {"digest": "etag", "ref": "s3://bucket/key", "size": 1} });
        let manifest = manifest(contents);
        let name = format!("evil-{n}");
        let id = served.create_artifact(None, "ent", &name, "dataset", &digest_of(&manifest)).await.unwrap();
        let err = served.commit_manifest(None, &id, &manifest).await.unwrap_err();
        // Named as Python's repr names it: control characters and backslashes escaped.
        let named = format!("'{}'", path.replace('\\', "\\\\").replace('\0', "\\x00").replace('\t', "\\t"));
        assert!(err.contains(&format!("Invalid artifact path: {named}")), "{path:?}: {err}");
    }
    let store = wandb_store::EmbeddedStore::open(served.dir.path().join("store")).unwrap();
    let project = wandb_store::ProjectRef::new("ent", "proj").unwrap();
    assert!(store.collections(&project, None).unwrap().is_empty(), "nothing was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_types_and_dot_names_are_refused_naming_them() {
    let served = Served::start(ServerOptions::default()).await;
    let long = "t".repeat(300);
    for artifact_type in ["../../t", "wandb-history", "a:b", long.as_str(), "new\nline", "a/b"] {
        let err = served.create_artifact(None, "ent", "ds", artifact_type, "0123").await.unwrap_err();
        let shown = if artifact_type.len() > 40 { &artifact_type[..40] } else { artifact_type };
        assert!(err.contains(&shown.replace('\n', "\\n")) || err.contains(shown), "{artifact_type:?}: {err}");
    }
    for name in [".", ".."] {
        let err = served.create_artifact(None, "ent", name, "dataset", "0123").await.unwrap_err();
        assert!(err.contains(&format!("'{name}' is not allowed")), "{name:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_stream_file_name_is_a_400_not_a_500() {
    let served = Served::start(ServerOptions::default()).await;
    let body = json!({"files": {"out\u{0}put.log": {"offset": 0, "content": ["x"]}}});
    let response = served.http.post(served.url("/files/ent/proj/run1/file_stream")).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400, "{}", response.text().await.unwrap());
}
