//! Materialising an artifact version into a directory, through the content cache, verifying every byte.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use artifact_core::{
    DigestAlgorithm, DigestMemo, FileStamp, LogicalPath, Manifest, ManifestEntry, MemoRecord, MemoTable, NoProgress,
    Progress, SplitUri, copy_hashing, unchecksummed_file_digest,
};
use io_cache::ContentCache;
use rayon::prelude::*;

use wandb_references::ReferenceFetcher;

use crate::error::{Error, Result};

/// Where file bodies come from: the embedded store's object directory, or a W&B server's download URLs.
pub trait ObjectSource: Sync {
    /// Opens the body of the file entry at logical `path`.
    ///
    /// # Errors
    /// [`Error::MissingObject`] when the source does not have it; I/O and transport errors.
    fn open_object(&self, path: &str, entry: &ManifestEntry) -> Result<Box<dyn Read + Send>>;

    /// Puts the bodies of `wanted` (file entries the download needs and `cache` lacks) into `cache` before they
    /// are copied out, as many at once as suits the source; entries it leaves out are opened one by one with
    /// [`ObjectSource::open_object`]. Returns, for each of `wanted`, whether this call fetched it (and so
    /// verified it into the cache); the bytes and files of those are reported to `progress` as they arrive. The
    /// default leaves them all out: a local source gains nothing.
    ///
    /// # Errors
    /// As [`ObjectSource::open_object`], and [`Error::DigestMismatch`] for a body that is not the entry's.
    fn prefetch(
        &self,
        wanted: &[(&str, &ManifestEntry)],
        cache: &ContentCache,
        progress: &dyn Progress,
    ) -> Result<Vec<bool>> {
        let _ = (cache, progress);
        Ok(vec![false; wanted.len()])
    }
}

/// Options of [`download`].
#[derive(Clone, Default)]
pub struct DownloadOptions {
    /// The content cache to read from and fill (entries with `skip_cache` bypass it). `None` disables caching.
    pub cache: Option<ContentCache>,
    /// Remembers digests of files already in the root, so unchanged files are not re-read next time.
    pub memo: Option<Arc<dyn DigestMemo>>,
    /// Skip references whose target is gone instead of failing (the SDK's `allow_missing_references`).
    pub allow_missing_references: bool,
    /// Opens references other than `file://` ones; without it, such an entry is
    /// [`wandb_references::Error::UnsupportedReference`] before anything is written.
    pub references: Option<Arc<dyn ReferenceFetcher>>,
    /// Receives progress.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("cache", &self.cache)
            .field("allow_missing_references", &self.allow_missing_references)
            .field("references", &self.references.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`download`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DownloadReport {
    /// The root the files are in.
    pub root: PathBuf,
    /// Entries materialised (or found already present).
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Entries whose destination already had the right content: nothing was copied.
    pub already_present: usize,
    /// Entries copied from the content cache.
    pub from_cache: usize,
    /// Entries fetched from the backend.
    pub fetched: usize,
    /// Entries copied from referenced locations.
    pub references: usize,
    /// Missing references skipped because `allow_missing_references` was set.
    pub missing_references: usize,
}

#[derive(Clone, Copy)]
enum Outcome {
    /// With the stamp to memoise, when it may be (see [`already_present`]).
    AlreadyPresent(Option<FileStamp>),
    FromCache,
    Fetched,
    Reference,
    MissingReference,
}

struct Planned<'a> {
    path: &'a str,
    entry: &'a ManifestEntry,
    destination: PathBuf,
    /// The stamp of the regular file at the destination before the download, if one is there.
    existing: Option<FileStamp>,
}

/// Downloads every entry of `manifest` into `root`.
///
/// Before anything is written, every manifest path is checked: it must be canonical and relative (no absolute
/// paths, `..`, empty components or NUL), no path may be both a file and a directory, and nothing in `root`
/// may be in the way (a file where a directory is needed, a directory where a file goes, or a symbolic link
/// on the way down, which could lead outside `root`). Any violation is an error and nothing is written.
///
/// Then, per entry (in parallel): a destination that already has the right content is left alone; otherwise
/// the body comes from the content cache when present (verified while copied; a corrupt cache object is
/// evicted and fetched again), else from `source` through the cache. Every destination is written to a
/// temporary file in its directory and renamed into place, so no reader sees a partial file.
///
/// # Errors
/// [`Error::UnsafeManifestPath`], [`Error::PathConflict`], [`Error::Reference`] (unsupported, missing or changed
/// references), [`Error::DigestMismatch`], [`Error::MissingObject`], I/O errors.
pub fn download(
    source: &dyn ObjectSource,
    manifest: &Manifest,
    root: &Path,
    options: &DownloadOptions,
) -> Result<DownloadReport> {
    let (planned, dirs) = plan(manifest, root, options.references.as_deref())?;
    io_cache::create_dir_all_racing(root).map_err(|e| Error::io("create directory", root, e))?;
    // Each directory once, parents first (the set is sorted), rather than once per file.
    for dir in &dirs {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", dir, e)),
        }
    }
    // What an interrupted download (kill -9, a crash) left behind goes first: the temporaries beside the
    // destinations and in the cache that no live process holds.
    remove_stale_destination_temporaries(root, &dirs);
    if let Some(Err(e)) = options.cache.as_ref().map(ContentCache::remove_stale_temporaries) {
        tracing::warn!(error = %e, "could not remove stale temporary files from the cache");
    }
    let progress: Arc<dyn Progress> = options.progress.clone().unwrap_or_else(|| Arc::new(NoProgress));
    let total: u64 = planned.iter().map(|p| p.entry.size.unwrap_or(0)).sum();
    progress.begin("downloading", total);
    progress.set_files(planned.len() as u64);

