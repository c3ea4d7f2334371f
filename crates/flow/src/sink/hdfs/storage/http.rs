//! The HTTP client shared by the S3 and WebHDFS stores.
//!
//! One `reqwest` client per process (connection pool shared by every sink), rustls with
//! the `webpki-roots` certificates, and no automatic redirects: WebHDFS's two-step
//! create/append must see the NameNode's `307 Location` itself, and S3 never redirects a
//! correctly addressed request.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

/// The process-wide client.
pub(crate) fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("static HTTP client settings")
    })
}

/// A transport error (connection refused, timeout, …) as an `io::Error`.
pub(crate) fn transport(what: &str, e: reqwest::Error) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, format!("{what}: {e}"))
}

/// An unexpected HTTP answer: 404 becomes `NotFound`, the body (first 300 bytes) is kept
/// because S3 and WebHDFS explain themselves there.
pub(crate) async fn status_error(what: &str, resp: reqwest::Response) -> io::Error {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    let kind = match status.as_u16() {
        404 => io::ErrorKind::NotFound,
        409 => io::ErrorKind::AlreadyExists,
        403 | 401 => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{what}: HTTP {status}: {}", body.trim()))
}

/// Percent-encodes everything except RFC 3986's unreserved characters (and `/` when
/// `keep_slash`), as SigV4 and WebHDFS paths need.
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uri_encoding() {
        assert_eq!(super::uri_encode("a b/ü~.", true), "a%20b/%C3%BC~.");
        assert_eq!(super::uri_encode("a/b=c", false), "a%2Fb%3Dc");
    }
}
