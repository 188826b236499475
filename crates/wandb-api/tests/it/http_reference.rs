//! `http(s)://` references against a real HTTP server on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use artifact_core::{Artifact, ReferenceOptions};
use wandb_api::HttpReferenceResolver;

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
