//! Manifest v1: the list of files (and references) in an artifact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::{DigestAlgorithm, artifact_digest};
use crate::error::{Error, Result};
use crate::gojson;
use crate::path::LogicalPath;

/// The storage policy every current SDK writes (`WANDB_STORAGE_POLICY`).
pub const STORAGE_POLICY_V1: &str = "wandb-storage-policy-v1";

/// One file or reference in a manifest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManifestEntry {
    /// Base64 MD5/XXH128 of the content, or an ETag, or the URI itself for unchecksummed references.
    pub digest: String,
    /// The referenced URI, for references; `None` for files stored with the artifact.
    pub reference: Option<String>,
    /// The id of the artifact version that first stored this file (filled in by the store or server).
    pub birth_artifact_id: Option<String>,
    /// Size in bytes; `None` for references whose size is unknown.
    pub size: Option<u64>,
    /// Extra fields: `alg` for XXH128 entries, `etag`/`versionID` for object-store references.
    pub extra: Map<String, Value>,
    /// Where the uploader read the file from. Never used for downloads.
    pub local_path: Option<PathBuf>,
    /// When set, the file is not copied into the local content cache on upload or download.
    pub skip_cache: bool,
}

impl ManifestEntry {
    /// The algorithm of this entry's digest (`extra.alg`; untagged entries are MD5).
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        DigestAlgorithm::from_extra(&self.extra)
    }

    /// True for references (entries with a `ref`), which are not stored with the artifact.
    pub fn is_reference(&self) -> bool {
        self.reference.is_some()
    }
}

