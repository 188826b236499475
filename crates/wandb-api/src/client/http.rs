//! The transport: one connection pool, credentials only for the base URL, and the SDK's retry policy.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// How requests are retried (`wandb-core`'s policy, spec §6.1).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (20).
    pub max_attempts: u32,
    /// The first wait (2 s); it doubles per attempt, with up to 25 % jitter.
    pub min_wait: Duration,
    /// The longest wait (60 s).
    pub max_wait: Duration,
    /// Each attempt's timeout for GraphQL (30 s); transfers have none, as in `wandb-core`.
    pub attempt_timeout: Duration,
    /// Give up once this much time has passed since the first attempt, whatever `max_attempts` says.
    pub deadline: Option<Duration>,
    /// Give up on a server the attempts cannot connect to (refused, unknown name, TLS to a plain-HTTP port) once
    /// they have failed to for this long in a row (30 s), from the first attempt or from a server that went away
    /// mid-exchange: such a server is down or misnamed, and waiting out `deadline` would only hide it.
    pub connect_deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 20,
            min_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30),
            deadline: Some(Duration::from_secs(30 * 60)),
            connect_deadline: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: `min(max, min * 2^attempt * (1 + 0.25 * rand))`.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2f64.powi(attempt.min(30) as i32) * (1.0 + 0.25 * fastrand::f64());
        self.min_wait.mul_f64(factor).min(self.max_wait)
    }
}

/// Statuses the SDK never retries (`RetryMostFailures`).
pub(crate) fn is_final_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 401 | 403 | 404 | 409 | 410 | 413 | 422 | 501)
}

