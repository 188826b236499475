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
