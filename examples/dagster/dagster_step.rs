//! Rust steps of the Dagster example (`examples/dagster/definitions.py`), launched by Dagster through
//! `PipesSubprocessClient`. Each subcommand is one asset's body:
//!
//! - `raw-numbers`: a dataset, written as a W&B Table (`wandb_example` group);
//! - `number-stats`: loads that table, logs a metric row per number to the W&B run, and writes statistics over
//!   it (a pickled dict Python can `pickle.load`);
//! - `daily-readings`: one day's readings, for the day of the run's partition (`wandb_partitioned` group);
//! - `readings-summary`: loads every day's readings at once and summarises them;
//! - `fail`: loads an artifact that does not exist, so Dagster shows a failed step with the IO manager's error;
//! - `stress`: sends as many custom messages as the `messages` extra says, then materializes their count (for
//!   `cargo xtask dagster-e2e`, which checks that Dagster received every one);
//! - `panic`: panics, so Dagster shows a failed step with the panic's message;
//! - `train` (not a Dagster step): the training job a launch agent runs, logging to the run the agent named in
//!   `WANDB_RUN_ID` (the example's `train_on_launch` job pushes it to a queue, its `launch_agent` job runs it).
//!
//! The configuration (W&B entity and project, each output's and input's `wandb_artifact_configuration`, the
//! upstream partitions) comes from the Pipes extras that `definitions.py`'s `PipesWandbClient` builds from the
//! assets' metadata; the backend from `WANDB_BASE_URL` (an embedded store for `file:///dir`) unless the resource
//! names a host. dagster-wandb's launch ops are the CLI's `dagster-wandb pipes launch-job` and `launch-agent`.
//!
//! Outside Dagster the binary exits with code 2 and says so.

use std::collections::BTreeMap;
use std::process::ExitCode;

use dagster_wandb::dagster::io_manager::{Loaded, Output};
use dagster_wandb::dagster::pipes::{CheckSeverity, MetadataValue};
use dagster_wandb::dagster::step::{DagsterStep, run_step};
use dagster_wandb::serialization::Table;
use serde_json::json;

type StepResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    // The subcommand is the first argument that is not a Pipes flag (those may come first or last).
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--dagster-pipes"));
    let command = args.next().unwrap_or_default();
    if command == "train" {
        // Not a Dagster step: the job a launch agent runs.
        return match train() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("error: {e}\n").as_bytes());
                ExitCode::FAILURE
            }
        };
    }
    run_step(|step| {
        match command.as_str() {
        "raw-numbers" => raw_numbers(step),
        "number-stats" => number_stats(step),
        "daily-readings" => daily_readings(step),
        "readings-summary" => readings_summary(step),
        "fail" => fail(step),
        "stress" => stress(step),
        "panic" => panic!("the model diverged at epoch 3"),
        other => Err(format!("unknown step {other:?}; expected raw-numbers, number-stats, daily-readings, readings-summary, train, fail, stress or panic").into()),
    }
    })
}

/// A small dataset: ten rows of `(x, x², parity)`.
fn raw_numbers(step: &DagsterStep) -> StepResult {
    let rows =
        (1..=10).map(|x: i64| vec![json!(x), json!(x * x), json!(if x % 2 == 0 { "even" } else { "odd" })]).collect();
    let table = Table::with_rows(["x", "square", "parity"], rows)?;
    let logged = step.materialize(None, Output::Table(table))?;
    if let Some(m) = logged {
        step.session().log_info(&format!("logged {}", m.version.qualified_name()))?;
    }
    Ok(())
}