    // Absolute rather than canonical: a concurrent sweep may remove the (still empty) root at any moment.
    let memo_root = std::path::absolute(root).map_err(|e| Error::io("resolve", root, e))?;
    let mut tables: HashMap<DigestAlgorithm, MemoTable> = HashMap::new();
    if let Some(memo) = &options.memo {
        for p in &planned {
            let algorithm = p.entry.digest_algorithm();
            tables.entry(algorithm).or_insert_with(|| memo.load(&memo_root, algorithm));
        }
    }
    let fresh_records: Mutex<Vec<(DigestAlgorithm, String, MemoRecord)>> = Mutex::new(Vec::new());
    let started = SystemTime::now();

    // First what is already in place, then the bodies the source should fetch ahead (all at once, for a
    // server), then the copies.
    let present: Vec<Option<Outcome>> =
        planned.par_iter().map(|p| present_outcome(p, &tables, started)).collect::<Result<Vec<_>>>()?;
    // Per planned entry: whether the source just fetched (and verified) its body into the cache.
    let mut prefetched = vec![false; planned.len()];
    if let Some(cache) = &options.cache {
        let wanted: Vec<usize> = (0..planned.len())
            .filter(|&i| present[i].is_none() && planned[i].entry.reference.is_none() && !planned[i].entry.skip_cache)
            .collect();
        if !wanted.is_empty() {
            let entries: Vec<(&str, &ManifestEntry)> =
                wanted.iter().map(|&i| (planned[i].path, planned[i].entry)).collect();
            let fetched = source.prefetch(&entries, cache, progress.as_ref())?;
            for (&i, fetched) in wanted.iter().zip(fetched) {
                prefetched[i] = fetched;
            }
        }
    }
    // After a failure no further entry is started; what was not written is named before the error returns.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Option<Result<Outcome>>> = planned
        .par_iter()
        .zip(present)
        .zip(prefetched)
        .map(|((p, present), prefetched)| {
            if present.is_none() && stop.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let result = put_in_place(source, p, present, prefetched, options, &progress, &fresh_records);
            if result.is_err() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Some(result)
        })
        .collect();
    let unwritten: Vec<&str> =
        planned.iter().zip(&results).filter(|(_, r)| !matches!(r, Some(Ok(_)))).map(|(p, _)| p.path).collect();
    if !unwritten.is_empty() {
        const NAMED: usize = 20;
        let more = unwritten.len().saturating_sub(NAMED);
        tracing::warn!(
            root = %root.display(),
            "download incomplete: {} of {} files were not written: {}{}",
            unwritten.len(),
            planned.len(),
            unwritten[..unwritten.len().min(NAMED)].join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
    let mut outcomes = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Some(Ok(outcome)) => outcomes.push(outcome),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    progress.finish();

    if let Some(memo) = &options.memo {
        for (algorithm, key, record) in fresh_records.into_inner().unwrap_or_else(|e| e.into_inner()) {
            tables.entry(algorithm).or_default().records.insert(key, record);
        }
        for (algorithm, table) in &tables {
            memo.save(&memo_root, *algorithm, table);
        }
    }

    let mut report =
        DownloadReport { root: root.to_path_buf(), files: planned.len(), bytes: total, ..Default::default() };
    for outcome in outcomes {
        match outcome {
            Outcome::AlreadyPresent(_) => report.already_present += 1,
            Outcome::FromCache => report.from_cache += 1,
            Outcome::Fetched => report.fetched += 1,
            Outcome::Reference => report.references += 1,
            Outcome::MissingReference => report.missing_references += 1,
        }
    }
    Ok(report)
}

/// One entry: left alone when `present`, else put in place; its progress (unless `prefetched` reported it) and
/// memo record noted.
fn put_in_place(
    source: &dyn ObjectSource,
    p: &Planned<'_>,
    present: Option<Outcome>,
    prefetched: bool,
    options: &DownloadOptions,
    progress: &Arc<dyn Progress>,
    fresh_records: &Mutex<Vec<(DigestAlgorithm, String, MemoRecord)>>,
) -> Result<Outcome> {
    if present.is_none() && p.existing.is_some() {
        tracing::warn!(path = %p.destination.display(), "changed locally; replacing it with the artifact's version");
    }
    let arrival = Arrival { progress: progress.as_ref(), bytes: std::cell::Cell::new(0) };
    let outcome = match present {
        Some(outcome) => outcome,
        None => match materialise(source, p, options, prefetched, &arrival)? {
            Outcome::FromCache if prefetched => Outcome::Fetched,
            outcome => outcome,
        },
    };
    if !prefetched {
        progress.advance(p.entry.size.unwrap_or(0).saturating_sub(arrival.bytes.get()));
        progress.file_done();
    }
    if options.memo.is_some() {
        match outcome {
            Outcome::AlreadyPresent(Some(stamp)) => push_record(p, fresh_records, stamp),
            Outcome::FromCache | Outcome::Fetched => remember_copy(p, fresh_records)?,
            _ => {}
        }
    }
    Ok(outcome)
}

/// Checks every path and the filesystem under `root` before anything is written. Returns the entries with
/// what is at their destinations, and the directories to create, parents first.
fn plan<'a>(
    manifest: &'a Manifest,
    root: &Path,
    fetcher: Option<&dyn ReferenceFetcher>,
) -> Result<(Vec<Planned<'a>>, Vec<PathBuf>)> {
    let mut files: HashSet<&str> = HashSet::new();
    let mut dirs: BTreeSet<&str> = BTreeSet::new();
    let mut planned = Vec::with_capacity(manifest.len());
    for (path, entry) in manifest.entries() {
        let logical = LogicalPath::from_manifest_key(path).map_err(|_| Error::UnsafeManifestPath {
            path: path.to_owned(),
            reason: "manifest paths must be relative, without '..', '.', empty components or NUL".to_owned(),
        })?;
        if let Some(reference) = &entry.reference {
            let fetchable = SplitUri::parse(reference)
                .is_some_and(|u| u.scheme.eq_ignore_ascii_case("file") || fetcher.is_some_and(|f| f.fetches(&u)));
            if !fetchable {
                return Err(wandb_references::Error::UnsupportedReference {
                    path: path.to_owned(),
                    reference: reference.clone(),
                }
                .into());
            }
        }
        let mut offset = 0;
        while let Some(i) = path[offset..].find('/') {
            dirs.insert(&path[..offset + i]);
            offset += i + 1;
        }
        files.insert(path);
        let mut destination = root.to_path_buf();
        destination.extend(logical.components());
        planned.push(Planned { path, entry, destination, existing: None });
    }
    if let Some(clash) = dirs.iter().find(|d| files.contains(*d)) {
        return Err(Error::UnsafeManifestPath {
            path: (*clash).to_owned(),
            reason: "it is both a file and a directory in the manifest".to_owned(),
        });
    }
    // Nothing on disk may redirect or block the writes.
    let mut dir_paths = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        let mut path = root.to_path_buf();
        path.extend(dir.split('/'));
        dir_paths.push(path.clone());
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::PathConflict {
                    path,
                    reason: "it is a symbolic link, which could lead outside the root".to_owned(),
                });
            }
            Ok(m) if !m.is_dir() => {
                return Err(Error::PathConflict {
                    path,
                    reason: "a file is where the artifact has a directory".to_owned(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read metadata of", path, e)),
        }
    }
    planned.par_iter_mut().try_for_each(|p| {
        match fs::symlink_metadata(&p.destination) {
            Ok(m) if m.is_dir() => {
                return Err(Error::PathConflict {
                    path: p.destination.clone(),
                    reason: "a directory is where the artifact has a file".to_owned(),
                });
            }
            Ok(m) if m.is_file() => p.existing = Some(FileStamp::from_metadata(&m)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read metadata of", &p.destination, e)),
        }
        Ok(())
    })?;
    Ok((planned, dir_paths))
}

/// `Some` when the destination already has the entry's content.
fn present_outcome(
    p: &Planned<'_>,
    tables: &HashMap<DigestAlgorithm, MemoTable>,
    started: SystemTime,
) -> Result<Option<Outcome>> {
    let object_reference = p.entry.reference.as_deref().is_some_and(|r| !is_file_uri(r));
    // An object reference's digest is an ETag, which the destination's bytes cannot be checked against: only
    // the memo can tell it is already there.
    let present = already_present(p, tables.get(&p.entry.digest_algorithm()), started, !object_reference)?;
    Ok(present.map(Outcome::AlreadyPresent))
}

/// Puts an entry whose destination lacks it in place. `just_verified`: this download put the body in the cache
/// and verified it on the way, so it is copied without hashing it again.
fn materialise(
    source: &dyn ObjectSource,
    p: &Planned<'_>,
    options: &DownloadOptions,
    just_verified: bool,
    arrival: &Arrival<'_>,
) -> Result<Outcome> {
    let entry = p.entry;
    let algorithm = entry.digest_algorithm();
    let object_reference = entry.reference.as_deref().filter(|r| !is_file_uri(r));
    if let Some(reference) = object_reference {
        return download_object_reference(p, reference, options);
    }
    if let Some(reference) = &entry.reference {
        return download_file_reference(p, reference, options.allow_missing_references);
    }
    let size = entry.size.unwrap_or(0);
    match options.cache.as_ref().filter(|_| !entry.skip_cache) {
        Some(cache) => {
            // A hit is read under a shared lock, so no cleanup removes it mid-copy; one removed between the
            // lookup and the open is simply a miss.
            if let Some(mut cached) = cache.open_object(&entry.digest, algorithm, size)? {
                if just_verified || cached.is_verified(algorithm, &entry.digest) {
                    write_cached(p, &mut cached)?;
                    return Ok(Outcome::FromCache);
                }
                let hashed_from = SystemTime::now();
                match write_verified(p, &mut cached, algorithm) {
                    Ok(()) => {
                        cached.record_verified(algorithm, &entry.digest, hashed_from);
                        return Ok(Outcome::FromCache);
                    }
                    Err(Error::DigestMismatch { .. }) => {
                        tracing::warn!(path = p.path, cache = %cached.path().display(), "evicting a corrupt cache object");
                        drop(cached);
                        cache.remove(&entry.digest, algorithm)?;
                    }
                    Err(e) => return Err(e),
                }
            }
            let body = at_most_entry_size(p, arrival.count(source.open_object(p.path, entry)?));
            write_fetched(p, cache, algorithm, body)?;
            Ok(Outcome::Fetched)
        }
        None => {
            write_verified(p, at_most_entry_size(p, arrival.count(source.open_object(p.path, entry)?)), algorithm)?;
            Ok(Outcome::Fetched)
        }
    }
}

/// `Some` when the destination is a regular file (not a link) with the entry's size and digest, carrying the
/// stamp to memoise when there is one that may be.
///
/// A file served in place has its access time set, which the cache-duration sweeper goes by. Setting it also
/// moves the ctime that the memo compares, so the stamp memoised is the one read back right after, and only
/// when the contents had settled and nothing but the ctime moved since the stamp the match was made on (read
/// again just before the access time is set). A write in between would have moved the mtime.
fn already_present(
    p: &Planned<'_>,
    table: Option<&MemoTable>,
    started: SystemTime,
    rehash: bool,
) -> Result<Option<Option<FileStamp>>> {
    let Some(stamp) = p.existing else { return Ok(None) };
    if p.entry.size.is_some_and(|size| size != stamp.size) {
        return Ok(None);
    }
    let mut file = match File::open(&p.destination) {
        Ok(f) => f,
        // Removed by a concurrent sweep since the lookup: simply not present.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &p.destination, e)),
    };
    let matches = table.and_then(|t| t.lookup(p.path, &stamp)) == Some(p.entry.digest.as_str())
        || rehash && {
            let (digest, _) = artifact_core::digest_reader_b64(p.entry.digest_algorithm(), &mut file)
                .map_err(|e| Error::io("read", &p.destination, e))?;
            digest == p.entry.digest
        };
    if !matches {
        return Ok(None);
    }
    let stamp_of = |file: &File| file.metadata().ok().map(|m| FileStamp::from_metadata(&m));
    let unchanged = stamp_of(&file) == Some(stamp);
    // Best effort: a file owned by someone else keeps its access time.
    let _ = file.set_times(std::fs::FileTimes::new().set_accessed(SystemTime::now()));
    let refreshed = stamp_of(&file).filter(|after| {
        unchanged && stamp.is_content_settled(started) && FileStamp { changed_ns: stamp.changed_ns, ..*after } == stamp
    });
    Ok(Some(refreshed))
}

fn file_kind(metadata: &fs::Metadata) -> &'static str {
    let kind = metadata.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() { "a directory" } else { "not a regular file" }
}

fn is_file_uri(reference: &str) -> bool {
    SplitUri::parse(reference).is_some_and(|u| u.scheme.eq_ignore_ascii_case("file"))
}

/// An object-store (or http) reference: from the `obj/etag/…` cache when it is there, else fetched through
/// the cache, as the SDK does. An entry added without a checksum is copied as the object is now, unverified.
fn download_object_reference(p: &Planned<'_>, reference: &str, options: &DownloadOptions) -> Result<Outcome> {
    let entry = p.entry;
    let fetcher = options.references.as_deref().expect("checked in plan");
    let open = || match fetcher.open_reference(p.path, entry) {
        Err(wandb_references::Error::ReferenceMissing { .. }) if options.allow_missing_references => {
            tracing::warn!(path = p.path, reference, "skipping a missing reference");
            Ok(None)
        }
        other => other.map(Some),
    };
    let cache = options.cache.as_ref().filter(|_| !entry.skip_cache);
    match (entry.digest != reference, entry.size, cache) {
        (true, Some(size), Some(cache)) => {
            if let Some(mut cached) = cache.open_etag(reference, &entry.digest, size)? {
                write_cached(p, &mut cached)?;
                return Ok(Outcome::FromCache);
            }
            let Some(mut body) = open()? else { return Ok(Outcome::MissingReference) };
            let mut cached = cache.insert_etag_and_open(reference, &entry.digest, size, &mut body)?;
            write_cached(p, &mut cached)?;
        }
        (checked, size, _) => {
            if !checked {
                tracing::warn!(
                    path = p.path,
                    reference,
                    "reference was added without a checksum; copying it unverified"
                );
            }
            let Some(body) = open()? else { return Ok(Outcome::MissingReference) };
            write_unverified(p, ExactSize { inner: body, expected: size, read: 0, what: reference })?;
        }
    }
    Ok(Outcome::Reference)
}

/// The bytes of one body reported to the download's progress as they arrive, so a big file shows before it is
/// done; the rest of the entry's size is reported once it is in place.
struct Arrival<'a> {
    progress: &'a dyn Progress,
    bytes: std::cell::Cell<u64>,
}

