//! Argument parsing, backend selection and error reporting for the command-line tool.

mod artifact;
mod artifact_edit;
mod cache_cmd;
mod launch_cmd;
mod output;
mod pipes_cmd;
mod progress;
mod registry_cmd;
mod run_cmd;
mod serde_cmd;
mod server_cmd;
mod store_cmd;
mod sync_cmd;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wandb_api::{Api, BaseUrl, Settings};

/// Version ML datasets and models as W&B artifacts.
///
/// Without a W&B server configured, artifacts live in the embedded store (see `artifact --help`).
#[derive(Debug, Parser)]
#[command(name = "dagster-wandb", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// No progress bar or status lines (warnings, errors and results are still printed). Without a terminal,
    /// long transfers otherwise print a status line every 10 s.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log, fetch and list artifacts.
    Artifact(ArtifactArgs),
    /// Decode and encode step outputs (pickle, dill, cloudpickle, joblib, json, msgpack, raw, …).
    #[command(subcommand)]
    Serde(serde_cmd::SerdeCommand),
    /// Keep local storage bounded: dagster-wandb's sweep, and size-capped cleanup of the W&B cache.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
    /// Serve an embedded store over the W&B protocol, for the Python `wandb` client and ours (and its web view).
    Server(server_cmd::ServerArgs),
    /// Browse an embedded store in a web browser: projects, artifacts, files, lineage graphs, run charts.
    Ui(server_cmd::UiArgs),
    /// List, create and delete registries (the organisation's wandb-registry-* projects).
    Registry(RegistryArgs),
    /// Maintain an embedded store: `gc` reclaims expired versions and unreferenced bodies.
    Store(StoreArgs),
    /// Copy a project's artifacts, bodies, aliases, links and lineage runs between backends; again, copy nothing.
    Sync(sync_cmd::SyncArgs),
    /// List runs and print what they logged.
    Run(RunArgs),
    /// W&B Launch: enqueue jobs, run a launch agent, create jobs (against a W&B server).
    Launch(LaunchArgs),
    /// Steps of a Dagster run, launched through Dagster Pipes (the Python companion's launch ops).
    #[command(subcommand)]
    Pipes(pipes_cmd::PipesCommand),
}

#[derive(Debug, clap::Args)]
struct LaunchArgs {
    #[command(flatten)]
    backend: Backend,
    #[command(subcommand)]
    command: launch_cmd::LaunchCommand,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    backend: Backend,
    #[command(subcommand)]
    command: run_cmd::RunCommand,
}

#[derive(Debug, clap::Args)]
struct RegistryArgs {
    #[command(flatten)]
    backend: Backend,
    #[command(subcommand)]
    command: registry_cmd::RegistryCommand,
}

#[derive(Debug, clap::Args)]
struct StoreArgs {
    #[command(flatten)]
    backend: Backend,
    #[command(subcommand)]
    command: store_cmd::StoreCommand,
}

#[derive(Debug, clap::Args)]
struct ArtifactArgs {
    #[command(flatten)]
    backend: Backend,
    #[command(subcommand)]
    command: artifact::ArtifactCommand,
}

/// Where artifacts go, before or after the subcommand's name. Each overrides its `WANDB_*` variable, which
/// `wandb_api::Settings::from_env` reads (an empty variable counts as unset).
#[derive(Debug, clap::Args)]
pub(crate) struct Backend {
    /// Backend: file:///path for an embedded store, http(s)://host for a W&B server [env: WANDB_BASE_URL].
    /// Defaults to the embedded store in ~/.local/share/dagster-wandb/store (or the platform's data directory).
    #[arg(long, global = true, value_name = "URL")]
    base_url: Option<String>,
    /// Entity (user or team) that owns the project [env: WANDB_ENTITY; default: local].
    #[arg(long, global = true)]
    entity: Option<String>,
    /// Project the artifacts belong to [env: WANDB_PROJECT; default: uncategorized].
    #[arg(long, global = true)]
    project: Option<String>,
    /// How long a request to a server is retried in all: 90, 90s, 15m, 1h [env: DAGSTER_WANDB_RETRY_DEADLINE;
    /// default: 30m]. A server that cannot be connected to is given up on after 30 s (or this, if shorter).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_retry_deadline)]
    retry_deadline: Option<std::time::Duration>,
}

fn parse_retry_deadline(text: &str) -> Result<std::time::Duration, String> {
    wandb_api::parse_duration(text).ok_or_else(|| format!("{text:?} is not a duration (90, 90s, 15m, 1h)"))
}