/// Statistics over the dataset, checked before they are logged.
fn number_stats(step: &DagsterStep) -> StepResult {
    let Loaded::Table(table) = step.load("raw_numbers")? else {
        return Err("raw_numbers should load as a Table (get: \"Table\")".into());
    };
    let squares: Vec<i64> =
        table.rows().iter().filter_map(|row| row.get(1).and_then(serde_json::Value::as_i64)).collect();
    // Metrics go to the W&B run of this Dagster run, the one the artifacts belong to.
    let mut run = step.start_run()?;
    let mut total = 0;
    for (i, square) in squares.iter().enumerate() {
        total += square;
        run.log(
            json!({"square": square, "running_mean": total as f64 / (i + 1) as f64})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )?;
    }
    run.finish()?;
    let mut stats = BTreeMap::new();
    stats.insert("rows", squares.len() as f64);
    stats.insert("sum_of_squares", squares.iter().sum::<i64>() as f64);
    stats.insert("mean_square", squares.iter().sum::<i64>() as f64 / squares.len().max(1) as f64);
    step.session().report_asset_check(
        None,
        "has_rows",
        !squares.is_empty(),
        CheckSeverity::Error,
        vec![("rows".to_owned(), MetadataValue::Int(squares.len() as i64))],
    )?;
    step.materialize(None, Output::serialize(&stats)?)?;
    Ok(())
}

/// Readings for the run's day: deterministic from the date, so re-running a day logs no new version.
fn daily_readings(step: &DagsterStep) -> StepResult {
    let day = step.context().partition_key()?.to_owned();
    let seed: u64 = day.bytes().map(u64::from).sum();
    let readings: Vec<f64> = (0..24).map(|hour| ((seed * 31 + hour * hour * 7) % 101) as f64 / 10.0).collect();
    step.materialize(None, Output::serialize(&json!({"day": day, "readings": readings}))?)?;
    Ok(())
}

/// Every day's readings, loaded as a map from day to value, summarised.
fn readings_summary(step: &DagsterStep) -> StepResult {
    let Loaded::Partitions(days) = step.load("daily_readings")? else {
        return Err("daily_readings should load as a map of partitions".into());
    };
    let mut summary = BTreeMap::new();
    for (day, loaded) in days {
        let value: serde_json::Value = loaded.into_value()?;
        let readings: Vec<f64> = serde_json::from_value(value["readings"].clone())?;
        let max = readings.iter().copied().fold(f64::MIN, f64::max);
        summary.insert(day, max);
    }
    step.session().log_info(&format!("daily maxima: {summary:?}"))?;
    step.materialize(None, Output::serialize(&summary)?)?;
    Ok(())
}

/// A step that fails the way a real one would: its input does not exist.
fn fail(step: &DagsterStep) -> StepResult {
    step.load("missing")?;
    Ok(())
}

/// Many messages, then a materialization: with a line-safe reader Dagster receives every one.
fn stress(step: &DagsterStep) -> StepResult {
    let count = step.context().extra("messages")?.as_u64().ok_or("the messages extra should be a count")?;
    for n in 0..count {
        step.session().report_custom_message(json!({"n": n}))?;
    }
    step.materialize(None, Output::serialize(&count)?)?;
    Ok(())
}

/// The launched job: three epochs of a made-up loss, logged to the run `WANDB_RUN_ID` names (the agent sets
/// `WANDB_BASE_URL`, `WANDB_API_KEY`, `WANDB_ENTITY`, `WANDB_PROJECT` and `WANDB_CONFIG` too).
fn train() -> StepResult {
    use dagster_wandb::{Api, RunSettings};
    let env = |key: &str| std::env::var(key).map_err(|_| format!("{key} is not set (run me from a launch agent)"));
    let api = Api::from_env()?;
    let config: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&env("WANDB_CONFIG").unwrap_or_else(|_| "{}".into()))?;
    let epochs = config.get("epochs").and_then(serde_json::Value::as_u64).unwrap_or(3);
    let settings = RunSettings::default().id(&env("WANDB_RUN_ID")?).job_type("train").config(config);
    let mut run = api.init(settings)?;
    for epoch in 0..epochs {
        run.log(json!({"epoch": epoch, "loss": 1.0 / (epoch as f64 + 1.0)}).as_object().cloned().unwrap_or_default())?;
    }
    run.finish()?;
    Ok(())
}
