//! The `dagster-wandb` binary, driven as a user drives it: real processes, real files, one store.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// An isolated environment: its own store, cache, home and working directory.
struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env { tmp: tempfile::tempdir().unwrap() }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.tmp.path().join(relative)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dagster-wandb"));
        cmd.current_dir(self.tmp.path())
            .env("WANDB_BASE_URL", format!("file://{}", self.path("store").display()))
            .env("WANDB_CACHE_DIR", self.path("cache"))
            .env("HOME", self.path("home"))
            .env_remove("WANDB_ENTITY")
            .env_remove("WANDB_PROJECT")
            .env_remove("WANDB_ARTIFACT_DIR");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs a command that must succeed and print one JSON object.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs a command that must fail with one line on stderr; returns that line.
    fn error(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(out.stdout.is_empty());
        lines[0].to_owned()
    }

    fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }
}

fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(root).unwrap().to_string_lossy().into_owned(), fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Like `read_tree`, for a tree a concurrent sweep may be emptying: what vanishes is skipped.
fn read_tree_while_swept(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(_) => {
                    if let Ok(bytes) = fs::read(&path) {
                        out.push((path.strip_prefix(root).unwrap().to_string_lossy().into_owned(), bytes));
                    }
                }
                Err(_) => {}
            }
        }
    }
    out
}

/// The dataset tree of the SDK vectors (`case1_add_dir`): its digest is known from wandb 0.31.0.
fn vector_tree(env: &Env) -> PathBuf {
    env.write("dataset/README.md", b"# tiny dataset\n");
    env.write("dataset/empty.txt", b"");
    env.write("dataset/train/a.csv", b"x,y\n1,2\n3,4\n");
    env.write("dataset/train/nested/deep/b.bin", &(0..=255u8).collect::<Vec<_>>());
    env.write("dataset/unicode-éè name.txt", "héllo wörld\n".as_bytes());
    env.write("dataset/val/c.json", b"{\"k\": \"v\\u00e9\", \"n\": [1, 2, 3]}\n");
    env.path("dataset")
}

