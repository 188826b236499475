//! The serialization modules: names, files, parameters, metadata, encoding and decoding.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::pickle;
use crate::value::Value;

/// Metadata value of `source_integration`: the project that wrote the output.
pub const INTEGRATION_NAME: &str = "dagster-wandb-rs";
/// Metadata value of `source_integration_version`.
pub const INTEGRATION_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A serialization module, by the name dagster-wandb's `serialization_module.name` uses.
///
/// The four Python modules of dagster-wandb come first, in its read order; then the formats this project adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Module {
    /// `dill`: a pickle stream that `dill.load` reads (plain data needs nothing dill-specific).
    Dill,
    /// `cloudpickle`: a pickle stream that `cloudpickle.load` reads.
    Cloudpickle,
    /// `joblib`: a pickle stream, zlib- or gzip-compressed when `compress` is set, that `joblib.load` reads.
    Joblib,
    /// `pickle`, the default.
    Pickle,
    /// JSON, with the JSON-view conventions for what JSON cannot hold.
    Json,
    /// MessagePack (`msgpack.unpackb` in Python), maps keep field names.
    Msgpack,
    /// bincode 2 (serde API, standard configuration): compact, Rust-only, typed decoding only.
    Bincode,
    /// postcard: compact, Rust-only, typed decoding only.
    Postcard,
    /// Raw bytes stored as they are (ONNX, PMML, …).
    Raw,
}

impl Module {
    /// Every module, in read-detection order: dagster-wandb's four first (`dill`, `cloudpickle`, `joblib`,
    /// `pickle`), then `json`, `msgpack`, `bincode`, `postcard`, `raw`.
    pub const ALL: [Module; 9] = [
        Module::Dill,
        Module::Cloudpickle,
        Module::Joblib,
        Module::Pickle,
        Module::Json,
        Module::Msgpack,
        Module::Bincode,
        Module::Postcard,
        Module::Raw,
    ];