impl Arrival<'_> {
    fn count<R: Read>(&self, inner: R) -> Arriving<'_, R> {
        Arriving { inner, arrival: self }
    }
}

struct Arriving<'a, R> {
    inner: R,
    arrival: &'a Arrival<'a>,
}

impl<R: Read> Read for Arriving<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.arrival.bytes.set(self.arrival.bytes.get() + n as u64);
        self.arrival.progress.advance(n as u64);
        Ok(n)
    }
}

/// `body`, failing as soon as it runs past the entry's size (or ends short of it): a server cannot make a
/// download write more than the manifest says.
fn at_most_entry_size<'a, R: Read>(p: &Planned<'a>, body: R) -> ExactSize<'a, R> {
    ExactSize { inner: body, expected: p.entry.size, read: 0, what: p.path }
}

/// Fails the read at the end of a body that is not `expected` bytes long (when that is known).
struct ExactSize<'a, R> {
    inner: R,
    expected: Option<u64>,
    read: u64,
    what: &'a str,
}

impl<R: Read> Read for ExactSize<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        match self.expected {
            Some(expected) if self.read > expected => Err(io::Error::other(format!(
                "{} is longer than the {expected} bytes its manifest entry has; stopped reading",
                self.what
            ))),
            Some(expected) if n == 0 && self.read != expected => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ended after {} of the {expected} bytes its manifest entry has", self.what, self.read),
            )),
            _ => Ok(n),
        }
    }
}

