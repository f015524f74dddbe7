//! Issue 15: idle connections cannot fill the collector's memory. At most
//! `limits.keep_alive_connections` stay open between requests; a connection accepted beyond that
//! serves one request with `Connection: close` and is closed, and the client's next connection
//! resumes its TLS session (stateless tickets) instead of a full handshake.

use std::sync::Arc;
use std::time::Duration;

use cntt_collector::domain::auth::Role;
use e2e::{eventually, spawn_collector_with, sqlite_db, CollectorOptions, TestCollector};
use rustls::pki_types::ServerName;
use rustls::HandshakeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A TLS connection to the collector through `connector`.
async fn connect(
    collector: &TestCollector,
    connector: &TlsConnector,
) -> TlsStream<tokio::net::TcpStream> {
    let address = collector.base_url.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends `GET /healthz` and returns the answer's head (status line and headers, lower case).
async fn get_health(tls: &mut TlsStream<tokio::net::TcpStream>) -> String {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The head, then the body of Content-Length bytes, so the next request starts clean.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed before the answer was complete");
        answer.extend_from_slice(&buf[..n]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap());
        if answer.len() >= end + 4 + length {
            assert!(
                head.starts_with("http/1.1 200"),
                "healthz answers 200: {head}"
            );
            return head;
        }
    }
}

/// Whether the server closes `tls` within 5 s (end of stream or a reset).
async fn closed_by_server(tls: &mut TlsStream<tokio::net::TcpStream>) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_keep_alive_budget_serve_one_request_and_resume_their_tls_session() {
    let db = sqlite_db();
    let options = CollectorOptions {
        extra_config: "[limits]\nkeep_alive_connections = 1\n".into(),
        ..CollectorOptions::default()
    };
    let collector = spawn_collector_with(&db, &options).await;
    let connector = TlsConnector::from(Arc::new(e2e::tls_client_config(&collector.ca_pem)));

    // The first connection is within the budget: kept open, two requests on it.
    let mut kept = connect(&collector, &connector).await;
    assert_eq!(
        kept.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Full),
        "the first connection of this client has no session to resume"
    );
    let head = get_health(&mut kept).await;
    assert!(!head.contains("connection: close"), "kept alive: {head}");
    let head = get_health(&mut kept).await;
    assert!(
        !head.contains("connection: close"),
        "still kept alive: {head}"
    );

    // A second one while the first is open: one request, `Connection: close`, then closed.
    let mut extra = connect(&collector, &connector).await;
    assert_eq!(
        extra.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed),
        "the client resumes the session of its first connection from the server's ticket"
    );
    let head = get_health(&mut extra).await;
    assert!(
        head.contains("connection: close"),
        "over the budget: {head}"
    );
    assert!(
        closed_by_server(&mut extra).await,
        "the server closes a connection over the budget after its answer"
    );
    // The kept connection is unaffected.
    get_health(&mut kept).await;

    // The next connection resumes too: tickets keep coming with each session.
    let mut again = connect(&collector, &connector).await;
    assert_eq!(
        again.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed),
        "a reconnecting client resumes its session"
    );
    let head = get_health(&mut again).await;
    assert!(
        head.contains("connection: close"),
        "still over the budget: {head}"
    );
    drop(again);

    // The metrics count them: `extra`, `again` and the scrape's own connection went without
    // keep-alive; the kept connection and the scrape's are open.
    let admin = collector.api_token(Role::Admin, None).await;
    let text = collector.metrics(&admin).await;
    assert_eq!(
        value(&text, "cntt_collector_connections_without_keep_alive_total"),
        3,
        "{text}"
    );
    assert!(
        value(&text, "cntt_collector_connections_open") >= 2,
        "{text}"
    );

    // Once the kept connection closes, its place is free again: a new one is kept.
    drop(kept);
    eventually(
        Duration::from_secs(10),
        "a freed place is used again",
        || {
            let (collector, connector) = (&collector, &connector);
            async move {
                let mut next = connect(collector, connector).await;
                let head = get_health(&mut next).await;
                (!head.contains("connection: close")).then_some(())
            }
        },
    )
    .await;
    // Every connection but the scrape's own has closed: the gauge comes back down.
    eventually(
        Duration::from_secs(10),
        "the open connections gauge falls",
        || {
            let (collector, admin) = (&collector, &admin);
            async move {
                let text = collector.metrics(admin).await;
                (value(&text, "cntt_collector_connections_open") == 1).then_some(())
            }
        },
    )
    .await;
    collector.stop().await;
}

/// The value of an unlabelled metric in an exposition.
fn value(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not exposed"))
        .trim()
        .parse()
        .unwrap()
}
