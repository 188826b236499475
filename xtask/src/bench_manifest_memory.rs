//! `cargo xtask bench manifest-memory`: the bytes a reference manifest holds per entry, counted exactly.
//!
//! A counting allocator (xtask's global allocator; it only adds two relaxed atomics per call) measures, for
//! N entries shaped as the S3 resolver makes them (a path under 1,000 directories, a 32-character ETag as the
//! digest and in `extra.etag`, the `s3://` reference, the size), the bytes live after `add_reference_with`, the
//! peak while adding them, the peak while writing the Go-dialect manifest that is uploaded, and the bytes live
//! after parsing that manifest back. Counts are exact and repeatable, unlike a process's RSS; they leave out the
//! allocator's own overhead. `--check` fails when the peak of adding and writing exceeds 1 KiB per entry.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use anyhow::{Context, Result, bail, ensure};
use artifact_core::{
    Artifact, LogicalPath, Manifest, ManifestEntry, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri,
};
use serde_json::{Map, Value};

use crate::say;

/// Bytes currently allocated, and the most seen since the last [`reset_peak`].
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting.
pub(crate) struct Counting;

#[allow(unsafe_code, reason = "a GlobalAlloc is unsafe to implement; every call forwards to System unchanged")]
// SAFETY: each method forwards its arguments to `System` as received, and returns what `System` returns.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `System` with this layout (every allocation goes through this type).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block added before the old one goes: the moment both exist.
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's valid size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

fn reset_peak() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

/// Hands out `count` entries shaped as the S3 resolver's for a prefix in a bucket without versioning.
struct Synthetic {
    count: usize,
}

impl ReferenceResolver for Synthetic {
    fn handles(&self, _uri: &SplitUri<'_>) -> bool {
        true
    }

    fn resolve(&self, _uri: &str, _options: &ReferenceOptions) -> artifact_core::Result<Vec<ResolvedReference>> {
        let mut resolved = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let key = format!("dir{:04}/object{i:08}.bin", i % 1_000);
            let etag = format!("{:032x}", (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
            let mut extra = Map::with_capacity(1);
            extra.insert("etag".to_owned(), Value::String(etag.clone()));
            let entry = ManifestEntry {
                digest: etag,
                reference: Some(format!("s3://bench/prefix/{key}")),
                size: Some(4096),
                extra,
                ..Default::default()
            };
            resolved.push(ResolvedReference { path: LogicalPath::new(&key)?, entry });
        }
        Ok(resolved)
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut entries: usize = 1_000_000;
    let mut check = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--entries" => {
                entries =
                    rest.next().context("--entries needs a number")?.parse().context("--entries needs a number")?
            }
            other => {
                bail!("unknown option {other:?}; usage: cargo xtask bench manifest-memory [--check] [--entries N]")
            }
        }
    }
    ensure!(entries > 0, "--entries must be at least 1");
    let per_entry = |bytes: usize| bytes as f64 / entries as f64;

    let base = reset_peak();
    let mut artifact = Artifact::new("bench", "dataset")?;
    let paths = artifact.add_reference_with(
        "s3://bench/prefix/",
        ReferenceOptions { max_objects: Some(entries as u64), ..Default::default() },
        Some(&Synthetic { count: entries }),
    )?;
    ensure!(paths.len() == entries, "{} entries added of {entries}", paths.len());
    drop(paths);
    let held = LIVE.load(Relaxed) - base;
    let go = artifact.manifest().to_go_json();
    let adding_and_writing = PEAK.load(Relaxed) - base;
    drop(artifact);

    let before_parse = reset_peak();
    let parsed = Manifest::from_json(&go)?;
    let parsed_held = LIVE.load(Relaxed) - before_parse;
    let parsing = PEAK.load(Relaxed) - before_parse;
    ensure!(parsed.len() == entries, "the parsed manifest has {} entries", parsed.len());

    say(&format!(
        "manifest-memory: {entries} s3:// entries: {:.0} B/entry held after adding, peak {:.0} B/entry adding and \
         writing the manifest ({:.0} B/entry of JSON); parsed back: {:.0} B/entry held, peak {:.0} B/entry \
         with the JSON; a million entries hold {:.2} GiB",
        per_entry(held),
        per_entry(adding_and_writing),
        per_entry(go.len()),
        per_entry(parsed_held),
        per_entry(parsing + go.len()),
        per_entry(held) * 1e6 / f64::from(1 << 30),
    ));
    if check && per_entry(adding_and_writing) > 1024.0 {
        bail!("adding and writing peaked at {:.0} B/entry, over the 1 KiB target", per_entry(adding_and_writing));
    }
    Ok(())
}
