//! Backends for W&B artifacts: where versions are logged, looked up and downloaded from.
//!
//! Today that is the [`EmbeddedStore`], a directory with W&B's versioning semantics (versions `v0, v1, …` in
//! log order, `latest` and custom aliases, dedup of identical content, one type per name, lineage of runs),
//! which is the default backend when no W&B server is configured. The backend is chosen from a base URL
//! ([`Settings::from_env`] reads `WANDB_BASE_URL`): `file:///path` is an embedded store; `http(s)://` names a
//! W&B server, which [`client::WandbClient`] speaks to. [`server::WandbServer`] (feature `server`) serves an
//! embedded store over the same protocol, for the Python `wandb` client and ours.
//!
//! [`download()`] materialises a version into a directory through the `io-cache` content cache, checking every
//! path against the root first and every byte against its digest. [`HttpReferenceResolver`] (feature
//! `http-references`, on by default) checksums `http(s)://` references for `artifact_core`.
//!
//! # Example
//!
//! ```
//! use artifact_core::{Artifact, AddDirOptions};
//! use wandb_api::{DownloadOptions, EmbeddedStore, LogOptions, ProjectRef, download};
//!
//! let tmp = tempfile::tempdir()?;
//! std::fs::create_dir(tmp.path().join("data"))?;
//! std::fs::write(tmp.path().join("data/train.csv"), "x,y\n1,2\n")?;
//!
//! let store = EmbeddedStore::open(tmp.path().join("store"))?;
//! let project = ProjectRef::new("local", "demo")?;
//! let mut dataset = Artifact::new("my-ds", "dataset")?;
//! dataset.add_dir(tmp.path().join("data"), AddDirOptions::default())?;
//! let logged = store.log_artifact(&project, &dataset, &LogOptions { aliases: vec!["best".into()], ..Default::default() })?;
//!
//! let version = store.artifact(&project, "my-ds", "best")?;
//! assert_eq!(version.id, logged.version.id);
//! let root = tmp.path().join("downloaded");
//! download(&store, &store.manifest(&version)?, &root, &DownloadOptions::default())?;
//! assert_eq!(std::fs::read_to_string(root.join("train.csv"))?, "x,y\n1,2\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `http-references` (default): [`HttpReferenceResolver`], through `reqwest` with rustls.
//! - `server` (default): [`server::WandbServer`], through axum.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
mod download;
mod error;
#[cfg(feature = "http-references")]
mod http_reference;
pub mod launch;
pub mod launch_agent;
#[cfg(feature = "object-references")]
mod object_reference;
mod resolvers;
pub mod run;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
mod settings;
mod store;
mod time;

pub use download::{DownloadOptions, DownloadReport, ObjectSource, ReferenceFetcher, download};
pub use error::{Error, Result};
#[cfg(feature = "http-references")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-references")))]
pub use http_reference::HttpReferenceResolver;
#[cfg(feature = "object-references")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-references")))]
pub use object_reference::{AzureReferenceResolver, GcsReferenceResolver, S3ReferenceResolver};
pub use resolvers::ReferenceResolvers;
pub use settings::{BaseUrl, DEFAULT_ENTITY, Settings, default_download_root, default_store_dir};
pub use store::{
    ArtifactEdge, ArtifactVersion, Collection, EmbeddedStore, Lineage, LogOptions, LoggedArtifact, ProjectRef,
    Reservation, RunOptions, RunRecord, VersionDraft, generate_run_id, link_target,
};
pub use store::{EVENTS_FILE, HISTORY_FILE, OUTPUT_FILE, RunState, RunStatus, SUMMARY_FILE, StreamChunk};
pub use time::utc_isoformat;