/// A W&B manifest, version 1.
///
/// Entries are kept in byte order of their paths — the order the artifact digest and the uploaded
/// (Go-serialised) manifest use. [`Manifest::from_json`] reads both the Python dialect and the Go dialect;
/// [`Manifest::to_go_json`] writes the Go dialect, byte for byte as wandb-core uploads it.
///
/// ```
/// use artifact_core::{Manifest, ManifestEntry, LogicalPath};
/// let mut m = Manifest::new();
/// m.add_entry(LogicalPath::new("a.txt")?, ManifestEntry {
///     digest: "1B2M2Y8AsgTpgAmY7PhCfg==".into(), size: Some(0), ..Default::default()
/// }, false)?;
/// assert_eq!(m.digest().len(), 32); // lowercase hex MD5 of the §2.2 preimage
/// let bytes = m.to_go_json();
/// assert_eq!(Manifest::from_json(&bytes)?.get("a.txt").unwrap().size, Some(0));
/// # Ok::<(), artifact_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// `storagePolicy`, normally [`STORAGE_POLICY_V1`].
    pub storage_policy: String,
    /// `storagePolicyConfig.storageLayout`: `"V2"` (current) or `"V1"`.
    pub storage_layout: String,
    /// `storagePolicyConfig.storageRegion`, when the artifact was created with one.
    pub storage_region: Option<String>,
    entries: BTreeMap<String, ManifestEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            storage_policy: STORAGE_POLICY_V1.to_owned(),
            storage_layout: "V2".to_owned(),
            storage_region: None,
            entries: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// An empty manifest with the current storage policy and layout V2.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, in byte order of their paths.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&str, &ManifestEntry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The entries after path `after` (all of them for `None`), in byte order of their paths: a page of a large
    /// manifest in O(log n + page), with the last path of one page as the cursor of the next.
    ///
    /// ```
    /// let mut m = artifact_core::Manifest::new();
    /// for p in ["a", "b", "c"] {
    ///     let entry = artifact_core::ManifestEntry { size: Some(0), ..Default::default() };
    ///     m.add_entry(artifact_core::LogicalPath::new(p)?, entry, false)?;
    /// }
    /// let page: Vec<&str> = m.entries_after(Some("a")).map(|(p, _)| p).collect();
    /// assert_eq!(page, ["b", "c"]);
    /// # Ok::<(), artifact_core::Error>(())
    /// ```
    pub fn entries_after(&self, after: Option<&str>) -> impl Iterator<Item = (&str, &ManifestEntry)> {
        use std::ops::Bound;
        let start = match after {
            Some(path) => Bound::Excluded(path),
            None => Bound::Unbounded,
        };
        self.entries.range::<str, _>((start, Bound::Unbounded)).map(|(k, v)| (k.as_str(), v))
    }

    /// Mutable access to the entries, in path order (for example to fill in `birth_artifact_id`).
    pub fn entries_mut(&mut self) -> impl Iterator<Item = (&str, &mut ManifestEntry)> {
        self.entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.entries.get(path)
    }

    /// The entry at `path`, to change it in place (the path and its order stay).
    ///
    /// ```
    /// use artifact_core::{LogicalPath, Manifest, ManifestEntry};
    /// let mut m = Manifest::new();
    /// m.add_entry(LogicalPath::new("a.txt")?, ManifestEntry { digest: "x".into(), ..Default::default() }, false)?;
    /// m.get_mut("a.txt").unwrap().birth_artifact_id = Some("QXJ0aWZhY3Q6MQ==".into());
    /// assert_eq!(m.get("a.txt").unwrap().birth_artifact_id.as_deref(), Some("QXJ0aWZhY3Q6MQ=="));
    /// assert!(m.get_mut("b.txt").is_none());
    /// # Ok::<(), artifact_core::Error>(())
    /// ```
    pub fn get_mut(&mut self, path: &str) -> Option<&mut ManifestEntry> {
        self.entries.get_mut(path)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry with the SDK's duplicate rule: an existing path with a *different* digest is an error
    /// unless `overwrite`; the same digest silently replaces the entry.
    ///
    /// # Errors
    /// [`Error::DuplicatePath`].
    pub fn add_entry(&mut self, path: LogicalPath, entry: ManifestEntry, overwrite: bool) -> Result<()> {
        self.check_can_add(&path, &entry.digest, overwrite)?;
        self.entries.insert(path.into_string(), entry);
        Ok(())
    }

    /// Checks the duplicate rule without adding anything.
    ///
    /// # Errors
    /// [`Error::DuplicatePath`].
    pub fn check_can_add(&self, path: &LogicalPath, digest: &str, overwrite: bool) -> Result<()> {
        if !overwrite
            && let Some(previous) = self.entries.get(path.as_str())
            && previous.digest != digest
        {
            return Err(Error::DuplicatePath { path: path.to_string() });
        }
        Ok(())
    }

    /// Removes the entry at `path`, or every entry under `path/`; returns how many were removed.
    pub fn remove(&mut self, path: &str) -> usize {
        if self.entries.remove(path).is_some() {
            return 1;
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let before = self.entries.len();
        self.entries.retain(|k, _| !k.starts_with(&prefix));
        before - self.entries.len()
    }

    /// The artifact's digest algorithm as far as the manifest tells: XXH128 when any entry is tagged
    /// `alg: XXH128` (an XXH128 artifact may still hold untagged MD5 `file://` references), else MD5.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        if self.entries.values().any(|e| e.digest_algorithm() == DigestAlgorithm::Xxh128) {
            DigestAlgorithm::Xxh128
        } else {
            DigestAlgorithm::Md5
        }
    }

    /// The artifact digest with the algorithm [`Manifest::digest_algorithm`] infers.
    pub fn digest(&self) -> String {
        self.digest_with(self.digest_algorithm())
    }

    /// The artifact digest (spec §2.2) computed with `algorithm`.
    pub fn digest_with(&self, algorithm: DigestAlgorithm) -> String {
        artifact_digest(algorithm, self.entries.iter().map(|(k, v)| (k.as_str(), v.digest.as_str())))
    }

    /// Whether the artifact digest of these entries, with either algorithm, is `digest`: how a reader tells that
    /// a manifest is the one a version was committed with.
    ///
    /// ```
    /// let mut manifest = artifact_core::Manifest::from_json(
    ///     br#"{"version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {}, "contents": {
    ///         "a.txt": {"digest": "XUFAKrxLKna5cZ2REBfFkg==", "size": 5},
    ///         "b.txt": {"digest": "XUFAKrxLKna5cZ2REBfFkg==", "size": 5}}}"#,
    /// )?;
    /// let digest = manifest.digest();
    /// assert!(manifest.hashes_to(&digest));
    /// manifest.remove("b.txt");
    /// assert!(!manifest.hashes_to(&digest));
    /// # Ok::<(), artifact_core::Error>(())
    /// ```
    pub fn hashes_to(&self, digest: &str) -> bool {
        [DigestAlgorithm::Md5, DigestAlgorithm::Xxh128].iter().any(|algorithm| self.digest_with(*algorithm) == digest)
    }

    /// Sum of the entry sizes (unknown sizes count as zero), as `Artifact.size`.
    pub fn total_size(&self) -> u64 {
        self.entries.values().filter_map(|e| e.size).sum()
    }

    /// Parses a manifest in either dialect (Python's `to_manifest_json` or the uploaded Go serialisation).
    /// Unknown keys are ignored, as both SDK halves do.
    ///
    /// # Errors
    /// [`Error::ManifestFormat`] for invalid JSON, a missing `version` or malformed entries;
    /// [`Error::ManifestVersion`] for a version other than 1.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| Error::ManifestFormat { reason: e.to_string() })?;
        match raw.version {
            None | Some(Value::Null) => {
                return Err(Error::ManifestFormat { reason: "Must contain version field.".to_owned() });
            }
            Some(Value::Number(ref n)) if n.as_u64() == Some(1) => {}
            Some(other) => return Err(Error::ManifestVersion { version: other.to_string() }),
        }
        let config = raw.storage_policy_config.unwrap_or_default();
        let storage_layout = match config.get("storageLayout") {
            Some(Value::String(s)) => s.clone(),
            _ => "V2".to_owned(),
        };
        let storage_region = config.get("storageRegion").and_then(Value::as_str).map(str::to_owned);
        let entries = raw
            .contents
            .unwrap_or_default()
            .into_iter()
            .map(|(path, e)| {
                let entry = ManifestEntry {
                    digest: e.digest,
                    reference: e.reference,
                    birth_artifact_id: e.birth_artifact_id,
                    size: e.size,
                    // Parsing grows each map for more fields than an entry has; big manifests feel it.
                    extra: e.extra.map(shrunk).unwrap_or_default(),
                    local_path: e.local_path.map(PathBuf::from),
                    skip_cache: e.skip_cache.unwrap_or(false),
                };
                (path, entry)
            })
            .collect();
        Ok(Manifest {
            storage_policy: raw.storage_policy.unwrap_or_else(|| STORAGE_POLICY_V1.to_owned()),
            storage_layout,
            storage_region,
            entries,
        })
    }

    /// The manifest as the Python SDK's `ArtifactManifestV1.to_manifest_json()` returns it: entries with
    /// `digest`, and `ref`, `birthArtifactID`, `size` and `extra` only when set (pydantic's `exclude_defaults`);
    /// no `local_path` or `skip_cache`. Equal to the SDK's dict as a JSON value, whatever the key order.
    ///
    /// ```
    /// use artifact_core::{LogicalPath, Manifest, ManifestEntry};
    /// let mut m = Manifest::new();
    /// let entry = ManifestEntry { digest: "x://a".into(), reference: Some("x://a".into()), ..Default::default() };
    /// m.add_entry(LogicalPath::new("a")?, entry, false)?;
    /// assert_eq!(m.to_python_json()["contents"], serde_json::json!({"a": {"digest": "x://a", "ref": "x://a"}}));
    /// # Ok::<(), artifact_core::Error>(())
    /// ```
    pub fn to_python_json(&self) -> Value {
        let mut config = Map::new();
        config.insert("storageLayout".to_owned(), Value::String(self.storage_layout.clone()));
        if let Some(region) = &self.storage_region {
            config.insert("storageRegion".to_owned(), Value::String(region.clone()));
        }
        let contents: Map<String, Value> = self
            .entries
            .iter()
            .map(|(path, entry)| {
                let mut e = Map::new();
                e.insert("digest".to_owned(), Value::String(entry.digest.clone()));
                if let Some(reference) = &entry.reference {
                    e.insert("ref".to_owned(), Value::String(reference.clone()));
                }
                if let Some(birth) = &entry.birth_artifact_id {
                    e.insert("birthArtifactID".to_owned(), Value::String(birth.clone()));
                }
                if let Some(size) = entry.size {
                    e.insert("size".to_owned(), Value::from(size));
                }
                if !entry.extra.is_empty() {
                    e.insert("extra".to_owned(), Value::Object(entry.extra.clone()));
                }
                (path.clone(), Value::Object(e))
            })
            .collect();
        let mut out = Map::new();
        out.insert("version".to_owned(), Value::from(1));
        out.insert("storagePolicy".to_owned(), Value::String(self.storage_policy.clone()));
        out.insert("storagePolicyConfig".to_owned(), Value::Object(config));
        out.insert("contents".to_owned(), Value::Object(contents));
        Value::Object(out)
    }

    /// Serialises the manifest exactly as wandb-core uploads `wandb_manifest.json` (spec §1.2): compact, no
    /// trailing newline, sorted paths, entry keys `digest, ref?, size, local_path?, birthArtifactID?,
    /// skip_cache, extra?`, `size` always present, Go string escaping.
    pub fn to_go_json(&self) -> Vec<u8> {
        // Sized from the entries so a big manifest is written without doubling its buffer (a copy of the
        // whole text); escapes and extra values past the estimate only grow it late.
        let estimate: usize = self
            .entries
            .iter()
            .map(|(path, e)| {
                let strings = [Some(e.digest.as_str()), e.reference.as_deref(), e.birth_artifact_id.as_deref()];
                let local_path = e.local_path.as_ref().map_or(0, |p| p.as_os_str().len() + 16);
                path.len()
                    + strings.iter().flatten().map(|s| s.len() + 12).sum::<usize>()
                    + local_path
                    + 64
                    + e.extra.len() * 48
            })
            .sum();
        let mut out = String::with_capacity(128 + estimate);
        out.push_str("{\"version\":1,\"storagePolicy\":");
        gojson::write_string(&mut out, &self.storage_policy);
        out.push_str(",\"storagePolicyConfig\":{\"storageLayout\":");
        gojson::write_string(&mut out, &self.storage_layout);
        if let Some(region) = &self.storage_region {
            out.push_str(",\"storageRegion\":");
            gojson::write_string(&mut out, region);
        }
        out.push_str("},\"contents\":{");
        // BTreeMap<String, _> iterates in byte order, which is Go's map-key order.
        for (i, (path, entry)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            gojson::write_string(&mut out, path);
            out.push_str(":{\"digest\":");
            gojson::write_string(&mut out, &entry.digest);
            if let Some(reference) = &entry.reference {
                out.push_str(",\"ref\":");
                gojson::write_string(&mut out, reference);
            }
            out.push_str(",\"size\":");
            out.push_str(&entry.size.unwrap_or(0).to_string());
            if let Some(local_path) = &entry.local_path {
                out.push_str(",\"local_path\":");
                gojson::write_string(&mut out, &local_path.to_string_lossy());
            }
            if let Some(birth) = &entry.birth_artifact_id {
                out.push_str(",\"birthArtifactID\":");
                gojson::write_string(&mut out, birth);
            }
            out.push_str(",\"skip_cache\":");
            out.push_str(if entry.skip_cache { "true" } else { "false" });
            if !entry.extra.is_empty() {
                out.push_str(",\"extra\":");
                gojson::write_object(&mut out, entry.extra.iter());
            }
            out.push('}');
        }
        out.push_str("}}");
        out.into_bytes()
    }
}

