//! Pickle, read and written without Python and without ever evaluating code.
//!
//! The reader is a pickle virtual machine for protocols 0 to 5 that knows only plain data. Opcodes that would
//! import or call code (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`,
//! `EXT1/2/4`, `PERSID`, `BINPERSID`) are refused with an error naming them. The single exception is a short
//! allowlist of pure constructors that CPython itself emits for plain data and that this module evaluates
//! natively (it never calls them): `_codecs.encode(s, "latin1")` and `bytes()` (how protocols 0–2 store
//! `bytes`), and `bytearray(…)`.
//!
//! Containers live in an arena while the stream is read, so memo references (`BINGET` after the container was
//! filled) see the same object CPython would, and dropping any graph is flat. The final value is built only
//! after `STOP`, within limits on nesting depth and on how far shared references may expand; a stream that is
//! truncated, corrupt, or over a limit is an error and no partial value is returned.

mod reader;
mod writer;

pub(crate) use reader::decode;
pub(crate) use writer::encode;

/// The highest protocol CPython 3.8+ reads (`pickle.HIGHEST_PROTOCOL`).
pub const HIGHEST_PROTOCOL: u8 = 5;

/// The deepest nesting decoded. CPython's default recursion limit keeps the data it pickles shallower.
pub const MAX_DEPTH: usize = 1000;
