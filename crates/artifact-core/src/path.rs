//! Logical paths: where a file sits inside an artifact.

use std::fmt;

use crate::error::{Error, Result};

/// A normalised, relative, `/`-separated path inside an artifact (the SDK's `LogicalPath`).
///
/// Construction normalises as POSIX does (`a//b/./c` becomes `a/b/c`, a trailing `/` is dropped) and rejects
/// what the SDK rejects: empty paths and `.`, absolute paths (POSIX or a Windows anchor such as `C:\x`), and any
/// `..` component. It also rejects NUL, which no filesystem accepts. On Windows, `\` is a separator, as in the SDK.
///
/// ```
/// use artifact_core::LogicalPath;
/// assert_eq!(LogicalPath::new("a//b/./c/").unwrap().as_str(), "a/b/c");
/// assert!(LogicalPath::new("../etc/passwd").is_err());
/// assert!(LogicalPath::new("/etc/passwd").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalPath(String);

impl LogicalPath {
    /// Normalises and validates `path`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] naming the path as given.
    pub fn new(path: &str) -> Result<Self> {
        let invalid = || Error::InvalidPath { path: path.to_owned() };
        let converted;
        let candidate = if cfg!(windows) {
            converted = path.replace('\\', "/");
            converted.as_str()
        } else {
            path
        };
        if candidate.contains('\0') || candidate.starts_with('/') || has_windows_anchor(candidate) {
            return Err(invalid());
        }
        let mut parts = Vec::new();
        for part in candidate.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(invalid()),
                part => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(invalid());
        }
        Ok(LogicalPath(parts.join("/")))
    }

    /// Joins an optional prefix (the `name` of `add_dir`/`add_reference`) and a relative path, then validates.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] when the joined path is invalid.
    pub fn join(prefix: Option<&str>, relative: &str) -> Result<Self> {
        match prefix {
            Some(prefix) if !prefix.is_empty() => {
                // `os.path.join` semantics: an absolute right side discards the prefix, which `new` then rejects.
                if relative.starts_with('/') {
                    return LogicalPath::new(relative);
                }
                LogicalPath::new(&format!("{prefix}/{relative}"))
            }
            _ => LogicalPath::new(relative),
        }
    }

    /// Checks that a path read from a manifest is already in canonical form and safe to materialise under a
    /// download root: relative, no `.`/`..`/empty components, no NUL, no Windows anchor, and on Windows no `\`
    /// or `:`. Unlike [`LogicalPath::new`] it does not normalise, because a non-canonical manifest path means
    /// the manifest did not come from a W&B client and two entries could collide after normalisation.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] naming the path.
    pub fn from_manifest_key(path: &str) -> Result<Self> {
        let invalid = || Error::InvalidPath { path: path.to_owned() };
        if path.is_empty() || path.contains('\0') || path.starts_with('/') || has_windows_anchor(path) {
            return Err(invalid());
        }
        if cfg!(windows) && (path.contains('\\') || path.contains(':')) {
            return Err(invalid());
        }
        if path.split('/').any(|part| matches!(part, "" | "." | "..")) {
            return Err(invalid());
        }
        Ok(LogicalPath(path.to_owned()))
    }

    /// Checks a path a store or server is asked to keep in a manifest: [`LogicalPath::from_manifest_key`]'s rules
    /// as on Windows (no `\\`), and no control character — so a manifest any client logs, every client on every
    /// platform can download.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] naming the path.
    pub fn from_stored_key(path: &str) -> Result<Self> {
        if path.contains('\\') || path.chars().any(char::is_control) {
            return Err(Error::InvalidPath { path: path.to_owned() });
        }
        Self::from_manifest_key(path)
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The components, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Consumes the path, returning the string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// True for a Windows drive or UNC anchor (`C:`, `C:\`, `\x`, `\\server`), which the SDK rejects everywhere.
fn has_windows_anchor(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'\\') || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

impl fmt::Display for LogicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LogicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for LogicalPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for LogicalPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        LogicalPath::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::LogicalPath;

    #[test]
    fn normalises_like_pure_posix_path() {
        // Expected values from CPython 3.11 `str(PurePosixPath(s))`.
        for (input, expected) in [("a//b/./c", "a/b/c"), ("./a", "a"), ("a/", "a"), ("a\\b", "a\\b")] {
            if cfg!(windows) && input.contains('\\') {
                continue;
            }
            assert_eq!(LogicalPath::new(input).unwrap().as_str(), expected, "{input}");
        }
    }

    #[test]
    fn rejects_what_the_sdk_rejects() {
        for bad in ["", ".", "./", "/abs", "//a", "a/../b", "..", "C:\\x", "C:x", "\\x", "a\0b"] {
            let err = LogicalPath::new(bad).unwrap_err();
            assert!(err.to_string().starts_with("Invalid artifact path: "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn join_applies_prefix() {
        assert_eq!(LogicalPath::join(Some("data/v1"), "train/a.csv").unwrap().as_str(), "data/v1/train/a.csv");
        assert_eq!(LogicalPath::join(None, "a").unwrap().as_str(), "a");
        assert_eq!(LogicalPath::join(Some(""), "a").unwrap().as_str(), "a");
        assert!(LogicalPath::join(Some("x"), "/abs").is_err());
        assert!(LogicalPath::join(Some(".."), "a").is_err());
    }

    #[test]
    fn manifest_keys_must_be_canonical() {
        assert!(LogicalPath::from_manifest_key("a/b.txt").is_ok());
        for bad in ["", "/a", "a//b", "./a", "a/./b", "a/../b", "..", "a/", "C:x", "\\\\srv\\x", "a\0"] {
            assert!(LogicalPath::from_manifest_key(bad).is_err(), "{bad:?}");
        }
    }
}
