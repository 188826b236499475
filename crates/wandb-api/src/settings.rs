//! Where artifacts go: the backend (from the base URL), entity, project and download root.

use std::path::PathBuf;

use artifact_core::{DEFAULT_PROJECT, validate_entity_name, validate_project_name};

use crate::error::{Error, Result};
use crate::store::EmbeddedStore;

/// The entity used with the embedded store when none is configured.
pub const DEFAULT_ENTITY: &str = "local";

/// The backend a base URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseUrl {
    /// `file:///path`: the embedded store in that directory.
    Embedded(PathBuf),
    /// `http(s)://…`: a W&B server.
    Server(String),
}

impl BaseUrl {
    /// Parses `file://<path>` (absolute, or relative to the working directory) or `http(s)://…`.
    ///
    /// ```
    /// use wandb_api::BaseUrl;
    /// assert_eq!(BaseUrl::parse("file:///srv/store")?, BaseUrl::Embedded("/srv/store".into()));
    /// assert!(matches!(BaseUrl::parse("https://api.wandb.ai")?, BaseUrl::Server(_)));
    /// assert!(BaseUrl::parse("ftp://x").is_err());
    /// # Ok::<(), wandb_api::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`].
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidBaseUrl { url: url.to_owned(), reason: reason.to_owned() };
        if let Some(path) = url.strip_prefix("file://") {
            // `file://localhost/x` is the same as `file:///x`.
            let path = path.strip_prefix("localhost/").map(|p| format!("/{p}")).unwrap_or_else(|| path.to_owned());
            if path.is_empty() {
                return Err(invalid("file:// needs a directory, e.g. file:///home/me/wandb-store"));
            }
            return Ok(BaseUrl::Embedded(PathBuf::from(path)));
        }
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(BaseUrl::Server(url.trim_end_matches('/').to_owned()));
        }
        Err(invalid("expected file:///path/to/store or http(s)://host"))
    }

    /// The base URL as a string (`file://` URLs are rebuilt from the path).
    pub fn to_url(&self) -> String {
        match self {
            BaseUrl::Embedded(path) => format!("file://{}", path.display()),
            BaseUrl::Server(url) => url.clone(),
        }
    }
}

/// The default embedded-store directory: `$XDG_DATA_HOME/dagster-wandb/store` or
/// `~/.local/share/dagster-wandb/store` on Linux, `~/Library/Application Support/dagster-wandb/store` on
/// macOS, `%LOCALAPPDATA%\dagster-wandb\store` on Windows.
///
/// # Errors
/// [`Error::NoStoreLocation`] when no home directory is known.
pub fn default_store_dir() -> Result<PathBuf> {
    platform_data_dir().map(|d| d.join("dagster-wandb").join("store")).ok_or(Error::NoStoreLocation)
}

#[cfg(target_os = "macos")]
fn platform_data_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"))
}

#[cfg(windows)]
fn platform_data_dir() -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA").map(PathBuf::from)
}

#[cfg(not(any(target_os = "macos", windows)))]
fn platform_data_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}

/// Backend, entity and project, as the W&B SDK reads them from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The backend.
    pub base_url: BaseUrl,
    /// The entity (user or team).
    pub entity: String,
    /// The project.
    pub project: String,
}

impl Settings {
    /// Reads `WANDB_BASE_URL` (default: the embedded store in [`default_store_dir`]), `WANDB_ENTITY` (default
    /// [`DEFAULT_ENTITY`]) and `WANDB_PROJECT` (default `uncategorized`, as the SDK).
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`], [`Error::NoStoreLocation`], and invalid entity or project names.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let base_url = match var("WANDB_BASE_URL") {
            Some(url) => BaseUrl::parse(&url)?,
            None => BaseUrl::Embedded(default_store_dir()?),
        };
        let settings = Settings {
            base_url,
            entity: var("WANDB_ENTITY").unwrap_or_else(|| DEFAULT_ENTITY.to_owned()),
            project: var("WANDB_PROJECT").unwrap_or_else(|| DEFAULT_PROJECT.to_owned()),
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the entity and project names.
    ///
    /// # Errors
    /// [`Error::Core`] with the name validation error.
    pub fn validate(&self) -> Result<()> {
        validate_entity_name(&self.entity)?;
        validate_project_name(&self.project)?;
        Ok(())
    }

    /// Opens the embedded store the base URL names.
    ///
    /// # Errors
    /// [`Error::ServerBackendUnsupported`] for a server URL; the store's own opening errors.
    pub fn open_store(&self) -> Result<EmbeddedStore> {
        match &self.base_url {
            BaseUrl::Embedded(path) => EmbeddedStore::open(path),
            BaseUrl::Server(url) => Err(Error::ServerBackendUnsupported { url: url.clone() }),
        }
    }
}

/// The SDK's default download root for `name:vN`: `$WANDB_ARTIFACT_DIR` (or `./artifacts`), made absolute,
/// joined with `name:vN` (`name-vN` on Windows, where `:` is not allowed in file names).
///
/// # Errors
/// [`Error::Io`] when the working directory cannot be read.
pub fn default_download_root(name: &str, version: &str) -> Result<PathBuf> {
    let base = std::env::var_os("WANDB_ARTIFACT_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("artifacts"), PathBuf::from);
    let base = std::path::absolute(&base).map_err(|e| Error::io("resolve", &base, e))?;
    let separator = if cfg!(windows) { '-' } else { ':' };
    Ok(base.join(format!("{name}{separator}{version}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(BaseUrl::parse("file://localhost/srv/s").unwrap(), BaseUrl::Embedded("/srv/s".into()));
        assert_eq!(BaseUrl::parse("file://./rel").unwrap(), BaseUrl::Embedded("./rel".into()));
        assert_eq!(BaseUrl::parse("HTTPS://api.wandb.ai/").unwrap(), BaseUrl::Server("HTTPS://api.wandb.ai".into()));
        assert!(BaseUrl::parse("file://").is_err());
        let err = BaseUrl::parse("/plain/path").unwrap_err();
        assert!(err.to_string().contains("/plain/path"), "{err}");
        assert_eq!(BaseUrl::Embedded("/a b".into()).to_url(), "file:///a b");
    }

    #[test]
    fn server_urls_are_refused_clearly() {
        let settings = Settings {
            base_url: BaseUrl::Server("https://api.wandb.ai".into()),
            entity: "e".into(),
            project: "p".into(),
        };
        let err = settings.open_store().unwrap_err();
        assert!(err.to_string().contains("https://api.wandb.ai"), "{err}");
    }
}
