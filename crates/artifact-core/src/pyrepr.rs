//! Python's `repr()` of a string, so error messages read exactly as the SDK's.

/// Formats `s` as Python's `repr(str)` does: single quotes unless the text has a single quote and no
/// double quote, backslash escapes for the quote, backslash and control characters.
///
/// ```
/// assert_eq!(artifact_core::py_repr("it's"), r#""it's""#);
/// assert_eq!(artifact_core::py_repr("a\nb"), r"'a\nb'");
/// ```
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::py_repr;

    #[test]
    fn matches_python_repr() {
        // Expected values printed by CPython 3.11.
        assert_eq!(py_repr("m.pt"), "'m.pt'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\"b'c"), "'a\"b\\'c'");
        assert_eq!(py_repr("é\n\x01"), "'é\\n\\x01'");
        assert_eq!(py_repr("a\\b"), "'a\\\\b'");
    }
}