fn download_file_reference(p: &Planned<'_>, reference: &str, allow_missing: bool) -> Result<Outcome> {
    let split = SplitUri::parse(reference).expect("checked in plan");
    let target = PathBuf::from(split.path);
    // Opening a FIFO blocks and a device may never end: only regular files are read.
    if let Ok(metadata) = fs::metadata(&target)
        && !metadata.is_file()
    {
        return Err(wandb_references::Error::NotARegularFile {
            path: p.path.to_owned(),
            reference: reference.to_owned(),
            kind: file_kind(&metadata),
        }
        .into());
    }
    let file = match File::open(&target) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && allow_missing => {
            tracing::warn!(path = p.path, reference, "skipping a missing reference");
            return Ok(Outcome::MissingReference);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(wandb_references::Error::ReferenceMissing {
                path: p.path.to_owned(),
                reference: reference.to_owned(),
            }
            .into());
        }
        Err(e) => return Err(Error::io("open", &target, e)),
    };
    // What was opened, not what the path named a moment before, must be a regular file.
    let opened = file.metadata().map_err(|e| Error::io("inspect", &target, e))?;
    if !opened.is_file() {
        return Err(wandb_references::Error::NotARegularFile {
            path: p.path.to_owned(),
            reference: reference.to_owned(),
            kind: file_kind(&opened),
        }
        .into());
    }
    // An entry added with checksum=false carries the hash of its URI, not of its content (the SDK then fails
    // with "Digest mismatch"); such files are copied unverified, with a warning.
    let unverifiable =
        fs::canonicalize(&target).is_ok_and(|resolved| unchecksummed_file_digest(&resolved) == p.entry.digest);
    if unverifiable {
        tracing::warn!(path = p.path, reference, "reference was added without a checksum; copying it unverified");
        write_unverified(p, at_most_entry_size(p, file))?;
    } else {
        // file:// references are always MD5.
        write_verified(p, at_most_entry_size(p, file), DigestAlgorithm::Md5)?;
    }
    Ok(Outcome::Reference)
}

