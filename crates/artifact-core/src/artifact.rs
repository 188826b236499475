//! The artifact draft: a named, typed set of files and references being assembled before it is logged.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::digest::{DIGEST_ALGORITHM_EXTRA_KEY, DigestAlgorithm, Hasher};
use crate::error::{Error, Result};
use crate::hashing::{DigestMemo, FileStamp, HashJob, Hashed, MemoTable, NoProgress, Progress, hash_files};
use crate::manifest::{Manifest, ManifestEntry};
use crate::path::LogicalPath;
use crate::reference::{
    Builtin, ReferenceOptions, ReferenceResolver, ResolvedReference, SplitUri, classify, tracking_entry,
    unchecksummed_file_digest,
};
use crate::validate::{MAX_METADATA_KEYS, validate_artifact_name, validate_artifact_type};
use crate::walk::{DirLinks, walk_files};

/// Options of [`Artifact::add_file`].
#[derive(Clone, Debug, Default)]
pub struct AddFileOptions {
    /// Logical path in the artifact; defaults to the file's name.
    pub name: Option<String>,
    /// Keep the file out of the local content cache on upload and download.
    pub skip_cache: bool,
    /// Replace an existing entry at the same path even if its content differs.
    pub overwrite: bool,
}

/// Options of [`Artifact::add_dir`].
#[derive(Clone, Debug, Default)]
pub struct AddDirOptions {
    /// Prefix for the logical paths of the directory's files.
    pub name: Option<String>,
    /// Keep the files out of the local content cache on upload and download.
    pub skip_cache: bool,
    /// Replace existing entries at the same paths even if their content differs (the SDK's `merge`).
    pub overwrite: bool,
}

/// Options of [`Artifact::new_file`].
#[derive(Clone, Debug, Default)]
pub struct NewFileOptions {
    /// Allow replacing an existing entry (the SDK's mode `"w"`); by default the name must be new (mode `"x"`).
    pub overwrite: bool,
}

/// What an `add_*` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddReport {
    /// Entries added or replaced.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Files whose contents were read and hashed.
    pub hashed: usize,
    /// Files whose digest came from the digest memo without reading them.
    pub memo_hits: usize,
}

/// A draft artifact: name, type, description, metadata and a manifest of files and references.
///
/// Files are hashed where they are — never copied to a staging area — in parallel across files and streamed
/// through a fixed buffer. With a [`DigestMemo`] attached, files whose path, size, mtime, ctime, inode and
/// device are unchanged are not read again. The manifest and the digest are exactly those the W&B Python SDK
/// computes for the same inputs.
///
/// ```
/// use artifact_core::{Artifact, AddDirOptions, NewFileOptions};
/// use std::io::Write;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("train.csv"), "x,y\n1,2\n")?;
///
/// let mut artifact = Artifact::new("mnist-raw", "dataset")?;
/// artifact.add_dir(dir.path(), AddDirOptions::default())?;
/// let mut notes = artifact.new_file("notes/info.txt", NewFileOptions::default())?;
/// writeln!(notes, "written via new_file")?;
/// notes.close()?;
///
/// assert_eq!(artifact.manifest().len(), 2);
/// assert_eq!(artifact.manifest().get("notes/info.txt").unwrap().digest, "ECBjC+ELZENlNrHjSpgVcA==");
/// println!("{}", artifact.digest());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Artifact {
    name: String,
    artifact_type: String,
    description: Option<String>,
    metadata: Map<String, Value>,
    digest_algorithm: DigestAlgorithm,
    manifest: Manifest,
    memo: Option<Arc<dyn DigestMemo>>,
    /// Memo tables touched by single-file adds, saved by [`Artifact::flush_digest_memo`] or on drop.
    pending_memo: HashMap<(PathBuf, DigestAlgorithm), MemoTable>,
    progress: Arc<dyn Progress>,
    staging_parent: Option<PathBuf>,
    staging: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("name", &self.name)
            .field("type", &self.artifact_type)
            .field("digest_algorithm", &self.digest_algorithm)
            .field("entries", &self.manifest.len())
            .finish_non_exhaustive()
    }
}

