//! JSON text exactly as Python's `json.dumps(obj, sort_keys=True)` writes it.
//!
//! Separators `", "` and `": "`, keys sorted at every level, `ensure_ascii` escaping (`\u00e9`, surrogate pairs
//! above the BMP), and floats as Python's `repr` prints them (`-3.0`, `1e-05`, `1e+16`).

use serde_json::Value as Json;

/// Writes `value` as `json.dumps(value, sort_keys=True)` would.
pub(crate) fn dumps_sorted(value: &Json) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Json) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) if !n.is_f64() => out.push_str(&i.to_string()),
            (_, Some(u), _) if !n.is_f64() => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Json::String(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// `ensure_ascii` string escaping (`json.encoder.py_encode_basestring_ascii`).
fn write_string(out: &mut String, s: &str) {
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
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `float.__repr__` (and `json.dumps` for floats): the shortest round-trip digits, fixed notation
/// for exponents from -4 to 15 with at least one fractional digit, scientific otherwise with a signed
/// two-digit-minimum exponent. Non-finite values print as `json.dumps` prints them.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let formatted = format!("{f:e}");
    let (mantissa, exponent) = formatted.split_once('e').expect("LowerExp has an exponent");
    let exponent: i32 = exponent.parse().expect("LowerExp exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            let (int_part, frac_part) = if digits.len() > int_len {
                (digits[..int_len].to_owned(), digits[int_len..].to_owned())
            } else {
                (format!("{digits:0<int_len$}"), "0".to_owned())
            };
            format!("{sign}{int_part}.{frac_part}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}{rest}e{exp_sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        // Expected values printed by CPython 3.11's repr().
        for (f, expected) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (-3.0, "-3.0"),
            (1.25, "1.25"),
            (1e-7, "1e-07"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789.0, "123456789.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e22, "1e+22"),
            (1.2345678901234567e19, "1.2345678901234567e+19"),
            (std::f64::consts::PI, "3.141592653589793"),
            (1e300, "1e+300"),
            (2.5e-310, "2.5e-310"),
            (f64::INFINITY, "Infinity"),
        ] {
            assert_eq!(float_repr(f), expected, "{f:e}");
        }
    }

    #[test]
    fn strings_escape_as_ensure_ascii() {
        let mut out = String::new();
        write_string(&mut out, "dög\u{2028}<>&\"\\\n\u{1}\u{7f}😀");
        assert_eq!(out, r#""d\u00f6g\u2028<>&\"\\\n\u0001\u007f\ud83d\ude00""#);
    }

    #[test]
    fn objects_sort_keys_with_python_separators() {
        let v: Json = serde_json::from_str(r#"{"b": [1, 2.0, null], "a": {"z": true, "y": "x"}}"#).unwrap();
        assert_eq!(dumps_sorted(&v), r#"{"a": {"y": "x", "z": true}, "b": [1, 2.0, null]}"#);
    }
}
