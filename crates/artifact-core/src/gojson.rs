//! A JSON writer that produces the bytes Go's `encoding/json` `Marshal` produces.
//!
//! wandb-core serialises the uploaded manifest with `json.Marshal`, so matching it byte for byte needs Go's
//! escaping (HTML-safe `<`, `>`, `&`; U+2028/U+2029; `\b`/`\f` short forms since Go 1.22), Go's map-key order
//! (sorted bytes) and Go's float64 formatting.

use serde_json::Value;

/// Appends `s` as a Go-escaped JSON string.
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => push_unicode_escape(out, c),
            c if (c as u32) < 0x20 => push_unicode_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_unicode_escape(out: &mut String, c: char) {
    out.push_str(&format!("\\u{:04x}", c as u32));
}

/// Appends a JSON value the way Go re-marshals a value it decoded into `any`: objects with sorted keys,
/// every number as a float64.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_float64(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map.iter()),
    }
}

/// Appends an object whose keys are sorted by bytes, as Go sorts map keys.
pub(crate) fn write_object<'a>(out: &mut String, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    let mut entries: Vec<_> = entries.collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// Go's `floatEncoder` for float64: `strconv.FormatFloat(f, 'f', -1, 64)`, switching to `'e'` below 1e-6 and
/// from 1e21, with the exponent cleaned up (`e-07` becomes `e-7`, positive exponents keep two digits and a `+`).
pub(crate) fn write_float64(out: &mut String, f: f64) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let formatted = format!("{f:e}");
        let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        out.push_str(mantissa);
        if exponent < 0 {
            out.push_str(&format!("e-{}", -exponent));
        } else {
            out.push_str(&format!("e+{exponent:02}"));
        }
    } else {
        // Rust's `Display` for f64 is the shortest round-trip decimal without an exponent, as Go's 'f', -1.
        out.push_str(&format!("{f}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, s);
        out
    }

    fn float(f: f64) -> String {
        let mut out = String::new();
        write_float64(&mut out, f);
        out
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(string("unicode-éè name.txt"), "\"unicode-éè name.txt\"");
        assert_eq!(string("<a>&b"), "\"\\u003ca\\u003e\\u0026b\"");
        assert_eq!(string("\u{2028}\u{2029}"), "\"\\u2028\\u2029\"");
        assert_eq!(string("q\"b\\s/"), "\"q\\\"b\\\\s/\"");
        assert_eq!(string("\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}"), "\"\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}\"");
    }

    #[test]
    fn formats_floats_like_go() {
        // Expected values from Go's encoding/json.
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(-2.25), "-2.25");
        assert_eq!(float(0.0), "0");
        assert_eq!(float(1e-6), "0.000001");
        assert_eq!(float(1e-7), "1e-7");
        assert_eq!(float(1.5e-10), "1.5e-10");
        assert_eq!(float(1e20), "100000000000000000000");
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(1.2345e100), "1.2345e+100");
        assert_eq!(float(9007199254740993.0), "9007199254740992");
    }

    #[test]
    fn objects_sort_keys_by_bytes() {
        let value: Value = serde_json::json!({"b": 1, "a": [true, null, "x"], "A": {"z": 2.5, "y": {}}});
        let mut out = String::new();
        write_value(&mut out, &value);
        assert_eq!(out, r#"{"A":{"y":{},"z":2.5},"a":[true,null,"x"],"b":1}"#);
    }
}
