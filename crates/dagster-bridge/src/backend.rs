//! One synchronous face over the two places artifacts live: an embedded store (`file://`) and a W&B server
//! (`http(s)://`), so the IO manager's logic is written once.

use std::path::Path;
use std::sync::Arc;

use artifact_core::{Artifact, DigestMemo, Manifest};
use wandb_api::client::{RemoteDownloadOptions, RemoteLogOptions, WandbClient};
use wandb_api::run::{Run, RunSettings};
use wandb_api::{ArtifactVersion, BaseUrl, DownloadOptions, EmbeddedStore, LogOptions, ProjectRef, RunOptions};

use crate::error::{Error, Result};

/// Where the IO manager logs and reads artifacts.
pub(crate) enum Backend {
    Embedded(EmbeddedStore),
    Server(Box<Remote>),
}

pub(crate) struct Remote {
    client: WandbClient,
    // Shared with the runs started on it, which send from their own threads.
    runtime: Arc<tokio::runtime::Runtime>,
}

/// A version just logged.
pub(crate) struct Logged {
    pub(crate) version: ArtifactVersion,
    pub(crate) created: bool,
}

impl Backend {
    /// The backend `host` names, authenticated with `api_key` (a server only).
    pub(crate) fn connect(host: &str, api_key: Option<String>) -> Result<Self> {
        match BaseUrl::parse(host)? {
            BaseUrl::Embedded(dir) => Ok(Backend::Embedded(EmbeddedStore::open(dir)?)),
            BaseUrl::Server(url) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("start the async runtime for", url.clone(), e))?;
                let api_key = api_key.or_else(|| std::env::var("WANDB_API_KEY").ok()).filter(|k| !k.is_empty());
                let client = WandbClient::with_env_headers(&url, api_key)?;
                Ok(Backend::Server(Box::new(Remote { client, runtime: Arc::new(runtime) })))
            }
        }
    }

    /// Resumes the run, creating it when missing.
    pub(crate) fn resume_run(&self, project: &ProjectRef, options: RunOptions) -> Result<()> {
        match self {
            Backend::Embedded(store) => {
                store.resume_run(project, options)?;
            }
            Backend::Server(remote) => {
                remote.runtime.block_on(remote.client.resume_run(project, &options))?;
            }
        }
        Ok(())
    }

    /// The W&B client and its runtime, for a server backend.
    pub(crate) fn remote(&self) -> Option<(&WandbClient, &Arc<tokio::runtime::Runtime>)> {
        match self {
            Backend::Server(remote) => Some((&remote.client, &remote.runtime)),
            Backend::Embedded(_) => None,
        }
    }

    /// Starts (or resumes) a run to log metrics to.
    pub(crate) fn start_run(&self, project: &ProjectRef, settings: RunSettings) -> Result<Run> {
        Ok(match self {
            Backend::Embedded(store) => Run::init_embedded(store, project, settings)?,
            Backend::Server(remote) => {
                Run::init_remote(&remote.client, Arc::clone(&remote.runtime), project, settings)?
            }
        })
    }

    pub(crate) fn log_artifact(
        &self,
        project: &ProjectRef,
        artifact: &Artifact,
        aliases: &[String],
        run_id: &str,
    ) -> Result<Logged> {
        match self {
            Backend::Embedded(store) => {
                store.check_type(project, artifact.name(), artifact.artifact_type())?;
                let options =
                    LogOptions { aliases: aliases.to_vec(), run_id: Some(run_id.to_owned()), ..Default::default() };
                let logged = store.log_artifact(project, artifact, &options)?;
                Ok(Logged { version: logged.version, created: logged.created })
            }
            Backend::Server(remote) => {
                let options = RemoteLogOptions {
                    aliases: aliases.to_vec(),
                    run_id: Some(run_id.to_owned()),
                    ..Default::default()
                };
                let logged = remote.runtime.block_on(remote.client.log_artifact(project, artifact, &options))?;
                Ok(Logged { version: logged.version, created: logged.created })
            }
        }
    }

    pub(crate) fn artifact(&self, project: &ProjectRef, name: &str, selector: &str) -> Result<ArtifactVersion> {
        Ok(match self {
            Backend::Embedded(store) => store.artifact(project, name, selector)?,
            Backend::Server(remote) => remote.runtime.block_on(remote.client.artifact(project, name, selector))?,
        })
    }

    /// Records that run `run_id` used `version` (the input edge of the lineage).
    pub(crate) fn record_use(&self, project: &ProjectRef, run_id: &str, version: &ArtifactVersion) -> Result<()> {
        match self {
            Backend::Embedded(store) => store.record_use(project, run_id, version)?,
            Backend::Server(remote) => remote.runtime.block_on(remote.client.use_artifact(project, run_id, version))?,
        }
        Ok(())
    }

    pub(crate) fn manifest(&self, version: &ArtifactVersion) -> Result<Manifest> {
        Ok(match self {
            Backend::Embedded(store) => store.manifest(version)?,
            Backend::Server(remote) => remote.runtime.block_on(remote.client.manifest(version))?,
        })
    }

    /// Downloads `entries` (all or part of `version`'s manifest) into `root`, through the W&B content cache
    /// when one can be located, verifying every byte; `references` fetches reference entries.
    pub(crate) fn download(
        &self,
        version: &ArtifactVersion,
        entries: &Manifest,
        root: &Path,
        references: &Arc<wandb_api::ReferenceResolvers>,
    ) -> Result<()> {
        let cache = io_cache::ContentCache::from_env().ok();
        let memo = cache.as_ref().map(|c| Arc::new(c.digest_memo()) as Arc<dyn DigestMemo>);
        let references: Arc<dyn wandb_api::ReferenceFetcher> = references.clone();
        let options = DownloadOptions { cache, memo, references: Some(references), ..Default::default() };
        match self {
            Backend::Embedded(store) => {
                wandb_api::download(store, entries, root, &options)?;
            }
            Backend::Server(remote) => {
                let options = RemoteDownloadOptions::from(options);
                remote.runtime.block_on(remote.client.download_entries(version, entries, root, &options))?;
            }
        }
        Ok(())
    }
}
