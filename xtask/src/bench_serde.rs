//! `cargo xtask bench serde`: throughput of every serialization module on a ~100 MB nested value, next to
//! CPython's `pickle` on the same value.

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::{cargo, project_root, say};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let runs: usize = match args {
        [] => 3,
        [flag, n] if flag == "--runs" => n.parse().context("--runs needs a number")?,
        _ => bail!("usage: cargo xtask bench serde [--runs N]"),
    };
    let mut build = cargo();
    build.args(["build", "--release", "--quiet", "-p", "serde-modules", "--example", "throughput"]);
    ensure!(build.status()?.success(), "building the throughput example failed");
    let dir = project_root().join("target/bench/serde");
    std::fs::create_dir_all(&dir)?;
    let pickle = dir.join("value.pickle");
    let out = Command::new(project_root().join("target/release/examples/throughput"))
        .arg(&pickle)
        .arg(runs.to_string())
        .output()?;
    ensure!(out.status.success(), "the throughput example failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;

    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = format!(
        "import pickle, time, statistics\n\
         data = open({:?}, 'rb').read()\n\
         loads, dumps = [], []\n\
         for _ in range({runs}):\n\
         \x20   t = time.perf_counter(); v = pickle.loads(data); loads.append(time.perf_counter() - t)\n\
         \x20   t = time.perf_counter(); b = pickle.dumps(v, protocol=5); dumps.append(time.perf_counter() - t)\n\
         print(len(b), statistics.median(dumps), statistics.median(loads))",
        pickle.display().to_string()
    );
    let cpython =
        Command::new(&python).args(["-c", &script]).output().context("python3 is needed for the comparison")?;
    ensure!(cpython.status.success(), "CPython failed: {}", String::from_utf8_lossy(&cpython.stderr));
    let figures: Vec<f64> =
        String::from_utf8(cpython.stdout)?.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    let version = Command::new(&python).arg("--version").output()?;

    let records = lines.first().and_then(|l| l["records"].as_u64()).unwrap_or(0);
    say(&format!(
        "{records} records, release build, median of {runs} runs, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    say("module          size (MB)   encode (s)   MB/s   decode (s)   MB/s");
    let row = |name: &str, bytes: f64, encode: f64, decode: f64| {
        say(&format!(
            "{name:<14} {:>9.1} {:>12.3} {:>6.0} {:>12.3} {:>6.0}",
            bytes / 1e6,
            encode,
            bytes / 1e6 / encode,
            decode,
            bytes / 1e6 / decode
        ));
    };
    for line in lines.iter().skip(1) {
        let f = |k: &str| line[k].as_f64().unwrap_or(f64::NAN);
        row(line["module"].as_str().unwrap_or("?"), f("bytes"), f("encode_s"), f("decode_s"));
    }
    if let [bytes, dump, load] = figures[..] {
        row(
            &format!("CPython {}", String::from_utf8_lossy(&version.stdout).trim().trim_start_matches("Python ")),
            bytes,
            dump,
            load,
        );
    }
    say(
        "(Rust figures are typed: Vec<Record> to bytes and back. CPython: pickle.dumps(protocol=5) and pickle.loads of the same value.)",
    );
    Ok(())
}
