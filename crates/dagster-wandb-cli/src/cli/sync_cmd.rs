//! `dagster-wandb sync --from URL --to URL`: a project's artifacts copied between backends.

use wandb_api::sync::SyncOptions;
use wandb_api::{Api, BaseUrl, ProjectRef, Settings};

use super::output::{human_size, print_json, print_line};
use super::{CliResult, absolute};

#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// The source backend: file:///path (an embedded store) or http(s)://host (a W&B server, key from
    /// WANDB_API_KEY).
    #[arg(long, value_name = "URL")]
    from: String,
    /// The target backend, as --from.
    #[arg(long, value_name = "URL")]
    to: String,
    /// The entity whose project is copied [env: WANDB_ENTITY; default: local].
    #[arg(long)]
    entity: Option<String>,
    /// The project copied [env: WANDB_PROJECT; default: uncategorized].
    #[arg(long)]
    project: Option<String>,
    /// Only this collection.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// The entity to copy into, when the target's differs (e.g. a W&B team for a local store's `local`).
    #[arg(long, value_name = "ENTITY")]
    to_entity: Option<String>,
    /// The project to copy into, when its name differs.
    #[arg(long, value_name = "PROJECT")]
    to_project: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &SyncArgs) -> CliResult {
    super::stop_cleanly_on_interrupt(
        "the versions copied so far stay (each is committed whole) and the next sync skips them",
    )?;
    // The source must exist (a mistyped one is not an empty project); the target is created if need be.
    let side = |url: &str, create_store: bool| -> CliResult<Api> {
        let base_url = match BaseUrl::parse(url)? {
            BaseUrl::Embedded(path) => BaseUrl::Embedded(absolute(&path)?),
            server => server,
        };
        Ok(Api::new(Settings::from_env_with_base_url(base_url)?.with_create_store(create_store))?)
    };
    let (from, to) = (side(&args.from, false)?, side(&args.to, true)?);
    let settings = from.settings();
    let entity = args.entity.as_deref().unwrap_or(&settings.entity);
    let project = ProjectRef::new(entity, args.project.as_deref().unwrap_or(&settings.project))?;
    let target = ProjectRef::new(
        args.to_entity.as_deref().unwrap_or(project.entity()),
        args.to_project.as_deref().unwrap_or(project.project()),
    )?;
    let mut options =
        SyncOptions::new(project.clone()).with_target(target.clone()).with_download(from.download_options());
    if let Some(name) = &args.name {
        options = options.with_name(name);
    }
    let report = from.sync_to(&to, &options)?;
    if args.json {
        return print_json(&report);
    }
    for version in &report.versions_copied {
        print_line(&format!("copied   {project}/{version}"))?;
    }
    for member in &report.links_skipped {
        print_line(&format!("skipped  {project}/{member} (its source is in a project not synced)"))?;
    }
    print_line(&format!(
        "{project} -> {target}: {} versions copied, {} already there ({} brought in line), {} links, {} runs, {} uses; \
         {} bodies fetched, {} stored ({})",
        report.versions_copied.len(),
        report.versions_present,
        report.versions_updated,
        report.links_made,
        report.runs_copied,
        report.uses_recorded,
        report.files_fetched,
        report.files_stored,
        human_size(report.bytes_stored)
    ))
}
