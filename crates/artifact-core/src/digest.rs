//! File and artifact digests exactly as the W&B SDK computes them.
//!
//! File digests are base64 (standard alphabet, padded) of the raw 16-byte hash. The artifact digest is the
//! lowercase hex hash of a preimage made of a fixed header and one `"{path}:{digest}\n"` line per entry in
//! byte order of the paths.

use std::fmt;
use std::io::{self, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::Digest as _;

use crate::error::{Error, Result};

/// Header of the artifact-digest preimage (`_DIGEST_HEADER` in the SDK).
pub const ARTIFACT_DIGEST_HEADER: &str = "wandb-artifact-manifest-v1\n";

/// Base64 MD5 of zero bytes.
pub const EMPTY_MD5_B64: &str = "1B2M2Y8AsgTpgAmY7PhCfg==";

/// Base64 XXH128 of zero bytes.
pub const EMPTY_XXH128_B64: &str = "maoG0wFHmNhgAcMkRo1Jfw==";

/// The value of `extra.alg` that marks an XXH128 entry (`DIGEST_ALGORITHM_EXTRA_KEY`).
pub const DIGEST_ALGORITHM_EXTRA_KEY: &str = "alg";

/// The hash used for file digests and for the artifact digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// MD5, the SDK default; entries carry no `alg` tag.
    #[default]
    Md5,
    /// XXH128 (SDK >= 0.29); entries carry `extra: {"alg": "XXH128"}`.
    Xxh128,
}

impl DigestAlgorithm {
    /// The GraphQL enum value (`ArtifactDigestAlgorithm`): `MANIFEST_MD5` or `MANIFEST_XXH128`.
    pub fn graphql_name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MANIFEST_MD5",
            DigestAlgorithm::Xxh128 => "MANIFEST_XXH128",
        }
    }

    /// The value stored in an entry's `extra.alg`, if any (`None` for MD5, which is untagged).
    pub fn extra_tag(self) -> Option<&'static str> {
        match self {
            DigestAlgorithm::Md5 => None,
            DigestAlgorithm::Xxh128 => Some("XXH128"),
        }
    }

    /// The directory name used in the content cache (`obj/md5`, `obj/xxh128`).
    pub fn cache_dir_name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Xxh128 => "xxh128",
        }
    }

    /// Reads the algorithm an entry's `extra.alg` names; anything but `"XXH128"` is MD5, as in the SDK.
    pub fn from_extra(extra: &serde_json::Map<String, serde_json::Value>) -> Self {
        match extra.get(DIGEST_ALGORITHM_EXTRA_KEY).and_then(|v| v.as_str()) {
            Some("XXH128") => DigestAlgorithm::Xxh128,
            _ => DigestAlgorithm::Md5,
        }
    }

    /// A fresh streaming hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            DigestAlgorithm::Md5 => Hasher(HasherState::Md5(md5::Md5::new())),
            DigestAlgorithm::Xxh128 => Hasher(HasherState::Xxh128(Box::new(xxhash_rust::xxh3::Xxh3Default::new()))),
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Xxh128 => "xxh128",
        })
    }
}

impl std::str::FromStr for DigestAlgorithm {
    type Err = String;

    /// Accepts `md5` and `xxh128` in any case, and the GraphQL names.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "md5" | "manifest_md5" => Ok(DigestAlgorithm::Md5),
            "xxh128" | "manifest_xxh128" => Ok(DigestAlgorithm::Xxh128),
            _ => Err(format!("unknown digest algorithm {s:?}: expected md5 or xxh128")),
        }
    }
}

/// A streaming hasher producing a 16-byte digest.
pub struct Hasher(HasherState);

enum HasherState {
    Md5(md5::Md5),
    // Boxed: the XXH3 state is ~600 bytes and would bloat every `Hasher` on the stack.
    Xxh128(Box<xxhash_rust::xxh3::Xxh3Default>),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = match self.0 {
            HasherState::Md5(_) => DigestAlgorithm::Md5,
            HasherState::Xxh128(_) => DigestAlgorithm::Xxh128,
        };
        f.debug_tuple("Hasher").field(&alg).finish()
    }
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            HasherState::Md5(h) => h.update(bytes),
            HasherState::Xxh128(h) => h.update(bytes),
        }
    }

    /// The raw digest. XXH128 is big-endian (canonical), as the Python `xxhash` package returns it.
    pub fn finalize_bytes(self) -> [u8; 16] {
        match self.0 {
            HasherState::Md5(h) => h.finalize().into(),
            HasherState::Xxh128(h) => h.digest128().to_be_bytes(),
        }
    }

    /// The digest as the SDK stores it in a manifest: standard padded base64.
    pub fn finalize_b64(self) -> String {
        B64.encode(self.finalize_bytes())
    }

    /// The digest as lowercase hex.
    pub fn finalize_hex(self) -> String {
        to_hex(&self.finalize_bytes())
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Base64 digest of a byte string.
pub fn digest_bytes_b64(algorithm: DigestAlgorithm, bytes: &[u8]) -> String {
    let mut h = algorithm.hasher();
    h.update(bytes);
    h.finalize_b64()
}

/// Base64 MD5 of a string (`md5_string` in the SDK).
pub fn md5_b64(bytes: &[u8]) -> String {
    digest_bytes_b64(DigestAlgorithm::Md5, bytes)
}

/// Size of the buffer used when hashing streams.
const COPY_BUFFER_SIZE: usize = 1 << 20;

thread_local! {
    // Reused across calls: hashing 10,000 small files must not map and unmap 10,000 buffers.
    static COPY_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Streams everything `reader` yields into `writer`, hashing it on the way; returns the base64 digest and the
/// number of bytes. Memory use is one 1 MiB buffer per thread, whatever the size of the stream.
///
/// ```
/// use artifact_core::{DigestAlgorithm, copy_hashing};
/// let mut copy = Vec::new();
/// let (digest, n) = copy_hashing(DigestAlgorithm::Md5, &mut &b"hello"[..], &mut copy)?;
/// assert_eq!((digest.as_str(), n, copy.as_slice()), ("XUFAKrxLKna5cZ2REBfFkg==", 5, &b"hello"[..]));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// The reader's or the writer's I/O error.
pub fn copy_hashing(
    algorithm: DigestAlgorithm,
    reader: &mut dyn Read,
    writer: &mut dyn Write,
) -> io::Result<(String, u64)> {
    COPY_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() != COPY_BUFFER_SIZE {
                buffer.resize(COPY_BUFFER_SIZE, 0);
            }
            copy_with(algorithm, reader, writer, &mut buffer)
        }
        // Only if a reader or writer itself calls `copy_hashing`.
        Err(_) => copy_with(algorithm, reader, writer, &mut vec![0u8; COPY_BUFFER_SIZE]),
    })
}

