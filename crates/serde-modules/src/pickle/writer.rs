//! Writing pickle streams CPython 3.8+ loads (protocols 2 to 5), framed as CPython frames them.

use num_bigint::BigInt;

use super::MAX_DEPTH;
use crate::error::{Error, Result};
use crate::value::Value;

/// CPython's `_Framer._FRAME_SIZE_TARGET`.
const FRAME_SIZE_TARGET: usize = 64 * 1024;
/// CPython's `_Framer._FRAME_SIZE_MIN`: smaller frames are written without a `FRAME` header.
const FRAME_SIZE_MIN: usize = 4;
/// CPython's `_BATCHSIZE` for `APPENDS` and `SETITEMS`.
const BATCH_SIZE: usize = 1000;

/// Writes `value` as a pickle of `protocol` (2 to 5). `fix_imports` names `builtins` `__builtin__` in
/// protocol 2, as CPython does, so Python 2 could read it too.
pub(crate) fn encode(value: &Value, protocol: u8, fix_imports: bool, out: &mut Vec<u8>) -> Result<()> {
    if !(2..=super::HIGHEST_PROTOCOL).contains(&protocol) {
        return Err(Error::Unsupported {
            module: "pickle",
            reason: format!("writing protocol {protocol}; protocols 2 to 5 are supported (5 is the default)"),
        });
    }
    let mut w = Writer { out, frame: Vec::new(), protocol, fix_imports };
    w.out.extend_from_slice(&[0x80, protocol]);
    w.save(value, 0)?;
    w.write(b".");
    w.commit_frame(true);
    Ok(())
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// The frame being filled (protocol 4+); opcodes go straight to `out` below protocol 4.
    frame: Vec<u8>,
    protocol: u8,
    fix_imports: bool,
}

