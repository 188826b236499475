//! Step outputs that Python and Rust both read — and reading never executes code.
//!
//! dagster-wandb stores a step's return value in its artifact as `output.pickle` (or `.dill`, `.cloudpickle`,
//! `.joblib`) and loads it back with Python's unpicklers, which run whatever code the file names. This crate
//! writes those files so Python loads them, reads the ones Python wrote, and refuses, by name, every opcode that
//! would need code to rebuild a value (see [`Error::Refused`]). It adds formats for Rust-to-Rust steps and
//! for payloads that are already bytes.
//!
//! | module | file | reads | writes |
//! |---|---|---|---|
//! | `dill`, `cloudpickle`, `pickle` | `output.<module>` | protocols 0–5, plain data | protocols 2–5 (default 5) |
//! | `joblib` | `output.joblib` | the same, zlib or gzip compressed or not | the same, `compress` as joblib |
//! | `json` | `output.json` | JSON view (below) | JSON view |
//! | `msgpack` | `output.msgpack` | any MessagePack | maps with field names; tuples as arrays |
//! | `bincode`, `postcard` | `output.<module>` | into a Rust type only | any `Serialize` |
//! | `raw` | `output.raw` | bytes | bytes |
//!
//! Reading picks the module from the first `output.*` file present, in the order of [`Module::ALL`]:
//! dagster-wandb's own order (`dill`, `cloudpickle`, `joblib`, `pickle`) first.
//!
//! The value model ([`Value`]) is Python's plain data: `None`, `bool`, `int` of any size, `float`, `str`,
//! `bytes`, `list`, `tuple` and `dict` with any hashable keys in insertion order. Any `T: Serialize` converts to
//! it ([`to_value`]) and any `T: Deserialize` from it ([`from_value`]); its JSON view writes what JSON cannot
//! hold as `{"$bytes_hex": …}`, `{"$tuple": […]}`, `{"$dict_items": [[k, v], …]}` and `{"$bigint": "…"}`.
//!
//! [`Table`] writes and reads W&B Tables byte-identically to `wandb` 0.31.0.
//!
//! # Example
//!
//! ```
//! use serde_modules::Module;
//!
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Metrics { epoch: u32, loss: f64, tags: Vec<String> }
//!
//! let metrics = Metrics { epoch: 3, loss: 0.25, tags: vec!["best".into()] };
//! let options = Module::Pickle.default_options();
//! let bytes = Module::Pickle.encode(&metrics, &options)?;   // what `pickle.load` reads as a dict
//! assert_eq!(Module::Pickle.decode::<Metrics>(&bytes)?, metrics);
//! assert_eq!(Module::Pickle.metadata(&options)["source_pickle_protocol_used"], 5);
//!
//! // A pickle that calls code is refused, naming the opcode; nothing runs.
//! let evil = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.";
//! let err = Module::Pickle.decode_value(evil).unwrap_err();
//! assert!(err.to_string().starts_with("refusing pickle opcode GLOBAL 'posix system' at byte 2"));
//! # Ok::<(), serde_modules::Error>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod de;
mod error;
mod limits;
mod modules;
mod pickle;
mod pyjson;
mod ser;
mod table;
mod value;

pub use de::from_value;
pub use error::{Error, Result};
pub use limits::{
    DECOMPRESSION_FLOOR_BYTES, DEFAULT_DECOMPRESSION_RATIO, DEFAULT_MAX_DECOMPRESSED_BYTES, DEFAULT_MAX_INT_DIGITS,
    Limits, MAX_DECOMPRESSED_BYTES_VAR, MAX_INT_DIGITS_VAR, MIN_MAX_INT_DIGITS,
};
pub use modules::{
    INTEGRATION_NAME, INTEGRATION_VERSION, Module, Options, read_output, read_output_value, read_output_value_within,
};
pub use pickle::{HIGHEST_PROTOCOL, MAX_DEPTH};
pub use ser::to_value;
pub use table::{PARTITIONED_TABLE_FILE_SUFFIX, PartitionedTable, TABLE_FILE_SUFFIX, Table};
pub use value::Value;
