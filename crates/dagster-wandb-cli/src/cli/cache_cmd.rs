//! `dagster-wandb cache sweep | cleanup`: bounded local storage.

use std::path::PathBuf;

use clap::Subcommand;
use io_cache::{
    CleanupOptions, ContentCache, DEFAULT_CACHE_DURATION_MINUTES, SweepOptions, parse_size, storage_root, sweep,
};
use serde_json::json;

use super::output::{human_size, notice, print_json, print_line};
use super::{CliResult, absolute};

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Remove what dagster-wandb's IO manager cached and nobody accessed for a while, exactly as its
    /// cache_duration_in_minutes sweep does (<base-dir>/storage/wandb_artifacts_manager).
    Sweep {
        /// The IO manager's base_dir (a directory named `storage` is used as is).
        #[arg(long, value_name = "DIR")]
        base_dir: PathBuf,
        /// Files not accessed for this many minutes go; 0 removes everything; default 30 days.
        #[arg(long, default_value_t = DEFAULT_CACHE_DURATION_MINUTES, allow_negative_numbers = true)]
        minutes: i64,
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Shrink the W&B content cache (WANDB_CACHE_DIR) to a size, least recently used objects first.
    Cleanup {
        /// The size to shrink to: 10GB (powers of 1000), 512MiB (powers of 1024), or bytes.
        #[arg(long, value_name = "SIZE")]
        max_size: String,
        /// Also remove abandoned temporary files.
        #[arg(long)]
        remove_temp: bool,
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: &CacheCommand) -> CliResult {
    match command {
        CacheCommand::Sweep { base_dir, minutes, dry_run, json } => {
            let root = storage_root(&absolute(base_dir)?);
            let report = sweep(&root, SweepOptions { duration_minutes: *minutes, dry_run: *dry_run, now: None })?;
            if *json {
                return print_json(&json!({
                    "root": root,
                    "minutes": minutes,
                    "dry_run": dry_run,
                    "files_removed": report.files_removed,
                    "dirs_removed": report.dirs_removed,
                    "bytes_removed": report.bytes_removed,
                    "files_kept": report.files_kept,
                    "skipped_in_use": report.skipped_in_use,
                }));
            }
            print_line(&format!(
                "{} {}: {} files ({}) and {} directories; kept {} files{}",
                if *dry_run { "would remove from" } else { "removed from" },
                root.display(),
                report.files_removed,
                human_size(report.bytes_removed),
                report.dirs_removed,
                report.files_kept,
                in_use(report.skipped_in_use)
            ))
        }
        CacheCommand::Cleanup { max_size, remove_temp, dry_run, json } => {
            let max_size = parse_size(max_size)?;
            let cache = ContentCache::from_env()?;
            let report = cache.cleanup(CleanupOptions { max_size, remove_temp: *remove_temp, dry_run: *dry_run })?;
            if report.temp_bytes > 0 {
                notice(&format!(
                    "Cache contains {} of temporary files. Run `dagster-wandb cache cleanup --remove-temp` to remove the abandoned ones.",
                    human_size(report.temp_bytes)
                ));
            }
            if !report.reached_target {
                notice(&format!(
                    "Failed to reclaim enough space in {}: {} remain ({} objects in use, {} of temporary files).",
                    cache.root().display(),
                    human_size(report.size_after),
                    report.skipped_in_use,
                    human_size(report.temp_bytes)
                ));
            }
            if *json {
                return print_json(&json!({
                    "cache_dir": cache.root(),
                    "max_size": max_size,
                    "dry_run": dry_run,
                    "size_before": report.size_before,
                    "size_after": report.size_after,
                    "objects_removed": report.objects_removed,
                    "temp_removed": report.temp_removed,
                    "bytes_reclaimed": report.bytes_reclaimed,
                    "skipped_in_use": report.skipped_in_use,
                    "temp_bytes": report.temp_bytes,
                    "reached_target": report.reached_target,
                }));
            }
            print_line(&format!(
                "{} {} from {} ({} objects{}): {} -> {}{}",
                if *dry_run { "would reclaim" } else { "reclaimed" },
                human_size(report.bytes_reclaimed),
                cache.root().display(),
                report.objects_removed,
                if report.temp_removed > 0 {
                    format!(", {} temporary files", report.temp_removed)
                } else {
                    String::new()
                },
                human_size(report.size_before),
                human_size(report.size_after),
                in_use(report.skipped_in_use)
            ))
        }
    }
}

fn in_use(skipped: u64) -> String {
    if skipped == 0 { String::new() } else { format!("; {skipped} in use by another process, kept") }
}
