//! Metadata values as Dagster's `metadata_value_from_external` accepts them: `{"raw_value": …, "type": …}`.

use serde_json::{Value, json};

/// One metadata value of a materialization or check. Each variant is one of the 17 types Dagster accepts
/// (there is no `job` type: Dagster rejects it and loses every later message).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MetadataValue {
    /// `__infer__`: Dagster picks the type from the JSON value (int, float, text, bool, json, null).
    Infer(Value),
    /// Plain text.
    Text(String),
    /// A URL, shown as a link.
    Url(String),
    /// A filesystem path.
    Path(String),
    /// A notebook path.
    Notebook(String),
    /// Markdown.
    Md(String),
    /// A JSON object or array.
    Json(Value),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Seconds since the epoch.
    Timestamp(f64),
    /// A Dagster run id, shown as a link to the run.
    DagsterRun(String),
    /// An asset key in user form (`a/b`).
    Asset(String),
    /// Null.
    Null,
    /// A table: `{"records": [...], "schema": [...]}`.
    Table(Value),
    /// A table schema: `{"columns": [...]}`.
    TableSchema(Value),
    /// Column lineage: `{"deps_by_column": {...}}`.
    TableColumnLineage(Value),
}

impl MetadataValue {
    /// The `type` Dagster reads.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetadataValue::Infer(_) => "__infer__",
            MetadataValue::Text(_) => "text",
            MetadataValue::Url(_) => "url",
            MetadataValue::Path(_) => "path",
            MetadataValue::Notebook(_) => "notebook",
            MetadataValue::Md(_) => "md",
            MetadataValue::Json(_) => "json",
            MetadataValue::Int(_) => "int",
            MetadataValue::Float(_) => "float",
            MetadataValue::Bool(_) => "bool",
            MetadataValue::Timestamp(_) => "timestamp",
            MetadataValue::DagsterRun(_) => "dagster_run",
            MetadataValue::Asset(_) => "asset",
            MetadataValue::Null => "null",
            MetadataValue::Table(_) => "table",
            MetadataValue::TableSchema(_) => "table_schema",
            MetadataValue::TableColumnLineage(_) => "table_column_lineage",
        }
    }

    /// The value as sent: `{"raw_value": …, "type": …}`, exactly those two keys.
    ///
    /// ```
    /// use dagster_bridge::pipes::MetadataValue;
    /// assert_eq!(MetadataValue::Int(3).to_json().to_string(), r#"{"raw_value":3,"type":"int"}"#);
    /// ```
    pub fn to_json(&self) -> Value {
        let raw = match self {
            MetadataValue::Infer(v)
            | MetadataValue::Json(v)
            | MetadataValue::Table(v)
            | MetadataValue::TableSchema(v)
            | MetadataValue::TableColumnLineage(v) => v.clone(),
            MetadataValue::Text(s)
            | MetadataValue::Url(s)
            | MetadataValue::Path(s)
            | MetadataValue::Notebook(s)
            | MetadataValue::Md(s)
            | MetadataValue::DagsterRun(s)
            | MetadataValue::Asset(s) => json!(s),
            MetadataValue::Int(i) => json!(i),
            // JSON has no NaN or infinity; Dagster would fail on them, so they travel as null.
            MetadataValue::Float(f) | MetadataValue::Timestamp(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            MetadataValue::Bool(b) => json!(b),
            MetadataValue::Null => Value::Null,
        };
        json!({"raw_value": raw, "type": self.type_name()})
    }
}
