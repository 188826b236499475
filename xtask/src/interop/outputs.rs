//! Step outputs against the real `pickle`, `dill`, `cloudpickle`, `joblib` and `msgpack`, both ways.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use serde_modules::{Module, Value as Data};

use super::{Comparisons, run_script_args};
use crate::project_root;

/// The values exchanged, as JSON views: every kind of plain data, sizes that cross pickle's frame boundary,
/// and nesting deep enough to matter.
fn values() -> Vec<(&'static str, Value)> {
    let mut deep = json!(["bottom"]);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    vec![
        (
            "scalars",
            json!([
                null,
                true,
                false,
                0,
                -1,
                255,
                256,
                65535,
                65536,
                -2147483648,
                2147483648i64,
                9223372036854775807i64,
                -9223372036854775808i64,
                0.0,
                -0.0,
                1.5,
                1e300,
                -1e-300,
                "",
                "héllo ✓ 😀"
            ]),
        ),
        (
            "big ints",
            json!([{"$bigint": "9223372036854775808"}, {"$bigint": "-1000000000000000000000000000000"}, {"$bigint": "18446744073709551616"}]),
        ),
        ("non-finite floats", json!([{"$float": "inf"}, {"$float": "-inf"}])),
        (
            "bytes",
            json!({"empty": {"$bytes_hex": ""}, "all": {"$bytes_hex": (0..=255u8).map(|b| format!("{b:02x}")).collect::<String>()}}),
        ),
        (
            "containers",
            json!({"t": {"$tuple": [1, {"$tuple": []}, {"$tuple": ["x", [2, 3]]}]}, "l": [[], [[]], {}], "d": {"a": {"b": {"c": null}}}}),
        ),
        (
            "keys",
            json!({"$dict_items": [[1, "int"], [{"$tuple": [2, "b"]}, "tuple"], [null, "none"], [{"$bytes_hex": "6b"}, "bytes"], [2.5, "float"]]}),
        ),
        (
            "large",
            json!({"s": "x".repeat(200_000), "b": {"$bytes_hex": "ab".repeat(100_000)}, "n": (0..10_000).collect::<Vec<i32>>()}),
        ),
        ("deep", deep),
    ]
}

/// What MessagePack can carry: no tuples (arrays come back as lists), no integers beyond 64 bits.
fn msgpack_can_hold(name: &str) -> bool {
    matches!(name, "scalars" | "bytes" | "large" | "deep")
}

/// (module, parameters for us, keyword arguments for Python, file suffix)
fn variants() -> Vec<(Module, Value, Value, &'static str)> {
    let mut out = Vec::new();
    for protocol in 2..=5 {
        out.push((
            Module::Pickle,
            json!({"protocol": protocol}),
            json!({"protocol": protocol}),
            ["p2", "p3", "p4", "p5"][protocol - 2],
        ));
    }
    out.push((Module::Dill, json!({}), json!({}), "dill"));
    out.push((Module::Cloudpickle, json!({"protocol": 4}), json!({"protocol": 4}), "cloudpickle"));
    out.push((Module::Joblib, json!({}), json!({}), "joblib"));
    out.push((Module::Joblib, json!({"compress": 3}), json!({"compress": 3}), "joblib-z3"));
    out.push((Module::Joblib, json!({"compress": ["gzip", 6]}), json!({"compress": ["gzip", 6]}), "joblib-gz"));
    out.push((Module::Msgpack, json!({}), json!({}), "msgpack"));
    out
}

pub(crate) fn run(python: &Path, cli: &Path, results: &mut Comparisons) -> Result<()> {
    let work = project_root().join("target/interop/work/outputs");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(work.join("rust"))?;
    fs::create_dir_all(work.join("python"))?;

    // 1. Rust writes (the library, and the CLI for one variant); Python's modules load.
    let mut loads = Vec::new();
    let mut labels = Vec::new();
    for (name, view) in values() {
        let value = Data::from_json_view(&view)?;
        for (module, params, _, suffix) in variants() {
            if module == Module::Msgpack && !msgpack_can_hold(name) {
                continue;
            }
            let file = work.join("rust").join(format!("{}.{suffix}", name.replace(' ', "_")));
            let options = module.options(params.as_object().expect("object"))?;
            fs::write(&file, module.encode_value(&value, &options)?)?;
            loads.push(json!({"file": file, "module": module.name()}));
            labels.push((format!("Python {} loads Rust's {name} ({suffix})", module.name()), view.clone()));
        }
        let file = work.join("rust").join(format!("{}.cli.pickle", name.replace(' ', "_")));
        let mut child = Command::new(cli)
            .args(["serde", "encode", "--module", "pickle"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        std::io::Write::write_all(&mut child.stdin.take().expect("piped"), view.to_string().as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(out.status.success(), "dagster-wandb serde encode failed for {name}");
        fs::write(&file, out.stdout)?;
        loads.push(json!({"file": file, "module": "pickle"}));
        labels.push((format!("Python pickle loads `dagster-wandb serde encode` of {name}"), view.clone()));
    }
    let answers = run_script_args(python, "outputs.py", &["load"], &serde_json::to_vec(&loads)?)?;
    ensure!(answers.len() == labels.len(), "Python answered {} of {} loads", answers.len(), labels.len());
    for ((label, expected), answer) in labels.iter().zip(&answers) {
        let got = &answer["view"];
        results.record(label, got == expected, || format!("expected {}\n  got      {}", short(expected), short(got)));
    }

    // 2. Python's modules write (plus protocols 0 and 1); Rust decodes.
    let mut dumps = Vec::new();
    let mut expected = Vec::new();
    for (name, view) in values() {
        let mut python_variants: Vec<(Module, Value, String)> =
            variants().into_iter().map(|(module, _, kwargs, suffix)| (module, kwargs, suffix.to_owned())).collect();
        python_variants.push((Module::Pickle, json!({"protocol": 0}), "p0".to_owned()));
        python_variants.push((Module::Pickle, json!({"protocol": 1}), "p1".to_owned()));
        for (module, kwargs, suffix) in python_variants {
            if module == Module::Msgpack && !msgpack_can_hold(name) {
                continue;
            }
            let file = work.join("python").join(format!("{}.{suffix}", name.replace(' ', "_")));
            dumps.push(json!({"file": file, "module": module.name(), "kwargs": kwargs, "view": view}));
            expected.push((
                format!("Rust decodes Python {}'s {name} ({suffix})", module.name()),
                module,
                file,
                view.clone(),
            ));
        }
    }
    let written = run_script_args(python, "outputs.py", &["dump"], &serde_json::to_vec(&dumps)?)?;
    ensure!(written.len() == dumps.len(), "Python wrote {} of {} files", written.len(), dumps.len());
    for (label, module, file, view) in expected {
        let decoded = module.decode_value(&fs::read(&file)?).map(|v| v.to_json_view());
        match decoded {
            Ok(got) => {
                results.record(&label, got == view, || format!("expected {}\n  got      {}", short(&view), short(&got)))
            }
            Err(e) => results.record(&label, false, || format!("decoding failed: {e}")),
        }
    }
    Ok(())
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 300 { format!("{}…", &text[..300]) } else { text }
}
