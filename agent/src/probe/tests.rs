//! Probes against real listeners on 127.0.0.1: TCP listeners, a small HTTP(S) server and a DNS
//! responder, each started and stopped inside its test. Parsers have their own tests beside them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cntt_common::wire::{CheckKind, ProbeResult, TargetKind};
use rcgen::{CertificateParams, KeyPair};
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::*;

/// The timeout of checks expected to pass or fail quickly.
const QUICK: Duration = Duration::from_secs(5);
/// The timeout of checks expected to time out.
const SHORT: Duration = Duration::from_millis(500);
/// How far past its timeout a check may return.
const SLACK: Duration = Duration::from_secs(1);

/// What a check should give.
#[derive(Debug, Clone)]
enum Expected {
    /// Passed, with a round-trip time.
    Up,
    /// Failed with an error containing this text.
    Down(&'static str),
}

/// Runs `check` with `timeout`, asserts it returned in time and as `expected`, and hands back the
/// outcome for more assertions.
async fn check(prober: &Prober, check: Check, timeout: Duration, expected: Expected) -> Outcome {
    let start = Instant::now();
    let outcome = prober.probe(&check, timeout).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed <= timeout + SLACK,
        "{check:?} took {elapsed:?}, timeout {timeout:?}"
    );
    match expected {
        Expected::Up => {
            assert!(outcome.ok, "{check:?} should pass: {outcome:?}");
            assert_eq!(outcome.error, None, "{check:?}");
            assert!(outcome.rtt.is_some(), "{check:?} has a round-trip time");
        }
        Expected::Down(text) => {
            assert!(!outcome.ok, "{check:?} should fail: {outcome:?}");
            let error = outcome.error.as_deref().unwrap_or_default();
            assert!(
                error.contains(text),
                "{check:?}: error {error:?} should contain {text:?}"
            );
            assert_eq!(error, error.trim(), "{check:?}");
        }
    }
    outcome
}

/// A background task that stops when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------- TCP

fn tcp(address: impl Into<String>) -> Check {
    Check::Tcp {
        address: address.into(),
    }
}

/// A loopback port nobody listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn tcp_open_and_closed_ports() {
    let prober = Prober::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    check(&prober, tcp(open.to_string()), QUICK, Expected::Up).await;
    check(
        &prober,
        tcp(format!("localhost:{}", open.port())),
        QUICK,
        Expected::Up,
    )
    .await;
    check(
        &prober,
        tcp(closed_port().await.to_string()),
        QUICK,
        Expected::Down("connection refused"),
    )
    .await;
    check(
        &prober,
        tcp("127.0.0.1"),
        QUICK,
        Expected::Down("invalid address, expected host:port"),
    )
    .await;
    check(
        &prober,
        tcp("127.0.0.1:http"),
        QUICK,
        Expected::Down("invalid address"),
    )
    .await;
}

#[tokio::test]
async fn tcp_times_out_on_a_listener_with_a_full_backlog() {
    // Linux drops SYNs to a listener whose accept queue is full, so connecting hangs as it does
    // behind a firewall that drops packets. A backlog of 0 queues one connection; fill it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let address = socket.local_addr().unwrap().as_socket().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(err)) => panic!("filling the backlog: {err}"),
            Err(_elapsed) => break,
        }
    }
    assert!(queued.len() < 8, "the backlog never filled");
    check(
        &Prober::new(),
        tcp(address.to_string()),
        SHORT,
        Expected::Down("timed out after 500ms"),
    )
    .await;
}

// ---------------------------------------------------------------- HTTP

/// The body of `/ok`.
const PORTAL_BODY: &str = "Cổng thông tin điện tử tỉnh Đắk Nông: hệ thống hoạt động bình thường";

/// When the test certificate expires.
const CERT_NOT_AFTER: OffsetDateTime = datetime!(2031-05-17 10:20:30 UTC);

