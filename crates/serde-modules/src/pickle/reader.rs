//! The pickle virtual machine.

use std::collections::HashMap;
use std::rc::Rc;

use num_bigint::BigInt;

use super::MAX_DEPTH;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::value::Value;

/// An object on the VM's stack. Containers are indices into the arena, so copies share the container, as
/// Python references do.
#[derive(Clone, Debug)]
enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Big(Rc<BigInt>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    List(usize),
    Tuple(usize),
    Dict(usize),
    /// An allowlisted constructor, waiting for `REDUCE`.
    Callable(Native),
}

/// The pure constructors CPython emits for plain data, evaluated here without calling anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Native {
    /// `_codecs.encode(str, "latin1")`: bytes in protocols 0–2.
    CodecsEncode,
    /// `bytes()`: the empty bytes in protocols 0–2.
    Bytes,
    /// `bytearray(...)`.
    ByteArray,
}

/// A key normalised as Python compares dict keys (`1 == 1.0 == True`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    Big(BigInt),
    Float(u64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Vec<Key>),
}

const DICT_INDEX_THRESHOLD: usize = 16;

#[derive(Default)]
struct Dict {
    items: Vec<(Obj, Obj)>,
    /// Key -> position, built once the dict is large enough for linear search to hurt.
    index: Option<HashMap<Key, usize>>,
    keys: Vec<Option<Key>>,
}

struct Machine<'a> {
    data: &'a [u8],
    /// Parsing decimal text is quadratic, so CPython bounds its digits and so do we.
    limits: Limits,
    pos: usize,
    /// Where the opcode being executed starts, for messages.
    op_pos: usize,
    stack: Vec<Obj>,
    metastack: Vec<Vec<Obj>>,
    memo: HashMap<u64, Obj>,
    lists: Vec<Vec<Obj>>,
    tuples: Vec<Vec<Obj>>,
    dicts: Vec<Dict>,
    protocol: u8,
}

/// Decodes a whole pickle stream into a [`Value`].
pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Value> {
    let mut m = Machine {
        data,
        limits: *limits,
        pos: 0,
        op_pos: 0,
        stack: Vec::new(),
        metastack: Vec::new(),
        memo: HashMap::new(),
        lists: Vec::new(),
        tuples: Vec::new(),
        dicts: Vec::new(),
        protocol: 0,
    };
    let root = m.run()?;
    Materializer::new(&m, data.len()).build(&root)
}

const CODE: &str = "rebuilding this value would import or call Python code; only plain data (None, bool, int, float, str, bytes, list, tuple, dict) is loaded";