impl Artifact {
    /// Starts a draft, validating the name and type (spec §3).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NameTooLong`], [`Error::ReservedType`], [`Error::InvalidType`].
    pub fn new(name: &str, artifact_type: &str) -> Result<Self> {
        validate_artifact_name(name)?;
        validate_artifact_type(artifact_type, name)?;
        Ok(Artifact {
            name: name.to_owned(),
            artifact_type: artifact_type.to_owned(),
            description: None,
            metadata: Map::new(),
            digest_algorithm: DigestAlgorithm::Md5,
            manifest: Manifest::new(),
            memo: None,
            pending_memo: HashMap::new(),
            progress: Arc::new(NoProgress),
            staging_parent: None,
            staging: None,
        })
    }

    /// A new draft from a logged version (`artifact.new_draft()`): its name, type, description, metadata and
    /// entries. The entries have no local files: their bodies are the backend's, so logging the draft sends only
    /// what is added to it, and the rest of the manifest — digests, sizes, birth artifact ids — is reused.
    /// The digest algorithm is the entries' (XXH128 when every file entry has it).
    ///
    /// ```
    /// use artifact_core::{Artifact, Manifest};
    /// let logged = Manifest::from_json(br#"{"version": 1, "storagePolicy": "wandb-storage-policy-v1",
    ///     "storagePolicyConfig": {}, "contents": {"a.txt": {"digest": "DMF1ucDxtqgxw5niaXcmYQ==", "size": 1}}}"#)?;
    /// let mut draft = Artifact::from_logged("ds", "dataset", None, Default::default(), logged.clone())?;
    /// assert_eq!(draft.digest(), logged.digest());
    /// draft.remove("a.txt")?;
    /// assert!(draft.manifest().is_empty());
    /// # Ok::<(), artifact_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// Name and type validation errors.
    pub fn from_logged(
        name: &str,
        artifact_type: &str,
        description: Option<String>,
        metadata: Map<String, Value>,
        mut manifest: Manifest,
    ) -> Result<Self> {
        crate::validate::validate_artifact_name(name)?;
        crate::validate::validate_type_form(artifact_type)?;
        let mut draft = Artifact::new(name, "placeholder")?;
        artifact_type.clone_into(&mut draft.artifact_type);
        let files: Vec<DigestAlgorithm> =
            manifest.entries().filter(|(_, e)| !e.is_reference()).map(|(_, e)| e.digest_algorithm()).collect();
        if !files.is_empty() && files.iter().all(|a| *a == DigestAlgorithm::Xxh128) {
            draft.digest_algorithm = DigestAlgorithm::Xxh128;
        }
        for (_, entry) in manifest.entries_mut() {
            entry.local_path = None;
        }
        draft.description = description;
        draft.metadata = metadata;
        draft.manifest = manifest;
        Ok(draft)
    }

    /// A draft of a downloaded version, to log it to another backend: as [`Artifact::from_logged`], but each file
    /// entry's body is its file under `root` (where the version was downloaded), and birth artifact ids are
    /// dropped, since they name versions of the source. References stay references.
    ///
    /// # Errors
    /// Name and type validation errors.
    pub fn from_downloaded(
        name: &str,
        artifact_type: &str,
        description: Option<String>,
        metadata: Map<String, Value>,
        manifest: Manifest,
        root: &Path,
    ) -> Result<Self> {
        let mut draft = Artifact::from_logged(name, artifact_type, description, metadata, manifest)?;
        for (path, entry) in draft.manifest.entries_mut() {
            entry.birth_artifact_id = None;
            if !entry.is_reference() {
                let mut local = root.to_path_buf();
                local.extend(LogicalPath::from_manifest_key(path)?.components());
                entry.local_path = Some(local);
            }
        }
        Ok(draft)
    }

    /// Starts a draft of one of the SDK's own kinds — a launch job (`job`), its code (`code`, named
    /// `source-…`), a run table — which [`Artifact::new`] refuses to users, as the SDK does.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NameTooLong`], [`Error::InvalidType`].
    pub fn new_sdk_kind(name: &str, artifact_type: &str) -> Result<Self> {
        crate::validate::validate_type_form(artifact_type)?;
        let mut artifact = Artifact::new(name, "placeholder")?;
        artifact_type.clone_into(&mut artifact.artifact_type);
        Ok(artifact)
    }