/// Copies `body` into the destination, failing on bytes that do not hash to the entry's digest.
fn write_verified(p: &Planned<'_>, mut body: impl Read, algorithm: DigestAlgorithm) -> Result<()> {
    write_destination(p, |file, _| {
        let (actual, _) =
            copy_hashing(algorithm, &mut body, file).map_err(|e| Error::io("copy the body of", &p.destination, e))?;
        if actual != p.entry.digest {
            return Err(Error::DigestMismatch { path: p.path.to_owned(), expected: p.entry.digest.clone(), actual });
        }
        Ok(())
    })
}

/// Copies `body` into the destination as it is (its bytes are checked elsewhere, or cannot be).
fn write_unverified(p: &Planned<'_>, mut body: impl Read) -> Result<()> {
    write_destination(p, |file, tmp| io::copy(&mut body, file).map(drop).map_err(|e| Error::io("write", tmp, e)))
}

/// Copies a cache object known to hold the entry's bytes into the destination, in the kernel where it can, with
/// the object's mtime, as the SDK's `shutil.copy2` does: the copy has settled when the object has, so the
/// digest memo can vouch for it from the next download on.
fn write_cached(p: &Planned<'_>, cached: &mut io_cache::CachedObject) -> Result<()> {
    write_destination(p, |file, _| {
        cached.copy_to(file).map_err(|e| Error::io("copy", cached.path(), e))?;
        if let Some(modified) = cached.modified() {
            // Best effort: without it the next download hashes the file instead.
            let _ = file.set_modified(modified);
        }
        Ok(())
    })
}

