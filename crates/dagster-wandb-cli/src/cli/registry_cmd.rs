//! `dagster-wandb registry ls | create | delete`: the organisation's registries.

use clap::Subcommand;
use wandb_api::{RegistrySpec, RegistryVisibility};

use super::output::{print_json, print_line};
use super::{Backend, CliError, CliResult};

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// List the registries of the entity's organisation.
    Ls {
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a registry (its project is wandb-registry-NAME).
    Create {
        /// The registry name, without the wandb-registry- prefix.
        name: String,
        /// A description.
        #[arg(long, short = 'd')]
        description: Option<String>,
        /// Who sees it: organization or restricted.
        #[arg(long, default_value = "organization", value_name = "organization|restricted")]
        visibility: String,
        /// An artifact type it accepts (repeatable); without any, it accepts every type.
        #[arg(long = "type", short = 't', value_name = "TYPE")]
        artifact_types: Vec<String>,
        /// Print the registry as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Delete a registry and every link into it; the linked versions stay where they were logged.
    Delete {
        /// The registry name, without the wandb-registry- prefix.
        name: String,
    },
}

pub(crate) fn run(backend: &Backend, command: &RegistryCommand) -> CliResult {
    let api = match command {
        RegistryCommand::Create { .. } => backend.api_creating_store()?,
        _ => backend.api()?,
    };
    match command {
        RegistryCommand::Ls { json } => {
            let registries = api.registries()?;
            if *json {
                return print_json(&registries);
            }
            if registries.is_empty() {
                return print_line(&format!("no registries in {}", api.settings().entity));
            }
            for r in &registries {
                let types =
                    if r.allow_all_artifact_types { "all types".to_owned() } else { r.artifact_types.join(", ") };
                let visibility = match r.visibility {
                    RegistryVisibility::Organization => "organization",
                    _ => "restricted",
                };
                print_line(&format!(
                    "{:<24} {visibility:<12} [{types}]  {}",
                    r.name,
                    r.description.as_deref().unwrap_or("")
                ))?;
            }
            Ok(())
        }
        RegistryCommand::Create { name, description, visibility, artifact_types, json } => {
            let visibility = match visibility.as_str() {
                "organization" => RegistryVisibility::Organization,
                "restricted" => RegistryVisibility::Restricted,
                other => {
                    return Err(CliError::Usage(format!("--visibility {other:?}: give organization or restricted")));
                }
            };
            let mut spec = RegistrySpec::default().description(description.clone()).visibility(visibility);
            if !artifact_types.is_empty() {
                spec = spec.artifact_types(artifact_types.iter().cloned());
            }
            let registry = api.create_registry(name, &spec)?;
            if *json {
                return print_json(&registry);
            }
            print_line(&format!(
                "Created registry {} ({}/{})",
                registry.name,
                registry.entity,
                registry.project().project()
            ))
        }
        RegistryCommand::Delete { name } => {
            let registry = api.registry(name)?;
            api.delete_registry(&registry)?;
            print_line(&format!("Deleted registry {name}"))
        }
    }
}