    /// The collection name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the draft (an integration naming it after its asset, say), validating the name against the type.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NameTooLong`], [`Error::ReservedType`].
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        validate_artifact_name(name)?;
        validate_artifact_type(&self.artifact_type, name)?;
        name.clone_into(&mut self.name);
        Ok(())
    }

    /// The type (`dataset`, `model`, …).
    pub fn artifact_type(&self) -> &str {
        &self.artifact_type
    }

    /// The description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Sets or clears the description.
    pub fn set_description(&mut self, description: Option<String>) {
        self.description = description;
    }

    /// The metadata object.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// Replaces the metadata. It must be a JSON object with at most 100 top-level keys.
    ///
    /// # Errors
    /// [`Error::InvalidMetadata`] for a non-object, [`Error::TooManyMetadataKeys`].
    pub fn set_metadata(&mut self, metadata: Value) -> Result<()> {
        let Value::Object(map) = metadata else {
            return Err(Error::InvalidMetadata {
                reason: format!("metadata must be a JSON object, got {}", json_kind(&metadata)),
            });
        };
        if map.len() > MAX_METADATA_KEYS {
            return Err(Error::TooManyMetadataKeys { count: map.len() });
        }
        self.metadata = map;
        Ok(())
    }

    /// The digest algorithm of new file entries and of the artifact digest.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest_algorithm
    }

    /// Chooses the digest algorithm. It must be chosen before anything is added.
    ///
    /// # Errors
    /// [`Error::AlgorithmLocked`] when the draft already has entries.
    pub fn set_digest_algorithm(&mut self, algorithm: DigestAlgorithm) -> Result<()> {
        if algorithm != self.digest_algorithm && !self.manifest.is_empty() {
            return Err(Error::AlgorithmLocked { name: self.name.clone() });
        }
        self.digest_algorithm = algorithm;
        Ok(())
    }

    /// Attaches a digest memo so unchanged files are not hashed again.
    pub fn set_digest_memo(&mut self, memo: Arc<dyn DigestMemo>) {
        self.memo = Some(memo);
    }

    /// Reports hashing progress to `progress`.
    pub fn set_progress(&mut self, progress: Arc<dyn Progress>) {
        self.progress = progress;
    }

    /// Where [`Artifact::new_file`] creates its files (a fresh directory inside `parent`, removed when the
    /// draft is dropped). Defaults to the system temporary directory.
    pub fn set_staging_parent(&mut self, parent: impl Into<PathBuf>) {
        self.staging_parent = Some(parent.into());
    }

    /// The manifest built so far.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The artifact digest (spec §2.2), in this draft's algorithm.
    pub fn digest(&self) -> String {
        self.manifest.digest_with(self.digest_algorithm)
    }

    /// Total size of the entries in bytes.
    pub fn size(&self) -> u64 {
        self.manifest.total_size()
    }

    /// Adds one local file (`add_file`). The logical path is `options.name` or the file's name.
    ///
    /// # Errors
    /// [`Error::NotAFile`] when `local_path` is missing or not a regular file, [`Error::InvalidPath`],
    /// [`Error::DuplicatePath`], and I/O errors while hashing.
    pub fn add_file(&mut self, local_path: impl AsRef<Path>, options: AddFileOptions) -> Result<LogicalPath> {
        let local = local_path.as_ref();
        let metadata = match fs::metadata(local) {
            Ok(m) if m.is_file() => m,
            _ => return Err(Error::NotAFile { path: local.to_path_buf() }),
        };
        let path = match &options.name {
            Some(name) => LogicalPath::new(name)?,
            None => LogicalPath::new(utf8_file_name(local)?)?,
        };
        let absolute = std::path::absolute(local).map_err(|e| Error::io("resolve", local, e))?;
        let stamp = FileStamp::from_metadata(&metadata);
        let (root, key) = memo_scope_for_file(&absolute)?;
        let job = HashJob { physical: absolute.clone(), memo_key: key, stamp };
        let algorithm = self.digest_algorithm;
        let hashed = self.hash_merging(root, algorithm, vec![job])?.remove(0);
        let entry = self.file_entry(hashed.digest, stamp.size, absolute, options.skip_cache);
        self.manifest.add_entry(path.clone(), entry, options.overwrite)?;
        Ok(path)
    }

    /// Adds every file below `local_dir` (`add_dir`), following symbolic links to directories as the SDK does
    /// (`os.walk(followlinks=True)`), with logical paths `options.name/<relative path>`.
    ///
    /// Either every file is added or, on error, none is.
    ///
    /// # Errors
    /// [`Error::NotADirectory`], walk errors ([`Error::SymlinkCycle`], [`Error::DanglingSymlink`],
    /// [`Error::UnsupportedFileType`], [`Error::NonUtf8Path`]), [`Error::InvalidPath`],
    /// [`Error::DuplicatePath`], and I/O errors while hashing.
    pub fn add_dir(&mut self, local_dir: impl AsRef<Path>, options: AddDirOptions) -> Result<AddReport> {
        let local = local_dir.as_ref();
        if !fs::metadata(local).is_ok_and(|m| m.is_dir()) {
            return Err(Error::NotADirectory { path: local.to_path_buf() });
        }
        let absolute = std::path::absolute(local).map_err(|e| Error::io("resolve", local, e))?;
        let files = walk_files(&absolute, DirLinks::Follow)?;
        let paths = files
            .iter()
            .map(|f| LogicalPath::join(options.name.as_deref(), &f.relative))
            .collect::<Result<Vec<_>>>()?;
        let jobs: Vec<HashJob> = files
            .into_iter()
            .map(|f| HashJob {
                stamp: FileStamp::from_metadata(&f.metadata),
                physical: f.physical,
                memo_key: f.relative,
            })
            .collect();
        let root = fs::canonicalize(&absolute).map_err(|e| Error::io("resolve", &absolute, e))?;
        let algorithm = self.digest_algorithm;
        let hashed = self.hash_replacing(&root, algorithm, &jobs)?;
        let entries: Vec<(LogicalPath, ManifestEntry)> = paths
            .into_iter()
            .zip(jobs.iter().zip(&hashed))
            .map(|(path, (job, h))| {
                let entry = self.file_entry(h.digest.clone(), job.stamp.size, job.physical.clone(), options.skip_cache);
                (path, entry)
            })
            .collect();
        let report = AddReport {
            files: entries.len(),
            bytes: jobs.iter().map(|j| j.stamp.size).sum(),
            hashed: hashed.iter().filter(|h| !h.from_memo).count(),
            memo_hits: hashed.iter().filter(|h| h.from_memo).count(),
        };
        self.add_all(entries, options.overwrite)?;
        Ok(report)
    }

    /// Opens a new file at logical path `name` inside the draft (`new_file`). Write to it, then
    /// [`NewFile::close`] it to add it; a `NewFile` dropped without `close` adds nothing.
    ///
    /// The file lives in a private staging directory removed when the draft is dropped. Its digest is computed
    /// while writing. Like the SDK, the entry has `skip_cache` set.
    ///
    /// # Errors
    /// [`Error::InvalidPath`], [`Error::FileExists`] when the path is taken and `overwrite` is off, and I/O
    /// errors creating the file.
    pub fn new_file(&mut self, name: &str, options: NewFileOptions) -> Result<NewFile<'_>> {
        let path = LogicalPath::new(name)?;
        if !options.overwrite && self.manifest.get(path.as_str()).is_some() {
            return Err(Error::FileExists { path: path.to_string() });
        }
        let staging = self.staging_dir()?;
        let mut local = staging;
        local.extend(path.components());
        if let Some(parent) = local.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
        }
        let file = File::create(&local).map_err(|e| Error::io("create", &local, e))?;
        let hasher = self.digest_algorithm.hasher();
        Ok(NewFile {
            artifact: self,
            path,
            local,
            writer: BufWriter::new(file),
            hasher,
            size: 0,
            overwrite: options.overwrite,
        })
    }

    /// Adds a reference (`add_reference`) using only the built-in handlers: `file://`, every known scheme with
    /// `checksum = false`, and unknown schemes (which need `options.name`). See [`Artifact::add_reference_with`].
    ///
    /// # Errors
    /// See [`Artifact::add_reference_with`].
    pub fn add_reference(&mut self, uri: &str, options: ReferenceOptions) -> Result<Vec<LogicalPath>> {
        self.add_reference_with(uri, options, None)
    }

    /// Adds a reference, asking `resolver` for schemes that need the network (spec §2.3).
    ///
    /// `file://` references checksum local files (always MD5, as the SDK does, even in XXH128 artifacts); with
    /// `checksum = false` the digest is the MD5 of the resolved `file://` URI. Directories expand to one entry per
    /// file, up to `max_objects`. Either every entry is added or, on error, none is.
    ///
    /// # Errors
    /// [`Error::NotAUri`], [`Error::ReferenceNeedsName`], [`Error::ResolverRequired`], [`Error::ReferenceNotFound`],
    /// [`Error::TooManyObjects`], [`Error::DuplicatePath`], walk and I/O errors, and the resolver's errors.
    pub fn add_reference_with(
        &mut self,
        uri: &str,
        options: ReferenceOptions,
        resolver: Option<&dyn ReferenceResolver>,
    ) -> Result<Vec<LogicalPath>> {
        let resolved = match classify(uri, &options)? {
            Builtin::LocalFile(path) => self.resolve_local_reference(uri, &path, &options)?,
            Builtin::Offline(entries) => entries,
            Builtin::External { scheme, known } => {
                let split = SplitUri::parse(uri).ok_or_else(|| Error::NotAUri { uri: uri.to_owned() })?;
                match resolver {
                    Some(resolver) if resolver.handles(&split) => resolver.resolve(uri, &options)?,
                    _ if known => return Err(Error::ResolverRequired { scheme, uri: uri.to_owned() }),
                    _ => vec![tracking_entry(uri, &options)?],
                }
            }
        };
        let paths = resolved.iter().map(|r| r.path.clone()).collect();
        self.add_all(resolved.into_iter().map(|r| (r.path, r.entry)).collect(), false)?;
        Ok(paths)
    }

    /// Removes the entry at `path`, or every entry under the directory `path`.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `NotFound` when nothing matches (the SDK's `FileNotFoundError`).
    pub fn remove(&mut self, path: &str) -> Result<usize> {
        match self.manifest.remove(path) {
            0 => Err(Error::io(
                "remove",
                path,
                io::Error::new(io::ErrorKind::NotFound, format!("No such file or directory: {path}")),
            )),
            n => Ok(n),
        }
    }

    /// Saves digest-memo records of single-file adds now rather than when the draft is dropped.
    pub fn flush_digest_memo(&mut self) {
        if let Some(memo) = &self.memo {
            for ((root, algorithm), table) in self.pending_memo.drain() {
                memo.save(&root, algorithm, &table);
            }
        }
    }

    fn file_entry(&self, digest: String, size: u64, local_path: PathBuf, skip_cache: bool) -> ManifestEntry {
        // Sized exactly: a map grown by insertion reserves room for several fields, per entry.
        let mut extra = Map::with_capacity(usize::from(self.digest_algorithm.extra_tag().is_some()));
        if let Some(tag) = self.digest_algorithm.extra_tag() {
            extra.insert(DIGEST_ALGORITHM_EXTRA_KEY.to_owned(), Value::String(tag.to_owned()));
        }
        ManifestEntry {
            digest,
            size: Some(size),
            local_path: Some(local_path),
            skip_cache,
            extra,
            ..Default::default()
        }
    }

    /// Checks every entry against the duplicate rule, then adds them all.
    fn add_all(&mut self, mut entries: Vec<(LogicalPath, ManifestEntry)>, overwrite: bool) -> Result<()> {
        // Walks produce sorted paths, so this sort is nearly free; it puts duplicates side by side.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if !overwrite {
            for pair in entries.windows(2) {
                if pair[0].0 == pair[1].0 && pair[0].1.digest != pair[1].1.digest {
                    return Err(Error::DuplicatePath { path: pair[0].0.to_string() });
                }
            }
            for (path, entry) in &entries {
                self.manifest.check_can_add(path, &entry.digest, false)?;
            }
        }
        for (path, entry) in entries {
            self.manifest.add_entry(path, entry, true)?;
        }
        Ok(())
    }

    /// Hashes files of one directory tree whose memo table is rewritten to exactly these files.
    fn hash_replacing(&mut self, root: &Path, algorithm: DigestAlgorithm, jobs: &[HashJob]) -> Result<Vec<Hashed>> {
        let Some(memo) = self.memo.clone() else {
            return hash_files(jobs, algorithm, &mut MemoTable::default(), &*self.progress);
        };
        let mut table =
            self.pending_memo.remove(&(root.to_path_buf(), algorithm)).unwrap_or_else(|| memo.load(root, algorithm));
        let loaded = table.records.len();
        let hashed = hash_files(jobs, algorithm, &mut table, &*self.progress)?;
        let recorded = hashed.iter().filter(|h| !h.from_memo).count();
        // Keep only the files of this walk; records of files that are gone go with them.
        let mut kept = MemoTable::default();
        kept.records.reserve(jobs.len());
        for job in jobs {
            if let Some((key, record)) = table.records.remove_entry(&job.memo_key) {
                kept.records.insert(key, record);
            }
        }
        if recorded > 0 || kept.records.len() != loaded {
            memo.save(root, algorithm, &kept);
        }
        Ok(hashed)
    }

    /// Hashes single files whose memo table keeps its other records; saved later.
    fn hash_merging(&mut self, root: PathBuf, algorithm: DigestAlgorithm, jobs: Vec<HashJob>) -> Result<Vec<Hashed>> {
        let Some(memo) = self.memo.clone() else {
            return hash_files(&jobs, algorithm, &mut MemoTable::default(), &*self.progress);
        };
        let key = (root, algorithm);
        let table = self.pending_memo.entry(key.clone()).or_insert_with(|| memo.load(&key.0, algorithm));
        hash_files(&jobs, algorithm, table, &*self.progress)
    }

    fn resolve_local_reference(
        &mut self,
        uri: &str,
        local: &Path,
        options: &ReferenceOptions,
    ) -> Result<Vec<ResolvedReference>> {
        let metadata = match fs::metadata(local) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::ReferenceNotFound { uri: uri.to_owned(), path: local.to_path_buf() });
            }
            Err(e) => return Err(Error::io("read metadata of", local, e)),
        };
        // file:// references are MD5 whatever the artifact's algorithm (LocalFileHandler uses md5_file_b64).
        let algorithm = DigestAlgorithm::Md5;
        let name = options.name.as_deref();
        let entry = |digest: String, size: u64, reference: String| ManifestEntry {
            digest,
            reference: Some(reference),
            size: Some(size),
            ..Default::default()
        };
        if metadata.is_dir() {
            let files = walk_files(local, DirLinks::Skip)?;
            let max = options.max_objects();
            if files.len() as u64 > max {
                return Err(Error::TooManyObjects { max_objects: max, uri: uri.to_owned() });
            }
            let jobs: Vec<HashJob> = files
                .iter()
                .map(|f| HashJob {
                    physical: f.physical.clone(),
                    memo_key: f.relative.clone(),
                    stamp: FileStamp::from_metadata(&f.metadata),
                })
                .collect();
            let digests = if options.checksum {
                let root = fs::canonicalize(local).map_err(|e| Error::io("resolve", local, e))?;
                self.hash_replacing(&root, algorithm, &jobs)?.into_iter().map(|h| h.digest).collect()
            } else {
                jobs.iter().map(|j| resolved_uri_digest(&j.physical)).collect::<Result<Vec<_>>>()?
            };
            let base = uri.trim_end_matches('/');
            files
                .iter()
                .zip(jobs.iter().zip(digests))
                .map(|(f, (job, digest))| {
                    Ok(ResolvedReference {
                        path: LogicalPath::join(name, &f.relative)?,
                        entry: entry(digest, job.stamp.size, format!("{base}/{}", f.relative)),
                    })
                })
                .collect()
        } else if metadata.is_file() {
            let path = match name {
                Some(name) => LogicalPath::new(name)?,
                None => LogicalPath::new(utf8_file_name(local)?)?,
            };
            let stamp = FileStamp::from_metadata(&metadata);
            let digest = if options.checksum {
                let absolute = std::path::absolute(local).map_err(|e| Error::io("resolve", local, e))?;
                let (root, key) = memo_scope_for_file(&absolute)?;
                let job = HashJob { physical: absolute, memo_key: key, stamp };
                self.hash_merging(root, algorithm, vec![job])?.remove(0).digest
            } else {
                resolved_uri_digest(local)?
            };
            Ok(vec![ResolvedReference { path, entry: entry(digest, stamp.size, uri.to_owned()) }])
        } else {
            Err(Error::UnsupportedFileType { path: local.to_path_buf(), kind: "special file" })
        }
    }

    fn staging_dir(&mut self) -> Result<PathBuf> {
        if let Some(dir) = &self.staging {
            return Ok(dir.path().to_path_buf());
        }
        let parent = self.staging_parent.clone().unwrap_or_else(std::env::temp_dir);
        fs::create_dir_all(&parent).map_err(|e| Error::io("create directory", &parent, e))?;
        let dir = tempfile::Builder::new()
            .prefix("artifact-new-file-")
            .tempdir_in(&parent)
            .map_err(|e| Error::io("create staging directory in", &parent, e))?;
        let path = dir.path().to_path_buf();
        self.staging = Some(dir);
        Ok(path)
    }
}

