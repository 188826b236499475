//! dagster-bridge's integration tests, one binary (a binary per file linked the whole W&B client each
//! time): configuration rules, the IO manager, Launch, Pipes and Rust steps.

mod config;
mod io_manager;
mod launch;
mod pipes;
mod step;
