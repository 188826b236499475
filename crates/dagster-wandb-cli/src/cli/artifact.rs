//! `dagster-wandb artifact put | get | link | ls`, modelled on `wandb artifact …`; what is done to a version after
//! logging is in `artifact_edit`.

use std::path::PathBuf;
use std::sync::Arc;

use artifact_core::{
    AddDirOptions, AddFileOptions, Artifact, ArtifactAddress, DigestAlgorithm, DigestMemo, parse_metadata_json,
};
use clap::Subcommand;
use wandb_api::{ArtifactVersion, CollectionKind, LogOptions, ProjectRef, RunSettings, default_download_root};

use super::output::{ArtifactJson, human_size, notice, print_json, print_line, raw_manifest};
use super::progress::stderr_progress;
use super::{Backend, CliError, CliResult, absolute, artifact_edit};

#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactCommand {
    /// Log a file or a directory as a new artifact version.
    Put {
        /// The file or directory to log, or a URI to log by reference (s3://, file://, http(s)://, …).
        path: PathBuf,
        /// Artifact name: NAME, PROJECT/NAME or ENTITY/PROJECT/NAME.
        #[arg(long, short = 'n')]
        name: String,
        /// Artifact type, e.g. dataset or model.
        #[arg(long = "type", short = 't')]
        artifact_type: String,
        /// An alias for the new version (repeatable); `latest` is always added.
        #[arg(long = "alias", short = 'a', value_name = "ALIAS")]
        aliases: Vec<String>,
        /// A tag for the new version (repeatable): words of letters, digits, `-` and `_`, separated by spaces.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// A description of the version.
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// Metadata as a JSON object.
        #[arg(long, short = 'm', value_name = "JSON")]
        metadata: Option<String>,
        /// Path prefix inside the artifact (a directory's files go under it; a file becomes PREFIX/<name>).
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// File digest algorithm.
        #[arg(long, value_name = "md5|xxh128", default_value = "md5")]
        digest: DigestAlgorithm,
        /// Compute the manifest and digest without logging anything.
        #[arg(long)]
        dry_run: bool,
        /// For a URI: record it without checksumming what it points to (no request is made).
        #[arg(long)]
        no_checksum: bool,
        /// For a URI naming a prefix or directory: the most entries it may expand to (default 10,000,000).
        #[arg(long, value_name = "N")]
        max_objects: Option<u64>,
        /// Upload this as one part of a distributed artifact written by several processes
        /// (`run.upsert_artifact`); nothing is committed until one of them runs with --finish.
        #[arg(long, value_name = "ID")]
        distributed_id: Option<String>,
        /// With --distributed-id: add this part and commit the artifact, every part merged (`run.finish_artifact`).
        #[arg(long, requires = "distributed_id")]
        finish: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download an artifact version.
    Get {
        /// NAME[:ALIAS_OR_VERSION] (PROJECT/ and ENTITY/ prefixes allowed); the alias defaults to latest.
        name: String,
        /// Where to put the files (default: ./artifacts/NAME:vN, or $WANDB_ARTIFACT_DIR/NAME:vN).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Skip referenced objects that no longer exist instead of failing (the SDK's
        /// allow_missing_references); a reference that changed is still an error.
        #[arg(long)]
        allow_missing_references: bool,
        /// Then remove every file under the root that the version does not have (`artifact.checkout()`).
        #[arg(long, conflicts_with = "path_prefix")]
        checkout: bool,
        /// Download only the entries whose path starts with P (`artifact.download(path_prefix=…)`).
        #[arg(long, value_name = "P")]
        path_prefix: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a logged version: aliases, tags, description, metadata, time to live (`artifact.save()`).
    Edit {
        /// NAME:ALIAS_OR_VERSION (PROJECT/ and ENTITY/ prefixes allowed).
        name: String,
        /// Point this alias at the version, moving it from any other version (repeatable).
        #[arg(long = "add-alias", value_name = "A")]
        add_aliases: Vec<String>,
        /// Take this alias off the version (repeatable).
        #[arg(long = "remove-alias", value_name = "A")]
        remove_aliases: Vec<String>,
        /// The version's tags become exactly these (repeatable).
        #[arg(long = "tag", value_name = "T", conflicts_with = "clear_tags")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long)]
        clear_tags: bool,
        /// The description; an empty one clears it.
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// The metadata, replaced whole by this JSON object.
        #[arg(long, short = 'm', value_name = "JSON")]
        metadata: Option<String>,
        /// Time to live, counted from creation: a duration (3600, 90m, 12h, 30d, 2w), `inherit` or `none`.
        #[arg(long, value_name = "DURATION|inherit|none")]
        ttl: Option<String>,
        /// Print the edited version as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Delete a version; one holding aliases only with --delete-aliases (`artifact.delete()`).
    Delete {
        /// NAME:ALIAS_OR_VERSION (PROJECT/ and ENTITY/ prefixes allowed).
        name: String,
        /// Delete it even though it holds aliases, and the aliases with it.
        #[arg(long)]
        delete_aliases: bool,
        /// Print the deleted version as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove a version from a portfolio or registry collection; the source version stays (`artifact.unlink()`).
    Unlink {
        /// TARGET:ALIAS_OR_VERSION, the version as seen through the portfolio or registry collection.
        target: String,
        /// Print the unlinked membership as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check a directory against a version: missing, changed and extra files; exit code 1 when any.
    Verify {
        /// NAME:ALIAS_OR_VERSION (PROJECT/ and ENTITY/ prefixes allowed).
        name: String,
        /// The directory to check.
        #[arg(long)]
        root: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Link a version to a portfolio or a registry collection, as `artifact.link()` does.
    Link {
        /// NAME[:ALIAS_OR_VERSION] of the version to link (PROJECT/ and ENTITY/ prefixes allowed).
        name: String,
        /// [[ENTITY/]PROJECT/]COLLECTION, or wandb-registry-<REGISTRY>/<COLLECTION> for a registry.
        target: String,
        /// An alias for the linked version in the target (repeatable).
        #[arg(long = "alias", short = 'a', value_name = "ALIAS")]
        aliases: Vec<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the artifacts of the project with their latest versions.
    Ls {
        /// Only artifacts of this type.
        #[arg(long = "type", short = 't')]
        artifact_type: Option<String>,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(backend: &Backend, command: &ArtifactCommand) -> CliResult {
    match command {
        ArtifactCommand::Put {
            path,
            name,
            artifact_type,
            aliases,
            tags,
            description,
            metadata,
            prefix,
            digest,
            dry_run,
            no_checksum,
            max_objects,
            distributed_id,
            finish,
            json,
        } => {
            let request = PutRequest {
                path,
                name,
                artifact_type,
                aliases,
                tags,
                description: description.as_deref(),
                metadata: metadata.as_deref(),
                prefix: prefix.as_deref(),
                digest: *digest,
                dry_run: *dry_run,
                no_checksum: *no_checksum,
                max_objects: *max_objects,
                distributed: distributed_id.as_deref().map(|id| (id, *finish)),
                json: *json,
            };
            if !*dry_run {
                super::stop_cleanly_on_interrupt(
                    "nothing was logged (a version is committed only once all its files are in); file bodies \
                     stored so far stay and the next put reuses them",
                )?;
            }
            put(backend, &request)
        }
        ArtifactCommand::Get { name, root, allow_missing_references, checkout, path_prefix, json } => {
            let request = GetRequest {
                root: root.as_deref(),
                allow_missing_references: *allow_missing_references,
                checkout: *checkout,
                path_prefix: path_prefix.as_deref(),
                json: *json,
            };
            super::stop_cleanly_on_interrupt(
                "the files already in the root are complete and verified, the others were not written; the next \
                 get fetches only those",
            )?;
            get(backend, name, &request)
        }
        ArtifactCommand::Edit {
            name,
            add_aliases,
            remove_aliases,
            tags,
            clear_tags,
            description,
            metadata,
            ttl,
            json,
        } => {
            let request = artifact_edit::EditRequest {
                add_aliases,
                remove_aliases,
                tags,
                clear_tags: *clear_tags,
                description: description.as_deref(),
                metadata: metadata.as_deref(),
                ttl: ttl.as_deref(),
                json: *json,
            };
            artifact_edit::edit(backend, name, &request)
        }
        ArtifactCommand::Delete { name, delete_aliases, json } => {
            artifact_edit::delete(backend, name, *delete_aliases, *json)
        }
        ArtifactCommand::Unlink { target, json } => artifact_edit::unlink(backend, target, *json),
        ArtifactCommand::Verify { name, root, json } => artifact_edit::verify(backend, name, root, *json),
        ArtifactCommand::Link { name, target, aliases, json } => link(backend, name, target, aliases, *json),
        ArtifactCommand::Ls { artifact_type, json } => ls(backend, artifact_type.as_deref(), *json),
    }
}

/// How long an interrupted put may take to tell the backend its run ended.
const INTERRUPT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

struct PutRequest<'a> {
    path: &'a std::path::Path,
    name: &'a str,
    artifact_type: &'a str,
    aliases: &'a [String],
    tags: &'a [String],
    description: Option<&'a str>,
    metadata: Option<&'a str>,
    prefix: Option<&'a str>,
    digest: DigestAlgorithm,
    dry_run: bool,
    no_checksum: bool,
    max_objects: Option<u64>,
    /// `(distributed id, finish)`.
    distributed: Option<(&'a str, bool)>,
    json: bool,
}

/// The project an address names, defaulting to `--entity` and `--project`.
fn project_of(settings: &wandb_api::Settings, address: &ArtifactAddress) -> CliResult<ProjectRef> {
    Ok(ProjectRef::new(
        address.entity.as_deref().unwrap_or(&settings.entity),
        address.project.as_deref().unwrap_or(&settings.project),
    )?)
}

fn put(backend: &Backend, request: &PutRequest<'_>) -> CliResult {
    let address = ArtifactAddress::parse(request.name)?;
    if address.alias.is_some() {
        return Err(CliError::Usage(format!(
            "--name {:?} has an alias; give aliases with --alias instead",
            request.name
        )));
    }
    let settings = backend.settings()?;
    let project = project_of(&settings, &address)?;
    for alias in request.aliases {
        artifact_core::validate_alias(alias)?;
    }
    artifact_core::validate_tags(request.tags)?;
    let mut artifact = Artifact::new(&address.name, request.artifact_type)?;
    artifact.set_digest_algorithm(request.digest)?;
    artifact.set_description(request.description.map(str::to_owned));
    if let Some(metadata) = request.metadata {
        artifact.set_metadata(serde_json::Value::Object(parse_metadata_json(metadata)?))?;
    }
    if let Some(cache) = settings.cache() {
        let memo: Arc<dyn DigestMemo> = Arc::new(cache.digest_memo());
        artifact.set_digest_memo(memo);
    }
    let progress = stderr_progress();
    if let Some(progress) = &progress {
        artifact.set_progress(progress.clone());
    }

    let path_text = request.path.to_string_lossy();
    if path_text.contains("://") {
        // A URI: logged by reference, as `wandb artifact put URI` does. A dry run connects to no backend.
        let resolvers = wandb_api::ReferenceResolvers::from_env_on(wandb_api::runtime()?.handle().clone())?;
        let options = artifact_core::ReferenceOptions {
            name: request.prefix.map(str::to_owned),
            checksum: !request.no_checksum,
            max_objects: request.max_objects,
        };
        artifact.add_reference_with(&path_text, options, Some(&resolvers))?;
    } else if request.no_checksum || request.max_objects.is_some() {
        return Err(CliError::Usage(format!(
            "--no-checksum and --max-objects apply to references; {:?} is a local path (give a URI such as file://…)",
            request.path.display().to_string()
        )));
    } else {
        add_local(&mut artifact, request)?;
    }
    artifact.flush_digest_memo();

    if request.dry_run {
        if request.json {
            return print_json(&ArtifactJson {
                name: artifact.name(),
                artifact_type: artifact.artifact_type(),
                version: None,
                digest: &artifact.digest(),
                size: artifact.size(),
                file_count: artifact.manifest().len() as u64,
                entity: project.entity(),
                project: project.project(),
                aliases: None,
                tags: request.tags,
                description: artifact.description(),
                metadata: Some(artifact.metadata()),
                ttl: None,
                created: None,
                download: None,
                removed: None,
                manifest: raw_manifest(artifact.manifest().to_go_json())?,
            });
        }
        return print_line(&format!(
            "{} ({}): {} files, {}, digest {} (dry run: nothing logged)",
            artifact.name(),
            artifact.artifact_type(),
            artifact.manifest().len(),
            human_size(artifact.size()),
            artifact.digest()
        ));
    }

    // As `wandb artifact put`, the version is logged by a run of its own — once the name is known to take the
    // type, so that a refused put leaves no run behind.
    let api = wandb_api::Api::new(settings)?;
    api.check_type(&project, artifact.name(), artifact.artifact_type())?;
    let run = api.init(RunSettings::new(project.project()).entity(project.entity()).job_type("cli_put"))?;
    let mut options =
        LogOptions::default().with_aliases(request.aliases.iter().cloned()).with_tags(request.tags.iter().cloned());
    if let Some(progress) = progress {
        options = options.with_progress(progress);
    }
    let aliases: Vec<&str> = request.aliases.iter().map(String::as_str).collect();
    // Interrupted, the put's run ends failed with the shell's code rather than reading as running for ever (a
    // server cannot tell that this process is gone) — until the run has ended on its own.
    let ending_on_interrupt = {
        let (backend, project, run_id) = (api.backend().clone(), run.project().clone(), run.id().to_owned());
        super::on_interrupt(move || {
            let ended =
                wandb_api::StreamChunk { complete: true, exit_code: Some(super::INTERRUPTED), ..Default::default() };
            // Bounded: a server that is gone must not hold up the exit.
            let ending = tokio::time::timeout(INTERRUPT_GRACE, backend.write_run_stream(&project, &run_id, &ended));
            let _ = wandb_api::block_on(async move { ending.await.unwrap_or(Ok(())) });
        })
    };
    let outcome = match request.distributed {
        Some((id, false)) => run.upsert_artifact(&artifact, id).map(|_| None),
        Some((id, true)) => run.finish_artifact(&artifact, id, &aliases).map(Some),
        None => run.log_artifact_with(&artifact, options).map(Some),
    };
    let logged = match outcome {
        Ok(logged) => {
            run.finish()?;
            logged
        }
        Err(e) => {
            // The run failed with the put; its own error matters less than the put's.
            let _ = run.finish_with_exit_code(1);
            return Err(e.into());
        }
    };
    // The run has ended: an interruption from here on must not reopen it as failed.
    drop(ending_on_interrupt);
    let Some(logged) = logged else { return report_part(&artifact, request) };
    report_put(&logged.version, &logged.manifest, logged.created, request.json, &api.backend().base_url().to_string())
}

/// Adds a local file or directory to the draft.
fn add_local(artifact: &mut Artifact, request: &PutRequest<'_>) -> CliResult {
    let local = absolute(request.path)?;
    let metadata = std::fs::metadata(&local)
        .map_err(|e| CliError::Usage(format!("cannot log {}: {e}", request.path.display())))?;
    if metadata.is_dir() {
        let options = AddDirOptions { name: request.prefix.map(str::to_owned), ..Default::default() };
        artifact.add_dir(&local, options)?;
    } else {
        let name = match (request.prefix, local.file_name().and_then(|n| n.to_str())) {
            (Some(prefix), Some(file_name)) => Some(format!("{prefix}/{file_name}")),
            _ => None,
        };
        artifact.add_file(&local, AddFileOptions { name, ..Default::default() })?;
    }
    Ok(())
}

/// What `put --distributed-id` without `--finish` prints: the part uploaded, nothing committed yet.
fn report_part(artifact: &Artifact, request: &PutRequest<'_>) -> CliResult {
    let distributed_id = request.distributed.map(|(id, _)| id).unwrap_or_default();
    if request.json {
        return print_json(&serde_json::json!({
            "name": artifact.name(), "type": artifact.artifact_type(), "distributed_id": distributed_id,
            "part_files": artifact.manifest().len(), "part_size": artifact.size(), "finished": false,
        }));
    }
    print_line(&format!(
        "Upserted {} files ({}) into {} (distributed id {distributed_id}); it is committed by `--finish`",
        artifact.manifest().len(),
        human_size(artifact.size()),
        artifact.name()
    ))
}

/// What `put` prints: the version, or the existing one when the content was already the latest.
fn report_put(
    version: &ArtifactVersion,
    manifest: &artifact_core::Manifest,
    created: bool,
    json: bool,
    backend: &str,
) -> CliResult {
    if !created {
        notice(&format!(
            "Artifact \"{}\" already exists with the same content. No new version will be created.",
            version.name
        ));
    }
    if json {
        return print_json(&ArtifactJson { created: Some(created), ..ArtifactJson::for_version(version, manifest)? });
    }
    print_line(&format!(
        "{} {}/{}/{} ({}): {} files, {}, digest {}, aliases {} [{}]",
        if created { "Logged" } else { "Unchanged" },
        version.entity,
        version.project,
        version.qualified_name(),
        version.artifact_type,
        version.file_count,
        human_size(version.size),
        version.digest,
        version.aliases.join(", "),
        backend
    ))
}

struct GetRequest<'a> {
    root: Option<&'a std::path::Path>,
    allow_missing_references: bool,
    checkout: bool,
    path_prefix: Option<&'a str>,
    json: bool,
}

fn get(backend: &Backend, name: &str, request: &GetRequest<'_>) -> CliResult {
    let api = backend.api()?;
    let handle = api.artifact(name)?;
    let version = handle.version();
    let root = match request.root {
        Some(root) => absolute(root)?,
        None => default_download_root(&version.name, &version.version())?,
    };
    let mut options = api.download_options();
    options.progress = stderr_progress();
    options.allow_missing_references = request.allow_missing_references;
    let report = match request.path_prefix {
        Some(prefix) => handle.download_prefix_with(prefix, &root, &options)?,
        None => handle.download_with(&root, &options)?,
    };
    let removed = if request.checkout { artifact_core::remove_extra_files(handle.manifest()?, &root)? } else { vec![] };
    if request.json {
        return print_json(&ArtifactJson {
            download: Some(&report),
            removed: request.checkout.then_some(&removed),
            ..ArtifactJson::for_version(version, handle.manifest()?)?
        });
    }
    for path in &removed {
        notice(&format!("removed {path} (not in {})", version.qualified_name()));
    }
    print_line(&format!(
        "{} -> {} ({} files, {}: {} fetched, {} from cache, {} already present, {} references)",
        version.qualified_name(),
        report.root.display(),
        report.files,
        human_size(report.bytes),
        report.fetched,
        report.from_cache,
        report.already_present,
        report.references
    ))
}

fn link(backend: &Backend, name: &str, target: &str, aliases: &[String], json: bool) -> CliResult {
    let api = backend.api()?;
    let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
    let linked = api.artifact(name)?.link(target, &aliases)?;
    let linked = linked.version();
    if json {
        return print_json(linked);
    }
    print_line(&format!(
        "Linked {} -> {}/{}/{} [{}]",
        linked.linked_from.as_deref().unwrap_or(name),
        linked.entity,
        linked.project,
        linked.qualified_name(),
        linked.aliases.join(", ")
    ))
}

fn ls(backend: &Backend, artifact_type: Option<&str>, json: bool) -> CliResult {
    let api = backend.api()?;
    let collections = api.collections(None, artifact_type)?;
    if json {
        return print_json(&collections);
    }
    let project = api.project();
    if collections.is_empty() {
        let Some(wanted) = artifact_type else { return print_line(&format!("no artifacts in {project}")) };
        let types = api.artifact_types(None)?;
        if types.is_empty() {
            return print_line(&format!("no artifacts in {project}"));
        }
        return print_line(&format!("no artifacts of type {wanted:?} in {project} (its types: {})", types.join(", ")));
    }
    let registry = project.project().starts_with(artifact_core::REGISTRY_PREFIX);
    for c in &collections {
        let linked = match c.kind {
            CollectionKind::Portfolio if registry => " (registry collection)",
            CollectionKind::Portfolio => " (linked)",
            _ => "",
        };
        print_line(&format!(
            "{:<12} {:<28} {:>10}  {} versions  {}  [{}]{linked}",
            c.artifact_type,
            c.latest.qualified_name(),
            human_size(c.latest.size),
            c.version_count,
            c.latest.created_at,
            c.latest.aliases.join(", ")
        ))?;
    }
    Ok(())
}
