//! W&B Tables against the bytes wandb 0.31.0 wrote.

use serde_json::json;
use serde_modules::{Error, Table};

use crate::{read_json, testdata};

#[test]
fn table_vectors_round_trip_byte_identically() {
    let dir = testdata("wandb-0.31.0/table");
    let index = read_json(&dir.join("index.json"));
    let mut checked = 0;
    for (case, spec) in index["cases"].as_object().unwrap() {
        let expected = std::fs::read(dir.join(spec["file"].as_str().unwrap())).unwrap();
        let input = &spec["input"];
        let columns: Vec<String> =
            input["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        let rows = input["data"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().clone()).collect();
        let table = Table::with_rows(columns, rows).unwrap();
        let written = table.to_wandb_json();
        assert_eq!(String::from_utf8(written.clone()).unwrap(), String::from_utf8(expected.clone()).unwrap(), "{case}");
        assert_eq!(written.len() as u64, spec["size"].as_u64().unwrap(), "{case}");
        assert_eq!(artifact_md5(&written), spec["digest"].as_str().unwrap(), "{case}");
        let read = Table::from_wandb_json(&expected).unwrap();
        assert_eq!(read, table, "{case}");
        assert_eq!(read.to_wandb_json(), expected, "{case}: read back and rewritten");
        assert_eq!(spec["artifact_path"], Table::file_name("Table"));
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// Base64 MD5: the manifest digest the SDK recorded for the file.
fn artifact_md5(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

#[test]
fn tables_refuse_what_wandb_refuses() {
    let err = Table::with_rows(["x", "y"], vec![vec![json!(1)]]).unwrap_err();
    assert_eq!(err.to_string(), "W&B Table: This table expects 2 columns: ['x', 'y'], found 1");
    let err = Table::with_rows(["x"], vec![vec![json!(1)], vec![json!("a")]]).unwrap_err();
    assert!(err.to_string().contains("Data row contained incompatible types"), "{err}");
    assert!(Table::with_rows(["x"], vec![vec![json!([1])]]).unwrap_err().to_string().contains("a list"));
    assert!(matches!(Table::new(["a", "a"]), Err(Error::Table(_))));
    // A leading null leaves the type open, as in wandb.
    let t = Table::with_rows(["x"], vec![vec![json!(null)], vec![json!(true)], vec![json!(null)]]).unwrap();
    assert!(String::from_utf8(t.to_wandb_json()).unwrap().contains(r#"[{"wb_type": "boolean"}, {"wb_type": "none"}]"#));
    assert!(Table::from_wandb_json(br#"{"_type": "not-table"}"#).is_err());
    assert!(Table::from_wandb_json(br#"{"_type": "table", "columns": ["x"], "data": [[NaN]]}"#).is_err());
}

/// The distributed capture (`shared/spec/wandb-artifacts.md` §9.3): writer 0's part and the finisher's
/// partitioned table, byte for byte (their MD5s are in the manifests wandb-core uploaded).
#[test]
fn distributed_parts_and_the_partitioned_table_are_the_sdk_bytes() {
    use base64::Engine as _;
    use md5::Digest as _;
    let md5_b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes));
    let part =
        Table::with_rows(["a", "b"], vec![vec![json!(0), json!("row0")], vec![json!(10), json!("row10")]]).unwrap();
    let bytes = part.to_wandb_json();
    assert_eq!((bytes.len(), md5_b64(&bytes).as_str()), (400, "LXQ1HtpTxUTgRblOLJtwyg=="));
    let merged = serde_modules::PartitionedTable::new("parts");
    let bytes = merged.to_wandb_json();
    assert_eq!((bytes.len(), md5_b64(&bytes).as_str()), (53, "3FsVTLRmcx4P1kvNdgj1Qw=="));
    assert_eq!(serde_modules::PartitionedTable::from_wandb_json(&bytes).unwrap(), merged);
    assert_eq!(serde_modules::PartitionedTable::file_name("merged"), "merged.partitioned-table.json");

    let paths = [
        "parts/table_1.table.json",
        "merged.partitioned-table.json",
        "parts/table_0.table.json",
        "partsx/t.table.json",
    ];
    assert_eq!(merged.part_paths(paths), ["parts/table_0.table.json", "parts/table_1.table.json"]);
    let other = Table::with_rows(["a", "c"], vec![]).unwrap();
    let error = serde_modules::PartitionedTable::concat(vec![part.clone(), other]).unwrap_err().to_string();
    assert!(error.contains("Table parts have non-matching columns."), "{error}");
    assert_eq!(serde_modules::PartitionedTable::concat(vec![part.clone(), part]).unwrap().rows().len(), 4);
}