impl<'a> Machine<'a> {
    fn run(&mut self) -> Result<Obj> {
        loop {
            self.op_pos = self.pos;
            let op = self.byte("an opcode")?;
            match op {
                // STOP: the value is the top of the stack; anything below it is ignored, as CPython does.
                b'.' => return self.pop(),
                0x80 => {
                    // PROTO
                    let protocol = self.byte("the protocol number")?;
                    if protocol > super::HIGHEST_PROTOCOL {
                        return Err(self.corrupt(format!("unsupported pickle protocol: {protocol}")));
                    }
                    self.protocol = protocol;
                }
                0x95 => {
                    // FRAME: framing only helps readers that buffer; the length is checked, not needed.
                    let length = self.u64("the frame length")?;
                    if length > (self.data.len() - self.pos) as u64 {
                        return Err(Error::Truncated { needed: "the rest of a frame", position: self.data.len() });
                    }
                }
                b'(' => {
                    // MARK
                    let stack = std::mem::take(&mut self.stack);
                    self.metastack.push(stack);
                }
                b'N' => self.stack.push(Obj::None),
                0x88 => self.stack.push(Obj::Bool(true)),
                0x89 => self.stack.push(Obj::Bool(false)),
                b'I' => {
                    let line = self.line("an INT argument")?;
                    let obj = match line {
                        b"00" => Obj::Bool(false),
                        b"01" => Obj::Bool(true),
                        digits => self.parse_int(digits)?,
                    };
                    self.stack.push(obj);
                }
                b'J' => {
                    let n = i32::from_le_bytes(self.array("a BININT argument")?);
                    self.stack.push(Obj::Int(n.into()));
                }
                b'K' => {
                    let n = self.byte("a BININT1 argument")?;
                    self.stack.push(Obj::Int(n.into()));
                }
                b'M' => {
                    let n = u16::from_le_bytes(self.array("a BININT2 argument")?);
                    self.stack.push(Obj::Int(n.into()));
                }
                b'L' => {
                    let line = self.line("a LONG argument")?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    let obj = self.parse_int(digits)?;
                    self.stack.push(obj);
                }
                0x8a => {
                    let n = self.byte("a LONG1 length")? as usize;
                    let bytes = self.take(n, "LONG1 bytes")?;
                    self.stack.push(int_from_le(bytes));
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.array("a LONG4 length")?);
                    let n = usize::try_from(n).map_err(|_| self.corrupt("LONG4 with a negative length"))?;
                    let bytes = self.take(n, "LONG4 bytes")?;
                    self.stack.push(int_from_le(bytes));
                }
                b'F' => {
                    let line = self.line("a FLOAT argument")?;
                    let text = std::str::from_utf8(line).map_err(|_| self.corrupt("FLOAT argument is not text"))?;
                    let f = text.trim().parse::<f64>().map_err(|_| self.corrupt(format!("invalid FLOAT {text:?}")))?;
                    self.stack.push(Obj::Float(f));
                }
                b'G' => {
                    let f = f64::from_be_bytes(self.array("a BINFLOAT argument")?);
                    self.stack.push(Obj::Float(f));
                }
                b'S' => {
                    let line = self.line("a STRING argument")?;
                    let bytes = unquote_string(line).ok_or_else(|| self.corrupt("invalid STRING argument"))?;
                    let s = self.ascii(&bytes, "STRING")?;
                    self.stack.push(s);
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.array("a BINSTRING length")?);
                    let n = usize::try_from(n).map_err(|_| self.corrupt("BINSTRING with a negative length"))?;
                    let bytes = self.take(n, "BINSTRING bytes")?;
                    let s = self.ascii(bytes, "BINSTRING")?;
                    self.stack.push(s);
                }
                b'U' => {
                    let n = self.byte("a SHORT_BINSTRING length")? as usize;
                    let bytes = self.take(n, "SHORT_BINSTRING bytes")?;
                    let s = self.ascii(bytes, "SHORT_BINSTRING")?;
                    self.stack.push(s);
                }
                b'V' => {
                    let line = self.line("a UNICODE argument")?;
                    let s = raw_unicode_unescape(line).ok_or_else(|| self.corrupt("invalid UNICODE argument"))?;
                    self.stack.push(Obj::Str(s.into()));
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.array("a BINUNICODE length")?) as usize;
                    let s = self.utf8(n, "BINUNICODE")?;
                    self.stack.push(s);
                }
                0x8c => {
                    let n = self.byte("a SHORT_BINUNICODE length")? as usize;
                    let s = self.utf8(n, "SHORT_BINUNICODE")?;
                    self.stack.push(s);
                }
                0x8d => {
                    let n = self.len64("a BINUNICODE8 length")?;
                    let s = self.utf8(n, "BINUNICODE8")?;
                    self.stack.push(s);
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.array("a BINBYTES length")?) as usize;
                    let b = self.take(n, "BINBYTES bytes")?;
                    self.stack.push(Obj::Bytes(b.into()));
                }
                b'C' => {
                    let n = self.byte("a SHORT_BINBYTES length")? as usize;
                    let b = self.take(n, "SHORT_BINBYTES bytes")?;
                    self.stack.push(Obj::Bytes(b.into()));
                }
                0x8e | 0x96 => {
                    // BINBYTES8, BYTEARRAY8 (a bytearray is bytes in the value model)
                    let n = self.len64("a BINBYTES8 length")?;
                    let b = self.take(n, "BINBYTES8 bytes")?;
                    self.stack.push(Obj::Bytes(b.into()));
                }
                b']' => {
                    self.lists.push(Vec::new());
                    self.stack.push(Obj::List(self.lists.len() - 1));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.lists.push(items);
                    self.stack.push(Obj::List(self.lists.len() - 1));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top_list()?;
                    self.lists[list].push(item);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top_list()?;
                    self.lists[list].extend(items);
                }
                b')' => {
                    self.tuples.push(Vec::new());
                    self.stack.push(Obj::Tuple(self.tuples.len() - 1));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_tuple(items);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.corrupt(format!("TUPLE{n} needs {n} values on the stack")));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_tuple(items);
                }
                b'}' => {
                    self.dicts.push(Dict::default());
                    self.stack.push(Obj::Dict(self.dicts.len() - 1));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.dicts.push(Dict::default());
                    let dict = self.dicts.len() - 1;
                    self.set_items(dict, items)?;
                    self.stack.push(Obj::Dict(dict));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top_dict()?;
                    self.set_items(dict, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top_dict()?;
                    self.set_items(dict, items)?;
                }
                b'0' => {
                    // POP: also pops a mark when the stack is empty, as CPython does.
                    if self.stack.pop().is_none() {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.stack.last().cloned().ok_or_else(|| self.corrupt("DUP on an empty stack"))?;
                    self.stack.push(top);
                }
                b'p' => {
                    let line = self.line("a PUT argument")?;
                    let index = self.parse_index(line)?;
                    self.put(index)?;
                }
                b'q' => {
                    let index = self.byte("a BINPUT index")?;
                    self.put(index.into())?;
                }
                b'r' => {
                    let index = u32::from_le_bytes(self.array("a LONG_BINPUT index")?);
                    self.put(index.into())?;
                }
                0x94 => {
                    let index = self.memo.len() as u64;
                    self.put(index)?;
                }
                b'g' => {
                    let line = self.line("a GET argument")?;
                    let index = self.parse_index(line)?;
                    self.get(index)?;
                }
                b'h' => {
                    let index = self.byte("a BINGET index")?;
                    self.get(index.into())?;
                }
                b'j' => {
                    let index = u32::from_le_bytes(self.array("a LONG_BINGET index")?);
                    self.get(index.into())?;
                }
                b'c' => {
                    let module = self.line("a GLOBAL module")?.to_vec();
                    let name = self.line("a GLOBAL name")?.to_vec();
                    let (module, name) =
                        (String::from_utf8_lossy(&module).into_owned(), String::from_utf8_lossy(&name).into_owned());
                    let callable = self.allowlisted("GLOBAL", &module, &name)?;
                    self.stack.push(callable);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Obj::Str(module), Obj::Str(name)) = (module, name) else {
                        return Err(self.corrupt("STACK_GLOBAL needs two strings"));
                    };
                    let callable = self.allowlisted("STACK_GLOBAL", &module, &name)?;
                    self.stack.push(callable);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.reduce(callable, args)?;
                    self.stack.push(value);
                }
                0x8f..=0x91 => {
                    return Err(Error::Unsupported {
                        module: "pickle",
                        reason: format!(
                            "sets are not part of the value model ({} at byte {}); convert the set to a list or tuple before pickling",
                            opcode_name(op),
                            self.op_pos
                        ),
                    });
                }
                0x97 | 0x98 => {
                    return Err(Error::Unsupported {
                        module: "pickle",
                        reason: format!(
                            "{} at byte {} refers to an out-of-band buffer, which a file cannot carry",
                            opcode_name(op),
                            self.op_pos
                        ),
                    });
                }
                b'b' | b'i' | b'o' | 0x81 | 0x92 | 0x82 | 0x83 | 0x84 | b'P' | b'Q' => {
                    return Err(Error::Refused {
                        opcode: opcode_name(op),
                        detail: String::new(),
                        position: self.op_pos,
                        reason: CODE,
                    });
                }
                other => return Err(self.corrupt(format!("unknown opcode 0x{other:02x}"))),
            }
        }
    }

    /// Accepts a global only if it is one of the pure constructors evaluated natively.
    fn allowlisted(&self, opcode: &'static str, module: &str, name: &str) -> Result<Obj> {
        let native = match (module, name) {
            ("_codecs", "encode") => Some(Native::CodecsEncode),
            ("__builtin__" | "builtins", "bytes") => Some(Native::Bytes),
            ("__builtin__" | "builtins", "bytearray") => Some(Native::ByteArray),
            _ => None,
        };
        native.map(Obj::Callable).ok_or_else(|| Error::Refused {
            opcode,
            detail: format!(" '{module} {name}'"),
            position: self.op_pos,
            reason: CODE,
        })
    }

    fn reduce(&self, callable: Obj, args: Obj) -> Result<Obj> {
        let Obj::Callable(native) = callable else {
            return Err(Error::Refused {
                opcode: "REDUCE",
                detail: String::new(),
                position: self.op_pos,
                reason: CODE,
            });
        };
        let Obj::Tuple(args) = args else {
            return Err(self.corrupt("REDUCE arguments are not a tuple"));
        };
        let args = &self.tuples[args];
        let latin1 = |s: &str| -> Option<Vec<u8>> { s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect() };
        let bytes = match (native, args.as_slice()) {
            (Native::CodecsEncode, [Obj::Str(s), Obj::Str(encoding)]) if is_latin1(encoding) => latin1(s),
            (Native::Bytes | Native::ByteArray, []) => Some(Vec::new()),
            (Native::ByteArray, [Obj::Bytes(b)]) => Some(b.to_vec()),
            (Native::ByteArray, [Obj::Str(s), Obj::Str(encoding)]) if is_latin1(encoding) => latin1(s),
            _ => None,
        };
        bytes.map(|b| Obj::Bytes(b.into())).ok_or_else(|| Error::Refused {
            opcode: "REDUCE",
            detail: format!(" ({native:?} with arguments other than plain bytes)"),
            position: self.op_pos,
            reason: CODE,
        })
    }

    fn push_tuple(&mut self, items: Vec<Obj>) {
        self.tuples.push(items);
        self.stack.push(Obj::Tuple(self.tuples.len() - 1));
    }

    fn set_items(&mut self, dict: usize, items: Vec<Obj>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.corrupt("SETITEMS with an odd number of values"));
        }
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            let normalized = self.key(&key, 0)?;
            let d = &mut self.dicts[dict];
            let existing = match (&normalized, &d.index) {
                (None, _) => None,
                (Some(k), Some(index)) => index.get(k).copied(),
                (Some(k), None) => d.keys.iter().position(|x| x.as_ref() == Some(k)),
            };
            match existing {
                // Python keeps the first key and its position, with the new value.
                Some(i) => d.items[i].1 = value,
                None => {
                    if let (Some(k), Some(index)) = (&normalized, &mut d.index) {
                        index.insert(k.clone(), d.items.len());
                    }
                    d.keys.push(normalized);
                    d.items.push((key, value));
                    if d.index.is_none() && d.items.len() > DICT_INDEX_THRESHOLD {
                        let index = d.keys.iter().enumerate().filter_map(|(i, k)| k.clone().map(|k| (k, i))).collect();
                        d.index = Some(index);
                    }
                }
            }
        }
        Ok(())
    }

    /// The dict key of `obj`, or `None` for a key that equals nothing (NaN). Unhashable keys are errors.
    fn key(&self, obj: &Obj, depth: usize) -> Result<Option<Key>> {
        if depth > 64 {
            return Err(Error::Limit {
                reason: format!("a dict key at byte {} nests tuples more than 64 deep", self.op_pos),
            });
        }
        Ok(Some(match obj {
            Obj::None => Key::None,
            Obj::Bool(b) => Key::Int((*b).into()),
            Obj::Int(i) => Key::Int(*i),
            Obj::Big(n) => Key::Big((**n).clone()),
            Obj::Float(f) if f.is_nan() => return Ok(None),
            Obj::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Key::Int(*f as i64),
            Obj::Float(f) => Key::Float(f.to_bits()),
            Obj::Str(s) => Key::Str(s.clone()),
            Obj::Bytes(b) => Key::Bytes(b.clone()),
            Obj::Tuple(t) => {
                let mut keys = Vec::with_capacity(self.tuples[*t].len());
                for item in &self.tuples[*t] {
                    match self.key(item, depth + 1)? {
                        Some(k) => keys.push(k),
                        None => return Ok(None),
                    }
                }
                Key::Tuple(keys)
            }
            Obj::List(_) | Obj::Dict(_) | Obj::Callable(_) => {
                return Err(self.corrupt(format!("unhashable type: '{}' used as a dict key", kind(obj))));
            }
        }))
    }

    fn top_list(&self) -> Result<usize> {
        match self.stack.last() {
            Some(Obj::List(i)) => Ok(*i),
            _ => Err(self.corrupt("APPEND(S) without a list below")),
        }
    }

    fn top_dict(&self) -> Result<usize> {
        match self.stack.last() {
            Some(Obj::Dict(i)) => Ok(*i),
            _ => Err(self.corrupt("SETITEM(S) without a dict below")),
        }
    }

    fn put(&mut self, index: u64) -> Result<()> {
        let top = self.stack.last().cloned().ok_or_else(|| self.corrupt("memo PUT on an empty stack"))?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn get(&mut self, index: u64) -> Result<()> {
        let obj =
            self.memo.get(&index).cloned().ok_or_else(|| self.corrupt(format!("memo GET of unknown index {index}")))?;
        self.stack.push(obj);
        Ok(())
    }

    fn pop(&mut self) -> Result<Obj> {
        self.stack.pop().ok_or_else(|| self.corrupt("a value is needed but the stack is empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Obj>> {
        let below = self.metastack.pop().ok_or_else(|| self.corrupt("no MARK to pop to"))?;
        Ok(std::mem::replace(&mut self.stack, below))
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt { position: self.op_pos, reason: reason.into() }
    }

    fn byte(&mut self, needed: &'static str) -> Result<u8> {
        let b = *self.data.get(self.pos).ok_or(Error::Truncated { needed, position: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize, needed: &'static str) -> Result<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let end = self.pos.checked_add(n).filter(|end| *end <= data.len());
        let end = end.ok_or(Error::Truncated { needed, position: self.pos })?;
        let slice = &data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, needed: &'static str) -> Result<[u8; N]> {
        Ok(self.take(N, needed)?.try_into().expect("took N bytes"))
    }

    fn u64(&mut self, needed: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(needed)?))
    }

    fn len64(&mut self, needed: &'static str) -> Result<usize> {
        let n = self.u64(needed)?;
        usize::try_from(n).map_err(|_| Error::Truncated { needed, position: self.pos })
    }

    fn line(&mut self, needed: &'static str) -> Result<&'a [u8]> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        let end = rest.iter().position(|b| *b == b'\n').ok_or(Error::Truncated { needed, position: self.pos })?;
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    fn utf8(&mut self, n: usize, opcode: &'static str) -> Result<Obj> {
        let position = self.pos;
        let bytes = self.take(n, opcode)?;
        let s = std::str::from_utf8(bytes).map_err(|_| Error::Corrupt {
            position,
            reason: format!("{opcode} is not valid UTF-8 (strings with lone surrogates are not supported)"),
        })?;
        Ok(Obj::Str(s.into()))
    }

    /// Python 2 `str` opcodes decode as ASCII, as `pickle.load`'s default `encoding="ASCII"` does.
    fn ascii(&self, bytes: &[u8], opcode: &str) -> Result<Obj> {
        if !bytes.is_ascii() {
            return Err(self.corrupt(format!(
                "{opcode} holds non-ASCII bytes; Python 3 loads these only with an explicit encoding"
            )));
        }
        Ok(Obj::Str(String::from_utf8_lossy(bytes).into()))
    }

    fn parse_int(&self, digits: &[u8]) -> Result<Obj> {
        let count = digits.iter().filter(|b| b.is_ascii_digit()).count();
        self.limits.check_int_digits(count, self.op_pos)?;
        let text = std::str::from_utf8(digits).map_err(|_| self.corrupt("integer is not text"))?;
        let n: BigInt = text.trim().parse().map_err(|_| self.corrupt(format!("invalid integer {text:?}")))?;
        Ok(match i64::try_from(&n) {
            Ok(i) => Obj::Int(i),
            Err(_) => Obj::Big(Rc::new(n)),
        })
    }

    fn parse_index(&self, digits: &[u8]) -> Result<u64> {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| self.corrupt("invalid memo index"))
    }
}

fn is_latin1(encoding: &str) -> bool {
    matches!(
        encoding.to_ascii_lowercase().replace('_', "-").as_str(),
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1"
    )
}

fn int_from_le(bytes: &[u8]) -> Obj {
    if bytes.is_empty() {
        return Obj::Int(0);
    }
    let n = BigInt::from_signed_bytes_le(bytes);
    match i64::try_from(&n) {
        Ok(i) => Obj::Int(i),
        Err(_) => Obj::Big(Rc::new(n)),
    }
}

/// The argument of protocol-0 `STRING`: a Python bytes literal body in quotes, with backslash escapes.
fn unquote_string(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let quote = *line.first()?;
    if !(quote == b'\'' || quote == b'"') || line.len() < 2 || *line.last()? != quote {
        return None;
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let e = *body.get(i)?;
        i += 1;
        match e {
            b'\\' | b'\'' | b'"' => out.push(e),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut n = u32::from(e - b'0');
                for _ in 0..2 {
                    match body.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            n = n * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(n).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// `raw-unicode-escape` decoding: `\uXXXX` and `\UXXXXXXXX`; every other byte is Latin-1.
fn raw_unicode_unescape(line: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b == b'\\' && matches!(line.get(i + 1), Some(b'u' | b'U')) {
            let width = if line[i + 1] == b'u' { 4 } else { 8 };
            let hex = line.get(i + 2..i + 2 + width)?;
            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(char::from_u32(code)?);
            i += 2 + width;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}

fn kind(obj: &Obj) -> &'static str {
    match obj {
        Obj::List(_) => "list",
        Obj::Dict(_) => "dict",
        Obj::Tuple(_) => "tuple",
        Obj::Callable(_) => "function",
        _ => "value",
    }
}

/// Builds the final tree, refusing cycles, excessive depth and excessive expansion of shared references.
/// Iterative, with an explicit stack, so the depth limit does not depend on the thread's stack size.
struct Materializer<'m> {
    machine: &'m Machine<'m>,
    on_path_lists: Vec<bool>,
    on_path_dicts: Vec<bool>,
    nodes_left: usize,
    bytes_left: usize,
}

#[derive(Clone, Copy)]
enum FrameKind {
    List,
    Tuple,
    Dict,
}

/// A container being built: its children are materialised in order into `values` (keys and values
/// alternating for dicts).
struct Frame {
    kind: FrameKind,
    index: usize,
    next: usize,
    values: Vec<Value>,
}

impl<'m> Materializer<'m> {
    fn new(machine: &'m Machine<'m>, input_len: usize) -> Self {
        Materializer {
            on_path_lists: vec![false; machine.lists.len()],
            on_path_dicts: vec![false; machine.dicts.len()],
            machine,
            // Shared references are copied into the tree; a stream may not make it explode.
            nodes_left: input_len.saturating_mul(4).saturating_add(1 << 20),
            bytes_left: input_len.saturating_mul(16).saturating_add(256 << 20),
        }
    }

    fn build(&mut self, root: &'m Obj) -> Result<Value> {
        let m = self.machine;
        let mut stack: Vec<Frame> = Vec::new();
        let mut done = self.start(root, &mut stack)?;
        loop {
            if let Some(value) = done.take() {
                match stack.last_mut() {
                    None => return Ok(value),
                    Some(frame) => frame.values.push(value),
                }
            }
            let frame = stack.last_mut().expect("a container is being built");
            let child = match frame.kind {
                FrameKind::List => m.lists[frame.index].get(frame.next),
                FrameKind::Tuple => m.tuples[frame.index].get(frame.next),
                FrameKind::Dict => m.dicts[frame.index]
                    .items
                    .get(frame.next / 2)
                    .map(|(k, v)| if frame.next.is_multiple_of(2) { k } else { v }),
            };
            frame.next += 1;
            done = match child {
                Some(child) => self.start(child, &mut stack)?,
                None => Some(self.finish(stack.pop().expect("the frame just used"))),
            };
        }
    }

    /// A leaf's value, or `None` after opening a frame for a container.
    fn start(&mut self, obj: &Obj, stack: &mut Vec<Frame>) -> Result<Option<Value>> {
        self.nodes_left = self.nodes_left.checked_sub(1).ok_or_else(|| Error::Limit {
            reason: "shared references in the stream expand to too many values".to_owned(),
        })?;
        let (kind, index) = match obj {
            Obj::None => return Ok(Some(Value::None)),
            Obj::Bool(b) => return Ok(Some(Value::Bool(*b))),
            Obj::Int(i) => return Ok(Some(Value::Int(*i))),
            Obj::Big(n) => return Ok(Some(Value::BigInt((**n).clone()))),
            Obj::Float(f) => return Ok(Some(Value::Float(*f))),
            Obj::Str(s) => {
                self.spend(s.len())?;
                return Ok(Some(Value::Str(s.to_string())));
            }
            Obj::Bytes(b) => {
                self.spend(b.len())?;
                return Ok(Some(Value::Bytes(b.to_vec())));
            }
            Obj::Callable(native) => {
                return Err(Error::Corrupt {
                    position: self.machine.data.len(),
                    reason: format!("a bare {native:?} constructor is not a value"),
                });
            }
            Obj::List(i) => (FrameKind::List, *i),
            Obj::Tuple(i) => (FrameKind::Tuple, *i),
            Obj::Dict(i) => (FrameKind::Dict, *i),
        };
        if stack.len() >= MAX_DEPTH {
            return Err(Error::Limit { reason: format!("the value nests more than {MAX_DEPTH} levels deep") });
        }
        let on_path = match kind {
            FrameKind::List => Some(&mut self.on_path_lists[index]),
            FrameKind::Dict => Some(&mut self.on_path_dicts[index]),
            FrameKind::Tuple => None,
        };
        if let Some(flag) = on_path
            && std::mem::replace(flag, true)
        {
            return Err(Error::Limit {
                reason: "the value contains itself (a recursive list or dict); such values cannot be materialised"
                    .to_owned(),
            });
        }
        let len = match kind {
            FrameKind::List => self.machine.lists[index].len(),
            FrameKind::Tuple => self.machine.tuples[index].len(),
            FrameKind::Dict => self.machine.dicts[index].items.len() * 2,
        };
        stack.push(Frame { kind, index, next: 0, values: Vec::with_capacity(len) });
        Ok(None)
    }

    fn finish(&mut self, frame: Frame) -> Value {
        match frame.kind {
            FrameKind::List => {
                self.on_path_lists[frame.index] = false;
                Value::List(frame.values)
            }
            FrameKind::Tuple => Value::Tuple(frame.values),
            FrameKind::Dict => {
                self.on_path_dicts[frame.index] = false;
                let mut pairs = Vec::with_capacity(frame.values.len() / 2);
                let mut values = frame.values.into_iter();
                while let (Some(k), Some(v)) = (values.next(), values.next()) {
                    pairs.push((k, v));
                }
                Value::Dict(pairs)
            }
        }
    }

    fn spend(&mut self, n: usize) -> Result<()> {
        self.bytes_left = self.bytes_left.checked_sub(n).ok_or_else(|| Error::Limit {
            reason: "shared references in the stream expand to too many bytes".to_owned(),
        })?;
        Ok(())
    }
}

/// `pickletools` names of opcodes, for messages.
pub(crate) fn opcode_name(op: u8) -> &'static str {
    match op {
        b'b' => "BUILD",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "?",
    }
}

impl std::fmt::Debug for Machine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").field("pos", &self.pos).field("protocol", &self.protocol).finish_non_exhaustive()
    }
}
