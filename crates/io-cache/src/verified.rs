//! A cache object's own record that its bytes were verified, so a copy out of the cache need not hash them again.
//!
//! The record is the extended attribute `user.dagster-wandb.verified` of the object: the algorithm, the digest
//! and the stamp the object had when it was verified (size, mtime, inode, device — the digest memo's rules,
//! less the ctime, which writing the attribute itself moves). It is trusted only while the object still has
//! that stamp, and written only when no write can hide behind it:
//! - an object this crate has just written and hashed (still an exclusively locked temporary file) has its
//!   mtime set [`MEMO_SETTLE_TIME`] and a second into the past first, so any later write, even within the same
//!   timestamp tick, lands on a newer mtime;
//! - an object verified by reading it (one the Python SDK wrote, say) is recorded only when its stamp did not
//!   move while it was read and its mtime had settled before the reading began.
//!
//! Where extended attributes are not supported (or not on this platform) nothing is recorded and every copy
//! out of the cache is hashed, as before.

use std::fs::{File, Metadata};
use std::time::{Duration, SystemTime};

use artifact_core::{DigestAlgorithm, FileStamp, MEMO_SETTLE_TIME};

const ATTRIBUTE: &str = "user.dagster-wandb.verified";

/// The record for `digest` on an object with `metadata`.
fn record_for(algorithm: DigestAlgorithm, digest: &str, metadata: &Metadata) -> String {
    let stamp = FileStamp::from_metadata(metadata);
    format!(
        "1 {} {digest} {} {} {} {}",
        algorithm.cache_dir_name(),
        stamp.size,
        stamp.modified_ns,
        stamp.inode,
        stamp.device
    )
}

/// Records a just written and verified object, first setting its mtime back (see the module's docs).
pub(crate) fn mark_written(file: &File, algorithm: DigestAlgorithm, digest: &str) {
    let Some(past) = SystemTime::now().checked_sub(MEMO_SETTLE_TIME + Duration::from_secs(1)) else { return };
    if file.set_modified(past).is_err() {
        return;
    }
    if let Ok(metadata) = file.metadata() {
        write_attribute(file, &record_for(algorithm, digest, &metadata));
    }
}

/// Records an object whose bytes, read from `hashed_from` on, just hashed to `digest`, if `before` (its metadata
/// before the read) is still its stamp and had settled when the read began.
pub(crate) fn mark_read(
    file: &File,
    before: &Metadata,
    hashed_from: SystemTime,
    algorithm: DigestAlgorithm,
    digest: &str,
) {
    let stamp = FileStamp::from_metadata(before);
    let unchanged = file.metadata().is_ok_and(|after| FileStamp::from_metadata(&after) == stamp);
    if unchanged && stamp.is_content_settled(hashed_from) {
        write_attribute(file, &record_for(algorithm, digest, before));
    }
}

/// True when the object carries a record for `digest` that matches its current `metadata`.
pub(crate) fn is_verified(file: &File, metadata: &Metadata, algorithm: DigestAlgorithm, digest: &str) -> bool {
    read_attribute(file).is_some_and(|record| record == record_for(algorithm, digest, metadata))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn write_attribute(file: &File, record: &str) {
    // Best effort: a filesystem without user attributes, or another user's object, only costs hashing.
    let _ = rustix::fs::fsetxattr(file, ATTRIBUTE, record.as_bytes(), rustix::fs::XattrFlags::empty());
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_attribute(file: &File) -> Option<String> {
    let mut buffer = [0u8; 256];
    let length = rustix::fs::fgetxattr(file, ATTRIBUTE, &mut buffer).ok()?;
    String::from_utf8(buffer.get(..length)?.to_vec()).ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn write_attribute(_: &File, _: &str) {}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_attribute(_: &File) -> Option<String> {
    None
}