    /// The module's name (`serialization_module.name`).
    pub fn name(self) -> &'static str {
        match self {
            Module::Dill => "dill",
            Module::Cloudpickle => "cloudpickle",
            Module::Joblib => "joblib",
            Module::Pickle => "pickle",
            Module::Json => "json",
            Module::Msgpack => "msgpack",
            Module::Bincode => "bincode",
            Module::Postcard => "postcard",
            Module::Raw => "raw",
        }
    }

    /// The file the output is stored in inside the artifact: `output.<name>` (`output.raw` for raw bytes).
    pub fn file_name(self) -> &'static str {
        match self {
            Module::Dill => "output.dill",
            Module::Cloudpickle => "output.cloudpickle",
            Module::Joblib => "output.joblib",
            Module::Pickle => "output.pickle",
            Module::Json => "output.json",
            Module::Msgpack => "output.msgpack",
            Module::Bincode => "output.bincode",
            Module::Postcard => "output.postcard",
            Module::Raw => "output.raw",
        }
    }

    /// The module called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownModule`] with dagster-wandb's message, listing the supported names.
    pub fn from_name(name: &str) -> Result<Module> {
        Module::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| Error::UnknownModule {
            name: name.to_owned(),
            supported: format!("[{}]", Module::ALL.map(|m| format!("'{}'", m.name())).join(", ")),
        })
    }

    /// True for the pickle family (streams Python's `pickle.load` understands).
    pub fn is_pickle(self) -> bool {
        matches!(self, Module::Dill | Module::Cloudpickle | Module::Joblib | Module::Pickle)
    }

    /// False for formats that need the Rust type to decode (bincode, postcard).
    pub fn is_self_describing(self) -> bool {
        !matches!(self, Module::Bincode | Module::Postcard)
    }

    /// The Python module version whose `load` this crate's streams were verified against (`cargo xtask
    /// interop`), reported as `source_<module>_version_used` as dagster-wandb reports the version it used.
    pub fn verified_python_version(self) -> Option<&'static str> {
        match self {
            Module::Dill => Some("0.4.1"),
            Module::Cloudpickle => Some("3.1.2"),
            Module::Joblib => Some("1.6.0"),
            _ => None,
        }
    }

    /// Checks `parameters` (`serialization_module.parameters`) against what the module accepts.
    ///
    /// - `pickle`: `protocol` (2–5, negative = 5; default 5), `fix_imports` (bool).
    /// - `dill`: `protocol`, and `byref`, `recurse`, `ignore` (bool) and `fmode` (0–2), which change nothing
    ///   for plain data.
    /// - `cloudpickle`: `protocol`.
    /// - `joblib`: `protocol`, `compress` (`false`/`true`, 0–9, `"zlib"`/`"gzip"`, or `["zlib", level]`),
    ///   `cache_size` (ignored, as in joblib).
    /// - `json`: `indent` (`null` or a non-negative integer).
    /// - `msgpack`, `bincode` (always its standard configuration), `postcard`, `raw`: none.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the parameter, for unknown names and wrong values.
    pub fn options(self, parameters: &Map<String, Json>) -> Result<Options> {
        let mut options = Options { module: self, ..Options::default() };
        for (name, value) in parameters {
            let invalid = |reason: &str| Error::InvalidParameter {
                module: self.name(),
                name: name.clone(),
                reason: reason.to_owned(),
            };
            match (self, name.as_str()) {
                (m, "protocol") if m.is_pickle() => {
                    let p = value.as_i64().ok_or_else(|| invalid("expected an integer"))?;
                    options.protocol = match p {
                        p if p < 0 => pickle::HIGHEST_PROTOCOL,
                        0 | 1 => return Err(invalid("protocols 0 and 1 are not written by this crate; use 2 to 5")),
                        p if p > i64::from(pickle::HIGHEST_PROTOCOL) => {
                            return Err(invalid("the highest protocol CPython 3.8+ reads is 5"));
                        }
                        p => p as u8,
                    };
                }
                (Module::Pickle, "fix_imports") => {
                    options.fix_imports = value.as_bool().ok_or_else(|| invalid("expected a boolean"))?
                }
                (Module::Dill, "byref" | "recurse" | "ignore") => {
                    value.as_bool().ok_or_else(|| invalid("expected a boolean"))?;
                }
                (Module::Dill, "fmode") => {
                    value.as_u64().filter(|m| *m <= 2).ok_or_else(|| invalid("expected 0, 1 or 2"))?;
                }
                (Module::Joblib, "compress") => options.compress = parse_compress(value).map_err(|r| invalid(&r))?,
                (Module::Joblib, "cache_size") => {
                    value.as_u64().ok_or_else(|| invalid("expected a non-negative integer"))?;
                }
                (Module::Json, "indent") => {
                    options.indent = match value {
                        Json::Null => None,
                        v => {
                            Some(v.as_u64().ok_or_else(|| invalid("expected null or a non-negative integer"))? as usize)
                        }
                    };
                }
                _ => return Err(invalid(&format!("not a parameter of {}", self.name()))),
            }
        }
        Ok(options)
    }

    /// Encodes any serialisable value. Self-describing modules go through [`Value`], so every one of them
    /// stores the same Python-shaped data; bincode and postcard encode the type directly.
    ///
    /// # Errors
    /// The value's own errors and what the module cannot store ([`Error::Unsupported`]).
    pub fn encode<T: Serialize + ?Sized>(self, value: &T, options: &Options) -> Result<Vec<u8>> {
        self.check(options)?;
        match self {
            Module::Bincode => bincode::serde::encode_to_vec(value, bincode::config::standard())
                .map_err(|e| Error::Serde(format!("bincode: {e}"))),
            Module::Postcard => postcard::to_allocvec(value).map_err(|e| Error::Serde(format!("postcard: {e}"))),
            _ => self.encode_value(&crate::to_value(value)?, options),
        }
    }

    /// Decodes into any deserialisable type.
    ///
    /// # Errors
    /// Corrupt or refused streams, and values that do not have the shape `T` expects.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T> {
        self.decode_within(bytes, &Limits::default())
    }

    /// [`Module::decode`] within `limits` instead of the defaults.
    ///
    /// # Errors
    /// As [`Module::decode`]; [`Error::Limit`] over a limit.
    pub fn decode_within<T: DeserializeOwned>(self, bytes: &[u8], limits: &Limits) -> Result<T> {
        match self {
            Module::Bincode => {
                let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                    .map_err(|e| Error::Serde(format!("bincode: {e}")))?;
                trailing("bincode", read, bytes.len())?;
                Ok(value)
            }
            Module::Postcard => {
                let (value, rest) =
                    postcard::take_from_bytes(bytes).map_err(|e| Error::Serde(format!("postcard: {e}")))?;
                trailing("postcard", bytes.len() - rest.len(), bytes.len())?;
                Ok(value)
            }
            _ => crate::from_value(self.decode_value_within(bytes, limits)?),
        }
    }

    /// Encodes an untyped value.
    ///
    /// # Errors
    /// What the module cannot store ([`Error::Unsupported`]), e.g. `raw` given anything but bytes.
    pub fn encode_value(self, value: &Value, options: &Options) -> Result<Vec<u8>> {
        self.check(options)?;
        match self {
            Module::Pickle | Module::Dill | Module::Cloudpickle => {
                let mut out = Vec::new();
                pickle::encode(value, options.protocol, options.fix_imports, &mut out)?;
                Ok(out)
            }
            Module::Joblib => {
                let mut out = Vec::new();
                pickle::encode(value, options.protocol, true, &mut out)?;
                compress(out, options.compress)
            }
            Module::Json => {
                let view = value.to_json_view();
                let mut out = match options.indent {
                    None => serde_json::to_vec(&view),
                    Some(indent) => {
                        let indent = vec![b' '; indent];
                        let mut out = Vec::new();
                        let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
                        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
                        view.serialize(&mut ser).map(|()| out)
                    }
                }
                .map_err(|e| Error::Serde(format!("json: {e}")))?;
                out.push(b'\n');
                Ok(out)
            }
            Module::Msgpack => {
                // rmp-serde would write a 128-bit integer as a byte array, which Python reads back as bytes.
                if let Some(n) = first_wide_int(value) {
                    return Err(Error::Unsupported {
                        module: "msgpack",
                        reason: format!("MessagePack has no integers beyond 64 bits, such as {n}"),
                    });
                }
                rmp_serde::to_vec(value).map_err(|e| Error::Unsupported { module: "msgpack", reason: e.to_string() })
            }
            Module::Bincode | Module::Postcard => self.encode(value, options),
            Module::Raw => match value {
                Value::Bytes(b) => Ok(b.clone()),
                Value::List(items) => items
                    .iter()
                    .map(|v| match v {
                        Value::Int(i) => u8::try_from(*i).ok(),
                        _ => None,
                    })
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| raw_error(value)),
                other => Err(raw_error(other)),
            },
        }
    }

    /// Decodes an untyped value.
    ///
    /// # Errors
    /// [`Error::NotSelfDescribing`] for bincode and postcard; refused, truncated or corrupt streams.
    pub fn decode_value(self, bytes: &[u8]) -> Result<Value> {
        self.decode_value_within(bytes, &Limits::default())
    }

    /// [`Module::decode_value`] within `limits` instead of the defaults.
    ///
    /// # Errors
    /// As [`Module::decode_value`]; [`Error::Limit`] over a limit.
    pub fn decode_value_within(self, bytes: &[u8], limits: &Limits) -> Result<Value> {
        match self {
            Module::Pickle | Module::Dill | Module::Cloudpickle => pickle::decode(bytes, limits),
            Module::Joblib => pickle::decode(&decompress(bytes, limits)?, limits),
            Module::Json => Value::from_json_text(bytes),
            Module::Msgpack => {
                let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
                let value =
                    serde::Deserialize::deserialize(&mut de).map_err(|e| Error::Serde(format!("msgpack: {e}")))?;
                trailing("msgpack", de.get_ref().position() as usize, bytes.len())?;
                Ok(value)
            }
            Module::Bincode | Module::Postcard => Err(Error::NotSelfDescribing { module: self.name() }),
            Module::Raw => Ok(Value::Bytes(bytes.to_vec())),
        }
    }

    /// The artifact metadata dagster-wandb writes for this module (`source_serialization_module`,
    /// `source_<module>_version_used`, `source_pickle_protocol_used`), plus `source_integration` and
    /// `source_integration_version` naming this project.
    pub fn metadata(self, options: &Options) -> Map<String, Json> {
        let mut map = Map::new();
        map.insert("source_serialization_module".into(), self.name().into());
        if let Some(version) = self.verified_python_version() {
            map.insert(format!("source_{}_version_used", self.name()), version.into());
        }
        if self.is_pickle() {
            map.insert("source_pickle_protocol_used".into(), options.protocol.into());
        }
        map.insert("source_integration".into(), INTEGRATION_NAME.into());
        map.insert("source_integration_version".into(), INTEGRATION_VERSION.into());
        map
    }

    /// Finds the step output in `dir`: the first `output.<module>` file in [`Module::ALL`] order, as
    /// dagster-wandb looks for `output.dill`, then `output.cloudpickle`, `output.joblib`, `output.pickle`.
    pub fn detect(dir: &Path) -> Option<(Module, PathBuf)> {
        Module::ALL.into_iter().map(|m| (m, dir.join(m.file_name()))).find(|(_, path)| path.is_file())
    }

    fn check(self, options: &Options) -> Result<()> {
        if options.module != self {
            return Err(Error::InvalidParameter {
                module: self.name(),
                name: "options".to_owned(),
                reason: format!("these options were made for {}", options.module.name()),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Module {
    type Err = Error;
    fn from_str(s: &str) -> Result<Module> {
        Module::from_name(s)
    }
}

/// Reads the step output in `dir` (see [`Module::detect`]) into `T`.
///
/// # Errors
/// [`Error::NoOutput`] when no `output.*` file is there, and the decoding errors.
pub fn read_output<T: DeserializeOwned>(dir: &Path) -> Result<(Module, T)> {
    let (module, path) = detect_or_error(dir)?;
    let bytes = std::fs::read(&path).map_err(|source| Error::Io { action: "read", path: path.clone(), source })?;
    Ok((module, module.decode(&bytes)?))
}

/// Reads the step output in `dir` as an untyped [`Value`].
///
/// # Errors
/// As [`read_output`], and [`Error::NotSelfDescribing`] for bincode and postcard.
pub fn read_output_value(dir: &Path) -> Result<(Module, Value)> {
    read_output_value_within(dir, &Limits::default())
}

/// [`read_output_value`] within `limits` instead of the defaults.
///
/// # Errors
/// As [`read_output_value`]; [`Error::Limit`] over a limit.
pub fn read_output_value_within(dir: &Path, limits: &Limits) -> Result<(Module, Value)> {
    let (module, path) = detect_or_error(dir)?;
    let bytes = std::fs::read(&path).map_err(|source| Error::Io { action: "read", path: path.clone(), source })?;
    Ok((module, module.decode_value_within(&bytes, limits)?))
}

fn detect_or_error(dir: &Path) -> Result<(Module, PathBuf)> {
    Module::detect(dir).ok_or_else(|| Error::NoOutput {
        dir: dir.to_path_buf(),
        expected: Module::ALL.map(Module::file_name).join(", "),
    })
}

/// Validated parameters of one module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    module: Module,
    protocol: u8,
    fix_imports: bool,
    compress: Compression,
    indent: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            module: Module::Pickle,
            protocol: pickle::HIGHEST_PROTOCOL,
            fix_imports: true,
            compress: Compression::None,
            indent: None,
        }
    }
}

impl Options {
    /// The module these options are for.
    pub fn module(&self) -> Module {
        self.module
    }

    /// The pickle protocol that will be written (pickle family).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }
}

impl Module {
    /// The module's default options (protocol 5, no compression, compact JSON).
    pub fn default_options(self) -> Options {
        Options { module: self, ..Options::default() }
    }
}

/// joblib's compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Zlib(u32),
    Gzip(u32),
}