/// `map` in an allocation of its own size.
fn shrunk(map: Map<String, Value>) -> Map<String, Value> {
    let mut exact = Map::with_capacity(map.len());
    exact.extend(map);
    exact
}

#[derive(Deserialize)]
struct RawManifest {
    version: Option<Value>,
    #[serde(rename = "storagePolicy")]
    storage_policy: Option<String>,
    #[serde(rename = "storagePolicyConfig")]
    storage_policy_config: Option<Map<String, Value>>,
    contents: Option<BTreeMap<String, RawEntry>>,
}

#[derive(Deserialize)]
struct RawEntry {
    digest: String,
    #[serde(rename = "ref")]
    reference: Option<String>,
    #[serde(rename = "birthArtifactID")]
    birth_artifact_id: Option<String>,
    size: Option<u64>,
    extra: Option<Map<String, Value>>,
    local_path: Option<String>,
    skip_cache: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_wrong_versions_are_refused_with_sdk_text() {
        let err = Manifest::from_json(br#"{"contents":{}}"#).unwrap_err();
        assert_eq!(err.to_string(), "Invalid manifest format. Must contain version field.");
        let err = Manifest::from_json(br#"{"version":2,"contents":{}}"#).unwrap_err();
        assert_eq!(err.to_string(), "Invalid manifest version. (got 2)");
        assert!(Manifest::from_json(b"not json").is_err());
        assert!(Manifest::from_json(br#"{"version":1,"contents":{"a":{"size":1}}}"#).is_err());
    }

    #[test]
    fn empty_manifest_serialises_like_go() {
        let m = Manifest::new();
        assert_eq!(
            String::from_utf8(m.to_go_json()).unwrap(),
            r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{"storageLayout":"V2"},"contents":{}}"#
        );
    }

    #[test]
    fn remove_takes_files_and_directories() {
        let mut m = Manifest::new();
        for p in ["a/b", "a/c", "ab", "d"] {
            m.add_entry(LogicalPath::new(p).unwrap(), ManifestEntry { digest: p.into(), ..Default::default() }, false)
                .unwrap();
        }
        assert_eq!(m.remove("a"), 2);
        assert_eq!(m.remove("d"), 1);
        assert_eq!(m.remove("zz"), 0);
        assert_eq!(m.entries().map(|(k, _)| k).collect::<Vec<_>>(), ["ab"]);
    }

    #[test]
    fn duplicate_rule() {
        let mut m = Manifest::new();
        let p = LogicalPath::new("m.pt").unwrap();
        let e = |d: &str| ManifestEntry { digest: d.into(), ..Default::default() };
        m.add_entry(p.clone(), e("x"), false).unwrap();
        m.add_entry(p.clone(), e("x"), false).unwrap();
        assert_eq!(
            m.add_entry(p.clone(), e("y"), false).unwrap_err().to_string(),
            "Cannot add the same path twice: 'm.pt'"
        );
        m.add_entry(p, e("y"), true).unwrap();
        assert_eq!(m.get("m.pt").unwrap().digest, "y");
    }
}
