//! [`Backend`] over the W&B protocol.

use std::path::Path;

use artifact_core::{Artifact, Manifest};
use serde_json::{Map, Value};
use wandb_store::{
    ArtifactVersion, Collection, CollectionEdit, ProjectRef, Registry, RegistrySpec, RunOptions, StreamChunk,
    VersionEdit,
};

use super::WandbClient;
use crate::backend::{Backend, Lineage, LogOptions, LoggedArtifact, RunInfo, UpsertedPart};
use crate::download::{DownloadOptions, DownloadReport};
use crate::error::{Error, Result};
use crate::run::ResumePoint;
use crate::settings::BaseUrl;

/// An unknown project reads as empty on a server, as on the embedded store.
fn empty_when_no_project<T>(result: Result<Vec<T>>) -> Result<Vec<T>> {
    match result {
        Err(Error::ProjectNotFound { .. }) => Ok(Vec::new()),
        other => other,
    }
}

#[async_trait::async_trait]
impl Backend for WandbClient {
    fn base_url(&self) -> BaseUrl {
        BaseUrl::Server(self.transport.base_url.clone())
    }

    fn batches_run_streams(&self) -> bool {
        true
    }

    fn as_client(&self) -> Option<&WandbClient> {
        Some(self)
    }

    async fn log_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        self.log(project, artifact, options).await
    }

    async fn upsert_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<UpsertedPart> {
        self.upsert(project, artifact, distributed_id, options).await
    }

    async fn finish_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        distributed_id: &str,
        options: &LogOptions,
    ) -> Result<LoggedArtifact> {
        self.finish(project, artifact, distributed_id, options).await
    }

    async fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
        artifact_core::validate_artifact_name(name)?;
        self.membership(project, name, selector).await
    }

    async fn artifact_by_id(&self, id: &str) -> Result<ArtifactVersion> {
        WandbClient::artifact_by_id(self, id).await
    }

    async fn versions(&self, project: &ProjectRef, name: &str) -> Result<Vec<ArtifactVersion>> {
        artifact_core::validate_artifact_name(name)?;
        self.list_versions(project, name).await
    }

    async fn collections(&self, project: &ProjectRef, artifact_type: Option<&str>) -> Result<Vec<Collection>> {
        empty_when_no_project(self.list_collections(project, artifact_type).await)
    }

    async fn artifact_types(&self, project: &ProjectRef) -> Result<Vec<String>> {
        empty_when_no_project(self.list_artifact_types(project).await)
    }

    async fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
        self.fetch_manifest(version).await
    }

    async fn download(
        &self,
        version: &ArtifactVersion,
        entries: &Manifest,
        root: &Path,
        options: &DownloadOptions,
    ) -> Result<DownloadReport> {
        self.download_entries(version, entries, root, options).await
    }

    async fn record_use(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()> {
        self.use_version(project, run_id, version).await
    }

    async fn link(
        &self,
        version: &ArtifactVersion,
        target: &ProjectRef,
        collection: &str,
        aliases: &[String],
    ) -> Result<ArtifactVersion> {
        self.link_version(version, target, collection, aliases).await
    }

    async fn edit(&self, version: &ArtifactVersion, edit: &VersionEdit) -> Result<ArtifactVersion> {
        self.edit_version(version, edit).await
    }

    async fn delete(&self, version: &ArtifactVersion, delete_aliases: bool) -> Result<()> {
        self.delete_version(version, delete_aliases).await
    }

    async fn unlink(&self, linked: &ArtifactVersion) -> Result<()> {
        self.unlink_version(linked).await
    }

    async fn edit_collection(&self, project: &ProjectRef, name: &str, edit: &CollectionEdit) -> Result<Collection> {
        WandbClient::edit_collection(self, project, name, edit).await
    }

    async fn delete_collection(&self, project: &ProjectRef, name: &str) -> Result<()> {
        self.delete_whole_collection(project, name).await
    }

    async fn registries(&self, entity: &str) -> Result<Vec<Registry>> {
        self.list_registries(entity).await
    }

    async fn registry(&self, entity: &str, name: &str) -> Result<Registry> {
        self.get_registry(entity, name).await
    }

    async fn create_registry(&self, entity: &str, name: &str, spec: &RegistrySpec) -> Result<Registry> {
        self.new_registry(entity, name, spec).await
    }

    async fn edit_registry(&self, registry: &Registry, spec: &RegistrySpec) -> Result<Registry> {
        self.change_registry(registry, spec).await
    }

    async fn delete_registry(&self, registry: &Registry) -> Result<()> {
        self.remove_registry(registry).await
    }

    async fn lineage(&self, version: &ArtifactVersion) -> Result<Lineage> {
        self.fetch_lineage(version).await
    }

    async fn resume_run(&self, project: &ProjectRef, options: &RunOptions) -> Result<bool> {
        self.upsert_run(project, options).await
    }

    async fn run(&self, project: &ProjectRef, run_id: &str) -> Result<RunInfo> {
        self.fetch_run(project, run_id).await
    }

    async fn runs(&self, project: &ProjectRef) -> Result<Vec<RunInfo>> {
        empty_when_no_project(self.list_runs(project).await)
    }

    async fn run_history(&self, project: &ProjectRef, run_id: &str) -> Result<Vec<Map<String, Value>>> {
        self.history(project, run_id).await
    }

    async fn resume_point(&self, project: &ProjectRef, run_id: &str) -> Result<Option<ResumePoint>> {
        self.run_resume_status(project, run_id).await
    }

    async fn write_run_stream(&self, project: &ProjectRef, run_id: &str, chunk: &StreamChunk) -> Result<()> {
        self.file_stream(project, run_id, chunk).await
    }

    async fn update_run_config(&self, project: &ProjectRef, run_id: &str, config: &Map<String, Value>) -> Result<()> {
        self.upsert_run_config(project, run_id, config).await
    }
}