/// Fetches `body` into the cache and the destination in one pass: each chunk read goes to both, the cache's
/// writer hashing it, so the destination needs no second copy out of the cache. Neither appears unless the bytes
/// hash to the entry's digest; the destination gets the cache object's mtime, as [`write_cached`] gives it.
fn write_fetched(p: &Planned<'_>, cache: &ContentCache, algorithm: DigestAlgorithm, body: impl Read) -> Result<()> {
    write_destination(p, |file, tmp| {
        let mut tee = Tee { body, copy: &mut *file, failed: None };
        let inserted = cache.insert_and_open(&p.entry.digest, algorithm, &mut tee);
        if let Some(e) = tee.failed.take() {
            return Err(Error::io("write", tmp, e));
        }
        let cached = inserted.map_err(|e| match e {
            io_cache::Error::DigestMismatch { expected, actual, .. } => {
                Error::DigestMismatch { path: p.path.to_owned(), expected, actual }
            }
            e => e.into(),
        })?;
        if let Some(modified) = cached.modified() {
            // Best effort: without it the next download hashes the file instead.
            let _ = file.set_modified(modified);
        }
        Ok(())
    })
}

/// A reader that also writes what it reads to `copy`; a failed write ends the reading (kept in `failed`, so
/// the error names the destination rather than the cache).
struct Tee<'a, R> {
    body: R,
    copy: &'a mut File,
    failed: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.body.read(buf)?;
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            let kind = e.kind();
            self.failed = Some(e);
            return Err(io::Error::new(kind, "the destination could not be written"));
        }
        Ok(n)
    }
}

