//! `dagster-wandb artifact edit | delete | unlink | verify`: what is done to a version after logging.

use std::path::Path;

use artifact_core::parse_metadata_json;
use wandb_api::{ArtifactHandle, Ttl, VersionEdit};

use super::output::{print_json, print_line};
use super::{Backend, CliError, CliResult, absolute};

/// What `artifact edit` changes; everything left out stays.
pub(crate) struct EditRequest<'a> {
    pub(crate) add_aliases: &'a [String],
    pub(crate) remove_aliases: &'a [String],
    pub(crate) tags: &'a [String],
    pub(crate) clear_tags: bool,
    pub(crate) description: Option<&'a str>,
    pub(crate) metadata: Option<&'a str>,
    pub(crate) ttl: Option<&'a str>,
    pub(crate) json: bool,
}

impl EditRequest<'_> {
    /// The edit, every value checked before anything is sent.
    fn to_edit(&self) -> CliResult<VersionEdit> {
        let mut edit = VersionEdit::default()
            .add_aliases(self.add_aliases.iter().cloned())
            .remove_aliases(self.remove_aliases.iter().cloned());
        if self.clear_tags {
            edit = edit.tags(Vec::<String>::new());
        } else if !self.tags.is_empty() {
            artifact_core::validate_tags(self.tags)?;
            edit = edit.tags(self.tags.iter().cloned());
        }
        if let Some(description) = self.description {
            edit = edit.description(Some(description.to_owned()).filter(|d| !d.is_empty()));
        }
        if let Some(metadata) = self.metadata {
            edit = edit.metadata(parse_metadata_json(metadata)?);
        }
        if let Some(ttl) = self.ttl {
            edit = edit.ttl(ttl.parse::<Ttl>().map_err(wandb_api::Error::Store)?);
        }
        if edit == VersionEdit::default() {
            return Err(CliError::Usage(
                "nothing to change: give --add-alias, --remove-alias, --tag, --clear-tags, --description, --metadata \
                 or --ttl"
                    .to_owned(),
            ));
        }
        Ok(edit)
    }
}

pub(crate) fn edit(backend: &Backend, name: &str, request: &EditRequest<'_>) -> CliResult {
    let edit = request.to_edit()?;
    let api = backend.api()?;
    let edited = api.artifact(name)?.edit(&edit)?;
    let v = edited.version();
    if request.json {
        return print_json(v);
    }
    print_line(&format!(
        "Edited {}/{}/{}: aliases [{}], tags [{}], ttl {}{}",
        v.entity,
        v.project,
        v.qualified_name(),
        v.aliases.join(", "),
        v.tags.join(", "),
        v.ttl,
        v.description.as_deref().map(|d| format!(", description {d:?}")).unwrap_or_default()
    ))
}

pub(crate) fn delete(backend: &Backend, name: &str, delete_aliases: bool, json: bool) -> CliResult {
    let api = backend.api()?;
    let handle = api.artifact(name)?;
    handle.delete(delete_aliases)?;
    let v = handle.version();
    if json {
        return print_json(v);
    }
    print_line(&format!("Deleted {}/{}/{}", v.entity, v.project, v.qualified_name()))
}

pub(crate) fn unlink(backend: &Backend, target: &str, json: bool) -> CliResult {
    let api = backend.api()?;
    let handle = api.artifact(target)?;
    handle.unlink()?;
    let v = handle.version();
    if json {
        return print_json(v);
    }
    let source = v.linked_from.as_deref().map(|s| format!(" (still {s})")).unwrap_or_default();
    print_line(&format!("Unlinked {}/{}/{}{source}", v.entity, v.project, v.qualified_name()))
}

/// Prints what differs; an error (exit code 1) when anything does.
pub(crate) fn verify(backend: &Backend, name: &str, root: &Path, json: bool) -> CliResult {
    let api = backend.api()?;
    let handle: ArtifactHandle = api.artifact(name)?;
    let root = absolute(root)?;
    let report = handle.verify(&root)?;
    if json {
        print_json(&report)?;
    } else {
        for (label, paths) in [("missing", &report.missing), ("changed", &report.changed), ("extra", &report.extra)] {
            for path in paths {
                print_line(&format!("{label:<8} {path}"))?;
            }
        }
        for path in &report.unverifiable {
            print_line(&format!(
                "{:<8} {path} (a reference: its size matches; its ETag cannot be checked)",
                "unknown"
            ))?;
        }
    }
    if report.is_clean() {
        if !json {
            print_line(&format!(
                "{} matches {} ({} files verified)",
                root.display(),
                handle.version().qualified_name(),
                report.verified
            ))?;
        }
        return Ok(());
    }
    Err(CliError::Differs(format!(
        "{} differs from {}: {} missing, {} changed, {} extra",
        root.display(),
        handle.version().qualified_name(),
        report.missing.len(),
        report.changed.len(),
        report.extra.len()
    )))
}
