//! Validation of artifact names, types, aliases, project names and artifact addresses (spec §3).

use crate::error::{Error, Result};

/// Maximum length of artifact names, aliases and types (`NAME_MAXLEN` and the schema limits).
pub const NAME_MAX_LEN: usize = 128;

/// Maximum number of top-level metadata keys (`MAX_ARTIFACT_METADATA_KEYS`).
pub const MAX_METADATA_KEYS: usize = 100;

/// Prefix of registry projects (`REGISTRY_PREFIX`).
pub const REGISTRY_PREFIX: &str = "wandb-registry-";

/// The project used when none is given (`ArtifactPath` default).
pub const DEFAULT_PROJECT: &str = "uncategorized";

/// Checks an artifact (collection) name as the `Artifact` constructor does.
///
/// ```
/// assert!(artifact_core::validate_artifact_name("mnist-raw.v2_final").is_ok());
/// assert!(artifact_core::validate_artifact_name("a/b").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidName`] for characters outside `[a-zA-Z0-9_\-.]` (or an empty name), then
/// [`Error::NameTooLong`] beyond 128 characters — in that order, as the SDK checks them.
pub fn validate_artifact_name(name: &str) -> Result<()> {
    let valid_chars =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid_chars {
        return Err(Error::InvalidName { name: name.to_owned() });
    }
    if name == "." || name == ".." {
        return Err(Error::DotName { name: name.to_owned() });
    }
    if name.chars().count() > NAME_MAX_LEN {
        return Err(Error::NameTooLong { name: name.to_owned() });
    }
    Ok(())
}

/// Checks an artifact type for an artifact called `name`.
///
/// The SDK's constructor only rejects reserved types (`wandb-*`; `job` for any name; `run_table` for names
/// starting with `run-`; `code` for names starting with `source-`). The server additionally refuses `/`, `:`,
/// more than 128 characters and anything outside its type pattern (`^[-\w]+([ ]*[-.\w]+)*$`); those are checked
/// here too, so a type that a W&B server would refuse never enters a store.
///
/// # Errors
/// [`Error::ReservedType`] or [`Error::InvalidType`].
pub fn validate_artifact_type(artifact_type: &str, name: &str) -> Result<()> {
    let reserved = artifact_type.starts_with("wandb-")
        || match artifact_type {
            "job" => true,
            "run_table" => name.starts_with("run-"),
            "code" => name.starts_with("source-"),
            _ => false,
        };
    if reserved {
        return Err(Error::ReservedType { artifact_type: artifact_type.to_owned() });
    }
    validate_type_form(artifact_type)
}

/// Checks a type a store or server is asked to keep: the form rules, and no `wandb-` prefix (W&B's own kinds, which
/// only its backend creates). The kinds the SDK itself logs (`job`, `code`, `run_table`) are accepted.
///
/// # Errors
/// [`Error::ReservedType`] or [`Error::InvalidType`].
pub fn validate_stored_type(artifact_type: &str) -> Result<()> {
    if artifact_type.starts_with("wandb-") {
        return Err(Error::ReservedType { artifact_type: artifact_type.to_owned() });
    }
    validate_type_form(artifact_type)
}