impl Drop for Artifact {
    fn drop(&mut self) {
        self.flush_digest_memo();
    }
}

/// A file being written into a draft by [`Artifact::new_file`].
pub struct NewFile<'a> {
    artifact: &'a mut Artifact,
    path: LogicalPath,
    local: PathBuf,
    writer: BufWriter<File>,
    hasher: Hasher,
    size: u64,
    overwrite: bool,
}

impl std::fmt::Debug for NewFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFile").field("path", &self.path).field("size", &self.size).finish_non_exhaustive()
    }
}

impl NewFile<'_> {
    /// The logical path the file will have.
    pub fn path(&self) -> &LogicalPath {
        &self.path
    }

    /// Where the file is being written.
    pub fn local_path(&self) -> &Path {
        &self.local
    }

    /// Flushes and syncs the file and adds it to the artifact.
    ///
    /// # Errors
    /// I/O errors flushing the file; [`Error::DuplicatePath`] if another entry took the path meanwhile.
    pub fn close(mut self) -> Result<LogicalPath> {
        self.writer.flush().map_err(|e| Error::io("write", &self.local, e))?;
        self.writer.get_ref().sync_all().map_err(|e| Error::io("sync", &self.local, e))?;
        let NewFile { artifact, path, local, hasher, size, overwrite, .. } = self;
        let mut entry = artifact.file_entry(hasher.finalize_b64(), size, local, true);
        entry.skip_cache = true;
        artifact.manifest.add_entry(path.clone(), entry, overwrite)?;
        Ok(path)
    }
}

