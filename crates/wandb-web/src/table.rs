//! W&B Table previews: the columns and first rows of a `.table.json`, taken from the first bytes of the file
//! without parsing the rest, so a table of any size costs what its preview shows.
//!
//! The file is one JSON object (`wandb` writes its keys sorted: `_type`, `column_types`, `columns`, `data`,
//! `log_mode`, `ncols`, `nrows`); its members are walked one at a time, the rows of `data` one at a time, and the
//! walk stops wherever the bytes end.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// What the first bytes of a W&B Table hold.
#[derive(Debug, PartialEq)]
pub(crate) struct TablePreview {
    /// The column names.
    pub(crate) columns: Vec<String>,
    /// The first rows, at most the number asked for.
    pub(crate) rows: Vec<Vec<Value>>,
    /// Rows follow those kept (or may: the bytes ended inside `data`).
    pub(crate) more: bool,
    /// The bytes held the whole object, to its closing brace.
    pub(crate) complete: bool,
    /// The number of rows, when the bytes said (`nrows`, or the whole of `data`).
    pub(crate) total: Option<u64>,
}

/// The columns and at most `max_rows` rows of the table whose first bytes are `bytes`; `None` when they do not
/// start a JSON object with `columns` (not a table, or cut before its columns).
pub(crate) fn first_rows(bytes: &[u8], max_rows: usize) -> Option<TablePreview> {
    // The workspace's serde_json parses without a depth limit: nothing nested deeper than a table is, is parsed.
    if nesting(bytes) > MAX_NESTING {
        return None;
    }
    let mut c = Cursor { bytes, at: 0 };
    if !c.eat(b'{') {
        return None;
    }
    let (mut columns, mut rows, mut more, mut complete, mut total) = (None, Vec::new(), false, false, None);
    if c.eat(b'}') {
        complete = true;
    }
    while !complete {
        let Some(key) = c.value::<String>() else { break };
        if !c.eat(b':') {
            break;
        }
        let parsed = match key.as_str() {
            "columns" => c.value::<Vec<Value>>().map(|names| {
                columns = Some(names.iter().map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_owned)).collect());
            }),
            "data" => {
                let (count, ended) = c.rows(max_rows, &mut rows);
                more |= count > rows.len() as u64 || !ended;
                if ended {
                    total = Some(count);
                }
                ended.then_some(())
            }
            "nrows" => c.value::<u64>().map(|n| total = Some(n)),
            _ => c.value::<IgnoredAny>().map(|_| ()),
        };
        if parsed.is_none() {
            break;
        }
        if c.eat(b'}') {
            complete = true;
        } else if !c.eat(b',') {
            break;
        }
    }
    Some(TablePreview { columns: columns?, rows, more, complete, total })
}

/// Tables nest a few levels (the object, `data`, a row, a cell's object): far deeper is not a table.
const MAX_NESTING: usize = 32;

/// The deepest nesting of arrays and objects in `bytes` (brackets inside strings not counted).
fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in bytes {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        while self.bytes.get(self.at).is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// Consumes `byte` after any whitespace, if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let next = self.bytes.get(self.at) == Some(&byte);
        if next {
            self.at += 1;
        }
        next
    }

    /// The next JSON value, if the bytes hold all of it. A number, `true`, `false` or `null` that reaches the end
    /// of the bytes may be cut short (`12` of `123`): not taken.
    fn value<T: Deserialize<'a>>(&mut self) -> Option<T> {
        self.skip_whitespace();
        let rest = &self.bytes[self.at..];
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
        let value = stream.next()?.ok()?;
        let end = stream.byte_offset();
        let delimited = matches!(rest.first(), Some(b'"' | b'[' | b'{'));
        if !delimited && end == rest.len() {
            return None;
        }
        self.at += end;
        Some(value)
    }

    /// The rows of `data` (the cursor after its `:`): the first `max_rows` kept in `rows`, the others skipped.
    /// Returns how many rows were read and whether the array ended within the bytes.
    fn rows(&mut self, max_rows: usize, rows: &mut Vec<Vec<Value>>) -> (u64, bool) {
        if !self.eat(b'[') {
            return (0, false);
        }
        let mut count = 0u64;
        loop {
            if self.eat(b']') {
                return (count, true);
            }
            if count > 0 && !self.eat(b',') {
                return (count, false);
            }
            let read = if rows.len() < max_rows {
                self.value::<Vec<Value>>().map(|row| rows.push(row))
            } else {
                self.value::<IgnoredAny>().map(|_| ())
            };
            if read.is_none() {
                return (count, false);
            }
            count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"{"_type": "table", "column_types": {"params": {"type_map": {}}}, "columns": ["a", "b"], "data": [[1, "x"], [2, "y"], [3, "z"]], "log_mode": "IMMUTABLE", "ncols": 2, "nrows": 3}"#;

    #[test]
    fn a_whole_table_gives_its_rows_and_count() {
        let preview = first_rows(TABLE.as_bytes(), 10).unwrap();
        assert_eq!(preview.columns, ["a", "b"]);
        assert_eq!(preview.rows.len(), 3);
        assert_eq!((preview.more, preview.complete, preview.total), (false, true, Some(3)));
        let two = first_rows(TABLE.as_bytes(), 2).unwrap();
        assert_eq!((two.rows.len(), two.more, two.total), (2, true, Some(3)));
    }

    #[test]
    fn cut_bytes_give_the_rows_they_hold() {
        // Cut inside the third row: two rows, more may follow, the count unknown.
        let cut = &TABLE[..TABLE.find("[3,").unwrap() + 2];
        let preview = first_rows(cut.as_bytes(), 10).unwrap();
        assert_eq!(preview.rows, [vec![Value::from(1), Value::from("x")], vec![Value::from(2), Value::from("y")]]);
        assert_eq!((preview.more, preview.complete, preview.total), (true, false, None));
        // Cut inside nrows' number: not read as a shorter number.
        let longer = TABLE.replace("\"nrows\": 3", "\"nrows\": 31");
        let cut = &longer[..longer.len() - 1];
        assert_eq!(first_rows(cut.as_bytes(), 10).unwrap().total, Some(3));
        // Cut before the columns, or not an object: no preview.
        assert_eq!(first_rows(&TABLE.as_bytes()[..40], 10), None);
        assert_eq!(first_rows(b"[1, 2]", 10), None);
    }

    #[test]
    fn deep_nesting_is_not_parsed() {
        let deep = format!("{{\"columns\": [\"a\"], \"data\": [{}", "[".repeat(100_000));
        assert_eq!(first_rows(deep.as_bytes(), 10), None);
        // Brackets inside strings do not count.
        let text = format!("{{\"columns\": [\"{}\"], \"data\": []}}", "[".repeat(100));
        assert_eq!(first_rows(text.as_bytes(), 10).unwrap().columns[0].len(), 100);
    }
}