/// Answers one HTTP/1.1 request: `/ok`, `/error` (500), `/redirect` (to `/ok`), `/loop`
/// (redirects to itself), `/big` (the expected text after 1 MiB) and `/hang` (never answers).
async fn serve_http(mut stream: impl AsyncRead + AsyncWrite + Unpin) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n_bytes) => request.extend_from_slice(&buffer[..n_bytes]),
        }
    }
    let request = String::from_utf8_lossy(&request);
    let path = request.split(' ').nth(1).unwrap_or("/");
    let (status, location, body) = match path {
        "/ok" => ("200 OK", None, PORTAL_BODY.as_bytes().to_vec()),
        "/error" => ("500 Internal Server Error", None, b"loi".to_vec()),
        "/redirect" => ("302 Found", Some("/ok"), Vec::new()),
        "/loop" => ("302 Found", Some("/loop"), Vec::new()),
        "/big" => {
            let mut body = vec![b'x'; 1 << 20];
            body.extend_from_slice(PORTAL_BODY.as_bytes());
            ("200 OK", None, body)
        }
        "/hang" => return std::future::pending().await,
        _ => ("404 Not Found", None, Vec::new()),
    };
    let location = location
        .map(|to| format!("Location: {to}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         {location}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// Starts an HTTP server on 127.0.0.1, HTTPS when `tls` is set; returns its base URL.
async fn spawn_http(tls: Option<TlsAcceptor>) -> (String, Task) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_http(stream).await;
                        }
                    }
                    None => serve_http(stream).await,
                }
            });
        }
    });
    (format!("{scheme}://{address}"), Task(task))
}

/// A TLS acceptor with a self-signed certificate for localhost expiring at [`CERT_NOT_AFTER`].
fn self_signed_acceptor() -> TlsAcceptor {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.not_after = CERT_NOT_AFTER;
    let key = KeyPair::generate().unwrap();
    let certificate = params.self_signed(&key).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certificate.der().clone()], key.into())
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn http(
    url: String,
    expect_status: &[u16],
    body_contains: Option<&str>,
    tls_verify: bool,
) -> Check {
    Check::Http(HttpCheck {
        url,
        expect_status: expect_status.to_vec(),
        body_contains: body_contains.map(str::to_owned),
        tls_verify,
    })
}

/// Path, expected statuses, expected body text, then the status and outcome it should give.
type HttpCase = (
    &'static str,
    &'static [u16],
    Option<&'static str>,
    Option<u16>,
    Expected,
);

#[tokio::test]
async fn http_status_and_body() {
    let prober = Prober::new();
    let (base, _server) = spawn_http(None).await;
    let cases: &[HttpCase] = &[
        ("/ok", &[], None, Some(200), Expected::Up),
        ("/ok", &[200], None, Some(200), Expected::Up),
        (
            "/ok",
            &[204, 301],
            None,
            Some(200),
            Expected::Down("unexpected status 200"),
        ),
        (
            "/error",
            &[],
            None,
            Some(500),
            Expected::Down("unexpected status 500"),
        ),
        ("/error", &[500], None, Some(500), Expected::Up),
        (
            "/missing",
            &[],
            None,
            Some(404),
            Expected::Down("unexpected status 404"),
        ),
        (
            "/ok",
            &[],
            Some("hoạt động bình thường"),
            Some(200),
            Expected::Up,
        ),
        (
            "/ok",
            &[],
            Some("đang bảo trì"),
            Some(200),
            Expected::Down("body does not contain \"đang bảo trì\""),
        ),
        (
            "/error",
            &[],
            Some("loi"),
            Some(500),
            Expected::Down("unexpected status 500"),
        ),
        ("/redirect", &[], Some("hoạt động"), Some(200), Expected::Up),
        (
            "/loop",
            &[],
            None,
            None,
            Expected::Down("more than 5 redirects"),
        ),
        ("/big", &[], Some("x"), Some(200), Expected::Up),
        (
            "/big",
            &[],
            Some("hoạt động"),
            Some(200),
            Expected::Down("body does not contain"),
        ),
    ];
    for (path, expect_status, body_contains, status, expected) in cases {
        let url = format!("{base}{path}");
        let outcome = check(
            &prober,
            http(url, expect_status, *body_contains, true),
            QUICK,
            (*expected).clone(),
        )
        .await;
        assert_eq!(outcome.http_status, *status, "{path}");
        assert_eq!(outcome.cert_not_after, None, "{path} is plain HTTP");
    }
}

#[tokio::test]
async fn http_errors_and_timeouts() {
    let prober = Prober::new();
    let (base, _server) = spawn_http(None).await;
    let refused = format!("http://{}/", closed_port().await);
    check(
        &prober,
        http(refused, &[], None, true),
        QUICK,
        Expected::Down("connection refused"),
    )
    .await;
    check(
        &prober,
        http("not a url".into(), &[], None, true),
        QUICK,
        Expected::Down("invalid url"),
    )
    .await;
    let start = Instant::now();
    check(
        &prober,
        http(format!("{base}/hang"), &[], None, true),
        SHORT,
        Expected::Down("timed out after 500ms"),
    )
    .await;
    assert!(start.elapsed() >= SHORT, "it waited for the answer");
}