/// Everything a command can fail with. Each prints as one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    #[error(transparent)]
    Api(#[from] wandb_api::Error),
    #[error(transparent)]
    Launch(#[from] wandb_launch::Error),
    #[error(transparent)]
    References(#[from] wandb_references::Error),
    #[error(transparent)]
    Store(#[from] wandb_store::Error),
    #[error(transparent)]
    Server(#[from] wandb_server::Error),
    #[error(transparent)]
    Cache(#[from] io_cache::Error),
    #[error(transparent)]
    Serialization(#[from] serde_modules::Error),
    #[error("{0}")]
    Usage(String),
    /// A check found differences (`artifact verify`, `store check`); exit code 1 like any failure.
    #[error("{0}")]
    Differs(String),
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// What an interrupted command still has to do before it exits (end its run, so it does not read as running).
type InterruptHook = Box<dyn FnOnce() + Send>;

/// The hooks registered and not yet withdrawn, each with its number.
static ON_INTERRUPT: std::sync::Mutex<Vec<(u64, InterruptHook)>> = std::sync::Mutex::new(Vec::new());

/// The exit code of an interrupted command, the shell's (128 + SIGINT).
pub(crate) const INTERRUPTED: i64 = 130;

/// Runs `hook` if the command is interrupted ([`stop_cleanly_on_interrupt`]) while the returned guard lives.
pub(crate) fn on_interrupt(hook: impl FnOnce() + Send + 'static) -> InterruptGuard {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let number = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ON_INTERRUPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((number, Box::new(hook)));
    InterruptGuard(number)
}

/// Withdraws its hook when dropped (what it would have ended is over).
pub(crate) struct InterruptGuard(u64);

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        ON_INTERRUPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|(number, _)| *number != self.0);
    }
}

/// On SIGINT or SIGTERM: ends what registered with [`on_interrupt`], removes the temporary files the command was
/// writing, so nothing half-written stays, says what was kept (`kept`), and exits with 130, the shell's code for
/// an interrupted command.
pub(crate) fn stop_cleanly_on_interrupt(kept: &'static str) -> CliResult {
    wandb_api::runtime()?.spawn(async move {
        launch_cmd::wait_for_termination().await;
        let hooks = std::mem::take(&mut *ON_INTERRUPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        // Off the runtime's workers: a hook may block on the runtime (a last request to a server).
        let _ = tokio::task::spawn_blocking(move || hooks.into_iter().for_each(|(_, hook)| hook())).await;
        let removed = io_cache::remove_unfinished();
        let plural = if removed == 1 { "" } else { "s" };
        output::notice(&format!("interrupted: removed {removed} unfinished temporary file{plural}; {kept}"));
        std::process::exit(130);
    });
    Ok(())
}

/// Stack for the command: step outputs may nest a thousand levels, which the recursive conversions to and from
/// JSON handle only with room to spare in unoptimised builds. Reserved, and touched only as used.
const COMMAND_STACK: usize = 256 << 20;

/// Parses the command line, runs the command and maps failures to one line on stderr and exit code 1.
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    progress::set_quiet(cli.quiet);
    init_logging();
    if let Command::Pipes(command) = &cli.command {
        // A Pipes step reports its own failures, to Dagster and on stderr.
        return pipes_cmd::run(command);
    }
    let result = std::thread::Builder::new()
        .name("dagster-wandb".to_owned())
        .stack_size(COMMAND_STACK)
        .spawn(move || match &cli.command {
            Command::Artifact(args) => artifact::run(&args.backend, &args.command),
            Command::Serde(command) => serde_cmd::run(command),
            Command::Cache(command) => cache_cmd::run(command),
            Command::Server(args) => server_cmd::run(args),
            Command::Ui(args) => server_cmd::run_ui(args),
            Command::Registry(args) => registry_cmd::run(&args.backend, &args.command),
            Command::Store(args) => store_cmd::run(&args.backend, &args.command),
            Command::Sync(args) => sync_cmd::run(args),
            Command::Run(args) => run_cmd::run(&args.backend, &args.command),
            Command::Launch(args) => launch_cmd::run(&args.backend, &args.command),
            // Run above, before this thread.
            Command::Pipes(_) => Ok(()),
        })
        .map_err(|e| CliError::Usage(format!("cannot start the command: {e}")))
        .and_then(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = e.to_string().replace('\n', " ");
            #[allow(clippy::print_stderr, reason = "the CLI reports errors on stderr")]
            {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

impl Backend {
    /// Backend, key, entity, project and cache: the environment's, with the flags over it.
    fn settings(&self) -> CliResult<Settings> {
        let mut settings = match self.base_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Settings::from_env_with_base_url(BaseUrl::parse(url)?)?,
            None => Settings::from_env()?,
        };
        if let Some(entity) = self.entity.as_deref().filter(|e| !e.is_empty()) {
            settings = settings.with_entity(entity);
        }
        if let Some(project) = self.project.as_deref().filter(|p| !p.is_empty()) {
            settings = settings.with_project(project);
        }
        if let Some(deadline) = self.retry_deadline {
            settings = settings.with_retry_deadline(deadline);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// The API over the configured backend, whose embedded store must already exist: a command that reads or
    /// changes what was logged says there is no store rather than creating an empty one at a mistyped path.
    fn api(&self) -> CliResult<Api> {
        Ok(Api::new(self.settings()?.with_create_store(false))?)
    }

    /// The API over the configured backend, creating its embedded store if there is none yet (what logs).
    fn api_creating_store(&self) -> CliResult<Api> {
        Ok(Api::new(self.settings()?)?)
    }
}

/// Library warnings (unverifiable references, unsupported schemes) go to stderr; `RUST_LOG` adjusts them.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

fn absolute(path: &std::path::Path) -> CliResult<PathBuf> {
    std::path::absolute(path).map_err(|e| CliError::Usage(format!("cannot resolve {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    /// clap checks the whole command tree only when a command is parsed: a clash (two arguments with one short
    /// name, a global flag shadowing a subcommand's) would otherwise fail only the subcommand that has it.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
