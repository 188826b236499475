//! The crate's one error type.

use std::path::PathBuf;

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong encoding, decoding or detecting a step output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pickle opcode that would need Python code to rebuild its value. Nothing was evaluated.
    #[error("refusing pickle opcode {opcode}{detail} at byte {position}: {reason}; nothing was evaluated")]
    Refused {
        /// The opcode's name, as `pickletools` calls it (`GLOBAL`, `REDUCE`, …).
        opcode: &'static str,
        /// Its argument where that helps (` 'posix system'`), or empty.
        detail: String,
        /// Offset of the opcode in the (decompressed) stream.
        position: usize,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The stream ends before the value is complete.
    #[error("truncated pickle stream: {needed} needed at byte {position}, but the stream ends")]
    Truncated {
        /// What was being read.
        needed: &'static str,
        /// Where.
        position: usize,
    },
    /// The stream is not a well-formed pickle.
    #[error("corrupt pickle stream at byte {position}: {reason}")]
    Corrupt {
        /// Where the problem was found.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A value is too deep or expands too much to be materialised safely.
    #[error("{reason}")]
    Limit {
        /// Which limit was hit.
        reason: String,
    },
    /// The value holds something the chosen module cannot represent.
    #[error("{module} cannot store this value: {reason}")]
    Unsupported {
        /// The module.
        module: &'static str,
        /// What it cannot store.
        reason: String,
    },
    /// The serialization module name is not one this crate knows.
    #[error(
        "Oops! It looks like the value you provided, '{name}', isn't recognized as a valid serialization module. Here are the ones we do support: {supported}."
    )]
    UnknownModule {
        /// The name given.
        name: String,
        /// The supported names, as a Python list.
        supported: String,
    },
    /// A parameter the module does not accept, or a value of the wrong kind.
    #[error("invalid parameter {name:?} for serialization module {module:?}: {reason}")]
    InvalidParameter {
        /// The module.
        module: &'static str,
        /// The parameter.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An untyped decode was asked of a format that needs the type to decode.
    #[error("{module} is not self-describing: decode it into a Rust type (decode::<T>) rather than an untyped Value")]
    NotSelfDescribing {
        /// The module.
        module: &'static str,
    },
    /// A serde (de)serialization error, from our value model or from a format crate.
    #[error("{0}")]
    Serde(String),
    /// JSON that is not a valid view of a value.
    #[error("invalid JSON view of a value: {0}")]
    JsonView(String),
    /// A W&B Table that cannot be built, written or read.
    #[error("W&B Table: {0}")]
    Table(String),
    /// A compressed joblib stream could not be read or written.
    #[error("joblib compression: {0}")]
    Compression(String),
    /// No `output.*` file of a known module is in the directory.
    #[error("no step output in {}: expected one of {expected}", .dir.display())]
    NoOutput {
        /// The directory searched.
        dir: PathBuf,
        /// The file names looked for, in order.
        expected: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Serde(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Serde(msg.to_string())
    }
}
