//! One SDK for W&B artifacts and runs: the same code on an embedded store or on a W&B server.
//!
//! A pipeline is written once and pointed at a backend by `WANDB_BASE_URL` alone: `file:///path` (or nothing
//! at all) is the embedded store, a directory with W&B's versioning semantics that needs no server;
//! `http(s)://…` is a W&B server — wandb.ai, W&B Server, or `dagster-wandb server` over an embedded store.
//! Artifacts are byte-compatible with the `wandb` 0.31.0 Python SDK either way.
//!
//! - [`Api`] is the synchronous face, in the spirit of `reqwest::blocking`: one process-wide runtime, handles
//!   ([`Run`], [`ArtifactHandle`]) instead of a project on every call, and the SDK's defaults (downloads to
//!   `./artifacts/<name>:<version>` through the W&B cache, references fetched).
//! - [`Backend`] is the async trait under it, for tokio users: [`connect`] gives an `Arc<dyn Backend>` for
//!   [`Settings`]; [`EmbeddedBackend`] and [`client::WandbClient`] (feature `client`) implement it.
//! - [`Settings::from_env`] is the one place the `WANDB_*` environment is read.
//!
//! # Example
//!
//! The seed tutorial's first two steps, on whatever backend the environment names:
//!
//! ```
//! use std::io::Write;
//! use wandb_api::{Api, Artifact, RunSettings, Settings};
//! use artifact_core::NewFileOptions;
//!
//! # let dir = tempfile::tempdir()?;
//! # let settings = Settings::embedded(dir.path().join("store")).with_cache_dir(Some(dir.path().join("cache")));
//! let api = Api::new(settings)?; // or Api::from_env()?
//! let mut run = api.init(RunSettings::new("artifacts-example").job_type("load-data"))?;
//! let mut raw = Artifact::new("mnist-raw", "dataset")?;
//! let mut file = raw.new_file("training.csv", NewFileOptions::default())?;
//! writeln!(file, "x,y\n1,2")?;
//! file.close()?;
//! run.log_artifact(&raw, &["best"])?;
//! run.finish()?;
//!
//! let mut run = api.init(RunSettings::new("artifacts-example").job_type("preprocess-data"))?;
//! let raw = run.use_artifact("mnist-raw:latest")?;
//! let root = raw.download_to(dir.path().join("raw"))?;
//! assert_eq!(std::fs::read_to_string(root.join("training.csv"))?, "x,y\n1,2\n");
//! assert_eq!(raw.logged_by()?.unwrap().job_type.as_deref(), Some("load-data"));
//! run.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `client` (default): [`client::WandbClient`], the W&B protocol over reqwest with rustls.
//! - `http-references` (default): checksummed `http(s)://` references (`wandb-references/http`).
//! - `object-references` (default): `s3://`, `gs://` and Azure blob references (`wandb-references/object-stores`).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod blocking;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
mod download;
mod embedded;
mod error;
pub mod run;
mod settings;
pub mod sync;

pub use artifact_core::Artifact;
pub use backend::{Backend, Lineage, LogOptions, LoggedArtifact, RunInfo, UpsertedPart, connect};
pub use blocking::{Api, ArtifactHandle, block_on, runtime};
pub use download::{DownloadOptions, DownloadReport, ObjectSource, download};
pub use embedded::EmbeddedBackend;
pub use error::{Error, Result};
pub use run::{Resume, Run, RunSettings};
pub use settings::{
    BaseUrl, DEFAULT_DOWNLOAD_CONCURRENCY, Settings, default_download_root, default_store_dir, parse_duration,
};
pub use wandb_references::{ReferenceFetcher, ReferenceResolvers};
pub use wandb_store::{
    ArtifactEdge, ArtifactVersion, Collection, CollectionEdit, CollectionKind, DEFAULT_ENTITY, EVENTS_FILE,
    HISTORY_FILE, OUTPUT_FILE, ProjectRef, Registry, RegistrySpec, RegistryVisibility, RunOptions, RunState,
    SUMMARY_FILE, StreamChunk, Ttl, VersionEdit, generate_run_id, link_target, utc_isoformat,
};
