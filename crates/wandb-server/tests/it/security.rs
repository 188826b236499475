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

const ALICE: &str = "alice-key-0123456789abcdef0123456789abcdef";
const BOB: &str = "bob-key-0123456789abcdef0123456789abcdef01";
const CAROL: &str = "carol-key-0123456789abcdef0123456789abcdef";

fn users() -> wandb_server::Users {
    wandb_server::Users::from_json(&format!(
        r#"{{"users": [
            {{"name": "alice", "api_key": "{ALICE}", "entities": ["alice", "ml-team"]}},
            {{"name": "bob", "api_key_hash": "{}", "entities": ["bob"]}},
            {{"name": "carol", "api_key": "{CAROL}", "entities": ["ml-team"]}}
        ]}}"#,
        wandb_server::hash_api_key(BOB)
    ))
    .unwrap()
}

/// With users, each reaches only their entities: no GraphQL answer, storage URL or pending artifact of another
/// entity, whatever id they guess; the viewer is the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reaches_only_their_entities() {
    let served = Served::start(ServerOptions { users: Some(users()), ..Default::default() }).await;
    let id = served.log_file(Some(ALICE), "alice", "private", b"alice's data").await;

    let (_, viewer) = served.graphql(Some(ALICE), "Viewer", "query Viewer { x }", json!({})).await;
    assert_eq!(viewer.pointer("/data/viewer/entity"), Some(&json!("alice")));
    assert_eq!(viewer.pointer("/data/viewer/teams/edges/0/node/name"), Some(&json!("ml-team")));
    let (_, viewer) = served.graphql(Some(BOB), "Viewer", "query Viewer { x }", json!({})).await;
    assert_eq!(viewer.pointer("/data/viewer/entity"), Some(&json!("bob")));

    // Bob, by id, by name, and through the lists, sees nothing of alice's.
    let denied = |answer: &serde_json::Value| {
        let message = Served::error_of(answer).unwrap_or_default();
        assert!(message.contains("permission denied: bob may not use entity \"alice\""), "{answer}");
        assert!(!answer.to_string().contains("private\"") || message.contains("alice"), "{answer}");
    };
    for (operation, variables) in [
        ("ArtifactByID", json!({"id": id})),
        ("ArtifactMembershipByName", json!({"entityName": "alice", "projectName": "proj", "name": "private:latest"})),
        ("ProjectArtifactCollections", json!({"entity": "alice", "project": "proj"})),
        (
            "GetArtifactMembershipFileUrls",
            json!({"entity": "alice", "project": "proj", "collection": "private", "alias": "latest"}),
        ),
        ("FetchArtifactManifest", json!({"artifactID": id})),
        ("DeleteArtifact", json!({"input": {"artifactID": id, "deleteAliases": true}})),
        ("Runs", json!({"entity": "alice", "project": "proj"})),
    ] {
        let (_, answer) = served.graphql(Some(BOB), operation, &format!("query {operation} {{ x }}"), variables).await;
        denied(&answer);
    }
    assert!(
        served
            .create_artifact(Some(BOB), "alice", "planted", "dataset", "00")
            .await
            .unwrap_err()
            .contains("permission denied")
    );
    assert!(served.file_url(Some(BOB), "alice", "private").await.is_none());
    assert!(served.file_url(Some(ALICE), "alice", "private").await.is_some(), "alice still reads her own");

    // A pending artifact in a shared entity is its creator's: carol (ml-team too) cannot commit or fill it.
    let pending = served.create_artifact(Some(ALICE), "ml-team", "shared", "dataset", "00").await.unwrap();
    for (operation, variables) in [
        ("CommitArtifact", json!({"input": {"artifactID": pending}})),
        ("CreateArtifactManifest", json!({"artifactID": pending, "includeUpload": true})),
        (
            "CreateArtifactFiles",
            json!({"input": {"artifactFiles": [{"artifactID": pending, "name": "x", "md5": "AA=="}]}}),
        ),
    ] {
        let (_, answer) =
            served.graphql(Some(CAROL), operation, &format!("mutation {operation} {{ x }}"), variables).await;
        let message = Served::error_of(&answer).unwrap_or_default();
        assert!(message.contains("another user's pending artifact"), "{operation}: {answer}");
    }

    // Without a key, with a wrong one: 401, the key not echoed.
    for key in [None, Some("not-a-user-key-0123456789abcdef0123456789ab")] {
        let (status, answer) = served.graphql(key, "Viewer", "query Viewer { x }", json!({})).await;
        assert_eq!(status, 401, "{answer}");
        assert!(!answer.to_string().contains("not-a-user-key"));
    }
    // Run streams and the SDK's artifactsV2 fallback check the entity too.
    let basic = |key: &str| {
        format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("api:{key}")))
    };
    let stream = served
        .http
        .post(served.url("/files/alice/proj/run1/file_stream"))
        .header("Authorization", basic(BOB))
        .json(&json!({"files": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 403);
    let hex = artifact_core::b64_to_hex(&{
        let mut body: &[u8] = b"alice's data";
        artifact_core::digest_reader_b64(artifact_core::DigestAlgorithm::Md5, &mut body).unwrap().0
    })
    .unwrap();
    let v2 = format!("/artifactsV2/default/bob/proj/x/{id}/{hex}/file.bin");
    let fallback = served.http.get(served.url(&v2)).header("Authorization", basic(BOB)).send().await.unwrap();
    assert_eq!(fallback.status().as_u16(), 404, "a digest alone opens nothing");
    let fallback = served.http.get(served.url(&v2)).header("Authorization", basic(ALICE)).send().await.unwrap();
    assert_eq!(fallback.bytes().await.unwrap().as_ref(), b"alice's data");
}

/// A users file that cannot be used is refused, naming the problem; so is an open server on the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_users_files_and_open_network_servers_are_refused() {
    for (text, says) in [
        (r#"{"users": [{"name": "a", "api_key": "short", "entities": ["a"]}]}"#, "40+ characters"),
        (r#"{"users": [{"name": "a", "api_key_hash": "md5:00", "entities": ["a"]}]}"#, "is not blake3:<64 hex digits>"),
        (&format!(r#"{{"users": [{{"name": "a", "api_key": "{ALICE}"}}]}}"#), "may use no entity"),
        (&format!(r#"{{"users": [{{"name": "a", "api_key": "{ALICE}", "entities": ["x/y"]}}]}}"#), "entity \"x/y\""),
        (r#"{"users": []}"#, "lists no users"),
        (r#"{"people": []}"#, "unknown field"),
    ] {
        let err = wandb_server::Users::from_json(text).unwrap_err().to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = wandb_store::EmbeddedStore::open(dir.path()).unwrap();
    let open = wandb_server::WandbServer::bind(store, "0.0.0.0:0".parse().unwrap(), ServerOptions::default()).await;
    assert!(matches!(open, Err(wandb_server::Error::OpenOnNetwork { .. })));
}

/// A GraphQL body over the limit is refused with 413 before it is read: the request declares 2 MiB and
/// sends none of it, so only a server that answers from the headers replies (a client that writes the
/// whole body races the server closing the connection, which is why this speaks raw HTTP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_graphql_body_is_refused() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let served = Served::start(ServerOptions { max_graphql_bytes: 1 << 20, ..Default::default() }).await;
    let address = served.server.base_url().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), socket.read(&mut buffer))
            .await
            .expect("the server answers before the body arrives")
            .unwrap();
        assert!(read > 0, "the server closed without answering: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    let (status, _) = served.graphql(None, "Viewer", "query Viewer { x }", json!({})).await;
    assert_eq!(status, 200);
}
