//! W&B Tables, as `wandb` 0.31.0 writes them into artifacts (`<name>.table.json`).

use serde_json::{Map, Value as Json, json};

use crate::error::{Error, Result};
use crate::pyjson::dumps_sorted;

/// The suffix `artifact.add(table, name)` gives the file: the table is `name + ".table.json"`.
pub const TABLE_FILE_SUFFIX: &str = ".table.json";

/// The scalar types a column can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum CellType {
    Boolean,
    Number,
    String,
}

impl CellType {
    fn name(self) -> &'static str {
        match self {
            CellType::Boolean => "boolean",
            CellType::Number => "number",
            CellType::String => "string",
        }
    }

    fn of(value: &Json) -> Option<CellType> {
        match value {
            Json::Bool(_) => Some(CellType::Boolean),
            Json::Number(_) => Some(CellType::Number),
            Json::String(_) => Some(CellType::String),
            _ => None,
        }
    }
}

/// A W&B Table: named columns and rows of scalar JSON values (`null`, booleans, numbers, strings).
///
/// As in `wandb`, a column's type is fixed by its first non-null value, and a later value of another type is an
/// error; nested lists and objects in cells are not supported. [`Table::to_wandb_json`] produces the bytes
/// `wandb` 0.31.0 writes for `artifact.add(wandb.Table(columns, data), name)`.
///
/// ```
/// use serde_json::json;
/// use serde_modules::Table;
/// let table = Table::with_rows(["a", "b", "c"], vec![vec![json!(1), json!(2), json!(3)]])?;
/// let bytes = table.to_wandb_json();
/// assert!(bytes.starts_with(br#"{"_type": "table", "column_types": "#));
/// assert_eq!(Table::from_wandb_json(&bytes)?, table);
/// # Ok::<(), serde_modules::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Json>>,
    types: Vec<Option<CellType>>,
}

impl Table {
    /// An empty table with these columns.
    ///
    /// # Errors
    /// [`Error::Table`] for duplicate column names.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Result<Self> {
        let columns: Vec<String> = columns.into_iter().map(Into::into).collect();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(Error::Table(format!("column {c:?} appears twice")));
            }
        }
        let types = vec![None; columns.len()];
        Ok(Table { columns, rows: Vec::new(), types })
    }

    /// A table with these columns and rows.
    ///
    /// # Errors
    /// As [`Table::new`] and [`Table::add_row`].
    pub fn with_rows<S: Into<String>>(columns: impl IntoIterator<Item = S>, rows: Vec<Vec<Json>>) -> Result<Self> {
        let mut table = Table::new(columns)?;
        for row in rows {
            table.add_row(row)?;
        }
        Ok(table)
    }

    /// Appends a row.
    ///
    /// # Errors
    /// [`Error::Table`] when the row has the wrong length (wandb's message), holds a list or an object, or holds
    /// a value whose type differs from its column's (wandb's "incompatible types").
    pub fn add_row(&mut self, row: Vec<Json>) -> Result<()> {
        if row.len() != self.columns.len() {
            let names: Vec<String> = self.columns.iter().map(|c| format!("'{c}'")).collect();
            return Err(Error::Table(format!(
                "This table expects {} columns: [{}], found {}",
                self.columns.len(),
                names.join(", "),
                row.len()
            )));
        }
        let mut types = self.types.clone();
        for (i, (cell, column_type)) in row.iter().zip(types.iter_mut()).enumerate() {
            if cell.is_null() {
                continue;
            }
            let Some(cell_type) = CellType::of(cell) else {
                return Err(Error::Table(format!(
                    "row {} column {:?} holds {}; table cells must be null, booleans, numbers or strings",
                    self.rows.len(),
                    self.columns[i],
                    if cell.is_array() { "a list" } else { "an object" }
                )));
            };
            match column_type {
                None => *column_type = Some(cell_type),
                Some(expected) if *expected != cell_type => {
                    return Err(Error::Table(format!(
                        "Data row contained incompatible types: row {} column {:?} holds a {} where the column holds {}s",
                        self.rows.len(),
                        self.columns[i],
                        cell_type.name(),
                        expected.name()
                    )));
                }
                Some(_) => {}
            }
        }
        self.types = types;
        self.rows.push(row);
        Ok(())
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows.
    pub fn rows(&self) -> &[Vec<Json>] {
        &self.rows
    }

    /// The file name `artifact.add(table, name)` uses: `name + ".table.json"`.
    pub fn file_name(name: &str) -> String {
        format!("{name}{TABLE_FILE_SUFFIX}")
    }

    /// The bytes `wandb` 0.31.0 writes: `json.dumps` with sorted keys of `_type`, `column_types` (a
    /// `typedDict` of per-column unions with `none`), `columns`, `data`, `log_mode`, `ncols`, `nrows`.
    pub fn to_wandb_json(&self) -> Vec<u8> {
        let mut type_map = Map::new();
        for (column, column_type) in self.columns.iter().zip(&self.types) {
            let name = column_type.map_or("unknown", CellType::name);
            let mut allowed = vec!["none", name];
            allowed.sort_unstable();
            let allowed: Vec<Json> = allowed.into_iter().map(|t| json!({"wb_type": t})).collect();
            type_map.insert(column.clone(), json!({"params": {"allowed_types": allowed}, "wb_type": "union"}));
        }
        let document = json!({
            "_type": "table",
            "column_types": {"params": {"type_map": type_map}, "wb_type": "typedDict"},
            "columns": self.columns,
            "data": self.rows,
            "log_mode": "IMMUTABLE",
            "ncols": self.columns.len(),
            "nrows": self.rows.len(),
        });
        dumps_sorted(&document).into_bytes()
    }

    /// Reads a table file written by `wandb` (or by [`Table::to_wandb_json`]). Integer column names are read as
    /// their decimal text.
    ///
    /// # Errors
    /// [`Error::Table`] for anything that is not a W&B table document of scalar cells.
    pub fn from_wandb_json(bytes: &[u8]) -> Result<Self> {
        let doc: Json = serde_json::from_slice(bytes)
            .map_err(|e| Error::Table(format!("not a JSON document ({e}); NaN and Infinity cells cannot be read")))?;
        if doc.get("_type").and_then(Json::as_str) != Some("table") {
            return Err(Error::Table("the document's _type is not \"table\"".to_owned()));
        }
        let columns: Vec<String> = doc
            .get("columns")
            .and_then(Json::as_array)
            .ok_or_else(|| Error::Table("no columns array".to_owned()))?
            .iter()
            .map(|c| match c {
                Json::String(s) => Ok(s.clone()),
                Json::Number(n) => Ok(n.to_string()),
                other => Err(Error::Table(format!("column name {other} is not a string"))),
            })
            .collect::<Result<_>>()?;
        let data = doc.get("data").and_then(Json::as_array).ok_or_else(|| Error::Table("no data array".to_owned()))?;
        let rows = data
            .iter()
            .map(|row| row.as_array().cloned().ok_or_else(|| Error::Table(format!("row {row} is not an array"))))
            .collect::<Result<Vec<_>>>()?;
        Table::with_rows(columns, rows)
    }
}