fn parse_compress(value: &Json) -> std::result::Result<Compression, String> {
    let level =
        |n: u64| if n <= 9 { Ok(n as u32) } else { Err(format!("compression level {n} is not between 0 and 9")) };
    Ok(match value {
        Json::Bool(false) => Compression::None,
        Json::Bool(true) => Compression::Zlib(3),
        Json::Number(n) => match level(n.as_u64().ok_or("expected a level between 0 and 9")?)? {
            0 => Compression::None,
            l => Compression::Zlib(l),
        },
        Json::String(method) => method_level(method, 3)?,
        Json::Array(pair) => match pair.as_slice() {
            [Json::String(method), Json::Number(n)] => {
                method_level(method, level(n.as_u64().ok_or("expected a level between 0 and 9")?)?)?
            }
            _ => return Err("expected [method, level]".to_owned()),
        },
        _ => return Err("expected a boolean, a level, a method name or [method, level]".to_owned()),
    })
}

fn method_level(method: &str, level: u32) -> std::result::Result<Compression, String> {
    match method {
        "zlib" => Ok(Compression::Zlib(level)),
        "gzip" => Ok(Compression::Gzip(level)),
        other => Err(format!("compression method {other:?} is not supported (zlib and gzip are)")),
    }
}

fn compress(data: Vec<u8>, compression: Compression) -> Result<Vec<u8>> {
    let finish = |r: std::io::Result<Vec<u8>>| r.map_err(|e| Error::Compression(e.to_string()));
    match compression {
        Compression::None => Ok(data),
        Compression::Zlib(level) => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
            finish(e.write_all(&data).and_then(|()| e.finish()))
        }
        Compression::Gzip(level) => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            finish(e.write_all(&data).and_then(|()| e.finish()))
        }
    }
}

