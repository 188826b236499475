//! W&B Launch from Rust, against any W&B server (wandb.ai, W&B Server, `dagster-wandb server`).
//!
//! - [`launch_spec`] builds the launch spec (`runSpec`) exactly as wandb 0.31.0's `construct_launch_spec` does.
//! - [`RunQueues`] enqueues (`launch_add`) and waits for the launched run, ending on every final state and on
//!   a timeout (the SDK loops forever on `killed`).
//! - [`LaunchAgent`] registers on queues, polls them round-robin up to `max_jobs`, runs each job through a
//!   [`Runner`] (`local-process` is built in), honours stop requests and reports failures.
//! - [`create_job`] and [`create_image_job`] log jobs (artifact type `job`) as the SDK does.
//!
//! Artifacts (jobs and their code) go through `wandb_api`'s [`Api`](wandb_api::Api), so they are fetched,
//! cached and verified like any other; the queues need a server, [`wandb_api::client::WandbClient`].
//!
//! # Example
//!
//! ```
//! use wandb_launch::{LaunchRequest, launch_spec};
//!
//! let request = LaunchRequest {
//!     job: Some("ent/proj/job-train:latest".into()),
//!     entity: "ent".into(),
//!     resource: Some("local-process".into()),
//!     ..Default::default()
//! };
//! let spec = launch_spec(&request)?;
//! assert_eq!(spec["project"], "proj");
//! # Ok::<(), wandb_launch::Error>(())
//! ```

mod agent;
mod error;
mod queue;

pub use agent::{
    AgentConfig, AgentReport, JobStatus, LaunchAgent, LaunchJob, LocalProcessRunner, Runner, RunningJob,
    create_image_job, create_job,
};
pub use error::{Error, Result};
pub use queue::{
    FINAL_RUN_STATES, LAUNCH_PROJECT, LaunchRequest, QueueItem, QueuedRun, RunQueues, Waiting, launch_spec,
};
