//! The `dagster-wandb` command-line tool.

mod cli;

/// See the dependency's note in Cargo.toml: freed memory goes back to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
