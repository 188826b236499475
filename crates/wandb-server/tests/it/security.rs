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

/// Storage URLs are presigned: the server's own work, nothing guessable, refused with S3's `AccessDenied` before
/// a body is read when unsigned, forged, altered or spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_answers_only_signed_urls() {
    let served = Served::start(ServerOptions { api_key: Some("k".repeat(40)), ..Default::default() }).await;
    let key = "k".repeat(40);
    let id = served.log_file(Some(&key), "ent", "ds", b"secret bytes").await;
    let url = served.file_url(Some(&key), "ent", "ds").await.expect("a download URL");
    assert_eq!(served.http.get(&url).send().await.unwrap().bytes().await.unwrap().as_ref(), b"secret bytes");

    let (path, query) = url.split_once('?').unwrap();
    let refused = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    };
    // The object's own URL, and the manifest's by its (guessable) id, without a signature.
    refused(served.http.get(path).send().await.unwrap()).await;
    let manifest_path = format!("/storage/manifests/{}", artifact_core::to_hex(id.as_bytes()));
    refused(served.http.get(served.url(&manifest_path)).send().await.unwrap()).await;
    // A forged signature, and a real one moved to another object or another method.
    let forged = query.replace(&query[query.len() - 8..], "00000000");
    refused(served.http.get(format!("{path}?{forged}")).send().await.unwrap()).await;
    let other = format!("{}/storage/objects/md5/00112233445566778899aabbccddeeff?{query}", served.server.base_url());
    refused(served.http.get(other).send().await.unwrap()).await;
    refused(served.http.put(&url).body("overwrite").send().await.unwrap()).await;

    // A keyless manifest PUT onto a pending artifact is refused before its body matters.
    let pending = served.create_artifact(Some(&key), "ent", "victim", "dataset", "00").await.unwrap();
    let target = served.url(&format!("/storage/manifests/{}", artifact_core::to_hex(pending.as_bytes())));
    match served.http.put(&target).body(vec![b'x'; 8 << 20]).send().await {
        Ok(response) => refused(response).await,
        // The server answered and closed the connection without reading the body: the client's write fails.
        Err(e) => assert!(format!("{e:?}").contains("BodyWrite"), "{e:?}"),
    }
    refused(served.http.put(served.url("/storage/runfiles/ent/proj/run/output.log")).body("x").send().await.unwrap())
        .await;
}
