//! Version ML datasets and models as W&B artifacts from Rust — byte-compatible with the `wandb` Python SDK,
//! with or without a W&B server.
//!
//! This crate only re-exports the workspace's crates; depend on them directly if you need just one.
//!
//! # Crate topology
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`artifact`] | `artifact-core` | the artifact model: drafts, manifests, digests, validation (no I/O runtime, no network) |
//! | [`cache`] | `io-cache` | the local content cache shared with the Python SDK, and the digest memo |
//! | [`api`] | `wandb-api` | backends: the embedded store (default), downloads, `http(s)://` references |
//! | [`serialization`] | `serde-modules` | step outputs: pickle (never executing code), dill, cloudpickle, joblib, JSON, MessagePack, bincode, postcard, raw; W&B Tables |
//! | [`dagster`] | `dagster-bridge` | Rust steps in Dagster runs: Dagster Pipes, and dagster-wandb's configuration and IO manager |
//!
//! The `dagster-wandb` command-line tool (feature `cli`, on by default) is built from this package too.
//!
//! # Example
//!
//! ```
//! use dagster_wandb::{Artifact, EmbeddedStore, LogOptions, ProjectRef};
//! use dagster_wandb::artifact::AddDirOptions;
//!
//! let tmp = tempfile::tempdir()?;
//! std::fs::create_dir(tmp.path().join("data"))?;
//! std::fs::write(tmp.path().join("data/train.csv"), "x,y\n1,2\n")?;
//!
//! let store = EmbeddedStore::open(tmp.path().join("store"))?;
//! let project = ProjectRef::new("local", "artifacts-example")?;
//! let mut dataset = Artifact::new("mnist-raw", "dataset")?;
//! dataset.add_dir(tmp.path().join("data"), AddDirOptions::default())?;
//! let logged = store.log_artifact(&project, &dataset, &LogOptions::default())?;
//! assert_eq!(logged.version.qualified_name(), "mnist-raw:v0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `cli` (default): the command-line tool.
//! - `http-references` (default): checksummed `http(s)://` references.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use artifact_core as artifact;
pub use dagster_bridge as dagster;
pub use io_cache as cache;
pub use serde_modules as serialization;
pub use wandb_api as api;

pub use artifact_core::{Artifact, Manifest, ManifestEntry};
pub use io_cache::ContentCache;
pub use serde_modules::{Module, Table, Value};
pub use wandb_api::{DownloadOptions, EmbeddedStore, LogOptions, ProjectRef, RunOptions, Settings, download};