/// Lets `fill` write a temporary file beside the destination, then renames it into place; on failure the
/// temporary file is removed.
fn write_destination(p: &Planned<'_>, fill: impl FnOnce(&mut File, &Path) -> Result<()>) -> Result<()> {
    let parent = p.destination.parent().expect("destinations are inside the root");
    let file_name = p.destination.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (mut file, unfinished) = create_locked_temp(parent, &file_name)?;
    let tmp = unfinished.path();
    let result = fill(&mut file, tmp).and_then(|()| rename_recreating_parent(tmp, &p.destination));
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// What names a temporary file beside a destination: `.<name>.dwtmp-<random>`.
const DESTINATION_TEMP_MARK: &str = ".dwtmp-";

/// Removes `.<name>.dwtmp-*` files no live process holds locked from `root` and `dirs` (one listing each).
fn remove_stale_destination_temporaries(root: &Path, dirs: &[PathBuf]) {
    for dir in std::iter::once(root).chain(dirs.iter().map(PathBuf::as_path)) {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let is_temporary = name.to_str().is_some_and(|n| n.starts_with('.') && n.contains(DESTINATION_TEMP_MARK));
            if is_temporary && entry.file_type().is_ok_and(|t| t.is_file()) {
                match io_cache::remove_unless_locked(&entry.path()) {
                    Ok(true) => tracing::info!(path = %entry.path().display(), "removed a stale temporary file"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "could not remove a stale temporary file"),
                }
            }
        }
    }
}

