//! The value model: what a plain-data Python object is, and its JSON view.

use std::fmt;

use num_bigint::BigInt;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};
use serde_json::{Map, Number, Value as Json};

use crate::error::{Error, Result};

/// A plain-data value as Python sees it: what pickle streams without code hold.
///
/// `Dict` keeps insertion order and allows any hashable key (`int`, `tuple`, …), as Python dicts do.
/// Integers outside `i64` are `BigInt` (never an `Int` in disguise: the constructors normalise).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` within `i64`.
    Int(i64),
    /// `int` outside `i64`.
    BigInt(BigInt),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes` (and `bytearray`).
    Bytes(Vec<u8>),
    /// `list`.
    List(Vec<Value>),
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
}

/// JSON-view markers for what JSON cannot hold (see `shared/vectors/pickle/README.md`).
const BYTES: &str = "$bytes_hex";
const TUPLE: &str = "$tuple";
const DICT_ITEMS: &str = "$dict_items";
const BIGINT: &str = "$bigint";
/// Our addition: non-finite floats (`{"$float": "nan" | "inf" | "-inf"}`).
const FLOAT: &str = "$float";
const MARKERS: [&str; 5] = [BYTES, TUPLE, DICT_ITEMS, BIGINT, FLOAT];

impl Value {
    /// An integer of any size, normalised to `Int` when it fits `i64`.
    pub fn from_bigint(n: BigInt) -> Value {
        match i64::try_from(&n) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(n),
        }
    }

    /// True when Python could use the value as a dict key (no lists or dicts, also inside tuples).
    pub fn is_hashable(&self) -> bool {
        match self {
            Value::List(_) | Value::Dict(_) => false,
            Value::Tuple(items) => items.iter().all(Value::is_hashable),
            _ => true,
        }
    }

    /// A short name of the value's Python type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
        }
    }

    /// The JSON view: plain JSON where JSON can hold the value, and `{"$bytes_hex": …}`, `{"$tuple": […]}`,
    /// `{"$dict_items": [[k, v], …]}`, `{"$bigint": "…"}` (and `{"$float": "nan"}`) where it cannot.
    ///
    /// ```
    /// use serde_modules::Value;
    /// let v = Value::Dict(vec![(Value::Int(1), Value::Tuple(vec![Value::Bytes(vec![0, 255])]))]);
    /// assert_eq!(v.to_json_view().to_string(), r#"{"$dict_items":[[1,{"$tuple":[{"$bytes_hex":"00ff"}]}]]}"#);
    /// assert_eq!(Value::from_json_view(&v.to_json_view())?, v);
    /// # Ok::<(), serde_modules::Error>(())
    /// ```
    pub fn to_json_view(&self) -> Json {
        match self {
            Value::None => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Number((*i).into()),
            Value::BigInt(n) => marker(BIGINT, Json::String(n.to_string())),
            Value::Float(f) => match Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => marker(FLOAT, Json::String(non_finite_name(*f).to_owned())),
            },
            Value::Str(s) => Json::String(s.clone()),
            Value::Bytes(b) => marker(BYTES, Json::String(hex(b))),
            Value::List(items) => Json::Array(views(items)),
            Value::Tuple(items) => marker(TUPLE, Json::Array(views(items))),
            Value::Dict(items) => {
                let plain_keys = items.iter().all(|(k, _)| matches!(k, Value::Str(_)));
                let looks_like_marker =
                    items.len() == 1 && matches!(&items[0].0, Value::Str(k) if MARKERS.contains(&k.as_str()));
                if plain_keys && !looks_like_marker {
                    let mut map = Map::new();
                    for (k, v) in items {
                        if let Value::Str(k) = k {
                            map.insert(k.clone(), v.to_json_view());
                        }
                    }
                    // Duplicate keys cannot survive a JSON object; fall back to the items form.
                    if map.len() == items.len() {
                        return Json::Object(map);
                    }
                }
                let mut pairs = Vec::with_capacity(items.len());
                for (k, v) in items {
                    pairs.push(Json::Array(vec![k.to_json_view(), v.to_json_view()]));
                }
                marker(DICT_ITEMS, Json::Array(pairs))
            }
        }
    }

    /// Parses JSON text holding a JSON view, nested at most as deep as a pickle may be (each value level may
    /// take two JSON levels, as in `{"$tuple": [...]}`).
    ///
    /// # Errors
    /// [`Error::Limit`] for deeper text, [`Error::JsonView`] for invalid JSON or malformed markers.
    pub fn from_json_text(text: &[u8]) -> Result<Value> {
        let limit = 2 * crate::pickle::MAX_DEPTH + 2;
        let depth = json_depth(text);
        if depth > limit {
            return Err(Error::Limit { reason: format!("the JSON nests more than {limit} levels deep") });
        }
        let parse = || {
            let mut de = serde_json::Deserializer::from_slice(text);
            de.disable_recursion_limit();
            let json = Json::deserialize(&mut de).and_then(|json| de.end().map(|()| json));
            Value::from_json_view(&json.map_err(|e| Error::JsonView(e.to_string()))?)
        };
        if depth <= SHALLOW_JSON {
            return parse();
        }
        // serde_json parses recursively; deep documents get a thread whose stack fits them whatever the
        // optimisation level and the caller's stack (the memory is reserved, and touched only as used).
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("json-view".to_owned())
                .stack_size(DEEP_JSON_STACK)
                .spawn_scoped(scope, parse)
                .map_err(|e| Error::Limit { reason: format!("cannot start a parser for deep JSON: {e}") })?
                .join()
                .unwrap_or_else(|_| Err(Error::Limit { reason: "the JSON parser failed on deep nesting".to_owned() }))
        })
    }

    /// Parses a JSON view (see [`Value::to_json_view`]).
    ///
    /// # Errors
    /// [`Error::JsonView`] for malformed markers.
    pub fn from_json_view(json: &Json) -> Result<Value> {
        Ok(match json {
            Json::Null => Value::None,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::BigInt(BigInt::from(u))
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => Value::Str(s.clone()),
            Json::Array(items) => Value::List(items.iter().map(Value::from_json_view).collect::<Result<_>>()?),
            Json::Object(map) => {
                if map.len() == 1 {
                    let (key, inner) = map.iter().next().expect("one entry");
                    if let Some(value) = from_marker(key, inner)? {
                        return Ok(value);
                    }
                }
                Value::Dict(
                    map.iter()
                        .map(|(k, v)| Ok((Value::Str(k.clone()), Value::from_json_view(v)?)))
                        .collect::<Result<_>>()?,
                )
            }
        })
    }
}