impl Writer<'_> {
    fn framing(&self) -> bool {
        self.protocol >= 4
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.framing() {
            self.frame.extend_from_slice(bytes);
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    fn commit_frame(&mut self, force: bool) {
        if !self.framing() || self.frame.is_empty() || (self.frame.len() < FRAME_SIZE_TARGET && !force) {
            return;
        }
        if self.frame.len() >= FRAME_SIZE_MIN {
            self.out.push(0x95);
            self.out.extend_from_slice(&(self.frame.len() as u64).to_le_bytes());
        }
        self.out.append(&mut self.frame);
    }

    /// A large payload goes outside any frame, as CPython's `write_large_bytes` does.
    fn write_payload(&mut self, header: &[u8], payload: &[u8]) {
        if self.framing() && payload.len() >= FRAME_SIZE_TARGET {
            self.commit_frame(true);
            self.out.extend_from_slice(header);
            self.out.extend_from_slice(payload);
        } else {
            self.write(header);
            self.write(payload);
        }
    }

    fn save(&mut self, value: &Value, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::Limit { reason: format!("the value nests more than {MAX_DEPTH} levels deep") });
        }
        self.commit_frame(false);
        match value {
            Value::None => self.write(b"N"),
            Value::Bool(true) => self.write(&[0x88]),
            Value::Bool(false) => self.write(&[0x89]),
            Value::Int(i) => self.save_int(*i),
            Value::BigInt(n) => self.save_long(n),
            Value::Float(f) => {
                self.write(b"G");
                self.write(&f.to_be_bytes());
            }
            Value::Str(s) => self.save_str(s),
            Value::Bytes(b) => self.save_bytes(b)?,
            Value::List(items) => {
                self.write(b"]");
                for batch in items.chunks(BATCH_SIZE) {
                    if let [single] = batch {
                        self.save(single, depth + 1)?;
                        self.write(b"a");
                    } else {
                        self.write(b"(");
                        for item in batch {
                            self.save(item, depth + 1)?;
                        }
                        self.write(b"e");
                    }
                }
            }
            Value::Tuple(items) => match items.len() {
                0 => self.write(b")"),
                n @ 1..=3 => {
                    for item in items {
                        self.save(item, depth + 1)?;
                    }
                    self.write(&[0x84 + n as u8]);
                }
                _ => {
                    self.write(b"(");
                    for item in items {
                        self.save(item, depth + 1)?;
                    }
                    self.write(b"t");
                }
            },
            Value::Dict(items) => {
                if let Some((k, _)) = items.iter().find(|(k, _)| !k.is_hashable()) {
                    return Err(Error::Unsupported {
                        module: "pickle",
                        reason: format!("a dict key of type {} is not hashable in Python", k.type_name()),
                    });
                }
                self.write(b"}");
                for batch in items.chunks(BATCH_SIZE) {
                    if let [(k, v)] = batch {
                        self.save(k, depth + 1)?;
                        self.save(v, depth + 1)?;
                        self.write(b"s");
                    } else {
                        self.write(b"(");
                        for (k, v) in batch {
                            self.save(k, depth + 1)?;
                            self.save(v, depth + 1)?;
                        }
                        self.write(b"u");
                    }
                }
            }
        }
        Ok(())
    }

    fn save_int(&mut self, i: i64) {
        if (0..=0xff).contains(&i) {
            self.write(&[b'K', i as u8]);
        } else if (0..=0xffff).contains(&i) {
            self.write(b"M");
            self.write(&(i as u16).to_le_bytes());
        } else if let Ok(small) = i32::try_from(i) {
            self.write(b"J");
            self.write(&small.to_le_bytes());
        } else {
            self.save_long(&BigInt::from(i));
        }
    }

    /// `LONG1`/`LONG4` with the minimal two's-complement little-endian encoding (`pickle.encode_long`).
    fn save_long(&mut self, n: &BigInt) {
        let bytes = n.to_signed_bytes_le();
        let bytes: &[u8] = if n.sign() == num_bigint::Sign::NoSign { &[] } else { &bytes };
        if bytes.len() < 256 {
            self.write(&[0x8a, bytes.len() as u8]);
        } else {
            self.write(&[0x8b]);
            self.write(&(bytes.len() as u32).to_le_bytes());
        }
        self.write(bytes);
    }

    fn save_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        if self.protocol >= 4 && bytes.len() < 256 {
            self.write_payload(&[0x8c, bytes.len() as u8], bytes);
        } else if let Ok(n) = u32::try_from(bytes.len()) {
            let mut header = vec![b'X'];
            header.extend_from_slice(&n.to_le_bytes());
            self.write_payload(&header, bytes);
        } else {
            let mut header = vec![0x8d];
            header.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            self.write_payload(&header, bytes);
        }
    }

    fn save_bytes(&mut self, b: &[u8]) -> Result<()> {
        if self.protocol < 3 {
            // Protocol 2 has no bytes opcode: CPython writes `_codecs.encode(latin1 text, "latin1")`.
            let builtins = if self.fix_imports { "__builtin__" } else { "builtins" };
            if b.is_empty() {
                self.write(format!("c{builtins}\nbytes\n").as_bytes());
                self.write(b")R");
            } else {
                self.write(b"c_codecs\nencode\n");
                let text: String = b.iter().map(|&byte| char::from(byte)).collect();
                self.save_str(&text);
                self.save_str("latin1");
                self.write(&[0x86, b'R']);
            }
            return Ok(());
        }
        if b.len() < 256 {
            self.write_payload(&[b'C', b.len() as u8], b);
        } else if let Ok(n) = u32::try_from(b.len()) {
            let mut header = vec![b'B'];
            header.extend_from_slice(&n.to_le_bytes());
            self.write_payload(&header, b);
        } else if self.protocol >= 4 {
            let mut header = vec![0x8e];
            header.extend_from_slice(&(b.len() as u64).to_le_bytes());
            self.write_payload(&header, b);
        } else {
            return Err(Error::Unsupported {
                module: "pickle",
                reason: "bytes of 4 GiB or more need protocol 4 or newer".to_owned(),
            });
        }
        Ok(())
    }
}
