//! `dagster-wandb pipes …`: steps Dagster launches through Pipes (the Python companion's `run_launch_job` and
//! `run_launch_agent` ops), configured by the Pipes extras: `wandb_config`, `wandb_resource` and the op config in
//! `op_config`, with dagster-wandb's launch schemas.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dagster_bridge::step::run_step;

/// A step of a Dagster run.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PipesCommand {
    /// dagster-wandb's `run_launch_job`: enqueue the job `op_config` names on its `queue` (required: dagster-wandb's
    /// queue-less local launch needs a container runner, which this toolkit does not have) and, with
    /// `synchronous` (the default), wait for an agent to run it to the end.
    LaunchJob {
        /// How long a synchronous launch waits for the run, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// dagster-wandb's `run_launch_agent`: a launch agent on the queues `op_config` names until the step is
    /// terminated (SIGINT or SIGTERM, as Dagster sends) or the server stops it.
    LaunchAgent,
}

/// Runs the step; `run_step` reports a failure to Dagster and on stderr, and picks the exit code.
pub(crate) fn run(command: &PipesCommand) -> ExitCode {
    match command {
        PipesCommand::LaunchJob { timeout } => run_step(|step| {
            let outcome = step.launch_job(None, Duration::from_secs(*timeout))?;
            match outcome.finished {
                Some((run_id, state)) if state != "finished" => {
                    Err(format!("the launched run {run_id} ended {state}").into())
                }
                Some((run_id, _)) => Ok(step.session().log_info(&format!("launched run {run_id} finished"))?),
                None => Ok(step.session().log_info(&format!(
                    "queued {} on {} (not waiting: synchronous is false)",
                    outcome.queued.item_id, outcome.queued.queue
                ))?),
            }
        }),
        PipesCommand::LaunchAgent => run_step(|step| {
            let shutdown = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&shutdown);
            wandb_api::runtime()?.spawn(async move {
                super::launch_cmd::wait_for_termination().await;
                flag.store(true, Ordering::Relaxed);
            });
            step.launch_agent(&shutdown)?;
            Ok(())
        }),
    }
}