/// The suffix `artifact.add(PartitionedTable(parts_path), name)` gives the file.
pub const PARTITIONED_TABLE_FILE_SUFFIX: &str = ".partitioned-table.json";

/// A W&B `PartitionedTable`: a table made of every `*.table.json` part under a directory of the artifact,
/// as distributed writers assemble one dataset (`parts/table_0.table.json`, `parts/table_1.table.json`, …).
///
/// ```
/// use serde_json::json;
/// use serde_modules::{PartitionedTable, Table};
/// let merged = PartitionedTable::new("parts");
/// assert_eq!(merged.to_wandb_json(), br#"{"_type": "partitioned-table", "parts_path": "parts"}"#);
/// let parts = vec![
///     Table::with_rows(["a", "b"], vec![vec![json!(0), json!("row0")]])?,
///     Table::with_rows(["a", "b"], vec![vec![json!(1), json!("row1")]])?,
/// ];
/// assert_eq!(PartitionedTable::concat(parts)?.rows().len(), 2);
/// # Ok::<(), serde_modules::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionedTable {
    parts_path: String,
}

impl PartitionedTable {
    /// The partitioned table of the parts under `parts_path` (a directory of the artifact).
    pub fn new(parts_path: impl Into<String>) -> Self {
        PartitionedTable { parts_path: parts_path.into().trim_end_matches('/').to_owned() }
    }

    /// The directory of the parts.
    pub fn parts_path(&self) -> &str {
        &self.parts_path
    }

    /// The file name `artifact.add(partitioned_table, name)` uses.
    pub fn file_name(name: &str) -> String {
        format!("{name}{PARTITIONED_TABLE_FILE_SUFFIX}")
    }

    /// The bytes `wandb` 0.31.0 writes: `{"_type": "partitioned-table", "parts_path": …}`, sorted keys, Python's
    /// separators, no trailing newline (53 bytes for `parts`).
    pub fn to_wandb_json(&self) -> Vec<u8> {
        dumps_sorted(&json!({"_type": "partitioned-table", "parts_path": self.parts_path})).into_bytes()
    }

    /// Reads the document.
    ///
    /// # Errors
    /// [`Error::Table`] for anything but a partitioned-table document that names its parts' directory.
    pub fn from_wandb_json(bytes: &[u8]) -> Result<Self> {
        let doc: Json =
            serde_json::from_slice(bytes).map_err(|e| Error::Table(format!("not a JSON document ({e})")))?;
        if doc.get("_type").and_then(Json::as_str) != Some("partitioned-table") {
            return Err(Error::Table("the document's _type is not \"partitioned-table\"".to_owned()));
        }
        match doc.get("parts_path").and_then(Json::as_str) {
            Some(path) => Ok(PartitionedTable::new(path)),
            None => {
                Err(Error::Table("no parts_path (a partitioned table logged to a run is not read here)".to_owned()))
            }
        }
    }

    /// Which artifact paths are its parts: the `*.table.json` entries under `parts_path`, in path order.
    pub fn part_paths<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let prefix = format!("{}/", self.parts_path);
        let mut parts: Vec<&str> =
            paths.into_iter().filter(|p| p.starts_with(&prefix) && p.ends_with(TABLE_FILE_SUFFIX)).collect();
        parts.sort_unstable();
        parts
    }

    /// The parts' rows as one table, as `iterrows` yields them.
    ///
    /// # Errors
    /// [`Error::Table`] when the parts' columns differ (the SDK's "Table parts have non-matching columns.").
    pub fn concat(parts: Vec<Table>) -> Result<Table> {
        let mut parts = parts.into_iter();
        let Some(mut merged) = parts.next() else { return Table::new(Vec::<String>::new()) };
        for part in parts {
            if part.columns != merged.columns {
                return Err(Error::Table(format!(
                    "Table parts have non-matching columns. {:?} != {:?}",
                    merged.columns, part.columns
                )));
            }
            for row in part.rows {
                merged.add_row(row)?;
            }
        }
        Ok(merged)
    }
}
