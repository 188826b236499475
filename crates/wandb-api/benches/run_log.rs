//! The cost of `Run::log` on the caller's thread (`cargo xtask bench run-log` runs this).
//!
//! Logs N rows of three metrics to an embedded store in a temporary directory and times the loop, then the
//! same loop building the rows without logging them, so that the difference is what `log` costs the caller.
//! `finish` (the writer draining what is queued) is timed apart. `--check` fails above 1 µs per call.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Map, Value};
use wandb_api::{Api, RunSettings, Settings};

fn row(i: u64) -> Map<String, Value> {
    let mut row = Map::with_capacity(6);
    row.insert("loss".to_owned(), Value::from(1.0 / (i as f64 + 1.0)));
    row.insert("accuracy".to_owned(), Value::from(i as f64 / 1e6));
    row.insert("epoch".to_owned(), Value::from(i / 1000));
    row
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let rows: u64 =
        args.iter().position(|a| a == "--rows").and_then(|i| args.get(i + 1)).map_or(Ok(1_000_000), |n| n.parse())?;

    let started = Instant::now();
    for i in 0..rows {
        black_box(row(i));
    }
    let build_only = started.elapsed();

    let dir = tempfile::tempdir()?;
    let api = Api::new(Settings::embedded(dir.path()).with_entity("bench").with_project("run-log"))?;
    let mut run = api.init(RunSettings::default().id("bench"))?;
    let started = Instant::now();
    for i in 0..rows {
        run.log(row(i))?;
    }
    let with_log = started.elapsed();
    let started = Instant::now();
    run.finish()?;
    let finish = started.elapsed();
    let stored = api.run("bench")?.history_rows;
    if stored != rows {
        return Err(format!("{stored} of {rows} rows stored").into());
    }

    let per_call = with_log.saturating_sub(build_only).as_secs_f64() * 1e9 / rows as f64;
    println!("rows                          {rows}");
    println!(
        "building rows only            {:>8.1} ms  ({:.0} ns/row)",
        build_only.as_secs_f64() * 1e3,
        build_only.as_secs_f64() * 1e9 / rows as f64
    );
    println!(
        "building + Run::log           {:>8.1} ms  ({:.0} ns/row)",
        with_log.as_secs_f64() * 1e3,
        with_log.as_secs_f64() * 1e9 / rows as f64
    );
    println!("Run::log on the caller        {per_call:>8.0} ns per call (target <= 1000)");
    println!("finish (writer drains)        {:>8.1} ms", finish.as_secs_f64() * 1e3);
    println!(
        "total to stored               {:>8.1} ms, {stored} rows in the store",
        (with_log + finish).as_secs_f64() * 1e3
    );
    if check && per_call > 1000.0 {
        return Err(format!("Run::log costs {per_call:.0} ns per call, over the 1 µs target").into());
    }
    Ok(())
}