impl Write for NewFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.writer.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Parses metadata given as JSON text, as `--metadata` on the command line.
///
/// JSON has no NaN or infinities; Python's `json` module accepts `NaN`, `Infinity` and `-Infinity` tokens, but
/// the SDK then refuses them (`Out of range float values are not JSON compliant`). They get a clear error here.
///
/// ```
/// let m = artifact_core::parse_metadata_json(r#"{"source": "mnist", "sizes": [50000, 10000]}"#)?;
/// assert_eq!(m["sizes"][0], 50000);
/// assert!(artifact_core::parse_metadata_json(r#"{"loss": NaN}"#).is_err());
/// # Ok::<(), artifact_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidMetadata`] for invalid JSON, non-finite numbers and non-objects;
/// [`Error::TooManyMetadataKeys`].
pub fn parse_metadata_json(text: &str) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let reason = match non_finite_token(text) {
            Some((token, line, column)) => {
                format!("Out of range float values are not JSON compliant: {token} at line {line} column {column}")
            }
            None => format!("not valid JSON: {e}"),
        };
        Error::InvalidMetadata { reason }
    })?;
    let Value::Object(map) = value else {
        return Err(Error::InvalidMetadata {
            reason: format!("metadata must be a JSON object, got {}", json_kind(&value)),
        });
    };
    if map.len() > MAX_METADATA_KEYS {
        return Err(Error::TooManyMetadataKeys { count: map.len() });
    }
    Ok(map)
}

