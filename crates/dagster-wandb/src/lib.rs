//! Version ML datasets and models as W&B artifacts from Rust — byte-compatible with the `wandb` Python SDK,
//! with or without a W&B server — and run Rust steps in Dagster.
//!
//! This crate only re-exports the workspace's crates; depend on them directly if you need just one.
//!
//! # Crate topology
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`artifact`] | `artifact-core` | the artifact model: drafts, manifests, digests, validation (no I/O runtime, no network) |
//! | [`cache`] | `io-cache` | the local content cache shared with the Python SDK, the digest memo, the sweeper |
//! | [`serialization`] | `serde-modules` | step outputs: pickle (never executing code), dill, cloudpickle, joblib, JSON, MessagePack, bincode, postcard, raw; W&B Tables |
//! | [`store`] | `wandb-store` | the embedded store: W&B's artifact semantics in a directory |
//! | [`server`] | `wandb-server` | the W&B-compatible server over an embedded store (feature `server`) |
//! | [`web`] | `wandb-web` | the web view's pages: projects, versions, files, lineage graph, run charts (feature `server`) |
//! | [`references`] | `wandb-references` | `s3://`, `gs://`, Azure blob and `http(s)://` references |
//! | [`api`] | `wandb-api` | one SDK on both backends: the `Backend` trait, the blocking `Api`, runs, downloads, the W&B client |
//! | [`launch`] | `wandb-launch` | W&B Launch: launch specs, run queues, the launch agent (feature `launch`) |
//! | [`dagster`] | `dagster-bridge` | Rust steps in Dagster runs: Dagster Pipes, and dagster-wandb's configuration and IO manager |
//!
//! The `dagster-wandb` command-line tool is the `dagster-wandb-cli` package.
//!
//! # Example
//!
//! ```
//! use dagster_wandb::{Api, Artifact, RunSettings, Settings};
//! use dagster_wandb::artifact::AddDirOptions;
//!
//! let tmp = tempfile::tempdir()?;
//! std::fs::create_dir(tmp.path().join("data"))?;
//! std::fs::write(tmp.path().join("data/train.csv"), "x,y\n1,2\n")?;
//!
//! let api = Api::new(Settings::embedded(tmp.path().join("store")))?; // Api::from_env()? reads WANDB_BASE_URL
//! let mut run = api.init(RunSettings::new("artifacts-example").job_type("load-data"))?;
//! let mut dataset = Artifact::new("mnist-raw", "dataset")?;
//! dataset.add_dir(tmp.path().join("data"), AddDirOptions::default())?;
//! let logged = run.log_artifact(&dataset, &["best"])?;
//! assert_eq!(logged.version.qualified_name(), "mnist-raw:v0");
//! run.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `client` (default): backends that are W&B servers.
//! - `launch` (default): [`launch`], W&B Launch.
//! - `server` (default): [`server`], the W&B-compatible server over an embedded store.
//! - `http-references`, `object-references` (default): checksummed `http(s)://`, `s3://`, `gs://` and Azure
//!   references.
//!
//! Without default features the crate still builds drafts, logs them to and downloads them from the embedded
//! store, with no HTTP stack in the build.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use artifact_core as artifact;
pub use dagster_bridge as dagster;
pub use io_cache as cache;
pub use serde_modules as serialization;
pub use wandb_api as api;
#[cfg(feature = "launch")]
#[cfg_attr(docsrs, doc(cfg(feature = "launch")))]
pub use wandb_launch as launch;
pub use wandb_references as references;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use wandb_server as server;
pub use wandb_store as store;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use wandb_web as web;

pub use artifact_core::{Artifact, Manifest, ManifestEntry};
pub use io_cache::ContentCache;
pub use serde_modules::{Module, Table, Value};
pub use wandb_api::{
    Api, ArtifactHandle, Backend, DownloadOptions, LogOptions, ProjectRef, Run, RunSettings, Settings, connect,
};
