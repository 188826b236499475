//! Where artifacts go and who we are: the one place the `WANDB_*` environment is read.

use std::path::PathBuf;

use artifact_core::{DEFAULT_PROJECT, validate_entity_name, validate_project_name};
use wandb_store::{DEFAULT_ENTITY, ProjectRef};

use crate::error::{Error, Result};

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

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_url())
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

/// Backend, credentials, entity, project and cache, as the W&B SDK reads them from the environment.
///
/// [`Settings::from_env`] is the only place this workspace reads `WANDB_BASE_URL`, `WANDB_API_KEY`,
/// `WANDB_ENTITY`, `WANDB_PROJECT`, `WANDB_CACHE_DIR`, `WANDB_X_EXTRA_HTTP_HEADERS`,
/// `DAGSTER_WANDB_DOWNLOAD_CONCURRENCY`, `DAGSTER_WANDB_RETRY_DEADLINE` and `DAGSTER_WANDB_MAX_MANIFEST_BYTES`;
/// everything else takes
/// a `Settings`. One rule for all of them: an empty variable counts as unset.
///
/// ```
/// use wandb_api::{BaseUrl, Settings};
/// let settings = Settings::embedded("/srv/wandb-store").with_entity("team").with_project("mnist");
/// assert_eq!(settings.base_url, BaseUrl::Embedded("/srv/wandb-store".into()));
/// assert_eq!(settings.project_ref()?.to_string(), "team/mnist");
/// # Ok::<(), wandb_api::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The backend: without `WANDB_BASE_URL`, the embedded store in [`default_store_dir`].
    pub base_url: BaseUrl,
    /// The API key a server is sent (never logged or shown in `Debug`).
    pub api_key: Option<String>,
    /// The entity (user or team); [`DEFAULT_ENTITY`] unless configured.
    pub entity: String,
    /// The project; `uncategorized` unless configured, as in the SDK.
    pub project: String,
    /// The W&B content cache directory (`WANDB_CACHE_DIR`, else the platform's, as the SDK); `None` when
    /// neither is known, and downloads then go uncached.
    pub cache_dir: Option<PathBuf>,
    /// Headers added to every request to a server (`WANDB_X_EXTRA_HTTP_HEADERS`, a JSON object).
    pub extra_headers: Vec<(String, String)>,
    /// Requests in flight at once when a download fetches many files from a server
    /// (`DAGSTER_WANDB_DOWNLOAD_CONCURRENCY`; [`crate::DEFAULT_DOWNLOAD_CONCURRENCY`] when unset).
    pub download_concurrency: Option<usize>,
    /// How long a request to a server may be retried in all (`DAGSTER_WANDB_RETRY_DEADLINE`: `90`, `90s`,
    /// `15m`, `1h`); the SDK's 30 minutes when unset. A server no attempt could connect to is given up on after
    /// 30 s, or this when shorter.
    pub retry_deadline: Option<std::time::Duration>,
    /// The largest manifest a download from a server reads, in bytes (`DAGSTER_WANDB_MAX_MANIFEST_BYTES`; 1 GiB,
    /// `ClientOptions::max_manifest_bytes`, when unset): a bigger one is refused before it is read whole.
    pub max_manifest_bytes: Option<u64>,
    /// Whether connecting to an embedded store that does not exist creates it (the default). What only reads
    /// turns it off, so a mistyped path is an error naming it instead of a new, empty store.
    pub create_store: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("entity", &self.entity)
            .field("project", &self.project)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the environment (see the type's docs).
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`], [`Error::NoStoreLocation`], invalid entity or project names, and
    /// [`Error::InvalidBaseUrl`] for extra headers that are not a JSON object of strings.
    pub fn from_env() -> Result<Self> {
        Self::read_env(None)
    }

    /// Reads the environment but for the backend, which is `base_url` (a `--base-url` flag, a resource's
    /// `host`): `WANDB_BASE_URL` is not read, so it cannot make this fail.
    ///
    /// # Errors
    /// See [`Settings::from_env`].
    pub fn from_env_with_base_url(base_url: BaseUrl) -> Result<Self> {
        Self::read_env(Some(base_url))
    }

    fn read_env(base_url: Option<BaseUrl>) -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let base_url = match (base_url, var("WANDB_BASE_URL")) {
            (Some(given), _) => given,
            (None, Some(url)) => BaseUrl::parse(&url)?,
            (None, None) => BaseUrl::Embedded(default_store_dir()?),
        };
        let extra_headers = match var("WANDB_X_EXTRA_HTTP_HEADERS") {
            Some(json) => parse_extra_headers(&json)?,
            None => Vec::new(),
        };
        let download_concurrency = match var(DOWNLOAD_CONCURRENCY_VAR) {
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(Error::InvalidSetting {
                        name: DOWNLOAD_CONCURRENCY_VAR.to_owned(),
                        value: text,
                        reason: "a number of requests, 1 or more".to_owned(),
                    });
                }
            },
            None => None,
        };
        let retry_deadline = match var(RETRY_DEADLINE_VAR) {
            Some(text) => Some(parse_duration(&text).ok_or_else(|| Error::InvalidSetting {
                name: RETRY_DEADLINE_VAR.to_owned(),
                value: text.clone(),
                reason: "a duration: seconds, or a number with s, m or h (90, 90s, 15m, 1h)".to_owned(),
            })?),
            None => None,
        };
        let max_manifest_bytes = match var(MAX_MANIFEST_BYTES_VAR) {
            Some(text) => Some(text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| Error::InvalidSetting {
                name: MAX_MANIFEST_BYTES_VAR.to_owned(),
                value: text.clone(),
                reason: "a number of bytes, 1 or more".to_owned(),
            })?),
            None => None,
        };
        let settings = Settings {
            download_concurrency,
            retry_deadline,
            max_manifest_bytes,
            create_store: true,
            base_url,
            api_key: var("WANDB_API_KEY"),
            entity: var("WANDB_ENTITY").unwrap_or_else(|| DEFAULT_ENTITY.to_owned()),
            project: var("WANDB_PROJECT").unwrap_or_else(|| DEFAULT_PROJECT.to_owned()),
            cache_dir: io_cache::default_cache_root().ok(),
            extra_headers,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The embedded store in `dir`, with the default entity and project and the SDK's cache directory.
    pub fn embedded(dir: impl Into<PathBuf>) -> Self {
        Self::with_base_url(BaseUrl::Embedded(dir.into()))
    }

    /// The W&B server at `url` (`https://api.wandb.ai`, a W&B Server, `dagster-wandb server`), with `api_key`.
    pub fn server(url: &str, api_key: Option<String>) -> Self {
        let mut settings = Self::with_base_url(BaseUrl::Server(url.trim_end_matches('/').to_owned()));
        settings.api_key = api_key;
        settings
    }

    fn with_base_url(base_url: BaseUrl) -> Self {
        Settings {
            base_url,
            api_key: None,
            entity: DEFAULT_ENTITY.to_owned(),
            project: DEFAULT_PROJECT.to_owned(),
            cache_dir: io_cache::default_cache_root().ok(),
            extra_headers: Vec::new(),
            download_concurrency: None,
            retry_deadline: None,
            max_manifest_bytes: None,
            create_store: true,
        }
    }

    /// The same settings for entity `entity`.
    pub fn with_entity(mut self, entity: &str) -> Self {
        entity.clone_into(&mut self.entity);
        self
    }

    /// The same settings for project `project`.
    pub fn with_project(mut self, project: &str) -> Self {
        project.clone_into(&mut self.project);
        self
    }

    /// The same settings with the content cache in `dir` (`None`: downloads go uncached).
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The same settings with `requests` in flight at once for downloads from a server (at least 1).
    pub fn with_download_concurrency(mut self, requests: usize) -> Self {
        self.download_concurrency = Some(requests.max(1));
        self
    }

    /// The same settings with requests to a server retried for at most `deadline` in all.
    pub fn with_retry_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.retry_deadline = Some(deadline);
        self
    }

    /// The same settings, creating a missing embedded store on connecting or not ([`Settings::create_store`]).
    pub fn with_create_store(mut self, create: bool) -> Self {
        self.create_store = create;
        self
    }

    /// The same settings with `api_key`.
    pub fn with_api_key(mut self, api_key: Option<String>) -> Self {
        self.api_key = api_key;
        self
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

    /// The configured entity and project.
    ///
    /// # Errors
    /// Invalid names.
    pub fn project_ref(&self) -> Result<ProjectRef> {
        Ok(ProjectRef::new(&self.entity, &self.project)?)
    }

    /// The content cache, when its directory is known.
    pub fn cache(&self) -> Option<io_cache::ContentCache> {
        self.cache_dir.as_ref().map(io_cache::ContentCache::new)
    }
}

