//! The web view (`wandb_web`) on the server: pages at the W&B App's URL shapes, a sign-in form for servers with
//! users, sessions in an `HttpOnly`, `SameSite=Strict` cookie, and file downloads through signed storage URLs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;

use crate::ServerState;
use crate::auth::Caller;

/// The session cookie's name.
const COOKIE: &str = "dw_session";
/// How long a session lasts after sign-in.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions at once; signing in beyond it drops the oldest first.
const MAX_SESSIONS: usize = 10_000;
/// Sign-in form bodies above this are refused unread.
const MAX_FORM_BYTES: usize = 16 << 10;

/// Signed-in browsers, by session token.
#[derive(Debug, Default)]
pub(crate) struct Sessions(DashMap<String, (Caller, Instant)>);

impl Sessions {
    fn caller(&self, token: &str) -> Option<Caller> {
        let entry = self.0.get(token)?;
        if entry.1.elapsed() > SESSION_TTL {
            drop(entry);
            self.0.remove(token);
            return None;
        }
        Some(entry.0.clone())
    }

    /// A new session for `caller`, its token 256 bits of the OS's randomness; `None` without randomness.
    fn open(&self, caller: Caller) -> Option<String> {
        self.0.retain(|_, (_, at)| at.elapsed() <= SESSION_TTL);
        while self.0.len() >= MAX_SESSIONS {
            let oldest = self.0.iter().min_by_key(|e| e.value().1).map(|e| e.key().clone());
            match oldest {
                Some(token) => self.0.remove(&token),
                None => break,
            };
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.0.insert(token.clone(), (caller, Instant::now()));
        Some(token)
    }

    fn close(&self, token: &str) {
        self.0.remove(token);
    }
}

/// Downloads linked as the SDK gets them: signed storage URLs that expire.
struct SignedLinks<'a>(&'a ServerState);

impl wandb_web::FileLinks for SignedLinks<'_> {
    fn download_url(&self, _artifact_id: &str, _path: &str, entry: &artifact_core::ManifestEntry) -> Option<String> {
        let present = self.0.store.object_path_if_present(&entry.digest, entry.digest_algorithm()).unwrap_or(false);
        present.then(|| crate::graphql::object_url(self.0, entry))
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE).then(|| value.to_owned())
    })
}

/// Who is looking: anyone, who may see everything, on a server without users; else their session's user, who
/// may see their entities and sign out.
fn viewer(state: &ServerState, headers: &HeaderMap) -> Option<wandb_web::Viewer> {
    if state.users.is_none() {
        return Some(wandb_web::Viewer::anonymous(wandb_web::Access::Everything));
    }
    let caller = state.sessions.caller(&session_token(headers)?)?;
    Some(wandb_web::Viewer::signed_in(caller.access()))
}

/// GET of a page path; anything else the server does not route is a 404 (`/favicon.ico` too: whether a path is a
/// page depends on its shape alone, so the 404 says nothing about what the store holds).
pub(crate) async fn fallback(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if !matches!(*request.method(), Method::GET | Method::HEAD) || !wandb_web::is_page_path(&path) {
        return crate::not_found(request).await;
    }
    let Some(viewer) = viewer(&state, request.headers()) else {
        let target = request.uri().path_and_query().map_or_else(|| path.clone(), |p| p.as_str().to_owned());
        return redirect(&format!("/login?next={}", percent(&target)), None);
    };
    let query = request.uri().query().unwrap_or_default().to_owned();
    let page = tokio::task::spawn_blocking(move || {
        wandb_web::page_for(&state.store, &SignedLinks(&state), &path, &query, &viewer)
    })
    .await;
    match page {
        Ok(page) => html(page),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("the page failed: {e}")).into_response(),
    }
}

fn html(page: wandb_web::Page) -> Response {
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, page.content_type),
            // Nothing runs and nothing loads from elsewhere: say so to the browser too.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page.body,
    )
        .into_response()
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response();
    if let Some(cookie) = cookie
        && let Ok(value) = header::HeaderValue::from_str(&cookie)
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Only a path on this server: never another origin (`//evil`, `https://…`).
fn safe_next(next: Option<String>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => next,
        _ => "/".to_owned(),
    }
}

/// The sign-in form.
pub(crate) async fn login_form(request: Request) -> Response {
    let next = safe_next(request.uri().query().and_then(|q| wandb_web::query_value(q, "next")));
    html(wandb_web::login_page(&next, None))
}

/// A sign-in: the API key of a user opens a session; a wrong key shows the form again (401).
pub(crate) async fn login(State(state): State<Arc<ServerState>>, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > MAX_FORM_BYTES {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the sign-in form is too large").into_response();
    }
    let form = String::from_utf8_lossy(&body);
    let next = safe_next(wandb_web::query_value(&form, "next"));
    let Some(users) = &state.users else { return redirect(&next, None) };
    let caller = wandb_web::query_value(&form, "api_key").and_then(|key| users.authenticate(key.trim()));
    let Some(caller) = caller else {
        return html(wandb_web::login_page(&next, Some("That API key is not one of this server's.")));
    };
    let Some(token) = state.sessions.open(caller) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness for a session").into_response();
    };
    let secure = if state.base_url.starts_with("https://") || forwarded_https(&headers) { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL.as_secs());
    redirect(&next, Some(cookie))
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

/// Signs out: the session ends, the cookie is cleared.
pub(crate) async fn logout(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        state.sessions.close(&token);
    }
    redirect("/login", Some(format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")))
}

impl Caller {
    /// The entities this caller may see in the web view.
    pub(crate) fn access(&self) -> wandb_web::Access {
        match self.entities() {
            None => wandb_web::Access::Everything,
            Some(entities) => wandb_web::Access::Entities(entities.iter().cloned().collect::<BTreeSet<_>>()),
        }
    }
}