/// Plain loops keep one small stack frame per nesting level, even unoptimised.
fn views(items: &[Value]) -> Vec<Json> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(item.to_json_view());
    }
    out
}

/// Nesting that parses on any thread (serde_json's own default limit).
const SHALLOW_JSON: usize = 128;
/// Stack for parsing JSON nested up to the limit, with room for unoptimised builds.
const DEEP_JSON_STACK: usize = 256 << 20;

/// The deepest bracket nesting in JSON text, outside strings.
fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn marker(name: &str, inner: Json) -> Json {
    let mut map = Map::new();
    map.insert(name.to_owned(), inner);
    Json::Object(map)
}

fn from_marker(key: &str, inner: &Json) -> Result<Option<Value>> {
    let bad = |what: &str| Error::JsonView(format!("{key} needs {what}, got {inner}"));
    Ok(Some(match key {
        BYTES => {
            Value::Bytes(unhex(inner.as_str().ok_or_else(|| bad("a hex string"))?).ok_or_else(|| bad("a hex string"))?)
        }
        TUPLE => Value::Tuple(
            inner
                .as_array()
                .ok_or_else(|| bad("an array"))?
                .iter()
                .map(Value::from_json_view)
                .collect::<Result<_>>()?,
        ),
        BIGINT => {
            let text = inner.as_str().ok_or_else(|| bad("a decimal string"))?;
            Value::from_bigint(text.parse::<BigInt>().map_err(|_| bad("a decimal string"))?)
        }
        FLOAT => Value::Float(match inner.as_str() {
            Some("nan") => f64::NAN,
            Some("inf") => f64::INFINITY,
            Some("-inf") => f64::NEG_INFINITY,
            _ => return Err(bad("\"nan\", \"inf\" or \"-inf\"")),
        }),
        DICT_ITEMS => {
            let pairs = inner.as_array().ok_or_else(|| bad("an array of [key, value] pairs"))?;
            Value::Dict(
                pairs
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => Ok((Value::from_json_view(k)?, Value::from_json_view(v)?)),
                        _ => Err(bad("an array of [key, value] pairs")),
                    })
                    .collect::<Result<_>>()?,
            )
        }
        _ => return Ok(None),
    }))
}

fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "nan"
    } else if f > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::None => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::BigInt(n) => {
                if let Ok(u) = u64::try_from(n) {
                    serializer.serialize_u64(u)
                } else if let Ok(i) = i128::try_from(n) {
                    serializer.serialize_i128(i)
                } else if let Ok(u) = u128::try_from(n) {
                    serializer.serialize_u128(u)
                } else {
                    Err(ser::Error::custom(format!("integer {n} does not fit in 128 bits")))
                }
            }
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            Value::Dict(items) => {
                let mut map = serializer.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a self-describing value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_i128<E>(self, v: i128) -> std::result::Result<Value, E> {
        Ok(Value::from_bigint(BigInt::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from_bigint(BigInt::from(v)))
    }
    fn visit_u128<E>(self, v: u128) -> std::result::Result<Value, E> {
        Ok(Value::from_bigint(BigInt::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_char<E>(self, v: char) -> std::result::Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<Value, Value>()? {
            items.push((k, v));
        }
        Ok(Value::Dict(items))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> std::result::Result<Value, A::Error> {
        use de::VariantAccess;
        let (name, variant): (Value, _) = data.variant()?;
        let content: Value = variant.newtype_variant()?;
        Ok(Value::Dict(vec![(name, content)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_view_round_trips_awkward_values() {
        let v = Value::Dict(vec![(Value::Str("$tuple".into()), Value::Int(1))]);
        // A dict whose only key looks like a marker must not be read back as the marker.
        assert_eq!(Value::from_json_view(&v.to_json_view()).unwrap(), v);
        let v = Value::List(vec![
            Value::Float(f64::INFINITY),
            Value::Float(-0.0),
            Value::from_bigint(BigInt::from(u64::MAX)),
            Value::from_bigint(BigInt::from(-5)),
            Value::Dict(vec![(Value::Str("a".into()), Value::None), (Value::Str("a".into()), Value::Bool(true))]),
        ]);
        assert_eq!(Value::from_json_view(&v.to_json_view()).unwrap(), v);
        assert!(matches!(Value::from_bigint(BigInt::from(-5)), Value::Int(-5)));
    }

    #[test]
    fn bad_markers_are_errors() {
        for bad in [
            r#"{"$bytes_hex": "abc"}"#,
            r#"{"$tuple": 1}"#,
            r#"{"$bigint": "x"}"#,
            r#"{"$dict_items": [[1]]}"#,
            r#"{"$float": "big"}"#,
        ] {
            let json: Json = serde_json::from_str(bad).unwrap();
            assert!(Value::from_json_view(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_text_nests_as_deep_as_pickles_and_no_deeper() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        // Parsing 2000 levels works from this ordinary 2 MiB test thread, and so does dropping the result.
        let parsed = Value::from_json_text(deep(2000).as_bytes()).unwrap();
        let view = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || parsed.to_json_view().to_string())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(view, deep(2000));
        drop(Value::from_json_text(deep(2000).as_bytes()).unwrap());
        let err = Value::from_json_text(deep(5000).as_bytes()).unwrap_err();
        assert!(matches!(err, Error::Limit { .. }), "{err}");
        // Brackets inside strings do not count.
        assert!(Value::from_json_text(format!("\"{}\"", "[".repeat(5000)).as_bytes()).is_ok());
        assert!(Value::from_json_text(b"[1] [2]").is_err(), "trailing data");
        assert!(Value::from_json_text(b"{\"$tuple\": 3}").is_err());
    }

    #[test]
    fn hashability_follows_python() {
        assert!(Value::Tuple(vec![Value::Int(1), Value::Str("x".into())]).is_hashable());
        assert!(!Value::Tuple(vec![Value::List(vec![])]).is_hashable());
        assert!(!Value::Dict(vec![]).is_hashable());
    }
}
