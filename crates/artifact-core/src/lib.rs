//! The W&B Artifacts data model, byte-compatible with the official Python SDK.
//!
//! An artifact is a named, typed, versioned set of files. This crate builds artifact drafts
//! ([`Artifact`]), computes their file digests (base64 MD5, or opt-in XXH128) and artifact digest exactly as
//! `wandb` 0.31.0 does, and reads and writes manifest v1 ([`Manifest`]) — parsing both the Python dialect and
//! the Go dialect wandb-core uploads, and writing the Go dialect byte for byte.
//!
//! It does no network I/O and depends on no async runtime: hashing runs on rayon's thread pool, and
//! references that need the network are resolved by a [`ReferenceResolver`] supplied by another crate.
//!
//! # Example
//!
//! ```
//! use artifact_core::{Artifact, AddFileOptions, ReferenceOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let weights = dir.path().join("model.pt");
//! std::fs::write(&weights, b"fake weights")?;
//!
//! let mut model = Artifact::new("trained-model", "model")?;
//! model.set_metadata(serde_json::json!({"epochs": 3}))?;
//! model.add_file(&weights, AddFileOptions { name: Some("weights/model.pt".into()), ..Default::default() })?;
//! model.add_reference("foo://bucket/extra.bin", ReferenceOptions { name: Some("extra.bin".into()), ..Default::default() })?;
//!
//! // The artifact digest is the MD5 of "wandb-artifact-manifest-v1\n" + "{path}:{digest}\n" per sorted entry.
//! assert_eq!(model.digest().len(), 32);
//! // What wandb-core would upload as wandb_manifest.json:
//! let uploaded = model.manifest().to_go_json();
//! assert!(uploaded.starts_with(br#"{"version":1,"storagePolicy":"wandb-storage-policy-v1""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Compatibility notes
//!
//! - Validation follows the SDK (spec §3) and reuses its error texts; artifact types are also checked against
//!   the server's type pattern so a type a W&B server would refuse is caught early.
//! - `add_dir` errors on symbolic-link cycles, dangling links, special files and unreadable directories, where
//!   the SDK recurses without end, hangs, or skips files silently.
//! - File digests may come from a [`DigestMemo`]; a memo entry is only trusted when path, size, mtime, ctime,
//!   inode and device all match and the file had settled ([`MEMO_SETTLE_TIME`]) when it was hashed.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod artifact;
mod digest;
mod error;
mod gojson;
mod hashing;
mod manifest;
mod path;
mod pyrepr;
mod reference;
mod validate;
mod verify;
mod walk;

pub use artifact::{AddDirOptions, AddFileOptions, AddReport, Artifact, NewFile, NewFileOptions, parse_metadata_json};
pub use digest::{
    ARTIFACT_DIGEST_HEADER, DIGEST_ALGORITHM_EXTRA_KEY, DigestAlgorithm, EMPTY_MD5_B64, EMPTY_XXH128_B64, Hasher,
    artifact_digest, b64_to_hex, copy_hashing, digest_bytes_b64, digest_reader_b64, hex_to_b64, md5_b64, to_hex,
};
pub use error::{Error, Result};
pub use hashing::{
    DigestMemo, FileStamp, InMemoryDigestMemo, MEMO_SETTLE_TIME, MemoRecord, MemoTable, NoProgress, Progress,
};
pub use manifest::{Manifest, ManifestEntry, STORAGE_POLICY_V1};
pub use path::LogicalPath;
pub use pyrepr::py_repr;
pub use reference::{
    DEFAULT_MAX_OBJECTS, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri, http_reference_entry,
    path_to_file_uri, unchecksummed_file_digest,
};
pub use validate::{
    ArtifactAddress, DEFAULT_PROJECT, MAX_METADATA_KEYS, NAME_MAX_LEN, REGISTRY_PREFIX, is_version_alias,
    validate_alias, validate_artifact_name, validate_artifact_type, validate_entity_name, validate_project_name,
    validate_stored_type, validate_tag, validate_tags, validate_type_form,
};
pub use verify::{VerifyReport, remove_extra_files, verify_dir};