/// A `Retry-After` header: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate_to_system_time(value)?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// RFC 1123 dates (`Sun, 06 Nov 1994 08:49:37 GMT`), the form `Retry-After` uses.
fn httpdate_to_system_time(value: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else { return None };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The URL without its query string, for messages (presigned URLs carry credentials there).
pub(crate) fn redact(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// The HTTP side of a [`super::WandbClient`].
#[derive(Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    authorization: Option<HeaderValue>,
    api_key: Option<String>,
    extra_headers: HeaderMap,
    pub(crate) retry: RetryPolicy,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Transport").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// The shortest time between two announcements that one request is being retried.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);

/// What one attempt produced: a response to hand back, or a reason to try again.
enum Attempt {
    Done(reqwest::Response),
    Retry { reason: String, wait: Option<Duration> },
}

impl Transport {
    pub(crate) fn new(
        base_url: &str,
        api_key: Option<&str>,
        extra_headers: HeaderMap,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Http { url: base_url.to_owned(), reason: e.to_string() })?;
        let authorization =
            match api_key {
                Some(key) => {
                    let mut value = HeaderValue::from_str(&format!("Basic {}", B64.encode(format!("api:{key}"))))
                        .map_err(|_| Error::Http {
                            url: base_url.to_owned(),
                            reason: "the API key holds characters that cannot go in a header".to_owned(),
                        })?;
                    value.set_sensitive(true);
                    Some(value)
                }
                None => None,
            };
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(Transport { http, base_url, authorization, api_key: api_key.map(str::to_owned), extra_headers, retry })
    }

    pub(crate) fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// Credentials go only to URLs under the base URL (`httplayers.LimitTo`); presigned URLs get none.
    fn is_under_base(&self, url: &str) -> bool {
        url == self.base_url || url.starts_with(&format!("{}/", self.base_url))
    }

    fn headers_for(&self, url: &str) -> HeaderMap {
        let mut headers = self.extra_headers.clone();
        headers.insert(reqwest::header::USER_AGENT, HeaderValue::from_static("wandb-core"));
        if self.is_under_base(url) {
            headers.insert(HeaderName::from_static("x-wandb-username"), HeaderValue::from_static(""));
            headers.insert(HeaderName::from_static("x-wandb-user-email"), HeaderValue::from_static(""));
            if let Some(auth) = &self.authorization {
                headers.insert(reqwest::header::AUTHORIZATION, auth.clone());
            }
        }
        headers
    }

    /// Sends a request built by `build` (called once per attempt) with the retry policy, until a response
    /// that is a success, or a final status, or until attempts or the deadline run out.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        timeout: Option<Duration>,
        build: impl Fn(reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder>,
    ) -> Result<reqwest::Response> {
        let started = Instant::now();
        let mut attempt = 0u32;
        // Since when every attempt failed to connect; while that lasts, `connect_deadline` bounds the tries.
        let mut unreachable_since: Option<Instant> = None;
        let mut announced: Option<Instant> = None;
        loop {
            let mut request = self.http.request(method.clone(), url).headers(self.headers_for(url));
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            let attempted_at = Instant::now();
            let sent = build(request)?.send().await;
            if sent.as_ref().is_err_and(reqwest::Error::is_connect) {
                unreachable_since.get_or_insert(attempted_at);
            } else {
                unreachable_since = None;
            }
            let outcome = match sent {
                Ok(response) if response.status().is_success() => Attempt::Done(response),
                Ok(response) if is_final_status(response.status()) => {
                    return Err(status_error(&method, url, response).await);
                }
                Ok(response) => {
                    let wait = retry_after(response.headers());
                    let status = response.status();
                    let body = body_excerpt(response).await;
                    Attempt::Retry { reason: format!("{status}: {body}"), wait }
                }
                Err(e) => Attempt::Retry { reason: transport_reason(&e), wait: None },
            };
            let (reason, wait) = match outcome {
                Attempt::Done(response) => return Ok(response),
                Attempt::Retry { reason, wait } => (reason, wait),
            };
            attempt += 1;
            let wait = wait.unwrap_or_else(|| self.retry.backoff(attempt - 1));
            let elapsed = started.elapsed();
            let connect_deadline = self.retry.connect_deadline.min(self.retry.deadline.unwrap_or(Duration::MAX));
            if unreachable_since.is_some_and(|since| since.elapsed() + wait > connect_deadline) {
                return Err(Error::Unreachable {
                    url: redact(url),
                    reason,
                    attempts: attempt,
                    seconds: elapsed.as_secs_f64(),
                });
            }
            let out_of_time = self.retry.deadline.is_some_and(|d| elapsed + wait > d);
            if attempt >= self.retry.max_attempts || out_of_time {
                return Err(Error::Http {
                    url: redact(url),
                    reason: format!("{reason} (gave up after {attempt} attempts in {elapsed:.1?})"),
                });
            }
            // Said on stderr (the CLI shows warnings), at most every few seconds per request.
            if announced.is_none_or(|at| at.elapsed() >= ANNOUNCE_EVERY) {
                announced = Some(Instant::now());
                tracing::warn!(
                    "retrying {method} {}: {reason}; attempt {} of {}, next in {:.0} s",
                    redact(url),
                    attempt + 1,
                    self.retry.max_attempts,
                    wait.as_secs_f64().ceil()
                );
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// A GraphQL operation: `errors` in a 200 answer are failures, as in the SDK.
    pub(crate) async fn graphql(&self, operation: &str, query: &str, variables: Value) -> Result<Value> {
        let url = format!("{}/graphql", self.base_url);
        let body = serde_json::to_vec(&json!({"query": query, "variables": variables, "operationName": operation}))
            .expect("GraphQL requests serialise");
        let response = self
            .send(Method::POST, &url, Some(self.retry.attempt_timeout), |r| {
                Ok(r.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone()))
            })
            .await?;
        let bytes =
            response.bytes().await.map_err(|e| Error::Http { url: url.clone(), reason: transport_reason(&e) })?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            operation: operation.to_owned(),
            reason: format!("the answer is not JSON: {e}"),
        })?;
        if let Some(errors) = answer.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()) {
            let message = errors
                .iter()
                .map(|e| e.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_owned())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Graphql { operation: operation.to_owned(), message });
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }
}

pub(crate) async fn status_error(method: &Method, url: &str, response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    Error::HttpStatus { method: method.to_string(), url: redact(url), status, body: body_excerpt(response).await }
}

async fn body_excerpt(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A transport error's reason, without the URL (reported separately, redacted).
pub(crate) fn transport_reason(error: &reqwest::Error) -> String {
    let mut reason = error.without_url_ref().to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match self.url() {
            Some(url) => text.replace(url.as_str(), &redact(url.as_str())),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let policy = RetryPolicy::default();
        for attempt in 0..8 {
            let wait = policy.backoff(attempt);
            let base = Duration::from_secs(2).mul_f64(2f64.powi(attempt as i32));
            assert!(wait >= base.min(policy.max_wait), "{attempt}: {wait:?}");
            assert!(wait <= base.mul_f64(1.25).min(policy.max_wait), "{attempt}: {wait:?}");
        }
        assert_eq!(policy.backoff(20), Duration::from_secs(60));
    }

    #[test]
    fn final_statuses() {
        for code in [400, 401, 403, 404, 409, 410, 413, 422, 501] {
            assert!(is_final_status(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(!is_final_status(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        assert_eq!(
            httpdate_to_system_time("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
    }

    #[test]
    fn query_strings_are_redacted() {
        assert_eq!(redact("https://s3/x/y?X-Amz-Signature=secret"), "https://s3/x/y");
    }
}