/// Requests in flight at once when a download fetches many files from a server. Each small file costs a request,
/// whose time is mostly waiting, so this is far above the core count; the bodies in flight stay small (only files
/// under 1 MiB are fetched this way).
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 64;

/// The variable that sets [`Settings::max_manifest_bytes`].
const MAX_MANIFEST_BYTES_VAR: &str = "DAGSTER_WANDB_MAX_MANIFEST_BYTES";

/// The variable that sets [`Settings::retry_deadline`].
const RETRY_DEADLINE_VAR: &str = "DAGSTER_WANDB_RETRY_DEADLINE";

/// A duration as the retry deadline takes it: whole seconds, or a number followed by `s`, `m` or `h`; `None`
/// for anything else (zero included).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(wandb_api::parse_duration("90"), Some(Duration::from_secs(90)));
/// assert_eq!(wandb_api::parse_duration("15m"), Some(Duration::from_secs(900)));
/// assert_eq!(wandb_api::parse_duration("1.5h"), Some(Duration::from_secs(5400)));
/// assert_eq!(wandb_api::parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let seconds: f64 = number.trim().parse().ok()?;
    let scale = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let seconds = seconds * scale;
    (seconds.is_finite() && seconds > 0.0).then(|| std::time::Duration::from_secs_f64(seconds))
}

/// The variable that sets [`Settings::download_concurrency`].
const DOWNLOAD_CONCURRENCY_VAR: &str = "DAGSTER_WANDB_DOWNLOAD_CONCURRENCY";

/// `WANDB_X_EXTRA_HTTP_HEADERS`: a JSON object of header names and values.
fn parse_extra_headers(json: &str) -> Result<Vec<(String, String)>> {
    let invalid = |reason: String| Error::InvalidBaseUrl { url: "WANDB_X_EXTRA_HTTP_HEADERS".to_owned(), reason };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| invalid(format!("not a JSON object of headers: {e}")))?;
    Ok(map
        .into_iter()
        .map(|(name, value)| (name, value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        .collect())
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
    fn extra_headers_are_a_json_object() {
        let headers = parse_extra_headers(r#"{"X-A": "1", "X-B": 2}"#).unwrap();
        assert_eq!(headers, [("X-A".to_owned(), "1".to_owned()), ("X-B".to_owned(), "2".to_owned())]);
        let err = parse_extra_headers("[1]").unwrap_err();
        assert!(err.to_string().contains("WANDB_X_EXTRA_HTTP_HEADERS"), "{err}");
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let settings = Settings::server("https://api.wandb.ai", Some("secret-key".into()));
        assert!(!format!("{settings:?}").contains("secret-key"));
    }
}
