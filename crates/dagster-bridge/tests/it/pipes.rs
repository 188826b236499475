//! Dagster Pipes: the exact lines Dagster reads, line safety under volume, closed exactly once, panics.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use dagster_bridge::Error;
use dagster_bridge::pipes::{
    CheckSeverity, LogLevel, MetadataValue, PipesException, PipesSession, decode_param, encode_param,
};
use serde_json::{Value, json};

fn context() -> Value {
    json!({
        "asset_keys": ["ml/spied"],
        "code_version_by_asset_key": {"ml/spied": "cv1"},
        "provenance_by_asset_key": {"ml/spied": null},
        "partition_key": "2024-03-05",
        "partition_key_range": {"start": "2024-03-05", "end": "2024-03-05"},
        "partition_time_window": {"start": "2024-03-05T00:00:00+00:00", "end": "2024-03-06T00:00:00+00:00"},
        "run_id": "61d5060d-0b57-48e6-846c-6d856d346093",
        "job_name": "__ephemeral_asset_job__",
        "retry_number": 0,
        "extras": {"wandb_project": "p", "artifact": {"name": "ds", "type": "dataset"}}
    })
}

fn open(dir: &Path) -> std::sync::Arc<PipesSession> {
    let messages = dir.join("messages");
    PipesSession::open_with(
        &encode_param(&json!({"data": context()})),
        &encode_param(&json!({"path": messages, "include_stdio_in_messages": false})),
    )
    .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn every_message_is_the_exact_line_dagster_reads() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(dir.path());
    assert_eq!(session.context().asset_key().unwrap(), "ml/spied");
    assert_eq!(session.context().partition_key().unwrap(), "2024-03-05");
    assert_eq!(session.context().extra("wandb_project").unwrap(), "p");
    let err = session.context().extra("nope").unwrap_err();
    assert!(err.to_string().contains("\"nope\"") && err.to_string().contains("wandb_project"), "{err}");

    session.log(LogLevel::Warning, "careful").unwrap();
    session
        .report_asset_materialization(
            None,
            vec![
                ("rows".into(), MetadataValue::Int(42)),
                ("artifact".into(), MetadataValue::Url("wandb-artifact://ent/proj/ds:v3".into())),
                ("schema".into(), MetadataValue::TableSchema(json!({"columns": [{"name": "a", "type": "int"}]}))),
                ("run".into(), MetadataValue::DagsterRun("61d5060d".into())),
                ("anything".into(), MetadataValue::Infer(json!([1, 2]))),
            ],
            Some("v3"),
        )
        .unwrap();
    let again = session.report_asset_materialization(Some("ml/spied"), vec![], None).unwrap_err();
    assert!(matches!(again, Error::DuplicateMaterialization { .. }), "{again}");
    let other = session.report_asset_materialization(Some("other"), vec![], None).unwrap_err();
    assert!(other.to_string().contains("\"other\""), "{other}");
    session.report_asset_check(None, "non_empty", false, CheckSeverity::Warn, vec![]).unwrap();
    session.report_custom_message(json!({"artifact_version": "v3"})).unwrap();
    session.close(None).unwrap();
    session.close(None).unwrap();
    assert!(matches!(session.log_info("late").unwrap_err(), Error::Closed { .. }));
    drop(session);

    let expected = [
        r#"{"__dagster_pipes_version":"0.1","method":"opened","params":{"extras":{"wandb_project":"p","artifact":{"name":"ds","type":"dataset"}}}}"#,
        r#"{"__dagster_pipes_version":"0.1","method":"log","params":{"message":"careful","level":"WARNING"}}"#,
        r#"{"__dagster_pipes_version":"0.1","method":"report_asset_materialization","params":{"asset_key":"ml/spied","metadata":{"rows":{"raw_value":42,"type":"int"},"artifact":{"raw_value":"wandb-artifact://ent/proj/ds:v3","type":"url"},"schema":{"raw_value":{"columns":[{"name":"a","type":"int"}]},"type":"table_schema"},"run":{"raw_value":"61d5060d","type":"dagster_run"},"anything":{"raw_value":[1,2],"type":"__infer__"}},"data_version":"v3"}}"#,
        r#"{"__dagster_pipes_version":"0.1","method":"report_asset_check","params":{"asset_key":"ml/spied","check_name":"non_empty","passed":false,"severity":"WARN","metadata":null}}"#,
        r#"{"__dagster_pipes_version":"0.1","method":"report_custom_message","params":{"payload":{"artifact_version":"v3"}}}"#,
        r#"{"__dagster_pipes_version":"0.1","method":"closed","params":{}}"#,
    ];
    assert_eq!(lines(&dir.path().join("messages")), expected);
}

