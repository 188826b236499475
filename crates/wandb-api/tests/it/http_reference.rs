//! `http(s)://` references against a real HTTP server on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use artifact_core::{Artifact, ReferenceOptions};
use wandb_references::HttpReferenceResolver;

/// Serves `responses` (status line and headers) to successive connections and returns the base URL.
fn serve(responses: Vec<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for response in responses {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    url
}

#[test]
fn etag_and_length_become_digest_and_size() {
    let body = "0123456789";
    let base = serve(vec![
        format!(
            "HTTP/1.1 200 OK\r\nETag: \"abc123\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    ]);
    let resolver = HttpReferenceResolver::new().unwrap();
    let mut a = Artifact::new("web", "dataset").unwrap();
    a.add_reference_with(&format!("{base}/data/file.csv"), ReferenceOptions::default(), Some(&resolver)).unwrap();
    let entry = a.manifest().get("file.csv").unwrap();
    assert_eq!(entry.digest, "abc123");
    assert_eq!(entry.extra["etag"], "\"abc123\"");
    assert_eq!(entry.size, Some(10));

    let url = format!("{base}/plain.bin");
    let opts = ReferenceOptions { name: Some("named/plain.bin".into()), ..Default::default() };
    a.add_reference_with(&url, opts, Some(&resolver)).unwrap();
    assert_eq!(a.manifest().get("named/plain.bin").unwrap().digest, url, "no ETag: the URL is the digest");

    let err = a
        .add_reference_with(
            &format!("{base}/gone.bin?X-Amz-Signature=secret"),
            ReferenceOptions::default(),
            Some(&resolver),
        )
        .unwrap_err();
    let message = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(message.contains("404"), "{message}");
    assert!(!message.contains("secret"), "query strings are not echoed: {message}");
}

/// Downloading `http(s)://` references: the body comes down and into the SDK's `obj/etag/…` cache, a second
/// download is served from that cache without a request, and an object whose ETag changed (or that is gone) is
/// refused without writing anything.
#[test]
fn downloads_check_the_etag_and_use_the_etag_cache() {
    let body = "0123456789";
    let ok = |etag: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nETag: \"{etag}\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let gone = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned();
    // add_reference, the first download, then (fresh caches) a changed ETag and a deleted object.
    let base = serve(vec![ok("v1"), ok("v1"), ok("v2"), gone]);
    let resolver = std::sync::Arc::new(HttpReferenceResolver::new().unwrap());
    let url = format!("{base}/data/file.csv");
    let mut a = Artifact::new("web", "dataset").unwrap();
    a.add_reference_with(&url, ReferenceOptions::default(), Some(resolver.as_ref())).unwrap();

    let f = crate::support::Fixture::new();
    let options = |cache: &str| wandb_api::DownloadOptions {
        cache: Some(io_cache::ContentCache::new(f.path(cache))),
        references: Some(resolver.clone()),
        ..Default::default()
    };
    let report = wandb_api::download(&f.backend, a.manifest(), &f.path("one"), &options("cache")).unwrap();
    assert_eq!(report.references, 1);
    assert_eq!(std::fs::read_to_string(f.path("one/file.csv")).unwrap(), body);
    let cached = io_cache::ContentCache::new(f.path("cache")).etag_path(&url, "v1");
    assert_eq!(std::fs::read_to_string(cached).unwrap(), body);
    // The scripted server has no response left for this one: it must come from the cache.
    let report = wandb_api::download(&f.backend, a.manifest(), &f.path("two"), &options("cache")).unwrap();
    assert_eq!(report.from_cache, 1);

    let err = wandb_api::download(&f.backend, a.manifest(), &f.path("three"), &options("cache-2")).unwrap_err();
    assert!(
        matches!(&err, wandb_api::Error::Reference(wandb_references::Error::ReferenceChanged { expected, found, .. }) if expected == "v1" && found == "v2"),
        "{err}"
    );
    assert!(!f.path("three/file.csv").exists());
    let err = wandb_api::download(&f.backend, a.manifest(), &f.path("four"), &options("cache-3")).unwrap_err();
    assert!(matches!(err, wandb_api::Error::Reference(wandb_references::Error::ReferenceMissing { .. })), "{err}");
}
