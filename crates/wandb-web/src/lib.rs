//! A web view of an embedded W&B store: HTML pages at the W&B App's URL shapes, so the `wandb_artifact_url` and
//! `wandb_run_url` a Dagster materialization carries open a page.
//!
//! ```text
//! /                                                        entities
//! /<entity>                                                its projects
//! /<entity>/<project>                                      artifact types and collections, runs
//! /<entity>/<project>/artifacts/<type>/<name>              the versions of a collection
//! /<entity>/<project>/artifacts/<type>/<name>/<version>[/overview|/metadata|/files|/lineage|/usage]
//! /<entity>/<project>/runs/<run id>                        state, config, summary, artifacts, charts, console
//! ```
//!
//! [`page`] answers one GET; the caller (`dagster-wandb server`, `dagster-wandb ui`) serves it and says
//! who is looking ([`Access`], or a [`Viewer`] for [`page_for`]) and how a file's body is downloaded
//! ([`FileLinks`]). Pages are drawn server-side,
//! the lineage graph and the charts as SVG: nothing is loaded from elsewhere and no script runs. Every name and
//! value is escaped.
//!
//! # Example
//!
//! ```
//! use wandb_web::{Access, NoDownloads, page};
//!
//! let dir = tempfile::tempdir()?;
//! let store = wandb_store::EmbeddedStore::open(dir.path())?;
//! let home = page(&store, &NoDownloads, "/", "", &Access::Everything);
//! assert_eq!(home.status, 200);
//! assert!(String::from_utf8(home.body)?.contains("<h1>Entities</h1>"));
//! assert_eq!(page(&store, &NoDownloads, "/nobody/nothing", "", &Access::Everything).status, 404);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod chart;
mod html;
mod lineage;
mod pages;
mod table;

use std::collections::BTreeSet;

use artifact_core::ManifestEntry;
use wandb_store::EmbeddedStore;

pub use html::escape;

/// The entities a viewer may see.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// All of them (an open server, `dagster-wandb ui`, an admin).
    Everything,
    /// Only these.
    Entities(BTreeSet<String>),
}

impl Access {
    /// Whether `entity` may be shown.
    pub fn allows(&self, entity: &str) -> bool {
        match self {
            Access::Everything => true,
            Access::Entities(entities) => entities.contains(entity),
        }
    }
}

/// Who is looking at a page.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Viewer {
    /// What they may see.
    pub access: Access,
    /// Whether they signed in to a server with users: pages then carry a sign-out control (a form posting to
    /// `/logout`).
    pub signed_in: bool,
}

impl Viewer {
    /// A viewer who did not sign in (an open server, `dagster-wandb ui`).
    pub fn anonymous(access: Access) -> Self {
        Viewer { access, signed_in: false }
    }

    /// A viewer with a session on a server with users.
    pub fn signed_in(access: Access) -> Self {
        Viewer { access, signed_in: true }
    }
}

/// How a page links a file's body for download.
pub trait FileLinks: Send + Sync {
    /// The URL of `entry`'s body (of artifact `artifact_id`), or `None` when it cannot be downloaded from here.
    fn download_url(&self, artifact_id: &str, path: &str, entry: &ManifestEntry) -> Option<String>;
}

/// No downloads: files are listed, not linked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDownloads;

impl FileLinks for NoDownloads {
    fn download_url(&self, _: &str, _: &str, _: &ManifestEntry) -> Option<String> {
        None
    }
}

/// An answer: status, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// The HTTP status.
    pub status: u16,
    /// `text/html; charset=utf-8`.
    pub content_type: &'static str,
    /// The HTML.
    pub body: Vec<u8>,
}

impl Page {
    pub(crate) fn html(status: u16, body: String) -> Self {
        Page { status, content_type: "text/html; charset=utf-8", body: body.into_bytes() }
    }
}

/// The page at `path` (percent-encoded, as in the request line) with `query` (without `?`) of `store`, as
/// `access` may see it, file bodies linked through `links`: 404 for what does not exist or may not be shown (the
/// two look alike), 400 for a malformed path.
pub fn page(store: &EmbeddedStore, links: &dyn FileLinks, path: &str, query: &str, access: &Access) -> Page {
    pages::render(store, links, path, query, &Viewer::anonymous(access.clone()))
}

/// [`page`] for `viewer`: the same pages, with a sign-out control when the viewer signed in.
pub fn page_for(store: &EmbeddedStore, links: &dyn FileLinks, path: &str, query: &str, viewer: &Viewer) -> Page {
    pages::render(store, links, path, query, viewer)
}

/// File types browsers and crawlers ask a site for on their own (`/favicon.ico`, `/robots.txt`, …): a path
/// ending in one is not a page, though an entity or project could be named so.
const NOT_PAGES: [&str; 12] =
    [".ico", ".png", ".svg", ".txt", ".xml", ".json", ".js", ".css", ".map", ".webmanifest", ".php", ".html"];

/// Whether `path` has the shape of a page (so a server can tell its own routes from these): `/`, an entity, a
/// project, or a path under a project's `artifacts` or `runs`, each of them a valid name; a path of one or two
/// segments ending in a file type browsers ask for by themselves, or starting with a dot (`/.well-known/…`), is
/// not. The answer depends on the path alone, never on what the store holds.
///
/// ```
/// assert!(wandb_web::is_page_path("/team/proj/artifacts/model/m/v0/files"));
/// assert!(wandb_web::is_page_path("/team/proj/runs/abc"));
/// assert!(wandb_web::is_page_path("/team/proj"));
/// assert!(!wandb_web::is_page_path("/team/proj/other/x"));
/// assert!(!wandb_web::is_page_path("/favicon.ico"));
/// assert!(!wandb_web::is_page_path("/.well-known/security.txt"));
/// ```
pub fn is_page_path(path: &str) -> bool {
    let Some(segments) = html::split_path(path) else { return false };
    if segments.first().is_some_and(|s| s.starts_with('.')) {
        return false;
    }
    let valid = match segments.as_slice() {
        [] => true,
        [entity] => artifact_core::validate_entity_name(entity).is_ok(),
        [entity, project, ..] => wandb_store::ProjectRef::new(entity, project).is_ok(),
    };
    let static_file = segments.len() <= 2
        && segments.last().is_some_and(|s| NOT_PAGES.iter().any(|ext| s.to_ascii_lowercase().ends_with(ext)));
    valid
        && !static_file
        && match segments.len() {
            0..=2 => true,
            _ => matches!(segments[2].as_str(), "artifacts" | "runs"),
        }
}

/// The sign-in page of a server with users: an API-key form posting to `/login`, back to `next` afterwards;
/// `message` says why it is shown again (a wrong key).
pub fn login_page(next: &str, message: Option<&str>) -> Page {
    let message = message.map(|m| format!("<p class=\"error\">{}</p>", escape(m))).unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{message}<form class=\"login\" method=\"post\" action=\"/login\"><label>API key\
         <input type=\"password\" name=\"api_key\" autocomplete=\"current-password\" autofocus></label>\
         <input type=\"hidden\" name=\"next\" value=\"{}\"><button type=\"submit\">Sign in</button></form>",
        escape(next)
    );
    Page::html(if message.is_empty() { 200 } else { 401 }, html::frame("Sign in", &[], &body, false))
}

/// The value of `key` in a query string or a form body (`a=1&b=x+y`), decoded.
///
/// ```
/// assert_eq!(wandb_web::query_value("next=%2Fteam&api_key=a+b", "api_key").as_deref(), Some("a b"));
/// ```
pub fn query_value(query: &str, key: &str) -> Option<String> {
    html::query_value(query, key)
}