/// A temporary file beside the destination, exclusively locked while it is written so a concurrent sweep or
/// cleanup leaves it alone. Its directory was made before the copies began; it is made again only if a sweep
/// removed it meanwhile. Registered as unfinished (for an interrupted command to remove) until the guard drops.
fn create_locked_temp(parent: &Path, file_name: &str) -> Result<(File, io_cache::Unfinished)> {
    let mut attempts = 0;
    loop {
        let tmp = parent.join(format!(".{file_name}{DESTINATION_TEMP_MARK}{}", random_suffix()));
        match io_cache::create_new_locked(&tmp) {
            Ok(Some(file)) => return Ok((file, io_cache::Unfinished::register(tmp))),
            // Swept away before we held it: try again under a new name.
            Ok(None) => attempts += 1,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 4 => {
                attempts += 1;
                io_cache::create_dir_all_racing(parent).map_err(|e| Error::io("create directory", parent, e))?;
            }
            Err(e) => return Err(Error::io("create", tmp, e)),
        }
        if attempts > 4 {
            return Err(Error::io("create", tmp, io::Error::other("a concurrent sweep keeps removing it")));
        }
    }
}

fn rename_recreating_parent(tmp: &Path, destination: &Path) -> Result<()> {
    let mut attempts = 0;
    loop {
        match fs::rename(tmp, destination) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 && tmp.exists() => {
                attempts += 1;
                if let Some(parent) = destination.parent() {
                    io_cache::create_dir_all_racing(parent).map_err(|e| Error::io("create directory", parent, e))?;
                }
            }
            Err(e) => return Err(Error::io("move into place", destination, e)),
        }
    }
}

/// Queues a memo record for a destination just copied from the cache with the object's mtime, when that mtime
/// had settled: a later write lands on a newer one. (Its ctime, moved by the rename, is recorded as it is now.)
fn remember_copy(p: &Planned<'_>, records: &Mutex<Vec<(DigestAlgorithm, String, MemoRecord)>>) -> Result<()> {
    let metadata = match fs::symlink_metadata(&p.destination) {
        Ok(m) => m,
        // A concurrent sweep removed it already; there is nothing to remember.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read metadata of", &p.destination, e)),
    };
    let stamp = FileStamp::from_metadata(&metadata);
    if stamp.is_content_settled(SystemTime::now()) {
        push_record(p, records, stamp);
    }
    Ok(())
}

fn push_record(p: &Planned<'_>, records: &Mutex<Vec<(DigestAlgorithm, String, MemoRecord)>>, stamp: FileStamp) {
    let record = MemoRecord { stamp, digest: p.entry.digest.clone() };
    records.lock().unwrap_or_else(|e| e.into_inner()).push((p.entry.digest_algorithm(), p.path.to_owned(), record));
}

fn random_suffix() -> String {
    std::iter::repeat_with(fastrand::alphanumeric).take(10).collect()
}