fn copy_with(
    algorithm: DigestAlgorithm,
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    buffer: &mut [u8],
) -> io::Result<(String, u64)> {
    let mut h = algorithm.hasher();
    let mut total = 0u64;
    loop {
        let n = match reader.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buffer[..n]);
        writer.write_all(&buffer[..n])?;
        total += n as u64;
    }
    Ok((h.finalize_b64(), total))
}

/// Hashes everything `reader` yields; returns the base64 digest and the number of bytes read.
///
/// # Errors
/// Returns the reader's I/O error.
pub fn digest_reader_b64(algorithm: DigestAlgorithm, reader: &mut dyn Read) -> io::Result<(String, u64)> {
    copy_hashing(algorithm, reader, &mut io::sink())
}

/// `b64_to_hex_id`: decodes a base64 digest and prints it as lowercase hex.
///
/// # Errors
/// [`Error::InvalidDigest`] when `b64` is not standard base64.
pub fn b64_to_hex(b64: &str) -> Result<String> {
    let bytes =
        B64.decode(b64).map_err(|_| Error::InvalidDigest { digest: b64.to_owned(), reason: "not standard base64" })?;
    Ok(to_hex(&bytes))
}

/// `hex_to_b64_id`: the inverse of [`b64_to_hex`].
///
/// # Errors
/// [`Error::InvalidDigest`] when `hex` is not an even-length hex string.
pub fn hex_to_b64(hex: &str) -> Result<String> {
    let invalid = || Error::InvalidDigest { digest: hex.to_owned(), reason: "not an even-length hex string" };
    if !hex.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    Ok(B64.encode(bytes))
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Computes the artifact digest (`ArtifactManifestV1.digest`) from `(path, digest)` pairs.
///
/// The pairs may come in any order; they are sorted by path bytes, which is the order both the Python
/// SDK (code points) and wandb-core (bytes) use for UTF-8 strings.
pub fn artifact_digest<'a>(
    algorithm: DigestAlgorithm,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut entries: Vec<(&str, &str)> = entries.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut h = algorithm.hasher();
    h.update(ARTIFACT_DIGEST_HEADER.as_bytes());
    for (path, digest) in entries {
        h.update(path.as_bytes());
        h.update(b":");
        h.update(digest.as_bytes());
        h.update(b"\n");
    }
    h.finalize_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digests_match_the_sdk() {
        assert_eq!(digest_bytes_b64(DigestAlgorithm::Md5, b""), EMPTY_MD5_B64);
        assert_eq!(digest_bytes_b64(DigestAlgorithm::Xxh128, b""), EMPTY_XXH128_B64);
    }

    #[test]
    fn hex_and_b64_round_trip() {
        let hex = b64_to_hex("QM+SH2Mt7Eytyc/KD1FhOw==").unwrap();
        assert_eq!(hex, "40cf921f632dec4cadc9cfca0f51613b");
        assert_eq!(hex_to_b64(&hex).unwrap(), "QM+SH2Mt7Eytyc/KD1FhOw==");
        assert!(b64_to_hex("not base64!").is_err());
        assert!(hex_to_b64("abc").is_err());
        assert!(hex_to_b64("zz").is_err());
    }

    #[test]
    fn empty_manifest_digest_is_the_header_hash() {
        // §11: the empty-manifest artifact digest.
        assert_eq!(artifact_digest(DigestAlgorithm::Md5, []), "64e7c61456b10382e2f3b571ac24b659");
    }

    #[test]
    fn algorithm_parses_names() {
        assert_eq!("MD5".parse::<DigestAlgorithm>().unwrap(), DigestAlgorithm::Md5);
        assert_eq!("xxh128".parse::<DigestAlgorithm>().unwrap(), DigestAlgorithm::Xxh128);
        assert!("sha1".parse::<DigestAlgorithm>().unwrap_err().contains("sha1"));
    }
}