#[test]
fn dry_run_matches_the_sdk_digest_and_prints_the_go_manifest() {
    let env = Env::new();
    let dir = vector_tree(&env);
    let out = env.json(&[
        "artifact",
        "put",
        dir.to_str().unwrap(),
        "--name",
        "vec-dir",
        "--type",
        "dataset",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(out["digest"], "f13c7db5fd9169d14c2ac7d73982e59e");
    assert_eq!((out["size"].as_u64(), out["file_count"].as_u64()), (Some(330), Some(6)));
    assert!(out.get("version").is_none(), "nothing was logged");
    assert_eq!(out["manifest"]["contents"]["val/c.json"]["digest"], "3lb+jODhK4JRTOmwMHrfOA==");
    assert_eq!(out["manifest"]["contents"]["empty.txt"]["size"], 0);
    assert!(!env.path("store").exists(), "a dry run does not even create the store");

    let prefixed = env.json(&[
        "artifact",
        "put",
        dir.to_str().unwrap(),
        "-n",
        "p",
        "-t",
        "dataset",
        "--prefix",
        "data/v1",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(prefixed["digest"], "63e3f258b76e7f34fd87bcba3976a857");
    let xxh = env.json(&[
        "artifact",
        "put",
        dir.to_str().unwrap(),
        "-n",
        "x",
        "-t",
        "dataset",
        "--digest",
        "xxh128",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(xxh["digest"], "5d4b6cdc3c65eb48c04c2d8ef678b065");
    assert_eq!(xxh["manifest"]["contents"]["README.md"]["extra"]["alg"], "XXH128");
}

#[test]
fn put_get_round_trip_is_byte_identical_and_cached() {
    let env = Env::new();
    let dir = vector_tree(&env);
    env.write("dataset/big.bin", &(0..5_000_000u32).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>());
    let put = env.json(&[
        "artifact",
        "put",
        dir.to_str().unwrap(),
        "--name",
        "my-ds",
        "--type",
        "dataset",
        "--alias",
        "best",
        "--description",
        "desc",
        "--metadata",
        "{\"k\": 1}",
        "--json",
    ]);
    assert_eq!((put["version"].as_str(), put["created"].as_bool()), (Some("v0"), Some(true)));
    assert_eq!(put["aliases"], serde_json::json!(["best", "latest"]));

    let get = env.json(&["artifact", "get", "my-ds:best", "--json"]);
    let root = PathBuf::from(get["download"]["root"].as_str().unwrap());
    assert_eq!(root, env.path("artifacts/my-ds:v0"), "default root is ./artifacts/NAME:vN");
    assert_eq!(read_tree(&root), read_tree(&dir));
    assert_eq!(get["download"]["fetched"], 7);
    assert_eq!(get["digest"], put["digest"]);

    let elsewhere = env.path("elsewhere");
    let second =
        env.json(&["artifact", "get", "local/uncategorized/my-ds:v0", "--root", elsewhere.to_str().unwrap(), "--json"]);
    assert_eq!((second["download"]["fetched"].as_u64(), second["download"]["from_cache"].as_u64()), (Some(0), Some(7)));
    assert_eq!(read_tree(&elsewhere), read_tree(&dir));
    let again = env.json(&["artifact", "get", "my-ds", "--json"]);
    assert_eq!(again["download"]["already_present"], 7, "nothing is copied when the root already matches");
}

#[test]
fn identical_content_keeps_the_version_and_changes_make_new_ones() {
    let env = Env::new();
    env.write("d/a.txt", b"one");
    let d = env.path("d");
    let first = env.json(&["artifact", "put", d.to_str().unwrap(), "-n", "ds", "-t", "dataset", "--json"]);
    let out = env
        .command()
        .args(["artifact", "put", d.to_str().unwrap(), "-n", "ds", "-t", "dataset", "--alias", "best", "--json"])
        .output()
        .unwrap();
    let same: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((same["version"].as_str(), same["created"].as_bool()), (Some("v0"), Some(false)));
    assert_eq!(same["digest"], first["digest"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("already exists with the same content. No new version will be created.")
    );
    env.write("d/a.txt", b"two");
    let changed = env.json(&["artifact", "put", d.to_str().unwrap(), "-n", "ds", "-t", "dataset", "--json"]);
    assert_eq!(changed["version"], "v1");
    let single = env.write("model.pt", b"weights");
    let model = env.json(&[
        "artifact",
        "put",
        single.to_str().unwrap(),
        "-n",
        "net",
        "-t",
        "model",
        "--prefix",
        "weights",
        "--json",
    ]);
    assert!(model["manifest"]["contents"]["weights/model.pt"].is_object());

    let listed = env.json(&["artifact", "ls", "--json"]);
    let names: Vec<(&str, u64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["version_count"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("ds", 2), ("net", 1)]);
    let models = env.json(&["artifact", "ls", "--type", "model", "--json"]);
    assert_eq!(models.as_array().unwrap().len(), 1);
    let text = env.run(&["artifact", "ls"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("ds:v1"));
}

#[test]
fn bad_input_gets_one_clear_line() {
    let env = Env::new();
    let d = env.write("d/a.txt", b"a").parent().unwrap().to_path_buf();
    let d = d.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["artifact", "put", d, "-n", "bad name", "-t", "dataset"], "Invalid name: 'bad name'"),
        (&["artifact", "put", d, "-n", "ok", "-t", "wandb-x"], "reserved for internal use"),
        (&["artifact", "put", d, "-n", "ok", "-t", "a:b"], "'a:b'"),
        (&["artifact", "put", d, "-n", "ok", "-t", "dataset", "--alias", "a/b"], "'a/b'"),
        (
            &["artifact", "put", d, "-n", "ok", "-t", "dataset", "--prefix", "../up"],
            "Invalid artifact path: '../up/a.txt'",
        ),
        (
            &["artifact", "put", d, "-n", "ok", "-t", "dataset", "--metadata", "{\"loss\": NaN}"],
            "NaN at line 1 column 10",
        ),
        (&["artifact", "put", d, "-n", "ok", "-t", "dataset", "--metadata", "[1]"], "must be a JSON object"),
        (&["artifact", "put", "missing-dir", "-n", "ok", "-t", "dataset"], "missing-dir"),
        (&["artifact", "put", d, "-n", "ok:v1", "-t", "dataset"], "--alias"),
        (&["artifact", "get", "nothing"], "no embedded store at"),
        (&["artifact", "--base-url", "ftp://x", "ls"], "ftp://x"),
        (&["artifact", "ls", "--project", "a/b"], "'a/b'"),
    ];
    for (args, expected) in cases {
        let line = env.error(args);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    env.json(&["artifact", "put", d, "-n", "cats", "-t", "dataset", "--json"]);
    let line = env.error(&["artifact", "put", d, "-n", "cats", "-t", "model"]);
    assert_eq!(
        line,
        "error: Artifact cats already exists with type 'dataset'; cannot create another with type 'model'"
    );
    let line = env.error(&["artifact", "get", "nothing"]);
    assert_eq!(line, "error: artifact membership 'nothing:latest' not found in 'local/uncategorized'");
    let runs = fs::read_dir(env.path("store/entities/local/projects/uncategorized/runs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(runs, 1, "the refused put created no run");
}

/// A tampered store cannot make `get` write outside the root: a manifest changed after its commit is refused,
/// and one whose version record was forged to match still cannot name a path outside the root.
#[test]
fn a_hostile_manifest_writes_nothing() {
    let env = Env::new();
    let d = env.write("d/a.txt", b"a").parent().unwrap().to_path_buf();
    env.json(&["artifact", "put", d.to_str().unwrap(), "-n", "t", "-t", "dataset", "--json"]);
    let version_dir = env.path("store/entities/local/projects/uncategorized/collections/t/versions/0");
    let manifest = fs::read_to_string(version_dir.join("manifest.json")).unwrap();
    let tampered = manifest.replace("\"a.txt\"", "\"../../escaped.txt\"");
    fs::write(version_dir.join("manifest.json"), &tampered).unwrap();
    let line = env.error(&["artifact", "get", "t", "--root", "out"]);
    assert!(line.contains("manifest.json: damaged manifest: its entries hash to"), "{line}");
    assert!(!env.path("out").exists());

    let record = fs::read_to_string(version_dir.join("version.json")).unwrap();
    let committed: Value = serde_json::from_str(&record).unwrap();
    let forged = artifact_core::Manifest::from_json(tampered.as_bytes()).unwrap().digest();
    fs::write(version_dir.join("version.json"), record.replace(committed["digest"].as_str().unwrap(), &forged))
        .unwrap();
    let line = env.error(&["artifact", "get", "t", "--root", "out"]);
    assert!(line.contains("refusing to download \"../../escaped.txt\""), "{line}");
    assert!(!env.path("out").exists());
    assert!(!env.path("escaped.txt").exists() && !env.tmp.path().parent().unwrap().join("escaped.txt").exists());
}

/// Several processes log to one collection at the same time: every one gets its own version, none is lost,
/// and every version reads back intact.
#[test]
fn concurrent_processes_share_one_store() {
    let env = Env::new();
    let writers = 6;
    let children: Vec<_> = (0..writers)
        .map(|i| {
            let dir = env.path(&format!("w{i}"));
            env.write(&format!("w{i}/shared.bin"), &vec![1u8; 200_000]);
            env.write(&format!("w{i}/own.txt"), format!("writer {i}").as_bytes());
            env.command()
                .args(["artifact", "put", dir.to_str().unwrap(), "-n", "busy", "-t", "dataset", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            v["version"].as_str().unwrap().to_owned()
        })
        .collect();
    versions.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    assert_eq!(versions, (0..writers).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let mut owners = Vec::new();
    for v in &versions {
        let root = env.path(&format!("check-{v}"));
        env.json(&["artifact", "get", &format!("busy:{v}"), "--root", root.to_str().unwrap(), "--json"]);
        assert_eq!(fs::read(root.join("shared.bin")).unwrap(), vec![1u8; 200_000]);
        owners.push(fs::read_to_string(root.join("own.txt")).unwrap());
    }
    owners.sort();
    assert_eq!(owners, (0..writers).map(|i| format!("writer {i}")).collect::<Vec<_>>());
}

fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(relative)
}

#[test]
fn serde_decode_prints_every_vector_as_its_view() {
    let env = Env::new();
    let dir = testdata("wandb-0.31.0/pickle");
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut decoded = 0;
    for spec in index["cases"].as_object().unwrap().values() {
        for file in spec["files"].as_object().unwrap().keys() {
            let out = env.json(&["serde", "decode", dir.join(file).to_str().unwrap()]);
            assert_eq!(out, spec["json"], "{file}");
            decoded += 1;
        }
    }
    assert_eq!(decoded, 56);
}

#[test]
fn serde_decode_bounds_decimal_integers_as_cpython_does_and_reads_its_variable() {
    let env = Env::new();
    let long_int = env.write("long.pickle", format!("I{}\n.", "7".repeat(5000)).as_bytes());
    let line = env.error(&["serde", "decode", long_int.to_str().unwrap()]);
    assert!(line.contains("5000 decimal digits, over the limit of 4300"), "{line}");
    assert!(line.contains("PYTHONINTMAXSTRDIGITS"), "{line}");
    let relaxed = env.command().env("PYTHONINTMAXSTRDIGITS", "0").args(["serde", "decode"]).arg(&long_int).output();
    let relaxed = relaxed.unwrap();
    assert!(relaxed.status.success(), "{}", String::from_utf8_lossy(&relaxed.stderr));
    assert!(String::from_utf8_lossy(&relaxed.stdout).contains(&"7".repeat(5000)));
    let out = env.command().env("PYTHONINTMAXSTRDIGITS", "12").args(["serde", "decode"]).arg(&long_int).output();
    let stderr = String::from_utf8(out.unwrap().stderr).unwrap();
    assert!(stderr.contains("PYTHONINTMAXSTRDIGITS=\"12\""), "{stderr}");
}

#[test]
fn serde_refuses_code_in_one_line_and_runs_nothing() {
    let env = Env::new();
    let marker = Path::new("/tmp/pickle-executed");
    let existed_before = marker.exists();
    let dir = testdata("wandb-0.31.0/pickle");
    let line = env.error(&["serde", "decode", dir.join("refuse_reduce_os_system.pickle").to_str().unwrap()]);
    assert!(line.contains("refusing pickle opcode GLOBAL 'posix system'"), "{line}");
    let line = env.error(&["serde", "decode", dir.join("refuse_lambda.cloudpickle").to_str().unwrap()]);
    assert!(line.contains("STACK_GLOBAL"), "{line}");
    let line = env.error(&["serde", "decode", dir.join("refuse_truncated.pickle").to_str().unwrap()]);
    assert!(line.contains("truncated"), "{line}");
    let mystery = env.write("mystery.bin", b"\x80\x05N.");
    let line = env.error(&["serde", "decode", mystery.to_str().unwrap()]);
    assert!(line.contains("--module"), "{line}");
    let line = env.error(&["serde", "encode", "--module", "yaml"]);
    assert!(line.contains("isn't recognized as a valid serialization module"), "{line}");
    if !existed_before {
        assert!(!marker.exists());
    }
}

#[test]
fn serde_encode_then_decode_round_trips_for_every_self_describing_module() {
    let env = Env::new();
    let view = serde_json::json!({
        "ints": [0, -1, {"$bigint": "123456789012345678901234567890"}],
        "t": {"$tuple": [1.5, "x", null]},
        "b": {"$bytes_hex": "00ff10"},
        "k": {"$dict_items": [[1, "one"], [{"$tuple": [2, 3]}, true]]}
    });
    for (module, parameters) in [
        ("pickle", "{}"),
        ("pickle", r#"{"protocol": 2}"#),
        ("dill", "{}"),
        ("cloudpickle", r#"{"protocol": 4}"#),
        ("joblib", r#"{"compress": 3}"#),
        ("joblib", r#"{"compress": ["gzip", 6]}"#),
        ("json", r#"{"indent": 2}"#),
    ] {
        let mut child = env
            .command()
            .args(["serde", "encode", "--module", module, "--parameters", parameters])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), view.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{module}");
        let dir = env.path(&format!("out-{module}-{}", parameters.len()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("output.{module}")), &out.stdout).unwrap();
        // Decoding a directory finds output.<module> as dagster-wandb does.
        assert_eq!(env.json(&["serde", "decode", dir.to_str().unwrap()]), view, "{module} {parameters}");
    }
}

/// A value nested as deep as the reader allows goes through decode and encode (the CLI's command thread has
/// the stack for it even unoptimised); one level deeper is refused.
#[test]
fn serde_handles_the_deepest_values_it_accepts() {
    let env = Env::new();
    let nested = |levels: usize| {
        let mut stream = vec![0x80, 0x02];
        stream.extend(std::iter::repeat_n(b']', levels));
        stream.extend(std::iter::repeat_n(b'a', levels - 1));
        stream.push(b'.');
        stream
    };
    let file = env.write("deep.pickle", &nested(1000));
    let out = env.run(&["serde", "decode", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim_end(), format!("{}{}", "[".repeat(1000), "]".repeat(1000)));

    let mut child = env
        .command()
        .args(["serde", "encode", "--module", "pickle", "--parameters", r#"{"protocol": 2}"#])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let encoded = child.wait_with_output().unwrap();
    assert!(encoded.status.success());
    let again = env.write("again.pickle", &encoded.stdout);
    let out = env.run(&["serde", "decode", again.to_str().unwrap()]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);

    let too_deep = env.write("too-deep.pickle", &nested(1002));
    let line = env.error(&["serde", "decode", too_deep.to_str().unwrap()]);
    assert!(line.contains("more than 1000 levels"), "{line}");
}

/// Downloads (which write the cache and the destination), cache cleanups to zero and sweeps, as separate
/// processes hammering one cache and one storage directory: no download fails, no file is ever partial, and with
/// a positive duration nothing just written is lost.
#[test]
fn cleanup_and_sweep_never_break_concurrent_downloads() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let env = Arc::new(Env::new());
    for i in 0..6 {
        env.write(
            &format!("src/part{i}.bin"),
            &(0..(300_000 * (i + 1))).map(|j| (j * 7 + i) as u8).collect::<Vec<_>>(),
        );
    }
    for i in 0..40 {
        env.write(&format!("src/small/{i}.txt"), format!("small {i}").as_bytes());
    }
    let src = env.path("src");
    env.json(&["artifact", "put", src.to_str().unwrap(), "-n", "shared", "-t", "dataset", "--json"]);
    let expected = read_tree(&src);
    let base = env.path("base");
    let storage = base.join("storage/wandb_artifacts_manager");

    for minutes in ["60", "0"] {
        let done = Arc::new(AtomicBool::new(false));
        let hammer = |args: Vec<String>| {
            let (env, done) = (env.clone(), done.clone());
            std::thread::spawn(move || {
                let mut runs = 0;
                while !done.load(Ordering::Relaxed) {
                    let out = env.command().args(&args).output().unwrap();
                    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
                    runs += 1;
                }
                runs
            })
        };
        let cleaner =
            hammer(vec!["cache".into(), "cleanup".into(), "--max-size".into(), "0".into(), "--remove-temp".into()]);
        let sweeper = hammer(vec![
            "cache".into(),
            "sweep".into(),
            "--base-dir".into(),
            base.display().to_string(),
            "--minutes".into(),
            minutes.into(),
        ]);
        for i in 0..10 {
            let root = storage.join(format!("artifacts/shared.v0-{}", i % 3));
            let out = env
                .command()
                .args(["artifact", "get", "shared:v0", "--root", root.to_str().unwrap(), "--json"])
                .output()
                .unwrap();
            assert!(out.status.success(), "get {i} with sweeps of {minutes}: {}", String::from_utf8_lossy(&out.stderr));
            if minutes == "60" {
                // Nothing just written is lost: the whole tree is there, byte for byte.
                assert_eq!(read_tree(&root), expected, "get {i}");
            } else {
                // A sweep of 0 may remove files right after the download, but never leaves a partial one.
                for (path, bytes) in read_tree_while_swept(&root) {
                    let original =
                        &expected.iter().find(|(p, _)| *p == path).unwrap_or_else(|| panic!("unexpected {path}")).1;
                    assert_eq!(&bytes, original, "{path} is partial or wrong");
                }
            }
        }
        done.store(true, Ordering::Relaxed);
        let (cleanups, sweeps) = (cleaner.join().unwrap(), sweeper.join().unwrap());
        assert!(cleanups > 0 && sweeps > 0, "the hammers ran ({cleanups} cleanups, {sweeps} sweeps)");
    }
    // No temporary file survives: every writer finished or cleaned up after itself.
    let leftovers: Vec<_> = read_tree(&env.path("cache")).into_iter().filter(|(p, _)| p.contains("/tmp/")).collect();
    assert!(leftovers.is_empty(), "{:?}", leftovers.iter().map(|(p, _)| p).collect::<Vec<_>>());
    if storage.exists() {
        assert!(read_tree(&storage).iter().all(|(p, _)| !p.contains(".dwtmp-")));
    }
}

/// `dagster-wandb server` on a free port, killed when dropped.
struct ServerProcess {
    child: std::process::Child,
    url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(env: &Env, api_key: &str) -> ServerProcess {
    start_server_with(env, &["--api-key", api_key])
}

/// `dagster-wandb server` over the env's `served-store` with `args` (how callers are authenticated).
fn start_server_with(env: &Env, args: &[&str]) -> ServerProcess {
    use std::io::BufRead;
    let mut child = env
        .command()
        .args(["server", "--port", "0", "--store"])
        .arg(env.path("served-store"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = std::io::BufReader::new(stdout)
        .lines()
        .map(Result::unwrap)
        .find_map(|line| line.strip_prefix("WANDB_BASE_URL=").map(str::to_owned))
        .expect("the server prints its URL");
    ServerProcess { child, url }
}

#[test]
fn a_users_file_with_hashed_keys_lets_each_user_reach_their_entities_only() {
    use std::io::Write as _;
    let env = Env::new();
    let hash_of = |key: &str| {
        let mut child = env
            .command()
            .args(["server", "hash-key"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{key}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let (alice, bob) = ("a".repeat(40), "b".repeat(48));
    let out = hash_of(&alice);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alice_hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(alice_hash.starts_with("blake3:") && alice_hash.len() == 71, "{alice_hash}");
    let short = hash_of("too-short");
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("40+ characters; this one has 9"));

    let users = serde_json::json!({"users": [
        {"name": "alice", "api_key_hash": alice_hash, "entities": ["alice", "team"]},
        {"name": "bob", "api_key": bob, "entities": ["bob"]},
    ]});
    let users_file = env.write("users.json", users.to_string().as_bytes());
    let server = start_server_with(&env, &["--users", users_file.to_str().unwrap()]);
    let dir = vector_tree(&env);
    let put = |key: &str, name: &str| {
        env.command()
            .env("WANDB_BASE_URL", &server.url)
            .env("WANDB_API_KEY", key)
            .args(["artifact", "put", dir.to_str().unwrap(), "--name", name, "--type", "dataset", "--json"])
            .output()
            .unwrap()
    };
    for (key, name) in [(&alice, "alice/p/ds"), (&alice, "team/p/ds"), (&bob, "bob/p/ds")] {
        let out = put(key, name);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for (key, name) in [(&bob, "team/p/ds"), (&bob, "alice/p/other"), (&"c".repeat(40), "bob/p/ds")] {
        let out = put(key, name);
        assert_eq!(out.status.code(), Some(1), "{name} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(stderr.contains("permission denied") || stderr.contains("401"), "{name}: {stderr}");
    }

    // A bad users file is named with the user at fault; open mode is refused off loopback.
    let bad = env.write("bad.json", br#"{"users": [{"name": "eve", "api_key": "short", "entities": ["eve"]}]}"#);
    let error = env.error(&["server", "--port", "0", "--store", "s2", "--users", bad.to_str().unwrap()]);
    assert!(error.contains("bad.json") && error.contains("\"eve\""), "{error}");
    let error = env.error(&["server", "--port", "0", "--store", "s2", "--host", "0.0.0.0"]);
    assert!(error.contains("0.0.0.0"), "{error}");
}

#[test]
fn put_get_and_link_through_the_server_and_on_the_store() {
    let env = Env::new();
    let dir = vector_tree(&env);
    let server = start_server(&env, "secret-key-1");
    let remote = |args: &[&str]| {
        let out = env
            .command()
            .env("WANDB_BASE_URL", &server.url)
            .env("WANDB_API_KEY", "secret-key-1")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let put = remote(&[
        "artifact",
        "put",
        dir.to_str().unwrap(),
        "--name",
        "ent/proj/my-ds",
        "--type",
        "dataset",
        "--alias",
        "best",
        "--tag",
        "raw data",
        "--json",
    ]);
    assert_eq!((put["version"].as_str(), put["created"].as_bool()), (Some("v0"), Some(true)));
    assert_eq!(put["tags"], serde_json::json!(["raw data"]));
    let again =
        remote(&["artifact", "put", dir.to_str().unwrap(), "--name", "ent/proj/my-ds", "--type", "dataset", "--json"]);
    assert_eq!(again["created"], false);
    let listed = remote(&["artifact", "ls", "--entity", "ent", "--project", "proj", "--json"]);
    assert_eq!(listed[0]["name"], "my-ds");
    assert_eq!(
        (listed[0]["version_count"].as_u64(), listed[0]["latest"]["digest"].as_str()),
        (Some(1), put["digest"].as_str())
    );

    let root = env.path("from-server");
    let get = remote(&["artifact", "get", "ent/proj/my-ds:best", "--root", root.to_str().unwrap(), "--json"]);
    assert_eq!(get["digest"], put["digest"]);
    assert_eq!(read_tree(&root), read_tree(&dir));

    let linked =
        remote(&["artifact", "link", "ent/proj/my-ds:best", "ent/proj/portfolio-x", "--alias", "prod", "--json"]);
    assert_eq!(linked["linked_from"], "ent/proj/my-ds:v0");
    assert_eq!(linked["aliases"], serde_json::json!(["latest", "prod"]));

    // The served store is an ordinary embedded store: the file:// backend reads what the server wrote.
    let store_url = format!("file://{}", env.path("served-store").display());
    let local = env
        .command()
        .env("WANDB_BASE_URL", &store_url)
        .args(["artifact", "get", "ent/proj/portfolio-x:prod", "--json", "--root"])
        .arg(env.path("local"))
        .output()
        .unwrap();
    assert!(local.status.success(), "{}", String::from_utf8_lossy(&local.stderr));
    assert_eq!(read_tree(&env.path("local")), read_tree(&dir));

    // Linking on the embedded store works the same way.
    let put = env.json(&["artifact", "put", dir.to_str().unwrap(), "--name", "m", "--type", "model", "--json"]);
    let linked = env.json(&["artifact", "link", "m:v0", "registry-model", "--alias", "staging", "--json"]);
    assert_eq!((linked["name"].as_str(), linked["digest"].as_str()), (Some("registry-model"), put["digest"].as_str()));
    let err = env.error(&["artifact", "put", dir.to_str().unwrap(), "--name", "t", "--type", "model", "--tag", "a;b"]);
    assert!(err.contains("Invalid tag 'a;b'"), "{err}");
    let err = env.error(&["artifact", "link", "m:v0", "m"]);
    assert!(err.contains("is an artifact collection, not a portfolio"), "{err}");

    // A wrong key is refused, and the refusal does not echo it.
    let out = env
        .command()
        .env("WANDB_BASE_URL", &server.url)
        .env("WANDB_API_KEY", "not-the-key-42")
        .args(["artifact", "get", "ent/proj/my-ds"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("not-the-key-42"), "{stderr}");
}

#[test]
fn run_ls_and_history_show_what_a_run_logged() {
    use wandb_api::{Api, RunSettings, Settings};
    let env = Env::new();
    let api = Api::new(Settings::embedded(env.path("store")).with_cache_dir(None)).unwrap();
    let mut run = api.init(RunSettings::new("proj").entity("ent").id("train1").name("training")).unwrap();
    for loss in [0.5, 0.25] {
        run.log(serde_json::json!({"loss": loss}).as_object().unwrap().clone()).unwrap();
    }
    run.finish_with_exit_code(2).unwrap();

    let listed = env.json(&["run", "ls", "--entity", "ent", "--project", "proj", "--json"]);
    assert_eq!(listed[0]["id"], "train1");
    assert_eq!(listed[0]["name"], "training");
    assert_eq!(listed[0]["state"], "failed");
    assert_eq!(listed[0]["exit_code"], 2);
    assert_eq!(listed[0]["history_rows"], 2);

    let out = env.run(&["run", "history", "ent/proj/train1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["_step"].as_u64(), rows[0]["loss"].as_f64()), (Some(0), Some(0.5)));
    assert_eq!((rows[1]["_step"].as_u64(), rows[1]["loss"].as_f64()), (Some(1), Some(0.25)));

    let error = env.error(&["run", "history", "ent/proj/nope"]);
    assert_eq!(error, "error: run 'nope' not found in 'ent/proj'");
}

/// N writer processes upsert their parts of one artifact at the same time, then one finishes it: the committed
/// version holds every part, and a part upserted after the finish is refused (the SDK silently loses it).
#[test]
fn parallel_writers_build_one_distributed_artifact_on_the_store_and_through_the_server() {
    const WRITERS: usize = 4;
    let env = Env::new();
    let server = start_server(&env, "dist-key");
    for (label, base_url) in [("store", None), ("server", Some(server.url.clone()))] {
        let command = |args: &[&str]| {
            let mut cmd = env.command();
            if let Some(url) = &base_url {
                cmd.env("WANDB_BASE_URL", url).env("WANDB_API_KEY", "dist-key");
            }
            cmd.args(args);
            cmd
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|i| {
                let part = env
                    .write(&format!("{label}-data/part{i}/table_{i}.json"), format!("{{\"rows\": [{i}]}}").as_bytes());
                let dir = part.parent().unwrap().to_string_lossy().into_owned();
                command(&[
                    "artifact",
                    "put",
                    &dir,
                    "--name",
                    "dist-ds",
                    "--type",
                    "dataset",
                    "--prefix",
                    "parts",
                    "--distributed-id",
                    "grp-1",
                    "--json",
                ])
                .output_async()
            })
            .collect();
        for writer in writers {
            let out = writer.wait_with_output().unwrap();
            assert!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
            let part: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!((part["finished"].as_bool(), part["part_files"].as_u64()), (Some(false), Some(1)));
        }
        let merged = env.write(
            &format!("{label}-data/merged.partitioned-table.json"),
            br#"{"_type": "partitioned-table", "parts_path": "parts"}"#,
        );
        let out = command(&[
            "artifact",
            "put",
            &merged.to_string_lossy(),
            "--name",
            "dist-ds",
            "--type",
            "dataset",
            "--distributed-id",
            "grp-1",
            "--finish",
            "--alias",
            "merged",
            "--json",
        ])
        .output()
        .unwrap();
        assert!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        let finished: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut paths: Vec<String> = finished["manifest"]["contents"].as_object().unwrap().keys().cloned().collect();
        paths.sort();
        let mut expected: Vec<String> = (0..WRITERS).map(|i| format!("parts/table_{i}.json")).collect();
        expected.push("merged.partitioned-table.json".to_owned());
        expected.sort();
        assert_eq!(paths, expected, "{label}");
        assert_eq!(finished["version"], "v0", "{label}");

        let late = env.write(&format!("{label}-data/late/table_9.json"), b"{}");
        let out = command(&[
            "artifact",
            "put",
            &late.parent().unwrap().to_string_lossy(),
            "--name",
            "dist-ds",
            "--type",
            "dataset",
            "--distributed-id",
            "grp-1",
        ])
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(1), "{label}: a late upsert must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("grp-1") && stderr.contains("finished"), "{label}: {stderr}");
    }
}

trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}

/// `launch create-job`, `launch add` and `launch agent` through `dagster-wandb server`: the agent runs the job
/// with the run's `WANDB_*` environment, and SIGTERM stops it cleanly.
#[cfg(unix)]
#[test]
fn launch_add_and_an_agent_run_a_local_process_job_and_sigterm_stops_it() {
    let env = Env::new();
    let server = start_server(&env, "launch-key");
    let seen = env.path("job-saw.txt");
    env.write(
        "job-code/run.sh",
        format!("echo \"$WANDB_RUN_ID $WANDB_LAUNCH_QUEUE_NAME $WANDB_CONFIG $*\" > '{}'\n", seen.display()).as_bytes(),
    );
    let remote = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.env("WANDB_BASE_URL", &server.url).env("WANDB_API_KEY", "launch-key").env("WANDB_ENTITY", "ent").args(args);
        cmd
    };
    let out = remote(&[
        "launch",
        "create-job",
        &env.path("job-code").to_string_lossy(),
        "--name",
        "job-sh",
        "--project",
        "proj",
        "--entry-point",
        "sh",
        "--entry-point",
        "run.sh",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(job, "ent/proj/job-sh:v0");

    // No queue yet: `default` is created on the first launch, as the SDK does.
    let out = remote(&[
        "launch",
        "add",
        "--job",
        &job,
        "--resource",
        "local-process",
        "--config",
        r#"{"overrides": {"run_config": {"lr": 0.1}, "args": ["--epochs", "2"]}}"#,
        "--json",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let queued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(queued["queue"], "default");

    let agent = remote(&["launch", "agent", "--queue", "default", "--poll-interval", "0.1"]).output_async();
    let started = std::time::Instant::now();
    while !seen.exists() && started.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let saw = fs::read_to_string(&seen).expect("the job ran");
    let words: Vec<&str> = saw.split_whitespace().collect();
    assert_eq!(words[0].len(), 8, "the run id the agent picked: {saw}");
    assert_eq!(&words[1..], ["default", "{\"lr\":0.1}", "--epochs", "2"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    send_signal(&agent, "-TERM");
    let out = agent.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopped: 1 succeeded, 0 failed, 0 stopped"), "{stderr}");

    let error = env.error(&["launch", "agent", "--queue", "q1"]);
    assert!(error.contains("launch needs a W&B server"), "{error}");
}

#[test]
fn put_takes_a_uri_in_place_of_a_path_and_logs_it_by_reference() {
    let env = Env::new();
    env.write("refs/a.txt", b"alpha\n");
    env.write("refs/sub/b.txt", b"beta\n");
    let uri = format!("file://{}", env.path("refs").display());
    let dry = env.json(&["artifact", "put", &uri, "--name", "refs", "--type", "dataset", "--dry-run", "--json"]);
    let contents = dry["manifest"]["contents"].as_object().unwrap();
    assert_eq!(contents.keys().collect::<Vec<_>>(), ["a.txt", "sub/b.txt"]);
    assert_eq!(contents["a.txt"]["ref"], format!("{uri}/a.txt"));
    let unchecked = env.json(&[
        "artifact",
        "put",
        &uri,
        "--name",
        "refs",
        "--type",
        "dataset",
        "--no-checksum",
        "--dry-run",
        "--json",
    ]);
    // As the SDK: a file:// directory still expands, each entry's digest then being the MD5 of its URI.
    let unchecked = unchecked["manifest"]["contents"].as_object().unwrap();
    assert_eq!(unchecked.len(), 2);
    assert_ne!(unchecked["a.txt"]["digest"], contents["a.txt"]["digest"]);
    let limited =
        env.error(&["artifact", "put", &uri, "--name", "refs", "--type", "dataset", "--max-objects", "1", "--dry-run"]);
    assert!(limited.contains('1'), "{limited}");
    let local = env.error(&[
        "artifact",
        "put",
        &env.path("refs").to_string_lossy(),
        "--name",
        "refs",
        "--type",
        "dataset",
        "--no-checksum",
    ]);
    assert!(local.contains("--no-checksum and --max-objects apply to references"), "{local}");
}

/// After logging, on the embedded store and through the server: aliases move, tags, description, metadata and
/// TTL change, `verify` exits 1 on differences, `get --checkout` repairs a directory, `--path-prefix` fetches
/// part, `delete` refuses aliases unless told, `unlink` keeps the source, and `store gc` reclaims the bodies.
#[test]
fn versions_are_edited_verified_checked_out_deleted_and_collected() {
    let env = Env::new();
    let server = start_server(&env, "edit-key");
    let served_store = format!("file://{}", env.path("served-store").display());
    let store_url = format!("file://{}", env.path("store").display());
    for base_url in [store_url.as_str(), server.url.as_str()] {
        let run = |args: &[&str]| {
            env.command().env("WANDB_BASE_URL", base_url).env("WANDB_API_KEY", "edit-key").args(args).output().unwrap()
        };
        let json = |args: &[&str]| {
            let out = run(args);
            assert!(out.status.success(), "{base_url} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        let error = |args: &[&str]| {
            let out = run(args);
            assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
            String::from_utf8(out.stderr).unwrap()
        };
        let v0_dir = env.write("v0/a.txt", b"alpha").parent().unwrap().to_owned();
        env.write("v0/img/1.png", b"one");
        let v1_dir = env.write("v1/a.txt", b"ALPHA").parent().unwrap().to_owned();
        env.write("v1/img/1.png", b"one");
        for dir in [&v0_dir, &v1_dir] {
            json(&["artifact", "put", dir.to_str().unwrap(), "--name", "ent/proj/ds", "--type", "dataset", "--json"]);
        }

        let edited = json(&[
            "artifact",
            "edit",
            "ent/proj/ds:v0",
            "--add-alias",
            "production",
            "--tag",
            "gold",
            "--description",
            "the first",
            "--metadata",
            r#"{"rows": 2}"#,
            "--ttl",
            "30d",
            "--json",
        ]);
        assert_eq!(edited["aliases"], serde_json::json!(["production"]), "{base_url}");
        assert_eq!(edited["tags"], serde_json::json!(["gold"]));
        assert_eq!((edited["description"].as_str(), edited["metadata"]["rows"].as_u64()), (Some("the first"), Some(2)));
        assert_eq!(edited["ttl"], serde_json::json!({"seconds": 30 * 86_400}));
        // The alias moves to the version it is added to.
        let moved = json(&["artifact", "edit", "ent/proj/ds:v1", "--add-alias", "production", "--json"]);
        assert_eq!(moved["aliases"], serde_json::json!(["latest", "production"]));
        let err = error(&["artifact", "edit", "ent/proj/ds:v1", "--remove-alias", "latest"]);
        assert!(err.contains("\"latest\" cannot be added or removed"), "{err}");
        let err = error(&["artifact", "edit", "ent/proj/ds:v1", "--ttl", "soon"]);
        assert!(err.contains("invalid time to live \"soon\""), "{err}");

        // verify, then get --checkout repairs the directory, and --path-prefix fetches a part.
        let work = env.path(&format!("work-{}", base_url.len()));
        json(&["artifact", "get", "ent/proj/ds:production", "--root", work.to_str().unwrap(), "--json"]);
        let clean = json(&["artifact", "verify", "ent/proj/ds:production", "--root", work.to_str().unwrap(), "--json"]);
        assert_eq!(clean["verified"], 2);
        fs::write(work.join("a.txt"), b"tampered").unwrap();
        fs::write(work.join("stray.txt"), b"?").unwrap();
        let out = run(&["artifact", "verify", "ent/proj/ds:production", "--root", work.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("changed  a.txt") && stdout.contains("extra    stray.txt"), "{stdout}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("1 changed, 1 extra"));
        let fixed = json(&[
            "artifact",
            "get",
            "ent/proj/ds:production",
            "--root",
            work.to_str().unwrap(),
            "--checkout",
            "--json",
        ]);
        assert_eq!(fixed["removed"], serde_json::json!(["stray.txt"]));
        assert_eq!(read_tree(&work), read_tree(&v1_dir));
        let part = env.path(&format!("part-{}", base_url.len()));
        json(&[
            "artifact",
            "get",
            "ent/proj/ds:v0",
            "--root",
            part.to_str().unwrap(),
            "--path-prefix",
            "img/",
            "--json",
        ]);
        assert_eq!(read_tree(&part), [("img/1.png".to_owned(), b"one".to_vec())]);

        // Link and unlink: the source stays.
        json(&["artifact", "link", "ent/proj/ds:v0", "ent/proj/best-ds", "--json"]);
        let out = run(&["artifact", "unlink", "ent/proj/best-ds:v0"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(error(&["artifact", "get", "ent/proj/best-ds:v0"]).contains("best-ds"));

        // Delete: refused while aliased, then with the aliases.
        let err = error(&["artifact", "delete", "ent/proj/ds:v1"]);
        assert!(err.contains("--delete-aliases"), "{err}");
        let out = run(&["artifact", "delete", "ent/proj/ds:v1", "--delete-aliases"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            json(&["artifact", "get", "ent/proj/ds:latest", "--root", part.to_str().unwrap(), "--json"])["version"],
            "v0"
        );
    }

    // gc on each store: v1's own body (the changed a.txt) is no longer referenced.
    for store in [&store_url, &served_store] {
        let out = env
            .command()
            .env("WANDB_BASE_URL", store)
            .args(["store", "gc", "--grace-hours", "0", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (report["objects_removed"].as_u64(), report["objects_kept"].as_u64()),
            (Some(1), Some(2)),
            "{store}"
        );
    }
    let err = env.error(&["store", "gc", "--base-url", &server.url]);
    assert!(err.contains("works on an embedded store"), "{err}");
}

/// `sync` pushes an embedded store's project to a server and pulls it into another store: the same bytes and
/// aliases come out, and syncing again copies, fetches and stores nothing.
#[test]
fn sync_pushes_and_pulls_a_project_and_again_moves_nothing() {
    let env = Env::new();
    let dir = vector_tree(&env);
    let server = start_server(&env, "sync-key");
    env.json(&[
        "artifact",
        "put",
        dir.to_str().unwrap(),
        "--name",
        "ent/proj/ds",
        "--type",
        "dataset",
        "--alias",
        "best",
        "--json",
    ]);
    let first = format!("file://{}", env.path("store").display());
    let second = format!("file://{}", env.path("second").display());
    let sync = |from: &str, to: &str| {
        let out = env
            .command()
            .env("WANDB_API_KEY", "sync-key")
            .args(["sync", "--from", from, "--to", to, "--entity", "ent", "--project", "proj", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let pushed = sync(&first, &server.url);
    assert_eq!(pushed["versions_copied"], serde_json::json!(["ds:v0"]));
    let pulled = sync(&server.url, &second);
    assert_eq!(pulled["versions_copied"], serde_json::json!(["ds:v0"]));
    for again in [sync(&first, &server.url), sync(&server.url, &second)] {
        assert_eq!(again["versions_copied"], serde_json::json!([]));
        assert_eq!((again["files_fetched"].as_u64(), again["bytes_stored"].as_u64()), (Some(0), Some(0)), "{again}");
    }
    let root = env.path("from-second");
    let got = env
        .command()
        .env("WANDB_BASE_URL", &second)
        .args(["artifact", "get", "ent/proj/ds:best", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(read_tree(&root), read_tree(&dir));
}

/// `registry create | ls | delete` on the embedded store and through the server, with `artifact link` into it and
/// `artifact ls` marking its collections.
#[test]
fn registries_are_created_listed_linked_into_and_deleted() {
    let env = Env::new();
    let dir = vector_tree(&env);
    let server = start_server(&env, "registry-key");
    let store_url = format!("file://{}", env.path("store").display());
    for base_url in [store_url.as_str(), server.url.as_str()] {
        let run = |args: &[&str]| {
            let out = env
                .command()
                .env("WANDB_BASE_URL", base_url)
                .env("WANDB_API_KEY", "registry-key")
                .env("WANDB_ENTITY", "ent")
                .env("WANDB_PROJECT", "proj")
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{base_url} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let created = run(&["registry", "create", "team", "--type", "model", "--description", "team models", "--json"]);
        let created: Value = serde_json::from_str(&created).unwrap();
        assert_eq!(
            (created["allow_all_artifact_types"].as_bool(), created["artifact_types"].clone()),
            (Some(false), serde_json::json!(["model"]))
        );
        run(&["artifact", "put", dir.to_str().unwrap(), "--name", "m", "--type", "model"]);
        run(&["artifact", "link", "m:v0", "wandb-registry-team/champion", "--alias", "production"]);
        let listed = run(&["registry", "ls"]);
        assert!(listed.contains("team") && listed.contains("[model]") && listed.contains("team models"), "{listed}");
        let collections = run(&["artifact", "ls", "--project", "wandb-registry-team"]);
        assert!(collections.contains("champion:v0") && collections.contains("(registry collection)"), "{collections}");
        run(&["registry", "delete", "team"]);
        assert!(run(&["registry", "ls"]).contains("no registries"), "{base_url}");
    }
}

/// A server that cannot be connected to (a closed port; TLS to a plain-HTTP server) fails within the connect
/// deadline with one line naming the URL, after announcing the retries on stderr; not after 15 silent minutes.
#[test]
fn an_unreachable_server_fails_fast_and_says_so() {
    let env = Env::new();
    let server = start_server(&env, &"k".repeat(40));
    let plain_as_tls = server.url.replace("http://", "https://");
    for url in ["http://127.0.0.1:1", plain_as_tls.as_str()] {
        let mut child = env
            .command()
            .args(["artifact", "ls", "--base-url", url, "--retry-deadline", "4s"])
            .env("WANDB_API_KEY", "k".repeat(40))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A bound on a failure, not a performance figure: without the connect deadline this took 906 s.
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "{url}: still retrying after 60 s");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("error: cannot connect to {url}/graphql")), "{url}: {stderr}");
        assert!(last.contains("is the server running"), "{stderr}");
        assert!(stderr.lines().any(|l| l.contains("retrying POST") && l.contains("attempt 2 of 20")), "{stderr}");
    }
    let refused = env.run(&["artifact", "ls", "--retry-deadline", "soon"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("\"soon\" is not a duration"));
}

/// A damaged record fails only what needs it: listings show the rest and say what they skipped, a version is
/// shown without its aliases when only the alias file is damaged; `store check` names every problem and
/// `--repair` rebuilds what can be rebuilt.
#[test]
fn one_damaged_record_breaks_one_thing_and_store_check_finds_and_repairs() {
    let env = Env::new();
    let a = env.write("a/x.txt", b"first").parent().unwrap().to_path_buf();
    let b = env.write("b/y.txt", b"second").parent().unwrap().to_path_buf();
    env.json(&["artifact", "put", a.to_str().unwrap(), "-n", "alpha", "-t", "dataset", "--json"]);
    let beta =
        env.json(&["artifact", "put", b.to_str().unwrap(), "-n", "beta", "-t", "dataset", "--alias", "best", "--json"]);
    let collections = env.path("store/entities/local/projects/uncategorized/collections");

    fs::write(collections.join("beta/aliases.json"), b"{not json").unwrap();
    let got = env.run(&["artifact", "get", "beta:v0", "--root", env.path("got").to_str().unwrap()]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(fs::read(env.path("got/y.txt")).unwrap(), b"second");

    fs::write(collections.join("alpha/versions/0/version.json"), b"{\"id\": \"trunc").unwrap();
    let listed = env.run(&["artifact", "ls"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let (stdout, stderr) = (String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    assert!(stdout.contains("beta") && !stdout.contains("alpha"), "{stdout}");
    assert!(stderr.contains("skipping a damaged collection") && stderr.contains("alpha"), "{stderr}");

    let id = beta["manifest"]["contents"]["y.txt"]["birthArtifactID"].as_str().unwrap();
    let hex = artifact_core::b64_to_hex(id).unwrap();
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let number = String::from_utf8(bytes).unwrap().trim_start_matches("Artifact:").to_owned();
    fs::remove_file(env.path(&format!("store/index/artifacts/{number}.json"))).unwrap();
    let body = fs::read_dir(env.path("store/objects/md5")).unwrap().next().unwrap().unwrap().path();
    let body = fs::read_dir(body).unwrap().next().unwrap().unwrap().path();
    let original = fs::read(&body).unwrap();
    fs::write(&body, vec![b'!'; original.len()]).unwrap();

    let check = |repair: bool| {
        let mut args = vec!["store", "check", "--json"];
        if repair {
            args.push("--repair");
        }
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "damage remains: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let report = check(false);
    let problems = report["problems"].as_array().unwrap();
    let says = |needle: &str| problems.iter().any(|p| p["what"].as_str().unwrap().contains(needle));
    assert!(says("damaged record"), "{report}");
    assert!(says("the id index lacks this version (beta:v0)"), "{report}");
    assert!(says("corrupt body"), "{report}");
    assert!(problems.iter().all(|p| p["repaired"] == false));

    let repaired = check(true);
    let fixed: Vec<&str> = repaired["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["repaired"] == true)
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(fixed.iter().any(|p| p.ends_with("beta/aliases.json")), "{repaired}");
    assert!(fixed.iter().any(|p| p.ends_with(&format!("{number}.json"))), "{repaired}");
    // What was rebuilt stays rebuilt: only the unrepairable damage is left.
    let again = check(false);
    assert!(
        again["problems"].as_array().unwrap().iter().all(|p| {
            let what = p["what"].as_str().unwrap();
            what.contains("corrupt body") || what.contains("damaged record")
        }),
        "{again}"
    );
    let by_id = env.run(&["artifact", "get", "beta:best"]);
    assert!(!by_id.status.success(), "the alias went with the damaged file");
}

/// `pipes launch-job` / `launch-agent` are Dagster steps: outside Dagster they exit 2 and say what they need.
#[test]
fn pipes_steps_outside_dagster_exit_2_and_say_so() {
    let env = Env::new();
    for step in ["launch-job", "launch-agent"] {
        let out = env.command().args(["pipes", step]).env_remove("DAGSTER_PIPES_CONTEXT").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{step}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not launched by Dagster Pipes (DAGSTER_PIPES_CONTEXT is not set)"), "{stderr}");
    }
}

/// A download of one 70 MiB file through a server that delays every request, caught while its body is being
/// written into the cache: what the interruption tests stop with a signal.
#[cfg(unix)]
struct GetInFlight {
    server: ServerProcess,
    key: &'static str,
    body: Vec<u8>,
    root: PathBuf,
    cache_tmp: PathBuf,
}

#[cfg(unix)]
impl GetInFlight {
    /// Logs the file, starts its download and returns once the body is being written, with the download's process.
    fn start(env: &Env, key: &'static str) -> (GetInFlight, std::process::Child) {
        // Big enough to come in ranges (64 MiB and up), each one delayed: the download is in flight for seconds.
        let body: Vec<u8> = (0..70u32 << 20).map(|i| (i % 251) as u8).collect();
        let data = env.write("data/model.bin", &body);
        let server = start_server_with(env, &["--api-key", key, "--download-latency-ms", "400"]);
        let mut put = env.command();
        put.env("WANDB_BASE_URL", &server.url).env("WANDB_API_KEY", key);
        let out = put.args(["artifact", "put"]).arg(data.parent().unwrap()).args(["-n", "big", "-t", "model"]).output();
        assert!(out.as_ref().unwrap().status.success(), "{out:?}");
        let flight =
            GetInFlight { server, key, body, root: env.path("root"), cache_tmp: env.path("cache/artifacts/tmp") };
        let child = flight.get_command(env).output_async();
        let started = std::time::Instant::now();
        while fs::read_dir(&flight.cache_tmp).map_or(0, Iterator::count) == 0 {
            assert!(started.elapsed().as_secs() < 30, "the download never started writing");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (flight, child)
    }

    /// `artifact get big:latest --root <root>` through the server.
    fn get_command(&self, env: &Env) -> Command {
        let mut get = env.command();
        get.env("WANDB_BASE_URL", &self.server.url).env("WANDB_API_KEY", self.key);
        get.args(["artifact", "get", "big:latest", "--root"]).arg(&self.root);
        get
    }
}

#[cfg(unix)]
fn send_signal(child: &std::process::Child, signal: &str) {
    assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
}

/// Ctrl-C in the middle of a download: the command removes the temporaries it was writing, says what was kept,
/// and exits 130; neither the cache nor the root holds a partial file afterwards.
#[cfg(unix)]
#[test]
fn an_interrupted_get_leaves_no_partial_file_and_says_what_was_kept() {
    let env = Env::new();
    let (flight, child) = GetInFlight::start(&env, "interrupt0123456789abcdef0123456789abcdef");
    send_signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // The body was being written to the cache and to the root at once: both partial files go.
    assert!(stderr.contains("interrupted: removed 2 unfinished temporary files;"), "{stderr}");
    assert!(stderr.contains("the files already in the root are complete and verified"), "{stderr}");
    assert_eq!(fs::read_dir(&flight.cache_tmp).unwrap().count(), 0, "a partial body stayed in the cache");
    let left: Vec<_> =
        fs::read_dir(&flight.root).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "the root holds {left:?}");
    // The next get fetches it whole.
    let out = flight.get_command(&env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(flight.root.join("model.bin")).unwrap(), flight.body);
}

/// A put of unchanged content through a server says the SDK's "already exists" once, not once per layer.
#[test]
fn an_unchanged_put_through_a_server_says_so_once() {
    const KEY: &str = "unchanged0123456789abcdef0123456789abcdef";
    let env = Env::new();
    let dir = env.write("d/a.txt", b"same").parent().unwrap().to_path_buf();
    let server = start_server(&env, KEY);
    let put = || {
        let out = env
            .command()
            .env("WANDB_BASE_URL", &server.url)
            .env("WANDB_API_KEY", KEY)
            .args(["artifact", "put"])
            .arg(&dir)
            .args(["-n", "same", "-t", "dataset"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(!put().contains("already exists"));
    let stderr = put();
    assert_eq!(stderr.matches("already exists with the same content").count(), 1, "{stderr}");
}

/// A server that dies mid-download and stays down: the refused reconnections end the download within the
/// connect deadline (30 s) with one line saying so, instead of retrying for the whole retry deadline.
#[cfg(unix)]
#[test]
fn a_server_that_dies_mid_download_fails_within_the_connect_deadline() {
    const KEY: &str = "diesmid0123456789abcdef0123456789abcdefab";
    let env = Env::new();
    let data = env.write("data/a.bin", &[5u8; 4096]);
    let mut server = start_server_with(&env, &["--api-key", KEY, "--download-latency-ms", "3000"]);
    let with_server = |command: &mut Command, url: &str| {
        command.env("WANDB_BASE_URL", url).env("WANDB_API_KEY", KEY);
    };
    let mut put = env.command();
    with_server(&mut put, &server.url);
    let out = put.args(["artifact", "put"]).arg(data.parent().unwrap()).args(["-n", "a", "-t", "model"]).output();
    assert!(out.as_ref().unwrap().status.success(), "{out:?}");
    let mut get = env.command();
    with_server(&mut get, &server.url);
    let child = get
        .args(["artifact", "get", "a:latest", "--retry-deadline", "10m", "--root"])
        .arg(env.path("root"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The file download is being answered (slowly) when the server dies.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.child.kill().unwrap();
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    // A bound on a failure, not a performance figure: before, this retried until the 10-minute deadline.
    assert!(started.elapsed() < std::time::Duration::from_secs(90), "retried for {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.lines().any(|l| l.contains("cannot connect to") && l.contains("is the server running")), "{stderr}");
}

/// Commands that only read never create a store: a mistyped path is an error naming it, and stays absent.
#[test]
fn read_only_commands_never_create_a_store_and_say_so() {
    let env = Env::new();
    let typo = env.path("typo-dir");
    let url = format!("file://{}", typo.display());
    let cases: &[&[&str]] = &[
        &["artifact", "ls"],
        &["artifact", "get", "x:v0"],
        &["artifact", "verify", "x:v0", "--root", "."],
        &["run", "ls"],
        &["store", "check"],
    ];
    for args in cases {
        let out = env.command().args(*args).args(["--base-url", &url]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("no embedded store at {}", typo.display())), "{args:?}: {stderr}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    let ui = env.error(&["ui", "--store", typo.to_str().unwrap(), "--port", "0"]);
    assert!(ui.contains("no embedded store at"), "{ui}");
    assert!(!typo.exists());

    // With a store, a listing by a type nobody logged says so, and which types there are.
    let d = env.write("d/a.txt", b"a").parent().unwrap().to_path_buf();
    env.json(&["artifact", "put", d.to_str().unwrap(), "-n", "ds", "-t", "dataset", "--json"]);
    let out = env.run(&["artifact", "ls", "--type", "model"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no artifacts of type \"model\" in local/uncategorized (its types: dataset)"
    );
}

/// Without a terminal, long work says where it is in status lines (bytes, files, rate); `--quiet` says nothing.
#[test]
fn progress_is_status_lines_without_a_terminal_and_nothing_with_quiet() {
    let env = Env::new();
    let d = env.write("d/a.txt", b"first").parent().unwrap().to_path_buf();
    env.write("d/b.txt", b"second");
    let put = |name: &str, quiet: bool| {
        let mut command = env.command();
        command.env("DAGSTER_WANDB_PROGRESS_INTERVAL", "0").args(["artifact", "put"]).arg(&d);
        command.args(["-n", name, "-t", "dataset"]);
        if quiet {
            command.arg("--quiet");
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    };
    let stderr = put("loud", false);
    assert!(stderr.lines().any(|l| l.starts_with("hashing: ") && l.contains("of 2 files")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("storing: 11 B of 11 B (100%), 2 of 2 files")), "{stderr}");
    assert_eq!(put("quiet", true), "", "--quiet prints nothing on stderr");
    let out = env.command().env("DAGSTER_WANDB_PROGRESS_INTERVAL", "0").args(["artifact", "get", "loud:v0"]).output();
    let stderr = String::from_utf8(out.unwrap().stderr).unwrap();
    assert!(stderr.lines().any(|l| l.starts_with("downloading: 11 B of 11 B (100%), 2 of 2 files")), "{stderr}");
}

/// Ctrl-C during a put through a server ends the put's run `failed` with the shell's 130, instead of leaving it
/// `running` for ever (the server cannot see that the process is gone).
#[cfg(unix)]
#[test]
fn an_interrupted_put_through_a_server_ends_its_run_failed() {
    const KEY: &str = "putint0123456789abcdef0123456789abcdef01";
    let env = Env::new();
    let d = env.write("d/a.txt", b"slow to upload").parent().unwrap().to_path_buf();
    let server = start_server_with(&env, &["--api-key", KEY, "--upload-latency-ms", "5000"]);
    let with_server = |command: &mut Command| {
        command.env("WANDB_BASE_URL", &server.url).env("WANDB_API_KEY", KEY);
    };
    let mut put = env.command();
    with_server(&mut put);
    let child = put.args(["artifact", "put"]).arg(&d).args(["-n", "slow", "-t", "dataset"]).output_async();
    let runs = env.path("served-store/entities/local/projects/uncategorized/runs");
    let started = std::time::Instant::now();
    while fs::read_dir(&runs).map_or(0, |d| d.flatten().filter(|e| e.path().extension().is_some()).count()) == 0 {
        assert!(started.elapsed().as_secs() < 30, "the put never created its run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The file upload is being held back by the server's latency.
    std::thread::sleep(std::time::Duration::from_millis(500));
    send_signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));

    let mut ls = env.command();
    with_server(&mut ls);
    let out = ls.args(["run", "ls", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["job_type"], "cli_put");
    assert_eq!(runs[0]["state"], "failed", "{runs}");
    // The SDK's run fragment carries no exit code; the served store recorded the shell's.
    let state = env.path(&format!(
        "served-store/entities/local/projects/uncategorized/runs/{}.logs/state.json",
        runs[0]["id"].as_str().unwrap()
    ));
    let state: Value = serde_json::from_slice(&fs::read(state).unwrap()).unwrap();
    assert_eq!(state["exit_code"], 130, "{state}");
}

/// kill -9 mid-put into the embedded store: the partial body goes when the store is next opened (and `store
/// check` says so), and the put's run reads as crashed.
#[cfg(unix)]
#[test]
fn a_put_killed_mid_body_leaves_nothing_and_its_run_reads_crashed() {
    let env = Env::new();
    let body: Vec<u8> = (0..300u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let data = env.write("data/big.bin", &body);
    drop(body);
    // A store with a run of its own, so its tmp/ exists before the put.
    env.json(&[
        "artifact",
        "put",
        env.write("small/a.txt", b"a").to_str().unwrap(),
        "-n",
        "small",
        "-t",
        "x",
        "--json",
    ]);
    let child = env.command().args(["artifact", "put"]).arg(&data).args(["-n", "big", "-t", "model"]).output_async();
    let tmp = env.path("store/tmp");
    let started = std::time::Instant::now();
    while fs::read_dir(&tmp).map_or(0, |d| d.flatten().filter(|e| e.metadata().is_ok_and(|m| m.len() > 0)).count()) == 0
    {
        assert!(started.elapsed().as_secs() < 60, "the put never started storing");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    send_signal(&child, "-KILL");
    let _ = child.wait_with_output().unwrap();
    assert_ne!(fs::read_dir(&tmp).unwrap().count(), 0, "the killed put left its partial body");

    let out = env.run(&["store", "check", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let said = report["problems"].as_array().unwrap().iter().any(|p| {
        p["what"].as_str().unwrap().contains("left by killed writers, removed when the store was opened")
            && p["repaired"] == true
    });
    assert!(said, "{report}");
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "opening the store removed it");
    let runs = env.json(&["run", "ls", "--json"]);
    // Both runs may have started within the same second, which orders them by their random ids.
    let mut states: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    states.sort_unstable();
    assert_eq!(states, ["crashed", "finished"], "{runs}");
    let listed = env.run(&["artifact", "ls"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("big"), "nothing was logged");
}

/// kill -9 mid-get: the partial files in the cache and beside the destination go with the next get, which
/// completes the download.
#[cfg(unix)]
#[test]
fn a_get_killed_mid_body_is_cleaned_up_by_the_next_get() {
    let env = Env::new();
    let (flight, child) = GetInFlight::start(&env, "killget0123456789abcdef0123456789abcdef0");
    send_signal(&child, "-KILL");
    let _ = child.wait_with_output().unwrap();
    let partial_in_root = |root: &Path| {
        fs::read_dir(root)
            .map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().contains(".dwtmp-")).count())
    };
    let left = fs::read_dir(&flight.cache_tmp).unwrap().count() + partial_in_root(&flight.root);
    assert_ne!(left, 0, "kill -9 left partial files");

    let out = flight.get_command(&env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(flight.root.join("model.bin")).unwrap(), flight.body);
    assert_eq!(fs::read_dir(&flight.cache_tmp).unwrap().count(), 0, "the cache's partial body is gone");
    assert_eq!(partial_in_root(&flight.root), 0, "the root's partial file is gone");
}

/// A download that fails part-way names what it did not write; a file edited in the root is replaced, with a
/// warning naming it.
#[test]
fn a_partial_download_names_what_it_left_and_local_edits_are_reported() {
    let env = Env::new();
    let d = env.write("d/a.txt", b"alpha").parent().unwrap().to_path_buf();
    env.write("d/b.txt", b"bravo");
    env.json(&["artifact", "put", d.to_str().unwrap(), "-n", "five", "-t", "dataset", "--json"]);
    let root = env.path("root");
    let got = env.run(&["artifact", "get", "five:v0", "--root", root.to_str().unwrap()]);
    assert!(got.status.success());

    fs::write(root.join("a.txt"), b"edited").unwrap();
    let again = env.run(&["artifact", "get", "five:v0", "--root", root.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("changed locally; replacing it with the artifact's version") && stderr.contains("a.txt"),
        "{stderr}"
    );
    assert_eq!(fs::read(root.join("a.txt")).unwrap(), b"alpha");

    // One body damaged in the store: the download fails naming it, and says which files it did not write.
    let objects = env.path("store/objects/md5");
    let damaged = fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .flat_map(|prefix| fs::read_dir(prefix.path()).unwrap().flatten())
        .find(|object| fs::read(object.path()).unwrap() == b"bravo")
        .unwrap()
        .path();
    fs::write(&damaged, b"BRAVO").unwrap();
    let fresh = env.path("fresh");
    // With a cache of its own: the first cache holds an intact copy it would serve.
    let out = env
        .command()
        .env("WANDB_CACHE_DIR", env.path("cache-2"))
        .args(["artifact", "get", "five:v0", "--root", fresh.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("download incomplete:") && stderr.contains("b.txt"), "{stderr}");
    assert!(!fresh.join("b.txt").exists());
}

/// The manifest cap is one variable away for a CLI user: over it, the download is refused naming the limit; a
/// value that is no number is refused naming the variable.
#[test]
fn the_manifest_cap_is_set_by_its_variable() {
    const KEY: &str = "mancap0123456789abcdef0123456789abcdef01";
    let env = Env::new();
    let d = env.write("d/a.txt", b"a").parent().unwrap().to_path_buf();
    let server = start_server(&env, KEY);
    let run = |cap: &str, args: &[&str]| {
        env.command()
            .env("WANDB_BASE_URL", &server.url)
            .env("WANDB_API_KEY", KEY)
            .env("DAGSTER_WANDB_MAX_MANIFEST_BYTES", cap)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run("", &["artifact", "put", d.to_str().unwrap(), "-n", "capped", "-t", "dataset"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run("10", &["artifact", "get", "capped:v0", "--root", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is larger than 10 bytes") && stderr.contains("DAGSTER_WANDB_MAX_MANIFEST_BYTES"),
        "{stderr}"
    );
    assert!(!env.path("out").exists());
    let out = run("lots", &["artifact", "get", "capped:v0", "--root", "out"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("DAGSTER_WANDB_MAX_MANIFEST_BYTES"));
    assert!(run("100000", &["artifact", "get", "capped:v0", "--root", "out"]).status.success());
}