#[test]
fn params_decode_strictly_and_name_the_param() {
    let encoded = encode_param(&json!({"path": "/tmp/ctx"}));
    assert!(encoded.starts_with("eJ"), "zlib header");
    assert_eq!(decode_param("X", &encoded).unwrap(), json!({"path": "/tmp/ctx"}));
    for (bad, reason) in [("%%%", "base64"), ("aGVsbG8=", "zlib")] {
        let err = decode_param("DAGSTER_PIPES_CONTEXT", bad).unwrap_err();
        assert!(err.to_string().contains("DAGSTER_PIPES_CONTEXT") && err.to_string().contains(reason), "{err}");
    }
    let err = PipesSession::open_with(
        &encode_param(&json!({"path": "/no/such/context"})),
        &encode_param(&json!({"stdio": "stderr"})),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/no/such/context"), "{err}");
    let err =
        PipesSession::open_with(&encode_param(&json!({"data": context()})), &encode_param(&json!({"stdio": "tty"})))
            .unwrap_err();
    assert!(err.to_string().contains("\"tty\""), "{err}");
}

#[test]
fn an_error_closes_the_session_with_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(dir.path());
    let io = std::io::Error::other("disk full");
    let wrapped = Error::Io { action: "write", path: "/data/x".into(), source: io };
    session.close(Some(&PipesException::from_error(&wrapped))).unwrap();
    drop(session);
    let last: Value = serde_json::from_str(lines(&dir.path().join("messages")).last().unwrap()).unwrap();
    assert_eq!(last["method"], "closed");
    assert_eq!(last["params"]["exception"]["message"], "cannot write /data/x: disk full");
    assert_eq!(last["params"]["exception"]["cause"]["message"], "disk full");
    assert_eq!(last["params"]["exception"].as_object().unwrap().len(), 5, "exactly the PipesException keys");
}

/// Reads complete lines only, as a line-safe tail does: a partial last line is never parsed.
fn read_complete_lines(path: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let mut reader = BufReader::new(fs::File::open(path).unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        assert!(line.ends_with('\n'), "every message is a complete line");
        out.push(serde_json::from_str(&line).unwrap());
        line.clear();
    }
    out
}

#[test]
fn two_hundred_thousand_messages_arrive_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let session = open(dir.path());
    let messages = dir.path().join("messages");
    // A concurrent reader tails the file while it grows; it must only ever see whole lines.
    let tail_path = messages.clone();
    let tail = std::thread::spawn(move || {
        let mut file = fs::File::open(&tail_path).unwrap();
        let mut pending = Vec::new();
        let mut seen = 0usize;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut file, &mut buffer).unwrap();
            if n == 0 {
                if pending.is_empty() && seen >= 200_002 {
                    return seen;
                }
                std::thread::yield_now();
                continue;
            }
            pending.extend_from_slice(&buffer[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                serde_json::from_slice::<Value>(&line).expect("a whole JSON message");
                seen += 1;
            }
        }
    });
    for i in 0..200_000u32 {
        session.report_custom_message(json!({"i": i})).unwrap();
    }
    session.close(None).unwrap();
    assert_eq!(tail.join().unwrap(), 200_002);
    let all = read_complete_lines(&messages);
    assert_eq!(all.len(), 200_002);
    assert!(all[1..200_001].iter().enumerate().all(|(i, m)| m["params"]["payload"]["i"] == i as u64));
    assert_eq!(all.last().unwrap()["method"], "closed");
}

#[test]
fn outside_dagster_there_is_no_session_and_half_a_setup_is_an_error() {
    // The flags alone (no env vars in the test environment).
    assert!(PipesSession::open_from_env_and_args(["--verbose".to_owned()]).unwrap().is_none());
    let err = PipesSession::open_from_env_and_args(["--dagster-pipes-context=eJx".to_owned()]).unwrap_err();
    assert!(err.to_string().contains("--dagster-pipes-messages"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("m");
    let args = [
        "--dagster-pipes-context".to_owned(),
        encode_param(&json!({"data": context()})),
        format!("--dagster-pipes-messages={}", encode_param(&json!({"path": messages}))),
    ];
    let session = PipesSession::open_from_env_and_args(args).unwrap().unwrap();
    drop(session);
    assert_eq!(lines(&messages).len(), 2, "opened, then closed by the drop");
}

/// Runs as a child of `a_panic_reaches_dagster_as_a_failure`; does nothing otherwise.
#[test]
fn panicking_step() {
    let Ok(messages) = std::env::var("PIPES_TEST_PANIC_MESSAGES") else { return };
    let session =
        PipesSession::open_with(&encode_param(&json!({"data": context()})), &encode_param(&json!({"path": messages})))
            .unwrap();
    session.install_panic_hook();
    session.log_info("about to fail").unwrap();
    let rows: Vec<u32> = Vec::new();
    let _ = rows.first().expect("the dataset has no rows");
}

#[test]
fn a_panic_reaches_dagster_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "pipes::panicking_step", "--test-threads=1"])
        .env("PIPES_TEST_PANIC_MESSAGES", &messages)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the step failed");
    let all = read_complete_lines(&messages);
    let methods: Vec<&str> = all.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["opened", "log", "closed"], "closed exactly once, by the panic hook");
    let exception = &all[2]["params"]["exception"];
    assert_eq!(exception["message"], "the dataset has no rows");
    assert_eq!(exception["name"], "panic");
    assert!(exception["stack"][0].as_str().unwrap().contains("pipes.rs"), "{exception}");
}
