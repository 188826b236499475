//! Storage URLs signed as presigned S3 URLs are: `?X-Wandb-Expires=<unix seconds>&X-Wandb-Signature=<hex>`, the
//! signature a keyed BLAKE3 MAC over the method, the decoded path and the expiry. Whoever holds a URL may do that
//! one thing until it expires, and nothing else; a forged, altered or expired one is refused before its body is
//! read, with S3's `AccessDenied` answer (clients ask for fresh URLs on a 403).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How long a download URL works.
pub(crate) const DOWNLOAD_TTL: Duration = Duration::from_secs(3600);
/// How long an upload URL works; the upload must also still be pending (a committed artifact takes no more).
pub(crate) const UPLOAD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const EXPIRES: &str = "X-Wandb-Expires";
const SIGNATURE: &str = "X-Wandb-Signature";

/// The key storage URLs are signed with.
#[derive(Clone)]
pub(crate) struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    /// The store's key (`<store>/server/url-signing.key`, created at first start, readable by its owner only),
    /// or `key` when one is given.
    pub(crate) fn load_or_create(store_root: &Path, key: Option<[u8; 32]>) -> std::io::Result<Self> {
        if let Some(key) = key {
            return Ok(UrlSigner { key });
        }
        let path = store_root.join("server").join("url-signing.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = hex_decode(text.trim()).filter(|b| b.len() == 32).ok_or_else(|| {
                std::io::Error::other(format!("{} is not 64 hex digits; remove it to make a new key", path.display()))
            })?;
            let mut key = [0; 32];
            key.copy_from_slice(&bytes);
            return Ok(UrlSigner { key });
        }
        let mut key = [0; 32];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(format!("no randomness for a key: {e}")))?;
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        write_private(&tmp, artifact_core::to_hex(&key).as_bytes())?;
        // Another process may have made one meanwhile: keep whichever landed first.
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {
                let _ = std::fs::remove_file(&tmp);
                Ok(UrlSigner { key })
            }
            Err(_) => {
                let _ = std::fs::remove_file(&tmp);
                Self::load_or_create(store_root, None)
            }
        }
    }

    /// `path` (as it appears in the URL) with the query that lets `method` use it for `ttl`.
    pub(crate) fn sign(&self, method: &Method, path: &str, ttl: Duration) -> String {
        let expires = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + ttl;
        let expires = expires.as_secs();
        let signature = self.mac(method, &decode(path), expires);
        format!("{path}?{EXPIRES}={expires}&{SIGNATURE}={signature}")
    }

    /// Checks the signature in `query` for `method` on `path` (as received, percent-encoded): `Err` says why it is
    /// refused (answered with [`access_denied`]).
    pub(crate) fn verify(&self, method: &Method, path: &str, query: Option<&str>) -> Result<(), &'static str> {
        let mut expires = None;
        let mut signature = None;
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some((EXPIRES, v)) => expires = v.parse::<u64>().ok(),
                Some((SIGNATURE, v)) => signature = Some(v),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err("this storage URL is not signed; ask the API for one");
        };
        // HEAD is a GET without the body.
        let method = if method == Method::HEAD { &Method::GET } else { method };
        let expected = self.mac(method, &decode(path), expires);
        if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err("the signature does not match this URL");
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if now > expires {
            return Err("Request has expired");
        }
        Ok(())
    }

    fn mac(&self, method: &Method, path: &str, expires: u64) -> String {
        let message = format!("{method}\n{path}\n{expires}");
        blake3::keyed_hash(&self.key, message.as_bytes()).to_hex().to_string()
    }
}

/// S3's refusal, which clients answer by asking for fresh URLs.
pub(crate) fn access_denied(message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
    );
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// The percent-decoded path: clients re-escape names differently (the Go client), so the MAC is over the path
/// as it is meant, not as it is spelled.
fn decode(path: &str) -> String {
    percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::UrlSigner;

    #[test]
    fn a_signed_url_works_for_its_method_and_path_only() {
        let signer = UrlSigner { key: [7; 32] };
        let signed = signer.sign(&Method::GET, "/storage/objects/md5/ab%20cd", super::DOWNLOAD_TTL);
        let (path, query) = signed.split_once('?').unwrap();
        assert!(signer.verify(&Method::GET, path, Some(query)).is_ok());
        assert!(signer.verify(&Method::HEAD, "/storage/objects/md5/ab cd", Some(query)).is_ok(), "decoded alike");
        assert!(signer.verify(&Method::PUT, path, Some(query)).is_err(), "another method");
        assert!(signer.verify(&Method::GET, "/storage/objects/md5/ab", Some(query)).is_err(), "another path");
        assert!(signer.verify(&Method::GET, path, None).is_err(), "unsigned");
        let later = query.replace("X-Wandb-Expires=", "X-Wandb-Expires=9");
        assert!(signer.verify(&Method::GET, path, Some(&later)).is_err(), "expiry moved");
        let other = UrlSigner { key: [8; 32] };
        assert!(other.verify(&Method::GET, path, Some(query)).is_err(), "another key");
        let expired = signer.sign(&Method::GET, path, std::time::Duration::ZERO);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (path, query) = expired.split_once('?').unwrap();
        assert!(signer.verify(&Method::GET, path, Some(query)).is_err(), "expired");
    }
}