/// The form rules of a type, without the reservation of the SDK's own types (`job`, `code`, `wandb-*`, …).
pub fn validate_type_form(artifact_type: &str) -> Result<()> {
    let invalid =
        |reason: &str| Error::InvalidType { artifact_type: artifact_type.to_owned(), reason: reason.to_owned() };
    if artifact_type.contains('/') || artifact_type.contains(':') {
        return Err(invalid("Artifact types must not contain any of the following characters: '/', ':'"));
    }
    if artifact_type.chars().count() > NAME_MAX_LEN {
        return Err(invalid("Artifact types must be less than or equal to 128 characters"));
    }
    if !matches_type_pattern(artifact_type) {
        return Err(invalid(
            "types may only contain letters, digits, '_', '-', '.' and spaces, must start with a letter, digit, '_' or '-', and must not end with a space",
        ));
    }
    Ok(())
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `^[-\w]+([ ]*[-.\w]+)*$`: a first word of `[-\w]`, then words of `[-.\w]` optionally preceded by spaces.
fn matches_type_pattern(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    if !(first == '-' || is_word_char(first)) || s.ends_with(' ') {
        return false;
    }
    s.chars().all(|c| c == ' ' || c == '-' || c == '.' || is_word_char(c))
}

/// True for aliases of the form `v<digits>` that name a version (`alias_is_version_index`).
pub fn is_version_alias(alias: &str) -> bool {
    alias.len() >= 2 && alias.starts_with('v') && alias[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Checks an alias a user asks for.
///
/// Aliases must be non-empty, at most 128 characters and free of `/` and `:` (the SDK's rule). Version aliases
/// such as `v3` are assigned by the store, so a user cannot claim one.
///
/// # Errors
/// [`Error::InvalidAlias`].
pub fn validate_alias(alias: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidAlias { alias: alias.to_owned(), reason: reason.to_owned() };
    if alias.is_empty() {
        return Err(invalid("aliases must not be empty"));
    }
    if alias.contains('/') || alias.contains(':') {
        return Err(invalid("Aliases must not contain any of the following characters: '/', ':'"));
    }
    if alias.chars().count() > NAME_MAX_LEN {
        return Err(invalid("aliases must be 128 characters or less"));
    }
    if is_version_alias(alias) {
        return Err(invalid("version aliases (v0, v1, …) are assigned by the store and cannot be set"));
    }
    Ok(())
}

/// Checks a version tag as the SDK does (`TAG_REGEX = ^[-\w]+( +[-\w]+)*$`, at most 128 characters): words
/// of letters, digits, `_` and `-` (Unicode letters and digits count, as in Python's `\w`), separated by
/// spaces.
///
/// ```
/// assert!(artifact_core::validate_tag("best model").is_ok());
/// assert!(artifact_core::validate_tag("a, b").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidTag`].
pub fn validate_tag(tag: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidTag { tag: tag.to_owned(), reason: reason.to_owned() };
    let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let well_formed = !tag.is_empty()
        && !tag.starts_with(' ')
        && !tag.ends_with(' ')
        && tag.split(' ').all(|word| word.is_empty() || word.chars().all(word_char));
    if !well_formed {
        return Err(invalid(
            "Tags must only contain alphanumeric characters separated by hyphens, underscores, and/or spaces.",
        ));
    }
    if tag.chars().count() > NAME_MAX_LEN {
        return Err(invalid("tags must be 128 characters or less"));
    }
    Ok(())
}

/// Checks every tag with [`validate_tag`] and returns them without duplicates, the first occurrence kept (the
/// SDK dedupes tags in order).
///
/// # Errors
/// [`Error::InvalidTag`] for the first invalid tag.
pub fn validate_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut unique: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        validate_tag(tag)?;
        if !unique.contains(tag) {
            unique.push(tag.clone());
        }
    }
    Ok(unique)
}

const FORBIDDEN_SCOPE_CHARS: &[char] = &['/', '\\', '#', '?', '%', ':', '\r', '\n'];

/// Checks a project (or registry) name as `validate_project_name` does.
///
/// # Errors
/// [`Error::InvalidScopeName`].
pub fn validate_project_name(name: &str) -> Result<()> {
    let max = if let Some(registry) = name.strip_prefix(REGISTRY_PREFIX) {
        if registry.is_empty() {
            return Err(scope_error("project", name, "a registry needs a name after 'wandb-registry-'"));
        }
        NAME_MAX_LEN - REGISTRY_PREFIX.len()
    } else {
        NAME_MAX_LEN
    };
    let counted = name.strip_prefix(REGISTRY_PREFIX).unwrap_or(name);
    validate_scope_name("project", name, counted, max)
}

/// Checks an entity (user or team) name with the same character rules as project names.
///
/// # Errors
/// [`Error::InvalidScopeName`].
pub fn validate_entity_name(name: &str) -> Result<()> {
    validate_scope_name("entity", name, name, NAME_MAX_LEN)
}

fn validate_scope_name(kind: &'static str, name: &str, counted: &str, max: usize) -> Result<()> {
    if name.is_empty() {
        return Err(scope_error(kind, name, "must not be empty"));
    }
    if counted.chars().count() > max {
        return Err(scope_error(kind, name, &format!("must be {max} characters or less")));
    }
    if name.contains(FORBIDDEN_SCOPE_CHARS) {
        return Err(scope_error(kind, name, r"cannot contain characters: '/', '\', '#', '?', '%', ':', '\r', '\n'"));
    }
    if name == "." || name == ".." {
        return Err(scope_error(kind, name, "must not be '.' or '..'"));
    }
    Ok(())
}

fn scope_error(kind: &'static str, name: &str, reason: &str) -> Error {
    Error::InvalidScopeName { kind, name: name.to_owned(), reason: reason.to_owned() }
}

/// An artifact address: `[[entity/]project/]name[:alias_or_version]` (the SDK's `ArtifactPath`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactAddress {
    /// The entity, when given.
    pub entity: Option<String>,
    /// The project, when given.
    pub project: Option<String>,
    /// The collection name.
    pub name: String,
    /// The alias or `vN` version, when given.
    pub alias: Option<String>,
}

