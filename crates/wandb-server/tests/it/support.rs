//! A served store and a raw HTTP client that sends what a hostile client would.

use base64::Engine as _;
use serde_json::{Value, json};
use wandb_server::{RunningServer, ServerOptions, WandbServer};
use wandb_store::EmbeddedStore;

pub(crate) struct Served {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: RunningServer,
    pub(crate) http: reqwest::Client,
}

impl Served {
    pub(crate) async fn start(options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("store")).unwrap();
        let server = WandbServer::bind(store, "127.0.0.1:0".parse().unwrap(), options).await.unwrap().spawn();
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap();
        Served { dir, server, http }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// POSTs one GraphQL operation with `key` (or none); the whole answer.
    pub(crate) async fn graphql(
        &self,
        key: Option<&str>,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({"operationName": operation, "query": query, "variables": variables}));
        if let Some(key) = key {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
            request = request.header("Authorization", format!("Basic {basic}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    /// The GraphQL error message of an answer, if it has one.
    pub(crate) fn error_of(answer: &Value) -> Option<String> {
        answer.pointer("/errors/0/message").and_then(Value::as_str).map(str::to_owned)
    }

    /// Creates a pending artifact (`CreateArtifact` as wandb-core sends it): its id, or the GraphQL error.
    pub(crate) async fn create_artifact(
        &self,
        key: Option<&str>,
        entity: &str,
        name: &str,
        artifact_type: &str,
        digest: &str,
    ) -> Result<String, String> {
        let variables = json!({"input": {
            "entityName": entity, "projectName": "proj", "artifactTypeName": artifact_type,
            "artifactCollectionName": name, "digest": digest, "digestAlgorithm": "MANIFEST_MD5",
        }});
        let (_, answer) = self.graphql(key, "CreateArtifact", "mutation CreateArtifact { x }", variables).await;
        match answer.pointer("/data/createArtifact/artifact/id").and_then(Value::as_str) {
            Some(id) => Ok(id.to_owned()),
            None => Err(Self::error_of(&answer).unwrap_or_else(|| answer.to_string())),
        }
    }

    /// Declares, uploads and commits a manifest for pending artifact `id` (the manifest upload URL as the server
    /// gives it); the commit's error, if any.
    pub(crate) async fn commit_manifest(&self, key: Option<&str>, id: &str, manifest: &Value) -> Result<(), String> {
        let (_, answer) = self
            .graphql(
                key,
                "CreateArtifactManifest",
                "mutation CreateArtifactManifest { x }",
                json!({"artifactID": id, "name": "wandb_manifest.json", "digest": "", "includeUpload": true}),
            )
            .await;
        let upload = answer
            .pointer("/data/createArtifactManifest/artifactManifest/file/uploadUrl")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no manifest upload URL: {answer}"))?
            .to_owned();
        let put = self.http.put(&upload).body(manifest.to_string()).send().await.unwrap();
        if !put.status().is_success() {
            return Err(format!("manifest upload refused: {}", put.status()));
        }
        let (_, answer) = self
            .graphql(key, "CommitArtifact", "mutation CommitArtifact { x }", json!({"input": {"artifactID": id}}))
            .await;
        match Self::error_of(&answer) {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }
}

/// A manifest with `contents`, as a client uploads it.
pub(crate) fn manifest(contents: Value) -> Value {
    json!({"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents})
}

impl Served {
    /// Logs one file as artifact `name` of `entity/proj` through raw requests (as a client does); its id.
    pub(crate) async fn log_file(&self, key: Option<&str>, entity: &str, name: &str, body: &[u8]) -> String {
        let md5 = {
            let mut reader = body;
            artifact_core::digest_reader_b64(artifact_core::DigestAlgorithm::Md5, &mut reader).unwrap().0
        };
        let manifest = manifest(json!({"file.bin": {"digest": md5, "size": body.len()}}));
        let digest = artifact_core::Manifest::from_json(manifest.to_string().as_bytes()).unwrap().digest();
        let id = self.create_artifact(key, entity, name, "dataset", &digest).await.unwrap();
        let (_, files) = self
            .graphql(
                key,
                "CreateArtifactFiles",
                "mutation CreateArtifactFiles { x }",
                json!({"input": {"artifactFiles": [{"artifactID": id, "name": "file.bin", "md5": md5}]}}),
            )
            .await;
        if let Some(url) =
            files.pointer("/data/createArtifactFiles/files/edges/0/node/uploadUrl").and_then(Value::as_str)
        {
            let put = self.http.put(url).header("Content-MD5", &md5).body(body.to_vec()).send().await.unwrap();
            assert!(put.status().is_success(), "{}", put.text().await.unwrap());
        }
        self.commit_manifest(key, &id, &manifest).await.unwrap();
        id
    }

    /// The download URL the server hands out for `file.bin` of `entity/proj/name:latest`.
    pub(crate) async fn file_url(&self, key: Option<&str>, entity: &str, name: &str) -> Option<String> {
        let (_, answer) = self
            .graphql(
                key,
                "GetArtifactMembershipFileUrls",
                "query GetArtifactMembershipFileUrls { x }",
                json!({"entity": entity, "project": "proj", "collection": name, "alias": "latest", "perPage": 10}),
            )
            .await;
        answer
            .pointer("/data/project/artifactCollection/artifactMembership/files/edges/0/node/directUrl")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}