/// Finds a `NaN`/`Infinity`/`-Infinity` token outside strings; returns it with its 1-based line and column.
fn non_finite_token(text: &str) -> Option<(&'static str, usize, usize)> {
    let (mut in_string, mut escaped) = (false, false);
    let (mut line, mut column) = (1, 0);
    for (i, c) in text.char_indices() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            continue;
        }
        for token in ["-Infinity", "Infinity", "NaN"] {
            if text[i..].starts_with(token) {
                return Some((token, line, column));
            }
        }
    }
    None
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn utf8_file_name(path: &Path) -> Result<&str> {
    let name = path.file_name().ok_or_else(|| Error::NotAFile { path: path.to_path_buf() })?;
    name.to_str().ok_or_else(|| Error::NonUtf8Path { path: path.to_path_buf() })
}

/// The memo root (canonical parent directory) and key (file name) of a single file.
fn memo_scope_for_file(absolute: &Path) -> Result<(PathBuf, String)> {
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    let root = fs::canonicalize(parent).map_err(|e| Error::io("resolve", parent, e))?;
    Ok((root, utf8_file_name(absolute)?.to_owned()))
}

/// The digest of an unchecksummed `file://` reference to `path`.
fn resolved_uri_digest(path: &Path) -> Result<String> {
    let resolved = fs::canonicalize(path).map_err(|e| Error::io("resolve", path, e))?;
    Ok(unchecksummed_file_digest(&resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_rules() {
        let mut a = Artifact::new("x", "dataset").unwrap();
        assert!(a.set_metadata(serde_json::json!([1])).unwrap_err().to_string().contains("an array"));
        let many: Map<String, Value> = (0..101).map(|i| (format!("k{i}"), Value::from(i))).collect();
        assert_eq!(
            a.set_metadata(Value::Object(many)).unwrap_err().to_string(),
            "Artifact must not have more than 100 metadata keys. (got 101)"
        );
        a.set_metadata(serde_json::json!({"k": 1})).unwrap();
        assert_eq!(a.metadata()["k"], 1);
    }

    #[test]
    fn non_finite_tokens_are_named() {
        let err = parse_metadata_json("{\"a\": 1,\n \"b\": -Infinity}").unwrap_err().to_string();
        assert!(err.contains("-Infinity at line 2 column 7"), "{err}");
        let err = parse_metadata_json(r#"{"NaN": "NaN", "x": NaN}"#).unwrap_err().to_string();
        assert!(err.contains("NaN at line 1 column 21"), "{err}");
        assert!(parse_metadata_json(r#"{"s": "Infinity"}"#).is_ok());
        assert!(parse_metadata_json("[]").unwrap_err().to_string().contains("an array"));
        assert!(parse_metadata_json("{").unwrap_err().to_string().contains("not valid JSON"));
    }

    #[test]
    fn algorithm_is_locked_once_entries_exist() {
        let mut a = Artifact::new("x", "dataset").unwrap();
        a.set_digest_algorithm(DigestAlgorithm::Xxh128).unwrap();
        a.add_reference("foo://x", ReferenceOptions { name: Some("x".into()), ..Default::default() }).unwrap();
        assert!(a.set_digest_algorithm(DigestAlgorithm::Md5).is_err());
        assert!(a.set_digest_algorithm(DigestAlgorithm::Xxh128).is_ok());
    }
}