#[tokio::test]
async fn https_certificate_verification_and_expiry() {
    let prober = Prober::new();
    let (base, _server) = spawn_http(Some(self_signed_acceptor())).await;
    let url = format!("{base}/ok");
    let refused = check(
        &prober,
        http(url.clone(), &[], None, true),
        QUICK,
        Expected::Down("certificate not trusted: unknown issuer"),
    )
    .await;
    assert_eq!(refused.http_status, None);
    let accepted = check(
        &prober,
        http(url, &[], Some("hoạt động"), false),
        QUICK,
        Expected::Up,
    )
    .await;
    assert_eq!(accepted.http_status, Some(200));
    assert_eq!(accepted.cert_not_after, Some(CERT_NOT_AFTER));
    check(
        &prober,
        http(format!("{base}/error"), &[], None, false),
        QUICK,
        Expected::Down("unexpected status 500"),
    )
    .await;
}

// ---------------------------------------------------------------- DNS

/// The one name the test DNS responder knows.
const KNOWN_NAME: &str = "cong-thong-tin.daknong.gov.vn";

/// The test DNS responder's answer to `query`: an A record for [`KNOWN_NAME`], NOERROR without
/// records for `no-address.test`, SERVFAIL for `servfail.test`, NXDOMAIN for anything else.
/// Written apart from the probe's decoder so the two check each other.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    let (rcode, n_answers) = match name.as_str() {
        KNOWN_NAME => (0, 1),
        "no-address.test" => (0, 0),
        "servfail.test" => (2, 0),
        _ => (3, 0),
    };
    let mut response = query.get(..2)?.to_vec();
    response.extend_from_slice(&(0x8180u16 | rcode).to_be_bytes());
    response.extend_from_slice(&[0, 1, 0, n_answers, 0, 0, 0, 0]);
    response.extend_from_slice(question);
    if n_answers == 1 {
        // Name as a pointer to the question, type A, class IN, TTL 3600, 127.0.0.1.
        response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 127, 0, 0, 1]);
    }
    Some(response)
}

/// Starts the test DNS responder on 127.0.0.1. For `late.test` it first sends an answer to
/// another query id, which the probe must ignore, then NXDOMAIN.
async fn spawn_dns() -> (SocketAddr, Task) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buffer = [0u8; 512];
        while let Ok((n_bytes, from)) = socket.recv_from(&mut buffer).await {
            let query = &buffer[..n_bytes];
            if query.windows(6).any(|window| window == b"\x04late") {
                let mut stale = dns_answer(query).unwrap_or_default();
                stale[0] ^= 0xff;
                let _ = socket.send_to(&stale, from).await;
            }
            if let Some(response) = dns_answer(query) {
                let _ = socket.send_to(&response, from).await;
            }
        }
    });
    (address, Task(task))
}

fn dns(server: Option<String>, query: &str) -> Check {
    Check::Dns {
        server,
        query: query.to_owned(),
    }
}

#[tokio::test]
async fn dns_answers_from_a_server() {
    let prober = Prober::new();
    let (server, _responder) = spawn_dns().await;
    let with_port = Some(server.to_string());
    check(
        &prober,
        dns(with_port.clone(), KNOWN_NAME),
        QUICK,
        Expected::Up,
    )
    .await;
    check(
        &prober,
        dns(with_port.clone(), &format!("{KNOWN_NAME}.")),
        QUICK,
        Expected::Up,
    )
    .await;
    check(
        &prober,
        dns(with_port.clone(), "khong-ton-tai.daknong.gov.vn"),
        QUICK,
        Expected::Down("NXDOMAIN"),
    )
    .await;
    check(
        &prober,
        dns(with_port.clone(), "late.test"),
        QUICK,
        Expected::Down("NXDOMAIN"),
    )
    .await;
    check(
        &prober,
        dns(with_port.clone(), "servfail.test"),
        QUICK,
        Expected::Down("SERVFAIL"),
    )
    .await;
    check(
        &prober,
        dns(with_port.clone(), "no-address.test"),
        QUICK,
        Expected::Down("no answer"),
    )
    .await;
    check(
        &prober,
        dns(with_port, "bad..name"),
        QUICK,
        Expected::Down("invalid name"),
    )
    .await;
    check(
        &prober,
        dns(Some("ns.example".into()), KNOWN_NAME),
        QUICK,
        Expected::Down("invalid dns server address"),
    )
    .await;
}

