//! HTTP(S) GET, the check for an agency's web services: its portal, mail web access, the
//! one-stop-shop system.
//!
//! Two reqwest clients (rustls, trusting the operating system's root store) are built once: one
//! verifies certificates, one accepts any certificate for internal servers with self-signed ones.
//! Neither keeps idle connections, so every check opens a fresh connection and its round-trip
//! time (time to the response headers, after at most 5 redirects) includes the TCP and TLS
//! handshakes a user would wait for. For HTTPS the leaf certificate's expiry date is read with
//! `cert.rs`. The caller's timeout bounds the whole check, body included.

use std::error::Error as StdError;
use std::io;
use std::time::Instant;

use reqwest::redirect::Policy;
use reqwest::tls::TlsInfo;
use reqwest::Client;
use rustls::CertificateError;

use super::{cert, io_error_text, HttpCheck, Outcome};

/// The most redirects followed.
const MAX_REDIRECTS: usize = 5;

/// The most body bytes searched for [`HttpCheck::body_contains`].
const MAX_BODY_BYTES: usize = 1 << 20;

/// The most characters of the expected text quoted in an error.
const MAX_QUOTED_CHARS: usize = 60;

/// The User-Agent of every check.
const USER_AGENT: &str = concat!("cntt-agent/", env!("CARGO_PKG_VERSION"));

/// The HTTP clients of a prober, or why one could not be built.
#[derive(Debug, Clone)]
pub(super) struct Clients {
    /// Verifies certificates against the system's root store.
    verify: Result<Client, String>,
    /// Accepts any certificate.
    accept_any: Result<Client, String>,
}

impl Clients {
    /// Builds both clients; a failure is kept and reported by every check that needs the client.
    pub(super) fn new() -> Clients {
        Clients {
            verify: build(true),
            accept_any: build(false),
        }
    }
}

/// Builds a client that verifies certificates or not.
fn build(verify: bool) -> Result<Client, String> {
    Client::builder()
        .user_agent(USER_AGENT)
        .redirect(Policy::limited(MAX_REDIRECTS))
        .pool_max_idle_per_host(0)
        .tls_info(true)
        .danger_accept_invalid_certs(!verify)
        .build()
        .map_err(|err| format!("cannot build http client: {}", chain_text(&err)))
}

/// Gets `check.url` once and judges the response.
pub(super) async fn get(clients: &Clients, check: &HttpCheck) -> Outcome {
    let client = match (check.tls_verify, &clients.verify, &clients.accept_any) {
        (true, Ok(client), _) | (false, _, Ok(client)) => client,
        (true, Err(err), _) | (false, _, Err(err)) => return Outcome::down(err.clone()),
    };
    let start = Instant::now();
    let mut response = match client.get(&check.url).send().await {
        Ok(response) => response,
        Err(err) => return Outcome::down(describe(&err)),
    };
    let rtt = start.elapsed();
    let status = response.status().as_u16();
    let cert_not_after = response
        .extensions()
        .get::<TlsInfo>()
        .and_then(TlsInfo::peer_certificate)
        .and_then(cert::not_after);
    let status_ok = match check.expect_status.as_slice() {
        [] => (200..=399).contains(&status),
        expected => expected.contains(&status),
    };
    let error = if !status_ok {
        Some(format!("unexpected status {status}"))
    } else if let Some(needle) = &check.body_contains {
        match read_body(&mut response).await {
            Ok(body) if contains(&body, needle.as_bytes()) => None,
            Ok(_) => Some(format!("body does not contain \"{}\"", quote(needle))),
            Err(err) => Some(format!("cannot read body: {}", describe(&err))),
        }
    } else {
        None
    };
    Outcome {
        ok: error.is_none(),
        rtt: Some(rtt),
        error,
        http_status: Some(status),
        cert_not_after,
    }
}

/// Reads at most [`MAX_BODY_BYTES`] of the body.
async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await? {
            Some(chunk) => {
                let room = MAX_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(body)
}

/// Whether `haystack` contains `needle`; an empty needle is always found.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// `text`, cut to [`MAX_QUOTED_CHARS`] characters for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A short lowercase phrase for a failed request.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    if err.is_redirect() {
        return format!("more than {MAX_REDIRECTS} redirects");
    }
    if err.is_builder() {
        return "invalid url".to_owned();
    }
    // The outermost I/O error, used when nothing more telling is found inside it.
    let mut outer_io: Option<&io::Error> = None;
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return tls_text(tls);
        }
        if current.to_string().starts_with("dns error") {
            return "cannot resolve host".to_owned();
        }
        source = match current.downcast_ref::<io::Error>() {
            Some(io_err) => {
                outer_io = outer_io.or(Some(io_err));
                // An `io::Error` wrapping another error skips it in `source`, so step into it.
                io_err
                    .get_ref()
                    .map(|inner| inner as &(dyn StdError + 'static))
            }
            None => current.source(),
        };
    }
    match outer_io {
        Some(io_err) => io_error_text(io_err),
        None => chain_text(err),
    }
}

/// A short phrase for a TLS failure, naming the usual certificate problems plainly.
fn tls_text(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => "certificate not trusted: unknown issuer".to_owned(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate not valid for this host name".to_owned()
            }
            CertificateError::Revoked => "certificate revoked".to_owned(),
            other => format!("invalid certificate: {other}").to_lowercase(),
        },
        other => format!("tls error: {other}").to_lowercase(),
    }
}

/// The messages of `err` and its sources, joined with `: `, lowercase.
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_search() {
        let check = |haystack: &str, needle: &str, expected: bool| {
            assert_eq!(
                contains(haystack.as_bytes(), needle.as_bytes()),
                expected,
                "{needle:?} in {haystack:?}"
            );
        };
        check("Cổng thông tin điện tử", "thông tin", true);
        check("Cổng thông tin điện tử", "thong tin", false);
        check("abc", "", true);
        check("", "a", false);
        check("ab", "abc", false);
    }

    #[test]
    fn quoting_cuts_long_text_on_a_character_boundary() {
        assert_eq!(quote("hoạt động"), "hoạt động");
        let long = "ệ".repeat(100);
        assert_eq!(quote(&long), format!("{}…", "ệ".repeat(MAX_QUOTED_CHARS)));
    }
}
