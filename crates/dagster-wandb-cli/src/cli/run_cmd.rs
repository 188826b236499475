//! `dagster-wandb run ls | history`: the runs of a project and what they logged.

use clap::Subcommand;
use serde::Serialize;
use wandb_api::RunState;

use super::output::{print_json, print_line};
use super::{Backend, CliResult};

#[derive(Debug, Subcommand)]
pub(crate) enum RunCommand {
    /// List the runs of the project, oldest first.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a run's history rows in step order (one JSON object per line with --json).
    History {
        /// The run: ENTITY/PROJECT/RUN_ID, PROJECT/RUN_ID or RUN_ID.
        path: String,
        /// One compact JSON object per row, nothing else.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct RunJson<'a> {
    id: &'a str,
    name: Option<&'a str>,
    job_type: Option<&'a str>,
    tags: &'a [String],
    created_at: &'a str,
    state: RunState,
    exit_code: Option<i64>,
    history_rows: u64,
    inputs: usize,
    outputs: usize,
}

pub(crate) fn run(backend: &Backend, command: &RunCommand) -> CliResult {
    let api = backend.api()?;
    match command {
        RunCommand::Ls { json } => {
            let runs = api.runs(None)?;
            if *json {
                let out: Vec<RunJson<'_>> = runs
                    .iter()
                    .map(|r| RunJson {
                        id: &r.id,
                        name: r.name.as_deref(),
                        job_type: r.job_type.as_deref(),
                        tags: &r.tags,
                        created_at: &r.created_at,
                        state: r.state,
                        exit_code: r.exit_code,
                        history_rows: r.history_rows,
                        inputs: r.inputs.len(),
                        outputs: r.outputs.len(),
                    })
                    .collect();
                return print_json(&out);
            }
            if runs.is_empty() {
                return print_line(&format!("no runs in {}", api.project()));
            }
            for r in runs {
                let state = match (r.state, r.exit_code) {
                    (RunState::Running, _) => "running".to_owned(),
                    (_, Some(code)) => format!("exit {code}"),
                    (state, None) => format!("{state:?}").to_lowercase(),
                };
                print_line(&format!(
                    "{:<38} {:<24} {:<10} {:>6} rows  {} in, {} out  {}",
                    r.id,
                    r.name.as_deref().unwrap_or("-"),
                    state,
                    r.history_rows,
                    r.inputs.len(),
                    r.outputs.len(),
                    r.created_at
                ))?;
            }
            Ok(())
        }
        RunCommand::History { path, json } => {
            let rows = api.run_history(path)?;
            if *json {
                for row in rows {
                    print_line(&serde_json::Value::Object(row).to_string())?;
                }
                return Ok(());
            }
            if rows.is_empty() {
                return print_line(&format!("run {path} has no history"));
            }
            for row in rows {
                let step = row.get("_step").map_or_else(|| "-".to_owned(), ToString::to_string);
                let values: Vec<String> =
                    row.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| format!("{k}={v}")).collect();
                print_line(&format!("step {step:>6}  {}", values.join("  ")))?;
            }
            Ok(())
        }
    }
}
