//! `dagster-wandb store gc` and `store check`: reclaiming an embedded store's space, and finding (and
//! repairing) what is damaged in it.

use std::time::Duration;

use clap::Subcommand;
use wandb_api::BaseUrl;
use wandb_store::{EmbeddedStore, GcOptions};

use super::output::{human_size, print_json, print_line};
use super::{Backend, CliError, CliResult};

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Delete expired versions, then remove file bodies no version references (safe while others use the store).
    Gc {
        /// Report what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep unreferenced bodies touched less than this many hours ago (a log may be about to use them).
        #[arg(long, value_name = "HOURS", default_value_t = 24)]
        grace_hours: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Walk the whole store: damaged records, missing or corrupt bodies, what killed writers left; exit 1 while
    /// anything is wrong.
    Check {
        /// Rebuild what can be rebuilt (the id index, aliases of deleted versions, an unreadable aliases file)
        /// and remove what killed writers left.
        #[arg(long)]
        repair: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(backend: &Backend, command: &StoreCommand) -> CliResult {
    let settings = backend.settings()?;
    let BaseUrl::Embedded(root) = &settings.base_url else {
        return Err(CliError::Usage(format!(
            "`store` works on an embedded store, and the backend is the W&B server {}; give --base-url file:///path",
            settings.base_url
        )));
    };
    let store = EmbeddedStore::open_existing(root)?;
    match command {
        StoreCommand::Check { repair, json } => {
            let report = store.check(*repair)?;
            if *json {
                print_json(&report)?;
            } else {
                for problem in &report.problems {
                    let mark = if problem.repaired { "repaired" } else { "damaged " };
                    print_line(&format!("{mark} {}: {}", problem.path.display(), problem.what))?;
                }
                print_line(&format!(
                    "{}: {} collections, {} versions, {} runs, {} bodies checked; {} problems, {} repaired",
                    store.root().display(),
                    report.collections,
                    report.versions,
                    report.runs,
                    report.bodies,
                    report.problems.len(),
                    report.problems.iter().filter(|p| p.repaired).count()
                ))?;
            }
            if report.is_healthy() {
                Ok(())
            } else {
                Err(CliError::Differs("the store has damage that check cannot repair".to_owned()))
            }
        }
        StoreCommand::Gc { dry_run, grace_hours, json } => {
            let grace = Duration::from_secs(grace_hours.saturating_mul(3600));
            let report = store.gc(GcOptions::default().dry_run(*dry_run).grace(grace))?;
            if *json {
                return print_json(&report);
            }
            let verb = if *dry_run { "would remove" } else { "removed" };
            for version in &report.expired_versions {
                print_line(&format!("expired  {version}"))?;
            }
            print_line(&format!(
                "{}: {verb} {} expired versions and {} unreferenced bodies ({}); kept {} referenced, {} in the grace period",
                store.root().display(),
                report.expired_versions.len(),
                report.objects_removed,
                human_size(report.bytes_removed),
                report.objects_kept,
                report.objects_in_grace
            ))
        }
    }
}