impl ArtifactAddress {
    /// Parses an address: the alias is split off at the first `:`, then the rest splits on `/` into one, two
    /// or three parts. Each part is validated.
    ///
    /// ```
    /// let a = artifact_core::ArtifactAddress::parse("ent/proj/my-ds:v3").unwrap();
    /// assert_eq!((a.entity.as_deref(), a.project.as_deref(), a.name.as_str(), a.alias.as_deref()),
    ///            (Some("ent"), Some("proj"), "my-ds", Some("v3")));
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArtifactAddress`] for more than three parts or an empty alias, and the validation errors
    /// of the parts.
    pub fn parse(address: &str) -> Result<Self> {
        let invalid =
            |reason: &str| Error::InvalidArtifactAddress { path: address.to_owned(), reason: reason.to_owned() };
        let (path, alias) = match address.split_once(':') {
            Some((path, alias)) => (path, Some(alias)),
            None => (address, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (entity, project, name) = match parts.as_slice() {
            [name] => (None, None, *name),
            [project, name] => (None, Some(*project), *name),
            [entity, project, name] => (Some(*entity), Some(*project), *name),
            _ => return Err(invalid("expected [[entity/]project/]name[:alias]")),
        };
        if let Some(entity) = entity {
            validate_entity_name(entity)?;
        }
        if let Some(project) = project {
            validate_project_name(project)?;
        }
        validate_artifact_name(name)?;
        if let Some(alias) = alias {
            if alias.is_empty() {
                return Err(invalid("the alias after ':' is empty"));
            }
            if alias.contains('/') || alias.contains(':') {
                return Err(Error::InvalidAlias {
                    alias: alias.to_owned(),
                    reason: "Aliases must not contain any of the following characters: '/', ':'".to_owned(),
                });
            }
        }
        Ok(ArtifactAddress {
            entity: entity.map(str::to_owned),
            project: project.map(str::to_owned),
            name: name.to_owned(),
            alias: alias.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names() {
        assert!(validate_artifact_name("mnist-raw").is_ok());
        let err = validate_artifact_name("bad name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Artifact name may only contain alphanumeric characters, dashes, underscores, and dots. Invalid name: 'bad name'"
        );
        assert!(validate_artifact_name("").is_err());
        assert!(validate_artifact_name("é").is_err());
        for dots in [".", ".."] {
            let err = validate_artifact_name(dots).unwrap_err();
            assert!(err.to_string().contains(&format!("'{dots}' is not allowed")), "{err}");
        }
        assert!(validate_artifact_name("...").is_ok() && validate_artifact_name(".hidden").is_ok());
        let long = "a".repeat(129);
        let err = validate_artifact_name(&long).unwrap_err();
        assert_eq!(err.to_string(), format!("Artifact name is longer than 128 characters: '{} ...'", "a".repeat(128)));
        assert!(validate_artifact_name(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn artifact_types() {
        for ok in ["dataset", "model", "raw data", "my-type.v2", "_x", "run_table", "code"] {
            assert!(validate_artifact_type(ok, "cats").is_ok(), "{ok}");
        }
        let err = validate_artifact_type("wandb-history", "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Artifact type 'wandb-history' is reserved for internal use. Please use a different type."
        );
        assert!(validate_artifact_type("job", "anything").is_err());
        assert!(validate_artifact_type("run_table", "run-abc").is_err());
        assert!(validate_artifact_type("code", "source-main.py").is_err());
        assert!(validate_artifact_type("a/b", "x").unwrap_err().to_string().contains("'/', ':'"));
        assert!(validate_artifact_type("a:b", "x").is_err());
        assert!(validate_artifact_type(&"t".repeat(129), "x").unwrap_err().to_string().contains("128"));
        for bad in ["", " lead", "trail ", ".dot", "semi;colon"] {
            assert!(validate_artifact_type(bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn aliases() {
        assert!(validate_alias("best").is_ok());
        assert!(validate_alias("latest").is_ok());
        assert!(validate_alias("v1.0").is_ok());
        let err = validate_alias("a:b").unwrap_err();
        assert!(err.to_string().contains("'a:b'") && err.to_string().contains("'/', ':'"), "{err}");
        assert!(validate_alias("a/b").is_err());
        assert!(validate_alias("").is_err());
        assert!(validate_alias("v3").is_err());
        assert!(validate_alias(&"x".repeat(129)).is_err());
        assert!(is_version_alias("v0") && is_version_alias("v12") && !is_version_alias("v") && !is_version_alias("vx"));
    }

    #[test]
    fn tags() {
        for good in ["best", "best model", "a-b_c", "two  spaces", "é 数据", "v1"] {
            assert!(validate_tag(good).is_ok(), "{good:?}");
        }
        for bad in ["", " lead", "trail ", "a,b", "a.b", "a\tb", "x:y", "a/b"] {
            let err = validate_tag(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}").replace('"', "'")), "{err}");
        }
        assert!(validate_tag(&"x".repeat(128)).is_ok());
        assert!(validate_tag(&"x".repeat(129)).is_err());
    }

    #[test]
    fn project_and_entity_names() {
        assert!(validate_project_name("artifacts-example").is_ok());
        assert!(validate_project_name("wandb-registry-models").is_ok());
        assert!(validate_project_name("wandb-registry-").is_err());
        assert!(validate_project_name("").is_err());
        assert!(validate_project_name("a?b").unwrap_err().to_string().contains("'a?b'"));
        assert!(validate_project_name("..").is_err());
        assert!(validate_project_name(&"p".repeat(129)).is_err());
        assert!(validate_project_name(&format!("wandb-registry-{}", "r".repeat(114))).is_err());
        assert!(validate_entity_name("team_a").is_ok());
        assert!(validate_entity_name("a/b").is_err());
    }

    #[test]
    fn addresses() {
        let a = ArtifactAddress::parse("my-ds").unwrap();
        assert_eq!((a.entity, a.project, a.name.as_str(), a.alias), (None, None, "my-ds", None));
        let a = ArtifactAddress::parse("proj/my-ds:latest").unwrap();
        assert_eq!((a.project.as_deref(), a.alias.as_deref()), (Some("proj"), Some("latest")));
        assert!(ArtifactAddress::parse("a/b/c/d").is_err());
        assert!(ArtifactAddress::parse("my-ds:").is_err());
        assert!(ArtifactAddress::parse("bad name:v0").is_err());
    }
}
