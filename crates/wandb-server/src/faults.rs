//! Fault injection: tests make the server fail the next matching requests, to prove clients recover.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Which requests a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultTarget {
    /// GraphQL requests; with a name, only that operation (`CreateArtifactFiles`).
    GraphQl(Option<String>),
    /// File and manifest uploads (`PUT` on storage URLs), multipart parts included.
    Upload,
    /// File and manifest downloads (`GET` on storage URLs).
    Download,
    /// File downloads only (not manifests), ranged requests included.
    FileDownload,
}

/// What the server does instead of answering.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers with this status and a short body (e.g. 500, 502, 503).
    Status(u16),
    /// Answers 429 with `Retry-After: <seconds>`.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_seconds: u64,
    },
    /// Answers 403 as an expired presigned URL does (S3's `AccessDenied` body).
    Forbidden,
    /// Sends the headers and half of the body, then drops the connection. For uploads the body is read first.
    CutBody,
    /// Answers 200 with these bytes in place of the body (a hostile or broken server).
    ReplaceBody(Vec<u8>),
}

/// The faults waiting to happen, shared by the server and the test that injects them; also a latency added to
/// file downloads, and how many of them were in flight at most (what a client's concurrency looks like).
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<Mutex<Vec<Injected>>>, Arc<DownloadWatch>);

#[derive(Debug, Default)]
struct DownloadWatch {
    latency_ms: AtomicU64,
    upload_latency_ms: AtomicU64,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    answered: AtomicUsize,
}

/// One file download being answered (see [`Faults::file_download`]).
pub(crate) struct InFlight(Arc<DownloadWatch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Injected {
    target: FaultTarget,
    fault: Fault,
    remaining: u32,
}

impl Faults {
    /// Makes the next `times` requests matching `target` fail with `fault`.
    pub fn inject(&self, target: FaultTarget, fault: Fault, times: u32) {
        self.0.lock().expect("faults lock").push(Injected { target, fault, remaining: times });
    }

    /// Delays every file download by `latency` from now on, as a distant object store would (`ZERO` to stop).
    pub fn set_download_latency(&self, latency: std::time::Duration) {
        self.1.latency_ms.store(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Delays every upload (files, parts, manifests) by `latency` from now on, as a distant object store would
    /// (`ZERO` to stop).
    pub fn set_upload_latency(&self, latency: std::time::Duration) {
        self.1.upload_latency_ms.store(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Waits out the upload latency set.
    pub(crate) async fn upload(&self) {
        let latency = self.1.upload_latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        }
    }

    /// The most file downloads answered at once so far.
    pub fn peak_downloads_in_flight(&self) -> usize {
        self.1.peak.load(Ordering::SeqCst)
    }

    /// How many file downloads were answered (or are being answered) so far.
    pub fn downloads_answered(&self) -> usize {
        self.1.answered.load(Ordering::SeqCst)
    }

    /// Counts a file download in flight until the guard drops, after the latency set.
    pub(crate) async fn file_download(&self) -> InFlight {
        self.1.answered.fetch_add(1, Ordering::SeqCst);
        let now = self.1.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.1.peak.fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(self.1.clone());
        let latency = self.1.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        }
        guard
    }

    /// How many injected failures have not happened yet.
    pub fn pending(&self) -> u32 {
        self.0.lock().expect("faults lock").iter().map(|f| f.remaining).sum()
    }

    /// The fault for this request, if one is due (and counts it as happened).
    pub(crate) fn take(&self, kind: &FaultTarget) -> Option<Fault> {
        let mut faults = self.0.lock().expect("faults lock");
        let position = faults.iter().position(|f| {
            f.remaining > 0
                && match (&f.target, kind) {
                    (FaultTarget::GraphQl(None), FaultTarget::GraphQl(_)) => true,
                    (FaultTarget::GraphQl(Some(want)), FaultTarget::GraphQl(Some(op))) => want == op,
                    (FaultTarget::Download, FaultTarget::FileDownload) => true,
                    (a, b) => a == b,
                }
        })?;
        let injected = &mut faults[position];
        injected.remaining -= 1;
        let fault = injected.fault.clone();
        faults.retain(|f| f.remaining > 0);
        Some(fault)
    }
}

/// The response a fault produces; `body` is what would have been sent (used by [`Fault::CutBody`]).
pub(crate) fn respond(fault: &Fault, body: Bytes) -> Response {
    match fault {
        Fault::Status(status) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("injected fault: {status}")).into_response()
        }
        Fault::TooManyRequests { retry_after_seconds } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_seconds.to_string())],
            "injected fault: slow down",
        )
            .into_response(),
        Fault::Forbidden => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml")],
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        )
            .into_response(),
        Fault::CutBody => {
            let full = body.len().max(2);
            let half = body.slice(..body.len() / 2);
            let chunks: Vec<std::result::Result<Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("injected fault: connection cut"))];
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_LENGTH, full)
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .expect("a valid response")
        }
        Fault::ReplaceBody(bytes) => (StatusCode::OK, bytes.clone()).into_response(),
    }
}