/// joblib's `_detect_compressor`: zlib streams start with 0x78, gzip with 1f 8b; anything else is a pickle.
/// The inflated stream is cut at [`Limits::decompressed_cap`] + 1 bytes, so a bomb costs no more than the cap.
fn decompress<'a>(bytes: &'a [u8], limits: &Limits) -> Result<std::borrow::Cow<'a, [u8]>> {
    let cap = limits.decompressed_cap(bytes.len());
    let mut out = Vec::new();
    let read = match bytes {
        [0x78, ..] => flate2::read::ZlibDecoder::new(bytes).take(cap.saturating_add(1)).read_to_end(&mut out),
        [0x1f, 0x8b, ..] => flate2::read::GzDecoder::new(bytes).take(cap.saturating_add(1)).read_to_end(&mut out),
        [b'B', b'Z', ..] | [0x5d, 0x00, ..] | [0xfd, b'7', b'z', b'X', b'Z', ..] | [0x04, 0x22, 0x4d, 0x18, ..] => {
            return Err(Error::Compression(
                "this joblib file uses bz2, lzma, xz or lz4 compression; only zlib and gzip are supported".to_owned(),
            ));
        }
        _ => return Ok(std::borrow::Cow::Borrowed(bytes)),
    };
    read.map_err(|e| Error::Compression(format!("corrupt compressed stream: {e}")))?;
    if out.len() as u64 > cap {
        return Err(Error::Limit {
            reason: format!(
                "this {}-byte joblib stream inflates to more than {cap} bytes, the limit for its size \
                 ({}× its size, at least {}, at most {}; raise Limits::decompression_ratio or \
                 Limits::max_decompressed_bytes, or {})",
                bytes.len(),
                limits.decompression_ratio,
                crate::limits::DECOMPRESSION_FLOOR_BYTES,
                limits.max_decompressed_bytes,
                crate::limits::MAX_DECOMPRESSED_BYTES_VAR,
            ),
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn trailing(module: &'static str, read: usize, total: usize) -> Result<()> {
    if read != total {
        return Err(Error::Serde(format!("{module}: {} bytes left over after the value", total - read)));
    }
    Ok(())
}

/// The first integer that fits neither `i64` nor `u64`, searched without recursion.
fn first_wide_int(value: &Value) -> Option<&num_bigint::BigInt> {
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        match v {
            Value::BigInt(n) if u64::try_from(n).is_err() => return Some(n),
            Value::List(items) | Value::Tuple(items) => pending.extend(items),
            Value::Dict(items) => {
                for (k, v) in items {
                    pending.push(k);
                    pending.push(v);
                }
            }
            _ => {}
        }
    }
    None
}

fn raw_error(value: &Value) -> Error {
    Error::Unsupported { module: "raw", reason: format!("raw stores bytes only, got a {}", value.type_name()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_modules_get_dagster_wandbs_message() {
        let err = Module::from_name("unsupported").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Oops! It looks like the value you provided, 'unsupported', isn't recognized as a valid serialization module. Here are the ones we do support: ['dill', 'cloudpickle', 'joblib', 'pickle', 'json', 'msgpack', 'bincode', 'postcard', 'raw']."
        );
        for m in Module::ALL {
            assert_eq!(Module::from_name(m.name()).unwrap(), m);
        }
    }

    #[test]
    fn parameters_are_checked() {
        let params = |j: serde_json::Value| j.as_object().unwrap().clone();
        assert_eq!(Module::Pickle.options(&params(serde_json::json!({"protocol": 4}))).unwrap().protocol(), 4);
        assert_eq!(Module::Pickle.options(&params(serde_json::json!({"protocol": -1}))).unwrap().protocol(), 5);
        for (module, bad) in [
            (Module::Pickle, serde_json::json!({"protocol": 1})),
            (Module::Pickle, serde_json::json!({"protocol": 6})),
            (Module::Pickle, serde_json::json!({"compress": 3})),
            (Module::Joblib, serde_json::json!({"compress": "lz4"})),
            (Module::Joblib, serde_json::json!({"compress": 10})),
            (Module::Json, serde_json::json!({"protocol": 5})),
            (Module::Msgpack, serde_json::json!({"anything": 1})),
            (Module::Dill, serde_json::json!({"fmode": 7})),
        ] {
            let err = module.options(&params(bad.clone())).unwrap_err();
            assert!(matches!(err, Error::InvalidParameter { .. }), "{module} {bad}: {err}");
        }
        let joblib =
            Module::Joblib.options(&params(serde_json::json!({"compress": ["gzip", 5], "protocol": 3}))).unwrap();
        assert_eq!(joblib.compress, Compression::Gzip(5));
    }

    #[test]
    fn metadata_names_module_protocol_and_integration() {
        let options = Module::Dill.options(&Map::new()).unwrap();
        let md = Module::Dill.metadata(&options);
        assert_eq!(md["source_serialization_module"], "dill");
        assert_eq!(md["source_dill_version_used"], "0.4.1");
        assert_eq!(md["source_pickle_protocol_used"], 5);
        assert_eq!(md["source_integration"], INTEGRATION_NAME);
        let md = Module::Json.metadata(&Module::Json.default_options());
        assert!(md.get("source_pickle_protocol_used").is_none());
    }
}
