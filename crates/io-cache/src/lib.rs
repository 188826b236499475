//! The local W&B content cache, laid out exactly as the Python SDK lays it out, so both share one cache.
//!
//! ```text
//! <cache root> = $WANDB_CACHE_DIR, or ~/.cache/wandb (Linux), ~/Library/Caches/wandb (macOS),
//!                %LOCALAPPDATA%\wandb\wandb\Cache (Windows)
//! <cache root>/artifacts/obj/md5/<hex[0:2]>/<hex[2:]>      files by MD5 (hex of the base64 digest)
//! <cache root>/artifacts/obj/xxh128/<hex[0:2]>/<hex[2:]>   files of XXH128 entries
//! <cache root>/artifacts/obj/etag/<h[0:2]>/<h[2:]>         references, h = sha256(sha256(url) + sha256(etag))
//! <cache root>/artifacts/tmp/                              in-flight writes, renamed into place when complete
//! <cache root>/artifacts/digest-memo/                      this crate's digest memo (the SDK ignores it)
//! ```
//!
//! [`ContentCache`] (built on [`ObjectDir`], which the embedded store uses too) looks objects up (a hit is a regular file of the expected size, as in the SDK) and inserts
//! them atomically: bytes go to a temporary file under `tmp/`, are hashed on the way, and are renamed into
//! place only when digest and size match — a reader never sees a partial object. [`FileDigestMemo`] persists
//! `artifact_core::DigestMemo` tables under the cache so re-adding an unchanged tree costs no reads.
//!
//! # Example
//!
//! ```
//! use artifact_core::{DigestAlgorithm, md5_b64};
//! use io_cache::ContentCache;
//!
//! let root = tempfile::tempdir()?;
//! let cache = ContentCache::new(root.path());
//! let digest = md5_b64(b"hello");
//! assert!(cache.lookup(&digest, DigestAlgorithm::Md5, 5)?.is_none());
//! let path = cache.insert_verified(&digest, DigestAlgorithm::Md5, &mut &b"hello"[..])?;
//! assert_eq!(cache.lookup(&digest, DigestAlgorithm::Md5, 5)?, Some(path));
//! // Bytes that do not hash to the digest are refused and leave nothing behind.
//! assert!(cache.insert_verified(&md5_b64(b"other"), DigestAlgorithm::Md5, &mut &b"hello"[..]).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod cleanup;
mod error;
mod memo;
mod sweep;
mod unfinished;
mod verified;

pub use cache::{CachedObject, ContentCache, ObjectDir, create_dir_all_racing, create_new_locked, default_cache_root};
pub use cleanup::{CleanupOptions, CleanupReport, parse_size, remove_unless_locked};
pub use error::{Error, Result};
pub use memo::FileDigestMemo;
pub use sweep::{DEFAULT_CACHE_DURATION_MINUTES, SweepOptions, SweepReport, storage_root, sweep};
pub use unfinished::{Unfinished, remove_unfinished};