#[tokio::test]
async fn dns_server_silent_or_absent() {
    let prober = Prober::new();
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent = Some(silent.local_addr().unwrap().to_string());
    check(
        &prober,
        dns(silent, KNOWN_NAME),
        SHORT,
        Expected::Down("timed out after 500ms"),
    )
    .await;
    let absent = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    check(
        &prober,
        dns(Some(absent.to_string()), KNOWN_NAME),
        QUICK,
        Expected::Down("connection refused"),
    )
    .await;
}

#[tokio::test]
async fn dns_system_resolver() {
    // Only names the hosts file answers: tests reach no outside DNS server.
    check(&Prober::new(), dns(None, "localhost"), QUICK, Expected::Up).await;
}

// ---------------------------------------------------------------- ICMP

fn icmp(host: &str) -> Check {
    Check::Icmp {
        host: host.to_owned(),
    }
}

#[tokio::test]
async fn icmp_echo_to_loopback() {
    let prober = Prober::new();
    match prober.icmp_mode() {
        IcmpMode::Unprivileged | IcmpMode::Raw | IcmpMode::System => {
            check(&prober, icmp("127.0.0.1"), QUICK, Expected::Up).await;
            check(&prober, icmp("localhost"), QUICK, Expected::Up).await;
        }
        IcmpMode::Unavailable { .. } => {
            let outcome = check(
                &prober,
                icmp("127.0.0.1"),
                QUICK,
                Expected::Down("ping_group_range"),
            )
            .await;
            let error = outcome.error.unwrap_or_default();
            assert!(error.contains("CAP_NET_RAW"), "{error}");
        }
    }
}

#[tokio::test]
async fn icmp_unavailable_says_how_to_enable_it() {
    let reason = icmp::unavailable_reason("permission denied");
    let prober = Prober::with_icmp_mode(IcmpMode::Unavailable { reason });
    let outcome = check(
        &prober,
        icmp("127.0.0.1"),
        QUICK,
        Expected::Down("icmp sockets unavailable (permission denied)"),
    )
    .await;
    let error = outcome.error.unwrap_or_default();
    if cfg!(target_os = "linux") {
        assert!(error.contains("net.ipv4.ping_group_range"), "{error}");
    }
    assert!(error.contains("CAP_NET_RAW"), "{error}");
}

// ---------------------------------------------------------------- Targets

#[test]
fn targets_become_probe_results() {
    let check = |check: Check, kind: CheckKind, address: &str| {
        let target = Target {
            name: "cong-thong-tin".into(),
            kind: TargetKind::Server,
            check,
            interval: Duration::from_secs(60),
            timeout: QUICK,
            gateway: false,
            system: None,
        };
        let outcome = Outcome {
            ok: false,
            rtt: Some(Duration::from_micros(12_500)),
            error: Some("unexpected status 503".into()),
            http_status: Some(503),
            cert_not_after: Some(CERT_NOT_AFTER),
        };
        let expected = ProbeResult {
            target: "cong-thong-tin".into(),
            target_kind: TargetKind::Server,
            check: kind,
            address: address.into(),
            ok: false,
            rtt_ms: Some(12.5),
            error: Some("unexpected status 503".into()),
            http_status: Some(503),
            cert_not_after: Some(CERT_NOT_AFTER),
        };
        assert_eq!(target.result(&outcome), expected);
    };
    check(icmp("10.0.0.1"), CheckKind::Icmp, "10.0.0.1");
    check(tcp("10.0.0.5:3389"), CheckKind::Tcp, "10.0.0.5:3389");
    check(
        http("https://daknong.gov.vn/".into(), &[], None, true),
        CheckKind::Http,
        "https://daknong.gov.vn/",
    );
    check(
        dns(None, "daknong.gov.vn"),
        CheckKind::Dns,
        "daknong.gov.vn",
    );
    check(
        dns(Some("10.0.0.2".into()), "daknong.gov.vn"),
        CheckKind::Dns,
        "daknong.gov.vn @10.0.0.2",
    );
}
